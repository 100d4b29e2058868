/* model.h: what a forecasting model implements to sit behind forecast.h, and helpers the
 * models share (outage masking, time features). Internal to the forecasting engine. */
#ifndef TIDE_MODELS_MODEL_H
#define TIDE_MODELS_MODEL_H

#include "models/forecast.h"

#include <stddef.h>
#include <stdint.h>

typedef struct fc_model_ops {
    const char *name;
    /* Allocates the model state for these options. 0 or -errno. */
    int (*create)(void **state, const fc_options *opt, char *err, size_t errlen);
    /* Fits on train. *throughput: training windows per second (0 when not windowed). */
    int (*fit)(void *state, const fc_series *train, double *throughput, char *err, size_t errlen);
    /* The point forecast of h steps after the end of ctx. */
    int (*predict)(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen);
    void (*destroy)(void *state);
    /* Optional: the name of what the fitted model actually uses (e.g. "auto:holt-winters"). */
    const char *(*describe)(const void *state);
    /* Optional: out-of-sample residuals for the quantiles, replacing the in-sample ones
     * fc_fit collects: *h rows (horizon steps) of *n sorted values (y - f) / (|f| + floor).
     * NULL when the model has none. */
    const float *(*residuals)(const void *state, int *h, size_t *n, double *floor);
    /* Optional: the model's own q-quantile forecast of h steps after the end of ctx (e.g. from
     * heads trained with the pinball loss), or -ENOTSUP for a level it was not trained for;
     * fc_predict then uses the residual quantiles. */
    int (*predict_quantile)(const void *state, const fc_series *ctx, int h, double q, double *out,
                            char *err, size_t errlen);
    /* Optional: the name of what the latest predict used, when the model chooses again at
     * every forecast (auto's online choice); describe's name when NULL. */
    const char *(*describe_last)(const void *state);
} fc_model_ops;

extern const fc_model_ops fc__model_last, fc__model_snaive_day, fc__model_snaive_week,
    fc__model_holt_winters, fc__model_profile, fc__model_auto, fc__model_neural, fc__model_lstm;

/* Marks values that should not be learned from: NaN, and runs of exact zeros at least
 * max(3, 1800 s/step) long (outages) when zeros are otherwise rare (< 10% of values).
 * mask[i] = 1 for a usable value, 0 for a masked one. Returns the number masked. */
size_t fc__mask_outages(const double *y, size_t n, int64_t step, unsigned char *mask);

/* auto's widening of its validation residuals: how much more the level of H-step blocks
 * varies, beyond what the block before each one shows, over the whole of train than over its
 * last V steps (the validation window), clamped to [1, 3]. mask as from fc__mask_outages. */
double fc__level_widening(const fc_series *train, const unsigned char *mask, size_t H, size_t V,
                          size_t day);

/* auto's test of the strength of its evidence: whether the gains d[0..n) of a choice over the
 * best naive forecast (per validation window, the naive forecast's MAE minus the choice's)
 * have a mean above one standard error of the mean (0 with fewer than two). */
int fc__gain_consistent(const double *d, int n);

/* auto's noise floor (auto.c, noise_floor) of forecasts blend[] against actual values A[] widened
 * by kl, norig origins of H steps (exposed for the unit tests). */
double fc__noise_floor(const double *blend, const double *A, size_t norig, size_t H, double kl);

/* auto's pool of the untied: mae[t] (t < ntop, ranked best first) holds W per-window MAEs of a
 * candidate; those ranked second and third (no further) that the first does not beat consistently
 * (fc__gain_consistent on the paired differences) share equal weights with it in w[0..ntop).
 * Returns how many share (1: the first alone, w untouched). */
int fc__pool_untied(const double *const *mae, int ntop, int W, double *w);

/* Steps per day / per week at this step (at least 1). */
int fc__steps_per_day(int64_t step);

/* The horizon a model forecasts: `horizon` when > 0, else an hour of steps (at least 1). */
int fc__horizon(int horizon, int64_t step);

/* The most recent usable value of ctx (skipping NaN), or 0 when there is none. */
double fc__last_value(const fc_series *ctx);

/* Seasonal naive forecast of h steps after ctx: the value period_s earlier (several periods
 * for h > period); where that is before ctx or missing, and when period_s is 0, the last value. */
void fc__seasonal_naive(const fc_series *ctx, int64_t period_s, int h, double *out);

#endif
