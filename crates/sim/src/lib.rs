//! The cluster simulator: a Kubernetes API and one Docker Engine API per node, served over
//! real HTTP on loopback, generated from a size ([`SimSpec`]) so that every count the
//! context graph must show is known in advance ([`Expected`]).
//!
//! It is used by the integration tests, by the benchmark (up to 1,000 nodes with Docker, or
//! 5,000 nodes and 150,000 pods without) and by the binary's `demo` mode. The Kubernetes API
//! listens on 127.0.0.1; node `i` listens on its own loopback address (127.0.1.1 upward, the
//! node's `InternalIP`), every node on the same port, as a master with one `--docker-port`
//! expects. The generated cluster covers the hard cases of the graph contract: the three
//! ways of matching a container to its pod, equal pod names in different namespaces,
//! services without selector or selecting nothing, pods selected by nothing, standalone
//! containers, pending pods, and images shared across nodes.
//!
//! Lists can be watched (`?watch=1`, with `resourceVersion`, bookmarks, `timeoutSeconds`
//! and label selectors, as `kubectl get -w` does): every mutation is an event in a log by
//! resource version (`watch.rs`).
//!
//! [`Faults`] makes the Kubernetes API or any node's Docker API refuse connections, hang,
//! answer slowly, fail with a status, or send malformed, truncated or cut-off bodies, also in
//! the middle of a watch; it drops every open watch, or compacts the watch history so that a
//! resumed watch gets a 410. The mutation methods of [`Simulator`] change the cluster between
//! two refreshes of a master.
//! Counts in [`Expected`] are derived from the generated objects by the rules of the
//! contract (docs/contract.md §3) — never by the project's own graph builder.
//!
//! [`Simulator::start_with_objects`] serves given Kubernetes objects instead of a generated
//! cluster (for pairing a real Docker daemon's containers with pods written for them).
//!
//! Which kinds the Kubernetes API serves, under which paths, with which short names, comes
//! from the project's table of kinds (`cluster-insight-kinds`); the HTTP grammar from its
//! wire crate (`cluster-insight-wire`). The server here is the simulator's own (see
//! `server.rs` for why).

mod access;
mod agent;
mod docker;
mod kube;
mod latency;
mod mangle;
mod model;
mod server;
mod table;
mod watch;
mod workloads;

use std::collections::BTreeMap;
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::Duration;

pub use self::latency::{NodeCall, NodeLatency};

use self::kube::KubeStore;
use self::model::Cluster;
use self::server::{FaultRule, Role, Shared, State};

/// The size and shape of a simulated cluster. Every count is exact: the cluster has
/// `nodes * pods_per_node` scheduled pods plus `unscheduled_pods` pending ones.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SimSpec {
    pub nodes: usize,
    pub pods_per_node: usize,
    /// Application containers per pod (each scheduled pod also has its pause container).
    pub containers_per_pod: usize,
    /// `top` rows per container (pause containers have at most one).
    pub processes_per_container: usize,
    pub namespaces: usize,
    pub services: usize,
    /// ReplicationControllers (the seed's controller kind).
    pub controllers: usize,
    /// Deployments, each with one ReplicaSet, a Service, an Ingress and an autoscaler.
    pub deployments: usize,
    /// StatefulSets; each of their pods has a claim bound to a volume of its own.
    pub statefulsets: usize,
    /// DaemonSets: each has one pod on every node.
    pub daemonsets: usize,
    /// CronJobs, each with the Job of its last run.
    pub cronjobs: usize,
    pub unscheduled_pods: usize,
    /// Containers outside Kubernetes on every node (no kubelet name, no labels).
    pub standalone_containers_per_node: usize,
    /// Distinct application images (the pause image and one untagged image come on top).
    pub images: usize,
    /// Serve the nodes' Docker APIs; without them there are no containers, images or processes.
    pub with_docker: bool,
    /// The last this many nodes run containerd: their agents answer `GET /node` only.
    pub containerd_nodes: usize,
    /// The agents of Docker nodes answer `GET /node` too (a current minion); without, only
    /// the Docker paths (an older one).
    pub node_documents: bool,
    /// How long each node API call takes (none by default; see [`NodeLatency::realistic`]).
    pub latency: NodeLatency,
    pub seed: u64,
}

