//! The real `cluster-insight` binary in master mode against the cluster simulator, over
//! HTTP on loopback: counts, endpoints, status codes, headers, caching and failures.

use crate::support::client;
use crate::support::master;

use std::io::Read;
use std::net::TcpListener;
use std::process::{Command, Stdio};

use client::{get, request, Reply};
use cluster_insight_sim::{Fault, SimSpec, Simulator};
use master::{counts, MasterProcess};
use serde_json::Value;

#[test]
fn the_graph_has_exactly_the_simulated_cluster() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    assert_eq!(graph["success"], true);
    let (resources, relations) = counts(&graph);
    assert_eq!(resources, sim.expected().resources);
    assert_eq!(relations, sim.expected().relations);

    // Every relation's ends exist; every ID is unique.
    let ids: std::collections::HashSet<&str> = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids.len(), graph["resources"].as_array().unwrap().len());
    for r in graph["relations"].as_array().unwrap() {
        assert!(
            ids.contains(r["source"].as_str().unwrap())
                && ids.contains(r["target"].as_str().unwrap()),
            "{r}"
        );
        assert_eq!(r["annotations"]["label"], r["type"]);
    }
    // Every resource carries its annotations, and env values are redacted.
    for r in graph["resources"].as_array().unwrap() {
        assert!(r["annotations"]["label"].is_string(), "{r}");
        assert!(r["annotations"]["createdBy"]
            .as_str()
            .unwrap()
            .starts_with("cluster-insight "));
        assert!(r["timestamp"].as_str().unwrap().ends_with('Z'));
        if r["type"] == "Container" {
            for e in r["properties"]["Config"]["Env"]
                .as_array()
                .into_iter()
                .flatten()
            {
                assert!(
                    e.as_str().unwrap().ends_with("=<redacted>")
                        || !e.as_str().unwrap().contains('='),
                    "{e}"
                );
            }
        }
        if r["type"] == "Image" {
            assert!(r["annotations"]["alternateLabel"].is_string(), "{r}");
        }
    }
}

#[test]
fn endpoints_status_codes_and_headers() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--cluster-name", "sim"]);
    master.wait_for_refreshes(1);
    let addr = master.addr;

    let home = get(addr, "/api");
    assert_eq!(home.status, 200);
    assert!(home
        .header("Content-Type")
        .unwrap()
        .starts_with("text/html"));
    for link in [
        "/cluster",
        "/cluster/resources",
        "/debug",
        "/version",
        "/healthz",
        "/status",
    ] {
        assert!(home.text().contains(&format!("href=\"{link}\"")), "{link}");
    }
    // Every type and every relation of the graph is on the page, with an example that is
    // in the graph: the first resource of each type, a real relation of each relation type.
    let page = home.text();
    let graph = get(addr, "/cluster").json();
    let mut first_of_type = std::collections::BTreeMap::new();
    for r in graph["resources"].as_array().unwrap() {
        first_of_type
            .entry(r["type"].as_str().unwrap().to_string())
            .or_insert_with(|| r["id"].as_str().unwrap().to_string());
    }
    assert!(first_of_type.len() >= 18, "{first_of_type:?}");
    for (kind, id) in first_of_type.iter().filter(|(k, _)| *k != "Cluster") {
        assert!(page.contains(&format!("<td>{kind}</td>")), "{kind}");
        assert!(page.contains(&format!("<code>{id}</code>")), "{kind}: {id}");
    }
    let mut shown = std::collections::BTreeSet::new();
    for r in graph["relations"].as_array().unwrap() {
        let example = format!(
            "<code>{}</code> → <code>{}</code>",
            r["source"].as_str().unwrap(),
            r["target"].as_str().unwrap()
        );
        if page.contains(&example) {
            shown.insert(r["type"].as_str().unwrap().to_string());
        }
    }
    let types: std::collections::BTreeSet<String> = graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["type"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(shown, types, "each relation type has an example");
    assert_eq!(types.len(), 10, "{types:?}");

    for path in [
        "/healthz",
        "/version",
        "/status",
        "/cluster",
        "/cluster/resources",
    ] {
        let r = get(addr, path);
        assert_eq!(r.status, 200, "{path}");
        assert_eq!(r.header("Content-Type"), Some("application/json"), "{path}");
        assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"), "{path}");
        assert_eq!(r.json()["success"], true, "{path}");
    }
    assert_eq!(get(addr, "/healthz").json()["health"], "OK");
    assert!(get(addr, "/version").json()["version"]
        .as_str()
        .unwrap()
        .starts_with("cluster-insight "));
    let resources = get(addr, "/cluster/resources").json();
    assert!(resources.get("relations").is_none());
    assert!(resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == "Cluster:sim"));

    // Every type, by name in any case and by alias, gives exactly that type's resources.
    let expected = &sim.expected().resources;
    for (names, kind) in [
        (&["Node", "node", "nodes"][..], "Node"),
        (&["Pod", "POD", "pods"][..], "Pod"),
        (&["Service", "services"][..], "Service"),
        (
            &[
                "ReplicationController",
                "rcontrollers",
                "replicationcontrollers",
            ][..],
            "ReplicationController",
        ),
        (&["Container", "containers"][..], "Container"),
        (&["Image", "images"][..], "Image"),
        (&["Process", "processes"][..], "Process"),
    ] {
        for name in names {
            let body = get(addr, &format!("/cluster/resources/{name}")).json();
            let list = body["resources"].as_array().unwrap();
            assert_eq!(list.len(), expected[kind], "{name}");
            assert!(list.iter().all(|r| r["type"] == kind), "{name}");
        }
    }

    let debug = get(addr, "/debug");
    assert_eq!(debug.status, 200);
    assert!(debug
        .header("Content-Type")
        .unwrap()
        .starts_with("text/vnd.graphviz"));
    assert!(debug.text().starts_with("digraph"));
    assert!(debug.text().contains("label=\"Cluster sim\""));

    let unknown = get(addr, "/cluster/resources/widgets");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["success"], false);
    assert!(unknown.json()["error_message"]
        .as_str()
        .unwrap()
        .contains("rcontrollers"));
    assert_eq!(get(addr, "/no/such/thing").status, 404);
    for method in ["POST", "PUT", "DELETE", "PATCH", "OPTIONS"] {
        let r = request(addr, method, "/cluster", &[("Content-Length", "0")]);
        assert_eq!(r.status, 405, "{method}");
        assert_eq!(r.header("Allow"), Some("GET, HEAD"));
        assert_eq!(r.json()["success"], false);
    }
    // Errors the server finds before any handler runs have the same form.
    let mut raw = std::net::TcpStream::connect(addr).unwrap();
    std::io::Write::write_all(&mut raw, b"GARBAGE\r\n\r\n").unwrap();
    let mut text = String::new();
    std::io::Read::read_to_string(&mut raw, &mut text).unwrap();
    assert!(text.starts_with("HTTP/1.1 400"), "{text}");
    assert!(text.contains("Access-Control-Allow-Origin: *"), "{text}");
    let body: Value = serde_json::from_str(text.split("\r\n\r\n").nth(1).unwrap()).unwrap();
    assert_eq!(body["success"], false);
    assert!(body["timestamp"].is_string() && body["error_message"].is_string());

    let head = request(addr, "HEAD", "/cluster", &[]);
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    let status = get(addr, "/status").json();
    assert_eq!(status["sources"]["kubernetes"]["status"], "OK");
    assert_eq!(
        status["sources"]["nodes"].as_object().unwrap().len(),
        sim.node_names().len()
    );
    assert_eq!(status["counts"]["resources"]["Pod"], expected["Pod"]);
}

