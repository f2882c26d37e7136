//! Bounded fuzzing with a fixed-seed generator: the master's parsers, graph builder and
//! renderer on damaged real API data, the HTTP server's request parsing over a real socket,
//! and the minion's allow-list in front of a fake daemon that records what reaches it.
//!
//! Inputs are mutations of the recorded responses in `tests/data/realdata` (bit flips,
//! truncation, values swapped for other JSON types, deep nesting, huge numbers, invalid
//! UTF-8, duplicated keys, spliced pieces). What must hold: nothing panics, every graph built
//! from whatever parsed is consistent and renders to valid JSON, the server answers or
//! closes and keeps serving, and the daemon never sees a request outside the allow-list
//! (re-checked here against the contract §1 grammar, independently of `proxy::allow`). Counts can
//! be raised with `FUZZ_INPUTS`, `FUZZ_HEADS` and `FUZZ_MINION`; the seed with `FUZZ_SEED`.

use crate::support::realdata::realdata;

use crate::support::client;
use crate::support::fake_docker;
use crate::support::master;

use std::collections::BTreeSet;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use cluster_insight::agent::{Agent, AgentConfig};
use cluster_insight::collect::objects::{self, parse_list_page, parse_object};
use cluster_insight::collect::runtime::docker::{
    parse_container_inspect, parse_container_list, parse_image, parse_top,
};
use cluster_insight::graph::fingerprint;
use cluster_insight::graph::observed::{
    Collected, KubeObject, KubeState, NodeContainers, ObservedContainer,
};
use cluster_insight::graph::Kind as ApiKind;
use cluster_insight::graph::{build, BuildOptions, History};
use cluster_insight::http::ClientConfig;
use cluster_insight::http::{self, Body, Handler, Response};
use cluster_insight::proxy;
use cluster_insight::publish::snapshot;
use fake_docker::FakeDocker;
use serde_json::value::RawValue;
use serde_json::Value;

fn env_count(name: &str, default: usize) -> usize {
    std::env::var(name)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}

/// xorshift64*: small, fast, and the same sequence on every machine for a given seed.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.max(1))
    }

    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }

    fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }
}

fn seed() -> u64 {
    env_count("FUZZ_SEED", 0x5eed_c1a5) as u64
}

// ---------------------------------------------------------------------------------------
// Seeds from real data

/// What a seed document is, so that it goes first to the parser meant for it.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Kind {
    KubeList,
    Node,
    Pod,
    Service,
    Controller,
    KubeOther,
    DockerList,
    Inspect,
    Top,
    Image,
    Other,
}

fn json_files(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    let mut entries: Vec<PathBuf> = entries.flatten().map(|e| e.path()).collect();
    entries.sort();
    for path in entries {
        if path.is_dir() {
            json_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "json") {
            out.push(path);
        }
    }
}

fn kind_of(value: &Value) -> Kind {
    if let Some(list) = value.as_array() {
        return match list.first() {
            Some(first) if first.get("Id").is_some() => Kind::DockerList,
            Some(first) if first.get("metadata").is_some() => Kind::KubeList,
            _ => Kind::Other,
        };
    }
    if value.get("items").is_some() {
        return Kind::KubeList;
    }
    match value.get("kind").and_then(Value::as_str) {
        Some("Node") => return Kind::Node,
        Some("Pod") => return Kind::Pod,
        Some("Service") => return Kind::Service,
        Some("ReplicationController") => return Kind::Controller,
        Some(_) if value.get("metadata").is_some() => return Kind::KubeOther,
        _ => {}
    }
    if value.get("Processes").is_some() {
        Kind::Top
    } else if value.get("State").is_some() && value.get("Id").is_some() {
        Kind::Inspect
    } else if value.get("RepoTags").is_some() || value.get("RootFS").is_some() {
        Kind::Image
    } else if value.get("metadata").is_some() {
        Kind::KubeOther
    } else {
        Kind::Other
    }
}

/// Small real documents: whole files under 16 KiB, and from bigger lists each of the first
/// items alone and the first three as a list. Specifications are left out.
fn seeds(dir: &Path) -> Vec<(Kind, String)> {
    let mut files = Vec::new();
    json_files(dir, &mut files);
    let mut out = Vec::new();
    for path in files {
        let Ok(text) = std::fs::read_to_string(&path) else {
            continue;
        };
        let Ok(value) = serde_json::from_str::<Value>(&text) else {
            continue;
        };
        if value.get("swagger").is_some() || value.get("openapi").is_some() {
            continue;
        }
        let items = value
            .as_array()
            .or_else(|| value.get("items").and_then(Value::as_array));
        if let Some(items) = items {
            for item in items.iter().take(12) {
                let kind = kind_of(item);
                out.push((kind, item.to_string()));
            }
            let mut short = value.clone();
            if let Some(list) = short.as_array_mut() {
                list.truncate(3);
            } else if let Some(list) = short.get_mut("items").and_then(Value::as_array_mut) {
                list.truncate(3);
            }
            out.push((kind_of(&short), short.to_string()));
        }
        if text.len() <= 16 * 1024 {
            out.push((kind_of(&value), text));
        }
    }
    out
}

