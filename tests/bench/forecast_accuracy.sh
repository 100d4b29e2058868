#!/usr/bin/env bash
# forecast_accuracy.sh: the forecast benchmark protocol (tidectl backtest) for every model on
# both tasks of every series in ../shared/data; prints MASE, UNDER, p90 coverage and timings per
# model (pin90: the p90 pinball loss), and whether auto beats both seasonal naive forecasts.
# Networks train for their default number of epochs (early stopping applies), or at most
# $NET_EPOCHS epochs when that is set. Skips when the data folder is absent. Prints auto's
# MASE ratio to the best naive forecast (last, snaive-day, snaive-week) per pair and their
# geometric mean. Exits 1 when auto misses a goal (issue 15: ratio <= 1.0 on every pair,
# geometric mean <= 0.85; NASA: MASE <= 0.53 scale-1h, <= 0.556 day-ahead with UNDER <= 0.30
# and p90 coverage 0.85-0.95).
set -u
cd "$(dirname "$0")/../.."
BIN=${TIDE_BIN:-bin}
DATA=../shared/data
[ -d "$DATA" ] || { echo "forecast_accuracy: skipped (no $DATA)"; exit 0; }
MODELS=${MODELS:-last,snaive-day,snaive-week,holt-winters,profile,neural,lstm,auto}
out=$(mktemp /tmp/tide-bench-fc.XXXXXX)
ratios=$(mktemp /tmp/tide-bench-fc-r.XXXXXX)
trap 'rm -f "$out" "$ratios"' EXIT
rc=0
epochs=()
[ -n "${NET_EPOCHS:-}" ] && epochs=(--max-epochs "$NET_EPOCHS")
for f in "$DATA"/*.csv; do
    for task in scale-1h day-ahead; do
        if "$BIN/tidectl" backtest --data "$f" --task "$task" --model "$MODELS" --json \
            "${epochs[@]}" > "$out" 2>/dev/null; then
            python3 - "$out" "$ratios" <<'PY' || rc=1
import json, sys
d = json.load(open(sys.argv[1]))
name = d["data"].split("/")[-1].replace(".csv", "")
print(f"== {name} {d['task']} (step {d['step']} s, horizon {d['horizon']}, {d['origins']} origins; {d['repairs']})")
print(f"  {'model':44} {'MASE':>7} {'UNDER':>6} {'p90cov':>6} {'pin90':>7} {'WAPE':>6} {'fit_s':>7} {'pred_s':>7} {'win/s':>6}")
m = {r["model"]: r for r in d["models"]}
for r in d["models"]:
    label = r["used"] if r["used"] != r["model"] else r["model"]
    print(f"  {label:44} {r['mase']:7.4f} {r['under']:6.3f} {r['p90_coverage']:6.3f} {r.get('pinball_p90', float('nan')):7.4g} {r['wape']:6.3f} {r['fit_seconds']:7.2f} {r['predict_seconds']:7.2f} {r['train_windows_per_s']:6.0f}")
naive = [k for k in ("last", "snaive-day", "snaive-week") if k in m]
if "auto" in m and len(naive) == 3:
    a = m["auto"]["mase"]
    best = min(naive, key=lambda k: m[k]["mase"])
    ratio = a / m[best]["mase"]
    ok = ratio <= 1.0
    print(f"  auto / best naive ({best}): {ratio:.3f} {'(goal <= 1.0 met)' if ok else 'LOSES (goal <= 1.0)'}")
    open(sys.argv[2], "a").write(f"{name} {d['task']} {ratio}\n")
    bad = not ok
    if name == "nasa_http_1m":
        goal = 0.53 if d["task"] == "scale-1h" else 0.556
        r = m["auto"]
        checks = [("MASE <= %.3f" % goal, r["mase"] <= goal)]
        if d["task"] == "day-ahead":
            checks += [("UNDER <= 0.30", r["under"] <= 0.30),
                       ("p90 coverage in [0.85, 0.95]", 0.85 <= r["p90_coverage"] <= 0.95)]
        for what, met in checks:
            print(f"  NASA goal {what}: {'met' if met else 'MISSED'}")
            bad = bad or not met
    sys.exit(1 if bad else 0)
PY
        else
            echo "== $(basename "$f" .csv) $task: not applicable: $("$BIN/tidectl" backtest --data "$f" --task "$task" --model last 2>&1 >/dev/null | head -1)"
        fi
    done
done
if [ -s "$ratios" ]; then
    python3 - "$ratios" <<'PY' || rc=1
import math, sys
r = [float(l.split()[2]) for l in open(sys.argv[1])]
g = math.exp(sum(map(math.log, r)) / len(r))
print(f"auto / best naive: {len(r)} pairs, {sum(x > 1 for x in r)} lost, geometric mean {g:.3f} (goal <= 0.85)")
sys.exit(0 if g <= 0.85 else 1)
PY
fi
exit $rc
