#!/usr/bin/env bash
# Tests gcp-project-setup.sh end to end against the stand-ins in tests/stubs/ for `gcloud`
# and `kubectl`, which play back instance and cluster lists recorded from the real gcloud
# (tests/fixtures/gcloud/) and log every call. Each run gets a PATH made only of the stubs
# and a handful of basic tools linked into a private directory, so the real gcloud, kubectl,
# ssh or curl cannot be reached even by mistake: nothing here leaves the machine.
#
# install.sh is piped as is when it exists at the top of the repository; otherwise a
# two-line placeholder made in this suite's temporary directory stands in for it.
set -uo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
script=$root/gcp-project-setup.sh
stubs=$root/tests/stubs
fixtures=$root/tests/fixtures/gcloud
# The image every install path runs by default: cluster-insight:VERSION, from Cargo.toml.
image=cluster-insight:$(sed -n 's/^version = "\(.*\)"$/\1/p' "$root/Cargo.toml" | head -n 1)

passed=0
failed=0
work=$(mktemp -d "${TMPDIR:-/tmp}/gcp_setup.XXXXXX")
trap 'rm -rf "$work"' EXIT

say() { printf '%s\n' "$*"; }

# ---------------------------------------------------------------------------------------
# Harness

minbin=$work/bin
mkdir -p "$minbin"
for tool in bash cat cp dirname grep head mkdir mktemp od rm sed sleep tail tee tr wc; do
    path=$(command -v "$tool") || {
        say "FAIL: the basic tool $tool is missing"
        say "0 passed, 1 failed"
        exit 1
    }
    ln -s "$path" "$minbin/$tool"
done
gcloud_only=$work/gcloud-only
mkdir -p "$gcloud_only"
ln -s "$stubs/gcloud" "$gcloud_only/gcloud"

if [[ -f $root/install.sh ]]; then
    installer=$root/install.sh
    installer_args=()
    say "# piping the repository's install.sh"
else
    installer=$work/install.sh
    printf '#!/usr/bin/env bash\necho "placeholder installer: $*"\n' >"$installer"
    installer_args=(--install-script "$installer")
    say "# install.sh not in the repository yet: piping a placeholder made in $work"
fi

ok() {
    passed=$((passed + 1))
    say "ok - $1"
}

not_ok() {
    failed=$((failed + 1))
    say "FAIL - $1"
    if [[ -n ${run:-} ]]; then
        say "  --- output of the run (exit status $rc) ---"
        sed 's/^/  | /' "$run/out"
        say "  --- calls ---"
        sed 's/^/  | /' "$run/log"
    fi
}

check() { # DESCRIPTION COMMAND...: one assertion
    local desc=$1
    shift
    if "$@"; then ok "$desc"; else not_ok "$desc"; fi
}

n=0
run=
rc=0
# new_run: a fresh call log and stub state; reuse_run keeps the state of the previous run.
new_run() {
    n=$((n + 1))
    run=$work/run$n
    mkdir -p "$run/state"
}

# setup FIXTURE ARGS...: runs the script with the stubs; STUB_* knobs come from the caller's
# environment (`STUB_FAIL=... setup vm-cluster demo-project-123`).
setup() {
    local fixture=$1
    shift
    : >"$run/log"
    (
        export STUB_LOG=$run/log STUB_STATE=$run/state STUB_FIXTURES=$fixtures/$fixture
        export STUB_FAIL=${STUB_FAIL:-} STUB_INSTALL_FAIL=${STUB_INSTALL_FAIL:-} STUB_INSTALL_MUTE=${STUB_INSTALL_MUTE:-}
        export STUB_HEALTHZ_FAILURES=${STUB_HEALTHZ_FAILURES:-0} STUB_MINIONS_READY=${STUB_MINIONS_READY:-2/2}
        export PATH=${SETUP_PATH:-$stubs:$minbin} TMPDIR=${SETUP_TMPDIR:-$run}
        # The token is made under the run's own configuration directory.
        export XDG_CONFIG_HOME=$run/config
        # Who may reach the master: a documentation range unless the caller says otherwise.
        exec bash "$script" --source-ranges "${SETUP_SOURCE_RANGES-203.0.113.0/24}" "$@"
    ) >"$run/out" 2>&1 </dev/null
    rc=$?
}

