#!/usr/bin/env bash
# install.sh against a real, private Docker daemon: builds the scratch image, saves it to a
# tarball, installs minion and master from it on loopback ports, checks that each answers,
# that a second run replaces rather than adds, that --uninstall removes, that failures end in
# `FAILED: reason`, and (where sshd can run) the manual install piped over ssh.
# Skips loudly where no Docker daemon can run; under CI=true that is a failure.
# shellcheck disable=SC2317 # the check functions are called through `check`
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

# The image install.sh runs by default: cluster-insight:VERSION, from Cargo.toml.
IMAGE=cluster-insight:$(sed -n 's/^version = "\(.*\)"$/\1/p' "$REPO/Cargo.toml" | head -n 1)
LABEL=cluster-insight.install.mode

# The scripts a user runs, and these tests, are shellcheck-clean.
if ! command -v shellcheck >/dev/null 2>&1 && [ "${CI:-}" = true ] && [ "$(id -u)" -eq 0 ]; then
    { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; } >/dev/null 2>&1
fi
if command -v shellcheck >/dev/null 2>&1; then
    check "shellcheck: install.sh, scripts/build-image.sh, tests/docker/*.sh, tests/suites/{install,docker_e2e}.sh" \
        bash -c "cd '$REPO' && shellcheck -x install.sh scripts/build-image.sh tests/docker/*.sh tests/suites/install.sh tests/suites/docker_e2e.sh"
else
    printf '\n*** shellcheck not installed: scripts not linted ***\n\n'
fi

start_private_dockerd
temp_dir WORK || { fail "cannot make a temporary directory"; summary_and_exit; }

if ! build_image "$IMAGE" >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log"
    fail "scripts/build-image.sh $IMAGE"
    summary_and_exit
fi
pass "scripts/build-image.sh builds $IMAGE ($(grep -E '^(binary|image) ' "$WORK/build.log" | tr '\n' ' '))"
TAR=$WORK/cluster-insight.tar
check "docker save the image to a tarball" docker save -o "$TAR" "$IMAGE"
# The installs below must get the image from the tarball, not find it already there.
docker rmi -f "$IMAGE" >/dev/null 2>&1
check "the image is gone from the daemon before the install" bash -c "! docker image inspect '$IMAGE' >/dev/null 2>&1"

MINION_PORT=$(free_port)
MASTER_PORT=$(free_port)
while [ "$MASTER_PORT" = "$MINION_PORT" ]; do MASTER_PORT=$(free_port); done

# run_install NAME ARGS...: runs install.sh, its output in $WORK/NAME.out, exit code in RC.
run_install() {
    local name=$1
    shift
    RC=0
    bash "$REPO/install.sh" "$@" >"$WORK/$name.out" 2>&1 || RC=$?
    sed "s/^/    [$name] /" "$WORK/$name.out"
}

all_done() {
    [ "$RC" -eq 0 ] && [ "$(tail -n 1 "$WORK/$1.out")" = "ALL DONE" ]
}

# failed_with NAME PATTERN: non-zero exit and a `FAILED: ...PATTERN...` line.
failed_with() {
    [ "$RC" -ne 0 ] && grep -q "^FAILED: .*$2" "$WORK/$1.out" && ! grep -q '^ALL DONE' "$WORK/$1.out"
}

count_containers() {
    docker ps -aq --filter "label=$LABEL=$1" | wc -l
}

one_running() {
    [ "$(count_containers "$1")" -eq 1 ] &&
        [ "$(docker inspect -f '{{.State.Running}}' "cluster-insight-$1" 2>/dev/null)" = true ]
}

# The token every install here uses: install.sh makes it at the first install.
TOKEN=$WORK/secrets/token
AUTH=(--auth-token-file "$TOKEN")

# curl with the token.
curl_auth() {
    curl -H "Authorization: Bearer $(cat "$TOKEN")" "$@"
}

# status_of URL [curl args...]: the HTTP status of a GET of URL.
status_of() {
    local url=$1
    shift
    curl -sS --max-time 5 -o /dev/null -w '%{http_code}' "$@" "$url" 2>/dev/null
}

token_made() {
    grep -qxE '[0-9a-f]{64}' "$TOKEN" && [ "$(stat -c %a "$TOKEN")" = 600 ] &&
        grep -q "made a new token in $TOKEN" "$WORK/minion1.out"
}

