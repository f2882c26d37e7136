//! The benchmark: the real master binary against the cluster simulator at several sizes,
//! all on loopback. For each size it reports the first and a steady refresh (wall and CPU
//! time), the master's peak RSS, the calls one refresh makes to the Kubernetes API and to
//! the minions, the size of `/cluster` (plain and gzip), and `/cluster` latency and
//! throughput with 1, 16 and 64 concurrent clients.
//!
//! Run: `cargo build --release && cargo run --release --example bench -- [--sizes a,b] [--out DIR]`
//! Sizes: `small` (10 nodes / 300 pods), `medium` (100 / 3,000), `large` (1,000 / 30,000),
//! `kube-only` (5,000 / 150,000, no minions), or any `--size`-style spec such as
//! `nodes=20,pods-per-node=10`. Every node API answers with the latency of a real one
//! (`latency=realistic`). Results go to DIR/bench.json and DIR/bench.md (default
//! `bench-results/`).
//!
//! `--stability` measures instead how soon the graph is complete and how often it changes
//! while the cluster does not: twelve refreshes of an unchanged cluster at 50, 300 and 1,000
//! nodes (`node-50` … `node-1000`: every agent answers `GET /node`; `docker-50` …
//! `docker-1000`: older agents, read call by call through Docker), noting for each refresh
//! whether the graph held every resource and a hash of `/cluster` after its timestamp.
//! `--watch` measures, at `kube-only` (150,000 pods, no agents) unless `--sizes` names
//! another, what a steady cluster costs the master once its kinds are watched (CPU per
//! minute over a minute, lists made), how long a pod deleted in the simulator takes to
//! leave the published graph (`/status` counts, 20 deletions one after the other, p50 and
//! p99), the same for 50 deletions at 10 a second, and the peak RSS.
//! `--changes` measures the live graph at `kube-only` unless `--sizes` names another: a
//! stream client follows `/cluster/changes/stream` while pods change (a label each) at
//! `--rate` a second (default 100) for 60 s; the time from each change in the simulator to
//! its event on the stream, and (for every tenth) to its appearance in the published graph
//! (`/cluster/resources/pods/NS/NAME`), p50 and p99; the master's CPU and memory meanwhile
//! and what the history kept (`--history`, default 1h); how long `/cluster/changes` takes to answer the whole minute
//! and the last 1,000 changed resources; and `/cluster?at=` of the minute's start.
//! `--auth` measures what authorization costs a request: `GET /version` answered with no
//! authorization, with a static token, and delegated to the (simulated) API server with the
//! review cached and with every request a new token (a TokenReview and a SubjectAccessReview
//! each, over loopback HTTP).
//! `--binary PATH` measures another build of the master (the simulator is this one).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster_insight_sim::{SimSpec, Simulator};
use cluster_insight_wire::head::Parse;
use serde_json::{json, Value};

/// Every kind at every size: about one Deployment (with its ReplicaSet, Service, Ingress and
/// autoscaler) per 50 pods, a StatefulSet (a claim and a volume per pod) and a CronJob per
/// 500, three DaemonSets (a pod on every node each). Half the nodes run containerd, half
/// Docker, and every node's agent serves `/node`, as a current install does.
const NAMED: &[(&str, &str)] = &[
    (
        "small",
        "nodes=10,pods-per-node=30,deployments=6,statefulsets=1,daemonsets=3,cronjobs=1,containerd-nodes=5,node-documents=true,latency=realistic",
    ),
    (
        "medium",
        "nodes=100,pods-per-node=30,deployments=60,statefulsets=6,daemonsets=3,cronjobs=6,containerd-nodes=50,node-documents=true,latency=realistic",
    ),
    (
        "large",
        "nodes=1000,pods-per-node=30,deployments=600,statefulsets=60,daemonsets=3,cronjobs=60,containerd-nodes=500,node-documents=true,latency=realistic",
    ),
    (
        "kube-only",
        "nodes=5000,pods-per-node=30,docker=false,deployments=3000,statefulsets=300,daemonsets=3,cronjobs=300",
    ),
];

/// The stability sizes: the same cluster shape at three sizes, read through `GET /node`
/// (half containerd, half Docker nodes) or call by call through Docker.
fn stability_spec(name: &str) -> Option<String> {
    let (path, nodes) = name.split_once('-')?;
    let nodes: usize = nodes.parse().ok()?;
    let readers = match path {
        "node" => format!("containerd-nodes={},node-documents=true", nodes / 2),
        "docker" => "containerd-nodes=0,node-documents=false".to_string(),
        _ => return None,
    };
    let per_50 = (nodes * 30 / 50).max(1);
    let per_500 = (nodes * 30 / 500).max(1);
    Some(format!(
        "nodes={nodes},pods-per-node=30,deployments={per_50},statefulsets={per_500},daemonsets=3,cronjobs={per_500},{readers},latency=realistic"
    ))
}

const STABILITY_SIZES: &str = "node-50,docker-50,node-300,docker-300,node-1000,docker-1000";

