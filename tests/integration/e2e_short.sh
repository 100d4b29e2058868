#!/usr/bin/env bash
# e2e_short.sh: the short run of the end-to-end benchmark (tests/bench/e2e.sh): 8 trace minutes
# of the NASA trace (or of a synthetic day when the team data is absent) at clock rate 60 with
# the static policy: a real fleet through the HAProxyBackend executor, the JSON holds the
# issue's keys with consistent figures (every offered request accounted, the static fleet's
# replica-minutes), the SVG is written, and nothing of the run is left (processes, cgroups).
# Also: the command line's errors (unknown policy, tide not wired yet, no trace) exit 2.
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
for i in range(1440): print(1700000000 + 60 * i, round(50 + 40 * math.sin(i / 1440 * 2 * math.pi)))" > "$TR"
fi
for bad in "--policy nope" "--policy tide" "--days 0"; do
    set +e; out=$(bash "$E2E" --trace "$TR" $bad 2>&1); rc=$?; set -e
    [ $rc -eq 2 ] || fail "$bad: exit $rc: $out"
done
set +e; out=$(bash "$E2E" --policy static 2>&1); rc=$?; set -e
[ $rc -eq 2 ] && grep -q -- "--trace FILE.csv is required" <<<"$out" || fail "no trace: $rc $out"

bash "$E2E" --trace "$TR" --minutes 8 --policy static --json "$W/e2e.json" --plot "$W/e2e.svg" \
    > "$W/e2e.log" 2>&1 || { cat "$W/e2e.log"; fail "e2e.sh exit $?"; }
cat "$W/e2e.log"
/usr/bin/python3 - "$W/e2e.json" <<'PY' || fail "e2e json"
import json, sys
res = json.load(open(sys.argv[1]))
assert [r['policy'] for r in res] == ['static'], res
r = res[0]
for k in ('policy', 'slo_violation_minutes', 'failed_requests', 'requests', 'replica_minutes',
          'standby_minutes', 'p99_ms', 'scale_actions'):
    assert k in r, (k, r)
assert r['requests'] > 0 and 0 <= r['failed_requests'] <= r['requests'], r
assert 0 <= r['slo_violation_minutes'] <= 8 and r['minutes'] == 8, r
# the static fleet: its 5 replicas all the time (sampled; one sample may catch a start)
assert 4 * 8 <= r['replica_minutes'] <= 5 * 8, r
assert r['standby_minutes'] == 0 and r['scale_actions'] == 0, r
assert r['p99_ms'] > 0 and r['unloaded_p99_ms'] > 0, r
PY
grep -q '<svg' "$W/e2e.svg" && grep -q 'static: offered' "$W/e2e.svg" || fail "no chart"
# tide-e2e-PID: left behind when its e2e.sh (PID) has ended (another run may be under way)
for d in /sys/fs/cgroup/*/tide-e2e-*; do
    [ -d "$d" ] && [ ! -d "/proc/${d##*-}" ] && fail "cgroups left behind: $d"
done
pgrep -f "$TIDE_BUILD/tools/tide-replica" && fail "replicas left behind"
echo ok
