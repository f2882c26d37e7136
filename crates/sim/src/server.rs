//! The simulator's own minimal HTTP/1.1 server over std sockets, with fault injection.
//!
//! Why not the project's HTTP layer: faults need raw control of the socket (stop listening,
//! accept and never answer, close in the middle of a body), and a benchmark cluster has a
//! thousand Docker endpoints, which a thread pool per listener cannot afford. Here every
//! endpoint (the Kubernetes API, each node's Docker API) has one blocking accept thread with
//! a small stack, and each connection gets a thread of its own for as long as it lives
//! (keep-alive is supported because the master reuses connections), up to a global cap.
//! Idle connections time out; shutdown closes every registered socket so no thread lingers.
//!
//! Request handling itself is a plain function of the shared cluster state (see `kube.rs`
//! and `docker.rs`); this module only applies the endpoint's current fault around it.

use std::collections::HashMap;
use std::io::{BufReader, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use parking_lot::{Condvar, Mutex, RwLock};

use cluster_insight_wire::head::{self, HeadError, Version};
use cluster_insight_wire::percent::{self, MalformedEscape};
use cluster_insight_wire::status::reason_phrase;

use super::access::Access;
use super::kube::KubeStore;
use super::model::Cluster;
use super::{docker, kube, mangle, Fault, NodeLatency, RequestCounts};

/// A connection idle this long is closed (the master reconnects).
const IDLE_TIMEOUT: Duration = Duration::from_secs(30);
const WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// Request line plus headers.
const MAX_HEAD: usize = 64 * 1024;
const MAX_REQUEST_BODY: u64 = 1 << 20;
/// Connections beyond this are closed at once; protects the process's descriptors.
const MAX_CONNECTIONS: usize = 8192;
/// How long a fault setter waits for a listener to close or reopen.
const LISTENER_SWITCH_TIMEOUT: Duration = Duration::from_secs(5);

/// What one listener serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Kube,
    Node(usize),
}

/// A fault and the requests it applies to (`path_contains` empty: all).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct FaultRule {
    pub fault: Fault,
    pub path_contains: String,
}

impl FaultRule {
    fn none() -> FaultRule {
        FaultRule {
            fault: Fault::None,
            path_contains: String::new(),
        }
    }

    fn applies_to(&self, path: &str) -> &Fault {
        if self.path_contains.is_empty() || path.contains(&self.path_contains) {
            &self.fault
        } else {
            &Fault::None
        }
    }
}

struct EndpointState {
    rule: FaultRule,
    listening: bool,
}

/// One listening address and its fault state.
pub(crate) struct Endpoint {
    pub role: Role,
    pub addr: SocketAddrV4,
    state: Mutex<EndpointState>,
    changed: Condvar,
    conns: Mutex<HashMap<u64, TcpStream>>,
}

impl Endpoint {
    pub(crate) fn fault_for(&self, path: &str) -> Fault {
        self.state.lock().rule.applies_to(path).clone()
    }

    fn refusing(&self) -> bool {
        self.state.lock().rule.fault == Fault::Refuse
    }

    fn close_connections(&self) {
        for stream in self.conns.lock().values() {
            let _ = stream.shutdown(Shutdown::Both);
        }
    }

    /// Makes a blocked `accept` return so the accept loop looks at the flags again.
    fn wake(&self) {
        let _ = TcpStream::connect_timeout(&SocketAddr::V4(self.addr), Duration::from_millis(500));
    }
}

/// The model and its rendered Kubernetes objects, changed together under one lock.
pub(crate) struct State {
    pub cluster: Cluster,
    pub kube: KubeStore,
}

#[derive(Default)]
pub(crate) struct Counters {
    pub kube_list_pages: AtomicU64,
    pub kube_get: AtomicU64,
    pub kube_other: AtomicU64,
    pub kube_watch: AtomicU64,
    pub docker_list: AtomicU64,
    pub docker_inspect: AtomicU64,
    pub docker_top: AtomicU64,
    pub docker_image: AtomicU64,
    pub docker_other: AtomicU64,
    pub node_document: AtomicU64,
}

