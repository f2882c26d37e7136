//! Publishing: the graph of a refresh, serialized once into every body the API serves, and
//! the one place where the collector hands a new snapshot to the handlers.
//!
//! No I/O here (the store on disk, when there is one, is written by a thread of its own).
//! [`Shared`] holds the current snapshot with the status of the refresh that
//! made it, swapped together under one lock, so a reader never sees one without the other,
//! and the log of what each snapshot changed (`changes`), recorded before the snapshot is
//! swapped in, so that a reader who sees a snapshot finds its change in the log.

pub(crate) mod changes;
pub(crate) mod dot;
pub(crate) mod graphml;
pub mod snapshot;
pub(crate) mod status;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

use parking_lot::{Mutex, RwLock};

use crate::collect::status::CollectorStatus;
use crate::graph::diff::GraphDiff;
use crate::graph::Graph;
use crate::store::{HistoryStore, Opened, Restored, StoreStatus};
use changes::{Change, ChangeLog, Oldest};
use snapshot::Snapshot;

/// What the collector publishes and the API reads.
pub(crate) struct Shared {
    published: RwLock<Published>,
    changes: RwLock<ChangeLog>,
    /// The `/version` string, which change documents carry like every resource.
    created_by: String,
    /// The sequence of the snapshot last swapped in, for streams to poll without a lock.
    latest: AtomicU64,
    /// Where the history is kept on disk, if it is (`--history-dir`).
    store: Option<HistoryStore>,
    /// The last snapshot the store held when this process started (sequence, time, graph):
    /// what the first snapshot of this process is compared with.
    restored: Mutex<Option<(u64, i64, Graph)>>,
}

impl Default for Shared {
    /// Keeps an hour of changes; for tests.
    fn default() -> Shared {
        Shared::new(3_600_000, "")
    }
}

/// A snapshot and the status of the refresh that made it.
#[derive(Default, Clone)]
pub(crate) struct Published {
    pub(crate) snapshot: Option<Arc<Snapshot>>,
    pub(crate) status: Arc<CollectorStatus>,
}

impl Shared {
    /// Keeps `history_ms` of changes, whose documents carry `created_by`.
    pub(crate) fn new(history_ms: i64, created_by: &str) -> Shared {
        Shared {
            published: RwLock::default(),
            changes: RwLock::new(ChangeLog::new(history_ms)),
            created_by: created_by.to_string(),
            latest: AtomicU64::new(0),
            store: None,
            restored: Mutex::new(None),
        }
    }

    /// Keeps `history_ms` of changes in memory and in the store `opened`, going on from what
    /// it held (`restored`) as of `now_ms`.
    pub(crate) fn with_store(
        history_ms: i64,
        created_by: &str,
        opened: Opened,
        restored: Option<Restored>,
        now_ms: i64,
    ) -> std::io::Result<Shared> {
        let mut shared = Shared::new(history_ms, created_by);
        shared.store = Some(opened.start()?);
        let Some(restored) = restored else {
            return Ok(shared);
        };
        // What the history no longer reaches is left out before any document is written:
        // the oldest snapshot kept becomes the last one published before the horizon.
        let horizon = now_ms.saturating_sub(history_ms);
        let mut oldest = restored.oldest;
        let mut kept = Vec::new();
        let count = restored.changes.len();
        for (i, (head, diff)) in restored.changes.into_iter().enumerate() {
            if head.published_ms < horizon && i + 1 < count {
                oldest = Oldest {
                    sequence: head.sequence,
                    published_ms: head.published_ms,
                    timestamp_ms: head.timestamp_ms,
                };
            } else {
                kept.push(Arc::new(Change::from_parts(head, diff, created_by)));
            }
        }
        shared.changes = RwLock::new(ChangeLog::restore(history_ms, oldest, kept, now_ms));
        *shared.restored.get_mut() = Some(restored.last);
        Ok(shared)
    }

    /// The sequence of the last snapshot the store held at start (0 without one): this
    /// process's sequences must be after it.
    pub(crate) fn restored_sequence(&self) -> u64 {
        self.restored.lock().as_ref().map_or(0, |(s, _, _)| *s)
    }

