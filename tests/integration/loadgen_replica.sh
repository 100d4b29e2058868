#!/usr/bin/env bash
# loadgen_replica.sh: the benchmark testbed's two programs against each other on loopback.
# tide-loadgen replays a 3-step trace at clock rate 60 (3 trace minutes in 3 real seconds)
# open loop: every minute row offers exactly the trace's requests (even arrivals); a warm
# tide-replica serves them all with real CPU work (and HTTP/1.0 health checks, closed after
# each answer); one still in its cold start (given in trace
# time) answers 503, counted as failed; --requests writes one row per request agreeing with the
# minute rows; a constant-rate run is stopped early by SIGTERM and still writes its summary;
# bad flags and traces exit 2 naming the problem; non-loopback targets are refused.
# timeout: 60
source "$(dirname "$0")/lib.sh"
: "${TIDE_BUILD:=$(pwd)/build}"
T=$TIDE_BUILD/tools
P=$(port)
printf 'timestamp,value\n1700000000,120\n1700000060,240\n1700000120,60\n' > "$W/trace.csv"

# A warm replica (no start-up): every offered request is served
spawn replica "$T/tide-replica" --port $P --work-ms 0.2 --startup-ms 0 --clock-rate 60 --name r1
RP=$SPAWNED
wait_until 20 grep -q "^ready after 0 ms" "$W/replica.log" || fail "replica not ready"
grep -qE '^calibrated: [0-9.]+ ns of CPU per unit, [0-9]+ units = 0.200 ms per request' \
    "$W/replica.log" || fail "no calibration line"
[ "$(curl -s http://127.0.0.1:$P/)" = r1 ] || fail "GET /"
# HTTP/1.0 requests (HAProxy's health checks) close after the answer: regression, the replica
# read its connection after freeing it (ASan: heap-use-after-free)
for i in 1 2 3; do
    [ "$(curl -s --http1.0 http://127.0.0.1:$P/healthz)" = ok ] || fail "HTTP/1.0 healthz $i"
done
kill -0 $RP || fail "replica died on HTTP/1.0 requests"
"$T/tide-loadgen" --target 127.0.0.1:$P --trace "$W/trace.csv" --clock-rate 60 --arrivals even \
    --out "$W/minutes.csv" --summary "$W/sum.json" --requests "$W/req.csv" --timeout-ms 20000 > "$W/loadgen.log" 2>&1 \
    || fail "loadgen exit $?"
# A cold replica (an hour of trace time = 60 s real, longer than the 3 s replay): 503 to all
C=$(port)
spawn cold "$T/tide-replica" --port $C --work-ms 0.2 --startup-ms 3600000 --clock-rate 60
wait_until 20 grep -q "^listening on 127.0.0.1:$C" "$W/cold.log" || fail "cold replica did not listen"
[ "$(curl -s -o /dev/null -w '%{http_code}' http://127.0.0.1:$C/healthz)" = 503 ] || fail "healthz while starting"
"$T/tide-loadgen" --target 127.0.0.1:$C --trace "$W/trace.csv" --clock-rate 60 --arrivals even \
    --out "$W/cold.csv" --summary "$W/cold.json" --requests "$W/req-cold.csv" --timeout-ms 20000 > "$W/loadgen-cold.log" 2>&1 \
    || fail "loadgen (cold) exit $?"
