//! Kinds named with `--extra-kinds`: custom resources learned from the API server's
//! discovery, listed like the built-in kinds and placed in the graph by who owns them.
//!
//! The simulator serves the objects of a `List` written here, CustomResourceDefinitions
//! included: it then serves those types (discovery, lists, objects) as an API server does.

use crate::support::client::get;
use crate::support::master::{graph_consistency, MasterProcess};

use std::collections::BTreeSet;
use std::process::Stdio;
use std::time::{Duration, Instant};

use cluster_insight_sim::Simulator;
use serde_json::{json, Value};

fn definition(group: &str, kind: &str, plural: &str, scope: &str, version: &str) -> Value {
    json!({
        "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
        "metadata": {"name": format!("{plural}.{group}")},
        "spec": {"group": group, "scope": scope,
                 "names": {"kind": kind, "plural": plural, "singular": kind.to_lowercase()},
                 "versions": [{"name": version, "served": true, "storage": true}]},
    })
}

fn owner(api_version: &str, kind: &str, name: &str, uid: &str) -> Value {
    json!([{"apiVersion": api_version, "kind": kind, "name": name, "uid": uid, "controller": true}])
}

/// A namespace with an Argo Rollout that owns a ReplicaSet that owns a pod, an autoscaler
/// of the Rollout, and a cluster-wide cert-manager ClusterIssuer.
fn objects() -> String {
    let labels = json!({"app": "checkout"});
    let items = vec![
        json!({"kind": "Namespace", "apiVersion": "v1",
               "metadata": {"name": "shop", "uid": "ns-1"}, "status": {"phase": "Active"}}),
        definition(
            "argoproj.io",
            "Rollout",
            "rollouts",
            "Namespaced",
            "v1alpha1",
        ),
        definition(
            "cert-manager.io",
            "ClusterIssuer",
            "clusterissuers",
            "Cluster",
            "v1",
        ),
        json!({"kind": "Rollout", "apiVersion": "argoproj.io/v1alpha1",
               "metadata": {"name": "checkout", "namespace": "shop", "uid": "ro-1",
                            "labels": labels},
               "spec": {"replicas": 1, "selector": {"matchLabels": labels},
                        "strategy": {"canary": {"steps": [{"setWeight": 20}]}}}}),
        json!({"kind": "ReplicaSet", "apiVersion": "apps/v1",
               "metadata": {"name": "checkout-6f7d9c", "namespace": "shop", "uid": "rs-1",
                            "labels": labels,
                            "ownerReferences": owner("argoproj.io/v1alpha1", "Rollout", "checkout", "ro-1")},
               "spec": {"replicas": 1, "selector": {"matchLabels": labels}}}),
        json!({"kind": "Pod", "apiVersion": "v1",
               "metadata": {"name": "checkout-6f7d9c-x2b4q", "namespace": "shop", "uid": "pod-1",
                            "labels": labels,
                            "ownerReferences": owner("apps/v1", "ReplicaSet", "checkout-6f7d9c", "rs-1")},
               "spec": {"containers": [{"name": "app", "image": "shop/checkout:1.4"}]},
               "status": {"phase": "Pending"}}),
        json!({"kind": "HorizontalPodAutoscaler", "apiVersion": "autoscaling/v2",
               "metadata": {"name": "checkout", "namespace": "shop", "uid": "hpa-1"},
               "spec": {"scaleTargetRef": {"apiVersion": "argoproj.io/v1alpha1", "kind": "Rollout",
                                           "name": "checkout"},
                        "minReplicas": 1, "maxReplicas": 5}}),
        json!({"kind": "ClusterIssuer", "apiVersion": "cert-manager.io/v1",
               "metadata": {"name": "letsencrypt", "uid": "ci-1"},
               "spec": {"acme": {"server": "https://acme.invalid/directory"}}}),
    ];
    json!({"kind": "List", "apiVersion": "v1", "items": items}).to_string()
}

fn relations(graph: &Value) -> BTreeSet<String> {
    graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            format!(
                "{} {} {}",
                r["source"].as_str().unwrap(),
                r["type"].as_str().unwrap(),
                r["target"].as_str().unwrap()
            )
        })
        .collect()
}

fn ids(graph: &Value) -> BTreeSet<String> {
    crate::support::master::resource_ids(graph)
        .into_iter()
        .collect()
}

