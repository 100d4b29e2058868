#!/usr/bin/env bash
# e2e.sh: the end-to-end benchmark: a real fleet on loopback replaying a real traffic trace.
#
#   tests/bench/e2e.sh --trace FILE.csv [--days N] [--policy tide|hpa|static]... [--json OUT.json]
#                      [--plot OUT.svg] [--minutes M] [--clock-rate R] [--startup-s S]
#                      [--slo-ms MS] [--ref-requests N] [--min-requests N]
#
# Per policy, one after another on the same segment and fleet parameters: HAProxy (a
# server-template of MAXR slots) in front of tide-replica processes that the control plane's
# HAProxyBackend executor starts through a tide-agent, each replica in its own cgroup with a CPU
# quota of CPU_Q cores doing WORK_MS of CPU per request (calibrated at its start, so one replica
# saturates at CPU_Q x 1000 / WORK_MS requests per second); the control plane decides in Auto
# mode; tide-loadgen replays the segment open loop through HAProxy. Every component runs on the
# same virtual clock (--clock-rate R, default 60: a trace minute per real second).
# The segment is the last N days (default 1) of the trace, or its last M minutes (--minutes,
# for short runs); everything before it is history. The trace is scaled so that the segment's
# peak needs MAXR-1 replicas at the 60% target utilization (nothing tuned to a trace: the scale
# comes from the segment's own peak and the fleet's calibrated capacity).
# SLO (scored after the run from each request's record by tests/bench/e2e_score.py, so a kept
# run can be re-scored): a trace minute violates it when more than 0.1% of its requests failed,
# or when the p99 of its answered requests is above 4x the reference p99; a minute with fewer
# than --min-requests (default 100) answered requests is judged by the p99 over it and the
# trailing minutes needed to reach that count (a p99 over a few dozen requests is their
# slowest one: luck, not service). The reference: one replica in the fleet's CPU quota through
# HAProxy, Poisson arrivals at the target utilization, --ref-requests (default 2000) requests,
# measured once before the policies. --slo-ms MS fixes the p99 bound instead (to compare
# policies measured in separate runs against one SLO); the reference is still measured.
# Output: a table on stdout; --json: one object per policy with policy, slo_violation_minutes,
# failed_requests, requests, replica_minutes (standby minutes weighted by their measured cost,
# standby_cost: a standby replica's share of the node's CPU and memory over an online one's),
# standby_minutes, p99_ms, scale_actions (and the fleet parameters); with --days, "simulate":
# tidectl simulate on the same segment with the fleet's measured capacity, cold start,
# activation and standby cost, and its distance from the testbed; --plot: traffic, replicas by
# state and p99 per policy on one time axis.
# The workload's utilization metric is each replica's cgroup CPU as tide-agent reports it
# (cgroup_cpu_usage_cores, in percent of the replica's quota), averaged over one trace minute
# for every policy. The system under test gets CPU priority over the machine's other work
# (cpu.shares 262144 on the replicas' parent cgroup and on a cgroup holding the harness, nice
# -10; E2E_NO_PRIORITY=1 turns it off), so each replica gets its quota: see "CPU priority" below.
# Policies: static (the segment's peak replica count, all the time); hpa (Tide's reactive
# provider, the Kubernetes HPA algorithm, with the Kubernetes default behavior; replicas scaled in
# are deleted, so every scale-out is a cold start; the 15 trace minutes before the segment are
# replayed first, not counted); tide (the example spec, deploy/examples/simulate.yaml: predictive
# at an upper quantile merged with the reactive provider, scaled-in replicas kept in standby;
# the same 15-minute lead-in). The tide policy's traffic metric is measured from the live
# system: a tide-agent on the HAProxy node samples HAProxy's stats socket (its `haproxy`
# collector: haproxy_backend_http_requests_total{proxy="web"}, stamped on the virtual clock)
# and the workload reads sum(rate(...[2m])) * 60, requests per trace minute. The history before
# the lead-in (the trace scaled like the replay, as the same counter) is backfilled with
# promtool into a Prometheus the control plane reads (--prometheus), timestamps in trace time:
# the query engine merges Prometheus's history with the store's live points (the store wins
# where it has them), so the model trains on 7 days as in production. The predictive
# provider's capacityPerReplica is the fleet's calibrated capacity in those units.
# Everything stops by itself (the segment's length at the clock rate plus set-up), and every
# process and cgroup it made is removed, also on failure or SIGTERM.
set -euo pipefail
SRC=$(cd "$(dirname "$0")/../.." && pwd)
: "${TIDE_BIN:=$SRC/bin}" "${TIDE_BUILD:=$SRC/build}"
TOOLS=$TIDE_BUILD/tools
PY=/usr/bin/python3

