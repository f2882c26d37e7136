//! The simulated Kubernetes API: v1 lists (all namespaces and per namespace), single
//! objects, discovery (`/version`, `/api`, `/api/v1`, `/apis`) and `Status` errors, shaped
//! like a real API server's answers so that real clients (`kubectl`) work against it.
//!
//! Objects are serialized once, when generated or mutated, and kept as JSON text sorted by
//! namespace and name: a page of a 150,000-pod list is then a slice joined with commas.
//! Paging follows the API server: `limit`, an opaque `continue` token (base64url of the
//! last key and the list's resource version) and `remainingItemCount`; a token that cannot
//! be used answers 410 `Expired`.

use serde_json::{json, Map, Value};

use super::model::{
    self, Cluster, Controller, Image, Matching, Node, Pod, PodContainer, Rng, Runtime, Service,
    WorkloadKind,
};
use super::watch::EventLog;
use super::workloads;
use cluster_insight_kinds::Kind;
use cluster_insight_wire::percent;
use cluster_insight_wire::time::rfc3339_millis;

use super::access::Access;
use super::server::{Request, Response, Shared};

/// One requirement of a label selector in kubectl's syntax.
#[derive(Debug, PartialEq, Eq)]
enum Requirement {
    Equals(String, String),
    NotEquals(String, String),
    In(String, Vec<String>),
    NotIn(String, Vec<String>),
    Exists(String),
    DoesNotExist(String),
}

/// `app=web,tier!=db,env in (a,b),env notin (c),release,!canary`: the label selector
/// syntax of the API (`k8s.io/apimachinery/pkg/labels`).
fn parse_selector(text: &str) -> Result<Vec<Requirement>, String> {
    // Split at commas outside parentheses.
    let mut parts = Vec::new();
    let (mut depth, mut start) = (0i32, 0usize);
    for (i, ch) in text.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' if depth == 0 => {
                parts.push(&text[start..i]);
                start = i + 1;
            }
            _ => {}
        }
    }
    parts.push(&text[start..]);
    let set = |rest: &str| -> Result<Vec<String>, String> {
        let inner = rest
            .trim()
            .strip_prefix('(')
            .and_then(|r| r.strip_suffix(')'))
            .ok_or_else(|| format!("expected a set in parentheses: {rest:?}"))?;
        Ok(inner.split(',').map(|v| v.trim().to_string()).collect())
    };
    parts
        .into_iter()
        .map(|part| {
            let part = part.trim();
            if part.is_empty() {
                return Err("empty requirement".to_string());
            }
            if let Some(key) = part.strip_prefix('!') {
                return Ok(Requirement::DoesNotExist(key.trim().to_string()));
            }
            if let Some((key, value)) = part.split_once("!=") {
                return Ok(Requirement::NotEquals(
                    key.trim().into(),
                    value.trim().into(),
                ));
            }
            if let Some((key, value)) = part.split_once("==").or_else(|| part.split_once('=')) {
                return Ok(Requirement::Equals(key.trim().into(), value.trim().into()));
            }
            if let Some((key, rest)) = part.split_once(" notin ") {
                return Ok(Requirement::NotIn(key.trim().into(), set(rest)?));
            }
            if let Some((key, rest)) = part.split_once(" in ") {
                return Ok(Requirement::In(key.trim().into(), set(rest)?));
            }
            if part.contains([' ', '(', ')']) {
                return Err(format!("{part:?}"));
            }
            Ok(Requirement::Exists(part.to_string()))
        })
        .collect()
}

/// Whether the object of `json` has labels that meet every requirement.
fn selected(selector: &[Requirement], json: &str) -> bool {
    let object: Value = serde_json::from_str(json).unwrap_or_default();
    let label = |k: &str| {
        object["metadata"]["labels"]
            .get(k)
            .and_then(Value::as_str)
            .map(str::to_string)
    };
    selector.iter().all(|r| match r {
        Requirement::Equals(k, v) => label(k).as_ref() == Some(v),
        Requirement::NotEquals(k, v) => label(k).as_ref() != Some(v),
        Requirement::In(k, values) => label(k).is_some_and(|v| values.contains(&v)),
        Requirement::NotIn(k, values) => label(k).is_none_or(|v| !values.contains(&v)),
        Requirement::Exists(k) => label(k).is_some(),
        Requirement::DoesNotExist(k) => label(k).is_none(),
    })
}

/// `v1`, `apps/v1`, …: what the objects of `kind` say they are.
fn group_version(kind: Kind) -> String {
    kind.info()
        .api
        .map_or_else(|| "v1".to_string(), |api| api.group_version())
}

/// `kind` if it is one of the table's: the simulator serves those, never the kinds a
/// master in the same process (`demo`) adds to the table while it runs.
fn built_in(kind: Option<Kind>) -> Option<Kind> {
    kind.filter(|k| !k.is_extra())
}

/// One serialized object. `json` has no `kind`/`apiVersion` (as items of a list).
#[derive(Debug, Clone)]
pub(crate) struct Obj {
    pub namespace: String,
    pub name: String,
    pub json: String,
}

impl Obj {
    fn key(&self) -> (&str, &str) {
        (&self.namespace, &self.name)
    }
}

/// A type of object the simulated API serves: one of the table's kinds, or a custom
/// resource that a CustomResourceDefinition given to the simulator defines (by its index
/// in [`KubeStore::custom`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Type {
    Table(Kind),
    Custom(usize),
}

/// A custom resource type, as its CustomResourceDefinition names it (one per served
/// version).
#[derive(Debug, Clone)]
struct CustomType {
    kind: String,
    plural: String,
    group: String,
    version: String,
    namespaced: bool,
    short_names: Vec<String>,
}

