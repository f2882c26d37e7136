#!/usr/bin/env bash
# gcp-project-setup.sh PROJECT_ID: installs Cluster Insight on the Kubernetes cluster of a
# Google Cloud project, from a workstation with the Google Cloud SDK (`gcloud`).
#
# Two paths, chosen by what the project holds:
#  - VM path: a cluster built from Compute Engine VMs (a `NAME-master` VM and its
#    `NAME-node-*` / `NAME-minion-*` VMs). A token every caller must present is made (or
#    reused) on the workstation and copied to /etc/cluster-insight/token on every VM; then
#    install.sh is piped over `gcloud compute ssh`: minion on every node first, then master
#    on the master VM; then a firewall rule opens tcp:5555 of the master's network tag to
#    the address ranges given, and the master's /healthz is checked from the master itself.
#  - GKE path: no master VM exists (GKE hides it). The cluster's credentials are fetched
#    into a private kubeconfig (the user's own kubeconfig is left alone) and controller.json
#    is applied with `kubectl apply -f`.
#
# The last line printed is `SCRIPT ALL DONE`, or `SCRIPT FAILED: reason` with a non-zero
# exit status: 2 for a usage error or a missing tool or file, 1 for anything else.
# Written for bash 3.2 and later (the bash of macOS workstations): no associative arrays,
# no mapfile, and empty arrays are expanded with the ${a[@]+"${a[@]}"} idiom under `set -u`.
set -euo pipefail

readonly DEFAULT_IMAGE=cluster-insight:0.1.0
readonly MASTER_PORT=5555
readonly NAMESPACE=cluster-insight
# One line per instance, fields separated by `|` (GCE names, zones, networks and tags never
# contain `|` or `,`). A non-whitespace separator keeps empty fields (no external IP, no
# tags) in place, which `read` would not do with tabs.
readonly INSTANCE_FORMAT='value[separator="|"](name,zone.basename(),status,networkInterfaces[0].network.basename(),networkInterfaces[0].accessConfigs[0].natIP,tags.items.list())'
readonly CLUSTER_FORMAT='value[separator="|"](name,location)'

script_dir=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)

usage() {
    cat <<EOF
Usage: gcp-project-setup.sh [OPTIONS] PROJECT_ID

Installs Cluster Insight on the Kubernetes cluster of the Google Cloud project PROJECT_ID:
over ssh on clusters made of Compute Engine VMs (a NAME-master VM and its nodes), or with
'kubectl apply -f controller.json' on GKE. Ends with 'SCRIPT ALL DONE' or 'SCRIPT FAILED'.

Options:
  --image NAME            container image to run (default: $DEFAULT_IMAGE)
  --zone ZONE             only consider VMs (and GKE clusters) in this zone
  --cluster NAME          the cluster to use when the project holds several: the prefix of
                          the master VM's name (NAME-master), or the GKE cluster's name
  --master-flags "FLAGS"  extra flags for the master, passed to install.sh (VM path)
  --firewall-rule NAME    firewall rule opening tcp:$MASTER_PORT to the master
                          (default: cluster-insight-collector; VM path)
  --source-ranges CIDRS   who may reach the master's port $MASTER_PORT, e.g. your office's
                          range 198.51.100.0/24 (VM path; required unless --no-firewall)
  --no-firewall           do not create the firewall rule (the REST API then stays private)
  --auth-token-file FILE  the token callers present, copied to every VM (VM path; default:
                          \${XDG_CONFIG_HOME:-~/.config}/cluster-insight/PROJECT_ID.token,
                          made with mode 0600 when missing)
  --tunnel-through-iap    reach the VMs through Identity-Aware Proxy (VMs without external IP)
  --healthz-attempts N    how many times to ask the master's /healthz, 5 s apart (default: 12)
  --install-script FILE   the per-host installer (default: install.sh beside this script)
  --controller FILE       the manifests for GKE (default: controller.json beside this script)
  --uninstall             remove Cluster Insight (and the firewall rule) instead
  --dry-run               list what would be done; change nothing
  -h, --help              show this help

Exit status: 0 on success, 2 on a usage error or missing tool or file, 1 on any other failure.
EOF
}

