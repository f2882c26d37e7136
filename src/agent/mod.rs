//! The node agent's reading of its own node: the container runtime (CRI `runtime.v1` or the
//! Docker Engine API, over the runtime's Unix socket) and the host's processes (`/proc`),
//! answered as one document (`GET /node`, [`document`]). Everything here only reads, and
//! runs in minion mode, on the node.
//!
//! The runtime is read through the same seam and caches as the master's call-by-call path
//! (`collect::runtime::NodeRuntime`, `collect::nodes::read_runtime`), so a node looks the
//! same to the graph however it was read; only the processes differ: they come from the
//! host's `/proc` when the agent can see the host's processes, else from the runtime when it
//! can tell (Docker's `top`).

pub mod cri;
pub(crate) mod document;
pub(crate) mod procfs;

use std::collections::HashMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use parking_lot::Mutex;

use crate::collect::nodes::{read_runtime, NodeContext};
use crate::collect::runtime::cache::{CachedContainer, ImageCache};
use crate::collect::runtime::docker::{process_with_pid, PROCESS_VOLATILE};
use crate::collect::runtime::{connect_socket, NodeRuntime, RuntimeError, RuntimeOptions};
use crate::graph::fingerprint;
use crate::graph::observed::{Container, Image, Process};
use crate::http::ClientConfig;
use document::{NodeDocument, ProcessesInfo, RuntimeInfo, STATUS_VOLATILE};

/// Where runtimes listen unless told otherwise, probed in this order: a node that runs
/// containerd for Kubernetes may run Docker beside it, and the kubelet's runtime is the one
/// whose containers are the pods'.
pub const DEFAULT_SOCKETS: [&str; 4] = [
    "/run/containerd/containerd.sock",
    // k3s and RKE2 run a containerd of their own.
    "/run/k3s/containerd/containerd.sock",
    "/var/run/crio/crio.sock",
    "/var/run/docker.sock",
];

/// A document made this recently is answered again rather than read anew: many clients
/// asking at once cost the runtime one reading.
const REUSE_WITHIN: Duration = Duration::from_secs(1);

/// Readings (a process's %CPU, memory, CPU time, run state) change all the time; an
/// unchanged node keeps its ETag while only they change, for at most this long, so that a
/// master asking with the ETag gets a 304 and still sees readings this fresh.
pub const READINGS_MAX_AGE: Duration = Duration::from_secs(60);

/// Fields of the document that are readings, or counts of the host's own processes, rather
/// than the state of the node's containers.
const DOCUMENT_VOLATILE: &[&str] = &["scanned", "outsideContainers"];

/// How long one reading of the node may take before it answers with what it has (and
/// each call to the runtime at most): well within the master's wait for a first byte
/// (`--docker-timeout`, at most 5 s), so that a slow node gives what it read rather than
/// nothing.
const READ_BUDGET: Duration = Duration::from_secs(3);

#[derive(Debug, Clone)]
pub struct AgentConfig {
    /// The runtime's socket, or several to try in order; none: [`DEFAULT_SOCKETS`].
    pub runtime_sockets: Vec<PathBuf>,
    /// The host's `/proc` (the agent runs in the host's PID namespace).
    pub proc_root: PathBuf,
    /// Leave container environment values as they are (they hold secrets).
    pub show_env: bool,
    pub client: ClientConfig,
}

impl Default for AgentConfig {
    fn default() -> Self {
        AgentConfig {
            runtime_sockets: Vec::new(),
            proc_root: PathBuf::from("/proc"),
            show_env: false,
            client: ClientConfig::default(),
        }
    }
}

/// Why the agent could not describe its node.
#[derive(Debug)]
pub enum AgentError {
    /// No runtime answered at any of these sockets (each with why).
    NoRuntime(Vec<(PathBuf, String)>),
    /// The runtime answered, but not even its container list could be read.
    Runtime(String),
}