minion_refuses_strangers() {
    local minion=http://127.0.0.1:$MINION_PORT
    [ "$(status_of "$minion/node")" = 401 ] && [ "$(status_of "$minion/healthz")" = 200 ] &&
        [ "$(status_of "$minion/node" -H 'Authorization: Bearer wrong')" = 401 ]
}

master_needs_the_token() {
    local master=http://127.0.0.1:$MASTER_PORT
    [ "$(status_of "$master/status")" = 401 ] &&
        [ "$(status_of "$master/status" -H "Authorization: Bearer $(cat "$TOKEN")")" = 200 ]
}

minion_answers() {
    [ "$(curl_auth -fsS --max-time 5 "http://127.0.0.1:$MINION_PORT/_ping")" = OK ] &&
        curl_auth -fsS --max-time 5 "http://127.0.0.1:$MINION_PORT/containers/json" |
        python3 -c 'import json, sys; assert isinstance(json.load(sys.stdin), list)'
}

master_answers() {
    curl -fsS --max-time 5 "http://127.0.0.1:$MASTER_PORT/healthz" |
        python3 -c 'import json, sys; d = json.load(sys.stdin); assert d["success"] is True and d["health"] == "OK", d'
}

# --- minion -------------------------------------------------------------------------------
run_install minion1 minion --image-tar "$TAR" --port "$MINION_PORT" "${AUTH[@]}"
check "minion install from the tarball ends with ALL DONE" all_done minion1
check "it made the token: 64 hex digits, readable by root only, and said where" token_made
check "the minion refuses callers without the token or with a wrong one (401), answers /healthz to all" \
    minion_refuses_strangers
check "the minion answers /_ping and /containers/json on port $MINION_PORT" minion_answers
check "exactly one minion container, running" one_running minion
check "the minion container mounts the daemon's socket read-only" bash -c \
    "docker inspect -f '{{range .Mounts}}{{.Source}}:{{.Destination}}:{{.RW}} {{end}}' cluster-insight-minion |
     grep -qF '$DOCKER_SOCKET:/var/run/docker.sock:false'"
check "the minion container uses the host network, restarts unless stopped, has an init" bash -c \
    "[ \"\$(docker inspect -f '{{.HostConfig.NetworkMode}} {{.HostConfig.RestartPolicy.Name}} {{.HostConfig.Init}}' cluster-insight-minion)\" = 'host unless-stopped true' ]"
check "the minion container shares the host's PID namespace (processes from /proc)" bash -c \
    "[ \"\$(docker inspect -f '{{.HostConfig.PidMode}}' cluster-insight-minion)\" = host ]"
check "the minion reads Docker and the host's processes: /node answers with processes from /proc" bash -c \
    "curl -fsS --max-time 10 -H \"Authorization: Bearer \$(cat '$TOKEN')\" 'http://127.0.0.1:$MINION_PORT/node' | python3 -c 'import json, sys; d = json.load(sys.stdin); assert d[\"runtime\"][\"name\"] == \"docker\" and d[\"processes\"][\"source\"] == \"proc\", d[\"processes\"]'"
first_minion=$(docker inspect -f '{{.Id}}' cluster-insight-minion 2>/dev/null)

run_install minion2 minion --image-tar "$TAR" --port "$MINION_PORT" "${AUTH[@]}"
check "a second minion install ends with ALL DONE" all_done minion2
check "after the second install: still exactly one minion container" one_running minion
check "the second install replaced the first container" bash -c \
    "[ \"\$(docker inspect -f '{{.Id}}' cluster-insight-minion)\" != '$first_minion' ]"
check "the minion still answers" minion_answers

# --- master -------------------------------------------------------------------------------
# Nothing serves the Kubernetes API here: the master must serve /healthz regardless.
UNUSED_PORT=$(free_port)
FLAGS="--bind 127.0.0.1 --kubernetes-url http://127.0.0.1:$UNUSED_PORT --docker-port $MINION_PORT --refresh-interval 1"
run_install master1 master --image-tar "$TAR" --port "$MASTER_PORT" --master-flags "$FLAGS" "${AUTH[@]}"
check "master install from the tarball ends with ALL DONE" all_done master1
check "the master answers /healthz on port $MASTER_PORT" master_answers
check "exactly one master container, running" one_running master
check "the master flags reach the binary, after the token's" bash -c \
    "[ \"\$(docker inspect -f '{{join .Args \" \"}}' cluster-insight-master)\" = '--port $MASTER_PORT --auth-token-file /run/secrets/cluster-insight/token $FLAGS' ]"
check "the master answers /status with the token only (401 without)" master_needs_the_token
check "the master container gets CLUSTER_INSIGHT_MODE=master" bash -c \
    "docker inspect -f '{{range .Config.Env}}{{println .}}{{end}}' cluster-insight-master | grep -qx CLUSTER_INSIGHT_MODE=master"

# A second run, piped on stdin as over ssh, finding the image already loaded.
RC=0
bash -s -- master --port "$MASTER_PORT" --master-flags "$FLAGS" "${AUTH[@]}" <"$REPO/install.sh" >"$WORK/master2.out" 2>&1 || RC=$?
sed 's/^/    [master2] /' "$WORK/master2.out"
check "a second master install, read from stdin, ends with ALL DONE" all_done master2
check "it used the local image" grep -q "using the local image $IMAGE" "$WORK/master2.out"
check "after the second install: still exactly one master container" one_running master
check "the master still answers" master_answers
check "the minion was left alone by the master installs" one_running minion

# --- failures -----------------------------------------------------------------------------
run_install auth-in-flags master --image "$IMAGE" --port "$MASTER_PORT" --master-flags "--no-auth" "${AUTH[@]}"
check "authorization given in --master-flags is refused (exit 2), install.sh's own flags say it" bash -c \
    "[ $RC -eq 2 ] && grep -q 'give authorization with install.sh' '$WORK/auth-in-flags.out'"

run_install bad-flag master --image "$IMAGE" --port "$MASTER_PORT" --master-flags "--no-such-flag" --wait 20 "${AUTH[@]}"
check "a master that exits at start-up (unknown flag) gives FAILED" failed_with bad-flag "stopped"
check "... and leaves no master container behind" bash -c "[ \"\$(docker ps -aq --filter label=$LABEL=master | wc -l)\" -eq 0 ]"

python3 -m http.server "$MASTER_PORT" --bind 127.0.0.1 >/dev/null 2>&1 &
squatter=$!
at_exit "kill $squatter"
wait_http "http://127.0.0.1:$MASTER_PORT/" 10
run_install port-taken master --image "$IMAGE" --port "$MASTER_PORT" "${AUTH[@]}"
check "a port already in use gives FAILED with the reason" failed_with port-taken "port $MASTER_PORT .* already in use"
kill "$squatter" 2>/dev/null
wait "$squatter" 2>/dev/null

run_install no-image minion --image cluster-insight-test/no-such-image --port "$((MINION_PORT))" --wait 5 "${AUTH[@]}"
check "an image that is neither local nor pullable gives FAILED" failed_with no-image "cannot pull image cluster-insight-test/no-such-image"
printf 'not a tar archive\n' >"$WORK/bad.tar"
run_install bad-tar minion --image-tar "$WORK/bad.tar" --port "$MINION_PORT" "${AUTH[@]}"
check "a corrupt image tarball gives FAILED" failed_with bad-tar "docker load"
run_install no-tar minion --image-tar "$WORK/missing.tar" --port "$MINION_PORT" "${AUTH[@]}"
check "a missing image tarball gives FAILED" failed_with no-tar "cannot read the image tarball"
check "the failed minion installs left the running minion in place" one_running minion

RC=0
DOCKER_HOST="unix://$WORK/no-daemon.sock" bash "$REPO/install.sh" minion --port "$MINION_PORT" "${AUTH[@]}" >"$WORK/no-daemon.out" 2>&1 || RC=$?
sed 's/^/    [no-daemon] /' "$WORK/no-daemon.out"
check "Docker not running gives FAILED with the reason" failed_with no-daemon "Docker daemon is not running or not reachable"
RC=0
PATH=/nonexistent /bin/bash "$REPO/install.sh" minion >"$WORK/no-docker.out" 2>&1 || RC=$?
sed 's/^/    [no-docker] /' "$WORK/no-docker.out"
check "Docker not installed gives FAILED with the reason" failed_with no-docker "docker is not installed"
run_install bad-usage minion --port notaport
check "a bad --port is refused with exit code 2" bash -c "[ $RC -eq 2 ] && grep -q '^FAILED: --port' '$WORK/bad-usage.out'"

# --- uninstall ----------------------------------------------------------------------------
run_install uninstall-master --uninstall master
check "--uninstall master ends with ALL DONE" all_done uninstall-master
check "... and says it removed nothing, the master being gone already" grep -q 'no Cluster Insight master container' "$WORK/uninstall-master.out"
run_install uninstall --uninstall
check "--uninstall ends with ALL DONE and says what it removed" bash -c \
    "[ $RC -eq 0 ] && grep -q 'removed container cluster-insight-minion' '$WORK/uninstall.out'"
check "no Cluster Insight container is left" bash -c "[ \"\$(docker ps -aq --filter label=$LABEL | wc -l)\" -eq 0 ]"

# --- the manual install over ssh ----------------------------------------------------------
# Starts sshd on 127.0.0.1 with keys of its own; on failure, SSH_WHY says why.
ssh_setup() {
    [ "$(id -u)" -eq 0 ] || { SSH_WHY="not root"; return 1; }
    local tool
    # On a CI machine, install sshd; elsewhere, installing it would start a system sshd.
    if [ "${CI:-}" = true ] && [ ! -x /usr/sbin/sshd ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq openssh-server openssh-client; } >/dev/null 2>&1
    fi
    for tool in /usr/sbin/sshd ssh ssh-keygen; do
        command -v "$tool" >/dev/null 2>&1 || { SSH_WHY="$tool missing (apt-get install openssh-server)"; return 1; }
    done
    SSH_DIR=$WORK/ssh
    SSH_WHY="cannot make keys in $SSH_DIR"
    { mkdir -p "$SSH_DIR" /run/sshd && chmod 700 "$SSH_DIR"; } || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/host_key" || return 1
    ssh-keygen -q -t ed25519 -N '' -f "$SSH_DIR/user_key" || return 1
    cp "$SSH_DIR/user_key.pub" "$SSH_DIR/authorized_keys"
    SSH_PORT=$(free_port)
    printf '[127.0.0.1]:%s %s\n' "$SSH_PORT" "$(cut -d' ' -f1-2 "$SSH_DIR/host_key.pub")" >"$SSH_DIR/known_hosts"
    cat >"$SSH_DIR/sshd_config" <<EOF
ListenAddress 127.0.0.1
Port $SSH_PORT
HostKey $SSH_DIR/host_key
PidFile $SSH_DIR/sshd.pid
AuthorizedKeysFile $SSH_DIR/authorized_keys
PermitRootLogin prohibit-password
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
UsePAM no
StrictModes no
EOF
    /usr/sbin/sshd -D -e -f "$SSH_DIR/sshd_config" >"$SSH_DIR/sshd.log" 2>&1 &
    SSHD_PID=$!
    at_exit "kill $SSHD_PID"
    local i
    for ((i = 0; i < 20; i++)); do
        bash -c 'exec 3<>"/dev/tcp/127.0.0.1/$0"' "$SSH_PORT" 2>/dev/null && return 0
        kill -0 "$SSHD_PID" 2>/dev/null || break
        sleep 0.5
    done
    SSH_WHY="sshd did not start: $(tail -n 3 "$SSH_DIR/sshd.log")"
    return 1
}

SSH_WHY=''
if ssh_setup; then
    RC=0
    ssh -p "$SSH_PORT" -i "$SSH_DIR/user_key" -F /dev/null -o BatchMode=yes -o IdentitiesOnly=yes \
        -o StrictHostKeyChecking=yes -o UserKnownHostsFile="$SSH_DIR/known_hosts" root@127.0.0.1 \
        "DOCKER_HOST=$DOCKER_HOST bash -s -- minion --image $IMAGE --port $MINION_PORT --auth-token-file $TOKEN" \
        <"$REPO/install.sh" >"$WORK/ssh.out" 2>&1 || RC=$?
    sed 's/^/    [ssh] /' "$WORK/ssh.out"
    check "install.sh piped over ssh (bash -s -- minion ...) ends with ALL DONE" all_done ssh
    check "the minion installed over ssh answers" minion_answers
    check "exactly one minion container after the ssh install" one_running minion
    run_install uninstall-ssh --uninstall minion
    check "--uninstall minion removes it" bash -c "[ $RC -eq 0 ] && [ \"\$(docker ps -aq --filter label=$LABEL | wc -l)\" -eq 0 ]"
else
    printf '\n*** ssh install not tested: %s ***\n\n' "$SSH_WHY"
fi

summary_and_exit