status_is() { [[ $rc == "$1" ]]; }
last_line_is() { [[ $(tail -n 1 "$run/out") == "$1" ]]; }
last_line_starts() { [[ $(tail -n 1 "$run/out") == "$1"* ]]; }
out_has() { grep -qF -- "$1" "$run/out"; }
out_has_re() { grep -qE -- "$1" "$run/out"; }
out_lacks_re() { ! grep -qE -- "$1" "$run/out"; }
out_count_re() { [[ $(grep -cE -- "$2" "$run/out") == "$1" ]]; }
fails_with_prefix() { [[ $rc == "$1" && $(tail -n 1 "$run/out") == "$2"* ]]; }
ends_with() { [[ $rc == "$1" && $(tail -n 1 "$run/out") == "$2" ]]; }
log_has_re() { grep -qE -- "$1" "$run/log"; }
log_lacks_re() { ! grep -qE -- "$1" "$run/log"; }
log_count_re() { [[ $(grep -cE -- "$2" "$run/log") == "$1" ]]; }
file_count() { [[ $(grep -cF -- "$2" "$3") == "$1" ]]; }
log_has() { grep -qF -- "$1" "$run/log"; }
log_lacks() { ! grep -qF -- "$1" "$run/log"; }
log_count() { [[ $(grep -cF -- "$2" "$run/log") == "$1" ]]; }
no_calls() { [[ ! -s $run/log ]]; }
# The installs in the order they were made, one "INSTANCE ROLE[ --uninstall]" a line.
installs() {
    sed -n 's/^gcloud compute ssh \([^ ]*\) .*--command sudo bash -s -- \([a-z]*\) .*--image [^ ]*\( --uninstall\)\{0,1\}.*$/\1 \2\3/p' "$run/log"
}
installs_are() { [[ $(installs) == "$1" ]]; }
every_install_got_the_script() {
    local f count=0
    for f in "$run"/state/stdin-*; do
        [[ -f $f ]] || return 1
        cmp -s "$f" "$installer" || return 1
        count=$((count + 1))
    done
    ((count > 0)) && ! grep -q '^stdin .*: [^#]' "$run/log"
}
no_leftover_tmp() { [[ -z $(find "$run" -maxdepth 1 -name 'gcp-project-setup.*' -print -quit) ]]; }

# ---------------------------------------------------------------------------------------
say "# sandbox: only the stubs can answer for gcloud and kubectl"
check "gcloud on the test PATH is the stub" \
    test "$(PATH=$stubs:$minbin command -v gcloud)" = "$stubs/gcloud"
check "kubectl on the test PATH is the stub" \
    test "$(PATH=$stubs:$minbin command -v kubectl)" = "$stubs/kubectl"
unreachable() { ! PATH=$stubs:$minbin command -v "$1" >/dev/null; }
check "curl is not reachable on the test PATH" unreachable curl
check "ssh is not reachable on the test PATH" unreachable ssh


say "# usage errors"
new_run
setup vm-cluster
check "no PROJECT_ID: exit status 2" status_is 2
check "no PROJECT_ID: says so in the status line" last_line_is "SCRIPT FAILED: missing PROJECT_ID"
check "no PROJECT_ID: gcloud is not called" no_calls

new_run
setup vm-cluster --frobnicate demo-project-123
check "unknown option: exit status 2" status_is 2
check "unknown option: named in the status line" last_line_is "SCRIPT FAILED: unknown option: --frobnicate"

new_run
setup vm-cluster Demo_Project
check "malformed PROJECT_ID: exit status 2" status_is 2
check "malformed PROJECT_ID: no call" no_calls
check "malformed PROJECT_ID: said so" out_has "not a Google Cloud project ID: Demo_Project"

new_run
setup vm-cluster demo-project-123 --image 'evil;reboot'
check "image name with shell characters: refused with exit status 2" status_is 2
check "image name with shell characters: nothing is run" no_calls

new_run
setup vm-cluster demo-project-123 other-project-456
check "two project IDs: exit status 2" status_is 2

new_run
setup vm-cluster demo-project-123 --image
check "option without its value: exit status 2" status_is 2
check "option without its value: said so" out_has "--image needs a value"

new_run
setup vm-cluster --help
check "--help: exit status 0" status_is 0
check "--help: prints the usage" out_has "Usage: gcp-project-setup.sh [OPTIONS] PROJECT_ID"
check "--help: no status line" out_lacks_re "^SCRIPT"
check "--help: no call" no_calls

