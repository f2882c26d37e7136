//! The collector: one thread that, every refresh interval, reads the Kubernetes API and
//! every node's Docker API, builds the graph and publishes a complete new snapshot.
//!
//! Nodes are read in parallel by a bounded number of threads. A source that fails is
//! reported in the status and skipped, never fatal: a failed Kubernetes list keeps the last
//! good copy of that list (the graph would otherwise lose its skeleton), a failed node loses
//! that node's containers until it answers again. What cannot change is cached: image
//! inspects by ID, container inspects by ID while the container has not been restarted, so
//! a steady cluster costs one list and one `top` per running container per refresh.

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::{Mutex, RwLock};
use serde_json::value::RawValue;

use crate::docker::{split_status, DockerApi, DockerError, ListedContainer};
use crate::graph::{self, BuildOptions, History};
use crate::http1;
use crate::kube::KubeClient;
use crate::model::{
    self, Collected, Container, Image, KubeState, Node, NodeDocker, ObservedContainer, ParseError,
};
use crate::snapshot::{self, Counts, Snapshot};
use crate::timefmt::{parse_rfc3339_millis, rfc3339_millis};

/// Where containers are read from.
#[derive(Debug, Clone)]
pub enum DockerSource {
    /// Each node's minion at `http://ADDRESS:port`.
    Minions { port: u16 },
    /// A local daemon's socket; its containers are this host's node's.
    Socket(PathBuf),
    /// Kubernetes objects only.
    Disabled,
}

#[derive(Clone)]
pub struct CollectorConfig {
    pub kube: KubeClient,
    pub docker: DockerSource,
    pub docker_client: http1::ClientConfig,
    pub node_parallelism: usize,
    pub show_env: bool,
    pub refresh_interval: Duration,
    pub cluster_name: String,
    /// The `/version` string, stamped on every resource and relation as `createdBy`.
    pub created_by: String,
}

/// The health of one source (the API server, or one node's Docker API).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SourceStatus {
    pub ok: bool,
    pub error: Option<String>,
    pub last_attempt_ms: i64,
    pub last_ok_ms: Option<i64>,
    /// Where the source was reached, for people reading `/status`.
    pub endpoint: String,
    /// Objects read from it in the last refresh (for a node: containers).
    pub objects: usize,
    /// Calls of the last refresh that failed while the source as a whole answered (a
    /// container's inspect or `top`, an image inspect).
    pub failed_calls: usize,
}

impl SourceStatus {
    /// A source that gave `objects` but may have failed part of the way (`error`).
    fn record_partial(
        &mut self,
        now_ms: i64,
        endpoint: String,
        objects: usize,
        error: Option<String>,
    ) {
        match error {
            None => self.record(now_ms, endpoint, Ok(objects)),
            Some(e) => {
                self.record(now_ms, endpoint, Err(e));
                self.objects = objects;
            }
        }
    }

    fn record(&mut self, now_ms: i64, endpoint: String, outcome: Result<usize, String>) {
        self.last_attempt_ms = now_ms;
        self.endpoint = endpoint;
        match outcome {
            Ok(objects) => {
                self.ok = true;
                self.error = None;
                self.last_ok_ms = Some(now_ms);
                self.objects = objects;
            }
            Err(e) => {
                self.ok = false;
                self.error = Some(e);
                self.objects = 0;
            }
        }
    }
}

/// Calls made by one refresh, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CallCounts {
    pub kube_pages: usize,
    pub docker_list: usize,
    pub docker_inspect: usize,
    pub docker_top: usize,
    pub docker_image: usize,
}

impl CallCounts {
    fn add(&mut self, other: &CallCounts) {
        self.kube_pages += other.kube_pages;
        self.docker_list += other.docker_list;
        self.docker_inspect += other.docker_inspect;
        self.docker_top += other.docker_top;
        self.docker_image += other.docker_image;
    }

    pub fn docker_total(&self) -> usize {
        self.docker_list + self.docker_inspect + self.docker_top + self.docker_image
    }
}

