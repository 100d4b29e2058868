# _controlplane.sh: tide-controlplane started the way the bash integration tests start it
# (source it after lib.sh).

# cp_start [ARGS...]: writes the agent token to $W/token (mode 0600) and starts
# tide-controlplane with agents on 127.0.0.1:$P, ops socket $W/cp.sock, store $W/data, HTTP on
# a loopback port the kernel picks, then ARGS (log $W/cp.log, pid in $SPAWNED); returns once
# the ops socket exists. Sets P and CTL (tidectl on that socket, as an array).
cp_start() {
    printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"
    P=$(port)
    CTL=("$TIDE_BIN/tidectl" --socket "$W/cp.sock")
    spawn cp "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$W/cp.sock" \
        --token-file "$W/token" --data-dir "$W/data" --http 127.0.0.1:0 "$@"
    wait_until 20 test -S "$W/cp.sock"
}

# top_value CGROUP METRIC: the latest value of METRIC for CGROUP in `tidectl top --json` and
# its timestamp (nothing when it is not there yet); have CGROUP METRIC: whether there is one.
top_value() {
    "${CTL[@]}" top --json | /usr/bin/python3 -c "import json,sys
for r in json.load(sys.stdin)['cgroups']:
    if r['cgroup']=='$1' and '$2' in r: print(r['$2'], r['ts'])"
}
have() { [ -n "$(top_value "$1" "$2")" ]; }
