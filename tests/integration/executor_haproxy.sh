#!/usr/bin/env bash
# timeout: 120
# executor_haproxy: an HAProxyBackend workload in Auto mode acting on a real fleet on loopback:
# HAProxy 2.6 with a 6-slot server-template, three agents (lb: HAProxy's node; app1, app2: the
# replica nodes, both at 127.0.0.1, so they share its ports), replicas of
# tests/fixtures/replicas/replica.py (800 ms start-up behind /healthz) and a static provider
# whose count the test re-applies:
#   - 2 replicas: started on app1 and app2 (spread), each in its own cgroup, behind a slot,
#     answering through HAProxy; `tidectl get replicas` shows node, server, pid, cgroup;
#   - 1: gray scale-down to Standby under wrk load with 0 failed requests, the replica frozen;
#   - 2: the standby replica is activated (no new one started);
#   - 3, and kill -9 of the control plane while the new replica starts: after the restart the
#     fleet converges on 3 online with 3 processes (none lost, none started twice, none frozen
#     while online);
#   - 4, and kill -9 of the agent whose node runs the new start: its other replicas keep
#     running and are adopted; the start that lost its answer is stopped and replaced.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
command -v wrk >/dev/null || skip "wrk not installed"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"

R=/sys/fs/cgroup
PARENT=/tide-it-ex-$$
reap_replicas() {
    local d p
    for d in $R/freezer$PARENT-*/*/; do [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state"; done 2>/dev/null
    for d in $R/unified$PARENT-*/*/; do for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p"; done; done 2>/dev/null
    sleep 0.2
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

cp_start --log-level info
CPID=$SPAWNED
agent() { # agent NODE [replica args]
    spawn "agent-$1" "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node "$1" \
        --token-file "$W/token" --reconnect-max 500ms --interval 1s "${@:2}"
}
agent lb
agent app1 --replica-dir "$W/r1" --replica-cgroup "$PARENT-1"; A1=$SPAWNED
agent app2 --replica-dir "$W/r2" --replica-cgroup "$PARENT-2"; A2=$SPAWNED
three_up() { [ "$("${CTL[@]}" agents --json | grep -Eo '"connected":[[:space:]]*true' | wc -l)" = 3 ]; }
wait_until 20 three_up || fail "agents did not connect"

# ten consecutive free ports below the ephemeral range (the replicas' ports, shared by app1/app2)
PB=$(/usr/bin/python3 -c 'import random, socket
for _ in range(200):
    b = random.randrange(20000, 32000)
    try:
        ss = []
        for p in range(b, b + 10):
            s = socket.socket(); s.bind(("127.0.0.1", p)); ss.append(s)
        print(b); break
    except OSError:
        pass
')
spec() { # spec REPLICAS [KEEPALIVE]
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
      command: [python3, $FIX, "{port}", --name, "{id}", --startup-ms, "800"]
      readiness: {path: /healthz, timeoutSeconds: 20}
      gracePeriodSeconds: 2
      ports: {first: $PB, last: $((PB + 9))}
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
      gray: {state: Standby, changePercent: 100, changeIntervalSeconds: 0, observationSeconds: 1}
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

# ---- 2 replicas: started, spread, serving --------------------------------------------------
spec 2
wait_until 40 want "web-1:Online web-2:Online" || { "${CTL[@]}" describe web; fail "2 replicas not online: $(states)"; }
out=$(reps)
echo "$out" | /usr/bin/python3 -c 'import json,sys
r = {x["id"]: x for x in json.load(sys.stdin)}
assert {r["web-1"]["node"], r["web-2"]["node"]} == {"app1", "app2"}, r
for x in r.values():
    assert x["server"].startswith("web/r") and x["pid"] > 0 and x["cgroup"].endswith("/" + x["id"]), x
    assert x["haproxy_status"].startswith("UP"), x' || fail "replica identity: $out"
"${CTL[@]}" get replicas web | grep -E '^web-1 +Online +app[12] +127\.0\.0\.1:[0-9]+ +web/r[0-9] \(UP' || fail "get replicas table: $("${CTL[@]}" get replicas web)"
seen=""; for i in $(seq 1 20); do seen="$seen $(via_lb)"; done
grep -q web-1 <<< "$seen" && grep -q web-2 <<< "$seen" || fail "HAProxy does not reach both replicas: $seen"
[ "$(procs | wc -w)" = 2 ] || fail "processes: $(procs)"
echo "2 online: $(procs)"

# ---- 1: gray scale-down to Standby under load, 0 failed ------------------------------------
spawn wrk wrk -t1 -c4 -d6s "http://127.0.0.1:$FP/"; WRK=$SPAWNED
sleep 1
spec 1
one_standby() { want "web-1:Online web-2:Standby" || want "web-1:Standby web-2:Online"; }
wait_until 40 one_standby || { "${CTL[@]}" describe web; fail "no scale-down to Standby: $(states)"; }
wait "$WRK" || true
cat "$W/wrk.log"
grep -qE '[0-9]+ requests in' "$W/wrk.log" || fail "wrk did not run"
grep -qE 'Non-2xx|Socket errors' "$W/wrk.log" && fail "failed requests during the scale-down"
SB=$(states | tr ' ' '\n' | sed -n 's/:Standby$//p')
procs | grep -q "$SB@app[12]:[0-9]*:frozen" || fail "standby $SB not frozen: $(procs)"
P1=$(procs)
echo "scale-down: $SB standby (frozen), 0 failed under wrk"

# ---- 2: the standby replica is activated, nothing new started --------------------------------
spec 2
wait_until 30 want "web-1:Online web-2:Online" || { "${CTL[@]}" describe web; fail "standby not activated: $(states)"; }
[ "$(procs)" = "$(echo "$P1" | sed 's/:frozen//')" ] || fail "activation changed the processes: $P1 -> $(procs)"
"${CTL[@]}" events web | grep -qE "action +activate $SB: done in [0-9]+ ms" || fail "no activate event: $("${CTL[@]}" events web)"
echo "scale-up: $SB activated"

# ---- kill -9 of the control plane mid scale-up (standby activated, a new one starting) -------
spec 3
doing_start() { reps | grep -Eq '"doing":[[:space:]]*"start"'; }
wait_until 30 doing_start || fail "no start under way: $(reps)"
echo "killing the control plane during: $(states) / $(procs)"
kill -9 "$CPID"
rm -f "$W/cp.sock"
spawn cp2 "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
    --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0 --log-level info
wait_until 20 test -S "$W/cp.sock"
wait_until 30 three_up || fail "agents did not reconnect"
wait_until 40 want "web-1:Online web-2:Online web-3:Online" || { "${CTL[@]}" describe web; fail "no convergence to 3 after the restart: $(states)"; }
[ "$(procs | wc -w)" = 3 ] || fail "processes after the restart: $(procs) (a replica lost or started twice)"
procs | grep -q frozen && fail "a replica counted Online is frozen: $(procs)"
"${CTL[@]}" events web | grep -qE 'inventory +inventory: ' || fail "no inventory event: $("${CTL[@]}" events web)"
echo "restart mid scale-up: $(procs)"

# ---- kill -9 of an agent mid START: its other replicas keep running and are adopted; the start
# ---- that lost its answer is cleaned up and replaced --------------------------------------------
P3=$(procs)
spec 4
wait_until 30 doing_start || fail "no start under way: $(reps)"
N4=$(reps | /usr/bin/python3 -c 'import json,sys; print([r["node"] for r in json.load(sys.stdin) if r["doing"] == "start"][0])')
if [ "$N4" = app1 ]; then AP=$A1; D=r1; G=1; else AP=$A2; D=r2; G=2; fi
kill -9 "$AP"
sleep 0.3
agent "$N4" --replica-dir "$W/$D" --replica-cgroup "$PARENT-$G"
wait_until 20 three_up || fail "$N4 did not reconnect"
for r in $P3; do procs | grep -q "$r" || fail "replica $r did not survive the agent restart: $(procs)"; done
four() { [ "$(states | wc -w)" = 4 ] && ! states | grep -qv ':Online' && [ "$(procs | wc -w)" = 4 ]; }
wait_until 40 four || { "${CTL[@]}" describe web; fail "no convergence to 4 after the agent restart: $(states) / $(procs)"; }
for i in $(seq 1 10); do via_lb > /dev/null || fail "request failed after the agent restart"; done
echo "agent restart mid start: $(states) / $(procs)"

# ---- 2 with a keep-alive of 1 s: two go to Standby, then are deleted (processes, cgroups, slots)
spec 2 1
two() { [ "$(states | wc -w)" = 2 ] && ! states | grep -qv ':Online' && [ "$(procs | wc -w)" = 2 ]; }
wait_until 40 two || { "${CTL[@]}" describe web; fail "no delete after the keep-alive: $(states) / $(procs)"; }
"${CTL[@]}" events web | grep -qE 'action +delete web-[0-9]+: done in [0-9]+ ms' || fail "no delete event"
slots_up() { "${CTL[@]}" --json node-action lb haproxy-slots - --args "{\"haproxy_socket\": \"$S\", \"backend\": \"web\"}" \
    | /usr/bin/python3 -c 'import json,sys; print(sum(s["status"] != "MAINT" for s in json.load(sys.stdin)["slots"]))'; }
[ "$(slots_up)" = 2 ] || fail "slots not freed: $(slots_up) not in MAINT"
n_cg=$(ls -d $R/unified$PARENT-*/web-* 2>/dev/null | wc -l)
[ "$n_cg" = 2 ] || fail "cgroups left behind: $(ls -d $R/unified$PARENT-*/web-*)"
echo "delete after keep-alive: $(states) / $(procs)"
echo PASS