fn main() {
    let mut sizes = vec!["small".to_string(), "medium".to_string()];
    let mut sizes_given = false;
    let mut stability = false;
    let mut auth = false;
    let mut watch = false;
    let mut changes = false;
    let mut rate = 100.0;
    let mut history = "1h".to_string();
    let mut binary = None;
    let mut out = PathBuf::from("bench-results");
    let mut args = std::env::args().skip(1);
    while let Some(arg) = args.next() {
        match arg.as_str() {
            "--stability" => stability = true,
            "--auth" => auth = true,
            "--watch" => watch = true,
            "--changes" => changes = true,
            "--rate" => rate = args.next().expect("--rate N").parse().expect("--rate N"),
            "--history" => history = args.next().expect("--history DURATION"),
            "--binary" => binary = Some(PathBuf::from(args.next().expect("--binary PATH"))),
            "--sizes" => {
                sizes = args
                    .next()
                    .expect("--sizes LIST")
                    .split(';')
                    .flat_map(|s| s.split('|'))
                    .map(String::from)
                    .collect();
                sizes_given = true;
            }
            "--out" => out = PathBuf::from(args.next().expect("--out DIR")),
            "-h" | "--help" => {
                println!("bench [--sizes small|medium|large|kube-only|SPEC[;...]] [--stability] [--auth] [--watch] [--changes [--rate N] [--history D]] [--binary PATH] [--out DIR]");
                return;
            }
            other => panic!("unknown argument {other:?}"),
        }
    }
    if stability && !sizes_given {
        sizes = vec![STABILITY_SIZES.to_string()];
    }
    // Allow "small,medium" as a list of names when every part is a name.
    if sizes.len() == 1
        && sizes[0]
            .split(',')
            .all(|s| NAMED.iter().any(|(n, _)| *n == s) || stability_spec(s).is_some())
    {
        sizes = sizes[0].split(',').map(String::from).collect();
    }
    let binary = binary.unwrap_or_else(master_binary);
    std::fs::create_dir_all(&out).unwrap();
    if stability {
        run_stability(&binary, &sizes, &out);
        return;
    }
    if auth {
        run_auth(&binary, &out);
        return;
    }
    // `--changes` and `--watch` measure one size, `kube-only` unless one is named.
    let one_size = if sizes_given {
        sizes[0].clone()
    } else {
        "kube-only".to_string()
    };
    if changes {
        run_changes(&binary, &one_size, rate, &history, &out);
        return;
    }
    if watch {
        run_watch(&binary, &one_size, &out);
        return;
    }
    let mut results = Vec::new();
    for size in &sizes {
        let spec_text = NAMED
            .iter()
            .find(|(n, _)| n == size)
            .map_or(size.as_str(), |(_, s)| s);
        eprintln!("== {size}: {spec_text}");
        let result = run_size(&binary, size, spec_text);
        eprintln!("{}", serde_json::to_string_pretty(&result).unwrap());
        results.push(result);
        let doc = json!({"machine": machine(), "results": results});
        std::fs::write(
            out.join("bench.json"),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
        std::fs::write(out.join("bench.md"), markdown(&results)).unwrap();
    }
    println!("{}", markdown(&results));
}

/// target/release/cluster-insight beside this example's own binary.
fn master_binary() -> PathBuf {
    let exe = std::env::current_exe().unwrap();
    let dir = exe.parent().unwrap().parent().unwrap();
    let binary = dir.join("cluster-insight");
    assert!(
        binary.exists(),
        "{} is missing: run `cargo build --release` first",
        binary.display()
    );
    binary
}

fn machine() -> Value {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("model name"))
        .and_then(|l| l.split(':').nth(1))
        .map(|s| s.trim().to_string())
        .unwrap_or_default();
    let mem_kb: u64 = std::fs::read_to_string("/proc/meminfo")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("MemTotal"))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0);
    json!({"cpu": cpu, "cores": std::thread::available_parallelism().map_or(0, |n| n.get()), "memory_gib": mem_kb / 1024 / 1024})
}

