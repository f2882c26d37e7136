//! The `/node` document: a node's whole runtime state in one JSON answer, written by the
//! node's agent and read by the master. One definition serves both sides, so the two can
//! not drift apart; docs/contract.md describes it for people.
//!
//! Each container's `status` and each image's `status` is the runtime's own account, as the
//! runtime gave it (Docker's inspect, CRI's `ContainerStatus` with its verbose info, CRI's
//! `Image`), already redacted by the agent; beside it sit the few fields every runtime has,
//! in one vocabulary, so that the master never needs to know which runtime a node runs.
//! Process rows are objects of `ps aux` titles to values.

use std::collections::BTreeMap;
use std::sync::Arc;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use crate::collect::runtime::cri;
use crate::collect::runtime::docker::{self, process_from_row};
use crate::collect::ParseError;
use crate::graph::fingerprint;
use crate::graph::observed::{Container, Image, NodeContainers, ObservedContainer, Process};
use cluster_insight_wire::time::{parse_rfc3339_millis, rfc3339_millis};

/// The path the agent serves it at.
pub(crate) const PATH: &str = "/node";

/// Keys of a container's status that change while the container does not (Docker's exec
/// list and health log; CRI has none).
pub(crate) const STATUS_VOLATILE: &[&str] = docker::INSPECT_VOLATILE;

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct NodeDocument {
    pub(crate) runtime: RuntimeInfo,
    /// Running containers and ready pod sandboxes.
    pub(crate) containers: Vec<ContainerEntry>,
    /// The images those containers run.
    pub(crate) images: Vec<ImageEntry>,
    pub(crate) processes: ProcessesInfo,
}

/// Which runtime answered, and where.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct RuntimeInfo {
    /// `docker`, `containerd`, `cri-o`, or what the runtime calls itself.
    pub(crate) name: String,
    pub(crate) version: String,
    /// The API it was read through: `Docker Engine API 1.41`, `CRI runtime.v1 0.1.0`.
    pub(crate) api: String,
    /// Its socket, as `unix:///run/containerd/containerd.sock`.
    pub(crate) endpoint: String,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ContainerEntry {
    pub(crate) id: String,
    pub(crate) name: String,
    /// A CRI pod sandbox rather than one of the pod's containers.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub(crate) sandbox: bool,
    /// The ID of its image (`sha256:…`); empty when the runtime did not say.
    #[serde(default)]
    pub(crate) image_id: String,
    pub(crate) running: bool,
    /// RFC 3339; empty when unknown.
    #[serde(default)]
    pub(crate) started_at: String,
    #[serde(default)]
    pub(crate) finished_at: String,
    #[serde(default)]
    pub(crate) labels: BTreeMap<String, String>,
    pub(crate) status: Box<RawValue>,
    #[serde(default)]
    pub(crate) processes: Vec<Box<RawValue>>,
    /// Processes left out of `processes` because there were too many.
    #[serde(default)]
    pub(crate) processes_omitted: usize,
    /// RFC 3339: when the status was read, if in an earlier reading than this document's
    /// (the agent ran out of time for it and shows what it had).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) stale_since: Option<String>,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ImageEntry {
    pub(crate) id: String,
    #[serde(default)]
    pub(crate) name: String,
    pub(crate) status: Box<RawValue>,
}

/// Where the process rows came from, and what was not shown.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct ProcessesInfo {
    /// `proc` (the host's `/proc`), `docker top`, or `none`.
    pub(crate) source: String,
    /// Processes read from `/proc`, in containers or not.
    #[serde(default)]
    pub(crate) scanned: usize,
    /// Of those, the ones in no container of the runtime's (the host's own).
    #[serde(default)]
    pub(crate) outside_containers: usize,
    /// Why processes could not be read, when they could not.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(crate) error: Option<String>,
}

/// A container's status with the environment values it still holds redacted (Docker's
/// `Config.Env`, CRI's), or `None` when it holds none (the agent redacted them).
fn redacted_status(status: &str) -> Option<String> {
    let original: serde_json::Value = serde_json::from_str(status).ok()?;
    let mut value = original.clone();
    docker::redact_env(&mut value);
    cri::redact_cri_env(&mut value);
    (value != original).then(|| value.to_string())
}

fn raw(text: &str) -> Box<RawValue> {
    // Every text here was serialized or checked as JSON by whoever made it.
    RawValue::from_string(text.to_string())
        .unwrap_or_else(|_| RawValue::from_string("null".to_string()).expect("null is JSON"))
}

