#!/usr/bin/env bash
# timeout: 240
# fakekube_kubectl_fake: the FAKE Kubernetes API server (tests/fakekube/fakekube.py) proven with
# the real kubectl over HTTPS with a bearer token, and its pods found by the real agent:
# discovery (api-resources), apply (create, then a strategic-merge re-apply), get -o json,
# scale, merge patch of spec.replicas, label/annotate, the Workload CRD from deploy/crds applied
# and a Workload created, its schema rejecting a bad object with Kubernetes' message, its status
# written through --subresource=status without touching generation; a Deployment's pods are
# real processes in kubepods/<qos>/pod<uid>/<container> cgroups and the agent's kubepods
# discovery reports them by pod UID; pod-deletion-cost picks which pod a scale-down removes; a
# StatefulSet's ordinals come up in order and go highest first; an autoscaling/v2 HPA is
# stored; a stale PUT of the Scale gets 409 Conflict with Kubernetes' message; deleting the
# Deployment removes its ReplicaSet, pods, processes and cgroups.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

command -v kubectl >/dev/null || skip "kubectl not installed (scripts/setup.sh installs kubernetes-client)"
command -v openssl >/dev/null || skip "openssl not installed"
[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
[ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable cgroup v2 (unified) mount"
FK=$TIDE_SRC/tests/fakekube/fakekube.py

openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=fake-ca -keyout "$W/ca.key" \
    -out "$W/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=fake-kube-apiserver -keyout "$W/srv.key" \
    -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$W/san.ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 1 \
    -extfile "$W/san.ext" -out "$W/srv.pem" 2>/dev/null
KP=$(port); TOKEN=fake-token-$$
mkdir -p "$W/fk"
spawn fakekube /usr/bin/python3 "$FK" --port "$KP" --token "$TOKEN" --tls-cert "$W/srv.pem" \
    --tls-key "$W/srv.key" --state-dir "$W/fk" --start-delay 0.4 --node fake-node
FKPID=$SPAWNED
cat > "$W/kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: fake
  cluster: {server: "https://127.0.0.1:$KP", certificate-authority: "$W/ca.pem"}
users:
- name: tide
  user: {token: "$TOKEN"}
contexts:
- name: fake
  context: {cluster: fake, user: tide, namespace: shop}
current-context: fake
EOF
export KUBECONFIG=$W/kubeconfig
K() { kubectl --request-timeout=20s "$@"; }
wait_until 20 K get --raw /healthz || fail "fake API server not up"
# whatever happens, the pods' processes and cgroups go (also after a kill -9 of the fake)
# (set +e first: under set -e the `(exit $rc)` that hands rc to _cleanup would end the trap)
trap 'rc=$?; set +e; kill $FKPID 2>/dev/null; timeout 10 tail --pid=$FKPID -f /dev/null; /usr/bin/python3 "$FK" --cleanup "$W/fk"; (exit $rc); _cleanup' EXIT

# jq-less JSON field: j EXPR reads stdin as d
j() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- discovery, auth -------------------------------------------------------------------------
K api-resources -o name > "$W/res.txt" || fail "api-resources"
for r in pods deployments.apps statefulsets.apps horizontalpodautoscalers.autoscaling customresourcedefinitions.apiextensions.k8s.io; do
    grep -qx "$r" "$W/res.txt" || fail "api-resources lacks $r: $(cat "$W/res.txt")"
done
rc=0; out=$(kubectl --token wrong get pods 2>&1) || rc=$?
[ $rc != 0 ] && echo "$out" | grep >/dev/null "Unauthorized" || fail "a wrong token was accepted: $out"
printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n' | K apply -f - >/dev/null || fail "create namespace"
echo "discovery: $(wc -l < "$W/res.txt") resources; a wrong token gets 401"

# ---- a Deployment: apply, pods as processes in kubepods cgroups ------------------------------
cat > "$W/web.yaml" <<EOF
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, labels: {app: web}}
spec:
  replicas: 3
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      readinessGates: [{conditionType: tide.io/serving}]
      containers: [{name: web, image: web:1}]
EOF
K apply -f "$W/web.yaml" | grep >/dev/null "deployment.apps/web created" || fail "apply create"
# readiness gate unset: pods run but are not Ready
running() { [ "$(K get pods -l app=web --field-selector=status.phase=Running -o name | wc -l)" = "$1" ]; }
wait_until 20 running 3 || fail "3 pods not running: $(K get pods 2>&1)"
[ "$(K get deploy web -o json | j 'd["status"].get("readyReplicas", 0)')" = 0 ] || fail "pods Ready without their readiness gate"
for p in $(K get pods -l app=web -o name); do
    K patch "$p" --subresource=status --type=strategic \
        -p '{"status":{"conditions":[{"type":"tide.io/serving","status":"True"}]}}' >/dev/null || fail "status patch $p"
done
ready() { [ "$(K get deploy web -o json | j 'd["status"].get("readyReplicas", 0)')" = "$1" ]; }
wait_until 10 ready 3 || fail "Deployment not 3 ready after the gates"
K get deploy web -o json > "$W/web.json"
[ "$(j 'd["metadata"]["generation"] == d["status"]["observedGeneration"] == 1' < "$W/web.json")" = True ] || fail "generation/observedGeneration"
# each pod: a live process in kubepods/besteffort/pod<uid>/<container>
K get pods -l app=web -o json > "$W/pods.json"
curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$KP/fake/pods" > "$W/procs.json"
/usr/bin/python3 - "$W/pods.json" "$W/procs.json" <<'PY' || fail "pods are not processes in their cgroups"
import json, os, sys
pods, procs = json.load(open(sys.argv[1]))["items"], json.load(open(sys.argv[2]))
assert len(pods) == 3
for p in pods:
    name, uid = p["metadata"]["name"], p["metadata"]["uid"]
    pr = procs[name]
    assert pr["pod_cgroup"] == f"/sys/fs/cgroup/unified/kubepods/besteffort/pod{uid}", pr
    assert str(pr["pid"]) in open(pr["cgroup"] + "/cgroup.procs").read().split(), pr
    assert p["spec"]["nodeName"] == "fake-node" and p["status"]["phase"] == "Running"
    assert p["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
PY
echo "deployment: 3 pods Running, Ready only once their readiness gate is True, each a process in its kubepods cgroup"

# ---- the real agent finds them through its kubepods discovery --------------------------------
cp_start
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node fake-node --token-file "$W/token" \
    --interval 300ms
agent_sees() {
    "${CTL[@]}" top --json | /usr/bin/python3 -c "import json,sys
uids = set(sys.argv[1].split())
seen = {r.get('pod_uid') for r in json.load(sys.stdin)['cgroups'] if r.get('kind') == 'pod'}
sys.exit(0 if uids <= seen else 1)" "$(j '" ".join(p["metadata"]["uid"] for p in d["items"])' < "$W/pods.json")"
}
wait_until 30 agent_sees || fail "the agent does not report the fake's pods: $("${CTL[@]}" top --json | head -c 1500)"
echo "agent: kubepods discovery reports the 3 pods by UID"

# ---- scale, patch, re-apply, pod-deletion-cost -----------------------------------------------
K scale deploy/web --replicas=4 | grep >/dev/null scaled || fail "kubectl scale"
wait_until 20 running 4 || fail "not 4 pods after scale"
K patch deploy web --type=merge -p '{"spec":{"replicas":3}}' >/dev/null || fail "merge patch"
wait_until 20 running 3 || fail "not 3 pods after merge patch"
[ "$(K get deploy web -o json | j 'd["metadata"]["generation"]')" = 3 ] || fail "generation not bumped by spec changes"
keep=$(K get pods -l app=web --field-selector=status.phase=Running -o name | sed -n 1p)
victim=$(K get pods -l app=web --field-selector=status.phase=Running -o name | sed -n 2p)
K annotate pods -l app=web controller.kubernetes.io/pod-deletion-cost=100 --overwrite >/dev/null
K annotate "$victim" controller.kubernetes.io/pod-deletion-cost=-50 --overwrite >/dev/null
K label "$victim" tide.io/state=cutoff >/dev/null || fail "label"
[ "$(K get "$victim" -o json | j 'd["metadata"]["labels"]["tide.io/state"]')" = cutoff ] || fail "label not set"
K scale deploy/web --replicas=2 >/dev/null
gone() { ! K get "$victim" >/dev/null 2>&1; }
wait_until 20 gone || fail "the pod with the lowest deletion cost was not the one removed"
wait_until 20 running 2 || fail "not 2 pods"
K get "$keep" >/dev/null || fail "a pod with a higher deletion cost was removed"
# re-apply: kubectl sends a strategic merge patch computed from last-applied
sed -i 's/image: web:1/image: web:2/' "$W/web.yaml"
K apply -f "$W/web.yaml" | grep >/dev/null configured || fail "re-apply"
[ "$(K get deploy web -o json | j 'd["spec"]["template"]["spec"]["containers"][0]["image"], d["spec"]["replicas"]')" = "web:2 3" ] || fail "re-apply result"
echo "scale/patch/apply: generation bumped, the pod with pod-deletion-cost -50 went first"

# ---- the Scale subresource and 409 -----------------------------------------------------------
K get --raw /apis/apps/v1/namespaces/shop/deployments/web/scale > "$W/scale.json"
rv=$(K get deploy web -o json | j 'd["metadata"]["resourceVersion"]')
[ "$(j 'd["kind"], d["apiVersion"], d["status"]["selector"], d["metadata"]["resourceVersion"]' < "$W/scale.json")" = "Scale autoscaling/v1 app=web $rv" ] ||
    fail "Scale shape: $(cat "$W/scale.json")"
K label deploy web touched=1 >/dev/null   # another writer moves the resourceVersion on
sed 's/"replicas": 3}/"replicas": 5}/' "$W/scale.json" > "$W/scale5.json"
rc=0; out=$(K replace --raw /apis/apps/v1/namespaces/shop/deployments/web/scale -f "$W/scale5.json" 2>&1) || rc=$?
echo "$out" | grep >/dev/null 'Operation cannot be fulfilled on deployments.apps "web": the object has been modified; please apply your changes to the latest version and try again' ||
    fail "stale PUT: rc $rc: $out"
echo "scale: autoscaling/v1 shape, selector string, object's resourceVersion; stale PUT -> 409 Conflict"

# ---- a StatefulSet: ordinals -----------------------------------------------------------------
cat > "$W/db.yaml" <<EOF
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db}
spec:
  serviceName: db
  replicas: 3
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db:1}]}
EOF
K apply -f "$W/db.yaml" >/dev/null || fail "apply sts"
dbready() { [ "$(K get sts db -o json | j 'd["status"].get("readyReplicas", 0)')" = "$1" ]; }
wait_until 30 dbready 3 || fail "sts not ready"
K get pods -l app=db -o json | j '[p["metadata"]["labels"]["apps.kubernetes.io/pod-index"] for p in d["items"]]' | grep >/dev/null "'2'" || fail "pod-index label"
K scale sts db --replicas=1 >/dev/null
dbpods() { [ "$(K get pods -l app=db -o name | tr '\n' ' ')" = "$1" ]; }
wait_until 30 dbpods "pod/db-0 " || fail "sts scale-in left $(K get pods -l app=db -o name)"
echo "statefulset: db-0..db-2 with pod-index labels; scale to 1 removed the highest ordinals, kept db-0"

