#!/usr/bin/env bash
# timeout: 120
# k8s_executor_fake: Tide's Deployment executor end to end against the FAKE Kubernetes API server
# (tests/fakekube/fakekube.py, proven with kubectl and python3-kubernetes elsewhere), its pods
# real processes in kubepods cgroups found by the real agent on node fake-node. A Workload in
# Auto with a static portrait:
#   - inventory: the 2 pods that run are adopted (tide.io/state online, gate True, Ready);
#   - scale out to 4: .spec.replicas raised through the Scale, the new pods claimed
#     (tide.io/replica) and brought Online;
#   - scale in to 2 in gray steps to Standby: the replicas Kubernetes sees stay 4 (frozen pods are
#     running pods), the standby pods' cgroups are frozen and their gate False;
#   - scale out to 4 again: the standby pods are woken (thawed, gate True), no pod is created;
#   - scale in to 2 to Deleted while a second writer makes the Scale updates conflict: exactly the
#     pods that were cut off go, replicas 2;
#   - the control plane killed (SIGKILL) in the middle of a scale-out and restarted: it rebuilds
#     the fleet from the API server and converges to 4 (not more);
#   - an autoscaling/v2 HPA on another Deployment: its Workload's Auto is refused with the reason,
#     and that Deployment is not touched.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
[ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable cgroup v2 (unified) mount"
FK=$TIDE_SRC/tests/fakekube/fakekube.py

KP=$(port); TOKEN=fake-token-$$
mkdir -p "$W/fk"
spawn fakekube /usr/bin/python3 "$FK" --port "$KP" --token "$TOKEN" --state-dir "$W/fk" \
    --start-delay 0.3 --node fake-node --bookmark-interval 0.5
FKPID=$SPAWNED
# the fake's pods are processes in cgroups of their own: kill and remove them whatever happens
trap 'rc=$?; set +e; kill $FKPID 2>/dev/null; timeout 10 tail --pid=$FKPID -f /dev/null; /usr/bin/python3 "$FK" --cleanup "$W/fk"; (exit $rc); _cleanup' EXIT
printf '%s\n' "$TOKEN" > "$W/sa-token"
cat > "$W/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: fake
clusters: [{name: fake, cluster: {server: "http://127.0.0.1:$KP"}}]
users: [{name: tide, user: {tokenFile: sa-token}}]
contexts: [{name: fake, context: {cluster: fake, user: tide, namespace: shop}}]
EOF

# api METHOD PATH [BODY]: the fake's answer (JSON), as a client would get it
api() {
    /usr/bin/python3 - "$KP" "$TOKEN" "$@" <<'PY'
import json, sys, urllib.request
port, tok, method, path = sys.argv[1:5]
body = sys.argv[5].encode() if len(sys.argv) > 5 else None
ct = "application/merge-patch+json" if method == "PATCH" else "application/json"
req = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=body, method=method,
                             headers={"Authorization": "Bearer " + tok, "Content-Type": ct})
try:
    print(urllib.request.urlopen(req, timeout=10).read().decode())
except urllib.error.HTTPError as e:
    print(e.read().decode()); sys.exit(1)
PY
}
wait_until 20 api GET /api/v1/namespaces || fail "fake API server not up"

