/* sync.c: the workloads' sync loop (see sync.h). */
#include "workloads/sync.h"
#include "workloads/workload_view.h"

#include "cp.h"
#include "exec/executor.h"
#include "log.h"
#include "vclock.h"
#include "query/prom.h"
#include "work.h"
#include "workloads/workloads.h"

#include <time.h>
#include <errno.h>
#include <ev.h>
#include <math.h>
#include <unistd.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Fetches run on a pool of their own (mostly waiting for Prometheus), fits on one sized to
 * the cores (CPU bound). A job that finds its pool full is not started: the workload's next
 * sync tries again. */
#define FETCH_THREADS 8
#define TRAIN_THREADS_MAX 8
#define SYNC_QUEUE_MAX 4096

/* A job on a pool's worker thread (shared/work.h), the first member of train_job and
 * fetch_job; its done callback runs on the loop and takes the results. */
typedef struct wl_job {
    work w; /* first */
    struct cp_workloads *owner;
} wl_job;

/* A fit of one workload's predictive models on a worker thread: the loop never waits for
 * training. The job owns copies of everything it reads; the loop installs the results when
 * the workload (same name and generation) is still there, else drops them. */
typedef struct train_job {
    wl_job job;
    char name[WL_NAME_MAX];
    uint64_t generation;
    workload_spec *spec;
    double *y;
    fc_series hist;
    int64_t hist_src_t0;
    char hist_source[12];
    int64_t now;
    forecaster *f[WL_MAX_PROVIDERS];
    char err[WL_MAX_PROVIDERS][160];
    cap_obs *obs; /* capacity-model observations (NULL: not needed) */
    size_t nobs;
    cap_model *cap; /* fitted capacity model, with its report */
    cap_report cap_rep;
    char cap_err[160];
} train_job;

/* One sync's reads through Prometheus on a worker thread: the loop never waits for HTTP. */
typedef struct fetch_job {
    wl_job job;
    char name[WL_NAME_MAX];
    uint64_t generation;
    workload_spec *spec;
    observe_result *o;
    observe_prev_hist *prev; /* the last history, for an incremental read (NULL: whole) */
    prom *prom;
    int64_t started_ms; /* monotonic */
} fetch_job;

struct sync_loop {
    struct cp_workloads *w;
    ev_timer tick;
    ev_timer more; /* a tick's builds left over: continued after the loop's other events */
    work_pool *train, *fetch;
    int stopping; /* sync_stop: finished jobs are dropped, not installed */
};

static log_ratelimit observe_rl = LOG_RATELIMIT_INIT(60000, 5);

static void job_free(train_job *j) {
    for (int i = 0; i < WL_MAX_PROVIDERS; i++)
        fc_free(j->f[i]);
    cap_free(j->cap);
    free(j->obs);
    free(j->spec);
    free(j->y);
    free(j);
}

static void train_run(work *wk) {
    train_job *j = (train_job *)wk;
    for (int i = 0; i < j->spec->n_providers; i++)
        if (j->spec->providers[i].type == WL_PROV_PREDICTIVE)
            portrait_fit(j->spec, i, &j->hist, &j->f[i], j->err[i], sizeof j->err[i]);
    if (j->obs) {
        cap_options opt = {.use_residual = 1, .seed = 1};
        if (cap_fit(&j->cap, j->obs, j->nobs, &opt, &j->cap_rep, j->cap_err, sizeof j->cap_err) < 0)
            j->cap = NULL;
    }
}

static void train_done(work *wk, int status);

/* Does a sync at now want the capacity-model observations read with it? */
static int wants_capacity(const workload_entry *e, int64_t now) {
    if (e->training || !portrait_training_due(controller_engine(e->ctl), now)) return 0;
    for (int i = 0; i < e->run->n_providers; i++)
        if (e->run->providers[i].type == WL_PROV_PREDICTIVE &&
            !(e->run->providers[i].capacity_per_replica > 0))
            return 1;
    return 0;
}

