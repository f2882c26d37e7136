//! `cluster-insight demo`: a small simulated cluster in this process and a master against
//! it, so that a first look at Cluster Insight needs no cluster at all.

use std::net::{SocketAddr, TcpListener};

use cluster_insight_sim::{SimSpec, Simulator};

use super::master::Master;
use crate::cli::Options;
use crate::collect::kube::{KubeClient, KubeConfig};
use crate::collect::CollectorConfig;
use crate::collect::RuntimeSource;
use crate::graph::Kind;

#[derive(Debug)]
pub enum DemoError {
    /// The `--size` text is not a size.
    Size(String),
    /// The simulator or the master could not start.
    Start(String),
}

/// Runs until the process is stopped.
pub fn run(options: &Options, size: Option<&str>) -> Result<(), DemoError> {
    let mut spec = match size {
        Some(text) => SimSpec::parse_size(text).map_err(DemoError::Size)?,
        // Clusters as they run today: most nodes containerd, one Docker, every agent current.
        None => SimSpec {
            containerd_nodes: 2,
            node_documents: true,
            ..SimSpec::default()
        },
    };
    if options.no_docker {
        spec.with_docker = false;
    }
    let with_docker = spec.with_docker;
    let sim = Simulator::start(spec)
        .map_err(|e| DemoError::Start(format!("cannot start the simulated cluster: {e}")))?;
    let addr = SocketAddr::new(options.bind, options.port());
    let listener = TcpListener::bind(addr).map_err(|e| DemoError::Start(format!("{addr}: {e}")))?;
    let kube = KubeClient::new(&KubeConfig::new(&sim.kube_url()))
        .map_err(|e| DemoError::Start(e.to_string()))?;
    let config = CollectorConfig {
        kube,
        runtimes: if with_docker {
            RuntimeSource::Agents {
                port: sim.docker_port(),
            }
        } else {
            RuntimeSource::Disabled
        },
        runtime_client: crate::config::runtime_client_config(options),
        node_parallelism: options.node_parallelism,
        show_env: options.show_env,
        refresh_interval: options.refresh_interval,
        history: options.history,
        // The default name says what this is; a name given on the command line wins.
        cluster_name: if options.cluster_name == Options::default().cluster_name {
            "demo".to_string()
        } else {
            options.cluster_name.clone()
        },
        created_by: format!("{} (demo)", super::version::binary_version()),
        extra_kinds: options.extra_kinds.clone(),
    };
    // The demo's cluster is made up, and it listens on loopback unless told otherwise.
    if !options.bind.is_loopback() {
        log::warn!(
            "demo: no authorization, and listening on {}: anyone who reaches it may read",
            options.bind
        );
    }
    let auth = std::sync::Arc::new(crate::auth::Authorizer::Open);
    let master = Master::start(config, listener, options.workers, auth, None)
        .map_err(|e| DemoError::Start(format!("cannot start the master: {e}")))?;
    let expected = sim.expected();
    let count = |kind: Kind| expected.resources.get(kind.name()).copied().unwrap_or(0);
    log::info!(
        "demo: a simulated cluster ({} nodes, {} pods, {} containers) at {}",
        count(Kind::NODE),
        count(Kind::POD),
        count(Kind::CONTAINER),
        sim.kube_url()
    );
    println!(
        "Cluster Insight demo: open http://localhost:{}/ (the context graph is at /cluster, \
         DOT at /debug). Stop with Ctrl-C.",
        master.local_addr().port()
    );
    master.join();
    drop(sim);
    Ok(())
}
