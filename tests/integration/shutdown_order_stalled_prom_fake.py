# shutdown_order_stalled_prom_fake.py: the module order at shutdown. The control plane reads a
# workload's metrics through a Prometheus that accepts the request and never answers (a fake:
# a loopback socket that reads the request and stays silent, as a hung Prometheus does), so the
# workloads' fetch thread is inside a query when SIGTERM arrives. The Prometheus client module
# must start before its users (status lists the modules in start order) and be freed only after
# they have cancelled and joined their threads: freeing it under a running query aborts the
# daemon (prom_free), and under ASan/valgrind a use after free is reported. Checks: start order,
# exit status 0 within seconds, the request cancelled, no sanitizer report.
# timeout: 60
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _freeport as freeport  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
TOKEN = b"shutdown-order-token-0123456789ab"

SPEC = """apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target: {kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 10
  metrics:
    utilization: {selector: 'app_cpu_percent{app="web"}', target: 60}
  providers:
    - {type: reactive, priority: 10}
  behavior: {syncPeriodSeconds: 1}
"""


class Silent:
    """Accepts connections on loopback, reads the requests, never answers."""

    def __init__(self):
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.conns = []
        self.requests = 0
        self.lock = threading.Lock()
        self.stop = False
        threading.Thread(target=self.serve, daemon=True).start()

    def serve(self):
        self.sock.settimeout(0.2)
        while not self.stop:
            try:
                c, _ = self.sock.accept()
            except OSError:
                continue
            with self.lock:
                self.conns.append(c)
            threading.Thread(target=self.read, args=(c,), daemon=True).start()

    def read(self, c):
        try:
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = c.recv(4096)
                if not chunk:
                    return
                data += chunk
            with self.lock:
                self.requests += 1
            while c.recv(4096):
                pass
        except OSError:
            pass

    def close(self):
        self.stop = True
        with self.lock:
            for c in self.conns:
                try:
                    c.close()
                except OSError:
                    pass
        self.sock.close()


def free_port():
    return freeport.free_port()


def main():
    w = tempfile.mkdtemp(prefix="tide-it.")
    silent = Silent()
    cp = None
    ok = False
    try:
        tok = os.path.join(w, "token")
        with open(tok, "wb") as f:
            f.write(TOKEN + b"\n")
        os.chmod(tok, 0o600)
        ap, hp, sock = free_port(), free_port(), os.path.join(w, "cp.sock")
        cplog = open(os.path.join(w, "cp.log"), "w+")
        # a long timeout: the query is still waiting for Prometheus when SIGTERM comes
        cp = subprocess.Popen(
            [BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % ap, "--socket", sock,
             "--token-file", tok, "--data-dir", w + "/data", "--http", "127.0.0.1:%d" % hp,
             "--prometheus", "http://127.0.0.1:%d" % silent.port, "--prometheus-timeout", "30s",
             "--log-level", "debug"],
            stdout=cplog, stderr=subprocess.STDOUT)
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")
        ctl = [BIN + "/tidectl", "--socket", sock]
        st = subprocess.run(ctl + ["status", "--json"], capture_output=True, text=True,
                            timeout=10)
        assert st.returncode == 0, st
        mods = json.loads(st.stdout)["modules"]
        for user in ("http", "workloads"):
            assert mods.index("prometheus") < mods.index(user), mods
        spec = os.path.join(w, "web.yaml")
        with open(spec, "w") as f:
            f.write(SPEC)
        out = subprocess.run(ctl + ["apply", "-f", spec], capture_output=True, text=True,
                             timeout=10)
        assert out.returncode == 0 and "created" in out.stdout, out
        # the fetch thread's request has reached the silent Prometheus: it is mid-request
        tp.wait_for(lambda: silent.requests > 0, 20, "the fetch's request at Prometheus")
        t0 = time.time()
        cp.terminate()
        rc = cp.wait(20)
        took = time.time() - t0
        cplog.seek(0)
        log = cplog.read()
        assert rc == 0, "control plane exited with %d" % rc
        for bad in ("AddressSanitizer", "runtime error", "prom_free:", "LeakSanitizer"):
            assert bad not in log, "%s in the control plane's log" % bad
        # the query under way is cancelled, not waited for (30 s timeout, retries)
        assert took < 10, "control plane took %.2f s to stop" % took
        assert "cancelled 1 request in flight" in log, "no cancelled request in the log"
        stops = [l.split("module ")[1].split()[0] for l in log.splitlines()
                 if "module " in l and l.rstrip().endswith(" stopped")]
        for user in ("http", "workloads"):
            assert stops.index(user) < stops.index("prometheus"), stops
        print("modules start %s, stop %s; stopped in %.2f s with a query in flight"
              % (",".join(mods), ",".join(stops), took))
        cp = None
        ok = True
    finally:
        if cp is not None:
            cp.terminate()
            try:
                cp.wait(10)
            except subprocess.TimeoutExpired:
                cp.kill()
                cp.wait()
        silent.close()
        if not ok:
            path = os.path.join(w, "cp.log")
            if os.path.exists(path):
                print("== cp.log")
                print(open(path).read()[-4000:])
        shutil.rmtree(w, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
