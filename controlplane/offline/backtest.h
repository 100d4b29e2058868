/* backtest.h: the forecast benchmark protocol of ../shared/data/README.md as a library.
 *
 * The test window is the last 7 days of native samples; T0 is the timestamp of its first
 * sample and models are fit once on everything strictly before T0. Task scale-1h forecasts
 * H = 3600/step native steps from origins every H steps from T0; task day-ahead resamples to
 * 10-minute sums (bins [b, b + 600) for b a multiple of 600 s, each summing the samples whose
 * timestamps fall in it; complete bins only), trains on bins that
 * end at or before T0 and forecasts 144 bins from every UTC midnight at or after T0. At an
 * origin a model reads every value before the origin and nothing at or after it. */
#ifndef TIDE_BACKTEST_H
#define TIDE_BACKTEST_H

#include "models/forecast.h"

#include <stddef.h>
#include <stdint.h>

typedef enum bt_task { BT_SCALE_1H = 0, BT_DAY_AHEAD = 1 } bt_task;

/* Parses "scale-1h" / "day-ahead". Returns 0 or -EINVAL. */
int bt_task_parse(const char *s, bt_task *out);
const char *bt_task_name(bt_task t);

/* A task's series with its split and origins. */
typedef struct bt_data {
    bt_task task;
    double *y; /* task-resolution series (owned) */
    size_t n;
    int64_t t0, step;
    size_t n_train; /* y[0..n_train) is the training data */
    int horizon;
    size_t *origins; /* indices into y (owned) */
    size_t n_origins;
    double mase_scale; /* mean |y_t - y_{t-d}| over the training part, d = steps per day */
} bt_data;

/* Builds the task data from a regular native series. -EINVAL with err saying why when the
 * series is too short for the task (needs the test week plus at least one day of training
 * before it) or its step does not suit it. */
int bt_prepare(const fc_series *native, bt_task task, bt_data *out, char *err, size_t errlen);
void bt_data_fini(bt_data *d);

/* Distinct names of what the forecasts used that a result keeps (auto's online choice). */
#define BT_USED_MAX 8

typedef struct bt_result {
    char model[96]; /* fc_name after fitting (e.g. "auto:holt-winters") */
    /* What each origin's forecast used (fc_name_last), in order of first use, with the number
     * of origins; origins beyond BT_USED_MAX distinct names count in used_other. */
    struct {
        char name[96];
        size_t origins;
    } used[BT_USED_MAX];
    size_t n_used, used_other;
    double mae, rmse, wape, mase, under, p90_coverage;
    double pinball_p90; /* bt_pinball of the p90 forecasts at q = 0.9 */
    double fit_seconds, predict_seconds, train_windows_per_s;
    size_t points;
    /* When kept: n_origins x horizon forecasts (point and p90), row per origin; owned. */
    double *point, *p90;
} bt_result;

/* Fits `model` on the training part and forecasts every origin at q = 0.5 and q = 0.9.
 * keep != 0 keeps the forecasts in res (for plots). 0 or -errno with err set. */
int bt_run(const bt_data *d, const char *model, const fc_options *opt, int keep, bt_result *res,
           char *err, size_t errlen);
void bt_result_fini(bt_result *r);

/* Metrics of forecasts f against actuals y (n points): MAE, RMSE, WAPE, MASE (against
 * mase_scale) and UNDER (share of f < 0.9 y). Exposed for tests. */
void bt_metrics(const double *f, const double *y, size_t n, double mase_scale, double *mae,
                double *rmse, double *wape, double *mase, double *under);

/* Scale-free pinball loss of quantile-q forecasts f against actuals y (n points):
 * mean over the points of rho_q(y - f), rho_q(u) = q u for u >= 0 and (q - 1) u for u < 0,
 * divided by mase_scale (the MASE denominator). At q = 0.5 it is half the MASE of f; a
 * forecast that is the true q-quantile minimises it. Exposed for tests. */
double bt_pinball(const double *f, const double *y, size_t n, double q, double mase_scale);

/* Writes an SVG of the test window: actuals, the point forecast and the band up to p90 of
 * each result (results must have been kept). 0 or -errno with err set. */
int bt_plot_svg(const char *path, const bt_data *d, const bt_result *res, size_t nres,
                const char *title, char *err, size_t errlen);

#endif
