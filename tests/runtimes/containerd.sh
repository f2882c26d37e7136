#!/usr/bin/env bash
# A private containerd serving CRI for tests: its own config, root, state, runc root and socket,
# all under one directory, host-network pods only (no CNI), offline. The test images (a pause
# image and a busybox image, built here from tests/runtimes/) are imported into namespace k8s.io.
#
#   tests/runtimes/containerd.sh start VERSION DIR   VERSION is 1.6, 1.7 or 2.1; prints the socket
#   tests/runtimes/containerd.sh stop DIR            kill every task, stop containerd, unmount and
#                                                    delete DIR, remove the pods' cgroups
#
# 1.6 is Debian bookworm's `containerd` package (installed with apt-get when missing); 1.7 and
# 2.1 are the `containerd` packages of trixie and sid, fetched with `apt-get download` through a
# private apt state and unpacked with `dpkg-deb -x` into the cache directory: nothing is
# installed and /etc/apt is left as it is. All three run with bookworm's runc.
# Downloads and built images are cached under $CLUSTER_INSIGHT_TEST_CACHE (default
# ${XDG_CACHE_HOME:-/var/cache}/cluster-insight-tests).
#
# Exit codes of `start`: 0 running, 77 no containerd can run here (the reason is printed), 1 other
# errors. Callers decide whether 77 skips (default) or fails (CI=true).
set -uo pipefail

HERE=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
CACHE=${CLUSTER_INSIGHT_TEST_CACHE:-${XDG_CACHE_HOME:-/var/cache}/cluster-insight-tests}
START_TIMEOUT=${CONTAINERD_START_TIMEOUT:-30}
STOP_TIMEOUT=${CONTAINERD_STOP_TIMEOUT:-10}
PAUSE_IMAGE=localhost/cluster-insight-test/pause:1
BUSYBOX_IMAGE=localhost/cluster-insight-test/busybox:1
BUSYBOX=/bin/busybox
# A Unix socket path holds at most 107 bytes; the deepest socket is DIR/cri.sock.ttrpc.
MAX_DIR_LEN=80
# Marks a directory as one this script made, so that `stop` deletes nothing else.
MARKER=.private-containerd

say() { printf 'containerd.sh: %s\n' "$*" >&2; }

cannot_run() {
    say "================================================================"
    say "NO CONTAINERD CAN RUN HERE: $*"
    say "================================================================"
    exit 77
}

die() {
    say "$*"
    exit 1
}

