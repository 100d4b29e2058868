#!/usr/bin/env bash
# timeout: 120
# k8s_executor_fake: Tide's executor on a Deployment end to end against the FAKE Kubernetes API
# server (tests/fakekube/fakekube.py, proven with kubectl and python3-kubernetes elsewhere), its
# pods real processes in kubepods cgroups found by the real agent on node fake-node
# (_kube_exec.sh). A Workload in Auto with a static portrait:
#   - inventory: the 2 pods that run are adopted (tide.io/state online, gate True, Ready);
#   - scale out to 4: .spec.replicas raised through the Scale, the new pods claimed
#     (tide.io/replica) and brought Online;
#   - scale in to 2 in gray steps to Standby: the replicas Kubernetes sees stay 4 (frozen pods are
#     running pods), the standby pods' cgroups are frozen and their gate False;
#   - scale out to 4 again: the standby pods are woken (thawed, warmed up on podIP:containerPort
#     by spec.warmup, gate True), no pod is created; the activate events carry the warm-up's
#     figures;
#   (deletion, conflicts and another scaler: k8s_executor_delete_fake).
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"
source "$(dirname "$0")/_kube_exec.sh"

RES=deployments NAME=web
workload_of Deployment web 2
two_up() { [ "$(fleet deployments web | grep -o ':-:False:-:' | wc -l)" = 2 ]; }
wait_until 20 two_up || fail "pods not running: $(fleet deployments web)"

# ---- inventory, then scale out -----------------------------------------------------------------
first=$(names)
wl Deployment web 4 Standby 50
wait_until 30 settled 4 || { show; fail "scale out to 4"; }
described web 'Deployment shop/web read from the API server: replicas 2, 2 online' ||
    { show; fail "no inventory event"; }
for n in $first; do names | grep >/dev/null -w "$n" || fail "an adopted pod $n went"; done
pods=$(api GET /api/v1/namespaces/shop/pods)
grep -q '"tide.io/replica": "web-1"' <<< "$pods" || fail "a new pod was not claimed for replica web-1"
echo "scale out: inventory adopted 2, replicas 4, all online: $(names)"

# ---- scale in to Standby in gray steps: frozen pods stay running pods ---------------------------
wl Deployment web 2 Standby 50
standby2() { [ "$(count standby)" = 2 ] && [ "$(count online)" = 2 ] && [ "$(replicas)" = 4 ]; }
wait_until 30 standby2 || { show; fail "scale in to standby"; }
for uid in $(uids standby); do frozen "$uid" 1 || fail "standby pod $uid not frozen"; done
[ "$(fleet deployments web | tr ',' '\n' | grep -c ':standby:False:False:')" = 2 ] || fail "standby pods not gated False: $(fleet deployments web)"
described web 'step 2 cuts off 1' || fail "not in two gray steps"
before=$(names)
echo "scale in: 2 standby in 2 gray steps (frozen, gate False), replicas stay 4"

# ---- scale out again: standby first, warmed up ---------------------------------------------------
# the pods' container port (every pod's podIP is 127.0.0.1): a server that counts the warm-up
spawn warmsrv /usr/bin/python3 "$TIDE_SRC/tests/fixtures/replicas/replica.py" "$WL_PORT" --name warm
wait_until 10 curl -sf --max-time 2 "http://127.0.0.1:$WL_PORT/stats" > /dev/null || fail "warm-up server not up"
WARMUP='{path: /warm, rate: 20, startRate: 20, durationSeconds: 0.5}' wl Deployment web 4 Standby 50
wait_until 30 settled 4 || { show; fail "wake standby"; }
[ "$(names)" = "$before" ] || fail "pods changed while waking standby: $before -> $(names)"
for uid in $(uids online); do frozen "$uid" 0 || fail "pod $uid still frozen"; done
st=$(curl -sf --max-time 5 "http://127.0.0.1:$WL_PORT/stats") || fail "no warm-up stats"
/usr/bin/python3 -c 'import json,sys; assert json.loads(sys.argv[1])["warm"] >= 4, sys.argv[1]' "$st" ||
    fail "the woken pods got no warm-up: $st"
ev=$("${CTL[@]}" events web)
[ "$(grep -cE 'action +activate [^ :]+: done in [0-9]+ ms; warm-up [1-9][0-9]* requests, 0 errors' <<< "$ev")" = 2 ] ||
    fail "activate events without the warm-up: $ev"
echo "scale out: the 2 standby pods woke (thawed, warmed up: $st, gate True), no pod created"

echo "ok"
