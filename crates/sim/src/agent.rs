//! The simulated node agent's `GET /node`: the node's runtime, its running containers (and,
//! on containerd nodes, its pod sandboxes), their images and their processes in one
//! document, as the product's agent writes it. A Docker node's containers are Docker
//! inspects; a containerd node's are CRI statuses with their verbose info, as `crictl
//! inspect` shows them. Environment values are redacted, as the agent redacts them before
//! anything leaves a node.

use serde_json::value::RawValue;
use serde_json::{json, Map, Value};

use super::docker::{docker_time, image_inspect, image_name, inspect, labels, ps_aux};
use super::model::{Cluster, Container, Image, Node, Runtime, PAUSE_IMAGE};
use cluster_insight_wire::time::rfc3339_millis;

/// Host processes outside any container that the agent counts but does not list.
const HOST_PROCESSES: usize = 143;

/// The `/node` document of `node`.
pub(crate) fn document(cluster: &Cluster, node: &Node) -> Value {
    let mut image_indexes: Vec<usize> = node.containers.iter().map(|c| c.image).collect();
    image_indexes.sort_unstable();
    image_indexes.dedup();
    let containers: Vec<Value> = node
        .containers
        .iter()
        .map(|c| container(cluster, node, c))
        .collect();
    let images: Vec<Value> = image_indexes
        .iter()
        .map(|&i| image(node, &cluster.images[i], i))
        .collect();
    let in_containers: usize = node.containers.iter().map(|c| c.processes).sum();
    json!({
        "runtime": runtime(node),
        "containers": containers,
        "images": images,
        "processes": {
            "source": "proc",
            "scanned": in_containers + HOST_PROCESSES,
            "outsideContainers": HOST_PROCESSES,
        },
    })
}

fn runtime(node: &Node) -> Value {
    match node.runtime {
        Runtime::Docker => json!({
            "name": "docker", "version": "24.0.7", "api": "Docker Engine API 1.43",
            "endpoint": "unix:/var/run/docker.sock",
        }),
        Runtime::Containerd => json!({
            "name": "containerd", "version": "1.7.24", "api": "CRI runtime.v1 v1",
            "endpoint": "unix:///run/containerd/containerd.sock",
        }),
    }
}

/// `NAME=VALUE` entries with their values replaced, as the agent sends them.
fn redacted(env: &[String]) -> Vec<String> {
    env.iter()
        .map(|e| match e.split_once('=') {
            Some((name, _)) => format!("{name}=<redacted>"),
            None => e.clone(),
        })
        .collect()
}

fn nanos(millis: i64) -> i64 {
    millis.saturating_mul(1_000_000)
}

fn container(cluster: &Cluster, node: &Node, c: &Container) -> Value {
    let image = &cluster.images[c.image];
    let processes: Vec<Box<RawValue>> = ps_aux(c)
        .into_iter()
        .filter_map(|row| {
            // Column order as `ps aux` prints it, which a JSON object keeps only as text.
            let fields: Vec<String> = row
                .iter()
                .map(|(title, value)| format!("{}:{}", json!(title), json!(value)))
                .collect();
            RawValue::from_string(format!("{{{}}}", fields.join(","))).ok()
        })
        .collect();
    let (name, sandbox, status, labels) = match node.runtime {
        Runtime::Docker => {
            let mut status = inspect(cluster, c);
            if let Some(env) = status.pointer_mut("/Config/Env") {
                *env = json!(redacted(&c.env));
            }
            // The agent counts exec IDs rather than listing them.
            let exec_ids = status["ExecIDs"].as_array().map_or(0, Vec::len);
            status["ExecIDs"] = json!(exec_ids);
            (c.name.clone(), false, status, labels(c))
        }
        Runtime::Containerd => {
            let (status, labels) = cri_status(cluster, c, image);
            let name = match &c.pod {
                Some(pod) if c.sandbox => pod.pod_name.clone(),
                Some(pod) => pod.container_name.clone(),
                None => c.name.clone(),
            };
            (name, c.sandbox, status, labels)
        }
    };
    let mut entry = json!({
        "id": c.id,
        "name": name,
        "imageId": image.id,
        "running": true,
        "startedAt": docker_time(c.started),
        "finishedAt": "0001-01-01T00:00:00Z",
        "labels": labels,
        "status": status,
        "processes": processes,
        "processesOmitted": 0,
    });
    if sandbox {
        entry["sandbox"] = json!(true);
    }
    entry
}

