//! The binary's HTTP: a server for the master's API and the minion's proxy, a client for
//! Docker daemons and node agents, and the layers every answer passes through.
//!
//! The bytes on the wire (heads, bodies, percent-encoding, reason phrases, the JSON error
//! body) are the `cluster-insight-wire` crate's, shared with the cluster simulator; this
//! module owns sockets, threads and timeouts. Nothing outside it opens a connection for
//! HTTP except the Kubernetes client (ureq, for TLS).

mod body;
pub mod client;
pub(crate) mod layers;
mod message;
mod server;
pub(crate) mod stream;

pub use body::{Body, Composed, Piece};
pub use client::{Bearer, Client, ClientConfig, Endpoint};
pub use message::{Handler, Method, Request, Response};
pub use server::{serve, serve_listener, serve_listener_with_probes, RunningServer};
pub use stream::{EventSource, EventStream, Poll};
