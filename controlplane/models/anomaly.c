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
/* Periods the seasonal median looks back over (one odd day or week cannot move it). */
#define ANOM_PERIODS 3
/* Largest surprise one point adds to a mean over several (see anom_step). */
#define ANOM_ZCAP 6.0
/* Fewest past values of a statistic before it is tested: 10 exceedances of the 2% tail. */
#define ANOM_MIN_FIT 500
/* Trailing history of each statistic that its tail is fitted on. */
#define ANOM_HIST 4032
/* Fewest points before any flag, whatever the learning period says: a tail fit on fewer
 * statistics than this is guesswork. */
#define ANOM_MIN_LEARN 200
/* Share of the statistic's history treated as its tail (peaks over threshold). */
#define ANOM_TAIL 0.02
/* Points averaged by the sustained-change statistic. */
#define ANOM_SUSTAIN 6
#define ANOM_NPRED 7
/* Points averaged by the local-level forecast. */
#define ANOM_LEVEL 12
/* Points averaged by the slow change statistic. */
#define ANOM_SLOW 36
#define ANOM_NSTAT 4
/* Longest span of the day-scale statistic (a day of 5-minute points). */
#define ANOM_DAYSPAN 288
/* How far (in recent mean absolute errors) a value may lie from its trusted forecast before
 * the seasonal history stores it clamped. */
#define ANOM_CLAMP 3.0
/* Pushes between refits of a tail model. */
#define ANOM_REFIT 16

typedef struct anom_tail {
    double *h; /* ring of ANOM_HIST past values of the statistic */
    size_t n, next;
    double *sorted;  /* h sorted in descending order at the last refit */
    size_t ns;       /* values in sorted */
    size_t since;    /* pushes since the last refit */
    size_t k;        /* tail size at the last refit */
    double u, beta;  /* tail threshold and mean exceedance */
    double med, mad; /* median and median absolute deviation */
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
    double zbuf[ANOM_NPRED][ANOM_DAYSPAN];
    double zsbuf[ANOM_NPRED][ANOM_DAYSPAN]; /* surprises over the slow error level */
    size_t span[ANOM_NSTAT];
    double mean, dev; /* slow mean of the series and mean absolute deviation from it */
    double *dsum;     /* ring (cap) of the mean of the last day's values, NaN when unknown */
    double dsum_mean, dsum_dev; /* its slow mean and mean absolute deviation */
    size_t ndsum;
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
    t->med = n % 2 ? t->sorted[n / 2] : 0.5 * (t->sorted[n / 2 - 1] + t->sorted[n / 2]);
    double *dev = malloc(n * sizeof *dev);
    if (dev) {
        for (size_t i = 0; i < n; i++)
            dev[i] = fabs(t->sorted[i] - t->med);
        qsort(dev, n, sizeof *dev, cmp_desc);
        t->mad = n % 2 ? dev[n / 2] : 0.5 * (dev[n / 2 - 1] + dev[n / 2]);
        free(dev);
    }
}

/* log10 of the upper tail probability of v under a normal law centred on the history's median
 * with its scaled median absolute deviation: for smooth statistics (means over a day), whose
 * few independent values cannot carry a fitted tail, and whose past episodes must not widen the
 * law (robust location and scale). */
static double tail_log10p_robust(anom_tail *t, double v) {
    if (t->n < ANOM_MIN_FIT) return 0;
    if (t->ns < 20 || t->since >= ANOM_REFIT) tail_refit(t);
    double sd = 1.4826 * t->mad + 1e-12;
    double zz = (v - t->med) / sd;
    if (zz <= 0) return log10(0.5);
    double q = 0.5 * erfc(zz / sqrt(2.0));
    if (q > 1e-300) return log10(q);
    /* asymptotic: log10 of phi(z)/z */
    return (-0.5 * zz * zz - log(zz * sqrt(2 * M_PI))) / log(10.0);
}

/* log10 of the probability that the statistic reaches v, judged by its history: empirical
 * below the tail threshold, an exponential tail fitted to the exceedances above it (peaks
 * over threshold). The fit is redone every ANOM_REFIT pushes. */
