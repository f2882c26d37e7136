//! Minion mode, assembled: the node agent (`GET /node`) and the read-only Docker proxy,
//! served on its port.

use std::net::TcpListener;
use std::sync::Arc;

use crate::agent::{Agent, AgentConfig, DEFAULT_SOCKETS};
use crate::auth::Authorizer;
use crate::cli::Options;
use crate::http::{self, ClientConfig, RunningServer};
use crate::proxy;

/// Serves the agent and proxy of `options` on `listener`, to callers `auth` allows.
pub fn start(
    options: &Options,
    listener: TcpListener,
    auth: Arc<Authorizer>,
) -> std::io::Result<RunningServer> {
    let address = listener
        .local_addr()
        .map_or_else(|_| "?".to_string(), |a| a.to_string());
    if options.runtime_sockets.is_empty() {
        log::info!(
            "minion on http://{address} reading the first runtime that answers of {}",
            DEFAULT_SOCKETS.join(", ")
        );
    } else {
        let given: Vec<String> = options
            .runtime_sockets
            .iter()
            .map(|p| p.display().to_string())
            .collect();
        log::info!(
            "minion on http://{address} reading the first runtime that answers of {}",
            given.join(", ")
        );
    }
    let agent = Arc::new(Agent::new(AgentConfig {
        runtime_sockets: options.runtime_sockets.clone(),
        proc_root: options.host_proc.clone(),
        show_env: options.show_env,
        client: ClientConfig::default(),
    }));
    // Find the runtime now, so that the log says at once what this node runs.
    if let Err(e) = agent.node() {
        log::warn!("{e}; /node answers 502 until a runtime answers");
    }
    let handler = proxy::handler(agent, auth, options.workers);
    http::serve_listener_with_probes(listener, options.workers, "minion", handler, &["/healthz"])
}
