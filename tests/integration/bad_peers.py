# bad_peers.py: misbehaving peers against a live control plane: a malformed frame, an oversize
# length, an unknown version, an unknown type, a wrong token, and half a frame then a stall
# (before and after the handshake). Each must close only that connection, with the reason
# logged and counted, while an honest tide-agent keeps reporting and tidectl keeps answering.
# timeout: 120
import json
import os
import signal
import struct
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"bad-peers-token-0123456789abcdef"


def main():
    with tt.Run(logs=("cp.log", "agent.log")) as run:
        tok = run.token(TOKEN)
        port, sock = tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")
        cp = run.controlplane(tok, port, tt.free_port(), "--handshake-timeout", "1s",
                              "--idle-timeout", "2s", log=cplog)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        run.spawn([BIN + "/tide-agent", "--controlplane", "127.0.0.1:%d" % port,
                   "--node", "good", "--token-file", tok, "--interval", "200ms"],
                  run.log("agent.log"))

        def ctl(*args):
            r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json"] + list(args),
                               capture_output=True, text=True, timeout=10)
            assert r.returncode == 0, "tidectl %s: %d %s" % (args, r.returncode, r.stderr)
            return json.loads(r.stdout)

        def row(node):
            for r in ctl("agents"):
                if r["node"] == node:
                    return r
            return None

        def good_samples():
            r = row("good")
            return r["samples"] if r and r["connected"] else 0

        tp.wait_for(lambda: good_samples() >= 2, 20, "the honest agent's samples")

        def log_has(text):
            cplog.flush()
            with open(cplog.name) as f:
                return text in f.read()

        cases = []

        def case(name, reason, node, peer_fn, wait=5):
            before = good_samples()
            p = peer_fn()
            assert p.wait_closed(wait), "%s: connection not closed" % name
            p.close()
            tp.wait_for(lambda: log_has(reason), 5, "%s: log line with %r" % (name, reason))
            if node:
                r = row(node)
                assert r and r["protocol_errors"] == 1 and not r["connected"], (name, r)
            # the honest agent is still connected and its samples keep coming
            tp.wait_for(lambda: good_samples() > before, 10, "%s: honest agent progress" % name)
            assert row("good")["protocol_errors"] == 0
            cases.append(name)
            print("ok", name)

        def authed(node):
            p = tp.Peer(port)
            assert p.handshake(TOKEN, node) is not None
            return p

        def malformed():
            p = authed("bad-malformed")
            p.send_raw(struct.pack(">I", 3) + b"\x81\xc1\x00")
            return p
        case("malformed frame", "closed: malformed msgpack in a frame of 3 bytes", "bad-malformed",
             malformed)

        def oversize():
            p = authed("bad-oversize")
            p.send_raw(struct.pack(">I", 0x7FFFFFF0) + b"\x80")
            return p
        case("oversize length", "frame length 2147483632 exceeds the maximum of 4194304 bytes",
             "bad-oversize", oversize)

        def oversize_unauthenticated():
            p = tp.Peer(port)
            p.recv()  # the challenge
            p.send_raw(struct.pack(">I", 100000) + b"\x80")
            return p
        case("oversize length before the handshake",
             "frame length 100000 exceeds the maximum of 4096 bytes", None, oversize_unauthenticated)

        def bad_version():
            p = tp.Peer(port)
            p.recv()  # the challenge
            p.send_raw(tp.frame({"v": 7, "t": tp.HELLO, "seq": 1}))
            return p
        case("unknown version", "unsupported protocol version 7 (this side speaks 1)", None,
             bad_version)

        def bad_type():
            p = authed("bad-type")
            p.send_raw(tp.frame({"v": 1, "t": 42, "seq": 9}))
            return p
        case("unknown type", "(node bad-type) closed: unknown message type 42", "bad-type", bad_type)

        def wrong_token():
            p = tp.Peer(port)
            assert p.handshake(b"not-the-right-token-at-all", "bad-token") is None
            return p
        case("wrong token", "closed: wrong token: HELLO from node bad-token failed HMAC", None,
             wrong_token)

        def stall_handshake():
            p = tp.Peer(port)
            p.recv()
            p.send_raw(struct.pack(">I", 100) + b"\x85" + b"\x00" * 9)
            return p
        case("half frame then stall (handshake)",
             "stalled in the middle of a frame during the handshake (14 bytes pending", None,
             stall_handshake)

        def stall_ready():
            p = authed("bad-stall")
            p.send_raw(struct.pack(">I", 100) + b"\x84" + b"\x00" * 19)
            return p
        case("half frame then stall (ready)",
             "(node bad-stall) closed: stalled in the middle of a frame (24 bytes pending", "bad-stall",
             stall_ready)

        st = ctl("status")
        assert st["agents"]["protocol_errors"] == len(cases), st
        assert st["agents"]["rejected_auth"] == 1, st
        assert st["agents"]["agents_connected"] == 1, st

        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0, "control plane exit status"
        assert log_has("stopped cleanly")
        print("bad_peers: %d cases ok" % len(cases))
    return 0


if __name__ == "__main__":
    sys.exit(main())