static double tail_log10p(anom_tail *t, double v) {
    if (t->n < ANOM_MIN_FIT) return 0;
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
    d->cap = d->week ? ANOM_PERIODS * d->week : d->day ? ANOM_PERIODS * d->day : 1;
    d->cap += ANOM_LEVEL + 1;
    /* error levels: the scale follows about a quarter day, the choice about two days */
    double nd = d->day ? (double)d->day : 288.0;
    d->a_fast = 1.0 / fmax(20.0, fmin(nd / 4.0, 500.0));
    d->a_slow = 1.0 / fmax(50.0, fmin(2.0 * nd, 2000.0));
    d->span[0] = 1;
    d->span[1] = ANOM_SUSTAIN;
    d->span[2] = ANOM_SLOW;
    d->span[3] = d->day == 0 ? 0 : d->day < ANOM_DAYSPAN ? d->day : ANOM_DAYSPAN;
    d->ring = calloc(d->cap, sizeof *d->ring);
    d->clean = calloc(d->cap, sizeof *d->clean);
    d->dsum = calloc(d->cap, sizeof *d->dsum);
    int bad = !d->ring || !d->clean || !d->dsum;
    for (int k = 0; k < ANOM_NPRED; k++)
        for (int i = 0; i < ANOM_NSTAT; i++)
            bad = bad || tail_init(&d->tail[k][i]);
    if (bad) {
        anom_free(d);
        return -ENOMEM;
    }
    for (size_t i = 0; i < d->cap; i++)
        d->ring[i] = d->clean[i] = d->dsum[i] = NAN;
    *out = d;
    return 0;
}

