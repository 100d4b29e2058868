#!/usr/bin/env bash
# agent_http.sh: tide-agent's own endpoint (http_listen): /livez, /healthz (connected; then,
# with the control plane stopped, "spooling within limits" while nothing is dropped and 503 once
# the queue and spool overflow), /metrics passing `promtool check metrics` with the agent's
# rounds, sample cost, queue, spool, actions (a ping counted) and process_*; 404/405/400 for
# other requests, a request head over 4 KiB refused, idle connections timed out and a flood of
# them refused without stopping the answers; http_listen "" disables it; a busy explicit
# address is a startup error naming the key.
# timeout: 180
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

cp_start
CP=$SPAWNED
HP=$(port)
U=http://127.0.0.1:$HP
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n1 --token-file "$W/token" \
    --interval 100ms --reconnect-max 1s --http-listen 127.0.0.1:$HP --spool-dir "$W/spool" \
    --queue-max-bytes 64K --spool-max-bytes 64K --cgroup-kubernetes false --cgroup-systemd false
AG=$SPAWNED
wait_until 20 grep -q "connected to" "$W/agent.log" || fail "agent did not connect"
code() { curl -s -o "$W/body" -w '%{http_code}' "$@"; }
[ "$(code $U/livez)" = 200 ] || fail "/livez"
wait_until 10 sh -c "curl -sf $U/healthz | grep >/dev/null '^ok: connected to 127.0.0.1:$P'" || fail "/healthz connected: $(curl -s $U/healthz)"
"${CTL[@]}" ping n1 > /dev/null || fail "ping"
curl -sf $U/metrics > "$W/m.txt" || fail "/metrics"
promtool check metrics < "$W/m.txt" || fail "promtool check metrics: $(promtool check metrics < "$W/m.txt" 2>&1)"
val() { awk -v k="$1" '$1 == k {print $2}' "$W/m.txt"; }
[ "$(val tide_agent_connected)" = 1 ] || fail "tide_agent_connected"
[ "$(val tide_agent_rounds_total)" -gt 0 ] || fail "no rounds counted"
/usr/bin/python3 -c "import sys; assert float(sys.argv[1]) > 0" "$(val tide_agent_round_cpu_seconds_total)" || fail "no round cost"
[ -n "$(val tide_agent_spool_bytes)" ] && [ "$(val tide_agent_spool_max_bytes)" = 65536 ] || fail "spool series"
[ "$(val 'tide_agent_actions_total{action="ping",result="ok"}')" = 1 ] || fail "ping not counted: $(grep actions_total "$W/m.txt")"
grep -q '^process_resident_memory_bytes [1-9]' "$W/m.txt" || fail "process_*"
grep -q '^tide_build_info{version="[0-9.]*",node="n1"} 1$' "$W/m.txt" || fail "tide_build_info"
# other requests
[ "$(code $U/nope)" = 404 ] || fail "404"
[ "$(code -X POST $U/healthz)" = 405 ] || fail "405"
[ "$(code -I $U/healthz)" = 200 ] || fail "HEAD"
r=$(printf 'BREW /pot HTTQ/9\r\n\r\n' | /usr/bin/python3 -c "
import socket,sys; s=socket.create_connection(('127.0.0.1',$HP),5); s.sendall(sys.stdin.buffer.read()); print(s.recv(100).split(b'\r\n')[0].decode())")
[ "$r" = "HTTP/1.1 400 Bad Request" ] || fail "garbage: $r"
/usr/bin/python3 - "$HP" <<'PY' || fail "limits"
import socket, sys, time
port = int(sys.argv[1])
# a head over 4 KiB: refused
s = socket.create_connection(("127.0.0.1", port), 5)
s.sendall(b"GET /healthz HTTP/1.1\r\n" + b"X: " + b"a" * 5000 + b"\r\n\r\n")
assert s.recv(100).startswith(b"HTTP/1.1 400"), "big head"
# 8 idle connections hold every slot: a 9th is closed at once, then they time out (5 s)
idle = [socket.create_connection(("127.0.0.1", port), 5) for _ in range(8)]
time.sleep(0.3)
x = socket.create_connection(("127.0.0.1", port), 5)
try:
    x.sendall(b"GET /livez HTTP/1.1\r\n\r\n")
    got = x.recv(100)
except ConnectionResetError:  # closed with the request unread
    got = b""
assert got == b"", "a 9th connection was served"
for c in idle:
    c.settimeout(10)
    assert c.recv(100) == b"", "idle connection answered"
y = socket.create_connection(("127.0.0.1", port), 5)
y.sendall(b"GET /livez HTTP/1.0\r\n\r\n")
assert y.recv(100).startswith(b"HTTP/1.1 200"), "not answering after the idle ones timed out"
PY
# the control plane goes away: spooling within limits, then overflowing
kill "$CP"
wait_until 10 sh -c "curl -s $U/healthz | grep >/dev/null '^ok: not connected to 127.0.0.1:$P, spooling'" \
    || fail "/healthz while spooling: $(curl -s $U/healthz)"
wait_until 90 sh -c "[ \$(curl -s -o /dev/null -w '%{http_code}' $U/healthz) = 503 ]" \
    || fail "/healthz never 503 while dropping: $(curl -s $U/healthz)"
curl -s $U/healthz | grep >/dev/null 'dropped since the link was lost' || fail "503 body: $(curl -s $U/healthz)"
[ "$(code $U/livez)" = 200 ] || fail "/livez while dropping"
curl -s $U/metrics | grep >/dev/null '^tide_agent_dropped_batches_total [1-9]' || fail "drops not counted"
kill "$AG"; wait "$AG" 2>/dev/null || true

# disabled; and a busy explicit address is an error naming the key
spawn agent2 "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n2 --token-file "$W/token" \
    --http-listen "" --cgroup-kubernetes false --cgroup-systemd false
wait_until 10 grep -q "http_listen is empty" "$W/agent2.log" || fail "empty http_listen"
# (SO_REUSEADDR: the agent's closed connections leave TIME_WAIT entries on that port)
spawn hold /usr/bin/python3 -c "import socket,time; s=socket.socket(); s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); s.bind(('127.0.0.1',$HP)); s.listen(); time.sleep(60)"
wait_until 10 /usr/bin/python3 -c "import socket; socket.create_connection(('127.0.0.1',$HP),1)"
set +e
timeout 10 "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n3 --token-file "$W/token" \
    --http-listen 127.0.0.1:$HP > "$W/busy.log" 2>&1; rc=$?
set -e
[ $rc -ne 0 ] && [ $rc -ne 124 ] || fail "busy http_listen: rc $rc"
grep -q "http_listen 127.0.0.1:$HP: Address already in use" "$W/busy.log" || fail "busy message: $(cat "$W/busy.log")"
echo "agent_http: ok"
