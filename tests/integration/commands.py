# commands.py: cp_agent_command through the ops socket ("ping"): an answer is routed back to
# the right request, an agent that never answers times out, an agent that drops the connection
# fails the command at once, a second connection for the same node replaces the first, and
# an unknown node is refused. Agents here are scripted peers (tests/integration/tideproto.py).
# timeout: 60
import json
import os
import shutil
import signal
import socket
import struct
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
TOKEN = b"commands-token-0123456789abcdef"


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


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
    w = tempfile.mkdtemp(prefix="tide-it.")
    cp = None
    ok = False
    try:
        tok = os.path.join(w, "token")
        open(tok, "wb").write(TOKEN)
        os.chmod(tok, 0o600)
        port, sock = free_port(), os.path.join(w, "cp.sock")
        log = open(os.path.join(w, "cp.log"), "w+")
        cp = subprocess.Popen([BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % port,
                               "--socket", sock, "--token-file", tok, "--data-dir", w + "/data",
                               "--http", "127.0.0.1:%d" % free_port()],
                              stdout=log, stderr=subprocess.STDOUT)
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
        ok = True
    finally:
        if cp and cp.poll() is None:
            cp.kill()
            cp.wait()
        if not ok and os.path.exists(os.path.join(w, "cp.log")):
            print("".join(open(os.path.join(w, "cp.log")).readlines()[-30:]))
        shutil.rmtree(w, ignore_errors=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
