//! The live graph end to end (contract §7): the change feed, its Server-Sent Events stream,
//! the graph as it was (`at=`), and queries, against the real binary reading the cluster
//! simulator. What the feed says is checked by applying it: the graph a client had, with
//! every change since applied in order, must be the graph the master serves now.

use crate::support::client::{get, request};
use crate::support::master::MasterProcess;

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use cluster_insight_sim::{SimSpec, Simulator};
use serde_json::Value;

/// A graph as a client keeps it: resources by ID, relations by (type, source, target).
#[derive(Debug, Clone, PartialEq)]
struct Held {
    resources: BTreeMap<String, Value>,
    relations: BTreeMap<(String, String, String), Value>,
}

fn relation_key(r: &Value) -> (String, String, String) {
    let s = |k: &str| r[k].as_str().unwrap().to_string();
    (s("type"), s("source"), s("target"))
}

/// Asserts that two graphs hold the same, naming only what differs.
fn assert_same(got: &Held, want: &Held, what: &str) {
    let differ = |a: &BTreeMap<String, Value>, b: &BTreeMap<String, Value>| -> Vec<String> {
        a.keys()
            .chain(b.keys())
            .filter(|k| a.get(*k) != b.get(*k))
            .cloned()
            .collect()
    };
    let resources = differ(&got.resources, &want.resources);
    let relations: Vec<_> = got
        .relations
        .keys()
        .chain(want.relations.keys())
        .filter(|k| got.relations.get(*k) != want.relations.get(*k))
        .take(5)
        .collect();
    assert!(
        resources.is_empty() && relations.is_empty(),
        "{what}: resources differ: {:?}; relations differ: {relations:?}",
        &resources[..resources.len().min(5)]
    );
}

impl Held {
    fn of(graph: &Value) -> Held {
        Held {
            resources: graph["resources"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (r["id"].as_str().unwrap().to_string(), r.clone()))
                .collect(),
            relations: graph["relations"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| (relation_key(r), r.clone()))
                .collect(),
        }
    }

    /// Applies one change document; every removal and change must name what is held, every
    /// addition what is not.
    fn apply(&mut self, change: &Value) {
        let list = |part: &str, what: &str| change[part][what].as_array().unwrap().clone();
        for r in list("resources", "removed") {
            let id = r["id"].as_str().unwrap();
            assert!(
                self.resources.remove(id).is_some(),
                "removed {id}, not held"
            );
        }
        for r in list("resources", "changed") {
            let id = r["id"].as_str().unwrap().to_string();
            assert!(
                self.resources.insert(id.clone(), r).is_some(),
                "changed {id}, not held"
            );
        }
        for r in list("resources", "added") {
            let id = r["id"].as_str().unwrap().to_string();
            assert!(
                self.resources.insert(id.clone(), r).is_none(),
                "added {id}, held"
            );
        }
        for r in list("relations", "removed") {
            assert!(self.relations.remove(&relation_key(&r)).is_some(), "{r}");
        }
        for r in list("relations", "changed") {
            assert!(
                self.relations.insert(relation_key(&r), r.clone()).is_some(),
                "{r}"
            );
        }
        for r in list("relations", "added") {
            assert!(
                self.relations.insert(relation_key(&r), r.clone()).is_none(),
                "{r}"
            );
        }
    }
}

fn sequence_of(graph: &Value) -> u64 {
    graph["sequence"].as_u64().expect("a sequence")
}

/// Polls until `done` holds of `/cluster`, for at most 15 s.
fn wait_for(master: &MasterProcess, what: &str, done: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let graph = get(master.addr, "/cluster").json();
        if done(&graph) {
            return graph;
        }
        assert!(Instant::now() < deadline, "{what}: not in time");
        std::thread::sleep(Duration::from_millis(50));
    }
}

fn has(graph: &Value, id: &str) -> bool {
    graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["id"] == id)
}