# fleet NAME: "replicas=N pods=name:state:ready:gate,..." of Deployment shop/NAME (pods not terminating)
fleet() {
    /usr/bin/python3 - "$KP" "$TOKEN" "$1" <<'PY'
import json, sys, urllib.request
port, tok, name = sys.argv[1:4]
def get(p):
    r = urllib.request.Request(f"http://127.0.0.1:{port}{p}", headers={"Authorization": "Bearer " + tok})
    return json.load(urllib.request.urlopen(r, timeout=10))
sc = get(f"/apis/apps/v1/namespaces/shop/deployments/{name}/scale")
pods = get(f"/api/v1/namespaces/shop/pods?labelSelector=app%3D{name}")["items"]
out = []
for p in sorted(pods, key=lambda p: p["metadata"]["name"]):
    if p["metadata"].get("deletionTimestamp") or p["status"].get("phase") in ("Succeeded", "Failed"):
        continue
    c = {x["type"]: x["status"] for x in p["status"].get("conditions", [])}
    out.append("%s:%s:%s:%s:%s" % (p["metadata"]["name"], p["metadata"].get("labels", {}).get("tide.io/state", "-"),
               c.get("Ready", "-"), c.get("tide.io/serving", "-"), p["metadata"].get("uid")))
print("replicas=%d pods=%s" % (sc["spec"]["replicas"], ",".join(out)))
PY
}
# count STATE [NAME]: pods of NAME (default web) in Tide state STATE
count() { fleet "${2:-web}" | tr ',' '\n' | grep -c ":$1:" || true; }
replicas() { fleet "${1:-web}" | sed 's/^replicas=\([0-9]*\) .*/\1/'; }
# settled N: replicas N, N pods, all online, Ready and gated True
settled() {
    local f; f=$(fleet web)
    [ "$(replicas)" = "$1" ] && [ "$(count online)" = "$1" ] &&
        [ "$(echo "$f" | tr ',' '\n' | grep -c ':online:True:True:')" = "$1" ] &&
        [ "$(echo "$f" | tr ',' '\n' | grep -c ':')" = "$1" ]
}
names() { fleet web | sed 's/.*pods=//' | tr ',' '\n' | cut -d: -f1 | sort | tr '\n' ' '; }

api POST /api/v1/namespaces '{"metadata":{"name":"shop"}}' > /dev/null
deploy() { # NAME REPLICAS
    api POST /apis/apps/v1/namespaces/shop/deployments "{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",
      \"metadata\":{\"name\":\"$1\"},\"spec\":{\"replicas\":$2,\"selector\":{\"matchLabels\":{\"app\":\"$1\"}},
      \"template\":{\"metadata\":{\"labels\":{\"app\":\"$1\"}},\"spec\":{\"readinessGates\":[{\"conditionType\":\"tide.io/serving\"}],
      \"containers\":[{\"name\":\"w\",\"image\":\"w:1\",\"ports\":[{\"containerPort\":$(port)}]}]}}}}" > /dev/null
}
deploy web 2
wait_until 20 test "$(fleet web | grep -o ':-:False:-:' | wc -l)" = 2 || fail "pods not running: $(fleet web)"

cp_start --k8s-kubeconfig "$W/kubeconfig" --k8s-timeout 5s --k8s-qps 200 --k8s-burst 100
CPPID=$SPAWNED
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node fake-node --token-file "$W/token" \
    --interval 300ms
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }
wait_until 20 agent_up || fail "agent not connected"

# wl NAME REPLICAS STATE KEEPALIVE: applies a Workload with a static portrait
wl() {
    cat > "$W/$1.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: $1, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: $1}
  minReplicas: 1
  maxReplicas: 8
  metrics:
    utilization: {selector: '{workload="$1",metric="cpu"}', target: 60}
  providers:
    - {type: static, priority: 0, replicas: $2}
  behavior:
    syncPeriodSeconds: 1
    scaleUpAhead: 1
    keepAliveSeconds: $4
    scaleDown:
      gray: {state: $3, changePercent: 50, changeIntervalSeconds: 1, observationSeconds: 1}
Y
    "${CTL[@]}" apply -f "$W/$1.yaml" > /dev/null || fail "apply $1"
}
show() { echo "fleet: $(fleet web)"; "${CTL[@]}" describe web 2>&1 | tail -25; }

# ---- inventory, then scale out -----------------------------------------------------------------
first=$(names)
wl web 4 Standby 600
wait_until 40 settled 4 || { show; fail "scale out to 4"; }
"${CTL[@]}" describe web --json | grep -q 'inventory of Deployment shop/web from the API server: replicas 2, 2 online' ||
    { show; fail "no inventory event"; }
for n in $first; do names | grep -qw "$n" || fail "an adopted pod $n went"; done
api GET /api/v1/namespaces/shop/pods | grep -q '"tide.io/replica": "web-1"' || fail "a new pod was not claimed for replica web-1"
echo "scale out: inventory adopted 2, replicas 4, all online: $(names)"

# ---- scale in to Standby: frozen pods stay running pods ------------------------------------------
wl web 2 Standby 600
standby2() { [ "$(count standby)" = 2 ] && [ "$(count online)" = 2 ] && [ "$(replicas)" = 4 ]; }
wait_until 40 standby2 || { show; fail "scale in to standby"; }
for uid in $(fleet web | tr ',' '\n' | grep ':standby:' | cut -d: -f5); do
    grep -q 'frozen 1' /sys/fs/cgroup/unified/kubepods/besteffort/pod$uid/cgroup.events || fail "standby pod $uid not frozen"
