//! Minion mode: the node agent's `GET /node` (its whole runtime state in one document, see
//! `agent`), and a read-only HTTP proxy from the network to the local Docker daemon's Unix
//! socket, for masters that read a node call by call.
//!
//! The Docker socket is root on the host, so the proxy forwards only the six read-only
//! requests of the allow-list ([`allow`], contract §1) and nothing else, rebuilt from what
//! the allow-list parsed. Refusals (403 for a path or query, 405 for a method) never touch
//! the daemon. A daemon that is down, slow or answers something that is not HTTP gives 502;
//! its own status and body are passed through otherwise, within the body cap of the client
//! configuration, except that a container inspect's environment values are redacted, as
//! everything else that leaves the node is, unless the minion was given `--show-env`.
//! Failures are `ProxyError`s, mapped to statuses in one place.

mod allow;
mod forward;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

#[cfg(test)]
use crate::agent::AgentConfig;
use crate::agent::{document, Agent, AgentError};
use crate::auth::{self, Authorizer};
use crate::collect::runtime::docker::DEFAULT_SOCKET;
use crate::http::layers::{self, printable};
use crate::http::{client, Body, Client, Endpoint, Handler, Method, Request, Response};
use crate::report::chain;
use allow::{check_request, Decision, Refusal};
use forward::Forwarder;

/// Refusals logged at most: anyone who reaches the port can send refused requests as fast
/// as they like, and the log must not grow with them.
static REFUSALS_LOGGED: LogBudget = LogBudget::new(20, Duration::from_secs(60));

/// At most `per_window` events are logged per `window`; the others are counted, and the
/// count is logged with the next event that is.
struct LogBudget {
    per_window: u32,
    window: Duration,
    state: parking_lot::Mutex<LogWindow>,
}

struct LogWindow {
    start: Option<Instant>,
    logged: u32,
    unlogged: u64,
}

impl LogBudget {
    const fn new(per_window: u32, window: Duration) -> LogBudget {
        LogBudget {
            per_window,
            window,
            state: parking_lot::const_mutex(LogWindow {
                start: None,
                logged: 0,
                unlogged: 0,
            }),
        }
    }

    /// Whether to log an event that happens at `now`; if so, how many were not logged
    /// since the last one that was.
    fn admit(&self, now: Instant) -> Option<u64> {
        let mut w = self.state.lock();
        if w.start
            .is_none_or(|start| now.duration_since(start) >= self.window)
        {
            w.start = Some(now);
            w.logged = 0;
        }
        if w.logged >= self.per_window {
            w.unlogged += 1;
            return None;
        }
        w.logged += 1;
        Some(std::mem::take(&mut w.unlogged))
    }
}

/// How much of a refused target goes into the log line.
const LOGGED_TARGET_CHARS: usize = 200;

/// Response headers of the daemon passed on beside the status, `Content-Type` and body:
/// Docker clients read the API version and OS from `/_ping`.
const PASSED_HEADERS: [&str; 3] = ["Api-Version", "Docker-Experimental", "Ostype"];

/// Why the proxy answers with an error of its own.
#[derive(Debug)]
enum ProxyError {
    Refused(Refusal),
    /// The daemon could not be asked, or did not answer in HTTP.
    Daemon {
        endpoint: String,
        error: client::Error,
    },
    /// The daemon answered a container inspect that could not be read, so could not be
    /// redacted: it is not passed on.
    Unredactable {
        endpoint: String,
    },
    /// The agent could not read its node.
    Agent(AgentError),
    /// As many requests as may wait on the daemon at once already do.
    Busy {
        limit: usize,
    },
}

impl ProxyError {
    fn status(&self) -> u16 {
        match self {
            ProxyError::Refused(Refusal::Method(_)) => 405,
            ProxyError::Refused(Refusal::Target(_)) => 403,
            ProxyError::Daemon { .. } | ProxyError::Unredactable { .. } | ProxyError::Agent(_) => {
                502
            }
            ProxyError::Busy { .. } => 503,
        }
    }

    fn response(&self) -> Response {
        let message = match self {
            ProxyError::Refused(refusal) => refusal.message(),
            ProxyError::Daemon { endpoint, error } => {
                format!("Docker daemon at {endpoint} failed: {}", chain(error))
            }
            ProxyError::Unredactable { endpoint } => format!(
                "Docker daemon at {endpoint} answered a container inspect that is not a JSON \
                 object: not passed on, since its environment could not be redacted"
            ),
            ProxyError::Agent(e) => format!("cannot read this node: {e}"),
            ProxyError::Busy { limit } => format!(
                "the Docker daemon is answering {limit} requests of this minion already; try \
                 again"
            ),
        };
        let response = Response::error(self.status(), &message);
        match self {
            ProxyError::Refused(Refusal::Method(_)) => response.with_header("Allow", "GET, HEAD"),
            ProxyError::Busy { .. } => response.with_header("Retry-After", "1"),
            _ => response,
        }
    }
}

