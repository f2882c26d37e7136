//! Kubernetes objects as the API server sends them, parsed into [`KubeObject`]s: the
//! metadata every object has, its fingerprint, and the facts the graph rules of its kind
//! read — one parse function per kind that has such facts ([`parse_object`] dispatches).
//!
//! The object's text is kept as it came, but for `metadata.managedFields` (the API server's
//! bookkeeping of who wrote which field: large, and of no use to a reader), which is cut
//! out; serde skips every field not named here without building a tree. Parsers take text
//! and return typed errors; they never panic.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::value::RawValue;

use super::ParseError;
use crate::graph::fingerprint;
use crate::graph::observed::{
    EndpointFacts, Facts, KubeObject, NodeFacts, ObjectMeta, PodFacts, PodRef, TargetRef,
};
use crate::graph::selector::LabelSelector;
use crate::graph::Kind;

/// Keys that change while an object does not, ignored at any depth by its fingerprint: the
/// API server bumps `resourceVersion` and rewrites `managedFields` on every write, the
/// kubelet renews heartbeat and probe times.
pub const VOLATILE: &[&str] = &[
    "resourceVersion",
    "managedFields",
    "lastHeartbeatTime",
    "lastProbeTime",
];

/// Parses one object of `kind`.
pub fn parse_object(kind: Kind, raw: &RawValue) -> Result<KubeObject, ParseError> {
    match kind {
        Kind::NODE => node(raw),
        Kind::POD => pod(raw),
        Kind::SERVICE => service(raw),
        Kind::REPLICATION_CONTROLLER => replication_controller(raw),
        Kind::ENDPOINT_SLICE => endpoint_slice(raw),
        Kind::INGRESS => ingress(raw),
        Kind::PERSISTENT_VOLUME_CLAIM => claim(raw),
        Kind::HORIZONTAL_POD_AUTOSCALER => autoscaler(raw),
        _ => {
            let (object, NoFields {}, NoFields {}) = parse_with(kind, raw)?;
            Ok(object)
        }
    }
}

#[derive(Deserialize)]
struct MetaFields<'a> {
    #[serde(default)]
    namespace: Option<String>,
    #[serde(default)]
    name: Option<String>,
    #[serde(default)]
    uid: Option<String>,
    #[serde(default)]
    labels: Option<BTreeMap<String, String>>,
    #[serde(default, rename = "ownerReferences")]
    owner_references: Option<Vec<OwnerReference>>,
    /// Where it lies in the object's text, to cut it out.
    #[serde(default, borrow, rename = "managedFields")]
    managed_fields: Option<&'a RawValue>,
}

#[derive(Deserialize)]
struct OwnerReference {
    #[serde(default)]
    uid: Option<String>,
}

/// An object's metadata, and the parts of its `spec` (`S`) and `status` (`T`) its kind reads.
#[derive(Deserialize)]
struct WithMeta<'a, S, T> {
    #[serde(default, borrow)]
    metadata: Option<MetaFields<'a>>,
    #[serde(default)]
    spec: Option<S>,
    #[serde(default)]
    status: Option<T>,
}

/// A `spec` or `status` of which nothing is read.
#[derive(Deserialize, Default)]
struct NoFields {}

fn parse_with<S, T>(kind: Kind, raw: &RawValue) -> Result<(KubeObject, S, T), ParseError>
where
    S: DeserializeOwned + Default,
    T: DeserializeOwned + Default,
{
    let parsed: WithMeta<'_, S, T> =
        serde_json::from_str(raw.get()).map_err(|e| ParseError::new(kind.name(), e))?;
    let object = object(kind, raw, parsed.metadata)?;
    Ok((
        object,
        parsed.spec.unwrap_or_default(),
        parsed.status.unwrap_or_default(),
    ))
}

