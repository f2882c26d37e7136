//! `/`: a page saying what this is, with a link to every endpoint, written from the table
//! of kinds.

use super::ApiState;
use crate::graph::Kind;
use crate::http::{Body, Response};
use cluster_insight_wire::time::rfc3339_millis;

/// The names `/cluster/resources/TYPE` accepts, for error messages.
pub(crate) fn valid_types() -> String {
    let names: Vec<&str> = Kind::queryable().map(Kind::name).collect();
    let aliases: Vec<&str> = Kind::queryable()
        .flat_map(|k| std::iter::once(k.info().plural).chain(k.info().aliases.iter().copied()))
        .collect();
    format!("{} (any case), {}", names.join(", "), aliases.join(", "))
}

pub(crate) fn page(state: &ApiState) -> Response {
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
    let mut endpoints: Vec<(String, String)> = vec![
        (
            "/cluster".into(),
            "the whole context graph: resources and relations (JSON)".into(),
        ),
        (
            "/cluster/resources".into(),
            "all resources, without relations".into(),
        ),
    ];
    for kind in Kind::queryable() {
        let info = kind.info();
        endpoints.push((
            format!("/cluster/resources/{}", info.plural),
            info.summary.to_string(),
        ));
    }
    for (path, what) in [
        ("/debug", "the graph in Graphviz DOT"),
        (
            "/status",
            "the collector: last refresh, counts, health of every source",
        ),
        ("/version", "the running image and build"),
        ("/healthz", "liveness"),
    ] {
        endpoints.push((path.into(), what.into()));
    }
    let rows: String = endpoints
        .iter()
        .map(|(path, what)| {
            format!(
                "<tr><td><a href=\"{path}\">{path}</a></td><td>{}</td></tr>\n",
                html_escape(what)
            )
        })
        .collect();
    let types: Vec<&str> = Kind::queryable().map(Kind::name).collect();
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Cluster Insight: {name}</title>\
<style>body{{font-family:sans-serif;max-width:50em;margin:2em auto;padding:0 1em}}\
td{{padding:.2em 1em .2em 0}}code{{background:#eee}}</style></head><body>\n\
<h1>Cluster Insight: {name}</h1>\n\
<p>A context graph of this Kubernetes cluster: its resources ({types}) and the relations between them \
(<code>contains</code>, <code>runs</code>, <code>monitors</code>, <code>loadBalances</code>, \
<code>createdFrom</code>). The graph is refreshed every few seconds and served from the \
latest snapshot.</p>\n<p>{summary}</p>\n<table>\n{rows}</table>\n\
<p>Every JSON endpoint answers <code>ETag</code>/<code>If-None-Match</code> and \
<code>Accept-Encoding: gzip</code>.</p>\n<p><small>{version}</small></p>\n</body></html>\n",
        name = html_escape(&state.cluster_name),
        types = html_escape(&types.join(", ")),
        version = html_escape(&state.version),
    );
    Response::new(
        200,
        "text/html; charset=utf-8",
        Body::Owned(body.into_bytes()),
    )
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
