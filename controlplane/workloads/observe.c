/* observe.c: one sync's reads of a workload's metrics (see observe.h). */
#include "workloads/observe.h"

#include "query/prom.h"
#include "scaling/hpa.h"
#include "query/promql.h"
#include "query/query.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define OBSERVE_HISTORY_S (7 * 86400) /* what a query returns at 1-minute steps (11000 points) */
#define OBSERVE_STEP_S 60

const char *const observe_metric_keys[OBSERVE_N] = {"utilization", "replicas", "traffic"};

const char *observe_source_text(const wl_source *s) {
    return s->selector[0] ? s->selector : s->query[0] ? s->query : NULL;
}

static void read_note_prom(observe_result *o, const char *msg) {
    if (!o->prom_err[0]) snprintf(o->prom_err, sizeof o->prom_err, "%.250s", msg);
}

/* The text is PromQL Tide's own engine evaluates (query/promql.h). */
static int query_parse_ok(const char *text) {
    pq_node *n = NULL;
    char err[200];
    int ok = promql_parse(text, &n, err, sizeof err) == 0;
    promql_free(n);
    return ok;
}

/* Evaluates one source over [start, end] (unix seconds of the metrics' own clock) every step
 * seconds: a query in the selector subset through the query engine (the store merged with
 * Prometheus, the agents' points winning), any other PromQL straight from Prometheus. Says in
 * *mr where the points came from and what went wrong. Thread-safe (store reader lock,
 * prom_query_range). 0 with *r filled, or -errno with mr->error. */
static int read_source(struct tsdb *db, prom *p, const wl_source *src, int64_t start, int64_t end,
                       int64_t step, query_result *r, observe_metric *mr, observe_result *o) {
    memset(r, 0, sizeof *r);
    const char *text = observe_source_text(src);
    if (!text) return -ENOENT;
    char err[400] = "";
    if (p && o->prom_err[0]) { /* one failure per sync: the other reads do not wait for it again */
        if (!query_parse_ok(text)) {
            snprintf(mr->error, sizeof mr->error, "prometheus: %.200s", o->prom_err);
            snprintf(mr->source, sizeof mr->source, "none");
            return -EIO;
        }
        int rc = read_source(db, NULL, src, start, end, step, r, mr, o);
        if (rc == 0) {
            snprintf(mr->error, sizeof mr->error, "prometheus: %.200s", o->prom_err);
            if (!r->store_points) {
                query_result_fini(r);
                return -EIO;
            }
        }
        return rc;
    }
    pq_node *qn = NULL;
    int local = promql_parse(text, &qn, err, sizeof err) == 0;
    promql_free(qn);
    if (local) {
        query_ctx qc = {.db = db, .prom = p};
        int rc = query_range(&qc, text, start * 1000, end * 1000, step * 1000, r, err, sizeof err);
        if (rc < 0) {
            snprintf(mr->error, sizeof mr->error, "%.230s", err);
            snprintf(mr->source, sizeof mr->source, "none");
            return rc;
        }
        if (r->warning[0]) { /* Prometheus failed: the store's points only */
            static const char pre[] = "prometheus unavailable, served the store's data only: ";
            const char *why =
                strncmp(r->warning, pre, sizeof pre - 1) ? r->warning : r->warning + sizeof pre - 1;
            snprintf(mr->error, sizeof mr->error, "prometheus: %.200s", why);
            read_note_prom(o, why);
            if (!r->store_points) { /* nothing at all: a failed read, not an empty one */
                query_result_fini(r);
                snprintf(mr->source, sizeof mr->source, "none");
                return -EIO;
            }
        }
        snprintf(mr->source, sizeof mr->source, "%s",
                 r->store_points && r->prom_points ? "merged"
                 : r->prom_points                  ? "prometheus"
                 : r->store_points                 ? "store"
                                                   : "none");
        return 0;
    }
    if (!p) {
        snprintf(mr->error, sizeof mr->error,
                 "PromQL the engine does not support needs --prometheus (local parser: %.120s)",
                 err);
        snprintf(mr->source, sizeof mr->source, "none");
        return -EINVAL;
    }
    prom_result pr = {0};
    int rc = prom_query_range(p, text, start * 1000, end * 1000, step * 1000, &pr, err, sizeof err);
    if (rc < 0) {
        snprintf(mr->error, sizeof mr->error, "prometheus: %.186s", err);
        snprintf(mr->source, sizeof mr->source, "none");
        read_note_prom(o, err);
        return rc;
    }
    size_t nsteps = (size_t)((end - start) / step + 1);
    r->start_ms = start * 1000;
    r->step_ms = step * 1000;
    r->nsteps = nsteps;
    r->prom_used = 1;
    r->s = calloc(pr.n ? pr.n : 1, sizeof *r->s);
    if (!r->s)
        rc = -ENOMEM;
    else
        r->cap = pr.n ? pr.n : 1;
    for (size_t i = 0; !rc && i < pr.n; i++) {
        prom_series *ps = &pr.s[i];
        query_series *qs = &r->s[r->n++];
        qs->names = ps->names;
        qs->values = ps->values;
        qs->nlabels = ps->nlabels;
        ps->names = ps->values = NULL;
        ps->nlabels = 0;
        qs->v = malloc(nsteps * sizeof *qs->v);
        if (!qs->v) {
            rc = -ENOMEM;
            break;
        }
        for (size_t k = 0; k < nsteps; k++)
            qs->v[k] = NAN;
        for (size_t k = 0; k < ps->n; k++) {
            int64_t off = ps->ts_ms[k] - r->start_ms;
            if (off < 0 || off % r->step_ms || (size_t)(off / r->step_ms) >= nsteps) continue;
            qs->v[off / r->step_ms] = ps->v[k];
            r->prom_points++;
        }
    }
    prom_result_fini(&pr);
    if (rc) {
        query_result_fini(r);
        snprintf(mr->error, sizeof mr->error, "out of memory");
        return rc;
    }
    snprintf(mr->source, sizeof mr->source, "%s", r->prom_points ? "prometheus" : "none");
    return 0;
}

