#!/usr/bin/env bash
# timeout: 180
# executor_haproxy_failures: the HAProxyBackend executor when parts fail (_executor.sh: HAProxy,
# three agents as three nodes, the replica fixture), from 3 replicas online:
#   - 4, and kill -9 of the agent whose node runs the new start: its other replicas keep
#     running and are adopted; the start that lost its answer is stopped and replaced;
#   - 2 with a keep-alive of 1 s: the surplus goes to Standby and is deleted (processes,
#     cgroups, slots freed);
#   - kill -9 of a replica: noticed by the periodic check, cleaned up and replaced;
#   - a replica template that never becomes ready: each start fails and is stopped again, the
#     workload's starts back off, each failure is an event.
source "$(dirname "$0")/_executor.sh"

spec 3
wait_until 40 want "web-1:Online web-2:Online web-3:Online" || { "${CTL[@]}" describe web; fail "3 replicas not online: $(states)"; }
# the node of a replica being started (read in the same listing that shows the start: a second
# listing could come after the start has ended)
start_node() {
    N4=$(reps | /usr/bin/python3 -c 'import json,sys
s = [r["node"] for r in json.load(sys.stdin) if r["doing"] == "start"]
print(s[0] if s else "")')
    [ -n "$N4" ]
}

# ---- kill -9 of an agent mid START: its other replicas keep running and are adopted; the start
# ---- that lost its answer is cleaned up and replaced --------------------------------------------
P3=$(procs)
spec 4
wait_until 30 start_node || fail "no start under way: $(reps)"
if [ "$N4" = app1 ]; then AP=$A1; D=r1; G=1; else AP=$A2; D=r2; G=2; fi
kill -9 "$AP"
sleep 0.3
agent "$N4" --replica-dir "$W/$D" --replica-cgroup "$PARENT-$G"
wait_until 20 three_up || fail "$N4 did not reconnect"
for r in $P3; do procs | grep >/dev/null "$r" || fail "replica $r did not survive the agent restart: $(procs)"; done
four() { [ "$(states | wc -w)" = 4 ] && ! states | grep >/dev/null -v ':Online' && [ "$(procs | wc -w)" = 4 ]; }
wait_until 40 four || { "${CTL[@]}" describe web; fail "no convergence to 4 after the agent restart: $(states) / $(procs)"; }
for i in $(seq 1 10); do via_lb > /dev/null || fail "request failed after the agent restart"; done
echo "agent restart mid start: $(states) / $(procs)"

# ---- 2 with a keep-alive of 1 s: two go to Standby, then are deleted (processes, cgroups, slots)
spec 2 1
two() { [ "$(states | wc -w)" = 2 ] && ! states | grep >/dev/null -v ':Online' && [ "$(procs | wc -w)" = 2 ]; }
wait_until 40 two || { "${CTL[@]}" describe web; fail "no delete after the keep-alive: $(states) / $(procs)"; }
"${CTL[@]}" events web | grep >/dev/null -E 'action +delete web-[0-9]+: done in [0-9]+ ms' || fail "no delete event"
slots_up() { "${CTL[@]}" --json node-action lb haproxy-slots - --args "{\"haproxy_socket\": \"$S\", \"backend\": \"web\"}" \
    | /usr/bin/python3 -c 'import json,sys; print(sum(s["status"] != "MAINT" for s in json.load(sys.stdin)["slots"]))'; }
[ "$(slots_up)" = 2 ] || fail "slots not freed: $(slots_up) not in MAINT"
n_cg=$(ls -d $R/unified$PARENT-*/web-* 2>/dev/null | wc -l)
[ "$n_cg" = 2 ] || fail "cgroups left behind: $(ls -d $R/unified$PARENT-*/web-*)"
echo "delete after keep-alive: $(states) / $(procs)"

# ---- a replica that dies on its own is noticed, cleaned up and replaced ---------------------------
VICTIM=$(procs | tr ' ' '\n' | head -1)
kill -9 "${VICTIM##*:}"
replaced() { two && ! procs | grep >/dev/null "${VICTIM%%@*}@"; }
wait_until 40 replaced || { "${CTL[@]}" describe web; fail "$VICTIM not replaced: $(states) / $(procs)"; }
"${CTL[@]}" events web | grep >/dev/null -E "replica +${VICTIM%%@*} Gone: exited on app" || fail "no event for the exited replica"
echo "exited replica replaced: $(states) / $(procs)"

# ---- a replica that never becomes ready: the start fails (stopped again), starts back off ------
STARTUP_MS=600000 spec 3
sed -i 's/timeoutSeconds: 20/timeoutSeconds: 1/' "$W/web.yaml"
"${CTL[@]}" apply -f "$W/web.yaml" > /dev/null
failed_twice() { [ "$("${CTL[@]}" events web | grep -cE 'action-failed +start web-[0-9]+: failed after [0-9]+ ms: replica-start on app[12]: .*not ready after')" -ge 2 ]; }
wait_until 60 failed_twice || fail "no failed starts: $("${CTL[@]}" events web | tail -20)"
# the refusal comes with the sync after the second failure: awaited, not read at once
backed_off() { "${CTL[@]}" events web | grep >/dev/null -E 'action-failed +start web-[0-9]+: refused: start backoff after [0-9]+ failed starts?: next try in [0-9]+ s'; }
wait_until 30 backed_off || fail "no backoff: $("${CTL[@]}" events web | tail -20)"
# every process belongs to a replica the executor lists (a start under way included): none left.
# The processes are read first (a replica is listed before its process is started), the list
# second; a start that fails between the two readings is removed from the list while its
# process is still being stopped, so one snapshot can show a process of a replica just ended:
# awaited until a snapshot shows none (a leaked process would stay and fail it).
no_orphans() {
    ps_now=$(procs)
    ids=" $(reps | /usr/bin/python3 -c 'import json,sys; print(" ".join(r["id"] for r in json.load(sys.stdin)))') "
    orphans=""
    for pr in $ps_now; do [[ "$ids" == *" ${pr%%@*} "* ]] || orphans="$orphans $pr"; done
    [ -z "$orphans" ]
}
wait_until 30 no_orphans || fail "processes that belong to no replica:$orphans (ids:$ids)"
want_two_online() { [ "$(states | grep -o ':Online' | wc -l)" = 2 ]; }
want_two_online || fail "the online replicas were touched: $(states)"
echo "never ready: failed starts stopped, backed off: $(states) / $(procs)"
echo PASS
