# metrics_prometheus.py: the control plane's /metrics as an operator's Prometheus sees it. With
# a real agent and a workload applied, /metrics passes `promtool check metrics` and has the
# process_* series, tide_build_info, per-node series (connected, heartbeat age, samples, spool,
# protocol errors) and per-workload series (needed/provisioned, replicas by state, provider in
# control, fallback, decisions); tide_prometheus_up is 1 with no Prometheus configured, as its
# HELP says. deploy/prometheus/tide-rules.yaml passes `promtool check rules` and its unit tests
# (`promtool test rules`); a real Prometheus scrapes the control plane with those rules loaded,
# stores the series, and when the agent is stopped TideAgentMissing goes pending for its node.
# timeout: 180
import json
import os
import re
import shutil
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tidetest as tt  # noqa: E402
from _tidetest import BIN, SRC  # noqa: E402

TOKEN = b"metrics-prometheus-token-0123456789"
RULES = os.path.join(SRC, "deploy", "prometheus", "tide-rules.yaml")
RULES_TEST = os.path.join(SRC, "tests", "fixtures", "prometheus", "tide-rules-test.yaml")

WORKLOAD = """apiVersion: tide/v1
kind: Workload
metadata: {name: web, namespace: shop}
spec:
  target: {kind: Deployment, namespace: shop, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    utilization:
      selector: 'node_cpu_count{node="n1"}'
      target: 60
    traffic:
      - name: rps
        selector: 'node_load1{node="n1"}'
  providers:
    - {type: predictive, priority: 20}
    - {type: reactive, priority: 10}
    - {type: static, priority: 0, replicas: 2}
"""


def wait_for(what, fn, timeout=60):
    end = time.monotonic() + timeout
    while True:
        v = fn()
        if v:
            return v
        if time.monotonic() > end:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.2)


