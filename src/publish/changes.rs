//! The change log: what each published snapshot changed from the one before, kept for the
//! history's length (contract §7). The change feed answers from it, the stream sends from
//! it, and the graph as it was at an earlier time is the current one with the changes since
//! undone: history is kept as changes, never as copies of the graph.
//!
//! Each change's document is written once, when it is recorded, and shared by every feed
//! answer and every stream client that sends it. No I/O and no clock here: the time to prune
//! at comes in as an argument.

use std::collections::VecDeque;
use std::sync::Arc;

use super::snapshot::{push_range, Snapshot, Writer};
use crate::graph::diff::{self, GraphDiff};
use crate::graph::{Graph, Relation, Resource};
use crate::http::{Body, Composed, Piece};

/// What one published snapshot changed.
#[derive(Debug)]
pub(crate) struct Change {
    pub(crate) sequence: u64,
    /// The snapshot it changed, and that snapshot's time.
    pub(crate) previous: u64,
    pub(crate) previous_timestamp_ms: i64,
    /// The new snapshot's time (when its graph was built).
    pub(crate) timestamp_ms: i64,
    /// When the new snapshot was published: from then on it was the current one.
    pub(crate) published_ms: i64,
    pub(crate) diff: GraphDiff,
    /// The change document: `{"sequence":…,"previous":…,"timestamp":…,"resources":{"added":
    /// […],"changed":[…],"removed":[…]},"relations":{…}}`; resources as `/cluster` shows
    /// them, removed ones as `{"id","type"}`.
    pub(crate) document: Arc<Composed>,
    /// The document as one Server-Sent Event: `id: SEQUENCE`, `event: change`, `data: …`.
    pub(crate) event: Body,
}
/// What a change says beside its differences: which snapshot it made of which, and when.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct ChangeHead {
    pub(crate) sequence: u64,
    pub(crate) previous: u64,
    pub(crate) previous_timestamp_ms: i64,
    pub(crate) timestamp_ms: i64,
    pub(crate) published_ms: i64,
}

/// A time or sequence older than what the log keeps, or a sequence it never had.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Gone {
    /// Older than the oldest snapshot kept (its sequence and time).
    TooOld { oldest: u64, oldest_ms: i64 },
    /// Newer than the last published snapshot: another process's sequence.
    Unknown { latest: u64 },
    /// Nothing published yet.
    Empty,
}

/// The snapshot the log reaches back to: what `since=` and `at=` may name at the oldest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Oldest {
    pub(crate) sequence: u64,
    /// When it was published: from then on it was the current snapshot.
    pub(crate) published_ms: i64,
    /// Its own time (when its graph was built).
    pub(crate) timestamp_ms: i64,
}

/// The changes of the last `keep_ms`, oldest first.
#[derive(Debug)]
pub(crate) struct ChangeLog {
    base: Option<Oldest>,
    changes: VecDeque<Arc<Change>>,
    keep_ms: i64,
}

/// What a read of the log found to undo, newest first: the changes themselves, shared, so
/// that the undoing is done after the log's lock is let go.
pub(crate) struct Rewind {
    /// The sequence and time of the snapshot that was current.
    pub(crate) sequence: u64,
    pub(crate) timestamp_ms: i64,
    undone: Vec<Arc<Change>>,
}

impl Rewind {
    /// `current`'s graph with the changes undone: the graph of that snapshot.
    pub(crate) fn graph(&self, current: &Snapshot) -> Graph {
        diff::rewind(
            &current.graph,
            self.undone.iter().map(|c| &c.diff),
            self.timestamp_ms,
        )
    }
}

impl ChangeLog {
    /// A log that keeps `keep_ms` of changes.
    pub(crate) fn new(keep_ms: i64) -> ChangeLog {
        ChangeLog {
            base: None,
            changes: VecDeque::new(),
            keep_ms,
        }
    }

    /// A log holding what an earlier process kept (read back from the store), pruned to the
    /// history as of `now_ms`.
    pub(crate) fn restore(
        keep_ms: i64,
        base: Oldest,
        changes: Vec<Arc<Change>>,
        now_ms: i64,
    ) -> ChangeLog {
        let mut log = ChangeLog {
            base: Some(base),
            changes: changes.into(),
            keep_ms,
        };
        drop(log.prune(now_ms));
        log
    }

