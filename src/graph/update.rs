//! The graph made again from the last one when objects changed only in place: most of what
//! a watch brings (a pod's status or labels, a node's conditions, a Deployment's replicas
//! counted). Building a 150,000-pod graph whole takes seconds; changing the resources that
//! changed takes what they are.
//!
//! [`update`] applies only where the result is the graph [`build`](super::build()) would
//! make: no object added, removed or renamed, nothing the relation rules read changed (an
//! object's uid, owners and facts; a pod's labels only where no selector of its namespace
//! tells the old from the new), and of the nodes' containers and images only their text.
//! Then every relation stands, and each changed resource keeps its place, label and
//! annotations; its properties are the new text, and its timestamp moves only when its
//! fingerprint did. Anything else says `None`, and the caller builds the graph whole.

use std::collections::HashMap;
use std::sync::Arc;

use super::diff::GraphDiff;
use super::history::History;
use super::id::{Id, IdMap};
use super::observed::{Collected, Facts, KubeObject, NodeContainers, ObservedContainer, RawJson};
use super::selector::LabelSelector;
use super::{Graph, Kind};

/// What a graph was made from, kept to make the next one from it.
#[derive(Debug, Default)]
pub struct Basis {
    collected: Collected,
    /// Where each resource stands in the graph.
    at: IdMap<Id, usize>,
}

impl Basis {
    /// The basis of `graph`, made from `collected`.
    pub fn new(collected: Collected, graph: &Graph) -> Basis {
        let mut at = IdMap::default();
        at.reserve(graph.resources.len());
        for (i, r) in graph.resources.iter().enumerate() {
            at.insert(r.id.clone(), i);
        }
        Basis { collected, at }
    }

    /// What the graph was made from.
    pub fn collected(&self) -> &Collected {
        &self.collected
    }
}

/// A graph made by [`update`]: the graph, what changed from the last, and where.
#[derive(Debug)]
pub struct Updated {
    pub graph: Graph,
    /// Only `changed` is ever filled: nothing is added or removed.
    pub diff: GraphDiff,
    /// The positions in the graph of the resources in `diff.changed`, ascending.
    pub positions: Vec<usize>,
}

/// One resource to change: where, its new text, and its fingerprint.
struct Edit {
    at: usize,
    properties: RawJson,
    fingerprint: u64,
}

/// The graph of `collected` made from `previous`, the graph of `basis`, when `collected`
/// differs from what `basis` holds only in place (see the module's page); `collected`
/// given back when it does not, or `basis` is not `previous`'s. On success `basis` and
/// `history` hold the new graph's.
pub fn update(
    previous: &Graph,
    basis: &mut Basis,
    history: &mut History,
    collected: Collected,
    now_ms: i64,
) -> Result<Updated, Collected> {
    if basis.at.len() != previous.resources.len() || !collected.unread_nodes.is_empty() {
        return Err(collected);
    }
    let mut edits = Vec::new();
    let in_place = kube_edits(previous, basis, &collected, &mut edits)
        .and_then(|()| node_edits(previous, basis, &collected, &mut edits))
        .is_some()
        && edits
            .iter()
            .all(|e| history.resources.contains_key(&previous.resources[e.at].id));
    if !in_place {
        return Err(collected);
    }
    edits.sort_by_key(|e| e.at);

    let mut graph = Graph {
        timestamp_ms: now_ms,
        resources: previous.resources.clone(),
        relations: previous.relations.clone(),
    };
    let mut diff = GraphDiff::default();
    let mut positions = Vec::with_capacity(edits.len());
    for edit in edits {
        let resource = &mut graph.resources[edit.at];
        let Some(entry) = history.resources.get_mut(&resource.id) else {
            continue;
        };
        if entry.value.0 != edit.fingerprint {
            entry.value = (edit.fingerprint, now_ms);
        }
        let before = resource.clone();
        resource.properties = edit.properties;
        resource.timestamp_ms = entry.value.1;
        if *resource != before {
            diff.changed.push((before, resource.clone()));
            positions.push(edit.at);
        }
    }
    basis.collected = collected;
    Ok(Updated {
        graph,
        diff,
        positions,
    })
}

/// The edits of the objects that changed in place; `None` if any was added, removed or
/// changed what a rule reads.
fn kube_edits(
    previous: &Graph,
    basis: &Basis,
    collected: &Collected,
    edits: &mut Vec<Edit>,
) -> Option<()> {
    let (old, new) = (&basis.collected.kube, &collected.kube);
    // Made on the first pod whose labels changed: each namespace's selectors.
    let mut selectors: Option<HashMap<&str, Vec<&LabelSelector>>> = None;
    for kind in Kind::listed() {
        let (before, after) = (old.of(kind), new.of(kind));
        if before.len() != after.len() {
            return None;
        }
        for (was, is) in before.iter().zip(after) {
            if Arc::ptr_eq(was, is) {
                continue;
            }
            if !same_rules_input(was, is) {
                return None;
            }
            if was.meta.labels != is.meta.labels && kind == Kind::POD {
                let selectors = selectors.get_or_insert_with(|| selectors_by_namespace(old));
                let told_apart =
                    selectors
                        .get(is.meta.namespace.as_str())
                        .is_some_and(|of_namespace| {
                            of_namespace
                                .iter()
                                .any(|s| s.matches(&was.meta.labels) != s.matches(&is.meta.labels))
                        });
                if told_apart {
                    return None;
                }
            }
            if !Kind::in_graph().any(|k| k == kind) {
                continue;
            }
            let id = super::build::object_id(is);
            edits.extend(edit(
                previous,
                basis,
                &id,
                &was.raw,
                &is.raw,
                is.fingerprint,
            ));
        }
    }
    Some(())
}

