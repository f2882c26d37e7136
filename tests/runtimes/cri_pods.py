"""Makes Kubernetes-like pods on a CRI runtime, as the kubelet would, for tests.

usage: cri_pods.py up SOCKET SPEC_OUT [--node NAME] [--node-ip IP] [--secret VALUE]
                      [--log-dir DIR] [--load-pods N --load-containers M --load-processes K]
       cri_pods.py list SOCKET
       cri_pods.py down SOCKET

up    two host-network pods of two busybox containers each, named and labelled as the kubelet
      does (io.kubernetes.pod.name/namespace/uid, io.kubernetes.container.name), in the cgroup
      parent /kubepods/besteffort/pod<uid>. Container `main` of pod web-NODE runs a shell that
      leaves a child process; container `job` of pod worker-NODE holds the secret VALUE in its
      environment variable CLUSTER_INSIGHT_TEST_SECRET. Writes SPEC_OUT, the input of
      tests/docker/e2e_objects.py (see there): {"node", "node_ip", "runtime": "containerd",
      "runtime_version", "pods": [{"namespace", "name", "uid", "labels", "sandbox_id",
      "containers": [{"name", "id", "image", "image_id", "env_names"}]}]}; image_id is the
      container's image as CRI reports it (ContainerStatus.image_ref). Environment values are
      never written.
      With --load-pods N, also N pods load/load-I-NODE (I from 0, label app=load) of M busybox
      containers c0, c1, ... each, every container holding exactly K sleeping processes; they
      are in the spec too, after the two pods above.
list  what the runtime lists over CRI, as JSON: version, pod sandboxes, containers (with the
      PID of their first process), images.
down  stops and removes every pod sandbox `up` made (found by the label below), with its
      containers, and removes the pods' cgroups as the kubelet does.

The CRI client is grpcio: installed on first use into a virtual environment under
$CLUSTER_INSIGHT_TEST_CACHE (default ${XDG_CACHE_HOME:-/var/cache}/cluster-insight-tests),
with the Python code of proto/cri/api.proto generated there by grpc_tools.protoc.
"""

import argparse
import fcntl
import hashlib
import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
PROTO = os.path.join(HERE, "..", "..", "proto", "cri", "api.proto")
CACHE = os.environ.get("CLUSTER_INSIGHT_TEST_CACHE") or os.path.join(
    os.environ.get("XDG_CACHE_HOME") or "/var/cache", "cluster-insight-tests"
)
VENV = os.path.join(CACHE, "python-grpc")
GRPC_VERSION = "1.68.1"

BUSYBOX_IMAGE = "localhost/cluster-insight-test/busybox:1"
# Every sandbox `up` makes carries this label (a pod label: it is on the Pod object too).
MADE_BY = ("cluster-insight-test", "cri-pods")
SECRET_ENV = "CLUSTER_INSIGHT_TEST_SECRET"
TIMEOUT = 60
# Load pods made at once: enough to keep containerd busy while a client waits on one call, few
# enough not to crowd two cores.
LOAD_PARALLELISM = 4


def log(message):
    print(f"cri_pods.py: {message}", file=sys.stderr, flush=True)


# --- the Python environment ------------------------------------------------------------------


def stubs_dir():
    with open(PROTO, "rb") as f:
        key = hashlib.sha256(f.read() + GRPC_VERSION.encode()).hexdigest()[:16]
    return os.path.join(CACHE, "cri-python-" + key)


def venv_python():
    return os.path.join(VENV, "bin", "python3")


