//! Our own small HTTP/1.1 client, over a Unix socket (the local Docker daemon) or TCP
//! (a node's minion).
//!
//! ureq has no Unix-socket transport, and the two servers we talk to this way answer small
//! JSON documents to bodiless GET and HEAD requests, so this client does only that: it writes
//! a request head, reads a status line and headers under a size cap, and frames the body by
//! `Content-Length`, `Transfer-Encoding: chunked` or the end of the connection. Every read and
//! write is bounded by `io_timeout`, the whole request by `request_timeout`, and a body larger
//! than `max_body` is an error before it is ever allocated in full.
//!
//! A [`Client`] keeps a few idle keep-alive connections and reuses them. A server may close an
//! idle connection at any moment, so a reused connection that turns out closed before any byte
//! of the response arrived is retried once on a fresh connection; our requests have no body
//! and only read, so repeating one is harmless.

use cluster_insight_wire::body::{self, BodyError};
use cluster_insight_wire::head::{self, HeadError, ReadError};
use parking_lot::Mutex;
use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most bytes a response's status line and headers (or a chunked body's trailers) may take.
pub(crate) const MAX_HEADER_BYTES: usize = 64 * 1024;

/// The most idle connections a [`Client`] keeps for reuse.
pub(crate) const MAX_IDLE_CONNECTIONS: usize = 4;

/// An idle connection older than this is closed rather than reused: servers drop idle
/// connections on timers of their own, and a fresh connection is cheap on the networks we use.
const IDLE_LIFETIME: Duration = Duration::from_secs(30);

/// The smallest socket timeout we set: zero would mean "no timeout" to the kernel.
const MIN_TIMEOUT: Duration = Duration::from_millis(1);

/// Where the server is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Endpoint {
    Unix(PathBuf),
    Tcp(SocketAddr),
}

impl std::fmt::Display for Endpoint {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Endpoint::Unix(path) => write!(f, "unix:{}", path.display()),
            Endpoint::Tcp(addr) => write!(f, "http://{addr}"),
        }
    }
}

/// Limits applied to every request.
#[derive(Debug, Clone)]
pub struct ClientConfig {
    /// Time allowed to open a TCP connection (a Unix socket connects at once or fails).
    pub connect_timeout: Duration,
    /// Applies to every read and write on the socket.
    pub io_timeout: Duration,
    /// Total time allowed for one request, headers and body.
    pub request_timeout: Duration,
    pub max_body: usize,
    /// The bearer token sent with every request, asked for each time (it may be re-read).
    pub bearer: Option<Bearer>,
}

/// Where a client's bearer token comes from.
#[derive(Clone)]
pub struct Bearer(pub Arc<dyn Fn() -> Option<String> + Send + Sync>);

impl std::fmt::Debug for Bearer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Bearer(..)")
    }
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body: 64 << 20,
            bearer: None,
        }
    }
}

/// Connects to a Unix socket within `timeout`. `connect` on a Unix socket blocks, without a
/// timeout of its own, while the listener's backlog is full (a runtime that has stopped
/// accepting): here it runs on a thread of its own, which is left to finish on its own when
/// the time is up.
pub(crate) fn connect_unix(path: &Path, timeout: Duration) -> io::Result<UnixStream> {
    let (tx, rx) = crossbeam_channel::bounded(1);
    let target = path.to_path_buf();
    std::thread::Builder::new()
        .name("unix-connect".into())
        .spawn(move || {
            let _ = tx.send(UnixStream::connect(&target));
        })?;
    match rx.recv_timeout(timeout) {
        Ok(result) => result,
        Err(_) => Err(io::Error::new(
            io::ErrorKind::TimedOut,
            format!("no connection to {} within {timeout:?}", path.display()),
        )),
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        head::header(&self.headers, name)
    }
}

