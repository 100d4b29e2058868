# web_ui.py: the control plane's read-only web page in a real browser. A wire-protocol peer
# reports two days of per-minute traffic and pod utilization; a predictive workload is applied
# and fitted; GET / answers HTML whose server-rendered SVG plots the actual traffic, the
# forecast with its band, replicas by state and the decisions on one UTC time axis, with no
# script and nothing fetched from elsewhere. Headless Chromium (Debian's `chromium`) loads the
# page and takes a screenshot, which must show the plot: pixels of the forecast band, the
# forecast line, the traffic line and the online replicas (the PNG is decoded here, no PIL).
# Bad ?hours is a 400.
# timeout: 240
import json
import math
import os
import shutil
import struct
import subprocess
import sys
import time
import zlib

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tideproto as tp  # noqa: E402
import _tidetest as tt  # noqa: E402
from _tidetest import BIN  # noqa: E402

TOKEN = b"web-ui-token-0123456789abcdef0123"
SPEC = """apiVersion: tide/v1
kind: Workload
metadata: {name: shop}
spec:
  target: {kind: Deployment, name: shop}
  minReplicas: 1
  maxReplicas: 30
  metrics:
    utilization: {selector: 'web_cpu_percent', target: 60}
    traffic: [{name: requests, selector: 'web_requests_per_minute'}]
  providers:
    - {type: predictive, priority: 10, model: snaive-day, quantile: 0.9, reforecastSeconds: 60}
"""


def traffic(t):
    # a daily wave with a fast wobble the daily model cannot predict: the band has a width
    return 300 + 200 * math.sin(2 * math.pi * t / 86400) + 40 * math.sin(t * 0.37)


