//! The command line: flags are read and checked into plain structs, with no I/O at all.
//! Resolving them into a running configuration (reading files, building clients) is
//! `config`'s job, so `--help` and `--version` answer before anything else happens.

use std::ffi::OsString;
use std::fmt;
use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::collect::extra::GroupVersionResource;
use crate::collect::NodeParallelism;
use crate::graph::Kind;

/// Kinds `--extra-kinds` may add: far more than a graph can show legibly, and within what
/// the table of kinds can index.
const MAX_EXTRA_KINDS: usize = 100;

pub const USAGE: &str = "\
cluster-insight: a context graph of a Kubernetes cluster, served over REST

USAGE:
    cluster-insight [--mode master|minion] [OPTIONS]
    cluster-insight demo [--port N] [--size SIZE] [--refresh-interval SECS]
    cluster-insight simulate [--size SIZE | --kube-objects FILE] [--port N]
    cluster-insight tree TYPE/NAME [-n NAMESPACE] [--server URL] [--depth N] [-o text|json]
                                  [--token-file FILE]

The mode comes from --mode, else from CLUSTER_INSIGHT_MODE, else master.

TREE (asks a running master who owns an object and what it owns and holds):
    TYPE/NAME                     the object: a type as /cluster/resources/TYPE takes it
                                  (deployment, deploy, pods, po…) and its name; containers,
                                  processes and images by the rest of their ID
    -n, --namespace NS            its namespace (default: default; ignored for types that
                                  have none)
    --server URL                  the master (default http://127.0.0.1:5555)
    --depth N                     levels below the object (default 10)
    -o, --output text|json        a drawn tree (default) or JSON
    --token-file FILE             bearer token for a master that asks for one

MASTER (serves the context graph, default port 5555):
    --kubernetes-url URL          API server (default: the first that applies of
                                  --kubeconfig/--context, KUBECONFIG, in-cluster settings
                                  when KUBERNETES_SERVICE_HOST is set, ~/.kube/config, and
                                  http://127.0.0.1:8001, a `kubectl proxy`)
    --kubeconfig FILE             read server and credential from this kubeconfig: token,
                                  token file, client certificate or exec plugin
    --context NAME                the kubeconfig context to use (default: current-context)
    --token-file FILE             bearer token for the API server (re-read every minute)
    --ca-file FILE                CA certificate(s), PEM, to verify the API server
    --insecure-skip-tls-verify    do not verify the API server's certificate
    --docker-port N               port of every node's minion (default 4243)
    --runtime-socket PATH         read containers from this local runtime socket instead
                                  of the minions (a single-node cluster; alias
                                  --docker-socket)
    --no-agents                   no node agents: containers and images only as the pods'
                                  statuses tell, no processes (alias --no-docker)
    --cluster-name NAME           the Cluster resource's name (default: cluster)
    --extra-kinds LIST            more kinds to show, custom resources included, as
                                  GROUP/VERSION/RESOURCE (VERSION/RESOURCE for the core
                                  group), comma-separated, the flag repeatable:
                                  argoproj.io/v1alpha1/rollouts
    --refresh-interval SECS       seconds between refreshes (default 10)
    --history DURATION            how far back /cluster?at= and /cluster/changes reach:
                                  90s, 30m, 1h, 2d, or 0 for the last change only
                                  (default 1h; at most 30d)
    --history-dir DIR             keep the history on disk in DIR (an embedded store,
                                  DIR/history.redb): a master started again with the
                                  same DIR serves the history it had
    --node-parallelism N|auto     nodes read at once (default auto: as many as reading
                                  every node within half the refresh interval takes, at
                                  the time nodes take, from 16 to 512)
    --kube-timeout SECS           bound on one Kubernetes API call, and on a kubeconfig
                                  credential plugin (default 30)
    --docker-timeout SECS         bound on one Docker API call (default 10)
    --show-env                    show container environment values (redacted by default:
                                  they hold secrets)
    --minion-token-file FILE      the token presented to minions (re-read every minute;
                                  default: /var/run/secrets/cluster-insight/minion-token
                                  when it exists, a token for audience
                                  cluster-insight-minion; else the --auth-token-file token)

MINION (the node's read-only agent, default port 4243): GET /node answers the node's
containers, pod sandboxes, images and processes; the Docker API's read-only paths are
proxied when the runtime is Docker.
    --runtime-socket PATH[,PATH]  the container runtime's socket, CRI (containerd, CRI-O)
                                  or Docker; of several, the first that answers (default
                                  /run/containerd/containerd.sock,
                                  /run/k3s/containerd/containerd.sock,
                                  /var/run/crio/crio.sock,/var/run/docker.sock; alias
                                  --docker-socket)
    --host-proc PATH              the host's /proc (default /proc; the agent runs in the
                                  host's PID namespace)
    --show-env                    let container environment values leave the node
    --kubernetes-url, --kubeconfig, --context, --token-file, --ca-file,
    --insecure-skip-tls-verify, --kube-timeout
                                  as for the master: the API server that reviews callers'
                                  tokens (default in a pod: in-cluster settings)

COMMON:
    --auth-token-file FILE        callers must send this token (Authorization: Bearer);
                                  the master also sends it to minions
    --delegated-auth              the API server decides: TokenReview, then
                                  SubjectAccessReview (get on the request's path); the
                                  default in a pod (KUBERNETES_SERVICE_HOST set)
    --no-auth                     every caller may read (logged as a warning; the default
                                  outside a pod on loopback, and of demo)
    (/healthz and /readyz never need a token)
    --port N                      listening port
    --bind ADDRESS                listening address (default 0.0.0.0 when callers are
                                  authorized, in a pod or by a flag above; else, and for
                                  demo, 127.0.0.1, and another address needs one of them)
    --workers N                   HTTP worker threads (default 8)
    -d, --debug                   debug logging (only logging: it opens nothing)
    -h, --help                    this text
    -V, --version                 the version and build date

DEMO AND SIMULATE:
    demo                          starts a simulated cluster in this process and a master
                                  against it: open http://localhost:5555 (by default three
                                  nodes, two of them containerd, one Docker)
    simulate                      serves a simulated Kubernetes API (and Docker APIs on
                                  127.0.x.y) until stopped, and prints where
    --size SIZE                   e.g. nodes=10,pods-per-node=30,containerd-nodes=5,
                                  node-documents=true (docker=false: no runtimes)
    --kube-objects FILE           (simulate) serve these objects (a v1 List JSON) instead;
                                  CustomResourceDefinitions among them add their types

EXIT CODES: 0 done, 1 failure while running, 2 bad command line, 3 bad configuration
(unreadable token or CA, bad URL), 4 cannot listen on the port.
";

/// How callers are to be authorized (contract §8).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum AuthFlag {
    /// No flag: delegated to the API server in a pod, else none (with a warning).
    #[default]
    Default,
    /// `--no-auth`.
    None,
    /// `--auth-token-file FILE`.
    TokenFile(PathBuf),
    /// `--delegated-auth`: the API server decides, in a pod or not.
    Delegated,
}

/// One way of authorizing at most.
fn auth_flag(current: AuthFlag, given: AuthFlag) -> Result<AuthFlag, CliError> {
    if current == AuthFlag::Default || current == given {
        return Ok(given);
    }
    Err(CliError(
        "--no-auth, --auth-token-file and --delegated-auth exclude each other".to_string(),
    ))
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    Master,
    Minion,
}

impl Mode {
    fn parse(s: &str) -> Result<Mode, CliError> {
        match s.trim().to_ascii_lowercase().as_str() {
            "master" => Ok(Mode::Master),
            "minion" => Ok(Mode::Minion),
            other => Err(CliError(format!(
                "unknown mode {other:?}: use master or minion"
            ))),
        }
    }
}

/// Flags shared by master and minion (and demo, which runs a master).
#[derive(Debug, Clone, PartialEq)]
pub struct Options {
    pub mode: Mode,
    pub(crate) port: Option<u16>,
    pub bind: IpAddr,
    /// Whether `--bind` was given: outside a pod, with no way of authorizing chosen, the
    /// default address is loopback, and a given one open to the network is refused.
    pub(crate) bind_given: bool,
    pub workers: usize,
    pub debug: bool,
    pub(crate) kubernetes_url: Option<String>,
    /// `--kubeconfig FILE`.
    pub(crate) kubeconfig: Option<PathBuf>,
    /// `--context NAME`.
    pub(crate) context: Option<String>,
    pub token_file: Option<PathBuf>,
    pub ca_file: Option<PathBuf>,
    pub insecure_skip_tls_verify: bool,
    pub(crate) docker_port: u16,
    /// `--runtime-socket` (or its alias `--docker-socket`): the sockets to try, in order.
    pub runtime_sockets: Vec<PathBuf>,
    pub(crate) no_docker: bool,
    /// The host's `/proc`, for the minion.
    pub(crate) host_proc: PathBuf,
    pub cluster_name: String,
    /// Kinds to list beyond the built-in ones.
    pub extra_kinds: Vec<GroupVersionResource>,
    pub refresh_interval: Duration,
    /// How long changes are kept (`--history`).
    pub history: Duration,
    /// Where the history is kept on disk (`--history-dir`).
    pub history_dir: Option<PathBuf>,
    pub(crate) node_parallelism: NodeParallelism,
    pub(crate) show_env: bool,
    /// How callers are authorized, as the flags say.
    pub(crate) auth: AuthFlag,
    /// `--minion-token-file`: the token the master presents to minions.
    pub(crate) minion_token_file: Option<PathBuf>,
    /// Bound on one Kubernetes API call (one page of a list).
    pub(crate) kube_timeout: Duration,
    /// Bound on one Docker API call through a minion or socket.
    pub(crate) docker_timeout: Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            mode: Mode::Master,
            port: None,
            bind: IpAddr::from([0, 0, 0, 0]),
            bind_given: false,
            workers: 8,
            debug: false,
            kubernetes_url: None,
            kubeconfig: None,
            context: None,
            token_file: None,
            ca_file: None,
            insecure_skip_tls_verify: false,
            docker_port: 4243,
            runtime_sockets: Vec::new(),
            no_docker: false,
            host_proc: PathBuf::from("/proc"),
            cluster_name: "cluster".to_string(),
            extra_kinds: Vec::new(),
            refresh_interval: Duration::from_secs(10),
            history: Duration::from_secs(3600),
            history_dir: None,
            node_parallelism: NodeParallelism::Auto,
            show_env: false,
            auth: AuthFlag::Default,
            minion_token_file: None,
            kube_timeout: Duration::from_secs(30),
            docker_timeout: Duration::from_secs(10),
        }
    }
}

