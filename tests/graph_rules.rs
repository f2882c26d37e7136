//! The graph builder's rules (contract §3), without any I/O: objects in, graph out.
//! Each test builds a small cluster from JSON the way the APIs send it and checks the
//! exact set of resources and relations.

use std::collections::BTreeSet;
use std::sync::Arc;

use cluster_insight::collect::objects::parse_object;
use cluster_insight::collect::runtime::docker::{parse_container_inspect, parse_image, parse_top};
use cluster_insight::graph::diff::diff;
use cluster_insight::graph::observed::{Collected, KubeObject, NodeContainers, ObservedContainer};
use cluster_insight::graph::update::{update, Kept};
use cluster_insight::graph::{
    build, build_with_basis, BuildOptions, Graph, History, Kind, KubeletName, Resource,
};
use serde_json::json;
use serde_json::value::RawValue;

fn raw(value: serde_json::Value) -> Box<RawValue> {
    RawValue::from_string(value.to_string()).unwrap()
}

fn node(name: &str) -> Arc<KubeObject> {
    parse_object(Kind::NODE, &raw(json!({"kind": "Node", "metadata": {"name": name, "uid": format!("uid-{name}"), "resourceVersion": "1"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": format!("{name}.local")}]}})))
    .unwrap()
    .into()
}

fn pod(
    ns: &str,
    name: &str,
    node: Option<&str>,
    labels: serde_json::Value,
    container_ids: &[&str],
) -> Arc<KubeObject> {
    let statuses: Vec<_> = container_ids
        .iter()
        .map(|id| json!({"name": "c", "containerID": format!("docker://{id}")}))
        .collect();
    let mut spec = json!({"containers": [{"name": "c"}]});
    if let Some(n) = node {
        spec["nodeName"] = json!(n);
    }
    parse_object(Kind::POD, &raw(json!({"metadata": {"namespace": ns, "name": name, "uid": format!("uid-{ns}-{name}"), "labels": labels},
        "spec": spec, "status": {"phase": "Running", "containerStatuses": statuses}})))
    .unwrap()
    .into()
}

fn service(ns: &str, name: &str, selector: Option<serde_json::Value>) -> Arc<KubeObject> {
    let mut spec = json!({"ports": [{"port": 80}]});
    if let Some(s) = selector {
        spec["selector"] = s;
    }
    parse_object(
        Kind::SERVICE,
        &raw(json!({"metadata": {"namespace": ns, "name": name}, "spec": spec})),
    )
    .unwrap()
    .into()
}

fn controller(ns: &str, name: &str, selector: serde_json::Value) -> Arc<KubeObject> {
    parse_object(
        Kind::REPLICATION_CONTROLLER,
        &raw(json!({"metadata": {"namespace": ns, "name": name},
        "spec": {"replicas": 2, "selector": selector}})),
    )
    .unwrap()
    .into()
}

fn container(
    id: &str,
    name: &str,
    labels: serde_json::Value,
    image: &str,
    pids: &[&str],
) -> ObservedContainer {
    let inspect = json!({"Id": id, "Name": format!("/{name}"), "Image": image,
        "State": {"Running": true, "StartedAt": "2026-11-24T12:00:00Z"},
        "Config": {"Image": "busybox:1.36", "Labels": labels, "Env": ["SECRET=s3cr3t"]}});
    let top = json!({"Titles": ["USER", "PID", "COMMAND"],
        "Processes": pids.iter().map(|p| json!(["root", p, "sleep"])).collect::<Vec<_>>()});
    ObservedContainer {
        container: Arc::new(parse_container_inspect(&inspect.to_string(), false).unwrap()),
        processes: parse_top(&top.to_string()).unwrap(),
        processes_omitted: 0,
        stale_since_ms: None,
    }
}

fn image(id: &str, tag: &str) -> Arc<cluster_insight::graph::observed::Image> {
    Arc::new(parse_image(&json!({"Id": id, "RepoTags": [tag]}).to_string()).unwrap())
}

fn hex(c: char) -> String {
    std::iter::repeat_n(c, 64).collect()
}

fn relations(graph: &Graph) -> BTreeSet<String> {
    graph
        .relations
        .iter()
        .map(|r| format!("{} {} -> {}", r.kind.as_str(), r.source, r.target))
        .collect()
}

fn ids(graph: &Graph, kind: Kind) -> BTreeSet<String> {
    graph
        .resources
        .iter()
        .filter(|r| r.kind == kind)
        .map(|r| r.id.to_string())
        .collect()
}

/// The label of resource `id`, if it is in the graph.
fn label_of(graph: &Graph, id: &str) -> Option<String> {
    graph
        .resources
        .iter()
        .find(|r| &*r.id == id)
        .map(|r| r.label.to_string())
}

fn options() -> BuildOptions {
    BuildOptions {
        cluster_name: "test".into(),
    }
}

/// Every relation's two ends are resources, and no relation or resource is listed twice.
fn check_invariants(graph: &Graph) {
    let all: BTreeSet<&str> = graph.resources.iter().map(|r| &*r.id).collect();
    assert_eq!(all.len(), graph.resources.len(), "duplicate resource IDs");
    for r in &graph.relations {
        assert!(all.contains(&*r.source), "dangling source {}", r.source);
        assert!(all.contains(&*r.target), "dangling target {}", r.target);
    }
    assert_eq!(
        relations(graph).len(),
        graph.relations.len(),
        "duplicate relations"
    );
}

/// A cluster with one of everything the rules distinguish.
fn cluster() -> Collected {
    let (a, b, c, d, e) = (hex('a'), hex('b'), hex('c'), hex('d'), hex('e'));
    let img = format!("sha256:{}", hex('1'));
    let missing_img = format!("sha256:{}", hex('2'));
    let mut collected = Collected::default();
    *collected.kube.of_mut(Kind::NODE) = vec![node("n1"), node("n2")];
    *collected.kube.of_mut(Kind::POD) = vec![
        pod(
            "default",
            "web-1",
            Some("n1"),
            json!({"app": "web", "tier": "front"}),
            &[],
        ),
        pod(
            "default",
            "web-2",
            Some("n2"),
            json!({"app": "web", "tier": "front"}),
            &[&b],
        ),
        pod("other", "web-1", Some("n2"), json!({"app": "web"}), &[]),
        pod(
            "default",
            "pending",
            None,
            json!({"app": "web", "tier": "back"}),
            &[],
        ),
        pod("default", "lonely", Some("gone-node"), json!({}), &[]),
    ];
    *collected.kube.of_mut(Kind::SERVICE) = vec![
        service(
            "default",
            "web",
            Some(json!({"app": "web", "tier": "front"})),
        ),
        service("default", "headless", None),
        service("default", "nothing", Some(json!({"app": "nope"}))),
        service("other", "web", Some(json!({"app": "web"}))),
    ];
    *collected.kube.of_mut(Kind::REPLICATION_CONTROLLER) =
        vec![controller("default", "web-rc", json!({"app": "web"}))];
    collected.nodes = vec![
        NodeContainers {
            node_name: "n1".into(),
            containers: vec![
                // By the kubelet's labels.
                container(
                    &a,
                    "k8s_app_web-1_default_uid-default-web-1_0",
                    json!({"io.kubernetes.pod.uid": "uid-default-web-1", "io.kubernetes.container.name": "app"}),
                    &img,
                    &["1", "7"],
                ),
                // Standalone: no pod.
                container(&d, "registry", json!({}), &missing_img, &[]),
            ],
            images: vec![image(&img, "busybox:1.36")],
            from_pod_status: false,
        },
        NodeContainers {
            node_name: "n2".into(),
            containers: vec![
                // By the pod's containerStatuses only.
                container(&b, "some-name", json!({}), &img, &["1"]),
                // By the kubelet name only (namespace `other`).
                container(
                    &c,
                    "k8s_side.abc123_web-1_other_uid-zzz_2",
                    json!({}),
                    &img,
                    &[],
                ),
                // 2015 kubelet name form.
                container(
                    &e,
                    "k8s_side.1234_web-1.other.api_uid-old_5d3f",
                    json!({}),
                    &img,
                    &[],
                ),
            ],
            images: vec![image(&img, "busybox:1.36")],
            from_pod_status: false,
        },
    ];
    collected
}

#[test]
fn every_relation_rule() {
    let (a, b, c, d, e) = (hex('a'), hex('b'), hex('c'), hex('d'), hex('e'));
    let img = format!("sha256:{}", hex('1'));
    let (graph, _) = build(&cluster(), &options(), 1_000, &History::default());
    check_invariants(&graph);
    let expected: BTreeSet<String> = [
        "contains Cluster:test -> Node:n1".to_string(),
        "contains Cluster:test -> Node:n2".into(),
        "runs Node:n1 -> Pod:default/web-1".into(),
        "runs Node:n2 -> Pod:default/web-2".into(),
        "runs Node:n2 -> Pod:other/web-1".into(),
        "contains Cluster:test -> Service:default/web".into(),
        "contains Cluster:test -> Service:default/headless".into(),
        "contains Cluster:test -> Service:default/nothing".into(),
        "contains Cluster:test -> Service:other/web".into(),
        "contains Cluster:test -> ReplicationController:default/web-rc".into(),
        "loadBalances Service:default/web -> Pod:default/web-1".into(),
        "loadBalances Service:default/web -> Pod:default/web-2".into(),
        "loadBalances Service:other/web -> Pod:other/web-1".into(),
        "monitors ReplicationController:default/web-rc -> Pod:default/web-1".into(),
        "monitors ReplicationController:default/web-rc -> Pod:default/web-2".into(),
        "monitors ReplicationController:default/web-rc -> Pod:default/pending".into(),
        format!("contains Pod:default/web-1 -> Container:{a}"),
        format!("contains Pod:default/web-2 -> Container:{b}"),
        format!("contains Pod:other/web-1 -> Container:{c}"),
        format!("contains Pod:other/web-1 -> Container:{e}"),
        format!("runs Node:n1 -> Container:{d}"),
        format!("createdFrom Container:{a} -> Image:{img}"),
        format!("createdFrom Container:{b} -> Image:{img}"),
        format!("createdFrom Container:{c} -> Image:{img}"),
        format!("createdFrom Container:{e} -> Image:{img}"),
        format!("contains Container:{a} -> Process:aaaaaaaaaaaa/1"),
        format!("contains Container:{a} -> Process:aaaaaaaaaaaa/7"),
        format!("contains Container:{b} -> Process:bbbbbbbbbbbb/1"),
    ]
    .into_iter()
    .collect();
    let got = relations(&graph);
    let missing: Vec<_> = expected.difference(&got).collect();
    let extra: Vec<_> = got.difference(&expected).collect();
    assert!(
        missing.is_empty() && extra.is_empty(),
        "missing {missing:#?}\nextra {extra:#?}"
    );

    // Every pod is a resource, scheduled or not, and pods of a node that is gone too.
    assert_eq!(ids(&graph, Kind::POD).len(), 5);
    // One image across both nodes; the image that was not found is not a resource.
    assert_eq!(
        ids(&graph, Kind::IMAGE),
        [format!("Image:{img}")].into_iter().collect()
    );
    assert_eq!(graph.count(Kind::CLUSTER), 1);
    assert_eq!(graph.count(Kind::CONTAINER), 5);
    assert_eq!(graph.count(Kind::PROCESS), 3);
}

#[test]
fn labels_follow_the_spec() {
    let (graph, _) = build(&cluster(), &options(), 1_000, &History::default());
    let label = |id: &str| label_of(&graph, id).unwrap_or_default();
    assert_eq!(label("Node:n1"), "n1.local");
    assert_eq!(label("Pod:other/web-1"), "web-1");
    assert_eq!(
        label(&format!("Container:{}", hex('a'))),
        "app/aaaaaaaaaaaa"
    );
    assert_eq!(
        label(&format!("Container:{}", hex('c'))),
        "side/cccccccccccc"
    );
    assert_eq!(
        label(&format!("Container:{}", hex('d'))),
        "registry/dddddddddddd"
    );
    assert_eq!(label(&format!("Image:sha256:{}", hex('1'))), "111111111111");
    assert_eq!(label("Process:aaaaaaaaaaaa/7"), "7");
    let image = graph
        .resources
        .iter()
        .find(|r| r.kind == Kind::IMAGE)
        .unwrap();
    assert_eq!(image.alternate_label.as_deref(), Some("busybox:1.36"));
    // Resources come grouped by type, in the contract's order.
    let kinds: Vec<Kind> = graph.resources.iter().map(|r| r.kind).collect();
    let mut sorted = kinds.clone();
    sorted.sort();
    assert_eq!(kinds, sorted);
}

#[test]
fn properties_are_the_observed_objects_with_env_redacted() {
    let (graph, _) = build(&cluster(), &options(), 1_000, &History::default());
    for r in &graph.resources {
        let value: serde_json::Value = serde_json::from_str(&r.properties).unwrap();
        assert!(value.is_object(), "{}", r.id);
        assert!(!r.properties.contains("s3cr3t"), "{}", r.id);
    }
    let web = graph
        .resources
        .iter()
        .find(|r| &*r.id == "Pod:default/web-2")
        .unwrap();
    let value: serde_json::Value = serde_json::from_str(&web.properties).unwrap();
    assert_eq!(value["metadata"]["labels"]["tier"], "front");
}

#[test]
fn timestamps_stay_while_nothing_changes() {
    let first = cluster();
    let (g1, h1) = build(&first, &options(), 1_000, &History::default());
    assert!(g1.resources.iter().all(|r| r.timestamp_ms == 1_000));

    // Same objects, but the API server bumped resourceVersion on one node.
    let mut second = cluster();
    second.kube.of_mut(Kind::NODE)[0] = parse_object(Kind::NODE, &raw(json!({"kind": "Node", "metadata": {"name": "n1", "uid": "uid-n1", "resourceVersion": "99"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n1.local"}]}}))).unwrap().into();
    // And a pod really changed: a new label.
    second.kube.of_mut(Kind::POD)[2] = pod(
        "other",
        "web-1",
        Some("n2"),
        json!({"app": "web", "new": "yes"}),
        &[],
    );
    let (g2, h2) = build(&second, &options(), 2_000, &h1);
    let ts = |g: &Graph, id: &str| {
        g.resources
            .iter()
            .find(|r| &*r.id == id)
            .unwrap()
            .timestamp_ms
    };
    assert_eq!(
        ts(&g2, "Node:n1"),
        1_000,
        "resourceVersion alone is no change"
    );
    assert_eq!(ts(&g2, "Pod:other/web-1"), 2_000);
    assert_eq!(ts(&g2, "Pod:default/web-2"), 1_000);
    assert!(
        g2.relations.iter().all(|r| r.timestamp_ms == 1_000),
        "relations kept their time"
    );

    // A relation that disappears and comes back is new again.
    let mut third = cluster();
    third.kube.of_mut(Kind::SERVICE).remove(0);
    let (_, h3) = build(&third, &options(), 3_000, &h2);
    let (g4, _) = build(&cluster(), &options(), 4_000, &h3);
    let lb = g4
        .relations
        .iter()
        .find(|r| &*r.source == "Service:default/web" && &*r.target == "Pod:default/web-1")
        .unwrap();
    assert_eq!(lb.timestamp_ms, 4_000);
}

#[test]
fn an_unread_node_keeps_its_timestamps_for_when_it_answers_again() {
    let (_, h1) = build(&cluster(), &options(), 1_000, &History::default());
    // Node n2's minion does not answer: its containers are missing from this graph...
    let mut failed = cluster();
    failed.nodes.retain(|d| d.node_name != "n2");
    failed.unread_nodes = vec!["n2".to_string()];
    let (g2, h2) = build(&failed, &options(), 2_000, &h1);
    let b = format!("Container:{}", hex('b'));
    assert!(!g2.resources.iter().any(|r| *r.id == *b));
    // ...and back unchanged, they have the timestamps they had.
    let (g3, _) = build(&cluster(), &options(), 3_000, &h2);
    let ts = |id: &str| {
        g3.resources
            .iter()
            .find(|r| &*r.id == id)
            .unwrap()
            .timestamp_ms
    };
    assert_eq!(ts(&b), 1_000);
    let rel = g3.relations.iter().find(|r| *r.target == *b).unwrap();
    assert_eq!(rel.timestamp_ms, 1_000);

    // A container that is simply gone from a node that answered is forgotten at once.
    let mut removed = cluster();
    removed.nodes[1]
        .containers
        .retain(|c| c.container.id != hex('b'));
    let (_, h4) = build(&removed, &options(), 4_000, &h1);
    let (g5, _) = build(&cluster(), &options(), 5_000, &h4);
    assert_eq!(
        g5.resources
            .iter()
            .find(|r| *r.id == *b)
            .unwrap()
            .timestamp_ms,
        5_000
    );
}

#[test]
fn duplicates_and_empty_inputs() {
    let mut c = cluster();
    let dup = c.nodes[0].containers[0].clone();
    c.nodes[1].containers.push(dup);
    c.kube
        .of_mut(Kind::POD)
        .push(pod("default", "web-1", Some("n1"), json!({}), &[]));
    let (graph, _) = build(&c, &options(), 1, &History::default());
    check_invariants(&graph);
    assert_eq!(graph.count(Kind::CONTAINER), 5);
    assert_eq!(graph.count(Kind::POD), 5);

    let (empty, _) = build(&Collected::default(), &options(), 1, &History::default());
    assert_eq!(empty.resources.len(), 1);
    assert!(empty.relations.is_empty());
}

#[test]
fn selectors_matching_nothing_or_absent_select_nothing() {
    let (graph, _) = build(&cluster(), &options(), 1, &History::default());
    for svc in ["Service:default/headless", "Service:default/nothing"] {
        assert!(
            !graph
                .relations
                .iter()
                .any(|r| &*r.source == svc && r.kind.as_str() == "loadBalances"),
            "{svc}"
        );
    }
}

#[test]
fn kubelet_names() {
    for (name, expect) in [
        (
            "k8s_app_web-1_default_0123_0",
            Some(("app", "web-1", "default", "0123")),
        ),
        (
            "/k8s_POD.d8dbe16c_web-1_default_0123_1",
            Some(("POD", "web-1", "default", "0123")),
        ),
        (
            "k8s_redis.2bf1_redis-master.default.api_a1b2_7c3e",
            Some(("redis", "redis-master", "default", "a1b2")),
        ),
        ("k8s_app_web-1", None),
        ("nginx", None),
        ("k8s_app__default_0123_0", None),
    ] {
        let got = KubeletName::parse(name).map(|k| (k.container, k.pod, k.namespace, k.uid));
        assert_eq!(got, expect, "{name}");
    }
}

/// An object of `kind` from its JSON, as the API server lists it.
fn object(kind: Kind, value: serde_json::Value) -> Arc<KubeObject> {
    parse_object(kind, &raw(value))
        .unwrap_or_else(|e| panic!("{kind}: {e}"))
        .into()
}

/// Metadata of a namespaced object in `ns`, owned by the objects of `owner_uids`.
fn meta(ns: &str, name: &str, uid: &str, owner_uids: &[&str]) -> serde_json::Value {
    let owners: Vec<_> = owner_uids
        .iter()
        .map(|u| json!({"apiVersion": "apps/v1", "kind": "Whatever", "name": "x", "uid": u, "controller": true}))
        .collect();
    json!({"namespace": ns, "name": name, "uid": uid, "ownerReferences": owners, "labels": {"app": name},
        "managedFields": [{"manager": "kube-controller-manager", "operation": "Update", "fieldsV1": {"f:spec": {}}}]})
}

/// Today's workloads: every kind of contract §6 with its relations.
fn workloads() -> Collected {
    let mut c = Collected::default();
    let mut set = |kind: Kind, objects: Vec<serde_json::Value>| {
        *c.kube.of_mut(kind) = objects.into_iter().map(|o| object(kind, o)).collect();
    };
    set(
        Kind::NAMESPACE,
        vec![json!({"metadata": {"name": "shop", "uid": "ns-shop"}})],
    );
    set(
        Kind::NODE,
        vec![json!({"metadata": {"name": "n1", "uid": "node-1"}})],
    );
    set(
        Kind::DEPLOYMENT,
        vec![
            json!({"metadata": meta("shop", "web", "d-web", &[]), "spec": {"selector": {"matchLabels": {"app": "web"}}}}),
        ],
    );
    set(
        Kind::REPLICA_SET,
        vec![
            json!({"metadata": meta("shop", "web-5d9", "rs-web", &["d-web"])}),
            // Owned by a Rollout that is not in the graph: no relation, and its namespace
            // holds it.
            json!({"metadata": meta("shop", "canary-77", "rs-canary", &["rollout-uid"])}),
        ],
    );
    set(
        Kind::STATEFUL_SET,
        vec![json!({"metadata": meta("shop", "db", "sts-db", &[])})],
    );
    set(
        Kind::DAEMON_SET,
        vec![json!({"metadata": meta("shop", "agent", "ds-agent", &[])})],
    );
    set(
        Kind::CRON_JOB,
        vec![json!({"metadata": meta("shop", "report", "cj-report", &[])})],
    );
    set(
        Kind::JOB,
        vec![json!({"metadata": meta("shop", "report-29", "job-report", &["cj-report"])})],
    );
    let pod = |name: &str, uid: &str, owner: &str, node: Option<&str>, claim: Option<&str>| {
        let mut spec = json!({"containers": [{"name": "c"}]});
        if let Some(n) = node {
            spec["nodeName"] = json!(n);
        }
        if let Some(c) = claim {
            spec["volumes"] = json!([{"name": "data", "persistentVolumeClaim": {"claimName": c}}, {"name": "tmp", "emptyDir": {}}]);
        }
        json!({"metadata": meta("shop", name, uid, &[owner]), "spec": spec})
    };
    set(
        Kind::POD,
        vec![
            pod("web-5d9-a", "p-web", "rs-web", Some("n1"), None),
            pod("db-0", "p-db", "sts-db", None, Some("data-db-0")),
            pod("agent-x", "p-agent", "ds-agent", Some("n1"), None),
            pod("report-29-q", "p-report", "job-report", Some("n1"), None),
            // Owned by nothing in the graph and run by no node: its namespace holds it.
            pod("stray", "p-stray", "gone", None, None),
        ],
    );
    set(
        Kind::PERSISTENT_VOLUME_CLAIM,
        vec![
            json!({"metadata": meta("shop", "data-db-0", "pvc-db", &[]), "spec": {"volumeName": "pv-1"}}),
        ],
    );
    set(
        Kind::PERSISTENT_VOLUME,
        vec![json!({"metadata": {"name": "pv-1", "uid": "pv-uid"}})],
    );
    set(
        Kind::SERVICE,
        vec![
            // Selects web by label, but its slice lists the db pod: the slice wins.
            json!({"metadata": meta("shop", "front", "svc-front", &[]), "spec": {"selector": {"app": "web-5d9-a"}}}),
            // No selector, manual endpoints.
            json!({"metadata": meta("shop", "legacy", "svc-legacy", &[])}),
            // A selector and no slice: the selector decides.
            json!({"metadata": meta("shop", "agents", "svc-agents", &[]), "spec": {"selector": {"app": "agent-x"}}}),
        ],
    );
    set(
        Kind::ENDPOINT_SLICE,
        vec![
            json!({"metadata": {"namespace": "shop", "name": "front-abc", "labels": {"kubernetes.io/service-name": "front"}},
                "endpoints": [{"addresses": ["10.0.0.9"], "targetRef": {"kind": "Pod", "namespace": "shop", "name": "db-0", "uid": "p-db"}}]}),
            json!({"metadata": {"namespace": "shop", "name": "legacy-1", "labels": {"kubernetes.io/service-name": "legacy"}},
                "endpoints": [{"addresses": ["10.0.0.7"], "targetRef": {"kind": "Pod", "name": "stray"}},
                              {"addresses": ["192.0.2.1"]}]}),
        ],
    );
    set(
        Kind::INGRESS,
        vec![
            json!({"metadata": meta("shop", "www", "ing-www", &[]), "spec": {
            "defaultBackend": {"service": {"name": "legacy", "port": {"number": 80}}},
            "rules": [{"http": {"paths": [{"path": "/", "pathType": "Prefix", "backend": {"service": {"name": "front", "port": {"number": 80}}}},
                                          {"path": "/gone", "pathType": "Prefix", "backend": {"service": {"name": "missing"}}}]}}]}}),
        ],
    );
    set(
        Kind::HORIZONTAL_POD_AUTOSCALER,
        vec![
            json!({"metadata": meta("shop", "web", "hpa-web", &[]), "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": "web"}}}),
        ],
    );
    c
}

#[test]
fn workloads_owners_and_the_relations_of_today() {
    let (graph, _) = build(&workloads(), &options(), 1, &History::default());
    check_invariants(&graph);
    let got = relations(&graph);
    let expected: BTreeSet<String> = [
        "contains Cluster:test -> Namespace:shop",
        "contains Cluster:test -> Node:n1",
        "contains Cluster:test -> PersistentVolume:pv-1",
        "contains Cluster:test -> Service:shop/front",
        "contains Cluster:test -> Service:shop/legacy",
        "contains Cluster:test -> Service:shop/agents",
        "runs Node:n1 -> Pod:shop/web-5d9-a",
        "runs Node:n1 -> Pod:shop/agent-x",
        "runs Node:n1 -> Pod:shop/report-29-q",
        "owns ReplicaSet:shop/web-5d9 -> Pod:shop/web-5d9-a",
        "owns StatefulSet:shop/db -> Pod:shop/db-0",
        "owns DaemonSet:shop/agent -> Pod:shop/agent-x",
        "owns Job:shop/report-29 -> Pod:shop/report-29-q",
        "owns Deployment:shop/web -> ReplicaSet:shop/web-5d9",
        "owns CronJob:shop/report -> Job:shop/report-29",
        "uses Pod:shop/db-0 -> PersistentVolumeClaim:shop/data-db-0",
        "bindsTo PersistentVolumeClaim:shop/data-db-0 -> PersistentVolume:pv-1",
        "loadBalances Service:shop/front -> Pod:shop/db-0",
        "loadBalances Service:shop/legacy -> Pod:shop/stray",
        "loadBalances Service:shop/agents -> Pod:shop/agent-x",
        "routes Ingress:shop/www -> Service:shop/legacy",
        "routes Ingress:shop/www -> Service:shop/front",
        "scales HorizontalPodAutoscaler:shop/web -> Deployment:shop/web",
        // What nothing else in the graph holds, the namespace does.
        "contains Namespace:shop -> Pod:shop/stray",
        "contains Namespace:shop -> ReplicaSet:shop/canary-77",
        "contains Namespace:shop -> Deployment:shop/web",
        "contains Namespace:shop -> StatefulSet:shop/db",
        "contains Namespace:shop -> DaemonSet:shop/agent",
        "contains Namespace:shop -> CronJob:shop/report",
        "contains Namespace:shop -> Service:shop/front",
        "contains Namespace:shop -> Service:shop/legacy",
        "contains Namespace:shop -> Service:shop/agents",
        "contains Namespace:shop -> PersistentVolumeClaim:shop/data-db-0",
        "contains Namespace:shop -> Ingress:shop/www",
        "contains Namespace:shop -> HorizontalPodAutoscaler:shop/web",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    assert_eq!(
        got.difference(&expected).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "unexpected"
    );
    assert_eq!(
        expected.difference(&got).collect::<Vec<_>>(),
        Vec::<&String>::new(),
        "missing"
    );
    // EndpointSlices are read, not shown.
    assert!(graph
        .resources
        .iter()
        .all(|r| !r.id.starts_with("EndpointSlice")));
    // The API server's bookkeeping is not served.
    for r in &graph.resources {
        assert!(!r.properties.contains("managedFields"), "{}", r.id);
        serde_json::from_str::<serde_json::Value>(&r.properties).unwrap();
    }
    assert_eq!(label_of(&graph, "Namespace:shop").as_deref(), Some("shop"));
    assert_eq!(
        label_of(&graph, "PersistentVolume:pv-1").as_deref(),
        Some("pv-1")
    );
}

/// `cluster()` with changes in place only: a pod's labels (no selector tells the old from
/// the new), a node's resourceVersion (a volatile field), a service's text, and a
/// container's inspect (it stopped); the objects nothing changed are the same `Arc`s.
fn changed_in_place(c: &Collected) -> Collected {
    let mut next = with_pod(
        c,
        pod(
            "default",
            "web-1",
            Some("n1"),
            json!({"app": "web", "tier": "front", "revision": "2"}),
            &[],
        ),
    );
    let at = |c: &Collected, kind: Kind, name: &str| {
        c.kube
            .of(kind)
            .iter()
            .position(|o| o.meta.name == name)
            .unwrap()
    };
    let (n2, headless) = (
        at(&next, Kind::NODE, "n2"),
        at(&next, Kind::SERVICE, "headless"),
    );
    next.kube.of_mut(Kind::NODE)[n2] = parse_object(Kind::NODE, &raw(json!({"kind": "Node", "metadata": {"name": "n2", "uid": "uid-n2", "resourceVersion": "99"},
        "status": {"addresses": [{"type": "InternalIP", "address": "10.0.0.1"}, {"type": "Hostname", "address": "n2.local"}]}}))).unwrap().into();
    next.kube.of_mut(Kind::SERVICE)[headless] = parse_object(
        Kind::SERVICE,
        &raw(
            json!({"metadata": {"namespace": "default", "name": "headless",
            "annotations": {"note": "changed"}}, "spec": {"ports": [{"port": 80}]}}),
        ),
    )
    .unwrap()
    .into();
    let stopped = {
        let old = &next.nodes[1].containers[0].container;
        let inspect = json!({"Id": old.id, "Name": "/some-name", "Image": format!("sha256:{}", hex('1')),
            "State": {"Running": false, "StartedAt": "2026-11-24T12:00:00Z", "FinishedAt": "2026-11-24T13:00:00Z"},
            "Config": {"Image": "busybox:1.36", "Labels": {}}});
        parse_container_inspect(&inspect.to_string(), false).unwrap()
    };
    next.nodes[1].containers[0] = ObservedContainer {
        container: Arc::new(stopped),
        processes: Vec::new(),
        processes_omitted: 0,
        stale_since_ms: None,
    };
    next.nodes[1].containers[0].processes.clear();
    next
}

/// Makes each of `steps` from the graph before it (`update`, or built whole where it says
/// no) and holds every graph so made, and its differences from the one before, to the
/// graph built whole from the same input and history; says which steps were made from the
/// last graph.
fn made_from_the_last(first: Collected, steps: Vec<Collected>) -> Vec<bool> {
    let (mut graph, mut history, mut basis) =
        build_with_basis(first, &options(), 1_000, &History::default());
    let mut whole_history = history.clone();
    let mut made = Vec::new();
    for (n, next) in steps.into_iter().enumerate() {
        let now = 2_000 + 1_000 * n as i64;
        let (whole, next_whole_history) = build(&next, &options(), now, &whole_history);
        match update(&graph, &mut basis, &mut history, next.clone(), now) {
            Ok(updated) => {
                let what = format!("step {n}");
                assert_eq!(updated.graph.resources, whole.resources, "{what}");
                assert_eq!(updated.graph.relations, whole.relations, "{what}");
                assert_eq!(updated.graph.timestamp_ms, now);
                let expected = diff(&graph, &whole);
                assert_eq!(updated.diff.added, expected.added, "{what}");
                assert_eq!(updated.diff.changed, expected.changed, "{what}");
                assert_eq!(updated.diff.removed, expected.removed, "{what}");
                assert_eq!(
                    updated.diff.relations_added, expected.relations_added,
                    "{what}"
                );
                assert_eq!(
                    updated.diff.relations_changed, expected.relations_changed,
                    "{what}"
                );
                assert_eq!(
                    updated.diff.relations_removed, expected.relations_removed,
                    "{what}"
                );
                match &updated.kept {
                    Kept::AllBut(positions) => {
                        assert!(expected.added.is_empty() && expected.removed.is_empty());
                        let at: Vec<&Resource> = positions
                            .iter()
                            .map(|&i| &updated.graph.resources[i])
                            .collect();
                        let changed: Vec<&Resource> =
                            expected.changed.iter().map(|(_, r)| r).collect();
                        assert_eq!(at, changed, "{what}");
                    }
                    Kept::Moved {
                        resources,
                        relations,
                    } => {
                        for (i, from) in resources.iter().enumerate() {
                            if let Some(from) = from {
                                assert_eq!(graph.resources[*from], updated.graph.resources[i]);
                            }
                        }
                        for (i, from) in relations.iter().enumerate() {
                            if let Some(from) = from {
                                assert_eq!(graph.relations[*from], updated.graph.relations[i]);
                            }
                        }
                    }
                }
                graph = updated.graph;
                made.push(true);
            }
            Err(given_back) => {
                (graph, history, basis) =
                    build_with_basis(given_back.collected, &options(), now, &history);
                assert_eq!(graph.resources, whole.resources);
                made.push(false);
            }
        }
        whole_history = next_whole_history;
    }
    made
}

/// `c` with every list in the order watches keep: by namespace and name.
fn in_order(mut c: Collected) -> Collected {
    for kind in Kind::listed() {
        c.kube.of_mut(kind).sort_by(|a, b| {
            (&a.meta.namespace, &a.meta.name).cmp(&(&b.meta.namespace, &b.meta.name))
        });
    }
    c
}

/// `c` with `pod` in place of the pod of its namespace and name, or added.
fn with_pod(c: &Collected, pod: Arc<KubeObject>) -> Collected {
    let mut next = c.clone();
    let pods = next.kube.of_mut(Kind::POD);
    pods.retain(|p| (&p.meta.namespace, &p.meta.name) != (&pod.meta.namespace, &pod.meta.name));
    pods.push(pod);
    in_order(next)
}

#[test]
fn a_graph_made_from_the_last_is_the_graph_built_whole() {
    let mut first = in_order(cluster());
    // The container that changes has no processes before either: a change of processes is
    // not one in place.
    first.nodes[1].containers[0].processes.clear();
    let next = changed_in_place(&first);
    let again = changed_in_place(&next);
    assert_eq!(made_from_the_last(first, vec![next, again]), [true, true]);
}

#[test]
fn what_a_rule_reads_is_made_again_and_the_rest_kept() {
    let first = in_order(cluster());
    let front = || json!({"app": "web", "tier": "front"});
    // One after the other, each from the last.
    let mut steps: Vec<Collected> = Vec::new();
    let last = |steps: &Vec<Collected>| steps.last().unwrap_or(&first).clone();
    // A label a selector reads: the pod leaves `Service:default/web` and `web-rc`.
    steps.push(with_pod(
        &first,
        pod("default", "web-1", Some("n1"), json!({"app": "db"}), &[]),
    ));
    // The pod moves to another node (its container on n1 then belongs to no pod).
    steps.push(with_pod(
        &last(&steps),
        pod("default", "web-1", Some("n2"), front(), &[]),
    ));
    // A pod comes, and one goes.
    let mut next = with_pod(
        &last(&steps),
        pod("default", "web-15", Some("n1"), front(), &[]),
    );
    next.kube
        .of_mut(Kind::POD)
        .retain(|p| p.meta.name != "web-2");
    steps.push(next);
    // A Service goes.
    let mut next = last(&steps);
    next.kube
        .of_mut(Kind::SERVICE)
        .retain(|s| s.meta.name != "nothing");
    steps.push(next);
    // Nothing at all.
    steps.push(last(&steps));
    let made = made_from_the_last(first.clone(), steps);
    assert_eq!(made, [true; 5], "every step made from the last");

    // What is not followed is built whole, and what follows is made from that again.
    let change = |how: &dyn Fn(&mut Collected)| {
        let mut next = first.clone();
        how(&mut next);
        next
    };
    let refused = [
        change(&|c| {
            c.nodes[0].containers[0].processes.pop();
        }),
        change(&|c| c.unread_nodes.push("n2".into())),
        change(&|c| c.kube.of_mut(Kind::NODE).push(node("n3"))),
        change(&|c| c.kube.of_mut(Kind::POD).swap(0, 1)),
    ];
    for next in refused {
        let back = with_pod(
            &in_order(next.clone()),
            pod("default", "other", Some("n1"), json!({}), &[]),
        );
        let made = made_from_the_last(first.clone(), vec![next, back]);
        assert!(!made[0], "refused");
    }
}

/// Both nodes told by their pods' statuses (no processes), n2 listing n1's first container
/// too, which the graph shows as n1's; then n1 no longer lists it, and n2 shows it.
fn a_container_moving_between_nodes() -> (Collected, Collected) {
    let mut first = in_order(cluster());
    for node in &mut first.nodes {
        node.from_pod_status = true;
        for c in &mut node.containers {
            c.processes.clear();
        }
    }
    let shared = first.nodes[0].containers[0].clone();
    first.nodes[1].containers.push(shared);
    let mut next = first.clone();
    next.nodes[0].containers.remove(0);
    (first, next)
}

#[test]
fn a_container_another_node_showed_first_is_built_whole_when_it_moves() {
    let (first, next) = a_container_moving_between_nodes();
    // And then nothing changes: made from the last again.
    let again = next.clone();
    assert_eq!(made_from_the_last(first, vec![next, again]), [false, true]);
}

#[test]
fn owners_are_found_by_uid_as_they_come_go_and_take_another_uid() {
    let first = in_order(workloads());
    let replica_set = |uid: &str| {
        object(
            Kind::REPLICA_SET,
            json!({"metadata": meta("shop", "web-5d9", uid, &["d-web"])}),
        )
    };
    let with = |c: &Collected, kind: Kind, object: Option<Arc<KubeObject>>, name: &str| {
        let mut next = c.clone();
        let list = next.kube.of_mut(kind);
        list.retain(|o| o.meta.name != name);
        list.extend(object);
        in_order(next)
    };
    let mut steps: Vec<Collected> = Vec::new();
    let last = |steps: &Vec<Collected>| steps.last().unwrap_or(&first).clone();
    // The ReplicaSet goes: its pod is its namespace's (and the node's).
    steps.push(with(&first, Kind::REPLICA_SET, None, "web-5d9"));
    // It comes back, of the same uid: it owns the pod again.
    let back = with(
        &last(&steps),
        Kind::REPLICA_SET,
        Some(replica_set("rs-web")),
        "web-5d9",
    );
    steps.push(back);
    // It is made again under the same name with another uid: it owns nothing.
    let other = with(
        &last(&steps),
        Kind::REPLICA_SET,
        Some(replica_set("rs-other")),
        "web-5d9",
    );
    steps.push(other);
    // A pod that claims to be owned by the new uid comes.
    let owned = object(
        Kind::POD,
        json!({"metadata": meta("shop", "web-5d9-b", "p-web-b", &["rs-other"]), "spec": {"nodeName": "n1"}}),
    );
    steps.push(with(&last(&steps), Kind::POD, Some(owned), "web-5d9-b"));
    // The Deployment changes in place, then goes: the ReplicaSet is its namespace's.
    let deployment = |note: &str| {
        object(
            Kind::DEPLOYMENT,
            json!({"metadata": {"namespace": "shop", "name": "web", "uid": "d-web", "annotations": {"note": note}},
                "spec": {"selector": {"matchLabels": {"app": "web"}}}}),
        )
    };
    steps.push(with(
        &last(&steps),
        Kind::DEPLOYMENT,
        Some(deployment("a")),
        "web",
    ));
    steps.push(with(&last(&steps), Kind::DEPLOYMENT, None, "web"));
    let made = made_from_the_last(first.clone(), steps.clone());
    assert_eq!(made, [true; 6], "every step made from the last");

    // An object that takes a uid another holds: only a whole build tells which one the
    // rules find, until one of them goes.
    let taken = object(
        Kind::POD,
        json!({"metadata": meta("shop", "impostor", "rs-other", &[]), "spec": {"nodeName": "n1"}}),
    );
    let end = last(&steps);
    let shared = with(&end, Kind::POD, Some(taken), "impostor");
    let still = with(&shared, Kind::POD, None, "stray");
    let gone = with(&still, Kind::POD, None, "impostor");
    let calm = with(&gone, Kind::POD, None, "db-0");
    assert_eq!(
        made_from_the_last(end, vec![shared, still, gone, calm]),
        [false, false, false, true]
    );
}

#[test]
fn a_basis_a_splice_gave_up_on_makes_no_graph() {
    let (first, next) = a_container_moving_between_nodes();
    let (graph, mut history, mut basis) =
        build_with_basis(first.clone(), &options(), 1_000, &History::default());
    let given_back = update(&graph, &mut basis, &mut history, next, 2_000)
        .expect_err("a container that moves between nodes is built whole");
    assert!(given_back.why.contains("container"), "{}", given_back.why);
    // The same basis, asked again for what it could have followed before: refused.
    let again =
        update(&graph, &mut basis, &mut history, first, 3_000).expect_err("the basis is spent");
    assert_eq!(again.why, "the basis is another graph's");
}

#[test]
fn many_selectors_find_what_few_do() {
    // More selectors than are answered by reading a namespace's pods: the whole build
    // indexes the pods' labels, a splice reads them.
    let mut first = in_order(cluster());
    let services = first.kube.of_mut(Kind::SERVICE);
    for i in 0..24 {
        let tier = ["front", "back", "edge"][i % 3];
        services.push(service(
            "default",
            &format!("svc-{i:02}"),
            Some(json!({"app": "web", "tier": tier})),
        ));
    }
    let first = in_order(first);
    let front = with_pod(
        &first,
        pod(
            "default",
            "web-1",
            Some("n1"),
            json!({"app": "web", "tier": "edge"}),
            &[],
        ),
    );
    let back = with_pod(
        &front,
        pod(
            "default",
            "web-9",
            Some("n2"),
            json!({"app": "web", "tier": "back"}),
            &[],
        ),
    );
    assert_eq!(made_from_the_last(first, vec![front, back]), [true, true]);
}
