#!/usr/bin/env bash
# Builds the static musl binary and the FROM-scratch image around it.
#
#   scripts/build-image.sh [IMAGE]      (default cluster-insight:VERSION, VERSION from Cargo.toml:
#                                        the name every install path runs by default)
#   scripts/build-image.sh --binary-only   the binary alone; its path is the last line printed
#
# Installs what the build needs when it can (the rustup musl target; Debian's musl-tools when
# root, else gcc stands in as the musl C compiler for ring). Cargo decides whether the binary
# is fresh. The image is built from a context holding only the binary, so target/ is never sent
# to the daemon. Honours DOCKER_HOST and CARGO_TARGET_DIR.
set -euo pipefail

TARGET=x86_64-unknown-linux-musl
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$ROOT"
VERSION=$(sed -n 's/^version = "\(.*\)"$/\1/p' Cargo.toml | head -n 1)
IMAGE=${1:-cluster-insight:$VERSION}
BINARY_ONLY=false
if [ "$IMAGE" = --binary-only ]; then
    BINARY_ONLY=true
fi

fail() {
    echo "build-image.sh: FAILED: $*" >&2
    exit 1
}

command -v cargo >/dev/null 2>&1 || fail "cargo not found (install Rust with rustup)"
$BINARY_ONLY || command -v docker >/dev/null 2>&1 || fail "docker CLI not found"

if command -v rustup >/dev/null 2>&1; then
    if ! rustup target list --installed | grep -qx "$TARGET"; then
        rustup target add "$TARGET" || fail "rustup target add $TARGET"
    fi
fi

# ring compiles C for the target: musl-gcc when present, else the host gcc (same static result).
if ! command -v musl-gcc >/dev/null 2>&1 && [ -z "${CC_x86_64_unknown_linux_musl:-}" ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq musl-tools; } >/dev/null 2>&1 ||
            echo "build-image.sh: apt-get install musl-tools failed; using gcc" >&2
    fi
    command -v musl-gcc >/dev/null 2>&1 || export CC_x86_64_unknown_linux_musl=gcc
fi

cargo build --release --locked --target "$TARGET" || fail "cargo build --release --target $TARGET"

BIN=${CARGO_TARGET_DIR:-target}/$TARGET/release/cluster-insight
[ -x "$BIN" ] || fail "no binary at $BIN"
if command -v readelf >/dev/null 2>&1 && readelf -l "$BIN" | grep -q 'Requesting program interpreter'; then
    fail "$BIN is dynamically linked; the scratch image needs a static binary"
fi
if $BINARY_ONLY; then
    (cd "$(dirname "$BIN")" && printf '%s/%s\n' "$(pwd)" "$(basename "$BIN")")
    exit 0
fi

CTX=$(mktemp -d)
trap 'rm -rf "$CTX"' EXIT
mkdir -p "$CTX/target/$TARGET/release"
cp "$BIN" "$CTX/target/$TARGET/release/cluster-insight"
docker build -q -f Dockerfile.scratch -t "$IMAGE" "$CTX" >/dev/null || fail "docker build -f Dockerfile.scratch -t $IMAGE"

bin_bytes=$(stat -c %s "$BIN")
image_bytes=$(docker image inspect -f '{{.Size}}' "$IMAGE") || fail "image $IMAGE not found after the build"
image_id=$(docker image inspect -f '{{.Id}}' "$IMAGE")
echo "binary $BIN: $bin_bytes bytes"
echo "image $IMAGE ($image_id): $image_bytes bytes"
