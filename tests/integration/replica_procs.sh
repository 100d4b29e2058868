#!/usr/bin/env bash
# timeout: 120
# replica_procs: the agent's replica processes, driven as an operator would (tidectl node-action
# -> tide-controlplane -> COMMAND -> tide-agent): replica-start of tests/fixtures/replicas
# replica.py with a 300 ms start-up behind an HTTP readiness check, CPU quota and memory limit,
# in a cgroup and a session of its own; replicas lists it; standby freezes it; kill -9 of the
# agent leaves it running and frozen, the restarted agent adopts it (state, frozen) and activate
# thaws it; kill -9 of the agent in the middle of a start: the replica runs on, the new agent
# adopts it and a repeated replica-start checks its readiness instead of starting it twice;
# replica-stop removes process, cgroups and record; a program that does not exist, a
# replica that never becomes ready and one that exits at once fail with clear errors and leave
# nothing behind; one that ignores SIGTERM is killed after its grace.
source "$(dirname "$0")/lib.sh"
source "$(dirname "$0")/_controlplane.sh"

[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
[ -w /sys/fs/cgroup/freezer ] && [ -w /sys/fs/cgroup/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"

R=/sys/fs/cgroup
PARENT=/tide-it-rp-$$
HIERS="unified freezer memory cpu cpuacct pids systemd"
# cleanup: the replica cgroups (children first, then the parent) in every hierarchy
cg_track() { local h; for h in $HIERS; do [ -d "$R/$h" ] && _CGROUPS=("$R/$h$PARENT/$1" "${_CGROUPS[@]}"); done; }
for h in $HIERS; do [ -d "$R/$h" ] && _CGROUPS=("$R/$h$PARENT" "${_CGROUPS[@]}"); done
for id in r1 slow bad never quits stubborn; do cg_track "$id"; done
# replica processes are in no spawned process group: kill what a failed run leaves
trap '_rc=$?; set +e; for id in r1 slow never quits stubborn; do for p in $(cat $R/unified$PARENT/$id/cgroup.procs 2>/dev/null); do kill -9 $p; done; done 2>/dev/null; (exit $_rc); _cleanup' EXIT

FIX=$TIDE_SRC/tests/fixtures/replicas/replica.py
[ -n "${TIDE_SRC:-}" ] || FIX=$(cd "$(dirname "$0")/../.." && pwd)/tests/fixtures/replicas/replica.py
RDIR=$W/replicas
cp_start
# the first agent runs at nice -1, raised as the shipped unit's Nice=-5 raises it: its replicas
# must not inherit that (they run at nice 0); the later ones at the test's own nice
AGENT_NICE=$((-1 - $(nice)))
agent() {
    spawn agent ${AGENT_NICE:+nice -n "$AGENT_NICE"} "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node n1 --token-file "$W/token" \
        --replica-dir "$RDIR" --replica-cgroup "$PARENT"
    AGENT=$SPAWNED
    wait_until 20 agent_up
}
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }
agent
AGENT_NICE=
act() { "${CTL[@]}" --json node-action n1 "$@" 2>&1; }
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
# gone PID: the process exited (a zombie waiting for a parent that does not reap counts: after the
# agent's kill -9 the replica's parent is whatever reaper the host has)
gone() { [ ! -e "/proc/$1" ] || [ "$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null)" = Z ]; }
rep() { act replicas - | jget "[r for r in d['replicas'] if r['id']=='$1'][0]['$2']"; }

# ---- start with readiness, limits, placeholders -----------------------------------------------
P1=$(port)
args=$(cat <<JSON
{"id": "r1", "port": $P1, "command": ["python3", "$FIX", "{port}", "--name", "{id}@{node}", "--startup-ms", "300"],
 "env": {"GREETING": "hello {id}"}, "cwd": "$W", "cpu_quota": 0.5, "memory_bytes": 268435456,
 "readiness": {"path": "/healthz", "timeout_ms": 10000, "interval_ms": 20}, "stop_signal": "TERM", "grace_ms": 3000,
 "labels": {"workload": "web"}}
JSON
)
out=$(act replica-start - --args "$args") || fail "replica-start failed: $out"
echo "start: $out"
PID=$(echo "$out" | jget 'd["pid"]')
startup=$(echo "$out" | jget 'd["startup_ms"]')
python3 -c "import sys; sys.exit(0 if $startup >= 300 else 1)" || fail "ready before its 300 ms start-up: $startup ms"
[ "$(curl -sf "http://127.0.0.1:$P1/")" = "r1@n1" ] || fail "placeholders not expanded or replica not serving"
grep -qx "$PID" "$R/unified$PARENT/r1/cgroup.procs" || fail "process not in its v2 cgroup"
grep -qx "$PID" "$R/freezer$PARENT/r1/cgroup.procs" || fail "process not in its freezer cgroup"
grep -qx "$PID" "$R/cpu$PARENT/r1/cgroup.procs" || fail "process not in its cpu cgroup (entered after the exec)"
grep -q "memory:$PARENT/r1\$" "/proc/$PID/cgroup" || fail "process not in its memory cgroup"
grep -q "name=systemd:$PARENT/r1\$" "/proc/$PID/cgroup" || fail "process still in the agent's systemd cgroup"
[ "$(cat "$R/cpu$PARENT/r1/cpu.cfs_quota_us")" = 50000 ] || fail "cpu quota not applied"
[ "$(cat "$R/memory$PARENT/r1/memory.limit_in_bytes")" = 268435456 ] || fail "memory limit not applied"
[ "$(ps -o sid= -p "$PID" | tr -d ' ')" = "$PID" ] || fail "replica not in a session of its own"
[ "$(ps -o ni= -p "$AGENT" | tr -d ' ')" = -1 ] || fail "agent not at nice -1: $(ps -o ni= -p "$AGENT")"
[ "$(ps -o ni= -p "$PID" | tr -d ' ')" = 0 ] || fail "replica inherited the agent's raised priority: nice $(ps -o ni= -p "$PID")"
for k in child_ms cgroups_ms prepare_ms execve_ms after_exec_ms; do
    [ -n "$(echo "$out" | jget "d['exec_steps']['$k']")" ] || fail "no exec_steps.$k in $out"
done
grep -qx "GREETING=hello r1" < <(tr '\0' '\n' < "/proc/$PID/environ") || fail "env not passed"
[ "$(readlink "/proc/$PID/cwd")" = "$W" ] || fail "cwd not applied"
out=$(act replica-start - --args "$args") || fail "repeated start failed: $out"
[ "$(echo "$out" | jget 'd["already"]')" = True ] || fail "repeated start not idempotent"
[ "$(rep r1 state)" = ready ] && [ "$(rep r1 frozen)" = False ] || fail "replicas: $(act replicas -)"
echo "start: ready after ${startup} ms start-up, limits, cgroups, session, env, cwd, nice 0 as asked"

# ---- standby, kill -9 of the agent, adoption, activate ----------------------------------------
out=$(act standby "$PARENT/r1") || fail "standby failed: $out"
[ "$(rep r1 frozen)" = True ] || fail "not frozen after standby"
kill -9 "$AGENT"; wait "$AGENT" 2>/dev/null || true
kill -0 "$PID" || fail "replica died with the agent"
grep -qx 'frozen 1' "$R/unified$PARENT/r1/cgroup.events" || fail "replica thawed by the agent's death"
agent
[ "$(rep r1 adopted)" = True ] || fail "not adopted: $(act replicas -)"
[ "$(rep r1 state)" = ready ] && [ "$(rep r1 frozen)" = True ] && [ "$(rep r1 pid)" = "$PID" ] || fail "adopted wrong: $(act replicas -)"
out=$(act activate "$PARENT/r1") || fail "activate after adoption failed: $out"
[ "$(curl -sf --max-time 2 "http://127.0.0.1:$P1/")" = "r1@n1" ] || fail "not serving after activate"
[ "$(rep r1 frozen)" = False ] || fail "still frozen after activate"
echo "agent kill -9: replica kept running and frozen, adopted (pid $PID), activated"

# ---- kill -9 of the agent in the middle of a start: adopted, not started twice ---------------
P4=$(port)
slow_args="{\"id\": \"slow\", \"port\": $P4, \"command\": [\"python3\", \"$FIX\", \"{port}\", \"--name\", \"slow\", \"--startup-ms\", \"4000\"], \"readiness\": {\"path\": \"/healthz\", \"timeout_ms\": 30000, \"interval_ms\": 20}}"
"${CTL[@]}" --json node-action n1 replica-start - --args "$slow_args" > "$W/slow1.out" 2>&1 &
SLOW_CALL=$!
slow_listening() { curl -s --max-time 1 "http://127.0.0.1:$P4/healthz" | grep >/dev/null starting; }
wait_until 30 slow_listening   # exec done, the replica is in its start-up
SLOW_PID=$(cat "$R/unified$PARENT/slow/cgroup.procs" | head -1)
kill -9 "$AGENT"; wait "$AGENT" 2>/dev/null || true
wait "$SLOW_CALL" && fail "the start the agent died in reported success"
kill -0 "$SLOW_PID" || fail "replica died with the agent mid-start"
agent
[ "$(rep slow adopted)" = True ] && [ "$(rep slow state)" = running ] || fail "mid-start replica not adopted as running: $(act replicas -)"
out=$(act replica-start - --args "$slow_args") || fail "repeated start after adoption failed: $out"
[ "$(echo "$out" | jget 'd["pid"]')" = "$SLOW_PID" ] && [ "$(echo "$out" | jget 'd["adopted"]')" = True ] || fail "started twice or not adopted: $out"
[ "$(rep slow state)" = ready ] || fail "adopted replica not ready after its check: $(act replicas -)"
[ "$(curl -sf "http://127.0.0.1:$P4/")" = slow ] || fail "adopted replica not serving"
[ "$(grep -c . "$R/unified$PARENT/slow/cgroup.procs")" = 1 ] || fail "more than one process in the slow replica's cgroup"
out=$(act replica-stop - --args '{"id": "slow"}') || fail "stop slow: $out"
echo "agent kill -9 mid-start: replica kept running, adopted, its readiness checked again (pid $SLOW_PID, started once)"

# ---- failures that leave nothing behind -------------------------------------------------------
out=$(act replica-start - --args '{"id": "bad", "command": ["/nonexistent/prog"]}') && fail "missing program accepted"
grep -q "program '/nonexistent/prog': No such file or directory" <<< "$out" || fail "unclear error: $out"
[ ! -d "$R/unified$PARENT/bad" ] || fail "cgroup left after a failed start"
P2=$(port)
out=$(act replica-start - --args "{\"id\": \"never\", \"port\": $P2, \"command\": [\"python3\", \"$FIX\", \"{port}\", \"--startup-ms\", \"60000\"], \"readiness\": {\"path\": \"/healthz\", \"timeout_ms\": 3000}}") && fail "never-ready start accepted"
grep -q "replica never: not ready after" <<< "$out" || fail "unclear not-ready error: $out"
grep -Eq "last: (HTTP 503|Connection refused)\)" <<< "$out" || fail "not-ready error does not say what the check saw: $out"
[ ! -d "$R/unified$PARENT/never" ] && [ ! -f "$RDIR/never.json" ] || fail "left behind after not ready"
out=$(act replica-start - --args "{\"id\": \"quits\", \"port\": $P2, \"command\": [\"python3\", \"-c\", \"import sys; print('bad config'); sys.exit(3)\"], \"readiness\": {\"path\": \"/\", \"timeout_ms\": 30000}}") && fail "exiting start accepted"
grep -q "exited with status 3 before it was ready; its log: bad config" <<< "$out" || fail "unclear exit error: $out"
[ ! -d "$R/unified$PARENT/quits" ] || fail "cgroup left after an exit"
out=$(act replica-start - --args '{"id": "../x", "command": ["true"]}') && fail "bad id accepted"
grep -q '"id" must be 1 to 253 bytes' <<< "$out" || fail "unclear id error: $out"
out=$(act replica-start - --args '{"id": "x", "command": ["true", "{nope}"]}') && fail "bad placeholder accepted"
grep -q 'unknown placeholder {nope}' <<< "$out" || fail "unclear placeholder error: $out"
echo "failures: clear errors, nothing left behind"

# ---- stop: graceful, then forced ----------------------------------------------------------------
out=$(act replica-stop - --args '{"id": "r1"}') || fail "stop failed: $out"
echo "stop: $out"
[ "$(echo "$out" | jget 'd["killed"]')" = False ] || fail "r1 needed SIGKILL"
gone "$PID" || fail "process alive after stop"
for h in unified freezer memory cpu systemd; do [ ! -d "$R/$h$PARENT/r1" ] || fail "cgroup $h left after stop"; done
[ ! -f "$RDIR/r1.json" ] || fail "record left after stop"
out=$(act replica-stop - --args '{"id": "r1"}') || fail "repeated stop failed: $out"
[ "$(echo "$out" | jget 'd["already"]')" = True ] || fail "repeated stop not idempotent"
P3=$(port)
out=$(act replica-start - --args "{\"id\": \"stubborn\", \"port\": $P3, \"command\": [\"python3\", \"$FIX\", \"{port}\", \"--ignore-term\"], \"readiness\": {\"path\": \"/healthz\"}, \"grace_ms\": 300}") || fail "start stubborn: $out"
SP=$(echo "$out" | jget 'd["pid"]')
out=$(act replica-stop - --args '{"id": "stubborn", "grace_ms": 300}') || fail "stop stubborn: $out"
[ "$(echo "$out" | jget 'd["killed"]')" = True ] || fail "stubborn not killed: $out"
gone "$SP" || fail "stubborn alive"
[ ! -d "$R/unified$PARENT/stubborn" ] || fail "stubborn's cgroup left"
[ "$(act replicas - | jget 'len(d["replicas"])')" = 0 ] || fail "replicas left: $(act replicas -)"
echo "stop: graceful in $(echo "$out" | jget 'd["stop_ms"]') ms after grace for the stubborn one; nothing left"
echo PASS