impl fmt::Display for AgentError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            AgentError::NoRuntime(tried) => {
                f.write_str("no container runtime answered")?;
                for (i, (path, why)) in tried.iter().enumerate() {
                    let sep = if i == 0 { ": " } else { "; " };
                    write!(f, "{sep}{}: {why}", path.display())?;
                }
                Ok(())
            }
            AgentError::Runtime(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for AgentError {}

/// A `/node` answer, made once and handed to every client that asks within
/// [`REUSE_WITHIN`].
pub struct NodeAnswer {
    pub body: Arc<[u8]>,
    /// A weak ETag: the same while the node's containers, images and processes are, for
    /// at most [`READINGS_MAX_AGE`] (see [`etag`]).
    pub etag: String,
}

/// The node agent: finds the runtime, reads it and the host's processes on request.
pub struct Agent {
    config: AgentConfig,
    images: Arc<ImageCache>,
    state: Mutex<State>,
    /// The runtime found, readable while a reading holds `state`.
    found: Mutex<Option<RuntimeInfo>>,
}

#[derive(Default)]
struct State {
    runtime: Option<(Arc<dyn NodeRuntime>, RuntimeInfo)>,
    containers: HashMap<String, CachedContainer>,
    readings: u64,
    last: Option<(Instant, Arc<NodeAnswer>)>,
}

impl Agent {
    pub fn new(config: AgentConfig) -> Agent {
        Agent {
            config,
            images: Arc::new(ImageCache::default()),
            state: Mutex::new(State::default()),
            found: Mutex::new(None),
        }
    }

    pub fn config(&self) -> &AgentConfig {
        &self.config
    }

    /// The node's document, read now (or within the last second).
    pub fn node(&self) -> Result<Arc<NodeAnswer>, AgentError> {
        // One reading at a time: concurrent clients wait for it and share it.
        let mut state = self.state.lock();
        if let Some((made, answer)) = &state.last {
            if made.elapsed() < REUSE_WITHIN {
                return Ok(Arc::clone(answer));
            }
        }
        let (runtime, info) = self.runtime_in(&mut state)?;
        state.readings += 1;
        let context = NodeContext {
            options: self.runtime_options(),
            images: Arc::clone(&self.images),
            refresh: state.readings,
            now_ms: cluster_insight_wire::time::now_millis(),
            deadline: Instant::now() + READ_BUDGET,
            // One node, read by this thread: there are no threads to add.
            aim: Instant::now() + READ_BUDGET,
            budget: READ_BUDGET,
        };
        let table = self.scan_processes();
        let with_processes = WithProcesses {
            inner: &*runtime,
            table: table.as_ref().ok(),
            own_container: own_container(),
        };
        let (node, error) = read_runtime("", &with_processes, &mut state.containers, &context);
        self.images.forget_unused(state.readings);
        let Some(mut node) = node else {
            // The runtime may have gone, or been replaced: look for it again next time.
            state.runtime = None;
            *self.found.lock() = None;
            return Err(AgentError::Runtime(error.unwrap_or_default()));
        };
        if let Some(e) = &error {
            log::warn!("{e}");
        }
        let processes = match (&table, with_processes.used_table()) {
            (Ok(table), true) => {
                for observed in &mut node.containers {
                    observed.processes_omitted = table
                        .by_container
                        .get(&observed.container.id)
                        .map_or(0, |c| c.omitted);
                }
                ProcessesInfo {
                    source: "proc".to_string(),
                    scanned: table.scanned,
                    outside_containers: table.outside_containers,
                    error: None,
                }
            }
            (table, _) => ProcessesInfo {
                source: if runtime.tells_processes() {
                    "docker top"
                } else {
                    "none"
                }
                .to_string(),
                error: Some(match table {
                    Ok(_) => format!(
                        "{} shows no process of any container but this agent's own: it does \
                         not see the host's processes (run it in the host's PID namespace)",
                        self.config.proc_root.display()
                    ),
                    Err(e) => e.clone(),
                }),
                ..ProcessesInfo::default()
            },
        };
        // The runtime lists in an order of its own, which may change from call to call:
        // sorted, the same node is the same document (and ETag).
        node.containers
            .sort_by(|a, b| a.container.id.cmp(&b.container.id));
        node.images.sort_by(|a, b| a.id.cmp(&b.id));
        let document = NodeDocument::new(info, &node, processes);
        let body: Arc<[u8]> = serde_json::to_vec(&document)
            .map_err(|e| AgentError::Runtime(format!("cannot write the node document: {e}")))?
            .into();
        let etag = etag(&body);
        let answer = Arc::new(NodeAnswer { body, etag });
        state.last = Some((Instant::now(), Arc::clone(&answer)));
        Ok(answer)
    }

    /// The runtime this agent reads, found now if it was not yet: for a readiness probe.
    pub(crate) fn runtime(&self) -> Result<RuntimeInfo, AgentError> {
        // Known already: answered without waiting for a reading in progress.
        if let Some(info) = self.found.lock().clone() {
            return Ok(info);
        }
        let mut state = self.state.lock();
        self.runtime_in(&mut state).map(|(_, info)| info)
    }

    fn runtime_in(
        &self,
        state: &mut State,
    ) -> Result<(Arc<dyn NodeRuntime>, RuntimeInfo), AgentError> {
        if let Some((runtime, info)) = &state.runtime {
            return Ok((Arc::clone(runtime), info.clone()));
        }
        let found = self.find_runtime()?;
        log::info!(
            "reading {} {} at {} ({})",
            found.1.name,
            found.1.version,
            found.1.endpoint,
            found.1.api
        );
        state.runtime = Some((Arc::clone(&found.0), found.1.clone()));
        *self.found.lock() = Some(found.1.clone());
        Ok(found)
    }

    /// The runtime at the first socket of the configured ones (else of the default ones)
    /// where one answers.
    fn find_runtime(&self) -> Result<(Arc<dyn NodeRuntime>, RuntimeInfo), AgentError> {
        let candidates: Vec<PathBuf> = if self.config.runtime_sockets.is_empty() {
            DEFAULT_SOCKETS.iter().map(PathBuf::from).collect()
        } else {
            self.config.runtime_sockets.clone()
        };
        let mut tried = Vec::new();
        for path in candidates {
            if std::fs::symlink_metadata(&path).is_err() {
                tried.push((path, "no such socket".to_string()));
                continue;
            }
            match self.connect(&path) {
                Ok(found) => return Ok(found),
                Err(why) => tried.push((path, why)),
            }
        }
        Err(AgentError::NoRuntime(tried))
    }

    /// Whatever runtime speaks at `path`.
    fn connect(&self, path: &Path) -> Result<(Arc<dyn NodeRuntime>, RuntimeInfo), String> {
        connect_socket(path, &self.runtime_options())
    }

    /// How the runtime is read: each call within the reading's budget.
    fn runtime_options(&self) -> RuntimeOptions {
        let client = &self.config.client;
        RuntimeOptions {
            client: ClientConfig {
                connect_timeout: client.connect_timeout.min(READ_BUDGET),
                io_timeout: client.io_timeout.min(READ_BUDGET),
                request_timeout: client.request_timeout.min(READ_BUDGET),
                max_body: client.max_body,
                bearer: None,
            },
            show_env: self.config.show_env,
        }
    }

    fn scan_processes(&self) -> Result<procfs::ProcessTable, String> {
        let options = procfs::ScanOptions {
            // The host's user names, where the agent may read them.
            passwd: Some(self.config.proc_root.join("1/root/etc/passwd")),
            ..procfs::ScanOptions::default()
        };
        procfs::scan(&self.config.proc_root, &options)
            .map_err(|e| format!("cannot read {}: {e}", self.config.proc_root.display()))
    }
}

/// The document's ETag: a hash of it without its readings (see [`READINGS_MAX_AGE`]), and
/// the period of that length it was made in. Weak (RFC 9110 §8.8.1): two documents with one
/// tag mean the same node, not the same bytes.
fn etag(body: &[u8]) -> String {
    let period = cluster_insight_wire::time::now_millis()
        / i64::try_from(READINGS_MAX_AGE.as_millis()).unwrap_or(i64::MAX);
    let ignored: Vec<&str> = PROCESS_VOLATILE
        .iter()
        .chain(STATUS_VOLATILE)
        .chain(DOCUMENT_VOLATILE)
        .copied()
        .collect();
    let state = std::str::from_utf8(body)
        .ok()
        .and_then(|text| fingerprint::ignoring(text, &ignored).ok())
        .unwrap_or_else(|| fingerprint::bytes_hash(body));
    format!("W/\"{state:016x}-{period}\"")
}

/// A runtime whose processes are the host's, from `/proc`, when the scan saw any
/// container's: otherwise (the agent is not in the host's PID namespace) the runtime's own
/// answer stands.
struct WithProcesses<'a> {
    inner: &'a dyn NodeRuntime,
    table: Option<&'a procfs::ProcessTable>,
    own_container: Option<String>,
}

