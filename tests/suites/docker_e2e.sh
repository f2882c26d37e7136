#!/usr/bin/env bash
# End to end against a real, private Docker daemon: the scratch image runs the minion as a
# container (host network, the daemon's socket mounted read-only); workload containers run
# real processes, named and labelled as the kubelet does, plus containers in no pod; the
# cluster simulator serves Kubernetes objects that point at those real container IDs; the
# master, on the host, must then publish a graph holding the real containers, their real
# processes and image IDs, and the right relations. The minion must refuse to change anything.
# Skips loudly where no Docker daemon can run; under CI=true that is a failure.
# shellcheck disable=SC2317 # the check functions are called through `check`
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

IMAGE=cluster-insight:e2e
WORKLOAD_IMAGE=cluster-insight-e2e/busybox:1
# A second image, so that each container's createdFrom must pick the right one.
WORKLOAD_IMAGE2=cluster-insight-e2e/busybox-db:1
TARGET_DIR=${CARGO_TARGET_DIR:-target}
[[ $TARGET_DIR == /* ]] || TARGET_DIR=$REPO/$TARGET_DIR
BIN=$TARGET_DIR/x86_64-unknown-linux-musl/release/cluster-insight
NODE=e2e-node
SECRET=e2e-secret-$RANDOM$RANDOM

start_private_dockerd
temp_dir WORK || { fail "cannot make a temporary directory"; summary_and_exit; }

# Containers and images are removed at exit, before the daemon (registered first) stops.
at_exit 'docker ps -aq --filter label=cluster-insight.e2e | xargs -r docker rm -f'
at_exit "docker rmi -f '$IMAGE' '$WORKLOAD_IMAGE' '$WORKLOAD_IMAGE2'"

if ! build_image "$IMAGE" >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log"
    fail "scripts/build-image.sh $IMAGE"
    summary_and_exit
fi
pass "scripts/build-image.sh builds $IMAGE ($(grep -E '^(binary|image) ' "$WORK/build.log" | tr '\n' ' '))"
check "the image's entry point is /cluster-insight" bash -c \
    "[ \"\$(docker image inspect -f '{{json .Config.Entrypoint}}' '$IMAGE')\" = '[\"/cluster-insight\"]' ]"
check "the image holds one file, the binary (no shell, no libc)" bash -c \
    "[ \"\$(docker save '$IMAGE' | python3 '$TESTS_DOCKER/image_files.py')\" = cluster-insight ]"
if ! build_busybox_image "$WORKLOAD_IMAGE"; then
    fail "building the busybox workload image"
    summary_and_exit
fi
printf 'FROM %s\nLABEL role=db\n' "$WORKLOAD_IMAGE" | docker build -q -t "$WORKLOAD_IMAGE2" - >/dev/null 2>&1
check "two workload images with different IDs" bash -c \
    "[ \"\$(docker image inspect -f '{{.Id}}' '$WORKLOAD_IMAGE')\" != \"\$(docker image inspect -f '{{.Id}}' '$WORKLOAD_IMAGE2')\" ]"

# --- the minion, as a container -------------------------------------------------------------
MINION_PORT=$(free_port)
MINION_ID=$(docker run -d --name cluster-insight-e2e-minion --label cluster-insight.e2e --net=host \
    -v "$DOCKER_SOCKET:/var/run/docker.sock:ro" -e CLUSTER_INSIGHT_MODE=minion \
    "$IMAGE" --port "$MINION_PORT" --bind 127.0.0.1)
MINION=http://127.0.0.1:$MINION_PORT
if ! check "the minion container answers /_ping on $MINION" wait_http "$MINION/_ping" 30; then
    docker logs cluster-insight-e2e-minion 2>&1 | tail -n 20
    summary_and_exit
fi

# --- workload containers ------------------------------------------------------------------
uuid() { cat /proc/sys/kernel/random/uuid; }
WEB_UID=$(uuid)
DB_UID=$(uuid)

# run_workload NAME IMAGE COMMAND [docker run options...]: prints the full container ID.
run_workload() {
    local name=$1 image=$2 cmd=$3
    shift 3
    docker run -d --name "$name" --label cluster-insight.e2e --net=none "$@" "$image" sh -c "$cmd"
}
pod_labels() {
    printf -- '--label\nio.kubernetes.pod.name=%s\n--label\nio.kubernetes.pod.namespace=%s\n--label\nio.kubernetes.pod.uid=%s\n--label\nio.kubernetes.container.name=%s\n' "$@"
}
mapfile -t web_labels < <(pod_labels web-1 default "$WEB_UID" web)
mapfile -t sidecar_labels < <(pod_labels web-1 default "$WEB_UID" sidecar)
# Three processes (the shell and two sleeps), and a secret in the environment.
WEB=$(run_workload "k8s_web_web-1_default_${WEB_UID}_0" "$WORKLOAD_IMAGE" \
    'sleep 3600 & sleep 3601 & wait' -e "E2E_SECRET=$SECRET" "${web_labels[@]}")
SIDECAR=$(run_workload "k8s_sidecar_web-1_default_${WEB_UID}_0" "$WORKLOAD_IMAGE" \
    'exec sleep 3602' "${sidecar_labels[@]}")
# No labels: it belongs to its pod through the pod's containerStatuses and its kubelet name.
DB=$(run_workload "k8s_db_db-0_data_${DB_UID}_0" "$WORKLOAD_IMAGE2" 'exec sleep 3603')
# No labels and not in the pod's status: it belongs to its pod through its kubelet name only.
INIT=$(run_workload "k8s_init_web-1_default_${WEB_UID}_0" "$WORKLOAD_IMAGE" 'exec sleep 3605')
# In no pod at all.
LONER=$(run_workload e2e-standalone "$WORKLOAD_IMAGE" 'sleep 3604 & wait')
check "the minion and five workload containers run" bash -c \
    "[ \"\$(docker ps -q --filter label=cluster-insight.e2e | wc -l)\" -eq 6 ]"

image_of() { docker image inspect -f '{{.Id}}' "$1"; }
python3 - "$WORK/spec.json" <<EOF
import json, sys
spec = {
    "node": "$NODE",
    "pods": [
        {"namespace": "default", "name": "web-1", "uid": "$WEB_UID", "labels": {"app": "web"},
         "containers": [
             {"name": "web", "id": "$WEB", "image": "$WORKLOAD_IMAGE", "image_id": "$(image_of "$WORKLOAD_IMAGE")"},
             {"name": "sidecar", "id": "$SIDECAR", "image": "$WORKLOAD_IMAGE", "image_id": "$(image_of "$WORKLOAD_IMAGE")"},
             {"name": "init", "id": "$INIT", "image": "$WORKLOAD_IMAGE", "image_id": "$(image_of "$WORKLOAD_IMAGE")",
              "in_status": False}]},
        {"namespace": "data", "name": "db-0", "uid": "$DB_UID", "labels": {"app": "db"},
         "containers": [
             {"name": "db", "id": "$DB", "image": "$WORKLOAD_IMAGE2", "image_id": "$(image_of "$WORKLOAD_IMAGE2")"}]},
    ],
    "pending": [{"namespace": "default", "name": "pending-0", "uid": "$(uuid)"}],
    "services": [{"namespace": "default", "name": "web", "selector": {"app": "web"}}],
    "rcs": [{"namespace": "data", "name": "db", "selector": {"app": "db"}}],
    "standalone": ["$LONER"],
    "minion": "$MINION_ID",
    "secret": "$SECRET",
}
json.dump(spec, open(sys.argv[1], "w"), indent=1)
EOF
python3 "$TESTS_DOCKER/e2e_objects.py" "$WORK/spec.json" "$WORK/kube-objects.json"

# --- the minion refuses to change anything --------------------------------------------------
snapshot_daemon() {
    {
        docker ps -a --no-trunc --format '{{.ID}} {{.Names}} {{.Status}}' | sed 's/ Up .*/ Up/' | sort
        docker images -q --no-trunc | sort
    } >"$1"
}
# minion_says METHOD PATH CODES...: the minion answers one of CODES with a JSON body.
minion_says() {
    local method=$1 path=$2 code
    shift 2
    code=$(http_code "$method" "$MINION$path" "$WORK/minion-body" \
        -H 'Content-Type: application/json' -d '{"Image": "'"$WORKLOAD_IMAGE"'", "Cmd": ["true"]}')
    [[ " $* " == *" $code "* ]] && python3 -c 'import json, sys; json.load(open(sys.argv[1]))' "$WORK/minion-body" 2>/dev/null
}
minion_get() {
    local path=$1 want=$2
    [ "$(http_code GET "$MINION$path" "$WORK/minion-body")" = "$want" ]
}
snapshot_daemon "$WORK/before"
check "minion refuses POST /containers/create (403/405, JSON)" minion_says POST '/containers/create?name=evil' 403 405
check "minion refuses POST /containers/{id}/kill" minion_says POST "/containers/$SIDECAR/kill" 403 405
check "minion refuses POST /containers/{id}/exec" minion_says POST "/containers/$SIDECAR/exec" 403 405
check "minion refuses DELETE /containers/{id}" minion_says DELETE "/containers/$SIDECAR?force=1" 403 405
check "minion refuses PUT on an allowed path" minion_says PUT "/containers/$SIDECAR/json" 405
check "minion refuses POST /images/create (a pull)" minion_says POST '/images/create?fromImage=busybox' 403 405
check "minion refuses top with other ps arguments" minion_says GET "/containers/$WEB/top?ps_args=ef" 403
check "minion refuses a query on /containers/json" minion_says GET '/containers/json?all=1' 403
check "minion refuses an encoded path escape" minion_says GET '/containers/%2e%2e%2fimages%2fjson/json' 403
check "minion refuses a doubly encoded path escape" minion_says GET '/containers/%252e%252e/json' 403
snapshot_daemon "$WORK/after"
check "no container or image was created, removed or stopped through the minion" diff "$WORK/before" "$WORK/after"