void anom_free(anom_detector *d) {
    if (!d) return;
    free(d->ring);
    free(d->clean);
    free(d->dsum);
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

/* The median of the values 1..ANOM_PERIODS periods p ago (those held), NaN when none. */
static double seasonal_median(const anom_detector *d, size_t p) {
    if (p == 0) return NAN;
    double v[ANOM_PERIODS];
    size_t n = 0;
    for (size_t k = 1; k <= ANOM_PERIODS; k++) {
        double x = ago(d, k * p);
        if (!isnan(x)) v[n++] = x;
    }
    if (n == 0) return NAN;
    for (size_t i = 1; i < n; i++)
        for (size_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
            double t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
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
        if (!isnan(v)) {
            base += v;
            nb++;
        }
    }
    return nb ? ago_clean(d, p) + (lvl - base / (double)nb) : NAN;
}

anom_result anom_step(anom_detector *d, double x) {
    anom_result r = {0, 0, NAN};
    if (isnan(x) || isinf(x)) {
        d->ring[d->seen % d->cap] = d->clean[d->seen % d->cap] = d->dsum[d->seen % d->cap] = NAN;
        d->seen++;
        memset(d->nz, 0, sizeof d->nz);
        return r;
    }
    double lvl = 0;
    size_t nl = 0;
    for (size_t k = 1; k <= ANOM_LEVEL; k++) {
        double v = ago(d, k);
        if (!isnan(v)) {
            lvl += v;
            nl++;
        }
    }
    lvl = nl ? lvl / (double)nl : NAN;
    /* the mean of the day ending at this point (at least 3/4 of it present) */
    double dm = NAN;
    if (d->week) {
        double sum = x;
        size_t have = 1;
        for (size_t k = 1; k < d->day; k++) {
            double v = ago(d, k);
            if (!isnan(v)) {
                sum += v;
                have++;
            }
        }
        if (4 * have >= 3 * d->day) dm = sum / (double)have;
    }
    double dm_pred = NAN;
    if (!isnan(dm)) {
        double v[ANOM_PERIODS];
        size_t n = 0;
        for (size_t k = 1; k <= ANOM_PERIODS; k++) {
            size_t back = k * d->week;
            if (back < d->cap && back <= d->seen) {
                double u = d->dsum[(d->seen - back) % d->cap];
                if (!isnan(u)) v[n++] = u;
            }
        }
        for (size_t i = 1; i < n; i++)
            for (size_t j = i; j > 0 && v[j] < v[j - 1]; j--) {
                double t = v[j];
                v[j] = v[j - 1];
                v[j - 1] = t;
            }
        if (n) dm_pred = n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
    }
    double pred[ANOM_NPRED] = {d->usable ? d->last : NAN,
                               seasonal(d, d->day, lvl),
                               seasonal(d, d->week, lvl),
                               lvl,
                               seasonal_median(d, d->day),
                               seasonal_median(d, d->week),
                               dm_pred};
    int best = -1;
    for (int k = 0; k < 4; k++) {
        if (isnan(pred[k]) || d->nerr[k] < 10) continue;
        if (best < 0 || d->sel[k] < d->sel[best]) best = k;
    }
    double z[ANOM_NPRED], zs[ANOM_NPRED];
    for (int k = 0; k < ANOM_NPRED; k++) {
        z[k] = zs[k] = NAN;
        if (isnan(pred[k]) || d->nerr[k] < 10) continue;
        double floor = 1e-9 * fabs(x) + 1e-12;
        double obs = k == 6 ? dm : x;
        z[k] = fabs(obs - pred[k]) / (d->mae[k] + floor);
        zs[k] = fabs(obs - pred[k]) / (d->sel[k] + floor);
    }
    if (best >= 0) r.expected = pred[best];
    /* learn the error levels, a single error counting at most 6x the current level */
    for (int k = 0; k < ANOM_NPRED; k++) {
        if (isnan(pred[k])) continue;
        double e = fabs((k == 6 ? dm : x) - pred[k]);
        if (d->nerr[k] == 0) {
            d->mae[k] = d->sel[k] = e;
        } else {
            double cap = 6.0 * d->mae[k] + 1e-12;
            double ec = e > cap ? cap : e;
            /* the day-mean forecast's errors change slowly: its levels follow days, not hours */
            double rf = k == 6 ? 1.0 / (2.0 * (double)d->day) : d->a_fast;
            double rs = k == 6 ? 1.0 / (double)d->week : d->a_slow;
            double af = d->nerr[k] < 1.0 / rf ? 1.0 / (double)(d->nerr[k] + 1) : rf;
            double as = d->nerr[k] < 1.0 / rs ? 1.0 / (double)(d->nerr[k] + 1) : rs;
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
    d->dsum[d->seen % d->cap] = dm;
    if (!isnan(dm)) {
        d->ndsum++;
        if (d->ndsum == 1) {
            d->dsum_mean = dm;
        } else {
            double a = d->ndsum < 1.0 / d->a_slow ? 1.0 / (double)d->ndsum : d->a_slow;
            d->dsum_dev += a * (fabs(dm - d->dsum_mean) - d->dsum_dev);
            d->dsum_mean += a * (dm - d->dsum_mean);
        }
    }
    d->seen++;
    d->usable++;
    d->last = x;
    if (d->usable == 1) {
        d->mean = x;
        d->dev = 0;
    } else {
        double a = d->usable < 1.0 / d->a_slow ? 1.0 / (double)d->usable : d->a_slow;
        d->dev += a * (fabs(x - d->mean) - d->dev);
        d->mean += a * (x - d->mean);
    }
    const size_t *span = d->span;
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
        /* the uncorrected seasonal forecasts are tested when they beat the series' own mean
         * (the pattern explains part of its spread) */
        if (k == 4 || k == 5) informative = d->sel[k] < d->dev;
        if (k == 6) informative = d->sel[k] < d->dsum_dev;
        d->zbuf[k][d->nz[k] % ANOM_DAYSPAN] = z[k];
        d->zsbuf[k][d->nz[k] % ANOM_DAYSPAN] = zs[k];
        d->nz[k]++;
        for (int i = 0; i < ANOM_NSTAT; i++) {
            if (span[i] == 0 || d->nz[k] < span[i]) continue;
            double m = 0;
            const double *zb = i == 3 ? d->zsbuf[k] : d->zbuf[k];
            /* a single point counts at most ANOM_ZCAP in a mean: spikes are the point
             * statistic's to judge, a mean is for what lasts */
            for (size_t j = 0; j < span[i]; j++) {
                double zj = zb[(d->nz[k] - 1 - j) % ANOM_DAYSPAN];
                m += span[i] > 1 && zj > ANOM_ZCAP ? ANOM_ZCAP : zj;
            }
            m /= (double)span[i];
            double l = (i == 3 || k == 6) ? tail_log10p_robust(&d->tail[k][i], m)
                                          : tail_log10p(&d->tail[k][i], m);
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
