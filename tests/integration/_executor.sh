# _executor.sh: the fleet the HAProxyBackend executor tests act on (source it): HAProxy 2.6 with
# a 6-slot server-template, the control plane, three agents (lb: HAProxy's node; app1, app2:
# replica nodes at 127.0.0.1, sharing its ports), `spec N [KEEPALIVE]` applying workload web
# with a static provider of N replicas of tests/fixtures/replicas/replica.py ($STARTUP_MS,
# default 800 ms start-up behind /healthz; $WARMUP, when set, the replica template's warmup
# block as a YAML flow mapping), and helpers: reps (get replicas --json), states ("ID:STATE ..." of the
# replicas with no action under way), want, procs (the processes the agents run for web:
# "ID@NODE:PID[:frozen]"), via_lb (one request through HAProxy). A test that runs several
# control planes defines ex_controlplanes before sourcing this: it is called instead of
# cp_start, starts them and sets CTL and EX_CONTROLPLANES (the agents' `--controlplane` list);
# GRAY_PCT, GRAY_INTERVAL and GRAY_OBS, when set, replace the scale-down gray step's
# changePercent (100), changeIntervalSeconds (0) and observationSeconds (1). AGENT_NICE, when
# set, runs the agents at that nice value (the shipped unit's is -5); LOG_GAP_MS, when set, is
# the replicas' --log-gap-ms (each logs the first request it serves after a pause);
# AGENT_CPU_SHARES, when set, puts the agents in a v1 cpu cgroup of that cpu.shares (systemd's
# CPUWeight=W is shares W*1024/100 there: the unit's old CPUWeight=20 is 204).
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
source "$(dirname "${BASH_SOURCE[0]}")/_controlplane.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
command -v wrk >/dev/null || skip "wrk not installed"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"

