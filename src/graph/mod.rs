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
//! - [`query`]: which resources and relations a query selects;
//! - [`selector`]: label selectors and the pod index that answers them;
//! - `lookup`: what the rules look objects up by (uid, name, label);
//! - `pods`: which pod a container belongs to;
//! - `history`: what keeps a timestamp while a resource is unchanged;
//! - [`update`]: the graph made again from the last one, when objects changed only in place;
//! - [`diff`]: what changed between two graphs, and the way back;
//! - [`fingerprint`]: "unchanged", computed while the collector parses;
//! - `id`: resource IDs, hashed once.

mod build;
pub mod diff;
pub mod fingerprint;
mod history;
mod id;
mod lookup;
pub mod observed;
mod pods;
pub mod query;
pub mod selector;
pub mod update;

pub use build::{build, build_with_basis, BuildOptions};
pub use cluster_insight_kinds::Kind;
pub use history::{History, HISTORY_GRACE};
pub use id::Id;
pub use pods::KubeletName;

use std::sync::Arc;

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
    pub const ALL: [RelationType; 10] = [
        RelationType::Contains,
        RelationType::Runs,
        RelationType::Monitors,
        RelationType::LoadBalances,
        RelationType::CreatedFrom,
        RelationType::Owns,
        RelationType::Routes,
        RelationType::Uses,
        RelationType::BindsTo,
        RelationType::Scales,
    ];

    /// The relation type named `name` (as [`RelationType::as_str`] writes it).
    pub fn from_name(name: &str) -> Option<RelationType> {
        RelationType::ALL.into_iter().find(|r| r.as_str() == name)
    }

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

/// One rule of the graph: a relation, between which types, and when. The builder applies
/// them (`build.rs`); this list states them for people (`/api` shows each with an
/// example from the live graph). `"*"` is any type.
#[derive(Debug, Clone, Copy)]
pub struct RelationRule {
    pub relation: RelationType,
    pub from: &'static [&'static str],
    pub to: &'static [&'static str],
    pub when: &'static str,
}

/// Every rule, in the order the contract gives them.
pub const RELATION_RULES: &[RelationRule] = &[
    RelationRule {
        relation: RelationType::Contains,
        from: &["Cluster"],
        to: &[
            "Node",
            "Namespace",
            "PersistentVolume",
            "Service",
            "ReplicationController",
        ],
        when: "always; also the cluster-wide objects of --extra-kinds kinds that nothing owns",
    },
    RelationRule {
        relation: RelationType::Contains,
        from: &["Namespace"],
        to: &["*"],
        when: "a namespaced object with no owner in the graph that is not a pod a node runs",
    },
    RelationRule {
        relation: RelationType::Contains,
        from: &["Pod"],
        to: &["Container"],
        when: "the container's kubelet labels name the pod, else the pod's containerStatuses \
               list the container, else the kubelet's container name does",
    },
    RelationRule {
        relation: RelationType::Contains,
        from: &["Container"],
        to: &["Process"],
        when: "a row of the container's process list",
    },
    RelationRule {
        relation: RelationType::Runs,
        from: &["Node"],
        to: &["Pod"],
        when: "the pod's spec.nodeName",
    },
    RelationRule {
        relation: RelationType::Runs,
        from: &["Node"],
        to: &["Container"],
        when: "a container of the node that belongs to no pod",
    },
    RelationRule {
        relation: RelationType::Monitors,
        from: &["ReplicationController"],
        to: &["Pod"],
        when: "its selector selects the pod (same namespace)",
    },
    RelationRule {
        relation: RelationType::LoadBalances,
        from: &["Service"],
        to: &["Pod"],
        when: "the Service's EndpointSlices list the pod; without slices, its selector selects it",
    },
    RelationRule {
        relation: RelationType::CreatedFrom,
        from: &["Container"],
        to: &["Image"],
        when: "the container's image ID",
    },
    RelationRule {
        relation: RelationType::Owns,
        from: &["*"],
        to: &["*"],
        when: "the object's ownerReferences name the owner by uid and the owner is in the graph \
               (Deployment → ReplicaSet → Pod, StatefulSet, DaemonSet, Job → Pod, CronJob → Job, \
               any --extra-kinds owner)",
    },
    RelationRule {
        relation: RelationType::Routes,
        from: &["Ingress"],
        to: &["Service"],
        when: "a rule or the default backend names the Service",
    },
    RelationRule {
        relation: RelationType::Uses,
        from: &["Pod"],
        to: &["PersistentVolumeClaim"],
        when: "a volume of the pod names the claim",
    },
    RelationRule {
        relation: RelationType::BindsTo,
        from: &["PersistentVolumeClaim"],
        to: &["PersistentVolume"],
        when: "the claim's spec.volumeName",
    },
    RelationRule {
        relation: RelationType::Scales,
        from: &["HorizontalPodAutoscaler"],
        to: &["*"],
        when: "its scaleTargetRef, when the target is in the graph",
    },
];

impl RelationRule {
    /// Whether a relation of this rule's type from a `from` to a `to` fits the rule.
    pub fn fits(&self, relation: RelationType, from: &str, to: &str) -> bool {
        let among = |types: &[&str], t: &str| types.iter().any(|x| *x == "*" || *x == t);
        self.relation == relation && among(self.from, from) && among(self.to, to)
    }
}

/// A resource of the graph. `properties` is the observed JSON text, never re-serialized.
#[derive(Debug, Clone, PartialEq)]
pub struct Resource {
    pub id: Id,
    pub kind: Kind,
    pub timestamp_ms: i64,
    pub properties: RawJson,
    /// Shared, like the ID and the text: a graph made from the last one copies every
    /// resource but the changed ones' parts.
    pub label: Arc<str>,
    /// Images only: the image's name.
    pub alternate_label: Option<Arc<str>>,
    /// Where a container or image was learnt when it was not from its node's runtime
    /// (`kubernetes`: a pod's status).
    pub source: Option<&'static str>,
    /// Containers and processes only: when what is shown was read, if in an earlier
    /// refresh than this graph's (its node could not be read in full this time).
    pub stale_since_ms: Option<i64>,
}

impl Resource {
    /// The namespace a namespaced object's ID names (`Type:NAMESPACE/NAME`); none for the
    /// other kinds, a Namespace included.
    pub fn namespace(&self) -> Option<&str> {
        if !self.kind.namespaced() {
            return None;
        }
        let rest = self.id.split_once(':')?.1;
        rest.split_once('/').map(|(namespace, _)| namespace)
    }
}

/// A relation between two resources that both exist in the same graph.
#[derive(Debug, Clone, PartialEq)]
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

    /// Whether `other` holds the same resources and relations, in the same order, with
    /// the same timestamps: all but the time it was built. A steady cluster's graphs share
    /// most of their text, and `Arc`s of the same text compare equal by pointer.
    pub fn same_content(&self, other: &Graph) -> bool {
        self.resources == other.resources && self.relations == other.relations
    }
}

/// The first 12 hex digits of an ID, after any `sha256:` prefix.
pub(crate) fn hex12(id: &str) -> &str {
    // The digest after the last colon: `sha256:…`, `registry:5000/app@sha256:…`.
    let hex = id.rsplit_once(':').map_or(id, |(_, h)| h);
    match hex.char_indices().nth(12) {
        Some((end, _)) => &hex[..end],
        None => hex,
    }
}
