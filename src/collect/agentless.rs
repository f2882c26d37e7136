//! Containers and images of nodes whose runtime was not read (no agent answered, or agents
//! are off): what the Kubernetes API itself tells of them. A pod's
//! `status.containerStatuses` (and its init and ephemeral ones) name each container's ID,
//! name, image, image ID and state; the node's `status.images` name the images it holds. No
//! processes are known. The graph marks what comes from here with `source: kubernetes`.
//!
//! Only the pods of such nodes are read again here, so a cluster whose agents all answer
//! pays nothing for this.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use super::objects::strip_runtime_prefix;
use crate::graph::fingerprint;
use crate::graph::observed::{
    Container, Image, KubeObject, KubeState, NodeContainers, ObservedContainer,
};
use crate::graph::Kind;

/// What the last build learnt of each node from its pods' statuses, by node name: the node
/// object and pods it was read from, and what they told.
#[derive(Default)]
pub struct Learnt {
    nodes: HashMap<String, LearntNode>,
}

struct LearntNode {
    node: Arc<KubeObject>,
    pods: Vec<Arc<KubeObject>>,
    told: NodeContainers,
}

/// Every node of `kube` that is not among `read` (whose runtimes were read), as its pods'
/// statuses tell it. A node whose object and pods are the very ones of the last build is
/// what it was then; one that changed is read again, and keeps the containers and images
/// whose text did not change (the same `Arc`s: the graph then sees only what did).
pub fn nodes_without_runtime(
    kube: &KubeState,
    read: &[NodeContainers],
    learnt: &mut Learnt,
) -> Vec<NodeContainers> {
    let read: HashSet<&str> = read.iter().map(|n| n.node_name.as_str()).collect();
    let mut pods_by_node: HashMap<&str, Vec<&Arc<KubeObject>>> = HashMap::new();
    for pod in kube.of(Kind::POD) {
        if let Some(node) = pod.pod().and_then(|p| p.node_name.as_deref()) {
            if !read.contains(node) {
                pods_by_node.entry(node).or_default().push(pod);
            }
        }
    }
    let mut now = HashMap::with_capacity(learnt.nodes.len());
    let told = kube
        .of(Kind::NODE)
        .iter()
        .filter_map(|node| {
            if read.contains(node.meta.name.as_str()) {
                return None;
            }
            // A node without pods tells nothing, but stays in the list: the graph made
            // from the last one then sees the same nodes when its last pod goes.
            let pods: &[&Arc<KubeObject>] = pods_by_node
                .get(node.meta.name.as_str())
                .map_or(&[], Vec::as_slice);
            let last = learnt.nodes.remove(node.meta.name.as_str());
            let unchanged = last.as_ref().is_some_and(|last| {
                Arc::ptr_eq(&last.node, node)
                    && last.pods.len() == pods.len()
                    && last.pods.iter().zip(pods).all(|(a, b)| Arc::ptr_eq(a, b))
            });
            let told = match last {
                Some(last) if unchanged => last.told,
                last => {
                    let pod_refs: Vec<&KubeObject> = pods.iter().map(|p| &***p).collect();
                    let mut told = node_from_pod_statuses(node, &pod_refs);
                    if let Some(last) = last {
                        keep_unchanged(&mut told, &last.told);
                    }
                    told
                }
            };
            now.insert(
                node.meta.name.clone(),
                LearntNode {
                    node: Arc::clone(node),
                    pods: pods.iter().map(|p| Arc::clone(p)).collect(),
                    told: told.clone(),
                },
            );
            Some(told)
        })
        .collect();
    learnt.nodes = now;
    told
}

/// Puts back into `told` the containers and images of `last` that are the same.
fn keep_unchanged(told: &mut NodeContainers, last: &NodeContainers) {
    let containers: HashMap<&str, &Arc<Container>> = last
        .containers
        .iter()
        .map(|c| (c.container.id.as_str(), &c.container))
        .collect();
    for observed in &mut told.containers {
        let c = &observed.container;
        if let Some(was) = containers.get(c.id.as_str()) {
            if was.raw == c.raw && was.labels == c.labels {
                observed.container = Arc::clone(was);
            }
        }
    }
    for image in &mut told.images {
        let was = last.images.iter().find(|i| i.id == image.id);
        if let Some(was) = was.filter(|w| w.name == image.name && w.raw == image.raw) {
            *image = Arc::clone(was);
        }
    }
}

