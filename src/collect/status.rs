//! The collector's account of itself: per-source health, calls and phase times of the last
//! refresh. The API renders it as `/status`; its keys are the table's plurals and the nodes'
//! names.

use std::collections::BTreeMap;
use std::time::Duration;

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
}

impl SourceStatus {
    /// A source that gave `objects` but may have failed part of the way (`error`).
    pub(crate) fn record_partial(
        &mut self,
        now_ms: i64,
        endpoint: String,
        objects: usize,
        error: Option<String>,
    ) {
        match error {
            None => self.record(now_ms, endpoint, Ok(objects)),
            Some(e) => {
                self.record(now_ms, endpoint, Err(e));
                self.objects = objects;
            }
        }
    }

    /// A source passed over, and why.
    pub(crate) fn record_skipped(&mut self, now_ms: i64, endpoint: String, why: String) {
        self.record(now_ms, endpoint, Err(why));
        self.skipped = true;
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

/// What `/status` shows about the collector.
#[derive(Debug, Clone, Default)]
pub(crate) struct CollectorStatus {
    pub(crate) refreshes: u64,
    pub(crate) last_refresh_start_ms: Option<i64>,
    pub(crate) last_refresh_duration: Duration,
    pub refresh_interval: Duration,
    pub(crate) calls: CallCounts,
    pub(crate) phases: Phases,
    pub(crate) counts: Counts,
    /// By list, keyed by [`Kind::status_key`](crate::graph::Kind::status_key): `nodes`,
    /// `pods`, …, `rollouts.argoproj.io`.
    pub(crate) kubernetes: BTreeMap<String, SourceStatus>,
    /// By node name.
    pub nodes: BTreeMap<String, SourceStatus>,
}
