//! The graph in Graphviz DOT, for people: `/debug`.
//!
//! Drawn to be read at a glance: the pods a node runs (and their containers) inside a box for
//! that node, the other namespaced objects inside a box for their namespace, resources
//! filled by status, pods named `namespace/name` and images by name. Relations that the
//! boxes already say (a node runs a pod, a namespace or the cluster contains an object) are
//! not drawn again. Processes are left out unless asked for: they are half the resources of
//! most clusters and say little in a picture.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use crate::graph::{Graph, Kind, RelationType, Resource};

/// What a drawing holds beyond the default.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct DotOptions {
    /// Processes, each inside its container's node.
    pub(crate) processes: bool,
}

/// The graph in DOT.
pub(crate) fn render(graph: &Graph, options: DotOptions) -> String {
    let drawn: Vec<&Resource> = graph
        .resources
        .iter()
        .filter(|r| options.processes || r.kind.name() != "Process")
        .collect();
    let by_id: HashMap<&str, &Resource> = drawn.iter().map(|r| (r.id.as_str(), *r)).collect();
    let boxes = boxes(graph, &by_id);

    let mut out = String::from(
        "digraph cluster_insight {\n  rankdir=LR;\n  newrank=true;\n  nodesep=0.15;\n  \
         ranksep=0.6;\n  fontname=\"Helvetica\";\n  \
         node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", \
         fontname=\"Helvetica\", fontsize=10, height=0.3];\n  \
         edge [fontname=\"Helvetica\", fontsize=8, color=\"#8c959f\", fontcolor=\"#57606a\"];\n",
    );
    if let Some(cluster) = drawn.iter().find(|r| r.kind.name() == "Cluster") {
        out.push_str(&format!(
            "  label={};\n  labelloc=t;\n  fontsize=16;\n",
            dot_string(&format!("Cluster {}", cluster.label))
        ));
    }
    // Resources by the box they are drawn in; `None`: outside every box.
    let mut inside: BTreeMap<Option<&Group>, Vec<&Resource>> = BTreeMap::new();
    for r in &drawn {
        // The node and namespace are said by their boxes; a node's own resource is its box.
        if matches!(r.kind.name(), "Node" | "Namespace" | "Cluster") {
            continue;
        }
        inside.entry(boxes.get(r.id.as_str())).or_default().push(r);
    }
    for (group, members) in &inside {
        let indent = match group {
            Some(group) => {
                let (title, fill) = match group {
                    Group::Node(name) => (format!("Node {name}"), node_fill(&by_id, name)),
                    Group::Namespace(name) => (format!("Namespace {name}"), "#f6f8fa"),
                };
                out.push_str(&format!(
                    "  subgraph {} {{\n    label={};\n    style=\"rounded,filled\";\n    \
                     fillcolor=\"{fill}\";\n    color=\"#8c959f\";\n    fontsize=12;\n",
                    dot_string(&group.cluster_name()),
                    dot_string(&title),
                ));
                "    "
            }
            None => "  ",
        };
        for r in members {
            out.push_str(&format!(
                "{indent}{} [label={}, fillcolor=\"{}\"{}];\n",
                dot_string(&r.id),
                dot_string(&format!("{}\n{}", r.kind.name(), label(r))),
                status_of(r).map_or("#ffffff", Status::fill),
                shape(r.kind),
            ));
        }
        if group.is_some() {
            out.push_str("  }\n");
        }
    }
    for rel in &graph.relations {
        let (Some(from), Some(to)) = (
            by_id.get(rel.source.as_str()),
            by_id.get(rel.target.as_str()),
        ) else {
            continue;
        };
        if said_by_boxes(from, to, rel.kind) {
            continue;
        }
        out.push_str(&format!(
            "  {} -> {} [label={}];\n",
            dot_string(&rel.source),
            dot_string(&rel.target),
            dot_string(rel.kind.as_str())
        ));
    }
    out.push_str("}\n");
    out
}

/// A box of the drawing.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Group {
    Node(String),
    Namespace(String),
}

impl Group {
    /// Graphviz draws a subgraph as a box when its name starts with `cluster`.
    fn cluster_name(&self) -> String {
        match self {
            Group::Node(name) => format!("cluster_node_{name}"),
            Group::Namespace(name) => format!("cluster_namespace_{name}"),
        }
    }
}

