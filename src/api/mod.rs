//! The master's REST API (contract §2): a function from a request and the published
//! state to a response. Handlers never touch the network; they read the latest snapshot,
//! whose bodies were serialized when it was published.
//!
//! [`handler`] is the whole API as the server runs it: the routes of [`handle`] inside the
//! layers every answer passes through (read-only methods, conditional GET, CORS, an access
//! log). The routes' failures are `ApiError`s, mapped to statuses in one place; the layers
//! answer 405 and 304 themselves.

mod assets;
mod changes;
mod error;
mod graph;
mod home;
mod metrics;
mod params;
mod status;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use parking_lot::Mutex;

use crate::auth::{self, Authorizer};
use crate::graph::Kind;
use crate::http::{layers, Body, Handler, Request, Response};
use crate::publish::snapshot::Snapshot;
use crate::publish::Shared;
use cluster_insight_wire::percent;
use cluster_insight_wire::time::rfc3339_millis;
use error::ApiError;
use graph::Form;

/// What the handlers read.
pub(crate) struct ApiState {
    pub(crate) shared: Arc<Shared>,
    /// The `/version` string.
    pub(crate) version: String,
    pub cluster_name: String,
    /// Answers by route and status, for `/metrics`.
    pub(crate) requests: metrics::RequestCounts,
    /// Who may read.
    pub(crate) auth: Arc<Authorizer>,
    /// The last snapshot of an earlier time made for `at=`.
    pub(crate) past: Mutex<Option<Arc<Snapshot>>>,
    /// Held while a snapshot of an earlier time is being made.
    pub(crate) making_past: Mutex<()>,
    /// Clients following the change stream now.
    pub(crate) streams: Arc<AtomicUsize>,
}

const JSON: &str = "application/json";

/// The API as served: [`handle`] with every layer.
pub(crate) fn handler(state: Arc<ApiState>) -> Handler {
    let counted = Arc::clone(&state);
    let state_auth = Arc::clone(&state.auth);
    let routes: Handler = Arc::new(move |request: &Request| handle(&state, request));
    let layered = layers::cors(auth::layer(
        Arc::clone(&state_auth),
        // The map's files hold no cluster data: every caller may read them.
        assets::is_asset,
        layers::read_only(layers::conditional(routes)),
    ));
    // Every answer is counted as it leaves, 304s and refusals of the layers included.
    let counting: Handler = Arc::new(move |request: &Request| {
        let response = layered(request);
        counted.requests.count(request.path(), response.status);
        response
    });
    layers::access_log("api", counting)
}

/// Answers one GET or HEAD request (the layers of [`handler`] refuse other methods).
pub(crate) fn handle(state: &ApiState, request: &Request) -> Response {
    route(state, request).unwrap_or_else(|e| e.response())
}

fn route(state: &ApiState, request: &Request) -> Result<Response, ApiError> {
    let decoded = percent::decode_utf8(request.path()).ok_or(ApiError::BadPath)?;
    let path = decoded.as_str();
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    let now = now_ms();
    // The graph's endpoints read their own parameters; the others take none.
    if !path.starts_with("/cluster") && path != "/debug" {
        params::Params::of(request, &[])?;
    }
    if let Some(answer) = assets::answer(request, path) {
        return Ok(answer);
    }
    Ok(match path {
        "/api" => home::page(state),
        "/healthz" => json(
            serde_json::json!({"success": true, "timestamp": rfc3339_millis(now), "health": "OK"}),
        ),
        "/readyz" => match not_ready(state, now) {
            None => json(
                serde_json::json!({"success": true, "timestamp": rfc3339_millis(now), "ready": true}),
            ),
            Some(why) => Response::error(503, &why).with_header("Cache-Control", "no-cache"),
        },
        "/version" => json(
            serde_json::json!({"success": true, "timestamp": rfc3339_millis(now), "version": state.version}),
        ),
        "/metrics" => {
            let published = state.shared.published();
            let live = metrics::Live {
                streams: state.streams.load(Ordering::SeqCst),
                changes: state.shared.changes().len(),
            };
            let body = metrics::document(
                &published.status,
                published.snapshot.as_deref(),
                &state.requests,
                &live,
                now,
            );
            Response::new(200, metrics::CONTENT_TYPE, Body::Owned(body.into_bytes()))
                .with_header("Cache-Control", "no-cache")
        }
        "/status" => {
            let published = state.shared.published();
            let body = status::document(
                &published.status,
                published.snapshot.as_deref(),
                &state.shared.changes(),
                state.shared.store_status(),
                now,
            );
            Response::new(200, JSON, Body::Owned(body.into_bytes()))
                .with_header("Cache-Control", "no-cache")
        }
        "/cluster" => graph::answer(state, request, Form::Cluster)?,
        "/cluster/resources" => graph::answer(state, request, Form::Resources)?,
        "/cluster/changes" => changes::feed(state, request)?,
        "/cluster/changes/stream" => changes::stream(state, request)?,
        "/debug" => graph::answer(state, request, Form::Debug)?,
        _ => match path.strip_prefix("/cluster/resources/") {
            Some(rest) => {
                let (name, id_rest) = match rest.split_once('/') {
                    Some((name, id_rest)) => (name, Some(id_rest)),
                    None => (rest, None),
                };
                let kind = Kind::from_type_name(name)
                    .ok_or_else(|| ApiError::UnknownType(name.to_string()))?;
                match id_rest {
                    // `/cluster/resources/pods/default/web-1`: the ID after its type.
                    Some(id_rest) => graph::one(state, request, kind, id_rest)?,
                    // Every queryable type has a body in every snapshot made since it was
                    // added (an `--extra-kinds` kind is added during a refresh).
                    None => graph::answer(state, request, Form::Type(kind))?,
                }
            }
            None => return Err(ApiError::NoSuchEndpoint(path.to_string())),
        },
    })
}

