/* profile.c: the level-adjusted seasonal profile forecaster ("profile").
 *
 * The forecast for time tau is P(tau) * (1 + lambda * (r - 1)), where P(tau) is the mean of the
 * values at the same time of day over the previous D days (or, mixed in with weight mu, at the
 * same time of week over the previous weeks), each smoothed over +-w steps, and r is the ratio
 * of what the last R steps actually held to what the profile said they would. Masked values
 * (NaN, outages of zeros) are left out of every mean; the means over days (or weeks) may leave
 * out the highest and lowest period (trimmed_mean). D, w, R, lambda, mu and the trimming are
 * chosen by a grid search minimising the mean absolute error of H-step forecasts over the last
 * weeks of the training data. It needs nothing but recent history at prediction time, so it adapts
 * to a shifted weekly pattern within days. */
#include "models/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct prof_params {
    int days;   /* D */
    int weeks;  /* weeks for the weekly profile */
    int w;      /* smoothing half-width in steps */
    int r;      /* level window in steps */
    double lam; /* level adjustment strength */
    double mu;  /* weight of the weekly profile */
    int trim;   /* 1: leave the highest and lowest period out of each mean (trimmed_mean) */
} prof_params;

/* The forecast averages the PROF_TOP best parameter sets of the grid search: one best set is
 * a noisy choice, the average of a few is steadier on unseen data. */
#define PROF_TOP 5

typedef struct prof {
    int horizon, verbose;
    int64_t step;
    int np;
    prof_params p[PROF_TOP];
} prof;

/* Prefix sums of masked values and counts: S[i] = sum of y[0..i), C[i] = count. */
typedef struct prefix {
    double *s;
    double *c;
    size_t n;
} prefix;

static int prefix_build(prefix *px, const double *y, size_t n, int64_t step) {
    px->s = malloc((n + 1) * sizeof *px->s);
    px->c = malloc((n + 1) * sizeof *px->c);
    unsigned char *mask = malloc(n ? n : 1);
    if (!px->s || !px->c || !mask) {
        free(px->s);
        free(px->c);
        free(mask);
        return -ENOMEM;
    }
    fc__mask_outages(y, n, step, mask);
    px->s[0] = px->c[0] = 0;
    for (size_t i = 0; i < n; i++) {
        px->s[i + 1] = px->s[i] + (mask[i] ? y[i] : 0);
        px->c[i + 1] = px->c[i] + (mask[i] ? 1 : 0);
    }
    px->n = n;
    free(mask);
    return 0;
}

static void prefix_free(prefix *px) {
    free(px->s);
    free(px->c);
}

/* Adds the masked window [c-w, c+w] clipped to [0, limit) to *s / *k. */
static void window(const prefix *px, long c, int w, long limit, double *s, double *k) {
    long a = c - w, b = c + w + 1;
    if (a < 0) a = 0;
    if (b > limit) b = limit;
    if (b <= a) return;
    *s += px->s[b] - px->s[a];
    *k += px->c[b] - px->c[a];
}

/* Mean of the per-period window means (period `lag`, n periods back from tau) with the
 * highest and the lowest left out when at least three periods have data: traffic has
 * incidents (a spike, an outage, a retry storm), and one incident should not bend the
 * profile of the following days; NAN when no period has data. */
static double trimmed_mean(const prefix *px, long tau, long lag, int n, int w, long end, int trim) {
    double sum = 0, lo = INFINITY, hi = -INFINITY;
    int k = 0;
    for (int d = 1; d <= n; d++) {
        long c = tau - d * lag;
        if (c + w < 0) break;
        double s = 0, cnt = 0;
        window(px, c, w, end, &s, &cnt);
        if (cnt <= 0) continue;
        double v = s / cnt;
        sum += v;
        if (v < lo) lo = v;
        if (v > hi) hi = v;
        k++;
    }
    if (k == 0) return NAN;
    if (!trim || k < 3) return sum / k;
    return (sum - lo - hi) / (k - 2);
}

/* Profile value at index tau using data before `end` only. NAN when no data. */
static double profile_at(const prefix *px, const prof_params *p, long tau, long end, long day) {
    double vd = trimmed_mean(px, tau, day, p->days, p->w, end, p->trim);
    if (p->mu <= 0) return vd;
    double vw = trimmed_mean(px, tau, 7 * day, p->weeks, p->w, end, p->trim);
    if (isnan(vw)) return vd;
    if (isnan(vd)) return vw;
    return (1 - p->mu) * vd + p->mu * vw;
}