impl Options {
    pub fn port(&self) -> u16 {
        self.port.unwrap_or(match self.mode {
            Mode::Master => 5555,
            Mode::Minion => 4243,
        })
    }
}

#[derive(Debug, Clone, PartialEq)]
pub enum Command {
    Run(Options),
    /// A simulated cluster and a master against it; `size` as `SimSpec::parse_size` reads it.
    Demo {
        options: Options,
        size: Option<String>,
    },
    Simulate {
        size: Option<String>,
        kube_objects: Option<PathBuf>,
        port: u16,
        bind: IpAddr,
        debug: bool,
    },
    /// `tree TYPE/NAME`: an object's owners and what it owns, from a running master.
    Tree(TreeOptions),
    Help,
    Version,
}

/// A bad command line: one line of text, exit code 2.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CliError(pub String);

impl fmt::Display for CliError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for CliError {}

impl From<lexopt::Error> for CliError {
    fn from(e: lexopt::Error) -> Self {
        CliError(e.to_string())
    }
}

/// What `tree` is asked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TreeOptions {
    /// The object's type (its name in the graph) and name (the rest of its ID).
    pub kind: Kind,
    pub name: String,
    pub namespace: String,
    /// `http://HOST:PORT` of the master.
    pub server: String,
    pub depth: usize,
    pub json: bool,
    pub token_file: Option<PathBuf>,
}

