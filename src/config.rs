//! Resolves the command line into the master's running configuration: finds the API
//! server (flag, in-cluster, or a local `kubectl proxy`), reads the token and CA, chooses
//! where containers come from. Runs once at start-up; every failure here is a
//! configuration error (exit code 3) that happens before any port is bound.

use std::fmt;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use parking_lot::Mutex;

use crate::auth::{
    Authorizer, Delegated, StaticToken, MASTER_URL_PREFIX, MINION_AUDIENCE, MINION_URL_PREFIX,
};
use crate::cli::{AuthFlag, Mode, Options};
use crate::collect::kube::kubeconfig::{self, Kubeconfig};
use crate::collect::kube::{KubeClient, KubeConfig, KubeSetupError, PemSource, Token};
use crate::collect::runtime::docker::{socket_exists, DEFAULT_SOCKET};
use crate::collect::CollectorConfig;
use crate::collect::RuntimeSource;
use crate::http::{Bearer, ClientConfig, Endpoint};

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
/// Where the shipped manifest projects the master's token for minions (audience
/// [`MINION_AUDIENCE`]).
pub const MINION_TOKEN_FILE: &str = "/var/run/secrets/cluster-insight/minion-token";
/// Authorization asks the API server while a request waits: not for as long as a list.
const REVIEW_TIMEOUT: Duration = Duration::from_secs(5);
const KUBECTL_PROXY: &str = "http://127.0.0.1:8001";

/// A configuration that cannot run, by what was being set up.
#[derive(Debug)]
pub enum ConfigError {
    Kube(KubeSetupError),
    /// `--runtime-socket` names a path where there is no socket.
    NoSocket {
        path: PathBuf,
        why: &'static str,
    },
    /// A token file that cannot be used.
    Auth(String),
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Kube(_) => f.write_str("Kubernetes client"),
            ConfigError::NoSocket { path, why } => {
                write!(f, "--runtime-socket: {} {why}", path.display())
            }
            ConfigError::Auth(why) => f.write_str(why),
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Kube(e) => Some(e),
            ConfigError::NoSocket { .. } | ConfigError::Auth(_) => None,
        }
    }
}

impl From<KubeSetupError> for ConfigError {
    fn from(e: KubeSetupError) -> Self {
        ConfigError::Kube(e)
    }
}

/// How the API server is reached, and why that way (for the start-up log line).
#[derive(Debug, Clone)]
pub struct KubeAccess {
    pub config: KubeConfig,
    pub how: String,
}

