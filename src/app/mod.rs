//! The commands, assembled from the layers below: what `main` runs.
//!
//! - [`master`]: the collector thread and the API server over one shared state (also used
//!   by `demo` and the benchmark);
//! - [`minion`]: the read-only Docker proxy;
//! - `demo` (with the `demo` feature): a simulated cluster and a master in one process;
//! - `simulate` (with the `demo` feature): the simulated cluster alone;
//! - [`version`]: the `/version` string.

#[cfg(feature = "demo")]
pub mod demo;
pub mod master;
pub mod minion;
#[cfg(feature = "demo")]
pub mod simulate;
pub mod termination;
pub mod tree;
pub mod version;
