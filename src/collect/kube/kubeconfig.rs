//! Kubeconfig files, as `kubectl` reads them: `--kubeconfig FILE`, else the files of
//! `KUBECONFIG` (merged, the first to name a cluster, user or context wins), else
//! `~/.kube/config`; one context (`--context`, else `current-context`) picks the server and
//! the credential: a token, a token file, a client certificate, or an `exec` plugin. Paths in
//! a file are relative to that file's folder.

use std::path::{Path, PathBuf};
use std::time::Duration;

use base64::Engine;
use serde::Deserialize;

use super::exec::{ExecPlugin, API_VERSIONS};
use super::{KubeConfig, KubeSetupError, PemSource};

/// The merged contents of one or more kubeconfig files.
#[derive(Default)]
pub(crate) struct Kubeconfig {
    /// The files read, for messages.
    files: Vec<PathBuf>,
    clusters: Vec<(String, Cluster, PathBuf)>,
    users: Vec<(String, User, PathBuf)>,
    contexts: Vec<(String, Context)>,
    current_context: Option<String>,
}

#[derive(Deserialize, Default)]
struct File {
    clusters: Option<Vec<NamedCluster>>,
    users: Option<Vec<NamedUser>>,
    contexts: Option<Vec<NamedContext>>,
    #[serde(rename = "current-context")]
    current_context: Option<String>,
}

#[derive(Deserialize)]
struct NamedCluster {
    name: String,
    cluster: Cluster,
}

#[derive(Deserialize)]
struct NamedUser {
    name: String,
    user: Option<User>,
}

#[derive(Deserialize)]
struct NamedContext {
    name: String,
    context: Context,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "kebab-case")]
struct Cluster {
    server: Option<String>,
    certificate_authority: Option<PathBuf>,
    certificate_authority_data: Option<String>,
    #[serde(default)]
    insecure_skip_tls_verify: bool,
    proxy_url: Option<String>,
}

#[derive(Deserialize, Clone, Default)]
#[serde(rename_all = "kebab-case")]
struct User {
    token: Option<String>,
    #[serde(rename = "tokenFile")]
    token_file: Option<PathBuf>,
    client_certificate: Option<PathBuf>,
    client_certificate_data: Option<String>,
    client_key: Option<PathBuf>,
    client_key_data: Option<String>,
    exec: Option<Exec>,
    auth_provider: Option<serde::de::IgnoredAny>,
    username: Option<String>,
    #[serde(rename = "as")]
    impersonate: Option<String>,
}

#[derive(Deserialize, Clone)]
#[serde(rename_all = "camelCase")]
struct Exec {
    api_version: Option<String>,
    command: String,
    args: Option<Vec<String>>,
    env: Option<Vec<EnvVar>>,
    install_hint: Option<String>,
    #[serde(default)]
    provide_cluster_info: bool,
    interactive_mode: Option<String>,
}

#[derive(Deserialize, Clone)]
struct EnvVar {
    name: String,
    value: String,
}

#[derive(Deserialize, Clone)]
struct Context {
    cluster: String,
    user: Option<String>,
}

/// How long a credential plugin may take unless `--kube-timeout` says otherwise: cloud CLIs
/// that refresh a login over the network take seconds, not minutes.
const EXEC_TIMEOUT: Duration = Duration::from_secs(30);

fn error(what: impl Into<String>, why: impl Into<String>) -> KubeSetupError {
    KubeSetupError::Kubeconfig {
        what: what.into(),
        why: why.into(),
    }
}

