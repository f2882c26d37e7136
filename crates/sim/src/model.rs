//! The simulated cluster as plain data: generated once from a [`SimSpec`] and a seed, then
//! changed only by the explicit mutations of the simulator. Both APIs (Kubernetes and the
//! nodes' Docker daemons) are rendered from this one model, so they always agree with each
//! other and with [`Expected`], which is counted here from the model by the rules of the
//! graph contract — never by the project's own graph builder.
//!
//! Everything is deterministic for a given spec: the random source is a seeded splitmix64
//! and the clock is a fixed instant that advances only when the cluster is mutated.

use std::collections::{BTreeMap, HashMap};
use std::net::Ipv4Addr;

use super::{Expected, SimSpec};

/// The wall clock in milliseconds, to the second. The simulated cluster starts "now", like a
/// real one: a client compares a container's `StartedAt` with its own clock and with the
/// uptime Docker prints, so a fixed date would make every container look restarted. For a
/// given seed everything but the times is reproducible.
pub(crate) fn wall_clock_millis() -> i64 {
    let millis = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64);
    millis - millis % 1000
}

/// splitmix64: tiny, fast, good enough for identifiers, and reproducible across platforms.
#[derive(Debug, Clone)]
pub(crate) struct Rng(u64);

impl Rng {
    pub(crate) fn new(seed: u64) -> Rng {
        Rng(seed ^ 0x5DEE_CE66_D1CE_5EED)
    }

    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub(crate) fn below(&mut self, n: u64) -> u64 {
        if n == 0 {
            0
        } else {
            self.next_u64() % n
        }
    }

    /// `len` lower-case hex digits.
    pub(crate) fn hex(&mut self, len: usize) -> String {
        let mut out = String::with_capacity(len + 16);
        while out.len() < len {
            out.push_str(&format!("{:016x}", self.next_u64()));
        }
        out.truncate(len);
        out
    }

    /// A random (version 4 shaped) UUID, as Kubernetes writes object UIDs.
    pub(crate) fn uuid(&mut self) -> String {
        let h = self.hex(32);
        format!(
            "{}-{}-4{}-a{}-{}",
            &h[0..8],
            &h[8..12],
            &h[13..16],
            &h[17..20],
            &h[20..32]
        )
    }
}

/// How the containers of a pod can be matched to it (contract §3 lists three ways, in order).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Matching {
    /// Containers carry the `io.kubernetes.*` labels (and kubelet names, and the pod lists
    /// their IDs): the common case.
    Labels,
    /// No labels and no kubelet name on the application containers; only the pod's
    /// `status.containerStatuses[].containerID` names them. The sandbox keeps a kubelet name.
    StatusId,
    /// No labels and the pod's status does not list the IDs yet (kubelet lag: waiting,
    /// ContainerCreating); only the kubelet name `k8s_NAME.HASH_POD_NS_UID_N` ties them.
    KubeletName,
}

#[derive(Debug, Clone)]
pub(crate) struct Image {
    /// `sha256:` + 64 hex.
    pub id: String,
    /// `repo:tag`, or empty for an untagged image.
    pub tag: String,
    pub repo: String,
    /// The registry digest (`sha256:...`) the pod status reports in `imageID`.
    pub digest: String,
    pub created: i64,
    pub size: u64,
    pub cmd: Vec<String>,
}

/// The pod a container belongs to, copied into the container so that it renders on its own.
#[derive(Debug, Clone)]
pub(crate) struct PodRef {
    pub pod_name: String,
    pub namespace: String,
    pub uid: String,
    /// `POD` for the sandbox.
    pub container_name: String,
    pub matching: Matching,
    pub sandbox_id: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Container {
    /// 64 hex digits.
    pub id: String,
    /// Docker name without the leading `/`.
    pub name: String,
    /// Index into [`Cluster::images`].
    pub image: usize,
    pub pod: Option<PodRef>,
    pub sandbox: bool,
    pub created: i64,
    pub started: i64,
    pub attempt: u32,
    pub processes: usize,
    pub pid_base: u32,
    pub env: Vec<String>,
    pub cmd: Vec<String>,
    pub exec_ids: Vec<String>,
}

impl Container {
    /// Whether the container carries the kubelet's `io.kubernetes.*` labels.
    pub(crate) fn labeled(&self) -> bool {
        matches!(&self.pod, Some(p) if p.matching == Matching::Labels)
    }
}

/// The container runtime a simulated node runs, as its agent reports it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// Read through the Docker Engine API (and, with `SimSpec::node_documents`, `/node`).
    Docker,
    /// Read through CRI by the agent: only `/node` is served.
    Containerd,
}

impl Runtime {
    /// The scheme of the container IDs the kubelet writes in pod statuses.
    pub(crate) fn scheme(self) -> &'static str {
        match self {
            Runtime::Docker => "docker",
            Runtime::Containerd => "containerd",
        }
    }

    /// The Node's `status.nodeInfo.containerRuntimeVersion`.
    pub(crate) fn version(self) -> &'static str {
        match self {
            Runtime::Docker => "docker://24.0.7",
            Runtime::Containerd => "containerd://1.7.24",
        }
    }
}

