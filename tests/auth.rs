//! Who may read: the master and the minion (the real binary) ask the simulated API server
//! who a caller's token is and whether they may read the path (TokenReview,
//! SubjectAccessReview), or check a shared token; probes need none.

use std::net::SocketAddr;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cluster_insight_sim::{SimSpec, Simulator};

use crate::support::client::{get, request, Reply};
use crate::support::fake_docker::{temp_dir, FakeDocker};
use crate::support::master::{free_port, MasterProcess};

fn as_bearer(addr: SocketAddr, path: &str, token: &str) -> Reply {
    let value = format!("Bearer {token}");
    request(addr, "GET", path, &[("Authorization", value.as_str())])
}

fn small() -> SimSpec {
    SimSpec {
        nodes: 2,
        pods_per_node: 2,
        ..SimSpec::default()
    }
}

/// The user of the master's own token for minions, as a projected service-account token
/// would name it.
const MASTER_USER: &str = "system:serviceaccount:cluster-insight:cluster-insight-master";

#[test]
fn the_api_server_decides_who_reads_the_master() {
    let sim = Simulator::start(small()).unwrap();
    sim.add_token("ann-token", "ann", &["readers"], &[]);
    sim.add_token("bob-token", "bob", &["others"], &[]);
    // A token for minions is not one for the master's API.
    sim.add_token(
        "minion-token",
        "ann",
        &["readers"],
        &["cluster-insight-minion"],
    );
    // Paths are reviewed under /cluster-insight, as controller.json's role grants them.
    sim.grant("readers", "/cluster-insight/cluster*");
    sim.grant("readers", "/cluster-insight/status");
    // What the API server's own paths are granted says nothing of the master's.
    sim.grant("readers", "/metrics");
    let master = MasterProcess::against_with_auth(&sim, &["--delegated-auth"]);
    let addr = master.addr;
    // The probes need no token.
    assert_eq!(get(addr, "/healthz").status, 200);
    let deadline = Instant::now() + Duration::from_secs(20);
    while get(addr, "/readyz").status != 200 {
        assert!(Instant::now() < deadline, "{}", master.log_text());
        std::thread::sleep(Duration::from_millis(50));
    }

    let anonymous = get(addr, "/cluster");
    assert_eq!(anonymous.status, 401);
    assert_eq!(anonymous.header("WWW-Authenticate"), Some("Bearer"));
    assert!(anonymous.text().contains("no bearer token"));
    assert_eq!(as_bearer(addr, "/cluster", "made-up").status, 401);
    assert_eq!(as_bearer(addr, "/cluster", "minion-token").status, 401);
    let forbidden = as_bearer(addr, "/cluster", "bob-token");
    assert_eq!(forbidden.status, 403);
    assert!(forbidden.text().contains("bob may not get /cluster"));

    let allowed = as_bearer(addr, "/cluster", "ann-token");
    assert_eq!(allowed.status, 200, "{}", allowed.text());
    assert!(allowed.json()["resources"].as_array().unwrap().len() > 10);
    assert_eq!(
        as_bearer(addr, "/cluster/resources/Pod", "ann-token").status,
        200
    );
    assert_eq!(as_bearer(addr, "/status", "ann-token").status, 200);
    // Granted /cluster* and /status, not the rest.
    assert_eq!(as_bearer(addr, "/metrics", "ann-token").status, 403);
    // A refusal says nothing of the graph.
    assert!(!forbidden.text().contains("Pod:"));
    assert!(master
        .log_text()
        .contains("authorization: delegated to the API server"));
}