/// The first that applies: `--kubernetes-url`; `--kubeconfig` or `--context`; `KUBECONFIG`;
/// in-cluster; `~/.kube/config`; a local `kubectl proxy`. The explicit flags
/// (`--token-file`, `--ca-file`, `--insecure-skip-tls-verify`) override what the source
/// gives. `env` is the process environment, passed in so that this stays testable.
pub fn kube_access(
    options: &Options,
    env: impl Fn(&str) -> Option<String>,
    service_account_dir: &Path,
) -> Result<KubeAccess, KubeSetupError> {
    let with_flags = |mut config: KubeConfig, how: String| {
        config.request_timeout = options.kube_timeout;
        config.connect_timeout = options.kube_timeout.min(config.connect_timeout);
        if let Some(file) = &options.token_file {
            config.token_file = Some(file.clone());
        }
        if let Some(file) = &options.ca_file {
            config.ca = Some(PemSource::File(file.clone()));
            // A CA given is a CA to verify with, whatever the kubeconfig said.
            config.insecure_skip_tls_verify = false;
        }
        config.insecure_skip_tls_verify |= options.insecure_skip_tls_verify;
        if let Some(plugin) = &mut config.exec {
            plugin.timeout = options.kube_timeout;
        }
        KubeAccess { config, how }
    };
    if let Some(url) = &options.kubernetes_url {
        return Ok(with_flags(
            KubeConfig::new(url),
            "--kubernetes-url".to_string(),
        ));
    }
    let from_kubeconfig = |files: Vec<PathBuf>, must_exist: bool| {
        let merged = Kubeconfig::load(&files, must_exist)?;
        let (config, context) = merged.select(options.context.as_deref())?;
        Ok::<_, KubeSetupError>(with_flags(
            config,
            format!("kubeconfig context {context:?}"),
        ))
    };
    if let Some(file) = &options.kubeconfig {
        return from_kubeconfig(vec![file.clone()], true);
    }
    let default_files = kubeconfig::default_files(&env);
    let kubeconfig_variable = env("KUBECONFIG").is_some_and(|v| !v.is_empty());
    if options.context.is_some() || kubeconfig_variable {
        return match default_files {
            Some(files) => from_kubeconfig(files, false),
            None => Err(KubeSetupError::Kubeconfig {
                what: "~/.kube/config".to_string(),
                why: "--context needs a kubeconfig: give --kubeconfig or set KUBECONFIG"
                    .to_string(),
            }),
        };
    }
    if let (Some(host), Some(port)) = (
        env("KUBERNETES_SERVICE_HOST").filter(|h| !h.is_empty()),
        env("KUBERNETES_SERVICE_PORT").filter(|p| !p.is_empty()),
    ) {
        let host = if host.contains(':') {
            format!("[{host}]")
        } else {
            host
        };
        let mut config = KubeConfig::new(&format!("https://{host}:{port}"));
        let token = service_account_dir.join("token");
        let ca = service_account_dir.join("ca.crt");
        if token.exists() {
            config.token_file = Some(token);
        }
        if ca.exists() {
            config.ca = Some(PemSource::File(ca));
        }
        return Ok(with_flags(config, "in-cluster service account".to_string()));
    }
    if let Some(files) = default_files {
        return from_kubeconfig(files, false);
    }
    Ok(with_flags(
        KubeConfig::new(KUBECTL_PROXY),
        "kubectl proxy on 127.0.0.1:8001".to_string(),
    ))
}

/// Everything the master needs to start, resolved.
pub struct MasterConfig {
    pub collector: CollectorConfig,
    pub access: KubeAccess,
    pub auth: Arc<Authorizer>,
    /// The address to listen on (see [`resolve_auth`]).
    pub bind: IpAddr,
}

/// How callers are authorized, and why that way (for the start-up log line), and the
/// address to listen on that goes with it.
pub struct AuthChoice {
    pub authorizer: Arc<Authorizer>,
    pub how: &'static str,
    pub bind: IpAddr,
}