impl Default for SimSpec {
    fn default() -> Self {
        SimSpec {
            nodes: 3,
            pods_per_node: 4,
            containers_per_pod: 2,
            processes_per_container: 2,
            namespaces: 2,
            services: 4,
            controllers: 2,
            deployments: 2,
            statefulsets: 1,
            daemonsets: 1,
            cronjobs: 1,
            unscheduled_pods: 1,
            standalone_containers_per_node: 1,
            images: 4,
            with_docker: true,
            containerd_nodes: 0,
            node_documents: false,
            latency: NodeLatency::none(),
            seed: 1,
        }
    }
}

/// A `KEY=true|false` value of a size.
fn flag(key: &str, value: &str) -> Result<bool, String> {
    match value.to_ascii_lowercase().as_str() {
        "true" | "on" | "yes" | "1" => Ok(true),
        "false" | "off" | "no" | "0" => Ok(false),
        _ => Err(format!("{key}: expected true or false, got {value:?}")),
    }
}

impl SimSpec {
    /// Parses `key=value` pairs separated by commas over the defaults, e.g.
    /// `nodes=10,pods-per-node=30,docker=false`. Keys (`-` or `_` alike): `nodes`,
    /// `pods-per-node`, `containers-per-pod`, `processes-per-container` (`processes`),
    /// `namespaces`, `services`, `controllers`, `deployments`, `statefulsets`, `daemonsets`,
    /// `cronjobs`, `unscheduled-pods` (`unscheduled`),
    /// `standalone-containers-per-node` (`standalone`), `images`, `docker`,
    /// `containerd-nodes` (`containerd`), `node-documents`, `seed`; and the nodes' latency:
    /// `latency=none|realistic`, `latency-list`, `latency-inspect`, `latency-top`,
    /// `latency-image`, `latency-node` (milliseconds, after `latency` in the list to change
    /// one of its values) and `jitter` (percent).
    /// An empty string or `default` gives the defaults.
    pub fn parse_size(s: &str) -> Result<SimSpec, String> {
        let mut spec = SimSpec::default();
        let s = s.trim();
        if s.is_empty() || s == "default" {
            return Ok(spec);
        }
        for pair in s.split(',').map(str::trim).filter(|p| !p.is_empty()) {
            let (key, value) = pair
                .split_once('=')
                .ok_or_else(|| format!("expected KEY=VALUE, got {pair:?}"))?;
            let key = key.trim().to_ascii_lowercase().replace('_', "-");
            let value = value.trim();
            let number = || {
                value
                    .parse::<usize>()
                    .map_err(|_| format!("{key}: not a count: {value:?}"))
            };
            match key.as_str() {
                "nodes" => spec.nodes = number()?,
                "pods-per-node" => spec.pods_per_node = number()?,
                "containers-per-pod" => spec.containers_per_pod = number()?,
                "processes-per-container" | "processes" => spec.processes_per_container = number()?,
                "namespaces" => spec.namespaces = number()?,
                "services" => spec.services = number()?,
                "controllers" => spec.controllers = number()?,
                "deployments" => spec.deployments = number()?,
                "statefulsets" => spec.statefulsets = number()?,
                "daemonsets" => spec.daemonsets = number()?,
                "cronjobs" => spec.cronjobs = number()?,
                "unscheduled-pods" | "unscheduled" => spec.unscheduled_pods = number()?,
                "standalone-containers-per-node" | "standalone" => {
                    spec.standalone_containers_per_node = number()?
                }
                "images" => spec.images = number()?,
                "containerd-nodes" | "containerd" => spec.containerd_nodes = number()?,
                "node-documents" => spec.node_documents = flag(&key, value)?,
                "seed" => {
                    spec.seed = value
                        .parse()
                        .map_err(|_| format!("seed: not a number: {value:?}"))?
                }
                "docker" => spec.with_docker = flag(&key, value)?,
                "latency" => {
                    spec.latency = match value {
                        "none" => NodeLatency::none(),
                        "realistic" => NodeLatency::realistic(),
                        _ => {
                            return Err(format!(
                                "latency: expected none or realistic, got {value:?}"
                            ))
                        }
                    }
                }
                "jitter" => {
                    spec.latency.jitter_percent = value
                        .parse()
                        .ok()
                        .filter(|p| *p <= 100)
                        .ok_or_else(|| format!("jitter: not a percent (0-100): {value:?}"))?
                }
                _ => {
                    let millis = |value: &str| {
                        value
                            .parse::<u64>()
                            .map(Duration::from_millis)
                            .map_err(|_| format!("{key}: not milliseconds: {value:?}"))
                    };
                    let known = match key.strip_prefix("latency-") {
                        Some(call) => spec.latency.set(call, millis(value)?),
                        None => false,
                    };
                    if !known {
                        return Err(format!("unknown size key {key:?}"));
                    }
                }
            }
        }
        spec.validate()?;
        Ok(spec)
    }

