//! Collection: one thread that, every refresh interval, reads the Kubernetes API and every
//! node's container runtime, builds the graph and publishes a complete new snapshot.
//!
//! - [`kube`]: the client of the API server, the only code that talks to it;
//! - [`objects`]: Kubernetes objects parsed, one parser per kind that has facts to read;
//! - [`nodes`]: every node's runtime read in parallel, within a deadline;
//! - [`runtime`]: the seam to a node's runtime, and the Docker Engine API behind it;
//! - [`status`]: per-source health for `/status`.
//!
//! Which kinds are listed is the table of kinds' business; all are read at once, each page
//! by page. A source that fails is reported in the status and skipped, never fatal: a
//! failed Kubernetes list keeps the last good copy of that list (the graph would otherwise
//! lose its skeleton), a failed node loses that node's containers until it answers again.

pub(crate) mod agentless;
pub mod extra;
pub mod kube;
pub(crate) mod nodes;
pub mod objects;
pub mod runtime;
pub(crate) mod status;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError};

use crate::graph::observed::{Collected, KubeObject, KubeState};
use crate::graph::{self, BuildOptions, History, Kind};
use crate::http::ClientConfig;
use crate::publish::snapshot::{self, Snapshot};
use crate::publish::{Published, Shared};
use extra::{ExtraKinds, GroupVersionResource};
use kube::KubeClient;
use nodes::{NodeCache, NodeContext};
use runtime::cache::ImageCache;
use runtime::RuntimeOptions;
use status::{CallCounts, CollectorStatus, Phases, SourceStatus};

pub use nodes::{NodeParallelism, RuntimeSource};

/// Why a piece of observed data could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub(crate) what: String,
    pub(crate) detail: String,
}

impl ParseError {
    pub fn new(what: impl Into<String>, detail: impl fmt::Display) -> ParseError {
        ParseError {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.detail)
    }
}

impl std::error::Error for ParseError {}

#[derive(Clone)]
pub struct CollectorConfig {
    pub kube: KubeClient,
    pub(crate) runtimes: RuntimeSource,
    /// Limits of one call to a node's runtime.
    pub(crate) runtime_client: ClientConfig,
    pub(crate) node_parallelism: NodeParallelism,
    pub(crate) show_env: bool,
    pub refresh_interval: Duration,
    pub cluster_name: String,
    /// The `/version` string, stamped on every resource and relation as `createdBy`.
    pub created_by: String,
    /// Kinds to list beyond the table's, named at start-up.
    pub extra_kinds: Vec<GroupVersionResource>,
}

pub(crate) struct Collector {
    config: CollectorConfig,
    shared: Arc<Shared>,
    /// The last good copy of each listed kind's list.
    last_good: HashMap<Kind, Vec<KubeObject>>,
    /// Kinds listed at least once: a later 403 or 404 is a failure, not a kind to pass over.
    listed_once: HashSet<Kind>,
    /// The `--extra-kinds` kinds discovery has not named yet.
    extra: ExtraKinds,
    node_caches: HashMap<String, NodeCache>,
    images: Arc<ImageCache>,
    history: History,
    refresh: u64,
    sequence: u64,
    /// The threads the next refresh starts reading nodes with (`--node-parallelism auto`).
    node_threads: usize,
}

fn now_ms() -> i64 {
    cluster_insight_wire::time::now_millis()
}

impl Collector {
    pub(crate) fn new(config: CollectorConfig, shared: Arc<Shared>) -> Collector {
        let extra = ExtraKinds::new(&config.extra_kinds);
        let interval = config.refresh_interval;
        shared.update_status(|status| status.refresh_interval = interval);
        Collector {
            config,
            shared,
            last_good: HashMap::new(),
            listed_once: HashSet::new(),
            extra,
            node_caches: HashMap::new(),
            images: Arc::new(ImageCache::default()),
            history: History::default(),
            refresh: 0,
            sequence: 0,
            node_threads: nodes::AUTO_MIN,
        }
    }

    /// Refreshes every interval until `stop` receives or is dropped.
    pub(crate) fn run(mut self, stop: Receiver<()>) {
        loop {
            let started = Instant::now();
            // A bug met while refreshing must not end the collector: the last snapshot
            // stays published and the next refresh starts from scratch.
            if catch_unwind(AssertUnwindSafe(|| self.refresh_once())).is_err() {
                log::error!(
                    "refresh {} failed with a panic; retrying at the next interval",
                    self.refresh
                );
                self.node_caches.clear();
            }
            let wait = self
                .config
                .refresh_interval
                .saturating_sub(started.elapsed());
            match stop.recv_timeout(wait) {
                Err(RecvTimeoutError::Timeout) => continue,
                _ => return,
            }
        }
    }

