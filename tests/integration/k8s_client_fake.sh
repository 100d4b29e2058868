#!/usr/bin/env bash
# timeout: 150
# k8s_client_fake: the control plane's Kubernetes client end to end against the FAKE API server
# (tests/fakekube/fakekube.py over HTTPS with its own CA and a token, proven with kubectl and
# python3-kubernetes elsewhere), configured by a kubeconfig file (k8s_kubeconfig): `tidectl k8s`
# reads a Deployment's Scale (selector, resourceVersion), scales it through the subresource while
# a second writer (kubectl in a loop) keeps changing the object -- every conflict is re-read and
# re-applied and the replicas end where asked; lists the pods of the Scale's selector (node,
# gate, tide.io/state, deletion cost); a StatefulSet's pods carry their ordinals; an
# autoscaling/v2 HPA and a KEDA ScaledObject on the target are found (Auto would be refused); a
# slow API server does not block the control plane's loop (status answers while a call waits)
# and a call past k8s_timeout fails saying so; a bad kubeconfig stops the start with its reason.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

command -v kubectl >/dev/null || skip "kubectl not installed (scripts/setup.sh installs kubernetes-client)"
command -v openssl >/dev/null || skip "openssl not installed"
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
# pods as plain processes (this test is about the API client; cgroups: fakekube_kubectl_fake)
spawn fakekube /usr/bin/python3 "$FK" --port "$KP" --token "$TOKEN" --tls-cert "$W/srv.pem" \
    --tls-key "$W/srv.key" --state-dir "$W/fk" --start-delay 0.3 --no-cgroups
printf '%s\n' "$TOKEN" > "$W/sa-token"
# the kubeconfig Tide reads: CA inline (certificate-authority-data), token from a file
cat > "$W/kubeconfig" <<EOF
apiVersion: v1
kind: Config
current-context: fake
clusters:
- name: fake
  cluster:
    server: https://127.0.0.1:$KP
    certificate-authority-data: $(base64 -w0 "$W/ca.pem")
users:
- name: tide
  user: {tokenFile: sa-token}
contexts:
- name: fake
  context: {cluster: fake, user: tide, namespace: shop}
EOF
export KUBECONFIG=$W/kubeconfig
K() { kubectl --request-timeout=20s --token "$TOKEN" "$@"; }
wait_until 20 K get --raw /healthz || fail "fake API server not up"
j() { /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin); print($1)"; }

