#!/usr/bin/env bash
# simulate_cli.sh: `tidectl simulate` as a user runs it, on a shipped 3-day slice of the NASA
# trace: every policy in one run, the JSON contract keys, a repeated --policy, the SVG plot,
# the queue's flags and figures (--slo-delay, --settle, --minutes), and the errors (bad flags,
# conflicting capacity flags, invalid spec, bad CSV) with exit 2.
# timeout: 120
source "$(dirname "$0")/lib.sh"

T=("$TIDE_BIN/tidectl" simulate --data tests/fixtures/simulate/nasa_3d.csv --spec deploy/examples/simulate.yaml
   --eval-days 1 --peak-replicas 20 --cold-start 120 --activation 1 --standby-cost 0.1)
"${T[@]}" --policy all --json --plot "$W/sim.svg" > "$W/out.json" || fail "simulate --policy all"
/usr/bin/python3 - "$W/out.json" <<'PY' || fail "JSON contract"
import json, sys
res = json.load(open(sys.argv[1]))
assert [o["policy"] for o in res] == ["tide", "hpa", "static"], res
for o in res:
    for k in ("overload_minutes", "above_target_minutes", "replica_minutes", "scale_actions"):
        assert isinstance(o[k], (int, float)) and o[k] >= 0, (k, o)
    assert o["evaluated_minutes"] == 1440, o
s = {o["policy"]: o for o in res}
assert s["static"]["overload_minutes"] == 0 and s["static"]["replica_minutes"] == 20 * 1440, s["static"]
assert s["static"]["scale_actions"] == 0 and s["static"]["above_target_minutes"] == 0, s["static"]
assert s["tide"]["model"] and s["tide"]["standby_cost"] == 0.1
assert s["tide"]["replica_minutes"] < s["static"]["replica_minutes"]
PY
grep -q '<polyline' "$W/sim.svg" || fail "no plot"
# real dates on the time axis, labelled value axes, legends beside the data (shared/svgplot.c)
grep -q '>Aug 28 00:00<' "$W/sim.svg" || fail "no date on the time axis"
grep -q '>time (UTC)<' "$W/sim.svg" && grep -q '>replicas<' "$W/sim.svg" || fail "axis labels"
! grep -q '>day [0-9]<' "$W/sim.svg" || fail "day-number axis is back"
"${T[@]}" --policy hpa --policy static --policy hpa | grep -cE '^(hpa|static) ' | grep >/dev/null -x 2 || fail "repeated --policy"
/usr/bin/python3 - "$W/out.json" <<'PY' || fail "queue keys without --slo-delay"
import json, sys
for o in json.load(open(sys.argv[1])):
    assert o["slo_violation_minutes"] is None and o["slo_violation_times"] is None, o
    assert o["backlog_max_s"] >= 0 and o["queue_minutes"] >= 0 and o["failed_traffic"] == 0, o
PY
# the queue: an SLO bound (trace seconds), a queue timeout, the metric window, a fleet that
# serves less than it is sized for, the per-minute figures
"${T[@]}" --policy all --json --slo-delay 20 --queue-timeout 600 --metric-window 60 \
    --service-capacity "$("${T[@]}" --policy static --json | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)[0]["capacity"] * 0.3)')" \
    --static-replicas 20 --settle rule --minutes "$W/min.csv" > "$W/q.json" || fail "simulate with the queue's flags"
/usr/bin/python3 - "$W/q.json" "$W/min.csv" <<'PY' || fail "queue figures"
import csv, json, sys
res = {o["policy"]: o for o in json.load(open(sys.argv[1]))}
rows = list(csv.DictReader(open(sys.argv[2])))
assert len(rows) == 3 * 1440, len(rows)
for p, o in res.items():
    mine = [r for r in rows if r["policy"] == p]
    viol = [int(r["minute"]) for r in mine if r["slo_violation"] == "1"]
    assert o["slo_violation_minutes"] == len(viol) and o["slo_violation_times"] == viol, (p, o, viol)
    assert o["slo_delay_s"] == 20 and o["queue_timeout_s"] == 600 and o["metric_window_s"] == 60, o
    assert o["settle_s"] == 75, o  # the control plane's rule: max(2 x 15, 15 + 60)
    assert abs(sum(float(r["traffic"]) for r in mine) - o["traffic"]) < 1e-3 * o["traffic"] + 1
    assert max(float(r["max_wait_s"]) for r in mine) <= 600 + 1e-6, p
s = res["static"]  # 20 replicas at 30% of the sized capacity: the peak hours overload
assert s["static_replicas"] == 20 and s["overload_minutes"] > 0 and s["slo_violation_minutes"] > 0, s
assert s["backlog_max_s"] > 20, s
PY

expect2() { # expect2 WHAT CMD...: exit status 2 and a message on stderr
    local what=$1; shift
    set +e; "$@" > "$W/o" 2> "$W/e"; local rc=$?; set -e
    [ $rc -eq 2 ] || fail "$what: exit $rc, want 2 ($(cat "$W/e"))"
    [ -s "$W/e" ] || fail "$what: no message"
}
expect2 "unknown policy" "${T[@]}" --policy fastest
expect2 "no policy" "${T[@]}"
expect2 "both capacity flags" "${T[@]}" --policy hpa --capacity 10
expect2 "bad standby cost" "${T[@]}" --policy hpa --standby-cost 2
expect2 "invalid spec" "$TIDE_BIN/tidectl" simulate --data tests/fixtures/simulate/nasa_3d.csv \
    --spec tests/fixtures/workload/bad.yaml --policy hpa
grep -q 'spec.behavior.scaleDown.gray.changePercent (line 30)' "$W/e" || fail "spec problems not listed"
printf 'timestamp,value\n1,2\nthree,4\n' > "$W/bad.csv"
expect2 "bad csv" "$TIDE_BIN/tidectl" simulate --data "$W/bad.csv" --spec deploy/examples/simulate.yaml --policy hpa
grep -q 'line 3' "$W/e" || fail "CSV error does not name the line: $(cat "$W/e")"
expect2 "too short" "${T[@]}" --policy hpa --eval-days 3
expect2 "bad slo delay" "${T[@]}" --policy hpa --slo-delay 0
expect2 "bad queue timeout" "${T[@]}" --policy hpa --queue-timeout -1
expect2 "bad metric window" "${T[@]}" --policy hpa --metric-window 1.5
expect2 "bad service capacity" "${T[@]}" --policy hpa --service-capacity 0
expect2 "bad static replicas" "${T[@]}" --policy static --static-replicas 0
expect2 "bad settle" "${T[@]}" --policy hpa --settle x
echo "simulate_cli: ok"
