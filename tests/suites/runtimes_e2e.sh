#!/usr/bin/env bash
# End to end on real container runtimes, one simulated cluster of four nodes: three run a
# real containerd (1.6, 1.7 and 2.1) read over CRI, one a real Docker daemon. Each node's
# pods are made on its runtime as the kubelet makes them (two pods of two containers each on
# the containerd nodes, a pod of two containers and a container in no pod on the Docker
# node); the simulator serves the matching Pod objects (containerd:// and docker://
# container IDs); a real minion per node (on 127.0.0.2, .3, ... on one port, in the host's
# PID namespace) and a real master read them. Then every container, sandbox, image, process
# (child processes included) and relation in /cluster is checked against the runtimes and
# /proc, no environment value may leave a node, and no runtime may have been changed.
#
# Everything runs on private sockets and directories and is removed at the end. Skips
# loudly where a runtime cannot run; under CI=true that is a failure.
# RUNTIME_VERSIONS (default "1.6 1.7 2.1") picks the containerd versions.
# shellcheck disable=SC2317 # the check functions are called through `check`
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

RUNTIMES=$REPO/tests/runtimes
read -r -a VERSIONS <<<"${RUNTIME_VERSIONS:-1.6 1.7 2.1}"
SECRET=e2e-secret-$RANDOM$RANDOM
DOCKER_IMAGE=cluster-insight-e2e/busybox:1
SUITE_START=$SECONDS

[ "$(id -u)" -eq 0 ] || skip_suite "real runtimes need root"
need_tools
temp_dir WORK || { fail "cannot make a temporary directory"; summary_and_exit; }

# --- the binary that ships (static, release) -------------------------------------------------
step=$SECONDS
if ! bash "$REPO/scripts/build-image.sh" --binary-only >"$WORK/build.log" 2>&1; then
    tail -n 30 "$WORK/build.log"
    fail "building the static binary"
    summary_and_exit
fi
BIN=$(tail -n 1 "$WORK/build.log")
pass "the static binary builds ($BIN, $((SECONDS - step)) s)"

MINION_PORT=$(free_port)
SPECS=()
NODE_IPS=()
MINIONS=()

# start_minion NAME IP SOCKET: a minion for the node NAME on IP:MINION_PORT.
start_minion() {
    local name=$1 ip=$2 socket=$3
    "$BIN" minion --bind "$ip" --port "$MINION_PORT" --runtime-socket "$socket" \
        >"$WORK/minion-$name.log" 2>&1 &
    at_exit "kill $!"
    MINIONS+=("$name")
    NODE_IPS+=("$ip")
    check "the minion of $name answers /node on http://$ip:$MINION_PORT" \
        wait_http "http://$ip:$MINION_PORT/node" 30
}

# --- containerd nodes -------------------------------------------------------------------------
n=2
for version in "${VERSIONS[@]}"; do
    step=$SECONDS
    name=ctrd-${version//./-}
    ip=127.0.0.$n
    n=$((n + 1))
    dir=$WORK/$name
    rc=0
    socket=$(bash "$RUNTIMES/containerd.sh" start "$version" "$dir" 2>"$WORK/$name-start.log") || rc=$?
    at_exit "bash '$RUNTIMES/containerd.sh' stop '$dir'"
    case $rc in
        0) ;;
        77)
            cat "$WORK/$name-start.log"
            skip_suite "containerd $version cannot run here (reason above)"
            ;;
        *)
            cat "$WORK/$name-start.log"
            fail "starting containerd $version (exit $rc)"
            summary_and_exit
            ;;
    esac
    at_exit "python3 '$RUNTIMES/cri_pods.py' down '$socket'"
    if ! python3 "$RUNTIMES/cri_pods.py" up "$socket" "$WORK/$name.json" --node "$name" \
        --node-ip "$ip" --secret "$SECRET" >"$WORK/$name-up.log" 2>&1; then
        cat "$WORK/$name-up.log"
        fail "containerd $version: making the pods over CRI"
        summary_and_exit
    fi
    python3 "$RUNTIMES/cri_pods.py" list "$socket" >"$WORK/$name-before.json"
    SPECS+=("$WORK/$name.json")
    start_minion "$name" "$ip" "$socket"
    pass "containerd $version node $name ready in $((SECONDS - step)) s"
