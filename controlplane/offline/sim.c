/* sim.c: the trace simulator behind `tidectl simulate` (see sim.h). */
#include "offline/sim.h"

#include "scaling/controller.h"
#include "svgplot.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define REQUEST 1000.0 /* per-pod resource request in the simulated metrics (millicores) */

void sim_config_defaults(sim_config *c) {
    memset(c, 0, sizeof *c);
    c->eval_days = 7;
    c->cold_start = 120;
    c->activation = 1;
    c->standby_cost = 0.1;
}

const char *sim_policy_name(sim_policy p) {
    return p == SIM_TIDE ? "tide" : p == SIM_HPA ? "hpa" : p == SIM_STATIC ? "static" : "?";
}

int sim_policy_parse(const char *name, sim_policy *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(name, sim_policy_name((sim_policy)i)) == 0) {
            *out = (sim_policy)i;
            return 0;
        }
    return -EINVAL;
}

void sim_queue_second(sim_queue *q, double arrivals, double capacity, double timeout,
                      sim_second *out) {
    memset(out, 0, sizeof *out);
    double a = arrivals > 0 ? arrivals : 0, c = capacity > 0 ? capacity : 0;
    if (c <= 0) { /* no server up: the load balancer refuses at once; the backlog waits */
        out->failed = a;
        return;
    }
    if (timeout > 0) {
        double limit = timeout * c; /* the most traffic that can wait at most timeout */
        if (q->backlog > limit) {   /* the capacity fell: the waiting traffic past it times out */
            out->failed += q->backlog - limit;
            out->dropped = q->backlog - limit;
            q->backlog = limit;
        }
        double room = limit + c - q->backlog; /* accepted arrivals wait <= timeout */
        out->accepted = a < room ? a : room;
        out->failed += a - out->accepted;
    } else {
        out->accepted = a;
    }
    double total = q->backlog + out->accepted;
    out->served = total < c ? total : c;
    q->backlog = total - out->served;
    if (q->backlog < 1e-9 * c) q->backlog = 0; /* demand exactly at capacity leaves no queue */
    out->wait = q->backlog / c;
}

void sim_fifo_init(sim_fifo *f, size_t max, sim_fifo_emit emit, void *ctx) {
    memset(f, 0, sizeof *f);
    f->max = max ? max : 1;
    f->emit = emit;
    f->ctx = ctx;
}

static void fifo_pop(sim_fifo *f, double wait) {
    sim_fifo_entry *x = &f->e[f->head];
    f->emit(f->ctx, x->t, x->amount, wait);
    f->head = (f->head + 1) % f->cap;
    f->n--;
}

int sim_fifo_second(sim_fifo *f, int64_t t, double accepted, double dropped, double served,
                    double capacity, double backlog, double est) {
    f->cum_a += accepted > 0 ? accepted : 0;
    if (accepted > 0 && !(backlog > 0)) {
        f->emit(f->ctx, t, accepted, 0); /* all served within their own second */
    } else if (accepted > 0) {
        if (f->n == f->max) fifo_pop(f, f->e[f->head].est); /* bounded: the oldest guesses */
        if (f->n == f->cap) {
            size_t cap = f->cap ? f->cap * 2 : 256;
            if (cap > f->max) cap = f->max;
            sim_fifo_entry *ne = malloc(cap * sizeof *ne);
            if (!ne) return -ENOMEM;
            for (size_t k = 0; k < f->n; k++)
                ne[k] = f->e[(f->head + k) % f->cap];
            free(f->e);
            f->e = ne;
            f->cap = cap;
            f->head = 0;
        }
        f->e[(f->head + f->n) % f->cap] = (sim_fifo_entry){t, f->cum_a, accepted, est};
        f->n++;
    }
    /* this second's departures reach the oldest entries' targets: they leave within it (the
     * newest entry, t's own, waits: its target is beyond what has departed) */
    double drop = dropped > 0 ? dropped : 0, dep = drop + (served > 0 ? served : 0);
    while (f->n > 0) {
        sim_fifo_entry *x = &f->e[f->head];
        if (x->t >= t) break;
        double eps = 1e-9 * (x->target > 1 ? x->target : 1);
        if (f->cum_d + dep < x->target - eps) break;
        /* the drops at the second's start, then service at the capacity's rate */
        double left = x->target - f->cum_d - drop;
        double frac = left <= 0 ? 0 : capacity > 0 ? left / capacity : 1;
        if (frac > 1) frac = 1;
        fifo_pop(f, (double)(t - x->t - 1) + frac);
    }
    f->cum_d += dep;
    return 0;
}