#[test]
fn etag_304_and_gzip() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    // A long interval: both requests see the same snapshot.
    let url = sim.kube_url();
    let port = sim.docker_port().to_string();
    let master = MasterProcess::start(&[
        "--kubernetes-url",
        &url,
        "--docker-port",
        &port,
        "--refresh-interval",
        "3600",
    ]);
    master.wait_for_refreshes(1);
    let addr = master.addr;

    let plain = get(addr, "/cluster");
    let etag = plain.header("ETag").expect("an ETag").to_string();
    assert_eq!(plain.header("Vary"), Some("Accept-Encoding"));
    let again = request(addr, "GET", "/cluster", &[("If-None-Match", &etag)]);
    assert_eq!(again.status, 304);
    assert!(again.body.is_empty());
    assert_eq!(again.header("ETag"), Some(etag.as_str()));
    let other = request(
        addr,
        "GET",
        "/cluster",
        &[("If-None-Match", "\"something-else\"")],
    );
    assert_eq!(other.status, 200);

    let zipped = request(
        addr,
        "GET",
        "/cluster",
        &[("Accept-Encoding", "gzip, deflate")],
    );
    assert_eq!(zipped.status, 200);
    assert_eq!(zipped.header("Content-Encoding"), Some("gzip"));
    assert_ne!(
        zipped.header("ETag"),
        Some(etag.as_str()),
        "each encoding has its own tag"
    );
    assert!(
        zipped.body.len() * 3 < plain.body.len(),
        "{} vs {}",
        zipped.body.len(),
        plain.body.len()
    );
    let mut unzipped = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut unzipped)
        .unwrap();
    assert_eq!(unzipped, plain.body);
    let refused = request(addr, "GET", "/cluster", &[("Accept-Encoding", "gzip;q=0")]);
    assert_eq!(refused.header("Content-Encoding"), None);
}

#[test]
fn no_snapshot_yet_means_503() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    sim.faults().set_kube(Fault::Hang);
    let master = MasterProcess::against(&sim, &[]);
    for path in [
        "/cluster",
        "/cluster/resources",
        "/cluster/resources/pods",
        "/debug",
    ] {
        let r = get(master.addr, path);
        assert_eq!(r.status, 503, "{path}");
        assert!(r.header("Retry-After").is_some());
        assert_eq!(r.json()["success"], false);
    }
    assert_eq!(get(master.addr, "/healthz").status, 200);
    let ready = get(master.addr, "/readyz");
    assert_eq!(ready.status, 503, "not ready without a snapshot");
    assert!(ready.json()["error_message"]
        .as_str()
        .unwrap()
        .contains("snapshot"));
    sim.faults().clear();
}

#[test]
fn a_master_that_never_listed_the_api_serves_no_graph() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    sim.faults().set_kube(Fault::Status(500));
    let master = MasterProcess::against(&sim, &["--refresh-interval", "0.3"]);
    let status = master.wait_for_attempts(2);
    assert_eq!(
        status["sources"]["kubernetes"]["status"], "ERROR",
        "{status}"
    );
    assert_eq!(status["snapshot"], Value::Null, "{status}");
    // Not a graph of the Cluster alone called a success: no graph, and why.
    let reply = get(master.addr, "/cluster");
    assert_eq!(reply.status, 503, "{}", reply.text());
    assert!(reply.json()["error_message"]
        .as_str()
        .unwrap()
        .contains("no Kubernetes list has succeeded"));
    assert_eq!(get(master.addr, "/readyz").status, 503);
    // Once it answers, the graph is served.
    sim.faults().clear();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get(master.addr, "/cluster").status != 200 {
        assert!(std::time::Instant::now() < deadline, "never served");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn ready_while_the_kubernetes_api_is_listed() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master =
        MasterProcess::against(&sim, &["--refresh-interval", "0.3", "--kube-timeout", "1"]);
    master.wait_for_refreshes(1);
    assert_eq!(get(master.addr, "/readyz").status, 200);
    // The API server stops answering: after three intervals of failed lists, not ready,
    // while the last good graph is still served and the process is alive.
    sim.faults().set_kube(Fault::Status(500));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let reply = loop {
        let reply = get(master.addr, "/readyz");
        if reply.status == 503 || std::time::Instant::now() > deadline {
            break reply;
        }
        std::thread::sleep(std::time::Duration::from_millis(100));
    };
    assert_eq!(reply.status, 503);
    assert!(
        reply.json()["error_message"]
            .as_str()
            .unwrap()
            .contains("no Kubernetes list has succeeded"),
        "{}",
        reply.text()
    );
    assert_eq!(get(master.addr, "/cluster").status, 200);
    assert_eq!(get(master.addr, "/healthz").status, 200);
    sim.faults().clear();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while get(master.addr, "/readyz").status != 200 {
        assert!(std::time::Instant::now() < deadline, "ready again");
        std::thread::sleep(std::time::Duration::from_millis(100));
    }
}

