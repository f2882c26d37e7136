#!/usr/bin/env bash
# Checks controller.json offline, without a cluster:
#  1. each item against the Kubernetes schemas shipped by the kubernetes-validate package
#     (strict: unknown fields are errors), for the newest Kubernetes version it knows;
#  2. each item against the official OpenAPI v2 document vendored in the repository, gzipped
#     (tests/data/realdata/kubernetes-client+python/kubernetes/swagger.json.unprocessed.gz,
#     see tests/data/realdata/NOTICE.md), with a small strict validator below, so a second,
#     independent schema agrees;
#  3. the policy the manifests promise: list and watch only, on exactly the kinds read; token
#     and access reviews for delegated authorization, and the non-resource URLs of the graph
#     and of the minions read with get, nothing else; a projected token for minions; no
#     privileged or escalating container, read-only root filesystems, dropped capabilities,
#     requests and limits everywhere, the host's /run mounted read-only for the runtime's
#     socket and the host's PID namespace for the minion only,
#     minions on every node (hostPort 4243, tolerating every taint), one master on 5555.
# Missing tools are installed when running as root; otherwise the suite fails under
# CI=true and skips loudly elsewhere.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
manifest=$root/controller.json
swagger=$root/tests/data/realdata/kubernetes-client+python/kubernetes/swagger.json.unprocessed.gz

say() { printf '%s\n' "$*"; }

# Ends the suite when a tool it cannot do without is missing.
missing() {
    if [[ ${CI:-} == true ]]; then
        say "FAIL: $1 (required under CI=true)"
        say "0 passed, 1 failed"
        exit 1
    fi
    say "SKIPPED: $1 -- the manifest checks did not run"
    say "0 passed, 0 failed, 1 skipped"
    exit 0
}

