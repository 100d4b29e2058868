"""Shared by the hostile-peer regression tests of issue 18 (agent_*_refused.py, ...): a control
plane on loopback, wire-protocol peers, tidectl and /metrics readers."""
import json
import os
import subprocess
import time
import urllib.request

import tideproto as tp
import _tidetest as tt
from _tidetest import BIN

TOKEN = b"hostile-peers-token-0123456789abcdef"


class CP:
    def __init__(self, run, *extra):
        self.run = run
        self.tok = run.token(TOKEN)
        self.port, self.http = tt.free_port(), tt.free_port()
        self.sock = run.path("cp.sock")
        self.log = run.log("cp.log")
        self.proc = run.controlplane(self.tok, self.port, self.http, *extra, log=self.log)
        tp.wait_for(lambda: os.path.exists(self.sock) and tt.port_open(self.port), 30,
                    "control plane up")

    def ctl(self, *args):
        r = subprocess.run([BIN + "/tidectl", "--socket", self.sock, "--json"] + list(args),
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "tidectl %s: %d %s" % (args, r.returncode, r.stderr)
        return r.stdout

    def row(self, node):
        for r in json.loads(self.ctl("agents")):
            if r["node"] == node:
                return r
        return None

    def metric(self, name):
        with urllib.request.urlopen("http://127.0.0.1:%d/metrics" % self.http, timeout=30) as f:
            for line in f.read().decode().splitlines():
                if line.startswith(name + " "):
                    return float(line.split()[1])
        return None

    def log_text(self):
        self.log.flush()
        with open(self.log.name) as f:
            return f.read()

    def peer(self, node):
        p = tp.Peer(self.port, timeout=10)
        assert p.handshake(TOKEN, node) is not None, "handshake as %s" % node
        return p

    def stop(self):
        self.proc.terminate()
        assert self.proc.wait(timeout=30) == 0


def send_and_ack(peer, seq, runs):
    """Sends one SAMPLES batch and waits for its ACK; returns the ACK (None if closed)."""
    peer.send(tp.SAMPLES, seq=seq, s=runs)
    deadline = time.time() + 20
    while time.time() < deadline:
        m = peer.recv()
        if m is None:
            return None
        if m["t"] == tp.ACK and m["ack"] >= seq:
            return m["ack"]
    raise AssertionError("no ACK for batch %d" % seq)


def now_ms():
    return int(time.time() * 1000)
