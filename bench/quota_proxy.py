"""A stand-in for ACM's request-rate quotas: an HTTP proxy in front of the emulator that
answers ThrottlingException when a (region, operation) goes over its per-second quota, and
adds latency. Benchmark use only; listens on loopback.

usage: quota_proxy.py LISTEN_PORT UPSTREAM_URL [LATENCY_MS]
GET /proxy-stats gives calls and throttles by operation; POST /proxy-stats/reset clears them.
POST /proxy-email with a JSON list of ARNs: DescribeCertificate answers for them say EMAIL
validation (the emulator says DNS for every request).
"""
import collections
import http.server
import json
import re
import sys
import threading
import time
import urllib.error
import urllib.request

# Requests per second, per account and region (ACM's published quotas).
QUOTAS = {
    "ImportCertificate": 1,
    "ListCertificates": 8,
    "DescribeCertificate": 10,
    "GetCertificate": 10,
    "ExportCertificate": 10,
    "DeleteCertificate": 10,
    "AddTagsToCertificate": 5,
    "ListTagsForCertificate": 10,
    "RequestCertificate": 5,
    "RenewCertificate": 5,
}

lock = threading.Lock()
recent = collections.defaultdict(collections.deque)  # (region, op) -> timestamps
calls = collections.Counter()
throttled = collections.Counter()
email_arns = set()


def admit(region, op):
    limit = QUOTAS.get(op)
    now = time.monotonic()
    with lock:
        calls[op] += 1
        if limit is None:
            return True
        q = recent[(region, op)]
        while q and q[0] <= now - 1.0:
            q.popleft()
        if len(q) >= limit:
            throttled[op] += 1
            return False
        q.append(now)
        return True


class Proxy(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def reply(self, status, body, content_type="application/x-amz-json-1.1"):
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/proxy-stats":
            with lock:
                body = json.dumps({"calls": calls, "throttled": throttled}).encode()
            return self.reply(200, body, "application/json")
        return self.forward()

    def do_POST(self):
        if self.path == "/proxy-email":
            length = int(self.headers.get("Content-Length") or 0)
            with lock:
                email_arns.update(json.loads(self.rfile.read(length)))
            return self.reply(200, b"{}", "application/json")
        if self.path == "/proxy-stats/reset":
            with lock:
                calls.clear()
                throttled.clear()
                recent.clear()
            return self.reply(200, b"{}", "application/json")
        return self.forward()

    def forward(self):
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else None
        target = self.headers.get("X-Amz-Target", "")
        op = target.split(".")[-1] if target else "other"
        if not target and body:
            m = re.search(rb"(?:^|&)Action=([A-Za-z0-9]+)", body)
            op = m.group(1).decode() if m else op
        if not target and "/hostedzonesbyname" in self.path:
            op = "ListHostedZonesByName"
        elif not target and (self.path.endswith("/rrset") or self.path.endswith("/rrset/")):
            op = "ChangeResourceRecordSets"
        m = re.search(r"Credential=[^/]+/\d+/([^/]+)/", self.headers.get("Authorization", ""))
        region = m.group(1) if m else "global"
        time.sleep(LATENCY)
        if not admit(region, op):
            msg = json.dumps({"__type": "ThrottlingException", "message": "Rate exceeded"}).encode()
            return self.reply(400, msg)
        headers = {k: v for k, v in self.headers.items() if k.lower() not in ("host", "content-length", "connection")}
        req = urllib.request.Request(UPSTREAM + self.path, data=body, headers=headers, method=self.command)
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                status, data, ctype = resp.status, resp.read(), resp.headers.get("Content-Type", "")
        except urllib.error.HTTPError as e:
            status, data, ctype = e.code, e.read(), e.headers.get("Content-Type", "")
        if op == "DescribeCertificate" and body:
            with lock:
                email = any(a.encode() in body for a in email_arns)
            if email:
                data = data.replace(b'"ValidationMethod": "DNS"', b'"ValidationMethod": "EMAIL"')
        self.reply(status, data, ctype or "application/octet-stream")


if __name__ == "__main__":
    port, UPSTREAM = int(sys.argv[1]), sys.argv[2].rstrip("/")
    LATENCY = (int(sys.argv[3]) if len(sys.argv) > 3 else 20) / 1000.0
    server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Proxy)
    server.daemon_threads = True
    server.serve_forever()
