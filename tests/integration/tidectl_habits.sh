#!/usr/bin/env bash
# tidectl_habits.sh: the command-line habits an operator expects: --version/version, help
# [COMMAND], every subcommand answering --help with exit 0 without contacting anything (describe
# and delete do not send "--help" as a workload name), backtest's help listing every model of the
# forecaster table, progress on a terminal (a pty from script(1)) and none when piped or with
# --quiet, --json valid UTF-8 for a file name with byte 0xE9, relative times for query, and
# tables whose columns stay aligned with a 60-character workload name.
# timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

T=$TIDE_BIN/tidectl
"$T" --version | grep >/dev/null -x 'tidectl [0-9]*\.[0-9]*\.[0-9]*' || fail "--version"
[ "$("$T" version)" = "$("$T" --version)" ] || fail "version != --version"
"$T" version --json | /usr/bin/python3 -c 'import json,sys; assert json.load(sys.stdin)["version"]' \
    || fail "version --json"
"$T" help | grep >/dev/null '^commands:' || fail "help"
"$T" help describe | grep >/dev/null '^usage: tidectl describe NAME' || fail "help describe"
set +e; "$T" help no-such-command > /dev/null 2> "$W/e"; rc=$?; set -e
[ $rc -eq 2 ] && grep -q "unknown command 'no-such-command'" "$W/e" || fail "help of an unknown command: rc $rc"

# every command listed answers --help (and -h) with rc 0 and its usage on stdout, and talks to
# no control plane: the socket does not exist
cmds=$("$T" help | awk '/^commands:/{on=1; next} on && /^  [a-z]/{print $1}')
[ "$(echo "$cmds" | wc -w)" -ge 15 ] || fail "too few commands listed: $cmds"
for c in $cmds; do
    for h in --help -h; do
        set +e; "$T" --socket "$W/none.sock" $c $h > "$W/o" 2> "$W/e"; rc=$?; set -e
        [ $rc -eq 0 ] || fail "$c $h: rc $rc ($(cat "$W/e"))"
        [ ! -s "$W/e" ] || fail "$c $h wrote to stderr: $(cat "$W/e")"
        grep -q "^usage: tidectl $c" "$W/o" || fail "$c $h: no usage: $(head -2 "$W/o")"
    done
done
"$T" --socket "$W/none.sock" describe web --help | grep >/dev/null '^usage: tidectl describe' || fail "describe NAME --help"

# backtest's help names every model the forecaster table has (read from the source)
models=$(sed -n '/fc_model_names\[\] = {/,/};/p' controlplane/models/forecast.c | grep -o '"[a-z0-9-]*"' | tr -d '"')
[ "$(echo "$models" | wc -w)" -ge 8 ] || fail "could not read fc_model_names: $models"
for m in $models; do
    "$T" help backtest | grep >/dev/null "^models:.* $m\b" || fail "backtest help misses model $m"
done

# a 22-day synthetic series, 10-minute steps (enough for the day-ahead protocol)
/usr/bin/python3 - "$W/traffic.csv" <<'PY'
import math, sys
with open(sys.argv[1], "w") as f:
    f.write("timestamp,value\n")
    t0 = 1700000000 - 1700000000 % 86400
    for i in range(22 * 144):
        t = t0 + i * 600
        f.write("%d,%.3f\n" % (t, 100 + 50 * math.sin(2 * math.pi * (t % 86400) / 86400) + (i % 7)))