// ---------------------------------------------------------------------------------------
// Mutations

/// Byte ranges of JSON scalar values (strings after a `:`, numbers, literals) in `text`,
/// found by a light scan that is good enough on real documents.
fn value_spans(text: &[u8]) -> Vec<(usize, usize)> {
    let mut spans = Vec::new();
    let mut i = 0;
    let mut after_colon = false;
    while i < text.len() {
        match text[i] {
            b':' => after_colon = true,
            b'"' => {
                let start = i;
                i += 1;
                while i < text.len() && text[i] != b'"' {
                    if text[i] == b'\\' {
                        i += 1;
                    }
                    i += 1;
                }
                if after_colon {
                    spans.push((start, (i + 1).min(text.len())));
                }
                after_colon = false;
            }
            b'-' | b'0'..=b'9' | b't' | b'f' | b'n' if after_colon => {
                let start = i;
                while i < text.len() && !b",}] \n\r\t".contains(&text[i]) {
                    i += 1;
                }
                spans.push((start, i));
                after_colon = false;
                continue;
            }
            b' ' | b'\n' | b'\r' | b'\t' => {}
            _ => after_colon = false,
        }
        i += 1;
    }
    spans
}

const SWAPS: &[&str] = &[
    "12345",
    "-1",
    "0.5",
    "true",
    "null",
    "\"\"",
    "\"x\"",
    "[]",
    "[1,\"a\",null]",
    "{}",
    "{\"a\":{\"b\":[]}}",
    "1e999999",
    "-1e400",
    "123456789012345678901234567890123456789",
    "18446744073709551616",
    "-9223372036854775809",
    "\"\\ud800\"",
    "\"\\u0000\"",
    "\"docker://\"",
    "\"k8s_a_b_c_d_e\"",
];

fn mutate(rng: &mut Rng, seed: &[u8], others: &[(Kind, String)]) -> Vec<u8> {
    let mut data = seed.to_vec();
    let rounds = 1 + rng.below(3);
    for _ in 0..rounds {
        if data.is_empty() {
            data.extend_from_slice(b"{}");
        }
        let len = data.len();
        match rng.below(10) {
            // Bit flips.
            0 => {
                for _ in 0..1 + rng.below(8) {
                    let at = rng.below(len);
                    data[at] ^= 1 << rng.below(8);
                }
            }
            // Truncation.
            1 => data.truncate(rng.below(len)),
            // A value swapped for one of another type (or a huge number).
            2 | 3 => {
                for _ in 0..1 + rng.below(4) {
                    let spans = value_spans(&data);
                    if !spans.is_empty() {
                        let (a, b) = *rng.pick(&spans);
                        let swap = rng.pick(SWAPS).as_bytes().to_vec();
                        data.splice(a..b, swap);
                    }
                }
            }
            // Deep nesting where a value was.
            4 => {
                let spans = value_spans(&data);
                if !spans.is_empty() {
                    let (a, b) = *rng.pick(&spans);
                    let depth = *rng.pick(&[100, 127, 128, 129, 1000, 5000]);
                    let open = if rng.chance(2) { "[" } else { "{\"a\":" };
                    let close = if open == "[" { "]" } else { "}" };
                    let mut nested = open.repeat(depth);
                    nested.push('1');
                    nested.push_str(&close.repeat(depth));
                    data.splice(a..b, nested.into_bytes());
                }
            }
            // Invalid UTF-8 inside a string or anywhere.
            5 => {
                let bad: &[&[u8]] = &[
                    b"\xff",
                    b"\xc3",
                    b"\xed\xa0\x80",
                    b"\xf4\x90\x80\x80",
                    b"\x00",
                ];
                let at = rng.below(len + 1);
                let piece = rng.pick(bad).to_vec();
                data.splice(at..at, piece);
            }
            // A duplicated key: the first member of some object is written twice.
            6 => {
                let opens: Vec<usize> = data
                    .windows(2)
                    .enumerate()
                    .filter(|(_, w)| w == b"{\"")
                    .map(|(i, _)| i)
                    .collect();
                if !opens.is_empty() {
                    let at = *rng.pick(&opens) + 1;
                    let end = data[at..]
                        .iter()
                        .position(|&b| b == b',' || b == b'}')
                        .map(|p| at + p);
                    if let Some(end) = end {
                        let mut member = data[at..end].to_vec();
                        member.push(b',');
                        data.splice(at..at, member);
                    }
                }
            }
            // A piece of another document spliced in.
            7 => {
                let other = rng.pick(others).1.as_bytes();
                let a = rng.below(other.len());
                let b = (a + rng.below(200)).min(other.len());
                let at = rng.below(len + 1);
                data.splice(at..at, other[a..b].to_vec());
            }
            // A byte range removed or repeated.
            8 => {
                let a = rng.below(len);
                let b = (a + 1 + rng.below(64)).min(len);
                if rng.chance(2) {
                    data.drain(a..b);
                } else {
                    let piece = data[a..b].to_vec();
                    data.splice(b..b, piece);
                }
            }
            // A structural character replaced.
            _ => {
                let at = rng.below(len);
                data[at] = *rng.pick(b"{}[]:,\"\\ 0");
            }
        }
    }
    data
}

