#!/usr/bin/env bash
# agent_spool_gap.sh: loss-free reporting across a control plane outage. Two agents sample
# real cgroups while the control plane is stopped for 30 s:
#  - node-gap (80 cgroups, interval 500 ms, 64 KiB memory queue, spool on disk): its batches spill to the
#    spool during the gap (seen on disk), are resent after the restart and deleted once
#    acknowledged; afterwards the store holds every round of the agent's life exactly once:
#    raw points of node_cpu_count == (last - first) / interval + 1, no gap, no duplicate;
#  - node-restart (same settings as node-gap) is restarted in the middle of the outage: what
#    its first run held (spool and memory queue, spilled at shutdown) is resent by the second;
#    the store holds exactly the rounds both runs logged at shutdown;
#  - node-drop (64 KiB queue, 64 KiB spool, interval 100 ms, 300 cgroups): overflows both,
#    drops the oldest batches and says so: `tidectl agents` shows its DROPS (spool_drops).
# timeout: 240
source "$(dirname "$0")/lib.sh"

R=/sys/fs/cgroup
[ -w "$R/cpuacct" ] || skip "needs writable cgroup v1 cpuacct"
T=tide-it-spool-$$
cg_make "$R/cpuacct/$T" "$R/cpuacct/$T/few" "$R/cpuacct/$T/many"
for i in $(seq 1 80); do cg_make "$R/cpuacct/$T/few/c$i"; done
for i in $(seq 1 300); do cg_make "$R/cpuacct/$T/many/c$i"; done

printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
start_cp() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0 --heartbeat-interval 1s
    CP=$SPAWNED
}
start_cp
wait_until 20 test -S "$W/cp.sock"
common=(--controlplane 127.0.0.1:$P --token-file "$W/token" --reconnect-min 100ms --reconnect-max 1s
        --queue-max-bytes 64k --cgroup-kubernetes false --cgroup-systemd false)
spawn gap "$TIDE_BIN/tide-agent" "${common[@]}" --node node-gap --interval 500ms \
    --cgroup-roots /$T/few --spool-dir "$W/spool-gap"
GAP=$SPAWNED
start_restart() {
    spawn "restart$1" "$TIDE_BIN/tide-agent" "${common[@]}" --node node-restart --interval 500ms \
        --cgroup-roots /$T/few --spool-dir "$W/spool-restart"
    RESTART=$SPAWNED
}
start_restart 1
spawn drop "$TIDE_BIN/tide-agent" "${common[@]}" --node node-drop --interval 100ms \
    --cgroup-roots /$T/many --spool-dir "$W/spool-drop" --spool-max-bytes 64k

# series_field NODE METRIC KEY: from `tidectl series --json`
series_field() {
    "${CTL[@]}" series --json | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin)
rows=d if isinstance(d,list) else d.get('series',[])
for s in rows:
    l=s['labels']
    if l.get('__name__')=='$2' and l.get('node')=='$1':
        v=s
        for k in '$3'.split('.'): v=v[k]
        print(v)"
}
reported() { local n; n=$(series_field node-gap node_cpu_count points.raw); [ "${n:-0}" -ge 6 ]; }
wait_until 30 reported || fail "node-gap did not report 6 rounds"
agent_field() {
    "${CTL[@]}" agents --json | /usr/bin/python3 -c "import json,sys
for r in json.load(sys.stdin):
    if r['node']=='$1': print(r['$2'])"
}
drop_connected() { [ "$(agent_field node-drop connected)" = True ]; }
wait_until 20 drop_connected || fail "node-drop not connected"

# the outage: 30 s without a control plane while both agents keep sampling
kill -TERM $CP
wait $CP || fail "control plane exit status $? after SIGTERM"
down_at=$(date +%s)
# outage_until SECS: sleeps until SECS into the outage (the scenario's timeline, not a wait)
outage_until() { local left=$(( $1 - ($(date +%s) - down_at) )); [ $left -le 0 ] || sleep $left; }
# node-restart: stopped and started again half-way through the outage
outage_until 15
kill -TERM $RESTART
wait $RESTART || fail "node-restart exit status $? after SIGTERM"
start_restart 2
wait_until 10 grep -q "unacknowledged batch" "$W/restart2.log" || fail "node-restart did not start again"
grep -qE "spool .*: [1-9][0-9]* unacknowledged batch" "$W/restart2.log" \
    || fail "node-restart's second run found nothing in its spool"
spooled() { ls "$W/spool-gap"/seg-*.spool >/dev/null 2>&1; }
left=$(( 30 - ($(date +%s) - down_at) )); [ $left -ge 1 ] || left=1
wait_until $left spooled \
    || fail "node-gap never spilled a batch to its spool during the outage"
