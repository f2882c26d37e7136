//! The rules of the graph (contract §3): resource IDs and labels, and the relations.
//!
//! The builder adds the Cluster root, then every listed Kubernetes object (in the table's
//! order of kinds), then the relations of those objects, kind by kind, each by its rule in
//! [`Builder::object_relations`]; then, node by node, images, containers and processes.
//! Relations come after all objects so that a rule can point at any object; their order in
//! the graph is the order of the kinds, then of the objects.

use std::collections::HashMap;
use std::sync::Arc;

use super::fingerprint;
use super::history::{Entry, History};
use super::id::{Id, IdMap, IdSet};
use super::observed::{Collected, KubeObject, NodeContainers, RawJson};
use super::pods::{short_container_name, PodLookup};
use super::selector::SelectorIndex;
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

/// The ID of a Kubernetes object: `Kind:NAMESPACE/NAME`, or `Kind:NAME` for kinds without
/// namespaces.
fn object_id(object: &KubeObject) -> Id {
    let meta = &object.meta;
    let namespaced = object.kind.info().api.is_some_and(|api| api.namespaced);
    if namespaced {
        format!("{}:{}/{}", object.kind, meta.namespace, meta.name).into()
    } else {
        format!("{}:{}", object.kind, meta.name).into()
    }
}

/// What the relation rules of Kubernetes objects may look up.
struct ObjectIndex<'a> {
    cluster: Id,
    /// Graph IDs of the listed objects, by kind and position; `None` for a duplicate.
    ids: Vec<Vec<Option<Id>>>,
    nodes: HashMap<&'a str, Id>,
    selectable: SelectorIndex<'a>,
}

impl ObjectIndex<'_> {
    fn id(&self, kind: Kind, index: usize) -> Option<&Id> {
        self.ids[kind.index()][index].as_ref()
    }
}

struct Builder<'p> {
    previous: &'p History,
    now_ms: i64,
    graph: Graph,
    history: History,
    ids: IdSet<Id>,
    /// The node whose runtime data is being added, while it is.
    node: Option<Arc<str>>,
}

impl Builder<'_> {
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

        // Every listed object, kind by kind.
        let mut ids: Vec<Vec<Option<Id>>> = (0..Kind::COUNT).map(|_| Vec::new()).collect();
        for kind in Kind::listed() {
            ids[kind.index()] = kube
                .of(kind)
                .iter()
                .map(|object| self.object(object))
                .collect();
        }
        let nodes: HashMap<&str, Id> = kube
            .of(Kind::NODE)
            .iter()
            .zip(&ids[Kind::NODE.index()])
            .filter_map(|(node, id)| Some((node.meta.name.as_str(), id.clone()?)))
            .collect();
        let selectable = {
            let pod_ids = &ids[Kind::POD.index()];
            SelectorIndex::new(kube.of(Kind::POD), |i| pod_ids[i].is_some())
        };
        let index = ObjectIndex {
            selectable,
            cluster,
            nodes,
            ids,
        };
        for kind in Kind::listed() {
            for (i, object) in kube.of(kind).iter().enumerate() {
                if let Some(id) = index.id(kind, i) {
                    self.object_relations(object, id, &index);
                }
            }
        }

        // Containers, their processes and images, node by node.
        let pods = PodLookup::new(kube.of(Kind::POD), &index.ids[Kind::POD.index()]);
        let mut images: HashMap<&str, Id> = HashMap::new();
        for node in &collected.nodes {
            self.images(node, &mut images);
        }
        for node in &collected.nodes {
            self.containers(node, &index.nodes, &pods, &images);
        }
        self.node = None;
        // Resources are listed by type; within a type, in the order they were observed.
        self.graph.resources.sort_by_key(|r| r.kind);
    }

    /// Adds a Kubernetes object; its graph ID unless that was taken.
    fn object(&mut self, object: &KubeObject) -> Option<Id> {
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

    /// The relations a Kubernetes object is the source or the target of: one rule per kind.
    fn object_relations(&mut self, object: &KubeObject, id: &Id, index: &ObjectIndex) {
        match object.kind {
            Kind::NODE => self.relation(RelationType::Contains, &index.cluster, id),
            Kind::POD => {
                let node = object
                    .pod()
                    .and_then(|p| p.node_name.as_deref())
                    .and_then(|n| index.nodes.get(n));
                if let Some(node) = node {
                    self.relation(RelationType::Runs, node, id);
                }
            }
            Kind::SERVICE => {
                self.relation(RelationType::Contains, &index.cluster, id);
                self.selected_pods(RelationType::LoadBalances, object, id, index);
            }
            Kind::REPLICATION_CONTROLLER => {
                self.relation(RelationType::Contains, &index.cluster, id);
                self.selected_pods(RelationType::Monitors, object, id, index);
            }
            _ => {}
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
        for pod in index.selectable.select(&object.meta.namespace, selector) {
            if let Some(pod_id) = index.id(Kind::POD, pod) {
                self.relation(relation, id, pod_id);
            }
        }
    }

    /// One node's images; the first node to show an image names it for all.
    fn images<'a>(&mut self, node: &'a NodeContainers, images: &mut HashMap<&'a str, Id>) {
        self.node = Some(Arc::from(node.node_name.as_str()));
        for image in &node.images {
            let id: Id = format!("Image:{}", image.id).into();
            self.resource(
                Kind::IMAGE,
                id.clone(),
                image.raw.clone(),
                image.fingerprint,
                hex12(&image.id).to_string(),
                Some(image.name.clone()),
            );
            images.entry(&image.id).or_insert(id);
        }
    }

    /// One node's containers and their processes.
    fn containers(
        &mut self,
        node: &NodeContainers,
        nodes: &HashMap<&str, Id>,
        pods: &PodLookup,
        images: &HashMap<&str, Id>,
    ) {
        self.node = Some(Arc::from(node.node_name.as_str()));
        let node_id = nodes.get(node.node_name.as_str());
        for observed in &node.containers {
            let c = &observed.container;
            let pod = pods.find(c);
            let short_name = pod
                .and_then(|_| short_container_name(c))
                .unwrap_or_else(|| c.name.clone());
            let id: Id = format!("Container:{}", c.id).into();
            let label = format!("{short_name}/{}", hex12(&c.id));
            if !self.resource(
                Kind::CONTAINER,
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
                }
            }
        }
    }
}
