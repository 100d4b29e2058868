/* holt_winters.c: additive Holt-Winters (error-correction form, damped trend) with a daily
 * seasonal component and, when the training data spans at least two weeks, a weekly one.
 *
 * The seasonal components are piecewise-linear over knots tied to UTC time (every 10 minutes
 * of the day for the daily one, every 30 minutes of the week for the weekly one, or every step
 * when the step is coarser): at one-minute steps a per-minute seasonal index would mostly learn
 * counting noise. Updates are robust (the error is clipped at 4 running mean absolute errors)
 * and skip masked values (NaN and outages of zeros), so an outage neither drags the level down
 * nor prints a hole into the seasonal profile.
 *
 * Fitting: the smoothing parameters are chosen by Nelder-Mead to minimise the mean absolute
 * error of forecasts 1, H/3, 2H/3 and H steps ahead over the training data (H = the horizon
 * of the options), once on the raw values and once on log(1 + y) for non-negative series;
 * the better of the two is kept. */
#include "models/model.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define HW_CLIP 4.0
#define HW_NPAR 4

typedef struct hw_params {
    double alpha, beta, gd, gw, phi;
} hw_params;

typedef struct hw {
    int horizon;
    int verbose;
    int64_t step;
    /* knots */
    int kd, kw;            /* number of daily / weekly knots (kw = 0: no weekly component) */
    double kd_sec, kw_sec; /* seconds per knot */
    int log;               /* 1: the model runs on log(1 + y) */
    hw_params p;
    /* state at the end of training */
    int64_t t_end; /* timestamp of the first value after training */
    int64_t train_t0;
    size_t n_train;
    double l, b, sig;
    double *sd, *sw;
    /* initial state (start of training), for contexts that end inside the training data */
    double l0, b0, sig0;
    double *sd0, *sw0;
} hw;

typedef struct hw_state {
    double l, b, sig;
    double *sd, *sw;
} hw_state;

static double tf(const hw *m, double y) {
    return m->log ? log1p(fmax(y, 0.0)) : y;
}
static double itf(const hw *m, double x) {
    return m->log ? expm1(x) : x;
}

static int64_t pmod(int64_t a, int64_t b) {
    int64_t r = a % b;
    return r < 0 ? r + b : r;
}

/* Knot index and weight of timestamp ts in a cycle of `period` seconds with k knots. */
static void knot(int64_t ts, int64_t period, double knot_sec, int k, int *i0, int *i1, double *w) {
    double u = (double)pmod(ts, period) / knot_sec;
    int a = (int)u;
    if (a >= k) a = k - 1;
    *w = u - a;
    *i0 = a;
    *i1 = a + 1 == k ? 0 : a + 1;
}

static double season(const hw *m, const hw_state *s, int64_t ts) {
    int a, b;
    double w;
    knot(ts, 86400, m->kd_sec, m->kd, &a, &b, &w);
    double v = s->sd[a] * (1 - w) + s->sd[b] * w;
    if (m->kw) {
        knot(ts, 7 * 86400, m->kw_sec, m->kw, &a, &b, &w);
        v += s->sw[a] * (1 - w) + s->sw[b] * w;
    }
    return v;
}

/* The h-step damped trend multiplier phi + phi^2 + ... + phi^h. */
static double damp_sum(double phi, int h) {
    if (phi >= 1) return h;
    return phi * (1 - pow(phi, h)) / (1 - phi);
}

/* Runs the filter over x[from..to) (x transformed, ts of x[i] = t0 + i*step), updating st.
 * When eval_h is given, adds |forecast - actual| (raw scale, actual = y) at those horizons
 * for origins at or after `burn` to *sum / *cnt. */
