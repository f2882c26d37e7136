#!/usr/bin/env bash
# Benchmark of the node agent (`cluster-insight minion`) on a real containerd: what one `GET /node`
# costs the node when it runs many containers and processes.
#
#   sudo scripts/bench-agent.sh [--out FILE]
#
# Builds the release binary, starts a private containerd 1.7 (tests/runtimes/containerd.sh),
# makes kubelet-like pods over CRI (tests/runtimes/cri_pods.py: its two test pods plus
# BENCH_PODS pods of BENCH_CONTAINERS busybox containers of BENCH_PROCESSES processes each,
# default 11 x 10 x 9), and runs the minion on loopback against that socket. Then, for
# BENCH_REQUESTS requests (default 20) spaced 1.2 s apart, so that each one reads the node
# anew rather than the document of the second before: the minion's CPU time per answer
# (utime + stime from /proc/PID/stat), curl's wall time, the document's size and gzip size, and
# the containers and processes in it; then one request with If-None-Match of the last ETag (a
# 304), the minion's CPU over 10 s without requests, its peak RSS (VmHWM) and its RSS at the
# end. Prints a Markdown table on stdout, progress on stderr; --out FILE also writes the results
# as JSON. Removes the minion, the pods and containerd on exit, whatever happened.
#
# Exit codes: 0 measured, 1 failure, 2 bad command line, 77 no containerd can run here.
set -uo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
RUNTIMES=$ROOT/tests/runtimes
BINARY=$ROOT/target/release/cluster-insight
CONTAINERD_VERSION=1.7
PODS=${BENCH_PODS:-11}
CONTAINERS=${BENCH_CONTAINERS:-10}
PROCESSES=${BENCH_PROCESSES:-9}
REQUESTS=${BENCH_REQUESTS:-20}
# More than the second for which the minion keeps a document, so every request is a reading.
SPACING=1.2
IDLE_SECONDS=10
OUT=

WORK=
NODE_DIR=
SOCKET=
MINION_PID=

say() { printf 'bench-agent.sh: %s\n' "$*" >&2; }

die() {
    say "FAILED: $*"
    exit 1
}

usage() {
    say "usage: $0 [--out FILE]   (env: BENCH_PODS, BENCH_CONTAINERS, BENCH_PROCESSES, BENCH_REQUESTS)"
    exit 2
}

cleanup() {
    if [ -n "$MINION_PID" ]; then
        kill "$MINION_PID" 2>/dev/null
        wait "$MINION_PID" 2>/dev/null
    fi
    if [ -n "$SOCKET" ]; then
        say "removing the pods"
        python3 "$RUNTIMES/cri_pods.py" down "$SOCKET" 2>"$WORK/down.log" || cat "$WORK/down.log" >&2
    fi
    if [ -n "$NODE_DIR" ]; then
        bash "$RUNTIMES/containerd.sh" stop "$NODE_DIR"
    fi
    if [ -n "$WORK" ]; then
        rm -rf "$WORK"
    fi
}

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

