# workloads_prometheus.py: the live controller reads its workload's history and observations
# from a real Prometheus (Debian package) backfilled with promtool from
# ../shared/data/nasa_http_1m.csv. The traffic metric is PromQL outside the store's selector
# subset (avg_over_time, run by Prometheus alone); utilization and replicas are selectors (the
# store merged with Prometheus; an agent reports one more pod's utilization). spec.metrics.offsetSeconds (whole weeks) moves the 1995 trace
# to the present. Checks: the snaive-day model is fitted on Prometheus history (describe's
# last_fit names the source and the 1995 span), the portrait ahead is forecast-driven with
# yesterday's traffic at the same minute, every metric says where it came from; then
# Prometheus is stopped: the status names "prometheus: ...", a decision event records it, the
# portrait stays (last good observation) and tidectl keeps answering quickly.
# timeout: 90
import csv
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import http.server
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _freeport as freeport  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
SRC = os.environ.get("TIDE_SRC", os.path.abspath("."))
DATA = os.path.join(SRC, "..", "shared", "data", "nasa_http_1m.csv")
TOKEN = b"workloads-prom-token-0123456789ab"
WEEK = 7 * 86400
CAP = 50.0   # capacityPerReplica
PODS = 2

SPEC = """apiVersion: tide/v1
kind: Workload
metadata: {name: nasa}
spec:
  target: {kind: Deployment, name: nasa}
  minReplicas: 1
  maxReplicas: 60
  metrics:
    offsetSeconds: %d
    utilization: {selector: 'app_cpu_percent{app="nasa"}', target: 60}
    traffic: [{name: requests, query: 'sum(avg_over_time(app_requests_per_minute{app="nasa"}[1m]))'}]
    replicas: {selector: 'app_replicas{app="nasa"}'}
  providers:
    - {type: predictive, priority: 10, model: snaive-day, quantile: 0.5, reforecastSeconds: 60,
       capacityPerReplica: %g}
  behavior: {syncPeriodSeconds: 2}
"""


class Slow(http.server.BaseHTTPRequestHandler):
    """A Prometheus that never answers within the control plane's 2 s timeout."""
    def do_GET(self):
        time.sleep(4)
        try:
            self.send_response(503)
            self.end_headers()
        except OSError:
            pass

    def log_message(self, *a):
        pass


def free_port():
    return freeport.free_port()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), 0.5).close()
        return True
    except OSError:
        return False


def ready(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/-/ready" % port, timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def run(cmd, timeout=20):
    """subprocess.run, retried while the binary is being replaced (a concurrent build)."""
    for _ in range(100):
        try:
            return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except OSError:
            time.sleep(0.1)
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)


