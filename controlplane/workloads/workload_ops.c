/* workload_ops.c: applied workloads in the control plane: persistence, one controller per
 * workload (portrait engine + planner on store observations), and the workload ops commands. */
#include "workloads/workload_ops.h"

#include "models/capacity.h"
#include "cp.h"
#include "api/http.h"
#include "log.h"
#include "api/ops.h"
#include "scaling/portrait.h"
#include "query/prom.h"
#include "query/query.h"

#include <dirent.h>
#include <pthread.h>
#include <errno.h>
#include <ev.h>
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ACTIONS_KEPT 64
#define TRAIN_HISTORY_S (7 * 86400) /* what a query returns at 1-minute steps (11000 points) */
#define TRAFFIC_STEP_S 60
#define MAX_YAML (1u << 20)

typedef struct action_rec {
    int64_t t;
    planner_action a;
    char note[64];
} action_rec;

/* Where one metric's last read came from: "store", "prometheus", "merged" (both put points
 * in), or "none"; its error ("" when it went well) and the controller time of the read. */
enum { M_UTIL, M_REPLICAS, M_TRAFFIC, M_N };
static const char *const metric_keys[M_N] = {"utilization", "replicas", "traffic"};

typedef struct metric_read {
    char source[12];
    char error[240];
    int64_t at;
    int stale; /* the read failed: the values (and source) are the last good read's */
} metric_read;

#define WL_OBS_PODS 512

/* One sync's observations of a workload (read by observe()). */
typedef struct wl_obs {
    int64_t now;                       /* controller time (wall clock, unix s) */
    int want_cap;                      /* read the capacity-model observations too */
    int util_rc, replicas_rc, hist_rc; /* 0, or -errno of the read (-ENOENT: not configured) */
    double util[WL_OBS_PODS];          /* latest utilization percent per pod */
    int npods;
    int replicas;
    double *y;           /* traffic per minute (hist.y) */
    fc_series hist;      /* times on the controller's clock */
    int64_t hist_src_t0; /* hist.t0 on the metrics' own clock (minus offsetSeconds) */
    int64_t util_at, replicas_at, hist_at; /* when the values used were read */
    cap_obs *cap;
    size_t ncap;
    char cap_err[160];
    metric_read m[M_N];
    char prom_err[256]; /* the first Prometheus failure of this read, "" none */
} wl_obs;

/* The history the last successful fit used. */
typedef struct fit_info {
    int64_t at;         /* controller time of the fit */
    int64_t start, end; /* first and last minute, metrics' own clock */
    size_t points;
    int ok, failed;
    char source[12];
} fit_info;

typedef struct wl_entry {
    struct wl_entry *next;
    workload_spec spec; /* as applied */
    workload_spec run;  /* as the controller runs it (Preview while no executor exists) */
    char *yaml;
    uint64_t generation;
    int64_t applied_ms;
    portrait_engine *eng;
    planner *pl;
    portrait *pt;
    int have_pt;
    cap_model *cap; /* the capacity model the engine uses (owned here) */
    int64_t next_sync;
    int inventory_done;
    int training; /* a fit of its predictive models is running on a worker thread */
    unsigned char fell_back[WL_MAX_PROVIDERS]; /* predictive provider on the reactive fallback */
    char observe[512];
    wl_obs *last; /* the last observation (failed reads filled from the one before) */
    metric_read reads[M_N];
    char prom_err[256]; /* Prometheus trouble of the last sync, "" none */
    int fetching;       /* a fetch from Prometheus is under way on a worker thread */
    int stalled;        /* ... and overran a sync period */
    int64_t fetch_started;
    int64_t fetch_ms; /* how long the last finished fetch took, -1 none */
    fit_info fit;
    action_rec acts[ACTIONS_KEPT];
    uint64_t nacts;
} wl_entry;

/* A job on a worker thread, the first member of train_job and fetch_job: the worker sets
 * done (under the workloads lock) and wakes the loop, which joins it and takes its results. */
typedef struct wl_job {
    struct wl_job *next;
    pthread_t th;
    int done;
    struct cp_workloads *w;
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
    wl_obs *o;
    prom *prom;
    int64_t started_ms; /* monotonic */
} fetch_job;

struct cp_workloads {
    struct controlplane *cp;
    ev_timer tick;
    ev_async wake;        /* a fit or a fetch finished */
    pthread_mutex_t lock; /* guards jobs, fetches and their done flags */
    wl_job *jobs;         /* train_job */
    wl_job *fetches;      /* fetch_job */
    wl_entry *head;
    char dir[1024];
};

static workload_executor_fn executors[4];
static log_ratelimit observe_rl = LOG_RATELIMIT_INIT(60000, 5);

void workload_executor_register(wl_target_kind kind, workload_executor_fn fn) {
    if ((unsigned)kind < 4) executors[kind] = fn;
}

static void obs_free(wl_obs *o);

static void entry_free(wl_entry *e) {
    if (!e) return;
    portrait_engine_free(e->eng);
    cap_free(e->cap);
    obs_free(e->last);
    planner_free(e->pl);
    free(e->pt);
    free(e->yaml);
    free(e);
}

static wl_entry *find(struct cp_workloads *w, const char *name) {
    for (wl_entry *e = w->head; e; e = e->next)
        if (strcmp(e->spec.name, name) == 0) return e;
    return NULL;
}

/* Builds the entry for a validated spec. NULL on ENOMEM. */
static wl_entry *entry_new(const workload_spec *spec, const char *yaml, size_t len) {
    wl_entry *e = calloc(1, sizeof *e);
    if (!e) return NULL;
    e->spec = *spec;
    e->run = *spec;
    if (!executors[spec->target.kind]) e->run.mode = WL_MODE_PREVIEW;
    e->yaml = malloc(len + 1);
    e->pt = calloc(1, sizeof *e->pt);
    if (!e->yaml || !e->pt || portrait_engine_new(&e->eng, &e->run) < 0 ||
        planner_new(&e->pl, &e->run) < 0) {
        entry_free(e);
        return NULL;
    }
    memcpy(e->yaml, yaml, len);
    e->yaml[len] = 0;
    e->applied_ms = tide_now_wall_ms();
    e->fetch_ms = -1;
    return e;
}

/* ---- persistence ---------------------------------------------------------------------- */

