# agent_seq_max_refused.py (issue 18 item 8): a SAMPLES batch numbered 2^64-1 used to stop the
# node's ingest for good (every later batch was a "duplicate", even after a restart), and
# `tidectl agents --json` printed the number as 1.8446744073709552e+19. Agents number batches
# from the wall clock in ms, so a seq beyond now + max_clock_skew is now a protocol error; the
# node's next honest batches are stored; seqs print exactly.
# timeout: 120
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402


def main():
    with tt.Run() as run:
        cp = h.CP(run)
        bad = cp.peer("victim")
        bad.send(tp.SERIES_DEF, s=[[1, {"__name__": "seqtest"}]])
        bad.send(tp.SAMPLES, seq=2**64 - 1, s=[[1, h.now_ms(), [0], [1.0]]])
        assert bad.wait_closed(10), "a batch numbered 2^64-1 was accepted"
        assert "batch seq 18446744073709551615 is beyond the clock" in cp.log_text()
        # the real agent, numbering from the clock as tide-agent does
        good = cp.peer("victim")
        good.send(tp.SERIES_DEF, s=[[1, {"__name__": "seqtest"}]])
        seq = h.now_ms()
        assert h.send_and_ack(good, seq, [[1, h.now_ms(), [0], [2.0]]]) == seq
        r = cp.row("victim")
        assert r["samples"] == 1 and r["protocol_errors"] == 1, r
        raw = cp.ctl("agents")
        assert ('"last_seq":\t%d' % seq) in raw or ('"last_seq": %d' % seq) in raw, raw
        good.close()
        # and after a restart the node goes on
        cp.stop()
        cp = h.CP(run)
        good = cp.peer("victim")
        good.send(tp.SERIES_DEF, s=[[1, {"__name__": "seqtest"}]])
        assert h.send_and_ack(good, seq + 1, [[1, h.now_ms() + 1, [0], [3.0]]]) == seq + 1
        assert cp.row("victim")["samples"] == 1
        good.close()
        print("seq 2^64-1 refused; honest batches %d, %d stored" % (seq, seq + 1))
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
