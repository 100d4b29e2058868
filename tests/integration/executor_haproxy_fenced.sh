#!/usr/bin/env bash
# timeout: 90
# executor_haproxy_fenced: the HAProxyBackend executor's actions carry the workload's fencing
# token (README "Fencing"). The agent of HAProxy's node has seen token 7 for web (another
# control plane owns it; the token is in the agent's state_dir file, so it also proves the file
# is read at start): this control plane (token 0, no high availability) plans a START, and its
# first step is refused by the agent, naming the workload and both tokens; the workload records
# the refusal (event, tide_workload_fenced_total) and stops acting: no replica starts, and no
# further command reaches the agent at later syncs.
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
held() { [ "$(events 'refused: fenced: the fleet holds token 7, ours is 0')" -ge 2 ]; }
wait_until 30 held || fail "later syncs did not stop at the fence: $("${CTL[@]}" events web)"
[ "$(refused)" = 1 ] || fail "the agent got $(refused) fenced commands, expected 1"
[ -z "$(procs)" ] || fail "a replica started: $(procs)"
echo ok
