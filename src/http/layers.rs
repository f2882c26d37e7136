//! What answers get whatever their handler: wrappers around handlers, each one concern,
//! composed where a server is assembled (`api::handler`, `proxy::handler`).
//!
//! - [`read_only`]: only GET and HEAD reach the handler; anything else is 405 with `Allow`.
//! - [`cors`]: `Access-Control-Allow-Origin: *`, so that browser pages of any origin can read
//!   the answers (contract §2).
//! - [`conditional`]: an answer with an `ETag` that the client already has becomes
//!   `304 Not Modified` (RFC 9110 §13.1.2).
//! - [`access_log`]: one debug line per request: method, path, status, microseconds, bytes.

use std::sync::Arc;
use std::time::Instant;

use super::body::Body;
use super::message::{Handler, Method, Request, Response};

/// Refuses every method but GET and HEAD with 405 and `Allow: GET, HEAD`.
pub(crate) fn read_only(inner: Handler) -> Handler {
    Arc::new(move |request: &Request| match request.method {
        Method::Get | Method::Head => inner(request),
        Method::Other(ref name) => Response::error(
            405,
            &format!(
                "method {} is not allowed; use GET or HEAD",
                printable(name, 20)
            ),
        )
        .with_header("Allow", "GET, HEAD"),
    })
}

/// Adds `Access-Control-Allow-Origin: *` to every answer.
pub(crate) fn cors(inner: Handler) -> Handler {
    Arc::new(move |request: &Request| {
        inner(request).with_header("Access-Control-Allow-Origin", "*")
    })
}

/// Turns a 200 whose `ETag` matches the request's `If-None-Match` into a 304 that keeps the
/// headers a cache needs (`ETag`, `Vary`, `Cache-Control`) and drops the body.
pub(crate) fn conditional(inner: Handler) -> Handler {
    Arc::new(move |request: &Request| {
        let response = inner(request);
        let Some(tags) = request.header("If-None-Match") else {
            return response;
        };
        match response.header("ETag") {
            Some(etag) if response.status == 200 && etag_matches(tags, etag) => Response {
                status: 304,
                headers: response
                    .headers
                    .iter()
                    .filter(|(name, _)| {
                        ["ETag", "Vary", "Cache-Control"]
                            .iter()
                            .any(|kept| name.eq_ignore_ascii_case(kept))
                    })
                    .cloned()
                    .collect(),
                body: Body::Empty,
                stream: None,
            },
            _ => response,
        }
    })
}

/// `If-None-Match: "a", W/"b"` or `*`. Weak comparison, as RFC 9110 asks for this header:
/// `W/` is ignored on either side.
pub(crate) fn etag_matches(header: &str, etag: &str) -> bool {
    let etag = etag.strip_prefix("W/").unwrap_or(etag);
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Logs every request at debug level as `SERVER METHOD PATH STATUS MICROSECONDS BYTES`.
/// The query is left out: it is the client's, and may carry what a log should not keep.
pub(crate) fn access_log(server: &'static str, inner: Handler) -> Handler {
    Arc::new(move |request: &Request| {
        let started = Instant::now();
        let response = inner(request);
        if log::log_enabled!(log::Level::Debug) {
            log::debug!(
                "{server} {} {} {} {}us {}B",
                printable(request.method.as_str(), 20),
                printable(request.path(), 200),
                response.status,
                started.elapsed().as_micros(),
                response.body.len()
            );
        }
        response
    })
}

/// At most `max` characters of `s`, with control and non-ASCII characters escaped: what a
/// client sent, made safe for a log line or a message.
pub(crate) fn printable(s: &str, max: usize) -> String {
    let mut out: String = s
        .chars()
        .take(max)
        .flat_map(|c| c.escape_default())
        .collect();
    if s.chars().nth(max).is_some() {
        out.push_str("...");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok_with_etag() -> Handler {
        Arc::new(|_: &Request| {
            Response::new(200, "text/plain", Body::Owned(b"body".to_vec()))
                .with_header("ETag", "\"b\"")
                .with_header("Vary", "Accept-Encoding")
        })
    }

    #[test]
    fn etag_lists() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(etag_matches("W/\"b\"", "W/\"b\""));
        assert!(etag_matches("\"b\"", "W/\"b\""));
        assert!(!etag_matches("\"a\"", "\"b\""));
    }

    #[test]
    fn layers_compose() {
        let handler = cors(read_only(conditional(ok_with_etag())));
        let r = handler(&Request::get("/x"));
        assert_eq!(
            (r.status, r.header("Access-Control-Allow-Origin")),
            (200, Some("*"))
        );
        let r = handler(&Request::get("/x").with_header("If-None-Match", "\"a\", W/\"b\""));
        assert_eq!(r.status, 304);
        assert!(r.body.len() == 0 && r.header("Content-Type").is_none());
        assert_eq!(
            (
                r.header("ETag"),
                r.header("Vary"),
                r.header("Access-Control-Allow-Origin")
            ),
            (Some("\"b\""), Some("Accept-Encoding"), Some("*"))
        );
        let mut post = Request::get("/x");
        post.method = Method::Other("PO\nST".into());
        let r = handler(&post);
        assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
        assert!(String::from_utf8_lossy(&r.body.to_vec()).contains("PO\\\\nST"));
        assert_eq!(access_log("test", handler)(&Request::get("/x")).status, 200);
    }

    #[test]
    fn printable_escapes_and_cuts() {
        assert_eq!(printable("a\u{1}b", 10), "a\\u{1}b");
        assert_eq!(printable("abcdef", 3), "abc...");
    }
}
