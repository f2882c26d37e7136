#!/usr/bin/env bash
# A private Docker daemon for tests: its own socket, data root, exec root, pidfile, containerd
# namespace and log, all under one directory, and no iptables rules or bridge, so that it never
# disturbs another daemon on the host. Containers on it use --net=host or --net=none.
#
#   tests/docker/dockerd.sh start DIR   start it; prints DOCKER_HOST=unix://DIR/docker.sock
#   tests/docker/dockerd.sh stop DIR    remove its containers, stop it, unmount and delete DIR
#
# Exit codes of `start`: 0 running, 77 no daemon can run here (the reason is printed), 1 other
# errors. Callers decide whether 77 skips (default) or fails (CI=true).
set -uo pipefail

START_TIMEOUT=${DOCKERD_START_TIMEOUT:-60}
STOP_TIMEOUT=${DOCKERD_STOP_TIMEOUT:-30}
# A Unix socket path holds at most 107 bytes; containerd's socket lives deepest.
MAX_DIR_LEN=60
# Marks a directory as one this script made, so that `stop` deletes nothing else.
MARKER=.private-dockerd

say() { printf 'dockerd.sh: %s\n' "$*" >&2; }

cannot_run() {
    say "================================================================"
    say "NO DOCKER DAEMON CAN RUN HERE: $*"
    say "================================================================"
    exit 77
}

usage() {
    say "usage: $0 start|stop DIR"
    exit 2
}