new_run
SETUP_PATH=$minbin setup vm-cluster demo-project-123
check "gcloud missing: exit status 2" status_is 2
check "gcloud missing: says so" last_line_starts "SCRIPT FAILED: gcloud not found on PATH"

new_run
setup vm-cluster demo-project-123 --install-script "$work/no-such-install.sh"
check "installer missing: exit status 2" status_is 2
check "installer missing: named" last_line_is "SCRIPT FAILED: installer not found: $work/no-such-install.sh (use --install-script FILE)"
check "installer missing: no ssh" log_lacks "compute ssh"

say "# VM path: 1 master, 3 nodes, a stopped node, 2 VMs outside the cluster"
new_run
setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "succeeds with exit status 0" status_is 0
check "ends with SCRIPT ALL DONE" last_line_is "SCRIPT ALL DONE"
check "says it took the VM path" out_has "Path: VM (Kubernetes master VM k8s-guestbook-master in us-central1-b)"
check "asks gcloud for RUNNING instances only" \
    log_has "gcloud compute instances list --project demo-project-123 --filter=status=RUNNING --format="
check "minion on each running node, then master on the master, in that order" installs_are \
    "k8s-guestbook-node-1 minion
k8s-guestbook-node-2 minion
k8s-guestbook-node-3 minion
k8s-guestbook-master master"
check "each install is piped to its instance in its zone" \
    log_has "gcloud compute ssh k8s-guestbook-node-2 --project demo-project-123 --zone us-central1-b --quiet --command sudo bash -s -- minion --image $image"
check "every install received the installer (a script starting with #!) on stdin" every_install_got_the_script
check "the stopped node is left alone" log_lacks "k8s-guestbook-node-4"
check "VMs outside the cluster are left alone" log_lacks_re "build-node-1|ci-runner"
check "firewall rule looked up, then created once for tcp:5555 on the master's tag" \
    log_count 1 "gcloud compute firewall-rules create cluster-insight-collector --project demo-project-123 --network default --direction INGRESS --allow tcp:5555 --source-ranges 203.0.113.0/24 --target-tags k8s-guestbook-master"
check "master's /healthz checked on the master itself" \
    log_has "gcloud compute ssh k8s-guestbook-master --project demo-project-123 --zone us-central1-b --quiet --command curl -fsS --max-time 5 http://localhost:5555/healthz"
check "prints where the REST API is" out_has "Cluster Insight is up: http://203.0.113.10:5555/cluster"
check "kubectl is not used on the VM path" log_lacks "kubectl"
check "its temporary directory is removed" no_leftover_tmp
token=$run/config/cluster-insight/demo-project-123.token
token_made() { grep -qxE '[0-9a-f]{64}' "$token" && [[ $(stat -c %a "$token") == 600 ]]; }
check "it made the token callers present: 64 hex digits, readable by the user only" token_made
check "it says where the token is" out_has "Made the token callers must present: $token"
every_vm_got_the_token() {
    local f count=0
    for f in "$run"/state/token-*; do
        cmp -s "$f" "$token" || return 1
        count=$((count + 1))
    done
    ((count == 4))
}
check "each of the four VMs got that token on stdin, to /etc/cluster-insight/token, root's only" \
    every_vm_got_the_token
check "the token is copied to a VM before its install" bash -c \
    "grep -E '^(token|stdin) k8s-guestbook-node-2' '$run/log' | head -n 1 | grep -q '^token '"
check "the token never appears in a command line or the output" bash -c \
    "! grep -qF \"\$(cat '$token')\" '$run/log' '$run/out'"

say "# VM path again, the firewall rule now existing"
: >"$run/log"
setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "second run succeeds" last_line_is "SCRIPT ALL DONE"
check "second run looks the rule up" log_has "gcloud compute firewall-rules describe cluster-insight-collector"
check "second run does not create the rule again" log_lacks "firewall-rules create"
check "second run says the rule was left unchanged" out_has "Firewall rule cluster-insight-collector already exists: left unchanged"
check "second run reuses the token" out_has "Using the token in $run/config/cluster-insight/demo-project-123.token"

say "# who may reach the master"
new_run
SETUP_SOURCE_RANGES='' setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "no --source-ranges: SCRIPT FAILED says to give one, exit status 2" \
    ends_with 2 "SCRIPT FAILED: give --source-ranges CIDRS, the addresses that may reach port 5555 of the master (or --no-firewall)"
