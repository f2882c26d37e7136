//! What the collector observed, in the form the graph builder takes.
//!
//! Every observed object keeps its JSON text verbatim (`raw`), because the context graph
//! serves it unchanged as `properties`; beside it sit only the few fields the graph needs,
//! parsed once. Parsing a 150,000-pod cluster into trees would cost several times the memory
//! of the text itself, and the text is what we must send anyway.
//!
//! Parsers here take text and return typed errors; they never panic on any input.

use std::collections::BTreeMap;
use std::fmt;
use std::sync::Arc;

use serde::Deserialize;
use serde_json::value::RawValue;

use crate::fingerprint;

/// The JSON text of one observed object, shared between snapshots without copying.
pub type RawJson = Arc<str>;

/// Why a piece of observed data could not be used.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ParseError {
    pub what: String,
    pub detail: String,
}

impl ParseError {
    pub fn new(what: impl Into<String>, detail: impl fmt::Display) -> ParseError {
        ParseError {
            what: what.into(),
            detail: detail.to_string(),
        }
    }
}

impl fmt::Display for ParseError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "malformed {}: {}", self.what, self.detail)
    }
}

impl std::error::Error for ParseError {}

/// Fields every Kubernetes object has (those we use).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ObjectMeta {
    pub namespace: String,
    pub name: String,
    pub uid: String,
    pub labels: BTreeMap<String, String>,
}

/// A Kubernetes object of any kind as observed.
#[derive(Debug, Clone)]
pub struct KubeObject {
    pub meta: ObjectMeta,
    pub raw: RawJson,
    /// Hash of the object ignoring fields that change without the object changing
    /// (`resourceVersion`, `managedFields`, heartbeat and probe times).
    pub fingerprint: u64,
    /// [`fingerprint::text_hash`] of `raw`: finds this object again when the next list
    /// sends the very same text.
    pub text_hash: u64,
}

/// The Kubernetes objects the graph uses, by what they have in common.
pub trait Observed: Clone {
    fn object(&self) -> &KubeObject;
}

impl Observed for Node {
    fn object(&self) -> &KubeObject {
        &self.object
    }
}

impl Observed for Pod {
    fn object(&self) -> &KubeObject {
        &self.object
    }
}

impl Observed for Selecting {
    fn object(&self) -> &KubeObject {
        &self.object
    }
}

/// The objects of the previous list, by their text: an object the API server sends again
/// unchanged is taken from here instead of being parsed, fingerprinted and copied again.
/// In a steady cluster that is nearly every object, and the new snapshot then shares the
/// old one's text instead of holding a second copy.
pub struct Previous<'a, T> {
    items: &'a [T],
    by_hash: std::collections::HashMap<u64, Vec<usize>>,
}

impl<'a, T: Observed> Previous<'a, T> {
    pub fn new(items: &'a [T]) -> Previous<'a, T> {
        let mut by_hash: std::collections::HashMap<u64, Vec<usize>> =
            std::collections::HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            by_hash.entry(item.object().text_hash).or_default().push(i);
        }
        Previous { items, by_hash }
    }

    /// The previous object whose text is exactly `text`, if any.
    pub fn find(&self, text: &str) -> Option<T> {
        let candidates = self.by_hash.get(&fingerprint::text_hash(text))?;
        candidates
            .iter()
            .map(|&i| &self.items[i])
            .find(|item| &*item.object().raw == text)
            .cloned()
    }
}

#[derive(Debug, Clone)]
pub struct Node {
    pub object: KubeObject,
    /// `InternalIP`, else `Hostname` address, else none (the name stands in).
    pub address: Option<String>,
    /// The `Hostname` address, the node's label in the graph; the name where there is none.
    pub hostname: String,
}

#[derive(Debug, Clone)]
pub struct Pod {
    pub object: KubeObject,
    /// `spec.nodeName`; `None` while the pod is not scheduled.
    pub node_name: Option<String>,
    /// Container IDs from `status.containerStatuses` (and init and ephemeral ones), without
    /// their runtime prefix (`docker://`, `containerd://`, `cri-o://`).
    pub container_ids: Vec<String>,
}

/// A Service or a ReplicationController: both select pods by equality of labels.
#[derive(Debug, Clone)]
pub struct Selecting {
    pub object: KubeObject,
    /// `None` or empty: selects nothing.
    pub selector: Option<BTreeMap<String, String>>,
}

