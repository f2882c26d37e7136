//! Watches of the simulated Kubernetes API, as the real API server serves them: every change
//! of a listed object is an event in a log ordered by resource version; `?watch=1` streams a
//! type's events after `resourceVersion` (or, without one, the objects there are now as
//! `ADDED`, then what follows), one JSON event per chunk, with `BOOKMARK`s when asked
//! (`allowWatchBookmarks`), until `timeoutSeconds`. A version older than the log keeps is
//! answered with an `ERROR` event holding a 410 `Expired` Status, as after the real server's
//! compaction. Faults apply to watches too: hang (no head), refuse (close), a status,
//! garbage instead of the next event, the next event cut in the middle, a pause before each
//! event; and every open watch can be dropped at once.

use std::collections::VecDeque;
use std::io::Write;
use std::net::TcpStream;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use cluster_insight_kinds::Kind;
use cluster_insight_wire::head::{self, Version};

use crate::kube::Obj;
use crate::server::{Endpoint, Request, Shared};
use crate::Fault;

/// Events kept: a resume from before the oldest is a 410, as after compaction.
const KEPT: usize = 50_000;
/// Between bookmarks, when the client allows them (the real server: about a minute).
const BOOKMARK_EVERY: Duration = Duration::from_secs(1);
/// The longest a watch lasts when the client names no `timeoutSeconds` (the real server
/// picks 5 to 10 minutes).
const LONGEST: Duration = Duration::from_secs(300);
/// How often a stream looks for new events.
const POLL: Duration = Duration::from_millis(20);

/// One change of one object.
#[derive(Clone)]
pub(crate) struct Event {
    pub rv: u64,
    pub kind: Kind,
    pub what: &'static str,
    pub object: Obj,
}

/// The changes of the listed kinds, oldest first.
#[derive(Default)]
pub(crate) struct EventLog {
    events: VecDeque<Event>,
    /// Versions at or below this are gone from the log.
    compacted: u64,
}

impl EventLog {
    /// Records a change made at version `rv`; changes made at the same version get the
    /// next ones, so that every event has a version of its own (a watch resumed between two
    /// of them gets the rest). The cluster's version is then moved up to [`Self::last_rv`].
    pub(crate) fn record(&mut self, rv: u64, kind: Kind, what: &'static str, object: Obj) {
        if self.events.len() == KEPT {
            if let Some(gone) = self.events.pop_front() {
                self.compacted = gone.rv;
            }
        }
        let rv = rv.max(self.last_rv() + 1);
        self.events.push_back(Event {
            rv,
            kind,
            what,
            object,
        });
    }

    /// The version of the last change recorded (or of the compaction).
    pub(crate) fn last_rv(&self) -> u64 {
        self.events.back().map_or(self.compacted, |e| e.rv)
    }

    /// Forgets every event up to `rv`: a watch from an older version gets a 410.
    pub(crate) fn compact(&mut self, rv: u64) {
        self.events.retain(|e| e.rv > rv);
        self.compacted = self.compacted.max(rv);
    }

    fn after(&self, rv: u64, kind: Kind) -> impl Iterator<Item = &Event> {
        let start = self.events.partition_point(|e| e.rv <= rv);
        self.events.range(start..).filter(move |e| e.kind == kind)
    }
}

/// `?watch=1` or `?watch=true`.
pub(crate) fn is_watch(req: &Request) -> bool {
    matches!(req.param("watch"), Some("1" | "true"))
}

/// An object of a list (no `kind`, no `apiVersion`) as an event's object, which has both.
fn with_kind(json: &str, kind: &str, api_version: &str) -> String {
    let rest = json.strip_prefix('{').unwrap_or(json);
    let sep = if rest.starts_with('}') { "" } else { "," };
    format!("{{\"kind\":\"{kind}\",\"apiVersion\":\"{api_version}\"{sep}{rest}")
}