usage() {
    say "usage: $0 start 1.6|1.7|2.1 DIR | stop DIR"
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

# pids_with_args ARG...: the processes whose command line holds ARG... in a row. Pure bash: a
# helper process would carry the arguments in its own command line and match itself.
pids_with_args() {
    local f i j args found
    for f in /proc/[0-9]*/cmdline; do
        mapfile -d '' args 2>/dev/null <"$f" || continue
        for ((i = 0; i + $# <= ${#args[@]}; i++)); do
            found=1
            for ((j = 0; j < $#; j++)); do
                local want=$((j + 1))
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

# --- what start needs ------------------------------------------------------------------------

apt_install() {
    [ "$(id -u)" -eq 0 ] || cannot_run "$* not installed and we are not root to install it"
    command -v apt-get >/dev/null 2>&1 || cannot_run "$* not installed and there is no apt-get"
    say "installing $* with apt-get"
    mkdir -p "$CACHE" || return 1
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "$@"; } \
        >"$CACHE/apt-install.log" 2>&1; then
        tail -n 20 "$CACHE/apt-install.log" >&2
        cannot_run "apt-get install $* failed (log above)"
    fi
}

ensure_host_tools() {
    local missing=()
    command -v runc >/dev/null 2>&1 || missing+=(runc)
    command -v python3 >/dev/null 2>&1 || missing+=(python3)
    command -v gcc >/dev/null 2>&1 || missing+=(gcc)
    [ -e /usr/lib/x86_64-linux-gnu/libc.a ] || [ -e /usr/lib/libc.a ] || missing+=(libc6-dev)
    is_static "$BUSYBOX" || missing+=(busybox-static)
    if [ "$VERSION" = 1.6 ] && ! command -v containerd >/dev/null 2>&1; then
        missing+=(containerd)
    fi
    [ ${#missing[@]} -eq 0 ] || apt_install "${missing[@]}"
    is_static "$BUSYBOX" || cannot_run "no static busybox at $BUSYBOX (busybox-static)"
}

is_static() {
    [ -x "$1" ] && ! LC_ALL=C readelf -l "$1" 2>/dev/null | grep -q 'program interpreter'
}

# The directory holding containerd, ctr and containerd-shim-runc-v2 of VERSION.
containerd_bin_dir() {
    case $VERSION in
        1.6)
            local v
            v=$(containerd --version 2>/dev/null | awk '{ print $3 }')
            case $v in
                1.6.*) printf '%s\n' "$(dirname "$(command -v containerd)")" ;;
                *) cannot_run "the installed containerd is $v, not 1.6 (Debian bookworm's package)" ;;
            esac
            ;;
        1.7) unpacked_containerd trixie ;;
        2.1) unpacked_containerd sid ;;
    esac
}

# unpacked_containerd SUITE: Debian SUITE's containerd package, downloaded and unpacked once
# into the cache (under a lock: several nodes of a test cluster may start at once).
unpacked_containerd() {
    local suite=$1 dest=$CACHE/containerd-$VERSION
    if [ ! -x "$dest/usr/bin/containerd" ]; then
        mkdir -p "$CACHE" || return 1
        exec 9>"$CACHE/.lock-containerd-$VERSION"
        flock 9
        [ -x "$dest/usr/bin/containerd" ] || download_containerd "$suite" "$dest"
        exec 9>&-
    fi
    printf '%s\n' "$dest/usr/bin"
}

download_containerd() {
    local suite=$1 dest=$2 apt=$CACHE/apt-$1
    command -v apt-get >/dev/null 2>&1 || cannot_run "containerd $VERSION comes from Debian $suite and there is no apt-get"
    mkdir -p "$apt"/{lists/partial,archives/partial,sources.list.d,preferences.d,state} || return 1
    : >"$apt/status"
    printf 'deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] http://deb.debian.org/debian %s main\n' \
        "$suite" >"$apt/sources.list"
    # Every path apt writes or reads its package lists from is private; the host's apt.conf.d
    # (proxies) still applies.
    local opts=(
        -o "Dir::Etc::SourceList=$apt/sources.list"
        -o "Dir::Etc::SourceParts=$apt/sources.list.d"
        -o "Dir::Etc::Preferences=$apt/preferences"
        -o "Dir::Etc::PreferencesParts=$apt/preferences.d"
        -o "Dir::State=$apt/state"
        -o "Dir::State::Lists=$apt/lists"
        -o "Dir::State::status=$apt/status"
        -o "Dir::Cache=$apt"
        -o "Dir::Cache::archives=$apt/archives"
        -o "Acquire::Languages=none"
        -o "APT::Sandbox::User=root"
    )
    say "fetching containerd $VERSION from Debian $suite (private apt state in $apt)"
    apt-get "${opts[@]}" update -qq >"$apt/update.log" 2>&1 || {
        tail -n 10 "$apt/update.log" >&2
        cannot_run "apt-get update for Debian $suite failed (log above)"
    }
    local work
    work=$(mktemp -d "$CACHE/.download.XXXXXX") || return 1
    (cd "$work" && apt-get "${opts[@]}" download -qq containerd) >"$apt/download.log" 2>&1 || {
        tail -n 10 "$apt/download.log" >&2
        rm -rf "$work"
        cannot_run "apt-get download containerd from Debian $suite failed (log above)"
    }
    local deb pkg_version
    deb=$(find "$work" -maxdepth 1 -name 'containerd_*.deb' | head -n 1)
    pkg_version=$(dpkg-deb -f "$deb" Version)
    case $pkg_version in
        "$VERSION".*) ;;
        *)
            rm -rf "$work"
            cannot_run "Debian $suite's containerd is now $pkg_version, not $VERSION"
            ;;
    esac
    dpkg-deb -x "$deb" "$work/root" || { rm -rf "$work"; die "dpkg-deb -x $deb failed"; }
    printf '%s\n' "$pkg_version" >"$work/root/package-version"
    rm -rf "$dest"
    mv "$work/root" "$dest" && rm -rf "$work"
    say "containerd $pkg_version unpacked into $dest"
}