/// The object of `raw`, of which `metadata` was read.
fn object(
    kind: Kind,
    raw: &RawValue,
    metadata: Option<MetaFields<'_>>,
) -> Result<KubeObject, ParseError> {
    let what = kind.name();
    let meta = metadata.ok_or_else(|| ParseError::new(what, "object has no metadata"))?;
    let name = meta
        .name
        .filter(|n| !n.is_empty())
        .ok_or_else(|| ParseError::new(what, "object has no metadata.name"))?;
    let fingerprint =
        fingerprint::ignoring(raw.get(), VOLATILE).map_err(|e| ParseError::new(what, e))?;
    let text: Arc<str> = match meta.managed_fields {
        Some(value) => Arc::from(
            without_managed_fields(raw.get(), value.get())
                .as_deref()
                .unwrap_or(raw.get()),
        ),
        None => Arc::from(raw.get()),
    };
    Ok(KubeObject {
        kind,
        meta: ObjectMeta {
            namespace: meta.namespace.unwrap_or_default(),
            name,
            uid: meta.uid.unwrap_or_default(),
            labels: meta.labels.unwrap_or_default(),
            owners: meta
                .owner_references
                .unwrap_or_default()
                .into_iter()
                .filter_map(|o| o.uid.filter(|u| !u.is_empty()))
                .collect(),
        },
        raw: text,
        fingerprint,
        // Of the text as it came, so that the next list finds it again (see `Previous`).
        text_hash: fingerprint::text_hash(raw.get()),
        text_len: raw.get().len(),
        facts: Facts::None,
    })
}

/// The annotation `kubectl apply` keeps the whole applied object in, environment values
/// included.
const LAST_APPLIED: &str = "kubectl.kubernetes.io/last-applied-configuration";

/// The object with its secrets out (contract §8): the `value` of every `env` entry of every
/// pod spec in it (a pod's own, a workload's template, a CronJob's job template, a custom
/// resource's) becomes `<redacted>`, and the last-applied annotation is dropped. Only an
/// object that has either is rewritten (as a whole, so its keys then come sorted); the
/// fingerprint and the text's hash stay those of the object as it came.
pub(crate) fn without_secrets(mut object: KubeObject) -> KubeObject {
    if !object.raw.contains("\"env\"") && !object.raw.contains(LAST_APPLIED) {
        return object;
    }
    let Ok(mut value) = serde_json::from_str::<serde_json::Value>(&object.raw) else {
        return object;
    };
    let mut changed = value
        .pointer_mut("/metadata/annotations")
        .and_then(serde_json::Value::as_object_mut)
        .is_some_and(|annotations| annotations.remove(LAST_APPLIED).is_some());
    redact_pod_specs(&mut value, &mut changed);
    if changed {
        if let Ok(text) = serde_json::to_string(&value) {
            object.raw = Arc::from(text);
        }
    }
    object
}

/// Redacts the environment values of every container list found at any depth.
fn redact_pod_specs(value: &mut serde_json::Value, changed: &mut bool) {
    use serde_json::Value;
    match value {
        Value::Object(map) => {
            for key in ["containers", "initContainers", "ephemeralContainers"] {
                let Some(Value::Array(containers)) = map.get_mut(key) else {
                    continue;
                };
                for container in containers {
                    let Some(Value::Array(env)) = container.get_mut("env") else {
                        continue;
                    };
                    for entry in env {
                        // `valueFrom` names where a value comes from, and stays.
                        if let Some(v) = entry.get_mut("value") {
                            if v.as_str() != Some("<redacted>") {
                                *v = Value::from("<redacted>");
                                *changed = true;
                            }
                        }
                    }
                }
            }
            for v in map.values_mut() {
                redact_pod_specs(v, changed);
            }
        }
        Value::Array(items) => {
            for v in items {
                redact_pod_specs(v, changed);
            }
        }
        _ => {}
    }
}

/// `text` without `metadata.managedFields`, whose value `value` is (a slice of `text`, as
/// the parse found it), cut out of the text as it is (nothing else is rewritten); `None`
/// when it cannot be found for sure (an escaped key), in which case the text stays whole.
fn without_managed_fields(text: &str, value: &str) -> Option<String> {
    // `value` borrows from `text`: where it lies in it.
    let start = (value.as_ptr() as usize).checked_sub(text.as_ptr() as usize)?;
    text.get(start..start + value.len())?;
    let end = start + value.len();
    const KEY: &str = "\"managedFields\"";
    let key = text.get(..start)?.rfind(KEY)?;
    if !text[key + KEY.len()..start]
        .bytes()
        .all(|b| b == b':' || b.is_ascii_whitespace())
    {
        return None;
    }
    let before = text[..key].trim_end();
    let after = text[end..].trim_start();
    let mut out = String::with_capacity(text.len() - (end - key));
    if let Some(head) = before.strip_suffix(',') {
        // `…, "managedFields": […]` : the comma before goes with it.
        out.push_str(head);
        out.push_str(&text[end..]);
    } else if let Some(tail) = after.strip_prefix(',') {
        // `{"managedFields": […], …`: the comma after goes with it.
        out.push_str(&text[..key]);
        out.push_str(tail);
    } else {
        out.push_str(&text[..key]);
        out.push_str(&text[end..]);
    }
    Some(out)
}

