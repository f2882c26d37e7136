//! Reading every node's container runtime, in parallel, each node within a deadline.
//!
//! Nodes are read by `--node-parallelism` threads, by default as many as reading every node
//! within half the refresh interval takes at the time nodes have taken ([`run_paced`]). A
//! node gets the refresh interval (at least two call timeouts) to answer; what its deadline
//! cuts off is carried over from its last reading, marked with that reading's time, and
//! said in its status (`cut`), so a slow node never holds up the snapshot nor makes the
//! graph flap. A node that cannot be read at all loses its containers until it answers
//! again (the graph builder remembers their timestamps meanwhile). What cannot have changed
//! is not asked again (see [`cache`](super::runtime::cache)).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::runtime::agent::{self, AgentAnswer, AgentMemory};
use super::runtime::cache::{CachedContainer, ImageCache, ReadProcesses};
use super::runtime::{self, NodeRuntime, RuntimeOptions};
use super::status::{CallCounts, Collection, Shortfall, SourceStatus};
use crate::graph::observed::{KubeObject, NodeContainers, ObservedContainer};
use crate::graph::Kind;
use crate::http::{Client, Endpoint};
use crate::report::chain;

/// Where the nodes' runtimes are read.
#[derive(Debug, Clone)]
pub enum RuntimeSource {
    /// Each node's minion at `http://ADDRESS:port`.
    Agents { port: u16 },
    /// A local daemon's socket; its containers are this host's node's.
    LocalSocket(PathBuf),
    /// Kubernetes objects only.
    Disabled,
}

/// How many nodes are read at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeParallelism {
    /// Exactly this many.
    Fixed(usize),
    /// As many as it takes to read every node within half the refresh interval, at the
    /// time nodes have taken: measured during each refresh and carried to the next, from
    /// [`AUTO_MIN`] to [`AUTO_MAX`].
    Auto,
}

/// The fewest threads `auto` reads nodes with.
pub(crate) const AUTO_MIN: usize = 16;
/// The most threads `auto` reads nodes with: enough for 1,000 nodes read call by call
/// through Docker (about 4 s each at real daemons' latency) within 10 s.
pub(crate) const AUTO_MAX: usize = 512;

/// Per node, kept from one refresh to the next.
#[derive(Default)]
pub(crate) struct NodeCache {
    runtime: Option<(Endpoint, Arc<dyn NodeRuntime>)>,
    containers: HashMap<String, CachedContainer>,
    /// The node's agent, when it is read through one.
    agent: Option<(Endpoint, Arc<Client>)>,
    agent_memory: AgentMemory,
}

/// What every node worker of one refresh shares.
pub(crate) struct NodeContext {
    pub(crate) options: RuntimeOptions,
    pub images: Arc<ImageCache>,
    pub(crate) refresh: u64,
    pub(crate) now_ms: i64,
    /// No call is started after this.
    pub(crate) deadline: Instant,
    /// When every node should have been read: more threads are started when that would
    /// not be so.
    pub(crate) aim: Instant,
    pub(crate) budget: Duration,
}

/// What reading the nodes gave: the containers of every node that answered, the names of
/// those that did not, the calls made.
pub(crate) struct NodesRead {
    pub nodes: Vec<NodeContainers>,
    pub(crate) unread: Vec<String>,
    pub(crate) calls: CallCounts,
    /// How the nodes were read: threads, time per node.
    pub(crate) pace: Pace,
}