#[test]
fn every_change_is_in_the_feed_once_and_in_order_and_applying_it_gives_the_graph() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    // Node readings every second: changes come from the watches and from the nodes.
    let master = MasterProcess::against(&sim, &["--refresh-interval", "1"]);
    master.wait_for_refreshes(1);
    let start = get(master.addr, "/cluster").json();
    let since = sequence_of(&start);
    let mut held = Held::of(&start);

    let pods = sim.pods();
    let mut gone = Vec::new();
    for (namespace, name, _) in pods.iter().take(3) {
        assert!(sim.delete_pod(namespace, name));
        gone.push(format!("Pod:{namespace}/{name}"));
        std::thread::sleep(Duration::from_millis(400));
    }
    assert!(sim.restart_container(0, 0).is_some());
    let now = wait_for(&master, "the deletions", |g| {
        gone.iter().all(|id| !has(g, id))
    });
    // And a refresh after the restart, so that it is in the graph too.
    master.wait_for_more_refreshes(2);
    let now = {
        let latest = get(master.addr, "/cluster").json();
        if sequence_of(&latest) > sequence_of(&now) {
            latest
        } else {
            now
        }
    };

    let feed = get(master.addr, &format!("/cluster/changes?since={since}"));
    assert_eq!(feed.status, 200, "{}", feed.text());
    let feed = feed.json();
    assert_eq!(feed["since"], since);
    let changes = feed["changes"].as_array().unwrap();
    assert!(
        changes.len() >= 3,
        "a change per deletion at least: {}",
        changes.len()
    );
    // A chain: each change follows the one before it, each once.
    let mut previous = since;
    for change in changes {
        assert_eq!(change["previous"].as_u64(), Some(previous), "{change}");
        let sequence = change["sequence"].as_u64().unwrap();
        assert!(sequence > previous);
        previous = sequence;
        held.apply(change);
    }
    assert_eq!(feed["sequence"].as_u64(), Some(previous));
    // Applied to what the client had, the feed gives the graph served at its sequence; while
    // refreshes go on publishing, the feed from there catches up with the graph served.
    let mut at = previous;
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let served = get(master.addr, "/cluster").json();
        let more = get(master.addr, &format!("/cluster/changes?since={at}")).json();
        for change in more["changes"].as_array().unwrap() {
            assert_eq!(change["previous"].as_u64(), Some(at), "{change}");
            at = change["sequence"].as_u64().unwrap();
            held.apply(change);
        }
        if sequence_of(&served) == at {
            assert_same(&held, &Held::of(&served), "the feed applied");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the feed did not catch up with the graph"
        );
    }
    assert!(sequence_of(&now) <= previous);

    // A page at a time: the same chain.
    let mut paged = Vec::new();
    let mut from = since;
    loop {
        let page = get(
            master.addr,
            &format!("/cluster/changes?since={from}&limit=2"),
        )
        .json();
        let got = page["changes"].as_array().unwrap().clone();
        assert!(got.len() <= 2);
        from = page["sequence"].as_u64().unwrap();
        paged.extend(got);
        if page["more"] == false {
            break;
        }
    }
    assert_eq!(paged[..changes.len()], changes[..]);
    assert_eq!(feed["more"], false);

    // Nothing since the latest; a sequence never published, or none, is refused.
    let latest = feed["sequence"].as_u64().unwrap();
    let quiet = get(master.addr, &format!("/cluster/changes?since={latest}")).json();
    assert!(quiet["sequence"].as_u64().unwrap() >= latest);
    for (target, status) in [
        (
            format!("/cluster/changes?since={}", latest + 1_000_000),
            410,
        ),
        ("/cluster/changes?since=1".to_string(), 410),
        ("/cluster/changes".to_string(), 400),
        ("/cluster/changes?since=x".to_string(), 400),
        ("/cluster/changes?since=1&from=2".to_string(), 400),
        (format!("/cluster/changes?since={latest}&limit=0"), 400),
    ] {
        let reply = get(master.addr, &target);
        assert_eq!(reply.status, status, "{target}: {}", reply.text());
        assert!(reply.json()["error_message"].as_str().unwrap().len() > 10);
    }
}

/// A stream client: reads events as the server sends them.
struct EventReader {
    reader: BufReader<TcpStream>,
}

#[derive(Debug, Default)]
struct Event {
    id: Option<u64>,
    event: String,
    data: String,
}

impl EventReader {
    fn open(addr: SocketAddr, headers: &[(&str, &str)]) -> EventReader {
        let mut stream = TcpStream::connect(addr).unwrap();
        stream
            .set_read_timeout(Some(Duration::from_secs(20)))
            .unwrap();
        let mut req = "GET /cluster/changes/stream HTTP/1.1\r\nHost: t\r\n".to_string();
        for (n, v) in headers {
            req.push_str(&format!("{n}: {v}\r\n"));
        }
        req.push_str("\r\n");
        stream.write_all(req.as_bytes()).unwrap();
        let mut reader = BufReader::new(stream);
        let mut head = String::new();
        loop {
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            head.push_str(&line);
            if line == "\r\n" || line.is_empty() {
                break;
            }
        }
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        let lower = head.to_ascii_lowercase();
        assert!(lower.contains("content-type: text/event-stream"), "{head}");
        assert!(!lower.contains("content-length"), "{head}");
        EventReader { reader }
    }

