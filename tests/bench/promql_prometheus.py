# promql_prometheus.py: Tide's query engine against a real Prometheus on the same data, in the
# same run (issue 17's benchmark; tests/bench/promql_prometheus.sh runs it for `make bench`).
#
# bench_tsdb (BENCH_TSDB_EXPORT) writes 1,000 series x 8 days of one-sample-a-minute data twice:
# OpenMetrics, backfilled into Prometheus with promtool, and a Tide store directory that
# tide-controlplane opens with --data-dir. Both servers run on loopback; each query runs over the
# last 7 days at step 1 m (10,081 steps) and 10 m, warm (once before timing), then RUNS times,
# alternating between the servers. Per query: the median wall time of the HTTP request and the
# median CPU time the server process spent on it (utime + stime from /proc, all threads: what
# the query cost whatever else the shared machine runs), and Tide / Prometheus for both. The
# answers must agree (same series, values equal to 1e-9 relative); exit 1 when they do not, when
# a server fails, or when Tide's CPU for the rate query at step 1 m is not below Prometheus's
# (issue 17's absolute goal, < 300 ms, is the engine's CPU in-process: bench_tsdb's figure).
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
BUILD = os.environ.get("TIDE_BUILD", os.path.abspath("build"))
SRC = os.environ.get("TIDE_SRC", os.path.abspath("."))
RUNS = int(os.environ.get("RUNS", "7"))
TICK = os.sysconf("SC_CLK_TCK")

QUERIES = [
    ("rate", "sum by (grp) (rate(http_requests[5m]))"),
    ("sum", "sum(http_requests)"),
    ("sum_by_app_111", 'sum by (app) (http_requests{app=~"s1.*"})'),
    ("one_series", 'http_requests{app="s7"}'),
    ("max_over_time", "max by (grp) (max_over_time(http_requests[1h]))"),
]
RATE_GOAL_MS = 300


def free_port():
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def cpu_s(pid):
    with open("/proc/%d/stat" % pid) as f:
        f = f.read().rsplit(")", 1)[1].split()
    return (int(f[11]) + int(f[12])) / TICK


def get(url, timeout=300):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.status, r.read()


def wait_ready(url, proc, what, limit=600):
    end = time.time() + limit
    while time.time() < end:
        if proc.poll() is not None:
            raise SystemExit("%s exited (%s) before it was ready" % (what, proc.returncode))
        try:
            if get(url, timeout=5)[0] == 200:
                return
        except OSError:
            pass
        time.sleep(0.1)
    raise SystemExit("%s not ready within %d s" % (what, limit))


def query(base, q, start, end, step):
    url = base + "/api/v1/query_range?" + urllib.parse.urlencode(
        {"query": q, "start": start, "end": end, "step": step})
    t0 = time.monotonic()
    st, body = get(url)
    return time.monotonic() - t0, json.loads(body)


def same(a, b):
    """None when the two answers agree, else what differs."""
    if a.get("status") != "success" or b.get("status") != "success":
        return "status %s / %s" % (a.get("status"), b.get("status"))
    ra = {json.dumps(s["metric"], sort_keys=True): s["values"] for s in a["data"]["result"]}
    rb = {json.dumps(s["metric"], sort_keys=True): s["values"] for s in b["data"]["result"]}
    if ra.keys() != rb.keys():
        return "series %s vs %s" % (sorted(ra)[:3], sorted(rb)[:3])
    for k in ra:
        va, vb = ra[k], rb[k]
        if [p[0] for p in va] != [p[0] for p in vb]:
            return "%s: steps differ (%d vs %d points)" % (k, len(va), len(vb))
        for (t, x), (_, y) in zip(va, vb):
            x, y = float(x), float(y)
            if x != y and abs(x - y) > 1e-9 * max(abs(x), abs(y)):
                return "%s at %s: %r vs %r" % (k, t, x, y)
    return None