/// The box each resource is drawn in: a pod's node (and its containers' and processes'),
/// a standalone container's node, else a namespaced object's namespace.
fn boxes<'a>(graph: &'a Graph, drawn: &HashMap<&str, &Resource>) -> HashMap<&'a str, Group> {
    let mut out: HashMap<&str, Group> = HashMap::new();
    let node_of = |id: &str| {
        id.strip_prefix("Node:")
            .map(|name| Group::Node(name.to_string()))
    };
    // Nodes run pods and standalone containers; pods contain containers, containers
    // processes: three passes, from the node down.
    for pass in 0..3 {
        for rel in &graph.relations {
            if !drawn.contains_key(rel.source.as_str()) || !drawn.contains_key(rel.target.as_str())
            {
                continue;
            }
            let group = match (pass, rel.kind) {
                (0, RelationType::Runs) => node_of(&rel.source),
                (1 | 2, RelationType::Contains) => out.get(rel.source.as_str()).cloned(),
                _ => None,
            };
            if let Some(group) = group {
                out.entry(rel.target.as_str()).or_insert(group);
            }
        }
    }
    for r in &graph.resources {
        if out.contains_key(r.id.as_str()) {
            continue;
        }
        let namespaced = r.kind.info().api.is_some_and(|api| api.namespaced);
        if let Some((namespace, _)) = namespaced
            .then(|| r.id.split_once(':'))
            .flatten()
            .and_then(|(_, rest)| rest.split_once('/'))
        {
            out.insert(r.id.as_str(), Group::Namespace(namespace.to_string()));
        }
    }
    out
}

/// Whether the boxes already say what `kind` from `from` to `to` says.
fn said_by_boxes(from: &Resource, to: &Resource, kind: RelationType) -> bool {
    match kind {
        RelationType::Runs => from.kind.name() == "Node",
        RelationType::Contains => {
            matches!(from.kind.name(), "Cluster" | "Namespace" | "Node")
                || to.kind.name() == "Process"
        }
        _ => false,
    }
}

/// What a person calls the resource: pods `namespace/name`, images by name.
fn label(r: &Resource) -> String {
    match r.kind.name() {
        "Image" => r.alternate_label.clone().unwrap_or_else(|| r.label.clone()),
        "Pod" => {
            r.id.split_once(':')
                .map_or_else(|| r.label.clone(), |(_, rest)| rest.to_string())
        }
        _ => r.label.clone(),
    }
}

fn shape(kind: Kind) -> &'static str {
    match kind.name() {
        "Pod" => ", shape=box",
        "Container" => ", shape=component",
        "Process" => ", shape=plain, style=\"\"",
        "Image" => ", shape=hexagon, style=filled",
        "Service" => ", shape=diamond, style=filled",
        "Ingress" => ", shape=invhouse, style=filled",
        "PersistentVolume" | "PersistentVolumeClaim" => ", shape=cylinder, style=filled",
        _ => ", shape=box",
    }
}

/// A node's box is tinted when the node is not ready.
fn node_fill(drawn: &HashMap<&str, &Resource>, name: &str) -> &'static str {
    match drawn
        .get(format!("Node:{name}").as_str())
        .and_then(|r| status_of(r))
    {
        Some(Status::Failed) => "#ffebe9",
        _ => "#f6f8fa",
    }
}

/// How a resource is doing, as its own status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Status {
    Running,
    Pending,
    Restarting,
    Failed,
    Succeeded,
}

impl Status {
    fn fill(self) -> &'static str {
        match self {
            Status::Running => "#dafbe1",
            Status::Pending => "#fff8c5",
            Status::Restarting => "#ffd8b5",
            Status::Failed => "#ffcecb",
            Status::Succeeded => "#eaeef2",
        }
    }
}

