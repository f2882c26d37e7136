//! The graph made again from the last one: what [`build`](super::build()) would make of the
//! new input, at the cost of what changed rather than of the whole cluster. Building a
//! 150,000-pod graph whole takes seconds.
//!
//! Two ways, tried in turn:
//! - **In place**, for most of what a watch brings (a pod's status or labels, a node's
//!   conditions, a Deployment's replicas counted): no object added, removed or renamed,
//!   nothing the relation rules read changed (an object's uid, owners and facts; a pod's
//!   labels only where no selector of its namespace tells the old from the new), and of the
//!   nodes' containers and images only their text. Every relation stands, and each changed
//!   resource keeps its place, label and annotations; its properties are the new text, and
//!   its timestamp moves only when its fingerprint did.
//! - **Spliced**, for objects that came or went or changed what a rule reads: [`Plan`] finds
//!   every object and node whose rules may now find something else, those are made again
//!   with the builder's own functions, and everything else is the last graph's.
//!
//! What neither follows (a node or namespace that came or went, a node's runtime read
//! again) is given back, with why, and the caller builds the graph whole.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::sync::Arc;

use super::build::{Builder, Emissions, Record};
use super::diff::GraphDiff;
use super::history::History;
use super::id::{Id, IdMap, IdSet};
use super::lookup::{key, ObjectIndex, Uids};
use super::observed::{
    Collected, Facts, KubeObject, KubeState, NodeContainers, ObservedContainer, PodRef, RawJson,
};
use super::selector::LabelSelector;
use super::{Graph, Kind, Relation, RelationType, Resource};

/// What a graph was made from, kept to make the next one from it.
#[derive(Debug, Default)]
pub struct Basis {
    collected: Collected,
    /// Where each resource stands in the graph.
    at: Positions,
    /// Where each object's and node's relations stand in the graph.
    emissions: Emissions,
    /// The graph ID of every listed object, by kind and position in its list.
    ids: Vec<Vec<Option<Id>>>,
    /// The objects in the graph by uid.
    uids: Uids,
    /// By kind: whether its list is strictly sorted by key.
    in_order: Vec<bool>,
}

impl Basis {
    /// The basis of `graph`, made whole from `collected`.
    pub(super) fn new(collected: Collected, graph: &Graph, record: Record) -> Basis {
        Basis {
            collected,
            at: Positions::of(&graph.resources),
            emissions: record.emissions,
            ids: record.ids,
            uids: record.uids,
            in_order: record.in_order,
        }
    }

    /// Shows the objects that changed in place (by kind and position) in the uid index,
    /// which holds the objects themselves and would keep each one's old version alive.
    fn refresh_uids(&mut self, collected: &Collected, changed: &[(Kind, usize)]) {
        let (old, new) = (&self.collected.kube, &collected.kube);
        for &(kind, i) in changed {
            self.uids.refresh(&old.of(kind)[i], &new.of(kind)[i]);
        }
    }
}

/// A graph made by [`update`]: the graph, what changed from the last, and where.
#[derive(Debug)]
pub struct Updated {
    pub graph: Graph,
    pub diff: GraphDiff,
    /// What of the last graph the new one keeps, and where.
    pub kept: Kept,
}

impl Updated {
    /// Whether the graph is the last one, in the same order (a spliced graph may hold the
    /// same resources and relations in another order).
    pub fn same_as_last(&self) -> bool {
        self.diff.is_empty()
            && match &self.kept {
                Kept::AllBut(_) => true,
                Kept::Moved {
                    resources,
                    relations,
                } => {
                    let kept_in_place = |from: &[Option<usize>]| {
                        from.iter().enumerate().all(|(i, f)| *f == Some(i))
                    };
                    kept_in_place(resources) && kept_in_place(relations)
                }
            }
    }
}

/// What of the last graph a graph made from it keeps.
#[derive(Debug)]
pub enum Kept {
    /// Everything in its place but the resources at these positions, ascending (which
    /// are all `diff` holds: only changes).
    AllBut(Vec<usize>),
    /// By resource and by relation of the new graph: where it stood in the last graph,
    /// when it is the same there.
    Moved {
        resources: Vec<Option<usize>>,
        relations: Vec<Option<usize>>,
    },
}

/// A change [`update`] does not follow, with its input given back for the whole build.
#[derive(Debug)]
pub struct NotFollowed {
    pub collected: Collected,
    /// Why, for the log.
    pub why: &'static str,
}

impl NotFollowed {
    fn new(collected: Collected, why: &'static str) -> NotFollowed {
        NotFollowed { collected, why }
    }
}

/// One resource to change: where, its new text, and its fingerprint.
struct Edit {
    at: usize,
    properties: RawJson,
    fingerprint: u64,
}

