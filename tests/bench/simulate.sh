#!/usr/bin/env bash
# simulate.sh: the scaling benchmark of issue 6. NASA HTTP trace, last 7 days evaluated (earlier
# data trains the model), target 60%, capacity such that the week's peak needs 20 replicas,
# cold start 120 s, activation 1 s, standby counted at 0.1. Goal: Tide's overload minutes at
# most 0.3x the HPA's while using no more replica-minutes than the HPA. Prints the table, the
# ratios, and PASS/FAIL; exit 1 on a missed goal.
set -u
cd "$(dirname "$0")/../.."
BIN=${TIDE_BIN:-bin}
DATA=../shared/data/nasa_http_1m.csv
if [ ! -r "$DATA" ]; then echo "simulate: $DATA not present, skipped"; exit 0; fi
OUT=$(mktemp /tmp/tide-bench-sim.XXXXXX)
trap 'rm -f "$OUT"' EXIT
start=$(date +%s.%N)
"$BIN/tidectl" simulate --data "$DATA" --spec deploy/examples/simulate.yaml --policy all \
    --eval-days 7 --peak-replicas 20 --cold-start 120 --activation 1 --standby-cost 0.1 --json > "$OUT" || exit 1
secs=$(echo "$(date +%s.%N) - $start" | bc)
python3 - "$OUT" "$secs" <<'PY'
import json, sys
res = {o["policy"]: o for o in json.load(open(sys.argv[1]))}
t, h, s = res["tide"], res["hpa"], res["static"]
print("%-7s %10s %13s %12s %13s %8s" % ("policy", "overload", "above_target", "replica_min", "scale_actions", "util%"))
for k in ("tide", "hpa", "static"):
    o = res[k]
    print("%-7s %10.1f %13.1f %12.0f %13d %8.1f" % (k, o["overload_minutes"], o["above_target_minutes"],
          o["replica_minutes"], o["scale_actions"], o["mean_utilization"]))
ov = t["overload_minutes"] / h["overload_minutes"] if h["overload_minutes"] else float("inf")
rm = t["replica_minutes"] / h["replica_minutes"]
print("tide/hpa: overload %.3fx (goal <= 0.3), replica-minutes %.3fx (goal <= 1.0)" % (ov, rm))
print("vs static: tide %.3fx, hpa %.3fx replica-minutes; static overload %.1f min" % (
    t["replica_minutes"] / s["replica_minutes"], h["replica_minutes"] / s["replica_minutes"], s["overload_minutes"]))
print("model %s, %d fits in %.2f s, %d syncs fell back to reactive; run %.1f s" % (t["model"], t["fits"], t["fit_seconds"], t["fallback_syncs"], float(sys.argv[2])))
ok = ov <= 0.3 and rm <= 1.0
print("simulate goal:", "PASS" if ok else "FAIL")
sys.exit(0 if ok else 1)
PY
