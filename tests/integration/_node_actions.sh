# _node_actions.sh: what the node-action tests and bench share (source it after lib.sh): Python
# backends in cgroups behind HAProxy, and a control plane with node n1's agent on loopback,
# driven through tidectl as an operator would.

source "$(dirname "${BASH_SOURCE[0]}")/_controlplane.sh"

NA_FIX=$TIDE_SRC/tests/fixtures/node_actions

# na_backend NAME PORT [ARGS...]: starts backend.py NAME PORT ARGS inside cgroup /$TAG-NAME of
# the v1 freezer, v2 unified and (nested, below $MEMREL) v1 memory hierarchies under $R;
# pid in $SPAWNED.
na_backend() {
    local name=$1 port=$2; shift 2
    local dirs="$R/freezer/$TAG-$name $R/unified/$TAG-$name $R/memory$MEMREL/$TAG-$name"
    cg_make $dirs
    spawn "$name" sh -c "for c in $dirs; do echo \$\$ > \$c/cgroup.procs; done; exec /usr/bin/python3 $NA_FIX/backend.py $name $port $*"
}

# na_haproxy FRONT_PORT SOCKET PORT...: HAProxy with frontend fe on FRONT_PORT, backend be of
# servers s1, s2, ... on the PORTs (health-checked every second) and an admin socket SOCKET;
# config in $W/haproxy.cfg, checked before it starts. hc CMD talks to the admin socket.
na_haproxy() {
    local fp=$1 i=0 p; NA_SOCK=$2; shift 2
    cat > "$W/haproxy.cfg" <<CFG
global
  stats socket $NA_SOCK level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
frontend fe
  bind 127.0.0.1:$fp
  default_backend be
backend be
CFG
    for p in "$@"; do i=$((i + 1)); echo "  server s$i 127.0.0.1:$p check inter 1s" >> "$W/haproxy.cfg"; done
    haproxy -c -f "$W/haproxy.cfg" > /dev/null || fail "haproxy config rejected"
    spawn haproxy haproxy -f "$W/haproxy.cfg" -db
}
hc() { echo "$*" | socat stdio "unix-connect:$NA_SOCK"; }
# all_up: servers s1, s2 and s3 of backend be are UP
all_up() { [ "$(hc show stat be 4 -1 | awk -F, '$2 ~ /^s[123]$/ && $18=="UP"' | wc -l)" = 3 ]; }

# na_tide [CP_ARGS...] [-- AGENT_ARGS...]: tide-controlplane (cp_start) and the agent of node
# n1, each with the extra arguments given; returns once the agent is connected. Sets CP_PORT
# and CTL (tidectl on the ops socket, as an array).
na_tide() {
    local cp_args=() agent_args=()
    while [ $# -gt 0 ] && [ "$1" != -- ]; do cp_args+=("$1"); shift; done
    [ $# -gt 0 ] && shift
    agent_args=("$@")
    cp_start ${cp_args[@]+"${cp_args[@]}"}
    CP_PORT=$P
    spawn agent "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$CP_PORT --node n1 --token-file "$W/token" \
        ${agent_args[@]+"${agent_args[@]}"}
    wait_until 20 agent_up
}
agent_up() { "${CTL[@]}" agents --json | grep -Eq '"connected":[[:space:]]*true'; }

# act ACTION CGROUP [OPTIONS]: tidectl node-action on node n1; prints the JSON result, or the
# error (stderr) and returns tidectl's status
act() { "${CTL[@]}" --json node-action n1 "$@" 2>&1; }
# jget EXPR: evaluates a Python expression over the JSON on stdin, bound to d
jget() { /usr/bin/python3 -c 'import json,sys; d=json.load(sys.stdin); print(eval(sys.argv[1], {}, {"d": d}))' "$1"; }