if ! command -v python3 >/dev/null 2>&1; then
    if [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        say "# installing python3"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3 python3-pip >/dev/null
    fi
    command -v python3 >/dev/null 2>&1 || missing "python3 is not installed and could not be installed"
fi

kv=1
if ! python3 -c 'import kubernetes_validate' >/dev/null 2>&1; then
    say "# installing kubernetes-validate"
    if ! python3 -m pip --version >/dev/null 2>&1 && [[ $(id -u) == 0 ]] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-pip >/dev/null
    fi
    # Debian's own python3 refuses pip installs without --break-system-packages.
    python3 -m pip install -q kubernetes-validate >/dev/null 2>&1 ||
        python3 -m pip install -q --break-system-packages kubernetes-validate >/dev/null 2>&1 ||
        true
    python3 -c 'import kubernetes_validate' >/dev/null 2>&1 || kv=0
fi
if ((kv == 0)); then
    [[ ${CI:-} != true ]] || missing "the kubernetes-validate package could not be installed"
    say "SKIPPED: kubernetes-validate could not be installed; its schema checks are left out"
fi
if [[ ! -f $swagger ]]; then
    missing "the Kubernetes OpenAPI document is not at $swagger"
fi

version=$(sed -n 's/^version = "\(.*\)"$/\1/p' "$(dirname "$manifest")/Cargo.toml" | head -n 1)
results=$(python3 - "$manifest" "$swagger" "$kv" "$version" <<'PY'
import gzip
import json
import re
import sys

manifest_path, swagger_path, use_kv = sys.argv[1], sys.argv[2], sys.argv[3] == "1"
VERSION = sys.argv[4]
checks = []


def check(desc, ok, detail=""):
    checks.append(ok)
    print(("PASS: " if ok else "FAIL: ") + desc + ("" if ok or not detail else " -- " + detail))


try:
    doc = json.load(open(manifest_path))
except (OSError, ValueError) as e:
    check("controller.json is readable JSON", False, str(e))
    sys.exit(0)
check("controller.json is JSON", True)
check("it is one v1 List", doc.get("apiVersion") == "v1" and doc.get("kind") == "List"
      and isinstance(doc.get("items"), list))
items = doc.get("items") or []


def label(item):
    return "%s/%s" % (item.get("kind"), item.get("metadata", {}).get("name"))


# ---- 1. kubernetes-validate ---------------------------------------------------------
if use_kv:
    import kubernetes_validate
    from kubernetes_validate import utils as kvu
    version = kvu.latest_version()
    for item in items:
        try:
            kubernetes_validate.validate(item, version, strict=True)
            check("kubernetes-validate %s (strict): %s" % (version, label(item)), True)
        except Exception as e:  # its errors have no common base worth naming
            check("kubernetes-validate %s (strict): %s" % (version, label(item)), False,
                  str(e).splitlines()[0])

# ---- 2. the official OpenAPI v2 document ----------------------------------------------
spec = json.load(gzip.open(swagger_path, "rt"))
defs = spec["definitions"]
by_gvk = {}
for name, d in defs.items():
    for gvk in d.get("x-kubernetes-group-version-kind", []):
        by_gvk[(gvk["group"], gvk["version"], gvk["kind"])] = name

QUANTITY = re.compile(r"^[+-]?(\d+(\.\d*)?|\.\d+)([KMGTPE]i|[mkMGTPE]|[eE][+-]?\d+)?$")


def validate(value, schema, path, errors):
    if "$ref" in schema:
        ref = schema["$ref"].split("/")[-1]
        schema = defs[ref]
        if ref == "io.k8s.apimachinery.pkg.api.resource.Quantity":
            if not (isinstance(value, (int, float)) and not isinstance(value, bool)) and not (
                    isinstance(value, str) and QUANTITY.match(value)):
                errors.append("%s: not a quantity: %r" % (path, value))
            return
    kind = schema.get("type")
    fmt = schema.get("format")
    if fmt == "int-or-string":
        if not (isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool))):
            errors.append("%s: not an int or a string: %r" % (path, value))
        return
    if kind == "object" or "properties" in schema:
        if not isinstance(value, dict):
            errors.append("%s: not an object" % path)
            return
        props = schema.get("properties", {})
        for req in schema.get("required", []):
            if req not in value:
                errors.append("%s: missing required field %s" % (path, req))
        for key, sub in value.items():
            if key in props:
                validate(sub, props[key], path + "." + key, errors)
            elif "additionalProperties" in schema:
                validate(sub, schema["additionalProperties"], path + "." + key, errors)
            else:
                errors.append("%s: unknown field %s" % (path, key))
    elif kind == "array":
        if not isinstance(value, list):
            errors.append("%s: not an array" % path)
            return
        for i, sub in enumerate(value):
            validate(sub, schema.get("items", {}), "%s[%d]" % (path, i), errors)
        keys = schema.get("x-kubernetes-list-map-keys")
        if schema.get("x-kubernetes-list-type") == "map" and keys:
            seen = [tuple(json.dumps(e.get(k)) for k in keys) for e in value if isinstance(e, dict)]
            if len(seen) != len(set(seen)):
                errors.append("%s: duplicate entries for keys %s" % (path, keys))
        if schema.get("x-kubernetes-list-type") == "set":
            flat = [json.dumps(e, sort_keys=True) for e in value]
            if len(flat) != len(set(flat)):
                errors.append("%s: duplicate entries in a set" % path)
    elif kind == "string":
        if not isinstance(value, str):
            errors.append("%s: not a string: %r" % (path, value))
        elif "enum" in schema and value not in schema["enum"]:
            errors.append("%s: %r not one of %s" % (path, value, schema["enum"]))
    elif kind == "integer":
        if not isinstance(value, int) or isinstance(value, bool):
            errors.append("%s: not an integer: %r" % (path, value))
    elif kind == "number":
        if not isinstance(value, (int, float)) or isinstance(value, bool):
            errors.append("%s: not a number: %r" % (path, value))
    elif kind == "boolean":
        if not isinstance(value, bool):
            errors.append("%s: not a boolean: %r" % (path, value))


