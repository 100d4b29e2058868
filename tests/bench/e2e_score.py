#!/usr/bin/env python3
"""e2e_score.py: scores a run of the end-to-end benchmark (tests/bench/e2e.sh) from its records.

    tests/bench/e2e_score.py WORKDIR [--slo-ms MS] [--min-requests N] [--json OUT]
                             [--simulate TIDECTL [--sim-demand offered|trace] [--service-rps R]]
                             [--quiet]

WORKDIR is the run's work directory (e2e.sh writes it; E2E_KEEP=1 keeps it): run.json (the
segment and the fleet's parameters), reference/ (the SLO's reference measurement) and one
folder per policy (requests.csv: one row per request, due_s,latency_ms,status; fleet.csv and
replicas.csv: the harness's samples; actions.jsonl; summary.json). Scoring is a step of its own
so that a finished race can be re-scored without re-running it.

The SLO (README, "How the SLO is measured"):
- the bound: --slo-ms, else 4x the reference p99: one replica in the fleet's CPU quota through
  HAProxy, Poisson arrivals at the target utilization, its p99 (nearest rank over every
  answered request of reference/requests.csv);
- a trace minute of the segment violates it when the p99 of its answered requests is above the
  bound, or when more than 0.1% of its requests failed (not 2xx, or no answer). A minute with
  fewer than --min-requests (default 100) answered requests has no p99 of its own worth the
  name (its p99 would be its largest or second largest latency: one request's luck): its p99 is
  computed over it and the trailing minutes of the segment needed to reach the count (all of
  the segment's start when fewer), and it violates when that p99 is above the bound and the
  minute itself holds a request above the bound (one slow minute does not make the quiet
  minutes after it violate). The raw per-minute p99 is reported beside it
  (slo_violation_minutes_unpooled).

Writes WORKDIR/report.json (and --json OUT): one object per policy with policy,
slo_violation_minutes, failed_requests, requests, replica_minutes, standby_minutes, p99_ms,
scale_actions and the details; WORKDIR/POLICY/scored.csv: the per-minute figures. With
--simulate TIDECTL it runs `tidectl simulate` on the segment with the fleet's measured
parameters first (WORKDIR/simulate.json and simulate-minutes.csv; a later scoring without
--simulate compares with the kept simulate.json) and compares: replica-minutes, and the
simulator's SLO minutes from its queue (--slo-delay: this scoring's bound in trace seconds;
HAProxy's queue timeout; the utilization window; the service rate measured where a queue stood,
else --service-rps, else the calibrated one) with the testbed's, minute by minute. The demand is
the requests offered per step (--sim-demand trace: the scaled trace).
"""
import argparse
import csv
import json
import math
import os
import re
import subprocess
import sys

FAIL_SHARE = 0.001  # a minute with more failed requests than this share violates the SLO


def quantile(vals, q):
    """Nearest-rank quantile of a sorted list (the smallest value with at least q of them at or
    below it), None when empty."""
    if not vals:
        return None
    k = max(1, int(math.ceil(q * len(vals))))
    return vals[k - 1]


def request_records(path, t0, t1):
    """The records of a requests.csv (tide-loadgen --requests) due in [t0, t1): (due trace
    time, latency ms, status); malformed rows are skipped."""
    with open(path) as f:
        r = csv.reader(f)
        next(r, None)
        for row in r:
            try:
                due, ms, st = float(row[0]), float(row[1]), int(row[2])
            except (ValueError, IndexError):
                continue
            if t0 <= due < t1:
                yield due, ms, st


