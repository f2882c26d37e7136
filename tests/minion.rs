//! Minion mode over real sockets: raw HTTP requests on loopback TCP to the minion handler
//! served by the HTTP server layer, and a fake Docker daemon on a Unix socket behind it,
//! which records every request line it receives.

use crate::support::fake_docker;

use cluster_insight::agent::{Agent, AgentConfig};
use cluster_insight::http::ClientConfig;
use cluster_insight::http::{self, RunningServer};
use cluster_insight::proxy;
use fake_docker::{FakeDocker, Mode};
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

/// Body cap of the minion under test: small, so that "huge" bodies are quick to send.
const MAX_BODY: usize = 1 << 20;

struct Minion {
    server: Option<RunningServer>,
    addr: SocketAddr,
}

impl Minion {
    fn start(docker_socket: &Path) -> Minion {
        Minion::start_with_workers(docker_socket, 2)
    }

    fn start_with_workers(docker_socket: &Path, workers: usize) -> Minion {
        let config = AgentConfig {
            runtime_sockets: vec![docker_socket.to_path_buf()],
            client: ClientConfig {
                connect_timeout: Duration::from_millis(500),
                io_timeout: Duration::from_millis(300),
                request_timeout: Duration::from_secs(2),
                max_body: MAX_BODY,
                bearer: None,
            },
            ..AgentConfig::default()
        };
        let server = http::serve(
            "127.0.0.1:0".parse().unwrap(),
            workers,
            "minion",
            proxy::handler(
                Arc::new(Agent::new(config)),
                Arc::new(cluster_insight::auth::Authorizer::Open),
                workers,
            ),
        )
        .expect("start the minion");
        let addr = server.local_addr();
        Minion {
            server: Some(server),
            addr,
        }
    }

    /// Sends `request_line` (and `extra` header lines and body) on a fresh connection and
    /// reads the whole reply.
    fn send_with(&self, request_line: &str, extra: &str) -> Reply {
        let mut stream = TcpStream::connect(self.addr).expect("connect to the minion");
        stream
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let request =
            format!("{request_line}\r\nHost: 127.0.0.1\r\nConnection: close\r\n{extra}\r\n");
        stream.write_all(request.as_bytes()).unwrap();
        let mut raw = Vec::new();
        let _ = stream.read_to_end(&mut raw);
        Reply::parse(&raw)
    }

    fn send(&self, request_line: &str) -> Reply {
        self.send_with(request_line, "")
    }
}

impl Drop for Minion {
    fn drop(&mut self) {
        if let Some(server) = self.server.take() {
            server.shutdown();
        }
    }
}

/// Decodes a chunked body (the server layer sends large bodies chunked); a malformed one
/// decodes to what came before the fault, which the assertions then catch.
fn dechunk(mut raw: &[u8]) -> Vec<u8> {
    let mut body = Vec::new();
    while let Some(eol) = raw.windows(2).position(|w| w == b"\r\n") {
        let size_text = String::from_utf8_lossy(&raw[..eol]);
        let size_text = size_text.split(';').next().unwrap_or("").trim();
        let Ok(size) = usize::from_str_radix(size_text, 16) else {
            break;
        };
        raw = &raw[eol + 2..];
        if size == 0 || raw.len() < size {
            break;
        }
        body.extend_from_slice(&raw[..size]);
        raw = raw.get(size + 2..).unwrap_or(&[]);
    }
    body
}