/// Why the master should not be sent traffic, if it should not: it has no snapshot yet, or
/// no Kubernetes list has succeeded for three refresh intervals (or three of its last
/// refreshes, when those take longer), so what it serves is going stale.
fn not_ready(state: &ApiState, now: i64) -> Option<String> {
    let published = state.shared.published();
    if published.snapshot.is_none() {
        return Some("no snapshot yet: the first refresh has not finished".to_string());
    }
    let status = &published.status;
    let window = status
        .refresh_interval
        .max(status.last_refresh_duration)
        .saturating_mul(3);
    let window_ms = i64::try_from(window.as_millis()).unwrap_or(i64::MAX);
    let last_ok = status
        .kubernetes
        .values()
        .filter_map(|s| s.last_ok_ms)
        .max();
    match last_ok {
        None => Some("the Kubernetes API has never been listed successfully".to_string()),
        Some(at) if now.saturating_sub(at) > window_ms => Some(format!(
            "no Kubernetes list has succeeded for {} s (since {})",
            now.saturating_sub(at) / 1000,
            rfc3339_millis(at)
        )),
        Some(_) => None,
    }
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

fn json(value: serde_json::Value) -> Response {
    Response::new(200, JSON, Body::Owned(value.to_string().into_bytes()))
}

fn now_ms() -> i64 {
    cluster_insight_wire::time::now_millis()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::http::Method;

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

    fn state() -> Arc<ApiState> {
        Arc::new(ApiState {
            shared: Arc::new(Shared::default()),
            version: "v".into(),
            cluster_name: "<c>".into(),
            requests: Default::default(),
            auth: Arc::new(Authorizer::Open),
            past: Mutex::new(None),
            making_past: Mutex::new(()),
            streams: Default::default(),
        })
    }

    #[test]
    fn paths_are_percent_decoded_once() {
        let api = handler(state());
        assert_eq!(api(&Request::get("/cluster/resources/%50ods")).status, 503);
        assert_eq!(api(&Request::get("/%zz")).status, 400);
        assert_eq!(api(&Request::get("/a%ff")).status, 400);
        assert_eq!(api(&Request::get("/cluster%252F")).status, 404);
    }

    #[test]
    fn before_the_first_snapshot_graph_endpoints_say_503() {
        let api = handler(state());
        for path in [
            "/cluster",
            "/cluster/resources",
            "/cluster/resources/pods",
            "/debug",
        ] {
            let r = api(&Request::get(path));
            assert_eq!(r.status, 503, "{path}");
            assert_eq!(r.header("Retry-After"), Some("2"));
            assert_eq!(r.header("Access-Control-Allow-Origin"), Some("*"));
        }
        assert_eq!(api(&Request::get("/healthz")).status, 200);
        assert_eq!(api(&Request::get("/status")).status, 200);
        let home = api(&Request::get("/api"));
        assert!(String::from_utf8_lossy(&home.body.to_vec()).contains("Cluster Insight: &lt;c&gt;"));
    }

    #[test]
    fn unknown_types_and_methods() {
        let api = handler(state());
        let r = api(&Request::get("/cluster/resources/widgets"));
        assert_eq!(r.status, 404);
        assert!(String::from_utf8_lossy(&r.body.to_vec()).contains("rcontrollers"));
        assert_eq!(api(&Request::get("/cluster/resources/cluster")).status, 404);
        let mut post = Request::get("/cluster");
        post.method = Method::Other("POST".into());
        let r = api(&post);
        assert_eq!((r.status, r.header("Allow")), (405, Some("GET, HEAD")));
        assert_eq!(api(&Request::get("/nope")).status, 404);
    }
}
