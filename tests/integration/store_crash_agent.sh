#!/usr/bin/env bash
# store_crash_agent.sh: the real tide-agent streams (a round every 200 ms) while the control
# plane is killed with SIGKILL at random moments, four times, and restarted on the same data dir.
# The agent's round counter (node_agent_rounds_total, +1 per round) must then be stored without
# a gap and without a duplicate between its first and last stored value: raw points == last -
# first + 1, and every stored round is a distinct value (the agent keeps unacknowledged batches
# and resends them; the store drops what it already has).
# timeout: 150
source "$(dirname "$0")/lib.sh"

printf 'store-crash-agent-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port); H=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
start_cp() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:$H --snapshot-interval 2s
    CP=$SPAWNED
}
connected() {
    "${CTL[@]}" agents --json | /usr/bin/python3 -c "import json,sys
rows=[r for r in json.load(sys.stdin) if r['node']=='crash-agent']
sys.exit(0 if rows and rows[0]['connected'] and rows[0]['samples'] > 0 else 1)"
}
start_cp
wait_until 20 test -S "$W/cp.sock"
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node crash-agent \
    --token-file "$W/token" --interval 200ms --reconnect-max 500ms
AGENT=$SPAWNED
wait_until 30 connected || fail "agent did not connect"

for round in 1 2 3 4; do
    sleep "$(/usr/bin/python3 -c 'import random; print(round(random.uniform(0.5, 1.5), 2))')"
    kill -9 "$CP" || fail "the control plane died before kill $round"
    wait "$CP" 2>/dev/null || true
    start_cp
    wait_until 30 test -S "$W/cp.sock" || fail "restart $round"
    wait_until 30 connected || fail "agent did not come back after kill $round"
    echo "kill -9 #$round survived"
done
sleep 2
kill -TERM "$AGENT" || fail "the agent died"
wait "$AGENT" 2>/dev/null || true

"${CTL[@]}" series --json --match 'node_agent_rounds_total{node="crash-agent"}' > "$W/series.json" \
    || fail "tidectl series"
/usr/bin/python3 - "$W/series.json" "$H" <<'EOF' || fail "rounds lost or duplicated"
import json, sys, urllib.parse, urllib.request
s = json.load(open(sys.argv[1]))["series"]
assert len(s) == 1, s
raw, t, last_ms = s[0]["points"]["raw"], s[0]["first_ms"], s[0]["last_ms"]
vals = set()
while t <= last_ms:  # every stored point shows at a 1 ms step
    end = min(last_ms, t + 10999)
    qs = urllib.parse.urlencode({"query": 'node_agent_rounds_total{node="crash-agent"}',
                                 "start": t / 1000, "end": end / 1000, "step": 0.001})
    with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query_range?%s" % (sys.argv[2], qs)) as r:
        vals |= {float(v) for _, v in json.load(r)["data"]["result"][0]["values"]}
    t = end + 1
first, last = min(vals), max(vals)
print("rounds %d..%d stored, %d raw points" % (first, last, raw))
assert raw == last - first + 1, "raw points %d != rounds %d..%d" % (raw, first, last)
assert sorted(vals) == [first + i for i in range(int(last - first + 1))], "a round is missing"
EOF
echo ok
