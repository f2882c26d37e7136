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
/// How long a worker waits for a client to take more of an answer before leaving the rest
/// to the I/O thread.
const WORKER_WRITE_PATIENCE: Duration = Duration::from_millis(200);
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

/// A response body. Snapshot bodies are shared, so that answering a request costs a
/// reference count and the copy into the socket, never a serialization.
#[derive(Debug, Clone)]
pub enum Body {
    Empty,
    Owned(Vec<u8>),
    Shared(Arc<[u8]>),
    /// Pieces of shared buffers, written back to back (see [`Composed`]).
    Composed(Arc<Composed>),
}

impl Body {
    pub fn len(&self) -> usize {
        match self {
            Body::Empty => 0,
            Body::Owned(bytes) => bytes.len(),
            Body::Shared(bytes) => bytes.len(),
            Body::Composed(c) => c.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The whole body in one buffer (a copy for composed bodies; for tests and small bodies).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len());
        self.for_each_piece(|piece| out.extend_from_slice(piece));
        out
    }

    /// Calls `f` with each piece of the body in order.
    pub fn for_each_piece(&self, mut f: impl FnMut(&[u8])) {
        match self {
            Body::Empty => {}
            Body::Owned(bytes) => f(bytes),
            Body::Shared(bytes) => f(bytes),
            Body::Composed(c) => c.pieces.iter().for_each(|p| f(p.bytes())),
        }
    }

    /// The pieces from byte `offset` on, at most `max` of them, into `out`. `hint` remembers
    /// where the previous call ended, so that writing a body in order costs no search.
    fn pieces_from<'a>(
        &'a self,
        offset: usize,
        hint: &mut usize,
        max: usize,
        out: &mut Vec<&'a [u8]>,
    ) {
        match self {
            Body::Empty => {}
            Body::Owned(bytes) => out.extend(bytes.get(offset..).filter(|b| !b.is_empty())),
            Body::Shared(bytes) => out.extend(bytes.get(offset..).filter(|b| !b.is_empty())),
            Body::Composed(c) => c.pieces_from(offset, hint, max, out),
        }
    }
}

/// A body made of ranges of shared buffers: the snapshot's resources keep their observed
/// JSON text once, and every endpoint that shows them refers to that text instead of
/// holding a copy of its own.
#[derive(Debug, Default)]
pub struct Composed {
    pieces: Vec<Piece>,
    /// `starts[i]`: the body offset where piece `i` begins.
    starts: Vec<usize>,
    len: usize,
}

/// Part of a shared buffer.
#[derive(Debug, Clone)]
pub struct Piece {
    owner: Owner,
    start: usize,
    end: usize,
}

#[derive(Debug, Clone)]
enum Owner {
    Bytes(Arc<[u8]>),
    Text(Arc<str>),
}

impl Piece {
    /// `range` of `bytes`; clamped to the buffer.
    pub fn bytes_range(bytes: &Arc<[u8]>, range: std::ops::Range<usize>) -> Piece {
        let end = range.end.min(bytes.len());
        Piece {
            owner: Owner::Bytes(Arc::clone(bytes)),
            start: range.start.min(end),
            end,
        }
    }

    /// All of `text`.
    pub fn text(text: &Arc<str>) -> Piece {
        Piece {
            owner: Owner::Text(Arc::clone(text)),
            start: 0,
            end: text.len(),
        }
    }

    fn bytes(&self) -> &[u8] {
        let all = match &self.owner {
            Owner::Bytes(b) => &b[..],
            Owner::Text(t) => t.as_bytes(),
        };
        &all[self.start..self.end]
    }

    fn same_buffer_follows(&self, next: &Piece) -> bool {
        match (&self.owner, &next.owner) {
            (Owner::Bytes(a), Owner::Bytes(b)) => Arc::ptr_eq(a, b) && self.end == next.start,
            _ => false,
        }
    }
}

impl Composed {
    /// Appends a piece, merging it with the last one when it continues the same buffer.
    pub fn push(&mut self, piece: Piece) {
        if piece.start == piece.end {
            return;
        }
        self.len += piece.end - piece.start;
        if let Some(last) = self.pieces.last_mut() {
            if last.same_buffer_follows(&piece) {
                last.end = piece.end;
                return;
            }
        }
        self.starts.push(self.len - (piece.end - piece.start));
        self.pieces.push(piece);
    }

    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    fn pieces_from<'a>(
        &'a self,
        offset: usize,
        hint: &mut usize,
        max: usize,
        out: &mut Vec<&'a [u8]>,
    ) {
        if offset >= self.len {
            return;
        }
        // Sequential writing: the piece is the hinted one or a later one, most often.
        let mut i = *hint;
        if i >= self.pieces.len() || self.starts[i] > offset {
            i = self.starts.partition_point(|&s| s <= offset) - 1;
        }
        while i + 1 < self.pieces.len() && self.starts[i + 1] <= offset {
            i += 1;
        }
        *hint = i;
        let first = &self.pieces[i].bytes()[offset - self.starts[i]..];
        out.push(first);
        for piece in self.pieces[i + 1..].iter().take(max.saturating_sub(1)) {
            out.push(piece.bytes());
        }
    }
}

