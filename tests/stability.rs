//! A cluster whose nodes answer as slowly as real ones do: the graph is complete within a
//! bound and then the same, ETag and all, refresh after refresh; a node that cannot be read
//! in full in its time shows its earlier reading, marked stale, instead of losing it.

use std::time::{Duration, Instant};

use cluster_insight_sim::{Fault, NodeLatency, SimSpec, Simulator};
use serde_json::Value;

use crate::support::client::get;
use crate::support::master::{counts, graph_consistency, MasterProcess};

/// Node APIs as slow as a real Docker daemon's (about the medians measured in the README,
/// `top` a little slower), with their jitter.
fn slow_docker() -> NodeLatency {
    NodeLatency {
        list: Duration::from_millis(10),
        inspect: Duration::from_millis(3),
        top: Duration::from_millis(40),
        image: Duration::from_millis(3),
        node: Duration::from_millis(160),
        jitter_percent: 50,
    }
}

/// Whether `graph` has every resource and relation the simulated cluster has.
fn complete(graph: &Value, sim: &Simulator) -> bool {
    let (resources, relations) = counts(graph);
    resources == sim.expected().resources && relations == sim.expected().relations
}

/// Waits until `/cluster` is complete and every node was read in full (nothing shown is
/// from an earlier reading); the refreshes it took.
fn wait_until_complete(master: &MasterProcess, sim: &Simulator, refreshes: u64) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let status = master.wait_for_more_refreshes(1);
        let graph = get(master.addr, "/cluster").json();
        let cut = &status["sources"]["nodesCut"];
        if complete(&graph, sim) && *cut == 0 {
            return status["refresh"]["count"].as_u64().unwrap();
        }
        let count = status["refresh"]["count"].as_u64().unwrap();
        assert!(
            count <= refreshes && Instant::now() < deadline,
            "not complete after {count} refreshes: {:?}, expected {:?}; {cut} node(s) cut; {}",
            counts(&graph),
            sim.expected(),
            status["refresh"]
        );
    }
}

/// What stays the same when the graph does: its ETag and sequence number.
fn identity(master: &MasterProcess) -> (String, u64) {
    let reply = get(master.addr, "/cluster");
    assert_eq!(reply.status, 200);
    let etag = reply.header("etag").unwrap().to_string();
    let sequence = master.status()["snapshot"]["sequence"].as_u64().unwrap();
    (etag, sequence)
}

/// 48 nodes of 19 containers each, read call by call through Docker: about 0.9 s a node at
/// this latency, 43 s for the cluster. Read 16 at a time (the old fixed default), a refresh
/// of 2 s cuts a third of the nodes short, and a different third each time; read as the
/// default now does, every node is read in full within the refresh.
#[test]
fn a_slow_cluster_is_complete_within_three_refreshes_and_then_unchanged() {
    let mut sim = Simulator::start(SimSpec {
        nodes: 48,
        pods_per_node: 6,
        containers_per_pod: 2,
        processes_per_container: 2,
        latency: slow_docker(),
        ..SimSpec::default()
    })
    .unwrap();
    let master = MasterProcess::against(
        &sim,
        &["--refresh-interval", "2", "--docker-timeout", "0.5"],
    );
    let first_complete = wait_until_complete(&master, &sim, 3);

    let (etag, sequence) = identity(&master);
    for _ in 0..4 {
        let status = master.wait_for_more_refreshes(1);
        let graph = get(master.addr, "/cluster").json();
        graph_consistency(&graph).unwrap();
        assert!(complete(&graph, &sim), "{:?}", counts(&graph));
        assert_eq!(
            identity(&master),
            (etag.clone(), sequence),
            "the unchanged cluster's graph changed (first complete in refresh {first_complete}): {} node(s) cut; {}",
            status["sources"]["nodesCut"],
            status["refresh"]
        );
        let nodes = status["sources"]["nodes"].as_object().unwrap();
        assert_eq!(nodes.len(), 48);
        for (name, node) in nodes {
            assert_eq!(node["collection"], "complete", "{name}: {node}");
        }
        let threads = status["refresh"]["nodeReading"]["threads"]
            .as_u64()
            .unwrap();
        assert!(
            threads > 16,
            "more threads than the minimum: {}",
            status["refresh"]
        );
    }
    // A client that has the graph is told it still has it.
    let reply = crate::support::client::request(
        master.addr,
        "GET",
        "/cluster",
        &[("If-None-Match", etag.as_str())],
    );
    assert_eq!(reply.status, 304);

    // A change in the cluster is a new graph.
    let (namespace, name, _) = sim.pods()[0].clone();
    assert!(sim.delete_pod(&namespace, &name));
    let status = master.wait_for_more_refreshes(2);
    let (changed, next) = identity(&master);
    assert!(changed != etag && next > sequence, "{}", status["refresh"]);
}