/* Starts a fit on o's traffic history (and its capacity observations, which move to the job). */
static void train_start(struct cp_workloads *w, workload_entry *e, observe_result *o, int64_t now) {
    const fc_series *hist = &o->hist;
    train_job *j = calloc(1, sizeof *j);
    if (!j) return;
    if (o->want_cap) {
        j->obs = o->cap;
        j->nobs = o->ncap;
        o->cap = NULL;
        o->ncap = 0;
        if (!j->nobs)
            snprintf(j->cap_err, sizeof j->cap_err, "%s",
                     o->cap_err[0] ? o->cap_err : "no capacity observations");
    }
    j->spec = malloc(sizeof *j->spec);
    j->y = malloc(hist->n * sizeof *j->y);
    if (!j->spec || !j->y) {
        job_free(j);
        return;
    }
    *j->spec = *e->run;
    memcpy(j->y, hist->y, hist->n * sizeof *j->y);
    j->hist = *hist;
    j->hist.y = j->y;
    j->hist_src_t0 = o->hist_src_t0;
    snprintf(j->hist_source, sizeof j->hist_source, "%s", o->m[OBSERVE_TRAFFIC].source);
    j->now = now;
    j->job.owner = w;
    j->generation = e->generation;
    snprintf(j->name, sizeof j->name, "%s", e->spec.name);
    int rc = work_submit(w->sync->train, &j->job.w, train_run, train_done);
    if (rc != 0) {
        log_limited(
            &observe_rl, LOG_WARN, "workloads", "%s: cannot start training: %s", e->spec.name,
            rc == -EAGAIN ? "too many fits waiting; the next sync tries again" : strerror(-rc));
        job_free(j);
        return;
    }
    e->training = 1;
}

/* Loop side: installs a finished fit (dropped at shutdown or when cancelled). */
static void train_done(work *wk, int status) {
    train_job *j = (train_job *)wk;
    struct cp_workloads *w = j->job.owner;
    int drop = status < 0 || w->sync->stopping;
    workload_entry *e = workload_find(w, j->name);
    if (e && !e->ctl) { /* released meanwhile (another control plane owns it): dropped */
        e->training = 0;
        e = NULL;
    }
    if (e && e->generation == j->generation && !drop) {
        int ok = 0, bad = 0;
        for (int i = 0; i < j->spec->n_providers; i++) {
            if (j->spec->providers[i].type != WL_PROV_PREDICTIVE) continue;
            portrait_install(controller_engine(e->ctl), i, j->f[i], j->now, j->err[i]);
            if (j->f[i])
                ok++;
            else {
                bad++;
                log_warn("workloads", "%s: providers[%d] training: %s", j->name, i, j->err[i]);
            }
            j->f[i] = NULL;
        }
        log_info("workloads", "%s: %d predictive model(s) trained on %zu points (%s), %d failed",
                 j->name, ok, j->hist.n, j->hist_source, bad);
        e->fit = (workload_fit){j->now,
                                j->hist_src_t0,
                                j->hist_src_t0 + (int64_t)(j->hist.n - 1) * j->hist.step,
                                j->hist.n,
                                ok,
                                bad,
                                ""};
        snprintf(e->fit.source, sizeof e->fit.source, "%s", j->hist_source);
        if (j->cap) { /* the engine uses it from now on; the entry owns it */
            portrait_set_capacity_model(controller_engine(e->ctl), j->cap, &j->cap_rep, j->now);
            cap_free(e->cap);
            e->cap = j->cap;
            j->cap = NULL;
            log_info("workloads", "%s: capacity model on %zu observations: %s", j->name, j->nobs,
                     j->cap_rep.reason);
        } else if (j->cap_err[0]) {
            if (!e->cap)
                portrait_set_capacity(controller_engine(e->ctl), NULL, NULL, j->now, 0, j->cap_err);
            log_warn("workloads", "%s: capacity model: %s", j->name, j->cap_err);
        }
        e->training = 0;
    } else if (e && e->generation == j->generation) {
        e->training = 0;
    }
    job_free(j);
}

/* Runs the controller step (scaling/controller.c, as `tidectl simulate` does) for one sync at
 * now on observation o (fresh, or the last good one while a fetch is under way), starts a fit
 * when one is due and hands the actions to the target kind's executor. */