/// The containers and images of `node` as its pods' statuses tell them.
fn node_from_pod_statuses(node: &KubeObject, pods: &[&KubeObject]) -> NodeContainers {
    let images_held = node_images(&node.raw);
    let mut containers = Vec::new();
    let mut image_ids: Vec<(String, String)> = Vec::new();
    for pod in pods {
        for status in container_statuses(&pod.raw) {
            let Some(id) = strip_runtime_prefix(&status.container_id).map(str::to_string) else {
                continue;
            };
            let image_id = image_id(&status.image_id);
            if !image_id.is_empty() && !image_ids.iter().any(|(i, _)| *i == image_id) {
                image_ids.push((image_id.clone(), status.image.clone()));
            }
            let labels = BTreeMap::from([
                ("io.kubernetes.pod.uid".to_string(), pod.meta.uid.clone()),
                (
                    "io.kubernetes.pod.namespace".to_string(),
                    pod.meta.namespace.clone(),
                ),
                ("io.kubernetes.pod.name".to_string(), pod.meta.name.clone()),
                (
                    "io.kubernetes.container.name".to_string(),
                    status.name.clone(),
                ),
            ]);
            let Ok(fingerprint) = fingerprint::plain(&status.raw) else {
                continue;
            };
            containers.push(ObservedContainer {
                container: Arc::new(Container {
                    id,
                    name: status.name,
                    image_id,
                    labels,
                    started_at: status.started_at,
                    finished_at: status.finished_at,
                    running: status.running,
                    sandbox: false,
                    raw: Arc::from(status.raw),
                    fingerprint,
                }),
                processes: Vec::new(),
                processes_omitted: 0,
                stale_since_ms: None,
            });
        }
    }
    let images = image_ids
        .into_iter()
        .filter_map(|(id, name)| {
            // The node's own entry for the image, when it lists one; else what the pod said.
            let raw = images_held
                .iter()
                .find(|held| held.names.iter().any(|n| *n == id || *n == name))
                .map(|held| held.raw.clone())
                .unwrap_or_else(|| serde_json::json!({ "names": [&id, &name] }).to_string());
            let fingerprint = fingerprint::plain(&raw).ok()?;
            Some(Arc::new(Image {
                id,
                name,
                raw: Arc::from(raw),
                fingerprint,
            }))
        })
        .collect();
    NodeContainers {
        node_name: node.meta.name.clone(),
        containers,
        images,
        from_pod_status: true,
    }
}

/// The image ID a kubelet wrote, without the runtime's scheme (`docker-pullable://`,
/// `docker://`); containerd and CRI-O write a digest reference or a bare ID.
fn image_id(written: &str) -> String {
    strip_runtime_prefix(written).unwrap_or(written).to_string()
}

struct StatusContainer {
    name: String,
    container_id: String,
    image: String,
    image_id: String,
    running: bool,
    started_at: String,
    finished_at: String,
    /// The status entry's own text.
    raw: String,
}

/// Every container status of a pod (its containers, init and ephemeral containers); a
/// malformed entry costs that entry only.
fn container_statuses(pod: &str) -> Vec<StatusContainer> {
    #[derive(Deserialize)]
    struct Pod<'a> {
        #[serde(borrow, default)]
        status: Option<Statuses<'a>>,
    }
    #[derive(Deserialize)]
    struct Statuses<'a> {
        #[serde(borrow, default, rename = "containerStatuses")]
        containers: Option<Vec<&'a RawValue>>,
        #[serde(borrow, default, rename = "initContainerStatuses")]
        init: Option<Vec<&'a RawValue>>,
        #[serde(borrow, default, rename = "ephemeralContainerStatuses")]
        ephemeral: Option<Vec<&'a RawValue>>,
    }
    #[derive(Deserialize, Default)]
    struct Entry {
        #[serde(default)]
        name: String,
        #[serde(default, rename = "containerID")]
        container_id: String,
        #[serde(default)]
        image: String,
        #[serde(default, rename = "imageID")]
        image_id: String,
        #[serde(default)]
        state: State,
    }
    #[derive(Deserialize, Default)]
    struct State {
        running: Option<Times>,
        terminated: Option<Times>,
    }
    #[derive(Deserialize, Default)]
    struct Times {
        #[serde(default, rename = "startedAt")]
        started_at: Option<String>,
        #[serde(default, rename = "finishedAt")]
        finished_at: Option<String>,
    }
    let Ok(pod) = serde_json::from_str::<Pod>(pod) else {
        return Vec::new();
    };
    let Some(statuses) = pod.status else {
        return Vec::new();
    };
    let mut seen = HashSet::new();
    [statuses.containers, statuses.init, statuses.ephemeral]
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|raw| {
            let entry: Entry = serde_json::from_str(raw.get()).ok()?;
            if entry.container_id.is_empty() || !seen.insert(entry.container_id.clone()) {
                return None;
            }
            let running = entry.state.running.is_some();
            let times = entry
                .state
                .running
                .or(entry.state.terminated)
                .unwrap_or_default();
            Some(StatusContainer {
                name: entry.name,
                container_id: entry.container_id,
                image: entry.image,
                image_id: entry.image_id,
                running,
                started_at: times.started_at.unwrap_or_default(),
                finished_at: times.finished_at.unwrap_or_default(),
                raw: raw.get().to_string(),
            })
        })
        .collect()
}