fn node(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Status {
        #[serde(default)]
        addresses: Option<Vec<Address>>,
    }
    #[derive(Deserialize)]
    struct Address {
        #[serde(default, rename = "type")]
        kind: Option<String>,
        #[serde(default)]
        address: Option<String>,
    }
    let (mut object, NoFields {}, status): (_, _, Status) = parse_with(Kind::NODE, raw)?;
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
    object.facts = Facts::Node(NodeFacts {
        address: internal.or_else(|| hostname.clone()),
        hostname: hostname.unwrap_or_else(|| object.meta.name.clone()),
    });
    Ok(object)
}

fn pod(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default, rename = "nodeName")]
        node_name: Option<String>,
        #[serde(default)]
        volumes: Option<Vec<Volume>>,
    }
    #[derive(Deserialize)]
    struct Volume {
        #[serde(default, rename = "persistentVolumeClaim")]
        persistent_volume_claim: Option<ClaimSource>,
    }
    #[derive(Deserialize)]
    struct ClaimSource {
        #[serde(default, rename = "claimName")]
        claim_name: Option<String>,
    }
    #[derive(Deserialize, Default)]
    struct Status {
        #[serde(default, rename = "containerStatuses")]
        containers: Option<Vec<ContainerStatus>>,
        #[serde(default, rename = "initContainerStatuses")]
        init_containers: Option<Vec<ContainerStatus>>,
        #[serde(default, rename = "ephemeralContainerStatuses")]
        ephemeral_containers: Option<Vec<ContainerStatus>>,
    }
    #[derive(Deserialize)]
    struct ContainerStatus {
        #[serde(default, rename = "containerID")]
        container_id: Option<String>,
    }
    let (mut object, spec, status): (_, Spec, Status) = parse_with(Kind::POD, raw)?;
    let claims = spec
        .volumes
        .unwrap_or_default()
        .into_iter()
        .filter_map(|v| v.persistent_volume_claim.and_then(|c| c.claim_name))
        .filter(|c| !c.is_empty())
        .collect();
    let container_ids = [
        status.containers,
        status.init_containers,
        status.ephemeral_containers,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .filter_map(|s| s.container_id)
    .filter_map(|id| strip_runtime_prefix(&id).map(str::to_string))
    .collect();
    object.facts = Facts::Pod(PodFacts {
        node_name: spec.node_name.filter(|n| !n.is_empty()),
        container_ids,
        claims,
    });
    Ok(object)
}

fn service(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default)]
        selector: Option<BTreeMap<String, String>>,
    }
    let (mut object, spec, NoFields {}): (_, Spec, _) = parse_with(Kind::SERVICE, raw)?;
    // A Service without a selector (or with an empty one) selects no pods.
    object.facts = Facts::Selector(
        spec.selector
            .filter(|s| !s.is_empty())
            .map(LabelSelector::from_labels),
    );
    Ok(object)
}

fn replication_controller(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default)]
        selector: Option<BTreeMap<String, String>>,
        #[serde(default)]
        template: Option<Template>,
    }
    #[derive(Deserialize, Default)]
    struct Template {
        #[serde(default)]
        metadata: Option<TemplateMeta>,
    }
    #[derive(Deserialize, Default)]
    struct TemplateMeta {
        #[serde(default)]
        labels: Option<BTreeMap<String, String>>,
    }
    let (mut object, spec, NoFields {}): (_, Spec, _) =
        parse_with(Kind::REPLICATION_CONTROLLER, raw)?;
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
    object.facts = Facts::Selector(selector.map(LabelSelector::from_labels));
    Ok(object)
}

