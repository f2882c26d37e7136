//! A node read in one call: its agent's `GET /node` document, asked with the ETag of the
//! last one so that an unchanged node costs a 304. An agent that does not serve `/node` (an
//! older minion: 404 or 403 from its allow-list) is read call by call through the Docker
//! paths instead, and asked again now and then, since it may be upgraded in place.

use super::{Cause, RuntimeError};
use crate::agent::document::{NodeDocument, RuntimeInfo, PATH};
use crate::collect::ParseError;
use crate::graph::observed::NodeContainers;
use crate::http::Client;

/// Refreshes between two tries of `/node` on an agent that did not serve it.
pub(crate) const RETRY_REFRESHES: u64 = 30;

/// At most this many process rows of one container are taken from a node; the rest are
/// counted as omitted (a hostile or broken node cannot blow up the master's memory).
pub(crate) const MAX_PROCESSES_PER_CONTAINER: usize = 10_000;

/// What the master remembers of a node's agent between refreshes.
#[derive(Default)]
pub(crate) struct AgentMemory {
    /// `Some(false)`: the agent did not serve `/node` when last asked.
    offered: Option<bool>,
    asked_in_refresh: u64,
    etag: Option<String>,
    last: Option<AgentNode>,
}

/// A node as its agent described it.
#[derive(Clone)]
pub(crate) struct AgentNode {
    pub(crate) node: NodeContainers,
    pub(crate) runtime: RuntimeInfo,
    /// Why the agent could not read processes, when it could not.
    pub(crate) processes_error: Option<String>,
}

impl AgentMemory {
    /// Whether to ask for `/node` in refresh `refresh`.
    pub(crate) fn worth_asking(&self, refresh: u64) -> bool {
        self.offered != Some(false)
            || refresh.saturating_sub(self.asked_in_refresh) >= RETRY_REFRESHES
    }
}

/// What asking an agent for its document gave.
pub(crate) enum AgentAnswer {
    /// The node as the document describes it (a fresh one, or the last one again on 304).
    Node(AgentNode),
    /// The agent does not serve `/node`.
    NotOffered,
}

/// GETs `/node` from the agent behind `client`, for the node `node_name`.
pub(crate) fn read(
    client: &Client,
    node_name: &str,
    memory: &mut AgentMemory,
    refresh: u64,
    show_env: bool,
) -> Result<AgentAnswer, RuntimeError> {
    let fail = |cause| RuntimeError {
        call: format!("GET {PATH} at {}", client.endpoint()),
        cause,
    };
    memory.asked_in_refresh = refresh;
    let etag = memory.etag.clone();
    let headers: Vec<(&str, &str)> = match (&etag, &memory.last) {
        (Some(tag), Some(_)) => vec![("If-None-Match", tag.as_str())],
        _ => Vec::new(),
    };
    use crate::auth::REFUSED_BY;
    let response = client
        .request_with("GET", PATH, &headers)
        .map_err(|e| fail(Cause::Transport(e)))?;
    match response.status {
        304 => {
            if let Some(last) = &memory.last {
                memory.offered = Some(true);
                return Ok(AgentAnswer::Node(last.clone()));
            }
            Err(fail(Cause::Status {
                code: 304,
                message: "Not Modified to a request that named no ETag".to_string(),
            }))
        }
        200 => {
            let text = std::str::from_utf8(&response.body)
                .map_err(|_| fail(Cause::Parse(ParseError::new(PATH, "body is not UTF-8"))))?;
            let document = NodeDocument::parse(text).map_err(|e| fail(Cause::Parse(e)))?;
            let runtime = document.runtime.clone();
            let processes_error = document.processes.error.clone();
            let node = document
                .into_containers(node_name, MAX_PROCESSES_PER_CONTAINER, show_env)
                .map_err(|e| fail(Cause::Parse(e)))?;
            memory.offered = Some(true);
            memory.etag = response.header("ETag").map(str::to_string);
            let answer = AgentNode {
                node,
                runtime,
                processes_error,
            };
            memory.last = Some(answer.clone());
            Ok(AgentAnswer::Node(answer))
        }
        // The minion's authorization refused the master's token: a failure to report, not
        // an older minion (which refuses the path itself).
        401 | 403 if response.header(REFUSED_BY).is_some() => Err(fail(Cause::Status {
            code: response.status,
            message: format!(
                "the minion refused the master's token ({}): give the master a token the minion accepts (--minion-token-file, --auth-token-file)",
                String::from_utf8_lossy(&response.body).chars().take(200).collect::<String>()
            ),
        })),
        // An older minion's allow-list refuses the path (403), or nothing serves it.
        403..=405 => {
            memory.offered = Some(false);
            memory.etag = None;
            memory.last = None;
            Ok(AgentAnswer::NotOffered)
        }
        code => Err(fail(Cause::Status {
            code,
            message: String::from_utf8_lossy(&response.body)
                .chars()
                .take(200)
                .collect(),
        })),
    }
}
