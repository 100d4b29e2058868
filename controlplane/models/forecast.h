/* forecast.h: traffic forecasters behind one interface: fit on history, predict H steps ahead
 * from a context, at any quantile. Models: "last", "snaive-day", "snaive-week", "holt-winters",
 * "neural" (series/time embeddings, quasi-differences, squeeze-excitation blocks, direct
 * multi-step head), "lstm", and "auto" (chooses per series by a rolling backtest).
 *
 * Deterministic for a given seed; single-threaded unless opts.threads says otherwise.
 * Used by tidectl backtest/simulate and by the live control plane alike. */
#ifndef TIDE_FORECAST_H
#define TIDE_FORECAST_H

#include <stddef.h>
#include <stdint.h>

/* A regular series: y[i] is the value at t0 + i*step (seconds). NaN marks a missing value. */
typedef struct fc_series {
    const double *y;
    size_t n;
    int64_t t0;
    int64_t step;
    uint32_t series_id; /* for the series embedding; 0 when unknown */
} fc_series;

typedef struct fc_options {
    int horizon;            /* steps the model is trained to predict (direct multi-step) */
    int context;            /* input window in steps; 0 = model default */
    uint64_t seed;          /* 0 = default seed */
    int threads;            /* OpenBLAS/XGBoost threads; 0 = 1 */
    int max_epochs;         /* networks: training epochs (50 Adam steps of batch 32 each) at most;
                             * early stopping on the validation loss also applies; 0 = model default.
                             * Training never depends on elapsed time, so a seed gives one model. */
    double max_fit_seconds; /* networks: safety abort, 0 = none. A fit still training after this
                             * many seconds fails with -ETIMEDOUT and says so (never a silently
                             * different, shorter-trained model). */
    int verbose;            /* progress lines on stderr */
} fc_options;

typedef struct forecaster forecaster;

/* Creates an unfitted model by name. Returns 0, or -EINVAL with err naming the unknown model. */
int fc_new(forecaster **out, const char *model, const fc_options *opt, char *err, size_t errlen);
/* Fits on history (everything strictly before the first forecast origin). 0 or -errno. */
int fc_fit(forecaster *f, const fc_series *train, char *err, size_t errlen);
/* Predicts h steps following the end of ctx (ctx holds the most recent values, its last
 * sample is at ctx->t0 + (n-1)*step) at quantile q in (0,1) (0.5 = the point forecast).
 * Writes out[0..h-1]. 0 or -errno. */
int fc_predict(const forecaster *f, const fc_series *ctx, int h, double q, double *out, char *err,
               size_t errlen);
/* The model actually used (for "auto": the chosen one, e.g. "auto:holt-winters"). */
const char *fc_name(const forecaster *f);
/* What the latest fc_predict used: for "auto" the online choice at that forecast, which may
 * differ from the fit's (fc_name); fc_name for every other model and before any forecast.
 * Written by fc_predict: read it from the thread that predicts. */
const char *fc_name_last(const forecaster *f);
/* Training windows processed per second during the last fit (0 for non-windowed models). */
double fc_train_throughput(const forecaster *f);
void fc_free(forecaster *f);

/* The names fc_new accepts, NULL-terminated. */
extern const char *const fc_model_names[];

#endif
