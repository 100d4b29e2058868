#!/usr/bin/env bash
# workloads.sh: workload specs in a live control plane fed by a real agent: `tidectl apply`
# rejects an invalid spec listing every problem with its line and changes nothing; a valid one
# is created, re-applied unchanged, then configured; its controller observes the agent's series
# in the store and `describe` shows the portrait ahead, replica states and decisions with
# reasons; `events` lists them; the spec survives a control plane restart; `delete` removes it.
# timeout: 90
source "$(dirname "$0")/lib.sh"

printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
start_cp() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --log-level info
    CP=$SPAWNED
}
start_cp
wait_until 20 test -S "$W/cp.sock"
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n1 --token-file "$W/token" \
    --interval 200ms --reconnect-max 1s

# an invalid spec: every problem, by field path and line, exit 2, nothing applied
set +e
out=$("${CTL[@]}" apply -f tests/fixtures/workload/bad.yaml 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || fail "invalid spec: exit $rc, want 2: $out"
n=$(echo "$out" | grep -cE '^spec\.|^apiVersion|^kind|^metadata') || true
[ "$n" -eq 15 ] || fail "want 15 problems listed, got $n: $out"
echo "$out" | grep >/dev/null '^spec.behavior.scaleDown.gray.changePercent (line 30): must be in 1..100, got 0$' \
    || fail "changePercent problem missing: $out"
[ "$("${CTL[@]}" get workloads --json)" = "[]" ] || fail "an invalid spec changed something"
# the control plane validates on its own too (a client that skips local checks)
/usr/bin/python3 - "$W/cp.sock" <<'PY' || fail "control plane accepted an invalid spec"
import json, socket, struct, sys
s = socket.socket(socket.AF_UNIX); s.connect(sys.argv[1])
body = json.dumps({"cmd": "workload-apply", "args": {"yaml": open("tests/fixtures/workload/bad.yaml").read()}}).encode()
s.sendall(struct.pack(">I", len(body)) + body)
hdr = b""
while len(hdr) < 4: hdr += s.recv(4 - len(hdr))
n = struct.unpack(">I", hdr)[0]; data = b""
while len(data) < n: data += s.recv(n - len(data))
r = json.loads(data)
assert r["ok"] is False and r["status"] == 2, r
assert "15 problems" in r["error"] and "nothing changed" in r["error"], r
PY

cat > "$W/web.yaml" <<'Y'
apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target: {kind: Deployment, namespace: shop, name: web}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    utilization:
      selector: 'node_cpu_count{node="n1"}'
      target: 60
  providers:
    - {type: reactive, priority: 10}
    - {type: static, priority: 0, replicas: 2}
Y
"${CTL[@]}" apply -f "$W/web.yaml" | grep >/dev/null '^workload/web created (generation 1)$' || fail "create"
"${CTL[@]}" apply -f "$W/web.yaml" | grep >/dev/null '^workload/web unchanged (generation 1)$' || fail "unchanged"
sed -i 's/maxReplicas: 5/maxReplicas: 6/' "$W/web.yaml"
"${CTL[@]}" apply -f "$W/web.yaml" | grep >/dev/null '^workload/web configured (generation 2)$' || fail "configured"
test -f "$W/data/workloads/web.yaml" || fail "spec not stored"

# the controller observes the agent's series (one "pod") and decides
observed() { "${CTL[@]}" describe web --json | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin); assert d['observation'].startswith('1 pod'), d['observation']
assert d['portrait'] and d['portrait'][0]['source']=='reactive', d['portrait'][:1]
assert d['replicas'] and d['replicas'][0]['state']=='Online', d['replicas']
assert any(e['kind']=='target' for e in d['events']), d['events']"; }
wait_until 30 observed || { "${CTL[@]}" describe web; fail "controller did not observe"; }
out=$("${CTL[@]}" describe web)
echo "$out" | grep >/dev/null '^Mode:        Auto (running as Preview)$' || fail "describe mode: $out"
echo "$out" | grep >/dev/null 'Portrait ahead' || fail "describe portrait: $out"
echo "$out" | grep >/dev/null -E '^  web-live-1 +Online' || fail "describe replicas: $out"
echo "$out" | grep >/dev/null -E 'target +need [0-9]+ online' || fail "describe decisions: $out"
"${CTL[@]}" get workloads | grep >/dev/null -E '^web +shop +Deployment/web +Preview +1 +6 ' || fail "get workloads"
"${CTL[@]}" events web | grep >/dev/null -E '^[0-9T:-]+Z  web +target ' || fail "events"
set +e
"${CTL[@]}" describe nope > /dev/null 2>&1; rc=$?
set -e
[ $rc -eq 2 ] || fail "describe of an unknown workload: exit $rc"

# a predictive workload on a store with seconds to minutes of history: no model can be fitted
# (nothing yet, or less than a day: the first quality gate) and the provider falls back to
# reactive, saying why in the status and in a decision event
cat > "$W/api.yaml" <<'Y'
apiVersion: tide/v1
kind: Workload
metadata: {name: api}
spec:
  target: {kind: HAProxyBackend, name: api}
  maxReplicas: 4
  metrics:
    utilization: {selector: 'node_cpu_count{node="n1"}', target: 60}
    traffic: [{name: load, selector: 'node_load1{node="n1"}'}]
  providers:
    - {type: predictive, priority: 10, model: holt-winters, quantile: 0.9, capacityPerReplica: 1}
Y
"${CTL[@]}" apply -f "$W/api.yaml" | grep >/dev/null '^workload/api created' || fail "create api"
fell_back() { "${CTL[@]}" describe api --json | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin); assert 'fallback to reactive (no model' in d.get('status',''), d.get('status')"; }
wait_until 30 fell_back || { "${CTL[@]}" describe api; fail "no recorded fallback"; }
"${CTL[@]}" describe api | grep -E '^Providers: .*fallback to reactive \(' || fail "fallback reason not shown"
"${CTL[@]}" events api | grep >/dev/null -E ' api +fallback +providers\[0\] \(predictive\) falls back to reactive: ' \
    || fail "no fallback event: $("${CTL[@]}" events api)"
"${CTL[@]}" delete api > /dev/null

# the HAProxyBackend example: its target, haproxy and replica template shown, Preview with why
sed 's/^  name: web$/  name: fleet/' "$TIDE_SRC/deploy/examples/haproxy-backend.yaml" > "$W/fleet.yaml"
"${CTL[@]}" apply -f "$W/fleet.yaml" | grep >/dev/null '^workload/fleet created' || fail "create fleet"
out=$("${CTL[@]}" describe fleet)
echo "$out" | grep >/dev/null -x 'HAProxy:     node lb1, socket /run/haproxy/admin.sock, slots r\* of backend web' \
    || fail "describe haproxy: $out"
echo "$out" | grep >/dev/null -x 'Replica:     /srv/web/bin/server --listen 0.0.0.0:{port} --name {id}' \
    || fail "describe replica: $out"
echo "$out" | grep >/dev/null -x '             ports 8100-8119 on app1 app2' || fail "describe ports: $out"
echo "$out" | grep >/dev/null '^Mode:        Auto (running as Auto)$' || fail "describe mode: $out"
inv_waits() { "${CTL[@]}" describe fleet | grep >/dev/null "^Inventory:   HAProxy's node lb1 is not connected"; }
wait_until 10 inv_waits || fail "describe inventory: $("${CTL[@]}" describe fleet)"
"${CTL[@]}" describe fleet --json | /usr/bin/python3 -c "import json,sys
t=json.load(sys.stdin)['target']
assert t['addresses'] == {'app1': '10.0.0.11', 'app2': '10.0.0.12'}, t
assert t['replica']['memory_bytes'] == 512 << 20 and t['replica']['readiness_path'] == '/healthz', t" \
    || fail "describe --json target"
"${CTL[@]}" delete fleet > /dev/null

# a restart reloads the stored spec
kill -TERM $CP
wait_until 10 sh -c "! kill -0 $CP 2>/dev/null"
start_cp
wait_until 20 test -S "$W/cp.sock"
wait_until 20 sh -c "'$TIDE_BIN/tidectl' --socket '$W/cp.sock' get workloads --json | grep >/dev/null '\"max\":[[:space:]]*6'" \
    || fail "spec not reloaded after restart"

"${CTL[@]}" delete web | grep >/dev/null '^workload/web deleted$' || fail "delete"
[ "$("${CTL[@]}" get workloads --json)" = "[]" ] || fail "still listed after delete"
test ! -f "$W/data/workloads/web.yaml" || fail "stored spec not removed"
echo "workloads: ok"
