# _etcd.sh: a real etcd cluster and control planes sharing workloads through it, for the
# high-availability tests (source it after lib.sh). See ../shared/COMPONENTS.md section 5.

# etcd_cluster N: starts an N-member etcd cluster on loopback ports (data in $W/etcdI, logs
# $W/etcdI.log); sets ETCD_PID[i], ETCD_URL[i] and EPS (the client URLs, comma-separated) and
# returns once every member answers /health.
etcd_cluster() {
    local n=$1 i init=""
    ETCD_PID=(); ETCD_URL=(); ETCD_PEER=(); ETCD_ARGS=()
    for i in $(seq 1 "$n"); do
        ETCD_URL[$i]=http://127.0.0.1:$(port); ETCD_PEER[$i]=http://127.0.0.1:$(port)
        init="$init${init:+,}e$i=${ETCD_PEER[$i]}"
    done
    for i in $(seq 1 "$n"); do etcd_member_start "$i" "$init"; done
    EPS=$(IFS=,; echo "${ETCD_URL[*]:1}")
    for i in $(seq 1 "$n"); do wait_until 30 curl -sf "${ETCD_URL[$i]}/health"; done
}

# etcd_member_start I [INITIAL_CLUSTER]: (re)starts member I on its data dir and ports.
etcd_member_start() {
    local i=$1
    [ -n "${2:-}" ] && ETCD_ARGS[$i]="--initial-cluster $2 --initial-cluster-state new"
    # shellcheck disable=SC2086
    spawn "etcd$i" etcd --name "e$i" --data-dir "$W/etcd$i" --listen-client-urls "${ETCD_URL[$i]}" \
        --advertise-client-urls "${ETCD_URL[$i]}" --listen-peer-urls "${ETCD_PEER[$i]}" \
        --initial-advertise-peer-urls "${ETCD_PEER[$i]}" ${ETCD_ARGS[$i]} \
        --heartbeat-interval 50 --election-timeout 500 --log-level warn
    ETCD_PID[$i]=$SPAWNED
}

# ha_cp I [ARGS...]: starts control plane cpI (ops socket $W/cpI.sock, store $W/dI, log
# $W/cpI.log) as a member of $EPS with a short lease; CPID[I] is its pid, C[I] its tidectl.
ha_cp() {
    local i=$1; shift
    [ -f "$W/token" ] || { printf 'integration-test-token-0123456789\n' > "$W/token"; chmod 600 "$W/token"; }
    spawn "cp$i" "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:0 --socket "$W/cp$i.sock" \
        --token-file "$W/token" --data-dir "$W/d$i" --http 127.0.0.1:0 --etcd-endpoints "$EPS" \
        --etcd-member-name "cp$i" --etcd-lease-ttl "${HA_TTL:-3s}" \
        --etcd-clock-skew-margin "${HA_MARGIN:-1s}" --etcd-timeout 1s "$@"
    CPID[$i]=$SPAWNED
    wait_until 20 test -S "$W/cp$i.sock"
}
ctl() { local i=$1; shift; "$TIDE_BIN/tidectl" --socket "$W/cp$i.sock" "$@"; }

# cl I EXPR: a python expression over cp I's `status --json` "cluster" object `c`, printed;
# wls I EXPR: the same over its `get workloads --json` list `w`.
cl() { ctl "$1" --json status | /usr/bin/python3 -c "import json,sys
c=json.load(sys.stdin)['cluster']
print($2)"; }
wls() { ctl "$1" --json get workloads | /usr/bin/python3 -c "import json,sys
w=json.load(sys.stdin)
print($2)"; }
# cl_is / wls_is I EXPR: succeed when the expression is True.
cl_is() { [ "$(cl "$@" 2>/dev/null)" = True ]; }
wls_is() { [ "$(wls "$@" 2>/dev/null)" = True ]; }

# wl_spec NAME: a Preview workload spec (an HAProxyBackend without replica template).
wl_spec() { printf 'apiVersion: tide/v1\nkind: Workload\nmetadata: {name: %s}\nspec:\n  target: {kind: HAProxyBackend, name: %s}\n  maxReplicas: 10\n  behavior: {syncPeriodSeconds: %s}\n' "$1" "$1" "${2:-2}"; }
