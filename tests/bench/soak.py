# soak.py (issue 18, Proof): a bounded soak of the control plane. For SOAK_SECONDS (600 in
# `make bench`): a wire-protocol agent streams batches (keeping every unacknowledged one and
# resending it after reconnecting, as tide-agent does); hostile clients keep at it (slowloris
# HTTP connections, NULs and invalid UTF-8 on the ops socket, 1 MiB form fields, query_range
# at a tiny step); the control plane is killed with -9 every minute and restarted; half-way its
# disk (a small tmpfs) fills up for a while. At the end: every acknowledged sample is present
# exactly once (raw points) with its value, the RSS stayed under RSS_LIMIT_MB, and the systemd
# watchdog (WATCHDOG_USEC=10 s, pinged at half) was never missed. Prints the figures.
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "integration"))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

DURATION = float(os.environ.get("SOAK_SECONDS", "600"))
KILL_EVERY = min(60.0, DURATION / 5)
RSS_LIMIT_MB = float(os.environ.get("RSS_LIMIT_MB", "256"))
WATCHDOG_S = 10.0
TOKEN = b"soak-token-0123456789abcdef"
NSERIES, PER_BATCH, STEP_MS = 3, 10, 100
T0 = (int(time.time()) - 86400) * 1000


def value(s, i):
    return s * 1000000000 + i + 0.25


class Agent(threading.Thread):
    def __init__(self, port):
        super().__init__(daemon=True)
        self.port, self.lock = port, threading.Lock()
        self.acked = self.created = 0
        self.base = int(time.time() * 1000) - 10 ** 6  # seqs from the clock, as tide-agent
        self.stop_new = self.stop = False
        self.errors = []

    def batch(self, n):
        first = (n - 1) * PER_BATCH
        return [[s + 1, T0 + first * STEP_MS, [0] + [STEP_MS] * (PER_BATCH - 1),
                 [value(s, first + k) for k in range(PER_BATCH)]] for s in range(NSERIES)]

    def session(self):
        peer = tp.Peer(self.port, timeout=5)
        ack = peer.handshake(TOKEN, "soak-node")
        if ack is None:
            return peer.close()
        with self.lock:
            last = ack["last_seq"] - self.base if ack["last_seq"] else 0
            if last < self.acked:
                self.errors.append("HELLO_ACK %d below acknowledged %d" % (last, self.acked))
            self.acked = max(self.acked, last)
        peer.send(tp.SERIES_DEF, s=[[s + 1, {"__name__": "soak", "s": str(s)}]
                                    for s in range(NSERIES)])
        sent, pace = self.acked, time.time()
        peer.sock.settimeout(0.02)
        while not self.stop:
            while sent < self.acked + 20 and (sent < self.created or
                                             (not self.stop_new and time.time() >= pace)):
                sent += 1
                if sent > self.created:
                    self.created, pace = sent, time.time() + 0.05  # 20 batches/s
                peer.send(tp.SAMPLES, seq=self.base + sent, s=self.batch(sent))
            try:
                m = peer.recv()
            except socket.timeout:
                continue
            if m is None:
                break
            if m["t"] == tp.ACK:
                with self.lock:
                    self.acked = max(self.acked, m["ack"] - self.base)
        peer.close()

    def run(self):
        while not self.stop:
            try:
                self.session()
            except (OSError, AssertionError):
                time.sleep(0.1)


class Watchdog(threading.Thread):
    """Receives sd_notify datagrams; the longest gap between pings within one process life."""

    def __init__(self, path):
        super().__init__(daemon=True)
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(0.5)
        self.last = None
        self.max_gap = 0.0
        self.pings = 0
        self.stop = False

    def reset(self):
        self.last = None

    def run(self):
        while not self.stop:
            try:
                d = self.sock.recv(4096).decode(errors="replace")
            except socket.timeout:
                continue
            now = time.time()
            if "READY=1" in d or "WATCHDOG=1" in d:
                if self.last is not None:
                    self.max_gap = max(self.max_gap, now - self.last)
                self.last = now
                self.pings += "WATCHDOG=1" in d


def hostile(port_http, sock_path, stop):
    """Keeps a few hostile clients busy; counts what they did."""
    n = 0
    slow = []
    while not stop.is_set():
        try:
            s = socket.create_connection(("127.0.0.1", port_http), timeout=2)
            s.send(b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nX-A: ")
            slow.append(s)
            if len(slow) > 8:
                slow.pop(0).close()
            o = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            o.settimeout(2)
            o.connect(sock_path)
            for raw in (b'{"cmd":"sta\\u0000tus"}', b'{"cmd":"\xff\xfe"}'):
                o.sendall(struct.pack(">I", len(raw)) + raw)
            o.close()
            body = b"query=" + b"a" * ((1 << 20) + 1)
            req = urllib.request.Request("http://127.0.0.1:%d/api/v1/query" % port_http,
                                         data=body)
            try:
                urllib.request.urlopen(req, timeout=5).read()
            except Exception:  # noqa: BLE001 (400 expected; a restart may interrupt)
                pass
            qs = urllib.parse.urlencode({"query": "soak", "start": T0 / 1000,
                                         "end": T0 / 1000 + 3600, "step": 0.05})
            try:
                urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query_range?%s" %
                                       (port_http, qs), timeout=10).read()
            except Exception:  # noqa: BLE001
                pass
            n += 1
        except OSError:
            pass
        stop.wait(1.0)
    for s in slow:
        s.close()
    return n


