//! `cluster-insight simulate`: serves a simulated cluster until the process is stopped.
//!
//! With `--size`, the generated cluster of [`crate::sim`] (a Kubernetes API and one Docker
//! API per node on 127.0.x.y). With `--kube-objects FILE`, a Kubernetes API serving exactly
//! the objects of a v1 `List` file — for tests that pair a real Docker daemon's containers
//! with pods written for them.

use std::collections::BTreeMap;
use std::net::{SocketAddr, TcpListener};
use std::path::Path;
use std::sync::Arc;

use crate::http_server::{self, Body, Method, Request, Response};
use crate::sim::{SimSpec, Simulator};

/// Runs until the process is stopped; errors are start-up errors.
pub fn run(
    size: Option<&str>,
    kube_objects: Option<&Path>,
    addr: SocketAddr,
) -> Result<(), String> {
    match kube_objects {
        Some(file) => serve_objects(file, addr),
        None => {
            let spec = match size {
                Some(text) => SimSpec::parse_size(text).map_err(|e| format!("--size: {e}"))?,
                None => SimSpec::default(),
            };
            let sim = Simulator::start_on(spec, addr.port(), 0)
                .map_err(|e| format!("cannot start the simulator: {e}"))?;
            println!("kubernetes {}", sim.kube_url());
            if sim.docker_port() != 0 {
                let nodes: Vec<String> =
                    sim.node_addresses().iter().map(|a| a.to_string()).collect();
                println!(
                    "docker-port {} nodes {}",
                    sim.docker_port(),
                    nodes.join(",")
                );
            }
            // Serve until killed: the simulator's threads do the work.
            loop {
                std::thread::park();
            }
        }
    }
}

/// The lists a master reads, by path, built from the objects' `kind`.
fn lists_from_file(file: &Path) -> Result<BTreeMap<&'static str, String>, String> {
    let text = std::fs::read_to_string(file).map_err(|e| format!("{}: {e}", file.display()))?;
    let value: serde_json::Value =
        serde_json::from_str(&text).map_err(|e| format!("{}: not JSON: {e}", file.display()))?;
    let items = match &value {
        serde_json::Value::Array(items) => items.clone(),
        v => v
            .get("items")
            .and_then(|i| i.as_array())
            .cloned()
            .ok_or_else(|| format!("{}: expected a v1 List or an array", file.display()))?,
    };
    let kinds = [
        ("Node", "/api/v1/nodes", "NodeList"),
        ("Pod", "/api/v1/pods", "PodList"),
        ("Service", "/api/v1/services", "ServiceList"),
        (
            "ReplicationController",
            "/api/v1/replicationcontrollers",
            "ReplicationControllerList",
        ),
    ];
    let mut lists = BTreeMap::new();
    for (kind, path, list_kind) in kinds {
        let of_kind: Vec<&serde_json::Value> = items
            .iter()
            .filter(|i| i.get("kind").and_then(|k| k.as_str()) == Some(kind))
            .collect();
        let body = serde_json::json!({
            "kind": list_kind,
            "apiVersion": "v1",
            "metadata": {"resourceVersion": "1"},
            "items": of_kind,
        });
        lists.insert(path, body.to_string());
    }
    let known: usize = items
        .iter()
        .filter(|i| {
            kinds
                .iter()
                .any(|(k, _, _)| i.get("kind").and_then(|v| v.as_str()) == Some(*k))
        })
        .count();
    if known < items.len() {
        return Err(format!(
            "{}: {} object(s) of a kind other than Node, Pod, Service, ReplicationController",
            file.display(),
            items.len() - known
        ));
    }
    Ok(lists)
}

fn serve_objects(file: &Path, addr: SocketAddr) -> Result<(), String> {
    let lists = Arc::new(lists_from_file(file)?);
    let listener = TcpListener::bind(addr).map_err(|e| format!("{addr}: {e}"))?;
    let local = listener.local_addr().map_err(|e| e.to_string())?;
    let handler = Arc::new(move |request: &Request| answer(&lists, request));
    let server = http_server::serve_listener(listener, 4, "simulate", handler)
        .map_err(|e| format!("cannot serve: {e}"))?;
    println!("kubernetes http://{local}");
    server.join();
    Ok(())
}

fn answer(lists: &BTreeMap<&'static str, String>, request: &Request) -> Response {
    if !matches!(request.method, Method::Get | Method::Head) {
        return status(405, "MethodNotAllowed", "this API is read-only");
    }
    match lists.get(request.path()) {
        Some(body) => Response::new(
            200,
            "application/json",
            Body::Owned(body.clone().into_bytes()),
        ),
        None if request.path() == "/version" => Response::new(
            200,
            "application/json",
            Body::Owned(
                br#"{"major":"1","minor":"36","gitVersion":"v1.36.0-cluster-insight-simulate"}"#
                    .to_vec(),
            ),
        ),
        None => status(
            404,
            "NotFound",
            &format!("the server could not find {}", request.path()),
        ),
    }
}

fn status(code: u16, reason: &str, message: &str) -> Response {
    let body = serde_json::json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {},
        "status": "Failure", "message": message, "reason": reason, "code": code,
    });
    Response::new(
        code,
        "application/json",
        Body::Owned(body.to_string().into_bytes()),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn objects_are_grouped_into_lists() {
        let dir = std::env::temp_dir().join(format!("ci-simulate-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let file = dir.join("objects.json");
        std::fs::write(&file, r#"{"apiVersion":"v1","kind":"List","items":[
            {"kind":"Node","metadata":{"name":"n"}},{"kind":"Pod","metadata":{"name":"p","namespace":"d"}}]}"#).unwrap();
        let lists = lists_from_file(&file).unwrap();
        let pods: serde_json::Value = serde_json::from_str(&lists["/api/v1/pods"]).unwrap();
        assert_eq!(pods["items"][0]["metadata"]["name"], "p");
        let rcs: serde_json::Value =
            serde_json::from_str(&lists["/api/v1/replicationcontrollers"]).unwrap();
        assert_eq!(rcs["items"].as_array().unwrap().len(), 0);
        assert_eq!(
            answer(&lists, &Request::get("/api/v1/nodes?limit=500")).status,
            200
        );
        assert_eq!(answer(&lists, &Request::get("/api/v1/secrets")).status, 404);

        std::fs::write(&file, r#"[{"kind":"Secret","metadata":{"name":"s"}}]"#).unwrap();
        assert!(lists_from_file(&file).unwrap_err().contains("other than"));
        std::fs::write(&file, "{").unwrap();
        assert!(lists_from_file(&file).unwrap_err().contains("not JSON"));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