static int save_yaml(struct cp_workloads *w, const char *name, const char *yaml) {
    char path[1200], tmp[1210];
    snprintf(path, sizeof path, "%s/%s.yaml", w->dir, name);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0640);
    if (fd < 0) return -errno;
    size_t len = strlen(yaml), off = 0;
    while (off < len) {
        ssize_t n = write(fd, yaml + off, len - off);
        if (n < 0) {
            if (errno == EINTR) continue;
            int e = -errno;
            close(fd);
            unlink(tmp);
            return e;
        }
        off += (size_t)n;
    }
    if (fsync(fd) < 0 || close(fd) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    if (rename(tmp, path) < 0) {
        int e = -errno;
        unlink(tmp);
        return e;
    }
    return 0;
}

static void load_saved(struct cp_workloads *w) {
    DIR *d = opendir(w->dir);
    if (!d) return;
    struct dirent *de;
    while ((de = readdir(d))) {
        size_t l = strlen(de->d_name);
        if (l < 6 || strcmp(de->d_name + l - 5, ".yaml") != 0) continue;
        char path[1400];
        snprintf(path, sizeof path, "%s/%s", w->dir, de->d_name);
        FILE *f = fopen(path, "rb");
        if (!f) continue;
        char *buf = malloc(MAX_YAML);
        size_t n = buf ? fread(buf, 1, MAX_YAML - 1, f) : 0;
        fclose(f);
        if (!buf) continue;
        buf[n] = 0;
        workload_spec spec;
        wl_problems probs;
        wl_problems_init(&probs);
        if (workload_parse(buf, n, &spec, &probs) < 0) {
            char *txt = wl_problems_format(&probs);
            log_error("workloads", "%s: not loaded, invalid: %s", path, txt ? txt : "");
            free(txt);
        } else if (find(w, spec.name)) {
            log_error("workloads", "%s: not loaded, workload %s already loaded", path, spec.name);
        } else {
            wl_entry *e = entry_new(&spec, buf, n);
            if (e) {
                e->generation = 1;
                e->next = w->head;
                w->head = e;
                log_info("workloads", "loaded %s from %s", spec.name, path);
            }
        }
        wl_problems_fini(&probs);
        free(buf);
    }
    closedir(d);
}

/* ---- observations --------------------------------------------------------------------- */

static const char *source_text(const wl_source *s) {
    return s->selector[0] ? s->selector : s->query[0] ? s->query : NULL;
}

static void read_note_prom(wl_obs *o, const char *msg) {
    if (!o->prom_err[0]) snprintf(o->prom_err, sizeof o->prom_err, "%.250s", msg);
}

static int query_parse_ok(const char *text) {
    query_expr *qe = NULL;
    char err[200];
    int ok = query_parse(text, &qe, err, sizeof err) == 0;
    query_expr_free(qe);
    return ok;
}

/* Evaluates one source over [start, end] (unix seconds of the metrics' own clock) every step
 * seconds: a query in the selector subset through the query engine (the store merged with
 * Prometheus, the agents' points winning), any other PromQL straight from Prometheus. Says in
 * *mr where the points came from and what went wrong. Thread-safe (store reader lock,
 * prom_query_range). 0 with *r filled, or -errno with mr->error. */