    /// Scheduled plus pending pods.
    pub fn total_pods(&self) -> usize {
        self.nodes * self.pods_per_node + self.unscheduled_pods
    }

    /// Checks that the spec describes a cluster the simulator can serve.
    pub fn validate(&self) -> Result<(), String> {
        if self.nodes > model::MAX_NODES {
            return Err(format!(
                "at most {} nodes fit in 127.0.0.0/8",
                model::MAX_NODES
            ));
        }
        if self.namespaces == 0 {
            return Err("namespaces must be at least 1".into());
        }
        if self.total_pods() > 0 && self.containers_per_pod == 0 {
            return Err("a pod needs at least one container".into());
        }
        if self.containers_per_pod > 0 && self.images == 0 {
            return Err("images must be at least 1 when pods have containers".into());
        }
        if self.total_pods() > 10_000_000 {
            return Err("more than 10,000,000 pods".into());
        }
        if self.nodes == 0 && self.pods_per_node > 0 {
            return Err("pods-per-node needs at least one node".into());
        }
        if self.containerd_nodes > self.nodes {
            return Err(format!(
                "containerd-nodes: {} of {} nodes",
                self.containerd_nodes, self.nodes
            ));
        }
        Ok(())
    }
}

/// What the context graph of the simulated cluster must contain. Keys with a zero count are
/// left out. `resources` is keyed by type (`Cluster`, `Node`, `Pod`, `Service`,
/// `ReplicationController`, `Container`, `Image`, `Process`); `relations` by
/// `"TYPE SourceType->TargetType"`, e.g. `"contains Pod->Container"`.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Expected {
    pub resources: BTreeMap<String, usize>,
    pub relations: BTreeMap<String, usize>,
}

/// Requests received since start, by kind (faulted requests included).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RequestCounts {
    /// Pages of list requests (`/api/v1/pods`, `/api/v1/namespaces/NS/services`, ...).
    pub kube_list_pages: u64,
    /// Single-object GETs (`/api/v1/namespaces/NS/pods/NAME`, `/api/v1/nodes/NAME`).
    pub kube_get: u64,
    /// Discovery, `/version` and unknown paths.
    pub kube_other: u64,
    /// Watch requests (`?watch=1` on a list).
    pub kube_watch: u64,
    pub docker_list: u64,
    pub docker_inspect: u64,
    pub docker_top: u64,
    pub docker_image: u64,
    /// `/version`, `/_ping` and unknown paths.
    pub docker_other: u64,
    /// The node agents' `GET /node`.
    pub node_document: u64,
}

