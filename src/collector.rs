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
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crossbeam_channel::{Receiver, RecvTimeoutError};
use parking_lot::{Mutex, RwLock};
use serde_json::value::RawValue;

use crate::docker::{uptime_upper_bound_secs, DockerApi, DockerError, ListedContainer};
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
}

impl SourceStatus {
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

/// What `/status` shows about the collector.
#[derive(Debug, Clone, Default)]
pub struct CollectorStatus {
    pub refreshes: u64,
    pub last_refresh_start_ms: Option<i64>,
    pub last_refresh_duration: Duration,
    pub refresh_interval: Duration,
    pub calls: CallCounts,
    pub counts: Counts,
    /// By list: `nodes`, `pods`, `services`, `replicationcontrollers`.
    pub kubernetes: BTreeMap<String, SourceStatus>,
    /// By node name.
    pub nodes: BTreeMap<String, SourceStatus>,
}

/// What the collector publishes and the API reads.
#[derive(Default)]
pub struct Shared {
    pub snapshot: RwLock<Option<Arc<Snapshot>>>,
    pub status: RwLock<CollectorStatus>,
}

impl Shared {
    pub fn current(&self) -> Option<Arc<Snapshot>> {
        self.snapshot.read().clone()
    }
}

/// A container inspect kept while the container is known not to have changed.
struct CachedContainer {
    container: Arc<Container>,
    listed_state: String,
    started_at_ms: Option<i64>,
    inspected_in_refresh: u64,
}

/// Re-inspect every container at least this often, to catch changes the list cannot show
/// (health status, for example).
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
        shared.status.write().refresh_interval = config.refresh_interval;
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
            self.refresh_once();
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
        let mut kube_status = self.shared.status.read().kubernetes.clone();
        let mut node_status = self.shared.status.read().nodes.clone();

        let kube = self.collect_kube(start_ms, &mut kube_status, &mut calls);
        let docker = self.collect_docker(&kube.nodes, start_ms, &mut node_status, &mut calls);
        // Nodes that left the cluster leave the status too.
        node_status.retain(|name, _| kube.nodes.iter().any(|n| &n.object.meta.name == name));

        let collected = Collected { kube, docker };
        let options = BuildOptions {
            cluster_name: self.config.cluster_name.clone(),
        };
        let (graph, history) = graph::build(&collected, &options, now_ms(), &self.history);
        self.history = history;
        self.sequence += 1;
        let snapshot = Arc::new(snapshot::render(
            &graph,
            &self.config.created_by,
            self.sequence,
        ));
        drop(graph);
        drop(collected);