PY
BT=("$T" backtest --data "$W/traffic.csv" --task day-ahead --model last,snaive-day)
# piped: no progress at all on stderr, the header and table on stdout
"${BT[@]}" > "$W/o" 2> "$W/e" || fail "backtest: $(cat "$W/e")"
[ ! -s "$W/e" ] || fail "progress when piped: $(cat "$W/e")"
head -1 "$W/o" | grep >/dev/null "^data $W/traffic.csv, task day-ahead" || fail "header: $(head -1 "$W/o")"
# on a terminal (script(1) gives the command a pty): one line per model, with the clock
script -qec "$(printf '%q ' "${BT[@]}") > $W/o2" "$W/tty.log" > /dev/null || fail "backtest on a pty"
grep -q 'backtest: \[1/2\] last done' "$W/tty.log" || fail "no progress on a terminal: $(cat -v "$W/tty.log")"
grep -q 'backtest: \[2/2\] snaive-day done' "$W/tty.log" || fail "no second model line: $(cat -v "$W/tty.log")"
# --quiet on a terminal: nothing
script -qec "$(printf '%q ' "${BT[@]}") --quiet > $W/o3" "$W/tty2.log" > /dev/null || fail "backtest --quiet on a pty"
! grep -q 'backtest:' "$W/tty2.log" || fail "progress despite --quiet: $(cat -v "$W/tty2.log")"
# (the last three columns are wall-clock timings: fit_s 0.000 against 0.001 under load is no change)
cmp -s <(awk '{ NF -= 3; print }' "$W/o2") <(awk '{ NF -= 3; print }' "$W/o3") ||
    fail "--quiet changed the results: $(diff "$W/o2" "$W/o3")"

# --json is valid UTF-8 although the file name holds byte 0xE9 (Latin-1 e-acute)
LAT=$(printf "$W/caf\xe9.csv")
cp "$W/traffic.csv" "$LAT"
"$T" backtest --data "$LAT" --task day-ahead --model last --json > "$W/j" || fail "backtest --json"
/usr/bin/python3 - "$W/j" <<'PY' || fail "--json is not valid UTF-8 JSON"
import json, sys
raw = open(sys.argv[1], "rb").read()
d = json.loads(raw.decode("utf-8", errors="strict"))
assert d["data"].endswith("caf\ufffd.csv"), d["data"]
PY

# relative times and aligned tables against a live control plane
cp_start
LONG=checkout-frontend-with-a-rather-long-name-for-column-tests-x
[ ${#LONG} -eq 60 ] || fail "long name is ${#LONG} characters"
cat > "$W/long.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: $LONG}
spec:
  target: {kind: Deployment, namespace: shop, name: $LONG}
  minReplicas: 1
  maxReplicas: 5
  metrics:
    utilization:
      selector: 'node_cpu_count{node="n1"}'
      target: 60
  providers:
    - {type: static, priority: 0, replicas: 2}
Y
sed "s/$LONG/web/g" "$W/long.yaml" > "$W/short.yaml"
"${CTL[@]}" apply -f "$W/long.yaml" > /dev/null || fail "apply long"
"${CTL[@]}" apply -f "$W/short.yaml" > /dev/null || fail "apply short"
"${CTL[@]}" get workloads > "$W/table"
/usr/bin/python3 - "$W/table" <<'PY' || fail "get workloads columns not aligned: $(cat "$W/table")"
import sys
lines = open(sys.argv[1]).read().splitlines()
assert len(lines) == 3, lines
hdr = lines[0]
for col in ("NAMESPACE", "TARGET", "MODE"):
    at = hdr.index(col)
    for row in lines[1:]:
        assert row[at - 2:at] == "  " and row[at] != " ", (col, row)
for col in ("MIN", "MAX", "STANDBY"):  # right-aligned numbers end under their header
    end = hdr.index(col) + len(col)
    for row in lines[1:]:
        assert row[end - 1] != " " and (end == len(row) or row[end] == " "), (col, row)
PY
for t in -1h now-1h now-90m "$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)" "$(( $(date +%s) - 3600 ))"; do
    "${CTL[@]}" query 'node_cpu_count' --start "$t" --end now > /dev/null || fail "query --start $t"
done
"${CTL[@]}" query 'node_cpu_count' --start -2h --end -1h > /dev/null || fail "query --end -1h"
for bad in -1x yesterday now-; do
    set +e; "${CTL[@]}" query 'node_cpu_count' --start "$bad" > /dev/null 2> "$W/e"; rc=$?; set -e
    [ $rc -eq 2 ] && grep -q -- "--start '$bad'" "$W/e" || fail "bad time $bad: rc $rc $(cat "$W/e")"
done
echo "tidectl_habits: ok"
