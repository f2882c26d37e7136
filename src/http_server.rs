//! The HTTP server layer: a small HTTP/1.1 server on std, the only module that knows how
//! requests arrive. Everything above it — the master's REST API, the minion's proxy, the
//! simulator's static API — is a handler, a plain function from [`Request`] to
//! [`Response`], so most HTTP behaviour is tested without sockets.
//!
//! Built to keep answering under slow and hostile clients (ARCHITECTURE.md has the
//! measurements that made us leave tiny_http):
//! - one *head reader* thread owns every connection that is not being answered, on
//!   non-blocking sockets: it collects request heads with a size cap (16 KiB, then 431) and
//!   a deadline (10 s, then 408), and closes keep-alive connections idle for 15 s, so idle
//!   or dribbling clients cost a socket, never a thread;
//! - a fixed pool of workers runs the handler and writes the answer with a write timeout and
//!   an overall deadline, so a client that never reads frees its worker;
//! - the accept loop survives accept errors (descriptor exhaustion), and connections over
//!   the limit get a 503 and are closed;
//! - a panic inside a handler becomes a 500 for that request; the worker lives on.

use std::io::{self, ErrorKind, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

/// Largest request head (request line and headers) we read.
pub const MAX_HEAD_BYTES: usize = 16 << 10;
const MAX_HEADERS: usize = 100;
/// A request head must be complete this long after its first byte.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// A keep-alive connection with no new request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Each write must make progress within this, and the whole answer finish within
/// `ANSWER_DEADLINE`.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);
/// Open connections beyond this get a 503 and are closed at once.
pub const MAX_CONNECTIONS: usize = 4096;

/// The request method. Only GET and HEAD are served anywhere in this project; the rest are
/// kept by name so that handlers can refuse them with 405 and say which method it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Method {
    Get,
    Head,
    Other(String),
}

impl Method {
    pub fn as_str(&self) -> &str {
        match self {
            Method::Get => "GET",
            Method::Head => "HEAD",
            Method::Other(name) => name,
        }
    }
}

/// A parsed request as a handler sees it. `target` is the request target exactly as the
/// client sent it (path and query, still percent-encoded, or an absolute-form URI).
#[derive(Debug, Clone)]
pub struct Request {
    pub method: Method,
    pub target: String,
    pub headers: Vec<(String, String)>,
    pub remote: Option<SocketAddr>,
}

impl Request {
    /// A request with no headers, for handlers called directly (tests, the benchmark).
    pub fn get(target: &str) -> Request {
        Request {
            method: Method::Get,
            target: target.to_string(),
            headers: Vec::new(),
            remote: None,
        }
    }

    /// Adds a header; for building requests by hand.
    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The path part of the target, without the query.
    pub fn path(&self) -> &str {
        self.target.split('?').next().unwrap_or("")
    }

    /// The raw query string (after `?`), if any.
    pub fn query(&self) -> Option<&str> {
        self.target.split_once('?').map(|(_, q)| q)
    }
}

/// A response body. Snapshot bodies are shared, so that answering a request costs one
/// reference count and the copy into the socket, never a serialization.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
}

impl Body {
    pub fn as_bytes(&self) -> &[u8] {
        match self {
            Body::Empty => &[],
            Body::Owned(bytes) => bytes,
            Body::Shared(bytes) => bytes,
        }
    }
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}

/// A response as handlers build it. `Content-Length`, `Connection` and `Date` are added by
/// the server; handlers set the rest.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Body,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Body) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of a header, matched case-insensitively.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// A handler shared by every worker thread.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

/// A listening server with its threads. Dropping it does not stop it; call
/// [`RunningServer::shutdown`] for that (tests do; the binary runs until killed).
pub struct RunningServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets the workers finish the answers in hand, and joins every thread.
    pub fn shutdown(self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the accept loop, which is blocked in accept().
        let wake = match self.local_addr {
            SocketAddr::V4(a) if a.ip().is_unspecified() => {
                SocketAddr::from(([127, 0, 0, 1], a.port()))
            }
            SocketAddr::V6(a) if a.ip().is_unspecified() => {
                SocketAddr::from((std::net::Ipv6Addr::LOCALHOST, a.port()))
            }
            other => other,
        };
        let _ = TcpStream::connect_timeout(&wake, Duration::from_secs(1));
        for thread in self.threads {
            let _ = thread.join();
        }
    }

    /// Blocks until the server stops (it stops only on shutdown).
    pub fn join(self) {
        for thread in self.threads {
            let _ = thread.join();
        }
    }
}

