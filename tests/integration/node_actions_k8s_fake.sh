#!/usr/bin/env bash
# timeout: 120
# node_actions_k8s_fake: readiness-gate traffic control against a FAKE Kubernetes API server
# (tests/fixtures/node_actions/fake_kube_apiserver.py, HTTPS with its own CA, bearer token;
# no kube-apiserver can be run here). tidectl node-action --pod NS/NAME -> tide-controlplane
# (PATCH pods/NS/NAME/status, strategic merge patch of the tide.io/serving condition) and
# COMMAND -> tide-agent (drain: connections to the endpoint through the kernel; standby/
# activate: a real backend in its own v2 cgroup). Asserts: drain sets the gate False before
# the agent waits, the drain waits for the open connection and is clean when it closes; a
# drain that hits its deadline fails with its details (--json prints them, gate stays False);
# standby freezes; activate thaws, the backend answers, and the gate (and Ready) is True
# again; unknown pod (404), bad token (401), malformed --pod and --pod with warmup give clear
# errors and do nothing on the agent; every patch the fake saw was well-formed.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_node_actions.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v openssl >/dev/null || skip "openssl not installed"
[ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable cgroup v2 (unified) mount"

R=/sys/fs/cgroup/unified
TAG=tide-it-k8s-$$
FIX=$TIDE_SRC/tests/fixtures/node_actions

# the fake API server: a CA and a certificate for 127.0.0.1 signed by it
openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=fake-ca -keyout "$W/ca.key" \
    -out "$W/ca.pem" 2>/dev/null
openssl req -newkey rsa:2048 -nodes -subj /CN=fake-kube-apiserver -keyout "$W/srv.key" \
    -out "$W/srv.csr" 2>/dev/null
printf 'subjectAltName=IP:127.0.0.1\n' > "$W/san.ext"
openssl x509 -req -in "$W/srv.csr" -CA "$W/ca.pem" -CAkey "$W/ca.key" -CAcreateserial -days 1 \
    -extfile "$W/san.ext" -out "$W/srv.pem" 2>/dev/null
KP=$(port); KTOKEN=fake-sa-token-$$
printf '%s\n' "$KTOKEN" > "$W/k8s-token"
spawn kube /usr/bin/python3 "$FIX/fake_kube_apiserver.py" "$KP" "$KTOKEN" "$W/srv.pem" "$W/srv.key" "$W/kube-requests.jsonl"
kube_up() { curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $KTOKEN" "https://127.0.0.1:$KP/api/v1/namespaces/shop/pods/web-1" > /dev/null; }
wait_until 15 kube_up
# cond POD TYPE: the pod's condition status as the fake API shows it
cond() { curl -sf --cacert "$W/ca.pem" -H "Authorization: Bearer $KTOKEN" "https://127.0.0.1:$KP/api/v1/namespaces/shop/pods/$1" |
         /usr/bin/python3 -c 'import json,sys; p=json.load(sys.stdin); print([c["status"] for c in p["status"]["conditions"] if c["type"]==sys.argv[1]][0])' "$2"; }

# a backend in its own cgroup
BP=$(port)
cg_make "$R/$TAG-web"
spawn web sh -c "echo \$\$ > $R/$TAG-web/cgroup.procs; exec /usr/bin/python3 $FIX/backend.py web $BP"
serves() { curl -sf --max-time 2 "http://127.0.0.1:$BP/" > /dev/null; }
wait_until 10 serves

na_tide --k8s-api-url "https://127.0.0.1:$KP/" --k8s-token-file "$W/k8s-token" \
    --k8s-ca-file "$W/ca.pem" --k8s-timeout 5s
agent_actions() { grep -c "command .* -> node n1" "$W/cp.log" || true; }

# ---- clear errors, nothing done on the agent -------------------------------------------------
n0=$(agent_actions)
rc=0; out=$(act drain - --endpoint 127.0.0.1:$BP --pod shop/nope) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null 'HTTP 404: pods "nope" not found' && echo "$out" | grep >/dev/null "nothing done on the agent" ||
    fail "unknown pod: rc $rc: $out"
rc=0; out=$(act drain - --pod shop) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null -- "--pod 'shop' is not NAMESPACE/NAME" || fail "malformed --pod: rc $rc: $out"
rc=0; out=$(act drain - --pod Shop/web-1) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null "namespace 'Shop' is not a DNS-1123 label" || fail "bad namespace: rc $rc: $out"
rc=0; out=$(act warmup - --endpoint 127.0.0.1:$BP --pod shop/web-1) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null '"pod" does not apply to warmup' || fail "--pod with warmup: rc $rc: $out"
printf 'wrong-token\n' > "$W/k8s-token"
rc=0; out=$(act drain - --endpoint 127.0.0.1:$BP --pod shop/web-1) || rc=$?
[ $rc = 1 ] && echo "$out" | grep >/dev/null "HTTP 401: Unauthorized" || fail "bad token: rc $rc: $out"
echo "$out" | grep -E >/dev/null '"status":[[:space:]]*"unchanged"' || fail "401 details lack readiness status unchanged: $out"
printf '%s\n' "$KTOKEN" > "$W/k8s-token"   # read at every request: rotation needs no restart
[ "$(agent_actions)" = "$n0" ] || fail "a failed readiness patch still sent the agent a command"
[ "$(cond web-1 tide.io/serving)" = True ] || fail "a failed request changed the pod"
echo "errors: clear, agent untouched"

# ---- drain: gate False, then wait for the open connection ------------------------------------
# hold one connection to the endpoint open for 1.2 s (an in-flight request from a client that
# still had the pod in its endpoints)
/usr/bin/python3 -c "
import socket, time, sys
s = socket.create_connection(('127.0.0.1', $BP)); print('open', flush=True); time.sleep(1.2)
print('closing', flush=True); s.close()" > "$W/hold.log" &
HOLD=$!; _PIDS+=("$HOLD")
wait_until 5 grep -q open "$W/hold.log"
out=$(act drain - --endpoint "127.0.0.1:$BP" --pod shop/web-1 --timeout-ms 8000) || fail "drain failed: $out"
echo "drain: $out"
[ "$(echo "$out" | jget 'd["clean"]')" = True ] || fail "drain not clean"
[ "$(echo "$out" | jget 'd["connections"]')" = 0 ] || fail "drain ended with connections"
# the drain returned only after the holder let go (not a wall-clock bound: a loaded machine may
# start tidectl late in the hold)
grep -q closing "$W/hold.log" || fail "drain did not wait for the open connection"
[ "$(echo "$out" | jget 'd["readiness"]["status"]')" = False ] || fail "readiness not reported False"
[ "$(echo "$out" | jget 'd["readiness"]["pod"]')" = shop/web-1 ] || fail "readiness pod"
[ "$(cond web-1 tide.io/serving)" = False ] || fail "gate not False after drain"
[ "$(cond web-1 Ready)" = False ] || fail "pod still Ready after drain"
drain_ms=$(echo "$out" | jget 'd["drain_ms"]')
out=$(act drain - --endpoint "127.0.0.1:$BP" --pod shop/web-1) || fail "repeated drain failed: $out"
echo "drain: gate False, waited $drain_ms ms for the last connection (repeat idempotent)"

# ---- a drain that hits its deadline keeps its details ----------------------------------------
/usr/bin/python3 -c "
import socket, time
s = socket.create_connection(('127.0.0.1', $BP)); print('open', flush=True); time.sleep(6); s.close()" > "$W/hold2.log" &
_PIDS+=("$!")
wait_until 5 grep -q open "$W/hold2.log"
rc=0; out=$("${CTL[@]}" --json node-action n1 drain - --endpoint "127.0.0.1:$BP" --pod shop/web-2 --timeout-ms 600 2>"$W/err.txt") || rc=$?
echo "deadline drain (rc $rc): $(cat "$W/err.txt") $out"
[ $rc = 1 ] || fail "a drain past its deadline did not fail (rc $rc)"
grep -q "not clean" "$W/err.txt" || fail "unclear deadline error: $(cat "$W/err.txt")"
[ "$(echo "$out" | jget 'd["clean"]')" = False ] || fail "--json printed no details for the failure: $out"
[ "$(echo "$out" | jget 'd["connections"] >= 1')" = True ] || fail "details do not show the open connection"
[ "$(echo "$out" | jget 'd["readiness"]["status"]')" = False ] || fail "details lack the readiness patch"
[ "$(cond web-2 tide.io/serving)" = False ] || fail "web-2 gate not False"
echo "deadline: failure keeps its details (connections $(echo "$out" | jget 'd["connections"]'))"

# ---- standby and activate --------------------------------------------------------------------
out=$(act standby "/$TAG-web" --pod shop/web-1) || fail "standby failed: $out"
echo "standby: $out"
grep -qx 'frozen 1' "$R/$TAG-web/cgroup.events" || fail "not frozen after standby"
[ "$(cond web-1 tide.io/serving)" = False ] || fail "gate not False in standby"
serves && fail "a frozen backend answered"
out=$(act activate "/$TAG-web" --pod shop/web-1 --endpoint "127.0.0.1:$BP") || fail "activate failed: $out"
echo "activate: $out"
grep -qx 'frozen 0' "$R/$TAG-web/cgroup.events" || fail "still frozen after activate"
serves || fail "backend does not answer after activate"
[ "$(cond web-1 tide.io/serving)" = True ] || fail "gate not True after activate"
[ "$(cond web-1 Ready)" = True ] || fail "pod not Ready after activate"
[ "$(echo "$out" | jget 'd["readiness"]["status"]')" = True ] || fail "readiness not reported True"
echo "activate: thawed, gate True, ready_ms $(echo "$out" | jget 'd["ready_ms"]') (patch $(echo "$out" | jget 'd["readiness"]["patch_ms"]') ms)"

# ---- what the fake saw: well-formed strategic merge patches ----------------------------------
/usr/bin/python3 - "$W/kube-requests.jsonl" <<'PY' || fail "malformed request to the API"
import json, sys
reqs = [json.loads(l) for l in open(sys.argv[1])]
patches = [r for r in reqs if r["method"] == "PATCH"]
assert len(patches) >= 6, f"only {len(patches)} PATCH requests"
for r in patches:
    assert r["path"].startswith("/api/v1/namespaces/shop/pods/") and r["path"].endswith("/status"), r["path"]
    assert r["content_type"] == "application/strategic-merge-patch+json", r["content_type"]
    b = json.loads(r["body"])
    assert list(b) == ["status"] and list(b["status"]) == ["conditions"], b
    (c,) = b["status"]["conditions"]
    assert c["type"] == "tide.io/serving" and c["status"] in ("True", "False"), c
    assert c["lastTransitionTime"].endswith("Z") and c["reason"], c
assert sum(1 for r in patches if r["status"] == 401) == 1
assert sum(1 for r in patches if r["status"] == 404) == 1
assert all(r["status"] in (200, 401, 404) for r in patches), [r["status"] for r in patches]
print(f"fake API: {len(patches)} PATCH requests, all strategic merge patches of one condition")
PY
echo PASS