int observe_source_range(struct tsdb *db, prom *p, const wl_source *src, int64_t start, int64_t end,
                         int64_t step, query_result *r, observe_metric *mr) {
    observe_result *o = calloc(1, sizeof *o); /* for the Prometheus note only */
    if (!o) {
        memset(r, 0, sizeof *r);
        snprintf(mr->error, sizeof mr->error, "out of memory");
        return -ENOMEM;
    }
    int rc = read_source(db, p, src, start, end, step, r, mr, o);
    free(o);
    return rc;
}

/* The newest value of each series in the last two minutes into v (at most max): count. */
uint64_t observe_label_hash(const char *v) {
    uint64_t h = 1469598103934665603ULL;
    for (; *v; v++)
        h = (h ^ (unsigned char)*v) * 1099511628211ULL;
    return h ? h : 1;
}

observe_pod_class observe_replica_pod(const char *state, int64_t since_ms, int64_t now_ms,
                                      int sync_seconds, int window_s) {
    int64_t settle_s = hpa_settle_seconds(sync_seconds, window_s);
    if (strcmp(state, "Online") == 0)
        return since_ms >= 0 && now_ms - since_ms < settle_s * 1000 ? OBSERVE_POD_UNREADY
                                                                    : OBSERVE_POD_READY;
    if (strcmp(state, "Starting") == 0 || strcmp(state, "Activating") == 0)
        return OBSERVE_POD_UNREADY;
    return OBSERVE_POD_LEFT_OUT;
}

/* The newest value of each series (at most max); keys (optional): the hash of each one's
 * cgroup label, 0 without one. */
static int latest_of(const query_result *r, double *v, uint64_t *keys, uint64_t *base, int max) {
    int n = 0;
    for (size_t i = 0; i < r->n && n < max; i++)
        for (size_t k = r->nsteps; k-- > 0;)
            if (!isnan(r->s[i].v[k])) {
                if (keys) {
                    keys[n] = base[n] = 0;
                    for (size_t l = 0; l < r->s[i].nlabels; l++)
                        if (strcmp(r->s[i].names[l], "cgroup") == 0) {
                            const char *cg = r->s[i].values[l], *sl = strrchr(cg, '/');
                            keys[n] = observe_label_hash(cg);
                            base[n] = observe_label_hash(sl ? sl + 1 : cg);
                        }
                }
                v[n++] = r->s[i].v[k];
                break;
            }
    return n;
}

/* Capacity-model observations over the traffic history's minutes: traffic, replicas (the
 * replicas metric, else the pods reporting utilization) and their mean utilization. */