struct HeldImage {
    names: Vec<String>,
    raw: String,
}

/// A node's `status.images`.
fn node_images(node: &str) -> Vec<HeldImage> {
    #[derive(Deserialize)]
    struct Node<'a> {
        #[serde(borrow, default)]
        status: Option<Status<'a>>,
    }
    #[derive(Deserialize)]
    struct Status<'a> {
        #[serde(borrow, default)]
        images: Option<Vec<&'a RawValue>>,
    }
    #[derive(Deserialize)]
    struct Entry {
        #[serde(default)]
        names: Vec<String>,
    }
    let Ok(node) = serde_json::from_str::<Node>(node) else {
        return Vec::new();
    };
    node.status
        .and_then(|s| s.images)
        .unwrap_or_default()
        .into_iter()
        .filter_map(|raw| {
            let entry: Entry = serde_json::from_str(raw.get()).ok()?;
            Some(HeldImage {
                names: entry.names,
                raw: raw.get().to_string(),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::objects::parse_object;
    use serde_json::value::RawValue;

    fn object(kind: Kind, value: serde_json::Value) -> Arc<KubeObject> {
        let raw = RawValue::from_string(value.to_string()).unwrap();
        Arc::new(parse_object(kind, &raw).unwrap())
    }

    fn pod(name: &str, id: char, image: &str) -> Arc<KubeObject> {
        let id: String = std::iter::repeat_n(id, 64).collect();
        object(
            Kind::POD,
            serde_json::json!({"metadata": {"namespace": "default", "name": name, "uid": format!("uid-{name}")},
                "spec": {"nodeName": "n1"},
                "status": {"containerStatuses": [{"name": "app", "containerID": format!("containerd://{id}"),
                    "image": image, "imageID": format!("{image}@sha256:{id}"), "state": {"running": {"startedAt": "2026-12-01T00:00:00Z"}}}]}}),
        )
    }

    fn kube(pods: Vec<Arc<KubeObject>>) -> KubeState {
        let mut kube = KubeState::default();
        kube.set(
            Kind::NODE,
            [
                object(Kind::NODE, serde_json::json!({"metadata": {"name": "n1"}})),
                object(Kind::NODE, serde_json::json!({"metadata": {"name": "n2"}})),
            ],
        );
        kube.set(Kind::POD, pods);
        kube
    }

    #[test]
    fn what_did_not_change_is_what_it_was() {
        let (a, b) = (pod("a", 'a', "nginx"), pod("b", 'b', "redis"));
        let mut learnt = Learnt::default();
        let first = nodes_without_runtime(&kube(vec![a.clone(), b.clone()]), &[], &mut learnt);
        // Every node no runtime was read for is listed, with pods or without.
        let names: Vec<&str> = first.iter().map(|n| n.node_name.as_str()).collect();
        assert_eq!(names, ["n1", "n2"]);
        assert!(first[1].containers.is_empty() && first[1].images.is_empty());
        assert_eq!(first[0].containers.len(), 2);

        // The same objects: the very same containers and images.
        let again = nodes_without_runtime(&kube(vec![a.clone(), b.clone()]), &[], &mut learnt);
        for (x, y) in first[0].containers.iter().zip(&again[0].containers) {
            assert!(Arc::ptr_eq(&x.container, &y.container));
        }
        for (x, y) in first[0].images.iter().zip(&again[0].images) {
            assert!(Arc::ptr_eq(x, y));
        }

        // Pod b changed (another image): a's container is kept, b's is new.
        let changed = pod("b", 'b', "postgres");
        let next = nodes_without_runtime(&kube(vec![a, changed]), &[], &mut learnt);
        assert!(Arc::ptr_eq(
            &first[0].containers[0].container,
            &next[0].containers[0].container
        ));
        assert!(!Arc::ptr_eq(
            &first[0].containers[1].container,
            &next[0].containers[1].container
        ));
        assert_eq!(
            next[0].containers[1].container.image_id,
            format!("postgres@sha256:{}", "b".repeat(64))
        );

        // Its last pod gone, the node is still listed, with nothing.
        let empty = nodes_without_runtime(&kube(Vec::new()), &[], &mut learnt);
        assert_eq!(empty.len(), 2);
        assert!(empty[0].containers.is_empty());
    }
}