#[derive(Debug)]
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    /// Parses a response framed by `Content-Length`, chunked, or by the end of the
    /// connection. Status 0 when there is no response at all.
    fn parse(raw: &[u8]) -> Reply {
        let Some(end) = raw.windows(4).position(|w| w == b"\r\n\r\n") else {
            return Reply {
                status: 0,
                headers: Vec::new(),
                body: raw.to_vec(),
            };
        };
        let head = String::from_utf8_lossy(&raw[..end]).into_owned();
        let mut lines = head.split("\r\n");
        let status = lines
            .next()
            .and_then(|l| l.split(' ').nth(1))
            .and_then(|s| s.parse().ok())
            .unwrap_or(0);
        let headers: Vec<(String, String)> = lines
            .filter_map(|l| l.split_once(':'))
            .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
            .collect();
        let mut body = raw[end + 4..].to_vec();
        let chunked = headers.iter().any(|(n, v)| {
            n.eq_ignore_ascii_case("transfer-encoding") && v.eq_ignore_ascii_case("chunked")
        });
        if chunked {
            body = dechunk(&body);
        } else if let Some(len) = headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case("content-length"))
            .and_then(|(_, v)| v.parse::<usize>().ok())
        {
            body.truncate(len);
        }
        Reply {
            status,
            headers,
            body,
        }
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or_else(|e| {
            panic!(
                "body is not JSON ({e}): {:?}",
                String::from_utf8_lossy(&self.body)
            )
        })
    }

    /// Asserts the contract's error shape and returns the message.
    fn error_message(&self) -> String {
        assert_eq!(self.header("Content-Type"), Some("application/json"));
        let body = self.json();
        assert_eq!(body["success"], false, "{body}");
        let timestamp = body["timestamp"].as_str().expect("a timestamp");
        assert!(
            timestamp.len() == 24 && timestamp.ends_with('Z'),
            "{timestamp}"
        );
        body["error_message"]
            .as_str()
            .expect("an error message")
            .to_string()
    }
}

/// The allow-list as the daemon must see it: GET or HEAD, one of the six shapes.
fn allowed_request_line(line: &str) -> bool {
    fn is_id(s: &str) -> bool {
        let b = s.as_bytes();
        (1..=255).contains(&b.len())
            && b[0].is_ascii_alphanumeric()
            && b.iter()
                .all(|c| c.is_ascii_alphanumeric() || b"_.:-".contains(c))
            && !s.contains("..")
    }
    let parts: Vec<&str> = line.split(' ').collect();
    let [method, target, "HTTP/1.1"] = parts.as_slice() else {
        return false;
    };
    if *method != "GET" && *method != "HEAD" {
        return false;
    }
    if ["/containers/json", "/version", "/_ping"].contains(target) {
        return true;
    }
    let inspect = |prefix: &str, suffix: &str| {
        target
            .strip_prefix(prefix)
            .and_then(|rest| rest.strip_suffix(suffix))
            .is_some_and(is_id)
    };
    inspect("/containers/", "/json")
        || inspect("/containers/", "/top?ps_args=aux")
        || inspect("/images/", "/json")
}

fn assert_daemon_saw_only_allowed(fake: &FakeDocker) {
    for line in fake.request_lines() {
        assert!(allowed_request_line(&line), "the daemon received {line:?}");
    }
}

#[test]
fn allowed_requests_pass_through() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());

    let list = minion.send("GET /containers/json HTTP/1.1");
    assert_eq!(list.status, 200);
    assert_eq!(list.header("Content-Type"), Some("application/json"));
    assert_eq!(list.header("Api-Version"), Some("1.47"));
    // A chunked daemon body arrives whole.
    assert_eq!(list.json()[1]["Names"][0], "/db");

    let inspect = minion.send("GET /containers/8dfafdbc3a40/json HTTP/1.1");
    assert_eq!(inspect.status, 200);
    assert_eq!(inspect.json()["Id"], "8dfafdbc3a40");

    let top = minion.send("GET /containers/web-0.k8s_x/top?ps_args=aux HTTP/1.1");
    assert_eq!(top.status, 200);
    assert_eq!(top.json()["Titles"][10], "COMMAND");

    let image = minion.send("GET /images/sha256:4f2d1e/json HTTP/1.1");
    assert_eq!(image.status, 200);
    assert_eq!(image.json()["Id"], "sha256:4f2d1e");

    let version = minion.send("GET /version HTTP/1.1");
    assert_eq!(version.status, 200);
    assert_eq!(version.json()["ApiVersion"], "1.47");

    let ping = minion.send("GET /_ping HTTP/1.1");
    assert_eq!(ping.status, 200);
    assert_eq!(
        ping.header("Content-Type"),
        Some("text/plain; charset=utf-8")
    );
    assert_eq!(ping.header("Ostype"), Some("linux"));
    assert_eq!(ping.body, b"OK");

    let head = minion.send("HEAD /containers/json HTTP/1.1");
    assert_eq!(head.status, 200);
    assert!(head.body.is_empty());

    // The daemon's own errors keep their status and body.
    let missing = minion.send("GET /containers/missing/json HTTP/1.1");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["message"], "No such container: missing");

    assert_eq!(
        fake.request_lines(),
        [
            "GET /containers/json HTTP/1.1",
            "GET /containers/8dfafdbc3a40/json HTTP/1.1",
            "GET /containers/web-0.k8s_x/top?ps_args=aux HTTP/1.1",
            "GET /images/sha256:4f2d1e/json HTTP/1.1",
            "GET /version HTTP/1.1",
            "GET /_ping HTTP/1.1",
            "HEAD /containers/json HTTP/1.1",
            "GET /containers/missing/json HTTP/1.1",
        ]
    );
    // Keep-alive to the daemon: far fewer connections than requests.
    assert!(
        fake.connections() <= 2,
        "{} connections",
        fake.connections()
    );
}