#[test]
fn custom_resources_named_at_start_are_shown_with_what_they_own() {
    let sim = Simulator::start_with_objects(&objects(), 0).unwrap();
    let master = MasterProcess::against(
        &sim,
        &[
            "--no-docker",
            "--extra-kinds",
            "argoproj.io/v1alpha1/rollouts,cert-manager.io/v1/clusterissuers",
            "--extra-kinds",
            "example.com/v1/widgets",
        ],
    );
    let status = master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    graph_consistency(&graph).unwrap();

    let shown = ids(&graph);
    for id in [
        "Rollout:shop/checkout",
        "ClusterIssuer:letsencrypt",
        "ReplicaSet:shop/checkout-6f7d9c",
    ] {
        assert!(shown.contains(id), "{id} missing: {shown:?}");
    }
    let related = relations(&graph);
    for relation in [
        "Rollout:shop/checkout owns ReplicaSet:shop/checkout-6f7d9c",
        "ReplicaSet:shop/checkout-6f7d9c owns Pod:shop/checkout-6f7d9c-x2b4q",
        "Namespace:shop contains Rollout:shop/checkout",
        "HorizontalPodAutoscaler:shop/checkout scales Rollout:shop/checkout",
        "Cluster:cluster contains ClusterIssuer:letsencrypt",
    ] {
        assert!(
            related.contains(relation),
            "{relation} missing: {related:#?}"
        );
    }
    // After the table's kinds, in the order named.
    let position = |kind: &str| {
        graph["resources"]
            .as_array()
            .unwrap()
            .iter()
            .position(|r| r["type"] == kind)
            .unwrap()
    };
    assert!(position("HorizontalPodAutoscaler") < position("Rollout"));
    assert!(position("Rollout") < position("ClusterIssuer"));
    // Owned, so not also held by the namespace.
    assert!(!related.contains("Namespace:shop contains ReplicaSet:shop/checkout-6f7d9c"));
    let rollout = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == "Rollout:shop/checkout")
        .unwrap();
    assert_eq!(
        rollout["properties"]["spec"]["strategy"]["canary"]["steps"][0]["setWeight"],
        20
    );

    // Each extra kind has its line in /status, named as kubectl names it; one the API
    // server does not serve is passed over, and says so, without failing the API.
    let lists = &status["sources"]["kubernetes"]["lists"];
    assert_eq!(lists["rollouts.argoproj.io"]["status"], "OK", "{status}");
    assert_eq!(lists["rollouts.argoproj.io"]["objects"], 1, "{status}");
    assert_eq!(lists["clusterissuers.cert-manager.io"]["status"], "OK");
    assert_eq!(
        lists["widgets.example.com"]["status"], "SKIPPED",
        "{status}"
    );
    let why = lists["widgets.example.com"]["error"].as_str().unwrap();
    assert!(
        why.contains("does not serve example.com/v1/widgets"),
        "{why}"
    );
    assert_eq!(status["sources"]["kubernetes"]["status"], "OK", "{status}");

    // The REST API knows the extra kinds by name and plural.
    for path in ["/cluster/resources/rollouts", "/cluster/resources/Rollout"] {
        let reply = get(master.addr, path);
        assert_eq!(reply.status, 200, "{path}: {}", reply.text());
        let body = reply.json();
        assert_eq!(
            body["resources"].as_array().unwrap().len(),
            1,
            "{path}: {body}"
        );
    }

    // Without the flag, the ReplicaSet's owner is not in the graph: its namespace holds it.
    let plain = MasterProcess::against(&sim, &["--no-docker"]);
    plain.wait_for_refreshes(1);
    let graph = get(plain.addr, "/cluster").json();
    graph_consistency(&graph).unwrap();
    assert!(!ids(&graph).contains("Rollout:shop/checkout"));
    assert!(relations(&graph).contains("Namespace:shop contains ReplicaSet:shop/checkout-6f7d9c"));
}

