//! The cluster simulator over real HTTP on loopback: list shapes and paging, counts against
//! `expected()`, Docker endpoints and errors, every fault switch, mutations, and the real
//! `kubectl` against the simulated API server.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use cluster_insight_sim::{Fault, NodeLatency, SimSpec, Simulator};
use serde_json::Value;

/// One HTTP/1.1 exchange as the test client saw it.
#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
    /// The body ended before the announced Content-Length.
    short: bool,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A keep-alive connection.
struct Conn {
    reader: BufReader<TcpStream>,
}

impl Conn {
    fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
        stream.set_read_timeout(Some(Duration::from_secs(20)))?;
        Ok(Conn {
            reader: BufReader::new(stream),
        })
    }

    fn send(&mut self, method: &str, path: &str) -> std::io::Result<()> {
        let request =
            format!("{method} {path} HTTP/1.1\r\nHost: sim\r\nAccept: application/json\r\n\r\n");
        self.reader.get_mut().write_all(request.as_bytes())
    }

    fn receive(&mut self, head_only: bool) -> std::io::Result<Reply> {
        let mut line = String::new();
        self.reader.read_line(&mut line)?;
        if line.is_empty() {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "closed before the status line",
            ));
        }
        let status: u16 = line
            .split_whitespace()
            .nth(1)
            .and_then(|s| s.parse().ok())
            .expect("status line");
        let mut headers = Vec::new();
        loop {
            line.clear();
            self.reader.read_line(&mut line)?;
            let trimmed = line.trim_end();
            if trimmed.is_empty() {
                break;
            }
            let (n, v) = trimmed.split_once(':').expect("header line");
            headers.push((n.trim().to_string(), v.trim().to_string()));
        }
        let length: usize = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .map(|(_, v)| v.parse().expect("length"))
            .expect("Content-Length");
        let mut body = Vec::new();
        if !head_only {
            self.reader
                .by_ref()
                .take(length as u64)
                .read_to_end(&mut body)?;
        }
        let short = !head_only && body.len() < length;
        Ok(Reply {
            status,
            headers,
            body,
            short,
        })
    }

    fn get(&mut self, path: &str) -> std::io::Result<Reply> {
        self.send("GET", path)?;
        self.receive(false)
    }
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    Conn::open(addr)
        .and_then(|mut c| c.get(path))
        .unwrap_or_else(|e| panic!("GET {path}: {e}"))
}

fn docker_addr(sim: &Simulator, node: usize) -> SocketAddr {
    SocketAddr::new(sim.node_addresses()[node].into(), sim.docker_port())
}

/// Every item of a list, fetched in pages of `limit` over one connection.
fn list_all(sim: &Simulator, path: &str, limit: usize) -> (Vec<Value>, usize) {
    let mut conn = Conn::open(sim.kube_addr()).expect("connect");
    let mut items = Vec::new();
    let mut token = String::new();
    let mut pages = 0;
    for _ in 0..10_000 {
        let sep = if path.contains('?') { '&' } else { '?' };
        let url = if token.is_empty() {
            format!("{path}{sep}limit={limit}")
        } else {
            format!("{path}{sep}limit={limit}&continue={token}")
        };
        let reply = conn.get(&url).expect("page");
        assert_eq!(
            reply.status,
            200,
            "{url}: {}",
            String::from_utf8_lossy(&reply.body)
        );
        let page = reply.json();
        pages += 1;
        assert_eq!(page["apiVersion"], "v1");
        assert!(page["kind"].as_str().unwrap().ends_with("List"));
        assert!(page["metadata"]["resourceVersion"]
            .as_str()
            .is_some_and(|rv| !rv.is_empty()));
        let chunk = page["items"].as_array().expect("items");
        assert!(chunk.len() <= limit);
        items.extend(chunk.iter().cloned());
        match page["metadata"]["continue"].as_str() {
            Some(next) => {
                assert!(page["metadata"]["remainingItemCount"].as_u64().unwrap() > 0);
                token = next.to_string();
            }
            None => return (items, pages),
        }
    }
    panic!("paging of {path} did not end");
}

fn kinds(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|i| {
            format!(
                "{}/{}",
                i["metadata"]["namespace"].as_str().unwrap_or(""),
                i["metadata"]["name"].as_str().unwrap()
            )
        })
        .collect()
}