check "no --source-ranges: nothing installed" log_lacks "compute ssh"
new_run
SETUP_SOURCE_RANGES='' setup vm-cluster demo-project-123 --no-firewall ${installer_args[@]+"${installer_args[@]}"}
check "no --source-ranges with --no-firewall: fine" ends_with 0 "SCRIPT ALL DONE"

say "# failures"
new_run
STUB_FAIL="compute ssh k8s-guestbook-node-2" setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "ssh to one node fails: exit status 1" status_is 1
check "ssh to one node fails: SCRIPT FAILED names the node and the step" \
    last_line_is "SCRIPT FAILED: minion on k8s-guestbook-node-2: copying the token: gcloud compute ssh exited with status 255"
check "ssh to one node fails: the other nodes are still installed, that node and the master are not" installs_are \
    "k8s-guestbook-node-1 minion
k8s-guestbook-node-3 minion"
check "ssh to one node fails: no firewall change" log_lacks "firewall-rules"

new_run
STUB_FAIL="compute ssh k8s-guestbook-node-2 --project demo-project-123 --zone us-central1-b --quiet --command sudo bash" \
    setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "ssh fails on one node after the token was copied: SCRIPT FAILED names the node" \
    ends_with 1 "SCRIPT FAILED: minion on k8s-guestbook-node-2: gcloud compute ssh exited with status 255"
check "... the token had reached it" log_has "token k8s-guestbook-node-2: "

new_run
STUB_FAIL="compute ssh k8s-guestbook-node-1;compute ssh k8s-guestbook-node-3" \
    setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "two nodes fail: the second one is listed" out_has_re "^minion on k8s-guestbook-node-3: "
check "two nodes fail: the status line names the first and counts the rest" \
    last_line_is "SCRIPT FAILED: minion on k8s-guestbook-node-1: copying the token: gcloud compute ssh exited with status 255 (and 1 more, listed above)"

new_run
STUB_INSTALL_FAIL=k8s-guestbook-node-3 setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "install.sh fails on a node: its FAILED reason is passed on" \
    last_line_is "SCRIPT FAILED: minion on k8s-guestbook-node-3: FAILED: docker is not running"
check "install.sh fails on a node: exit status 1" status_is 1

new_run
STUB_INSTALL_MUTE=k8s-guestbook-node-1 setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "install.sh ends without ALL DONE on a node: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: minion on k8s-guestbook-node-1: install.sh did not print ALL DONE"

new_run
STUB_INSTALL_FAIL=k8s-guestbook-master setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "install.sh fails on the master: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: master on k8s-guestbook-master: FAILED: docker is not running"
check "install.sh fails on the master: no firewall change" log_lacks "firewall-rules"

new_run
STUB_FAIL="firewall-rules create" setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "firewall rule creation fails: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: could not create firewall rule cluster-insight-collector"
check "firewall rule creation fails: no health check" log_lacks "healthz"

new_run
STUB_HEALTHZ_FAILURES=all setup vm-cluster demo-project-123 --healthz-attempts 2 ${installer_args[@]+"${installer_args[@]}"}
check "master never healthy: exit status 1" status_is 1
check "master never healthy: SCRIPT FAILED says so" \
    last_line_is "SCRIPT FAILED: the master on k8s-guestbook-master did not answer on http://localhost:5555/healthz after 2 attempt(s)"
check "master never healthy: asked exactly --healthz-attempts times" log_count 2 "/healthz"

new_run
STUB_HEALTHZ_FAILURES=1 setup vm-cluster demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "master healthy at the second probe: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "master healthy at the second probe: probed twice" log_count 2 "/healthz"

new_run
setup empty demo-project-123
check "no instances and no GKE cluster: exit status 1" status_is 1
check "no instances and no GKE cluster: SCRIPT FAILED says so" \
    last_line_is "SCRIPT FAILED: no Kubernetes master VM and no GKE cluster in project demo-project-123"

new_run
STUB_FAIL="instances list" setup vm-cluster demo-project-123
check "instance listing fails: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: could not list the VM instances of project demo-project-123 (see the gcloud error above)"

new_run
SETUP_TMPDIR=$run/no-such-dir setup vm-cluster demo-project-123
check "an unforeseen error (no temporary directory) still ends with SCRIPT FAILED, exit status 1" \
    fails_with_prefix 1 "SCRIPT FAILED: unexpected error (exit status 1) at line "

