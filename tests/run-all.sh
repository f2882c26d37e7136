#!/usr/bin/env bash
# Runs every test of the project: the formatting and lint rules, the Rust unit and
# integration tests of every crate of the workspace, the build without the simulator, then
# every suite under tests/suites/ (shell tests of the scripts, the image and a real Docker
# daemon).
# Usage: tests/run-all.sh            (from anywhere; it works from the repository root)
# Suites install what they need when run as root; under CI=true a suite that cannot run
# fails instead of skipping.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 2

failed=()
passed=0

# The stream tests hold a thousand connections at once, in the test process and in the
# master it starts: raise the soft limit on open files as far as the hard one allows.
ulimit -n "$(ulimit -Hn)" 2>/dev/null || ulimit -n 65536 2>/dev/null || true

run() {
    local name=$1; shift
    echo "=== $name"
    local start=$SECONDS
    if "$@"; then
        passed=$((passed + 1))
        echo "=== $name: ok ($((SECONDS - start)) s)"
    else
        failed+=("$name")
        echo "=== $name: FAILED ($((SECONDS - start)) s)"
    fi
}

run "cargo fmt --check" cargo fmt --all --check
run "cargo clippy" cargo clippy --workspace --all-targets --locked -- -D warnings
run "cargo test" cargo test --workspace --all-targets --locked
run "build without the demo feature" cargo build --locked --no-default-features
for suite in tests/suites/*.sh; do
    [ -e "$suite" ] || continue
    run "$suite" bash "$suite"
done

echo
echo "groups: $passed passed, ${#failed[@]} failed"
if [ ${#failed[@]} -gt 0 ]; then
    printf 'failed: %s\n' "${failed[@]}"
    exit 1
fi
