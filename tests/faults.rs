//! The master under faults of its sources, as a table: one row per fault of the Kubernetes
//! API or of one node's Docker API, one check for all rows.
//!
//! What every row must show (SPEC §3 "Partial data"): while the fault lasts the real binary
//! keeps publishing snapshots, each a consistent graph holding everything it could still
//! collect; only what the faulty source gave is missing; the failure is visible (in
//! `/status`, or in the log where `/status` has no place for it); no refresh is stalled past
//! the per-call timeouts; and once the fault is lifted the next snapshots are whole again
//! (counts equal the simulator's `expected()`). Rows run in parallel, each with its own
//! simulator and master, to keep the file within about a minute.

#[path = "support/client.rs"]
mod client;
#[path = "support/master.rs"]
mod master;

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use client::get;
use cluster_insight::sim::{Fault, SimSpec, Simulator};
use master::{counts, graph_consistency, MasterProcess};
use serde_json::Value;

/// Per-call bound given to the master for both APIs, in seconds.
const TIMEOUT: f64 = 1.0;
const MIB: usize = 1 << 20;

/// Where the fault is applied.
#[derive(Debug, Clone, Copy)]
enum Target {
    /// Every request to the Kubernetes API.
    Kube,
    /// Kubernetes requests whose path contains this.
    KubeOn(&'static str),
    /// Every request to node 0's Docker API.
    Node,
    /// Node 0's requests whose path contains this (`/top`, `/images/`).
    NodeOn(&'static str),
    /// Node 0's requests about one running application container (its inspect and top).
    OneContainer,
}

/// When the fault starts.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Phase {
    /// After a whole snapshot was published.
    Running,
    /// Before the master starts: for calls whose answers the master caches (container and
    /// image inspects), which only a first look makes.
    FromStart,
}

/// What the snapshots published under the fault may lack; every other type stays exact.
#[derive(Debug, Clone, Copy)]
enum Loses {
    Nothing,
    /// At least one of these types has fewer resources than expected.
    Some(&'static [&'static str]),
    /// These types may have fewer resources than expected (another node may make up for
    /// the faulty one, e.g. with a shared image).
    AtMost(&'static [&'static str]),
}

