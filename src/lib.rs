//! Cluster Insight: a context graph of a Kubernetes cluster, served over REST.
//!
//! The binary (`src/main.rs`) is a thin shell around this library; the integration tests
//! and the benchmark use the same library. The layers, from the outside in:
//!
//! - [`app`]: the commands (master, minion, demo, simulate), assembled;
//! - [`cli`], [`config`]: the command line read, then resolved once;
//! - [`collect`]: the Kubernetes API and every node's container runtime, read into
//!   snapshots' input (the only code that does I/O against the cluster);
//! - [`graph`]: the pure graph builder and its input (no I/O, no clock);
//! - [`publish`]: a graph serialized once into every body the API serves, and the change
//!   log (no I/O);
//! - [`store`]: the history on disk (`--history-dir`), written by a thread of its own;
//! - [`api`]: the master's REST API, handlers of (request, snapshot);
//! - [`agent`]: the node agent's reading of its node (runtime and processes);
//! - [`proxy`]: the minion's allow-list and proxy;
//! - [`auth`]: who may read, for both;
//! - [`http`]: the server, the client and the layers every answer passes through;
//! - [`report`]: errors written with their causes.
//!
//! The table of resource types is the `cluster-insight-kinds` crate (re-exported as
//! [`graph::Kind`]); the HTTP wire format is `cluster-insight-wire`; the cluster simulator
//! is `cluster-insight-sim`. ARCHITECTURE.md maps it all.

pub mod agent;
pub(crate) mod api;
pub mod app;
pub mod auth;
pub mod cli;
pub mod collect;
pub mod config;
pub mod graph;
pub mod http;
pub mod proxy;
pub mod publish;
pub mod report;
pub mod store;
