//! The graph builder: a pure function from what was collected to the context graph.
//!
//! No I/O happens here, and nothing here knows where the data came from; the collector
//! calls [`build`] with the inputs of one refresh and the [`History`] of the previous one,
//! and gets back the graph and the history to keep. The rules are SPEC §3: resource IDs
//! and labels, the relations table, and the three ways a container is matched to its pod.
//!
//! Label selectors go through an index of pods by (namespace, label, value), so the cost of
//! `loadBalances` and `monitors` grows with the pods a selector matches, not with
//! services × pods.

use std::collections::hash_map::RandomState;
use std::collections::{BTreeMap, HashMap, HashSet};
use std::fmt;
use std::hash::{BuildHasher, BuildHasherDefault, Hash, Hasher};
use std::sync::{Arc, OnceLock};

use crate::model::{Collected, KubeObject, Pod, RawJson, Selecting};

/// Resource types, in the order the graph lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ResourceType {
    Cluster,
    Node,
    Pod,
    Service,
    ReplicationController,
    Container,
    Image,
    Process,
}

impl ResourceType {
    pub const ALL: [ResourceType; 8] = [
        ResourceType::Cluster,
        ResourceType::Node,
        ResourceType::Pod,
        ResourceType::Service,
        ResourceType::ReplicationController,
        ResourceType::Container,
        ResourceType::Image,
        ResourceType::Process,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ResourceType::Cluster => "Cluster",
            ResourceType::Node => "Node",
            ResourceType::Pod => "Pod",
            ResourceType::Service => "Service",
            ResourceType::ReplicationController => "ReplicationController",
            ResourceType::Container => "Container",
            ResourceType::Image => "Image",
            ResourceType::Process => "Process",
        }
    }

    /// The names `/cluster/resources/TYPE` accepts: the type (any case) or a plural alias.
    pub fn from_path_segment(segment: &str) -> Option<ResourceType> {
        let lower = segment.to_ascii_lowercase();
        let found = match lower.as_str() {
            "nodes" => ResourceType::Node,
            "pods" => ResourceType::Pod,
            "services" => ResourceType::Service,
            "rcontrollers" | "replicationcontrollers" => ResourceType::ReplicationController,
            "containers" => ResourceType::Container,
            "images" => ResourceType::Image,
            "processes" => ResourceType::Process,
            _ => {
                return ResourceType::ALL.into_iter().find(|t| {
                    t != &ResourceType::Cluster && t.as_str().eq_ignore_ascii_case(&lower)
                })
            }
        };
        Some(found)
    }
}

impl fmt::Display for ResourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationType {
    Contains,
    Runs,
    Monitors,
    LoadBalances,
    CreatedFrom,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::Contains => "contains",
            RelationType::Runs => "runs",
            RelationType::Monitors => "monitors",
            RelationType::LoadBalances => "loadBalances",
            RelationType::CreatedFrom => "createdFrom",
        }
    }
}

/// A resource ID (`Pod:default/web-1`): shared by the resource, its relations and the
/// history rather than copied into each, and hashed once, when it is made. The hash is
/// keyed with this process's random key, so IDs chosen by whoever names pods cannot be
/// made to collide; maps keyed by IDs then only mix those hashes (see [`IdHasher`]).
#[derive(Clone)]
pub struct Id {
    text: Arc<str>,
    hash: u64,
}

impl Id {
    pub fn new(text: String) -> Id {
        static KEY: OnceLock<RandomState> = OnceLock::new();
        let hash = KEY.get_or_init(RandomState::new).hash_one(text.as_str());
        Id {
            text: Arc::from(text),
            hash,
        }
    }

    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl From<String> for Id {
    fn from(text: String) -> Id {
        Id::new(text)
    }
}

impl std::ops::Deref for Id {
    type Target = str;
    fn deref(&self) -> &str {
        &self.text
    }
}

impl PartialEq for Id {
    fn eq(&self, other: &Id) -> bool {
        self.hash == other.hash && self.text == other.text
    }
}

impl Eq for Id {}

impl Hash for Id {
    fn hash<H: Hasher>(&self, state: &mut H) {
        state.write_u64(self.hash);
    }
}

impl fmt::Debug for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.text, f)
    }
}