say "# choosing among clusters"
new_run
setup two-clusters demo-project-123 ${installer_args[@]+"${installer_args[@]}"}
check "two masters: SCRIPT FAILED asks for --cluster, naming both (not the lone jenkins-master)" \
    last_line_is "SCRIPT FAILED: several Kubernetes masters in project demo-project-123 (k8s-guestbook-master, staging-master): choose one with --cluster NAME"
check "two masters: nothing installed" log_lacks "compute ssh"

new_run
setup two-clusters demo-project-123 --cluster staging ${installer_args[@]+"${installer_args[@]}"}
check "--cluster staging: succeeds" last_line_is "SCRIPT ALL DONE"
check "--cluster staging: minion-group nodes, then the staging master" installs_are \
    "staging-minion-group-x1y2 minion
staging-minion-group-q7r4 minion
staging-master master"
check "--cluster staging: ssh goes to the right zone" \
    log_has "gcloud compute ssh staging-master --project demo-project-123 --zone europe-west1-d"
check "--cluster staging: the rule is on the cluster's network and master tag" \
    log_has "--network staging --direction INGRESS --allow tcp:5555 --source-ranges 203.0.113.0/24 --target-tags staging-master"

new_run
setup two-clusters demo-project-123 --zone us-central1-b ${installer_args[@]+"${installer_args[@]}"}
check "--zone: succeeds with the one master left" ends_with 0 "SCRIPT ALL DONE"
check "--zone: gcloud lists that zone only" log_has "--zones us-central1-b"
check "--zone: the cluster in another zone is left alone" log_lacks "staging"

say "# options"
new_run
setup vm-cluster demo-project-123 --image registry.example/ci:1.2 --master-flags "--refresh-interval 30 --debug" \
    --source-ranges 198.51.100.0/24 --firewall-rule ci-master ${installer_args[@]+"${installer_args[@]}"}
check "--image reaches every install" log_count 4 "--image registry.example/ci:1.2"
check "--master-flags reaches the master, quoted for the remote shell" \
    log_has 'master --image registry.example/ci:1.2 --master-flags --refresh-interval\ 30\ --debug'
check "--master-flags does not reach the minions" log_count 1 "--master-flags"
check "--source-ranges and --firewall-rule shape the rule" \
    log_has "gcloud compute firewall-rules create ci-master --project demo-project-123 --network default --direction INGRESS --allow tcp:5555 --source-ranges 198.51.100.0/24"

new_run
setup vm-cluster demo-project-123 --no-firewall ${installer_args[@]+"${installer_args[@]}"}
check "--no-firewall: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "--no-firewall: firewall rules are not touched" log_lacks "firewall-rules"

new_run
setup vm-cluster demo-project-123 --tunnel-through-iap ${installer_args[@]+"${installer_args[@]}"}
check "--tunnel-through-iap: 9 ssh calls (4 tokens, 4 installs, 1 probe)" log_count_re 9 "^gcloud compute ssh "
check "--tunnel-through-iap: every one through IAP" log_count_re 9 "^gcloud compute ssh .*--tunnel-through-iap"

new_run
setup vm-cluster demo-project-123 --dry-run ${installer_args[@]+"${installer_args[@]}"}
check "--dry-run: succeeds" last_line_is "SCRIPT ALL DONE"
check "--dry-run: no ssh, no rule created" log_lacks_re "compute ssh|firewall-rules create"
check "--dry-run: shows the installs it would make" out_count_re 4 "^would run: gcloud compute ssh .* --command .sudo bash -s -- "
check "--dry-run: says nothing was changed" out_has "Dry run: nothing was changed"

new_run
printf 'k8s-guestbook-master\n' >"$run/state/firewall-cluster-insight-collector"
setup vm-cluster demo-project-123 --uninstall ${installer_args[@]+"${installer_args[@]}"}
check "--uninstall: succeeds" last_line_is "SCRIPT ALL DONE"
check "--uninstall: master first, then every node, each with --uninstall" installs_are \
    "k8s-guestbook-master master --uninstall
k8s-guestbook-node-1 minion --uninstall
k8s-guestbook-node-2 minion --uninstall
k8s-guestbook-node-3 minion --uninstall"
check "--uninstall: the firewall rule is deleted" \
    log_has "gcloud compute firewall-rules delete cluster-insight-collector --project demo-project-123 --quiet"
check "--uninstall: no health check" log_lacks "healthz"

