//! A small HTTP/1.1 server on std, the only code of the product that accepts connections
//! (the cluster simulator of `demo` builds has a server of its own).
//! Everything above it — the master's REST API, the minion's proxy — is a handler, a plain
//! function from [`Request`] to [`Response`], so most HTTP behaviour is tested without
//! sockets. Heads are parsed and written by the wire crate, the grammar the whole project
//! shares.
//!
//! Built to keep answering under slow and hostile clients (ARCHITECTURE.md has the
//! measurements that made us leave tiny_http):
//! - one *head reader* thread owns every connection that is not being answered, on
//!   non-blocking sockets: it collects request heads with a size cap (16 KiB, then 431) and
//!   a deadline (10 s, then 408), and closes keep-alive connections idle for 15 s, so idle
//!   or dribbling clients cost a socket, never a thread;
//! - a fixed pool of workers runs the handler and writes the start of the answer without
//!   waiting; the I/O thread writes the rest as each client reads, with a write timeout and
//!   an overall deadline, so a client that never reads holds no worker;
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

use cluster_insight_wire::head::{self, Parse, Version};
use crossbeam_channel::{Receiver, RecvTimeoutError, Sender, TrySendError};

use super::body::Body;
use super::message::{Handler, Method, Request, Response};
use super::stream::{EventSource, Poll};

/// Largest request head (request line and headers) we read.
pub(super) const MAX_HEAD_BYTES: usize = 16 << 10;
/// A request head must be complete this long after its first byte.
const HEAD_DEADLINE: Duration = Duration::from_secs(10);
/// A keep-alive connection with no new request for this long is closed.
const IDLE_TIMEOUT: Duration = Duration::from_secs(15);
/// Each write must make progress within this, and the whole answer finish within
/// `ANSWER_DEADLINE`.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
const ANSWER_DEADLINE: Duration = Duration::from_secs(120);
/// What a worker writes of an answer before leaving the rest to the I/O thread: a small
/// answer goes out whole at once, and a worker never spends long filling one client's
/// socket buffer (several MB on loopback) while others wait in the queue.
const WORKER_WRITE_BUDGET: usize = 64 << 10;
/// What the I/O thread writes to one client before turning to the next, so that clients
/// share it and one fast reader of a large answer does not hold up the rest.
const IO_WRITE_BUDGET: usize = 256 << 10;
/// What the I/O thread writes in one turn over all clients: with hundreds of answers being
/// written, each gets its share, so that a turn (and the new requests read at its start)
/// never waits long behind copying into socket buffers.
const IO_TURN_BUDGET: usize = 8 << 20;
/// The least a client gets per turn, however many there are.
const IO_MIN_WRITE: usize = 16 << 10;
/// Bytes of answers the server may hold for clients that read slowly, beyond the answers
/// handlers share (a snapshot's body is held once, whatever the number of clients): over it,
/// a new answer of its own is a 503, so that clients that do not read cannot grow memory.
pub(crate) const MAX_HELD_BYTES: usize = 256 << 20;
/// The kernel's send buffer of each connection (Linux keeps twice this). Left to itself it
/// grows to several MB for a client that does not read: 500 such clients held 2 GB of kernel
/// memory, and the kernel under that pressure slowed every write. This still lets one reader
/// take a 1 MB window: over 1 GB/s on a LAN, 20 MB/s at a 50 ms round trip.
const SEND_BUFFER: usize = 512 << 10;
/// Open connections beyond this get a 503 and are closed at once.
pub(super) const MAX_CONNECTIONS: usize = 4096;
/// On shutdown, how long answers already being written may take to finish.
pub(crate) const DRAIN_LIMIT: Duration = Duration::from_secs(5);

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

    /// Stops accepting and reading requests, lets the workers finish the requests in hand
    /// and the answers being written finish (within [`DRAIN_LIMIT`]), and joins every
    /// thread.
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
    serve_listener_with_probes(listener, workers, name, handler, &[])
}

