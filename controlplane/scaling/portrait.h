/* portrait.h: the replica portrait of one workload: how many replicas it needs at every step
 * of the horizon ahead, from its providers (static, cron, reactive, predictive) merged by
 * priority and clamped to the spec's bounds.
 *
 * The engine is pure decision code: the caller feeds observations (time, current replicas,
 * per-pod metrics for the reactive provider, traffic history for the predictive one) and gets
 * a portrait back. The live control plane and `tidectl simulate` call it the same way.
 *
 * Each step carries two counts:
 *   needed[i]   replicas that must be online at t0 + i*step;
 *   replicas[i] replicas that must exist (online, starting, or warm in standby) at that time:
 *               the predictive need shifted earlier by the scale-up-ahead time, so that new
 *               replicas are started early enough to be online when the demand arrives.
 * Merge rule per step: the highest-priority provider that has an unexpired value wins, ties go
 * to the higher count; the result is clamped to [minReplicas, maxReplicas] and the clamp is
 * recorded in the status. */
#ifndef TIDE_PORTRAIT_H
#define TIDE_PORTRAIT_H

#include "models/forecast.h"
#include "scaling/hpa.h"
#include "spec/workload.h"

#include <stddef.h>
#include <stdint.h>

#define PORTRAIT_MAX_STEPS 1440

typedef struct portrait {
    int64_t t0, step; /* grid: t0 + i*step, t0 = the start of the current step */
    int n;
    int replicas[PORTRAIT_MAX_STEPS];
    int needed[PORTRAIT_MAX_STEPS];
    int demand[PORTRAIT_MAX_STEPS];         /* replicas asked for before the min/max clamp */
    signed char source[PORTRAIT_MAX_STEPS]; /* winning provider index, -1 none (min bound) */
    double traffic[PORTRAIT_MAX_STEPS];     /* predicted traffic at the chosen quantile, NaN none */
    int clamped_low, clamped_high;          /* steps raised to min / cut to max */
    char status[512];                       /* one line per provider: value, reason, fallback */
} portrait;

/* Observations for one update. */
typedef struct portrait_obs {
    int64_t now;               /* unix seconds */
    int current;               /* replicas counted by the reactive provider (online + coming) */
    const hpa_metric *metrics; /* per-pod metrics for the reactive provider; NULL = none */
    size_t n_metrics;
    const fc_series *traffic; /* traffic history, last value = the last complete step; NULL none */
    int ahead_seconds;        /* effective scale-up-ahead (planner_scale_up_ahead) */
} portrait_obs;

/* Converts traffic to replicas when the spec gives no capacityPerReplica: a fitted capacity
 * model (capacity.h cap_solve_replicas behind it). Returns replicas, or -1 when it cannot. */
typedef int (*portrait_capacity_fn)(void *ctx, double traffic, int64_t ts, double target_fraction,
                                    int min_n, int max_n);

typedef struct portrait_engine portrait_engine;

/* Creates the engine for a validated spec (copied). 0, -ENOMEM. */
int portrait_engine_new(portrait_engine **out, const workload_spec *spec);
void portrait_engine_free(portrait_engine *e);

/* Sets the capacity model used by predictive providers without capacityPerReplica. The engine
 * does not own ctx. A NULL fn removes it (predictive then falls back to reactive). */
void portrait_set_capacity(portrait_engine *e, portrait_capacity_fn fn, void *ctx,
                           int64_t fitted_at, int gates_passed, const char *gate_reason);

/* Uses a fitted capacity model (capacity.h; not owned, must outlive its use) through
 * cap_solve_replicas; the report's quality gates decide whether it may drive scaling. */
struct cap_model;
struct cap_report;
void portrait_set_capacity_model(portrait_engine *e, const struct cap_model *m,
                                 const struct cap_report *rep, int64_t fitted_at);

/* Is a (re)training of the predictive models due at now (never tried, retrainSeconds passed
 * since the last attempt, or 5 minutes since a failed one)? */
