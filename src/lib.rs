//! Cluster Insight: a context graph of a Kubernetes cluster, served over REST.
//!
//! The binary (`src/main.rs`) is a thin shell around this library; the integration tests
//! and the benchmark use the same library, in particular the cluster simulator in [`sim`].
//! ARCHITECTURE.md maps the modules and the data flow.

#![forbid(unsafe_code)]

pub mod api;
pub mod cli;
pub mod collector;
pub mod config;
pub mod demo;
pub mod docker;
pub mod fingerprint;
pub mod graph;
pub mod http1;
pub mod http_server;
pub mod kube;
pub mod master;
pub mod minion;
pub mod model;
pub mod sim;
pub mod simulate;
pub mod snapshot;
pub mod timefmt;
pub mod version;
