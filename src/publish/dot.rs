//! The graph in Graphviz DOT, for people: `/debug`.
//!
//! Drawn to be read at a glance: the pods a node runs (and their containers) inside a box for
//! that node, the other namespaced objects inside a box for their namespace, resources
//! filled by status, pods named `namespace/name` and images by name. Relations that the
//! boxes already say (a node runs a pod, a namespace or the cluster contains an object) are
//! not drawn again. Processes are left out unless asked for: they are half the resources of
//! most clusters and say little in a picture.

use std::collections::{BTreeMap, HashMap};

use super::status::{status_of, Status};
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
        if matches!(r.kind.name(), "Node" | "Namespace" | "Cluster") {
            continue;
        }
        inside.entry(boxes.get(r.id.as_str())).or_default().push(r);
    }
    // A node or namespace is said by its box; one with nothing drawn in it (a node that runs
    // no pod, `type=nodes`) is drawn itself, or it would not be there at all.
    for r in &drawn {
        let name =
            r.id.split_once(':')
                .map_or("", |(_, name)| name)
                .to_string();
        let group = match r.kind.name() {
            "Node" => Group::Node(name),
            "Namespace" => Group::Namespace(name),
            _ => continue,
        };
        if !inside.contains_key(&Some(&group)) {
            inside.entry(None).or_default().push(r);
        }
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
        if let Some(namespace) = r.namespace() {
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
        "Image" => r.alternate_label.as_deref().unwrap_or(&r.label).to_string(),
        "Pod" => {
            r.id.split_once(':')
                .map_or_else(|| r.label.to_string(), |(_, rest)| rest.to_string())
        }
        _ => r.label.to_string(),
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
                .into(),
            alternate_label: None,
            source: None,
            stale_since_ms: None,
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
        // A node with nothing in its box is drawn itself.
        let mut lonely = graph.clone();
        lonely.resources.push(resource("Node", "Node:n2", "{}"));
        let dot = render(&lonely, DotOptions::default());
        assert!(dot.contains("\"Node:n2\" [label=\"Node\\nn2\""), "{dot}");
        assert!(!dot.contains("\"Node:n1\" [label"), "{dot}");
        let with = render(&graph, DotOptions { processes: true });
        let node_box = with.split("subgraph \"cluster_node_n1\"").nth(1).unwrap();
        assert!(
            node_box[..node_box.find("  }").unwrap()].contains("\"Process:abc/1\""),
            "{with}"
        );
    }
}