        *self.shared.snapshot.write() = Some(Arc::clone(&snapshot));
        let duration = started.elapsed();
        {
            let mut status = self.shared.status.write();
            status.refreshes += 1;
            status.last_refresh_start_ms = Some(start_ms);
            status.last_refresh_duration = duration;
            status.calls = calls;
            status.counts = snapshot.counts.clone();
            status.kubernetes = kube_status;
            status.nodes = node_status;
        }
        let failed_nodes = self
            .shared
            .status
            .read()
            .nodes
            .values()
            .filter(|s| !s.ok)
            .count();
        log::info!(
            "refresh {} took {} ms: {} resources, {} relations, {} Kubernetes pages, {} Docker calls{}",
            self.refresh,
            duration.as_millis(),
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
        let (nodes, pods, services, controllers) = std::thread::scope(|s| {
            let nodes = s.spawn(|| fetch_list(client, "/api/v1/nodes", model::parse_node));
            let pods = s.spawn(|| fetch_list(client, "/api/v1/pods", model::parse_pod));
            let services = s.spawn(|| fetch_list(client, "/api/v1/services", model::parse_service));
            let controllers = fetch_list(
                client,
                "/api/v1/replicationcontrollers",
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
    ) -> Vec<NodeDocker> {
        let jobs: Vec<NodeJob> = match &self.config.docker {
            DockerSource::Disabled => return Vec::new(),
            DockerSource::Minions { port } => nodes
                .iter()
                .map(|node| {
                    let name = node.object.meta.name.clone();
                    let host = node.address.clone().unwrap_or_else(|| name.clone());
                    let cache = self.node_caches.remove(&name).unwrap_or_default();
                    NodeJob {
                        endpoint: resolve(&host, *port),
                        name,
                        cache,
                    }
                })
                .collect(),
            DockerSource::Socket(path) => {
                let name = local_node_name(nodes);
                let cache = self.node_caches.remove(&name).unwrap_or_default();
                vec![NodeJob {
                    endpoint: Ok(http1::Endpoint::Unix(path.clone())),
                    name,
                    cache,
                }]
            }
        };
        let refresh = self.refresh;
        let context = NodeContext {
            client_config: self.config.docker_client.clone(),
            show_env: self.config.show_env,
            images: Arc::clone(&self.images),
            refresh,
            now_ms: now,
        };
        let results = run_bounded(jobs, self.config.node_parallelism.max(1), |job| {
            collect_node(job, &context)
        });

        self.node_caches.clear();
        let mut out = Vec::with_capacity(results.len());
        for result in results {
            calls.add(&result.calls);
            status.entry(result.name.clone()).or_default().record(
                now,
                result.endpoint,
                result
                    .outcome
                    .as_ref()
                    .map(|d| d.containers.len())
                    .map_err(Clone::clone),
            );
            if let Err(e) = &result.outcome {
                log::warn!("node {}: {e}", result.name);
            }
            self.node_caches.insert(result.name.clone(), result.cache);
            if let Ok(docker) = result.outcome {
                out.push(docker);
            }
        }
        // Forget images no container has used for a while.
        self.images
            .lock()
            .retain(|_, (_, seen)| refresh.saturating_sub(*seen) < INSPECT_MAX_AGE_REFRESHES);
        out
    }
}

type Fetched<T> = Result<(Vec<T>, usize), String>;

fn fetch_list<T>(
    client: &KubeClient,
    path: &str,
    parse: fn(&RawValue) -> Result<T, ParseError>,
) -> Fetched<T> {
    let list = client.list(path).map_err(|e| format!("GET {path}: {e}"))?;
    let mut out = Vec::with_capacity(list.items.len());
    let mut bad = 0usize;
    for item in &list.items {
        match parse(item) {
            Ok(object) => out.push(object),
            Err(e) => {
                bad += 1;
                if bad <= 3 {
                    log::warn!("GET {path}: skipping an object: {e}");
                }
            }
        }
    }
    if bad > 3 {
        log::warn!("GET {path}: skipped {bad} malformed objects in all");
    }
    Ok((out, list.pages))
}

fn join_list<T>(handle: std::thread::ScopedJoinHandle<'_, Fetched<T>>) -> Fetched<T> {
    handle
        .join()
        .unwrap_or_else(|_| Err("the list reader panicked".to_string()))
}

fn keep_last_good<T: Clone>(
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
            *last_good = Some(items.clone());
            items
        }
        Err(e) => {
            log::warn!("Kubernetes API: {e}; keeping the last good list of {name}");
            entry.record(now, endpoint.to_string(), Err(e));
            last_good.clone().unwrap_or_default()
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
    endpoint: Result<http1::Endpoint, String>,
    cache: NodeCache,
}

struct NodeContext {
    client_config: http1::ClientConfig,
    show_env: bool,
    images: Arc<ImageCache>,
    refresh: u64,
    now_ms: i64,
}

struct NodeResult {
    name: String,
    endpoint: String,
    outcome: Result<NodeDocker, String>,
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
        endpoint,
        mut cache,
    } = job;
    let endpoint = match endpoint {
        Ok(endpoint) => endpoint,
        Err(e) => {
            return NodeResult {
                name,
                endpoint: String::new(),
                outcome: Err(e),
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

fn collect_node_containers(
    node: &str,
    api: &DockerApi,
    cache: &mut NodeCache,
    context: &NodeContext,
    calls: &mut CallCounts,
) -> Result<NodeDocker, String> {
    calls.docker_list += 1;
    let listed = api
        .list_containers()
        .map_err(|e| format!("GET /containers/json at {}: {e}", api.endpoint()))?;
    let mut containers = Vec::with_capacity(listed.len());
    let mut fresh_cache = HashMap::with_capacity(listed.len());
    let mut image_ids: Vec<String> = Vec::new();
    for entry in &listed {
        let cached = cache
            .containers
            .remove(&entry.id)
            .filter(|c| still_current(c, entry, context));
        let cached = match cached {
            Some(c) => c,
            None => {
                calls.docker_inspect += 1;
                match api.inspect_container(&entry.id, context.show_env) {
                    Ok(container) => CachedContainer {
                        started_at_ms: parse_rfc3339_millis(&container.started_at),
                        container: Arc::new(container),
                        listed_state: entry.state.clone(),
                        inspected_in_refresh: context.refresh,
                    },
                    // Gone between the list and the inspect: it is no longer there to show.
                    Err(DockerError::Status { code: 404, .. }) => continue,
                    Err(e) => {
                        log::warn!("node {node}: inspect of container {}: {e}", entry.id);
                        continue;
                    }
                }
            }
        };
        let container = Arc::clone(&cached.container);
        fresh_cache.insert(entry.id.clone(), cached);
        let processes = if container.running {
            calls.docker_top += 1;
            match api.top(&container.id) {
                Ok(rows) => rows,
                Err(DockerError::Status {
                    code: 404 | 409, ..
                }) => Vec::new(),
                Err(e) => {
                    log::debug!("node {node}: top of container {}: {e}", container.id);
                    Vec::new()
                }
            }
        } else {
            Vec::new()
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
            Err(e) => log::debug!("node {node}: inspect of image {id}: {e}"),
        }
    }
    Ok(NodeDocker {
        node_name: node.to_string(),
        containers,
        images,
    })
}

/// Whether a cached inspect still describes the listed container: same state, not
/// restarted since (the list's "Up N units" must fit the start time we know), and not
/// older than the maximum age.
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
    if listed.state == "running" || listed.status.starts_with("Up ") {
        let (Some(bound), Some(started)) = (
            uptime_upper_bound_secs(&listed.status),
            cached.started_at_ms,
        ) else {
            return false;
        };
        let up_ms = context.now_ms - started;
        // Two seconds of slack for clocks and the time between the list and now.
        return up_ms <= (bound as i64) * 1000 + 2000;
    }
    true
}

/// The `/status` document.
pub fn status_json(status: &CollectorStatus, snapshot: Option<&Snapshot>, now: i64) -> String {
    let source = |s: &SourceStatus| {
        serde_json::json!({
            "status": if s.ok { "OK" } else { "ERROR" },
            "endpoint": s.endpoint,
            "error": s.error,
            "objects": s.objects,
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
        }
    }

    fn cached(started_at_ms: i64, state: &str, refresh: u64) -> CachedContainer {
        let container = model_container();
        CachedContainer {
            container: Arc::new(container),
            listed_state: state.to_string(),
            started_at_ms: Some(started_at_ms),
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
        let c = cached(now - 2 * hour, "running", 1);
        assert!(still_current(
            &c,
            &listed("running", "Up 2 hours"),
            &context(now, 2)
        ));
        // Restarted 5 seconds ago: the list says so, the cache does not.
        assert!(!still_current(
            &c,
            &listed("running", "Up 5 seconds"),
            &context(now, 2)
        ));
        assert!(!still_current(
            &c,
            &listed("exited", "Exited (0) 1 second ago"),
            &context(now, 2)
        ));
        assert!(!still_current(
            &c,
            &listed("running", "Up 2 hours"),
            &context(now, 31)
        ));
        let e = cached(0, "exited", 1);
        assert!(still_current(
            &e,
            &listed("exited", "Exited (1) 3 days ago"),
            &context(now, 2)
        ));
    }

    #[test]
    fn bounded_runner_keeps_order_and_runs_everything() {
        let out = run_bounded((0..100).collect(), 7, |i: i32| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_bounded(Vec::<i32>::new(), 4, |i| i).is_empty());
    }
}
