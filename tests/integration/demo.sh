#!/usr/bin/env bash
# demo: `make demo` (scripts/demo.sh), the README's main job, runs end to end and shows what it
# promises: both agents reporting, the sampled batch job near its 0.25 CPU quota, a workload
# decision, a drain under traffic with no failed request, a frozen standby replica that uses no
# CPU, activation, the executor loop (workload web as an HAProxyBackend in Auto: standby replicas
# woken and a new one started under wrk load, then drained and frozen, 0 failed requests), the
# backtest and simulation tables, and a clean stop.
# timeout: 150
source "$(dirname "$0")/lib.sh"
out=$(bash "$TIDE_SRC/scripts/demo.sh" "$TIDE_BIN" 2>&1) || { echo "$out"; fail "demo exited non-zero"; }
echo "$out" > "$W/demo.log"
need() { grep -qE "$1" "$W/demo.log" || { cat "$W/demo.log"; fail "demo output lacks: $1"; }; }
need '^demo-node-1 +tide-agent'
need '^demo-node-2 +tide-agent'
need 'answered by tide-agent'
if [ "$(id -u)" = 0 ] && command -v haproxy >/dev/null && command -v socat >/dev/null \
    && [ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ]; then
    need '/batch +cgroup +0\.[0-9]{3}'
    need '^workload/web created'
    need 'target +need [0-9]+ online'
    need 'drain on demo-node-1: ok'
    need 'requests ok, 0 failed'
    need "cgroup.events says 'frozen 1', CPU used in 1 s: 0 us, process alive: yes"
    need 'activate on demo-node-1: ok'
    need 'web2 answers again: web2'
fi
if [ "$(id -u)" = 0 ] && command -v haproxy >/dev/null && command -v wrk >/dev/null \
    && grep -q ' - cgroup2 ' /proc/self/mountinfo; then
    # the loop (part 5)
    need 'action +activate web-[0-9]+: done in [0-9]+ ms'
    need 'action +start web-4: done in [0-9]+ ms'
    need 'action +cutoff web-[0-9]+: done'
    need 'action +standby web-[0-9]+: done'
    need '^wrk: [0-9]+ requests, 0 failed'
    need 'trickle through HAProxy during the scale-down: [0-9]+ requests ok, 0 failed'
    need '^web-[0-9]+: pid [0-9]+, /tide-demo-[0-9]+-r[12]/web-[0-9]+ cgroup.events frozen 1'
    need '^the loop: [1-9][0-9]* standby replica\(s\) woken \(activate: [0-9]+ ms.*\), [1-9][0-9]* new one\(s\) started, [1-9][0-9]* drained and frozen; [0-9]+ requests .*, 0 failed$'
    need '^Replicas: +min 1, max 4; online 1, starting 0, activating 0, cutoff 0, standby 3$'
fi
need '^profile +[0-9.]+ '
need '^tide +[0-9.]+ '
need '^hpa +[0-9.]+ '
need '^all stopped cleanly$'
echo "demo: ok"