impl Counters {
    pub(crate) fn snapshot(&self) -> RequestCounts {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        RequestCounts {
            kube_list_pages: get(&self.kube_list_pages),
            kube_get: get(&self.kube_get),
            kube_other: get(&self.kube_other),
            kube_watch: get(&self.kube_watch),
            docker_list: get(&self.docker_list),
            docker_inspect: get(&self.docker_inspect),
            docker_top: get(&self.docker_top),
            docker_image: get(&self.docker_image),
            docker_other: get(&self.docker_other),
            node_document: get(&self.node_document),
        }
    }
}

/// Everything the server threads share.
/// A node's `/node` body and its ETag.
pub(crate) struct NodeDocument {
    pub body: String,
    pub etag: String,
}

pub(crate) struct Shared {
    pub state: RwLock<State>,
    /// Bumped by every change to `state` (see [`Shared::write_state`]).
    generation: AtomicU64,
    /// Each node's `/node` document and its ETag, with the generation they were made in:
    /// a node agent's document is asked for at every refresh and seldom changes.
    pub node_documents: Mutex<HashMap<usize, (u64, Arc<NodeDocument>)>>,
    /// How long each node API call waits before it is answered.
    pub latency: Mutex<NodeLatency>,
    /// The tokens the API server knows and what they may read.
    pub access: Mutex<Access>,
    pub counters: Counters,
    pub endpoints: Vec<Arc<Endpoint>>,
    shutdown: AtomicBool,
    live_connections: AtomicUsize,
    next_connection: AtomicU64,
    /// Bumped to close every open watch (`Simulator::drop_watches`).
    pub watch_epoch: AtomicU64,
}

