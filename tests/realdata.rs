//! Real recorded API responses (`tests/data/realdata/`, see its NOTICE.md) through the
//! parsers and the graph builder: nothing panics, nothing is refused that a real server
//! sent, and what is known about each recording (its counts and names) comes out.
//!
//! Expected relation counts are computed here from the raw JSON with serde_json values,
//! independently of the builder's index.

use crate::support::realdata::realdata;

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use cluster_insight::collect::objects::{parse_list_page, parse_object};
use cluster_insight::collect::runtime::docker::{
    parse_container_inspect, parse_container_list, parse_image, parse_top,
};
use cluster_insight::graph::observed::{Collected, KubeObject, NodeContainers, ObservedContainer};
use cluster_insight::graph::{build, BuildOptions, Graph, History, Kind};
use serde_json::Value;

fn read(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn items(text: &str, kind: Kind) -> Vec<Arc<KubeObject>> {
    let page = parse_list_page(text).expect("a list");
    page.items
        .iter()
        .map(|i| Arc::new(parse_object(kind, i).expect("a real object parses")))
        .collect()
}

fn count(graph: &Graph, relation: &str) -> usize {
    graph
        .relations
        .iter()
        .filter(|r| r.kind.as_str() == relation)
        .count()
}

/// Pods each selector selects, from the raw JSON: same namespace, labels ⊇ selector.
fn selected(
    pods: &[Value],
    selecting: &[Value],
    selector_of: fn(&Value) -> Option<&Value>,
) -> usize {
    let mut total = 0;
    for s in selecting {
        let Some(selector) = selector_of(s)
            .and_then(Value::as_object)
            .filter(|m| !m.is_empty())
        else {
            continue;
        };
        let ns = &s["metadata"]["namespace"];
        total += pods
            .iter()
            .filter(|p| &p["metadata"]["namespace"] == ns)
            .filter(|p| {
                selector
                    .iter()
                    .all(|(k, v)| &p["metadata"]["labels"][k] == v)
            })
            .count();
    }
    total
}

fn list_items(text: &str) -> Vec<Value> {
    let v: Value = serde_json::from_str(text).unwrap();
    match v {
        Value::Array(a) => a,
        v => v["items"].as_array().cloned().unwrap_or_default(),
    }
}

#[test]
fn the_2015_guestbook_cluster() {
    let Some(root) = realdata() else { return };
    let dir = root.join("google+cluster-insight/collector/testdata");
    let mut collected = Collected::default();
    *collected.kube.of_mut(Kind::NODE) = items(&read(&dir.join("nodes.input.json")), Kind::NODE);
    *collected.kube.of_mut(Kind::POD) = items(&read(&dir.join("pods.input.json")), Kind::POD);
    *collected.kube.of_mut(Kind::SERVICE) =
        items(&read(&dir.join("services.input.json")), Kind::SERVICE);
    *collected.kube.of_mut(Kind::REPLICATION_CONTROLLER) = items(
        &read(&dir.join("replicationcontrollers.input.json")),
        Kind::REPLICATION_CONTROLLER,
    );
    let names: Vec<String> = collected
        .kube
        .of(Kind::NODE)
        .iter()
        .map(|n| n.meta.name.clone())
        .collect();
    assert_eq!(
        names,
        [
            "k8s-guestbook-node-1",
            "k8s-guestbook-node-2",
            "k8s-guestbook-node-3",
            "k8s-guestbook-node-4"
        ]
    );

    // Docker: every node's container list; the inspects, tops and images that were recorded.
    for n in 1..=4 {
        let node = format!("k8s-guestbook-node-{n}");
        let listed =
            parse_container_list(&read(&dir.join(format!("{node}-containers.input.json"))))
                .unwrap();
        let mut docker = NodeContainers {
            node_name: node.clone(),
            ..NodeContainers::default()
        };
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let file = path.file_name().unwrap().to_string_lossy().to_string();
            if file.starts_with(&format!("{node}-container-")) {
                let c = parse_container_inspect(&read(&path), false).expect("2015 inspect");
                // The recordings were made at different times: an inspect need not be in
                // the list, but both must parse.
                assert!(!listed.is_empty() || n == 4);
                // Processes were recorded under the same suffix as the inspect file.
                let suffix = file.trim_start_matches(&format!("{node}-container-"));
                let top = dir.join(format!("{node}-processes-{suffix}"));
                let processes = if top.exists() {
                    parse_top(&read(&top)).unwrap()
                } else {
                    Vec::new()
                };
                docker.containers.push(ObservedContainer {
                    container: Arc::new(c),
                    processes,
                    processes_omitted: 0,
                    stale_since_ms: None,
                });
            } else if file.starts_with(&format!("{node}-image-")) {
                docker
                    .images
                    .push(Arc::new(parse_image(&read(&path)).expect("2015 image")));
            }
        }
        collected.nodes.push(docker);
    }

    let (graph, _) = build(
        &collected,
        &BuildOptions {
            cluster_name: "guestbook".into(),
        },
        0,
        &History::default(),
    );
    assert_eq!(graph.count(Kind::NODE), 4);
    assert_eq!(graph.count(Kind::POD), 14);
    assert_eq!(graph.count(Kind::SERVICE), 6);
    assert_eq!(graph.count(Kind::REPLICATION_CONTROLLER), 3);
    let inspected: usize = collected.nodes.iter().map(|d| d.containers.len()).sum();
    assert_eq!(inspected, 5, "the recordings hold five container inspects");
    assert_eq!(graph.count(Kind::CONTAINER), inspected);
    assert!(graph.count(Kind::PROCESS) > 0);

    let pods = list_items(&read(&dir.join("pods.input.json")));
    let services = list_items(&read(&dir.join("services.input.json")));
    let rcs = list_items(&read(&dir.join("replicationcontrollers.input.json")));
    assert_eq!(
        count(&graph, "loadBalances"),
        selected(&pods, &services, |s| s.get("spec")?.get("selector"))
    );
    assert_eq!(
        count(&graph, "monitors"),
        selected(&pods, &rcs, |s| s.get("spec")?.get("selector"))
    );
    // Pods on the master are scheduled on a node the node list does not hold: no relation.
    let node_names: Vec<Value> = names.iter().map(|n| Value::from(n.as_str())).collect();
    let scheduled = pods
        .iter()
        .filter(|p| node_names.contains(&p["spec"]["nodeName"]))
        .count();
    // Node→Pod for every scheduled pod, Node→Container for every container in no pod.
    let podless = graph.count(Kind::CONTAINER) - pod_container_links(&graph);
    assert_eq!(count(&graph, "runs"), scheduled + podless);
    // Redaction holds on real inspects too: no Env value survives.
    for r in graph.resources.iter().filter(|r| r.kind == Kind::CONTAINER) {
        let v: Value = serde_json::from_str(&r.properties).unwrap();
        for e in v["Config"]["Env"].as_array().into_iter().flatten() {
            assert!(e.as_str().unwrap().ends_with("=<redacted>"), "{e}");
        }
    }
}