check "minion forwards GET /containers/json with our containers" bash -c \
    "curl -fsS '$MINION/containers/json' | python3 -c 'import json, sys; ids = {c[\"Id\"] for c in json.load(sys.stdin)}; sys.exit(not {\"$WEB\", \"$DB\", \"$LONER\"} <= ids)'"
check "minion forwards GET /containers/{id}/json" bash -c \
    "curl -fsS '$MINION/containers/$DB/json' | python3 -c 'import json, sys; sys.exit(json.load(sys.stdin)[\"Id\"] != \"$DB\")'"
check "minion forwards GET /containers/{id}/top?ps_args=aux" bash -c \
    "curl -fsS '$MINION/containers/$WEB/top?ps_args=aux' | python3 -c 'import json, sys; sys.exit(len(json.load(sys.stdin)[\"Processes\"]) != 3)'"
check "minion forwards GET /images/{id}/json" minion_get "/images/$(image_of "$WORKLOAD_IMAGE")/json" 200
check "minion passes the daemon's 404 through" minion_get /containers/no-such-container/json 404

# --- simulator and master on the host -------------------------------------------------------
SIM_PORT=$(free_port)
MASTER_PORT=$(free_port)
"$BIN" simulate --kube-objects "$WORK/kube-objects.json" --port "$SIM_PORT" >"$WORK/sim.log" 2>&1 &
SIM_PID=$!
at_exit "kill $SIM_PID"
dump_logs() {
    echo "--- minion log"
    docker logs cluster-insight-e2e-minion 2>&1 | tail -n 20
    echo "--- master log"
    tail -n 20 "$WORK/master.log" 2>/dev/null
    echo "--- simulator log"
    tail -n 20 "$WORK/sim.log"
}
if ! check "the simulator serves the objects (/api/v1/pods)" wait_http "http://127.0.0.1:$SIM_PORT/api/v1/pods" 30; then
    dump_logs
    summary_and_exit