impl fmt::Display for Id {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

/// Mixes values that are already keyed hashes (IDs) or small tags (relation kinds).
#[derive(Default)]
pub struct IdHasher(u64);

impl Hasher for IdHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, bytes: &[u8]) {
        for b in bytes {
            self.write_u64(u64::from(*b));
        }
    }
    fn write_u64(&mut self, x: u64) {
        self.0 = (self.0.rotate_left(23) ^ x).wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
    fn write_u8(&mut self, x: u8) {
        self.write_u64(u64::from(x));
    }
    fn write_isize(&mut self, x: isize) {
        self.write_u64(x as u64);
    }
}

type IdMap<K, V> = HashMap<K, V, BuildHasherDefault<IdHasher>>;
type IdSet<K> = HashSet<K, BuildHasherDefault<IdHasher>>;

/// A resource of the graph. `properties` is the observed JSON text, never re-serialized.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: Id,
    pub kind: ResourceType,
    pub timestamp_ms: i64,
    pub properties: RawJson,
    pub label: String,
    /// Images only: the image's name.
    pub alternate_label: Option<String>,
}

/// A relation between two resources that both exist in the same graph.
#[derive(Debug, Clone)]
pub struct Relation {
    pub kind: RelationType,
    pub source: Id,
    pub target: Id,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub timestamp_ms: i64,
    pub resources: Vec<Resource>,
    pub relations: Vec<Relation>,
}

impl Graph {
    pub fn count(&self, kind: ResourceType) -> usize {
        self.resources.iter().filter(|r| r.kind == kind).count()
    }
}

/// What the builder remembers from one graph to the next, so that timestamps mean "first
/// observed in this state": the fingerprint and timestamp of every resource, and the
/// timestamp of every relation, with the build that last saw each.
///
/// Entries that came from a node's Docker API outlive a refresh in which that node could
/// not be read, for [`HISTORY_GRACE`] builds: a node whose minion was unreachable for a
/// while comes back with the timestamps its unchanged containers had, instead of looking
/// new. Everything else is forgotten as soon as it is not seen.
#[derive(Debug, Clone, Default)]
pub struct History {
    generation: u64,
    resources: IdMap<Id, Entry<(u64, i64)>>,
    relations: IdMap<(RelationType, Id, Id), Entry<i64>>,
}

/// A remembered value, the build that last saw it, and the node it came from, if any.
#[derive(Debug, Clone)]
struct Entry<T> {
    value: T,
    seen: u64,
    node: Option<Arc<str>>,
}

/// Builds an unseen entry is kept for.
pub const HISTORY_GRACE: u64 = 30;

impl History {
    pub fn is_empty(&self) -> bool {
        self.resources.is_empty()
    }

    /// Carries over from `previous` the entries of `unread_nodes` this build did not see,
    /// while they are within the grace period.
    fn carry_over(&mut self, previous: &History, unread_nodes: &[String]) {
        if unread_nodes.is_empty() {
            return;
        }
        let generation = self.generation;
        let keep = |node: &Option<Arc<str>>, seen: u64| {
            generation - seen < HISTORY_GRACE
                && node
                    .as_deref()
                    .is_some_and(|n| unread_nodes.iter().any(|u| u == n))
        };
        for (id, entry) in &previous.resources {
            if keep(&entry.node, entry.seen) && !self.resources.contains_key(id) {
                self.resources.insert(id.clone(), entry.clone());
            }
        }
        for (key, entry) in &previous.relations {
            if keep(&entry.node, entry.seen) && !self.relations.contains_key(key) {
                self.relations.insert(key.clone(), entry.clone());
            }
        }
    }
}

/// Settings of the builder that do not come from the cluster.
#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub cluster_name: String,
}

/// Builds the graph of `collected` at time `now_ms`. Pure: same inputs, same graph.
pub fn build(
    collected: &Collected,
    options: &BuildOptions,
    now_ms: i64,
    previous: &History,
) -> (Graph, History) {
    let mut b = Builder {
        previous,
        now_ms,
        graph: Graph {
            timestamp_ms: now_ms,
            resources: Vec::with_capacity(previous.resources.len()),
            relations: Vec::with_capacity(previous.relations.len()),
        },
        // A graph is about the size of the previous one: size the maps once.
        history: History {
            generation: previous.generation + 1,
            resources: IdMap::with_capacity_and_hasher(
                previous.resources.len(),
                Default::default(),
            ),
            relations: IdMap::with_capacity_and_hasher(
                previous.relations.len(),
                Default::default(),
            ),
        },
        ids: IdSet::with_capacity_and_hasher(previous.resources.len(), Default::default()),
        node: None,
    };
    b.build(collected, options);
    b.history.carry_over(previous, &collected.unread_nodes);
    (b.graph, b.history)
}