for item in items:
    api = item.get("apiVersion", "")
    group, _, version = api.rpartition("/")
    name = by_gvk.get((group, version, item.get("kind")))
    if name is None:
        check("OpenAPI: %s has a schema (%s)" % (label(item), api), False, "no such kind")
        continue
    errors = []
    validate(item, defs[name], label(item), errors)
    check("OpenAPI %s: %s" % (name, label(item)), not errors, "; ".join(errors[:5]))

# ---- 3. policy -------------------------------------------------------------------------
NS = "cluster-insight"
by_kind = {}
for item in items:
    by_kind.setdefault(item.get("kind"), []).append(item)
COUNTS = {"Namespace": 1, "ServiceAccount": 2, "ClusterRole": 4, "ClusterRoleBinding": 3,
          "DaemonSet": 1, "Deployment": 1, "Service": 1}
check("the objects: a Namespace, two ServiceAccounts, four ClusterRoles, three bindings, "
      "a DaemonSet, a Deployment, a Service",
      {k: len(v) for k, v in by_kind.items()} == COUNTS, str({k: len(v) for k, v in by_kind.items()}))


def one(kind, name=None):
    found = [i for i in by_kind.get(kind, []) if name is None or i.get("metadata", {}).get("name") == name]
    return (found or [{}])[0]


ns = one("Namespace")
sa, minion_sa = one("ServiceAccount", "cluster-insight-master"), one("ServiceAccount", "cluster-insight-minion")
role, binding = one("ClusterRole", "cluster-insight-reader"), one("ClusterRoleBinding", "cluster-insight-reader")
delegator = one("ClusterRole", "cluster-insight-auth-delegator")
delegator_binding = one("ClusterRoleBinding", "cluster-insight-auth-delegator")
graph_reader = one("ClusterRole", "cluster-insight-graph-reader")
node_reader = one("ClusterRole", "cluster-insight-node-reader")
node_reader_binding = one("ClusterRoleBinding", "cluster-insight-node-reader")
ds, deploy, svc = one("DaemonSet"), one("Deployment"), one("Service")
check("the Namespace is cluster-insight", ns.get("metadata", {}).get("name") == NS)
check("every namespaced object lives in cluster-insight",
      all(i.get("metadata", {}).get("namespace") == NS for i in (sa, minion_sa, ds, deploy, svc)))
check("the Namespace comes first, so that one apply creates it before its contents",
      bool(items) and items[0].get("kind") == "Namespace")

# The master lists and (soon) watches; it gets no single object, so it may not.
READ = {"list", "watch"}
all_rules = [r for i in items if i.get("kind") in ("Role", "ClusterRole") for r in i.get("rules", [])]
resource_rules = [r for r in all_rules if r.get("resources")]
url_rules = [r for r in all_rules if r.get("nonResourceURLs")]
check("every rule names resources or non-resource URLs, not both",
      all(bool(r.get("resources")) != bool(r.get("nonResourceURLs")) for r in all_rules), json.dumps(all_rules))
check("no role names secrets, a wildcard, a subresource or a resource name",
      all("secrets" not in r.get("resources", []) and "*" not in r.get("resources", [])
          and "*" not in r.get("apiGroups", []) and "*" not in r.get("verbs", [])
          and not any("/" in x for x in r.get("resources", []))
          and not r.get("resourceNames") for r in all_rules),
      json.dumps(all_rules))
check("the only write anywhere: creating TokenReviews and SubjectAccessReviews (they change nothing)",
      delegator.get("rules") == [
          {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]},
          {"apiGroups": ["authorization.k8s.io"], "resources": ["subjectaccessreviews"], "verbs": ["create"]}]
      and all(set(r.get("verbs", [])) <= READ for r in resource_rules if r not in delegator.get("rules", [])),
      json.dumps(resource_rules))
check("non-resource URLs are only ever read (get)",
      bool(url_rules) and all(r.get("verbs") == ["get"] for r in url_rules), json.dumps(url_rules))
