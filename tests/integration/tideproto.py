# tideproto.py: a minimal Python peer of the Tide wire protocol (shared/PROTOCOL.md) for
# integration tests: an honest agent handshake, and raw frames for misbehaving on purpose.
import hashlib
import hmac
import os
import socket
import struct
import time

import msgpack

HELLO, HELLO_ACK, SERIES_DEF, SAMPLES, ACK, COMMAND, COMMAND_RESULT, HEARTBEAT = range(1, 9)


def frame(obj):
    payload = msgpack.packb(obj, use_bin_type=True)
    return struct.pack(">I", len(payload)) + payload


def mac(token, role, na, nb, node):
    return hmac.new(token, role.encode() + b"\0" + na + nb + node.encode(), hashlib.sha256).digest()


class Peer:
    def __init__(self, port, timeout=10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""
        self.seq = 0

    def send_raw(self, data):
        self.sock.sendall(data)

    def send(self, t, **fields):
        self.seq += 1
        m = {"v": 1, "t": t, "seq": fields.pop("seq", self.seq)}
        m.update(fields)
        self.send_raw(frame(m))

    def recv(self):
        """Next message as a dict, or None when the peer closed the connection."""
        while True:
            if len(self.buf) >= 4:
                n = struct.unpack(">I", self.buf[:4])[0]
                if len(self.buf) >= 4 + n:
                    m = msgpack.unpackb(self.buf[4:4 + n], raw=False)
                    self.buf = self.buf[4 + n:]
                    return m
            try:
                d = self.sock.recv(65536)
            except ConnectionResetError:
                return None
            if not d:
                return None
            self.buf += d

    def wait_closed(self, timeout):
        """True when the other side closes within timeout seconds (messages are discarded)."""
        self.sock.settimeout(timeout)
        try:
            while self.recv() is not None:
                pass
            return True
        except socket.timeout:
            return False

    def handshake(self, token, node, version="pytest 1"):
        ch = self.recv()
        assert ch and ch["t"] == HELLO and ch["role"] == "controlplane", ch
        na = os.urandom(32)
        self.send(HELLO, role="agent", node=node, version=version, nonce=na,
                  mac=mac(token, "agent", ch["nonce"], na, node))
        ack = self.recv()
        if ack is None:
            return None
        assert ack["t"] == HELLO_ACK, ack
        assert ack["mac"] == mac(token, "controlplane", na, ch["nonce"], node), "control plane MAC"
        return ack

    def close(self):
        self.sock.close()


def wait_for(pred, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(0.05)
    raise AssertionError("timed out waiting for " + what)


if __name__ == "__main__":
    # Run by tests/run.sh like any *.py here: checks the helper itself, so that the tests built
    # on it fail for the right reason. HMAC-SHA256 test case 2 of RFC 4231, then a frame.
    assert hmac.new(b"Jefe", b"what do ya want for nothing?", hashlib.sha256).hexdigest() == \
        "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
    f = frame({"v": 1, "t": HEARTBEAT, "seq": 7})
    assert struct.unpack(">I", f[:4])[0] == len(f) - 4
    assert msgpack.unpackb(f[4:]) == {"v": 1, "t": HEARTBEAT, "seq": 7}
    assert mac(b"k" * 16, "agent", b"a" * 32, b"b" * 32, "n") != \
        mac(b"k" * 16, "controlplane", b"a" * 32, b"b" * 32, "n")
    print("tideproto: ok")
