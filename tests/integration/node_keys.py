# node_keys.py: per-node agent keys against hostile peers. `tidectl token node alpha` issues a
# key; a real tide-agent authenticates with it. Then: the cluster token can no longer speak for
# alpha (and cannot displace its connection), alpha's key cannot speak for any other node, a
# peer's series carry its own authenticated name whatever labels it sends, a command's result
# is only taken from the node it was sent to, a revoked key is refused, keys survive a restart,
# require_node_keys refuses the cluster token, and a flood of failed handshakes from one address
# is refused at accept with a bounded number of log lines while the real agents keep reporting.
# timeout: 120
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"node-keys-cluster-token-0123456789"


def main():
    with tt.Run(logs=("cp.log", "good.log", "alpha.log", "alpha2.log")) as run:
        run.at_exit(lambda: os.environ.get("NK_DUMP") and print(open(run.path("cp.log")).read()))
        tok = run.token(TOKEN)
        port, http, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cplog = run.log("cp.log")
        # room for this phase's deliberate failures; the flood below runs with the default
        cp = run.controlplane(tok, port, http, "--handshake-fail-burst", "40", log=cplog)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")

        def ctl(*args, ok=True):
            r = subprocess.run([BIN + "/tidectl", "--socket", sock] + list(args),
                               capture_output=True, text=True, timeout=20)
            if ok:
                assert r.returncode == 0, "tidectl %s: %d %s" % (args, r.returncode, r.stderr)
            return r

        def ctlj(*args):
            return json.loads(ctl("--json", *args).stdout)

        def row(node):
            for r in ctlj("agents"):
                if r["node"] == node:
                    return r
            return None

        def samples(node):
            r = row(node)
            return r["samples"] if r and r["connected"] else 0

        def log_text():
            cplog.flush()
            with open(cplog.name) as f:
                return f.read()

        def agent(node, token_file, logname):
            return run.spawn([BIN + "/tide-agent", "--controlplane", "127.0.0.1:%d" % port,
                              "--node", node, "--token-file", token_file, "--interval", "200ms"],
                             run.log(logname))

        def key_file(name, key):
            path = run.path(name)
            with open(path, "w") as f:
                f.write(key + "\n")
            os.chmod(path, 0o600)
            return path

        good = agent("good", tok, "good.log")
        r = ctl("token", "node", "alpha")
        alpha_key = r.stdout.strip()
        assert len(alpha_key) == 64 and all(c in "0123456789abcdef" for c in alpha_key), r.stdout
        assert "issued for node alpha" in r.stderr, r.stderr
        alpha = agent("alpha", key_file("alpha.key", alpha_key), "alpha.log")
        tp.wait_for(lambda: samples("good") >= 2 and samples("alpha") >= 2, 30,
                    "both agents reporting")
        assert row("alpha")["auth"] == "node-key" and row("good")["auth"] == "cluster-token"
        lst = ctlj("token", "list")
        assert lst["require_node_keys"] is False and len(lst["keys"]) == 1, lst
        k = lst["keys"][0]
        assert k["node"] == "alpha" and k["state"] == "key" and k["connected"], k
        assert alpha_key not in json.dumps(lst) and len(k["key_id"]) == 12, lst
        print("ok key issued, real agent authenticated with it")

        alpha_since = row("alpha")["connected_since"]

        def refused(key, node, reason):
            before_a, before_g = samples("alpha"), samples("good")
            p = tp.Peer(port)
            assert p.handshake(key, node) is None, "%s accepted as %s" % (key[:8], node)
            p.close()
            tp.wait_for(lambda: reason in log_text(), 10, "log line %r" % reason)
            # the real connections are untouched and keep reporting
            ra = row("alpha")
            assert ra["connected"] and ra["connected_since"] == alpha_since, ra
            assert ra["protocol_errors"] == 0, ra
            tp.wait_for(lambda: samples("alpha") > before_a and samples("good") > before_g, 10,
                        "agents progressing")

        refused(TOKEN, "alpha", "HELLO from node alpha failed HMAC verification (the node has "
                "a key of its own")
        refused(alpha_key.encode(), "good", "HELLO from node good failed HMAC verification "
                "(cluster token)")
        refused(alpha_key.encode(), "beta", "HELLO from node beta failed HMAC verification")
        print("ok cluster token cannot be alpha, alpha's key cannot be another node")

        # series are bound to the authenticated name: a label node="alpha" is replaced
        mal = tp.Peer(port)
        assert mal.handshake(TOKEN, "mallory") is not None
        mal.send(tp.SERIES_DEF, s=[[7, {"__name__": "nk_forged", "node": "alpha"}]])
        now = int(time.time() * 1000)
        mal.send(tp.SAMPLES, seq=now, s=[[7, now, [0], [1.0]]])

        def forged_series():
            q = urllib.parse.urlencode({"match[]": "nk_forged"})
            st, body = tt.http_get("http://127.0.0.1:%d/api/v1/series?%s" % (http, q))
            return json.loads(body)["data"] if st == 200 else None
        got = tp.wait_for(forged_series, 10, "the forged series")
        assert got == [{"__name__": "nk_forged", "node": "mallory"}], got
        print("ok series bound to the authenticated node")

        # a command's result is taken only from the node it was sent to
        slow = tp.Peer(port)
        assert slow.handshake(TOKEN, "slowpoke") is not None
        seen = {}

        def slow_side():
            while True:
                m = slow.recv()
                if m is None:
                    return
                if m["t"] == tp.COMMAND:
                    seen["id"] = m["id"]
                    return
        th = threading.Thread(target=slow_side, daemon=True)
        th.start()
        ping = subprocess.Popen([BIN + "/tidectl", "--socket", sock, "--json", "ping",
                                 "slowpoke"], stdout=subprocess.PIPE, text=True)
        th.join(10)
        assert "id" in seen, "slowpoke got no command"
        mal.send(tp.COMMAND_RESULT, id=seen["id"], ok=True, result={"agent_version": "forged"})
        mal.send(tp.HEARTBEAT, ts=now)  # a frame after it: the result above was processed
        slow.send(tp.COMMAND_RESULT, id=seen["id"], ok=True,
                  result={"agent_version": "slowpoke-real"})
        out, _ = ping.communicate(timeout=15)
        assert ping.returncode == 0 and json.loads(out)["agent_version"] == "slowpoke-real", out
        assert row("mallory")["connected"], "mallory's stray result is dropped, not fatal"
        mal.close()
        slow.close()
        print("ok command results bound to the node")

        # revocation closes alpha's connection and refuses its key
        r = ctlj("token", "revoke", "alpha")
        assert r["revoked"] is True and r["was"] == "key", r
        tp.wait_for(lambda: "its key was revoked" in log_text(), 20, "alpha's key refused")
        assert not row("alpha")["connected"]
        alpha.send_signal(signal.SIGTERM)
        alpha.wait(10)
        p = tp.Peer(port)  # nor does the cluster token speak for a revoked node
        assert p.handshake(TOKEN, "alpha") is None
        p.close()
        print("ok revoked")

        # restart with require_node_keys: the table survived, the cluster token is refused
        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0
        cp = run.controlplane(tok, port, http, "--require-node-keys", "true", log=cplog)
        tp.wait_for(lambda: os.path.exists(sock) and ctl("status", ok=False).returncode == 0, 20,
                    "control plane back")
        lst = ctlj("token", "list")
        assert lst["require_node_keys"] is True, lst
        assert [(k["node"], k["state"]) for k in lst["keys"]] == [("alpha", "revoked")], lst
        tp.wait_for(lambda: "node good has no node key and require_node_keys is on" in log_text(),
                    30, "the cluster token refused")
        assert not (row("good") or {}).get("connected")
        good.send_signal(signal.SIGTERM)
        good.wait(10)
        new_key = ctl("token", "node", "alpha").stdout.strip()
        assert new_key != alpha_key
        p = tp.Peer(port)  # the old key is dead
        assert p.handshake(alpha_key.encode(), "alpha") is None
        p.close()
        agent("alpha", key_file("alpha2.key", new_key), "alpha2.log")
        tp.wait_for(lambda: samples("alpha") >= 2, 30, "alpha back with its new key")
        print("ok keys persisted, require_node_keys")

        # a flood of failed handshakes from one address: refused at accept, few log lines
        st0 = ctlj("status")["agents"]
        def flood_lines():
            return sum(1 for ln in log_text().splitlines()
                       if "node flood" in ln or "refusing 127.0.0.1" in ln)
        lines0 = flood_lines()
        before = samples("alpha")
        refused_n = 0
        for i in range(300):
            s = socket.create_connection(("127.0.0.1", port), timeout=10)
            p = tp.Peer.__new__(tp.Peer)
            p.sock, p.buf, p.seq = s, b"", 0
            try:
                ok = p.handshake(TOKEN, "flood")  # no key of its own: refused
            except (AssertionError, ConnectionResetError, OSError):
                ok = None
                refused_n += 1
            assert ok is None
            s.close()
        st = ctlj("status")["agents"]
        fails = st["rejected_auth"] - st0["rejected_auth"]
        rate = st["refused_rate"] - st0["refused_rate"]
        assert fails + rate == 300, (fails, rate)
        # the bucket holds 10 failures and gains one a second: far fewer than 300 get through
        assert fails <= 10 + 60 and rate >= 230, (fails, rate)
        lines = flood_lines() - lines0
        assert lines <= 25, lines  # rate-limited log lines, not one per failure
        tp.wait_for(lambda: samples("alpha") > before, 10, "alpha progressing after the flood")
        assert row("alpha")["connected"]
        print("ok flood: %d handshakes failed, %d refused at accept, %d log lines" %
              (fails, rate, lines))

        cp.send_signal(signal.SIGTERM)
        assert cp.wait(20) == 0
        assert "stopped cleanly" in log_text()
        mode = os.stat(run.path("data", "node_keys")).st_mode & 0o777
        assert mode == 0o600, oct(mode)
    print("node_keys: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