impl Edit {
    /// The edit that shows `raw` (of `fingerprint`) as the resource `id`; none when the
    /// graph has no such resource.
    fn of(
        basis: &Basis,
        previous: &Graph,
        id: &Id,
        raw: &RawJson,
        fingerprint: u64,
    ) -> Option<Edit> {
        Some(Edit {
            at: basis.at.get(&previous.resources, id)?,
            properties: raw.clone(),
            fingerprint,
        })
    }
}

/// The graph of `collected` made from `previous`, the graph of `basis`, when `collected`
/// differs from what `basis` holds only in place (see the module's page), else with what
/// came, went or changed spliced in ([`splice`]); `collected` given back, with why, when
/// neither applies. On success `basis` and `history` hold the new graph's; when it is
/// given back, the graph is to be built whole (and `basis` may be emptied: it then
/// follows no graph).
pub fn update(
    previous: &Graph,
    basis: &mut Basis,
    history: &mut History,
    collected: Collected,
    now_ms: i64,
) -> Result<Updated, NotFollowed> {
    if basis.at.len() != previous.resources.len() {
        return Err(NotFollowed::new(collected, "the basis is another graph's"));
    }
    if !collected.unread_nodes.is_empty() {
        return Err(NotFollowed::new(collected, "nodes could not be read"));
    }
    let mut edits = Vec::new();
    let mut changed = Vec::new();
    let in_place = kube_edits(basis, previous, &collected, &mut edits, &mut changed)
        .and_then(|()| node_edits(basis, previous, &collected, &mut edits))
        .is_some()
        && edits
            .iter()
            .all(|e| history.resources.contains_key(&previous.resources[e.at].id));
    if !in_place {
        let spliced = splice(previous, basis, history, collected, now_ms);
        if spliced.is_err() {
            // A splice given up may have spent part of the basis: no later update may use it.
            *basis = Basis::default();
        }
        return spliced;
    }
    edits.sort_by_key(|e| e.at);
    // One resource, one edit (the sort keeps the first).
    edits.dedup_by_key(|e| e.at);

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
    basis.refresh_uids(&collected, &changed);
    basis.collected = collected;
    Ok(Updated {
        graph,
        diff,
        kept: Kept::AllBut(positions),
    })
}

