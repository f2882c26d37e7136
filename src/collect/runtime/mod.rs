//! The seam between the collector and a node's container runtime.
//!
//! The collector reads every node through [`NodeRuntime`]: list the containers (each with a
//! state token that says when an earlier inspect still holds), inspect one, read its
//! processes (which a runtime may not offer), inspect an image. A runtime is made per node
//! by [`connect`]; what the collector gets back is the graph's own model
//! ([`Container`], [`Process`], [`Image`]), already redacted. Nothing else in collection knows
//! a runtime's wire format: Docker's JSON, its status texts, its volatile fields and its
//! redaction paths live in [`docker`]. (The minion's proxy knows Docker's paths, which it
//! forwards.)
//!
//! Docker is read through the Docker Engine API ([`docker`]), containerd and CRI-O
//! through CRI ([`cri`]); [`connect_socket`] finds which speaks on a socket. A node's
//! agent, which answers for its whole node at once, is read by [`agent`].

pub(crate) mod agent;
pub(crate) mod cache;
pub(crate) mod cri;
pub mod docker;

use std::fmt;
use std::path::Path;
use std::sync::Arc;

use super::ParseError;
use crate::agent::cri::CriClient;
pub(crate) use crate::agent::document::RuntimeInfo;
use crate::graph::observed::{Container, Image, Process};
use crate::http::{Client, ClientConfig, Endpoint};
use crate::report::chain;

/// One container as the runtime's list shows it: enough to tell whether an earlier inspect
/// still describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Listed {
    pub id: String,
    /// The list's account of the container's state, reduced by the runtime to what changes
    /// only when the container does (a restart, an exit, a health change): while it is
    /// the same, so is the container, apart from how long it has been so.
    pub(crate) state: String,
    /// At most how long, in seconds, the list says the container has been in its state,
    /// when it says (Docker's `Up 2 hours`). A restart shows as an age below the time the
    /// inspect gave.
    pub(crate) age_at_most_secs: Option<u64>,
}

/// A failed runtime call: which call (in the runtime's words, for the log and `/status`)
/// and why, by what the collector does about it.
#[derive(Debug)]
pub(crate) struct RuntimeError {
    /// What was asked, in the runtime's words, with where when that helps the reader:
    /// `inspect of container 0a1b…`, `GET /containers/json at unix:/var/run/docker.sock`.
    pub(crate) call: String,
    pub(crate) cause: Cause,
}

#[derive(Debug)]
pub(crate) enum Cause {
    /// Could not talk to the runtime at all, or it did not speak its protocol.
    Transport(crate::http::client::Error),
    /// The container or image is not (or no longer) there.
    NotFound,
    /// The runtime answered with an error.
    Status { code: u16, message: String },
    /// It answered something we could not read.
    Parse(ParseError),
    /// A CRI call failed (its error says how: transport, gRPC status, a damaged answer).
    Cri(crate::agent::cri::CriError),
}

impl RuntimeError {
    pub(crate) fn is_not_found(&self) -> bool {
        matches!(self.cause, Cause::NotFound)
    }
}

impl fmt::Display for RuntimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.call)?;
        match &self.cause {
            // These say why themselves, as the error's source.
            Cause::Transport(_) | Cause::Parse(_) | Cause::Cri(_) => Ok(()),
            Cause::NotFound => f.write_str(": not found"),
            Cause::Status { code, message } => write!(f, ": HTTP {code}: {message}"),
        }
    }
}

impl std::error::Error for RuntimeError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match &self.cause {
            Cause::Transport(e) => Some(e),
            Cause::Parse(e) => Some(e),
            Cause::Cri(e) => Some(e),
            Cause::NotFound | Cause::Status { .. } => None,
        }
    }
}

/// A node's container runtime, as the collector reads it. Implementations only read, and
/// redact what they return (environment values) before anyone else sees it.
pub(crate) trait NodeRuntime: Send + Sync {
    /// Where the runtime is reached, for `/status` and the logs.
    fn endpoint(&self) -> String;

    /// Which runtime this is: its name, version and API.
    fn describe(&self) -> Result<RuntimeInfo, RuntimeError>;

    /// Every container of the node, once each.
    fn list(&self) -> Result<Vec<Listed>, RuntimeError>;

    fn inspect(&self, id: &str) -> Result<Container, RuntimeError>;

    /// Whether [`NodeRuntime::processes`] can ever tell.
    fn tells_processes(&self) -> bool;

    /// The processes of a running container; `Ok(None)` when this runtime cannot tell.
    fn processes(&self, container: &Container) -> Result<Option<Vec<Process>>, RuntimeError>;

    fn image(&self, id: &str) -> Result<Image, RuntimeError>;
}

/// How a runtime is read, whatever the node.
#[derive(Debug, Clone)]
pub(crate) struct RuntimeOptions {
    pub client: ClientConfig,
    /// Leave container environment values as they are (they hold secrets).
    pub(crate) show_env: bool,
}

/// The runtime at `endpoint`: a node's minion (TCP), which speaks the Docker Engine API, or
/// a local socket, CRI or Docker (whichever answers; Docker when neither does yet, so that
/// the reading reports why).
pub(crate) fn connect(endpoint: Endpoint, options: &RuntimeOptions) -> Arc<dyn NodeRuntime> {
    if let Endpoint::Unix(path) = &endpoint {
        if let Ok((runtime, _)) = connect_socket(path, options) {
            return runtime;
        }
    }
    Arc::new(docker::DockerRuntime::new(
        Client::new(endpoint, options.client.clone()),
        options.show_env,
    ))
}

/// Whatever runtime speaks at the Unix socket `path`: CRI first (a CRI socket answers an
/// HTTP/1.1 request with nothing a Docker client could read), then the Docker Engine API.
pub(crate) fn connect_socket(
    path: &Path,
    options: &RuntimeOptions,
) -> Result<(Arc<dyn NodeRuntime>, RuntimeInfo), String> {
    let cri = cri::CriRuntime::new(
        CriClient::new(path).with_timeout(options.client.request_timeout),
        options.show_env,
    );
    let not_cri = match cri.describe() {
        Ok(info) => return Ok((Arc::new(cri), info)),
        Err(e) => chain(&e),
    };
    let docker = docker::DockerRuntime::new(
        Client::new(Endpoint::Unix(path.to_path_buf()), options.client.clone()),
        options.show_env,
    );
    match docker.describe() {
        Ok(info) => Ok((Arc::new(docker), info)),
        Err(e) => Err(format!(
            "neither CRI ({not_cri}) nor the Docker Engine API ({})",
            chain(&e)
        )),
    }
}