void sim_fifo_finish(sim_fifo *f) {
    while (f->n > 0)
        fifo_pop(f, f->e[f->head].est);
    free(f->e);
    f->e = NULL;
    f->cap = 0;
}

int sim_minute_violates(double traffic, double late, double failed) {
    if (!(traffic > 0)) return 0;
    if (failed > 0.001 * traffic) return 1;
    double answered = traffic - failed;
    return answered > 0 && late > 0.01 * answered;
}

void sim_result_fini(sim_result *r) {
    if (!r) return;
    free(r->slo_minutes);
    r->slo_minutes = NULL;
    free(r->minutes);
    r->minutes = NULL;
    r->nminutes = 0;
    r->n_slo_minutes = 0;
    free(r->demand);
    free(r->forecast);
    free(r->online);
    free(r->standby);
    r->demand = r->forecast = NULL;
    r->online = r->standby = NULL;
}

/* Pending completions of START/ACTIVATE actions (HPA pods use the same queue). */
typedef struct pending {
    int64_t at;
    char replica[48];
    planner_action_kind kind;
} pending;

typedef struct fleet {
    pending *q;
    size_t n, cap;
} fleet;

static int fleet_push(fleet *f, int64_t at, const char *id, planner_action_kind k) {
    if (f->n == f->cap) {
        size_t cap = f->cap ? f->cap * 2 : 64;
        pending *nq = realloc(f->q, cap * sizeof *nq);
        if (!nq) return -ENOMEM;
        f->q = nq;
        f->cap = cap;
    }
    pending *p = &f->q[f->n++];
    p->at = at;
    p->kind = k;
    snprintf(p->replica, sizeof p->replica, "%s", id);
    return 0;
}

/* Replicas that came online lately (the settle rule: not-ready pods for a while). */
typedef struct settling {
    char id[48];
    int64_t since;
} settling;

static void settle_remove(settling *s, size_t *n, const char *id) {
    for (size_t i = 0; i < *n; i++)
        if (strcmp(s[i].id, id) == 0) {
            s[i] = s[--*n];
            return;
        }
}

static void settle_add(settling *s, size_t *n, size_t cap, const char *id, int64_t t) {
    if (strcmp(id, "pod") != 0) settle_remove(s, n, id); /* HPA pods share one name */
    if (*n >= cap) return;
    snprintf(s[*n].id, sizeof s[*n].id, "%s", id);
    s[(*n)++].since = t;
}

/* Drops what settled by t; returns how many are still settling. */
static int settle_count(settling *s, size_t *n, int64_t t, int settle_s) {
    for (size_t i = 0; i < *n;)
        if (t - s[i].since >= settle_s)
            s[i] = s[--*n];
        else
            i++;
    return (int)*n;
}

/* The FIFO waits go to the minute of their arrival. At most this many seconds of arrivals wait
 * at once in the accounting (2^20: 12 days of a standing queue, 32 MB). */
#define FIFO_MAX ((size_t)1 << 20)

typedef struct wait_acct {
    const sim_config *cfg;
    sim_result *res;
    double *perm;
    int64_t t0;
} wait_acct;

static void wait_account(void *ctx, int64_t t, double amount, double wait) {
    wait_acct *w = ctx;
    double *pm = &w->perm[(size_t)(t - w->t0) / 60 * SIM_MINUTE_FIELDS];
    if (w->cfg->slo_delay > 0 && wait > w->cfg->slo_delay) pm[SIM_M_LATE] += amount;
    if (wait > pm[SIM_M_WAIT]) pm[SIM_M_WAIT] = wait;
    if (wait > w->res->backlog_max_s) w->res->backlog_max_s = wait;
}