/// A response as handlers build it. `Content-Length` and `Connection` are the server's;
/// handlers set the rest. (A handler answering HEAD may set `Content-Length` to the length
/// the GET body would have; it is kept then.)
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
    /// Where in the body's pieces the last write ended.
    piece_hint: usize,
    keep_alive: bool,
    started: Instant,
    last_progress: Instant,
}

/// Pieces handed to one vectored write.
const IOVECS_PER_WRITE: usize = 64;

impl Outgoing {
    fn total(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Writes until done or the socket is full. `Ok(true)`: all written.
    fn write_some(&mut self) -> io::Result<bool> {
        let mut slices: Vec<&[u8]> = Vec::with_capacity(IOVECS_PER_WRITE);
        while self.written < self.total() {
            slices.clear();
            let body_offset = if self.written < self.head.len() {
                slices.push(&self.head[self.written..]);
                0
            } else {
                self.written - self.head.len()
            };
            let room = IOVECS_PER_WRITE - slices.len();
            self.body
                .pieces_from(body_offset, &mut self.piece_hint, room, &mut slices);
            let io_slices: Vec<io::IoSlice<'_>> =
                slices.iter().map(|s| io::IoSlice::new(s)).collect();
            match self.conn.stream.write_vectored(&io_slices) {
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
    let response = error_response(503, "too many connections").with_header("Retry-After", "1");
    let body = response.body.to_vec();
    let mut head = String::from("HTTP/1.1 503 Service Unavailable\r\n");
    for (name, value) in &response.headers {
        head.push_str(&format!("{name}: {value}\r\n"));
    }
    head.push_str(&format!(
        "Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    ));
    let _ = stream.write_all(head.as_bytes());
    let _ = stream.write_all(&body);
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
    outgoing(conn, &error_response(status, message), false, false, false)
}

/// The JSON error every endpoint of the project answers with (SPEC §2), for the errors the
/// server itself finds before any handler runs.
fn error_response(status: u16, message: &str) -> Response {
    let body = serde_json::json!({
        "success": false,
        "timestamp": crate::timefmt::rfc3339(std::time::SystemTime::now()),
        "error_message": message,
    })
    .to_string();
    Response::new(status, "application/json", Body::Owned(body.into_bytes()))
        .with_header("Access-Control-Allow-Origin", "*")
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
                error_response(500, "internal error")
            }
        };
        let head_only = request.method == Method::Head;
        let mut out = outgoing(conn, &response, head_only, keep_alive, http10);
        // Write at full speed while the client keeps reading (a blocking write wakes as soon
        // as the socket drains); a client that stalls for WORKER_WRITE_PATIENCE is handed
        // to the I/O thread, so a client that reads slowly never holds a worker for long.
        let blocking = out.conn.stream.set_nonblocking(false).is_ok()
            && out
                .conn
                .stream
                .set_write_timeout(Some(WORKER_WRITE_PATIENCE))
                .is_ok();
        let written = if blocking {
            out.write_some()
        } else {
            Err(io::Error::other("cannot switch the socket to blocking"))
        };
        if out.conn.stream.set_nonblocking(true).is_err() {
            continue;
        }
        match written {
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
        // HEAD: the length the GET body would have, when the handler knows it.
        let declared = response
            .header("Content-Length")
            .filter(|v| head_only && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()));
        match declared {
            Some(length) => head.push_str(&format!("Content-Length: {length}\r\n")),
            None => head.push_str(&format!("Content-Length: {}\r\n", response.body.len())),
        }
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
        piece_hint: 0,
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
    fn composed_bodies_read_back_from_any_offset() {
        let glue: Arc<[u8]> = b"0123456789".to_vec().into();
        let text: Arc<str> = Arc::from("abcdef");
        let mut c = Composed::default();
        c.push(Piece::bytes_range(&glue, 0..3));
        c.push(Piece::bytes_range(&glue, 3..5)); // merges with the previous piece
        c.push(Piece::text(&text));
        c.push(Piece::bytes_range(&glue, 7..7)); // empty: dropped
        c.push(Piece::bytes_range(&glue, 7..10));
        assert_eq!(c.pieces.len(), 3);
        let body = Body::Composed(Arc::new(c));
        let all = body.to_vec();
        assert_eq!(all, b"01234abcdef789");
        assert_eq!(body.len(), all.len());
        for offset in 0..=all.len() {
            for start_hint in [0, 1, 2, 7] {
                let mut hint = start_hint;
                let mut out = Vec::new();
                body.pieces_from(offset, &mut hint, 64, &mut out);
                assert_eq!(
                    out.concat(),
                    &all[offset..],
                    "offset {offset} hint {start_hint}"
                );
                let mut limited = Vec::new();
                body.pieces_from(offset, &mut hint, 1, &mut limited);
                assert!(limited.len() <= 1);
            }
        }
    }

    #[test]
    fn head_ends() {
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\n\r\nrest"), Some(18));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\n\nrest"), Some(16));
        assert_eq!(find_head_end(b"GET / HTTP/1.1\r\nHost: x\r\n"), None);
    }
}