static void capacity_obs(struct tsdb *db, prom *p, const workload_spec *s, observe_result *o) {
    const fc_series *hist = &o->hist;
    const char *ut = observe_source_text(&s->utilization);
    if (!ut || hist->n == 0) {
        snprintf(o->cap_err, sizeof o->cap_err,
                 "no utilization history to fit a capacity model on");
        return;
    }
    int64_t off = s->metrics_offset_seconds;
    int64_t start = hist->t0 - off, end = hist->t0 + (int64_t)(hist->n - 1) * hist->step - off;
    query_result u, r;
    observe_metric mu, mr;
    memset(&mu, 0, sizeof mu);
    memset(&mr, 0, sizeof mr);
    memset(&r, 0, sizeof r);
    if (read_source(db, p, &s->utilization, start, end, hist->step, &u, &mu, o) < 0) {
        snprintf(o->cap_err, sizeof o->cap_err, "utilization history: %.130s", mu.error);
        return;
    }
    int have_r = s->has_replicas_metric && observe_source_text(&s->replicas_metric) &&
                 read_source(db, p, &s->replicas_metric, start, end, hist->step, &r, &mr, o) == 0;
    cap_obs *c = malloc(hist->n * sizeof *c);
    size_t n = 0;
    for (size_t k = 0; c && k < hist->n && k < u.nsteps; k++) {
        double sum = 0, reps = 0;
        int cnt = 0;
        for (size_t i = 0; i < u.n; i++)
            if (!isnan(u.s[i].v[k])) {
                sum += u.s[i].v[k];
                cnt++;
            }
        reps = cnt;
        if (have_r && k < r.nsteps) {
            double rs = NAN;
            for (size_t i = 0; i < r.n; i++)
                if (!isnan(r.s[i].v[k])) rs = isnan(rs) ? r.s[i].v[k] : rs + r.s[i].v[k];
            if (!isnan(rs)) reps = rs;
        }
        if (cnt == 0 || reps <= 0 || isnan(hist->y[k])) continue;
        c[n++] = (cap_obs){hist->t0 + (int64_t)k * hist->step, hist->y[k], reps, sum / cnt / 100.0};
    }
    query_result_fini(&u);
    if (have_r) query_result_fini(&r);
    if (n == 0) {
        free(c);
        snprintf(o->cap_err, sizeof o->cap_err,
                 "no utilization history to fit a capacity model on");
        return;
    }
    o->cap = c;
    o->ncap = n;
}

/* Reads everything one sync of a workload needs, at controller time o->now: the latest
 * utilization per pod and replicas (last two minutes), the traffic history per minute over the
 * last OBSERVE_HISTORY_S (summed over series, ending with the last complete minute) when a
 * predictive provider wants it, and the capacity-model observations when o->want_cap. Metrics
 * are read spec.metrics.offsetSeconds in the past and their times shifted forward by it.
 * The same code runs on the loop (store only) and on a fetch thread (with Prometheus). */