/// An event's object: with its kind, and the event's version as its `resourceVersion`
/// (where a client resumes after it).
fn event_object(json: &str, kind: &str, api_version: &str, rv: u64) -> String {
    let text = with_kind(json, kind, api_version);
    match serde_json::from_str::<serde_json::Value>(&text) {
        Ok(mut value) => {
            if let Some(meta) = value.get_mut("metadata").and_then(|m| m.as_object_mut()) {
                meta.insert("resourceVersion".to_string(), rv.to_string().into());
            }
            value.to_string()
        }
        Err(_) => text,
    }
}

fn event_line(what: &str, object: &str) -> String {
    format!("{{\"type\":\"{what}\",\"object\":{object}}}\n")
}

fn write_chunk(out: &mut TcpStream, data: &[u8]) -> std::io::Result<()> {
    let mut chunk = format!("{:x}\r\n", data.len()).into_bytes();
    chunk.extend_from_slice(data);
    chunk.extend_from_slice(b"\r\n");
    out.write_all(&chunk)?;
    out.flush()
}

/// Sends one event line as the fault in force says: whole, after a pause, as garbage, or
/// cut in the middle. False when the stream is over.
fn send(ep: &Endpoint, req: &Request, out: &mut TcpStream, line: &str) -> bool {
    match ep.fault_for(&req.path) {
        Fault::Malformed => {
            let _ = write_chunk(
                out,
                b"{\"type\":\"MODIFIED\",\"object\":<html>oops</html>\n",
            );
            false
        }
        Fault::Truncated | Fault::CloseMidBody => {
            let _ = write_chunk(out, &line.as_bytes()[..line.len() / 2]);
            false
        }
        Fault::Slow(delay) => {
            std::thread::sleep(delay);
            write_chunk(out, line.as_bytes()).is_ok()
        }
        _ => write_chunk(out, line.as_bytes()).is_ok(),
    }
}

