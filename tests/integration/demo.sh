#!/usr/bin/env bash
# demo: `make demo` (scripts/demo.sh), the README's main job, runs end to end and shows what it
# promises: both agents reporting, the sampled batch job near its 0.25 CPU quota, a workload
# decision, a drain under traffic with no failed request, a frozen standby replica that uses no
# CPU, activation, the backtest and simulation tables, and a clean stop.
# timeout: 150
source "$(dirname "$0")/lib.sh"
out=$(bash "$TIDE_SRC/scripts/demo.sh" "$TIDE_BIN" 2>&1) || { echo "$out"; fail "demo exited non-zero"; }
echo "$out" > "$W/demo.log"
need() { grep -qE "$1" "$W/demo.log" || { cat "$W/demo.log"; fail "demo output lacks: $1"; }; }
need '^demo-node-1 +tide-agent'
need '^demo-node-2 +tide-agent'
need 'answered by tide-agent'
if [ "$(id -u)" = 0 ] && command -v haproxy >/dev/null; then
    need '/batch +cgroup +0\.[0-9]{3}'
    need '^workload/web created'
    need 'target +need [0-9]+ online'
    need 'drain on demo-node-1: ok'
    need 'requests ok, 0 failed'
    need "cgroup.events says 'frozen 1', CPU used in 1 s: 0 us, process alive: yes"
    need 'activate on demo-node-1: ok'
    need 'web2 answers again: web2'
fi
need '^profile +[0-9.]+ '
need '^tide +[0-9.]+ '
need '^hpa +[0-9.]+ '
need '^all stopped cleanly$'
echo "demo: ok"
