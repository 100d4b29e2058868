#!/usr/bin/env bash
# vclock_daemons.sh: the virtual clock shared by the control plane and an agent (--clock-rate 60
# --clock-origin 2000-01-01T00:00:00Z --clock-anchor A): the control plane's start time and the
# agent's heartbeats are trace time (origin + (real - anchor) x 60, within the seconds it takes
# to start them), the agent's samples are stored at trace time (queried at a 2000 timestamp),
# its batches are accepted (numbered by the real clock), and a bad clock flag exits 2.
# timeout: 60
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"
ORIGIN=946684800
ANCHOR=$(date +%s)
CLK=(--clock-rate 60 --clock-origin 2000-01-01T00:00:00Z --clock-anchor "$ANCHOR")
cp_start "${CLK[@]}"
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n1 --token-file "$W/token" \
    --interval 1s --reconnect-max 500ms "${CLK[@]}"
AG=$SPAWNED
# trace time now, from the same formula (ms)
trace_now() { /usr/bin/python3 -c "import time; print(int(($ORIGIN + (time.time() - $ANCHOR) * 60) * 1000))"; }
hb() { "${CTL[@]}" agents --json | /usr/bin/python3 -c "import json,sys
r=[a for a in json.load(sys.stdin) if a['node']=='n1']; assert r and r[0]['samples']>0 and r[0]['last_heartbeat']>0
print(int(r[0]['last_heartbeat']))"; }
wait_until 30 hb || fail "agent did not report samples and a heartbeat"
grep -q "virtual clock: rate 60, trace 2000-01-01T00:00:00Z" "$W/cp.log" || fail "control plane did not log its clock"
grep -q "virtual clock: rate 60" "$W/agent.log" || fail "agent did not log its clock"
now=$(trace_now)
/usr/bin/python3 - "$("${CTL[@]}" --json status)" "$(hb)" "$now" "$ORIGIN" <<'PY' || fail "times are not trace time"
import json, sys
st, hb, now, origin = json.loads(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]) * 1000
# started: within the first real minutes after the anchor (an hour of trace time)
assert origin <= st['started'] <= origin + 3600 * 1000, st
# a heartbeat at most ~a minute of real time old (the interval is 5 s real; 60 x 60 s slack)
assert now - 3600 * 1000 <= hb <= now + 60 * 1000, (hb, now)
PY
# a sample stored at trace time: the store answers for a 2000 timestamp
T=$(( $(trace_now) / 1000 ))
# (tidectl has no clock flag: the window is given in trace time)
"${CTL[@]}" --json query 'node_cpu_count{node="n1"}' --start $((T - 3600)) --end $((T + 600)) \
    > "$W/q.json" 2>&1 || true
/usr/bin/python3 -c "import json,sys
d=json.load(open('$W/q.json'))['data']['result']; assert d and d[0]['values'], d
ts=[float(v[0]) for v in d[0]['values']]; assert min(ts) >= $ORIGIN and max(ts) <= $T + 600, ts" \
    || { cat "$W/q.json"; fail "no sample stored at trace time"; }
grep -q "beyond the clock" "$W/cp.log" && fail "batches refused under the virtual clock"
set +e
out=$("$TIDE_BIN/tide-agent" --clock-rate 0 --token-file "$W/token" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "clock_rate '0'" <<<"$out" || fail "bad clock rate: $rc $out"
set +e
out=$("$TIDE_BIN/tide-controlplane" --clock-anchor 5 --token-file "$W/token" 2>&1); rc=$?
set -e
[ $rc -eq 2 ] && grep -q "clock_anchor" <<<"$out" || fail "anchor alone: $rc $out"
echo ok
