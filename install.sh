#!/usr/bin/env bash
# Installs and starts Cluster Insight on this host, in Docker, as master or minion.
#
# Run it on the host itself, or pipe it over ssh (a manual install, e.g. on AWS):
#   sudo bash install.sh minion
#   ssh HOST 'sudo bash -s -- minion --image cluster-insight:0.1.0' < install.sh
#
# It checks that Docker runs, obtains the image (from --image-tar, else the local image, else
# `docker pull`), makes sure of the shared token callers must present (--auth-token-file,
# made when missing), replaces any earlier Cluster Insight container of the same mode, starts
# the new one with --net=host and --restart unless-stopped, and waits until it answers on
# 127.0.0.1 (or the --bind address in --master-flags). The last line is `ALL DONE`, or
# `FAILED: reason` with a non-zero exit code.
# Running it twice leaves exactly one container per mode. DOCKER_HOST is honoured.

usage() {
    cat <<'EOF'
usage: install.sh [OPTIONS] master|minion
       install.sh --uninstall [master|minion]

  --image NAME           image to run (default cluster-insight:0.1.0)
  --image-tar FILE       `docker load` the image from FILE first (from `docker save`);
                         without --image, the image named in FILE is run
  --port N               port to serve on (default 5555 master, 4243 minion)
  --docker-socket PATH   minion: the Docker daemon's socket on this host, mounted read-only
                         (default: the socket of DOCKER_HOST, else /var/run/docker.sock)
  --master-flags "FLAGS" master: extra flags, split on spaces (no quoting), e.g.
                         "--kubernetes-url https://10.0.0.1:6443 --token-file /t"
  --auth-token-file PATH the token every caller must present, the same file on every host
                         of the cluster (the master presents it to the minions); made
                         (random, mode 0600) when missing (default
                         /etc/cluster-insight/token)
  --no-auth              let every caller that reaches the port read (not recommended)
  --name NAME            container name (default cluster-insight-MODE)
  --wait SECS            how long to wait for the service to answer (default 60)
  --uninstall            remove the Cluster Insight container(s) of MODE, or of both modes
  -h, --help             this text
EOF
}

# Marks the containers this script creates, so that a re-run finds them whatever their name.
MODE_LABEL=cluster-insight.install.mode
# Where the token file is mounted in the container.
TOKEN_IN_CONTAINER=/run/secrets/cluster-insight/token

say() { printf 'install.sh: %s\n' "$*"; }

fail() {
    printf 'FAILED: %s\n' "$*" >&2
    exit 1
}

usage_error() {
    printf 'FAILED: %s (see install.sh --help)\n' "$*" >&2
    exit 2
}

have() { command -v "$1" >/dev/null 2>&1; }

# Runs a quick docker command under a time limit, so a hung daemon cannot hang the install.
docker_quick() {
    if have timeout; then
        timeout 30 docker "$@"
    else
        docker "$@"
    fi
}

is_port() {
    [[ $1 =~ ^[0-9]{1,5}$ ]] && [ "$1" -ge 1 ] && [ "$1" -le 65535 ]
}

# True when something answers HTTP 2xx on $PROBE_HOST:PORT at PATH.
http_ok() {
    local port=$1 path=$2
    if have curl; then
        curl -fsS --max-time 3 -o /dev/null "http://$(url_host "$PROBE_HOST"):$port$path" 2>/dev/null
        return
    fi
    # No curl: bash's /dev/tcp, in a subshell under a time limit when `timeout` exists.
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    local probe='exec 3<>"/dev/tcp/$2/$0" || exit 1
        printf "GET %s HTTP/1.0\r\nHost: %s\r\n\r\n" "$1" "$2" >&3
        IFS=" " read -r _ status _ <&3
        [[ $status == 2?? ]]'
    if have timeout; then
        timeout 3 bash -c "$probe" "$port" "$path" "$PROBE_HOST" 2>/dev/null
    else
        bash -c "$probe" "$port" "$path" "$PROBE_HOST" 2>/dev/null
    fi
}

url_host() {
    case $1 in *:*) printf '[%s]' "$1" ;; *) printf '%s' "$1" ;; esac
}

# True when something accepts TCP connections on $PROBE_HOST:PORT.
port_busy() {
    # shellcheck disable=SC2016 # expanded by the inner bash, from its arguments
    if have timeout; then
        timeout 3 bash -c 'exec 3<>"/dev/tcp/$1/$0"' "$1" "$PROBE_HOST" 2>/dev/null
    else
        bash -c 'exec 3<>"/dev/tcp/$1/$0"' "$1" "$PROBE_HOST" 2>/dev/null
    fi
}

