//! The history on disk (`--history-dir DIR`, contract §7): what the change log holds, kept
//! in an embedded store (redb, one file: `DIR/history.redb`) so that a master started again
//! with the same directory serves the history it had and goes on from it.
//!
//! The file holds one *checkpoint* (the graph of the oldest snapshot kept) and every change
//! published after it, one record each, committed as it is published. Reading it back is
//! the checkpoint with the changes applied in order: the graph of the last snapshot, which
//! the first snapshot of the new process is compared with, so that the change between the two
//! processes is in the feed like any other. While the process runs the checkpoint moves
//! forward now and then (when the oldest change kept on disk is older than the history by
//! as much again, at least ten minutes), so that the file stays about the history's size.
//!
//! Writes happen on a thread of their own: publishing never waits on the disk. A write that
//! fails is logged and counted in `/status`; the history in memory does not depend on it.

mod encode;

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition};

use crate::graph::diff::{self, GraphDiff};
use crate::graph::Graph;
use crate::publish::changes::{Change, ChangeHead, Oldest};

/// The checkpoint: its sequence (the key), the graph.
const CHECKPOINT: TableDefinition<u64, &[u8]> = TableDefinition::new("checkpoint");
/// The checkpoint's publish time, by its sequence.
const CHECKPOINT_PUBLISHED: TableDefinition<u64, i64> =
    TableDefinition::new("checkpoint_published");
/// Every change after the checkpoint, by sequence.
const CHANGES: TableDefinition<u64, &[u8]> = TableDefinition::new("changes");

/// The least time between two moves of the checkpoint: each writes a whole graph.
const MIN_CHECKPOINT_SPACING_MS: i64 = 10 * 60 * 1000;

/// Why the history directory cannot be used.
#[derive(Debug)]
pub struct StoreError {
    path: PathBuf,
    what: String,
}

impl fmt::Display for StoreError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "--history-dir: {}: {}", self.path.display(), self.what)
    }
}

impl std::error::Error for StoreError {}

/// What the store held when it was opened.
pub struct Restored {
    /// The checkpoint: the oldest snapshot kept, and its graph.
    pub(crate) oldest: Oldest,
    pub(crate) oldest_graph: Graph,
    /// Every change after it, in order, each following the one before.
    pub(crate) changes: Vec<(ChangeHead, GraphDiff)>,
    /// The last snapshot's sequence, time and graph: the checkpoint with every change applied.
    pub(crate) last: (u64, i64, Graph),
}

/// An opened store, not yet written to.
pub struct Opened {
    db: Database,
    path: PathBuf,
    keep_ms: i64,
}

/// Opens (or creates) the store in `dir` and reads what it holds: the history of the last
/// process that used it, or `None` when it is new.
pub fn open(dir: &Path, keep_ms: i64) -> Result<(Opened, Option<Restored>), StoreError> {
    let path = dir.join("history.redb");
    let fail = |what: String| StoreError {
        path: path.clone(),
        what,
    };
    std::fs::create_dir_all(dir).map_err(|e| StoreError {
        path: dir.to_path_buf(),
        what: format!("cannot create the directory: {e}"),
    })?;
    let db = Database::create(&path).map_err(|e| fail(format!("cannot open the store: {e}")))?;
    let restored = read(&db).map_err(|e| {
        fail(format!(
            "cannot read the history ({e}); move the file away to start a new one"
        ))
    })?;
    if let Some(r) = &restored {
        log::info!(
            "history: {} changes from {} read back from {}",
            r.changes.len(),
            cluster_insight_wire::time::rfc3339_millis(r.oldest.published_ms),
            path.display()
        );
    }
    Ok((Opened { db, path, keep_ms }, restored))
}

/// The checkpoint and the changes after it, checked to be one chain.
fn read(db: &Database) -> Result<Option<Restored>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let checkpoint = match txn.open_table(CHECKPOINT) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
        Err(e) => return Err(e.to_string()),
    };
    let Some((sequence, bytes)) = checkpoint.last().map_err(|e| e.to_string())? else {
        return Ok(None);
    };
    let sequence = sequence.value();
    let graph = encode::read_graph(bytes.value())
        .map_err(|e| format!("the checkpoint of snapshot {sequence}: {e}"))?;
    let published_ms = txn
        .open_table(CHECKPOINT_PUBLISHED)
        .and_then(|t| Ok(t.get(sequence)?.map(|v| v.value())))
        .map_err(|e| e.to_string())?
        .unwrap_or(graph.timestamp_ms);
    let oldest = Oldest {
        sequence,
        published_ms,
        timestamp_ms: graph.timestamp_ms,
    };
    let mut changes = Vec::new();
    let mut last = (sequence, graph.timestamp_ms, graph.clone());
    if let Ok(table) = txn.open_table(CHANGES) {
        for entry in table.range(sequence + 1..).map_err(|e| e.to_string())? {
            let (key, bytes) = entry.map_err(|e| e.to_string())?;
            let (head, d) = encode::read_change(bytes.value())
                .map_err(|e| format!("the change to snapshot {}: {e}", key.value()))?;
            if head.previous != last.0 {
                // A gap: what follows cannot be applied. Keep the chain up to it.
                log::warn!(
                    "history: the change to snapshot {} follows {}, not {}: the changes from it on are left out",
                    head.sequence,
                    head.previous,
                    last.0
                );
                break;
            }
            let graph = diff::apply(&last.2, &d, head.timestamp_ms);
            last = (head.sequence, head.timestamp_ms, graph);
            changes.push((head, d));
        }
    }
    Ok(Some(Restored {
        oldest,
        oldest_graph: graph,
        changes,
        last,
    }))
}