R=/sys/fs/cgroup
PARENT=/tide-it-ex-$$
reap_replicas() {
    local d p i
    # the control plane replaces replicas it finds dead: stop it (and the agents) first
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null; done
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && { timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null; }; done
    for i in 1 2 3; do
    for d in $R/freezer$PARENT-*/*/; do [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state"; done 2>/dev/null
    for d in $R/unified$PARENT-*/*/; do for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p"; done; done 2>/dev/null
    sleep 0.2
    done
    [ -n "${AGENT_CG:-}" ] && rmdir "$AGENT_CG" 2>/dev/null
    for h in unified freezer memory cpu cpuacct pids systemd; do
        for d in $R/$h$PARENT-*/*/; do rmdir "$d"; done 2>/dev/null
        for d in $R/$h$PARENT-*; do rmdir "$d"; done 2>/dev/null
    done
    true
}
trap '_rc=$?; set +e; reap_replicas; (exit $_rc); _cleanup' EXIT
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
  retries 3
  option redispatch
frontend fe
  bind 127.0.0.1:$FP
  default_backend web
backend web
  option httpchk GET /healthz
  server-template r 1-6 127.0.0.1:1 disabled check inter 500ms
CFG
haproxy -c -f "$W/haproxy.cfg" > /dev/null || fail "haproxy config rejected"
spawn haproxy haproxy -f "$W/haproxy.cfg" -db
wait_until 10 test -S "$S"

if declare -F ex_controlplanes > /dev/null; then
    ex_controlplanes
else
    cp_start --log-level info
    CPID=$SPAWNED
fi
agent() { # agent NODE [replica args]
    spawn "agent-$1" ${AGENT_NICE:+nice -n "$AGENT_NICE"} "$TIDE_BIN/tide-agent" --controlplane "${EX_CONTROLPLANES:-127.0.0.1:$P}" --node "$1" \
        --token-file "$W/token" --reconnect-max 500ms --interval 1s "${@:2}"
}
agent lb; ALB=$SPAWNED
agent app1 --replica-dir "$W/r1" --replica-cgroup "$PARENT-1"; A1=$SPAWNED
agent app2 --replica-dir "$W/r2" --replica-cgroup "$PARENT-2"; A2=$SPAWNED
if [ -n "${AGENT_CPU_SHARES:-}" ]; then # the agents in a v1 cpu cgroup of that weight (a unit's CPUWeight=)
    AGENT_CG=$R/cpu$PARENT-agents
    mkdir "$AGENT_CG" && echo "$AGENT_CPU_SHARES" > "$AGENT_CG/cpu.shares" || fail "no cpu cgroup for the agents"
    for p in $ALB $A1 $A2; do echo "$p" > "$AGENT_CG/cgroup.procs"; done
fi
three_up() { [ "$("${CTL[@]}" agents --json | grep -Eo '"connected":[[:space:]]*true' | wc -l)" = 3 ]; }
wait_until 20 three_up || fail "agents did not connect"

# ten consecutive free ports below the ephemeral range (the replicas' ports, shared by app1/app2),
# claimed run-wide like every test's ports (_freeport.py)
PB=$(/usr/bin/python3 "$TIDE_SRC/tests/integration/_freeport.py" --block 10) || fail "no block of 10 free ports"
spec() { # spec REPLICAS [KEEPALIVE] [GRAY_STATE]
local _gap=""
[ -n "${LOG_GAP_MS:-}" ] && _gap=", --log-gap-ms, \"$LOG_GAP_MS\""
cat > "$W/web.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target:
    kind: HAProxyBackend
    name: web
    haproxy: {node: lb, socket: $S, serverPrefix: r}
    nodes: [{name: app1, address: 127.0.0.1}, {name: app2, address: 127.0.0.1}]
    replica:
      command: [python3, $FIX, "{port}", --name, "{id}", --startup-ms, "${STARTUP_MS:-800}"$_gap]
      readiness: {path: /healthz, timeoutSeconds: 20}
      gracePeriodSeconds: 2
      ports: {first: $PB, last: $((PB + 9))}
$( [ -n "${WARMUP:-}" ] && echo "      warmup: $WARMUP" )
  minReplicas: 1
  maxReplicas: 6
  mode: Auto
  metrics:
    utilization: {selector: 'node_cpu_count{node="lb"}', target: 60}
  providers:
    - {type: static, priority: 0, replicas: $1}
  behavior:
    syncPeriodSeconds: 1
    keepAliveSeconds: ${2:-3600}
    scaleUp: {stabilizationWindowSeconds: 0, gray: {changePercent: 100, changeIntervalSeconds: 0}}
    scaleDown:
      stabilizationWindowSeconds: 0
      gray: {state: ${3:-Standby}, changePercent: ${GRAY_PCT:-100}, changeIntervalSeconds: ${GRAY_INTERVAL:-0}, observationSeconds: ${GRAY_OBS:-1}}
Y
"${CTL[@]}" apply -f "$W/web.yaml" > /dev/null
}
reps() { "${CTL[@]}" get replicas web --json; }
# states: "ID:STATE ..." sorted by id
states() { reps | /usr/bin/python3 -c 'import json,sys
print(" ".join("%s:%s" % (r["id"], r["state"]) for r in sorted(json.load(sys.stdin), key=lambda r: r["id"]) if not r["doing"]))'; }
want() { [ "$(states)" = "$1" ]; }
# the processes the agents run for workload web
procs() { for n in app1 app2; do "${CTL[@]}" --json node-action $n replicas -; done | /usr/bin/python3 -c 'import json,sys
dec=json.JSONDecoder(); s=sys.stdin.read(); i=0; out=[]
while i < len(s):
    while i < len(s) and s[i].isspace(): i += 1
    if i >= len(s): break
    d, i = dec.raw_decode(s, i)
    out += ["%s@%s:%s%s" % (r["id"], d["node"], r["pid"], ":frozen" if r["frozen"] else "") for r in d["replicas"] if r.get("labels", {}).get("workload") == "web" and r["state"] != "exited"]
print(" ".join(sorted(out)))'; }
via_lb() { curl -sf --max-time 2 "http://127.0.0.1:$FP/"; }