def main():
    w = tempfile.mkdtemp(prefix="tide-bench-promql.")
    procs = []
    rc = 0
    try:
        t0 = time.monotonic()
        out = subprocess.run([BUILD + "/bench/bench_tsdb"], env=dict(os.environ, TIDE_SRC=SRC,
                             BENCH_TSDB_EXPORT=w), check=True, capture_output=True, text=True)
        start, end = [int(x) for x in out.stdout.split("window ")[1].split()[:2]]
        print("data: 1000 series x 11520 one-minute samples written in %.1f s"
              % (time.monotonic() - t0))
        t0 = time.monotonic()
        subprocess.run(["promtool", "tsdb", "create-blocks-from", "openmetrics", "-q",
                        "--max-block-duration=168h", w + "/data.om", w + "/prom"], check=True,
                       stdout=subprocess.DEVNULL)
        os.unlink(w + "/data.om")
        print("promtool backfill: %.1f s" % (time.monotonic() - t0))
        pp, hp, lp = free_port(), free_port(), free_port()
        with open(w + "/prom.yml", "w") as f:
            f.write("global: {scrape_interval: 1h}\n")
        plog = open(w + "/prom.log", "w")
        prom = subprocess.Popen(
            ["prometheus", "--config.file=" + w + "/prom.yml", "--storage.tsdb.path=" + w + "/prom",
             "--storage.tsdb.retention.time=100y", "--web.listen-address=127.0.0.1:%d" % pp],
            stdout=plog, stderr=subprocess.STDOUT)
        procs.append(prom)
        with open(w + "/token", "wb") as f:
            f.write(b"promql-bench-token-0123456789abcdef\n")
        os.chmod(w + "/token", 0o600)
        clog = open(w + "/cp.log", "w")
        t0 = time.monotonic()
        cp = subprocess.Popen(
            [BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % lp, "--socket",
             w + "/cp.sock", "--token-file", w + "/token", "--data-dir", w + "/data", "--http",
             "127.0.0.1:%d" % hp], stdout=clog, stderr=subprocess.STDOUT)
        procs.append(cp)
        pbase, tbase = "http://127.0.0.1:%d" % pp, "http://127.0.0.1:%d" % hp
        wait_ready(tbase + "/-/ready", cp, "tide-controlplane")
        print("tide-controlplane ready (store replayed) in %.1f s" % (time.monotonic() - t0))
        wait_ready(pbase + "/-/ready", prom, "prometheus")
        ver = json.loads(get(pbase + "/api/v1/status/buildinfo")[1])["data"]["version"]
        print("Prometheus %s; window %d..%d (7 days); %d timed runs per query and server; "
              "load average %.1f" % (ver, start, end, RUNS, os.getloadavg()[0]))
        print("%-16s %-5s %12s %12s %7s %12s %12s %7s" % (
            "query", "step", "tide wall", "prom wall", "ratio", "tide CPU", "prom CPU", "ratio"))
        for step in (60, 600):
            for name, q in QUERIES:
                _, a = query(tbase, q, start, end, step)  # warm, and the answers compared
                _, b = query(pbase, q, start, end, step)
                diff = same(a, b)
                if diff:
                    print("%s step %d: answers differ: %s" % (name, step, diff))
                    rc = 1
                tw, pw, tc, pc = [], [], [], []
                for _ in range(RUNS):
                    for base, proc, wl, cl in ((tbase, cp, tw, tc), (pbase, prom, pw, pc)):
                        c0 = cpu_s(proc.pid)
                        wl.append(query(base, q, start, end, step)[0])
                        cl.append(cpu_s(proc.pid) - c0)
                m = [statistics.median(x) * 1000 for x in (tw, pw, tc, pc)]
                print("%-16s %-5s %9.1f ms %9.1f ms %6.2fx %9.1f ms %9.1f ms %6.2fx" % (
                    name, "%dm" % (step // 60), m[0], m[1], m[0] / m[1], m[2], m[3],
                    m[2] / m[3] if m[3] else float("nan")))
                if name == "rate" and step == 60:
                    rate_ratio = m[2] / m[3] if m[3] else float("inf")
                    print("  (issue 17's query; its goal, < %d ms, is the engine's CPU in "
                          "bench_tsdb: here the server's CPU through HTTP, JSON included)"
                          % RATE_GOAL_MS)
                    if not rate_ratio < 1:
                        print("rate at step 1m: Tide's CPU %.2fx Prometheus's: goal < 1x missed"
                              % rate_ratio)
                        rc = 1
        print("CPU figures are in clock ticks of %d ms (median of %d)" % (1000 // TICK, RUNS))
    finally:
        for p in procs:
            if p.poll() is None:
                p.terminate()
                try:
                    p.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        if rc:
            for name in ("cp.log", "prom.log"):
                if os.path.exists(os.path.join(w, name)):
                    print("== " + name)
                    print(open(os.path.join(w, name)).read()[-3000:])
        shutil.rmtree(w, ignore_errors=True)
    return rc


if __name__ == "__main__":
    sys.exit(main())