/// Everything read from the Kubernetes API in one refresh.
#[derive(Debug, Clone, Default)]
pub struct KubeState {
    pub nodes: Vec<Node>,
    pub pods: Vec<Pod>,
    pub services: Vec<Selecting>,
    pub controllers: Vec<Selecting>,
}

/// One container as inspected through a node's Docker API.
#[derive(Debug, Clone)]
pub struct Container {
    /// The full 64-hex ID.
    pub id: String,
    /// The Docker name without its leading `/`.
    pub name: String,
    /// `Image` of the inspect: the image ID (`sha256:…`).
    pub image_id: String,
    /// `Config.Image`: the name the container was started from.
    pub image_name: String,
    pub labels: BTreeMap<String, String>,
    pub started_at: String,
    /// `State.FinishedAt`: when it last stopped (Docker's zero time while it never has).
    pub finished_at: String,
    pub running: bool,
    /// The inspect text after redaction (see [`crate::docker::redact_inspect`]).
    pub raw: RawJson,
    pub fingerprint: u64,
}

/// One row of a container's `top`, as a map of title to value.
#[derive(Debug, Clone)]
pub struct Process {
    pub pid: String,
    pub raw: RawJson,
    pub fingerprint: u64,
}

#[derive(Debug, Clone)]
pub struct Image {
    pub id: String,
    /// The first repository tag, else the repository of the first digest; may be empty.
    pub name: String,
    pub raw: RawJson,
    pub fingerprint: u64,
}

/// A container with the processes seen in it (none when `top` failed or it is not running).
#[derive(Debug, Clone)]
pub struct ObservedContainer {
    pub container: Arc<Container>,
    pub processes: Vec<Process>,
}

/// Everything read from one node's Docker API in one refresh.
#[derive(Debug, Clone, Default)]
pub struct NodeDocker {
    pub node_name: String,
    pub containers: Vec<ObservedContainer>,
    pub images: Vec<Arc<Image>>,
}

/// The complete input of the graph builder.
#[derive(Debug, Clone, Default)]
pub struct Collected {
    pub kube: KubeState,
    pub docker: Vec<NodeDocker>,
    /// Nodes whose Docker API could not be read this time: what the graph knew of them is
    /// missing, but remembered for when they answer again.
    pub unread_nodes: Vec<String>,
}

// ---------------------------------------------------------------------------------------
// Kubernetes parsers

#[derive(Deserialize)]
struct MetaFields {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
struct WithMeta<S> {
    #[serde(default)]
    metadata: Option<MetaFields>,
    #[serde(default)]
    spec: Option<S>,
    #[serde(default)]
    status: Option<StatusFields>,
}

#[derive(Deserialize, Default)]
struct StatusFields {
    #[serde(default)]
    addresses: Option<Vec<Address>>,
    #[serde(default, rename = "containerStatuses")]
    container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(default, rename = "initContainerStatuses")]
    init_container_statuses: Option<Vec<ContainerStatus>>,
    #[serde(default, rename = "ephemeralContainerStatuses")]
    ephemeral_container_statuses: Option<Vec<ContainerStatus>>,
}

#[derive(Deserialize)]
struct Address {
    #[serde(default, rename = "type")]
    kind: Option<String>,
    #[serde(default)]
    address: Option<String>,
}

#[derive(Deserialize)]
struct ContainerStatus {
    #[serde(default, rename = "containerID")]
    container_id: Option<String>,
}

#[derive(Deserialize, Default)]
struct PodSpec {
    #[serde(default, rename = "nodeName")]
    node_name: Option<String>,
}

#[derive(Deserialize, Default)]
struct ServiceSpec {
    #[serde(default)]
    selector: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize, Default)]
struct ControllerSpec {
    #[serde(default)]
    selector: Option<BTreeMap<String, String>>,
    #[serde(default)]
    template: Option<Template>,
}

#[derive(Deserialize, Default)]
struct Template {
    #[serde(default)]
    metadata: Option<MetaFields>,
}

#[derive(Deserialize, Default)]
struct NoSpec {}

