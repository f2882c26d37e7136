#!/usr/bin/env python3
"""A minimal HTTPS Kubernetes API for the TLS tests: serves small v1 lists of nodes, pods,
services and replication controllers over real TLS (certificate and key given), requires a
bearer token (one of a comma-separated list) or, when a client CA is given, a client
certificate it signed (mutual TLS: the handshake fails without one), answers Status objects
on errors. Prints the port it listens on, then serves until stdin closes (so it never
outlives the test that started it).

usage: tls_apiserver.py CERT KEY TOKENS [CLIENT_CA]"""

import http.server
import json
import ssl
import sys
import threading

cert, key = sys.argv[1], sys.argv[2]
tokens = {t for t in sys.argv[3].split(",") if t}
client_ca = sys.argv[4] if len(sys.argv) > 4 else None

def items(kind, n):
    out = []
    for i in range(n):
        obj = {"metadata": {"name": f"{kind.lower()}-{i}", "namespace": "default", "uid": f"u-{kind}-{i}"}}
        if kind == "Pod":
            obj["spec"] = {"nodeName": "node-0"}
            obj["metadata"]["labels"] = {"app": "web"}
        if kind == "Service":
            obj["spec"] = {"selector": {"app": "web"}}
        if kind == "Node":
            del obj["metadata"]["namespace"]
        out.append(obj)
    return out

LISTS = {
    "/api/v1/nodes": ("NodeList", items("Node", 2)),
    "/api/v1/pods": ("PodList", items("Pod", 3)),
    "/api/v1/services": ("ServiceList", items("Service", 1)),
    "/api/v1/replicationcontrollers": ("ReplicationControllerList", []),
}

class Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, *args):
        pass

    def send_json(self, code, body):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def status(self, code, reason, message):
        self.send_json(code, {"kind": "Status", "apiVersion": "v1", "metadata": {},
                              "status": "Failure", "message": message, "reason": reason, "code": code})

    def do_GET(self):
        header = self.headers.get("Authorization") or ""
        by_token = header.startswith("Bearer ") and header[len("Bearer "):] in tokens
        # With a client CA, the handshake already refused any certificate it did not sign.
        by_cert = client_ca is not None and self.connection.getpeercert() is not None
        if not (by_token or by_cert):
            return self.status(401, "Unauthorized", "Unauthorized")
        path = self.path.split("?")[0]
        if path not in LISTS:
            return self.status(404, "NotFound", f"the server could not find {path}")
        kind, objs = LISTS[path]
        self.send_json(200, {"kind": kind, "apiVersion": "v1", "metadata": {"resourceVersion": "1"}, "items": objs})

server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
context.load_cert_chain(cert, key)
if client_ca:
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(client_ca)
server.socket = context.wrap_socket(server.socket, server_side=True)
threading.Thread(target=server.serve_forever, daemon=True).start()
print(server.server_address[1], flush=True)
sys.stdin.read()