/// A misbehaviour of one endpoint (the Kubernetes API or one node's Docker API).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Fault {
    /// Behave normally.
    None,
    /// Stop listening: connections are refused; open connections are closed.
    Refuse,
    /// Accept and read requests but never answer (until the fault is lifted, then close).
    Hang,
    /// Wait this long before answering normally.
    Slow(Duration),
    /// Answer with this status and a proper error body (a Kubernetes `Status`, or Docker's
    /// `{"message": ...}`).
    Status(u16),
    /// Answer 200 with a body that is not JSON.
    Malformed,
    /// Answer 200 with the first half of the proper body (Content-Length matches it).
    Truncated,
    /// Announce the full body, send half of it and close the connection.
    CloseMidBody,
    /// Answer 200 with the proper body, but known fields of one object have the wrong JSON
    /// type (a number for `metadata.name`, an array for `spec.nodeName`, a string for a
    /// container's `Config.Labels`, ...).
    WrongTypes,
    /// Answer 200 with a body of this many bytes that never closes its JSON, framed by the
    /// end of the connection (no `Content-Length`), generated while it is sent.
    Huge(usize),
    /// Answer 200 with every object of a list twice (Kubernetes items, Docker containers).
    Duplicate,
    /// Answer a Docker inspect or `top` with 404 "No such container" (or image), as for
    /// an object removed after it was listed.
    Vanish,
}

/// Switches faults of a running simulator; cheap to clone and usable from any thread.
/// Node indexes that do not exist are ignored.
#[derive(Clone)]
pub struct Faults {
    shared: Arc<Shared>,
}

impl Faults {
    fn endpoint_of(&self, role: Role) -> Option<usize> {
        self.shared.endpoints.iter().position(|e| e.role == role)
    }

    fn set(&self, role: Role, path_contains: &str, fault: Fault) {
        if let Some(index) = self.endpoint_of(role) {
            let rule = FaultRule {
                fault,
                path_contains: path_contains.to_string(),
            };
            self.shared.set_rule(index, rule);
        }
    }

    /// Applies `fault` to every request to the Kubernetes API, open watches included (they
    /// are dropped, and meet the fault when they come back). Switching to or from
    /// [`Fault::Refuse`] returns once the listener is closed or open again.
    pub fn set_kube(&self, fault: Fault) {
        let drops = fault != Fault::None;
        self.set(Role::Kube, "", fault);
        if drops {
            self.drop_watches();
        }
    }

    /// Applies `fault` to Kubernetes API requests whose path contains `path_contains`
    /// (e.g. `"/pods"`), open watches included; other requests are served normally.
    pub fn set_kube_on(&self, path_contains: &str, fault: Fault) {
        let drops = fault != Fault::None;
        self.set(Role::Kube, path_contains, fault);
        if drops {
            self.drop_watches();
        }
    }

    /// Forgets every watch event so far, as the API server's compaction does: a watch that
    /// resumes from an earlier version gets a 410 `Expired` event and must list again.
    pub fn compact_watch_history(&self) {
        let mut state = self.shared.write_state();
        state.cluster.rv += 1;
        let rv = state.cluster.rv;
        state.kube.events.compact(rv);
    }

    /// Closes every open watch, as a restarted API server or a dropped connection does.
    pub fn drop_watches(&self) {
        self.shared
            .watch_epoch
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
    }

    /// Applies `fault` to every request to node `node`'s Docker API.
    pub fn set_node(&self, node: usize, fault: Fault) {
        self.set(Role::Node(node), "", fault);
    }

    /// Applies `fault` to node `node`'s Docker API requests whose path contains
    /// `path_contains` (e.g. `"/top"`, `"/images/"`, or one container ID).
    pub fn set_node_on(&self, node: usize, path_contains: &str, fault: Fault) {
        self.set(Role::Node(node), path_contains, fault);
    }

    /// Lifts every fault.
    pub fn clear(&self) {
        for index in 0..self.shared.endpoints.len() {
            self.shared.set_rule(
                index,
                FaultRule {
                    fault: Fault::None,
                    path_contains: String::new(),
                },
            );
        }
    }

    /// Makes every continue token issued so far answer 410 `Expired`, as after the API
    /// server's storage compaction.
    pub fn expire_continue_tokens(&self) {
        let mut state = self.shared.write_state();
        state.cluster.rv += 1;
        state.kube.min_continue_rv = state.cluster.rv;
    }
}

/// A running simulated cluster. Stops on [`Simulator::shutdown`] or when dropped.
pub struct Simulator {
    shared: Arc<Shared>,
    acceptors: Vec<JoinHandle<()>>,
    kube_addr: SocketAddrV4,
    docker_port: u16,
    expected: Expected,
    spec: SimSpec,
}

