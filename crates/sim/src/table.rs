//! Server-side printing: the `meta.k8s.io/v1` `Table` a real API server returns when a
//! client (kubectl) asks for `as=Table` in `Accept`, so that `kubectl get` shows the usual
//! columns (READY, STATUS, RESTARTS, AGE, ...) for the simulated objects.
//!
//! Only pages that are asked for as tables are converted, from the stored JSON text, so
//! this costs nothing for ordinary list clients.

use serde_json::{json, Value};

use cluster_insight_kinds::Kind;
use cluster_insight_wire::time::parse_rfc3339_millis;

/// Whether an `Accept` header asks for a Table.
pub(crate) fn wants_table(accept: Option<&str>) -> bool {
    accept.is_some_and(|a| {
        a.split(',')
            .any(|part| part.contains("as=Table") && part.contains("g=meta.k8s.io"))
    })
}

/// Kubernetes' short human durations (apimachinery `duration.HumanDuration`).
pub(crate) fn human_age(millis: i64) -> String {
    let seconds = millis / 1000;
    if seconds < -1 {
        return "<invalid>".into();
    }
    if seconds < 0 {
        return "0s".into();
    }
    if seconds < 120 {
        return format!("{seconds}s");
    }
    let minutes = seconds / 60;
    if minutes < 10 {
        let s = seconds % 60;
        return if s == 0 {
            format!("{minutes}m")
        } else {
            format!("{minutes}m{s}s")
        };
    }
    if minutes < 180 {
        return format!("{minutes}m");
    }
    let hours = minutes / 60;
    if hours < 8 {
        let m = minutes % 60;
        return if m == 0 {
            format!("{hours}h")
        } else {
            format!("{hours}h{m}m")
        };
    }
    if hours < 48 {
        return format!("{hours}h");
    }
    if hours < 24 * 8 {
        let h = hours % 24;
        return if h == 0 {
            format!("{}d", hours / 24)
        } else {
            format!("{}d{h}h", hours / 24)
        };
    }
    if hours < 24 * 365 * 2 {
        return format!("{}d", hours / 24);
    }
    if hours < 24 * 365 * 8 {
        let d = (hours / 24) % 365;
        return if d == 0 {
            format!("{}y", hours / 24 / 365)
        } else {
            format!("{}y{d}d", hours / 24 / 365)
        };
    }
    format!("{}y", hours / 24 / 365)
}

fn column(name: &str, kind: &str, priority: u8, description: &str) -> Value {
    let format = if name == "Name" { "name" } else { "" };
    json!({"name": name, "type": kind, "format": format, "description": description, "priority": priority})
}

fn columns(kind: Option<Kind>) -> Vec<Value> {
    let name = column(
        "Name",
        "string",
        0,
        "Name must be unique within a namespace.",
    );
    let age = column("Age", "string", 0, "CreationTimestamp is a timestamp representing the server time when this object was created.");
    match kind {
        Some(Kind::POD) => vec![
            name,
            column(
                "Ready",
                "string",
                0,
                "The aggregate readiness state of this pod for accepting traffic.",
            ),
            column(
                "Status",
                "string",
                0,
                "The aggregate status of the containers in this pod.",
            ),
            column(
                "Restarts",
                "string",
                0,
                "The number of times the containers in this pod have been restarted.",
            ),
            age,
            column("IP", "string", 1, "IP address allocated to the pod."),
            column(
                "Node",
                "string",
                1,
                "Name of the node this pod is scheduled on.",
            ),
        ],
        Some(Kind::NODE) => vec![
            name,
            column("Status", "string", 0, "The status of the node"),
            column("Roles", "string", 0, "The roles of the node"),
            age,
            column(
                "Version",
                "string",
                0,
                "Kubelet Version reported by the node.",
            ),
            column(
                "Internal-IP",
                "string",
                1,
                "List of addresses reachable to the node.",
            ),
            column(
                "Container-Runtime",
                "string",
                1,
                "Container runtime version reported by the node.",
            ),
        ],
        Some(Kind::SERVICE) => vec![
            name,
            column("Type", "string", 0, "The type of the service."),
            column("Cluster-IP", "string", 0, "The cluster IP of the service."),
            column(
                "External-IP",
                "string",
                0,
                "The external IP of the service.",
            ),
            column("Port(s)", "string", 0, "The ports of the service."),
            age,
            column(
                "Selector",
                "string",
                1,
                "The label selector of the service.",
            ),
        ],
        Some(Kind::REPLICATION_CONTROLLER) => vec![
            name,
            column("Desired", "integer", 0, "Number of desired pods."),
            column("Current", "integer", 0, "Number of actually running pods."),
            column("Ready", "integer", 0, "Number of ready pods."),
            age,
            column(
                "Selector",
                "string",
                1,
                "The label selector of the controller.",
            ),
        ],
        Some(Kind::NAMESPACE) => vec![
            name,
            column("Status", "string", 0, "The status of the namespace"),
            age,
        ],
        // What the API server prints for a kind without a printer of its own.
        _ => vec![name, age],
    }
}

fn selector_text(selector: &Value) -> String {
    match selector.as_object().filter(|m| !m.is_empty()) {
        Some(map) => map
            .iter()
            .map(|(k, v)| format!("{k}={}", v.as_str().unwrap_or("")))
            .collect::<Vec<_>>()
            .join(","),
        None => "<none>".into(),
    }
}

fn str_of(value: &Value) -> String {
    value.as_str().unwrap_or("").to_string()
}