static int read_source(struct tsdb *db, prom *p, const wl_source *src, int64_t start, int64_t end,
                       int64_t step, query_result *r, metric_read *mr, wl_obs *o) {
    memset(r, 0, sizeof *r);
    const char *text = source_text(src);
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
    query_expr *qe = NULL;
    int local = query_parse(text, &qe, err, sizeof err) == 0;
    query_expr_free(qe);
    if (local) {
        query_ctx qc = {db, p};
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
        snprintf(
            mr->error, sizeof mr->error,
            "PromQL outside the store's selector subset needs --prometheus (local parser: %.120s)",
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

/* The newest value of each series in the last two minutes into v (at most max): count. */
static int latest_of(const query_result *r, double *v, int max) {
    int n = 0;
    for (size_t i = 0; i < r->n && n < max; i++)
        for (size_t k = r->nsteps; k-- > 0;)
            if (!isnan(r->s[i].v[k])) {
                v[n++] = r->s[i].v[k];
                break;
            }
    return n;
}

/* Capacity-model observations over the traffic history's minutes: traffic, replicas (the
 * replicas metric, else the pods reporting utilization) and their mean utilization. */
static void capacity_obs(struct tsdb *db, prom *p, const workload_spec *s, wl_obs *o) {
    const fc_series *hist = &o->hist;
    const char *ut = source_text(&s->utilization);
    if (!ut || hist->n == 0) {
        snprintf(o->cap_err, sizeof o->cap_err,
                 "no utilization history to fit a capacity model on");
        return;
    }
    int64_t off = s->metrics_offset_seconds;
    int64_t start = hist->t0 - off, end = hist->t0 + (int64_t)(hist->n - 1) * hist->step - off;
    query_result u, r;
    metric_read mu, mr;
    memset(&mu, 0, sizeof mu);
    memset(&mr, 0, sizeof mr);
    memset(&r, 0, sizeof r);
    if (read_source(db, p, &s->utilization, start, end, hist->step, &u, &mu, o) < 0) {
        snprintf(o->cap_err, sizeof o->cap_err, "utilization history: %.130s", mu.error);
        return;
    }
    int have_r = s->has_replicas_metric && source_text(&s->replicas_metric) &&
                 read_source(db, p, &s->replicas_metric, start, end, hist->step, &r, &mr, o) == 0;
    cap_obs *c = malloc(hist->n * sizeof *c);
    size_t n = 0;
    for (size_t k = 0; c && k < hist->n && k < u.nsteps; k++) {
        double sum = 0, reps = 0;
        int cnt = 0;
        for (size_t i = 0; i < u.n; i++)
            if (!isnan(u.s[i].v[k])) sum += u.s[i].v[k], cnt++;
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
 * last TRAIN_HISTORY_S (summed over series, ending with the last complete minute) when a
 * predictive provider wants it, and the capacity-model observations when o->want_cap. Metrics
 * are read spec.metrics.offsetSeconds in the past and their times shifted forward by it.
 * The same code runs on the loop (store only) and on a fetch thread (with Prometheus). */
static void observe(struct tsdb *db, prom *p, const workload_spec *s, wl_obs *o) {
    int64_t off = s->metrics_offset_seconds, qnow = o->now - off;
    query_result r;
    o->util_rc = read_source(db, p, &s->utilization, qnow - 120, qnow, 15, &r, &o->m[M_UTIL], o);
    if (o->util_rc == 0) {
        o->npods = latest_of(&r, o->util, WL_OBS_PODS);
        query_result_fini(&r);
    }
    o->replicas_rc = -ENOENT;
    if (s->has_replicas_metric) {
        o->replicas_rc =
            read_source(db, p, &s->replicas_metric, qnow - 120, qnow, 15, &r, &o->m[M_REPLICAS], o);
        if (o->replicas_rc == 0) {
            double rv[64];
            int nr = latest_of(&r, rv, 64);
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
    o->hist_rc = -ENOENT;
    int want_traffic = 0;
    for (int i = 0; i < s->n_providers; i++)
        want_traffic |= s->providers[i].type == WL_PROV_PREDICTIVE;
    if (!want_traffic || s->n_traffic == 0) return;
    int64_t end = qnow - qnow % TRAFFIC_STEP_S - TRAFFIC_STEP_S,
            start = end - TRAIN_HISTORY_S + TRAFFIC_STEP_S;
    o->hist_rc =
        read_source(db, p, &s->traffic[0], start, end, TRAFFIC_STEP_S, &r, &o->m[M_TRAFFIC], o);
    if (o->hist_rc < 0) return;
    double *v = malloc((r.nsteps ? r.nsteps : 1) * sizeof *v);
    if (!v) {
        query_result_fini(&r);
        o->hist_rc = -ENOMEM;
        snprintf(o->m[M_TRAFFIC].error, sizeof o->m[M_TRAFFIC].error, "out of memory");
        return;
    }
    size_t first = r.nsteps;
    for (size_t k = 0; k < r.nsteps; k++) {
        double sum = NAN;
        for (size_t i = 0; i < r.n; i++)
            if (!isnan(r.s[i].v[k])) sum = isnan(sum) ? r.s[i].v[k] : sum + r.s[i].v[k];
        v[k] = sum;
        if (!isnan(sum) && first == r.nsteps) first = k;
    }
    if (first == r.nsteps) {
        free(v);
        query_result_fini(&r);
        o->hist_rc = -ENODATA;
        return;
    }
    memmove(v, v + first, (r.nsteps - first) * sizeof *v);
    o->y = v;
    o->hist =
        (fc_series){v, r.nsteps - first, r.start_ms / 1000 + off + (int64_t)first * TRAFFIC_STEP_S,
                    TRAFFIC_STEP_S, 0};
    o->hist_src_t0 = o->hist.t0 - off;
    query_result_fini(&r);
    if (o->want_cap) capacity_obs(db, p, s, o);
}

static void obs_free(wl_obs *o) {
    if (!o) return;
    free(o->y);
    free(o->cap);
    free(o);
}

/* Where a read failed, the last good observation's values stand in (a slow or dead Prometheus
 * must not blank the controller's view); the metric's error says since when. */
static void mark_stale(metric_read *m, const metric_read *good, int64_t at) {
    char when[64];
    struct tm tmv;
    time_t t = (time_t)at;
    gmtime_r(&t, &tmv);
    strftime(when, sizeof when, "; using the values read at %Y-%m-%dT%H:%M:%SZ", &tmv);
    strncat(m->error, when, sizeof m->error - strlen(m->error) - 1);
    snprintf(m->source, sizeof m->source, "%s", good->source);
    m->stale = 1;
}

static void obs_fill_from(wl_obs *o, const wl_obs *last) {
    if (!last) return;
    if (o->util_rc < 0 && o->util_rc != -ENOENT && last->util_rc == 0) {
        memcpy(o->util, last->util, sizeof o->util);
        o->npods = last->npods;
        o->util_rc = 0;
        o->util_at = last->util_at;
        mark_stale(&o->m[M_UTIL], &last->m[M_UTIL], o->util_at);
    }
    if (o->replicas_rc < 0 && o->replicas_rc != -ENOENT && last->replicas_rc == 0) {
        o->replicas = last->replicas;
        o->replicas_rc = 0;
        o->replicas_at = last->replicas_at;
        mark_stale(&o->m[M_REPLICAS], &last->m[M_REPLICAS], o->replicas_at);
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
        mark_stale(&o->m[M_TRAFFIC], &last->m[M_TRAFFIC], o->hist_at);
    }
}

/* ---- the controller ------------------------------------------------------------------- */

static void record_action(wl_entry *e, int64_t now, const planner_action *a, const char *note) {
    action_rec *r = &e->acts[e->nacts++ % ACTIONS_KEPT];
    r->t = now;
    r->a = *a;
    snprintf(r->note, sizeof r->note, "%s", note);
}

/* Worker side, last: marks the job done and wakes the loop. */
static void job_finished(wl_job *jb) {
    pthread_mutex_lock(&jb->w->lock);
    jb->done = 1;
    pthread_mutex_unlock(&jb->w->lock);
    ev_async_send(jb->w->cp->loop, &jb->w->wake);
}

/* Loop side: adds a started job to a list. */
static void job_push(struct cp_workloads *w, wl_job **list, wl_job *jb) {
    pthread_mutex_lock(&w->lock);
    jb->next = *list;
    *list = jb;
    pthread_mutex_unlock(&w->lock);
}

/* Loop side: takes a finished job (with wait set, any job) off the list and joins its thread.
 * NULL when there is none. */
static wl_job *job_pop(struct cp_workloads *w, wl_job **list, int wait) {
    wl_job *jb = NULL;
    pthread_mutex_lock(&w->lock);
    for (wl_job **pp = list; *pp; pp = &(*pp)->next)
        if ((*pp)->done || wait) {
            jb = *pp;
            *pp = jb->next;
            break;
        }
    pthread_mutex_unlock(&w->lock);
    if (jb) pthread_join(jb->th, NULL);
    return jb;
}

static void job_free(train_job *j) {
    for (int i = 0; i < WL_MAX_PROVIDERS; i++)
        fc_free(j->f[i]);
    cap_free(j->cap);
    free(j->obs);
    free(j->spec);
    free(j->y);
    free(j);
}

static void *train_main(void *arg) {
    train_job *j = arg;
    for (int i = 0; i < j->spec->n_providers; i++)
        if (j->spec->providers[i].type == WL_PROV_PREDICTIVE)
            portrait_fit(j->spec, i, &j->hist, &j->f[i], j->err[i], sizeof j->err[i]);
    if (j->obs) {
        cap_options opt = {.use_residual = 1, .seed = 1};
        if (cap_fit(&j->cap, j->obs, j->nobs, &opt, &j->cap_rep, j->cap_err, sizeof j->cap_err) < 0)
            j->cap = NULL;
    }
    job_finished(&j->job);
    return NULL;
}

/* Does a sync at now want the capacity-model observations read with it? */
static int wants_capacity(const wl_entry *e, int64_t now) {
    if (e->training || !portrait_training_due(e->eng, now)) return 0;
    for (int i = 0; i < e->run.n_providers; i++)
        if (e->run.providers[i].type == WL_PROV_PREDICTIVE &&
            !(e->run.providers[i].capacity_per_replica > 0))
            return 1;
    return 0;
}

/* Starts a fit on o's traffic history (and its capacity observations, which move to the job). */
static void train_start(struct cp_workloads *w, wl_entry *e, wl_obs *o, int64_t now) {
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
    *j->spec = e->run;
    memcpy(j->y, hist->y, hist->n * sizeof *j->y);
    j->hist = *hist;
    j->hist.y = j->y;
    j->hist_src_t0 = o->hist_src_t0;
    snprintf(j->hist_source, sizeof j->hist_source, "%s", o->m[M_TRAFFIC].source);
    j->now = now;
    j->job.w = w;
    j->generation = e->generation;
    snprintf(j->name, sizeof j->name, "%s", e->spec.name);
    int rc = pthread_create(&j->job.th, NULL, train_main, j);
    if (rc != 0) {
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: cannot start training: %s",
                    e->spec.name, strerror(rc));
        job_free(j);
        return;
    }
    job_push(w, &w->jobs, &j->job);
    e->training = 1;
}

/* Loop side: installs finished fits. With wait set (shutdown), waits for every job. */
static void train_collect(struct cp_workloads *w, int wait) {
    for (;;) {
        train_job *j = (train_job *)job_pop(w, &w->jobs, wait);
        if (!j) return;
        wl_entry *e = find(w, j->name);
        if (e && e->generation == j->generation && !wait) {
            int ok = 0, bad = 0;
            for (int i = 0; i < j->spec->n_providers; i++) {
                if (j->spec->providers[i].type != WL_PROV_PREDICTIVE) continue;
                portrait_install(e->eng, i, j->f[i], j->now, j->err[i]);
                if (j->f[i])
                    ok++;
                else {
                    bad++;
                    log_warn("workloads", "%s: providers[%d] training: %s", j->name, i, j->err[i]);
                }
                j->f[i] = NULL;
            }
            log_info("workloads",
                     "%s: %d predictive model(s) trained on %zu points (%s), %d failed", j->name,
                     ok, j->hist.n, j->hist_source, bad);
            e->fit = (fit_info){j->now,
                                j->hist_src_t0,
                                j->hist_src_t0 + (int64_t)(j->hist.n - 1) * j->hist.step,
                                j->hist.n,
                                ok,
                                bad,
                                ""};
            snprintf(e->fit.source, sizeof e->fit.source, "%s", j->hist_source);
            if (j->cap) { /* the engine uses it from now on; the entry owns it */
                portrait_set_capacity_model(e->eng, j->cap, &j->cap_rep, j->now);
                cap_free(e->cap);
                e->cap = j->cap;
                j->cap = NULL;
                log_info("workloads", "%s: capacity model on %zu observations: %s", j->name,
                         j->nobs, j->cap_rep.reason);
            } else if (j->cap_err[0]) {
                if (!e->cap) portrait_set_capacity(e->eng, NULL, NULL, j->now, 0, j->cap_err);
                log_warn("workloads", "%s: capacity model: %s", j->name, j->cap_err);
            }
            e->training = 0;
        } else if (e && e->generation == j->generation) {
            e->training = 0;
        }
        job_free(j);
    }
}

/* Runs the decision code (portrait engine + planner, as `tidectl simulate` does) for one
 * sync at now on observation o (fresh, or the last good one while a fetch is under way). */
static void decide(struct cp_workloads *w, wl_entry *e, wl_obs *o, int64_t now) {
    struct controlplane *cp = w->cp;
    const workload_spec *s = &e->run;
    int npods = o->util_rc == 0 ? o->npods : 0;
    hpa_pod pods[WL_OBS_PODS];
    hpa_metric hm = {pods, 0, HPA_UTILIZATION, s->target_utilization};
    e->observe[0] = 0;
    if (o->util_rc < 0 && o->util_rc != -ENOENT) {
        snprintf(e->observe, sizeof e->observe, "utilization: %.200s", o->m[M_UTIL].error);
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: utilization: %s", s->name,
                    o->m[M_UTIL].error);
    }
    for (int i = 0; i < npods; i++)
        pods[i] = (hpa_pod){o->util[i] * 10, 1000, 1, 1, 0};
    hm.n = (size_t)npods;
    planner_counts c;
    planner_counts_get(e->pl, &c);
    int current = npods;
    if (o->replicas_rc == 0) current = o->replicas;
    if (!e->inventory_done && current > 0) { /* adopt what runs today as Online */
        for (int i = 0; i < current; i++) {
            char id[64];
            snprintf(id, sizeof id, "%.40s-live-%d", s->name, i + 1);
            planner_add_replica(e->pl, id, REPLICA_ONLINE, now);
        }
        e->inventory_done = 1;
        planner_counts_get(e->pl, &c);
    }
    if (e->inventory_done) current = c.online + c.starting + c.activating;
    const fc_series *trp = o->hist_rc == 0 ? &o->hist : NULL;
    int want_traffic = 0;
    for (int i = 0; i < s->n_providers; i++)
        want_traffic |= s->providers[i].type == WL_PROV_PREDICTIVE;
    if (want_traffic && s->n_traffic > 0) {
        if (trp) {
            if (!e->training && portrait_training_due(e->eng, now)) train_start(w, e, o, now);
        } else {
            snprintf(e->observe, sizeof e->observe, "traffic %.40s: %.180s", s->traffic[0].name,
                     o->hist_rc == -ENODATA ? "no data yet" : o->m[M_TRAFFIC].error);
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
    portrait_obs pobs = {now,           current, npods ? &hm : NULL,
                         npods ? 1 : 0, trp,     planner_scale_up_ahead(e->pl)};
    if (portrait_update(e->eng, &pobs, e->pt) == 0) {
        e->have_pt = 1;
        for (int i = 0; i < s->n_providers; i++) { /* a decision event when the source changes */
            if (s->providers[i].type != WL_PROV_PREDICTIVE) continue;
            const char *why = portrait_fallback_reason(e->eng, i);
            char text[PLANNER_EVENT_TEXT];
            if (why && !e->fell_back[i]) {
                snprintf(text, sizeof text, "providers[%d] (%.40s) falls back to reactive: %.200s",
                         i, s->providers[i].name, why);
                planner_note(e->pl, now, "fallback", text);
            } else if (!why && e->fell_back[i]) {
                const char *m = portrait_model_name(e->eng, i);
                snprintf(text, sizeof text,
                         "providers[%d] (%.40s): forecasts of %.60s drive the portrait again", i,
                         s->providers[i].name, m ? m : "?");
                planner_note(e->pl, now, "predictive", text);
            }
            e->fell_back[i] = why != NULL;
        }
    }
    if (!e->have_pt) return;
    planner_metric pm[2] = {{"utilization", 0}, {s->utilization.name, 0}};
    double avg = 0;
    for (int i = 0; i < npods; i++)
        avg += o->util[i];
    pm[0].value = pm[1].value = npods ? avg / npods : 0;
    planner_input in = {now, e->pt, pm, npods ? 2 : 0};
    const planner_action *acts;
    size_t nacts;
    if (planner_step(e->pl, &in, &acts, &nacts) < 0) return;
    workload_executor_fn ex = executors[s->target.kind];
    for (size_t i = 0; i < nacts; i++) {
        const planner_action *a = &acts[i];
        int rc = ex ? ex(cp, s, a) : -ENOSYS;
        record_action(e, now, a, rc == 0 ? "sent to executor" : strerror(-rc));
        if (rc < 0) planner_action_done(e->pl, a->replica, a->kind, 0, now);
    }
}

/* A fresh observation arrived (read on the loop, or by a fetch thread): note where each metric
 * came from, let the last good values stand in for failed reads, record Prometheus trouble and
 * recovery as decision events, decide, and keep it as the last good observation. */
static void obs_ready(struct cp_workloads *w, wl_entry *e, wl_obs *o, int64_t now) {
    if (o->util_rc == 0) o->util_at = o->now;
    if (o->replicas_rc == 0) o->replicas_at = o->now;
    if (o->hist_rc == 0) o->hist_at = o->now;
    obs_fill_from(o, e->last);
    for (int i = 0; i < M_N; i++)
        e->reads[i] = o->m[i], e->reads[i].at = o->now;
    char text[PLANNER_EVENT_TEXT];
    if (o->prom_err[0] && !e->prom_err[0]) {
        snprintf(text, sizeof text,
                 "prometheus: %.200s; using the last good observation and the store", o->prom_err);
        planner_note(e->pl, now, "prometheus", text);
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: %s", e->spec.name, text);
    } else if (!o->prom_err[0] && e->prom_err[0]) {
        planner_note(e->pl, now, "prometheus", "prometheus: answering again");
    }
    snprintf(e->prom_err, sizeof e->prom_err, "%s", o->prom_err);
    decide(w, e, o, now);
    obs_free(e->last);
    free(o->cap); /* only a fit started by this sync uses them */
    o->cap = NULL;
    o->want_cap = 0;
    e->last = o;
}

/* ---- fetches from Prometheus on worker threads ---------------------------------------- */

static void *fetch_main(void *arg) {
    fetch_job *j = arg;
    observe(j->job.w->cp->db, j->prom, j->spec, j->o);
    job_finished(&j->job);
    return NULL;
}

static void fetch_start(struct cp_workloads *w, wl_entry *e, prom *p, int64_t now) {
    fetch_job *j = calloc(1, sizeof *j);
    if (j) j->spec = malloc(sizeof *j->spec), j->o = calloc(1, sizeof *j->o);
    if (!j || !j->spec || !j->o) {
        if (j) free(j->spec), free(j->o);
        free(j);
        return;
    }
    *j->spec = e->run;
    j->o->now = now;
    j->o->want_cap = wants_capacity(e, now);
    j->prom = p;
    j->started_ms = tide_now_mono_ms();
    j->job.w = w;
    j->generation = e->generation;
    snprintf(j->name, sizeof j->name, "%s", e->spec.name);
    int rc = pthread_create(&j->job.th, NULL, fetch_main, j);
    if (rc != 0) {
        log_limited(&observe_rl, LOG_WARN, "workloads", "%s: cannot start a fetch: %s",
                    e->spec.name, strerror(rc));
        free(j->spec);
        obs_free(j->o);
        free(j);
        return;
    }
    job_push(w, &w->fetches, &j->job);
    e->fetching = 1;
    e->fetch_started = now;
}

/* Loop side: finished fetches drive a decision. With wait set (shutdown), waits for all. */
static void fetch_collect(struct cp_workloads *w, int wait) {
    for (;;) {
        fetch_job *j = (fetch_job *)job_pop(w, &w->fetches, wait);
        if (!j) return;
        wl_entry *e = find(w, j->name);
        if (e && e->generation == j->generation) {
            e->fetching = 0;
            e->stalled = 0;
            e->fetch_ms = tide_now_mono_ms() - j->started_ms;
            if (!wait) {
                obs_ready(w, e, j->o, tide_now_wall_ms() / 1000);
                j->o = NULL;
            }
        }
        obs_free(j->o);
        free(j->spec);
        free(j);
    }
}

static void on_wake(struct ev_loop *loop, ev_async *a, int revents) {
    (void)loop;
    (void)revents;
    struct cp_workloads *w =
        (struct cp_workloads *)((char *)a - offsetof(struct cp_workloads, wake));
    train_collect(w, 0);
    fetch_collect(w, 0);
}

static void on_tick(struct ev_loop *loop, ev_timer *t, int revents) {
    (void)loop;
    (void)revents;
    struct cp_workloads *w =
        (struct cp_workloads *)((char *)t - offsetof(struct cp_workloads, tick));
    int64_t now = tide_now_wall_ms() / 1000;
    prom *p = cp_http_prom(w->cp);
    for (wl_entry *e = w->head; e; e = e->next) {
        if (now < e->next_sync) continue;
        e->next_sync = now + e->run.sync_seconds;
        if (!p) { /* the store only: read on the loop (from memory) */
            wl_obs *o = calloc(1, sizeof *o);
            if (!o) continue;
            o->now = now;
            o->want_cap = wants_capacity(e, now);
            observe(w->cp->db, NULL, &e->run, o);
            obs_ready(w, e, o, now);
        } else if (!e->fetching) {
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
                planner_note(e->pl, now, "prometheus", text);
            }
            snprintf(e->prom_err, sizeof e->prom_err,
                     "no answer for %lld s (timeout %lld ms per request)",
                     (long long)(now - e->fetch_started),
                     (long long)w->cp->cfg.prometheus_timeout_ms);
            decide(w, e, e->last, now);
        }
    }
}

void workload_action_done(struct controlplane *cp, const char *workload, const char *replica,
                          planner_action_kind kind, int ok) {
    if (!cp || !cp->workloads) return;
    wl_entry *e = find(cp->workloads, workload);
    if (e) planner_action_done(e->pl, replica, kind, ok, tide_now_wall_ms() / 1000);
}

/* ---- ops commands --------------------------------------------------------------------- */

static const char *arg_str(const cJSON *args, const char *k) {
    const cJSON *j = cJSON_GetObjectItemCaseSensitive(args, k);
    return cJSON_IsString(j) ? j->valuestring : NULL;
}

static void op_apply(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *yaml = arg_str(args, "yaml");
    if (!yaml) {
        ops_reply_error(req, 2, "workload-apply needs args.yaml (the spec text)");
        return;
    }
    size_t len = strlen(yaml);
    if (len > MAX_YAML) {
        ops_reply_error(req, 2, "spec is %zu bytes, more than the %u allowed", len, MAX_YAML);
        return;
    }
    workload_spec spec;
    wl_problems probs;
    wl_problems_init(&probs);
    if (workload_parse(yaml, len, &spec, &probs) < 0) {
        /* the reply carries at most ~1 KiB: list what fits and say how many more there are
         * (tidectl apply validates locally first and prints them all) */
        char list[880] = "";
        size_t off = 0, shown = 0;
        for (; shown < probs.n; shown++) {
            const wl_problem *pb = &probs.v[shown];
            char line[400];
            if (pb->line > 0)
                snprintf(line, sizeof line, "%s (line %d): %s\n", pb->path, pb->line, pb->msg);
            else
                snprintf(line, sizeof line, "%s: %s\n", pb->path, pb->msg);
            if (off + strlen(line) >= sizeof list) break;
            memcpy(list + off, line, strlen(line) + 1);
            off += strlen(line);
        }
        if (shown < probs.n)
            ops_reply_error(
                req, 2,
                "invalid workload spec, %zu problems (nothing changed):\n%s... and %zu more",
                probs.n, list, probs.n - shown);
        else
            ops_reply_error(req, 2, "invalid workload spec, %zu problem%s (nothing changed):\n%s",
                            probs.n, probs.n == 1 ? "" : "s", list);
        wl_problems_fini(&probs);
        return;
    }
    wl_problems_fini(&probs);
    wl_entry *old = find(w, spec.name);
    if (old && strcmp(old->yaml, yaml) == 0) {
        cJSON *d = cJSON_CreateObject();
        cJSON_AddStringToObject(d, "name", spec.name);
        cJSON_AddStringToObject(d, "result", "unchanged");
        cJSON_AddNumberToObject(d, "generation", (double)old->generation);
        ops_reply(req, d);
        return;
    }
    wl_entry *e = entry_new(&spec, yaml, len);
    if (!e) {
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    int rc = save_yaml(w, spec.name, yaml);
    if (rc < 0) {
        entry_free(e);
        ops_reply_error(req, 1, "cannot store %s/%s.yaml: %s (nothing changed)", w->dir, spec.name,
                        strerror(-rc));
        return;
    }
    if (old) { /* the new spec takes over; replicas are re-adopted from observations */
        e->generation = old->generation + 1;
        wl_entry **pp = &w->head;
        while (*pp != old)
            pp = &(*pp)->next;
        e->next = old->next;
        *pp = e;
        entry_free(old);
    } else {
        e->generation = 1;
        e->next = w->head;
        w->head = e;
    }
    log_info("workloads", "%s %s (generation %llu)", old ? "configured" : "created", spec.name,
             (unsigned long long)e->generation);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", spec.name);
    cJSON_AddStringToObject(d, "result", old ? "configured" : "created");
    cJSON_AddNumberToObject(d, "generation", (double)e->generation);
    if (e->run.mode != e->spec.mode)
        cJSON_AddStringToObject(d, "note",
                                "no executor for this target kind yet: planned as Preview");
    ops_reply(req, d);
}

static const char *mode_name(wl_mode m) {
    return m == WL_MODE_PREVIEW ? "Preview" : "Auto";
}

static cJSON *target_json(const wl_target *t) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddStringToObject(o, "kind", wl_target_kind_name(t->kind));
    if (t->namespace_[0]) cJSON_AddStringToObject(o, "namespace", t->namespace_);
    if (t->name[0]) cJSON_AddStringToObject(o, "name", t->name);
    if (t->unit[0]) cJSON_AddStringToObject(o, "unit", t->unit);
    if (t->n_nodes) {
        cJSON *n = cJSON_AddArrayToObject(o, "nodes");
        for (int i = 0; i < t->n_nodes; i++)
            cJSON_AddItemToArray(n, cJSON_CreateString(t->nodes[i]));
    }
    return o;
}

static void summary(cJSON *o, const wl_entry *e) {
    planner_counts c;
    planner_counts_get(e->pl, &c);
    cJSON_AddStringToObject(o, "name", e->spec.name);
    cJSON_AddStringToObject(o, "namespace", e->spec.namespace_);
    cJSON_AddItemToObject(o, "target", target_json(&e->spec.target));
    cJSON_AddStringToObject(o, "mode", mode_name(e->spec.mode));
    cJSON_AddStringToObject(o, "effective_mode", mode_name(e->run.mode));
    cJSON_AddBoolToObject(o, "paused", e->spec.paused);
    cJSON_AddNumberToObject(o, "min", e->spec.min_replicas);
    cJSON_AddNumberToObject(o, "max", e->spec.max_replicas);
    cJSON_AddNumberToObject(o, "generation", (double)e->generation);
    cJSON_AddNumberToObject(o, "applied_ms", (double)e->applied_ms);
    if (e->have_pt) {
        cJSON_AddNumberToObject(o, "need", e->pt->needed[0]);
        cJSON_AddNumberToObject(o, "provisioned", e->pt->replicas[0]);
    } else {
        cJSON_AddNullToObject(o, "need");
        cJSON_AddNullToObject(o, "provisioned");
    }
    cJSON_AddNumberToObject(o, "online", c.online);
    cJSON_AddNumberToObject(o, "starting", c.starting);
    cJSON_AddNumberToObject(o, "activating", c.activating);
    cJSON_AddNumberToObject(o, "cutoff", c.cutoff);
    cJSON_AddNumberToObject(o, "standby", c.standby);
}

static void op_list(ops_request *req, const cJSON *args) {
    (void)args;
    struct cp_workloads *w = ops_cp(req)->workloads;
    cJSON *arr = cJSON_CreateArray();
    for (wl_entry *e = w->head; e; e = e->next) {
        cJSON *o = cJSON_CreateObject();
        summary(o, e);
        cJSON_AddItemToArray(arr, o);
    }
    ops_reply(req, arr);
}

static cJSON *event_json(const planner_event *ev, const char *workload) {
    cJSON *o = cJSON_CreateObject();
    cJSON_AddNumberToObject(o, "time", (double)ev->t);
    if (workload) cJSON_AddStringToObject(o, "workload", workload);
    cJSON_AddStringToObject(o, "kind", ev->kind);
    cJSON_AddStringToObject(o, "text", ev->text);
    return o;
}

static void op_describe(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    wl_entry *e = name ? find(w, name) : NULL;
    if (!e) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
        return;
    }
    cJSON *o = cJSON_CreateObject();
    summary(o, e);
    if (e->run.mode != e->spec.mode)
        cJSON_AddStringToObject(o, "note",
                                "no executor for this target kind yet: planned as Preview");
    cJSON_AddNumberToObject(o, "target_utilization", e->spec.target_utilization);
    cJSON_AddNumberToObject(o, "scale_up_ahead_seconds", planner_scale_up_ahead(e->pl));
    cJSON *prov = cJSON_AddArrayToObject(o, "providers");
    for (int i = 0; i < e->spec.n_providers; i++) {
        const wl_provider *p = &e->spec.providers[i];
        cJSON *po = cJSON_CreateObject();
        cJSON_AddStringToObject(po, "name", p->name);
        cJSON_AddStringToObject(po, "type", wl_provider_type_name(p->type));
        cJSON_AddNumberToObject(po, "priority", p->priority);
        if (p->type == WL_PROV_PREDICTIVE) { /* the live guard (portrait_live_mase) */
            double pts = 0, lm = portrait_live_mase(e->eng, i, &pts);
            const char *model = portrait_model_name(e->eng, i);
            const char *fb = portrait_fallback_reason(e->eng, i);
            if (model)
                cJSON_AddStringToObject(po, "model", model);
            else
                cJSON_AddNullToObject(po, "model");
            if (!isnan(lm))
                cJSON_AddNumberToObject(po, "live_mase", lm);
            else
                cJSON_AddNullToObject(po, "live_mase");
            cJSON_AddNumberToObject(po, "live_points", pts);
            if (fb)
                cJSON_AddStringToObject(po, "fallback", fb);
            else
                cJSON_AddNullToObject(po, "fallback");
        }
        cJSON_AddItemToArray(prov, po);
    }
    cJSON_AddStringToObject(o, "observation", e->observe);
    prom *pc = cp_http_prom(ops_cp(req));
    cJSON_AddStringToObject(o, "prometheus", prom_status(pc));
    cJSON_AddNumberToObject(o, "metrics_offset_seconds", e->spec.metrics_offset_seconds);
    cJSON *mo = cJSON_AddObjectToObject(o, "metrics");
    const wl_source *msrc[M_N] = {&e->spec.utilization,
                                  e->spec.has_replicas_metric ? &e->spec.replicas_metric : NULL,
                                  e->spec.n_traffic ? &e->spec.traffic[0] : NULL};
    for (int i = 0; i < M_N; i++) {
        const char *text = msrc[i] ? source_text(msrc[i]) : NULL;
        if (!text) continue;
        const metric_read *mr = &e->reads[i];
        cJSON *m = cJSON_AddObjectToObject(mo, metric_keys[i]);
        cJSON_AddStringToObject(m, "name", msrc[i]->name);
        cJSON_AddStringToObject(m, msrc[i]->selector[0] ? "selector" : "query", text);
        if (mr->at) {
            cJSON_AddStringToObject(m, "source", mr->source);
            cJSON_AddNumberToObject(m, "read_at", (double)mr->at);
            cJSON_AddBoolToObject(m, "stale", mr->stale);
        } else {
            cJSON_AddNullToObject(m, "source");
            cJSON_AddNullToObject(m, "read_at");
        }
        if (mr->error[0])
            cJSON_AddStringToObject(m, "error", mr->error);
        else
            cJSON_AddNullToObject(m, "error");
    }
    if (e->prom_err[0])
        cJSON_AddStringToObject(o, "prometheus_error", e->prom_err);
    else
        cJSON_AddNullToObject(o, "prometheus_error");
    if (e->fetch_ms >= 0)
        cJSON_AddNumberToObject(o, "last_fetch_ms", (double)e->fetch_ms);
    else
        cJSON_AddNullToObject(o, "last_fetch_ms");
    if (e->fit.at) {
        cJSON *f = cJSON_AddObjectToObject(o, "last_fit");
        cJSON_AddNumberToObject(f, "time", (double)e->fit.at);
        cJSON_AddStringToObject(f, "source", e->fit.source);
        cJSON_AddNumberToObject(f, "history_start", (double)e->fit.start);
        cJSON_AddNumberToObject(f, "history_end", (double)e->fit.end);
        cJSON_AddNumberToObject(f, "points", (double)e->fit.points);
        cJSON_AddNumberToObject(f, "models", e->fit.ok);
        cJSON_AddNumberToObject(f, "failed", e->fit.failed);
    } else {
        cJSON_AddNullToObject(o, "last_fit");
    }
    if (e->have_pt) {
        cJSON_AddStringToObject(o, "status", e->pt->status);
        cJSON *pa = cJSON_AddArrayToObject(o, "portrait");
        for (int k = 0; k < e->pt->n; k++) {
            cJSON *s = cJSON_CreateObject();
            cJSON_AddNumberToObject(s, "time", (double)(e->pt->t0 + (int64_t)k * e->pt->step));
            cJSON_AddNumberToObject(s, "replicas", e->pt->replicas[k]);
            cJSON_AddNumberToObject(s, "needed", e->pt->needed[k]);
            int src = e->pt->source[k];
            if (src >= 0)
                cJSON_AddStringToObject(s, "source", e->spec.providers[src].name);
            else
                cJSON_AddNullToObject(s, "source");
            if (!isnan(e->pt->traffic[k])) cJSON_AddNumberToObject(s, "traffic", e->pt->traffic[k]);
            cJSON_AddItemToArray(pa, s);
        }
    }
    size_t nr;
    const planner_replica *r = planner_replicas(e->pl, &nr);
    cJSON *ra = cJSON_AddArrayToObject(o, "replicas");
    for (size_t i = 0; i < nr; i++) {
        if (r[i].state == REPLICA_DELETED) continue;
        cJSON *ro = cJSON_CreateObject();
        cJSON_AddStringToObject(ro, "id", r[i].id);
        cJSON_AddStringToObject(ro, "state", planner_state_name(r[i].state));
        cJSON_AddNumberToObject(ro, "since", (double)r[i].since);
        cJSON_AddItemToArray(ra, ro);
    }
    cJSON *ea = cJSON_AddArrayToObject(o, "events");
    uint64_t n = planner_event_count(e->pl), from = n > 20 ? n - 20 : 0;
    for (uint64_t i = from; i < n; i++) {
        planner_event ev;
        if (planner_event_at(e->pl, i, &ev) == 0) cJSON_AddItemToArray(ea, event_json(&ev, NULL));
    }
    cJSON *aa = cJSON_AddArrayToObject(o, "actions");
    uint64_t an = e->nacts, afrom = an > 20 ? an - 20 : 0;
    for (uint64_t i = afrom; i < an; i++) {
        const action_rec *ar = &e->acts[i % ACTIONS_KEPT];
        cJSON *ao = cJSON_CreateObject();
        cJSON_AddNumberToObject(ao, "time", (double)ar->t);
        cJSON_AddStringToObject(ao, "action", planner_action_name(ar->a.kind));
        cJSON_AddStringToObject(ao, "replica", ar->a.replica);
        cJSON_AddStringToObject(ao, "reason", ar->a.reason);
        cJSON_AddStringToObject(ao, "result", ar->note);
        cJSON_AddItemToArray(aa, ao);
    }
    ops_reply(req, o);
}

static void op_events(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    const cJSON *lim = cJSON_GetObjectItemCaseSensitive(args, "limit");
    int limit = cJSON_IsNumber(lim) && lim->valuedouble >= 1 ? (int)lim->valuedouble : 100;
    if (name && !find(w, name)) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name);
        return;
    }
    /* gather, then keep the newest `limit` in time order */
    size_t cap = 0, n = 0;
    for (wl_entry *e = w->head; e; e = e->next)
        cap += PLANNER_MAX_EVENTS;
    planner_event *evs = malloc((cap ? cap : 1) * sizeof *evs);
    const char **who = malloc((cap ? cap : 1) * sizeof *who);
    if (!evs || !who) {
        free(evs);
        free(who);
        ops_reply_error(req, 1, "out of memory");
        return;
    }
    for (wl_entry *e = w->head; e; e = e->next) {
        if (name && strcmp(e->spec.name, name) != 0) continue;
        uint64_t total = planner_event_count(e->pl);
        for (uint64_t i = total > PLANNER_MAX_EVENTS ? total - PLANNER_MAX_EVENTS : 0; i < total;
             i++)
            if (planner_event_at(e->pl, i, &evs[n]) == 0) who[n++] = e->spec.name;
    }
    for (size_t i = 1; i < n; i++) { /* stable insertion sort by time */
        planner_event ev = evs[i];
        const char *wn = who[i];
        size_t j = i;
        while (j > 0 && evs[j - 1].t > ev.t) {
            evs[j] = evs[j - 1];
            who[j] = who[j - 1];
            j--;
        }
        evs[j] = ev;
        who[j] = wn;
    }
    cJSON *arr = cJSON_CreateArray();
    for (size_t i = n > (size_t)limit ? n - (size_t)limit : 0; i < n; i++)
        cJSON_AddItemToArray(arr, event_json(&evs[i], who[i]));
    free(evs);
    free(who);
    ops_reply(req, arr);
}

static void op_delete(ops_request *req, const cJSON *args) {
    struct cp_workloads *w = ops_cp(req)->workloads;
    const char *name = arg_str(args, "name");
    wl_entry **pp = &w->head;
    while (*pp && (!name || strcmp((*pp)->spec.name, name) != 0))
        pp = &(*pp)->next;
    if (!*pp) {
        ops_reply_error(req, 2, "no workload named \"%s\"", name ? name : "");
        return;
    }
    char path[1200];
    snprintf(path, sizeof path, "%s/%s.yaml", w->dir, name);
    if (unlink(path) < 0 && errno != ENOENT) {
        ops_reply_error(req, 1, "cannot remove %s: %s (nothing changed)", path, strerror(errno));
        return;
    }
    wl_entry *e = *pp;
    *pp = e->next;
    entry_free(e);
    log_info("workloads", "deleted %s", name);
    cJSON *d = cJSON_CreateObject();
    cJSON_AddStringToObject(d, "name", name);
    cJSON_AddStringToObject(d, "result", "deleted");
    ops_reply(req, d);
}

OPS_COMMAND(wl_apply, "workload-apply", "apply a workload spec: {yaml}", op_apply)
OPS_COMMAND(wl_list, "workload-list", "list workloads", op_list)
OPS_COMMAND(wl_describe, "workload-describe", "portrait, replicas and decisions of {name}",
            op_describe)
OPS_COMMAND(wl_events, "workload-events", "decision events: {name?, limit?}", op_events)
OPS_COMMAND(wl_delete, "workload-delete", "delete workload {name}", op_delete)

/* ---- module --------------------------------------------------------------------------- */

static int wl_start(struct controlplane *cp, char *err, size_t errlen) {
    struct cp_workloads *w = calloc(1, sizeof *w);
    if (!w) {
        snprintf(err, errlen, "workloads: out of memory");
        return -ENOMEM;
    }
    w->cp = cp;
    snprintf(w->dir, sizeof w->dir, "%s/workloads", cp->cfg.data_dir);
    if (mkdir(w->dir, 0750) < 0 && errno != EEXIST) {
        int e = errno;
        snprintf(err, errlen, "workloads: %s: %s", w->dir, strerror(e));
        free(w);
        return -e;
    }
    pthread_mutex_init(&w->lock, NULL);
    load_saved(w);
    cp->workloads = w;
    ev_timer_init(&w->tick, on_tick, 1.0, 1.0);
    ev_timer_start(cp->loop, &w->tick);
    ev_async_init(&w->wake, on_wake);
    ev_async_start(cp->loop, &w->wake);
    return 0;
}

static void wl_stop(struct controlplane *cp) {
    struct cp_workloads *w = cp->workloads;
    if (!w) return;
    ev_timer_stop(cp->loop, &w->tick);
    /* fetches under way end at once instead of after Prometheus's timeout and retries */
    prom_cancel(cp_http_prom(cp));
    train_collect(w, /* wait = */ 1);
    fetch_collect(w, /* wait = */ 1);
    ev_async_stop(cp->loop, &w->wake);
    pthread_mutex_destroy(&w->lock);
    while (w->head) {
        wl_entry *e = w->head;
        w->head = e->next;
        entry_free(e);
    }
    free(w);
    cp->workloads = NULL;
}

CP_MODULE(workloads, "workloads", wl_start, wl_stop)