/// Why a request failed, by what the caller can do about it.
#[derive(Debug)]
pub(crate) enum Error {
    /// No connection could be made: refused, no such socket, unreachable, or not within
    /// `connect_timeout`.
    Connect(std::io::Error),
    /// A read or write took longer than `io_timeout`, or the request longer than
    /// `request_timeout`.
    Timeout,
    /// The connection failed after it was made (reset, closed early).
    Io(std::io::Error),
    /// The server's answer is not HTTP/1.x as we understand it, or the request we were asked
    /// to send cannot be written as HTTP (a method or target with invalid characters).
    Protocol(String),
    BodyTooLarge {
        limit: usize,
    },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(_) => write!(f, "cannot connect"),
            Error::Timeout => write!(f, "timed out"),
            Error::Io(_) => write!(f, "I/O error"),
            Error::Protocol(what) => write!(f, "HTTP protocol error: {what}"),
            Error::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            Error::Connect(e) | Error::Io(e) => Some(e),
            Error::Timeout | Error::Protocol(_) | Error::BodyTooLarge { .. } => None,
        }
    }
}

fn protocol(what: impl Into<String>) -> Error {
    Error::Protocol(what.into())
}

/// Maps a socket error: the kernel reports an expired `SO_RCVTIMEO`/`SO_SNDTIMEO` as
/// `EAGAIN` (WouldBlock), and our own deadline check reports TimedOut.
fn io_error(e: io::Error) -> Error {
    match e.kind() {
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut => Error::Timeout,
        _ => Error::Io(e),
    }
}

fn closed(what: &str) -> Error {
    Error::Io(io::Error::new(
        io::ErrorKind::UnexpectedEof,
        format!("connection closed {what}"),
    ))
}

/// A client for one endpoint. Safe to share between threads; keeps idle connections for reuse.
pub struct Client {
    endpoint: Endpoint,
    config: ClientConfig,
    /// The value of the `Host` header: the address for TCP, a fixed name for a Unix socket
    /// (HTTP/1.1 requires the header; the Docker daemon does not look at it).
    host: String,
    /// Idle connections, most recently used last. Each one has an empty read buffer: a
    /// connection with unread bytes after a response is never put here.
    idle: Mutex<Vec<Idle>>,
}

struct Idle {
    conn: Conn,
    since: Instant,
}

impl Client {
    pub fn new(endpoint: Endpoint, config: ClientConfig) -> Client {
        let host = match &endpoint {
            Endpoint::Unix(_) => "localhost".to_string(),
            Endpoint::Tcp(addr) => addr.to_string(),
        };
        Client {
            endpoint,
            config,
            host,
            idle: Mutex::new(Vec::new()),
        }
    }

    pub(crate) fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// GET `path_and_query` (already encoded).
    pub(crate) fn get(&self, path_and_query: &str) -> Result<Response, Error> {
        self.request("GET", path_and_query)
    }

    /// Sends a request without a body. For HEAD, the response has no body.
    ///
    /// `path_and_query` must be an origin-form target (`/...`) of visible ASCII characters,
    /// already percent-encoded; anything else is refused with [`Error::Protocol`] before a
    /// connection is made.
    pub(crate) fn request(&self, method: &str, path_and_query: &str) -> Result<Response, Error> {
        self.request_with(method, path_and_query, &[])
    }

    /// [`Client::request`] with more headers (`If-None-Match`), whose names and values the
    /// caller vouches for.
    pub(crate) fn request_with(
        &self,
        method: &str,
        path_and_query: &str,
        headers: &[(&str, &str)],
    ) -> Result<Response, Error> {
        let mut head = Vec::with_capacity(160 + path_and_query.len());
        let authorization = self
            .config
            .bearer
            .as_ref()
            .and_then(|bearer| (bearer.0)())
            .map(|token| format!("Bearer {token}"));
        head::write_request_head(
            &mut head,
            method,
            path_and_query,
            [
                ("Host", self.host.as_str()),
                ("User-Agent", USER_AGENT),
                ("Accept", "*/*"),
                ("Connection", "keep-alive"),
            ]
            .into_iter()
            .chain(authorization.as_deref().map(|a| ("Authorization", a)))
            .chain(headers.iter().copied()),
        )
        .map_err(|e| {
            protocol(format!(
                "{e}: {method:?} {:?}",
                path_and_query.chars().take(200).collect::<String>()
            ))
        })?;
        let deadline = Instant::now() + self.config.request_timeout;
        let is_head = method == "HEAD";
        if let Some(conn) = self.take_idle() {
            match self.exchange(conn, &head, is_head, deadline) {
                Ok(response) => return Ok(response),
                Err(Attempt::Stale(_)) => {
                    log::debug!("{}: idle connection was closed, retrying", self.endpoint)
                }
                Err(Attempt::Failed(e)) => return Err(e),
            }
        }
        let conn = self.connect(deadline)?;
        match self.exchange(conn, &head, is_head, deadline) {
            Ok(response) => Ok(response),
            Err(Attempt::Stale(e) | Attempt::Failed(e)) => Err(e),
        }
    }