static void decide(struct cp_workloads *w, workload_entry *e, observe_result *o, int64_t now) {
    struct controlplane *cp = w->cp;
    /* a fetch that finished after a step-down decides nothing (checked again here: the
     * observation may have been started by the owner this control plane no longer is) */
    if (!workload_owned_here(w, e, now)) return;
    const workload_spec *s = e->run; /* (built by workload_owned_here) */
    if (workload_has_executor(w, e)) {
        exec_tick(cp, s, e->generation, now * 1000);
        if (e->inventory != 2) { /* nothing is planned before the replicas that exist are known */
            snprintf(e->observe, sizeof e->observe, "waiting for the inventory of replicas%s%.200s",
                     e->inventory_err[0] ? ": " : "", e->inventory_err);
            return;
        }
    }
    int npods = o->util_rc == 0 ? o->npods : 0;
    double usage[OBSERVE_PODS];
    e->observe[0] = 0;
    if (o->util_rc < 0 && o->util_rc != -ENOENT) {
        snprintf(e->observe, sizeof e->observe, "utilization: %.200s", o->m[OBSERVE_UTIL].error);
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: utilization: %s", s->name,
                    o->m[OBSERVE_UTIL].error);
    }
    /* The HPA's pods are the replicas of the scaled set (observe_replica_pod): ready, not
     * ready (starting, activating, online only just: 0% on a scale-up, as in Kubernetes), or
     * left out (cut off, standby: outside the set; counted as not ready before, each standby
     * replica read as a 0% pod and held every scale-up back). A series is one replica's when
     * its cgroup label is the replica's cgroup or, before that is known, ends with its id. */
    uint64_t other[64], other_id[64];
    int other_unready[64];
    int nun = 0;
    if (workload_has_executor(w, e)) {
        cJSON *fl = exec_replicas(cp, s->target.kind, s->name);
        const cJSON *r;
        cJSON_ArrayForEach(r, fl) {
            const cJSON *st = cJSON_GetObjectItemCaseSensitive(r, "state"),
                        *cg = cJSON_GetObjectItemCaseSensitive(r, "cgroup"),
                        *id = cJSON_GetObjectItemCaseSensitive(r, "id"),
                        *since = cJSON_GetObjectItemCaseSensitive(r, "since");
            if (nun == 64 || !cJSON_IsString(st) || !cJSON_IsString(id)) continue;
            observe_pod_class pc = observe_replica_pod(
                st->valuestring, cJSON_IsNumber(since) ? (int64_t)since->valuedouble : -1,
                now * 1000, s->sync_seconds, o->util_window_s);
            /* a replica started ahead of demand is outside the scaled set while it starts */
            if (strcmp(st->valuestring, "Starting") == 0 &&
                planner_is_ahead(controller_planner(e->ctl), id->valuestring))
                pc = OBSERVE_POD_LEFT_OUT;
            if (pc == OBSERVE_POD_READY) continue;
            other[nun] =
                cJSON_IsString(cg) && cg->valuestring[0] ? observe_label_hash(cg->valuestring) : 0;
            other_id[nun] = observe_label_hash(id->valuestring);
            other_unready[nun++] = pc == OBSERVE_POD_UNREADY;
        }
        cJSON_Delete(fl);
    }
    double avg = 0;
    int nready = 0, nunready = 0;
    for (int i = 0; i < npods; i++) {
        int k = 0;
        for (; k < nun && o->util_cgroup[i]; k++)
            if (o->util_cgroup[i] == other[k] || o->util_cgroup_base[i] == other_id[k]) break;
        if (o->util_cgroup[i] && k < nun) {
            nunready += other_unready[k]; /* a cut-off or standby replica's series: left out */
            continue;
        }
        usage[nready++] = o->util[i] * 10; /* percent -> thousandths of a request of 1000 */
        avg += o->util[i];
    }
    const fc_series *trp = o->hist_rc == 0 ? &o->hist : NULL;
    controller_obs cobs = {now,
                           usage,
                           nready,
                           nunready,
                           1000,
                           nready ? avg / nready : NAN,
                           o->replicas_rc == 0 ? o->replicas : -1,
                           trp};
    controller_out out;
    controller_step(e->ctl, &cobs, &out);
    w->decisions++;
    int want_traffic = 0;
    for (int i = 0; i < s->n_providers; i++)
        want_traffic |= s->providers[i].type == WL_PROV_PREDICTIVE;
    if (want_traffic && s->n_traffic > 0) {
        if (trp) {
            if (!e->training && out.train) train_start(w, e, o, now);
        } else {
            snprintf(e->observe, sizeof e->observe, "traffic %.40s: %.180s", s->traffic[0].name,
                     o->hist_rc == -ENODATA ? "no data yet" : o->m[OBSERVE_TRAFFIC].error);
        }
    }
    if (npods > 0 && trp)
        snprintf(e->observe, sizeof e->observe,
                 "%d pod(s) reporting utilization, %zu minutes of traffic", npods, o->hist.n);
    else if (npods > 0 && !want_traffic)
        snprintf(e->observe, sizeof e->observe, "%d pod(s) reporting utilization", npods);
    else if (trp && !e->observe[0])
        snprintf(e->observe, sizeof e->observe,
                 "no utilization samples yet, %zu minutes of traffic", o->hist.n);
    else if (npods == 0 && !e->observe[0])
        snprintf(e->observe, sizeof e->observe, "no utilization samples yet");
    if (e->prom_err[0]) { /* the status names a failing history source first */
        char tmp[sizeof e->observe];
        snprintf(tmp, sizeof tmp, "prometheus: %.200s; %.290s", e->prom_err, e->observe);
        memcpy(e->observe, tmp, sizeof tmp);
    }
    planner *pl = controller_planner(e->ctl);
    char fenced[200];
    int may_act = workload_may_act(e, fenced, sizeof fenced);
    for (size_t i = 0; i < out.n_actions; i++) {
        const planner_action *a = &out.actions[i];
        exec_request rq = {.generation = e->generation, .seq = a->seq, .op = (exec_op)a->kind};
        snprintf(rq.workload, sizeof rq.workload, "%s", s->name);
        snprintf(rq.replica, sizeof rq.replica, "%s", a->replica);
        snprintf(rq.reason, sizeof rq.reason, "%s", a->reason);
        char err[256] = "";
        int rc = -EPERM;
        if (may_act) /* a newer owner holds the fleet: nothing is sent (README "Fencing") */
            rc = exec_apply(cp, s, &rq, err, sizeof err);
        else
            snprintf(err, sizeof err, "%s", fenced);
        workload_record_action(e, now, a, rc == 0 ? "sent to executor" : err);
        if (rc < 0) {
            char text[PLANNER_EVENT_TEXT];
            snprintf(text, sizeof text, "%s %.80s: refused: %.200s", planner_action_name(a->kind),
                     a->replica, err);
            planner_note(pl, now, "action-failed", text);
            planner_action_done(pl, a->replica, a->kind, 0, now);
        }
    }
}

