//! `cluster-insight`: the command-line entry point. Parses the command line, resolves the
//! configuration, starts the right mode, and is the only place that prints an error chain
//! and chooses the exit code.

#![forbid(unsafe_code)]

use cluster_insight::cli::{self, Command, Mode, Options};
use cluster_insight::master::Master;
use cluster_insight::{config, demo, http_server, minion, simulate, version};
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

/// Why the process ends early, by phase; each phase has its exit code.
enum Failure {
    Usage(String),
    Config(String),
    Listen(String),
    Runtime(String),
}

fn main() -> ExitCode {
    let env_mode = std::env::var("CLUSTER_INSIGHT_MODE").ok();
    let command = match cli::parse(std::env::args_os().skip(1), env_mode.as_deref()) {
        Ok(command) => command,
        Err(e) => return fail(Failure::Usage(e.to_string())),
    };
    let result = match command {
        Command::Help => {
            print!("{}", cli::USAGE);
            Ok(())
        }
        Command::Version => {
            println!("{}", version::binary_version());
            Ok(())
        }
        Command::Run(options) => {
            init_logging(options.debug);
            match options.mode {
                Mode::Master => run_master(&options),
                Mode::Minion => run_minion(&options),
            }
        }
        Command::Demo { options, size } => {
            init_logging(options.debug);
            demo::run(&options, size.as_deref()).map_err(|e| match e {
                demo::DemoError::Size(e) => Failure::Usage(format!("--size: {e}")),
                demo::DemoError::Start(e) => Failure::Listen(e),
            })
        }
        Command::Simulate {
            size,
            kube_objects,
            port,
            bind,
            debug,
        } => {
            init_logging(debug);
            simulate::run(
                size.as_deref(),
                kube_objects.as_deref(),
                SocketAddr::new(bind, port),
            )
            .map_err(Failure::Runtime)
        }
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(failure) => fail(failure),
    }
}

fn fail(failure: Failure) -> ExitCode {
    let (code, what, message) = match failure {
        Failure::Usage(m) => (2, "usage", m),
        Failure::Config(m) => (3, "configuration", m),
        Failure::Listen(m) => (4, "cannot listen", m),
        Failure::Runtime(m) => (1, "error", m),
    };
    eprintln!("cluster-insight: {what}: {message}");
    if code == 2 {
        eprintln!("Try 'cluster-insight --help'.");
    }
    ExitCode::from(code)
}

fn init_logging(debug: bool) {
    let level = if debug {
        log::LevelFilter::Debug
    } else {
        log::LevelFilter::Info
    };
    // Our own modules log at the chosen level; the crates under us only warn.
    let _ = simple_logger::SimpleLogger::new()
        .with_level(log::LevelFilter::Warn)
        .with_module_level("cluster_insight", level)
        .with_utc_timestamps()
        .init();
}

fn bind(options: &Options) -> Result<TcpListener, Failure> {
    let addr = SocketAddr::new(options.bind, options.port());
    TcpListener::bind(addr).map_err(|e| Failure::Listen(format!("{addr}: {e}")))
}

fn run_master(options: &Options) -> Result<(), Failure> {
    let master = config::resolve_master(options).map_err(|e| Failure::Config(e.to_string()))?;
    let listener = bind(options)?;
    log::info!(
        "master on http://{} reading Kubernetes at {} ({}), refreshing every {:?}; version {}",
        listener
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string()),
        master.access.config.base_url,
        master.access.how,
        options.refresh_interval,
        master.collector.created_by,
    );
    let master = Master::start(master.collector, listener, options.workers)
        .map_err(|e| Failure::Runtime(format!("cannot start the master: {e}")))?;
    master.join();
    Ok(())
}

fn run_minion(options: &Options) -> Result<(), Failure> {
    let socket = options
        .docker_socket
        .clone()
        .unwrap_or_else(|| "/var/run/docker.sock".into());
    let listener = bind(options)?;
    log::info!(
        "minion on http://{} forwarding read-only Docker API calls to {}",
        listener
            .local_addr()
            .map_or_else(|_| "?".to_string(), |a| a.to_string()),
        socket.display()
    );
    if !version::socket_exists(&socket) {
        log::warn!(
            "{} does not exist (yet): requests will get 502 until it does",
            socket.display()
        );
    }
    let handler = minion::handler(minion::MinionConfig {
        docker_socket: socket,
        client: cluster_insight::http1::ClientConfig::default(),
    });
    let server = http_server::serve_listener(listener, options.workers, "minion", handler)
        .map_err(|e| Failure::Listen(e.to_string()))?;
    server.join();
    Ok(())
}
