/* anomaly.h: online anomaly detection for one regular series. Each point is judged with the data
 * before and at it, never after: anom_step() takes the next value and returns its score at once.
 *
 * How a point is scored (details in anomaly.c):
 *  1. Three forecasts of the point from its past: the previous value, the value one day ago and
 *     the value one week ago (the seasonal ones only when the step divides a day and enough
 *     history is held). The forecaster whose recent absolute error is smallest is trusted.
 *  2. Its surprise is the absolute error over that recent error level; the surprise and its
 *     short running mean (a sustained change) are each compared with their own history (a
 *     Gaussian fitted to their logs over a trailing window), giving tail probabilities.
 *  3. The score in [0,1] is -log10 of the smaller tail probability over ANOM_LOG_RANGE,
 *     clamped: 0.5 means a one-in-10^5 event for this series. A point is an anomaly when its
 *     score reaches the threshold, the learning period is over, and no anomaly was flagged in
 *     the preceding refractory period (one flag per episode, like one alert).
 * Memory and time per point are bounded by the ring sizes fixed at anom_new().
 * Pure: no threads, no I/O, no clock. */
#ifndef TIDE_MODELS_ANOMALY_H
#define TIDE_MODELS_ANOMALY_H

#include <stddef.h>
#include <stdint.h>

#define ANOM_DEFAULT_THRESHOLD 0.4
#define ANOM_LOG_RANGE 10.0 /* score 1.0 = tail probability 1e-10 or less */

typedef struct anom_opts {
    int64_t step;      /* seconds between points (> 0) */
    double threshold;  /* score at or above which a point is an anomaly; 0 = default */
    int64_t learn_s;   /* learning period in seconds before the first flag; 0 = default */
    int64_t refract_s; /* seconds after a flag during which no new flag is raised; 0 = default */
} anom_opts;

typedef struct anom_result {
    double score;    /* in [0,1]; 0 while learning or for a missing value */
    int anomaly;     /* 1 when this point is flagged */
    double expected; /* the trusted forecast of this point (NaN when none yet) */
} anom_result;

typedef struct anom_detector anom_detector;

/* Creates a detector. Returns 0, -EINVAL (err says which option is wrong) or -ENOMEM. */
int anom_new(anom_detector **out, const anom_opts *opts, char *err, size_t errlen);
/* Scores the next value (NaN = missing: scored 0, not learned from). */
anom_result anom_step(anom_detector *d, double x);
/* Points seen so far. */
size_t anom_count(const anom_detector *d);
void anom_free(anom_detector *d);

#endif