#[test]
fn lists_page_and_match_expected_counts() {
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let expected = sim.expected().clone();
    for (path, kind) in [
        ("/api/v1/nodes", "Node"),
        ("/api/v1/pods", "Pod"),
        ("/api/v1/services", "Service"),
        ("/api/v1/replicationcontrollers", "ReplicationController"),
    ] {
        let (items, pages) = list_all(&sim, path, 5);
        assert_eq!(items.len(), expected.resources[kind], "{path}");
        assert_eq!(pages, items.len().div_ceil(5).max(1), "{path}");
        let names = kinds(&items);
        let unique: BTreeSet<&String> = names.iter().collect();
        assert_eq!(
            unique.len(),
            names.len(),
            "paging repeated an item of {path}"
        );
        // Paged and unpaged lists agree.
        let whole = get(sim.kube_addr(), path).json();
        assert_eq!(kinds(whole["items"].as_array().unwrap()), names);
        assert!(whole["metadata"].get("continue").is_none());
        assert_eq!(whole["kind"], format!("{kind}List"));
    }
    // Namespaced lists partition the whole.
    let (all, _) = list_all(&sim, "/api/v1/pods", 500);
    let mut by_ns: BTreeMap<String, usize> = BTreeMap::new();
    for pod in &all {
        *by_ns
            .entry(pod["metadata"]["namespace"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    assert!(by_ns.len() >= 2);
    for (ns, n) in &by_ns {
        let (items, _) = list_all(&sim, &format!("/api/v1/namespaces/{ns}/pods"), 2);
        assert_eq!(items.len(), *n, "{ns}");
    }
    assert!(sim.request_counts().kube_list_pages > 10);
}

#[test]
fn objects_look_like_the_real_ones() {
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let (pods, _) = list_all(&sim, "/api/v1/pods", 100);
    let (nodes, _) = list_all(&sim, "/api/v1/nodes", 100);
    let (services, _) = list_all(&sim, "/api/v1/services", 100);
    let addresses: Vec<String> = sim.node_addresses().iter().map(|a| a.to_string()).collect();
    for (node, addr) in nodes.iter().zip(&addresses) {
        let addrs = node["status"]["addresses"].as_array().unwrap();
        assert!(addrs
            .iter()
            .any(|a| a["type"] == "InternalIP" && a["address"] == addr.as_str()));
        assert!(addrs.iter().any(|a| a["type"] == "Hostname"));
        assert!(node["status"]["conditions"]
            .as_array()
            .unwrap()
            .iter()
            .all(|c| c["lastHeartbeatTime"].is_string()));
        assert_ne!(addr, "127.0.0.1");
    }
    // Same pod name in two namespaces.
    let mut namespaces_of: HashMap<String, BTreeSet<String>> = HashMap::new();
    for pod in &pods {
        namespaces_of
            .entry(pod["metadata"]["name"].as_str().unwrap().into())
            .or_default()
            .insert(pod["metadata"]["namespace"].as_str().unwrap().into());
    }
    assert!(namespaces_of.values().any(|ns| ns.len() > 1));
    // Owned pods point at their controller; pending pods have no node.
    assert!(pods
        .iter()
        .any(|p| p["metadata"]["ownerReferences"][0]["kind"] == "ReplicationController"));
    assert!(pods
        .iter()
        .any(|p| p["spec"].get("nodeName").is_none() && p["status"]["phase"] == "Pending"));
    let running = pods
        .iter()
        .find(|p| p["status"]["phase"] == "Running")
        .unwrap();
    let status = &running["status"]["containerStatuses"][0];
    assert!(status["containerID"]
        .as_str()
        .unwrap()
        .starts_with("docker://"));
    assert!(status["imageID"]
        .as_str()
        .unwrap()
        .starts_with("docker-pullable://"));
    assert!(status["imageID"].as_str().unwrap().contains("@sha256:"));
    // A service without selector and one whose selector matches nothing.
    assert!(services.iter().any(|s| s["spec"].get("selector").is_none()));
    assert!(services
        .iter()
        .any(|s| s["spec"]["selector"]["app"] == "no-such-app"));

    // A single object carries kind and apiVersion; a missing one is a Status.
    let ns = running["metadata"]["namespace"].as_str().unwrap();
    let name = running["metadata"]["name"].as_str().unwrap();
    let one = get(
        sim.kube_addr(),
        &format!("/api/v1/namespaces/{ns}/pods/{name}"),
    );
    assert_eq!(one.status, 200);
    let one = one.json();
    assert_eq!(
        (one["kind"].as_str(), one["apiVersion"].as_str()),
        (Some("Pod"), Some("v1"))
    );
    assert_eq!(one["metadata"]["uid"], running["metadata"]["uid"]);
    let missing = get(
        sim.kube_addr(),
        &format!("/api/v1/namespaces/{ns}/pods/no-such-pod"),
    );
    assert_eq!(missing.status, 404);
    let status = missing.json();
    assert_eq!(status["kind"], "Status");
    assert_eq!(status["reason"], "NotFound");
    assert_eq!(status["code"], 404);
    assert_eq!(status["status"], "Failure");
    let unknown = get(sim.kube_addr(), "/api/v1/secrets");
    assert_eq!(unknown.status, 404);
    assert_eq!(unknown.json()["kind"], "Status");

    // Discovery.
    assert_eq!(get(sim.kube_addr(), "/version").json()["major"], "1");
    assert_eq!(get(sim.kube_addr(), "/api").json()["versions"][0], "v1");
    assert_eq!(get(sim.kube_addr(), "/apis").json()["kind"], "APIGroupList");
    let resources = get(sim.kube_addr(), "/api/v1").json();
    assert!(resources["resources"]
        .as_array()
        .unwrap()
        .iter()
        .any(|r| r["name"] == "pods" && r["namespaced"] == true));
}

#[test]
fn bad_or_expired_continue_tokens_get_410() {
    let sim = Simulator::start(SimSpec::default()).expect("start");
    for token in [
        "not-a-token",
        "eyJ2IjoibWV0YS5rOHMuaW8vdjEiLCJydiI6OTk5OTk5OTksInN0YXJ0IjoieFx1MDAwMCJ9",
    ] {
        let reply = get(
            sim.kube_addr(),
            &format!("/api/v1/pods?limit=2&continue={token}"),
        );
        assert_eq!(reply.status, 410, "{token}");
        let status = reply.json();
        assert_eq!(
            (
                status["kind"].as_str(),
                status["reason"].as_str(),
                status["code"].as_u64()
            ),
            (Some("Status"), Some("Expired"), Some(410))
        );
    }
    // A good token stops working once tokens are expired.
    let first = get(sim.kube_addr(), "/api/v1/pods?limit=2").json();
    let token = first["metadata"]["continue"].as_str().unwrap().to_string();
    assert_eq!(
        get(
            sim.kube_addr(),
            &format!("/api/v1/pods?limit=2&continue={token}")
        )
        .status,
        200
    );
    sim.faults().expire_continue_tokens();
    assert_eq!(
        get(
            sim.kube_addr(),
            &format!("/api/v1/pods?limit=2&continue={token}")
        )
        .status,
        410
    );
    assert_eq!(get(sim.kube_addr(), "/api/v1/pods?limit=2").status, 200);
}

#[test]
fn docker_apis_match_the_kubernetes_view_and_expected_counts() {
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let expected = sim.expected().clone();
    let (pods, _) = list_all(&sim, "/api/v1/pods", 100);
    let status_ids: BTreeSet<String> = pods
        .iter()
        .flat_map(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|s| {
            s["containerID"]
                .as_str()
                .map(|id| id.trim_start_matches("docker://").to_string())
        })
        .collect();
    let pod_uids: BTreeSet<String> = pods
        .iter()
        .map(|p| p["metadata"]["uid"].as_str().unwrap().to_string())
        .collect();
    let (mut containers, mut processes, mut standalone, mut by_label, mut by_status, mut by_name) =
        (0, 0, 0, 0, 0, 0);
    let mut images = BTreeSet::new();
    let mut image_nodes: HashMap<String, BTreeSet<usize>> = HashMap::new();
    for node in 0..sim.node_addresses().len() {
        let mut conn = Conn::open(docker_addr(&sim, node)).expect("connect");
        let list = conn.get("/containers/json").unwrap();
        assert_eq!(list.status, 200);
        assert_eq!(list.header("Api-Version"), Some("1.43"));
        let list = list.json();
        let list = list.as_array().unwrap();
        assert_eq!(list.len(), sim.container_ids(node).len());
        for summary in list {
            let id = summary["Id"].as_str().unwrap();
            assert_eq!(id.len(), 64);
            assert!(summary["Status"].as_str().unwrap().starts_with("Up "));
            let name = summary["Names"][0]
                .as_str()
                .unwrap()
                .trim_start_matches('/')
                .to_string();
            let inspect = conn.get(&format!("/containers/{id}/json")).unwrap();
            assert_eq!(inspect.status, 200);
            let inspect = inspect.json();
            assert_eq!(inspect["Id"], id);
            assert_eq!(inspect["State"]["Running"], true);
            assert!(
                inspect["Config"]["Env"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .any(|e| e.as_str().unwrap().starts_with("DB_PASSWORD="))
                    || name.starts_with("k8s_POD")
            );
            let image_id = inspect["Image"].as_str().unwrap().to_string();
            assert!(image_id.starts_with("sha256:") && image_id.len() == 71);
            let image = conn.get(&format!("/images/{image_id}/json")).unwrap();
            assert_eq!(image.status, 200, "{image_id}");
            assert_eq!(image.json()["Id"], image_id.as_str());
            images.insert(image_id.clone());
            image_nodes.entry(image_id).or_default().insert(node);
            let top = conn
                .get(&format!("/containers/{id}/top?ps_args=aux"))
                .unwrap()
                .json();
            assert_eq!(top["Titles"].as_array().unwrap().len(), 11);
            assert_eq!(top["Titles"][10], "COMMAND");
            for row in top["Processes"].as_array().unwrap() {
                assert!(row.as_array().unwrap().iter().all(Value::is_string));
                processes += 1;
            }
            containers += 1;
            // Which of the three matching ways applies (in the contract's order).
            let labels = &summary["Labels"];
            if labels["io.kubernetes.pod.uid"]
                .as_str()
                .is_some_and(|u| pod_uids.contains(u))
            {
                by_label += 1;
            } else if status_ids.contains(id) {
                by_status += 1;
            } else if name.starts_with("k8s_") && pod_uids.iter().any(|u| name.contains(u.as_str()))
            {
                by_name += 1;
            } else {
                standalone += 1;
            }
        }
    }
    assert_eq!(containers, expected.resources["Container"]);
    assert_eq!(processes, expected.resources["Process"]);
    assert_eq!(images.len(), expected.resources["Image"]);
    assert_eq!(standalone, expected.relations["runs Node->Container"]);
    assert_eq!(
        by_label + by_status + by_name,
        expected.relations["contains Pod->Container"]
    );
    assert!(
        by_label > 0 && by_status > 0 && by_name > 0,
        "{by_label} {by_status} {by_name}"
    );
    assert!(
        image_nodes.values().any(|nodes| nodes.len() > 1),
        "no image shared across nodes"
    );
    let counts = sim.request_counts();
    assert_eq!(counts.docker_inspect as usize, containers);
    assert_eq!(counts.docker_top as usize, containers);
    assert_eq!(counts.docker_image as usize, containers);
}

#[test]
fn docker_lookups_and_errors_behave_like_docker() {
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let addr = docker_addr(&sim, 1);
    let ids = sim.container_ids(1);
    let id = &ids[0];
    let by_prefix = get(addr, &format!("/containers/{}/json", &id[..12])).json();
    assert_eq!(by_prefix["Id"], id.as_str());
    let name = by_prefix["Name"].as_str().unwrap().to_string();
    assert_eq!(
        get(
            addr,
            &format!("/containers/{}/json", name.trim_start_matches('/'))
        )
        .json()["Id"],
        id.as_str()
    );
    assert_eq!(
        get(addr, &format!("/v1.43/containers/{id}/json")).status,
        200
    );
    let image_id = by_prefix["Image"].as_str().unwrap();
    assert_eq!(
        get(addr, &format!("/images/{}/json", &image_id[7..19])).json()["Id"],
        image_id
    );
    assert_eq!(
        get(addr, "/images/registry.k8s.io/pause:3.9/json").status,
        200
    );

    let missing = get(addr, "/containers/0123456789ab/json");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such container: 0123456789ab");
    assert_eq!(get(addr, "/containers/nope/top?ps_args=aux").status, 404);
    let no_image = get(addr, "/images/sha256:0000/json");
    assert_eq!(no_image.status, 404);
    assert!(no_image.json()["message"]
        .as_str()
        .unwrap()
        .starts_with("No such image"));
    // A container of another node is not on this one.
    let other = &sim.container_ids(0)[0];
    assert_eq!(get(addr, &format!("/containers/{other}/json")).status, 404);

    let ping = get(addr, "/_ping");
    assert_eq!((ping.status, ping.body.as_slice()), (200, b"OK".as_slice()));
    assert_eq!(get(addr, "/version").json()["ApiVersion"], "1.43");
    let default_top = get(addr, &format!("/containers/{id}/top")).json();
    assert_eq!(default_top["Titles"][0], "UID");

    // Keep-alive and HEAD on one connection.
    let mut conn = Conn::open(addr).unwrap();
    conn.send("HEAD", "/containers/json").unwrap();
    let head = conn.receive(true).unwrap();
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());
    assert_eq!(conn.get("/_ping").unwrap().status, 200);
    conn.send("POST", "/containers/json").unwrap();
    assert_eq!(conn.receive(false).unwrap().status, 405);
}

#[test]
fn faults_do_what_they_say() {
    let sim = Simulator::start(SimSpec {
        nodes: 2,
        ..SimSpec::default()
    })
    .expect("start");
    let faults = sim.faults();
    let kube = sim.kube_addr();
    let node0 = docker_addr(&sim, 0);
    let node1 = docker_addr(&sim, 1);

    // Refuse: connections are refused until the fault is lifted; other nodes are unaffected.
    faults.set_node(0, Fault::Refuse);
    let refused = TcpStream::connect_timeout(&node0, Duration::from_secs(2))
        .map(|_| ())
        .unwrap_err();
    assert_eq!(refused.kind(), std::io::ErrorKind::ConnectionRefused);
    assert_eq!(get(node1, "/_ping").status, 200);
    faults.set_node(0, Fault::None);
    assert_eq!(get(node0, "/_ping").status, 200);
    faults.set_kube(Fault::Refuse);
    assert!(TcpStream::connect_timeout(&kube, Duration::from_secs(2)).is_err());
    faults.set_kube(Fault::None);
    assert_eq!(get(kube, "/api/v1/nodes").status, 200);

    // Hang: the request is read and never answered.
    faults.set_kube(Fault::Hang);
    let mut conn = Conn::open(kube).unwrap();
    conn.reader
        .get_ref()
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    conn.send("GET", "/api/v1/pods").unwrap();
    let err = conn.receive(false).unwrap_err();
    assert!(
        matches!(
            err.kind(),
            std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
        ),
        "{err}"
    );
    faults.set_kube(Fault::None);

    // Status errors as the API server and the daemon write them.
    faults.set_kube(Fault::Status(500));
    let failed = get(kube, "/api/v1/pods");
    assert_eq!(failed.status, 500);
    assert_eq!(failed.json()["kind"], "Status");
    faults.set_node(1, Fault::Status(500));
    let failed = get(node1, "/containers/json");
    assert_eq!(failed.status, 500);
    assert!(failed.json()["message"].is_string());
    faults.set_node_on(1, "/top", Fault::Status(404));
    assert_eq!(get(node1, "/containers/json").status, 200);
    let id = &sim.container_ids(1)[0];
    assert_eq!(
        get(node1, &format!("/containers/{id}/top?ps_args=aux")).status,
        404
    );
    faults.clear();

    // Malformed and truncated bodies are complete HTTP answers whose JSON does not parse.
    faults.set_node(0, Fault::Malformed);
    let malformed = get(node0, "/containers/json");
    assert_eq!(malformed.status, 200);
    assert!(!malformed.short);
    assert!(serde_json::from_slice::<Value>(&malformed.body).is_err());
    faults.set_kube(Fault::Truncated);
    let truncated = get(kube, "/api/v1/pods");
    assert_eq!(truncated.status, 200);
    assert!(!truncated.short && !truncated.body.is_empty());
    assert!(serde_json::from_slice::<Value>(&truncated.body).is_err());

    // Close mid-body: fewer bytes than announced, then the connection is gone.
    faults.set_kube(Fault::CloseMidBody);
    let mut conn = Conn::open(kube).unwrap();
    let cut = conn.get("/api/v1/pods").unwrap();
    assert!(cut.short && !cut.body.is_empty());
    assert!(conn.get("/api/v1/pods").is_err());
    faults.set_kube(Fault::None);

    // Slow: the answer is normal, only late.
    faults.set_node(0, Fault::Slow(Duration::from_millis(50)));
    let started = std::time::Instant::now();
    assert_eq!(get(node0, "/containers/json").status, 200);
    assert!(started.elapsed() >= Duration::from_millis(50));
    faults.clear();
    assert_eq!(get(kube, "/api/v1/pods").status, 200);
    assert!(get(kube, "/api/v1/pods").json()["items"].is_array());

    // Latency: each kind of node call waits at least its own time.
    sim.set_latency(NodeLatency {
        top: Duration::from_millis(120),
        list: Duration::from_millis(40),
        ..NodeLatency::none()
    });
    let timed = |addr, path: &str| {
        let started = std::time::Instant::now();
        assert_eq!(get(addr, path).status, 200, "{path}");
        started.elapsed()
    };
    let container = sim.container_ids(0)[1].clone();
    let top = timed(node0, &format!("/containers/{container}/top"));
    let list = timed(node0, "/containers/json");
    assert!(top >= Duration::from_millis(120), "{top:?}");
    assert!(list >= Duration::from_millis(40), "{list:?}");
    sim.set_latency(NodeLatency::none());
    sim.shutdown();
    assert!(TcpStream::connect_timeout(&kube, Duration::from_secs(2)).is_err());
    assert!(TcpStream::connect_timeout(&node0, Duration::from_secs(2)).is_err());
}

#[test]
fn mutations_show_in_both_apis_and_in_expected() {
    let mut sim = Simulator::start(SimSpec::default()).expect("start");
    let kube = sim.kube_addr();
    let node0 = docker_addr(&sim, 0);
    // Container 1 of node 0 is the first application container of its first pod.
    let old = sim.container_ids(0)[1].clone();
    let before = get(node0, &format!("/containers/{old}/json")).json();
    let new = sim.restart_container(0, 1).expect("restart");
    assert_ne!(new, old);
    assert_eq!(get(node0, &format!("/containers/{old}/json")).status, 404);
    let after = get(node0, &format!("/containers/{new}/json")).json();
    assert_ne!(after["State"]["StartedAt"], before["State"]["StartedAt"]);
    let (pods, _) = list_all(&sim, "/api/v1/pods", 100);
    let pod = pods
        .iter()
        .find(|p| {
            p["status"]["containerStatuses"]
                .as_array()
                .is_some_and(|s| {
                    s.iter()
                        .any(|c| c["containerID"] == format!("docker://{new}"))
                })
        })
        .expect("the pod lists the new ID");
    assert_eq!(pod["status"]["containerStatuses"][0]["restartCount"], 1);
    assert_eq!(
        pod["status"]["containerStatuses"][0]["lastState"]["terminated"]["containerID"],
        format!("docker://{old}")
    );
    assert!(sim.restart_container(0, 9999).is_none());

    let before = sim.expected().clone();
    let ns = pod["metadata"]["namespace"].as_str().unwrap().to_string();
    let name = pod["metadata"]["name"].as_str().unwrap().to_string();
    assert!(sim.delete_pod(&ns, &name));
    assert!(!sim.delete_pod(&ns, &name));
    assert_eq!(
        get(kube, &format!("/api/v1/namespaces/{ns}/pods/{name}")).status,
        404
    );
    assert_eq!(sim.expected().resources["Pod"], before.resources["Pod"] - 1);
    let per_pod = SimSpec::default().containers_per_pod + 1;
    assert_eq!(
        sim.expected().resources["Container"],
        before.resources["Container"] - per_pod
    );
    assert_eq!(get(node0, &format!("/containers/{new}/json")).status, 404);
    let (pods, _) = list_all(&sim, "/api/v1/pods", 3);
    assert_eq!(pods.len(), sim.expected().resources["Pod"]);

    let id = sim.container_ids(0)[1].clone();
    let before = get(node0, &format!("/containers/{id}/json")).json()["ExecIDs"]
        .as_array()
        .map_or(0, Vec::len);
    assert_eq!(sim.add_exec_ids(0, 1, 50), Some(before + 50));
    let after = get(node0, &format!("/containers/{id}/json")).json();
    assert_eq!(after["ExecIDs"].as_array().unwrap().len(), before + 50);

    // A heartbeat changes the nodes' heartbeat times and resource versions, nothing else.
    let top_before = get(node0, &format!("/containers/{id}/top?ps_args=aux")).body;
    let pods_before = get(kube, "/api/v1/pods").json()["items"].clone();
    let rv_before =
        get(kube, "/api/v1/nodes").json()["items"][0]["metadata"]["resourceVersion"].clone();
    sim.heartbeat();
    let node = &get(kube, "/api/v1/nodes").json()["items"][0];
    assert_ne!(node["metadata"]["resourceVersion"], rv_before);
    assert_eq!(
        get(node0, &format!("/containers/{id}/top?ps_args=aux")).body,
        top_before
    );
    assert_eq!(get(kube, "/api/v1/pods").json()["items"], pods_before);
}

#[test]
fn kubernetes_only_cluster_has_no_docker() {
    let spec = SimSpec::parse_size(
        "nodes=20,pods-per-node=30,docker=false,namespaces=3,controllers=5,services=7",
    )
    .unwrap();
    let sim = Simulator::start(spec.clone()).expect("start");
    assert_eq!(sim.docker_port(), 0);
    let expected = sim.expected();
    assert_eq!(expected.resources["Pod"], spec.total_pods());
    for absent in ["Container", "Image", "Process"] {
        assert!(!expected.resources.contains_key(absent));
    }
    let (pods, pages) = list_all(&sim, "/api/v1/pods", 500);
    assert_eq!(pods.len(), spec.total_pods());
    assert_eq!(pages, 2);
    // Relations by label selectors, counted here from the served objects.
    let (services, _) = list_all(&sim, "/api/v1/services", 500);
    let (controllers, _) = list_all(&sim, "/api/v1/replicationcontrollers", 500);
    let selects = |owner: &Value, selector: &Value| -> usize {
        let Some(selector) = selector.as_object().filter(|s| !s.is_empty()) else {
            return 0;
        };
        pods.iter()
            .filter(|p| p["metadata"]["namespace"] == owner["metadata"]["namespace"])
            .filter(|p| {
                selector
                    .iter()
                    .all(|(k, v)| p["metadata"]["labels"][k] == *v)
            })
            .count()
    };
    let balanced: usize = services
        .iter()
        .map(|s| selects(s, &s["spec"]["selector"]))
        .sum();
    let monitored: usize = controllers
        .iter()
        .map(|c| selects(c, &c["spec"]["selector"]))
        .sum();
    assert_eq!(balanced, expected.relations["loadBalances Service->Pod"]);
    assert_eq!(
        monitored,
        expected.relations["monitors ReplicationController->Pod"]
    );
}

/// kubectl against the simulator, with no kubeconfig of the machine's and its own home.
fn run_kubectl(
    kubectl: &std::path::Path,
    sim: &Simulator,
    home: &std::path::Path,
    args: &[&str],
) -> std::process::Output {
    std::process::Command::new(kubectl)
        .args(["--server", &sim.kube_url(), "--request-timeout=20s"])
        .args(args)
        .env("KUBECONFIG", home.join("none"))
        .env("HOME", home)
        .output()
        .expect("run kubectl")
}

#[test]
fn kubectl_reads_the_simulated_cluster() {
    let kubectl = std::path::Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("\n\n*** SKIPPED: /usr/bin/kubectl not found; the simulator was NOT checked against kubectl ***\n\n");
        return;
    }
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let home = std::env::temp_dir().join(format!("sim-kubectl-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&home);
    let run = |args: &[&str]| {
        let output = run_kubectl(kubectl, &sim, &home, args);
        let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(
            output.status.success(),
            "kubectl {args:?} failed: {stderr}\n{stdout}"
        );
        stdout
    };
    let pods = run(&["get", "pods", "-A"]);
    for (ns, name, _) in sim.pods() {
        assert!(
            pods.lines()
                .any(|l| l.starts_with(&ns) && l.contains(&name)),
            "{ns}/{name} missing from:\n{pods}"
        );
    }
    // The API server prints tables for kubectl: the usual columns and values.
    let header = pods.lines().next().unwrap_or("");
    for column in ["NAMESPACE", "NAME", "READY", "STATUS", "RESTARTS", "AGE"] {
        assert!(header.contains(column), "{column} missing from:\n{pods}");
    }
    assert!(
        pods.contains("Running") && pods.contains("Pending"),
        "{pods}"
    );
    let nodes = run(&["get", "nodes"]);
    assert!(
        nodes.contains("Ready") && nodes.contains("control-plane"),
        "{nodes}"
    );
    for name in sim.node_names() {
        assert!(nodes.contains(&name), "{name} missing from:\n{nodes}");
    }
    let (ns, name, _) = sim.pods()[0].clone();
    let one = run(&["get", "pod", "-n", &ns, &name, "-o", "json"]);
    let one: Value = serde_json::from_str(&one).expect("JSON from kubectl");
    assert_eq!(one["metadata"]["name"], name.as_str());
    let services = run(&["get", "services", "-A", "-o", "wide"]);
    assert!(
        services.contains("orphaned") && services.contains("app=no-such-app"),
        "{services}"
    );
    let controllers = run(&["get", "rc", "-A"]);
    assert!(
        controllers.contains("DESIRED") && controllers.contains("frontend"),
        "{controllers}"
    );
    // Today's kinds, by kubectl's short names, with their API groups.
    let workloads = run(&["get", "deploy,rs,sts,ds,job,cronjob,ing,pvc,pv,hpa", "-A"]);
    for kind in [
        "deployment.apps/",
        "replicaset.apps/",
        "statefulset.apps/",
        "daemonset.apps/",
        "job.batch/",
        "cronjob.batch/",
        "ingress.networking.k8s.io/",
        "persistentvolumeclaim/",
        "persistentvolume/",
        "horizontalpodautoscaler.autoscaling/",
    ] {
        assert!(
            workloads.contains(kind),
            "{kind} missing from:\n{workloads}"
        );
    }
    // Label selectors, and YAML made by kubectl from the JSON.
    let app = "node-exporter";
    let selected = run(&[
        "get",
        "pods",
        "-A",
        "-l",
        &format!("app={app}"),
        "-o",
        "name",
    ]);
    let expected = sim
        .pods()
        .iter()
        .filter(|(_, n, _)| n.starts_with(app))
        .count();
    assert_eq!(selected.lines().count(), expected, "{selected}");
    let none = run(&[
        "get",
        "pods",
        "-A",
        "-l",
        "app in (no-such-app)",
        "-o",
        "name",
    ]);
    assert!(none.trim().is_empty(), "{none}");
    let yaml = run(&["get", "deploy", "-A", "-o", "yaml"]);
    assert!(
        yaml.contains("kind: Deployment") && yaml.contains("matchLabels"),
        "{yaml}"
    );
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn handles_can_move_between_threads() {
    fn send_sync<T: Send + Sync>() {}
    send_sync::<Simulator>();
    send_sync::<cluster_insight_sim::Faults>();
    let sim = Simulator::start(SimSpec {
        nodes: 1,
        ..SimSpec::default()
    })
    .expect("start");
    let faults = sim.faults();
    let url = std::thread::spawn(move || {
        faults.set_node(0, Fault::Status(503));
        sim.kube_url()
    })
    .join()
    .unwrap();
    assert!(url.starts_with("http://127.0.0.1:"));
}

/// The events of a watch request that ends by itself (`timeoutSeconds`), as JSON values.
fn watch_events(sim: &Simulator, target: &str) -> Vec<Value> {
    // Chunked, to the end of the stream.
    let reply = crate::support::client::get(sim.kube_addr(), target);
    assert_eq!(reply.status, 200, "{target}");
    String::from_utf8_lossy(&reply.body)
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| serde_json::from_str(l).expect("one JSON event per line"))
        .collect()
}

#[test]
fn watches_stream_what_there_is_then_changes_and_410_after_compaction() {
    let mut sim = Simulator::start(SimSpec::default()).expect("start");
    let (ns, name, _) = sim.pods()[0].clone();
    // No version: the objects there are now, as ADDED, in the namespace asked.
    let events = watch_events(
        &sim,
        &format!("/api/v1/namespaces/{ns}/pods?watch=1&timeoutSeconds=1"),
    );
    let in_ns = sim.pods().iter().filter(|(n, _, _)| *n == ns).count();
    assert_eq!(events.len(), in_ns);
    assert!(events.iter().all(|e| e["type"] == "ADDED"
        && e["object"]["kind"] == "Pod"
        && e["object"]["apiVersion"] == "v1"
        && e["object"]["metadata"]["namespace"] == ns.as_str()));
    // From the list's version: what changed after it, and bookmarks when asked.
    let list: Value = serde_json::from_slice(&get(sim.kube_addr(), "/api/v1/pods").body).unwrap();
    let version = list["metadata"]["resourceVersion"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(sim.delete_pod(&ns, &name));
    let events = watch_events(
        &sim,
        &format!("/api/v1/pods?watch=1&resourceVersion={version}&allowWatchBookmarks=true&timeoutSeconds=2"),
    );
    let deleted: Vec<&Value> = events.iter().filter(|e| e["type"] == "DELETED").collect();
    assert_eq!(deleted.len(), 1, "{events:?}");
    assert_eq!(deleted[0]["object"]["metadata"]["name"], name.as_str());
    assert!(events.iter().any(|e| e["type"] == "BOOKMARK"), "{events:?}");
    assert!(events.iter().all(|e| e["type"] != "ADDED"), "{events:?}");
    // After compaction, that version is gone: an ERROR event with a 410 Status.
    sim.faults().compact_watch_history();
    let events = watch_events(
        &sim,
        &format!("/api/v1/pods?watch=1&resourceVersion={version}&timeoutSeconds=1"),
    );
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(events[0]["type"], "ERROR");
    assert_eq!(events[0]["object"]["code"], 410);
    assert_eq!(events[0]["object"]["reason"], "Expired");
    assert!(sim.request_counts().kube_watch >= 3);
}

#[test]
fn kubectl_watches_the_simulated_cluster() {
    let kubectl = std::path::Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("\n\n*** SKIPPED: /usr/bin/kubectl not found; the simulator's watch was NOT checked against kubectl ***\n\n");
        return;
    }
    let mut sim = Simulator::start(SimSpec::default()).expect("start");
    let home = std::env::temp_dir().join(format!("sim-kubectl-watch-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&home);
    let mut child = std::process::Command::new(kubectl)
        .args([
            "--server",
            &sim.kube_url(),
            "get",
            "pods",
            "-A",
            "-w",
            "--output-watch-events",
        ])
        .env("KUBECONFIG", home.join("none"))
        .env("HOME", &home)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("run kubectl");
    let (tx, rx) = crossbeam_channel::unbounded::<String>();
    let stdout = child.stdout.take().unwrap();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                return;
            }
        }
    });
    let (ns, name, _) = sim.pods()[0].clone();
    let wait_for = |what: &dyn Fn(&str) -> bool| {
        let deadline = std::time::Instant::now() + Duration::from_secs(20);
        loop {
            let left = deadline.saturating_duration_since(std::time::Instant::now());
            match rx.recv_timeout(left) {
                Ok(line) if what(&line) => return line,
                Ok(_) => {}
                Err(_) => panic!("kubectl never printed the line looked for"),
            }
        }
    };
    // The pods there are, then the deletion as it happens.
    wait_for(&|l| l.contains("ADDED") && l.contains(&name));
    assert!(sim.delete_pod(&ns, &name));
    let line = wait_for(&|l| l.contains("DELETED"));
    assert!(line.contains(&name), "{line}");
    let _ = child.kill();
    let _ = child.wait();
    let _ = std::fs::remove_dir_all(&home);
}

#[test]
fn kubectl_labels_pods_of_the_simulated_cluster() {
    let kubectl = std::path::Path::new("/usr/bin/kubectl");
    if !kubectl.exists() {
        eprintln!("\n\n*** SKIPPED: /usr/bin/kubectl not found; the simulator's PATCH was NOT checked against kubectl ***\n\n");
        return;
    }
    let sim = Simulator::start(SimSpec::default()).expect("start");
    let home = std::env::temp_dir().join(format!("sim-kubectl-label-{}", std::process::id()));
    let _ = std::fs::create_dir_all(&home);
    let run = |args: &[&str]| {
        let output = run_kubectl(kubectl, &sim, &home, args);
        (
            output.status.success(),
            String::from_utf8_lossy(&output.stdout).into_owned()
                + &String::from_utf8_lossy(&output.stderr),
        )
    };
    let (ns, name, _) = sim.pods()[0].clone();
    let labels = |sim: &Simulator| {
        let reply = get(
            sim.kube_addr(),
            &format!("/api/v1/namespaces/{ns}/pods/{name}"),
        );
        let pod: Value = serde_json::from_slice(&reply.body).unwrap();
        pod["metadata"]["labels"].clone()
    };
    let before = labels(&sim);
    let pod = format!("pod/{name}");
    let (ok, out) = run(&["label", "-n", &ns, &pod, "color=blue", "size=large"]);
    assert!(ok, "{out}");
    let after = labels(&sim);
    assert_eq!(after["color"], "blue", "{after}");
    assert_eq!(after["size"], "large", "{after}");
    let (ok, out) = run(&["label", "-n", &ns, &pod, "color-"]);
    assert!(ok, "{out}");
    let mut expected = before.clone();
    expected["size"] = "large".into();
    assert_eq!(labels(&sim), expected);
    // What the simulator does not change is refused, saying so; nothing changed.
    let (ok, out) = run(&["annotate", "-n", &ns, &pod, "a=b"]);
    assert!(!ok && out.contains("metadata.labels alone"), "{out}");
    let (ok, out) = run(&["label", "-n", &ns, "pod/no-such-pod", "a=b"]);
    assert!(!ok && out.contains("not found"), "{out}");
    assert_eq!(labels(&sim), expected);
    let _ = std::fs::remove_dir_all(&home);
}