#[test]
fn a_shared_token_file_guards_the_master() {
    let sim = Simulator::start(small()).unwrap();
    let dir = temp_dir("auth-token");
    let file = dir.join("token");
    std::fs::write(&file, "s3cret-token\n").unwrap();
    let master =
        MasterProcess::against_with_auth(&sim, &["--auth-token-file", file.to_str().unwrap()]);
    assert_eq!(get(master.addr, "/healthz").status, 200);
    assert_eq!(get(master.addr, "/status").status, 401);
    assert_eq!(as_bearer(master.addr, "/status", "s3cret").status, 401);
    assert_eq!(
        as_bearer(master.addr, "/status", "s3cret-token").status,
        200
    );
    // The map's files hold no cluster data: every caller gets them, and the page asks for a
    // token when the API refuses it. The endpoints' page names the cluster: it is guarded.
    for open in ["/", "/ui/map.js", "/ui/vendor/cytoscape.min.js"] {
        assert_eq!(get(master.addr, open).status, 200, "{open}");
    }
    assert_eq!(get(master.addr, "/api").status, 401);
    assert_eq!(get(master.addr, "/ui/secret").status, 401);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn an_empty_token_file_is_a_configuration_error() {
    let dir = temp_dir("auth-empty");
    let file = dir.join("token");
    std::fs::write(&file, "\n").unwrap();
    for mode in ["master", "minion"] {
        let out = Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
            .args(["--mode", mode, "--bind", "127.0.0.1", "--port", "0"])
            .args(["--auth-token-file", file.to_str().unwrap()])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{mode}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--auth-token-file") && err.contains("empty"),
            "{err}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

struct MinionProcess(Child);

impl Drop for MinionProcess {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A real minion on node 0's address (`127.0.1.1:port`) reading `docker`, with `auth`
/// flags; returns once it listens.
fn start_minion(docker: &FakeDocker, port: u16, auth: &[&str]) -> MinionProcess {
    let minion = MinionProcess(
        Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
            .args(["--mode", "minion", "--bind", "127.0.1.1"])
            .args(["--port", &port.to_string()])
            .args(["--runtime-socket", docker.socket().to_str().unwrap()])
            .args(auth)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let addr = SocketAddr::from(([127, 0, 1, 1], port));
    let deadline = Instant::now() + Duration::from_secs(10);
    while std::net::TcpStream::connect(addr).is_err() {
        assert!(Instant::now() < deadline, "the minion did not listen");
        std::thread::sleep(Duration::from_millis(20));
    }
    minion
}

/// A master given a shared token presents it to the minions, which let it in; a master with
/// another token is refused, says so, and does not take the refusal for an older minion.
#[test]
fn a_shared_token_lets_the_master_read_its_minions() {
    let sim = Simulator::start(SimSpec {
        with_docker: false,
        ..small()
    })
    .unwrap();
    let docker = FakeDocker::start();
    let dir = temp_dir("shared-token");
    let (token, other) = (dir.join("token"), dir.join("other"));
    std::fs::write(&token, "the-shared-token").unwrap();
    std::fs::write(&other, "another-token").unwrap();
    let port = free_port();
    let _minion = start_minion(
        &docker,
        port,
        &["--auth-token-file", token.to_str().unwrap()],
    );
    let node_name = sim.node_names()[0].clone();
    let node_of = |file: &std::path::Path| {
        // The minion's port, not the simulator's (it serves no Docker APIs).
        let master = MasterProcess::against_with_auth(
            &sim,
            &[
                "--docker-port",
                &port.to_string(),
                "--auth-token-file",
                file.to_str().unwrap(),
            ],
        );
        let token = std::fs::read_to_string(file).unwrap();
        let value = format!("Bearer {token}");
        // Its own /status needs the token too.
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status = request(master.addr, "GET", "/status", &[("Authorization", &value)]);
            assert_eq!(status.status, 200, "{}", master.log_text());
            let node = status.json()["sources"]["nodes"][&node_name].clone();
            let read = node["collection"] == "complete" || node["collection"] == "failed";
            if read || Instant::now() > deadline {
                return node;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    let node = node_of(&token);
    assert_eq!(node["collection"], "complete", "{node}");
    let node = node_of(&other);
    assert_eq!(node["collection"], "failed", "{node}");
    let error = node["error"].as_str().unwrap();
    assert!(error.contains("refused the master's token"), "{error}");
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A real minion on node 0's address, reading `docker`, asking `sim` who its callers are:
/// the master reads it with a token made for minions, and only such a token is let in.
#[test]
fn minions_let_in_the_master_by_a_token_made_for_minions() {
    let sim = Simulator::start(SimSpec {
        with_docker: false,
        ..small()
    })
    .unwrap();
    sim.add_token("for-minions", MASTER_USER, &[], &["cluster-insight-minion"]);
    sim.add_token("for-the-api", MASTER_USER, &[], &[]);
    sim.add_token("stranger", "eve", &[], &["cluster-insight-minion"]);
    sim.grant(MASTER_USER, "/cluster-insight-minion/node");
    sim.grant(MASTER_USER, "/cluster-insight-minion/containers/*");
    let docker = FakeDocker::start();
    let port = free_port();
    let node0 = SocketAddr::from(([127, 0, 1, 1], port));
    let kube_url = sim.kube_url();
    let _minion = start_minion(
        &docker,
        port,
        &["--kubernetes-url", &kube_url, "--delegated-auth"],
    );
    assert_eq!(get(node0, "/healthz").status, 200);
    assert_eq!(get(node0, "/node").status, 401);
    assert_eq!(get(node0, "/containers/json").status, 401);
    // The master's token for the API server is not let in: what a node sees of the master
    // must not open the API server, so the master never sends it there.
    assert_eq!(as_bearer(node0, "/node", "for-the-api").status, 401);
    assert_eq!(as_bearer(node0, "/node", "stranger").status, 403);
    assert_eq!(as_bearer(node0, "/node", "for-minions").status, 200);

    let dir = temp_dir("minion-token");
    let token = dir.join("minion-token");
    std::fs::write(&token, "for-minions").unwrap();
    let master = MasterProcess::against(
        &sim,
        &[
            "--docker-port",
            &port.to_string(),
            "--minion-token-file",
            token.to_str().unwrap(),
        ],
    );
    let node_name = sim.node_names()[0].clone();
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let status = master.wait_for_more_refreshes(1);
        let node = &status["sources"]["nodes"][&node_name];
        if node["status"] == "OK" && node["collection"] == "complete" {
            assert!(node["objects"].as_u64().unwrap() > 0, "{node}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the master cannot read the minion: {node}"
        );
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn serving_the_network_with_no_way_of_authorizing_is_refused() {
    for mode in ["master", "minion"] {
        let out = Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
            .args(["--mode", mode, "--bind", "0.0.0.0", "--port", "0"])
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env("HOME", "/nonexistent")
            .env_remove("KUBECONFIG")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(3), "{mode}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(
            err.contains("--bind 0.0.0.0")
                && err.contains("--auth-token-file")
                && err.contains("--no-auth"),
            "{mode}: {err}"
        );
    }
}