/// Resolves how callers of this master or minion are authorized: `--no-auth`,
/// `--auth-token-file`, `--delegated-auth`, or by default delegated in a pod (the API server
/// is at hand, and the manifest grants the reviews). Elsewhere, with none of them, everyone
/// may read, so only this machine is served: the address is loopback unless `--bind` names
/// another, and one open to the network is a configuration error that names the choices.
/// A minion accepts only tokens made for minions.
pub fn resolve_auth(
    options: &Options,
    env: impl Fn(&str) -> Option<String>,
) -> Result<AuthChoice, ConfigError> {
    let in_pod = env("KUBERNETES_SERVICE_HOST").is_some_and(|h| !h.is_empty());
    let bind = options.bind;
    let delegated = |how| -> Result<AuthChoice, ConfigError> {
        let mut access = kube_access(options, &env, Path::new(SERVICE_ACCOUNT_DIR))?;
        access.config.request_timeout = access.config.request_timeout.min(REVIEW_TIMEOUT);
        access.config.connect_timeout = access.config.connect_timeout.min(REVIEW_TIMEOUT);
        let kube = KubeClient::new(&access.config)?;
        let (audience, prefix) = match options.mode {
            Mode::Minion => (Some(MINION_AUDIENCE), MINION_URL_PREFIX),
            Mode::Master => (None, MASTER_URL_PREFIX),
        };
        Ok(AuthChoice {
            authorizer: Arc::new(Authorizer::Delegated(Box::new(Delegated::new(
                kube, audience, prefix,
            )))),
            how,
            bind,
        })
    };
    match &options.auth {
        AuthFlag::None => Ok(AuthChoice {
            authorizer: Arc::new(Authorizer::Open),
            how: "--no-auth",
            bind,
        }),
        AuthFlag::TokenFile(file) => Ok(AuthChoice {
            authorizer: Arc::new(Authorizer::Token(
                StaticToken::read(file).map_err(ConfigError::Auth)?,
            )),
            how: "--auth-token-file",
            bind,
        }),
        AuthFlag::Delegated => delegated("--delegated-auth"),
        AuthFlag::Default if in_pod => delegated("in a pod"),
        AuthFlag::Default if options.bind_given && !bind.is_loopback() => {
            Err(ConfigError::Auth(format!(
                "--bind {bind} serves every caller on the network, and no way of authorizing \
                 them is chosen: give --auth-token-file FILE or --delegated-auth, or \
                 --no-auth to let everyone who reaches the port read"
            )))
        }
        AuthFlag::Default => Ok(AuthChoice {
            authorizer: Arc::new(Authorizer::Open),
            how: "not in a pod and no way of authorizing chosen, so on loopback only",
            bind: if options.bind_given {
                bind
            } else {
                IpAddr::from([127, 0, 0, 1])
            },
        }),
    }
}

/// Says at start-up who may read, loudly when it is everyone.
pub fn log_auth(auth: &AuthChoice) {
    match *auth.authorizer {
        Authorizer::Open => log::warn!(
            "authorization: none ({}): every caller that reaches this port may read",
            auth.how
        ),
        ref other => log::info!("authorization: {} ({})", other.describe(), auth.how),
    }
}

/// The token the master presents to minions: `--minion-token-file` (or the manifest's
/// projected token, when it is there), else the `--auth-token-file` token, else none.
fn minion_bearer(options: &Options, auth: &Authorizer) -> Result<Option<Bearer>, ConfigError> {
    let file = match &options.minion_token_file {
        Some(file) => Some(file.clone()),
        None => Some(PathBuf::from(MINION_TOKEN_FILE)).filter(|f| f.exists()),
    };
    if let Some(file) = file {
        let token = Token::open(&file).map_err(|e| {
            ConfigError::Auth(format!("--minion-token-file {}: {e}", file.display()))
        })?;
        let token = Arc::new(Mutex::new(token));
        return Ok(Some(Bearer(Arc::new(move || token.lock().current()))));
    }
    if let Authorizer::Token(token) = auth {
        let value = token.value().to_string();
        return Ok(Some(Bearer(Arc::new(move || Some(value.clone())))));
    }
    Ok(None)
}

