# _kube_exec.sh: what the k8s_executor_*_fake tests share (source after lib.sh and
# _controlplane.sh): the FAKE Kubernetes API server (tests/fakekube/fakekube.py, plain HTTP on
# loopback, a bearer token) with pods as real processes in kubepods cgroups on node fake-node, a
# kubeconfig for Tide, the control plane started on it with a real agent for fake-node, and
# helpers to read the fleet as a client sees it and to apply Workloads.

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

# api METHOD PATH [BODY]: the fake's answer (JSON), as a client gets it
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
api POST /api/v1/namespaces '{"metadata":{"name":"shop"}}' > /dev/null
# the Workload custom resource definition as shipped (deploy/crds/workload.yaml)
api POST /apis/apiextensions.k8s.io/v1/customresourcedefinitions \
    "$(/usr/bin/python3 -c 'import json,sys,yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))' \
       "$TIDE_SRC/deploy/crds/workload.yaml")" > /dev/null || fail "CRD not accepted"

# fleet RESOURCE NAME: "replicas=N pods=name:state:Ready:gate:uid,..." (pods not terminating,
# sorted by name), RESOURCE deployments or statefulsets in namespace shop
fleet() {
    /usr/bin/python3 - "$KP" "$TOKEN" "$1" "$2" <<'PY'
import json, sys, urllib.request
port, tok, res, name = sys.argv[1:5]
def get(p):
    r = urllib.request.Request(f"http://127.0.0.1:{port}{p}", headers={"Authorization": "Bearer " + tok})
    return json.load(urllib.request.urlopen(r, timeout=10))
sc = get(f"/apis/apps/v1/namespaces/shop/{res}/{name}/scale")
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
# with RES and NAME set by the test:
count() { fleet "$RES" "$NAME" | tr ',' '\n' | grep -c ":$1:" || true; }      # pods in Tide state $1
replicas() { fleet "$RES" "$NAME" | sed 's/^replicas=\([0-9]*\) .*/\1/'; }
names() { fleet "$RES" "$NAME" | sed 's/.*pods=//' | tr ',' '\n' | cut -d: -f1 | sort | tr '\n' ' '; }
uids() { fleet "$RES" "$NAME" | tr ',' '\n' | grep ":$1:" | cut -d: -f5; } # of pods in state $1
# settled N: replicas N, N pods, all online, Ready and gated True
settled() {
    local f; f=$(fleet "$RES" "$NAME")
    [ "$(echo "$f" | sed 's/^replicas=\([0-9]*\) .*/\1/')" = "$1" ] &&
        [ "$(echo "$f" | tr ',' '\n' | grep -c ':online:True:True:')" = "$1" ] &&
        [ "$(echo "$f" | tr ',' '\n' | grep -c ':')" = "$1" ]
}
frozen() { grep -q "frozen $2" /sys/fs/cgroup/unified/kubepods/besteffort/pod$1/cgroup.events; } # UID 1|0

# workload_of KIND NAME REPLICAS: a Deployment or StatefulSet in shop whose pods carry the
# readiness gate tide.io/serving and a container port (WL_PORT, the same for every pod: they
# all have podIP 127.0.0.1)
workload_of() {
    local extra=""
    WL_PORT=$(port)
    [ "$1" = StatefulSet ] && extra="\"serviceName\":\"$2\",\"podManagementPolicy\":\"Parallel\","
    api POST "/apis/apps/v1/namespaces/shop/${1,,}s" "{\"apiVersion\":\"apps/v1\",\"kind\":\"$1\",
      \"metadata\":{\"name\":\"$2\"},\"spec\":{$extra\"replicas\":$3,\"selector\":{\"matchLabels\":{\"app\":\"$2\"}},
      \"template\":{\"metadata\":{\"labels\":{\"app\":\"$2\"}},\"spec\":{\"readinessGates\":[{\"conditionType\":\"tide.io/serving\"}],
      \"containers\":[{\"name\":\"w\",\"image\":\"w:1\",\"ports\":[{\"containerPort\":$WL_PORT}]}]}}}}" > /dev/null
}

K8S_FLAGS=(--k8s-kubeconfig "$W/kubeconfig" --k8s-timeout 5s --k8s-qps 200 --k8s-burst 100)
tide_start() {
    cp_start "${K8S_FLAGS[@]}"
    CPPID=$SPAWNED
}
# tide_restart: the control plane again on the same ports and data (after a kill)
tide_restart() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0 "${K8S_FLAGS[@]}"
    CPPID=$SPAWNED
}
tide_start
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node fake-node --token-file "$W/token" \
    --interval 300ms
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }
wait_until 20 agent_up || fail "agent not connected"

# wl KIND NAME REPLICAS GRAYSTATE CHANGEPERCENT [KEEPALIVE]: applies Workload NAME (HPA v2 form:
# namespace once, scaleTargetRef) with a static portrait of REPLICAS, syncs every second, standby
# replicas kept KEEPALIVE seconds (default 600); $WARMUP, when set, its spec.warmup (a YAML flow
# mapping)
wl() {
    cat > "$W/$2.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: $2, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: $1, name: $2}
  minReplicas: 1
  maxReplicas: 8
  metrics:
    utilization: {selector: '{workload="$2",metric="cpu"}', target: 60}
  providers:
    - {type: static, priority: 0, replicas: $3}
  behavior:
    syncPeriodSeconds: 1
    scaleUpAhead: 1
    keepAliveSeconds: ${6:-600}
    scaleDown:
      gray: {state: $4, changePercent: $5, changeIntervalSeconds: 1, observationSeconds: 1}
$( [ -n "${WARMUP:-}" ] && echo "  warmup: $WARMUP" )
Y
    "${CTL[@]}" apply -f "$W/$2.yaml" > /dev/null || fail "apply $2"
}
# described NAME PATTERN: workload NAME's describe --json matches PATTERN (read whole first:
# grep -q on a pipe would end the writer early under pipefail)
described() { local d; d=$("${CTL[@]}" describe "$1" --json) && grep -q -- "$2" <<< "$d"; }
show() { echo "fleet: $(fleet "$RES" "$NAME")"; "${CTL[@]}" describe "$NAME" 2>&1 | tail -25; }