/* Forecasts h steps after `end` (exclusive) into out. */
static void forecast(const prefix *px, const prof_params *p, long end, int h, long day, double last,
                     double *out) {
    double num = 0, den = 0, kn = 0;
    long a = end - p->r < 0 ? 0 : end - p->r;
    for (long t = a; t < end; t++) {
        double pt = profile_at(px, p, t, end, day);
        double c = px->c[t + 1] - px->c[t];
        if (isnan(pt) || c == 0) continue;
        num += px->s[t + 1] - px->s[t];
        den += pt;
        kn += 1;
    }
    double ratio = den > 0 && kn > 0 ? num / den : 1;
    double adj = 1 + p->lam * (ratio - 1);
    if (adj < 0) adj = 0;
    for (int i = 0; i < h; i++) {
        double pv = profile_at(px, p, end + i, end, day);
        out[i] = isnan(pv) ? last : pv * adj;
    }
}

static int create(void **state, const fc_options *opt, char *err, size_t errlen) {
    (void)err, (void)errlen;
    prof *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->horizon = opt ? opt->horizon : 0;
    m->verbose = opt ? opt->verbose : 0;
    *state = m;
    return 0;
}

static int fit(void *state, const fc_series *train, double *tp, char *err, size_t errlen) {
    (void)err, (void)errlen;
    prof *m = state;
    *tp = 0;
    m->step = train->step;
    long day = fc__steps_per_day(train->step);
    long n = (long)train->n;
    int H = fc__horizon(m->horizon, train->step);
    prefix px;
    if (prefix_build(&px, train->y, train->n, train->step) != 0) return -ENOMEM;
    double *out = malloc((size_t)H * sizeof *out);
    if (!out) {
        prefix_free(&px);
        return -ENOMEM;
    }
    /* evaluation origins: every H steps (at least every hour) over the last 14 days */
    long span = 14 * day < n / 2 ? 14 * day : n / 2;
    long stride = H;
    if (stride < 2 * (3600 / train->step)) stride = 2 * (3600 / train->step); /* >= 2 h apart */
    if (stride < 1) stride = 1;
    long hour = 3600 / train->step > 0 ? 3600 / train->step : 1;
    if (stride > 4 * hour) stride = 4 * hour;
    int nweeks_avail = (int)((n - span) / (7 * day));
    static const int Ds[] = {1, 3, 7, 14};
    static const double ws_min[] = {0, 10, 20, 40}; /* half-width in minutes */
    static const double rs_min[] = {60, 120, 240, 480};
    static const double lams[] = {0.25, 0.5, 0.75, 1.0};
    static const double mus[] = {0, 0.5, 1.0};
    double bestf[PROF_TOP];
    prof_params bp[PROF_TOP];
    int nbest = 0;
    /* The level window r and strength lambda only change how the profile values are combined,
     * so for each of the other parameters the profile is evaluated once per origin (over the
     * longest level window and the horizon) and shared by the 16 (r, lambda) pairs: the same
     * sums in the same order as forecast(), a tenth of the work. */
    enum { NR = sizeof rs_min / sizeof *rs_min, NL = sizeof lams / sizeof *lams };
    long rmax = 0;
    for (int ri = 0; ri < NR; ri++) {
        long r = (long)(rs_min[ri] * 60 / (double)train->step);
        if (r < 1) r = 1;
        if (r > rmax) rmax = r;
    }
    double *pv = malloc((size_t)(rmax + H) * sizeof *pv);
    if (!pv) {
        free(out);
        prefix_free(&px);
        return -ENOMEM;
    }
    for (size_t di = 0; di < sizeof Ds / sizeof *Ds; di++)
        for (size_t wi = 0; wi < sizeof ws_min / sizeof *ws_min; wi++)
            for (size_t mi = 0; mi < sizeof mus / sizeof *mus; mi++)
                for (int wk = 1; wk <= 3; wk++)
                    for (int trim = 0; trim <= 1; trim++) {
                        if (mus[mi] == 0 && wk > 1) continue;
                        /* trimming needs three periods in some mean */
                        if (trim && Ds[di] < 3 && (mus[mi] <= 0 || wk < 3)) continue;
                        if (mus[mi] >= 1 && di > 0) continue; /* the daily part is unused */
                        prof_params p = {.days = Ds[di],
                                         .weeks = nweeks_avail < wk ? nweeks_avail : wk,
                                         .w = (int)(ws_min[wi] * 60 / (double)train->step),
                                         .lam = 1,
                                         .mu = mus[mi],
                                         .trim = trim};
                        if (p.mu > 0 && p.weeks < 1) continue;
                        if ((double)p.days * (double)day > (double)(n - span)) continue;
                        double sum[NR][NL] = {{0}};
                        size_t cnt[NR][NL] = {{0}};
                        for (long o = n - span; o + H <= n; o += stride) {
                            long a0 = o - rmax;
                            for (long t = a0 < 0 ? 0 : a0; t < o + H; t++)
                                pv[t - a0] = profile_at(&px, &p, t, o, day);
                            for (int ri = 0; ri < NR; ri++) {
                                long r = (long)(rs_min[ri] * 60 / (double)train->step);
                                if (r < 1) r = 1;
                                double num = 0, den = 0, kn = 0;
                                long a = o - r < 0 ? 0 : o - r;
                                for (long t = a; t < o; t++) {
                                    double pt = pv[t - a0];
                                    double c = px.c[t + 1] - px.c[t];
                                    if (isnan(pt) || c == 0) continue;
                                    num += px.s[t + 1] - px.s[t];
                                    den += pt;
                                    kn += 1;
                                }
                                double ratio = den > 0 && kn > 0 ? num / den : 1;
                                for (int li = 0; li < NL; li++) {
                                    double adj = 1 + lams[li] * (ratio - 1);
                                    if (adj < 0) adj = 0;
                                    for (int i = 0; i < H; i++) {
                                        double v = pv[o + i - a0];
                                        if (px.c[o + i + 1] - px.c[o + i] == 0) continue;
                                        /* forecast()'s fallback for no profile: last = 0 */
                                        double fv = isnan(v) ? 0 : v * adj;
                                        sum[ri][li] += fabs(fv - train->y[o + i]);
                                        cnt[ri][li]++;
                                    }
                                }
                            }
                        }
                        for (int ri = 0; ri < NR; ri++)
                            for (int li = 0; li < NL; li++) {
                                double f =
                                    cnt[ri][li] ? sum[ri][li] / (double)cnt[ri][li] : INFINITY;
                                if (!isfinite(f)) continue;
                                p.r = (int)(rs_min[ri] * 60 / (double)train->step);
                                if (p.r < 1) p.r = 1;
                                p.lam = lams[li];
                                /* insert into the sorted list of the best sets */
                                int pos = nbest < PROF_TOP ? nbest : PROF_TOP;
                                while (pos > 0 && bestf[pos - 1] > f)
                                    pos--;
                                if (pos >= PROF_TOP) continue;
                                int last = nbest < PROF_TOP ? nbest : PROF_TOP - 1;
                                for (int k = last; k > pos; k--) {
                                    bestf[k] = bestf[k - 1];
                                    bp[k] = bp[k - 1];
                                }
                                bestf[pos] = f;
                                bp[pos] = p;
                                if (nbest < PROF_TOP) nbest++;
                            }
                    }
    free(pv);
    if (nbest == 0) {
        bp[0] = (prof_params){.days = 1, .weeks = 0, .w = 0, .r = (int)hour, .lam = 1, .mu = 0};
        bestf[0] = NAN;
        nbest = 1;
    }
    m->np = nbest;
    memcpy(m->p, bp, (size_t)nbest * sizeof *bp);
    for (int k = 0; m->verbose && k < nbest; k++)
        fprintf(stderr,
                "profile: days %d weeks %d (mu %.2f)%s smooth +-%d level window %d lambda %.2f: "
                "fit MAE %.4g\n",
                bp[k].days, bp[k].weeks, bp[k].mu, bp[k].trim ? " trimmed" : "", bp[k].w, bp[k].r,
                bp[k].lam, bestf[k]);
    free(out);
    prefix_free(&px);
    return 0;
}

