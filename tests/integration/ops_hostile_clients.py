# ops_hostile_clients.py (issue 18, smaller ones): 70 ops clients each holding half a request
# locked tidectl out (the idle timer restarted on every byte); a NUL in the ops "cmd" ran
# `status`; error replies echoed invalid UTF-8 inside JSON; 60 MB ops frames were buffered; a POST form field over 1 MiB reset the HTTP
# connection. Now: clients holding half a request give way to new ones (and are closed 10 s
# after their first byte), NULs are refused, error replies are valid UTF-8, request frames over 8 MiB are refused before
# they are read, and the big form field gets a 400.
# timeout: 120
import json
import os
import socket
import struct
import subprocess
import sys
import urllib.error
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402
from _tidetest import BIN  # noqa: E402


def ops(sock_path):
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(10)
    s.connect(sock_path)
    return s


def request(s, raw):
    s.sendall(struct.pack(">I", len(raw)) + raw)
    hdr = b""
    while len(hdr) < 4:
        d = s.recv(4 - len(hdr))
        if not d:
            return None
        hdr += d
    (n,) = struct.unpack(">I", hdr)
    body = b""
    while len(body) < n:
        d = s.recv(n - len(body))
        assert d, "short reply"
        body += d
    return json.loads(body)


def main():
    with tt.Run() as run:
        cp = h.CP(run)
        half = []
        for _ in range(70):
            try:
                s = ops(cp.sock)
                s.sendall(struct.pack(">I", 100) + b'{"cmd": "st')
                half.append(s)
            except OSError:
                pass
        r = subprocess.run([BIN + "/tidectl", "--socket", cp.sock, "status"],
                           capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, "tidectl locked out: %s" % r.stderr
        assert "holding half a request" in cp.log_text()
        # NUL in the command (escaped and raw)
        s = ops(cp.sock)
        rep = request(s, b'{"cmd": "sta\\u0000tus"}')
        assert rep and rep.get("error") and "NUL" in rep["error"], rep
        rep = request(s, b'{"cmd": "status\x00"}')
        assert rep and rep.get("error") and "NUL" in rep["error"], rep
        rep = request(s, b'{"cmd": "\xff\xfeboom\xc0\xaf"}')  # invalid UTF-8, echoed back
        assert rep and rep["error"] == "unknown command '??boom??'", rep
        rep = request(s, b'{"cmd": "status", "args": {"x": "a\\\\u0000b"}}')  # not a NUL
        assert rep and "error" not in rep, rep
        s.close()
        # a 60 MB frame is refused at its header
        s = ops(cp.sock)
        s.sendall(struct.pack(">I", 60 << 20) + b"{")
        try:
            assert s.recv(4096) == b"", "a 60 MB frame was read"
        except ConnectionResetError:
            pass
        assert "request frame of length 62914560" in cp.log_text()
        for x in half:
            x.close()
        # HTTP: a form field over 1 MiB is a 400
        body = b"query=" + b"a" * ((1 << 20) + 10)
        req = urllib.request.Request("http://127.0.0.1:%d/api/v1/query" % cp.http, data=body,
                                     headers={"Content-Type":
                                              "application/x-www-form-urlencoded"})
        try:
            urllib.request.urlopen(req, timeout=30)
            raise AssertionError("a 1 MiB form field was accepted")
        except urllib.error.HTTPError as e:
            assert e.code == 400, e.code
            assert b"larger than 1 MiB" in e.read()
        print("half-request clients gave way to tidectl; NUL and 60 MB frames refused; "
              "big form field: 400")
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
