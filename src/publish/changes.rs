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
    /// The snapshot it changed.
    pub(crate) previous: u64,
    pub(crate) timestamp_ms: i64,
    pub(crate) diff: GraphDiff,
    /// The change document: `{"sequence":…,"previous":…,"timestamp":…,"resources":{"added":
    /// […],"changed":[…],"removed":[…]},"relations":{…}}`; resources as `/cluster` shows
    /// them, removed ones as `{"id","type"}`.
    pub(crate) document: Arc<Composed>,
    /// The document as one Server-Sent Event: `id: SEQUENCE`, `event: change`, `data: …`.
    pub(crate) event: Body,
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

/// The changes of the last `keep_ms`, oldest first.
#[derive(Debug)]
pub(crate) struct ChangeLog {
    /// The oldest snapshot the log reaches back to: (sequence, time).
    base: Option<(u64, i64)>,
    changes: VecDeque<Arc<Change>>,
    keep_ms: i64,
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

    /// Records the snapshot `next` and, when it follows one already recorded, what it
    /// changed (made by [`Change::between`], outside the log's lock); then forgets what is
    /// older than the history before `now_ms`.
    pub(crate) fn record(&mut self, next: &Snapshot, change: Option<Change>, now_ms: i64) {
        match change {
            Some(change) if self.base.is_some() => self.changes.push_back(Arc::new(change)),
            _ => {
                // The first snapshot (or one whose predecessor was never recorded): the log
                // starts again from it.
                self.base = Some((next.sequence, next.timestamp_ms));
                self.changes.clear();
            }
        }
        self.prune(now_ms);
    }

    /// Forgets the changes made before `now_ms - keep_ms`; the last of them becomes the
    /// oldest snapshot the log reaches back to. The latest change is always kept.
    fn prune(&mut self, now_ms: i64) {
        let horizon = now_ms.saturating_sub(self.keep_ms);
        while self.changes.len() > 1 && self.changes[0].timestamp_ms < horizon {
            if let Some(dropped) = self.changes.pop_front() {
                self.base = Some((dropped.sequence, dropped.timestamp_ms));
            }
        }
    }

    /// The sequence of the last snapshot recorded.
    pub(crate) fn latest(&self) -> Option<u64> {
        self.changes
            .back()
            .map(|c| c.sequence)
            .or(self.base.map(|(s, _)| s))
    }

    /// The oldest snapshot the log reaches back to: (sequence, time).
    pub(crate) fn oldest(&self) -> Option<(u64, i64)> {
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

    /// The first change after snapshot `sequence`, if one was published since.
    pub(crate) fn next_after(&self, sequence: u64) -> Result<Option<Arc<Change>>, Gone> {
        let start = self.position_after(sequence)?;
        Ok(self.changes.get(start).cloned())
    }

    /// Where the changes after `sequence` start.
    fn position_after(&self, sequence: u64) -> Result<usize, Gone> {
        let (oldest, oldest_ms) = self.base.ok_or(Gone::Empty)?;
        let latest = self.latest().unwrap_or(oldest);
        if sequence < oldest {
            return Err(Gone::TooOld { oldest, oldest_ms });
        }
        if sequence > latest {
            return Err(Gone::Unknown { latest });
        }
        Ok(self.changes.partition_point(|c| c.sequence <= sequence))
    }

    /// The sequence of the snapshot that was current at `at_ms`, when it is not `current`.
    pub(crate) fn sequence_at(&self, current: &Snapshot, at_ms: i64) -> Result<Option<u64>, Gone> {
        Ok(self.undone(current, at_ms)?.last().map(|c| c.previous))
    }

    /// The changes to undo, newest first, to go from `current` back to `at_ms`.
    fn undone(&self, current: &Snapshot, at_ms: i64) -> Result<Vec<&Change>, Gone> {
        let (oldest, oldest_ms) = self.base.ok_or(Gone::Empty)?;
        if at_ms < oldest_ms {
            return Err(Gone::TooOld { oldest, oldest_ms });
        }
        // Changes recorded after `current` (a publish racing this read) are not undone:
        // `current` never had them.
        Ok(self
            .changes
            .iter()
            .rev()
            .filter(|c| c.sequence <= current.sequence && c.timestamp_ms > at_ms)
            .map(|c| &**c)
            .collect())
    }

    /// The graph as it was at `at_ms`, with its sequence: `current`'s with every change
    /// after that time undone. `None` when `current` is itself the snapshot of that time.
    pub(crate) fn graph_at(
        &self,
        current: &Snapshot,
        at_ms: i64,
    ) -> Result<Option<(u64, Graph)>, Gone> {
        let undone = self.undone(current, at_ms)?;
        let Some(last_undone) = undone.last() else {
            return Ok(None);
        };
        let sequence = last_undone.previous;
        // That snapshot's time: its own change's, or the oldest snapshot's.
        let timestamp_ms = self
            .changes
            .iter()
            .find(|c| c.sequence == sequence)
            .map_or_else(|| self.base.map_or(at_ms, |(_, t)| t), |c| c.timestamp_ms);
        let graph = diff::rewind(&current.graph, undone.iter().map(|c| &c.diff), timestamp_ms);
        Ok(Some((sequence, graph)))
    }
}

impl Change {
    /// What `next` changed from `previous`; `created_by` is the `/version` string the
    /// document's annotations carry.
    pub(crate) fn between(previous: &Snapshot, next: &Snapshot, created_by: &str) -> Change {
        let diff = diff::diff(&previous.graph, &next.graph);
        let writer = &mut Writer::new(created_by);
        let previous = previous.sequence;
        let mut doc = Document::default();
        doc.text(format!(
            "{{\"sequence\":{},\"previous\":{previous},\"timestamp\":\"{}\",\"resources\":{{\"added\":[",
            next.sequence,
            writer.stamp(next.timestamp_ms)
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
        event.push(own(
            format!("id: {}\nevent: change\ndata: ", next.sequence).into_bytes()
        ));
        event.extend(&document);
        event.push(own(b"\n\n".to_vec()));
        Change {
            sequence: next.sequence,
            previous,
            timestamp_ms: next.timestamp_ms,
            diff,
            document: Arc::new(document),
            event: Body::Composed(Arc::new(event)),
        }
    }
}

fn own(bytes: Vec<u8>) -> Piece {
    let bytes: Arc<[u8]> = bytes.into();
    let len = bytes.len();
    Piece::bytes_range(&bytes, 0..len)
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
