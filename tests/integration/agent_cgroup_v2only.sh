#!/usr/bin/env bash
# agent_cgroup_v2only.sh: on a hybrid host (v1 controllers + the v2 mount at
# /sys/fs/cgroup/unified) a cgroup made in the v2 mount alone is sampled from its v2 files: a
# busy process in /T/busy (v2 only) is reported with the CPU its cpu.stat usage_usec shows over
# the same seconds (within 0.05 cores), kind "cgroup"; /T/both, made in v1 cpuacct and in v2,
# is reported once (read from v1); when /T/busy is removed the agent logs it gone.
# timeout: 90
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

R=/sys/fs/cgroup
U=$R/unified
[ -w "$U" ] && [ -w "$R/cpuacct" ] || skip "needs a hybrid host: writable $U and v1 cpuacct"
grep -q " $U cgroup2 " /proc/self/mounts || skip "$U is not a cgroup2 mount"
T=tide-it-v2only-$$
cg_make "$U/$T" "$U/$T/busy" "$U/$T/both" "$R/cpuacct/$T" "$R/cpuacct/$T/both"
spawn busy sh -c "echo \$\$ > $U/$T/busy/cgroup.procs; exec sh -c 'while :; do :; done'"
BUSY=$SPAWNED
wait_until 10 grep -qx "$BUSY" "$U/$T/busy/cgroup.procs" || fail "busy process not in $U/$T/busy"

cp_start
spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node v2-node --token-file "$W/token" \
    --interval 1s --cgroup-roots /$T --cgroup-detail-every 1 --cgroup-kubernetes false \
    --cgroup-systemd false --log-level debug

top_rows() {
    "${CTL[@]}" top --json | /usr/bin/python3 -c "import json,sys
for r in json.load(sys.stdin)['cgroups']:
    if r['cgroup']=='$1': print(r.get('$2', ''), r['ts'], r.get('kind', ''))"
}
top_value() { top_rows "$1" "$2" | head -1; }
have() { [ -n "$(top_value "$1" "$2" | awk '$1!=""')" ]; }
wait_until 30 have /$T/busy cpu_usage_cores || fail "no CPU value for the v2-only cgroup /$T/busy"
grep -q "sampling /$T/busy (cgroup, v2 mount only)" "$W/agent.log" || fail "agent did not say /$T/busy is v2-only"

# five consecutive readings against the truth from usage_usec read by the test over the
# same time
usage_us() { awk '$1=="usage_usec"{print $2}' "$U/$T/busy/cpu.stat"; }
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }
read -r _ last_ts _ <<< "$(top_value /$T/busy cpu_usage_cores)"
newer() { read -r _ ts _ <<< "$(top_value /$T/busy cpu_usage_cores)"; [ "$ts" -gt "$last_ts" ]; }
wait_until 10 newer || fail "no new CPU reading"
read -r _ last_ts _ <<< "$(top_value /$T/busy cpu_usage_cores)"
u0=$(usage_us); t0=$(now_ms)
readings=()
deadline=$(( $(date +%s) + 30 ))
while [ ${#readings[@]} -lt 5 ]; do
    [ "$(date +%s)" -lt $deadline ] || fail "only ${#readings[@]} CPU readings in 30 s"
    read -r v ts _ <<< "$(top_value /$T/busy cpu_usage_cores)"
    if [ "${ts:-0}" != "$last_ts" ]; then readings+=("$v"); last_ts=$ts; fi
    sleep 0.1
done
u1=$(usage_us); t1=$(now_ms)
/usr/bin/python3 - "$u0" "$u1" "$t0" "$t1" "${readings[@]}" <<'PY' || fail "CPU readings (see above)"
import sys
u0, u1, t0, t1 = map(float, sys.argv[1:5])
r = [float(x) for x in sys.argv[5:]]
truth = (u1 - u0) / 1e3 / (t1 - t0)
mean = sum(r) / len(r)
print(f"v2-only cgroup cpu readings {' '.join('%.3f' % x for x in r)}: mean {mean:.3f}; truth "
      f"from usage_usec over the same {(t1-t0)/1000:.1f} s: {truth:.3f}")
sys.exit(0 if truth > 0.05 and abs(mean - truth) <= 0.05 else 1)
PY
kind=$(top_value /$T/busy cpu_usage_cores | awk '{print $3}')
[ -z "$kind" ] || [ "$kind" = cgroup ] || fail "kind of /$T/busy is '$kind'"

# /T/both has a v1 twin: one row, read from v1 (cpuacct), never doubled
wait_until 15 have /$T/both cpu_usage_cores || fail "no CPU value for /$T/both"
n=$(top_rows /$T/both cpu_usage_cores | wc -l)
[ "$n" -eq 1 ] || fail "/$T/both reported $n times"
grep -q "sampling /$T/both (cgroup, v2 mount only)" "$W/agent.log" && fail "/$T/both was sampled from v2 although it has a v1 twin"

# removal: the busy process ends, its v2 cgroup goes, the agent notices within a few rounds
kill "$BUSY"; wait "$BUSY" 2>/dev/null || true
rmdir "$U/$T/busy"
wait_until 10 grep -q "cgroup /$T/busy is gone\|/$T/busy vanished" "$W/agent.log" || fail "removal of /$T/busy not noticed"
if grep -q "ERROR" "$W/agent.log"; then grep ERROR "$W/agent.log" | head -5; fail "agent logged errors"; fi
echo "v2-only cgroup sampled from its v2 files; the v1-twinned one once"
