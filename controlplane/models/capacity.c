/* capacity.c: the traffic-to-replicas capacity model (positive ElasticNet + gradient-boosted
 * residual trees) with quality gates, and the replica solver. See capacity.h. */
#include "models/capacity.h"
#include "errmsg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xgboost/c_api.h>

#define CAP_NFEAT 1     /* linear features: traffic per replica */
#define CAP_TREE_FEAT 4 /* traffic per replica, linear prediction, weekday, minute of day */
#define CAP_ALPHAS 30
#define CAP_FOLDS 5
#define CAP_ROUNDS 60
#define CAP_DEFAULT_MIN_CORR 0.5  /* below this the traffic hardly explains the load */
#define CAP_DEFAULT_MAX_MAPE 0.25 /* a quarter off on the held-out day is too unreliable */

static const double l1_ratios[] = {0.1, 0.5, 0.7, 0.9, 0.95, 0.99, 1.0};
#define N_RATIOS (sizeof l1_ratios / sizeof *l1_ratios)

struct cap_model {
    double coef, intercept; /* util = intercept + coef * traffic/replica (+ residual) */
    BoosterHandle booster;  /* NULL when no residual model */
};

/* ---- ElasticNet by coordinate descent ----------------------------------------------------- */

/* Fits beta (p standardized features, column-major X n x p, centered y) minimising
 * 1/(2n)|y - X b|^2 + alpha*rho*|b|_1 + alpha*(1-rho)/2*|b|^2 with b >= 0. beta is the warm
 * start and the result. */
static void enet_cd(const double *X, const double *y, size_t n, int p, double alpha, double rho,
                    double *beta) {
    double *r = malloc(n * sizeof *r);
    if (!r) return;
    for (size_t i = 0; i < n; i++) {
        r[i] = y[i];
        for (int j = 0; j < p; j++)
            r[i] -= X[(size_t)j * n + i] * beta[j];
    }
    for (int it = 0; it < 1000; it++) {
        double maxd = 0;
        for (int j = 0; j < p; j++) {
            const double *xj = X + (size_t)j * n;
            double g = 0, xx = 0;
            for (size_t i = 0; i < n; i++) {
                g += xj[i] * r[i];
                xx += xj[i] * xj[i];
            }
            g = g / (double)n + beta[j] * xx / (double)n;
            double nb = g - alpha * rho;
            nb = nb > 0 ? nb / (xx / (double)n + alpha * (1 - rho)) : 0; /* positive */
            double d = nb - beta[j];
            if (d != 0)
                for (size_t i = 0; i < n; i++)
                    r[i] -= d * xj[i];
            beta[j] = nb;
            if (fabs(d) > maxd) maxd = fabs(d);
        }
        if (maxd < 1e-9) break;
    }
    free(r);
}

typedef struct lin_fit {
    double coef, intercept;
} lin_fit;

/* Fits the linear model on rows [a, b) with given alpha/rho. */
static lin_fit enet_fit(const double *x, const double *y, size_t a, size_t b, double alpha,
                        double rho) {
    size_t n = b - a;
    double mx = 0, my = 0, sx = 0;
    for (size_t i = a; i < b; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = a; i < b; i++)
        sx += (x[i] - mx) * (x[i] - mx);
    sx = sqrt(sx / (double)n);
    lin_fit f = {0, my};
    if (!(sx > 0)) return f;
    double *X = malloc(n * sizeof *X), *yc = malloc(n * sizeof *yc);
    if (!X || !yc) {
        free(X);
        free(yc);
        return f;
    }
    for (size_t i = 0; i < n; i++) {
        X[i] = (x[a + i] - mx) / sx;
        yc[i] = y[a + i] - my;
    }
    double beta[CAP_NFEAT] = {0};
    enet_cd(X, yc, n, CAP_NFEAT, alpha, rho, beta);
    f.coef = beta[0] / sx;
    f.intercept = my - f.coef * mx;
    free(X);
    free(yc);
    return f;
}