/// Reads the runtime of every node of `nodes` (or of this host's node, for a local socket),
/// updating `status` and the per-node `caches`; with [`NodeParallelism::Auto`], starting
/// with `threads` threads (the last refresh's [`Pace::next_threads`]).
pub(crate) fn read_nodes(
    source: &RuntimeSource,
    nodes: &[Arc<KubeObject>],
    parallelism: NodeParallelism,
    threads: usize,
    context: &NodeContext,
    caches: &mut HashMap<String, NodeCache>,
    status: &mut BTreeMap<String, SourceStatus>,
) -> NodesRead {
    let jobs: Vec<NodeJob> = match source {
        RuntimeSource::Disabled => Vec::new(),
        RuntimeSource::Agents { port } => nodes
            .iter()
            .map(|node| {
                let name = node.meta.name.clone();
                let host = node
                    .node()
                    .and_then(|n| n.address.clone())
                    .unwrap_or_else(|| name.clone());
                NodeJob {
                    target: NodeTarget::Host(host, *port),
                    cache: caches.remove(&name).unwrap_or_default(),
                    name,
                }
            })
            .collect(),
        RuntimeSource::LocalSocket(path) => {
            let name = local_node_name(nodes);
            vec![NodeJob {
                target: NodeTarget::Socket(path.clone()),
                cache: caches.remove(&name).unwrap_or_default(),
                name,
            }]
        }
    };
    // Nodes cut short last time are read first, so that what they could not give then they
    // give now, before anything else runs out of time. Their results go back into the
    // nodes' order: the graph lists containers in the order their nodes were read, and an
    // unchanged cluster must give the same graph.
    let mut jobs: Vec<(usize, NodeJob)> = jobs.into_iter().enumerate().collect();
    jobs.sort_by_key(|(_, job)| {
        !matches!(
            status.get(&job.name).map(|s| &s.collection),
            Some(Collection::Cut(_))
        )
    });
    let (first, max) = match parallelism {
        NodeParallelism::Fixed(n) => (n, n),
        NodeParallelism::Auto => (threads.clamp(AUTO_MIN, AUTO_MAX), AUTO_MAX),
    };
    let (mut results, pace) = run_paced(jobs, first, max, context.aim, |(position, job)| {
        (position, read_node(job, context))
    });
    results.sort_by_key(|(position, _)| *position);

    caches.clear();
    let mut read = NodesRead {
        nodes: Vec::with_capacity(results.len()),
        unread: Vec::new(),
        calls: CallCounts::default(),
        pace,
    };
    for (_, result) in results {
        read.calls.add(&result.calls);
        let NodeOutcome {
            read: node,
            failed_calls,
            runtime,
            note,
            shortfall,
        } = result.outcome;
        let entry = status.entry(result.name.clone()).or_default();
        entry.record(
            context.now_ms,
            result.endpoint,
            node.as_ref()
                .map(|n| n.containers.len())
                .map_err(Clone::clone),
        );
        entry.failed_calls = failed_calls;
        entry.runtime = runtime;
        entry.note = note;
        entry.collection = match (&node, shortfall) {
            (Err(_), _) => Collection::Failed,
            (Ok(_), None) => Collection::Complete,
            (Ok(_), Some(shortfall)) => {
                log::info!(
                    "node {}: not read in full within {:?}: {shortfall}; earlier readings stand in",
                    result.name,
                    context.budget
                );
                Collection::Cut(shortfall)
            }
        };
        caches.insert(result.name.clone(), result.cache);
        match node {
            Ok(node) => read.nodes.push(node),
            Err(e) => {
                log::warn!("node {}: {e}", result.name);
                read.unread.push(result.name);
            }
        }
    }
    context.images.forget_unused(context.refresh);
    read.pace = pace;
    read
}

/// With a local socket, the containers belong to this host's node: the only node, or the
/// one named like this host.
fn local_node_name(nodes: &[Arc<KubeObject>]) -> String {
    if let [only] = nodes {
        return only.meta.name.clone();
    }
    let host = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default();
    nodes
        .iter()
        .find(|n| n.meta.name == host || n.node().is_some_and(|f| f.hostname == host))
        .map_or(host, |n| n.meta.name.clone())
}

struct NodeJob {
    name: String,
    target: NodeTarget,
    cache: NodeCache,
}

/// Where a node's runtime is; names are resolved by the node's worker, so that a slow
/// name lookup holds up that node only.
enum NodeTarget {
    Host(String, u16),
    Socket(PathBuf),
}