/// Binds `addr` and serves `handler` with `workers` threads named `name-N`.
pub fn serve(
    addr: SocketAddr,
    workers: usize,
    name: &str,
    handler: Handler,
) -> io::Result<RunningServer> {
    serve_listener(TcpListener::bind(addr)?, workers, name, handler)
}

/// Serves on a listener the caller has already bound (so it can learn the port first).
pub fn serve_listener(
    listener: TcpListener,
    workers: usize,
    name: &str,
    handler: Handler,
) -> io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let workers = workers.max(1);
    // Everything the I/O thread must look after: new connections, answers to finish.
    let (events_tx, events_rx) = crossbeam_channel::unbounded::<Event>();
    // Complete requests waiting for a worker; a full queue sheds load with 503.
    let (work_tx, work_rx) = crossbeam_channel::bounded::<(Conn, Request)>(workers * 64);

    let mut threads = Vec::with_capacity(workers + 2);
    {
        let (stop, open, events) = (Arc::clone(&stop), Arc::clone(&open), events_tx.clone());
        threads.push(
            std::thread::Builder::new()
                .name(format!("{name}-accept"))
                .spawn(move || accept_loop(listener, &stop, &open, &events))?,
        );
    }
    {
        let stop = Arc::clone(&stop);
        threads.push(
            std::thread::Builder::new()
                .name(format!("{name}-io"))
                .spawn(move || io_loop(&events_rx, &work_tx, &stop))?,
        );
    }
    for n in 0..workers {
        let (work_rx, events, handler) = (work_rx.clone(), events_tx.clone(), Arc::clone(&handler));
        threads.push(
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || worker(&work_rx, &events, &handler))?,
        );
    }
    Ok(RunningServer {
        local_addr,
        stop,
        threads,
    })
}

/// An open connection (always non-blocking) and what was read from it but not yet used.
/// Counted while it lives.
struct Conn {
    stream: TcpStream,
    remote: Option<SocketAddr>,
    buf: Vec<u8>,
    /// When the current head began (first byte), or when the connection became idle.
    since: Instant,
    /// No byte of the next request yet: idle rules apply rather than the head deadline.
    idle: bool,
    open: Arc<AtomicUsize>,
}

impl Drop for Conn {
    fn drop(&mut self) {
        self.open.fetch_sub(1, Ordering::SeqCst);
    }
}

/// An answer being written: the head, then the body, as fast as the client reads.
struct Outgoing {
    conn: Conn,
    head: Vec<u8>,
    body: Body,
    /// Bytes of head and body written so far.
    written: usize,
    keep_alive: bool,
    started: Instant,
    last_progress: Instant,
}

impl Outgoing {
    fn total(&self) -> usize {
        self.head.len() + self.body.as_bytes().len()
    }