    /// What `/status` says of the store, when there is one.
    pub(crate) fn store_status(&self) -> Option<StoreStatus> {
        self.store.as_ref().map(HistoryStore::status)
    }

    /// Lets the store write what is queued, for at most `limit`; then nothing more is kept.
    pub(crate) fn close_store(&self, limit: std::time::Duration) {
        if let Some(store) = &self.store {
            store.close(limit);
        }
    }

    /// The sequence of the current snapshot (0 before the first), read without a lock.
    pub(crate) fn latest_sequence(&self) -> u64 {
        self.latest.load(Ordering::SeqCst)
    }

    /// The change log, to read, if no one is writing it.
    pub(crate) fn try_changes(&self) -> Option<parking_lot::RwLockReadGuard<'_, ChangeLog>> {
        self.changes.try_read()
    }

    /// The change log, to read.
    pub(crate) fn changes(&self) -> parking_lot::RwLockReadGuard<'_, ChangeLog> {
        self.changes.read()
    }

    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        self.published.read().snapshot.clone()
    }

    /// The snapshot and its status, as one.
    pub(crate) fn published(&self) -> Published {
        self.published.read().clone()
    }

    /// Swaps in a new snapshot with its status; a new snapshot's change is recorded first.
    /// `now_ms` is when, for forgetting the changes older than the history. `known` is what
    /// the new snapshot changed from the current one, when the caller knows it (else the
    /// two graphs are compared).
    pub(crate) fn publish(&self, published: Published, now_ms: i64, known: Option<GraphDiff>) {
        if let Some(next) = &published.snapshot {
            let previous = self.current();
            if previous
                .as_ref()
                .is_none_or(|p| p.sequence != next.sequence)
            {
                // Made before the lock is taken: it compares two whole graphs. Only the
                // collector publishes, so `previous` is still the current one below. The
                // first snapshot follows the last one the store held, when it is newer.
                let restored = match previous {
                    Some(_) => None,
                    None => self.restored.lock().take(),
                };
                let change = match (&previous, &restored) {
                    (Some(p), _) => Some((p.sequence, p.timestamp_ms, &p.graph)),
                    (None, Some((sequence, ts, graph))) if *sequence < next.sequence => {
                        Some((*sequence, *ts, graph))
                    }
                    (None, Some((sequence, _, _))) => {
                        log::warn!(
                            "history: the first snapshot's sequence {} is not after the last one kept ({sequence}); the history starts again",
                            next.sequence
                        );
                        None
                    }
                    (None, None) => None,
                }
                .map(|(sequence, ts, graph)| {
                    let diff = match (&previous, known) {
                        (Some(_), Some(known)) => known,
                        _ => crate::graph::diff::diff(graph, &next.graph),
                    };
                    let mut change = Change::between(sequence, ts, diff, next, &self.created_by);
                    change.published_ms = now_ms;
                    Arc::new(change)
                });
                let (forgotten, fresh) = self.changes.write().record(next, change.clone(), now_ms);
                if let Some(store) = &self.store {
                    match change {
                        // After a failed write the history on disk begins again, whole.
                        Some(change) if !fresh && !store.broken() => store.append(change),
                        _ => store.begin(
                            Oldest {
                                sequence: next.sequence,
                                published_ms: now_ms,
                                timestamp_ms: next.timestamp_ms,
                            },
                            next.graph.clone(),
                        ),
                    }
                }
                // Freed here, with the lock let go.
                drop(forgotten);
                drop(restored);
            }
        }
        let sequence = published.snapshot.as_ref().map(|s| s.sequence);
        *self.published.write() = published;
        if let Some(sequence) = sequence {
            self.latest.store(sequence, Ordering::SeqCst);
        }
    }

    /// Changes the status alone (before the first snapshot exists).
    pub(crate) fn update_status(&self, change: impl FnOnce(&mut CollectorStatus)) {
        change(Arc::make_mut(&mut self.published.write().status));
    }
}