impl Simulator {
    /// Generates the cluster and starts serving it on free ports.
    pub fn start(spec: SimSpec) -> std::io::Result<Simulator> {
        Simulator::start_on(spec, 0, 0)
    }

    /// Like [`Simulator::start`] on given ports (0: pick a free one). `docker_port` must be
    /// free on every node address.
    pub fn start_on(spec: SimSpec, kube_port: u16, docker_port: u16) -> std::io::Result<Simulator> {
        spec.validate()
            .map_err(|e| std::io::Error::new(std::io::ErrorKind::InvalidInput, e))?;
        let cluster = Cluster::generate(&spec);
        let kube = KubeStore::build(&cluster);
        Simulator::serve(spec, cluster, kube, kube_port, docker_port)
    }

    /// A Kubernetes API (no Docker APIs) on `kube_port` (0: a free one) that serves exactly
    /// the objects of `text`: a `List` (`{"items": [...]}`) or a JSON array of objects, each
    /// with its `kind`. Lists, single objects, paging and tables work as for a generated
    /// cluster. An object of a kind the table does not serve is refused.
    pub fn start_with_objects(text: &str, kube_port: u16) -> Result<Simulator, String> {
        let value: serde_json::Value =
            serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
        let items = match &value {
            serde_json::Value::Array(items) => items,
            v => v
                .get("items")
                .and_then(|i| i.as_array())
                .ok_or("expected a List (with `items`) or an array of objects")?,
        };
        let kube = KubeStore::from_objects(items)?;
        let spec = SimSpec {
            nodes: 0,
            pods_per_node: 0,
            unscheduled_pods: 0,
            services: 0,
            controllers: 0,
            deployments: 0,
            statefulsets: 0,
            daemonsets: 0,
            cronjobs: 0,
            with_docker: false,
            ..SimSpec::default()
        };
        let cluster = Cluster::generate(&spec);
        Simulator::serve(spec, cluster, kube, kube_port, 0)
            .map_err(|e| format!("cannot start the simulator: {e}"))
    }

    fn serve(
        spec: SimSpec,
        cluster: Cluster,
        kube: KubeStore,
        kube_port: u16,
        docker_port: u16,
    ) -> std::io::Result<Simulator> {
        let expected = cluster.expected();

        let kube_listener = server::bind(Ipv4Addr::LOCALHOST, kube_port)?;
        let kube_addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, kube_listener.local_addr()?.port());
        let addrs: Vec<Ipv4Addr> = cluster.nodes.iter().map(|n| n.addr).collect();
        let (docker_port, node_listeners) = if spec.with_docker {
            server::bind_common_port(&addrs, docker_port)?
        } else {
            (0, Vec::new())
        };

