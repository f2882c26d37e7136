//! Watches end to end: the real binary keeps each kind by a list and then a watch of the
//! cluster simulator's API, so that a change reaches the graph between refreshes and a
//! quiet cluster costs no lists; a watch the server cuts, drops or expires comes back.

use crate::support::client::get;
use crate::support::master::{counts, MasterProcess};

use std::time::{Duration, Instant};

use cluster_insight_sim::{SimSpec, Simulator};
use serde_json::Value;

/// Polls `/cluster` until `done` says so, for at most `limit`.
fn wait_for_graph(master: &MasterProcess, limit: Duration, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        let graph = get(master.addr, "/cluster").json();
        if done(&graph) {
            return graph;
        }
        assert!(
            Instant::now() < deadline,
            "the graph did not change in time"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has_pod(graph: &Value, namespace: &str, name: &str) -> bool {
    let id = format!("Pod:{namespace}/{name}");
    graph["resources"]
        .as_array()
        .is_some_and(|r| r.iter().any(|r| r["id"] == id.as_str()))
}

#[test]
fn a_change_reaches_the_graph_between_refreshes_and_a_quiet_cluster_lists_nothing() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    // Refreshes (node readings) far apart: what happens between them comes from the watches.
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120"]);
    let status = master.wait_for_refreshes(1);
    let lists_before = sim.request_counts().kube_list_pages;
    let (namespace, name, _) = sim.pods()[0].clone();
    assert!(has_pod(
        &get(master.addr, "/cluster").json(),
        &namespace,
        &name
    ));

    let deleted = Instant::now();
    assert!(sim.delete_pod(&namespace, &name));
    let graph = wait_for_graph(&master, Duration::from_secs(10), |g| {
        !has_pod(g, &namespace, &name)
    });
    eprintln!("a deleted pod left the graph in {:?}", deleted.elapsed());
    let (resources, _) = counts(&graph);
    assert_eq!(resources["Pod"], sim.expected().resources["Pod"]);
    let after = master.status();
    assert_eq!(
        after["refresh"]["count"], status["refresh"]["count"],
        "no refresh ran"
    );
    assert!(
        after["refresh"]["kubernetesUpdates"].as_u64().unwrap() >= 1,
        "{after}"
    );
    let pods = &after["sources"]["kubernetes"]["lists"]["pods"];
    assert!(pods["watch"]["events"].as_u64().unwrap() >= 1, "{after}");
    // Watched, not listed again.
    assert_eq!(sim.request_counts().kube_list_pages, lists_before);
    assert!(sim.request_counts().kube_watch >= 16, "a watch per kind");
}

#[test]
fn a_watch_that_is_dropped_resumes_and_one_that_expired_lists_again() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120"]);
    master.wait_for_refreshes(1);
    let lists_before = sim.request_counts().kube_list_pages;

    // Dropped: resumed from the last version, nothing listed.
    sim.faults().drop_watches();
    let (ns, name, _) = sim.pods()[1].clone();
    assert!(sim.delete_pod(&ns, &name));
    wait_for_graph(&master, Duration::from_secs(10), |g| {
        !has_pod(g, &ns, &name)
    });
    assert_eq!(
        sim.request_counts().kube_list_pages,
        lists_before,
        "resumed, not listed"
    );

    // Expired (the server compacted its history): listed again, and whole.
    sim.faults().compact_watch_history();
    sim.faults().drop_watches();
    let (ns, name, _) = sim.pods()[1].clone();
    assert!(sim.delete_pod(&ns, &name));
    let graph = wait_for_graph(&master, Duration::from_secs(15), |g| {
        !has_pod(g, &ns, &name)
    });
    // The Kubernetes objects are whole; the nodes' containers are as last read, until the
    // next refresh reads the nodes.
    let (resources, _) = counts(&graph);
    let of_kubernetes = |r: &std::collections::BTreeMap<String, usize>| {
        r.iter()
            .filter(|(t, _)| !matches!(t.as_str(), "Container" | "Process" | "Image"))
            .map(|(t, n)| (t.clone(), *n))
            .collect::<Vec<_>>()
    };
    assert_eq!(
        of_kubernetes(&resources),
        of_kubernetes(&sim.expected().resources)
    );
    assert!(
        sim.request_counts().kube_list_pages > lists_before,
        "listed again"
    );
    let status = master.status();
    let restarts = &status["sources"]["kubernetes"]["lists"]["pods"]["watch"]["restarts"];
    assert!(restarts["expired"].as_u64().unwrap_or(0) >= 1, "{status}");
    assert!(restarts["dropped"].as_u64().unwrap_or(0) >= 1, "{status}");
    let metrics = get(master.addr, "/metrics").text();
    assert!(
        metrics.contains("cluster_insight_watch_restarts_total{kind=\"pods\",reason=\"expired\"}"),
        "{metrics}"
    );
}

#[test]
fn a_quiet_cluster_without_agents_is_not_built_again() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(
        &sim,
        &["--no-agents", "--refresh-interval", "0.2", "--debug"],
    );
    let first = master.wait_for_refreshes(1);
    let later = master.wait_for_more_refreshes(5);
    assert_eq!(later["snapshot"]["sequence"], first["snapshot"]["sequence"]);
    assert!(master.log_text().contains("nothing changed"));
    assert_eq!(later["sources"]["kubernetes"]["status"], "OK", "{later}");
    // A change is still built at once.
    let (ns, name, _) = sim.pods()[0].clone();
    assert!(sim.delete_pod(&ns, &name));
    wait_for_graph(&master, Duration::from_secs(10), |g| {
        !has_pod(g, &ns, &name)
    });
}