#[test]
fn the_validated_form_is_forwarded_not_the_clients_string() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    for target in [
        "/containers/%61bc/json",
        "/images/sha256%3Aabc/json",
        "/containers/abc/top?ps_args=%61ux",
    ] {
        let reply = minion.send(&format!("GET {target} HTTP/1.1"));
        assert_eq!(reply.status, 200, "{target}");
    }
    assert_eq!(
        fake.request_lines(),
        [
            "GET /containers/abc/json HTTP/1.1",
            "GET /images/sha256:abc/json HTTP/1.1",
            "GET /containers/abc/top?ps_args=aux HTTP/1.1",
        ]
    );
}

#[test]
fn id_length_limit() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    let id255 = format!("c{}", "0".repeat(254));
    let ok = minion.send(&format!("GET /containers/{id255}/json HTTP/1.1"));
    assert_eq!(ok.status, 200);
    assert_eq!(ok.json()["Id"], id255.as_str());
    let id256 = format!("c{}", "0".repeat(255));
    let refused = minion.send(&format!("GET /containers/{id256}/json HTTP/1.1"));
    assert_eq!(refused.status, 403);
    refused.error_message();
    let refused = minion.send(&format!("GET /images/{id256}/json HTTP/1.1"));
    assert_eq!(refused.status, 403);
    assert_eq!(
        fake.request_lines(),
        [format!("GET /containers/{id255}/json HTTP/1.1")]
    );
}

#[test]
fn paths_and_queries_outside_the_allow_list_are_403_and_never_forwarded() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    let refused = [
        // Traversal, encoded once, twice, in either case.
        "/containers/../version",
        "/containers/%2e%2e/json",
        "/containers/%2E%2E/json",
        "/containers/abc/%2e%2e/%2e%2e/version",
        "/containers/abc%2F..%2F..%2Fversion/json",
        "/containers/a%2fb/json",
        "/containers/%252e%252e/json",
        "/containers/%25252e/json",
        "/containers/a%252Fb/json",
        "/images/..%2F..%2Fcontainers%2Fcreate/json",
        "/./version",
        "//version",
        "/version/",
        "/containers/abc//json",
        // Not on the list at all.
        "/containers/create",
        "/containers/abc/logs?stdout=1",
        "/containers/abc/archive?path=/",
        "/containers/abc/attach",
        "/exec/abc/json",
        "/info",
        "/v1.47/containers/json",
        "/images/json",
        // Queries: extra, repeated, empty, or not exactly ps_args=aux.
        "/containers/json?all=1",
        "/containers/json?",
        "/version?x=1",
        "/containers/abc/json?size=1",
        "/containers/abc/top",
        "/containers/abc/top?ps_args=aux;ls",
        "/containers/abc/top?ps_args=aux&x=1",
        "/containers/abc/top?x=1&ps_args=aux",
        "/containers/abc/top?ps_args=aux&ps_args=aux",
        "/containers/abc/top?ps_args=aux&",
        "/containers/abc/top?ps_args=-ef",
        "/containers/abc/top?ps_args=aux%26x%3D1",
        "/containers/abc/top?ps_args=%2561ux",
        // Fragments and IDs with characters outside the grammar.
        "/containers/abc/json#x",
        "/containers/-rm/json",
        "/containers/a..b/json",
        "/containers/a%00b/json",
        "/containers/%C3%A9/json",
        "/containers/a%zzb/json",
        // Absolute- and authority-form.
        "http://127.0.0.1/version",
        "http://docker/containers/create",
        "https://127.0.0.1:4243/containers/json",
        "127.0.0.1:2375",
        "*",
    ];
    for target in refused {
        let reply = minion.send(&format!("GET {target} HTTP/1.1"));
        assert_eq!(reply.status, 403, "{target}: {reply:?}");
        let message = reply.error_message();
        assert!(message.contains("not allowed"), "{target}: {message}");
    }
    let head = minion.send("HEAD /containers/create HTTP/1.1");
    assert_eq!(head.status, 403);
    assert!(
        fake.request_lines().is_empty(),
        "{:?}",
        fake.request_lines()
    );
    assert_eq!(fake.connections(), 0);
}