    fn connect(&self, deadline: Instant) -> Result<Conn, Error> {
        let socket = match &self.endpoint {
            Endpoint::Unix(path) => {
                let left = deadline.saturating_duration_since(Instant::now());
                let timeout = self.config.connect_timeout.min(left).max(MIN_TIMEOUT);
                Socket::Unix(connect_unix(path, timeout).map_err(Error::Connect)?)
            }
            Endpoint::Tcp(addr) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    return Err(Error::Timeout);
                }
                let timeout = self.config.connect_timeout.min(left).max(MIN_TIMEOUT);
                let stream = TcpStream::connect_timeout(addr, timeout).map_err(Error::Connect)?;
                // One write per request: Nagle would only delay it.
                stream.set_nodelay(true).map_err(Error::Connect)?;
                Socket::Tcp(stream)
            }
        };
        Ok(BufReader::with_capacity(
            16 * 1024,
            Wire {
                socket,
                io_timeout: self.config.io_timeout,
                deadline,
                read_timeout: None,
                write_timeout: None,
                received: 0,
                reused: false,
            },
        ))
    }

    /// Sends one request on `conn` and reads the response; puts the connection back in the
    /// pool when the response leaves it reusable.
    fn exchange(
        &self,
        mut conn: Conn,
        head: &[u8],
        is_head: bool,
        deadline: Instant,
    ) -> Result<Response, Attempt> {
        let wire = conn.get_mut();
        wire.deadline = deadline;
        wire.received = 0;
        let reused = wire.reused;
        let classify = |e: Error, received: u64| {
            if reused && received == 0 && closed_by_peer(&e) {
                Attempt::Stale(e)
            } else {
                Attempt::Failed(e)
            }
        };
        if let Err(e) = wire.write_all(head) {
            // A server that closes at once can make the write fail before the read would
            // see the end: report both the same way.
            let e = match e.kind() {
                io::ErrorKind::BrokenPipe | io::ErrorKind::ConnectionReset => {
                    closed(&format!("before the request was sent ({e})"))
                }
                _ => io_error(e),
            };
            return Err(classify(e, 0));
        }
        match read_response(&mut conn, is_head, self.config.max_body) {
            Ok((response, reusable)) => {
                if reusable && conn.buffer().is_empty() {
                    conn.get_mut().reused = true;
                    self.put_idle(conn);
                }
                Ok(response)
            }
            Err(e) => {
                let received = conn.get_ref().received;
                Err(classify(e, received))
            }
        }
    }

    /// The most recently used idle connection that still looks open.
    fn take_idle(&self) -> Option<Conn> {
        loop {
            let Idle { mut conn, since } = self.idle.lock().pop()?;
            if since.elapsed() > IDLE_LIFETIME {
                continue;
            }
            // A peer that closed the connection has made it readable (EOF); one that sent
            // bytes we did not ask for has broken the framing. Either way it cannot be used.
            if conn.get_mut().socket.is_idle_and_open() {
                return Some(conn);
            }
        }
    }

    fn put_idle(&self, conn: Conn) {
        let mut idle = self.idle.lock();
        idle.retain(|i| i.since.elapsed() <= IDLE_LIFETIME);
        if idle.len() < MAX_IDLE_CONNECTIONS {
            idle.push(Idle {
                conn,
                since: Instant::now(),
            });
        }
    }
}

/// The outcome of a failed exchange: `Stale` means a reused connection was found closed
/// before any response byte, and the request may be repeated on a fresh one.
enum Attempt {
    Stale(Error),
    Failed(Error),
}

