//! The collector's account of itself: per-source health, calls and phase times of the last
//! refresh. The API renders it as `/status`; its keys are the table's plurals and the nodes'
//! names.

use std::collections::BTreeMap;
use std::time::Duration;

use super::nodes::Pace;
use crate::publish::snapshot::Counts;

/// The health of one source (one Kubernetes list, or one node's runtime).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct SourceStatus {
    pub(crate) ok: bool,
    /// Not read on purpose: a kind the API server does not serve, or that the master may
    /// not list. `error` says why; the rest of the graph is whole.
    pub(crate) skipped: bool,
    pub(crate) error: Option<String>,
    pub(crate) last_attempt_ms: i64,
    pub(crate) last_ok_ms: Option<i64>,
    /// Where the source was reached, for people reading `/status`.
    pub(crate) endpoint: String,
    /// Objects read from it in the last refresh (for a node: containers).
    pub(crate) objects: usize,
    /// Calls of the last refresh that failed while the source as a whole answered (a
    /// container's inspect or processes, an image inspect).
    pub(crate) failed_calls: usize,
    /// A node's runtime, as its agent names it (`containerd 1.7.24 (CRI runtime.v1 v1)`).
    pub(crate) runtime: Option<String>,
    /// What a source that answered could not tell (an agent that reads no processes).
    pub(crate) note: Option<String>,
    /// A node's last collection: complete, cut by its deadline, or failed.
    pub(crate) collection: Collection,
    /// A Kubernetes kind's watch.
    pub(crate) watch: Option<crate::collect::watch::WatchStatus>,
}

/// How much of a node its last collection read.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) enum Collection {
    /// Not a node, or not read yet.
    #[default]
    None,
    Complete,
    /// Cut by the node's deadline: what was read is shown, the rest carried over from
    /// earlier readings where there were any.
    Cut(Shortfall),
    Failed,
}

/// What a node's collection did not read in time.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct Shortfall {
    /// Listed containers never inspected: not shown.
    pub(crate) uninspected: usize,
    /// Containers whose state changed, shown as last inspected.
    pub(crate) carried_inspects: usize,
    /// Running containers shown with the processes of an earlier reading.
    pub(crate) carried_processes: usize,
    /// Running containers whose processes were never read: shown without.
    pub(crate) unread_processes: usize,
    /// Images never read: not shown.
    pub(crate) unread_images: usize,
    /// The oldest reading that stands in for one not made.
    pub(crate) oldest_reading_ms: Option<i64>,
}

impl Shortfall {
    pub(crate) fn note_reading(&mut self, read_ms: i64) {
        self.oldest_reading_ms = Some(self.oldest_reading_ms.map_or(read_ms, |o| o.min(read_ms)));
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.uninspected == 0
            && self.carried_inspects == 0
            && self.carried_processes == 0
            && self.unread_processes == 0
            && self.unread_images == 0
    }
}

impl std::fmt::Display for Shortfall {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let parts = [
            (self.uninspected, "container(s) not inspected"),
            (
                self.carried_inspects,
                "changed container(s) shown as last inspected",
            ),
            (
                self.carried_processes,
                "container(s) shown with earlier processes",
            ),
            (self.unread_processes, "container(s) without processes"),
            (self.unread_images, "image(s) not read"),
        ];
        let mut first = true;
        for (count, what) in parts.into_iter().filter(|(count, _)| *count > 0) {
            if !first {
                f.write_str(", ")?;
            }
            first = false;
            write!(f, "{count} {what}")?;
        }
        Ok(())
    }
}

impl SourceStatus {
    /// A source passed over, and why.
    pub(crate) fn record_skipped(&mut self, now_ms: i64, endpoint: String, why: String) {
        self.record(now_ms, endpoint, Err(why));
        self.skipped = true;
    }

    /// Says the source is as it was at the last reading, now.
    pub(crate) fn confirm(&mut self, now_ms: i64) {
        self.last_attempt_ms = now_ms;
        if self.ok {
            self.last_ok_ms = Some(now_ms);
        }
    }

    pub(crate) fn record(&mut self, now_ms: i64, endpoint: String, outcome: Result<usize, String>) {
        self.last_attempt_ms = now_ms;
        self.endpoint = endpoint;
        self.skipped = false;
        match outcome {
            Ok(objects) => {
                self.ok = true;
                self.error = None;
                self.last_ok_ms = Some(now_ms);
                self.objects = objects;
            }
            Err(e) => {
                self.ok = false;
                self.error = Some(e);
                self.objects = 0;
            }
        }
    }
}

/// Calls made by one refresh, by kind.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct CallCounts {
    pub(crate) kube_pages: usize,
    /// Watch events applied (bookmarks not counted).
    pub(crate) kube_events: usize,
    /// `GET /node` of node agents (one per node and refresh, when agents serve it).
    pub(crate) agent_node: usize,
    pub(crate) runtime_list: usize,
    pub(crate) runtime_inspect: usize,
    pub(crate) runtime_processes: usize,
    pub(crate) runtime_image: usize,
}

impl CallCounts {
    pub(crate) fn add(&mut self, other: &CallCounts) {
        self.kube_pages += other.kube_pages;
        self.kube_events += other.kube_events;
        self.agent_node += other.agent_node;
        self.runtime_list += other.runtime_list;
        self.runtime_inspect += other.runtime_inspect;
        self.runtime_processes += other.runtime_processes;
        self.runtime_image += other.runtime_image;
    }

    pub(crate) fn runtime_total(&self) -> usize {
        self.agent_node
            + self.runtime_list
            + self.runtime_inspect
            + self.runtime_processes
            + self.runtime_image
    }
}

/// Where the time of one refresh went, in milliseconds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct Phases {
    pub(crate) kubernetes_ms: u64,
    pub(crate) runtime_ms: u64,
    pub(crate) build_ms: u64,
    pub(crate) render_ms: u64,
}

/// How the graphs so far were made: built whole, or made from the last one with the
/// changed resources replaced in place, or with what changed spliced in.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub(crate) struct BuildCounts {
    pub(crate) whole: u64,
    pub(crate) in_place: u64,
    pub(crate) spliced: u64,
}

/// What `/status` shows about the collector.
#[derive(Debug, Clone, Default)]
pub(crate) struct CollectorStatus {
    pub(crate) refreshes: u64,
    pub(crate) builds: BuildCounts,
    /// Builds between refreshes, each for a change a watch brought.
    pub(crate) kube_updates: u64,
    pub(crate) last_kube_update_ms: Option<i64>,
    pub(crate) last_refresh_start_ms: Option<i64>,
    pub(crate) last_refresh_duration: Duration,
    pub refresh_interval: Duration,
    pub(crate) calls: CallCounts,
    pub(crate) phases: Phases,
    /// How the nodes were read: threads, mean time per node.
    pub(crate) node_reading: Pace,
    pub(crate) counts: Counts,
    /// By list, keyed by [`Kind::status_key`](crate::graph::Kind::status_key): `nodes`,
    /// `pods`, …, `rollouts.argoproj.io`.
    pub(crate) kubernetes: BTreeMap<String, SourceStatus>,
    /// By node name.
    pub nodes: BTreeMap<String, SourceStatus>,
}
