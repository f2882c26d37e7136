"""Checks the master's /cluster graph against what the Docker daemon itself reports.

usage: e2e_check.py SPEC CLUSTER_JSON DOCKER_SOCKET

SPEC is the e2e_objects.py spec plus "standalone": [container ids in no pod], "minion":
the minion container's id, and "secret": an environment value that must not appear.
The truth (container inspect, image ids, `top` rows) is read from the daemon over its Unix
socket, not through our minion. Prints one `PASS: ...` or `FAIL: ...` line per check.
"""

import http.client
import json
import re
import socket
import sys

RFC3339_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")


class DockerSocket(http.client.HTTPConnection):
    def __init__(self, path):
        super().__init__("localhost", timeout=30)
        self.socket_path = path

    def connect(self):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(30)
        self.sock.connect(self.socket_path)


def docker_get(sock, path):
    conn = DockerSocket(sock)
    try:
        conn.request("GET", path)
        resp = conn.getresponse()
        body = resp.read()
        if resp.status != 200:
            raise RuntimeError(f"docker GET {path}: {resp.status} {body[:200]!r}")
        return json.loads(body)
    finally:
        conn.close()


class Checks:
    def __init__(self):
        self.failed = 0

    def check(self, ok, what, detail=""):
        if ok:
            print(f"PASS: {what}")
        else:
            self.failed += 1
            print(f"FAIL: {what}" + (f" -- {detail}" if detail else ""))
        return ok