fn closed_by_peer(e: &Error) -> bool {
    match e {
        Error::Io(e) => matches!(
            e.kind(),
            io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe
        ),
        _ => false,
    }
}

const USER_AGENT: &str = concat!("cluster-insight/", env!("CARGO_PKG_VERSION"));

type Conn = BufReader<Wire>;

enum Socket {
    Unix(UnixStream),
    Tcp(TcpStream),
}

impl Socket {
    fn set_read_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.set_read_timeout(t),
            Socket::Tcp(s) => s.set_read_timeout(t),
        }
    }

    fn set_write_timeout(&self, t: Option<Duration>) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.set_write_timeout(t),
            Socket::Tcp(s) => s.set_write_timeout(t),
        }
    }

    fn set_nonblocking(&self, on: bool) -> io::Result<()> {
        match self {
            Socket::Unix(s) => s.set_nonblocking(on),
            Socket::Tcp(s) => s.set_nonblocking(on),
        }
    }

    /// True when a non-blocking read finds nothing to read: the peer has neither closed the
    /// connection nor sent anything.
    fn is_idle_and_open(&mut self) -> bool {
        if self.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let open = loop {
            match self.read(&mut byte) {
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => break e.kind() == io::ErrorKind::WouldBlock,
                Ok(_) => break false,
            }
        };
        open && self.set_nonblocking(false).is_ok()
    }
}

impl Read for Socket {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.read(buf),
            Socket::Tcp(s) => s.read(buf),
        }
    }
}

impl Write for Socket {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Socket::Unix(s) => s.write(buf),
            Socket::Tcp(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// A socket whose every read and write is bounded by the smaller of `io_timeout` and the time
/// left before the request's deadline. It counts the bytes received, so that a failure can
/// tell "closed before answering" from "closed in the middle of an answer".
struct Wire {
    socket: Socket,
    io_timeout: Duration,
    deadline: Instant,
    /// The timeouts currently set on the socket, to spare a system call per read.
    read_timeout: Option<Duration>,
    write_timeout: Option<Duration>,
    received: u64,
    /// The connection has carried a complete exchange before.
    reused: bool,
}

impl Wire {
    fn budget(&self) -> io::Result<Duration> {
        let left = self.deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "request deadline passed",
            ));
        }
        Ok(left.min(self.io_timeout).max(MIN_TIMEOUT))
    }
}

impl Read for Wire {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let timeout = Some(self.budget()?);
        if self.read_timeout != timeout {
            self.socket.set_read_timeout(timeout)?;
            self.read_timeout = timeout;
        }
        let n = self.socket.read(buf)?;
        self.received += n as u64;
        Ok(n)
    }
}

