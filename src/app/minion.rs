//! Minion mode, assembled: the read-only Docker proxy served on its port.

use std::net::TcpListener;
use std::path::PathBuf;

use crate::collect::runtime::docker::{socket_exists, DEFAULT_SOCKET};
use crate::http::{self, ClientConfig, RunningServer};
use crate::proxy::{self, ProxyConfig};

/// Serves the proxy to the daemon at `socket` (the default one when `None`) on `listener`
/// with `workers` threads.
pub fn start(
    socket: Option<PathBuf>,
    listener: TcpListener,
    workers: usize,
) -> std::io::Result<RunningServer> {
    let socket = socket.unwrap_or_else(|| DEFAULT_SOCKET.into());
    log::info!(
        "minion on http://{} forwarding read-only Docker API calls to {}",
        listener
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string()),
        socket.display()
    );
    if !socket_exists(&socket) {
        log::warn!(
            "{} does not exist (yet): requests will get 502 until it does",
            socket.display()
        );
    }
    let handler = proxy::handler(ProxyConfig {
        docker_socket: socket,
        client: ClientConfig::default(),
    });
    http::serve_listener(listener, workers, "minion", handler)
}