check("who may read the graph: /, /api, /cluster and below, /debug, /status, /metrics, /version under "
      "/cluster-insight (nothing of the API server's own); nobody bound",
      graph_reader.get("rules") == [{"nonResourceURLs": ["/cluster-insight" + p for p in (
          "/", "/api", "/cluster", "/cluster/*", "/debug", "/status", "/metrics", "/version")], "verbs": ["get"]}]
      and not any(b.get("roleRef", {}).get("name") == "cluster-insight-graph-reader"
                  for b in by_kind.get("ClusterRoleBinding", [])))
check("what the master may read of minions: /node and the Docker paths they proxy, under "
      "/cluster-insight-minion",
      node_reader.get("rules") == [{"nonResourceURLs": ["/cluster-insight-minion" + p for p in (
          "/node", "/containers/*", "/images/*", "/version", "/_ping", "/v1*")], "verbs": ["get"]}])
check("every non-resource URL granted is under /cluster-insight or /cluster-insight-minion",
      all(u.startswith(("/cluster-insight/", "/cluster-insight-minion/"))
          for r in url_rules for u in r.get("nonResourceURLs", [])))


def bound_to(b, *accounts):
    return b.get("subjects") == [{"kind": "ServiceAccount", "name": a, "namespace": NS} for a in accounts]


check("both service accounts may review tokens; only the master's may read minions",
      bound_to(delegator_binding, "cluster-insight-master", "cluster-insight-minion")
      and delegator_binding.get("roleRef", {}).get("name") == "cluster-insight-auth-delegator"
      and bound_to(node_reader_binding, "cluster-insight-master")
      and node_reader_binding.get("roleRef", {}).get("name") == "cluster-insight-node-reader")
# Exactly what the master lists (its table of kinds; the integration tests tie the two).
LISTED = {
    "": ["namespaces", "nodes", "persistentvolumeclaims", "persistentvolumes", "pods",
         "replicationcontrollers", "services"],
    "apps": ["daemonsets", "deployments", "replicasets", "statefulsets"],
    "batch": ["cronjobs", "jobs"],
    "networking.k8s.io": ["ingresses"],
    "autoscaling": ["horizontalpodautoscalers"],
    "discovery.k8s.io": ["endpointslices"],
}
rules = role.get("rules", [])
granted = {}
for r in rules:
    for g in r.get("apiGroups", []):
        for res in r.get("resources", []):
            granted.setdefault(g, set()).add(res)
check("the ClusterRole grants list and watch on exactly the kinds the master lists",
      {g: sorted(v) for g, v in granted.items()} == LISTED
      and all(sorted(r.get("verbs", [])) == ["list", "watch"] for r in rules),
      json.dumps(rules))
check("the ClusterRoleBinding binds that ClusterRole to the master's ServiceAccount",
      binding.get("roleRef") == {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                                 "name": role.get("metadata", {}).get("name")}
      and binding.get("subjects") == [{"kind": "ServiceAccount", "name": sa.get("metadata", {}).get("name"),
                                       "namespace": NS}])


def pod(workload):
    return workload.get("spec", {}).get("template", {}).get("spec", {})


def containers(workload):
    p = pod(workload)
    return p.get("containers", []) + p.get("initContainers", [])


def env(c):
    return {e.get("name"): e.get("value") for e in c.get("env", [])}


