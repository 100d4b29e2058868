#!/usr/bin/env bash
# demo.sh BIN_DIR: the main job, end to end on loopback, in about a minute:
#   1. a control plane and two agents start and report (tidectl agents, status, ping);
#   2. node demo-node-1 runs a small web service: HAProxy in front of two backends, each in its
#      own cgroup, plus a batch job held to 0.25 CPU; the agent samples them (tidectl top, query);
#   3. a workload spec for that service is applied in Preview (tidectl apply, get, describe);
#   4. scaling in and out nearly free: web2 is drained under traffic, put in standby (frozen,
#      memory reclaimed) and activated again in milliseconds (tidectl node-action);
#   5. the loop: workload web as an HAProxyBackend in Auto on both nodes: idle, 1 replica online
#      and 2 frozen in standby; load rises (wrk): Tide wakes the standby ones in milliseconds and
#      starts a new one; load falls: it drains and freezes 3 under traffic, 0 failed requests
#      (tidectl get replicas, events, describe);
#   6. the models offline: a backtest of the forecasters and a trace simulation of Tide vs the
#      Kubernetes HPA on shipped slices of the NASA trace (tidectl backtest, simulate);
#   7. everything stops cleanly and what the demo made is removed (also on Ctrl-C).
# Parts 2-4 need root, v1+v2 (hybrid) cgroups, HAProxy and socat; part 5 root, a cgroup v2 mount
# (pure v2, as a fresh Debian 12, or hybrid), HAProxy and wrk (scripts/setup.sh installs the
# packages); without them they are skipped with a note. Every wait is on an event (a state
# polled every 100 ms) with a deadline. Exit 0 on success.
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
SRC=$(cd "$(dirname "$0")/.." && pwd)
D=$(mktemp -d /tmp/tide-demo.XXXXXX)
PIDS=()
CGROUPS=()
R=/sys/fs/cgroup
T=tide-demo-$$
MEMREL=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMREL" = / ] && MEMREL=