TRACE="" DAYS=1 MINUTES="" JSON="" PLOT="" RATE=60 STARTUP_S=120 SLO_MS="" POLICIES=()
# the SLO's reference (see "the reference p99" below): requests measured, and the least number
# of requests a p99 is computed over (a trace minute with fewer pools the trailing minutes)
REF_REQUESTS=2000 MIN_REQUESTS=100
# Fleet parameters (reasoned, not tuned): 6 slots of 0.08 core keep the whole fleet at or under
# 0.48 core at its peak on these 2-core machines. 2 ms of CPU per request fits in one CFS
# period's quota (8 ms of every 100 ms), so latency is queueing, not the quota's throttling
# pattern; it gives 40 requests/s per replica under its quota, and the segment's peak (5
# replicas at 60%) is 120 requests/s real, which the load generator and HAProxy serve for a few
# percent of a core.
MAXR=6 CPU_Q=0.08 WORK_MS=2 TARGET=60
# the utilization both policies see: each replica's CPU averaged over one trace minute
UTIL_WINDOW=1m
usage() { sed -n '3,6p' "$0" | sed 's/^# \{0,1\}//'; }
NARGS=$#
while [ $# -gt 0 ]; do
    case "$1" in
        --trace) TRACE=$2; shift ;;
        --days) DAYS=$2; shift ;;
        --minutes) MINUTES=$2; shift ;;
        --policy) POLICIES+=("$2"); shift ;;
        --json) JSON=$2; shift ;;
        --plot) PLOT=$2; shift ;;
        --clock-rate) RATE=$2; shift ;;
        --startup-s) STARTUP_S=$2; shift ;;
        --slo-ms) SLO_MS=$2; shift ;;
        --ref-requests) REF_REQUESTS=$2; shift ;;
        --min-requests) MIN_REQUESTS=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "e2e.sh: unknown argument $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done
# without arguments (make bench): the full run, one day of the NASA trace, every wired policy
if [ "$NARGS" -eq 0 ]; then
    TRACE=$SRC/../shared/data/nasa_http_1m.csv
    [ -r "$TRACE" ] || { echo "e2e: skipped: no --trace and no $TRACE"; exit 0; }
fi
[ -n "$TRACE" ] || { echo "e2e.sh: --trace FILE.csv is required" >&2; usage >&2; exit 2; }
[ -r "$TRACE" ] || { echo "e2e.sh: $TRACE: not readable" >&2; exit 2; }
[[ "$DAYS" =~ ^[0-9]+$ ]] && [ "$DAYS" -ge 1 ] || { echo "e2e.sh: --days '$DAYS': a whole number >= 1" >&2; exit 2; }
[ -z "$MINUTES" ] || [[ "$MINUTES" =~ ^[0-9]+$ ]] && [ "${MINUTES:-1}" -ge 1 ] \
    || { echo "e2e.sh: --minutes '$MINUTES': a whole number >= 1" >&2; exit 2; }
