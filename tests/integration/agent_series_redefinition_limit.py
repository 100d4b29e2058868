# agent_series_redefinition_limit.py (issue 18 item 6): redefining series id 1 over and over
# with new label sets used to bypass the per-connection series limit (an existing id was
# overwritten without being counted, and the store series was created before the check):
# 1.1 M series from one connection. Every store series a node creates now counts against
# max_series_per_node, checked before it is created; the refusals are counted, the connection
# stays up, and the id's samples are not filed under an older label set.
# timeout: 120
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402

LIMIT = 50


def main():
    with tt.Run() as run:
        cp = h.CP(run, "--max-series-per-node", str(LIMIT))
        p = cp.peer("redefiner")
        for k in range(0, 400, 100):  # 400 definitions of id 1, 100 per frame
            p.send(tp.SERIES_DEF, s=[[1, {"__name__": "redef", "k": str(k + j)}]
                                     for j in range(100)])
        # the connection is alive: a batch for id 1 is acknowledged (and dropped: refused id)
        assert h.send_and_ack(p, 1, [[1, h.now_ms(), [0], [1.0]]]) == 1
        series = cp.metric("tide_tsdb_series")
        assert series == LIMIT, "store holds %s series, limit %d" % (series, LIMIT)
        r = cp.row("redefiner")
        assert r["series"] == LIMIT and r["series_refused"] == 400 - LIMIT, r
        assert r["samples"] == 0, r  # id 1 now names a refused set: nothing filed under k=49
        assert "max_series_per_node (%d) reached" % LIMIT in cp.log_text()
        # the same labels again are no new series: accepted within the limit
        p.send(tp.SERIES_DEF, s=[[2, {"__name__": "redef", "k": "0"}]])
        assert h.send_and_ack(p, 2, [[2, h.now_ms(), [0], [2.0]]]) == 2
        tp.wait_for(lambda: cp.row("redefiner")["samples"] == 1, 10, "sample of a known series")
        p.close()
        print("400 redefinitions of id 1: %d store series, %d refused and counted" %
              (LIMIT, 400 - LIMIT))
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
