# store_wal_bitflip.py (issue 18 item 5): one flipped bit in the length field of a WAL record in
# the middle of the log used to be taken for a torn tail: start-up dropped every acknowledged
# sample after it, truncated the WAL and wrote a snapshot. Now: the control plane refuses to
# start, names the damage and changes no file; `tidectl store verify` reports it (exit 1);
# `tidectl store repair` writes every intact record into a new directory and reports exactly
# the one record lost; the control plane starts on that directory with every other
# acknowledged sample present exactly once.
# timeout: 120
import hashlib
import json
import os
import struct
import subprocess
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"store-bitflip-token-0123456789abcdef"
NSERIES = 3
PER_BATCH = 10
NBATCHES = 300
T0 = 1700000000000


def digest(d):
    h = {}
    for name in sorted(os.listdir(d)):
        p = os.path.join(d, name)
        if os.path.isfile(p) and name != "LOCK":
            h[name] = hashlib.sha256(open(p, "rb").read()).hexdigest()
    return h


def tidectl(*args):
    return subprocess.run([BIN + "/tidectl"] + list(args), capture_output=True, text=True,
                          timeout=60)


def raw_points(sock):
    r = tidectl("--socket", sock, "--json", "series", "--match", "flip_test")
    assert r.returncode == 0, r.stderr
    return sum(s["points"]["raw"] for s in json.loads(r.stdout)["series"])


def main():
    with tt.Run() as run:
        tok = run.token(TOKEN)
        ap, hp = tt.free_port(), tt.free_port()
        data, sock = run.path("data"), run.path("cp.sock")
        cp = run.controlplane(tok, ap, hp, *tt.LONG_RETENTION, "--snapshot-interval", "1h")
        tp.wait_for(lambda: tt.port_open(ap), 30, "control plane listening")
        peer = tp.Peer(ap, timeout=10)
        assert peer.handshake(TOKEN, "flip-node") is not None
        peer.send(tp.SERIES_DEF, s=[[s + 1, {"__name__": "flip_test", "s": str(s)}]
                                    for s in range(NSERIES)])
        acked = 0
        for seq in range(1, NBATCHES + 1):
            first = (seq - 1) * PER_BATCH
            peer.send(tp.SAMPLES, seq=seq, s=[[s + 1, T0 + first * 1000,
                                               [0] + [1000] * (PER_BATCH - 1),
                                               [float(first + k) for k in range(PER_BATCH)]]
                                              for s in range(NSERIES)])
            if seq % 20 == 0 or seq == NBATCHES:  # pace: wait for the acknowledgement
                while acked < seq:
                    m = peer.recv()
                    assert m is not None, "connection closed"
                    if m["t"] == tp.ACK:
                        acked = max(acked, m["ack"])
        peer.close()
        total = NSERIES * NBATCHES * PER_BATCH
        assert raw_points(sock) == total
        cp.kill()  # no snapshot at exit: everything is in the WAL
        cp.wait()

        segs = sorted(n for n in os.listdir(data) if n.startswith("wal-"))
        assert segs and not [n for n in os.listdir(data) if n.endswith(".snap")], os.listdir(data)
        seg = os.path.join(data, segs[0])
        buf = bytearray(open(seg, "rb").read())
        assert buf[:8] == b"TIDEWAL\x02", buf[:8]
        # the records: pick a SAMPLES record (type 2) half-way through
        offs, off = [], 8
        while off + 12 <= len(buf):
            (ln,) = struct.unpack_from("<I", buf, off)
            offs.append((off, ln, buf[off + 12]))
            off += 12 + ln
        target = [o for o in offs[len(offs) // 2:] if o[2] == 2][0]
        off, ln, _ = target
        # SAMPLES payload: type, u32 id, u16 source len, source, u64 seq, u32 count, samples
        (slen,) = struct.unpack_from("<H", buf, off + 12 + 5)
        (nsamples,) = struct.unpack_from("<I", buf, off + 12 + 7 + slen + 8)
        assert nsamples == PER_BATCH, nsamples
        buf[off + 1] ^= 0x08  # one bit of the length field
        open(seg, "wb").write(buf)
        before = digest(data)

        log = run.log("cp2.log")
        cp = run.controlplane(tok, tt.free_port(), tt.free_port(), *tt.LONG_RETENTION, log=log)
        rc = cp.wait(timeout=60)
        log.seek(0)
        out = log.read()
        assert rc != 0, "started on a damaged WAL:\n" + out
        assert "corrupt record at offset %d" % off in out, out
        assert "not a torn write" in out and "tidectl store repair" in out, out
        assert digest(data) == before, "the damaged directory was changed"
        print("start-up refused:", [ln_ for ln_ in out.splitlines() if "corrupt" in ln_][0])

        r = tidectl("store", "verify", data)
        assert r.returncode == 1, (r.returncode, r.stdout, r.stderr)
        assert "LOST" in r.stdout, r.stdout
        print(r.stdout.strip())
        new = run.path("repaired")
        r = tidectl("--json", "store", "repair", data, new)
        assert r.returncode == 0, (r.returncode, r.stdout, r.stderr)
        rep = json.loads(r.stdout)
        assert rep["lost_data"] and rep["damaged_regions"] == 1, rep
        assert rep["bytes_lost"] == 12 + ln, (rep, ln)
        assert rep["samples"] == total - nsamples, rep
        assert digest(data) == before, "repair changed the damaged directory"

        hp2 = tt.free_port()
        cp = run.controlplane(tok, tt.free_port(), hp2, *tt.LONG_RETENTION, data_dir=new, log=run.log("cp3.log"))
        tp.wait_for(lambda: os.path.exists(sock) and tidectl("--socket", sock, "status")
                    .returncode == 0, 30, "control plane on the repaired directory")
        got = raw_points(sock)
        assert got == total - nsamples, (got, total - nsamples)
        print("repaired: %d of %d samples, the %d of the one damaged record lost" %
              (got, total, nsamples))
        cp.terminate()
        assert cp.wait(timeout=30) == 0
        return 0


if __name__ == "__main__":
    sys.exit(main())
