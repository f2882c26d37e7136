# shellcheck shell=bash
# Shared by the Docker test suites (sourced): pass/fail counting, the summary line, a private
# Docker daemon that skips (or fails under CI=true) where none can run, free loopback ports,
# bounded HTTP polling, and cleanup on exit of everything a suite started.

TESTS_DOCKER=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$TESTS_DOCKER/../.." && pwd)
PASSED=0
FAILED=0
# Commands run at exit, last registered first.
CLEANUPS=()

pass() {
    PASSED=$((PASSED + 1))
    printf 'PASS: %s\n' "$*"
}

fail() {
    FAILED=$((FAILED + 1))
    printf 'FAIL: %s\n' "$*"
}

# check DESCRIPTION COMMAND...: one test, passed when COMMAND succeeds; returns its result.
check() {
    local what=$1
    shift
    if "$@"; then
        pass "$what"
    else
        fail "$what"
        return 1
    fi
}

# Adds the PASS/FAIL lines of a checker (one per line) to the counts, echoing them.
count_lines() {
    local line
    while IFS= read -r line; do
        case $line in
            PASS:*) PASSED=$((PASSED + 1)) ;;
            FAIL:*) FAILED=$((FAILED + 1)) ;;
        esac
        printf '%s\n' "$line"
    done
}

summary_and_exit() {
    printf '%s passed, %s failed\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

# Where the environment cannot run the suite at all: skip loudly, but fail under CI=true,
# where a skipped suite would hide a broken pipeline.
skip_suite() {
    if [ "${CI:-}" = true ]; then
        fail "$* (CI=true: a skip counts as a failure)"
        summary_and_exit
    fi
    printf '\n*** SKIPPED: %s ***\n\n' "$*"
    printf '%s passed, %s failed, 1 skipped\n' "$PASSED" "$FAILED"
    [ "$FAILED" -eq 0 ] && exit 0
    exit 1
}

on_exit() {
    local i
    for ((i = ${#CLEANUPS[@]} - 1; i >= 0; i--)); do
        eval "${CLEANUPS[i]}" >/dev/null 2>&1
    done
    CLEANUPS=()
}

# at_exit 'COMMAND': run COMMAND (a shell string) when the suite ends, however it ends.
at_exit() {
    CLEANUPS+=("$1")
}

trap on_exit EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# temp_dir VAR: sets VAR to a new temporary directory, removed at exit. (Not through $(...):
# the cleanup must be registered in this shell, not in a subshell.)
temp_dir() {
    local d
    d=$(mktemp -d "${TMPDIR:-/tmp}/ci-test.XXXXXX") || return 1
    at_exit "rm -rf '$d'"
    printf -v "$1" '%s' "$d"
}

# The suites drive HTTP with curl and read JSON with python3: installed when root (apt).
need_tools() {
    local missing=() tool
    for tool in curl python3; do
        command -v "$tool" >/dev/null 2>&1 || missing+=("$tool")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}"; } >/dev/null 2>&1
    fi
    for tool in "${missing[@]}"; do
        command -v "$tool" >/dev/null 2>&1 || skip_suite "$tool is not installed"
    done
}

# Starts a private dockerd and exports DOCKER_HOST for it; stopped at exit.
start_private_dockerd() {
    need_tools
    DOCKERD_DIR=$(mktemp -d /tmp/ci-dockerd.XXXXXX) || skip_suite "cannot create a temporary directory"
    at_exit "bash '$TESTS_DOCKER/dockerd.sh' stop '$DOCKERD_DIR'"
    local rc=0
    bash "$TESTS_DOCKER/dockerd.sh" start "$DOCKERD_DIR" >/dev/null || rc=$?
    case $rc in
        0) ;;
        77) skip_suite "no Docker daemon can run here (reason above)" ;;
        *)
            printf 'FAIL: starting a private dockerd (exit %s)\n0 passed, 1 failed\n' "$rc"
            exit 1
            ;;
    esac
    export DOCKER_HOST="unix://$DOCKERD_DIR/docker.sock"
    # shellcheck disable=SC2034 # read by the suites
    DOCKER_SOCKET="$DOCKERD_DIR/docker.sock"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# wait_http URL [TRIES]: true once URL answers 2xx; one try a second, TRIES at most (default 60).
wait_http() {
    local url=$1 tries=${2:-60} i
    for ((i = 0; i < tries; i++)); do
        curl -fsS --max-time 3 -o /dev/null "$url" 2>/dev/null && return 0
        sleep 1
    done
    return 1
}

# http_code METHOD URL BODY_FILE [curl args...]: prints the status code, the body in BODY_FILE.
http_code() {
    local method=$1 url=$2 out=$3
    shift 3
    curl -sS --max-time 10 -o "$out" -w '%{http_code}' -X "$method" "$@" "$url" 2>/dev/null
}

# Builds the static binary and the scratch image IMAGE on the current DOCKER_HOST.
build_image() {
    bash "$REPO/scripts/build-image.sh" "$1"
}

# A scratch image holding only a static busybox, for workload containers.
build_busybox_image() {
    local image=$1 ctx bb=/usr/bin/busybox
    if ! is_static "$bb" && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq busybox-static; } >/dev/null 2>&1
    fi
    is_static "$bb" || {
        echo "no static busybox at $bb (apt-get install busybox-static)" >&2
        return 1
    }
    temp_dir ctx || return 1
    cp "$bb" "$ctx/busybox" && docker build -q -f "$TESTS_DOCKER/busybox.Dockerfile" -t "$image" "$ctx" >/dev/null 2>&1
}

is_static() {
    [ -x "$1" ] && ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}
