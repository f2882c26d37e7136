//! The Kubernetes client over real TLS: a certificate authority and a server certificate
//! are generated for each run with the `openssl` command, and a small HTTPS API server
//! (tests/support/tls_apiserver.py) serves lists with them. The client must accept the
//! server only with the right CA (or when told not to verify), and must send the token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster_insight::collect::kube::{KubeClient, KubeConfig, KubeError, PemSource};
use cluster_insight::collect::objects::parse_object;
use cluster_insight::graph::Kind;
use cluster_insight::{cli, config};

struct Pki {
    dir: PathBuf,
}

impl Pki {
    /// A CA, a server certificate for 127.0.0.1 signed by it, and an unrelated second CA.
    fn generate(name: &str) -> Pki {
        let dir = std::env::temp_dir().join(format!("ci-tls-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let run = |args: &[&str]| {
            let out = Command::new("openssl")
                .args(args)
                .current_dir(&dir)
                .output()
                .expect("openssl runs");
            assert!(
                out.status.success(),
                "openssl {args:?}: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        };
        for ca in ["ca", "other-ca"] {
            run(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                &format!("/CN={ca}"),
                "-keyout",
                &format!("{ca}.key"),
                "-out",
                &format!("{ca}.crt"),
                "-addext",
                "basicConstraints=critical,CA:TRUE",
                "-addext",
                "keyUsage=critical,keyCertSign,cRLSign",
            ]);
        }
        // A key and a certificate for `name`, signed by `ca`, with `ext`'s extensions.
        let issue = |name: &str, ca: &str, ext: &str| {
            run(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                &format!("/CN={name}/O=cluster-insight"),
                "-keyout",
                &format!("{name}.key"),
                "-out",
                &format!("{name}.csr"),
            ]);
            std::fs::write(dir.join(format!("{name}.ext")), ext).unwrap();
            run(&[
                "x509",
                "-req",
                "-in",
                &format!("{name}.csr"),
                "-CA",
                &format!("{ca}.crt"),
                "-CAkey",
                &format!("{ca}.key"),
                "-CAcreateserial",
                "-days",
                "2",
                "-out",
                &format!("{name}.crt"),
                "-extfile",
                &format!("{name}.ext"),
            ]);
        };
        issue(
            "server",
            "ca",
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        );
        // Client certificates for mutual TLS: one the cluster's CA signed, one it did not.
        for (name, ca) in [("client", "ca"), ("stranger", "other-ca")] {
            issue(
                name,
                ca,
                "basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=clientAuth\n",
            );
        }
        std::fs::write(dir.join("token"), "s3cret-token\n").unwrap();
        std::fs::write(dir.join("wrong-token"), "not-the-token\n").unwrap();
        Pki { dir }
    }

    fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

impl Drop for Pki {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

/// The HTTPS API server; it exits when its stdin closes, i.e. when this is dropped.
struct ApiServer {
    child: Child,
    port: u16,
}

impl ApiServer {
    fn start(pki: &Pki) -> ApiServer {
        ApiServer::start_with(pki, "s3cret-token", false)
    }

    /// `tokens`: those accepted, comma-separated; `mutual`: a client certificate signed by
    /// the cluster's CA is required in the handshake (and stands for a token).
    fn start_with(pki: &Pki, tokens: &str, mutual: bool) -> ApiServer {
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_apiserver.py");
        let mut command = Command::new("python3");
        command
            .arg(script)
            .arg(pki.path("server.crt"))
            .arg(pki.path("server.key"))
            .arg(tokens);
        if mutual {
            command.arg(pki.path("ca.crt"));
        }
        let mut child = command
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python3 runs");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the server prints its port");
        ApiServer { child, port }
    }

    fn config(&self) -> KubeConfig {
        KubeConfig::new(&format!("https://127.0.0.1:{}", self.port))
    }
}

impl Drop for ApiServer {
    fn drop(&mut self) {
        drop(self.child.stdin.take());
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn list_pods(config: &KubeConfig) -> Result<usize, KubeError> {
    let client = KubeClient::new(config).expect("client builds");
    client
        .list("/api/v1/pods", |raw| parse_object(Kind::POD, raw))
        .map(|l| l.items.len())
}

#[test]
fn https_with_the_cluster_ca_and_token() {
    let pki = Pki::generate("ok");
    let server = ApiServer::start(&pki);
    let mut config = server.config();
    config.ca = Some(PemSource::File(pki.path("ca.crt")));
    config.token_file = Some(pki.path("token"));
    assert_eq!(list_pods(&config).unwrap(), 3);
    let client = KubeClient::new(&config).unwrap();
    assert_eq!(
        client
            .list("/api/v1/nodes", |raw| parse_object(Kind::NODE, raw))
            .unwrap()
            .items
            .len(),
        2
    );
}

#[test]
fn https_refuses_a_server_it_cannot_verify() {
    let pki = Pki::generate("refuse");
    let server = ApiServer::start(&pki);
    let mut config = server.config();
    config.token_file = Some(pki.path("token"));

    // The public roots do not know our CA.
    let err = list_pods(&config).unwrap_err();
    assert!(matches!(err, KubeError::Transport(_)), "{err}");
    // Nor does another CA.
    config.ca = Some(PemSource::File(pki.path("other-ca.crt")));
    let err = list_pods(&config).unwrap_err();
    assert!(matches!(err, KubeError::Transport(_)), "{err}");
    assert!(
        !err.to_string().contains("s3cret"),
        "the token never shows: {err}"
    );

    // Unless verification is switched off.
    config.ca = None;
    config.insecure_skip_tls_verify = true;
    assert_eq!(list_pods(&config).unwrap(), 3);
}

#[test]
fn a_wrong_token_reads_the_status_object() {
    let pki = Pki::generate("token");
    let server = ApiServer::start(&pki);
    let mut config = server.config();
    config.ca = Some(PemSource::File(pki.path("ca.crt")));
    config.token_file = Some(pki.path("wrong-token"));
    match list_pods(&config) {
        Err(KubeError::Status {
            code: 401, reason, ..
        }) => assert_eq!(reason, "Unauthorized"),
        other => panic!("expected a 401 Status, got {other:?}"),
    }
    config.token_file = None;
    assert!(matches!(
        list_pods(&config),
        Err(KubeError::Status { code: 401, .. })
    ));
}

#[test]
fn a_file_that_is_not_a_certificate_fails_at_start_up() {
    let pki = Pki::generate("badca");
    let mut config = KubeConfig::new("https://127.0.0.1:1");
    config.ca = Some(PemSource::File(pki.path("token")));
    let err = KubeClient::new(&config).err().expect("refused").to_string();
    assert!(err.contains("no usable CA certificate"), "{err}");
}

/// The client the master would build from these flags and environment, as far as the
/// kubeconfig and its credential go (no service-account folder).
fn client_from(args: &[&str], env: &[(&str, &str)]) -> Result<KubeClient, String> {
    let args = args.iter().map(std::ffi::OsString::from);
    let Ok(cli::Command::Run(options)) = cli::parse(args, None) else {
        panic!("the flags parse");
    };
    let env = |name: &str| {
        env.iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| v.to_string())
    };
    let access = config::kube_access(&options, env, Path::new("/nonexistent"))
        .map_err(|e| error_chain(&e))?;
    KubeClient::new(&access.config).map_err(|e| error_chain(&e))
}

fn error_chain(e: &dyn std::error::Error) -> String {
    cluster_insight::report::chain(e)
}

/// The client of the kubeconfig `file`'s context `tls`.
fn tls_context(file: &Path) -> Result<KubeClient, String> {
    let args = ["--kubeconfig", file.to_str().unwrap(), "--context", "tls"];
    client_from(&args, &[])
}

fn pods(client: &KubeClient) -> Result<usize, KubeError> {
    client
        .list("/api/v1/pods", |raw| parse_object(Kind::POD, raw))
        .map(|l| l.items.len())
}

/// A kubeconfig beside the PKI files (paths in it are relative to it) with two contexts:
/// `tls` (this user) and `elsewhere` (a cluster on a closed port).
fn write_kubeconfig(pki: &Pki, server: &ApiServer, file: &str, user: &str) -> PathBuf {
    let text = format!(
        "apiVersion: v1\nkind: Config\ncurrent-context: elsewhere\nclusters:\n\
         - name: tls\n  cluster:\n    server: https://127.0.0.1:{port}\n    certificate-authority: ca.crt\n\
         - name: closed\n  cluster:\n    server: https://127.0.0.1:1\n\
         contexts:\n- name: tls\n  context: {{cluster: tls, user: me}}\n\
         - name: elsewhere\n  context: {{cluster: closed, user: me}}\n\
         users:\n- name: me\n  user:\n{user}",
        port = server.port
    );
    let path = pki.path(file);
    std::fs::write(&path, text).unwrap();
    path
}

/// A credential plugin: a shell script that counts its runs in `NAME.runs` and prints what
/// the case gives for that run.
fn plugin(pki: &Pki, name: &str, body: &str) -> PathBuf {
    let path = pki.path(name);
    let runs = pki.path(&format!("{name}.runs"));
    std::fs::write(
        &path,
        format!(
            "#!/bin/sh\necho run >> '{}'\nrun=$(wc -l < '{}')\n{body}\n",
            runs.display(),
            runs.display()
        ),
    )
    .unwrap();
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    path
}

fn runs(pki: &Pki, name: &str) -> usize {
    std::fs::read_to_string(pki.path(&format!("{name}.runs")))
        .map(|t| t.lines().count())
        .unwrap_or(0)
}

/// A shell command printing an ExecCredential; `token` may hold `$run`.
fn credential(token: &str, expiry: &str) -> String {
    let expiry = if expiry.is_empty() {
        String::new()
    } else {
        format!(",\"expirationTimestamp\":\"{expiry}\"")
    };
    let json = format!(
        "{{\"apiVersion\":\"client.authentication.k8s.io/v1\",\"kind\":\"ExecCredential\",\"status\":{{\"token\":\"{token}\"{expiry}}}}}"
    );
    format!("echo \"{}\"", json.replace('"', "\\\""))
}

#[test]
fn a_kubeconfig_context_with_a_token_file_relative_to_it() {
    let pki = Pki::generate("kc-token");
    let server = ApiServer::start(&pki);
    let file = write_kubeconfig(&pki, &server, "config", "    tokenFile: token\n");
    let file = file.to_str().unwrap();
    let client = client_from(&["--kubeconfig", file, "--context", "tls"], &[]).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    // KUBECONFIG, with a missing file first, as kubectl merges it.
    let list = format!("{}:{file}", pki.path("missing").display());
    let client = client_from(&["--context", "tls"], &[("KUBECONFIG", &list)]).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    // The current context is the closed port: the client builds, its calls fail.
    let client = client_from(&["--kubeconfig", file], &[]).unwrap();
    assert!(matches!(pods(&client), Err(KubeError::Transport(_))));
    let err = client_from(&["--kubeconfig", file, "--context", "nope"], &[])
        .err()
        .unwrap();
    assert!(
        err.contains("no context \"nope\" (contexts: tls, elsewhere)"),
        "{err}"
    );
}

#[test]
fn mutual_tls_with_the_kubeconfig_client_certificate() {
    let pki = Pki::generate("kc-mtls");
    let server = ApiServer::start_with(&pki, "", true);
    // As files beside the kubeconfig.
    let file = write_kubeconfig(
        &pki,
        &server,
        "config",
        "    client-certificate: client.crt\n    client-key: client.key\n",
    );
    let client = tls_context(&file).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    // Inline, base64, as clusters' generated kubeconfigs have them.
    let b64 = |f: &str| {
        use base64::Engine;
        base64::engine::general_purpose::STANDARD.encode(std::fs::read(pki.path(f)).unwrap())
    };
    let inline = write_kubeconfig(
        &pki,
        &server,
        "inline",
        &format!(
            "    client-certificate-data: {}\n    client-key-data: {}\n",
            b64("client.crt"),
            b64("client.key")
        ),
    );
    let client = tls_context(&inline).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    // A certificate the cluster's CA did not sign, or none at all, is refused in the
    // handshake; a token does not stand in for it.
    for user in [
        "    client-certificate: stranger.crt\n    client-key: stranger.key\n",
        "    token: s3cret-token\n",
    ] {
        let file = write_kubeconfig(&pki, &server, "refused", user);
        let client = tls_context(&file).unwrap();
        let err = pods(&client).unwrap_err();
        assert!(matches!(err, KubeError::Transport(_)), "{user}: {err}");
    }
    // From a credential plugin, which gives PEM text (not base64) in its ExecCredential.
    let issued = serde_json::json!({
        "apiVersion": "client.authentication.k8s.io/v1beta1",
        "kind": "ExecCredential",
        "status": {
            "clientCertificateData": std::fs::read_to_string(pki.path("client.crt")).unwrap(),
            "clientKeyData": std::fs::read_to_string(pki.path("client.key")).unwrap(),
        }
    });
    std::fs::write(pki.path("issued.json"), issued.to_string()).unwrap();
    let command = plugin(
        &pki,
        "cert-plugin",
        &format!("cat '{}'", pki.path("issued.json").display()),
    );
    let file = write_kubeconfig(
        &pki,
        &server,
        "exec-cert",
        &format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1beta1\n      command: {}\n",
            command.display()
        ),
    );
    let client = tls_context(&file).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    // A key that is not a key: a configuration error at start.
    let file = write_kubeconfig(
        &pki,
        &server,
        "badkey",
        "    client-certificate: client.crt\n    client-key: token\n",
    );
    let err = tls_context(&file).err().unwrap();
    assert!(err.contains("no usable client certificate"), "{err}");
}

#[test]
fn an_exec_plugin_token_is_used_and_asked_again_when_it_expires() {
    let pki = Pki::generate("kc-exec");
    let server = ApiServer::start_with(&pki, "exec-token-1,exec-token-2,exec-token-3", false);
    let args = |file: &Path| {
        vec![
            "--kubeconfig".to_string(),
            file.to_str().unwrap().to_string(),
            "--context".to_string(),
            "tls".to_string(),
        ]
    };
    let run = |file: &Path| {
        let args = args(file);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        client_from(&args, &[])
    };
    let exec_user = |command: &Path, extra: &str| {
        format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n      args: [--for, tls]\n      env: [{{name: WANTED, value: yes}}]\n      provideClusterInfo: true\n{extra}",
            command.display()
        )
    };

    // No expiry: run once, at start, whatever the number of calls. The plugin sees its
    // arguments, its environment and the cluster's address.
    let once = plugin(
        &pki,
        "once",
        &format!(
            "[ \"$1 $2 $WANTED\" = '--for tls yes' ] || exit 9\n\
             echo \"$KUBERNETES_EXEC_INFO\" | grep -q '\"server\":\"https://127.0.0.1:{}\"' || exit 8\n{}",
            server.port,
            credential("exec-token-$run", "")
        ),
    );
    let file = write_kubeconfig(&pki, &server, "once.yaml", &exec_user(&once, ""));
    let client = run(&file).unwrap();
    for _ in 0..3 {
        assert_eq!(pods(&client).unwrap(), 3);
    }
    assert_eq!(runs(&pki, "once"), 1);

    // A credential about to expire is asked for again before each call.
    let soon = plugin(
        &pki,
        "soon",
        &credential("exec-token-$run", "2000-01-01T00:00:00Z"),
    );
    let file = write_kubeconfig(&pki, &server, "soon.yaml", &exec_user(&soon, ""));
    let client = run(&file).unwrap();
    assert_eq!(pods(&client).unwrap(), 3);
    assert_eq!(pods(&client).unwrap(), 3);
    assert_eq!(runs(&pki, "soon"), 3);

    // A refused token (401) is asked for again, after a pause.
    let revoked = plugin(
        &pki,
        "revoked",
        &format!(
            "if [ \"$run\" = 1 ]; then {}; else {}; fi",
            credential("revoked-token", ""),
            credential("exec-token-2", "")
        ),
    );
    let file = write_kubeconfig(&pki, &server, "revoked.yaml", &exec_user(&revoked, ""));
    let client = run(&file).unwrap();
    assert!(matches!(
        pods(&client),
        Err(KubeError::Status { code: 401, .. })
    ));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    while pods(&client).is_err() {
        assert!(std::time::Instant::now() < deadline, "never asked again");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    assert_eq!(runs(&pki, "revoked"), 2);
}

#[test]
fn exec_plugin_failures_are_configuration_errors_that_say_why() {
    let pki = Pki::generate("kc-exec-bad");
    let server = ApiServer::start(&pki);
    let cases = [
        (
            "echo 'login required: run gcloud auth login' >&2; exit 1",
            "login required: run gcloud auth login",
        ),
        ("echo 'token s3cret-token'", "no ExecCredential JSON"),
        ("sleep 60", "gave no credential within"),
    ];
    for (i, (body, expected)) in cases.into_iter().enumerate() {
        let name = format!("bad{i}");
        let command = plugin(&pki, &name, body);
        let user = format!(
            "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: {}\n",
            command.display()
        );
        let file = write_kubeconfig(&pki, &server, &format!("{name}.yaml"), &user);
        // --kube-timeout bounds the plugin too.
        let flags = [
            "--kubeconfig",
            file.to_str().unwrap(),
            "--context",
            "tls",
            "--kube-timeout",
            "1",
        ];
        let err = client_from(&flags, &[]).err().unwrap();
        assert!(err.contains(expected), "{body}: {err}");
        assert!(!err.contains("s3cret"), "{err}");
    }
    let user = "    exec:\n      apiVersion: client.authentication.k8s.io/v1\n      command: not-installed-plugin\n      installHint: install it with your package manager\n";
    let file = write_kubeconfig(&pki, &server, "missing.yaml", user);
    let err = tls_context(&file).err().unwrap();
    assert!(
        err.contains("cannot run the credential plugin not-installed-plugin")
            && err.contains("install it with your package manager"),
        "{err}"
    );
}