struct NodeResult {
    name: String,
    endpoint: String,
    outcome: NodeOutcome,
    cache: NodeCache,
    calls: CallCounts,
}

/// What one node gave: its containers (what could not be read in time carried over from
/// earlier readings, see `shortfall`), or why nothing could be read.
struct NodeOutcome {
    read: Result<NodeContainers, String>,
    failed_calls: usize,
    /// The runtime, as its agent names it.
    runtime: Option<String>,
    /// What the agent could not read, though the node answered.
    note: Option<String>,
    /// What was not read in time, when something was not.
    shortfall: Option<Shortfall>,
}

impl NodeOutcome {
    /// Nothing could be read.
    fn failed(error: String) -> NodeOutcome {
        NodeOutcome {
            read: Err(error),
            failed_calls: 1,
            runtime: None,
            note: None,
            shortfall: None,
        }
    }
}

/// How often the runner looks at its progress to decide whether it needs more threads.
const PACE_TICK: Duration = Duration::from_millis(50);

/// What the runner did: the threads it used, the mean time a job took, and the threads it
/// would start with next time for jobs like these.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Pace {
    pub(crate) threads: usize,
    pub(crate) mean_job: Duration,
    pub(crate) next_threads: usize,
}

/// Runs `work` on every job, results in job order. It starts `threads` threads and, while
/// the jobs left would not be done by `aim` at the mean time a job has taken so far, adds
/// threads, at most twice as many at a time, up to `max`. It stops adding when the last
/// threads added made each job slower by more than half the ratio of threads: jobs that
/// wait for a slow peer take as long with more threads (and more finish a second), jobs
/// that wait for this machine's CPU take longer each (and no more finish). A panic in
/// `work` is raised again once every thread is done.
fn run_paced<J: Send, R: Send>(
    jobs: Vec<J>,
    threads: usize,
    max: usize,
    aim: Instant,
    work: impl Fn(J) -> R + Sync,
) -> (Vec<R>, Pace) {
    let count = jobs.len();
    let max = max.max(1).min(count.max(1));
    let started = Instant::now();
    let (job_tx, job_rx) = crossbeam_channel::unbounded();
    for job in jobs.into_iter().enumerate() {
        // The receiver is alive: it is right here.
        let _ = job_tx.send(job);
    }
    drop(job_tx);
    let (result_tx, result_rx) = crossbeam_channel::unbounded();
    let mut results: Vec<(usize, Option<R>)> = Vec::with_capacity(count);
    let mut busy = Duration::ZERO;
    let mut running = 0usize;
    // Jobs begun since the thread count last changed and done, and their time.
    let mut window = Window::new();
    // The thread count before the last growth and the mean time of a job then.
    let mut before_growth: Option<(usize, Duration)> = None;
    // Threads that helped no more: where growth stopped.
    let mut ceiling: Option<usize> = None;
    std::thread::scope(|s| {
        let spawn = |n: usize| {
            for _ in 0..n {
                let job_rx = job_rx.clone();
                let result_tx = result_tx.clone();
                let work = &work;
                s.spawn(move || {
                    for (i, job) in job_rx.iter() {
                        let began = Instant::now();
                        let result = catch_unwind(AssertUnwindSafe(|| work(job))).ok();
                        let failed = result.is_none();
                        let _ = result_tx.send((i, result, began, began.elapsed()));
                        if failed {
                            return;
                        }
                    }
                });
            }
        };
        running = threads.clamp(1, max).min(count);
        spawn(running);
        while results.len() < count {
            if let Ok((i, result, began, took)) = result_rx.recv_timeout(PACE_TICK) {
                let panicked = result.is_none();
                busy += took;
                if began >= window.started {
                    window.done += 1;
                    window.busy += took;
                }
                results.push((i, result));
                if panicked {
                    // Its thread is gone; what it would have done is left undone.
                    break;
                }
            }
            if running < max && ceiling.is_none() {
                let done = results.len();
                let left = aim.saturating_duration_since(Instant::now()).max(PACE_TICK);
                let wanted = if window.done >= (running / 2).max(4) {
                    let mean = window.mean();
                    match before_growth {
                        // Each job slower by over half the ratio of threads: they share
                        // the same CPU rather than wait for peers. Stop here.
                        Some((threads_before, mean_before))
                            if mean.as_secs_f64()
                                > mean_before.as_secs_f64()
                                    * (1.0
                                        + 0.5 * (running as f64 / threads_before as f64 - 1.0)) =>
                        {
                            ceiling = Some(threads_before);
                            running
                        }
                        _ => threads_for(count - done, mean, left),
                    }
                } else if done == 0
                    && started.elapsed() > aim.saturating_duration_since(started) / 4
                    && window.done == 0
                {
                    // Nothing done after a quarter of the time: more of the same, not a
                    // guess from the time spent.
                    running * 2
                } else {
                    running
                };
                let wanted = wanted.min(running * 2).min(max);
                if wanted > running {
                    // Without a job done there is nothing to compare the next ones with.
                    before_growth = (window.done > 0).then(|| (running, window.mean()));
                    spawn(wanted - running);
                    running = wanted;
                    window = Window::new();
                }
            }
        }
    });
    drop(result_tx);
    if results.len() < count || results.iter().any(|(_, r)| r.is_none()) {
        panic!("a node reader panicked");
    }
    let mean_job = if count > 0 {
        busy / count as u32
    } else {
        Duration::ZERO
    };
    let span = aim.saturating_duration_since(started).max(PACE_TICK);
    let wanted = threads_for(count, mean_job, span);
    let pace = Pace {
        threads: running,
        mean_job,
        next_threads: ceiling.map_or(wanted, |c| wanted.min(c)),
    };
    results.sort_by_key(|(i, _)| *i);
    let results = results.into_iter().filter_map(|(_, r)| r).collect();
    (results, pace)
}

