//! Reading every node's container runtime, in parallel, each node within a deadline.
//!
//! Nodes are read by at most `--node-parallelism` threads. A node gets the refresh
//! interval (at least two call timeouts) to answer; past that it keeps what it gave and
//! the calls not made are reported, so a slow node never holds up the snapshot. A node that
//! cannot be read at all loses its containers until it answers again (the graph builder
//! remembers their timestamps meanwhile). What cannot have changed is not asked again
//! (see [`cache`](super::runtime::cache)).

use std::collections::{BTreeMap, HashMap};
use std::net::{IpAddr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::runtime::agent::{self, AgentAnswer, AgentMemory};
use super::runtime::cache::{CachedContainer, ImageCache};
use super::runtime::{self, NodeRuntime, RuntimeOptions};
use super::status::{CallCounts, SourceStatus};
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
    pub(crate) budget: Duration,
}

/// What reading the nodes gave: the containers of every node that answered, the names of
/// those that did not, the calls made.
pub(crate) struct NodesRead {
    pub nodes: Vec<NodeContainers>,
    pub(crate) unread: Vec<String>,
    pub(crate) calls: CallCounts,
}

/// Reads the runtime of every node of `nodes` (or of this host's node, for a local socket),
/// updating `status` and the per-node `caches`.
pub(crate) fn read_nodes(
    source: &RuntimeSource,
    nodes: &[KubeObject],
    parallelism: usize,
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
    let results = run_bounded(jobs, parallelism.max(1), |job| read_node(job, context));

    caches.clear();
    let mut read = NodesRead {
        nodes: Vec::with_capacity(results.len()),
        unread: Vec::new(),
        calls: CallCounts::default(),
    };
    for result in results {
        read.calls.add(&result.calls);
        let NodeOutcome {
            containers,
            error,
            failed_calls,
            runtime,
            note,
        } = result.outcome;
        let objects = containers.as_ref().map_or(0, |d| d.containers.len());
        let entry = status.entry(result.name.clone()).or_default();
        entry.record_partial(context.now_ms, result.endpoint, objects, error.clone());
        entry.failed_calls = failed_calls;
        entry.runtime = runtime;
        entry.note = note;
        if let Some(e) = &error {
            log::warn!("node {}: {e}", result.name);
        }
        if containers.is_none() {
            read.unread.push(result.name.clone());
        }
        caches.insert(result.name.clone(), result.cache);
        read.nodes.extend(containers);
    }
    context.images.forget_unused(context.refresh);
    read
}

/// With a local socket, the containers belong to this host's node: the only node, or the
/// one named like this host.
fn local_node_name(nodes: &[KubeObject]) -> String {
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

/// What one node gave: its containers (possibly only some of them) and, when something
/// went wrong, why.
struct NodeOutcome {
    containers: Option<NodeContainers>,
    error: Option<String>,
    failed_calls: usize,
    /// The runtime, as its agent names it.
    runtime: Option<String>,
    /// What the agent could not read, though the node answered.
    note: Option<String>,
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
                    containers: None,
                    error: Some(e),
                    failed_calls: 0,
                    runtime: None,
                    note: None,
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
            Ok(AgentAnswer::Node(read)) => Some(NodeOutcome {
                containers: Some(read.node),
                error: None,
                failed_calls: 0,
                runtime: Some(format!(
                    "{} {} ({})",
                    read.runtime.name, read.runtime.version, read.runtime.api
                )),
                note: read
                    .processes_error
                    .map(|e| format!("its agent reads no processes: {e}")),
            }),
            Ok(AgentAnswer::NotOffered) => {
                log::info!("node {name}: its agent does not serve /node; reading Docker calls");
                None
            }
            Err(e) => Some(NodeOutcome {
                containers: None,
                error: Some(chain(&e)),
                failed_calls: 1,
                runtime: None,
                note: None,
            }),
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
    if outcome.containers.is_none() {
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
    (outcome.containers, outcome.error)
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
        Err(e) => {
            return NodeOutcome {
                containers: None,
                error: Some(chain(&e)),
                failed_calls: 1,
                runtime: None,
                note: None,
            }
        }
    };
    let mut containers = Vec::with_capacity(listed.len());
    let mut fresh_cache = HashMap::with_capacity(listed.len());
    let mut image_ids: Vec<String> = Vec::new();
    let mut late = 0usize;
    // Calls that failed on their own (an inspect, processes, an image), the node answering.
    let mut failed = 0usize;
    for entry in &listed {
        let previous = cache.remove(&entry.id);
        let out_of_time = Instant::now() >= context.deadline;
        let current = match previous {
            Some(c) if c.still_current(entry, context.now_ms, context.refresh) => Some(c),
            // Past the node's deadline, what we knew stands in for what we would ask.
            Some(c) if out_of_time => Some(c),
            _ if out_of_time => None,
            previous => {
                calls.runtime_inspect += 1;
                match runtime.inspect(&entry.id) {
                    Ok(container) => Some(CachedContainer::new(container, entry, context.refresh)),
                    // Gone between the list and the inspect: it is no longer there to show.
                    Err(e) if e.is_not_found() => continue,
                    Err(e) => {
                        log::warn!("node {node}: {}", chain(&e));
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
            calls.runtime_processes += 1;
            match runtime.processes(&container) {
                Ok(rows) => rows.unwrap_or_default(),
                Err(e) => {
                    log::debug!("node {node}: {}", chain(&e));
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
            processes_omitted: 0,
        });
    }
    *cache = fresh_cache;

    let mut images = Vec::with_capacity(image_ids.len());
    for id in image_ids {
        if let Some(image) = context.images.get(&id, context.refresh) {
            images.push(image);
            continue;
        }
        if Instant::now() >= context.deadline {
            late += 1;
            continue;
        }
        calls.runtime_image += 1;
        match runtime.image(&id) {
            Ok(image) => {
                let image = Arc::new(image);
                context
                    .images
                    .insert(&id, Arc::clone(&image), context.refresh);
                images.push(image);
            }
            Err(e) => {
                log::debug!("node {node}: {}", chain(&e));
                failed += 1;
            }
        }
    }
    let error = (late > 0).then(|| {
        format!(
            "{} did not finish within {:?}: {late} call(s) not made; what was read is shown",
            runtime.endpoint(),
            context.budget
        )
    });
    NodeOutcome {
        containers: Some(NodeContainers {
            node_name: node.to_string(),
            containers,
            images,
            from_pod_status: false,
        }),
        error,
        failed_calls: failed,
        runtime: None,
        note: None,
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
pub(crate) fn forget_departed(status: &mut BTreeMap<String, SourceStatus>, nodes: &[KubeObject]) {
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
    fn bounded_runner_keeps_order_and_runs_everything() {
        let out = run_bounded((0..100).collect(), 7, |i: i32| i * 2);
        assert_eq!(out, (0..100).map(|i| i * 2).collect::<Vec<_>>());
        assert!(run_bounded(Vec::<i32>::new(), 4, |i| i).is_empty());
    }
}
