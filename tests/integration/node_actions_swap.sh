#!/usr/bin/env bash
# timeout: 90
# node_actions_swap: standby on a v1 memory cgroup of a host WITH swap lowers
# memory.limit_in_bytes step by step (anonymous memory goes to swap) and activate restores the
# original limit. The test makes the swap itself: a 256 MB swapfile in its work dir (swapon),
# removed again on every exit (swapoff first). A process touches 100 MB in its own cgroups (v1
# memory with an explicit 400 MB limit, v2 unified for the freeze) and then ticks a counter
# file. tidectl node-action -> tide-controlplane -> tide-agent. Asserts: standby reports method
# memory.limit_in_bytes and reclaimed > 50 MB (the cgroup's usage agrees, its swap usage grew),
# the original 400 MB limit is recorded and kept by a repeated standby; activate restores it,
# the process runs again (counter moves) with its memory intact; a repeated activate is
# harmless. Skips (77) when swapon is refused here.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_node_actions.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups and swapon"
command -v swapon >/dev/null && command -v mkswap >/dev/null || skip "swapon/mkswap not installed"
[ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable cgroup v2 (unified) mount"
MEMREL=$(awk -F: '$2=="memory"{print $3}' /proc/self/cgroup); [ "$MEMREL" = / ] && MEMREL=
M0=/sys/fs/cgroup/memory$MEMREL
[ -w "$M0" ] || skip "no writable v1 memory cgroup"
grep -q '^SwapTotal: *0 kB' /proc/meminfo || skip "the host already has swap (this test makes its own)"

TAG=tide-it-swap-$$
MEM=$M0/$TAG; UNI=/sys/fs/cgroup/unified/$TAG
SWAP=$W/swapfile

swap_cleanup() {
    local rc=$?
    # the process first (a frozen one only dies after a thaw), the limit back, then the swap
    [ -f "$UNI/cgroup.freeze" ] && echo 0 > "$UNI/cgroup.freeze" 2>/dev/null
    [ -f "$UNI/cgroup.kill" ] && echo 1 > "$UNI/cgroup.kill" 2>/dev/null
    [ -f "$MEM/memory.limit_in_bytes" ] && echo -1 > "$MEM/memory.limit_in_bytes" 2>/dev/null
    # The swapfile is the machine's only swap while it is on, so another test's standby (a
    # process frozen under a lowered limit) can have pages in it too; swapoff cannot bring those
    # back into their cgroup (ENOMEM) until that test restores the limit or ends: retry up to 50 s.
    local tries=0
    while grep -q "^$SWAP " /proc/swaps && ! swapoff "$SWAP" 2> "$W/swapoff.err" && [ $tries -lt 50 ]; do
        tries=$((tries + 1)); sleep 1
    done
    if grep -q "^$SWAP " /proc/swaps; then
        echo "WARNING: swapoff $SWAP failed for 50 s ($(cat "$W/swapoff.err")): left on" >&2
        rc=1
    else
        [ $tries = 0 ] || echo "swapoff: other processes' pages held it for ${tries} s"
        rm -f "$SWAP"
    fi
    (exit $rc); _cleanup
}
trap swap_cleanup EXIT

fallocate -l 256M "$SWAP" 2>/dev/null || dd if=/dev/zero of="$SWAP" bs=1M count=256 status=none
chmod 600 "$SWAP"
mkswap "$SWAP" > /dev/null
swapon "$SWAP" 2> "$W/swapon.err" || skip "swapon refused here: $(cat "$W/swapon.err")"
grep -q '^SwapTotal: *0 kB' /proc/meminfo && skip "swapon succeeded but SwapTotal is still 0"

cg_make "$MEM" "$UNI"
echo $((400 << 20)) > "$MEM/memory.limit_in_bytes"
echo 60 > "$MEM/memory.swappiness"   # the kernel default; a parent may have set another
cat > "$W/hog.py" <<'PY'
import sys, time
buf = bytearray(100 << 20)
for i in range(0, len(buf), 4096): buf[i] = (i >> 12) & 0xff
open(sys.argv[1] + ".ready", "w").close()
n = 0
while True:
    n += 1
    with open(sys.argv[1], "w") as f: f.write(str(n))
    time.sleep(0.05)
    if n % 20 == 0 and any(buf[i] != (i >> 12) & 0xff for i in range(0, len(buf), 4096)):
        sys.exit("memory corrupted")
PY
spawn hog sh -c "echo \$\$ > $MEM/cgroup.procs; echo \$\$ > $UNI/cgroup.procs; exec /usr/bin/python3 $W/hog.py $W/tick"
HOG=$SPAWNED
wait_until 20 test -f "$W/tick.ready"

na_tide
CG=/$TAG   # the replica's path; its v1 memory directory is found under the nested $MEMREL

u0=$(cat "$MEM/memory.usage_in_bytes"); sw0=$(( $(cat "$MEM/memory.memsw.usage_in_bytes" 2>/dev/null || echo "$u0") - u0 ))
[ "$u0" -gt $((90 << 20)) ] || fail "the process holds only $u0 bytes: not a real test"
out=$(act standby "$CG" --timeout-ms 30000) || fail "standby failed: $out"
echo "standby: $out"
[ "$(echo "$out" | jget 'd["reclaim_method"]')" = memory.limit_in_bytes ] || fail "not the lowered-limit method"
[ "$(echo "$out" | jget 'd["swap"]')" = True ] || fail "swap not seen"
rec=$(echo "$out" | jget 'int(d["reclaimed_bytes"])')
[ "$rec" -gt $((50 << 20)) ] || fail "reclaimed only $rec bytes"
[ "$(echo "$out" | jget 'int(d["memory_limit_original_bytes"])')" = $((400 << 20)) ] || fail "original limit not recorded"
low=$(cat "$MEM/memory.limit_in_bytes")
[ "$low" -lt $((400 << 20)) ] && [ "$low" = "$(echo "$out" | jget 'int(d["memory_limit_bytes"])')" ] || fail "limit not lowered as reported: $low"
u1=$(cat "$MEM/memory.usage_in_bytes")
[ $((u0 - u1)) -gt $((50 << 20)) ] || fail "usage $u0 -> $u1: the cgroup does not show the reclaim"
if [ -f "$MEM/memory.memsw.usage_in_bytes" ]; then
    sw1=$(( $(cat "$MEM/memory.memsw.usage_in_bytes") - u1 ))
    [ "$sw1" -gt $((sw0 + (40 << 20))) ] || fail "swap use of the cgroup did not grow ($sw0 -> $sw1)"
fi
grep -qx 'frozen 1' "$UNI/cgroup.events" || fail "not frozen"
kill -0 "$HOG" || fail "the process died in standby"
steps=$(echo "$out" | jget 'd["memory_limit_steps"]')
out=$(act standby "$CG") || fail "repeated standby failed: $out"
[ "$(echo "$out" | jget 'd["already"]')" = True ] || fail "repeated standby not idempotent"
[ "$(echo "$out" | jget 'int(d.get("memory_limit_original_bytes", 0))')" = $((400 << 20)) ] ||
    fail "repeated standby lost the original limit: $out"
echo "standby: reclaimed $((rec >> 20)) MB into swap, limit 400 MB -> $((low >> 20)) MB in $steps steps, repeat idempotent"

t0=$(cat "$W/tick")
out=$(act activate "$CG") || fail "activate failed: $out"
echo "activate: $out"
[ "$(cat "$MEM/memory.limit_in_bytes")" = $((400 << 20)) ] || fail "limit not restored: $(cat "$MEM/memory.limit_in_bytes")"
[ "$(echo "$out" | jget 'd["memory_limit_restored"]')" = True ] || fail "activate did not report the restore"
ticks() { [ "$(cat "$W/tick")" -gt $((t0 + 5)) ]; }
wait_until 15 ticks || fail "the process does not run after activate"
kill -0 "$HOG" || fail "the process died after activate"
out=$(act activate "$CG") || fail "repeated activate failed: $out"
[ "$(echo "$out" | jget 'd["memory_limit_restored"]')" = False ] || fail "repeated activate restored again"
[ "$(cat "$MEM/memory.limit_in_bytes")" = $((400 << 20)) ] || fail "repeated activate changed the limit"
echo "activate: limit back to 400 MB, process running with its memory intact"
echo PASS