pub fn resolve_master(options: &Options) -> Result<MasterConfig, ConfigError> {
    let access = kube_access(
        options,
        |name| std::env::var(name).ok(),
        Path::new(SERVICE_ACCOUNT_DIR),
    )?;
    let kube = KubeClient::new(&access.config)?;
    let runtimes = if options.no_docker {
        RuntimeSource::Disabled
    } else if let Some(socket) = options.runtime_sockets.first() {
        use std::os::unix::fs::FileTypeExt;
        match std::fs::metadata(socket) {
            Ok(m) if m.file_type().is_socket() => {}
            Ok(_) => {
                return Err(ConfigError::NoSocket {
                    path: socket.clone(),
                    why: "is not a socket",
                })
            }
            Err(_) => {
                return Err(ConfigError::NoSocket {
                    path: socket.clone(),
                    why: "does not exist",
                })
            }
        }
        RuntimeSource::LocalSocket(socket.clone())
    } else {
        RuntimeSource::Agents {
            port: options.docker_port,
        }
    };
    // Where to look up our own image for `/version`: the local daemon when we can reach
    // its socket, else the minion on this host (the master runs with the host network in
    // the documented installs, beside a minion, and mounts no socket).
    let version_source = match &runtimes {
        RuntimeSource::LocalSocket(path) => Some(Endpoint::Unix(path.clone())),
        _ => {
            let default = PathBuf::from(DEFAULT_SOCKET);
            if socket_exists(&default) {
                Some(Endpoint::Unix(default))
            } else {
                Some(Endpoint::Tcp(std::net::SocketAddr::from((
                    [127, 0, 0, 1],
                    options.docker_port,
                ))))
            }
        }
    };
    let auth = resolve_auth(options, |name| std::env::var(name).ok())?;
    log_auth(&auth);
    let mut runtime_client = runtime_client_config(options);
    runtime_client.bearer = minion_bearer(options, &auth.authorizer)?;
    let created_by =
        crate::app::version::version_string(version_source, runtime_client.bearer.clone());
    Ok(MasterConfig {
        collector: CollectorConfig {
            kube,
            runtimes,
            runtime_client,
            node_parallelism: options.node_parallelism,
            show_env: options.show_env,
            refresh_interval: options.refresh_interval,
            history: options.history,
            cluster_name: options.cluster_name.clone(),
            created_by,
            extra_kinds: options.extra_kinds.clone(),
        },
        access,
        auth: auth.authorizer,
        bind: auth.bind,
    })
}

