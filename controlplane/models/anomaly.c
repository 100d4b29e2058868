/* anomaly.c: online anomaly scoring (see anomaly.h). */
#include "models/anomaly.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest ring of past values kept: a week of 1-minute points. Coarser series keep a week
 * too; finer ones (a week > this many points) forgo the weekly forecast. */
#define ANOM_MAX_RING 10080
/* Trailing history of each statistic that its tail is fitted on. */
#define ANOM_HIST 2016
/* Fewest points before any flag, whatever the learning period says: a tail fit on fewer
 * statistics than this is guesswork. */
#define ANOM_MIN_LEARN 200
/* Share of the statistic's history treated as its tail (peaks over threshold). */
#define ANOM_TAIL 0.02
/* Points averaged by the sustained-change statistic. */
#define ANOM_SUSTAIN 6
#define ANOM_NPRED 4
/* Points averaged by the local-level forecast. */
#define ANOM_LEVEL 12
/* Points averaged by the slow change statistic. */
#define ANOM_SLOW 36
#define ANOM_NSTAT 3
/* How far (in recent mean absolute errors) a value may lie from its trusted forecast before
 * the seasonal history stores it clamped. */
#define ANOM_CLAMP 3.0
/* Pushes between refits of a tail model. */
#define ANOM_REFIT 16

typedef struct anom_tail {
    double *h; /* ring of ANOM_HIST past values of the statistic */
    size_t n, next;
    double *sorted; /* h sorted in descending order at the last refit */
    size_t ns;      /* values in sorted */
    size_t since;   /* pushes since the last refit */
    size_t k;       /* tail size at the last refit */
    double u, beta; /* tail threshold and mean exceedance */
} anom_tail;

struct anom_detector {
    anom_opts o;
    double threshold;
    size_t learn, refract;
    size_t day, week; /* points per day / week, 0 when not usable */
    double *ring;     /* past values, ring[(seen - k) % cap] = value k points ago */
    double *clean;    /* the same, each clamped to its trusted forecast +- ANOM_CLAMP errors, so
                       * the seasonal forecasts do not echo an anomaly a day or week later */
    size_t cap;
    size_t seen;             /* points stepped (including missing ones) */
    size_t usable;           /* non-missing points */
    double last;             /* the last non-missing value */
    double mae[ANOM_NPRED];  /* recent mean absolute error (scale) */
    double sel[ANOM_NPRED];  /* slower mean absolute error (forecaster choice) */
    size_t nerr[ANOM_NPRED]; /* errors seen per forecaster */
    double a_fast, a_slow;
    double zbuf[ANOM_NPRED][ANOM_SLOW];
    size_t nz[ANOM_NPRED];
    anom_tail tail[ANOM_NPRED][ANOM_NSTAT];
    size_t last_flag; /* seen index of the last flag + 1, 0 = none */
};

static int tail_init(anom_tail *t) {
    t->h = calloc(ANOM_HIST, sizeof *t->h);
    t->sorted = calloc(ANOM_HIST, sizeof *t->sorted);
    return t->h && t->sorted ? 0 : -ENOMEM;
}

static void tail_fini(anom_tail *t) {
    free(t->h);
    free(t->sorted);
}

static void tail_push(anom_tail *t, double v) {
    t->h[t->next] = v;
    t->next = (t->next + 1) % ANOM_HIST;
    if (t->n < ANOM_HIST) t->n++;
    t->since++;
}

static int cmp_desc(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return (x < y) - (x > y);
}

/* Refits the tail model on the current history: sorts it, takes the top ANOM_TAIL share as
 * the tail (at least 5 values) and their mean excess over the threshold as the scale. */
static void tail_refit(anom_tail *t) {
    size_t n = t->n;
    memcpy(t->sorted, t->h, n * sizeof *t->sorted);
    qsort(t->sorted, n, sizeof *t->sorted, cmp_desc);
    t->ns = n;
    t->since = 0;
    size_t k = (size_t)ceil(ANOM_TAIL * (double)n);
    if (k < 5) k = 5;
    t->k = k;
    t->u = t->sorted[k - 1];
    double beta = 0;
    for (size_t i = 0; i < k - 1; i++)
        beta += t->sorted[i] - t->u;
    beta /= (double)(k - 1);
    double spread = t->sorted[0] - t->sorted[n - 1];
    if (beta < 1e-3 * spread + 1e-12) beta = 1e-3 * spread + 1e-12;
    t->beta = beta;
}

/* log10 of the probability that the statistic reaches v, judged by its history: empirical
 * below the tail threshold, an exponential tail fitted to the exceedances above it (peaks
 * over threshold). The fit is redone every ANOM_REFIT pushes. */