/// The most levels `tree` walks below its object.
const MAX_TREE_DEPTH: usize = 100;

/// Parses `tree`'s arguments (after the word `tree`).
fn parse_tree(mut parser: lexopt::Parser) -> Result<Command, CliError> {
    use lexopt::prelude::*;

    let mut target: Option<String> = None;
    let mut namespace = "default".to_string();
    let mut server = "http://127.0.0.1:5555".to_string();
    let mut depth = 10;
    let mut json = false;
    let mut token_file = None;
    while let Some(arg) = parser.next()? {
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('n') | Long("namespace") => namespace = string(&mut parser, "--namespace")?,
            Long("server") => server = string(&mut parser, "--server")?,
            Long("depth") => {
                let text = string(&mut parser, "--depth")?;
                depth = whole_number("--depth", &text, 0, MAX_TREE_DEPTH)?;
            }
            Short('o') | Long("output") => {
                json = match string(&mut parser, "--output")?.as_str() {
                    "text" => false,
                    "json" => true,
                    other => {
                        return Err(CliError(format!("--output: {other:?} is not text or json")))
                    }
                }
            }
            Long("token-file") => token_file = Some(path(&mut parser, "--token-file")?),
            Value(value) if target.is_none() => {
                target = Some(
                    value
                        .into_string()
                        .map_err(|v| CliError(format!("{v:?} is not valid UTF-8")))?,
                )
            }
            other => return Err(other.unexpected().into()),
        }
    }
    let target = target.ok_or_else(|| {
        CliError("tree needs TYPE/NAME, e.g. `tree deployment/web -n shop`".to_string())
    })?;
    let (type_name, name) = target
        .split_once('/')
        .filter(|(t, n)| !t.is_empty() && !n.is_empty())
        .ok_or_else(|| CliError(format!("{target:?} is not TYPE/NAME, e.g. deployment/web")))?;
    let kind = Kind::from_type_name(type_name).ok_or_else(|| {
        CliError(format!(
            "{type_name:?} is not a type of the graph (e.g. deployment, pods, po, container)"
        ))
    })?;
    if !server.starts_with("http://") {
        return Err(CliError(format!(
            "--server: {server:?} is not an http:// URL (the master serves plain HTTP; reach \
             one in a cluster with `kubectl port-forward`)"
        )));
    }
    if namespace.is_empty() || namespace.contains('/') {
        return Err(CliError(format!(
            "--namespace: {namespace:?} is not a namespace"
        )));
    }
    Ok(Command::Tree(TreeOptions {
        kind,
        name: name.to_string(),
        namespace,
        server,
        depth,
        json,
        token_file,
    }))
}