check_docker() {
    have docker || fail "docker is not installed on this host: install Docker (e.g. 'apt-get install docker.io') and start it"
    local out
    if ! out=$(docker_quick version --format '{{.Server.Version}}' 2>&1); then
        fail "the Docker daemon is not running or not reachable at ${DOCKER_HOST:-unix:///var/run/docker.sock}: $(printf '%s' "$out" | tail -n 1). Start it (e.g. 'sudo service docker start') or run this script as a user allowed to use Docker"
    fi
    say "Docker $out at ${DOCKER_HOST:-unix:///var/run/docker.sock}"
}

# Prints the ids of this mode's containers: those labelled by an earlier run, and any
# container holding the name this run will use.
existing_containers() {
    local mode=$1 name=$2
    {
        docker_quick ps -aq --no-trunc --filter "label=$MODE_LABEL=$mode"
        docker_quick container inspect -f '{{.Id}}' "$name" 2>/dev/null
    } | sort -u
}

remove_containers() {
    local mode=$1 name=$2 id cname
    for id in $(existing_containers "$mode" "$name"); do
        cname=$(docker_quick container inspect -f '{{.Name}}' "$id" 2>/dev/null)
        docker_quick rm -f "$id" >/dev/null || fail "cannot remove the existing container ${cname#/} ($id)"
        say "removed container ${cname#/} (${id:0:12})"
        REMOVED=$((REMOVED + 1))
    done
}

obtain_image() {
    local out loaded
    if [ -n "$IMAGE_TAR" ]; then
        { [ -f "$IMAGE_TAR" ] && [ -r "$IMAGE_TAR" ]; } || fail "cannot read the image tarball $IMAGE_TAR"
        out=$(docker load -i "$IMAGE_TAR" 2>&1) || fail "docker load -i $IMAGE_TAR: $(printf '%s' "$out" | tail -n 1)"
        loaded=$(printf '%s\n' "$out" | sed -n 's/^Loaded image: //p; s/^Loaded image ID: //p' | head -n 1)
        [ -n "$loaded" ] || fail "docker load -i $IMAGE_TAR loaded no image: $(printf '%s' "$out" | tail -n 1)"
        say "loaded $loaded from $IMAGE_TAR"
        [ "$IMAGE_GIVEN" = 1 ] || IMAGE=$loaded
        docker_quick image inspect "$IMAGE" >/dev/null 2>&1 || fail "image $IMAGE is not in $IMAGE_TAR (it holds $loaded)"
    elif docker_quick image inspect "$IMAGE" >/dev/null 2>&1; then
        say "using the local image $IMAGE"
    else
        say "pulling $IMAGE"
        out=$(docker pull "$IMAGE" 2>&1) || fail "cannot pull image $IMAGE: $(printf '%s' "$out" | tail -n 1)"
    fi
    IMAGE_ID=$(docker_quick image inspect -f '{{.Id}}' "$IMAGE") || fail "image $IMAGE vanished"
}

