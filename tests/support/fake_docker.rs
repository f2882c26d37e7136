//! A fake Docker daemon on a Unix socket, for tests of what talks to the real one.
//!
//! It answers the read-only Engine API requests with small JSON documents (some framed by
//! `Content-Length`, some chunked, as the real daemon does), records every request line it
//! receives, and can be told to misbehave: hang, close in the middle of a body, send an
//! invalid chunk, send a body larger than any sane cap, or answer something that is not HTTP.
//! Everything it starts ends when it is dropped; its reads have timeouts, so nothing it runs
//! can outlive a test by more than a few seconds even if the drop never comes.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::{UnixListener, UnixStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

/// How the daemon answers the next requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Mode {
    /// Answers like a real daemon.
    Normal,
    /// Reads the request and never answers (until dropped, or ten seconds).
    Hang,
    /// Sends the headers and part of the promised body, then closes.
    CloseMidBody,
    /// Sends a chunked body whose second chunk size is not hexadecimal.
    InvalidChunk,
    /// Sends a body of this many bytes, chunked or with a length.
    HugeBody { len: usize, chunked: bool },
    /// Answers with bytes that are not HTTP, then closes.
    Garbage,
    /// Accepts the connection and closes it at once, without reading.
    CloseAtOnce,
}

struct State {
    mode: parking_lot::Mutex<Mode>,
    requests: parking_lot::Mutex<Vec<String>>,
    /// Clones of every accepted connection, to shut them down when the daemon stops.
    connections: parking_lot::Mutex<Vec<UnixStream>>,
    accepted: AtomicUsize,
    stop: AtomicBool,
}

pub(crate) struct FakeDocker {
    dir: PathBuf,
    socket: PathBuf,
    state: Arc<State>,
    thread: Option<JoinHandle<()>>,
}

static INSTANCE: AtomicUsize = AtomicUsize::new(0);