/* alpha at which every coefficient is zero, for this rho, on rows [a, b). */
static double alpha_max(const double *x, const double *y, size_t a, size_t b, double rho) {
    size_t n = b - a;
    double mx = 0, my = 0, sx = 0, g = 0;
    for (size_t i = a; i < b; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = a; i < b; i++)
        sx += (x[i] - mx) * (x[i] - mx);
    sx = sqrt(sx / (double)n);
    if (!(sx > 0)) return 1;
    for (size_t i = a; i < b; i++)
        g += (x[i] - mx) / sx * (y[i] - my);
    return fabs(g) / ((double)n * rho) + 1e-12;
}

/* Chooses l1_ratio and alpha by time-series cross-validation (expanding window over
 * CAP_FOLDS consecutive blocks of rows [0, n)) and fits on all of them. */
static lin_fit enet_cv(const double *x, const double *y, size_t n, double *best_rho,
                       double *best_alpha) {
    double best = INFINITY;
    *best_rho = 1;
    *best_alpha = 0;
    size_t block = n / CAP_FOLDS;
    for (size_t ri = 0; ri < N_RATIOS; ri++) {
        double rho = l1_ratios[ri];
        double amax = alpha_max(x, y, 0, n, rho);
        for (int ai = 0; ai < CAP_ALPHAS; ai++) {
            double alpha = amax * pow(10, -4.0 * ai / (CAP_ALPHAS - 1));
            double se = 0;
            size_t cnt = 0;
            for (int k = 1; k < CAP_FOLDS && block >= 2; k++) {
                size_t tr = (size_t)k * block, te = k == CAP_FOLDS - 1 ? n : tr + block;
                lin_fit f = enet_fit(x, y, 0, tr, alpha, rho);
                for (size_t i = tr; i < te; i++) {
                    double e = y[i] - (f.intercept + f.coef * x[i]);
                    se += e * e;
                    cnt++;
                }
            }
            double mse = cnt ? se / (double)cnt : 0;
            if (mse < best - 1e-15) {
                best = mse;
                *best_rho = rho;
                *best_alpha = alpha;
            }
        }
    }
    return enet_fit(x, y, 0, n, *best_alpha, *best_rho);
}

/* ---- residual trees ----------------------------------------------------------------------- */

static void tree_features(double traffic, double replicas, int64_t ts, const lin_fit *lf,
                          float *row) {
    double x = replicas > 0 ? traffic / replicas : 0;
    int64_t days = ts >= 0 ? ts / 86400 : (ts - 86399) / 86400;
    row[0] = (float)x;
    row[1] = (float)(lf->intercept + lf->coef * x);
    row[2] = (float)(((days + 4) % 7 + 7) % 7); /* 0 = Sunday (1970-01-01 was a Thursday) */
    row[3] = (float)((ts - days * 86400) / 60);
}

#define XGB_TRY(call)                                                                              \
    do {                                                                                           \
        if ((call) != 0) {                                                                         \
            errmsg(err, errlen, 0, "xgboost: %s", XGBGetLastError());                              \
            goto fail;                                                                             \
        }                                                                                          \
    } while (0)

static int fit_trees(const cap_obs *obs, size_t n, const lin_fit *lf, uint64_t seed,
                     BoosterHandle *out, char *err, size_t errlen) {
    *out = NULL;
    float *X = malloc(n * CAP_TREE_FEAT * sizeof *X), *lab = malloc(n * sizeof *lab);
    DMatrixHandle dm = NULL;
    BoosterHandle b = NULL;
    if (!X || !lab) {
        free(X);
        free(lab);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        tree_features(obs[i].traffic, obs[i].replicas, obs[i].ts, lf, X + i * CAP_TREE_FEAT);
        lab[i] = (float)(obs[i].util - X[i * CAP_TREE_FEAT + 1]);
    }
    char seedbuf[32];
    snprintf(seedbuf, sizeof seedbuf, "%llu", (unsigned long long)(seed % 2147483647u));
    XGB_TRY(XGDMatrixCreateFromMat(X, n, CAP_TREE_FEAT, NAN, &dm));
    XGB_TRY(XGDMatrixSetFloatInfo(dm, "label", lab, n));
    XGB_TRY(XGBoosterCreate(&dm, 1, &b));
    XGB_TRY(XGBoosterSetParam(b, "tree_method", "hist"));
    XGB_TRY(XGBoosterSetParam(b, "objective", "reg:squarederror"));
    XGB_TRY(XGBoosterSetParam(b, "nthread", "1"));
    XGB_TRY(XGBoosterSetParam(b, "max_depth", "4"));
    XGB_TRY(XGBoosterSetParam(b, "eta", "0.1"));
    XGB_TRY(XGBoosterSetParam(b, "min_child_weight", "5"));
    XGB_TRY(XGBoosterSetParam(b, "seed", seedbuf));
    XGB_TRY(XGBoosterSetParam(b, "verbosity", "0"));
    for (int it = 0; it < CAP_ROUNDS; it++)
        XGB_TRY(XGBoosterUpdateOneIter(b, it, dm));
    XGDMatrixFree(dm);
    free(X);
    free(lab);
    *out = b;
    return 0;
fail:
    if (b) XGBoosterFree(b);
    if (dm) XGDMatrixFree(dm);
    free(X);
    free(lab);
    return -EIO;
}