struct Builder<'p> {
    previous: &'p History,
    now_ms: i64,
    graph: Graph,
    history: History,
    ids: IdSet<Id>,
    /// The node whose Docker data is being added, while it is.
    node: Option<Arc<str>>,
}

impl Builder<'_> {
    /// Adds a resource unless its ID is taken (duplicates in the input keep the first).
    fn resource(
        &mut self,
        kind: ResourceType,
        id: Id,
        properties: RawJson,
        fingerprint: u64,
        label: String,
        alternate_label: Option<String>,
    ) -> bool {
        if !self.ids.insert(id.clone()) {
            return false;
        }
        let timestamp_ms = match self.previous.resources.get(&id) {
            Some(e) if e.value.0 == fingerprint => e.value.1,
            _ => self.now_ms,
        };
        let entry = Entry {
            value: (fingerprint, timestamp_ms),
            seen: self.history.generation,
            node: self.node.clone(),
        };
        self.history.resources.insert(id.clone(), entry);
        self.graph.resources.push(Resource {
            id,
            kind,
            timestamp_ms,
            properties,
            label,
            alternate_label,
        });
        true
    }

    fn relation(&mut self, kind: RelationType, source: &Id, target: &Id) {
        let key = (kind, source.clone(), target.clone());
        if self.history.relations.contains_key(&key) {
            return;
        }
        let timestamp_ms = self
            .previous
            .relations
            .get(&key)
            .map_or(self.now_ms, |e| e.value);
        let entry = Entry {
            value: timestamp_ms,
            seen: self.history.generation,
            node: self.node.clone(),
        };
        self.history.relations.insert(key, entry);
        self.graph.relations.push(Relation {
            kind,
            source: source.clone(),
            target: target.clone(),
            timestamp_ms,
        });
    }

    fn build(&mut self, collected: &Collected, options: &BuildOptions) {
        let kube = &collected.kube;
        let cluster_id: Id = format!("Cluster:{}", options.cluster_name).into();
        let cluster_props = serde_json::json!({ "name": options.cluster_name }).to_string();
        let cluster_fp = crate::fingerprint::plain(&cluster_props).unwrap_or(0);
        self.resource(
            ResourceType::Cluster,
            cluster_id.clone(),
            cluster_props.into(),
            cluster_fp,
            options.cluster_name.clone(),
            None,
        );

        let mut node_ids: HashMap<&str, Id> = HashMap::new();
        for node in &kube.nodes {
            let id: Id = format!("Node:{}", node.object.meta.name).into();
            if self.object(
                ResourceType::Node,
                id.clone(),
                &node.object,
                node.hostname.clone(),
            ) {
                self.relation(RelationType::Contains, &cluster_id, &id);
                node_ids.insert(&node.object.meta.name, id);
            }
        }

        // Pods: the index of pods kept in the graph, by uid and by (namespace, name).
        let mut pod_ids: Vec<Option<Id>> = Vec::with_capacity(kube.pods.len());
        let mut pods_by_uid: HashMap<&str, usize> = HashMap::new();
        let mut pods_by_name: HashMap<(&str, &str), usize> = HashMap::new();
        let mut pods_by_container: HashMap<&str, usize> = HashMap::new();
        for (i, pod) in kube.pods.iter().enumerate() {
            let meta = &pod.object.meta;
            let id: Id = format!("Pod:{}/{}", meta.namespace, meta.name).into();
            if !self.object(
                ResourceType::Pod,
                id.clone(),
                &pod.object,
                meta.name.clone(),
            ) {
                pod_ids.push(None);
                continue;
            }
            if let Some(node_id) = pod.node_name.as_deref().and_then(|n| node_ids.get(n)) {
                self.relation(RelationType::Runs, node_id, &id);
            }
            if !meta.uid.is_empty() {
                pods_by_uid.entry(&meta.uid).or_insert(i);
            }
            pods_by_name
                .entry((&meta.namespace, &meta.name))
                .or_insert(i);
            for cid in &pod.container_ids {
                pods_by_container.entry(cid).or_insert(i);
            }
            pod_ids.push(Some(id));
        }

        let index = SelectorIndex::new(&kube.pods, &pod_ids);
        for (kind, rel, list) in [
            (
                ResourceType::Service,
                RelationType::LoadBalances,
                &kube.services,
            ),
            (
                ResourceType::ReplicationController,
                RelationType::Monitors,
                &kube.controllers,
            ),
        ] {
            for selecting in list.iter() {
                self.selecting(kind, rel, selecting, &cluster_id, &index, &pod_ids);
            }
        }

        // Containers, their processes and images, node by node.
        let pods = PodLookup {
            pods: &kube.pods,
            ids: &pod_ids,
            by_uid: &pods_by_uid,
            by_name: &pods_by_name,
            by_container: &pods_by_container,
        };
        let mut image_ids: HashMap<&str, Id> = HashMap::new();
        for node_docker in &collected.docker {
            self.node = Some(Arc::from(node_docker.node_name.as_str()));
            for image in &node_docker.images {
                let id: Id = format!("Image:{}", image.id).into();
                self.resource(
                    ResourceType::Image,
                    id.clone(),
                    image.raw.clone(),
                    image.fingerprint,
                    hex12(&image.id).to_string(),
                    Some(image.name.clone()),
                );
                image_ids.entry(&image.id).or_insert(id);
            }
        }
        for node_docker in &collected.docker {
            self.node = Some(Arc::from(node_docker.node_name.as_str()));
            let node_id = node_ids.get(node_docker.node_name.as_str());
            for observed in &node_docker.containers {
                let c = &observed.container;
                let pod = pods.find(c);
                let short_name = pod
                    .and_then(|_| short_container_name(c))
                    .unwrap_or_else(|| c.name.clone());
                let id: Id = format!("Container:{}", c.id).into();
                let label = format!("{short_name}/{}", hex12(&c.id));
                if !self.resource(
                    ResourceType::Container,
                    id.clone(),
                    c.raw.clone(),
                    c.fingerprint,
                    label,
                    None,
                ) {
                    continue;
                }
                match pod {
                    Some(pod_id) => self.relation(RelationType::Contains, pod_id, &id),
                    None => {
                        if let Some(node_id) = node_id {
                            self.relation(RelationType::Runs, node_id, &id);
                        }
                    }
                }
                if let Some(image_id) = image_ids.get(c.image_id.as_str()) {
                    self.relation(RelationType::CreatedFrom, &id, image_id);
                }
                for process in &observed.processes {
                    let pid: Id = format!("Process:{}/{}", hex12(&c.id), process.pid).into();
                    if self.resource(
                        ResourceType::Process,
                        pid.clone(),
                        process.raw.clone(),
                        process.fingerprint,
                        process.pid.clone(),
                        None,
                    ) {
                        self.relation(RelationType::Contains, &id, &pid);
                    }
                }
            }
        }
        self.node = None;
        // Resources are listed by type; within a type, in the order they were observed.
        self.graph.resources.sort_by_key(|r| r.kind);
    }

    fn object(&mut self, kind: ResourceType, id: Id, object: &KubeObject, label: String) -> bool {
        self.resource(
            kind,
            id,
            object.raw.clone(),
            object.fingerprint,
            label,
            None,
        )
    }

    fn selecting(
        &mut self,
        kind: ResourceType,
        relation: RelationType,
        selecting: &Selecting,
        cluster_id: &Id,
        index: &SelectorIndex,
        pod_ids: &[Option<Id>],
    ) {
        let meta = &selecting.object.meta;
        let id: Id = format!("{}:{}/{}", kind.as_str(), meta.namespace, meta.name).into();
        if !self.object(kind, id.clone(), &selecting.object, meta.name.clone()) {
            return;
        }
        self.relation(RelationType::Contains, cluster_id, &id);
        if let Some(selector) = &selecting.selector {
            for pod in index.select(&meta.namespace, selector) {
                if let Some(pod_id) = &pod_ids[pod] {
                    self.relation(relation, &id, pod_id);
                }
            }
        }
    }
}