fn endpoint_slice(raw: &RawValue) -> Result<KubeObject, ParseError> {
    // A slice has its endpoints at the top, beside its metadata: no spec, no status.
    #[derive(Deserialize)]
    struct Slice<'a> {
        #[serde(default, borrow)]
        metadata: Option<MetaFields<'a>>,
        #[serde(default)]
        endpoints: Option<Vec<Endpoint>>,
    }
    #[derive(Deserialize)]
    struct Endpoint {
        #[serde(default, rename = "targetRef")]
        target: Option<Target>,
    }
    #[derive(Deserialize)]
    struct Target {
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        namespace: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        uid: Option<String>,
    }
    let slice: Slice = serde_json::from_str(raw.get())
        .map_err(|e| ParseError::new(Kind::ENDPOINT_SLICE.name(), e))?;
    let mut object = object(Kind::ENDPOINT_SLICE, raw, slice.metadata)?;
    let pods = slice
        .endpoints
        .unwrap_or_default()
        .into_iter()
        .filter_map(|e| e.target)
        .filter(|t| t.kind.as_deref() == Some("Pod"))
        .filter_map(|t| {
            Some(PodRef {
                namespace: t.namespace.filter(|n| !n.is_empty()),
                name: t.name.filter(|n| !n.is_empty())?,
                uid: t.uid.filter(|u| !u.is_empty()),
            })
        })
        .collect();
    object.facts = Facts::Endpoints(EndpointFacts {
        service: object.meta.labels.get(SERVICE_NAME_LABEL).cloned(),
        pods,
    });
    Ok(object)
}

/// The label that ties an EndpointSlice to its Service.
const SERVICE_NAME_LABEL: &str = "kubernetes.io/service-name";

fn ingress(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default, rename = "defaultBackend")]
        default_backend: Option<Backend>,
        #[serde(default)]
        rules: Option<Vec<Rule>>,
    }
    #[derive(Deserialize)]
    struct Rule {
        #[serde(default)]
        http: Option<Http>,
    }
    #[derive(Deserialize)]
    struct Http {
        #[serde(default)]
        paths: Option<Vec<Path>>,
    }
    #[derive(Deserialize)]
    struct Path {
        #[serde(default)]
        backend: Option<Backend>,
    }
    #[derive(Deserialize)]
    struct Backend {
        #[serde(default)]
        service: Option<ServiceBackend>,
    }
    #[derive(Deserialize)]
    struct ServiceBackend {
        #[serde(default)]
        name: Option<String>,
    }
    let (mut object, spec, NoFields {}): (_, Spec, _) = parse_with(Kind::INGRESS, raw)?;
    let paths = spec
        .rules
        .unwrap_or_default()
        .into_iter()
        .filter_map(|r| r.http)
        .flat_map(|h| h.paths.unwrap_or_default())
        .filter_map(|p| p.backend);
    let mut services: Vec<String> = Vec::new();
    for backend in spec.default_backend.into_iter().chain(paths) {
        if let Some(name) = backend
            .service
            .and_then(|s| s.name)
            .filter(|n| !n.is_empty())
        {
            if !services.contains(&name) {
                services.push(name);
            }
        }
    }
    object.facts = Facts::Routes(services);
    Ok(object)
}

fn claim(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default, rename = "volumeName")]
        volume_name: Option<String>,
    }
    let (mut object, spec, NoFields {}): (_, Spec, _) =
        parse_with(Kind::PERSISTENT_VOLUME_CLAIM, raw)?;
    object.facts = Facts::Claim(spec.volume_name.filter(|v| !v.is_empty()));
    Ok(object)
}

