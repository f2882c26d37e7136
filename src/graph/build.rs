//! The rules of the graph (contract §3): resource IDs and labels, and the relations.
//!
//! The builder adds the Cluster root, then every listed Kubernetes object the graph shows
//! (in the table's order of kinds), then the relations of those objects, kind by kind, each
//! by its rule in [`Builder::object_relations`] — and, for every kind, who owns it
//! (`ownerReferences`, by uid) and, when nothing in the graph does, the namespace that
//! holds it; then, node by node, images, containers and processes. Relations come after all
//! objects so that a rule can point at any object; their order in the graph is the order of
//! the kinds, then of the objects.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::fingerprint;
use super::history::{Entry, History};
use super::id::{Id, IdMap, IdSet};
use super::lookup::{lists_in_order, ObjectIndex, PodLookup, Uids};
use super::observed::{Collected, Facts, KubeObject, NodeContainers, PodRef, RawJson};
use super::pods::{pod_of, short_container_name};
use super::update::Basis;
use super::{hex12, Graph, Kind, Relation, RelationType, Resource};

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
    let (graph, history, _) = build_whole(collected, options, now_ms, previous);
    (graph, history)
}

/// [`build`], keeping what [`update`](super::update::update) needs to make the next graph
/// from this one.
pub fn build_with_basis(
    collected: Collected,
    options: &BuildOptions,
    now_ms: i64,
    previous: &History,
) -> (Graph, History, Basis) {
    let (graph, history, made) = build_whole(&collected, options, now_ms, previous);
    let basis = Basis::new(collected, &graph, made);
    (graph, history, basis)
}

/// Where the relations of each emitter lie in a graph: the builder adds them one listed
/// object after the other (kind by kind, in list order), then node by node.
#[derive(Debug, Clone, Default)]
pub(super) struct Emissions {
    /// By kind index, then by position in the kind's list; empty for an object the graph
    /// does not show.
    pub(super) objects: Vec<Vec<Range<usize>>>,
    /// By position in the collected nodes.
    pub(super) nodes: Vec<Range<usize>>,
    /// By node, then by its image: whether the graph shows this node's observation of the
    /// image (the first node to show an ID names it for all).
    pub(super) images_shown: Vec<Vec<bool>>,
    /// By node, then by its container: the same for containers.
    pub(super) containers_shown: Vec<Vec<bool>>,
    /// By node: the containers and processes it adds, in order.
    pub(super) node_resources: Vec<Vec<(Kind, Id)>>,
}

/// What a whole build leaves for the next graph made from it: where each emitter's
/// relations lie, the graph ID of every listed object (by kind and position) and the uids.
#[derive(Debug, Default)]
pub(super) struct Record {
    pub(super) emissions: Emissions,
    pub(super) ids: Vec<Vec<Option<Id>>>,
    pub(super) uids: Uids,
    /// By kind: whether its list was strictly sorted.
    pub(super) in_order: Vec<bool>,
}

fn build_whole(
    collected: &Collected,
    options: &BuildOptions,
    now_ms: i64,
    previous: &History,
) -> (Graph, History, Record) {
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
        source: None,
        stale_since: None,
        emissions: Emissions::default(),
    };
    let (ids, uids, in_order) = b.build(collected, options);
    b.history.carry_over(previous, &collected.unread_nodes);
    let made = Record {
        emissions: b.emissions,
        ids,
        uids,
        in_order,
    };
    (b.graph, b.history, made)
}

/// The ID of a Kubernetes object: `Kind:NAMESPACE/NAME`, or `Kind:NAME` for kinds without
/// namespaces.
pub(super) fn object_id(object: &KubeObject) -> Id {
    let meta = &object.meta;
    if object.kind.namespaced() {
        format!("{}:{}/{}", object.kind, meta.namespace, meta.name).into()
    } else {
        format!("{}:{}", object.kind, meta.name).into()
    }
}

/// The `source` annotation of a node's containers and images.
fn node_source(node: &NodeContainers) -> Option<&'static str> {
    node.from_pod_status.then_some("kubernetes")
}