int portrait_training_due(const portrait_engine *e, int64_t now);
/* Fits every predictive provider's forecaster on history (data strictly before `now`). A
 * model that fails to fit is recorded as the reason of its provider's fallback. Returns 0
 * when all fitted, else the first -errno (err says which provider and why). */
int portrait_train(portrait_engine *e, const fc_series *history, int64_t now, char *err,
                   size_t errlen);

/* The same in two halves, so that the fit can run on a worker thread while the engine keeps
 * serving the loop: portrait_fit touches no engine (thread-safe) and fits provider i of spec
 * into *out (0, or -errno with err; less than a day of history is refused: -ENODATA, the
 * first quality gate); portrait_install (loop thread) hands the result to the
 * engine, which takes ownership of f (NULL with a reason when the fit failed: an older model
 * stays until it goes stale). */
int portrait_fit(const workload_spec *spec, int provider, const fc_series *history,
                 forecaster **out, char *err, size_t errlen);
void portrait_install(portrait_engine *e, int provider, forecaster *f, int64_t now,
                      const char *error);

/* Runs every provider for the observation and merges them into *out. Returns 0 or -errno. */
int portrait_update(portrait_engine *e, const portrait_obs *obs, portrait *out);

/* The forecaster provider i runs (fc_name, e.g. "auto:holt-winters"), NULL when it has none. */
const char *portrait_model_name(const portrait_engine *e, int provider);
/* What provider i's latest forecast used (fc_name_last: auto's online choice, which may differ
 * from the fit's), NULL when it has no forecaster. Read on the thread that updates e. */
const char *portrait_model_last(const portrait_engine *e, int provider);

/* Why predictive provider i fell back to the reactive recommendation in the last update, or
 * NULL when its forecast drove the portrait (or it is not predictive). */
const char *portrait_fallback_reason(const portrait_engine *e, int provider);

/* The last forecast of predictive provider i, for /metrics and the web page: n steps starting
 * at t0 (unix s) every step seconds; median[k] is the point forecast and upper[k] the forecast
 * at the provider's quantile (the band is median..upper). live_wape is the decayed weighted
 * absolute error of past median forecasts against what happened (NaN before any was scored),
 * over `scored` points. The arrays are the engine's: valid until its next update. Returns 0,
 * or -ENOENT when the provider is not predictive or has no forecast yet. */
typedef struct portrait_forecast {
    int64_t t0, step;
    int n;
    const double *median, *upper;
    double quantile;
    double live_wape;
    double scored;
} portrait_forecast;
int portrait_forecast_get(const portrait_engine *e, int provider, portrait_forecast *out);

/* The live guard's score of predictive provider i (the backtest's metric, online): the mean
 * absolute error of its median forecasts over about the last day of actual values, divided by
 * that of the one-day seasonal naive forecast (the value a day before) at the same points;
 * each point's weight halves every 12 hours... see PORTRAIT_GUARD_* in portrait.c. Returns
 * the score (> 1: worse than naive; the provider then falls back to reactive, with that
 * reason, until the score is back at or below 1), or NaN while fewer than the guard's minimum
 * of points were scored (or the provider is not predictive); *points (may be NULL) gets the
 * points scored since the model was installed. */
double portrait_live_mase(const portrait_engine *e, int provider, double *points);
/* The start of the fallback reason the live guard gives (portrait_fallback_reason). */
#define PORTRAIT_GUARD_REASON "live guard:"

/* The reactive provider's recommendation of the last update (-1 when it had no metrics). */
int portrait_reactive_last(const portrait_engine *e);

/* Tells the reactive provider that the workload was scaled from -> to at now (rate policies). */
void portrait_record_scale(portrait_engine *e, int64_t now, int from, int to);

/* Replicas for traffic with a fixed per-replica capacity at target percent (ceil, >= 0). */
int portrait_replicas_for(double traffic, double capacity_per_replica, double target_percent);

#endif