/// A fresh directory under the system's temporary directory, unique to this process and call.
pub(crate) fn temp_dir(prefix: &str) -> PathBuf {
    let n = INSTANCE.fetch_add(1, Ordering::SeqCst);
    let dir = std::env::temp_dir().join(format!("{prefix}-{}-{n}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("create a temporary directory");
    dir
}

impl FakeDocker {
    pub(crate) fn start() -> FakeDocker {
        let dir = temp_dir("ci-fake-docker");
        let socket = dir.join("docker.sock");
        let listener = UnixListener::bind(&socket).expect("bind the fake daemon's socket");
        let state = Arc::new(State {
            mode: parking_lot::Mutex::new(Mode::Normal),
            requests: parking_lot::Mutex::new(Vec::new()),
            connections: parking_lot::Mutex::new(Vec::new()),
            accepted: AtomicUsize::new(0),
            stop: AtomicBool::new(false),
        });
        let thread_state = Arc::clone(&state);
        let thread = std::thread::spawn(move || accept_loop(listener, thread_state));
        FakeDocker {
            dir,
            socket,
            state,
            thread: Some(thread),
        }
    }

    pub(crate) fn socket(&self) -> &Path {
        &self.socket
    }

    pub(crate) fn set_mode(&self, mode: Mode) {
        *self.state.mode.lock() = mode;
    }

    /// Every request line received so far (`GET /version HTTP/1.1`), in order.
    pub(crate) fn request_lines(&self) -> Vec<String> {
        self.state.requests.lock().clone()
    }

    /// How many connections were accepted.
    pub(crate) fn connections(&self) -> usize {
        self.state.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for FakeDocker {
    fn drop(&mut self) {
        self.state.stop.store(true, Ordering::SeqCst);
        for conn in self.state.connections.lock().iter() {
            let _ = conn.shutdown(std::net::Shutdown::Both);
        }
        // Wakes the accept loop, which then sees the stop flag.
        let _ = UnixStream::connect(&self.socket);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn accept_loop(listener: UnixListener, state: Arc<State>) {
    let mut handlers = Vec::new();
    for stream in listener.incoming() {
        if state.stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(stream) = stream else { continue };
        state.accepted.fetch_add(1, Ordering::SeqCst);
        if let Ok(clone) = stream.try_clone() {
            state.connections.lock().push(clone);
        }
        let conn_state = Arc::clone(&state);
        handlers.push(std::thread::spawn(move || serve(stream, &conn_state)));
    }
    for conn in state.connections.lock().iter() {
        let _ = conn.shutdown(std::net::Shutdown::Both);
    }
    for handler in handlers {
        let _ = handler.join();
    }
}

/// Serves requests on one connection until the client closes it or a mode ends it; then
/// shuts the connection down (the clone kept for [`Drop`] would otherwise keep it open).
fn serve(stream: UnixStream, state: &State) {
    if *state.mode.lock() != Mode::CloseAtOnce {
        serve_requests(&stream, state);
    }
    let _ = stream.shutdown(std::net::Shutdown::Both);
}

fn serve_requests(stream: &UnixStream, state: &State) {
    let Ok(stream) = stream.try_clone() else {
        return;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(5)));
    let mut conn = BufReader::new(stream);
    loop {
        let Some((line, _headers)) = read_request(&mut conn) else {
            return;
        };
        state.requests.lock().push(line.clone());
        let mode = *state.mode.lock();
        let out = conn.get_mut();
        let keep_going = match mode {
            Mode::Normal => answer(out, &line),
            Mode::Hang => {
                let until = Instant::now() + Duration::from_secs(10);
                while !state.stop.load(Ordering::SeqCst) && Instant::now() < until {
                    std::thread::sleep(Duration::from_millis(10));
                }
                false
            }
            Mode::CloseMidBody => {
                let _ = out.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n[{\"Id\": \"ab",
                );
                false
            }
            Mode::InvalidChunk => {
                let _ = out.write_all(
                    b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n\
                      2\r\n[]\r\nzz\r\nbad\r\n0\r\n\r\n",
                );
                false
            }
            Mode::HugeBody { len, chunked } => {
                send_huge(out, len, chunked);
                false
            }
            Mode::Garbage => {
                let _ = out.write_all(b"SSH-2.0-OpenSSH_9.6\r\nProtocol mismatch.\r\n");
                false
            }
            Mode::CloseAtOnce => false,
        };
        if !keep_going {
            return;
        }
    }
}

/// The request line and header lines of one request; `None` when the connection ends first.
fn read_request(conn: &mut BufReader<UnixStream>) -> Option<(String, Vec<String>)> {
    let mut line = String::new();
    if conn.read_line(&mut line).ok()? == 0 {
        return None;
    }
    let mut headers = Vec::new();
    loop {
        let mut header = String::new();
        if conn.read_line(&mut header).ok()? == 0 {
            return None;
        }
        if header == "\r\n" || header == "\n" {
            break;
        }
        headers.push(header.trim_end().to_string());
    }
    Some((line.trim_end().to_string(), headers))
}

/// The JSON a real daemon would send for `target`, with its status; `chunked` when the real
/// daemon streams it (lists and `top`).
fn document(target: &str) -> (u16, String, bool) {
    let not_found = |what: &str| (404, format!("{{\"message\":\"No such {what}\"}}"), false);
    let segments: Vec<&str> = target.split('?').next().unwrap_or("").split('/').collect();
    match segments.as_slice() {
        ["", "containers", "json"] => (
            200,
            r#"[{"Id":"8dfafdbc3a40","Names":["/web"],"Image":"nginx:1.27","State":"running"},{"Id":"9cd87474be90","Names":["/db"],"Image":"postgres:17","State":"running"}]"#.to_string(),
            true,
        ),
        ["", "containers", "missing", _] => not_found("container: missing"),
        ["", "containers", id, "json"] => (
            200,
            format!(r#"{{"Id":"{id}","Name":"/web","State":{{"Running":true}}}}"#),
            false,
        ),
        ["", "containers", _, "top"] => (
            200,
            r#"{"Titles":["USER","PID","%CPU","%MEM","VSZ","RSS","TTY","STAT","START","TIME","COMMAND"],"Processes":[["root","1","0.0","0.1","10000","2000","?","Ss","12:00","0:00","nginx: master process"]]}"#.to_string(),
            true,
        ),
        ["", "images", id, "json"] => (
            200,
            format!(r#"{{"Id":"{id}","RepoTags":["nginx:1.27"],"Size":187000000}}"#),
            false,
        ),
        ["", "version"] => (
            200,
            r#"{"Version":"27.3.1","ApiVersion":"1.47","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}"#.to_string(),
            false,
        ),
        _ => not_found("page"),
    }
}

/// Answers one request as the daemon would; false when the connection should end.
fn answer(out: &mut UnixStream, line: &str) -> bool {
    let mut parts = line.split(' ');
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    let head_only = method == "HEAD";
    if target == "/_ping" {
        let head = "HTTP/1.1 200 OK\r\nApi-Version: 1.47\r\nOstype: linux\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Length: 2\r\n\r\n";
        let body = if head_only { "" } else { "OK" };
        return out.write_all(format!("{head}{body}").as_bytes()).is_ok();
    }
    let (status, body, chunked) = document(target);
    let reason = if status == 200 { "OK" } else { "Not Found" };
    let mut response = format!(
        "HTTP/1.1 {status} {reason}\r\nApi-Version: 1.47\r\nContent-Type: application/json\r\nServer: Docker/27.3.1 (linux)\r\n"
    );
    if chunked {
        response.push_str("Transfer-Encoding: chunked\r\n\r\n");
        if !head_only {
            // Uneven chunks, one with an extension, and a trailer: all legal HTTP/1.1.
            let (first, rest) = body.split_at(body.len() / 3);
            response.push_str(&format!("{:x};note=first\r\n{first}\r\n", first.len()));
            response.push_str(&format!("{:X}\r\n{rest}\r\n", rest.len()));
            response.push_str("0\r\nX-Trailer: done\r\n\r\n");
        }
    } else {
        response.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        if !head_only {
            response.push_str(&body);
        }
    }
    out.write_all(response.as_bytes()).is_ok()
}

fn send_huge(out: &mut UnixStream, len: usize, chunked: bool) {
    let head = if chunked {
        "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            .to_string()
    } else {
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len}\r\n\r\n"
        )
    };
    if out.write_all(head.as_bytes()).is_err() {
        return;
    }
    let block = vec![b' '; 64 * 1024];
    let mut left = len;
    while left > 0 {
        let n = left.min(block.len());
        let sent = if chunked {
            out.write_all(format!("{n:x}\r\n").as_bytes())
                .and_then(|_| out.write_all(&block[..n]))
                .and_then(|_| out.write_all(b"\r\n"))
        } else {
            out.write_all(&block[..n])
        };
        // The client hanging up once it has seen enough is the expected end.
        if sent.is_err() {
            return;
        }
        left -= n;
    }
    if chunked {
        let _ = out.write_all(b"0\r\n\r\n");
    }
}