# The test images, built reproducibly: the same inputs give the same tarballs (and digests), so
# they are cached under a key made of the inputs.
build_images() {
    local key dir
    key=$(cat "$HERE/pause.c" "$HERE/mkimage.py" "$BUSYBOX" | sha256sum | cut -c1-16)
    dir=$CACHE/images-$key
    IMAGES=$dir
    [ -s "$dir/pause.tar" ] && [ -s "$dir/busybox.tar" ] && return 0
    mkdir -p "$CACHE" || return 1
    local work
    work=$(mktemp -d "$CACHE/.images.XXXXXX") || return 1
    gcc -Os -static -s -o "$work/pause" "$HERE/pause.c" || { rm -rf "$work"; die "cannot build pause.c"; }
    python3 "$HERE/mkimage.py" "$work/pause.tar" "$PAUSE_IMAGE" --file "$work/pause=/pause" \
        --entrypoint /pause >&2 || { rm -rf "$work"; die "cannot build the pause image"; }
    local bb=(--file "$BUSYBOX=/bin/busybox") tool
    for tool in sh sleep ps cat ls; do
        bb+=(--link "/bin/$tool=busybox")
    done
    python3 "$HERE/mkimage.py" "$work/busybox.tar" "$BUSYBOX_IMAGE" "${bb[@]}" \
        --dir /dev --dir /etc --dir /proc --dir /sys --dir /tmp --cmd /bin/sh >&2 ||
        { rm -rf "$work"; die "cannot build the busybox image"; }
    rm -f "$work/pause"
    rm -rf "$dir"
    mv "$work" "$dir"
}

# overlayfs where an overlay mount works in DIR, else the native (copying) snapshotter.
pick_snapshotter() {
    if [ -n "${CONTAINERD_SNAPSHOTTER:-}" ]; then
        printf '%s\n' "$CONTAINERD_SNAPSHOTTER"
        return
    fi
    local t=$DIR/overlay-check
    mkdir -p "$t"/{lower,upper,work,merged}
    if mount -t overlay overlay -o "lowerdir=$t/lower,upperdir=$t/upper,workdir=$t/work" "$t/merged" 2>/dev/null; then
        umount "$t/merged"
        rm -rf "$t"
        printf 'overlayfs\n'
    else
        rm -rf "$t"
        say "an overlay mount fails in $DIR: using the native snapshotter"
        printf 'native\n'
    fi
}

write_config() {
    local snapshotter=$1
    if [ "$VERSION" = 2.1 ]; then
        cat >"$DIR/config.toml" <<EOF
# containerd 2.x, CRI only, for tests: written by tests/runtimes/containerd.sh
version = 3
root = "$DIR/root"
state = "$DIR/state"

[grpc]
  address = "$DIR/cri.sock"

[ttrpc]
  address = "$DIR/cri.sock.ttrpc"

[plugins."io.containerd.cri.v1.images"]
  snapshotter = "$snapshotter"
  [plugins."io.containerd.cri.v1.images".pinned_images]
    sandbox = "$PAUSE_IMAGE"

[plugins."io.containerd.cri.v1.runtime"]
  enable_selinux = false
  disable_apparmor = true
  # The pause container asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  [plugins."io.containerd.cri.v1.runtime".containerd]
    default_runtime_name = "runc"
    [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.cri.v1.runtime".containerd.runtimes.runc.options]
        Root = "$DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.cri.v1.runtime".cni]
    bin_dirs = ["$DIR/cni/bin"]
    conf_dir = "$DIR/cni/conf"

[plugins."io.containerd.grpc.v1.cri"]
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"

# Else it listens on /var/run/nri/nri.sock, shared with every other containerd.
[plugins."io.containerd.nri.v1.nri"]
  disable = true

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
EOF
    else
        cat >"$DIR/config.toml" <<EOF
# containerd 1.x, CRI only, for tests: written by tests/runtimes/containerd.sh
version = 2
root = "$DIR/root"
state = "$DIR/state"

[grpc]
  address = "$DIR/cri.sock"

[ttrpc]
  address = "$DIR/cri.sock.ttrpc"

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = "$PAUSE_IMAGE"
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  enable_selinux = false
  disable_apparmor = true
  # The pause container asks for oom_score_adj -998, which needs CAP_SYS_RESOURCE.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "$snapshotter"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        Root = "$DIR/runc"
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = "$DIR/cni/bin"
    conf_dir = "$DIR/cni/conf"

[plugins."io.containerd.internal.v1.opt"]
  path = "$DIR/opt"
EOF
    fi
}

ctr_() {
    "$BIN/ctr" --address "$DIR/cri.sock" "$@"
}

answers() {
    timeout 5 "$BIN/ctr" --address "$DIR/cri.sock" version >/dev/null 2>&1
}