/usr/bin/python3 - "$W/minutes.csv" "$W/sum.json" "$W/cold.csv" "$W/cold.json" "$W/req.csv" "$W/req-cold.csv" <<'PY' || fail "loadgen figures"
import csv, json, sys
for mfile, sfile, warm, rfile in ((sys.argv[1], sys.argv[2], True, sys.argv[5]), (sys.argv[3], sys.argv[4], False, sys.argv[6])):
    rows = list(csv.DictReader(open(mfile)))
    s = json.load(open(sfile))
    assert [int(r['minute']) for r in rows] == [1700000000, 1700000060, 1700000120], rows
    offered = [int(r['offered']) for r in rows]
    # even arrivals: each step's requests, give or take the one on a boundary
    assert abs(offered[0] - 120) <= 1 and abs(offered[1] - 240) <= 1 and abs(offered[2] - 60) <= 1, rows
    for r in rows:
        assert int(r['served']) + int(r['failed']) == int(r['offered']), r
        assert int(r['failed']) == (0 if warm else int(r['offered'])), (warm, r)
    assert s['requests'] == sum(offered) and s['served'] + s['failed'] == s['requests'], s
    if warm:
        assert 0 < s['p50_ms'] <= s['p99_ms'] <= s['max_ms'], s
    else:  # refused while starting: counted as failed with their status
        assert s['by_status']['5xx'] == s['requests'] and s['p99_ms'] == -1, s
    # --requests: one row per request (due trace time, latency, status), the same accounting
    # as the minutes: each minute's rows are its offered requests, their statuses its served
    # and failed, and the answered latencies' maximum its max_ms (to the histogram's 2.5%)
    req = list(csv.DictReader(open(rfile)))
    assert len(req) == s['requests'], (len(req), s)
    for r in rows:
        m = int(r['minute'])
        mine = [q for q in req if m <= float(q['due_s']) < m + 60]
        ok = [float(q['latency_ms']) for q in mine if 200 <= int(q['status']) < 300]
        assert len(mine) == int(r['offered']) and len(ok) == int(r['served']), (r, len(mine), len(ok))
        assert all(float(q['latency_ms']) >= 0 for q in mine), mine[:3]
        if ok:
            assert abs(max(ok) - float(r['max_ms'])) <= 0.001 + 0.03 * max(ok), (r, max(ok))
        else:
            assert all(int(q['status']) == 503 for q in mine), mine[:3]
PY

# SIGTERM ends a run early with its summary written and every request accounted for
"$T/tide-loadgen" --target 127.0.0.1:$P --rate 20 --seconds 60 --summary "$W/sum2.json" \
    > "$W/loadgen2.log" 2>&1 &
LG=$!
_PIDS+=("$LG")
wait_until 20 grep -q . "$W/loadgen2.log"
sleep 1 # a second of load (the run is open-loop: nothing to await but time)
kill -TERM $LG
wait $LG || fail "loadgen after SIGTERM: exit $?"
/usr/bin/python3 -c "import json,sys
s=json.load(open('$W/sum2.json')); assert s['requests']>0 and s['served']+s['failed']==s['requests'], s
assert s['seconds'] < 30, s" || fail "summary after SIGTERM"

# refused: bad flags, bad traces, other addresses (exit 2, naming the problem)
expect2() { # expect2 TEXT ARGS...
    local text=$1; shift
    set +e; out=$("$T/tide-loadgen" "$@" 2>&1); rc=$?; set -e
    [ $rc -eq 2 ] || fail "exit $rc for $*: $out"
    grep -qF -- "$text" <<<"$out" || fail "no '$text' for $*: $out"
}
expect2 "only loopback" --target 10.0.0.1:80 --rate 1 --seconds 1
expect2 "expected 127.x.y.z:PORT" --target localhost --rate 1 --seconds 1
printf 'timestamp,value\n1700000000,abc\n1700000060,1\n' > "$W/bad.csv"
expect2 "line 2" --target 127.0.0.1:$P --trace "$W/bad.csv"
expect2 "above this tool's bound" --target 127.0.0.1:$P --trace "$W/trace.csv" --scale 1e5 \
    --clock-rate 60
expect2 "clock_rate '0'" --target 127.0.0.1:$P --trace "$W/trace.csv" --clock-rate 0
expect2 "holds no step" --target 127.0.0.1:$P --trace "$W/trace.csv" --from 1800000000
set +e; out=$("$T/tide-replica" --port 0 2>&1); rc=$?; set -e
[ $rc -eq 2 ] || fail "replica --port 0: $rc $out"

kill -TERM $RP
wait_until 10 grep -q '^stopped: ' "$W/replica.log" || fail "replica did not stop on SIGTERM"
echo ok
