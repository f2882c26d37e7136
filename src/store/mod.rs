//! The history on disk (`--history-dir DIR`, contract §7): what the change log holds, kept
//! in an embedded store (redb, one file: `DIR/history.redb`) so that a master started again
//! with the same directory serves the history it had and goes on from it.
//!
//! The file holds one *checkpoint* (the graph of the oldest snapshot kept) and every change
//! published after it, one record each, committed shortly after it is published. Reading it
//! back is the checkpoint with the changes applied in order: the graph of the last snapshot,
//! which the first snapshot of the new process is compared with, so that the change between
//! the two processes is in the feed like any other. While the process runs the checkpoint
//! moves forward now and then (when the oldest change on disk is older than the history by
//! as much again, at least ten minutes), read from disk, moved and written back, so that the
//! file stays about the history's size and the writer holds no graph in memory.
//!
//! Writes happen on a thread of their own: publishing never waits on the disk. A write that
//! fails leaves the writer *broken*: it writes nothing more, `/status` says why, and the
//! publisher begins the history on disk again from the next snapshot's whole graph, so that
//! the file never holds a chain with a change missing.

mod encode;

use std::collections::VecDeque;
use std::fmt;
use std::ops::Bound;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use crossbeam_channel::{Receiver, Sender};
use parking_lot::Mutex;
use redb::{Database, ReadableDatabase, ReadableTable, TableDefinition, WriteTransaction};

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

/// redb's page cache: the store is written far more than read, and a checkpoint is one large
/// value read once at start.
const CACHE_BYTES: usize = 32 << 20;

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
    /// The checkpoint: the oldest snapshot kept.
    pub(crate) oldest: Oldest,
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
    /// The checkpoint and the changes on disk: (sequence, previous, published).
    checkpoint: Option<Oldest>,
    on_disk: Vec<(u64, u64, i64)>,
}

/// Opens (or creates) the store in `dir` and reads what it holds: the history of the last
/// process that used it, or `None` when it is new. Records after a break in the chain (a
/// write that failed) are removed.
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
    let db = Database::builder()
        .set_cache_size(CACHE_BYTES)
        .create(&path)
        .map_err(|e| fail(format!("cannot open the store: {e}")))?;
    let restored = read(&db).map_err(|e| {
        fail(format!(
            "cannot read the history ({e}); move the file away to start a new one"
        ))
    })?;
    let (checkpoint, on_disk) = match &restored {
        Some(r) => {
            let last = r.last.0;
            drop_after(&db, last).map_err(|e| fail(format!("cannot clean the history: {e}")))?;
            log::info!(
                "history: {} changes from {} read back from {}",
                r.changes.len(),
                cluster_insight_wire::time::rfc3339_millis(r.oldest.published_ms),
                path.display()
            );
            let on_disk = r
                .changes
                .iter()
                .map(|(h, _)| (h.sequence, h.previous, h.published_ms))
                .collect();
            (Some(r.oldest), on_disk)
        }
        None => (None, Vec::new()),
    };
    Ok((
        Opened {
            db,
            path,
            keep_ms,
            checkpoint,
            on_disk,
        },
        restored,
    ))
}

/// A write transaction that, should the process die during it, is recovered quickly.
fn begin_write(db: &Database) -> Result<WriteTransaction, String> {
    let mut txn = db.begin_write().map_err(|e| e.to_string())?;
    txn.set_quick_repair(true);
    Ok(txn)
}

/// Removes the change records after `last`: what follows a break in the chain.
fn drop_after(db: &Database, last: u64) -> Result<(), String> {
    let txn = begin_write(db)?;
    {
        let mut table = txn.open_table(CHANGES).map_err(|e| e.to_string())?;
        table
            .retain_in((Bound::Excluded(last), Bound::Unbounded), |_, _| false)
            .map_err(|e| e.to_string())?;
    }
    txn.commit().map_err(|e| e.to_string())
}

/// The checkpoint, with its publish time.
fn read_checkpoint(txn: &redb::ReadTransaction) -> Result<Option<(Oldest, Graph)>, String> {
    {
        let table = match txn.open_table(CHECKPOINT) {
            Ok(table) => table,
            Err(redb::TableError::TableDoesNotExist(_)) => return Ok(None),
            Err(e) => return Err(e.to_string()),
        };
        let Some((sequence, bytes)) = table.last().map_err(|e| e.to_string())? else {
            return Ok(None);
        };
        let sequence = sequence.value();
        let graph = encode::read_graph(bytes.value())
            .map_err(|e| format!("the checkpoint of snapshot {sequence}: {e}"))?;
        let published_ms = match txn.open_table(CHECKPOINT_PUBLISHED) {
            Ok(t) => t
                .get(sequence)
                .map_err(|e| e.to_string())?
                .map(|v| v.value()),
            Err(redb::TableError::TableDoesNotExist(_)) => None,
            Err(e) => return Err(e.to_string()),
        }
        .unwrap_or(graph.timestamp_ms);
        Ok(Some((
            Oldest {
                sequence,
                published_ms,
                timestamp_ms: graph.timestamp_ms,
            },
            graph,
        )))
    }
}