// ---------------------------------------------------------------------------------------
// The parsers, the builder and the renderer

/// Whatever parsed so far, bounded, as input for the next graph.
#[derive(Default)]
struct Pool {
    nodes: Vec<KubeObject>,
    pods: Vec<KubeObject>,
    services: Vec<KubeObject>,
    controllers: Vec<KubeObject>,
    docker: Vec<NodeContainers>,
}

const POOL_CAP: usize = 40;

fn keep<T>(list: &mut Vec<T>, item: T, rng: &mut Rng) {
    if list.len() < POOL_CAP {
        list.push(item);
    } else {
        let at = rng.below(POOL_CAP);
        list[at] = item;
    }
}

fn kube_item(kind: Kind, raw: &RawValue, pool: &mut Pool, rng: &mut Rng) {
    let _ = fingerprint::ignoring(raw.get(), objects::VOLATILE);
    match kind {
        Kind::Node => {
            if let Ok(n) = parse_object(ApiKind::NODE, raw) {
                keep(&mut pool.nodes, n, rng);
            }
        }
        Kind::Service => {
            if let Ok(s) = parse_object(ApiKind::SERVICE, raw) {
                keep(&mut pool.services, s, rng);
            }
        }
        Kind::Controller => {
            if let Ok(c) = parse_object(ApiKind::REPLICATION_CONTROLLER, raw) {
                keep(&mut pool.controllers, c, rng);
            }
        }
        _ => {
            if let Ok(p) = parse_object(ApiKind::POD, raw) {
                keep(&mut pool.pods, p, rng);
            }
        }
    }
}

fn docker_for<'a>(pool: &'a mut Pool, rng: &mut Rng) -> &'a mut NodeContainers {
    if pool.docker.is_empty() || (pool.docker.len() < 4 && rng.chance(8)) {
        let name = match pool.nodes.first() {
            Some(n) if rng.chance(2) => n.meta.name.clone(),
            _ => format!("fuzz-node-{}", pool.docker.len()),
        };
        pool.docker.push(NodeContainers {
            node_name: name,
            ..NodeContainers::default()
        });
    }
    let at = rng.below(pool.docker.len());
    &mut pool.docker[at]
}

/// The parsers meant for `kind`, and now and then one other chosen at random.
fn feed(kind: Kind, text: &str, pool: &mut Pool, rng: &mut Rng) {
    let kinds = [
        Kind::KubeList,
        Kind::Node,
        Kind::Pod,
        Kind::Service,
        Kind::Controller,
        Kind::DockerList,
        Kind::Inspect,
        Kind::Top,
        Kind::Image,
    ];
    let main = match kind {
        Kind::KubeOther | Kind::Other => *rng.pick(&kinds),
        k => k,
    };
    let second = if rng.chance(4) {
        Some(*rng.pick(&kinds))
    } else {
        None
    };
    for k in std::iter::once(main).chain(second) {
        match k {
            Kind::KubeList => {
                if let Ok(page) = parse_list_page(text) {
                    let item_kind =
                        *rng.pick(&[Kind::Node, Kind::Pod, Kind::Service, Kind::Controller]);
                    for item in &page.items {
                        kube_item(item_kind, item, pool, rng);
                    }
                }
            }
            Kind::Node | Kind::Pod | Kind::Service | Kind::Controller => {
                if let Ok(raw) = serde_json::from_str::<Box<RawValue>>(text) {
                    kube_item(k, &raw, pool, rng);
                }
            }
            Kind::DockerList => {
                let _ = parse_container_list(text);
            }
            Kind::Inspect => {
                let _ = fingerprint::ignoring(text, &["ExecIDs", "Log"]);
                if let Ok(c) = parse_container_inspect(text, rng.chance(2)) {
                    let node = docker_for(pool, rng);
                    if node.containers.len() < POOL_CAP {
                        node.containers.push(ObservedContainer {
                            container: Arc::new(c),
                            processes: Vec::new(),
                            processes_omitted: 0,
                            stale_since_ms: None,
                        });
                    }
                }
            }
            Kind::Top => {
                if let Ok(rows) = parse_top(text) {
                    let node = docker_for(pool, rng);
                    if let Some(c) = node.containers.last_mut() {
                        c.processes = rows.into_iter().take(20).collect();
                    }
                }
            }
            Kind::Image => {
                let _ = fingerprint::plain(text);
                if let Ok(image) = parse_image(text) {
                    let node = docker_for(pool, rng);
                    if node.images.len() < POOL_CAP {
                        node.images.push(Arc::new(image));
                    }
                }
            }
            Kind::KubeOther | Kind::Other => {}
        }
    }
}