struct MasterProcess {
    child: Child,
    addr: SocketAddr,
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn run_size(binary: &Path, name: &str, spec_text: &str) -> Value {
    let spec = SimSpec::parse_size(spec_text).expect("a size");
    let started = Instant::now();
    let sim = Simulator::start(spec.clone()).expect("the simulator starts");
    let sim_start_s = started.elapsed().as_secs_f64();
    let master = start_master(binary, &sim);
    let pid = master.child.id();

    // First refresh.
    let first = wait_for_refresh(&master, 1, Duration::from_secs(900));
    let first_ms = first["refresh"]["lastDurationMs"].as_u64().unwrap_or(0);
    let first_calls = first["refresh"]["calls"].clone();
    // Steady refreshes: the CPU the process spends between two refreshes ends.
    let n = first["refresh"]["count"].as_u64().unwrap();
    let s1 = wait_for_refresh(&master, n + 1, Duration::from_secs(900));
    let cpu1 = cpu_seconds(pid);
    let t1 = Instant::now();
    let s2 = wait_for_refresh(
        &master,
        s1["refresh"]["count"].as_u64().unwrap() + 1,
        Duration::from_secs(900),
    );
    let cpu_per_cycle = cpu_seconds(pid) - cpu1;
    let cycle_s = t1.elapsed().as_secs_f64();
    let steady_ms = s2["refresh"]["lastDurationMs"].as_u64().unwrap_or(0);

    let ttfb = time_to_first_byte(master.addr, "/cluster", 50);
    let plain = fetch(master.addr, "/cluster", false);
    let gzip = fetch(master.addr, "/cluster", true);
    let mut latency = Vec::new();
    for clients in [1usize, 16, 64] {
        latency.push(load(master.addr, clients, Duration::from_secs(3)));
    }
    let rss_peak_mib = status_kb(pid, "VmHWM") as f64 / 1024.0;
    let rss_now_mib = status_kb(pid, "VmRSS") as f64 / 1024.0;
    // Last, not to disturb the rest: what keeping managedFields would have added.
    let (served_bytes, managed_fields_bytes) = sim.managed_fields_bytes();
    json!({
        "size": name,
        "spec": spec_text,
        "resources": s2["counts"]["resources"],
        "relations": s2["counts"]["relations"],
        "simulator_start_s": round(sim_start_s),
        "first_refresh_ms": first_ms,
        "steady_refresh_ms": steady_ms,
        "cpu_s_per_refresh_cycle": round(cpu_per_cycle),
        "refresh_cycle_s": round(cycle_s),
        "first_refresh_calls": first_calls,
        "steady_refresh_calls": s2["refresh"]["calls"],
        "steady_phases_ms": s2["refresh"]["phasesMs"],
        "first_phases_ms": first["refresh"]["phasesMs"],
        "time_to_first_byte_ms": ttfb,
        "rss_peak_mib": round(rss_peak_mib),
        "rss_now_mib": round(rss_now_mib),
        "cluster_bytes": plain,
        "cluster_gzip_bytes": gzip,
        "kube_objects_bytes": served_bytes,
        "managed_fields_bytes_dropped": managed_fields_bytes,
        "latency": latency,
    })
}

/// Starts `binary` as a master against `sim`, refreshing every 10 s, reading the nodes when
/// the simulator serves them.
fn start_master(binary: &Path, sim: &Simulator) -> MasterProcess {
    start_master_with(binary, sim, &[])
}

/// [`start_master`] with more flags.
fn start_master_with(binary: &Path, sim: &Simulator, extra: &[&str]) -> MasterProcess {
    let port = TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut cmd = Command::new(binary);
    cmd.args(["--mode", "master", "--bind", "127.0.0.1"])
        .args(["--port", &port.to_string()])
        .args(["--kubernetes-url", &sim.kube_url()])
        .args(["--refresh-interval", "10", "--workers", "64"])
        .args(extra);
    // The master's log, when asked for: what it says of each build (`--debug` adds the
    // builds between refreshes).
    match std::env::var_os("BENCH_MASTER_LOG") {
        Some(path) => {
            let log = std::fs::File::create(path).expect("the master's log file can be made");
            let copy = log
                .try_clone()
                .expect("the master's log file can be shared");
            cmd.arg("--debug").stdout(log).stderr(copy)
        }
        None => cmd.stdout(Stdio::null()).stderr(Stdio::null()),
    };
    if sim.spec().with_docker {
        cmd.args(["--docker-port", &sim.docker_port().to_string()]);
    } else {
        cmd.arg("--no-docker");
    }
    MasterProcess {
        child: cmd.spawn().expect("the master starts"),
        addr: SocketAddr::from(([127, 0, 0, 1], port)),
    }
}

/// The pod count `/status` says the published snapshot has.
fn published_pods(master: &MasterProcess) -> Option<u64> {
    try_get_json(master.addr, "/status")?["counts"]["resources"]["Pod"].as_u64()
}

/// Deletes `count` pods, one every `every`, and returns how long each took to leave the
/// published graph, in milliseconds (each waited for before the next when `every` is zero).
fn deletion_latencies(
    sim: &mut Simulator,
    master: &MasterProcess,
    count: usize,
    every: Duration,
) -> Vec<f64> {
    let pods = sim.pods();
    let mut expected = published_pods(master).expect("a snapshot");
    let mut latencies = Vec::new();
    let mut pending: Vec<(u64, Instant)> = Vec::new();
    let mut next = Instant::now();
    let mut done = 0;
    while done < count {
        if latencies.len() + pending.len() < count
            && Instant::now() >= next
            && (every > Duration::ZERO || pending.is_empty())
        {
            let (ns, name, _) = &pods[pods.len() - 1 - (latencies.len() + pending.len())];
            assert!(sim.delete_pod(ns, name));
            expected -= 1;
            pending.push((expected, Instant::now()));
            next += every;
        }
        let now_pods = published_pods(master).unwrap_or(u64::MAX);
        pending.retain(|(target, at)| {
            if now_pods <= *target {
                latencies.push(at.elapsed().as_secs_f64() * 1000.0);
                done += 1;
                false
            } else {
                true
            }
        });
        std::thread::sleep(Duration::from_millis(5));
    }
    latencies.sort_by(|a, b| a.partial_cmp(b).unwrap());
    latencies
}

/// The spec of a named size, or `size` itself.
fn spec_of(size: &str) -> &str {
    NAMED
        .iter()
        .find(|(n, _)| *n == size)
        .map_or(size, |(_, s)| s)
}

fn simulator(spec_text: &str) -> Simulator {
    Simulator::start(SimSpec::parse_size(spec_text).expect("a size")).expect("the simulator starts")
}

fn run_watch(binary: &Path, size: &str, out: &Path) {
    let spec_text = spec_of(size);
    eprintln!("== watch {size}: {spec_text}");
    let mut sim = simulator(spec_text);
    let master = start_master(binary, &sim);
    let pid = master.child.id();
    let first = wait_for_refresh(&master, 1, Duration::from_secs(900));
    let first_ms = first["refresh"]["lastDurationMs"].as_u64().unwrap_or(0);
    // Let the first builds settle, then a quiet minute.
    wait_for_refresh(
        &master,
        first["refresh"]["count"].as_u64().unwrap() + 1,
        Duration::from_secs(900),
    );
    let lists = sim.request_counts().kube_list_pages;
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    std::thread::sleep(Duration::from_secs(60));
    let cpu_per_minute = (cpu_seconds(pid) - cpu0) * 60.0 / t0.elapsed().as_secs_f64();
    let lists_in_minute = sim.request_counts().kube_list_pages - lists;
    eprintln!(
        "steady: {:.2} CPU-s per minute, {lists_in_minute} list pages; RSS {:.0} MiB",
        cpu_per_minute,
        status_kb(pid, "VmRSS") as f64 / 1024.0
    );
    let q = |v: &[f64], q: f64| round(v[((v.len() as f64 * q) as usize).min(v.len() - 1)]);
    let one_by_one = deletion_latencies(&mut sim, &master, 20, Duration::ZERO);
    eprintln!("one by one: {one_by_one:?}");
    let at_rate = deletion_latencies(&mut sim, &master, 50, Duration::from_millis(100));
    let result = json!({
        "size": size,
        "spec": spec_text,
        "first_refresh_ms": first_ms,
        "steady_cpu_s_per_minute": round(cpu_per_minute),
        "list_pages_in_steady_minute": lists_in_minute,
        "deletion_to_graph_ms_one_by_one": {"p50": q(&one_by_one, 0.5), "p99": q(&one_by_one, 0.99)},
        "deletion_to_graph_ms_10_per_s": {"p50": q(&at_rate, 0.5), "p99": q(&at_rate, 0.99)},
        "rss_peak_mib": round(status_kb(pid, "VmHWM") as f64 / 1024.0),
        "rss_now_mib": round(status_kb(pid, "VmRSS") as f64 / 1024.0),
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    std::fs::write(out.join("bench-watch.json"), &text).unwrap();
    println!("{text}");
}

/// What the stream client saw: when each (pod ID, label value) arrived.
type Arrivals = std::sync::Arc<parking_lot::Mutex<std::collections::HashMap<String, Instant>>>;

/// Follows the change stream, noting when each changed pod's `bench-revision` arrives.
fn follow_stream(addr: SocketAddr, arrivals: Arrivals) {
    use std::io::BufRead;
    let mut s = TcpStream::connect(addr).expect("the stream");
    s.write_all(&request_head("/cluster/changes/stream", &[]))
        .unwrap();
    let mut reader = std::io::BufReader::with_capacity(1 << 20, s);
    let mut line = String::new();
    loop {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let Some(data) = line.strip_prefix("data: ") else {
            continue;
        };
        let now = Instant::now();
        let Ok(change) = serde_json::from_str::<Value>(data) else {
            continue;
        };
        let mut seen = arrivals.lock();
        for r in change["resources"]["changed"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if let Some(v) = r["properties"]["metadata"]["labels"]["bench-revision"].as_str() {
                seen.entry(format!("{}|{v}", r["id"].as_str().unwrap_or("")))
                    .or_insert(now);
            }
        }
    }
}

fn run_changes(binary: &Path, size: &str, rate: f64, history: &str, out: &Path) {
    let spec_text = spec_of(size);
    eprintln!("== changes {size} at {rate}/s: {spec_text}");
    let mut sim = simulator(spec_text);
    let master = start_master_with(binary, &sim, &["--history", history]);
    let pid = master.child.id();
    let first = wait_for_refresh(&master, 1, Duration::from_secs(900));
    wait_for_refresh(
        &master,
        first["refresh"]["count"].as_u64().unwrap() + 1,
        Duration::from_secs(900),
    );
    let start_status = try_get_json(master.addr, "/status").unwrap();
    let start_sequence = start_status["snapshot"]["sequence"].as_u64().unwrap();
    // A time at which that snapshot was being served (its own time is when it was built).
    let start_time =
        cluster_insight_wire::time::rfc3339_millis(cluster_insight_wire::time::now_millis());
    let rss_before = status_kb(pid, "VmRSS") as f64 / 1024.0;
    let arrivals: Arrivals = Default::default();
    {
        let arrivals = arrivals.clone();
        let addr = master.addr;
        std::thread::spawn(move || follow_stream(addr, arrivals));
    }
    std::thread::sleep(Duration::from_millis(500));

    // Every tenth change: a poller waits for it in the published graph.
    let (graph_tx, graph_rx) = crossbeam_channel::unbounded::<(String, String, Instant)>();
    let graph_latencies = std::sync::Arc::new(parking_lot::Mutex::new(Vec::new()));
    let pollers: Vec<_> = (0..4)
        .map(|_| {
            let (rx, latencies, addr) = (graph_rx.clone(), graph_latencies.clone(), master.addr);
            std::thread::spawn(move || {
                for (path, value, at) in rx {
                    let deadline = Instant::now() + Duration::from_secs(300);
                    while Instant::now() < deadline {
                        let seen = try_get_json(addr, &path).is_some_and(|v| {
                            v["resource"]["properties"]["metadata"]["labels"]["bench-revision"]
                                == value.as_str()
                        });
                        if seen {
                            latencies.lock().push(at.elapsed().as_secs_f64() * 1000.0);
                            break;
                        }
                        std::thread::sleep(Duration::from_millis(20));
                    }
                }
            })
        })
        .collect();

    let pods = sim.pods();
    let cpu0 = cpu_seconds(pid);
    let t0 = Instant::now();
    let every = Duration::from_secs_f64(1.0 / rate);
    let mut made: Vec<(String, Instant)> = Vec::new();
    let mut next = Instant::now();
    let mut n = 0usize;
    while t0.elapsed() < Duration::from_secs(60) {
        if Instant::now() < next {
            std::thread::sleep(next - Instant::now());
        }
        next += every;
        // A different pod each time, spread over the cluster.
        let (ns, name, _) = &pods[(n * 7919) % pods.len()];
        let value = format!("r{n}");
        assert!(sim.label_pod(ns, name, "bench-revision", &value));
        let at = Instant::now();
        let key = format!("Pod:{ns}/{name}|{value}");
        if n.is_multiple_of(10) {
            graph_tx
                .send((format!("/cluster/resources/pods/{ns}/{name}"), value, at))
                .unwrap();
        }
        made.push((key, at));
        n += 1;
    }
    drop(graph_tx);
    let made_in = t0.elapsed();
    // Until every change has arrived, or two minutes more. A pod changed twice may skip its
    // first value when both land in one build: once all but 1% have arrived, the rest get
    // five seconds more.
    let mut deadline = Instant::now() + Duration::from_secs(120);
    let mut nearly = false;
    while Instant::now() < deadline {
        let seen = arrivals.lock();
        let arrived = made.iter().filter(|(k, _)| seen.contains_key(k)).count();
        drop(seen);
        if arrived == made.len() {
            break;
        }
        if !nearly && arrived + made.len() / 100 >= made.len() {
            nearly = true;
            deadline = deadline.min(Instant::now() + Duration::from_secs(5));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let cpu = cpu_seconds(pid) - cpu0;
    let wall = t0.elapsed().as_secs_f64();
    for p in pollers {
        let _ = p.join();
    }
    let seen = arrivals.lock().clone();
    let mut stream_ms: Vec<f64> = made
        .iter()
        .filter_map(|(k, at)| {
            seen.get(k)
                .map(|t| t.duration_since(*at).as_secs_f64() * 1000.0)
        })
        .collect();
    stream_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let mut graph_ms = graph_latencies.lock().clone();
    graph_ms.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let q = |v: &[f64], q: f64| {
        if v.is_empty() {
            f64::NAN
        } else {
            round(v[((v.len() as f64 * q) as usize).min(v.len() - 1)])
        }
    };
    let status = try_get_json(master.addr, "/status").unwrap();
    let rss_after = status_kb(pid, "VmRSS") as f64 / 1024.0;

    // The feed: the whole minute, then about the last 1,000 changed pods.
    let timed = |path: &str| {
        let t = Instant::now();
        let (code, body) = get(master.addr, path, false).expect("the feed answers");
        // 410 when the history kept is shorter than the minute (`--history 0`).
        let doc: Value = if code == 200 {
            serde_json::from_slice(&body).unwrap()
        } else {
            eprintln!("{path}: {code}");
            json!({})
        };
        let docs = doc["changes"].as_array().map_or(0, Vec::len);
        let resources: usize = doc["changes"]
            .as_array()
            .into_iter()
            .flatten()
            .map(|c| c["resources"]["changed"].as_array().map_or(0, Vec::len))
            .sum();
        (
            round(t.elapsed().as_secs_f64() * 1000.0),
            docs,
            resources,
            body.len(),
            doc,
        )
    };
    let (minute_ms, minute_docs, minute_resources, minute_bytes, minute) =
        timed(&format!("/cluster/changes?since={start_sequence}"));
    // The sequence after which about 1,000 changed pods remain.
    let mut since = start_sequence;
    let mut remaining = minute_resources;
    for c in minute["changes"].as_array().into_iter().flatten() {
        if remaining <= 1000 {
            break;
        }
        remaining -= c["resources"]["changed"].as_array().map_or(0, Vec::len);
        since = c["sequence"].as_u64().unwrap();
    }
    let (last_ms, last_docs, last_resources, last_bytes, _) =
        timed(&format!("/cluster/changes?since={since}"));
    let t = Instant::now();
    let (at_code, at_body) = get(master.addr, &format!("/cluster?at={start_time}"), false).unwrap();
    let at_ms = round(t.elapsed().as_secs_f64() * 1000.0);
    let t = Instant::now();
    let _ = get(master.addr, &format!("/cluster?at={start_time}"), false).unwrap();
    let at_again_ms = round(t.elapsed().as_secs_f64() * 1000.0);

    let result = json!({
        "size": size,
        "spec": spec_text,
        "rate_per_s": rate,
        "changes_made": made.len(),
        "made_in_s": round(made_in.as_secs_f64()),
        "arrived_on_stream": stream_ms.len(),
        "change_to_stream_ms": {"p50": q(&stream_ms, 0.5), "p99": q(&stream_ms, 0.99), "max": q(&stream_ms, 1.0)},
        "change_to_graph_ms_every_tenth": {"count": graph_ms.len(), "p50": q(&graph_ms, 0.5), "p99": q(&graph_ms, 0.99)},
        "snapshots_published": minute_docs,
        "master_cpu_s_per_minute": round(cpu * 60.0 / wall),
        "rss_before_mib": round(rss_before),
        "rss_after_mib": round(rss_after),
        "rss_peak_mib": round(status_kb(pid, "VmHWM") as f64 / 1024.0),
        "history": status["history"].clone(),
        "feed_whole_minute": {"ms": minute_ms, "changes": minute_docs, "changed_resources": minute_resources, "bytes": minute_bytes},
        "feed_last_1000_resources": {"ms": last_ms, "changes": last_docs, "changed_resources": last_resources, "bytes": last_bytes},
        "at_minute_start": {"status": at_code, "ms": at_ms, "again_ms": at_again_ms, "bytes": at_body.len()},
    });
    let text = serde_json::to_string_pretty(&result).unwrap();
    std::fs::write(out.join(format!("bench-changes-{size}.json")), &text).unwrap();
    println!("{text}");
}

/// Requests timed per authorization case.
const AUTH_REQUESTS: usize = 2000;

fn run_auth(binary: &Path, out: &Path) {
    let sim = Simulator::start(SimSpec::default()).expect("the simulator starts");
    for i in 0..=AUTH_REQUESTS {
        sim.add_token(
            &format!("bench-token-{i}"),
            &format!("reader-{i}"),
            &["readers"],
            &[],
        );
    }
    sim.grant("readers", "/cluster-insight/*");
    let token_file = out.join("bench-auth-token");
    std::fs::write(&token_file, "bench-static-token\n").unwrap();
    let token_flag = token_file.to_str().unwrap();
    let cases: [(&str, Vec<&str>); 3] = [
        ("none (--no-auth)", vec!["--no-auth"]),
        (
            "static token (--auth-token-file)",
            vec!["--auth-token-file", token_flag],
        ),
        ("delegated (--delegated-auth)", vec!["--delegated-auth"]),
    ];
    let mut rows = Vec::new();
    for (name, flags) in cases {
        let master = start_master_with(binary, &sim, &flags);
        let deadline = Instant::now() + Duration::from_secs(60);
        while get_status(master.addr, "/readyz", None) != Some(200) {
            assert!(
                Instant::now() < deadline,
                "{name}: the master never became ready"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        let timed = |token: &dyn Fn(usize) -> Option<String>| {
            let mut times: Vec<f64> = (0..AUTH_REQUESTS)
                .map(|i| {
                    let token = token(i);
                    let t = Instant::now();
                    let status = get_status(master.addr, "/version", token.as_deref());
                    assert_eq!(status, Some(200), "{name}: GET /version");
                    t.elapsed().as_secs_f64() * 1000.0
                })
                .collect();
            times.sort_by(|a, b| a.partial_cmp(b).unwrap());
            let at =
                |q: f64| round(times[((times.len() as f64 * q) as usize).min(times.len() - 1)]);
            json!({"p50_ms": at(0.5), "p99_ms": at(0.99), "mean_ms": round(times.iter().sum::<f64>() / times.len() as f64)})
        };
        match flags[0] {
            "--no-auth" => rows.push(json!({"case": name, "latency": timed(&|_| None)})),
            "--auth-token-file" => rows.push(
                json!({"case": name, "latency": timed(&|_| Some("bench-static-token".to_string()))}),
            ),
            _ => {
                rows.push(json!({"case": format!("{name}, review cached"),
                    "latency": timed(&|_| Some("bench-token-0".to_string()))}));
                rows.push(json!({"case": format!("{name}, a new token each request"),
                    "latency": timed(&|i| Some(format!("bench-token-{}", i + 1)))}));
            }
        }
        eprintln!("{}", serde_json::to_string(rows.last().unwrap()).unwrap());
    }
    let mut md = String::from("| authorization | p50 | p99 | mean |\n|---|---|---|---|\n");
    for row in &rows {
        let l = &row["latency"];
        md.push_str(&format!(
            "| {} | {} ms | {} ms | {} ms |\n",
            row["case"].as_str().unwrap(),
            l["p50_ms"],
            l["p99_ms"],
            l["mean_ms"]
        ));
    }
    std::fs::write(
        out.join("bench-auth.json"),
        serde_json::to_string_pretty(&rows).unwrap(),
    )
    .unwrap();
    std::fs::write(out.join("bench-auth.md"), &md).unwrap();
    println!("{md}");
}

/// The status of GET `path` (with a bearer token), on a new connection.
fn get_status(addr: SocketAddr, path: &str, token: Option<&str>) -> Option<u16> {
    let bearer = token.map(|t| format!("Bearer {t}"));
    let headers: Vec<(&str, &str)> = bearer
        .iter()
        .map(|b| ("Authorization", b.as_str()))
        .collect();
    let mut s = TcpStream::connect(addr).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(30))).ok()?;
    s.write_all(&request_head(path, &headers)).ok()?;
    let mut reply = Vec::new();
    s.read_to_end(&mut reply).ok()?;
    std::str::from_utf8(reply.get(9..12)?).ok()?.parse().ok()
}

/// Refreshes watched per stability size.
const STABILITY_REFRESHES: u64 = 12;

fn run_stability(binary: &Path, sizes: &[String], out: &Path) {
    let mut results = Vec::new();
    for size in sizes {
        let spec_text = stability_spec(size).unwrap_or_else(|| size.clone());
        eprintln!("== stability {size}: {spec_text}");
        let spec = SimSpec::parse_size(&spec_text).expect("a size");
        let sim = Simulator::start(spec).expect("the simulator starts");
        let started = Instant::now();
        let master = start_master(binary, &sim);
        let expected = &sim.expected().resources;
        let mut refreshes = Vec::new();
        for n in 1..=STABILITY_REFRESHES {
            let status = wait_for_refresh(&master, n, Duration::from_secs(900));
            let at_s = started.elapsed().as_secs_f64();
            let counts: std::collections::BTreeMap<String, usize> =
                serde_json::from_value(status["counts"]["resources"].clone()).unwrap_or_default();
            let complete = &counts == expected;
            let hash = content_hash(master.addr);
            let containers = counts.get("Container").copied().unwrap_or(0);
            let processes = counts.get("Process").copied().unwrap_or(0);
            eprintln!(
                "refresh {n} at {at_s:.1} s: complete {complete}, {containers} containers, {processes} processes, hash {hash:016x}, {} ms",
                status["refresh"]["lastDurationMs"]
            );
            refreshes.push(json!({
                "refresh": n,
                "at_s": round(at_s),
                "complete": complete,
                "containers": containers,
                "processes": processes,
                "hash": format!("{hash:016x}"),
                "duration_ms": status["refresh"]["lastDurationMs"],
                "node_threads": status["refresh"]["nodeReading"]["threads"],
                "nodes_cut": status["sources"]["nodesCut"],
            }));
        }
        let first_complete = refreshes.iter().find(|r| r["complete"] == true);
        // The last ten refreshes: how many different graphs an unchanged cluster gave.
        let last_ten: std::collections::BTreeSet<&str> = refreshes
            [refreshes.len().saturating_sub(10)..]
            .iter()
            .filter_map(|r| r["hash"].as_str())
            .collect();
        let result = json!({
            "size": size,
            "spec": spec_text,
            "binary": binary.display().to_string(),
            "expected_containers": expected.get("Container"),
            "expected_processes": expected.get("Process"),
            "first_complete_refresh": first_complete.map(|r| r["refresh"].clone()),
            "first_complete_s": first_complete.map(|r| r["at_s"].clone()),
            "distinct_graphs_last_ten": last_ten.len(),
            "refreshes": refreshes,
        });
        eprintln!("{}", serde_json::to_string(&result).unwrap());
        results.push(result);
        drop(master);
        sim.shutdown();
        let doc = json!({"machine": machine(), "results": results});
        std::fs::write(
            out.join("stability.json"),
            serde_json::to_string_pretty(&doc).unwrap(),
        )
        .unwrap();
    }
    let mut table = String::from("| size | containers / processes | first complete graph | distinct graphs in the last 10 refreshes |\n|---|---|---|---|\n");
    for r in &results {
        table.push_str(&format!(
            "| {} | {} / {} | {} | {} |\n",
            r["size"].as_str().unwrap_or(""),
            r["expected_containers"],
            r["expected_processes"],
            match (
                r["first_complete_refresh"].as_u64(),
                r["first_complete_s"].as_f64()
            ) {
                (Some(n), Some(s)) => format!("refresh {n}, {s:.1} s"),
                _ => format!("not within {STABILITY_REFRESHES} refreshes"),
            },
            r["distinct_graphs_last_ten"]
        ));
    }
    std::fs::write(out.join("stability.md"), &table).unwrap();
    println!("{table}");
}

/// A hash of `/cluster` from its `"resources"` on: everything but the time it was made.
fn content_hash(addr: SocketAddr) -> u64 {
    use std::hash::Hasher;
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    let mut head: Vec<u8> = Vec::new();
    let mut in_content = false;
    let marker = b"\"resources\"";
    let result = fetch_into(addr, "/cluster", false, |piece| {
        if in_content {
            hasher.write(piece);
            return;
        }
        head.extend_from_slice(piece);
        if let Some(at) = head.windows(marker.len()).position(|w| w == marker) {
            hasher.write(&head[at..]);
            in_content = true;
        }
    });
    if result.is_err() {
        return 0;
    }
    hasher.finish()
}

fn round(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn wait_for_refresh(master: &MasterProcess, count: u64, limit: Duration) -> Value {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = try_get_json(master.addr, "/status") {
            if status["refresh"]["count"].as_u64().unwrap_or(0) >= count {
                return status;
            }
        }
        assert!(Instant::now() < deadline, "refresh {count} did not come");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn try_get_json(addr: SocketAddr, path: &str) -> Option<Value> {
    let (status, body) = get(addr, path, false).ok()?;
    (status == 200)
        .then(|| serde_json::from_slice(&body).ok())
        .flatten()
}

fn get(addr: SocketAddr, path: &str, gzip: bool) -> std::io::Result<(u16, Vec<u8>)> {
    let mut body = Vec::new();
    let status = fetch_into(addr, path, gzip, |piece| body.extend_from_slice(piece))?;
    Ok((status, body))
}

/// GETs `path` and hands each piece of the body to `sink`; returns the status.
fn fetch_into(
    addr: SocketAddr,
    path: &str,
    gzip: bool,
    mut sink: impl FnMut(&[u8]),
) -> std::io::Result<u16> {
    let mut s = TcpStream::connect(addr)?;
    s.set_read_timeout(Some(Duration::from_secs(120)))?;
    let encoding = if gzip { "gzip" } else { "identity" };
    s.write_all(&request_head(path, &[("Accept-Encoding", encoding)]))?;
    let mut buf = vec![0u8; 1 << 16];
    let mut head: Vec<u8> = Vec::new();
    let mut in_body = false;
    let mut status = 0;
    loop {
        let n = s.read(&mut buf)?;
        if n == 0 {
            break;
        }
        if in_body {
            sink(&buf[..n]);
            continue;
        }
        head.extend_from_slice(&buf[..n]);
        match cluster_insight_wire::head::parse_response(&head) {
            Ok(Parse::Complete(response, len)) => {
                sink(&head[len..]);
                status = response.status;
                in_body = true;
            }
            Ok(Parse::Partial) if head.len() <= 65_536 => {}
            _ => return Err(std::io::ErrorKind::InvalidData.into()),
        }
    }
    if !in_body {
        return Err(std::io::ErrorKind::InvalidData.into());
    }
    Ok(status)
}

/// A GET of `path` that closes the connection after the answer.
fn request_head(path: &str, headers: &[(&str, &str)]) -> Vec<u8> {
    let mut head = Vec::new();
    let fixed = [("Host", "bench"), ("Connection", "close")];
    cluster_insight_wire::head::write_request_head(
        &mut head,
        "GET",
        path,
        fixed.iter().chain(headers).copied(),
    )
    .expect("the benchmark's paths are valid targets");
    head
}

/// p50 of the time from sending a request to the first byte of the answer: what the server
/// does per request before the copy.
fn time_to_first_byte(addr: SocketAddr, path: &str, samples: usize) -> f64 {
    let mut times = Vec::new();
    for _ in 0..samples {
        let Ok(mut s) = TcpStream::connect(addr) else {
            continue;
        };
        let t = Instant::now();
        if s.write_all(&request_head(path, &[])).is_err() {
            continue;
        }
        let mut byte = [0u8; 1];
        if s.read_exact(&mut byte).is_ok() {
            times.push(t.elapsed().as_secs_f64() * 1000.0);
        }
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    round(times.get(times.len() / 2).copied().unwrap_or(0.0))
}

/// GETs `path` and counts the body's bytes without keeping them: 64 clients holding a
/// 650 MB body each would measure the client's memory, not the server.
fn get_counting(addr: SocketAddr, path: &str, gzip: bool) -> std::io::Result<(u16, usize)> {
    let mut total = 0usize;
    let status = fetch_into(addr, path, gzip, |piece| total += piece.len())?;
    Ok((status, total))
}

fn fetch(addr: SocketAddr, path: &str, gzip: bool) -> usize {
    get_counting(addr, path, gzip).map(|(_, n)| n).unwrap_or(0)
}

/// `clients` threads each GET /cluster (plain, a new connection each) for `time`.
fn load(addr: SocketAddr, clients: usize, time: Duration) -> Value {
    let deadline = Instant::now() + time;
    let started = Instant::now();
    let threads: Vec<_> = (0..clients)
        .map(|_| {
            std::thread::spawn(move || {
                let mut samples = Vec::new();
                let mut errors = 0usize;
                while Instant::now() < deadline {
                    let t = Instant::now();
                    match get_counting(addr, "/cluster", false) {
                        Ok((200, _)) => samples.push(t.elapsed().as_secs_f64() * 1000.0),
                        _ => errors += 1,
                    }
                }
                (samples, errors)
            })
        })
        .collect();
    let mut all = Vec::new();
    let mut errors = 0;
    for t in threads {
        let (s, e) = t.join().unwrap();
        all.extend(s);
        errors += e;
    }
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let pct = |p: f64| {
        all.get(((all.len() as f64 - 1.0) * p).round() as usize)
            .copied()
            .unwrap_or(0.0)
    };
    json!({
        "clients": clients,
        "requests": all.len(),
        "errors": errors,
        "rps": round(all.len() as f64 / elapsed),
        "p50_ms": round(pct(0.5)),
        "p99_ms": round(pct(0.99)),
    })
}

fn cpu_seconds(pid: u32) -> f64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    // Fields after the command name (which may contain spaces) start after the last ')'.
    let after = stat.rsplit_once(')').map_or("", |(_, a)| a);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks: f64 = fields.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0)
        + fields
            .get(12)
            .and_then(|v| v.parse::<f64>().ok())
            .unwrap_or(0.0);
    ticks / 100.0
}

fn status_kb(pid: u32, key: &str) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(key))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse().ok())
        .unwrap_or(0)
}

fn markdown(results: &[Value]) -> String {
    let mut out = String::from(
        "| size | pods | containers | first refresh | steady refresh | CPU / cycle | peak RSS | k8s pages / refresh | minion calls / refresh (steady) | /cluster | gzip | managedFields dropped | first byte p50 | p50 / p99 (1 client) | p50 / p99 (16) | p50 / p99 (64) | req/s (1 / 16 / 64) |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n",
    );
    for r in results {
        let lat = |i: usize| {
            format!(
                "{} / {} ms",
                r["latency"][i]["p50_ms"], r["latency"][i]["p99_ms"]
            )
        };
        let calls = &r["steady_refresh_calls"];
        let minion = [
            "agentNode",
            "dockerList",
            "dockerInspect",
            "dockerTop",
            "dockerImage",
        ]
        .iter()
        .map(|k| calls[k].as_u64().unwrap_or(0))
        .sum::<u64>();
        out.push_str(&format!(
            "| {} | {} | {} | {} ms | {} ms | {} s | {:.0} MiB | {} | {} | {:.1} MB | {:.1} MB | {:.1} MB | {} ms | {} | {} | {} | {} / {} / {} |\n",
            r["size"].as_str().unwrap_or(""),
            r["resources"]["Pod"],
            r["resources"]["Container"].as_u64().unwrap_or(0),
            r["first_refresh_ms"],
            r["steady_refresh_ms"],
            r["cpu_s_per_refresh_cycle"],
            r["rss_peak_mib"].as_f64().unwrap_or(0.0),
            calls["kubernetesPages"],
            minion,
            r["cluster_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            r["cluster_gzip_bytes"].as_f64().unwrap_or(0.0) / 1e6,
            r["managed_fields_bytes_dropped"].as_f64().unwrap_or(0.0) / 1e6,
            r["time_to_first_byte_ms"],
            lat(0),
            lat(1),
            lat(2),
            r["latency"][0]["rps"],
            r["latency"][1]["rps"],
            r["latency"][2]["rps"],
        ));
    }
    // What each graph held, by type.
    for r in results {
        let by_type = |counts: &Value| {
            counts
                .as_object()
                .map(|m| {
                    m.iter()
                        .map(|(k, v)| format!("{k} {v}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                })
                .unwrap_or_default()
        };
        out.push_str(&format!(
            "\n{}: resources: {}; relations: {}.\n",
            r["size"].as_str().unwrap_or(""),
            by_type(&r["resources"]),
            by_type(&r["relations"]),
        ));
    }
    out
}