/// The changes after `after`, in order, while each follows the one before.
fn read_chain(
    txn: &redb::ReadTransaction,
    after: u64,
) -> Result<Vec<(ChangeHead, GraphDiff)>, String> {
    let table = match txn.open_table(CHANGES) {
        Ok(table) => table,
        Err(redb::TableError::TableDoesNotExist(_)) => return Ok(Vec::new()),
        Err(e) => return Err(e.to_string()),
    };
    let mut chain = Vec::new();
    let mut last = after;
    let range = table
        .range::<u64>((Bound::Excluded(after), Bound::Unbounded))
        .map_err(|e| e.to_string())?;
    for entry in range {
        let (key, bytes) = entry.map_err(|e| e.to_string())?;
        let (head, d) = encode::read_change(bytes.value())
            .map_err(|e| format!("the change to snapshot {}: {e}", key.value()))?;
        if head.previous != last || head.sequence != key.value() || head.sequence <= last {
            // A break: what follows cannot be applied. The chain up to it is kept.
            log::warn!(
                "history: the change stored as {} (to {}, from {}) does not follow {last}: it and what follows are left out",
                key.value(),
                head.sequence,
                head.previous
            );
            break;
        }
        last = head.sequence;
        chain.push((head, d));
    }
    Ok(chain)
}

/// The checkpoint and the changes after it, checked to be one chain.
fn read(db: &Database) -> Result<Option<Restored>, String> {
    let txn = db.begin_read().map_err(|e| e.to_string())?;
    let Some((oldest, graph)) = read_checkpoint(&txn)? else {
        return Ok(None);
    };
    let changes = read_chain(&txn, oldest.sequence)?;
    let (sequence, timestamp_ms) = changes
        .last()
        .map_or((oldest.sequence, oldest.timestamp_ms), |(h, _)| {
            (h.sequence, h.timestamp_ms)
        });
    let last = diff::apply_all(&graph, changes.iter().map(|(_, d)| d), timestamp_ms);
    Ok(Some(Restored {
        oldest,
        changes,
        last: (sequence, timestamp_ms, last),
    }))
}

/// What the writer thread is asked to do.
enum Op {
    /// A history starts from this snapshot: it is the checkpoint, and no change is before it.
    Begin(Oldest, Graph),
    Append(Arc<Change>),
}

/// What the writer tells the rest: how far it got, and why it stopped if it did.
#[derive(Default)]
struct WriterState {
    /// The last write's failure, kept until the history on disk begins again.
    error: Mutex<Option<String>>,
    /// The sequence of the last snapshot committed.
    committed: AtomicU64,
    /// A write failed: the next publish should begin the history on disk again.
    broken: AtomicBool,
}

/// The store as the publisher sees it: a queue to its writer thread.
pub(crate) struct HistoryStore {
    ops: Mutex<Option<Sender<Op>>>,
    done: Receiver<()>,
    state: Arc<WriterState>,
    path: PathBuf,
}

/// What `/status` says of the store.
pub struct StoreStatus {
    pub(crate) path: String,
    pub(crate) error: Option<String>,
    pub(crate) committed: u64,
}

impl Opened {
    /// Starts the writer.
    pub(crate) fn start(self) -> std::io::Result<HistoryStore> {
        let (ops, rx) = crossbeam_channel::unbounded();
        let (done_tx, done) = crossbeam_channel::bounded(1);
        let state = Arc::new(WriterState::default());
        state.committed.store(
            self.on_disk
                .last()
                .map_or(self.checkpoint.map_or(0, |c| c.sequence), |c| c.0),
            Ordering::SeqCst,
        );
        let path = self.path.clone();
        let writer = Writer {
            db: self.db,
            keep_ms: self.keep_ms,
            checkpoint: self.checkpoint,
            on_disk: self.on_disk.into(),
            state: Arc::clone(&state),
        };
        std::thread::Builder::new()
            .name("history-store".into())
            .spawn(move || {
                writer.run(&rx);
                let _ = done_tx.send(());
            })?;
        Ok(HistoryStore {
            ops: Mutex::new(Some(ops)),
            done,
            state,
            path,
        })
    }
}