impl NodeDocument {
    /// The document of what the agent read of its node.
    pub(crate) fn new(
        runtime: RuntimeInfo,
        node: &NodeContainers,
        processes: ProcessesInfo,
    ) -> NodeDocument {
        let containers = node
            .containers
            .iter()
            .map(|observed| {
                let c = &observed.container;
                ContainerEntry {
                    id: c.id.clone(),
                    name: c.name.clone(),
                    sandbox: c.sandbox,
                    image_id: c.image_id.clone(),
                    running: c.running,
                    started_at: c.started_at.clone(),
                    finished_at: c.finished_at.clone(),
                    labels: c.labels.clone(),
                    status: raw(&c.raw),
                    processes: observed.processes.iter().map(|p| raw(&p.raw)).collect(),
                    processes_omitted: observed.processes_omitted,
                    stale_since: observed.stale_since_ms.map(rfc3339_millis),
                }
            })
            .collect();
        let images = node
            .images
            .iter()
            .map(|image| ImageEntry {
                id: image.id.clone(),
                name: image.name.clone(),
                status: raw(&image.raw),
            })
            .collect();
        NodeDocument {
            runtime,
            containers,
            images,
            processes,
        }
    }

    /// Reads a document as the master does: an entry that cannot be read costs that
    /// container or image (logged), not the node.
    pub(crate) fn parse(text: &str) -> Result<NodeDocument, ParseError> {
        #[derive(Deserialize)]
        struct Entries<'a> {
            runtime: RuntimeInfo,
            #[serde(borrow)]
            containers: Vec<&'a RawValue>,
            #[serde(borrow, default)]
            images: Vec<&'a RawValue>,
            #[serde(default)]
            processes: ProcessesInfo,
        }
        let entries: Entries =
            serde_json::from_str(text).map_err(|e| ParseError::new("node document", e))?;
        fn each<'a, T: Deserialize<'a>>(raws: &[&'a RawValue], skipped: &mut usize) -> Vec<T> {
            let parsed: Vec<T> = raws
                .iter()
                .filter_map(|raw| serde_json::from_str(raw.get()).ok())
                .collect();
            *skipped += raws.len() - parsed.len();
            parsed
        }
        let mut skipped = 0usize;
        let containers = each(&entries.containers, &mut skipped);
        let images = each(&entries.images, &mut skipped);
        if skipped > 0 {
            log::warn!(
                "node document of {}: skipped {skipped} malformed entries",
                entries.runtime.endpoint
            );
        }
        Ok(NodeDocument {
            runtime: entries.runtime,
            containers,
            images,
            processes: entries.processes,
        })
    }