fn pod_container_links(graph: &Graph) -> usize {
    graph
        .relations
        .iter()
        .filter(|r| r.kind.as_str() == "contains" && r.source.starts_with("Pod:"))
        .count()
}

#[test]
fn sonobuoy_bare_arrays() {
    let Some(root) = realdata() else { return };
    let dir = root.join("vmware-tanzu+sonobuoy/results-0.10/resources");
    let mut collected = Collected::default();
    *collected.kube.of_mut(Kind::NODE) = items(&read(&dir.join("cluster/Nodes.json")), Kind::NODE);
    let mut raw_pods = Vec::new();
    let mut raw_services = Vec::new();
    for ns in ["kube-system", "heptio-sonobuoy", "default"] {
        let pods = dir.join(format!("ns/{ns}/Pods.json"));
        if pods.exists() {
            collected
                .kube
                .of_mut(Kind::POD)
                .extend(items(&read(&pods), Kind::POD));
            raw_pods.extend(list_items(&read(&pods)));
        }
        let services = dir.join(format!("ns/{ns}/Services.json"));
        collected
            .kube
            .of_mut(Kind::SERVICE)
            .extend(items(&read(&services), Kind::SERVICE));
        raw_services.extend(list_items(&read(&services)));
    }
    assert_eq!(collected.kube.of(Kind::NODE).len(), 3);
    assert_eq!(collected.kube.of(Kind::POD).len(), 19);
    assert!(collected.kube.of(Kind::NODE).iter().all(|n| n
        .node()
        .and_then(|n| n.address.as_deref())
        .is_some_and(|a| a.starts_with("10.0."))));
    let pods = || collected.kube.of(Kind::POD).iter().filter_map(|o| o.pod());
    let with_ids = pods().filter(|p| !p.container_ids.is_empty()).count();
    assert!(with_ids > 0);
    assert!(pods()
        .flat_map(|p| &p.container_ids)
        .all(|id| id.len() == 64));
    let (graph, _) = build(
        &collected,
        &BuildOptions {
            cluster_name: "aws".into(),
        },
        0,
        &History::default(),
    );
    assert_eq!(
        count(&graph, "loadBalances"),
        selected(&raw_pods, &raw_services, |s| s.get("spec")?.get("selector"))
    );
    let scheduled = raw_pods
        .iter()
        .filter(|p| p["spec"]["nodeName"].is_string())
        .count();
    assert_eq!(count(&graph, "runs"), scheduled);
}

