#!/usr/bin/env bash
# systemd_units: the unit files verify cleanly (systemd-analyze prints nothing), and both daemons
# speak Type=notify: READY=1 once serving, WATCHDOG=1 when WatchdogSec asks, STOPPING=1 on SIGTERM.
# timeout: 60
source "$(dirname "$0")/lib.sh"
command -v systemd-analyze >/dev/null || skip "systemd-analyze not installed"

# Documentation=man:... is checked by verify: the source tree's pages, in a man tree
mkdir -p "$W/man/man8" && cp man/*.8 "$W/man/man8/"
for u in tide-controlplane tide-agent; do
    sed "s#/usr/local/bin/$u#$TIDE_BIN/$u#" "systemd/$u.service" > "$W/$u.service"
    out=$(cd "$W" && MANPATH=$W/man systemd-analyze verify "./$u.service" 2>&1) || fail "$u: systemd-analyze failed: $out"
    [ -z "$out" ] || fail "$u: systemd-analyze complained: $out"
    grep -q '^Type=notify' "$W/$u.service" || fail "$u is not Type=notify"
    grep -q '^WatchdogSec=' "$W/$u.service" || fail "$u has no watchdog"
done

# A notify listener that prints every datagram (one message per line group).
cat > "$W/nl.py" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM); s.bind(sys.argv[1])
while True:
    m = s.recv(4096)
    print(m.decode().replace("\n", " "), flush=True)
PY
spawn notify /usr/bin/python3 "$W/nl.py" "$W/notify.sock"
wait_until 10 test -S "$W/notify.sock"

printf 'tide-test-token-0123456789abcdef\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
NOTIFY_SOCKET=$W/notify.sock WATCHDOG_USEC=400000 spawn cp "$TIDE_BIN/tide-controlplane" \
    --listen 127.0.0.1:$P --socket "$W/cp.sock" --token-file "$W/token" --data-dir "$W/data"
CP=$SPAWNED
wait_until 20 grep -q 'READY=1' "$W/notify.log"
wait_until 10 grep -q 'WATCHDOG=1' "$W/notify.log"
NOTIFY_SOCKET=$W/notify.sock spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P \
    --node n1 --token-file "$W/token"
AG=$SPAWNED
count_at_least() { [ "$(grep -c "$1" "$W/notify.log")" -ge "$2" ]; }
wait_until 20 count_at_least 'READY=1' 2
kill -TERM $AG $CP
wait_until 20 count_at_least 'STOPPING=1' 2
grep -v '^WATCHDOG=1$' "$W/notify.log"