# reap_replicas: the replica processes of part 5 live in cgroups of their own (/$T-r1/ID,
# /$T-r2/ID), outside the agents' process groups: thaw, kill and remove them, in every hierarchy
# the agents made them in.
reap_replicas() {
    local d p h n
    for n in r1 r2; do
        for d in "$R/freezer/$T-$n"/*/; do [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state"; done 2>/dev/null
        for d in "$V2/$T-$n"/*/; do [ -f "$d/cgroup.freeze" ] && echo 0 > "$d/cgroup.freeze"; done 2>/dev/null
        for d in "$V2/$T-$n"/*/ "$R/freezer/$T-$n"/*/; do
            for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null; done
        done
    done
    [ -n "$V2" ] || return 0
    [ -d "$V2/$T-r1" ] || [ -d "$V2/$T-r2" ] || return 0
    sleep 0.2 # the killed processes leave their cgroups
    for n in r1 r2; do
        for h in "$V2" "$R/freezer" "$R/memory$MEMREL" "$R/memory" "$R/cpu" "$R/cpuacct" "$R/pids" "$R/systemd"; do
            for d in "$h/$T-$n"/*/; do rmdir "$d"; done 2>/dev/null
            rmdir "$h/$T-$n" 2>/dev/null
        done
    done
    true
}

cleanup() {
    local rc=$? p c
    set +e
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    reap_replicas
    for c in "${CGROUPS[@]:-}"; do
        [ -n "$c" ] && [ -d "$c" ] || continue
        [ -f "$c/freezer.state" ] && echo THAWED > "$c/freezer.state" 2>/dev/null
        [ -f "$c/cgroup.freeze" ] && echo 0 > "$c/cgroup.freeze" 2>/dev/null
        for p in $(cat "$c/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        rmdir "$c" 2>/dev/null || { sleep 0.2; rmdir "$c" 2>/dev/null; } || true
    done
    if [ $rc -ne 0 ]; then
        echo "demo failed; last log lines:" >&2
        for f in "$D"/*.log; do [ -f "$f" ] && { echo "== $(basename "$f")" >&2; tail -15 "$f" >&2; }; done
    fi
    rm -rf "$D"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_for SECONDS WHAT CMD...: polls CMD every 100 ms.
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt $end ] || { echo "demo: timed out waiting for $what" >&2; return 1; }
        sleep 0.1
    done
}
# forget PID: a process already waited for leaves PIDS (its pid may be reused)
forget() {
    local p k=()
    for p in "${PIDS[@]}"; do [ "$p" = "$1" ] || k+=("$p"); done
    PIDS=("${k[@]}")
}
say() { printf '\n\033[1m== %s\033[0m\n' "$*"; }
run() { printf '$ tidectl %s\n' "$*"; "${CTL[@]}" "$@"; }

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/token"; chmod 600 "$D/token"
AGENT_PORT=$(free_port); HTTP_PORT=$(free_port)
SOCK="$D/controlplane.sock"
CTL=("$BIN/tidectl" --socket "$SOCK")

# ---- 1 --------------------------------------------------------------------------------------
say "1. tide-controlplane on 127.0.0.1:$AGENT_PORT (HTTP $HTTP_PORT, ops socket $SOCK), two agents"
"$BIN/tide-controlplane" --listen "127.0.0.1:$AGENT_PORT" --socket "$SOCK" --token-file "$D/token" \
    --data-dir "$D/data" --http "127.0.0.1:$HTTP_PORT" > "$D/controlplane.log" 2>&1 &
CP=$!; PIDS+=("$CP")
wait_for 20 "the ops socket" "${CTL[@]}" status

CGROUPS_OK=0
if [ "$(id -u)" = 0 ] && [ -w "$R/freezer" ] && [ -w "$R/cpu" ] && [ -w "$R/unified/cgroup.procs" ]; then
    CGROUPS_OK=1
fi
AGENT1_EXTRA=()
AGENT2_EXTRA=()
# the cgroup v2 mount (/sys/fs/cgroup on a pure v2 host, /sys/fs/cgroup/unified on a hybrid one):
# the loop (part 5) needs only it
V2=$(awk '{for (i = 1; i < NF; i++) if ($i == "-") { if ($(i + 1) == "cgroup2") print $5; break }}' \
    /proc/self/mountinfo | head -1)
LOOP_OK=0
if [ "$(id -u)" = 0 ] && [ -n "$V2" ] && [ -w "$V2/cgroup.procs" ] && command -v haproxy >/dev/null \
    && command -v wrk >/dev/null; then
    LOOP_OK=1
fi
if [ $LOOP_OK = 1 ]; then
    # both nodes run replica processes for part 5 (cgroups /$T-r1/ID, /$T-r2/ID) and sample them
    AGENT1_EXTRA=(--cgroup-roots "/$T-r1" --replica-dir "$D/r1" --replica-cgroup "/$T-r1")
    AGENT2_EXTRA=(--cgroup-roots "/$T-r2" --replica-dir "$D/r2" --replica-cgroup "/$T-r2")
fi
if [ $CGROUPS_OK = 1 ]; then # parts 2-4: demo-node-1 samples the demo's own cgroups too
    if [ $LOOP_OK = 1 ]; then ROOTS1="/$T,/$T-r1"; else ROOTS1="/$T"; fi
    AGENT1_EXTRA=(--cgroup-roots "$ROOTS1" --cgroup-prefix memory=self --cgroup-detail-every 1
                  "${AGENT1_EXTRA[@]:2}")
fi
"$BIN/tide-agent" --controlplane "127.0.0.1:$AGENT_PORT" --node demo-node-1 --token-file "$D/token" \
    --interval 500ms "${AGENT1_EXTRA[@]}" > "$D/demo-node-1.log" 2>&1 &
PIDS+=("$!")
"$BIN/tide-agent" --controlplane "127.0.0.1:$AGENT_PORT" --node demo-node-2 --token-file "$D/token" \
    --interval 500ms "${AGENT2_EXTRA[@]}" > "$D/demo-node-2.log" 2>&1 &
PIDS+=("$!")

reporting() { # both agents connected with at least 2 samples each
    "${CTL[@]}" --json agents | /usr/bin/python3 -c '
import json, sys
rows = {r["node"]: r for r in json.load(sys.stdin)}
sys.exit(0 if all(n in rows and rows[n]["connected"] and rows[n]["samples"] >= 2
                  for n in ("demo-node-1", "demo-node-2")) else 1)'
}
wait_for 30 "both agents to report" reporting
run agents
echo
run status
echo
run ping demo-node-1

# ---- 2 --------------------------------------------------------------------------------------
WEB_OK=0
if [ $CGROUPS_OK = 1 ] && command -v haproxy >/dev/null && command -v socat >/dev/null; then
    WEB_OK=1
fi
if [ $WEB_OK = 1 ]; then
    say "2. a web service on demo-node-1: HAProxy -> web1, web2 (one cgroup each) and a batch job at 0.25 CPU"
    # mkcg NAME: the cgroup /$T/NAME in the cpu, cpuacct, freezer, memory (nested) and v2 hierarchies
    mkcg() {
        local h
        for h in "$R/cpu/$T" "$R/cpuacct/$T" "$R/freezer/$T" "$R/memory$MEMREL/$T" "$R/unified/$T"; do
            if [ ! -d "$h" ]; then mkdir "$h"; CGROUPS=("$h" "${CGROUPS[@]}"); fi
            mkdir "$h/$1"; CGROUPS=("$h/$1" "${CGROUPS[@]}")
        done
    }
    joincg() { echo "for c in $R/cpu/$T/$1 $R/cpuacct/$T/$1 $R/freezer/$T/$1 $R/memory$MEMREL/$T/$1 $R/unified/$T/$1; do echo \$\$ > \$c/cgroup.procs; done;"; }
    FE=$(free_port); P1=$(free_port); P2=$(free_port); HS=$D/haproxy.sock
    for n in 1 2; do
        mkcg "web$n"
        port=$P1; [ $n = 2 ] && port=$P2
        sh -c "$(joincg "web$n") exec /usr/bin/python3 $SRC/tests/fixtures/node_actions/backend.py web$n $port" \
            > "$D/web$n.log" 2>&1 &
        PIDS+=("$!")
    done
    mkcg batch
    echo 100000 > "$R/cpu/$T/batch/cpu.cfs_period_us"; echo 25000 > "$R/cpu/$T/batch/cpu.cfs_quota_us"
    sh -c "$(joincg batch) exec sh -c 'while :; do :; done'" > /dev/null 2>&1 &
    PIDS+=("$!")
    cat > "$D/haproxy.cfg" <<CFG
global
  stats socket $HS level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$FE
  default_backend be
backend be
  server web1 127.0.0.1:$P1 check inter 1s
  server web2 127.0.0.1:$P2 check inter 1s
CFG
    haproxy -f "$D/haproxy.cfg" -db > "$D/haproxy.log" 2>&1 &
    PIDS+=("$!")
    hc() { echo "$*" | socat stdio "unix-connect:$HS"; }
    both_up() { [ "$(hc show stat be 4 -1 | awk -F, '$18=="UP"' | wc -l)" = 2 ]; }
    wait_for 20 "HAProxy to see both backends up" both_up
    echo "HAProxy on 127.0.0.1:$FE, web1 on $P1, web2 on $P2, batch job capped at 0.25 CPU (cfs quota)"
    sampled() { "${CTL[@]}" --json top --node demo-node-1 | grep -q "/$T/batch"; }
    wait_for 30 "the agent to sample the demo cgroups" sampled
    sleep 2 # a few more rounds, so the rates below span several seconds
    echo
    run top --node demo-node-1
    echo
    now=$(date +%s)
    run query "cgroup_cpu_usage_cores{cgroup=\"/$T/batch\"}" --start $((now - 5)) --end "$now" --step 1

    # ---- 3 ----------------------------------------------------------------------------------
    say "3. a workload for the web service, applied in Preview: Tide plans and records, acts on nothing"
    cat > "$D/web.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target: {kind: HAProxyBackend, name: be}
  minReplicas: 1
  maxReplicas: 4
  mode: Preview
  metrics:
    utilization:
      selector: 'cgroup_cpu_usage_cores{node="demo-node-1",cgroup=~"/$T/web.*"}'
      target: 60
  providers:
    - {type: reactive, priority: 10}
    - {type: static, priority: 0, replicas: 2}
  behavior:
    keepAliveSeconds: 600
    scaleDown:
      gray: {state: Standby, changePercent: 50, observationSeconds: 30}
Y
    run apply -f "$D/web.yaml"
    decided() { "${CTL[@]}" --json describe web | grep -q '"kind":[[:space:]]*"target"'; }
    wait_for 40 "the first decision" decided
    echo
    run get workloads
    echo
    run describe web | head -40

    # ---- 4 ----------------------------------------------------------------------------------
    say "4. scale in and out nearly free: drain web2 under traffic, standby it, activate it again"
    /usr/bin/python3 - "$FE" > "$D/traffic.log" 2>&1 <<'PY' &
import sys, time, urllib.request
port, ok, bad, end = sys.argv[1], 0, 0, time.time() + 6
while time.time() < end:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=2).read(); ok += 1
    except Exception:
        bad += 1
print(f"traffic through HAProxy during the drain: {ok} requests ok, {bad} failed")
PY
    TRAFFIC=$!
    HAP=(--haproxy-socket "$HS" --haproxy-server be/web2)
    sleep 1
    run node-action demo-node-1 drain "/$T/web2" "${HAP[@]}" --endpoint "127.0.0.1:$P2"
    wait "$TRAFFIC"; cat "$D/traffic.log"
    echo
    run node-action demo-node-1 standby "/$T/web2" "${HAP[@]}"
    u0=$(cat "$R/cpuacct/$T/web2/cpuacct.usage"); sleep 1; u1=$(cat "$R/cpuacct/$T/web2/cpuacct.usage")
    echo "web2 in standby: cgroup.events says '$(grep frozen "$R/unified/$T/web2/cgroup.events")'," \
         "CPU used in 1 s: $(( (u1 - u0) / 1000 )) us, process alive: $(pgrep -f "backend.py web2" >/dev/null && echo yes || echo no)"
    echo
    run node-action demo-node-1 activate "/$T/web2" "${HAP[@]}"
    serves() { curl -sf --max-time 2 "http://127.0.0.1:$P2/" > /dev/null; }
    wait_for 10 "web2 to serve again" serves
    echo "web2 answers again: $(curl -s "http://127.0.0.1:$P2/")"

else
    say "2-4. skipped: the web service needs root, writable v1+v2 (hybrid) cgroups, HAProxy and socat (scripts/setup.sh)"
fi

if [ $LOOP_OK = 1 ]; then
    # ---- 5 ----------------------------------------------------------------------------------
    say "5. the loop: workload web as an HAProxyBackend in Auto; load rises, Tide wakes and starts replicas; load falls, it drains and freezes them"
    # A second HAProxy with a backend of six empty slots the executor fills, replicas of
    # tests/fixtures/replicas/replica.py (500 ms of start-up work behind /healthz, 3 ms of CPU
    # per request) on both nodes (same address, shared ports).
    FW=$(free_port); HW=$D/haproxy-web.sock
    PB=$(/usr/bin/python3 -c 'import random, socket
for _ in range(200):
    b = random.randrange(20000, 32000)
    try:
        ss = [socket.socket() for _ in range(10)]
        for i, s in enumerate(ss): s.bind(("127.0.0.1", b + i))
        print(b); break
    except OSError:
        pass')
    cat > "$D/haproxy-web.cfg" <<CFG
global
  stats socket $HW level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  retries 3
  option redispatch
frontend fw
  bind 127.0.0.1:$FW
  default_backend web
backend web
  option httpchk GET /healthz
  server-template r 1-6 127.0.0.1:1 disabled check inter 500ms
CFG
    haproxy -f "$D/haproxy-web.cfg" -db > "$D/haproxy-web.log" 2>&1 &
    PIDS+=("$!")
    wait_for 20 "the second HAProxy" test -S "$HW"
    # loop_spec MIN MAX: the workload; the short periods (sync every second, no stabilization
    # windows, whole gray steps watched for 1 s) make the loop fit a demo; the defaults are 15 s
    # syncs and a 5-minute scale-down window. Utilization is the replicas' CPU in percent of a
    # core; the target is low (10 %) so that load from this machine alone asks for 4 replicas.
    loop_spec() {
        cat > "$D/web-auto.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target:
    kind: HAProxyBackend
    name: web
    haproxy: {node: demo-node-1, socket: $HW, serverPrefix: r}
    nodes: [{name: demo-node-1, address: 127.0.0.1}, {name: demo-node-2, address: 127.0.0.1}]
    replica:
      command: [python3, $SRC/tests/fixtures/replicas/replica.py, "{port}", --name, "{id}",
                --startup-ms, "500", --cpu-ms, "3"]
      readiness: {path: /healthz, timeoutSeconds: 20}
      gracePeriodSeconds: 2
      ports: {first: $PB, last: $((PB + 9))}
  minReplicas: $1
  maxReplicas: $2
  mode: Auto
  metrics:
    utilization:
      query: 'cgroup_cpu_usage_cores{cgroup=~"/$T-r[12]/web-.*"} * 100'
      target: 10
  providers:
    - {type: reactive, priority: 10}
  behavior:
    syncPeriodSeconds: 1
    keepAliveSeconds: 3600
    scaleUp: {stabilizationWindowSeconds: 0, gray: {changePercent: 100, changeIntervalSeconds: 0}}
    scaleDown:
      stabilizationWindowSeconds: 0
      gray: {state: Standby, changePercent: 100, changeIntervalSeconds: 0, observationSeconds: 1}
Y
    }
    # fleet ONLINE STANDBY: that many replicas in each state and no action under way
    fleet() {
        "${CTL[@]}" --json get replicas web | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)
on = sum(1 for x in r if x["state"] == "Online" and not x["doing"])
sb = sum(1 for x in r if x["state"] == "Standby" and not x["doing"])
sys.exit(0 if on == int(sys.argv[1]) and sb == int(sys.argv[2]) and len(r) == on + sb else 1)' "$1" "$2"
    }
    # await SECONDS WHAT ONLINE STANDBY: waits for that fleet; on a timeout shows why
    await() {
        wait_for "$1" "$2" fleet "$3" "$4" && return 0
        "${CTL[@]}" describe web >&2 || true
        "${CTL[@]}" events web | tail -20 >&2 || true
        "${CTL[@]}" query "cgroup_cpu_usage_cores{cgroup=~\"/$T-r[12]/.*\"}" >&2 || true
        return 1
    }
    # idle N: N replicas sampled and together below 0.05 cores (their start-up work is over: a
    # rate still counting it would read as load on the next decision)
    idle() {
        local now; now=$(date +%s)
        "${CTL[@]}" --json query "cgroup_cpu_usage_cores{cgroup=~\"/$T-r[12]/web-.*\"}" \
            --start $((now - 4)) --end "$now" --step 1 | /usr/bin/python3 -c '
import json, sys
r = json.load(sys.stdin)["data"]["result"]
last = [float(s["values"][-1][1]) for s in r if s.get("values")]
sys.exit(0 if len(last) == int(sys.argv[1]) and sum(last) < 0.05 else 1)' "$1"
    }
    # acts: the decisions and actions of workload web since the last call (tidectl events)
    acts() {
        "${CTL[@]}" events web | grep -E ' (target|action) +' > "$D/ev" || true
        # the table's column widths may change between calls: compare with runs of spaces as one
        awk 'FILENAME == ARGV[1] { k = $0; gsub(/ +/, " ", k); seen[k] = 1; next }
             { k = $0; gsub(/ +/, " ", k); if (!(k in seen)) print }' "$D/seen" "$D/ev" > "$D/new"
        cat "$D/new"
        cat "$D/ev" >> "$D/seen"
    }
    [ $WEB_OK = 1 ] && run delete web # part 3's, in Preview
    : > "$D/seen"
    echo
    echo "-- the fleet starts with 3 replicas (minReplicas = maxReplicas = 3), then the spec is re-applied with minReplicas 1, maxReplicas 4"
    loop_spec 3 3
    run apply -f "$D/web-auto.yaml"
    await 60 "3 replicas online" 3 0
    wait_for 30 "the 3 replicas to be sampled idle" idle 3
    acts
    loop_spec 1 4
    run apply -f "$D/web-auto.yaml"
    echo "-- idle: Tide needs 1; it drains 2 replicas and freezes them (Standby)"
    await 60 "1 online and 2 in standby" 1 2
    acts
    echo
    run get replicas web

    echo
    echo "-- load rises: wrk, 8 connections through HAProxy on 127.0.0.1:$FW"
    wrk -t1 -c8 -d60s "http://127.0.0.1:$FW/" > "$D/wrk.log" 2>&1 &
    WRK=$!; PIDS+=("$WRK")
    await 60 "4 replicas online under load" 4 0
    acts
    WOKE=$(grep -cE 'action +activate web-[0-9]+: done' "$D/new" || true)
    WOKE_MS=$(grep -oE 'action +activate web-[0-9]+: done in [0-9]+ ms' "$D/new" | grep -oE '[0-9]+ ms' | paste -sd, - | sed 's/,/, /g')
    STARTED=$(grep -cE 'action +start web-[0-9]+: done' "$D/new" || true)
    echo
    run get replicas web
    kill -INT "$WRK"; wait "$WRK" || true; forget "$WRK"
    echo
    sed -n '/requests in/,$p' "$D/wrk.log"
    if grep -qE 'Non-2xx|Socket errors' "$D/wrk.log"; then
        echo "wrk: failed requests" >&2; exit 1
    fi
    WRK_N=$(grep -oE '^ *[0-9]+ requests in' "$D/wrk.log" | grep -oE '[0-9]+')
    echo "wrk: $WRK_N requests, 0 failed"

    echo
    echo "-- load falls to a trickle (one client, ~10 requests/s): Tide drains and freezes 3 replicas"
    /usr/bin/python3 - "$FW" > "$D/trickle.log" 2>&1 <<'PY' &
import signal, sys, time, urllib.request
port, ok, bad, stop = sys.argv[1], 0, 0, False
def done(*_):
    global stop
    stop = True
signal.signal(signal.SIGTERM, done)
while not stop:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=5).read(); ok += 1
    except Exception:
        bad += 1
    time.sleep(0.1)
print(f"trickle through HAProxy during the scale-down: {ok} requests ok, {bad} failed")
PY
    TRICKLE=$!; PIDS+=("$TRICKLE")
    await 60 "1 online and 3 in standby" 1 3
    kill -TERM "$TRICKLE"; wait "$TRICKLE" || true; forget "$TRICKLE"
    acts
    FROZE=$(grep -cE 'action +standby web-[0-9]+: done' "$D/new" || true)
    echo
    run get replicas web
    echo
    cat "$D/trickle.log"
    grep -q ', 0 failed' "$D/trickle.log" || { echo "demo: failed requests during the scale-down" >&2; exit 1; }
    # the frozen ones, as the kernel reports them
    "${CTL[@]}" --json get replicas web | /usr/bin/python3 -c '
import json, sys
for r in json.load(sys.stdin):
    if r["state"] == "Standby":
        with open(sys.argv[1] + r["cgroup"] + "/cgroup.events") as f:
            fz = [l.split()[1] for l in f if l.startswith("frozen ")]
        print("%s: pid %d, %s cgroup.events frozen %s" % (r["id"], r["pid"], r["cgroup"], fz[0] if fz else "?"))' "$V2"
    TRICKLE_N=$(grep -oE '[0-9]+ requests ok' "$D/trickle.log" | grep -oE '[0-9]+')
    echo
    echo "the loop: $WOKE standby replica(s) woken (activate: $WOKE_MS), $STARTED new one(s) started," \
         "$FROZE drained and frozen; $((WRK_N + TRICKLE_N)) requests ($WRK_N under wrk, $TRICKLE_N during the scale-down), 0 failed"
    echo
    run describe web | grep -E '^(Mode|Replicas|Target util|Observation):'
else
    say "5. skipped: the loop needs root, a writable cgroup v2 mount, HAProxy and wrk (scripts/setup.sh)"
fi

# ---- 6 --------------------------------------------------------------------------------------
say "6. the models, offline (the same code the control plane runs)"
run backtest --data "$SRC/tests/fixtures/demo/nasa_10m_21d.csv" --task day-ahead \
    --model snaive-day,snaive-week,holt-winters,profile
echo
run simulate --data "$SRC/tests/fixtures/simulate/nasa_3d.csv" --spec "$SRC/deploy/examples/simulate.yaml" \
    --policy all --eval-days 1 --peak-replicas 20 --cold-start 120 --activation 1 --standby-cost 0.1

# ---- 7 --------------------------------------------------------------------------------------
say "7. stopping (SIGTERM)"
for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
rc=0
for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
PIDS=()
grep -q "stopped cleanly" "$D/controlplane.log" || { echo "demo: control plane did not stop cleanly" >&2; exit 1; }
[ "$(grep -c 'stopped cleanly' "$D"/demo-node-*.log | awk -F: '{s+=$2} END{print s}')" = 2 ] \
    || { echo "demo: an agent did not stop cleanly" >&2; exit 1; }
echo "all stopped cleanly"
exit $rc
