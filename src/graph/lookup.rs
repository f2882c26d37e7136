//! What the relation rules look objects up by: uid (owners, a slice's pods, a container's
//! pod), kind, namespace and name (claims, volumes, Services, scale targets, namespaces),
//! and label (selectors).
//!
//! The lists a watch keeps are sorted by namespace and name, so a name is found by binary
//! search with no index at all; only a list out of order gets a map. The uids are the one
//! index every build needs whole, and a graph made from the last one keeps them
//! ([`Uids`]) and changes only the entries of what came or went. The label index of pods
//! is built on the first selector that needs it, and a graph made from the last one, with
//! few selectors to answer, reads the namespace's pods instead.

use std::borrow::Borrow;
use std::cell::{Cell, OnceCell};
use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::sync::Arc;

use super::id::Id;
use super::observed::{KubeObject, KubeState, PodRef};
use super::selector::{LabelSelector, SelectorIndex};
use super::Kind;

/// An object as the key of a map by uid: the map holds the object, not a copy of its uid.
#[derive(Debug, Clone)]
struct ByUid(Arc<KubeObject>);

impl ByUid {
    fn uid(&self) -> &str {
        &self.0.meta.uid
    }
}

impl Borrow<str> for ByUid {
    fn borrow(&self) -> &str {
        self.uid()
    }
}

impl Hash for ByUid {
    // As `str` hashes, for the lookups by `&str`.
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.uid().hash(state)
    }
}

impl PartialEq for ByUid {
    fn eq(&self, other: &ByUid) -> bool {
        self.uid() == other.uid()
    }
}

impl Eq for ByUid {}

/// Who holds a uid in the graph: the first object (in the order of kinds, then of the
/// lists), and the first pod.
#[derive(Debug, Clone)]
struct Holders {
    first: Id,
    first_pod: Option<Id>,
}

/// The objects in the graph by uid.
#[derive(Debug, Clone, Default)]
pub(super) struct Uids {
    map: HashMap<ByUid, Holders>,
    /// Whether some uid is held by two objects (which no API server allows): then who
    /// holds it first depends on the order of everything, and only a whole build can tell.
    shared: bool,
}

impl Uids {
    /// The uids of `kube`'s objects that `ids` (by kind, then position) says are in the graph.
    pub(super) fn new(kube: &KubeState, ids: &[Vec<Option<Id>>]) -> Uids {
        let mut uids = Uids::default();
        for kind in Kind::listed() {
            let kind_ids = ids.get(kind.index()).map_or(&[][..], Vec::as_slice);
            for (object, id) in kube.of(kind).iter().zip(kind_ids) {
                let Some(id) = id else { continue };
                if object.meta.uid.is_empty() {
                    continue;
                }
                let pod = (kind == Kind::POD).then(|| id.clone());
                match uids.map.get_mut(object.meta.uid.as_str()) {
                    Some(holders) => {
                        uids.shared = true;
                        if holders.first_pod.is_none() {
                            holders.first_pod = pod;
                        }
                    }
                    None => {
                        let holders = Holders {
                            first: id.clone(),
                            first_pod: pod,
                        };
                        uids.map.insert(ByUid(Arc::clone(object)), holders);
                    }
                }
            }
        }
        uids
    }

    /// The first object in the graph that has `uid`.
    pub(super) fn first(&self, uid: &str) -> Option<&Id> {
        self.map.get(uid).map(|h| &h.first)
    }

    /// The first pod in the graph that has `uid`.
    pub(super) fn pod(&self, uid: &str) -> Option<&Id> {
        self.map.get(uid)?.first_pod.as_ref()
    }

    /// Whether each uid is held by one object at most.
    pub(super) fn unshared(&self) -> bool {
        !self.shared
    }

    /// Forgets `object`, which left the graph (as `id`).
    pub(super) fn remove(&mut self, object: &KubeObject, id: &Id) {
        if let Some(holders) = self.map.get(object.meta.uid.as_str()) {
            if holders.first == *id {
                self.map.remove(object.meta.uid.as_str());
            }
        }
    }