/// What the writer thread is asked to do.
enum Op {
    /// A history starts from this snapshot: it is the checkpoint, and no change is before it.
    Begin(Oldest, Graph),
    Append(Arc<Change>),
}

/// The store as the publisher sees it: a queue to its writer thread.
pub(crate) struct HistoryStore {
    ops: Sender<Op>,
    /// The last write's failure, if it failed (for `/status`).
    error: Arc<Mutex<Option<String>>>,
    path: PathBuf,
    thread: Option<JoinHandle<()>>,
}

impl Opened {
    /// Starts the writer, with the checkpoint and the changes after it the history now
    /// holds in memory (what was read back, or nothing).
    pub(crate) fn start(
        self,
        checkpoint: Option<(Oldest, Graph)>,
        changes: Vec<Arc<Change>>,
    ) -> std::io::Result<HistoryStore> {
        let (ops, rx) = crossbeam_channel::unbounded();
        let error = Arc::new(Mutex::new(None));
        let path = self.path.clone();
        let writer = Writer {
            db: self.db,
            keep_ms: self.keep_ms,
            checkpoint,
            changes: changes.into(),
            error: Arc::clone(&error),
        };
        let thread = std::thread::Builder::new()
            .name("history-store".into())
            .spawn(move || writer.run(&rx))?;
        Ok(HistoryStore {
            ops,
            error,
            path,
            thread: Some(thread),
        })
    }
}

impl HistoryStore {
    /// The history starts again from this snapshot.
    pub(crate) fn begin(&self, oldest: Oldest, graph: Graph) {
        let _ = self.ops.send(Op::Begin(oldest, graph));
    }

    pub(crate) fn append(&self, change: Arc<Change>) {
        let _ = self.ops.send(Op::Append(change));
    }

    /// Where it is, and the last write's failure.
    pub(crate) fn state(&self) -> (String, Option<String>) {
        (self.path.display().to_string(), self.error.lock().clone())
    }
}