[[ "$RATE" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "e2e.sh: --clock-rate '$RATE': a number" >&2; exit 2; }
[[ "$STARTUP_S" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "e2e.sh: --startup-s '$STARTUP_S': a number" >&2; exit 2; }
[ -z "$SLO_MS" ] || [[ "$SLO_MS" =~ ^[0-9]+(\.[0-9]+)?$ ]] || { echo "e2e.sh: --slo-ms '$SLO_MS': a number" >&2; exit 2; }
[[ "$REF_REQUESTS" =~ ^[0-9]+$ ]] && [ "$REF_REQUESTS" -ge 100 ] && [ "$REF_REQUESTS" -le 1000000 ] \
    || { echo "e2e.sh: --ref-requests '$REF_REQUESTS': a whole number, 100-1000000" >&2; exit 2; }
[[ "$MIN_REQUESTS" =~ ^[0-9]+$ ]] && [ "$MIN_REQUESTS" -ge 1 ] && [ "$MIN_REQUESTS" -le 1000000 ] \
    || { echo "e2e.sh: --min-requests '$MIN_REQUESTS': a whole number, 1-1000000" >&2; exit 2; }
[ ${#POLICIES[@]} -gt 0 ] || POLICIES=(static)
for p in "${POLICIES[@]}"; do
    case "$p" in
        static|hpa|tide) ;;
        *) echo "e2e.sh: unknown policy '$p' (tide, hpa or static)" >&2; exit 2 ;;
    esac
done
skip() { echo "e2e: skipped: $*"; exit 0; }
[ "$(id -u)" = 0 ] || skip "needs root for cgroups"
command -v haproxy >/dev/null || skip "haproxy not installed"
for p in "${POLICIES[@]}"; do
    [ "$p" != tide ] || { command -v prometheus >/dev/null && command -v promtool >/dev/null; } \
        || skip "policy tide needs prometheus and promtool (the history backfill)"
done
R=/sys/fs/cgroup
[ -w $R/freezer ] && [ -w $R/unified/cgroup.procs ] || skip "no writable hybrid cgroup mounts"
for b in "$TIDE_BIN/tide-controlplane" "$TIDE_BIN/tide-agent" "$TIDE_BIN/tidectl" "$TOOLS/tide-replica" "$TOOLS/tide-loadgen" "$TOOLS/tide-e2e_plot"; do
    [ -x "$b" ] || { echo "e2e.sh: $b missing: run make first" >&2; exit 2; }
done

W=$(mktemp -d /tmp/tide-e2e.XXXXXX)
PIDS=()
PARENT=/tide-e2e-$$
# CPU priority for the system under test (the testbed measures the policy, not the machine):
# the replicas' parent cgroup and a cgroup holding this script and everything it starts
# (HAProxy, the load generators, the agents, the control plane, Prometheus, the samplers) get
# cpu.shares 262144, the kernel's maximum, in the v1 cpu hierarchy; every other task of the
# machine sits in the root cgroup with the weight of its nice level (1024 at nice 0, 36 at nice
# 15). CFS shares the CPU between the root cgroup's tasks and these groups by weight, so the
# testbed gets all the CPU it asks for (at most 0.48 core of replicas plus a fraction of a
# core of harness) before any other task: with 50 other runnable tasks at nice 0 its share is
# 2 x 262144 / (2 x 262144 + 50 x 1024) = 91% of the machine. Each replica's own quota
# (cpu.cfs_quota_us) still caps it. A negative nice (-10) for the harness's processes as well,
# for machines without a writable cpu hierarchy. E2E_NO_PRIORITY=1 turns both off (to measure
# the machine's effect).
SUT_SHARES=262144 HARNESS_CG=/tide-e2e-harness-$$ PRIO=none
prioritize() { # (again per policy: the last policy's reap removed the replicas' parent)
    [ -z "${E2E_NO_PRIORITY:-}" ] && [ -w $R/cpu/cgroup.procs ] && [ -f $R/cpu/cpu.shares ] || return 0
    mkdir -p $R/cpu$PARENT $R/cpu$HARNESS_CG &&
        echo $SUT_SHARES > $R/cpu$PARENT/cpu.shares && echo $SUT_SHARES > $R/cpu$HARNESS_CG/cpu.shares &&
        echo $$ > $R/cpu$HARNESS_CG/cgroup.procs || die "cannot give the testbed its CPU priority (cpu.shares)"
    [ "$PRIO" != none ] || PRIO="cpu.shares $SUT_SHARES"
}
reap() {
    local d p h
    for d in $R/freezer$PARENT/*/ $R/freezer$PARENT/; do [ -f "$d/freezer.state" ] && echo THAWED > "$d/freezer.state"; done 2>/dev/null
    for d in $R/unified$PARENT/*/; do for p in $(cat "$d/cgroup.procs" 2>/dev/null); do kill -9 "$p"; done; done 2>/dev/null
    sleep 0.2
    for h in unified freezer memory cpu cpuacct pids systemd; do
        for d in $R/$h$PARENT/*/; do rmdir "$d" || true; done 2>/dev/null
        [ -d $R/$h$PARENT ] && rmdir $R/$h$PARENT 2>/dev/null
    done
    true
}
stop_all() {
    local p
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done
    for p in "${PIDS[@]:-}"; do [ -n "$p" ] && { timeout 10 tail --pid="$p" -f /dev/null 2>/dev/null || kill -9 "$p" 2>/dev/null; } || true; done
    PIDS=()
    reap
}
cleanup() {
    local rc=$?
    set +e
    stop_all
    if [ -d $R/cpu$HARNESS_CG ]; then
        echo $$ > $R/cpu/cgroup.procs; rmdir $R/cpu$HARNESS_CG
    fi 2>/dev/null
    [ $rc -ne 0 ] && { echo "--- e2e logs in $W ---"; for f in "$W"/*/*.log; do [ -f "$f" ] && { echo "== $f"; tail -15 "$f"; }; done; }
    if [ -n "${E2E_KEEP:-}" ]; then echo "e2e: work files kept in $W"; else rm -rf "$W"; fi
    exit $rc
}
trap cleanup EXIT
trap 'exit 143' TERM INT
# ports are claimed run-wide (tests/integration/_freeport.py): e2e_short runs beside other tests
port() { $PY "$SRC/tests/integration/_freeport.py"; }

# haproxy_cfg FILE SOCKET FRONT_PORT SERVER_LINE: the fleet's HAProxy (admin socket, one HTTP
# frontend, backend "web" health-checked on /healthz); the reference and every policy share it
haproxy_cfg() {
    cat > "$1" <<CFG
global
  stats socket $2 level admin
defaults
  mode http
  timeout connect 2s
  timeout client 30s
  timeout server 30s
  timeout queue 10s
frontend fe
  bind 127.0.0.1:$3
  default_backend web
backend web
  option httpchk GET /healthz
  $4
CFG
}
wait_until() { # wait_until SECONDS CMD...
    local deadline=$(( $(date +%s) + $1 )); shift
    until "$@" >/dev/null 2>&1; do [ "$(date +%s)" -lt $deadline ] || return 1; sleep 0.05; done
}
die() { echo "e2e.sh: $*" >&2; exit 1; }

prioritize
if [ -z "${E2E_NO_PRIORITY:-}" ] && renice -n -10 -p $$ > /dev/null 2>&1; then
    [ "$PRIO" = none ] && PRIO="nice -10" || PRIO="$PRIO, nice -10"
fi
echo "e2e: CPU priority of the system under test: $PRIO (load average $(cut -d' ' -f1-3 /proc/loadavg))"

# ---- the segment and the fleet's scale ---------------------------------------------------------
CAP=$($PY -c "print($CPU_Q * 1000 / $WORK_MS)") # requests per real second one replica saturates at
read -r T0 T1 STEP PEAK <<<"$($PY - "$TRACE" "$DAYS" "${MINUTES:-0}" <<'PY'
import sys
rows = []
for line in open(sys.argv[1]):
    f = line.strip().split(',')
    try: rows.append((float(f[0]), float(f[1])))
    except (ValueError, IndexError): continue
if len(rows) < 2: sys.exit('e2e.sh: %s: fewer than 2 rows' % sys.argv[1])
rows.sort()
step = min(b[0] - a[0] for a, b in zip(rows, rows[1:]) if b[0] > a[0])
end = rows[-1][0] + step
span = int(sys.argv[3]) * 60 if int(sys.argv[3]) else int(sys.argv[2]) * 86400
start = max(rows[0][0], end - span)
peak = max(v for t, v in rows if start <= t < end) / step
print(int(start), int(end), int(step), peak)
PY
)"
[ "$($PY -c "print(1 if $PEAK > 0 else 0)")" = 1 ] || die "the segment of $TRACE has no traffic"
# the segment's peak (requests per trace second) at the clock rate is (MAXR-1) replicas at TARGET%
SCALE=$($PY -c "print(($MAXR - 1) * $CAP * $TARGET / 100 / ($PEAK * $RATE))")
STATIC_N=$((MAXR - 1))
# warm-up before the segment: three cold starts (the static fleet is up, one replica measured)
# and 25 s real for the set-up (processes, agents, the unloaded measurement)
# (policies that follow the load: plus WARM_LOAD trace seconds of the trace before the segment
# replayed through the fleet, not counted, so that they meet the segment as in production: sized
# for the load just before it, not for an idle warm-up; 15 trace minutes: longer than the HPA's
# 5-minute scale-down window and a few cold starts)
WARM_LOAD_S=900
WARM_SETUP=$($PY -c "print(int(max(3 * $STARTUP_S, 25 * $RATE)))")
SEG_REAL=$($PY -c "print(($T1 - $T0) / $RATE)")
echo "e2e: segment $(date -u -d @$T0 +%FT%TZ) .. $(date -u -d @$T1 +%FT%TZ) ($(( (T1 - T0) / 60 )) trace minutes, ${SEG_REAL} s real at rate $RATE), trace scale $SCALE, replica capacity $CAP req/s real ($CPU_Q core, $WORK_MS ms per request), static fleet $STATIC_N"

