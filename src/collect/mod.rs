//! Collection: one thread that, every refresh interval, reads every node's container
//! runtime, builds the graph from that and from what the Kubernetes watches hold, and
//! publishes a complete new snapshot; and, between refreshes, builds again from the last
//! node readings as soon as a watch brings a change (within about a second).
//!
//! - [`kube`]: the client of the API server, the only code that talks to it;
//! - [`watch`]: each listed kind's list, then watch, on a thread of its own;
//! - [`objects`]: Kubernetes objects parsed, one parser per kind that has facts to read;
//! - [`nodes`]: every node's runtime read in parallel, within a deadline;
//! - [`runtime`]: the seam to a node's runtime, and the Docker Engine API behind it;
//! - [`status`]: per-source health for `/status`.
//!
//! Which kinds are listed is the table of kinds' business. A source that fails is reported
//! in the status and skipped, never fatal: a kind whose list or watch fails keeps what it
//! last held (the graph would otherwise lose its skeleton), a failed node loses that node's
//! containers until it answers again.

pub mod agentless;
pub mod extra;
pub mod kube;
pub(crate) mod nodes;
pub mod objects;
pub mod runtime;
pub(crate) mod status;
pub mod watch;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crossbeam_channel::Receiver;

use crate::graph::diff::GraphDiff;
use crate::graph::observed::NodeContainers;
use crate::graph::observed::{Collected, KubeObject, KubeState};
use crate::graph::update::{Basis, Kept, Updated};
use crate::graph::{self, BuildOptions, History, Kind};
use crate::http::ClientConfig;
use crate::publish::snapshot::{self, Snapshot};
use crate::publish::{Published, Shared};
use extra::{ExtraKinds, GroupVersionResource};
use kube::KubeClient;
use nodes::{NodeCache, NodeContext};
use runtime::cache::ImageCache;
use runtime::RuntimeOptions;
use status::{BuildCounts, CallCounts, CollectorStatus, Phases, SourceStatus};
use watch::Watches;

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
    /// How long the change log keeps changes (`--history`).
    pub history: Duration,
    pub cluster_name: String,
    /// The `/version` string, stamped on every resource and relation as `createdBy`.
    pub created_by: String,
    /// Kinds to list beyond the table's, named at start-up.
    pub extra_kinds: Vec<GroupVersionResource>,
}

pub(crate) struct Collector {
    config: CollectorConfig,
    shared: Arc<Shared>,
    /// Every listed kind's list and watch.
    watches: Watches,
    /// Kinds listed at least once: a later 403 or 404 is a failure, not a kind to pass over.
    listed_once: HashSet<Kind>,
    /// Whether a kind's failure is one to pass over, by the failure's message: asked of
    /// discovery once per message, not at every build.
    pass_over: HashMap<Kind, (String, Option<String>)>,
    /// The `--extra-kinds` kinds discovery has not named yet.
    extra: ExtraKinds,
    node_caches: HashMap<String, NodeCache>,
    /// What the last graph was made from (its node readings first, then what pods'
    /// statuses told of the other nodes), with the sequence of the snapshot that shows it
    /// (0 until that snapshot is made): the next graph is made from it where it can be.
    basis: Option<(Basis, u64)>,
    /// How many of the basis' nodes were read from their runtimes.
    nodes_read: usize,
    /// How the graphs so far were made.
    builds: BuildCounts,
    /// The last refresh's node readings (runtimes only), and the nodes it could not read:
    /// what a build between refreshes uses.
    last_nodes: (Vec<NodeContainers>, Vec<String>),
    /// What pods' statuses told of nodes no runtime was read for, kept for the next build.
    learnt: agentless::Learnt,
    /// Kubernetes calls made since the last refresh, counted at the next.
    pending_calls: CallCounts,
    /// The watches' generation the last build read: when it is still the same and there are
    /// no node readings, a refresh has nothing new to build.
    built_generation: Option<u64>,
    images: Arc<ImageCache>,
    history: History,
    refresh: u64,
    sequence: u64,
    /// The threads the next refresh starts reading nodes with (`--node-parallelism auto`).
    node_threads: usize,
}