#[derive(Debug, Clone)]
pub(crate) struct Node {
    pub name: String,
    pub addr: Ipv4Addr,
    pub runtime: Runtime,
    pub uid: String,
    pub created: i64,
    pub heartbeat: i64,
    pub rv: u64,
    /// In the order the Docker daemon lists them.
    pub containers: Vec<Container>,
}

#[derive(Debug, Clone)]
pub(crate) struct PodContainer {
    pub name: String,
    pub image: usize,
    /// The Docker ID (also when the cluster has no Docker APIs, for `containerID`).
    pub id: String,
    pub started: i64,
    pub restarts: u32,
    /// The previous instance, after a restart: (ID, started, finished).
    pub last: Option<(String, i64, i64)>,
}

#[derive(Debug, Clone)]
pub(crate) struct Pod {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub labels: Vec<(String, String)>,
    pub node: Option<usize>,
    /// The ReplicationController that owns it.
    pub controller: Option<usize>,
    /// The workload that owns it (through its ReplicaSet or Job, where it has one).
    pub workload: Option<usize>,
    /// The claim its volume names (a StatefulSet's pods).
    pub claim: Option<usize>,
    pub created: i64,
    pub matching: Matching,
    pub containers: Vec<PodContainer>,
    pub ip_suffix: usize,
}

#[derive(Debug, Clone)]
pub(crate) struct Service {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub created: i64,
    /// `None`: a service without selector (endpoints managed by hand).
    pub selector: Option<Vec<(String, String)>>,
    pub cluster_ip: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Controller {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub created: i64,
    pub selector: Vec<(String, String)>,
    pub labels: Vec<(String, String)>,
    /// Container images of the pod template (indexes into [`Cluster::images`]).
    pub images: Vec<usize>,
}

/// The workload kinds of today (beside the seed's ReplicationControllers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum WorkloadKind {
    /// Owns a ReplicaSet, which owns the pods.
    Deployment,
    /// Owns its pods; each pod has a claim.
    StatefulSet,
    /// Owns one pod per node.
    DaemonSet,
    /// Owns a Job, which owns the pods.
    CronJob,
}

#[derive(Debug, Clone)]
pub(crate) struct Workload {
    pub kind: WorkloadKind,
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub created: i64,
    /// `app=NAME`: the pods' labels and the selector.
    pub labels: Vec<(String, String)>,
    pub images: Vec<usize>,
    /// The ReplicaSet of a Deployment, the Job of a CronJob.
    pub child: Option<Child>,
    /// A Deployment's Ingress and autoscaler.
    pub ingress_uid: String,
    pub autoscaler_uid: String,
}

/// The object between a workload and its pods.
#[derive(Debug, Clone)]
pub(crate) struct Child {
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub created: i64,
}

/// A StatefulSet pod's claim and the volume bound to it.
#[derive(Debug, Clone)]
pub(crate) struct Claim {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub rv: u64,
    pub created: i64,
    pub volume: String,
    pub volume_uid: String,
}

#[derive(Debug, Clone)]
pub(crate) struct Cluster {
    pub spec: SimSpec,
    pub namespaces: Vec<String>,
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Service>,
    pub controllers: Vec<Controller>,
    pub workloads: Vec<Workload>,
    pub claims: Vec<Claim>,
    pub images: Vec<Image>,
    /// The cluster-wide resource version; every change takes the next one.
    pub rv: u64,
    pub now: i64,
    pub rng: Rng,
}

const APP_NAMES: [&str; 8] = [
    "frontend", "backend", "cache", "worker", "api", "db-proxy", "search", "queue",
];
const CONTAINER_NAMES: [&str; 6] = [
    "app",
    "sidecar",
    "metrics",
    "log-shipper",
    "proxy",
    "init-helper",
];
const NAMESPACES: [&str; 3] = ["default", "production", "staging"];
const IMAGE_NAMES: [&str; 10] = [
    "nginx:1.27",
    "redis:7.2",
    "postgres:16.4",
    "busybox:1.36",
    "python:3.12-slim",
    "memcached:1.6",
    "httpd:2.4",
    "node:22-alpine",
    "golang:1.23",
    "alpine:3.20",
];
/// Index of the pause image in [`Cluster::images`].
pub(crate) const PAUSE_IMAGE: usize = 0;

fn app_name(i: usize) -> String {
    let base = APP_NAMES[i % APP_NAMES.len()];
    if i < APP_NAMES.len() {
        base.to_string()
    } else {
        format!("{base}-{}", i / APP_NAMES.len())
    }
}

fn namespace_name(i: usize) -> String {
    match NAMESPACES.get(i) {
        Some(name) => (*name).to_string(),
        None => format!("team-{i}"),
    }
}

