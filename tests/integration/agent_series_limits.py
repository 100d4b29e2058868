# agent_series_limits.py (issue 18 item 7): there was no global or per-node series limit (805 k
# series -> 920 MB RSS). Now max_series bounds the store and max_series_per_node each node;
# definitions beyond are refused with a log line naming the limit, counted per node (`tidectl
# agents`: series, series_refused) and in /metrics (tide_tsdb_series_refused_total), without
# closing the connection; the counts per node survive a restart (read back from the store).
# timeout: 120
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402


def define(p, prefix, n):
    p.send(tp.SERIES_DEF, s=[[i + 1, {"__name__": "lim", "i": "%s%d" % (prefix, i)}]
                             for i in range(n)])


def main():
    with tt.Run() as run:
        args = ("--max-series", "80", "--max-series-per-node", "50")
        cp = h.CP(run, *args)
        a, b = cp.peer("node-a"), cp.peer("node-b")
        define(a, "a", 60)
        assert h.send_and_ack(a, 1, [[1, h.now_ms(), [0], [1.0]]]) == 1
        define(b, "b", 60)
        assert h.send_and_ack(b, 1, [[1, h.now_ms(), [0], [1.0]]]) == 1
        ra, rb = cp.row("node-a"), cp.row("node-b")
        assert ra["series"] == 50 and ra["series_refused"] == 10, ra
        assert rb["series"] == 30 and rb["series_refused"] == 30, rb
        assert cp.metric("tide_tsdb_series") == 80
        assert cp.metric("tide_tsdb_series_refused_total") == 30  # node-b's, by max_series
        log = cp.log_text()
        assert "max_series_per_node (50) reached" in log and "max_series (80) reached" in log
        a.close()
        b.close()
        cp.stop()
        # after a restart the per-node counts come from the store: node-a is still full
        cp = h.CP(run, *args)
        a = cp.peer("node-a")
        define(a, "a-new", 1)
        assert h.send_and_ack(a, 2, [[1, h.now_ms(), [0], [1.0]]]) == 2
        ra = cp.row("node-a")
        assert ra["series"] == 50 and ra["series_refused"] == 1, ra
        a.close()
        print("limits held: node-a 50 (+10 refused), node-b 30 (+30 refused by max_series), store 80")
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