    /// Records the snapshot `next`, published at `now_ms`, and, when it follows one already
    /// recorded, what it changed (made by [`Change::between`], outside the log's lock); then
    /// forgets what is older than the history. Returns what it forgot, for the caller to
    /// drop once the lock is let go (a large change takes a while to free), and whether the
    /// log started again from `next`.
    pub(crate) fn record(
        &mut self,
        next: &Snapshot,
        change: Option<Arc<Change>>,
        now_ms: i64,
    ) -> (Vec<Arc<Change>>, bool) {
        match change {
            Some(change) if self.base.is_some() => self.changes.push_back(change),
            _ => {
                // The first snapshot (or one whose predecessor was never recorded): the log
                // starts again from it.
                self.base = Some(Oldest {
                    sequence: next.sequence,
                    published_ms: now_ms,
                    timestamp_ms: next.timestamp_ms,
                });
                return (self.changes.drain(..).collect(), true);
            }
        }
        (self.prune(now_ms), false)
    }

    /// Forgets the changes published before `now_ms - keep_ms`; the last of them becomes the
    /// oldest snapshot the log reaches back to. The latest change is always kept.
    fn prune(&mut self, now_ms: i64) -> Vec<Arc<Change>> {
        let horizon = now_ms.saturating_sub(self.keep_ms);
        let mut forgotten = Vec::new();
        while self.changes.len() > 1 && self.changes[0].published_ms < horizon {
            if let Some(dropped) = self.changes.pop_front() {
                self.base = Some(Oldest {
                    sequence: dropped.sequence,
                    published_ms: dropped.published_ms,
                    timestamp_ms: dropped.timestamp_ms,
                });
                forgotten.push(dropped);
            }
        }
        forgotten
    }

    /// The sequence of the last snapshot recorded.
    pub(crate) fn latest(&self) -> Option<u64> {
        self.changes
            .back()
            .map(|c| c.sequence)
            .or(self.base.map(|b| b.sequence))
    }

    /// The oldest snapshot the log reaches back to.
    pub(crate) fn oldest(&self) -> Option<Oldest> {
        self.base
    }

    /// How long changes are kept.
    pub(crate) fn keep_ms(&self) -> i64 {
        self.keep_ms
    }

    /// How many changes are kept.
    pub(crate) fn len(&self) -> usize {
        self.changes.len()
    }

    /// Every change after snapshot `sequence`, oldest first.
    pub(crate) fn since(&self, sequence: u64) -> Result<Vec<Arc<Change>>, Gone> {
        let start = self.position_after(sequence)?;
        Ok(self.changes.range(start..).cloned().collect())
    }

    /// Whether the changes after snapshot `sequence` are all kept.
    pub(crate) fn holds(&self, sequence: u64) -> bool {
        self.position_after(sequence).is_ok()
    }

    /// The first change after snapshot `sequence`, if one was published since.
    pub(crate) fn next_after(&self, sequence: u64) -> Result<Option<Arc<Change>>, Gone> {
        let start = self.position_after(sequence)?;
        Ok(self.changes.get(start).cloned())
    }

    /// Where the changes after `sequence` start.
    fn position_after(&self, sequence: u64) -> Result<usize, Gone> {
        let base = self.base.ok_or(Gone::Empty)?;
        let latest = self.latest().unwrap_or(base.sequence);
        if sequence < base.sequence {
            return Err(Gone::TooOld {
                oldest: base.sequence,
                oldest_ms: base.published_ms,
            });
        }
        if sequence > latest {
            return Err(Gone::Unknown { latest });
        }
        Ok(self.changes.partition_point(|c| c.sequence <= sequence))
    }