/// Parses the arguments (without the program name). `env_mode` is the value of
/// `CLUSTER_INSIGHT_MODE`, if set.
pub fn parse(
    args: impl IntoIterator<Item = OsString>,
    env_mode: Option<&str>,
) -> Result<Command, CliError> {
    use lexopt::prelude::*;

    let args: Vec<OsString> = args.into_iter().collect();
    if args.first().is_some_and(|a| a == "tree") {
        return parse_tree(lexopt::Parser::from_args(args.into_iter().skip(1)));
    }

    let mut parser = lexopt::Parser::from_args(args);
    let mut options = Options::default();
    let mut mode: Option<Mode> = None;
    let mut subcommand: Option<String> = None;
    let mut size: Option<String> = None;
    let mut kube_objects: Option<PathBuf> = None;
    // Long flags as given, to refuse those that mean nothing in the mode chosen.
    let mut given: Vec<String> = Vec::new();

    while let Some(arg) = parser.next()? {
        if let Long(name) = &arg {
            given.push(name.to_string());
        }
        match arg {
            Short('h') | Long("help") => return Ok(Command::Help),
            Short('V') | Long("version") => return Ok(Command::Version),
            Short('d') | Long("debug") => options.debug = true,
            Long("mode") => mode = Some(Mode::parse(&string(&mut parser, "--mode")?)?),
            Long("port") => options.port = Some(port(&mut parser, "--port")?),
            Long("bind") => {
                let text = string(&mut parser, "--bind")?;
                options.bind = text
                    .parse()
                    .map_err(|_| CliError(format!("--bind: {text:?} is not an IP address")))?;
                options.bind_given = true;
            }
            Long("workers") => options.workers = count(&mut parser, "--workers", 1, 1024)?,
            Long("kubernetes-url") => {
                options.kubernetes_url = Some(string(&mut parser, "--kubernetes-url")?)
            }
            Long("kubeconfig") => options.kubeconfig = Some(path(&mut parser, "--kubeconfig")?),
            Long("context") => options.context = Some(string(&mut parser, "--context")?),
            Long("token-file") => options.token_file = Some(path(&mut parser, "--token-file")?),
            Long("ca-file") => options.ca_file = Some(path(&mut parser, "--ca-file")?),
            Long("insecure-skip-tls-verify") => options.insecure_skip_tls_verify = true,
            Long("docker-port") => options.docker_port = port(&mut parser, "--docker-port")?,
            Long(flag @ ("runtime-socket" | "docker-socket")) => {
                let flag = format!("--{flag}");
                let list = string(&mut parser, &flag)?;
                options.runtime_sockets = list
                    .split(',')
                    .map(str::trim)
                    .filter(|p| !p.is_empty())
                    .map(PathBuf::from)
                    .collect();
                if options.runtime_sockets.is_empty() {
                    return Err(CliError(format!("{flag}: no path given")));
                }
            }
            Long("no-agents" | "no-docker") => options.no_docker = true,
            Long("host-proc") => options.host_proc = path(&mut parser, "--host-proc")?,
            Long("cluster-name") => {
                let name = string(&mut parser, "--cluster-name")?;
                if name.is_empty() || name.len() > 253 || name.chars().any(char::is_control) {
                    return Err(CliError(format!(
                        "--cluster-name: {name:?} must be 1 to 253 printable characters"
                    )));
                }
                options.cluster_name = name;
            }
            Long("extra-kinds") => {
                let text = string(&mut parser, "--extra-kinds")?;
                for item in text.split(',').filter(|i| !i.trim().is_empty()) {
                    let kind = GroupVersionResource::parse(item)
                        .map_err(|e| CliError(format!("--extra-kinds: {e}")))?;
                    // One version of a resource: two would show each object twice.
                    let same = |g: &GroupVersionResource| {
                        g.group == kind.group && g.resource == kind.resource
                    };
                    if let Some(built_in) = Kind::all().find(|k| {
                        let info = k.info();
                        info.plural == kind.resource
                            && info.api.is_some_and(|api| api.group == kind.group)
                    }) {
                        return Err(CliError(format!(
                            "--extra-kinds: {kind} is read already (as {built_in})"
                        )));
                    }
                    match options.extra_kinds.iter().find(|g| same(g)) {
                        Some(g) if *g == kind => {}
                        Some(g) => {
                            return Err(CliError(format!(
                                "--extra-kinds: {kind} and {g} are one resource; name one version"
                            )))
                        }
                        None => options.extra_kinds.push(kind),
                    }
                }
                if options.extra_kinds.len() > MAX_EXTRA_KINDS {
                    return Err(CliError(format!(
                        "--extra-kinds: at most {MAX_EXTRA_KINDS} kinds"
                    )));
                }
            }
            Long("refresh-interval") => {
                options.refresh_interval =
                    seconds(&mut parser, "--refresh-interval", 0.1, 86_400.0)?
            }
            Long("history-dir") => options.history_dir = Some(path(&mut parser, "--history-dir")?),
            Long("history") => {
                options.history = duration(&string(&mut parser, "--history")?, "--history")?
            }
            Long("kube-timeout") => {
                options.kube_timeout = seconds(&mut parser, "--kube-timeout", 0.1, 3600.0)?
            }
            Long("docker-timeout") => {
                options.docker_timeout = seconds(&mut parser, "--docker-timeout", 0.1, 3600.0)?
            }
            Long("node-parallelism") => {
                let flag = "--node-parallelism";
                options.node_parallelism = match string(&mut parser, flag)?.as_str() {
                    "auto" => NodeParallelism::Auto,
                    text => NodeParallelism::Fixed(whole_number(flag, text, 1, 1024)?),
                }
            }
            Long("show-env") => options.show_env = true,
            Long("no-auth") => options.auth = auth_flag(options.auth, AuthFlag::None)?,
            Long("auth-token-file") => {
                let file = path(&mut parser, "--auth-token-file")?;
                options.auth = auth_flag(options.auth, AuthFlag::TokenFile(file))?
            }
            Long("delegated-auth") => options.auth = auth_flag(options.auth, AuthFlag::Delegated)?,
            Long("minion-token-file") => {
                options.minion_token_file = Some(path(&mut parser, "--minion-token-file")?)
            }
            Long("size") => size = Some(string(&mut parser, "--size")?),
            Long("kube-objects") => kube_objects = Some(path(&mut parser, "--kube-objects")?),
            Value(value) if subcommand.is_none() => {
                let value = value
                    .into_string()
                    .map_err(|v| CliError(format!("unexpected argument {v:?}")))?;
                match value.as_str() {
                    "demo" | "simulate" | "master" | "minion" => subcommand = Some(value),
                    other => {
                        return Err(CliError(format!(
                            "unexpected argument {other:?} (see --help)"
                        )))
                    }
                }
            }
            other => return Err(other.unexpected().into()),
        }
    }

    let sub = subcommand.as_deref();
    if !matches!(sub, Some("demo") | Some("simulate")) && (size.is_some() || kube_objects.is_some())
    {
        return Err(CliError(
            "--size and --kube-objects go with `demo` or `simulate`".to_string(),
        ));
    }
    if options.kubernetes_url.is_some()
        && (options.kubeconfig.is_some() || options.context.is_some())
    {
        return Err(CliError(
            "--kubernetes-url excludes --kubeconfig and --context: the kubeconfig names the \
             server"
                .to_string(),
        ));
    }
    let refuse = |flags: &[&str], context: &str| -> Result<(), CliError> {
        match given.iter().find(|g| flags.contains(&g.as_str())) {
            Some(flag) => Err(CliError(format!("--{flag} has no meaning {context}"))),
            None => Ok(()),
        }
    };
    match sub {
        Some("demo") => {
            if kube_objects.is_some() {
                return Err(CliError("--kube-objects goes with `simulate`".to_string()));
            }
            refuse(
                &DEMO_REFUSES,
                "with `demo` (it runs its own simulated cluster)",
            )?;
            options.mode = Mode::Master;
            // A demo is for the person at this machine: not served to the network unless
            // asked.
            if !given.iter().any(|g| g == "bind") {
                options.bind = IpAddr::from([127, 0, 0, 1]);
            }
            Ok(Command::Demo { options, size })
        }
        Some("simulate") => {
            if size.is_some() && kube_objects.is_some() {
                return Err(CliError(
                    "give --size or --kube-objects, not both".to_string(),
                ));
            }
            refuse(&MASTER_ONLY, "with `simulate`")?;
            refuse(
                &[
                    "bind",
                    "runtime-socket",
                    "docker-socket",
                    "host-proc",
                    "workers",
                    "mode",
                    "kubernetes-url",
                    "kubeconfig",
                    "context",
                    "token-file",
                    "ca-file",
                    "insecure-skip-tls-verify",
                    "kube-timeout",
                    "auth-token-file",
                    "delegated-auth",
                    "no-auth",
                ],
                "with `simulate` (it serves on loopback only)",
            )?;
            Ok(Command::Simulate {
                size,
                kube_objects,
                port: options.port.unwrap_or(0),
                bind: IpAddr::from([127, 0, 0, 1]),
                debug: options.debug,
            })
        }
        Some(word) => {
            // `cluster-insight master` reads as naturally as `--mode master`.
            let word_mode = Mode::parse(word)?;
            if mode.is_some_and(|m| m != word_mode) {
                return Err(CliError(format!("{word} contradicts --mode")));
            }
            options.mode = word_mode;
            match word_mode {
                Mode::Minion => refuse(&MASTER_ONLY, "in minion mode")?,
                Mode::Master => refuse_master(&given, &options)?,
            }
            Ok(Command::Run(options))
        }
        None => {
            options.mode = match (mode, env_mode) {
                (Some(m), _) => m,
                (None, Some(env)) if !env.trim().is_empty() => Mode::parse(env)
                    .map_err(|CliError(e)| CliError(format!("CLUSTER_INSIGHT_MODE: {e}")))?,
                _ => Mode::Master,
            };
            match options.mode {
                Mode::Minion => refuse(&MASTER_ONLY, "in minion mode")?,
                Mode::Master => refuse_master(&given, &options)?,
            }
            Ok(Command::Run(options))
        }
    }
}