static double tree_predict(BoosterHandle b, const float *row) {
    DMatrixHandle dm = NULL;
    if (XGDMatrixCreateFromMat(row, 1, CAP_TREE_FEAT, NAN, &dm) != 0) return 0;
    bst_ulong const *shape = NULL;
    bst_ulong dim = 0;
    const float *res = NULL;
    double v = 0;
    static const char cfg[] = "{\"type\": 0, \"training\": false, \"iteration_begin\": 0, "
                              "\"iteration_end\": 0, \"strict_shape\": false}";
    if (XGBoosterPredictFromDMatrix(b, dm, cfg, &shape, &dim, &res) == 0 && res) v = res[0];
    XGDMatrixFree(dm);
    return v;
}

/* ---- the model ---------------------------------------------------------------------------- */

double cap_predict_util(const cap_model *m, double traffic, double replicas, int64_t ts) {
    if (!m || !(replicas > 0)) return INFINITY;
    double x = traffic / replicas;
    double lin = m->intercept + m->coef * x;
    if (!m->booster) return lin;
    lin_fit lf = {m->coef, m->intercept};
    float row[CAP_TREE_FEAT];
    tree_features(traffic, replicas, ts, &lf, row);
    return lin + tree_predict(m->booster, row);
}

int cap_solve_replicas(const cap_model *m, double traffic, int64_t ts, double target, int min_n,
                       int max_n) {
    if (min_n < 1) min_n = 1;
    if (max_n < min_n) max_n = min_n;
    for (int n = min_n; n <= max_n; n++)
        if (cap_predict_util(m, traffic, n, ts) <= target) return n;
    return max_n;
}

void cap_free(cap_model *m) {
    if (!m) return;
    if (m->booster) XGBoosterFree(m->booster);
    free(m);
}

static double pearson(const double *x, const double *y, size_t n) {
    double mx = 0, my = 0, sxy = 0, sxx = 0, syy = 0;
    for (size_t i = 0; i < n; i++) {
        mx += x[i];
        my += y[i];
    }
    mx /= (double)n;
    my /= (double)n;
    for (size_t i = 0; i < n; i++) {
        sxy += (x[i] - mx) * (y[i] - my);
        sxx += (x[i] - mx) * (x[i] - mx);
        syy += (y[i] - my) * (y[i] - my);
    }
    return sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
}

/* Fits linear (+ trees) on obs[0..n). */
static int fit_model(const cap_obs *obs, size_t n, const cap_options *o, cap_model **out,
                     double *rho, double *alpha, char *err, size_t errlen) {
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    cap_model *m = calloc(1, sizeof *m);
    if (!x || !y || !m) {
        free(x);
        free(y);
        free(m);
        return errmsg(err, errlen, -ENOMEM, "out of memory");
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = obs[i].traffic / obs[i].replicas;
        y[i] = obs[i].util;
    }
    lin_fit lf = enet_cv(x, y, n, rho, alpha);
    m->coef = lf.coef;
    m->intercept = lf.intercept;
    free(x);
    free(y);
    if (o->use_residual) {
        int rc = fit_trees(obs, n, &lf, o->seed, &m->booster, err, errlen);
        if (rc != 0) {
            cap_free(m);
            return rc;
        }
    }
    *out = m;
    return 0;
}