#[test]
fn recorded_api_server_exchanges() {
    let Some(root) = realdata() else { return };
    for (version, runtime) in [("v1-13", "docker"), ("v1-36", "containerd")] {
        let path = root.join(format!(
            "Arnavion+k8s-openapi/k8s-openapi-tests/test-replays/{version}/pod-list.json"
        ));
        let exchanges: Vec<Value> = serde_json::from_str(&read(&path)).unwrap();
        let body = exchanges[0]["response_body"].as_str().unwrap();
        let pods = items(body, Kind::POD);
        assert!(!pods.is_empty(), "{version}");
        let raw = list_items(body);
        let expected_ids: usize = raw
            .iter()
            .flat_map(|p| {
                p["status"]["containerStatuses"]
                    .as_array()
                    .cloned()
                    .unwrap_or_default()
            })
            .filter(|s| {
                s["containerID"]
                    .as_str()
                    .is_some_and(|id| id.starts_with(&format!("{runtime}://")))
            })
            .count();
        let pods: Vec<_> = pods.iter().filter_map(|o| o.pod()).collect();
        let got: usize = pods.iter().map(|p| p.container_ids.len()).sum();
        assert!(
            got >= expected_ids && expected_ids > 0,
            "{version}: {got} vs {expected_ids}"
        );
        assert!(pods
            .iter()
            .flat_map(|p| &p.container_ids)
            .all(|id| !id.contains("://")));
    }
}