/// Pods by namespace, label and value: a selector is answered from its rarest label.
struct SelectorIndex<'a> {
    postings: HashMap<(&'a str, &'a str, &'a str), Vec<usize>>,
    pods: &'a [Pod],
}

impl<'a> SelectorIndex<'a> {
    fn new(pods: &'a [Pod], ids: &[Option<Id>]) -> SelectorIndex<'a> {
        let mut postings: HashMap<(&str, &str, &str), Vec<usize>> = HashMap::new();
        for (i, pod) in pods.iter().enumerate() {
            if ids[i].is_none() {
                continue;
            }
            let meta = &pod.object.meta;
            for (k, v) in &meta.labels {
                postings
                    .entry((meta.namespace.as_str(), k.as_str(), v.as_str()))
                    .or_default()
                    .push(i);
            }
        }
        SelectorIndex { postings, pods }
    }

    /// Pods of `namespace` whose labels include every pair of a non-empty `selector`.
    fn select(&self, namespace: &str, selector: &BTreeMap<String, String>) -> Vec<usize> {
        let mut rarest: Option<&Vec<usize>> = None;
        for (k, v) in selector {
            match self.postings.get(&(namespace, k.as_str(), v.as_str())) {
                None => return Vec::new(),
                Some(list) if rarest.is_none_or(|r| list.len() < r.len()) => rarest = Some(list),
                Some(_) => {}
            }
        }
        let Some(candidates) = rarest else {
            return Vec::new();
        };
        candidates
            .iter()
            .copied()
            .filter(|&i| {
                let labels = &self.pods[i].object.meta.labels;
                selector.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .collect()
    }
}

struct PodLookup<'a> {
    pods: &'a [Pod],
    ids: &'a [Option<Id>],
    by_uid: &'a HashMap<&'a str, usize>,
    by_name: &'a HashMap<(&'a str, &'a str), usize>,
    by_container: &'a HashMap<&'a str, usize>,
}

impl<'a> PodLookup<'a> {
    /// The graph ID of the pod a container belongs to, by the first rule of SPEC §3 that
    /// applies: the kubelet's labels, the pod's container statuses, the kubelet's name.
    fn find(&self, c: &crate::model::Container) -> Option<&'a Id> {
        let by_labels = || {
            let uid = c.labels.get("io.kubernetes.pod.uid");
            if let Some(&i) = uid.and_then(|u| self.by_uid.get(u.as_str())) {
                return Some(i);
            }
            let ns = c.labels.get("io.kubernetes.pod.namespace")?;
            let name = c.labels.get("io.kubernetes.pod.name")?;
            self.by_name.get(&(ns.as_str(), name.as_str())).copied()
        };
        let by_status = || self.by_container.get(c.id.as_str()).copied();
        let by_name = || {
            let k = KubeletName::parse(&c.name)?;
            if let Some(&i) = self.by_uid.get(k.uid) {
                return Some(i);
            }
            self.by_name.get(&(k.namespace, k.pod)).copied()
        };
        let index = by_labels().or_else(by_status).or_else(by_name)?;
        debug_assert!(index < self.pods.len());
        self.ids[index].as_ref()
    }
}

/// The parts of a kubelet container name: `k8s_CONTAINER[.HASH]_POD_NAMESPACE_UID_ATTEMPT`,
/// or the 2015 form `k8s_CONTAINER.HASH_POD.NAMESPACE.api_UID_RANDOM`.
#[derive(Debug, PartialEq, Eq)]
pub struct KubeletName<'a> {
    pub container: &'a str,
    pub pod: &'a str,
    pub namespace: &'a str,
    pub uid: &'a str,
}