    /// Holds `is` instead of `was`, another version of the same object (of the same
    /// uid), if `was` is what holds its uid.
    pub(super) fn refresh(&mut self, was: &KubeObject, is: &Arc<KubeObject>) {
        if let Some((key, holders)) = self.map.remove_entry(is.meta.uid.as_str()) {
            let key = if std::ptr::eq(Arc::as_ptr(&key.0), was) {
                ByUid(Arc::clone(is))
            } else {
                key
            };
            self.map.insert(key, holders);
        }
    }

    /// Adds `object`, which came into the graph as `id`; false when its uid is held
    /// already (it is then not added).
    pub(super) fn add(&mut self, object: &Arc<KubeObject>, id: &Id) -> bool {
        if object.meta.uid.is_empty() {
            return true;
        }
        if self.map.contains_key(object.meta.uid.as_str()) {
            return false;
        }
        let holders = Holders {
            first: id.clone(),
            first_pod: (object.kind == Kind::POD).then(|| id.clone()),
        };
        self.map.insert(ByUid(Arc::clone(object)), holders);
        true
    }
}

/// An object's key in a watched list: namespace and name.
pub(super) fn key(o: &KubeObject) -> (&str, &str) {
    (o.meta.namespace.as_str(), o.meta.name.as_str())
}

/// Whether a list is strictly sorted by key, as watches keep lists (one object a key).
fn sorted(list: &[Arc<KubeObject>]) -> bool {
    list.windows(2).all(|w| key(&w[0]) < key(&w[1]))
}

/// By kind: whether its list is strictly sorted by key.
pub(super) fn lists_in_order(kube: &KubeState) -> Vec<bool> {
    let mut in_order = vec![true; Kind::count()];
    for kind in Kind::listed() {
        in_order[kind.index()] = sorted(kube.of(kind));
    }
    in_order
}

/// Where the object of a key stands in a strictly sorted list.
fn find(list: &[Arc<KubeObject>], namespace: &str, name: &str) -> Option<usize> {
    list.binary_search_by(|o| key(o).cmp(&(namespace, name)))
        .ok()
}

/// Selectors a build answers by reading the namespace's pods before it indexes them all:
/// indexing 150,000 pods costs what some hundred such reads of a namespace do.
const SELECTORS_READ: usize = 16;

/// What the relation rules of Kubernetes objects may look up.
pub(super) struct ObjectIndex<'a> {
    pub(super) cluster: Id,
    kube: &'a KubeState,
    /// Graph IDs of the listed objects, by kind and position; `None` for a duplicate or a
    /// kind the graph does not show.
    pub(super) ids: Vec<Vec<Option<Id>>>,
    pub(super) nodes: HashMap<&'a str, Id>,
    pub(super) uids: &'a Uids,
    /// By kind: whether its list is strictly sorted (then names are found by search).
    sorted: Vec<bool>,
    /// The objects of the kinds whose lists are out of order, by name, with their kind
    /// and namespace (empty for kinds without). Keyed by the name alone so that any `&str`
    /// can look them up.
    by_name: HashMap<&'a str, Vec<(Kind, &'a str, Id)>>,
    /// The pods by label, made on the first selector that needs it.
    selectable: OnceCell<SelectorIndex<'a>>,
    /// Selectors answered so far by reading their namespace's pods.
    selectors_read: Cell<usize>,
    /// The pods the EndpointSlices of a Service list, by the Service's name, with its
    /// namespace; a Service with any slice is here, even with no pod.
    endpoints: HashMap<&'a str, Vec<(&'a str, Vec<&'a PodRef>)>>,
}