static double tail_log10p(anom_tail *t, double v) {
    if (t->n < 20) return 0;
    if (t->ns < 20 || t->since >= ANOM_REFIT) tail_refit(t);
    size_t n = t->ns;
    if (v <= t->u) {
        size_t lo = 0, hi = n; /* first index with sorted[i] < v */
        while (lo < hi) {
            size_t mid = lo + (hi - lo) / 2;
            if (t->sorted[mid] >= v)
                lo = mid + 1;
            else
                hi = mid;
        }
        return log10((double)(lo + 1) / (double)(n + 1));
    }
    return log10((double)t->k / (double)(n + 1)) - (v - t->u) / t->beta / log(10.0);
}

int anom_new(anom_detector **out, const anom_opts *opts, char *err, size_t errlen) {
    *out = NULL;
    if (!opts || opts->step <= 0) {
        snprintf(err, errlen, "anomaly: step must be a positive number of seconds");
        return -EINVAL;
    }
    if (opts->threshold < 0 || opts->threshold > 1 || isnan(opts->threshold)) {
        snprintf(err, errlen, "anomaly: threshold must lie in [0,1], not %g", opts->threshold);
        return -EINVAL;
    }
    if (opts->learn_s < 0 || opts->refract_s < 0) {
        snprintf(err, errlen, "anomaly: learning and refractory periods cannot be negative");
        return -EINVAL;
    }
    anom_detector *d = calloc(1, sizeof *d);
    if (!d) return -ENOMEM;
    d->o = *opts;
    d->threshold = opts->threshold > 0 ? opts->threshold : ANOM_DEFAULT_THRESHOLD;
    int64_t step = opts->step;
    int64_t learn_s = opts->learn_s ? opts->learn_s : 86400;
    int64_t refract_s = opts->refract_s ? opts->refract_s : 86400;
    d->learn = (size_t)(learn_s / step);
    if (d->learn < ANOM_MIN_LEARN) d->learn = ANOM_MIN_LEARN;
    d->refract = (size_t)(refract_s / step);
    if (d->refract < 1) d->refract = 1;
    if (86400 % step == 0 && 86400 / step >= 4) {
        d->day = (size_t)(86400 / step);
        if (7 * d->day <= ANOM_MAX_RING) d->week = 7 * d->day;
        if (d->day > ANOM_MAX_RING) d->day = 0;
    }
    d->cap = d->week ? d->week : d->day ? d->day : 1;
    d->cap += ANOM_LEVEL + 1;
    /* error levels: the scale follows about a quarter day, the choice about two days */
    double nd = d->day ? (double)d->day : 288.0;
    d->a_fast = 1.0 / fmax(20.0, fmin(nd / 4.0, 500.0));
    d->a_slow = 1.0 / fmax(50.0, fmin(2.0 * nd, 2000.0));
    d->ring = calloc(d->cap, sizeof *d->ring);
    d->clean = calloc(d->cap, sizeof *d->clean);
    int bad = !d->ring || !d->clean;
    for (int k = 0; k < ANOM_NPRED; k++)
        for (int i = 0; i < ANOM_NSTAT; i++)
            bad = bad || tail_init(&d->tail[k][i]);
    if (bad) {
        anom_free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->cap; i++)
        d->ring[i] = d->clean[i] = NAN;
    *out = d;
    return 0;
}

void anom_free(anom_detector *d) {
    if (!d) return;
    free(d->ring);
    free(d->clean);
    for (int k = 0; k < ANOM_NPRED; k++)
        for (int i = 0; i < ANOM_NSTAT; i++)
            tail_fini(&d->tail[k][i]);
    free(d);
}

size_t anom_count(const anom_detector *d) {
    return d->seen;
}

/* The value k points before the one being stepped (1 = previous), NaN if not held. */
static double ago(const anom_detector *d, size_t k) {
    if (k == 0 || k >= d->cap || k > d->seen) return NAN;
    return d->ring[(d->seen - k) % d->cap];
}

/* The same from the clamped history. */
static double ago_clean(const anom_detector *d, size_t k) {
    if (k == 0 || k >= d->cap || k > d->seen) return NAN;
    return d->clean[(d->seen - k) % d->cap];
}

/* The seasonal forecast with period p: the (clamped) value one period ago, moved by how far
 * the recent level (lvl, the mean of the last ANOM_LEVEL values) lies from the level before
 * it one period ago. NaN when p is 0 or not enough history is held. */
static double seasonal(const anom_detector *d, size_t p, double lvl) {
    if (p == 0 || isnan(lvl)) return NAN;
    double base = 0;
    size_t nb = 0;
    for (size_t k = 1; k <= ANOM_LEVEL; k++) {
        double v = ago_clean(d, p + k);
        if (!isnan(v)) base += v, nb++;
    }
    return nb ? ago_clean(d, p) + (lvl - base / (double)nb) : NAN;
}