pub(crate) fn container_name(i: usize) -> String {
    match CONTAINER_NAMES.get(i) {
        Some(name) => (*name).to_string(),
        None => format!("extra-{i}"),
    }
}

/// The loopback address of node `i`: 127.0.1.1 upward, skipping .0 and .255 in the last
/// octet, so never 127.0.0.1.
pub(crate) fn node_addr(i: usize) -> Ipv4Addr {
    let hi = 1 + i / 254;
    let lo = 1 + i % 254;
    Ipv4Addr::new(127, (hi / 256) as u8, (hi % 256) as u8, lo as u8)
}

/// The largest node count [`node_addr`] can number within 127.0.0.0/8 while staying off
/// 127.0.0.x.
pub(crate) const MAX_NODES: usize = 254 * 65_000;

/// A five-character pod name suffix, unique per pod index below 33^5 (a bijection: the
/// multiplier is coprime with 33), looking like the random suffixes of generated names.
fn pod_suffix(index: usize, seed: u64) -> String {
    const ALPHABET: &[u8] = b"bcdfghjklmnpqrstvwxz2456789aeiou0";
    let n = ALPHABET.len() as u64; // 33
    let space = n.pow(5);
    // 16,777,619 is prime and not a factor of 33^5, so this is a bijection on 0..33^5.
    let offset = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) % space;
    let mut x = ((index as u64 % space) * 16_777_619 + offset) % space;
    let mut out = [0u8; 5];
    for slot in out.iter_mut() {
        *slot = ALPHABET[(x % n) as usize];
        x /= n;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Who owns a pod as it is generated.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Owner {
    Rc(usize),
    Workload(usize),
    None,
}

const STATEFUL_NAMES: [&str; 3] = ["postgres", "kafka", "zookeeper"];
const DAEMON_NAMES: [&str; 3] = ["node-exporter", "fluent-bit", "csi-node"];
const CRON_NAMES: [&str; 3] = ["nightly-report", "backup", "cleanup"];

fn named(names: &[&str], i: usize, fallback: &str) -> String {
    match names.get(i) {
        Some(name) => (*name).to_string(),
        None => format!("{fallback}-{i}"),
    }
}

/// The Deployments, StatefulSets, DaemonSets and CronJobs of a spec, in that order.
fn workloads(
    spec: &SimSpec,
    namespaces: &[String],
    rng: &mut Rng,
    now: i64,
    next_rv: &mut impl FnMut() -> u64,
    app_image: impl Fn(usize) -> usize,
) -> Vec<Workload> {
    let kinds = std::iter::repeat_n(WorkloadKind::Deployment, spec.deployments)
        .enumerate()
        .chain(std::iter::repeat_n(WorkloadKind::StatefulSet, spec.statefulsets).enumerate())
        .chain(std::iter::repeat_n(WorkloadKind::DaemonSet, spec.daemonsets).enumerate())
        .chain(std::iter::repeat_n(WorkloadKind::CronJob, spec.cronjobs).enumerate());
    kinds
        .enumerate()
        .map(|(w, (i, kind))| {
            let name = match kind {
                WorkloadKind::Deployment => app_name(spec.controllers + i),
                WorkloadKind::StatefulSet => named(&STATEFUL_NAMES, i, "store"),
                WorkloadKind::DaemonSet => named(&DAEMON_NAMES, i, "agent"),
                WorkloadKind::CronJob => named(&CRON_NAMES, i, "job"),
            };
            let created = now - 86_400_000 * 5 - w as i64 * 60_000;
            let child = match kind {
                WorkloadKind::Deployment => Some(Child {
                    name: format!("{name}-{}", rng.hex(10)),
                    uid: rng.uuid(),
                    rv: next_rv(),
                    created: created + 1000,
                }),
                WorkloadKind::CronJob => Some(Child {
                    // Named for the minute it was scheduled, as the CronJob controller does.
                    name: format!("{name}-{}", (now - 3_600_000) / 60_000),
                    uid: rng.uuid(),
                    rv: next_rv(),
                    created: now - 3_600_000,
                }),
                _ => None,
            };
            Workload {
                kind,
                namespace: namespaces[(w + 1) % namespaces.len()].clone(),
                labels: vec![("app".into(), name.clone())],
                images: (0..spec.containers_per_pod)
                    .map(|k| app_image(w * spec.containers_per_pod + k + 1))
                    .collect(),
                name,
                uid: rng.uuid(),
                rv: next_rv(),
                created,
                child,
                ingress_uid: rng.uuid(),
                autoscaler_uid: rng.uuid(),
            }
        })
        .collect()
}

impl Cluster {
    pub(crate) fn generate(spec: &SimSpec) -> Cluster {
        let mut rng = Rng::new(spec.seed);
        let now = wall_clock_millis();
        let mut rv: u64 = 1000;
        let mut next_rv = || {
            rv += 1;
            rv
        };

        // Images: the pause image, the application images, one untagged image.
        let mut images = Vec::with_capacity(spec.images + 2);
        let make_image = |rng: &mut Rng, tag: &str, cmd: Vec<String>| {
            let repo = tag.split(':').next().unwrap_or(tag).to_string();
            Image {
                id: format!("sha256:{}", rng.hex(64)),
                tag: tag.to_string(),
                repo,
                digest: format!("sha256:{}", rng.hex(64)),
                created: now - 86_400_000 * (30 + rng.below(300) as i64),
                size: 5_000_000 + rng.below(400_000_000),
                cmd,
            }
        };
        images.push(make_image(
            &mut rng,
            "registry.k8s.io/pause:3.9",
            vec!["/pause".into()],
        ));
        for i in 0..spec.images {
            let tag = match IMAGE_NAMES.get(i) {
                Some(t) => (*t).to_string(),
                None => format!("registry.example.com/team/app-{i}:v1.{}", i % 7),
            };
            let cmd = vec![
                "/docker-entrypoint.sh".into(),
                tag.split(':')
                    .next()
                    .unwrap_or("app")
                    .rsplit('/')
                    .next()
                    .unwrap_or("app")
                    .into(),
            ];
            images.push(make_image(&mut rng, &tag, cmd));
        }
        let untagged = images.len();
        let mut dangling = make_image(&mut rng, "", vec!["/bin/sh".into()]);
        dangling.repo = "localhost:5000/build-cache".into();
        images.push(dangling);
        let app_image = |k: usize| {
            if spec.images == 0 {
                PAUSE_IMAGE
            } else {
                1 + k % spec.images
            }
        };

        let namespaces: Vec<String> = (0..spec.namespaces.max(1)).map(namespace_name).collect();

        let controllers: Vec<Controller> = (0..spec.controllers)
            .map(|c| {
                let name = app_name(c);
                let tier = if c % 2 == 0 { "frontend" } else { "backend" };
                Controller {
                    namespace: namespaces[c % namespaces.len()].clone(),
                    selector: vec![("app".into(), name.clone())],
                    labels: vec![("app".into(), name.clone()), ("tier".into(), tier.into())],
                    images: (0..spec.containers_per_pod)
                        .map(|k| app_image(c * spec.containers_per_pod + k))
                        .collect(),
                    name,
                    uid: rng.uuid(),
                    rv: next_rv(),
                    created: now - 86_400_000 * 3 - c as i64 * 60_000,
                }
            })
            .collect();

        let mut nodes: Vec<Node> = (0..spec.nodes)
            .map(|i| Node {
                name: format!("sim-node-{}", i + 1),
                addr: node_addr(i),
                runtime: if i + spec.containerd_nodes >= spec.nodes {
                    Runtime::Containerd
                } else {
                    Runtime::Docker
                },
                uid: rng.uuid(),
                created: now - 86_400_000 * 30 + i as i64 * 1000,
                heartbeat: now - 7_000,
                rv: next_rv(),
                containers: Vec::new(),
            })
            .collect();

        let workloads = workloads(spec, &namespaces, &mut rng, now, &mut next_rv, app_image);

        let scheduled = spec.nodes * spec.pods_per_node;
        let total = scheduled + spec.unscheduled_pods;
        let mut pods = Vec::with_capacity(total);
        let mut claims = Vec::new();
        let mut unowned = 0usize;
        let mut ordinals = vec![0usize; workloads.len()];
        // Who owns which pod: a DaemonSet the first slots of every node, then every fourth
        // pod nobody, then the controllers and the other workloads in turn.
        let owners: Vec<Owner> = (0..spec.controllers)
            .map(Owner::Rc)
            .chain(
                workloads
                    .iter()
                    .enumerate()
                    .filter(|(_, w)| w.kind != WorkloadKind::DaemonSet)
                    .map(|(i, _)| Owner::Workload(i)),
            )
            .collect();
        let daemonsets: Vec<usize> = workloads
            .iter()
            .enumerate()
            .filter(|(_, w)| w.kind == WorkloadKind::DaemonSet)
            .map(|(i, _)| i)
            .collect();
        for p in 0..total {
            let node = (p < scheduled).then(|| p / spec.pods_per_node.max(1));
            let slot = p % spec.pods_per_node.max(1);
            let owner = match daemonsets.get(slot) {
                Some(&ds) if node.is_some() => Owner::Workload(ds),
                _ if p % 4 == 3 || owners.is_empty() => Owner::None,
                _ => owners[p % owners.len()],
            };
            let suffix = pod_suffix(p, spec.seed);
            let (namespace, name, labels) = match owner {
                Owner::Rc(c) => {
                    let rc = &controllers[c];
                    (
                        rc.namespace.clone(),
                        format!("{}-{suffix}", rc.name),
                        rc.labels.clone(),
                    )
                }
                Owner::Workload(w) => {
                    let wl = &workloads[w];
                    let mut labels = wl.labels.clone();
                    let name = match (wl.kind, &wl.child) {
                        (WorkloadKind::Deployment, Some(rs)) => {
                            let hash = rs.name.rsplit('-').next().unwrap_or_default();
                            labels.push(("pod-template-hash".into(), hash.to_string()));
                            format!("{}-{suffix}", rs.name)
                        }
                        (WorkloadKind::StatefulSet, _) => {
                            let name = format!("{}-{}", wl.name, ordinals[w]);
                            ordinals[w] += 1;
                            labels
                                .push(("statefulset.kubernetes.io/pod-name".into(), name.clone()));
                            name
                        }
                        (WorkloadKind::CronJob, Some(job)) => {
                            labels.push(("job-name".into(), job.name.clone()));
                            format!("{}-{suffix}", job.name)
                        }
                        _ => format!("{}-{suffix}", wl.name),
                    };
                    (wl.namespace.clone(), name, labels)
                }
                Owner::None => {
                    // Same names in different namespaces: solo-0 in each namespace, and so on.
                    let ns = namespaces[unowned % namespaces.len()].clone();
                    let name = format!("solo-{}", unowned / namespaces.len());
                    unowned += 1;
                    let labels = vec![("run".into(), name.clone())];
                    (ns, name, labels)
                }
            };
            let (controller, workload) = match owner {
                Owner::Rc(c) => (Some(c), None),
                Owner::Workload(w) => (None, Some(w)),
                Owner::None => (None, None),
            };
            let claim = workload
                .filter(|&w| workloads[w].kind == WorkloadKind::StatefulSet)
                .map(|_| {
                    claims.push(Claim {
                        namespace: namespace.clone(),
                        name: format!("data-{name}"),
                        uid: rng.uuid(),
                        rv: next_rv(),
                        created: now - 86_400_000,
                        volume: format!("pvc-{}", rng.uuid()),
                        volume_uid: rng.uuid(),
                    });
                    claims.len() - 1
                });
            // The kubelet labels every container it makes through CRI; Docker names alone,
            // or statuses alone, tie a container to its pod only on Docker nodes.
            let on_docker = node.is_some_and(|n| nodes[n].runtime == Runtime::Docker);
            let matching = match (on_docker && spec.with_docker, p % 8) {
                (true, 5) => Matching::StatusId,
                (true, 6) => Matching::KubeletName,
                _ => Matching::Labels,
            };
            let created = now - 3_600_000 * 2 - (total - p) as i64 * 10;
            let containers = (0..spec.containers_per_pod)
                .map(|k| PodContainer {
                    name: container_name(k),
                    image: match owner {
                        Owner::Rc(c) => controllers[c].images[k],
                        Owner::Workload(w) => workloads[w].images[k],
                        Owner::None => app_image(p + k),
                    },
                    id: rng.hex(64),
                    started: created + 2_000 + k as i64 * 150,
                    restarts: 0,
                    last: None,
                })
                .collect();
            pods.push(Pod {
                namespace,
                name,
                uid: rng.uuid(),
                rv: next_rv(),
                labels,
                node,
                controller,
                workload,
                claim,
                created,
                matching,
                containers,
                ip_suffix: p,
            });
        }

        if spec.with_docker {
            for pod in pods.iter().take(scheduled) {
                let Some(n) = pod.node else { continue };
                let sandbox_id = rng.hex(64);
                let pod_ref = |container_name: &str| PodRef {
                    pod_name: pod.name.clone(),
                    namespace: pod.namespace.clone(),
                    uid: pod.uid.clone(),
                    container_name: container_name.to_string(),
                    matching: pod.matching,
                    sandbox_id: sandbox_id.clone(),
                };
                let sandbox = Container {
                    id: sandbox_id.clone(),
                    name: format!("k8s_POD_{}_{}_{}_0", pod.name, pod.namespace, pod.uid),
                    image: PAUSE_IMAGE,
                    pod: Some(pod_ref("POD")),
                    sandbox: true,
                    created: pod.created + 1_000,
                    started: pod.created + 1_200,
                    attempt: 0,
                    processes: spec.processes_per_container.min(1),
                    pid_base: 1000 + rng.below(30_000) as u32,
                    env: vec![
                        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
                    ],
                    cmd: vec!["/pause".into()],
                    exec_ids: Vec::new(),
                };
                nodes[n].containers.push(sandbox);
                for pc in &pod.containers {
                    let name = match pod.matching {
                        Matching::Labels => format!(
                            "k8s_{}_{}_{}_{}_0",
                            pc.name, pod.name, pod.namespace, pod.uid
                        ),
                        Matching::KubeletName => {
                            format!(
                                "k8s_{}.{}_{}_{}_{}_0",
                                pc.name,
                                rng.hex(8),
                                pod.name,
                                pod.namespace,
                                pod.uid
                            )
                        }
                        Matching::StatusId => format!("{}-{}-{}", pod.name, pc.name, rng.hex(6)),
                    };
                    // Exec probes leave exec IDs behind; standalone and pause containers have none (null).
                    let exec_ids = (0..1 + rng.below(3)).map(|_| rng.hex(64)).collect();
                    let container = Container {
                        id: pc.id.clone(),
                        name,
                        image: pc.image,
                        pod: Some(pod_ref(&pc.name)),
                        sandbox: false,
                        created: pc.started - 100,
                        started: pc.started,
                        attempt: 0,
                        processes: spec.processes_per_container,
                        pid_base: 1000 + rng.below(30_000) as u32,
                        env: secret_env(&mut rng, &pod.namespace),
                        cmd: images[pc.image].cmd.clone(),
                        exec_ids,
                    };
                    nodes[n].containers.push(container);
                }
            }
            for (n, node) in nodes.iter_mut().enumerate() {
                // CRI shows only the kubelet's containers: others on a containerd node are
                // not the runtime's to tell.
                if node.runtime == Runtime::Containerd {
                    continue;
                }
                for k in 0..spec.standalone_containers_per_node {
                    // One standalone container in three runs the untagged image; the others share
                    // application images across nodes.
                    let image = if (n + k) % 3 == 2 {
                        untagged
                    } else {
                        app_image(n + k)
                    };
                    let started = now - 86_400_000 * (1 + k as i64) - n as i64 * 1000;
                    node.containers.push(Container {
                        id: rng.hex(64),
                        name: format!("standalone-{}-{}", k, rng.hex(4)),
                        image,
                        pod: None,
                        sandbox: false,
                        created: started - 500,
                        started,
                        attempt: 0,
                        processes: spec.processes_per_container,
                        pid_base: 1000 + rng.below(30_000) as u32,
                        env: secret_env(&mut rng, "host"),
                        cmd: images[image].cmd.clone(),
                        exec_ids: Vec::new(),
                    });
                }
            }
        }

        let services: Vec<Service> = (0..spec.services)
            .map(|j| {
                let ns_of = |i: usize| namespaces[i % namespaces.len()].clone();
                let (namespace, name, selector) = match (j, controllers.first()) {
                    (0, Some(rc)) => (
                        rc.namespace.clone(),
                        rc.name.clone(),
                        Some(rc.selector.clone()),
                    ),
                    (0, None) | (1, _) => (ns_of(j), format!("external-db-{j}"), None),
                    (2, _) => (
                        ns_of(j),
                        "orphaned".to_string(),
                        Some(vec![("app".into(), "no-such-app".into())]),
                    ),
                    // The selector of controller 0 in another namespace: selects nothing there.
                    (3, Some(rc)) if namespaces.len() > 1 => {
                        let other = namespaces
                            .iter()
                            .position(|n| *n == rc.namespace)
                            .unwrap_or(0)
                            + 1;
                        (
                            ns_of(other),
                            format!("{}-mirror", rc.name),
                            Some(rc.selector.clone()),
                        )
                    }
                    (_, Some(_)) => {
                        let rc = &controllers[j % controllers.len()];
                        (
                            rc.namespace.clone(),
                            format!("{}-svc-{j}", rc.name),
                            Some(rc.selector.clone()),
                        )
                    }
                    (_, None) => (
                        ns_of(j),
                        format!("svc-{j}"),
                        Some(vec![("app".into(), format!("nothing-{j}"))]),
                    ),
                };
                Service {
                    namespace,
                    name,
                    uid: rng.uuid(),
                    rv: next_rv(),
                    created: now - 86_400_000 * 2 - j as i64 * 1000,
                    selector,
                    cluster_ip: format!("10.96.{}.{}", (j / 250) % 256, 10 + j % 240),
                }
            })
            .collect();

        let mut services: Vec<Service> = services;
        for (d, w) in workloads
            .iter()
            .filter(|w| w.kind == WorkloadKind::Deployment)
            .enumerate()
        {
            services.push(Service {
                namespace: w.namespace.clone(),
                name: w.name.clone(),
                uid: rng.uuid(),
                rv: next_rv(),
                created: w.created + 1000,
                selector: Some(w.labels.clone()),
                cluster_ip: format!("10.97.{}.{}", (d / 250) % 256, 10 + d % 240),
            });
        }

        Cluster {
            spec: spec.clone(),
            namespaces,
            nodes,
            pods,
            services,
            controllers,
            workloads,
            claims,
            images,
            rv,
            now,
            rng,
        }
    }

    pub(crate) fn next_rv(&mut self) -> u64 {
        self.rv += 1;
        self.rv
    }

    /// Advances the simulated clock by a second; every mutation happens at a new instant.
    pub(crate) fn tick(&mut self) -> i64 {
        self.now += 1_000;
        self.now
    }

    pub(crate) fn pod_index(&self, namespace: &str, name: &str) -> Option<usize> {
        self.pods
            .iter()
            .position(|p| p.namespace == namespace && p.name == name)
    }

    /// Counts what the context graph of this cluster must hold (contract §3). The type and
    /// relation names are written out from the contract here, not taken from the table of
    /// kinds: the expectation must not share a mistake with the code it checks.
    pub(crate) fn expected(&self) -> Expected {
        let mut resources: BTreeMap<String, usize> = BTreeMap::new();
        let mut relations: BTreeMap<String, usize> = BTreeMap::new();
        let add = |map: &mut BTreeMap<String, usize>, key: &str, n: usize| {
            if n > 0 {
                *map.entry(key.to_string()).or_insert(0) += n;
            }
        };
        add(&mut resources, "Cluster", 1);
        add(&mut resources, "Node", self.nodes.len());
        add(&mut resources, "Pod", self.pods.len());
        add(&mut resources, "Service", self.services.len());
        add(
            &mut resources,
            "ReplicationController",
            self.controllers.len(),
        );
        add(&mut relations, "contains Cluster->Node", self.nodes.len());
        add(
            &mut relations,
            "contains Cluster->Service",
            self.services.len(),
        );
        add(
            &mut relations,
            "contains Cluster->ReplicationController",
            self.controllers.len(),
        );
        add(
            &mut relations,
            "runs Node->Pod",
            self.pods.iter().filter(|p| p.node.is_some()).count(),
        );

        if self.spec.with_docker {
            let mut image_ids: std::collections::HashSet<&str> = std::collections::HashSet::new();
            for node in &self.nodes {
                for c in &node.containers {
                    add(&mut resources, "Container", 1);
                    add(&mut resources, "Process", c.processes);
                    add(&mut relations, "contains Container->Process", c.processes);
                    add(&mut relations, "createdFrom Container->Image", 1);
                    image_ids.insert(&self.images[c.image].id);
                    if c.pod.is_some() {
                        add(&mut relations, "contains Pod->Container", 1);
                    } else {
                        add(&mut relations, "runs Node->Container", 1);
                    }
                }
            }
            add(&mut resources, "Image", image_ids.len());
        }

        // Label selection, evaluated per namespace.
        let mut by_namespace: HashMap<&str, Vec<&Pod>> = HashMap::new();
        for pod in &self.pods {
            by_namespace.entry(&pod.namespace).or_default().push(pod);
        }
        let selected = |namespace: &str, selector: &[(String, String)]| -> usize {
            by_namespace.get(namespace).map_or(0, |pods| {
                pods.iter()
                    .filter(|pod| super::workloads::selects(selector, pod))
                    .count()
            })
        };
        for rc in &self.controllers {
            let n = selected(&rc.namespace, &rc.selector);
            add(&mut relations, "monitors ReplicationController->Pod", n);
        }
        // Every Service has an EndpointSlice here: its pods are the slice's.
        let endpoints = super::workloads::EndpointIndex::new(self);
        for svc in &self.services {
            let n = endpoints.endpoint_pods(svc).len();
            add(&mut relations, "loadBalances Service->Pod", n);
        }

        // Today's kinds, and who owns what.
        let count = |kind: WorkloadKind| self.workloads.iter().filter(|w| w.kind == kind).count();
        let deployments = count(WorkloadKind::Deployment);
        let cronjobs = count(WorkloadKind::CronJob);
        add(&mut resources, "Namespace", self.namespaces.len());
        add(&mut resources, "Deployment", deployments);
        add(&mut resources, "ReplicaSet", deployments);
        add(
            &mut resources,
            "StatefulSet",
            count(WorkloadKind::StatefulSet),
        );
        add(&mut resources, "DaemonSet", count(WorkloadKind::DaemonSet));
        add(&mut resources, "CronJob", cronjobs);
        add(&mut resources, "Job", cronjobs);
        add(&mut resources, "Ingress", deployments);
        add(&mut resources, "HorizontalPodAutoscaler", deployments);
        add(&mut resources, "PersistentVolumeClaim", self.claims.len());
        add(&mut resources, "PersistentVolume", self.claims.len());
        add(
            &mut relations,
            "contains Cluster->Namespace",
            self.namespaces.len(),
        );
        add(
            &mut relations,
            "contains Cluster->PersistentVolume",
            self.claims.len(),
        );
        add(&mut relations, "owns Deployment->ReplicaSet", deployments);
        add(&mut relations, "owns CronJob->Job", cronjobs);
        add(&mut relations, "routes Ingress->Service", deployments);
        add(
            &mut relations,
            "scales HorizontalPodAutoscaler->Deployment",
            deployments,
        );
        add(
            &mut relations,
            "bindsTo PersistentVolumeClaim->PersistentVolume",
            self.claims.len(),
        );
        for pod in &self.pods {
            let owner = match (pod.controller, pod.workload.map(|w| self.workloads[w].kind)) {
                (Some(_), _) => Some("ReplicationController"),
                (_, Some(WorkloadKind::Deployment)) => Some("ReplicaSet"),
                (_, Some(WorkloadKind::StatefulSet)) => Some("StatefulSet"),
                (_, Some(WorkloadKind::DaemonSet)) => Some("DaemonSet"),
                (_, Some(WorkloadKind::CronJob)) => Some("Job"),
                (None, None) => None,
            };
            match owner {
                Some(owner) => add(&mut relations, &format!("owns {owner}->Pod"), 1),
                // What nothing owns and no node runs, its namespace holds.
                None if pod.node.is_none() => add(&mut relations, "contains Namespace->Pod", 1),
                None => {}
            }
            if pod.claim.is_some() {
                add(&mut relations, "uses Pod->PersistentVolumeClaim", 1);
            }
        }
        // Nothing owns these: their namespace holds them.
        for (kind, n) in [
            ("Service", self.services.len()),
            ("ReplicationController", self.controllers.len()),
            ("Deployment", deployments),
            ("StatefulSet", count(WorkloadKind::StatefulSet)),
            ("DaemonSet", count(WorkloadKind::DaemonSet)),
            ("CronJob", cronjobs),
            ("Ingress", deployments),
            ("HorizontalPodAutoscaler", deployments),
            ("PersistentVolumeClaim", self.claims.len()),
        ] {
            add(&mut relations, &format!("contains Namespace->{kind}"), n);
        }
        Expected {
            resources,
            relations,
        }
    }
}

/// A container's environment: ordinary settings and a few secrets, which the graph must
/// redact.
fn secret_env(rng: &mut Rng, namespace: &str) -> Vec<String> {
    vec![
        "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
        format!("POD_NAMESPACE={namespace}"),
        format!("DB_PASSWORD=pw-{}", rng.hex(16)),
        format!("API_TOKEN=tok-{}", rng.hex(32)),
        "KUBERNETES_SERVICE_HOST=10.96.0.1".into(),
        "KUBERNETES_SERVICE_PORT=443".into(),
    ]
}

/// Docker's "Up 2 hours" wording (go-units' HumanDuration).
pub(crate) fn human_duration(millis: i64) -> String {
    let secs = millis.max(0) / 1000;
    if secs < 1 {
        return "Less than a second".into();
    }
    if secs == 1 {
        return "1 second".into();
    }
    if secs < 60 {
        return format!("{secs} seconds");
    }
    let mins = secs / 60;
    if mins == 1 {
        return "About a minute".into();
    }
    if mins < 60 {
        return format!("{mins} minutes");
    }
    let hours = (secs as f64 / 3600.0).round() as i64;
    if hours == 1 {
        return "About an hour".into();
    }
    if hours < 48 {
        return format!("{hours} hours");
    }
    if hours < 24 * 7 * 2 {
        return format!("{} days", hours / 24);
    }
    if hours < 24 * 30 * 2 {
        return format!("{} weeks", hours / 24 / 7);
    }
    if hours < 24 * 365 * 2 {
        return format!("{} months", hours / 24 / 30);
    }
    format!("{} years", hours / 24 / 365)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn generation_is_deterministic_and_consistent() {
        let spec = SimSpec::default();
        let a = Cluster::generate(&spec);
        let b = Cluster::generate(&spec);
        assert_eq!(
            a.pods.iter().map(|p| &p.uid).collect::<Vec<_>>(),
            b.pods.iter().map(|p| &p.uid).collect::<Vec<_>>()
        );
        let e = a.expected();
        let pods = spec.nodes * spec.pods_per_node + spec.unscheduled_pods;
        assert_eq!(e.resources["Pod"], pods);
        let containers = spec.nodes
            * (spec.pods_per_node * (spec.containers_per_pod + 1)
                + spec.standalone_containers_per_node);
        assert_eq!(e.resources["Container"], containers);
        assert_eq!(
            e.relations["runs Node->Container"],
            spec.nodes * spec.standalone_containers_per_node
        );
        let modes: Vec<Matching> = a.pods.iter().map(|p| p.matching).collect();
        assert!(modes.contains(&Matching::StatusId) && modes.contains(&Matching::KubeletName));
    }

    #[test]
    fn pod_names_are_unique_per_namespace() {
        let spec = SimSpec {
            nodes: 40,
            pods_per_node: 50,
            ..SimSpec::default()
        };
        let c = Cluster::generate(&spec);
        let mut seen = std::collections::HashSet::new();
        for p in &c.pods {
            assert!(
                seen.insert((p.namespace.clone(), p.name.clone())),
                "{}/{}",
                p.namespace,
                p.name
            );
        }
        let solo0 = c.pods.iter().filter(|p| p.name == "solo-0").count();
        assert_eq!(solo0, spec.namespaces);
    }

    #[test]
    fn node_addresses_skip_127_0_0_x() {
        assert_eq!(node_addr(0), Ipv4Addr::new(127, 0, 1, 1));
        assert_eq!(node_addr(253), Ipv4Addr::new(127, 0, 1, 254));
        assert_eq!(node_addr(254), Ipv4Addr::new(127, 0, 2, 1));
        assert_eq!(node_addr(254 * 255), Ipv4Addr::new(127, 1, 0, 1));
    }

    #[test]
    fn durations_read_like_docker() {
        assert_eq!(human_duration(500), "Less than a second");
        assert_eq!(human_duration(90_000), "About a minute");
        assert_eq!(human_duration(2 * 3_600_000), "2 hours");
        assert_eq!(human_duration(3 * 86_400_000), "3 days");
    }
}
