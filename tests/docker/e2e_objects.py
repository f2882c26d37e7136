"""Writes the Kubernetes objects of the Docker end-to-end test: a v1 List of one Node (its
InternalIP 127.0.0.1, so the master finds the minion on loopback), the pods whose
containerStatuses name the real containers started on the private Docker daemon, a pending
pod, a Service and a ReplicationController.

usage: e2e_objects.py SPEC OUT
SPEC is a JSON file: {"node": NAME, "pods": [{"namespace", "name", "uid", "labels",
"containers": [{"name", "id", "image", "image_id", "in_status" (default true: listed in
the pod's spec and containerStatuses)}]}], "pending": [{"namespace", "name", "uid"}],
"services": [{"namespace", "name", "selector"}], "rcs": [{"namespace", "name", "selector"}]}.
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


def node(name):
    return {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": meta(None, name, "node-" + name, {"kubernetes.io/hostname": name}),
        "spec": {},
        "status": {
            "addresses": [
                {"type": "InternalIP", "address": "127.0.0.1"},
                {"type": "Hostname", "address": name},
            ],
            "conditions": [{"type": "Ready", "status": "True"}],
            "nodeInfo": {"containerRuntimeVersion": "docker://20.10", "kubeletVersion": "v1.31.0"},
        },
    }


def pod(spec, node_name):
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
            "hostIP": "127.0.0.1",
            "containerStatuses": [
                {
                    "name": c["name"],
                    "ready": True,
                    "restartCount": 0,
                    "image": c["image"],
                    "imageID": "docker://" + c["image_id"],
                    "containerID": "docker://" + c["id"],
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


def main(spec_path, out_path):
    with open(spec_path) as f:
        spec = json.load(f)
    items = [node(spec["node"])]
    items += [pod(p, spec["node"]) for p in spec["pods"]]
    items += [pending_pod(p) for p in spec.get("pending", [])]
    items += [service(s) for s in spec.get("services", [])]
    items += [rc(r) for r in spec.get("rcs", [])]
    with open(out_path, "w") as f:
        json.dump({"kind": "List", "apiVersion": "v1", "items": items}, f, indent=1)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    main(sys.argv[1], sys.argv[2])