now() { printf '%s\n' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2f", b - a }'; }

# The minion's CPU time so far, in clock ticks (utime + stime of all its threads). The fields
# are counted after the command's closing parenthesis: a command may hold spaces.
cpu_ticks() {
    local stat fields
    stat=$(<"/proc/$MINION_PID/stat") || return 1
    read -ra fields <<<"${stat##*) }"
    printf '%s\n' $((fields[11] + fields[12]))
}

status_kib() { # FIELD: VmHWM or VmRSS of the minion, in KiB
    awk -v f="$1:" '$1 == f { print $2 }' "/proc/$MINION_PID/status"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

wait_healthy() { # URL: true once it answers 200, within 60 s
    local i
    for ((i = 0; i < 300; i++)); do
        curl -fsS --max-time 2 -o /dev/null "$1" 2>/dev/null && return 0
        kill -0 "$MINION_PID" 2>/dev/null || return 1
        sleep 0.2
    done
    return 1
}

# What a document holds: "CONTAINERS SANDBOXES PROCESSES RUNTIME_VERSION".
document_counts() {
    python3 - "$1" <<'EOF'
import json, sys
doc = json.load(open(sys.argv[1]))
containers = [c for c in doc["containers"] if not c.get("sandbox")]
sandboxes = [c for c in doc["containers"] if c.get("sandbox")]
processes = sum(len(c.get("processes") or []) for c in doc["containers"])
print(len(containers), len(sandboxes), processes, doc["runtime"]["version"])
EOF
}

while [ $# -gt 0 ]; do
    case $1 in
        --out)
            [ $# -ge 2 ] || usage
            OUT=$2
            shift 2
            ;;
        -h | --help) usage ;;
        *) usage ;;
    esac
done
for n in "$PODS" "$CONTAINERS" "$PROCESSES" "$REQUESTS"; do
    [[ $n =~ ^[0-9]+$ ]] || die "BENCH_* must be whole numbers (got '$n')"
done
if [ "$CONTAINERS" -lt 1 ] || [ "$PROCESSES" -lt 1 ] || [ "$REQUESTS" -lt 1 ]; then
    die "BENCH_CONTAINERS, BENCH_PROCESSES and BENCH_REQUESTS must be at least 1"
fi
[ "$(id -u)" -eq 0 ] || die "run as root (containerd and its pods need it): sudo $0"
for tool in cargo curl gzip python3; do
    command -v "$tool" >/dev/null 2>&1 || die "$tool not found${SUDO_USER:+ (under sudo, PATH is reset: sudo env PATH=\"\$PATH\" $0)}"
done
HZ=$(getconf CLK_TCK 2>/dev/null) || HZ=100

say "building the release binary"
(cd "$ROOT" && cargo build --release --locked) || die "cargo build --release --locked"

# Short: containerd's socket path must fit in 107 bytes.
WORK=$(mktemp -d /tmp/ci-bench.XXXXXX) || die "cannot make a temporary directory"
NODE_DIR=$WORK/node
began=$(now)
SOCKET=$(bash "$RUNTIMES/containerd.sh" start "$CONTAINERD_VERSION" "$NODE_DIR")
rc=$?
case $rc in
    0) ;;
    77)
        SOCKET=
        # Whatever start left behind; quiet, as the directory may not be containerd's yet.
        bash "$RUNTIMES/containerd.sh" stop "$NODE_DIR" 2>/dev/null
        NODE_DIR=
        say "no containerd can run here (reason above)"
        exit 77
        ;;
    *)
        SOCKET=
        die "containerd.sh start $CONTAINERD_VERSION (exit $rc)"
        ;;
esac
containerd_s=$(since "$began")

say "making $PODS pods of $CONTAINERS containers of $PROCESSES processes"
began=$(now)
python3 "$RUNTIMES/cri_pods.py" up "$SOCKET" "$WORK/spec.json" --node bench \
    --load-pods "$PODS" --load-containers "$CONTAINERS" --load-processes "$PROCESSES" ||
    die "cri_pods.py up"
pods_s=$(since "$began")

PORT=$(free_port) || die "no free port"
URL=http://127.0.0.1:$PORT
"$BINARY" minion --bind 127.0.0.1 --port "$PORT" --runtime-socket "$SOCKET" >"$WORK/minion.log" 2>&1 &
MINION_PID=$!
if ! wait_healthy "$URL/healthz"; then
    tail -n 20 "$WORK/minion.log" >&2
    die "the minion did not become healthy on $URL/healthz"
fi
rss_start_kib=$(status_kib VmRSS)

say "$REQUESTS requests of /node, ${SPACING} s apart"
# The first request must not find a document read for an earlier one.
sleep "$SPACING"
: >"$WORK/samples"
for ((i = 1; i <= REQUESTS; i++)); do
    start=$(now)
    before=$(cpu_ticks) || die "the minion is gone"
    answer=$(curl -sS --max-time 60 -o "$WORK/node.json" -D "$WORK/headers" -w '%{http_code} %{time_total}' "$URL/node") ||
        die "GET /node"
    after=$(cpu_ticks) || die "the minion is gone"
    read -r code seconds <<<"$answer"
    [ "$code" = 200 ] || die "GET /node answered $code"
    bytes=$(wc -c <"$WORK/node.json")
    gzip_bytes=$(gzip -c "$WORK/node.json" | wc -c)
    counts=$(document_counts "$WORK/node.json") || die "the /node document cannot be read"
    printf '%s %s %s %s %s %s\n' "$i" "$((after - before))" "$seconds" "$bytes" "$gzip_bytes" "$counts" >>"$WORK/samples"
    rest=$(awk -v s="$start" -v n="$(now)" -v d="$SPACING" 'BEGIN { r = s + d - n; printf "%.3f", (r > 0 ? r : 0) }')
    sleep "$rest"
done
etag=$(awk -F': ' 'tolower($1) == "etag" { sub(/\r$/, "", $2); print $2 }' "$WORK/headers")
[ -n "$etag" ] || die "the last /node answer has no ETag"