fn cells(kind: Option<Kind>, object: &Value, now: i64) -> Vec<Value> {
    let meta = &object["metadata"];
    let name = str_of(&meta["name"]);
    let age = meta["creationTimestamp"]
        .as_str()
        .and_then(parse_rfc3339_millis)
        .map_or("<unknown>".to_string(), |t| human_age(now - t));
    match kind {
        Some(Kind::POD) => {
            let statuses = object["status"]["containerStatuses"]
                .as_array()
                .cloned()
                .unwrap_or_default();
            let total = object["spec"]["containers"].as_array().map_or(0, Vec::len);
            let ready = statuses.iter().filter(|s| s["ready"] == true).count();
            let restarts: u64 = statuses
                .iter()
                .filter_map(|s| s["restartCount"].as_u64())
                .sum();
            let waiting = statuses
                .iter()
                .find_map(|s| s["state"]["waiting"]["reason"].as_str().map(str::to_string));
            let status = waiting.unwrap_or_else(|| str_of(&object["status"]["phase"]));
            let or_none = |v: &Value| v.as_str().map_or("<none>".to_string(), str::to_string);
            vec![
                json!(name),
                json!(format!("{ready}/{total}")),
                json!(status),
                json!(restarts.to_string()),
                json!(age),
                json!(or_none(&object["status"]["podIP"])),
                json!(or_none(&object["spec"]["nodeName"])),
            ]
        }
        Some(Kind::NODE) => {
            let ready = object["status"]["conditions"]
                .as_array()
                .and_then(|cs| cs.iter().find(|c| c["type"] == "Ready"))
                .map_or("Unknown", |c| {
                    if c["status"] == "True" {
                        "Ready"
                    } else {
                        "NotReady"
                    }
                });
            let roles: Vec<String> = meta["labels"]
                .as_object()
                .map(|l| {
                    l.keys()
                        .filter_map(|k| {
                            k.strip_prefix("node-role.kubernetes.io/")
                                .map(str::to_string)
                        })
                        .collect()
                })
                .unwrap_or_default();
            let internal = object["status"]["addresses"]
                .as_array()
                .and_then(|a| a.iter().find(|x| x["type"] == "InternalIP"))
                .map_or("<none>".to_string(), |x| str_of(&x["address"]));
            vec![
                json!(name),
                json!(ready),
                json!(if roles.is_empty() {
                    "<none>".to_string()
                } else {
                    roles.join(",")
                }),
                json!(age),
                json!(str_of(&object["status"]["nodeInfo"]["kubeletVersion"])),
                json!(internal),
                json!(str_of(
                    &object["status"]["nodeInfo"]["containerRuntimeVersion"]
                )),
            ]
        }
        Some(Kind::SERVICE) => {
            let ports = object["spec"]["ports"]
                .as_array()
                .map(|ps| {
                    ps.iter()
                        .map(|p| format!("{}/{}", p["port"], str_of(&p["protocol"])))
                        .collect::<Vec<_>>()
                        .join(",")
                })
                .unwrap_or_default();
            vec![
                json!(name),
                json!(str_of(&object["spec"]["type"])),
                json!(str_of(&object["spec"]["clusterIP"])),
                json!("<none>"),
                json!(ports),
                json!(age),
                json!(selector_text(&object["spec"]["selector"])),
            ]
        }
        Some(Kind::REPLICATION_CONTROLLER) => vec![
            json!(name),
            object["spec"]["replicas"].clone(),
            object["status"]["replicas"].clone(),
            object["status"]["readyReplicas"].clone(),
            json!(age),
            json!(selector_text(&object["spec"]["selector"])),
        ],
        Some(Kind::NAMESPACE) => vec![
            json!(name),
            json!(str_of(&object["status"]["phase"])),
            json!(age),
        ],
        _ => vec![json!(name), json!(age)],
    }
}

/// A Table of `items` (stored JSON texts); `list_metadata` is the list's metadata object.
/// Kinds without columns of their own (custom resources: `None`) show a name and an age.
pub(crate) fn table<'a>(
    kind: Option<Kind>,
    items: impl Iterator<Item = &'a str>,
    list_metadata: Value,
    now: i64,
) -> Value {
    let rows: Vec<Value> = items
        .filter_map(|text| serde_json::from_str::<Value>(text).ok())
        .map(|object| {
            json!({
                "cells": cells(kind, &object, now),
                "object": {"kind": "PartialObjectMetadata", "apiVersion": "meta.k8s.io/v1", "metadata": object["metadata"]},
            })
        })
        .collect();
    json!({
        "kind": "Table",
        "apiVersion": "meta.k8s.io/v1",
        "metadata": list_metadata,
        "columnDefinitions": columns(kind),
        "rows": rows,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ages_read_like_kubectl() {
        assert_eq!(human_age(59_000), "59s");
        assert_eq!(human_age(5 * 60_000 + 7_000), "5m7s");
        assert_eq!(human_age(2 * 3_600_000), "120m");
        assert_eq!(human_age(5 * 3_600_000 + 60_000 * 3), "5h3m");
        assert_eq!(human_age(30 * 3_600_000), "30h");
        assert_eq!(human_age(3 * 86_400_000 + 3_600_000), "3d1h");
        assert_eq!(human_age(40 * 86_400_000), "40d");
    }

    #[test]
    fn detects_table_requests() {
        assert!(wants_table(Some("application/json;as=Table;v=v1;g=meta.k8s.io,application/json;as=Table;v=v1beta1;g=meta.k8s.io,application/json")));
        assert!(!wants_table(Some("application/json")));
        assert!(!wants_table(None));
    }
}
