//! `cluster-insight tree TYPE/NAME`: who owns an object, up to the top, and what it owns and
//! holds, down to `--depth`, read from a running master one resource at a time
//! (`/cluster/resources/TYPE/ID-REST`) and printed as a tree or as JSON.
//!
//! Ownership is the graph's `owns` (Deployment → ReplicaSet → Pod, CronJob → Job → Pod);
//! holding is `contains` from a pod (its containers) and from a container (its processes).
//! The other relations (a service that load-balances a pod, a node that runs it) are not a
//! lineage and are left to `/cluster?around=`.

use std::collections::HashSet;
use std::net::ToSocketAddrs;
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};

use crate::cli::TreeOptions;
use crate::http::client::{Bearer, Client, ClientConfig, Endpoint};
use crate::publish::status::status_of_properties;
use cluster_insight_wire::percent;

/// One object of the tree.
#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub id: String,
    pub kind: String,
    pub label: String,
    pub status: Option<&'static str>,
    /// The object asked for.
    pub asked: bool,
    pub children: Vec<Node>,
}

/// What the master answered for one resource: the resource and the relations it is an end
/// of, as `/cluster/resources/TYPE/ID-REST` has them.
#[derive(Debug, Clone)]
pub struct Answer {
    pub resource: Value,
    pub relations: Vec<Value>,
}

/// Why a tree could not be made.
#[derive(Debug)]
pub enum TreeError {
    /// The master could not be reached or asked.
    Master(String),
    /// The master has no such object.
    NotFound(String),
}

impl std::fmt::Display for TreeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            TreeError::Master(m) => write!(f, "{m}"),
            TreeError::NotFound(id) => write!(f, "the master has no {id}"),
        }
    }
}

/// The types whose `contains` is holding (a pod its containers, a container its
/// processes), not a namespace or the cluster listing what is in it.
const HOLDERS: &[&str] = &["Pod", "Container"];

fn type_of(id: &str) -> &str {
    id.split_once(':').map_or(id, |(t, _)| t)
}

/// The owner of `id` among its relations: what owns it, else the pod or container that
/// holds it.
fn owner_of(id: &str, relations: &[Value]) -> Option<String> {
    let incoming = |kind: &'static str| {
        relations
            .iter()
            .filter(move |r| r["target"] == id && r["type"] == kind)
            .filter_map(|r| r["source"].as_str())
    };
    incoming("owns")
        .next()
        .or_else(|| incoming("contains").find(|s| HOLDERS.contains(&type_of(s))))
        .map(str::to_string)
}

/// What `id` owns or holds, in the order the master gave.
fn children_of(id: &str, relations: &[Value]) -> Vec<String> {
    let holds = HOLDERS.contains(&type_of(id));
    relations
        .iter()
        .filter(|r| r["source"] == id)
        .filter(|r| r["type"] == "owns" || (holds && r["type"] == "contains"))
        .filter_map(|r| r["target"].as_str().map(str::to_string))
        .collect()
}

/// How a person names the resource: pods and other namespaced objects `namespace/name`,
/// images by name, the rest by the master's label.
fn label_of(resource: &Value) -> String {
    let annotations = &resource["annotations"];
    if resource["type"] == "Process" {
        let p = &resource["properties"];
        let command: String = p["COMMAND"]
            .as_str()
            .unwrap_or("")
            .chars()
            .take(60)
            .collect();
        return format!("{} {command}", p["PID"].as_str().unwrap_or("?"))
            .trim_end()
            .to_string();
    }
    if let Some(name) = annotations["alternateLabel"].as_str() {
        return name.to_string();
    }
    let metadata = &resource["properties"]["metadata"];
    match (metadata["namespace"].as_str(), metadata["name"].as_str()) {
        (Some(ns), Some(name)) => format!("{ns}/{name}"),
        (None, Some(name)) => name.to_string(),
        _ => annotations["label"]
            .as_str()
            .map_or_else(|| resource["id"].to_string(), str::to_string),
    }
}

/// What a terminal may be shown of text from the cluster: no control characters (a
/// process's command line may hold escape sequences).
fn printable(text: &str) -> String {
    text.chars().filter(|c| !c.is_control()).collect()
}