/// Where the time of one refresh went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Phases {
    pub kubernetes_ms: u64,
    pub docker_ms: u64,
    pub build_ms: u64,
    pub render_ms: u64,
}

/// What `/status` shows about the collector.
#[derive(Debug, Clone, Default)]
pub struct CollectorStatus {
    pub refreshes: u64,
    pub last_refresh_start_ms: Option<i64>,
    pub last_refresh_duration: Duration,
    pub refresh_interval: Duration,
    pub calls: CallCounts,
    pub phases: Phases,
    pub counts: Counts,
    /// By list: `nodes`, `pods`, `services`, `replicationcontrollers`.
    pub kubernetes: BTreeMap<String, SourceStatus>,
    /// By node name.
    pub nodes: BTreeMap<String, SourceStatus>,
}

/// What the collector publishes and the API reads: a snapshot and the status of the
/// refresh that made it, swapped in together so that no reader sees one without the other.
#[derive(Default)]
pub struct Shared {
    published: RwLock<Published>,
}

#[derive(Default, Clone)]
pub struct Published {
    pub snapshot: Option<Arc<Snapshot>>,
    pub status: Arc<CollectorStatus>,
}

impl Shared {
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.published.read().snapshot.clone()
    }

    /// The snapshot and its status, as one.
    pub fn published(&self) -> Published {
        self.published.read().clone()
    }

    fn status(&self) -> Arc<CollectorStatus> {
        Arc::clone(&self.published.read().status)
    }
}

/// A container inspect kept while the container is known not to have changed.
struct CachedContainer {
    container: Arc<Container>,
    listed_state: String,
    /// The list's status with its duration left out (`Up (healthy)`, `Exited (0) ago`).
    listed_shape: String,
    /// When the container entered its listed state: `StartedAt` while it runs, else
    /// `FinishedAt`.
    since_ms: Option<i64>,
    inspected_in_refresh: u64,
}

impl CachedContainer {
    fn new(container: Container, listed: &ListedContainer, refresh: u64) -> CachedContainer {
        let since = if container.running {
            &container.started_at
        } else {
            &container.finished_at
        };
        CachedContainer {
            since_ms: parse_rfc3339_millis(since),
            listed_shape: split_status(&listed.status).shape,
            listed_state: listed.state.clone(),
            container: Arc::new(container),
            inspected_in_refresh: refresh,
        }
    }
}

/// Re-inspect every container at least this often, to catch changes the list cannot show
/// (labels of a running container cannot change, but its inspect has more than the list).
const INSPECT_MAX_AGE_REFRESHES: u64 = 30;

/// Per node, kept from one refresh to the next.
#[derive(Default)]
struct NodeCache {
    api: Option<(http1::Endpoint, Arc<DockerApi>)>,
    containers: HashMap<String, CachedContainer>,
}

/// Images by ID, shared by all node workers: an image inspect never changes.
type ImageCache = Mutex<HashMap<String, (Arc<Image>, u64)>>;

pub struct Collector {
    config: CollectorConfig,
    shared: Arc<Shared>,
    last_good: KubeLists,
    node_caches: HashMap<String, NodeCache>,
    images: Arc<ImageCache>,
    history: History,
    refresh: u64,
    sequence: u64,
}

/// The last good copy of each list.
#[derive(Default)]
struct KubeLists {
    nodes: Option<Vec<Node>>,
    pods: Option<Vec<model::Pod>>,
    services: Option<Vec<model::Selecting>>,
    controllers: Option<Vec<model::Selecting>>,
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

impl Collector {
    pub fn new(config: CollectorConfig, shared: Arc<Shared>) -> Collector {
        Arc::make_mut(&mut shared.published.write().status).refresh_interval =
            config.refresh_interval;
        Collector {
            config,
            shared,
            last_good: KubeLists::default(),
            node_caches: HashMap::new(),
            images: Arc::new(Mutex::new(HashMap::new())),
            history: History::default(),
            refresh: 0,
            sequence: 0,
        }
    }