/// Jobs begun since the thread count last changed, and done.
struct Window {
    started: Instant,
    done: usize,
    busy: Duration,
}

impl Window {
    fn new() -> Window {
        Window {
            started: Instant::now(),
            done: 0,
            busy: Duration::ZERO,
        }
    }

    fn mean(&self) -> Duration {
        self.busy / self.done.max(1) as u32
    }
}

/// Threads that do `jobs` jobs of `mean` each within `time`.
fn threads_for(jobs: usize, mean: Duration, time: Duration) -> usize {
    let work = mean.as_secs_f64() * jobs as f64;
    (work / time.as_secs_f64().max(1e-3)).ceil() as usize
}

fn read_node(job: NodeJob, context: &NodeContext) -> NodeResult {
    let mut calls = CallCounts::default();
    let NodeJob {
        name,
        target,
        mut cache,
    } = job;
    let is_agent = matches!(target, NodeTarget::Host(..));
    let resolved = match target {
        NodeTarget::Host(host, port) => resolve(&host, port),
        NodeTarget::Socket(path) => Ok(Endpoint::Unix(path)),
    };
    let endpoint = match resolved {
        Ok(endpoint) => endpoint,
        Err(e) => {
            return NodeResult {
                name,
                endpoint: String::new(),
                outcome: NodeOutcome {
                    failed_calls: 0,
                    ..NodeOutcome::failed(e)
                },
                cache,
                calls,
            }
        }
    };
    if is_agent && cache.agent_memory.worth_asking(context.refresh) {
        let client = match &cache.agent {
            Some((known, client)) if *known == endpoint => Arc::clone(client),
            _ => {
                let client = Arc::new(Client::new(
                    endpoint.clone(),
                    context.options.client.clone(),
                ));
                cache.agent = Some((endpoint.clone(), Arc::clone(&client)));
                // Another address may be another agent: what the last one did not serve,
                // this one may.
                cache.agent_memory = AgentMemory::default();
                client
            }
        };
        calls.agent_node += 1;
        let answer = agent::read(
            &client,
            &name,
            &mut cache.agent_memory,
            context.refresh,
            context.options.show_env,
        );
        let outcome = match answer {
            Ok(AgentAnswer::Node(read)) => {
                // What the agent itself carried over from its earlier readings.
                let mut shortfall = Shortfall::default();
                for c in &read.node.containers {
                    if let Some(read_ms) = c.stale_since_ms {
                        shortfall.carried_inspects += 1;
                        shortfall.note_reading(read_ms);
                    }
                }
                Some(NodeOutcome {
                    read: Ok(read.node),
                    failed_calls: 0,
                    runtime: Some(format!(
                        "{} {} ({})",
                        read.runtime.name, read.runtime.version, read.runtime.api
                    )),
                    note: read
                        .processes_error
                        .map(|e| format!("its agent reads no processes: {e}")),
                    shortfall: (!shortfall.is_empty()).then_some(shortfall),
                })
            }
            Ok(AgentAnswer::NotOffered) => {
                log::info!("node {name}: its agent does not serve /node; reading Docker calls");
                None
            }
            Err(e) => Some(NodeOutcome::failed(chain(&e))),
        };
        if let Some(outcome) = outcome {
            return NodeResult {
                name,
                endpoint: endpoint.to_string(),
                outcome,
                cache,
                calls,
            };
        }
    }
    let runtime = match &cache.runtime {
        Some((known, runtime)) if *known == endpoint => Arc::clone(runtime),
        _ => {
            let runtime = runtime::connect(endpoint.clone(), &context.options);
            cache.runtime = Some((endpoint.clone(), Arc::clone(&runtime)));
            runtime
        }
    };
    let outcome = read_containers(&name, &*runtime, &mut cache.containers, context, &mut calls);
    if outcome.read.is_err() {
        // A local socket may come to speak another protocol (a runtime started or replaced):
        // look again next time.
        cache.runtime = None;
    }
    NodeResult {
        name,
        endpoint: endpoint.to_string(),
        outcome,
        cache,
        calls,
    }
}

