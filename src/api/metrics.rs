//! `/metrics`: the collector's account of itself and the API's requests, in the Prometheus
//! text exposition format (version 0.0.4), for scraping.
//!
//! Label values are bounded: list keys and node names come from the cluster, request paths
//! are the API's routes (a type's list counts under `/cluster/resources/{type}`, anything
//! unknown under `other`), so a client cannot grow the set of series.

use std::collections::BTreeMap;
use std::fmt::Write;

use parking_lot::Mutex;

use crate::collect::status::{CollectorStatus, SourceStatus};
use crate::publish::snapshot::Snapshot;

pub(crate) const CONTENT_TYPE: &str = "text/plain; version=0.0.4; charset=utf-8";

/// Answers by route and status since the process started.
#[derive(Default)]
pub(crate) struct RequestCounts(Mutex<BTreeMap<(&'static str, u16), u64>>);

impl RequestCounts {
    pub(crate) fn count(&self, path: &str, status: u16) {
        *self.0.lock().entry((route(path), status)).or_default() += 1;
    }
}

/// The route a request path belongs to, as a label value.
fn route(path: &str) -> &'static str {
    let path = path.split('?').next().unwrap_or("");
    let path = if path.len() > 1 {
        path.trim_end_matches('/')
    } else {
        path
    };
    match path {
        "/" => "/",
        "/healthz" => "/healthz",
        "/readyz" => "/readyz",
        "/version" => "/version",
        "/status" => "/status",
        "/metrics" => "/metrics",
        "/cluster" => "/cluster",
        "/cluster/resources" => "/cluster/resources",
        "/debug" => "/debug",
        "/cluster/changes" => "/cluster/changes",
        "/cluster/changes/stream" => "/cluster/changes/stream",
        _ if path.starts_with("/cluster/resources/") => match path.matches('/').count() {
            3 => "/cluster/resources/{type}",
            _ => "/cluster/resources/{type}/{id}",
        },
        _ => "other",
    }
}

/// A label value escaped as the format asks: backslash, double quote, line feed.
fn label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

/// One metric family: its help, its type, and its samples (labels as `name="value",…`).
struct Family<'a> {
    out: &'a mut String,
    name: &'a str,
}

impl Family<'_> {
    fn start<'a>(out: &'a mut String, name: &'a str, kind: &str, help: &str) -> Family<'a> {
        let _ = writeln!(out, "# HELP {name} {help}");
        let _ = writeln!(out, "# TYPE {name} {kind}");
        Family { out, name }
    }

    /// A sample of the family, named as the family is.
    fn sample(&mut self, labels: &[(&str, &str)], value: f64) {
        self.out.push_str(self.name);
        if !labels.is_empty() {
            self.out.push('{');
            for (i, (k, v)) in labels.iter().enumerate() {
                if i > 0 {
                    self.out.push(',');
                }
                let _ = write!(self.out, "{k}=\"{}\"", label(v));
            }
            self.out.push('}');
        }
        let _ = writeln!(self.out, " {value}");
    }
}

/// The resident memory of this process, from `/proc/self/status`.
fn resident_bytes() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let kib: f64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(kib * 1024.0)
}

/// What the live graph's endpoints hold: open streams, changes kept.
pub(crate) struct Live {
    pub(crate) streams: usize,
    pub(crate) changes: usize,
}