static void run(const hw *m, const hw_params *p, const double *x, const double *y,
                const unsigned char *mask, size_t from, size_t to, int64_t t0, hw_state *st,
                const int *eval_h, const double *eval_damp, int neval, size_t burn, double *sum,
                size_t *cnt) {
    for (size_t t = from; t < to; t++) {
        int64_t ts = t0 + (int64_t)t * m->step;
        if (mask[t]) {
            int a, b;
            double w, wa = 0, wb = 0;
            int c = 0, d = 0;
            knot(ts, 86400, m->kd_sec, m->kd, &a, &b, &w);
            double s = st->sd[a] * (1 - w) + st->sd[b] * w;
            if (m->kw) {
                knot(ts, 7 * 86400, m->kw_sec, m->kw, &c, &d, &wb);
                wa = 1 - wb;
                s += st->sw[c] * wa + st->sw[d] * wb;
            }
            double e = x[t] - (st->l + p->phi * st->b + s);
            double lim = HW_CLIP * st->sig;
            double ec = e > lim ? lim : (e < -lim ? -lim : e);
            st->sig = 0.99 * st->sig + 0.01 * fmin(fabs(e), 3 * lim + 1e-12);
            st->l = st->l + p->phi * st->b + p->alpha * ec;
            st->b = p->phi * st->b + p->beta * ec;
            st->sd[a] += p->gd * (1 - w) * ec;
            st->sd[b] += p->gd * w * ec;
            if (m->kw) {
                st->sw[c] += p->gw * wa * ec;
                st->sw[d] += p->gw * wb * ec;
            }
        } else {
            st->l += p->phi * st->b;
            st->b *= p->phi;
        }
        if (!eval_h || t < burn) continue;
        for (int k = 0; k < neval; k++) {
            size_t j = t + (size_t)eval_h[k];
            if (j >= to || !mask[j]) continue;
            double f = st->l + eval_damp[k] * st->b + season(m, st, ts + eval_h[k] * m->step);
            *sum += fabs(itf(m, f) - y[j]);
            (*cnt)++;
        }
    }
}

static int create(void **state, const fc_options *opt, char *err, size_t errlen) {
    (void)err, (void)errlen;
    hw *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    m->horizon = opt && opt->horizon > 0 ? opt->horizon : 0;
    m->verbose = opt ? opt->verbose : 0;
    *state = m;
    return 0;
}

static void free_arrays(hw *m) {
    free(m->sd);
    free(m->sw);
    free(m->sd0);
    free(m->sw0);
    m->sd = m->sw = m->sd0 = m->sw0 = NULL;
}

/* Initial state from the first weeks of x: level = mean of the first day, daily knots = mean
 * deviation at each knot over up to 14 days, weekly knots = what the daily profile leaves at
 * each weekly knot over up to 21 days. */
static void init_state(const hw *m, const double *x, const unsigned char *mask, size_t n,
                       int64_t t0, double *l0, double *sd, double *sw, double *sig0) {
    size_t day = (size_t)fc__steps_per_day(m->step);
    size_t nd = n < 14 * day ? n : 14 * day, nw = n < 21 * day ? n : 21 * day;
    double mean = 0;
    size_t c = 0;
    for (size_t i = 0; i < nd; i++)
        if (mask[i]) {
            mean += x[i];
            c++;
        }
    mean = c ? mean / (double)c : 0;
    double *acc = calloc((size_t)(m->kd + m->kw + 2), sizeof *acc);
    double *cn = calloc((size_t)(m->kd + m->kw + 2), sizeof *cn);
    memset(sd, 0, (size_t)m->kd * sizeof *sd);
    if (m->kw) memset(sw, 0, (size_t)m->kw * sizeof *sw);
    if (acc && cn) {
        for (size_t i = 0; i < nd; i++) {
            if (!mask[i]) continue;
            int a, b;
            double w;
            knot(t0 + (int64_t)i * m->step, 86400, m->kd_sec, m->kd, &a, &b, &w);
            acc[a] += (1 - w) * (x[i] - mean);
            cn[a] += 1 - w;
            acc[b] += w * (x[i] - mean);
            cn[b] += w;
        }
        for (int k = 0; k < m->kd; k++)
            sd[k] = cn[k] > 0 ? acc[k] / cn[k] : 0;
        if (m->kw) {
            memset(acc, 0, (size_t)m->kw * sizeof *acc);
            memset(cn, 0, (size_t)m->kw * sizeof *cn);
            hw_state tmp = {.sd = sd};
            hw mm = *m;
            mm.kw = 0;
            for (size_t i = 0; i < nw; i++) {
                if (!mask[i]) continue;
                int64_t ts = t0 + (int64_t)i * m->step;
                double r = x[i] - mean - season(&mm, &tmp, ts);
                int a, b;
                double w;
                knot(ts, 7 * 86400, m->kw_sec, m->kw, &a, &b, &w);
                acc[a] += (1 - w) * r;
                cn[a] += 1 - w;
                acc[b] += w * r;
                cn[b] += w;
            }
            for (int k = 0; k < m->kw; k++)
                sw[k] = cn[k] > 0 ? acc[k] / cn[k] : 0;
        }
    }
    free(acc);
    free(cn);
    double l = 0, dev = 0;
    c = 0;
    size_t first = n < day ? n : day;
    hw_state tmp = {.sd = sd, .sw = sw};
    for (size_t i = 0; i < first; i++)
        if (mask[i]) {
            l += x[i] - season(m, &tmp, t0 + (int64_t)i * m->step);
            c++;
        }
    *l0 = c ? l / (double)c : mean;
    c = 0;
    for (size_t i = 0; i < first; i++)
        if (mask[i]) {
            dev += fabs(x[i] - *l0 - season(m, &tmp, t0 + (int64_t)i * m->step));
            c++;
        }
    *sig0 = c ? dev / (double)c + 1e-9 : 1;
}