#[test]
fn every_other_method_is_405_and_never_forwarded() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    for method in [
        "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "CONNECT", "TRACE",
    ] {
        for target in [
            "/version",
            "/containers/json",
            "/containers/abc/top?ps_args=aux",
        ] {
            let reply = minion.send(&format!("{method} {target} HTTP/1.1"));
            assert_eq!(reply.status, 405, "{method} {target}: {reply:?}");
            assert_eq!(reply.header("Allow"), Some("GET, HEAD"));
            assert!(reply.error_message().contains(method));
        }
    }
    for line in [
        "CONNECT 127.0.0.1:2375 HTTP/1.1",
        "OPTIONS * HTTP/1.1",
        "TRACE / HTTP/1.1",
    ] {
        let reply = minion.send(line);
        assert_eq!(reply.status, 405, "{line}: {reply:?}");
    }
    let create = minion.send_with(
        "POST /containers/create HTTP/1.1",
        "Content-Type: application/json\r\nContent-Length: 17\r\n\r\n{\"Image\":\"evil\"}",
    );
    assert_eq!(create.status, 405);
    assert!(fake.request_lines().is_empty());
    assert_eq!(fake.connections(), 0);
}

fn expect_502(minion: &Minion, target: &str) -> String {
    let reply = minion.send(&format!("GET {target} HTTP/1.1"));
    assert_eq!(reply.status, 502, "{reply:?}");
    reply.error_message()
}

#[test]
fn a_daemon_that_is_down_gives_502() {
    let dir = fake_docker::temp_dir("ci-minion-down");
    // No socket file at all.
    let minion = Minion::start(&dir.join("docker.sock"));
    assert!(expect_502(&minion, "/version").contains("cannot connect"));
    drop(minion);
    // A socket file left behind by a daemon that died.
    let stale: PathBuf = dir.join("stale.sock");
    drop(std::os::unix::net::UnixListener::bind(&stale).unwrap());
    let minion = Minion::start(&stale);
    assert!(expect_502(&minion, "/containers/json").contains("cannot connect"));
    drop(minion);
    let _ = std::fs::remove_dir_all(&dir);
}

#[test]
fn a_misbehaving_daemon_gives_502() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    let cases = [
        (Mode::Hang, "timed out"),
        (Mode::CloseMidBody, "closed"),
        (Mode::InvalidChunk, "chunk"),
        (Mode::Garbage, "status line"),
        (Mode::CloseAtOnce, "closed"),
        (
            Mode::HugeBody {
                len: MAX_BODY + 1,
                chunked: true,
            },
            "larger than",
        ),
        (
            Mode::HugeBody {
                len: 8 * MAX_BODY,
                chunked: false,
            },
            "larger than",
        ),
    ];
    for (mode, expected) in cases {
        fake.set_mode(mode);
        let message = expect_502(&minion, "/containers/json");
        assert!(message.contains(expected), "{mode:?}: {message}");
    }
    // A body exactly at the cap is still served, and the daemon recovers.
    fake.set_mode(Mode::HugeBody {
        len: MAX_BODY,
        chunked: true,
    });
    let at_cap = minion.send("GET /containers/json HTTP/1.1");
    assert_eq!(at_cap.status, 200);
    assert_eq!(at_cap.body.len(), MAX_BODY);
    fake.set_mode(Mode::Normal);
    assert_eq!(minion.send("GET /_ping HTTP/1.1").body, b"OK");
    assert_daemon_saw_only_allowed(&fake);
}