for w in (ds, deploy):
    wl = label(w)
    p = pod(w)
    sel = w.get("spec", {}).get("selector", {}).get("matchLabels", {})
    tlabels = w.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
    check("%s: its selector matches its pod template" % wl,
          bool(sel) and all(tlabels.get(k) == v for k, v in sel.items()))
    check("%s: no host network or IPC namespace" % wl, not p.get("hostNetwork") and not p.get("hostIPC"))
    for c in containers(w):
        cl = "%s container %s" % (wl, c.get("name"))
        sc = c.get("securityContext", {})
        check("%s: not privileged" % cl, sc.get("privileged") is not True)
        check("%s: allowPrivilegeEscalation false" % cl, sc.get("allowPrivilegeEscalation") is False)
        check("%s: readOnlyRootFilesystem true" % cl, sc.get("readOnlyRootFilesystem") is True)
        caps = sc.get("capabilities", {})
        check("%s: drops ALL capabilities and adds none" % cl,
              "ALL" in caps.get("drop", []) and not caps.get("add"))
        seccomp = sc.get("seccompProfile") or p.get("securityContext", {}).get("seccompProfile") or {}
        check("%s: RuntimeDefault seccomp profile" % cl, seccomp.get("type") == "RuntimeDefault")
        res = c.get("resources", {})
        check("%s: cpu and memory requests and limits set" % cl,
              all(k in res.get(part, {}) for part in ("requests", "limits") for k in ("cpu", "memory")),
              json.dumps(res))
        check("%s: runs the cluster-insight:VERSION image's /cluster-insight, pulled only if missing" % cl,
              c.get("image") == "cluster-insight:" + VERSION and c.get("command") == ["/cluster-insight"]
              and c.get("imagePullPolicy") == "IfNotPresent")

# The minions.
mp = pod(ds)
mc = (mp.get("containers") or [{}])[0]
check("DaemonSet: CLUSTER_INSIGHT_MODE=minion", env(mc).get("CLUSTER_INSIGHT_MODE") == "minion")
check("DaemonSet: containerPort and hostPort 4243",
      any(p.get("containerPort") == 4243 and p.get("hostPort") == 4243 and p.get("protocol", "TCP") == "TCP"
          for p in mc.get("ports", [])))
check("DaemonSet: tolerates every taint, so it runs on every node",
      any(t.get("operator") == "Exists" and not t.get("key") and not t.get("effect")
          for t in mp.get("tolerations", [])))
rp = mc.get("readinessProbe", {}).get("httpGet", {})
check("DaemonSet: readiness probe GET /healthz on 4243 (ready once a runtime answers)",
      rp.get("path") == "/healthz" and rp.get("port") == 4243)
check("DaemonSet: the host's PID namespace (to read containers' processes from /proc)", mp.get("hostPID") is True)
host_paths = [v for v in mp.get("volumes", []) if "hostPath" in v]
check("DaemonSet: its only hostPath volume is the host's /run, checked to be a directory",
      len(host_paths) == 1 and host_paths[0]["hostPath"] == {"path": "/run", "type": "Directory"})
mounts = [m for m in mc.get("volumeMounts", []) if host_paths and m.get("name") == host_paths[0].get("name")]
check("DaemonSet: /run is mounted read-only at /host/run",
      len(mounts) == 1 and mounts[0].get("readOnly") is True and mounts[0].get("mountPath") == "/host/run")
args = mc.get("args", [])
sockets = args[args.index("--runtime-socket") + 1].split(",") if "--runtime-socket" in args[:-1] else []
check("DaemonSet: --runtime-socket names containerd's, k3s's, CRI-O's and Docker's sockets under /host/run, in that order",
      sockets == ["/host/run/containerd/containerd.sock", "/host/run/k3s/containerd/containerd.sock",
                  "/host/run/crio/crio.sock", "/host/run/docker.sock"],
      json.dumps(args))
check("DaemonSet: the annotation says why hostPID and /run",
      all(w in json.dumps(ds.get("metadata", {}).get("annotations", {})) for w in ("hostPID", "/run", "environ")))
check("DaemonSet: the minions' own ServiceAccount, bound to reviewing tokens and nothing else",
      mp.get("serviceAccountName") == "cluster-insight-minion"
      and [b.get("metadata", {}).get("name") for b in by_kind.get("ClusterRoleBinding", [])
           if {"kind": "ServiceAccount", "name": "cluster-insight-minion", "namespace": NS} in b.get("subjects", [])]
      == ["cluster-insight-auth-delegator"])
runs_as_root = (mc.get("securityContext", {}).get("runAsUser", mp.get("securityContext", {}).get("runAsUser")) == 0)
check("DaemonSet: if the minion runs as root, an annotation says why",
      not runs_as_root or "runs as UID 0" in json.dumps(ds.get("metadata", {}).get("annotations", {})))