/// Where the failure must show.
#[derive(Debug, Clone, Copy)]
enum Visible {
    /// `/status`: every Kubernetes list is `ERROR`.
    KubeAll,
    /// `/status`: this Kubernetes list is `ERROR`, the others `OK`.
    KubeList(&'static str),
    /// `/status`: node 0 is `ERROR`, the others `OK`.
    Node,
    /// The log has a line containing this.
    Log(&'static str),
    /// The log names the faulty container's ID.
    LogContainer,
    /// Not a failure: every source stays `OK`.
    Nothing,
}

struct Row {
    target: Target,
    fault: Fault,
    phase: Phase,
    loses: Loses,
    visible: Visible,
}

const NODE_LOSSES: Loses = Loses::Some(&["Container", "Process", "Image"]);
const CONTAINER_LOSSES: Loses = Loses::Some(&["Container", "Process"]);

fn rows() -> Vec<Row> {
    use Fault::*;
    use Phase::*;
    use Target::*;
    let slow = Slow(Duration::from_secs(3));
    let row = |target, fault, phase, loses, visible| Row {
        target,
        fault,
        phase,
        loses,
        visible,
    };
    let none = Loses::Nothing;
    vec![
        // The whole Kubernetes API: every list keeps its last good copy.
        row(Kube, Refuse, Running, none, Visible::KubeAll),
        row(Kube, Hang, Running, none, Visible::KubeAll),
        row(Kube, slow.clone(), Running, none, Visible::KubeAll),
        row(Kube, CloseMidBody, Running, none, Visible::KubeAll),
        row(Kube, Status(500), Running, none, Visible::KubeAll),
        row(Kube, Status(404), Running, none, Visible::KubeAll),
        row(Kube, Status(403), Running, none, Visible::KubeAll),
        row(Kube, Malformed, Running, none, Visible::KubeAll),
        row(Kube, Truncated, Running, none, Visible::KubeAll),
        row(
            Kube,
            Slow(Duration::from_millis(100)),
            Running,
            none,
            Visible::Nothing,
        ),
        row(Kube, Duplicate, Running, none, Visible::Nothing),
        // One list.
        row(
            KubeOn("/pods"),
            Hang,
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        row(
            KubeOn("/pods"),
            slow,
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        row(
            KubeOn("/pods"),
            Status(500),
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        row(
            KubeOn("/pods"),
            Malformed,
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        row(
            KubeOn("/pods"),
            Truncated,
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        row(
            KubeOn("/pods"),
            CloseMidBody,
            Running,
            none,
            Visible::KubeList("pods"),
        ),
        // A bad object in a good list: that object is skipped, the others stay.
        row(
            KubeOn("/pods"),
            WrongTypes,
            Running,
            Loses::Some(&["Pod"]),
            Visible::Log("skipping an object"),
        ),
        row(
            KubeOn("/services"),
            WrongTypes,
            Running,
            Loses::Some(&["Service"]),
            Visible::Log("skipping an object"),
        ),
        row(
            KubeOn("/nodes"),
            WrongTypes,
            Running,
            Loses::Some(&["Node", "Container", "Process", "Image"]),
            Visible::Log("skipping an object"),
        ),
        // Every call to one node's Docker API: that node's containers are missing.
        row(Node, Refuse, Running, NODE_LOSSES, Visible::Node),
        row(Node, Hang, Running, NODE_LOSSES, Visible::Node),
        row(
            Node,
            Slow(Duration::from_secs(3)),
            Running,
            NODE_LOSSES,
            Visible::Node,
        ),
        row(Node, CloseMidBody, Running, NODE_LOSSES, Visible::Node),
        row(Node, Status(500), Running, NODE_LOSSES, Visible::Node),
        row(Node, Status(404), Running, NODE_LOSSES, Visible::Node),
        row(Node, Malformed, Running, NODE_LOSSES, Visible::Node),
        row(Node, Truncated, Running, NODE_LOSSES, Visible::Node),
        row(Node, WrongTypes, Running, NODE_LOSSES, Visible::Node),
        row(Node, Huge(512 * MIB), Running, NODE_LOSSES, Visible::Node),
        row(
            Node,
            Slow(Duration::from_millis(60)),
            Running,
            none,
            Visible::Nothing,
        ),
        row(Node, Duplicate, Running, none, Visible::Nothing),
        // Only `top`: processes are missing, containers stay.
        row(
            NodeOn("/top"),
            Hang,
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            Status(500),
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            Malformed,
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            WrongTypes,
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            Huge(512 * MIB),
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        // Only image inspects: other nodes may still show a shared image.
        row(
            NodeOn("/images/"),
            Hang,
            FromStart,
            Loses::AtMost(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodeOn("/images/"),
            Status(500),
            FromStart,
            Loses::AtMost(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodeOn("/images/"),
            Truncated,
            FromStart,
            Loses::AtMost(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodeOn("/images/"),
            WrongTypes,
            FromStart,
            Loses::AtMost(&["Image"]),
            Visible::Nothing,
        ),
        // One container's inspect.
        row(
            OneContainer,
            Hang,
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        row(
            OneContainer,
            Status(500),
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        row(
            OneContainer,
            Malformed,
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        row(
            OneContainer,
            Truncated,
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        row(
            OneContainer,
            CloseMidBody,
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        row(
            OneContainer,
            Huge(512 * MIB),
            FromStart,
            CONTAINER_LOSSES,
            Visible::LogContainer,
        ),
        // Wrong label types: the container is still shown, matched by its pod's status;
        // its `top` (wrong types too) is not.
        row(
            OneContainer,
            WrongTypes,
            FromStart,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        // Listed, then gone: not a failure, just no longer there.
        row(
            OneContainer,
            Vanish,
            FromStart,
            CONTAINER_LOSSES,
            Visible::Nothing,
        ),
    ]
}

fn spec() -> SimSpec {
    SimSpec {
        nodes: 2,
        pods_per_node: 2,
        containers_per_pod: 1,
        processes_per_container: 1,
        namespaces: 2,
        services: 2,
        controllers: 1,
        unscheduled_pods: 1,
        standalone_containers_per_node: 1,
        images: 3,
        with_docker: true,
        seed: 7,
    }
}

fn apply(sim: &Simulator, target: Target, fault: &Fault, container: &str) {
    let faults = sim.faults();
    match target {
        Target::Kube => faults.set_kube(fault.clone()),
        Target::KubeOn(path) => faults.set_kube_on(path, fault.clone()),
        Target::Node => faults.set_node(0, fault.clone()),
        Target::NodeOn(path) => faults.set_node_on(0, path, fault.clone()),
        Target::OneContainer => faults.set_node_on(0, container, fault.clone()),
    }
}

/// Longest a refresh may take under the fault: every call that can meet it may use its
/// whole timeout (image and top calls are one per container on node 0), plus slack for a
/// loaded machine.
fn duration_bound_ms(row: &Row, sim: &Simulator) -> f64 {
    let calls = match row.target {
        Target::Kube | Target::KubeOn(_) | Target::Node | Target::OneContainer => 1,
        Target::NodeOn(_) => sim.container_ids(0).len(),
    };
    let per_call = match row.fault {
        Fault::Slow(d) if d.as_secs_f64() < TIMEOUT => d.as_secs_f64() * 20.0,
        _ => TIMEOUT,
    };
    (calls as f64 * per_call + 3.0) * 1000.0
}

fn kube_lists_ok(status: &Value) -> BTreeMap<String, bool> {
    status["sources"]["kubernetes"]["lists"]
        .as_object()
        .map(|lists| {
            lists
                .iter()
                .map(|(k, v)| (k.clone(), v["status"] == "OK"))
                .collect()
        })
        .unwrap_or_default()
}

fn nodes_ok(status: &Value) -> BTreeMap<String, bool> {
    status["sources"]["nodes"]
        .as_object()
        .map(|nodes| {
            nodes
                .iter()
                .map(|(k, v)| (k.clone(), v["status"] == "OK"))
                .collect()
        })
        .unwrap_or_default()
}

/// Whether the snapshot is whole: exactly the simulated cluster, every source OK.
fn whole(master: &MasterProcess, sim: &Simulator) -> Result<(), String> {
    let graph = get(master.addr, "/cluster").json();
    graph_consistency(&graph)?;
    let (resources, relations) = counts(&graph);
    if resources != sim.expected().resources || relations != sim.expected().relations {
        return Err(format!(
            "resources {resources:?} relations {relations:?}, expected {:?}",
            sim.expected()
        ));
    }
    let status = master.status();
    if !kube_lists_ok(&status).values().all(|ok| *ok) || status["sources"]["nodesFailed"] != 0 {
        return Err(format!("a source failed: {status}"));
    }
    Ok(())
}

/// The one check every row goes through.
fn check(row: &Row) {
    let sim = Simulator::start(spec()).unwrap();
    // A running application container of node 0 (index 0 is a pause container).
    let container = sim.container_ids(0)[1].clone();
    if row.phase == Phase::FromStart {
        apply(&sim, row.target, &row.fault, &container);
    }
    let timeout = TIMEOUT.to_string();
    let master = MasterProcess::against(
        &sim,
        &[
            "--refresh-interval",
            "0.3",
            "--kube-timeout",
            &timeout,
            "--docker-timeout",
            &timeout,
            "--debug",
        ],
    );
    if row.phase == Phase::Running {
        master.wait_for_refreshes(1);
        whole(&master, &sim).unwrap_or_else(|e| panic!("before the fault: {e}"));
        apply(&sim, row.target, &row.fault, &container);
    }

    // Two refreshes that began under the fault (the first one counted may have begun
    // before it), then one more, each checked.
    let first = master.wait_for_more_refreshes(1);
    let first_sequence = first["snapshot"]["sequence"].as_u64().unwrap_or(0);
    let bound = duration_bound_ms(row, &sim);
    let mut status = first;
    for _ in 0..2 {
        status = master.wait_for_more_refreshes(1);
        let took = status["refresh"]["lastDurationMs"].as_f64().unwrap();
        assert!(
            took <= bound,
            "a refresh took {took} ms (bound {bound}): {status}"
        );
    }
    assert!(
        status["snapshot"]["sequence"].as_u64().unwrap() > first_sequence,
        "snapshots keep coming: {status}"
    );

    let graph = get(master.addr, "/cluster").json();
    graph_consistency(&graph).unwrap_or_else(|e| panic!("under the fault: {e}"));
    let (resources, _) = counts(&graph);
    let expected = &sim.expected().resources;
    let (may_lose, must_lose): (&[&str], bool) = match row.loses {
        Loses::Nothing => (&[], false),
        Loses::Some(types) => (types, true),
        Loses::AtMost(types) => (types, false),
    };
    let mut lost_any = false;
    for (kind, want) in expected {
        let got = resources.get(kind).copied().unwrap_or(0);
        if may_lose.contains(&kind.as_str()) {
            assert!(got <= *want, "{kind}: {got} of {want}");
            lost_any |= got < *want;
        } else {
            assert_eq!(got, *want, "{kind} must stay whole: {resources:?}");
        }
    }
    assert!(
        !must_lose || lost_any,
        "the fault should cost some of {may_lose:?}: {resources:?}"
    );
    // Whatever one node lost, the other node's containers are all there.
    if matches!(row.target, Target::Node | Target::OneContainer) {
        let other = sim.container_ids(1);
        let ids: Vec<&str> = graph["resources"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|r| r["id"].as_str())
            .collect();
        for id in &other {
            assert!(
                ids.contains(&format!("Container:{id}").as_str()),
                "{id} lost"
            );
        }
    }

    let lists = kube_lists_ok(&status);
    let nodes = nodes_ok(&status);
    let node0 = sim.node_names()[0].clone();
    let log = master.log_text();
    match row.visible {
        Visible::KubeAll => {
            assert!(lists.values().all(|ok| !ok), "{status}");
            assert_eq!(status["sources"]["kubernetes"]["status"], "ERROR");
            assert!(log.contains("Kubernetes API"), "not logged");
        }
        Visible::KubeList(list) => {
            for (name, ok) in &lists {
                assert_eq!(*ok, name != list, "{name}: {status}");
            }
            assert!(
                log.contains(&format!("last good list of {list}")),
                "not logged"
            );
        }
        Visible::Node => {
            assert!(!nodes[&node0], "{status}");
            assert_eq!(status["sources"]["nodesFailed"], 1, "{status}");
            let error = status["sources"]["nodes"][&node0]["error"]
                .as_str()
                .unwrap();
            assert!(!error.is_empty());
            assert!(log.contains(&format!("node {node0}")), "not logged");
        }
        Visible::Log(text) => {
            assert!(log.contains(text), "no {text:?} in the log:\n{log}");
        }
        Visible::LogContainer => {
            assert!(
                log.contains(&container),
                "{container} not in the log:\n{log}"
            );
        }
        Visible::Nothing => {
            assert!(lists.values().all(|ok| *ok), "{status}");
            assert_eq!(status["sources"]["nodesFailed"], 0, "{status}");
        }
    }
    if matches!(row.fault, Fault::Huge(_)) {
        // The master read at most its cap of the body, not the body.
        let peak_mib = master.memory_kib("VmHWM") / 1024;
        assert!(peak_mib < 300, "peak RSS {peak_mib} MiB");
    }

    sim.faults().clear();
    // One refresh may have begun under the fault; the one after must be whole. A machine
    // loaded by the other rows can make a call miss its timeout, so a few more chances.
    master.wait_for_more_refreshes(2);
    let mut outcome = whole(&master, &sim);
    for _ in 0..3 {
        if outcome.is_ok() {
            break;
        }
        master.wait_for_more_refreshes(1);
        outcome = whole(&master, &sim);
    }
    outcome.unwrap_or_else(|e| panic!("after the fault: {e}"));
}

fn describe(row: &Row) -> String {
    format!("{:?} {:?} ({:?})", row.target, row.fault, row.phase)
}

#[test]
fn every_fault_costs_only_what_it_touches() {
    let started = Instant::now();
    // FAULT_ROWS=TEXT runs only the rows whose description contains TEXT.
    let only = std::env::var("FAULT_ROWS").unwrap_or_default();
    let rows: Vec<Row> = rows()
        .into_iter()
        .filter(|r| describe(r).contains(&only))
        .collect();
    let total = rows.len();
    let queue = Mutex::new(rows.into_iter());
    let failures = Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some(row) = queue.lock().unwrap().next() else {
                    return;
                };
                let outcome =
                    std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| check(&row)));
                if let Err(panic) = outcome {
                    let message = panic
                        .downcast_ref::<String>()
                        .cloned()
                        .or_else(|| panic.downcast_ref::<&str>().map(|s| s.to_string()))
                        .unwrap_or_default();
                    failures
                        .lock()
                        .unwrap()
                        .push(format!("{}: {message}", describe(&row)));
                }
            });
        }
    });
    let failures = failures.into_inner().unwrap();
    println!(
        "{total} fault rows, {} failed, in {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