    /// Writes until done or the socket is full. `Ok(true)`: all written.
    fn write_some(&mut self) -> io::Result<bool> {
        while self.written < self.total() {
            let piece = if self.written < self.head.len() {
                &self.head[self.written..]
            } else {
                let body = self.body.as_bytes();
                let from = self.written - self.head.len();
                &body[from..body.len().min(from + (1 << 20))]
            };
            match self.conn.stream.write(piece) {
                Ok(0) => return Err(ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.written += n;
                    self.last_progress = Instant::now();
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return Ok(false),
                Err(e) if e.kind() == ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(true)
    }

    fn stalled(&self) -> bool {
        self.last_progress.elapsed() > WRITE_TIMEOUT || self.started.elapsed() > ANSWER_DEADLINE
    }

    /// After the last byte: back to reading the next request, or closed.
    fn finish(self) -> Option<Conn> {
        let mut conn = self.conn;
        if self.keep_alive {
            conn.idle = conn.buf.is_empty();
            conn.since = Instant::now();
            Some(conn)
        } else {
            let _ = conn.stream.shutdown(Shutdown::Write);
            None
        }
    }
}

enum Event {
    Conn(Conn),
    Answer(Outgoing),
}

fn accept_loop(
    listener: TcpListener,
    stop: &AtomicBool,
    open: &Arc<AtomicUsize>,
    events: &Sender<Event>,
) {
    let mut last_error_log: Option<Instant> = None;
    loop {
        let accepted = listener.accept();
        if stop.load(Ordering::SeqCst) {
            return;
        }
        let (stream, remote) = match accepted {
            Ok(pair) => pair,
            Err(e) => {
                // Out of descriptors or threads: keep the loop alive and try again shortly.
                if last_error_log.is_none_or(|t| t.elapsed() > Duration::from_secs(10)) {
                    log::warn!("accept failed: {e}; retrying");
                    last_error_log = Some(Instant::now());
                }
                std::thread::sleep(Duration::from_millis(50));
                continue;
            }
        };
        if open.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
            open.fetch_sub(1, Ordering::SeqCst);
            refuse_overloaded(stream);
            continue;
        }
        let _ = stream.set_nodelay(true);
        let conn = Conn {
            remote: Some(remote),
            stream,
            buf: Vec::new(),
            since: Instant::now(),
            idle: true,
            open: Arc::clone(open),
        };
        if conn.stream.set_nonblocking(true).is_err() {
            continue;
        }
        if events.send(Event::Conn(conn)).is_err() {
            return;
        }
    }
}

/// A best-effort 503 that never blocks the accept loop for long.
fn refuse_overloaded(mut stream: TcpStream) {
    let _ = stream.set_write_timeout(Some(Duration::from_millis(100)));
    let body = br#"{"success": false, "error_message": "too many connections"}"#;
    let head = format!(
        "HTTP/1.1 503 Service Unavailable\r\nContent-Type: application/json\r\nContent-Length: {}\r\nRetry-After: 1\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(body);
    let _ = stream.shutdown(Shutdown::Both);
}

/// What became of a connection in one pass of the I/O thread.
enum Progress {
    Waiting,
    Ready(Request),
    Close,
    Reject(u16, &'static str),
}

/// The I/O thread: reads request heads from every connection that is not being answered,
/// and finishes answers that did not fit into the socket at once. All sockets are
/// non-blocking, so no client can hold this thread.
fn io_loop(events: &Receiver<Event>, work: &Sender<(Conn, Request)>, stop: &AtomicBool) {
    let mut reading: Vec<Conn> = Vec::new();
    let mut writing: Vec<Outgoing> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut nap = Duration::from_millis(1);
    while !stop.load(Ordering::SeqCst) {
        // Wait for an event at most `nap` while there is work to poll, so new connections
        // and answers are handled at once and pending sockets are polled again soon.
        let wait = if reading.is_empty() && writing.is_empty() {
            Duration::from_millis(200)
        } else {
            nap
        };
        let mut incoming: Vec<Event> = Vec::new();
        match events.recv_timeout(wait) {
            Ok(event) => incoming.push(event),
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        incoming.extend(events.try_iter());
        for event in incoming {
            match event {
                Event::Conn(conn) => reading.push(conn),
                Event::Answer(out) => writing.push(out),
            }
        }

        let mut progressed = false;
        let mut i = 0;
        while i < writing.len() {
            let before = writing[i].written;
            match writing[i].write_some() {
                Ok(true) => {
                    progressed = true;
                    if let Some(conn) = writing.swap_remove(i).finish() {
                        reading.push(conn);
                    }
                }
                Ok(false) if writing[i].stalled() => {
                    log::debug!(
                        "dropping a client that stopped reading: {:?}",
                        writing[i].conn.remote
                    );
                    writing.swap_remove(i);
                }
                Ok(false) => {
                    progressed |= writing[i].written > before;
                    i += 1;
                }
                Err(_) => {
                    writing.swap_remove(i);
                }
            }
        }

        let mut i = 0;
        while i < reading.len() {
            match poll_conn(&mut reading[i], &mut chunk, &mut progressed) {
                Progress::Waiting => i += 1,
                Progress::Close => {
                    reading.swap_remove(i);
                }
                Progress::Reject(status, reason) => {
                    writing.push(rejection(reading.swap_remove(i), status, reason));
                }
                Progress::Ready(request) => {
                    let conn = reading.swap_remove(i);
                    match work.try_send((conn, request)) {
                        Ok(()) => {}
                        Err(TrySendError::Full((conn, _))) => {
                            writing.push(rejection(conn, 503, "server busy, try again"));
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            }
        }
        nap = if progressed {
            Duration::from_millis(1)
        } else {
            (nap * 2).min(Duration::from_millis(10))
        };
    }
}

fn poll_conn(conn: &mut Conn, chunk: &mut [u8], progressed: &mut bool) -> Progress {
    // A pipelined request may already be complete in the buffer.
    if let Some(progress) = try_parse(conn) {
        return progress;
    }
    loop {
        match conn.stream.read(chunk) {
            Ok(0) => return Progress::Close,
            Ok(n) => {
                *progressed = true;
                if conn.idle {
                    conn.idle = false;
                    conn.since = Instant::now();
                }
                conn.buf.extend_from_slice(&chunk[..n]);
                if let Some(progress) = try_parse(conn) {
                    return progress;
                }
            }
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Progress::Close,
        }
    }
    let waited = conn.since.elapsed();
    if conn.idle && waited > IDLE_TIMEOUT {
        Progress::Close
    } else if !conn.idle && waited > HEAD_DEADLINE {
        Progress::Reject(408, "the request head did not arrive in time")
    } else {
        Progress::Waiting
    }
}

/// Parses a complete head out of the buffer, if there is one.
fn try_parse(conn: &mut Conn) -> Option<Progress> {
    let Some(end) = find_head_end(&conn.buf) else {
        if conn.buf.len() > MAX_HEAD_BYTES {
            return Some(Progress::Reject(431, "request head too large"));
        }
        return None;
    };
    if end > MAX_HEAD_BYTES {
        return Some(Progress::Reject(431, "request head too large"));
    }
    let head: Vec<u8> = conn.buf.drain(..end).collect();
    match parse_head(&head, conn.remote) {
        Ok(request) => Some(Progress::Ready(request)),
        Err(reason) => Some(Progress::Reject(400, reason)),
    }
}

/// The index just past the blank line that ends a head (`\r\n\r\n`, or bare `\n\n`).
fn find_head_end(buf: &[u8]) -> Option<usize> {
    let mut i = 0;
    while i < buf.len() {
        if buf[i] == b'\n' {
            if buf.get(i + 1) == Some(&b'\n') {
                return Some(i + 2);
            }
            if buf.get(i + 1) == Some(&b'\r') && buf.get(i + 2) == Some(&b'\n') {
                return Some(i + 3);
            }
        }
        i += 1;
    }
    None
}

fn parse_head(head: &[u8], remote: Option<SocketAddr>) -> Result<Request, &'static str> {
    let text = std::str::from_utf8(head).map_err(|_| "request head is not UTF-8")?;
    let mut lines = text.split('\n').map(|l| l.strip_suffix('\r').unwrap_or(l));
    // Tolerate empty lines before the request line, as RFC 9112 allows.
    let request_line = lines
        .by_ref()
        .find(|l| !l.is_empty())
        .ok_or("empty request")?;
    let mut parts = request_line.split(' ');
    let (Some(method), Some(target), Some(version), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        return Err("malformed request line");
    };
    if method.is_empty() || !method.bytes().all(is_token_byte) {
        return Err("malformed method");
    }
    if target.is_empty() || !target.bytes().all(|b| b.is_ascii_graphic()) {
        return Err("malformed request target");
    }
    if version != "HTTP/1.1" && version != "HTTP/1.0" {
        return Err("unsupported HTTP version");
    }
    let mut headers = Vec::new();
    for line in lines {
        if line.is_empty() {
            break;
        }
        if line.starts_with([' ', '\t']) {
            return Err("obsolete header folding");
        }
        let (name, value) = line.split_once(':').ok_or("malformed header")?;
        if name.is_empty() || !name.bytes().all(is_token_byte) {
            return Err("malformed header name");
        }
        if headers.len() == MAX_HEADERS {
            return Err("too many headers");
        }
        headers.push((
            name.to_string(),
            value.trim_matches([' ', '\t']).to_string(),
        ));
    }
    let method = match method {
        "GET" => Method::Get,
        "HEAD" => Method::Head,
        other => Method::Other(other.to_string()),
    };
    let mut request = Request {
        method,
        target: target.to_string(),
        headers,
        remote,
    };
    if version == "HTTP/1.0" {
        // Remembered for the keep-alive decision; handlers never see it.
        request.headers.push((HTTP10.to_string(), String::new()));
    }
    Ok(request)
}

/// A marker header for HTTP/1.0 requests (not a valid header name, so no client can send it).
const HTTP10: &str = " http/1.0";

fn is_token_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b)
}

/// An error answer that closes the connection.
fn rejection(conn: Conn, status: u16, message: &str) -> Outgoing {
    let body = serde_json::json!({"success": false, "error_message": message}).to_string();
    let response = Response::new(status, "application/json", Body::Owned(body.into_bytes()));
    outgoing(conn, &response, false, false, false)
}

fn worker(work: &Receiver<(Conn, Request)>, events: &Sender<Event>, handler: &Handler) {
    for (conn, mut request) in work.iter() {
        let http10 = request.headers.iter().any(|(n, _)| n == HTTP10);
        request.headers.retain(|(n, _)| n != HTTP10);
        let has_body = request
            .header("Content-Length")
            .is_some_and(|v| v.trim() != "0")
            || request.header("Transfer-Encoding").is_some();
        let connection = |token: &str| {
            request
                .header("Connection")
                .is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        };
        // We never read request bodies (only GET and HEAD are served), so a connection that
        // sent one cannot carry another request.
        let keep_alive = !has_body && !connection("close") && (!http10 || connection("keep-alive"));

        let response = match catch_unwind(AssertUnwindSafe(|| handler(&request))) {
            Ok(response) => response,
            Err(panic) => {
                let what = panic
                    .downcast_ref::<&str>()
                    .map(|s| s.to_string())
                    .or_else(|| panic.downcast_ref::<String>().cloned())
                    .unwrap_or_else(|| "unknown panic".to_string());
                log::error!(
                    "handler panicked on {} {}: {what}",
                    request.method.as_str(),
                    request.target
                );
                Response::new(
                    500,
                    "application/json",
                    Body::Owned(
                        br#"{"success": false, "error_message": "internal error"}"#.to_vec(),
                    ),
                )
            }
        };
        let head_only = request.method == Method::Head;
        let mut out = outgoing(conn, &response, head_only, keep_alive, http10);
        // Most answers fit into the socket at once; the rest are finished by the I/O
        // thread, so a client that reads slowly never holds a worker.
        match out.write_some() {
            Ok(true) => {
                if let Some(conn) = out.finish() {
                    let _ = events.send(Event::Conn(conn));
                }
            }
            Ok(false) => {
                let _ = events.send(Event::Answer(out));
            }
            Err(e) => log::debug!("could not answer {:?}: {e}", out.conn.remote),
        }
    }
}

/// Serializes the head of `response`; the body is shared, not copied.
fn outgoing(
    conn: Conn,
    response: &Response,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
) -> Outgoing {
    let no_body = head_only || response.status == 304 || response.status == 204;
    let mut head = format!(
        "{} {} {}\r\n",
        if http10 { "HTTP/1.0" } else { "HTTP/1.1" },
        response.status,
        reason_phrase(response.status)
    );
    for (name, value) in &response.headers {
        if name.eq_ignore_ascii_case("Content-Length") || name.eq_ignore_ascii_case("Connection") {
            continue;
        }
        // Header values come from our own handlers; CR or LF would split the head.
        if value.contains(['\r', '\n']) || name.contains(['\r', '\n', ':']) {
            continue;
        }
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    if response.status != 304 && response.status != 204 {
        head.push_str(&format!(
            "Content-Length: {}\r\n",
            response.body.as_bytes().len()
        ));
    }
    head.push_str(if keep_alive {
        "Connection: keep-alive\r\n\r\n"
    } else {
        "Connection: close\r\n\r\n"
    });
    let now = Instant::now();
    Outgoing {
        conn,
        head: head.into_bytes(),
        body: if no_body {
            Body::Empty
        } else {
            response.body.clone()
        },
        written: 0,
        keep_alive,
        started: now,
        last_progress: now,
    }
}

fn reason_phrase(status: u16) -> &'static str {
    match status {
        200 => "OK",
        204 => "No Content",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        410 => "Gone",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn heads_parse_strictly() {
        let r = parse_head(
            b"GET /a?b=c HTTP/1.1\r\nHost: x\r\nAccept-Encoding:  gzip \r\n\r\n",
            None,
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.target.as_str()), ("GET", "/a?b=c"));
        assert_eq!(r.header("accept-encoding"), Some("gzip"));
        let r = parse_head(b"\r\nBREW /pot HTTP/1.0\n\n", None).unwrap();
        assert_eq!(r.method, Method::Other("BREW".into()));
        for bad in [
            &b"GET /a HTTP/2.0\r\n\r\n"[..],
            b"GET  /a HTTP/1.1\r\n\r\n",
            b"GET /a\r\n\r\n",
            b"GET /a b HTTP/1.1\r\n\r\n",
            b"G(T /a HTTP/1.1\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost x\r\n\r\n",
            b"GET /a HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",
            b"GET /\xff HTTP/1.1\r\n\r\n",
        ] {
            assert!(
                parse_head(bad, None).is_err(),
                "{:?}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
