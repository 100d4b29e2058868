"""Free loopback TCP ports for tests, never the same one twice to concurrent tests.

Binding port 0 and closing lets the kernel hand the same port to the next caller (two calls in
one test got one port: "address already in use" for the second daemon), and a port from the
ephemeral range can be taken meanwhile by any outgoing connection. So a port is drawn at random
below the ephemeral range, claimed by creating /tmp/tide-test-ports/PORT exclusively (a claim
every test process of the run sees; claims older than CLAIM_TTL seconds are taken back), and
checked bindable. As a script it prints one port, or with --block N the first of N consecutive
ones (tests/integration/lib.sh and tests/bench/e2e.sh use it)."""
import os
import random
import socket
import time

CLAIMS = "/tmp/tide-test-ports"
CLAIM_TTL = 2 * 3600  # longer than any test or bench holds a port
LOW = 20000


def _range():
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as f:
            eph_low = int(f.read().split()[0])
    except (OSError, ValueError, IndexError):
        eph_low = 32768
    if eph_low - LOW >= 2000:
        return LOW, eph_low - 1
    return 1024 + 1000, max(eph_low - 1, 4000)


def _claim(port):
    path = os.path.join(CLAIMS, str(port))
    try:
        os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644))
        return True
    except FileExistsError:
        try:
            if time.time() - os.stat(path).st_mtime > CLAIM_TTL:
                os.unlink(path)  # stale: free again for a later draw
        except OSError:
            pass
        return False


def _bindable(port):
    s = socket.socket()
    try:
        s.bind(("127.0.0.1", port))
        return True
    except OSError:
        return False
    finally:
        s.close()


def free_ports(n):
    """The first of n consecutive free ports, all claimed (replica slots take a block)."""
    os.makedirs(CLAIMS, exist_ok=True)
    lo, hi = _range()
    rng = random.SystemRandom()
    for _ in range(2000):
        b = rng.randint(lo, hi - n + 1)
        got = []
        for p in range(b, b + n):
            if not _claim(p):
                break
            got.append(p)
        if len(got) == n and all(_bindable(p) for p in got):
            return b
        for p in got:  # not all of the block: give back what this draw claimed
            try:
                os.unlink(os.path.join(CLAIMS, str(p)))
            except OSError:
                pass
    raise RuntimeError("no %d free loopback ports in a row in %d-%d (claims in %s)"
                       % (n, lo, hi, CLAIMS))


def free_port():
    return free_ports(1)


if __name__ == "__main__":
    # freeport.py [--block N]: one free port, or the first of N consecutive ones
    import sys
    n = int(sys.argv[2]) if len(sys.argv) == 3 and sys.argv[1] == "--block" else 1
    print(free_ports(n))
