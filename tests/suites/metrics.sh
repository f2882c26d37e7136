#!/usr/bin/env bash
# /metrics read by a real Prometheus parser (the prometheus_client package's, from PyPI, in
# a virtual environment of its own): the demo's master serves it; every family the contract
# lists must parse, with the right type, and agree with /status.
# Skips loudly where the parser cannot be installed; under CI=true that is a failure.
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

CACHE=${CLUSTER_INSIGHT_TEST_CACHE:-${XDG_CACHE_HOME:-/var/cache}/cluster-insight-tests}
VENV=$CACHE/python-prometheus
need_tools
temp_dir WORK || { fail "cannot make a temporary directory"; summary_and_exit; }

if [ ! -x "$VENV/bin/python3" ] || ! "$VENV/bin/python3" -c 'import prometheus_client' 2>/dev/null; then
    mkdir -p "$CACHE" 2>/dev/null
    if ! { python3 -m venv "$VENV" && "$VENV/bin/pip" install -q prometheus-client==0.21.1; } >"$WORK/pip.log" 2>&1; then
        cat "$WORK/pip.log"
        skip_suite "cannot install prometheus-client (PyPI)"
    fi
fi
pass "prometheus_client $("$VENV/bin/python3" -c 'import importlib.metadata as m; print(m.version("prometheus-client"))')"

if ! (cd "$REPO" && cargo build -q --locked) >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log"
    fail "cargo build"
    summary_and_exit
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
PORT=$(free_port)
"$TARGET_DIR/debug/cluster-insight" demo --port "$PORT" --refresh-interval 1 >"$WORK/demo.log" 2>&1 &
at_exit "kill $!"
MASTER=http://127.0.0.1:$PORT
if ! check "the demo's master is ready" wait_http "$MASTER/readyz" 60; then
    tail -n 20 "$WORK/demo.log"
    summary_and_exit
fi
curl -fsS -o /dev/null "$MASTER/cluster"
curl -fsS -o /dev/null "$MASTER/cluster/resources/pods"
curl -sS -o /dev/null "$MASTER/no/such/path"
curl -fsS -o "$WORK/status.json" "$MASTER/status"
curl -fsS -D "$WORK/metrics.head" -o "$WORK/metrics.txt" "$MASTER/metrics"
check "/metrics says it is the text format 0.0.4" grep -qi '^content-type: text/plain; version=0.0.4' "$WORK/metrics.head"

"$VENV/bin/python3" - "$WORK/metrics.txt" "$WORK/status.json" >"$WORK/check.out" 2>&1 <<'EOF'
import json
import sys

from prometheus_client.parser import text_string_to_metric_families

text = open(sys.argv[1]).read()
status = json.load(open(sys.argv[2]))
try:
    families = {f.name: f for f in text_string_to_metric_families(text)}
except Exception as e:  # the parser's own error is the finding
    print(f"FAIL: the parser reads /metrics -- {e!r}")
    sys.exit(0)
series = sum(len(f.samples) for f in families.values())
print(f"PASS: the parser reads /metrics: {len(families)} families, {series} series")


def check(ok, what, detail=""):
    print(("PASS: " if ok else "FAIL: ") + what + ("" if ok else f" -- {detail}"))


def samples(family_name, **labels):
    family = families.get(family_name)
    return [s for s in (family.samples if family else [])
            if all(s.labels.get(k) == v for k, v in labels.items())]


# The parser names counters without their _total suffix.
for name, kind in [
    ("cluster_insight_refreshes", "counter"),
    ("cluster_insight_graph_builds", "counter"),
    ("cluster_insight_refresh_duration_seconds", "gauge"),
    ("cluster_insight_refresh_phase_seconds", "gauge"),
    ("cluster_insight_refresh_calls", "gauge"),
    ("cluster_insight_source_up", "gauge"),
    ("cluster_insight_source_failed_calls", "gauge"),
    ("cluster_insight_snapshot_age_seconds", "gauge"),
    ("cluster_insight_last_refresh_age_seconds", "gauge"),
    ("cluster_insight_snapshot_sequence", "gauge"),
    ("cluster_insight_resources", "gauge"),
    ("cluster_insight_relations", "gauge"),
    ("cluster_insight_http_requests", "counter"),
    ("cluster_insight_watch_events", "counter"),
    ("cluster_insight_change_streams", "gauge"),
    ("cluster_insight_history_changes", "gauge"),
    ("process_resident_memory_bytes", "gauge"),
]:
    family = families.get(name)
    check(family is not None and family.type == kind, f"{name} is a {kind}",
          repr(family.type if family else None))

builds = {s.labels["way"]: s.value for s in samples("cluster_insight_graph_builds")}
check(set(builds) == {"whole", "in_place", "spliced"} and builds["whole"] >= 1,
      "graphs made, by way, the first built whole", repr(builds))
# /metrics was read just after /status: a refresh (one a second) may have come between.
said = status["refresh"]["builds"]
check(all(0 <= builds.get(way, -1) - said[key] <= 2
          for way, key in [("whole", "whole"), ("in_place", "inPlace"), ("spliced", "spliced")]),
      "the ways agree with /status", repr((builds, said)))
phases = {s.labels["phase"] for s in samples("cluster_insight_refresh_phase_seconds")}
check(phases == {"kubernetes", "runtimes", "graph", "render"}, "a duration for each phase", repr(phases))
check(samples("cluster_insight_source_up", source="kubernetes", name="pods")[0].value == 1,
      "the pods list is up")
nodes = samples("cluster_insight_source_up", source="node")
check(len(nodes) == len(status["sources"]["nodes"]) > 0, "a series for each node", repr(len(nodes)))
pods = samples("cluster_insight_resources", type="Pod")
check(pods and pods[0].value == status["counts"]["resources"]["Pod"], "resources agree with /status",
      repr((pods, status["counts"]["resources"].get("Pod"))))
cluster = samples("cluster_insight_http_requests", path="/cluster", code="200")
check(cluster and cluster[0].value >= 1, "/cluster answers are counted", repr(cluster))
typed = samples("cluster_insight_http_requests", path="/cluster/resources/{type}", code="200")
check(typed and typed[0].value >= 1, "a type's list counts under its route, not its own path", repr(typed))
unknown = samples("cluster_insight_http_requests", path="other", code="404")
check(unknown and unknown[0].value >= 1, "unknown paths count as other", repr(unknown))
events = samples("cluster_insight_watch_events", kind="pods")
check(len(events) == 1 and events[0].value >= 0, "each kind's watch events are counted", repr(events))
# Restarts appear once a watch has started again (a labelled counter has no series before).
restarts = families.get("cluster_insight_watch_restarts")
check(restarts is None or restarts.type == "counter", "watch restarts are a counter",
      repr(restarts.type if restarts else None))
memory = samples("process_resident_memory_bytes")
check(memory and memory[0].value > 1 << 20, "resident memory is reported", repr(memory))
EOF
count_lines <"$WORK/check.out"
grep -q '^Traceback' "$WORK/check.out" && { cat "$WORK/check.out"; fail "the metrics checker crashed"; }

summary_and_exit
