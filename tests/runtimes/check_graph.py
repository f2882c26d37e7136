"""Checks the master's /cluster graph of a cluster whose nodes run real runtimes (containerd
over CRI, Docker) against the truth: the node specs that tests/runtimes/cri_pods.py and the
suite wrote, and the host's /proc (every runtime's containers run on this host).

usage: check_graph.py CLUSTER_JSON SECRET SPEC [SPEC...]

Each SPEC is one node's, as cri_pods.py writes it ("runtime" docker or containerd; pods with
"sandbox_id" for CRI; "standalone": container ids in no pod, for Docker). SECRET is an
environment value of one container, which must appear nowhere. Prints one `PASS: ...` or
`FAIL: ...` line per check.
"""

import json
import os
import re
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "docker"))
from e2e_check import Checks  # noqa: E402 (after the path it is found on)

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
PS_COLUMNS = ["USER", "PID", "PPID", "%CPU", "%MEM", "VSZ", "RSS", "TTY", "STAT", "START", "TIME", "COMMAND"]


def pids_by_container():
    """Every process of the host whose cgroup path names a 64-hex ID, by that ID."""
    out = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/cgroup") as f:
                text = f.read()
        except OSError:
            continue
        ids = set(re.findall(r"(?<![0-9a-f])([0-9a-f]{64})(?![0-9a-f])", text))
        for cid in ids:
            out.setdefault(cid, set()).add(entry)
    return out


def main(cluster_path, secret, spec_paths):
    with open(cluster_path) as f:
        text = f.read()
    graph = json.loads(text)
    specs = []
    for path in spec_paths:
        with open(path) as f:
            specs.append(json.load(f))
    c = Checks()
    truth = pids_by_container()

    resources = {r["id"]: r for r in graph.get("resources", [])}
    relations = graph.get("relations", [])
    rel = {(r["type"], r["source"], r["target"]) for r in relations}
    c.check(graph.get("success") is True, "/cluster says success")
    c.check(len(rel) == len(relations), "each relation appears once")
    dangling = [r for r in relations if r["source"] not in resources or r["target"] not in resources]
    c.check(not dangling, "both ends of every relation are resources", repr(dangling[:3]))
    c.check(secret not in text, "the secret environment value appears nowhere in /cluster")

    def sources(kind, target, prefix):
        return sorted(s for (t, s, d) in rel if t == kind and d == target and s.startswith(prefix))

    def check_processes(what, cid, expect_child=False, expect_command=None):
        rid = "Container:" + cid
        want = {f"Process:{cid[:12]}/{pid}" for pid in truth.get(cid, set())}
        got = {d for (t, s, d) in rel if t == "contains" and s == rid and d.startswith("Process:")}
        c.check(want and got == want, f"{what}: its processes are those /proc puts in its cgroup ({len(want)})",
                f"want {sorted(want)}, got {sorted(got)}")
        rows = [resources[p]["properties"] for p in got if p in resources]
        c.check(all(list(row) == PS_COLUMNS for row in rows), f"{what}: each process row has the ps aux columns",
                repr(rows[:1]))
        for p in got:
            label = resources.get(p, {}).get("annotations", {}).get("label")
            c.check(label == p.rsplit("/", 1)[1], f"{p} is labelled with its PID", repr(label))
        if expect_child:
            pids = {row.get("PID") for row in rows}
            children = [row for row in rows if row.get("PPID") in pids]
            c.check(children, f"{what}: a child process is shown with its parent in the same container",
                    repr(rows))
        if expect_command:
            c.check(any(expect_command in row.get("COMMAND", "") for row in rows),
                    f"{what}: runs {expect_command}", repr([row.get("COMMAND") for row in rows]))

    for spec in specs:
        runtime = spec.get("runtime", "docker")
        node_id = "Node:" + spec["node"]
        c.check(node_id in resources, f"{node_id} ({runtime}) is a resource")
        for p in spec["pods"]:
            pod_id = f"Pod:{p['namespace']}/{p['name']}"
            c.check(("runs", node_id, pod_id) in rel, f"{node_id} runs {pod_id}")
            for ctr in p["containers"]:
                cid = ctr["id"]
                rid = "Container:" + cid
                what = f"{spec['node']}: {p['name']}/{ctr['name']}"
                res = resources.get(rid)
                if not c.check(res is not None, f"{what} ({cid[:12]}) is a resource"):
                    continue
                label = res.get("annotations", {}).get("label")
                c.check(label == f"{ctr['name']}/{cid[:12]}", f"{what} is labelled {ctr['name']}/{cid[:12]}",
                        repr(label))
                c.check(sources("contains", rid, "Pod:") == [pod_id], f"{what} belongs to {pod_id} only",
                        repr(sources("contains", rid, "Pod:")))
                props = res.get("properties", {})
                if runtime == "docker":
                    c.check(props.get("Id") == cid, f"{what}: properties are its Docker inspect")
                else:
                    c.check(props.get("status", {}).get("id") == cid and "info" in props,
                            f"{what}: properties are its CRI status and verbose info")
                    c.check(props.get("status", {}).get("state") == "CONTAINER_RUNNING",
                            f"{what}: its state reads CONTAINER_RUNNING", repr(props.get("status", {}).get("state")))
                iid = "Image:" + ctr["image_id"]
                c.check(("createdFrom", rid, iid) in rel, f"{what} createdFrom {iid[:25]}...")
                image = resources.get(iid, {})
                c.check(image.get("annotations", {}).get("alternateLabel") == ctr["image"],
                        f"{what}: its image is named {ctr['image']}",
                        repr(image.get("annotations", {}).get("alternateLabel")))
                check_processes(what, cid, expect_child=ctr["name"] == "main")
            sandbox = p.get("sandbox_id")
            if sandbox:
                sid = "Container:" + sandbox
                what = f"{spec['node']}: sandbox of {p['name']}"
                res = resources.get(sid)
                if c.check(res is not None, f"{what} ({sandbox[:12]}) is a resource"):
                    label = res.get("annotations", {}).get("label")
                    c.check(label == f"POD/{sandbox[:12]}", f"{what} is labelled POD/{sandbox[:12]}", repr(label))
                    c.check(sources("contains", sid, "Pod:") == [pod_id], f"{what} belongs to {pod_id}")
                    c.check(res.get("properties", {}).get("status", {}).get("state") == "SANDBOX_READY",
                            f"{what}: its state reads SANDBOX_READY")
                    images = [d for (t, s_, d) in rel if t == "createdFrom" and s_ == sid]
                    names = [resources.get(i, {}).get("annotations", {}).get("alternateLabel", "") for i in images]
                    c.check(len(images) == 1 and "pause" in names[0],
                            f"{what} createdFrom the pause image", repr(names))
                    check_processes(what, sandbox, expect_command="/pause")
        for cid in spec.get("standalone", []):
            rid = "Container:" + cid
            what = f"{spec['node']}: standalone container {cid[:12]}"
            c.check(rid in resources, f"{what} is a resource")
            c.check(("runs", node_id, rid) in rel, f"{node_id} runs {what}")
            c.check(not sources("contains", rid, "Pod:"), f"no Pod contains {what}")
            check_processes(what, cid)
    return 1 if c.failed else 0


if __name__ == "__main__":
    if len(sys.argv) < 4:
        sys.exit(__doc__)
    sys.exit(main(sys.argv[1], sys.argv[2], sys.argv[3:]))