/// The fields of a pod's, node's, workload's or container's properties that say its status;
/// the rest of the object is skipped unread.
#[derive(Deserialize, Default)]
#[serde(default)]
struct Object {
    status: Option<ObjectStatus>,
    spec: Option<Spec>,
    /// Docker's inspect.
    #[serde(rename = "State")]
    docker_state: Option<DockerState>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct ObjectStatus {
    phase: Option<String>,
    conditions: Vec<Condition>,
    container_statuses: Vec<ContainerStatus>,
    init_container_statuses: Vec<ContainerStatus>,
    ready_replicas: Option<u64>,
    number_ready: Option<u64>,
    desired_number_scheduled: Option<u64>,
    succeeded: Option<u64>,
    failed: Option<u64>,
    active: Option<u64>,
    /// CRI: `CONTAINER_RUNNING`, `SANDBOX_READY`…
    state: Option<String>,
    exit_code: Option<i64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Condition {
    #[serde(rename = "type")]
    kind: String,
    status: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerStatus {
    state: Option<ContainerState>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct ContainerState {
    waiting: Option<Waiting>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Waiting {
    reason: String,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Spec {
    replicas: Option<u64>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct DockerState {
    #[serde(rename = "Status")]
    status: String,
    #[serde(rename = "Restarting")]
    restarting: bool,
    #[serde(rename = "ExitCode")]
    exit_code: i64,
}

/// Waiting reasons of a container that keeps failing.
const FAILING: &[&str] = &[
    "CrashLoopBackOff",
    "ImagePullBackOff",
    "ErrImagePull",
    "CreateContainerError",
    "RunContainerError",
];

fn status_of(r: &Resource) -> Option<Status> {
    let kind = r.kind.name();
    if !matches!(
        kind,
        "Pod"
            | "Node"
            | "Container"
            | "Deployment"
            | "StatefulSet"
            | "ReplicaSet"
            | "ReplicationController"
            | "DaemonSet"
            | "Job"
            | "PersistentVolume"
            | "PersistentVolumeClaim"
    ) {
        return None;
    }
    let object: Object = serde_json::from_str(&r.properties).ok()?;
    let status = object.status.unwrap_or_default();
    let ready = |kind: &str| {
        status
            .conditions
            .iter()
            .find(|c| c.kind == kind)
            .map(|c| c.status == "True")
    };
    Some(match kind {
        "Pod" => {
            let failing = status
                .container_statuses
                .iter()
                .chain(&status.init_container_statuses)
                .filter_map(|c| c.state.as_ref()?.waiting.as_ref())
                .any(|w| FAILING.contains(&w.reason.as_str()));
            match status.phase.as_deref() {
                _ if failing => Status::Restarting,
                Some("Running") if ready("Ready") == Some(false) => Status::Pending,
                Some("Running") => Status::Running,
                Some("Pending") => Status::Pending,
                Some("Failed") => Status::Failed,
                Some("Succeeded") => Status::Succeeded,
                _ => return None,
            }
        }
        "Node" => match ready("Ready")? {
            true => Status::Running,
            false => Status::Failed,
        },
        "Container" => match (object.docker_state, status.state.as_deref()) {
            (Some(d), _) if d.restarting => Status::Restarting,
            (Some(d), _) if d.status == "running" => Status::Running,
            (Some(d), _) if d.status == "exited" && d.exit_code != 0 => Status::Failed,
            (Some(d), _) if d.status == "exited" => Status::Succeeded,
            (Some(d), _) if d.status == "created" => Status::Pending,
            (_, Some("CONTAINER_RUNNING" | "SANDBOX_READY")) => Status::Running,
            (_, Some("CONTAINER_CREATED")) => Status::Pending,
            (_, Some("CONTAINER_EXITED")) if status.exit_code.unwrap_or(0) != 0 => Status::Failed,
            (_, Some("CONTAINER_EXITED" | "SANDBOX_NOTREADY")) => Status::Succeeded,
            _ => return None,
        },
        "DaemonSet" => {
            if status.number_ready.unwrap_or(0) >= status.desired_number_scheduled.unwrap_or(0) {
                Status::Running
            } else {
                Status::Pending
            }
        }
        "Job" => match (status.failed, status.succeeded, status.active) {
            (Some(f), None | Some(0), _) if f > 0 => Status::Failed,
            (_, Some(s), _) if s > 0 => Status::Succeeded,
            (_, _, Some(a)) if a > 0 => Status::Running,
            _ => Status::Pending,
        },
        "PersistentVolume" | "PersistentVolumeClaim" => match status.phase.as_deref() {
            Some("Bound") => Status::Running,
            Some("Failed") => Status::Failed,
            _ => Status::Pending,
        },
        // The workloads that keep a number of replicas.
        _ => {
            let want = object.spec.and_then(|s| s.replicas).unwrap_or(1);
            if want == 0 {
                Status::Succeeded
            } else if status.ready_replicas.unwrap_or(0) >= want {
                Status::Running
            } else {
                Status::Pending
            }
        }
    })
}

fn dot_string(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c if c.is_control() => {}
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::Id;
    use std::sync::Arc;

    fn resource(kind: &str, id: &str, properties: &str) -> Resource {
        Resource {
            id: Id::new(id.to_string()),
            kind: Kind::all().find(|k| k.name() == kind).unwrap(),
            timestamp_ms: 0,
            properties: Arc::from(properties),
            label: id
                .split_once(':')
                .unwrap()
                .1
                .rsplit('/')
                .next()
                .unwrap()
                .to_string(),
            alternate_label: None,
            source: None,
            stale_since_ms: None,
        }
    }

    #[test]
    fn statuses_as_each_kind_says_them() {
        let cases = [
            (
                "Pod",
                r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"True"}]}}"#,
                Some(Status::Running),
            ),
            (
                "Pod",
                r#"{"status":{"phase":"Running","conditions":[{"type":"Ready","status":"False"}]}}"#,
                Some(Status::Pending),
            ),
            (
                "Pod",
                r#"{"status":{"phase":"Running","containerStatuses":[{"state":{"waiting":{"reason":"CrashLoopBackOff"}}}]}}"#,
                Some(Status::Restarting),
            ),
            (
                "Pod",
                r#"{"status":{"phase":"Pending"}}"#,
                Some(Status::Pending),
            ),
            (
                "Pod",
                r#"{"status":{"phase":"Failed"}}"#,
                Some(Status::Failed),
            ),
            (
                "Pod",
                r#"{"status":{"phase":"Succeeded"}}"#,
                Some(Status::Succeeded),
            ),
            ("Pod", r#"{"metadata":{}}"#, None),
            (
                "Node",
                r#"{"status":{"conditions":[{"type":"Ready","status":"False"}]}}"#,
                Some(Status::Failed),
            ),
            (
                "Container",
                r#"{"State":{"Status":"running","Running":true}}"#,
                Some(Status::Running),
            ),
            (
                "Container",
                r#"{"State":{"Status":"exited","ExitCode":137}}"#,
                Some(Status::Failed),
            ),
            (
                "Container",
                r#"{"State":{"Status":"running","Restarting":true}}"#,
                Some(Status::Restarting),
            ),
            (
                "Container",
                r#"{"info":{},"status":{"state":"CONTAINER_EXITED","exitCode":0}}"#,
                Some(Status::Succeeded),
            ),
            (
                "Container",
                r#"{"info":{},"status":{"state":"SANDBOX_READY"}}"#,
                Some(Status::Running),
            ),
            (
                "Deployment",
                r#"{"spec":{"replicas":3},"status":{"readyReplicas":2}}"#,
                Some(Status::Pending),
            ),
            (
                "Deployment",
                r#"{"spec":{"replicas":3},"status":{"readyReplicas":3}}"#,
                Some(Status::Running),
            ),
            ("Job", r#"{"status":{"failed":2}}"#, Some(Status::Failed)),
            (
                "Job",
                r#"{"status":{"succeeded":1}}"#,
                Some(Status::Succeeded),
            ),
            ("Service", r#"{"status":{}}"#, None),
            ("Pod", "not json", None),
        ];
        for (kind, properties, expected) in cases {
            let r = resource(kind, &format!("{kind}:x"), properties);
            assert_eq!(status_of(&r), expected, "{kind} {properties}");
        }
    }

    #[test]
    fn boxes_hold_what_nodes_run_and_namespaces_contain() {
        use crate::graph::Relation;
        let rel = |kind, source: &str, target: &str| Relation {
            kind,
            source: Id::new(source.to_string()),
            target: Id::new(target.to_string()),
            timestamp_ms: 0,
        };
        let graph = Graph {
            timestamp_ms: 0,
            resources: vec![
                resource("Cluster", "Cluster:c", "{}"),
                resource("Node", "Node:n1", "{}"),
                resource("Pod", "Pod:ns/p", r#"{"status":{"phase":"Pending"}}"#),
                resource("Container", "Container:abc", "{}"),
                resource("Process", "Process:abc/1", "{}"),
                resource("Service", "Service:ns/s", "{}"),
            ],
            relations: vec![
                rel(RelationType::Contains, "Cluster:c", "Node:n1"),
                rel(RelationType::Runs, "Node:n1", "Pod:ns/p"),
                rel(RelationType::Contains, "Pod:ns/p", "Container:abc"),
                rel(RelationType::Contains, "Container:abc", "Process:abc/1"),
                rel(RelationType::LoadBalances, "Service:ns/s", "Pod:ns/p"),
            ],
        };
        let dot = render(&graph, DotOptions::default());
        let node_box = dot.split("subgraph \"cluster_node_n1\"").nth(1).unwrap();
        let node_box = &node_box[..node_box.find("  }").unwrap()];
        assert!(
            node_box.contains("\"Pod:ns/p\" [label=\"Pod\\nns/p\", fillcolor=\"#fff8c5\""),
            "{dot}"
        );
        assert!(node_box.contains("\"Container:abc\""), "{dot}");
        let ns_box = dot
            .split("subgraph \"cluster_namespace_ns\"")
            .nth(1)
            .unwrap();
        assert!(ns_box[..ns_box.find("  }").unwrap()].contains("\"Service:ns/s\""));
        assert!(!dot.contains("Process"), "{dot}");
        assert!(dot.contains("label=\"Cluster c\""));
        // What the boxes say is not drawn again; the rest is.
        assert!(!dot.contains("[label=\"runs\"]"), "{dot}");
        assert!(dot.contains("\"Pod:ns/p\" -> \"Container:abc\" [label=\"contains\"]"));
        assert!(dot.contains("\"Service:ns/s\" -> \"Pod:ns/p\" [label=\"loadBalances\"]"));
        let with = render(&graph, DotOptions { processes: true });
        let node_box = with.split("subgraph \"cluster_node_n1\"").nth(1).unwrap();
        assert!(
            node_box[..node_box.find("  }").unwrap()].contains("\"Process:abc/1\""),
            "{with}"
        );
    }
}
