#!/usr/bin/env bash
# Smoke test of the CRI test tooling, for containerd 1.6, 1.7 and 2.1 in turn (or the versions
# given as arguments): start a private containerd, make the pods with cri_pods.py, check over
# CRI that 2 sandboxes and 4 containers run and that each one's processes are in /proc with its
# ID in /proc/PID/cgroup (the lines are printed: they show the cgroup form of this machine),
# then remove the pods, stop containerd, and check that nothing is left: no containerd or shim
# of that socket, no mount under its directory, no cgroup of its pods. Prints the wall time of
# each step and version.
#
#   tests/runtimes/smoke.sh [VERSION...]
#
# A version that cannot run here (containerd.sh exit 77) is skipped loudly, and fails under
# CI=true.
# shellcheck disable=SC2317 # the check functions are called through `check`
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

RUNTIMES=$REPO/tests/runtimes
SECRET=smoke-secret-$RANDOM$RANDOM$RANDOM
SKIPPED=0
TIMINGS=()

now() { printf '%s\n' "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$(now)" 'BEGIN { printf "%.2fs", b - a }'; }

# pids_with_args ARG...: processes whose command line holds ARG... in a row (pure bash, so
# that no helper process matches itself).
pids_with_args() {
    local f i j args found want
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d '' args 2>/dev/null <"$f" || continue
        for ((i = 0; i + $# <= ${#args[@]}; i++)); do
            found=1
            for ((j = 0; j < $#; j++)); do
                want=$((j + 1))
                [ "${args[i + j]}" = "${!want}" ] || { found=0; break; }
            done
            if [ "$found" = 1 ]; then
                f=${f#/proc/}
                printf '%s\n' "${f%/cmdline}"
                break
            fi
        done
    done
}

# pids_in_cgroup ID: the processes whose /proc/PID/cgroup names ID, from CGROUP_INDEX
# ("/proc/PID/cgroup:ID" lines, made by index_cgroups in one pass over /proc).
pids_in_cgroup() {
    awk -F: -v id="$1" '$2 == id { sub(/^\/proc\//, "", $1); sub(/\/cgroup$/, "", $1); print $1 }' <<<"$CGROUP_INDEX" | sort -un
}

index_cgroups() { # IDS (one per line)
    CGROUP_INDEX=$(grep -HoF -f <(printf '%s\n' "$1") /proc/[0-9]*/cgroup 2>/dev/null | sort -u)
}

# What `cri_pods.py list` shows, one line per object: "sandbox ID PID STATE" and
# "container ID PID STATE NAME SANDBOX_ID".
objects() {
    python3 - "$1" <<'EOF'
import json, sys
listing = json.load(open(sys.argv[1]))
for s in listing["sandboxes"]:
    print("sandbox", s["id"], s["pid"], s["state"])
for c in listing["containers"]:
    print("container", c["id"], c["pid"], c["state"], c["name"], c["pod_sandbox_id"])
EOF
}

spec_ids() { # SPEC: the sandbox and container IDs it names, then "uid UID" per pod
    python3 - "$1" <<'EOF'
import json, sys
spec = json.load(open(sys.argv[1]))
for p in spec["pods"]:
    print("sandbox", p["sandbox_id"])
    print("uid", p["uid"])
    for c in p["containers"]:
        print("container", c["id"])
EOF
}

count_of() { # KIND STATE LINES
    grep -c "^$1 [0-9a-f]* [0-9]* $2\b" <<<"$3"
}

# Every object's processes: the first PID CRI reports holds the object's ID in its cgroup, and
# so do all its processes (2 for container `main`, whose shell leaves a child).
check_processes() {
    local lines=$1 kind id pid name ok=0 shown=
    index_cgroups "$(awk '{ print $2 }' <<<"$lines")"
    while read -r kind id pid _ name _; do
        local pids
        pids=$(pids_in_cgroup "$id")
        if [ -z "$pid" ] || [ "$pid" = None ] || ! grep -qx "$pid" <<<"$pids"; then
            printf '  %s %s: first PID %s is not among the processes in its cgroup (%s)\n' \
                "$kind" "${id:0:12}" "$pid" "$(tr '\n' ' ' <<<"$pids")"
            ok=1
            continue
        fi
        local n
        n=$(grep -c . <<<"$pids")
        printf '  %s %-8s %s: %s process(es): %s\n' "$kind" "${name:-pause}" "${id:0:12}" "$n" "$(tr '\n' ' ' <<<"$pids")"
        if [ "$name" = main ] && [ "$n" -lt 2 ]; then
            printf '  container main should hold a shell and its child\n'
            ok=1
        fi
        if [[ $shown != *"$kind"* ]]; then
            # The cgroup lines of a pause process and of a container process, as they are here.
            sed 's/^/      /' "/proc/$pid/cgroup"
            shown+=" $kind"
        fi
    done <<<"$lines"
    return "$ok"
}

absent() { # TEXT FILE...
    ! grep -qF "$1" "${@:2}"
}

nothing_left() { # DIR UIDS
    local dir=$1 uids=$2 left=0 uid
    if [ -n "$(pids_with_args -address "$dir/cri.sock")" ] ||
        [ -n "$(pids_with_args --config "$dir/config.toml")" ]; then
        printf '  a containerd or shim of %s/cri.sock is still running\n' "$dir"
        left=1
    fi
    if awk -v d="$dir/" 'index($5, d) == 1 { found = 1 } END { exit !found }' /proc/self/mountinfo; then
        printf '  mounts are left under %s\n' "$dir"
        left=1
    fi
    [ -e "$dir" ] && { printf '  %s is left\n' "$dir"; left=1; }
    for uid in $uids; do
        if compgen -G "/sys/fs/cgroup/*/kubepods/besteffort/pod$uid" >/dev/null ||
            [ -d "/sys/fs/cgroup/kubepods/besteffort/pod$uid" ]; then
            printf '  the cgroup of pod %s is left\n' "$uid"
            left=1
        fi
    done
    return "$left"
}

kubepods_dirs() {
    compgen -G '/sys/fs/cgroup/*/kubepods' || true
    [ -d /sys/fs/cgroup/kubepods ] && printf '/sys/fs/cgroup/kubepods\n'
}

smoke() {
    local version=$1 began step dir sock rc=0
    began=$(now)
    printf '\n== containerd %s ==\n' "$version"
    dir=$(mktemp -d /tmp/ci-cri.XXXXXX) || { fail "containerd $version: cannot make a directory"; return; }
    at_exit "bash '$RUNTIMES/containerd.sh' stop '$dir'"
    local kubepods_before
    kubepods_before=$(kubepods_dirs)

    step=$(now)
    sock=$(bash "$RUNTIMES/containerd.sh" start "$version" "$dir") || rc=$?
    case $rc in
        0) pass "containerd $version starts on $sock ($(since "$step"))" ;;
        77)
            if [ "${CI:-}" = true ]; then
                fail "containerd $version cannot run here (reason above; CI=true: a skip counts as a failure)"
            else
                printf '\n*** SKIPPED: containerd %s cannot run here (reason above) ***\n' "$version"
                SKIPPED=$((SKIPPED + 1))
            fi
            rmdir "$dir" 2>/dev/null
            return
            ;;
        *)
            fail "containerd $version starts (exit $rc)"
            bash "$RUNTIMES/containerd.sh" stop "$dir"
            return
            ;;
    esac

    step=$(now)
    if check "cri_pods.py up on containerd $version" \
        python3 "$RUNTIMES/cri_pods.py" up "$sock" "$dir/spec.json" --node "smoke-${version/./-}" --secret "$SECRET"; then
        printf '  (%s)\n' "$(since "$step")"
    fi
    step=$(now)
    local lines=
    if python3 "$RUNTIMES/cri_pods.py" list "$sock" >"$dir/list.json"; then
        lines=$(objects "$dir/list.json")
    fi
    check "containerd $version: 2 sandboxes ready" [ "$(count_of sandbox SANDBOX_READY "$lines")" = 2 ]
    check "containerd $version: 4 containers running" [ "$(count_of container CONTAINER_RUNNING "$lines")" = 4 ]
    local ids uids
    ids=$(spec_ids "$dir/spec.json" 2>/dev/null)
    uids=$(awk '$1 == "uid" { print $2 }' <<<"$ids")
    check "containerd $version: the spec names what CRI lists" \
        [ "$(awk '$1 != "uid" { print $1, $2 }' <<<"$ids" | sort)" = "$(awk '{ print $1, $2 }' <<<"$lines" | sort)" ]
    check "containerd $version: each sandbox's and container's processes carry its ID in /proc/PID/cgroup" \
        check_processes "$lines"
    local job_pid
    job_pid=$(awk '$1 == "container" && $5 == "job" { print $3 }' <<<"$lines")
    check "containerd $version: container job holds the secret in its environment" \
        grep -qaF "CLUSTER_INSIGHT_TEST_SECRET=$SECRET" "/proc/${job_pid:-0}/environ"
    check "containerd $version: the secret is in neither the spec nor the listing" \
        absent "$SECRET" "$dir/spec.json" "$dir/list.json"
    printf '  (list and /proc scan %s)\n' "$(since "$step")"

    step=$(now)
    check "cri_pods.py down on containerd $version" python3 "$RUNTIMES/cri_pods.py" down "$sock"
    check "containerd.sh stop ($version)" bash "$RUNTIMES/containerd.sh" stop "$dir"
    printf '  (down and stop %s)\n' "$(since "$step")"
    check "containerd $version: nothing is left (processes, mounts, directory, pod cgroups)" nothing_left "$dir" "$uids"
    check "containerd $version: no kubepods cgroup made by the test is left" [ "$(kubepods_dirs)" = "$kubepods_before" ]
    TIMINGS+=("containerd $version: $(since "$began")")
}

[ "$(id -u)" -eq 0 ] || skip_suite "the CRI smoke test needs root"
need_tools
versions=("$@")
[ ${#versions[@]} -gt 0 ] || versions=(1.6 1.7 2.1)
for v in "${versions[@]}"; do
    smoke "$v"
done
printf '\nwall time per version:\n'
printf '  %s\n' ${TIMINGS[@]+"${TIMINGS[@]}"}
printf '%s passed, %s failed, %s skipped\n' "$PASSED" "$FAILED" "$SKIPPED"
[ "$FAILED" -eq 0 ]