impl CustomType {
    /// The types one `CustomResourceDefinition` (apiextensions.k8s.io/v1) defines.
    fn from_definition(crd: &Value) -> Result<Vec<CustomType>, String> {
        let spec = &crd["spec"];
        let text = |v: &Value, what: &str| {
            v.as_str()
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .ok_or_else(|| format!("a CustomResourceDefinition without {what}"))
        };
        let group = text(&spec["group"], "spec.group")?;
        let kind = text(&spec["names"]["kind"], "spec.names.kind")?;
        let plural = text(&spec["names"]["plural"], "spec.names.plural")?;
        let namespaced = match spec["scope"].as_str() {
            Some("Namespaced") => true,
            Some("Cluster") => false,
            _ => return Err(format!("{kind}: spec.scope is Namespaced or Cluster")),
        };
        let short_names: Vec<String> = spec["names"]["shortNames"]
            .as_array()
            .map(|names| {
                names
                    .iter()
                    .filter_map(|n| n.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default();
        let versions: Vec<String> = spec["versions"]
            .as_array()
            .map(Vec::as_slice)
            .unwrap_or_default()
            .iter()
            .filter(|v| v["served"].as_bool() != Some(false))
            .filter_map(|v| v["name"].as_str().map(str::to_string))
            .collect();
        if versions.is_empty() {
            return Err(format!("{kind}: no served version in spec.versions"));
        }
        Ok(versions
            .into_iter()
            .map(|version| CustomType {
                kind: kind.clone(),
                plural: plural.clone(),
                group: group.clone(),
                version,
                namespaced,
                short_names: short_names.clone(),
            })
            .collect())
    }
}

/// The serialized objects, per kind (indexed by [`Kind::index`]), sorted by (namespace,
/// name).
pub(crate) struct KubeStore {
    lists: Vec<Vec<Obj>>,
    /// Custom resource types and their objects, sorted like the lists.
    custom: Vec<(CustomType, Vec<Obj>)>,
    /// Continue tokens issued at a lower resource version answer 410 (see
    /// `Faults::expire_continue_tokens`).
    pub min_continue_rv: u64,
    /// Every change since the start, for watches.
    pub events: EventLog,
}

pub(crate) fn kube_time(millis: i64) -> String {
    let text = rfc3339_millis(millis - millis.rem_euclid(1000));
    text.replacen(".000Z", "Z", 1)
}

pub(crate) fn labels_json(labels: &[(String, String)]) -> Value {
    Value::Object(
        labels
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect::<Map<_, _>>(),
    )
}

fn image_ref(image: &Image) -> String {
    if image.tag.is_empty() {
        image.id.clone()
    } else if image.tag.contains('/') {
        image.tag.clone()
    } else {
        format!("docker.io/library/{}", image.tag)
    }
}

pub(crate) fn container_spec(c: &Cluster, name: &str, image: usize) -> Value {
    json!({
        "name": name,
        "image": image_ref(&c.images[image]),
        "ports": [{"name": "http", "containerPort": 8080, "protocol": "TCP"}],
        "env": [{"name": "LOG_LEVEL", "value": "info"}],
        "resources": {"limits": {"memory": "256Mi"}, "requests": {"cpu": "100m", "memory": "128Mi"}},
        "volumeMounts": [{"name": "kube-api-access", "readOnly": true, "mountPath": "/var/run/secrets/kubernetes.io/serviceaccount"}],
        "terminationMessagePath": "/dev/termination-log",
        "terminationMessagePolicy": "File",
        "imagePullPolicy": "IfNotPresent"
    })
}

pub(crate) fn pod_ip(pod: &Pod, node: usize) -> String {
    format!(
        "10.{}.{}.{}",
        64 + (node / 256) % 128,
        node % 256,
        2 + pod.ip_suffix % 250
    )
}

/// Appends `text` as a JSON string.
fn push_json_str(out: &mut String, text: &str) {
    out.push('"');
    for ch in text.chars() {
        match ch {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// Appends `"key":"value"` (with a leading comma unless `first`).
fn push_field(out: &mut String, first: bool, key: &str, value: &str) {
    if !first {
        out.push(',');
    }
    push_json_str(out, key);
    out.push(':');
    push_json_str(out, value);
}

fn push_labels(out: &mut String, labels: &[(String, String)]) {
    out.push('{');
    for (i, (k, v)) in labels.iter().enumerate() {
        push_field(out, i == 0, k, v);
    }
    out.push('}');
}

fn push_container_spec(out: &mut String, c: &Cluster, name: &str, image: usize) {
    out.push('{');
    push_field(out, true, "name", name);
    push_field(out, false, "image", &image_ref(&c.images[image]));
    out.push_str(concat!(
        r#","ports":[{"name":"http","containerPort":8080,"protocol":"TCP"}],"env":[{"name":"LOG_LEVEL","value":"info"}],"#,
        r#""resources":{"limits":{"memory":"256Mi"},"requests":{"cpu":"100m","memory":"128Mi"}},"#,
        r#""volumeMounts":[{"name":"kube-api-access","readOnly":true,"mountPath":"/var/run/secrets/kubernetes.io/serviceaccount"}],"#,
        r#""terminationMessagePath":"/dev/termination-log","terminationMessagePolicy":"File","imagePullPolicy":"IfNotPresent"}"#
    ));
}

fn push_container_status(out: &mut String, c: &Cluster, pod: &Pod, pc: &PodContainer) {
    let image = &c.images[pc.image];
    let runtime = pod
        .node
        .and_then(|n| c.nodes.get(n))
        .map_or(Runtime::Docker, |n| n.runtime);
    let scheme = runtime.scheme();
    out.push('{');
    push_field(out, true, "name", &pc.name);
    if pod.matching == Matching::KubeletName {
        // The kubelet has started the containers but not reported them yet.
        out.push_str(r#","state":{"waiting":{"reason":"ContainerCreating"}},"lastState":{},"ready":false,"restartCount":0"#);
        push_field(out, false, "image", &image_ref(image));
        out.push_str(r#","imageID":"","started":false}"#);
        return;
    }
    out.push_str(&format!(
        r#","state":{{"running":{{"startedAt":"{}"}}}},"lastState":"#,
        kube_time(pc.started)
    ));
    match &pc.last {
        Some((id, started, finished)) => out.push_str(&format!(
            r#"{{"terminated":{{"exitCode":137,"reason":"Error","startedAt":"{}","finishedAt":"{}","containerID":"{scheme}://{id}"}}}}"#,
            kube_time(*started),
            kube_time(*finished)
        )),
        None => out.push_str("{}"),
    }
    out.push_str(&format!(r#","ready":true,"restartCount":{}"#, pc.restarts));
    push_field(out, false, "image", &image_ref(image));
    // As each kubelet writes it: Docker's with a scheme of its own, CRI's as a digest
    // reference.
    let image_id = match runtime {
        Runtime::Docker => format!("docker-pullable://{}@{}", image.repo, image.digest),
        Runtime::Containerd => format!("{}@{}", image.repo, image.digest),
    };
    push_field(out, false, "imageID", &image_id);
    push_field(out, false, "containerID", &format!("{scheme}://{}", pc.id));
    out.push_str(r#","started":true}"#);
}

/// The `managedFields` an API server keeps on a pod: the fields its creator set (with one
/// entry per container) and those the kubelet sets in its status. About 2 KB a pod, as on
/// real clusters, where they are a large share of every list; the master drops them.
fn push_pod_managed_fields(out: &mut String, pod: &Pod, owner: Option<&OwnerRef>, created: &str) {
    let manager = if owner.is_some() {
        "kube-controller-manager"
    } else {
        "kubectl-run"
    };
    out.push_str(&format!(
        r#","managedFields":[{{"manager":"{manager}","operation":"Update","apiVersion":"v1","time":"{created}","fieldsType":"FieldsV1","fieldsV1":{{"f:metadata":{{"f:labels":{{".":{{}}"#
    ));
    for (key, _) in &pod.labels {
        out.push(',');
        push_json_str(out, &format!("f:{key}"));
        out.push_str(":{}");
    }
    out.push('}');
    if let Some(owner) = owner {
        out.push_str(&format!(
            r#","f:generateName":{{}},"f:ownerReferences":{{".":{{}},"k:{{\"uid\":\"{}\"}}":{{}}}}"#,
            owner.uid
        ));
    }
    out.push_str(r#"},"f:spec":{"f:containers":{"#);
    for (i, pc) in pod.containers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push_str(&format!(
            concat!(
                r#""k:{{\"name\":\"{}\"}}":{{".":{{}},"f:env":{{".":{{}},"k:{{\"name\":\"LOG_LEVEL\"}}":{{".":{{}},"f:name":{{}},"f:value":{{}}}}}},"#,
                r#""f:image":{{}},"f:imagePullPolicy":{{}},"f:name":{{}},"f:ports":{{".":{{}},"k:{{\"containerPort\":8080,\"protocol\":\"TCP\"}}":{{".":{{}},"f:containerPort":{{}},"f:name":{{}},"f:protocol":{{}}}}}},"#,
                r#""f:resources":{{".":{{}},"f:limits":{{".":{{}},"f:memory":{{}}}},"f:requests":{{".":{{}},"f:cpu":{{}},"f:memory":{{}}}}}},"#,
                r#""f:terminationMessagePath":{{}},"f:terminationMessagePolicy":{{}},"f:volumeMounts":{{".":{{}},"k:{{\"mountPath\":\"/var/run/secrets/kubernetes.io/serviceaccount\"}}":{{".":{{}},"f:mountPath":{{}},"f:name":{{}},"f:readOnly":{{}}}}}}}}"#
            ),
            pc.name
        ));
    }
    out.push_str(concat!(
        r#"},"f:dnsPolicy":{},"f:enableServiceLinks":{},"f:restartPolicy":{},"f:schedulerName":{},"#,
        r#""f:securityContext":{},"f:terminationGracePeriodSeconds":{}}}}"#
    ));
    if pod.node.is_some() {
        out.push_str(&format!(
            concat!(
                r#",{{"manager":"kubelet","operation":"Update","apiVersion":"v1","time":"{}","fieldsType":"FieldsV1","fieldsV1":{{"f:status":{{"f:conditions":{{"#,
                r#""k:{{\"type\":\"ContainersReady\"}}":{{".":{{}},"f:lastProbeTime":{{}},"f:lastTransitionTime":{{}},"f:status":{{}},"f:type":{{}}}},"#,
                r#""k:{{\"type\":\"Initialized\"}}":{{".":{{}},"f:lastProbeTime":{{}},"f:lastTransitionTime":{{}},"f:status":{{}},"f:type":{{}}}},"#,
                r#""k:{{\"type\":\"Ready\"}}":{{".":{{}},"f:lastProbeTime":{{}},"f:lastTransitionTime":{{}},"f:status":{{}},"f:type":{{}}}}}},"#,
                r#""f:containerStatuses":{{}},"f:hostIP":{{}},"f:phase":{{}},"f:podIP":{{}},"f:podIPs":{{".":{{}},"k:{{\"ip\":\"10.244.0.{}\"}}":{{".":{{}},"f:ip":{{}}}}}},"f:startTime":{{}}}}}},"subresource":"status"}}"#
            ),
            created,
            2 + pod.ip_suffix % 250
        ));
    }
    out.push(']');
}

/// A pod as the API server lists it, written directly as text: at 150,000 pods, building
/// `serde_json::Value` trees first took most of the simulator's start-up time.
pub(crate) fn pod_text(c: &Cluster, pod: &Pod) -> String {
    let mut out = String::with_capacity(4096);
    out.push_str("{\"metadata\":{");
    push_field(&mut out, true, "name", &pod.name);
    let owner = pod_owner(c, pod);
    if let Some(owner) = &owner {
        if owner.kind != "StatefulSet" {
            push_field(&mut out, false, "generateName", &format!("{}-", owner.name));
        }
    }
    push_field(&mut out, false, "namespace", &pod.namespace);
    push_field(&mut out, false, "uid", &pod.uid);
    push_field(&mut out, false, "resourceVersion", &pod.rv.to_string());
    let created = kube_time(pod.created);
    push_field(&mut out, false, "creationTimestamp", &created);
    out.push_str(",\"labels\":");
    push_labels(&mut out, &pod.labels);
    if let Some(owner) = &owner {
        out.push_str(",\"ownerReferences\":[{");
        push_field(&mut out, true, "apiVersion", owner.api_version);
        push_field(&mut out, false, "kind", owner.kind);
        push_field(&mut out, false, "name", owner.name);
        push_field(&mut out, false, "uid", owner.uid);
        out.push_str(",\"controller\":true,\"blockOwnerDeletion\":true}]");
    }
    push_pod_managed_fields(&mut out, pod, owner.as_ref(), &created);
    out.push_str(concat!(
        r#"},"spec":{"volumes":[{"name":"kube-api-access","projected":{"sources":["#,
        r#"{"serviceAccountToken":{"expirationSeconds":3607,"path":"token"}},"#,
        r#"{"configMap":{"name":"kube-root-ca.crt","items":[{"key":"ca.crt","path":"ca.crt"}]}}],"defaultMode":420}}"#
    ));
    if let Some(claim) = pod.claim.and_then(|i| c.claims.get(i)) {
        out.push_str(r#",{"name":"data","persistentVolumeClaim":{"#);
        push_field(&mut out, true, "claimName", &claim.name);
        out.push_str("}}");
    }
    out.push_str(r#"],"containers":["#);
    for (i, pc) in pod.containers.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_container_spec(&mut out, c, &pc.name, pc.image);
    }
    out.push_str(concat!(
        r#"],"restartPolicy":"Always","terminationGracePeriodSeconds":30,"dnsPolicy":"ClusterFirst","#,
        r#""serviceAccountName":"default","serviceAccount":"default""#
    ));
    let node = pod.node.and_then(|n| c.nodes.get(n).map(|node| (n, node)));
    if let Some((_, node)) = node {
        push_field(&mut out, false, "nodeName", &node.name);
    }
    out.push_str(concat!(
        r#","securityContext":{},"schedulerName":"default-scheduler","tolerations":["#,
        r#"{"key":"node.kubernetes.io/not-ready","operator":"Exists","effect":"NoExecute","tolerationSeconds":300},"#,
        r#"{"key":"node.kubernetes.io/unreachable","operator":"Exists","effect":"NoExecute","tolerationSeconds":300}],"#,
        r#""priority":0,"enableServiceLinks":true,"preemptionPolicy":"PreemptLowerPriority"},"status":{"#
    ));
    match node {
        None => {
            let n = c.nodes.len();
            out.push_str(&format!(
                r#""phase":"Pending","conditions":[{{"type":"PodScheduled","status":"False","lastProbeTime":null,"lastTransitionTime":"{created}","reason":"Unschedulable","message":"0/{n} nodes are available: {n} Insufficient cpu. preemption: 0/{n} nodes are available: {n} No preemption victims found for incoming pod."}}],"qosClass":"Burstable"}}}}"#
            ));
        }
        Some((n, node)) => {
            let creating = pod.matching == Matching::KubeletName;
            let ready = if creating { "False" } else { "True" };
            let phase = if creating { "Pending" } else { "Running" };
            let condition = |kind: &str, status: &str| {
                format!(
                    r#"{{"type":"{kind}","status":"{status}","lastProbeTime":null,"lastTransitionTime":"{created}"}}"#
                )
            };
            out.push_str(&format!(
                r#""phase":"{phase}","conditions":[{},{},{},{},{}]"#,
                condition("PodReadyToStartContainers", "True"),
                condition("Initialized", "True"),
                condition("Ready", ready),
                condition("ContainersReady", ready),
                condition("PodScheduled", "True"),
            ));
            let ip = pod_ip(pod, n);
            out.push_str(&format!(
                r#","hostIP":"{0}","hostIPs":[{{"ip":"{0}"}}],"podIP":"{1}","podIPs":[{{"ip":"{1}"}}],"startTime":"{created}","containerStatuses":["#,
                node.addr, ip
            ));
            for (i, pc) in pod.containers.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                push_container_status(&mut out, c, pod, pc);
            }
            out.push_str(r#"],"qosClass":"Burstable"}}"#);
        }
    }
    out.shrink_to_fit();
    out
}

/// A pod's controller as its `ownerReferences` names it.
struct OwnerRef<'a> {
    api_version: &'static str,
    kind: &'static str,
    name: &'a str,
    uid: &'a str,
}

fn pod_owner<'a>(c: &'a Cluster, pod: &Pod) -> Option<OwnerRef<'a>> {
    if let Some(rc) = pod.controller.and_then(|i| c.controllers.get(i)) {
        return Some(OwnerRef {
            api_version: "v1",
            kind: "ReplicationController",
            name: &rc.name,
            uid: &rc.uid,
        });
    }
    let w = pod.workload.and_then(|i| c.workloads.get(i))?;
    Some(match (w.kind, &w.child) {
        (WorkloadKind::Deployment, Some(rs)) => OwnerRef {
            api_version: "apps/v1",
            kind: "ReplicaSet",
            name: &rs.name,
            uid: &rs.uid,
        },
        (WorkloadKind::CronJob, Some(job)) => OwnerRef {
            api_version: "batch/v1",
            kind: "Job",
            name: &job.name,
            uid: &job.uid,
        },
        (WorkloadKind::StatefulSet, _) => OwnerRef {
            api_version: "apps/v1",
            kind: "StatefulSet",
            name: &w.name,
            uid: &w.uid,
        },
        _ => OwnerRef {
            api_version: "apps/v1",
            kind: "DaemonSet",
            name: &w.name,
            uid: &w.uid,
        },
    })
}

/// Serializes every pod, on all cores: the largest part of start-up for big clusters.
fn render_pods(c: &Cluster) -> Vec<Obj> {
    let render = |pods: &[Pod]| -> Vec<Obj> {
        pods.iter()
            .map(|p| Obj {
                namespace: p.namespace.clone(),
                name: p.name.clone(),
                json: pod_text(c, p),
            })
            .collect()
    };
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .min(8);
    if threads < 2 || c.pods.len() < 2000 {
        return render(&c.pods);
    }
    let chunk = c.pods.len().div_ceil(threads);
    std::thread::scope(|scope| {
        let handles: Vec<_> = c
            .pods
            .chunks(chunk)
            .map(|part| scope.spawn(move || render(part)))
            .collect();
        // A panic while rendering is a bug in this module; surface it rather than serve a
        // cluster with pods missing.
        handles
            .into_iter()
            .flat_map(|h| h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)))
            .collect()
    })
}

pub(crate) fn node_json(c: &Cluster, index: usize, node: &Node) -> Value {
    let heartbeat = kube_time(node.heartbeat);
    let since = kube_time(node.created + 60_000);
    let condition = |kind: &str, status: &str, reason: &str, message: &str| json!({"type": kind, "status": status, "lastHeartbeatTime": heartbeat, "lastTransitionTime": since, "reason": reason, "message": message});
    let mut labels = vec![
        ("beta.kubernetes.io/arch".to_string(), "amd64".to_string()),
        ("beta.kubernetes.io/os".into(), "linux".into()),
        ("kubernetes.io/arch".into(), "amd64".into()),
        ("kubernetes.io/hostname".into(), node.name.clone()),
        ("kubernetes.io/os".into(), "linux".into()),
    ];
    if index == 0 {
        labels.push((
            "node-role.kubernetes.io/control-plane".into(),
            String::new(),
        ));
    }
    let mut images: Vec<usize> = node.containers.iter().map(|k| k.image).collect();
    images.sort_unstable();
    images.dedup();
    json!({
        "metadata": {
            "name": node.name,
            "uid": node.uid,
            "resourceVersion": node.rv.to_string(),
            "creationTimestamp": kube_time(node.created),
            "labels": labels_json(&labels),
            "annotations": {"node.alpha.kubernetes.io/ttl": "0", "volumes.kubernetes.io/controller-managed-attach-detach": "true"},
        },
        "spec": {"podCIDR": format!("10.{}.{}.0/24", 64 + (index / 256) % 128, index % 256),
                 "podCIDRs": [format!("10.{}.{}.0/24", 64 + (index / 256) % 128, index % 256)]},
        "status": {
            "capacity": {"cpu": "8", "ephemeral-storage": "101445540Ki", "hugepages-2Mi": "0", "memory": "32863084Ki", "pods": "110"},
            "allocatable": {"cpu": "8", "ephemeral-storage": "93492209510", "hugepages-2Mi": "0", "memory": "32760684Ki", "pods": "110"},
            "conditions": [
                condition("MemoryPressure", "False", "KubeletHasSufficientMemory", "kubelet has sufficient memory available"),
                condition("DiskPressure", "False", "KubeletHasNoDiskPressure", "kubelet has no disk pressure"),
                condition("PIDPressure", "False", "KubeletHasSufficientPID", "kubelet has sufficient PID available"),
                condition("Ready", "True", "KubeletReady", "kubelet is posting ready status"),
            ],
            "addresses": [{"type": "InternalIP", "address": node.addr.to_string()}, {"type": "Hostname", "address": node.name}],
            "daemonEndpoints": {"kubeletEndpoint": {"Port": 10250}},
            "nodeInfo": {
                "machineID": format!("{:032x}", index as u128 * 0x9E37_79B9_7F4A_7C15 + 1),
                "systemUUID": node.uid,
                "bootID": node.uid.chars().rev().collect::<String>(),
                "kernelVersion": "6.1.0-27-amd64",
                "osImage": "Debian GNU/Linux 12 (bookworm)",
                "containerRuntimeVersion": node.runtime.version(),
                "kubeletVersion": "v1.31.2",
                "kubeProxyVersion": "v1.31.2",
                "operatingSystem": "linux",
                "architecture": "amd64",
            },
            "images": images.iter().map(|&i| {
                let image = &c.images[i];
                let mut names = vec![format!("{}@{}", image.repo, image.digest)];
                if !image.tag.is_empty() { names.push(image.tag.clone()); }
                json!({"names": names, "sizeBytes": image.size})
            }).collect::<Vec<_>>(),
        }
    })
}

fn service_json(svc: &Service) -> Value {
    let mut spec = json!({
        "ports": [{"name": "http", "protocol": "TCP", "port": 80, "targetPort": 8080}],
        "clusterIP": svc.cluster_ip,
        "clusterIPs": [svc.cluster_ip],
        "type": "ClusterIP",
        "sessionAffinity": "None",
        "ipFamilies": ["IPv4"],
        "ipFamilyPolicy": "SingleStack",
        "internalTrafficPolicy": "Cluster",
    });
    if let Some(selector) = &svc.selector {
        spec["selector"] = labels_json(selector);
    }
    json!({
        "metadata": {
            "name": svc.name, "namespace": svc.namespace, "uid": svc.uid,
            "resourceVersion": svc.rv.to_string(), "creationTimestamp": kube_time(svc.created),
            "labels": {"app.kubernetes.io/managed-by": "sim"},
        },
        "spec": spec,
        "status": {"loadBalancer": {}},
    })
}

fn controller_json(c: &Cluster, rc: &Controller, replicas: usize) -> Value {
    json!({
        "metadata": {
            "name": rc.name, "namespace": rc.namespace, "uid": rc.uid,
            "resourceVersion": rc.rv.to_string(), "generation": 1,
            "creationTimestamp": kube_time(rc.created), "labels": labels_json(&rc.labels),
        },
        "spec": {
            "replicas": replicas,
            "selector": labels_json(&rc.selector),
            "template": {
                "metadata": {"creationTimestamp": null, "labels": labels_json(&rc.labels)},
                "spec": {
                    "containers": rc.images.iter().enumerate().map(|(k, &image)| {
                        container_spec(c, &model::container_name(k), image)
                    }).collect::<Vec<_>>(),
                    "restartPolicy": "Always", "terminationGracePeriodSeconds": 30,
                    "dnsPolicy": "ClusterFirst", "securityContext": {}, "schedulerName": "default-scheduler",
                },
            },
        },
        "status": {"replicas": replicas, "fullyLabeledReplicas": replicas, "readyReplicas": replicas,
                   "availableReplicas": replicas, "observedGeneration": 1},
    })
}

fn namespace_json(c: &Cluster, index: usize, name: &str) -> Value {
    let mut rng = Rng::new(c.spec.seed ^ (index as u64 + 1).wrapping_mul(0x1000_0000_01B3));
    json!({
        "metadata": {
            "name": name, "uid": rng.uuid(), "resourceVersion": (100 + index).to_string(),
            "creationTimestamp": kube_time(c.now - 86_400_000 * 40),
            "labels": {"kubernetes.io/metadata.name": name},
        },
        "spec": {"finalizers": ["kubernetes"]},
        "status": {"phase": "Active"},
    })
}

pub(crate) fn obj(namespace: &str, name: &str, value: &Value) -> Obj {
    Obj {
        namespace: namespace.to_string(),
        name: name.to_string(),
        json: value.to_string(),
    }
}

impl KubeStore {
    /// Serializes every object of the cluster.
    pub(crate) fn build(c: &Cluster) -> KubeStore {
        let nodes: Vec<Obj> = c
            .nodes
            .iter()
            .enumerate()
            .map(|(i, n)| obj("", &n.name, &node_json(c, i, n)))
            .collect();
        let pods = render_pods(c);
        let services = c
            .services
            .iter()
            .map(|s| obj(&s.namespace, &s.name, &service_json(s)))
            .collect();
        let mut replicas = vec![0usize; c.controllers.len()];
        for pod in &c.pods {
            if let Some(slot) = pod.controller.and_then(|i| replicas.get_mut(i)) {
                *slot += 1;
            }
        }
        let controllers = c
            .controllers
            .iter()
            .zip(&replicas)
            .map(|(r, &n)| obj(&r.namespace, &r.name, &controller_json(c, r, n)))
            .collect();
        let namespaces = c
            .namespaces
            .iter()
            .enumerate()
            .map(|(i, n)| obj("", n, &namespace_json(c, i, n)))
            .collect();
        let mut store = KubeStore::empty();
        for (kind, list) in [
            (Kind::NODE, nodes),
            (Kind::POD, pods),
            (Kind::SERVICE, services),
            (Kind::REPLICATION_CONTROLLER, controllers),
            (Kind::NAMESPACE, namespaces),
        ] {
            store.lists[kind.index()] = list;
        }
        for (kind, object) in workloads::objects(c) {
            store.lists[kind.index()].push(object);
        }
        for list in &mut store.lists {
            list.sort_by(|a, b| a.key().cmp(&b.key()));
        }
        store
    }

    /// Renders every EndpointSlice again (they list pods, so they change with them).
    pub(crate) fn refresh_slices(&mut self, c: &Cluster) {
        let mut slices: Vec<Obj> = workloads::endpoint_slices(c)
            .into_iter()
            .map(|(_, o)| o)
            .collect();
        slices.sort_by(|a, b| a.key().cmp(&b.key()));
        let kind = Kind::ENDPOINT_SLICE;
        let old = std::mem::take(&mut self.lists[kind.index()]);
        for gone in old
            .iter()
            .filter(|o| slices.binary_search_by(|n| n.key().cmp(&o.key())).is_err())
        {
            self.events.record(c.rv, kind, "DELETED", gone.clone());
        }
        for slice in &slices {
            match old.binary_search_by(|o| o.key().cmp(&slice.key())) {
                Ok(i) if old[i].json == slice.json => {}
                Ok(_) => self.events.record(c.rv, kind, "MODIFIED", slice.clone()),
                Err(_) => self.events.record(c.rv, kind, "ADDED", slice.clone()),
            }
        }
        self.lists[kind.index()] = slices;
    }

    fn empty() -> KubeStore {
        KubeStore {
            lists: vec![Vec::new(); Kind::built_in().count()],
            custom: Vec::new(),
            min_continue_rv: 0,
            events: EventLog::default(),
        }
    }

    /// A store of exactly these objects (each a JSON object with `kind` and `metadata`).
    /// A `CustomResourceDefinition` among them defines a custom resource type, served like
    /// the table's kinds (discovery, lists, objects); objects of it name its `apiVersion`.
    /// An object of a kind neither the table nor a definition serves, or a second object of
    /// the same kind, namespace and name, is an error (no API server could hold both).
    pub(crate) fn from_objects(items: &[Value]) -> Result<KubeStore, String> {
        let mut store = KubeStore::empty();
        let is_definition = |item: &Value| item["kind"] == "CustomResourceDefinition";
        for item in items.iter().filter(|i| is_definition(i)) {
            for custom in CustomType::from_definition(item)? {
                let taken = built_in(Kind::from_api_resource(
                    &custom.group,
                    &custom.version,
                    &custom.plural,
                ))
                .is_some()
                    || store
                        .find_type(&custom.group, &custom.version, &custom.plural)
                        .is_some();
                if taken {
                    return Err(format!(
                        "{}/{}/{} is defined twice",
                        custom.group, custom.version, custom.plural
                    ));
                }
                store.custom.push((custom, Vec::new()));
            }
        }
        for item in items.iter().filter(|i| !is_definition(i)) {
            let kind_name = item.get("kind").and_then(Value::as_str).unwrap_or("");
            let api_version = item.get("apiVersion").and_then(Value::as_str).unwrap_or("");
            let custom = store.custom.iter().position(|(t, _)| {
                t.kind == kind_name && format!("{}/{}", t.group, t.version) == api_version
            });
            let kind = match custom {
                Some(i) => Type::Custom(i),
                None => built_in(Kind::by_name(kind_name))
                    .filter(|k| k.info().api.is_some())
                    .map(Type::Table)
                    .ok_or_else(|| format!("objects of kind {kind_name:?} are not served"))?,
            };
            let meta = item.get("metadata");
            let field = |name: &str| {
                meta.and_then(|m| m.get(name))
                    .and_then(Value::as_str)
                    .unwrap_or("")
                    .to_string()
            };
            // Items of a list carry neither `kind` nor `apiVersion`.
            let mut object = item.clone();
            if let Some(fields) = object.as_object_mut() {
                fields.remove("kind");
                fields.remove("apiVersion");
            }
            let namespace = if store.namespaced(kind) {
                field("namespace")
            } else {
                String::new()
            };
            let object = obj(&namespace, &field("name"), &object);
            let list = store.objects(kind);
            if list
                .binary_search_by(|o| o.key().cmp(&object.key()))
                .is_ok()
            {
                return Err(format!(
                    "two {kind_name} objects named {:?} in namespace {:?}",
                    object.name, object.namespace
                ));
            }
            let list = match kind {
                Type::Table(kind) => &mut store.lists[kind.index()],
                Type::Custom(i) => &mut store.custom[i].1,
            };
            put(list, object);
        }
        Ok(store)
    }

    /// See [`Simulator::managed_fields_bytes`](crate::Simulator::managed_fields_bytes).
    pub(crate) fn managed_fields_bytes(&self) -> (usize, usize) {
        let all = self
            .lists
            .iter()
            .chain(self.custom.iter().map(|(_, list)| list))
            .flatten();
        let (mut total, mut managed) = (0, 0);
        for object in all {
            total += object.json.len();
            let value: Value = serde_json::from_str(&object.json).unwrap_or_default();
            if let Some(fields) = value["metadata"].get("managedFields") {
                // `"managedFields":` and a comma, besides the value.
                managed += fields.to_string().len() + "\"managedFields\":,".len();
            }
        }
        (total, managed)
    }

    /// The objects of a type, sorted by namespace and name.
    fn objects(&self, t: Type) -> &[Obj] {
        match t {
            Type::Table(kind) => &self.lists[kind.index()],
            Type::Custom(i) => &self.custom[i].1,
        }
    }

    /// The type's kind, as its objects name it (`Pod`, `Rollout`).
    fn kind_name(&self, t: Type) -> &str {
        match t {
            Type::Table(kind) => kind.name(),
            Type::Custom(i) => &self.custom[i].0.kind,
        }
    }

    fn plural(&self, t: Type) -> &str {
        match t {
            Type::Table(kind) => kind.info().plural,
            Type::Custom(i) => &self.custom[i].0.plural,
        }
    }

    /// `v1`, `apps/v1`, `argoproj.io/v1alpha1`: what the type's objects say they are.
    fn group_version(&self, t: Type) -> String {
        match t {
            Type::Table(kind) => group_version(kind),
            Type::Custom(i) => {
                let custom = &self.custom[i].0;
                cluster_insight_kinds::group_version(&custom.group, &custom.version)
            }
        }
    }

    fn namespaced(&self, t: Type) -> bool {
        match t {
            Type::Table(kind) => kind.namespaced(),
            Type::Custom(i) => self.custom[i].0.namespaced,
        }
    }

    /// The type served at `GROUP/VERSION` under `plural`.
    fn find_type(&self, group: &str, version: &str, plural: &str) -> Option<Type> {
        built_in(Kind::from_api_resource(group, version, plural))
            .map(Type::Table)
            .or_else(|| {
                self.custom
                    .iter()
                    .position(|(t, _)| {
                        t.group == group && t.version == version && t.plural == plural
                    })
                    .map(Type::Custom)
            })
    }

    /// Puts `object` in place of the one of the same name, as the change at version `rv`.
    fn put(&mut self, kind: Kind, object: Obj, rv: u64) {
        let list = &self.lists[kind.index()];
        let what = match list.binary_search_by(|o| o.key().cmp(&object.key())) {
            Ok(_) => "MODIFIED",
            Err(_) => "ADDED",
        };
        self.events.record(rv, kind, what, object.clone());
        put(&mut self.lists[kind.index()], object);
    }

    /// Re-serializes one pod after a change of the model.
    pub(crate) fn update_pod(&mut self, c: &Cluster, index: usize) {
        if let Some(pod) = c.pods.get(index) {
            self.put(
                Kind::POD,
                Obj {
                    namespace: pod.namespace.clone(),
                    name: pod.name.clone(),
                    json: pod_text(c, pod),
                },
                c.rv,
            );
        }
    }

    pub(crate) fn update_node(&mut self, c: &Cluster, index: usize) {
        if let Some(node) = c.nodes.get(index) {
            self.put(
                Kind::NODE,
                obj("", &node.name, &node_json(c, index, node)),
                c.rv,
            );
        }
    }

    pub(crate) fn update_controller(&mut self, c: &Cluster, index: usize) {
        if let Some(rc) = c.controllers.get(index) {
            let replicas = c
                .pods
                .iter()
                .filter(|p| p.controller == Some(index))
                .count();
            self.put(
                Kind::REPLICATION_CONTROLLER,
                obj(&rc.namespace, &rc.name, &controller_json(c, rc, replicas)),
                c.rv,
            );
        }
    }

    /// Removes a pod, as the change at version `rv`.
    pub(crate) fn remove_pod(&mut self, namespace: &str, name: &str, rv: u64) {
        let list = &mut self.lists[Kind::POD.index()];
        if let Ok(i) = list.binary_search_by(|o| o.key().cmp(&(namespace, name))) {
            let gone = list.remove(i);
            self.events.record(rv, Kind::POD, "DELETED", gone);
        }
    }
}

/// Puts `object` in its place in a sorted list, replacing one of the same key.
fn put(list: &mut Vec<Obj>, object: Obj) {
    match list.binary_search_by(|o| o.key().cmp(&object.key())) {
        Ok(i) => list[i] = object,
        Err(i) => list.insert(i, object),
    }
}

/// A `Status` object answer.
fn status(code: u16, reason: &str, message: &str, details: Value) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "details": details, "code": code,
    });
    Response::json(code, body.to_string())
}

/// `POST` of a `TokenReview` or `SubjectAccessReview`: the only writes served.
fn review(shared: &Shared, req: &Request) -> Response {
    let reviewer = match req.path.as_str() {
        "/apis/authentication.k8s.io/v1/tokenreviews" => Access::review_token,
        "/apis/authorization.k8s.io/v1/subjectaccessreviews" => Access::review_access,
        _ => {
            return status(
                405,
                "MethodNotAllowed",
                "the server does not allow this method on the requested resource (POST)",
                json!({}),
            )
        }
    };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return bad_request("the request body is not JSON");
    };
    let answer = reviewer(&shared.access.lock(), &body);
    Response::json(201, answer.to_string())
}

/// `PATCH` of a pod's labels (`kubectl label pod NAME KEY=VALUE`): a merge patch or a
/// strategic merge patch of `metadata.labels` alone, with string values (or null, which
/// removes the label: `kubectl label pod NAME KEY-`). The simulated
/// cluster changes no other way over HTTP; anything else is refused with 422, saying so.
fn patch(shared: &Shared, req: &Request) -> Response {
    let Some(decoded) = segments(&req.path) else {
        return bad_request("the request path has a malformed percent-encoding");
    };
    let (namespace, name) =
        match decoded.iter().map(String::as_str).collect::<Vec<_>>()[..] {
            ["api", "v1", "namespaces", namespace, "pods", name] => {
                (namespace.to_string(), name.to_string())
            }
            _ => return status(
                405,
                "MethodNotAllowed",
                "the simulator patches pods' labels only (PATCH /api/v1/namespaces/NS/pods/NAME)",
                json!({}),
            ),
        };
    let Ok(body) = serde_json::from_slice::<Value>(&req.body) else {
        return bad_request("the request body is not JSON");
    };
    let labels = body
        .as_object()
        .filter(|o| o.len() == 1)
        .and_then(|o| o.get("metadata"))
        .and_then(Value::as_object)
        .filter(|m| m.len() == 1)
        .and_then(|m| m.get("labels"))
        .and_then(Value::as_object);
    let Some(labels) = labels.filter(|l| l.values().all(|v| v.is_string() || v.is_null())) else {
        return status(
            422,
            "Invalid",
            "the simulator patches metadata.labels alone, with string or null values",
            json!({}),
        );
    };
    let labels: Vec<(&str, Option<&str>)> = labels
        .iter()
        .map(|(key, value)| (key.as_str(), value.as_str()))
        .collect();
    if !super::label_pod(&mut shared.write_state(), &namespace, &name, &labels) {
        return status(
            404,
            "NotFound",
            &format!("pods \"{name}\" not found"),
            json!({"name": name, "kind": "pods"}),
        );
    }
    let state = shared.state.read();
    let path: Vec<&str> = decoded.iter().map(String::as_str).collect();
    match resolve(&state.kube, &path) {
        Target::Get {
            kind,
            namespace,
            name,
        } => get(&state, kind, namespace, name, req),
        _ => not_found_path(),
    }
}

fn not_found_path() -> Response {
    status(
        404,
        "NotFound",
        "the server could not find the requested resource",
        json!({}),
    )
}

/// The answer of the `Status(code)` fault.
pub(crate) fn fault_status(code: u16) -> Response {
    match code {
        404 => not_found_path(),
        410 => expired(),
        429 => status(
            429,
            "TooManyRequests",
            "the server has received too many requests and has asked us to try again later",
            json!({"retryAfterSeconds": 1}),
        ),
        503 => status(
            503,
            "ServiceUnavailable",
            "the server is currently unable to handle the request",
            json!({}),
        ),
        403 => status(403, "Forbidden", "forbidden: simulated fault", json!({})),
        _ => status(
            code,
            "InternalError",
            "Internal error occurred: simulated fault",
            json!({"causes": [{"message": "simulated fault"}]}),
        ),
    }
}

fn expired() -> Response {
    status(
        410,
        "Expired",
        "The provided continue parameter is too old to display a consistent list result. You can start a new list without the continue parameter, or use the continue token in this response to retrieve the remainder of the results. Continuing with the provided token results in an inconsistent list - objects that were created, modified, or deleted between the time the first chunk was returned and now may show up in the list.",
        json!({}),
    )
}

fn bad_request(message: &str) -> Response {
    status(400, "BadRequest", message, json!({}))
}

/// What a request to the resource API names, resolved through the table of kinds.
#[derive(Debug, PartialEq, Eq)]
enum Target<'a> {
    /// The discovery document of one group version (`/api/v1`, `/apis/apps/v1`).
    Resources {
        group: &'a str,
        version: &'a str,
    },
    /// A list, across namespaces (`None`) or in one.
    List {
        kind: Type,
        namespace: Option<&'a str>,
    },
    /// One object; `namespace` is empty for kinds that have none.
    Get {
        kind: Type,
        namespace: &'a str,
        name: &'a str,
    },
    Unknown,
}

fn resolve<'a>(store: &KubeStore, segments: &[&'a str]) -> Target<'a> {
    let (group, version, rest) = match segments {
        ["api", version, rest @ ..] => ("", *version, rest),
        ["apis", group, version, rest @ ..] => (*group, *version, rest),
        _ => return Target::Unknown,
    };
    let kind = |plural: &str, in_namespace: bool| {
        store
            .find_type(group, version, plural)
            .filter(|t| store.namespaced(*t) == in_namespace)
    };
    let target = match rest {
        [] => Some(Target::Resources { group, version }),
        [plural] => store
            .find_type(group, version, plural)
            .map(|kind| Target::List {
                kind,
                namespace: None,
            }),
        [plural, name] => kind(plural, false).map(|kind| Target::Get {
            kind,
            namespace: "",
            name,
        }),
        ["namespaces", namespace, plural] => kind(plural, true).map(|kind| Target::List {
            kind,
            namespace: Some(namespace),
        }),
        ["namespaces", namespace, plural, name] => kind(plural, true).map(|kind| Target::Get {
            kind,
            namespace,
            name,
        }),
        _ => None,
    };
    target.unwrap_or(Target::Unknown)
}

