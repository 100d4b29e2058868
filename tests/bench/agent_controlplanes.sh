#!/usr/bin/env bash
# agent_controlplanes.sh: what each extra control plane in an agent's `controlplane` list costs
# the node (README "Several control planes"). The real tide-agent samples N real cgroups
# (TIDE_BENCH_CGROUPS, default 500) every second and reports to K = 1 or K = 4 real control
# planes on loopback, one run after the other on the same cgroups. For each run: the agent's
# CPU share of one core over the window (utime + stime from /proc/PID/stat), its private
# (anonymous) resident memory, and the bytes each control plane received per second (the
# agents table's `bytes`). Printed: the figures per K and the cost per extra control plane
# ((K=4 - K=1) / 3: four control planes make the difference stand out of the noise). Window:
# TIDE_BENCH_SECONDS (default 30) after a 5 s warm-up. CPU shares are noisy on a shared machine:
# the runs alternate three times (1,4,1,4,1,4) and each K's lowest CPU figure is kept.
set -u
: "${TIDE_BIN:=$(pwd)/bin}"
SECS=${TIDE_BENCH_SECONDS:-30}
N=${TIDE_BENCH_CGROUPS:-500}
R=/sys/fs/cgroup
if [ ! -w "$R/cpuacct" ]; then echo "agent_controlplanes: skipped (cgroup v1 cpuacct not writable)"; exit 0; fi
MEMSELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMSELF" = / ] && MEMSELF=
T=tide-bench-cps-$$
W=$(mktemp -d /tmp/tide-bench.XXXXXX)
DIRS=()
for h in "$R/cpuacct" "$R/cpu" "$R/pids" "$R/unified" "$R/memory$MEMSELF"; do [ -d "$h" ] && DIRS+=("$h/$T"); done
PIDS=()
stop_all() {
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null; done
    PIDS=()
}
cleanup() {
    stop_all
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
HZ=$(getconf CLK_TCK)

# run K: one measurement with K control planes; prints "K cpu_percent anon_kb bytes_per_s_per_cp"
run() {
    local k=$1 list="" i ports=() socks=()
    rm -rf "$W/data"* "$W/spool"
    for i in $(seq 1 "$k"); do
        ports[$i]=$(port)
        "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:${ports[$i]} --socket "$W/cp$i.sock" \
            --token-file "$W/token" --data-dir "$W/data$i" --http 127.0.0.1:0 --log-level warn \
            > "$W/cp$i.log" 2>&1 &
        PIDS+=($!)
        list="$list${list:+,}127.0.0.1:${ports[$i]}"
    done
    for i in $(seq 1 "$k"); do
        for _ in $(seq 1 200); do [ -S "$W/cp$i.sock" ] && break; sleep 0.05; done
    done
    "$TIDE_BIN/tide-agent" --controlplane "$list" --node bench --token-file "$W/token" \
        --interval 1s --cgroup-roots /$T --cgroup-prefix memory=${MEMSELF:-/} --log-level warn \
        --http-listen "" --spool-dir "$W/spool" > "$W/agent.log" 2>&1 &
    local ag=$!
    PIDS+=($ag)
    sleep 5
    local b0 b1 t0 t1 c0 c1
    bytes() { # the bytes every control plane received from the agent, summed
        local s=0 i v
        for i in $(seq 1 "$k"); do
            v=$("$TIDE_BIN/tidectl" --socket "$W/cp$i.sock" agents --json | /usr/bin/python3 -c "import json,sys
r=[r for r in json.load(sys.stdin) if r['node']=='bench']; print(r[0]['bytes'] if r else 0)")
            s=$((s + v))
        done
        echo $s
    }
    b0=$(bytes); t0=$(date +%s.%N); c0=$(awk '{print $14 + $15}' "/proc/$ag/stat")
    sleep "$SECS"
    t1=$(date +%s.%N); c1=$(awk '{print $14 + $15}' "/proc/$ag/stat"); b1=$(bytes)
    local anon
    anon=$(awk '/^RssAnon/{print $2}' "/proc/$ag/status")
    if grep -q "ERROR" "$W/agent.log"; then echo "agent errors:" >&2; tail -5 "$W/agent.log" >&2; fi
    stop_all
    /usr/bin/python3 -c "
k, t0, t1, c0, c1, hz, anon, b0, b1 = $k, $t0, $t1, $c0, $c1, $HZ, $anon, $b0, $b1
wall = t1 - t0
print(k, (c1 - c0) / hz * 100 / wall, anon, (b1 - b0) / wall / k)"
}

for k in 1 4 1 4 1 4; do run "$k"; done > "$W/results"
/usr/bin/python3 - "$W/results" "$N" "$SECS" <<'PY'
import sys
rows = [l.split() for l in open(sys.argv[1]) if l.strip()]
n, secs = int(sys.argv[2]), sys.argv[3]
best = {}
for k, cpu, anon, bps in rows:
    k, cpu, anon, bps = int(k), float(cpu), float(anon), float(bps)
    b = best.get(k)
    if b is None or cpu < b[0]:
        best[k] = (cpu, anon, bps)
for k in sorted(best):
    cpu, anon, bps = best[k]
    print(f"agent_controlplanes: {n} cgroups at 1 s, {k} control plane(s), {secs} s: agent CPU "
          f"{cpu:.3f}% of one core, private RSS {anon/1024:.2f} MB, {bps/1024:.1f} KB/s sent to "
          f"each control plane")
c1, a1, b1 = best[1]
c4, a4, b4 = best[4]
print(f"agent_controlplanes: per extra control plane: CPU {(c4-c1)/3:+.3f}% of one core "
      f"({(c4-c1)/3/max(c1,1e-9)*100:+.0f}% of the one-control-plane cost), private RSS "
      f"{(a4-a1)/3:+.0f} KB, network +{b4/1024:.1f} KB/s (the same batches again)")
PY
