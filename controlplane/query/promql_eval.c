/* promql_eval.c: evaluates a PromQL AST over Tide's store at a range of steps, as Prometheus
 * 2.x defines the semantics (lookback, range windows, extrapolated rate, vector matching).
 *
 * Every node is evaluated for all steps at once: an instant vector is a set of series, each
 * with one value per step (ABSENT where the series has none), a scalar one value per step.
 * Range vectors exist only as function arguments: the points of each series are read once and
 * a window slides over them step by step. */
#include "query/promql.h"

#include "log.h"
#include "query/promql_funcs.h"
#include "query/query.h"
#include "query/re.h"
#include "store/tsdb.h"

#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- absent values: a NaN payload no arithmetic produces ---- */

static inline double absent(void) {
    return query_absent();
}
static inline int is_absent(double d) {
    return query_is_absent(d);
}

/* ---- function table ---- */

#define S PQ_T_SCALAR
#define V PQ_T_VECTOR
#define M PQ_T_MATRIX
#define T PQ_T_STRING
const pq_func pq_funcs[] = {
    {"abs", F_ABS, {V}, 1, 1, 1, V},
    {"absent", F_ABSENT, {V}, 1, 1, 1, V},
    {"absent_over_time", F_ABSENT_OVER_TIME, {M}, 1, 1, 1, V},
    {"ceil", F_CEIL, {V}, 1, 1, 1, V},
    {"changes", F_CHANGES, {M}, 1, 1, 1, V},
    {"clamp", F_CLAMP, {V, S, S}, 3, 3, 3, V},
    {"clamp_max", F_CLAMP_MAX, {V, S}, 2, 2, 2, V},
    {"clamp_min", F_CLAMP_MIN, {V, S}, 2, 2, 2, V},
    {"day_of_month", F_DAY_OF_MONTH, {V}, 1, 0, 1, V},
    {"day_of_week", F_DAY_OF_WEEK, {V}, 1, 0, 1, V},
    {"days_in_month", F_DAYS_IN_MONTH, {V}, 1, 0, 1, V},
    {"delta", F_DELTA, {M}, 1, 1, 1, V},
    {"deriv", F_DERIV, {M}, 1, 1, 1, V},
    {"exp", F_EXP, {V}, 1, 1, 1, V},
    {"floor", F_FLOOR, {V}, 1, 1, 1, V},
    {"histogram_quantile", F_HISTOGRAM_QUANTILE, {S, V}, 2, 2, 2, V},
    {"hour", F_HOUR, {V}, 1, 0, 1, V},
    {"idelta", F_IDELTA, {M}, 1, 1, 1, V},
    {"increase", F_INCREASE, {M}, 1, 1, 1, V},
    {"irate", F_IRATE, {M}, 1, 1, 1, V},
    {"label_join", F_LABEL_JOIN, {V, T, T, T}, 4, 3, -1, V},
    {"label_replace",
     F_LABEL_REPLACE,
     {
         V,
         T,
         T,
         T,
     },
     4,
     5,
     5,
     V},
    {"ln", F_LN, {V}, 1, 1, 1, V},
    {"log10", F_LOG10, {V}, 1, 1, 1, V},
    {"log2", F_LOG2, {V}, 1, 1, 1, V},
    {"minute", F_MINUTE, {V}, 1, 0, 1, V},
    {"month", F_MONTH, {V}, 1, 0, 1, V},
    {"predict_linear", F_PREDICT_LINEAR, {M, S}, 2, 2, 2, V},
    {"rate", F_RATE, {M}, 1, 1, 1, V},
    {"resets", F_RESETS, {M}, 1, 1, 1, V},
    {"round", F_ROUND, {V, S}, 2, 1, 2, V},
    {"scalar", F_SCALAR, {V}, 1, 1, 1, S},
    {"sgn", F_SGN, {V}, 1, 1, 1, V},
    {"sort", F_SORT, {V}, 1, 1, 1, V},
    {"sort_desc", F_SORT_DESC, {V}, 1, 1, 1, V},
    {"sqrt", F_SQRT, {V}, 1, 1, 1, V},
    {"time", F_TIME, {S}, 0, 0, 0, S},
    {"timestamp", F_TIMESTAMP, {V}, 1, 1, 1, V},
    {"vector", F_VECTOR, {S}, 1, 1, 1, V},
    {"year", F_YEAR, {V}, 1, 0, 1, V},
    {"avg_over_time", F_AVG_OT, {M}, 1, 1, 1, V},
    {"min_over_time", F_MIN_OT, {M}, 1, 1, 1, V},
    {"max_over_time", F_MAX_OT, {M}, 1, 1, 1, V},
    {"sum_over_time", F_SUM_OT, {M}, 1, 1, 1, V},
    {"count_over_time", F_COUNT_OT, {M}, 1, 1, 1, V},
    {"quantile_over_time", F_QUANTILE_OT, {S, M}, 2, 2, 2, V},
    {"stddev_over_time", F_STDDEV_OT, {M}, 1, 1, 1, V},
    {"stdvar_over_time", F_STDVAR_OT, {M}, 1, 1, 1, V},
    {"last_over_time", F_LAST_OT, {M}, 1, 1, 1, V},
    {"present_over_time", F_PRESENT_OT, {M}, 1, 1, 1, V},
};
#undef S
#undef V
#undef M
#undef T
const size_t pq_nfuncs = sizeof pq_funcs / sizeof *pq_funcs;

const pq_func *pq_func_find(const char *name, size_t len) {
    for (size_t i = 0; i < pq_nfuncs; i++)
        if (strlen(pq_funcs[i].name) == len && !memcmp(pq_funcs[i].name, name, len))
            return &pq_funcs[i];
    return NULL;
}

/* ---- values ---- */

typedef struct lset {
    char **n, **v; /* sorted by name */
    size_t k;
} lset;

typedef struct ser {
    lset l;
    double *v; /* one per step */
} ser;

typedef struct val {
    int type;
    double *sc; /* scalar: one per step */
    ser *s;
    size_t n, cap;
    char *str;
} val;

typedef struct mser {
    lset l;
    int64_t *ts;
    double *v;
    size_t n, cap; /* cap: room in ts and v */
} mser;

typedef struct ev {
    tsdb *db;
    int64_t qstart, qend; /* the whole query's range: @ start() / end() */
    uint64_t held, max_samples;
    int64_t deadline;
    const atomic_int *cancel;
    uint32_t only_id; /* nonzero: selectors consider this series only */
    int (*stop)(void *);
    void *stop_arg;
    char *err;
    size_t errlen;
    unsigned ticks;
    tsdb_tv spare; /* point arrays of a series done with, for the next read (no malloc and
                      page faults per series) */
} ev;

/* one evaluation range: steps start, start + step, ..., n of them */
typedef struct rng {
    int64_t start, step;
    size_t n;
} rng;

static int ev_fail(ev *e, int rc, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static int ev_fail(ev *e, int rc, const char *fmt, ...) {
    if (!e->err[0]) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->err, e->errlen, fmt, ap);
        va_end(ap);
    }
    return rc;
}

static int budget(ev *e, uint64_t add) {
    e->held += add;
    if (e->held > e->max_samples)
        return ev_fail(e, -E2BIG,
                       "query processing would load too many samples into memory in query "
                       "execution (more than %llu; narrow the selectors, the range or use a "
                       "larger step)",
                       (unsigned long long)e->max_samples);
    return 0;
}
static void unbudget(ev *e, uint64_t n) {
    e->held = e->held > n ? e->held - n : 0;
}

static int check(ev *e) {
    if (e->cancel && atomic_load(e->cancel))
        return ev_fail(e, -ECANCELED, "query cancelled (client gone or shutting down)");
    if ((++e->ticks & 63) == 0) {
        if (e->deadline && tide_now_mono_ms() > e->deadline)
            return ev_fail(e, -ETIMEDOUT, "query timed out in query execution");
        if (e->stop && e->stop(e->stop_arg))
            return ev_fail(e, -ECANCELED, "query cancelled: the client went away");
    }
    return 0;
}

static void lset_free(lset *l) {
    for (size_t i = 0; i < l->k; i++) {
        free(l->n[i]);
        free(l->v[i]);
    }
    free(l->n);
    free(l->v);
    l->n = l->v = NULL;
    l->k = 0;
}

static const char *lget(const lset *l, const char *name) {
    for (size_t i = 0; i < l->k; i++)
        if (!strcmp(l->n[i], name)) return l->v[i];
    return "";
}

static int lset_from(lset *l, char *const *n, char *const *v, size_t k) {
    l->n = calloc(k ? k : 1, sizeof *l->n);
    l->v = calloc(k ? k : 1, sizeof *l->v);
    l->k = 0;
    if (!l->n || !l->v) return -ENOMEM;
    for (size_t i = 0; i < k; i++) {
        l->n[i] = strdup(n[i]);
        l->v[i] = strdup(v[i]);
        l->k = i + 1;
        if (!l->n[i] || !l->v[i]) return -ENOMEM;
    }
    return 0;
}

static int lset_copy(lset *d, const lset *s) {
    return lset_from(d, s->n, s->v, s->k);
}

/* Sets name=value (value "" deletes), keeping the names sorted. */
static int lset_set(lset *l, const char *name, const char *value) {
    size_t i = 0;
    while (i < l->k && strcmp(l->n[i], name) < 0)
        i++;
    if (i < l->k && !strcmp(l->n[i], name)) {
        if (!value[0]) {
            free(l->n[i]);
            free(l->v[i]);
            memmove(l->n + i, l->n + i + 1, (l->k - i - 1) * sizeof *l->n);
            memmove(l->v + i, l->v + i + 1, (l->k - i - 1) * sizeof *l->v);
            l->k--;
            return 0;
        }
        char *nv = strdup(value);
        if (!nv) return -ENOMEM;
        free(l->v[i]);
        l->v[i] = nv;
        return 0;
    }
    if (!value[0]) return 0;
    char **nn = realloc(l->n, (l->k + 1) * sizeof *nn);
    if (!nn) return -ENOMEM;
    l->n = nn;
    char **vv = realloc(l->v, (l->k + 1) * sizeof *vv);
    if (!vv) return -ENOMEM;
    l->v = vv;
    char *a = strdup(name), *b = strdup(value);
    if (!a || !b) {
        free(a);
        free(b);
        return -ENOMEM;
    }
    memmove(l->n + i + 1, l->n + i, (l->k - i) * sizeof *l->n);
    memmove(l->v + i + 1, l->v + i, (l->k - i) * sizeof *l->v);
    l->n[i] = a;
    l->v[i] = b;
    l->k++;
    return 0;
}

static void lset_del(lset *l, const char *name) {
    (void)lset_set(l, name, "");
}