/// A graph, made from the last one or built whole.
enum Made {
    Whole(graph::Graph),
    Updated(Updated),
}

/// After a watch brings a change, how long to gather more before building (counted from
/// that change): a rollout changes many objects at once.
const GATHER: Duration = Duration::from_millis(200);

/// How long the first refresh waits for every kind's first list, so that it reads the
/// nodes the list names rather than none.
const FIRST_LISTS: Duration = Duration::from_secs(30);

fn now_ms() -> i64 {
    cluster_insight_wire::time::now_millis()
}

impl Collector {
    pub(crate) fn new(config: CollectorConfig, shared: Arc<Shared>) -> Collector {
        let extra = ExtraKinds::new(&config.extra_kinds);
        let interval = config.refresh_interval;
        shared.update_status(|status| status.refresh_interval = interval);
        // As discovery for extra kinds: a kind that is not served is asked again every six
        // refreshes.
        let watches = Watches::new(config.kube.clone(), config.show_env, interval * 6);
        let first_sequence = u64::try_from(now_ms())
            .unwrap_or(0)
            .max(shared.restored_sequence());
        Collector {
            config,
            shared,
            watches,
            listed_once: HashSet::new(),
            pass_over: HashMap::new(),
            extra,
            node_caches: HashMap::new(),
            basis: None,
            nodes_read: 0,
            builds: BuildCounts::default(),
            last_nodes: (Vec::new(), Vec::new()),
            learnt: agentless::Learnt::default(),
            pending_calls: CallCounts::default(),
            built_generation: None,
            images: Arc::new(ImageCache::default()),
            history: History::default(),
            refresh: 0,
            // Sequences go on from the time this process started, so that one a client
            // kept from an earlier process is older than any of this one's (the change feed
            // then says 410, rather than answering with changes the client never saw); and
            // after the last one the history on disk holds, whatever the clock says.
            sequence: first_sequence,
            node_threads: nodes::AUTO_MIN,
        }
    }

    /// Refreshes every interval, and builds again between refreshes when a watch brings a
    /// change, until `stop` receives or is dropped.
    pub(crate) fn run(mut self, stop: Receiver<()>) {
        let mut next_refresh = Instant::now();
        loop {
            let full = Instant::now() >= next_refresh;
            let started = Instant::now();
            if full {
                next_refresh = started + self.config.refresh_interval;
            }
            // A bug met while refreshing must not end the collector: the last snapshot
            // stays published and the next refresh starts from scratch.
            if catch_unwind(AssertUnwindSafe(|| self.refresh_once(full))).is_err() {
                log::error!(
                    "refresh {} failed with a panic; retrying at the next interval",
                    self.refresh
                );
                if full {
                    self.node_caches.clear();
                }
                // What the graph was made from may be half changed: the next is built whole.
                self.basis = None;
            }
            let wait = next_refresh.saturating_duration_since(Instant::now());
            crossbeam_channel::select! {
                recv(stop) -> _ => return,
                recv(self.watches.changed()) -> _ => {
                    // Gather what else comes with it, unless the refresh is due first. The
                    // gathering starts with the first change: one that came during the last
                    // build has waited through it already.
                    let gather = GATHER
                        .saturating_sub(self.watches.waited())
                        .min(next_refresh.saturating_duration_since(Instant::now()));
                    if stop.recv_timeout(gather).is_ok() {
                        return;
                    }
                }
                default(wait) => {}
            }
        }
    }

