//! Our own small HTTP/1.1 client, over a Unix socket (the local Docker daemon) or TCP
//! (a node's minion). INTERFACE STUB: to be implemented.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

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
    pub connect_timeout: Duration,
    /// Applies to every read and write on the socket.
    pub io_timeout: Duration,
    /// Total time allowed for one request, headers and body.
    pub request_timeout: Duration,
    pub max_body: usize,
}

impl Default for ClientConfig {
    fn default() -> Self {
        ClientConfig {
            connect_timeout: Duration::from_secs(2),
            io_timeout: Duration::from_secs(5),
            request_timeout: Duration::from_secs(10),
            max_body: 64 << 20,
        }
    }
}

/// A complete response.
#[derive(Debug, Clone)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// Why a request failed, by what the caller can do about it.
#[derive(Debug)]
pub enum Error {
    Connect(std::io::Error),
    Timeout,
    Io(std::io::Error),
    Protocol(String),
    BodyTooLarge { limit: usize },
}

impl std::fmt::Display for Error {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Error::Connect(e) => write!(f, "cannot connect: {e}"),
            Error::Timeout => write!(f, "timed out"),
            Error::Io(e) => write!(f, "I/O error: {e}"),
            Error::Protocol(what) => write!(f, "invalid HTTP response: {what}"),
            Error::BodyTooLarge { limit } => write!(f, "response body larger than {limit} bytes"),
        }
    }
}

impl std::error::Error for Error {}

/// A client for one endpoint. Safe to share between threads; keeps idle connections for reuse.
pub struct Client {
    endpoint: Endpoint,
    config: ClientConfig,
}

impl Client {
    pub fn new(endpoint: Endpoint, config: ClientConfig) -> Client {
        Client { endpoint, config }
    }

    pub fn endpoint(&self) -> &Endpoint {
        &self.endpoint
    }

    /// GET `path_and_query` (already encoded).
    pub fn get(&self, path_and_query: &str) -> Result<Response, Error> {
        self.request("GET", path_and_query)
    }

    /// Sends a request without a body. For HEAD, the response has no body.
    pub fn request(&self, method: &str, path_and_query: &str) -> Result<Response, Error> {
        let _ = (method, path_and_query, &self.config);
        Err(Error::Protocol("not implemented yet".into()))
    }
}
