#!/usr/bin/env bash
# replica_start.sh: START overhead beyond the replica's own start-up (issue 12 goal: < 100 ms
# p99), with real parts on loopback: tidectl -> tide-controlplane -> tide-agent replica-start of
# tests/fixtures/replicas/replica.py (readiness GET /healthz every 10 ms), then haproxy-slot
# (set server addr/port + state ready on a server-template slot of HAProxy 2.6), N times.
# The replica's own start-up is exec to ready: the agent reports the exec instant (exec_mono_ms)
# and the replica logs its ready instant, both CLOCK_MONOTONIC; overhead = the wall time of the
# two tidectl calls minus that; tidectl's own process start-up (it maps OpenBLAS, XGBoost, ...:
# 0.1-0.2 s on a loaded machine), which an executor inside the control plane does not pay, is
# measured in the same run (tidectl --help) and taken out for the executor's-path figure. Each
# run is stopped (replica-stop, slot to maint) before the next.
set -u
TIDE_SRC=${TIDE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TIDE_BIN=${TIDE_BIN:-$TIDE_SRC/bin}
export TIDE_SRC TIDE_BIN
source "$TIDE_SRC/tests/integration/lib.sh"
source "$TIDE_SRC/tests/integration/_controlplane.sh"
mkdir -p "$W/bin"
for b in tidectl tide-agent tide-controlplane; do cp "$TIDE_BIN/$b" "$W/bin/" || fail "$TIDE_BIN/$b missing"; done
TIDE_BIN=$W/bin
N=${N:-20}
[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "needs haproxy"
[ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable cgroup mounts"
R=/sys/fs/cgroup PARENT=/tide-bench-rs-$$
for h in unified freezer memory cpu cpuacct pids systemd; do [ -d "$R/$h" ] && _CGROUPS=("$R/$h$PARENT" "${_CGROUPS[@]}"); done
trap '_rc=$?; set +e; for p in $(cat $R/unified$PARENT/*/cgroup.procs 2>/dev/null); do kill -9 $p; done 2>/dev/null; sleep 0.2; for h in unified freezer memory cpu cpuacct pids systemd; do rmdir $R/$h$PARENT/* 2>/dev/null; done; (exit $_rc); _cleanup' EXIT
FIX=$TIDE_SRC/tests/fixtures/replicas/replica.py

FP=$(port); S=$W/admin.sock
cat > "$W/haproxy.cfg" <<CFG
global
  stats socket $S level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$FP
  default_backend web
backend web
  server-template r 1-2 127.0.0.1:1 disabled
CFG
spawn haproxy haproxy -f "$W/haproxy.cfg" -db
wait_until 10 test -S "$S"
cp_start --log-level warn
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node lb --token-file "$W/token" \
    --replica-dir "$W/replicas" --replica-cgroup "$PARENT" --log-level warn
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }
wait_until 20 agent_up
act() { "${CTL[@]}" --json node-action lb "$@"; }
now_us() { echo $(( $(date +%s%N) / 1000 )); }
: > "$W/over"; : > "$W/own"; : > "$W/agent"; : > "$W/cli"
for i in $(seq 1 "$N"); do
    PR=$(port)
    c0=$(now_us); "${CTL[@]}" --help > /dev/null; c1=$(now_us); echo "$(( (c1 - c0) * 2 ))" >> "$W/cli"
    t0=$(now_us)
    out=$(act replica-start - --args "{\"id\": \"b$i\", \"port\": $PR, \"command\": [\"python3\", \"$FIX\", \"{port}\", \"--startup-ms\", \"100\"], \"readiness\": {\"path\": \"/healthz\", \"interval_ms\": 10}}") || fail "start $i: $out"
    act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r1\", \"addr\": \"127.0.0.1\", \"port\": $PR, \"state\": \"ready\"}" > /dev/null || fail "slot $i"
    t1=$(now_us)
    exec_mono=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["exec_mono_ms"])')
    ready_mono=$(sed -n 's/.*mono_ms \([0-9.]*\).*/\1/p' "$W/replicas/b$i.log" | tail -1)
    [ -n "$ready_mono" ] || fail "run $i: the replica logged no ready instant"
    ready_ms=$(echo "$out" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["ready_ms"])')
    /usr/bin/python3 -c "own=$ready_mono-$exec_mono; print('%.3f' % ((($t1-$t0)/1000.0)-own)); print('%.3f' % own, file=open('$W/own','a')); print('%.3f' % ($ready_ms-own), file=open('$W/agent','a'))" >> "$W/over"
    act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r1\", \"state\": \"maint\"}" > /dev/null || fail "maint $i"
    act replica-stop - --args "{\"id\": \"b$i\"}" > /dev/null || fail "stop $i"
done
/usr/bin/python3 - "$W/over" "$W/own" "$W/agent" "$W/cli" <<'PY'
import sys
def q(v, p): v = sorted(v); return v[min(len(v) - 1, int(round(p * (len(v) - 1))))]
over = [float(x) for x in open(sys.argv[1])]; own = [float(x) for x in open(sys.argv[2])]
agent = [float(x) for x in open(sys.argv[3])]
cli = [float(x) / 1000 for x in open(sys.argv[4])]
print("replica's own start-up (exec -> ready): p50 %.1f ms  p99 %.1f ms  (n=%d)" % (q(own, .5), q(own, .99), len(own)))
print("START overhead (tidectl replica-start + haproxy-slot ready, minus own start-up): p50 %.1f ms  p99 %.1f ms  max %.1f ms" % (q(over, .5), q(over, .99), max(over)))
print("  of which in the agent (command received -> ready seen, minus own start-up): p50 %.1f ms  p99 %.1f ms" % (q(agent, .5), q(agent, .99)))
print("  tidectl's own process start-up, two calls (tidectl --help, same run): p50 %.1f ms  p99 %.1f ms" % (q(cli, .5), q(cli, .99)))
# The goal (< 100 ms p99 beyond the replica's own start-up) is about the executor's path, which
# runs inside the control plane without tidectl; subtracting tidectl's start-up per run is too
# noisy on a loaded machine to stand for it, so no verdict is printed from it here.
print("agent part vs the 100 ms p99 goal: %s" % ("within" if q(agent, .99) < 100 else "above"))
PY
