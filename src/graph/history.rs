//! What the builder remembers from one graph to the next, so that a resource's timestamp
//! means "first observed in this state".

use std::sync::Arc;

use super::id::{Id, IdMap};
use super::RelationType;

/// What the builder remembers from one graph to the next, so that timestamps mean "first
/// observed in this state": the fingerprint and timestamp of every resource, and the
/// timestamp of every relation, with the build that last saw each.
///
/// Entries that came from a node's container runtime outlive a refresh in which that node could
/// not be read, for [`HISTORY_GRACE`] builds: a node whose agent was unreachable for a
/// while comes back with the timestamps its unchanged containers had, instead of looking
/// new. Everything else is forgotten as soon as it is not seen.
#[derive(Debug, Clone, Default)]
pub struct History {
    pub(super) generation: u64,
    /// Fingerprint and timestamp of every resource.
    pub(super) resources: IdMap<Id, Entry<(u64, i64)>>,
    pub(super) relations: IdMap<(RelationType, Id, Id), Entry<i64>>,
}

/// A remembered value, the build that last saw it, and the node it came from, if any.
#[derive(Debug, Clone)]
pub(super) struct Entry<T> {
    pub(super) value: T,
    pub(super) seen: u64,
    pub(super) node: Option<Arc<str>>,
}

/// Builds an unseen entry is kept for.
pub const HISTORY_GRACE: u64 = 30;

impl History {
    /// Carries over from `previous` the entries of `unread_nodes` this build did not see,
    /// while they are within the grace period.
    pub(super) fn carry_over(&mut self, previous: &History, unread_nodes: &[String]) {
        if unread_nodes.is_empty() {
            return;
        }
        let generation = self.generation;
        let keep = |node: &Option<Arc<str>>, seen: u64| {
            generation - seen < HISTORY_GRACE
                && node
                    .as_deref()
                    .is_some_and(|n| unread_nodes.iter().any(|u| u == n))
        };
        for (id, entry) in &previous.resources {
            if keep(&entry.node, entry.seen) && !self.resources.contains_key(id) {
                self.resources.insert(id.clone(), entry.clone());
            }
        }
        for (key, entry) in &previous.relations {
            if keep(&entry.node, entry.seen) && !self.relations.contains_key(key) {
                self.relations.insert(key.clone(), entry.clone());
            }
        }
    }
}