    /// One complete refresh: collect, build, render, publish.
    pub(crate) fn refresh_once(&mut self) -> Arc<Snapshot> {
        self.refresh += 1;
        let started = Instant::now();
        let start_ms = now_ms();
        let mut calls = CallCounts::default();
        let published = self.shared.published();
        let previous = published.status;
        let mut kube_status = previous.kubernetes.clone();
        let mut node_status = previous.nodes.clone();

        let mut phases = Phases::default();
        let mut phase = Instant::now();
        let mut lap = |into: &mut u64| {
            *into = phase.elapsed().as_millis() as u64;
            phase = Instant::now();
        };
        self.extra
            .discover(&self.config.kube, self.refresh, start_ms, &mut kube_status);
        let kube = self.collect_kube(start_ms, &mut kube_status, &mut calls);
        lap(&mut phases.kubernetes_ms);
        let nodes = kube.of(Kind::NODE);
        // A node gets the refresh interval, and at least two call timeouts, to answer; a
        // node that takes longer keeps what it gave by then, and the rest of the cluster
        // is not held up by it.
        let budget = self
            .config
            .refresh_interval
            .max(self.config.runtime_client.request_timeout * 2);
        let context = NodeContext {
            options: RuntimeOptions {
                client: self.config.runtime_client.clone(),
                show_env: self.config.show_env,
            },
            images: Arc::clone(&self.images),
            refresh: self.refresh,
            now_ms: start_ms,
            deadline: Instant::now() + budget,
            aim: Instant::now() + self.config.refresh_interval / 2,
            budget,
        };
        let read = nodes::read_nodes(
            &self.config.runtimes,
            nodes,
            self.config.node_parallelism,
            self.node_threads,
            &context,
            &mut self.node_caches,
            &mut node_status,
        );
        calls.add(&read.calls);
        if !nodes.is_empty() {
            self.node_threads = read.pace.next_threads;
        }
        lap(&mut phases.runtime_ms);
        nodes::forget_departed(&mut node_status, nodes);

        let read_pace = read.pace;
        let mut node_containers = read.nodes;
        node_containers.extend(agentless::nodes_without_runtime(&kube, &node_containers));
        let collected = Collected {
            kube,
            nodes: node_containers,
            unread_nodes: read.unread,
        };
        let options = BuildOptions {
            cluster_name: self.config.cluster_name.clone(),
        };
        let (graph, history) = graph::build(&collected, &options, now_ms(), &self.history);
        self.history = history;
        lap(&mut phases.build_ms);
        // An unchanged graph keeps its snapshot, and with it its sequence number and ETags:
        // a client that has it gets 304 across refreshes, and nothing is serialized again.
        // (A kind named since, by discovery, needs a body of its own: a new snapshot.)
        let snapshot = match published.snapshot {
            Some(last)
                if last.graph.same_content(&graph)
                    && last.types_served() == Kind::queryable().count() =>
            {
                last
            }
            _ => {
                self.sequence += 1;
                Arc::new(snapshot::render(
                    graph,
                    &self.config.created_by,
                    self.sequence,
                ))
            }
        };

        // What was used is the last good copy of each list for the next refresh.
        let Collected { mut kube, .. } = collected;
        for kind in Kind::listed() {
            self.last_good.insert(kind, kube.take(kind));
        }
        lap(&mut phases.render_ms);

        let duration = started.elapsed();
        let failed_nodes = node_status.values().filter(|s| !s.ok).count();
        let status = CollectorStatus {
            refreshes: previous.refreshes + 1,
            last_refresh_start_ms: Some(start_ms),
            last_refresh_duration: duration,
            refresh_interval: self.config.refresh_interval,
            calls,
            phases,
            node_reading: read_pace,
            counts: snapshot.counts.clone(),
            kubernetes: kube_status,
            nodes: node_status,
        };
        // A graph made before any Kubernetes list has succeeded holds the Cluster alone: it
        // is not served as if it were the cluster (the API says no snapshot yet, `/status`
        // says why).
        let listed_ever = !self.listed_once.is_empty();
        self.shared.publish(Published {
            snapshot: listed_ever.then(|| Arc::clone(&snapshot)),
            status: Arc::new(status),
        });
        log::info!(
            "refresh {} took {} ms (Kubernetes {} ms, runtimes {} ms, graph {} ms, render {} ms): {} resources, {} relations, {} Kubernetes pages, {} runtime calls{}",
            self.refresh,
            duration.as_millis(),
            phases.kubernetes_ms,
            phases.runtime_ms,
            phases.build_ms,
            phases.render_ms,
            snapshot.counts.resources.values().sum::<usize>(),
            snapshot.counts.relations.values().sum::<usize>(),
            calls.kube_pages,
            calls.runtime_total(),
            if failed_nodes > 0 {
                format!(", {failed_nodes} node(s) failed")
            } else {
                String::new()
            }
        );
        snapshot
    }