#[test]
fn single_objects_and_failing_pods() {
    let Some(root) = realdata() else { return };
    let mut parsed = BTreeMap::new();
    let openshift = root.join("openshift+insights-operator/docs/insights-archive-sample/config");
    for entry in walk(&openshift) {
        let text = read(&entry);
        let raw = serde_json::value::RawValue::from_string(text).unwrap();
        if entry.to_string_lossy().contains("/node/") {
            let node = parse_object(Kind::NODE, &raw).expect("real node");
            assert!(node.node().unwrap().address.is_some());
            *parsed.entry("node").or_insert(0) += 1;
        } else {
            let pod = parse_object(Kind::POD, &raw).expect("real pod");
            let ids = &pod.pod().unwrap().container_ids;
            assert!(ids.iter().all(|id| !id.contains("://")));
            *parsed.entry("pod").or_insert(0) += 1;
        }
    }
    assert_eq!(parsed.get("node"), Some(&2));
    assert!(parsed.get("pod").copied().unwrap_or(0) >= 5);

    let troubleshoot = root.join("replicatedhq+troubleshoot/pkg/analyze/files");
    let nodes = items(&read(&troubleshoot.join("nodes.json")), Kind::NODE);
    assert_eq!(nodes.len(), 7);
    let mut pending = 0;
    for entry in walk(&troubleshoot.join("pods")) {
        for pod in items(&read(&entry), Kind::POD) {
            pending += usize::from(pod.pod().unwrap().node_name.is_none());
        }
    }
    assert!(pending >= 1, "the pending pods have no node");
}

#[test]
fn docker_recordings_of_every_era() {
    let Some(root) = realdata() else { return };
    let mut inspects = 0;
    let mut images = 0;
    let mut lists = 0;
    for path in walk(&root) {
        let name = path.to_string_lossy().to_string();
        if !name.ends_with(".json")
            || name.contains("k8s-openapi")
            || name.contains("kubernetes-client")
        {
            continue;
        }
        let text = read(&path);
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        let is_container = value.get("State").is_some()
            && value.get("Id").is_some()
            && value.get("Config").is_some();
        let is_image = value.get("RepoTags").is_some()
            || (value.get("Architecture").is_some() && value.get("Id").is_some());
        let is_list = value
            .as_array()
            .is_some_and(|a| a.first().is_some_and(|c| c.get("Names").is_some()));
        if is_container {
            let c = parse_container_inspect(&text, false).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!c.id.is_empty());
            inspects += 1;
        } else if is_image {
            parse_image(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            images += 1;
        } else if is_list {
            let listed = parse_container_list(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
            assert!(!listed.is_empty());
            lists += 1;
        }
    }
    assert!(
        inspects >= 10 && images >= 5 && lists >= 4,
        "{inspects} {images} {lists}"
    );
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let p = entry.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.push(p);
            }
        }
    }
    out.sort();
    out
}

/// A recorded cluster: lists of several kinds, parsed, plus a Namespace for each namespace
/// its objects name (the recordings hold no Namespace objects), and the raw JSON the
/// expectations are computed from.
#[derive(Default)]
struct Recorded {
    collected: Collected,
    /// Each object once, by its graph ID, as the recording has it.
    raw: BTreeMap<String, (Kind, Value)>,
}

impl Recorded {
    fn add(&mut self, kind: Kind, text: &str) {
        let page = parse_list_page(text).expect("a list");
        for (item, value) in page.items.iter().zip(list_items(text)) {
            let object = parse_object(kind, item).expect("a real object parses");
            self.collected.kube.of_mut(kind).push(Arc::new(object));
            // Recordings of several clusters may repeat an object: the graph keeps the
            // first, and so do the expectations.
            self.raw
                .entry(raw_id(kind, &value))
                .or_insert((kind, value));
        }
    }

    fn add_file(&mut self, kind: Kind, path: &Path) {
        self.add(kind, &read(path));
    }

    /// Adds a Namespace for each namespace named, then builds the graph.
    fn build(mut self) -> (Graph, Recorded) {
        let namespaces: std::collections::BTreeSet<String> = self
            .raw
            .values()
            .filter(|(kind, _)| kind.namespaced())
            .filter_map(|(_, v)| v["metadata"]["namespace"].as_str().map(str::to_string))
            .collect();
        let items: Vec<Value> = namespaces
            .iter()
            .map(|ns| serde_json::json!({"metadata": {"name": ns, "uid": format!("namespace-{ns}")}}))
            .collect();
        self.add(
            Kind::NAMESPACE,
            &serde_json::json!({ "items": items }).to_string(),
        );
        let options = BuildOptions {
            cluster_name: "recorded".into(),
        };
        let (graph, _) = build(&self.collected, &options, 0, &History::default());
        (graph, self)
    }