    /// The next event (comments and `retry:` skipped).
    fn next(&mut self) -> Event {
        let mut event = Event::default();
        loop {
            let mut line = String::new();
            let n = self.reader.read_line(&mut line).expect("an event in time");
            assert!(n > 0, "the stream ended");
            let line = line.trim_end_matches('\n');
            if line.is_empty() {
                if !event.event.is_empty() {
                    return event;
                }
                continue;
            }
            if let Some(v) = line.strip_prefix("id: ") {
                event.id = Some(v.parse().unwrap());
            } else if let Some(v) = line.strip_prefix("event: ") {
                event.event = v.to_string();
            } else if let Some(v) = line.strip_prefix("data: ") {
                event.data.push_str(v);
            }
        }
    }
}

#[test]
fn the_stream_sends_each_change_as_the_feed_has_it_and_resumes_after_the_last_event_id() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120"]);
    master.wait_for_refreshes(1);
    let start = sequence_of(&get(master.addr, "/cluster").json());

    let mut stream = EventReader::open(master.addr, &[]);
    let sync = stream.next();
    assert_eq!(sync.event, "sync");
    assert_eq!(sync.id, Some(start));
    let data: Value = serde_json::from_str(&sync.data).unwrap();
    assert_eq!(data["reset"], false);

    let pods = sim.pods();
    let mut seen: Vec<Value> = Vec::new();
    let mut previous = start;
    for (namespace, name, _) in pods.iter().take(2) {
        let deleted = Instant::now();
        assert!(sim.delete_pod(namespace, name));
        let id = format!("Pod:{namespace}/{name}");
        // The pod's deletion, and what comes with it (its slices, its controller), may come
        // in one snapshot or several: events until the one that removes it.
        loop {
            let event = stream.next();
            assert_eq!(event.event, "change");
            let change: Value = serde_json::from_str(&event.data).unwrap();
            assert_eq!(Some(change["sequence"].as_u64().unwrap()), event.id);
            assert_eq!(change["previous"].as_u64(), Some(previous), "a chain");
            previous = change["sequence"].as_u64().unwrap();
            let removed = change["resources"]["removed"]
                .as_array()
                .unwrap()
                .iter()
                .any(|r| r["id"] == id.as_str());
            seen.push(change);
            if removed {
                eprintln!("a deletion reached the stream in {:?}", deleted.elapsed());
                break;
            }
        }
    }
    // The same documents as the feed's, in the same order.
    let feed = get(master.addr, &format!("/cluster/changes?since={start}")).json();
    assert_eq!(feed["changes"].as_array().unwrap()[..seen.len()], seen[..]);

    // Resuming after the first event sends the ones after it again, and nothing before.
    let first = seen[0]["sequence"].as_u64().unwrap().to_string();
    let mut resumed = EventReader::open(master.addr, &[("Last-Event-ID", &first)]);
    for expected in &seen[1..] {
        let again = resumed.next();
        assert_eq!(again.event, "change");
        assert_eq!(
            &serde_json::from_str::<Value>(&again.data).unwrap(),
            expected
        );
    }
    // A place the log never had: a sync that says to read the graph again.
    let mut lost = EventReader::open(master.addr, &[("Last-Event-ID", "12")]);
    let sync = lost.next();
    assert_eq!(sync.event, "sync");
    assert_eq!(
        serde_json::from_str::<Value>(&sync.data).unwrap()["reset"],
        true
    );
}

