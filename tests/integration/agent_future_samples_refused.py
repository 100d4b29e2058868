# agent_future_samples_refused.py (issue 18 item 9): a sample stamped now + 10 years used to
# lock its series out (every later normal sample was "out of order"). Samples beyond
# now + max_clock_skew are now refused and counted (`tidectl agents`: future_samples); the
# series keeps taking normal samples.
# timeout: 120
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402

TEN_YEARS_MS = 10 * 365 * 86400 * 1000


def main():
    with tt.Run() as run:
        cp = h.CP(run, "--max-clock-skew", "2m")
        p = cp.peer("skewed")
        p.send(tp.SERIES_DEF, s=[[1, {"__name__": "skewtest"}]])
        now = h.now_ms()
        # one run: a normal sample, then one 10 years ahead
        assert h.send_and_ack(p, now, [[1, now - 1000, [0, 1000 + TEN_YEARS_MS], [1.0, 9.0]]]) \
            == now
        # a minute ahead is within the skew; then normal samples go on
        assert h.send_and_ack(p, now + 1, [[1, now + 60000, [0], [2.0]]]) == now + 1
        assert h.send_and_ack(p, now + 2, [[1, now + 61000, [0], [3.0]]]) == now + 2
        r = cp.row("skewed")
        assert r["future_samples"] == 1 and r["samples"] == 3, r
        s = json.loads(cp.ctl("series", "--match", "skewtest"))["series"]
        assert len(s) == 1 and s[0]["points"]["raw"] == 3, s
        assert "beyond now + max_clock_skew" in cp.log_text()
        p.close()
        print("a sample 10 years ahead refused and counted; the series goes on")
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