/// Serves one watch request on `out`, to its end; the connection is closed after.
pub(crate) fn serve(shared: &Shared, ep: &Endpoint, req: &Request, out: &mut TcpStream) {
    shared.counters.kube_watch.fetch_add(1, Ordering::Relaxed);
    let epoch = shared.watch_epoch.load(Ordering::SeqCst);
    let fault = ep.fault_for(&req.path);
    match fault {
        Fault::Refuse => return,
        Fault::Hang => {
            // Not even the head, as a hung server's lists: until the fault is lifted or the
            // simulator stops.
            while !shared.stopping() && ep.fault_for(&req.path) == Fault::Hang {
                std::thread::sleep(POLL);
            }
            return;
        }
        Fault::Status(code) => {
            let response = crate::kube::fault_status(code);
            let _ = crate::server::write_whole(out, &response);
            return;
        }
        // As slow a head as a list's; the events are slow too.
        Fault::Slow(delay) if !shared.pause(delay) => return,
        _ => {}
    }
    let scope = match crate::kube::watch_scope(shared, req) {
        Ok(scope) => scope,
        Err(response) => {
            let _ = crate::server::write_whole(out, &response);
            return;
        }
    };
    let mut head_bytes = Vec::new();
    head::write_response_head(
        &mut head_bytes,
        Version::Http11,
        200,
        [
            ("Content-Type", "application/json"),
            ("Transfer-Encoding", "chunked"),
            ("Cache-Control", "no-cache, private"),
        ],
        None,
        false,
    );
    if out.write_all(&head_bytes).is_err() {
        return;
    }
    let bookmarks = matches!(req.param("allowWatchBookmarks"), Some("true" | "1"));
    let timeout = req
        .param("timeoutSeconds")
        .and_then(|t| t.parse::<u64>().ok())
        .map_or(LONGEST, |s| Duration::from_secs(s).min(LONGEST));
    let started = Instant::now();
    let requested: Option<u64> = req
        .param("resourceVersion")
        .filter(|v| !v.is_empty() && *v != "0")
        .and_then(|v| v.parse().ok());
    // What to send first: the objects there are now (no version given), or a 410.
    let mut sent_rv = {
        let state = shared.state.read();
        let now = state.cluster.rv;
        match requested {
            Some(rv) if rv < state.kube.events.compacted && rv < now => {
                let status = format!(
                    "{{\"kind\":\"Status\",\"apiVersion\":\"v1\",\"metadata\":{{}},\"status\":\"Failure\",\"message\":\"too old resource version: {rv} ({})\",\"reason\":\"Expired\",\"code\":410}}",
                    state.kube.events.compacted
                );
                let _ = write_chunk(out, event_line("ERROR", &status).as_bytes());
                let _ = out.write_all(b"0\r\n\r\n");
                return;
            }
            Some(rv) => rv,
            None => {
                for object in scope.current(&state.kube) {
                    let line = event_line(
                        "ADDED",
                        &with_kind(&object.json, &scope.kind_name, &scope.api_version),
                    );
                    if write_chunk(out, line.as_bytes()).is_err() {
                        return;
                    }
                }
                now
            }
        }
    };
    let mut last_bookmark = Instant::now();
    loop {
        if shared.stopping() || shared.watch_epoch.load(Ordering::SeqCst) != epoch {
            return;
        }
        if started.elapsed() >= timeout {
            let _ = out.write_all(b"0\r\n\r\n");
            return;
        }
        // The events after what was sent, and the version they bring the watch to, read
        // at once: a change made after this read has a higher version, sent next turn.
        let (pending, now_rv): (Vec<Event>, u64) = {
            let state = shared.state.read();
            let pending = match scope.kind {
                Some(kind) => state
                    .kube
                    .events
                    .after(sent_rv, kind)
                    .filter(|e| scope.includes(&e.object))
                    .cloned()
                    .collect(),
                None => Vec::new(),
            };
            (pending, state.cluster.rv.max(state.kube.events.last_rv()))
        };
        for event in pending {
            let line = event_line(
                event.what,
                &event_object(
                    &event.object.json,
                    &scope.kind_name,
                    &scope.api_version,
                    event.rv,
                ),
            );
            if !send(ep, req, out, &line) {
                return;
            }
            sent_rv = event.rv;
        }
        if bookmarks && last_bookmark.elapsed() >= BOOKMARK_EVERY {
            let rv = now_rv.max(sent_rv);
            let object = format!(
                "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",\"metadata\":{{\"resourceVersion\":\"{rv}\"}}}}",
                scope.kind_name, scope.api_version
            );
            if !send(ep, req, out, &event_line("BOOKMARK", &object)) {
                return;
            }
            sent_rv = rv;
            last_bookmark = Instant::now();
        }
        std::thread::sleep(POLL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn obj(name: &str) -> Obj {
        Obj {
            namespace: "default".into(),
            name: name.into(),
            json: format!("{{\"metadata\":{{\"name\":\"{name}\"}}}}"),
        }
    }

    #[test]
    fn the_log_keeps_order_and_forgets_what_is_compacted() {
        let mut log = EventLog::default();
        log.record(5, Kind::POD, "ADDED", obj("a"));
        log.record(6, Kind::NODE, "MODIFIED", obj("n"));
        log.record(7, Kind::POD, "DELETED", obj("a"));
        let pods: Vec<u64> = log.after(4, Kind::POD).map(|e| e.rv).collect();
        assert_eq!(pods, [5, 7]);
        assert_eq!(log.after(5, Kind::POD).count(), 1);
        log.compact(6);
        assert_eq!(log.compacted, 6);
        assert_eq!(
            log.after(0, Kind::POD).map(|e| e.rv).collect::<Vec<_>>(),
            [7]
        );
    }

    #[test]
    fn event_objects_name_their_kind() {
        assert_eq!(
            with_kind("{\"metadata\":{}}", "Pod", "v1"),
            "{\"kind\":\"Pod\",\"apiVersion\":\"v1\",\"metadata\":{}}"
        );
        assert_eq!(
            with_kind("{}", "Pod", "v1"),
            "{\"kind\":\"Pod\",\"apiVersion\":\"v1\"}"
        );
    }
}
