# commands.py: cp_agent_command through the ops socket ("ping"): an answer is routed back to
# the right request, an agent that never answers times out, an agent that drops the connection
# fails the command at once, a second connection for the same node replaces the first, and
# an unknown node is refused. Agents here are scripted peers (tests/integration/tideproto.py).
# timeout: 60
import json
import os
import signal
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402

TOKEN = b"commands-token-0123456789abcdef"


def ops(sock_path, cmd, args):
    s = socket.socket(socket.AF_UNIX)
    s.connect(sock_path)
    body = json.dumps({"cmd": cmd, "args": args}).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        d = s.recv(65536)
        assert d, "ops socket closed without an answer"
        buf += d
    s.close()
    return json.loads(buf[4:])


def main():
    with tt.Run() as run:
        tok = run.token(TOKEN)
        port, sock = tt.free_port(), run.path("cp.sock")
        log = run.log("cp.log")
        cp = run.controlplane(tok, port, tt.free_port(), log=log)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")

        # an agent that answers
        good = tp.Peer(port)
        good.handshake(TOKEN, "answers")

        def answer():
            while True:
                m = good.recv()
                if m is None:
                    return
                if m["t"] == tp.COMMAND:
                    good.send(tp.COMMAND_RESULT, id=m["id"], ok=True,
                              result={"echo": m["action"], "pid": 42})
        threading.Thread(target=answer, daemon=True).start()
        r = ops(sock, "ping", {"node": "answers", "timeout_ms": 5000})
        assert r["ok"] and r["data"]["echo"] == "ping" and r["data"]["node"] == "answers", r
        print("ok answered")

        # an agent that never answers: the command times out
        mute = tp.Peer(port)
        mute.handshake(TOKEN, "mute")
        t0 = time.monotonic()
        r = ops(sock, "ping", {"node": "mute", "timeout_ms": 500})
        dt = time.monotonic() - t0
        assert not r["ok"] and r["error"] == "timed out after 500 ms" and r["status"] == 1, r
        assert 0.4 < dt < 5, dt
        print("ok timeout")

        # an agent that drops the connection when it gets the command: fails at once
        quitter = tp.Peer(port)
        quitter.handshake(TOKEN, "quitter")

        def quit_on_command():
            m = quitter.recv()
            while m and m["t"] != tp.COMMAND:
                m = quitter.recv()
            quitter.close()
        threading.Thread(target=quit_on_command, daemon=True).start()
        t0 = time.monotonic()
        r = ops(sock, "ping", {"node": "quitter", "timeout_ms": 20000})
        assert not r["ok"] and r["error"] == "agent disconnected", r
        assert time.monotonic() - t0 < 5
        print("ok disconnect")

        # a second connection for a node replaces the first
        again = tp.Peer(port)
        again.handshake(TOKEN, "mute")
        assert mute.wait_closed(5), "the replaced connection stayed open"
        tp.wait_for(lambda: "replaced by a new connection" in open(log.name).read(), 5, "log")
        print("ok replaced")

        r = ops(sock, "ping", {"node": "nobody"})
        assert not r["ok"] and r["error"] == "unknown node 'nobody'" and r["status"] == 2, r
        r = ops(sock, "ping", {"node": "quitter"})
        assert not r["ok"] and r["error"] == "node 'quitter' is not connected", r
        r = ops(sock, "no-such-command", {})
        assert not r["ok"] and r["error"] == "unknown command 'no-such-command'", r
        print("ok refusals")

        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