# ---- the reference p99 -----------------------------------------------------------------------
# The SLO's bound is 4x the p99 of one replica at the load every policy aims for: a replica in
# its own cgroup with the fleet's CPU quota, through HAProxy (the same config as the fleet's
# slots), Poisson arrivals at the target utilization (TARGET% of its calibrated capacity),
# REF_REQUESTS requests (default 2000: ~20 above the p99, so the estimate is not one request's
# luck; 83 s real at 24 requests/s). Measured once, before the policies, with no policy running,
# so every policy is scored against the same bound. Each request is kept
# (reference/requests.csv) so the bound can be recomputed from the records.
measure_reference() {
    local D=$W/reference RP FP S RID=ref rps secs
    mkdir -p "$D"
    prioritize
    RP=$(port); FP=$(port); S=$D/admin.sock
    mkdir -p $R/cpu$PARENT/$RID $R/cpuacct$PARENT/$RID $R/memory$PARENT/$RID $R/unified$PARENT/$RID \
        || die "cannot create the reference replica's cgroups"
    echo 100000 > $R/cpu$PARENT/$RID/cpu.cfs_period_us
    echo "$($PY -c "print(int($CPU_Q * 100000))")" > $R/cpu$PARENT/$RID/cpu.cfs_quota_us \
        || die "cannot set the reference replica's CPU quota"
    ( for h in cpu cpuacct memory unified; do echo $BASHPID > $R/$h$PARENT/$RID/cgroup.procs; done
      exec "$TOOLS/tide-replica" --port "$RP" --name "$RID" --work-ms "$WORK_MS" --startup-ms 0 ) \
        > "$D/replica.log" 2>&1 & PIDS+=($!)
    haproxy_cfg "$D/haproxy.cfg" "$S" "$FP" "server r1 127.0.0.1:$RP check inter 500ms maxconn 8"
    haproxy -f "$D/haproxy.cfg" -db > "$D/haproxy.log" 2>&1 & PIDS+=($!)
    # HAProxy's own check must have seen it up (a request through the frontend before would
    # be refused 503)
    r1_up() { $PY - "$S" <<'PY'
import socket, sys
s = socket.socket(socket.AF_UNIX); s.settimeout(2); s.connect(sys.argv[1])
s.sendall(b'show stat\n'); out = b''
while True:
    b = s.recv(65536)
    if not b: break
    out += b
f = [l.split(',') for l in out.decode().splitlines()]
sys.exit(0 if any(len(r) > 17 and r[1] == 'r1' and r[17] == 'UP' for r in f) else 1)
PY
}
    wait_until 30 r1_up || die "the reference replica did not come up (HAProxy's check)"
    rps=$($PY -c "print($CAP * $TARGET / 100)")
    secs=$($PY -c "print(round($REF_REQUESTS / $rps, 3))")
    "$TOOLS/tide-loadgen" --target 127.0.0.1:$FP --rate "$rps" --seconds "$secs" --arrivals poisson \
        --seed 7 --summary "$D/summary.json" --out "$D/minutes.csv" --requests "$D/requests.csv" \
        > "$D/loadgen.log" 2>&1 || die "the reference measurement failed (see $D/loadgen.log)"
    stop_all
    $PY -c "import json,sys; s=json.load(open(sys.argv[1])); print('e2e: reference: %d requests at %s/s (Poisson, %s%% of one replica), p50 %.2f ms, p99 %.2f ms, failed %d' % (s['requests'], sys.argv[2], sys.argv[3], s['p50_ms'], s['p99_ms'], s['failed']))" \
        "$D/summary.json" "$rps" "$TARGET"
}

