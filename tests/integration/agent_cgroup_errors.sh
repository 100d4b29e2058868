#!/usr/bin/env bash
# agent_cgroup_errors.sh: bad cgroups are skipped with rate-limited log lines, never an error
# storm or a stop, on real cgroups:
#  - unreadable files: the agent runs as nobody and one cgroup's cpuacct.usage is mode 000
#    (EACCES): that metric is skipped and logged, the cgroup's other metrics still come;
#  - a cgroup removed mid-read: the v1 memory twin of a sampled cgroup is removed while the
#    agent holds its files open (reads then fail with ENODEV): logged once, CPU keeps coming;
#  - churn: 150 cgroups made and removed while sampling every 100 ms: picked up and dropped
#    without warnings, and the agent still reports.
# Garbled file contents cannot be produced on a real cgroupfs; tests/unit/cgroup_collect_test.c
# covers them on a fake tree.
# timeout: 120
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

R=/sys/fs/cgroup
[ -w "$R/cpuacct" ] && [ -d "$R/memory" ] || skip "needs writable cgroup v1 cpuacct/memory"
command -v setpriv >/dev/null || skip "needs setpriv"
MEMSELF=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup)
[ "$MEMSELF" = / ] && MEMSELF=
MEM=$R/memory$MEMSELF
T=tide-it-err-$$
for h in "$R/cpuacct" "$MEM"; do cg_make "$h/$T" "$h/$T/a" "$h/$T/b"; done
cg_make "$R/cpuacct/$T/churn"
chmod 000 "$R/cpuacct/$T/b/cpuacct.usage"
# something to measure in a: a short-lived busy loop in it, restarted by the test as needed
spawn busy sh -c "echo \$\$ > $R/cpuacct/$T/a/cgroup.procs; exec sh -c 'while :; do :; done'"

cp_start
cp "$W/token" "$W/agent-token"; chown nobody "$W/agent-token"; chmod 600 "$W/agent-token"
chmod 755 "$W"
spawn agent setpriv --reuid=nobody --regid=nogroup --clear-groups -- "$TIDE_BIN/tide-agent" \
    --controlplane 127.0.0.1:$P --node err-node --token-file "$W/agent-token" --interval 100ms \
    --cgroup-roots /$T --cgroup-prefix memory=self --cgroup-detail-every 1 \
    --cgroup-kubernetes false --cgroup-systemd false

wait_until 30 have /$T/a cpu_usage_cores || fail "no CPU for /$T/a"
wait_until 10 have /$T/b memory_usage_bytes || fail "the unreadable cgroup's other metrics are missing"
have /$T/b cpu_usage_cores && fail "a value for an unreadable cpuacct.usage"
grep -q "cannot open $R/cpuacct/$T/b/cpuacct.usage: Permission denied (skipped)" "$W/agent.log" \
    || fail "no log line for the unreadable file"

# the memory twin of a goes away while its files are open
rmdir "$MEM/$T/a"
wait_until 10 grep -q "$MEM/$T/a/memory.* vanished while being read (skipped)" "$W/agent.log" \
    || fail "no log line for the vanished memory cgroup"
read -r _ ts0 <<< "$(top_value /$T/a cpu_usage_cores)"
newer() { read -r _ ts <<< "$(top_value /$T/a cpu_usage_cores)"; [ "$ts" -gt "$ts0" ]; }
wait_until 10 newer || fail "CPU of /$T/a stopped after its memory twin vanished"

# churn: 150 cgroups come and go while sampling every 100 ms
for i in $(seq 1 150); do mkdir "$R/cpuacct/$T/churn/x$i"; rmdir "$R/cpuacct/$T/churn/x$((i-1))" 2>/dev/null || true; done
rmdir "$R/cpuacct/$T/churn/x150"
read -r _ ts1 <<< "$(top_value /$T/a cpu_usage_cores)"
newer1() { read -r _ ts <<< "$(top_value /$T/a cpu_usage_cores)"; [ "$ts" -gt "$((ts1 + 1000))" ]; }
wait_until 10 newer1 || fail "agent stopped reporting after the churn"
kill -0 "$(pgrep -f "node err-node" | head -1)" || fail "agent died"

# rate limits: the unreadable file is retried, but its line is limited; no storm overall
echo "agent log: $(wc -l < "$W/agent.log") lines, $(grep -c WARN "$W/agent.log") warnings"
# The limit is 5 lines per 10 s per kind (then one "suppressed N" line): checked over every 10 s
# window of the log, so the bound holds however long a loaded machine makes this test run.
most_in_10s() { # most_in_10s PATTERN: the most log lines matching PATTERN within any 10 s
    grep -E "$1" "$W/agent.log" | /usr/bin/python3 -c '
import sys, datetime
t = [datetime.datetime.strptime(l[:23], "%Y-%m-%dT%H:%M:%S.%f").timestamp() for l in sys.stdin]
print(max([sum(1 for u in t if s <= u < s + 10) for s in t] or [0]))'
}
n=$(most_in_10s 'Permission denied')
[ "$n" -le 5 ] || fail "EACCES lines not rate-limited: $n within 10 s"
n=$(most_in_10s ' WARN ')
[ "$n" -le 15 ] || fail "error storm: $n warnings within 10 s"
echo ok
