//! The Kubernetes client over real TLS: a certificate authority and a server certificate
//! are generated for each run with the `openssl` command, and a small HTTPS API server
//! (tests/support/tls_apiserver.py) serves lists with them. The client must accept the
//! server only with the right CA (or when told not to verify), and must send the token.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use cluster_insight::collect::kube::{KubeClient, KubeConfig, KubeError};
use cluster_insight::collect::objects::parse_object;
use cluster_insight::graph::Kind;

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
        run(&[
            "req",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=apiserver",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ]);
        std::fs::write(
            dir.join("server.ext"),
            "subjectAltName=IP:127.0.0.1\nbasicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n",
        )
        .unwrap();
        run(&[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.crt",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-out",
            "server.crt",
            "-extfile",
            "server.ext",
        ]);
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
        let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/support/tls_apiserver.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(pki.path("server.crt"))
            .arg(pki.path("server.key"))
            .arg("s3cret-token")
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
    config.ca_file = Some(pki.path("ca.crt"));
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
    config.ca_file = Some(pki.path("other-ca.crt"));
    let err = list_pods(&config).unwrap_err();
    assert!(matches!(err, KubeError::Transport(_)), "{err}");
    assert!(
        !err.to_string().contains("s3cret"),
        "the token never shows: {err}"
    );

    // Unless verification is switched off.
    config.ca_file = None;
    config.insecure_skip_tls_verify = true;
    assert_eq!(list_pods(&config).unwrap(), 3);
}

#[test]
fn a_wrong_token_reads_the_status_object() {
    let pki = Pki::generate("token");
    let server = ApiServer::start(&pki);
    let mut config = server.config();
    config.ca_file = Some(pki.path("ca.crt"));
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
    config.ca_file = Some(pki.path("token"));
    let err = KubeClient::new(&config).err().expect("refused").to_string();
    assert!(err.contains("no usable CA certificate"), "{err}");
}