# The master.
dp = pod(deploy)
dc = (dp.get("containers") or [{}])[0]
check("Deployment: 1 replica", deploy.get("spec", {}).get("replicas") == 1)
check("Deployment: CLUSTER_INSIGHT_MODE=master", env(dc).get("CLUSTER_INSIGHT_MODE") == "master")
check("Deployment: containerPort 5555, no hostPort",
      any(p.get("containerPort") == 5555 for p in dc.get("ports", []))
      and not any("hostPort" in p for p in dc.get("ports", [])))
for probe, path in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
    g = dc.get(probe, {}).get("httpGet", {})
    check("Deployment: %s GET %s on 5555" % (probe, path),
          g.get("path") == path and g.get("port") in (5555, "http"))
check("Deployment: runs as the ServiceAccount bound to the read-only role",
      dp.get("serviceAccountName") == sa.get("metadata", {}).get("name"))
non_root = dc.get("securityContext", {}).get("runAsNonRoot", dp.get("securityContext", {}).get("runAsNonRoot"))
uid = dc.get("securityContext", {}).get("runAsUser", dp.get("securityContext", {}).get("runAsUser"))
check("Deployment: runAsNonRoot with a numeric non-zero UID (the image has no /etc/passwd)",
      non_root is True and isinstance(uid, int) and uid > 0)
check("Deployment: no hostPath volume", not any("hostPath" in v for v in dp.get("volumes", [])))
projected = [s.get("serviceAccountToken", {}) for v in dp.get("volumes", [])
             for s in v.get("projected", {}).get("sources", [])]
token_mounts = [m for m in dc.get("volumeMounts", [])
                if m.get("mountPath") == "/var/run/secrets/cluster-insight" and m.get("readOnly") is True]
check("Deployment: a projected token for minions (audience cluster-insight-minion, an hour) at "
      "/var/run/secrets/cluster-insight/minion-token, where the master looks for it",
      projected == [{"audience": "cluster-insight-minion", "expirationSeconds": 3600, "path": "minion-token"}]
      and len(token_mounts) == 1, json.dumps(dp.get("volumes")))
check("Deployment: not in the host's PID namespace", not dp.get("hostPID"))
for w in (ds, deploy):
    check("%s: a grace period of at least 10 s, for the answers in flight (drained within 5 s)" % label(w),
          pod(w).get("terminationGracePeriodSeconds", 30) >= 10)

# The Service.
sspec = svc.get("spec", {})
dlabels = deploy.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {})
check("Service: selects the master's pods, not the minions'",
      bool(sspec.get("selector")) and all(dlabels.get(k) == v for k, v in sspec["selector"].items())
      and not all(ds.get("spec", {}).get("template", {}).get("metadata", {}).get("labels", {}).get(k) == v
                  for k, v in sspec["selector"].items()))
ports = sspec.get("ports", [])
named = {p.get("name"): p.get("containerPort") for p in dc.get("ports", [])}
check("Service: port 5555 to the master's port 5555",
      len(ports) == 1 and ports[0].get("port") == 5555
      and (ports[0].get("targetPort") == 5555 or named.get(ports[0].get("targetPort")) == 5555))
check("Service: not exposed outside the cluster (ClusterIP)", sspec.get("type", "ClusterIP") == "ClusterIP")
PY
)
py_rc=$?
say "$results"

passed=$(grep -c '^PASS: ' <<<"$results")
failed=$(grep -c '^FAIL: ' <<<"$results")
if ((py_rc != 0)); then
    say "FAIL: the checking program itself failed (exit status $py_rc)"
    failed=$((failed + 1))
fi
if ((passed == 0)); then
    say "FAIL: no check ran"
    failed=$((failed + 1))
fi
skipped=$((1 - kv))
if ((skipped > 0)); then
    say "$passed passed, $failed failed, $skipped skipped"
else
    say "$passed passed, $failed failed"
fi
((failed == 0))