# ---- one policy ------------------------------------------------------------------------------
run_policy() { # run_policy POLICY DIR
    local pol=$1 D=$2
    mkdir -p "$D"
    prioritize
    cut -d' ' -f1-3 /proc/loadavg > "$D/loadavg-start"
    printf 'e2e-benchmark-token-0123456789abc\n' > "$D/token"; chmod 600 "$D/token"
    local P FP S PB now anchor origin WARM WARM_LOAD=0
    [ "$pol" = static ] || WARM_LOAD=$WARM_LOAD_S
    WARM=$((WARM_SETUP + WARM_LOAD))
    P=$(port); FP=$(port); S=$D/admin.sock
    PB=$($PY "$SRC/tests/integration/_freeport.py" --block 12) || die "no block of 12 free ports"
    haproxy_cfg "$D/haproxy.cfg" "$S" "$FP" \
        "server-template r 1-$MAXR 127.0.0.1:1 disabled check inter 500ms maxconn 8"
    haproxy -c -f "$D/haproxy.cfg" > /dev/null || die "haproxy config rejected"
    haproxy -f "$D/haproxy.cfg" -db > "$D/haproxy.log" 2>&1 & PIDS+=($!)
    wait_until 10 test -S "$S" || die "haproxy did not start"
    # the shared clock: trace time WARM s before the segment at real now + 2 s (set-up slack)
    now=$(date +%s.%N)
    anchor=$($PY -c "print('%.3f' % ($now + 2))")
    origin=$((T0 - WARM))
    local CLK=(--clock-rate "$RATE" --clock-origin "$origin" --clock-anchor "$anchor")
    # tide: the history before the lead-in, backfilled into a Prometheus in trace time
    local PROM=()
    if [ "$pol" = tide ]; then
        local PP
        $PY - "$TRACE" "$((T0 - WARM_LOAD_S))" "$SCALE" "$STEP" "$D/history.om" <<'PY' || die "history export failed"
import sys
end, scale, step = int(sys.argv[2]), float(sys.argv[3]), int(sys.argv[4])
rows = []
for line in open(sys.argv[1]):
    f = line.strip().split(',')
    try: rows.append((int(float(f[0])), float(f[1])))
    except (ValueError, IndexError): continue
rows.sort()
# the counter as HAProxy would have had it, a point a minute: the replay sends each step's
# requests at a constant rate, so the counter grows linearly through the step
with open(sys.argv[5], 'w') as o:
    o.write('# TYPE haproxy_backend_http_requests counter\n')
    total, last = 0.0, None
    for t, v in rows:
        if last is not None and t <= last: continue
        per_s = max(v, 0) * scale / step
        for k in range(0, step, 60):
            if t + k >= end: break
            o.write('haproxy_backend_http_requests_total{proxy="web"} %.3f %d\n' % (total, t + k))
            total += per_s * min(60, step - k)
        last = t
    o.write('# EOF\n')
PY
        promtool tsdb create-blocks-from openmetrics -q --max-block-duration=168h "$D/history.om" "$D/prom" \
            > "$D/promtool.log" 2>&1 || die "promtool backfill failed: $(tail -3 "$D/promtool.log")"
        PP=$(port)
        printf 'global: {scrape_interval: 1m}\n' > "$D/prom.yml"
        prometheus --config.file="$D/prom.yml" --storage.tsdb.path="$D/prom" --storage.tsdb.retention.time=100y \
            --web.listen-address=127.0.0.1:$PP > "$D/prom.log" 2>&1 & PIDS+=($!)
        wait_until 60 curl -sf "127.0.0.1:$PP/-/ready" || die "prometheus did not start"
        PROM=(--prometheus "http://127.0.0.1:$PP")
    fi
    "$TIDE_BIN/tide-controlplane" --listen 127.0.0.1:$P --socket "$D/cp.sock" --token-file "$D/token" \
        --data-dir "$D/data" --http 127.0.0.1:0 "${PROM[@]}" "${CLK[@]}" > "$D/cp.log" 2>&1 & PIDS+=($!)
    wait_until 20 test -S "$D/cp.sock" || die "control plane did not start"
    local CTL=("$TIDE_BIN/tidectl" --socket "$D/cp.sock")
    "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node lb --token-file "$D/token" \
        --reconnect-max 500ms --interval 10s "${CLK[@]}" > "$D/agent-lb.log" 2>&1 & PIDS+=($!)
    "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node app1 --token-file "$D/token" \
        --reconnect-max 500ms --interval 10s --replica-dir "$D/r1" --replica-cgroup "$PARENT" \
        --cgroup-roots "$PARENT" --cgroup-kubernetes false --cgroup-systemd false \
        "${CLK[@]}" > "$D/agent-app1.log" 2>&1 & PIDS+=($!)
    two_up() { [ "$("${CTL[@]}" agents --json | grep -Eo '"connected":[[:space:]]*true' | wc -l)" = 2 ]; }
    wait_until 20 two_up || die "agents did not connect"
    # the workload's metrics: utilization = each replica's cgroup CPU as the agent reports it, in
    # percent of its quota (one series per replica cgroup)
    # averaged over one trace minute (the agent's own rate covers 10 trace s, 167 real ms at
    # rate 60: a handful of requests; a minute holds ~40 per replica at the target, closer to
    # production's noise); the same for every policy
    local util="{query: 'avg_over_time(cgroup_cpu_usage_cores{cgroup=~\"$PARENT/.*\"}[$UTIL_WINDOW]) * $($PY -c "print(100 / $CPU_Q)")', target: $TARGET}"
    local policy_spec traffic=""
    case "$pol" in
        static) policy_spec="  providers:
    - {type: static, priority: 0, replicas: $STATIC_N}
  behavior:
    syncPeriodSeconds: 15
    scaleUp: {stabilizationWindowSeconds: 0, gray: {changePercent: 100, changeIntervalSeconds: 0}}" ;;
        # the Kubernetes HPA: the reactive provider (the HPA's algorithm) with the Kubernetes
        # default behavior (sync 15 s, tolerance 0.1, scale-up 100% or 4 pods per 15 s, no
        # scale-up stabilization; scale-down stabilization 300 s, 100% per 15 s); replicas scaled
        # in are deleted at once, so every scale-out is a cold start
        hpa) policy_spec="  providers:
    - {type: reactive, priority: 0}
  behavior:
    syncPeriodSeconds: 15
    tolerance: 0.1
    scaleUp: {stabilizationWindowSeconds: 0, selectPolicy: Max, policies: [{type: Percent, value: 100, periodSeconds: 15}, {type: Pods, value: 4, periodSeconds: 15}], gray: {changePercent: 100, changeIntervalSeconds: 0}}
    scaleDown:
      stabilizationWindowSeconds: 300
      selectPolicy: Max
      policies: [{type: Percent, value: 100, periodSeconds: 15}]
      gray: {state: Deleted, changePercent: 100, changeIntervalSeconds: 0, observationSeconds: 0}" ;;
        # the example spec (deploy/examples/simulate.yaml): predictive (profile at the 0.6
        # quantile, an hour ahead) and reactive at one priority, standby on scale-in; the
        # capacity per replica is the calibrated one in the traffic metric's units (requests
        # per trace minute): CAP requests per real second = CAP x 60 / RATE per trace minute
        tide) traffic="
    traffic:
      - {name: requests, query: 'sum(rate(haproxy_backend_http_requests_total{proxy=\"web\"}[2m])) * 60'}"
              policy_spec="  providers:
    - {type: predictive, priority: 10, model: profile, quantile: 0.6, horizonSeconds: 3600, retrainSeconds: 86400, reforecastSeconds: 300, maxModelAgeSeconds: 691200, capacityPerReplica: $($PY -c "print($CAP * 60 / $RATE)")}
    - {type: reactive, priority: 10}
  behavior:
    scaleUpAhead: auto
    keepAliveSeconds: 3600
    syncPeriodSeconds: 15
    scaleUp: {policies: [{type: Percent, value: 100, periodSeconds: 15}, {type: Pods, value: 4, periodSeconds: 15}]}
    scaleDown:
      stabilizationWindowSeconds: 75
      gray: {state: Standby, changePercent: 100, changeIntervalSeconds: 0, observationSeconds: 30}
  stabilityCheckers:
    - {name: cpu-saturated, metric: utilization, operator: '>', threshold: 95, action: Rollback, cooldownSeconds: 120}" ;;
    esac
    cat > "$D/web.yaml" <<Y
