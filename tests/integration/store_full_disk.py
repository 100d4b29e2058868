# store_full_disk.py: the control plane's data directory on a 3 MB tmpfs (mounted by the test,
# unmounted at exit; needs root). While a protocol peer streams, the disk is filled: the control
# plane stops acknowledging, `tidectl status` and /healthz say "No space left on device",
# queries keep answering with what is stored; once space returns, acknowledgements resume and
# every batch ends up stored exactly once.
# timeout: 180
import json
import os
import socket
import subprocess
import sys
import time
import urllib.parse

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"store-full-disk-token-0123456789"
T0 = 1700000000000
PER = 50


class Streamer:
    """A protocol peer that resends unacknowledged batches after each reconnect."""

    def __init__(self, port):
        self.port, self.acked, self.made, self.peer, self.sent = port, 0, 0, None, 0

    def connect(self):
        try:
            self.peer = tp.Peer(self.port, timeout=5)
            ack = self.peer.handshake(TOKEN, "disk-node")
        except (OSError, AssertionError):
            self.peer = None
            return False
        if ack is None:
            self.peer = None
            return False
        self.acked = max(self.acked, ack["last_seq"])
        self.sent = self.acked
        self.peer.send(tp.SERIES_DEF, s=[[1, {"__name__": "disk_test"}]])
        return True

    def pump(self, seconds, new=True):
        """Sends (new batches if `new`, else only resends) and reads ACKs for a while."""
        end = time.time() + seconds
        while time.time() < end and (new or self.acked < self.made):
            if self.peer is None and not self.connect():
                time.sleep(0.1)
                continue
            try:
                while self.sent < self.made or (new and self.sent < self.acked + 10):
                    self.sent += 1
                    self.made = max(self.made, self.sent)
                    first = (self.sent - 1) * PER
                    self.peer.send(tp.SAMPLES, seq=self.sent,
                                   s=[[1, T0 + first * 1000, [0] + [1000] * (PER - 1),
                                       [float(first + k) for k in range(PER)]]])
                self.peer.sock.settimeout(0.05)
                m = self.peer.recv()
                if m is None:
                    self.peer = None
                elif m["t"] == tp.ACK:
                    self.acked = max(self.acked, m["ack"])
            except socket.timeout:
                pass
            except OSError:
                self.peer = None


def main():
    if os.geteuid() != 0:
        print("skipped: needs root to mount a small tmpfs")
        return 77
    with tt.Run() as run:
        w = run.w
        mnt = run.path("mnt")
        os.mkdir(mnt)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt]).returncode:
            print("skipped: cannot mount tmpfs")
            return 77
        run.at_exit(lambda: subprocess.run(["umount", "-l", mnt]))
        tok = run.token(TOKEN)
        ap, hp, sock = tt.free_port(), tt.free_port(), run.path("cp.sock")
        cp = run.controlplane(tok, ap, hp, *tt.LONG_RETENTION, "--snapshot-interval", "1h", data_dir=mnt + "/data")
        tp.wait_for(lambda: os.path.exists(sock), 30, "control plane")
        base = "http://127.0.0.1:%d" % hp
        # the ops socket comes up before the HTTP listener: wait for the port first
        tp.wait_for(lambda: tt.port_open(hp) and tt.http_get(base + "/healthz")[0] == 200, 30, "http")

        a = Streamer(ap)
        a.pump(1.0)
        assert a.acked > 0, "no ACKs before the disk filled"

        # fill the disk
        filler = os.path.join(mnt, "filler")
        fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o644)
        try:
            while os.write(fd, b"\1" * 65536) > 0:
                pass
        except OSError:
            pass
        os.close(fd)
        a.pump(2.0)
        stuck = a.acked
        a.pump(2.0)
        assert a.acked == stuck, "acknowledged %d -> %d on a full disk" % (stuck, a.acked)
        assert a.made > stuck, "nothing was waiting"
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json", "status"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        status = json.loads(r.stdout)["store"]
        assert "No space left on device" in status, status
        code, body = tt.http_get(base + "/healthz")
        assert code == 503 and "No space left" in body, (code, body)
        # liveness is not readiness: a full disk must not get the pod restarted over and over
        code, body = tt.http_get(base + "/livez")
        assert code == 200 and "event loop runs" in body, (code, body)
        qs = urllib.parse.urlencode({"query": "disk_test", "start": T0 / 1000,
                                     "end": T0 / 1000 + 10, "step": 1})
        code, body = tt.http_get(base + "/api/v1/query_range?" + qs)
        assert code == 200 and json.loads(body)["data"]["result"][0]["values"][0][1] == "0", body
        metrics = tt.http_get(base + "/metrics")[1]
        assert "tide_tsdb_durable 0" in metrics, metrics
        assert "No space left on device" in open(os.path.join(w, "cp.log")).read()

        # space returns: acknowledgements resume, everything lands once
        os.unlink(filler)
        a.pump(15.0, new=False)
        assert a.acked == a.made, "after space returned: acknowledged %d of %d" % (a.acked, a.made)
        assert tt.http_get(base + "/healthz")[0] == 200
        r = subprocess.run([BIN + "/tidectl", "--socket", sock, "--json", "series"],
                           capture_output=True, text=True, timeout=30)
        s = json.loads(r.stdout)["series"][0]
        assert s["points"]["raw"] == a.made * PER, (s, a.made)
        print("full disk: stuck at %d, resumed to %d batches, %d points stored once" %
              (stuck, a.made, s["points"]["raw"]))
        cp.terminate()
        assert cp.wait(timeout=30) == 0
        return 0


if __name__ == "__main__":
    sys.exit(main())