impl HistoryStore {
    /// The history on disk starts again from this snapshot.
    pub(crate) fn begin(&self, oldest: Oldest, graph: Graph) {
        self.send(Op::Begin(oldest, graph));
    }

    pub(crate) fn append(&self, change: Arc<Change>) {
        self.send(Op::Append(change));
    }

    fn send(&self, op: Op) {
        if let Some(ops) = self.ops.lock().as_ref() {
            let _ = ops.send(op);
        }
    }

    /// Whether a write failed, so that the history on disk must begin again.
    pub(crate) fn broken(&self) -> bool {
        self.state.broken.load(Ordering::SeqCst)
    }

    pub(crate) fn status(&self) -> StoreStatus {
        StoreStatus {
            path: self.path.display().to_string(),
            error: self.state.error.lock().clone(),
            committed: self.state.committed.load(Ordering::SeqCst),
        }
    }

    /// Lets the writer finish what is queued, for at most `limit`; nothing is taken after.
    pub(crate) fn close(&self, limit: Duration) {
        let Some(ops) = self.ops.lock().take() else {
            return;
        };
        drop(ops);
        if self.done.recv_timeout(limit).is_err() {
            log::warn!("history: the store's writes did not finish within {limit:?}");
        }
    }
}

impl Drop for HistoryStore {
    fn drop(&mut self) {
        self.close(Duration::from_secs(5));
    }
}

struct Writer {
    db: Database,
    keep_ms: i64,
    /// The checkpoint on disk.
    checkpoint: Option<Oldest>,
    /// The changes on disk after it: (sequence, previous, published).
    on_disk: VecDeque<(u64, u64, i64)>,
    state: Arc<WriterState>,
}

impl Writer {
    fn run(mut self, ops: &Receiver<Op>) {
        for op in ops {
            let result = match op {
                Op::Begin(oldest, graph) => self.begin(oldest, &graph),
                // Nothing is appended to a chain a failed write broke.
                Op::Append(_) if self.state.broken.load(Ordering::SeqCst) => Ok(()),
                Op::Append(change) => self.append(&change),
            };
            if let Err(e) = result {
                log::error!(
                    "history: cannot write to the store: {e}; it begins again from the next snapshot"
                );
                *self.state.error.lock() = Some(e);
                self.state.broken.store(true, Ordering::SeqCst);
            }
        }
    }

    fn begin(&mut self, oldest: Oldest, graph: &Graph) -> Result<(), String> {
        self.write_checkpoint(&oldest, graph, u64::MAX)?;
        self.checkpoint = Some(oldest);
        self.on_disk.clear();
        self.state
            .committed
            .store(oldest.sequence, Ordering::SeqCst);
        *self.state.error.lock() = None;
        self.state.broken.store(false, Ordering::SeqCst);
        Ok(())
    }

    fn append(&mut self, change: &Change) -> Result<(), String> {
        let last = self
            .on_disk
            .back()
            .map(|c| c.0)
            .or(self.checkpoint.map(|c| c.sequence));
        if last != Some(change.previous) {
            return Err(format!(
                "the change to snapshot {} follows {}, the store's last is {last:?}",
                change.sequence, change.previous
            ));
        }
        let mut bytes = Vec::new();
        encode::write_change(&mut bytes, change.head(), &change.diff);
        let txn = begin_write(&self.db)?;
        {
            let mut table = txn.open_table(CHANGES).map_err(|e| e.to_string())?;
            table
                .insert(change.sequence, bytes.as_slice())
                .map_err(|e| e.to_string())?;
        }
        txn.commit().map_err(|e| e.to_string())?;
        self.on_disk
            .push_back((change.sequence, change.previous, change.published_ms));
        self.state
            .committed
            .store(change.sequence, Ordering::SeqCst);
        self.move_checkpoint(change.published_ms)
    }

