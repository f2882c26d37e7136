//! The master under faults of its sources, as a table: one row per fault of the Kubernetes
//! API or of one node's Docker API, one check for all rows.
//!
//! What every row must show (contract §3 "Partial data"): while the fault lasts the real binary
//! keeps publishing snapshots, each a consistent graph holding everything it could still
//! collect; only what the faulty source gave is missing; the failure is visible (in
//! `/status`, or in the log where `/status` has no place for it); no refresh is stalled past
//! the per-call timeouts; and once the fault is lifted the next snapshots are whole again
//! (counts equal the simulator's `expected()`). Rows run in parallel, each with its own
//! simulator and master, to keep the file within about a minute.

use crate::support::client;
use crate::support::master;

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use client::get;
use cluster_insight_sim::{Fault, NodeLatency, SimSpec, Simulator};
use master::{counts, graph_consistency, runtime_part, MasterProcess};
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
    /// Every node's requests whose path contains this: for image inspects, which the
    /// master makes once per image ID on whichever node asks first.
    NodesOn(&'static str),
    /// Node 0's requests about one running application container (its inspect and top).
    OneContainer,
    /// Node 0's `GET /node`, in a cluster whose agents serve it (and nothing else is asked).
    Document,
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
    /// These types may have fewer resources than expected, and at least one of them has
    /// (another node may make up for some, e.g. with a shared image).
    Some(&'static [&'static str]),
}