def samples(text):
    """{(name, frozenset(labels)): value} of a text exposition."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        m = re.match(r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})? (\S+)$', line)
        assert m, "unparsable line: " + line
        labels = frozenset(re.findall(r'([a-zA-Z_]+)="((?:[^"\\]|\\.)*)"', m.group(3) or ""))
        out[(m.group(1), labels)] = float(m.group(4))
    return out


def value(s, name, **labels):
    return s.get((name, frozenset(labels.items())))


def prom_query(pp, q):
    code, body = tt.http_get("http://127.0.0.1:%d/api/v1/query?query=%s" % (pp, urllib.parse.quote(q)))
    assert code == 200, body
    return json.loads(body)["data"]["result"]


def main():
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return 77
    r = subprocess.run(["promtool", "check", "rules", RULES], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    r = subprocess.run(["promtool", "test", "rules", RULES_TEST], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    with tt.Run(logs=("cp.log", "agent.log", "prom.log")) as run:
        tok = run.token(TOKEN)
        lp, hp, pp = tt.free_port(), tt.free_port(), tt.free_port()
        run.controlplane(tok, lp, hp)
        sock = run.path("cp.sock")
        wait_for("control plane", lambda: tt.port_open(hp))
        agent = run.spawn([BIN + "/tide-agent", "--controlplane", "127.0.0.1:%d" % lp, "--node",
                           "n1", "--token-file", tok, "--interval", "200ms", "--reconnect-max",
                           "1s"], run.log("agent.log"))
        with open(run.path("web.yaml"), "w") as f:
            f.write(WORKLOAD)
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "apply", "-f", run.path("web.yaml")],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        base = "http://127.0.0.1:%d/metrics" % hp

        def scraped():
            s = samples(tt.http_get(base)[1])
            ok = value(s, "tide_node_connected", node="n1") == 1 and value(
                s, "tide_workload_replicas", workload="web", namespace="shop", state="online")
            return s if ok else None
        s = wait_for("node and workload series", scraped)
        text = tt.http_get(base)[1]
        r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True,
                           text=True)
        assert r.returncode == 0, r.stdout + r.stderr
        # process_* of the control plane itself
        cp_pid = run.procs[0].pid
        with open("/proc/%d/stat" % cp_pid) as f:
            threads = int(f.read().rsplit(")", 1)[1].split()[17])
        # connections come and go (the scrape's own): within a few of what /proc shows
        assert abs(value(s, "process_open_fds") - len(os.listdir("/proc/%d/fd" % cp_pid))) <= 3
        assert value(s, "process_resident_memory_bytes") > 1e6
        assert abs(value(s, "process_start_time_seconds") - time.time()) < 120
        assert value(s, "process_threads") >= 1 and threads >= 1
        assert value(s, "process_cpu_seconds_total") >= 0
        assert any(k[0] == "tide_build_info" and dict(k[1]).get("version") for k in s), "build info"
        # no Prometheus configured: none was needed, so "up" as the HELP says
        assert value(s, "tide_prometheus_up") == 1, value(s, "tide_prometheus_up")
        assert value(s, "tide_prometheus_configured") == 0
        assert value(s, "tide_node_heartbeat_age_seconds", node="n1") < 30
        assert value(s, "tide_node_samples_total", node="n1") > 0
        assert value(s, "tide_node_protocol_errors_total", node="n1") == 0
        assert value(s, "tide_node_spool_drops_total", node="n1") == 0
        assert value(s, "tide_node_spool_bytes", node="n1") is not None
        wl = dict(workload="web", namespace="shop")
        assert value(s, "tide_workload_needed_replicas", **wl) >= 1
        assert value(s, "tide_workload_max_replicas", **wl) == 5
        ctl = [value(s, "tide_workload_provider_in_control", provider=p, type=p, **wl)
               for p in ("predictive", "reactive", "static")]
        assert sorted(ctl) == [0, 0, 1], ctl
        # no traffic history yet: the predictive provider runs on the reactive fallback, and
        # the decision event for it is counted
        s = wait_for("fallback", lambda: (lambda x: x if value(
            x, "tide_workload_provider_fallback", provider="predictive", **wl) == 1 else None)(
                samples(tt.http_get(base)[1])))
        assert value(s, "tide_workload_decisions_total", kind="fallback", **wl) >= 1

        # a real Prometheus scrapes it with the rules loaded
        shutil.copy(RULES, run.path("tide-rules.yaml"))
        with open(run.path("prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1s, evaluation_interval: 1s}\n"
                    "rule_files: [tide-rules.yaml]\n"
                    "scrape_configs: [{job_name: tide-controlplane, static_configs: "
                    "[{targets: ['127.0.0.1:%d']}]}]\n" % hp)
        run.spawn(["prometheus", "--config.file=" + run.path("prom.yml"),
                   "--storage.tsdb.path=" + run.path("prom-data"),
                   "--web.listen-address=127.0.0.1:%d" % pp], run.log("prom.log"))
        wait_for("prometheus ready", lambda: tt.http_get(
            "http://127.0.0.1:%d/-/ready" % pp)[0] == 200 if tt.port_open(pp) else False)
        wait_for("a scrape", lambda: prom_query(pp, 'up{job="tide-controlplane"} == 1'), 60)
        for q in ('tide_build_info', 'tide_node_connected{node="n1"} == 1',
                  'tide_workload_replicas{workload="web",state="online"}',
                  'process_resident_memory_bytes{job="tide-controlplane"}'):
            assert prom_query(pp, q), "Prometheus has no " + q
        code, body = tt.http_get("http://127.0.0.1:%d/api/v1/rules" % pp)
        groups = json.loads(body)["data"]["groups"]
        rules = [r for g in groups for r in g["rules"]]
        assert len(rules) == 8 and all(r["health"] == "ok" for r in rules), rules
        # the agent goes away: TideAgentMissing becomes pending for n1 (fires after its 2 m)
        agent.terminate()
        agent.wait()

        def pending():
            code, body = tt.http_get("http://127.0.0.1:%d/api/v1/alerts" % pp)
            al = json.loads(body)["data"]["alerts"]
            return [a for a in al if a["labels"]["alertname"] == "TideAgentMissing"
                    and a["labels"].get("node") == "n1" and a["state"] in ("pending", "firing")]
        wait_for("TideAgentMissing pending", pending, 60)
        print("metrics_prometheus: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
