//! `/api`: a page saying what this is, with a link to every endpoint, written from the table
//! of kinds.

use super::ApiState;
use crate::graph::{Kind, RELATION_RULES};
use crate::http::{Body, Response};
use crate::publish::snapshot::Snapshot;
use cluster_insight_wire::time::rfc3339_millis;

/// The names `/cluster/resources/TYPE` accepts, for error messages.
pub(crate) fn valid_types() -> String {
    let names: Vec<&str> = Kind::queryable().map(Kind::name).collect();
    let aliases: Vec<&str> = Kind::queryable().flat_map(Kind::other_names).collect();
    format!("{} (any case), {}", names.join(", "), aliases.join(", "))
}

pub(crate) fn page(state: &ApiState) -> Response {
    let snapshot = state.shared.current();
    let summary = match &snapshot {
        Some(s) => format!(
            "Snapshot {} taken at {}.",
            s.sequence,
            rfc3339_millis(s.timestamp_ms)
        ),
        None => "The first snapshot is still being collected.".to_string(),
    };
    let examples = snapshot.as_deref().map(Snapshot::examples);
    let link = |path: &str| format!("<a href=\"{path}\">{path}</a>");
    let mut endpoints = String::new();
    for (path, what) in [
        (
            "/cluster",
            "the whole context graph: resources and relations (JSON)",
        ),
        ("/cluster/resources", "all resources, without relations"),
        (
            "/cluster/resources/TYPE",
            "the resources of one type (below)",
        ),
        (
            "/cluster/resources/TYPE/ID-REST",
            "one resource and its relations, e.g. /cluster/resources/pods/default/web-1",
        ),
        (
            "/cluster/changes?since=SEQ",
            "every change after the snapshot with that sequence, in order",
        ),
        (
            "/cluster/changes/stream",
            "the changes as Server-Sent Events, as they are published",
        ),
        ("/debug", "the graph in Graphviz DOT"),
        (
            "/status",
            "the collector: last refresh, counts, health of every source",
        ),
        ("/version", "the running image and build"),
        ("/healthz", "liveness"),
        (
            "/readyz",
            "readiness: a snapshot, and the Kubernetes API listed lately",
        ),
        (
            "/metrics",
            "the collector and the API, in the Prometheus text format",
        ),
    ] {
        let path = if path.contains("TYPE") || path.contains('?') {
            format!("<code>{path}</code>")
        } else {
            link(path)
        };
        endpoints.push_str(&format!(
            "<tr><td>{path}</td><td>{}</td></tr>\n",
            html_escape(what)
        ));
    }
    let mut types = String::new();
    for kind in Kind::queryable() {
        let info = kind.info();
        let count = snapshot
            .as_ref()
            .and_then(|s| s.counts.resources.get(info.name).copied())
            .unwrap_or(0);
        let names: Vec<&str> = kind.other_names().collect();
        let example = examples
            .and_then(|e| e.resources.get(&kind))
            .map_or(String::new(), |id| {
                format!("<code>{}</code>", html_escape(id))
            });
        // An added kind may share its plural with a built-in one; its name is its own.
        let path = if kind.is_extra() {
            format!("/cluster/resources/{}", info.name)
        } else {
            format!("/cluster/resources/{}", info.plural)
        };
        types.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{count}</td><td>{example}</td></tr>\n",
            link(&path),
            html_escape(info.name),
            html_escape(&names.join(", ")),
        ));
    }
    let mut relations = String::new();
    let either = |types: &[&str]| {
        types
            .iter()
            .map(|t| if *t == "*" { "any" } else { t })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for (i, rule) in RELATION_RULES.iter().enumerate() {
        let example = examples
            .and_then(|e| e.relations.get(i))
            .and_then(Option::as_ref)
            .map_or(String::new(), |(from, to)| {
                format!(
                    "<code>{}</code> → <code>{}</code>",
                    html_escape(from),
                    html_escape(to)
                )
            });
        relations.push_str(&format!(
            "<tr><td><code>{}</code></td><td>{} → {}</td><td>{}</td><td>{example}</td></tr>\n",
            rule.relation.as_str(),
            html_escape(&either(rule.from)),
            html_escape(&either(rule.to)),
            html_escape(rule.when),
        ));
    }
    let body = format!(
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\
<title>Cluster Insight: {name}</title>\
<style>body{{font-family:sans-serif;max-width:72em;margin:2em auto;padding:0 1em}}\
td,th{{padding:.2em 1em .2em 0;text-align:left;vertical-align:top}}code{{background:#eee}}</style>\
</head><body>\n<h1>Cluster Insight: {name}</h1>\n\
<p>A context graph of this Kubernetes cluster: its objects, containers, images and processes, \
and the relations between them. The graph is refreshed every few seconds and served from the \
latest snapshot. {summary}</p>\n\
<h2>Endpoints</h2>\n<table>\n{endpoints}</table>\n\
<p>Every JSON endpoint answers <code>ETag</code>/<code>If-None-Match</code> and \
<code>Accept-Encoding: gzip</code>. The graph's endpoints take <code>namespace=</code>, \
<code>type=</code>, <code>labelSelector=</code> (kubectl's syntax) and <code>at=</code> (a time \
within the history kept); <code>/cluster</code> and <code>/debug</code> also \
<code>around=ID&amp;depth=N</code>.</p>\n\
<h2>Types</h2>\n<p>IDs are <code>Type:NAMESPACE/NAME</code> for namespaced objects and \
<code>Type:NAME</code> otherwise; <code>TYPE</code> is a type's name in any case or one of its \
other names. The examples come from this cluster.</p>\n<table>\n\
<tr><th>/cluster/resources/TYPE</th><th>type</th><th>other names</th><th>now</th><th>example</th></tr>\n\
{types}</table>\n\
<h2>Relations</h2>\n<table>\n\
<tr><th>relation</th><th>from → to</th><th>when</th><th>example</th></tr>\n{relations}</table>\n\
<p><small>{version}</small></p>\n</body></html>\n",
        name = html_escape(&state.cluster_name),
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