    /// Moves the checkpoint to the oldest snapshot the history still needs, when the changes
    /// on disk reach back far enough past it: the checkpoint and the changes to it are read
    /// from disk, applied, and written back in one transaction.
    fn move_checkpoint(&mut self, now_ms: i64) -> Result<(), String> {
        let spacing = self.keep_ms.max(MIN_CHECKPOINT_SPACING_MS);
        let reach = self.on_disk.front().map(|c| c.2);
        if reach.is_none_or(|t| t >= now_ms.saturating_sub(self.keep_ms.saturating_add(spacing))) {
            return Ok(());
        }
        let horizon = now_ms.saturating_sub(self.keep_ms);
        let through = self
            .on_disk
            .iter()
            .take(self.on_disk.len().saturating_sub(1))
            .take_while(|c| c.2 < horizon)
            .last()
            .map(|c| c.0);
        let Some(through) = through else {
            return Ok(());
        };
        let txn = self.db.begin_read().map_err(|e| e.to_string())?;
        let (oldest, graph) = read_checkpoint(&txn)?.ok_or("the checkpoint is gone")?;
        let chain = read_chain(&txn, oldest.sequence)?;
        drop(txn);
        let moved: Vec<&(ChangeHead, GraphDiff)> = chain
            .iter()
            .take_while(|(h, _)| h.sequence <= through)
            .collect();
        let Some((last, _)) = moved.last() else {
            return Err("the changes on disk do not follow the checkpoint".into());
        };
        if last.sequence != through {
            return Err(format!(
                "the changes on disk stop at {} before {through}",
                last.sequence
            ));
        }
        let new = Oldest {
            sequence: last.sequence,
            published_ms: last.published_ms,
            timestamp_ms: last.timestamp_ms,
        };
        let graph = diff::apply_all(&graph, moved.iter().map(|(_, d)| d), new.timestamp_ms);
        self.write_checkpoint(&new, &graph, through)?;
        self.checkpoint = Some(new);
        while self.on_disk.front().is_some_and(|c| c.0 <= through) {
            self.on_disk.pop_front();
        }
        Ok(())
    }

    /// Writes `graph` as the checkpoint, in place of the one before, and removes the changes
    /// up to `through`, in one transaction.
    fn write_checkpoint(&self, oldest: &Oldest, graph: &Graph, through: u64) -> Result<(), String> {
        let mut bytes = Vec::new();
        encode::write_graph(&mut bytes, graph);
        let txn = begin_write(&self.db)?;
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
            changes
                .retain_in(..=through, |_, _| false)
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
                    label: (*name).into(),
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
        let store = opened.start().unwrap();
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
                crate::graph::diff::diff(&previous.graph, &next.graph),
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
        // The checkpoint moved to a graph that is the first one with the changes up to it
        // applied: its snapshot holds the pods up to its number.
        let again = opened_again(&dir, keep);
        let txn = again.db.begin_read().unwrap();
        let (oldest, checkpoint) = read_checkpoint(&txn).unwrap().unwrap();
        assert_eq!(oldest, restored.oldest);
        assert_eq!(checkpoint.resources.len() as u64, oldest.sequence - 99);
        let _ = std::fs::remove_dir_all(&dir);
    }

    fn opened_again(dir: &Path, keep: i64) -> Opened {
        open(dir, keep).unwrap().0
    }

    #[test]
    fn a_change_that_does_not_follow_breaks_the_writer_until_it_begins_again() {
        let dir = temp_dir("broken");
        let (opened, _) = open(&dir, MINUTE).unwrap();
        let store = opened.start().unwrap();
        let s1 = render(graph(0, &["a"]), "t", 1);
        let s2 = render(graph(1, &["a", "b"]), "t", 2);
        let s3 = render(graph(2, &["b"]), "t", 3);
        let oldest = |s: &crate::publish::snapshot::Snapshot| Oldest {
            sequence: s.sequence,
            published_ms: s.timestamp_ms,
            timestamp_ms: s.timestamp_ms,
        };
        let change = |a: &crate::publish::snapshot::Snapshot,
                      b: &crate::publish::snapshot::Snapshot| {
            Arc::new(Change::between(
                a.sequence,
                a.timestamp_ms,
                crate::graph::diff::diff(&a.graph, &b.graph),
                b,
                "t",
            ))
        };
        store.begin(oldest(&s1), s1.graph.clone());
        // 3 after 2, but 2 was never written: refused, and nothing more is taken.
        store.append(change(&s2, &s3));
        store.append(change(&s1, &s2));
        let wait = |done: &dyn Fn() -> bool| {
            let deadline = std::time::Instant::now() + Duration::from_secs(5);
            while !done() {
                assert!(std::time::Instant::now() < deadline);
                std::thread::sleep(Duration::from_millis(5));
            }
        };
        wait(&|| store.broken());
        assert!(store.status().error.unwrap().contains("follows 2"));
        // Beginning again from a whole graph mends it.
        store.begin(oldest(&s3), s3.graph.clone());
        wait(&|| !store.broken());
        assert_eq!(store.status().committed, 3);
        assert!(store.status().error.is_none());
        drop(store);
        let (_, restored) = open(&dir, MINUTE).unwrap();
        let restored = restored.unwrap();
        assert_eq!((restored.oldest.sequence, restored.changes.len()), (3, 0));
        assert_eq!(restored.last.2.resources, s3.graph.resources);
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