apiVersion: tide/v1
kind: Workload
metadata: {name: web}
spec:
  target:
    kind: HAProxyBackend
    name: web
    haproxy: {node: lb, socket: $S, serverPrefix: r}
    nodes: [{name: app1, address: 127.0.0.1}]
    replica:
      command: [$TOOLS/tide-replica, --port, "{port}", --name, "{id}", --work-ms, "$WORK_MS",
                --startup-ms, "$($PY -c "print(int($STARTUP_S * 1000))")", --clock-rate, "$RATE"]
      readiness: {path: /healthz, timeoutSeconds: 600}
      gracePeriodSeconds: 2
      cpu: $CPU_Q
      ports: {first: $PB, last: $((PB + 11))}
  minReplicas: 1
  maxReplicas: $MAXR
  mode: Auto
  metrics:
    utilization: $util$traffic
$policy_spec
Y
    "${CTL[@]}" apply -f "$D/web.yaml" > "$D/apply.log" 2>&1 || { cat "$D/apply.log" >&2; die "spec refused"; }
    # (the SLO's reference p99 was measured before the policies: measure_reference)
    online() { "${CTL[@]}" get replicas web --json | $PY -c 'import json,sys
sys.exit(0 if sum(r["state"] == "Online" for r in json.load(sys.stdin)) >= int(sys.argv[1]) else 1)' "$1"; }
    wait_until 120 online 1 || die "no replica online"
    # the fleet, sampled every real second until the load generator is done
    # the segment must not have begun: the load generator would skip what is past
    local tnow
    tnow=$($PY -c "print(int($origin + ($(date +%s.%N) - $anchor) * $RATE))")
    [ "$tnow" -lt "$T0" ] || die "the set-up took longer than the warm-up ($WARM trace s): machine overloaded?"
    local cgcpu=$R/cpu$PARENT/cpuacct.usage cgmem=$R/memory$PARENT/memory.usage_in_bytes
    [ -f "$cgcpu" ] || cgcpu=$R/cpuacct$PARENT/cpuacct.usage
    # the trace just before the segment (not counted; it skips what is already past)
    local WLG=""
    if [ "$WARM_LOAD" -gt 0 ]; then
        "$TOOLS/tide-loadgen" --target 127.0.0.1:$FP --trace "$TRACE" --from $((T0 - WARM_LOAD)) --to $T0 \
            --scale "$SCALE" "${CLK[@]}" --max-conns 256 --timeout-ms 10000 \
            --out "$D/warm-minutes.csv" --summary "$D/warm-summary.json" > "$D/warm-loadgen.log" 2>&1 &
        WLG=$!; PIDS+=($WLG)
    fi
    "$TOOLS/tide-loadgen" --target 127.0.0.1:$FP --trace "$TRACE" --from $T0 --to $T1 \
        --scale "$SCALE" "${CLK[@]}" --max-conns 256 --timeout-ms 10000 \
        --out "$D/minutes.csv" --summary "$D/summary.json" --requests "$D/requests.csv" > "$D/loadgen.log" 2>&1 &
    local LG=$!; PIDS+=($LG)
    # tide: HAProxy's request counter sampled from the lead-in on (before it, the store has
    # no traffic points and Prometheus's history answers: an idle set-up is not traffic, and
    # the store's points win over Prometheus's wherever it has them)
    if [ "$pol" = tide ]; then
        lead_in() { [ "$($PY -c "print(int($origin + ($(date +%s.%N) - $anchor) * $RATE))")" -ge $((T0 - WARM_LOAD)) ]; }
        wait_until 600 lead_in || die "the lead-in did not begin"
        "$TIDE_BIN/tide-agent" --controlplane 127.0.0.1:$P --node lbstats --token-file "$D/token" \
            --reconnect-max 500ms --interval 10s --haproxy-stats "$S" --http-listen "" \
            --cgroup-kubernetes false --cgroup-systemd false \
            "${CLK[@]}" > "$D/agent-lbstats.log" 2>&1 & PIDS+=($!)
    fi
    echo "trace_s,online,starting,cutoff,standby,cpu_ns,mem_bytes" > "$D/fleet.csv"
    echo "trace_s,id,state,cpu_ns,mem_bytes" > "$D/replicas.csv"
    : > "$D/actions.jsonl"
    while kill -0 $LG 2>/dev/null; do
        # the warm-up load's status is read as soon as it ends: by the segment's end its pid may
        # be another process's (thousands are spawned meanwhile) and bash no longer has it
        if [ -n "$WLG" ] && ! kill -0 $WLG 2>/dev/null; then
            wait $WLG || die "warm-up load generator failed (see $D/warm-loadgen.log)"
            WLG=""
        fi
        local t
        t=$($PY -c "print(int($origin + ($(date +%s.%N) - $anchor) * $RATE))")
        "${CTL[@]}" describe web --json > "$D/describe.json" 2>/dev/null || true
        $PY - "$D/describe.json" "$t" "$(cat "$cgcpu" 2>/dev/null || echo 0)" "$(cat "$cgmem" 2>/dev/null || echo 0)" \
            "$(dirname "$cgcpu")" "$(dirname "$cgmem")" >> "$D/fleet.csv" 2>/dev/null <<'PY' || true
import json, sys
d = json.load(open(sys.argv[1]))
n = {"Online": 0, "Starting": 0, "Cutoff": 0, "Standby": 0}
# each replica's own cgroup (PARENT/ID): its CPU and memory by state, for the standby cost
with open(sys.argv[1].replace("describe.json", "replicas.csv"), "a") as f:
    for r in d.get("replicas", []):
        try:
            c = open("%s/%s/cpuacct.usage" % (sys.argv[5], r["id"])).read().strip()
            m = open("%s/%s/memory.usage_in_bytes" % (sys.argv[6], r["id"])).read().strip()
            f.write("%s,%s,%s,%s,%s\n" % (sys.argv[2], r["id"], r["state"], c, m))
        except (OSError, KeyError):
            pass
for r in d.get("replicas", []):
    if r["state"] in n: n[r["state"]] += 1
print("%s,%d,%d,%d,%d,%s,%s" % (sys.argv[2], n["Online"], n["Starting"], n["Cutoff"], n["Standby"], sys.argv[3], sys.argv[4]))
with open(sys.argv[1].replace("describe.json", "actions.jsonl"), "a") as f:
    for a in d.get("actions", []): f.write(json.dumps(a) + "\n")
PY
        sleep 1
    done
    wait $LG || die "load generator failed (see $D/loadgen.log)"
    cut -d' ' -f1-3 /proc/loadavg > "$D/loadavg-end"
    "${CTL[@]}" events web --limit 1000 > "$D/events.txt" 2>&1 || true
    "${CTL[@]}" series --match haproxy_backend_http_requests_total --json > "$D/series.json" 2>&1 || true
    [ -z "$WLG" ] || wait $WLG || die "warm-up load generator failed (see $D/warm-loadgen.log)"
    stop_all
}

