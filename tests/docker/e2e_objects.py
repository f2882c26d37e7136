"""Writes the Kubernetes objects of the end-to-end tests: a v1 List of one Node per SPEC (its
InternalIP 127.0.0.1 unless given, so the master finds the minion on loopback), the pods whose
containerStatuses name the real containers started on a private Docker daemon or CRI runtime,
pending pods, Services and ReplicationControllers.

usage: e2e_objects.py SPEC [SPEC...] OUT
Each SPEC is a JSON file, one node: {"node": NAME, "node_ip" (default "127.0.0.1"),
"runtime" (default "docker"; "containerd" for pods made over CRI), "runtime_version" (the
Node's containerRuntimeVersion, default "docker://20.10"), "pods": [{"namespace", "name",
"uid", "labels", "containers": [{"name", "id", "image", "image_id", "in_status" (default true:
listed in the pod's spec and containerStatuses)}]}], "pending": [{"namespace", "name", "uid"}],
"services": [{"namespace", "name", "selector"}], "rcs": [{"namespace", "name", "selector"}]}.
A container's containerID is RUNTIME://ID; its imageID is docker://IMAGE_ID for docker and
IMAGE_ID as the runtime reports it otherwise, as the kubelet writes them. Other keys (such as
the "sandbox_id" and "env_names" that tests/runtimes/cri_pods.py writes) are ignored.
"""

import json
import sys

CREATED = "2026-11-25T00:00:00Z"


def meta(namespace, name, uid, labels=None):
    m = {"name": name, "uid": uid, "resourceVersion": "1", "creationTimestamp": CREATED}
    if namespace is not None:
        m["namespace"] = namespace
    if labels:
        m["labels"] = labels
    return m


def node(name, ip="127.0.0.1", runtime_version="docker://20.10"):
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta(None, name, "node-" + name, {"kubernetes.io/hostname": name}),
        "spec": {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": ip},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"containerRuntimeVersion": runtime_version, "kubeletVersion": "v1.31.0"},
        },
    }


def image_id(runtime, image_id):
    return "docker://" + image_id if runtime == "docker" else image_id


def pod(spec, node_name, node_ip="127.0.0.1", runtime="docker"):
    containers = [c for c in spec["containers"] if c.get("in_status", True)]
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta(spec["namespace"], spec["name"], spec["uid"], spec.get("labels")),
        "spec": {
            "nodeName": node_name,
            "containers": [{"name": c["name"], "image": c["image"]} for c in containers],
        },
        "status": {
            "phase": "Running",
            "hostIP": node_ip,
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": True,
                    "restartCount": 0,
                    "image": c["image"],
                    "imageID": image_id(runtime, c["image_id"]),
                    "containerID": runtime + "://" + c["id"],
                    "state": {"running": {"startedAt": CREATED}},
                }
                for c in containers
            ],
        },
    }


def pending_pod(spec):
    return {
        "kind": "Pod",
        "apiVersion": "v1",
        "metadata": meta(spec["namespace"], spec["name"], spec["uid"]),
        "spec": {"containers": [{"name": "main", "image": "example/unscheduled:1"}]},
        "status": {"phase": "Pending"},
    }


def service(spec):
    return {
        "kind": "Service",
        "apiVersion": "v1",
        "metadata": meta(spec["namespace"], spec["name"], "svc-" + spec["name"]),
        "spec": {"selector": spec["selector"], "ports": [{"port": 80, "protocol": "TCP"}]},
    }


def rc(spec):
    return {
        "kind": "ReplicationController",
        "apiVersion": "v1",
        "metadata": meta(spec["namespace"], spec["name"], "rc-" + spec["name"]),
        "spec": {"replicas": 1, "selector": spec["selector"]},
        "status": {"replicas": 1},
    }


def main(spec_paths, out_path):
    specs = []
    for path in spec_paths:
        with open(path) as f:
            specs.append(json.load(f))
    items = []
    for spec in specs:
        ip = spec.get("node_ip", "127.0.0.1")
        runtime = spec.get("runtime", "docker")
        items.append(node(spec["node"], ip, spec.get("runtime_version", "docker://20.10")))
        items += [pod(p, spec["node"], ip, runtime) for p in spec["pods"]]
    for spec in specs:
        items += [pending_pod(p) for p in spec.get("pending", [])]
    for spec in specs:
        items += [service(s) for s in spec.get("services", [])]
    for spec in specs:
        items += [rc(r) for r in spec.get("rcs", [])]
    with open(out_path, "w") as f:
        json.dump({"kind": "List", "apiVersion": "v1", "items": items}, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    main(sys.argv[1:-1], sys.argv[-1])