/// Validates JSON syntax (RFC 8259) without a nesting limit: observed objects may be
/// nested as deeply as the parser that accepted them allows, and the graph adds levels.
/// `Err` holds the offset of the first error.
fn json_valid(text: &[u8]) -> Result<(), usize> {
    #[derive(PartialEq)]
    enum Frame {
        Array,
        Object,
    }
    let mut stack: Vec<Frame> = Vec::new();
    let mut i = 0;
    let ws = |i: &mut usize| {
        while *i < text.len() && b" \t\n\r".contains(&text[*i]) {
            *i += 1;
        }
    };
    let string = |i: &mut usize| -> Result<(), usize> {
        if text.get(*i) != Some(&b'"') {
            return Err(*i);
        }
        *i += 1;
        let start = *i;
        while *i < text.len() {
            match text[*i] {
                b'"' => {
                    std::str::from_utf8(&text[start..*i]).map_err(|_| start)?;
                    *i += 1;
                    return Ok(());
                }
                b'\\' => match text.get(*i + 1) {
                    Some(b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't') => *i += 2,
                    Some(b'u')
                        if text.len() >= *i + 6
                            && text[*i + 2..*i + 6].iter().all(u8::is_ascii_hexdigit) =>
                    {
                        *i += 6
                    }
                    _ => return Err(*i),
                },
                c if c < 0x20 => return Err(*i),
                _ => *i += 1,
            }
        }
        Err(*i)
    };
    // Expecting a value at `i`.
    loop {
        ws(&mut i);
        match text.get(i) {
            Some(b'[') => {
                i += 1;
                ws(&mut i);
                if text.get(i) == Some(&b']') {
                    i += 1;
                } else {
                    stack.push(Frame::Array);
                    continue;
                }
            }
            Some(b'{') => {
                i += 1;
                ws(&mut i);
                if text.get(i) == Some(&b'}') {
                    i += 1;
                } else {
                    string(&mut i)?;
                    ws(&mut i);
                    if text.get(i) != Some(&b':') {
                        return Err(i);
                    }
                    i += 1;
                    stack.push(Frame::Object);
                    continue;
                }
            }
            Some(b'"') => string(&mut i)?,
            Some(b't') if text[i..].starts_with(b"true") => i += 4,
            Some(b'f') if text[i..].starts_with(b"false") => i += 5,
            Some(b'n') if text[i..].starts_with(b"null") => i += 4,
            Some(b'-' | b'0'..=b'9') => {
                let start = i;
                if text[i] == b'-' {
                    i += 1;
                }
                let digits = |i: &mut usize| {
                    let s = *i;
                    while *i < text.len() && text[*i].is_ascii_digit() {
                        *i += 1;
                    }
                    *i - s
                };
                let int_start = i;
                if digits(&mut i) == 0 || (text[int_start] == b'0' && i - int_start > 1) {
                    return Err(start);
                }
                if text.get(i) == Some(&b'.') {
                    i += 1;
                    if digits(&mut i) == 0 {
                        return Err(start);
                    }
                }
                if matches!(text.get(i), Some(b'e' | b'E')) {
                    i += 1;
                    if matches!(text.get(i), Some(b'+' | b'-')) {
                        i += 1;
                    }
                    if digits(&mut i) == 0 {
                        return Err(start);
                    }
                }
            }
            _ => return Err(i),
        }
        // After a value: close containers or go on to the next member.
        loop {
            ws(&mut i);
            match (stack.last(), text.get(i)) {
                (None, None) => return Ok(()),
                (None, Some(_)) => return Err(i),
                (Some(Frame::Array), Some(b']')) | (Some(Frame::Object), Some(b'}')) => {
                    stack.pop();
                    i += 1;
                }
                (Some(Frame::Array), Some(b',')) => {
                    i += 1;
                    break;
                }
                (Some(Frame::Object), Some(b',')) => {
                    i += 1;
                    ws(&mut i);
                    string(&mut i)?;
                    ws(&mut i);
                    if text.get(i) != Some(&b':') {
                        return Err(i);
                    }
                    i += 1;
                    break;
                }
                _ => return Err(i),
            }
        }
    }
}