def saturated_rate(D, T0, T1, rate, ref_p99):
    """The fleet's measured service rate: requests answered per online replica per trace minute,
    over the minutes where a queue stood throughout (the fastest answered request due in the
    minute and in the next one waited longer than the reference p99, so every replica was busy
    the whole minute) and the online count did not change; only after the segment's first minute
    without a queue: a queue standing from the segment's start also serves the lead-in's
    requests, which have no records here, so its minutes would count too few answered.
    (answered, replica-minutes, minutes)"""
    comp, fastest = {}, {}
    for due, ms, st in request_records(os.path.join(D, 'requests.csv'), T0, T1):
        if not (200 <= st < 300):
            continue
        k = int((due + ms / 1000.0 * rate - T0) // 60)
        comp[k] = comp.get(k, 0) + 1
        kd = int((due - T0) // 60)
        fastest[kd] = min(fastest.get(kd, ms), ms)
    online = {}
    for f in csv.DictReader(open(os.path.join(D, 'fleet.csv'))):
        online.setdefault((int(f['trace_s']) - T0) // 60, set()).add(int(f['online']))
    n = reps = mins = 0
    first = min((k for k, ms in fastest.items() if ms <= ref_p99), default=None)
    for k, ms in fastest.items():
        on = online.get(k)
        if first is not None and k > first and ms > ref_p99 and fastest.get(k + 1, 0) > ref_p99 and on and len(on) == 1 and min(on) > 0:
            n += comp.get(k, 0)
            reps += min(on)
            mins += 1
    return n, reps, mins


def fleet_online(D, t0, t1):
    """Online replicas per trace second of [t0, t1), rebuilt from the executor's completed
    actions (actions.jsonl: decision time + 'done in N ms' of trace time): start, activate and
    restore bring a replica online when done, cutoff, standby, stop and delete take it out."""
    ev = {}
    for line in open(os.path.join(D, 'actions.jsonl')):
        x = json.loads(line)
        m = re.match(r'done in (\d+) ms', x.get('result') or '')
        if m:
            ev[(x['time'], x['action'], x['replica'])] = x['time'] + int(m.group(1)) / 1000.0
    up = {'start': True, 'activate': True, 'restore': True}
    changes = sorted((done if a in up else t, r, a in up) for (t, a, r), done in ev.items())
    online, state, n, out, i = set(), {}, 0, [], 0
    for sec in range(t0, t1):
        while i < len(changes) and changes[i][0] < sec + 1:
            _, r, on = changes[i]
            (online.add if on else online.discard)(r)
            i += 1
        out.append(len(online))
    return out


def queue_on_fleet(arrivals, online, rate, timeout):
    """The simulator's queue (controlplane/offline/sim.c: sim_queue_second, sim_fifo_waits) on a
    given fleet: per second, arrivals and the online replicas' service rate; returns the FIFO
    wait of each second's arrivals and the failed traffic per second."""
    n = len(arrivals)
    acc, dep, est, failed, drops = [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n, [0.0] * n
    b = 0.0
    for t in range(n):
        a, c = float(arrivals[t]), online[t] * rate
        if c <= 0:
            failed[t] = a
            est[t] = 0.0
            continue
        drop = 0.0
        if timeout:
            lim = timeout * c
            if b > lim:
                drop, b = b - lim, lim
            acc[t] = min(a, lim + c - b)
        else:
            acc[t] = a
        failed[t] = drop + a - acc[t]
        tot = b + acc[t]
        served = min(tot, c)
        b = tot - served
        if b < 1e-9 * c:
            b = 0.0
        dep[t] = served + drop
        drops[t] = drop
        est[t] = b / c
    wait, cum_a, cum_d, s = [0.0] * n, 0.0, 0.0, 0
    for t in range(n):
        cum_a += acc[t]
        eps = 1e-9 * max(cum_a, 1)
        while s < n and cum_d + dep[s] < cum_a - eps:
            cum_d += dep[s]
            s += 1
        if s >= n:
            wait[t] = est[t]
        elif s <= t:
            wait[t] = 0.0
        else:  # the drops at the second's start, then service at the capacity's rate
            left, c = cum_a - cum_d - drops[s], online[s] * rate
            wait[t] = (s - t - 1) + (0.0 if left <= 0 else min(1.0, left / c) if c > 0 else 1.0)
    return wait, failed


def load_requests(path, t0, t1):
    """Per trace minute of [t0, t1): (offered, failed, sorted latencies of the answered)."""
    nmin = (t1 - t0) // 60
    off = [0] * nmin
    fail = [0] * nmin
    lat = [[] for _ in range(nmin)]
    for due, ms, st in request_records(path, t0, t1):
        k = int((due - t0) // 60)
        off[k] += 1
        if 200 <= st < 300:
            lat[k].append(ms)
        else:
            fail[k] += 1
    for v in lat:
        v.sort()
    return off, fail, lat


def score_minutes(off, fail, lat, bound, min_req):
    """Per minute: (p99 pooled, requests it covers, minutes pooled, p99 of the minute alone,
    violation, cause)."""
    out = []
    for k in range(len(off)):
        own = quantile(lat[k], 0.99)
        pool, n, j = [], 0, k
        while j >= 0 and n < min_req:
            pool.append(lat[j])
            n += len(lat[j])
            j -= 1
        if len(pool) == 1:
            p99 = own
        else:
            merged = sorted(x for v in pool for x in v)
            p99 = quantile(merged, 0.99)
        failed = off[k] > 0 and fail[k] > FAIL_SHARE * off[k]
        # the pool's slow requests count against this minute only when it holds one of them:
        # a slow minute does not make the quiet minutes after it violate
        slow = p99 is not None and p99 > bound and bool(lat[k]) and lat[k][-1] > bound
        cause = 'failed' if failed else ('p99' if slow else '')
        out.append((p99, n, len(pool), own, bool(failed or slow), cause))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split('\n')[0])
    ap.add_argument('workdir')
    ap.add_argument('--slo-ms', type=float, default=0)
    ap.add_argument('--min-requests', type=int, default=100)
    ap.add_argument('--json')
    ap.add_argument('--simulate', metavar='TIDECTL')
    ap.add_argument('--sim-demand', choices=('offered', 'trace'), default='offered',
                    help='the segment\'s demand for the simulator: the requests offered per step (default) or the '
                    'scaled trace')
    ap.add_argument('--service-rps', type=float, default=0,
                    help='a replica\'s measured service rate (real requests/s) for the simulator\'s queue, when '
                    'this run has no minute with a standing queue to measure it from (e.g. measured on another '
                    'run of the same fleet)')
    ap.add_argument('--quiet', action='store_true')
    a = ap.parse_args()
    if a.slo_ms < 0 or not 1 <= a.min_requests <= 1000000:
        sys.exit('e2e_score: --slo-ms >= 0 and --min-requests 1-1000000')
    W = a.workdir
    run = json.load(open(os.path.join(W, 'run.json')))
    T0, T1, rate = int(run['t0']), int(run['t1']), float(run['clock_rate'])
    target = float(run['target'])
    pols = [p for p in run['policies'] if os.path.exists(os.path.join(W, p, 'summary.json'))]
    node_cores = os.cpu_count()
    node_mem = next(int(l.split()[1]) * 1024 for l in open('/proc/meminfo') if l.startswith('MemTotal:'))

    # the reference
    ref_req = os.path.join(W, 'reference', 'requests.csv')
    ref = {'requests': 0, 'served': 0}
    if os.path.exists(ref_req):
        lat = []
        with open(ref_req) as f:
            r = csv.reader(f)
            next(r, None)
            for row in r:
                ref['requests'] += 1
                if 200 <= int(row[2]) < 300:
                    lat.append(float(row[1]))
        lat.sort()
        ref['served'] = len(lat)
        ref['p50_ms'], ref['p99_ms'] = quantile(lat, 0.5), quantile(lat, 0.99)
    else:  # runs before the reference phase: the policy's own unloaded measurement
        s = json.load(open(os.path.join(W, pols[0], 'unloaded.json')))
        ref.update(requests=s['requests'], served=s['served'], p50_ms=s['p50_ms'], p99_ms=s['p99_ms'])
    if not ref.get('p99_ms'):
        sys.exit('e2e_score: the reference measurement has no answered request')
    bound = a.slo_ms if a.slo_ms > 0 else 4 * ref['p99_ms']

    res = []
    for p in pols:
        D = os.path.join(W, p)
        s = json.load(open(os.path.join(D, 'summary.json')))
        fleet = list(csv.DictReader(open(os.path.join(D, 'fleet.csv'))))
        per = {}
        for f in fleet:
            t = int(f['trace_s'])
            if T0 <= t < T1:
                per.setdefault((t - T0) // 60, []).append(f)
        nmin = (T1 - T0) // 60
        if os.path.exists(os.path.join(D, 'requests.csv')):
            off, fail, lat = load_requests(os.path.join(D, 'requests.csv'), T0, T1)
            sc = score_minutes(off, fail, lat, bound, a.min_requests)
            measure = 'pooled'
        else:  # no per-request records: each minute's own p99 (tide-loadgen's histogram)
            off, fail, sc = [0] * nmin, [0] * nmin, [(None, 0, 1, None, False, '')] * nmin
            for m in csv.DictReader(open(os.path.join(D, 'minutes.csv'))):
                k = (int(m['minute']) - T0) // 60
                if 0 <= k < nmin:
                    off[k], fail[k] = int(m['offered']), int(m['failed'])
                    p99 = float(m['p99_ms'])
                    p99 = p99 if p99 >= 0 else None
                    failed = off[k] > 0 and fail[k] > FAIL_SHARE * off[k]
                    slow = p99 is not None and p99 > bound
                    sc[k] = (p99, int(m['served']), 1, p99, failed or slow,
                             'failed' if failed else ('p99' if slow else ''))
            measure = 'minute'
        # replica-minutes: the replica counts sampled in each trace minute (mean)
        rep_min = stby_min = 0.0
        online = {}
        for k, fs in per.items():
            rep_min += sum(int(f['online']) + int(f['starting']) + int(f['cutoff']) for f in fs) / len(fs)
            stby_min += sum(int(f['standby']) for f in fs) / len(fs)
            online[k] = sum(int(f['online']) for f in fs) / len(fs)
        if per:  # minutes never sampled count as their neighbours
            rep_min *= nmin / len(per)
            stby_min *= nmin / len(per)
        # the standby cost, measured (a standby replica's share of the node's CPU and memory
        # over an online one's)
        last, use = {}, {'Online': ([], []), 'Standby': ([], [])}
        for row in csv.DictReader(open(os.path.join(D, 'replicas.csv'))):
            t, st = int(row['trace_s']), row['state']
            if not (T0 <= t < T1) or st not in use:
                last.pop(row['id'], None)
                continue
            c, m = int(row['cpu_ns']), int(row['mem_bytes'])
            use[st][1].append(m)
            p0 = last.get(row['id'])
            if p0 and p0[1] == st and t > p0[0] and c >= p0[2]:
                use[st][0].append((c - p0[2]) / 1e9 / ((t - p0[0]) / rate))
            last[row['id']] = (t, st, c)
        mean = lambda v: sum(v) / len(v) if v else None
        on_cpu, on_mem = mean(use['Online'][0]), mean(use['Online'][1])
        sb_cpu, sb_mem = mean(use['Standby'][0]), mean(use['Standby'][1])
        cpu_ratio = sb_cpu / on_cpu if sb_cpu is not None and on_cpu else None
        mem_ratio = sb_mem / on_mem if sb_mem is not None and on_mem else None
        weight = None
        if None not in (on_cpu, on_mem, sb_cpu, sb_mem):
            share = lambda c, m: c / node_cores + m / node_mem
            weight = share(sb_cpu, sb_mem) / share(on_cpu, on_mem)
        if stby_min > 0 and weight is None:
            weight = 1.0  # not measured: counted as online
        rep_all = rep_min + stby_min
        if stby_min > 0:
            rep_min += weight * stby_min
        cpu = []
        for x, y in zip(fleet, fleet[1:]):
            dt = (int(y['trace_s']) - int(x['trace_s'])) / rate
            dc = (int(y['cpu_ns']) - int(x['cpu_ns'])) / 1e9
            if dt > 0 and dc >= 0 and T0 <= int(x['trace_s']) < T1:
                cpu.append(dc / dt)
        mem = [int(f['mem_bytes']) for f in fleet if T0 <= int(f['trace_s']) < T1]
        # the per-minute table, and the violations by the offered load's share of the online
        # replicas' nominal capacity (under the target: no policy sized too few replicas)
        cap_min = float(run['capacity_rps']) * 60 / rate  # requests per trace minute
        below = below_viol = viol = viol_raw = viol_fail = pooled = 0
        viol_times = []
        with open(os.path.join(D, 'scored.csv'), 'w') as o:
            o.write('minute,offered,failed,online,utilization_pct,p99_ms,p99_requests,p99_minutes,'
                    'p99_minute_ms,violation,cause\n')
            for k in range(nmin):
                p99, n, npool, own, v, cause = sc[k]
                on = online.get(k)
                u = 100.0 * off[k] / (on * cap_min) if on else None
                viol += v
                if v:
                    viol_times.append(T0 + 60 * k)
                viol_fail += cause == 'failed'
                pooled += npool > 1
                failed = off[k] > 0 and fail[k] > FAIL_SHARE * off[k]
                viol_raw += bool(failed or (own is not None and own > bound))
                if on and off[k] < target / 100 * on * cap_min:
                    below += 1
                    below_viol += v
                fmt = lambda x: '' if x is None else '%.3f' % x
                o.write('%d,%d,%d,%s,%s,%s,%d,%d,%s,%d,%s\n' % (
                    T0 + 60 * k, off[k], fail[k], fmt(on), fmt(u), fmt(p99), n, npool, fmt(own), v, cause))
        lavg = lambda f: open(os.path.join(D, f)).read().split() if os.path.exists(os.path.join(D, f)) else None
        acts = set()
        for line in open(os.path.join(D, 'actions.jsonl')):
            x = json.loads(line)
            if T0 <= x['time'] < T1:
                acts.add((x['time'], x['action'], x['replica']))
        res.append({
            'policy': p, 'slo_violation_minutes': viol, 'failed_requests': s['failed'],
            'requests': s['requests'], 'replica_minutes': round(rep_min, 1),
            'standby_minutes': round(stby_min, 1), 'p99_ms': s['p99_ms'],
            'scale_actions': len(acts), 'slo_p99_ms': round(bound, 3),
            'slo_measure': measure, 'slo_min_requests': a.min_requests,
            'slo_violation_minutes_failed': viol_fail,
            'slo_violation_minutes_unpooled': viol_raw, 'minutes_pooled': pooled,
            'slo_violation_times': viol_times,
            'replica_minutes_standby_as_online': round(rep_all, 1),
            'standby_cost': round(weight, 4) if weight is not None else None,
            'standby_cpu_ratio': round(cpu_ratio, 4) if cpu_ratio is not None else None,
            'standby_memory_ratio': round(mem_ratio, 4) if mem_ratio is not None else None,
            'unloaded_p99_ms': ref['p99_ms'], 'reference': ref, 'minutes': sum(1 for x in off if x),
            'minutes_below_target': below, 'slo_violation_minutes_below_target': below_viol,
            'cpu_priority': run.get('cpu_priority', ''),
            'load_average_start': lavg('loadavg-start'), 'load_average_end': lavg('loadavg-end'),
            'utilization_window': run.get('utilization_window', ''),
            'fleet_cpu_cores_mean': round(sum(cpu) / len(cpu), 4) if cpu else None,
            'fleet_cpu_cores_max': round(max(cpu), 4) if cpu else None,
            'fleet_memory_bytes_max': max(mem) if mem else None,
            'fleet': {'max_replicas': int(run['max_replicas']),
                      'cpu_cores_per_replica': float(run['cpu_cores_per_replica']),
                      'work_ms': float(run['work_ms']), 'clock_rate': rate,
                      'trace_scale': float(run['trace_scale']), 'startup_s': float(run['startup_s'])}})

    if a.simulate:
        # the fleet's service rate, measured where a queue stood (else --service-rps, else the
        # calibrated capacity)
        n = reps = mins = 0
        for p in pols:
            if os.path.exists(os.path.join(W, p, 'requests.csv')):
                x = saturated_rate(os.path.join(W, p), T0, T1, rate, ref['p99_ms'])
                n, reps, mins = n + x[0], reps + x[1], mins + x[2]
        svc = {'source': 'calibrated', 'rps': float(run['capacity_rps']), 'minutes': mins}
        if reps:
            svc.update(source='measured', rps=n / reps / 60.0 * rate)
        elif a.service_rps > 0:
            svc.update(source='--service-rps', rps=a.service_rps)
        simulate(W, run, pols, res, a.simulate, bound, svc, a.sim_demand)
    compare(W, res, bound, run)
    json.dump(res, open(os.path.join(W, 'report.json'), 'w'), indent=1)
    if a.json:
        json.dump(res, open(a.json, 'w'), indent=1)
    if not a.quiet:
        table(res, ref, bound, a, target)


def haproxy_timeout_s(W, pols, rate):
    """The fleet's HAProxy `timeout queue` in trace seconds (None when not found)."""
    units = {'us': 1e-6, 'ms': 1e-3, 's': 1, 'm': 60, 'h': 3600, 'd': 86400, '': 1e-3}
    for p in pols:
        path = os.path.join(W, p, 'haproxy.cfg')
        if not os.path.exists(path):
            continue
        for line in open(path):
            m = re.match(r'\s*timeout\s+queue\s+(\d+)(us|ms|s|m|h|d)?\s*$', line)
            if m:
                return float(m.group(1)) * units[m.group(2) or ''] * rate
    return None


def window_s(w):
    """A Prometheus duration ('1m', '30s') in seconds; None when not one."""
    m = re.match(r'^(\d+)(ms|s|m|h)$', str(w or ''))
    return int(m.group(1)) * {'ms': 0.001, 's': 1, 'm': 60, 'h': 3600}[m.group(2)] if m else None


def simulate(W, run, pols, res, tidectl, bound_ms, svc, demand):
    """tidectl simulate on the run's segment with the fleet's measured capacity, cold start,
    activation and standby cost, the SLO's bound (real ms at the clock rate: trace seconds =
    real seconds x rate), HAProxy's queue timeout and the utilization's averaging window; the
    result goes to W/simulate.json."""
    T1, scale = int(run['t1']), float(run['trace_scale'])
    rows = []
    for line in open(run['trace']):
        f = line.strip().split(',')
        try:
            rows.append((int(float(f[0])), float(f[1])))
        except (ValueError, IndexError):
            continue
    rows.sort()
    # --sim-demand offered: the segment's steps hold the requests the load generator offered
    # in them (the Poisson draws every policy was sent, as HAProxy counted them), not the scaled
    # trace's expected value; the history before the segment stays the scaled trace
    T0, step = int(run['t0']), int(run['step'])
    offered = None
    src = next((p for p in pols if os.path.exists(os.path.join(W, p, 'requests.csv'))), None)
    if demand == 'offered' and src:
        offered = {}
        for due, _, _ in request_records(os.path.join(W, src, 'requests.csv'), T0, T1):
            k = T0 + int((due - T0) // step) * step
            offered[k] = offered.get(k, 0) + 1
    with open(os.path.join(W, 'simulate.csv'), 'w') as o:
        o.write('timestamp,value\n')
        for t, v in rows:
            if t < T1:
                if offered is not None and t >= T0:
                    o.write('%d,%d\n' % (t, offered.get(t, 0)))
                else:
                    o.write('%d,%.6f\n' % (t, v * scale))
    # every start and activate of the run (lead-in included) as the executor reported it: from
    # the decision to Online, what the simulator's delays stand for
    starts, acts = [], []
    for p in pols:
        seen = {}
        for line in open(os.path.join(W, p, 'actions.jsonl')).read().splitlines():
            x = json.loads(line)
            m = re.match(r'done in (\d+) ms', x.get('result') or '')
            if m and x['action'] in ('start', 'activate'):
                seen[(x['time'], x['action'], x['replica'])] = int(m.group(1)) / 1000.0
        starts += [v for k, v in seen.items() if k[1] == 'start']
        acts += [v for k, v in seen.items() if k[1] == 'activate']
    cold = round(sum(starts) / len(starts)) if starts else round(float(run['startup_s']))
    act = round(sum(acts) / len(acts)) if acts else 1
    cost = next((r['standby_cost'] for r in res if r.get('standby_cost') is not None), None)
    cap = float(run['capacity_rps']) * float(run['step']) / float(run['clock_rate'])
    spec = os.path.join(W, 'tide' if 'tide' in pols else pols[0], 'web.yaml')
    cmd = [tidectl, 'simulate', '--data', os.path.join(W, 'simulate.csv'), '--spec', spec,
           '--eval-days', str(run['days']), '--capacity', '%g' % cap, '--cold-start', str(cold),
           '--activation', str(act), '--json']
    if cost is not None:
        cmd += ['--standby-cost', '%.4f' % cost]
    rate = float(run['clock_rate'])
    svc_cap = svc['rps'] * float(run['step']) / rate
    if abs(svc_cap - cap) > 1e-9 * cap:
        cmd += ['--service-capacity', '%g' % svc_cap]
    slo_delay = bound_ms / 1000.0 * rate
    cmd += ['--slo-delay', '%.3f' % slo_delay]
    qt = haproxy_timeout_s(W, pols, rate)
    if qt:
        cmd += ['--queue-timeout', '%g' % qt]
    cmd += ['--minutes', os.path.join(W, 'simulate-minutes.csv')]  # per policy and minute
    win = window_s(run.get('utilization_window'))  # the query's range, on the virtual clock
    if win:
        cmd += ['--metric-window', '%d' % round(win)]
    # the control plane's settle rule for executor-managed replicas (scaling/hpa.c
    # hpa_settle_seconds, which observe_replica_pod uses): one online for less than
    # max(2 x sync, sync + the utilization's window) is a not-ready pod; simulate computes it
    cmd += ['--settle', 'rule']
    if 'static' in pols:  # the testbed's static fleet (sized on the scaled trace's peak)
        on = sorted(int(f['online']) for f in csv.DictReader(open(os.path.join(W, 'static', 'fleet.csv')))
                    if T0 <= int(f['trace_s']) < T1)
        if on:
            cmd += ['--static-replicas', str(on[len(on) // 2])]
    for p in pols:
        cmd += ['--policy', p]
    out = subprocess.run(cmd, capture_output=True, text=True)
    if out.returncode != 0:
        sys.exit('e2e_score: %s failed (exit %d): %s' % (' '.join(cmd), out.returncode, out.stderr.strip()))
    sim = json.loads(out.stdout)
    if isinstance(sim, dict):
        sim = sim.get('results', [sim])
    settle = sim[0].get('settle_s') if sim else None
    json.dump({'results': sim, 'cold_start_s': cold, 'starts': len(starts), 'activation_s': act,
               'activations': len(acts), 'capacity': cap, 'standby_cost': cost, 'slo_delay_s': slo_delay,
               'slo_ms': bound_ms, 'queue_timeout_s': qt, 'metric_window_s': win, 'settle_s': settle,
               'service_capacity': svc_cap, 'service_rps': svc['rps'], 'service_source': svc['source'],
               'service_minutes': svc['minutes'], 'demand': demand if offered is not None else 'trace',
               'command': cmd},
              open(os.path.join(W, 'simulate.json'), 'w'), indent=1)


def compare(W, res, bound, run):
    """The simulator's figures (W/simulate.json, when there) against the testbed's."""
    path = os.path.join(W, 'simulate.json')
    if not os.path.exists(path):
        return
    sj = json.load(open(path))
    by = {r['policy']: r for r in res}
    dev = lambda x, y: (x - y) / y if y else None
    for s in sj['results']:
        r = by.get(s['policy'])
        if not r:
            continue
        r['simulate'] = {k: s[k] for k in ('overload_minutes', 'above_target_minutes', 'replica_minutes',
                                           'standby_replica_minutes', 'scale_actions')}
        r['simulate'].update({'cold_start_s': sj['cold_start_s'], 'activation_s': sj['activation_s'],
                              'capacity': sj['capacity'],
                              'overload_vs_slo_violation': dev(s['overload_minutes'], r['slo_violation_minutes']),
                              'replica_minutes_vs_testbed': dev(s['replica_minutes'], r['replica_minutes'])})
        # the simulator's SLO minutes (its fluid queue against the same bound), when it assessed
        # them with this scoring's bound (an older simulate.json has none: not compared)
        if s.get('slo_violation_minutes') is not None and sj.get('slo_ms') is not None and \
                abs(sj['slo_ms'] - bound) < 1e-6:
            # a --minutes segment: the simulator evaluated the whole day ending with it; only
            # the segment's minutes are compared (and not the day's replica-minutes)
            T0, T1 = int(run['t0']), int(run['t1'])
            sim_min = set(int(t) for t in s.get('slo_violation_times') or [] if T0 <= int(t) < T1)
            if int(run.get('minutes_arg') or 0):
                r['simulate']['replica_minutes_vs_testbed'] = None
            bed_min = set(r['slo_violation_times'])
            r['simulate'].update({
                'slo_violation_minutes': len(sim_min), 'slo_delay_s': sj['slo_delay_s'],
                'slo_ms': sj['slo_ms'], 'queue_timeout_s': sj.get('queue_timeout_s'),
                'metric_window_s': sj.get('metric_window_s'), 'backlog_max_s': s.get('backlog_max_s'),
                'service_capacity': sj.get('service_capacity'), 'service_source': sj.get('service_source'),
                'service_minutes': sj.get('service_minutes'), 'demand': sj.get('demand', 'trace'),
                'queue_minutes': s.get('queue_minutes'), 'failed_traffic': s.get('failed_traffic'),
                'slo_violation_vs_testbed': dev(len(sim_min), r['slo_violation_minutes']),
                'slo_minutes_both': len(sim_min & bed_min),
                'slo_minutes_testbed_only': sorted(bed_min - sim_min),
                'slo_minutes_simulate_only': sorted(sim_min - bed_min),
                # a minute the testbed flags counts as seen when the simulator flags it or one
                # of its neighbours (a minute's boundary falls between two seconds of a queue)
                'slo_minutes_within_1': sum(1 for m in bed_min if {m - 60, m, m + 60} & sim_min)})
            fq = queue_check(W, run, r['policy'], sj, bed_min)
            if fq:
                r['simulate']['queue_on_testbed_fleet'] = fq


def queue_check(W, run, pol, sj, bed_min):
    """The world model apart from the decisions: the simulator's queue replayed on the testbed's
    own fleet (online replicas per second from the executor's actions) with the requests offered
    in each trace second, the simulator's service rate, queue timeout and SLO wait; its SLO
    minutes against the testbed's."""
    D = os.path.join(W, pol)
    if not os.path.exists(os.path.join(D, 'requests.csv')) or not sj.get('slo_delay_s'):
        return None
    T0, T1, step = int(run['t0']), int(run['t1']), float(run['step'])
    arr = [0] * (T1 - T0)
    for due, _, _ in request_records(os.path.join(D, 'requests.csv'), T0, T1):
        arr[int(due) - T0] += 1
    online = fleet_online(D, T0, T1)
    if pol == 'static' and not any(online):  # the static fleet is not started by the executor
        fl = [int(f['online']) for f in csv.DictReader(open(os.path.join(D, 'fleet.csv')))
              if T0 <= int(f['trace_s']) < T1]
        online = [sorted(fl)[len(fl) // 2] if fl else 0] * (T1 - T0)
    # the rebuilt fleet against the harness's samples (one per real second)
    samples = [(int(f['trace_s']), int(f['online'])) for f in csv.DictReader(open(os.path.join(D, 'fleet.csv')))
               if T0 <= int(f['trace_s']) < T1]
    agree = sum(1 for t, o in samples if online[t - T0] == o)
    wait, failed = queue_on_fleet(arr, online, sj['service_capacity'] / step, sj.get('queue_timeout_s'))
    mins = set()
    for k in range((T1 - T0) // 60):
        sl = slice(60 * k, 60 * k + 60)
        traffic, fl = sum(arr[sl]), sum(failed[sl])
        late = sum(a for a, w in zip(arr[sl], wait[sl]) if a and w > sj['slo_delay_s'])
        if traffic > 0 and (fl > 0.001 * traffic or (traffic - fl > 0 and late > 0.01 * (traffic - fl))):
            mins.add(T0 + 60 * k)
    return {'slo_violation_minutes': len(mins), 'slo_minutes_both': len(mins & bed_min),
            'slo_minutes_within_1': sum(1 for m in bed_min if {m - 60, m, m + 60} & mins),
            'slo_minutes_testbed_only': sorted(bed_min - mins), 'slo_minutes_queue_only': sorted(mins - bed_min),
            'backlog_max_s': round(max(w for a, w in zip(arr, wait) if a) if any(arr) else 0, 2),
            'fleet_samples_agreeing': '%d/%d' % (agree, len(samples))}


def table(res, ref, bound, a, target):
    print('%-8s %10s %9s %10s %10s %9s %9s %7s' % ('policy', 'slo_viol', 'failed', 'requests', 'rep_min',
                                                   'standby', 'p99_ms', 'actions'))
    for r in res:
        print('%-8s %10d %9d %10d %10.1f %9.1f %9.1f %7d' % (
            r['policy'], r['slo_violation_minutes'], r['failed_requests'], r['requests'], r['replica_minutes'],
            r['standby_minutes'], r['p99_ms'], r['scale_actions']))
    for r in res:
        print('%s: %d SLO minutes (%d by failed requests), %d with each minute\'s own p99; %d minutes pooled '
              'to %d requests' % (r['policy'], r['slo_violation_minutes'], r['slo_violation_minutes_failed'],
                                  r['slo_violation_minutes_unpooled'], r['minutes_pooled'], r['slo_min_requests']))
        if r['fleet_cpu_cores_max'] is not None:
            print('%s: fleet CPU %.3f cores mean, %.3f max (1 s samples); memory %.1f MB max' % (
                r['policy'], r['fleet_cpu_cores_mean'], r['fleet_cpu_cores_max'],
                (r['fleet_memory_bytes_max'] or 0) / 1e6))
        if r['standby_cost'] is not None:
            print('%s: a standby minute costs %.4f of an online one (node shares; CPU %s, memory %s of an online '
                  'replica\'s, measured); standby counted as online: %.1f replica-minutes' % (
                      r['policy'], r['standby_cost'], r['standby_cpu_ratio'], r['standby_memory_ratio'],
                      r['replica_minutes_standby_as_online']))
        print('%s: %d of %d minutes under %g%% of the online replicas\' nominal capacity missed the SLO; load '
              'average %s .. %s; CPU priority: %s' % (
                  r['policy'], r['slo_violation_minutes_below_target'], r['minutes_below_target'], target,
                  ' '.join(r['load_average_start'] or []), ' '.join(r['load_average_end'] or []), r['cpu_priority']))
    print('SLO: p99 <= %.1f ms (%s; reference p99 %.1f ms over %d requests) and failed <= 0.1%% per trace '
          'minute; a minute with fewer than %d answered requests takes its p99 over the trailing minutes too' % (
              bound, 'fixed by --slo-ms' if a.slo_ms > 0 else '4 x the reference', ref['p99_ms'], ref['served'],
              a.min_requests))
    sims = [r for r in res if 'simulate' in r]
    if sims:
        s0 = sims[0]['simulate']
        print('tidectl simulate (capacity %g per trace step, cold start %d s, activation %d s):' % (
            s0['capacity'], s0['cold_start_s'], s0['activation_s']))
        print('%-8s %22s %22s' % ('policy', 'overload sim/testbed', 'replica-min sim/testbed'))
        print('(overload: the simulator\'s minutes of demand above the online capacity against the testbed\'s SLO '
              'minutes)')
        f = lambda x: '%+.0f%%' % (100 * x) if x is not None else 'n/a'
        for r in sims:
            s = r['simulate']
            print('%-8s %9.1f / %-5d %5s %9.1f / %-7.1f %5s' % (
                r['policy'], s['overload_minutes'], r['slo_violation_minutes'], f(s['overload_vs_slo_violation']),
                s['replica_minutes'], r['replica_minutes'], f(s['replica_minutes_vs_testbed'])))
        q = [r for r in sims if 'slo_violation_minutes' in r['simulate']]
        if q:
            s0 = q[0]['simulate']
            print('tidectl simulate\'s queue (SLO wait %.2f trace s = %.1f ms at rate %g, queue timeout %s trace s, '
                  'utilization window %s s, service %.2f per replica per step, %s over %d minutes; demand: %s):' % (
                      s0['slo_delay_s'], s0['slo_ms'], q[0]['fleet']['clock_rate'], s0['queue_timeout_s'],
                      s0['metric_window_s'], s0['service_capacity'], s0['service_source'], s0['service_minutes'],
                      s0['demand']))
            print('%-8s %22s %6s %9s %10s %10s %12s' % ('policy', 'SLO min sim/testbed', 'dev', 'both', 'bed only',
                                                       'sim only', 'bed within 1'))
            for r in q:
                s = r['simulate']
                print('%-8s %9d / %-10d %6s %9d %10d %10d %12d' % (
                    r['policy'], s['slo_violation_minutes'], r['slo_violation_minutes'],
                    f(s['slo_violation_vs_testbed']), s['slo_minutes_both'], len(s['slo_minutes_testbed_only']),
                    len(s['slo_minutes_simulate_only']), s['slo_minutes_within_1']))
            qf = [r for r in q if 'queue_on_testbed_fleet' in r['simulate']]
            if qf:
                print('the same queue on the testbed\'s own fleet and per-second arrivals (the world model apart from '
                      'the decisions):')
                for r in qf:
                    x = r['simulate']['queue_on_testbed_fleet']
                    print('%-8s %9d / %-10d %6s %9d %10d %10d %12d   (max wait %.0f s; fleet samples agreeing %s)' % (
                        r['policy'], x['slo_violation_minutes'], r['slo_violation_minutes'],
                        f((x['slo_violation_minutes'] - r['slo_violation_minutes']) / r['slo_violation_minutes']
                          if r['slo_violation_minutes'] else None), x['slo_minutes_both'],
                        len(x['slo_minutes_testbed_only']), len(x['slo_minutes_queue_only']),
                        x['slo_minutes_within_1'], x['backlog_max_s'], x['fleet_samples_agreeing']))


if __name__ == '__main__':
    main()