/// The HTTP handler of minion mode: the agent's `/node` and the proxy, behind `auth`,
/// inside an access log. Methods are the allow-list's to refuse (it names them, contract
/// §1), so no read-only layer sits in front.
/// The minion's handler, for a server of `workers` workers: all but two of them may wait on
/// the Docker daemon at once.
pub fn handler(agent: Arc<Agent>, auth: Arc<Authorizer>, workers: usize) -> Handler {
    let config = agent.config();
    let show_env = config.show_env;
    let docker_socket = docker_socket(&config.runtime_sockets);
    let client = Client::new(Endpoint::Unix(docker_socket), config.client.clone());
    let forwarder = Forwarder::new(client, show_env, workers.saturating_sub(2));
    let health_agent = Arc::clone(&agent);
    let node = layers::conditional(Arc::new(move |request: &Request| {
        node_document(&agent, request).unwrap_or_else(|e| e.response())
    }));
    let minion: Handler = Arc::new(move |request: &Request| {
        // Other methods on /node and /healthz are refused by the allow-list, as every
        // write is.
        if !matches!(request.method, Method::Other(_)) {
            match request.path() {
                document::PATH => return node(request),
                HEALTH_PATH => return health(&health_agent),
                _ => {}
            }
        }
        forward(&forwarder, request).unwrap_or_else(|e| e.response())
    });
    layers::access_log("minion", auth::layer(auth, |_| false, minion))
}

/// The readiness probe's path: 200 once the agent has found its runtime.
const HEALTH_PATH: &str = "/healthz";

fn health(agent: &Agent) -> Response {
    match agent.runtime() {
        Ok(runtime) => Response::new(
            200,
            "application/json",
            Body::Owned(
                serde_json::json!({
                    "status": "ok",
                    "runtime": format!("{} {}", runtime.name, runtime.version),
                    "endpoint": runtime.endpoint,
                })
                .to_string()
                .into_bytes(),
            ),
        ),
        Err(e) => Response::error(503, &format!("no runtime to read: {e}")),
    }
}

/// Where the Docker paths are forwarded: the socket given that is named like Docker's, else
/// the first given, else Docker's default.
fn docker_socket(given: &[PathBuf]) -> PathBuf {
    given
        .iter()
        .find(|p| p.file_name().is_some_and(|n| n == "docker.sock"))
        .or(given.first())
        .cloned()
        .unwrap_or_else(|| DEFAULT_SOCKET.into())
}

/// `GET /node`: the agent's document, with its ETag (the `conditional` layer answers 304).
fn node_document(agent: &Agent, request: &Request) -> Result<Response, ProxyError> {
    let answer = agent.node().map_err(|e| {
        log::warn!("GET {}: {e}", document::PATH);
        ProxyError::Agent(e)
    })?;
    let mut response = Response::new(
        200,
        "application/json",
        Body::Shared(Arc::clone(&answer.body)),
    )
    .with_header("ETag", &answer.etag);
    if request.method == Method::Head {
        response.body = Body::Empty;
        response = response.with_header("Content-Length", &answer.body.len().to_string());
    }
    Ok(response)
}

/// Refuses what the allow-list does not allow, else forwards.
fn forward(forwarder: &Forwarder, request: &Request) -> Result<Response, ProxyError> {
    let target = match check_request(&request.method, &request.target) {
        Decision::Forward(target) => target,
        Decision::Refuse(refusal) => {
            if let Some(unlogged) = REFUSALS_LOGGED.admit(Instant::now()) {
                if unlogged > 0 {
                    log::info!("{unlogged} refusals before this one were not logged (at most 20 a minute are)");
                }
                log::info!(
                    "refused {} {}: {}",
                    printable(request.method.as_str(), LOGGED_TARGET_CHARS),
                    printable(&request.target, LOGGED_TARGET_CHARS),
                    refusal.message()
                );
            }
            return Err(ProxyError::Refused(refusal));
        }
    };
    forwarder.forward(request, &target)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refusals_are_logged_within_a_budget() {
        let budget = LogBudget::new(3, Duration::from_secs(60));
        let t0 = Instant::now();
        let admitted: Vec<Option<u64>> = (0..10).map(|_| budget.admit(t0)).collect();
        assert_eq!(&admitted[..3], &[Some(0), Some(0), Some(0)]);
        assert!(admitted[3..].iter().all(Option::is_none));
        // A minute on: logged again, with the count of those that were not.
        assert_eq!(budget.admit(t0 + Duration::from_secs(61)), Some(7));
        assert_eq!(budget.admit(t0 + Duration::from_secs(62)), Some(0));
    }

    #[test]
    fn refusals_are_json_with_allow_on_405() {
        let handle = handler(
            Arc::new(Agent::new(AgentConfig {
                runtime_sockets: vec!["/nonexistent/docker.sock".into()],
                ..AgentConfig::default()
            })),
            Arc::new(Authorizer::Open),
            8,
        );
        let response = handle(&Request::get("/containers/create"));
        assert_eq!(response.status, 403);
        assert_eq!(response.header("Content-Type"), Some("application/json"));
        let body: serde_json::Value = serde_json::from_slice(&response.body.to_vec()).unwrap();
        assert_eq!(body["success"], false);
        assert!(body["timestamp"].as_str().unwrap().ends_with('Z'));
        assert!(body["error_message"]
            .as_str()
            .unwrap()
            .contains("not allowed"));

        let mut post = Request::get("/containers/create");
        post.method = Method::Other("POST".into());
        let response = handle(&post);
        assert_eq!(response.status, 405);
        assert_eq!(response.header("Allow"), Some("GET, HEAD"));

        // An allowed request with no daemon behind the socket.
        let response = handle(&Request::get("/version"));
        assert_eq!(response.status, 502);
        let body: serde_json::Value = serde_json::from_slice(&response.body.to_vec()).unwrap();
        assert_eq!(body["success"], false);
    }
}
