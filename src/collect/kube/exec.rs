//! `exec` credential plugins (client.authentication.k8s.io): the command a kubeconfig names
//! to get a credential, as cloud CLIs install them (gke-gcloud-auth-plugin, `aws eks
//! get-token`, kubelogin). The plugin prints an `ExecCredential` holding a token or a client
//! certificate, often with an expiry. It runs with no terminal, a bounded time and a bounded
//! output; what it prints on standard output is a secret and never reaches a message.

use std::ffi::OsString;
use std::fmt;
use std::io::Read;
use std::path::PathBuf;
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use serde::Deserialize;

/// The API versions of `ExecCredential` a plugin may speak (v1alpha1 left Kubernetes 1.24).
pub(crate) const API_VERSIONS: [&str; 2] = [
    "client.authentication.k8s.io/v1",
    "client.authentication.k8s.io/v1beta1",
];

/// A plugin writes a token or a certificate; anything near a megabyte is not one.
const MAX_OUTPUT: u64 = 1 << 20;
/// What a failed plugin said, as much as a message needs.
const MAX_STDERR_SHOWN: usize = 600;

/// How to run a plugin, from a kubeconfig's `users[].user.exec`.
#[derive(Clone)]
pub(crate) struct ExecPlugin {
    pub(crate) api_version: String,
    /// A bare name is looked up in `PATH`; a relative path was made absolute against the
    /// kubeconfig's folder.
    pub(crate) command: PathBuf,
    pub(crate) args: Vec<String>,
    pub(crate) env: Vec<(String, String)>,
    pub(crate) install_hint: Option<String>,
    /// The cluster's `server` and CA, passed in `KUBERNETES_EXEC_INFO` when the kubeconfig
    /// asks for it (`provideClusterInfo`).
    pub(crate) cluster_info: Option<serde_json::Value>,
    pub(crate) timeout: Duration,
}

impl fmt::Debug for ExecPlugin {
    // The environment and the arguments may carry secrets of their own.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ExecPlugin({})", self.command.display())
    }
}

/// What a plugin issued.
#[derive(Clone)]
pub(crate) struct Issued {
    pub(crate) token: Option<String>,
    /// PEM certificate (chain) and PEM key.
    pub(crate) client_cert: Option<(Vec<u8>, Vec<u8>)>,
    /// Milliseconds since the epoch; none means valid until the API server refuses it.
    pub(crate) expires_at: Option<i64>,
}

impl Issued {
    /// Whether it is time to ask the plugin again.
    pub(crate) fn expired(&self, now_millis: i64) -> bool {
        // A little early, so that a list of many pages does not cross the expiry.
        self.expires_at.is_some_and(|at| now_millis >= at - 10_000)
    }
}

/// Why a plugin gave no credential.
#[derive(Debug)]
pub enum ExecError {
    Spawn {
        command: String,
        error: std::io::Error,
        hint: Option<String>,
    },
    Failed {
        command: String,
        status: ExitStatus,
        stderr: String,
    },
    TimedOut {
        command: String,
        after: Duration,
    },
    Output {
        command: String,
        why: String,
    },
}

impl fmt::Display for ExecError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ExecError::Spawn {
                command,
                error,
                hint,
            } => {
                write!(f, "cannot run the credential plugin {command}: {error}")?;
                if let Some(hint) = hint {
                    write!(f, " ({})", hint.trim())?;
                }
                Ok(())
            }
            ExecError::Failed {
                command,
                status,
                stderr,
            } => {
                write!(f, "the credential plugin {command} failed ({status})")?;
                if !stderr.is_empty() {
                    write!(f, ": {stderr}")?;
                }
                Ok(())
            }
            ExecError::TimedOut { command, after } => write!(
                f,
                "the credential plugin {command} gave no credential within {} s",
                after.as_secs()
            ),
            ExecError::Output { command, why } => {
                write!(f, "the credential plugin {command} printed {why}")
            }
        }
    }
}

impl std::error::Error for ExecError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            ExecError::Spawn { error, .. } => Some(error),
            _ => None,
        }
    }
}

impl ExecPlugin {
    fn name(&self) -> String {
        self.command.display().to_string()
    }