outage_until 30
mv "$W/cp.log" "$W/cp-first.log"
start_cp
wait_until 20 test -S "$W/cp.sock"

# everything resent and acknowledged: the spool empties, the store catches up
drained() { ! ls "$W/spool-gap"/seg-*.spool >/dev/null 2>&1; }
wait_until 40 drained || fail "node-gap's spool was not drained after the restart"
caught_up() { local l; l=$(series_field node-gap node_cpu_count last_ms); [ "${l:-0}" -ge $(( ($(date +%s) - 2) * 1000 )) ]; }
wait_until 20 caught_up || fail "store did not catch up with node-gap"
grep -q "unacknowledged batch" "$W/gap.log" || fail "no spool start-up line"

# stop node-gap and let its last batch land, then count
kill -TERM $GAP
wait $GAP || true
settled() { local a b; a=$(series_field node-gap node_cpu_count points.raw); sleep 0.3
    b=$(series_field node-gap node_cpu_count points.raw); [ "$a" = "$b" ]; }
wait_until 10 settled || fail "store still changing"
# every round exactly once: the store's raw points of node_agent_rounds_total (one per round)
# equal the agent's own count of rounds, its last value (shown by `tidectl top`)
"${CTL[@]}" series --json > "$W/series.json"
"${CTL[@]}" top --node node-gap --json > "$W/top.json"
/usr/bin/python3 - "$W/series.json" "$W/top.json" <<'PY' || fail "the gap was not filled exactly once"
import json, sys
d = json.load(open(sys.argv[1]))
rows = d if isinstance(d, list) else d.get('series', [])
s = [r for r in rows if r['labels'].get('__name__') == 'node_agent_rounds_total' and r['labels'].get('node') == 'node-gap'][0]
rounds = [n for n in json.load(open(sys.argv[2]))['nodes'] if n['node'] == 'node-gap'][0]['agent_rounds_total']
print(f"node-gap: {rounds:.0f} rounds, {s['points']['raw']} raw points stored, {s['samples']} samples appended")
sys.exit(0 if s['points']['raw'] == rounds == s["samples"] and rounds >= 64 else 1)
PY

# node-restart: both runs' rounds, each exactly once
restart_drained() { ! ls "$W/spool-restart"/seg-*.spool >/dev/null 2>&1; }
wait_until 40 restart_drained || fail "node-restart's spool was not drained after the restart"
kill -TERM $RESTART
wait $RESTART || true
n1=$(sed -n 's/.*node: stopping after \([0-9]*\) sampling rounds.*/\1/p' "$W/restart1.log")
n2=$(sed -n 's/.*node: stopping after \([0-9]*\) sampling rounds.*/\1/p' "$W/restart2.log")
[ -n "$n1" ] && [ -n "$n2" ] || fail "node-restart did not log its rounds"
settled_r() { local a b; a=$(series_field node-restart node_agent_rounds_total points.raw); sleep 0.3
    b=$(series_field node-restart node_agent_rounds_total points.raw); [ "$a" = "$b" ]; }
wait_until 10 settled_r || fail "store still changing"
stored=$(series_field node-restart node_agent_rounds_total points.raw)
appended=$(series_field node-restart node_agent_rounds_total samples)
echo "node-restart: $n1 + $n2 rounds, $stored raw points stored, $appended appended"
[ "$stored" = $((n1 + n2)) ] && [ "$appended" = "$stored" ] || fail "node-restart: not every round exactly once"

# node-drop overflowed its 64 KiB queue and 64 KiB spool: drops are counted and shown
dropped() { local d; d=$(agent_field node-drop spool_drops); [ "${d:-0}" -gt 0 ]; }
wait_until 20 dropped || fail "node-drop reports no spool drops"
"${CTL[@]}" agents | grep -E '^node-drop .* [1-9][0-9]* *$' || fail "DROPS column of tidectl agents"
grep -q "spool full: dropped" "$W/drop.log" || fail "no log line about the full spool"
# ~300 drops in 30 s, but at most 5 lines per 10 s (plus a summary): no error storm
[ "$(agent_field node-drop spool_drops)" -ge 100 ] || fail "node-drop dropped fewer than 100 batches"
[ "$(grep -c 'spool full: dropped' "$W/drop.log")" -le 25 ] || fail "spool-full log lines are not rate-limited"
[ "$(agent_field node-gap spool_drops)" = 0 ] || fail "node-gap dropped batches"
echo ok