# plugin_status TYPE ID: the status of a plugin in `ctr plugins ls` (on stdin).
plugin_status() {
    awk -v type="$1" -v id="$2" '$1 == type && $2 == id { print $NF }'
}

daemon_pid() {
    local pid=
    [ -r "$DIR/containerd.pid" ] && read -r pid <"$DIR/containerd.pid"
    printf '%s\n' "$pid"
}

start() {
    case $VERSION in 1.6 | 1.7 | 2.1) ;; *) usage ;; esac
    [ "${#DIR}" -le "$MAX_DIR_LEN" ] || die "DIR too long for Unix socket paths (max $MAX_DIR_LEN bytes): $DIR"
    [ "$(id -u)" -eq 0 ] || cannot_run "containerd needs root (we are uid $(id -u))"
    [ -d /sys/fs/cgroup ] || cannot_run "no /sys/fs/cgroup"
    mkdir -p "$DIR" || exit 1
    # DIR is deleted at stop: take it only when empty or already ours.
    if [ ! -e "$DIR/$MARKER" ]; then
        [ -z "$(ls -A "$DIR")" ] || die "$DIR is not empty and not a private containerd directory"
        : >"$DIR/$MARKER"
    fi
    if [ -r "$DIR/bin" ]; then
        read -r BIN <"$DIR/bin"
        if pid_alive "$(daemon_pid)" && answers; then
            say "already running for $DIR"
            printf '%s\n' "$DIR/cri.sock"
            return 0
        fi
    fi
    ensure_host_tools
    BIN=$(containerd_bin_dir) || exit $?
    build_images || exit 1
    printf '%s\n' "$BIN" >"$DIR/bin"
    mkdir -p "$DIR"/{root,state,runc,opt,cni/bin,cni/conf} || exit 1
    local snapshotter
    snapshotter=$(pick_snapshotter)
    write_config "$snapshotter"

    # The shim is found on PATH: the one of this containerd comes first. setsid: containerd must
    # not receive the signals meant for the test's process group.
    PATH=$BIN:$PATH setsid "$BIN/containerd" --config "$DIR/config.toml" >"$DIR/containerd.log" 2>&1 </dev/null &
    local launcher=$! waited=0
    until answers; do
        if ! pid_alive "$launcher"; then
            tail -n 25 "$DIR/containerd.log" >&2
            cannot_run "containerd $VERSION exited during start-up (log above, full log in $DIR/containerd.log)"
        fi
        if [ "$waited" -ge "$((START_TIMEOUT * 10))" ]; then
            tail -n 25 "$DIR/containerd.log" >&2
            kill "$launcher" 2>/dev/null
            cannot_run "containerd $VERSION did not answer within ${START_TIMEOUT}s (log above)"
        fi
        sleep 0.1
        waited=$((waited + 1))
    done
    local pid
    pid=$(pids_with_args --config "$DIR/config.toml" | head -n 1)
    printf '%s\n' "${pid:-$launcher}" >"$DIR/containerd.pid"

    local plugins
    plugins=$(ctr_ plugins ls 2>&1)
    if [ "$(plugin_status io.containerd.grpc.v1 cri <<<"$plugins")" != ok ] ||
        [ "$(plugin_status io.containerd.snapshotter.v1 "$snapshotter" <<<"$plugins")" != ok ]; then
        printf '%s\n' "$plugins" >&2
        tail -n 25 "$DIR/containerd.log" >&2
        kill "$(daemon_pid)" 2>/dev/null
        die "containerd $VERSION runs but its CRI plugin or the $snapshotter snapshotter is not ok (above)"
    fi
    local image
    for image in "$IMAGES/pause.tar" "$IMAGES/busybox.tar"; do
        ctr_ --namespace k8s.io images import --snapshotter "$snapshotter" "$image" >"$DIR/import.log" 2>&1 || {
            cat "$DIR/import.log" >&2
            kill "$(daemon_pid)" 2>/dev/null
            die "cannot import $image"
        }
    done
    say "containerd $("$BIN/containerd" --version | awk '{ print $3 }') ($snapshotter) running on $DIR/cri.sock (pid $(daemon_pid))"
    printf '%s\n' "$DIR/cri.sock"
}

# --- stop ------------------------------------------------------------------------------------