# ---- the policies, then the report -----------------------------------------------------------
cat > "$W/run.json" <<J
{"trace": "$TRACE", "t0": $T0, "t1": $T1, "step": $STEP, "days": $DAYS, "minutes_arg": ${MINUTES:-0},
 "max_replicas": $MAXR, "cpu_cores_per_replica": $CPU_Q, "work_ms": $WORK_MS, "target": $TARGET,
 "clock_rate": $RATE, "trace_scale": $SCALE, "startup_s": $STARTUP_S, "capacity_rps": $CAP,
 "cpu_priority": "$PRIO", "utilization_window": "$UTIL_WINDOW", "reference_requests": $REF_REQUESTS,
 "policies": [$(printf '"%s",' "${POLICIES[@]}" | sed 's/,$//')]}
J
echo "e2e: reference p99 ..."
measure_reference
for pol in "${POLICIES[@]}"; do
    echo "e2e: policy $pol ..."
    run_policy "$pol" "$W/$pol"
done
# the scoring is a step of its own (tests/bench/e2e_score.py: the SLO from each request's
# record, the replica-minutes, the standby cost), so a kept run can be re-scored; with --days,
# the same segment through tidectl simulate with the fleet's measured capacity, cold start,
# activation and standby cost (simulate evaluates whole days: skipped for --minutes segments)
SCORE=("$SRC/tests/bench/e2e_score.py" "$W" --min-requests "$MIN_REQUESTS")
[ -z "$SLO_MS" ] || SCORE+=(--slo-ms "$SLO_MS")
[ -n "$MINUTES" ] || SCORE+=(--simulate "$TIDE_BIN/tidectl")
$PY "${SCORE[@]}" || die "scoring failed"
[ -z "$JSON" ] || cp "$W/report.json" "$JSON"
if [ -n "$PLOT" ]; then
    args=()
    for pol in "${POLICIES[@]}"; do args+=("$pol=$W/$pol"); done
    "$TOOLS/tide-e2e_plot" "$PLOT" "$T0" "$T1" "${args[@]}" || die "plot failed"
fi