/* A key of the labels picked by (names, on) or all but them (and __name__) when !on. */
typedef struct kbuf {
    char *p;
    size_t n, cap;
} kbuf;
static int kput(kbuf *b, const char *s) {
    size_t n = strlen(s) + 1;
    if (b->n + n > b->cap) {
        size_t nc = b->cap ? b->cap * 2 : 128;
        while (nc < b->n + n)
            nc *= 2;
        char *np = realloc(b->p, nc);
        if (!np) return -ENOMEM;
        b->p = np;
        b->cap = nc;
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
    return 0;
}

static int in_list(const char *s, char *const *list, size_t n) {
    for (size_t i = 0; i < n; i++)
        if (!strcmp(s, list[i])) return 1;
    return 0;
}

static int sig_key(const lset *l, int on, char *const *names, size_t nn, kbuf *b) {
    b->n = 0;
    for (size_t i = 0; i < l->k; i++) {
        int listed = in_list(l->n[i], names, nn);
        if (on ? !listed : (listed || !strcmp(l->n[i], "__name__"))) continue;
        if (kput(b, l->n[i]) || kput(b, l->v[i])) return -ENOMEM;
    }
    return kput(b, "");
}

static int lkey(const lset *l, kbuf *b) {
    b->n = 0;
    for (size_t i = 0; i < l->k; i++)
        if (kput(b, l->n[i]) || kput(b, l->v[i])) return -ENOMEM;
    return kput(b, "");
}

/* ---- a string-keyed hash map to indexes ---- */

typedef struct hmap {
    char **k;
    size_t *kl;
    size_t *idx;
    size_t cap, n;
} hmap;

static uint64_t hash(const char *p, size_t n) {
    uint64_t h = 1469598103934665603ULL;
    for (size_t i = 0; i < n; i++)
        h = (h ^ (unsigned char)p[i]) * 1099511628211ULL;
    return h;
}

static void hmap_free(hmap *m) {
    for (size_t i = 0; i < m->cap; i++)
        free(m->k[i]);
    free(m->k);
    free(m->kl);
    free(m->idx);
    memset(m, 0, sizeof *m);
}

/* Finds key; inserts it with idx = *io when absent (returns 0), or sets *io (returns 1).
 * -ENOMEM. */
static int hmap_get(hmap *m, const char *key, size_t kl, size_t *io, int insert) {
    if (insert && (m->n + 1) * 2 > m->cap) {
        size_t nc = m->cap ? m->cap * 2 : 64;
        hmap nm = {calloc(nc, sizeof(char *)), calloc(nc, sizeof(size_t)),
                   calloc(nc, sizeof(size_t)), nc, m->n};
        if (!nm.k || !nm.kl || !nm.idx) {
            free(nm.k);
            free(nm.kl);
            free(nm.idx);
            return -ENOMEM;
        }
        for (size_t i = 0; i < m->cap; i++)
            if (m->k[i]) {
                size_t j = hash(m->k[i], m->kl[i]) & (nc - 1);
                while (nm.k[j])
                    j = (j + 1) & (nc - 1);
                nm.k[j] = m->k[i];
                nm.kl[j] = m->kl[i];
                nm.idx[j] = m->idx[i];
            }
        free(m->k);
        free(m->kl);
        free(m->idx);
        *m = nm;
    }
    if (!m->cap) return 0;
    size_t j = hash(key, kl) & (m->cap - 1);
    while (m->k[j]) {
        if (m->kl[j] == kl && !memcmp(m->k[j], key, kl)) {
            *io = m->idx[j];
            return 1;
        }
        j = (j + 1) & (m->cap - 1);
    }
    if (!insert) return 0;
    m->k[j] = malloc(kl);
    if (!m->k[j]) return -ENOMEM;
    memcpy(m->k[j], key, kl);
    m->kl[j] = kl;
    m->idx[j] = *io;
    m->n++;
    return 0;
}

/* ---- values ---- */

static void val_free(ev *e, val *x, size_t nsteps) {
    for (size_t i = 0; i < x->n; i++) {
        lset_free(&x->s[i].l);
        free(x->s[i].v);
        unbudget(e, nsteps);
    }
    free(x->s);
    if (x->sc) unbudget(e, nsteps);
    free(x->sc);
    free(x->str);
    memset(x, 0, sizeof *x);
}

/* Adds a series (labels taken over: *l is reset), values all absent. Returns its index. */
static int val_push(ev *e, val *x, lset *l, size_t nsteps, size_t *at) {
    int rc = budget(e, nsteps);
    if (rc) return rc;
    if (x->n == x->cap) {
        size_t nc = x->cap ? x->cap * 2 : 16;
        ser *ns = realloc(x->s, nc * sizeof *ns);
        if (!ns) {
            unbudget(e, nsteps);
            return -ENOMEM;
        }
        x->s = ns;
        x->cap = nc;
    }
    double *v = malloc((nsteps ? nsteps : 1) * sizeof *v);
    if (!v) {
        unbudget(e, nsteps);
        return -ENOMEM;
    }
    for (size_t i = 0; i < nsteps; i++)
        v[i] = absent();
    x->s[x->n].l = *l;
    memset(l, 0, sizeof *l);
    x->s[x->n].v = v;
    *at = x->n++;
    return 0;
}

static int scalar_new(ev *e, val *x, size_t nsteps) {
    memset(x, 0, sizeof *x);
    x->type = PQ_T_SCALAR;
    int rc = budget(e, nsteps);
    if (rc) return rc;
    x->sc = malloc((nsteps ? nsteps : 1) * sizeof *x->sc);
    if (!x->sc) {
        unbudget(e, nsteps);
        return -ENOMEM;
    }
    return 0;
}

/* drops series without any value */
static void val_compact(ev *e, val *x, size_t nsteps) {
    size_t w = 0;
    for (size_t i = 0; i < x->n; i++) {
        int any = 0;
        for (size_t k = 0; k < nsteps && !any; k++)
            any = !is_absent(x->s[i].v[k]);
        if (any)
            x->s[w++] = x->s[i];
        else {
            lset_free(&x->s[i].l);
            free(x->s[i].v);
            unbudget(e, nsteps);
        }
    }
    x->n = w;
}

/* ---- reading the store ---- */

/* Gives m's point arrays back for the next read (or frees them); m keeps its labels. */
static void mser_release(ev *e, mser *m) {
    if (!e->spare.ts && m->ts && m->v) {
        e->spare.ts = m->ts;
        e->spare.v = m->v;
        e->spare.cap = m->cap;
    } else {
        free(m->ts);
        free(m->v);
    }
    m->ts = NULL;
    m->v = NULL;
    m->cap = 0;
}

/* Points of series id in [from, to] as (ts, value), value = a bucket's mean, strictly
 * increasing in time, into out (arrays from the spare ones when there are). Resolution: the
 * finest one unless the evaluation's spacing spans ten buckets of a coarser tier. */
static int read_points(ev *e, uint32_t id, int64_t from, int64_t to, int64_t spacing, mser *out) {
    tsdb_tv tv = e->spare;
    memset(&e->spare, 0, sizeof e->spare);
    int rc = tsdb_read_step_tv(e->db, id, spacing, from, to, &tv, NULL);
    out->ts = tv.ts;
    out->v = tv.v;
    out->cap = tv.cap;
    out->n = 0;
    if (rc && rc != -EBADMSG) { /* a damaged chunk: what came before it is used */
        mser_release(e, out);
        return rc == -ENOENT ? 0 : ev_fail(e, rc, "reading series %u: %s", id, strerror(-rc));
    }
    if ((rc = budget(e, tv.n))) {
        mser_release(e, out);
        return rc;
    }
    for (size_t i = 0; i < tv.n; i++)
        if (is_absent(tv.v[i])) tv.v[i] = NAN;
    out->n = tv.n;
    return 0;
}

static void mser_free(ev *e, mser *m, size_t n) {
    for (size_t i = 0; i < n; i++) {
        lset_free(&m[i].l);
        mser_release(e, &m[i]);
        unbudget(e, m[i].n);
    }
    free(m);
}

/* the evaluation time of step k of a selector/subquery node */
static int64_t node_time(const ev *e, const pq_node *n, const rng *r, size_t k) {
    int64_t t = n->at == PQ_AT_TIME    ? n->at_ms
                : n->at == PQ_AT_START ? e->qstart
                : n->at == PQ_AT_END   ? e->qend
                                       : r->start + (int64_t)k * r->step;
    return t - n->offset_ms;
}

typedef struct match_cb {
    uint32_t *ids;
    size_t n, cap;
} match_cb;

/* ids of the store's series matching a selector */
static int select_ids(ev *e, const pq_node *n, match_cb *out) {
    memset(out, 0, sizeof *out);
    if (!e->db) return 0;
    query_expr qe = {0};
    qe.m = n->m;
    qe.nm = n->nm;
    uint32_t count = tsdb_series_count(e->db);
    for (uint32_t id = e->only_id ? e->only_id : 1; id <= count; id++) {
        if (e->only_id && id != e->only_id) break;
        int rc = check(e); /* checks the clock every 64 calls */
        if (rc) return rc;
        const tsdb_label *labels;
        size_t nl;
        if (tsdb_series_labels(e->db, id, &labels, &nl) || nl > 64) continue;
        const char *names[64], *values[64];
        for (size_t i = 0; i < nl; i++) {
            names[i] = labels[i].name;
            values[i] = labels[i].value;
        }
        if (!query_match(&qe, names, values, nl)) continue;
        if (out->n == out->cap) {
            size_t nc = out->cap ? out->cap * 2 : 64;
            uint32_t *ni = realloc(out->ids, nc * sizeof *ni);
            if (!ni) return -ENOMEM;
            out->ids = ni;
            out->cap = nc;
        }
        out->ids[out->n++] = id;
    }
    return 0;
}

static int series_lset(ev *e, uint32_t id, lset *l) {
    const tsdb_label *labels;
    size_t nl;
    memset(l, 0, sizeof *l);
    if (tsdb_series_labels(e->db, id, &labels, &nl)) return -ENOENT;
    char *names[64], *values[64];
    for (size_t i = 0; i < nl && i < 64; i++) {
        names[i] = (char *)labels[i].name;
        values[i] = (char *)labels[i].value;
    }
    return lset_from(l, names, values, nl < 64 ? nl : 64);
}

/* time span [lo, hi] covered by the evaluation times of node n over r */
static void node_span(const ev *e, const pq_node *n, const rng *r, int64_t *lo, int64_t *hi) {
    int64_t a = node_time(e, n, r, 0), b = node_time(e, n, r, r->n ? r->n - 1 : 0);
    *lo = a < b ? a : b;
    *hi = a < b ? b : a;
}

/* Instant vector selector; want_ts: values are the samples' timestamps in seconds. */
static int eval_selector(ev *e, const pq_node *n, const rng *r, val *out, int want_ts) {
    memset(out, 0, sizeof *out);
    out->type = PQ_T_VECTOR;
    match_cb ids;
    int rc = select_ids(e, n, &ids);
    int64_t lo, hi;
    node_span(e, n, r, &lo, &hi);
    for (size_t i = 0; i < ids.n && !rc; i++) {
        if ((rc = check(e))) break;
        mser m = {0};
        rc = read_points(e, ids.ids[i], lo - PROMQL_LOOKBACK_MS, hi, r->step, &m);
        if (rc) {
            mser_release(e, &m);
            break;
        }
        lset l;
        size_t at = 0;
        if (m.n && !(rc = series_lset(e, ids.ids[i], &l))) {
            rc = val_push(e, out, &l, r->n, &at);
            lset_free(&l);
        }
        if (!rc && m.n) {
            double *v = out->s[at].v;
            size_t j = 0;
            int any = 0;
            for (size_t k = 0; k < r->n; k++) {
                int64_t t = node_time(e, n, r, k);
                if (n->at) j = 0;
                while (j < m.n && m.ts[j] <= t)
                    j++;
                if (j > 0 && m.ts[j - 1] >= t - PROMQL_LOOKBACK_MS) {
                    v[k] = want_ts ? (double)m.ts[j - 1] / 1000.0 : m.v[j - 1];
                    any = 1;
                }
            }
            if (!any) { /* nothing inside the lookback anywhere: drop it */
                out->n--;
                lset_free(&out->s[out->n].l);
                free(out->s[out->n].v);
                unbudget(e, r->n);
            }
        }
        mser_release(e, &m);
        unbudget(e, m.n);
    }
    free(ids.ids);
    return rc;
}

static int eval(ev *e, const pq_node *n, const rng *r, val *out);

/* A range vector: per series its points from (first eval time - range) to the last eval time,
 * for a selector read from the store, for a subquery evaluated at its own steps. *nout series. */
static int eval_matrix(ev *e, const pq_node *n, const rng *r, mser **out, size_t *nout) {
    *out = NULL;
    *nout = 0;
    int64_t lo, hi;
    node_span(e, n, r, &lo, &hi);
    if (n->kind == PQ_SEL) {
        match_cb ids;
        int rc = select_ids(e, n, &ids);
        mser *ms = calloc(ids.n ? ids.n : 1, sizeof *ms);
        if (!ms) rc = rc ? rc : -ENOMEM;
        size_t k = 0;
        /* a window shorter than ten buckets reads a finer tier */
        int64_t spacing = n->range_ms < r->step ? n->range_ms : r->step;
        for (size_t i = 0; !rc && i < ids.n; i++) {
            if ((rc = check(e))) break;
            mser m = {0};
            rc = read_points(e, ids.ids[i], lo - n->range_ms, hi, spacing, &m);
            if (!rc && m.n) rc = series_lset(e, ids.ids[i], &m.l);
            if (rc || !m.n) {
                lset_free(&m.l);
                mser_release(e, &m);
                unbudget(e, m.n);
                continue;
            }
            ms[k++] = m;
        }
        free(ids.ids);
        if (rc) {
            mser_free(e, ms, k);
            return rc;
        }
        *out = ms;
        *nout = k;
        return 0;
    }
    /* subquery: evaluate the inner expression at steps aligned to its step, from lo - range */
    const pq_node *in = n->lhs;
    int64_t step = n->step_ms > 0 ? n->step_ms : 60000; /* default evaluation interval */
    int64_t from = lo - n->range_ms;
    int64_t s0 = from - (((from % step) + step) % step);
    if (s0 < from) s0 += step;
    if (hi < s0) return 0;
    uint64_t ns = (uint64_t)((hi - s0) / step) + 1;
    if (ns > 11000000)
        return ev_fail(e, -E2BIG, "subquery at char %zu has too many steps (%llu)", n->pos + 1,
                       (unsigned long long)ns);
    rng sub = {s0, step, (size_t)ns};
    val x;
    int rc = eval(e, in, &sub, &x);
    if (rc) return rc;
    if (x.type == PQ_T_SCALAR) { /* cannot happen: the parser allows vectors only */
        val_free(e, &x, sub.n);
        return ev_fail(e, -EINVAL, "subquery of a scalar");
    }
    mser *ms = calloc(x.n ? x.n : 1, sizeof *ms);
    if (!ms) {
        val_free(e, &x, sub.n);
        return -ENOMEM;
    }
    size_t k = 0;
    for (size_t i = 0; i < x.n && !rc; i++) {
        size_t cnt = 0;
        for (size_t j = 0; j < sub.n; j++)
            cnt += !is_absent(x.s[i].v[j]);
        if (!cnt) continue;
        mser *m = &ms[k];
        m->ts = malloc(cnt * sizeof *m->ts);
        m->v = malloc(cnt * sizeof *m->v);
        m->cap = cnt;
        if (!m->ts || !m->v || (rc = budget(e, cnt))) {
            free(m->ts);
            free(m->v);
            rc = rc ? rc : -ENOMEM;
            break;
        }
        for (size_t j = 0; j < sub.n; j++)
            if (!is_absent(x.s[i].v[j])) {
                m->ts[m->n] = sub.start + (int64_t)j * sub.step;
                m->v[m->n++] = x.s[i].v[j];
            }
        m->l = x.s[i].l;
        memset(&x.s[i].l, 0, sizeof x.s[i].l);
        k++;
    }
    val_free(e, &x, sub.n);
    if (rc) {
        mser_free(e, ms, k);
        return rc;
    }
    *out = ms;
    *nout = k;
    return 0;
}

/* ---- range functions ---- */

static double extrapolated(const int64_t *ts, const double *v, size_t n, int64_t t, int64_t range,
                           int counter, int is_rate) {
    if (n < 2) return absent();
    double result = v[n - 1] - v[0];
    if (counter) {
        double last = 0;
        for (size_t i = 0; i < n; i++) {
            if (v[i] < last) result += last;
            last = v[i];
        }
    }
    double range_start = (double)(t - range) / 1000, range_end = (double)t / 1000;
    double first_t = (double)ts[0] / 1000, last_t = (double)ts[n - 1] / 1000;
    double to_start = first_t - range_start, to_end = range_end - last_t;
    double sampled = last_t - first_t;
    double avg = sampled / (double)(n - 1);
    if (counter && result > 0 && v[0] >= 0) {
        double to_zero = sampled * (v[0] / result);
        if (to_zero < to_start) to_start = to_zero;
    }
    double threshold = avg * 1.1, interval = sampled;
    interval += to_start < threshold ? to_start : avg / 2;
    interval += to_end < threshold ? to_end : avg / 2;
    result = result * (interval / sampled);
    if (is_rate) result /= (double)range / 1000;
    return result;
}

static void linreg(const int64_t *ts, const double *v, size_t n, int64_t icept, double *slope,
                   double *intercept) {
    double sx = 0, sy = 0, sxy = 0, sx2 = 0;
    int consty = 1;
    for (size_t i = 0; i < n; i++) {
        if (i && v[i] != v[0]) consty = 0;
        double x = (double)(ts[i] - icept) / 1e3;
        sx += x;
        sy += v[i];
        sxy += x * v[i];
        sx2 += x * x;
    }
    if (consty) {
        if (isinf(v[0])) {
            *slope = *intercept = NAN;
            return;
        }
        *slope = 0;
        *intercept = v[0];
        return;
    }
    double dn = (double)n;
    double cov = sxy - sx * sy / dn, var = sx2 - sx * sx / dn;
    *slope = cov / var;
    *intercept = sy / dn - *slope * sx / dn;
}

static int cmp_dbl(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    if (isnan(x)) return isnan(y) ? 0 : -1;
    if (isnan(y)) return 1;
    return (x > y) - (x < y);
}

/* Prometheus's quantile over sorted-in-place values */
static double quantile(double q, double *v, size_t n) {
    if (!n || isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(v, n, sizeof *v, cmp_dbl);
    double rank = q * (double)(n - 1);
    size_t lo = (size_t)fmax(0, floor(rank)), hi = (size_t)fmin((double)(n - 1), lo + 1);
    double w = rank - floor(rank);
    return v[lo] * (1 - w) + v[hi] * w;
}

static double range_fn(int fid, const int64_t *ts, const double *v, size_t n, int64_t t,
                       int64_t range, double arg, double *scratch) {
    if (!n) return absent();
    switch (fid) {
    case F_RATE:
        return extrapolated(ts, v, n, t, range, 1, 1);
    case F_INCREASE:
        return extrapolated(ts, v, n, t, range, 1, 0);
    case F_DELTA:
        return extrapolated(ts, v, n, t, range, 0, 0);
    case F_IRATE:
    case F_IDELTA: {
        if (n < 2) return absent();
        double a = v[n - 2], b = v[n - 1];
        double r = (fid == F_IRATE && b < a) ? b : b - a;
        if (fid == F_IRATE) {
            double dt = (double)(ts[n - 1] - ts[n - 2]) / 1000;
            if (dt == 0) return absent();
            r /= dt;
        }
        return r;
    }
    case F_DERIV: {
        if (n < 2) return absent();
        double s, i;
        linreg(ts, v, n, ts[0], &s, &i);
        return s;
    }
    case F_PREDICT_LINEAR: {
        if (n < 2) return absent();
        double s, i;
        linreg(ts, v, n, t, &s, &i);
        return s * arg + i;
    }
    case F_RESETS:
    case F_CHANGES: {
        double c = 0;
        for (size_t i = 1; i < n; i++) {
            if (fid == F_RESETS)
                c += v[i] < v[i - 1];
            else
                c += !(v[i] == v[i - 1] || (isnan(v[i]) && isnan(v[i - 1])));
        }
        return c;
    }
    case F_AVG_OT: {
        double mean = 0, c = 0;
        for (size_t i = 0; i < n; i++) {
            c++;
            if (isinf(mean)) {
                if (isinf(v[i]) && (mean > 0) == (v[i] > 0)) continue;
                if (!isinf(v[i]) && !isnan(v[i])) continue;
            }
            mean += v[i] / c - mean / c;
        }
        return mean;
    }
    case F_SUM_OT: {
        double s = 0;
        for (size_t i = 0; i < n; i++)
            s += v[i];
        return s;
    }
    case F_COUNT_OT:
        return (double)n;
    case F_MIN_OT:
    case F_MAX_OT: {
        double m = v[0];
        for (size_t i = 1; i < n; i++)
            if ((fid == F_MAX_OT ? v[i] > m : v[i] < m) || isnan(m)) m = v[i];
        return m;
    }
    case F_STDDEV_OT:
    case F_STDVAR_OT: {
        double c = 0, mean = 0, aux = 0;
        for (size_t i = 0; i < n; i++) {
            c++;
            double d = v[i] - mean;
            mean += d / c;
            aux += d * (v[i] - mean);
        }
        double var = aux / c;
        return fid == F_STDDEV_OT ? sqrt(var) : var;
    }
    case F_QUANTILE_OT:
        memcpy(scratch, v, n * sizeof *v);
        return quantile(arg, scratch, n);
    case F_LAST_OT:
        return v[n - 1];
    case F_PRESENT_OT:
        return 1;
    default:
        return absent();
    }
}

/* rate, increase or delta of one series at every step t0, t0 + step, ...: what range_fn gives
 * step by step (the same arithmetic in the same order, so the same bits), with the window as
 * two indices sliding over the points and the counter-reset pass skipped where the window
 * holds no reset (it would add nothing: a first value below 0 adds 0, which changes only a
 * -0 difference, and that needs the first value to be +0). */
static void extrap_series(int fid, const mser *m, int64_t range, int64_t t0, int64_t step,
                          size_t nsteps, double *out) {
    const int64_t *ts = m->ts;
    const double *v = m->v;
    size_t n = m->n, lo = 0, hi = 0, nr = 1; /* nr: the first reset after lo (or n) */
    int counter = fid != F_DELTA, is_rate = fid == F_RATE;
    int64_t t = t0;
    for (size_t k = 0; k < nsteps; k++, t += step) {
        while (hi < n && ts[hi] <= t)
            hi++;
        while (lo < hi && ts[lo] < t - range)
            lo++;
        size_t c = hi - lo;
        if (c < 2) continue; /* out[k] stays absent */
        const double *w = v + lo;
        double result = w[c - 1] - w[0];
        if (counter) {
            while (nr < n && (nr <= lo || !(v[nr] < v[nr - 1])))
                nr++;
            if (nr < hi) {
                double last = 0;
                for (size_t i = 0; i < c; i++) {
                    if (w[i] < last) result += last;
                    last = w[i];
                }
            }
        }
        double range_start = (double)(t - range) / 1000, range_end = (double)t / 1000;
        double first_t = (double)ts[lo] / 1000, last_t = (double)ts[hi - 1] / 1000;
        double to_start = first_t - range_start, to_end = range_end - last_t;
        double sampled = last_t - first_t;
        double avg = sampled / (double)(c - 1);
        if (counter && result > 0 && w[0] >= 0) {
            double to_zero = sampled * (w[0] / result);
            if (to_zero < to_start) to_start = to_zero;
        }
        double threshold = avg * 1.1, interval = sampled;
        interval += to_start < threshold ? to_start : avg / 2;
        interval += to_end < threshold ? to_end : avg / 2;
        result = result * (interval / sampled);
        if (is_rate) result /= (double)range / 1000;
        out[k] = result;
    }
}

static int drop_name(lset *l) {
    lset_del(l, "__name__");
    return 0;
}

/* rate(x[5m]) and the other functions of a range vector */
/* The function over one series' points: a new output series (or, for absent_over_time, the
 * steps where it has points marked in seen). */
static int range_series(ev *e, const pq_node *mnode, int fid, const val *argsc, const rng *r,
                        const mser *m, val *out, double *seen, double **scratch,
                        size_t *scratch_cap) {
    int64_t range = mnode->range_ms;
    size_t at = 0;
    int rc;
    if (fid == F_QUANTILE_OT && m->n > *scratch_cap) {
        double *ns = realloc(*scratch, m->n * sizeof *ns);
        if (!ns) return -ENOMEM;
        *scratch = ns;
        *scratch_cap = m->n;
    }
    if (!seen) {
        lset l;
        if ((rc = lset_copy(&l, &m->l))) {
            lset_free(&l);
            return rc;
        }
        if (fid != F_LAST_OT) drop_name(&l);
        rc = val_push(e, out, &l, r->n, &at);
        lset_free(&l);
        if (rc) return rc;
    }
    if (!seen && !mnode->at && (fid == F_RATE || fid == F_INCREASE || fid == F_DELTA)) {
        extrap_series(fid, m, range, node_time(e, mnode, r, 0), r->step, r->n, out->s[at].v);
        return 0;
    }
    size_t lo = 0, hi = 0;
    for (size_t k = 0; k < r->n; k++) {
        int64_t t = node_time(e, mnode, r, k);
        if (mnode->at) lo = hi = 0;
        while (hi < m->n && m->ts[hi] <= t)
            hi++;
        while (lo < hi && m->ts[lo] < t - range)
            lo++;
        if (seen) {
            if (hi > lo) seen[k] = 1;
            continue;
        }
        double arg = argsc && argsc->sc ? argsc->sc[k] : 0;
        out->s[at].v[k] = range_fn(fid, m->ts + lo, m->v + lo, hi - lo, t, range, arg, *scratch);
    }
    return 0;
}

/* rate(x[5m]) and the other functions of a range vector. A selector's series are read and
 * computed one at a time, so only the output is held, not every series' points at once. */
static int eval_range_call(ev *e, const pq_node *mnode, int fid, const val *argsc, const rng *r,
                           val *out) {
    memset(out, 0, sizeof *out);
    out->type = PQ_T_VECTOR;
    int rc = 0;
    int absent_ot = fid == F_ABSENT_OVER_TIME;
    double *seen = NULL, *scratch = NULL;
    size_t scratch_cap = 0;
    if (absent_ot) {
        seen = calloc(r->n ? r->n : 1, sizeof *seen);
        if (!seen) return -ENOMEM;
    }
    if (mnode->kind == PQ_SEL) {
        match_cb ids;
        rc = select_ids(e, mnode, &ids);
        for (size_t i = 0; !rc && i < ids.n; i++) {
            mser *ms;
            size_t nm;
            e->only_id = ids.ids[i];
            rc = eval_matrix(e, mnode, r, &ms, &nm);
            e->only_id = 0;
            for (size_t j = 0; !rc && j < nm; j++)
                rc = range_series(e, mnode, fid, argsc, r, &ms[j], out, seen, &scratch,
                                  &scratch_cap);
            mser_free(e, ms, nm); /* NULL and 0 when eval_matrix failed */
        }
        free(ids.ids);
    } else {
        mser *ms;
        size_t nm;
        rc = eval_matrix(e, mnode, r, &ms, &nm);
        if (!rc) {
            for (size_t j = 0; !rc && j < nm; j++) {
                if ((rc = check(e))) break;
                rc = range_series(e, mnode, fid, argsc, r, &ms[j], out, seen, &scratch,
                                  &scratch_cap);
            }
            mser_free(e, ms, nm);
        }
    }
    if (!rc && absent_ot) {
        lset l = {0};
        size_t at = 0;
        /* labels from the selector's equality matchers, as absent() */
        for (size_t i = 0; !rc && mnode->kind == PQ_SEL && i < mnode->nm; i++)
            if (mnode->m[i].op == QUERY_EQ && strcmp(mnode->m[i].name, "__name__"))
                rc = lset_set(&l, mnode->m[i].name, mnode->m[i].value);
        if (!rc) rc = val_push(e, out, &l, r->n, &at);
        lset_free(&l);
        for (size_t k = 0; !rc && k < r->n; k++)
            if (!seen[k]) out->s[at].v[k] = 1;
    }
    free(seen);
    free(scratch);
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

/* ---- instant functions ---- */

static double round_to(double v, double to) {
    if (to == 0) return v;
    return floor(v * (1 / to) + 0.5) / (1 / to);
}

static int time_part(int fid, double secs, double *out) {
    if (isnan(secs) || isinf(secs) || fabs(secs) > 9.2e15) {
        *out = NAN;
        return 0;
    }
    time_t t = (time_t)floor(secs);
    struct tm tm;
    gmtime_r(&t, &tm);
    switch (fid) {
    case F_MINUTE:
        *out = tm.tm_min;
        break;
    case F_HOUR:
        *out = tm.tm_hour;
        break;
    case F_DAY_OF_WEEK:
        *out = tm.tm_wday;
        break;
    case F_DAY_OF_MONTH:
        *out = tm.tm_mday;
        break;
    case F_MONTH:
        *out = tm.tm_mon + 1;
        break;
    case F_YEAR:
        *out = tm.tm_year + 1900;
        break;
    default: { /* days in month */
        static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
        int y = tm.tm_year + 1900, d = dm[tm.tm_mon];
        if (tm.tm_mon == 1 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0)) d = 29;
        *out = d;
    }
    }
    return 0;
}

static double apply1(int fid, double v, const double *a, size_t na) {
    switch (fid) {
    case F_ABS:
        return fabs(v);
    case F_CEIL:
        return ceil(v);
    case F_FLOOR:
        return floor(v);
    case F_EXP:
        return exp(v);
    case F_LN:
        return log(v);
    case F_LOG2:
        return log2(v);
    case F_LOG10:
        return log10(v);
    case F_SQRT:
        return sqrt(v);
    case F_SGN:
        return v > 0 ? 1 : v < 0 ? -1 : v;
    case F_ROUND:
        return round_to(v, na ? a[0] : 1);
    case F_CLAMP:
        return a[0] > a[1] ? absent() : fmax(a[0], fmin(a[1], v));
    case F_CLAMP_MAX:
        return fmin(a[0], v);
    case F_CLAMP_MIN:
        return fmax(a[0], v);
    default:
        return v;
    }
}

static const pq_node *unparen(const pq_node *n) {
    while (n->kind == PQ_PAREN)
        n = n->lhs;
    return n;
}

/* bucket quantile as Prometheus computes it; b sorted by upper bound */
typedef struct bucket {
    double le, count;
} bucket;
static int cmp_bucket(const void *a, const void *b) {
    double x = ((const bucket *)a)->le, y = ((const bucket *)b)->le;
    return (x > y) - (x < y);
}
static double bucket_quantile(double q, bucket *b, size_t n) {
    if (isnan(q)) return NAN;
    if (q < 0) return -INFINITY;
    if (q > 1) return INFINITY;
    qsort(b, n, sizeof *b, cmp_bucket);
    if (n < 2 || !isinf(b[n - 1].le) || b[n - 1].le < 0) return NAN;
    /* coalesce equal bounds, make counts monotonic */
    size_t w = 0;
    for (size_t i = 0; i < n; i++) {
        if (w && b[w - 1].le == b[i].le)
            b[w - 1].count += b[i].count;
        else
            b[w++] = b[i];
    }
    n = w;
    for (size_t i = 1; i < n; i++)
        if (b[i].count < b[i - 1].count) b[i].count = b[i - 1].count;
    if (n < 2) return NAN;
    double total = b[n - 1].count;
    if (total == 0) return NAN;
    double rank = q * total;
    size_t i = 0;
    while (i < n - 1 && b[i].count < rank)
        i++;
    if (i == n - 1) return b[n - 2].le;
    if (i == 0 && b[0].le <= 0) return b[0].le;
    double start = 0, end = b[i].le, cnt = b[i].count;
    if (i > 0) {
        start = b[i - 1].le;
        cnt -= b[i - 1].count;
        rank -= b[i - 1].count;
    }
    return start + (end - start) * (rank / cnt);
}

static int eval_histogram_quantile(ev *e, const val *q, val *x, const rng *r, val *out) {
    memset(out, 0, sizeof *out);
    out->type = PQ_T_VECTOR;
    hmap groups = {0};
    kbuf kb = {0};
    int rc = 0;
    size_t *gid = calloc(x->n ? x->n : 1, sizeof *gid);
    double *le = calloc(x->n ? x->n : 1, sizeof *le);
    if (!gid || !le) rc = -ENOMEM;
    for (size_t i = 0; i < x->n && !rc; i++) {
        const char *ls = lget(&x->s[i].l, "le");
        char *end;
        le[i] = strtod(ls, &end);
        if (!ls[0] || *end) {
            gid[i] = SIZE_MAX; /* no usable le: ignored */
            continue;
        }
        lset l;
        if ((rc = lset_copy(&l, &x->s[i].l))) {
            lset_free(&l);
            break;
        }
        lset_del(&l, "le");
        drop_name(&l);
        if ((rc = lkey(&l, &kb))) {
            lset_free(&l);
            break;
        }
        size_t g = out->n;
        int found = hmap_get(&groups, kb.p, kb.n, &g, 1);
        if (found < 0)
            rc = found;
        else if (!found)
            rc = val_push(e, out, &l, r->n, &g);
        lset_free(&l);
        gid[i] = g;
    }
    bucket *bk = malloc((x->n ? x->n : 1) * sizeof *bk);
    if (!bk) rc = rc ? rc : -ENOMEM;
    for (size_t g = 0; g < out->n && !rc; g++)
        for (size_t k = 0; k < r->n; k++) {
            size_t nb = 0;
            for (size_t i = 0; i < x->n; i++)
                if (gid[i] == g && !is_absent(x->s[i].v[k]))
                    bk[nb++] = (bucket){le[i], x->s[i].v[k]};
            if (nb) out->s[g].v[k] = bucket_quantile(q->sc[k], bk, nb);
        }
    free(bk);
    free(gid);
    free(le);
    free(kb.p);
    hmap_free(&groups);
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

static int eval_label_replace(ev *e, const pq_node *n, val *x, const rng *r) {
    const char *dst = n->args[1]->str, *repl = n->args[2]->str, *src = n->args[3]->str,
               *pat = n->args[4]->str;
    char why[200];
    tide_re *re = tide_re_new(pat, why, sizeof why);
    if (!re)
        return ev_fail(e, -EINVAL, "invalid regular expression in label_replace(): %s: %s", pat,
                       why);
    if (!query_label_name_ok(dst)) {
        tide_re_free(re);
        return ev_fail(e, -EINVAL, "invalid destination label name in label_replace(): %s", dst);
    }
    int ng = tide_re_groups(re) + 1;
    if (ng > TIDE_RE_MAX_GROUPS + 1) ng = TIDE_RE_MAX_GROUPS + 1;
    long st[TIDE_RE_MAX_GROUPS + 1], ln[TIDE_RE_MAX_GROUPS + 1];
    int rc = 0;
    for (size_t i = 0; i < x->n && !rc; i++) {
        const char *sv = lget(&x->s[i].l, src);
        if (!tide_re_match_groups(re, sv, strlen(sv), ng, st, ln)) continue;
        /* expand $1, ${1}, $name, ${name}, $$ */
        kbuf b = {0};
        for (const char *p = repl; *p && !rc; p++) {
            if (*p != '$') {
                char c[2] = {*p, 0};
                b.n = b.n ? b.n - 1 : 0;
                rc = kput(&b, c);
                continue;
            }
            p++;
            if (*p == '$') {
                b.n = b.n ? b.n - 1 : 0;
                rc = kput(&b, "$");
                continue;
            }
            int brace = *p == '{';
            if (brace) p++;
            const char *s0 = p;
            while (*p && (isalnum((unsigned char)*p) || *p == '_'))
                p++;
            size_t nl = (size_t)(p - s0);
            if (brace) {
                if (*p != '}') { /* not a reference: keep as is */
                    p = s0 - 2;
                    b.n = b.n ? b.n - 1 : 0;
                    rc = kput(&b, "$");
                    continue;
                }
            } else
                p--;
            char name[128];
            snprintf(name, sizeof name, "%.*s", (int)(nl < 127 ? nl : 127), s0);
            char *endp;
            long gi = strtol(name, &endp, 10);
            if (!nl || *endp) gi = tide_re_group_index(re, name);
            if (gi >= 0 && gi < ng && st[gi] >= 0) {
                char *piece = strndup(sv + st[gi], (size_t)ln[gi]);
                if (!piece)
                    rc = -ENOMEM;
                else {
                    b.n = b.n ? b.n - 1 : 0;
                    rc = kput(&b, piece);
                }
                free(piece);
            }
        }
        if (!rc) rc = lset_set(&x->s[i].l, dst, b.p ? b.p : "");
        free(b.p);
    }
    tide_re_free(re);
    (void)r;
    return rc;
}

static int eval_label_join(ev *e, const pq_node *n, val *x) {
    const char *dst = n->args[1]->str, *sep = n->args[2]->str;
    if (!query_label_name_ok(dst))
        return ev_fail(e, -EINVAL, "invalid destination label name in label_join(): %s", dst);
    int rc = 0;
    for (size_t i = 0; i < x->n && !rc; i++) {
        kbuf b = {0};
        rc = kput(&b, "");
        for (size_t a = 3; a < n->nargs && !rc; a++) {
            if (a > 3) {
                b.n--;
                rc = kput(&b, sep);
            }
            if (!rc) {
                b.n--;
                rc = kput(&b, lget(&x->s[i].l, n->args[a]->str));
            }
        }
        if (!rc) rc = lset_set(&x->s[i].l, dst, b.p);
        free(b.p);
    }
    return rc;
}

/* labels equal in several series after a function: Prometheus's "vector cannot contain
 * metrics with the same labelset" where two have a value at the same step */
static int dedupe(ev *e, val *x, size_t nsteps) {
    if (x->n < 2) return 0;
    hmap m = {0};
    kbuf kb = {0};
    int rc = 0;
    size_t w = 0;
    for (size_t i = 0; i < x->n && !rc; i++) {
        if ((rc = lkey(&x->s[i].l, &kb))) break;
        size_t at = w;
        int f = hmap_get(&m, kb.p, kb.n, &at, 1);
        if (f < 0) {
            rc = f;
            break;
        }
        if (!f) {
            x->s[w++] = x->s[i];
            continue;
        }
        for (size_t k = 0; k < nsteps; k++) {
            if (is_absent(x->s[i].v[k])) continue;
            if (!is_absent(x->s[at].v[k])) {
                rc = ev_fail(e, -EINVAL, "vector cannot contain metrics with the same labelset");
                break;
            }
            x->s[at].v[k] = x->s[i].v[k];
        }
        lset_free(&x->s[i].l);
        free(x->s[i].v);
        unbudget(e, nsteps);
        if (rc) { /* keep the array consistent for val_free */
            for (size_t j = i + 1; j < x->n; j++)
                x->s[w++] = x->s[j];
            break;
        }
    }
    if (!rc)
        x->n = w;
    else if (w < x->n && rc)
        x->n = w;
    free(kb.p);
    hmap_free(&m);
    return rc;
}

static int eval_call(ev *e, const pq_node *n, const rng *r, val *out) {
    int fid = pq_funcs[n->func].id;
    memset(out, 0, sizeof *out);
    int rc;
    switch (fid) {
    case F_TIME:
        if ((rc = scalar_new(e, out, r->n))) return rc;
        for (size_t k = 0; k < r->n; k++)
            out->sc[k] = (double)(r->start + (int64_t)k * r->step) / 1000;
        return 0;
    case F_RATE:
    case F_INCREASE:
    case F_DELTA:
    case F_IRATE:
    case F_IDELTA:
    case F_DERIV:
    case F_RESETS:
    case F_CHANGES:
    case F_AVG_OT:
    case F_MIN_OT:
    case F_MAX_OT:
    case F_SUM_OT:
    case F_COUNT_OT:
    case F_STDDEV_OT:
    case F_STDVAR_OT:
    case F_LAST_OT:
    case F_PRESENT_OT:
    case F_ABSENT_OVER_TIME:
        return eval_range_call(e, unparen(n->args[0]), fid, NULL, r, out);
    case F_PREDICT_LINEAR:
    case F_QUANTILE_OT: {
        int mi = fid == F_PREDICT_LINEAR ? 0 : 1;
        val a;
        if ((rc = eval(e, n->args[1 - mi], r, &a))) return rc;
        rc = eval_range_call(e, unparen(n->args[mi]), fid, &a, r, out);
        val_free(e, &a, r->n);
        return rc;
    }
    default:
        break;
    }
    if (fid == F_VECTOR) {
        val a;
        if ((rc = eval(e, n->args[0], r, &a))) return rc;
        out->type = PQ_T_VECTOR;
        lset l = {0};
        size_t at = 0;
        if (!(rc = val_push(e, out, &l, r->n, &at)))
            memcpy(out->s[at].v, a.sc, r->n * sizeof(double));
        val_free(e, &a, r->n);
        return rc;
    }
    if (fid == F_TIMESTAMP && unparen(n->args[0])->kind == PQ_SEL) {
        if ((rc = eval_selector(e, unparen(n->args[0]), r, out, 1))) return rc;
        for (size_t i = 0; i < out->n; i++)
            drop_name(&out->s[i].l);
        return dedupe(e, out, r->n);
    }
    val x = {0};
    if (n->nargs && (rc = eval(e, n->args[0], r, &x))) return rc;
    if (fid == F_SCALAR) {
        if ((rc = scalar_new(e, out, r->n))) {
            val_free(e, &x, r->n);
            return rc;
        }
        for (size_t k = 0; k < r->n; k++) {
            size_t c = 0;
            double v = NAN;
            for (size_t i = 0; i < x.n; i++)
                if (!is_absent(x.s[i].v[k])) {
                    c++;
                    v = x.s[i].v[k];
                }
            out->sc[k] = c == 1 ? v : NAN;
        }
        val_free(e, &x, r->n);
        return 0;
    }
    if (fid == F_ABSENT) {
        out->type = PQ_T_VECTOR;
        lset l = {0};
        const pq_node *a = unparen(n->args[0]);
        rc = 0;
        for (size_t i = 0; !rc && a->kind == PQ_SEL && i < a->nm; i++)
            if (a->m[i].op == QUERY_EQ && strcmp(a->m[i].name, "__name__"))
                rc = lset_set(&l, a->m[i].name, a->m[i].value);
        size_t at = 0;
        if (!rc) rc = val_push(e, out, &l, r->n, &at);
        lset_free(&l);
        for (size_t k = 0; !rc && k < r->n; k++) {
            int any = 0;
            for (size_t i = 0; i < x.n && !any; i++)
                any = !is_absent(x.s[i].v[k]);
            if (!any) out->s[at].v[k] = 1;
        }
        val_free(e, &x, r->n);
        if (!rc) val_compact(e, out, r->n);
        return rc;
    }
    if (fid == F_HISTOGRAM_QUANTILE) {
        val q = x, v;
        if ((rc = eval(e, n->args[1], r, &v))) {
            val_free(e, &q, r->n);
            return rc;
        }
        rc = eval_histogram_quantile(e, &q, &v, r, out);
        val_free(e, &q, r->n);
        val_free(e, &v, r->n);
        return rc;
    }
    if (n->nargs == 0) { /* minute() etc. without argument: of the evaluation time */
        out->type = PQ_T_VECTOR;
        lset l = {0};
        size_t at = 0;
        if ((rc = val_push(e, out, &l, r->n, &at))) return rc;
        for (size_t k = 0; k < r->n; k++)
            time_part(fid, (double)(r->start + (int64_t)k * r->step) / 1000, &out->s[at].v[k]);
        return 0;
    }
    /* functions of an instant vector, maybe with scalar arguments */
    val sa[3] = {{0}};
    size_t na = 0;
    for (size_t i = 1; i < n->nargs && i < 4 && !rc; i++)
        if (n->args[i]->type == PQ_T_SCALAR) {
            rc = eval(e, n->args[i], r, &sa[na]);
            if (!rc) na++;
        }
    if (!rc) {
        if (fid == F_LABEL_REPLACE)
            rc = eval_label_replace(e, n, &x, r);
        else if (fid == F_LABEL_JOIN)
            rc = eval_label_join(e, n, &x);
        else if (fid != F_SORT && fid != F_SORT_DESC) {
            for (size_t i = 0; i < x.n; i++) {
                drop_name(&x.s[i].l);
                for (size_t k = 0; k < r->n; k++) {
                    double *v = &x.s[i].v[k];
                    if (is_absent(*v)) continue;
                    double a[3];
                    for (size_t j = 0; j < na; j++)
                        a[j] = sa[j].sc[k];
                    if (fid == F_TIMESTAMP) /* of a computed vector: the evaluation time */
                        *v = (double)(r->start + (int64_t)k * r->step) / 1000;
                    else if (fid >= F_DAY_OF_MONTH && fid <= F_DAYS_IN_MONTH)
                        time_part(fid, *v, v);
                    else if (fid == F_MINUTE || fid == F_HOUR || fid == F_MONTH || fid == F_YEAR)
                        time_part(fid, *v, v);
                    else
                        *v = apply1(fid, *v, a, na);
                }
            }
        }
    }
    for (size_t j = 0; j < na; j++)
        val_free(e, &sa[j], r->n);
    if (!rc) rc = dedupe(e, &x, r->n);
    if (rc) {
        val_free(e, &x, r->n);
        return rc;
    }
    *out = x;
    out->type = PQ_T_VECTOR;
    if (fid == F_SORT || fid == F_SORT_DESC) out->str = strdup(fid == F_SORT ? "asc" : "desc");
    val_compact(e, out, r->n);
    return 0;
}

/* ---- aggregation ---- */

static int group_labels(const pq_node *n, const lset *in, lset *outl) {
    memset(outl, 0, sizeof *outl);
    if (n->without) {
        int rc = lset_copy(outl, in);
        if (rc) return rc;
        lset_del(outl, "__name__");
        for (size_t i = 0; i < n->nlabels; i++)
            lset_del(outl, n->labels[i]);
        return 0;
    }
    for (size_t i = 0; i < n->nlabels; i++) {
        const char *v = lget(in, n->labels[i]);
        int rc = lset_set(outl, n->labels[i], v);
        if (rc) return rc;
    }
    return 0;
}

/* The one selector an aggregation's argument reads series by series: an instant selector, or a
 * range function of a range selector (rate(x[5m]), avg_over_time(x[1h])) without @. NULL when
 * the argument is anything else (it is then evaluated whole). */
static const pq_node *streamable(const pq_node *a) {
    a = unparen(a);
    if (a->kind == PQ_SEL && !a->range_ms) return a;
    if (a->kind != PQ_CALL || a->nargs != 1) return NULL;
    int fid = pq_funcs[a->func].id;
    const pq_node *m = unparen(a->args[0]);
    if (m->kind != PQ_SEL || !m->range_ms || fid == F_ABSENT_OVER_TIME) return NULL;
    return pq_funcs[a->func].args[0] == PQ_T_MATRIX ? m : NULL;
}

/* sum/avg/min/max/count/group of a streamable argument: each series is evaluated alone and
 * folded into its group, so only the groups are held (memory bounded): the running
 * sum, minimum or maximum in the output series itself, plus a count per step. */
static int eval_agg_stream(ev *e, const pq_node *n, const pq_node *sel, const rng *r, val *out) {
    match_cb ids;
    int rc = select_ids(e, sel, &ids);
    hmap groups = {0};
    kbuf kb = {0};
    double **cnt = NULL;
    size_t ng = 0, capg = 0;
    int op = n->op;
    for (size_t i = 0; !rc && i < ids.n; i++) {
        val x;
        e->only_id = ids.ids[i];
        rc = eval(e, n->rhs, r, &x);
        e->only_id = 0;
        if (rc) break;
        for (size_t j = 0; !rc && j < x.n; j++) {
            lset gl;
            if ((rc = group_labels(n, &x.s[j].l, &gl)) || (rc = lkey(&gl, &kb))) {
                lset_free(&gl);
                break;
            }
            size_t at = out->n;
            int f = hmap_get(&groups, kb.p, kb.n, &at, 1);
            if (f < 0)
                rc = f;
            else if (!f) {
                if (ng == capg) {
                    size_t nc = capg ? capg * 2 : 16;
                    double **nn = realloc(cnt, nc * sizeof *nn);
                    if (!nn)
                        rc = -ENOMEM;
                    else {
                        cnt = nn;
                        capg = nc;
                    }
                }
                if (!rc) rc = budget(e, r->n);
                if (!rc) {
                    cnt[ng] = calloc(r->n ? r->n : 1, sizeof(double));
                    if (!cnt[ng]) {
                        unbudget(e, r->n);
                        rc = -ENOMEM;
                    } else
                        ng++;
                }
                if (!rc) rc = val_push(e, out, &gl, r->n, &at);
            }
            lset_free(&gl);
            if (rc) break;
            double *o = out->s[at].v, *c = cnt[at];
            for (size_t k = 0; k < r->n; k++) {
                double v = x.s[j].v[k];
                if (is_absent(v)) continue;
                if (c[k] == 0)
                    o[k] = v;
                else if (op == PQ_SUM || op == PQ_AVG)
                    o[k] += v;
                else if ((op == PQ_MAX && (v > o[k] || isnan(o[k]))) ||
                         (op == PQ_MIN && (v < o[k] || isnan(o[k]))))
                    o[k] = v;
                c[k] += 1;
            }
        }
        val_free(e, &x, r->n);
    }
    for (size_t i = 0; !rc && i < out->n; i++)
        for (size_t k = 0; k < r->n; k++) {
            if (cnt[i][k] == 0) continue;
            double *o = &out->s[i].v[k];
            if (op == PQ_AVG) *o /= cnt[i][k];
            if (op == PQ_COUNT) *o = cnt[i][k];
            if (op == PQ_GROUP) *o = 1;
        }
    for (size_t i = 0; i < ng; i++) {
        free(cnt[i]);
        unbudget(e, r->n);
    }
    free(cnt);
    free(kb.p);
    free(ids.ids);
    hmap_free(&groups);
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

static int eval_agg(ev *e, const pq_node *n, const rng *r, val *out) {
    memset(out, 0, sizeof *out);
    out->type = PQ_T_VECTOR;
    val param = {0}, x;
    int rc = 0;
    const pq_node *sel = e->only_id ? NULL : streamable(n->rhs);
    if (sel && (n->op == PQ_SUM || n->op == PQ_AVG || n->op == PQ_MIN || n->op == PQ_MAX ||
                n->op == PQ_COUNT || n->op == PQ_GROUP))
        return eval_agg_stream(e, n, sel, r, out);
    if (n->lhs && (rc = eval(e, n->lhs, r, &param))) return rc;
    if ((rc = eval(e, n->rhs, r, &x))) {
        val_free(e, &param, r->n);
        return rc;
    }
    int op = n->op;
    hmap groups = {0};
    kbuf kb = {0};
    size_t *gid = calloc(x.n ? x.n : 1, sizeof *gid);
    if (!gid) rc = -ENOMEM;
    const char *cv_label = op == PQ_COUNT_VALUES ? param.str : NULL;
    if (cv_label && !query_label_name_ok(cv_label))
        rc = ev_fail(e, -EINVAL, "invalid label name \"%s\"", cv_label);
    size_t ngroups = 0;
    lset *glabels = NULL;
    size_t gcap = 0;
    for (size_t i = 0; i < x.n && !rc; i++) {
        lset gl;
        if ((rc = group_labels(n, &x.s[i].l, &gl)) || (rc = lkey(&gl, &kb))) {
            lset_free(&gl);
            break;
        }
        size_t g = ngroups;
        int f = hmap_get(&groups, kb.p, kb.n, &g, 1);
        if (f < 0) {
            lset_free(&gl);
            rc = f;
            break;
        }
        if (!f) {
            if (ngroups == gcap) {
                size_t nc = gcap ? gcap * 2 : 16;
                lset *ng = realloc(glabels, nc * sizeof *ng);
                if (!ng) {
                    lset_free(&gl);
                    rc = -ENOMEM;
                    break;
                }
                glabels = ng;
                gcap = nc;
            }
            glabels[ngroups++] = gl;
        } else
            lset_free(&gl);
        gid[i] = g;
    }
    /* members of each group, for the per-step passes */
    size_t *order = NULL, *gstart = NULL;
    if (!rc) {
        order = malloc((x.n ? x.n : 1) * sizeof *order);
        gstart = calloc(ngroups + 1, sizeof *gstart);
        if (!order || !gstart)
            rc = -ENOMEM;
        else {
            for (size_t i = 0; i < x.n; i++)
                gstart[gid[i] + 1]++;
            for (size_t g = 0; g < ngroups; g++)
                gstart[g + 1] += gstart[g];
            size_t *fill = calloc(ngroups + 1, sizeof *fill);
            if (!fill)
                rc = -ENOMEM;
            else {
                for (size_t i = 0; i < x.n; i++)
                    order[gstart[gid[i]] + fill[gid[i]]++] = i;
                free(fill);
            }
        }
    }
    double *buf = malloc((x.n ? x.n : 1) * sizeof *buf);
    size_t *ib = malloc((x.n ? x.n : 1) * sizeof *ib);
    if (!buf || !ib) rc = rc ? rc : -ENOMEM;
    if (!rc && (op == PQ_TOPK || op == PQ_BOTTOMK)) {
        /* output: the input series themselves where selected */
        uint8_t *keep = calloc((x.n ? x.n : 1) * (r->n ? r->n : 1), 1);
        if (!keep) rc = -ENOMEM;
        for (size_t g = 0; g < ngroups && !rc; g++)
            for (size_t k = 0; k < r->n; k++) {
                double kk = param.sc[k];
                if (isnan(kk) || kk < 1) continue;
                size_t lim = kk >= 1e9 ? (size_t)1e9 : (size_t)kk, m = 0;
                for (size_t j = gstart[g]; j < gstart[g + 1]; j++)
                    if (!is_absent(x.s[order[j]].v[k])) ib[m++] = order[j];
                /* partial selection: simple insertion of the best lim */
                for (size_t a = 0; a < m && a < lim; a++) {
                    size_t best = a;
                    for (size_t b = a + 1; b < m; b++) {
                        double vb = x.s[ib[b]].v[k], vbest = x.s[ib[best]].v[k];
                        int better = op == PQ_TOPK ? (vb > vbest || (isnan(vbest) && !isnan(vb)))
                                                   : (vb < vbest || (isnan(vbest) && !isnan(vb)));
                        if (better) best = b;
                    }
                    size_t t = ib[a];
                    ib[a] = ib[best];
                    ib[best] = t;
                    keep[ib[a] * r->n + k] = 1;
                }
            }
        for (size_t i = 0; i < x.n && !rc; i++)
            for (size_t k = 0; k < r->n; k++)
                if (!keep[i * r->n + k]) x.s[i].v[k] = absent();
        free(keep);
        if (!rc) {
            *out = x;
            memset(&x, 0, sizeof x);
            out->type = PQ_T_VECTOR;
            val_compact(e, out, r->n);
        }
    } else if (!rc && op == PQ_COUNT_VALUES) {
        hmap outs = {0};
        for (size_t g = 0; g < ngroups && !rc; g++)
            for (size_t k = 0; k < r->n && !rc; k++)
                for (size_t j = gstart[g]; j < gstart[g + 1] && !rc; j++) {
                    double v = x.s[order[j]].v[k];
                    if (is_absent(v)) continue;
                    char vb[64];
                    query_format_value(v, vb, sizeof vb);
                    lset l;
                    if ((rc = lset_copy(&l, &glabels[g])) || (rc = lset_set(&l, cv_label, vb)) ||
                        (rc = lkey(&l, &kb))) {
                        lset_free(&l);
                        break;
                    }
                    size_t at = out->n;
                    int f = hmap_get(&outs, kb.p, kb.n, &at, 1);
                    if (f < 0)
                        rc = f;
                    else if (!f)
                        rc = val_push(e, out, &l, r->n, &at);
                    lset_free(&l);
                    if (rc) break;
                    double *o = &out->s[at].v[k];
                    *o = is_absent(*o) ? 1 : *o + 1;
                }
        hmap_free(&outs);
    } else if (!rc) {
        for (size_t g = 0; g < ngroups && !rc; g++) {
            size_t at = 0;
            if ((rc = val_push(e, out, &glabels[g], r->n, &at))) break;
            double *o = out->s[at].v;
            for (size_t k = 0; k < r->n; k++) {
                size_t m = 0;
                for (size_t j = gstart[g]; j < gstart[g + 1]; j++) {
                    double v = x.s[order[j]].v[k];
                    if (!is_absent(v)) buf[m++] = v;
                }
                if (!m) continue;
                double res = 0;
                switch (op) {
                case PQ_SUM:
                    for (size_t a = 0; a < m; a++)
                        res += buf[a];
                    break;
                case PQ_AVG: {
                    double mean = 0;
                    for (size_t a = 0; a < m; a++) {
                        double c = (double)(a + 1);
                        if (isinf(mean)) {
                            if (isinf(buf[a]) && (mean > 0) == (buf[a] > 0)) continue;
                            if (!isinf(buf[a]) && !isnan(buf[a])) continue;
                        }
                        mean += buf[a] / c - mean / c;
                    }
                    res = mean;
                    break;
                }
                case PQ_MIN:
                case PQ_MAX:
                    res = buf[0];
                    for (size_t a = 1; a < m; a++)
                        if ((op == PQ_MAX ? buf[a] > res : buf[a] < res) || isnan(res))
                            res = buf[a];
                    break;
                case PQ_COUNT:
                    res = (double)m;
                    break;
                case PQ_GROUP:
                    res = 1;
                    break;
                case PQ_STDDEV:
                case PQ_STDVAR: {
                    double c = 0, mean = 0, aux = 0;
                    for (size_t a = 0; a < m; a++) {
                        c++;
                        double d = buf[a] - mean;
                        mean += d / c;
                        aux += d * (buf[a] - mean);
                    }
                    res = op == PQ_STDDEV ? sqrt(aux / c) : aux / c;
                    break;
                }
                case PQ_QUANTILE:
                    res = quantile(param.sc[k], buf, m);
                    break;
                }
                o[k] = res;
            }
        }
    }
    if (!rc) val_compact(e, out, r->n);
    for (size_t g = 0; g < ngroups; g++) /* those moved into out are empty now */
        lset_free(&glabels[g]);
    free(glabels);
    free(order);
    free(gstart);
    free(buf);
    free(ib);
    free(gid);
    free(kb.p);
    hmap_free(&groups);
    val_free(e, &x, r->n);
    val_free(e, &param, r->n);
    return rc;
}

/* ---- binary operators ---- */

static int is_cmp(int op) {
    return op >= PQ_EQL && op <= PQ_LTE;
}

/* Whether an operator's result loses the metric name: arithmetic (not atan2, as in
 * Prometheus 2.x) and comparisons with bool. */
static int drops_name(const pq_node *n) {
    if (is_cmp(n->op)) return n->bool_mod;
    return n->op != PQ_ATAN2;
}

/* lhs op rhs; *keep for comparisons */
static double binop(int op, double l, double r, int *keep) {
    *keep = 1;
    switch (op) {
    case PQ_ADD:
        return l + r;
    case PQ_SUB:
        return l - r;
    case PQ_MUL:
        return l * r;
    case PQ_DIV:
        return l / r;
    case PQ_MOD:
        return fmod(l, r);
    case PQ_POW:
        return pow(l, r);
    case PQ_ATAN2:
        return atan2(l, r);
    case PQ_EQL:
        *keep = l == r;
        return l;
    case PQ_NEQ:
        *keep = l != r;
        return l;
    case PQ_GTR:
        *keep = l > r;
        return l;
    case PQ_LSS:
        *keep = l < r;
        return l;
    case PQ_GTE:
        *keep = l >= r;
        return l;
    case PQ_LTE:
        *keep = l <= r;
        return l;
    }
    return NAN;
}

static int eval_bin_scalar_vec(ev *e, const pq_node *n, val *a, val *b, const rng *r, val *out) {
    /* one side scalar */
    int vec_left = a->type == PQ_T_VECTOR;
    val *vec = vec_left ? a : b, *sc = vec_left ? b : a;
    for (size_t i = 0; i < vec->n; i++) {
        if (drops_name(n)) drop_name(&vec->s[i].l);
        for (size_t k = 0; k < r->n; k++) {
            double *v = &vec->s[i].v[k];
            if (is_absent(*v)) continue;
            double l = vec_left ? *v : sc->sc[k], rr = vec_left ? sc->sc[k] : *v;
            int keep;
            double res = binop(n->op, l, rr, &keep);
            if (is_cmp(n->op)) {
                if (n->bool_mod)
                    res = keep;
                else if (!keep) {
                    *v = absent();
                    continue;
                } else
                    res = *v; /* the vector's own value */
            }
            *v = res;
        }
    }
    *out = *vec;
    memset(vec, 0, sizeof *vec);
    out->type = PQ_T_VECTOR;
    int rc = dedupe(e, out, r->n);
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

static int eval_setop(ev *e, const pq_node *n, val *a, val *b, const rng *r, val *out) {
    hmap m = {0};
    kbuf kb = {0};
    int rc = 0;
    /* per rhs signature: which steps have a value */
    size_t nsig = 0, capsig = 0;
    uint8_t **present = NULL;
    val *idx_side = n->op == PQ_OR ? a : b;
    for (size_t i = 0; i < idx_side->n && !rc; i++) {
        if ((rc = sig_key(&idx_side->s[i].l, n->on, n->labels, n->nlabels, &kb))) break;
        size_t at = nsig;
        int f = hmap_get(&m, kb.p, kb.n, &at, 1);
        if (f < 0) {
            rc = f;
            break;
        }
        if (!f) {
            if (nsig == capsig) {
                size_t nc = capsig ? capsig * 2 : 16;
                uint8_t **np = realloc(present, nc * sizeof *np);
                if (!np) {
                    rc = -ENOMEM;
                    break;
                }
                present = np;
                capsig = nc;
            }
            present[nsig] = calloc(r->n ? r->n : 1, 1);
            if (!present[nsig]) {
                rc = -ENOMEM;
                break;
            }
            nsig++;
        }
        for (size_t k = 0; k < r->n; k++)
            if (!is_absent(idx_side->s[i].v[k])) present[at][k] = 1;
    }
    if (!rc && n->op == PQ_OR) {
        /* all of lhs, plus rhs series whose signature has no lhs value at that step */
        for (size_t i = 0; i < b->n && !rc; i++) {
            if ((rc = sig_key(&b->s[i].l, n->on, n->labels, n->nlabels, &kb))) break;
            size_t at = 0;
            int f = hmap_get(&m, kb.p, kb.n, &at, 0);
            if (f < 0) {
                rc = f;
                break;
            }
            if (f)
                for (size_t k = 0; k < r->n; k++)
                    if (present[at][k]) b->s[i].v[k] = absent();
        }
        if (!rc) {
            *out = *a;
            memset(a, 0, sizeof *a);
            for (size_t i = 0; i < b->n && !rc; i++) {
                size_t at = 0;
                if ((rc = val_push(e, out, &b->s[i].l, r->n, &at))) break;
                memcpy(out->s[at].v, b->s[i].v, r->n * sizeof(double));
            }
        }
    } else if (!rc) {
        for (size_t i = 0; i < a->n && !rc; i++) {
            if ((rc = sig_key(&a->s[i].l, n->on, n->labels, n->nlabels, &kb))) break;
            size_t at = 0;
            int f = hmap_get(&m, kb.p, kb.n, &at, 0);
            if (f < 0) {
                rc = f;
                break;
            }
            for (size_t k = 0; k < r->n; k++) {
                int has = f && present[at][k];
                if (n->op == PQ_AND ? !has : has) a->s[i].v[k] = absent();
            }
        }
        if (!rc) {
            *out = *a;
            memset(a, 0, sizeof *a);
        }
    }
    for (size_t i = 0; i < nsig; i++)
        free(present[i]);
    free(present);
    free(kb.p);
    hmap_free(&m);
    out->type = PQ_T_VECTOR;
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

static int result_labels(const pq_node *n, const lset *many, const lset *one, lset *outl) {
    int rc = lset_copy(outl, many);
    if (rc) return rc;
    if (drops_name(n)) lset_del(outl, "__name__");
    if (n->card == PQ_ONE_ONE) {
        if (n->on) {
            for (size_t i = 0; i < outl->k;) {
                if (!in_list(outl->n[i], n->labels, n->nlabels)) {
                    char *name = strdup(outl->n[i]);
                    if (!name) return -ENOMEM;
                    lset_del(outl, name);
                    free(name);
                } else
                    i++;
            }
        } else
            for (size_t i = 0; i < n->nlabels; i++)
                lset_del(outl, n->labels[i]);
    }
    for (size_t i = 0; i < n->ninclude; i++)
        if ((rc = lset_set(outl, n->include[i], lget(one, n->include[i])))) return rc;
    return 0;
}

static int eval_vec_vec(ev *e, const pq_node *n, val *a, val *b, const rng *r, val *out) {
    if (n->op >= PQ_AND) return eval_setop(e, n, a, b, r, out);
    memset(out, 0, sizeof *out);
    out->type = PQ_T_VECTOR;
    /* "one" side indexed by signature; for group_right the lhs is the one side */
    int swap = n->card == PQ_ONE_MANY;
    val *many = swap ? b : a, *one = swap ? a : b;
    hmap m = {0}, outs = {0};
    kbuf kb = {0}, ok = {0};
    int rc = 0;
    size_t *first = NULL, *next = NULL; /* chains of one-side series per signature */
    size_t nsig = 0;
    next = malloc((one->n ? one->n : 1) * sizeof *next);
    first = malloc((one->n ? one->n : 1) * sizeof *first);
    if (!next || !first) rc = -ENOMEM;
    for (size_t i = 0; i < one->n && !rc; i++) {
        if ((rc = sig_key(&one->s[i].l, n->on, n->labels, n->nlabels, &kb))) break;
        size_t at = nsig;
        int f = hmap_get(&m, kb.p, kb.n, &at, 1);
        if (f < 0) {
            rc = f;
            break;
        }
        if (!f) first[nsig++] = SIZE_MAX;
        next[i] = first[at];
        first[at] = i;
    }
    /* for one-to-one: a one-side value matched twice at a step is an error */
    uint8_t *used = NULL;
    if (!rc && n->card == PQ_ONE_ONE) {
        used = calloc((one->n ? one->n : 1) * (r->n ? r->n : 1), 1);
        if (!used) rc = -ENOMEM;
    }
    for (size_t i = 0; i < many->n && !rc; i++) {
        if ((rc = check(e))) break;
        if ((rc = sig_key(&many->s[i].l, n->on, n->labels, n->nlabels, &kb))) break;
        size_t at = 0;
        int f = hmap_get(&m, kb.p, kb.n, &at, 0);
        if (f <= 0) {
            rc = f;
            continue;
        }
        /* each one-side series of this signature gives its own output labels (include) */
        for (size_t j = first[at]; j != SIZE_MAX && !rc; j = next[j]) {
            lset ol;
            if ((rc = result_labels(n, &many->s[i].l, &one->s[j].l, &ol))) {
                lset_free(&ol);
                break;
            }
            if ((rc = lkey(&ol, &ok))) {
                lset_free(&ol);
                break;
            }
            size_t oi = out->n;
            int fo = hmap_get(&outs, ok.p, ok.n, &oi, 1);
            if (fo < 0)
                rc = fo;
            else if (!fo)
                rc = val_push(e, out, &ol, r->n, &oi);
            lset_free(&ol);
            if (rc) break;
            for (size_t k = 0; k < r->n; k++) {
                double lv = many->s[i].v[k], rv = one->s[j].v[k];
                if (is_absent(lv) || is_absent(rv)) continue;
                /* duplicates on the one side at this step */
                size_t cnt = 0;
                for (size_t j2 = first[at]; j2 != SIZE_MAX; j2 = next[j2])
                    cnt += !is_absent(one->s[j2].v[k]);
                if (cnt > 1) {
                    rc = ev_fail(e, -EINVAL,
                                 "found duplicate series for the match group on the %s hand-side "
                                 "of the operation; many-to-many matching not allowed: matching "
                                 "labels must be unique on one side",
                                 swap ? "left" : "right");
                    break;
                }
                if (used) {
                    if (used[j * r->n + k]) {
                        rc = ev_fail(e, -EINVAL,
                                     "multiple matches for labels: many-to-one matching must be "
                                     "explicit (group_left/group_right)");
                        break;
                    }
                    used[j * r->n + k] = 1;
                }
                double fl = swap ? rv : lv, fr = swap ? lv : rv;
                int keep;
                double res = binop(n->op, fl, fr, &keep);
                if (is_cmp(n->op)) {
                    if (n->bool_mod)
                        res = keep;
                    else if (!keep)
                        continue;
                }
                double *o = &out->s[oi].v[k];
                if (!is_absent(*o)) {
                    rc = ev_fail(e, -EINVAL,
                                 "multiple matches for labels: grouping labels must ensure "
                                 "unique matches");
                    break;
                }
                *o = res;
            }
        }
    }
    free(used);
    free(first);
    free(next);
    free(kb.p);
    free(ok.p);
    hmap_free(&m);
    hmap_free(&outs);
    if (!rc) val_compact(e, out, r->n);
    return rc;
}

static int eval_bin(ev *e, const pq_node *n, const rng *r, val *out) {
    val a, b;
    int rc = eval(e, n->lhs, r, &a);
    if (rc) return rc;
    if ((rc = eval(e, n->rhs, r, &b))) {
        val_free(e, &a, r->n);
        return rc;
    }
    memset(out, 0, sizeof *out);
    if (a.type == PQ_T_SCALAR && b.type == PQ_T_SCALAR) {
        rc = scalar_new(e, out, r->n);
        for (size_t k = 0; !rc && k < r->n; k++) {
            int keep;
            double v = binop(n->op, a.sc[k], b.sc[k], &keep);
            out->sc[k] = is_cmp(n->op) ? keep : v;
        }
    } else if (a.type == PQ_T_SCALAR || b.type == PQ_T_SCALAR)
        rc = eval_bin_scalar_vec(e, n, &a, &b, r, out);
    else
        rc = eval_vec_vec(e, n, &a, &b, r, out);
    val_free(e, &a, r->n);
    val_free(e, &b, r->n);
    return rc;
}

static int eval_node(ev *e, const pq_node *n, const rng *r, val *out);

/* Evaluates n over r into out; on an error out holds nothing (what a node had built is freed). */
static int eval(ev *e, const pq_node *n, const rng *r, val *out) {
    int rc = eval_node(e, n, r, out);
    if (rc) val_free(e, out, r->n);
    return rc;
}

static int eval_node(ev *e, const pq_node *n, const rng *r, val *out) {
    memset(out, 0, sizeof *out);
    int rc = check(e);
    if (rc) return rc;
    switch (n->kind) {
    case PQ_NUM:
        if ((rc = scalar_new(e, out, r->n))) return rc;
        for (size_t k = 0; k < r->n; k++)
            out->sc[k] = n->num;
        return 0;
    case PQ_STR:
        out->type = PQ_T_STRING;
        out->str = strdup(n->str);
        return out->str ? 0 : -ENOMEM;
    case PQ_PAREN:
        return eval(e, n->lhs, r, out);
    case PQ_NEG:
        if ((rc = eval(e, n->lhs, r, out))) return rc;
        if (out->type == PQ_T_SCALAR)
            for (size_t k = 0; k < r->n; k++)
                out->sc[k] = -out->sc[k];
        else {
            for (size_t i = 0; i < out->n; i++) {
                drop_name(&out->s[i].l);
                for (size_t k = 0; k < r->n; k++)
                    if (!is_absent(out->s[i].v[k])) out->s[i].v[k] = -out->s[i].v[k];
            }
            rc = dedupe(e, out, r->n);
        }
        return rc;
    case PQ_SEL:
        if (n->range_ms) return ev_fail(e, -EINVAL, "a range vector cannot be evaluated here");
        return eval_selector(e, n, r, out, 0);
    case PQ_SUBQ:
        return ev_fail(e, -EINVAL, "a subquery cannot be evaluated here");
    case PQ_AGG:
        return eval_agg(e, n, r, out);
    case PQ_CALL:
        return eval_call(e, n, r, out);
    case PQ_BIN:
        return eval_bin(e, n, r, out);
    }
    return ev_fail(e, -EINVAL, "unknown node");
}

/* ---- into a query_result ---- */

static int cmp_qseries(const void *a, const void *b) {
    const query_series *x = a, *y = b;
    for (size_t i = 0; i < x->nlabels && i < y->nlabels; i++) {
        int c = strcmp(x->names[i], y->names[i]);
        if (c) return c;
        c = strcmp(x->values[i], y->values[i]);
        if (c) return c;
    }
    return (x->nlabels > y->nlabels) - (x->nlabels < y->nlabels);
}

static int cmp_by_value(const void *a, const void *b, void *arg) {
    const query_series *x = a, *y = b;
    int dir = *(const int *)arg;
    double u = x->v[0], w = y->v[0];
    if (isnan(u)) return isnan(w) ? 0 : 1; /* NaN last either way */
    if (isnan(w)) return -1;
    return dir * ((u > w) - (u < w));
}

static int eval_top(ev *e, const pq_node *n, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                    query_result *r);

/* Point arrays kept per thread between queries, up to SPARE_KEEP points (2 x 8 bytes each,
 * 512 KiB: 32 MiB if all 64 HTTP connection threads kept theirs; 7 days at one minute is 10 k
 * points): a query's first read then costs no allocation and no page faults (arrays of a
 * query's size handed back to the system at its end are faulted in again by the next one). */
#define SPARE_KEEP 32768
static pthread_key_t spare_key;
static pthread_once_t spare_once = PTHREAD_ONCE_INIT;
static int spare_ok;
static void spare_destroy(void *p) {
    tsdb_tv *t = p;
    free(t->ts);
    free(t->v);
    free(t);
}
static void spare_key_init(void) {
    spare_ok = pthread_key_create(&spare_key, spare_destroy) == 0;
}

static void spare_take(ev *e) {
    pthread_once(&spare_once, spare_key_init);
    tsdb_tv *t = spare_ok ? pthread_getspecific(spare_key) : NULL;
    if (t) {
        e->spare = *t;
        memset(t, 0, sizeof *t);
    }
}

static void spare_keep(ev *e) {
    tsdb_tv *t = NULL;
    if (spare_ok && e->spare.cap && e->spare.cap <= SPARE_KEEP) {
        t = pthread_getspecific(spare_key);
        if (!t && (t = calloc(1, sizeof *t)) && pthread_setspecific(spare_key, t)) {
            free(t);
            t = NULL;
        }
    }
    if (t && !t->ts) {
        *t = e->spare;
    } else {
        free(e->spare.ts);
        free(e->spare.v);
    }
    memset(&e->spare, 0, sizeof e->spare);
}

int promql_eval(tsdb *db, const pq_node *n, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                const promql_limits *lim, query_result *r, char *err, size_t errlen) {
    memset(r, 0, sizeof *r);
    err[0] = 0;
    ev e = {.db = db,
            .qstart = start_ms,
            .qend = end_ms,
            .max_samples = lim && lim->max_samples ? lim->max_samples : PROMQL_DEFAULT_MAX_SAMPLES,
            .deadline = lim ? lim->deadline_mono_ms : 0,
            .cancel = lim ? lim->cancel : NULL,
            .stop = lim ? lim->stop : NULL,
            .stop_arg = lim ? lim->stop_arg : NULL,
            .err = err,
            .errlen = errlen};
    spare_take(&e);
    int rc = eval_top(&e, n, start_ms, end_ms, step_ms, r);
    spare_keep(&e);
    return rc;
}

static int eval_top(ev *e, const pq_node *n, int64_t start_ms, int64_t end_ms, int64_t step_ms,
                    query_result *r) {
    char *err = e->err;
    size_t errlen = e->errlen;
    if (step_ms <= 0 || end_ms < start_ms) return ev_fail(e, -EINVAL, "bad range");
    rng rg = {start_ms, step_ms, (size_t)((end_ms - start_ms) / step_ms + 1)};
    r->start_ms = start_ms;
    r->step_ms = step_ms;
    r->nsteps = rg.n;
    r->engine = 1;
    const pq_node *top = unparen(n);
    int rc;
    if (top->type == PQ_T_MATRIX) {
        /* only for an instant query: the raw points of each series */
        if (rg.n != 1)
            return ev_fail(e, -EINVAL,
                           "invalid expression type \"range vector\" for range query, must be "
                           "Scalar or instant Vector");
        mser *ms;
        size_t nm;
        if ((rc = eval_matrix(e, top, &rg, &ms, &nm))) return rc;
        int64_t t = node_time(e, top, &rg, 0);
        r->type = QUERY_RESULT_MATRIX_RAW;
        r->s = calloc(nm ? nm : 1, sizeof *r->s);
        if (!r->s) rc = -ENOMEM;
        for (size_t i = 0; i < nm && !rc; i++) {
            size_t lo = 0, hi = 0;
            while (hi < ms[i].n && ms[i].ts[hi] <= t)
                hi++;
            while (lo < hi && ms[i].ts[lo] < t - top->range_ms)
                lo++;
            if (hi == lo) continue;
            query_series *q = &r->s[r->n];
            q->names = ms[i].l.n;
            q->values = ms[i].l.v;
            q->nlabels = ms[i].l.k;
            memset(&ms[i].l, 0, sizeof ms[i].l);
            q->npts = hi - lo;
            q->ts = malloc(q->npts * sizeof *q->ts);
            q->v = malloc(q->npts * sizeof *q->v);
            r->n++;
            r->cap = r->n;
            if (!q->ts || !q->v) {
                rc = -ENOMEM;
                break;
            }
            memcpy(q->ts, ms[i].ts + lo, q->npts * sizeof *q->ts);
            memcpy(q->v, ms[i].v + lo, q->npts * sizeof *q->v);
        }
        mser_free(e, ms, nm);
        if (!rc && r->n > 1) qsort(r->s, r->n, sizeof *r->s, cmp_qseries);
        if (rc) query_result_fini(r);
        return rc;
    }
    val x;
    if ((rc = eval(e, n, &rg, &x))) {
        if (rc == -ENOMEM && !err[0]) snprintf(err, errlen, "out of memory");
        return rc;
    }
    if (x.type == PQ_T_STRING) {
        r->type = QUERY_RESULT_STRING;
        r->str = x.str;
        x.str = NULL;
        val_free(e, &x, rg.n);
        return 0;
    }
    if (x.type == PQ_T_SCALAR) {
        r->type = QUERY_RESULT_SCALAR;
        r->s = calloc(1, sizeof *r->s);
        if (!r->s) {
            val_free(e, &x, rg.n);
            return -ENOMEM;
        }
        r->s[0].names = calloc(1, sizeof(char *));
        r->s[0].values = calloc(1, sizeof(char *));
        r->s[0].v = x.sc;
        x.sc = NULL;
        unbudget(e, rg.n);
        r->n = r->cap = 1;
        val_free(e, &x, rg.n);
        if (!r->s[0].names || !r->s[0].values) {
            query_result_fini(r);
            return -ENOMEM;
        }
        return 0;
    }
    r->s = calloc(x.n ? x.n : 1, sizeof *r->s);
    if (!r->s) {
        val_free(e, &x, rg.n);
        return -ENOMEM;
    }
    for (size_t i = 0; i < x.n; i++) {
        r->s[i].names = x.s[i].l.n;
        r->s[i].values = x.s[i].l.v;
        r->s[i].nlabels = x.s[i].l.k;
        r->s[i].v = x.s[i].v;
        for (size_t k = 0; k < rg.n; k++)
            r->store_points += !is_absent(r->s[i].v[k]);
        memset(&x.s[i], 0, sizeof x.s[i]);
    }
    r->n = r->cap = x.n;
    int order = x.str && top->kind == PQ_CALL ? (x.str[0] == 'a' ? 1 : -1) : 0;
    x.n = 0;
    val_free(e, &x, rg.n);
    if (r->n > 1) qsort(r->s, r->n, sizeof *r->s, cmp_qseries);
    if (order && rg.n == 1 && r->n > 1) {
        qsort_r(r->s, r->n, sizeof *r->s, cmp_by_value, &order);
        r->ordered = 1;
    }
    return 0;
}