fn autoscaler(raw: &RawValue) -> Result<KubeObject, ParseError> {
    #[derive(Deserialize, Default)]
    struct Spec {
        #[serde(default, rename = "scaleTargetRef")]
        target: Option<Target>,
    }
    #[derive(Deserialize)]
    struct Target {
        #[serde(default, rename = "apiVersion")]
        api_version: Option<String>,
        #[serde(default)]
        kind: Option<String>,
        #[serde(default)]
        name: Option<String>,
    }
    let (mut object, spec, NoFields {}): (_, Spec, _) =
        parse_with(Kind::HORIZONTAL_POD_AUTOSCALER, raw)?;
    object.facts = Facts::ScaleTarget(spec.target.and_then(|t| {
        // `apps/v1` → `apps`; `v1` → the core group.
        let group = t.api_version.filter(|v| !v.is_empty()).map(|v| {
            v.rsplit_once('/')
                .map_or("", |(group, _)| group)
                .to_string()
        });
        Some(TargetRef {
            group,
            kind: t.kind.filter(|k| !k.is_empty())?,
            name: t.name.filter(|n| !n.is_empty())?,
        })
    }));
    Ok(object)
}

/// `docker://abc` → `abc`; any `RUNTIME://ID`. An ID without a runtime is not a container
/// ID Kubernetes would write, so it is refused.
pub(crate) fn strip_runtime_prefix(id: &str) -> Option<&str> {
    let (_, rest) = id.split_once("://")?;
    (!rest.is_empty()).then_some(rest)
}

/// The objects of the previous list, by their text: an object the API server sends again
/// unchanged is taken from here instead of being parsed, fingerprinted and copied again.
/// In a steady cluster that is nearly every object, and the new snapshot then shares the
/// old one's text instead of holding a second copy.
pub(crate) struct Previous<'a> {
    items: &'a [Arc<KubeObject>],
    by_hash: std::collections::HashMap<u64, Vec<usize>>,
}

impl<'a> Previous<'a> {
    pub(crate) fn new(items: &'a [Arc<KubeObject>]) -> Previous<'a> {
        let mut by_hash: std::collections::HashMap<u64, Vec<usize>> =
            std::collections::HashMap::with_capacity(items.len());
        for (i, item) in items.iter().enumerate() {
            by_hash.entry(item.text_hash).or_default().push(i);
        }
        Previous { items, by_hash }
    }

    /// The previous object whose text was exactly `text`, if any: the same keyed hash and
    /// the same length. (`raw` no longer holds that text when `managedFields` was cut out;
    /// the hash is keyed with this process's random key, so whoever writes objects cannot
    /// make two texts collide, and by chance it takes about 2^32 texts of one length.)
    pub(crate) fn find(&self, text: &str) -> Option<Arc<KubeObject>> {
        let candidates = self.by_hash.get(&fingerprint::text_hash(text))?;
        candidates
            .iter()
            .map(|&i| &self.items[i])
            .find(|item| item.text_len == text.len())
            .cloned()
    }
}

/// A list response: a `…List` object's `items` and `metadata.continue`, or a bare array
/// of objects (some tools store lists that way).
/// The items borrow the page's text: each is copied once, into the object that keeps it.
#[derive(Debug)]
pub struct ListPage<'a> {
    pub items: Vec<&'a RawValue>,
    pub(crate) continue_token: Option<String>,
    /// `metadata.resourceVersion`: where a watch of the list starts.
    pub(crate) resource_version: Option<String>,
}

