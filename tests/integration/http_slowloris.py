# http_slowloris.py (issue 18 item 3): 64 connections sending one byte a second held every
# libmicrohttpd slot (60 s inactivity timeout) and /healthz timed out. Now one address holds
# at most http_max_connections_per_address, a connection that has not delivered a whole request
# within http_request_timeout is closed (however steadily it trickles), and the liveness
# listener (health_listen) answers throughout.
# timeout: 120
import os
import socket
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
import _hostile as h  # noqa: E402

REQ = b"GET /api/v1/labels HTTP/1.1\r\nHost: x\r\nX-Slow: " + b"a" * 200 + b"\r\n\r\n"


def get(port, path, timeout):
    with urllib.request.urlopen("http://127.0.0.1:%d%s" % (port, path), timeout=timeout) as f:
        return f.status, f.read()


def main():
    with tt.Run() as run:
        hp = tt.free_port()
        cp = h.CP(run, "--health-listen", "127.0.0.1:%d" % hp, "--http-request-timeout", "3s",
                  "--http-max-connections-per-address", "16")
        socks = []
        for _ in range(64):
            s = socket.create_connection(("127.0.0.1", cp.http), timeout=5)
            s.setblocking(False)
            socks.append(s)
        start = time.time()
        open_ = list(socks)
        closed_at = {}
        pos = 0
        health_ok = 0
        while open_ and time.time() - start < 30:
            # one byte from every connection still open, twice a second
            for s in list(open_):
                try:
                    s.send(REQ[pos:pos + 1])
                    d = s.recv(4096)
                    if d == b"":
                        raise ConnectionResetError
                except BlockingIOError:
                    continue
                except (ConnectionResetError, BrokenPipeError):
                    closed_at[s] = time.time() - start
                    open_.remove(s)
            pos = min(pos + 1, len(REQ) - 5)  # never completes the request
            st, body = get(hp, "/healthz", 5)  # the probe is never starved
            assert st == 200 and body == b"ok\n", (st, body)
            health_ok += 1
            time.sleep(0.5)
        assert not open_, "%d slow connections still open after 30 s" % len(open_)
        early = [t for t in closed_at.values() if t < 1.0]
        late = [t for t in closed_at.values() if t >= 1.0]
        assert len(early) >= 64 - 16, "only %d connections over the per-address limit refused" \
            % len(early)
        assert late and max(late) < 3 + 5, "slow connections lived %.1f s" % max(late)
        assert cp.metric("tide_http_request_timeouts_total") >= len(late)
        # and the API listener serves again
        st, _ = get(cp.http, "/healthz", 5)
        assert st == 200
        print("64 slowloris connections: %d refused at once, %d cut at %.1f-%.1f s; "
              "/healthz answered %d times meanwhile" %
              (len(early), len(late), min(late), max(late), health_ok))
        for s in socks:
            s.close()
        cp.stop()
        return 0


if __name__ == "__main__":
    sys.exit(main())