/// Node 0's `top` calls become slower than its time allows: its containers keep the
/// processes of the last reading, marked with when it was made, and `/status` says the node
/// was cut short and how; when it is fast again, the marks go.
#[test]
fn a_node_cut_short_shows_its_last_reading_marked_stale() {
    let sim = Simulator::start(SimSpec {
        nodes: 3,
        pods_per_node: 4,
        ..SimSpec::default()
    })
    .unwrap();
    let master = MasterProcess::against(
        &sim,
        &["--refresh-interval", "1", "--docker-timeout", "0.4"],
    );
    wait_until_complete(&master, &sim, 5);
    let node0 = sim.node_names()[0].clone();

    // Each top takes 300 ms of the node's 1 s: three or four are read, the rest carried.
    sim.faults()
        .set_node_on(0, "/top", Fault::Slow(Duration::from_millis(300)));
    master.wait_for_more_refreshes(2);
    let status = master.wait_for_more_refreshes(1);
    let graph = get(master.addr, "/cluster").json();
    graph_consistency(&graph).unwrap();
    assert!(
        complete(&graph, &sim),
        "nothing is lost: {:?}",
        counts(&graph)
    );

    let node = &status["sources"]["nodes"][&node0];
    assert_eq!(node["status"], "OK", "{node}");
    assert_eq!(node["collection"], "cut", "{node}");
    let carried = node["cut"]["processesCarriedOver"].as_u64().unwrap();
    assert!(carried > 0, "{node}");
    assert!(node["cut"]["staleSince"].is_string(), "{node}");
    assert!(
        node["cut"]["staleSeconds"].as_f64().unwrap() > 0.0,
        "{node}"
    );
    assert_eq!(status["sources"]["nodesCut"], 1, "{}", status["sources"]);
    for other in &sim.node_names()[1..] {
        let node = &status["sources"]["nodes"][other];
        assert_eq!(node["collection"], "complete", "{node}");
    }

    // The containers shown with earlier processes say so, and only node 0's.
    let stale: Vec<&Value> = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["annotations"]["staleSince"].is_string())
        .collect();
    assert!(!stale.is_empty());
    let node0_containers: Vec<String> = sim
        .container_ids(0)
        .iter()
        .map(|id| format!("Container:{id}"))
        .collect();
    for r in &stale {
        let id = r["id"].as_str().unwrap();
        let of_node0 = node0_containers.iter().any(|c| c == id)
            || (id.starts_with("Process:")
                && node0_containers
                    .iter()
                    .any(|c| id[8..].starts_with(&c["Container:".len()..][..12])));
        assert!(of_node0, "{id} is not node 0's");
        let since = r["annotations"]["staleSince"].as_str().unwrap();
        assert!(since < graph["timestamp"].as_str().unwrap(), "{since}");
    }

    sim.faults().clear();
    master.wait_for_more_refreshes(2);
    let status = master.wait_for_more_refreshes(1);
    let node = &status["sources"]["nodes"][&node0];
    assert_eq!(node["collection"], "complete", "{node}");
    let graph = get(master.addr, "/cluster").json();
    assert!(complete(&graph, &sim));
    assert!(graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .all(|r| r["annotations"]["staleSince"].is_null()));
}