def main(spec_path, cluster_path, sock):
    with open(spec_path) as f:
        spec = json.load(f)
    with open(cluster_path) as f:
        graph = json.load(f)
    c = Checks()

    c.check(graph.get("success") is True, "/cluster says success")
    c.check(RFC3339_UTC.match(str(graph.get("timestamp", ""))) is not None,
            "/cluster has an RFC 3339 UTC timestamp", repr(graph.get("timestamp")))
    resources = {r["id"]: r for r in graph.get("resources", [])}
    relations = graph.get("relations", [])
    rel = {(r["type"], r["source"], r["target"]) for r in relations}
    c.check(len(resources) == len(graph.get("resources", [])), "resource ids are unique")
    c.check(len(rel) == len(relations), "each relation appears once")
    dangling = [r for r in relations if r["source"] not in resources or r["target"] not in resources]
    c.check(not dangling, "both ends of every relation are resources", repr(dangling[:3]))

    node_id = "Node:" + spec["node"]
    c.check(node_id in resources, f"{node_id} is a resource")
    clusters = [i for i in resources if i.startswith("Cluster:")]
    c.check(any(("contains", cl, node_id) in rel for cl in clusters), f"a Cluster contains {node_id}")

    def runs_to_container(cid):
        return [s for (t, s, d) in rel if t == "runs" and d == "Container:" + cid]

    def pods_containing(cid):
        return [s for (t, s, d) in rel if t == "contains" and d == "Container:" + cid and s.startswith("Pod:")]

    def check_container(cid, short):
        """The container, its image and its processes, as Docker reports them."""
        rid = "Container:" + cid
        try:
            truth = docker_get(sock, f"/containers/{cid}/json")
            top = docker_get(sock, f"/containers/{cid}/top?ps_args=aux")
        except (OSError, RuntimeError, ValueError) as e:
            c.check(False, f"container {cid[:12]} is still there to compare with", str(e))
            return
        res = resources.get(rid)
        if not c.check(res is not None, f"{rid[:22]}... ({truth['Name']}) is a resource"):
            return
        c.check(res.get("type") == "Container", f"{truth['Name']} has type Container")
        c.check(res.get("properties", {}).get("Id") == cid, f"{truth['Name']}: properties are its docker inspect")
        # The pod's name for the container, else its Docker name.
        short = short or truth["Name"].lstrip("/")
        label = res.get("annotations", {}).get("label")
        c.check(label == f"{short}/{cid[:12]}", f"{truth['Name']} is labelled {short}/{cid[:12]}", repr(label))

        image = truth["Image"]
        iid = "Image:" + image
        c.check(iid in resources, f"{truth['Name']}: its image {image[:19]}... is a resource")
        if iid in resources:
            props = resources[iid].get("properties", {})
            c.check(props.get("Id") == image, f"{truth['Name']}: the image resource is its image inspect")
        c.check(("createdFrom", rid, iid) in rel, f"{truth['Name']} createdFrom {iid[:25]}...")

        titles = top["Titles"]
        pid_col, cmd_col = titles.index("PID"), titles.index("COMMAND")
        want = {f"Process:{cid[:12]}/{row[pid_col]}": row for row in top["Processes"]}
        got = {i for i in resources if i.startswith(f"Process:{cid[:12]}/")}
        c.check(want and got == set(want), f"{truth['Name']}: its Process resources are the {len(want)} rows of docker top",
                f"want {sorted(want)}, got {sorted(got)}")
        for pid_id, row in want.items():
            props = resources.get(pid_id, {}).get("properties", {})
            c.check(props.get("PID") == row[pid_col] and props.get("COMMAND") == row[cmd_col],
                    f"{pid_id} is PID {row[pid_col]} running {row[cmd_col]!r}", repr(props))
            c.check(resources.get(pid_id, {}).get("annotations", {}).get("label") == row[pid_col],
                    f"{pid_id} is labelled with its PID")
            c.check(("contains", rid, pid_id) in rel, f"{truth['Name']} contains {pid_id}")

    for p in spec["pods"]:
        pod_id = f"Pod:{p['namespace']}/{p['name']}"
        c.check(pod_id in resources, f"{pod_id} is a resource")
        c.check(("runs", node_id, pod_id) in rel, f"{node_id} runs {pod_id}")
        for ctr in p["containers"]:
            check_container(ctr["id"], ctr["name"])
            c.check(("contains", pod_id, "Container:" + ctr["id"]) in rel,
                    f"{pod_id} contains its container {ctr['name']} ({ctr['id'][:12]})")
            c.check(pods_containing(ctr["id"]) == [pod_id], f"container {ctr['name']} belongs to {pod_id} only",
                    repr(pods_containing(ctr["id"])))
            c.check(not runs_to_container(ctr["id"]), f"no Node runs container {ctr['name']} directly (its pod does)")

    for p in spec.get("pending", []):
        pod_id = f"Pod:{p['namespace']}/{p['name']}"
        c.check(pod_id in resources, f"the unscheduled {pod_id} is a resource")
        c.check(not [s for (t, s, d) in rel if t == "runs" and d == pod_id], f"no Node runs the unscheduled {pod_id}")

    for cid in spec["standalone"] + [spec["minion"]]:
        check_container(cid, None)
        c.check(runs_to_container(cid) == [node_id], f"{node_id} runs container {cid[:12]}, which is in no pod",
                repr(runs_to_container(cid)))
        c.check(not pods_containing(cid), f"no Pod contains container {cid[:12]}")

    for s in spec.get("services", []):
        sid = f"Service:{s['namespace']}/{s['name']}"
        for p in spec["pods"]:
            pod_id = f"Pod:{p['namespace']}/{p['name']}"
            selected = p["namespace"] == s["namespace"] and all(
                p.get("labels", {}).get(k) == v for k, v in s["selector"].items())
            c.check((("loadBalances", sid, pod_id) in rel) == selected,
                    f"{sid} {'loadBalances' if selected else 'does not loadBalance'} {pod_id}")
    for r in spec.get("rcs", []):
        rid = f"ReplicationController:{r['namespace']}/{r['name']}"
        for p in spec["pods"]:
            pod_id = f"Pod:{p['namespace']}/{p['name']}"
            selected = p["namespace"] == r["namespace"] and all(
                p.get("labels", {}).get(k) == v for k, v in r["selector"].items())
            c.check((("monitors", rid, pod_id) in rel) == selected,
                    f"{rid} {'monitors' if selected else 'does not monitor'} {pod_id}")

    secret = spec["secret"]
    text = json.dumps(graph)
    c.check(secret not in text, "a container's environment value never appears in /cluster")
    holder = resources.get("Container:" + spec["pods"][0]["containers"][0]["id"], {})
    env = holder.get("properties", {}).get("Config", {}).get("Env") or []
    c.check("E2E_SECRET=<redacted>" in env, "its variable is shown as E2E_SECRET=<redacted>", repr(env))

    return 1 if c.failed else 0


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit(__doc__)
    sys.exit(main(*sys.argv[1:]))
