# alerts_alertmanager.py: alert rules end to end with a real Alertmanager (Debian's
# prometheus-alertmanager, loopback) read back with amtool, and a real Prometheus (backfilled
# with promtool) as a metric source. A Python peer of the wire protocol reports two hours of a
# disk filling up (1-s points); a predict rule (model "last", its p90 band above 80) fires, and
# Alertmanager holds the alert with the rule's and the series' labels, the annotations (summary
# with the predicted crossing, crossing_time, the template) and a generatorURL; tidectl alerts,
# describe alertrule, /api/v1/alerts and /api/v1/rules (Prometheus's shape) and /metrics
# (tide_alerts_firing, tide_forecast bands) show it. The disk is then emptied: the rule
# resolves and Alertmanager's alert ends. Alertmanager starts only after the alert fired: the
# failed deliveries are counted and retried with backoff, and the alert arrives all the same. An anomaly rule on a PromQL metric that only
# Prometheus holds (three days at 5-min steps with a spike at the newest point) fires too.
# Invalid rules are refused with every problem by field path and line; the rules are reloaded
# after a restart.
# timeout: 90
import json
import math
import os
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
from _tidetest import BIN, Run, free_port, http_get  # noqa: E402

TOKEN = b"alerts-token-0123456789abcdef012"

DISK = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: disk-full}
spec:
  type: predict
  metric: {selector: 'disk_used_percent'}
  model: last
  threshold: 80
  horizon: 30m
  interval: 1s
  step: 1s
  history: 2h
  for: 0s
  severity: page
  labels: {team: storage}
  annotations:
    description: '{{ $labels.mount }} on {{ $labels.node }} above {{ $threshold }} by {{ $crossingTime }}'
"""

ODD = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: odd-load}
spec:
  type: anomaly
  metric: {query: 'max by (app) (app_load{app="shop"})'}
  interval: 1s
  step: 5m
  history: 3d
"""

BAD = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: bad}
spec:
  type: predict
  metric: {selector: 'x'}
  threshold: high
  horizon: soon