#[test]
fn a_steady_cluster_is_served_from_the_caches() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    master.wait_for_refreshes(1);
    let before = sim.request_counts();
    let status = master.wait_for_refreshes(before.docker_list / sim.node_names().len() as u64 + 3);
    let calls = &status["refresh"]["calls"];
    assert_eq!(calls["dockerInspect"], 0, "{status}");
    assert_eq!(calls["dockerImage"], 0, "{status}");
    assert_eq!(calls["dockerList"], sim.node_names().len());
    let after = sim.request_counts();
    assert!(
        after.docker_inspect - before.docker_inspect
            <= sim.expected().resources["Container"] as u64
    );

    // A restarted container is inspected again: the old one is gone, the new one is there
    // with its own start time, and nothing else was inspected.
    let mut sim = sim;
    let old_id = sim.container_ids(0)[0].clone();
    let inspects_before = sim.request_counts().docker_inspect;
    let new_id = sim.restart_container(0, 0).expect("a container to restart");
    let refreshes = status["refresh"]["count"].as_u64().unwrap();
    let status = master.wait_for_refreshes(refreshes + 2);
    assert_eq!(status["refresh"]["calls"]["dockerInspect"], 0, "{status}");
    assert_eq!(
        sim.request_counts().docker_inspect,
        inspects_before + 1,
        "only the new container was inspected"
    );
    let graph = get(master.addr, "/cluster").json();
    let ids: Vec<&str> = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["id"].as_str().unwrap())
        .collect();
    assert!(!ids.contains(&format!("Container:{old_id}").as_str()));
    assert!(ids.contains(&format!("Container:{new_id}").as_str()));
    let (resources, relations) = counts(&graph);
    assert_eq!(resources, sim.expected().resources);
    assert_eq!(relations, sim.expected().relations);
    let started = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["id"] == format!("Container:{new_id}"))
        .map(|r| r["properties"]["State"]["StartedAt"].clone())
        .unwrap();
    assert!(started.is_string());
}

#[test]
fn a_failed_node_is_reported_and_the_rest_survives() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    let first = master.wait_for_refreshes(1);
    let all_containers = sim.expected().resources["Container"];
    let refreshes = first["refresh"]["count"].as_u64().unwrap();

    sim.faults().set_node(0, Fault::Refuse);
    let status = master.wait_for_refreshes(refreshes + 2);
    let node0 = &sim.node_names()[0];
    let nodes = &status["sources"]["nodes"];
    assert_eq!(nodes[node0]["status"], "ERROR", "{status}");
    assert!(
        nodes[node0]["error"].as_str().unwrap().contains("connect"),
        "{status}"
    );
    assert_eq!(status["sources"]["nodesFailed"], 1);
    let graph = get(master.addr, "/cluster").json();
    let (resources, _) = counts(&graph);
    let left = resources.get("Container").copied().unwrap_or(0);
    assert!(
        left < all_containers && left > 0,
        "{left} of {all_containers}"
    );
    assert_eq!(
        resources["Pod"],
        sim.expected().resources["Pod"],
        "Kubernetes data stays whole"
    );

    sim.faults().clear();
    let status = master.wait_for_refreshes(status["refresh"]["count"].as_u64().unwrap() + 2);
    assert_eq!(status["sources"]["nodesFailed"], 0);
    let (resources, relations) = counts(&get(master.addr, "/cluster").json());
    assert_eq!(resources, sim.expected().resources);
    assert_eq!(relations, sim.expected().relations);
    assert!(
        master.log_text().contains(node0.as_str()),
        "the failure was logged"
    );
}