/* A fresh observation arrived (read on the loop, or by a fetch thread): note where each metric
 * came from, let the last good values stand in for failed reads, record Prometheus trouble and
 * recovery as decision events, decide, and keep it as the last good observation. */
static void obs_ready(struct cp_workloads *w, workload_entry *e, observe_result *o, int64_t now) {
    if (o->util_rc == 0) o->util_at = o->now;
    if (o->replicas_rc == 0) o->replicas_at = o->now;
    if (o->hist_rc == 0) o->hist_at = o->now;
    observe_fill_from(o, e->last);
    for (int i = 0; i < OBSERVE_N; i++) {
        e->reads[i] = o->m[i];
        e->reads[i].at = o->now;
    }
    char text[PLANNER_EVENT_TEXT];
    if (o->prom_err[0] && !e->prom_err[0]) {
        snprintf(text, sizeof text,
                 "prometheus: %.200s; using the last good observation and the store", o->prom_err);
        planner_note(controller_planner(e->ctl), now, "prometheus", text);
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: %s", e->spec.name, text);
    } else if (!o->prom_err[0] && e->prom_err[0]) {
        planner_note(controller_planner(e->ctl), now, "prometheus", "prometheus: answering again");
    }
    snprintf(e->prom_err, sizeof e->prom_err, "%s", o->prom_err);
    decide(w, e, o, now);
    if (!e->ctl) { /* released by the ownership check of decide: the observation goes too */
        observe_free(o);
        return;
    }
    workload_view_note(e, now); /* replicas by state for the web page (workload_view.c) */
    observe_free(e->last);
    free(o->cap); /* only a fit started by this sync uses them */
    o->cap = NULL;
    o->want_cap = 0;
    e->last = o;
}

/* ---- fetches from Prometheus on worker threads ---------------------------------------- */

static void fetch_run(work *wk) {
    fetch_job *j = (fetch_job *)wk;
    observe_read(j->job.owner->cp->db, j->prom, j->spec, j->o);
}