/// Builds and renders a graph of the pool; the `/cluster` body must be valid JSON and a
/// consistent graph. Returns the number of resources.
fn build_and_render(pool: &Pool, history: &History, now_ms: i64) -> (usize, History) {
    let mut kube = KubeState::default();
    kube.set(ApiKind::NODE, pool.nodes.clone());
    kube.set(ApiKind::POD, pool.pods.clone());
    kube.set(ApiKind::SERVICE, pool.services.clone());
    kube.set(ApiKind::REPLICATION_CONTROLLER, pool.controllers.clone());
    let collected = Collected {
        kube,
        nodes: pool.docker.clone(),
        unread_nodes: Vec::new(),
    };
    let options = BuildOptions {
        cluster_name: "fuzz".into(),
    };
    let (graph, history) = build(&collected, &options, now_ms, history);
    // Every relation once, both ends among the resources, every ID once.
    let ids: BTreeSet<&str> = graph.resources.iter().map(|r| r.id.as_str()).collect();
    assert_eq!(ids.len(), graph.resources.len(), "a resource ID twice");
    let mut relations = BTreeSet::new();
    for r in &graph.relations {
        assert!(
            ids.contains(r.source.as_str()) && ids.contains(r.target.as_str()),
            "relation with a missing end: {r:?}"
        );
        assert!(
            relations.insert((r.kind.as_str(), r.source.as_str(), r.target.as_str())),
            "relation twice: {r:?}"
        );
    }
    let resources = graph.resources.len();
    let snap = snapshot::render(graph, "cluster-insight fuzz", 1);
    for rendered in [snap.cluster(), snap.resources()]
        .into_iter()
        .chain(cluster_insight::graph::Kind::queryable().filter_map(|k| snap.of_type(k)))
    {
        let body = rendered.body.to_vec();
        if let Err(at) = json_valid(&body) {
            panic!(
                "a body is not JSON (at byte {at}): {}",
                String::from_utf8_lossy(&body[at.saturating_sub(300)..(at + 300).min(body.len())])
            );
        }
    }
    // Where serde_json's nesting limit allows, the shape and the counts are checked too.
    if let Ok(value) = serde_json::from_slice::<Value>(&snap.cluster().body.to_vec()) {
        if let Err(e) = master::graph_consistency(&value) {
            panic!("inconsistent /cluster: {e}");
        }
        assert_eq!(value["resources"].as_array().map(Vec::len), Some(resources));
    }
    (resources, history)
}

#[test]
fn damaged_real_data_never_panics_and_always_renders_valid_json() {
    let Some(dir) = realdata() else {
        return;
    };
    let seeds = seeds(&dir);
    assert!(seeds.len() > 50, "only {} seeds", seeds.len());
    let inputs = env_count("FUZZ_INPUTS", 20_000);
    let started = Instant::now();
    let mut rng = Rng::new(seed());
    let mut pool = Pool::default();
    let mut history = History::default();
    let (mut graphs, mut largest) = (0, 0);
    // The undamaged seeds first: they fill the pool with objects that join.
    for (kind, text) in &seeds {
        feed(*kind, text, &mut pool, &mut rng);
    }
    let (mut t_mutate, mut t_feed, mut t_build) = (Duration::ZERO, Duration::ZERO, Duration::ZERO);
    for n in 0..inputs {
        let t0 = Instant::now();
        let (kind, text) = rng.pick(&seeds).clone();
        let data = mutate(&mut rng, text.as_bytes(), &seeds);
        // The master reads bodies as UTF-8 text, replacing what is not.
        let text = String::from_utf8_lossy(&data);
        let t1 = Instant::now();
        feed(kind, &text, &mut pool, &mut rng);
        t_mutate += t1 - t0;
        t_feed += t1.elapsed();
        if n % 1000 == 999 {
            let t2 = Instant::now();
            let (size, next) = build_and_render(&pool, &history, 1_700_000_000_000 + n as i64);
            t_build += t2.elapsed();
            history = next;
            graphs += 1;
            largest = largest.max(size);
        }
    }
    let (size, _) = build_and_render(&pool, &history, 1_800_000_000_000);
    println!(
        "{inputs} damaged inputs from {} seeds through the parsers, {} graphs built and rendered \
         (largest {} resources), in {:.1} s (mutating {:.1} s, parsing {:.1} s, building \
         and rendering {:.1} s)",
        seeds.len(),
        graphs + 1,
        largest.max(size),
        started.elapsed().as_secs_f64(),
        t_mutate.as_secs_f64(),
        t_feed.as_secs_f64(),
        t_build.as_secs_f64()
    );
    assert!(
        !pool.pods.is_empty() && !pool.docker.is_empty(),
        "the pool must hold objects for the builder to join"
    );
}

