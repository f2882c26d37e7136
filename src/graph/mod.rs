//! The context graph and its builder: a pure function from what was collected to the
//! graph (contract §3).
//!
//! No I/O and no clock here: the collector passes in what it observed, the time and the
//! [`History`] of the previous build, and gets back the graph and the history to keep.
//! Nothing here reads a source's wire format or knows which runtime a node has: the input
//! is already parsed, and the rules are the contract's (the kubelet's labels and container
//! names among them). The types of resources are the table of kinds ([`Kind`]).
//!
//! - [`observed`]: the builder's input, filled by the collector;
//! - [`build`](build()): the rules — IDs, labels, relations;
//! - [`selector`]: label selectors and the pod index that answers them;
//! - `pods`: which pod a container belongs to;
//! - `history`: what keeps a timestamp while a resource is unchanged;
//! - [`fingerprint`]: "unchanged", computed while the collector parses;
//! - `id`: resource IDs, hashed once.

mod build;
pub mod fingerprint;
mod history;
mod id;
pub mod observed;
mod pods;
pub mod selector;

pub use build::{build, BuildOptions};
pub use cluster_insight_kinds::Kind;
pub use history::{History, HISTORY_GRACE};
pub use id::Id;
pub use pods::KubeletName;

use observed::RawJson;

/// The relations between resources.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RelationType {
    Contains,
    Runs,
    Monitors,
    LoadBalances,
    CreatedFrom,
    Owns,
    Routes,
    Uses,
    BindsTo,
    Scales,
}

impl RelationType {
    pub fn as_str(self) -> &'static str {
        match self {
            RelationType::Contains => "contains",
            RelationType::Runs => "runs",
            RelationType::Monitors => "monitors",
            RelationType::LoadBalances => "loadBalances",
            RelationType::CreatedFrom => "createdFrom",
            RelationType::Owns => "owns",
            RelationType::Routes => "routes",
            RelationType::Uses => "uses",
            RelationType::BindsTo => "bindsTo",
            RelationType::Scales => "scales",
        }
    }
}

/// A resource of the graph. `properties` is the observed JSON text, never re-serialized.
#[derive(Debug, Clone)]
pub struct Resource {
    pub id: Id,
    pub kind: Kind,
    pub timestamp_ms: i64,
    pub properties: RawJson,
    pub label: String,
    /// Images only: the image's name.
    pub alternate_label: Option<String>,
}

/// A relation between two resources that both exist in the same graph.
#[derive(Debug, Clone)]
pub struct Relation {
    pub kind: RelationType,
    pub source: Id,
    pub target: Id,
    pub timestamp_ms: i64,
}

#[derive(Debug, Clone, Default)]
pub struct Graph {
    pub timestamp_ms: i64,
    /// Grouped by type, in the table's order; within a type, in the order observed.
    pub resources: Vec<Resource>,
    pub relations: Vec<Relation>,
}

impl Graph {
    pub fn count(&self, kind: Kind) -> usize {
        self.resources.iter().filter(|r| r.kind == kind).count()
    }
}

/// The first 12 hex digits of an ID, after any `sha256:` prefix.
pub(crate) fn hex12(id: &str) -> &str {
    let hex = id.split_once(':').map_or(id, |(_, h)| h);
    match hex.char_indices().nth(12) {
        Some((end, _)) => &hex[..end],
        None => hex,
    }
}