fi
"$BIN" --mode master --bind 127.0.0.1 --port "$MASTER_PORT" --kubernetes-url "http://127.0.0.1:$SIM_PORT" \
    --docker-port "$MINION_PORT" --refresh-interval 1 >"$WORK/master.log" 2>&1 &
MASTER_PID=$!
at_exit "kill $MASTER_PID"
MASTER=http://127.0.0.1:$MASTER_PORT
check "the master answers /healthz" wait_http "$MASTER/healthz" 30

# Polls until the graph has its first snapshot with the workload containers (bounded).
got_graph=false
for ((i = 0; i < 60; i++)); do
    if curl -fsS --max-time 10 -o "$WORK/cluster.json" "$MASTER/cluster" 2>/dev/null &&
        grep -q "\"Container:$LONER\"" "$WORK/cluster.json"; then
        got_graph=true
        break
    fi
    sleep 1
done
if check "the master publishes a graph holding the containers" $got_graph; then
    python3 "$TESTS_DOCKER/e2e_check.py" "$WORK/spec.json" "$WORK/cluster.json" "$DOCKER_SOCKET" > "$WORK/check.out" 2>&1
    count_lines <"$WORK/check.out"
    grep -q '^Traceback' "$WORK/check.out" && fail "e2e_check.py crashed"
fi
check "the master's /status answers JSON" bash -c \
    "curl -fsS '$MASTER/status' | python3 -c 'import json, sys; json.load(sys.stdin)'"

[ "$FAILED" -eq 0 ] || dump_logs
summary_and_exit