/// The edits of the objects that changed in place, and where they stand (`changed`, by
/// kind and position); `None` if any was added, removed or changed what a rule reads.
fn kube_edits(
    basis: &Basis,
    previous: &Graph,
    collected: &Collected,
    edits: &mut Vec<Edit>,
    changed: &mut Vec<(Kind, usize)>,
) -> Option<()> {
    let (old, new) = (&basis.collected.kube, &collected.kube);
    // Made on the first pod whose labels changed: each namespace's selectors.
    let mut selectors: Option<HashMap<&str, Vec<&LabelSelector>>> = None;
    for kind in Kind::listed() {
        let (before, after) = (old.of(kind), new.of(kind));
        if before.len() != after.len() {
            return None;
        }
        let ids = basis.ids.get(kind.index()).map_or(&[][..], Vec::as_slice);
        for (i, (was, is)) in before.iter().zip(after).enumerate() {
            if Arc::ptr_eq(was, is) {
                continue;
            }
            if !same_rules_input(was, is) {
                return None;
            }
            changed.push((kind, i));
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
            // The same key: the same graph ID, if it has one (of two objects of one key,
            // the graph shows the first).
            if let Some(Some(id)) = ids.get(i) {
                edits.extend(Edit::of(basis, previous, id, &is.raw, is.fingerprint));
            }
        }
    }
    Some(())
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
    basis: &Basis,
    previous: &Graph,
    collected: &Collected,
    edits: &mut Vec<Edit>,
) -> Option<()> {
    let (before, after) = (&basis.collected.nodes, &collected.nodes);
    let shown = &basis.emissions;
    if before.len() != after.len()
        || shown.containers_shown.len() != before.len()
        || shown.images_shown.len() != before.len()
    {
        return None;
    }
    for (n, (was, is)) in before.iter().zip(after).enumerate() {
        if !same_node_frame(was, is) {
            return None;
        }
        let containers = was.containers.iter().zip(&is.containers);
        for (k, (c_was, c_is)) in containers.enumerate() {
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
            // Only the first node to show a container ID is shown for it.
            if Arc::ptr_eq(&a.raw, &b.raw) || !shown.containers_shown[n].get(k).copied()? {
                continue;
            }
            let id: Id = format!("Container:{}", b.id).into();
            edits.push(Edit::of(basis, previous, &id, &b.raw, b.fingerprint)?);
        }
        for (k, (i_was, i_is)) in was.images.iter().zip(&is.images).enumerate() {
            if Arc::ptr_eq(i_was, i_is) || Arc::ptr_eq(&i_was.raw, &i_is.raw) {
                continue;
            }
            if i_was.id != i_is.id || i_was.name != i_is.name {
                return None;
            }
            if !shown.images_shown[n].get(k).copied()? {
                continue;
            }
            let id: Id = format!("Image:{}", i_is.id).into();
            edits.push(Edit::of(basis, previous, &id, &i_is.raw, i_is.fingerprint)?);
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

/// How a listed object of the new lists relates to the last lists.
#[derive(Debug, Clone, Copy)]
enum Step {
    /// The very same object, at this position of the last list.
    Same(usize),
    /// The same key (namespace and name), another version, at this position.
    Changed(usize),
    Added,
}

/// Walks the last and the new list of a kind, the last one strictly sorted by namespace
/// and name (`before_in_order`), as watches keep them: each new object's step, and the last
/// list's positions removed. `None` when a list is not strictly sorted. What the two lists
/// share is told by pointer, and keys are compared only around what changed.
fn steps(
    before: &[Arc<KubeObject>],
    before_in_order: bool,
    after: &[Arc<KubeObject>],
) -> Option<(Vec<Step>, Vec<usize>)> {
    if !before_in_order {
        return None;
    }
    let mut out: Vec<Step> = Vec::with_capacity(after.len());
    let mut removed = Vec::new();
    let mut i = 0;
    for (j, object) in after.iter().enumerate() {
        let step = if before.get(i).is_some_and(|b| Arc::ptr_eq(b, object)) {
            i += 1;
            Step::Same(i - 1)
        } else {
            while i < before.len() && key(&before[i]) < key(object) {
                removed.push(i);
                i += 1;
            }
            if i < before.len() && key(&before[i]) == key(object) {
                i += 1;
                if Arc::ptr_eq(&before[i - 1], object) {
                    Step::Same(i - 1)
                } else {
                    Step::Changed(i - 1)
                }
            } else {
                Step::Added
            }
        };
        // Two objects of the last list follow each other in its order, which is sorted;
        // any other pair is compared.
        let both_were = |a: Step, b: Step| !matches!(a, Step::Added) && !matches!(b, Step::Added);
        if let Some(&last) = out.last() {
            if !both_were(last, step) && key(&after[j - 1]) >= key(object) {
                return None;
            }
        }
        out.push(step);
    }
    removed.extend(i..before.len());
    Some((out, removed))
}

/// What a graph made from the last one makes again.
struct Plan {
    /// By kind index: each new object's step.
    steps: Vec<Vec<Step>>,
    /// By kind index: the positions in the last list of the objects gone.
    removed: Vec<Vec<usize>>,
    /// By kind index and new position: whether the object's relations are made again.
    dirty: Vec<Vec<bool>>,
    /// By node: whether its containers and processes, and their relations, are.
    dirty_nodes: Vec<bool>,
}

/// A pod as it was and as it is: `None` before it came or after it went.
type PodChange<'a> = (Option<&'a KubeObject>, Option<&'a KubeObject>);

impl Plan {
    /// Which objects and nodes may show or find something else, by the rules of
    /// `build.rs`: an object that changed; an object whose owner (by uid) came or went; a
    /// selector's holder where a pod it would select came, went or changed labels; a
    /// Service whose slices changed or name a pod that came or went; a pod whose claim, a
    /// claim whose volume, an Ingress whose Service, an autoscaler whose target came or
    /// went; a node read from pods' statuses whose reading changed, and every node read
    /// from its runtime when a pod came or went (its containers may find another pod).
    /// Why not, for what this does not follow: a node or namespace that came or went, a
    /// node's runtime read again, a kind named since, lists out of order.
    fn of(basis: &Basis, collected: &Collected) -> Result<Plan, &'static str> {
        let (old, new) = (&basis.collected.kube, &collected.kube);
        if basis.emissions.objects.len() != Kind::count() {
            return Err("a kind was named since");
        }
        let mut plan = Plan {
            steps: (0..Kind::count()).map(|_| Vec::new()).collect(),
            removed: (0..Kind::count()).map(|_| Vec::new()).collect(),
            dirty: (0..Kind::count()).map(|_| Vec::new()).collect(),
            dirty_nodes: Vec::new(),
        };
        // What came, went or changed, as the rules look things up.
        let mut uids: HashSet<&str> = HashSet::new();
        let mut named: HashSet<(Kind, &str, &str)> = HashSet::new();
        let mut pods: Vec<PodChange<'_>> = Vec::new();
        let mut pods_moved = false;
        let mut services: HashSet<(&str, &str)> = HashSet::new();
        for kind in Kind::listed() {
            let (before, after) = (old.of(kind), new.of(kind));
            let in_order = basis.in_order.get(kind.index()).copied().unwrap_or(false);
            let (steps, removed) =
                steps(before, in_order, after).ok_or("a list is out of order")?;
            let came: Vec<&KubeObject> = steps
                .iter()
                .zip(after)
                .filter(|(s, _)| matches!(s, Step::Added))
                .map(|(_, o)| &**o)
                .collect();
            let went: Vec<&KubeObject> = removed.iter().map(|&o| &*before[o]).collect();
            let changed: Vec<(&KubeObject, &KubeObject)> = steps
                .iter()
                .zip(after)
                .filter_map(|(s, o)| match s {
                    Step::Changed(i) => Some((&*before[*i], &**o)),
                    _ => None,
                })
                .collect();
            if (!came.is_empty() || !went.is_empty())
                && (kind == Kind::NODE || kind == Kind::NAMESPACE)
            {
                return Err("a node or namespace came or went");
            }
            for o in came.iter().chain(&went) {
                if !o.meta.uid.is_empty() {
                    uids.insert(&o.meta.uid);
                }
                let ns = if kind.namespaced() {
                    o.meta.namespace.as_str()
                } else {
                    ""
                };
                named.insert((kind, ns, &o.meta.name));
            }
            for (was, is) in &changed {
                if was.meta.uid != is.meta.uid {
                    uids.insert(&was.meta.uid);
                    uids.insert(&is.meta.uid);
                }
            }
            if kind == Kind::POD {
                pods.extend(came.iter().map(|p| (None, Some(*p))));
                pods.extend(went.iter().map(|p| (Some(*p), None)));
                pods_moved |= !came.is_empty() || !went.is_empty();
                for (was, is) in &changed {
                    let other_uid = was.meta.uid != is.meta.uid;
                    if other_uid || was.meta.labels != is.meta.labels {
                        pods.push((Some(*was), Some(*is)));
                    }
                    pods_moved |= other_uid || was.facts != is.facts;
                }
            }
            if kind == Kind::ENDPOINT_SLICE {
                let all = came
                    .iter()
                    .chain(&went)
                    .copied()
                    .chain(changed.iter().flat_map(|(a, b)| [*a, *b]));
                for o in all {
                    if let Some((service, _)) = o.endpoints_of_service() {
                        services.insert((o.meta.namespace.as_str(), service));
                    }
                }
            }
            plan.dirty[kind.index()] = steps.iter().map(|s| !matches!(s, Step::Same(_))).collect();
            plan.steps[kind.index()] = steps;
            plan.removed[kind.index()] = removed;
        }
        // Slices that name a pod that came or went (or is another by uid).
        let mut pod_uids: HashSet<&str> = HashSet::new();
        let mut pod_keys: HashSet<(&str, &str)> = HashSet::new();
        for (was, is) in &pods {
            let other = match (was, is) {
                (Some(a), Some(b)) => a.meta.uid != b.meta.uid,
                _ => true,
            };
            for p in was.iter().chain(is).filter(|_| other) {
                pod_uids.insert(&p.meta.uid);
                pod_keys.insert((&p.meta.namespace, &p.meta.name));
            }
        }
        if !pod_uids.is_empty() || !uids.is_empty() {
            for slice in new.of(Kind::ENDPOINT_SLICE) {
                let Some((service, facts)) = slice.endpoints_of_service() else {
                    continue;
                };
                let ns = slice.meta.namespace.as_str();
                let names = |r: &PodRef| {
                    // By uid the builder finds the first object of any kind.
                    r.uid
                        .as_deref()
                        .is_some_and(|u| pod_uids.contains(u) || uids.contains(u))
                        || pod_keys
                            .contains(&(r.namespace.as_deref().unwrap_or(ns), r.name.as_str()))
                };
                if facts.pods.iter().any(names) {
                    services.insert((ns, service));
                }
            }
        }
        // Every object whose rules look up something that came, went or changed.
        for kind in Kind::listed() {
            let dirty = &mut plan.dirty[kind.index()];
            for (i, o) in new.of(kind).iter().enumerate() {
                if dirty[i] {
                    continue;
                }
                let ns = o.meta.namespace.as_str();
                let selects = |selector: &LabelSelector, p: Option<&KubeObject>| {
                    p.is_some_and(|p| p.meta.namespace == ns && selector.matches(&p.meta.labels))
                };
                let reads_what_changed = match &o.facts {
                    Facts::Pod(pod) => pod
                        .claims
                        .iter()
                        .any(|c| named.contains(&(Kind::PERSISTENT_VOLUME_CLAIM, ns, c.as_str()))),
                    Facts::Selector(Some(selector)) => pods
                        .iter()
                        .any(|(was, is)| selects(selector, *was) != selects(selector, *is)),
                    Facts::Routes(to) => to
                        .iter()
                        .any(|s| named.contains(&(Kind::SERVICE, ns, s.as_str()))),
                    Facts::Claim(Some(volume)) => {
                        named.contains(&(Kind::PERSISTENT_VOLUME, "", volume.as_str()))
                    }
                    Facts::ScaleTarget(Some(target)) => {
                        let kind = match &target.group {
                            Some(group) => Kind::by_group_kind(group, &target.kind),
                            None => Kind::by_name(&target.kind),
                        };
                        kind.is_some_and(|k| {
                            let ns = if k.namespaced() { ns } else { "" };
                            named.contains(&(k, ns, target.name.as_str()))
                        })
                    }
                    _ => false,
                };
                if reads_what_changed
                    || o.meta.owners.iter().any(|u| uids.contains(u.as_str()))
                    || (kind == Kind::SERVICE && services.contains(&(ns, o.meta.name.as_str())))
                {
                    dirty[i] = true;
                }
            }
        }
        let (before, after) = (&basis.collected.nodes, &collected.nodes);
        if before.len() != after.len() || basis.emissions.containers_shown.len() != before.len() {
            return Err("nodes came or went");
        }
        for (was, is) in before.iter().zip(after) {
            if was.node_name != is.node_name || was.from_pod_status != is.from_pod_status {
                return Err("a node is another");
            }
            let same = same_reading(was, is);
            if !same && !is.from_pod_status {
                return Err("a node's runtime was read again");
            }
            plan.dirty_nodes
                .push(!same || (pods_moved && !is.from_pod_status));
        }
        Ok(plan)
    }
}

/// The very same reading of a node: its containers, processes and images.
fn same_reading(was: &NodeContainers, is: &NodeContainers) -> bool {
    was.containers.len() == is.containers.len()
        && was.images.len() == is.images.len()
        && was
            .containers
            .iter()
            .zip(&is.containers)
            .all(|(a, b)| Arc::ptr_eq(&a.container, &b.container) && same_processes(a, b))
        && was
            .images
            .iter()
            .zip(&is.images)
            .all(|(a, b)| Arc::ptr_eq(a, b))
}

/// Where a resource of the new graph comes from: the last graph's at a position, or made
/// again.
enum Source {
    Old(usize),
    New(Resource),
}

/// Where the resources of the new graph come from, by kind: the builder lists them by
/// kind, each kind in the order added.
struct Sources(Vec<Vec<Source>>);

impl Sources {
    fn new() -> Sources {
        Sources((0..Kind::count()).map(|_| Vec::new()).collect())
    }

    fn push(&mut self, kind: Kind, source: Source) {
        self.0[kind.index()].push(source);
    }

    fn made_again(&mut self, resources: &[Resource]) {
        for r in resources {
            self.push(r.kind, Source::New(r.clone()));
        }
    }

    fn in_order(self) -> Vec<Source> {
        self.0.into_iter().flatten().collect()
    }
}

/// Where a relation of the new graph comes from.
enum Made {
    Old(usize),
    New(Relation),
}

/// The graph of `collected` made from `previous` when objects came, went or changed in
/// what the relation rules read: the resources of what changed are made again, and the
/// relations of every object (and node) whose rules may now find something else (see
/// [`Plan::of`]); everything else is the last graph's. `collected` given back when what
/// changed is not one this follows.
fn splice(
    previous: &Graph,
    basis: &mut Basis,
    history: &mut History,
    collected: Collected,
    now_ms: i64,
) -> Result<Updated, NotFollowed> {
    let plan = match Plan::of(basis, &collected) {
        Ok(plan) => plan,
        Err(why) => return Err(NotFollowed::new(collected, why)),
    };
    let Some(cluster_at) = previous
        .resources
        .iter()
        .position(|r| r.kind == Kind::CLUSTER)
    else {
        return Err(NotFollowed::new(collected, "the graph has no Cluster"));
    };
    if !basis.uids.unshared() {
        return Err(NotFollowed::new(collected, "two objects hold one uid"));
    }
    let cluster = previous.resources[cluster_at].id.clone();
    let kube = &collected.kube;

    // Resources in the order the builder adds them (sorted by kind at the end): the
    // Cluster, the objects kind by kind, every node's images, each node's containers
    // with their processes.
    let mut part = Builder::part(history, now_ms);
    let mut sources = Sources::new();
    sources.push(Kind::CLUSTER, Source::Old(cluster_at));
    let mut ids: Vec<Vec<Option<Id>>> = (0..Kind::count()).map(|_| Vec::new()).collect();
    for kind in Kind::listed().filter(|k| Kind::in_graph().any(|g| g == *k)) {
        let mut kind_ids = Vec::with_capacity(kube.of(kind).len());
        // Taken, not copied (the basis is spent either way); `follow_uids` reads the IDs
        // of what went or changed, which stay.
        let old_ids = &mut basis.ids[kind.index()];
        for (object, step) in kube.of(kind).iter().zip(&plan.steps[kind.index()]) {
            if let Step::Same(o) = step {
                let id = old_ids[*o].take();
                let at = id
                    .as_ref()
                    .and_then(|id| basis.at.get(&previous.resources, id));
                let (Some(id), Some(at)) = (id, at) else {
                    return Err(NotFollowed::new(collected, "an object is not where it was"));
                };
                sources.push(kind, Source::Old(at));
                kind_ids.push(Some(id));
                continue;
            }
            let start = part.graph.resources.len();
            let id = part.object(object);
            sources.made_again(&part.graph.resources[start..]);
            kind_ids.push(id);
        }
        ids[kind.index()] = kind_ids;
    }
    if !follow_uids(basis, &plan, kube, &ids) {
        return Err(NotFollowed::new(collected, "two objects hold one uid"));
    }
    // Every list is in order: the plan walked them.
    let in_order = vec![true; Kind::count()];
    let index = ObjectIndex::new(kube, in_order.clone(), ids, &basis.uids, cluster);

    // Relations, emitter by emitter: the last graph's where nothing it reads changed.
    let mut relations: Vec<Made> = Vec::with_capacity(previous.relations.len());
    let mut emissions = Emissions {
        objects: (0..Kind::count()).map(|_| Vec::new()).collect(),
        ..Emissions::default()
    };
    // The last graph's relations not kept, by range.
    let mut dropped: Vec<Range<usize>> = Vec::new();
    for kind in Kind::listed() {
        let old_ranges = &basis.emissions.objects[kind.index()];
        let steps = &plan.steps[kind.index()];
        let mut ranges = Vec::with_capacity(steps.len());
        for (i, (object, step)) in kube.of(kind).iter().zip(steps).enumerate() {
            let start = relations.len();
            let old = match step {
                Step::Same(o) | Step::Changed(o) => old_ranges.get(*o).cloned(),
                Step::Added => None,
            };
            match (step, old) {
                (Step::Same(_), Some(old)) if !plan.dirty[kind.index()][i] => {
                    relations.extend(old.map(Made::Old));
                }
                (_, old) => {
                    dropped.extend(old);
                    if let Some(id) = index.id(kind, i) {
                        let from = part.graph.relations.len();
                        part.object_relations(object, id, &index);
                        relations.extend(
                            part.graph.relations[from..]
                                .iter()
                                .map(|r| Made::New(r.clone())),
                        );
                    }
                }
            }
            ranges.push(start..relations.len());
        }
        dropped.extend(
            plan.removed[kind.index()]
                .iter()
                .filter_map(|&o| old_ranges.get(o).cloned()),
        );
        emissions.objects[kind.index()] = ranges;
    }

    // Images are made again (few; the first node to show one names it), then each node's
    // containers and processes: the last graph's for a node read the same.
    let pods = index.pods();
    let mut images: HashMap<&str, Id> = HashMap::new();
    for node in &collected.nodes {
        let start = part.graph.resources.len();
        part.images(node, &mut images);
        sources.made_again(&part.graph.resources[start..]);
    }
    // Images some node showed and none does now, or the other way round: a kept
    // container's `createdFrom` would be wrong.
    let images_before: HashSet<&str> = of_kind(&previous.resources, Kind::IMAGE)
        .iter()
        .filter_map(|r| r.id.strip_prefix("Image:"))
        .collect();
    let images_moved: HashSet<&str> = images_before
        .iter()
        .copied()
        .filter(|i| !images.contains_key(i))
        .chain(
            images
                .keys()
                .copied()
                .filter(|i| !images_before.contains(i)),
        )
        .collect();
    // The containers the nodes made again show: a container a kept node shows is its
    // own, and one it does not was shown first by a node before it, which must show it
    // still (a kept node does; one made again is asked).
    let mut shown_again: HashSet<&str> = HashSet::new();
    for (n, node) in collected.nodes.iter().enumerate() {
        let old_range = basis.emissions.nodes.get(n).cloned().unwrap_or_default();
        let start = relations.len();
        if plan.dirty_nodes[n] {
            dropped.push(old_range);
            let (from_resource, from_relation) =
                (part.graph.resources.len(), part.graph.relations.len());
            part.containers(node, &index.nodes, &pods, &images);
            let shown = part.emissions.containers_shown.pop().unwrap_or_default();
            for (observed, _) in node.containers.iter().zip(&shown).filter(|(_, s)| **s) {
                shown_again.insert(&observed.container.id);
            }
            emissions.containers_shown.push(shown);
            emissions
                .node_resources
                .push(part.emissions.node_resources.pop().unwrap_or_default());
            sources.made_again(&part.graph.resources[from_resource..]);
            relations.extend(
                part.graph.relations[from_relation..]
                    .iter()
                    .map(|r| Made::New(r.clone())),
            );
        } else {
            let old_node = &basis.collected.nodes[n];
            let shown = &basis.emissions.containers_shown[n];
            let all_shown = shown.len() == old_node.containers.len() && shown.iter().all(|s| *s);
            if !images_moved.is_empty() || !all_shown {
                for (k, observed) in old_node.containers.iter().enumerate() {
                    let c = &observed.container;
                    if shown.get(k).copied().unwrap_or(false) {
                        if images_moved.contains(c.image_id.as_str()) {
                            return Err(NotFollowed::new(
                                collected,
                                "an image a kept container was made from came or went",
                            ));
                        }
                    } else if !shown_before(basis, &plan.dirty_nodes, &shown_again, (n, k), &c.id) {
                        return Err(NotFollowed::new(
                            collected,
                            "a container another node showed is this node's now",
                        ));
                    }
                }
            }
            emissions.containers_shown.push(shown.clone());
            // The basis is spent either way: the new one is made below, or the graph is
            // built whole.
            let kept = basis
                .emissions
                .node_resources
                .get_mut(n)
                .map(std::mem::take)
                .unwrap_or_default();
            for (kind, id) in &kept {
                if let Some(at) = basis.at.get(&previous.resources, id) {
                    sources.push(*kind, Source::Old(at));
                }
            }
            emissions.node_resources.push(kept);
            relations.extend(old_range.map(Made::Old));
        }
        emissions.nodes.push(start..relations.len());
    }
    emissions.images_shown = std::mem::take(&mut part.emissions.images_shown);
    let sources = sources.in_order();

    // The new graph, and what of the last one it keeps.
    let resources: Vec<Resource> = sources
        .iter()
        .map(|source| match source {
            Source::Old(at) => previous.resources[*at].clone(),
            Source::New(r) => r.clone(),
        })
        .collect();
    let at = Positions::of(&resources);
    // Two resources of one ID (a container two nodes show): the builder keeps the first,
    // which this cannot tell.
    if at.len() != resources.len() {
        return Err(NotFollowed::new(collected, "two resources of one ID"));
    }
    let kept_resources: Vec<Option<usize>> = sources
        .iter()
        .map(|source| match source {
            Source::Old(at) => Some(*at),
            Source::New(r) => basis
                .at
                .get(&previous.resources, &r.id)
                .filter(|&was| previous.resources[was] == *r),
        })
        .collect();
    let graph_relations: Vec<Relation> = relations
        .iter()
        .map(|made| match made {
            Made::Old(j) => previous.relations[*j].clone(),
            Made::New(r) => r.clone(),
        })
        .collect();
    let kept_relations: Vec<Option<usize>> = relations
        .iter()
        .map(|made| match made {
            Made::Old(j) => Some(*j),
            Made::New(_) => None,
        })
        .collect();

    // What changed: resources made again against the last graph's, and what it had that
    // this one has not; relations made again against those their emitters had.
    let mut diff = GraphDiff::default();
    let mut carried = vec![false; previous.resources.len()];
    for (i, source) in sources.iter().enumerate() {
        match source {
            Source::Old(was) => carried[*was] = true,
            Source::New(r) => match basis.at.get(&previous.resources, &r.id) {
                Some(was) => {
                    carried[was] = true;
                    if previous.resources[was] != *r {
                        diff.changed
                            .push((previous.resources[was].clone(), resources[i].clone()));
                    }
                }
                None => diff.added.push(r.clone()),
            },
        }
    }
    for (was, r) in previous.resources.iter().enumerate() {
        if !carried[was] {
            diff.removed.push(r.clone());
        }
    }
    dropped.sort_by_key(|r| r.start);
    let mut before: IdMap<(RelationType, Id, Id), usize> = IdMap::default();
    for j in dropped.iter().cloned().flatten() {
        let r = &previous.relations[j];
        before.insert((r.kind, r.source.clone(), r.target.clone()), j);
    }
    let mut made_again: IdSet<(RelationType, Id, Id)> = IdSet::default();
    for r in relations.iter().filter_map(|made| match made {
        Made::New(r) => Some(r),
        Made::Old(_) => None,
    }) {
        let key = (r.kind, r.source.clone(), r.target.clone());
        match before.get(&key) {
            None => diff.relations_added.push(r.clone()),
            Some(&j) if previous.relations[j] != *r => diff
                .relations_changed
                .push((previous.relations[j].clone(), r.clone())),
            Some(_) => {}
        }
        made_again.insert(key);
    }
    for j in dropped.iter().cloned().flatten() {
        let r = &previous.relations[j];
        if !made_again.contains(&(r.kind, r.source.clone(), r.target.clone())) {
            diff.relations_removed.push(r.clone());
        }
    }

    // The history follows: what went is forgotten, what was made again remembered.
    let part_history = std::mem::take(&mut part.history);
    drop(part);
    for r in &diff.removed {
        history.resources.remove(&r.id);
    }
    for r in &diff.relations_removed {
        history
            .relations
            .remove(&(r.kind, r.source.clone(), r.target.clone()));
    }
    history.resources.extend(part_history.resources);
    history.relations.extend(part_history.relations);

    basis.ids = index.into_ids();
    basis.in_order = in_order;
    basis.collected = collected;
    basis.at = at;
    basis.emissions = emissions;
    Ok(Updated {
        graph: Graph {
            timestamp_ms: now_ms,
            resources,
            relations: graph_relations,
        },
        diff,
        kept: Kept::Moved {
            resources: kept_resources,
            relations: kept_relations,
        },
    })
}

/// Whether the container `id` is shown before container `k` of kept node `n`: by a node
/// made again, if `shown_again` holds it; else by a kept node before, or by this one
/// before `k` (a kept node shows what it showed).
fn shown_before(
    basis: &Basis,
    dirty_nodes: &[bool],
    shown_again: &HashSet<&str>,
    (n, k): (usize, usize),
    id: &str,
) -> bool {
    let shows = |m: usize, upto: usize| {
        let shown = &basis.emissions.containers_shown[m];
        basis.collected.nodes[m].containers[..upto]
            .iter()
            .zip(shown)
            .any(|(observed, shown)| *shown && observed.container.id == id)
    };
    shown_again.contains(id)
        || shows(n, k)
        || (0..n)
            .filter(|&m| !dirty_nodes[m])
            .any(|m| shows(m, basis.collected.nodes[m].containers.len()))
}

/// Makes the uid index follow a splice (`ids`: the new lists' graph IDs): what went or
/// changed uid is forgotten, then what came or took another uid is added, and every other
/// new version is held instead of the old. False when a uid would be held twice.
fn follow_uids(basis: &mut Basis, plan: &Plan, kube: &KubeState, ids: &[Vec<Option<Id>>]) -> bool {
    let old = &basis.collected.kube;
    let uids = &mut basis.uids;
    let mut adds: Vec<(&Arc<KubeObject>, &Id)> = Vec::new();
    for kind in Kind::listed() {
        let (before, after) = (old.of(kind), kube.of(kind));
        let old_ids = basis.ids.get(kind.index()).map_or(&[][..], Vec::as_slice);
        let new_ids = ids.get(kind.index()).map_or(&[][..], Vec::as_slice);
        for &o in &plan.removed[kind.index()] {
            if let Some(Some(id)) = old_ids.get(o) {
                uids.remove(&before[o], id);
            }
        }
        for (i, step) in plan.steps[kind.index()].iter().enumerate() {
            let new_id = new_ids.get(i).and_then(Option::as_ref);
            match *step {
                Step::Same(_) => {}
                Step::Added => adds.extend(new_id.map(|id| (&after[i], id))),
                Step::Changed(o) => {
                    let old_id = old_ids.get(o).and_then(Option::as_ref);
                    if before[o].meta.uid == after[i].meta.uid && old_id == new_id {
                        uids.refresh(&before[o], &after[i]);
                    } else {
                        if let Some(id) = old_id {
                            uids.remove(&before[o], id);
                        }
                        adds.extend(new_id.map(|id| (&after[i], id)));
                    }
                }
            }
        }
    }
    adds.into_iter().all(|(object, id)| uids.add(object, id))
}

/// The resources of `kind` in a graph's list, which is sorted by kind.
fn of_kind(resources: &[Resource], kind: Kind) -> &[Resource] {
    let start = resources.partition_point(|r| r.kind < kind);
    let end = start + resources[start..].partition_point(|r| r.kind == kind);
    &resources[start..end]
}

/// Where each resource of a graph stands, by its ID's digest: the map holds no ID (whose
/// every copy is a count to keep), and a lookup checks the graph's resource.
#[derive(Debug, Default)]
struct Positions {
    by_digest: IdMap<u64, usize>,
}

impl Positions {
    /// The positions of `resources`; of two of one ID (or of one digest), the first.
    fn of(resources: &[Resource]) -> Positions {
        let mut by_digest = IdMap::default();
        by_digest.reserve(resources.len());
        for (i, r) in resources.iter().enumerate() {
            by_digest.entry(r.id.digest()).or_insert(i);
        }
        Positions { by_digest }
    }

    /// Where `id` stands in `resources`, the graph these are the positions of.
    fn get(&self, resources: &[Resource], id: &Id) -> Option<usize> {
        let &at = self.by_digest.get(&id.digest())?;
        (resources.get(at)?.id == *id).then_some(at)
    }

    /// How many resources have a place: fewer than the graph holds when two have one ID
    /// (or one digest), and then the graph is built whole.
    fn len(&self) -> usize {
        self.by_digest.len()
    }
}
