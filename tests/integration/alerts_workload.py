# alerts_workload.py: the built-in alert conditions of a workload (AlertRule type workload) on
# a live control plane: a workload whose static provider asks for more replicas than
# maxReplicas fires outOfReplicas (with the time and the demand), its predictive provider
# without any traffic history runs on the reactive fallback and fires fallback (labelled with
# the provider); both show in tidectl alerts, /api/v1/alerts and describe alertrule. A rule
# naming a workload that does not exist reports health err with the reason. Invalid rules are
# refused by field path and line.
# timeout: 60
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
from _tidetest import BIN, Run, free_port, http_get  # noqa: E402

TOKEN = b"alerts-workload-token-0123456789ab"

SHOP = """apiVersion: tide/v1
kind: Workload
metadata: {name: shop}
spec:
  target: {kind: Deployment, name: shop}
  mode: Preview
  minReplicas: 1
  maxReplicas: 4
  metrics:
    utilization: {selector: 'web_cpu_percent', target: 60}
    traffic: [{name: requests, selector: 'web_requests_per_minute'}]
  providers:
    - {type: static, priority: 20, replicas: 9}
    - {type: predictive, name: forecast, priority: 10, model: snaive-day}
  behavior: {syncPeriodSeconds: 1}
"""

RULE = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: shop-health}
spec:
  type: workload
  workload: shop
  interval: 1s
  severity: page
"""

GHOST = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: ghost}
spec:
  type: workload
  workload: nosuch
  conditions: [fallback]
  interval: 1s
"""

BAD = """apiVersion: tide/v1
kind: AlertRule
metadata: {name: bad}
spec:
  type: workload
  metric: {selector: x}
  conditions: [outOfReplicas, sunshine]
"""


def run(cmd):
    for _ in range(100):  # the binary may be replaced by a concurrent build
        try:
            return subprocess.run(cmd, capture_output=True, text=True)
        except OSError:
            time.sleep(0.1)
    return subprocess.run(cmd, capture_output=True, text=True)


def main():
    with Run() as r:
        tok = r.token(TOKEN)
        hp = free_port()
        r.controlplane(tok, free_port(), hp)
        sock = r.path("cp.sock")
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        ctl = [BIN + "/tidectl", "--socket", sock]
        for name, text in (("bad", BAD), ("shop", SHOP), ("rule", RULE), ("ghost", GHOST)):
            with open(r.path(name + ".yaml"), "w") as f:
                f.write(text)
        out = run(ctl + ["apply", "-f", r.path("bad.yaml")])
        assert out.returncode == 2, out
        assert "spec (line 5): missing field \"workload\"" in out.stderr, out.stderr
        assert "spec.metric (line 6): not for type workload" in out.stderr, out.stderr
        assert "spec.conditions[1] (line 7): must be one of outOfReplicas, fallback, stability" \
            in out.stderr, out.stderr
        for name in ("shop", "rule", "ghost"):
            out = run(ctl + ["apply", "-f", r.path(name + ".yaml")])
            assert out.returncode == 0, out

        def both():
            al = json.loads(run(ctl + ["alerts", "--json"]).stdout or "[]")
            conds = {a["labels"].get("condition"): a for a in al if a["state"] == "firing"}
            return conds if {"outOfReplicas", "fallback"} <= set(conds) else None

        conds = tp.wait_for(both, 30, "outOfReplicas and fallback firing")
        o = conds["outOfReplicas"]
        assert o["labels"] == {"alertname": "shop-health", "severity": "page", "workload": "shop",
                               "namespace": "default", "condition": "outOfReplicas"}, o
        assert "out of replicas now" in o["annotations"]["summary"], o
        assert o["annotations"]["crossing_time"] >= o["activeAt"], o  # "now" moves on
        assert "9 needed, maxReplicas 4" in o["annotations"]["summary"], o
        f = conds["fallback"]
        assert f["labels"]["provider"] == "forecast", f
        assert "fell back to reactive" in f["annotations"]["summary"], f
        st, body = http_get("http://127.0.0.1:%d/api/v1/alerts" % hp)
        assert st == 200 and "outOfReplicas" in body, body
        # the ghost rule's first evaluation may come after the others' firing: awaited
        def ghost():
            g = json.loads(run(ctl + ["describe", "alertrule", "ghost", "--json"]).stdout or "{}")
            return g if g.get("health") == "err" else None

        g = tp.wait_for(ghost, 30, "the ghost rule evaluated")
        assert "no workload named 'nosuch'" in g["lastError"], g
        text = run(ctl + ["describe", "alertrule", "shop-health"]).stdout
        assert "firing" in text and "out of replicas now" in text, text
        print("alerts_workload: ok")


if __name__ == "__main__":
    main()
