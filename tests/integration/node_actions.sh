#!/usr/bin/env bash
# timeout: 150
# node_actions: drain / standby / activate / warm-up against real parts: HAProxy 2.6 on loopback
# in front of 3 Python HTTP backends, each in its own cgroup (v1 freezer + nested v1 memory + v2
# unified), under a bounded wrk load (-c20, 3 s). The actions go the way an operator sends them:
# tidectl node-action -> tide-controlplane (ops socket) -> COMMAND -> tide-agent -> result.
# Asserts: drain mid-load has zero failed requests (no Non-2xx, no socket errors), the drained
# backend gets no new sessions, drain ends when its sessions reach zero; standby stops its CPU
# while its memory and process stay; activate serves again (time from command to the first
# request it answers is printed); warm-up shows the slow first second and the fast last one;
# unknown server/backend, missing socket and a cgroup that does not exist give clear errors
# that leave the other replicas serving.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_node_actions.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
command -v wrk >/dev/null || skip "wrk not installed"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"

MEMREL=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMREL" = / ] && MEMREL=
R=/sys/fs/cgroup
TAG=tide-it-na-$$

FP=$(port); P1=$(port); P2=$(port); P3=$(port); P4=$(port); S=$W/admin.sock
na_backend s1 "$P1"; B1=$SPAWNED
na_backend s2 "$P2"
na_backend s3 "$P3"
na_backend cold "$P4" 12 150
na_haproxy "$FP" "$S" "$P1" "$P2" "$P3"

stat_field() { hc show stat be 4 -1 | awk -F, -v s="$1" -v c="$2" '$2==s{print $c}'; }  # 5 scur, 8 stot, 18 status
serves() { curl -sf --max-time 2 "http://127.0.0.1:$1/" > /dev/null; }
wait_until 20 all_up
wait_until 10 serves "$P4"

# the control plane and this node's agent
na_tide
HAP=(--haproxy-socket "$S" --haproxy-server be/s1)

# ---- clear errors that leave the other replicas alone --------------------------------------
out=$(act drain - --haproxy-socket "$S" --haproxy-server be/zz) && fail "unknown server accepted"
echo "$out" | grep >/dev/null "haproxy server 'zz' not found in backend 'be'" || fail "unclear unknown-server error: $out"
out=$(act drain - --haproxy-socket "$S" --haproxy-server nobe/s1) && fail "unknown backend accepted"
echo "$out" | grep >/dev/null "haproxy backend 'nobe' not found" || fail "unclear unknown-backend error: $out"
out=$(act drain - --haproxy-socket "$W/none.sock" --haproxy-server be/s1) && fail "missing socket accepted"
echo "$out" | grep >/dev/null "haproxy socket $W/none.sock missing" || fail "unclear missing-socket error: $out"
out=$(act standby "/$TAG-gone") && fail "missing cgroup accepted"
echo "$out" | grep >/dev/null "cgroup /$TAG-gone not found in any hierarchy" || fail "unclear cgroup error: $out"
rc=0; out=$(act reboot "/$TAG-s1") || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null "unknown ACTION 'reboot'" || fail "bad action: rc $rc: $out"
rc=0; out=$(act drain) || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null "missing CGROUP" || fail "missing CGROUP: rc $rc: $out"
rc=0; out=$("${CTL[@]}" node-action n9 drain - --endpoint 127.0.0.1:1 2>&1) || rc=$?
[ $rc = 1 ] && echo "$out" | grep >/dev/null "unknown node 'n9'" || fail "unknown node: rc $rc: $out"
rc=0; out=$(act drain - --haproxy-socket "$S") || rc=$?
[ $rc = 2 ] && echo "$out" | grep >/dev/null -- "--haproxy-socket and --haproxy-server go together" || fail "lone socket: rc $rc: $out"
all_up || fail "an error touched the other servers"
echo "errors: clear, other replicas untouched"

# ---- drain mid-load ------------------------------------------------------------------------
stot0=$(stat_field s1 8)
spawn wrk wrk -t2 -c20 -d3s "http://127.0.0.1:$FP/"; WRK=$SPAWNED
s1_busy() { [ "$(stat_field s1 8)" -gt "$((stot0 + 50))" ]; }
wait_until 5 s1_busy   # load is flowing through s1
out=$(act drain "/$TAG-s1" "${HAP[@]}" --endpoint "127.0.0.1:$P1" --timeout-ms 10000) || fail "drain failed: $out"
echo "drain: $out"
[ "$(echo "$out" | jget 'd["clean"]')" = True ] || fail "drain not clean"
[ "$(echo "$out" | jget 'd["sessions"]')" = 0 ] || fail "drain ended with sessions"
[ "$(stat_field s1 5)" = 0 ] || fail "s1 has sessions after drain"
stot_drained=$(stat_field s1 8)
wait "$WRK" || true
wrk_out=$(cat "$W/wrk.log"); echo "$wrk_out" | tail -4
echo "$wrk_out" | grep >/dev/null "requests in" || fail "wrk did not run"
echo "$wrk_out" | grep >/dev/null "Non-2xx" && fail "failed requests during drain (Non-2xx)"
echo "$wrk_out" | grep >/dev/null "Socket errors" && fail "socket errors during drain"
[ "$(stat_field s1 8)" = "$stot_drained" ] || fail "drained s1 got new sessions ($stot_drained -> $(stat_field s1 8))"
[ "$(stat_field s1 18)" = DRAIN ] || fail "s1 not in DRAIN"
out=$(act drain "/$TAG-s1" "${HAP[@]}") || fail "repeated drain failed: $out"
[ "$(echo "$out" | jget 'd["already"]')" = True ] || fail "repeated drain not idempotent"
echo "drain: zero failed requests, no new sessions to s1 after drain"