"""


def run(cmd, **kw):
    for _ in range(100):  # the binary may be replaced by a concurrent build
        try:
            return subprocess.run(cmd, capture_output=True, text=True, **kw)
        except OSError:
            time.sleep(0.1)
    return subprocess.run(cmd, capture_output=True, text=True, **kw)


def ready(port):
    try:
        return http_get("http://127.0.0.1:%d/-/ready" % port, 2)[0] == 200
    except OSError:
        return False


def amtool(ap, *args):
    out = run(["amtool", "--alertmanager.url=http://127.0.0.1:%d" % ap, "alert", "query", "-o",
               "json"] + list(args))
    assert out.returncode == 0, out
    return json.loads(out.stdout or "[]")


def backfill(run_, now):
    """Three days of app_load at 5-min steps up to now (a daily cycle), the newest point a
    spike; promtool writes the blocks Prometheus starts with."""
    end = now - now % 300 - 300
    om = run_.path("load.om")
    with open(om, "w") as f:
        f.write("# TYPE app_load gauge\n")
        n = 3 * 288
        for i in range(n):
            t = end - (n - 1 - i) * 300
            v = 100 + 40 * math.sin(2 * math.pi * t / 86400) + 3 * math.sin(i * 1.7)
            if i == n - 1:
                v = 900.0
            f.write('app_load{app="shop"} %.3f %d\n' % (v, t))
        f.write("# EOF\n")
    data = run_.path("prom")
    out = run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
               "--max-block-duration=168h", om, data])
    assert out.returncode == 0, out
    return data


def main():
    for tool in ("prometheus-alertmanager", "amtool", "prometheus", "promtool"):
        if subprocess.run(["sh", "-c", "command -v " + tool], capture_output=True).returncode:
            print("alerts_alertmanager: skipped (%s not installed: scripts/setup.sh)" % tool)
            return
    with Run(logs=("cp.log", "am.log", "prom.log")) as r:
        now = int(time.time())
        ap, pp = free_port(), free_port()
        with open(r.path("am.yml"), "w") as f:
            f.write("route: {receiver: 'null', group_wait: 1s, group_interval: 1s}\n"
                    "receivers: [{name: 'null'}]\n")
        with open(r.path("prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1m}\n")
        pdata = backfill(r, now)
        r.spawn(["prometheus", "--config.file=" + r.path("prom.yml"), "--storage.tsdb.path=" + pdata,
                 "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % pp],
                r.log("prom.log"))
        tp.wait_for(lambda: ready(pp), 30, "prometheus ready")

        tok = r.token(TOKEN)
        port, hp = free_port(), free_port()
        cp = r.controlplane(tok, port, hp, "--alertmanager-urls", "http://127.0.0.1:%d/" % ap,
                            "--alert-resend-interval", "2s",
                            "--prometheus", "http://127.0.0.1:%d" % pp)
        sock = r.path("cp.sock")
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        ctl = [BIN + "/tidectl", "--socket", sock]

        # every problem, by path and line, nothing applied
        with open(r.path("bad.yaml"), "w") as f:
            f.write(BAD)
        out = run(ctl + ["apply", "-f", r.path("bad.yaml")])
        assert out.returncode == 2, out
        assert "spec.threshold (line 7): must be a number" in out.stderr, out.stderr
        assert "spec.horizon (line 8): must be a duration" in out.stderr, out.stderr

        # two hours of a disk filling up, one point a second, up to now
        peer = tp.Peer(port)
        ack = peer.handshake(TOKEN, "n1")
        assert ack is not None, "handshake refused"
        peer.send(tp.SERIES_DEF, s=[[1, {"__name__": "disk_used_percent", "mount": "/srv"}]])
        seq = int(ack.get("last_seq", 0)) + 1
        start = now - 7200

        def push(t_from, t_to, value):
            nonlocal seq
            ts = list(range(t_from, t_to + 1))
            for c in range(0, len(ts), 2000):
                chunk = ts[c:c + 2000]
                peer.send(tp.SAMPLES, seq=seq,
                          s=[[1, chunk[0] * 1000, [0] + [1000] * (len(chunk) - 1),
                              [value(t) for t in chunk]]])
                seq += 1
            acked = 0
            while acked < seq - 1:
                m = peer.recv()
                assert m is not None, "control plane closed the connection"
                if m["t"] == tp.ACK:
                    acked = m["ack"]

        push(start, now, lambda t: 50.0 + 35.0 * (t - start) / 7200.0)  # 50% .. 85%
        with open(r.path("disk.yaml"), "w") as f:
            f.write(DISK)
        out = run(ctl + ["apply", "-f", r.path("disk.yaml")])
        assert out.returncode == 0 and "alertrule/disk-full created (generation 1)" in out.stdout, out

        # Alertmanager is not there yet: the alert fires in Tide, its delivery fails and is
        # retried with backoff, nothing is lost
        tp.wait_for(lambda: "firing" in run(ctl + ["alerts"]).stdout, 30, "disk-full firing")

        def am_errors():
            m = http_get("http://127.0.0.1:%d/metrics" % hp)[1]
            for line in m.splitlines():
                if line.startswith("tide_alertmanager_errors_total{") and not line.endswith(" 0"):
                    return line
            return None

        tp.wait_for(am_errors, 20, "a failed delivery counted")
        r.spawn(["prometheus-alertmanager", "--config.file=" + r.path("am.yml"),
                 "--storage.path=" + r.path("am"), "--web.listen-address=127.0.0.1:%d" % ap,
                 "--cluster.listen-address="], r.log("am.log"))
        tp.wait_for(lambda: ready(ap), 30, "alertmanager ready")

        def fired():
            al = amtool(ap, "alertname=disk-full")
            return al[0] if al else None

        a = tp.wait_for(fired, 30, "disk-full in Alertmanager")
        lab = a["labels"]
        assert lab == {"alertname": "disk-full", "severity": "page", "team": "storage",
                       "mount": "/srv", "node": "n1"}, lab
        an = a["annotations"]
        assert "above 80" in an["summary"] and "disk-full" in an["summary"], an
        assert an["description"].startswith("/srv on n1 above 80 by 20"), an
        assert "crossing_time" in an, an
        assert a["generatorURL"].startswith("http://127.0.0.1:%d/api/v1/rules" % hp), a
        assert a["status"]["state"] == "active", a

        out = run(ctl + ["alerts"])
        assert out.returncode == 0 and "disk-full" in out.stdout and "firing" in out.stdout, out
        d = json.loads(run(ctl + ["describe", "alertrule", "disk-full", "--json"]).stdout)
        assert d["state"] == "firing" and d["health"] == "ok", d
        s0 = d["tide"]["series"][0]
        assert s0["model"] == "last" and s0["crossing_time"] is not None, s0
        out = run(ctl + ["get", "alertrules"])
        assert out.returncode == 0 and "disk-full" in out.stdout and "predict" in out.stdout, out

        st, body = http_get("http://127.0.0.1:%d/api/v1/alerts" % hp)
        j = json.loads(body)
        assert st == 200 and j["status"] == "success", body
        assert any(x["labels"]["alertname"] == "disk-full" and x["state"] == "firing"
                   for x in j["data"]["alerts"]), j
        st, body = http_get("http://127.0.0.1:%d/api/v1/rules" % hp)
        g = json.loads(body)["data"]["groups"]
        rule = [x for x in g if x["name"] == "disk-full"][0]["rules"][0]
        assert rule["type"] == "alerting" and rule["state"] == "firing", rule
        assert rule["query"] == "disk_used_percent" and rule["labels"]["severity"] == "page", rule
        st, metrics = http_get("http://127.0.0.1:%d/metrics" % hp)
        assert 'tide_alerts_firing{rule="disk-full"} 1' in metrics, metrics[-3000:]
        assert 'tide_forecast{rule="disk-full",mount="/srv",node="n1",quantile="0.9"}' in metrics
        assert "tide_alertmanager_alerts_sent_total{" in metrics

        # the anomaly rule on Prometheus's metric: the spike at the newest point fires
        with open(r.path("odd.yaml"), "w") as f:
            f.write(ODD)
        out = run(ctl + ["apply", "-f", r.path("odd.yaml")])
        assert out.returncode == 0, out
        o = tp.wait_for(lambda: (amtool(ap, "alertname=odd-load") or [None])[0], 40,
                        "odd-load in Alertmanager")
        assert o["labels"]["app"] == "shop" and o["labels"]["severity"] == "warning", o
        assert "anomalous value 900" in o["annotations"]["summary"], o

        # the disk is emptied: the forecast falls below 80, the alert resolves in Alertmanager
        t1 = int(time.time())
        push(now + 1, t1 + 1, lambda t: 20.0)
        tp.wait_for(lambda: not amtool(ap, "alertname=disk-full"), 30, "disk-full resolved")
        d = json.loads(run(ctl + ["describe", "alertrule", "disk-full", "--json"]).stdout)
        assert d["state"] == "inactive" and d["alerts"] == [], d
        assert d["tide"]["series"][0].get("resolved_at"), d
        # resolved, not just expired: Alertmanager got endsAt in the past
        with urllib.request.urlopen("http://127.0.0.1:%d/api/v2/alerts?active=false&"
                                    "filter=alertname%%3D%%22disk-full%%22" % ap) as resp:
            old = json.loads(resp.read())
        assert all(x["status"]["state"] != "active" for x in old), old

        out = run(ctl + ["delete", "alertrule", "odd-load"])
        assert out.returncode == 0 and "alertrule/odd-load deleted" in out.stdout, out
        peer.close()
        cp.terminate()
        assert cp.wait(20) == 0, "control plane exit status"

        # the rules are kept: a restarted control plane has disk-full back, not the deleted one
        cp = r.controlplane(tok, free_port(), free_port())
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket after restart")
        rules = json.loads(run(ctl + ["get", "alertrules", "--json"]).stdout or "[]")
        assert [x["name"] for x in rules] == ["disk-full"], rules
        cp.terminate()
        assert cp.wait(20) == 0, "control plane exit status after restart"
        print("alerts_alertmanager: ok")


if __name__ == "__main__":
    main()