    /// The `owns` and Namespace `contains` relations the recording implies, worked out here
    /// from the raw JSON: an owner named by uid and present; a namespace for what has no
    /// owner present and is not a pod that a present node runs.
    fn expected_ownership(&self) -> BTreeSet<String> {
        let by_uid: HashMap<&str, &str> = self
            .raw
            .iter()
            .filter_map(|(id, (_, v))| Some((v["metadata"]["uid"].as_str()?, id.as_str())))
            .collect();
        let mut out = BTreeSet::new();
        for (id, (kind, v)) in &self.raw {
            let mut owned = false;
            for owner in v["metadata"]["ownerReferences"]
                .as_array()
                .into_iter()
                .flatten()
            {
                if let Some(owner) = owner["uid"].as_str().and_then(|u| by_uid.get(u)) {
                    out.insert(format!("{owner} owns {id}"));
                    owned = true;
                }
            }
            let run_by_node = *kind == Kind::POD
                && v["spec"]["nodeName"]
                    .as_str()
                    .is_some_and(|n| self.raw.contains_key(&format!("Node:{n}")));
            if kind.namespaced() && !owned && !run_by_node {
                let ns = v["metadata"]["namespace"].as_str().unwrap();
                out.insert(format!("Namespace:{ns} contains {id}"));
            }
        }
        out
    }
}

fn raw_id(kind: Kind, value: &Value) -> String {
    let name = value["metadata"]["name"].as_str().unwrap();
    if kind.namespaced() {
        let ns = value["metadata"]["namespace"].as_str().unwrap();
        format!("{kind}:{ns}/{name}")
    } else {
        format!("{kind}:{name}")
    }
}

/// The graph's `owns` relations and the `contains` relations out of Namespaces.
fn ownership(graph: &Graph) -> BTreeSet<String> {
    graph
        .relations
        .iter()
        .filter(|r| {
            r.kind.as_str() == "owns"
                || (r.kind.as_str() == "contains" && r.source.starts_with("Namespace:"))
        })
        .map(|r| format!("{} {} {}", r.source, r.kind.as_str(), r.target))
        .collect()
}

fn owns_between(set: &BTreeSet<String>, owner: &str, owned: &str) -> usize {
    set.iter()
        .filter(|r| r.starts_with(&format!("{owner}:")) && r.contains(&format!(" owns {owned}:")))
        .count()
}

#[test]
fn sonobuoy_workloads_own_their_pods() {
    let Some(root) = realdata() else { return };
    let dir = root.join("vmware-tanzu+sonobuoy/results-0.10/resources");
    let mut recorded = Recorded::default();
    recorded.add_file(Kind::NODE, &dir.join("cluster/Nodes.json"));
    for ns in ["kube-system", "heptio-sonobuoy"] {
        for (kind, file) in [
            (Kind::POD, "Pods"),
            (Kind::DEPLOYMENT, "Deployments"),
            (Kind::REPLICA_SET, "ReplicaSets"),
            (Kind::DAEMON_SET, "DaemonSets"),
        ] {
            let path = dir.join(format!("ns/{ns}/{file}.json"));
            if path.exists() {
                recorded.add_file(kind, &path);
            }
        }
    }
    let (graph, recorded) = recorded.build();
    let expected = recorded.expected_ownership();
    let got = ownership(&graph);
    assert_eq!(got, expected);
    // What the recording is known to hold: each of the 4 ReplicaSets owned by its
    // Deployment, 3 of them with a pod (one is scaled to zero), 10 DaemonSet pods.
    assert_eq!(owns_between(&got, "Deployment", "ReplicaSet"), 4);
    assert_eq!(owns_between(&got, "ReplicaSet", "Pod"), 3);
    assert_eq!(owns_between(&got, "DaemonSet", "Pod"), 10);
}

