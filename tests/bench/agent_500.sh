#!/usr/bin/env bash
# agent_500.sh: the real tide-agent sampling 500 real cgroups every second and reporting to a
# real control plane on loopback. Measures the agent's CPU share of one core over the window
# (utime + stime of the agent process from /proc/PID/stat, the numbers getrusage() reports for
# it; goal <= 0.5%), its resident memory (VmRSS and peak VmHWM; goal < 10 MB), and the
# per-cgroup cost. Window: TIDE_BENCH_SECONDS (default 60) after a 5 s warm-up.
# Cgroups: /tide-bench-agent-PID/cN in cpu, cpuacct, pids, v2 and memory (below this shell's
# own memory cgroup, as on this host); removed at exit, also on failure.
set -u
: "${TIDE_BIN:=$(pwd)/bin}"
SECS=${TIDE_BENCH_SECONDS:-60}
N=${TIDE_BENCH_CGROUPS:-500}
R=/sys/fs/cgroup
if [ ! -w "$R/cpuacct" ]; then echo "agent_500: skipped (cgroup v1 cpuacct not writable)"; exit 0; fi
MEMSELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMSELF" = / ] && MEMSELF=
T=tide-bench-agent-$$
W=$(mktemp -d /tmp/tide-bench.XXXXXX)
DIRS=()
for h in "$R/cpuacct" "$R/cpu" "$R/pids" "$R/unified" "$R/memory$MEMSELF"; do [ -d "$h" ] && DIRS+=("$h/$T"); done
PIDS=()
cleanup() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    for d in "${DIRS[@]}"; do
        [ -d "$d" ] || continue
        for i in $(seq 1 "$N"); do rmdir "$d/c$i" 2>/dev/null; done
        rmdir "$d" 2>/dev/null
    done
    rm -rf "$W"
}
trap cleanup EXIT
trap 'exit 143' TERM INT
for d in "${DIRS[@]}"; do
    mkdir "$d" || exit 1
    for i in $(seq 1 "$N"); do mkdir "$d/c$i"; done
done
port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
printf 'bench-token-0123456789abcdef\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
"$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" --token-file "$W/token" \
    --data-dir "$W/data" --http 127.0.0.1:0 --log-level warn > "$W/cp.log" 2>&1 &
PIDS+=($!)
for _ in $(seq 1 200); do [ -S "$W/cp.sock" ] && break; sleep 0.05; done
"$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node bench --token-file "$W/token" --interval 1s \
    --cgroup-roots /$T --cgroup-prefix memory=${MEMSELF:-/} --log-level warn ${TIDE_BENCH_AGENT_ARGS:-} > "$W/agent.log" 2>&1 &
AG=$!
PIDS+=($AG)
sleep 5
ticks() { awk '{print $14 + $15}' "/proc/$AG/stat"; }
uticks() { awk '{print $14}' "/proc/$AG/stat"; }
HZ=$(getconf CLK_TCK)
t0=$(date +%s.%N); c0=$(ticks); u0=$(uticks)
sleep "$SECS"
t1=$(date +%s.%N); c1=$(ticks); u1=$(uticks)
rss=$(awk '/^VmRSS/{print $2}' "/proc/$AG/status"); hwm=$(awk '/^VmHWM/{print $2}' "/proc/$AG/status")
anon=$(awk '/^RssAnon/{print $2}' "/proc/$AG/status"); pss=$(awk '/^Pss:/{print $2}' "/proc/$AG/smaps_rollup")
samples=$("$TIDE_BIN/tidectl" --socket "$W/cp.sock" agents --json | /usr/bin/python3 -c "import json,sys
print([r for r in json.load(sys.stdin) if r['node']=='bench'][0]['samples'])")
/usr/bin/python3 - "$t0" "$t1" "$c0" "$c1" "$HZ" "$N" "$rss" "$hwm" "$samples" "$anon" "$pss" "$u0" "$u1" <<'PY'
import sys
t0, t1, c0, c1, hz, n, rss, hwm, samples, anon, pss, u0, u1 = map(float, sys.argv[1:])
wall = t1 - t0
cpu = (c1 - c0) / hz
print(f"agent_500: {n:.0f} cgroups at 1 s for {wall:.0f} s: agent CPU {cpu*100/wall:.3f}% of one core "
      f"(goal <= 0.5%; {cpu*1e6/wall/max(n, 1):.1f} us per cgroup per second, {(u1-u0)/max(c1-c0,1)*100:.0f}% of it "
      f"in user space; tick resolution {1e6/hz/wall/max(n, 1):.2f} us), "
      f"RSS {rss/1024:.1f} MB (peak {hwm/1024:.1f} MB; goal < 10 MB) of which {anon/1024:.1f} MB "
      f"private (anonymous) and the rest shared library pages; PSS {pss/1024:.1f} MB; "
      f"{samples:.0f} samples stored")
PY
if grep -q "ERROR" "$W/agent.log"; then echo "agent_500: agent errors:"; tail -5 "$W/agent.log"; exit 1; fi