impl Kubeconfig {
    /// Reads `files` in order; a later file adds only the names the earlier ones lack.
    /// `must_exist` (an explicit `--kubeconfig`) makes a missing file an error; a missing
    /// file in `KUBECONFIG` is skipped, as `kubectl` does, unless none exists.
    pub(crate) fn load(files: &[PathBuf], must_exist: bool) -> Result<Kubeconfig, KubeSetupError> {
        let mut merged = Kubeconfig::default();
        for path in files {
            let text = match std::fs::read_to_string(path) {
                Ok(text) => text,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound && !must_exist => continue,
                Err(e) => return Err(error(path.display().to_string(), e.to_string())),
            };
            let file: File = if text.trim().is_empty() {
                File::default()
            } else {
                serde_saphyr::from_str(&text).map_err(|e| {
                    // Only where: the parser's own message quotes the text around the error,
                    // which may be a token or a key.
                    let at = e.location().map_or(String::new(), |l| {
                        format!(" at line {}, column {}", l.line(), l.column())
                    });
                    error(
                        path.display().to_string(),
                        format!("not a kubeconfig: YAML that cannot be read, or a field of the wrong type{at}"),
                    )
                })?
            };
            merged.add(path, file);
        }
        if merged.files.is_empty() {
            let names: Vec<String> = files.iter().map(|f| f.display().to_string()).collect();
            return Err(error(names.join(":"), "no such file"));
        }
        Ok(merged)
    }

    fn add(&mut self, path: &Path, file: File) {
        let folder = path.parent().unwrap_or(Path::new(".")).to_path_buf();
        for c in file.clusters.unwrap_or_default() {
            if !self.clusters.iter().any(|(n, ..)| *n == c.name) {
                self.clusters.push((c.name, c.cluster, folder.clone()));
            }
        }
        for u in file.users.unwrap_or_default() {
            if !self.users.iter().any(|(n, ..)| *n == u.name) {
                self.users
                    .push((u.name, u.user.unwrap_or_default(), folder.clone()));
            }
        }
        for c in file.contexts.unwrap_or_default() {
            if !self.contexts.iter().any(|(n, _)| *n == c.name) {
                self.contexts.push((c.name, c.context));
            }
        }
        if self.current_context.is_none() {
            self.current_context = file.current_context.filter(|c| !c.is_empty());
        }
        self.files.push(path.to_path_buf());
    }

    fn describe_files(&self) -> String {
        let names: Vec<String> = self.files.iter().map(|f| f.display().to_string()).collect();
        names.join(":")
    }

    /// The API server and credential of `context` (else the current context), and the name
    /// of the context chosen.
    pub(crate) fn select(
        &self,
        context: Option<&str>,
    ) -> Result<(KubeConfig, String), KubeSetupError> {
        let files = self.describe_files();
        let name = match context.or(self.current_context.as_deref()) {
            Some(name) => name,
            None => return Err(error(files, "no current-context; name one with --context")),
        };
        let Some((_, ctx)) = self.contexts.iter().find(|(n, _)| n == name) else {
            let known: Vec<&str> = self.contexts.iter().map(|(n, _)| n.as_str()).collect();
            return Err(error(
                files,
                format!("no context {name:?} (contexts: {})", known.join(", ")),
            ));
        };
        let Some((_, cluster, cluster_dir)) =
            self.clusters.iter().find(|(n, ..)| *n == ctx.cluster)
        else {
            return Err(error(
                files,
                format!(
                    "context {name:?} names cluster {:?}, which is not there",
                    ctx.cluster
                ),
            ));
        };
        let server = cluster
            .server
            .as_deref()
            .filter(|s| !s.is_empty())
            .ok_or_else(|| error(&files, format!("cluster {:?} has no server", ctx.cluster)))?;
        if cluster.proxy_url.is_some() {
            return Err(error(
                &files,
                format!("cluster {:?}: proxy-url is not supported", ctx.cluster),
            ));
        }
        let mut config = KubeConfig::new(server);
        config.insecure_skip_tls_verify = cluster.insecure_skip_tls_verify;
        let field = |f: &str| format!("cluster {:?}: {f}", ctx.cluster);
        config.ca = pem_source(
            cluster.certificate_authority.as_deref(),
            cluster.certificate_authority_data.as_deref(),
            cluster_dir,
            &field("certificate-authority-data"),
        )
        .map_err(|why| error(&files, why))?;
        let user = match &ctx.user {
            Some(user) if !user.is_empty() => {
                let Some((_, user_entry, user_dir)) = self.users.iter().find(|(n, ..)| n == user)
                else {
                    return Err(error(
                        files,
                        format!("context {name:?} names user {user:?}, which is not there"),
                    ));
                };
                Some((user.as_str(), user_entry, user_dir))
            }
            _ => None,
        };
        if let Some((user_name, user, dir)) = user {
            self.apply_user(&mut config, user_name, user, dir, cluster, &files)?;
        }
        Ok((config, name.to_string()))
    }

