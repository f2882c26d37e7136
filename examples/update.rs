//! The graph made from the last one, measured without the master around it: what a build
//! between refreshes costs at a size (default `kube-only`: 5,000 nodes, 150,000 pods, no
//! agents). The cluster simulator serves the objects on loopback; they are listed once,
//! sorted as the watches keep them, and built whole. Then, one build at a time, as the
//! collector makes them: a pod's label changed (in place), a pod deleted and one added
//! (spliced). Each step reports the nodes told by pods' statuses, `graph::update`, and the
//! snapshot written from the last one, median and maximum over `--rounds` (default 10).
//!
//! Run: `cargo run --release --example update -- [--size SPEC] [--rounds N]`

use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_insight::collect::agentless::{nodes_without_runtime, Learnt};
use cluster_insight::collect::kube::{KubeClient, KubeConfig};
use cluster_insight::collect::objects::parse_object;
use cluster_insight::graph::observed::{Collected, KubeObject, KubeState};
use cluster_insight::graph::update::{update, Kept};
use cluster_insight::graph::{build_with_basis, BuildOptions, History, Kind};
use cluster_insight::publish::snapshot::{render, render_update};
use cluster_insight_sim::{SimSpec, Simulator};
use serde_json::value::RawValue;

const KUBE_ONLY: &str =
    "nodes=5000,pods-per-node=30,docker=false,deployments=3000,statefulsets=300,daemonsets=3,cronjobs=300";

fn main() {
    let mut size = KUBE_ONLY.to_string();
    let mut rounds = 10;
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--size" => size = args.next().expect("--size SPEC"),
            "--rounds" => {
                rounds = args
                    .next()
                    .and_then(|n| n.parse().ok())
                    .expect("--rounds N")
            }
            other => {
                eprintln!("unknown argument {other}; see the file's page");
                std::process::exit(2);
            }
        }
    }
    let spec = SimSpec::parse_size(&size).expect("a size");
    let sim = Simulator::start(spec).expect("the simulator starts");
    let client = KubeClient::new(&KubeConfig::new(&sim.kube_url())).expect("a client");
    let mut kube = KubeState::default();
    for kind in Kind::listed() {
        let Some(path) = kind.list_path() else {
            continue;
        };
        let Ok(list) = client.list(&path, |raw| parse_object(kind, raw)) else {
            continue;
        };
        let mut items: Vec<Arc<KubeObject>> = list.items.into_iter().map(Arc::new).collect();
        items.sort_by(|a, b| key(a).cmp(&key(b)));
        items.dedup_by(|a, b| key(a) == key(b));
        kube.set(kind, items);
    }
    sim.shutdown();
    println!("{} pods listed", kube.of(Kind::POD).len());

    let options = BuildOptions {
        cluster_name: "bench".into(),
    };
    let mut learnt = Learnt::default();
    let started = Instant::now();
    let first = collected(kube.clone(), &mut learnt);
    let (graph, mut history, mut basis) = build_with_basis(first, &options, 1, &History::default());
    let mut snapshot = render(graph, "bench", 1);
    println!(
        "built whole in {} ms: {} resources, {} relations",
        started.elapsed().as_millis(),
        snapshot.graph().resources.len(),
        snapshot.graph().relations.len()
    );

    let mut times: Vec<(&str, [Vec<Duration>; 3])> = Vec::new();
    for step in ["a label changed", "a pod deleted", "a pod added"] {
        let mut spent: [Vec<Duration>; 3] = Default::default();
        for round in 0..rounds {
            let pods = kube.of_mut(Kind::POD);
            let at = (round * 7919) % pods.len();
            match step {
                "a label changed" => pods[at] = Arc::new(relabelled(&pods[at], round)),
                "a pod deleted" => {
                    pods.remove(at);
                }
                _ => {
                    let pod = renamed(&pods[at], round);
                    let at = pods.partition_point(|p| key(p) < key(&pod));
                    pods.insert(at, Arc::new(pod));
                }
            }
            let started = Instant::now();
            let next = collected(kube.clone(), &mut learnt);
            let told = started.elapsed();
            let now = 2 + round as i64;
            let updated = update(snapshot.graph(), &mut basis, &mut history, next, now)
                .unwrap_or_else(|not| panic!("{step}: not followed: {}", not.why));
            let made = started.elapsed();
            let expected = if step == "a label changed" {
                matches!(updated.kept, Kept::AllBut(_))
            } else {
                matches!(updated.kept, Kept::Moved { .. })
            };
            assert!(expected, "{step}: made another way");
            snapshot = render_update(&snapshot, updated.graph, &updated.kept, "bench", now as u64);
            let rendered = started.elapsed();
            spent[0].push(told);
            spent[1].push(made - told);
            spent[2].push(rendered - made);
        }
        times.push((step, spent));
    }
    println!("\n| step | pods' nodes p50 / max | graph p50 / max | snapshot p50 / max |");
    println!("| --- | --- | --- | --- |");
    for (step, spent) in &mut times {
        let cells: Vec<String> = spent
            .iter_mut()
            .map(|d| {
                d.sort();
                format!(
                    "{} / {} ms",
                    d[d.len() / 2].as_millis(),
                    d[d.len() - 1].as_millis()
                )
            })
            .collect();
        println!("| {step} | {} |", cells.join(" | "));
    }
}

/// What a build between refreshes is given: the objects, and every node as its pods tell it.
fn collected(kube: KubeState, learnt: &mut Learnt) -> Collected {
    let nodes = nodes_without_runtime(&kube, &[], learnt);
    Collected {
        kube,
        nodes,
        unread_nodes: Vec::new(),
    }
}

fn key(o: &KubeObject) -> (&str, &str) {
    (&o.meta.namespace, &o.meta.name)
}

/// `pod` with a label no selector reads set to `value`.
fn relabelled(pod: &KubeObject, value: usize) -> KubeObject {
    edited(pod, |v| {
        v["metadata"]["labels"]["bench-round"] = value.to_string().into();
    })
}

/// `pod` under another name and uid, as a new pod of the same workload.
fn renamed(pod: &KubeObject, round: usize) -> KubeObject {
    edited(pod, |v| {
        let name = format!("{}-bench-{round}", pod.meta.name);
        v["metadata"]["name"] = name.clone().into();
        v["metadata"]["uid"] = format!("bench-{name}").into();
        // Containers of its own.
        if let Some(statuses) = v["status"]["containerStatuses"].as_array_mut() {
            for status in statuses {
                if let Some(id) = status["containerID"].as_str() {
                    status["containerID"] = format!("{id}{round:04}").into();
                }
            }
        }
    })
}

fn edited(object: &KubeObject, edit: impl FnOnce(&mut serde_json::Value)) -> KubeObject {
    let mut value: serde_json::Value = serde_json::from_str(object.text()).expect("JSON");
    edit(&mut value);
    let raw = RawValue::from_string(value.to_string()).expect("JSON");
    parse_object(object.kind, &raw).expect("an object")
}
