#!/usr/bin/env bash
# ha_etcd_executor.sh: three control planes on a real 3-member etcd cluster (lease TTL 3 s,
# margin 1 s), the HAProxyBackend fleet of _executor.sh (HAProxy, agents lb, app1, app2
# reporting to every control plane) and workload web in Auto mode, gray state Standby, one
# replica cut off per step.
#   1. kill -9 of web's owner right after the first cutoff of a scale-down 3 -> 1: another
#      control plane owns web within TTL + one sync period (+ slack for load), rebuilds the
#      fleet from the target (inventory), finishes the scale-down: exactly 1 Online and 2
#      Standby, three processes (the standby ones frozen), HAProxy's slots agreeing, no
#      replica started, drained or frozen twice. No acknowledged sample lost: the new owner
#      and the third control plane hold every sampling round of every agent, through the kill.
#   2. SIGSTOP of the new owner past its lease: the third takes web over and acts (2 replicas:
#      a standby one activated); SIGCONT: the old owner cannot prove its lease and steps down
#      (log, event, counter), acts for nothing with its old token (no action of it done after
#      SIGCONT; an action it sent anyway would be refused by the agents' fencing), and when it
#      takes web back with a new token it rebuilds the fleet from the target: still 2 Online,
#      1 Standby, no replica activated twice.
# The take-over times are printed (README/BENCHMARKS "High availability on etcd").
# timeout: 150
STARTUP_MS=300
GRAY_PCT=50 GRAY_INTERVAL=4 GRAY_OBS=2
HA_TTL=3s HA_MARGIN=1s
TTL_S=3 SYNC_S=1 SLACK_S=10
ex_controlplanes() {
    source "$(dirname "$0")/_etcd.sh"
    etcd_cluster 3
    local i l=""
    for i in 1 2 3; do
        LP[$i]=$(port)
        l="$l${l:+,}127.0.0.1:${LP[$i]}"
    done
    EX_CONTROLPLANES=$l
    for i in 1 2 3; do ha_cp $i --listen "127.0.0.1:${LP[$i]}" --log-level info; done
    CTL=("$TIDE_BIN/tidectl" --socket "$W/cp1.sock")
}
source "$(dirname "$0")/_executor.sh"

on() { CTL=("$TIDE_BIN/tidectl" --socket "$W/cp$1.sock"); } # tidectl of cp I from now on
now_ms() { echo $(($(date +%s%N) / 1000000)); }
owner() { wls "$1" "[x['owner']['member'] for x in w if x['name']=='web' and x['owner']][0]"; }
acting() { wls_is "$1" "[x for x in w if x['name']=='web'][0]['acting_here'] is True"; }
agents_on() { [ "$(ctl "$1" agents --json | grep -Eo '"connected":[[:space:]]*true' | wc -l)" = 3 ]; }
# counts STATE: how many replicas of web with no action under way are in STATE
count() { states | tr ' ' '\n' | grep -c ":$1\$" || true; }
settled() { [ "$(count Online)" = "$1" ] && [ "$(count Standby)" = "$2" ] && [ "$(states | wc -w)" = $(($1 + $2)) ]; }
# events_of I: web's decision events on cp I, one text a line
events_of() { ctl "$1" events web --limit 100000 --json | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin); d=d if isinstance(d,list) else d.get('events',[])
print('\n'.join('%s %s' % (e.get('kind',''), e.get('text','')) for e in d))"; }
# agent_lines RE: every line of the agents' logs matching RE
agent_lines() { cat "$W"/agent-lb.log "$W"/agent-app1.log "$W"/agent-app2.log | grep -E "$1" || true; }
# no_twice RE: no captured group of RE (sed -E, \1) appears on two agent log lines
no_twice() {
    local dup
    dup=$(agent_lines "$1" | sed -E "s|.*$1.*|\\1|" | sort | uniq -d)
    [ -z "$dup" ] || fail "applied twice ($1): $dup"
}
# the whole fleet agrees with the owner's view: N online, M standby, the processes (standby
# ones frozen, online ones not) and HAProxy's slots (exactly the online replicas' ports ready)
fleet_agrees() { # N M
    local r p
    r=$(reps); p=$(procs)
    /usr/bin/python3 - "$1" "$2" "$p" "$S" "$PB" "$r" <<'EOF' || fail "fleet: $r / $p"
import json, socket, sys
n, m, procs, sock, pb = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3].split(), sys.argv[4], int(sys.argv[5])
reps = {r["id"]: r for r in json.loads(sys.argv[6])}
online = {i for i, r in reps.items() if r["state"] == "Online"}
standby = {i for i, r in reps.items() if r["state"] == "Standby"}
assert len(online) == n and len(standby) == m and len(reps) == n + m, reps
pr = {}
for x in procs:
    f = x.split(":")
    rid, node = f[0].split("@")
    assert rid not in pr, ("two processes for", rid, procs)
    pr[rid] = (node, int(f[1]), len(f) > 2)