#[test]
fn a_cluster_of_mixed_runtimes_is_one_graph_read_one_call_per_node() {
    // Node 3 runs containerd (its agent serves only /node); nodes 1 and 2 run Docker, their
    // agents old (Docker paths only) in the first run and current (/node) in the second.
    for node_documents in [false, true] {
        let spec = SimSpec {
            containerd_nodes: 1,
            node_documents,
            ..SimSpec::default()
        };
        let sim = Simulator::start(spec).unwrap();
        let master = MasterProcess::against(&sim, &[]);
        let first = master.wait_for_refreshes(2);
        let graph = get(master.addr, "/cluster").json();
        master::graph_consistency(&graph).unwrap();
        let (resources, relations) = counts(&graph);
        assert_eq!(
            resources,
            sim.expected().resources,
            "documents: {node_documents}"
        );
        assert_eq!(
            relations,
            sim.expected().relations,
            "documents: {node_documents}"
        );
        // The containerd node's containers are CRI statuses; its sandboxes are its pods'.
        let node = &sim.node_names()[2];
        let on_node: Vec<&Value> = graph["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|r| r["type"] == "Container" && r["properties"]["status"]["id"].is_string())
            .collect();
        assert!(!on_node.is_empty(), "{node} shows CRI containers");
        assert!(on_node.iter().any(|r| r["annotations"]["label"]
            .as_str()
            .unwrap()
            .starts_with("POD/")));
        assert!(
            !graph.to_string().contains("DB_PASSWORD=pw-"),
            "environment values are redacted"
        );

        // A steady refresh: one /node per node that serves it, Docker calls for the others.
        let status = master.wait_for_refreshes(first["refresh"]["count"].as_u64().unwrap() + 1);
        let calls = &status["refresh"]["calls"];
        let nodes = sim.node_names().len() as u64;
        assert_eq!(
            calls["agentNode"],
            if node_documents { nodes } else { 1 },
            "{status}"
        );
        if node_documents {
            assert_eq!(calls["dockerList"], 0, "{status}");
        } else {
            assert_eq!(calls["dockerList"], nodes - 1, "{status}");
        }
        assert_eq!(status["sources"]["nodesFailed"], 0, "{status}");
        // What each agent says it reads.
        let runtime = &status["sources"]["nodes"][node]["runtime"];
        assert!(
            runtime
                .as_str()
                .unwrap_or_default()
                .starts_with("containerd 1.7"),
            "{status}"
        );
    }
}

#[test]
fn nodes_without_agents_show_their_pods_containers_from_pod_status() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--no-agents"]);
    master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    master::graph_consistency(&graph).unwrap();
    let resources: std::collections::HashMap<&str, &Value> = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["id"].as_str().unwrap(), r))
        .collect();
    let relations: std::collections::HashSet<(&str, &str, &str)> = graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["type"].as_str().unwrap(),
                r["source"].as_str().unwrap(),
                r["target"].as_str().unwrap(),
            )
        })
        .collect();
    // The truth is the pods themselves, as the graph serves them.
    let mut expected_containers = 0;
    for pod in graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["type"] == "Pod")
    {
        let pod_id = pod["id"].as_str().unwrap();
        let statuses = pod["properties"]["status"]["containerStatuses"].as_array();
        for status in statuses.into_iter().flatten() {
            let Some(runtime_id) = status["containerID"].as_str() else {
                continue;
            };
            expected_containers += 1;
            let id = runtime_id.split_once("://").unwrap().1;
            let container_id = format!("Container:{id}");
            let container = resources
                .get(container_id.as_str())
                .unwrap_or_else(|| panic!("{container_id} of {pod_id} is missing"));
            assert_eq!(container["annotations"]["source"], "kubernetes");
            assert_eq!(container["properties"], *status, "its pod's status entry");
            assert_eq!(
                container["annotations"]["label"],
                format!("{}/{}", status["name"].as_str().unwrap(), &id[..12])
            );
            assert!(relations.contains(&("contains", pod_id, container_id.as_str())));
            let image_id = status["imageID"].as_str().unwrap();
            let image_id = image_id.split_once("://").map_or(image_id, |(_, i)| i);
            let image = format!("Image:{image_id}");
            assert!(
                relations.contains(&("createdFrom", container_id.as_str(), image.as_str())),
                "{container_id} createdFrom {image}"
            );
            assert_eq!(
                resources[image.as_str()]["annotations"]["source"],
                "kubernetes"
            );
            assert_eq!(
                resources[image.as_str()]["annotations"]["alternateLabel"],
                status["image"]
            );
        }
    }
    let (counts, _) = counts(&graph);
    assert!(expected_containers > 0);
    assert_eq!(counts["Container"], expected_containers, "{counts:?}");
    assert_eq!(counts.get("Process"), None, "no agent, no processes");
    let status = get(master.addr, "/status").json();
    assert_eq!(status["refresh"]["calls"]["agentNode"], 0, "{status}");
    assert_eq!(status["refresh"]["calls"]["dockerList"], 0, "{status}");
}

#[test]
fn calls_that_fail_on_an_answering_node_are_counted_in_the_status() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    let first = master.wait_for_refreshes(1);
    sim.faults().set_node_on(0, "/top", Fault::Status(500));
    let status = master.wait_for_refreshes(first["refresh"]["count"].as_u64().unwrap() + 2);
    let node0 = &status["sources"]["nodes"][&sim.node_names()[0]];
    assert_eq!(node0["status"], "OK", "{status}");
    assert!(node0["failedCalls"].as_u64().unwrap() > 0, "{status}");
    let node1 = &status["sources"]["nodes"][&sim.node_names()[1]];
    assert_eq!(node1["failedCalls"], 0, "{status}");
    sim.faults().clear();
}

#[test]
fn a_failed_list_keeps_the_last_good_copy() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    master.wait_for_refreshes(1);
    sim.faults().set_kube_on("/pods", Fault::Status(500));
    // The pods' watch meets the fault when it comes back (set_kube_on drops it), on its own
    // time: until the status says so, at most 20 s.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    let status = loop {
        let status = master.wait_for_more_refreshes(1);
        let lists = &status["sources"]["kubernetes"]["lists"];
        if lists["pods"]["status"] == "ERROR" || std::time::Instant::now() > deadline {
            break status;
        }
    };
    assert_eq!(status["sources"]["kubernetes"]["status"], "ERROR");
    assert_eq!(
        status["sources"]["kubernetes"]["lists"]["pods"]["status"],
        "ERROR"
    );
    assert_eq!(
        status["sources"]["kubernetes"]["lists"]["nodes"]["status"],
        "OK"
    );
    let lists = &status["sources"]["kubernetes"]["lists"];
    assert_eq!(lists["pods"]["failedCalls"], 1, "{status}");
    assert_eq!(lists["nodes"]["failedCalls"], 0, "{status}");
    let (resources, _) = counts(&get(master.addr, "/cluster").json());
    assert_eq!(resources["Pod"], sim.expected().resources["Pod"]);
    sim.faults().clear();
}

