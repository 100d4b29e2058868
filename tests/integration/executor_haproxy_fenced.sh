#!/usr/bin/env bash
# timeout: 150
# executor_haproxy_fenced: the HAProxyBackend executor's actions carry the workload's fencing
# token (README "Fencing"). The agent of HAProxy's node has seen token 7 for web (another
# control plane owns it; the token is in the agent's state_dir file, so it also proves the file
# is read at start): this control plane (token 0, no high availability) plans a START, and its
# HAProxy step is refused by the agent, naming the workload and both tokens; the workload records
# the refusal (event, tide_workload_fenced_total) and stops acting: the replica started on an app
# node meanwhile is stopped again, and no further command reaches the agent at later syncs.
source "$(dirname "$0")/_executor.sh"

mkdir -p "$W/lb-state"
printf 'tide-fence 1\n7 %s web\nend 1\n' "$(date +%s)" > "$W/lb-state/fence"
kill "$ALB"; wait "$ALB" 2>/dev/null || true
agent lb --state-dir "$W/lb-state"
wait_until 20 three_up || fail "the lb agent did not come back"

spec 1
refused() { grep -c "refused: fenced: workload web: token 0 is older than token 7" "$W/agent-lb.log"; }
wait_until 30 refused || { "${CTL[@]}" describe web; fail "no fenced refusal at the lb agent"; }
wl() { "${CTL[@]}" get workloads --json | /usr/bin/python3 -c "import json,sys
w=[w for w in json.load(sys.stdin) if w['name']=='web'][0]; print(w['$1'])"; }
wait_until 10 test "$(wl fenced_by)" = 7 || fail "the workload did not record the refusal"
[ "$(wl fenced_refusals)" -ge 1 ] || fail "tide_workload_fenced_total not counted"
# events TEXT: how many of web's decision events contain TEXT (the whole history, not the
# last few describe shows)
events() { "${CTL[@]}" events web --limit 100000 --json | /usr/bin/python3 -c "import json,sys
d=json.load(sys.stdin); d=d if isinstance(d,list) else d.get('events',[])
print(sum('$1' in e.get('text','') for e in d))"; }
[ "$(events 'refused by fencing: the fleet holds token 7, ours is 0')" -ge 1 ] \
    || fail "no fencing event: $("${CTL[@]}" events web)"
# later syncs plan the START again but send nothing: refused here, not at the agent
held() { [ "$(events 'refused: fenced: the fleet holds token 7, ours is 0')" -ge "$1" ]; }
wait_until 30 held 2 || fail "later syncs did not stop at the fence: $("${CTL[@]}" events web)"
# One START's steps (HAProxy's slot is prepared while the replica starts) may each reach the
# agent before the first refusal is back; after that, nothing more: later syncs stop here.
n=$(refused)
[ "$n" -le 3 ] || fail "the agent got $n fenced commands, more than one START's steps"
wait_until 30 held 4 || fail "later syncs did not stop at the fence: $("${CTL[@]}" events web)"
[ "$(refused)" = "$n" ] || fail "the agent got fenced commands after the refusal ($n, then $(refused))"
# a replica the app agents (no newer token seen there) started is stopped again, not kept
no_procs() { [ -z "$(procs)" ]; }
wait_until 30 no_procs || fail "a replica left running: $(procs)"
echo ok
