#!/usr/bin/env bash
# agent_two_controlplanes.sh: one real tide-agent reports to two real control planes
# (`controlplane` list), each with its own connection, ack and spool. The second control plane
# is killed with SIGKILL; the first goes on receiving without a reconnect; the agent is
# restarted meanwhile (its batches for the dead control plane go to that one's own spool
# directory); the second control plane comes back on its data dir, the spool replays, and in the
# end both stores hold every round: the same count and sum of the agent's round counter over
# the whole run.
# timeout: 90
source "$(dirname "$0")/lib.sh"

printf 'two-controlplanes-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P1=$(port); H1=$(port); P2=$(port); H2=$(port)
NODE=two-cp-node
start_cp() { # N PORT HTTP
    spawn "cp$1" "$TIDE_BIN/tide-controlplane" --listen "127.0.0.1:$2" --socket "$W/cp$1.sock" \
        --token-file "$W/token" --data-dir "$W/data$1" --http "127.0.0.1:$3"
    eval "CP$1=$SPAWNED"
}
start_agent() {
    spawn agent "$TIDE_BIN/tide-agent" --controlplane "127.0.0.1:$P1,127.0.0.1:$P2" \
        --node $NODE --token-file "$W/token" --interval 100ms --reconnect-min 50ms \
        --reconnect-max 300ms --queue-max-bytes 65536 --spool-dir "$W/spool" --http-listen ""
    AGENT=$SPAWNED
}
# row N FIELD: the agent's FIELD in control plane N's agents table ("" when not there)
row() {
    "$TIDE_BIN/tidectl" --socket "$W/cp$1.sock" agents --json 2>/dev/null | /usr/bin/python3 -c "
import json, sys
rows = [r for r in json.load(sys.stdin) if r['node'] == '$NODE']
print(rows[0]['$2'] if rows else '')"
}
connected() { [ "$(row "$1" connected)" = True ] && [ "$(row "$1" samples)" -gt 0 ]; }
seq_above() { local s; s=$(row "$1" last_seq); [ -n "$s" ] && [ "$s" -ge "$2" ]; }

start_cp 1 "$P1" "$H1"
start_cp 2 "$P2" "$H2"
wait_until 20 test -S "$W/cp1.sock"
wait_until 20 test -S "$W/cp2.sock"
start_agent
wait_until 30 connected 1 || fail "agent did not reach control plane 1"
wait_until 30 connected 2 || fail "agent did not reach control plane 2"
[ -d "$W/spool/cp-127.0.0.1_$P1" ] && [ -d "$W/spool/cp-127.0.0.1_$P2" ] \
    || fail "no spool directory per control plane: $(ls "$W/spool")"
echo "ok both connected"

# control plane 2 dies; 1 goes on, on the same connection
since=$(row 1 connected_since); s1=$(row 1 last_seq)
kill -9 "$CP2"; wait "$CP2" 2>/dev/null || true
wait_until 30 seq_above 1 $((s1 + 10)) || fail "control plane 1 stopped receiving"
[ "$(row 1 connected_since)" = "$since" ] || fail "control plane 1 was reconnected meanwhile"
echo "ok control plane 1 unaffected by the loss of 2"

# the agent restarts while 2 is away: what 2 did not acknowledge goes to 2's own spool
kill -TERM "$AGENT"; wait "$AGENT" 2>/dev/null || true
ls "$W/spool/cp-127.0.0.1_$P2"/seg-*.spool > /dev/null 2>&1 || fail "nothing spooled for 2"
spooled=$(cat "$W/spool/cp-127.0.0.1_$P2"/seg-*.spool | wc -c)
[ "$spooled" -gt 0 ] || fail "control plane 2's spool is empty"
start_agent
s1=$(row 1 last_seq)
wait_until 30 seq_above 1 $((s1 + 5)) || fail "control plane 1 not fed after the agent restart"
echo "ok $spooled bytes spooled for control plane 2 across the agent restart"

# 2 comes back: the spool replays, then the live batches follow
start_cp 2 "$P2" "$H2"
wait_until 30 connected 2 || fail "agent did not come back to control plane 2"
target=$(row 1 last_seq)
wait_until 30 seq_above 2 "$target" || fail "control plane 2 did not catch up with 1"
s1=$(row 1 last_seq)
wait_until 30 seq_above 1 $((s1 + 5)) || fail "control plane 1 stopped"
T_CUT=$(/usr/bin/python3 -c 'import time; print("%.3f" % (time.time() - 0.5))')
wait_until 30 seq_above 2 "$(row 1 last_seq)" || fail "control plane 2 fell behind again"
kill -TERM "$AGENT"; wait "$AGENT" 2>/dev/null || true

# both stores: every round up to T_CUT, the same count and the same sum
/usr/bin/python3 - "$H1" "$H2" "$T_CUT" "$NODE" <<'EOF' || fail "the two stores differ"
import json, sys, urllib.parse, urllib.request
h1, h2, t, node = sys.argv[1:]
def q(port, fn):
    qs = urllib.parse.urlencode({"query": '%s(node_agent_rounds_total{node="%s"}[10m])' % (fn, node),
                                 "time": t})
    with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query?%s" % (port, qs)) as r:
        res = json.load(r)["data"]["result"]
    assert len(res) == 1, res
    return float(res[0]["value"][1])
c1, c2 = q(h1, "count_over_time"), q(h2, "count_over_time")
s1, s2 = q(h1, "sum_over_time"), q(h2, "sum_over_time")
print("rounds stored: control plane 1 %d (sum %g), control plane 2 %d (sum %g)" % (c1, s1, c2, s2))
assert c1 >= 15, c1  # the waits above saw 20 batches go to control plane 1; a fast run has few more
assert c1 == c2 and s1 == s2
EOF
echo ok