done

# --- a Docker node ------------------------------------------------------------------------
step=$SECONDS
start_private_dockerd
if ! build_busybox_image "$DOCKER_IMAGE"; then
    fail "building the busybox workload image"
    summary_and_exit
fi
at_exit 'docker ps -aq --filter label=cluster-insight.e2e | xargs -r docker rm -f'
DOCKER_NODE=docker-node
DOCKER_IP=127.0.0.$n
n=$((n + 1))
POD_UID=$(cat /proc/sys/kernel/random/uuid)
# docker_pod_container NAME COMMAND [options...]: a container of pod default/shop, labelled
# as the kubelet labels it; prints its ID.
docker_pod_container() {
    local name=$1 cmd=$2
    shift 2
    docker run -d --name "k8s_${name}_shop_default_${POD_UID}_0" --label cluster-insight.e2e --net=none \
        --label io.kubernetes.pod.name=shop --label io.kubernetes.pod.namespace=default \
        --label "io.kubernetes.pod.uid=$POD_UID" --label "io.kubernetes.container.name=$name" \
        "$@" "$DOCKER_IMAGE" sh -c "$cmd"
}
MAIN=$(docker_pod_container main 'sleep 100000 & exec sleep 100001' -e "E2E_SECRET=$SECRET")
SIDECAR=$(docker_pod_container sidecar 'exec sleep 100002')
LONER=$(docker run -d --name e2e-standalone --label cluster-insight.e2e --net=none "$DOCKER_IMAGE" \
    sh -c 'exec sleep 100003')
DOCKER_IMAGE_ID=$(docker image inspect -f '{{.Id}}' "$DOCKER_IMAGE")
DOCKER_VERSION=$(docker version -f '{{.Server.Version}}')
python3 - "$WORK/$DOCKER_NODE.json" <<EOF
import json, sys
container = lambda name, cid: {"name": name, "id": cid, "image": "$DOCKER_IMAGE", "image_id": "$DOCKER_IMAGE_ID"}
spec = {"node": "$DOCKER_NODE", "node_ip": "$DOCKER_IP", "runtime": "docker",
        "runtime_version": "docker://$DOCKER_VERSION",
        "pods": [{"namespace": "default", "name": "shop", "uid": "$POD_UID", "labels": {"app": "shop"},
                  "containers": [container("main", "$MAIN"), container("sidecar", "$SIDECAR")]}],
        "standalone": ["$LONER"]}
json.dump(spec, open(sys.argv[1], "w"), indent=1)
EOF
SPECS+=("$WORK/$DOCKER_NODE.json")
docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Status}}' | sed 's/ Up .*/ Up/' | sort >"$WORK/docker-before"
start_minion "$DOCKER_NODE" "$DOCKER_IP" "$DOCKER_SOCKET"
pass "Docker $DOCKER_VERSION node ready in $((SECONDS - step)) s"

# --- the simulated Kubernetes API, the master ---------------------------------------------
python3 "$TESTS_DOCKER/e2e_objects.py" "${SPECS[@]}" "$WORK/kube-objects.json"
SIM_PORT=$(free_port)
MASTER_PORT=$(free_port)
"$BIN" simulate --kube-objects "$WORK/kube-objects.json" --port "$SIM_PORT" >"$WORK/sim.log" 2>&1 &
at_exit "kill $!"
check "the simulator serves the objects" wait_http "http://127.0.0.1:$SIM_PORT/api/v1/pods" 30
"$BIN" master --bind 127.0.0.1 --port "$MASTER_PORT" --kubernetes-url "http://127.0.0.1:$SIM_PORT" \
    --docker-port "$MINION_PORT" --refresh-interval 1 >"$WORK/master.log" 2>&1 &
at_exit "kill $!"
MASTER=http://127.0.0.1:$MASTER_PORT
check "the master answers /healthz" wait_http "$MASTER/healthz" 30

dump_logs() {
    local log
    for log in "$WORK"/minion-*.log "$WORK/master.log" "$WORK/sim.log"; do
        echo "--- $(basename "$log")"
        tail -n 15 "$log"
    done
}