pub fn parse_list_page(text: &str) -> Result<ListPage<'_>, ParseError> {
    #[derive(Deserialize)]
    struct ListMeta {
        #[serde(default, rename = "continue")]
        continue_token: Option<String>,
        #[serde(default, rename = "resourceVersion")]
        resource_version: Option<String>,
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
            resource_version: None,
        });
    }
    let list: List = serde_json::from_str(text).map_err(|e| ParseError::new("list", e))?;
    let items = list
        .items
        .ok_or_else(|| ParseError::new("list", "no `items` field"))?;
    let (continue_token, resource_version) = match list.metadata {
        Some(m) => (m.continue_token, m.resource_version),
        None => (None, None),
    };
    Ok(ListPage {
        items,
        continue_token: continue_token.filter(|c| !c.is_empty()),
        resource_version: resource_version.filter(|v| !v.is_empty()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw(text: &str) -> Box<RawValue> {
        RawValue::from_string(text.to_string()).unwrap()
    }

    fn node_facts(text: &str) -> NodeFacts {
        parse_object(Kind::NODE, &raw(text))
            .unwrap()
            .node()
            .cloned()
            .unwrap()
    }

    #[test]
    fn node_address_prefers_internal_ip_then_hostname() {
        let n = node_facts(
            r#"{"metadata":{"name":"n1"},"status":{"addresses":[
            {"type":"Hostname","address":"host-1"},{"type":"InternalIP","address":"10.0.0.1"}]}}"#,
        );
        assert_eq!(n.address.as_deref(), Some("10.0.0.1"));
        assert_eq!(n.hostname, "host-1");
        let n = node_facts(
            r#"{"metadata":{"name":"n1"},"status":{"addresses":[{"type":"Hostname","address":"host-1"}]}}"#,
        );
        assert_eq!(n.address.as_deref(), Some("host-1"));
        let n = node_facts(r#"{"metadata":{"name":"n1"}}"#);
        assert_eq!((n.address, n.hostname.as_str()), (None, "n1"));
    }

    #[test]
    fn pod_container_ids_lose_their_runtime() {
        let p = parse_object(Kind::POD, &raw(r#"{"metadata":{"name":"p","namespace":"ns"},
            "spec":{"nodeName":"n1"},
            "status":{"containerStatuses":[{"containerID":"docker://abc"},{"name":"waiting"},
              {"containerID":"containerd://def"}],"initContainerStatuses":[{"containerID":"cri-o://0a"}]}}"#))
        .unwrap();
        let facts = p.pod().unwrap();
        assert_eq!(facts.container_ids, vec!["abc", "def", "0a"]);
        assert_eq!(facts.node_name.as_deref(), Some("n1"));
        assert_eq!((p.kind, p.meta.namespace.as_str()), (Kind::POD, "ns"));
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
            assert!(parse_object(Kind::POD, &raw(bad)).is_err(), "{bad}");
        }
        let e = parse_object(Kind::SERVICE, &raw("{}")).unwrap_err();
        assert_eq!(e.to_string(), "malformed Service: object has no metadata");
    }

    #[test]
    fn controller_selector_defaults_to_template_labels() {
        let rc = parse_object(
            Kind::REPLICATION_CONTROLLER,
            &raw(r#"{"metadata":{"name":"rc"},
            "spec":{"template":{"metadata":{"labels":{"app":"web"}}}}}"#),
        )
        .unwrap();
        assert_eq!(
            rc.selector()
                .unwrap()
                .match_labels
                .get("app")
                .map(String::as_str),
            Some("web")
        );
        let svc = parse_object(
            Kind::SERVICE,
            &raw(r#"{"metadata":{"name":"s"},"spec":{"selector":{}}}"#),
        )
        .unwrap();
        assert!(svc.selector().is_none());
    }

    #[test]
    fn unchanged_objects_are_found_by_their_text() {
        let a = r#"{"metadata":{"name":"a","resourceVersion":"1"}}"#;
        let b = r#"{"metadata":{"name":"b"}}"#;
        let old = vec![
            Arc::new(parse_object(Kind::POD, &raw(a)).unwrap()),
            Arc::new(parse_object(Kind::POD, &raw(b)).unwrap()),
        ];
        let previous = Previous::new(&old);
        let found = previous.find(a).expect("the same text");
        assert!(Arc::ptr_eq(&found.raw, &old[0].raw), "the text is shared");
        assert!(previous
            .find(r#"{"metadata":{"name":"a","resourceVersion":"2"}}"#)
            .is_none());
        assert!(previous
            .find(r#"{"metadata":{"name":"b","resourceVersion":"2"}}"#)
            .is_none());
        assert!(Previous::new(&[]).find(a).is_none());
    }

    #[test]
    fn secrets_are_taken_out_of_every_pod_spec_and_the_last_applied_annotation() {
        let env = r#"[{"name":"DB_PASSWORD","value":"hunter2"},
                      {"name":"TOKEN","valueFrom":{"secretKeyRef":{"name":"s","key":"k"}}}]"#;
        let applied = r#"{\"spec\":{\"env\":[{\"name\":\"DB_PASSWORD\",\"value\":\"hunter2\"}]}}"#;
        for (kind, text) in [
            (
                Kind::POD,
                format!(
                    r#"{{"metadata":{{"name":"p","annotations":{{"{LAST_APPLIED}":"{applied}","keep":"me"}}}},
                        "spec":{{"containers":[{{"name":"a","env":{env}}}],
                                 "initContainers":[{{"name":"i","env":{env}}}]}}}}"#
                ),
            ),
            (
                Kind::CRON_JOB,
                format!(
                    r#"{{"metadata":{{"name":"c"}},"spec":{{"jobTemplate":{{"spec":{{"template":
                        {{"spec":{{"containers":[{{"name":"a","env":{env}}}]}}}}}}}}}}}}"#
                ),
            ),
        ] {
            let object = without_secrets(parse_object(kind, &raw(&text)).unwrap());
            assert!(!object.raw.contains("hunter2"), "{}", object.raw);
            assert!(!object.raw.contains(LAST_APPLIED), "{}", object.raw);
            let value: serde_json::Value = serde_json::from_str(&object.raw).unwrap();
            let containers = value
                .pointer("/spec/containers")
                .or_else(|| value.pointer("/spec/jobTemplate/spec/template/spec/containers"))
                .unwrap();
            assert_eq!(containers[0]["env"][0]["value"], "<redacted>");
            assert_eq!(
                containers[0]["env"][1]["valueFrom"]["secretKeyRef"]["name"], "s",
                "a reference is not a secret"
            );
            assert_eq!(
                object.fingerprint,
                parse_object(kind, &raw(&text)).unwrap().fingerprint
            );
        }
        // Nothing to take out: the very same text.
        let plain =
            parse_object(Kind::POD, &raw(r#"{"metadata":{"name":"p"},"spec":{}}"#)).unwrap();
        let text = Arc::clone(&plain.raw);
        assert!(Arc::ptr_eq(&without_secrets(plain).raw, &text));
    }

    #[test]
    fn managed_fields_are_cut_out_of_the_text() {
        for (text, expect) in [
            (
                r#"{"metadata":{"name":"a","managedFields":[{"m":1}],"uid":"u"},"x":1}"#,
                Some(r#"{"metadata":{"name":"a","uid":"u"},"x":1}"#),
            ),
            (
                r#"{"metadata":{"managedFields":[{"m":{"a":"b"}}], "name":"a"}}"#,
                Some(r#"{"metadata":{ "name":"a"}}"#),
            ),
            (
                r#"{"metadata":{"name":"a" , "managedFields" : [] }}"#,
                Some(r#"{"metadata":{"name":"a"  }}"#),
            ),
            // Null is nothing to cut.
            (r#"{"metadata":{"managedFields":null}}"#, None),
            // A key written with an escape is not found for sure: the text stays whole.
            (r#"{"metadata":{"managed\u0046ields":[],"name":"a"}}"#, None),
            (r#"{"metadata":{"name":"a"}}"#, None),
            (
                r#"{"spec":{"managedFields":[]},"metadata":{"name":"a"}}"#,
                None,
            ),
        ] {
            // As `object` does: the parse finds the value, the text loses it.
            let parsed: WithMeta<'_, NoFields, NoFields> = serde_json::from_str(text).unwrap();
            let got = parsed
                .metadata
                .and_then(|m| m.managed_fields)
                .and_then(|value| without_managed_fields(text, value.get()));
            assert_eq!(got.as_deref(), expect, "{text}");
            if let Some(got) = got {
                serde_json::from_str::<serde_json::Value>(&got).unwrap();
            }
        }
        // The object keeps what it was found by, and serves the cut text.
        let text = r#"{"metadata":{"name":"p","managedFields":[{"manager":"kubelet"}]}}"#;
        let pod = parse_object(Kind::POD, &raw(text)).unwrap();
        assert_eq!(&*pod.raw, r#"{"metadata":{"name":"p"}}"#);
        let old = [Arc::new(pod)];
        assert!(Previous::new(&old).find(text).is_some());
    }

    #[test]
    fn owners_are_read_by_uid() {
        let rs = parse_object(
            Kind::REPLICA_SET,
            &raw(r#"{"metadata":{"name":"rs","ownerReferences":[{"kind":"Deployment","name":"d","uid":"u1"},{"uid":""},{"kind":"X"}]}}"#),
        )
        .unwrap();
        assert_eq!(rs.meta.owners, ["u1"]);
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