/// [`serve_listener`], where requests for `probes` (paths such as `/healthz`, whose
/// answers are cheap and must come at once: a liveness probe that waits gets the process
/// restarted) go ahead of every other request waiting for a worker.
pub fn serve_listener_with_probes(
    listener: TcpListener,
    workers: usize,
    name: &str,
    handler: Handler,
    probes: &'static [&'static str],
) -> io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let stop = Arc::new(AtomicBool::new(false));
    let open = Arc::new(AtomicUsize::new(0));
    let workers = workers.max(1);
    // Everything the I/O thread must look after: new connections, answers to finish.
    let (events_tx, events_rx) = crossbeam_channel::unbounded::<Event>();
    // Complete requests waiting for a worker; a full queue sheds load with 503. Probes have
    // a queue of their own, which workers take from first.
    let (work_tx, work_rx) = crossbeam_channel::bounded::<(Conn, Request)>(workers * 64);
    let (probe_tx, probe_rx) = crossbeam_channel::bounded::<(Conn, Request)>(workers * 64);
    let queues = Queues {
        work: work_tx,
        probes: probe_tx,
        probe_paths: probes,
    };

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
                .spawn(move || io_loop(&events_rx, queues, &stop))?,
        );
    }
    let held = Arc::new(AtomicUsize::new(0));
    for n in 0..workers {
        let (work_rx, probe_rx) = (work_rx.clone(), probe_rx.clone());
        let (events, handler) = (events_tx.clone(), Arc::clone(&handler));
        let held = Arc::clone(&held);
        threads.push(
            std::thread::Builder::new()
                .name(format!("{name}-{n}"))
                .spawn(move || worker(&probe_rx, &work_rx, &events, &handler, &held))?,
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
    /// `buf` holds bytes not parsed yet (what a client pipelined behind its last request).
    unparsed: bool,
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
    /// Counted in the server's held bytes while it lives, when its body is its own.
    held: Option<Held>,
    /// A stream of events: what is sent once the body is out, for as long as it lasts.
    stream: Option<Box<dyn EventSource>>,
}

/// Bytes of an answer's own body, counted in the server's total while the answer lives.
struct Held {
    total: Arc<AtomicUsize>,
    bytes: usize,
}

impl Held {
    /// Counts `bytes` in, unless that would pass [`MAX_HELD_BYTES`].
    fn take(total: &Arc<AtomicUsize>, bytes: usize) -> Option<Held> {
        total
            .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |held| {
                (held + bytes <= MAX_HELD_BYTES).then_some(held + bytes)
            })
            .ok()
            .map(|_| Held {
                total: Arc::clone(total),
                bytes,
            })
    }
}

impl Drop for Held {
    fn drop(&mut self) {
        self.total.fetch_sub(self.bytes, Ordering::SeqCst);
    }
}

/// Pieces handed to one vectored write.
const IOVECS_PER_WRITE: usize = 64;

impl Outgoing {
    fn total(&self) -> usize {
        self.head.len() + self.body.len()
    }