#[test]
fn troubleshoot_bundles_with_owners_missing_and_managed_fields() {
    let Some(root) = realdata() else { return };
    let dir = root.join("replicatedhq+troubleshoot/pkg/analyze/files");
    let mut recorded = Recorded::default();
    recorded.add_file(Kind::NODE, &dir.join("nodes.json"));
    for (kind, folder) in [
        (Kind::POD, "pods"),
        (Kind::DEPLOYMENT, "deployments"),
        (Kind::REPLICA_SET, "replicasets"),
        (Kind::STATEFUL_SET, "statefulsets"),
        (Kind::JOB, "jobs"),
    ] {
        for path in walk(&dir.join(folder)) {
            recorded.add_file(kind, &path);
        }
    }
    let with_managed_fields = recorded
        .raw
        .values()
        .filter(|(_, v)| v["metadata"].get("managedFields").is_some())
        .count();
    let (graph, recorded) = recorded.build();
    assert_eq!(ownership(&graph), recorded.expected_ownership());
    // StatefulSets owned by Prometheus custom resources, ReplicaSets whose Deployments were
    // not collected: owners absent from the graph, so no relation (and no error); their
    // namespaces hold them.
    let got = ownership(&graph);
    for orphan in [
        "StatefulSet:monitoring/prometheus-k8s",
        "StatefulSet:monitoring/alertmanager-prometheus-alertmanager",
    ] {
        assert!(
            got.contains(&format!("Namespace:monitoring contains {orphan}")),
            "{orphan}: {got:#?}"
        );
    }
    // managedFields is cut from what the graph shows.
    assert!(with_managed_fields >= 20, "{with_managed_fields}");
    for resource in &graph.resources {
        assert!(
            !resource.properties.contains("\"managedFields\""),
            "{}",
            resource.id
        );
    }
}

#[test]
fn kdash_lists_of_every_workload_kind() {
    let Some(root) = realdata() else { return };
    let dir = root.join("kdash-rs+kdash/test_data");
    let mut recorded = Recorded::default();
    for (kind, file, count) in [
        (Kind::NODE, "nodes", 1),
        // 13 items, one of them twice (the graph shows it once).
        (Kind::POD, "pods", 12),
        (Kind::SERVICE, "svcs", 5),
        (Kind::DEPLOYMENT, "deployments", 4),
        (Kind::REPLICA_SET, "replicasets", 4),
        (Kind::STATEFUL_SET, "stfs", 1),
        (Kind::DAEMON_SET, "daemonsets", 1),
        (Kind::JOB, "jobs", 3),
        (Kind::REPLICATION_CONTROLLER, "replication_controllers", 2),
    ] {
        recorded.add_file(kind, &dir.join(format!("{file}.json")));
        let distinct = recorded.raw.values().filter(|(k, _)| *k == kind).count();
        assert_eq!(distinct, count, "{file}");
    }
    let (graph, recorded) = recorded.build();
    // The pod listed twice is one resource.
    assert_eq!(recorded.collected.kube.of(Kind::POD).len(), 13);
    assert_eq!(
        graph
            .resources
            .iter()
            .filter(|r| r.kind == Kind::POD)
            .count(),
        12
    );
    let got = ownership(&graph);
    assert_eq!(got, recorded.expected_ownership());
    // The lists come from different clusters: k3s's Deployments own their ReplicaSets, but
    // the pods' ReplicaSets were never recorded, so namespaces hold the pods.
    assert_eq!(owns_between(&got, "Deployment", "ReplicaSet"), 4);
    assert_eq!(owns_between(&got, "ReplicaSet", "Pod"), 0);
    assert!(got.contains("Namespace:default contains Pod:default/adservice-f787c8dcd-tb6x2"));
    // Services still balance over the pods their selectors pick.
    let raw_pods: Vec<Value> = list_items(&read(&dir.join("pods.json")));
    let raw_services: Vec<Value> = list_items(&read(&dir.join("svcs.json")));
    assert_eq!(
        count(&graph, "loadBalances"),
        selected(&raw_pods, &raw_services, |s| s.get("spec")?.get("selector"))
    );
}

