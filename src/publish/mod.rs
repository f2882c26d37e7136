//! Publishing: the graph of a refresh, serialized once into every body the API serves, and
//! the one place where the collector hands a new snapshot to the handlers.
//!
//! No I/O here. [`Shared`] holds the current snapshot with the status of the refresh that
//! made it, swapped together under one lock, so a reader never sees one without the other.

pub(crate) mod dot;
pub mod snapshot;

use std::sync::Arc;

use parking_lot::RwLock;

use crate::collect::status::CollectorStatus;
use snapshot::Snapshot;

/// What the collector publishes and the API reads.
#[derive(Default)]
pub(crate) struct Shared {
    published: RwLock<Published>,
}

/// A snapshot and the status of the refresh that made it.
#[derive(Default, Clone)]
pub(crate) struct Published {
    pub(crate) snapshot: Option<Arc<Snapshot>>,
    pub(crate) status: Arc<CollectorStatus>,
}

impl Shared {
    pub(crate) fn current(&self) -> Option<Arc<Snapshot>> {
        self.published.read().snapshot.clone()
    }

    /// The snapshot and its status, as one.
    pub(crate) fn published(&self) -> Published {
        self.published.read().clone()
    }

    /// Swaps in a new snapshot with its status.
    pub(crate) fn publish(&self, published: Published) {
        *self.published.write() = published;
    }

    /// Changes the status alone (before the first snapshot exists).
    pub(crate) fn update_status(&self, change: impl FnOnce(&mut CollectorStatus)) {
        change(Arc::make_mut(&mut self.published.write().status));
    }
}
