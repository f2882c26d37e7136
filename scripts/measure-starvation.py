#!/usr/bin/env python3
"""Measures what clients that never read cost everyone else, on the real binary.

    scripts/measure-starvation.py BINARY [--clients 500] [--probes 150]

Three cases, each with its own process of BINARY on loopback:

  master   `demo` (about 4 MB of /cluster); CLIENTS connections send GET /cluster and never
           read. A normal client then asks /healthz every 20 ms.
  minion   a minion in front of a stand-in Docker daemon on a private Unix socket whose
           /containers/json is 8 MB; CLIENTS connections send GET /containers/json and never
           read. A normal client asks /healthz every 20 ms.
  hung     the same minion while its daemon never answers: 40 connections send forwarded
           calls that hang; a normal client asks for a refused path (403, which never
           touches the daemon) and /healthz.
  log      20,000 refused requests to that minion: the bytes its log grew by.

For each: the normal client's latency (first probe, p50, p99, max), and the server's RSS
(now and peak, from /proc). Nothing leaves 127.0.0.1. Writes a table to stdout.
"""

import argparse
import signal
import json
import os
import socket
import socketserver
import statistics
import subprocess
import sys
import tempfile
import threading
import time


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def request(port, path, method="GET", timeout=30.0):
    """One request on a new connection; returns (status, seconds)."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(f"{method} {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    status = int(data.split(b" ", 2)[1]) if data.startswith(b"HTTP/1.1 ") else 0
    return status, time.monotonic() - started


def wait_for(port, path, deadline=60.0):
    until = time.monotonic() + deadline
    while time.monotonic() < until:
        try:
            if request(port, path, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    sys.exit(f"nothing answered 200 on 127.0.0.1:{port}{path}")


def memory_kib(pid):
    fields = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, value = line.partition(":")
            if key in ("VmRSS", "VmHWM"):
                fields[key] = int(value.split()[0])
    return fields.get("VmRSS", 0), fields.get("VmHWM", 0)


def stall(port, path, clients):
    """Connections that ask for `path` and never read; returned open."""
    socks = []
    for _ in range(clients):
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        # As small a receive buffer as the kernel allows: the answer stays with the server.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        socks.append(s)
    return socks


def probe(port, path, probes, expected=200):
    times = []
    for _ in range(probes):
        status, seconds = request(port, path)
        if status != expected:
            sys.exit(f"{path}: HTTP {status}, expected {expected}")
        times.append(seconds * 1000)
        time.sleep(0.02)
    return times


def idle_then_stalled(server, pid, port, path, size, args, idle_load):
    """Two rows: /healthz with no load, then while CLIENTS connections ask for `path` (a
    body of `size` bytes) and never read."""
    before = memory_kib(pid)
    idle = probe(port, "/healthz", args.probes)
    rows = [(server, idle_load, summary(idle), before, memory_kib(pid))]
    socks = stall(port, path, args.clients)
    times = probe(port, "/healthz", args.probes)
    rows.append((server, f"{args.clients} x GET {path} ({size / 1e6:.1f} MB)", summary(times),
                 before, memory_kib(pid)))
    for s in socks:
        s.close()
    return rows


def summary(times):
    ordered = sorted(times)
    p99 = ordered[min(len(ordered) - 1, int(len(ordered) * 0.99))]
    return {
        "first_ms": round(times[0], 1),
        "p50_ms": round(statistics.median(ordered), 1),
        "p99_ms": round(p99, 1),
        "max_ms": round(ordered[-1], 1),
    }


class Daemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    """A stand-in Docker daemon: enough of the Engine API for a minion to find and proxy."""

    daemon_threads = True
    hang = threading.Event()
    big = b""


class DaemonHandler(socketserver.StreamRequestHandler):
    def handle(self):
        while True:
            line = self.rfile.readline()
            if not line:
                return
            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                pass
            parts = line.split(b" ")
            if len(parts) < 3:
                return
            path = parts[1].decode()
            if Daemon.hang.is_set() and not path.startswith(("/_ping", "/version")):
                time.sleep(60)
                return
            if path.startswith("/_ping"):
                body = b"OK"
            elif path.startswith("/version"):
                body = json.dumps({"Version": "20.10.24", "ApiVersion": "1.41"}).encode()
            elif path.startswith("/containers/json"):
                body = self.server.big
            else:
                body = b"[]"
            self.wfile.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nApi-Version: 1.41\r\n"
                + f"Content-Length: {len(body)}\r\n\r\n".encode()
                + body
            )


def start(binary, args, log=None):
    return subprocess.Popen(
        [binary] + args, stdout=log or subprocess.DEVNULL, stderr=log or subprocess.DEVNULL,
        env={"PATH": os.environ.get("PATH", ""), "HOME": "/nonexistent"},
    )


def serve_daemon(sock_path):
    """The stand-in daemon's process: serves until killed; SIGUSR1 makes it hang."""
    signal.signal(signal.SIGUSR1, lambda *_: Daemon.hang.set())
    daemon = Daemon(sock_path, DaemonHandler)
    # Entries without an Id: the minion's own reading skips them; the proxy passes them on.
    daemon.big = json.dumps([{"Ident": f"{i:064x}", "Names": [f"/c{i}"], "Image": "busybox",
                              "State": "running", "Status": "Up", "Labels": {"k": "v" * 100}}
                             for i in range(30000)]).encode()
    with open(sock_path + ".size", "w") as f:
        f.write(str(len(daemon.big)))
    daemon.serve_forever()


