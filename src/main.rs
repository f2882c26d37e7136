//! `cluster-insight`: the command-line entry point. Parses the command line, resolves the
//! configuration, starts the right mode, and is the only place that prints an error chain
//! and chooses the exit code.

use cluster_insight::app::master::Master;
use cluster_insight::app::{minion, termination, version};
use cluster_insight::cli::{self, Command, Mode, Options};
use cluster_insight::{config, report};
use std::error::Error;
use std::net::{SocketAddr, TcpListener};
use std::process::ExitCode;

/// Why the process ends early, by phase; each phase has its exit code.
enum Failure {
    Usage(String),
    Config(Box<dyn Error>),
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
            run_demo(&options, size.as_deref())
        }
        Command::Tree(options) => {
            cluster_insight::app::tree::run(&options).map_err(Failure::Runtime)
        }
        Command::Simulate {
            size,
            kube_objects,
            port,
            bind,
            debug,
        } => {
            init_logging(debug);
            run_simulate(
                size.as_deref(),
                kube_objects.as_deref(),
                SocketAddr::new(bind, port),
            )
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
        Failure::Config(e) => (3, "configuration", report::chain(&*e)),
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

fn bind(address: std::net::IpAddr, options: &Options) -> Result<TcpListener, Failure> {
    let addr = SocketAddr::new(address, options.port());
    TcpListener::bind(addr).map_err(|e| Failure::Listen(format!("{addr}: {e}")))
}

fn run_master(options: &Options) -> Result<(), Failure> {
    let master = config::resolve_master(options).map_err(|e| Failure::Config(Box::new(e)))?;
    let listener = bind(master.bind, options)?;
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
    let history_ms = i64::try_from(options.history.as_millis()).unwrap_or(i64::MAX);
    let store = match &options.history_dir {
        Some(dir) => Some(
            cluster_insight::store::open(dir, history_ms)
                .map_err(|e| Failure::Config(Box::new(e)))?,
        ),
        None => None,
    };
    let master = Master::start(
        master.collector,
        listener,
        options.workers,
        master.auth,
        store,
    )
    .map_err(|e| Failure::Runtime(format!("cannot start the master: {e}")))?;
    let signal = termination::wait()
        .map_err(|e| Failure::Runtime(format!("cannot wait for SIGTERM: {e}")))?;
    log::info!("{signal}: finishing the answers in flight, then stopping");
    master.stop();
    Ok(())
}

fn run_minion(options: &Options) -> Result<(), Failure> {
    let auth = config::resolve_auth(options, |name| std::env::var(name).ok())
        .map_err(|e| Failure::Config(Box::new(e)))?;
    let listener = bind(auth.bind, options)?;
    config::log_auth(&auth);
    let server = minion::start(options, listener, auth.authorizer)
        .map_err(|e| Failure::Listen(e.to_string()))?;
    let signal = termination::wait()
        .map_err(|e| Failure::Runtime(format!("cannot wait for SIGTERM: {e}")))?;
    log::info!("{signal}: finishing the answers in flight, then stopping");
    server.shutdown();
    Ok(())
}

#[cfg(feature = "demo")]
fn run_demo(options: &Options, size: Option<&str>) -> Result<(), Failure> {
    use cluster_insight::app::demo;
    demo::run(options, size).map_err(|e| match e {
        demo::DemoError::Size(e) => Failure::Usage(format!("--size: {e}")),
        demo::DemoError::Start(e) => Failure::Listen(e),
    })
}

#[cfg(feature = "demo")]
fn run_simulate(
    size: Option<&str>,
    kube_objects: Option<&std::path::Path>,
    addr: SocketAddr,
) -> Result<(), Failure> {
    cluster_insight::app::simulate::run(size, kube_objects, addr).map_err(Failure::Runtime)
}

#[cfg(not(feature = "demo"))]
fn run_demo(_: &Options, _: Option<&str>) -> Result<(), Failure> {
    Err(Failure::Usage(WITHOUT_DEMO.to_string()))
}

#[cfg(not(feature = "demo"))]
fn run_simulate(
    _: Option<&str>,
    _: Option<&std::path::Path>,
    _: SocketAddr,
) -> Result<(), Failure> {
    Err(Failure::Usage(WITHOUT_DEMO.to_string()))
}

#[cfg(not(feature = "demo"))]
const WITHOUT_DEMO: &str =
    "this build has no simulated cluster (it was built without the `demo` feature)";