    /// Runs the plugin once and reads its credential.
    pub(crate) fn run(&self) -> Result<Issued, ExecError> {
        let mut spec = serde_json::json!({ "interactive": false });
        if let Some(cluster) = &self.cluster_info {
            spec["cluster"] = cluster.clone();
        }
        let info = serde_json::json!({
            "apiVersion": self.api_version,
            "kind": "ExecCredential",
            "spec": spec,
        });
        let mut command = Command::new(&self.command);
        command
            .args(&self.args)
            .envs(
                self.env
                    .iter()
                    .map(|(k, v)| (OsString::from(k), OsString::from(v))),
            )
            .env("KUBERNETES_EXEC_INFO", info.to_string())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = command.spawn().map_err(|error| ExecError::Spawn {
            command: self.name(),
            error,
            hint: self.install_hint.clone(),
        })?;
        // Read on threads of their own, handed over by channel: a process the plugin left
        // behind may hold the pipes open, and no one waits on it past the deadline.
        let (out_tx, out_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
        let (err_tx, err_rx) = crossbeam_channel::bounded::<Vec<u8>>(1);
        if let Some(out) = child.stdout.take() {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = out.take(MAX_OUTPUT + 1).read_to_end(&mut text);
                let _ = out_tx.send(text);
            });
        }
        if let Some(err) = child.stderr.take() {
            std::thread::spawn(move || {
                let mut text = Vec::new();
                let _ = err.take(MAX_OUTPUT).read_to_end(&mut text);
                let _ = err_tx.send(text);
            });
        }
        let deadline = Instant::now() + self.timeout;
        let status = loop {
            match child.try_wait() {
                Ok(Some(status)) => break status,
                Ok(None) if Instant::now() < deadline => {
                    std::thread::sleep(Duration::from_millis(5))
                }
                Ok(None) | Err(_) => {
                    let _ = child.kill();
                    let _ = child.wait();
                    return Err(ExecError::TimedOut {
                        command: self.name(),
                        after: self.timeout,
                    });
                }
            }
        };
        let left = || {
            deadline
                .saturating_duration_since(Instant::now())
                .max(Duration::from_millis(100))
        };
        let stdout = out_rx.recv_timeout(left()).unwrap_or_default();
        let stderr = err_rx.recv_timeout(left()).unwrap_or_default();
        if !status.success() {
            let stderr = String::from_utf8_lossy(&stderr);
            let stderr = stderr.trim();
            let shown: String = stderr.chars().take(MAX_STDERR_SHOWN).collect();
            return Err(ExecError::Failed {
                command: self.name(),
                status,
                stderr: shown,
            });
        }
        if stdout.len() as u64 > MAX_OUTPUT {
            return Err(ExecError::Output {
                command: self.name(),
                why: "more than a megabyte".to_string(),
            });
        }
        parse_credential(&stdout, &self.api_version).map_err(|why| ExecError::Output {
            command: self.name(),
            why,
        })
    }
}

/// Reads an `ExecCredential`; errors say what is wrong without quoting it.
fn parse_credential(text: &[u8], api_version: &str) -> Result<Issued, String> {
    #[derive(Deserialize)]
    struct Credential {
        #[serde(rename = "apiVersion", default)]
        api_version: String,
        #[serde(default)]
        kind: String,
        status: Option<Status>,
    }
    #[derive(Deserialize)]
    #[serde(rename_all = "camelCase")]
    struct Status {
        token: Option<String>,
        client_certificate_data: Option<String>,
        client_key_data: Option<String>,
        expiration_timestamp: Option<String>,
    }
    let credential: Credential = serde_json::from_slice(text).map_err(|e| {
        // Only what kind of error and where: serde's messages may quote the output (a token).
        format!(
            "no ExecCredential JSON ({:?} error at line {}, column {})",
            e.classify(),
            e.line(),
            e.column()
        )
    })?;
    if credential.kind != "ExecCredential" {
        return Err(format!("kind {:?}, not ExecCredential", credential.kind));
    }
    if credential.api_version != api_version {
        return Err(format!(
            "apiVersion {:?} where the kubeconfig asks for {api_version:?}",
            credential.api_version
        ));
    }
    let status = credential
        .status
        .ok_or_else(|| "an ExecCredential without status".to_string())?;
    let expires_at = match &status.expiration_timestamp {
        Some(text) => Some(
            cluster_insight_wire::time::parse_rfc3339_millis(text)
                .ok_or_else(|| format!("an expirationTimestamp that is not RFC 3339: {text:?}"))?,
        ),
        None => None,
    };
    let client_cert = match (status.client_certificate_data, status.client_key_data) {
        (Some(cert), Some(key)) if !cert.is_empty() && !key.is_empty() => {
            Some((cert.into_bytes(), key.into_bytes()))
        }
        (None, None) => None,
        _ => return Err("a client certificate without its key, or a key alone".to_string()),
    };
    let token = status.token.filter(|t| !t.is_empty());
    if token.is_none() && client_cert.is_none() {
        return Err("neither a token nor a client certificate".to_string());
    }
    Ok(Issued {
        token,
        client_cert,
        expires_at,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const V1: &str = "client.authentication.k8s.io/v1";

    #[test]
    fn a_token_with_its_expiry_is_read() {
        let issued = parse_credential(
            br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential",
                "status":{"token":"abc","expirationTimestamp":"2030-01-02T03:04:05Z"}}"#,
            V1,
        )
        .unwrap();
        assert_eq!(issued.token.as_deref(), Some("abc"));
        let at = issued.expires_at.unwrap();
        assert!(!issued.expired(at - 60_000) && issued.expired(at - 5_000));
    }

    #[test]
    fn wrong_or_empty_credentials_are_refused_without_quoting_them() {
        let cases: [(&[u8], &str); 7] = [
            (b"token s3cret", "no ExecCredential JSON"),
            (b"\"s3cret\"", "no ExecCredential JSON"),
            (
                br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":"s3cret"}"#,
                "no ExecCredential JSON",
            ),
            (
                br#"{"apiVersion":"client.authentication.k8s.io/v1beta1","kind":"ExecCredential","status":{"token":"s3cret"}}"#,
                "apiVersion",
            ),
            (
                br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{}}"#,
                "neither a token nor a client certificate",
            ),
            (
                br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential","status":{"clientCertificateData":"x"}}"#,
                "without its key",
            ),
            (
                br#"{"apiVersion":"client.authentication.k8s.io/v1","kind":"ExecCredential"}"#,
                "without status",
            ),
        ];
        for (text, expected) in cases {
            let why = parse_credential(text, V1).err().unwrap();
            assert!(why.contains(expected), "{why}");
            assert!(!why.contains("s3cret"), "{why}");
        }
    }
}