static int predict(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen) {
    (void)err, (void)errlen;
    const prof *m = state;
    long day = fc__steps_per_day(ctx->step);
    /* only the part of the context the profile can reach is needed */
    long need = 0;
    for (int k = 0; k < m->np; k++) {
        const prof_params *p = &m->p[k];
        long nk = (long)((p->mu > 0 && p->weeks * 7 > p->days ? p->weeks * 7 : p->days) + 1) * day +
                  p->r + p->w;
        if (nk > need) need = nk;
    }
    long n = (long)ctx->n, from = n > need ? n - need : 0;
    fc_series sub = *ctx;
    sub.y = ctx->y + from;
    sub.n = (size_t)(n - from);
    prefix px;
    if (prefix_build(&px, sub.y, sub.n, ctx->step) != 0) return -ENOMEM;
    double *tmp = malloc((size_t)h * sizeof *tmp);
    if (!tmp) {
        prefix_free(&px);
        return -ENOMEM;
    }
    for (int i = 0; i < h; i++)
        out[i] = 0;
    for (int k = 0; k < m->np; k++) {
        forecast(&px, &m->p[k], (long)sub.n, h, day, fc__last_value(ctx), tmp);
        for (int i = 0; i < h; i++)
            out[i] += tmp[i] / m->np;
    }
    free(tmp);
    prefix_free(&px);
    return 0;
}

static void destroy(void *state) {
    free(state);
}

const fc_model_ops fc__model_profile = {"profile", create, fit,  predict, destroy,
                                        NULL,      NULL,   NULL, NULL};
