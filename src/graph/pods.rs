//! Which pod a container belongs to: by the kubelet's labels, the pod's container statuses,
//! or the kubelet's container name, in that order (contract §3).

use std::sync::Arc;

use std::collections::HashMap;

use super::id::Id;
use super::observed::{Container, KubeObject};

/// The pods kept in the graph, by uid, by (namespace, name) and by the container IDs their
/// statuses list; the first pod listed wins a tie.
pub(super) struct PodLookup<'a> {
    ids: &'a [Option<Id>],
    by_uid: HashMap<&'a str, usize>,
    by_name: HashMap<(&'a str, &'a str), usize>,
    by_container: HashMap<&'a str, usize>,
}

impl<'a> PodLookup<'a> {
    /// `ids[i]` is pod `i`'s graph ID, `None` when it is not in the graph (a duplicate).
    pub(super) fn new(pods: &'a [Arc<KubeObject>], ids: &'a [Option<Id>]) -> PodLookup<'a> {
        let mut lookup = PodLookup {
            ids,
            by_uid: HashMap::with_capacity(pods.len()),
            by_name: HashMap::with_capacity(pods.len()),
            by_container: HashMap::new(),
        };
        for (i, pod) in pods.iter().enumerate() {
            if ids[i].is_none() {
                continue;
            }
            let meta = &pod.meta;
            if !meta.uid.is_empty() {
                lookup.by_uid.entry(&meta.uid).or_insert(i);
            }
            lookup
                .by_name
                .entry((&meta.namespace, &meta.name))
                .or_insert(i);
            for cid in pod.pod().map_or(&[][..], |p| &p.container_ids) {
                lookup.by_container.entry(cid).or_insert(i);
            }
        }
        lookup
    }

    /// The graph ID of the pod a container belongs to, by the first rule of contract §3
    /// that applies: the kubelet's labels, the pod's container statuses, the kubelet's name.
    pub(super) fn find(&self, c: &Container) -> Option<&'a Id> {
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
pub(super) fn short_container_name(c: &Container) -> Option<String> {
    if let Some(name) = c.labels.get("io.kubernetes.container.name") {
        return Some(name.clone());
    }
    KubeletName::parse(&c.name).map(|k| k.container.to_string())
}