def main():
    if not os.path.exists(DATA):
        print("skipped: ../shared/data/nasa_http_1m.csv missing")
        return 77
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return 77
    w = tempfile.mkdtemp(prefix="tide-it.")
    procs = []
    slow = []
    ok = False
    try:
        rows = [(int(t), float(v)) for t, v in list(csv.reader(open(DATA)))[1:]]
        by_t = dict(rows)
        last = rows[-1][0]
        now = int(time.time())
        # whole weeks keep the weekday and the time of day; the evaluated minute then lies in
        # the trace's last week, with at least a week of history before it
        offset = -(-(now - last) // WEEK) * WEEK
        eval_t = now - offset
        assert last - WEEK < eval_t <= last, (eval_t, last)
        keep = [(t, v) for t, v in rows if t > eval_t - 9 * 86400]
        with open(os.path.join(w, "nasa.om"), "w") as o:
            o.write("# TYPE app_requests_per_minute gauge\n")
            for t, v in keep:
                o.write('app_requests_per_minute{app="nasa"} %s %d\n' % (repr(v), t))
            o.write("# TYPE app_cpu_percent gauge\n")
            for p in range(PODS):
                for t, v in keep:
                    o.write('app_cpu_percent{app="nasa",pod="p%d"} %s %d\n'
                            % (p, repr(min(100.0, 100.0 * v / (PODS * CAP))), t))
            o.write("# TYPE app_replicas gauge\n")
            for t, v in keep:
                o.write('app_replicas{app="nasa"} %d %d\n' % (PODS, t))
            o.write("# EOF\n")
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                        "--max-block-duration=168h", os.path.join(w, "nasa.om"),
                        os.path.join(w, "prom")], check=True, capture_output=True, timeout=60)
        pp = free_port()
        with open(os.path.join(w, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        plog = open(os.path.join(w, "prom.log"), "w+")
        prom = subprocess.Popen(
            ["prometheus", "--config.file=" + os.path.join(w, "prom.yml"),
             "--storage.tsdb.path=" + os.path.join(w, "prom"),
             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % pp],
            stdout=plog, stderr=subprocess.STDOUT)
        procs.append(prom)
        tp.wait_for(lambda: port_open(pp) and ready(pp), 40, "prometheus ready")

        tok = os.path.join(w, "token")
        with open(tok, "wb") as f:
            f.write(TOKEN + b"\n")
        os.chmod(tok, 0o600)
        ap, hp, sock = free_port(), free_port(), os.path.join(w, "cp.sock")
        cplog = open(os.path.join(w, "cp.log"), "w+")
        cp = subprocess.Popen(
            [BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % ap, "--socket", sock,
             "--token-file", tok, "--data-dir", w + "/data", "--http", "127.0.0.1:%d" % hp,
             "--prometheus", "http://127.0.0.1:%d" % pp, "--prometheus-timeout", "2s",
             # the agent's samples are stamped in 1995 (the trace's time): kept, not swept
             "--retention-raw", "300000h", "--retention-1m", "300000h",
             "--retention-10m", "300000h"],
            stdout=cplog, stderr=subprocess.STDOUT)
        procs.append(cp)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        # an agent reports one more pod's utilization for the minutes before the evaluated one:
        # the utilization selector then reads the store merged with Prometheus
        peer = tp.Peer(ap)
        ack = peer.handshake(TOKEN, "n1")
        assert ack is not None, "handshake refused"
        peer.send(tp.SERIES_DEF, s=[[1, {"__name__": "app_cpu_percent", "app": "nasa", "pod": "agent"}]])
        mins = list(range(eval_t // 60 * 60 - 900, eval_t // 60 * 60 + 600, 60))
        peer.send(tp.SAMPLES, seq=int(ack.get("last_seq", 0)) + 1,
                  s=[[1, mins[0] * 1000, [0] + [60000] * (len(mins) - 1), [40.0] * len(mins)]])
        while True:
            msg = peer.recv()
            assert msg is not None, "connection closed before the ACK"
            if msg["t"] == tp.ACK:
                break
        peer.close()
        ctl = [BIN + "/tidectl", "--socket", sock]
        spec = os.path.join(w, "nasa.yaml")
        with open(spec, "w") as f:
            f.write(SPEC % (offset, CAP))
        out = run(ctl + ["apply", "-f", spec])
        assert out.returncode == 0 and "created" in out.stdout, out

        def describe():
            r = run(ctl + ["describe", "nasa", "--json"])
            return json.loads(r.stdout) if r.returncode == 0 else {}

        def driven():
            d = describe()
            st = d.get("status", "")
            return d if st.startswith("predictive[predictive p10]: snaive-day") and "fallback" not in st \
                and d.get("last_fit") else None

        d = tp.wait_for(driven, 50, "a forecast-driven portrait trained on Prometheus history")
        fit = d["last_fit"]
        assert fit["source"] == "prometheus", fit
        assert fit["points"] >= 6 * 1440 and fit["failed"] == 0, fit
        assert fit["history_end"] <= last and last - 2 * WEEK < fit["history_end"], fit
        m = d["metrics"]
        assert m["traffic"]["source"] == "prometheus" and m["traffic"]["error"] is None, m
        assert not any(m[k]["stale"] for k in m), m
        assert m["utilization"]["source"] == "merged", m   # selector: the store merged with Prometheus
        assert m["replicas"]["source"] == "prometheus", m
        assert d["prometheus"] == "ok" and d["prometheus_error"] is None, d
        assert d["metrics_offset_seconds"] == offset, d
        p0 = d["portrait"][0]
        assert p0["source"] == "predictive", p0
        # snaive-day: yesterday's traffic; the portrait's minute t carries the forecast over
        # (t - 1 min, t], so it is the mean of yesterday's t - 1 min and t
        def yesterday(t):
            a, b = by_t.get(t - offset - 86400 - 60), by_t.get(t - offset - 86400)
            return None if a is None or b is None else (a + b) / 2
        match = [abs(s["traffic"] - yesterday(s["time"])) < 0.01 for s in d["portrait"]
                 if "traffic" in s and yesterday(s["time"]) is not None]
        assert len(match) >= 50 and sum(match) >= 0.9 * len(match), \
            [(s["time"], s.get("traffic"), yesterday(s["time"])) for s in d["portrait"][:10]]
        # the forecast's need for now provisions replicas (p0's replicas, started ahead); what is
        # online now follows the current load (p0's needed, the reactive recommendation)
        need = -(-p0["traffic"] // (CAP * 0.6))
        m = re.search(r"online (\d+) \(([a-z :]+)\), forecast (\d+) needs (\d+) now", d["status"])
        assert m, d["status"]
        assert abs(int(m.group(4)) - need) <= 1, (m.group(0), p0, need)
        assert p0["replicas"] >= int(m.group(4)), (m.group(0), p0)
        assert p0["needed"] == min(int(m.group(1)), p0["replicas"]) or p0["needed"] == 1, (m.group(0), p0)
        assert d["observation"].startswith("%d pod(s)" % (PODS + 1)), d["observation"]
        text = run(ctl + ["describe", "nasa"]).stdout
        assert "Last fit:" in text and "from prometheus, 1995-" in text, text
        assert "traffic" in text and "avg_over_time" in text, text
        print(text[:text.find("Portrait ahead")])
        assert isinstance(d["last_fetch_ms"], (int, float)) and d["last_fetch_ms"] >= 0, d
        print("one sync's fetch from Prometheus (7 days at 1 min + 2 selectors): %d ms" % d["last_fetch_ms"])
        print("trained on %d minutes from Prometheus (%s); portrait starts %d replicas at %.0f/min"
              % (fit["points"], time.strftime("%Y-%m-%d", time.gmtime(fit["history_end"])),
                 p0["needed"], p0["traffic"]))

        # Prometheus goes away: a clear reason, the last good observation, a quick tidectl
        prom.terminate()
        prom.wait(20)
        procs.remove(prom)

        def down():
            d = describe()
            if not (d.get("prometheus_error") and "prometheus:" in d.get("observation", "")):
                return None
            # the status and each metric's read are updated by the same failed fetch, but the
            # status may be read between two syncs: wait for the metrics to say it too
            return d if all(d["metrics"][k]["stale"] for k in ("traffic", "replicas")) else None

        d = tp.wait_for(down, 20, "the status to name the Prometheus failure")
        assert d["prometheus"].startswith("down"), d["prometheus"]
        for k in ("traffic", "replicas"):  # Prometheus's only: the last good values stand in
            mk = d["metrics"][k]
            assert mk["stale"] and mk["source"] == "prometheus", mk
            assert mk["error"].startswith("prometheus: ") and "using the values read at" in mk["error"], mk
        mk = d["metrics"]["utilization"]  # the agent's pod is still in the store
        assert mk["source"] == "store" and not mk["stale"] and mk["error"].startswith("prometheus: "), mk
        assert d["portrait"] and d["portrait"][0]["source"] == "predictive", d["portrait"][:1]
        ev = json.loads(run(ctl + ["events", "nasa", "--json"]).stdout)
        assert any(e["kind"] == "prometheus" and e["text"].startswith("prometheus: ") for e in ev), ev
        worst = 0.0
        for _ in range(10):
            t0 = time.time()
            r = run(ctl + ["describe", "nasa", "--json"])
            worst = max(worst, time.time() - t0)
            assert r.returncode == 0, r
            time.sleep(0.3)
        assert worst < 2.0, "tidectl took %.2f s with Prometheus down" % worst
        t0 = time.time()
        r = run(ctl + ["status", "--json"])
        assert r.returncode == 0 and time.time() - t0 < 2.0, r
        text = run(ctl + ["describe", "nasa"]).stdout
        print(text[:text.find("Portrait ahead")])
        print("prometheus down: %s; tidectl worst %.0f ms" % (d["prometheus_error"], worst * 1000))

        # a Prometheus that accepts and never answers in time: syncs go on with the last good
        # observation while the fetch is under way, and tidectl stays quick
        srv = http.server.ThreadingHTTPServer(("127.0.0.1", pp), Slow)
        srv.daemon_threads = True
        threading.Thread(target=srv.serve_forever, daemon=True).start()
        slow.append(srv)
        worst = 0.0

        def stalled():
            nonlocal worst
            t0 = time.time()
            d = describe()
            worst = max(worst, time.time() - t0)
            return d if "no answer for" in (d.get("prometheus_error") or "") else None

        d = tp.wait_for(stalled, 45, "the status to say Prometheus does not answer")
        assert d["observation"].startswith("prometheus: no answer for"), d["observation"]
        assert d["portrait"] and d["portrait"][0]["source"] == "predictive", d["portrait"][:1]
        assert worst < 2.0, "tidectl took %.2f s with Prometheus slow" % worst
        ev = json.loads(run(ctl + ["events", "nasa", "--json"]).stdout)
        assert any(e["kind"] == "prometheus" and "no answer for" in e["text"] for e in ev), ev
        print("prometheus slow: %s; tidectl worst %.0f ms" % (d["prometheus_error"], worst * 1000))

        # a clean stop with a fetch under way (sanitizer reports would make the status non-zero)
        t0 = time.time()
        cp.terminate()
        rc = cp.wait(20)
        procs.remove(cp)
        took = time.time() - t0
        assert rc == 0, "control plane exited with %d" % rc
        # the fetch is cancelled, not waited for (its timeout and retries would take > 4 s)
        assert took < 1.0, "control plane took %.2f s to stop with a fetch under way" % took
        with open(os.path.join(w, "cp.log")) as f:
            cancelled = [l.strip() for l in f if "cancelled" in l and "in flight" in l]
        print("control plane stopped in %.2f s with a fetch under way (%s)"
              % (took, cancelled[-1] if cancelled else "no request was in flight at SIGTERM"))
        ok = True
    finally:
        for srv in slow:
            srv.shutdown()
            srv.server_close()
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait()
        if not ok:
            for f in ("cp.log", "prom.log"):
                path = os.path.join(w, f)
                if os.path.exists(path):
                    print("== " + f)
                    print(open(path).read()[-4000:])
        shutil.rmtree(w, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