    /// Waits until every listed kind has been listed or has failed, for at most `limit`.
    fn wait_for_first_lists(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        loop {
            let pending = Kind::listed().any(|kind| {
                self.watches
                    .peek(kind)
                    .is_some_and(|(synced, failed)| !synced && !failed)
            });
            if !pending {
                return;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            let _ = self
                .watches
                .changed()
                .recv_timeout(left.min(Duration::from_millis(100)));
        }
    }

    /// One build: with `full`, a refresh (every node read again), else a build from what
    /// the watches hold now and the last refresh's node readings. Then render and publish.
    pub(crate) fn refresh_once(&mut self, full: bool) -> Arc<Snapshot> {
        let started = Instant::now();
        let start_ms = now_ms();
        let published = self.shared.published();
        let previous = Arc::clone(&published.status);
        let mut kube_status = previous.kubernetes.clone();
        let mut node_status = previous.nodes.clone();

        if full {
            self.refresh += 1;
            self.extra
                .discover(&self.config.kube, self.refresh, start_ms, &mut kube_status);
        }
        self.watches.ensure();
        if self.refresh == 1 && full {
            self.wait_for_first_lists(FIRST_LISTS.min(self.config.kube.request_timeout() * 2));
        }
        // A quiet cluster without node agents: nothing to read, nothing to build; the
        // snapshot stands and the status says when it was confirmed.
        let generation = self.watches.take_generation();
        if full
            && self.built_generation == Some(generation)
            && matches!(self.config.runtimes, RuntimeSource::Disabled)
        {
            if let Some(snapshot) = published.snapshot.clone() {
                for entry in kube_status.values_mut() {
                    entry.confirm(start_ms);
                }
                let status = CollectorStatus {
                    refreshes: previous.refreshes + 1,
                    last_refresh_start_ms: Some(start_ms),
                    last_refresh_duration: started.elapsed(),
                    calls: std::mem::take(&mut self.pending_calls),
                    phases: Phases::default(),
                    kubernetes: kube_status,
                    ..(*previous).clone()
                };
                self.publish(&snapshot, status, None);
                log::debug!("refresh {}: nothing changed", self.refresh);
                return snapshot;
            }
        }
        let mut phases = Phases::default();
        let mut phase = Instant::now();
        let mut lap = |into: &mut u64| {
            *into = phase.elapsed().as_millis() as u64;
            phase = Instant::now();
        };
        let kube = self.collect_kube(start_ms, &mut kube_status);
        self.built_generation = Some(generation);
        lap(&mut phases.kubernetes_ms);
        if !full {
            return self.build_between_refreshes(kube, kube_status, start_ms, &published);
        }
        let mut calls = std::mem::take(&mut self.pending_calls);
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
        // Kept for the builds until the next refresh (a build that fails leaves them too).
        self.last_nodes = (read.nodes.clone(), read.unread.clone());
        let made = self.build(kube, read.nodes, read.unread, published.snapshot.as_deref());
        lap(&mut phases.build_ms);
        let (snapshot, diff) = self.snapshot_of(made, published.snapshot);
        lap(&mut phases.render_ms);

        let duration = started.elapsed();
        let failed_nodes = node_status.values().filter(|s| !s.ok).count();
        let status = CollectorStatus {
            refreshes: previous.refreshes + 1,
            builds: self.builds,
            kube_updates: previous.kube_updates,
            last_kube_update_ms: previous.last_kube_update_ms,
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
        self.publish(&snapshot, status, diff);
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

    /// The graph of `kube` and the node readings `nodes` (nodes no runtime was read for
    /// get theirs from their pods' statuses): made from the last graph (`last`, when the
    /// basis is its) where `graph::update` follows what changed, else built whole. Either
    /// becomes the basis of the next.
    fn build(
        &mut self,
        kube: KubeState,
        mut nodes: Vec<NodeContainers>,
        unread: Vec<String>,
        last: Option<&Snapshot>,
    ) -> Made {
        let read = nodes.len();
        nodes.extend(agentless::nodes_without_runtime(
            &kube,
            &nodes,
            &mut self.learnt,
        ));
        let mut collected = Collected {
            kube,
            nodes,
            unread_nodes: unread,
        };
        let now = now_ms();
        if let (Some(last), Some((basis, sequence))) = (last, self.basis.as_mut()) {
            if last.sequence == *sequence && self.nodes_read == read {
                match graph::update::update(&last.graph, basis, &mut self.history, collected, now) {
                    Ok(updated) => {
                        // Until the snapshot of this graph is made.
                        *sequence = 0;
                        match updated.kept {
                            Kept::AllBut(_) => self.builds.in_place += 1,
                            Kept::Moved { .. } => self.builds.spliced += 1,
                        }
                        return Made::Updated(updated);
                    }
                    Err(not) => {
                        log::debug!("building the graph whole: {}", not.why);
                        collected = not.collected;
                    }
                }
            }
        }
        let options = BuildOptions {
            cluster_name: self.config.cluster_name.clone(),
        };
        let (graph, history, basis) =
            graph::build_with_basis(collected, &options, now, &self.history);
        self.history = history;
        self.nodes_read = read;
        self.builds.whole += 1;
        // The snapshot's sequence is set once it is known (`snapshot_of`).
        self.basis = Some((basis, 0));
        Made::Whole(graph)
    }

    /// The snapshot of a graph, with its differences from `last` when they are known: the
    /// last one when the graph is unchanged, so that it keeps its sequence number and ETags
    /// (a client that has it gets 304, and nothing is serialized again), else a new one
    /// (written only where it changed, for a graph made from the last). A kind named since,
    /// by discovery, needs a body of its own: a new snapshot, written whole.
    fn snapshot_of(
        &mut self,
        made: Made,
        last: Option<Arc<Snapshot>>,
    ) -> (Arc<Snapshot>, Option<GraphDiff>) {
        let last = last.filter(|l| l.types_served() == Kind::queryable().count());
        let (snapshot, diff) = match (made, last) {
            (Made::Whole(graph), Some(last)) if last.graph.same_content(&graph) => (last, None),
            (Made::Updated(updated), Some(last)) if updated.same_as_last() => (last, None),
            (Made::Updated(updated), Some(last)) => {
                self.sequence += 1;
                let snapshot = snapshot::render_update(
                    &last,
                    updated.graph,
                    &updated.kept,
                    &self.config.created_by,
                    self.sequence,
                );
                (Arc::new(snapshot), Some(updated.diff))
            }
            (Made::Whole(graph) | Made::Updated(Updated { graph, .. }), _) => {
                self.sequence += 1;
                let snapshot = snapshot::render(graph, &self.config.created_by, self.sequence);
                (Arc::new(snapshot), None)
            }
        };
        if let Some((_, sequence)) = &mut self.basis {
            *sequence = snapshot.sequence;
        }
        (snapshot, diff)
    }

    /// Publishes `snapshot` with `status`. A graph made before any Kubernetes list has
    /// succeeded holds the Cluster alone: it is not served as if it were the cluster (the
    /// API says no snapshot yet, `/status` says why).
    fn publish(&self, snapshot: &Arc<Snapshot>, status: CollectorStatus, diff: Option<GraphDiff>) {
        let listed_ever = !self.listed_once.is_empty();
        self.shared.publish(
            Published {
                snapshot: listed_ever.then(|| Arc::clone(snapshot)),
                status: Arc::new(status),
            },
            now_ms(),
            diff,
        );
    }

    /// A build between refreshes: a watch brought a change; the nodes are as last read.
    fn build_between_refreshes(
        &mut self,
        kube: KubeState,
        kube_status: BTreeMap<String, SourceStatus>,
        start_ms: i64,
        published: &Published,
    ) -> Arc<Snapshot> {
        let started = Instant::now();
        // A copy: a build that fails leaves the last readings for the next.
        let (nodes, unread) = self.last_nodes.clone();
        let made = self.build(kube, nodes, unread, published.snapshot.as_deref());
        let built = started.elapsed();
        let (snapshot, diff) = self.snapshot_of(made, published.snapshot.clone());
        let rendered = started.elapsed();
        let previous = &published.status;
        let status = CollectorStatus {
            builds: self.builds,
            kube_updates: previous.kube_updates + 1,
            last_kube_update_ms: Some(start_ms),
            counts: snapshot.counts.clone(),
            kubernetes: kube_status,
            ..(**previous).clone()
        };
        self.publish(&snapshot, status, diff);
        log::debug!(
            "a watch brought a change: snapshot {} ({} resources, {} relations) in {} ms (graph {} ms, render {} ms, change log {} ms)",
            snapshot.sequence,
            snapshot.counts.resources.values().sum::<usize>(),
            snapshot.counts.relations.values().sum::<usize>(),
            started.elapsed().as_millis(),
            built.as_millis(),
            (rendered - built).as_millis(),
            (started.elapsed() - rendered).as_millis(),
        );
        snapshot
    }

    /// What every listed kind's watch holds now. A kind that was never listed and answers
    /// 403, or 404 with discovery agreeing, is passed over; one that fails after it was
    /// listed keeps what it held, reported as a failure.
    fn collect_kube(&mut self, now: i64, status: &mut BTreeMap<String, SourceStatus>) -> KubeState {
        let client = &self.config.kube;
        let endpoint = client.base_url().to_string();
        let mut kube = KubeState::default();
        for kind in Kind::listed() {
            let name = kind.info().plural;
            let entry = status.entry(kind.status_key()).or_default();
            let Some(reading) = self.watches.read(kind) else {
                entry.record(
                    now,
                    endpoint.clone(),
                    Err(format!("no watch of {name} runs")),
                );
                continue;
            };
            self.pending_calls.kube_pages += reading.pages;
            self.pending_calls.kube_events += reading.events as usize;
            entry.watch = Some(reading.status);
            if reading.synced {
                self.listed_once.insert(kind);
                match reading.error {
                    None => {
                        entry.record(now, endpoint.clone(), Ok(reading.objects.len()));
                        entry.failed_calls = 0;
                    }
                    Some(ListError { message, .. }) => {
                        if entry.ok {
                            log::warn!(
                                "Kubernetes API: {message}; keeping the last good list of {name}"
                            );
                        }
                        entry.record(now, endpoint.clone(), Err(message));
                        entry.failed_calls = 1;
                    }
                }
                kube.set(kind, reading.objects);
                continue;
            }
            match reading.error {
                None => entry.record(
                    now,
                    endpoint.clone(),
                    Err(format!("{name}: not listed yet")),
                ),
                Some(error) => {
                    let pass_over = if self.listed_once.contains(&kind) {
                        None
                    } else {
                        match self.pass_over.get(&kind) {
                            Some((message, why)) if *message == error.message => why.clone(),
                            _ => {
                                let why = why_pass_over(client, kind, &error);
                                self.pass_over
                                    .insert(kind, (error.message.clone(), why.clone()));
                                why
                            }
                        }
                    };
                    match pass_over {
                        Some(why) => {
                            if !entry.skipped {
                                log::warn!(
                                    "Kubernetes API: passing over {name}: {why} ({})",
                                    error.message
                                );
                            }
                            entry.record_skipped(
                                now,
                                endpoint.clone(),
                                format!("{why}: {}", error.message),
                            );
                        }
                        None => {
                            if entry.error.as_deref() != Some(error.message.as_str()) {
                                log::warn!(
                                    "Kubernetes API: {}; keeping the last good list of {name} (none yet)",
                                    error.message
                                );
                            }
                            entry.record(now, endpoint.clone(), Err(error.message));
                            entry.failed_calls = 1;
                        }
                    }
                }
            }
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

/// Why a list or watch could not be read, with the API server's status when it answered.
#[derive(Debug, Clone)]
pub(crate) struct ListError {
    pub(crate) message: String,
    pub(crate) status: Option<u16>,
}

/// A listed kind: its objects, the pages it took, its resource version, and how many of its
/// objects could not be read.
pub(crate) struct Listed {
    pub(crate) items: Vec<Arc<KubeObject>>,
    pub(crate) pages: usize,
    pub(crate) resource_version: Option<String>,
    pub(crate) skipped: usize,
}

/// A list, or why it could not be read.
type Fetched = Result<Listed, ListError>;

/// Lists `kind`; `show_env` keeps environment values and the last-applied annotation in.
pub(crate) fn fetch_list(
    client: &KubeClient,
    kind: Kind,
    last: Option<&[Arc<KubeObject>]>,
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
            None if show_env => objects::parse_object(kind, raw).map(Arc::new),
            None => objects::parse_object(kind, raw)
                .map(objects::without_secrets)
                .map(Arc::new),
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
    Ok(Listed {
        items: list.items,
        pages: list.pages,
        resource_version: list.resource_version,
        skipped: list.malformed_count,
    })
}