// ---------------------------------------------------------------------------------------
// The HTTP server's request parsing

fn random_token(rng: &mut Rng, alphabet: &[u8], max: usize) -> String {
    let len = rng.below(max + 1);
    (0..len)
        .map(|_| *rng.pick(alphabet) as char)
        .collect::<String>()
}

/// A request head, usually almost valid, with one or a few things wrong.
fn request_head(rng: &mut Rng) -> Vec<u8> {
    let methods = [
        "GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "get", "G\x00T", "", "GET GET", "PATCH",
        "CONNECT", "TRACE", "BREW",
    ];
    let targets = [
        "/",
        "/cluster",
        "/status",
        "*",
        "http://127.0.0.1/",
        "//",
        "/%",
        "/%zz",
        "/a b",
        "/\x7f",
        "/?",
        "/#",
        "",
    ];
    let versions = [
        "HTTP/1.1",
        "HTTP/1.0",
        "HTTP/2",
        "HTTP/1.1x",
        "http/1.1",
        "HTTP/9.9",
        "",
        "HTTP/1.1 x",
        "HTTP/",
    ];
    let mut head = String::new();
    let method = rng.pick(&methods).to_string();
    let mut target = rng.pick(&targets).to_string();
    if rng.chance(3) {
        target.push_str(&random_token(
            rng,
            b"/abc%?=&#.~:@!$'()*+,;\x01\"<>\\^`{|}",
            40,
        ));
    }
    if rng.chance(50) {
        target.push_str(&"a".repeat(rng.below(40_000)));
    }
    let version = rng.pick(&versions).to_string();
    let sep = if rng.chance(10) { "  " } else { " " };
    head.push_str(&format!("{method}{sep}{target}{sep}{version}"));
    let eol = |rng: &mut Rng| *rng.pick(&["\r\n", "\r\n", "\r\n", "\n", "\r", "\n\r"]);
    head.push_str(eol(rng));
    let header_names = [
        "Host",
        "Content-Length",
        "Transfer-Encoding",
        "Connection",
        "Accept-Encoding",
        "If-None-Match",
        "Expect",
        "X-Long",
        " Host",
        "Host ",
        "",
        "Bad Name",
        "\x00",
    ];
    let header_values = [
        "127.0.0.1",
        "0",
        "5",
        "-1",
        "18446744073709551616",
        "1, 2",
        "chunked",
        "gzip, chunked",
        "close",
        "keep-alive",
        "upgrade",
        "100-continue",
        "gzip;q=0",
        "\"*\"",
        "",
        "\x01\x02",
        "é",
    ];
    for _ in 0..rng.below(8) {
        let name = rng.pick(&header_names).to_string();
        let mut value = rng.pick(&header_values).to_string();
        if name == "X-Long" {
            value = "v".repeat(rng.below(20_000));
        }
        let colon = if rng.chance(15) { "" } else { ":" };
        head.push_str(&format!("{name}{colon} {value}"));
        head.push_str(eol(rng));
        if rng.chance(20) {
            // Obsolete line folding.
            head.push_str(" folded");
            head.push_str(eol(rng));
        }
    }
    if !rng.chance(6) {
        head.push_str(eol(rng));
    }
    let mut bytes = head.into_bytes();
    if rng.chance(5) {
        // A body, or the start of a second pipelined request.
        let tail: &[&[u8]] = &[
            b"hello",
            b"0\r\n\r\n",
            b"zz\r\nxx\r\n",
            b"GET / HTTP/1.1\r\n\r\n",
            b"\xff\xfe\x00",
        ];
        let piece: &&[u8] = rng.pick(tail);
        bytes.extend_from_slice(piece);
    }
    if rng.chance(10) {
        let at = rng.below(bytes.len() + 1);
        bytes.insert(at, *rng.pick(b"\x00\xff\r\n:\x80"));
    }
    bytes
}

/// Sends `head`, closes the write side and reads what comes back; `Err` if the server
/// neither answered nor closed within the bound.
fn exchange(addr: SocketAddr, head: &[u8]) -> Result<Vec<u8>, String> {
    let mut stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(15)))
        .unwrap();
    // The server may answer and close before reading everything (431, 400): not a failure.
    let _ = stream.write_all(head);
    let _ = stream.shutdown(std::net::Shutdown::Write);
    let mut reply = Vec::new();
    match stream.read_to_end(&mut reply) {
        Ok(_) => Ok(reply),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => Ok(reply),
        Err(e) => Err(format!(
            "no answer and no close: {e} after {} bytes",
            reply.len()
        )),
    }
}