    fn apply_user(
        &self,
        config: &mut KubeConfig,
        name: &str,
        user: &User,
        dir: &Path,
        cluster: &Cluster,
        files: &str,
    ) -> Result<(), KubeSetupError> {
        let unsupported = |what: &str, instead: &str| {
            error(
                files,
                format!("user {name:?}: {what} is not supported; {instead}"),
            )
        };
        if user.auth_provider.is_some() {
            return Err(unsupported(
                "auth-provider",
                "use the provider's exec plugin (kubectl no longer has auth providers)",
            ));
        }
        if user.username.is_some() {
            return Err(unsupported(
                "basic authentication (username)",
                "use a token",
            ));
        }
        if user.impersonate.is_some() {
            return Err(unsupported("impersonation (as)", "use the identity itself"));
        }
        config.token = user.token.clone().filter(|t| !t.is_empty());
        config.token_file = user.token_file.as_ref().map(|f| dir.join(f));
        let field = |f: &str| format!("user {name:?}: {f}");
        let cert = pem_source(
            user.client_certificate.as_deref(),
            user.client_certificate_data.as_deref(),
            dir,
            &field("client-certificate-data"),
        )
        .map_err(|why| error(files, why))?;
        let key = pem_source(
            user.client_key.as_deref(),
            user.client_key_data.as_deref(),
            dir,
            &field("client-key-data"),
        )
        .map_err(|why| error(files, why))?;
        config.client_cert = match (cert, key) {
            (Some(cert), Some(key)) => Some((cert, key)),
            (None, None) => None,
            _ => {
                return Err(error(
                    files,
                    field("a client certificate needs both the certificate and its key"),
                ))
            }
        };
        if let Some(exec) = &user.exec {
            config.exec = Some(
                exec_plugin(exec, dir, cluster, config).map_err(|why| error(files, field(&why)))?,
            );
        }
        Ok(())
    }
}

/// A PEM given as a file or inline (base64), as kubeconfig fields come in pairs.
fn pem_source(
    file: Option<&Path>,
    data: Option<&str>,
    dir: &Path,
    field: &str,
) -> Result<Option<PemSource>, String> {
    if let Some(data) = data.filter(|d| !d.is_empty()) {
        let pem = base64::engine::general_purpose::STANDARD
            .decode(data.trim())
            .map_err(|e| format!("{field} is not base64: {e}"))?;
        return Ok(Some(PemSource::Data {
            what: field.to_string(),
            pem,
        }));
    }
    Ok(file
        .filter(|f| !f.as_os_str().is_empty())
        .map(|f| PemSource::File(dir.join(f))))
}