/// What a master's command line may not hold: the minion's own flags, or more than the one
/// local socket it can read.
fn refuse_master(given: &[String], options: &Options) -> Result<(), CliError> {
    if let Some(flag) = given.iter().find(|g| MINION_ONLY.contains(&g.as_str())) {
        return Err(CliError(format!("--{flag} has no meaning in master mode")));
    }
    if options.runtime_sockets.len() > 1 {
        return Err(CliError(
            "--runtime-socket: the master reads one local socket; give one path".to_string(),
        ));
    }
    Ok(())
}

/// Flags only the minion reads.
const MINION_ONLY: [&str; 1] = ["host-proc"];

/// Flags only the master reads.
const MASTER_ONLY: [&str; 11] = [
    "extra-kinds",
    "history",
    "history-dir",
    "minion-token-file",
    "docker-port",
    "no-docker",
    "no-agents",
    "cluster-name",
    "refresh-interval",
    "node-parallelism",
    "docker-timeout",
];

/// Flags `demo` would have to ignore: it makes its own cluster.
const DEMO_REFUSES: [&str; 16] = [
    "history-dir",
    "kubernetes-url",
    "kubeconfig",
    "context",
    "auth-token-file",
    "delegated-auth",
    "minion-token-file",
    "kube-timeout",
    "token-file",
    "ca-file",
    "insecure-skip-tls-verify",
    "docker-port",
    "docker-socket",
    "runtime-socket",
    "host-proc",
    "mode",
];

