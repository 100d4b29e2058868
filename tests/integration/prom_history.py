# prom_history.py: a real Prometheus backfilled with promtool from ../shared/data/nasa_http_1m.csv
# behind tide-controlplane --prometheus: every value read back through Tide's /api/v1/query_range
# matches the CSV (fetched in chunks under Prometheus's point limit); tidectl query --json prints
# exactly the HTTP body; an agent's samples win over Prometheus's for the same series; sum/avg by;
# bad selectors give HTTP 400 / exit 2; /series, /labels and label values merge Prometheus's answer
# to the same match[] and start/end, /metadata its typed entries; Prometheus down or slow gives a warning, the stored data,
# a "down" status, and answers within the timeout.
# timeout: 300
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request
import http.server

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN, SRC  # noqa: E402

DATA = os.path.join(SRC, "..", "shared", "data", "nasa_http_1m.csv")
TOKEN = b"prom-history-token-0123456789abcdef"


def http_get(url, timeout=60):
    return tt.http_get(url, timeout)


class Slow(http.server.BaseHTTPRequestHandler):
    """A Prometheus that never answers in time."""
    def do_GET(self):
        time.sleep(3)
        try:
            self.send_response(200)
            self.end_headers()
        except OSError:
            pass

    def log_message(self, *a):
        pass