before=$(cpu_ticks) || die "the minion is gone"
answer=$(curl -sS --max-time 60 -o /dev/null -H "If-None-Match: $etag" -w '%{http_code} %{time_total}' "$URL/node") ||
    die "GET /node with If-None-Match"
after=$(cpu_ticks) || die "the minion is gone"
read -r not_modified_code not_modified_seconds <<<"$answer"
not_modified_ticks=$((after - before))
[ "$not_modified_code" = 304 ] || say "WARNING: If-None-Match of the last ETag answered $not_modified_code, not 304"

say "idle for $IDLE_SECONDS s"
before=$(cpu_ticks) || die "the minion is gone"
sleep "$IDLE_SECONDS"
after=$(cpu_ticks) || die "the minion is gone"
idle_ticks=$((after - before))
peak_kib=$(status_kib VmHWM)
rss_end_kib=$(status_kib VmRSS)

python3 - "$WORK/samples" "$OUT" <<EOF
import json, os, statistics, sys

rows = [line.split() for line in open(sys.argv[1])]
hz = $HZ
ms = lambda ticks: int(ticks) * 1000 / hz
samples = [
    {"cpu_ms": ms(r[1]), "latency_ms": round(float(r[2]) * 1000, 1), "bytes": int(r[3]),
     "gzip_bytes": int(r[4]), "containers": int(r[5]), "sandboxes": int(r[6]),
     "processes": int(r[7])}
    for r in rows
]
runtime_version = rows[-1][8]
column = lambda key: [s[key] for s in samples]
last = samples[-1]
cpu = column("cpu_ms")
latency = column("latency_ms")
model = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo")
              if line.startswith("model name")), "unknown")
results = {
    "machine": {"cpu": model, "cores": os.cpu_count(), "kernel": os.uname().release},
    "runtime": "containerd " + runtime_version,
    "load": {"pods": $PODS, "containers_per_pod": $CONTAINERS, "processes_per_container": $PROCESSES},
    "setup_s": {"containerd_start": $containerd_s, "pods_up": $pods_s},
    "document": {key: last[key] for key in ("containers", "sandboxes", "processes", "bytes", "gzip_bytes")},
    "node_requests": {
        "count": len(samples),
        "spacing_s": $SPACING,
        "cpu_ms": {"mean": round(statistics.mean(cpu), 1), "p50": statistics.median(cpu),
                   "max": max(cpu), "total": sum(cpu)},
        "latency_ms": {"p50": round(statistics.median(latency), 1), "max": max(latency)},
        "samples": samples,
    },
    "not_modified": {"status": $not_modified_code, "latency_ms": round($not_modified_seconds * 1000, 1),
                     "cpu_ms": ms($not_modified_ticks)},
    "idle": {"seconds": $IDLE_SECONDS, "cpu_ms": ms($idle_ticks)},
    "rss_mib": {"after_start": round($rss_start_kib / 1024, 1), "peak": round($peak_kib / 1024, 1),
                "end": round($rss_end_kib / 1024, 1)},
}
if sys.argv[2]:
    with open(sys.argv[2], "w") as f:
        json.dump(results, f, indent=1)
        f.write("\n")
d, n = results["document"], results["node_requests"]
table = [
    ("machine", f"{model}, {os.cpu_count()} cores"),
    ("runtime", f"{results['runtime']}; {$PODS} load pods x {$CONTAINERS} containers x {$PROCESSES} processes"),
    ("/node document", f"{d['containers']} containers, {d['sandboxes']} sandboxes, {d['processes']} processes"),
    ("document size (gzip)", f"{d['bytes'] / 1e6:.2f} MB ({d['gzip_bytes'] / 1e3:.0f} kB)"),
    (f"CPU per /node answer (mean / p50 / max of {n['count']})",
     f"{n['cpu_ms']['mean']} / {n['cpu_ms']['p50']:g} / {n['cpu_ms']['max']:g} ms"),
    ("latency per /node answer (p50 / max)", f"{n['latency_ms']['p50']} / {n['latency_ms']['max']} ms"),
    ("If-None-Match of the last ETag", f"{results['not_modified']['status']} in "
     f"{results['not_modified']['latency_ms']} ms, {results['not_modified']['cpu_ms']:g} ms CPU"),
    (f"idle CPU over {$IDLE_SECONDS} s", f"{results['idle']['cpu_ms']:g} ms"),
    ("RSS (after start / peak / end)",
     f"{results['rss_mib']['after_start']} / {results['rss_mib']['peak']} / {results['rss_mib']['end']} MiB"),
]
print("| measure | value |")
print("| --- | --- |")
for name, value in table:
    print(f"| {name} | {value} |")
EOF