int cap_fit(cap_model **out, const cap_obs *obs, size_t n, const cap_options *opt,
            cap_report *report, char *err, size_t errlen) {
    *out = NULL;
    cap_options o = opt ? *opt : (cap_options){.use_residual = 1};
    if (!opt) o.use_residual = 1;
    if (o.min_corr <= 0) o.min_corr = CAP_DEFAULT_MIN_CORR;
    if (o.max_holdout_mape <= 0) o.max_holdout_mape = CAP_DEFAULT_MAX_MAPE;
    cap_report rep;
    memset(&rep, 0, sizeof rep);
    for (size_t i = 0; i < n; i++) {
        if (!(obs[i].replicas > 0) || !isfinite(obs[i].traffic) || !isfinite(obs[i].util) ||
            (i > 0 && obs[i].ts < obs[i - 1].ts)) {
            return errmsg(err, errlen, -EINVAL,
                          "observation %zu is unusable (replicas must be > 0, values finite, "
                          "timestamps sorted)",
                          i);
        }
    }
    if (n < 2 * CAP_FOLDS) {
        return errmsg(err, errlen, -EINVAL, "too few observations (%zu, need at least %d)", n,
                      2 * CAP_FOLDS);
    }
    double *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    if (!x || !y) {
        free(x);
        free(y);
        return -ENOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        x[i] = obs[i].traffic / obs[i].replicas;
        y[i] = obs[i].util;
    }
    rep.corr = pearson(x, y, n);
    free(x);
    free(y);

    /* held-out last day: fit on everything before it, measure MAPE on it */
    int64_t cut = obs[n - 1].ts - 86400;
    size_t split = n;
    while (split > 0 && obs[split - 1].ts > cut)
        split--;
    int holdout_ok = obs[n - 1].ts - obs[0].ts > 86400 && split >= 2 * CAP_FOLDS && split < n;
    rep.holdout_mape = NAN;
    if (holdout_ok) {
        cap_model *hm = NULL;
        double r, a;
        int rc = fit_model(obs, split, &o, &hm, &r, &a, err, errlen);
        if (rc != 0) return rc;
        double s = 0;
        size_t c = 0;
        for (size_t i = split; i < n; i++) {
            double p = cap_predict_util(hm, obs[i].traffic, obs[i].replicas, obs[i].ts);
            if (fabs(obs[i].util) > 1e-12) {
                s += fabs(p - obs[i].util) / fabs(obs[i].util);
                c++;
            }
        }
        rep.holdout_mape = c ? s / (double)c : NAN;
        cap_free(hm);
    }
    cap_model *m = NULL;
    int rc = fit_model(obs, n, &o, &m, &rep.l1_ratio, &rep.alpha, err, errlen);
    if (rc != 0) return rc;
    rep.coef = m->coef;
    rep.intercept = m->intercept;
    if (rep.corr < o.min_corr)
        snprintf(rep.reason, sizeof rep.reason,
                 "traffic per replica explains too little of the utilization: correlation "
                 "%.2f < %.2f",
                 rep.corr, o.min_corr);
    else if (!holdout_ok)
        snprintf(rep.reason, sizeof rep.reason,
                 "not enough history to hold out a day (need more than one day and %d "
                 "observations before it)",
                 2 * CAP_FOLDS);
    else if (!(rep.holdout_mape <= o.max_holdout_mape))
        snprintf(rep.reason, sizeof rep.reason,
                 "error on the held-out last day too high: MAPE %.1f%% > %.1f%%",
                 100 * rep.holdout_mape, 100 * o.max_holdout_mape);
    else if (!(rep.coef > 0))
        snprintf(rep.reason, sizeof rep.reason,
                 "utilization does not grow with traffic per replica (coefficient 0)");
    else {
        rep.passed = 1;
        snprintf(rep.reason, sizeof rep.reason,
                 "ok: util = %.4g + %.4g * traffic/replica%s; correlation %.2f, held-out day "
                 "MAPE %.1f%%, l1_ratio %.2f",
                 rep.intercept, rep.coef, m->booster ? " + trees" : "", rep.corr,
                 100 * rep.holdout_mape, rep.l1_ratio);
    }
    if (report) *report = rep;
    *out = m;
    return 0;
}