fn node_of(answer: &Answer, asked: bool) -> Node {
    let r = &answer.resource;
    let kind = r["type"].as_str().unwrap_or_default().to_string();
    let status = status_of_properties(&kind, &r["properties"].to_string()).map(|s| s.name());
    Node {
        id: r["id"].as_str().unwrap_or_default().to_string(),
        kind,
        label: printable(&label_of(r)),
        status,
        asked,
        children: Vec::new(),
    }
}

/// The tree of `id`: its owners up to the top, each with the one below on the way down,
/// then everything `id` owns or holds to `depth` levels. `fetch` answers one resource.
pub fn build(
    id: &str,
    depth: usize,
    mut fetch: impl FnMut(&str) -> Result<Option<Answer>, TreeError>,
) -> Result<Node, TreeError> {
    let first = fetch(id)?.ok_or_else(|| TreeError::NotFound(id.to_string()))?;
    let mut seen: HashSet<String> = HashSet::from([id.to_string()]);
    let mut owners: Vec<Answer> = Vec::new();
    let mut at = first.clone();
    while let Some(owner) = owner_of(
        at.resource["id"].as_str().unwrap_or_default(),
        &at.relations,
    ) {
        // A cycle of owners would be a broken graph; stop rather than loop.
        if !seen.insert(owner.clone()) {
            break;
        }
        let Some(answer) = fetch(&owner)? else { break };
        owners.push(answer.clone());
        at = answer;
    }
    let mut node = grow(&first, true, depth, &mut seen, &mut fetch)?;
    for owner in owners {
        let mut above = node_of(&owner, false);
        above.children.push(node);
        node = above;
    }
    Ok(node)
}

fn grow(
    answer: &Answer,
    asked: bool,
    depth: usize,
    seen: &mut HashSet<String>,
    fetch: &mut impl FnMut(&str) -> Result<Option<Answer>, TreeError>,
) -> Result<Node, TreeError> {
    let mut node = node_of(answer, asked);
    if depth == 0 {
        return Ok(node);
    }
    for child in children_of(&node.id, &answer.relations) {
        if !seen.insert(child.clone()) {
            continue;
        }
        // Gone between two answers: the tree is of what is there now.
        if let Some(child_answer) = fetch(&child)? {
            node.children
                .push(grow(&child_answer, false, depth - 1, seen, fetch)?);
        }
    }
    Ok(node)
}

/// The tree drawn with box-drawing lines, the object asked for marked.
pub fn render_text(root: &Node) -> String {
    let mut out = String::new();
    line(&mut out, root, "", None);
    out
}

fn line(out: &mut String, node: &Node, prefix: &str, last: Option<bool>) {
    let branch = match last {
        None => "",
        Some(true) => "└── ",
        Some(false) => "├── ",
    };
    out.push_str(&format!("{prefix}{branch}{} {}", node.kind, node.label));
    if let Some(status) = node.status {
        out.push_str(&format!("  [{status}]"));
    }
    if node.asked {
        out.push_str("  ◀");
    }
    out.push('\n');
    let below = match last {
        None => prefix.to_string(),
        Some(true) => format!("{prefix}    "),
        Some(false) => format!("{prefix}│   "),
    };
    for (i, child) in node.children.iter().enumerate() {
        line(out, child, &below, Some(i + 1 == node.children.len()));
    }
}

/// The tree as JSON: `{"id","type","label","status","asked","children":[…]}`.
pub fn render_json(root: &Node) -> Value {
    json!({
        "id": root.id,
        "type": root.kind,
        "label": root.label,
        "status": root.status,
        "asked": root.asked,
        "children": root.children.iter().map(render_json).collect::<Vec<_>>(),
    })
}

/// The object's ID as the graph names it.
fn id_of(options: &TreeOptions) -> String {
    if options.kind.namespaced() && !options.name.contains('/') {
        format!(
            "{}:{}/{}",
            options.kind.name(),
            options.namespace,
            options.name
        )
    } else {
        format!("{}:{}", options.kind.name(), options.name)
    }
}