static void fetch_done(work *wk, int status);

static void fetch_start(struct cp_workloads *w, workload_entry *e, prom *p, int64_t now) {
    fetch_job *j = calloc(1, sizeof *j);
    if (j) {
        j->spec = malloc(sizeof *j->spec);
        j->o = calloc(1, sizeof *j->o);
    }
    if (!j || !j->spec || !j->o) {
        if (j) {
            free(j->spec);
            free(j->o);
        }
        free(j);
        return;
    }
    *j->spec = *e->run;
    j->o->now = now;
    j->o->want_cap = wants_capacity(e, now);
    /* the traffic history: its last minutes read again and the rest kept, but whole when a fit
     * is due (observe.h) */
    j->o->full_history = !e->training && portrait_training_due(controller_engine(e->ctl), now);
    if (!j->o->full_history) j->prev = observe_prev_from(e->last, e->run);
    j->o->prev = j->prev;
    j->prom = p;
    j->started_ms = tide_now_mono_ms();
    j->job.owner = w;
    j->generation = e->generation;
    snprintf(j->name, sizeof j->name, "%s", e->spec.name);
    int rc = work_submit(w->sync->fetch, &j->job.w, fetch_run, fetch_done);
    if (rc != 0) {
        log_limited(
            &observe_rl, LOG_WARN, "workloads", "%s: cannot start a fetch: %s", e->spec.name,
            rc == -EAGAIN ? "too many fetches waiting; the next sync tries again" : strerror(-rc));
        free(j->spec);
        observe_free(j->o);
        observe_prev_free(j->prev);
        free(j);
        return;
    }
    e->fetching = 1;
    e->fetch_started = now;
}

/* Loop side: a finished fetch drives a decision (dropped at shutdown or when cancelled). */
static void fetch_done(work *wk, int status) {
    fetch_job *j = (fetch_job *)wk;
    struct cp_workloads *w = j->job.owner;
    workload_entry *e = workload_find(w, j->name);
    if (e && e->generation == j->generation) {
        e->fetching = 0;
        e->stalled = 0;
        if (status == 0) e->fetch_ms = tide_now_mono_ms() - j->started_ms;
        if (status == 0 && !w->sync->stopping && e->ctl) { /* not released meanwhile */
            j->o->prev = NULL;                             /* freed below with the job */
            obs_ready(w, e, j->o, tide_now_wall_ms() / 1000);
            j->o = NULL;
        }
    }
    if (j->o) j->o->prev = NULL;
    observe_free(j->o);
    observe_prev_free(j->prev);
    free(j->spec);
    free(j);
}

/* what one pass of the loop may spend building taken workloads (see tick_pass) */
#define SYNC_BUILD_BUDGET_MS 100

