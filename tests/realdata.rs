//! Real recorded API responses (`tests/data/realdata/`, see its NOTICE.md) through the
//! parsers and the graph builder: nothing panics, nothing is refused that a real server
//! sent, and what is known about each recording (its counts and names) comes out.
//!
//! Expected relation counts are computed here from the raw JSON with serde_json values,
//! independently of the builder's index.

use crate::support::realdata::realdata;

use std::collections::BTreeMap;
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

fn items(text: &str, kind: Kind) -> Vec<KubeObject> {
    let page = parse_list_page(text).expect("a list");
    page.items
        .iter()
        .map(|i| parse_object(kind, i).expect("a real object parses"))
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
    let pods = || {
        collected
            .kube
            .of(Kind::POD)
            .iter()
            .filter_map(KubeObject::pod)
    };
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
        let pods: Vec<_> = pods.iter().filter_map(KubeObject::pod).collect();
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