#[test]
fn a_kind_is_added_when_discovery_answers_and_a_taken_kind_gets_its_group() {
    // A Knative Service: its `kind` is the core Service's, so it is named with its group.
    let mut items: Vec<Value> = serde_json::from_str::<Value>(&objects()).unwrap()["items"]
        .as_array()
        .unwrap()
        .clone();
    items.push(definition(
        "serving.knative.dev",
        "Service",
        "services",
        "Namespaced",
        "v1",
    ));
    items.push(
        json!({"kind": "Service", "apiVersion": "serving.knative.dev/v1",
        "metadata": {"name": "checkout", "namespace": "shop", "uid": "ksvc-1"},
        "spec": {"template": {"spec": {"containers": [{"image": "shop/checkout:1.4"}]}}}}),
    );
    let list = json!({"kind": "List", "items": items}).to_string();
    let sim = Simulator::start_with_objects(&list, 0).unwrap();
    // Discovery of Argo's group fails at first (and so would its list).
    sim.faults().set_kube_on(
        "/apis/argoproj.io/",
        cluster_insight_sim::Fault::Status(503),
    );
    let master = MasterProcess::against(
        &sim,
        &[
            "--no-docker",
            "--extra-kinds",
            "argoproj.io/v1alpha1/rollouts,serving.knative.dev/v1/services",
        ],
    );
    let status = master.wait_for_refreshes(2);
    let lists = &status["sources"]["kubernetes"]["lists"];
    let waiting = &lists["rollouts.argoproj.io"];
    assert_eq!(waiting["status"], "ERROR", "{status}");
    assert!(
        waiting["error"]
            .as_str()
            .unwrap()
            .contains("waiting for discovery"),
        "{status}"
    );
    assert_eq!(status["sources"]["kubernetes"]["status"], "ERROR");
    assert_eq!(
        lists["services.serving.knative.dev"]["status"], "OK",
        "{status}"
    );
    let graph = get(master.addr, "/cluster").json();
    let shown = ids(&graph);
    assert!(
        shown.contains("Service.serving.knative.dev:shop/checkout"),
        "{shown:?}"
    );
    assert!(!shown.iter().any(|id| id.starts_with("Rollout:")));
    assert!(relations(&graph)
        .contains("Namespace:shop contains Service.serving.knative.dev:shop/checkout"));
    // The built-in plural still names the built-in kind; the added one answers to its name.
    let core = get(master.addr, "/cluster/resources/services").json();
    assert!(core["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["type"] == "Service"));
    let knative = get(
        master.addr,
        "/cluster/resources/Service.serving.knative.dev",
    )
    .json();
    assert_eq!(
        knative["resources"].as_array().unwrap().len(),
        1,
        "{knative}"
    );

    // Discovery answers: the kind is added, listed and placed by the next refreshes.
    sim.faults().clear();
    let mut shown_now = false;
    for _ in 0..20 {
        let status = master.wait_for_more_refreshes(1);
        let graph = get(master.addr, "/cluster").json();
        if ids(&graph).contains("Rollout:shop/checkout") {
            graph_consistency(&graph).unwrap();
            assert!(relations(&graph)
                .contains("Rollout:shop/checkout owns ReplicaSet:shop/checkout-6f7d9c"));
            assert_eq!(
                status["sources"]["kubernetes"]["lists"]["rollouts.argoproj.io"]["status"], "OK",
                "{status}"
            );
            shown_now = true;
            break;
        }
    }
    assert!(shown_now, "the Rollout never came:\n{}", master.log_text());
    assert_eq!(master.status()["sources"]["kubernetes"]["status"], "OK");
}

#[test]
fn extra_kinds_that_cannot_be_shown_are_refused_at_start() {
    for (flag, says) in [
        ("apps/v1/deployments", "read already"),
        ("apps/v1beta2/deployments", "read already"),
        ("v1/pods", "read already"),
        ("discovery.k8s.io/v1/endpointslices", "read already"),
        ("argoproj.io/rollouts", "lower-case words"),
        ("Argoproj.io/v1alpha1/rollouts", "lower-case domain"),
        (
            "argoproj.io/v1alpha1/rollouts/status",
            "GROUP/VERSION/RESOURCE",
        ),
        ("a/b/c/d", "GROUP/VERSION/RESOURCE"),
        (
            "argoproj.io/v1alpha1/rollouts,argoproj.io/v1/rollouts",
            "one resource",
        ),
    ] {
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
            .args(["master", "--no-docker", "--extra-kinds", flag])
            .args(["--kubernetes-url", "http://127.0.0.1:9", "--port", "0"])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        // A master that started (the flag accepted) is stopped, and the row fails.
        let deadline = Instant::now() + Duration::from_secs(10);
        while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = child.kill();
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{flag}: {stderr}");
        assert!(stderr.contains(says), "{flag}: {stderr}");
    }
}