/// Limits of one call to a node's runtime, from `--docker-timeout`.
pub(crate) fn runtime_client_config(options: &Options) -> ClientConfig {
    let defaults = ClientConfig::default();
    ClientConfig {
        connect_timeout: defaults.connect_timeout.min(options.docker_timeout),
        io_timeout: defaults.io_timeout.min(options.docker_timeout),
        request_timeout: options.docker_timeout,
        max_body: defaults.max_body,
        bearer: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_order_is_flag_kubeconfig_in_cluster_home_then_proxy() {
        let dir = std::env::temp_dir().join(format!("ci-sa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t").unwrap();
        let env = |name: &str| match name {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        let mut options = Options::default();
        let a = kube_access(&options, env, &dir).unwrap();
        assert_eq!(a.config.base_url, "https://[fd00::1]:443");
        assert_eq!(a.config.token_file, Some(dir.join("token")));
        assert_eq!(a.config.ca, None);
        let a = kube_access(&options, |_| None, &dir).unwrap();
        assert_eq!(a.config.base_url, "http://127.0.0.1:8001");
        // A kubeconfig in KUBECONFIG wins over in-cluster settings, one in ~/.kube over the
        // proxy; an explicit --ca-file over the kubeconfig's.
        std::fs::create_dir_all(dir.join(".kube")).unwrap();
        std::fs::write(
            dir.join(".kube/config"),
            "current-context: c\nclusters: [{name: c, cluster: {server: 'https://127.0.0.9:6443'}}]\ncontexts: [{name: c, context: {cluster: c}}]\n",
        )
        .unwrap();
        let home = dir.to_string_lossy().to_string();
        let config_file = dir.join(".kube/config").to_string_lossy().to_string();
        let with_kubeconfig = |name: &str| match name {
            "KUBECONFIG" => Some(config_file.clone()),
            other => env(other),
        };
        let a = kube_access(&options, with_kubeconfig, &dir).unwrap();
        assert_eq!(
            (a.config.base_url.as_str(), a.how.as_str()),
            ("https://127.0.0.9:6443", "kubeconfig context \"c\"")
        );
        let with_home = |name: &str| (name == "HOME").then(|| home.clone());
        let a = kube_access(&options, with_home, &dir).unwrap();
        assert_eq!(a.config.base_url, "https://127.0.0.9:6443");
        options.ca_file = Some("/etc/ca.pem".into());
        let a = kube_access(&options, with_home, &dir).unwrap();
        assert_eq!(a.config.ca, Some(PemSource::File("/etc/ca.pem".into())));
        // A CA given is used even where the kubeconfig said not to verify.
        std::fs::write(
            dir.join(".kube/config"),
            "current-context: c\nclusters: [{name: c, cluster: {server: 'https://127.0.0.9:6443', insecure-skip-tls-verify: true}}]\ncontexts: [{name: c, context: {cluster: c}}]\n",
        )
        .unwrap();
        let a = kube_access(&options, with_home, &dir).unwrap();
        assert!(!a.config.insecure_skip_tls_verify);
        options.ca_file = None;
        let a = kube_access(&options, with_home, &dir).unwrap();
        assert!(a.config.insecure_skip_tls_verify);
        options.ca_file = Some("/etc/ca.pem".into());
        options.context = Some("missing".into());
        let e = kube_access(&options, with_home, &dir).err().unwrap();
        assert!(e.to_string().contains("no context \"missing\""), "{e}");
        options.context = None;
        options.kubernetes_url = Some("http://127.0.0.1:9/".into());
        let a = kube_access(&options, env, &dir).unwrap();
        assert_eq!(
            (a.config.base_url.as_str(), a.how.as_str()),
            ("http://127.0.0.1:9", "--kubernetes-url")
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn authorization_is_delegated_in_a_pod_and_none_elsewhere_on_loopback_only() {
        let in_pod = |name: &str| match name {
            "KUBERNETES_SERVICE_HOST" => Some("10.0.0.1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        let options = Options::default();
        let choice = resolve_auth(&options, in_pod).unwrap();
        assert!(matches!(*choice.authorizer, Authorizer::Delegated(_)));
        assert_eq!(choice.how, "in a pod");
        assert_eq!(choice.bind, IpAddr::from([0, 0, 0, 0]));
        // Elsewhere, everyone may read, so only this machine is served; an address open to
        // the network needs a choice.
        let choice = resolve_auth(&options, |_| None).unwrap();
        assert!(matches!(*choice.authorizer, Authorizer::Open));
        assert_eq!(choice.bind, IpAddr::from([127, 0, 0, 1]));
        let open_bind = Options {
            bind_given: true,
            ..Options::default()
        };
        let err = resolve_auth(&open_bind, |_| None)
            .err()
            .unwrap()
            .to_string();
        assert!(
            err.contains("--bind 0.0.0.0") && err.contains("--no-auth"),
            "{err}"
        );
        let loopback = Options {
            bind: IpAddr::from([127, 0, 0, 2]),
            bind_given: true,
            ..Options::default()
        };
        assert_eq!(
            resolve_auth(&loopback, |_| None).unwrap().bind,
            loopback.bind
        );
        let everyone = Options {
            auth: AuthFlag::None,
            bind_given: true,
            ..Options::default()
        };
        assert_eq!(
            resolve_auth(&everyone, |_| None).unwrap().bind,
            IpAddr::from([0, 0, 0, 0])
        );
        let no_auth = Options {
            auth: AuthFlag::None,
            ..Options::default()
        };
        let choice = resolve_auth(&no_auth, in_pod).unwrap();
        assert!(matches!(*choice.authorizer, Authorizer::Open));
        let missing = Options {
            auth: AuthFlag::TokenFile("/nonexistent/token".into()),
            ..Options::default()
        };
        let err = resolve_auth(&missing, in_pod).err().unwrap().to_string();
        assert!(err.contains("/nonexistent/token"), "{err}");
    }

    #[test]
    fn unreadable_files_are_configuration_errors() {
        let options = Options {
            kubernetes_url: Some("https://127.0.0.1:6443".into()),
            token_file: Some("/nonexistent/token".into()),
            ..Options::default()
        };
        let err = resolve_master(&options).err().unwrap();
        let cause = std::error::Error::source(&err).unwrap().to_string();
        assert!(cause.contains("/nonexistent/token"), "{cause}");
    }
}