    /// The graph's model of this document, for the node `node_name`. A node is not trusted
    /// to keep within bounds: at most `max_processes` rows of each container are kept (the
    /// rest counted as omitted), and entries without an ID are dropped. Nor to have
    /// redacted: unless `show_env`, environment values an agent let through (it was started
    /// with `--show-env`, or is older) are redacted here.
    pub(crate) fn into_containers(
        self,
        node_name: &str,
        max_processes: usize,
        show_env: bool,
    ) -> Result<NodeContainers, ParseError> {
        let mut containers = Vec::with_capacity(self.containers.len());
        for entry in self.containers {
            if entry.id.is_empty() {
                continue;
            }
            let redacted = if show_env {
                None
            } else {
                redacted_status(entry.status.get())
            };
            let status = redacted.as_deref().unwrap_or(entry.status.get());
            let fingerprint = fingerprint::ignoring(status, STATUS_VOLATILE)
                .map_err(|e| ParseError::new(format!("status of container {}", entry.id), e))?;
            let container = Container {
                id: entry.id,
                name: entry.name,
                image_id: entry.image_id,
                labels: entry.labels,
                started_at: entry.started_at,
                finished_at: entry.finished_at,
                running: entry.running,
                sandbox: entry.sandbox,
                raw: Arc::from(status),
                fingerprint,
            };
            let kept = entry.processes.len().min(max_processes);
            let processes: Vec<Process> = entry
                .processes
                .iter()
                .take(kept)
                .filter_map(|row| process_from_row(row.get()))
                .collect();
            // What the node cut, what we cut, and rows that were not process rows.
            let omitted = entry
                .processes_omitted
                .saturating_add(entry.processes.len() - processes.len());
            containers.push(ObservedContainer {
                container: Arc::new(container),
                processes,
                processes_omitted: omitted,
                stale_since_ms: entry.stale_since.as_deref().and_then(parse_rfc3339_millis),
            });
        }
        let mut images = Vec::with_capacity(self.images.len());
        for entry in self.images {
            if entry.id.is_empty() {
                continue;
            }
            let status = entry.status.get();
            let fingerprint = fingerprint::plain(status)
                .map_err(|e| ParseError::new(format!("status of image {}", entry.id), e))?;
            images.push(Arc::new(Image {
                id: entry.id,
                name: entry.name,
                raw: Arc::from(status),
                fingerprint,
            }));
        }
        Ok(NodeContainers {
            node_name: node_name.to_string(),
            containers,
            images,
            from_pod_status: false,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn document(processes: usize) -> String {
        let rows: Vec<String> = (0..processes)
            .map(|pid| {
                format!(
                    r#"{{"USER":"root","PID":"{}","%CPU":"0.0","COMMAND":"sleep"}}"#,
                    pid + 1
                )
            })
            .collect();
        format!(
            r#"{{"runtime":{{"name":"containerd","version":"1.7.24","api":"CRI runtime.v1 v1","endpoint":"unix:///run/containerd/containerd.sock"}},
               "containers":[{{"id":"{id}","name":"app","imageId":"sha256:{img}","running":true,
                               "labels":{{"io.kubernetes.pod.uid":"u1"}},
                               "status":{{"status":{{"id":"{id}","state":"CONTAINER_RUNNING"}},"info":{{}}}},
                               "processes":[{rows}],"processesOmitted":3}},
                             {{"id":"","name":"no id","running":true,"status":{{}}}}],
               "images":[{{"id":"sha256:{img}","name":"busybox:1","status":{{"id":"sha256:{img}"}}}}],
               "processes":{{"source":"proc","scanned":10,"outsideContainers":2}}}}"#,
            id = "c".repeat(64),
            img = "1".repeat(64),
            rows = rows.join(",")
        )
    }

    #[test]
    fn a_document_becomes_the_graphs_model_within_bounds() {
        let doc = NodeDocument::parse(&document(5)).unwrap();
        assert_eq!(doc.runtime.name, "containerd");
        let node = doc.into_containers("node-1", 3, false).unwrap();
        assert_eq!(node.node_name, "node-1");
        assert_eq!(
            node.containers.len(),
            1,
            "the entry without an ID is dropped"
        );
        let c = &node.containers[0];
        assert_eq!(c.processes.len(), 3, "at most the cap");
        assert_eq!(c.processes_omitted, 3 + 2, "the node's own cut and ours");
        assert_eq!(c.processes[0].pid, "1");
        assert!(c.container.raw.contains("CONTAINER_RUNNING"));
        assert_eq!(c.container.labels["io.kubernetes.pod.uid"], "u1");
        assert_eq!(node.images[0].name, "busybox:1");
        assert!(!node.from_pod_status);
    }

    #[test]
    fn the_master_redacts_what_an_agent_let_through_unless_it_shows_env() {
        let id = "d".repeat(64);
        let text = format!(
            r#"{{"runtime":{{"name":"docker","version":"24","api":"","endpoint":""}},
               "containers":[{{"id":"{id}","name":"a","running":true,
                 "status":{{"Id":"{id}","Config":{{"Env":["TOKEN=s3cret"]}}}}}},
                {{"id":"{id}1","name":"b","running":true,
                 "status":{{"status":{{"id":"x"}},"info":{{"runtimeSpec":{{"process":{{"env":["TOKEN=s3cret"]}}}}}}}}}}],
               "images":[],"processes":{{"source":"proc"}}}}"#
        );
        let hidden = NodeDocument::parse(&text)
            .unwrap()
            .into_containers("n", 10, false)
            .unwrap();
        for c in &hidden.containers {
            assert!(!c.container.raw.contains("s3cret"), "{}", c.container.raw);
            assert!(c.container.raw.contains("TOKEN=<redacted>"));
        }
        let shown = NodeDocument::parse(&text)
            .unwrap()
            .into_containers("n", 10, true)
            .unwrap();
        assert!(shown
            .containers
            .iter()
            .all(|c| c.container.raw.contains("s3cret")));
    }

    #[test]
    fn damaged_documents_are_errors_not_panics() {
        let whole = document(2);
        // Every cut of a good document, and some wrong shapes.
        for end in (0..whole.len()).step_by(7) {
            if let Some(prefix) = whole.get(..end) {
                let _ = NodeDocument::parse(prefix).map(|d| d.into_containers("n", 10, false));
            }
        }
        // A malformed entry costs itself only.
        let one_bad = whole.replacen(r#""running":true"#, r#""running":"yes""#, 1);
        let doc = NodeDocument::parse(&one_bad).unwrap();
        assert_eq!(doc.containers.len(), 1, "the other entry stays");
        assert_eq!(doc.images.len(), 1);
        for bad in [
            "",
            "null",
            "[]",
            r#"{"runtime":1}"#,
            r#"{"runtime":{},"containers":[{"id":5}],"images":[],"processes":{}}"#,
            r#"{"runtime":{"name":"x","version":"","api":"","endpoint":""},"containers":[],"images":[],"processes":{"source":"proc"},"extra":true}"#,
        ] {
            let _ = NodeDocument::parse(bad).map(|d| d.into_containers("n", 10, false));
        }
        assert!(NodeDocument::parse("{").is_err());
    }
}