# ---- CRD, Workload, status subresource, HPA --------------------------------------------------
K apply -f "$TIDE_SRC/deploy/crds/workload.yaml" | grep >/dev/null created || fail "apply CRD"
cat > "$W/wl.yaml" <<EOF
apiVersion: tide.io/v1alpha1
kind: Workload
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 2
  maxReplicas: 10
  behavior: {scaleDown: {gray: {state: Standby, changePercent: 25}}}
EOF
K apply -f "$W/wl.yaml" | grep >/dev/null "workload.tide.io/web created" || fail "apply Workload"
K get workloads web -o json | j 'd["spec"]["scaleTargetRef"]["name"], d["metadata"]["generation"]' | grep -x >/dev/null "web 1" || fail "get Workload"
sed 's/maxReplicas: 10/maxReplicas: 0/; s/state: Standby/state: Frozen/' "$W/wl.yaml" > "$W/bad.yaml"
rc=0; out=$(K apply -f "$W/bad.yaml" 2>&1) || rc=$?
[ $rc != 0 ] && echo "$out" | grep >/dev/null 'spec.maxReplicas: Invalid value: 0: spec.maxReplicas in body should be greater than or equal to 1' &&
    echo "$out" | grep >/dev/null 'Unsupported value: "Frozen"' || fail "bad Workload: rc $rc: $out"
