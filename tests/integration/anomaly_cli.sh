#!/usr/bin/env bash
# anomaly_cli.sh: `tidectl anomaly` as a user runs it on a generated 5-minute series (4 days,
# a daily cycle, a gap, a duplicate row and one spike): --format nab keeps one row per input
# row with the stable header, the spike is flagged, --json's keys, the human table, and the
# errors (bad flags, bad CSV naming the line) with exit 2.
# timeout: 60
source "$(dirname "$0")/lib.sh"

/usr/bin/python3 - "$W/s.csv" <<'PY'
import math, random, sys
random.seed(4)
with open(sys.argv[1], "w") as f:
    f.write("timestamp,value\n")
    t0 = 1400000000 - 1400000000 % 300
    for i in range(4 * 288):
        if 500 <= i < 503:
            continue  # a gap of three steps
        v = 100 + 30 * math.sin(2 * math.pi * i / 288) + random.gauss(0, 3)
        if i == 1000:
            v += 80
        f.write("%d,%.3f\n" % (t0 + 300 * i, v))
        if i == 700:
            f.write("%d,%.3f\n" % (t0 + 300 * i, v))  # a duplicate row
PY
A=("$TIDE_BIN/tidectl" anomaly --data "$W/s.csv")
"${A[@]}" --format nab > "$W/nab.csv" || fail "--format nab"
/usr/bin/python3 - "$W/s.csv" "$W/nab.csv" <<'PY' || fail "NAB format"
import csv, sys
src = list(csv.reader(open(sys.argv[1])))
out = list(csv.reader(open(sys.argv[2])))
assert out[0] == ["timestamp", "value", "anomaly_score", "anomaly"], out[0]
assert len(out) == len(src), (len(out), len(src))
for a, b in zip(src[1:], out[1:]):
    assert a[0] == b[0] and float(a[1]) == float(b[1]), (a, b)
    assert 0 <= float(b[2]) <= 1 and b[3] in ("0", "1"), b
flag = [int(r[0]) for r in out[1:] if r[3] == "1"]
t0 = int(src[1][0])
assert t0 + 300 * 1000 in flag, flag
assert len(flag) <= 3, flag
PY
"${A[@]}" --json > "$W/a.json" || fail "--json"
/usr/bin/python3 - "$W/a.json" <<'PY' || fail "JSON keys"
import json, sys
d = json.load(open(sys.argv[1]))
for k in ("data", "rows", "step", "threshold", "learn_seconds", "refractory_seconds", "flagged", "anomalies"):
    assert k in d, k
assert d["step"] == 300 and d["rows"] == 4 * 288 - 3 + 1 and d["threshold"] == 0.4, d
assert d["flagged"] == len(d["anomalies"]) >= 1
a = d["anomalies"][0]
assert set(a) >= {"timestamp", "row", "value", "score"}, a
PY
"${A[@]}" | grep >/dev/null 'anomal' || fail "table"

expect2() { # expect2 WHAT CMD...: exit status 2 and a message on stderr
    local what=$1; shift
    set +e; "$@" > "$W/o" 2> "$W/e"; local rc=$?; set -e
    [ $rc -eq 2 ] || fail "$what: exit $rc, want 2 ($(cat "$W/e"))"
    [ -s "$W/e" ] || fail "$what: no message"
}
expect2 "no data" "$TIDE_BIN/tidectl" anomaly
expect2 "bad format" "${A[@]}" --format csv
expect2 "bad threshold" "${A[@]}" --threshold 2
expect2 "nab and json" "${A[@]}" --format nab --json
expect2 "missing file" "$TIDE_BIN/tidectl" anomaly --data "$W/none.csv"
printf 'timestamp,value\n300,2\n600,x\n' > "$W/bad.csv"
expect2 "bad csv" "$TIDE_BIN/tidectl" anomaly --data "$W/bad.csv"
grep -q 'line 3' "$W/e" || fail "CSV error does not name the line: $(cat "$W/e")"
echo "anomaly_cli: ok"