# ---- a bad kubeconfig: the control plane does not start, and says why ----------------------
sed 's/current-context: fake/current-context: nope/' "$W/kubeconfig" > "$W/bad-kubeconfig"
printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
rc=0; out=$(timeout 20 "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$(port) --socket "$W/bad.sock" \
    --token-file "$W/token" --data-dir "$W/bad-data" --k8s-kubeconfig "$W/bad-kubeconfig" 2>&1) || rc=$?
[ $rc != 0 ] && echo "$out" | grep >/dev/null "contexts: no entry named \"nope\"" || fail "bad kubeconfig: rc $rc: $out"
echo "bad kubeconfig: refused at start ($(echo "$out" | grep -o 'kubeconfig .*nope.*' | head -c 150))"

cp_start --k8s-kubeconfig "$W/kubeconfig" --k8s-timeout 6s --k8s-qps 50 --k8s-burst 20
"${CTL[@]}" k8s info | grep >/dev/null "https://127.0.0.1:$KP" || fail "k8s info: $("${CTL[@]}" k8s info 2>&1)"

printf 'apiVersion: v1\nkind: Namespace\nmetadata: {name: shop}\n' | K apply -f - >/dev/null
cat <<EOF | K apply -f - >/dev/null || fail "apply"
apiVersion: apps/v1
kind: Deployment
metadata: {name: web, namespace: shop}
spec:
  replicas: 2
  selector: {matchLabels: {app: web}}
  template:
    metadata: {labels: {app: web}}
    spec:
      readinessGates: [{conditionType: tide.io/serving}]
      containers: [{name: web, image: web:1}]
---
apiVersion: apps/v1
kind: StatefulSet
metadata: {name: db, namespace: shop}
spec:
  serviceName: db
  replicas: 2
  selector: {matchLabels: {app: db}}
  template:
    metadata: {labels: {app: db}}
    spec: {containers: [{name: db, image: db:1}]}
EOF

# ---- get: the Scale ---------------------------------------------------------------------------
out=$("${CTL[@]}" --json k8s get deploy/web -n shop) || fail "k8s get: $out"
[ "$(echo "$out" | j 'd["replicas"], d["selector"]')" = "2 app=web" ] || fail "get: $out"
rv=$(K get deploy web -n shop -o json | j 'd["metadata"]["resourceVersion"]')
[ "$(echo "$out" | j 'd["resource_version"]')" -le "$rv" ] || fail "Scale version ahead of the object's"
echo "get: replicas 2, selector app=web"

# ---- scale with a second writer: conflicts re-read and re-applied ------------------------------
# the fake's second writer changes the Deployment just before each of our next PUTs; kubectl
# keeps writing too
admin() { curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $TOKEN" -X POST "https://127.0.0.1:$KP/fake/$1" >/dev/null; }
( i=0; while [ ! -e "$W/stop-writer" ]; do i=$((i+1)); K -n shop label deploy web writer=$i --overwrite >/dev/null 2>&1 || true; done ) &
WR=$!; _PIDS+=("$WR")
total=0
for n in 5 3 6 4; do
    admin "interfere?n=2"
    out=$("${CTL[@]}" --json k8s scale deploy/web -n shop --replicas $n) || fail "scale to $n: $out"
    [ "$(echo "$out" | j 'd["after"]')" = "$n" ] || fail "scale to $n: $out"
    c=$(echo "$out" | j 'd["conflicts"]')
    [ "$c" -ge 2 ] || fail "scale to $n met $c conflicts, the second writer made 2: $out"
    total=$((total + c))
    [ "$(K get deploy web -n shop -o json | j 'd["spec"]["replicas"]')" = "$n" ] || fail "the Deployment is not at $n"
done
# a writer that never lets go: the change is refused loudly, never dropped silently
admin "interfere?n=1000"
rc=0; out=$("${CTL[@]}" k8s scale deploy/web -n shop --replicas 9 2>&1) || rc=$?
admin "interfere?n=0"
[ $rc = 1 ] && echo "$out" | grep >/dev/null "gave up after 9 conflicts" && echo "$out" | grep >/dev/null "replicas stay 4, wanted 9" ||
    fail "relentless writer: rc $rc: $out"
total=$((total + 9))
touch "$W/stop-writer"; wait $WR 2>/dev/null || true
info=$("${CTL[@]}" --json k8s info)
echo "scale: 5, 3, 6, 4 landed through $total conflicts re-read and re-applied; a writer that never stops: '$(echo "$out" | head -c 200)'"
[ "$(echo "$info" | j 'd["conflicts"] == '"$total")" = True ] || fail "conflict counts disagree: $info"

# ---- pods of the Scale's selector ------------------------------------------------------------
pods_running() { [ "$("${CTL[@]}" --json k8s pods deploy/web -n shop | j 'sum(p["phase"]=="Running" and not p["terminating"] for p in d["pods"])')" = "$1" ]; }
wait_until 30 pods_running 4 || fail "k8s pods: $("${CTL[@]}" k8s pods deploy/web -n shop 2>&1)"
p1=$(K get pods -n shop -l app=web -o name | sed -n 1p); p1=${p1#pod/}
K -n shop label pod "$p1" tide.io/state=standby >/dev/null
K -n shop annotate pod "$p1" controller.kubernetes.io/pod-deletion-cost=-7 >/dev/null
out=$("${CTL[@]}" --json k8s pods deploy/web -n shop)
[ "$(echo "$out" | j '[(p["state"], p["deletion_cost"], p["gate"], p["node"]) for p in d["pods"] if p["name"]=="'"$p1"'"][0]')" = "('standby', -7, None, 'fake-node')" ] ||
    fail "pod view: $out"
"${CTL[@]}" k8s pods deploy/web -n shop
sts_ords() { [ "$("${CTL[@]}" --json k8s pods sts/db -n shop | j 'sorted(p.get("ordinal") for p in d["pods"])')" = "[0, 1]" ]; }
wait_until 30 sts_ords ||
    fail "sts ordinals: $("${CTL[@]}" --json k8s pods sts/db -n shop)"
echo "pods: the selector's pods with state, deletion cost, gate and node; StatefulSet ordinals 0, 1"

# ---- another scaler owns the target ----------------------------------------------------------
out=$("${CTL[@]}" --json k8s owner deploy/web -n shop) || fail "owner: $out"
[ "$(echo "$out" | j 'd["owner"]')" = None ] || fail "owner before any HPA: $out"
cat <<EOF | K apply -f - >/dev/null || fail "apply HPA"
apiVersion: autoscaling/v2
kind: HorizontalPodAutoscaler
metadata: {name: web-hpa, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: web}
  minReplicas: 1
  maxReplicas: 5
EOF
out=$("${CTL[@]}" k8s owner deploy/web -n shop) || fail "owner: $out"
echo "$out" | grep >/dev/null "is scaled by HorizontalPodAutoscaler shop/web-hpa: Auto is refused" || fail "HPA not found: $out"
cat <<EOF | K apply -f - >/dev/null || fail "apply KEDA CRD"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata: {name: scaledobjects.keda.sh}
spec:
  group: keda.sh
  scope: Namespaced
  names: {kind: ScaledObject, plural: scaledobjects, singular: scaledobject, shortNames: [so]}
  versions:
  - name: v1alpha1
    served: true
    storage: true
    schema: {openAPIV3Schema: {type: object, x-kubernetes-preserve-unknown-fields: true}}
EOF
K wait --for=condition=Established crd/scaledobjects.keda.sh --timeout=20s >/dev/null || fail "CRD not established"
cat <<EOF | K apply -f - >/dev/null || fail "apply ScaledObject"
apiVersion: keda.sh/v1alpha1
kind: ScaledObject
metadata: {name: db-so, namespace: shop}
spec:
  scaleTargetRef: {kind: StatefulSet, name: db}
  triggers: [{type: cpu, metadata: {value: "60"}}]
EOF
out=$("${CTL[@]}" --json k8s owner sts/db -n shop) || fail "owner sts: $out"
[ "$(echo "$out" | j 'd["owner"]')" = "ScaledObject shop/db-so" ] || fail "KEDA not found: $out"
echo "owner: HorizontalPodAutoscaler shop/web-hpa and ScaledObject shop/db-so found"

# ---- a slow API server: the loop stays free, the deadline holds -------------------------------
curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $TOKEN" -X POST "https://127.0.0.1:$KP/fake/slow?ms=15000" >/dev/null
"${CTL[@]}" --json k8s get deploy/web -n shop > "$W/slow.out" 2> "$W/slow.err" &
SLOW=$!
# while that call waits on the API server, the control plane answers: status completes first
"${CTL[@]}" status >/dev/null || fail "status while a Kubernetes call waits"
kill -0 $SLOW 2>/dev/null || fail "the slow call ended before status answered (the fake was not slow?)"
rc=0; wait $SLOW || rc=$?
[ $rc = 1 ] && grep >/dev/null "no answer within the deadline" "$W/slow.err" || fail "slow call: rc $rc: $(cat "$W/slow.err")"
curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $TOKEN" -X POST "https://127.0.0.1:$KP/fake/slow?ms=0" >/dev/null
echo "slow API: status answered while the call waited; the call failed at k8s_timeout ($(head -c 160 "$W/slow.err"))"

# ---- errors name what was wrong ---------------------------------------------------------------
rc=0; out=$("${CTL[@]}" k8s get deploy/nope -n shop 2>&1) || rc=$?
[ $rc = 1 ] && echo "$out" | grep >/dev/null 'HTTP 404 NotFound: deployments.apps "nope" not found' || fail "not found: rc $rc: $out"
rc=0; out=$("${CTL[@]}" k8s scale deploy/web -n shop 2>&1) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null "scale needs --replicas" || fail "usage: rc $rc: $out"
echo PASS
