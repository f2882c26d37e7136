//! Resolves the command line into the master's running configuration: finds the API
//! server (flag, in-cluster, or a local `kubectl proxy`), reads the token and CA, chooses
//! where containers come from. Runs once at start-up; every failure here is a
//! configuration error (exit code 3) that happens before any port is bound.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::cli::Options;
use crate::collect::kube::{KubeClient, KubeConfig, KubeSetupError};
use crate::collect::runtime::docker::{socket_exists, DEFAULT_SOCKET};
use crate::collect::CollectorConfig;
use crate::collect::RuntimeSource;
use crate::http::{ClientConfig, Endpoint};

const SERVICE_ACCOUNT_DIR: &str = "/var/run/secrets/kubernetes.io/serviceaccount";
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
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Kube(_) => f.write_str("Kubernetes client"),
            ConfigError::NoSocket { path, why } => {
                write!(f, "--runtime-socket: {} {why}", path.display())
            }
        }
    }
}

impl std::error::Error for ConfigError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ConfigError::Kube(e) => Some(e),
            ConfigError::NoSocket { .. } => None,
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
    pub how: &'static str,
}

/// The first that applies: `--kubernetes-url`; in-cluster; a local `kubectl proxy`.
/// `env` is the process environment, passed in so that this stays testable.
pub(crate) fn kube_access(
    options: &Options,
    env: impl Fn(&str) -> Option<String>,
    service_account_dir: &Path,
) -> KubeAccess {
    let with_files = |mut config: KubeConfig| {
        config.request_timeout = options.kube_timeout;
        config.connect_timeout = options.kube_timeout.min(config.connect_timeout);
        config.token_file = options.token_file.clone();
        config.ca_file = options.ca_file.clone();
        config.insecure_skip_tls_verify = options.insecure_skip_tls_verify;
        config
    };
    if let Some(url) = &options.kubernetes_url {
        return KubeAccess {
            config: with_files(KubeConfig::new(url)),
            how: "--kubernetes-url",
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
        let mut config = with_files(KubeConfig::new(&format!("https://{host}:{port}")));
        let token = service_account_dir.join("token");
        let ca = service_account_dir.join("ca.crt");
        if config.token_file.is_none() && token.exists() {
            config.token_file = Some(token);
        }
        if config.ca_file.is_none() && ca.exists() {
            config.ca_file = Some(ca);
        }
        return KubeAccess {
            config,
            how: "in-cluster service account",
        };
    }
    KubeAccess {
        config: with_files(KubeConfig::new(KUBECTL_PROXY)),
        how: "kubectl proxy on 127.0.0.1:8001",
    }
}

/// Everything the master needs to start, resolved.
pub struct MasterConfig {
    pub collector: CollectorConfig,
    pub access: KubeAccess,
}

pub fn resolve_master(options: &Options) -> Result<MasterConfig, ConfigError> {
    let access = kube_access(
        options,
        |name| std::env::var(name).ok(),
        Path::new(SERVICE_ACCOUNT_DIR),
    );
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
    let created_by = crate::app::version::version_string(version_source);
    Ok(MasterConfig {
        collector: CollectorConfig {
            kube,
            runtimes,
            runtime_client: runtime_client_config(options),
            node_parallelism: options.node_parallelism,
            show_env: options.show_env,
            refresh_interval: options.refresh_interval,
            cluster_name: options.cluster_name.clone(),
            created_by,
            extra_kinds: options.extra_kinds.clone(),
        },
        access,
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
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn access_order_is_flag_then_in_cluster_then_proxy() {
        let dir = std::env::temp_dir().join(format!("ci-sa-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(dir.join("token"), "t").unwrap();
        let env = |name: &str| match name {
            "KUBERNETES_SERVICE_HOST" => Some("fd00::1".to_string()),
            "KUBERNETES_SERVICE_PORT" => Some("443".to_string()),
            _ => None,
        };
        let mut options = Options::default();
        let a = kube_access(&options, env, &dir);
        assert_eq!(a.config.base_url, "https://[fd00::1]:443");
        assert_eq!(a.config.token_file, Some(dir.join("token")));
        assert_eq!(a.config.ca_file, None);
        let a = kube_access(&options, |_| None, &dir);
        assert_eq!(a.config.base_url, "http://127.0.0.1:8001");
        options.kubernetes_url = Some("http://127.0.0.1:9/".into());
        let a = kube_access(&options, env, &dir);
        assert_eq!(
            (a.config.base_url.as_str(), a.how),
            ("http://127.0.0.1:9", "--kubernetes-url")
        );
        std::fs::remove_dir_all(&dir).unwrap();
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
