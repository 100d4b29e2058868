/* alerting.h: the pure parts of alert rules: where a forecast first crosses a threshold, and
 * the pending/firing/resolved state of one alert from one evaluation to the next, with
 * Prometheus's `for` and `keep_firing_for` meaning. Time is passed in (unix seconds). */
#ifndef TIDE_MODELS_ALERTING_H
#define TIDE_MODELS_ALERTING_H

#include <stdint.h>

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

#endif