/// A parsed request.
#[derive(Debug, Clone)]
pub(crate) struct Request {
    pub method: String,
    /// The path as sent, still percent-encoded, without the query.
    pub path: String,
    /// Decoded query parameters in order.
    pub query: Vec<(String, String)>,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Request {
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub(crate) fn param(&self, name: &str) -> Option<&str> {
        self.query
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub(crate) struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub headers: Vec<(&'static str, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub(crate) fn json(status: u16, body: impl Into<Vec<u8>>) -> Response {
        Response {
            status,
            content_type: "application/json",
            headers: Vec::new(),
            body: body.into(),
        }
    }
}

/// Splits a target into its path (still encoded) and its decoded query parameters; a
/// malformed escape in the query is an error.
fn parse_target(target: &str) -> Result<(String, Vec<(String, String)>), MalformedEscape> {
    let (path, query) = match target.split_once('?') {
        Some((p, q)) => (p, q),
        None => (target, ""),
    };
    let mut params = Vec::new();
    for pair in query.split('&').filter(|kv| !kv.is_empty()) {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        params.push((
            percent::decode_query_component(k)?,
            percent::decode_query_component(v)?,
        ));
    }
    Ok((path.to_string(), params))
}

enum ReadError {
    /// The peer closed or went idle between requests: end quietly.
    Closed,
    /// The request cannot be served; answer with this status and close.
    Bad(u16),
}

/// Reads one request head (and discards any body). `Ok(keep_alive)` with the request.
fn read_request(reader: &mut BufReader<TcpStream>) -> Result<(Request, bool), ReadError> {
    let head = match head::read_request(reader, MAX_HEAD) {
        Ok(Some((head, _))) => head,
        Ok(None) | Err(head::ReadError::Io(_)) => return Err(ReadError::Closed),
        Err(head::ReadError::Closed) => return Err(ReadError::Bad(400)),
        Err(head::ReadError::Head { error, .. }) => {
            return Err(ReadError::Bad(match error {
                HeadError::TooLarge => 431,
                HeadError::Version => 505,
                HeadError::Malformed(_) | HeadError::TooManyHeaders => 400,
            }))
        }
    };
    let (path, query) = parse_target(&head.target).map_err(|_| ReadError::Bad(400))?;
    let keep_alive = match head.version {
        Version::Http10 => head::has_token(&head.headers, "connection", "keep-alive"),
        Version::Http11 => !head::has_token(&head.headers, "connection", "close"),
    };
    let mut request = Request {
        method: head.method,
        path,
        query,
        headers: head.headers,
        body: Vec::new(),
    };
    if request.header("transfer-encoding").is_some() {
        return Err(ReadError::Bad(411));
    }
    let length: u64 = match request.header("content-length") {
        Some(v) => v.parse().map_err(|_| ReadError::Bad(400))?,
        None => 0,
    };
    if length > MAX_REQUEST_BODY {
        return Err(ReadError::Bad(413));
    }
    if length > 0 {
        let copied = reader
            .by_ref()
            .take(length)
            .read_to_end(&mut request.body)
            .map_err(|_| ReadError::Closed)?;
        if copied as u64 != length {
            return Err(ReadError::Closed);
        }
    }
    Ok((request, keep_alive))
}

/// Writes a whole response and closes the exchange (`Connection: close`).
pub(crate) fn write_whole(stream: &mut TcpStream, response: &Response) -> std::io::Result<()> {
    write_response(
        stream,
        response,
        &response.body,
        response.body.len(),
        false,
        false,
    )
}

/// Writes a response whose head announces `announced_len` body bytes and whose body is
/// `body` (shorter than announced only for the close-mid-body fault).
fn write_response(
    stream: &mut TcpStream,
    response: &Response,
    body: &[u8],
    announced_len: usize,
    keep_alive: bool,
    head_only: bool,
) -> std::io::Result<()> {
    let mut out = Vec::with_capacity(256 + if head_only { 0 } else { body.len() });
    let headers = std::iter::once(("Content-Type", response.content_type))
        .chain(response.headers.iter().map(|(n, v)| (*n, v.as_str())));
    head::write_response_head(
        &mut out,
        Version::Http11,
        response.status,
        headers,
        Some(announced_len as u64),
        keep_alive,
    );
    if !head_only {
        out.extend_from_slice(body);
    }
    stream.write_all(&out)?;
    stream.flush()
}

impl Shared {
    /// The state, to change it: what was made from it before is out of date after.
    pub(crate) fn write_state(&self) -> parking_lot::RwLockWriteGuard<'_, State> {
        let guard = self.state.write();
        self.generation.fetch_add(1, Ordering::SeqCst);
        guard
    }

    pub(crate) fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    pub(crate) fn new(state: State, endpoints: Vec<Arc<Endpoint>>, latency: NodeLatency) -> Shared {
        Shared {
            state: RwLock::new(state),
            generation: AtomicU64::new(0),
            node_documents: Mutex::new(HashMap::new()),
            latency: Mutex::new(latency),
            access: Mutex::new(Access::default()),
            counters: Counters::default(),
            endpoints,
            shutdown: AtomicBool::new(false),
            live_connections: AtomicUsize::new(0),
            next_connection: AtomicU64::new(0),
            watch_epoch: AtomicU64::new(0),
        }
    }

    pub(crate) fn stopping(&self) -> bool {
        self.shutdown.load(Ordering::SeqCst)
    }

    /// Waits `delay`, or until the simulator stops (false then).
    pub(crate) fn pause(&self, delay: Duration) -> bool {
        let until = Instant::now() + delay;
        loop {
            if self.stopping() {
                return false;
            }
            let now = Instant::now();
            if now >= until {
                return true;
            }
            std::thread::sleep((until - now).min(Duration::from_millis(20)));
        }
    }

    /// Sets the fault of endpoint `index`. Switching to or from [`Fault::Refuse`] returns once
    /// the listener is closed or open again (or after a bounded wait).
    pub(crate) fn set_rule(&self, index: usize, rule: FaultRule) {
        let Some(ep) = self.endpoints.get(index) else {
            return;
        };
        let (was_refusing, now_refusing) = {
            let mut st = ep.state.lock();
            let was = st.rule.fault == Fault::Refuse;
            st.rule = rule;
            ep.changed.notify_all();
            (was, st.rule.fault == Fault::Refuse)
        };
        if now_refusing && !was_refusing {
            ep.wake();
            ep.close_connections();
            self.wait_listening(ep, false);
        } else if was_refusing && !now_refusing {
            self.wait_listening(ep, true);
        }
    }

    fn wait_listening(&self, ep: &Endpoint, wanted: bool) {
        let deadline = Instant::now() + LISTENER_SWITCH_TIMEOUT;
        let mut st = ep.state.lock();
        while st.listening != wanted && Instant::now() < deadline && !self.stopping() {
            ep.changed.wait_until(&mut st, deadline);
        }
    }

    pub(crate) fn begin_shutdown(&self) {
        self.shutdown.store(true, Ordering::SeqCst);
        for ep in &self.endpoints {
            let listening = {
                let st = ep.state.lock();
                ep.changed.notify_all();
                st.listening
            };
            if listening {
                ep.wake();
            }
            ep.close_connections();
        }
    }

    /// Waits (bounded) for connection threads to end after [`Shared::begin_shutdown`].
    pub(crate) fn wait_connections(&self, limit: Duration) {
        let deadline = Instant::now() + limit;
        while self.live_connections.load(Ordering::SeqCst) > 0 && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(5));
        }
    }
}