        let mut endpoints = vec![server::endpoint(Role::Kube, kube_addr)];
        for (i, addr) in addrs.iter().enumerate().take(node_listeners.len()) {
            endpoints.push(server::endpoint(
                Role::Node(i),
                SocketAddrV4::new(*addr, docker_port),
            ));
        }
        let shared = Arc::new(Shared::new(
            State { cluster, kube },
            endpoints,
            spec.latency,
        ));
        let mut sim = Simulator {
            shared: Arc::clone(&shared),
            acceptors: Vec::new(),
            kube_addr,
            docker_port,
            expected,
            spec,
        };
        let listeners = std::iter::once(kube_listener).chain(node_listeners);
        for (index, listener) in listeners.enumerate() {
            // On failure `sim` is dropped, which stops the acceptors already running.
            sim.acceptors.push(server::spawn_acceptor(
                Arc::clone(&shared),
                index,
                listener,
            )?);
        }
        Ok(sim)
    }

    /// `http://127.0.0.1:PORT`, the Kubernetes API.
    pub fn kube_url(&self) -> String {
        format!("http://{}", self.kube_addr)
    }

    pub fn kube_addr(&self) -> SocketAddr {
        SocketAddr::V4(self.kube_addr)
    }

    /// The common port of the nodes' Docker APIs (0 without Docker).
    pub fn docker_port(&self) -> u16 {
        self.docker_port
    }

    /// Node `i`'s address (its `InternalIP`), in node order.
    pub fn node_addresses(&self) -> Vec<Ipv4Addr> {
        self.shared
            .state
            .read()
            .cluster
            .nodes
            .iter()
            .map(|n| n.addr)
            .collect()
    }

    /// Node names (`sim-node-1`, ...), in node order.
    pub fn node_names(&self) -> Vec<String> {
        self.shared
            .state
            .read()
            .cluster
            .nodes
            .iter()
            .map(|n| n.name.clone())
            .collect()
    }

    pub fn spec(&self) -> &SimSpec {
        &self.spec
    }

    /// What the graph must contain now (updated by every mutation).
    pub fn expected(&self) -> &Expected {
        &self.expected
    }

    /// The bytes of every object the Kubernetes API serves, and of their
    /// `metadata.managedFields` (with its key): what a reader that keeps whole objects
    /// would hold, and what the master drops.
    pub fn managed_fields_bytes(&self) -> (usize, usize) {
        self.shared.state.read().kube.managed_fields_bytes()
    }

    pub fn request_counts(&self) -> RequestCounts {
        self.shared.counters.snapshot()
    }

    /// Makes the API server know `token` as `user` in `groups`, made for `audiences`
    /// (none: for the API server itself), in its `TokenReview`s.
    pub fn add_token(&self, token: &str, user: &str, groups: &[&str], audiences: &[&str]) {
        let owned = |items: &[&str]| items.iter().map(|s| s.to_string()).collect();
        self.shared.access.lock().tokens.insert(
            token.to_string(),
            access::TokenOwner {
                user: user.to_string(),
                groups: owned(groups),
                audiences: owned(audiences),
            },
        );
    }

    /// Lets `subject` (a user or a group) `get` the non-resource URLs `pattern` matches
    /// (exactly, or by prefix when it ends in `*`), in its `SubjectAccessReview`s.
    pub fn grant(&self, subject: &str, pattern: &str) {
        self.shared
            .access
            .lock()
            .grants
            .push((subject.to_string(), pattern.to_string()));
    }

    /// Changes every node's per-call latency from now on.
    pub fn set_latency(&self, latency: NodeLatency) {
        *self.shared.latency.lock() = latency;
    }

    pub fn faults(&self) -> Faults {
        Faults {
            shared: Arc::clone(&self.shared),
        }
    }

    /// The full IDs of node `node`'s containers, in the order its Docker API lists them
    /// (pods' pause and application containers, then standalone containers).
    pub fn container_ids(&self, node: usize) -> Vec<String> {
        let state = self.shared.state.read();
        state
            .cluster
            .nodes
            .get(node)
            .map(|n| n.containers.iter().map(|c| c.id.clone()).collect())
            .unwrap_or_default()
    }

    /// `(namespace, name, node index)` of every pod, in generation order.
    pub fn pods(&self) -> Vec<(String, String, Option<usize>)> {
        let state = self.shared.state.read();
        state
            .cluster
            .pods
            .iter()
            .map(|p| (p.namespace.clone(), p.name.clone(), p.node))
            .collect()
    }

    /// Restarts container `index` of node `node` (as listed by [`Simulator::container_ids`]):
    /// it gets a new ID, `Created`/`StartedAt` and attempt number; its pod's status shows the
    /// new ID, a higher `restartCount` and the old instance as `lastState`. Returns the new
    /// ID, or `None` if there is no such container.
    pub fn restart_container(&mut self, node: usize, index: usize) -> Option<String> {
        let new_id = {
            let mut guard = self.shared.write_state();
            let State { cluster, kube } = &mut *guard;
            let now = cluster.tick();
            let new_id = cluster.rng.hex(64);
            let pid = 1000 + cluster.rng.below(30_000) as u32;
            let c = cluster.nodes.get_mut(node)?.containers.get_mut(index)?;
            let old_id = std::mem::replace(&mut c.id, new_id.clone());
            let old_started = c.started;
            c.created = now - 100;
            c.started = now;
            c.attempt += 1;
            c.pid_base = pid;
            if c.name.starts_with("k8s_") {
                if let Some((stem, _)) = c.name.rsplit_once('_') {
                    c.name = format!("{stem}_{}", c.attempt);
                }
            }
            let (sandbox, pod) = (c.sandbox, c.pod.clone());
            if let Some(pod) = pod {
                if sandbox {
                    for other in &mut cluster.nodes[node].containers {
                        if let Some(r) = other.pod.as_mut().filter(|r| r.uid == pod.uid) {
                            r.sandbox_id = new_id.clone();
                        }
                    }
                } else if let Some(p) = cluster.pods.iter().position(|p| p.uid == pod.uid) {
                    let rv = cluster.next_rv();
                    let entry = &mut cluster.pods[p];
                    entry.rv = rv;
                    if let Some(pc) = entry
                        .containers
                        .iter_mut()
                        .find(|pc| pc.name == pod.container_name)
                    {
                        pc.last = Some((old_id, old_started, now - 500));
                        pc.id = new_id.clone();
                        pc.started = now;
                        pc.restarts += 1;
                    }
                    kube.update_pod(cluster, p);
                }
            }
            cluster.next_rv();
            cluster.rv = cluster.rv.max(kube.events.last_rv());
            new_id
        };
        self.refresh_expected();
        Some(new_id)
    }

    /// Deletes a pod: it leaves the Kubernetes API and its containers leave its node's
    /// Docker API. Returns whether the pod existed.
    pub fn delete_pod(&mut self, namespace: &str, name: &str) -> bool {
        {
            let mut guard = self.shared.write_state();
            let State { cluster, kube } = &mut *guard;
            let Some(index) = cluster.pod_index(namespace, name) else {
                return false;
            };
            let pod = cluster.pods.remove(index);
            if let Some(node) = pod.node.and_then(|n| cluster.nodes.get_mut(n)) {
                node.containers
                    .retain(|c| c.pod.as_ref().is_none_or(|r| r.uid != pod.uid));
            }
            let rv = cluster.next_rv();
            kube.remove_pod(namespace, name, rv);
            kube.refresh_slices(cluster);
            if let Some(rc) = pod.controller {
                let rv = cluster.next_rv();
                cluster.controllers[rc].rv = rv;
                kube.update_controller(cluster, rc);
            }
            cluster.rv = cluster.rv.max(kube.events.last_rv());
        }
        self.refresh_expected();
        true
    }

    /// Sets label `key` of a pod to `value` (a change of the pod alone, as a rollout's
    /// annotations or a controller's labels make): a new `resourceVersion`, a watch event.
    /// Returns whether the pod exists.
    pub fn label_pod(&mut self, namespace: &str, name: &str, key: &str, value: &str) -> bool {
        label_pod(
            &mut self.shared.write_state(),
            namespace,
            name,
            &[(key, Some(value))],
        )
    }

    /// Runs `count` more exec probes in container `index` of node `node`: its inspect's
    /// `ExecIDs` grows by `count` entries (as it does without bound on real nodes). Returns
    /// the new length, or `None` if there is no such container.
    pub fn add_exec_ids(&mut self, node: usize, index: usize, count: usize) -> Option<usize> {
        let mut guard = self.shared.write_state();
        let cluster = &mut guard.cluster;
        let ids: Vec<String> = (0..count).map(|_| cluster.rng.hex(64)).collect();
        let c = cluster.nodes.get_mut(node)?.containers.get_mut(index)?;
        c.exec_ids.extend(ids);
        Some(c.exec_ids.len())
    }

    /// Advances every node's condition heartbeat (and so its `resourceVersion`) and nothing
    /// else, as the kubelets do every few seconds.
    pub fn heartbeat(&mut self) {
        let mut guard = self.shared.write_state();
        let State { cluster, kube } = &mut *guard;
        let now = cluster.tick();
        for i in 0..cluster.nodes.len() {
            let rv = cluster.next_rv();
            cluster.nodes[i].heartbeat = now;
            cluster.nodes[i].rv = rv;
            kube.update_node(cluster, i);
        }
        cluster.rv = cluster.rv.max(kube.events.last_rv());
    }

    fn refresh_expected(&mut self) {
        self.expected = self.shared.state.read().cluster.expected();
    }

    fn stop(&mut self) {
        if self.acceptors.is_empty() {
            return;
        }
        self.shared.begin_shutdown();
        for handle in self.acceptors.drain(..) {
            let _ = handle.join();
        }
        self.shared.wait_connections(Duration::from_secs(3));
    }

    /// Stops every listener and connection thread.
    pub fn shutdown(mut self) {
        self.stop();
    }
}