void observe_read(struct tsdb *db, prom *p, const workload_spec *s, observe_result *o) {
    int64_t off = s->metrics_offset_seconds, qnow = o->now - off;
    query_result r;
    o->util_rc =
        read_source(db, p, &s->utilization, qnow - 120, qnow, 15, &r, &o->m[OBSERVE_UTIL], o);
    if (o->util_rc == 0) {
        o->npods = latest_of(&r, o->util, o->util_cgroup, o->util_cgroup_base, OBSERVE_PODS);
        query_result_fini(&r);
    }
    o->replicas_rc = -ENOENT;
    if (s->has_replicas_metric) {
        o->replicas_rc = read_source(db, p, &s->replicas_metric, qnow - 120, qnow, 15, &r,
                                     &o->m[OBSERVE_REPLICAS], o);
        if (o->replicas_rc == 0) {
            double rv[64];
            int nr = latest_of(&r, rv, NULL, NULL, 64);
            query_result_fini(&r);
            if (nr > 0) {
                double sum = 0;
                for (int i = 0; i < nr; i++)
                    sum += rv[i];
                o->replicas = (int)lround(sum);
            } else {
                o->replicas_rc = -ENODATA;
            }
        }
    }
    o->util_window_s = observe_source_window_s(&s->utilization);
    o->hist_rc = -ENOENT;
    int want_traffic = 0;
    for (int i = 0; i < s->n_providers; i++)
        want_traffic |= s->providers[i].type == WL_PROV_PREDICTIVE;
    if (!want_traffic || s->n_traffic == 0) return;
    int64_t end = qnow - qnow % OBSERVE_STEP_S - OBSERVE_STEP_S,
            start = end - OBSERVE_HISTORY_S + OBSERVE_STEP_S;
    /* incremental: the minutes from OBSERVE_REREAD_S before the previous history's end on;
     * the older ones are the previous read's (observe.h) */
    const observe_prev_hist *pv = o->prev;
    int64_t pv_end = pv && pv->n ? pv->src_t0 + (int64_t)(pv->n - 1) * OBSERVE_STEP_S : 0;
    int inc = !o->full_history && pv && pv->n && pv->y && pv->key == observe_history_key(s) &&
              pv->src_t0 % OBSERVE_STEP_S == 0 && pv_end >= start && pv_end <= end;
    int64_t rstart = start;
    if (inc) {
        rstart = pv_end - OBSERVE_REREAD_S + OBSERVE_STEP_S;
        if (rstart > end - OBSERVE_REREAD_S + OBSERVE_STEP_S)
            rstart = end - OBSERVE_REREAD_S + OBSERVE_STEP_S;
        if (rstart < start) rstart = start;
    }
    o->hist_rc = read_source(db, p, &s->traffic[0], rstart, end, OBSERVE_STEP_S, &r,
                             &o->m[OBSERVE_TRAFFIC], o);
    if (o->hist_rc < 0) return;
    /* the output spans [ostart, end]: the whole range, or from prev's first minute on */
    int64_t ostart = start;
    if (inc && pv->src_t0 > start) ostart = pv->src_t0;
    size_t nout = (size_t)((end - ostart) / OBSERVE_STEP_S + 1);
    double *v = malloc(nout * sizeof *v);
    if (!v) {
        query_result_fini(&r);
        o->hist_rc = -ENOMEM;
        snprintf(o->m[OBSERVE_TRAFFIC].error, sizeof o->m[OBSERVE_TRAFFIC].error, "out of memory");
        return;
    }
    size_t first = nout;
    int64_t r0 = r.start_ms / 1000;
    for (size_t k = 0; k < nout; k++) {
        int64_t t = ostart + (int64_t)k * OBSERVE_STEP_S;
        double sum = NAN, old = NAN;
        if (inc && t >= pv->src_t0 && t <= pv_end) old = pv->y[(t - pv->src_t0) / OBSERVE_STEP_S];
        if (t >= rstart && t >= r0 && (size_t)((t - r0) / OBSERVE_STEP_S) < r.nsteps) {
            size_t kk = (size_t)((t - r0) / OBSERVE_STEP_S);
            for (size_t i = 0; i < r.n; i++)
                if (!isnan(r.s[i].v[kk])) sum = isnan(sum) ? r.s[i].v[kk] : sum + r.s[i].v[kk];
        }
        v[k] = isnan(sum) ? old : sum; /* a minute read again keeps its value if now empty */
        if (!isnan(v[k]) && first == nout) first = k;
    }
    query_result_fini(&r);
    if (first == nout) {
        free(v);
        o->hist_rc = -ENODATA;
        return;
    }
    if (inc) { /* where the history's points came from: the kept minutes' sources too */
        observe_metric *mt = &o->m[OBSERVE_TRAFFIC];
        int st = !strcmp(mt->source, "store") || !strcmp(mt->source, "merged") ||
                 !strcmp(pv->source, "store") || !strcmp(pv->source, "merged");
        int pr = !strcmp(mt->source, "prometheus") || !strcmp(mt->source, "merged") ||
                 !strcmp(pv->source, "prometheus") || !strcmp(pv->source, "merged");
        snprintf(mt->source, sizeof mt->source, "%s",
                 st && pr ? "merged"
                 : pr     ? "prometheus"
                 : st     ? "store"
                          : "none");
        o->hist_incremental = 1;
    }
    memmove(v, v + first, (nout - first) * sizeof *v);
    o->y = v;
    o->hist = (fc_series){v, nout - first, ostart + off + (int64_t)first * OBSERVE_STEP_S,
                          OBSERVE_STEP_S, 0};
    o->hist_src_t0 = o->hist.t0 - off;
    if (o->want_cap) capacity_obs(db, p, s, o);
}