/// Binds `ip:port` (port 0: any free port).
pub(crate) fn bind(ip: Ipv4Addr, port: u16) -> std::io::Result<TcpListener> {
    TcpListener::bind(SocketAddrV4::new(ip, port))
}

/// Binds every address on one common port: the first picks a free port, the others must get
/// the same one, else everything is released and tried again.
pub(crate) fn bind_common_port(
    addrs: &[Ipv4Addr],
    port: u16,
) -> std::io::Result<(u16, Vec<TcpListener>)> {
    let Some(first) = addrs.first() else {
        return Ok((0, Vec::new()));
    };
    let attempts = if port == 0 { 40 } else { 1 };
    let mut last_error = None;
    'attempt: for _ in 0..attempts {
        let head = bind(*first, port)?;
        let chosen = head.local_addr()?.port();
        let mut listeners = Vec::with_capacity(addrs.len());
        listeners.push(head);
        for addr in &addrs[1..] {
            match bind(*addr, chosen) {
                Ok(l) => listeners.push(l),
                Err(e) => {
                    last_error = Some(std::io::Error::new(
                        e.kind(),
                        format!("cannot bind {addr}:{chosen}: {e}"),
                    ));
                    continue 'attempt;
                }
            }
        }
        return Ok((chosen, listeners));
    }
    Err(last_error.unwrap_or_else(|| std::io::Error::other("no common free port")))
}

pub(crate) fn endpoint(role: Role, addr: SocketAddrV4) -> Arc<Endpoint> {
    Arc::new(Endpoint {
        role,
        addr,
        state: Mutex::new(EndpointState {
            rule: FaultRule::none(),
            listening: true,
        }),
        changed: Condvar::new(),
        conns: Mutex::new(HashMap::new()),
    })
}

/// Starts the accept thread of endpoint `index`.
pub(crate) fn spawn_acceptor(
    shared: Arc<Shared>,
    index: usize,
    listener: TcpListener,
) -> std::io::Result<JoinHandle<()>> {
    std::thread::Builder::new()
        .name(format!("sim-accept-{index}"))
        .stack_size(128 * 1024)
        .spawn(move || accept_loop(&shared, index, listener))
}