impl WithProcesses<'_> {
    /// Whether the scan saw the host's processes: the kernel's `kthreadd` is there, or
    /// (a node that is itself a container, as kind's are) some container's processes other
    /// than the agent's own. An agent in a PID namespace of its own sees only its own.
    fn used_table(&self) -> bool {
        self.table.is_some_and(|t| {
            t.host_namespace
                || t.by_container
                    .keys()
                    .any(|id| Some(id) != self.own_container.as_ref())
        })
    }
}

/// The container this agent runs in, when its cgroup names one (not in a cgroup namespace
/// of its own, which hides the path).
fn own_container() -> Option<String> {
    std::fs::read_to_string("/proc/self/cgroup")
        .ok()
        .and_then(|text| procfs::container_id(&text))
}

impl NodeRuntime for WithProcesses<'_> {
    fn endpoint(&self) -> String {
        self.inner.endpoint()
    }

    fn describe(&self) -> Result<RuntimeInfo, RuntimeError> {
        self.inner.describe()
    }

    fn list(&self) -> Result<Vec<crate::collect::runtime::Listed>, RuntimeError> {
        self.inner.list()
    }

    fn inspect(&self, id: &str) -> Result<Container, RuntimeError> {
        self.inner.inspect(id)
    }

    fn tells_processes(&self) -> bool {
        self.used_table() || self.inner.tells_processes()
    }

    fn processes(&self, container: &Container) -> Result<Option<Vec<Process>>, RuntimeError> {
        match self.table {
            Some(table) if self.used_table() => Ok(Some(
                table
                    .by_container
                    .get(&container.id)
                    .map_or(&[][..], |c| &c.rows)
                    .iter()
                    .filter_map(|row| {
                        let text = serde_json::to_string(row).ok()?;
                        process_with_pid(row.pid.to_string(), &text)
                    })
                    .collect(),
            )),
            _ => self.inner.processes(container),
        }
    }

    fn image(&self, id: &str) -> Result<Image, RuntimeError> {
        self.inner.image(id)
    }
}