assert set(pr) == set(reps), ("processes", pr, "replicas", reps)
for i, r in reps.items():
    assert pr[i][0] == r["node"] and pr[i][1] == r["pid"], (i, pr[i], r)
    assert pr[i][2] == (i in standby), ("frozen", i, pr[i], r["state"])
s = socket.socket(socket.AF_UNIX)
s.connect(sock)
s.sendall(b"show servers state web\n")
out = b""
while True:
    b = s.recv(65536)
    if not b:
        break
    out += b
ready = set()
for line in out.decode().splitlines():
    f = line.split()
    if len(f) < 19 or not f[0].isdigit():
        continue
    port, admin = int(f[18]), int(f[6])
    if pb <= port < pb + 10 and not admin & 1:  # not in forced maint
        ready.add(port)
assert ready == {reps[i]["port"] for i in online}, ("HAProxy ready ports", ready, reps)
EOF
}

for i in 1 2 3; do wait_until 30 agents_on $i || fail "agents not connected to cp$i"; done
spec 3
wait_until 20 wls_is 1 "any(x['name']=='web' and x['owner'] for x in w)" || fail "web has no owner"
A=$(owner 1); A=${A#cp}
on "$A"
wait_until 40 settled 3 0 || { ctl "$A" describe web; fail "3 replicas not online: $(states)"; }
fleet_agrees 3 0
echo "ok: web owned by cp$A, 3 online: $(procs)"

# ---- 1. kill -9 of the owner in the middle of a gray scale-down 3 -> 1 ----------------------
spec 1
# the first step's replica cut off (or, when this poll was slow, already frozen: 2 online still)
cut() { reps | /usr/bin/python3 -c 'import json,sys
assert any(r["state"] in ("Cutoff", "Standby") for r in json.load(sys.stdin))'; }
wait_until 30 cut || { ctl "$A" describe web; fail "no cutoff on cp$A: $(states)"; }
echo "killing cp$A at: $(reps | tr -d '\n' | head -c 600)"
kill -9 "${CPID[$A]}"; t0=$(now_ms)
wait "${CPID[$A]}" 2>/dev/null || true
o1=$((A % 3 + 1)); o2=$((o1 % 3 + 1))
new_owner() { acting $o1 || acting $o2; }
wait_until $((TTL_S + SYNC_S + SLACK_S)) new_owner || fail "no control plane took web over within $((TTL_S + SYNC_S + SLACK_S)) s (TTL $TTL_S s + sync $SYNC_S s + $SLACK_S s)"
t1=$(now_ms)
if acting $o1; then B=$o1 C=$o2; else B=$o2 C=$o1; fi
echo "take-over 1 (kill -9): cp$B acts for web $((t1 - t0)) ms after the kill (bound $(((TTL_S + SYNC_S + SLACK_S) * 1000)) ms)"
on "$B"
wait_until 40 settled 1 2 || { ctl "$B" describe web; fail "cp$B did not finish the scale-down: $(states)"; }
t2=$(now_ms)
fleet_agrees 1 2
ev=$(events_of "$B")
grep -qE "^inventory inventory: .*[0-9] online" <<< "$ev" || fail "cp$B: no inventory event: $ev"
grep -q "ownership: owned here with fencing token" <<< "$ev" || fail "cp$B: no ownership event"
grep -qE "action.* start " <<< "$ev" && fail "cp$B started a replica: $ev"
acting $C && fail "cp$C acts for web too"
# the agents: every replica started once, drained once at most, frozen once at most
[ "$(agent_lines 'replica web-[0-9]+ ready: pid' | wc -l)" = 3 ] || fail "starts: $(agent_lines 'replica web-[0-9]+ ready')"
no_twice 'replica (web-[0-9]+) ready: pid'
no_twice 'action: drain (web/r[0-9]+) done'
no_twice 'action: standby ([^ ]+) done'
[ "$(agent_lines 'action: standby [^ ]+ done' | wc -l)" = 2 ] || fail "standby: $(agent_lines 'action: standby')"
[ -z "$(agent_lines 'replica web-[0-9]+ stopped')" ] || fail "a replica was stopped: $(agent_lines 'stopped')"
echo "ok: cp$B finished the scale-down $((t2 - t0)) ms after the kill: $(states) / $(procs)"
# no acknowledged sample lost: every agent reports to every control plane, each connection
# acknowledged on its own, so the new owner (and the third) must hold every round of every
# agent, through the kill: consecutive round counters, the same on both, up to a cut
T_CUT=$(/usr/bin/python3 -c 'import time; print("%.3f" % (time.time() - 1))')
http_port() { sed -n 's/.*listening on .* (port \([0-9]*\), .*/\1/p' "$W/cp$1.log" | head -1; }
/usr/bin/python3 - "$(http_port "$B")" "$(http_port "$C")" "$T_CUT" <<'EOF' || fail "samples lost"
import json, sys, time, urllib.parse, urllib.request
pb, pc, t = sys.argv[1], sys.argv[2], float(sys.argv[3])
def q(port, expr, at):
    qs = urllib.parse.urlencode({"query": expr, "time": "%.3f" % at})
    with urllib.request.urlopen("http://127.0.0.1:%s/api/v1/query?%s" % (port, qs), timeout=10) as r:
        res = json.load(r)["data"]["result"]
    return float(res[0]["value"][1]) if res else None
for node in ("lb", "app1", "app2"):
    sel = 'node_agent_rounds_total{node="%s"}' % node
    # batches arrive in order on each connection: once a round after the cut is stored, every
    # round before it is too
    deadline = time.time() + 30
    for port in (pb, pc):
        while not q(port, "count_over_time(%s[3s])" % sel, t + 3):
            assert time.time() < deadline, ("no round after the cut on", port, node)
            time.sleep(0.2)
    got = {}
    for port in (pb, pc):
        n, lo, hi, sm = (q(port, "%s_over_time(%s[15m])" % (f, sel), t)
                         for f in ("count", "min", "max", "sum"))
        assert n and n >= 10, (port, node, n)
        assert hi - lo + 1 == n, ("a gap in the rounds of", node, "on", port, n, lo, hi)
        got[port] = (n, sm)
    assert got[pb] == got[pc], ("the stores differ", node, got)
    print("  %s: rounds %d..%d stored on both, none missing" % (node, lo, hi))
EOF
echo "ok: no acknowledged sample lost: every agent round up to the cut is in the stores of cp$B and cp$C"

# ---- 2. SIGSTOP of the owner past its lease, SIGCONT ----------------------------------------
fence_old=$(wls "$B" "[x['fence'] for x in w if x['name']=='web'][0]")
kill -STOP "${CPID[$B]}"; t0=$(now_ms)
wait_until $((TTL_S + SYNC_S + SLACK_S)) acting "$C" || { kill -CONT "${CPID[$B]}"; fail "cp$C did not take web over from the paused cp$B"; }
t1=$(now_ms)
echo "take-over 2 (SIGSTOP): cp$C acts for web $((t1 - t0)) ms after the pause"
on "$C"
spec 2
wait_until 40 settled 2 1 || { kill -CONT "${CPID[$B]}"; ctl "$C" describe web; fail "cp$C did not scale up to 2: $(states)"; }
fleet_agrees 2 1
events_of "$C" | grep >/dev/null -E "action.* activate web-[0-9]+: done" || fail "cp$C: no activate event"
echo "ok: cp$C activated a standby replica: $(states)"
off=$(wc -c < "$W/cp$B.log")
kill -CONT "${CPID[$B]}"
wait_until 20 grep -q "cp$B: not acting for any workload: the lease cannot be proven" "$W/cp$B.log" \
    || fail "cp$B did not step down after SIGCONT"
wait_until 20 cl_is "$B" "c['stepdowns']>=1 and c['lease_losses']>=1" || fail "cp$B: step-down not counted: $(cl "$B" c)"
# (no per-workload step-down event to look for: the spec applied meanwhile replaces web's
# entry on cp B, with its events, as every re-apply does)
# cp B joins again with a new lease; whoever owns web in the end rebuilt the fleet from it
one_owner() { [ "$( (acting "$B" && echo x; acting "$C" && echo x) | wc -l)" = 1 ]; }
wait_until 30 cl_is "$B" "c['lease_proven'] and len(c['members'])==2 and c['unowned']==0" || fail "cp$B did not rejoin"
wait_until 30 one_owner || fail "web has not exactly one acting owner"
if acting "$B"; then D=$B; else D=$C; fi
on "$D"
wait_until 30 settled 2 1 || { ctl "$D" describe web; fail "cp$D: fleet after cp$B came back: $(states)"; }
sleep $((SYNC_S * 3)) # a few syncs of the final owner: nothing more to do
wait_until 30 settled 2 1 || { ctl "$D" describe web; fail "cp$D: fleet moved: $(states)"; }
fleet_agrees 2 1
if [ "$D" = "$B" ]; then # its new term started from what the fleet runs, not from its old view
    events_of "$B" | grep >/dev/null "inventory: 2 online, 0 starting, 0 activating, 0 cutoff, 1 standby" \
        || fail "cp$B took web back without an inventory of the fleet: $(events_of "$B")"
fi
# nothing done by cp B with its old lease: no action of it done after SIGCONT before its new
# lease (an action it tried with the old token would have been refused by the agents' fencing)
tail -c +$((off + 1)) "$W/cp$B.log" > "$W/cpB-after.txt"
fenced=$(agent_lines 'fenced: workload web' | wc -l)
tried=$(grep -c "(workload web, fence $fence_old)" "$W/cpB-after.txt" || true)
/usr/bin/python3 - "$W/cpB-after.txt" <<'EOF' || fail "cp$B acted after SIGCONT: $(cat "$W/cpB-after.txt")"
import re, sys
lines = open(sys.argv[1], errors="replace").read().splitlines()
term = next((i for i, l in enumerate(lines) if re.search(r"lease [0-9a-f]+ granted", l)), len(lines))
acted = [l for l in lines[:term] if re.search(r"web: (start|cutoff|standby|activate|restore|delete) \S+ done", l)]
assert not acted, acted
EOF
fence_new=$(wls "$D" "[x['fence'] for x in w if x['name']=='web'][0]")
[ "$fence_new" -gt "$fence_old" ] || fail "web's fencing token did not grow: $fence_old -> $fence_new"
no_twice 'replica (web-[0-9]+) ready: pid'
no_twice 'action: drain (web/r[0-9]+) done'
no_twice 'action: activate ([^ ]+) done'
[ "$(agent_lines 'replica web-[0-9]+ ready: pid' | wc -l)" = 3 ] || fail "starts: $(agent_lines 'replica web-[0-9]+ ready')"
[ "$(agent_lines 'action: activate [^ ]+ done' | wc -l)" = 1 ] || fail "activations: $(agent_lines 'action: activate')"
[ -z "$(agent_lines 'replica web-[0-9]+ stopped')" ] || fail "a replica was stopped: $(agent_lines 'stopped')"
echo "ok: cp$B stepped down after SIGCONT, acted for nothing with its old token $fence_old ($tried commands sent with it, $fenced fenced refusals at the agents; token now $fence_new); cp$D owns web: $(states) / $(procs)"
echo "ha_etcd_executor: ok"