fn parse_with<S: serde::de::DeserializeOwned + Default>(
    kind: &str,
    raw: &RawValue,
) -> Result<(KubeObject, S, StatusFields), ParseError> {
    let parsed: WithMeta<S> =
        serde_json::from_str(raw.get()).map_err(|e| ParseError::new(kind, e))?;
    let meta = parsed
        .metadata
        .ok_or_else(|| ParseError::new(kind, "object has no metadata"))?;
    let name = meta
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ParseError::new(kind, "object has no metadata.name"))?;
    let fingerprint = fingerprint::kube_object(raw.get()).map_err(|e| ParseError::new(kind, e))?;
    let text_hash = fingerprint::text_hash(raw.get());
    let object = KubeObject {
        meta: ObjectMeta {
            namespace: meta.namespace.unwrap_or_default(),
            name,
            uid: meta.uid.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
        },
        raw: Arc::from(raw.get()),
        fingerprint,
        text_hash,
    };
    Ok((
        object,
        parsed.spec.unwrap_or_default(),
        parsed.status.unwrap_or_default(),
    ))
}

pub fn parse_node(raw: &RawValue) -> Result<Node, ParseError> {
    let (object, _spec, status): (_, NoSpec, _) = parse_with("Node", raw)?;
    let addresses = status.addresses.unwrap_or_default();
    let find = |kind: &str| {
        addresses
            .iter()
            .find(|a| a.kind.as_deref() == Some(kind))
            .and_then(|a| a.address.clone())
            .filter(|a| !a.is_empty())
    };
    let internal = find("InternalIP");
    let hostname = find("Hostname");
    Ok(Node {
        address: internal.or_else(|| hostname.clone()),
        hostname: hostname.unwrap_or_else(|| object.meta.name.clone()),
        object,
    })
}

pub fn parse_pod(raw: &RawValue) -> Result<Pod, ParseError> {
    let (object, spec, status): (_, PodSpec, _) = parse_with("Pod", raw)?;
    let container_ids = [
        status.container_statuses,
        status.init_container_statuses,
        status.ephemeral_container_statuses,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|s| s.container_id)
    .filter_map(|id| strip_runtime_prefix(&id).map(str::to_string))
    .collect();
    Ok(Pod {
        object,
        node_name: spec.node_name.filter(|n| !n.is_empty()),
        container_ids,
    })
}

pub fn parse_service(raw: &RawValue) -> Result<Selecting, ParseError> {
    let (object, spec, _): (_, ServiceSpec, _) = parse_with("Service", raw)?;
    Ok(Selecting {
        object,
        selector: spec.selector.filter(|s| !s.is_empty()),
    })
}

pub fn parse_controller(raw: &RawValue) -> Result<Selecting, ParseError> {
    let (object, spec, _): (_, ControllerSpec, _) = parse_with("ReplicationController", raw)?;
    // The API server defaults an absent selector to the template's labels; older or
    // hand-written objects may still lack it, so do the same here.
    let selector = spec
        .selector
        .filter(|s| !s.is_empty())
        .or_else(|| {
            spec.template
                .and_then(|t| t.metadata)
                .and_then(|m| m.labels)
        })
        .filter(|s| !s.is_empty());
    Ok(Selecting { object, selector })
}

/// `docker://abc` → `abc`; any `RUNTIME://ID`. An ID without a runtime is not a container
/// ID Kubernetes would write, so it is refused.
pub fn strip_runtime_prefix(id: &str) -> Option<&str> {
    let (_, rest) = id.split_once("://")?;
    (!rest.is_empty()).then_some(rest)
}

/// A list response: a `…List` object's `items` and `metadata.continue`, or a bare array
/// of objects (some tools store lists that way).
/// The items borrow the page's text: each is copied once, into the object that keeps it.
#[derive(Debug)]
pub struct ListPage<'a> {
    pub items: Vec<&'a RawValue>,
    pub continue_token: Option<String>,
}