pub(super) struct Builder<'p> {
    previous: &'p History,
    now_ms: i64,
    pub(super) graph: Graph,
    pub(super) history: History,
    ids: IdSet<Id>,
    /// The node whose runtime data is being added, while it is.
    node: Option<Arc<str>>,
    /// Where that node's containers and images were learnt, when not from its runtime.
    source: Option<&'static str>,
    /// When the container being added, and its processes, were read, if before this
    /// refresh.
    stale_since: Option<i64>,
    pub(super) emissions: Emissions,
}

impl<'p> Builder<'p> {
    /// A builder of some of a graph's resources and relations, as the builder of the whole
    /// graph that `previous` is the history of would make them, into a graph and history of
    /// its own.
    pub(super) fn part(previous: &'p History, now_ms: i64) -> Builder<'p> {
        Builder {
            previous,
            now_ms,
            graph: Graph::default(),
            history: History {
                generation: previous.generation,
                ..History::default()
            },
            ids: IdSet::default(),
            node: None,
            source: None,
            stale_since: None,
            emissions: Emissions::default(),
        }
    }

    /// Adds a resource unless its ID is taken (duplicates in the input keep the first).
    fn resource(
        &mut self,
        kind: Kind,
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
            label: label.into(),
            alternate_label: alternate_label.map(Into::into),
            source: self.source,
            stale_since_ms: self.stale_since,
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

    /// Builds the graph; the graph IDs of the listed objects, their uids, and which lists
    /// are in order.
    fn build(
        &mut self,
        collected: &Collected,
        options: &BuildOptions,
    ) -> (Vec<Vec<Option<Id>>>, Uids, Vec<bool>) {
        let kube = &collected.kube;
        let cluster: Id = format!("Cluster:{}", options.cluster_name).into();
        let cluster_props = serde_json::json!({ "name": options.cluster_name }).to_string();
        let cluster_fp = fingerprint::plain(&cluster_props).unwrap_or(0);
        self.resource(
            Kind::CLUSTER,
            cluster.clone(),
            cluster_props.into(),
            cluster_fp,
            options.cluster_name.clone(),
            None,
        );

        // Every listed object the graph shows, kind by kind.
        let mut ids: Vec<Vec<Option<Id>>> = (0..Kind::count()).map(|_| Vec::new()).collect();
        for kind in Kind::listed().filter(|k| Kind::in_graph().any(|g| g == *k)) {
            ids[kind.index()] = kube
                .of(kind)
                .iter()
                .map(|object| self.object(object))
                .collect();
        }
        let uids = Uids::new(kube, &ids);
        let in_order = lists_in_order(kube);
        let index = ObjectIndex::new(kube, in_order.clone(), ids, &uids, cluster);
        self.emissions.objects = (0..Kind::count()).map(|_| Vec::new()).collect();
        for kind in Kind::listed() {
            let mut ranges = Vec::with_capacity(kube.of(kind).len());
            for (i, object) in kube.of(kind).iter().enumerate() {
                let start = self.graph.relations.len();
                if let Some(id) = index.id(kind, i) {
                    self.object_relations(object, id, &index);
                }
                ranges.push(start..self.graph.relations.len());
            }
            self.emissions.objects[kind.index()] = ranges;
        }

        // Containers, their processes and images, node by node.
        let pods = index.pods();
        let mut images: HashMap<&str, Id> = HashMap::new();
        for node in &collected.nodes {
            self.images(node, &mut images);
        }
        for node in &collected.nodes {
            let start = self.graph.relations.len();
            self.containers(node, &index.nodes, &pods, &images);
            self.emissions.nodes.push(start..self.graph.relations.len());
        }
        self.node = None;
        self.source = None;
        // Resources are listed by type; within a type, in the order they were observed.
        self.graph.resources.sort_by_key(|r| r.kind);
        drop(pods);
        (index.into_ids(), uids, in_order)
    }

    /// Adds a Kubernetes object; its graph ID unless that was taken.
    pub(super) fn object(&mut self, object: &KubeObject) -> Option<Id> {
        let id = object_id(object);
        let label = match object.node() {
            Some(node) => node.hostname.clone(),
            None => object.meta.name.clone(),
        };
        self.resource(
            object.kind,
            id.clone(),
            object.raw.clone(),
            object.fingerprint,
            label,
            None,
        )
        .then_some(id)
    }

    /// The relations a Kubernetes object is the source or the target of: one rule per kind,
    /// then its owners and its namespace.
    pub(super) fn object_relations(&mut self, object: &KubeObject, id: &Id, index: &ObjectIndex) {
        let namespace = object.meta.namespace.as_str();
        let mut run_by_node = false;
        match (object.kind, &object.facts) {
            (Kind::NODE | Kind::NAMESPACE | Kind::PERSISTENT_VOLUME, _) => {
                self.relation(RelationType::Contains, &index.cluster, id)
            }
            (Kind::POD, Facts::Pod(pod)) => {
                if let Some(node) = pod.node_name.as_deref().and_then(|n| index.nodes.get(n)) {
                    self.relation(RelationType::Runs, node, id);
                    run_by_node = true;
                }
                for claim in &pod.claims {
                    if let Some(claim) =
                        index.named(Kind::PERSISTENT_VOLUME_CLAIM, namespace, claim)
                    {
                        self.relation(RelationType::Uses, id, claim);
                    }
                }
            }
            (Kind::SERVICE, _) => {
                self.relation(RelationType::Contains, &index.cluster, id);
                match index.endpoint_pods(namespace, &object.meta.name) {
                    Some(pods) => self.endpoint_pods(pods, namespace, id, index),
                    None => self.selected_pods(RelationType::LoadBalances, object, id, index),
                }
            }
            (Kind::REPLICATION_CONTROLLER, _) => {
                self.relation(RelationType::Contains, &index.cluster, id);
                self.selected_pods(RelationType::Monitors, object, id, index);
            }
            (Kind::INGRESS, Facts::Routes(services)) => {
                for service in services {
                    if let Some(service) = index.named(Kind::SERVICE, namespace, service) {
                        self.relation(RelationType::Routes, id, service);
                    }
                }
            }
            (Kind::PERSISTENT_VOLUME_CLAIM, Facts::Claim(Some(volume))) => {
                if let Some(volume) = index.named(Kind::PERSISTENT_VOLUME, "", volume) {
                    self.relation(RelationType::BindsTo, id, volume);
                }
            }
            (Kind::HORIZONTAL_POD_AUTOSCALER, Facts::ScaleTarget(Some(target))) => {
                let kind = match &target.group {
                    Some(group) => Kind::by_group_kind(group, &target.kind),
                    None => Kind::by_name(&target.kind),
                };
                let scaled = kind.and_then(|kind| index.named(kind, namespace, &target.name));
                if let Some(scaled) = scaled {
                    self.relation(RelationType::Scales, id, scaled);
                }
            }
            _ => {}
        }
        let mut owned = false;
        for uid in &object.meta.owners {
            if let Some(owner) = index.uids.first(uid) {
                self.relation(RelationType::Owns, owner, id);
                owned = true;
            }
        }
        // The namespace holds what nothing else in the graph does (a node holds its pods);
        // the cluster holds the extra kinds' cluster-wide objects nothing owns.
        if object.kind.namespaced() && !owned && !run_by_node {
            if let Some(ns) = index.named(Kind::NAMESPACE, "", namespace) {
                self.relation(RelationType::Contains, ns, id);
            }
        } else if object.kind.is_extra() && !object.kind.namespaced() && !owned {
            self.relation(RelationType::Contains, &index.cluster, id);
        }
    }

    /// `loadBalances` from a Service to the pods its EndpointSlices list.
    fn endpoint_pods(&mut self, pods: &[&PodRef], namespace: &str, id: &Id, index: &ObjectIndex) {
        for pod in pods {
            let by_uid = pod.uid.as_deref().and_then(|uid| index.uids.first(uid));
            let by_name = || {
                let ns = pod.namespace.as_deref().unwrap_or(namespace);
                index.named(Kind::POD, ns, &pod.name)
            };
            if let Some(pod_id) = by_uid.filter(|p| p.starts_with("Pod:")).or_else(by_name) {
                self.relation(RelationType::LoadBalances, id, pod_id);
            }
        }
    }

    /// `relation` from `id` to every pod of the object's namespace its selector matches.
    fn selected_pods(
        &mut self,
        relation: RelationType,
        object: &KubeObject,
        id: &Id,
        index: &ObjectIndex,
    ) {
        let Some(selector) = object.selector() else {
            return;
        };
        for pod in index.select(&object.meta.namespace, selector) {
            if let Some(pod_id) = index.id(Kind::POD, pod) {
                self.relation(relation, id, pod_id);
            }
        }
    }

    /// One node's images; the first node to show an image names it for all.
    pub(super) fn images<'a>(
        &mut self,
        node: &'a NodeContainers,
        images: &mut HashMap<&'a str, Id>,
    ) {
        self.node = Some(Arc::from(node.node_name.as_str()));
        self.source = node_source(node);
        let mut shown = Vec::with_capacity(node.images.len());
        for image in &node.images {
            let id: Id = format!("Image:{}", image.id).into();
            shown.push(self.resource(
                Kind::IMAGE,
                id.clone(),
                image.raw.clone(),
                image.fingerprint,
                hex12(&image.id).to_string(),
                Some(image.name.clone()),
            ));
            images.entry(&image.id).or_insert(id);
        }
        self.emissions.images_shown.push(shown);
    }

    /// One node's containers and their processes.
    pub(super) fn containers(
        &mut self,
        node: &NodeContainers,
        nodes: &HashMap<&str, Id>,
        pods: &PodLookup,
        images: &HashMap<&str, Id>,
    ) {
        self.node = Some(Arc::from(node.node_name.as_str()));
        self.source = node_source(node);
        let node_id = nodes.get(node.node_name.as_str());
        let mut shown = Vec::with_capacity(node.containers.len());
        let mut added_here = Vec::with_capacity(node.containers.len());
        for observed in &node.containers {
            let c = &observed.container;
            let pod = pod_of(pods, c);
            // A CRI sandbox is named as Docker's pause container is, so that a pod looks
            // the same whatever its node runs.
            let short_name = if c.sandbox && pod.is_some() {
                "POD".to_string()
            } else {
                pod.and_then(|_| short_container_name(c))
                    .unwrap_or_else(|| c.name.clone())
            };
            let id: Id = format!("Container:{}", c.id).into();
            let label = format!("{short_name}/{}", hex12(&c.id));
            self.stale_since = observed.stale_since_ms;
            let added = self.resource(
                Kind::CONTAINER,
                id.clone(),
                c.raw.clone(),
                c.fingerprint,
                label,
                None,
            );
            shown.push(added);
            if !added {
                self.stale_since = None;
                continue;
            }
            added_here.push((Kind::CONTAINER, id.clone()));
            match pod {
                Some(pod_id) => self.relation(RelationType::Contains, pod_id, &id),
                None => {
                    if let Some(node_id) = node_id {
                        self.relation(RelationType::Runs, node_id, &id);
                    }
                }
            }
            if let Some(image_id) = images.get(c.image_id.as_str()) {
                self.relation(RelationType::CreatedFrom, &id, image_id);
            }
            for process in &observed.processes {
                let pid: Id = format!("Process:{}/{}", hex12(&c.id), process.pid).into();
                if self.resource(
                    Kind::PROCESS,
                    pid.clone(),
                    process.raw.clone(),
                    process.fingerprint,
                    process.pid.clone(),
                    None,
                ) {
                    self.relation(RelationType::Contains, &id, &pid);
                    added_here.push((Kind::PROCESS, pid));
                }
            }
            self.stale_since = None;
        }
        self.emissions.containers_shown.push(shown);
        self.emissions.node_resources.push(added_here);
    }
}
