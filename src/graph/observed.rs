//! What the collector observed, in the form the graph builder takes: the builder's input,
//! and the boundary between collection (which fills it) and the graph (which reads it).
//!
//! Every observed object keeps its JSON text verbatim (`raw`), because the context graph
//! serves it unchanged as `properties`; beside it sit only the few fields the graph rules
//! need, parsed once. Parsing a 150,000-pod cluster into trees would cost several times the
//! memory of the text itself, and the text is what we must send anyway.

use std::collections::BTreeMap;
use std::sync::Arc;

use super::selector::LabelSelector;
use super::Kind;

/// The JSON text of one observed object, shared between snapshots without copying.
pub(crate) type RawJson = Arc<str>;

/// Fields every Kubernetes object has (those we use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    /// Empty for kinds without namespaces.
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub(crate) labels: BTreeMap<String, String>,
    /// The uids of the objects `metadata.ownerReferences` names.
    pub(crate) owners: Vec<String>,
}

/// A Kubernetes object of any kind as observed.
#[derive(Debug, Clone)]
pub struct KubeObject {
    pub kind: Kind,
    pub meta: ObjectMeta,
    pub(crate) raw: RawJson,
    /// Hash of the object ignoring fields that change without the object changing
    /// (`resourceVersion`, `managedFields`, heartbeat and probe times).
    pub(crate) fingerprint: u64,
    /// [`super::fingerprint::text_hash`] and length of the text as the API server sent it
    /// (before `managedFields` was cut out of `raw`): find this object again when the next
    /// list sends the very same text.
    pub(crate) text_hash: u64,
    pub(crate) text_len: usize,
    pub(crate) facts: Facts,
}

/// What the graph rules read of an object beyond its metadata, by kind.
#[derive(Debug, Clone, Default, PartialEq)]
pub(crate) enum Facts {
    /// Nothing beyond the metadata.
    #[default]
    None,
    Node(NodeFacts),
    Pod(PodFacts),
    /// The pods an object selects by label (a Service, a ReplicationController). `None`
    /// selects nothing.
    Selector(Option<LabelSelector>),
    /// Which pods of which Service an EndpointSlice lists.
    Endpoints(EndpointFacts),
    /// The Services an Ingress sends to (its rules' and its default backend's).
    Routes(Vec<String>),
    /// The PersistentVolume a claim is bound to (`spec.volumeName`), once it is.
    Claim(Option<String>),
    /// What a HorizontalPodAutoscaler scales (`spec.scaleTargetRef`).
    ScaleTarget(Option<TargetRef>),
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct EndpointFacts {
    /// The Service the slice belongs to (its `kubernetes.io/service-name` label).
    pub(crate) service: Option<String>,
    /// The pods its endpoints point to (`targetRef` of kind Pod).
    pub(crate) pods: Vec<PodRef>,
}

/// A pod as another object names it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct PodRef {
    /// Absent: the namespace of the object that names it.
    pub(crate) namespace: Option<String>,
    pub(crate) name: String,
    pub(crate) uid: Option<String>,
}