    /// Writes until done, the socket is full, or `budget` bytes went out in this call.
    /// `Ok(true)`: all written.
    fn write_some(&mut self, budget: usize) -> io::Result<bool> {
        let mut slices: Vec<&[u8]> = Vec::with_capacity(IOVECS_PER_WRITE);
        let stop_at = self.written.saturating_add(budget);
        while self.written < self.total() {
            if self.written >= stop_at {
                return Ok(false);
            }
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

    /// A client that has not taken a byte for the write timeout, or (but for a stream)
    /// not the whole answer within the answer deadline.
    fn stalled(&self) -> bool {
        if self.stream.is_some() {
            return self.written < self.total() && self.last_progress.elapsed() > WRITE_TIMEOUT;
        }
        self.last_progress.elapsed() > WRITE_TIMEOUT || self.started.elapsed() > ANSWER_DEADLINE
    }

    /// With all that was given written: asks the stream for more. `Some(true)`: more to
    /// write; `Some(false)`: nothing yet; `None`: the stream ended (or there is none).
    fn next_from_stream(&mut self) -> Option<bool> {
        match self.stream.as_mut()?.poll() {
            Poll::Ready(body) => {
                self.head.clear();
                self.body = body;
                self.written = 0;
                self.piece_hint = 0;
                self.last_progress = Instant::now();
                Some(true)
            }
            Poll::Pending => Some(false),
            Poll::End => None,
        }
    }

    /// After the last byte: back to reading the next request, or closed.
    fn finish(self) -> Option<Conn> {
        let mut conn = self.conn;
        if self.keep_alive {
            conn.idle = conn.buf.is_empty();
            conn.unparsed = !conn.buf.is_empty();
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
        let _ = socket2::SockRef::from(&stream).set_send_buffer_size(SEND_BUFFER);
        let conn = Conn {
            remote: Some(remote),
            stream,
            buf: Vec::new(),
            since: Instant::now(),
            idle: true,
            unparsed: false,
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
    let mut out = Vec::with_capacity(256 + body.len());
    head::write_response_head(
        &mut out,
        Version::Http11,
        503,
        response
            .headers
            .iter()
            .map(|(n, v)| (n.as_str(), v.as_str())),
        Some(body.len() as u64),
        false,
    );
    out.extend_from_slice(&body);
    let _ = stream.write_all(&out);
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
/// Where the I/O thread sends complete requests.
struct Queues {
    work: Sender<(Conn, Request)>,
    probes: Sender<(Conn, Request)>,
    probe_paths: &'static [&'static str],
}

impl Queues {
    fn queue_for(&self, request: &Request) -> &Sender<(Conn, Request)> {
        if self.probe_paths.contains(&request.path()) {
            &self.probes
        } else {
            &self.work
        }
    }
}

fn io_loop(events: &Receiver<Event>, queues: Queues, stop: &AtomicBool) {
    let mut reading: Vec<Conn> = Vec::new();
    let mut writing: Vec<Outgoing> = Vec::new();
    let mut chunk = vec![0u8; 8192];
    let mut nap = Duration::from_millis(1);
    // Until shutdown: where requests go. After: `None`, so that the workers end once they
    // have answered what is queued, and the answers still to write, with their deadline.
    let mut work = Some(queues);
    let mut drain_until: Option<Instant> = None;
    let mut workers_done = false;
    loop {
        if drain_until.is_none() && stop.load(Ordering::SeqCst) {
            drain_until = Some(Instant::now() + DRAIN_LIMIT);
            work = None;
            // Idle and half-read connections are closed; no new request is read; streams,
            // which never finish, end.
            reading.clear();
            writing.retain(|out| out.stream.is_none());
        }
        if let Some(until) = drain_until {
            if (workers_done && writing.is_empty()) || Instant::now() >= until {
                return;
            }
        }
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
            // Every worker and the accept loop have ended: only shutdown does that.
            Err(RecvTimeoutError::Disconnected) if drain_until.is_some() => workers_done = true,
            Err(RecvTimeoutError::Disconnected) => return,
            Err(RecvTimeoutError::Timeout) => {}
        }
        incoming.extend(events.try_iter());
        for event in incoming {
            match event {
                Event::Conn(_) if drain_until.is_some() => {}
                // A stream that began while draining ends with it.
                Event::Answer(out) if drain_until.is_some() && out.stream.is_some() => {}
                Event::Conn(conn) => reading.push(conn),
                Event::Answer(out) => writing.push(out),
            }
        }

        let mut progressed = false;
        // Requests first: a new request is handed to a worker before the I/O thread
        // spends its turn on answers that take long to write.
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
                    let Some(queues) = &work else {
                        continue;
                    };
                    match queues.queue_for(&request).try_send((conn, request)) {
                        Ok(()) => {}
                        Err(TrySendError::Full((conn, _))) => {
                            writing.push(rejection(conn, 503, "server busy, try again"));
                        }
                        Err(TrySendError::Disconnected(_)) => return,
                    }
                }
            }
        }
        let share = (IO_TURN_BUDGET / writing.len().max(1)).clamp(IO_MIN_WRITE, IO_WRITE_BUDGET);
        let mut i = 0;
        while i < writing.len() {
            let before = writing[i].written;
            match writing[i].write_some(share) {
                Ok(true) if writing[i].stream.is_some() => {
                    progressed |= writing[i].written > before;
                    match writing[i].next_from_stream() {
                        Some(_) => i += 1,
                        None => {
                            let _ = writing.swap_remove(i).conn.stream.shutdown(Shutdown::Write);
                        }
                    }
                }
                Ok(true) => {
                    progressed = true;
                    if let Some(conn) = writing.swap_remove(i).finish() {
                        if drain_until.is_none() {
                            reading.push(conn);
                        }
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

        // While bytes move, go round again at once (a budget cut a write short); while
        // nothing does, back off to 10 ms.
        nap = if progressed {
            Duration::ZERO
        } else {
            (nap * 2).clamp(Duration::from_millis(1), Duration::from_millis(10))
        };
    }
}

fn poll_conn(conn: &mut Conn, chunk: &mut [u8], progressed: &mut bool) -> Progress {
    // A pipelined request may already be complete in the buffer.
    if std::mem::take(&mut conn.unparsed) {
        if let Some(progress) = try_parse(conn) {
            return progress;
        }
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
                // A head completes at a line end: parsing again without a new one can only
                // say what it said before, and a client sending a byte at a time would make
                // every read cost the whole head again. The cap holds meanwhile.
                let line_end = chunk[..n].contains(&b'\n');
                if line_end || conn.buf.len() > MAX_HEAD_BYTES {
                    if let Some(progress) = try_parse(conn) {
                        return progress;
                    }
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

/// Parses a complete head out of the buffer, if there is one; refuses one that is already
/// wrong, or too large whatever else is wrong with it.
fn try_parse(conn: &mut Conn) -> Option<Progress> {
    // One empty line before a request line is tolerated (RFC 9112 §2.2); a head that is
    // nothing but empty lines is not a request.
    let leading_line_ends = conn
        .buf
        .iter()
        .take_while(|b| matches!(b, b'\r' | b'\n'))
        .filter(|&&b| b == b'\n')
        .count();
    if leading_line_ends >= 2 {
        return Some(Progress::Reject(400, "empty request"));
    }
    let too_large = conn.buf.len() > MAX_HEAD_BYTES;
    match head::parse_request(&conn.buf) {
        Ok(Parse::Complete(request, len)) if len <= MAX_HEAD_BYTES => {
            conn.buf.drain(..len);
            if let Err(why) = body_framing(&request.headers) {
                return Some(Progress::Reject(400, why));
            }
            Some(Progress::Ready(Request::from_head(request)))
        }
        Ok(Parse::Partial) if !too_large => None,
        Err(e) if !too_large => Some(Progress::Reject(400, e.message())),
        _ => Some(Progress::Reject(431, "request head too large")),
    }
}

/// Checks how a request says its body is framed. Bodies are never read, but a request whose
/// framing is ambiguous could be read as two by something in front of us (request
/// smuggling): RFC 9112 §6.3 makes both of these an unrecoverable error.
fn body_framing(headers: &[(String, String)]) -> Result<(), &'static str> {
    let has = |name: &str| headers.iter().any(|(n, _)| n.eq_ignore_ascii_case(name));
    if !has("Content-Length") {
        return Ok(());
    }
    if has("Transfer-Encoding") {
        return Err("both Transfer-Encoding and Content-Length");
    }
    cluster_insight_wire::body::content_length(headers)
        .map(|_| ())
        .map_err(|_| "invalid or conflicting Content-Length")
}

/// An error answer that closes the connection.
fn rejection(conn: Conn, status: u16, message: &str) -> Outgoing {
    outgoing(conn, error_response(status, message), false, false, false)
}

/// The errors the server itself finds before any handler runs, in the JSON form of every
/// endpoint (contract §2), readable by the browser pages of any origin like the rest.
fn error_response(status: u16, message: &str) -> Response {
    Response::error(status, message).with_header("Access-Control-Allow-Origin", "*")
}

fn worker(
    probes: &Receiver<(Conn, Request)>,
    work: &Receiver<(Conn, Request)>,
    events: &Sender<Event>,
    handler: &Handler,
    held: &Arc<AtomicUsize>,
) {
    loop {
        let job = crossbeam_channel::select_biased! {
            recv(probes) -> job => job,
            recv(work) -> job => job,
        };
        let Ok((conn, request)) = job else {
            // Both queues close together, at shutdown, and one of them is empty: answer what
            // the other still holds, then end.
            for (conn, request) in probes.try_iter().chain(work.try_iter()) {
                answer(conn, &request, events, handler, held);
            }
            return;
        };
        answer(conn, &request, events, handler, held);
    }
}

/// Runs the handler for `request` and writes what the socket takes of the answer now.
fn answer(
    conn: Conn,
    request: &Request,
    events: &Sender<Event>,
    handler: &Handler,
    held: &Arc<AtomicUsize>,
) {
    let http10 = request.version == Version::Http10;
    let has_body = request
        .header("Content-Length")
        .is_some_and(|v| v.trim() != "0")
        || request.header("Transfer-Encoding").is_some();
    let connection = |token: &str| head::has_token(&request.headers, "connection", token);
    // We never read request bodies (only GET and HEAD are served), so a connection that
    // sent one cannot carry another request.
    let keep_alive = !has_body && !connection("close") && (!http10 || connection("keep-alive"));

    let response = match catch_unwind(AssertUnwindSafe(|| handler(request))) {
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
    let mut out = outgoing(conn, response, head_only, keep_alive, http10);
    if let Body::Owned(bytes) = &out.body {
        if bytes.len() > WORKER_WRITE_BUDGET {
            match Held::take(held, bytes.len()) {
                Some(counted) => out.held = Some(counted),
                None => {
                    log::warn!(
                        "answering 503 to {:?}: {} MiB of answers already wait for slow clients",
                        out.conn.remote,
                        MAX_HELD_BYTES >> 20
                    );
                    out = outgoing(
                        out.conn,
                        error_response(503, "server busy: too many answers wait for slow clients")
                            .with_header("Retry-After", "1"),
                        head_only,
                        false,
                        http10,
                    );
                }
            }
        }
    }
    // Write what the socket takes now, without waiting: the rest is the I/O thread's.
    // A worker that waited on a client that does not read would be one fewer for
    // everyone else, and a few hundred such clients would hold them all.
    match out.write_some(WORKER_WRITE_BUDGET) {
        // A stream goes on from the I/O thread.
        Ok(true) if out.stream.is_some() => {
            let _ = events.send(Event::Answer(out));
        }
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

/// Serializes the head of `response`; the body is shared, not copied.
fn outgoing(
    conn: Conn,
    response: Response,
    head_only: bool,
    keep_alive: bool,
    http10: bool,
) -> Outgoing {
    let no_body = head_only || cluster_insight_wire::status::has_no_body(response.status);
    // A stream's answer has no length: it ends when the connection closes (RFC 9112 §6.3),
    // which also works through HTTP/1.0 and proxies that buffer chunked answers.
    let streamed = response.stream.is_some() && response.status == 200;
    let stream = response
        .stream
        .as_ref()
        .filter(|_| streamed && !no_body)
        .and_then(|s| s.take());
    // HEAD of a stream is framed as its GET: no length, closed after.
    let keep_alive = keep_alive && !streamed;
    // Framing is the server's: handlers' own `Content-Length` and `Connection` are left out,
    // except that a HEAD answer may say how long the GET body would be.
    let content_length =
        if cluster_insight_wire::status::has_no_body(response.status) || stream.is_some() {
            None
        } else {
            let declared = response
                .header("Content-Length")
                .filter(|_| head_only)
                .and_then(|v| v.parse::<u64>().ok());
            Some(declared.unwrap_or(response.body.len() as u64))
        };
    let headers = response
        .headers
        .iter()
        .filter(|(name, _)| {
            !name.eq_ignore_ascii_case("Content-Length") && !name.eq_ignore_ascii_case("Connection")
        })
        .map(|(n, v)| (n.as_str(), v.as_str()));
    let mut head = Vec::with_capacity(256);
    head::write_response_head(
        &mut head,
        if http10 {
            Version::Http10
        } else {
            Version::Http11
        },
        response.status,
        headers,
        content_length,
        keep_alive,
    );
    let now = Instant::now();
    Outgoing {
        conn,
        head,
        body: if no_body { Body::Empty } else { response.body },
        written: 0,
        piece_hint: 0,
        keep_alive,
        started: now,
        last_progress: now,
        held: None,
        stream,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the server writes for `response` to a GET on HTTP/1.1 with keep-alive.
    fn written(response: &Response, head_only: bool) -> String {
        let (client, server) = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (client, listener.accept().unwrap().0)
        };
        drop(client);
        let conn = Conn {
            stream: server,
            remote: None,
            buf: Vec::new(),
            since: Instant::now(),
            idle: true,
            unparsed: false,
            open: Arc::new(AtomicUsize::new(1)),
        };
        let out = outgoing(conn, response.clone(), head_only, true, false);
        let mut all = out.head.clone();
        all.extend_from_slice(&out.body.to_vec());
        String::from_utf8(all).unwrap()
    }

    /// What the I/O thread makes of `bytes` arriving on a fresh connection.
    fn parsed(bytes: &[u8]) -> Option<String> {
        let (client, server) = {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let client = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
            (client, listener.accept().unwrap().0)
        };
        drop(client);
        let mut conn = Conn {
            stream: server,
            remote: None,
            buf: bytes.to_vec(),
            since: Instant::now(),
            idle: false,
            unparsed: true,
            open: Arc::new(AtomicUsize::new(1)),
        };
        try_parse(&mut conn).map(|progress| match progress {
            Progress::Ready(request) => format!("request {}", request.target),
            Progress::Reject(status, why) => format!("{status} {why}"),
            Progress::Waiting => "waiting".to_string(),
            Progress::Close => "close".to_string(),
        })
    }

    #[test]
    fn heads_are_refused_as_they_were() {
        assert_eq!(
            parsed(b"GET /a HTTP/1.1\r\n\r\n").as_deref(),
            Some("request /a")
        );
        // One empty line before the request line is tolerated, two are no request.
        assert_eq!(
            parsed(b"\r\nGET /a HTTP/1.1\r\n\r\n").as_deref(),
            Some("request /a")
        );
        assert_eq!(parsed(b"\r\n\r\n").as_deref(), Some("400 empty request"));
        assert_eq!(
            parsed(b"\n\nGET / HTTP/1.1\r\n\r\n").as_deref(),
            Some("400 empty request")
        );
        assert_eq!(parsed(b"GET /a HTTP/1.1\r\nHost: x\r\n"), None);
        assert!(parsed(b"GET /a HTTP/2.0\r\n\r\n")
            .unwrap()
            .starts_with("400"));
        // Too large wins over anything else that is wrong with the head.
        let mut many = b"GET / HTTP/1.1\r\n".to_vec();
        while many.len() <= MAX_HEAD_BYTES {
            many.extend_from_slice(b"X-Filler: 0123456789012345678901234567890123456789\r\n");
        }
        assert_eq!(parsed(&many).as_deref(), Some("431 request head too large"));
        let mut line = b"GET /".to_vec();
        line.resize(MAX_HEAD_BYTES + 1, b'a');
        assert_eq!(parsed(&line).as_deref(), Some("431 request head too large"));
    }

    #[test]
    fn framing_is_the_servers() {
        let response = Response::new(200, "text/plain", Body::Owned(b"hello".to_vec()))
            .with_header("Content-Length", "99")
            .with_header("Connection", "close");
        assert_eq!(
            written(&response, false),
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
             Connection: keep-alive\r\n\r\nhello"
        );
        // HEAD: no body, and the length the GET body would have when the handler says so.
        let head =
            Response::new(200, "text/plain", Body::Empty).with_header("Content-Length", "42");
        assert!(written(&head, true).contains("Content-Length: 42\r\n"));
        let not_modified = Response {
            status: 304,
            headers: vec![("ETag".into(), "\"x\"".into())],
            body: Body::Owned(b"ignored".to_vec()),
            stream: None,
        };
        let text = written(&not_modified, false);
        assert!(
            text.ends_with("\r\n\r\n") && !text.contains("Content-Length"),
            "{text}"
        );
    }
}
