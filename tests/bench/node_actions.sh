#!/usr/bin/env bash
# node_actions.sh: node action figures against real parts (HAProxy 2.6 on loopback in front of
# 3 Python backends, each in its own cgroup; actions sent with tidectl -> tide-controlplane ->
# tide-agent, as an operator would):
#  1. activate (thaw + HAProxy online) of a standby replica, N_ACT times: p50/p99 of the agent's
#     total_ms and of the whole `tidectl node-action` call, against a cold start of the same
#     backend process (spawn until its first successful request), N_COLD times; ratio printed.
#  2. drain under wrk load (-c20, 2 s, loopback), N_DRAIN times: failed requests must be 0.
# Goal (issue 7): activate p99 < 20 ms; 0 failed requests over 20 drains.
set -u
TIDE_SRC=${TIDE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TIDE_BIN=${TIDE_BIN:-$TIDE_SRC/bin}
export TIDE_SRC TIDE_BIN
source "$TIDE_SRC/tests/integration/lib.sh"
source "$TIDE_SRC/tests/integration/_node_actions.sh"
# private copies: a rebuild of bin/ during the minutes this runs must not break it
mkdir -p "$W/bin"
for b in tidectl tide-agent tide-controlplane; do cp "$TIDE_BIN/$b" "$W/bin/" || fail "$TIDE_BIN/$b missing"; done
TIDE_BIN=$W/bin
N_ACT=${N_ACT:-50} N_COLD=${N_COLD:-10} N_DRAIN=${N_DRAIN:-20}

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null && command -v wrk >/dev/null || skip "needs haproxy and wrk"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no hybrid cgroup mounts"
MEMREL=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMREL" = / ] && MEMREL=
R=/sys/fs/cgroup TAG=tide-bench-na-$$ SRV=$TIDE_SRC/tests/fixtures/node_actions/backend.py

FP=$(port); P1=$(port); P2=$(port); P3=$(port); S=$W/admin.sock
na_backend s1 "$P1"; na_backend s2 "$P2"; na_backend s3 "$P3"
na_haproxy "$FP" "$S" "$P1" "$P2" "$P3"
wait_until 20 all_up

na_tide --log-level warn -- --log-level warn
act() { "${CTL[@]}" --json node-action n1 "$@"; }  # stdout only: the JSON is parsed
num() { /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[sys.argv[1]])' "$1"; }
HAP=(--haproxy-socket "$S" --haproxy-server be/s1)
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- 1. activate vs cold start ----------------------------------------------------------
: > "$W/act_agent"; : > "$W/act_wall"; : > "$W/act_thaw"
act drain "/$TAG-s1" "${HAP[@]}" > /dev/null || fail "drain failed"
for i in $(seq "$N_ACT"); do
    act standby "/$TAG-s1" "${HAP[@]}" > /dev/null || fail "standby $i failed"
    t0=$(date +%s%N)
    out=$(act activate "/$TAG-s1" "${HAP[@]}") || fail "activate $i failed: $out"
    t1=$(date +%s%N)
    echo "$out" | num total_ms >> "$W/act_agent"
    echo "$out" | num thaw_ms >> "$W/act_thaw"
    echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$W/act_wall"
    act drain "/$TAG-s1" "${HAP[@]}" > /dev/null || fail "drain $i failed"
done
# cold start: the same backend process, spawned, until its first successful request
cat > "$W/cold.py" <<'PY'
import http.client, os, subprocess, sys, time
srv, port = sys.argv[1], int(sys.argv[2])
t0 = time.perf_counter()
p = subprocess.Popen(["/usr/bin/python3", srv, "cold", str(port)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=1); c.request("GET", "/")
            if c.getresponse().status == 200: break
        except OSError: time.sleep(0.001)
        if time.perf_counter() - t0 > 20: sys.exit("cold start: no answer in 20 s")
    print("%.3f" % ((time.perf_counter() - t0) * 1000))
finally:
    p.kill(); p.wait()
PY
: > "$W/cold"
for i in $(seq "$N_COLD"); do /usr/bin/python3 "$W/cold.py" "$SRV" "$(port)" >> "$W/cold" || fail "cold start failed"; done
# what any tidectl call costs here (process start with its libraries + one ops round trip)
: > "$W/ctl_base"
for i in $(seq 20); do t0=$(date +%s%N); "${CTL[@]}" agents > /dev/null; t1=$(date +%s%N); echo "scale=3; ($t1 - $t0) / 1000000" | bc >> "$W/ctl_base"; done
stats() { sort -n "$1" | awk '{v[NR]=$1} END {p99=int((NR*99+99)/100); printf "p50 %.2f ms  p99 %.2f ms  max %.2f ms (n=%d)", v[int((NR+1)/2)], v[p99], v[NR], NR}'; }
pct() { sort -n "$1" | awk -v q="$2" '{v[NR]=$1} END {i=int((NR*q+99)/100); if (i<1) i=1; print v[i]}'; }
echo "activate (thaw + HAProxy ready), agent-side total_ms: $(stats "$W/act_agent")"
echo "  of which thaw (thaw_ms):                         $(stats "$W/act_thaw")"
echo "activate, whole tidectl node-action call:            $(stats "$W/act_wall")"
echo "  (any tidectl call here, e.g. tidectl agents:    $(stats "$W/ctl_base"))"
echo "cold start of the same backend (spawn -> first 200): $(stats "$W/cold")"
a50=$(pct "$W/act_agent" 50); a99=$(pct "$W/act_agent" 99); c50=$(pct "$W/cold" 50)
w50=$(pct "$W/act_wall" 50)
echo "ratio cold start p50 / activate p50: $(echo "scale=1; $c50 / $a50" | bc)x (agent-side), $(echo "scale=1; $c50 / $w50" | bc)x (whole tidectl call)"
if [ "$(echo "$a99 < 20" | bc)" = 1 ]; then echo "goal activate p99 < 20 ms: met ($a99 ms)"; else echo "goal activate p99 < 20 ms: MISSED ($a99 ms)"; fi
act activate "/$TAG-s1" "${HAP[@]}" > /dev/null || fail "activate failed"

# ---- 1b. command to the first request the activated replica answers through HAProxy ------
cat > "$W/first.py" <<'PY'
# first.py N FRONT_PORT TIDECTL... -- CGROUP HAP_ARGS...: N times: standby s1, then start
# `activate` and send requests through HAProxy (new connection each) until s1 answers; prints
# the ms from starting the command to that answer, one per line.
import http.client, subprocess, sys, time
n, fp = int(sys.argv[1]), int(sys.argv[2])
rest = sys.argv[3:]; k = rest.index("--")
ctl, tail = rest[:k], rest[k + 1:]
def act(a): return ctl + ["node-action", "n1", a] + tail
def run(a):
    r = subprocess.run(act(a), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode: sys.exit("%s failed: %s" % (a, r.stderr.decode()))
for i in range(n):
    run("drain"); run("standby")
    t0 = time.perf_counter()
    p = subprocess.Popen(act("activate"), stdout=subprocess.DEVNULL)
    while True:
        try:
            c = http.client.HTTPConnection("127.0.0.1", fp, timeout=2); c.request("GET", "/")
            if c.getresponse().read() == b"s1\n": break
        except OSError: pass
        if time.perf_counter() - t0 > 10: sys.exit("s1 did not answer within 10 s")
    print("%.3f" % ((time.perf_counter() - t0) * 1000), flush=True)
    if p.wait(): sys.exit("activate failed")
PY
/usr/bin/python3 "$W/first.py" "${N_FIRST:-20}" "$FP" "${CTL[@]}" -- "/$TAG-s1" "${HAP[@]}" > "$W/first" || fail "first-request runs failed"
echo "activate command to the first request s1 answers through HAProxy (tidectl start included): $(stats "$W/first")"
f50=$(pct "$W/first" 50)
echo "ratio cold start p50 / (activate command -> first answer) p50: $(echo "scale=1; $c50 / $f50" | bc)x"

# ---- 2. drain under load ----------------------------------------------------------------
failed_total=0
requests_total=0
: > "$W/drain_ms"
for i in $(seq "$N_DRAIN"); do
    wait_until 10 all_up
    stot0=$(hc show stat be 4 -1 | awk -F, '$2=="s1"{print $8}')
    spawn wrk$i wrk -t1 -c20 -d2s "http://127.0.0.1:$FP/"; WRK=$SPAWNED
    s1_busy() { [ "$(hc show stat be 4 -1 | awk -F, '$2=="s1"{print $8}')" -gt "$((stot0 + 20))" ]; }
    wait_until 5 s1_busy
    out=$(act drain "/$TAG-s1" "${HAP[@]}" --endpoint "127.0.0.1:$P1" --timeout-ms 10000) || fail "drain $i failed: $out"
    echo "$out" | num drain_ms >> "$W/drain_ms"
    wait "$WRK" || true
    reqs=$(awk '/requests in/{print $1}' "$W/wrk$i.log")
    non2xx=$(awk '/Non-2xx/{print $NF}' "$W/wrk$i.log"); non2xx=${non2xx:-0}
    sockerr=$(awk -F'[ ,]+' '/Socket errors/{print $4+$6+$8+$10}' "$W/wrk$i.log"); sockerr=${sockerr:-0}
    failed_total=$((failed_total + non2xx + sockerr)); requests_total=$((requests_total + reqs))
    act activate "/$TAG-s1" "${HAP[@]}" > /dev/null || fail "re-activate $i failed"
done
echo "drain under load (wrk -c20 2 s, drain mid-run), $N_DRAIN repetitions: $failed_total failed of $requests_total requests; drain time $(stats "$W/drain_ms")"
[ "$failed_total" = 0 ] && echo "goal 0 failed requests over $N_DRAIN drains: met" || { echo "goal 0 failed requests: MISSED"; exit 1; }