#[test]
fn recorded_deployment_lists_and_a_job_with_its_pod() {
    let Some(root) = realdata() else { return };
    let replays = root.join("Arnavion+k8s-openapi/k8s-openapi-tests/test-replays");
    for version in ["v1-13", "v1-36"] {
        let exchanges = |file: &str| -> Vec<Value> {
            serde_json::from_str(&read(&replays.join(format!("{version}/{file}")))).unwrap()
        };
        let mut recorded = Recorded::default();
        let deployments = exchanges("deployment-list.json");
        recorded.add(
            Kind::DEPLOYMENT,
            deployments[0]["response_body"].as_str().unwrap(),
        );
        // The Job as last read before its pods were listed, and that pod list.
        let job = exchanges("job-create.json");
        let pods_at = job
            .iter()
            .position(|e| {
                e["request_url"]
                    .as_str()
                    .is_some_and(|u| u.contains("/pods") && !u.contains("labelSelector"))
            })
            .unwrap();
        let job_body = job[..pods_at]
            .iter()
            .rev()
            .find_map(|e| e["response_body"].as_str())
            .unwrap();
        recorded.add(Kind::JOB, &format!("{{\"items\":[{job_body}]}}"));
        recorded.add(Kind::POD, job[pods_at]["response_body"].as_str().unwrap());
        let (graph, recorded) = recorded.build();
        let got = ownership(&graph);
        assert_eq!(got, recorded.expected_ownership(), "{version}");
        assert_eq!(owns_between(&got, "Job", "Pod"), 1, "{version}: {got:#?}");
        assert!(
            got.contains("Namespace:kube-system contains Deployment:kube-system/coredns"),
            "{version}: {got:#?}"
        );
    }
}