impl<'a> KubeletName<'a> {
    pub fn parse(name: &'a str) -> Option<KubeletName<'a>> {
        let name = name.strip_prefix('/').unwrap_or(name);
        let parts: Vec<&str> = name.split('_').collect();
        let container = |p: &'a str| p.split('.').next().unwrap_or(p);
        match parts.as_slice() {
            ["k8s", c, pod, ns, uid, _attempt] if !pod.is_empty() && !ns.is_empty() => {
                Some(KubeletName {
                    container: container(c),
                    pod,
                    namespace: ns,
                    uid,
                })
            }
            ["k8s", c, pod_ns, uid, _random] => {
                let pod_ns = pod_ns.strip_suffix(".api").unwrap_or(pod_ns);
                // Namespaces cannot hold a dot, pod names can: split at the last one.
                let (pod, ns) = pod_ns.rsplit_once('.')?;
                Some(KubeletName {
                    container: container(c),
                    pod,
                    namespace: ns,
                    uid,
                })
            }
            _ => None,
        }
    }
}

/// The pod's name for a container: the kubelet's label, else the kubelet name's part.
fn short_container_name(c: &crate::model::Container) -> Option<String> {
    if let Some(name) = c.labels.get("io.kubernetes.container.name") {
        return Some(name.clone());
    }
    KubeletName::parse(&c.name).map(|k| k.container.to_string())
}

/// The first 12 hex digits of an ID, after any `sha256:` prefix.
pub fn hex12(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    match hex.char_indices().nth(12) {
        Some((end, _)) => &hex[..end],
        None => hex,
    }
}