def rss_mb(pid):
    try:
        with open("/proc/%d/status" % pid) as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def main():
    with tt.Run(logs=("cp.log",)) as run:
        disk = run.path("disk")
        os.mkdir(disk)
        subprocess.run(["mount", "-t", "tmpfs", "-o", "size=48m", "tmpfs", disk], check=True)
        run.at_exit(lambda: subprocess.run(["umount", "-l", disk]))
        tok = run.token(TOKEN)
        ap, hp = tt.free_port(), tt.free_port()
        sock = run.path("cp.sock")
        wd = Watchdog(run.path("notify.sock"))
        wd.start()
        env = dict(os.environ, NOTIFY_SOCKET=run.path("notify.sock"),
                   WATCHDOG_USEC=str(int(WATCHDOG_S * 1e6)))
        log = run.log("cp.log")

        def start():
            wd.reset()
            p = subprocess.Popen([BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % ap,
                                  "--socket", sock, "--token-file", tok, "--data-dir",
                                  os.path.join(disk, "data"), "--http", "127.0.0.1:%d" % hp,
                                  "--snapshot-interval", "20s"],
                                 stdout=log, stderr=subprocess.STDOUT, env=env)
            run.procs.append(p)
            return p

        cp = start()
        agent = Agent(ap)
        agent.start()
        stop = threading.Event()
        hcount = [0]
        ht = threading.Thread(target=lambda: hcount.__setitem__(0, hostile(hp, sock, stop)),
                              daemon=True)
        ht.start()
        t_start = time.time()
        next_kill = t_start + KILL_EVERY
        full_at, full_done = t_start + DURATION / 2, False
        max_rss, kills = 0.0, 0
        while time.time() - t_start < DURATION:
            max_rss = max(max_rss, rss_mb(cp.pid))
            assert cp.poll() is None, "control plane exited %s" % cp.returncode
            if time.time() >= next_kill:
                cp.kill()
                cp.wait()
                kills += 1
                cp = start()
                next_kill += KILL_EVERY
            if not full_done and time.time() >= full_at:
                filler = os.path.join(disk, "filler")
                with open(filler, "wb") as f:
                    try:
                        while True:
                            f.write(b"\0" * (1 << 20))
                            f.flush()
                    except OSError:
                        pass
                before = agent.acked
                time.sleep(min(10.0, DURATION / 10))
                stalled = agent.acked - before
                os.unlink(filler)
                full_done = True
                print("full disk: %d batches acknowledged while full (0 expected once the "
                      "WAL failed)" % stalled)
            assert not agent.errors, agent.errors
            time.sleep(0.5)
        agent.stop_new = True
        stop.set()
        tp.wait_for(lambda: agent.acked >= agent.created or agent.errors, 120,
                    "every batch acknowledged")
        agent.stop = True
        assert not agent.errors, agent.errors
        total = agent.created * PER_BATCH
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json", "series", "--match",
                            "soak"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        series = json.loads(r.stdout)["series"]
        assert len(series) == NSERIES, r.stdout
        for s in series:
            assert s["points"]["raw"] == total, "%s: %d raw points, %d acknowledged" % (
                s["labels"], s["points"]["raw"], total)
        for s in range(NSERIES):  # values, at their own timestamps (a sample of 10,000)
            qs = urllib.parse.urlencode({"query": 'soak{s="%d"}' % s, "start": T0 / 1000,
                                         "end": (T0 + (min(total, 10000) - 1) * STEP_MS) / 1000,
                                         "step": STEP_MS / 1000})
            with urllib.request.urlopen("http://127.0.0.1:%d/api/v1/query_range?%s" % (hp, qs),
                                        timeout=60) as f:
                vals = json.loads(f.read())["data"]["result"][0]["values"]
            for k, (_, v) in enumerate(vals):
                assert float(v) == value(s, k), "series %d sample %d: %s" % (s, k, v)
        wd.stop = True
        print("soak %.0f s: %d batches (%d samples) acknowledged, each stored exactly once; "
              "%d kill -9; %d rounds of hostile clients; max RSS %.1f MB (limit %.0f); "
              "longest watchdog gap %.1f s (WatchdogSec %.0f s, %d pings)" %
              (DURATION, agent.created, total * NSERIES, kills, hcount[0], max_rss,
               RSS_LIMIT_MB, wd.max_gap, WATCHDOG_S, wd.pings))
        assert max_rss < RSS_LIMIT_MB, "RSS %.1f MB" % max_rss
        assert wd.max_gap < WATCHDOG_S, "watchdog missed: %.1f s without a ping" % wd.max_gap
        cp.terminate()
        assert cp.wait(timeout=30) == 0
        return 0


if __name__ == "__main__":
    sys.exit(main())
