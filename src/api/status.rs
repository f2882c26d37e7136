//! `/status`: the collector's account of its last refresh and of every source.

use std::collections::BTreeMap;

use crate::collect::status::{Collection, CollectorStatus, SourceStatus};
use crate::publish::changes::ChangeLog;
use crate::publish::snapshot::Snapshot;
use cluster_insight_wire::time::rfc3339_millis;

/// The `/status` document.
pub(crate) fn document(
    status: &CollectorStatus,
    snapshot: Option<&Snapshot>,
    history: &ChangeLog,
    store: Option<crate::store::StoreStatus>,
    now: i64,
) -> String {
    let source = |s: &SourceStatus| {
        let mut entry = serde_json::json!({
            "status": if s.skipped { "SKIPPED" } else if s.ok { "OK" } else { "ERROR" },
            "endpoint": s.endpoint,
            "error": s.error,
            "objects": s.objects,
            "failedCalls": s.failed_calls,
            "lastAttempt": rfc3339_millis(s.last_attempt_ms),
            "lastOk": s.last_ok_ms.map(rfc3339_millis),
        });
        if let Some(runtime) = &s.runtime {
            entry["runtime"] = runtime.as_str().into();
        }
        if let Some(note) = &s.note {
            entry["note"] = note.as_str().into();
        }
        if let Some(watch) = &s.watch {
            entry["watch"] = serde_json::json!({
                "resourceVersion": watch.resource_version,
                "events": watch.events,
                "restarts": watch.restarts,
            });
        }
        match &s.collection {
            Collection::None => {}
            Collection::Complete => entry["collection"] = "complete".into(),
            Collection::Failed => entry["collection"] = "failed".into(),
            Collection::Cut(cut) => {
                entry["collection"] = "cut".into();
                let mut detail = serde_json::json!({
                    "summary": cut.to_string(),
                    "containersNotInspected": cut.uninspected,
                    "inspectsCarriedOver": cut.carried_inspects,
                    "processesCarriedOver": cut.carried_processes,
                    "processesNotRead": cut.unread_processes,
                    "imagesNotRead": cut.unread_images,
                });
                if let Some(oldest) = cut.oldest_reading_ms {
                    detail["staleSince"] = rfc3339_millis(oldest).into();
                    detail["staleSeconds"] = (((now - oldest).max(0) as f64) / 1000.0).into();
                }
                entry["cut"] = detail;
            }
        }
        entry
    };
    // A kind passed over on purpose leaves the rest of the graph whole.
    let kube_ok =
        !status.kubernetes.is_empty() && status.kubernetes.values().all(|s| s.ok || s.skipped);
    let nodes_failed = status.nodes.values().filter(|s| !s.ok).count();
    let nodes_cut = status
        .nodes
        .values()
        .filter(|s| matches!(s.collection, Collection::Cut(_)))
        .count();
    // The keys of the calls are the contract's and predate other runtimes than Docker.
    serde_json::json!({
        "success": true,
        "timestamp": rfc3339_millis(now),
        "snapshot": snapshot.map(|s| serde_json::json!({
            "sequence": s.sequence,
            "timestamp": rfc3339_millis(s.timestamp_ms),
            "ageSeconds": ((now - s.timestamp_ms).max(0) as f64) / 1000.0,
        })),
        // How far back `at=` and the change feed reach.
        "history": {
            "keepSeconds": history.keep_ms() / 1000,
            "changes": history.len(),
            "oldestSequence": history.oldest().map(|o| o.sequence),
            "oldest": history.oldest().map(|o| rfc3339_millis(o.published_ms)),
            "store": store.map(|s| serde_json::json!({
                "path": s.path,
                "error": s.error,
                "committedSequence": s.committed,
            })),
        },
        "refresh": {
            "count": status.refreshes,
            "kubernetesUpdates": status.kube_updates,
            "builds": {
                "whole": status.builds.whole,
                "inPlace": status.builds.in_place,
                "spliced": status.builds.spliced,
            },
            "lastKubernetesUpdate": status.last_kube_update_ms.map(rfc3339_millis),
            "intervalSeconds": status.refresh_interval.as_secs_f64(),
            "lastStart": status.last_refresh_start_ms.map(rfc3339_millis),
            "lastDurationMs": status.last_refresh_duration.as_millis() as u64,
            "phasesMs": {
                "kubernetes": status.phases.kubernetes_ms,
                "docker": status.phases.runtime_ms,
                "graph": status.phases.build_ms,
                "render": status.phases.render_ms,
            },
            "calls": {
                "kubernetesPages": status.calls.kube_pages,
                "kubernetesEvents": status.calls.kube_events,
                "agentNode": status.calls.agent_node,
                "dockerList": status.calls.runtime_list,
                "dockerInspect": status.calls.runtime_inspect,
                "dockerTop": status.calls.runtime_processes,
                "dockerImage": status.calls.runtime_image,
            },
            "nodeReading": {
                "threads": status.node_reading.threads,
                "meanNodeMs": status.node_reading.mean_job.as_secs_f64() * 1000.0,
                "nextThreads": status.node_reading.next_threads,
            },
        },
        // From the snapshot itself: the collector swaps the snapshot before it updates the
        // status, so the status's copy may belong to the previous snapshot.
        "counts": {
            "resources": snapshot.map_or(&status.counts, |s| &s.counts).resources,
            "relations": snapshot.map_or(&status.counts, |s| &s.counts).relations,
        },
        "sources": {
            "kubernetes": {
                "status": if kube_ok { "OK" } else { "ERROR" },
                "lists": status.kubernetes.iter().map(|(k, v)| (k.clone(), source(v))).collect::<BTreeMap<_, _>>(),
            },
            "nodes": status.nodes.iter().map(|(k, v)| (k.clone(), source(v))).collect::<BTreeMap<_, _>>(),
            "nodesFailed": nodes_failed,
            "nodesCut": nodes_cut,
        },
    })
    .to_string()
}