#[test]
fn a_thousand_idle_streams_hold_no_thread_delay_no_one_and_are_let_go_when_they_vanish() {
    if open_files_limit() < 4096 {
        eprintln!("skipped: the limit on open files is below 4,096 (tests/run-all.sh raises it)");
        return;
    }
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120", "--workers", "4"]);
    master.wait_for_refreshes(1);
    let threads_before = master_threads(&master);

    // A client that asks and never reads a byte.
    let mut deaf = TcpStream::connect(master.addr).unwrap();
    deaf.write_all(b"GET /cluster/changes/stream HTTP/1.1\r\nHost: t\r\n\r\n")
        .unwrap();
    let mut idle: Vec<EventReader> = (0..1000)
        .map(|_| EventReader::open(master.addr, &[]))
        .collect();
    for reader in &mut idle {
        assert_eq!(reader.next().event, "sync");
    }
    // Streams hold no thread: the workers are free, and so are answers.
    let asked = Instant::now();
    assert_eq!(get(master.addr, "/healthz").status, 200);
    assert_eq!(get(master.addr, "/cluster").status, 200);
    eprintln!(
        "with 1,000 streams open, /healthz and /cluster took {:?}",
        asked.elapsed()
    );
    assert!(
        master_threads(&master) <= threads_before + 2,
        "no thread per stream"
    );
    let metrics = get(master.addr, "/metrics").text();
    assert!(
        metrics.contains("\ncluster_insight_change_streams 1001\n"),
        "every stream counted"
    );
    // Up to 1,024 streams; the next is told to poll instead.
    let mut more: Vec<EventReader> = (0..23)
        .map(|_| EventReader::open(master.addr, &[]))
        .collect();
    let refused = get(master.addr, "/cluster/changes/stream");
    assert_eq!(refused.status, 503, "{}", refused.text());
    assert!(refused.text().contains("/cluster/changes"));
    for reader in &mut more {
        assert_eq!(reader.next().event, "sync");
    }

    let (namespace, name, _) = sim.pods()[0].clone();
    let deleted = Instant::now();
    assert!(sim.delete_pod(&namespace, &name));
    for reader in idle.iter_mut().step_by(50) {
        assert_eq!(reader.next().event, "change");
    }
    let last = idle.last_mut().unwrap();
    assert_eq!(last.next().event, "change");
    eprintln!(
        "the change reached 1,000 streams in {:?}",
        deleted.elapsed()
    );

    // Clients that vanish are let go as soon as an event finds their connection closed.
    drop(idle);
    drop(more);
    drop(deaf);
    let streams = || -> u64 {
        let metrics = get(master.addr, "/metrics").text();
        metrics
            .lines()
            .find_map(|l| l.strip_prefix("cluster_insight_change_streams "))
            .and_then(|v| v.trim().parse().ok())
            .unwrap()
    };
    let pods = sim.pods();
    let deadline = Instant::now() + Duration::from_secs(20);
    for (namespace, name, _) in pods.iter().take(20) {
        assert!(sim.delete_pod(namespace, name));
        std::thread::sleep(Duration::from_millis(400));
        if streams() == 0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "streams still open: {}",
            streams()
        );
    }
    assert_eq!(streams(), 0);
}

/// This process's limit on open files (the master it starts has the same).
fn open_files_limit() -> u64 {
    std::fs::read_to_string("/proc/self/limits")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("Max open files"))
                .and_then(|l| l.split_whitespace().nth(3))
                .and_then(|v| v.parse().ok())
        })
        .unwrap_or(0)
}

/// The master's thread count, from `/proc`.
fn master_threads(master: &MasterProcess) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{}/status", master.pid())).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Threads:"))
        .and_then(|v| v.trim().parse().ok())
        .unwrap()
}

#[test]
fn the_graph_as_it_was_is_the_graph_that_was_served_then() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120", "--history", "10m"]);
    master.wait_for_refreshes(1);
    let (before_etag, before, before_time) = served_at(&master);
    let (namespace, name, _) = sim.pods()[0].clone();
    let id = format!("Pod:{namespace}/{name}");
    std::thread::sleep(Duration::from_millis(50));
    assert!(sim.delete_pod(&namespace, &name));
    let after = wait_for(&master, "the deletion", |g| !has(g, &id));

    // At the first snapshot's time: that snapshot, exactly.
    let then = get(master.addr, &format!("/cluster?at={before_time}"));
    assert_eq!(then.status, 200, "{}", then.text());
    assert_same(
        &Held::of(&then.json()),
        &Held::of(&before),
        "the graph then",
    );
    assert_eq!(then.json()["sequence"], before["sequence"]);
    // Its ETag is the one that snapshot had, made weak (same content, not always the same
    // bytes), so a client holding the old one gets 304.
    assert_eq!(
        then.header("etag"),
        Some(format!("W/{before_etag}").as_str())
    );
    let not_modified = request(
        master.addr,
        "GET",
        &format!("/cluster?at={before_time}"),
        &[("If-None-Match", &before_etag)],
    );
    assert_eq!(not_modified.status, 304);
    // One resource and one type, then.
    let pod = get(
        master.addr,
        &format!("/cluster/resources/pods/{namespace}/{name}?at={before_time}"),
    );
    assert_eq!(pod.status, 200, "{}", pod.text());
    assert_eq!(pod.json()["resource"]["id"], id.as_str());
    assert_eq!(
        get(
            master.addr,
            &format!("/cluster/resources/pods/{namespace}/{name}")
        )
        .status,
        404
    );
    assert!(!has(&after, &id));
    // Now: the current graph.
    let (_, current, now_time) = served_at(&master);
    let now = get(master.addr, &format!("/cluster?at={now_time}"));
    assert_same(&Held::of(&now.json()), &Held::of(&current), "the graph now");
    // An offset sent unencoded (its `+` arrives as a space) is the same time.
    let offset = before_time.replace('Z', "+00:00");
    let same = get(master.addr, &format!("/cluster?at={offset}"));
    assert_eq!(same.status, 200, "{}", same.text());
    assert_eq!(same.json()["sequence"], before["sequence"]);

    for (at, status) in [
        ("2000-01-01T00:00:00Z", 410),
        ("2999-01-01T00:00:00Z", 400),
        ("yesterday", 400),
    ] {
        let reply = get(master.addr, &format!("/cluster?at={at}"));
        assert_eq!(reply.status, status, "{at}: {}", reply.text());
    }
    let status = master.status();
    assert_eq!(status["history"]["keepSeconds"], 600);
    assert!(
        status["history"]["changes"].as_u64().unwrap() >= 1,
        "{status}"
    );
}

