#!/usr/bin/env bash
# executor_haproxy.sh: the HAProxyBackend executor's figures (issue 12 goals), with the fleet of
# tests/integration/_executor.sh (HAProxy 2.6, three agents as three nodes, the replica fixture
# with 100 ms start-up) under load:
#   1. decision -> first request served by a woken standby replica, N runs: the workload goes
#      1 <-> 2 replicas with gray state Standby; the decision instant is the control plane's log
#      line of the activate it sends (the planner decides and the executor sends in the same
#      loop iteration); the figure is the first request the woken replica served (any
#      client's; the replica logs the wall time it sent the first answer after a pause,
#      --log-gap-ms) minus the decision instant; a python client also sends requests through
#      HAProxy back to back and logs the wall time each answer arrived and its replica: its
#      first answer from the woken replica is printed too (it adds the client's own request
#      time and HAProxy's picks of wrk's requests before the client's);
#   2. START overhead beyond the replica's own start-up, N runs: 1 <-> 2 replicas with gray state
#      Delete; from each start's event (`done in X ms (replica start-up Y ms)`: X from the
#      executor's apply to Online behind HAProxy, Y the agent's exec -> ready) X - Y;
#   3. the 2N scale-out/in cycles of 1 and 2 run under wrk (2 connections) and the client: the
#      failed requests of both.
# Each figure comes with its stages, from the control plane's log: for 1, the node's activate
# (command sent -> answer in), HAProxy's ready (haproxy-slot sent -> answer in) and the rest
# (that answer -> the client's first answer from the woken replica: HAProxy's next pick and the
# client's own request time); for 2, the START's done line (record in place, agent set-up,
# spawn to exec, in rotation after ready, the rest: command transport) and spawn to exec in
# steps from the agents' logs (the child runs, its cgroup moves, the rest, execve).
# AGENT_NICE=-5 runs the agents at the shipped systemd unit's Nice= (default: as the bench). The load average at
# the start and the end is printed: on a shared host the p99 is mostly the scheduler's.
# References measured in the same run, for the load: the client's own request time (a request
# through HAProxy to an awake replica, back to back) and the scheduler's wake-up delay (a
# process sleeping 5 ms at a time, how much later than asked it runs again).
# KEEP_LOGS=DIR keeps the run's logs.
set -u
TIDE_SRC=${TIDE_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
TIDE_BIN=${TIDE_BIN:-$TIDE_SRC/bin}
export TIDE_SRC TIDE_BIN
N=${N:-20}
STARTUP_MS=100
LOG_GAP_MS=500 # each replica logs the first request it serves after a pause (its wake-up)
set -e
source "$TIDE_SRC/tests/integration/_executor.sh"
set +e

# on failure: what the control plane decided and did
fail() {
    "${CTL[@]}" describe web 2>&1 | tail -40; "${CTL[@]}" events web 2>&1 | tail -40; echo "FAIL: $*" >&2
    [ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp -r "$W"/*.log "$W"/*.txt "$W"/r1 "$W"/r2 "$KEEP_LOGS"/ 2>/dev/null
    exit 1
}
one_sb() { want "web-1:Online web-2:Standby" || want "web-1:Standby web-2:Online"; }
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
spec 2
wait_until 60 want "web-1:Online web-2:Online" || fail "2 replicas not online: $(states)"

spawn wrk wrk -t1 -c2 -d3600s "http://127.0.0.1:$FP/"; WRK=$SPAWNED
spawn client /usr/bin/python3 -u -c '
import http.client, sys, time
port = int(sys.argv[1])
while True:
    t = time.time() * 1000
    try:
        c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        c.request("GET", "/"); r = c.getresponse(); body = r.read().decode().strip()
        c.close()
        t = time.time() * 1000  # answered at
        print("%.3f %s" % (t, body if r.status == 200 else "ERR status %d" % r.status), flush=True)
    except Exception as e:
        print("%.3f ERR %s" % (t, e), flush=True)
' "$FP"; CLIENT=$SPAWNED
spawn wakeup /usr/bin/python3 -u -c '
import time
while True:
    t = time.monotonic(); time.sleep(0.005)
    print("%.3f" % ((time.monotonic() - t) * 1000 - 5), flush=True)
'; WAKEUP=$SPAWNED

# ---- 1: decision -> first request served by the woken standby ----------------------------------
: > "$W/wake.txt"; : > "$W/activate.txt"; : > "$W/served.txt"
for i in $(seq 1 "$N"); do
    spec 1
    wait_until 60 one_sb || fail "run $i: no standby: $(states)"
    SB=$(states | tr ' ' '\n' | sed -n 's/:Standby$//p')
    before=$(grep -c 'exec: activate on node' "$W/cp.log")
    spec 2
    wait_until 60 want "web-1:Online web-2:Online" || fail "run $i: not activated: $(states)"
    got_first() { [ "$(grep -c 'exec: activate on node' "$W/cp.log")" -gt "$before" ] &&
        /usr/bin/python3 - "$W/cp.log" "$W/client.log" "$SB" "$before" >> "$W/wake.txt" <<'PY'
import sys, datetime
cp, cl, sb, before = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
lines = [l for l in open(cp) if "exec: activate on node" in l]
ts = lines[before].split()[0]
t0 = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
for l in open(cl):
    t, body = l.split(" ", 1)
    if float(t) >= t0 and body.strip() == sb:  # answered at t
        print("%.1f" % (float(t) - t0)); sys.exit(0)
sys.exit(1)
PY
    }
    wait_until 10 got_first || fail "run $i: no request served by $SB after its activation"
    # the goal's figure: the first request the woken replica served (any client's: wrk's or
    # the python client's), from the replica's own log line, written once its answer was sent
    served_first() { /usr/bin/python3 - "$W/cp.log" "$SB" "$before" "$W"/r1/"$SB".log "$W"/r2/"$SB".log >> "$W/served.txt" <<'PY'
import os, sys, datetime, re
cp, sb, before = sys.argv[1], sys.argv[2], int(sys.argv[3])
lines = [l for l in open(cp) if "exec: activate on node" in l]
ts = lines[before].split()[0]
t0 = datetime.datetime.strptime(ts, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
for f in sys.argv[4:]:
    if not os.path.exists(f): continue
    for l in open(f):
        m = re.match(r"served after gap: wall_ms ([\d.]+)", l)
        if m and float(m.group(1)) >= t0:
            print("%.1f" % (float(m.group(1)) - t0)); sys.exit(0)
sys.exit(1)
PY
    }
    wait_until 10 served_first || fail "run $i: $SB logged no request served after its activation"
    # the activate action's own duration (apply -> HAProxy ready), from its event
    "${CTL[@]}" events web --json | /usr/bin/python3 -c '
import json, re, sys
d = [re.match(r"activate \S+: done in (\d+) ms", e["text"]) for e in json.load(sys.stdin)]
d = [m.group(1) for m in d if m]
print(d[-1] if d else "")' >> "$W/activate.txt"
done

# ---- 2: START overhead beyond the replica's own start-up ---------------------------------------
one_on() { [ "$(states)" = "$(states | grep -o 'web-[0-9]*:Online' | head -1)" ] && [ "$(states | wc -w)" = 1 ]; }
: > "$W/start.txt"
for i in $(seq 1 "$N"); do
    spec 1 3600 Deleted
    wait_until 60 one_on || fail "start run $i: no scale-in to 1: $(states)"
    spec 2 3600 Deleted
    two_on() { [ "$(states | wc -w)" = 2 ] && ! states | grep -qv ':Online'; }
    wait_until 60 two_on || fail "start run $i: no scale-out to 2: $(states)"
    # each re-apply has a planner of its own: the events of this generation hold this start
    "${CTL[@]}" events web --json | /usr/bin/python3 -c '
import json, re, sys
for e in json.load(sys.stdin):
    m = re.match(r"start \S+: done in (\d+) ms \(replica start-up (\d+) ms\)", e["text"])
    if m: print(int(m.group(1)) - int(m.group(2)), m.group(1), m.group(2))
' | tail -n 1 >> "$W/start.txt"
done

kill -INT "$WRK"; wait "$WRK" 2>/dev/null
kill "$CLIENT"; wait "$CLIENT" 2>/dev/null
kill "$WAKEUP"; wait "$WAKEUP" 2>/dev/null
# KEEP_LOGS=DIR: the run's logs (control plane, agents, HAProxy, client) are copied there
[ -n "${KEEP_LOGS:-}" ] && mkdir -p "$KEEP_LOGS" && cp "$W"/*.log "$W"/*.txt "$KEEP_LOGS"/
cat "$W/wrk.log"
LOAD1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "load average (1, 5, 15 min): $LOAD0 at the start, $LOAD1 at the end"
echo "agents at nice ${AGENT_NICE:-0}; cgroup mounts with favordynmods: $(grep -c 'favordynmods' /proc/self/mountinfo)"
cat "$W"/agent-app1.log "$W"/agent-app2.log > "$W/agents-replicas.txt"
/usr/bin/python3 - "$W/wake.txt" "$W/start.txt" "$W/client.log" "$W/wrk.log" "$W/activate.txt" "$W/cp.log" "$W/wakeup.log" "$W/agents-replicas.txt" "$W/served.txt" <<'PY'
import re, sys, datetime
def pct(v, p):
    v = sorted(v); return v[min(len(v) - 1, int(round(p / 100 * (len(v) - 1))))]
wake = [float(x) for x in open(sys.argv[1]).read().split()]
st = [l.split() for l in open(sys.argv[2]) if l.strip()]
over = [float(x[0]) for x in st]; total = [float(x[1]) for x in st]; own = [float(x[2]) for x in st]
cl = open(sys.argv[3]).read().splitlines()
errs = [l for l in cl if " ERR " in l]
w = open(sys.argv[4]).read()
wreq = re.search(r"(\d+) requests in", w)
wfail = sum(int(x) for x in re.findall(r"(?:connect|read|write|timeout) (\d+)", w)) + sum(int(x) for x in re.findall(r"Non-2xx or 3xx responses: (\d+)", w))
act = [float(x) for x in open(sys.argv[5]).read().split()]
served = [float(x) for x in open(sys.argv[9]).read().split()]
print("decision -> first request served by the woken standby (the replica's log: its answer sent): %d runs, p50 %.1f ms, p99 %.1f ms, max %.1f ms (goal p99 < 50 ms)" % (len(served), pct(served, 50), pct(served, 99), max(served)))
print("decision -> the python client's first answer from the woken standby: %d runs, p50 %.1f ms, p99 %.1f ms, max %.1f ms" % (len(wake), pct(wake, 50), pct(wake, 99), max(wake)))
if act: print("  of which the activate action (thaw on the node, then HAProxy ready): p50 %.0f ms, p99 %.0f ms" % (pct(act, 50), pct(act, 99)))
print("START: %d runs, whole (apply -> Online behind HAProxy) p50 %.0f ms p99 %.0f ms; replica's own start-up p50 %.0f ms p99 %.0f ms; overhead beyond it p50 %.0f ms, p99 %.0f ms (goal p99 < 100 ms)" % (len(over), pct(total, 50), pct(total, 99), pct(own, 50), pct(own, 99), pct(over, 50), pct(over, 99)))
print("load during %d scale-out/in cycles: client %d requests, %d failed; wrk %s requests, %d failed" % (2 * len(wake), len(cl), len(errs), wreq.group(1) if wreq else "?", wfail))
for e in errs[:5]: print("  client error:", e)
# stages from the control plane's log
def ts(s): return datetime.datetime.strptime(s, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=datetime.timezone.utc).timestamp() * 1000
cmds, order, starts = {}, [], []
for l in open(sys.argv[6]):
    m = re.match(r"(\S+) \S+\s+agents: command (\S+) (\S+) -> node (\S+)", l)
    if m:
        cmds[m.group(2)] = {"t": ts(m.group(1)), "a": m.group(3)}; order.append(m.group(2)); continue
    m = re.match(r"(\S+) \S+\s+agents: command (\S+) on node \S+: ", l)
    if m and m.group(2) in cmds: cmds[m.group(2)]["back"] = ts(m.group(1)); continue
    m = re.search(r"start \S+ done in (\d+) ms \(record in place at (-?\d+) ms, slots at -?\d+ ms, replica ready at (\d+) ms: agent set-up ([-\d.]+) ms, spawn to exec ([-\d.]+) ms, start-up (\d+) ms", l)
    if m: starts.append([float(x) for x in m.groups()])
act = []
for i, c in enumerate(order):
    a = cmds[c]
    if a["a"] != "activate" or "back" not in a: continue
    nxt = [cmds[k] for k in order[i + 1:] if cmds[k]["a"] == "haproxy-slot" and cmds[k]["t"] >= a["back"] - 0.5][:1]
    if nxt and "back" in nxt[0]: act.append((a["t"], a["back"] - a["t"], nxt[0]["t"] - a["back"], nxt[0]["back"] - nxt[0]["t"], nxt[0]["back"] - a["t"]))
act = act[-len(wake):] if wake else []  # the runs of part 1 are the last activates before part 2
def show(name, v):
    if v: print("    %-68s p50 %6.1f ms  p99 %6.1f ms" % (name, pct(v, 50), pct(v, 99)))
if act and len(act) == len(wake):
    print("  stages of decision -> first request (control plane's log, ms resolution):")
    show("node activate (command sent -> answer in)", [x[1] for x in act])
    show("control plane: answer in -> haproxy-slot sent", [x[2] for x in act])
    show("HAProxy ready (haproxy-slot sent -> answer in)", [x[3] for x in act])
    show("HAProxy's confirmation -> the woken replica's first answer sent", [w - x[4] for x, w in zip(act, served)])
    show("HAProxy's confirmation -> the python client's first answer from it", [w - x[4] for x, w in zip(act, wake)])
st = starts[-len(over):] if over else []
if st:
    print("  stages of the START overhead (its done line):")
    show("record in place before replica-start", [x[1] for x in st])
    show("agent set-up (arguments, cgroups, record)", [x[3] for x in st])
    show("spawn to exec", [x[4] for x in st])
    show("ready -> in HAProxy's rotation", [x[0] - x[2] for x in st])
    show("the rest (command transport, answers, readiness seen late)", [(x[0] - x[5]) - x[1] - x[3] - x[4] - (x[0] - x[2]) for x in st])
# spawn to exec in steps, from the agents' logs (their last len(over) starts, by time)
steps = []
for l in open(sys.argv[8]):
    m = re.match(r"(\S+) .*spawn to exec ([\d.]+) ms \(child ran ([\d.]+), cgroup moves ([\d.]+), prepare ([\d.]+), execve ([\d.]+)\)(?:; after the exec ([\d.]+) ms)?", l)
    if m: steps.append((m.group(1), [float(x) for x in m.groups()[1:] if x is not None]))
steps = [x[1] for x in sorted(steps)][-len(over):] if over else []
if steps:
    print("  spawn to exec in steps (agents' logs, %d starts):" % len(steps))
    show("clone -> the child runs", [x[1] for x in steps])
    show("the child's cgroup moves (its cgroup.procs writes)", [x[2] for x in steps])
    show("session, signals, fds, cwd, credentials", [x[3] for x in steps])
    show("execve -> the agent resumes", [x[4] for x in steps])
    if all(len(x) > 5 for x in steps): show("after the exec: nice 0, v1 cpu cgroup (by the agent)", [x[5] for x in steps])
# references for the load of this run
ct = [float(l.split()[0]) for l in cl if " ERR " not in l]
gaps = [b - a for a, b in zip(ct, ct[1:]) if 0 <= b - a < 5000]
wk = [float(x) for x in open(sys.argv[7]).read().split()[:-1] if x]
if gaps and wk:
    print("  references in the same run: one client request through HAProxy p50 %.1f ms, p99 %.1f ms; scheduler wake-up delay (5 ms sleeps, %d) p50 %.2f ms, p99 %.1f ms, max %.1f ms" % (pct(gaps, 50), pct(gaps, 99), len(wk), pct(wk, 50), pct(wk, 99), max(wk)))
    print("  decision -> first request p99 / client request p99: %.2f" % (pct(wake, 99) / pct(gaps, 99)))
PY
