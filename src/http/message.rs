//! Requests and responses as handlers see them: plain values, so that most HTTP behaviour
//! is a function from one to the other, tested without sockets.

use std::sync::Arc;

use cluster_insight_wire::head::{self, Version};

use super::body::Body;
use super::stream::EventStream;

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
    pub(crate) method: Method,
    pub target: String,
    pub(crate) version: Version,
    pub(crate) headers: Vec<(String, String)>,
}

impl Method {
    fn from_name(name: String) -> Method {
        match name.as_str() {
            "GET" => Method::Get,
            "HEAD" => Method::Head,
            _ => Method::Other(name),
        }
    }
}

impl Request {
    /// A request with no headers, for handlers called directly.
    #[cfg(test)]
    pub(crate) fn get(target: &str) -> Request {
        Request {
            method: Method::Get,
            target: target.to_string(),
            version: Version::Http11,
            headers: Vec::new(),
        }
    }

    /// The request of a parsed head.
    pub(crate) fn from_head(head: head::RequestHead) -> Request {
        Request {
            method: Method::from_name(head.method),
            target: head.target,
            version: head.version,
            headers: head.headers,
        }
    }

    /// Adds a header; for building requests by hand.
    #[cfg(test)]
    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of a header, matched case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        head::header(&self.headers, name)
    }

    /// The query of the target (after `?`, still percent-encoded), if it has one.
    pub(crate) fn query(&self) -> Option<&str> {
        origin_form(&self.target).split_once('?').map(|(_, q)| q)
    }

    /// The path of the target, also of an absolute-form target (`http://host/path`), which
    /// a server must accept (RFC 9112 §3.2.2). (The minion's allow-list reads `target`
    /// itself, and refuses that form.)
    pub fn path(&self) -> &str {
        match origin_form(&self.target).split('?').next() {
            // `http://host` and `http://host?q` name the root.
            Some("") | None if self.target.contains("://") => "/",
            Some(path) => path,
            None => "",
        }
    }
}

/// The origin form (`/path?query`, or `?query` for the root) of an absolute-form target
/// (`http://host/path?query`); other targets as they are.
fn origin_form(target: &str) -> &str {
    let scheme_end = ["http://", "https://"].iter().find_map(|scheme| {
        target
            .get(..scheme.len())
            .filter(|s| s.eq_ignore_ascii_case(scheme))
            .map(|_| scheme.len())
    });
    let Some(start) = scheme_end else {
        return target;
    };
    let rest = &target[start..];
    match rest.find(['/', '?']) {
        Some(i) => &rest[i..],
        None => "",
    }
}

/// A response as handlers build it. `Content-Length` and `Connection` are the server's;
/// handlers set the rest. (A handler answering HEAD may set `Content-Length` to the length
/// the GET body would have; it is kept then.)
#[derive(Debug, Clone)]
pub struct Response {
    pub(crate) status: u16,
    pub(crate) headers: Vec<(String, String)>,
    pub body: Body,
    /// What the server sends after `body`, for as long as the connection lasts (a stream of
    /// events); the answer then has no length and closes when the stream ends.
    pub(crate) stream: Option<EventStream>,
}

impl Response {
    pub fn new(status: u16, content_type: &str, body: Body) -> Response {
        Response {
            status,
            headers: vec![("Content-Type".to_string(), content_type.to_string())],
            body,
            stream: None,
        }
    }

    /// This answer, going on with what `stream` sends after its body.
    pub fn with_stream(mut self, stream: EventStream) -> Response {
        self.stream = Some(stream);
        self
    }

    pub(crate) fn with_header(mut self, name: &str, value: &str) -> Response {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of a header, matched case-insensitively.
    pub(crate) fn header(&self, name: &str) -> Option<&str> {
        head::header(&self.headers, name)
    }

    /// The error answer of every endpoint (contract §2): the JSON error body with `status`.
    pub(crate) fn error(status: u16, message: &str) -> Response {
        Response::new(
            status,
            "application/json",
            Body::Owned(cluster_insight_wire::error_body(message).into_bytes()),
        )
    }
}

/// A handler shared by every worker thread.
pub type Handler = Arc<dyn Fn(&Request) -> Response + Send + Sync>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absolute_form_becomes_origin_form() {
        for (given, path) in [
            ("http://host/cluster", "/cluster"),
            ("HTTP://host:5555/cluster?type=pods", "/cluster"),
            ("https://host", "/"),
            ("http://host?x=1", "/"),
            ("/cluster?x", "/cluster"),
            ("*", "*"),
            ("httpx://host/a", "httpx://host/a"),
        ] {
            assert_eq!(Request::get(given).path(), path, "{given}");
        }
    }
}
