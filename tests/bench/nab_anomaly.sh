#!/usr/bin/env bash
# nab_anomaly.sh: the Numenta Anomaly Benchmark on the seven NAB series in ../shared/data:
# `tidectl anomaly --format nab` with default settings on each file, scored by nab_score.py
# (NAB's standard profile). First checks the scorer itself on detectors whose NAB scores are
# known by definition: the null detector (no detections) = 0, the perfect detector (a detection
# at the first row of every window) = 100. Exits 1 when a check fails or the score is below the
# goal (82). Skips when the data folder is absent.
set -u
cd "$(dirname "$0")/../.."
BIN=${TIDE_BIN:-bin}
DATA=../shared/data
WIN=$DATA/nab_anomaly_windows.json
[ -f "$WIN" ] || { echo "nab_anomaly: skipped (no $WIN)"; exit 0; }
W=$(mktemp -d /tmp/tide-bench-nab.XXXXXX)
trap 'rm -rf "$W"' EXIT
mkdir -p "$W/null" "$W/perfect" "$W/tide"
rc=0
files=$(python3 -c 'import json,sys; print(" ".join(json.load(open(sys.argv[1]))))' "$WIN")
# the reference detectors, written from the windows file
python3 - "$WIN" "$DATA" "$W" <<'PY'
import csv, json, os, sys
sys.path.insert(0, "tests/bench")
import nab_score as ns
win, data, out = sys.argv[1:]
labels = json.load(open(win))
for f, ws in labels.items():
    rows = list(csv.reader(open(os.path.join(data, f))))[1:]
    starts = {ns.parse_ts(a) for a, _ in ws}
    for kind in ("null", "perfect"):
        with open(os.path.join(out, kind, f), "w") as o:
            o.write("timestamp,value,anomaly_score,anomaly\n")
            for r in rows:
                hit = kind == "perfect" and ns.parse_ts(r[0]) in starts
                o.write("%s,%s,%s,%d\n" % (r[0], r[1], "1" if hit else "0", hit))
PY
for kind in null perfect; do
    s=$(python3 tests/bench/nab_score.py --windows "$WIN" --json "$W/$kind"/*.csv |
        python3 -c 'import json,sys; print("%.4f" % json.load(sys.stdin)["score"])')
    want=$([ $kind = null ] && echo 0.0000 || echo 100.0000)
    echo "scorer check: $kind detector scores $s (NAB: $want)"
    [ "$s" = "$want" ] || rc=1
done
start=$(date +%s.%N)
for f in $files; do
    if ! "$BIN/tidectl" anomaly --data "$DATA/$f" --format nab > "$W/tide/$f"; then
        echo "nab_anomaly: tidectl anomaly failed on $f"
        rc=1
    fi
done
end=$(date +%s.%N)
rows=$(cat "$W"/tide/*.csv | wc -l)
echo "tidectl anomaly: $rows rows in $(python3 -c "print('%.2f' % ($end - $start))") s"
python3 tests/bench/nab_score.py --windows "$WIN" "$W"/tide/*.csv | tee "$W/score.txt"
score=$(sed -n 's/^NAB score (standard profile): \([0-9.-]*\).*/\1/p' "$W/score.txt")
for p in reward_low_FP_rate reward_low_FN_rate; do
    python3 tests/bench/nab_score.py --windows "$WIN" --profile $p "$W"/tide/*.csv | tail -1
done
python3 -c "import sys; sys.exit(0 if float('$score') >= 82 else 1)" ||
    { echo "nab_anomaly: goal NOT met: standard score $score < 82"; rc=1; }
exit $rc
