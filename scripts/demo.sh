#!/usr/bin/env bash
# demo.sh BIN_DIR: the main job, end to end on loopback: starts a control plane and two agents
# in a temporary directory, waits until both report, shows `tidectl agents` and
# `tidectl status`, stops everything cleanly and removes what it made. Exit 0 on success.
set -euo pipefail
BIN=$(cd "${1:-bin}" && pwd)
D=$(mktemp -d /tmp/tide-demo.XXXXXX)
PIDS=()
cleanup() {
    local rc=$?
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill -TERM "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && wait "$p" 2>/dev/null || true; done
    if [ $rc -ne 0 ]; then
        echo "demo failed; last log lines:" >&2
        for f in "$D"/*.log; do [ -f "$f" ] && { echo "== $(basename "$f")" >&2; tail -15 "$f" >&2; }; done
    fi
    rm -rf "$D"
    exit $rc
}
trap cleanup EXIT
trap 'exit 130' INT TERM

free_port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# wait_for SECONDS WHAT CMD...: polls CMD every 100 ms.
wait_for() {
    local secs=$1 what=$2; shift 2
    local end=$(( $(date +%s) + secs ))
    until "$@" >/dev/null 2>&1; do
        [ "$(date +%s)" -lt $end ] || { echo "demo: timed out waiting for $what" >&2; return 1; }
        sleep 0.1
    done
}

head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$D/token"; chmod 600 "$D/token"
AGENT_PORT=$(free_port); HTTP_PORT=$(free_port)
SOCK="$D/controlplane.sock"
CTL=("$BIN/tidectl" --socket "$SOCK")

echo "== starting tide-controlplane on 127.0.0.1:$AGENT_PORT (ops socket $SOCK)"
"$BIN/tide-controlplane" --listen "127.0.0.1:$AGENT_PORT" --socket "$SOCK" --token-file "$D/token" \
    --data-dir "$D/data" --http "127.0.0.1:$HTTP_PORT" > "$D/controlplane.log" 2>&1 &
CP=$!; PIDS+=("$CP")
wait_for 20 "the ops socket" "${CTL[@]}" status

for node in demo-node-1 demo-node-2; do
    echo "== starting tide-agent $node"
    "$BIN/tide-agent" --controlplane "127.0.0.1:$AGENT_PORT" --node "$node" \
        --token-file "$D/token" --interval 500ms > "$D/$node.log" 2>&1 &
    PIDS+=("$!")
done

reporting() { # both agents connected with at least 2 samples each
    "${CTL[@]}" --json agents | /usr/bin/python3 -c '
import json, sys
rows = {r["node"]: r for r in json.load(sys.stdin)}
sys.exit(0 if all(n in rows and rows[n]["connected"] and rows[n]["samples"] >= 2
                  for n in ("demo-node-1", "demo-node-2")) else 1)'
}
wait_for 30 "both agents to report" reporting

echo
echo '$ tidectl agents'
"${CTL[@]}" agents
echo
echo '$ tidectl status'
"${CTL[@]}" status
echo
echo '$ tidectl ping demo-node-1     # a command through the control plane to that agent and back'
"${CTL[@]}" ping demo-node-1
echo

echo "== stopping (SIGTERM)"
for p in "${PIDS[@]}"; do kill -TERM "$p"; done
rc=0
for p in "${PIDS[@]}"; do wait "$p" || rc=$?; done
PIDS=()
[ $rc -eq 0 ] || { echo "demo: a daemon exited with status $rc" >&2; exit 1; }
grep -q "stopped cleanly" "$D/controlplane.log" || { echo "demo: control plane did not stop cleanly" >&2; exit 1; }
echo "== all stopped cleanly"