# The cgroups and first processes of the containers, from runc's state files: they outlive a
# containerd that died.
runc_state() { # FIELD: cgroup paths (one per line) or init_process_pid
    local f
    for f in "$DIR"/runc/*/*/state.json; do
        [ -r "$f" ] || continue
        python3 - "$f" "$1" <<'EOF'
import json, sys
state = json.load(open(sys.argv[1]))
if sys.argv[2] == "cgroups":
    for path in (state.get("cgroup_paths") or {}).values():
        print(path)
else:
    print(state.get("init_process_pid", ""), state.get("id", ""))
EOF
    done
}

unmount_under() {
    # Deepest first: snapshots, the sandboxes' /dev/shm, the runtime's rootfs bind mounts.
    local m
    awk -v d="$DIR/" 'index($5, d) == 1 { print $5 }' /proc/self/mountinfo | sort -r | while IFS= read -r m; do
        umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null || say "cannot unmount $m"
    done
}

# remove_cgroup PATH: PATH, then its parents up to the controller's root while they are empty.
# A cgroup whose last process is a zombie not yet reaped stays busy: retry for a few seconds.
remove_cgroup() {
    local path=$1 tries
    for ((tries = 0; tries < 30; tries++)); do
        [ -d "$path" ] || break
        rmdir "$path" 2>/dev/null && break
        sleep 0.1
    done
    [ -d "$path" ] && { say "cannot remove cgroup $path"; return; }
    path=$(dirname "$path")
    while [[ $path == /sys/fs/cgroup/*/* ]] && [[ $path == */kubepods* ]]; do
        rmdir "$path" 2>/dev/null || break
        path=$(dirname "$path")
    done
}

stop() {
    [ -d "$DIR" ] || return 0
    [ -e "$DIR/$MARKER" ] || die "$DIR is not a private containerd directory: left alone"
    BIN=/usr/bin
    [ -r "$DIR/bin" ] && read -r BIN <"$DIR/bin"
    local cgroups inits
    cgroups=$(runc_state cgroups | sort -u)
    inits=$(runc_state init)
    local pid
    pid=$(daemon_pid)
    if pid_alive "$pid" && answers; then
        local task
        for task in $(ctr_ --namespace k8s.io tasks ls -q 2>/dev/null); do
            ctr_ --namespace k8s.io tasks kill --signal SIGKILL "$task" >/dev/null 2>&1
        done
        # Deleting a task ends its shim.
        for task in $(ctr_ --namespace k8s.io tasks ls -q 2>/dev/null); do
            ctr_ --namespace k8s.io tasks delete --force "$task" >/dev/null 2>&1
        done
    fi
    if pid_alive "$pid"; then
        kill -TERM "$pid" 2>/dev/null
        local waited=0
        while pid_alive "$pid" && [ "$waited" -lt "$((STOP_TIMEOUT * 10))" ]; do
            sleep 0.1
            waited=$((waited + 1))
        done
        if pid_alive "$pid"; then
            say "containerd $pid did not stop in ${STOP_TIMEOUT}s: killing it"
            kill -KILL "$pid" 2>/dev/null
        fi
    fi
    # Left behind by a containerd that died: shims (their -address is our socket, which nothing
    # else uses) and the containers' first processes (checked by their cgroup, against PID reuse).
    local p id
    for p in $(pids_with_args -address "$DIR/cri.sock"); do
        kill -KILL "$p" 2>/dev/null
    done
    while read -r p id; do
        [ -n "$id" ] && grep -qF "$id" "/proc/$p/cgroup" 2>/dev/null && kill -KILL "$p" 2>/dev/null
    done <<<"$inits"
    unmount_under
    rm -rf "$DIR" 2>/dev/null || { sleep 1; unmount_under; rm -rf "$DIR"; } || say "could not remove $DIR"
    local cg
    while IFS= read -r cg; do
        [ -n "$cg" ] && remove_cgroup "$cg"
    done <<<"$cgroups"
    return 0
}

case ${1:-} in
    start)
        { [ $# -eq 3 ] && [ -n "$3" ]; } || usage
        VERSION=$2
        DIR=$(absolute_dir "$3")
        ;;
    stop)
        { [ $# -eq 2 ] && [ -n "$2" ]; } || usage
        DIR=$(absolute_dir "$2")
        ;;
    *) usage ;;
esac
# Everything under DIR is containerd's and is deleted at stop: never the root or a home.
case $DIR in / | "$HOME" | /tmp | /var | /var/lib | /root | /home) usage ;; esac
BIN=
IMAGES=
case $1 in
    start) start ;;
    stop) stop ;;
esac