impl<'a> ObjectIndex<'a> {
    /// The index of `kube`, whose lists `in_order` says (by kind) are strictly sorted.
    pub(super) fn new(
        kube: &'a KubeState,
        in_order: Vec<bool>,
        ids: Vec<Vec<Option<Id>>>,
        uids: &'a Uids,
        cluster: Id,
    ) -> ObjectIndex<'a> {
        let mut by_name: HashMap<&str, Vec<(Kind, &str, Id)>> = HashMap::new();
        for kind in Kind::listed().filter(|k| !in_order.get(k.index()).copied().unwrap_or(false)) {
            let kind_ids = ids.get(kind.index()).map_or(&[][..], Vec::as_slice);
            for (object, id) in kube.of(kind).iter().zip(kind_ids) {
                let Some(id) = id else { continue };
                let meta = &object.meta;
                let same = by_name.entry(meta.name.as_str()).or_default();
                if !same
                    .iter()
                    .any(|(k, ns, _)| *k == kind && *ns == meta.namespace)
                {
                    same.push((kind, meta.namespace.as_str(), id.clone()));
                }
            }
        }
        let mut endpoints: HashMap<&str, Vec<(&str, Vec<&PodRef>)>> = HashMap::new();
        for slice in kube.of(Kind::ENDPOINT_SLICE) {
            let Some((service, facts)) = slice.endpoints_of_service() else {
                continue;
            };
            let namespace = slice.meta.namespace.as_str();
            let of_service = endpoints.entry(service).or_default();
            match of_service.iter_mut().find(|(ns, _)| *ns == namespace) {
                Some((_, pods)) => pods.extend(&facts.pods),
                None => of_service.push((namespace, facts.pods.iter().collect())),
            }
        }
        let nodes = kube
            .of(Kind::NODE)
            .iter()
            .zip(ids.get(Kind::NODE.index()).map_or(&[][..], Vec::as_slice))
            .filter_map(|(node, id)| Some((node.meta.name.as_str(), id.clone()?)))
            .collect();
        ObjectIndex {
            cluster,
            kube,
            ids,
            nodes,
            uids,
            sorted: in_order,
            by_name,
            selectable: OnceCell::new(),
            selectors_read: Cell::new(0),
            endpoints,
        }
    }

    /// The graph IDs of the listed objects, by kind and position.
    pub(super) fn into_ids(self) -> Vec<Vec<Option<Id>>> {
        self.ids
    }

    pub(super) fn id(&self, kind: Kind, index: usize) -> Option<&Id> {
        self.ids.get(kind.index())?.get(index)?.as_ref()
    }

    /// The object in the graph of this kind, namespace (ignored for kinds without) and name.
    pub(super) fn named(&self, kind: Kind, namespace: &str, name: &str) -> Option<&Id> {
        let namespace = if kind.namespaced() { namespace } else { "" };
        if self.sorted.get(kind.index()).copied().unwrap_or(false) {
            let at = find(self.kube.of(kind), namespace, name)?;
            return self.id(kind, at);
        }
        self.by_name
            .get(name)?
            .iter()
            .find(|(k, ns, _)| *k == kind && *ns == namespace)
            .map(|(_, _, id)| id)
    }

    /// The pods a Service's EndpointSlices list, if it has any slice.
    pub(super) fn endpoint_pods(&self, namespace: &str, service: &str) -> Option<&[&'a PodRef]> {
        self.endpoints
            .get(service)?
            .iter()
            .find(|(ns, _)| *ns == namespace)
            .map(|(_, pods)| pods.as_slice())
    }

    /// The pods in the graph of `namespace` that `selector` matches, by position in the
    /// pods' list, in its order.
    pub(super) fn select(&self, namespace: &str, selector: &LabelSelector) -> Vec<usize> {
        let pods = self.kube.of(Kind::POD);
        let pod_ids = self
            .ids
            .get(Kind::POD.index())
            .map_or(&[][..], Vec::as_slice);
        let in_graph = |i: usize| pod_ids.get(i).is_some_and(Option::is_some);
        if self.selectable.get().is_none()
            && self.sorted.get(Kind::POD.index()).copied().unwrap_or(false)
            && self.selectors_read.get() < SELECTORS_READ
        {
            self.selectors_read.set(self.selectors_read.get() + 1);
            let start = pods.partition_point(|p| p.meta.namespace.as_str() < namespace);
            let end = start + pods[start..].partition_point(|p| p.meta.namespace == namespace);
            return (start..end)
                .filter(|&i| in_graph(i) && selector.matches(&pods[i].meta.labels))
                .collect();
        }
        self.selectable
            .get_or_init(|| SelectorIndex::new(pods, in_graph))
            .select(namespace, selector)
    }

    /// The pods, to find a container's.
    pub(super) fn pods(&self) -> PodLookup<'_> {
        PodLookup {
            pods: self.kube.of(Kind::POD),
            ids: self
                .ids
                .get(Kind::POD.index())
                .map_or(&[][..], Vec::as_slice),
            uids: self.uids,
            sorted: self.sorted.get(Kind::POD.index()).copied().unwrap_or(false),
            by_name: OnceCell::new(),
            by_container: OnceCell::new(),
        }
    }
}

