# query_limits.py: issue 18's unbounded queries. tide-controlplane with a small sample budget,
# one evaluation slot and a queue of one, 2,000 series with 1,000-byte label values:
# - a query holding more samples than query_max_samples is refused 422 (errorType execution);
# - a query running past its timeout= (or query_timeout) is stopped: 503, errorType timeout;
# - with the slot taken, one query waits in the queue and the next is refused 503 at once;
# - a client that goes away stops its query (tide_query_cancelled_total, the queued query runs);
# - SIGTERM during a running query: the process exits promptly and cleanly.
# Slow queries are made with a heavy (valid, linear-time) regex over long label values.
# timeout: 240
import os
import signal
import socket
import sys
import threading
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402

TOKEN = b"query-limits-token-0123456789abcdef"
SLOW = 'count(m{inst=~"(.{0,10}){0,100}(.*)*y"})'


def metric(base, name):
    code, body = tt.http_get(base + "/metrics", 10)
    for line in body.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    return None


def main():
    with tt.Run(logs=("cp.log",)) as run:
        tok = run.token(TOKEN)
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cp = run.controlplane(tok, ap, hp, "--query-max-samples", "2000000",
                              "--query-max-concurrency", "1", "--query-max-queue", "1",
                              log=run.log("cp.log"))
        tp.wait_for(lambda: os.path.exists(sock) and tt.port_open(hp), 30, "control plane")
        base = "http://127.0.0.1:%d" % hp
        peer = tp.Peer(ap)
        assert peer.handshake(TOKEN, "n1") is not None
        t0 = 1_800_000_000_000
        for i in range(2000):
            inst = ("%04d" % i) + "x" * 996
            peer.send(tp.SERIES_DEF, s=[[i + 1, {"__name__": "m", "inst": inst}]])
        for i in range(2000):
            peer.send(tp.SAMPLES, s=[[i + 1, t0, [0] + [15000] * 239, [float(k) for k in range(240)]]])
        last = peer.seq
        while True:
            msg = peer.recv()
            assert msg is not None
            if msg["t"] == tp.ACK and msg["ack"] >= last:
                break
        ts = t0 // 1000

        def q(query, extra=None, path="/api/v1/query", timeout=120):
            p = {"query": query, "time": ts + 3000}
            p.update(extra or {})
            return tt.http_get(base + path + "?" + urllib.parse.urlencode(p), timeout)

        # budget: 2,000 series x 3,601 steps
        code, body = q("m", {"start": ts, "end": ts + 3600, "step": 1}, "/api/v1/query_range")
        assert code == 422 and '"errorType":"execution"' in body and "too many samples" in body, \
            (code, body[:300])
        code, body = q("sum(m)")
        assert code == 200 and '"2000"' not in body, (code, body[:200])
        print("budget: 422 over query_max_samples, small queries answered")

        # timeout
        code, body = q(SLOW, {"timeout": "1s"})
        assert code == 503 and '"errorType":"timeout"' in body, (code, body[:300])
        assert metric(base, "tide_query_timeouts_total") >= 1
        print("timeout: 503 errorType timeout")

        # one slot, one queued, the next refused; a client going away stops its query
        raw = socket.create_connection(("127.0.0.1", hp), timeout=30)
        raw.sendall(("GET /api/v1/query?%s HTTP/1.1\r\nHost: x\r\n\r\n" % urllib.parse.urlencode(
            {"query": SLOW, "time": ts + 3000})).encode())
        tp.wait_for(lambda: metric(base, "tide_queries_running") == 1, 30, "the slow query runs")
        res = {}

        def queued():
            res["b"] = q("sum(m)")

        th = threading.Thread(target=queued)
        th.start()
        tp.wait_for(lambda: metric(base, "tide_queries_queued") == 1, 30, "a query queued")
        code, body = q("sum(m)")
        assert code == 503 and "too many queries" in body, (code, body[:300])
        assert metric(base, "tide_query_rejected_total") == 1
        raw.close()  # the slow query's client goes away
        th.join(60)
        assert not th.is_alive() and res["b"][0] == 200, res
        tp.wait_for(lambda: metric(base, "tide_query_cancelled_total") == 1, 60,
                    "the abandoned query stopped")
        assert metric(base, "tide_queries_running") == 0
        print("concurrency: queued query ran after the abandoned one stopped; third refused 503")

        # shutdown during a running query
        raw = socket.create_connection(("127.0.0.1", hp), timeout=30)
        raw.sendall(("GET /api/v1/query?%s HTTP/1.1\r\nHost: x\r\n\r\n" % urllib.parse.urlencode(
            {"query": SLOW, "time": ts + 3000})).encode())
        tp.wait_for(lambda: metric(base, "tide_queries_running") == 1, 30, "the slow query runs")
        peer.close()
        cp.send_signal(signal.SIGTERM)
        rc = cp.wait(timeout=20)
        assert rc == 0, rc
        raw.close()
        print("SIGTERM during a query: clean exit")
    return 0


if __name__ == "__main__":
    sys.exit(main())