    /// Refreshes every interval until `stop` receives or is dropped.
    pub fn run(mut self, stop: Receiver<()>) {
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
    pub fn refresh_once(&mut self) -> Arc<Snapshot> {
        self.refresh += 1;
        let started = Instant::now();
        let start_ms = now_ms();
        let mut calls = CallCounts::default();
        let previous = self.shared.status();
        let mut kube_status = previous.kubernetes.clone();
        let mut node_status = previous.nodes.clone();

        let mut phases = Phases::default();
        let mut phase = Instant::now();
        let mut lap = |into: &mut u64| {
            *into = phase.elapsed().as_millis() as u64;
            phase = Instant::now();
        };
        let kube = self.collect_kube(start_ms, &mut kube_status, &mut calls);
        lap(&mut phases.kubernetes_ms);
        let docker = self.collect_docker(&kube.nodes, start_ms, &mut node_status, &mut calls);
        lap(&mut phases.docker_ms);
        // Nodes that left the cluster leave the status too.
        node_status.retain(|name, _| kube.nodes.iter().any(|n| &n.object.meta.name == name));

        let (docker, unread_nodes) = docker;
        let collected = Collected {
            kube,
            docker,
            unread_nodes,
        };
        let options = BuildOptions {
            cluster_name: self.config.cluster_name.clone(),
        };
        let (graph, history) = graph::build(&collected, &options, now_ms(), &self.history);
        self.history = history;
        lap(&mut phases.build_ms);
        self.sequence += 1;
        let snapshot = Arc::new(snapshot::render(
            graph,
            &self.config.created_by,
            self.sequence,
        ));

        // What was used is the last good copy of each list for the next refresh.
        let Collected { kube, .. } = collected;
        self.last_good = KubeLists {
            nodes: Some(kube.nodes),
            pods: Some(kube.pods),
            services: Some(kube.services),
            controllers: Some(kube.controllers),
        };
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
            counts: snapshot.counts.clone(),
            kubernetes: kube_status,
            nodes: node_status,
        };
        *self.shared.published.write() = Published {
            snapshot: Some(Arc::clone(&snapshot)),
            status: Arc::new(status),
        };
        log::info!(
            "refresh {} took {} ms (Kubernetes {} ms, Docker {} ms, graph {} ms, render {} ms): {} resources, {} relations, {} Kubernetes pages, {} Docker calls{}",
            self.refresh,
            duration.as_millis(),
            phases.kubernetes_ms,
            phases.docker_ms,
            phases.build_ms,
            phases.render_ms,
            snapshot.counts.resources.values().sum::<usize>(),
            snapshot.counts.relations.values().sum::<usize>(),
            calls.kube_pages,
            calls.docker_total(),
            if failed_nodes > 0 {
                format!(", {failed_nodes} node(s) failed")
            } else {
                String::new()
            }
        );
        snapshot
    }

    fn collect_kube(
        &mut self,
        now: i64,
        status: &mut BTreeMap<String, SourceStatus>,
        calls: &mut CallCounts,
    ) -> KubeState {
        let client = &self.config.kube;
        let endpoint = client.base_url().to_string();
        // The four lists are independent: read them at once.
        let last = &self.last_good;
        let (nodes, pods, services, controllers) = std::thread::scope(|s| {
            let nodes = s.spawn(|| {
                fetch_list(
                    client,
                    "/api/v1/nodes",
                    last.nodes.as_deref(),
                    model::parse_node,
                )
            });
            let pods = s.spawn(|| {
                fetch_list(
                    client,
                    "/api/v1/pods",
                    last.pods.as_deref(),
                    model::parse_pod,
                )
            });
            let services = s.spawn(|| {
                fetch_list(
                    client,
                    "/api/v1/services",
                    last.services.as_deref(),
                    model::parse_service,
                )
            });
            let controllers = fetch_list(
                client,
                "/api/v1/replicationcontrollers",
                last.controllers.as_deref(),
                model::parse_controller,
            );
            (
                join_list(nodes),
                join_list(pods),
                join_list(services),
                controllers,
            )
        });
        KubeState {
            nodes: keep_last_good(
                "nodes",
                nodes,
                &mut self.last_good.nodes,
                status,
                now,
                &endpoint,
                calls,
            ),
            pods: keep_last_good(
                "pods",
                pods,
                &mut self.last_good.pods,
                status,
                now,
                &endpoint,
                calls,
            ),
            services: keep_last_good(
                "services",
                services,
                &mut self.last_good.services,
                status,
                now,
                &endpoint,
                calls,
            ),
            controllers: keep_last_good(
                "replicationcontrollers",
                controllers,
                &mut self.last_good.controllers,
                status,
                now,
                &endpoint,
                calls,
            ),
        }
    }