/// The path's segments, each percent-decoded once; `None` if one cannot be.
fn segments(path: &str) -> Option<Vec<String>> {
    path.trim_matches('/')
        .split('/')
        .map(percent::decode_utf8)
        .collect()
}

/// Counts the request by kind (before any fault applies).
pub(crate) fn count(shared: &Shared, req: &Request) {
    use std::sync::atomic::Ordering::Relaxed;
    let counters = &shared.counters;
    let decoded = segments(&req.path).unwrap_or_default();
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let counter = match resolve(&shared.state.read().kube, &segments) {
        Target::List { .. } if crate::watch::is_watch(req) => return,
        Target::List { .. } => &counters.kube_list_pages,
        Target::Get { .. } => &counters.kube_get,
        Target::Resources { .. } | Target::Unknown => &counters.kube_other,
    };
    counter.fetch_add(1, Relaxed);
}

const BASE64URL: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn base64url_encode(data: &[u8]) -> String {
    let mut out = String::with_capacity(data.len() * 4 / 3 + 4);
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..=chunk.len() {
            out.push(BASE64URL[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

fn base64url_decode(text: &str) -> Option<Vec<u8>> {
    let text = text.trim_end_matches('=');
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let mut acc = 0u32;
    let mut bits = 0;
    for c in text.bytes() {
        let v = BASE64URL.iter().position(|&x| x == c).or(match c {
            b'+' => Some(62),
            b'/' => Some(63),
            _ => None,
        })? as u32;
        acc = (acc << 6) | v;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

fn encode_continue(rv: u64, last: &Obj) -> String {
    let token = json!({"v": "meta.k8s.io/v1", "rv": rv, "start": format!("{}/{}\u{0}", last.namespace, last.name)});
    base64url_encode(token.to_string().as_bytes())
}

/// The key after which a continued list resumes, if the token is usable.
fn decode_continue(token: &str, current_rv: u64, min_rv: u64) -> Option<(String, String)> {
    let raw = base64url_decode(token)?;
    let value: Value = serde_json::from_slice(&raw).ok()?;
    if value.get("v")?.as_str()? != "meta.k8s.io/v1" {
        return None;
    }
    let rv = value.get("rv")?.as_u64()?;
    if rv > current_rv || rv < min_rv {
        return None;
    }
    let start = value.get("start")?.as_str()?.strip_suffix('\u{0}')?;
    let (namespace, name) = start.split_once('/')?;
    Some((namespace.to_string(), name.to_string()))
}

fn list(
    state: &super::server::State,
    kind: Type,
    namespace: Option<&str>,
    req: &Request,
) -> Response {
    if req.param("fieldSelector").is_some_and(|v| !v.is_empty()) {
        return bad_request("fieldSelector is not supported by the cluster simulator");
    }
    let selector = match req.param("labelSelector").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => match parse_selector(text) {
            Ok(selector) => Some(selector),
            Err(e) => return bad_request(&format!("unable to parse requirement: {e}")),
        },
    };
    let limit = match req.param("limit") {
        None | Some("") => 0usize,
        Some(text) => match text.parse::<i64>() {
            Ok(n) if n > 0 => n as usize,
            Ok(_) => 0,
            Err(_) => return bad_request(&format!("invalid limit: {text:?}")),
        },
    };
    let all = state.kube.objects(kind);
    let scoped: &[Obj] = match namespace {
        Some(ns) => {
            let lo = all.partition_point(|o| o.namespace.as_str() < ns);
            let hi = all.partition_point(|o| o.namespace.as_str() <= ns);
            &all[lo..hi]
        }
        None => all,
    };
    let filtered: Vec<Obj>;
    let scoped: &[Obj] = match &selector {
        None => scoped,
        Some(selector) => {
            filtered = scoped
                .iter()
                .filter(|o| selected(selector, &o.json))
                .cloned()
                .collect();
            &filtered
        }
    };
    let rv = state.cluster.rv;
    let start = match req.param("continue") {
        None | Some("") => 0,
        Some(token) => match decode_continue(token, rv, state.kube.min_continue_rv) {
            Some((ns, name)) => scoped.partition_point(|o| o.key() <= (ns.as_str(), name.as_str())),
            None => return expired(),
        },
    };
    let end = if limit == 0 {
        scoped.len()
    } else {
        (start + limit).min(scoped.len())
    };
    let page = &scoped[start..end];
    if super::table::wants_table(req.header("accept")) {
        let mut metadata = json!({ "resourceVersion": rv.to_string() });
        if end < scoped.len() {
            if let Some(last) = page.last() {
                metadata["continue"] = json!(encode_continue(rv, last));
                metadata["remainingItemCount"] = json!(scoped.len() - end);
            }
        }
        let table = super::table::table(
            table_kind(kind),
            page.iter().map(|o| o.json.as_str()),
            metadata,
            state.cluster.now,
        );
        return Response::json(200, table.to_string());
    }
    let mut metadata = format!("{{\"resourceVersion\":\"{rv}\"");
    if end < scoped.len() {
        if let Some(last) = page.last() {
            metadata.push_str(&format!(
                ",\"continue\":\"{}\",\"remainingItemCount\":{}",
                encode_continue(rv, last),
                scoped.len() - end
            ));
        }
    }
    metadata.push('}');
    let size: usize = page.iter().map(|o| o.json.len() + 1).sum::<usize>() + metadata.len() + 96;
    let mut body = String::with_capacity(size);
    body.push_str(&format!(
        "{{\"kind\":\"{}List\",\"apiVersion\":\"{}\",\"metadata\":{metadata},\"items\":[",
        state.kube.kind_name(kind),
        state.kube.group_version(kind)
    ));
    for (i, o) in page.iter().enumerate() {
        if i > 0 {
            body.push(',');
        }
        body.push_str(&o.json);
    }
    body.push_str("]}\n");
    Response::json(200, body)
}

/// What one watch follows: a type, maybe one namespace, maybe a label selector.
pub(crate) struct WatchScope {
    typ: Type,
    /// The table's kind, whose changes the event log holds (custom types do not change).
    pub kind: Option<Kind>,
    namespace: Option<String>,
    selector: Option<Vec<Requirement>>,
    pub kind_name: String,
    pub api_version: String,
}

impl WatchScope {
    /// The objects in scope now.
    pub(crate) fn current<'a>(&'a self, store: &'a KubeStore) -> impl Iterator<Item = &'a Obj> {
        store.objects(self.typ).iter().filter(|o| self.includes(o))
    }

    pub(crate) fn includes(&self, object: &Obj) -> bool {
        self.namespace
            .as_deref()
            .is_none_or(|ns| object.namespace == ns)
            && self
                .selector
                .as_ref()
                .is_none_or(|selector| selected(selector, &object.json))
    }
}

/// The scope of a watch request, or the error answer for it.
pub(crate) fn watch_scope(shared: &Shared, req: &Request) -> Result<WatchScope, Response> {
    let Some(decoded) = segments(&req.path) else {
        return Err(bad_request(
            "the request path has a malformed percent-encoding",
        ));
    };
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let state = shared.state.read();
    let Target::List {
        kind: typ,
        namespace,
    } = resolve(&state.kube, &segments)
    else {
        return Err(status(
            405,
            "MethodNotAllowed",
            "watch is served on lists of a type",
            json!({}),
        ));
    };
    let selector = match req.param("labelSelector").filter(|v| !v.is_empty()) {
        None => None,
        Some(text) => Some(
            parse_selector(text)
                .map_err(|e| bad_request(&format!("unable to parse requirement: {e}")))?,
        ),
    };
    Ok(WatchScope {
        typ,
        kind: match typ {
            Type::Table(kind) => Some(kind),
            Type::Custom(_) => None,
        },
        namespace: namespace.map(str::to_string),
        selector,
        kind_name: state.kube.kind_name(typ).to_string(),
        api_version: state.kube.group_version(typ),
    })
}

fn get(
    state: &super::server::State,
    kind: Type,
    namespace: &str,
    name: &str,
    req: &Request,
) -> Response {
    let list = state.kube.objects(kind);
    match list.binary_search_by(|o| o.key().cmp(&(namespace, name))) {
        Ok(i) if super::table::wants_table(req.header("accept")) => {
            let metadata = json!({ "resourceVersion": state.cluster.rv.to_string() });
            let table = super::table::table(
                table_kind(kind),
                std::iter::once(list[i].json.as_str()),
                metadata,
                state.cluster.now,
            );
            Response::json(200, table.to_string())
        }
        Ok(i) => {
            let json = &list[i].json;
            let body = format!(
                "{{\"kind\":\"{}\",\"apiVersion\":\"{}\",{}\n",
                state.kube.kind_name(kind),
                state.kube.group_version(kind),
                json.get(1..).unwrap_or("}")
            );
            Response::json(200, body)
        }
        Err(_) => status(
            404,
            "NotFound",
            &format!("{} \"{name}\" not found", state.kube.plural(kind)),
            json!({"name": name, "kind": state.kube.plural(kind)}),
        ),
    }
}

fn version() -> Value {
    json!({
        "major": "1", "minor": "31", "gitVersion": "v1.31.2", "gitCommit": "5864a4677267e6adeae276ad85882a8714d69d9d",
        "gitTreeState": "clean", "buildDate": "2024-10-22T20:28:14Z", "goVersion": "go1.22.8",
        "compiler": "gc", "platform": "linux/amd64"
    })
}

/// The discovery document of one group version: the table's kinds and the custom types
/// there; `None` when there are none.
fn resource_list(store: &KubeStore, group: &str, version: &str) -> Option<Value> {
    let mut resources: Vec<(&str, Value)> = Kind::built_in()
        .filter(|k| {
            k.info()
                .api
                .is_some_and(|api| api.group == group && api.version == version)
        })
        .map(|kind| {
            let info = kind.info();
            let resource = api_resource(
                info.plural,
                info.name,
                kind.namespaced(),
                info.short_names.iter().copied(),
            );
            (info.plural, resource)
        })
        .chain(
            store
                .custom
                .iter()
                .map(|(t, _)| t)
                .filter(|t| t.group == group && t.version == version)
                .map(|t| {
                    let resource = api_resource(
                        &t.plural,
                        &t.kind,
                        t.namespaced,
                        t.short_names.iter().map(String::as_str),
                    );
                    (t.plural.as_str(), resource)
                }),
        )
        .collect();
    if resources.is_empty() {
        return None;
    }
    resources.sort_by(|a, b| a.0.cmp(b.0));
    let resources: Vec<Value> = resources.into_iter().map(|(_, r)| r).collect();
    Some(json!({
        "kind": "APIResourceList",
        "groupVersion": cluster_insight_kinds::group_version(group, version),
        "resources": resources,
    }))
}

/// One resource of a discovery document.
fn api_resource<'a>(
    plural: &str,
    kind: &str,
    namespaced: bool,
    short_names: impl IntoIterator<Item = &'a str>,
) -> Value {
    let short_names: Vec<&str> = short_names.into_iter().collect();
    json!({
        "name": plural, "singularName": kind.to_ascii_lowercase(),
        "namespaced": namespaced, "kind": kind,
        "verbs": ["get", "list"], "shortNames": short_names,
    })
}

/// `/apis`: the named groups of the table, then those of the custom types.
fn group_list(store: &KubeStore) -> Value {
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    let table = Kind::built_in()
        .filter_map(|k| k.info().api)
        .map(|api| (api.group, api.version));
    let custom = store
        .custom
        .iter()
        .map(|(t, _)| (t.group.as_str(), t.version.as_str()));
    for (group, version) in table.chain(custom) {
        if group.is_empty() {
            continue;
        }
        match groups.iter_mut().find(|(g, _)| *g == group) {
            Some((_, versions)) if versions.contains(&version) => {}
            Some((_, versions)) => versions.push(version),
            None => groups.push((group, vec![version])),
        }
    }
    let groups: Vec<Value> = groups
        .into_iter()
        .map(|(group, versions)| {
            let versions: Vec<Value> = versions
                .iter()
                .map(|v| json!({"groupVersion": format!("{group}/{v}"), "version": v}))
                .collect();
            json!({"name": group, "versions": versions, "preferredVersion": versions[0]})
        })
        .collect();
    json!({"kind": "APIGroupList", "apiVersion": "v1", "groups": groups})
}

/// The kind whose Table columns a type's lists show (custom types have none of their own).
fn table_kind(t: Type) -> Option<Kind> {
    match t {
        Type::Table(kind) => Some(kind),
        Type::Custom(_) => None,
    }
}

/// Answers one request to the Kubernetes API.
pub(crate) fn handle(shared: &Shared, req: &Request) -> Response {
    if req.method == "POST" {
        return review(shared, req);
    }
    if req.method == "PATCH" {
        return patch(shared, req);
    }
    if req.method != "GET" && req.method != "HEAD" {
        return status(
            405,
            "MethodNotAllowed",
            &format!(
                "the server does not allow this method on the requested resource ({})",
                req.method
            ),
            json!({}),
        );
    }
    let Some(decoded) = segments(&req.path) else {
        return bad_request("the request path has a malformed percent-encoding");
    };
    let segments: Vec<&str> = decoded.iter().map(String::as_str).collect();
    let state = shared.state.read();
    let mut response = match segments.as_slice() {
        ["version"] => Response::json(200, version().to_string()),
        ["api"] => {
            let server = shared
                .endpoints
                .first()
                .map(|e| e.addr.to_string())
                .unwrap_or_default();
            let body = json!({"kind": "APIVersions", "versions": ["v1"],
                "serverAddressByClientCIDRs": [{"clientCIDR": "0.0.0.0/0", "serverAddress": server}]});
            Response::json(200, body.to_string())
        }
        ["apis"] => Response::json(200, group_list(&state.kube).to_string()),
        _ => match resolve(&state.kube, &segments) {
            Target::Resources { group, version } => {
                match resource_list(&state.kube, group, version) {
                    Some(list) => Response::json(200, list.to_string()),
                    None => not_found_path(),
                }
            }
            Target::List { kind, namespace } => list(&state, kind, namespace, req),
            Target::Get {
                kind,
                namespace,
                name,
            } => get(&state, kind, namespace, name, req),
            Target::Unknown => not_found_path(),
        },
    };
    response
        .headers
        .push(("Cache-Control", "no-cache, private".into()));
    response
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_round_trips() {
        for text in [
            "",
            "a",
            "ab",
            "abc",
            "abcd",
            "{\"v\":\"meta.k8s.io/v1\",\"rv\":12,\"start\":\"ns/x\u{0}\"}",
        ] {
            let encoded = base64url_encode(text.as_bytes());
            assert!(!encoded.contains('='));
            assert_eq!(
                base64url_decode(&encoded).as_deref(),
                Some(text.as_bytes()),
                "{text}"
            );
        }
        assert_eq!(base64url_encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64url_encode(b"fo"), "Zm8");
        assert!(base64url_decode("not*base64").is_none());
    }

    #[test]
    fn continue_tokens_check_version_and_shape() {
        let o = Obj {
            namespace: "default".into(),
            name: "web-1".into(),
            json: "{}".into(),
        };
        let token = encode_continue(50, &o);
        assert_eq!(
            decode_continue(&token, 50, 0),
            Some(("default".into(), "web-1".into()))
        );
        assert_eq!(decode_continue(&token, 49, 0), None);
        assert_eq!(decode_continue(&token, 60, 51), None);
        assert_eq!(decode_continue("garbage", 60, 0), None);
    }

    #[test]
    fn pod_text_is_json_in_every_state() {
        let spec = crate::SimSpec::default();
        let mut c = Cluster::generate(&spec);
        let p = c
            .pods
            .iter()
            .position(|p| p.node.is_some() && p.matching == Matching::Labels)
            .unwrap();
        c.pods[p].containers[0].last = Some(("ab".repeat(32), 1000, 2000));
        c.pods[p]
            .labels
            .push(("quote\"d".into(), "back\\slash\n".into()));
        for pod in &c.pods {
            let value: Value = serde_json::from_str(&pod_text(&c, pod))
                .unwrap_or_else(|e| panic!("{e}: {}", pod_text(&c, pod)));
            assert_eq!(value["metadata"]["uid"], pod.uid.as_str());
            assert_eq!(
                value["spec"]["containers"].as_array().unwrap().len(),
                pod.containers.len()
            );
            assert_eq!(value["spec"]["nodeName"].is_string(), pod.node.is_some());
            // The creator's fields, and the kubelet's once the pod is on a node.
            let managers = value["metadata"]["managedFields"].as_array().unwrap();
            assert_eq!(managers.len(), 1 + usize::from(pod.node.is_some()));
        }
        let value: Value = serde_json::from_str(&pod_text(&c, &c.pods[p])).unwrap();
        assert_eq!(value["metadata"]["labels"]["quote\"d"], "back\\slash\n");
        assert_eq!(
            value["status"]["containerStatuses"][0]["lastState"]["terminated"]["exitCode"],
            137
        );
    }

    #[test]
    fn paths_resolve_through_the_table_and_the_definitions() {
        let crd = json!({"kind": "CustomResourceDefinition", "spec": {
            "group": "example.com", "scope": "Cluster",
            "names": {"kind": "Widget", "plural": "widgets", "shortNames": ["wd"]},
            "versions": [{"name": "v1", "served": true}, {"name": "v0", "served": false}]}});
        let widget = json!({"kind": "Widget", "apiVersion": "example.com/v1",
            "metadata": {"name": "w1", "namespace": "ignored"}});
        let store = KubeStore::from_objects(&[widget.clone(), crd.clone()]).unwrap();
        let r = |path: &str| {
            let decoded = segments(path).unwrap();
            let parts: Vec<&str> = decoded.iter().map(String::as_str).collect();
            format!("{:?}", resolve(&store, &parts))
        };
        assert_eq!(
            r("/api/v1/pods"),
            "List { kind: Table(Pod), namespace: None }"
        );
        assert_eq!(
            r("/api/v1/namespaces/ns/pods"),
            "List { kind: Table(Pod), namespace: Some(\"ns\") }"
        );
        assert_eq!(
            r("/api/v1/namespaces/ns"),
            "Get { kind: Table(Namespace), namespace: \"\", name: \"ns\" }"
        );
        assert_eq!(
            r("/api/v1/nodes/n%31"),
            "Get { kind: Table(Node), namespace: \"\", name: \"n1\" }"
        );
        assert_eq!(
            r("/apis/example.com/v1/widgets/w1"),
            "Get { kind: Custom(0), namespace: \"\", name: \"w1\" }"
        );
        for unknown in [
            "/api/v1/pods/p",
            "/api/v1/namespaces/ns/nodes",
            "/apis/apps/v1/pods",
            "/api/v2/pods",
            "/api/v1/secrets",
            "/apis/example.com/v0/widgets",
            "/apis/example.com/v1/namespaces/ns/widgets",
        ] {
            assert_eq!(r(unknown), "Unknown", "{unknown}");
        }
        assert!(resource_list(&store, "", "v1").is_some());
        assert!(resource_list(&store, "apps", "v1").is_some());
        let widgets = resource_list(&store, "example.com", "v1").unwrap();
        assert_eq!(widgets["resources"][0]["kind"], "Widget");
        assert_eq!(widgets["resources"][0]["namespaced"], false);
        assert!(resource_list(&store, "example.com", "v0").is_none());
        assert!(group_list(&store)["groups"]
            .as_array()
            .unwrap()
            .iter()
            .any(|g| g["name"] == "example.com"));
        // Cluster-scoped: the namespace an object names is not its place.
        assert_eq!(store.objects(Type::Custom(0))[0].namespace, "");
        // A type defined twice, an object of an undefined type, a definition without a
        // scope: each refused with what is wrong.
        let twice = KubeStore::from_objects(&[crd.clone(), crd.clone()]);
        assert!(twice.err().unwrap().contains("defined twice"));
        let undefined = KubeStore::from_objects(&[widget]);
        assert!(undefined
            .err()
            .unwrap()
            .contains("\"Widget\" are not served"));
        let mut no_scope = crd;
        no_scope["spec"]["scope"] = json!("Everywhere");
        let no_scope = KubeStore::from_objects(&[no_scope]);
        assert!(no_scope.err().unwrap().contains("spec.scope"));
    }

    #[test]
    fn label_selectors_in_kubectl_syntax() {
        let labels = r#"{"metadata":{"labels":{"app":"web","tier":"front"}}}"#;
        for (selector, expect) in [
            ("app=web", true),
            ("app==web,tier=front", true),
            ("app!=web", false),
            ("tier in (front, back)", true),
            ("tier notin (front)", false),
            ("app,!canary", true),
            ("canary", false),
            ("app in (web),tier notin (db)", true),
        ] {
            let parsed = parse_selector(selector).unwrap();
            assert_eq!(selected(&parsed, labels), expect, "{selector}");
        }
        assert!(parse_selector("app in web").is_err());
        assert!(parse_selector("a,,b").is_err());
    }

    #[test]
    fn kube_times_have_second_precision() {
        assert_eq!(kube_time(1_795_521_600_999), "2026-11-24T12:00:00Z");
    }
}