    /// What to undo to go from `current` back to the snapshot that was current at `at_ms`;
    /// `None` when that is `current` itself.
    ///
    /// The changes undone are the newest ones, back from `current`'s, while they were
    /// published after `at_ms`: a suffix of the log, so that a clock that stepped back
    /// cannot pick changes out of order.
    pub(crate) fn rewind_to(&self, current: &Snapshot, at_ms: i64) -> Result<Option<Rewind>, Gone> {
        let base = self.base.ok_or(Gone::Empty)?;
        if at_ms < base.published_ms {
            return Err(Gone::TooOld {
                oldest: base.sequence,
                oldest_ms: base.published_ms,
            });
        }
        // Changes recorded after `current` (a publish racing this read) are not undone:
        // `current` never had them.
        let undone: Vec<Arc<Change>> = self
            .changes
            .iter()
            .rev()
            .skip_while(|c| c.sequence > current.sequence)
            .take_while(|c| c.published_ms > at_ms)
            .cloned()
            .collect();
        Ok(undone.last().map(|last| Rewind {
            sequence: last.previous,
            timestamp_ms: last.previous_timestamp_ms,
            undone: undone.clone(),
        }))
    }
}

impl Change {
    /// `next`'s change from the snapshot `previous_sequence` (made at
    /// `previous_timestamp_ms`): `diff`, what it changed from that snapshot; `created_by`
    /// is the `/version` string the document's annotations carry. Its publish time is set
    /// when it is published.
    pub(crate) fn between(
        previous_sequence: u64,
        previous_timestamp_ms: i64,
        diff: GraphDiff,
        next: &Snapshot,
        created_by: &str,
    ) -> Change {
        let head = ChangeHead {
            sequence: next.sequence,
            previous: previous_sequence,
            previous_timestamp_ms,
            timestamp_ms: next.timestamp_ms,
            published_ms: next.timestamp_ms,
        };
        Change::from_parts(head, diff, created_by)
    }

    /// A change from what it says and its differences (as the store keeps it), with its
    /// document written.
    pub(crate) fn from_parts(head: ChangeHead, diff: GraphDiff, created_by: &str) -> Change {
        let writer = &mut Writer::new(created_by);
        let mut doc = Document::default();
        doc.text(format!(
            "{{\"sequence\":{},\"previous\":{},\"timestamp\":\"{}\",\"resources\":{{\"added\":[",
            head.sequence,
            head.previous,
            writer.stamp(head.timestamp_ms)
        ));
        doc.resources(writer, &diff.added);
        doc.text("],\"changed\":[".to_string());
        let after: Vec<Resource> = diff.changed.iter().map(|(_, r)| r.clone()).collect();
        doc.resources(writer, &after);
        doc.text("],\"removed\":[".to_string());
        for (i, r) in diff.removed.iter().enumerate() {
            doc.glue(|g| {
                if i > 0 {
                    g.push(b',');
                }
                g.extend_from_slice(b"{\"id\":");
                super::snapshot::write_json_string(g, &r.id);
                g.extend_from_slice(b",\"type\":\"");
                g.extend_from_slice(r.kind.name().as_bytes());
                g.extend_from_slice(b"\"}");
            });
        }
        doc.text("]},\"relations\":{\"added\":[".to_string());
        doc.relations(writer, &diff.relations_added);
        doc.text("],\"changed\":[".to_string());
        let after: Vec<Relation> = diff
            .relations_changed
            .iter()
            .map(|(_, r)| r.clone())
            .collect();
        doc.relations(writer, &after);
        doc.text("],\"removed\":[".to_string());
        doc.relations(writer, &diff.relations_removed);
        doc.text("]}}".to_string());
        let document = doc.finish();

        // One event. The document holds no line break (see `Document::resources`), so it is
        // one `data:` line.
        let mut event = Composed::default();
        event.push(Piece::owned(
            format!("id: {}\nevent: change\ndata: ", head.sequence).into_bytes(),
        ));
        event.extend(&document);
        event.push(Piece::owned(b"\n\n".to_vec()));
        Change {
            sequence: head.sequence,
            previous: head.previous,
            previous_timestamp_ms: head.previous_timestamp_ms,
            timestamp_ms: head.timestamp_ms,
            published_ms: head.published_ms,
            diff,
            document: Arc::new(document),
            event: Body::Composed(Arc::new(event)),
        }
    }