static double sigm(double v) {
    return 1 / (1 + exp(-v));
}

static void to_params(const double *v, hw_params *p) {
    p->alpha = sigm(v[0]);
    p->beta = 0.1 * sigm(v[1]) * p->alpha;
    p->gd = 0.5 * sigm(v[2]);
    p->gw = 0.5 * sigm(v[3]);
    p->phi = 0.98;
}

typedef struct fit_ctx {
    hw *m;
    const double *x, *y;
    const unsigned char *mask;
    size_t n;
    int64_t t0;
    double l0, sig0;
    const double *sd0, *sw0;
    double *sd, *sw;
    int eval_h[4];
    double eval_damp[4];
    int neval;
    size_t burn;
} fit_ctx;

static double objective(fit_ctx *c, const double *v) {
    hw_params p;
    to_params(v, &p);
    for (int k = 0; k < c->neval; k++)
        c->eval_damp[k] = damp_sum(p.phi, c->eval_h[k]);
    memcpy(c->sd, c->sd0, (size_t)c->m->kd * sizeof *c->sd);
    if (c->m->kw) memcpy(c->sw, c->sw0, (size_t)c->m->kw * sizeof *c->sw);
    hw_state st = {.l = c->l0, .b = 0, .sig = c->sig0, .sd = c->sd, .sw = c->sw};
    double sum = 0;
    size_t cnt = 0;
    run(c->m, &p, c->x, c->y, c->mask, 0, c->n, c->t0, &st, c->eval_h, c->eval_damp, c->neval,
        c->burn, &sum, &cnt);
    return cnt ? sum / (double)cnt : INFINITY;
}

/* Nelder-Mead over HW_NPAR unconstrained parameters; v holds the start and the result. */
static double nelder_mead(fit_ctx *c, double *v, int max_evals) {
    enum { N = HW_NPAR };
    double s[N + 1][N], f[N + 1];
    for (int i = 0; i <= N; i++) {
        memcpy(s[i], v, sizeof s[i]);
        if (i > 0) s[i][i - 1] += 1.0;
        f[i] = objective(c, s[i]);
    }
    int evals = N + 1;
    while (evals < max_evals) {
        int lo = 0, hi = 0, nh = 0;
        for (int i = 1; i <= N; i++) {
            if (f[i] < f[lo]) lo = i;
            if (f[i] > f[hi]) hi = i;
        }
        nh = hi == 0 ? 1 : 0;
        for (int i = 0; i <= N; i++)
            if (i != hi && f[i] > f[nh]) nh = i;
        if (fabs(f[hi] - f[lo]) <= 1e-4 * (fabs(f[lo]) + 1e-12)) break;
        double cen[N] = {0}, r[N], e[N], k[N];
        for (int i = 0; i <= N; i++)
            if (i != hi)
                for (int j = 0; j < N; j++)
                    cen[j] += s[i][j] / N;
        for (int j = 0; j < N; j++)
            r[j] = cen[j] + (cen[j] - s[hi][j]);
        double fr = objective(c, r);
        evals++;
        if (fr < f[lo]) {
            for (int j = 0; j < N; j++)
                e[j] = cen[j] + 2 * (cen[j] - s[hi][j]);
            double fe = objective(c, e);
            evals++;
            if (fe < fr) {
                memcpy(s[hi], e, sizeof e);
                f[hi] = fe;
            } else {
                memcpy(s[hi], r, sizeof r);
                f[hi] = fr;
            }
        } else if (fr < f[nh]) {
            memcpy(s[hi], r, sizeof r);
            f[hi] = fr;
        } else {
            for (int j = 0; j < N; j++)
                k[j] = cen[j] + 0.5 * (s[hi][j] - cen[j]);
            double fk = objective(c, k);
            evals++;
            if (fk < f[hi]) {
                memcpy(s[hi], k, sizeof k);
                f[hi] = fk;
            } else {
                for (int i = 0; i <= N; i++) {
                    if (i == lo) continue;
                    for (int j = 0; j < N; j++)
                        s[i][j] = s[lo][j] + 0.5 * (s[i][j] - s[lo][j]);
                    f[i] = objective(c, s[i]);
                    evals++;
                }
            }
        }
    }
    int lo = 0;
    for (int i = 1; i <= N; i++)
        if (f[i] < f[lo]) lo = i;
    memcpy(v, s[lo], sizeof s[lo]);
    return f[lo];
}