fn accept_loop(shared: &Arc<Shared>, index: usize, listener: TcpListener) {
    let ep = Arc::clone(&shared.endpoints[index]);
    let mut listener = Some(listener);
    loop {
        if shared.stopping() {
            return;
        }
        let Some(current) = listener.as_ref() else {
            // Closed by the Refuse fault: wait until it is lifted, then listen again.
            {
                let mut st = ep.state.lock();
                while st.rule.fault == Fault::Refuse && !shared.stopping() {
                    ep.changed.wait_for(&mut st, Duration::from_millis(200));
                }
            }
            if shared.stopping() {
                return;
            }
            listener = rebind(shared, &ep);
            continue;
        };
        match current.accept() {
            Ok((stream, _)) => {
                if shared.stopping() {
                    return;
                }
                if ep.refusing() {
                    drop(stream);
                    listener = None;
                    let mut st = ep.state.lock();
                    st.listening = false;
                    ep.changed.notify_all();
                    continue;
                }
                spawn_connection(shared, &ep, stream);
            }
            Err(e) => {
                // Out of descriptors or a connection reset before accept: back off briefly.
                log::debug!("simulator accept on {}: {e}", ep.addr);
                std::thread::sleep(Duration::from_millis(20));
            }
        }
    }
}

fn rebind(shared: &Shared, ep: &Endpoint) -> Option<TcpListener> {
    let deadline = Instant::now() + LISTENER_SWITCH_TIMEOUT;
    loop {
        match bind(*ep.addr.ip(), ep.addr.port()) {
            Ok(l) => {
                let mut st = ep.state.lock();
                st.listening = true;
                ep.changed.notify_all();
                return Some(l);
            }
            Err(e) if Instant::now() < deadline && !shared.stopping() => {
                log::debug!("simulator rebind {}: {e}", ep.addr);
                std::thread::sleep(Duration::from_millis(20));
            }
            Err(e) => {
                log::warn!("simulator cannot listen again on {}: {e}", ep.addr);
                return None;
            }
        }
    }
}

fn spawn_connection(shared: &Arc<Shared>, ep: &Arc<Endpoint>, stream: TcpStream) {
    if shared.live_connections.fetch_add(1, Ordering::SeqCst) >= MAX_CONNECTIONS {
        shared.live_connections.fetch_sub(1, Ordering::SeqCst);
        return;
    }
    let id = shared.next_connection.fetch_add(1, Ordering::Relaxed);
    if let Ok(clone) = stream.try_clone() {
        ep.conns.lock().insert(id, clone);
    }
    let (shared2, ep2) = (Arc::clone(shared), Arc::clone(ep));
    let spawned = std::thread::Builder::new()
        .name("sim-conn".into())
        .stack_size(1024 * 1024)
        .spawn(move || {
            // The registration above happened before this check, so a shutdown that swept
            // the registry before it is still seen here.
            if !shared2.stopping() {
                serve_connection(&shared2, &ep2, stream);
            }
            ep2.conns.lock().remove(&id);
            shared2.live_connections.fetch_sub(1, Ordering::SeqCst);
        });
    if spawned.is_err() {
        ep.conns.lock().remove(&id);
        shared.live_connections.fetch_sub(1, Ordering::SeqCst);
    }
}