/// A snapshot (its ETag and graph) and a time at which it was the one served: the same
/// snapshot is served before and after that time.
fn served_at(master: &MasterProcess) -> (String, Value, String) {
    loop {
        let reply = get(master.addr, "/cluster");
        std::thread::sleep(Duration::from_millis(20));
        let time =
            cluster_insight_wire::time::rfc3339_millis(cluster_insight_wire::time::now_millis());
        std::thread::sleep(Duration::from_millis(20));
        let again = get(master.addr, "/cluster");
        if reply.header("etag") == again.header("etag") {
            return (
                reply.header("etag").unwrap().to_string(),
                reply.json(),
                time,
            );
        }
    }
}

fn ids(reply: &Value) -> Vec<String> {
    crate::support::master::resource_ids(reply)
}

#[test]
fn queries_select_by_namespace_type_labels_and_neighbourhood() {
    let sim = Simulator::start(SimSpec::default()).unwrap();
    let master = MasterProcess::against(&sim, &["--refresh-interval", "120"]);
    master.wait_for_refreshes(1);
    let all = get(master.addr, "/cluster").json();
    let type_of = |id: &str| id.split(':').next().unwrap().to_string();

    // By namespace: its objects, its pods' containers and their processes, nothing else.
    let production = get(master.addr, "/cluster?namespace=production").json();
    let got = ids(&production);
    assert!(got.iter().any(|id| id.starts_with("Pod:production/")));
    assert!(got.iter().any(|id| id.starts_with("Container:")), "{got:?}");
    assert!(got
        .iter()
        .all(|id| id.contains("production")
            || ["Container", "Process"].contains(&type_of(id).as_str())));
    assert!(!got.iter().any(|id| id.starts_with("Pod:default/")));
    // Relations only among what was selected.
    let selected: std::collections::HashSet<&str> = got.iter().map(String::as_str).collect();
    for r in production["relations"].as_array().unwrap() {
        assert!(selected.contains(r["source"].as_str().unwrap()));
        assert!(selected.contains(r["target"].as_str().unwrap()));
    }

    // By type, several, in any spelling the REST API takes.
    let typed = ids(&get(master.addr, "/cluster/resources?type=pods&type=svc").json());
    let expected: Vec<String> = ids(&all)
        .into_iter()
        .filter(|id| id.starts_with("Pod:") || id.starts_with("Service:"))
        .collect();
    assert_eq!(typed, expected);

    // By labels, in kubectl's syntax, on a type's list.
    let pod = all["resources"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["type"] == "Pod" && r["properties"]["metadata"]["labels"].is_object())
        .unwrap();
    let (key, value) = pod["properties"]["metadata"]["labels"]
        .as_object()
        .unwrap()
        .iter()
        .next()
        .unwrap();
    let selector = format!("{key}%3D{}", value.as_str().unwrap());
    let labelled = ids(&get(
        master.addr,
        &format!("/cluster/resources/pods?labelSelector={selector}"),
    )
    .json());
    assert!(labelled.contains(&pod["id"].as_str().unwrap().to_string()));
    let not = ids(&get(
        master.addr,
        &format!(
            "/cluster/resources/pods?labelSelector={key}!%3D{}",
            value.as_str().unwrap()
        ),
    )
    .json());
    assert!(!not.contains(&pod["id"].as_str().unwrap().to_string()));
    assert_eq!(
        labelled.len() + not.len(),
        ids(&get(master.addr, "/cluster/resources/pods").json()).len()
    );

    // Around a pod: its node, its containers, what owns or balances it.
    let id = pod["id"].as_str().unwrap();
    let near = get(master.addr, &format!("/cluster?around={id}&depth=1")).json();
    let near_ids = ids(&near);
    for r in all["relations"].as_array().unwrap() {
        if r["source"] == id {
            assert!(near_ids.contains(&r["target"].as_str().unwrap().to_string()));
        }
        if r["target"] == id {
            assert!(near_ids.contains(&r["source"].as_str().unwrap().to_string()));
        }
    }
    let at_zero = ids(&get(master.addr, &format!("/cluster?around={id}&depth=0")).json());
    assert_eq!(at_zero, [id.to_string()]);

    // A query's answer keeps ETags and gzip.
    let target = "/cluster?type=pods&namespace=default";
    let first = get(master.addr, target);
    let etag = first.header("etag").unwrap().to_string();
    let same = get(master.addr, "/cluster?namespace=default&type=pods");
    assert_eq!(
        same.header("etag"),
        Some(etag.as_str()),
        "the same query, in another order"
    );
    assert_eq!(
        request(master.addr, "GET", target, &[("If-None-Match", &etag)]).status,
        304
    );
    let zipped = request(master.addr, "GET", target, &[("Accept-Encoding", "gzip")]);
    assert_eq!(zipped.header("content-encoding"), Some("gzip"));
    let mut plain = Vec::new();
    flate2::read::GzDecoder::new(&zipped.body[..])
        .read_to_end(&mut plain)
        .unwrap();
    assert_eq!(plain, first.body);

    // `/debug` draws the same selection.
    let drawn = get(master.addr, "/debug?namespace=production&type=pods");
    assert_eq!(drawn.status, 200, "{}", drawn.text());
    assert!(drawn
        .header("content-type")
        .unwrap()
        .starts_with("text/vnd.graphviz"));
    let dot = drawn.text();
    let production_pods: Vec<String> = ids(&all)
        .into_iter()
        .filter(|id| id.starts_with("Pod:production/"))
        .collect();
    assert!(!production_pods.is_empty());
    for id in &production_pods {
        assert!(dot.contains(&format!("\"{id}\"")), "{id} not drawn");
    }
    assert!(!dot.contains("\"Pod:default/"), "{dot}");
    assert!(!dot.contains("\"Node:"), "{dot}");

    // Wrong queries are told so.
    for (target, status, says) in [
        (
            "/cluster?nmespace=default",
            400,
            "namespace, type, labelSelector",
        ),
        (
            "/cluster/resources/pods?type=nodes",
            400,
            "unknown query parameter",
        ),
        ("/status?verbose=1", 400, "takes none"),
        ("/cluster?type=widgets", 404, "unknown resource type"),
        ("/cluster?labelSelector=a%20in%20(b", 400, "labelSelector"),
        ("/cluster?depth=2", 400, "around"),
        ("/cluster?around=Pod:nowhere/none", 404, "no resource"),
        ("/cluster?around=Cluster:x&depth=1000", 400, "depth"),
        ("/cluster/resources/pods/default/none", 404, "no resource"),
    ] {
        let reply = get(master.addr, target);
        assert_eq!(reply.status, status, "{target}: {}", reply.text());
        assert!(reply.text().contains(says), "{target}: {}", reply.text());
    }
}

