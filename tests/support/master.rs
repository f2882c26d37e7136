//! The real `cluster-insight` binary in master mode, started on a free loopback port against
//! a simulated cluster, killed when dropped; and the graph checks the suites share.
//!
//! The master's output goes to a file the test can read.

use std::collections::{BTreeMap, HashSet};
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command};
use std::time::{Duration, Instant};

use cluster_insight_sim::Simulator;
use serde_json::Value;

use super::client::get;

pub(crate) struct MasterProcess {
    pub(crate) child: Child,
    pub(crate) addr: SocketAddr,
    pub(crate) log: PathBuf,
}

pub(crate) fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl MasterProcess {
    /// A master that lets every caller read (`--no-auth`): what most tests are not about.
    pub(crate) fn start(args: &[&str]) -> MasterProcess {
        let mut with = vec!["--no-auth"];
        with.extend_from_slice(args);
        MasterProcess::start_with_auth(&with)
    }

    /// A master whose authorization is what `args` say.
    pub(crate) fn start_with_auth(args: &[&str]) -> MasterProcess {
        MasterProcess::start_with_env(args, &[])
    }

    /// A master started with `args` and these environment variables, and none of the
    /// caller's that would choose an API server (no `KUBECONFIG`, a `HOME` without
    /// `.kube/config`).
    pub(crate) fn start_with_env(args: &[&str], env: &[(&str, &str)]) -> MasterProcess {
        let port = free_port();
        let log = std::env::temp_dir().join(format!("ci-master-{}-{port}.log", std::process::id()));
        let file = std::fs::File::create(&log).unwrap();
        let child = Command::new(env!("CARGO_BIN_EXE_cluster-insight"))
            .args([
                "--mode",
                "master",
                "--bind",
                "127.0.0.1",
                "--port",
                &port.to_string(),
            ])
            .args(args)
            .env_remove("KUBERNETES_SERVICE_HOST")
            .env_remove("CLUSTER_INSIGHT_MODE")
            .env_remove("KUBECONFIG")
            .env("HOME", "/nonexistent")
            .envs(env.iter().copied())
            .stdout(file.try_clone().unwrap())
            .stderr(file)
            .spawn()
            .expect("the binary starts");
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(
                Instant::now() < deadline,
                "master did not listen: {}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        MasterProcess { child, addr, log }
    }

    /// Against `sim`, refreshing every 0.5 s unless `extra` says otherwise (a later flag
    /// wins).
    pub(crate) fn against(sim: &Simulator, extra: &[&str]) -> MasterProcess {
        let mut with = vec!["--no-auth"];
        with.extend_from_slice(extra);
        MasterProcess::against_with_auth(sim, &with)
    }

    /// [`MasterProcess::against`] whose authorization is what `extra` says.
    pub(crate) fn against_with_auth(sim: &Simulator, extra: &[&str]) -> MasterProcess {
        let url = sim.kube_url();
        let port = sim.docker_port().to_string();
        let mut args = vec![
            "--kubernetes-url",
            url.as_str(),
            "--docker-port",
            port.as_str(),
            "--refresh-interval",
            "0.5",
        ];
        args.extend_from_slice(extra);
        MasterProcess::start_with_auth(&args)
    }

    pub(crate) fn pid(&self) -> u32 {
        self.child.id()
    }

    pub(crate) fn status(&self) -> Value {
        get(self.addr, "/status").json()
    }

    /// Waits for a snapshot whose refresh count is at least `refreshes`.
    pub(crate) fn wait_for_refreshes(&self, refreshes: u64) -> Value {
        self.wait_for(refreshes, true)
    }

    /// Waits until `refreshes` refreshes have been made, whether or not any gave a graph
    /// (one that never listed the API server serves none).
    pub(crate) fn wait_for_attempts(&self, refreshes: u64) -> Value {
        self.wait_for(refreshes, false)
    }

    /// Waits until `refreshes` refreshes have been made and, with `graph`, `/cluster`
    /// answers.
    fn wait_for(&self, refreshes: u64, graph: bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let status = self.status();
            if status["refresh"]["count"].as_u64().unwrap_or(0) >= refreshes
                && (!graph || get(self.addr, "/cluster").status == 200)
            {
                return status;
            }
            assert!(
                Instant::now() < deadline,
                "no refresh {refreshes}: {status}\n{}",
                self.log_text()
            );
            std::thread::sleep(Duration::from_millis(30));
        }
    }

    /// Waits until `more` refreshes have completed after the current one.
    pub(crate) fn wait_for_more_refreshes(&self, more: u64) -> Value {
        let now = self.status()["refresh"]["count"].as_u64().unwrap_or(0);
        self.wait_for_refreshes(now + more)
    }

    pub(crate) fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// A line of `/proc/PID/status` in KiB (`VmRSS`, `VmHWM`).
    pub(crate) fn memory_kib(&self, field: &str) -> u64 {
        let text = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        text.lines()
            .find_map(|l| l.strip_prefix(field)?.strip_prefix(':'))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or_else(|| panic!("no {field} in /proc status"))
    }
}