/// The `/metrics` body.
pub(crate) fn document(
    status: &CollectorStatus,
    snapshot: Option<&Snapshot>,
    requests: &RequestCounts,
    live: &Live,
    now_ms: i64,
) -> String {
    let mut out = String::with_capacity(4096 + 200 * status.nodes.len());
    let m = &mut out;

    let mut f = Family::start(
        m,
        "cluster_insight_refreshes_total",
        "counter",
        "Refreshes finished.",
    );
    f.sample(&[], status.refreshes as f64);
    let mut f = Family::start(
        m,
        "cluster_insight_graph_builds_total",
        "counter",
        "Graphs made, by way: built whole, or made from the last one in place or spliced.",
    );
    let builds = &status.builds;
    for (way, count) in [
        ("whole", builds.whole),
        ("in_place", builds.in_place),
        ("spliced", builds.spliced),
    ] {
        f.sample(&[("way", way)], count as f64);
    }
    if let Some(start) = status.last_refresh_start_ms {
        let mut f = Family::start(
            m,
            "cluster_insight_last_refresh_age_seconds",
            "gauge",
            "Time since the last finished refresh began (a snapshot stays while its graph is unchanged: its age is how long nothing changed).",
        );
        f.sample(&[], (now_ms - start).max(0) as f64 / 1000.0);
    }
    let mut f = Family::start(
        m,
        "cluster_insight_refresh_duration_seconds",
        "gauge",
        "How long the last refresh took.",
    );
    f.sample(&[], status.last_refresh_duration.as_secs_f64());
    let mut f = Family::start(
        m,
        "cluster_insight_refresh_phase_seconds",
        "gauge",
        "How long each phase of the last refresh took.",
    );
    for (phase, ms) in [
        ("kubernetes", status.phases.kubernetes_ms),
        ("runtimes", status.phases.runtime_ms),
        ("graph", status.phases.build_ms),
        ("render", status.phases.render_ms),
    ] {
        f.sample(&[("phase", phase)], ms as f64 / 1000.0);
    }
    let mut f = Family::start(
        m,
        "cluster_insight_refresh_calls",
        "gauge",
        "Calls the last refresh made, by kind.",
    );
    let calls = &status.calls;
    for (kind, n) in [
        ("kubernetes_page", calls.kube_pages),
        ("kubernetes_watch_event", calls.kube_events),
        ("agent_node", calls.agent_node),
        ("docker_list", calls.runtime_list),
        ("docker_inspect", calls.runtime_inspect),
        ("docker_top", calls.runtime_processes),
        ("docker_image", calls.runtime_image),
    ] {
        f.sample(&[("call", kind)], n as f64);
    }

    let sources = status
        .kubernetes
        .iter()
        .map(|(k, s)| ("kubernetes", k, s))
        .chain(status.nodes.iter().map(|(k, s)| ("node", k, s)));
    let sources: Vec<(&str, &String, &SourceStatus)> = sources.collect();
    let mut f = Family::start(
        m,
        "cluster_insight_source_up",
        "gauge",
        "Whether each source (a Kubernetes list, a node) answered in the last refresh: 1 yes, 0 no.",
    );
    for (kind, name, s) in &sources {
        let up = if s.ok || s.skipped { 1.0 } else { 0.0 };
        f.sample(&[("source", kind), ("name", name)], up);
    }
    let mut f = Family::start(
        m,
        "cluster_insight_watch_restarts_total",
        "counter",
        "Times each Kubernetes kind's watch started again, by reason: ended (the server's timeout), expired (410: listed again), dropped, cut, malformed, failed, incomplete (listed again after objects were skipped).",
    );
    for (name, s) in &status.kubernetes {
        if let Some(watch) = &s.watch {
            for (reason, n) in &watch.restarts {
                f.sample(&[("kind", name.as_str()), ("reason", reason)], *n as f64);
            }
        }
    }
    let mut f = Family::start(
        m,
        "cluster_insight_watch_events_total",
        "counter",
        "Watch events applied, by Kubernetes kind (bookmarks not counted).",
    );
    for (name, s) in &status.kubernetes {
        if let Some(watch) = &s.watch {
            f.sample(&[("kind", name.as_str())], watch.events as f64);
        }
    }
    let mut f = Family::start(
        m,
        "cluster_insight_source_failed_calls",
        "gauge",
        "Calls that failed in the last refresh, by source.",
    );
    for (kind, name, s) in &sources {
        f.sample(
            &[("source", kind), ("name", name.as_str())],
            s.failed_calls as f64,
        );
    }

    if let Some(snapshot) = snapshot {
        let mut f = Family::start(
            m,
            "cluster_insight_snapshot_age_seconds",
            "gauge",
            "Age of the snapshot being served: the time since the graph last changed.",
        );
        f.sample(&[], (now_ms - snapshot.timestamp_ms).max(0) as f64 / 1000.0);
        let mut f = Family::start(
            m,
            "cluster_insight_snapshot_sequence",
            "gauge",
            "Sequence number of the snapshot being served.",
        );
        f.sample(&[], snapshot.sequence as f64);
        let mut f = Family::start(
            m,
            "cluster_insight_resources",
            "gauge",
            "Resources in the snapshot being served, by type.",
        );
        for (kind, n) in &snapshot.counts.resources {
            f.sample(&[("type", kind)], *n as f64);
        }
        let mut f = Family::start(
            m,
            "cluster_insight_relations",
            "gauge",
            "Relations in the snapshot being served, by type.",
        );
        for (kind, n) in &snapshot.counts.relations {
            f.sample(&[("type", kind)], *n as f64);
        }
    }

    let mut f = Family::start(
        m,
        "cluster_insight_change_streams",
        "gauge",
        "Clients following /cluster/changes/stream now.",
    );
    f.sample(&[], live.streams as f64);
    let mut f = Family::start(
        m,
        "cluster_insight_history_changes",
        "gauge",
        "Changes kept for /cluster/changes and /cluster?at= (--history).",
    );
    f.sample(&[], live.changes as f64);

    let mut f = Family::start(
        m,
        "cluster_insight_http_requests_total",
        "counter",
        "Answers of the API, by route and status code.",
    );
    for ((path, code), n) in requests.0.lock().iter() {
        let code = code.to_string();
        f.sample(&[("path", path), ("code", &code)], *n as f64);
    }
    if let Some(bytes) = resident_bytes() {
        let mut f = Family::start(
            m,
            "process_resident_memory_bytes",
            "gauge",
            "Resident memory size in bytes.",
        );
        f.sample(&[], bytes);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_are_a_bounded_set_and_labels_are_escaped() {
        assert_eq!(
            route("/cluster/resources/pods"),
            "/cluster/resources/{type}"
        );
        assert_eq!(route("/cluster/"), "/cluster");
        assert_eq!(route("/anything/at/all?x=1"), "other");
        assert_eq!(label("a\"b\\c\nd"), "a\\\"b\\\\c\\nd");
    }
}
