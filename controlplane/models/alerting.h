/* alerting.h: the pure parts of alert rules: where a forecast first crosses a threshold, and
 * the pending/firing/resolved state of one alert from one evaluation to the next, with
 * Prometheus's `for` and `keep_firing_for` meaning. Time is passed in (unix seconds). */
#ifndef TIDE_MODELS_ALERTING_H
#define TIDE_MODELS_ALERTING_H

#include <stddef.h>
#include <stdint.h>

#include "models/forecast.h"

/* The index of the first f[i] beyond threshold (above: f[i] > threshold; below: f[i] <
 * threshold), NaN values skipped; -1 when none is. */
int alert_crossing(const double *f, int n, double threshold, int below);

typedef enum alert_phase { ALERT_INACTIVE = 0, ALERT_PENDING, ALERT_FIRING } alert_phase;

typedef enum alert_change {
    ALERT_NONE = 0, /* nothing to tell */
    ALERT_PENDED,   /* became active; waits for `for` */
    ALERT_FIRED,    /* active for `for`: fires now */
    ALERT_DROPPED,  /* was pending, no longer active: never fired */
    ALERT_RESOLVED, /* was firing; inactive for `keep_firing_for`: resolved now */
} alert_change;

typedef struct alert_state {
    alert_phase phase;
    int64_t active_at;   /* when it became active (pending or firing since) */
    int64_t fired_at;    /* when it fired, 0 never */
    int64_t last_active; /* last evaluation that found it active */
    int64_t resolved_at; /* when it last resolved, 0 never */
} alert_state;

/* One evaluation at now: active says whether the condition holds. for_s: active this long
 * before firing (0: fires at once). keep_s: a firing alert stays firing this long after the
 * condition stops holding (0: resolves at the first evaluation without it). */
alert_change alert_step(alert_state *s, int active, int64_t now, int64_t for_s, int64_t keep_s);

const char *alert_phase_name(alert_phase p);

/* ---- one evaluation of a predict rule (the live rule and `tidectl alert-replay` alike) ---- */

#define ALERT_NBANDS 5
extern const double alert_band_q[ALERT_NBANDS]; /* 0.01 0.1 0.5 0.9 0.99 */

typedef struct alert_predict_cfg {
    const char *model; /* forecast.h model name */
    int64_t step;      /* seconds between points */
    int64_t horizon_s; /* look this far ahead */
    int64_t retrain_s; /* refit when the model is older than this */
    double threshold;
    double quantile; /* the forecast quantile tested */
    int below;       /* 1: "will fall below", 0: "will rise above" */
    int bands;       /* also forecast the next step at alert_band_q (tide_forecast) */
} alert_predict_cfg;

/* The fitted model a predict rule keeps between evaluations (zero-initialise). */
typedef struct alert_predict_model {
    forecaster *f;
    int64_t fit_at;
    char name[64]; /* fc_name of the fitted model */
} alert_predict_model;

typedef struct alert_predict_out {
    int ok;           /* 0: no verdict (no data, fit or forecast failed: error says why) */
    int active;       /* the forecast crosses the threshold within the horizon */
    double value;     /* the forecast at the crossing, else its extreme over the horizon */
    int64_t crossing; /* when it crosses (unix s), 0 none */
    int64_t last_t;   /* the newest point used */
    double band[ALERT_NBANDS];
    int64_t band_t; /* the time the bands are for, 0 none */
    char error[200];
} alert_predict_out;

/* Judges y[0..n-1] (the value at t0 + i*step; NaN missing; trailing NaNs ignored) at time now:
 * refits m when it has no model or its model is retrain_s old (a failed refit keeps the old
 * model and says so in out->error), forecasts horizon_s ahead at cfg->quantile and finds the
 * first crossing. Returns 0 (out filled, out->ok says whether there is a verdict) or -ENOMEM. */
int alert_predict(alert_predict_model *m, const alert_predict_cfg *cfg, const double *y, size_t n,
                  int64_t t0, int64_t now, alert_predict_out *out);
void alert_predict_model_fini(alert_predict_model *m);

#endif
