#!/usr/bin/env bash
# config_errors.sh: bad configuration makes both daemons exit with status 2 before they bind
# anything, with a message naming the key (and the file line); --help lists the keys.
# timeout: 60
source "$(dirname "$0")/lib.sh"

printf 'config-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
P=$(port)
CP=("$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" --token-file "$W/token"
    --data-dir "$W/data" --http 127.0.0.1:$(port))
AG=("$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n1 --token-file "$W/token")

expect2() { # expect2 "MESSAGE" CMD...: exit status 2 and exactly that message on stderr
    local want=$1; shift
    set +e; out=$("$@" 2>&1 >/dev/null); rc=$?; set -e
    [ $rc -eq 2 ] || fail "exit $rc (want 2) for: $* -> $out"
    [ "$out" = "$want" ] || fail "message for: $*
  got:  $out
  want: $want"
}
not_bound() { # nothing listens on the agent port and no socket was made
    ! (exec 3<>/dev/tcp/127.0.0.1/$P) 2>/dev/null || fail "port $P was bound"
    [ ! -e "$W/cp.sock" ] || fail "ops socket was created"
}

printf 'listen = 127.0.0.1:%s\n# fine so far\nlisten_backlog = 5\n' $P > "$W/unknown.conf"
expect2 "tide-controlplane: $W/unknown.conf:3: unknown key 'listen_backlog'" "${CP[@]}" --config "$W/unknown.conf"
not_bound
printf '\nidle_timeout = 10 minutes\n' > "$W/badval.conf"
expect2 "tide-controlplane: $W/badval.conf:2: key 'idle_timeout': '10 minutes' is not a duration (e.g. 500ms, 5s, 2m, 1h)" \
    "${CP[@]}" --config "$W/badval.conf"
not_bound
expect2 "tide-controlplane: --max-agents: key 'max_agents': 0 is out of range [1, 65536]" "${CP[@]}" --max-agents 0
expect2 "tide-controlplane: unknown option '--lisen' (see --help)" "${CP[@]}" --lisen 127.0.0.1:1
expect2 "tide-controlplane: --listen: key 'listen': 'localhost' is not ADDR:PORT (e.g. 127.0.0.1:7470)" \
    "${CP[@]}" --listen localhost
chmod 644 "$W/token"
expect2 "tide-controlplane: token file $W/token is readable by others (mode 0644): chmod o-r it" "${CP[@]}"
not_bound
chmod 600 "$W/token"
expect2 "tide-controlplane: $W/missing.conf: No such file or directory" "${CP[@]}" --config "$W/missing.conf"

printf 'interval = 50ms\n' > "$W/agent.conf"
expect2 "tide-agent: $W/agent.conf:1: key 'interval': 50 is out of range [100, 3600000] ms" \
    "${AG[@]}" --config "$W/agent.conf"
printf 'node = n1\ncolour = blue\n' > "$W/agent2.conf"
expect2 "tide-agent: $W/agent2.conf:2: unknown key 'colour'" "${AG[@]}" --config "$W/agent2.conf"
expect2 "tide-agent: key 'node': 'bad node!' is not 1-63 characters of [A-Za-z0-9._-]" "${AG[@]}" --node 'bad node!'
expect2 "tide-agent: token file $W/nope: No such file or directory" "${AG[@]}" --token-file "$W/nope"

# flags override the file; the file alone works too
printf 'listen = 127.0.0.1:1\nsocket = %s\n' "$W/cp.sock" > "$W/good.conf"
spawn cp "${CP[@]}" --config "$W/good.conf" --listen 127.0.0.1:$P
wait_until 20 test -S "$W/cp.sock" || fail "control plane with a config file did not start"
"$TIDE_BIN/tidectl" --socket "$W/cp.sock" --json status | grep >/dev/null "\"listen\":.*\"127.0.0.1:$P\"" \
    || fail "the --listen flag did not override the file"

# SIGHUP: reloadable keys apply now, the others are reported, a bad file is refused
CPPID=$SPAWNED
printf 'listen = 127.0.0.1:1\nsocket = %s\nlog_level = debug\nidle_timeout = 9s\n' "$W/cp.sock" > "$W/good.conf"
kill -HUP $CPPID
wait_until 10 grep -q "reload: log_level changed" "$W/cp.log" || fail "log_level not reloaded"
grep -q "reload: idle_timeout changed in the configuration; it takes effect after a restart" "$W/cp.log" \
    || fail "non-reloadable change not reported"
printf 'log_level = chatty\n' > "$W/good.conf"
kill -HUP $CPPID
wait_until 10 grep -q "reload: $W/good.conf:1: key 'log_level': 'chatty' is not one of debug, info, warn, error, off (the running configuration is kept)" "$W/cp.log" \
    || fail "bad reload not refused"
"$TIDE_BIN/tidectl" --socket "$W/cp.sock" status >/dev/null || fail "control plane gone after a bad reload"

# the ops socket is mode 0660; a live one is not taken over, a stale one is replaced
[ "$(stat -c %a "$W/cp.sock")" = 660 ] || fail "ops socket mode $(stat -c %a "$W/cp.sock")"
set +e
out=$("$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$(port) --socket "$W/cp.sock" \
    --token-file "$W/token" --data-dir "$W/data2" --http 127.0.0.1:$(port) 2>&1); rc=$?
set -e
[ $rc -eq 1 ] || fail "second control plane on a live socket: exit $rc"
echo "$out" | grep >/dev/null "ops socket $W/cp.sock: another control plane is serving it" \
    || fail "second control plane message: $out"
/usr/bin/python3 -c "import socket,sys; s=socket.socket(socket.AF_UNIX); s.bind(sys.argv[1])" "$W/stale.sock"
spawn cp2 "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$(port) --socket "$W/stale.sock" \
    --token-file "$W/token" --data-dir "$W/data3" --http 127.0.0.1:$(port)
wait_until 20 "$TIDE_BIN/tidectl" --socket "$W/stale.sock" status || fail "stale socket not replaced"

# captured first: grep -q closing the pipe early would fail the pipeline under pipefail
cp_help=$("$TIDE_BIN/tide-controlplane" --help)
[[ $cp_help == *handshake_timeout* ]] || fail "--help lacks keys"
ag_help=$("$TIDE_BIN/tide-agent" --help)
[[ $ag_help == *queue_max_bytes* ]] || fail "agent --help lacks keys"
echo "config_errors: ok"