impl Write for Wire {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let timeout = Some(self.budget()?);
        if self.write_timeout != timeout {
            self.socket.set_write_timeout(timeout)?;
            self.write_timeout = timeout;
        }
        self.socket.write(buf)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// Reads one response (skipping interim 1xx responses) and tells whether the connection can
/// carry another request afterwards.
fn read_response<R: BufRead>(
    r: &mut R,
    is_head: bool,
    max_body: usize,
) -> Result<(Response, bool), Error> {
    // One budget for the final head and every interim (1xx) head before it, so that a
    // server cannot keep us reading interim answers for ever.
    let mut budget = MAX_HEADER_BYTES;
    let head = loop {
        let (head, len) = match head::read_response(r, budget) {
            Ok(Some(read)) => read,
            Ok(None) => return Err(closed("before the response")),
            Err(ReadError::Closed) => return Err(closed("inside the response head")),
            Err(ReadError::Io(e)) => return Err(io_error(e)),
            Err(ReadError::Head {
                error: HeadError::TooLarge,
                ..
            }) => return Err(protocol("response head too long")),
            Err(ReadError::Head { error, start }) => {
                return Err(protocol(format!("invalid response: {error} in {start:?}")))
            }
        };
        budget -= len;
        match head.status {
            101 => return Err(protocol("unexpected 101 Switching Protocols")),
            100..=199 => continue,
            _ => break head,
        }
    };
    let (framing, reusable) = body::response_framing(&head, is_head).map_err(body_error)?;
    let body = body::read_body(r, framing, max_body).map_err(body_error)?;
    Ok((
        Response {
            status: head.status,
            headers: head.headers,
            body,
        },
        reusable,
    ))
}

fn body_error(e: BodyError) -> Error {
    match e {
        BodyError::Io(e) => io_error(e),
        BodyError::Closed => closed("inside the body"),
        BodyError::Malformed(what) => Error::Protocol(what),
        BodyError::TooLarge { limit } => Error::BodyTooLarge { limit },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;
    use std::os::unix::net::UnixListener;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;

    fn parse(raw: &[u8], is_head: bool, max_body: usize) -> Result<(Response, bool), Error> {
        let mut reader: &[u8] = raw;
        read_response(&mut reader, is_head, max_body)
    }

    fn ok(raw: &[u8]) -> (Response, bool) {
        match parse(raw, false, 1 << 20) {
            Ok(r) => r,
            Err(e) => panic!("{e} for {:?}", String::from_utf8_lossy(raw)),
        }
    }

    fn protocol_error(raw: &[u8]) -> String {
        match parse(raw, false, 1 << 20) {
            Err(Error::Protocol(what)) => what,
            other => panic!(
                "expected a protocol error for {:?}, got {other:?}",
                String::from_utf8_lossy(raw)
            ),
        }
    }

    #[test]
    fn answers_and_their_failures_are_classified() {
        let (r, keep) = ok(b"HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\n\
            Content-Type: application/json\r\nX-Pad:  a b \t\r\nContent-Length: 2\r\n\r\n{}");
        assert_eq!((r.status, r.body.as_slice(), keep), (200, &b"{}"[..], true));
        assert_eq!(r.header("x-pad"), Some("a b"));
        // The grammar's refusals (the wire crate tests them one by one) are protocol errors.
        for bad in [
            &b"SSH-2.0-OpenSSH_9.6\r\n"[..],
            b"HTTP/1.1 200 OK\r\nName : value\r\n\r\n",
            b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nContent-Length: 3\r\n\r\nabc",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
            b"HTTP/1.1 101 Switching Protocols\r\n\r\n",
        ] {
            protocol_error(bad);
        }
        let mut raw = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
        raw.resize(MAX_HEADER_BYTES * 2, b'a');
        assert!(protocol_error(&raw).contains("too long"));
        // Interim answers share the budget of the final one.
        let raw = b"HTTP/1.1 100 Continue\r\n\r\n".repeat(MAX_HEADER_BYTES / 20);
        assert!(protocol_error(&raw).contains("too long"));
        assert!(protocol_error(b"SSH-2.0-OpenSSH_9.6\r\n").contains("\"SSH-2.0-OpenSSH_9.6\""));
        assert!(matches!(
            parse(
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n12345",
                false,
                4
            ),
            Err(Error::BodyTooLarge { limit: 4 })
        ));
        // Cut short, before or inside the answer: an I/O error, never half a body.
        for short in [
            &b""[..],
            b"HTTP/1.1 200 OK\r\n",
            b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab",
        ] {
            match parse(short, false, 1 << 20) {
                Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
                other => panic!("{other:?}"),
            }
        }
    }

    #[test]
    fn invalid_requests_are_refused_before_connecting() {
        // Nothing listens on this path: reaching connect() would be a Connect error.
        let client = Client::new(
            Endpoint::Unix("/nonexistent/cluster-insight.sock".into()),
            ClientConfig::default(),
        );
        // The wire crate tests the grammar; here, that a refusal is a protocol error.
        for (method, target) in [("GET", "/a\r\nX: y"), ("G T", "/")] {
            assert!(
                matches!(client.request(method, target), Err(Error::Protocol(_))),
                "{method:?} {target:?}"
            );
        }
        assert!(matches!(client.get("/version"), Err(Error::Connect(_))));
    }

    // --- Over real sockets -------------------------------------------------------------

    /// Reads one request head from a server-side stream; `None` at end of stream.
    fn read_request<R: BufRead>(r: &mut R) -> Option<String> {
        let mut head = String::new();
        loop {
            let mut line = String::new();
            if r.read_line(&mut line).ok()? == 0 {
                return None;
            }
            head.push_str(&line);
            if line == "\r\n" {
                return Some(head);
            }
        }
    }

    /// A TCP server on loopback that runs `serve` for each of the first `connections`
    /// connections it accepts, with the connection number, and then stops by itself.
    struct TestServer {
        addr: SocketAddr,
        requests: Arc<Mutex<Vec<String>>>,
        accepted: Arc<AtomicUsize>,
        thread: Option<std::thread::JoinHandle<()>>,
    }

    type Serve = dyn Fn(usize, &mut BufReader<TcpStream>, &Mutex<Vec<String>>) + Send + Sync;

    impl TestServer {
        fn start(connections: usize, serve: Arc<Serve>) -> TestServer {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let addr = listener.local_addr().unwrap();
            let requests = Arc::new(Mutex::new(Vec::new()));
            let accepted = Arc::new(AtomicUsize::new(0));
            let (req, acc) = (Arc::clone(&requests), Arc::clone(&accepted));
            let thread = std::thread::spawn(move || {
                let mut handlers = Vec::new();
                for n in 0..connections {
                    let Ok((stream, _)) = listener.accept() else {
                        return;
                    };
                    acc.fetch_add(1, Ordering::SeqCst);
                    stream
                        .set_read_timeout(Some(Duration::from_secs(10)))
                        .unwrap();
                    let (serve, req) = (Arc::clone(&serve), Arc::clone(&req));
                    handlers.push(std::thread::spawn(move || {
                        serve(n, &mut BufReader::new(stream), &req)
                    }));
                }
                for h in handlers {
                    let _ = h.join();
                }
            });
            TestServer {
                addr,
                requests,
                accepted,
                thread: Some(thread),
            }
        }

        fn client(&self, config: ClientConfig) -> Client {
            Client::new(Endpoint::Tcp(self.addr), config)
        }

        fn finish(mut self) -> (Vec<String>, usize) {
            // Unblock an accept that will never come, then wait for the handlers.
            let _ = TcpStream::connect(self.addr);
            if let Some(t) = self.thread.take() {
                let _ = t.join();
            }
            let requests = self.requests.lock().clone();
            (requests, self.accepted.load(Ordering::SeqCst))
        }
    }

    /// Answers every request on the connection with `response`, until the client closes.
    fn answer_all(response: &'static [u8]) -> Arc<Serve> {
        Arc::new(move |_, conn, requests| {
            while let Some(head) = read_request(conn) {
                requests.lock().push(head);
                if conn.get_mut().write_all(response).is_err() {
                    return;
                }
            }
        })
    }

    fn quick() -> ClientConfig {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_millis(300),
            request_timeout: Duration::from_secs(5),
            max_body: 1 << 20,
            bearer: None,
        }
    }

    #[test]
    fn sends_a_well_formed_request_and_reuses_the_connection() {
        let server = TestServer::start(
            2,
            answer_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"),
        );
        let client = server.client(quick());
        let host = format!("Host: {}", server.addr);
        for _ in 0..3 {
            let r = client.get("/containers/json?all=1").unwrap();
            assert_eq!((r.status, r.body.as_slice()), (200, &b"ok"[..]));
        }
        let r = client.request("HEAD", "/_ping").unwrap();
        assert!(r.body.is_empty());
        assert_eq!(client.get("/version").unwrap().body, b"ok");
        drop(client);
        let (requests, accepted) = server.finish();
        // One connection carried all five requests (the second accept is ours, in finish).
        assert_eq!(accepted, 2, "{requests:?}");
        assert_eq!(requests.len(), 5);
        let first: Vec<&str> = requests[0].split("\r\n").collect();
        assert_eq!(first[0], "GET /containers/json?all=1 HTTP/1.1");
        assert!(first.contains(&host.as_str()), "{first:?}");
        assert!(first.contains(&"Connection: keep-alive"));
        assert!(requests[3].starts_with("HEAD /_ping HTTP/1.1\r\n"));
    }

    #[test]
    fn chunked_and_close_delimited_bodies_over_tcp() {
        let server = TestServer::start(
            2,
            Arc::new(|n, conn, requests| {
                let Some(head) = read_request(conn) else {
                    return;
                };
                requests.lock().push(head);
                let out = conn.get_mut();
                if n == 0 {
                    // Sent in pieces, so that the client's reads straddle chunk boundaries.
                    for piece in [
                        &b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5;x=1\r\nhel"[..],
                        b"lo\r\n1\r",
                        b"\n!\r\n0\r\nT: v\r\n\r\n",
                    ] {
                        out.write_all(piece).unwrap();
                        out.flush().unwrap();
                        std::thread::sleep(Duration::from_millis(5));
                    }
                } else {
                    out.write_all(b"HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nto the end")
                        .unwrap();
                }
            }),
        );
        let client = server.client(quick());
        assert_eq!(client.get("/a").unwrap().body, b"hello!");
        // The first server thread ends after one answer, so the connection is closed by now
        // or soon: either the idle check or the retry leads to the second connection.
        assert_eq!(client.get("/b").unwrap().body, b"to the end");
        server.finish();
    }

    #[test]
    fn a_reused_connection_closed_before_the_answer_is_retried_once() {
        let server = TestServer::start(
            3,
            Arc::new(|n, conn, requests| {
                let Some(head) = read_request(conn) else {
                    return;
                };
                requests.lock().push(head);
                let ok = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";
                conn.get_mut().write_all(ok).unwrap();
                if n == 0 {
                    // Takes the next request and closes without a word, as a server does
                    // when its idle timer fires just as the request arrives.
                    if let Some(head) = read_request(conn) {
                        requests.lock().push(head);
                    }
                }
            }),
        );
        let client = server.client(quick());
        assert_eq!(client.get("/one").unwrap().body, b"ok");
        assert_eq!(client.get("/two").unwrap().body, b"ok");
        drop(client);
        let (requests, _) = server.finish();
        let lines: Vec<&str> = requests.iter().map(|r| r.lines().next().unwrap()).collect();
        assert_eq!(
            lines,
            [
                "GET /one HTTP/1.1",
                "GET /two HTTP/1.1",
                "GET /two HTTP/1.1"
            ]
        );
    }

    #[test]
    fn a_fresh_connection_closed_before_the_answer_is_not_retried() {
        let server = TestServer::start(
            2,
            Arc::new(|_, conn, requests| {
                if let Some(head) = read_request(conn) {
                    requests.lock().push(head);
                }
            }),
        );
        let client = server.client(quick());
        match client.get("/x") {
            Err(Error::Io(e)) => assert_eq!(e.kind(), io::ErrorKind::UnexpectedEof),
            other => panic!("{other:?}"),
        }
        let (requests, _) = server.finish();
        assert_eq!(requests.len(), 1);
    }

    #[test]
    fn a_silent_server_times_out() {
        let server = TestServer::start(
            1,
            Arc::new(|_, conn, requests| {
                if let Some(head) = read_request(conn) {
                    requests.lock().push(head);
                }
                // Holds the connection open without answering until the client gives up.
                let _ = read_request(conn);
            }),
        );
        let client = server.client(ClientConfig {
            io_timeout: Duration::from_millis(100),
            ..quick()
        });
        assert!(matches!(client.get("/slow"), Err(Error::Timeout)));
        drop(client);
        server.finish();
    }

    #[test]
    fn a_dribbling_server_hits_the_request_deadline() {
        let server = TestServer::start(
            1,
            Arc::new(|_, conn, _| {
                if read_request(conn).is_none() {
                    return;
                }
                let out = conn.get_mut();
                let _ = out.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n");
                // One byte at a time, each well within the I/O timeout, never done in time.
                for _ in 0..1000 {
                    if out.write_all(b"x").is_err() {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(10));
                }
            }),
        );
        let client = server.client(ClientConfig {
            io_timeout: Duration::from_secs(2),
            request_timeout: Duration::from_millis(200),
            ..quick()
        });
        assert!(matches!(client.get("/drip"), Err(Error::Timeout)));
        drop(client);
        server.finish();
    }

    #[test]
    fn refused_connections_are_connect_errors() {
        let addr = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            listener.local_addr().unwrap()
        };
        let client = Client::new(Endpoint::Tcp(addr), quick());
        assert!(matches!(client.get("/"), Err(Error::Connect(_))));
    }