    fn collect_docker(
        &mut self,
        nodes: &[Node],
        now: i64,
        status: &mut BTreeMap<String, SourceStatus>,
        calls: &mut CallCounts,
    ) -> (Vec<NodeDocker>, Vec<String>) {
        let jobs: Vec<NodeJob> = match &self.config.docker {
            DockerSource::Disabled => return (Vec::new(), Vec::new()),
            DockerSource::Minions { port } => nodes
                .iter()
                .map(|node| {
                    let name = node.object.meta.name.clone();
                    let host = node.address.clone().unwrap_or_else(|| name.clone());
                    let cache = self.node_caches.remove(&name).unwrap_or_default();
                    NodeJob {
                        target: NodeTarget::Host(host, *port),
                        name,
                        cache,
                    }
                })
                .collect(),
            DockerSource::Socket(path) => {
                let name = local_node_name(nodes);
                let cache = self.node_caches.remove(&name).unwrap_or_default();
                vec![NodeJob {
                    target: NodeTarget::Socket(path.clone()),
                    name,
                    cache,
                }]
            }
        };
        let refresh = self.refresh;
        // A node gets the refresh interval, and at least two call timeouts, to answer; a
        // node that takes longer keeps what it gave by then, and the rest of the cluster
        // is not held up by it.
        let node_budget = self
            .config
            .refresh_interval
            .max(self.config.docker_client.request_timeout * 2);
        let context = NodeContext {
            client_config: self.config.docker_client.clone(),
            show_env: self.config.show_env,
            images: Arc::clone(&self.images),
            refresh,
            now_ms: now,
            deadline: Instant::now() + node_budget,
            node_budget,
        };
        let results = run_bounded(jobs, self.config.node_parallelism.max(1), |job| {
            collect_node(job, &context)
        });

        self.node_caches.clear();
        let mut out = Vec::with_capacity(results.len());
        let mut unread = Vec::new();
        for result in results {
            calls.add(&result.calls);
            let NodeOutcome {
                docker,
                error,
                failed_calls,
            } = result.outcome;
            let objects = docker.as_ref().map_or(0, |d| d.containers.len());
            let entry = status.entry(result.name.clone()).or_default();
            entry.record_partial(now, result.endpoint, objects, error.clone());
            entry.failed_calls = failed_calls;
            if let Some(e) = &error {
                log::warn!("node {}: {e}", result.name);
            }
            if docker.is_none() {
                unread.push(result.name.clone());
            }
            self.node_caches.insert(result.name.clone(), result.cache);
            out.extend(docker);
        }
        // Forget images no container has used for a while.
        self.images
            .lock()
            .retain(|_, (_, seen)| refresh.saturating_sub(*seen) < INSPECT_MAX_AGE_REFRESHES);
        (out, unread)
    }
}

type Fetched<T> = Result<(Vec<T>, usize), String>;

fn fetch_list<T: model::Observed>(
    client: &KubeClient,
    path: &str,
    last: Option<&[T]>,
    parse: fn(&RawValue) -> Result<T, ParseError>,
) -> Fetched<T> {
    let previous = model::Previous::new(last.unwrap_or_default());
    let list = client
        .list(path, |raw| match previous.find(raw.get()) {
            Some(unchanged) => Ok(unchanged),
            None => parse(raw),
        })
        .map_err(|e| format!("GET {path}: {e}"))?;
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

fn join_list<T>(handle: std::thread::ScopedJoinHandle<'_, Fetched<T>>) -> Fetched<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err("the list reader panicked".to_string()))
}

/// The list to use: the fresh one, or when it failed the last good one (moved out; the
/// collector puts what it used back after the build, so nothing is ever copied).
fn keep_last_good<T>(
    name: &str,
    fetched: Fetched<T>,
    last_good: &mut Option<Vec<T>>,
    status: &mut BTreeMap<String, SourceStatus>,
    now: i64,
    endpoint: &str,
    calls: &mut CallCounts,
) -> Vec<T> {
    let entry = status.entry(name.to_string()).or_default();
    match fetched {
        Ok((items, pages)) => {
            calls.kube_pages += pages;
            entry.record(now, endpoint.to_string(), Ok(items.len()));
            items
        }
        Err(e) => {
            log::warn!("Kubernetes API: {e}; keeping the last good list of {name}");
            entry.record(now, endpoint.to_string(), Err(e));
            last_good.take().unwrap_or_default()
        }
    }
}

/// `host` may be an IP address (v4 or v6) or a name.
fn resolve(host: &str, port: u16) -> Result<http1::Endpoint, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(http1::Endpoint::Tcp(SocketAddr::new(ip, port)));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .map(http1::Endpoint::Tcp)
        .ok_or_else(|| format!("{host} has no address"))
}

/// With a local socket, the containers belong to this host's node: the only node, or the
/// one named like this host.
fn local_node_name(nodes: &[Node]) -> String {
    if let [only] = nodes {
        return only.object.meta.name.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    nodes
        .iter()
        .find(|n| n.object.meta.name == host || n.hostname == host)
        .map_or(host, |n| n.object.meta.name.clone())
}

struct NodeJob {
    name: String,
    target: NodeTarget,
    cache: NodeCache,
}

/// Where a node's Docker API is; names are resolved by the node's worker, so that a slow
/// name lookup holds up that node only.
enum NodeTarget {
    Host(String, u16),
    Socket(PathBuf),
}

struct NodeContext {
    client_config: http1::ClientConfig,
    show_env: bool,
    images: Arc<ImageCache>,
    refresh: u64,
    now_ms: i64,
    /// No call is started after this.
    deadline: Instant,
    node_budget: Duration,
}

struct NodeResult {
    name: String,
    endpoint: String,
    outcome: NodeOutcome,
    cache: NodeCache,
    calls: CallCounts,
}

/// Runs `work` on every job with at most `parallelism` threads; results in job order.
fn run_bounded<J: Send, R: Send>(
    jobs: Vec<J>,
    parallelism: usize,
    work: impl Fn(J) -> R + Sync,
) -> Vec<R> {
    let count = jobs.len();
    let (job_tx, job_rx) = crossbeam_channel::unbounded();
    for job in jobs.into_iter().enumerate() {
        // The receiver is alive: it is right here.
        let _ = job_tx.send(job);
    }
    drop(job_tx);
    let (result_tx, result_rx) = crossbeam_channel::unbounded();
    std::thread::scope(|s| {
        for _ in 0..parallelism.min(count) {
            let job_rx = job_rx.clone();
            let result_tx = result_tx.clone();
            let work = &work;
            s.spawn(move || {
                for (i, job) in job_rx.iter() {
                    let _ = result_tx.send((i, work(job)));
                }
            });
        }
    });
    drop(result_tx);
    let mut results: Vec<(usize, R)> = result_rx.iter().collect();
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

fn collect_node(job: NodeJob, context: &NodeContext) -> NodeResult {
    let mut calls = CallCounts::default();
    let NodeJob {
        name,
        target,
        mut cache,
    } = job;
    let resolved = match target {
        NodeTarget::Host(host, port) => resolve(&host, port),
        NodeTarget::Socket(path) => Ok(http1::Endpoint::Unix(path)),
    };
    let endpoint = match resolved {
        Ok(endpoint) => endpoint,
        Err(e) => {
            return NodeResult {
                name,
                endpoint: String::new(),
                outcome: NodeOutcome {
                    docker: None,
                    error: Some(e),
                    failed_calls: 0,
                },
                cache,
                calls,
            }
        }
    };
    let api = match &cache.api {
        Some((known, api)) if *known == endpoint => Arc::clone(api),
        _ => {
            let client = http1::Client::new(endpoint.clone(), context.client_config.clone());
            let api = Arc::new(DockerApi::new(client));
            cache.api = Some((endpoint.clone(), Arc::clone(&api)));
            api
        }
    };
    let outcome = collect_node_containers(&name, &api, &mut cache, context, &mut calls);
    NodeResult {
        name,
        endpoint: endpoint.to_string(),
        outcome,
        cache,
        calls,
    }
}

/// What one node gave: its containers (possibly only some of them) and, when something
/// went wrong, why.
struct NodeOutcome {
    docker: Option<NodeDocker>,
    error: Option<String>,
    failed_calls: usize,
}

fn collect_node_containers(
    node: &str,
    api: &DockerApi,
    cache: &mut NodeCache,
    context: &NodeContext,
    calls: &mut CallCounts,
) -> NodeOutcome {
    calls.docker_list += 1;
    let listed = match api.list_containers() {
        Ok(listed) => listed,
        Err(e) => {
            return NodeOutcome {
                docker: None,
                error: Some(format!("GET /containers/json at {}: {e}", api.endpoint())),
                failed_calls: 1,
            }
        }
    };
    let mut containers = Vec::with_capacity(listed.len());
    let mut fresh_cache = HashMap::with_capacity(listed.len());
    let mut image_ids: Vec<String> = Vec::new();
    let mut late = 0usize;
    // Calls that failed on their own (an inspect, a top, an image), the node answering.
    let mut failed = 0usize;
    for entry in &listed {
        let previous = cache.containers.remove(&entry.id);
        let out_of_time = Instant::now() >= context.deadline;
        let current = match previous {
            Some(c) if still_current(&c, entry, context) => Some(c),
            // Past the node's deadline, what we knew stands in for what we would ask.
            Some(c) if out_of_time => Some(c),
            _ if out_of_time => None,
            previous => {
                calls.docker_inspect += 1;
                match api.inspect_container(&entry.id, context.show_env) {
                    Ok(container) => Some(CachedContainer::new(container, entry, context.refresh)),
                    // Gone between the list and the inspect: it is no longer there to show.
                    Err(DockerError::Status { code: 404, .. }) => continue,
                    Err(e) => {
                        log::warn!("node {node}: inspect of container {}: {e}", entry.id);
                        failed += 1;
                        // Keep the last inspect we had rather than lose the container.
                        previous
                    }
                }
            }
        };
        let Some(current) = current else {
            late += 1;
            continue;
        };
        let container = Arc::clone(&current.container);
        fresh_cache.insert(entry.id.clone(), current);
        let processes = if !container.running {
            Vec::new()
        } else if Instant::now() >= context.deadline {
            late += 1;
            Vec::new()
        } else {
            calls.docker_top += 1;
            match api.top(&container.id) {
                Ok(rows) => rows,
                Err(DockerError::Status {
                    code: 404 | 409, ..
                }) => Vec::new(),
                Err(e) => {
                    log::debug!("node {node}: top of container {}: {e}", container.id);
                    failed += 1;
                    Vec::new()
                }
            }
        };
        if !container.image_id.is_empty() && !image_ids.contains(&container.image_id) {
            image_ids.push(container.image_id.clone());
        }
        containers.push(ObservedContainer {
            container,
            processes,
        });
    }
    cache.containers = fresh_cache;

    let mut images = Vec::with_capacity(image_ids.len());
    for id in image_ids {
        if let Some((image, seen)) = context.images.lock().get_mut(&id) {
            *seen = context.refresh;
            images.push(Arc::clone(image));
            continue;
        }
        if Instant::now() >= context.deadline {
            late += 1;
            continue;
        }
        calls.docker_image += 1;
        match api.inspect_image(&id) {
            Ok(image) => {
                let image = Arc::new(image);
                context
                    .images
                    .lock()
                    .insert(id, (Arc::clone(&image), context.refresh));
                images.push(image);
            }
            Err(e) => {
                log::debug!("node {node}: inspect of image {id}: {e}");
                failed += 1;
            }
        }
    }
    let error = (late > 0).then(|| {
        format!(
            "{} did not finish within {:?}: {late} call(s) not made; what was read is shown",
            api.endpoint(),
            context.node_budget
        )
    });
    NodeOutcome {
        docker: Some(NodeDocker {
            node_name: node.to_string(),
            containers,
            images,
        }),
        error,
        failed_calls: failed,
    }
}

/// Whether a cached inspect still describes the listed container: same state, same status
/// apart from its duration (health, exit code), in that state since the time we know (the
/// list's "Up 2 hours" or "Exited (0) 3 days ago" must fit it), and not older than the
/// maximum age.
fn still_current(
    cached: &CachedContainer,
    listed: &ListedContainer,
    context: &NodeContext,
) -> bool {
    if cached.listed_state != listed.state
        || context.refresh.saturating_sub(cached.inspected_in_refresh) >= INSPECT_MAX_AGE_REFRESHES
    {
        return false;
    }
    let parts = split_status(&listed.status);
    if parts.shape != cached.listed_shape {
        return false;
    }
    match (parts.age_upper_bound_secs, cached.since_ms) {
        (Some(bound), Some(since)) => {
            let age_ms = context.now_ms.saturating_sub(since);
            // Two seconds of slack for clocks and the time between the list and now.
            let bound_ms = i64::try_from(bound)
                .unwrap_or(i64::MAX)
                .saturating_mul(1000);
            age_ms <= bound_ms.saturating_add(2000)
        }
        // No duration to check (a created container, an old daemon): state and shape decide.
        (None, _) => true,
        (Some(_), None) => false,
    }
}

/// The `/status` document.
pub fn status_json(status: &CollectorStatus, snapshot: Option<&Snapshot>, now: i64) -> String {
    let source = |s: &SourceStatus| {
        serde_json::json!({
            "status": if s.ok { "OK" } else { "ERROR" },
            "endpoint": s.endpoint,
            "error": s.error,
            "objects": s.objects,
            "failedCalls": s.failed_calls,
            "lastAttempt": rfc3339_millis(s.last_attempt_ms),
            "lastOk": s.last_ok_ms.map(rfc3339_millis),
        })
    };
    let kube_ok = !status.kubernetes.is_empty() && status.kubernetes.values().all(|s| s.ok);
    let nodes_failed = status.nodes.values().filter(|s| !s.ok).count();
    serde_json::json!({
        "success": true,
        "timestamp": rfc3339_millis(now),
        "snapshot": snapshot.map(|s| serde_json::json!({
            "sequence": s.sequence,
            "timestamp": rfc3339_millis(s.timestamp_ms),
            "ageSeconds": ((now - s.timestamp_ms).max(0) as f64) / 1000.0,
        })),
        "refresh": {
            "count": status.refreshes,
            "intervalSeconds": status.refresh_interval.as_secs_f64(),
            "lastStart": status.last_refresh_start_ms.map(rfc3339_millis),
            "lastDurationMs": status.last_refresh_duration.as_millis() as u64,
            "phasesMs": {
                "kubernetes": status.phases.kubernetes_ms,
                "docker": status.phases.docker_ms,
                "graph": status.phases.build_ms,
                "render": status.phases.render_ms,
            },
            "calls": {
                "kubernetesPages": status.calls.kube_pages,
                "dockerList": status.calls.docker_list,
                "dockerInspect": status.calls.docker_inspect,
                "dockerTop": status.calls.docker_top,
                "dockerImage": status.calls.docker_image,
            },
        },
        // From the snapshot itself: the collector swaps the snapshot before it updates the
        // status, so the status's copy may belong to the previous snapshot.
        "counts": {
            "resources": snapshot.map_or(&status.counts, |s| &s.counts).resources,
            "relations": snapshot.map_or(&status.counts, |s| &s.counts).relations,
        },
        "sources": {
            "kubernetes": {
                "status": if kube_ok { "OK" } else { "ERROR" },
                "lists": status.kubernetes.iter().map(|(k, v)| (k.clone(), source(v))).collect::<BTreeMap<_, _>>(),
            },
            "nodes": status.nodes.iter().map(|(k, v)| (k.clone(), source(v))).collect::<BTreeMap<_, _>>(),
            "nodesFailed": nodes_failed,
        },
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn context(now_ms: i64, refresh: u64) -> NodeContext {
        NodeContext {
            client_config: http1::ClientConfig::default(),
            show_env: false,
            images: Arc::new(Mutex::new(HashMap::new())),
            refresh,
            now_ms,
            deadline: Instant::now() + Duration::from_secs(60),
            node_budget: Duration::from_secs(60),
        }
    }

    fn cached(since_ms: i64, state: &str, status: &str, refresh: u64) -> CachedContainer {
        let container = model_container();
        CachedContainer {
            container: Arc::new(container),
            listed_state: state.to_string(),
            listed_shape: split_status(status).shape,
            since_ms: Some(since_ms),
            inspected_in_refresh: refresh,
        }
    }

    fn model_container() -> Container {
        crate::docker::parse_container_inspect(r#"{"Id":"abc"}"#, false).unwrap()
    }

    fn listed(state: &str, status: &str) -> ListedContainer {
        ListedContainer {
            id: "abc".into(),
            state: state.into(),
            status: status.into(),
        }
    }

    #[test]
    fn a_restart_invalidates_the_cached_inspect() {
        let hour = 3_600_000;
        let now = 100 * hour;
        let c = cached(now - 2 * hour, "running", "Up 2 hours", 1);
        let current = |c: &CachedContainer, state: &str, status: &str, refresh: u64| {
            still_current(c, &listed(state, status), &context(now, refresh))
        };
        assert!(current(&c, "running", "Up 2 hours", 2));
        // Restarted 5 seconds ago: the list says so, the cache does not.
        assert!(!current(&c, "running", "Up 5 seconds", 2));
        assert!(!current(&c, "exited", "Exited (0) 1 second ago", 2));
        // Health changed: the shape differs.
        assert!(!current(&c, "running", "Up 2 hours (unhealthy)", 2));
        // Too old an inspect.
        assert!(!current(&c, "running", "Up 2 hours", 31));
        // An absurd uptime from the network neither panics nor matches nonsense.
        assert!(current(&c, "running", "Up 18446744073709551615 years", 2));

        let e = cached(now - 50 * hour, "exited", "Exited (1) 2 days ago", 1);
        assert!(current(&e, "exited", "Exited (1) 2 days ago", 2));
        // Run again and exited again since: the age went down.
        assert!(!current(&e, "exited", "Exited (1) 5 seconds ago", 2));
        assert!(!current(&e, "exited", "Exited (0) 2 days ago", 2));
    }

    #[test]
    fn bounded_runner_keeps_order_and_runs_everything() {
        let out = run_bounded((0..100).collect(), 7, |i: i32| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_bounded(Vec::<i32>::new(), 4, |i| i).is_empty());
    }
}
