#!/usr/bin/env bash
# timeout: 180
# executor_haproxy: an HAProxyBackend workload in Auto mode acting on a real fleet on loopback
# (_executor.sh: HAProxy, three agents as three nodes, the replica fixture):
#   - 2 replicas: started on app1 and app2 (spread), each in its own cgroup, behind a slot,
#     answering through HAProxy; `tidectl get replicas` shows node, server, pid, cgroup;
#   - 1: gray scale-down to Standby under wrk load with 0 failed requests, the replica frozen;
#   - 2: the standby replica is activated (no new one started), warmed up first: it received
#     the spec's warm-up requests before HAProxy sent it real traffic, and the event says so;
#   - 3, and kill -9 of the control plane while the new replica starts: after the restart the
#     fleet converges on 3 online with 3 processes (none lost, none started twice, none frozen
#     while online).
WARMUP='{path: /warm, rate: 20, startRate: 20, durationSeconds: 1}'
source "$(dirname "$0")/_executor.sh"

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
procs | grep >/dev/null "$SB@app[12]:[0-9]*:frozen" || fail "standby $SB not frozen: $(procs)"
P1=$(procs)
echo "scale-down: $SB standby (frozen), 0 failed under wrk"

# ---- 2: the standby replica is activated, nothing new started --------------------------------
spec 2
wait_until 30 want "web-1:Online web-2:Online" || { "${CTL[@]}" describe web; fail "standby not activated: $(states)"; }
[ "$(procs)" = "$(echo "$P1" | sed 's/:frozen//')" ] || fail "activation changed the processes: $P1 -> $(procs)"
"${CTL[@]}" events web | grep >/dev/null -E "action +activate $SB: done in [0-9]+ ms; warm-up [1-9][0-9]* requests, 0 errors" || fail "no activate event with the warm-up: $("${CTL[@]}" events web)"
# the warm-up reached the woken replica before HAProxy sent it real traffic
SBP=$(reps | /usr/bin/python3 -c 'import json,sys
print([r["port"] for r in json.load(sys.stdin) if r["id"] == sys.argv[1]][0])' "$SB")
for i in $(seq 1 20); do via_lb > /dev/null; done
st=$(curl -sf --max-time 5 "http://127.0.0.1:$SBP/stats") || fail "no stats from $SB"
echo "$st" | /usr/bin/python3 -c 'import json,sys
s = json.load(sys.stdin)
assert s["warm"] >= 5 and s["warm_after_real"] == 0 and s["real"] >= 1, s' || fail "warm-up of $SB: $st"
echo "scale-up: $SB activated, warmed up first: $st"

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
procs | grep >/dev/null frozen && fail "a replica counted Online is frozen: $(procs)"
"${CTL[@]}" events web | grep >/dev/null -E 'inventory +inventory: ' || fail "no inventory event: $("${CTL[@]}" events web)"
echo "restart mid scale-up: $(procs)"

echo PASS