    /// What it says beside its differences.
    pub(crate) fn head(&self) -> ChangeHead {
        ChangeHead {
            sequence: self.sequence,
            previous: self.previous,
            previous_timestamp_ms: self.previous_timestamp_ms,
            timestamp_ms: self.timestamp_ms,
            published_ms: self.published_ms,
        }
    }
}

/// A change document as it is written: generated bytes gathered in one glue buffer, the
/// resources' observed text referred to, not copied.
#[derive(Default)]
struct Document {
    glue: Vec<u8>,
    /// In order: a range of the glue, or a resource's text.
    parts: Vec<Part>,
}

enum Part {
    Glue(std::ops::Range<usize>),
    Text(Arc<str>),
}

impl Document {
    fn glue(&mut self, write: impl FnOnce(&mut Vec<u8>)) {
        let range = push_range(&mut self.glue, write);
        match self.parts.last_mut() {
            Some(Part::Glue(last)) if last.end == range.start => last.end = range.end,
            _ => self.parts.push(Part::Glue(range)),
        }
    }

    fn text(&mut self, text: String) {
        self.glue(|g| g.extend_from_slice(text.as_bytes()));
    }

    fn resources(&mut self, writer: &mut Writer, resources: &[Resource]) {
        for (i, r) in resources.iter().enumerate() {
            self.glue(|g| {
                if i > 0 {
                    g.push(b',');
                }
                writer.resource_prefix(g, r);
            });
            // A line break in observed text can only be whitespace between tokens (JSON
            // escapes it inside strings); an event's data must not have one, so such text
            // is copied with spaces instead.
            if r.properties.contains(['\n', '\r']) {
                let flat = r.properties.replace(['\n', '\r'], " ");
                self.glue(|g| g.extend_from_slice(flat.as_bytes()));
            } else {
                self.parts.push(Part::Text(Arc::clone(&r.properties)));
            }
            self.glue(|g| writer.resource_suffix(g, r));
        }
    }

    fn relations(&mut self, writer: &mut Writer, relations: &[Relation]) {
        for (i, r) in relations.iter().enumerate() {
            self.glue(|g| {
                if i > 0 {
                    g.push(b',');
                }
                writer.relation(g, r);
            });
        }
    }

