#!/usr/bin/env bash
# valgrind_shutdown.sh: the control plane and an agent under valgrind: they connect, exchange
# samples, a command and heartbeats, then SIGTERM: no memory errors, nothing leaked, every
# watcher stopped (clean exit 0). Skipped in the sanitizer run (ASan and valgrind exclude
# each other) and when valgrind is missing.
# timeout: 150
source "$(dirname "$0")/lib.sh"
[ "${TIDE_FLAVOR:-plain}" = sanitized ] && skip "sanitizer build: valgrind does not run ASan binaries"
command -v valgrind >/dev/null || skip "valgrind not installed"

printf 'valgrind-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
VG=(valgrind -q --error-exitcode=99 --leak-check=full --errors-for-leak-kinds=definite,indirect
    --show-leak-kinds=definite,indirect)
spawn cp "${VG[@]}" "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
    --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:$(port) --heartbeat-interval 300ms
CP=$SPAWNED
wait_until 60 test -S "$W/cp.sock" || fail "control plane did not start under valgrind"
spawn agent "${VG[@]}" "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node vg-node \
    --token-file "$W/token" --interval 200ms
AG=$SPAWNED
CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
reporting() {
    "${CTL[@]}" --json agents | /usr/bin/python3 -c 'import json,sys
r=[x for x in json.load(sys.stdin) if x["node"]=="vg-node"]
sys.exit(0 if r and r[0]["samples"]>=5 and r[0]["last_heartbeat"]>0 else 1)'
}
wait_until 90 reporting || fail "agent under valgrind did not report"
"${CTL[@]}" ping vg-node >/dev/null || fail "ping under valgrind"
kill -TERM $AG
set +e; wait $AG; arc=$?; set -e
kill -TERM $CP
set +e; wait $CP; crc=$?; set -e
[ $arc -eq 0 ] || fail "agent exit status $arc under valgrind (99 = memory errors or leaks)"
[ $crc -eq 0 ] || fail "control plane exit status $crc under valgrind (99 = memory errors or leaks)"
grep -q "stopped cleanly" "$W/cp.log" && grep -q "stopped cleanly" "$W/agent.log" \
    || fail "no clean stop logged"
echo "valgrind_shutdown: ok"
