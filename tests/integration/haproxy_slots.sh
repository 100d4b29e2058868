#!/usr/bin/env bash
# timeout: 120
# haproxy_slots: a replica put behind HAProxy the way the HAProxyBackend executor does it, with
# real parts on loopback: tide-agent replica-start of tests/fixtures/replicas/replica.py (ready
# behind its /healthz), haproxy-slots lists the backend's `server-template` slots (all MAINT),
# haproxy-slot points a free slot at the replica (`set server addr/port`, `state ready`) and
# requests through HAProxy reach it; drain and maint move the slot (status DRAIN, then MAINT);
# an address that would smuggle a second command, an unknown server, an unknown backend and a
# missing socket give clear errors and leave the slots alone.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"

R=/sys/fs/cgroup
PARENT=/tide-it-hs-$$
for h in unified freezer memory cpu cpuacct pids systemd; do
    [ -d "$R/$h" ] && _CGROUPS=("$R/$h$PARENT" "${_CGROUPS[@]}") && _CGROUPS=("$R/$h$PARENT/web-1" "${_CGROUPS[@]}")
done
trap '_rc=$?; set +e; for p in $(cat $R/unified$PARENT/web-1/cgroup.procs 2>/dev/null); do kill -9 $p; done 2>/dev/null; (exit $_rc); _cleanup' EXIT
FIX=$TIDE_SRC/tests/fixtures/replicas/replica.py

FP=$(port); S=$W/admin.sock
cat > "$W/haproxy.cfg" <<CFG
global
  stats socket $S level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$FP
  default_backend web
backend web
  option httpchk GET /healthz
  server-template r 1-4 127.0.0.1:1 disabled check inter 500ms
CFG
haproxy -c -f "$W/haproxy.cfg" > /dev/null || fail "haproxy config rejected"
spawn haproxy haproxy -f "$W/haproxy.cfg" -db
wait_until 10 test -S "$S"

cp_start
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node lb --token-file "$W/token" \
    --replica-dir "$W/replicas" --replica-cgroup "$PARENT"
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }
wait_until 20 agent_up
act() { "${CTL[@]}" --json node-action lb "$@" 2>&1; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
slots() { act haproxy-slots - --args "{\"haproxy_socket\": \"$S\", \"backend\": \"web\"}"; }
slot_status() { slots | jget "[s['status'] for s in d['slots'] if s['server']=='$1'][0]"; }

out=$(slots) || fail "haproxy-slots failed: $out"
[ "$(echo "$out" | jget '[s["server"] for s in d["slots"]]')" = "['r1', 'r2', 'r3', 'r4']" ] || fail "slots: $out"
[ "$(echo "$out" | jget 'all(s["status"] == "MAINT" for s in d["slots"])')" = True ] || fail "template slots not all MAINT: $out"

PR=$(port)
out=$(act replica-start - --args "{\"id\": \"web-1\", \"port\": $PR, \"command\": [\"python3\", \"$FIX\", \"{port}\", \"--name\", \"{id}\", \"--startup-ms\", \"200\"], \"readiness\": {\"path\": \"/healthz\"}}") || fail "replica-start: $out"
out=$(act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r2\", \"addr\": \"127.0.0.1\", \"port\": $PR, \"state\": \"ready\"}") || fail "haproxy-slot ready: $out"
echo "slot ready: $out"
[ "$(echo "$out" | jget 'd["status"].startswith("UP")')" = True ] || fail "slot not UP: $out"
via_lb() { [ "$(curl -sf --max-time 2 "http://127.0.0.1:$FP/")" = web-1 ]; }
wait_until 10 via_lb || fail "requests through HAProxy do not reach the replica"
[ "$(slots | jget "[(s['addr'], s['port']) for s in d['slots'] if s['server']=='r2'][0]")" = "('127.0.0.1', $PR)" ] || fail "slot address not listed"
echo "slot r2 -> 127.0.0.1:$PR, UP, serving through HAProxy"

out=$(act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r2\", \"state\": \"drain\"}") || fail "drain: $out"
[ "$(echo "$out" | jget 'd["state"] == "drain" and d["status"].split()[0] == "DRAIN"')" = True ] || fail "not DRAIN: $out"
out=$(act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r2\", \"state\": \"maint\"}") || fail "maint: $out"
[ "$(echo "$out" | jget 'd["status"]')" = MAINT ] || fail "not MAINT: $out"
echo "slot r2: DRAIN, then MAINT"

out=$(act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/r3\", \"addr\": \"127.0.0.1 port 1; shutdown frontend fe\"}") && fail "smuggled command accepted"
grep -q "is not an IPv4 or IPv6 address" <<< "$out" || fail "unclear addr error: $out"
out=$(act haproxy-slot - --args "{\"haproxy_socket\": \"$S\", \"haproxy_server\": \"web/zz\", \"state\": \"ready\"}") && fail "unknown server accepted"
grep -q "No such server" <<< "$out" || fail "unclear unknown-server error: $out"
out=$(act haproxy-slots - --args "{\"haproxy_socket\": \"$S\", \"backend\": \"nope\"}") && fail "unknown backend accepted"
grep -q "haproxy backend 'nope' not found" <<< "$out" || fail "unclear unknown-backend error: $out"
out=$(act haproxy-slots - --args "{\"haproxy_socket\": \"$W/none.sock\", \"backend\": \"web\"}") && fail "missing socket accepted"
grep -q "haproxy socket $W/none.sock missing" <<< "$out" || fail "unclear socket error: $out"
[ "$(slots | jget '[s["status"] for s in d["slots"]]')" = "['MAINT', 'MAINT', 'MAINT', 'MAINT']" ] || fail "an error touched the slots: $(slots)"
echo "errors: clear, slots untouched"

out=$(act replica-stop - --args '{"id": "web-1"}') || fail "replica-stop: $out"
echo PASS