/// Asks the master and prints the tree; the error says what went wrong, for the user.
pub fn run(options: &TreeOptions) -> Result<(), String> {
    let authority = options
        .server
        .trim_start_matches("http://")
        .trim_end_matches('/');
    // A URL without a port means port 80, as it does to every HTTP client.
    let authority = if authority.ends_with(']') || !authority.contains(':') {
        format!("{authority}:80")
    } else {
        authority.to_string()
    };
    let addr = authority
        .to_socket_addrs()
        .map_err(|e| format!("--server {}: {e}", options.server))?
        .next()
        .ok_or_else(|| format!("--server {}: no address", options.server))?;
    let token = match &options.token_file {
        Some(file) => Some(
            std::fs::read_to_string(file)
                .map_err(|e| format!("--token-file {}: {e}", file.display()))?
                .trim()
                .to_string(),
        ),
        None => None,
    };
    let bearer = token.map(|t| Bearer(Arc::new(move || Some(t.clone()))));
    let client = Client::new(
        Endpoint::Tcp(addr),
        ClientConfig {
            connect_timeout: Duration::from_secs(5),
            io_timeout: Duration::from_secs(30),
            request_timeout: Duration::from_secs(60),
            max_body: 256 << 20,
            bearer,
        },
    );
    let fetch = |id: &str| -> Result<Option<Answer>, TreeError> {
        let (kind, rest) = id
            .split_once(':')
            .ok_or_else(|| TreeError::Master(format!("the master named {id:?}, not an ID")))?;
        let path = format!(
            "/cluster/resources/{}/{}",
            percent::encode(kind, b""),
            percent::encode(rest, b"/:")
        );
        let response = client.get(&path).map_err(|e| {
            TreeError::Master(format!(
                "cannot ask the master at {}: {}",
                options.server,
                crate::report::chain(&e)
            ))
        })?;
        let body: Value = serde_json::from_slice(&response.body).unwrap_or(Value::Null);
        match response.status {
            200 if body["resource"]["id"].is_string() => Ok(Some(Answer {
                resource: body["resource"].clone(),
                relations: body["relations"].as_array().cloned().unwrap_or_default(),
            })),
            200 => Err(TreeError::Master(format!(
                "{} is not a Cluster Insight master: its answer for {path} is not a resource",
                options.server
            ))),
            404 => Ok(None),
            401 if options.token_file.is_some() => Err(TreeError::Master(format!(
                "the master at {} refused the token of --token-file",
                options.server
            ))),
            401 => Err(TreeError::Master(format!(
                "the master at {} asks for a token (--token-file)",
                options.server
            ))),
            403 => Err(TreeError::Master(format!(
                "the master at {} does not let this token read the graph: {}",
                options.server,
                body["error_message"].as_str().unwrap_or("(no message)")
            ))),
            status => Err(TreeError::Master(format!(
                "the master at {} answered {status}: {}",
                options.server,
                body["error_message"].as_str().unwrap_or("(no message)")
            ))),
        }
    };
    let root = build(&id_of(options), options.depth, fetch).map_err(|e| e.to_string())?;
    let text = if options.json {
        serde_json::to_string_pretty(&render_json(&root)).unwrap_or_default() + "\n"
    } else {
        render_text(&root)
    };
    // A reader that stopped early (`| head`) is not an error.
    let mut stdout = std::io::stdout().lock();
    match std::io::Write::write_all(&mut stdout, text.as_bytes()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
            Err(format!("cannot write the tree: {e}"))
        }
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashMap;

    /// A small graph: a Deployment owns a ReplicaSet that owns two pods; one pod holds a
    /// container that holds a process; a namespace contains the Deployment.
    fn answers() -> HashMap<String, Answer> {
        let rel = |kind: &str, s: &str, t: &str| json!({"type": kind, "source": s, "target": t});
        let relations = [
            rel("contains", "Namespace:shop", "Deployment:shop/web"),
            rel("owns", "Deployment:shop/web", "ReplicaSet:shop/web-1"),
            rel("owns", "ReplicaSet:shop/web-1", "Pod:shop/web-1-a"),
            rel("owns", "ReplicaSet:shop/web-1", "Pod:shop/web-1-b"),
            rel("contains", "Pod:shop/web-1-a", "Container:c1"),
            rel("contains", "Container:c1", "Process:c1/7"),
            rel("loadBalances", "Service:shop/web", "Pod:shop/web-1-a"),
        ];
        let resource = |id: &str, properties: Value| {
            let (kind, rest) = id.split_once(':').unwrap();
            json!({"id": id, "type": kind, "properties": properties, "annotations": {"label": rest}})
        };
        let ids = [
            ("Namespace:shop", json!({"metadata": {"name": "shop"}})),
            (
                "Deployment:shop/web",
                json!({"metadata": {"name": "web", "namespace": "shop"}, "spec": {"replicas": 2}, "status": {"readyReplicas": 1}}),
            ),
            (
                "ReplicaSet:shop/web-1",
                json!({"metadata": {"name": "web-1", "namespace": "shop"}}),
            ),
            (
                "Pod:shop/web-1-a",
                json!({"metadata": {"name": "web-1-a", "namespace": "shop"}, "status": {"phase": "Running"}}),
            ),
            (
                "Pod:shop/web-1-b",
                json!({"metadata": {"name": "web-1-b", "namespace": "shop"}, "status": {"phase": "Pending"}}),
            ),
            ("Container:c1", json!({"State": {"Status": "running"}})),
            (
                "Process:c1/7",
                json!({"PID": "7", "COMMAND": "nginx -g daemon off;\u{1b}[2J"}),
            ),
            (
                "Service:shop/web",
                json!({"metadata": {"name": "web", "namespace": "shop"}}),
            ),
        ];
        ids.into_iter()
            .map(|(id, properties)| {
                let mine = relations
                    .iter()
                    .filter(|r| r["source"] == id || r["target"] == id)
                    .cloned()
                    .collect();
                (
                    id.to_string(),
                    Answer {
                        resource: resource(id, properties),
                        relations: mine,
                    },
                )
            })
            .collect()
    }

    fn tree(id: &str, depth: usize) -> (Result<Node, TreeError>, Vec<String>) {
        let all = answers();
        let mut asked = Vec::new();
        let result = build(id, depth, |id| {
            asked.push(id.to_string());
            Ok(all.get(id).cloned())
        });
        (result, asked)
    }

    #[test]
    fn a_pod_shows_its_owners_above_and_what_it_holds_below() {
        let (root, _) = tree("Pod:shop/web-1-a", 10);
        let text = render_text(&root.unwrap());
        let expected = [
            "Deployment shop/web  [pending]",
            "└── ReplicaSet shop/web-1  [pending]",
            "    └── Pod shop/web-1-a  [running]  ◀",
            "        └── Container c1  [running]",
            "            └── Process 7 nginx -g daemon off;[2J", // the escape character left out
        ];
        assert_eq!(text, expected.join("\n") + "\n");
    }

    #[test]
    fn a_deployment_shows_everything_it_owns_to_the_depth_asked() {
        let (root, asked) = tree("Deployment:shop/web", 2);
        let root = root.unwrap();
        assert!(root.asked);
        assert_eq!(root.children.len(), 1);
        let pods: Vec<&str> = root.children[0]
            .children
            .iter()
            .map(|p| p.id.as_str())
            .collect();
        assert_eq!(pods, ["Pod:shop/web-1-a", "Pod:shop/web-1-b"]);
        // Depth 2 stops at the pods: their containers are not asked for.
        assert!(root.children[0]
            .children
            .iter()
            .all(|p| p.children.is_empty()));
        assert!(!asked.iter().any(|id| id.starts_with("Container:")));
        // The namespace contains the Deployment but does not own it; the service is no owner.
        assert!(!asked.contains(&"Namespace:shop".to_string()));
        let json = render_json(&root);
        assert_eq!(json["children"][0]["children"][1]["status"], "pending");
    }

    #[test]
    fn an_unknown_object_is_said_so() {
        let (root, _) = tree("Pod:shop/nope", 3);
        assert!(matches!(root, Err(TreeError::NotFound(id)) if id == "Pod:shop/nope"));
    }

    #[test]
    fn ids_as_the_graph_names_them() {
        let options = |k: &str, name: &str| TreeOptions {
            kind: crate::graph::Kind::from_type_name(k).unwrap(),
            name: name.to_string(),
            namespace: "shop".to_string(),
            server: String::new(),
            depth: 1,
            json: false,
            token_file: None,
        };
        assert_eq!(id_of(&options("deploy", "web")), "Deployment:shop/web");
        assert_eq!(id_of(&options("nodes", "n1")), "Node:n1");
        assert_eq!(id_of(&options("process", "abc/7")), "Process:abc/7");
    }
}