/// Reads one runtime call by call, as the node's agent reads its own: what it gave (`None`
/// when not even the list could be read), and why it is incomplete when it is.
pub(crate) fn read_runtime(
    node: &str,
    runtime: &dyn NodeRuntime,
    cache: &mut HashMap<String, CachedContainer>,
    context: &NodeContext,
) -> (Option<NodeContainers>, Option<String>) {
    let outcome = read_containers(node, runtime, cache, context, &mut CallCounts::default());
    let cut = outcome.shortfall.map(|shortfall| {
        format!(
            "{} did not finish within {:?}: {shortfall}; earlier readings stand in",
            runtime.endpoint(),
            context.budget
        )
    });
    match outcome.read {
        Ok(node) => (Some(node), cut),
        Err(e) => (None, Some(e)),
    }
}

fn read_containers(
    node: &str,
    runtime: &dyn NodeRuntime,
    cache: &mut HashMap<String, CachedContainer>,
    context: &NodeContext,
    calls: &mut CallCounts,
) -> NodeOutcome {
    calls.runtime_list += 1;
    let listed = match runtime.list() {
        Ok(listed) => listed,
        Err(e) => return NodeOutcome::failed(chain(&e)),
    };
    let out_of_time = || Instant::now() >= context.deadline;
    let mut shortfall = Shortfall::default();
    // Calls that failed on their own (an inspect, processes, an image), the node answering.
    let mut failed = 0usize;

    // What the containers are comes first: without an inspect a container is not shown.
    let mut current: Vec<CachedContainer> = Vec::with_capacity(listed.len());
    // Per container of `current`: when what is shown of it was read, if before this refresh.
    let mut stale_since: Vec<Option<i64>> = Vec::with_capacity(listed.len());
    for entry in &listed {
        let previous = cache.remove(&entry.id);
        let known = match previous {
            Some(c) if c.still_current(entry, context.now_ms, context.refresh) => c,
            // Out of time, what we knew stands in for what we would ask.
            Some(c) if out_of_time() => {
                shortfall.carried_inspects += 1;
                shortfall.note_reading(c.inspected_ms);
                stale_since.push(Some(c.inspected_ms));
                current.push(c);
                continue;
            }
            _ if out_of_time() => {
                shortfall.uninspected += 1;
                continue;
            }
            previous => {
                calls.runtime_inspect += 1;
                match runtime.inspect(&entry.id) {
                    Ok(container) => {
                        let mut fresh =
                            CachedContainer::new(container, entry, context.refresh, context.now_ms);
                        if let Some(previous) = previous {
                            fresh.keep_processes_of(previous);
                        }
                        fresh
                    }
                    // Gone between the list and the inspect: it is no longer there to show.
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        log::warn!("node {node}: {}", chain(&e));
                        failed += 1;
                        // Keep the last inspect we had rather than lose the container.
                        match previous {
                            Some(c) => c,
                            None => continue,
                        }
                    }
                }
            }
        };
        stale_since.push(None);
        current.push(known);
    }

    // Then processes, those read longest ago (or never) first, so that a node that cannot
    // be read in full within its time is read in full over a few refreshes.
    let mut order: Vec<usize> = (0..current.len())
        .filter(|&i| current[i].container.running)
        .collect();
    order.sort_by_key(|&i| current[i].processes.as_ref().map(|p| p.read_ms));
    for i in order {
        let c = &mut current[i];
        if out_of_time() {
            match &c.processes {
                Some(read) => {
                    shortfall.carried_processes += 1;
                    shortfall.note_reading(read.read_ms);
                    stale_since[i] = min_some(stale_since[i], Some(read.read_ms));
                }
                None => shortfall.unread_processes += 1,
            }
            continue;
        }
        calls.runtime_processes += 1;
        match runtime.processes(&c.container) {
            Ok(rows) => {
                c.processes = rows.map(|rows| ReadProcesses {
                    rows,
                    read_ms: context.now_ms,
                })
            }
            Err(e) => {
                log::debug!("node {node}: {}", chain(&e));
                failed += 1;
                c.processes = None;
            }
        }
    }

    // Last, images: an image is read once for the whole cluster and kept, while processes
    // are read anew every time.
    let mut image_ids: Vec<&str> = Vec::new();
    for c in &current {
        let id = c.container.image_id.as_str();
        if !id.is_empty() && !image_ids.contains(&id) {
            image_ids.push(id);
        }
    }
    let mut images = Vec::with_capacity(image_ids.len());
    for id in image_ids {
        if let Some(image) = context.images.get(id, context.refresh) {
            images.push(image);
            continue;
        }
        if out_of_time() {
            shortfall.unread_images += 1;
            continue;
        }
        calls.runtime_image += 1;
        match runtime.image(id) {
            Ok(image) => {
                let image = Arc::new(image);
                context
                    .images
                    .insert(id, Arc::clone(&image), context.refresh);
                images.push(image);
            }
            Err(e) => {
                log::debug!("node {node}: {}", chain(&e));
                failed += 1;
            }
        }
    }

    let mut containers = Vec::with_capacity(current.len());
    cache.clear();
    for (c, stale) in current.into_iter().zip(stale_since) {
        let processes = match (&c.processes, c.container.running) {
            (Some(read), true) => read.rows.clone(),
            _ => Vec::new(),
        };
        containers.push(ObservedContainer {
            container: Arc::clone(&c.container),
            processes,
            processes_omitted: 0,
            stale_since_ms: stale,
        });
        cache.insert(c.container.id.clone(), c);
    }
    NodeOutcome {
        read: Ok(NodeContainers {
            node_name: node.to_string(),
            containers,
            images,
            from_pod_status: false,
        }),
        failed_calls: failed,
        runtime: None,
        note: None,
        shortfall: (!shortfall.is_empty()).then_some(shortfall),
    }
}

