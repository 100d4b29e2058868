# workloads_predictive.py: the live predictive path end to end. A Python peer of the wire
# protocol reports two days of per-minute traffic and the utilization of 4 pods into a real
# control plane; a predictive workload without capacityPerReplica is applied; the control
# plane fits the forecaster and the capacity model (capacity.h) on a worker thread from the
# store and the portrait is then driven by the forecast (no fallback), with replicas that
# match the known capacity; the decision events say so.
# timeout: 150
import json
import math
import os
import shutil
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
from _tidetest import free_port  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
TOKEN = b"predictive-token-0123456789abcdef"
CAP = 50.0   # requests per minute one pod serves at 100% CPU
PODS = 4

SPEC = """apiVersion: tide/v1
kind: Workload
metadata: {name: shop}
spec:
  target: {kind: Deployment, name: shop}
  minReplicas: 1
  maxReplicas: 30
  metrics:
    utilization: {selector: 'web_cpu_percent', target: 60}
    traffic: [{name: requests, selector: 'web_requests_per_minute'}]
  providers:
    - {type: predictive, priority: 10, model: snaive-day, quantile: 0.5, reforecastSeconds: 60}
"""


def run(cmd):
    """subprocess.run, retried while the binary is being replaced (a concurrent build)."""
    for _ in range(100):
        try:
            return subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            time.sleep(0.1)
    return subprocess.run(cmd, capture_output=True, text=True)


def traffic(t):
    return 300 + 200 * math.sin(2 * math.pi * t / 86400)


def main():
    w = tempfile.mkdtemp(prefix="tide-it.")
    procs = []
    ok = False
    try:
        tok = os.path.join(w, "token")
        with open(tok, "wb") as f:
            f.write(TOKEN + b"\n")
        os.chmod(tok, 0o600)
        port, sock = free_port(), os.path.join(w, "cp.sock")
        cplog = open(os.path.join(w, "cp.log"), "w+")
        cp = subprocess.Popen([BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % port, "--socket", sock,
                               "--token-file", tok, "--data-dir", w + "/data"], stdout=cplog, stderr=subprocess.STDOUT)
        procs.append(cp)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        peer = tp.Peer(port)
        ack = peer.handshake(TOKEN, "n1")
        assert ack is not None, "handshake refused"
        defs = [[1, {"__name__": "web_requests_per_minute"}]]
        defs += [[2 + i, {"__name__": "web_cpu_percent", "pod": "p%d" % i}] for i in range(PODS)]
        peer.send(tp.SERIES_DEF, s=defs)
        now = int(time.time()) // 60 * 60
        start = now - 2 * 86400
        minutes = list(range(start, now, 60))
        seq = int(ack.get("last_seq", 0)) + 1
        for c in range(0, len(minutes), 720):
            chunk = minutes[c:c + 720]
            base = chunk[0] * 1000
            deltas = [0] + [60000] * (len(chunk) - 1)
            runs = [[1, base, deltas, [traffic(t) for t in chunk]]]
            for i in range(PODS):
                runs.append([2 + i, base, deltas, [100.0 * traffic(t) / (PODS * CAP) for t in chunk]])
            peer.send(tp.SAMPLES, seq=seq, s=runs)
            seq += 1
        acked = 0
        while acked < seq - 1:
            m = peer.recv()
            assert m is not None, "control plane closed the connection"
            if m["t"] == tp.ACK:
                acked = m["ack"]

        ctl = [BIN + "/tidectl", "--socket", sock]
        spec = os.path.join(w, "shop.yaml")
        with open(spec, "w") as f:
            f.write(SPEC)
        out = run(ctl + ["apply", "-f", spec])
        assert out.returncode == 0 and "created" in out.stdout, out

        def driven():
            d = json.loads(run(ctl + ["describe", "shop", "--json"]).stdout or "{}")
            st = d.get("status", "")
            return d if st.startswith("predictive[predictive p10]: snaive-day") and "fallback" not in st else None

        d = tp.wait_for(driven, 90, "forecast-driven portrait")
        p0 = d["portrait"][0]
        want_traffic = traffic(p0["time"])  # snaive-day: yesterday's value at the same minute
        assert abs(p0["traffic"] - want_traffic) < 1.0, (p0, want_traffic)
        assert p0["source"] == "predictive", p0
        # the forecast sizes the steps ahead (the online count now is the current load's: README,
        # "Predictive provisioning"); the next minute's need is the capacity model's for it
        p1 = d["portrait"][1]
        want = math.ceil(traffic(p1["time"]) / (CAP * 0.6))
        assert abs(p1["needed"] - want) <= 1, ("capacity model sizing", p1, want)
        assert p0["replicas"] >= p1["needed"] - 1, ("provisioned ahead", p0, p1)
        # the live guard's score per predictive provider: null until a quarter day is scored
        pp = [p for p in d["providers"] if p["type"] == "predictive"][0]
        assert pp["model"] == "snaive-day" and pp["fallback"] is None, pp
        assert pp["model_online"] == "snaive-day", pp  # no online choice: the fit's model
        assert "live_mase" in pp and pp["live_mase"] is None and pp["live_points"] >= 0, pp
        text = run(ctl + ["describe", "shop"]).stdout
        assert "Forecast:    predictive (snaive-day): live MASE not yet" in text, text
        ev = json.loads(run(ctl + ["events", "shop", "--json"]).stdout)
        assert any(e["kind"] == "fallback" for e in ev), ev  # before the model was there
        assert any(e["kind"] == "predictive" and "snaive-day" in e["text"] for e in ev), ev
        log = open(os.path.join(w, "cp.log")).read()
        assert "capacity model on" in log and "predictive model(s) trained" in log, log[-2000:]
        peer.close()
        ok = True
        print("workloads_predictive: ok (need %d at traffic %.1f)" % (p1["needed"], p1["traffic"]))
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()
        if not ok:
            for f in ("cp.log",):
                path = os.path.join(w, f)
                if os.path.exists(path):
                    print("== " + f)
                    print(open(path).read()[-4000:])
        shutil.rmtree(w, ignore_errors=True)


if __name__ == "__main__":
    main()