/// The official OpenAPI document (Kubernetes 1.36).
fn api_specification(root: &Path) -> Value {
    use std::io::Read;
    let path = root.join("kubernetes-client+python/kubernetes/swagger.json.unprocessed.gz");
    let file = std::fs::File::open(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let mut text = String::new();
    flate2::read::GzDecoder::new(file)
        .read_to_string(&mut text)
        .unwrap();
    serde_json::from_str(&text).unwrap()
}

/// Whether `fields` (`spec.volumes.persistentVolumeClaim.claimName`; arrays are walked
/// through) is a path of the definition `name` in the specification.
fn has_field(spec: &Value, name: &str, fields: &str) -> bool {
    fn resolve<'a>(definitions: &'a Value, mut schema: &'a Value) -> &'a Value {
        loop {
            if let Some(reference) = schema["$ref"].as_str() {
                schema = &definitions[reference.trim_start_matches("#/definitions/")];
            } else if schema["type"] == "array" {
                schema = &schema["items"];
            } else {
                return schema;
            }
        }
    }
    let definitions = &spec["definitions"];
    let mut schema = resolve(definitions, &definitions[name]);
    for field in fields.split('.') {
        match schema["properties"].get(field) {
            Some(next) => schema = resolve(definitions, next),
            None => return false,
        }
    }
    true
}

#[test]
fn the_table_of_kinds_and_the_fields_read_agree_with_the_api_specification() {
    let Some(root) = realdata() else { return };
    let spec = api_specification(&root);
    let paths = &spec["paths"];
    for kind in Kind::listed() {
        let info = kind.info();
        let api = info.api.unwrap();
        let list = kind.list_path().unwrap();
        let get = &paths[&list]["get"];
        assert_eq!(get["x-kubernetes-action"], "list", "{list}");
        assert_eq!(
            get["x-kubernetes-group-version-kind"],
            serde_json::json!({"group": api.group, "version": api.version, "kind": info.name}),
            "{list}"
        );
        // Per namespace exactly when the table says the kind is namespaced.
        let prefix = list.trim_end_matches(&format!("/{}", info.plural));
        let per_namespace = format!("{prefix}/namespaces/{{namespace}}/{}", info.plural);
        assert_eq!(
            paths.get(&per_namespace).is_some(),
            kind.namespaced(),
            "{per_namespace}"
        );
    }
    // Every field a relation rule reads is where the specification puts it.
    for (definition, fields) in [
        (
            "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta",
            "ownerReferences.uid",
        ),
        ("io.k8s.api.core.v1.Pod", "spec.nodeName"),
        (
            "io.k8s.api.core.v1.Pod",
            "spec.volumes.persistentVolumeClaim.claimName",
        ),
        (
            "io.k8s.api.core.v1.Pod",
            "status.containerStatuses.containerID",
        ),
        (
            "io.k8s.api.core.v1.PersistentVolumeClaim",
            "spec.volumeName",
        ),
        (
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            "spec.scaleTargetRef.kind",
        ),
        (
            "io.k8s.api.autoscaling.v2.HorizontalPodAutoscaler",
            "spec.scaleTargetRef.name",
        ),
        (
            "io.k8s.api.networking.v1.Ingress",
            "spec.rules.http.paths.backend.service.name",
        ),
        (
            "io.k8s.api.networking.v1.Ingress",
            "spec.defaultBackend.service.name",
        ),
        (
            "io.k8s.api.discovery.v1.EndpointSlice",
            "endpoints.targetRef.uid",
        ),
        (
            "io.k8s.api.discovery.v1.EndpointSlice",
            "endpoints.targetRef.name",
        ),
        ("io.k8s.api.discovery.v1.EndpointSlice", "metadata.labels"),
        (
            "io.k8s.api.apps.v1.Deployment",
            "spec.selector.matchExpressions.operator",
        ),
        ("io.k8s.api.core.v1.Service", "spec.selector"),
        ("io.k8s.api.core.v1.ReplicationController", "spec.selector"),
    ] {
        assert!(
            has_field(&spec, definition, fields),
            "{definition}: {fields}"
        );
    }
    assert!(!has_field(&spec, "io.k8s.api.core.v1.Pod", "spec.claims"));
}

/// The recorded watch streams of real API servers (Kubernetes 1.13 and 1.36), through the
/// watch parser: every event read, its object parsed as a pod, and the names, namespaces
/// and versions those of the raw JSON.
#[test]
fn recorded_watch_streams_go_through_the_watch_parser() {
    use cluster_insight::collect::watch::{parse_event, EventKind};
    let Some(root) = realdata() else { return };
    for version in ["v1-13", "v1-36"] {
        let path = root.join(format!(
            "Arnavion+k8s-openapi/k8s-openapi-tests/test-replays/{version}/watch_event-watch_pods.json"
        ));
        let exchanges: Vec<Value> = serde_json::from_str(&read(&path)).unwrap();
        let body = exchanges[0]["response_body"].as_str().unwrap();
        let lines: Vec<&str> = body.lines().filter(|l| !l.trim().is_empty()).collect();
        assert!(lines.len() >= 5, "{version}: {} events", lines.len());
        for line in lines {
            let raw: Value = serde_json::from_str(line).unwrap();
            let event = parse_event(line).unwrap_or_else(|e| panic!("{version}: {e}"));
            assert_eq!(event.kind, EventKind::Upsert, "{version}: {}", raw["type"]);
            let meta = &raw["object"]["metadata"];
            assert_eq!(event.name, meta["name"].as_str().unwrap());
            assert_eq!(event.namespace, meta["namespace"].as_str().unwrap());
            assert_eq!(event.version, meta["resourceVersion"].as_str().unwrap());
            let pod = parse_object(Kind::POD, event.object).unwrap();
            assert_eq!(pod.meta.uid, meta["uid"].as_str().unwrap());
        }
    }
}