static double now_secs(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int sim_run(const sim_config *cfg, const workload_spec *spec_in, const sim_trace *tr,
            sim_policy policy, sim_result *res, char *err, size_t errlen) {
    memset(res, 0, sizeof *res);
    res->policy = policy;
    if (tr->step <= 0 || tr->n < 2) {
        snprintf(err, errlen, "trace: needs at least 2 points on a regular step");
        return -EINVAL;
    }
    size_t neval = (size_t)((int64_t)cfg->eval_days * 86400 / tr->step);
    size_t min_train = (size_t)(86400 / tr->step);
    if (cfg->eval_days <= 0 || neval + min_train > tr->n) {
        snprintf(err, errlen,
                 "trace has %zu points of %llds: too short to evaluate %d days after at least one "
                 "day of training",
                 tr->n, (long long)tr->step, cfg->eval_days);
        return -EINVAL;
    }
    size_t i0 = tr->n - neval;
    workload_spec spec = *spec_in;
    double target = spec.target_utilization;
    double peak = 0;
    for (size_t i = i0; i < tr->n; i++)
        if (tr->y[i] > peak) peak = tr->y[i];
    double cap = cfg->capacity;
    if (!(cap > 0)) {
        if (cfg->peak_replicas <= 0) {
            snprintf(err, errlen, "give --capacity C or --peak-replicas N");
            return -EINVAL;
        }
        cap = peak / (target / 100.0 * cfg->peak_replicas);
    }
    if (!(cap > 0) || !isfinite(cap)) {
        snprintf(err, errlen, "capacity %g is not usable (the evaluated span's peak is %g)", cap,
                 peak);
        return -EINVAL;
    }
    res->capacity = cap;
    /* what a replica really serves: the queue's rate and the utilization's denominator */
    double svc = cfg->service_capacity > 0 ? cfg->service_capacity : cap;
    res->service_capacity = svc;
    res->static_replicas = portrait_replicas_for(peak, cap, target);
    if (cfg->static_replicas > 0) res->static_replicas = cfg->static_replicas;
    if (res->static_replicas < spec.min_replicas) res->static_replicas = spec.min_replicas;
    res->evaluated_minutes = (double)neval * tr->step / 60.0;
    res->t0 = tr->t0 + (int64_t)i0 * tr->step;
    res->step = tr->step;
    res->npts = neval;
    if (cfg->record) {
        res->demand = malloc(neval * sizeof(double));
        res->forecast = malloc(neval * sizeof(double));
        res->online = calloc(neval, sizeof(float));
        res->standby = calloc(neval, sizeof(float));
        if (!res->demand || !res->forecast || !res->online || !res->standby) {
            sim_result_fini(res);
            return -ENOMEM;
        }
        for (size_t i = 0; i < neval; i++) {
            res->demand[i] = tr->y[i0 + i];
            res->forecast[i] = NAN;
        }
    }

    /* the controller */
    if (policy == SIM_HPA) { /* the reactive provider alone, Kubernetes default behavior */
        workload_spec d;
        wl_defaults(&d);
        spec.up = d.up;
        spec.down = d.down;
        spec.n_providers = 1;
        memset(&spec.providers[0], 0, sizeof spec.providers[0]);
        spec.providers[0].type = WL_PROV_REACTIVE;
        snprintf(spec.providers[0].name, sizeof spec.providers[0].name, "reactive");
        spec.n_checkers = 0;
    }
    /* a predictive provider without a capacityPerReplica of its own gets the simulated fleet's
     * (the live control plane would learn it); one the spec sets is used as the daemon uses it */
    for (int i = 0; i < spec.n_providers; i++)
        if (spec.providers[i].type == WL_PROV_PREDICTIVE &&
            !(spec.providers[i].capacity_per_replica > 0))
            spec.providers[i].capacity_per_replica = cap;
    spec.mode = WL_MODE_AUTO;
    spec.paused = 0;
    controller *ctl = NULL;
    portrait_engine *eng = NULL;
    planner *pl = NULL;
    double *usage = NULL; /* per ready pod: they share the demand */
    fleet fl = {0};
    int rc = 0;
    /* the queue, and per minute of the evaluated span: traffic, late traffic, failed traffic */
    sim_queue queue = {0};
    size_t nmin = (size_t)((tr->t0 + (int64_t)tr->n * tr->step - res->t0 + 59) / 60);
    double *perm = calloc(nmin * SIM_MINUTE_FIELDS, sizeof *perm);
    /* the busy share of the online capacity per second, for the metric window */
    int mwin = cfg->metric_window > 0 ? cfg->metric_window : 0;
    double *busy = mwin ? calloc((size_t)mwin, sizeof *busy) : NULL;
    double busy_sum = 0;
    long nbusy = 0;
    /* the waits, first come first served with the capacity that came */
    wait_acct wa = {cfg, res, perm, res->t0};
    sim_fifo fifo;
    sim_fifo_init(&fifo, FIFO_MAX, wait_account, &wa);
    size_t settle_cap = (size_t)spec.max_replicas * 2 + 64, nsettle = 0;
    settling *settle = cfg->settle_seconds > 0 ? calloc(settle_cap, sizeof *settle) : NULL;
    if (!perm || (mwin && !busy) || (cfg->settle_seconds > 0 && !settle)) {
        rc = -ENOMEM;
        goto out;
    }
    if (policy != SIM_STATIC) {
        if ((rc = controller_new(&ctl, &spec, policy == SIM_HPA ? CONTROLLER_NO_PLANNER : 0)) < 0)
            goto out;
        eng = controller_engine(ctl);
        pl = controller_planner(ctl);
        usage = malloc(((size_t)spec.max_replicas * 2 + 8) * sizeof *usage);
        if (!usage) {
            rc = -ENOMEM;
            goto out;
        }
    }
    if (policy == SIM_TIDE) {
        fc_series hist = {tr->y, i0, tr->t0, tr->step, 0};
        double t = now_secs();
        char why[256] = "";
        if (portrait_train(eng, &hist, res->t0, why, sizeof why) < 0 && cfg->verbose)
            fprintf(stderr, "simulate: %s (the predictive provider falls back to reactive)\n", why);
        res->fit_seconds = now_secs() - t;
        res->fits = 1;
    }
    /* initial fleet: what the policy wants for the first step's demand at the target */
    int first = portrait_replicas_for(tr->y[i0 > 0 ? i0 - 1 : 0], cap, target);
    if (first < spec.min_replicas) first = spec.min_replicas;
    if (first > spec.max_replicas) first = spec.max_replicas;
    int hpa_ready = 0, hpa_starting = 0; /* the HPA policy's pods */
    if (policy == SIM_STATIC)
        hpa_ready = res->static_replicas;
    else if (policy == SIM_HPA)
        hpa_ready = first;
    else if ((rc = controller_adopt(ctl, first, res->t0)) < 0)
        goto out;

    int64_t tstart = res->t0, tend = tr->t0 + (int64_t)tr->n * tr->step;
    double util_sum = 0;
    long util_n = 0;
    int sync = spec.sync_seconds > 0 ? spec.sync_seconds : 15;
    for (int64_t t = tstart; t < tend; t++) {
        size_t m = (size_t)((t - tr->t0) / tr->step);
        double demand = tr->y[m];
        /* completions due */
        for (size_t i = 0; i < fl.n;) {
            if (fl.q[i].at <= t) {
                if (policy == SIM_TIDE)
                    planner_action_done(pl, fl.q[i].replica, fl.q[i].kind, 1, t);
                else {
                    hpa_starting--;
                    hpa_ready++;
                }
                if (settle) settle_add(settle, &nsettle, settle_cap, fl.q[i].replica, t);
                fl.q[i] = fl.q[--fl.n];
            } else {
                i++;
            }
        }
        planner_counts c = {0};
        if (policy == SIM_TIDE)
            planner_counts_get(pl, &c);
        else {
            c.online = hpa_ready;
            c.starting = hpa_starting;
        }
        /* the controller */
        if (policy != SIM_STATIC && (t - tstart) % sync == 0) {
            double util = c.online > 0 ? demand / (c.online * svc) : 1.0;
            if (util > 1.0) util = 1.0;
            /* with a metric window, what the pods served (a queue keeps them busy after the
             * demand fell), averaged over it */
            if (mwin && nbusy > 0) util = busy_sum / (double)(nbusy < mwin ? nbusy : mwin);
            /* a replica started ahead of demand is outside the scaled set until claimed */
            int unready = c.starting - c.starting_ahead + c.activating;
            /* the settle rule: a replica online only lately is a not-ready pod */
            int just = settle ? settle_count(settle, &nsettle, t, cfg->settle_seconds) : 0;
            if (just > c.online) just = c.online;
            int ready = c.online - just;
            for (int i = 0; i < ready; i++)
                usage[i] = util * REQUEST;
            fc_series ctx = {tr->y, m, tr->t0, tr->step, 0}; /* the complete steps before now */
            controller_obs obs = {t,
                                  usage,
                                  ready,
                                  unready + just,
                                  REQUEST,
                                  ready || !just ? util * 100 : NAN,
                                  c.online + unready,
                                  policy == SIM_TIDE ? &ctx : NULL};
            controller_out co;
            if ((rc = controller_step(ctl, &obs, &co)) < 0) goto out;
            const portrait *pt = co.portrait;
            if (policy == SIM_TIDE && co.fallback) {
                res->fallback_syncs++;
                res->guard_syncs += co.guard;
                if (!res->first_fallback[0] && co.fallback_reason)
                    snprintf(res->first_fallback, sizeof res->first_fallback, "%s",
                             co.fallback_reason);
            }
            if (policy == SIM_TIDE && co.train) { /* retrainSeconds passed, as in the daemon */
                double ft = now_secs();
                char why[256] = "";
                if (portrait_train(eng, &ctx, t, why, sizeof why) < 0 && cfg->verbose)
                    fprintf(stderr, "simulate: refit at %lld: %s\n", (long long)t, why);
                res->fit_seconds += now_secs() - ft;
                res->fits++;
            }
            if (cfg->record && (t - tr->t0) % tr->step < sync && !isnan(pt->traffic[0]))
                res->forecast[m - i0] = pt->traffic[0];
            if (policy == SIM_HPA) {
                int cur = hpa_ready + hpa_starting, want = pt->needed[0];
                if (want > cur) {
                    for (int i = 0; i < want - cur; i++)
                        if ((rc = fleet_push(&fl, t + cfg->cold_start, "pod", ACT_START)) < 0)
                            goto out;
                    hpa_starting += want - cur;
                } else if (want < cur) { /* Kubernetes deletes not-ready pods first */
                    int del = cur - want;
                    while (del > 0 && hpa_starting > 0) { /* the newest pending start goes */
                        size_t newest = 0;
                        for (size_t i = 1; i < fl.n; i++)
                            if (fl.q[i].at > fl.q[newest].at) newest = i;
                        fl.q[newest] = fl.q[--fl.n];
                        hpa_starting--;
                        del--;
                    }
                    hpa_ready -= del;
                    for (int k = 0; settle && k < del && nsettle > 0; k++) { /* newest first */
                        size_t newest = 0;
                        for (size_t i = 1; i < nsettle; i++)
                            if (settle[i].since > settle[newest].since) newest = i;
                        settle[newest] = settle[--nsettle];
                    }
                }
                if (want != cur) {
                    res->scale_actions++;
                    res->replica_actions += abs(want - cur);
                }
            } else {
                const planner_action *acts = co.actions;
                size_t nacts = co.n_actions;
                if (nacts) res->scale_actions++;
                res->replica_actions += (long)nacts;
                for (size_t i = 0; i < nacts; i++) {
                    const planner_action *a = &acts[i];
                    if (a->kind == ACT_START)
                        rc = fleet_push(&fl, t + cfg->cold_start, a->replica, a->kind);
                    else if (a->kind == ACT_ACTIVATE)
                        rc = fleet_push(&fl, t + cfg->activation, a->replica, a->kind);
                    else
                        planner_action_done(pl, a->replica, a->kind, 1, t);
                    if (rc < 0) goto out;
                    if (settle && a->kind == ACT_RESTORE)
                        settle_add(settle, &nsettle, settle_cap, a->replica, t);
                    else if (settle && a->kind == ACT_CUTOFF)
                        settle_remove(settle, &nsettle, a->replica);
                }
                planner_counts_get(pl, &c);
            }
        }
        /* accounting for [t, t+1) */
        double online_cap = c.online * svc;
        sim_second sec;
        sim_queue_second(&queue, demand / (double)tr->step, online_cap / (double)tr->step,
                         cfg->queue_timeout, &sec);
        if (mwin) { /* the ring of the last mwin seconds */
            double b = online_cap > 0 ? sec.served / (online_cap / (double)tr->step) : 1.0;
            size_t slot = (size_t)(nbusy % mwin);
            if (nbusy >= mwin) busy_sum -= busy[slot];
            busy[slot] = b;
            busy_sum += b;
            nbusy++;
        }
        if ((rc = sim_fifo_second(&fifo, t, sec.accepted, sec.dropped, sec.served,
                                  online_cap / (double)tr->step, queue.backlog, sec.wait)) < 0)
            goto out;
        double *pm = &perm[(size_t)(t - tstart) / 60 * SIM_MINUTE_FIELDS];
        pm[SIM_M_TRAFFIC] += demand / (double)tr->step;
        pm[SIM_M_FAILED] += sec.failed;
        pm[SIM_M_SERVED] += sec.served;
        pm[SIM_M_ONLINE] += c.online / 60.0;
        res->traffic += demand / (double)tr->step;
        res->failed += sec.failed;
        if (queue.backlog > 0) res->queue_minutes += 1.0 / 60;
        /* a relative epsilon: demand exactly at capacity (the static policy at the peak) is not
         * above */
        if (demand > online_cap * (1 + 1e-9)) res->overload_minutes += 1.0 / 60;
        if (demand > online_cap * target / 100.0 * (1 + 1e-9))
            res->above_target_minutes += 1.0 / 60;
        int running = c.online + c.starting + c.activating + c.cutoff;
        res->replica_minutes += (running + c.standby * cfg->standby_cost) / 60.0;
        res->online_minutes += c.online / 60.0;
        res->standby_minutes += c.standby / 60.0;
        if (c.online > res->peak_online) res->peak_online = c.online;
        if (online_cap > 0) {
            util_sum += fmin(1.0, demand / online_cap);
            util_n++;
        }
        if (cfg->record) {
            res->online[m - i0] += (float)c.online / (float)tr->step;
            res->standby[m - i0] += (float)c.standby / (float)tr->step;
        }
    }
    res->mean_utilization = util_n ? 100.0 * util_sum / util_n : 0;
    sim_fifo_finish(&fifo); /* what waits at the span's end: the estimate at arrival */
    if (cfg->slo_delay > 0) {
        res->slo_assessed = 1;
        size_t nv = 0;
        for (size_t k = 0; k < nmin; k++) {
            double *pm = &perm[k * SIM_MINUTE_FIELDS];
            pm[SIM_M_VIOLATION] =
                sim_minute_violates(pm[SIM_M_TRAFFIC], pm[SIM_M_LATE], pm[SIM_M_FAILED]);
            nv += pm[SIM_M_VIOLATION] > 0;
        }
        if (nv && !(res->slo_minutes = malloc(nv * sizeof *res->slo_minutes))) {
            rc = -ENOMEM;
            goto out;
        }
        for (size_t k = 0; k < nmin; k++)
            if (perm[k * SIM_MINUTE_FIELDS + SIM_M_VIOLATION] > 0)
                res->slo_minutes[res->n_slo_minutes++] = tstart + (int64_t)k * 60;
        res->slo_violation_minutes = (double)res->n_slo_minutes;
    }
    if (policy == SIM_TIDE) {
        for (int i = 0; i < spec.n_providers; i++)
            if (spec.providers[i].type == WL_PROV_PREDICTIVE) {
                const char *used = portrait_model_name(eng, i);
                snprintf(res->model, sizeof res->model, "%s", used ? used : "(none: fit failed)");
                break;
            }
    }
    if (cfg->record) { /* the per-minute figures go to the result */
        res->minutes = perm;
        res->nminutes = nmin;
        perm = NULL;
    }
out:
    sim_fifo_finish(&fifo);
    free(settle);
    free(busy);
    free(perm);
    free(fl.q);
    free(usage);
    controller_free(ctl);
    if (rc < 0) {
        if (!*err) snprintf(err, errlen, "simulation failed: %s", strerror(-rc));
        sim_result_fini(res);
    }
    return rc;
}

/* ---- SVG plot ------------------------------------------------------------------------- */

/* Bucket maxima of n values (double or float) into out (n/stride+1 values): peaks survive
 * the thinning a 1400-pixel plot needs. NaN buckets stay NaN. */
static size_t thin(const double *d, const float *fl, size_t n, size_t stride, double *out) {
    size_t m = 0;
    for (size_t i = 0; i < n; i += stride, m++) {
        double v = NAN;
        for (size_t j = i; j < i + stride && j < n; j++) {
            double x = d ? d[j] : fl[j];
            if (!isnan(x) && (isnan(v) || x > v)) v = x;
        }
        out[m] = v;
    }
    return m;
}

int sim_plot_svg(const char *path, const sim_result *res, size_t nres, char *err, size_t errlen) {
    if (nres == 0 || !res[0].demand || res[0].npts < 2) {
        snprintf(err, errlen, "%s: nothing recorded to plot", path);
        return -EINVAL;
    }
    size_t n = res[0].npts;
    size_t stride = n > 2000 ? (n + 1999) / 2000 : 1, m = (n + stride - 1) / stride;
    double *buf = malloc(m * (3 + 2 * nres) * sizeof *buf);
    svg_series *ser = calloc(2 + 2 * nres, sizeof *ser);
    svg_panel *pan = calloc(1 + nres, sizeof *pan);
    char(*titles)[160] = calloc(1 + nres, sizeof *titles);
    int rc = 0;
    if (!buf || !ser || !pan || !titles) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
        goto out;
    }
    double *t = buf, *dem = buf + m, *fc = buf + 2 * m;
    for (size_t k = 0; k < m; k++)
        t[k] = (double)(res[0].t0 + (int64_t)(k * stride) * res[0].step);
    thin(res[0].demand, NULL, n, stride, dem);
    const double *tide_fc = NULL;
    for (size_t r = 0; r < nres; r++)
        if (res[r].policy == SIM_TIDE && res[r].forecast) tide_fc = res[r].forecast;
    size_t ns = 0;
    ser[ns++] = (svg_series){"demand", "#222222", SVG_LINE, t, dem, NULL, m, 0};
    if (tide_fc) {
        thin(tide_fc, NULL, n, stride, fc);
        ser[ns++] = (svg_series){"forecast (Tide)", "#ff7f0e", SVG_LINE, t, fc, NULL, m, 0};
    }
    char ylabel[96];
    snprintf(ylabel, sizeof ylabel, "traffic per %llds step%s", (long long)res[0].step,
             stride > 1 ? " (max per point)" : "");
    snprintf(titles[0], sizeof titles[0], "demand%s", tide_fc ? " and forecast" : "");
    pan[0] = (svg_panel){titles[0], ylabel, ser, ns, 0, 0};
    for (size_t r = 0; r < nres; r++) {
        double *on = buf + (3 + 2 * r) * m, *sb = on + m;
        thin(NULL, res[r].online, n, stride, on);
        thin(NULL, res[r].standby, n, stride, sb);
        svg_series *ps = &ser[ns];
        ser[ns++] = (svg_series){"online replicas", "#1f5fcc", SVG_STEP, t, on, NULL, m, 0};
        ser[ns++] = (svg_series){"standby replicas", "#2a9a2a", SVG_STEP, t, sb, NULL, m, 0};
        snprintf(titles[1 + r], sizeof titles[1 + r],
                 "policy %s: overload %.0f min, %.0f replica-min", sim_policy_name(res[r].policy),
                 res[r].overload_minutes, res[r].replica_minutes);
        pan[1 + r] = (svg_panel){titles[1 + r], "replicas", ps, 2, 1, 0};
    }
    char title[200], a0[32], a1[32];
    time_t ta = (time_t)res[0].t0, tb = (time_t)(res[0].t0 + (int64_t)(n - 1) * res[0].step);
    struct tm tm;
    gmtime_r(&ta, &tm);
    strftime(a0, sizeof a0, "%Y-%m-%d %H:%M", &tm);
    gmtime_r(&tb, &tm);
    strftime(a1, sizeof a1, "%Y-%m-%d %H:%M", &tm);
    snprintf(title, sizeof title, "tidectl simulate: %s .. %s UTC, %zu steps of %llds", a0, a1, n,
             (long long)res[0].step);
    char *svg = svg_chart(title, pan, 1 + nres, t[0], t[m - 1], 1400, 260);
    if (!svg) {
        snprintf(err, errlen, "%s: out of memory", path);
        rc = -ENOMEM;
        goto out;
    }
    FILE *f = fopen(path, "w");
    int werr = !f;
    if (f) {
        werr = fputs(svg, f) == EOF;
        werr |= fclose(f) != 0;
    }
    if (werr) {
        int e = errno ? errno : EIO;
        snprintf(err, errlen, "%s: %s", path, strerror(e));
        rc = -e;
    }
    free(svg);
out:
    free(buf);
    free(ser);
    free(pan);
    free(titles);
    return rc;
}