static int fit(void *state, const fc_series *train, double *tp, char *err, size_t errlen) {
    (void)err, (void)errlen;
    hw *m = state;
    *tp = 0;
    free_arrays(m);
    size_t n = train->n;
    m->step = train->step;
    int spd = fc__steps_per_day(m->step);
    m->kd = spd < 144 ? spd : 144;
    m->kd_sec = 86400.0 / m->kd;
    m->kw = n >= (size_t)(14 * spd) ? 7 * (spd < 48 ? spd : 48) : 0;
    m->kw_sec = m->kw ? 7 * 86400.0 / m->kw : 1;
    int H = fc__horizon(m->horizon, m->step);
    double *x = malloc(n * sizeof *x);
    unsigned char *mask = malloc(n);
    double *buf = calloc(4 * (size_t)(m->kd + m->kw + 1), sizeof *buf);
    int rc = 0;
    if (!x || !mask || !buf) {
        rc = -ENOMEM;
        goto out;
    }
    fc__mask_outages(train->y, n, train->step, mask);
    int nonneg = 1;
    for (size_t i = 0; i < n; i++)
        if (train->y[i] < 0) nonneg = 0;
    fit_ctx c = {.m = m, .x = x, .y = train->y, .mask = mask, .n = n, .t0 = train->t0};
    double *sd0 = buf, *sw0 = buf + m->kd + 1;
    c.sd = sw0 + m->kw + 1;
    c.sw = c.sd + m->kd + 1;
    c.sd0 = sd0;
    c.sw0 = sw0;
    int hs[4] = {1, (H + 2) / 3, (2 * H + 2) / 3, H};
    c.neval = 0;
    for (int k = 0; k < 4; k++)
        if (c.neval == 0 || hs[k] != c.eval_h[c.neval - 1]) c.eval_h[c.neval++] = hs[k];
    c.burn = n > (size_t)(2 * spd) ? (size_t)spd : 0;
    double best = INFINITY, bestv[HW_NPAR] = {0};
    int best_log = 0;
    for (int lg = 0; lg <= nonneg; lg++) {
        m->log = lg;
        for (size_t i = 0; i < n; i++)
            x[i] = mask[i] ? tf(m, train->y[i]) : 0;
        init_state(m, x, mask, n, train->t0, &c.l0, sd0, sw0, &c.sig0);
        double v[HW_NPAR] = {-2.0, -2.0, -2.5, -2.5};
        double f = nelder_mead(&c, v, 160);
        if (m->verbose) {
            hw_params p;
            to_params(v, &p);
            fprintf(stderr,
                    "holt-winters: %s: alpha %.4f beta %.5f gamma_day %.4f gamma_week %.4f: fit "
                    "MAE %.4g\n",
                    lg ? "log" : "raw", p.alpha, p.beta, p.gd, p.gw, f);
        }
        if (f < best) {
            best = f;
            best_log = lg;
            memcpy(bestv, v, sizeof v);
        }
    }
    /* final state with the chosen variant */
    m->log = best_log;
    to_params(bestv, &m->p);
    for (size_t i = 0; i < n; i++)
        x[i] = mask[i] ? tf(m, train->y[i]) : 0;
    m->sd0 = malloc((size_t)m->kd * sizeof *m->sd0);
    m->sd = malloc((size_t)m->kd * sizeof *m->sd);
    m->sw0 = malloc((size_t)(m->kw + 1) * sizeof *m->sw0);
    m->sw = malloc((size_t)(m->kw + 1) * sizeof *m->sw);
    if (!m->sd0 || !m->sd || !m->sw0 || !m->sw) {
        rc = -ENOMEM;
        goto out;
    }
    init_state(m, x, mask, n, train->t0, &m->l0, m->sd0, m->sw0, &m->sig0);
    m->b0 = 0;
    memcpy(m->sd, m->sd0, (size_t)m->kd * sizeof *m->sd);
    memcpy(m->sw, m->sw0, (size_t)(m->kw + 1) * sizeof *m->sw);
    hw_state st = {.l = m->l0, .b = 0, .sig = m->sig0, .sd = m->sd, .sw = m->sw};
    run(m, &m->p, x, train->y, mask, 0, n, train->t0, &st, NULL, NULL, 0, 0, NULL, NULL);
    m->l = st.l;
    m->b = st.b;
    m->sig = st.sig;
    m->train_t0 = train->t0;
    m->n_train = n;
    m->t_end = train->t0 + (int64_t)n * train->step;
out:
    free(buf);
    free(mask);
    free(x);
    if (rc != 0) free_arrays(m);
    return rc;
}