/* One pass over the workloads; 1 when unbuilt ones were left for another pass. */
static int tick_pass(struct sync_loop *s) {
    struct cp_workloads *w = s->w;
    int deferred = 0;
    int64_t now = tide_now_wall_ms() / 1000;
    prom *p = w->cp->prom;
    /* Building a workload's heavy state (controller, models, planner) on taking it costs
     * about 2 ms of copies, allocations and page faults; a member that briefly owns everything
     * (the first one up, before the others have joined) would build thousands in one go, and a
     * take-over hundreds. Once the ownership checks of unbuilt entries of a pass have taken
     * SYNC_BUILD_BUDGET_MS, the remaining unbuilt ones wait for the next pass, which comes
     * after the loop's pending events, not a tick later (a dormant one has nothing to do
     * here; built ones are never held back). */
    int64_t build_us = 0;
    for (workload_entry *e = w->head; e; e = e->next) {
        int unbuilt = !e->ctl;
        if (unbuilt && build_us >= SYNC_BUILD_BUDGET_MS * 1000) {
            deferred = 1; /* the next pass */
            continue;
        }
        struct timespec t0, t1;
        if (unbuilt) clock_gettime(CLOCK_MONOTONIC, &t0);
        int owned = workload_owned_here(w, e, now);
        if (unbuilt) {
            clock_gettime(CLOCK_MONOTONIC, &t1);
            build_us += (t1.tv_sec - t0.tv_sec) * 1000000 + (t1.tv_nsec - t0.tv_nsec) / 1000;
        }
        if (!owned) continue; /* another control plane owns it */
        if (e->inventory == 0 && workload_has_executor(w, e)) {
            char err[256];
            e->inventory = 1;
            e->inventory_at = now * 1000;
            if (exec_inventory(w->cp, e->run, e->generation, err, sizeof err) < 0) {
                e->inventory = 0;
                snprintf(e->inventory_err, sizeof e->inventory_err, "%.190s", err);
            }
        }
        if (now < e->next_sync) continue;
        e->next_sync = now + e->run->sync_seconds;
        /* reads run on a worker thread also from the store alone: evaluating a selector over
         * thousands of series must never stall the loop */
        if (!e->fetching) {
            fetch_start(w, e, p, now);
        } else if (!e->last) { /* the first fetch is still under way */
            snprintf(e->prom_err, sizeof e->prom_err,
                     "no answer for %lld s (timeout %lld ms per request)",
                     (long long)(now - e->fetch_started),
                     (long long)w->cp->cfg.prometheus_timeout_ms);
            snprintf(e->observe, sizeof e->observe, "prometheus: %s; no observation yet",
                     e->prom_err);
        } else {               /* Prometheus is slow: the sync goes on with what we have */
            if (!e->stalled) { /* a decision event when the fetch first overruns a sync */
                e->stalled = 1;
                char text[PLANNER_EVENT_TEXT];
                snprintf(text, sizeof text,
                         "prometheus: no answer for %lld s; deciding on the observation of %lld",
                         (long long)(now - e->fetch_started), (long long)e->last->now);
                planner_note(controller_planner(e->ctl), now, "prometheus", text);
            }
            snprintf(e->prom_err, sizeof e->prom_err,
                     "no answer for %lld s (timeout %lld ms per request)",
                     (long long)(now - e->fetch_started),
                     (long long)w->cp->cfg.prometheus_timeout_ms);
            decide(w, e, e->last, now);
        }
    }
    return deferred;
}

static void on_more(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)revents;
    struct sync_loop *s = (struct sync_loop *)((char *)t - offsetof(struct sync_loop, more));
    if (tick_pass(s)) {
        ev_timer_set(&s->more, 0.001, 0);
        ev_timer_start(loop, &s->more);
    }
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)revents;
    struct sync_loop *s = (struct sync_loop *)((char *)t - offsetof(struct sync_loop, tick));
    if (tick_pass(s) && !ev_is_active(&s->more)) {
        ev_timer_set(&s->more, 0.001, 0);
        ev_timer_start(loop, &s->more);
    }
}

int sync_start(struct cp_workloads *w, char *err, size_t errlen) {
    struct sync_loop *s = calloc(1, sizeof *s);
    if (!s) {
        snprintf(err, errlen, "workloads: out of memory");
        return -ENOMEM;
    }
    s->w = w;
    long cores = sysconf(_SC_NPROCESSORS_ONLN);
    int train_threads = cores < 1 ? 1 : cores > TRAIN_THREADS_MAX ? TRAIN_THREADS_MAX : (int)cores;
    int rc = work_pool_new(w->cp->loop, train_threads, SYNC_QUEUE_MAX, &s->train);
    if (rc == 0) rc = work_pool_new(w->cp->loop, FETCH_THREADS, SYNC_QUEUE_MAX, &s->fetch);
    if (rc < 0) {
        work_pool_free(s->train);
        free(s);
        snprintf(err, errlen, "workloads: worker pools: %s", strerror(-rc));
        return rc;
    }
    w->sync = s;
    /* once a trace second: R times a real second under a virtual clock (vclock.h) */
    ev_timer_init(&s->tick, on_tick, vclock_real_s(1.0), vclock_real_s(1.0));
    ev_timer_start(w->cp->loop, &s->tick);
    ev_timer_init(&s->more, on_more, 0.001, 0);
    return 0;
}

void sync_stop(struct cp_workloads *w) {
    struct sync_loop *s = w->sync;
    if (!s) return;
    ev_timer_stop(w->cp->loop, &s->tick);
    ev_timer_stop(w->cp->loop, &s->more);
    /* fetches under way end at once instead of after Prometheus's timeout and retries */
    prom_cancel(w->cp->prom);
    s->stopping = 1; /* what finishes from here on is dropped */
    work_pool_free(s->train);
    work_pool_free(s->fetch);
    free(s);
    w->sync = NULL;
}
