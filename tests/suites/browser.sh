#!/usr/bin/env bash
# The map in a real browser: Debian's Chromium, headless, driven through chromedriver by
# Selenium (tests/browser/map_test.py), against the master and the simulator on loopback.
# Installs chromium, chromium-driver and python3-selenium with apt-get when run as root;
# skips loudly where they cannot be had (a failure under CI=true).
# Screenshots are left in target/screenshots/ (or $SCREENSHOTS).
set -uo pipefail
# shellcheck source=tests/docker/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/../docker/lib.sh"

# Debian's Python, whose python3-selenium the package manager installs (a python3 earlier
# on PATH may be another installation).
PYTHON=/usr/bin/python3
have_browser() {
    [ -x /usr/bin/chromium ] && [ -x /usr/bin/chromedriver ] &&
        "$PYTHON" -c 'import selenium' 2>/dev/null
}
if ! have_browser && [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null 2>&1; then
    { apt-get update -qq &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium chromium-driver python3-selenium; } \
        >/tmp/browser-apt.log 2>&1 || tail -n 20 /tmp/browser-apt.log
fi
have_browser || skip_suite "Chromium, chromedriver or python3-selenium is not installed"
pass "$(/usr/bin/chromium --version 2>/dev/null | head -n 1), selenium $("$PYTHON" -c 'import selenium; print(selenium.__version__)')"

temp_dir WORK || { fail "cannot make a temporary directory"; summary_and_exit; }
if ! (cd "$REPO" && cargo build -q --locked) >"$WORK/build.log" 2>&1; then
    cat "$WORK/build.log"
    fail "cargo build"
    summary_and_exit
fi
TARGET_DIR=${CARGO_TARGET_DIR:-$REPO/target}
SHOTS=${SCREENSHOTS:-$TARGET_DIR/screenshots}
"$PYTHON" "$REPO/tests/browser/map_test.py" "$TARGET_DIR/debug/cluster-insight" "$SHOTS" >"$WORK/map.out" 2>&1
rc=$?
count_lines <"$WORK/map.out"
[ "$rc" -eq 0 ] || [ "$FAILED" -gt 0 ] || fail "map_test.py exited with $rc"
summary_and_exit