static int predict(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen) {
    (void)err, (void)errlen;
    const hw *m = state;
    if (ctx->step != m->step) {
        for (int i = 0; i < h; i++)
            out[i] = fc__last_value(ctx);
        return 0;
    }
    size_t n = ctx->n;
    double *sd = malloc((size_t)m->kd * sizeof *sd);
    double *sw = malloc((size_t)(m->kw + 1) * sizeof *sw);
    double *x = malloc(n * sizeof *x);
    unsigned char *mask = malloc(n);
    int rc = 0;
    if (!sd || !sw || !x || !mask) {
        rc = -ENOMEM;
        goto out;
    }
    fc__mask_outages(ctx->y, n, ctx->step, mask);
    for (size_t i = 0; i < n; i++)
        x[i] = mask[i] ? tf(m, ctx->y[i]) : 0;
    hw_state st = {.sd = sd, .sw = sw};
    size_t from;
    if (ctx->t0 == m->train_t0 && n >= m->n_train) {
        /* the training series continued: go on from the final state */
        memcpy(sd, m->sd, (size_t)m->kd * sizeof *sd);
        memcpy(sw, m->sw, (size_t)(m->kw + 1) * sizeof *sw);
        st.l = m->l;
        st.b = m->b;
        st.sig = m->sig;
        from = m->n_train;
    } else if (ctx->t0 == m->train_t0) {
        /* a prefix of the training series: replay from the initial state */
        memcpy(sd, m->sd0, (size_t)m->kd * sizeof *sd);
        memcpy(sw, m->sw0, (size_t)(m->kw + 1) * sizeof *sw);
        st.l = m->l0;
        st.b = m->b0;
        st.sig = m->sig0;
        from = 0;
    } else {
        /* another series or window: start from the learnt seasonal shape, level from the
         * first day of the context */
        memcpy(sd, m->sd, (size_t)m->kd * sizeof *sd);
        memcpy(sw, m->sw, (size_t)(m->kw + 1) * sizeof *sw);
        size_t day = (size_t)fc__steps_per_day(m->step), first = n < day ? n : day, c = 0;
        double l = 0;
        st.b = 0;
        st.sig = m->sig;
        for (size_t i = 0; i < first; i++)
            if (mask[i]) {
                l += x[i] - season(m, &st, ctx->t0 + (int64_t)i * m->step);
                c++;
            }
        st.l = c ? l / (double)c : m->l;
        from = 0;
    }
    run(m, &m->p, x, ctx->y, mask, from, n, ctx->t0, &st, NULL, NULL, 0, 0, NULL, NULL);
    int64_t tlast = ctx->t0 + (int64_t)(n - 1) * m->step;
    for (int i = 0; i < h; i++) {
        double f = st.l + damp_sum(m->p.phi, i + 1) * st.b +
                   season(m, &st, tlast + (int64_t)(i + 1) * m->step);
        out[i] = itf(m, f);
    }
out:
    free(mask);
    free(x);
    free(sw);
    free(sd);
    return rc;
}

static void destroy(void *state) {
    hw *m = state;
    if (!m) return;
    free_arrays(m);
    free(m);
}

const fc_model_ops fc__model_holt_winters = {"holt-winters", create, fit,  predict, destroy,
                                             NULL,           NULL,   NULL, NULL};
