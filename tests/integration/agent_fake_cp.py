# agent_fake_cp.py: tide-agent against a scripted control plane (a faithful fake speaking the
# wire protocol from tests/integration/tideproto.py): reconnect backoff grows exponentially
# within its jitter bounds; a control plane that cannot prove the token gets nothing;
# unacknowledged batches are resent with their original seq after a reconnect, acknowledged
# ones never; commands are answered, repeated ids get the stored result, unknown actions fail.
# timeout: 90
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
TOKEN = b"fake-cp-token-0123456789abcdef"


class FakeCP:
    def __init__(self):
        self.ls = socket.socket()
        self.ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.ls.bind(("127.0.0.1", 0))
        self.ls.listen(16)
        self.port = self.ls.getsockname()[1]

    def accept(self, timeout=10):
        self.ls.settimeout(timeout)
        s, _ = self.ls.accept()
        s.settimeout(10)
        p = tp.Peer.__new__(tp.Peer)
        p.sock, p.buf, p.seq = s, b"", 0
        return p

    def handshake(self, p, token=TOKEN, last_seq=0):
        nc = os.urandom(32)
        p.send(tp.HELLO, role="controlplane", version="fake", nonce=nc, heartbeat_ms=200)
        h = p.recv()
        assert h and h["t"] == tp.HELLO and h["role"] == "agent", h
        assert h["mac"] == tp.mac(TOKEN, "agent", nc, h["nonce"], h["node"]), "agent MAC"
        p.send(tp.HELLO_ACK, mac=tp.mac(token, "controlplane", h["nonce"], nc, h["node"]),
               last_seq=last_seq)
        return h


def main():
    w = tempfile.mkdtemp(prefix="tide-it.")
    agent = None
    ok = False
    try:
        tok = os.path.join(w, "token")
        with open(tok, "wb") as f:
            f.write(TOKEN)
        os.chmod(tok, 0o600)
        cp = FakeCP()
        log = open(os.path.join(w, "agent.log"), "w+")
        agent = subprocess.Popen([BIN + "/tide-agent", "--controlplane", "127.0.0.1:%d" % cp.port,
                                  "--node", "fake-node", "--token-file", tok, "--interval", "100ms",
                                  "--reconnect-min", "100ms", "--reconnect-max", "2s",
                                  "--log-level", "debug"], stdout=log, stderr=subprocess.STDOUT)

        # 1. backoff: refuse five attempts, measure the gaps between them
        times = []
        for _ in range(5):
            p = cp.accept()
            times.append(time.monotonic())
            p.close()
        gaps = [b - a for a, b in zip(times, times[1:])]
        for i, g in enumerate(gaps):
            d = 0.1 * 2 ** i  # the delay drawn is within [d/2, d]; a loaded machine adds some
            assert d / 2 - 0.03 <= g <= d + 0.6, "gap %d = %.3f s, expected [%.2f, %.2f]" % (
                i, g, d / 2, d)
        # with draws in [d/2, d] the later pair is at least 2x the earlier one (600 vs 300 ms at
        # worst); 1.5x leaves room for a loaded machine while still proving growth
        assert gaps[2] + gaps[3] > 1.5 * (gaps[0] + gaps[1]), "backoff does not grow: %s" % gaps
        print("ok backoff", ["%.3f" % g for g in gaps])

        # 2. a control plane that cannot prove the token gets nothing after HELLO_ACK
        p = cp.accept()
        cp.handshake(p, token=b"wrong-token-wrong-token-wrong")
        assert p.wait_closed(5), "agent kept talking to an unproven control plane"
        p.close()
        tp.wait_for(lambda: "failed to prove the token" in open(log.name).read(), 5,
                    "the agent's log line about the unproven control plane")
        print("ok control plane must prove the token")

        # 3. batches: collect some without acknowledging, drop the connection
        p = cp.accept()
        cp.handshake(p)
        seen, defs = [], {}
        while len(seen) < 4:
            m = p.recv()
            if m["t"] == tp.SERIES_DEF:
                for sid, labels in m["s"]:
                    defs[sid] = labels
            elif m["t"] == tp.SAMPLES:
                for run in m["s"]:
                    assert run[0] in defs, "samples for an undefined series"
                seen.append(m["seq"])
        assert seen == sorted(seen) and len(set(seen)) == len(seen), seen
        assert any(l["__name__"] == "tide_agent_cpu_seconds_total" for l in defs.values()), defs
        p.close()
        # after a reconnect with last_seq 0 the same batches come first, same seqs
        p = cp.accept()
        cp.handshake(p, last_seq=0)
        again, defs2 = [], {}
        while len(again) < len(seen):
            m = p.recv()
            if m["t"] == tp.SERIES_DEF:
                defs2.update({sid: l for sid, l in m["s"]})
            elif m["t"] == tp.SAMPLES:
                again.append(m["seq"])
        assert again == seen, (again, seen)
        assert defs2 == defs, "series not defined again on the new connection"
        print("ok unacknowledged batches resent with their seq")
        # acknowledge up to the third, reconnect: nothing <= ack may come again
        p.send(tp.ACK, ack=seen[2])
        time.sleep(0.3)  # let some new batches pile up before the next connection
        p.close()
        p = cp.accept()
        cp.handshake(p, last_seq=seen[2])
        first = None
        while first is None:
            m = p.recv()
            if m["t"] == tp.SAMPLES:
                first = m["seq"]
        assert first == seen[3], (first, seen)
        print("ok acknowledged batches never resent")

        # 4. commands: ping, repeated id, unknown action
        def result(cid):
            while True:
                m = p.recv()
                if m["t"] == tp.COMMAND_RESULT and m["id"] == cid:
                    return m
        p.send(tp.COMMAND, id="cmd-1", action="ping", args={})
        r1 = result("cmd-1")
        assert r1["ok"] is True and r1["result"]["agent_version"].startswith("tide-agent"), r1
        p.send(tp.COMMAND, id="cmd-1", action="ping", args={})
        r2 = result("cmd-1")
        assert r2["result"] == r1["result"], "a repeated id must get the stored result"
        p.send(tp.COMMAND, id="cmd-2", action="nope", args={"x": 1})
        r3 = result("cmd-2")
        assert r3["ok"] is False and r3["error"] == "unknown action 'nope'", r3
        print("ok commands")

        # 5. heartbeats come at the requested 200 ms
        hb = []
        while len(hb) < 3:
            m = p.recv()
            if m["t"] == tp.HEARTBEAT:
                hb.append(time.monotonic())
                assert "spool_drops" in m and "queued" in m
        print("ok heartbeats")

        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        log.flush()
        assert "stopped cleanly" in open(log.name).read()
        ok = True
    finally:
        if agent and agent.poll() is None:
            agent.kill()
            agent.wait()
        if not ok:
            path = os.path.join(w, "agent.log")
            if os.path.exists(path):
                print("".join(open(path).readlines()[-40:]))
        shutil.rmtree(w, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