/// Every `Config.Env` entry of the resources in a `/cluster/resources/TYPE` body.
fn env_entries(body: &Value) -> Vec<String> {
    body["resources"]
        .as_array()
        .unwrap()
        .iter()
        .flat_map(|r| {
            r["properties"]["Config"]["Env"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .map(|e| e.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn show_env_reveals_what_is_redacted_by_default() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let shown = MasterProcess::against(&sim, &["--show-env"]);
    shown.wait_for_refreshes(1);
    let values = env_entries(&get(shown.addr, "/cluster/resources/containers").json());
    assert!(!values.is_empty());
    assert!(values.iter().all(|v| !v.ends_with("=<redacted>")));

    // An image's own environment (PATH and the like) is public and stays in the image.
    let image_env = env_entries(&get(shown.addr, "/cluster/resources/images").json());
    let values: Vec<String> = values
        .into_iter()
        .filter(|v| !image_env.contains(v))
        .collect();
    assert!(
        !values.is_empty(),
        "the simulated containers carry secrets of their own"
    );

    let hidden = MasterProcess::against(&sim, &[]);
    hidden.wait_for_refreshes(1);
    for path in [
        "/cluster",
        "/cluster/resources",
        "/cluster/resources/containers",
        "/debug",
    ] {
        let text = get(hidden.addr, path).text();
        for v in &values {
            // The entry as Docker writes it; a pod spec may name the same value in its own
            // form, and that is the Kubernetes object as observed.
            assert!(!text.contains(&format!("\"{v}\"")), "{path} leaks {v}");
        }
        assert!(text.contains("=<redacted>") || path == "/debug", "{path}");
    }

    // Pod specs' environment values (pods, and workloads' templates) and the annotation
    // `kubectl apply` keeps the whole object in.
    let kube_secrets = |master: &MasterProcess| {
        let graph = get(master.addr, "/cluster").json();
        let mut values = 0;
        let mut applied = 0;
        for r in graph["resources"].as_array().unwrap() {
            let text = r["properties"].to_string();
            values += text.matches(r#""value":"info""#).count();
            applied += text.matches("last-applied-configuration").count();
        }
        (values, applied)
    };
    let (values, applied) = kube_secrets(&shown);
    assert!(values > 0 && applied > 0, "{values} {applied}");
    assert_eq!(kube_secrets(&hidden), (0, 0));
}

#[test]
fn bad_command_lines_and_configuration_exit_with_their_codes() {
    let bin = env!("CARGO_BIN_EXE_cluster-insight");
    let run = |args: &[&str], env: Option<&str>| {
        let mut cmd = Command::new(bin);
        cmd.args(args).stdin(Stdio::null());
        match env {
            Some(mode) => cmd.env("CLUSTER_INSIGHT_MODE", mode),
            None => cmd.env_remove("CLUSTER_INSIGHT_MODE"),
        };
        cmd.output().unwrap()
    };
    let out = run(&["--frobnicate"], None);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("frobnicate"));
    assert_eq!(run(&[], Some("worker")).status.code(), Some(2));
    assert_eq!(run(&["--port", "x"], None).status.code(), Some(2));
    let help = run(&["--help"], Some("worker"));
    assert_eq!(help.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&help.stdout).contains("--kubernetes-url"));
    let version = run(&["--version"], None);
    assert!(String::from_utf8_lossy(&version.stdout).starts_with("cluster-insight "));

    let out = run(
        &[
            "--token-file",
            "/nonexistent/token",
            "--kubernetes-url",
            "https://127.0.0.1:1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/token"));

    // A URL that is not one, and a socket that is a regular file: exit 3, said why.
    for (args, says) in [
        (vec!["--kubernetes-url", "http://[::1"], "not a URL"),
        (
            vec!["--kubernetes-url", "https://admin:hunter2@10.0.0.1:6443"],
            "credentials",
        ),
        (
            vec!["--kubernetes-url", "ftp://host"],
            "http:// or https://",
        ),
        (
            vec![
                "--kubernetes-url",
                "http://127.0.0.1:1",
                "--runtime-socket",
                bin,
            ],
            "is not a socket",
        ),
        (
            vec![
                "--kubernetes-url",
                "http://127.0.0.1:1",
                "--runtime-socket",
                "/nonexistent/docker.sock",
            ],
            "does not exist",
        ),
    ] {
        let out = run(&args, None);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(3), "{args:?}: {stderr}");
        assert!(stderr.contains(says), "{args:?}: {stderr}");
        assert!(!stderr.contains("hunter2"), "{stderr}");
    }

    let taken = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = run(
        &[
            "--bind",
            "127.0.0.1",
            "--port",
            &port,
            "--kubernetes-url",
            "http://127.0.0.1:1",
        ],
        None,
    );
    assert_eq!(out.status.code(), Some(4));
}

#[test]
fn the_token_never_reaches_the_logs() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("ci-token-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let token = dir.join("token");
    std::fs::write(&token, "tok-9f8e7d6c5b4a\n").unwrap();
    let master =
        MasterProcess::against(&sim, &["--token-file", token.to_str().unwrap(), "--debug"]);
    master.wait_for_refreshes(2);
    sim.faults().set_kube(Fault::Status(401));
    let status = get(master.addr, "/status").json();
    master.wait_for_refreshes(status["refresh"]["count"].as_u64().unwrap() + 1);
    sim.faults().clear();
    let reply: Reply = get(master.addr, "/status");
    assert!(!reply.text().contains("tok-9f8e7d6c5b4a"));
    assert!(!master.log_text().contains("tok-9f8e7d6c5b4a"));
    assert!(
        master.log_text().contains("refresh"),
        "the debug log has content"
    );
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn sigterm_finishes_the_answers_in_flight_and_exits_0() {
    use std::io::Write;
    use std::net::TcpStream;
    use std::time::{Duration, Instant};

    let sim = Simulator::start(SimSpec {
        nodes: 10,
        pods_per_node: 30,
        ..SimSpec::default()
    })
    .unwrap();
    let mut master = MasterProcess::against(&sim, &[]);
    master.wait_for_refreshes(1);
    // A client in the middle of a large answer, reading slowly.
    let mut client = TcpStream::connect(master.addr).unwrap();
    client
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    client
        .write_all(b"GET /cluster HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .unwrap();
    let mut reply = vec![0u8; 4096];
    let mut got = client.read(&mut reply).unwrap();
    reply.truncate(got);

    let killed = Command::new("kill")
        .args(["-TERM", &master.pid().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(Duration::from_millis(300));
    // New clients are turned away...
    let refused = match TcpStream::connect_timeout(&master.addr, Duration::from_secs(1)) {
        Err(_) => true,
        Ok(mut late) => {
            late.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
            let _ = late.write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n");
            let mut answer = Vec::new();
            let _ = late.read_to_end(&mut answer);
            !answer.starts_with(b"HTTP/1.1 200")
        }
    };
    assert!(refused, "a new client was served after SIGTERM");
    // ...while the answer in flight is finished, whole.
    let mut chunk = vec![0u8; 64 << 10];
    loop {
        let n = client.read(&mut chunk).unwrap();
        if n == 0 {
            break;
        }
        got += n;
        reply.extend_from_slice(&chunk[..n]);
        std::thread::sleep(Duration::from_millis(2));
    }
    let head_end = reply.windows(4).position(|w| w == b"\r\n\r\n").unwrap() + 4;
    let head = String::from_utf8_lossy(&reply[..head_end]).to_string();
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .expect("a Content-Length")
        .trim()
        .parse()
        .unwrap();
    assert_eq!(
        reply.len() - head_end,
        length,
        "the whole body, {got} bytes read"
    );
    let body: Value = serde_json::from_slice(&reply[head_end..]).unwrap();
    assert_eq!(body["success"], true);

    let deadline = Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = master.child.try_wait().unwrap() {
            break status;
        }
        assert!(
            Instant::now() < deadline,
            "still running 10 s after SIGTERM"
        );
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(status.code(), Some(0));
    assert!(master.log_text().contains("SIGTERM"));
}

#[test]
fn the_api_server_is_found_through_kubeconfig_and_context() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let dir = std::env::temp_dir().join(format!("ci-kubeconfig-master-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("config");
    // The current context is a closed port; `--context sim` is the simulator.
    std::fs::write(
        &file,
        format!(
            "apiVersion: v1\nkind: Config\ncurrent-context: closed\n\
             clusters:\n- name: sim\n  cluster: {{server: '{}'}}\n\
             - name: closed\n  cluster: {{server: 'http://127.0.0.1:1'}}\n\
             contexts:\n- {{name: sim, context: {{cluster: sim}}}}\n\
             - {{name: closed, context: {{cluster: closed}}}}\n",
            sim.kube_url()
        ),
    )
    .unwrap();
    let port = sim.docker_port().to_string();
    let common = [
        "--no-auth",
        "--docker-port",
        &port,
        "--refresh-interval",
        "0.5",
    ];
    let with = |extra: &[&'static str]| {
        let mut args = common.to_vec();
        args.extend_from_slice(extra);
        args
    };
    let file_text = file.to_str().unwrap();
    let master =
        MasterProcess::start_with_env(&with(&["--context", "sim"]), &[("KUBECONFIG", file_text)]);
    master.wait_for_refreshes(1);
    let (resources, _) = counts(&get(master.addr, "/cluster").json());
    assert_eq!(resources, sim.expected().resources);
    assert!(
        master.log_text().contains("kubeconfig context \"sim\""),
        "{}",
        master.log_text()
    );
    drop(master);

    // A context that is not there stops the start with exit code 3 and the contexts known.
    let out = Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
        .args([
            "--mode",
            "master",
            "--no-auth",
            "--kubeconfig",
            file_text,
            "--context",
            "prod",
        ])
        .env("HOME", "/nonexistent")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no context \"prod\" (contexts: sim, closed)"),
        "{stderr}"
    );
    std::fs::remove_dir_all(&dir).unwrap();
}

/// The DOT drawing of `/debug`, read back: which box each drawn resource is in, its label
/// and its fill, and the relations drawn.
struct Drawing {
    nodes: std::collections::HashMap<String, (Option<String>, String, String)>,
    edges: Vec<(String, String, String)>,
}

fn read_dot(dot: &str) -> Drawing {
    let quoted = |s: &str| -> Vec<String> {
        // The quoted strings of a line, unescaped.
        let mut out = Vec::new();
        let mut chars = s.chars();
        while let Some(c) = chars.next() {
            if c != '"' {
                continue;
            }
            let mut text = String::new();
            while let Some(c) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some('n') => text.push('\n'),
                        Some(c) => text.push(c),
                        None => {}
                    },
                    '"' => break,
                    c => text.push(c),
                }
            }
            out.push(text);
        }
        out
    };
    let mut drawing = Drawing {
        nodes: Default::default(),
        edges: Vec::new(),
    };
    let mut group = None;
    for line in dot.lines() {
        let line = line.trim();
        if line.starts_with("subgraph ") {
            group = quoted(line).into_iter().next();
        } else if line == "}" {
            group = None;
        } else if line.contains(" -> ") {
            let q = quoted(line);
            drawing
                .edges
                .push((q[0].clone(), q[1].clone(), q[2].clone()));
        } else if line.contains(" [label=") {
            let q = quoted(line);
            drawing
                .nodes
                .insert(q[0].clone(), (group.clone(), q[1].clone(), q[2].clone()));
        }
    }
    drawing
}

#[test]
fn debug_draws_pods_inside_their_nodes_by_status_and_processes_when_asked() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--cluster-name", "sim"]);
    master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    let drawing = read_dot(&get(master.addr, "/debug").text());
    let resources = graph["resources"].as_array().unwrap();
    let relations = graph["relations"].as_array().unwrap();
    let node_of = |pod: &str| {
        relations
            .iter()
            .find(|r| r["type"] == "runs" && r["target"] == pod)
            .map(|r| {
                r["source"]
                    .as_str()
                    .unwrap()
                    .trim_start_matches("Node:")
                    .to_string()
            })
    };
    let (mut pending, mut running) = (0, 0);
    for pod in resources.iter().filter(|r| r["type"] == "Pod") {
        let id = pod["id"].as_str().unwrap();
        let (group, label, fill) = &drawing.nodes[id];
        let metadata = &pod["properties"]["metadata"];
        let expected_group = match node_of(id) {
            Some(node) => format!("cluster_node_{node}"),
            None => format!(
                "cluster_namespace_{}",
                metadata["namespace"].as_str().unwrap()
            ),
        };
        assert_eq!(group.as_deref(), Some(expected_group.as_str()), "{id}");
        assert_eq!(
            label,
            &format!(
                "Pod\n{}/{}",
                metadata["namespace"].as_str().unwrap(),
                metadata["name"].as_str().unwrap()
            )
        );
        match pod["properties"]["status"]["phase"].as_str() {
            Some("Pending") => {
                pending += 1;
                assert_eq!(fill, "#fff8c5", "{id} is pending");
            }
            Some("Running")
                if pod["properties"]["status"]["conditions"]
                    .as_array()
                    .is_some_and(|c| {
                        c.iter()
                            .any(|c| c["type"] == "Ready" && c["status"] == "True")
                    }) =>
            {
                running += 1;
                assert_eq!(fill, "#dafbe1", "{id} is running and ready");
            }
            _ => {}
        }
    }
    assert!(
        pending > 0 && running > 0,
        "{pending} pending, {running} running"
    );
    for image in resources.iter().filter(|r| r["type"] == "Image") {
        let name = image["annotations"]["alternateLabel"].as_str().unwrap();
        let (_, label, _) = &drawing.nodes[image["id"].as_str().unwrap()];
        assert_eq!(label, &format!("Image\n{name}"));
    }
    for service in resources.iter().filter(|r| r["type"] == "Service") {
        let ns = service["properties"]["metadata"]["namespace"]
            .as_str()
            .unwrap();
        let (group, _, _) = &drawing.nodes[service["id"].as_str().unwrap()];
        assert_eq!(
            group.as_deref(),
            Some(format!("cluster_namespace_{ns}").as_str())
        );
    }
    // Processes only when asked for; nodes run pods, said by the boxes, not by lines.
    assert!(!drawing.nodes.keys().any(|id| id.starts_with("Process:")));
    assert!(!drawing.edges.iter().any(|(_, _, kind)| kind == "runs"));
    assert!(drawing.edges.iter().any(|(_, _, kind)| kind == "owns"));
    let with = read_dot(&get(master.addr, "/debug?processes=1").text());
    let processes = resources.iter().filter(|r| r["type"] == "Process").count();
    assert!(processes > 0);
    assert_eq!(
        with.nodes
            .keys()
            .filter(|id| id.starts_with("Process:"))
            .count(),
        processes
    );
    let bad = get(master.addr, "/debug?processes=yes");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("processes"), "{}", bad.text());
}

