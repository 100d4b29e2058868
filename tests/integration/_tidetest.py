# _tidetest.py: what the Python integration tests share (import it; tests/run.sh does not run
# files starting with "_"): free loopback ports, HTTP GET, and a work directory whose processes
# are killed, and whose logs are shown when the test fails, on leaving it; tide-controlplane
# started the way every test starts it.
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _freeport as freeport  # noqa: E402

BIN = os.environ.get("TIDE_BIN", os.path.abspath("bin"))
SRC = os.environ.get("TIDE_SRC", os.path.abspath("."))


# For tests whose samples are stamped years ago (a fixed T0, a 1995 trace): the store keeps
# data for the retention counted from now, so without these they would be removed within a
# second or two.
LONG_RETENTION = ("--retention-raw", "300000h", "--retention-1m", "300000h",
                  "--retention-10m", "300000h")


def free_port():
    return freeport.free_port()


def port_open(port):
    try:
        socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
        return True
    except OSError:
        return False


def http_get(url, timeout=30):
    """(status, body text) of a GET; an HTTP error status is returned, not raised."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as r:
            return r.status, r.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


class Run:
    """A test's work directory (self.w) and the processes it starts:

        with Run(logs=("cp.log",)) as run:
            ...

    On leaving, every process still running is killed and reaped, the functions given to
    at_exit run (last first), and when the block raised, the last tail_chars of each named log
    in the work directory are printed; then the directory is removed."""

    def __init__(self, logs=("cp.log",), tail_chars=4000):
        self.w = tempfile.mkdtemp(prefix="tide-it.")
        self.procs = []
        self.logs = logs
        self.tail_chars = tail_chars
        self.exits = []

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        for p in self.procs:
            if p.poll() is None:
                p.kill()
                p.wait()
        if exc_type is not None:
            for name in self.logs:
                path = self.path(name)
                if os.path.exists(path):
                    print("== " + name)
                    print(open(path).read()[-self.tail_chars:])
        for fn in reversed(self.exits):
            fn()
        shutil.rmtree(self.w, ignore_errors=True)
        return False

    def path(self, *parts):
        return os.path.join(self.w, *parts)

    def at_exit(self, fn):
        self.exits.append(fn)

    def log(self, name):
        """The work directory's log NAME opened for writing (and reading back)."""
        return open(self.path(name), "w+")

    def spawn(self, args, log):
        """Starts args with stdout and stderr to the open file log; killed on leaving."""
        p = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT)
        self.procs.append(p)
        return p

    def token(self, token):
        """Writes the agent token (bytes) to the work directory, mode 0600; returns its path."""
        tok = self.path("token")
        with open(tok, "wb") as f:
            f.write(token + b"\n")
        os.chmod(tok, 0o600)
        return tok

    def controlplane(self, tok, listen, http, *extra, sock=None, data_dir=None, log=None):
        """Starts tide-controlplane on 127.0.0.1:listen (agents) and 127.0.0.1:http, ops socket
        sock (default cp.sock here), store in data_dir (default data here), token file tok,
        then the extra arguments; output to log (default cp.log here, appended)."""
        if log is None:
            log = open(self.path("cp.log"), "a+")
        return self.spawn([BIN + "/tide-controlplane", "--listen", "127.0.0.1:%d" % listen,
                           "--socket", sock or self.path("cp.sock"), "--token-file", tok,
                           "--data-dir", data_dir or self.path("data"),
                           "--http", "127.0.0.1:%d" % http] + list(extra), log)