done
[ "$(fleet web | tr ',' '\n' | grep -c ':standby:False:False:')" = 2 ] || fail "standby pods not gated False: $(fleet web)"
before=$(names)
echo "scale in: 2 standby (frozen, gate False), replicas stay 4"

# ---- scale out again: standby first --------------------------------------------------------------
wl web 4 Standby 600
wait_until 40 settled 4 || { show; fail "wake standby"; }
[ "$(names)" = "$before" ] || fail "pods changed while waking standby: $before -> $(names)"
for uid in $(fleet web | tr ',' '\n' | cut -d: -f5); do
    grep -q 'frozen 0' /sys/fs/cgroup/unified/kubepods/besteffort/pod$uid/cgroup.events || fail "pod $uid still frozen"
done
echo "scale out: the 2 standby pods woke (thawed, gate True), no pod created"

# ---- scale in to Deleted while a second writer conflicts -----------------------------------------
api POST "/fake/interfere?n=3" > /dev/null
wl web 2 Deleted 600
gone2() { [ "$(replicas)" = 2 ] && settled 2; }
wait_until 40 gone2 || { show; fail "scale in to deleted"; }
grep -q "conflicts re-applied" "$W/cp.log" || fail "no conflict was met"
kept=$(names)
grep -o 'pod [a-z0-9-]* goes' "$W/cp.log" | awk '{print $2}' | sort -u > "$W/gone.txt"
[ "$(wc -l < "$W/gone.txt")" = 2 ] || fail "not exactly 2 pods chosen: $(cat "$W/gone.txt")"
for n in $(cat "$W/gone.txt"); do echo " $kept " | grep -qw "$n" && fail "chosen pod $n still there"; done
echo "scale in: exactly the cut-off pods went ($(tr '\n' ' ' < "$W/gone.txt")), replicas 2, conflicts re-applied"

# ---- killed mid-step and restarted ---------------------------------------------------------------
api POST "/fake/slow?ms=150" > /dev/null # a slower API server: the kill lands mid-step
wl web 5 Standby 600
raised() { [ "$(replicas)" -gt 2 ]; }
wait_until 20 raised || fail "scale out did not start"
kill -9 "$CPPID"
timeout 10 tail --pid="$CPPID" -f /dev/null
echo "killed mid-step: $(fleet web)"
api POST "/fake/slow?ms=0" > /dev/null
mv "$W/cp.log" "$W/cp1.log"
spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
    --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0 \
    --k8s-kubeconfig "$W/kubeconfig" --k8s-timeout 5s --k8s-qps 200 --k8s-burst 100
wait_until 40 settled 5 || { show; fail "no convergence after a restart"; }
sleep 2 # a few syncs more: nothing is started twice
settled 5 || { show; fail "replicas moved after converging"; }
echo "restart mid-step: converged to 5 ($(grep -o 'inventory of .*' "$W/cp.log" | head -1))"

# ---- another scaler owns the target: Auto refused ------------------------------------------------
deploy api 1
api POST /apis/autoscaling/v2/namespaces/shop/horizontalpodautoscalers '{"apiVersion":"autoscaling/v2",
  "kind":"HorizontalPodAutoscaler","metadata":{"name":"api-hpa"},"spec":{"scaleTargetRef":{"apiVersion":"apps/v1",
  "kind":"Deployment","name":"api"},"minReplicas":1,"maxReplicas":5}}' > /dev/null
wl api 3 Standby 600
refused() { "${CTL[@]}" describe api --json | grep -q 'HorizontalPodAutoscaler shop/api-hpa scales Deployment shop/api: Auto refused'; }
wait_until 20 refused || { "${CTL[@]}" describe api; fail "Auto not refused"; }
sleep 2
[ "$(replicas api)" = 1 ] || fail "a refused workload changed its target: $(fleet api)"
fleet api | grep -qE ':(online|starting):' && fail "a refused workload labelled pods: $(fleet api)"
echo "HPA on the target: $(grep -o 'HorizontalPodAutoscaler shop/api-hpa[^"]*' "$W/cp.log" | head -1)"
echo "ok"
