//! The real master under load: concurrent clients read `/cluster` for a bounded time while
//! the master refreshes every 0.2 s against a simulated cluster that keeps changing
//! (heartbeats, restarted containers, growing exec lists, deleted pods).
//!
//! What must hold: every answer is a complete, valid, consistent graph (unique IDs, every
//! relation's ends present), never a mix of two snapshots (its counts are exactly those
//! `/status` reported for the snapshot with the same timestamp), and once the load ends the
//! master's resident memory comes back near where it was before.

use crate::support::client;
use crate::support::master;

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use client::get;
use cluster_insight_sim::{SimSpec, Simulator};
use master::{graph_consistency, MasterProcess};
use serde_json::Value;

const CLIENTS: usize = 16;
const LOAD: Duration = Duration::from_secs(10);

type Counts = BTreeMap<String, u64>;

fn resource_counts(graph: &Value) -> Counts {
    let mut out = Counts::new();
    for r in graph["resources"].as_array().into_iter().flatten() {
        *out.entry(r["type"].as_str().unwrap_or("").to_string())
            .or_default() += 1;
    }
    out
}

/// Changes the cluster now and then until `stop`: what a live cluster does between two
/// refreshes of its master.
fn mutate_until(sim: &parking_lot::Mutex<Simulator>, stop: &AtomicBool) -> usize {
    let mut n: u64 = 0;
    let mut changes = 0;
    let mut deleted = 0;
    while !stop.load(Ordering::Relaxed) {
        n += 1;
        // A cheap fixed sequence that visits every node and container position.
        let mix = n.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32;
        {
            let mut sim = sim.lock();
            let nodes = sim.node_names().len();
            let node = (mix as usize) % nodes;
            let containers = sim.container_ids(node).len().max(1);
            sim.heartbeat();
            sim.restart_container(node, (mix as usize / 7) % containers);
            if n.is_multiple_of(5) {
                sim.add_exec_ids(node, (mix as usize / 3) % containers, 50);
            }
            if n.is_multiple_of(15) && deleted < 6 {
                let pods = sim.pods();
                if let Some((ns, name, _)) = pods.get((mix as usize) % pods.len().max(1)) {
                    let (ns, name) = (ns.clone(), name.clone());
                    if sim.delete_pod(&ns, &name) {
                        deleted += 1;
                    }
                }
            }
            changes += 1;
        }
        std::thread::sleep(Duration::from_millis(120));
    }
    changes
}

#[test]
fn concurrent_clients_always_get_whole_consistent_snapshots() {
    let spec = SimSpec {
        nodes: 3,
        pods_per_node: 4,
        ..SimSpec::default()
    };
    let sim = parking_lot::Mutex::new(Simulator::start(spec).unwrap());
    let master = {
        let sim = sim.lock();
        MasterProcess::against(
            &sim,
            &[
                "--refresh-interval",
                "0.2",
                "--kube-timeout",
                "3",
                "--docker-timeout",
                "3",
            ],
        )
    };
    master.wait_for_refreshes(2);
    // Warm up: the worker threads and their buffers exist before the first reading.
    for _ in 0..CLIENTS {
        assert_eq!(get(master.addr, "/cluster").status, 200);
    }
    master.wait_for_more_refreshes(3);
    let rss_before = master.memory_kib("VmRSS");

    let stop = AtomicBool::new(false);
    let requests = AtomicUsize::new(0);
    let bytes = AtomicUsize::new(0);
    // Counts by snapshot timestamp, as /status and as the bodies show them.
    let from_status: parking_lot::Mutex<HashMap<String, Counts>> =
        parking_lot::Mutex::new(HashMap::new());
    let from_bodies: parking_lot::Mutex<Vec<(String, Counts)>> =
        parking_lot::Mutex::new(Vec::new());
    let torn_status = parking_lot::Mutex::new(Vec::new());
    let started = Instant::now();
    let changes = std::thread::scope(|s| {
        let mutator = s.spawn(|| mutate_until(&sim, &stop));
        s.spawn(|| {
            while !stop.load(Ordering::Relaxed) {
                let status = master.status();
                if let Some(ts) = status["snapshot"]["timestamp"].as_str() {
                    let counts: Counts = status["counts"]["resources"]
                        .as_object()
                        .map(|m| {
                            m.iter()
                                .map(|(k, v)| (k.clone(), v.as_u64().unwrap_or(0)))
                                .collect()
                        })
                        .unwrap_or_default();
                    let mut seen = from_status.lock();
                    if let Some(before) = seen.get(ts) {
                        if before != &counts {
                            torn_status
                                .lock()
                                .push(format!("{ts}: {before:?} then {counts:?}"));
                        }
                    } else {
                        seen.insert(ts.to_string(), counts);
                    }
                }
                std::thread::sleep(Duration::from_millis(10));
            }
        });
        let clients: Vec<_> = (0..CLIENTS)
            .map(|_| {
                s.spawn(|| {
                    while started.elapsed() < LOAD {
                        let reply = get(master.addr, "/cluster");
                        assert_eq!(reply.status, 200, "{}", reply.text());
                        let graph: Value = serde_json::from_slice(&reply.body)
                            .unwrap_or_else(|e| panic!("an incomplete or invalid body: {e}"));
                        graph_consistency(&graph).unwrap_or_else(|e| panic!("{e}"));
                        requests.fetch_add(1, Ordering::Relaxed);
                        bytes.fetch_add(reply.body.len(), Ordering::Relaxed);
                        let ts = graph["timestamp"].as_str().unwrap().to_string();
                        from_bodies.lock().push((ts, resource_counts(&graph)));
                    }
                })
            })
            .collect();
        for c in clients {
            if let Err(panic) = c.join() {
                stop.store(true, Ordering::Relaxed);
                std::panic::resume_unwind(panic);
            }
        }
        stop.store(true, Ordering::Relaxed);
        mutator.join().unwrap()
    });
    let elapsed = started.elapsed();

    // Every body is one snapshot: its counts are those /status gave for its timestamp.
    let from_status = from_status.into_inner();
    let from_bodies = from_bodies.into_inner();
    let mut matched = 0;
    let mut snapshots = std::collections::HashSet::new();
    for (ts, counts) in &from_bodies {
        snapshots.insert(ts.clone());
        if let Some(expected) = from_status.get(ts) {
            assert_eq!(
                counts, expected,
                "the body of snapshot {ts} is not that snapshot"
            );
            matched += 1;
        }
    }
    let torn = torn_status.into_inner();
    assert!(torn.is_empty(), "/status mixed two snapshots: {torn:?}");
    assert!(matched > 0, "no body's snapshot was seen in /status");
    assert!(
        snapshots.len() > 5,
        "only {} snapshots served during the load",
        snapshots.len()
    );

    // Memory comes back: the refreshes after the load hold no more than before, within a
    // bound for allocator slack.
    master.wait_for_more_refreshes(5);
    let rss_after = master.memory_kib("VmRSS");
    let requests = requests.load(Ordering::Relaxed);
    println!(
        "{CLIENTS} clients, {requests} /cluster requests ({:.0} MiB) in {:.1} s over {} \
         snapshots while {changes} cluster changes were made; {matched} bodies checked against \
         /status; RSS before {rss_before} KiB, after {rss_after} KiB",
        bytes.load(Ordering::Relaxed) as f64 / (1 << 20) as f64,
        elapsed.as_secs_f64(),
        snapshots.len()
    );
    assert!(
        rss_after <= rss_before + rss_before / 2 + 8 * 1024,
        "RSS grew from {rss_before} KiB to {rss_after} KiB"
    );
}
