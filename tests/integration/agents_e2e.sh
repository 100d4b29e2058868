#!/usr/bin/env bash
# agents_e2e.sh: a control plane and two real agents on loopback: both authenticate and report
# samples, `tidectl agents` / `status` show them (table and --json), a control plane restart on
# the same data dir is survived (agents reconnect with backoff, batch numbering continues, no
# duplicates), an unreachable socket says so with exit 2, and SIGTERM stops everything cleanly.
# One agent names the control plane "localhost" (resolved off its loop), the other 127.0.0.1.
# timeout: 90
source "$(dirname "$0")/lib.sh"

printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port); H=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
start_cp() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:$H --log-level debug
    CP=$SPAWNED
}
start_cp
wait_until 20 test -S "$W/cp.sock"
# node-b names the control plane by host name (the lookup runs off the agent's loop, again at
# every reconnect); node-a by address (no lookup)
for n in node-a node-b; do
    at=127.0.0.1; [ $n = node-b ] && at=localhost
    spawn $n "$TIDE_BIN/tide-agent" --controlplane $at:$P --node $n --token-file "$W/token" \
        --interval 200ms --reconnect-max 1s
done

agents_json() { "${CTL[@]}" agents --json; }
field() { # field NODE KEY: the agents table value
    agents_json | /usr/bin/python3 -c "import json,sys
for r in json.load(sys.stdin):
    if r['node']=='$1': print(r['$2'])"
}
both_reporting() {
    local a b
    a=$(field node-a samples); b=$(field node-b samples)
    [ "${a:-0}" -ge 3 ] && [ "${b:-0}" -ge 3 ]
}
wait_until 30 both_reporting || fail "agents did not report 3 samples each"
grep -q "connected to localhost:$P (127.0.0.1) as node node-b" "$W/node-b.log" \
    || fail "node-b did not connect through the name localhost"
[ "$(field node-a connected)" = True ] || fail "node-a not connected"
[ "$(field node-a agent_version)" = "tide-agent 0.1.0" ] || fail "agent version missing"
[ "$(field node-a protocol_errors)" = 0 ] || fail "protocol errors on an honest agent"
"${CTL[@]}" agents | grep -E '^node-a +tide-agent 0.1.0 +127\.0\.0\.1:[0-9]+ +connected' \
    || fail "human table lacks node-a"
"${CTL[@]}" status | grep >/dev/null '2 connected' || fail "status does not show 2 connected agents"
"${CTL[@]}" --json status | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin); assert d['agents']['agents_connected']==2, d; assert d['store']=='ok', d" \
    || fail "status --json"

# the command path: control plane -> agent -> COMMAND_RESULT -> tidectl
"${CTL[@]}" ping node-a | grep -E '^node-a: answered by tide-agent 0.1.0 in [0-9]+ ms$' \
    || fail "ping node-a"
set +e
out=$("${CTL[@]}" ping no-such-node 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && [ "$out" = "tidectl ping: unknown node 'no-such-node'" ] || fail "ping unknown: $rc $out"

# heartbeats arrive (the control plane asks for them every 5 s by default)
heartbeat_seen() { [ "$(field node-a last_heartbeat)" != 0 ]; }
wait_until 15 heartbeat_seen || fail "no heartbeat"

# control plane restart on the same data dir: agents come back, nothing is stored twice
before=$(field node-a last_seq)
kill -TERM $CP
wait $CP || fail "control plane exit status $? after SIGTERM"
grep -q "stopped cleanly" "$W/cp.log" || fail "no clean stop logged"
mv "$W/cp.log" "$W/cp-first.log"
start_cp
wait_until 20 test -S "$W/cp.sock"
reconnected() { [ "$(field node-a connected)" = True ] && [ "$(field node-b connected)" = True ]; }
wait_until 20 reconnected || fail "agents did not reconnect after a control plane restart"
grep -q "node node-a (agent tide-agent 0.1.0) connected from .*, last batch $before" "$W/cp.log" \
    || grep >/dev/null "node node-a .* connected from .*, last batch [1-9]" "$W/cp.log" \
    || fail "restarted control plane did not know node-a's last batch (store source seq)"
progress() { [ "$(field node-a last_seq)" -gt "$before" ]; }
wait_until 10 progress || fail "no new batches after the restart"
[ "$(field node-a protocol_errors)" = 0 ] || fail "protocol errors after the restart"

# unreachable socket: the message and exit status 2
set +e
out=$("$TIDE_BIN/tidectl" --socket "$W/nope.sock" agents 2>&1); rc=$?
set -e
[ $rc -eq 2 ] || fail "unreachable socket gave exit $rc"
[ "$out" = "cannot reach control plane at $W/nope.sock: No such file or directory" ] \
    || fail "unreachable message: $out"

# SIGTERM: agents and control plane stop cleanly with status 0
for p in ${_PIDS[@]}; do kill -TERM $p 2>/dev/null || true; done
for p in ${_PIDS[@]}; do wait $p 2>/dev/null || true; done
grep -q "stopped cleanly" "$W/cp.log" || fail "control plane did not stop cleanly"
grep -q "stopped cleanly" "$W/node-a.log" || fail "agent did not stop cleanly"
[ ! -e "$W/cp.sock" ] || fail "ops socket left behind"
echo "agents_e2e: ok"
