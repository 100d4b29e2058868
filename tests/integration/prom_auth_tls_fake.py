# prom_auth_tls_fake.py: the Prometheus client's bearer token, TLS options and retries against a
# fake Prometheus (a small HTTPS server answering /api/v1/query_range in Prometheus's format for
# any query; the real Prometheus package has no TLS or auth set up in tests/integration):
# a trusted CA file works, the system store rejects the self-signed certificate,
# insecure_skip_verify accepts it, a wrong token is reported as HTTP 401, and a 500 is retried.
# timeout: 120
import http.server
import json
import os
import shutil
import ssl
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"prom-auth-tls-token-0123456789ab"
SECRET = "s3cret-bearer"


class FakeProm(http.server.BaseHTTPRequestHandler):
    fail_next = 0
    seen = []

    def do_GET(self):
        u = urllib.parse.urlparse(self.path)
        q = urllib.parse.parse_qs(u.query)
        FakeProm.seen.append((u.path, q.get("query", [""])[0], self.headers.get("Authorization")))
        if self.headers.get("Authorization") != "Bearer " + SECRET:
            return self.reply(401, {"status": "error", "errorType": "unauthorized",
                                    "error": "bad token"})
        if FakeProm.fail_next > 0:
            FakeProm.fail_next -= 1
            return self.reply(500, {"status": "error", "errorType": "internal", "error": "boom"})
        start, end, step = (float(q[k][0]) for k in ("start", "end", "step"))
        vals, t = [], start
        while t <= end + 1e-9:
            vals.append([t, str(t / 1000)])
            t += step
        self.reply(200, {"status": "success", "data": {"resultType": "matrix", "result": [
            {"metric": {"__name__": "up", "job": "fake"}, "values": vals}]}})

    def reply(self, code, obj):
        body = json.dumps(obj).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *a):
        pass


def main():
    if not shutil.which("openssl"):
        print("skipped: openssl CLI missing")
        return 77
    with tt.Run(tail_chars=3000) as run:
        w = run.w
        crt, key = os.path.join(w, "c.pem"), os.path.join(w, "k.pem")
        subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", key,
                        "-out", crt, "-days", "1", "-subj", "/CN=127.0.0.1",
                        "-addext", "subjectAltName=IP:127.0.0.1"],
                       check=True, capture_output=True, timeout=60)
        pp = tt.free_port()
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", pp), FakeProm)
        run.at_exit(srv.shutdown)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(crt, key)
        srv.socket = ctx.wrap_socket(srv.socket, server_side=True)
        threading.Thread(target=srv.serve_forever, daemon=True).start()

        tok = run.token(TOKEN)
        good, bad = os.path.join(w, "bearer"), os.path.join(w, "bearer.bad")
        open(good, "w").write(SECRET + "\n")
        open(bad, "w").write("wrong\n")
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")

        def run_with(*extra):
            cp = run.controlplane(tok, ap, hp, "--prometheus", "https://127.0.0.1:%d" % pp,
                                  "--prometheus-timeout", "2s", *extra, log=cplog)
            tp.wait_for(lambda: tt.port_open(hp), 30, "control plane")
            qs = urllib.parse.urlencode({"query": 'up{job="fake"}', "start": 1000, "end": 1300,
                                         "step": 60})
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query_range?%s" % (hp, qs),
                                        timeout=30) as r:
                body = json.loads(r.read())
            with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % hp, timeout=30) as r:
                metrics = r.read().decode()
            cp.terminate()
            assert cp.wait(timeout=30) == 0, "control plane exit status"
            return body, metrics

        # a trusted CA file and the right token
        body, _ = run_with("--prometheus-ca-file", crt, "--prometheus-bearer-token-file", good)
        assert not body.get("warnings"), body
        vals = body["data"]["result"][0]["values"]
        assert [v for _, v in vals] == ["1", "1.06", "1.12", "1.18", "1.24", "1.3"], vals
        assert FakeProm.seen[-1][0] == "/api/v1/query_range"
        assert FakeProm.seen[-1][1] == 'up{job="fake"}', FakeProm.seen[-1]

        # the system store does not know the self-signed certificate
        n = len(FakeProm.seen)
        body, _ = run_with("--prometheus-bearer-token-file", good)
        assert body.get("warnings") and "prometheus unavailable" in body["warnings"][0], body
        assert body["data"]["result"] == [], body

        # insecure_skip_verify accepts it
        body, _ = run_with("--prometheus-insecure-skip-verify", "true",
                           "--prometheus-bearer-token-file", good)
        assert not body.get("warnings") and len(body["data"]["result"]) == 1, body
        assert len(FakeProm.seen) > n

        # a wrong token: HTTP 401 in the warning, not retried
        n = len(FakeProm.seen)
        body, metrics = run_with("--prometheus-ca-file", crt, "--prometheus-bearer-token-file", bad)
        assert body.get("warnings") and "HTTP 401" in body["warnings"][0], body
        assert len(FakeProm.seen) == n + 1, "a 401 was retried"
        assert "tide_prometheus_fetch_errors_total 1" in metrics, metrics

        # a 500 is retried with backoff and then succeeds
        FakeProm.fail_next = 2
        body, metrics = run_with("--prometheus-ca-file", crt, "--prometheus-bearer-token-file",
                                 good)
        assert not body.get("warnings") and len(body["data"]["result"]) == 1, body
        assert "tide_prometheus_retries_total 2" in metrics, metrics

        # a missing token file is a configuration error at start
        r = subprocess.run([BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % ap,
                            "--socket", sock, "--token-file", tok, "--data-dir", w + "/data",
                            "--http", "127.0.0.1:%d" % hp, "--prometheus", "https://x",
                            "--prometheus-bearer-token-file", w + "/nope"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode != 0 and "bearer token file" in r.stderr, (r.returncode, r.stderr)
        print("ok")
        return 0


if __name__ == "__main__":
    sys.exit(main())
