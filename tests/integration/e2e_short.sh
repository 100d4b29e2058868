#!/usr/bin/env bash
# e2e_short.sh: the short run of the end-to-end benchmark (tests/bench/e2e.sh): 8 trace minutes
# of the NASA trace (or of a synthetic week when the team data is absent) at clock rate 60 with
# the tide policy: a real fleet through the HAProxyBackend executor, HAProxy's request counter
# sampled by the agent's haproxy collector on the virtual clock and merged with the history
# backfilled into a real Prometheus (the predictive model fits on 7 days of it), the JSON holds
# the issue's keys with consistent figures (every offered request accounted), the SVG is
# written, and nothing of the run is left (processes, cgroups). Without Prometheus it runs the
# static policy instead (the fleet's replica-minutes). Also: the command line's errors (unknown
# policy, no trace, --days 0) exit 2.
# timeout: 120
source "$(dirname "$0")/lib.sh"
[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"
E2E=$TIDE_SRC/tests/bench/e2e.sh
TR=$TIDE_SRC/../shared/data/nasa_http_1m.csv
if [ ! -r "$TR" ]; then # a day with a daily cycle, one row a minute
    TR=$W/day.csv
    /usr/bin/python3 -c "import math
print('timestamp,value')
for i in range(8 * 1440): print(1700000000 + 60 * i, round(50 + 40 * math.sin(i / 1440 * 2 * math.pi)))" > "$TR"
fi
POL=tide
command -v prometheus >/dev/null && command -v promtool >/dev/null || POL=static
for bad in "--policy nope" "--days 0" "--slo-ms x"; do
    set +e; out=$(bash "$E2E" --trace "$TR" $bad 2>&1); rc=$?; set -e
    [ $rc -eq 2 ] || fail "$bad: exit $rc: $out"
done
set +e; out=$(bash "$E2E" --policy static 2>&1); rc=$?; set -e
[ $rc -eq 2 ] && grep -q -- "--trace FILE.csv is required" <<<"$out" || fail "no trace: $rc $out"

# (the SLO's reference over 200 requests, 8 s real, not the benchmark's 2000)
E2E_KEEP=1 bash "$E2E" --trace "$TR" --minutes 8 --policy $POL --ref-requests 200 --json "$W/e2e.json" --plot "$W/e2e.svg" \
    > "$W/e2e.log" 2>&1 || { cat "$W/e2e.log"; fail "e2e.sh exit $?"; }
cat "$W/e2e.log"
K=$(sed -n 's/^e2e: work files kept in //p' "$W/e2e.log")
[ -d "$K" ] || fail "no work directory in the log"
mv "$K" "$W/run"
/usr/bin/python3 - "$W/e2e.json" "$POL" "$W/run" <<'PY' || fail "e2e json"
import json, sys
res = json.load(open(sys.argv[1]))
pol, run = sys.argv[2], sys.argv[3]
assert [r['policy'] for r in res] == [pol], res
r = res[0]
for k in ('policy', 'slo_violation_minutes', 'failed_requests', 'requests', 'replica_minutes',
          'standby_minutes', 'p99_ms', 'scale_actions'):
    assert k in r, (k, r)
assert r['requests'] > 0 and 0 <= r['failed_requests'] <= r['requests'], r
# the segment's 8 minutes (fewer only when the machine started the load generator late:
# it skips the past instead of firing it as one burst)
assert 1 <= r['minutes'] <= 8 and 0 <= r['slo_violation_minutes'] <= r['minutes'], r
assert r['p99_ms'] > 0 and r['unloaded_p99_ms'] > 0, r
# the SLO from each request's record: the bound is 4x the reference's p99 (200 Poisson
# requests at the target load on one replica), the per-minute table accounts for every
# request of the segment, and a minute judged on fewer than 100 answered requests pooled
# the trailing minutes (the segment's start: what there was)
ref = r['reference']
assert ref['requests'] >= 150 and ref['served'] > 0 and abs(r['slo_p99_ms'] - 4 * ref['p99_ms']) < 0.01, r
assert r['slo_measure'] == 'pooled' and r['slo_min_requests'] == 100, r
import csv
sc = list(csv.DictReader(open(run + '/' + pol + '/scored.csv')))
assert len(sc) == 8 and sum(int(m['violation']) for m in sc) == r['slo_violation_minutes'], sc
req = [l for l in open(run + '/' + pol + '/requests.csv')][1:]
t0 = int(sc[0]['minute'])
inseg = sum(1 for l in req if t0 <= float(l.split(',')[0]) < t0 + 480)
assert sum(int(m['offered']) for m in sc) == inseg and inseg > 0, (inseg, sc)
for i, m in enumerate(sc):
    assert int(m['p99_minutes']) >= 1 and (int(m['p99_requests']) >= 100 or int(m['p99_minutes']) == i + 1), m
if pol == 'static':  # its 5 replicas all the time (sampled; one sample may catch a start)
    assert 4 * 8 <= r['replica_minutes'] <= 5 * 8, r
    assert r['standby_minutes'] == 0 and r['scale_actions'] == 0, r
else:
    # between min and max replicas; the standby cost measured when there was standby
    assert 1 * 8 <= r['replica_minutes'] <= r['replica_minutes_standby_as_online'] <= 6 * 8, r
    assert r['standby_minutes'] == 0 or r['standby_cost'] is not None, r
    d = json.load(open(run + '/tide/describe.json'))
    # the traffic metric: the store's live points (HAProxy's counter, sampled by the agent)
    # merged with Prometheus's backfilled history; the model fitted on 7 days of it
    tr = d['metrics']['traffic']
    assert tr['source'] == 'merged' and not tr['error'], tr
    f = d['last_fit']
    assert f and f['source'] == 'prometheus' and f['points'] == 7 * 1440 and not f['failed'], f
PY
grep -q '<svg' "$W/e2e.svg" && grep -q "$POL: offered" "$W/e2e.svg" || fail "no chart"
if [ $POL = tide ]; then # HAProxy's counter reached the store, stamped in trace time
    /usr/bin/python3 - "$W/run/tide/series.json" "$TR" <<'PY' || fail "HAProxy counter in the store"
import json, sys
last = max(int(l.split(',')[0]) for l in open(sys.argv[2]) if l[0].isdigit())
s = [x for x in json.load(open(sys.argv[1]))['series'] if x['labels'].get('proxy') == 'web']
assert len(s) == 1 and s[0]['samples'] > 10, s
# sampled from the 15-minute lead-in to the teardown after the segment (trace time, not
# the real clock: an hour of trace time is a minute of teardown at rate 60)
assert last - 8 * 60 - 900 - 300 <= s[0]['first_ms'] / 1000 <= s[0]['last_ms'] / 1000 <= last + 3600, (s, last)
PY
fi
# tide-e2e-PID: left behind when its e2e.sh (PID) has ended (another run may be under way)
for d in /sys/fs/cgroup/*/tide-e2e-*; do
    [ -d "$d" ] && [ ! -d "/proc/${d##*-}" ] && fail "cgroups left behind: $d"
done
pgrep -f "$TIDE_BUILD/tools/tide-replica" && fail "replicas left behind"
echo ok