say "# GKE path: no master VM"
new_run
setup gke demo-project-123
check "GKE: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "GKE: says it took the GKE path" out_has "Path: GKE (cluster demo in us-central1-a): kubectl apply -f controller.json"
check "GKE: the lone jenkins-master VM is not taken for a master" \
    out_has "jenkins-master looks like a Kubernetes master but no node VM of cluster jenkins runs: ignored"
check "GKE: credentials fetched for the zonal cluster" \
    log_has "gcloud container clusters get-credentials demo --project demo-project-123 --zone us-central1-a"
check "GKE: controller.json applied with kubectl apply -f, through the private kubeconfig" \
    log_has_re "^kubectl --kubeconfig $run/gcp-project-setup\.[A-Za-z0-9]+/kubeconfig apply -f $root/controller\.json\$"
check "GKE: what was applied is controller.json itself" cmp -s "$run/state/applied-1.json" "$root/controller.json"
check "GKE: waits for the master deployment" log_has "-n cluster-insight rollout status deployment/cluster-insight-master"
check "GKE: asks the master's /healthz through the API server" \
    log_has "get --raw /api/v1/namespaces/cluster-insight/services/cluster-insight:http/proxy/healthz"
check "GKE: no ssh and no firewall rule" log_lacks_re "compute ssh|firewall-rules"

new_run
STUB_MINIONS_READY=1/2 setup gke demo-project-123 --image registry.example/ci:1.2
check "GKE --image: both pod templates in the applied manifests use that image" \
    file_count 2 '"image": "registry.example/ci:1.2"' "$run/state/applied-1.json"
check "GKE --image: the default image is gone from them" \
    file_count 0 "\"image\": \"$image\"" "$run/state/applied-1.json"
check "GKE: minions not all ready: still a success" ends_with 0 "SCRIPT ALL DONE"
check "GKE: minions not all ready: reported" out_has "Minions ready: 1/2"
check "GKE: minions not all ready: warned about" out_has_re "^warning: not every node runs a ready minion"

new_run
STUB_FAIL="apply -f" setup gke demo-project-123
check "GKE: kubectl apply fails: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: kubectl apply -f $root/controller.json failed"

new_run
STUB_HEALTHZ_FAILURES=all setup gke demo-project-123 --healthz-attempts 1
check "GKE: master never healthy: SCRIPT FAILED" \
    last_line_is "SCRIPT FAILED: the master did not answer on /api/v1/namespaces/cluster-insight/services/cluster-insight:http/proxy/healthz after 1 attempt(s)"

new_run
STUB_FAIL="get-credentials" setup gke demo-project-123
check "GKE: credentials cannot be had: SCRIPT FAILED, exit status 1" \
    ends_with 1 "SCRIPT FAILED: could not get the credentials of GKE cluster demo"
check "GKE: credentials cannot be had: kubectl is not run" log_lacks "kubectl"

new_run
SETUP_PATH=$gcloud_only:$minbin setup gke demo-project-123
check "GKE without kubectl: exit status 2" status_is 2
check "GKE without kubectl: says so" last_line_starts "SCRIPT FAILED: kubectl not found on PATH"

new_run
setup gke-two demo-project-123
check "two GKE clusters: SCRIPT FAILED asks for --cluster" \
    last_line_is "SCRIPT FAILED: several GKE clusters in project demo-project-123: prod (europe-west1), demo (us-central1-a); choose one with --cluster NAME"

new_run
setup gke-two demo-project-123 --cluster prod
check "--cluster prod: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "--cluster prod: regional cluster credentials use --region" \
    log_has_re "get-credentials prod --project demo-project-123 --region europe-west1\$"

new_run
setup gke demo-project-123 --uninstall
check "GKE --uninstall: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "GKE --uninstall: kubectl delete -f controller.json" \
    log_has_re "^kubectl --kubeconfig [^ ]+ delete --ignore-not-found -f $root/controller\.json\$"
check "GKE --uninstall: nothing applied" log_lacks " apply "

new_run
setup gke demo-project-123 --dry-run
check "GKE --dry-run: succeeds" ends_with 0 "SCRIPT ALL DONE"
check "GKE --dry-run: no credentials fetched, kubectl not run" log_lacks_re "get-credentials|kubectl"
check "GKE --dry-run: shows the apply it would make" out_has_re "^would run: .*kubectl --kubeconfig .* apply -f"

run=
say "$passed passed, $failed failed"
((failed == 0))