/// The edit that shows `raw` (of `fingerprint`) where the graph shows the resource `id`
/// with the text `was`; none when another observation of the same ID is the one shown
/// (the first of duplicates is).
fn edit(
    previous: &Graph,
    basis: &Basis,
    id: &Id,
    was: &RawJson,
    raw: &RawJson,
    fingerprint: u64,
) -> Option<Edit> {
    let &at = basis.at.get(id)?;
    Arc::ptr_eq(&previous.resources.get(at)?.properties, was).then(|| Edit {
        at,
        properties: raw.clone(),
        fingerprint,
    })
}

/// Whether the relation rules read the same of `was` and `is`, labels aside.
fn same_rules_input(was: &KubeObject, is: &KubeObject) -> bool {
    was.kind == is.kind
        && was.meta.namespace == is.meta.namespace
        && was.meta.name == is.meta.name
        && was.meta.uid == is.meta.uid
        && was.meta.owners == is.meta.owners
        && was.facts == is.facts
}

/// The selectors of every object that selects pods by label, by namespace.
fn selectors_by_namespace(kube: &super::observed::KubeState) -> HashMap<&str, Vec<&LabelSelector>> {
    let mut by_namespace: HashMap<&str, Vec<&LabelSelector>> = HashMap::new();
    for kind in Kind::listed() {
        for object in kube.of(kind) {
            if let Facts::Selector(Some(selector)) = &object.facts {
                by_namespace
                    .entry(object.meta.namespace.as_str())
                    .or_default()
                    .push(selector);
            }
        }
    }
    by_namespace
}

/// The edits of the containers and images whose text changed; `None` if the nodes differ
/// in anything else.
fn node_edits(
    previous: &Graph,
    basis: &Basis,
    collected: &Collected,
    edits: &mut Vec<Edit>,
) -> Option<()> {
    let (before, after) = (&basis.collected.nodes, &collected.nodes);
    if before.len() != after.len() {
        return None;
    }
    for (was, is) in before.iter().zip(after) {
        if !same_node_frame(was, is) {
            return None;
        }
        for (c_was, c_is) in was.containers.iter().zip(&is.containers) {
            if Arc::ptr_eq(&c_was.container, &c_is.container) {
                if !same_processes(c_was, c_is) {
                    return None;
                }
                continue;
            }
            let (a, b) = (&*c_was.container, &*c_is.container);
            let same_frame = a.id == b.id
                && a.name == b.name
                && a.image_id == b.image_id
                && a.labels == b.labels
                && a.sandbox == b.sandbox
                && c_was.stale_since_ms == c_is.stale_since_ms
                && c_is.processes.is_empty()
                && c_was.processes.is_empty();
            if !same_frame {
                return None;
            }
            if Arc::ptr_eq(&a.raw, &b.raw) {
                continue;
            }
            let id: Id = format!("Container:{}", b.id).into();
            edits.extend(edit(previous, basis, &id, &a.raw, &b.raw, b.fingerprint));
        }
        for (i_was, i_is) in was.images.iter().zip(&is.images) {
            if Arc::ptr_eq(i_was, i_is) || Arc::ptr_eq(&i_was.raw, &i_is.raw) {
                continue;
            }
            if i_was.id != i_is.id || i_was.name != i_is.name {
                return None;
            }
            let id: Id = format!("Image:{}", i_is.id).into();
            edits.extend(edit(
                previous,
                basis,
                &id,
                &i_was.raw,
                &i_is.raw,
                i_is.fingerprint,
            ));
        }
    }
    Some(())
}

/// The same node, with the same containers and images in the same order (their text aside).
fn same_node_frame(was: &NodeContainers, is: &NodeContainers) -> bool {
    was.node_name == is.node_name
        && was.from_pod_status == is.from_pod_status
        && was.containers.len() == is.containers.len()
        && was.images.len() == is.images.len()
        && was.containers.iter().zip(&is.containers).all(|(a, b)| {
            Arc::ptr_eq(&a.container, &b.container) || a.container.id == b.container.id
        })
        && was
            .images
            .iter()
            .zip(&is.images)
            .all(|(a, b)| Arc::ptr_eq(a, b) || a.id == b.id)
}

/// The same processes, read at the same time.
fn same_processes(was: &ObservedContainer, is: &ObservedContainer) -> bool {
    was.processes_omitted == is.processes_omitted
        && was.stale_since_ms == is.stale_since_ms
        && was.processes.len() == is.processes.len()
        && was
            .processes
            .iter()
            .zip(&is.processes)
            .all(|(a, b)| a.pid == b.pid && Arc::ptr_eq(&a.raw, &b.raw))
}