uint64_t observe_history_key(const workload_spec *s) {
    if (s->n_traffic == 0) return 0;
    const char *t = observe_source_text(&s->traffic[0]);
    char buf[64];
    snprintf(buf, sizeof buf, "|%lld", (long long)s->metrics_offset_seconds);
    uint64_t h = observe_label_hash(t ? t : "");
    for (const char *c = buf; *c; c++)
        h = (h ^ (unsigned char)*c) * 1099511628211ULL;
    return h ? h : 1;
}

observe_prev_hist *observe_prev_from(const observe_result *o, const workload_spec *s) {
    /* a read that went wrong (Prometheus failed: the store's part only; or stale values) is
     * no base: the next read is a whole one */
    if (!o || o->hist_rc != 0 || !o->y || o->hist.n == 0 || o->m[OBSERVE_TRAFFIC].error[0] ||
        o->m[OBSERVE_TRAFFIC].stale)
        return NULL;
    observe_prev_hist *h = calloc(1, sizeof *h);
    if (!h) return NULL;
    h->y = malloc(o->hist.n * sizeof *h->y);
    if (!h->y) {
        free(h);
        return NULL;
    }
    memcpy(h->y, o->y, o->hist.n * sizeof *h->y);
    h->n = o->hist.n;
    h->src_t0 = o->hist_src_t0;
    h->key = observe_history_key(s);
    snprintf(h->source, sizeof h->source, "%s", o->m[OBSERVE_TRAFFIC].source);
    return h;
}

void observe_prev_free(observe_prev_hist *h) {
    if (!h) return;
    free(h->y);
    free(h);
}

static int longest_range(const pq_node *sel, void *arg) {
    int64_t *ms = arg;
    if (sel->range_ms > *ms) *ms = sel->range_ms;
    return 0;
}

int observe_source_window_s(const wl_source *src) {
    const char *text = observe_source_text(src);
    if (!text) return 0;
    pq_node *n = NULL;
    char err[200];
    int64_t ms = 0;
    if (promql_parse(text, &n, err, sizeof err) == 0) promql_walk_selectors(n, longest_range, &ms);
    promql_free(n);
    return ms > 86400 * 1000 ? 86400 : (int)(ms / 1000);
}

void observe_free(observe_result *o) {
    if (!o) return;
    free(o->y);
    free(o->cap);
    free(o);
}

/* Where a read failed, the last good observation's values stand in (a slow or dead Prometheus
 * must not blank the controller's view); the metric's error says since when. */
static void mark_stale(observe_metric *m, const observe_metric *good, int64_t at) {
    char when[64];
    struct tm tmv;
    time_t t = (time_t)at;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof when, "; using the values read at %Y-%m-%dT%H:%M:%SZ", &tmv);
    strncat(m->error, when, sizeof m->error - strlen(m->error) - 1);
    snprintf(m->source, sizeof m->source, "%s", good->source);
    m->stale = 1;
}

void observe_fill_from(observe_result *o, const observe_result *last) {
    if (!last) return;
    if (o->util_rc < 0 && o->util_rc != -ENOENT && last->util_rc == 0) {
        memcpy(o->util, last->util, sizeof o->util);
        memcpy(o->util_cgroup, last->util_cgroup, sizeof o->util_cgroup);
        memcpy(o->util_cgroup_base, last->util_cgroup_base, sizeof o->util_cgroup_base);
        o->npods = last->npods;
        o->util_rc = 0;
        o->util_at = last->util_at;
        mark_stale(&o->m[OBSERVE_UTIL], &last->m[OBSERVE_UTIL], o->util_at);
    }
    if (o->replicas_rc < 0 && o->replicas_rc != -ENOENT && last->replicas_rc == 0) {
        o->replicas = last->replicas;
        o->replicas_rc = 0;
        o->replicas_at = last->replicas_at;
        mark_stale(&o->m[OBSERVE_REPLICAS], &last->m[OBSERVE_REPLICAS], o->replicas_at);
    }
    if (o->hist_rc < 0 && o->hist_rc != -ENOENT && last->hist_rc == 0 && last->y) {
        o->y = malloc(last->hist.n * sizeof *o->y);
        if (!o->y) return;
        memcpy(o->y, last->y, last->hist.n * sizeof *o->y);
        o->hist = last->hist;
        o->hist.y = o->y;
        o->hist_src_t0 = last->hist_src_t0;
        o->hist_rc = 0;
        o->hist_at = last->hist_at;
        mark_stale(&o->m[OBSERVE_TRAFFIC], &last->m[OBSERVE_TRAFFIC], o->hist_at);
    }
}