def main():
    if len(sys.argv) == 3 and sys.argv[1] == "--daemon":
        serve_daemon(sys.argv[2])
        return
    parser = argparse.ArgumentParser()
    parser.add_argument("binary")
    parser.add_argument("--clients", type=int, default=500)
    parser.add_argument("--probes", type=int, default=150)
    args = parser.parse_args()
    results = []

    # master
    port = free_port()
    master = start(args.binary, ["demo", "--port", str(port), "--size", "nodes=10,pods-per-node=30"])
    try:
        wait_for(port, "/cluster")
        size = len(subprocess.run(["curl", "-s", f"http://127.0.0.1:{port}/cluster"],
                                  capture_output=True).stdout)
        results += idle_then_stalled("master", master.pid, port, "/cluster", size, args,
                                     "none (the demo refreshing every 10 s)")
    finally:
        master.kill()
        master.wait()

    # minion, then the same minion with a hung daemon. The stand-in daemon runs in a process
    # of its own, so that its work never delays this one's clocks.
    folder = tempfile.mkdtemp(prefix="starve-")
    sock_path = os.path.join(folder, "docker.sock")
    daemon = subprocess.Popen([sys.executable, __file__, "--daemon", sock_path])
    until = time.monotonic() + 10
    while not os.path.exists(sock_path + ".size") and time.monotonic() < until:
        time.sleep(0.05)
    with open(sock_path + ".size") as f:
        big_size = int(f.read())
    port = free_port()
    log_path = os.path.join(folder, "minion.log")
    log = open(log_path, "wb")
    minion = start(args.binary, ["--mode", "minion", "--no-auth", "--bind", "127.0.0.1",
                                 "--port", str(port), "--runtime-socket", sock_path], log)
    log_bytes = None
    try:
        wait_for(port, "/healthz")
        results += idle_then_stalled("minion", minion.pid, port, "/containers/json", big_size,
                                     args, "none")
        time.sleep(1)

        # A flood of refused requests, and what it writes to the log.
        log.flush()
        logged_before = os.path.getsize(log_path)
        for _ in range(20000):
            sock = socket.create_connection(("127.0.0.1", port), timeout=10)
            sock.sendall(b"GET /secrets HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            while sock.recv(65536):
                pass
            sock.close()
        time.sleep(0.5)
        log_bytes = os.path.getsize(log_path) - logged_before

        daemon.send_signal(signal.SIGUSR1)  # the daemon hangs from now on
        hung = []
        for i in range(40):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            # Allowed, each its own (a container inspect), so none shares another's answer.
            s.sendall(f"GET /containers/c{i}/json HTTP/1.1\r\nHost: x\r\n\r\n".encode())
            hung.append(s)
        time.sleep(0.2)
        before = memory_kib(minion.pid)
        refused = probe(port, "/secrets", 20, expected=403)
        health = probe(port, "/healthz", 20)
        after = memory_kib(minion.pid)
        results.append(("minion, hung daemon", "40 forwarded calls hanging; a refused GET /secrets",
                        summary(refused), before, after))
        results.append(("minion, hung daemon", "40 forwarded calls hanging; GET /healthz",
                        summary(health), before, after))
        for s in hung:
            s.close()
    finally:
        minion.kill()
        minion.wait()
        daemon.kill()
        daemon.wait()

    if log_bytes is not None:
        print(f"minion log for 20,000 refused requests: {log_bytes} bytes\n")
    print("| server | load | normal client: first | p50 | p99 | max | RSS before → after (peak) |")
    print("|---|---|---|---|---|---|---|")
    for name, load, t, before, after in results:
        print(f"| {name} | {load} | {t['first_ms']} ms | {t['p50_ms']} ms | {t['p99_ms']} ms | "
              f"{t['max_ms']} ms | {before[0] / 1024:.0f} → {after[0] / 1024:.0f} MiB ({after[1] / 1024:.0f}) |")


if __name__ == "__main__":
    main()