K patch workload web --subresource=status --type=merge -p '{"status":{"online":3,"conditions":[{"type":"Ready","status":"True","reason":"Synced"}]}}' >/dev/null ||
    fail "status patch"
K get workload web -o json | j 'd["status"]["online"], d["metadata"]["generation"]' | grep -x >/dev/null "3 1" || fail "status write changed generation or was lost"
K patch workload web --type=merge -p '{"spec":{"maxReplicas":12},"status":{"online":9}}' >/dev/null
K get workload web -o json | j 'd["spec"]["maxReplicas"], d["status"]["online"], d["metadata"]["generation"]' | grep -x >/dev/null "12 3 2" ||
    fail "a main-resource patch must change spec (generation 2) and not status"
cat > "$W/hpa.yaml" <<EOF
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics: [{type: Resource, resource: {name: cpu, target: {type: Utilization, averageUtilization: 60}}}]
EOF
K apply -f "$W/hpa.yaml" >/dev/null || fail "apply HPA"
K get hpa.v2.autoscaling web -o json | j 'd["spec"]["scaleTargetRef"]["kind"]' | grep -x >/dev/null Deployment || fail "get HPA"
echo "crd: Workload created, invalid object refused with Kubernetes' messages, status subresource separate from spec; HPA stored"

# ---- deletion: ReplicaSet, pods, processes, cgroups go ---------------------------------------
cgs=$(curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $TOKEN" "https://127.0.0.1:$KP/fake/pods" | j '" ".join(v["pod_cgroup"] for v in d.values())')
K delete deploy web >/dev/null || fail "delete"
nopods() { [ -z "$(K get pods -l app=web -o name)" ] && [ -z "$(K get rs -o name)" ]; }
wait_until 30 nopods || fail "pods/rs left after deleting the Deployment"
for c in $cgs; do case $c in */pod*) ;; *) continue ;; esac
    if K get pods -o json | grep >/dev/null "${c##*/pod}"; then continue; fi
    [ -d "$c" ] && fail "cgroup $c left behind"
done
echo "delete: garbage-collected ReplicaSet and pods, their cgroups removed"
echo PASS
