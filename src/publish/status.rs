//! How a resource is doing, read from its own properties: the status the exports (`/debug`,
//! GraphML) show. A pod's phase, readiness and waiting containers; a node's readiness; a
//! container's state as Docker or CRI says it; a workload's ready replicas; a job's
//! outcome; a volume's or claim's phase.

use serde::Deserialize;

use crate::graph::Resource;

/// How a resource is doing, as its own status says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Status {
    Running,
    Pending,
    Restarting,
    Failed,
    Succeeded,
}

impl Status {
    /// The name the exports use.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Status::Running => "running",
            Status::Pending => "pending",
            Status::Restarting => "restarting",
            Status::Failed => "failed",
            Status::Succeeded => "succeeded",
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

pub(crate) fn status_of(r: &Resource) -> Option<Status> {
    status_of_properties(r.kind.name(), &r.properties)
}

/// The status of a resource of type `kind` whose properties are the JSON `properties` (as
/// the API answers them).
pub(crate) fn status_of_properties(kind: &str, properties: &str) -> Option<Status> {
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
    let object: Object = serde_json::from_str(properties).ok()?;
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::graph::{Id, Kind};
    use std::sync::Arc;

    fn resource(kind: &str, properties: &str) -> Resource {
        Resource {
            id: Id::new(format!("{kind}:x")),
            kind: Kind::all().find(|k| k.name() == kind).unwrap(),
            timestamp_ms: 0,
            properties: Arc::from(properties),
            label: "x".into(),
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
            let r = resource(kind, properties);
            assert_eq!(status_of(&r), expected, "{kind} {properties}");
        }
    }
}