/// The earlier of two times, either of which may be missing.
fn min_some(a: Option<i64>, b: Option<i64>) -> Option<i64> {
    match (a, b) {
        (Some(a), Some(b)) => Some(a.min(b)),
        (a, b) => a.or(b),
    }
}

/// `host` may be an IP address (v4 or v6) or a name.
fn resolve(host: &str, port: u16) -> Result<Endpoint, String> {
    if let Ok(ip) = host.parse::<IpAddr>() {
        return Ok(Endpoint::Tcp(SocketAddr::new(ip, port)));
    }
    (host, port)
        .to_socket_addrs()
        .map_err(|e| format!("cannot resolve {host}: {e}"))?
        .next()
        .map(Endpoint::Tcp)
        .ok_or_else(|| format!("{host} has no address"))
}

/// Nodes that are not (or not yet) in the cluster leave the status.
pub(crate) fn forget_departed(
    status: &mut BTreeMap<String, SourceStatus>,
    nodes: &[Arc<KubeObject>],
) {
    status.retain(|name, _| {
        nodes
            .iter()
            .any(|n| n.kind == Kind::NODE && &n.meta.name == name)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paced_runner_keeps_order_and_runs_everything() {
        let aim = Instant::now() + Duration::from_secs(10);
        let (out, pace) = run_paced((0..100).collect(), 7, 7, aim, |i: i32| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert_eq!(pace.threads, 7);
        let (out, pace) = run_paced(Vec::<i32>::new(), 4, 4, aim, |i| i);
        assert!(out.is_empty());
        assert_eq!(pace.next_threads, 0);
    }

    #[test]
    fn paced_runner_adds_threads_when_jobs_would_miss_the_aim() {
        // 40 jobs of 100 ms, to be done within 0.5 s: one thread would take 4 s.
        let aim = Instant::now() + Duration::from_millis(500);
        let began = Instant::now();
        let (out, pace) = run_paced((0..40).collect(), 1, 64, aim, |i: u64| {
            std::thread::sleep(Duration::from_millis(100));
            i
        });
        assert_eq!(out, (0..40).collect::<Vec<_>>());
        assert!(pace.threads >= 8, "{pace:?}");
        assert!(pace.threads <= 40, "never more threads than jobs: {pace:?}");
        assert!(began.elapsed() < Duration::from_secs(2), "{pace:?}");
        assert!(pace.mean_job >= Duration::from_millis(100));
        // Next time it starts with about what it needed: 4 s of work in 0.5 s.
        assert!((8..=40).contains(&pace.next_threads), "{pace:?}");
    }

    #[test]
    fn paced_runner_stops_adding_threads_that_only_share_the_cpu() {
        // Each job takes 4 ms times the jobs running at once, as jobs competing for one
        // CPU do: more threads finish no more jobs a second.
        let active = std::sync::atomic::AtomicUsize::new(0);
        let aim = Instant::now() + Duration::from_millis(200);
        let (out, pace) = run_paced((0..300).collect(), 2, 256, aim, |i: u64| {
            use std::sync::atomic::Ordering::SeqCst;
            let n = active.fetch_add(1, SeqCst) + 1;
            std::thread::sleep(Duration::from_millis(4) * n as u32);
            active.fetch_sub(1, SeqCst);
            i
        });
        assert_eq!(out.len(), 300);
        assert!(pace.threads <= 8, "{pace:?}");
        assert!(pace.next_threads <= 4, "{pace:?}");
    }

    #[test]
    fn paced_runner_stays_within_its_maximum() {
        let aim = Instant::now();
        let (_, pace) = run_paced((0..30).collect(), 1, 3, aim, |i: u64| {
            std::thread::sleep(Duration::from_millis(20));
            i
        });
        assert_eq!(pace.threads, 3);
    }

    #[test]
    #[should_panic(expected = "a node reader panicked")]
    fn a_panic_in_a_job_is_raised_again_once_the_threads_are_done() {
        let aim = Instant::now() + Duration::from_secs(1);
        run_paced((0..10).collect(), 2, 2, aim, |i: u64| {
            assert_ne!(i, 5, "job five fails");
            i
        });
    }
}