def png_pixels(path):
    """(width, height, rows of bytes RGBA or RGB, bytes per pixel) of an 8-bit PNG."""
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", "not a PNG"
    pos, idat, w = 8, b"", 0
    while pos < len(data):
        n, kind = struct.unpack(">I4s", data[pos:pos + 8])
        body = data[pos + 8:pos + 8 + n]
        if kind == b"IHDR":
            w, h, depth, ctype, _, _, interlace = struct.unpack(">IIBBBBB", body)
            assert depth == 8 and ctype in (2, 6) and interlace == 0, (depth, ctype, interlace)
            bpp = 4 if ctype == 6 else 3
        elif kind == b"IDAT":
            idat += body
        pos += 12 + n
    raw = zlib.decompress(idat)
    stride = w * bpp
    rows, prev = [], bytearray(stride)
    for y in range(h):
        f = raw[y * (stride + 1)]
        line = bytearray(raw[y * (stride + 1) + 1:(y + 1) * (stride + 1)])
        for x in range(stride):
            a = line[x - bpp] if x >= bpp else 0
            b = prev[x]
            c = prev[x - bpp] if x >= bpp else 0
            if f == 1:
                line[x] = (line[x] + a) & 255
            elif f == 2:
                line[x] = (line[x] + b) & 255
            elif f == 3:
                line[x] = (line[x] + (a + b) // 2) & 255
            elif f == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                line[x] = (line[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
        rows.append(line)
        prev = line
    return w, h, rows, bpp


def count_near(img, rgb, tol):
    w, h, rows, bpp = img
    n = 0
    for line in rows:
        for x in range(0, w * bpp, bpp):
            if abs(line[x] - rgb[0]) <= tol and abs(line[x + 1] - rgb[1]) <= tol and \
                    abs(line[x + 2] - rgb[2]) <= tol:
                n += 1
    return n


def main():
    browser = shutil.which("chromium")
    if not browser:
        print("skipped: chromium not installed")
        return 77
    with tt.Run(logs=("cp.log", "chromium.log")) as run:
        tok = run.token(TOKEN)
        lp, hp = tt.free_port(), tt.free_port()
        run.controlplane(tok, lp, hp)
        sock = run.path("cp.sock")
        tp.wait_for(lambda: os.path.exists(sock) and tt.port_open(hp), 20, "control plane")
        peer = tp.Peer(lp)
        ack = peer.handshake(TOKEN, "n1")
        assert ack is not None, "handshake refused"
        defs = [[1, {"__name__": "web_requests_per_minute"}]]
        defs += [[2 + i, {"__name__": "web_cpu_percent", "pod": "p%d" % i}] for i in range(4)]
        peer.send(tp.SERIES_DEF, s=defs)
        now = int(time.time()) // 60 * 60
        minutes = list(range(now - 2 * 86400, now, 60))
        seq = int(ack.get("last_seq", 0)) + 1
        for c in range(0, len(minutes), 720):
            chunk = minutes[c:c + 720]
            deltas = [0] + [60000] * (len(chunk) - 1)
            runs = [[1, chunk[0] * 1000, deltas, [traffic(t) for t in chunk]]]
            for i in range(4):
                runs.append([2 + i, chunk[0] * 1000, deltas, [traffic(t) / 2 for t in chunk]])
            peer.send(tp.SAMPLES, seq=seq, s=runs)
            seq += 1
        acked = 0
        while acked < seq - 1:
            m = peer.recv()
            assert m is not None, "control plane closed the connection"
            if m["t"] == tp.ACK:
                acked = m["ack"]
        ctl = [BIN + "/tidectl", "--socket", sock]
        with open(run.path("shop.yaml"), "w") as f:
            f.write(SPEC)
        r = subprocess.run(ctl + ["apply", "-f", run.path("shop.yaml")], capture_output=True,
                           text=True, timeout=30)
        assert r.returncode == 0, r.stderr

        def driven():
            d = json.loads(subprocess.run(ctl + ["describe", "shop", "--json"], capture_output=True,
                                          text=True, timeout=30).stdout or "{}")
            st = d.get("status", "")
            return st.startswith("predictive") and "fallback" not in st
        tp.wait_for(driven, 120, "forecast-driven portrait")
        base = "http://127.0.0.1:%d" % hp
        code, page = tt.http_get(base + "/?hours=24")
        assert code == 200, (code, page[:300])
        for want in ("<svg", "traffic (actual)", "forecast band (to p90)", "forecast (median)",
                     "replicas by state", ">online<", "time (UTC)", "requests per minute",
                     'href="#wl-shop"'):
            assert want in page, "page lacks " + want
        for bad in ("<script", "http://", "https://"):
            assert bad not in page.replace("http://www.w3.org/2000/svg", ""), "page has " + bad
        assert tt.http_get(base + "/?hours=0")[0] == 400
        assert tt.http_get(base + "/?hours=x")[0] == 400
        assert tt.http_get(base + "/ui")[0] == 200

        shot = run.path("page.png")
        env = dict(os.environ, HOME=run.w)
        with run.log("chromium.log") as log:
            r = subprocess.run([browser, "--headless", "--no-sandbox", "--disable-gpu",
                                "--disable-dev-shm-usage", "--hide-scrollbars",
                                "--user-data-dir=" + run.path("chrome"),
                                "--window-size=1300,1100", "--screenshot=" + shot,
                                base + "/?hours=1"], stdout=log, stderr=subprocess.STDOUT,
                               env=env, timeout=120)
        assert r.returncode == 0 and os.path.exists(shot), "chromium failed (rc %d)" % r.returncode
        if os.environ.get("TIDE_KEEP_SCREENSHOT"):
            shutil.copy(shot, os.environ["TIDE_KEEP_SCREENSHOT"])
        img = png_pixels(shot)
        assert img[0] >= 1200 and img[1] >= 1000, img[:2]
        band = count_near(img, (255, 227, 202), 8)     # #ff7f0e at 22 % on white
        orange = count_near(img, (255, 127, 14), 40)   # the forecast line
        black = count_near(img, (34, 34, 34), 30)      # the traffic line (and text)
        blue = count_near(img, (31, 95, 204), 40)      # online replicas
        print("screenshot %dx%d: band %d, forecast %d, dark %d, online %d px" % (
            img[0], img[1], band, orange, black, blue))
        assert band > 2000, "no forecast band in the screenshot"
        assert orange > 100, "no forecast line in the screenshot"
        assert blue > 30, "no replica line in the screenshot"
        assert black > 2000, "no traffic line in the screenshot"
        peer.close()
        print("web_ui: ok")
    return 0


if __name__ == "__main__":
    sys.exit(main())