    /// Reads every listed kind at once; a list that fails keeps its last good copy.
    fn collect_kube(
        &mut self,
        now: i64,
        status: &mut BTreeMap<String, SourceStatus>,
        calls: &mut CallCounts,
    ) -> KubeState {
        let client = &self.config.kube;
        let endpoint = client.base_url().to_string();
        let last_good = &self.last_good;
        let show_env = self.config.show_env;
        let fetched: Vec<(Kind, Fetched)> = std::thread::scope(|s| {
            let readers: Vec<_> = Kind::listed()
                .map(|kind| {
                    let last = last_good.get(&kind).map(Vec::as_slice);
                    (
                        kind,
                        s.spawn(move || fetch_list(client, kind, last, show_env)),
                    )
                })
                .collect();
            readers
                .into_iter()
                .map(|(kind, reader)| {
                    let fetched = reader.join().unwrap_or_else(|_| {
                        Err(ListError {
                            message: "the list reader panicked".to_string(),
                            status: None,
                        })
                    });
                    (kind, fetched)
                })
                .collect()
        });
        let mut kube = KubeState::default();
        for (kind, fetched) in fetched {
            let name = kind.info().plural;
            let pass_over = match &fetched {
                Err(e) if !self.listed_once.contains(&kind) => why_pass_over(client, kind, e),
                _ => None,
            };
            let entry = status.entry(kind.status_key()).or_default();
            let objects = match (fetched, pass_over) {
                (Ok((items, pages)), _) => {
                    calls.kube_pages += pages;
                    entry.record(now, endpoint.clone(), Ok(items.len()));
                    entry.failed_calls = 0;
                    self.listed_once.insert(kind);
                    items
                }
                (Err(ListError { message, .. }), Some(why)) => {
                    if !entry.skipped {
                        log::warn!("Kubernetes API: passing over {name}: {why} ({message})");
                    }
                    entry.record_skipped(now, endpoint.clone(), format!("{why}: {message}"));
                    Vec::new()
                }
                (Err(ListError { message, .. }), None) => {
                    log::warn!("Kubernetes API: {message}; keeping the last good list of {name}");
                    entry.record(now, endpoint.clone(), Err(message));
                    // The list call itself failed (a list stops at its first failed page).
                    entry.failed_calls = 1;
                    // Moved, not copied: the collector puts what it used back after the
                    // build.
                    self.last_good.remove(&kind).unwrap_or_default()
                }
            };
            kube.set(kind, objects);
        }
        kube
    }
}

/// Why a kind never listed may be passed over, the rest of the graph being whole: the
/// master may not list it (403), or the server does not serve it (404, and discovery
/// agrees). `None` for a failure. The core group's kinds are never passed over: every API
/// server serves them, and a 403 or 404 there says the master is misconfigured (a wrong
/// URL, no role binding), which must not look like a healthy empty cluster.
fn why_pass_over(client: &KubeClient, kind: Kind, error: &ListError) -> Option<String> {
    let api = kind.info().api?;
    if api.group.is_empty() {
        return None;
    }
    match error.status? {
        403 => Some("the master may not list it".to_string()),
        404 => {
            let served = match client.discover(api.group, api.version) {
                Ok(resources) => resources.iter().any(|r| r.name == kind.info().plural),
                Err(kube::KubeError::Status { code: 404, .. }) => false,
                Err(_) => return None,
            };
            (!served).then(|| {
                format!(
                    "the API server does not serve it (no {}/{} in discovery)",
                    api.group_version(),
                    kind.info().plural
                )
            })
        }
        _ => None,
    }
}

/// Why a list could not be read, with the API server's status when it answered.
struct ListError {
    message: String,
    status: Option<u16>,
}

/// A list's objects and the pages it took, or why it could not be read.
type Fetched = Result<(Vec<KubeObject>, usize), ListError>;

/// Lists `kind`; `show_env` keeps environment values and the last-applied annotation in.
fn fetch_list(
    client: &KubeClient,
    kind: Kind,
    last: Option<&[KubeObject]>,
    show_env: bool,
) -> Fetched {
    let Some(path) = kind.list_path() else {
        return Err(ListError {
            message: format!("{kind} is not served by the Kubernetes API"),
            status: None,
        });
    };
    let previous = objects::Previous::new(last.unwrap_or_default());
    let list = client
        .list(&path, |raw| match previous.find(raw.get()) {
            Some(unchanged) => Ok(unchanged),
            None if show_env => objects::parse_object(kind, raw),
            None => objects::parse_object(kind, raw).map(objects::without_secrets),
        })
        .map_err(|e| ListError {
            status: match &e {
                kube::KubeError::Status { code, .. } => Some(*code),
                _ => None,
            },
            message: format!("GET {path}: {}", crate::report::chain(&e)),
        })?;
    for e in &list.malformed {
        log::warn!("GET {path}: skipping an object: {e}");
    }
    if list.malformed_count > list.malformed.len() {
        log::warn!(
            "GET {path}: skipped {} malformed objects in all",
            list.malformed_count
        );
    }
    Ok((list.items, list.pages))
}