finished=0
tmp=
fail_line=
fail_cmd=

say() { printf '%s\n' "$*"; }
note() { printf '%s\n' "$*" >&2; }

# Ends the run with the status line that callers and users look for.
fail() {
    local code=$1
    shift
    finished=1
    say "SCRIPT FAILED: $*"
    exit "$code"
}

usage_error() {
    note "gcp-project-setup.sh: $*"
    note "Try 'gcp-project-setup.sh --help'."
    fail 2 "$*"
}

on_exit() {
    local rc=$?
    if [[ -n $tmp ]]; then
        rm -rf "$tmp"
    fi
    # set -e stopped us somewhere unplanned: still end with the promised status line.
    if ((finished == 0)); then
        say "SCRIPT FAILED: unexpected error (exit status $rc) at line ${fail_line:-?}: ${fail_cmd:-?}"
    fi
}

on_signal() {
    trap - INT TERM
    fail 1 "interrupted"
}

set -E
trap 'fail_line=$LINENO; fail_cmd=$BASH_COMMAND' ERR
trap on_exit EXIT
trap on_signal INT TERM

# ---------------------------------------------------------------------------------------
# Options

project=
image=$DEFAULT_IMAGE
zone=
cluster=
master_flags=
have_master_flags=0
firewall_rule='cluster-insight-collector'
source_ranges=
no_firewall=0
token_file=
use_iap=0
healthz_attempts=12
install_script=$script_dir/install.sh
controller=$script_dir/controller.json
uninstall=0
dry_run=0

while (($# > 0)); do
    opt=$1
    val=
    has_val=0
    case $opt in
    --*=*)
        val=${opt#*=}
        opt=${opt%%=*}
        has_val=1
        ;;
    esac
    case $opt in
    --image | --zone | --cluster | --master-flags | --firewall-rule | --source-ranges | \
        --healthz-attempts | --install-script | --controller | --auth-token-file)
        if ((has_val == 0)); then
            (($# >= 2)) || usage_error "$opt needs a value"
            val=$2
            shift
        fi
        ;;
    *)
        ((has_val == 0)) || usage_error "$opt takes no value"
        ;;
    esac
    case $opt in
    -h | --help)
        usage
        finished=1
        exit 0
        ;;
    --image) image=$val ;;
    --zone) zone=$val ;;
    --cluster) cluster=$val ;;
    --master-flags)
        master_flags=$val
        have_master_flags=1
        ;;
    --firewall-rule) firewall_rule=$val ;;
    --source-ranges) source_ranges=$val ;;
    --auth-token-file) token_file=$val ;;
    --no-firewall) no_firewall=1 ;;
    --tunnel-through-iap) use_iap=1 ;;
    --healthz-attempts) healthz_attempts=$val ;;
    --install-script) install_script=$val ;;
    --controller) controller=$val ;;
    --uninstall) uninstall=1 ;;
    --dry-run) dry_run=1 ;;
    --)
        shift
        break
        ;;
    -*) usage_error "unknown option: $opt" ;;
    *)
        [[ -z $project ]] || usage_error "unexpected argument: $opt (PROJECT_ID is already $project)"
        project=$opt
        ;;
    esac
    shift