def ensure_environment():
    """Runs this script again under the virtual environment that holds grpcio and the
    generated CRI code, making them first when missing (under a lock: several nodes of a test
    cluster may start at once)."""
    stubs = stubs_dir()
    in_venv = os.path.realpath(sys.prefix) == os.path.realpath(VENV)
    if in_venv and os.path.exists(os.path.join(stubs, "api_pb2_grpc.py")):
        sys.path.insert(0, stubs)
        return
    if in_venv:
        sys.exit("cri_pods.py: the environment is incomplete after its set-up")
    os.makedirs(CACHE, exist_ok=True)
    with open(os.path.join(CACHE, ".lock-python"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not os.path.exists(venv_python()):
            log(f"making the virtual environment {VENV} (grpcio {GRPC_VERSION})")
            run([sys.executable, "-m", "venv", VENV])
            run([venv_python(), "-m", "pip", "install", "-q", "--disable-pip-version-check",
                 f"grpcio=={GRPC_VERSION}", f"grpcio-tools=={GRPC_VERSION}"])
        if not os.path.exists(os.path.join(stubs, "api_pb2_grpc.py")):
            work = stubs + ".tmp"
            os.makedirs(work, exist_ok=True)
            run([venv_python(), "-m", "grpc_tools.protoc", "-I", os.path.dirname(PROTO),
                 "--python_out=" + work, "--grpc_python_out=" + work, PROTO])
            os.rename(work, stubs)
    os.execv(venv_python(), [venv_python(), os.path.abspath(__file__)] + sys.argv[1:])


def run(argv):
    result = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    if result.returncode != 0:
        sys.stderr.write(result.stdout)
        sys.exit(f"cri_pods.py: {' '.join(argv)} failed (exit {result.returncode})")


# --- CRI -------------------------------------------------------------------------------------


class Cri:
    def __init__(self, socket):
        import grpc
        import api_pb2
        import api_pb2_grpc

        self.pb = api_pb2
        limit = 16 * 1024 * 1024  # the kubelet's
        channel = grpc.insecure_channel(
            "unix://" + os.path.abspath(socket),
            options=[("grpc.max_receive_message_length", limit), ("grpc.max_send_message_length", limit)],
        )
        self.runtime = api_pb2_grpc.RuntimeServiceStub(channel)
        self.images = api_pb2_grpc.ImageServiceStub(channel)

    def call(self, service, method, request):
        return getattr(service, method)(request, timeout=TIMEOUT)

    def rt(self, method, **fields):
        return self.call(self.runtime, method, getattr(self.pb, method + "Request")(**fields))

    def img(self, method, **fields):
        return self.call(self.images, method, getattr(self.pb, method + "Request")(**fields))

    def version(self):
        v = self.rt("Version", version="v1")
        return {"runtime_name": v.runtime_name, "runtime_version": v.runtime_version,
                "runtime_api_version": v.runtime_api_version}

    def host_namespaces(self):
        pb = self.pb
        return pb.NamespaceOption(network=pb.NODE, pid=pb.CONTAINER, ipc=pb.POD)

    def first_pid(self, info):
        """The PID in a verbose status's info (containerd: {"info": "{... \"pid\": N ...}"})."""
        try:
            return json.loads(info.get("info", "{}")).get("pid")
        except ValueError:
            return None


# --- up --------------------------------------------------------------------------------------


def env_value(text):
    """KeyValue.value is `bytes` in the vendored proto (a string on the wire all the same)."""
    return text.encode()


def pod_plans(node, secret):
    return [
        {
            "namespace": "default",
            "name": f"web-{node}",
            "labels": {"app": "web"},
            "containers": [
                # A shell that leaves a child: the container holds two processes.
                {"name": "main", "script": "sleep 100000 & exec sleep 100001", "env": {}},
                {"name": "sidecar", "script": "exec sleep 100002", "env": {}},
            ],
        },
        {
            "namespace": "batch",
            "name": f"worker-{node}",
            "labels": {"app": "worker"},
            "containers": [
                {"name": "job", "script": "exec sleep 100003", "env": {SECRET_ENV: secret}},
                {"name": "helper", "script": "exec sleep 100004", "env": {}},
            ],
        },
    ]


def load_script(processes):
    """A shell that leaves PROCESSES - 1 sleeping children, then becomes the last sleep itself:
    the container holds exactly PROCESSES processes, and none of them is a shell."""
    if processes == 1:
        return "exec sleep 100001"
    return f"i=1; while [ $i -lt {processes} ]; do sleep 100000 & i=$((i+1)); done; exec sleep 100001"


def load_plans(node, pods, containers, processes):
    script = load_script(processes)
    return [
        {
            "namespace": "load",
            "name": f"load-{i}-{node}",
            "labels": {"app": "load"},
            "containers": [{"name": f"c{j}", "script": script, "env": {}} for j in range(containers)],
        }
        for i in range(pods)
    ]


def make_pod(cri, plan, log_root):
    pb = cri.pb
    uid = str(uuid.uuid4())
    namespace, name = plan["namespace"], plan["name"]
    labels = dict(plan["labels"])
    labels[MADE_BY[0]] = MADE_BY[1]
    kube_labels = {
        "io.kubernetes.pod.name": name,
        "io.kubernetes.pod.namespace": namespace,
        "io.kubernetes.pod.uid": uid,
    }
    log_dir = os.path.join(log_root, f"{namespace}_{name}_{uid}")
    os.makedirs(log_dir, exist_ok=True)
    sandbox_config = pb.PodSandboxConfig(
        metadata=pb.PodSandboxMetadata(name=name, uid=uid, namespace=namespace, attempt=0),
        # Empty as the kubelet leaves it for host-network pods: the runtime cannot set a
        # hostname without a UTS namespace of the pod's own.
        hostname="",
        log_directory=log_dir,
        labels={**labels, **kube_labels},
        annotations={"kubernetes.io/config.source": "api", "kubernetes.io/config.seen": "2026-11-25T00:00:00Z"},
        linux=pb.LinuxPodSandboxConfig(
            cgroup_parent=pod_cgroup(uid),
            security_context=pb.LinuxSandboxSecurityContext(namespace_options=cri.host_namespaces()),
        ),
    )
    sandbox_id = cri.rt("RunPodSandbox", config=sandbox_config).pod_sandbox_id
    containers = []
    for c in plan["containers"]:
        config = pb.ContainerConfig(
            metadata=pb.ContainerMetadata(name=c["name"], attempt=0),
            image=pb.ImageSpec(image=BUSYBOX_IMAGE),
            command=["/bin/sh", "-c", c["script"]],
            envs=[pb.KeyValue(key=k, value=env_value(v)) for k, v in sorted(c["env"].items())],
            log_path=os.path.join(c["name"], "0.log"),
            labels={"io.kubernetes.container.name": c["name"], **kube_labels},
            annotations={
                "io.kubernetes.container.restartCount": "0",
                "io.kubernetes.container.terminationMessagePath": "/dev/termination-log",
                "io.kubernetes.pod.terminationGracePeriod": "30",
            },
            linux=pb.LinuxContainerConfig(
                security_context=pb.LinuxContainerSecurityContext(namespace_options=cri.host_namespaces())
            ),
        )
        container_id = cri.rt(
            "CreateContainer", pod_sandbox_id=sandbox_id, config=config, sandbox_config=sandbox_config
        ).container_id
        cri.rt("StartContainer", container_id=container_id)
        status = cri.rt("ContainerStatus", container_id=container_id).status
        containers.append(
            {
                "name": c["name"],
                "id": container_id,
                "image": BUSYBOX_IMAGE,
                "image_id": status.image_ref,
                "env_names": sorted(c["env"]),
            }
        )
    return {
        "namespace": namespace,
        "name": name,
        "uid": uid,
        "labels": labels,
        "sandbox_id": sandbox_id,
        "containers": containers,
    }


def up(args):
    cri = Cri(args.socket)
    started = time.monotonic()
    version = cri.version()
    log_root = args.log_dir or os.path.join(os.path.dirname(os.path.abspath(args.socket)), "pod-logs")
    secret = args.secret if args.secret is not None else "secret-" + secrets.token_hex(8)
    pods = []
    for plan in pod_plans(args.node, secret):
        began = time.monotonic()
        pods.append(make_pod(cri, plan, log_root))
        log(f"pod {plan['namespace']}/{plan['name']}: {time.monotonic() - began:.2f}s")
    if args.load_pods:
        began = time.monotonic()
        plans = load_plans(args.node, args.load_pods, args.load_containers, args.load_processes)
        with ThreadPoolExecutor(LOAD_PARALLELISM) as pool:
            pods.extend(pool.map(lambda plan: make_pod(cri, plan, log_root), plans))
        log(f"{args.load_pods} load pods of {args.load_containers} containers of "
            f"{args.load_processes} processes: {time.monotonic() - began:.2f}s")
    spec = {
        "node": args.node,
        "node_ip": args.node_ip,
        "runtime": "containerd",
        "runtime_version": f"{version['runtime_name']}://{version['runtime_version']}",
        "pods": pods,
    }
    with open(args.spec_out, "w") as f:
        json.dump(spec, f, indent=1)
        f.write("\n")
    log(f"{len(pods)} pods on {version['runtime_name']} {version['runtime_version']} "
        f"in {time.monotonic() - started:.2f}s; spec in {args.spec_out}")


# --- list and down ---------------------------------------------------------------------------


def listing(args):
    cri = Cri(args.socket)
    sandboxes = []
    for s in cri.rt("ListPodSandbox").items:
        status = cri.rt("PodSandboxStatus", pod_sandbox_id=s.id, verbose=True)
        sandboxes.append(
            {
                "id": s.id,
                "namespace": s.metadata.namespace,
                "name": s.metadata.name,
                "uid": s.metadata.uid,
                "state": cri.pb.PodSandboxState.Name(s.state),
                "labels": dict(s.labels),
                "pid": cri.first_pid(status.info),
            }
        )
    containers = []
    for c in cri.rt("ListContainers").containers:
        # Only the PID is taken from the verbose status: the rest holds the environment values.
        status = cri.rt("ContainerStatus", container_id=c.id, verbose=True)
        containers.append(
            {
                "id": c.id,
                "name": c.metadata.name,
                "pod_sandbox_id": c.pod_sandbox_id,
                "state": cri.pb.ContainerState.Name(c.state),
                "image": c.image.image,
                "image_ref": c.image_ref,
                "labels": dict(c.labels),
                "pid": cri.first_pid(status.info),
            }
        )
    images = [
        {"id": i.id, "repo_tags": list(i.repo_tags), "repo_digests": list(i.repo_digests), "size": i.size}
        for i in cri.img("ListImages").images
    ]
    # Sorted, so that two listings of an unchanged runtime are the same text.
    by_id = lambda items: sorted(items, key=lambda item: item["id"])
    json.dump(
        {"version": cri.version(), "sandboxes": by_id(sandboxes), "containers": by_id(containers),
         "images": by_id(images)},
        sys.stdout,
        indent=1,
        sort_keys=True,
    )
    print()


def pod_cgroup(uid):
    return f"/kubepods/besteffort/pod{uid}"


def remove_pod_cgroups(uid):
    """Removes the pod's cgroup in every hierarchy, then its parents while they are empty, as
    the kubelet does (the runtime removes only the containers' own cgroups). A cgroup whose
    last process is a zombie not yet reaped stays busy for a moment: retried for 3 seconds."""
    roots = ["/sys/fs/cgroup"] + [
        os.path.join("/sys/fs/cgroup", name) for name in sorted(os.listdir("/sys/fs/cgroup"))
    ]
    left = [root + pod_cgroup(uid) for root in roots if os.path.isdir(root + pod_cgroup(uid))]
    deadline = time.monotonic() + 3
    while left:
        for path in list(left):
            try:
                os.rmdir(path)
                left.remove(path)
            except FileNotFoundError:
                left.remove(path)
            except OSError:
                pass
        if not left or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    for path in left:
        log(f"cannot remove the cgroup {path}")
    for root in roots:
        for parent in ("/kubepods/besteffort", "/kubepods"):
            try:
                os.rmdir(root + parent)
            except OSError:
                break


def down(args):
    cri = Cri(args.socket)
    selector = cri.pb.PodSandboxFilter(label_selector={MADE_BY[0]: MADE_BY[1]})
    for s in cri.rt("ListPodSandbox", filter=selector).items:
        cri.rt("StopPodSandbox", pod_sandbox_id=s.id)
        cri.rt("RemovePodSandbox", pod_sandbox_id=s.id)
        remove_pod_cgroups(s.metadata.uid)
        log(f"removed pod {s.metadata.namespace}/{s.metadata.name} (sandbox {s.id})")


def count(minimum):
    def parse(text):
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"at least {minimum}")
        return value

    parse.__name__ = "count"  # argparse names the type when a value is not a number
    return parse


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    p = commands.add_parser("up")
    p.add_argument("socket")
    p.add_argument("spec_out")
    p.add_argument("--node", default="node-1")
    p.add_argument("--node-ip", default="127.0.0.1")
    p.add_argument("--secret", default=None)
    p.add_argument("--log-dir", default=None, help="default: pod-logs beside SOCKET")
    p.add_argument("--load-pods", type=count(0), default=0, metavar="N",
                   help="also N pods in namespace load (default 0)")
    p.add_argument("--load-containers", type=count(1), default=1, metavar="M",
                   help="containers per load pod (default 1)")
    p.add_argument("--load-processes", type=count(1), default=1, metavar="K",
                   help="processes per load container (default 1)")
    p.set_defaults(run=up)
    p = commands.add_parser("list")
    p.add_argument("socket")
    p.set_defaults(run=listing)
    p = commands.add_parser("down")
    p.add_argument("socket")
    p.set_defaults(run=down)
    args = parser.parse_args()
    ensure_environment()
    try:
        args.run(args)
    except Exception as e:  # a gRPC error: its status, not a traceback
        code = getattr(e, "code", None)
        if code is None:
            raise
        sys.exit(f"cri_pods.py {args.command}: {code()}: {e.details()}")


if __name__ == "__main__":
    main()
