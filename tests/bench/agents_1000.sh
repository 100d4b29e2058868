#!/usr/bin/env bash
# agents_1000.sh: 1,000 agent connections (a Python driver speaking the wire protocol:
# handshake, then a HEARTBEAT every 5 s each, staggered) to one control plane on loopback.
# Measures the control plane's resident memory and its CPU use over a 20 s idle window.
# Goals: RSS < 50 MB, CPU < 5% of one core.
set -euo pipefail
cd "$(dirname "$0")/../.."
BIN=${TIDE_BIN:-$(pwd)/bin}
N=${AGENTS:-1000}
W=$(mktemp -d /tmp/tide-bench.XXXXXX)
CP= DRV=
cleanup() {
    [ -n "$DRV" ] && kill "$DRV" 2>/dev/null || true
    [ -n "$CP" ] && kill -TERM "$CP" 2>/dev/null && wait "$CP" 2>/dev/null || true
    rm -rf "$W"
}
trap cleanup EXIT
ulimit -n 8192  # 1,000 connections need more than the default 1024 descriptors
printf 'agents-1000-token-0123456789abcdef\n' > "$W/token"; chmod 600 "$W/token"
free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
P=$(free_port)
"$BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" --token-file "$W/token" \
    --data-dir "$W/data" --http 127.0.0.1:$(free_port) --log-level warn > "$W/cp.log" 2>&1 &
CP=$!
for i in $(seq 100); do [ -S "$W/cp.sock" ] && break; sleep 0.1; done

cat > "$W/driver.py" <<'PY'
import os, random, selectors, socket, sys, time
sys.path.insert(0, os.environ["TIDE_SRC"] + "/tests/integration")
import tideproto as tp
port, n, token = int(sys.argv[1]), int(sys.argv[2]), open(sys.argv[3], "rb").read().strip()
peers = []
for i in range(n):
    p = tp.Peer(port)
    assert p.handshake(token, "bench-%04d" % i) is not None
    p.sock.setblocking(False)
    peers.append(p)
print("connected", len(peers), flush=True)
due = [time.monotonic() + random.uniform(0, 5) for _ in peers]
sel = selectors.DefaultSelector()
for p in peers:
    sel.register(p.sock, selectors.EVENT_READ, p)
while True:
    now = time.monotonic()
    for i, p in enumerate(peers):
        if due[i] <= now:
            p.send(tp.HEARTBEAT, ts=int(time.time() * 1000), spool_drops=0, queued=0)
            due[i] = now + 5
    for key, _ in sel.select(timeout=0.05):
        if not key.fileobj.recv(65536):
            print("closed by the control plane", flush=True)
            sys.exit(1)
PY
TIDE_SRC=$(pwd) /usr/bin/python3 "$W/driver.py" $P $N "$W/token" > "$W/driver.log" 2>&1 &
DRV=$!
for i in $(seq 600); do grep -q connected "$W/driver.log" 2>/dev/null && break; sleep 0.1; done
grep -q connected "$W/driver.log" || { echo "driver failed:"; cat "$W/driver.log"; exit 1; }
connected=$("$BIN/tidectl" --socket "$W/cp.sock" --json status | /usr/bin/python3 -c \
    'import json,sys; print(json.load(sys.stdin)["agents"]["agents_connected"])')
ticks() { awk '{print $14 + $15}' /proc/$CP/stat; }
HZ=$(getconf CLK_TCK)
sleep 2  # settle after the connection burst
t0=$(ticks); s0=$(date +%s%N)
sleep 20
t1=$(ticks); s1=$(date +%s%N)
rss_kb=$(awk '/^VmRSS/{print $2}' /proc/$CP/status)
hwm_kb=$(awk '/^VmHWM/{print $2}' /proc/$CP/status)
cpu_pct=$(/usr/bin/python3 -c "print('%.2f' % (100.0 * ($t1 - $t0) / $HZ / (($s1 - $s0) / 1e9)))")
beats=$("$BIN/tidectl" --socket "$W/cp.sock" --json agents | /usr/bin/python3 -c \
    'import json,sys; print(sum(1 for r in json.load(sys.stdin) if r["last_heartbeat"] > 0))')
echo "agents_1000: $connected agents connected, $beats heartbeating"
echo "agents_1000: control plane RSS $((rss_kb / 1024)) MB (peak $((hwm_kb / 1024)) MB), goal < 50 MB"
echo "agents_1000: control plane CPU ${cpu_pct}% of one core over 20 s idle, goal < 5%"
ok=1
[ "$connected" -eq "$N" ] || ok=0
[ "$rss_kb" -lt $((50 * 1024)) ] || ok=0
/usr/bin/python3 -c "import sys; sys.exit(0 if $cpu_pct < 5 else 1)" || ok=0
[ $ok -eq 1 ] && echo "agents_1000: goals met" || { echo "agents_1000: goals NOT met"; exit 1; }