# ---- standby -------------------------------------------------------------------------------
usage() { awk '$1=="usage_usec"{print $2}' "$R/unified/$TAG-s1/cpu.stat"; }
mem() { cat "$R/memory$MEMREL/$TAG-s1/memory.usage_in_bytes"; }
u0=$(usage); m0=$(mem)
out=$(act standby "/$TAG-s1" "${HAP[@]}") || fail "standby failed: $out"
echo "standby: $out"
[ "$(stat_field s1 18)" = MAINT ] || fail "s1 not in MAINT after standby"
u1=$(usage)
is_frozen() { grep -qx 'frozen 1' "$R/unified/$TAG-s1/cgroup.events"; }
is_frozen || fail "standby returned before the cgroup was frozen"
sleep 0.5   # measuring interval: CPU used while frozen
u2=$(usage); m2=$(mem)
[ "$u1" -gt "$u0" ] || fail "backend used no CPU before standby: not a real test"
[ "$u2" = "$u1" ] || fail "frozen backend used CPU: $u1 -> $u2 us"
kill -0 "$B1" || fail "frozen backend died"
if [ "$(echo "$out" | jget 'd["swap"]')" = True ]; then
    # a host with swap: standby pushed memory to swap on purpose; memory + swap is what is kept
    m2=$(cat "$R/memory$MEMREL/$TAG-s1/memory.memsw.usage_in_bytes")
fi
[ "$m2" -ge $((m0 * 9 / 10)) ] || fail "frozen backend lost memory: $m0 -> $m2"
out=$(act standby "/$TAG-s1" "${HAP[@]}") || fail "repeated standby failed: $out"
echo "standby: 0 us CPU in 0.5 s frozen, memory $m0 -> $m2 bytes, process alive"
out=$(act standby "/$TAG-s2" --haproxy-socket "$S" --haproxy-server be/s2) && fail "standby of a serving replica accepted"
echo "$out" | grep >/dev/null "not drained" || fail "unclear error for standby of a serving replica: $out"

# ---- activate ------------------------------------------------------------------------------
t0=$(date +%s%N)
out=$(act activate "/$TAG-s1" "${HAP[@]}") || fail "activate failed: $out"
first_s1() { curl -sf --max-time 1 "http://127.0.0.1:$FP/" | grep >/dev/null -x s1; }
# back-to-back requests (round robin: s1 answers within 3) timed from the command's start
until first_s1; do [ $(( ($(date +%s%N) - t0) / 1000000 )) -lt 30000 ] || fail "s1 never answered within 30 s after activate"; done
t1=$(date +%s%N)
echo "activate: $out"
[ "$(echo "$out" | jget 'd["haproxy_status"].startswith("UP")')" = True ] || fail "s1 not UP after activate"
echo "activate: command to first request answered by s1 through HAProxy: $(( (t1 - t0) / 1000000 )) ms (ready_ms $(echo "$out" | jget 'd["ready_ms"]'))"
u3=$(usage); cpu_moves() { [ "$(usage)" -gt "$u3" ]; }; wait_until 5 cpu_moves

# ---- warm-up of a cold backend (first 12 requests +150 ms) ---------------------------------
out=$(act warmup - --endpoint "127.0.0.1:$P4" --args '{"path": "/", "rate": 40, "start_rate": 10, "duration_ms": 2500, "ramp_ms": 1000, "headers": ["X-Warmup: 1"]}') || fail "warm-up failed: $out"
echo "warmup: $out"
first=$(echo "$out" | jget 'd["first_second"]["mean_ms"]')
last=$(echo "$out" | jget 'd["last_second"]["mean_ms"]')
[ "$(echo "$out" | jget 'd["errors"]')" = 0 ] || fail "warm-up had errors"
# the cold backend adds 150 ms to each of its first 12 requests: the first second's mean must
# stand clearly above the last second's (a ratio would hinge on the loaded machine's base latency)
/usr/bin/python3 -c "import sys; sys.exit(0 if float('$first') > float('$last') + 50 else 1)" ||
    fail "warm-up shows no effect: first second $first ms, last second $last ms"
echo "warm-up: first second mean $first ms, last second mean $last ms"
echo PASS