absolute_dir() {
    case $1 in
        /*) printf '%s\n' "${1%/}" ;;
        *) printf '%s/%s\n' "$PWD" "${1%/}" ;;
    esac
}

pid_alive() {
    [ -n "$1" ] && kill -0 "$1" 2>/dev/null
}

daemon_pid() {
    local pid=
    [ -r "$DIR/dockerd.pid" ] && read -r pid <"$DIR/dockerd.pid"
    printf '%s\n' "$pid"
}

answers() {
    timeout 5 docker -H "unix://$DIR/docker.sock" version >/dev/null 2>&1
}

ensure_dockerd() {
    command -v dockerd >/dev/null 2>&1 && return 0
    [ "$(id -u)" -eq 0 ] || cannot_run "dockerd is not installed and we are not root to install it (apt-get install docker.io)"
    command -v apt-get >/dev/null 2>&1 || cannot_run "dockerd is not installed and there is no apt-get to install it"
    say "dockerd missing: installing Debian's docker.io"
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq docker.io; } >"$DIR/apt.log" 2>&1; then
        tail -n 20 "$DIR/apt.log" >&2
        cannot_run "apt-get install docker.io failed (log above)"
    fi
    command -v dockerd >/dev/null 2>&1 || cannot_run "docker.io installed but dockerd is still not on PATH"
}

start() {
    mkdir -p "$DIR" || exit 1
    # DIR is deleted at stop: take it only when empty or already ours.
    if [ ! -e "$DIR/$MARKER" ]; then
        [ -z "$(ls -A "$DIR")" ] || { say "$DIR is not empty and not a private dockerd directory"; exit 1; }
        : >"$DIR/$MARKER"
    fi
    if pid_alive "$(daemon_pid)" && answers; then
        say "already running for $DIR"
        printf 'DOCKER_HOST=unix://%s/docker.sock\n' "$DIR"
        return 0
    fi
    [ "${#DIR}" -le "$MAX_DIR_LEN" ] || { say "DIR too long for Unix socket paths (max $MAX_DIR_LEN bytes): $DIR"; exit 1; }
    [ "$(id -u)" -eq 0 ] || cannot_run "dockerd needs root (we are uid $(id -u))"
    command -v docker >/dev/null 2>&1 || cannot_run "the docker CLI is not installed"
    ensure_dockerd

    # An empty config file keeps the host's /etc/docker/daemon.json (hosts, bridges, ...) out.
    printf '{}\n' >"$DIR/daemon.json"
    local ns
    ns="test-$(basename "$DIR" | tr -c 'A-Za-z0-9\n' '-')"
    local args=(
        --host "unix://$DIR/docker.sock"
        --data-root "$DIR/data"
        --exec-root "$DIR/exec"
        --pidfile "$DIR/dockerd.pid"
        --config-file "$DIR/daemon.json"
        --containerd-namespace "$ns"
        --containerd-plugins-namespace "$ns-plugins"
        --iptables=false --ip6tables=false --ip-masq=false --bridge=none
    )
    [ -n "${DOCKERD_STORAGE_DRIVER:-}" ] && args+=(--storage-driver "$DOCKERD_STORAGE_DRIVER")
    # setsid: the daemon must not receive the signals meant for the test's process group.
    setsid dockerd "${args[@]}" >"$DIR/dockerd.log" 2>&1 </dev/null &
    local launcher=$!
    local waited=0
    until answers; do
        if ! pid_alive "$launcher" && ! pid_alive "$(daemon_pid)"; then
            tail -n 25 "$DIR/dockerd.log" >&2
            cannot_run "dockerd exited during start-up (log above, full log in $DIR/dockerd.log)"
        fi
        if [ "$waited" -ge "$START_TIMEOUT" ]; then
            tail -n 25 "$DIR/dockerd.log" >&2
            kill "$launcher" 2>/dev/null
            cannot_run "dockerd did not answer within ${START_TIMEOUT}s (log above)"
        fi
        sleep 1
        waited=$((waited + 1))
    done
    say "dockerd $(docker -H "unix://$DIR/docker.sock" version --format '{{.Server.Version}}' 2>/dev/null) running on unix://$DIR/docker.sock (pid $(daemon_pid))"
    printf 'DOCKER_HOST=unix://%s/docker.sock\n' "$DIR"
}

shim_pids() {
    # Pure bash: a helper process would carry the address in its own arguments and match itself.
    local f i args
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d '' args 2>/dev/null <"$f" || continue
        for ((i = 0; i + 1 < ${#args[@]}; i++)); do
            if [ "${args[i]}" = -address ] && [ "${args[i + 1]}" = "$1" ]; then
                f=${f#/proc/}
                printf '%s\n' "${f%/cmdline}"
                break
            fi
        done
    done
}

unmount_under() {
    # Deepest first; the daemon leaves its netns and overlay mounts behind when killed.
    local mounts
    mounts=$(awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r)
    local m
    for m in $mounts; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
    done
}

stop() {
    [ -d "$DIR" ] || return 0
    [ -e "$DIR/$MARKER" ] || { say "$DIR is not a private dockerd directory: left alone"; exit 1; }
    local pid
    pid=$(daemon_pid)
    if pid_alive "$pid"; then
        if answers; then
            local ids
            ids=$(docker -H "unix://$DIR/docker.sock" ps -aq 2>/dev/null)
            # shellcheck disable=SC2086 # one word per container id
            [ -n "$ids" ] && docker -H "unix://$DIR/docker.sock" rm -f $ids >/dev/null 2>&1
        fi
        kill -TERM "$pid" 2>/dev/null
        local waited=0
        while pid_alive "$pid" && [ "$waited" -lt "$((STOP_TIMEOUT * 2))" ]; do
            sleep 0.5
            waited=$((waited + 1))
        done
        if pid_alive "$pid"; then
            say "dockerd $pid did not stop in ${STOP_TIMEOUT}s: killing it"
            kill -KILL "$pid" 2>/dev/null
            sleep 1
        fi
    fi
    # A daemon that had to be killed leaves its containerd, the containers' first processes and
    # their shims behind: all are ours, found by the pidfiles under DIR and by the exact address
    # of our private containerd socket, which nothing else uses.
    local p
    for p in $(cat "$DIR/exec/containerd/containerd.pid" 2>/dev/null) \
        $(find "$DIR/exec" -name init.pid -exec cat {} + 2>/dev/null) \
        $(shim_pids "$DIR/exec/containerd/containerd.sock"); do
        kill -KILL "$p" 2>/dev/null
    done
    unmount_under
    rm -rf "$DIR" 2>/dev/null || { sleep 1; unmount_under; rm -rf "$DIR"; } || say "could not remove $DIR"
}

{ [ $# -eq 2 ] && [ -n "$2" ]; } || usage
DIR=$(absolute_dir "$2")
# Everything under DIR is the daemon's and is deleted at stop: never the root or a home.
case $DIR in / | "$HOME" | /tmp | /var | /var/lib | /root | /home) usage ;; esac
case $1 in
    start) start ;;
    stop) stop ;;
    *) usage ;;
esac
