/* capacity.h: the traffic-to-replicas capacity model and the replica solver.
 *
 * Linear part: ElasticNet (coordinate descent, positive coefficients, l1_ratio chosen by
 * time-series cross-validation) on x = traffic per replica, y = resource per replica.
 * Residual part: gradient-boosted trees (libxgboost, hist, nthread=1) on
 * [traffic per replica, linear prediction, weekday, minute of day] fit to the residual.
 * Quality gates decide whether the model may drive scaling; when not, the reason says why and
 * the workload falls back to reactive scaling. */
#ifndef TIDE_CAPACITY_H
#define TIDE_CAPACITY_H

#include <stddef.h>
#include <stdint.h>

typedef struct cap_obs {
    int64_t ts;      /* unix seconds */
    double traffic;  /* total traffic of the workload (e.g. requests/s) */
    double replicas; /* replicas serving it */
    double util;     /* average utilization per replica (e.g. CPU fraction of request) */
} cap_obs;

typedef struct cap_options {
    int use_residual;        /* fit the gradient-boosted residual model (default on: 1) */
    double min_corr;         /* quality gate: correlation of x and y at least this; 0 = default */
    double max_holdout_mape; /* quality gate on the held-out last day; 0 = default */
    uint64_t seed;
} cap_options;

typedef struct cap_report {
    int passed;       /* quality gates passed */
    char reason[256]; /* why not (or a summary when passed) */
    double corr, holdout_mape, l1_ratio, alpha, coef, intercept;
} cap_report;

typedef struct cap_model cap_model;

/* Fits the model on obs[0..n) (sorted by ts, replicas > 0). opt may be NULL (residual model
 * on, default gates). Returns 0 and a model in *out (free with cap_free) whether or not the
 * quality gates passed: report->passed says whether it may drive scaling and report->reason
 * why not (or a summary). Gates: correlation of traffic per replica and utilization at least
 * min_corr (default 0.5); MAPE on the held-out last day (model fit on the days before it) at
 * most max_holdout_mape (default 0.25); more than a day of history; a positive coefficient.
 * Returns -EINVAL (err names the first bad observation, or too few of them), -ENOMEM, or
 * -EIO when libxgboost fails (err carries its message). */
int cap_fit(cap_model **out, const cap_obs *obs, size_t n, const cap_options *opt,
            cap_report *report, char *err, size_t errlen);
/* Predicted per-replica utilization with `replicas` replicas serving `traffic` at time ts
 * (INFINITY for replicas <= 0). Not thread-safe for one model (libxgboost's prediction buffer). */
double cap_predict_util(const cap_model *m, double traffic, double replicas, int64_t ts);
/* Smallest n in [min_n, max_n] whose predicted utilization at `traffic` is <= target;
 * max_n when none is. */
int cap_solve_replicas(const cap_model *m, double traffic, int64_t ts, double target, int min_n,
                       int max_n);
void cap_free(cap_model *m);

#endif
