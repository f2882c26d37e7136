//! The integration tests, one crate: each module an area, all sharing `support`.
//!
//! They talk to real servers over real sockets: the cluster simulator (`cluster-insight-sim`),
//! the real binary, a fake Docker daemon on a Unix socket, a TLS API server made per run.

mod support;

mod auth;
mod docs;
mod extra_kinds;
mod faults;
mod fuzz;
mod graph_rules;
mod hostile_clients;
mod live;
mod load;
mod manifest;
mod master_http;
mod minion;
mod realdata;
mod sim;
mod stability;
mod tls;
mod watch;