/// GraphML read back by a real XML parser (Python's `xml.etree`): every resource a node with
/// its type, label, namespace and status, every relation an edge.
fn read_graphml(text: &str) -> Value {
    let script = r#"
import json, sys
import xml.etree.ElementTree as ET
ns = {"g": "http://graphml.graphdrawing.org/xmlns"}
root = ET.fromstring(sys.stdin.buffer.read())
graph = root.find("g:graph", ns)
data = lambda e: {d.get("key"): d.text for d in e.findall("g:data", ns)}
print(json.dumps({
    "directed": graph.get("edgedefault"),
    "keys": sorted(k.get("attr.name") for k in root.findall("g:key", ns)),
    "nodes": {n.get("id"): data(n) for n in graph.findall("g:node", ns)},
    "edges": [[e.get("source"), e.get("target"), data(e).get("relation")] for e in graph.findall("g:edge", ns)],
}))
"#;
    let mut child = Command::new("python3")
        .args(["-c", script])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("python3 runs");
    std::io::Write::write_all(child.stdin.as_mut().unwrap(), text.as_bytes()).unwrap();
    drop(child.stdin.take());
    let output = child.wait_with_output().unwrap();
    assert!(output.status.success(), "the XML parser refused it");
    serde_json::from_slice(&output.stdout).unwrap()
}

