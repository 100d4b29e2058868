# lib.sh: helpers for bash integration tests (source it). Gives a private work dir $W that
# is removed on exit, together with every process started through `spawn` and every cgroup
# made through `cg_make`, also when the test fails or is killed by its timeout.
set -euo pipefail
W=$(mktemp -d /tmp/tide-it.XXXXXX)
_PIDS=()
_CGROUPS=()
: "${TIDE_BIN:=$(pwd)/bin}"

_cleanup() {
    local rc=$?
    local p c
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${_PIDS[@]:-}"; do [ -n "$p" ] && { timeout 5 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null; } || true; done
    for c in "${_CGROUPS[@]:-}"; do
        [ -n "$c" ] && [ -d "$c" ] || continue
        [ -f "$c/freezer.state" ] && echo THAWED > "$c/freezer.state" 2>/dev/null
        [ -f "$c/cgroup.freeze" ] && echo 0 > "$c/cgroup.freeze" 2>/dev/null
        [ -f "$c/cgroup.kill" ] && echo 1 > "$c/cgroup.kill" 2>/dev/null
        for p in $(cat "$c/cgroup.procs" 2>/dev/null); do kill -9 "$p" 2>/dev/null || true; done
        rmdir "$c" 2>/dev/null || { sleep 0.2; rmdir "$c" 2>/dev/null; } || true
    done
    if [ $rc -ne 0 ] && [ $rc -ne 77 ]; then
        echo "--- logs in $W ---"; for f in "$W"/*.log; do [ -f "$f" ] && { echo "== $f"; tail -30 "$f"; }; done
    fi
    rm -rf "$W"
    exit $rc
}
trap _cleanup EXIT
trap 'exit 143' TERM INT

# port: prints a free loopback TCP port
# (claimed in /tmp/tide-test-ports, so concurrent tests never get the same one; see _freeport.py)
port() { /usr/bin/python3 "$(dirname "${BASH_SOURCE[0]}")/_freeport.py"; }

# spawn LOGNAME CMD...: starts CMD in the background (stdout+stderr to $W/LOGNAME.log),
# records it for cleanup and sets $SPAWNED to its pid.
spawn() {
    local log=$1; shift
    "$@" > "$W/$log.log" 2>&1 &
    SPAWNED=$!
    _PIDS+=("$SPAWNED")
}

# wait_until SECONDS CMD...: polls CMD every 50 ms until it succeeds; fails the test on timeout.
wait_until() {
    local limit=$1; shift
    local deadline=$(( $(date +%s%N) / 1000000 + limit * 1000 ))
    until "$@" >/dev/null 2>&1; do
        if [ $(( $(date +%s%N) / 1000000 )) -gt $deadline ]; then
            echo "timed out after ${limit}s waiting for: $*" >&2; return 1
        fi
        sleep 0.05
    done
}

# cg_make PATH...: mkdir the cgroup directories and register them for removal.
cg_make() { local c; for c in "$@"; do mkdir -p "$c"; _CGROUPS=("$c" "${_CGROUPS[@]}"); done; }

fail() { echo "FAIL: $*" >&2; exit 1; }
skip() { echo "skipped: $*"; exit 77; }