/// An object of the same namespace, named by kind and name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub(crate) struct TargetRef {
    /// The group of its `apiVersion`, when it has one (`apps`; empty for the core group).
    pub(crate) group: Option<String>,
    pub(crate) kind: String,
    pub(crate) name: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NodeFacts {
    /// `InternalIP`, else `Hostname` address, else none (the name stands in).
    pub address: Option<String>,
    /// The `Hostname` address, the node's label in the graph; the name where there is none.
    pub(crate) hostname: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PodFacts {
    /// `spec.nodeName`; `None` while the pod is not scheduled.
    pub node_name: Option<String>,
    /// Container IDs from `status.containerStatuses` (and init and ephemeral ones), without
    /// their runtime prefix (`docker://`, `containerd://`, `cri-o://`).
    pub container_ids: Vec<String>,
    /// The PersistentVolumeClaims its volumes name.
    pub(crate) claims: Vec<String>,
}

impl KubeObject {
    /// The object's text as the graph shows it.
    pub fn text(&self) -> &str {
        &self.raw
    }

    pub fn node(&self) -> Option<&NodeFacts> {
        match &self.facts {
            Facts::Node(node) => Some(node),
            _ => None,
        }
    }

    pub fn pod(&self) -> Option<&PodFacts> {
        match &self.facts {
            Facts::Pod(pod) => Some(pod),
            _ => None,
        }
    }

    /// An EndpointSlice's Service and what it lists, when the slice names its Service.
    pub(crate) fn endpoints_of_service(&self) -> Option<(&str, &EndpointFacts)> {
        match &self.facts {
            Facts::Endpoints(facts) => Some((facts.service.as_deref()?, facts)),
            _ => None,
        }
    }

    /// The selector of an object that selects pods, when it has one.
    pub(crate) fn selector(&self) -> Option<&LabelSelector> {
        match &self.facts {
            Facts::Selector(selector) => selector.as_ref(),
            _ => None,
        }
    }
}

/// Everything read from the Kubernetes API in one refresh: the objects of each listed kind.
/// Objects are shared, not copied: the watches hold them, and a build reads them; an object
/// no event changed is the very same `Arc` from one build to the next.
#[derive(Debug, Clone)]
pub struct KubeState {
    /// Indexed by [`Kind::index`].
    lists: Vec<Vec<Arc<KubeObject>>>,
}

impl Default for KubeState {
    fn default() -> Self {
        KubeState {
            lists: (0..Kind::count()).map(|_| Vec::new()).collect(),
        }
    }
}

impl KubeState {
    /// The objects of `kind`, in the order they were listed.
    pub fn of(&self, kind: Kind) -> &[Arc<KubeObject>] {
        self.lists.get(kind.index()).map_or(&[], Vec::as_slice)
    }

    pub fn of_mut(&mut self, kind: Kind) -> &mut Vec<Arc<KubeObject>> {
        // Kinds registered after this state was made have no list yet.
        if self.lists.len() <= kind.index() {
            self.lists.resize_with(kind.index() + 1, Vec::new);
        }
        &mut self.lists[kind.index()]
    }

    pub fn set<O: Into<Arc<KubeObject>>>(
        &mut self,
        kind: Kind,
        objects: impl IntoIterator<Item = O>,
    ) {
        *self.of_mut(kind) = objects.into_iter().map(Into::into).collect();
    }
}

/// One container as its node's runtime inspects it.
#[derive(Debug, Clone)]
pub struct Container {
    /// The full 64-hex ID.
    pub id: String,
    /// The runtime's name for it (for Docker, without its leading `/`).
    pub name: String,
    /// The ID of the image it runs (`sha256:…`).
    pub(crate) image_id: String,
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) started_at: String,
    /// When it last stopped (a zero time while it never has).
    pub(crate) finished_at: String,
    pub(crate) running: bool,
    /// A CRI pod sandbox: the pod's own container (Docker's is the `POD` pause container).
    pub(crate) sandbox: bool,
    /// The inspect text, after redaction by the runtime's reader.
    pub(crate) raw: RawJson,
    pub(crate) fingerprint: u64,
}

/// One process of a container, as a map of `ps` column title to value.
#[derive(Debug, Clone)]
pub struct Process {
    pub(crate) pid: String,
    pub(crate) raw: RawJson,
    pub(crate) fingerprint: u64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    /// The first repository tag, else the repository of the first digest; may be empty.
    pub name: String,
    pub(crate) raw: RawJson,
    pub(crate) fingerprint: u64,
}

/// A container with the processes seen in it (none when they could not be read or it is
/// not running).
#[derive(Debug, Clone)]
pub struct ObservedContainer {
    pub container: Arc<Container>,
    pub processes: Vec<Process>,
    /// Processes of the container left out of `processes` because there were too many.
    pub processes_omitted: usize,
    /// When what is shown of the container (its processes, or its inspect) was read, if
    /// that was before this refresh: its node could not be read in full this time, and
    /// this part was carried over from an earlier reading.
    pub stale_since_ms: Option<i64>,
}

/// Everything read from one node's container runtime in one refresh.
#[derive(Debug, Clone, Default)]
pub struct NodeContainers {
    pub node_name: String,
    pub containers: Vec<ObservedContainer>,
    pub images: Vec<Arc<Image>>,
    /// Not read from the node's runtime: told by its pods' statuses (no agent answered).
    pub from_pod_status: bool,
}

/// The complete input of the graph builder.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub kube: KubeState,
    pub nodes: Vec<NodeContainers>,
    /// Nodes whose runtime could not be read this time: what the graph knew of them is
    /// missing, but remembered for when they answer again.
    pub unread_nodes: Vec<String>,
}
