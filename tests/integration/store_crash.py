# store_crash.py: kill -9 the control plane at random moments while an agent streams, five times
# in a loop. The agent is a wire-protocol peer (tideproto) that keeps every unacknowledged batch
# and resends it after reconnecting, as tide-agent does, so the test knows exactly what was
# acknowledged. After every restart HELLO_ACK's last_seq covers every acknowledged batch; at the
# end every sample is in the store exactly once (raw point counts) with its value (query_range
# at a 1 s step over the whole run).
# timeout: 240
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"store-crash-token-0123456789abcdef"
NSERIES = 3
PER_BATCH = 10          # samples per series per batch, 1 s apart
NBATCHES = 2500
T0 = 1700000000000      # ms


def value(series, i):
    return series * 1000000 + i + 0.5


class Agent(threading.Thread):
    """Streams NBATCHES batches, reconnecting forever, until every one is acknowledged."""

    def __init__(self, port):
        super().__init__(daemon=True)
        self.port = port
        self.lock = threading.Lock()
        self.acked = 0          # highest acknowledged seq
        self.created = 0        # highest batch made so far (resends keep their seq)
        self.pace = 0.0
        self.hello_last = []    # last_seq of every HELLO_ACK
        self.errors = []
        self.stop = False

    def batch(self, seq):
        runs = []
        for s in range(NSERIES):
            first = (seq - 1) * PER_BATCH
            runs.append([s + 1, T0 + first * 1000, [0] + [1000] * (PER_BATCH - 1),
                         [value(s, first + k) for k in range(PER_BATCH)]])
        return runs

    def session(self):
        peer = tp.Peer(self.port, timeout=5)
        ack = peer.handshake(TOKEN, "crash-node")
        if ack is None:
            peer.close()
            return
        last = ack["last_seq"]
        with self.lock:
            self.hello_last.append((last, self.acked))
            if last < self.acked:
                self.errors.append("HELLO_ACK last_seq %d < acknowledged %d" % (last, self.acked))
            self.acked = max(self.acked, last)
        peer.send(tp.SERIES_DEF, s=[[s + 1, {"__name__": "crash_test", "s": str(s)}]
                                    for s in range(NSERIES)])
        sent = self.acked
        peer.sock.settimeout(0.02)
        while not self.stop:
            # keep up to 20 batches in flight, resending from the oldest unacknowledged;
            # new batches at about 200/s so that every kill lands mid-stream
            while sent < min(self.acked + 20, NBATCHES) and (
                    sent < self.created or time.time() >= self.pace):
                sent += 1
                if sent > self.created:
                    self.created = sent
                    self.pace = time.time() + 0.005
                peer.send(tp.SAMPLES, seq=sent, s=self.batch(sent))
            try:
                m = peer.recv()
            except socket.timeout:
                if self.acked >= NBATCHES:
                    break
                continue
            if m is None:
                break
            if m["t"] == tp.ACK:
                with self.lock:
                    if m["ack"] > sent:
                        self.errors.append("ACK %d beyond what was sent (%d)" % (m["ack"], sent))
                    self.acked = max(self.acked, m["ack"])
            if self.acked >= NBATCHES:
                break
        peer.close()

    def run(self):
        while not self.stop and self.acked < NBATCHES:
            try:
                self.session()
            except (OSError, AssertionError):
                time.sleep(0.05)


def main():
    with tt.Run() as run:
        tok = run.token(TOKEN)
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")

        def start():
            return run.controlplane(tok, ap, hp, *tt.LONG_RETENTION, "--snapshot-interval", "1s", log=cplog)

        cp = start()
        agent = Agent(ap)
        agent.start()
        rnd = random.Random(int(os.environ.get("TIDE_SEED", "0")) or None)
        mid_stream = 0
        for round_ in range(5):
            # let it stream, then kill at a random moment
            tp.wait_for(lambda: agent.acked > 0 or agent.errors, 30, "first ACKs")
            before = agent.acked
            time.sleep(rnd.uniform(0.2, 1.0))
            cp.kill()
            cp.wait()
            with agent.lock:
                acked = agent.acked
            print("round %d: killed with %d batches acknowledged (%d this round)" %
                  (round_, acked, acked - before))
            mid_stream += 0 < acked < NBATCHES
            cp = start()
            tp.wait_for(lambda: len(agent.hello_last) > round_ + 1 or agent.errors or
                        agent.acked >= NBATCHES, 30, "agent reconnect")
            assert not agent.errors, agent.errors
        assert mid_stream >= 4, "only %d kills landed while the agent streamed" % mid_stream
        tp.wait_for(lambda: agent.acked >= NBATCHES or agent.errors, 120, "all batches acknowledged")
        agent.stop = True
        agent.join(10)
        assert not agent.errors, agent.errors
        total = NBATCHES * PER_BATCH

        # exactly once: the raw tier holds one point per sample
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json", "series", "--match",
                            "crash_test"], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        series = json.loads(r.stdout)["series"]
        assert len(series) == NSERIES, r.stdout
        for s in series:
            assert s["points"]["raw"] == total, "series %s: %d raw points, sent %d" % (
                s["labels"], s["points"]["raw"], total)

        # every value, at its own second
        for s in range(NSERIES):
            i = 0
            while i < total:
                n = min(10000, total - i)
                qs = urllib.parse.urlencode({"query": 'crash_test{s="%d"}' % s,
                                             "start": (T0 + i * 1000) / 1000,
                                             "end": (T0 + (i + n - 1) * 1000) / 1000, "step": 1})
                with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query_range?%s" %
                                            (hp, qs), timeout=30) as resp:
                    res = json.loads(resp.read())["data"]["result"]
                assert len(res) == 1, res
                vals = res[0]["values"]
                assert len(vals) == n, "series %d: %d steps from %d" % (s, len(vals), i)
                for k, (t, v) in enumerate(vals):
                    if float(v) != value(s, i + k):
                        raise AssertionError("series %d sample %d: got %s want %s" %
                                             (s, i + k, v, value(s, i + k)))
                i += n
        print("all %d samples of %d series present exactly once after 5 kill -9" %
              (total, NSERIES))
        cp.terminate()
        assert cp.wait(timeout=30) == 0
        return 0


if __name__ == "__main__":
    sys.exit(main())