/// A CRI `ContainerStatus` (or `PodSandboxStatus`) with its verbose info, and its labels.
fn cri_status(cluster: &Cluster, c: &Container, image: &Image) -> (Value, Value) {
    let Some(pod) = &c.pod else {
        return (json!({}), json!({}));
    };
    let mut labels = Map::new();
    labels.insert("io.kubernetes.pod.name".into(), json!(pod.pod_name));
    labels.insert("io.kubernetes.pod.namespace".into(), json!(pod.namespace));
    labels.insert("io.kubernetes.pod.uid".into(), json!(pod.uid));
    let cgroup_parent = format!("kubepods-besteffort-pod{}.slice", pod.uid.replace('-', "_"));
    if c.sandbox {
        let status = json!({
            "id": c.id,
            "metadata": {"name": pod.pod_name, "uid": pod.uid, "namespace": pod.namespace, "attempt": c.attempt},
            "state": "SANDBOX_READY",
            "createdAt": nanos(c.created),
            "network": {"ip": format!("10.244.{}.{}", c.pid_base % 250, 2 + c.pid_base % 200), "additionalIps": []},
            "linux": {"namespaces": {"options": {"network": "POD", "pid": "CONTAINER", "ipc": "POD", "targetId": "", "usernsOptions": null}}},
            "labels": labels,
            "annotations": {"kubernetes.io/config.source": "api", "kubernetes.io/config.seen": rfc3339_millis(c.created)},
            "runtimeHandler": "",
        });
        let info = json!({
            "pid": c.pid_base,
            "processStatus": "running",
            "netNamespaceClosed": false,
            "image": image_name(&cluster.images[PAUSE_IMAGE]),
            "snapshotKey": c.id,
            "snapshotter": "overlayfs",
            "runtimeHandler": "",
            "runtimeType": "io.containerd.runc.v2",
            "config": {
                "metadata": {"name": pod.pod_name, "uid": pod.uid, "namespace": pod.namespace},
                "log_directory": format!("/var/log/pods/{}_{}_{}", pod.namespace, pod.pod_name, pod.uid),
                "linux": {"cgroup_parent": cgroup_parent},
                "labels": labels,
            },
        });
        return (
            json!({"status": status, "info": info}),
            Value::Object(labels),
        );
    }
    labels.insert(
        "io.kubernetes.container.name".into(),
        json!(pod.container_name),
    );
    let log_path = format!(
        "/var/log/pods/{}_{}_{}/{}/{}.log",
        pod.namespace, pod.pod_name, pod.uid, pod.container_name, c.attempt
    );
    let status = json!({
        "id": c.id,
        "metadata": {"name": pod.container_name, "attempt": c.attempt},
        "state": "CONTAINER_RUNNING",
        "createdAt": nanos(c.created),
        "startedAt": nanos(c.started),
        "finishedAt": 0,
        "exitCode": 0,
        "image": {"image": image_name(image)},
        "imageRef": image.id,
        "reason": "",
        "message": "",
        "labels": labels,
        "annotations": {
            "io.kubernetes.container.hash": format!("{:08x}", c.pid_base.wrapping_mul(2_654_435_761)),
            "io.kubernetes.container.restartCount": c.attempt.to_string(),
            "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
            "io.kubernetes.container.terminationMessagePolicy": "File",
            "io.kubernetes.pod.terminationGracePeriod": "30",
        },
        "mounts": [{"containerPath": "/var/run/secrets/kubernetes.io/serviceaccount",
                    "hostPath": format!("/var/lib/kubelet/pods/{}/volumes/kubernetes.io~projected/kube-api-access", pod.uid),
                    "readonly": true, "propagation": "PROPAGATION_PRIVATE"}],
        "logPath": log_path,
        "imageId": image.id,
    });
    let envs: Vec<Value> = c
        .env
        .iter()
        .filter_map(|e| e.split_once('='))
        .map(|(name, _)| json!({"key": name, "value": "<redacted>"}))
        .collect();
    let info = json!({
        "sandboxID": pod.sandbox_id,
        "pid": c.pid_base,
        "removing": false,
        "snapshotKey": c.id,
        "snapshotter": "overlayfs",
        "runtimeType": "io.containerd.runc.v2",
        "runtimeOptions": {"systemd_cgroup": true},
        "config": {
            "metadata": {"name": pod.container_name},
            "image": {"image": image.id},
            "command": c.cmd,
            "envs": envs,
            "labels": labels,
            "log_path": format!("{}/{}.log", pod.container_name, c.attempt),
        },
        "runtimeSpec": {
            "ociVersion": "1.1.0",
            "process": {
                "user": {"uid": 0, "gid": 0},
                "args": c.cmd,
                "env": redacted(&c.env),
                "cwd": "/",
                "capabilities": {"bounding": ["CAP_CHOWN", "CAP_NET_BIND_SERVICE"]},
                "oomScoreAdj": 1000,
            },
            "root": {"path": "rootfs"},
            "hostname": pod.pod_name,
            "linux": {
                "cgroupsPath": format!("{cgroup_parent}:cri-containerd:{}", c.id),
                "namespaces": [{"type": "pid"}, {"type": "ipc", "path": format!("/proc/{}/ns/ipc", c.pid_base)},
                               {"type": "uts"}, {"type": "mount"}, {"type": "network", "path": format!("/proc/{}/ns/net", c.pid_base)}],
            },
        },
    });
    (
        json!({"status": status, "info": info}),
        Value::Object(labels),
    )
}

fn image(node: &Node, image: &Image, index: usize) -> Value {
    let name = image_name(image);
    let status = match node.runtime {
        Runtime::Docker => image_inspect(image, index),
        Runtime::Containerd => json!({
            "id": image.id,
            "repoTags": if image.tag.is_empty() { json!([]) } else { json!([image.tag]) },
            "repoDigests": [format!("{}@{}", image.repo, image.digest)],
            "size": image.size,
            "uid": null,
            "username": "",
            "spec": null,
            "pinned": index == PAUSE_IMAGE,
        }),
    };
    json!({"id": image.id, "name": name, "status": status})
}
