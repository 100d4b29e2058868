# ops_offloop_parse.py: hostile large requests are parsed off the event loop. Two clients keep
# sending 256 KiB workload specs (nested 60 deep, thousands of times), one 8 MiB JSON requests;
# meanwhile `status` is answered, and some of those answers report a spec parse or a JSON
# parse still under way: the loop answered while the parse ran on a worker. A request with
# more JSON values than any command takes is refused before it is parsed. Latencies are
# printed as figures, never asserted.
# timeout: 90
import json
import os
import socket
import struct
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402

TOKEN = b"ops-offloop-token-0123456789ab"


def call(path, obj=None, raw=None, timeout=60):
    s = socket.socket(socket.AF_UNIX)
    s.settimeout(timeout)
    s.connect(path)
    body = raw if raw is not None else json.dumps(obj).encode()
    s.sendall(struct.pack(">I", len(body)) + body)
    buf = b""
    while len(buf) < 4 or len(buf) < 4 + struct.unpack(">I", buf[:4])[0]:
        d = s.recv(1 << 20)
        assert d, "ops socket closed without an answer"
        buf += d
    s.close()
    return json.loads(buf[4:])


def hostile_spec():
    """256 KiB of YAML: a list of 60-deep nested sequences (under the 64-level cap)."""
    item = "[" * 60 + "]" * 60
    n = (256 << 10) // (len(item) + 7)
    return "apiVersion: tide/v1\nkind: Workload\nmetadata:\n  name: hostile\nspec:\n  junk:\n" + \
        "".join("    - %s\n" % item for _ in range(n))


def main():
    with tt.Run() as run:
        tok = run.token(TOKEN)
        sock = run.path("cp.sock")
        cp = run.controlplane(tok, tt.free_port(), tt.free_port())
        tp.wait_for(lambda: os.path.exists(sock), 20, "ops socket")

        def status():
            t0 = time.monotonic()
            r = call(sock, {"cmd": "status"}, timeout=30)
            assert r["ok"], r
            return time.monotonic() - t0, r["data"]

        idle = sorted(status()[0] for _ in range(20))

        # refused before parsing: more values than any command takes
        many = b'{"cmd":"status","args":{"x":[' + b"0," * 200000 + b'0]}}'
        r = call(sock, raw=many)
        assert not r["ok"] and "more than 100000 JSON values" in r["error"], r

        spec = hostile_spec()
        big = {"cmd": "status", "args": {"pad": "p" * (8 * (1 << 20) - 200)}}
        stop = threading.Event()
        errors, answers = [], {"apply": 0, "json": 0}

        def flood(kind):
            try:
                while not stop.is_set():
                    if kind == "apply":
                        r = call(sock, {"cmd": "workload-apply", "args": {"yaml": spec}})
                        assert not r["ok"] and ("invalid workload spec" in r["error"] or
                                                "try again" in r["error"]), r
                    else:
                        r = call(sock, big)
                        assert r["ok"] or "try again" in r["error"], r
                    answers[kind] += 1
            except Exception as e:  # noqa: BLE001 - reported by the main thread
                errors.append("%s: %r" % (kind, e))

        threads = [threading.Thread(target=flood, args=(k,), daemon=True)
                   for k in ("apply", "apply", "json")]
        for t in threads:
            t.start()
        seen = {"workload_applies_pending": 0, "ops_parses_pending": 0}
        lat = []
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and not errors and \
                (min(seen.values()) < 1 or len(lat) < 20):
            dt, d = status()
            lat.append(dt)
            for k in seen:
                if d.get(k, 0) >= 1:
                    seen[k] += 1
            time.sleep(0.02)
        stop.set()
        for t in threads:
            t.join(60)
        assert not errors, errors
        assert seen["workload_applies_pending"] >= 1, seen
        assert seen["ops_parses_pending"] >= 1, seen
        lat.sort()
        print("status answered %d times while hostile requests ran (%d specs, %d 8 MiB requests "
              "answered); %d answers saw a spec parse and %d a JSON parse under way" %
              (len(lat), answers["apply"], answers["json"], seen["workload_applies_pending"],
               seen["ops_parses_pending"]))
        print("status latency: idle median %.1f ms max %.1f ms; under the flood median %.1f ms "
              "p90 %.1f ms max %.1f ms" %
              (idle[len(idle) // 2] * 1e3, idle[-1] * 1e3, lat[len(lat) // 2] * 1e3,
               lat[int(len(lat) * 0.9)] * 1e3, lat[-1] * 1e3))
        cp.terminate()
        assert cp.wait(30) == 0
    print("ops_offloop_parse: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