def main():
    if not os.path.exists(DATA):
        print("skipped: ../shared/data/nasa_http_1m.csv missing")
        return 77
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return 77
    with tt.Run(logs=("cp.log", "prom.log"), tail_chars=3000) as run:
        w = run.w
        rows = [(int(t), float(v)) for t, v in list(csv.reader(open(DATA)))[1:]]
        # OpenMetrics: seconds timestamps, '# EOF'; a second copy of the series carries the
        # node label an agent's samples get, so that the store and Prometheus overlap
        with open(os.path.join(w, "nasa.om"), "w") as o:
            o.write("# TYPE app_requests_per_minute gauge\n")
            for t, v in rows:
                o.write('app_requests_per_minute{app="nasa"} %s %d\n' % (repr(v), t))
            for t, v in rows:
                o.write('app_requests_per_minute{app="nasa",node="n1"} %s %d\n' % (repr(v), t))
            o.write("# EOF\n")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                        "--max-block-duration=168h", os.path.join(w, "nasa.om"),
                        os.path.join(w, "prom")], check=True, capture_output=True, timeout=120)
        pp = tt.free_port()
        with open(os.path.join(w, "prom.yml"), "w") as f:  # itself scraped: metadata
            f.write("global: {scrape_interval: 1s}\nscrape_configs: [{job_name: self, "
                    "static_configs: [{targets: ['127.0.0.1:%d']}]}]\n" % pp)
        prom = run.spawn(
            ["prometheus", "--config.file=" + os.path.join(w, "prom.yml"),
             "--storage.tsdb.path=" + os.path.join(w, "prom"),
             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % pp],
            run.log("prom.log"))
        tp.wait_for(lambda: http_get("http://127.0.0.1:%d/-/ready" % pp, 2)[0] == 200
                    if tt.port_open(pp) else False, 60, "prometheus ready")

        tok = run.token(TOKEN)
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")
        cp = run.controlplane(tok, ap, hp, *tt.LONG_RETENTION, "--prometheus", "http://127.0.0.1:%d" % pp,
                              "--prometheus-max-points", "1000", log=cplog)
        tp.wait_for(lambda: os.path.exists(sock) and tt.port_open(hp), 30, "control plane")
        base = "http://127.0.0.1:%d" % hp

        def query(q, start, end, step):
            qs = urllib.parse.urlencode({"query": q, "start": start, "end": end, "step": step})
            return http_get(base + "/api/v1/query_range?" + qs)

        # 1. every CSV value comes back through Tide, in queries of 10,000 steps
        sel = 'app_requests_per_minute{app="nasa",node=""}'
        t0, tn = rows[0][0], rows[-1][0]
        got = {}
        s = t0
        while s <= tn:
            e = min(tn, s + 9999 * 60)
            code, body = query(sel, s, e, 60)
            assert code == 200, (code, body[:300])
            j = json.loads(body)
            assert j["status"] == "success" and j["data"]["resultType"] == "matrix", body[:300]
            assert len(j["data"]["result"]) == 1, body[:300]
            r = j["data"]["result"][0]
            assert r["metric"] == {"__name__": "app_requests_per_minute", "app": "nasa"}, r["metric"]
            for ts, v in r["values"]:
                got[int(ts)] = float(v)
            s = e + 60
        missing = [t for t, v in rows if t not in got]
        wrong = [(t, v, got[t]) for t, v in rows if t in got and got[t] != v]
        assert not missing, "%d CSV points missing, first %s" % (len(missing), missing[:3])
        assert not wrong, "%d values differ, first %s" % (len(wrong), wrong[:3])
        print("all %d CSV values read back through Tide" % len(rows))
        metrics = http_get(base + "/metrics")[1]
        preq = _metric(metrics, "tide_prometheus_requests_total")
        assert preq >= len(rows) / 1000, "chunking: only %d Prometheus requests" % preq

        # 2. tidectl query --json prints exactly the HTTP body; RFC 3339 times work
        start, end = rows[100][0], rows[400][0]
        code, body = query(sel, start, end, 300)
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "query", sel,
                            "--start", _rfc3339(start), "--end", str(end), "--step", "5m",
                            "--json"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        assert r.stdout == body + "\n", "tidectl --json differs from HTTP:\n%s\n%s" % (
            r.stdout[:300], body[:300])
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "query", sel, "--start",
                            str(start), "--end", str(end), "--step", "300"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "app_requests_per_minute{app=\"nasa\"}" in r.stdout, r.stdout

        # 3. an agent's samples win where both have a point
        peer = tp.Peer(ap)
        ack = peer.handshake(TOKEN, "n1")
        assert ack is not None
        span = rows[1000:1100]
        peer.send(tp.SERIES_DEF, s=[[1, {"__name__": "app_requests_per_minute", "app": "nasa"}]])
        deltas = [0] + [60000] * (len(span) - 1)
        peer.send(tp.SAMPLES, seq=1, s=[[1, span[0][0] * 1000, deltas,
                                         [v + 1e6 for _, v in span]]])
        while True:
            m = peer.recv()
            assert m is not None, "connection closed before the ACK"
            if m["t"] == tp.ACK and m["ack"] >= 1:
                break
        code, body = query('app_requests_per_minute{node="n1"}', rows[990][0], rows[1110][0], 60)
        assert code == 200, body
        vals = {int(t): float(v) for t, v in json.loads(body)["data"]["result"][0]["values"]}
        for t, v in rows[990:1111]:
            want = v + 1e6 if rows[1000][0] <= t <= rows[1099][0] else v
            assert vals.get(t) == want, "merge at %d: got %s want %s" % (t, vals.get(t), want)
        assert len(json.loads(body)["data"]["result"]) == 1, "merged into one series"
        peer.close()

        # 3b. instant queries and label listings (what Grafana asks besides query_range)
        code, body = http_get(base + "/api/v1/query?" + urllib.parse.urlencode(
            {"query": 'app_requests_per_minute{node="n1"}', "time": rows[1000][0]}))
        j = json.loads(body)
        assert code == 200 and j["data"]["resultType"] == "vector", body
        assert j["data"]["result"][0]["value"] == [rows[1000][0], str(int(rows[1000][1] + 1e6))], body
        code, body = http_get(base + "/api/v1/query?query=" + urllib.parse.quote("x{"))
        assert code == 400 and json.loads(body)["errorType"] == "bad_data", body
        code, body = http_get(base + "/api/v1/labels?match[]=app_requests_per_minute")
        assert code == 200 and json.loads(body)["data"] == ["__name__", "app", "node"], body
        code, body = http_get(base + "/api/v1/label/node/values")
        assert code == 200 and json.loads(body)["data"] == ["n1"], body
        # listings merge Prometheus's answer to the same match[]/start/end: the series without
        # the node label is Prometheus's alone; the one both hold is listed once
        code, body = http_get(base + "/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": "app_requests_per_minute", "start": t0, "end": tn}))
        assert code == 200, body
        assert json.loads(body)["data"] == [
            {"__name__": "app_requests_per_minute", "app": "nasa"},
            {"__name__": "app_requests_per_minute", "app": "nasa", "node": "n1"}], body
        only_prom = 'app_requests_per_minute{node=""}'
        code, body = http_get(base + "/api/v1/labels?" + urllib.parse.urlencode(
            {"match[]": only_prom}))
        assert code == 200 and json.loads(body)["data"] == ["__name__", "app"], body
        code, body = http_get(base + "/api/v1/label/app/values?" + urllib.parse.urlencode(
            {"match[]": only_prom, "start": t0, "end": tn}))
        assert code == 200 and json.loads(body)["data"] == ["nasa"], body
        code, body = http_get(base + "/api/v1/series?" + urllib.parse.urlencode(
            {"match[]": only_prom, "start": tn + 86400 * 365, "end": tn + 86400 * 366}))
        assert code == 200 and json.loads(body)["data"] == [], body  # start/end passed on
        # metadata: Prometheus's (typed, from its scrape of itself) merged with the store's
        def prom_meta():
            c, b = http_get(base + "/api/v1/metadata?metric=prometheus_build_info")
            d = json.loads(b)["data"]
            return c == 200 and d.get("prometheus_build_info", [{}])[0].get("type") == "gauge"
        tp.wait_for(prom_meta, 60, "Prometheus's metadata through Tide")
        code, body = http_get(base + "/api/v1/metadata")
        j = json.loads(body)
        assert code == 200 and not j.get("warnings"), body[:300]
        assert j["data"]["app_requests_per_minute"][0]["type"] == "unknown", body[:300]
        assert j["data"]["prometheus_build_info"][0]["type"] == "gauge", body[:300]
        code, body = http_get(base + "/api/v1/metadata?limit=2")
        assert code == 200 and len(json.loads(body)["data"]) == 2, body[:300]
        r = subprocess.run(["promtool", "query", "series", base, "--match", only_prom,
                            "--start", str(t0), "--end", str(tn)],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and 'app="nasa"' in r.stdout, (r.stdout, r.stderr)

        # 4. sum by / avg by over both copies
        code, body = query('sum by (app) (app_requests_per_minute)', rows[5][0], rows[8][0], 60)
        res = json.loads(body)["data"]["result"]
        assert code == 200 and len(res) == 1 and res[0]["metric"] == {"app": "nasa"}, body
        assert [float(v) for _, v in res[0]["values"]] == [2 * v for _, v in rows[5:9]], body
        code, body = query('avg(app_requests_per_minute{app=~"na.a"}) by (node)', rows[5][0],
                           rows[5][0], 60)
        res = json.loads(body)["data"]["result"]
        assert code == 200 and len(res) == 2, body

        # 5. bad input: 400 with Prometheus's error shape, tidectl exit 2 with the reason
        code, body = query('app_requests_per_minute{app="nasa"', t0, t0 + 600, 60)
        j = json.loads(body)
        assert code == 400 and j["status"] == "error" and j["errorType"] == "bad_data", body
        assert "parse error at char" in j["error"], body
        code, body = query(sel, "yesterday", t0, 60)
        assert code == 400 and "start" in json.loads(body)["error"], body
        code, body = query(sel, t0, t0 + 86400 * 30, 60)
        assert code == 400 and "11,000" in json.loads(body)["error"], body
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "query", "rate(x)",
                            "--start", str(t0), "--end", str(t0 + 600)],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 2 and "expected type range vector" in r.stderr, (r.returncode,
                                                                                r.stderr)

        # 6. Prometheus down: warning, the stored data, status down with the reason, backoff
        prom.terminate()
        prom.wait(timeout=30)
        code, body = query('app_requests_per_minute{node="n1"}', rows[1000][0], rows[1010][0], 60)
        j = json.loads(body)
        assert code == 200 and j.get("warnings"), body[:400]
        assert "prometheus unavailable" in j["warnings"][0], j["warnings"]
        assert float(j["data"]["result"][0]["values"][0][1]) == rows[1000][1] + 1e6, body[:300]
        for path in ("/api/v1/labels", "/api/v1/label/node/values",
                     "/api/v1/series?match[]=app_requests_per_minute", "/api/v1/metadata"):
            code, body = http_get(base + path)  # the store's listing, with a warning
            j = json.loads(body)
            assert code == 200 and j["data"] and "prometheus unavailable" in j["warnings"][0], (
                path, body[:400])
        t = time.time()
        code, body = query(sel, t0, t0 + 600, 60)  # in backoff: answered at once
        assert code == 200 and json.loads(body).get("warnings") and time.time() - t < 1.0, body
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "series"], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0 and "prometheus: down:" in r.stdout, r.stdout
        metrics = http_get(base + "/metrics")[1]
        assert _metric(metrics, "tide_prometheus_up") == 0, metrics
        assert _metric(metrics, "tide_prometheus_fetch_errors_total") >= 1, metrics
        cp.terminate()
        assert cp.wait(timeout=30) == 0

        # 7. Prometheus slow: the request times out after --prometheus-timeout, not later
        sp = tt.free_port()
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", sp), Slow)
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        cp = run.controlplane(tok, ap, hp, *tt.LONG_RETENTION, "--prometheus", "http://127.0.0.1:%d" % sp,
                              "--prometheus-timeout", "300ms", log=cplog)
        tp.wait_for(lambda: tt.port_open(hp), 30, "control plane again")
        t = time.time()
        code, body = query('app_requests_per_minute{node="n1"}', rows[1000][0], rows[1001][0], 60)
        took = time.time() - t
        j = json.loads(body)
        assert code == 200 and j.get("warnings") and "imeout" in j["warnings"][0], body[:400]
        assert took < 2.5, "slow prometheus held the query %.1f s" % took
        assert float(j["data"]["result"][0]["values"][0][1]) == rows[1000][1] + 1e6, body[:300]
        srv.shutdown()
        cp.terminate()
        assert cp.wait(timeout=30) == 0
        print("ok")
        return 0


def _metric(text, name):
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError("metric %s missing" % name)


def _rfc3339(t):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


if __name__ == "__main__":
    sys.exit(main())
