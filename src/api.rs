//! The master's REST API: a pure function from a request and the published state to a
//! response. Handlers never touch the network; they read the latest snapshot, whose bodies
//! were serialized when it was published.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use crate::collector::{status_json, Shared};
use crate::graph::ResourceType;
use crate::http_server::{Body, Method, Request, Response};
use crate::snapshot::Rendered;
use crate::timefmt::rfc3339_millis;

/// What the handlers read.
pub struct ApiState {
    pub shared: Arc<Shared>,
    /// The `/version` string.
    pub version: String,
    pub cluster_name: String,
}

const JSON: &str = "application/json";

/// Answers one request.
pub fn handle(state: &ApiState, request: &Request) -> Response {
    if !matches!(request.method, Method::Get | Method::Head) {
        return error(
            405,
            &format!(
                "method {} is not allowed; use GET or HEAD",
                request.method.as_str()
            ),
        )
        .with_header("Allow", "GET, HEAD");
    }
    let Some(decoded) = percent_decode(request.path()) else {
        return error(400, "the request path is not valid percent-encoded UTF-8");
    };
    let path = decoded.as_str();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let now = now_ms();
    match path {
        "/" => home_page(state),
        "/healthz" => json(
            200,
            serde_json::json!({"success": true, "timestamp": rfc3339_millis(now), "health": "OK"}),
        ),
        "/version" => json(
            200,
            serde_json::json!({"success": true, "timestamp": rfc3339_millis(now), "version": state.version}),
        ),
        "/status" => {
            let published = state.shared.published();
            let body = status_json(&published.status, published.snapshot.as_deref(), now);
            with_common(Response::new(200, JSON, Body::Owned(body.into_bytes())))
                .with_header("Cache-Control", "no-cache")
        }
        "/cluster" | "/cluster/resources" | "/debug" => {
            snapshot_body(state, request, |s| match path {
                "/cluster" => Some(&s.cluster),
                "/cluster/resources" => Some(&s.resources),
                _ => Some(s.debug()),
            })
        }
        _ => match path.strip_prefix("/cluster/resources/") {
            Some(segment) => match ResourceType::from_path_segment(segment) {
                Some(kind) => snapshot_body(state, request, |s| s.by_type.get(&kind)),
                None => error(
                    404,
                    &format!(
                        "unknown resource type {:?}; valid types: {}",
                        truncate(segment, 64),
                        VALID_TYPES
                    ),
                ),
            },
            None => error(404, &format!("no such endpoint: {}", truncate(path, 128))),
        },
    }
}

const VALID_TYPES: &str = "Node, Pod, Service, ReplicationController, Container, Image, Process \
    (any case), nodes, pods, services, rcontrollers, replicationcontrollers, containers, images, processes";

fn snapshot_body(
    state: &ApiState,
    request: &Request,
    pick: impl Fn(&crate::snapshot::Snapshot) -> Option<&Rendered>,
) -> Response {
    let Some(snapshot) = state.shared.current() else {
        return error(503, "no snapshot yet: the first refresh has not finished")
            .with_header("Retry-After", "2");
    };
    let Some(rendered) = pick(&snapshot) else {
        return error(404, "not in this snapshot");
    };
    let gzip = accepts_gzip(request.header("Accept-Encoding"));
    let etag = if gzip {
        rendered.gzip_etag()
    } else {
        rendered.etag.clone()
    };
    let not_modified = request
        .header("If-None-Match")
        .is_some_and(|tags| etag_matches(tags, &etag));
    let response = if not_modified {
        Response {
            status: 304,
            headers: Vec::new(),
            body: Body::Empty,
        }
    } else if gzip {
        Response::new(200, rendered.content_type, Body::Shared(rendered.gzip()))
            .with_header("Content-Encoding", "gzip")
    } else {
        Response::new(200, rendered.content_type, rendered.body.clone())
    };
    with_common(response)
        .with_header("ETag", &etag)
        .with_header("Vary", "Accept-Encoding")
        .with_header("Cache-Control", "no-cache")
}

