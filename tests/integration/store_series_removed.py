# store_series_removed.py: series with nothing left inside retention are removed by a live
# control plane (pod churn must not grow memory without bound): 200 series whose samples are
# older than every retention go from the store, /metrics, the series listing and the node's
# series count, while a series with fresh samples stays; a removed series that gets samples
# again works (the agent's connection is closed so that it defines it again); the removal
# survives a restart.
# timeout: 60
import json
import os
import signal
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"series-removed-token-0123456789"
N = 200
RETENTION = ("--retention-raw", "1m", "--retention-1m", "1m", "--retention-10m", "10m")


def main():
    with tt.Run() as run:
        tok = run.token(TOKEN)
        port, http, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")
        cp = run.controlplane(tok, port, http, *RETENTION, log=cplog)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")

        def metric(name):
            st, body = tt.http_get("http://127.0.0.1:%d/metrics" % http)
            for ln in body.splitlines():
                if ln.startswith(name + " "):
                    return float(ln.split()[1])
            return None

        def series(match):
            q = urllib.parse.urlencode({"match[]": match})
            st, body = tt.http_get("http://127.0.0.1:%d/api/v1/series?%s" % (http, q))
            assert st == 200, body
            return json.loads(body)["data"]

        def node_series(node):
            r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json", "agents"],
                               capture_output=True, text=True, timeout=10)
            for row in json.loads(r.stdout):
                if row["node"] == node:
                    return row["series"]
            return None

        def connect():
            p = tp.Peer(port)
            assert p.handshake(TOKEN, "churn") is not None
            return p

        def send(p, runs):
            """SAMPLES with seq = now in ms; True when ACKed, False when the peer closed."""
            seq = int(time.time() * 1000)
            p.send(tp.SAMPLES, seq=seq, s=runs)
            while True:
                m = p.recv()
                if m is None:
                    return False
                if m["t"] == tp.ACK and m["ack"] >= seq:
                    return True

        now = int(time.time() * 1000)
        old = now - 2 * 3600 * 1000  # older than every retention
        p = connect()
        p.send(tp.SERIES_DEF, s=[[i + 1, {"__name__": "churn_cpu", "pod": "pod-%d" % i}]
                                 for i in range(N)] +
               [[1000, {"__name__": "steady_cpu", "pod": "steady"}]])
        assert send(p, [[i + 1, old, [0, 10000, 10000], [1.0, 2.0, 3.0]] for i in range(N)] +
                    [[1000, now, [0], [5.0]]])
        # the sweep runs every second: all 200 go, the steady one stays
        tp.wait_for(lambda: metric("tide_tsdb_series_removed_total") == N, 20, "the removal")
        assert metric("tide_tsdb_series") == 1, metric("tide_tsdb_series")
        assert series("churn_cpu") == [], series("churn_cpu")
        assert [s["pod"] for s in series('{__name__=~".+"}')] == ["steady"]
        assert node_series("churn") == 1, node_series("churn")
        print("ok %d series removed, the live one kept" % N)

        # pod-7 comes back: the connection that still names it is closed, the peer defines
        # it again and its samples are stored (nothing acknowledged is lost: the batch was not)
        fresh = int(time.time() * 1000)
        assert send(p, [[8, fresh, [0], [7.0]]]) is False, "the stale id must not be ACKed"
        tp.wait_for(lambda: "series 8 was removed" in open(cplog.name).read(), 10, "the reason")
        p.close()
        p = connect()
        p.send(tp.SERIES_DEF, s=[[8, {"__name__": "churn_cpu", "pod": "pod-7"}],
                                 [1000, {"__name__": "steady_cpu", "pod": "steady"}]])
        assert send(p, [[8, fresh, [0], [7.0]], [1000, fresh, [0], [6.0]]])
        got = series("churn_cpu")
        assert got == [{"__name__": "churn_cpu", "pod": "pod-7", "node": "churn"}], got
        st, body = tt.http_get("http://127.0.0.1:%d/api/v1/query?query=churn_cpu&time=%f" %
                               (http, fresh / 1000.0))
        res = json.loads(body)["data"]["result"]
        assert len(res) == 1 and float(res[0]["value"][1]) == 7.0, body
        assert metric("tide_tsdb_series") == 2 and node_series("churn") == 2
        p.close()
        print("ok a removed series comes back")

        # a restart keeps them removed (REMOVE records in the WAL, then a snapshot)
        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0
        cp = run.controlplane(tok, port, http, *RETENTION, log=cplog)
        tp.wait_for(lambda: tt.port_open(http) and metric("tide_tsdb_series") is not None, 20,
                    "restart")
        assert metric("tide_tsdb_series") == 2, metric("tide_tsdb_series")
        assert [s["pod"] for s in series("churn_cpu")] == ["pod-7"]
        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0
        print("ok removal survives a restart")
    print("store_series_removed: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