impl Drop for MasterProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

/// The IDs of a graph's resources, in its order.
pub(crate) fn resource_ids(graph: &Value) -> Vec<String> {
    graph["resources"]
        .as_array()
        .map(|all| {
            all.iter()
                .filter_map(|r| r["id"].as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn type_of(id: &str) -> &str {
    id.split(':').next().unwrap_or("")
}

/// Resource counts by type and relation counts by "type Source->Target", from a graph.
pub(crate) fn counts(graph: &Value) -> (BTreeMap<String, usize>, BTreeMap<String, usize>) {
    let mut resources = BTreeMap::new();
    for r in graph["resources"].as_array().unwrap() {
        *resources
            .entry(r["type"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    let mut relations = BTreeMap::new();
    for r in graph["relations"].as_array().unwrap() {
        let key = format!(
            "{} {}->{}",
            r["type"].as_str().unwrap(),
            type_of(r["source"].as_str().unwrap()),
            type_of(r["target"].as_str().unwrap())
        );
        *relations.entry(key).or_default() += 1;
    }
    (resources, relations)
}

/// The graph without what was learnt from pods' statuses (`source: kubernetes`: the
/// containers and images of nodes whose runtime was not read) and the relations that
/// touch it: what the nodes' runtimes gave.
pub(crate) fn runtime_part(graph: &Value) -> Value {
    let mut graph = graph.clone();
    let from_status = |r: &Value| r["annotations"]["source"] == "kubernetes";
    let dropped: std::collections::HashSet<String> = graph["resources"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| from_status(r))
        .filter_map(|r| r["id"].as_str().map(str::to_string))
        .collect();
    graph["resources"]
        .as_array_mut()
        .unwrap()
        .retain(|r| !from_status(r));
    graph["relations"].as_array_mut().unwrap().retain(|r| {
        !dropped.contains(r["source"].as_str().unwrap_or_default())
            && !dropped.contains(r["target"].as_str().unwrap_or_default())
    });
    graph
}

/// Checks what every graph must satisfy whatever was collected: the contract §3 shape, unique
/// resource IDs, every relation once with both ends among the resources. Returns a
/// description of the first violation.
pub(crate) fn graph_consistency(graph: &Value) -> Result<(), String> {
    if graph["success"] != true || !graph["timestamp"].is_string() {
        return Err("no success or timestamp".into());
    }
    let resources = graph["resources"].as_array().ok_or("no resources list")?;
    let relations = graph["relations"].as_array().ok_or("no relations list")?;
    let mut ids = HashSet::new();
    for r in resources {
        let id = r["id"]
            .as_str()
            .ok_or_else(|| format!("resource without id: {r}"))?;
        if !ids.insert(id) {
            return Err(format!("resource {id} appears twice"));
        }
        if r["type"].as_str() != Some(type_of(id)) || !r["properties"].is_object() {
            return Err(format!("resource {id} has a bad type or properties"));
        }
    }
    let mut seen = HashSet::new();
    for r in relations {
        let (Some(kind), Some(source), Some(target)) = (
            r["type"].as_str(),
            r["source"].as_str(),
            r["target"].as_str(),
        ) else {
            return Err(format!("malformed relation {r}"));
        };
        if !ids.contains(source) || !ids.contains(target) {
            return Err(format!("relation with a missing end: {r}"));
        }
        if !seen.insert((kind, source, target)) {
            return Err(format!("relation appears twice: {r}"));
        }
    }
    Ok(())
}
