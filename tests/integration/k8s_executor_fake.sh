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
#   - scale out to 4 again: the standby pods are woken (thawed, gate True), no pod is created;
#   - scale in to 2 to Deleted while a second writer makes the Scale updates conflict: exactly the
#     pods that were cut off go, replicas 2;
#   - an autoscaling/v2 HPA on another Deployment: its Workload's Auto is refused with the reason,
#     and that Deployment is not touched.
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
for n in $first; do names | grep -qw "$n" || fail "an adopted pod $n went"; done
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

# ---- scale out again: standby first --------------------------------------------------------------
wl Deployment web 4 Standby 50
wait_until 30 settled 4 || { show; fail "wake standby"; }
[ "$(names)" = "$before" ] || fail "pods changed while waking standby: $before -> $(names)"
for uid in $(uids online); do frozen "$uid" 0 || fail "pod $uid still frozen"; done
echo "scale out: the 2 standby pods woke (thawed, gate True), no pod created"

# ---- scale in to Deleted while a second writer conflicts -----------------------------------------
api POST "/fake/interfere?n=3" > /dev/null
wl Deployment web 2 Deleted 100
wait_until 30 settled 2 || { show; fail "scale in to deleted"; }
grep -q "goes, replicas .* (conflicts re-applied)" "$W/cp.log" || fail "no conflict was met on a delete"
kept=$(names)
grep -o 'pod [a-z0-9-]* goes' "$W/cp.log" | awk '{print $2}' | sort -u > "$W/gone.txt"
[ "$(wc -l < "$W/gone.txt")" = 2 ] || fail "not exactly 2 pods chosen: $(cat "$W/gone.txt")"
for n in $(cat "$W/gone.txt"); do echo " $kept " | grep -qw "$n" && fail "chosen pod $n still there"; done
echo "scale in: exactly the cut-off pods went ($(tr '\n' ' ' < "$W/gone.txt")), replicas 2, conflicts re-applied"

# ---- another scaler owns the target: Auto refused ------------------------------------------------
RES=deployments NAME=api
workload_of Deployment api 1
api POST /apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers '{"apiVersion":"autoscaling/v2",
  "kind":"HorizontalPodAutoscaler","metadata":{"name":"api-hpa"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1",
  "kind":"Deployment","name":"api"},"minReplicas":1,"maxReplicas":5}}' > /dev/null
wl Deployment api 3 Standby 50
refused() { described api 'HorizontalPodAutoscaler shop/api-hpa scales Deployment shop/api: Auto refused'; }
wait_until 20 refused || { show; fail "Auto not refused"; }
sleep 2 # two syncs: nothing may happen
[ "$(replicas)" = 1 ] || fail "a refused workload changed its target: $(fleet deployments api)"
fleet deployments api | grep -qE ':(online|starting):' && fail "a refused workload labelled pods: $(fleet deployments api)"
echo "HPA on the target: $(grep -o 'HorizontalPodAutoscaler shop/api-hpa[^"]*' "$W/cp.log" | head -1)"
echo "ok"
