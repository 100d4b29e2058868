# promql_vs_prometheus.py: the PromQL engine checked against a real Prometheus. The same data
# (counters with a reset, gauges with a gap, a series that stops, histogram buckets, NaN and
# +Inf samples) is backfilled into Prometheus with promtool and sent to tide-controlplane as an
# agent's samples; a corpus of queries (every function, operator, aggregation and modifier the
# engine supports, edge cases, errors) runs through both HTTP APIs, instant and range, and the
# results must agree within float tolerance (the same series, the same steps, values equal to
# 1e-6 relative), errors where Prometheus errs. Then real clients: promtool query
# instant/range/series/labels against Tide, and Grafana's "Save & test" (1+1) and label-browser
# calls (buildinfo, labels/series with match[], label values, metadata, form POST).
# timeout: 400
import json
import math
import os
import random
import shutil
import subprocess
import sys
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"promql-diff-token-0123456789abcdef"
STEP = 15  # seconds between samples
N = 480  # two hours


def gen(t0):
    """{labels tuple: [(ts, value)]} with the node label an agent's samples get."""
    rnd = random.Random(17)
    data = {}

    def put(name, labels, pts):
        lab = dict(labels)
        lab["__name__"] = name
        lab["node"] = "n1"
        data[tuple(sorted(lab.items()))] = pts

    for inst in ("a", "b", "c"):
        for code in ("200", "500"):
            v, pts = 0.0, []
            for i in range(N):
                v += rnd.randint(0, 20) * (1 if code == "200" else 0.1)
                if inst == "b" and code == "200" and i == N // 2:
                    v = rnd.randint(0, 5)  # a counter reset
                pts.append((t0 + i * STEP, v))
            put("http_requests", {"job": "api", "instance": inst, "code": code}, pts)
        g, pts = 50.0, []
        for i in range(N):
            g += rnd.uniform(-3, 3)
            if inst == "c" and 200 <= i < 240:
                continue  # a ten-minute gap: lookback runs out inside it
            pts.append((t0 + i * STEP, round(g, 3)))
        put("mem_used", {"job": "api", "instance": inst}, pts)
        c = [0.0, 0.0, 0.0, 0.0]
        pts_by_le = {le: [] for le in ("0.1", "0.5", "1", "+Inf")}
        for i in range(N):
            for k in range(rnd.randint(0, 8)):
                d = rnd.expovariate(3)
                for j, le in enumerate((0.1, 0.5, 1.0, math.inf)):
                    if d <= le:
                        c[j] += 1
            for j, le in enumerate(("0.1", "0.5", "1", "+Inf")):
                pts_by_le[le].append((t0 + i * STEP, c[j]))
        for le, pts in pts_by_le.items():
            put("req_duration_seconds_bucket", {"job": "api", "instance": inst, "le": le}, pts)
    # a series that stops an hour in (staleness by lookback), one with NaN and +Inf
    put("short_lived", {"job": "batch"}, [(t0 + i * STEP, float(i)) for i in range(N // 2)])
    weird = []
    for i in range(N):
        v = float(i % 7)
        if i % 50 == 25:
            v = math.nan
        if i % 97 == 40:
            v = math.inf
        weird.append((t0 + i * STEP, v))
    put("odd_values", {"job": "batch"}, weird)
    put("label_src", {"job": "batch", "src": "web-01.example", "other": "x"},
        [(t0 + i * STEP, 1.0) for i in range(N)])
    return data


def fmt(v):
    if math.isnan(v):
        return "NaN"
    if math.isinf(v):
        return "+Inf" if v > 0 else "-Inf"
    return repr(v)


def write_om(path, data):
    by_name = {}
    for labels, pts in data.items():
        by_name.setdefault(dict(labels)["__name__"], []).append((labels, pts))
    with open(path, "w") as o:
        for name, series in sorted(by_name.items()):
            o.write("# TYPE %s gauge\n" % name)
            for labels, pts in series:
                ls = ",".join('%s="%s"' % (k, v) for k, v in labels if k != "__name__")
                for ts, v in pts:
                    o.write("%s{%s} %s %d\n" % (name, ls, fmt(v), ts))
        o.write("# EOF\n")


def load_tide(ap, data):
    peer = tp.Peer(ap)
    assert peer.handshake(TOKEN, "n1") is not None
    ids = {}
    for i, labels in enumerate(sorted(data)):
        ids[labels] = i + 1
        lab = {k: v for k, v in labels if k != "node"}
        peer.send(tp.SERIES_DEF, s=[[i + 1, lab]])
    last = 0
    for labels, pts in sorted(data.items()):
        for b in range(0, len(pts), 200):
            chunk = pts[b:b + 200]
            deltas = [0] + [(chunk[k][0] - chunk[k - 1][0]) * 1000 for k in range(1, len(chunk))]
            peer.send(tp.SAMPLES, s=[[ids[labels], chunk[0][0] * 1000, deltas,
                                      [v for _, v in chunk]]])
            last = peer.seq
    while True:
        m = peer.recv()
        assert m is not None, "connection closed before the ACK"
        if m["t"] == tp.ACK and m["ack"] >= last:
            break
    return peer


SEL = ['http_requests', 'mem_used', 'http_requests{code="500"}', 'mem_used{instance=~"a|c"}',
       'http_requests{instance!="b",code!~"5.."}', '{__name__=~"mem_.*",job="api"}',
       'req_duration_seconds_bucket{instance="a"}', 'short_lived', 'odd_values', 'nothing_here']
RANGE_FUNCS = ["rate", "irate", "increase", "delta", "idelta", "deriv", "resets", "changes",
               "avg_over_time", "min_over_time", "max_over_time", "sum_over_time",
               "count_over_time", "stddev_over_time", "stdvar_over_time", "last_over_time",
               "present_over_time", "absent_over_time"]
INSTANT_FUNCS = ["abs", "ceil", "floor", "round", "exp", "ln", "log2", "log10", "sqrt", "sgn",
                 "timestamp", "absent", "sort", "sort_desc"]
AGGS = ["sum", "avg", "min", "max", "count", "stddev", "stdvar", "group"]


def corpus():
    q = []
    q += SEL
    for f in RANGE_FUNCS:
        q.append("%s(http_requests[5m])" % f)
        q.append("%s(mem_used[2m])" % f)
    q += ["%s(odd_values[3m])" % f for f in ("rate", "avg_over_time", "max_over_time",
                                             "changes", "sum_over_time")]
    # the extrapolating functions' sliding window: windows of 1-2 points, a reset inside and
    # outside it, NaN/Inf in it, the gap, offsets both ways
    q += ["increase(http_requests[1m] offset 3m)", "delta(odd_values[2m])",
          "increase(odd_values[5m])", "rate(mem_used[45s])", "rate(http_requests[16s])",
          "sum by (code) (increase(http_requests[90s]))", "rate(short_lived[1m] offset -5m)",
          "delta(mem_used[30s] offset 1m)", "rate(req_duration_seconds_bucket[7m])"]
    q += ["%s(mem_used)" % f for f in INSTANT_FUNCS]
    q += ["%s(http_requests{code=\"500\"})" % f for f in ("round", "sqrt", "ln")]
    q += ["%s(odd_values)" % f for f in ("abs", "ceil", "sgn")]
    for a in AGGS:
        q.append("%s(mem_used)" % a)
        q.append("%s by (instance) (rate(http_requests[5m]))" % a)
        q.append("%s without (code) (http_requests)" % a)
    q += ["topk(2, mem_used)", "bottomk(1, rate(http_requests[5m]))",
          "topk by (code) (1, http_requests)", "quantile(0.9, mem_used)",
          "quantile by (code) (0.5, rate(http_requests[5m]))", 'count_values("v", ceil(mem_used / 10))',
          "sum(odd_values)", "max(odd_values)", "min(odd_values)", "avg(odd_values)"]
    q += ["1+1", "2*3-4/5", "2^3^2", "-2^2", "7 % 3", "1 > bool 2", "1 == bool 1", "time()",
          "vector(3)", "scalar(sum(mem_used))", "scalar(mem_used)", "pi_not_a_function()",
          "mem_used + 1", "2 * mem_used", "mem_used / 0", "-mem_used", "mem_used > 50",
          "mem_used > bool 50", "50 < mem_used", "mem_used == mem_used",
          "http_requests / ignoring(code) group_left sum without (code) (http_requests)",
          "sum by (instance) (http_requests) / on(instance) group_right sum by (instance, code) (http_requests)",
          "rate(http_requests[5m]) * on(instance) group_left mem_used",
          "http_requests{code=\"200\"} - on(instance, job) http_requests{code=\"500\"}",
          "http_requests{code=\"200\"} - ignoring(code) http_requests{code=\"500\"}",
          "mem_used and mem_used > 50", "mem_used or short_lived", "mem_used unless mem_used > 50",
          "mem_used and on(instance) http_requests{code=\"500\"} > 10",
          "http_requests + http_requests", "http_requests - ignoring(code) http_requests",
          "mem_used atan2 mem_used", "sum(http_requests) by (code) > bool 1000",
          "http_requests offset 5m", "rate(http_requests[5m] offset 10m)",
          "mem_used offset -2m", "mem_used offset 30m", "mem_used @ %(mid)d",
          "rate(http_requests[5m] @ %(mid)d)", "mem_used @ start()", "mem_used @ end()",
          "sum_over_time(mem_used[10m:1m])", "max_over_time(rate(http_requests[2m])[10m:30s])",
          "avg_over_time(sum(mem_used)[15m:])", "deriv(sum(mem_used)[10m:1m])",
          "predict_linear(mem_used[10m], 600)", "predict_linear(http_requests[5m], 3600)",
          "quantile_over_time(0.5, mem_used[5m])", "quantile_over_time(0.99, http_requests[10m])",
          "histogram_quantile(0.5, req_duration_seconds_bucket)",
          "histogram_quantile(0.9, rate(req_duration_seconds_bucket[5m]))",
          "histogram_quantile(0.99, sum by (le) (rate(req_duration_seconds_bucket[5m])))",
          "clamp(mem_used, 45, 55)", "clamp_min(mem_used, 50)", "clamp_max(mem_used, 50)",
          "clamp(mem_used, 60, 40)", "round(mem_used, 5)", "round(mem_used, 0.1)",
          'label_replace(label_src, "host", "$1", "src", "([^.]*)\\\\..*")',
          'label_replace(label_src, "host", "x-${1}-$2", "src", "(web)-(\\\\d+).*")',
          'label_replace(label_src, "src", "", "src", ".*")',
          'label_replace(label_src, "host", "$1", "src", "nomatch(.*)")',
          'label_join(label_src, "joined", "/", "src", "other", "job")',
          "absent(nothing_here)", 'absent(nothing_here{job="x",a=~"b"})', "absent(mem_used)",
          "absent_over_time(nothing_here[5m])", "absent_over_time(short_lived[5m])",
          "timestamp(mem_used)", "timestamp(sum(mem_used))",
          'http_requests{instance=~"(?i)A"}', 'http_requests{instance=~"a|b+?"}',
          'label_src{src=~"web-\\\\d+\\\\.example"}', 'label_src{src=~"web"}',
          'http_requests{code=~"2.*"}', 'mem_used{instance!~"a"}',
          "sum(rate(http_requests[5m])) by (code)", "sum without (instance) (rate(http_requests[1m]))",
          "count(count by (instance) (http_requests))", "stddev by (job) (mem_used)",
          "sum(http_requests) / count(http_requests)", "avg(mem_used) - min(mem_used)",
          "group by (job) (mem_used)", "max by (instance) (rate(http_requests[5m]))",
          "increase(http_requests[1h])", "rate(http_requests[30s])", "irate(http_requests[1m])",
          "rate(short_lived[5m])", "delta(mem_used[10m])", "resets(http_requests[1h])",
          "changes(mem_used[10m])", "last_over_time(short_lived[10m])",
          "sum(mem_used) by (instance) * 2 + 1", "(mem_used)", "((mem_used > 40) + 1)",
          "1 - mem_used / 100", "0 / 0", "1 / 0", "-1 / 0",
          # errors: both sides must reject these
          "rate(mem_used)", "sum(", "mem_used{", "mem_used[5m] + 1", "1 > 2",
          "http_requests + on(instance) http_requests", "mem_used{instance=~\"(\"}",
          "unknown_fn(mem_used)", "topk(mem_used, 1)", "label_replace(mem_used, \"1x\", \"\", \"a\", \"\")",
          "sum by (instance) (mem_used) + on() group_left sum(mem_used)",
          "{__name__=~\".*\"} + 1",
          ]
    return q


def get(base, path, params, timeout=60):
    url = base + path + "?" + urllib.parse.urlencode(params, doseq=True)
    return tt.http_get(url, timeout)


def canon(body):
    """{"status", "type", {labels tuple: [(t, v)]}} or the error type."""
    j = json.loads(body)
    if j["status"] != "success":
        return ("error", j.get("errorType"), None)
    d = j["data"]
    rt = d["resultType"]
    out = {}
    if rt in ("scalar", "string"):
        out[()] = [(float(d["result"][0]), d["result"][1])]
        return ("success", rt, out)
    for s in d["result"]:
        key = tuple(sorted(s["metric"].items()))
        pts = s["values"] if "values" in s else [s["value"]]
        out[key] = [(float(t), v) for t, v in pts]
    return ("success", rt, out)


def close(a, b):
    fa, fb = float(a), float(b)
    if math.isnan(fa) or math.isnan(fb):
        return math.isnan(fa) and math.isnan(fb)
    if math.isinf(fa) or math.isinf(fb):
        return fa == fb
    return abs(fa - fb) <= 1e-6 * max(1.0, abs(fa), abs(fb))


def compare(q, kind, tb, pb):
    t, p = canon(tb), canon(pb)
    if t[0] != p[0]:
        return "%s %s: tide %s, prometheus %s: %s | %s" % (kind, q, t[0], p[0], tb[:300], pb[:300])
    if t[0] == "error":
        return None
    if t[1] != p[1]:
        return "%s %s: result type tide %s, prometheus %s" % (kind, q, t[1], p[1])
    if set(t[2]) != set(p[2]):
        only_t = sorted(set(t[2]) - set(p[2]))[:3]
        only_p = sorted(set(p[2]) - set(t[2]))[:3]
        return "%s %s: series differ: only tide %s, only prometheus %s" % (kind, q, only_t, only_p)
    for key, pts in p[2].items():
        tp_ = t[2][key]
        if t[1] == "string":
            if tp_ != pts:
                return "%s %s: %s vs %s" % (kind, q, tp_, pts)
            continue
        if [x for x, _ in tp_] != [x for x, _ in pts]:
            miss = sorted(set(x for x, _ in pts) ^ set(x for x, _ in tp_))[:5]
            return "%s %s %s: steps differ (tide %d, prometheus %d), first %s" % (
                kind, q, dict(key), len(tp_), len(pts), miss)
        for (x, a), (_, b) in zip(tp_, pts):
            if not close(a, b):
                return "%s %s %s at %s: tide %s, prometheus %s" % (kind, q, dict(key), x, a, b)
    return None


def main():
    for tool in ("prometheus", "promtool"):
        if not shutil.which(tool):
            print("skipped: %s not installed" % tool)
            return 77
    with tt.Run(logs=("cp.log", "prom.log"), tail_chars=3000) as run:
        w = run.w
        now = int(time.time())
        t0 = now - now % 3600 - 4 * 3600  # whole hours, well inside the raw retention
        data = gen(t0)
        write_om(os.path.join(w, "data.om"), data)
        r = subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                            os.path.join(w, "data.om"), os.path.join(w, "prom")],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode == 0, r.stderr + r.stdout
        pp = tt.free_port()
        with open(os.path.join(w, "prom.yml"), "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        run.spawn(["prometheus", "--config.file=" + os.path.join(w, "prom.yml"),
                   "--storage.tsdb.path=" + os.path.join(w, "prom"),
                   "--storage.tsdb.retention.time=100y",
                   "--web.listen-address=127.0.0.1:%d" % pp], run.log("prom.log"))
        tok = run.token(TOKEN)
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        run.controlplane(tok, ap, hp, log=run.log("cp.log"))
        tp.wait_for(lambda: os.path.exists(sock) and tt.port_open(hp), 30, "control plane")
        tp.wait_for(lambda: tt.port_open(pp) and
                    tt.http_get("http://127.0.0.1:%d/-/ready" % pp, 2)[0] == 200, 60,
                    "prometheus ready")
        peer = load_tide(ap, data)
        tide, prom = "http://127.0.0.1:%d" % hp, "http://127.0.0.1:%d" % pp

        mid = t0 + N * STEP // 2
        queries = [q % {"mid": mid} if "%(" in q else q for q in corpus()]
        fails = []
        checked = nonempty = errors = 0
        # instant queries at sample times, between them, in the gap, after the end
        times = [t0 + 3600, t0 + 3607.5, t0 + 200 * STEP + 400, t0 + N * STEP + 120]
        for q in queries:
            for t in times:
                c1, b1 = get(tide, "/api/v1/query", {"query": q, "time": t})
                c2, b2 = get(prom, "/api/v1/query", {"query": q, "time": t})
                if (c1 == 200) != (c2 == 200):
                    fails.append("instant %s @%s: tide HTTP %d, prometheus HTTP %d: %s | %s" % (
                        q, t, c1, c2, b1[:200], b2[:200]))
                    continue
                err = compare(q, "instant@%s" % t, b1, b2)
                if err:
                    fails.append(err)
                checked += 1
                nonempty += c2 == 200 and len(json.loads(b2)["data"]["result"]) > 0
            params = {"query": q, "start": t0 + 600, "end": t0 + N * STEP + 600, "step": 60}
            c1, b1 = get(tide, "/api/v1/query_range", params)
            c2, b2 = get(prom, "/api/v1/query_range", params)
            if (c1 == 200) != (c2 == 200):
                fails.append("range %s: tide HTTP %d, prometheus HTTP %d: %s | %s" % (
                    q, c1, c2, b1[:200], b2[:200]))
                continue
            err = compare(q, "range", b1, b2)
            if err:
                fails.append(err)
            checked += 1
            nonempty += c2 == 200 and len(json.loads(b2)["data"]["result"]) > 0
            errors += c2 != 200
        print("%d queries, %d comparisons (%d with a non-empty result, %d queries Prometheus "
              "refuses), %d differ" % (len(queries), checked, nonempty, errors, len(fails)))
        for f in fails[:60]:
            print("DIFF", f)
        assert len(queries) >= 150, len(queries)
        assert not fails, "%d of %d comparisons differ" % (len(fails), checked)

        # real clients: promtool against Tide
        r = subprocess.run(["promtool", "query", "instant", "--time=%d" % (t0 + 3600), tide,
                            "sum(mem_used)"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "=>" in r.stdout, (r.returncode, r.stdout, r.stderr)
        r = subprocess.run(["promtool", "query", "range", "--start=%d" % (t0 + 600),
                            "--end=%d" % (t0 + 1200), "--step=1m", tide,
                            "rate(http_requests[5m])"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "@[" in r.stdout, (r.returncode, r.stdout, r.stderr)
        r = subprocess.run(["promtool", "query", "series", "--match=mem_used", tide],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.count("mem_used") == 3, (r.stdout, r.stderr)
        r = subprocess.run(["promtool", "query", "labels", tide, "instance"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and r.stdout.split() == ["a", "b", "c"], (r.stdout, r.stderr)
        print("promtool query instant/range/series/labels work against Tide")

        # Grafana: "Save & test", then the label browser
        c, b = get(tide, "/api/v1/query", {"query": "1+1", "time": now})
        j = json.loads(b)
        assert c == 200 and j["data"]["resultType"] == "scalar" and j["data"]["result"][1] == "2", b
        body = urllib.parse.urlencode({"query": "1+1", "time": now}).encode()
        req = urllib.request.Request(tide + "/api/v1/query", data=body, method="POST",
                                     headers={"Content-Type": "application/x-www-form-urlencoded"})
        with urllib.request.urlopen(req, timeout=30) as resp:
            j = json.loads(resp.read())
            assert j["data"]["result"][1] == "2", j
        c, b = get(tide, "/api/v1/status/buildinfo", {})
        assert c == 200 and json.loads(b)["data"]["version"], b
        c, b = get(tide, "/api/v1/labels", {"match[]": "mem_used", "start": t0, "end": now})
        assert c == 200 and json.loads(b)["data"] == ["__name__", "instance", "job", "node"], b
        c, b = get(tide, "/api/v1/labels", {"match[]": ["mem_used", "short_lived"]})
        assert json.loads(b)["data"] == ["__name__", "instance", "job", "node"], b
        c, b = get(tide, "/api/v1/label/__name__/values", {})
        names = json.loads(b)["data"]
        assert c == 200 and "mem_used" in names and "http_requests" in names, b
        c, b = get(tide, "/api/v1/label/instance/values", {"match[]": 'http_requests{code="500"}'})
        assert json.loads(b)["data"] == ["a", "b", "c"], b
        c, b = get(tide, "/api/v1/series", {"match[]": 'mem_used{instance="a"}'})
        assert c == 200 and json.loads(b)["data"] == [
            {"__name__": "mem_used", "instance": "a", "job": "api", "node": "n1"}], b
        # series older than the range are not listed
        c, b = get(tide, "/api/v1/series", {"match[]": "short_lived", "start": now - 60,
                                            "end": now})
        assert c == 200 and json.loads(b)["data"] == [], b
        c, b = get(tide, "/api/v1/series", {})
        assert c == 400 and json.loads(b)["errorType"] == "bad_data", b
        c, b = get(tide, "/api/v1/metadata", {})
        assert c == 200 and "mem_used" in json.loads(b)["data"], b
        for path in ("/-/healthy", "/-/ready"):
            c, b = get(tide, path, {})
            assert c == 200, (path, c, b)
        c, b = get(tide, "/api/v1/query", {"query": 'mem_used{instance=~"(?P<x"}'})
        j = json.loads(b)
        assert c == 400 and j["errorType"] == "bad_data" and "(?P<x" in j["error"], b
        c, b = get(tide, "/api/v1/nope", {})
        assert c == 404 and json.loads(b)["errorType"] == "not_found", b
        print("Grafana's Save & test and label-browser calls answered")
        peer.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