#[test]
fn mixed_traffic_never_reaches_the_daemon_outside_the_allow_list() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    let requests = [
        "GET /containers/json HTTP/1.1",
        "POST /containers/abc/kill HTTP/1.1",
        "GET /containers/abc/top?ps_args=aux HTTP/1.1",
        "GET /containers/abc/top?ps_args=aux%20-o%20pid HTTP/1.1",
        "DELETE /containers/abc HTTP/1.1",
        "GET /images/sha256:abc/json HTTP/1.1",
        "GET /images/abc%2F..%2Fjson/json HTTP/1.1",
        "HEAD /version HTTP/1.1",
        "GET /containers/abc/exec HTTP/1.1",
        "PUT /containers/abc/archive?path=/ HTTP/1.1",
    ];
    let mut forwarded = 0;
    for line in requests {
        let reply = minion.send(line);
        assert!(matches!(reply.status, 200 | 403 | 405), "{line}: {reply:?}");
        if reply.status == 200 {
            forwarded += 1;
        }
    }
    assert_eq!(forwarded, 4);
    assert_eq!(fake.request_lines().len(), 4);
    assert_daemon_saw_only_allowed(&fake);
}

#[test]
fn a_hung_daemon_holds_at_most_all_workers_but_two() {
    let fake = FakeDocker::start();
    let minion = Minion::start_with_workers(fake.socket(), 4);
    fake.set_mode(Mode::Hang);
    // Six forwarded calls at once: two wait on the daemon (until the minion's 2 s timeout),
    // the others are told at once that it is busy.
    let hung_done = std::sync::atomic::AtomicUsize::new(0);
    let statuses = std::thread::scope(|s| {
        let calls: Vec<_> = (0..6)
            .map(|i| {
                let (minion, hung_done) = (&minion, &hung_done);
                s.spawn(move || {
                    let reply = minion.send(&format!("GET /containers/c{i}/json HTTP/1.1"));
                    if reply.status == 502 {
                        hung_done.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    reply
                })
            })
            .collect();
        // Until two of them wait on the daemon (the others are refused at once).
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while fake
            .request_lines()
            .iter()
            .filter(|l| l.starts_with("GET /containers/c"))
            .count()
            < 2
        {
            assert!(
                std::time::Instant::now() < deadline,
                "no call reached the daemon"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
        // While they hang: a refusal and a health check get the workers left, and one more
        // forwarded call is told at once that the daemon is busy.
        let refused = minion.send("GET /secrets HTTP/1.1");
        assert_eq!(refused.status, 403, "{refused:?}");
        let ping_busy = minion.send("GET /_ping HTTP/1.1");
        assert_eq!(
            hung_done.load(std::sync::atomic::Ordering::SeqCst),
            0,
            "answered only after the hung calls ended"
        );
        assert_eq!(ping_busy.status, 503, "{ping_busy:?}");
        assert_eq!(ping_busy.header("Retry-After"), Some("1"));
        calls
            .into_iter()
            .map(|c| c.join().unwrap().status)
            .collect::<Vec<u16>>()
    });
    let mut sorted = statuses.clone();
    sorted.sort_unstable();
    assert_eq!(sorted, [502, 502, 503, 503, 503, 503], "{statuses:?}");
    fake.set_mode(Mode::Normal);
    assert_eq!(minion.send("GET /_ping HTTP/1.1").body, b"OK");
}

#[test]
fn callers_of_the_same_request_share_the_daemons_answer_for_a_second() {
    let fake = FakeDocker::start();
    let minion = Minion::start(fake.socket());
    let asked = |fake: &FakeDocker| {
        fake.request_lines()
            .iter()
            .filter(|l| l.starts_with("GET /containers/json"))
            .count()
    };
    let first = minion.send("GET /containers/json HTTP/1.1");
    assert_eq!(first.status, 200);
    for _ in 0..9 {
        let again = minion.send("GET /containers/json HTTP/1.1");
        assert_eq!((again.status, &again.body), (200, &first.body));
    }
    // Ten answers; the daemon was asked once for each second they took (one, on any but a
    // very slow machine).
    let rounds = asked(&fake);
    assert!(
        (1..10).contains(&rounds),
        "the daemon was asked {rounds} times"
    );
    std::thread::sleep(Duration::from_millis(1100));
    assert_eq!(minion.send("GET /containers/json HTTP/1.1").status, 200);
    assert_eq!(asked(&fake), rounds + 1, "asked again after a second");
}