fn exec_plugin(
    exec: &Exec,
    dir: &Path,
    cluster: &Cluster,
    config: &KubeConfig,
) -> Result<ExecPlugin, String> {
    let api_version = exec
        .api_version
        .clone()
        .ok_or_else(|| "exec needs an apiVersion".to_string())?;
    if !API_VERSIONS.contains(&api_version.as_str()) {
        return Err(format!(
            "exec apiVersion {api_version:?} is not one of {}",
            API_VERSIONS.join(", ")
        ));
    }
    if exec.interactive_mode.as_deref() == Some("Always") {
        return Err(
            "exec interactiveMode Always needs a terminal, and this is a service".to_string(),
        );
    }
    let command = PathBuf::from(&exec.command);
    // As kubectl: a bare name is looked up in PATH, a relative path is the kubeconfig's.
    let command = if command.components().count() > 1 && command.is_relative() {
        dir.join(command)
    } else {
        command
    };
    let cluster_info = exec.provide_cluster_info.then(|| {
        let mut info = serde_json::json!({
            "server": config.base_url,
            "insecure-skip-tls-verify": cluster.insecure_skip_tls_verify,
        });
        if let Some(PemSource::Data { pem, .. }) = &config.ca {
            info["certificate-authority-data"] =
                base64::engine::general_purpose::STANDARD.encode(pem).into();
        }
        info
    });
    Ok(ExecPlugin {
        api_version,
        command,
        args: exec.args.clone().unwrap_or_default(),
        env: exec
            .env
            .iter()
            .flatten()
            .map(|e| (e.name.clone(), e.value.clone()))
            .collect(),
        install_hint: exec.install_hint.clone(),
        cluster_info,
        timeout: EXEC_TIMEOUT,
    })
}

/// The kubeconfig files to read when no `--kubeconfig` is given: `KUBECONFIG`'s list, else
/// `~/.kube/config` when it exists.
pub(crate) fn default_files(env: &dyn Fn(&str) -> Option<String>) -> Option<Vec<PathBuf>> {
    if let Some(list) = env("KUBECONFIG").filter(|l| !l.is_empty()) {
        let files: Vec<PathBuf> = list
            .split(':')
            .filter(|p| !p.is_empty())
            .map(PathBuf::from)
            .collect();
        return Some(files);
    }
    let home = env("HOME").filter(|h| !h.is_empty())?;
    let file = Path::new(&home).join(".kube/config");
    file.is_file().then(|| vec![file])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
        let path = dir.join(name);
        std::fs::write(&path, text).unwrap();
        path
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ci-kubeconfig-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        dir
    }

    const FIRST: &str = r#"
apiVersion: v1
kind: Config
current-context: dev
clusters:
- name: dev
  cluster:
    server: https://127.0.0.1:6443
    certificate-authority: pki/ca.crt
- name: prod
  cluster:
    server: https://127.0.0.2:6443/prefix
    certificate-authority-data: LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==
contexts:
- name: dev
  context: {cluster: dev, user: dev-user, namespace: web}
- name: prod
  context:
    cluster: prod
    user: prod-user
users:
- name: dev-user
  user:
    token: dev-token
- name: prod-user
  user:
    exec:
      apiVersion: client.authentication.k8s.io/v1
      command: ./bin/get-token
      args: [--cluster, prod]
      env: [{name: REGION, value: eu}]
      provideClusterInfo: true
      interactiveMode: IfAvailable