pub fn parse_list_page(text: &str) -> Result<ListPage<'_>, ParseError> {
    #[derive(Deserialize)]
    struct ListMeta {
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
    }
    #[derive(Deserialize)]
    struct List<'a> {
        #[serde(default)]
        metadata: Option<ListMeta>,
        #[serde(default, borrow)]
        items: Option<Vec<&'a RawValue>>,
    }
    if text.trim_start().starts_with('[') {
        let items: Vec<&RawValue> =
            serde_json::from_str(text).map_err(|e| ParseError::new("list", e))?;
        return Ok(ListPage {
            items,
            continue_token: None,
        });
    }
    let list: List = serde_json::from_str(text).map_err(|e| ParseError::new("list", e))?;
    let items = list
        .items
        .ok_or_else(|| ParseError::new("list", "no `items` field"))?;
    Ok(ListPage {
        items,
        continue_token: list
            .metadata
            .and_then(|m| m.continue_token)
            .filter(|c| !c.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    #[test]
    fn node_address_prefers_internal_ip_then_hostname() {
        let n = parse_node(&raw(r#"{"metadata":{"name":"n1"},"status":{"addresses":[
            {"type":"Hostname","address":"host-1"},{"type":"InternalIP","address":"10.0.0.1"}]}}"#))
        .unwrap();
        assert_eq!(n.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(n.hostname, "host-1");
        let n = parse_node(&raw(
            r#"{"metadata":{"name":"n1"},"status":{"addresses":[{"type":"Hostname","address":"host-1"}]}}"#,
        ))
        .unwrap();
        assert_eq!(n.address.as_deref(), Some("host-1"));
        let n = parse_node(&raw(r#"{"metadata":{"name":"n1"}}"#)).unwrap();
        assert_eq!((n.address, n.hostname.as_str()), (None, "n1"));
    }

    #[test]
    fn pod_container_ids_lose_their_runtime() {
        let p = parse_pod(&raw(r#"{"metadata":{"name":"p","namespace":"ns"},
            "spec":{"nodeName":"n1"},
            "status":{"containerStatuses":[{"containerID":"docker://abc"},{"name":"waiting"},
              {"containerID":"containerd://def"}],"initContainerStatuses":[{"containerID":"cri-o://0a"}]}}"#))
        .unwrap();
        assert_eq!(p.container_ids, vec!["abc", "def", "0a"]);
        assert_eq!(p.node_name.as_deref(), Some("n1"));
    }

    #[test]
    fn wrong_types_and_missing_names_are_errors_not_panics() {
        for bad in [
            r#"{"metadata":{"name":5}}"#,
            r#"{"metadata":{}}"#,
            r#"{}"#,
            r#"[]"#,
            r#"{"metadata":{"name":"x"},"spec":{"nodeName":[]}}"#,
        ] {
            assert!(parse_pod(&raw(bad)).is_err(), "{bad}");
        }
    }

    #[test]
    fn controller_selector_defaults_to_template_labels() {
        let rc = parse_controller(&raw(r#"{"metadata":{"name":"rc"},
            "spec":{"template":{"metadata":{"labels":{"app":"web"}}}}}"#))
        .unwrap();
        assert_eq!(
            rc.selector.unwrap().get("app").map(String::as_str),
            Some("web")
        );
        let svc =
            parse_service(&raw(r#"{"metadata":{"name":"s"},"spec":{"selector":{}}}"#)).unwrap();
        assert!(svc.selector.is_none());
    }

    #[test]
    fn unchanged_objects_are_found_by_their_text() {
        let a = r#"{"metadata":{"name":"a","resourceVersion":"1"}}"#;
        let b = r#"{"metadata":{"name":"b"}}"#;
        let old = vec![parse_pod(&raw(a)).unwrap(), parse_pod(&raw(b)).unwrap()];
        let previous = Previous::new(&old);
        let found = previous.find(a).expect("the same text");
        assert!(
            Arc::ptr_eq(&found.object.raw, &old[0].object.raw),
            "the text is shared"
        );
        assert!(previous
            .find(r#"{"metadata":{"name":"a","resourceVersion":"2"}}"#)
            .is_none());
        assert!(Previous::<Pod>::new(&[]).find(a).is_none());
    }

    #[test]
    fn list_pages_in_both_shapes() {
        let page = parse_list_page(
            r#"{"kind":"PodList","metadata":{"continue":"abc"},"items":[{"a":1},{"b":2}]}"#,
        )
        .unwrap();
        assert_eq!(
            (page.items.len(), page.continue_token.as_deref()),
            (2, Some("abc"))
        );
        let page = parse_list_page(r#" [{"a":1}]"#).unwrap();
        assert_eq!((page.items.len(), page.continue_token), (1, None));
        let page = parse_list_page(r#"{"metadata":{"continue":""},"items":[]}"#).unwrap();
        assert_eq!(page.continue_token, None);
        assert!(parse_list_page(r#"{"kind":"Status"}"#).is_err());
        assert!(parse_list_page(r#"{"items":[1,"#).is_err());
    }
}