#[test]
fn graphml_holds_every_resource_and_relation_of_the_selection() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--cluster-name", "sim"]);
    master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    let reply = get(master.addr, "/cluster?format=graphml");
    assert_eq!(reply.status, 200);
    assert!(reply
        .header("Content-Type")
        .unwrap()
        .starts_with("application/graphml+xml"));
    let read = read_graphml(&reply.text());
    assert_eq!(read["directed"], "directed");
    assert_eq!(
        read["keys"],
        serde_json::json!(["label", "namespace", "relation", "status", "type"])
    );
    let nodes = read["nodes"].as_object().unwrap();
    let resources = graph["resources"].as_array().unwrap();
    assert_eq!(nodes.len(), resources.len());
    for r in resources {
        let node = &nodes[r["id"].as_str().unwrap()];
        assert_eq!(node["type"], r["type"]);
        if let Some(ns) = r["properties"]["metadata"]["namespace"].as_str() {
            assert_eq!(node["namespace"], ns, "{}", r["id"]);
        }
        if r["type"] == "Pod" && r["properties"]["status"]["phase"] == "Pending" {
            assert_eq!(node["status"], "pending", "{}", r["id"]);
        }
        if r["type"] == "Image" {
            assert_eq!(node["label"], r["annotations"]["alternateLabel"]);
        }
    }
    let edges: Vec<Value> = graph["relations"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| serde_json::json!([r["source"], r["target"], r["type"]]))
        .collect();
    assert_eq!(read["edges"].as_array().unwrap(), &edges);

    // A selection in GraphML: what /cluster answers for it, and an ETag of its own.
    let selected = get(master.addr, "/cluster?namespace=production&format=graphml");
    assert_eq!(selected.status, 200);
    let json = get(master.addr, "/cluster?namespace=production").json();
    let read = read_graphml(&selected.text());
    assert_eq!(
        read["nodes"].as_object().unwrap().len(),
        json["resources"].as_array().unwrap().len()
    );
    assert_ne!(selected.header("ETag"), reply.header("ETag"));
    let again = request(
        master.addr,
        "GET",
        "/cluster?format=graphml",
        &[("If-None-Match", reply.header("ETag").unwrap())],
    );
    assert_eq!(again.status, 304);
    let bad = get(master.addr, "/cluster?format=xml");
    assert_eq!(bad.status, 400);
    assert!(bad.text().contains("graphml"), "{}", bad.text());
}