    #[test]
    fn unix_socket_endpoint_and_sharing_between_threads() {
        fn assert_send_sync<T: Send + Sync>() {}
        assert_send_sync::<Client>();

        let dir = std::env::temp_dir().join(format!("ci-http1-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("daemon.sock");
        let _ = std::fs::remove_file(&path);
        let listener = UnixListener::bind(&path).unwrap();
        let served = Arc::new(AtomicUsize::new(0));
        let served_by_server = Arc::clone(&served);
        let server = std::thread::spawn(move || {
            let mut handlers = Vec::new();
            // Four client threads: at most four connections, each served until closed.
            for _ in 0..4 {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                stream
                    .set_read_timeout(Some(Duration::from_secs(10)))
                    .unwrap();
                let served = Arc::clone(&served_by_server);
                handlers.push(std::thread::spawn(move || {
                    let mut conn = BufReader::new(stream);
                    while let Some(head) = read_request(&mut conn) {
                        assert!(head.contains("\r\nHost: localhost\r\n"));
                        let body = head.lines().next().unwrap().to_string();
                        let answer = format!(
                            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\r\n{body}",
                            body.len()
                        );
                        served.fetch_add(1, Ordering::SeqCst);
                        if conn.get_mut().write_all(answer.as_bytes()).is_err() {
                            return;
                        }
                    }
                }));
                if served_by_server.load(Ordering::SeqCst) >= 40 {
                    break;
                }
            }
            for h in handlers {
                let _ = h.join();
            }
        });
        let client = Arc::new(Client::new(Endpoint::Unix(path.clone()), quick()));
        let threads: Vec<_> = (0..4)
            .map(|t| {
                let client = Arc::clone(&client);
                std::thread::spawn(move || {
                    for i in 0..10 {
                        let r = client.get(&format!("/t{t}/{i}")).unwrap();
                        assert_eq!(r.header("content-type"), Some("text/plain"));
                        assert_eq!(r.body, format!("GET /t{t}/{i} HTTP/1.1").as_bytes());
                    }
                })
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        assert_eq!(served.load(Ordering::SeqCst), 40);
        drop(client);
        // Wake the accept loop if fewer than four connections were needed.
        for _ in 0..4 {
            let _ = UnixStream::connect(&path);
        }
        server.join().unwrap();
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_unix_socket_that_accepts_no_more_times_out() {
        let dir = std::env::temp_dir().join(format!("unix-full-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("full.sock");
        // A listener that never accepts, with a backlog of none (std's listeners take
        // thousands): once it is full, connecting blocks.
        let mut listener = std::process::Command::new("python3")
            .args([
                "-c",
                "import socket, sys, time\n\
                 s = socket.socket(socket.AF_UNIX)\n\
                 s.bind(sys.argv[1])\n\
                 s.listen(0)\n\
                 print('ready', flush=True)\n\
                 time.sleep(60)",
            ])
            .arg(&path)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .expect("python3");
        let mut ready = String::new();
        std::io::BufReader::new(listener.stdout.take().unwrap())
            .read_line(&mut ready)
            .unwrap();
        assert_eq!(ready.trim(), "ready");
        let fillers: Vec<_> = (0..8)
            .map(|_| {
                let path = path.clone();
                std::thread::spawn(move || UnixStream::connect(path))
            })
            .collect();
        std::thread::sleep(Duration::from_millis(300));
        let started = Instant::now();
        let e = connect_unix(&path, Duration::from_millis(300)).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::TimedOut, "{e}");
        assert!(started.elapsed() < Duration::from_secs(5));
        // Closing the listener releases the connects still waiting.
        let _ = listener.kill();
        let _ = listener.wait();
        let _ = std::fs::remove_file(&path);
        for filler in fillers {
            let _ = filler.join();
        }
        let _ = std::fs::remove_dir_all(&dir);
    }
}
