//! What cannot have changed is not asked again: container inspects while the list shows the
//! container in the same state, image inspects always (an image ID names its content).
//! A container's last processes are kept too, to stand in when there is no time to ask.

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::Listed;
use crate::graph::observed::{Container, Image, Process};
use cluster_insight_wire::time::parse_rfc3339_millis;

/// Re-inspect every container at least this often, to catch changes the list cannot show
/// (labels of a running container cannot change, but its inspect has more than the list).
pub(crate) const INSPECT_MAX_AGE_REFRESHES: u64 = 30;

/// Slack for clocks, and for the time between the list and now, when a listed age is held
/// against the time the inspect gave.
const AGE_SLACK_MS: i64 = 2000;

/// A container inspect kept while the container is known not to have changed.
pub(crate) struct CachedContainer {
    pub container: Arc<Container>,
    /// The listed state the inspect was made under.
    listed_state: String,
    /// When the container entered its state: `StartedAt` while it runs, else `FinishedAt`.
    since_ms: Option<i64>,
    inspected_in_refresh: u64,
    /// When the inspect was made.
    pub inspected_ms: i64,
    /// The container's processes, as last read.
    pub processes: Option<ReadProcesses>,
}

/// A container's processes and when they were read.
pub(crate) struct ReadProcesses {
    pub rows: Vec<Process>,
    pub read_ms: i64,
}

impl CachedContainer {
    pub(crate) fn new(
        container: Container,
        listed: &Listed,
        refresh: u64,
        now_ms: i64,
    ) -> CachedContainer {
        let since = if container.running {
            &container.started_at
        } else {
            &container.finished_at
        };
        CachedContainer {
            since_ms: parse_rfc3339_millis(since),
            listed_state: listed.state.clone(),
            container: Arc::new(container),
            inspected_in_refresh: refresh,
            inspected_ms: now_ms,
            processes: None,
        }
    }

    /// A new inspect of the same container: the processes read before still describe it
    /// while it has not been started again.
    pub(crate) fn keep_processes_of(&mut self, previous: CachedContainer) {
        if previous.container.started_at == self.container.started_at
            && previous.container.running
            && self.container.running
        {
            self.processes = previous.processes;
        }
    }

    /// Whether the inspect still describes the container `listed` shows now: the same state,
    /// in it since the time we know (the listed age must fit), and not older than the
    /// maximum age.
    pub(crate) fn still_current(&self, listed: &Listed, now_ms: i64, refresh: u64) -> bool {
        if self.listed_state != listed.state
            || refresh.saturating_sub(self.inspected_in_refresh) >= INSPECT_MAX_AGE_REFRESHES
        {
            return false;
        }
        match (listed.age_at_most_secs, self.since_ms) {
            (Some(bound), Some(since)) => {
                let age_ms = now_ms.saturating_sub(since);
                let bound_ms = i64::try_from(bound)
                    .unwrap_or(i64::MAX)
                    .saturating_mul(1000);
                age_ms <= bound_ms.saturating_add(AGE_SLACK_MS)
            }
            // No age to check (a created container, an old daemon): the state decides.
            (None, _) => true,
            (Some(_), None) => false,
        }
    }
}

/// Image inspects by ID, shared by all node workers, with the refresh that last used each.
#[derive(Default)]
pub(crate) struct ImageCache(Mutex<HashMap<String, (Arc<Image>, u64)>>);

impl ImageCache {
    /// The image, if known; marks it used in `refresh`.
    pub(crate) fn get(&self, id: &str, refresh: u64) -> Option<Arc<Image>> {
        let mut images = self.0.lock();
        let (image, seen) = images.get_mut(id)?;
        *seen = refresh;
        Some(Arc::clone(image))
    }

    /// Remembers `image` as the answer for `id`, the ID it was asked for: a node answers
    /// only for the IDs it was asked about, whatever its answer says its ID is.
    pub(crate) fn insert(&self, id: &str, image: Arc<Image>, refresh: u64) {
        self.0.lock().insert(id.to_string(), (image, refresh));
    }

    /// Forgets images no container has used for a while.
    pub(crate) fn forget_unused(&self, refresh: u64) {
        self.0
            .lock()
            .retain(|_, (_, seen)| refresh.saturating_sub(*seen) < INSPECT_MAX_AGE_REFRESHES);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::collect::runtime::docker;

    fn listed(state: &str, status: &str) -> Listed {
        docker::listed_state(docker::ListedContainer {
            id: "abc".into(),
            state: state.into(),
            status: status.into(),
        })
    }

    fn cached(since_ms: i64, state: &str, status: &str, refresh: u64) -> CachedContainer {
        let mut cached = CachedContainer::new(
            docker::parse_container_inspect(r#"{"Id":"abc"}"#, false).unwrap(),
            &listed(state, status),
            refresh,
            0,
        );
        cached.since_ms = Some(since_ms);
        cached
    }

    #[test]
    fn a_restart_invalidates_the_cached_inspect() {
        let hour = 3_600_000;
        let now = 100 * hour;
        let c = cached(now - 2 * hour, "running", "Up 2 hours", 1);
        let current = |c: &CachedContainer, state: &str, status: &str, refresh: u64| {
            c.still_current(&listed(state, status), now, refresh)
        };
        assert!(current(&c, "running", "Up 2 hours", 2));
        // Restarted 5 seconds ago: the list says so, the cache does not.
        assert!(!current(&c, "running", "Up 5 seconds", 2));
        assert!(!current(&c, "exited", "Exited (0) 1 second ago", 2));
        // Health changed: the state differs.
        assert!(!current(&c, "running", "Up 2 hours (unhealthy)", 2));
        // Too old an inspect.
        assert!(!current(&c, "running", "Up 2 hours", 31));
        // An absurd uptime from the network neither panics nor matches nonsense.
        assert!(current(&c, "running", "Up 18446744073709551615 years", 2));

        let e = cached(now - 50 * hour, "exited", "Exited (1) 2 days ago", 1);
        assert!(current(&e, "exited", "Exited (1) 2 days ago", 2));
        // Run again and exited again since: the age went down.
        assert!(!current(&e, "exited", "Exited (1) 5 seconds ago", 2));
        assert!(!current(&e, "exited", "Exited (0) 2 days ago", 2));
    }
}
