/* anomaly.h: online anomaly detection for one regular series. Each point is judged with the data
 * before and at it, never after: anom_step() takes the next value and returns its score at once.
 *
 * How a point is scored (details in anomaly.c and README.md):
 *  1. Seven forecasts of it from its past: the previous value, the recent level, the value a day
 *     and a week ago moved by the change in level, the median of the values 1-3 days and 1-3
 *     weeks ago, and (for the mean of the day ending at the point) that mean 1-3 weeks earlier.
 *     Seasonal forecasts are tested only while they know a pattern.
 *  2. Each forecast's surprise (absolute error over its recent error level) and its means over
 *     6, 36 and a day of points are compared with their own history: a peaks-over-threshold
 *     tail for the point and short statistics, a robust normal law for the day-scale ones.
 *  3. The score in [0,1] is -log10 of the smallest tail probability (Bonferroni-corrected for
 *     the number of tests) over ANOM_LOG_RANGE, clamped: 0.4 = one in 10^4. A point is an
 *     anomaly when its score reaches the threshold, the learning period is over, and no anomaly
 *     was flagged in the preceding refractory period (one flag per episode, like one alert).
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