/// `If-None-Match: "a", W/"b"` or `*`. Weak comparison, as RFC 9110 asks for this header.
fn etag_matches(header: &str, etag: &str) -> bool {
    header
        .split(',')
        .map(str::trim)
        .any(|tag| tag == "*" || tag.strip_prefix("W/").unwrap_or(tag) == etag)
}

/// Whether `Accept-Encoding` allows gzip (`gzip`, `x-gzip` or `*`, with a non-zero q).
fn accepts_gzip(header: Option<&str>) -> bool {
    let Some(header) = header else { return false };
    let mut gzip: Option<bool> = None;
    let mut star: Option<bool> = None;
    for part in header.split(',') {
        let mut fields = part.split(';');
        let coding = fields.next().unwrap_or("").trim().to_ascii_lowercase();
        let q_zero = fields.any(|f| {
            let f = f.trim();
            f.strip_prefix("q=")
                .or_else(|| f.strip_prefix("Q="))
                .and_then(|q| q.trim().parse::<f32>().ok())
                .is_some_and(|q| q <= 0.0)
        });
        match coding.as_str() {
            "gzip" | "x-gzip" => gzip = Some(!q_zero),
            "*" => star = Some(!q_zero),
            _ => {}
        }
    }
    gzip.or(star).unwrap_or(false)
}

fn with_common(response: Response) -> Response {
    response.with_header("Access-Control-Allow-Origin", "*")
}

fn json(status: u16, value: serde_json::Value) -> Response {
    with_common(Response::new(
        status,
        JSON,
        Body::Owned(value.to_string().into_bytes()),
    ))
}

/// The error body of SPEC §2.
pub fn error(status: u16, message: &str) -> Response {
    json(
        status,
        serde_json::json!({
            "success": false,
            "timestamp": rfc3339_millis(now_ms()),
            "error_message": message,
        }),
    )
}