impl Drop for HistoryStore {
    /// Lets the writer finish what is queued.
    fn drop(&mut self) {
        let (closed, _) = crossbeam_channel::bounded(0);
        self.ops = closed;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

struct Writer {
    db: Database,
    keep_ms: i64,
    /// The checkpoint on disk, and its graph.
    checkpoint: Option<(Oldest, Graph)>,
    /// The changes on disk after it.
    changes: VecDeque<Arc<Change>>,
    error: Arc<Mutex<Option<String>>>,
}

impl Writer {
    fn run(mut self, ops: &Receiver<Op>) {
        for op in ops {
            let result = match op {
                Op::Begin(oldest, graph) => self.begin(oldest, graph),
                Op::Append(change) => self.append(change),
            };
            match result {
                Ok(()) => *self.error.lock() = None,
                Err(e) => {
                    let mut last = self.error.lock();
                    if last.as_deref() != Some(e.as_str()) {
                        log::error!("history: cannot write to the store: {e}");
                    }
                    *last = Some(e);
                }
            }
        }
    }

    fn begin(&mut self, oldest: Oldest, graph: Graph) -> Result<(), String> {
        self.write_checkpoint(&oldest, &graph, None)?;
        self.checkpoint = Some((oldest, graph));
        self.changes.clear();
        Ok(())
    }

    fn append(&mut self, change: Arc<Change>) -> Result<(), String> {
        let mut bytes = Vec::new();
        encode::write_change(&mut bytes, change.head(), &change.diff);
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut table = txn.open_table(CHANGES).map_err(|e| e.to_string())?;
            table
                .insert(change.sequence, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
        let now = change.published_ms;
        self.changes.push_back(change);
        self.move_checkpoint(now)
    }

    /// Moves the checkpoint to the oldest snapshot the history still needs, when the changes
    /// on disk reach back far enough past it.
    fn move_checkpoint(&mut self, now_ms: i64) -> Result<(), String> {
        let spacing = self.keep_ms.max(MIN_CHECKPOINT_SPACING_MS);
        let reach = self.changes.front().map(|c| c.published_ms);
        if reach.is_none_or(|t| t >= now_ms - self.keep_ms - spacing) {
            return Ok(());
        }
        let Some((mut oldest, mut graph)) = self.checkpoint.take() else {
            return Ok(());
        };
        let mut dropped = Vec::new();
        while self.changes.len() > 1
            && self
                .changes
                .front()
                .is_some_and(|c| c.published_ms < now_ms - self.keep_ms)
        {
            let Some(c) = self.changes.pop_front() else {
                break;
            };
            graph = diff::apply(&graph, &c.diff, c.timestamp_ms);
            oldest = Oldest {
                sequence: c.sequence,
                published_ms: c.published_ms,
                timestamp_ms: c.timestamp_ms,
            };
            dropped.push(c.sequence);
        }
        let result = self.write_checkpoint(&oldest, &graph, dropped.last().copied());
        self.checkpoint = Some((oldest, graph));
        result
    }

    /// Writes `graph` as the checkpoint, in place of the one before, and removes the changes
    /// up to `through` (all of them when `None`), in one transaction.
    fn write_checkpoint(
        &self,
        oldest: &Oldest,
        graph: &Graph,
        through: Option<u64>,
    ) -> Result<(), String> {
        let mut bytes = Vec::new();
        encode::write_graph(&mut bytes, graph);
        let txn = self.db.begin_write().map_err(|e| e.to_string())?;
        {
            let mut checkpoint = txn.open_table(CHECKPOINT).map_err(|e| e.to_string())?;
            checkpoint.retain(|_, _| false).map_err(|e| e.to_string())?;
            checkpoint
                .insert(oldest.sequence, bytes.as_slice())
                .map_err(|e| e.to_string())?;
            let mut published = txn
                .open_table(CHECKPOINT_PUBLISHED)
                .map_err(|e| e.to_string())?;
            published.retain(|_, _| false).map_err(|e| e.to_string())?;
            published
                .insert(oldest.sequence, oldest.published_ms)
                .map_err(|e| e.to_string())?;
            let mut changes = txn.open_table(CHANGES).map_err(|e| e.to_string())?;
            let last = through.unwrap_or(u64::MAX);
            changes
                .retain(|sequence, _| sequence > last)
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Id, Kind, Resource};
    use crate::publish::changes::Change;
    use crate::publish::snapshot::render;

    fn graph(ts: i64, pods: &[&str]) -> Graph {
        let kind = Kind::all().find(|k| k.name() == "Pod").unwrap();
        Graph {
            timestamp_ms: ts,
            resources: pods
                .iter()
                .map(|name| Resource {
                    id: Id::new(format!("Pod:default/{name}")),
                    kind,
                    timestamp_ms: ts,
                    properties: format!("{{\"name\":\"{name}\"}}").into(),
                    label: name.to_string(),
                    alternate_label: None,
                    source: None,
                    stale_since_ms: None,
                })
                .collect(),
            relations: Vec::new(),
        }
    }

    fn temp_dir(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("ci-store-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        dir
    }

    const MINUTE: i64 = 60_000;

    #[test]
    fn what_is_written_is_read_back_and_the_checkpoint_moves_on() {
        let dir = temp_dir("moves");
        let keep = 5 * MINUTE;
        let (opened, restored) = open(&dir, keep).unwrap();
        assert!(restored.is_none());
        let store = opened.start(None, Vec::new()).unwrap();
        // Snapshot n holds pods 0..=n, published n × 4 minutes after the first.
        let names: Vec<String> = (0..12).map(|n| format!("p{n}")).collect();
        let snapshot = |n: usize| {
            let pods: Vec<&str> = names[..=n].iter().map(String::as_str).collect();
            render(graph(n as i64 * 4 * MINUTE, &pods), "t", 100 + n as u64)
        };
        let first = snapshot(0);
        store.begin(
            Oldest {
                sequence: 100,
                published_ms: 0,
                timestamp_ms: 0,
            },
            first.graph.clone(),
        );
        let mut previous = first;
        for n in 1..12 {
            let next = snapshot(n);
            let mut change = Change::between(
                previous.sequence,
                previous.timestamp_ms,
                &previous.graph,
                &next,
                "t",
            );
            change.published_ms = next.timestamp_ms;
            store.append(Arc::new(change));
            previous = next;
        }
        drop(store);

        let (_, restored) = open(&dir, keep).unwrap();
        let restored = restored.expect("a history");
        // The last change was published at 44 minutes: the checkpoint moved to a snapshot
        // at least 5 minutes older than a change it kept, within 5 + 10 minutes of it.
        assert!(restored.oldest.sequence > 100, "{:?}", restored.oldest);
        assert_eq!(restored.last.0, 111);
        assert_eq!(restored.last.2.resources, previous.graph.resources);
        let first_kept = restored.changes.first().unwrap().0;
        assert_eq!(first_kept.previous, restored.oldest.sequence);
        let checkpoint_pods = restored.oldest_graph.resources.len() as u64;
        assert_eq!(checkpoint_pods, restored.oldest.sequence - 99);
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn a_directory_that_cannot_be_made_is_said() {
        let file = temp_dir("file");
        std::fs::write(&file, b"x").unwrap();
        let err = open(&file.join("sub"), MINUTE).err().unwrap().to_string();
        assert!(
            err.contains("--history-dir") && err.contains("cannot create"),
            "{err}"
        );
        let _ = std::fs::remove_file(&file);
    }
}