/// The pods in the graph by uid, by namespace and name, and by the container IDs their
/// statuses list; the first pod listed wins a tie. The maps it needs are made on first use
/// (by name only for a list out of order): most containers name their pod's uid.
pub(super) struct PodLookup<'a> {
    pods: &'a [Arc<KubeObject>],
    ids: &'a [Option<Id>],
    uids: &'a Uids,
    sorted: bool,
    by_name: OnceCell<HashMap<(&'a str, &'a str), usize>>,
    by_container: OnceCell<HashMap<&'a str, usize>>,
}

impl<'a> PodLookup<'a> {
    /// The pods of the list in the graph, by position.
    fn in_graph(&self) -> impl Iterator<Item = (usize, &'a Arc<KubeObject>)> + '_ {
        let ids = self.ids;
        self.pods
            .iter()
            .enumerate()
            .filter(move |(i, _)| ids.get(*i).is_some_and(Option::is_some))
    }

    fn id(&self, at: usize) -> Option<&'a Id> {
        self.ids.get(at)?.as_ref()
    }

    pub(super) fn by_uid(&self, uid: &str) -> Option<&'a Id> {
        self.uids.pod(uid)
    }

    pub(super) fn by_name(&self, namespace: &str, name: &str) -> Option<&'a Id> {
        if self.sorted {
            return self.id(find(self.pods, namespace, name)?);
        }
        let by_name = self.by_name.get_or_init(|| {
            let mut map = HashMap::with_capacity(self.pods.len());
            for (i, pod) in self.in_graph() {
                map.entry(key(pod)).or_insert(i);
            }
            map
        });
        self.id(*by_name.get(&(namespace, name))?)
    }

    pub(super) fn by_container(&self, container_id: &str) -> Option<&'a Id> {
        let by_container = self.by_container.get_or_init(|| {
            let mut map = HashMap::new();
            for (i, pod) in self.in_graph() {
                for cid in pod.pod().map_or(&[][..], |p| &p.container_ids) {
                    map.entry(cid.as_str()).or_insert(i);
                }
            }
            map
        });
        self.id(*by_container.get(container_id)?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::objects::parse_object;
    use serde_json::json;

    fn pod(ns: &str, name: &str, app: &str, tier: &str) -> Arc<KubeObject> {
        let text = json!({"metadata": {"namespace": ns, "name": name, "uid": format!("u-{ns}-{name}"),
            "labels": {"app": app, "tier": tier}},
            "status": {"containerStatuses": [{"name": "c", "containerID": format!("docker://{ns}{name}")}]}});
        let raw = serde_json::value::RawValue::from_string(text.to_string()).unwrap();
        Arc::new(parse_object(Kind::POD, &raw).unwrap())
    }

    /// Pods of three namespaces, sorted or not; `a/p03` is not in the graph.
    fn pods(in_order: bool) -> (KubeState, Vec<Vec<Option<Id>>>) {
        let mut list = Vec::new();
        for ns in ["a", "b", "c"] {
            for i in 0..12 {
                let app = ["web", "db", "cache"][i % 3];
                list.push(pod(ns, &format!("p{i:02}"), app, ["1", "2"][i % 2]));
            }
        }
        if !in_order {
            list.reverse();
        }
        let ids = list
            .iter()
            .map(|p| {
                let name = format!("{}/{}", p.meta.namespace, p.meta.name);
                (name != "a/p03").then(|| Id::from(format!("Pod:{name}")))
            })
            .collect();
        let mut kube = KubeState::default();
        kube.set(Kind::POD, list);
        let mut all = vec![Vec::new(); Kind::count()];
        all[Kind::POD.index()] = ids;
        (kube, all)
    }

    fn selector(pairs: &[(&str, &str)]) -> LabelSelector {
        LabelSelector {
            match_labels: pairs
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            match_expressions: Vec::new(),
        }
    }

    #[test]
    fn a_namespace_read_and_the_label_index_select_the_same_pods() {
        let (kube, ids) = pods(true);
        let uids = Uids::new(&kube, &ids);
        let cluster = Id::from("Cluster:c".to_string());
        let reading = ObjectIndex::new(
            &kube,
            lists_in_order(&kube),
            ids.clone(),
            &uids,
            cluster.clone(),
        );
        let indexed = ObjectIndex::new(&kube, lists_in_order(&kube), ids, &uids, cluster);
        indexed.selectors_read.set(SELECTORS_READ);
        let selectors = [
            selector(&[("app", "web")]),
            selector(&[("app", "db"), ("tier", "2")]),
            selector(&[("app", "none")]),
            selector(&[]),
        ];
        for ns in ["a", "b", "c", "d", ""] {
            for s in &selectors {
                let read = reading.select(ns, s);
                assert_eq!(read, indexed.select(ns, s), "{ns} {s:?}");
                assert!(read
                    .iter()
                    .all(|&i| kube.of(Kind::POD)[i].meta.namespace == ns));
                assert!(!read.contains(&3), "a pod not in the graph is not selected");
            }
        }
        // Past a few selectors, reading too makes the index.
        assert!(reading.selectable.get().is_some() && indexed.selectable.get().is_some());
        let (kube, ids) = pods(true);
        let few = ObjectIndex::new(
            &kube,
            lists_in_order(&kube),
            ids,
            &uids,
            Id::from("Cluster:c".to_string()),
        );
        assert_eq!(few.select("a", &selectors[0]).len(), 3, "p00, p06, p09");
        assert!(
            few.selectable.get().is_none(),
            "no index made for a few selectors"
        );
    }

    #[test]
    fn names_are_found_in_a_sorted_list_as_in_one_out_of_order() {
        let (sorted_kube, sorted_ids) = pods(true);
        let (mixed_kube, mixed_ids) = pods(false);
        let (sorted_uids, mixed_uids) = (
            Uids::new(&sorted_kube, &sorted_ids),
            Uids::new(&mixed_kube, &mixed_ids),
        );
        let cluster = Id::from("Cluster:c".to_string());
        let sorted = ObjectIndex::new(
            &sorted_kube,
            lists_in_order(&sorted_kube),
            sorted_ids,
            &sorted_uids,
            cluster.clone(),
        );
        let mixed = ObjectIndex::new(
            &mixed_kube,
            lists_in_order(&mixed_kube),
            mixed_ids,
            &mixed_uids,
            cluster,
        );
        assert!(sorted.by_name.is_empty() && !mixed.by_name.is_empty());
        let (sorted_pods, mixed_pods) = (sorted.pods(), mixed.pods());
        for ns in ["a", "b", "c", "d"] {
            for i in 0..14 {
                let name = format!("p{i:02}");
                let found = sorted.named(Kind::POD, ns, &name);
                assert_eq!(found, mixed.named(Kind::POD, ns, &name), "{ns}/{name}");
                assert_eq!(found, sorted_pods.by_name(ns, &name));
                assert_eq!(found, mixed_pods.by_name(ns, &name));
                let container = format!("{ns}{name}");
                assert_eq!(found, sorted_pods.by_container(&container));
                assert_eq!(found, mixed_pods.by_container(&container));
                let uid = format!("u-{ns}-{name}");
                assert_eq!(found, sorted_pods.by_uid(&uid));
                assert_eq!(found, sorted_uids.first(&uid));
            }
        }
        // The pod not in the graph is found by none of them.
        assert_eq!(sorted.named(Kind::POD, "a", "p03"), None);
        assert_eq!(sorted_pods.by_uid("u-a-p03"), None);
        assert!(sorted.named(Kind::POD, "a", "p04").is_some());
    }
}