#[test]
fn a_master_started_again_with_its_history_dir_serves_the_history_it_had() {
    let mut sim = Simulator::start(SimSpec::default()).unwrap();
    let dir = crate::support::fake_docker::temp_dir("history-dir");
    let dir_arg = dir.to_str().unwrap().to_string();
    let flags = [
        "--refresh-interval",
        "120",
        "--history-dir",
        dir_arg.as_str(),
    ];
    let master = MasterProcess::against(&sim, &flags);
    master.wait_for_refreshes(1);
    let (_, first, first_time) = served_at(&master);
    let pods = sim.pods();
    let (namespace, name, _) = &pods[0];
    let gone = format!("Pod:{namespace}/{name}");
    assert!(sim.delete_pod(namespace, name));
    wait_for(&master, "the first deletion", |g| !has(g, &gone));
    let (_, second, second_time) = served_at(&master);
    // Once the store has the snapshot served, the process is killed: no orderly shutdown.
    let deadline = Instant::now() + Duration::from_secs(10);
    while master.status()["history"]["store"]["committedSequence"] != second["sequence"] {
        assert!(
            Instant::now() < deadline,
            "the store did not commit in time"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    drop(master);

    // While no master runs, another pod goes.
    let (namespace, name, _) = &pods[1];
    let gone_meanwhile = format!("Pod:{namespace}/{name}");
    assert!(sim.delete_pod(namespace, name));

    let master = MasterProcess::against(&sim, &flags);
    master.wait_for_refreshes(1);
    let now = wait_for(&master, "the graph", |g| !has(g, &gone_meanwhile));
    assert!(sequence_of(&now) > sequence_of(&second));
    // The graphs served by the first process, at their times.
    for (time, then) in [(&first_time, &first), (&second_time, &second)] {
        let reply = get(master.addr, &format!("/cluster?at={time}"));
        assert_eq!(reply.status, 200, "{}", reply.text());
        let reply = reply.json();
        assert_eq!(reply["sequence"], then["sequence"]);
        assert_same(
            &Held::of(&reply),
            &Held::of(then),
            "a graph of the first process",
        );
    }
    // The feed goes through the restart: one chain from the first graph to the current one,
    // with the pod that went meanwhile in the change between the two processes.
    let since = sequence_of(&first);
    let feed = get(master.addr, &format!("/cluster/changes?since={since}")).json();
    let mut held = Held::of(&first);
    let mut at = since;
    let mut removed = Vec::new();
    for change in feed["changes"].as_array().unwrap() {
        assert_eq!(change["previous"].as_u64(), Some(at), "{change}");
        at = change["sequence"].as_u64().unwrap();
        held.apply(change);
        for r in change["resources"]["removed"].as_array().unwrap() {
            removed.push(r["id"].as_str().unwrap().to_string());
        }
    }
    assert!(
        removed.contains(&gone) && removed.contains(&gone_meanwhile),
        "{removed:?}"
    );
    let (_, current, _) = served_at(&master);
    if sequence_of(&current) == at {
        assert_same(&held, &Held::of(&current), "the feed through the restart");
    }
    let status = master.status();
    assert!(status["history"]["oldestSequence"].as_u64() <= first["sequence"].as_u64());
    assert!(status["history"]["store"]["path"]
        .as_str()
        .unwrap()
        .starts_with(&dir_arg));
    assert!(status["history"]["store"]["error"].is_null(), "{status}");

    // An orderly stop writes what is queued: a change published just before SIGTERM is in
    // the history the next process reads.
    let (namespace, name, _) = &pods[2];
    let gone_last = format!("Pod:{namespace}/{name}");
    assert!(sim.delete_pod(namespace, name));
    let before_stop = wait_for(&master, "the last deletion", |g| !has(g, &gone_last));
    let stopped = std::process::Command::new("kill")
        .args(["-TERM", &master.pid().to_string()])
        .status()
        .unwrap();
    assert!(stopped.success());
    let mut master = master;
    let exit = master.child.wait().unwrap();
    assert_eq!(exit.code(), Some(0));
    drop(master);
    let master = MasterProcess::against(&sim, &flags);
    master.wait_for_refreshes(1);
    let feed = get(
        master.addr,
        &format!("/cluster/changes?since={}", sequence_of(&before_stop)),
    );
    assert_eq!(feed.status, 200, "{}", feed.text());
    // The next change follows that snapshot: the store had it.
    assert_eq!(
        feed.json()["changes"][0]["previous"],
        before_stop["sequence"],
        "{}",
        feed.text()
    );
    drop(master);

    // A file that is not a store: the master says so and does not start.
    let bad = crate::support::fake_docker::temp_dir("history-bad");
    std::fs::write(
        bad.join("history.redb"),
        b"not a database, and long enough to be read as one",
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
        .args([
            "--mode",
            "master",
            "--bind",
            "127.0.0.1",
            "--port",
            "0",
            "--no-auth",
        ])
        .args(["--kubernetes-url", &sim.kube_url()])
        .args(["--history-dir", bad.to_str().unwrap()])
        .env_remove("KUBERNETES_SERVICE_HOST")
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(3), "{err}");
    assert!(
        err.contains("--history-dir") && err.contains("history.redb"),
        "{err}"
    );
    let _ = std::fs::remove_dir_all(&dir);
    let _ = std::fs::remove_dir_all(&bad);
}

/// `graph` without what only a master's own history decides (every timestamp), and without
/// the `kind` and `apiVersion` a watch's objects carry and a list's items do not, nor the
/// `resourceVersion` (the simulator's list and events may differ there); with its
/// nodes' containers, processes and images only when `runtimes` says.
fn comparable(graph: &Value, runtimes: bool) -> Held {
    let mut held = Held::of(graph);
    for r in held
        .resources
        .values_mut()
        .chain(held.relations.values_mut())
    {
        r.as_object_mut().unwrap().remove("timestamp");
        if let Some(properties) = r.get_mut("properties").and_then(Value::as_object_mut) {
            properties.remove("kind");
            properties.remove("apiVersion");
            if let Some(meta) = properties
                .get_mut("metadata")
                .and_then(Value::as_object_mut)
            {
                meta.remove("resourceVersion");
            }
        }
    }
    if !runtimes {
        let of_runtime = |id: &str| {
            ["Container:", "Process:", "Image:"]
                .iter()
                .any(|p| id.starts_with(p))
        };
        held.resources.retain(|id, _| !of_runtime(id));
        held.relations
            .retain(|(_, source, target), _| !of_runtime(source) && !of_runtime(target));
    }
    held
}

#[test]
fn a_graph_made_from_the_last_one_is_the_graph_a_new_master_builds() {
    // Node agents read call by call, and none (the nodes then told by their pods'
    // statuses): between refreshes every build comes from the watches, and is made from
    // the last graph wherever it can be. (Nodes read from their runtimes are not read again
    // between refreshes: a deleted pod's containers stay until then, so there the two are
    // compared without them.)
    for (spec, flags, runtimes) in [
        ("nodes=3,pods-per-node=4", vec![], false),
        (
            "nodes=4,pods-per-node=5,docker=false,deployments=2,statefulsets=1,cronjobs=1",
            vec!["--no-docker"],
            true,
        ),
    ] {
        let mut sim = Simulator::start(SimSpec::parse_size(spec).unwrap()).unwrap();
        let mut args = vec!["--refresh-interval", "300"];
        args.extend(&flags);
        let master = MasterProcess::against(&sim, &args);
        master.wait_for_refreshes(1);
        let start = sequence_of(&get(master.addr, "/cluster").json());

        // First what changes in place: a label no selector reads, the nodes' heartbeats.
        let pods = sim.pods();
        let (ns, name, _) = &pods[3];
        assert!(sim.label_pod(ns, name, "note", "nothing-selects-this"));
        sim.heartbeat();
        let labelled = format!("Pod:{ns}/{name}");
        wait_for(&master, "the label", |g| {
            g["resources"].as_array().unwrap().iter().any(|r| {
                r["id"] == labelled
                    && r["properties"]["metadata"]["labels"]["note"] == "nothing-selects-this"
            })
        });
        // Then what the rules read: pods go, a label every selector reads.
        let (gone_ns, gone_name, _) = &pods[1];
        assert!(sim.delete_pod(gone_ns, gone_name));
        let (ns, name, _) = &pods[2];
        assert!(sim.label_pod(ns, name, "app", "moved-away"));
        let (last_ns, last_name, _) = pods.last().unwrap();
        assert!(sim.delete_pod(last_ns, last_name));
        let gone = [
            format!("Pod:{gone_ns}/{gone_name}"),
            format!("Pod:{last_ns}/{last_name}"),
        ];
        let moved = format!("Pod:{ns}/{name}");
        let made = wait_for(&master, "the changes", |g| {
            gone.iter().all(|id| !has(g, id))
                && g["resources"].as_array().unwrap().iter().any(|r| {
                    r["id"] == moved && r["properties"]["metadata"]["labels"]["app"] == "moved-away"
                })
        });
        let status = master.status();
        assert_eq!(
            status["refresh"]["count"], 1,
            "{spec}: no refresh came between"
        );
        let builds = &status["refresh"]["builds"];
        assert!(
            builds["inPlace"].as_u64().unwrap() > 0 && builds["spliced"].as_u64().unwrap() > 0,
            "{spec}: made from the last graph, in place and spliced: {builds}"
        );
        assert!(sequence_of(&made) > start);

        let fresh = MasterProcess::against(&sim, &args);
        fresh.wait_for_refreshes(1);
        let whole = get(fresh.addr, "/cluster").json();
        assert_same(
            &comparable(&made, runtimes),
            &comparable(&whole, runtimes),
            &format!("{spec}: made from the last, against built whole"),
        );
    }
}