fn string(parser: &mut lexopt::Parser, flag: &str) -> Result<String, CliError> {
    parser
        .value()?
        .into_string()
        .map_err(|v| CliError(format!("{flag}: {v:?} is not valid UTF-8")))
}

fn path(parser: &mut lexopt::Parser, flag: &str) -> Result<PathBuf, CliError> {
    let value = parser.value()?;
    if value.is_empty() {
        return Err(CliError(format!("{flag}: the path is empty")));
    }
    Ok(PathBuf::from(value))
}

fn port(parser: &mut lexopt::Parser, flag: &str) -> Result<u16, CliError> {
    let text = string(parser, flag)?;
    text.parse::<u16>().map_err(|_| {
        CliError(format!(
            "{flag}: {text:?} is not a port number (0 to 65535)"
        ))
    })
}

fn seconds(
    parser: &mut lexopt::Parser,
    flag: &str,
    min: f64,
    max: f64,
) -> Result<Duration, CliError> {
    let text = string(parser, flag)?;
    let secs: f64 = text
        .parse()
        .map_err(|_| CliError(format!("{flag}: {text:?} is not a number of seconds")))?;
    if !(min..=max).contains(&secs) {
        return Err(CliError(format!(
            "{flag}: {text} is out of range ({min} to {max} seconds)"
        )));
    }
    Ok(Duration::from_secs_f64(secs))
}

/// How long to keep history: a whole number and a unit (`s`, `m`, `h`, `d`), or `0`; at most
/// 30 days.
fn duration(text: &str, flag: &str) -> Result<Duration, CliError> {
    const MAX: u64 = 30 * 86_400;
    let bad = || {
        CliError(format!(
            "{flag}: {text:?} is not a duration such as 90s, 30m, 1h or 2d (or 0), up to 30d"
        ))
    };
    if text == "0" {
        return Ok(Duration::ZERO);
    }
    let split = text.find(|c: char| !c.is_ascii_digit()).ok_or_else(bad)?;
    let (number, unit) = text.split_at(split);
    let number: u64 = number.parse().map_err(|_| bad())?;
    let unit = match unit {
        "s" => 1,
        "m" => 60,
        "h" => 3600,
        "d" => 86_400,
        _ => return Err(bad()),
    };
    let secs = number
        .checked_mul(unit)
        .filter(|&s| s <= MAX)
        .ok_or_else(bad)?;
    Ok(Duration::from_secs(secs))
}

fn count(
    parser: &mut lexopt::Parser,
    flag: &str,
    min: usize,
    max: usize,
) -> Result<usize, CliError> {
    whole_number(flag, &string(parser, flag)?, min, max)
}

