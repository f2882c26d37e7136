//! Which pod a container belongs to: by the kubelet's labels, the pod's container statuses,
//! or the kubelet's container name, in that order (contract §3).

use super::id::Id;
use super::lookup::PodLookup;
use super::observed::Container;

/// The graph ID of the pod a container belongs to, by the first rule of contract §3 that
/// applies: the kubelet's labels, the pod's container statuses, the kubelet's name.
pub(super) fn pod_of<'a>(pods: &PodLookup<'a>, c: &Container) -> Option<&'a Id> {
    let by_labels = || {
        let uid = c.labels.get("io.kubernetes.pod.uid");
        if let Some(id) = uid.and_then(|u| pods.by_uid(u)) {
            return Some(id);
        }
        let ns = c.labels.get("io.kubernetes.pod.namespace")?;
        let name = c.labels.get("io.kubernetes.pod.name")?;
        pods.by_name(ns, name)
    };
    let by_status = || pods.by_container(&c.id);
    let by_name = || {
        let k = KubeletName::parse(&c.name)?;
        pods.by_uid(k.uid)
            .or_else(|| pods.by_name(k.namespace, k.pod))
    };
    by_labels().or_else(by_status).or_else(by_name)
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