impl std::fmt::Debug for Simulator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Simulator")
            .field("kube_url", &self.kube_url())
            .field("docker_port", &self.docker_port)
            .field("nodes", &self.spec.nodes)
            .field("pods", &self.spec.total_pods())
            .finish()
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Sets each label `key` of a pod to its value, or removes it (`None`), in one change: a new
/// `resourceVersion` and a watch event, as the API server makes for `kubectl label`.
/// Returns whether the pod exists.
pub(crate) fn label_pod(
    state: &mut State,
    namespace: &str,
    name: &str,
    labels: &[(&str, Option<&str>)],
) -> bool {
    let State { cluster, kube } = state;
    let Some(index) = cluster.pod_index(namespace, name) else {
        return false;
    };
    let rv = cluster.next_rv();
    let pod = &mut cluster.pods[index];
    pod.rv = rv;
    for &(key, value) in labels {
        match (pod.labels.iter_mut().find(|(k, _)| k == key), value) {
            (Some((_, v)), Some(value)) => *v = value.to_string(),
            (None, Some(value)) => pod.labels.push((key.to_string(), value.to_string())),
            (_, None) => pod.labels.retain(|(k, _)| k != key),
        }
    }
    kube.update_pod(cluster, index);
    cluster.rv = cluster.rv.max(kube.events.last_rv());
    true
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_of_unknown_kinds_or_shapes_are_refused() {
        for (text, expect) in [
            ("{", "not JSON"),
            (r#"{"kind":"Pod"}"#, "expected a List"),
            (r#"[{"kind":"Secret","metadata":{"name":"s"}}]"#, "Secret"),
            (
                r#"[{"kind":"Container","metadata":{"name":"c"}}]"#,
                "Container",
            ),
        ] {
            let err = Simulator::start_with_objects(text, 0).unwrap_err();
            assert!(err.contains(expect), "{text}: {err}");
        }
    }

    #[test]
    fn parses_sizes() {
        let spec = SimSpec::parse_size("nodes=10, pods-per-node=30,docker=false,seed=7").unwrap();
        assert_eq!(
            (spec.nodes, spec.pods_per_node, spec.with_docker, spec.seed),
            (10, 30, false, 7)
        );
        assert_eq!(
            spec.containers_per_pod,
            SimSpec::default().containers_per_pod
        );
        assert_eq!(SimSpec::parse_size("").unwrap(), SimSpec::default());
        assert_eq!(
            SimSpec::parse_size("standalone_containers_per_node=0")
                .unwrap()
                .standalone_containers_per_node,
            0
        );
        for bad in [
            "nodes",
            "nodes=x",
            "colour=blue",
            "docker=maybe",
            "namespaces=0",
            "images=0",
            "latency=slow",
            "latency-ps=4",
            "latency-top=fast",
            "jitter=101",
        ] {
            assert!(SimSpec::parse_size(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn parses_latencies() {
        assert_eq!(SimSpec::default().latency, NodeLatency::none());
        let spec = SimSpec::parse_size("latency=realistic,latency-top=100,jitter=0").unwrap();
        assert_eq!(
            spec.latency,
            NodeLatency {
                top: Duration::from_millis(100),
                jitter_percent: 0,
                ..NodeLatency::realistic()
            }
        );
        let spec = SimSpec::parse_size("latency-node=5").unwrap();
        assert_eq!(spec.latency.node, Duration::from_millis(5));
        assert_eq!(spec.latency.top, Duration::ZERO);
    }
}