# Makes sure TOKEN_FILE holds a token: made from 32 random bytes when there is no file yet,
# readable by root only; an existing file is used as it is (it must hold a token).
ensure_token() {
    if [ ! -e "$TOKEN_FILE" ]; then
        local dir token
        dir=$(dirname "$TOKEN_FILE")
        mkdir -p "$dir" || fail "cannot make $dir for the token"
        token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') || fail "cannot read /dev/urandom"
        [ ${#token} -eq 64 ] || fail "cannot make a token from /dev/urandom"
        (umask 077 && printf '%s\n' "$token" >"$TOKEN_FILE") || fail "cannot write the token to $TOKEN_FILE"
        say "made a new token in $TOKEN_FILE: copy this file to the same path on every other host of the cluster before installing there"
    fi
    { [ -f "$TOKEN_FILE" ] && [ -r "$TOKEN_FILE" ]; } || fail "cannot read the token file $TOKEN_FILE"
    grep -q '[^[:space:]]' "$TOKEN_FILE" || fail "the token file $TOKEN_FILE is empty"
    say "callers must present the token in $TOKEN_FILE (Authorization: Bearer)"
}

# A container that failed to serve is removed, so that no restart loop is left behind.
fail_started() {
    say "last log lines of $NAME:"
    docker_quick logs --tail 20 "$1" 2>&1 | sed 's/^/    /'
    docker_quick rm -f "$1" >/dev/null 2>&1
    fail "$2; its log is above and the container was removed"
}

# Waits until the new container answers, or fails as soon as it stops or restarts.
wait_until_serving() {
    local cid=$1 path=$2 state status restarts waited=0
    while :; do
        state=$(docker_quick inspect -f '{{.State.Status}} {{.RestartCount}}' "$cid" 2>/dev/null) ||
            fail "container $NAME disappeared"
        read -r status restarts <<<"$state"
        if [ "$status" = exited ] || [ "$status" = dead ] || [ "${restarts:-0}" -gt 0 ]; then
            fail_started "$cid" "container $NAME stopped (status $status, restarts $restarts)"
        fi
        http_ok "$PORT" "$path" && return 0
        [ "$waited" -lt "$WAIT" ] || fail_started "$cid" "container $NAME did not answer http://$(url_host "$PROBE_HOST"):$PORT$path within ${WAIT}s"
        sleep 1
        waited=$((waited + 1))
    done
}

install() {
    local path args=() cid flags=()
    check_docker
    case $MODE in
        master)
            : "${PORT:=5555}"
            path=/healthz
            read -r -a flags <<<"$MASTER_FLAGS"
            local i
            for ((i = 0; i < ${#flags[@]}; i++)); do
                case ${flags[i]} in
                    --port | --port=* | --mode | --mode=*) usage_error "give the port with --port and the mode as the argument, not in --master-flags" ;;
                    --auth-token-file | --auth-token-file=* | --no-auth | --delegated-auth | --minion-token-file | --minion-token-file=*)
                        usage_error "give authorization with install.sh's --auth-token-file or --no-auth, not in --master-flags" ;;
                    # A master bound to one address is probed there.
                    --bind) PROBE_HOST=${flags[i + 1]:-$PROBE_HOST} ;;
                    --bind=*) PROBE_HOST=${flags[i]#--bind=} ;;
                esac
            done
            case $PROBE_HOST in 0.0.0.0) PROBE_HOST=127.0.0.1 ;; ::) PROBE_HOST=::1 ;; esac
            ;;
        minion)
            : "${PORT:=4243}"
            path=/healthz
            [ -z "$MASTER_FLAGS" ] || usage_error "--master-flags is for master mode"
            if [ -z "$DOCKER_SOCKET" ]; then
                case ${DOCKER_HOST:-} in
                    '') DOCKER_SOCKET=/var/run/docker.sock ;;
                    unix://*) DOCKER_SOCKET=${DOCKER_HOST#unix://} ;;
                    *) fail "DOCKER_HOST=$DOCKER_HOST is not a local socket: give --docker-socket, the daemon's socket path on its host" ;;
                esac
            fi
            case ${DOCKER_HOST:-unix://} in
                unix://*) [ -S "$DOCKER_SOCKET" ] || fail "no Docker socket at $DOCKER_SOCKET (give --docker-socket)" ;;
            esac
            ;;
    esac
    : "${NAME:=cluster-insight-$MODE}"

    obtain_image
    if [ "$NO_AUTH" = 1 ]; then
        say "WARNING: --no-auth: every caller that reaches port $PORT may read"
    else
        ensure_token
    fi
    remove_containers "$MODE" "$NAME"
    port_busy "$PORT" && fail "port $PORT on $PROBE_HOST is already in use by another program (choose another with --port)"

    args=(--name "$NAME" --restart unless-stopped --net=host
        --label "$MODE_LABEL=$MODE" -e "CLUSTER_INSIGHT_MODE=$MODE")
    # The minion reads the daemon through its socket, and its containers' processes from
    # /proc in the host's PID namespace.
    [ "$MODE" = minion ] && args+=(-v "$DOCKER_SOCKET:/var/run/docker.sock:ro" --pid=host)
    [ "$NO_AUTH" = 1 ] || args+=(-v "$TOKEN_FILE:$TOKEN_IN_CONTAINER:ro")
    args+=("$IMAGE" --port "$PORT")
    [ "$MODE" = minion ] && args+=(--runtime-socket /var/run/docker.sock)
    if [ "$NO_AUTH" = 1 ]; then
        args+=(--no-auth)
    else
        args+=(--auth-token-file "$TOKEN_IN_CONTAINER")
    fi
    args+=("${flags[@]}")
    # --init: as PID 1 the binary would ignore SIGTERM, and every `docker stop` would wait
    # out the grace period. A daemon without its init binary still gets a working install.
    if ! cid=$(docker_quick run -d --init "${args[@]}" 2>&1); then
        case $cid in
            *docker-init*)
                say "this Docker daemon has no init binary: running without --init"
                docker_quick rm -f "$NAME" >/dev/null 2>&1
                cid=$(docker_quick run -d "${args[@]}" 2>&1) || fail "docker run of $IMAGE as $NAME: $(printf '%s' "$cid" | tail -n 1)"
                ;;
            *) fail "docker run of $IMAGE as $NAME: $(printf '%s' "$cid" | tail -n 1)" ;;
        esac
    fi
    cid=${cid##*$'\n'} # the ID is the last line, after any warnings
    say "started $NAME (${cid:0:12}) from $IMAGE ($(printf %.12s "${IMAGE_ID#sha256:}")), waiting for http://$(url_host "$PROBE_HOST"):$PORT$path"
    wait_until_serving "$cid" "$path"
    say "Cluster Insight $MODE is serving on port $PORT (container $NAME)"
    echo "ALL DONE"
}

uninstall() {
    check_docker
    local modes=(master minion) m
    [ -n "$MODE" ] && modes=("$MODE")
    [ -n "$NAME" ] && [ -z "$MODE" ] && usage_error "--name with --uninstall needs the mode"
    for m in "${modes[@]}"; do
        remove_containers "$m" "${NAME:-cluster-insight-$m}"
    done
    [ "$REMOVED" -gt 0 ] || say "no Cluster Insight ${MODE:-master or minion} container to remove"
    echo "ALL DONE"
}

main() {
    IMAGE=cluster-insight:0.1.0 IMAGE_GIVEN=0 IMAGE_TAR='' PORT='' DOCKER_SOCKET=''
    MASTER_FLAGS='' NAME='' WAIT=60 UNINSTALL=0 MODE='' REMOVED=0 IMAGE_ID='' PROBE_HOST=127.0.0.1
    TOKEN_FILE=/etc/cluster-insight/token NO_AUTH=0
    while [ $# -gt 0 ]; do
        case $1 in
            --*=*) set -- "${1%%=*}" "${1#*=}" "${@:2}" ;;
        esac
        case $1 in
            --image | --image-tar | --port | --docker-socket | --master-flags | --name | --wait | --auth-token-file)
                [ $# -ge 2 ] || usage_error "$1 needs a value"
                case $1 in
                    --image) IMAGE=$2 IMAGE_GIVEN=1 ;;
                    --image-tar) IMAGE_TAR=$2 ;;
                    --port) PORT=$2 ;;
                    --docker-socket) DOCKER_SOCKET=$2 ;;
                    --master-flags) MASTER_FLAGS=$2 ;;
                    --name) NAME=$2 ;;
                    --wait) WAIT=$2 ;;
                    --auth-token-file) TOKEN_FILE=$2 ;;
                esac
                shift 2
                ;;
            --uninstall) UNINSTALL=1 && shift ;;
            --no-auth) NO_AUTH=1 && shift ;;
            -h | --help) usage && exit 0 ;;
            master | minion)
                [ -z "$MODE" ] || usage_error "more than one mode given"
                MODE=$1 && shift
                ;;
            *) usage_error "unknown argument '$1'" ;;
        esac
    done
    [ -z "$PORT" ] || is_port "$PORT" || usage_error "--port must be a port number, not '$PORT'"
    [[ $WAIT =~ ^[0-9]+$ ]] || usage_error "--wait must be a number of seconds, not '$WAIT'"
    [ -n "$IMAGE" ] || usage_error "--image needs a name"
    [ -n "$TOKEN_FILE" ] || usage_error "--auth-token-file needs a path"
    case $TOKEN_FILE in *:* | *,*) usage_error "--auth-token-file: a path with ':' or ',' cannot be mounted" ;; esac
    # Docker mounts absolute paths only (a bare name would be a named volume).
    case $TOKEN_FILE in /*) ;; *) TOKEN_FILE=$PWD/$TOKEN_FILE ;; esac
    [ -z "$NAME" ] || [[ $NAME =~ ^[A-Za-z0-9][A-Za-z0-9_.-]*$ ]] || usage_error "--name '$NAME' is not a valid container name"
    if [ "$UNINSTALL" = 1 ]; then
        uninstall
    else
        [ -n "$MODE" ] || usage_error "give the mode: master or minion"
        install
    fi
}

# Everything above is only definitions, so bash has read the whole script before anything
# runs; stdin is then closed, so that no command can swallow the rest of a script piped in.
main "$@" </dev/null
exit