fn serve_connection(shared: &Shared, ep: &Endpoint, stream: TcpStream) {
    let _ = stream.set_read_timeout(Some(IDLE_TIMEOUT));
    let _ = stream.set_write_timeout(Some(WRITE_TIMEOUT));
    let _ = stream.set_nodelay(true);
    let Ok(read_half) = stream.try_clone() else {
        return;
    };
    let mut reader = BufReader::new(read_half);
    let mut writer = stream;
    loop {
        if shared.stopping() {
            return;
        }
        let (request, keep_alive) = match read_request(&mut reader) {
            Ok(r) => r,
            Err(ReadError::Closed) => return,
            Err(ReadError::Bad(status)) => {
                let body = format!("{{\"message\":\"{}\"}}", reason_phrase(status));
                let _ = write_response(
                    &mut writer,
                    &Response::json(status, body.clone()),
                    body.as_bytes(),
                    body.len(),
                    false,
                    false,
                );
                return;
            }
        };
        match ep.role {
            Role::Kube => kube::count(shared, &request),
            Role::Node(_) => docker::count(&shared.counters, &request),
        }
        if let Role::Node(_) = ep.role {
            // A real node takes its time over every call, whatever else goes wrong with it.
            let call = docker::call_kind(&request.path);
            let wait = call.map(|c| shared.latency.lock().wait_for(c));
            if let Some(wait) = wait.filter(|w| !w.is_zero()) {
                if !shared.pause(wait) {
                    return;
                }
            }
        }
        if matches!(ep.role, Role::Kube)
            && request.method == "GET"
            && crate::watch::is_watch(&request)
        {
            // A watch streams until it ends, then the connection closes.
            crate::watch::serve(shared, ep, &request, &mut writer);
            return;
        }
        let head_only = request.method == "HEAD";
        let fault = ep.fault_for(&request.path);
        let answer = |shared: &Shared| match ep.role {
            Role::Kube => kube::handle(shared, &request),
            Role::Node(node) => docker::handle(shared, node, &request),
        };
        // A whole, well-framed answer (what most faults end in, after their misbehaviour).
        let send = |writer: &mut TcpStream, response: &Response| {
            write_response(
                writer,
                response,
                &response.body,
                response.body.len(),
                keep_alive,
                head_only,
            )
        };
        let result = match fault {
            Fault::None => {
                let response = answer(shared);
                send(&mut writer, &response)
            }
            Fault::Refuse => return,
            Fault::Hang => {
                // Never answer; let go when the fault is lifted or the simulator stops.
                while !shared.stopping() && ep.fault_for(&request.path) == Fault::Hang {
                    std::thread::sleep(Duration::from_millis(20));
                }
                return;
            }
            Fault::Slow(delay) => {
                if !shared.pause(delay) {
                    return;
                }
                let response = answer(shared);
                send(&mut writer, &response)
            }
            Fault::Status(code) => {
                let response = match ep.role {
                    Role::Kube => kube::fault_status(code),
                    Role::Node(_) => docker::fault_status(code),
                };
                send(&mut writer, &response)
            }
            Fault::Malformed => {
                let body = b"{\"kind\": \"List\", \"items\": [ {\"metadata\": oops }, ]\n<html>not json</html>";
                let response = Response::json(200, body.to_vec());
                write_response(
                    &mut writer,
                    &response,
                    body,
                    body.len(),
                    keep_alive,
                    head_only,
                )
            }
            Fault::Truncated => {
                let mut response = answer(shared);
                let cut = response.body.len() / 2;
                response.body.truncate(cut);
                write_response(
                    &mut writer,
                    &response,
                    &response.body,
                    cut,
                    keep_alive,
                    head_only,
                )
            }
            Fault::WrongTypes | Fault::Duplicate => {
                let response = answer(shared);
                let body = if fault == Fault::WrongTypes {
                    mangle::wrong_types(&response.body)
                } else {
                    mangle::duplicate(&response.body)
                };
                write_response(
                    &mut writer,
                    &response,
                    &body,
                    body.len(),
                    keep_alive,
                    head_only,
                )
            }
            Fault::Vanish => {
                let response = mangle::vanished(&request.path);
                send(&mut writer, &response)
            }
            Fault::Huge(len) => {
                let _ = mangle::write_huge(&mut writer, len);
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
            Fault::CloseMidBody => {
                let response = answer(shared);
                let half = &response.body[..response.body.len() / 2];
                let _ = write_response(
                    &mut writer,
                    &response,
                    half,
                    response.body.len(),
                    true,
                    head_only,
                );
                let _ = writer.shutdown(Shutdown::Both);
                return;
            }
        };
        if result.is_err() || !keep_alive {
            let _ = writer.shutdown(Shutdown::Write);
            return;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_targets_and_decodes_queries() {
        let (path, query) =
            parse_target("/api/v1/pods?limit=500&continue=abc%3D&watch&a=b+c").unwrap();
        assert_eq!(path, "/api/v1/pods");
        assert_eq!(
            query,
            vec![
                ("limit".into(), "500".into()),
                ("continue".into(), "abc=".into()),
                ("watch".into(), "".into()),
                ("a".into(), "b c".into())
            ]
        );
        assert!(parse_target("/api/v1/pods?limit=%zz").is_err());
    }
}
