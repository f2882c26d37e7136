//! `cluster-insight simulate`: serves a simulated cluster until the process is stopped.
//!
//! With `--size`, the generated cluster of the simulator crate (a Kubernetes API and one Docker
//! API per node on 127.0.x.y). With `--kube-objects FILE`, a Kubernetes API serving exactly
//! the objects of a v1 `List` file, paged and served like a real API server's (custom
//! resources too, when their definitions are in the file) — for tests that pair a real
//! Docker daemon's containers with pods written for them, or try `--extra-kinds`.

use std::net::SocketAddr;
use std::path::Path;

use cluster_insight_sim::{SimSpec, Simulator};

/// Runs until the process is stopped; errors are start-up errors.
pub fn run(
    size: Option<&str>,
    kube_objects: Option<&Path>,
    addr: SocketAddr,
) -> Result<(), String> {
    let sim = match kube_objects {
        Some(file) => {
            let text =
                std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
            Simulator::start_with_objects(&text, addr.port())
                .map_err(|e| format!("{}: {e}", file.display()))?
        }
        None => {
            let spec = match size {
                Some(text) => SimSpec::parse_size(text).map_err(|e| format!("--size: {e}"))?,
                None => SimSpec::default(),
            };
            Simulator::start_on(spec, addr.port(), 0)
                .map_err(|e| format!("cannot start the simulator: {e}"))?
        }
    };
    println!("kubernetes {}", sim.kube_url());
    if sim.docker_port() != 0 {
        let nodes: Vec<String> = sim.node_addresses().iter().map(|a| a.to_string()).collect();
        println!(
            "docker-port {} nodes {}",
            sim.docker_port(),
            nodes.join(",")
        );
    }
    // Serve until killed: the simulator's threads do the work.
    loop {
        std::thread::park();
    }
}