preferences: {}
"#;

    #[test]
    fn the_current_context_gives_server_ca_and_token_with_paths_beside_the_file() {
        let dir = temp("current");
        let file = write(&dir, "config", FIRST);
        let merged = Kubeconfig::load(&[file], true).unwrap();
        let (config, name) = merged.select(None).unwrap();
        assert_eq!(name, "dev");
        assert_eq!(config.base_url, "https://127.0.0.1:6443");
        assert_eq!(config.token.as_deref(), Some("dev-token"));
        assert!(matches!(&config.ca, Some(PemSource::File(p)) if *p == dir.join("pki/ca.crt")));
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_named_context_with_an_exec_plugin_and_inline_ca() {
        let dir = temp("exec");
        let file = write(&dir, "config", FIRST);
        let merged = Kubeconfig::load(&[file], true).unwrap();
        let (config, _) = merged.select(Some("prod")).unwrap();
        assert_eq!(config.base_url, "https://127.0.0.2:6443/prefix");
        assert!(
            matches!(&config.ca, Some(PemSource::Data { pem, .. }) if pem.starts_with(b"-----BEGIN"))
        );
        let exec = config.exec.unwrap();
        assert_eq!(exec.command, dir.join("bin/get-token"));
        assert_eq!(exec.args, ["--cluster", "prod"]);
        assert_eq!(exec.env, [("REGION".to_string(), "eu".to_string())]);
        let info = exec.cluster_info.unwrap();
        assert_eq!(info["server"], "https://127.0.0.2:6443/prefix");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn merged_files_keep_the_first_of_each_name() {
        let dir = temp("merge");
        let first = write(&dir, "a", FIRST);
        let second = write(
            &dir,
            "b",
            "current-context: other\nclusters:\n- name: dev\n  cluster: {server: https://10.0.0.1}\n- name: other\n  cluster: {server: http://127.0.0.3:8080}\ncontexts:\n- name: other\n  context: {cluster: other}\n",
        );
        let missing = dir.join("missing");
        let merged = Kubeconfig::load(&[missing, first, second], false).unwrap();
        assert_eq!(
            merged.select(None).unwrap().0.base_url,
            "https://127.0.0.1:6443"
        );
        let (other, _) = merged.select(Some("other")).unwrap();
        assert_eq!(other.base_url, "http://127.0.0.3:8080");
        assert!(other.token.is_none() && other.exec.is_none());
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn bad_files_and_choices_say_what_is_wrong() {
        let dir = temp("bad");
        let cases = [
            ("clusters: [", "not a kubeconfig"),
            ("contexts: []\n", "no current-context"),
            (
                "current-context: x\ncontexts:\n- name: x\n  context: {cluster: gone}\n",
                "names cluster \"gone\"",
            ),
            (
                "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://h}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {auth-provider: {name: gcp}}\n",
                "auth-provider is not supported",
            ),
            (
                "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://h}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {client-certificate: c.crt}\n",
                "needs both the certificate and its key",
            ),
            (
                "current-context: x\nclusters:\n- name: c\n  cluster: {server: https://h}\ncontexts:\n- name: x\n  context: {cluster: c, user: u}\nusers:\n- name: u\n  user: {exec: {apiVersion: client.authentication.k8s.io/v1alpha1, command: x}}\n",
                "is not one of",
            ),
        ];
        for (i, (text, expected)) in cases.into_iter().enumerate() {
            let file = write(&dir, &format!("c{i}"), text);
            let err = Kubeconfig::load(&[file], true)
                .and_then(|k| k.select(None))
                .err()
                .unwrap()
                .to_string();
            assert!(err.contains(expected), "{text}: {err}");
        }
        // A YAML error near a secret says where, not what is there.
        let file = write(
            &dir,
            "secret",
            "users:\n- name: u\n  user:\n    token: s3cret-t0ken\n    client-key-data: [s3cret-key\n",
        );
        let err = Kubeconfig::load(&[file], true).err().unwrap().to_string();
        assert!(err.contains("line") && !err.contains("s3cret"), "{err}");
        let err = Kubeconfig::load(&[dir.join("none")], true)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("none"), "{err}");
        let err = Kubeconfig::load(&[dir.join("none")], false)
            .err()
            .unwrap()
            .to_string();
        assert!(err.contains("no such file"), "{err}");
        std::fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn kubeconfig_variable_then_home() {
        let env = |name: &str| match name {
            "KUBECONFIG" => Some("/a::/b".to_string()),
            _ => None,
        };
        let files = default_files(&env).unwrap();
        assert_eq!(files, [PathBuf::from("/a"), PathBuf::from("/b")]);
        let dir = temp("home");
        std::fs::create_dir_all(dir.join(".kube")).unwrap();
        let home = dir.to_string_lossy().to_string();
        assert!(default_files(&|n: &str| (n == "HOME").then(|| home.clone())).is_none());
        write(&dir.join(".kube"), "config", FIRST);
        let files = default_files(&|n: &str| (n == "HOME").then(|| home.clone())).unwrap();
        assert_eq!(files, [dir.join(".kube/config")]);
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
