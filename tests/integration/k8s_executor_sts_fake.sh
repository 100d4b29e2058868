#!/usr/bin/env bash
# timeout: 120
# k8s_executor_sts_fake: Tide's executor on a StatefulSet end to end against the FAKE Kubernetes
# API server (tests/fakekube/fakekube.py), pods real processes in kubepods cgroups found by the
# real agent on node fake-node (_kube_exec.sh). A Workload in Auto with a static portrait:
#   - inventory of the 3 pods that run, scale out to 4 (db-3 created and claimed);
#   - scale in to 2 in gray steps to Standby: the pods cut off and frozen are the highest
#     ordinals db-3 and db-2 (the ones a StatefulSet removes), whichever replicas the planner
#     picked; replicas stay 4;
#   - the standby pods deleted once their keep-alive is over (thawed first, so that they can act
#     on SIGTERM), with the API server slowed down and
#     the control plane killed (SIGKILL) in the middle of it and restarted: it rebuilds the fleet
#     from the API server (tide.io labels) and converges: replicas 2, db-0 and db-1 online,
#     nothing started twice.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"
source "$(dirname "$0")/_kube_exec.sh"

RES=statefulsets NAME=db
workload_of StatefulSet db 3
three_up() { [ "$(fleet statefulsets db | grep -o ':-:False:-:' | wc -l)" = 3 ]; }
wait_until 20 three_up || fail "pods not running: $(fleet statefulsets db)"

wl StatefulSet db 4 Standby 50
wait_until 30 settled 4 || { show; fail "scale out to 4"; }
[ "$(names)" = "db-0 db-1 db-2 db-3 " ] || fail "pods after scale out: $(names)"
echo "scale out: inventory adopted db-0..2, db-3 created and online"

wl StatefulSet db 2 Standby 50
standby2() { [ "$(count standby)" = 2 ] && [ "$(count online)" = 2 ] && [ "$(replicas)" = 4 ]; }
wait_until 30 standby2 || { show; fail "scale in to standby"; }
sb=$(fleet statefulsets db | tr ',' '\n' | grep ':standby:' | cut -d: -f1 | sed 's/^.*pods=//' | sort | tr '\n' ' ')
[ "$sb" = "db-2 db-3 " ] || fail "standby pods are $sb, not the highest ordinals db-2 db-3: $(fleet statefulsets db)"
for uid in $(uids standby); do frozen "$uid" 1 || fail "standby pod $uid not frozen"; done
echo "scale in: the highest ordinals db-2, db-3 cut off and frozen, replicas stay 4"

# ---- the standby pods deleted (keep-alive over), killed in the middle and restarted -------------
api POST "/fake/slow?ms=150" > /dev/null
wl StatefulSet db 2 Standby 50 1
moving() { fleet statefulsets db | grep >/dev/null -E ':deleting:' || [ "$(replicas)" -lt 4 ]; }
wait_until 30 moving || { show; fail "scale in did not start"; }
kill -9 "$CPPID"
timeout 10 tail --pid="$CPPID" -f /dev/null
echo "killed mid-step: $(fleet statefulsets db)"
api POST "/fake/slow?ms=0" > /dev/null
mv "$W/cp.log" "$W/cp1.log"
rm -f "$W/cp.sock"
tide_restart
wait_until 40 settled 2 || { show; fail "no convergence after a restart"; }
[ "$(names)" = "db-0 db-1 " ] || fail "pods left: $(names)"
sleep 2 # two syncs more: nothing moves
settled 2 || { show; fail "moved after converging"; }
grep -q 'inventory: StatefulSet shop/db read from the API server' "$W/cp.log" || fail "no inventory after the restart"
grep -Eq 'dispatch: command .*: activate' "$W/agent.log" || fail "the standby pods were not thawed before their deletion"
echo "restart mid-step: $(grep -o 'inventory: .*' "$W/cp.log" | head -1); converged: replicas 2, db-0 db-1"
echo "ok"