done
while (($# > 0)); do
    [[ -z $project ]] || usage_error "unexpected argument: $1 (PROJECT_ID is already $project)"
    project=$1
    shift
done

# Everything below ends up in command lines run on remote hosts or passed to gcloud, so
# each value is held to the characters its kind of name can contain.
[[ -n $project ]] || usage_error "missing PROJECT_ID"
[[ $project =~ ^([a-z0-9.-]+:)?[a-z][a-z0-9-]{4,28}[a-z0-9]$ ]] ||
    usage_error "not a Google Cloud project ID: $project"
[[ ${#image} -le 255 && $image =~ ^[A-Za-z0-9][A-Za-z0-9._/:@-]*$ ]] ||
    usage_error "not a container image name: $image"
[[ -z $zone || $zone =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]] || usage_error "not a zone: $zone"
[[ -z $cluster || $cluster =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    usage_error "not a cluster name: $cluster"
[[ $firewall_rule =~ ^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$ ]] ||
    usage_error "not a firewall rule name: $firewall_rule"
[[ -z $source_ranges || $source_ranges =~ ^[0-9A-Fa-f.:/]+(,[0-9A-Fa-f.:/]+)*$ ]] ||
    usage_error "not a list of address ranges: $source_ranges"
: "${token_file:=${XDG_CONFIG_HOME:-${HOME:-.}/.config}/cluster-insight/$project.token}"
[[ $healthz_attempts =~ ^[1-9][0-9]?$ ]] ||
    usage_error "--healthz-attempts must be a number from 1 to 99: $healthz_attempts"

command -v gcloud >/dev/null 2>&1 ||
    fail 2 "gcloud not found on PATH: install the Google Cloud SDK (https://cloud.google.com/sdk)"

tmp=$(mktemp -d "${TMPDIR:-/tmp}/gcp-project-setup.XXXXXX")

# Prints a command instead of running it, in --dry-run mode.
show() {
    local out='would run:' arg
    for arg in "$@"; do
        if [[ $arg =~ ^[A-Za-z0-9_./:=,@+-]+$ ]]; then
            out+=" $arg"
        else
            out+=" '${arg//\'/\'\\\'\'}'"
        fi
    done
    say "$out"
}

ssh_args=()
set_ssh_args() { # INSTANCE ZONE: the gcloud arguments that reach one VM, into ssh_args
    ssh_args=(compute ssh "$1" --project "$project" --zone "$2" --quiet)
    if ((use_iap == 1)); then
        ssh_args+=(--tunnel-through-iap)
    fi
}

# ---------------------------------------------------------------------------------------
# Discovery

say "Project $project: listing the running VM instances"
list_args=(compute instances list --project "$project" --filter=status=RUNNING "--format=$INSTANCE_FORMAT")
if [[ -n $zone ]]; then
    list_args+=(--zones "$zone")
fi
if ! listing=$(gcloud "${list_args[@]}"); then
    fail 1 "could not list the VM instances of project $project (see the gcloud error above)"
fi

names=() zones=() networks=() addresses=() tagsets=()
while IFS='|' read -r name izone status network address tags; do
    [[ -n $name ]] || continue
    # The filter already asked for RUNNING VMs; a stopped VM cannot take an install anyway.
    [[ $status == RUNNING ]] || continue
    [[ -z $zone || $izone == "$zone" ]] || continue
    if [[ ! $name =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ || ! $izone =~ ^[a-z]+-[a-z]+[0-9]+-[a-z]$ ]]; then
        note "warning: ignoring an instance line gcloud printed in an unexpected shape: $name|$izone"
        continue
    fi
    names+=("$name")
    zones+=("$izone")
    networks+=("${network:-default}")
    addresses+=("$address")
    tagsets+=(",$tags,")
done <<<"$listing"
say "Found ${#names[@]} running instance(s)"

is_node_of() { # PREFIX INDEX: is this VM a node of cluster PREFIX (kube-up's names and tags)?
    local p=$1 i=$2
    [[ ${names[i]} == "$p"-node-* || ${names[i]} == "$p"-minion-* ||
        ${tagsets[i]} == *",$p-node,"* || ${tagsets[i]} == *",$p-minion,"* ]]
}

# The master is NAME-master, or carries the network tag NAME-master, and has at least one
# node VM: a lone VM that merely ends in -master (a CI server, say) is not taken for one.
master=-1
prefix=
masters=
nmasters=0
i=0
while ((i < ${#names[@]})); do
    p=
    if [[ ${names[i]} =~ ^(.+)-master$ ]]; then
        p=${BASH_REMATCH[1]}
    elif [[ ${tagsets[i]} =~ ,([a-z][-a-z0-9]*)-master, ]]; then
        p=${BASH_REMATCH[1]}
    fi
    if [[ -n $p && (-z $cluster || $p == "$cluster") ]]; then
        j=0
        has_nodes=0
        while ((j < ${#names[@]})); do
            if ((j != i)) && is_node_of "$p" "$j"; then
                has_nodes=1
                break
            fi
            j=$((j + 1))
        done
        if ((has_nodes == 1)); then
            masters+="${masters:+, }${names[i]}"
            nmasters=$((nmasters + 1))
            master=$i
            prefix=$p
        else
            note "note: ${names[i]} looks like a Kubernetes master but no node VM of cluster $p runs: ignored"
        fi
    fi
    i=$((i + 1))
done
if ((nmasters > 1)); then
    fail 1 "several Kubernetes masters in project $project ($masters): choose one with --cluster NAME"
fi

# ---------------------------------------------------------------------------------------
# VM path

# Makes sure token_file holds a token: made from 32 random bytes when it is missing,
# readable by its owner only.
ensure_token() {
    if [[ ! -e $token_file ]]; then
        local token
        if ((dry_run == 1)); then
            say "would make a token in $token_file"
            return 0
        fi
        token=$(od -An -N32 -tx1 /dev/urandom | tr -d ' \n') || fail 1 "cannot read /dev/urandom"
        [[ ${#token} == 64 ]] || fail 1 "cannot make a token from /dev/urandom"
        mkdir -p "$(dirname "$token_file")" || fail 1 "cannot make the directory of $token_file"
        (umask 077 && printf '%s\n' "$token" >"$token_file") || fail 1 "cannot write $token_file"
        say "Made the token callers must present: $token_file"
    else
        say "Using the token in $token_file"
    fi
    { [[ -r $token_file ]] && grep -q '[^[:space:]]' "$token_file"; } ||
        fail 2 "the token file $token_file is empty or unreadable"
}

# Copies the token to /etc/cluster-insight/token on one VM, where install.sh finds it.
push_token() { # INSTANCE ZONE ROLE
    local name=$1 remote="sudo sh -c 'umask 077 && mkdir -p /etc/cluster-insight && cat >/etc/cluster-insight/token'"
    set_ssh_args "$1" "$2"
    if ((dry_run == 1)); then
        show gcloud "${ssh_args[@]}" --command "$remote"
        say "  (with $token_file on standard input)"
        return 0
    fi
    local rc=0
    gcloud "${ssh_args[@]}" --command "$remote" <"$token_file" || rc=$?
    if ((rc != 0)); then
        say "$3 on $name: copying the token: gcloud compute ssh exited with status $rc" >>"$tmp/failures"
        return 1
    fi
}

# Runs install.sh on one VM; its output is shown as it comes and must end in ALL DONE.
remote_install() { # ROLE INSTANCE ZONE
    local role=$1 name=$2 izone=$3 remote log rc=0 reason
    remote="sudo bash -s -- $role --image $image"
    if [[ $role == master && $have_master_flags == 1 ]]; then
        remote+=" --master-flags $(printf '%q' "$master_flags")"
    fi
    if ((uninstall == 1)); then
        remote+=" --uninstall"
    fi
    set_ssh_args "$name" "$izone"
    if ((dry_run == 1)); then
        show gcloud "${ssh_args[@]}" --command "$remote"
        say "  (with $install_script on standard input)"
        return 0
    fi
    say "==> $name ($izone): $remote"
    log=$tmp/install-$name.log
    gcloud "${ssh_args[@]}" --command "$remote" <"$install_script" 2>&1 | tee "$log.raw" || rc=$?
    # ssh may hand back CRLF line ends; the verdict is read from the cleaned copy.
    tr -d '\r' <"$log.raw" >"$log"
    if ((rc == 0)) && grep -qx 'ALL DONE' "$log"; then
        return 0
    fi
    reason=$(grep '^FAILED:' "$log" | tail -n 1 || true)
    if [[ -z $reason ]]; then
        if ((rc != 0)); then
            reason="gcloud compute ssh exited with status $rc"
        else
            reason="install.sh did not print ALL DONE"
        fi
    fi
    say "$role on $name: $reason" >>"$tmp/failures"
    return 1
}

firewall() {
    local tag=$1 network=$2 targets
    if ((uninstall == 1)); then
        if ((dry_run == 1)); then
            show gcloud compute firewall-rules delete "$firewall_rule" --project "$project" --quiet
            return 0
        fi
        if gcloud compute firewall-rules describe "$firewall_rule" --project "$project" \
            --format='value(name)' >/dev/null 2>&1; then
            gcloud compute firewall-rules delete "$firewall_rule" --project "$project" --quiet ||
                fail 1 "could not delete firewall rule $firewall_rule"
            say "Deleted firewall rule $firewall_rule"
        else
            say "Firewall rule $firewall_rule does not exist"
        fi
        return 0
    fi
    if targets=$(gcloud compute firewall-rules describe "$firewall_rule" --project "$project" \
        --format='value(targetTags.list())' 2>/dev/null); then
        say "Firewall rule $firewall_rule already exists: left unchanged"
        if [[ ",$targets," != *",$tag,"* ]]; then
            note "warning: firewall rule $firewall_rule does not target tag $tag (it targets: ${targets:-all instances}); port $MASTER_PORT of the master may not be reachable"
        fi
        return 0
    fi
    local -a create=(compute firewall-rules create "$firewall_rule" --project "$project"
        --network "$network" --direction INGRESS --allow "tcp:$MASTER_PORT"
        --source-ranges "$source_ranges" --target-tags "$tag"
        --description "Cluster Insight REST API on the Kubernetes master")
    if ((dry_run == 1)); then
        show gcloud "${create[@]}"
        return 0
    fi
    say "Creating firewall rule $firewall_rule (tcp:$MASTER_PORT from $source_ranges to tag $tag)"
    gcloud "${create[@]}" || fail 1 "could not create firewall rule $firewall_rule"
}

healthz() { # INSTANCE ZONE
    local attempt=1 probe="curl -fsS --max-time 5 http://localhost:$MASTER_PORT/healthz"
    set_ssh_args "$1" "$2"
    if ((dry_run == 1)); then
        show gcloud "${ssh_args[@]}" --command "$probe"
        return 0
    fi
    while :; do
        say "Checking the master: $probe (attempt $attempt of $healthz_attempts)"
        if gcloud "${ssh_args[@]}" --command "$probe" </dev/null; then
            echo
            return 0
        fi
        ((attempt < healthz_attempts)) || return 1
        attempt=$((attempt + 1))
        sleep 5
    done
}

vm_path() {
    local mname=${names[master]} mzone=${zones[master]} tag='' i
    say "Path: VM (Kubernetes master VM $mname in $mzone): installing with install.sh over gcloud compute ssh"
    [[ -f $install_script && -r $install_script ]] ||
        fail 2 "installer not found: $install_script (use --install-script FILE)"

    local -a nodes=()
    local list=
    i=0
    while ((i < ${#names[@]})); do
        if ((i != master)) && is_node_of "$prefix" "$i"; then
            nodes+=("$i")
            list+="${list:+ }${names[i]}"
        fi
        i=$((i + 1))
    done
    say "Nodes of cluster $prefix: $list"

    # The master's tag is what the firewall rule targets.
    if [[ ${tagsets[master]} == *",$mname,"* ]]; then
        tag=$mname
    elif [[ ${tagsets[master]} =~ ,([a-z][-a-z0-9]*-master), ]]; then
        tag=${BASH_REMATCH[1]}
    fi

    if ((uninstall == 0)); then
        ((no_firewall == 1)) || [[ -n $source_ranges ]] ||
            fail 2 "give --source-ranges CIDRS, the addresses that may reach port $MASTER_PORT of the master (or --no-firewall)"
        ensure_token
    fi

    local what=Installing
    ((uninstall == 0)) || what=Uninstalling
    if ((uninstall == 1)); then
        # The master goes first so that it stops asking minions that are going away.
        say "$what the Cluster Insight master on $mname"
        remote_install master "$mname" "$mzone" || true
    fi
    for i in ${nodes[@]+"${nodes[@]}"}; do
        say "$what the Cluster Insight minion on ${names[i]}"
        if ((uninstall == 0)); then
            push_token "${names[i]}" "${zones[i]}" minion || continue
        fi
        remote_install minion "${names[i]}" "${zones[i]}" || true
    done
    if [[ -s $tmp/failures ]]; then
        local count
        count=$(grep -c . "$tmp/failures")
        say "Failed:"
        cat "$tmp/failures"
        if ((count > 1)); then
            fail 1 "$(head -n 1 "$tmp/failures") (and $((count - 1)) more, listed above)"
        fi
        fail 1 "$(cat "$tmp/failures")"
    fi
    if ((uninstall == 0)); then
        say "$what the Cluster Insight master on $mname"
        push_token "$mname" "$mzone" master || fail 1 "$(cat "$tmp/failures")"
        remote_install master "$mname" "$mzone" || fail 1 "$(cat "$tmp/failures")"
    fi

    if ((no_firewall == 0)); then
        if [[ -z $tag ]]; then
            ((uninstall == 1)) ||
                fail 1 "master $mname has no network tag to aim the firewall rule at (add one, or use --no-firewall)"
        fi
        firewall "$tag" "${networks[master]}"
    fi

    if ((uninstall == 0)); then
        healthz "$mname" "$mzone" ||
            fail 1 "the master on $mname did not answer on http://localhost:$MASTER_PORT/healthz after $healthz_attempts attempt(s)"
        if ((dry_run == 0)); then
            if [[ -n ${addresses[master]} && $no_firewall == 0 ]]; then
                say "Cluster Insight is up: http://${addresses[master]}:$MASTER_PORT/cluster"
            else
                say "Cluster Insight is up on $mname, port $MASTER_PORT"
            fi
            say "Callers present the token of $token_file: curl -H \"Authorization: Bearer \$(cat $token_file)\" ..."

        fi
    fi
}

# ---------------------------------------------------------------------------------------
# GKE path

gke_path() {
    local clusters name location found=0 gname='' glocation='' all=''
    say "No Kubernetes master VM in project $project: looking for a GKE cluster"
    if ! clusters=$(gcloud container clusters list --project "$project" "--format=$CLUSTER_FORMAT"); then
        fail 1 "no Kubernetes master VM found, and the GKE clusters of project $project could not be listed"
    fi
    while IFS='|' read -r name location; do
        [[ -n $name ]] || continue
        [[ -z $cluster || $name == "$cluster" ]] || continue
        # A zone filter keeps zonal clusters of that zone and regional ones of its region.
        [[ -z $zone || $location == "$zone" || $location == "${zone%-*}" ]] || continue
        [[ $name =~ ^[a-z]([-a-z0-9]*[a-z0-9])?$ && $location =~ ^[a-z]+-[a-z]+[0-9]+(-[a-z])?$ ]] || continue
        found=$((found + 1))
        all+="${all:+, }$name ($location)"
        gname=$name
        glocation=$location
    done <<<"$clusters"
    if ((found == 0)); then
        fail 1 "no Kubernetes master VM${cluster:+ for cluster $cluster} and no GKE cluster${cluster:+ named $cluster} in project $project${zone:+ (zone $zone)}"
    fi
    if ((found > 1)); then
        fail 1 "several GKE clusters in project $project: $all; choose one with --cluster NAME"
    fi
    say "Path: GKE (cluster $gname in $glocation): kubectl apply -f controller.json"

    command -v kubectl >/dev/null 2>&1 ||
        fail 2 "kubectl not found on PATH: install it (gcloud components install kubectl)"
    [[ -f $controller && -r $controller ]] ||
        fail 2 "manifests not found: $controller (use --controller FILE)"

    local where=--region
    if [[ $glocation =~ -[a-z]$ ]]; then
        where=--zone
    fi
    # A private kubeconfig: the user's current kubectl context is not switched behind their back.
    local kubeconfig=$tmp/kubeconfig
    local -a creds=(container clusters get-credentials "$gname" --project "$project" "$where" "$glocation")
    local -a kc=(kubectl --kubeconfig "$kubeconfig")

    local manifest=$controller
    if [[ $image != "$DEFAULT_IMAGE" ]]; then
        manifest=$tmp/controller.json
        sed "s|\"image\": \"$DEFAULT_IMAGE\"|\"image\": \"$image\"|" "$controller" >"$manifest"
        if grep -q "\"image\": \"$DEFAULT_IMAGE\"" "$manifest" || ! grep -q "\"image\": \"$image\"" "$manifest"; then
            fail 1 "could not set the image in $controller (expected \"image\": \"$DEFAULT_IMAGE\")"
        fi
    fi

    if ((dry_run == 1)); then
        show env "KUBECONFIG=$kubeconfig" gcloud "${creds[@]}"
        if ((uninstall == 1)); then
            show "${kc[@]}" delete --ignore-not-found -f "$controller"
        else
            show "${kc[@]}" apply -f "$manifest"
        fi
        return 0
    fi
    KUBECONFIG=$kubeconfig gcloud "${creds[@]}" ||
        fail 1 "could not get the credentials of GKE cluster $gname"

    if ((uninstall == 1)); then
        "${kc[@]}" delete --ignore-not-found -f "$controller" ||
            fail 1 "kubectl delete -f $controller failed"
        return 0
    fi

    "${kc[@]}" apply -f "$manifest" || fail 1 "kubectl apply -f $controller failed"
    "${kc[@]}" -n "$NAMESPACE" rollout status deployment/cluster-insight-master --timeout=300s ||
        fail 1 "the cluster-insight-master deployment did not become ready"
    # Minions that cannot start (a node without a Docker socket) leave holes in the graph but
    # do not stop the master, so they are reported rather than waited for.
    local ready
    ready=$("${kc[@]}" -n "$NAMESPACE" get daemonset cluster-insight-minion \
        -o 'jsonpath={.status.numberReady}/{.status.desiredNumberScheduled}' 2>/dev/null || true)
    say "Minions ready: ${ready:-unknown}"
    if [[ ! $ready =~ ^([0-9]+)/([0-9]+)$ || ${BASH_REMATCH[1]} != "${BASH_REMATCH[2]}" ]]; then
        note "warning: not every node runs a ready minion yet; nodes without /var/run/docker.sock cannot (see kubectl -n $NAMESPACE describe daemonset cluster-insight-minion)"
    fi

    # The Service port is named in controller.json; the API server proxies to it by that name.
    local attempt=1 path="/api/v1/namespaces/$NAMESPACE/services/cluster-insight:http/proxy/healthz"
    while :; do
        say "Checking the master: kubectl get --raw $path (attempt $attempt of $healthz_attempts)"
        if "${kc[@]}" get --raw "$path"; then
            echo
            break
        fi
        ((attempt < healthz_attempts)) ||
            fail 1 "the master did not answer on $path after $healthz_attempts attempt(s)"
        attempt=$((attempt + 1))
        sleep 5
    done
    say "Cluster Insight is up. To reach it: kubectl proxy, then http://127.0.0.1:8001${path%/healthz}/cluster"
}

if ((master >= 0)); then
    vm_path
else
    gke_path
fi

finished=1
if ((dry_run == 1)); then
    say "Dry run: nothing was changed"
fi
say "SCRIPT ALL DONE"