#[test]
fn generated_request_heads_are_answered_or_closed_and_the_server_keeps_serving() {
    let handler: Handler = Arc::new(|request| {
        Response::new(
            200,
            "text/plain",
            Body::Owned(format!("ok {}", request.target.len()).into_bytes()),
        )
    });
    let server = http::serve("127.0.0.1:0".parse().unwrap(), 2, "fuzz", handler).unwrap();
    let addr = server.local_addr();
    let heads = env_count("FUZZ_HEADS", 3000);
    let started = Instant::now();
    let answered = AtomicUsize::new(0);
    let statuses = parking_lot::Mutex::new(BTreeSet::new());
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let (answered, statuses) = (&answered, &statuses);
            s.spawn(move || {
                let mut rng = Rng::new(seed() ^ (t + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15));
                for _ in 0..heads / 4 {
                    let head = request_head(&mut rng);
                    let reply = exchange(addr, &head)
                        .unwrap_or_else(|e| panic!("{e}: {:?}", String::from_utf8_lossy(&head)));
                    if reply.is_empty() {
                        continue;
                    }
                    assert!(
                        reply.starts_with(b"HTTP/1.1 ") || reply.starts_with(b"HTTP/1.0 "),
                        "not HTTP: {:?} for {:?}",
                        String::from_utf8_lossy(&reply[..reply.len().min(200)]),
                        String::from_utf8_lossy(&head)
                    );
                    let status =
                        String::from_utf8_lossy(&reply[9..12.min(reply.len())]).into_owned();
                    statuses.lock().insert(status);
                    answered.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    let reply = client::get(addr, "/after");
    assert_eq!(reply.status, 200);
    assert_eq!(reply.text(), "ok 6");
    println!(
        "{} generated request heads: {} answered (statuses {:?}), the rest closed, in {:.1} s",
        heads / 4 * 4,
        answered.load(Ordering::Relaxed),
        statuses.lock(),
        started.elapsed().as_secs_f64()
    );
    server.shutdown();
}

// ---------------------------------------------------------------------------------------
// The minion's allow-list

/// Contract §1, written out again here: GET or HEAD, and one of the six shapes, with an ID of
/// `[A-Za-z0-9][A-Za-z0-9_.:-]{0,254}` and no `..`.
fn spec_allows(line: &str) -> bool {
    let Some((method, rest)) = line.split_once(' ') else {
        return false;
    };
    let Some(target) = rest.strip_suffix(" HTTP/1.1") else {
        return false;
    };
    if !matches!(method, "GET" | "HEAD") {
        return false;
    }
    let id_ok = |id: &str| {
        let mut chars = id.chars();
        id.len() <= 255
            && chars.next().is_some_and(|c| c.is_ascii_alphanumeric())
            && chars.all(|c| c.is_ascii_alphanumeric() || "_.:-".contains(c))
            && !id.contains("..")
    };
    let segments: Vec<&str> = target.split('/').collect();
    match segments.as_slice() {
        ["", "containers", "json"] | ["", "version"] | ["", "_ping"] => true,
        ["", "containers", id, "json"] | ["", "images", id, "json"] => id_ok(id),
        ["", "containers", id, "top?ps_args=aux"] => id_ok(id),
        _ => false,
    }
}

fn minion_target(rng: &mut Rng) -> String {
    if rng.chance(3) {
        // An allowed request, sometimes in an encoding the allow-list must undo.
        let id = match rng.below(4) {
            0 => "4f1c2a9e8b7d".to_string(),
            1 => "sha256:0123456789abcdef".to_string(),
            2 => "%61%62c".to_string(),
            _ => format!("a{}", random_token(rng, b"abcdef0123456789", 64)),
        };
        return match rng.below(6) {
            0 => "/containers/json".to_string(),
            1 => format!("/containers/{id}/json"),
            2 => format!("/containers/{id}/top?ps_args=aux"),
            3 => format!("/images/{id}/json"),
            4 => "/version".to_string(),
            _ => "/_ping".to_string(),
        };
    }
    let ids = [
        "abc123",
        "4f1c2a9e8b7d",
        "sha256:0123456789abcdef",
        "my_container.1",
        "a",
        "-leading",
        ".hidden",
        "..",
        ".",
        "a..b",
        "a/b",
        "a%2Fb",
        "a%252Fb",
        "%2e%2e",
        "%2E%2E%2Fetc",
        "%61bc",
        "%",
        "%zz",
        "%00",
        "a%20b",
        "é",
        "%C3%A9",
        "a;b",
        "a?b",
        "a#b",
        "a\\b",
        "",
    ];
    let mut id = rng.pick(&ids).to_string();
    if rng.chance(8) {
        id = "a".repeat(250 + rng.below(10));
    }
    if rng.chance(6) {
        id.push_str(&random_token(rng, b"aZ9_.:-%/2Fe?&=#", 6));
    }
    let shapes = [
        "/containers/json".to_string(),
        format!("/containers/{id}/json"),
        format!("/containers/{id}/top"),
        format!("/images/{id}/json"),
        "/version".to_string(),
        "/_ping".to_string(),
        format!("/containers/{id}/exec"),
        format!("/containers/{id}/attach"),
        format!("/containers/{id}/archive"),
        "/containers/create".to_string(),
        format!("/exec/{id}/start"),
        "/info".to_string(),
        format!("/v1.41/containers/{id}/json"),
        format!("/containers/{id}/json/../../exec"),
        format!("/images/{id}/push"),
        format!("//containers/{id}/json"),
        format!("/containers//{id}/json"),
        format!("/containers/{id}/json/"),
        format!("http://127.0.0.1/containers/{id}/json"),
    ];
    let mut target = rng.pick(&shapes).clone();
    let queries = [
        "",
        "",
        "",
        "?ps_args=aux",
        "?ps_args=aux",
        "?ps_args=-ef",
        "?ps_args=aux&ps_args=aux",
        "?ps_args=aux&x=1",
        "?ps_args=%61ux",
        "?ps_args",
        "?",
        "?all=1",
        "?ps_args=aux#x",
        "?ps_args=aux;rm",
    ];
    let query: &&str = rng.pick(&queries);
    target.push_str(query);
    if rng.chance(12) {
        // Case games on the fixed words.
        target = target.replace("containers", "Containers");
    }
    target
}

#[test]
fn generated_requests_never_reach_the_daemon_outside_the_allow_list() {
    let fake = FakeDocker::start();
    let config = AgentConfig {
        runtime_sockets: vec![fake.socket().to_path_buf()],
        client: ClientConfig {
            connect_timeout: Duration::from_millis(500),
            io_timeout: Duration::from_millis(500),
            request_timeout: Duration::from_secs(2),
            max_body: 1 << 20,
            bearer: None,
        },
        ..AgentConfig::default()
    };
    let server = http::serve(
        "127.0.0.1:0".parse().unwrap(),
        2,
        "minion",
        proxy::handler(
            Arc::new(Agent::new(config)),
            Arc::new(cluster_insight::auth::Authorizer::Open),
            2,
        ),
    )
    .unwrap();
    let addr = server.local_addr();
    let count = env_count("FUZZ_MINION", 3000);
    let started = Instant::now();
    let methods = [
        "GET", "GET", "GET", "GET", "GET", "HEAD", "POST", "PUT", "DELETE", "get", "OPTIONS",
        "PATCH", "TRACE",
    ];
    let forwarded_answers = AtomicUsize::new(0);
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let forwarded_answers = &forwarded_answers;
            s.spawn(move || {
                let mut rng = Rng::new(seed() ^ (t + 7).wrapping_mul(0xD1B5_4A32_D192_ED03));
                for _ in 0..count / 4 {
                    let method = *rng.pick(&methods);
                    let target = minion_target(&mut rng);
                    let head = format!(
                        "{method} {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n"
                    );
                    let reply =
                        exchange(addr, head.as_bytes()).unwrap_or_else(|e| panic!("{e}: {head:?}"));
                    let status =
                        String::from_utf8_lossy(&reply[9.min(reply.len())..12.min(reply.len())])
                            .into_owned();
                    match status.as_str() {
                        "200" | "404" => {
                            forwarded_answers.fetch_add(1, Ordering::Relaxed);
                        }
                        // 503: as many requests as may wait on the daemon already do.
                        "400" | "403" | "405" | "414" | "431" | "503" => {}
                        other => panic!("status {other:?} for {head:?}"),
                    }
                }
            });
        }
    });
    let lines = fake.request_lines();
    for line in &lines {
        assert!(spec_allows(line), "the daemon received {line:?}");
    }
    // The generator reaches the allowed shapes too, so the check above has material.
    let answers = forwarded_answers.load(Ordering::Relaxed);
    assert!(answers > count / 20, "only {answers} forwarded");
    assert!(!lines.is_empty());
    let distinct: BTreeSet<&String> = lines.iter().collect();
    println!(
        "{} generated requests through the minion: {} reached the daemon ({} distinct), all \
         inside the allow-list, in {:.1} s",
        count / 4 * 4,
        lines.len(),
        distinct.len(),
        started.elapsed().as_secs_f64()
    );
    // The same request within a second is answered from the daemon's last answer, so the
    // daemon saw at most as many requests as there were forwarded answers.
    assert!(lines.len() <= answers, "{} > {answers}", lines.len());
    server.shutdown();
}
