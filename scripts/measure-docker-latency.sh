#!/usr/bin/env bash
# Measures what a real Docker Engine API costs per call, so that the cluster simulator can use
# realistic latencies: the calls the minion forwards, timed by curl over the daemon's Unix
# socket.
#
#   sudo scripts/measure-docker-latency.sh [--out FILE]
#
# Starts a private dockerd (tests/docker/lib.sh: its own socket and data root, no bridge, no
# iptables), builds the static busybox image there, and runs MEASURE_CONTAINERS containers of
# it (default 30, --network none), each a shell with three sleeping children. Then, for
# MEASURE_ROUNDS rounds (default 20), back to back: GET /containers/json (no query, as the
# minion sends it: every container, all running), GET /containers/ID/json and
# GET /containers/ID/top?ps_args=aux of each container, and GET /images/ID/json of the image,
# all on the API version the daemon reports in /version. One curl per call (a new connection
# each time, as a client without keep-alive), timed by its %{time_total}; every answer must be
# a 200. No warm-up: the first round's calls are samples too.
# Prints a Markdown table on stdout (per call kind: samples, p50, p90 and max in ms, nearest
# rank; the daemon's version, the container count and the machine's load above it), progress
# on stderr; --out FILE also writes the results, with every sample, as JSON. Removes the
# containers, the image and the daemon on exit, whatever happened (the lib's at_exit).
#
# Exit codes: 0 measured, 1 failure, 2 bad command line, 77 no Docker daemon can run here.
set -uo pipefail

# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../tests/docker/lib.sh"

CONTAINERS=${MEASURE_CONTAINERS:-30}
ROUNDS=${MEASURE_ROUNDS:-20}
IMAGE=cluster-insight-measure/busybox:1
LABEL=cluster-insight.measure
# A shell and three sleeping children in each container.
WORKLOAD='sleep 100000 & sleep 100000 & sleep 100000'
OUT=

say() { printf 'measure-docker-latency.sh: %s\n' "$*" >&2; }

die() {
    say "FAILED: $*"
    exit 1
}

usage() {
    say "usage: $0 [--out FILE]   (env: MEASURE_CONTAINERS, MEASURE_ROUNDS)"
    exit 2
}

# The lib skips a suite (exit 0, or 1 under CI=true) where no daemon can run; a measurement
# that did not happen exits 77 instead, its reason on stderr.
skip_suite() {
    say "cannot measure: $*"
    exit 77
}