anom_result anom_step(anom_detector *d, double x) {
    anom_result r = {0, 0, NAN};
    if (isnan(x) || isinf(x)) {
        d->ring[d->seen % d->cap] = d->clean[d->seen % d->cap] = NAN;
        d->seen++;
        memset(d->nz, 0, sizeof d->nz);
        return r;
    }
    double lvl = 0;
    size_t nl = 0;
    for (size_t k = 1; k <= ANOM_LEVEL; k++) {
        double v = ago(d, k);
        if (!isnan(v)) lvl += v, nl++;
    }
    lvl = nl ? lvl / (double)nl : NAN;
    double pred[ANOM_NPRED] = {d->usable ? d->last : NAN, seasonal(d, d->day, lvl),
                               seasonal(d, d->week, lvl), lvl};
    int best = -1;
    for (int k = 0; k < ANOM_NPRED; k++) {
        if (isnan(pred[k]) || d->nerr[k] < 10) continue;
        if (best < 0 || d->sel[k] < d->sel[best]) best = k;
    }
    double z[ANOM_NPRED];
    for (int k = 0; k < ANOM_NPRED; k++) {
        z[k] = NAN;
        if (isnan(pred[k]) || d->nerr[k] < 10) continue;
        double floor = 1e-9 * fabs(x) + 1e-12;
        z[k] = fabs(x - pred[k]) / (d->mae[k] + floor);
    }
    if (best >= 0) r.expected = pred[best];
    /* learn the error levels, a single error counting at most 6x the current level */
    for (int k = 0; k < ANOM_NPRED; k++) {
        if (isnan(pred[k])) continue;
        double e = fabs(x - pred[k]);
        if (d->nerr[k] == 0) {
            d->mae[k] = d->sel[k] = e;
        } else {
            double cap = 6.0 * d->mae[k] + 1e-12;
            double ec = e > cap ? cap : e;
            double af = d->nerr[k] < 1.0 / d->a_fast ? 1.0 / (double)(d->nerr[k] + 1) : d->a_fast;
            double as = d->nerr[k] < 1.0 / d->a_slow ? 1.0 / (double)(d->nerr[k] + 1) : d->a_slow;
            d->mae[k] += af * (ec - d->mae[k]);
            d->sel[k] += as * (ec - d->sel[k]);
        }
        d->nerr[k]++;
    }
    double c = x;
    if (best >= 0) {
        double lo = pred[best] - ANOM_CLAMP * d->mae[best];
        double hi = pred[best] + ANOM_CLAMP * d->mae[best];
        c = c < lo ? lo : c > hi ? hi : c;
    }
    d->ring[d->seen % d->cap] = x;
    d->clean[d->seen % d->cap] = c;
    d->seen++;
    d->usable++;
    d->last = x;
    static const size_t span[ANOM_NSTAT] = {1, ANOM_SUSTAIN, ANOM_SLOW};
    double lp = 0;
    int tests = 0;
    double plain = fmin(d->sel[0], d->sel[3]);
    for (int k = 0; k < ANOM_NPRED; k++) {
        if (isnan(z[k])) {
            d->nz[k] = 0;
            continue;
        }
        /* a seasonal forecast that does worse than the plain ones knows no pattern: its
         * surprises are noise, so they are learnt from but not tested */
        int informative = k == 0 || k == 3 || d->sel[k] <= plain;
        d->zbuf[k][d->nz[k] % ANOM_SLOW] = z[k];
        d->nz[k]++;
        for (int i = 0; i < ANOM_NSTAT; i++) {
            if (d->nz[k] < span[i]) continue;
            double w[ANOM_SLOW];
            for (size_t j = 0; j < span[i]; j++)
                w[j] = d->zbuf[k][(d->nz[k] - 1 - j) % ANOM_SLOW];
            double m = 0;
            for (size_t j = 0; j < span[i]; j++)
                m += w[j];
            m /= (double)span[i];
            double l = tail_log10p(&d->tail[k][i], m);
            tail_push(&d->tail[k][i], m);
            if (!informative) continue;
            tests++;
            if (l < lp) lp = l;
        }
    }
    if (tests == 0) return r;
    lp += log10((double)tests); /* Bonferroni: the smallest of several tail probabilities */
    double score = -lp / ANOM_LOG_RANGE;
    if (score < 0) score = 0;
    if (score > 1) score = 1;
    if (d->seen <= d->learn) return r;
    r.score = score;
    if (score >= d->threshold && (d->last_flag == 0 || d->seen - d->last_flag >= d->refract)) {
        r.anomaly = 1;
        d->last_flag = d->seen;
    }
    return r;
}