    fn finish(self) -> Composed {
        let glue: Arc<[u8]> = self.glue.into();
        let mut out = Composed::default();
        for part in self.parts {
            out.push(match part {
                Part::Glue(range) => Piece::bytes_range(&glue, range),
                Part::Text(text) => Piece::text(&text),
            });
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Id, Kind, Resource};
    use crate::publish::snapshot::render;

    fn pod(name: &str, text: &str) -> Resource {
        let kind = Kind::all().find(|k| k.name() == "Pod").unwrap();
        Resource {
            id: Id::new(format!("Pod:default/{name}")),
            kind,
            timestamp_ms: 0,
            properties: text.into(),
            label: name.into(),
            alternate_label: None,
            source: None,
            stale_since_ms: None,
        }
    }

    fn snapshot(sequence: u64, ts: i64, pods: &[(&str, &str)]) -> Snapshot {
        let graph = Graph {
            timestamp_ms: ts,
            resources: pods.iter().map(|(n, t)| pod(n, t)).collect(),
            relations: Vec::new(),
        };
        render(graph, "test", sequence)
    }

    /// What `next` changed from `previous`, published at `published_ms`.
    fn change(previous: &Snapshot, next: &Snapshot, published_ms: i64) -> Option<Arc<Change>> {
        let mut change = Change::between(
            previous.sequence,
            previous.timestamp_ms,
            crate::graph::diff::diff(&previous.graph, &next.graph),
            next,
            "t",
        );
        change.published_ms = published_ms;
        Some(Arc::new(change))
    }

    /// Snapshots 10 (a), 11 (a, b), 12 (b changed, a gone), published at 1000, 2000, 3000.
    fn log() -> (ChangeLog, Vec<Snapshot>) {
        let snaps = vec![
            snapshot(10, 900, &[("a", "{}")]),
            snapshot(11, 1900, &[("a", "{}"), ("b", "{\"v\":1}")]),
            snapshot(12, 2900, &[("b", "{\"v\":\n2}")]),
        ];
        let mut log = ChangeLog::new(10_000);
        log.record(&snaps[0], None, 1000);
        log.record(&snaps[1], change(&snaps[0], &snaps[1], 2000), 2000);
        log.record(&snaps[2], change(&snaps[1], &snaps[2], 3000), 3000);
        (log, snaps)
    }

    #[test]
    fn the_feed_is_a_chain_and_refuses_what_it_does_not_hold() {
        let (log, _) = log();
        let all = log.since(10).unwrap();
        assert_eq!(
            all.iter()
                .map(|c| (c.previous, c.sequence))
                .collect::<Vec<_>>(),
            [(10, 11), (11, 12)]
        );
        assert!(log.since(12).unwrap().is_empty());
        assert!(matches!(log.since(9), Err(Gone::TooOld { oldest: 10, .. })));
        assert!(matches!(log.since(13), Err(Gone::Unknown { latest: 12 })));
        assert!(log.holds(11) && !log.holds(9));
        assert_eq!(log.next_after(10).unwrap().unwrap().sequence, 11);
        assert!(log.next_after(12).unwrap().is_none());
        // A document is one line: the line break of the observed text became a space.
        let event = all[1].event.to_vec();
        let text = String::from_utf8(event).unwrap();
        assert!(text.starts_with("id: 12\nevent: change\ndata: {"), "{text}");
        assert_eq!(text.matches('\n').count(), 4, "{text}");
        let doc: serde_json::Value =
            serde_json::from_slice(&Body::Composed(Arc::clone(&all[1].document)).to_vec()).unwrap();
        assert_eq!(doc["resources"]["removed"][0]["id"], "Pod:default/a");
        assert_eq!(doc["resources"]["changed"][0]["properties"]["v"], 2);
    }

    /// Resources by ID: a rewound graph has the same ones, not always in the same order.
    fn by_id(graph: &Graph) -> Vec<Resource> {
        let mut all = graph.resources.clone();
        all.sort_by(|a, b| a.id.as_str().cmp(b.id.as_str()));
        all
    }

    #[test]
    fn the_past_is_the_current_graph_with_later_changes_undone() {
        let (log, snaps) = log();
        let current = &snaps[2];
        assert!(log.rewind_to(current, 3500).unwrap().is_none());
        let at = |ms| log.rewind_to(current, ms).unwrap().unwrap();
        let r = at(2500);
        assert_eq!((r.sequence, r.timestamp_ms), (11, 1900));
        assert_eq!(by_id(&r.graph(current)), by_id(&snaps[1].graph));
        let r = at(1000);
        assert_eq!(r.sequence, 10);
        assert_eq!(by_id(&r.graph(current)), by_id(&snaps[0].graph));
        assert!(matches!(
            log.rewind_to(current, 999),
            Err(Gone::TooOld { .. })
        ));
        // A snapshot older than the log's newest (a publish racing the read) is not undone
        // from changes it never had.
        let r = log.rewind_to(&snaps[1], 1500).unwrap().unwrap();
        assert_eq!(r.sequence, 10);
    }

    #[test]
    fn old_changes_are_forgotten_and_the_oldest_moves_on() {
        let (mut log, snaps) = log();
        let next = snapshot(13, 20_000, &[]);
        let (forgotten, _) = log.record(&next, change(&snaps[2], &next, 20_500), 20_500);
        // Published before 10,500: the changes to 11 and 12.
        assert_eq!(forgotten.len(), 2);
        assert_eq!(log.oldest().unwrap().sequence, 12);
        assert_eq!(log.len(), 1);
        assert!(matches!(
            log.since(11),
            Err(Gone::TooOld { oldest: 12, .. })
        ));
        // With nothing newer, the last change stays whatever its age.
        let mut log = ChangeLog::new(0);
        log.record(&snaps[0], None, 1000);
        let (forgotten, _) = log.record(&snaps[1], change(&snaps[0], &snaps[1], 9000), 9000);
        assert!(forgotten.is_empty());
        assert_eq!(log.len(), 1);
    }
}
