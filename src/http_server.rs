//! The HTTP server layer: the only module that knows which server crate we use (tiny_http).
//!
//! Everything above it — the master's REST API, the minion's proxy, the cluster simulator —
//! is written as a handler, a plain function from [`Request`] to [`Response`], so most HTTP
//! behaviour is tested without sockets. This module owns the listening socket and a fixed
//! pool of worker threads that take parsed requests from tiny_http and run the handler.
//!
//! A panic inside a handler is contained here: that request gets a 500 and the worker lives
//! on. The measured hazards of tiny_http under hostile clients are listed in ARCHITECTURE.md.

use std::io::{self, Cursor};
use std::net::{SocketAddr, TcpListener};
use std::panic::{catch_unwind, AssertUnwindSafe};
use std::sync::Arc;
use std::thread::JoinHandle;

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

/// A response as handlers build it.
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

/// A listening server with its worker threads. Dropping it does not stop it; call
/// [`RunningServer::shutdown`] for that (tests do, the binary runs until killed).
pub struct RunningServer {
    server: Arc<tiny_http::Server>,
    workers: Vec<JoinHandle<()>>,
    local_addr: SocketAddr,
}

impl RunningServer {
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting, lets the workers finish the request in hand, and joins them.
    pub fn shutdown(self) {
        self.server.unblock();
        for _ in 1..self.workers.len() {
            // unblock() wakes one waiter per call.
            self.server.unblock();
        }
        for worker in self.workers {
            let _ = worker.join();
        }
    }

    /// Blocks until every worker has ended (they end only on shutdown).
    pub fn join(self) {
        for worker in self.workers {
            let _ = worker.join();
        }
    }
}

/// Binds `addr` and serves `handler` from `workers` threads named `name-N`.
pub fn serve(
    addr: SocketAddr,
    workers: usize,
    name: &str,
    handler: Handler,
) -> io::Result<RunningServer> {
    let listener = TcpListener::bind(addr)?;
    serve_listener(listener, workers, name, handler)
}

/// Serves on a listener the caller has already bound (so it can learn the port first).
pub fn serve_listener(
    listener: TcpListener,
    workers: usize,
    name: &str,
    handler: Handler,
) -> io::Result<RunningServer> {
    let local_addr = listener.local_addr()?;
    let server = tiny_http::Server::from_listener(listener, None)
        .map_err(|e| io::Error::other(format!("cannot start HTTP server: {e}")))?;
    let server = Arc::new(server);
    let mut handles = Vec::with_capacity(workers.max(1));
    for n in 0..workers.max(1) {
        let server = Arc::clone(&server);
        let handler = Arc::clone(&handler);
        let handle = std::thread::Builder::new()
            .name(format!("{name}-{n}"))
            .spawn(move || worker_loop(&server, &handler))?;
        handles.push(handle);
    }
    Ok(RunningServer {
        server,
        workers: handles,
        local_addr,
    })
}

fn worker_loop(server: &tiny_http::Server, handler: &Handler) {
    loop {
        let raw = match server.recv() {
            Ok(raw) => raw,
            // recv fails only once the server is unblocked for shutdown.
            Err(_) => return,
        };
        let request = convert_request(&raw);
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
                internal_error()
            }
        };
        if let Err(e) = raw.respond(convert_response(response)) {
            log::debug!("could not send response to {:?}: {e}", request.remote);
        }
    }
}

fn convert_request(raw: &tiny_http::Request) -> Request {
    let method = match raw.method() {
        tiny_http::Method::Get => Method::Get,
        tiny_http::Method::Head => Method::Head,
        other => Method::Other(other.as_str().to_string()),
    };
    let headers = raw
        .headers()
        .iter()
        .map(|h| {
            (
                h.field.as_str().as_str().to_string(),
                h.value.as_str().to_string(),
            )
        })
        .collect();
    Request {
        method,
        target: raw.url().to_string(),
        headers,
        remote: raw.remote_addr().copied(),
    }
}

fn internal_error() -> Response {
    Response::new(
        500,
        "application/json",
        Body::Owned(br#"{"success": false, "error_message": "internal error"}"#.to_vec()),
    )
}

fn convert_response(response: Response) -> tiny_http::Response<Cursor<Body>> {
    let len = response.body.as_bytes().len();
    let headers = response
        .headers
        .iter()
        .filter_map(|(n, v)| tiny_http::Header::from_bytes(n.as_bytes(), v.as_bytes()).ok())
        .collect();
    tiny_http::Response::new(
        tiny_http::StatusCode(response.status),
        headers,
        Cursor::new(response.body),
        Some(len),
        None,
    )
}

impl AsRef<[u8]> for Body {
    fn as_ref(&self) -> &[u8] {
        self.as_bytes()
    }
}
