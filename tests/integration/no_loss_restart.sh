#!/usr/bin/env bash
# no_loss_restart.sh: "nothing acknowledged is ever lost, duplicates are dropped": the control
# plane is killed (SIGKILL, no clean shutdown) while an agent samples every 200 ms, stays down
# for several rounds, and is restarted on the same data directory. Afterwards the store holds
# every round exactly once: the sample count matches the time span, no gap, no duplicate.
# timeout: 90
source "$(dirname "$0")/lib.sh"

printf 'no-loss-token-0123456789abcdef\n' > "$W/token"; chmod 600 "$W/token"
P=$(port); H=$(port)
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
start_cp() {
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:$H
    CP=$SPAWNED
    wait_until 20 "${CTL[@]}" status || fail "control plane did not start"
}
start_cp
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node keeper --token-file "$W/token" \
    --interval 200ms --reconnect-min 200ms --reconnect-max 400ms
AG=$SPAWNED
SEL='tide_agent_cpu_seconds_total{node="keeper"}'
series() { # series KEY: a field of the agent's CPU series in the store
    "${CTL[@]}" series --match "$SEL" --json | /usr/bin/python3 -c "import json,sys
s=json.load(sys.stdin)['series']; print(s[0]['$1'] if s else 0)"
}
enough() { [ "$(series samples)" -ge 10 ]; }
wait_until 30 enough || fail "no samples stored"

kill -KILL $CP
wait $CP 2>/dev/null || true
mv "$W/cp.log" "$W/cp-killed.log"
# stay down until the agent has failed to reconnect three times (>= 3 sampling rounds queued)
down_long_enough() { grep -q "(attempt 3)" "$W/agent.log"; }
wait_until 30 down_long_enough || fail "agent did not notice the control plane was gone"
restart_ms=$(( $(date +%s%N) / 1000000 ))
start_cp
caught_up() { [ "$(series last_ms)" -gt $((restart_ms + 1500)) ]; }
wait_until 30 caught_up || fail "agent did not catch up after the restart"
kill -TERM $AG
wait $AG || fail "agent exit status $?"

n=$(series samples); first=$(series first_ms); last=$(series last_ms)
expected=$(( (last - first + 100) / 200 + 1 ))
echo "stored $n samples over $((last - first)) ms, expected $expected (one per 200 ms)"
[ "$n" -le $((expected + 1)) ] || fail "duplicates stored: $n samples, expected $expected"
[ "$n" -ge $((expected - 2)) ] || fail "samples lost: $n stored, expected $expected"
dups=$("${CTL[@]}" --json agents | /usr/bin/python3 -c "import json,sys
print([r for r in json.load(sys.stdin) if r['node']=='keeper'][0]['protocol_errors'])")
[ "$dups" = 0 ] || fail "protocol errors: $dups"
echo "no_loss_restart: ok"
