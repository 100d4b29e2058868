#!/usr/bin/env bash
# timeout: 120
# k8s_executor_delete_fake: Tide's executor on a Deployment against the FAKE Kubernetes API
# server (tests/fakekube/fakekube.py; _kube_exec.sh), continued from k8s_executor_fake:
#   - a Deployment of 4 adopted by the inventory, then scaled in to 2 to Deleted while a second
#     writer makes the Scale updates conflict (409 re-read and re-applied): exactly the pods that
#     were cut off go (pod-deletion-cost + NotReady, then .spec.replicas lowered), replicas 2;
#   - an autoscaling/v2 HPA on another Deployment: its Workload's Auto is refused with the
#     reason, and that Deployment is not touched.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"
source "$(dirname "$0")/_kube_exec.sh"

RES=deployments NAME=web
workload_of Deployment web 4
four_up() { [ "$(fleet deployments web | grep -o ':-:False:-:' | wc -l)" = 4 ]; }
wait_until 20 four_up || fail "pods not running: $(fleet deployments web)"
wl Deployment web 4 Deleted 100
wait_until 30 settled 4 || { show; fail "inventory of 4"; }
echo "inventory: 4 pods adopted, online"

# ---- scale in to Deleted while a second writer conflicts -----------------------------------------
api POST "/fake/interfere?n=3" > /dev/null
wl Deployment web 2 Deleted 100
wait_until 30 settled 2 || { show; fail "scale in to deleted"; }
grep -q "goes, replicas .* (conflicts re-applied)" "$W/cp.log" || fail "no conflict was met on a delete"
kept=$(names)
grep -o 'pod [a-z0-9-]* goes' "$W/cp.log" | awk '{print $2}' | sort -u > "$W/gone.txt"
[ "$(wc -l < "$W/gone.txt")" = 2 ] || fail "not exactly 2 pods chosen: $(cat "$W/gone.txt")"
for n in $(cat "$W/gone.txt"); do echo " $kept " | grep >/dev/null -w "$n" && fail "chosen pod $n still there"; done
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
fleet deployments api | grep >/dev/null -E ':(online|starting):' && fail "a refused workload labelled pods: $(fleet deployments api)"
echo "HPA on the target: $(grep -o 'HorizontalPodAutoscaler shop/api-hpa[^"]*' "$W/cp.log" | head -1)"
echo "ok"