fn whole_number(flag: &str, text: &str, min: usize, max: usize) -> Result<usize, CliError> {
    match text.parse::<usize>() {
        Ok(n) if (min..=max).contains(&n) => Ok(n),
        _ => Err(CliError(format!(
            "{flag}: {text:?} must be a whole number from {min} to {max}"
        ))),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(args: &[&str], env: Option<&str>) -> Result<Command, CliError> {
        parse(args.iter().map(OsString::from), env)
    }

    fn options(args: &[&str], env: Option<&str>) -> Options {
        match run(args, env) {
            Ok(Command::Run(o)) => o,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn authorization_is_one_of_three_flags() {
        assert_eq!(options(&[], None).auth, AuthFlag::Default);
        assert_eq!(options(&["--no-auth"], None).auth, AuthFlag::None);
        assert_eq!(
            options(&["minion", "--auth-token-file", "/t"], None).auth,
            AuthFlag::TokenFile(PathBuf::from("/t"))
        );
        assert_eq!(
            options(&["--delegated-auth", "--delegated-auth"], None).auth,
            AuthFlag::Delegated
        );
        for both in [
            &["--no-auth", "--auth-token-file", "/t"][..],
            &["--delegated-auth", "--no-auth"],
        ] {
            let e = run(both, None).unwrap_err();
            assert!(e.0.contains("exclude each other"), "{e:?}");
        }
        // A minion may be told where its API server is (to review tokens), not what the
        // master alone does.
        let o = options(
            &[
                "minion",
                "--kubernetes-url",
                "https://10.0.0.1",
                "--token-file",
                "/t",
            ],
            None,
        );
        assert_eq!(o.kubernetes_url.as_deref(), Some("https://10.0.0.1"));
        assert!(run(&["minion", "--minion-token-file", "/t"], None).is_err());
        // The demo's cluster is its own.
        assert!(run(&["demo", "--auth-token-file", "/t"], None).is_err());
        assert!(matches!(
            run(&["demo", "--no-auth"], None),
            Ok(Command::Demo { .. })
        ));
        assert!(run(&["simulate", "--no-auth"], None).is_err());
    }

    #[test]
    fn mode_from_flag_then_environment_then_master() {
        assert_eq!(
            options(&["--mode", "minion"], Some("master")).mode,
            Mode::Minion
        );
        assert_eq!(options(&[], Some("minion")).mode, Mode::Minion);
        assert_eq!(options(&[], Some("MASTER")).mode, Mode::Master);
        assert_eq!(options(&[], None).mode, Mode::Master);
        assert_eq!(options(&["minion"], None).mode, Mode::Minion);
        assert_eq!(options(&[], Some("minion")).port(), 4243);
        assert_eq!(options(&[], None).port(), 5555);
    }

    #[test]
    fn bad_values_are_one_line_errors() {
        for (args, env, expect) in [
            (&["--mode", "worker"][..], None, "unknown mode"),
            (&[][..], Some("worker"), "CLUSTER_INSIGHT_MODE"),
            (&["--port", "70000"][..], None, "--port"),
            (&["--port"][..], None, "--port"),
            (&["--refresh-interval", "0"][..], None, "out of range"),
            (&["--refresh-interval", "ten"][..], None, "not a number"),
            (&["--history", "1y"][..], None, "--history"),
            (&["--history", "31d"][..], None, "up to 30d"),
            (&["--history", "h"][..], None, "--history"),
            (&["--history", "-1h"][..], None, "--history"),
            (&["--workers", "0"][..], None, "--workers"),
            (&["--bind", "localhost"][..], None, "--bind"),
            (&["--frobnicate"][..], None, "frobnicate"),
            (&["extra"][..], None, "unexpected argument"),
            (&["--size", "nodes=1"][..], None, "demo"),
            (&["minion", "--mode", "master"][..], None, "contradicts"),
            (
                &["simulate", "--size", "x", "--kube-objects", "f"][..],
                None,
                "not both",
            ),
        ] {
            let err = run(args, env).unwrap_err().to_string();
            assert!(err.contains(expect), "{args:?}: {err}");
            assert!(!err.contains('\n'), "{err}");
        }
    }

    #[test]
    fn help_and_version_win() {
        assert_eq!(run(&["--port", "1", "--help"], None), Ok(Command::Help));
        assert_eq!(run(&["-V"], Some("bogus")), Ok(Command::Version));
    }

    #[test]
    fn every_flag_is_read() {
        let o = options(
            &[
                "--kubernetes-url",
                "https://10.0.0.1:6443",
                "--token-file",
                "/t",
                "--ca-file",
                "/c",
                "--insecure-skip-tls-verify",
                "--docker-port",
                "14243",
                "--cluster-name",
                "prod",
                "--refresh-interval",
                "2.5",
                "--workers",
                "3",
                "--debug",
                "--show-env",
                "--node-parallelism",
                "4",
                "--port",
                "8080",
                "--bind",
                "127.0.0.1",
                "--kube-timeout",
                "2",
                "--docker-timeout",
                "0.5",
            ],
            None,
        );
        assert_eq!(o.kubernetes_url.as_deref(), Some("https://10.0.0.1:6443"));
        assert_eq!(o.token_file, Some(PathBuf::from("/t")));
        assert!(o.insecure_skip_tls_verify && o.debug && o.show_env);
        assert_eq!(
            (o.docker_port, o.workers, o.node_parallelism, o.port()),
            (14243, 3, NodeParallelism::Fixed(4), 8080)
        );
        assert_eq!(o.refresh_interval, Duration::from_millis(2500));
        assert_eq!(duration("90s", "f").unwrap(), Duration::from_secs(90));
        assert_eq!(duration("2d", "f").unwrap(), Duration::from_secs(172_800));
        assert_eq!(duration("0", "f").unwrap(), Duration::ZERO);
        assert_eq!(Options::default().history, Duration::from_secs(3600));
        assert_eq!(o.cluster_name, "prod");
        assert_eq!(
            (o.kube_timeout, o.docker_timeout),
            (Duration::from_secs(2), Duration::from_millis(500))
        );
    }

    #[test]
    fn minion_flags_and_aliases() {
        let o = options(
            &[
                "minion",
                "--runtime-socket",
                "/run/k3s/containerd/containerd.sock",
                "--host-proc",
                "/host/proc",
                "--show-env",
            ],
            None,
        );
        assert_eq!(o.mode, Mode::Minion);
        assert_eq!(
            o.runtime_sockets,
            vec![PathBuf::from("/run/k3s/containerd/containerd.sock")]
        );
        assert_eq!(o.host_proc, PathBuf::from("/host/proc"));
        assert!(o.show_env);
        let o = options(&["minion", "--docker-socket", "/d.sock"], None);
        assert_eq!(o.runtime_sockets, vec![PathBuf::from("/d.sock")]);
        let o = options(&["minion", "--runtime-socket", "/a.sock, /b.sock"], None);
        assert_eq!(
            o.runtime_sockets,
            vec![PathBuf::from("/a.sock"), PathBuf::from("/b.sock")]
        );
        assert!(run(&["minion", "--runtime-socket", ","], None).is_err());
        assert!(options(&["--no-agents"], None).no_docker);
        let refused = run(&["master", "--host-proc", "/p"], None).unwrap_err();
        assert!(refused.0.contains("--host-proc"), "{refused:?}");
        let refused = run(&["minion", "--no-agents"], None).unwrap_err();
        assert!(refused.0.contains("--no-agents"), "{refused:?}");
    }

    #[test]
    fn demo_and_simulate() {
        match run(&["demo", "--size", "nodes=2", "--port", "5556"], None).unwrap() {
            Command::Demo { options, size } => {
                assert_eq!((options.port(), size.as_deref()), (5556, Some("nodes=2")));
                assert_eq!(
                    options.bind,
                    IpAddr::from([127, 0, 0, 1]),
                    "loopback unless asked"
                );
            }
            other => panic!("{other:?}"),
        }
        match run(&["demo", "--bind", "0.0.0.0"], None).unwrap() {
            Command::Demo { options, .. } => assert!(options.bind.is_unspecified()),
            other => panic!("{other:?}"),
        }
        match run(&["simulate", "--kube-objects", "f.json"], None).unwrap() {
            Command::Simulate {
                kube_objects, port, ..
            } => {
                assert_eq!((kube_objects, port), (Some(PathBuf::from("f.json")), 0))
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn tree_takes_an_object_and_where_to_ask() {
        match run(
            &[
                "tree",
                "deploy/web",
                "-n",
                "shop",
                "--depth",
                "3",
                "-o",
                "json",
            ],
            None,
        )
        .unwrap()
        {
            Command::Tree(t) => {
                assert_eq!(t.kind.name(), "Deployment");
                assert_eq!((t.name.as_str(), t.namespace.as_str()), ("web", "shop"));
                assert_eq!((t.depth, t.json), (3, true));
                assert_eq!(t.server, "http://127.0.0.1:5555");
            }
            other => panic!("{other:?}"),
        }
        for (args, says) in [
            (&["tree"][..], "needs TYPE/NAME"),
            (&["tree", "web"][..], "not TYPE/NAME"),
            (&["tree", "widget/x"][..], "not a type"),
            (&["tree", "po/x", "--depth", "1000"][..], "--depth"),
            (&["tree", "po/x", "-o", "yaml"][..], "text or json"),
            (
                &["tree", "po/x", "--server", "https://m:5555"][..],
                "plain HTTP",
            ),
            (&["tree", "po/x", "-n", "a/b"][..], "--namespace"),
            (&["tree", "po/x", "po/y"][..], "po/y"),
        ] {
            let e = run(args, None).unwrap_err();
            assert!(e.0.contains(says), "{args:?}: {e}");
        }
    }
}