/// `cluster-insight tree`, run as a user would against a master of a simulated cluster.
fn tree(master: &MasterProcess, args: &[&str]) -> (i32, String, String) {
    let output = Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
        .arg("tree")
        .args(args)
        .args(["--server", &format!("http://{}", master.addr)])
        .output()
        .unwrap();
    (
        output.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn tree_prints_an_objects_owners_and_what_it_owns_and_holds() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &[]);
    master.wait_for_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    let relations = graph["relations"].as_array().unwrap();
    let targets = |source: &str, kind: &str| -> Vec<String> {
        relations
            .iter()
            .filter(|r| r["source"] == source && r["type"] == kind)
            .map(|r| r["target"].as_str().unwrap().to_string())
            .collect()
    };
    // A pod a ReplicaSet owns, which a Deployment owns.
    let (deployment, replica_set, pod) = relations
        .iter()
        .filter(|r| r["type"] == "owns" && r["source"].as_str().unwrap().starts_with("Deployment:"))
        .find_map(|d| {
            let rs = d["target"].as_str().unwrap();
            let pod = targets(rs, "owns").into_iter().next()?;
            Some((
                d["source"].as_str().unwrap().to_string(),
                rs.to_string(),
                pod,
            ))
        })
        .expect("a Deployment with a pod");
    let (ns, name) = pod.trim_start_matches("Pod:").split_once('/').unwrap();
    let (code, out, err) = tree(&master, &[&format!("po/{name}"), "-n", ns]);
    assert_eq!(code, 0, "{err}");
    let lines: Vec<&str> = out.lines().collect();
    let short = |id: &str| id.split_once(':').unwrap().1.to_string();
    assert!(
        lines[0].starts_with(&format!("Deployment {}", short(&deployment))),
        "{out}"
    );
    assert!(
        lines[1].starts_with(&format!("└── ReplicaSet {}", short(&replica_set))),
        "{out}"
    );
    assert!(
        lines[2].contains(&format!("Pod {ns}/{name}")) && lines[2].ends_with('◀'),
        "{out}"
    );
    let containers = targets(&pod, "contains");
    assert!(!containers.is_empty());
    let processes: usize = containers
        .iter()
        .map(|c| targets(c, "contains").len())
        .sum();
    assert_eq!(out.matches("Container ").count(), containers.len(), "{out}");
    assert_eq!(out.matches("Process ").count(), processes, "{out}");

    // JSON, from the Deployment down one level less than the pods' containers.
    let deployment_short = short(&deployment);
    let (deployment_ns, deployment_name) = deployment_short.split_once('/').unwrap();
    let (code, out, err) = tree(
        &master,
        &[
            &format!("deployment/{deployment_name}"),
            "-n",
            deployment_ns,
            "--depth",
            "2",
            "-o",
            "json",
        ],
    );
    assert_eq!(code, 0, "{err}");
    let json: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(json["id"], deployment.as_str());
    assert_eq!(json["asked"], true);
    let rs_node = json["children"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == replica_set.as_str())
        .unwrap();
    let pods: Vec<&str> = rs_node["children"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["id"].as_str().unwrap())
        .collect();
    assert_eq!(pods, targets(&replica_set, "owns"));
    assert!(rs_node["children"][0]["children"]
        .as_array()
        .unwrap()
        .is_empty());

    // What is not there, and what is not asked right, is said so.
    let (code, _, err) = tree(&master, &["pod/no-such-pod"]);
    assert_eq!(code, 1);
    assert!(err.contains("has no Pod:default/no-such-pod"), "{err}");
    let (code, _, err) = tree(&master, &["widget/x"]);
    assert_eq!(code, 2);
    assert!(err.contains("not a type"), "{err}");
    let (code, _, err) = tree(&master, &["pod/x", "-o", "yaml"]);
    assert_eq!(code, 2);
    assert!(err.contains("text or json"), "{err}");
}