while [ $# -gt 0 ]; do
    case $1 in
        --out)
            { [ $# -ge 2 ] && [ -n "$2" ]; } || usage
            OUT=$2
            shift 2
            ;;
        *) usage ;;
    esac
done
for n in "$CONTAINERS" "$ROUNDS"; do
    { [[ $n =~ ^[0-9]+$ ]] && [ "$n" -ge 1 ]; } || die "MEASURE_CONTAINERS and MEASURE_ROUNDS must be whole numbers of at least 1 (got '$n')"
done
# Resolved now: the script may cd nowhere, but the file is written at the end.
if [ -n "$OUT" ]; then
    case $OUT in /*) ;; *) OUT=$PWD/$OUT ;; esac
fi

NPROC=$(nproc)
LOAD_BEFORE=$(cut -d ' ' -f 1-3 /proc/loadavg)
say "machine: $NPROC CPUs, load average before: $LOAD_BEFORE"

# The lib's failure lines would go to stdout, which holds only the table.
start_private_dockerd >&2
temp_dir WORK || die "cannot make a temporary directory"
# Run at exit before the daemon stops (registered first, so run last).
at_exit "docker ps -aq --filter label=$LABEL | xargs -r docker rm -f"
at_exit "docker rmi -f '$IMAGE'"

# api GET_PATH OUTPUT_FILE: prints "HTTP_CODE SECONDS" for one call on the daemon's socket.
api() {
    curl -sS --max-time 30 --unix-socket "$DOCKER_SOCKET" -o "$2" \
        -w '%{http_code} %{time_total}' "http://localhost$1"
}

answer=$(api /version "$WORK/version.json") || die "GET /version"
[ "${answer%% *}" = 200 ] || die "GET /version answered ${answer%% *}"
read -r DOCKER_VERSION API_VERSION < <(python3 -c '
import json, sys
v = json.load(open(sys.argv[1]))
print(v["Version"], v["ApiVersion"])' "$WORK/version.json") || die "cannot read /version"
say "dockerd $DOCKER_VERSION, API $API_VERSION, socket $DOCKER_SOCKET"
BASE=/v$API_VERSION

say "building $IMAGE"
build_busybox_image "$IMAGE" || die "building the busybox image"
IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$IMAGE") || die "docker image inspect $IMAGE"

say "starting $CONTAINERS containers"
began=$EPOCHREALTIME
IDS=()
for ((i = 1; i <= CONTAINERS; i++)); do
    id=$(docker run -d --name "measure-$i" --label "$LABEL" --network none "$IMAGE" sh -c "$WORKLOAD") ||
        die "docker run (container $i)"
    IDS+=("$id")
done
STARTUP_S=$(awk -v a="$began" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
say "started in ${STARTUP_S} s"

# What `top` sees in one container: the processes a top answer holds.
answer=$(api "$BASE/containers/${IDS[0]}/top?ps_args=aux" "$WORK/top.json") || die "GET top"
[ "${answer%% *}" = 200 ] || die "GET /containers/ID/top answered ${answer%% *}"
PROCESSES=$(python3 -c 'import json, sys; print(len(json.load(open(sys.argv[1]))["Processes"]))' "$WORK/top.json") ||
    die "cannot read a top answer"
LOAD_MEASURE=$(cut -d ' ' -f 1-3 /proc/loadavg)
say "$PROCESSES processes per container; load average before measuring: $LOAD_MEASURE"

# sample KIND PATH: one timed call, appended to the samples as "KIND SECONDS BYTES".
sample() {
    local answer code seconds
    answer=$(api "$2" "$WORK/body") || die "GET $2"
    read -r code seconds <<<"$answer"
    [ "$code" = 200 ] || die "GET $2 answered $code"
    printf '%s %s %s\n' "$1" "$seconds" "$(wc -c <"$WORK/body")" >>"$WORK/samples"
}

: >"$WORK/samples"
began=$EPOCHREALTIME
for ((round = 1; round <= ROUNDS; round++)); do
    say "round $round of $ROUNDS"
    sample list "$BASE/containers/json"
    for id in "${IDS[@]}"; do
        sample inspect "$BASE/containers/$id/json"
    done
    for id in "${IDS[@]}"; do
        sample top "$BASE/containers/$id/top?ps_args=aux"
    done
    sample image "$BASE/images/$IMAGE_ID/json"
done
MEASURE_S=$(awk -v a="$began" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }')
LOAD_AFTER=$(cut -d ' ' -f 1-3 /proc/loadavg)
say "measured in ${MEASURE_S} s; load average after: $LOAD_AFTER"

python3 - "$WORK/samples" "$OUT" <<EOF || die "cannot summarise the samples"
import json, math, sys

kinds = [
    ("list", "GET /containers/json"),
    ("inspect", "GET /containers/ID/json"),
    ("top", "GET /containers/ID/top?ps_args=aux"),
    ("image", "GET /images/ID/json"),
]
ms = {kind: [] for kind, _ in kinds}
size = {kind: 0 for kind, _ in kinds}
for line in open(sys.argv[1]):
    kind, seconds, length = line.split()
    ms[kind].append(round(float(seconds) * 1000, 3))
    size[kind] = int(length)

def rank(values, p):  # nearest rank
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p / 100 * len(ordered)) - 1)]

calls = {
    kind: {"call": call, "samples": len(ms[kind]), "p50_ms": rank(ms[kind], 50),
           "p90_ms": rank(ms[kind], 90), "max_ms": max(ms[kind]), "bytes": size[kind],
           "samples_ms": ms[kind]}
    for kind, call in kinds
}
results = {
    "dockerd": "$DOCKER_VERSION",
    "api_version": "$API_VERSION",
    "containers": $CONTAINERS,
    "processes_per_container": $PROCESSES,
    "rounds": $ROUNDS,
    "machine": {"nproc": $NPROC, "loadavg_before": "$LOAD_BEFORE",
                "loadavg_before_measuring": "$LOAD_MEASURE", "loadavg_after": "$LOAD_AFTER"},
    "containers_start_s": $STARTUP_S,
    "measure_s": $MEASURE_S,
    "calls": calls,
}
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
print(f"dockerd {results['dockerd']} (API {results['api_version']}), {$CONTAINERS} containers "
      f"of {$PROCESSES} processes, {$ROUNDS} rounds; {$NPROC} CPUs, load average $LOAD_BEFORE "
      f"before, $LOAD_MEASURE before measuring, $LOAD_AFTER after")
print()
print("| call | samples | p50 ms | p90 ms | max ms |")
print("| --- | ---: | ---: | ---: | ---: |")
for kind, call in kinds:
    c = calls[kind]
    print(f"| {call} | {c['samples']} | {c['p50_ms']:.2f} | {c['p90_ms']:.2f} | {c['max_ms']:.2f} |")
EOF
[ -z "$OUT" ] || say "results written to $OUT"