/// Where the failure must show.
#[derive(Debug, Clone, Copy)]
enum Visible {
    /// `/status`: every Kubernetes list is `ERROR`.
    KubeAll,
    /// `/status`: this Kubernetes list is `ERROR`, the others `OK`.
    KubeList(&'static str),
    /// `/status`: this Kubernetes list is `SKIPPED`, the others `OK`, and so is the API.
    KubeSkipped(&'static str),
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
        // A kind of a named group forbidden, or not served (discovery agreeing), from the
        // start: a kind this cluster does not have, or the master's role may not list, is
        // passed over, the rest is whole.
        row(
            KubeOn("/horizontalpodautoscalers"),
            Status(403),
            FromStart,
            Loses::Some(&["HorizontalPodAutoscaler"]),
            Visible::KubeSkipped("horizontalpodautoscalers"),
        ),
        row(
            KubeOn("/apis/autoscaling/v2"),
            Status(404),
            FromStart,
            Loses::Some(&["HorizontalPodAutoscaler"]),
            Visible::KubeSkipped("horizontalpodautoscalers"),
        ),
        // A 404 that discovery contradicts, and a 403 on the core group, which every server
        // serves: failures (a wrong URL, a missing binding), never a healthy empty list.
        row(
            KubeOn("/horizontalpodautoscalers"),
            Status(404),
            FromStart,
            Loses::Some(&["HorizontalPodAutoscaler"]),
            Visible::KubeList("horizontalpodautoscalers"),
        ),
        row(
            KubeOn("/replicationcontrollers"),
            Status(403),
            FromStart,
            Loses::Some(&["ReplicationController"]),
            Visible::KubeList("replicationcontrollers"),
        ),
        // Forbidden after it was listed: a failure, and the last good list stays.
        row(
            KubeOn("/deployments"),
            Status(403),
            Running,
            none,
            Visible::KubeList("deployments"),
        ),
        // A bad object in a good list: that object is skipped, the others stay. (From the
        // start: a kind already listed is kept by its watch, which a list's fault does not
        // reach.)
        row(
            KubeOn("/pods"),
            WrongTypes,
            FromStart,
            Loses::Some(&["Pod"]),
            Visible::Log("skipping an object"),
        ),
        row(
            KubeOn("/services"),
            WrongTypes,
            FromStart,
            Loses::Some(&["Service"]),
            Visible::Log("skipping an object"),
        ),
        row(
            KubeOn("/nodes"),
            WrongTypes,
            FromStart,
            Loses::Some(&["Node", "Container", "Process", "Image"]),
            Visible::Log("skipping an object"),
        ),
        // Every call to one node's Docker API: that node's containers are missing. (Refusal
        // is per address, so it has no row per path.)
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
        // A bad entry in the container list costs that container; wrong types in inspects
        // (labels, name) and images (tags) cost nothing; in `top`, the processes.
        row(
            Node,
            WrongTypes,
            Running,
            CONTAINER_LOSSES,
            Visible::Log("malformed entries"),
        ),
        row(
            NodeOn("/containers/json"),
            WrongTypes,
            Running,
            CONTAINER_LOSSES,
            Visible::Log("malformed entries"),
        ),
        row(Node, Huge(512 * MIB), Running, NODE_LOSSES, Visible::Node),
        row(
            Node,
            Slow(Duration::from_millis(60)),
            Running,
            none,
            Visible::Nothing,
        ),
        row(Node, Duplicate, Running, none, Visible::Nothing),
        // The agent's one document: what it costs is that node's runtime data, as when the
        // whole node fails; an agent that stops serving it is read through the Docker paths.
        row(Document, Hang, Running, NODE_LOSSES, Visible::Node),
        row(
            Document,
            Slow(Duration::from_secs(3)),
            Running,
            NODE_LOSSES,
            Visible::Node,
        ),
        row(Document, Status(500), Running, NODE_LOSSES, Visible::Node),
        // A damaged body from the start: later, an unchanged node answers 304, which has
        // none to damage.
        row(
            Document,
            CloseMidBody,
            FromStart,
            NODE_LOSSES,
            Visible::Node,
        ),
        row(Document, Malformed, FromStart, NODE_LOSSES, Visible::Node),
        row(Document, Truncated, FromStart, NODE_LOSSES, Visible::Node),
        row(
            Document,
            Huge(512 * MIB),
            FromStart,
            NODE_LOSSES,
            Visible::Node,
        ),
        row(Document, Duplicate, Running, none, Visible::Nothing),
        row(
            Document,
            Status(404),
            Running,
            none,
            Visible::Log("does not serve /node"),
        ),
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
        row(
            NodeOn("/top"),
            Slow(Duration::from_secs(3)),
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            CloseMidBody,
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        row(
            NodeOn("/top"),
            Truncated,
            Running,
            Loses::Some(&["Process"]),
            Visible::Log("top of container"),
        ),
        // A container that stopped between the list and `top`: no processes, no failure.
        row(
            NodeOn("/top"),
            Vanish,
            Running,
            Loses::Some(&["Process"]),
            Visible::Nothing,
        ),
        // Only image inspects: images are missing, containers stay.
        row(
            NodesOn("/images/"),
            Hang,
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodesOn("/images/"),
            Status(500),
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodesOn("/images/"),
            Truncated,
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodesOn("/images/"),
            Huge(512 * MIB),
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodesOn("/images/"),
            Malformed,
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        row(
            NodesOn("/images/"),
            CloseMidBody,
            FromStart,
            Loses::Some(&["Image"]),
            Visible::Log("inspect of image"),
        ),
        // Tags of the wrong type: the image is still shown.
        row(
            NodesOn("/images/"),
            WrongTypes,
            FromStart,
            none,
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
            Slow(Duration::from_secs(3)),
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
        deployments: 1,
        statefulsets: 0,
        daemonsets: 0,
        cronjobs: 0,
        unscheduled_pods: 1,
        standalone_containers_per_node: 1,
        images: 3,
        with_docker: true,
        containerd_nodes: 0,
        node_documents: false,
        latency: NodeLatency::none(),
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
        Target::NodesOn(path) => {
            for node in 0..sim.node_names().len() {
                faults.set_node_on(node, path, fault.clone());
            }
        }
        Target::OneContainer => faults.set_node_on(0, container, fault.clone()),
        Target::Document => faults.set_node_on(0, "/node", fault.clone()),
    }
}

/// Longest a refresh may take under the fault: every call that can meet it may use its
/// whole timeout (image and top calls are one per container on node 0), plus slack for a
/// loaded machine.
fn duration_bound_ms(row: &Row, sim: &Simulator) -> f64 {
    let calls = match row.target {
        Target::Kube
        | Target::KubeOn(_)
        | Target::Node
        | Target::OneContainer
        | Target::Document => 1,
        Target::NodeOn(_) | Target::NodesOn(_) => sim.container_ids(0).len(),
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
    let spec = SimSpec {
        node_documents: matches!(row.target, Target::Document),
        ..spec()
    };
    let sim = Simulator::start(spec).unwrap();
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

    // The watches meet a Kubernetes fault on their own time (set_kube drops the open ones,
    // and garbage or a cut comes with the next event or bookmark): wait until it shows.
    if row.phase == Phase::Running && matches!(row.target, Target::Kube | Target::KubeOn(_)) {
        let shows = |status: &Value| {
            let lists = kube_lists_ok(status);
            match row.visible {
                Visible::KubeAll => lists.values().all(|ok| !ok),
                Visible::KubeList(list) => lists.get(list) == Some(&false),
                _ => true,
            }
        };
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while !shows(&master.status()) && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(100));
        }
    }
    // Two refreshes that began under the fault (the first one counted may have begun
    // before it), then one more, each checked.
    let first = master.wait_for_more_refreshes(1);
    let first_refresh = first["refresh"]["count"].as_u64().unwrap_or(0);
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
    // Refreshes keep completing, and a snapshot stays published (the same one while the
    // graph does not change).
    assert!(
        status["refresh"]["count"].as_u64().unwrap() >= first_refresh + 2
            && status["snapshot"]["sequence"].as_u64().is_some(),
        "refreshes keep coming: {status}"
    );

    let graph = get(master.addr, "/cluster").json();
    graph_consistency(&graph).unwrap_or_else(|e| panic!("under the fault: {e}"));
    // What a failed node's pods' statuses tell of its containers and images stands in for
    // what its runtime would have said: counted apart.
    let (resources, _) = counts(&runtime_part(&graph));
    let expected = &sim.expected().resources;
    let (may_lose, must_lose): (&[&str], bool) = match row.loses {
        Loses::Nothing => (&[], false),
        Loses::Some(types) => (types, true),
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
        Visible::KubeSkipped(list) => {
            let skipped = &status["sources"]["kubernetes"]["lists"][list];
            assert_eq!(skipped["status"], "SKIPPED", "{status}");
            assert!(
                skipped["error"]
                    .as_str()
                    .is_some_and(|e| e.contains("GET ")),
                "why is said: {status}"
            );
            for (name, ok) in &lists {
                assert!(*ok || name == list, "{name}: {status}");
            }
            assert_eq!(status["sources"]["kubernetes"]["status"], "OK", "{status}");
            let said = format!("passing over {list}");
            assert_eq!(log.matches(&said).count(), 1, "said once:\n{log}");
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
    // loaded by the other rows can make a call miss its timeout, so a few more chances; a
    // watch that failed comes back after its back-off (at most 8 s).
    master.wait_for_more_refreshes(2);
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut outcome = whole(&master, &sim);
    let mut chances = 3u32;
    while outcome.is_err() && (chances > 0 || Instant::now() < deadline) {
        chances = chances.saturating_sub(1);
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
    let queue = parking_lot::Mutex::new(rows.into_iter());
    let failures = parking_lot::Mutex::new(Vec::new());
    std::thread::scope(|s| {
        for _ in 0..6 {
            s.spawn(|| loop {
                let Some(row) = queue.lock().next() else {
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
                        .push(format!("{}: {message}", describe(&row)));
                }
            });
        }
    });
    let failures = failures.into_inner();
    println!(
        "{total} fault rows, {} failed, in {:.1} s",
        failures.len(),
        started.elapsed().as_secs_f64()
    );
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}

// ---------------------------------------------------------------------------------------
// Secrets under faults

const TOKEN: &str = "tok-5ecre7-0f-the-cluster";

fn token_file(name: &str) -> std::path::PathBuf {
    let dir = std::env::temp_dir().join(format!("ci-faults-{name}-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("token");
    std::fs::write(&path, format!("{TOKEN}\n")).unwrap();
    path
}

/// Every body the master serves, plain and gzip (decompressed).
fn every_body(master: &MasterProcess) -> Vec<(String, String)> {
    use std::io::Read;
    let mut out = Vec::new();
    for path in [
        "/",
        "/api",
        "/cluster",
        "/cluster/resources",
        "/cluster/resources/containers",
        "/cluster/resources/Container",
        "/cluster/resources/pods",
        "/cluster/resources/images",
        "/cluster/resources/processes",
        "/cluster/resources/nodes",
        "/debug",
        "/status",
        "/version",
        "/healthz",
        "/no-such-page",
    ] {
        out.push((path.to_string(), get(master.addr, path).text()));
        let zipped = client::request(master.addr, "GET", path, &[("Accept-Encoding", "gzip")]);
        if zipped.header("Content-Encoding") == Some("gzip") {
            let mut text = String::new();
            flate2::read::GzDecoder::new(&zipped.body[..])
                .read_to_string(&mut text)
                .unwrap();
            out.push((format!("{path} (gzip)"), text));
        }
    }
    out
}

/// An API server on loopback that answers every request 401 with a `Status`, and records
/// whether the bearer token came with it. Stops with the flag, within its accept timeout.
fn rejecting_api_server(
    stop: &'static AtomicBool,
    saw_token: &'static AtomicBool,
) -> std::net::SocketAddr {
    use std::io::{BufRead, BufReader, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        while !stop.load(Ordering::Relaxed) {
            let Ok((stream, _)) = listener.accept() else {
                std::thread::sleep(Duration::from_millis(10));
                continue;
            };
            let _ = stream.set_nonblocking(false);
            let _ = stream.set_read_timeout(Some(Duration::from_secs(2)));
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            let mut echoed = String::new();
            while reader.read_line(&mut line).is_ok_and(|n| n > 2) {
                let header = line.trim().split_once(':');
                if header.is_some_and(|(name, value)| {
                    name.eq_ignore_ascii_case("authorization")
                        && value.trim() == format!("Bearer {TOKEN}")
                }) {
                    saw_token.store(true, Ordering::Relaxed);
                    echoed = line.trim().to_string();
                }
                line.clear();
            }
            // As some proxies do: the request's Authorization header, echoed in the error.
            let body = format!(
                r#"{{"kind":"Status","apiVersion":"v1","status":"Failure","message":"Unauthorized: {echoed}","reason":"Unauthorized","code":401}}"#
            );
            let mut stream = stream;
            let _ = write!(
                stream,
                "HTTP/1.1 401 Unauthorized\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
        }
    });
    addr
}

#[test]
fn the_token_stays_out_of_logs_and_answers_on_every_error_path() {
    static STOP: AtomicBool = AtomicBool::new(false);
    static SAW_TOKEN: AtomicBool = AtomicBool::new(false);
    let token = token_file("token");
    let token_arg = token.to_str().unwrap();
    let quick = [
        "--refresh-interval",
        "0.2",
        "--kube-timeout",
        "0.5",
        "--docker-timeout",
        "0.5",
        "--debug",
        "--token-file",
        token_arg,
    ];
    let mut failures = Vec::new();
    let mut check = |what: &str, master: &MasterProcess| {
        if master.log_text().contains(TOKEN) {
            failures.push(format!("{what}: the log holds the token"));
        }
        for (path, body) in every_body(master) {
            if body.contains(TOKEN) {
                failures.push(format!("{what}: {path} holds the token"));
            }
        }
    };

    // Every fault of the API server, at debug level.
    let sim = Simulator::start(spec()).unwrap();
    let master = MasterProcess::against(&sim, &quick);
    master.wait_for_refreshes(1);
    for fault in [
        Fault::Status(401),
        Fault::Status(403),
        Fault::Status(500),
        Fault::Malformed,
        Fault::Truncated,
        Fault::CloseMidBody,
        Fault::Hang,
        Fault::Refuse,
    ] {
        sim.faults().set_kube(fault);
        master.wait_for_more_refreshes(2);
        sim.faults().clear();
    }
    master.wait_for_more_refreshes(1);
    assert!(
        master.log_text().contains("Kubernetes API"),
        "errors were logged"
    );
    check("API server faults", &master);
    drop(master);

    // TLS to a server that speaks plain HTTP: the handshake fails.
    let https = format!("https://{}", sim.kube_addr());
    for extra in [&[][..], &["--insecure-skip-tls-verify"][..]] {
        let mut args = vec!["--kubernetes-url", https.as_str()];
        args.extend_from_slice(&quick);
        args.extend_from_slice(extra);
        let master = MasterProcess::start(&args);
        master.wait_for_attempts(2);
        assert_eq!(master.status()["sources"]["kubernetes"]["status"], "ERROR");
        check(&format!("TLS failure {extra:?}"), &master);
    }

    // An API server that rejects the token it was sent.
    let addr = rejecting_api_server(&STOP, &SAW_TOKEN);
    let url = format!("http://{addr}");
    let mut args = vec!["--kubernetes-url", url.as_str()];
    args.extend_from_slice(&quick);
    let master = MasterProcess::start(&args);
    master.wait_for_attempts(2);
    STOP.store(true, Ordering::Relaxed);
    assert!(SAW_TOKEN.load(Ordering::Relaxed), "the token was sent");
    let status = master.status();
    assert!(
        status.to_string().contains("Unauthorized") || status.to_string().contains("401"),
        "{status}"
    );
    check("401 from the API server", &master);
    drop(master);
    let _ = std::fs::remove_dir_all(token.parent().unwrap());
    assert!(failures.is_empty(), "{failures:#?}");
}

/// The values of the simulated containers' environments, read from the simulator's Docker
/// API directly: what must never be served without `--show-env`.
fn container_env_values(sim: &Simulator) -> Vec<String> {
    let mut values = Vec::new();
    for (node, addr) in sim.node_addresses().iter().enumerate() {
        let addr = std::net::SocketAddr::from((*addr, sim.docker_port()));
        for id in sim.container_ids(node) {
            let inspect = get(addr, &format!("/containers/{id}/json")).json();
            let image = inspect["Image"].as_str().unwrap_or("").to_string();
            let image_env =
                get(addr, &format!("/images/{image}/json")).json()["Config"]["Env"].clone();
            for e in inspect["Config"]["Env"].as_array().into_iter().flatten() {
                let entry = e.as_str().unwrap_or("");
                let from_image = image_env
                    .as_array()
                    .is_some_and(|list| list.iter().any(|i| i == e));
                if entry.contains('=') && !from_image {
                    values.push(entry.to_string());
                }
            }
        }
    }
    values
}

#[test]
fn container_env_values_are_redacted_in_every_body_and_the_debug_log() {
    let sim = Simulator::start(spec()).unwrap();
    let secrets = container_env_values(&sim);
    assert!(
        !secrets.is_empty(),
        "the simulated containers carry secrets"
    );
    let master = MasterProcess::against(&sim, &["--refresh-interval", "0.2", "--debug"]);
    master.wait_for_refreshes(2);
    // Under a fault too: the inspect of one container fails, is logged, and is retried.
    sim.faults()
        .set_node_on(0, &sim.container_ids(0)[1], Fault::Malformed);
    master.wait_for_more_refreshes(2);
    sim.faults().clear();
    master.wait_for_more_refreshes(2);
    let mut leaks = Vec::new();
    let bodies = every_body(&master);
    for (path, body) in &bodies {
        for secret in &secrets {
            // The entry as Docker writes it; a pod spec names values in its own form, and
            // that is the Kubernetes object as observed.
            if body.contains(&format!("\"{secret}\"")) {
                leaks.push(format!("{path} holds {secret}"));
            }
        }
    }
    let log = master.log_text();
    for secret in &secrets {
        if log.contains(secret.as_str()) {
            leaks.push(format!("the log holds {secret}"));
        }
    }
    assert!(leaks.is_empty(), "{leaks:#?}");
    let containers = &bodies
        .iter()
        .find(|(p, _)| p == "/cluster/resources/containers")
        .unwrap()
        .1;
    assert!(containers.contains("=<redacted>"));
}
