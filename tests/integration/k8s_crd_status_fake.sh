#!/usr/bin/env bash
# timeout: 120
# k8s_crd_status_fake: Workloads as custom resources against the FAKE Kubernetes API server
# (tests/fakekube/fakekube.py serving the CRD of deploy/crds/workload.yaml, its pods real
# processes found by the real agent: _kube_exec.sh). The control plane lists and watches the
# Workload objects and writes their .status:
#   - an object (HPA v2 form) applied: Tide scales its Deployment to the portrait, status online,
#     desired, observedGeneration, Ready True (Applied), Scaling False (Steady), nextChange /
#     PredictiveActive / FallbackReactive as the providers say;
#   - its spec changed (generation 2): applied again, observedGeneration 2, lastDecision 3 -> 2;
#   - an object the schema accepts but the spec validator refuses (a cron minute 61): Ready False,
#     reason InvalidSpec, the problem's path in the message; nothing applied;
#   - an object named like a workload applied with tidectl: Ready False, NameConflict;
#   - the object deleted: the workload is gone from Tide, its Deployment left as it is.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"
source "$(dirname "$0")/_kube_exec.sh"

RES=deployments NAME=web
workload_of Deployment web 1
WL=/apis/tide.io/v1alpha1/namespaces/shop/workloads
# status NAME PYEXPR: PYEXPR on the object's status (s) holds
status() {
    local o; o=$(api GET "$WL/$1") || return 1
    /usr/bin/python3 -c "import json,sys
s=json.loads(sys.argv[1]).get('status') or {}
c={x['type']:x for x in s.get('conditions',[])}
sys.exit(0 if ($2) else 1)" "$o"
}
showst() { api GET "$WL/$1" | /usr/bin/python3 -c "import json,sys; print(json.dumps(json.load(sys.stdin).get('status'), indent=1))"; }
cr() { # NAME REPLICAS [EXTRA-PROVIDER]
    echo "{\"apiVersion\":\"tide.io/v1alpha1\",\"kind\":\"Workload\",\"metadata\":{\"name\":\"$1\",\"namespace\":\"shop\"},
      \"spec\":{\"scaleTargetRef\":{\"apiVersion\":\"apps/v1\",\"kind\":\"Deployment\",\"name\":\"$1\"},
      \"minReplicas\":1,\"maxReplicas\":6,\"metrics\":{\"utilization\":{\"selector\":\"{workload=\\\"$1\\\",metric=\\\"cpu\\\"}\",\"target\":60}},
      \"providers\":[{\"type\":\"static\",\"priority\":0,\"replicas\":$2}${3:+,$3}],
      \"behavior\":{\"syncPeriodSeconds\":1,\"scaleUpAhead\":1,
        \"scaleDown\":{\"gray\":{\"state\":\"Deleted\",\"changePercent\":100,\"changeIntervalSeconds\":1,\"observationSeconds\":1}}}}}"
}

# ---- an object applied, its status written ---------------------------------------------------
api POST "$WL" "$(cr web 3)" > /dev/null || fail "Workload object not created"
listed() { "${CTL[@]}" get workloads | grep >/dev/null -E '^web +shop +Deployment/web +Auto'; }
wait_until 20 listed || fail "the object was not applied: $("${CTL[@]}" get workloads 2>&1)"
wait_until 30 settled 3 || { show; fail "not scaled to 3"; }
st3() { status web "s.get('online')==3 and s.get('desired')==3 and s.get('observedGeneration')==1 and c['Ready']['status']=='True' and c['Ready']['reason']=='Applied' and c['Scaling']['status']=='False' and c['PredictiveActive']['reason']=='NoPredictiveProvider'"; }
wait_until 20 st3 || { showst web; fail "status after scale out"; }
echo "object applied: Deployment at 3, status $(api GET "$WL/web" | /usr/bin/python3 -c "import json,sys; s=json.load(sys.stdin)['status']; print({k: s[k] for k in ('online','cutoff','standby','desired','observedGeneration')})")"

# ---- the spec changed ------------------------------------------------------------------------
api PATCH "$WL/web" '{"spec":{"providers":[{"type":"static","priority":0,"replicas":2}]}}' > /dev/null
wait_until 30 settled 2 || { show; fail "not scaled to 2"; }
st2() { status web "s.get('online')==2 and s.get('observedGeneration')==2 and s.get('lastDecision',{}).get('from')==3 and s['lastDecision']['to']==2 and c['Ready']['status']=='True'"; }
wait_until 20 st2 || { showst web; fail "status after the change"; }
echo "spec changed: generation 2 applied, lastDecision $(api GET "$WL/web" | /usr/bin/python3 -c "import json,sys; d=json.load(sys.stdin)['status']['lastDecision']; print(d['from'], '->', d['to'], d['reason'][:60])")"

# ---- an object the validator refuses --------------------------------------------------------
api POST "$WL" "$(cr bad 2 '{"type":"cron","priority":5,"windows":[{"start":"61 * * * *","end":"0 18 * * *","replicas":2}]}' | sed 's/"name":"bad"}/"name":"web-bad"}/')" > /dev/null ||
    fail "the schema refused a cron minute 61 (only the validator should)"
invalid() { status bad "c['Ready']['status']=='False' and c['Ready']['reason']=='InvalidSpec' and 'spec.providers[1].windows[0].start' in c['Ready']['message']"; }
wait_until 20 invalid || { showst bad; fail "invalid object: no InvalidSpec"; }
"${CTL[@]}" get workloads | grep >/dev/null '^bad ' && fail "an invalid object was applied"
echo "invalid object: Ready False InvalidSpec ($(api GET "$WL/bad" | /usr/bin/python3 -c "import json,sys; print([c['message'] for c in json.load(sys.stdin)['status']['conditions'] if c['type']=='Ready'][0][:90])"))"

# ---- a name tidectl already applied -----------------------------------------------------------
sed 's/name: web/name: api/g; s/\(name: api\)$/\1/' > "$W/api.yaml" <<'Y'
apiVersion: tide/v1
kind: Workload
metadata: {name: api, namespace: shop}
spec:
  scaleTargetRef: {apiVersion: apps/v1, kind: Deployment, name: api}
  minReplicas: 1
  maxReplicas: 3
  mode: Preview
  metrics:
    utilization: {selector: '{workload="api",metric="cpu"}', target: 60}
Y
"${CTL[@]}" apply -f "$W/api.yaml" > /dev/null || fail "tidectl apply api"
api POST "$WL" "$(cr api 2)" > /dev/null
conflict() { status api "c['Ready']['status']=='False' and c['Ready']['reason']=='NameConflict'"; }
wait_until 20 conflict || { showst api; fail "no NameConflict"; }
"${CTL[@]}" describe api | grep >/dev/null 'Mode:        Preview' || fail "the tidectl workload was replaced"
echo "name conflict: refused, the tidectl-applied workload kept"

# ---- the object deleted -----------------------------------------------------------------------
api DELETE "$WL/web" > /dev/null
gone() { ! "${CTL[@]}" get workloads | grep >/dev/null '^web '; }
wait_until 20 gone || fail "the deleted object's workload is still there"
sleep 1
settled 2 || fail "deleting the object changed the Deployment: $(fleet deployments web)"
echo "object deleted: workload gone, Deployment left at 2"
echo "ok"
