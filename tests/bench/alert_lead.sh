#!/usr/bin/env bash
# alert_lead.sh: lead time and false alerts of a predict alert rule with default settings
# (model auto, p90, horizon 6h, for 5m, retrain 1d, history 7d), replayed with
# `tidectl alert-replay` (the live rule's code) over the series of ../shared/data:
#   - the NAB series with labelled failures (EC2 request latency system failure, ASG
#     misconfiguration): for each labelled window, how long before its start the rule fired
#     (an alert counts for a window when it fires before the window ends and is still firing
#     at most one horizon before the window starts; negative = it fired after the start);
#     every other alert is a false alert;
#   - NASA HTTP and NYC taxi: alerts per week (taxi also those away from its labelled windows).
# The rule is switched on after NAB's probationary first 15% of each series. Thresholds, one
# rule for all (not tuned per series): CPU utilization percent: 90 (the classic); any other
# metric: the highest value of the first 15% plus its distance to that part's median ("as far
# above the worst seen as the worst is above normal"). Skips when the data folder is absent.
set -u
cd "$(dirname "$0")/../.."
BIN=${TIDE_BIN:-bin}
DATA=../shared/data
WIN=$DATA/nab_anomaly_windows.json
[ -f "$WIN" ] || { echo "alert_lead: skipped (no $WIN)"; exit 0; }
W=$(mktemp -d /tmp/tide-bench-alert.XXXXXX)
trap 'rm -rf "$W"' EXIT
rc=0
# defaults, then the same with keepFiringFor: 1h (a forecast hovering at the threshold flaps)
for keep in 0s 1h; do
echo "--- keepFiringFor: $keep"
for f in nab_ec2_request_latency_system_failure nab_cpu_utilization_asg_misconfiguration \
         nab_nyc_taxi nasa_http_1m; do
    thr=$(python3 - "$DATA/$f.csv" "$f" <<'PY'
import csv, statistics, sys
v = [float(r[1]) for r in list(csv.reader(open(sys.argv[1])))[1:]]
p = v[: int(0.15 * len(v))]
if "cpu_utilization" in sys.argv[2]:
    print(90)
else:
    print("%.6g" % (max(p) + (max(p) - statistics.median(p))))
PY
)
    printf 'apiVersion: tide/v1\nkind: AlertRule\nmetadata: {name: %s}\nspec:\n  type: predict\n  metric: {selector: x}\n  threshold: %s\n  keepFiringFor: %s\n' \
        "${f//_/-}" "$thr" "$keep" > "$W/$f.yaml"
    start=$(date +%s.%N)
    if ! "$BIN/tidectl" alert-replay --rule "$W/$f.yaml" --data "$DATA/$f.csv" --json > "$W/$f.json"; then
        echo "alert_lead: tidectl alert-replay failed on $f"
        rc=1
        continue
    fi
    end=$(date +%s.%N)
    python3 - "$W/$f.json" "$WIN" "$f.csv" "$thr" "$start" "$end" <<'PY' || rc=1
import calendar, json, sys, time
res, win, name, thr, t0, t1 = sys.argv[1:]
r = json.load(open(res))
def ts(s):
    return calendar.timegm(time.strptime(s.split(".")[0], "%Y-%m-%d %H:%M:%S"))
windows = [(ts(a), ts(b)) for a, b in json.load(open(win)).get(name, [])]
H = 6 * 3600
eps = r["episodes"]
weeks = (r["last_eval"] - r["first_eval"]) / (7 * 86400.0)
used = set()
leads = []
for L, R in windows:
    hit = [e for e in eps if e["fired_at"] <= R and
           (e["resolved_at"] is None or e["resolved_at"] >= L - H)]
    if hit:
        leads.append((L - hit[0]["fired_at"]) / 3600.0)
        used.update(id(e) for e in hit)
    else:
        leads.append(None)
false = [e for e in eps if id(e) not in used]
print("%s: threshold %s, %d evaluations over %.1f weeks (%.1f s, model %s): %d alerts, %.1f per week"
      % (name, thr, r["evaluations"], weeks, float(t1) - float(t0), r["model"], len(eps),
         len(eps) / weeks if weeks else 0))
if windows:
    print("  labelled windows: " + ", ".join(
        "%s: %s" % (time.strftime("%m-%d %H:%M", time.gmtime(L)),
                    "missed" if l is None else "fired %+.1f h before" % l)
        for (L, _), l in zip(windows, leads)))
    print("  false alerts (away from every window): %d, %.1f per week" %
          (len(false), len(false) / weeks if weeks else 0))
PY
done
done
exit $rc
