# agent_fencing.py: a real tide-agent reporting to two control planes (scripted peers speaking
# the wire protocol, tests/integration/tideproto.py): both get its batches and may send it
# commands; fenced commands (PROTOCOL.md "Fencing") with a token older than one already seen
# for the workload are refused with an error naming the workload and both tokens, token 0 is
# refused once a token was seen, other workloads and unfenced commands are unaffected, a
# command id is per control plane; after an agent restart the tokens are still known (the
# state_dir file) and the stale control plane is still refused.
# timeout: 60
import os
import shutil
import signal
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
from agent_fake_cp import FakeCP, TOKEN  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))


def command(p, cid, workload=None, token=None, action="ping"):
    """Sends one COMMAND (fenced when workload is given) and returns its COMMAND_RESULT."""
    fields = {"id": cid, "action": action, "args": {}}
    if workload is not None:
        fields["fence"] = {"workload": workload, "token": token}
    p.send(tp.COMMAND, **fields)
    while True:
        m = p.recv()
        assert m is not None, "connection closed while waiting for " + cid
        if m["t"] == tp.COMMAND_RESULT and m["id"] == cid:
            return m


def connect_both(a, b):
    pa, pb = a.accept(), b.accept()
    a.handshake(pa)
    b.handshake(pb)
    return pa, pb


def samples(p):
    while True:
        m = p.recv()
        assert m is not None
        if m["t"] == tp.SAMPLES:
            return m["seq"]


def main():
    w = tempfile.mkdtemp(prefix="tide-it.")
    agent = None
    ok = False
    try:
        tok = os.path.join(w, "token")
        with open(tok, "wb") as f:
            f.write(TOKEN)
        os.chmod(tok, 0o600)
        a, b = FakeCP(), FakeCP()
        log = open(os.path.join(w, "agent.log"), "w+")
        args = [BIN + "/tide-agent",
                "--controlplane", "127.0.0.1:%d, 127.0.0.1:%d" % (a.port, b.port),
                "--node", "fence-node", "--token-file", tok, "--interval", "100ms",
                "--reconnect-min", "50ms", "--reconnect-max", "500ms", "--http-listen", "",
                "--state-dir", os.path.join(w, "state"), "--spool-dir", os.path.join(w, "spool")]
        agent = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        pa, pb = connect_both(a, b)
        sa, sb = samples(pa), samples(pb)
        assert abs(sa - sb) < 50, (sa, sb)  # the same batches, numbered once
        for cp in (a, b):
            d = os.path.join(w, "spool", "cp-127.0.0.1_%d" % cp.port)
            assert os.path.isdir(d), "no spool directory of its own for control plane %d" % cp.port
        print("ok both control planes get the batches, one spool each")

        # B owns "web" now (token 5); A is the stale owner (token 4)
        r = command(pb, "b1", "web", 5)
        assert r["ok"] is True, r
        r = command(pa, "a1", "web", 4)
        assert r["ok"] is False, r
        assert r["error"].startswith(
            "fenced: workload web: token 4 is older than token 5 already seen"), r["error"]
        assert r["result"]["fenced"] == {"workload": "web", "token": 4, "seen": 5}, r
        r = command(pa, "a2", "web", 0)
        assert r["ok"] is False and "token 0 is older than token 5" in r["error"], r
        r = command(pa, "a3", "web", 5)  # the current token from any control plane: accepted
        assert r["ok"] is True, r
        r = command(pa, "a4")            # unfenced: not about a workload
        assert r["ok"] is True, r
        r = command(pa, "a5", "api", 0)  # no token seen for api yet
        assert r["ok"] is True, r
        # one id from both: each control plane gets its own answer, not the other's
        r1, r2 = command(pa, "same", "web", 3), command(pb, "same", "web", 5)
        assert r1["ok"] is False and r2["ok"] is True, (r1, r2)
        print("ok older tokens refused, naming the workload and both tokens")

        # restart: the table comes back from state_dir, the stale owner is still refused
        agent.send_signal(signal.SIGTERM)
        assert agent.wait(10) == 0
        pa.close()
        pb.close()
        text = open(os.path.join(w, "state", "fence")).read()
        assert text.startswith("tide-fence 1\n") and " web\n" in text, text
        agent = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        pa, pb = connect_both(a, b)
        r = command(pa, "a6", "web", 4)
        assert r["ok"] is False and "token 4 is older than token 5" in r["error"], r
        r = command(pb, "b2", "web", 6)  # a newer owner again
        assert r["ok"] is True, r
        r = command(pa, "a7", "web", 5)
        assert r["ok"] is False and r["result"]["fenced"]["seen"] == 6, r
        print("ok the tokens survive a restart")

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
