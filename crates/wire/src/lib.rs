//! The HTTP/1.1 wire format as every part of Cluster Insight reads and writes it: the
//! master's and the minion's server, the client that reads node agents and Docker daemons,
//! and the cluster simulator's fault-injecting server.
//!
//! One grammar for all of them, so that what one side accepts the other writes:
//! - [`head`]: request and response heads parsed with `httparse` (strict: no obsolete line
//!   folding, no whitespace before a colon, one space between the parts of the first line),
//!   read from blocking readers or from bytes gathered by a non-blocking server, and
//!   written back out with header values that cannot split a head;
//! - [`body`]: bodies framed by `Content-Length`, `Transfer-Encoding: chunked` or the end
//!   of the connection, read under a size cap that is enforced before memory is taken;
//! - [`percent`]: one level of percent-decoding (strict) and encoding;
//! - [`status`]: reason phrases;
//! - [`time`]: RFC 3339 timestamps in UTC, as every JSON answer writes them;
//! - [`error_body`]: the JSON error document every endpoint of the project answers with.
//!
//! No sockets here: callers own their connections, timeouts and threads.

#![forbid(unsafe_code)]

pub mod body;
pub mod head;
pub mod percent;
pub mod status;
pub mod time;

/// The JSON error body of every endpoint (contract §2):
/// `{"success": false, "timestamp": NOW, "error_message": MESSAGE}`.
pub fn error_body(message: &str) -> String {
    serde_json::json!({
        "success": false,
        "timestamp": time::rfc3339(std::time::SystemTime::now()),
        "error_message": message,
    })
    .to_string()
}

#[cfg(test)]
mod tests {
    #[test]
    fn error_bodies_are_json_with_the_message() {
        let body: serde_json::Value =
            serde_json::from_str(&super::error_body("no \"such\" thing")).unwrap();
        assert_eq!(body["success"], false);
        assert_eq!(body["error_message"], "no \"such\" thing");
        let stamp = body["timestamp"].as_str().unwrap();
        assert!(
            super::time::parse_rfc3339_millis(stamp).is_some(),
            "{stamp}"
        );
    }
}