# The first snapshot that holds every node's containers (bounded).
got_graph=false
for ((i = 0; i < 60; i++)); do
    if curl -fsS --max-time 10 -o "$WORK/cluster.json" "$MASTER/cluster" 2>/dev/null &&
        python3 - "$WORK/cluster.json" "${SPECS[@]}" <<'EOF'; then
import json, sys
ids = {r["id"] for r in json.load(open(sys.argv[1]))["resources"]}
for path in sys.argv[2:]:
    spec = json.load(open(path))
    for pod in spec["pods"]:
        for ctr in pod["containers"]:
            if "Container:" + ctr["id"] not in ids:
                sys.exit(1)
EOF
        got_graph=true
        break
    fi
    sleep 1
done
if check "the master publishes a graph holding every node's containers" $got_graph; then
    python3 "$RUNTIMES/check_graph.py" "$WORK/cluster.json" "$SECRET" "${SPECS[@]}" >"$WORK/check.out" 2>&1
    count_lines <"$WORK/check.out"
    grep -q '^Traceback' "$WORK/check.out" && fail "check_graph.py crashed"
fi
check "the master reads each node with one /node call per refresh, no Docker calls" bash -c \
    "curl -fsS '$MASTER/status' | python3 -c 'import json, sys; c = json.load(sys.stdin)[\"refresh\"][\"calls\"]; sys.exit(not (c[\"agentNode\"] == ${#MINIONS[@]} and c[\"dockerList\"] == 0 and c[\"dockerInspect\"] == 0 and c[\"dockerTop\"] == 0))'"

# --- each agent's own document --------------------------------------------------------------
# not_modified_later URL: URL has an ETag, and a second later answers 304 to it. (Tried twice:
# an agent's ETag also changes when the period its readings may be stale for runs out.)
not_modified_later() {
    local url=$1 etag try
    for try in 1 2; do
        etag=$(curl -fsS -D - -o /dev/null "$url" | tr -d '\r' | sed -n 's/^[Ee][Tt][Aa][Gg]: //p')
        [ -n "$etag" ] || return 1
        sleep 1.1
        [ "$(curl -s -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$url")" = 304 ] && return 0
        echo "try $try: no 304 for $etag" >&2
    done
    return 1
}

for i in "${!MINIONS[@]}"; do
    name=${MINIONS[i]}
    url=http://${NODE_IPS[i]}:$MINION_PORT/node
    curl -fsS -o "$WORK/$name-node.json" "$url"
    check "$name: /node never holds the secret environment value" bash -c "! grep -q '$SECRET' '$WORK/$name-node.json'"
    check "$name: /node reads processes from /proc" bash -c \
        "python3 -c 'import json, sys; d = json.load(open(sys.argv[1])); sys.exit(d[\"processes\"][\"source\"] != \"proc\")' '$WORK/$name-node.json'"
    check "$name: /node has an ETag, and answers 304 to it while the node is unchanged" not_modified_later "$url"
    check "$name: /node refuses POST (405)" bash -c \
        "[ \"\$(curl -s -o /dev/null -w '%{http_code}' -X POST '$url')\" = 405 ]"
done
check "the Docker node's proxied inspect has the secret redacted" bash -c \
    "body=\$(curl -fsS 'http://$DOCKER_IP:$MINION_PORT/containers/$MAIN/json') && ! grep -q '$SECRET' <<<\"\$body\" && grep -q 'E2E_SECRET=<redacted>' <<<\"\$body\""

# --- nothing was changed ------------------------------------------------------------------
n=2
for version in "${VERSIONS[@]}"; do
    name=ctrd-${version//./-}
    socket=$WORK/$name/cri.sock
    python3 "$RUNTIMES/cri_pods.py" list "$socket" >"$WORK/$name-after.json"
    check "containerd $version: no sandbox, container or image was created, removed or stopped" \
        diff "$WORK/$name-before.json" "$WORK/$name-after.json"
done
docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Status}}' | sed 's/ Up .*/ Up/' | sort >"$WORK/docker-after"
check "Docker: no container was created, removed or stopped" diff "$WORK/docker-before" "$WORK/docker-after"

[ "$FAILED" -eq 0 ] || dump_logs
pass "the suite ran in $((SECONDS - SUITE_START)) s"
summary_and_exit
