//! Faults that damage the content of a proper answer rather than its delivery: known fields
//! with the wrong JSON type, objects listed twice, objects that vanish between a list and
//! the inspect, and bodies far larger than any client should read.
//!
//! Each works on the body the simulator would have sent, so the damage is exactly the one
//! named and everything else stays consistent with the cluster. Huge bodies are generated
//! while they are written, never held in memory: the simulator must not need the memory it
//! tests the master for.

use std::io::Write;
use std::net::TcpStream;

use serde_json::Value;

use super::server::Response;

/// Gives known fields of one object in `body` the wrong type: the first object of a
/// Kubernetes list gets a number for `metadata.name`, the second (pods) an array for
/// `spec.nodeName`; the first entry of a Docker container list a number for `Id`; a
/// container inspect a string for `Config.Labels` and a number for `Name`; a `top` a string
/// for `Processes`; an image inspect a string for `RepoTags`. A body that is not JSON, or
/// has none of these shapes, is returned unchanged.
pub(crate) fn wrong_types(body: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    if let Some(items) = value.get_mut("items").and_then(Value::as_array_mut) {
        if let Some(meta) = items.first_mut().and_then(|i| i.get_mut("metadata")) {
            meta["name"] = Value::from(12345);
        }
        if let Some(spec) = items.get_mut(1).and_then(|i| i.get_mut("spec")) {
            if spec.get("nodeName").is_some() {
                spec["nodeName"] = serde_json::json!(["sim-node-1", "sim-node-2"]);
            }
        }
    } else if let Some(entries) = value.as_array_mut() {
        if let Some(first) = entries.first_mut().and_then(Value::as_object_mut) {
            first.insert("Id".into(), Value::from(424242));
        }
    } else if let Some(obj) = value.as_object_mut() {
        let image = obj.contains_key("RepoTags");
        // An image inspect has a Config too: there its tags are the damaged field.
        if let Some(config) = obj.get_mut("Config").and_then(Value::as_object_mut) {
            if !image {
                config.insert("Labels".into(), Value::from("io.kubernetes.pod.name=x"));
            }
        }
        if image {
            obj.insert("RepoTags".into(), Value::from("nginx:latest"));
        } else if obj.contains_key("State") {
            obj.insert("Name".into(), Value::from(7));
        }
        if obj.contains_key("Processes") {
            obj.insert("Processes".into(), Value::from("PID 1"));
        }
    }
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

/// Lists every object twice: the `items` of a Kubernetes list, the entries of a Docker
/// container list. Other bodies are returned unchanged.
pub(crate) fn duplicate(body: &[u8]) -> Vec<u8> {
    let Ok(mut value) = serde_json::from_slice::<Value>(body) else {
        return body.to_vec();
    };
    let list = if value.is_array() {
        value.as_array_mut()
    } else {
        value.get_mut("items").and_then(Value::as_array_mut)
    };
    let Some(list) = list else {
        return body.to_vec();
    };
    let copy = list.clone();
    list.extend(copy);
    serde_json::to_vec(&value).unwrap_or_else(|_| body.to_vec())
}

/// The Docker daemon's answer for a container or image that no longer exists, naming the
/// object from the request path (`/containers/ID/json`, `/containers/ID/top`,
/// `/images/ID/json`).
pub(crate) fn vanished(path: &str) -> Response {
    let mut parts = path.trim_matches('/').split('/');
    let kind = parts.next().unwrap_or("");
    let id = parts.next().unwrap_or("");
    let message = if kind == "images" {
        format!("No such image: {id}")
    } else {
        format!("No such container: {id}")
    };
    Response::json(404, serde_json::json!({ "message": message }).to_string())
}

/// Writes a 200 answer of `len` body bytes that starts like a JSON list and never ends,
/// without `Content-Length` (the body runs until the connection closes), generated in small
/// pieces. Stops quietly when the reader goes away.
pub(crate) fn write_huge(stream: &mut TcpStream, len: usize) -> std::io::Result<()> {
    let mut head = Vec::new();
    cluster_insight_wire::head::write_response_head(
        &mut head,
        cluster_insight_wire::head::Version::Http11,
        200,
        [("Content-Type", "application/json")],
        None,
        false,
    );
    stream.write_all(&head)?;
    let opening = b"[{\"Id\":\"";
    stream.write_all(opening)?;
    let piece = [b'a'; 64 * 1024];
    let mut left = len.saturating_sub(opening.len());
    while left > 0 {
        let n = left.min(piece.len());
        stream.write_all(&piece[..n])?;
        left -= n;
    }
    stream.flush()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn damages_only_the_named_fields() {
        let list = br#"{"items":[{"metadata":{"name":"a"},"spec":{"nodeName":"n"}},{"metadata":{"name":"b"},"spec":{"nodeName":"n"}}]}"#;
        let v: Value = serde_json::from_slice(&wrong_types(list)).unwrap();
        assert_eq!(v["items"][0]["metadata"]["name"], 12345);
        assert!(v["items"][1]["spec"]["nodeName"].is_array());
        assert_eq!(v["items"][1]["metadata"]["name"], "b");

        let inspect = br#"{"Id":"x","Name":"/c","State":{},"Config":{"Labels":{}}}"#;
        let v: Value = serde_json::from_slice(&wrong_types(inspect)).unwrap();
        assert!(v["Config"]["Labels"].is_string());
        assert_eq!(v["Name"], 7);
        assert_eq!(v["Id"], "x");

        let v: Value = serde_json::from_slice(&duplicate(br#"[{"Id":"a"}]"#)).unwrap();
        assert_eq!(v.as_array().unwrap().len(), 2);
        assert_eq!(duplicate(b"not json"), b"not json");
        assert_eq!(vanished("/containers/abc/json").status, 404);
    }
}