/// One level of percent-decoding; `None` for a malformed escape or a result that is not UTF-8.
fn percent_decode(path: &str) -> Option<String> {
    let bytes = path.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = path.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

fn truncate(s: &str, max: usize) -> String {
    let mut out: String = s.chars().take(max).collect();
    if out.len() < s.len() {
        out.push('…');
    }
    out
}

fn now_ms() -> i64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

fn home_page(state: &ApiState) -> Response {
    let snapshot = state.shared.current();
    let summary = match &snapshot {
        Some(s) => {
            let counts = s
                .counts
                .resources
                .iter()
                .map(|(k, v)| format!("{v} {k}"))
                .collect::<Vec<_>>()
                .join(", ");
            format!(
                "Snapshot {} taken at {}: {}.",
                s.sequence,
                rfc3339_millis(s.timestamp_ms),
                html_escape(&counts)
            )
        }
        None => "The first snapshot is still being collected.".to_string(),
    };
    let endpoints = [
        (
            "/cluster",
            "the whole context graph: resources and relations (JSON)",
        ),
        ("/cluster/resources", "all resources, without relations"),
        ("/cluster/resources/nodes", "nodes"),
        ("/cluster/resources/pods", "pods"),
        ("/cluster/resources/services", "services"),
        ("/cluster/resources/rcontrollers", "replication controllers"),
        (
            "/cluster/resources/containers",
            "containers (Docker inspect)",
        ),
        ("/cluster/resources/images", "images (Docker image inspect)"),
        ("/cluster/resources/processes", "processes (rows of ps aux)"),
        ("/debug", "the graph in Graphviz DOT"),
        (
            "/status",
            "the collector: last refresh, counts, health of every source",
        ),
        ("/version", "the running image and build"),
        ("/healthz", "liveness"),
    ];
    let rows: String = endpoints
        .iter()
        .map(|(path, what)| {
            format!("<tr><td><a href=\"{path}\">{path}</a></td><td>{what}</td></tr>\n")
        })
        .collect();
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Cluster Insight: {name}</title>\
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}\
td{{padding:.2em 1em .2em 0}}code{{background:#eee}}</style></head><body>\n\
<h1>Cluster Insight: {name}</h1>\n\
<p>A context graph of this Kubernetes cluster: its nodes, pods, services, replication \
controllers, containers, images and processes, and the relations between them \
(<code>contains</code>, <code>runs</code>, <code>monitors</code>, <code>loadBalances</code>, \
<code>createdFrom</code>). The graph is refreshed every few seconds and served from the \
latest snapshot.</p>\n<p>{summary}</p>\n<table>\n{rows}</table>\n\
<p>Every JSON endpoint answers <code>ETag</code>/<code>If-None-Match</code> and \
<code>Accept-Encoding: gzip</code>.</p>\n<p><small>{version}</small></p>\n</body></html>\n",
        name = html_escape(&state.cluster_name),
        version = html_escape(&state.version),
    );
    with_common(Response::new(
        200,
        "text/html; charset=utf-8",
        Body::Owned(body.into_bytes()),
    ))
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn gzip_negotiation() {
        assert!(accepts_gzip(Some("gzip")));
        assert!(accepts_gzip(Some("deflate, gzip;q=0.5")));
        assert!(accepts_gzip(Some("*")));
        assert!(!accepts_gzip(Some("gzip;q=0")));
        assert!(!accepts_gzip(Some("identity")));
        assert!(!accepts_gzip(Some("*, gzip;q=0")));
        assert!(!accepts_gzip(None));
    }

    #[test]
    fn paths_are_percent_decoded_once() {
        assert_eq!(
            percent_decode("/cluster/resources/%50ods").as_deref(),
            Some("/cluster/resources/Pods")
        );
        assert_eq!(percent_decode("/a%252e").as_deref(), Some("/a%2e"));
        assert_eq!(percent_decode("/a%2"), None);
        assert_eq!(percent_decode("/a%zz"), None);
        assert_eq!(percent_decode("/a%ff"), None);
        let s = state();
        assert_eq!(
            handle(&s, &Request::get("/cluster/resources/%50ods")).status,
            503
        );
        assert_eq!(handle(&s, &Request::get("/%zz")).status, 400);
    }

    #[test]
    fn etag_lists() {
        assert!(etag_matches("\"a\", \"b\"", "\"b\""));
        assert!(etag_matches("W/\"b\"", "\"b\""));
        assert!(etag_matches("*", "\"b\""));
        assert!(!etag_matches("\"a\"", "\"b\""));
    }

    fn state() -> ApiState {
        ApiState {
            shared: Arc::new(Shared::default()),
            version: "v".into(),
            cluster_name: "<c>".into(),
        }
    }

    #[test]
    fn before_the_first_snapshot_graph_endpoints_say_503() {
        let s = state();
        for path in [
            "/cluster",
            "/cluster/resources",
            "/cluster/resources/pods",
            "/debug",
        ] {
            let r = handle(&s, &Request::get(path));
            assert_eq!(r.status, 503, "{path}");
            assert_eq!(r.header("Retry-After"), Some("2"));
        }
        assert_eq!(handle(&s, &Request::get("/healthz")).status, 200);
        assert_eq!(handle(&s, &Request::get("/status")).status, 200);
        let home = handle(&s, &Request::get("/"));
        assert!(String::from_utf8_lossy(&home.body.to_vec()).contains("Cluster Insight: &lt;c&gt;"));
    }

    #[test]
    fn unknown_types_and_methods() {
        let s = state();
        let r = handle(&s, &Request::get("/cluster/resources/widgets"));
        assert_eq!(r.status, 404);
        assert!(String::from_utf8_lossy(&r.body.to_vec()).contains("rcontrollers"));
        let mut post = Request::get("/cluster");
        post.method = Method::Other("POST".into());
        let r = handle(&s, &post);
        assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
        assert_eq!(handle(&s, &Request::get("/nope")).status, 404);
    }
}
