/* alert_replay.h: runs a predict alert rule over a recorded series, evaluation by evaluation,
 * exactly as the live rule does (models/alerting.h: the same fit, forecast, crossing and
 * for/keepFiringFor states), for `tidectl alert-replay` and the lead-time benchmark.
 *
 * At every spec.interval of data time from `from` on, the rule sees the spec.history before
 * and at that time (never after), the model is refit every spec.retrain, and each firing
 * episode is recorded with when it became active, fired and resolved and the crossing the
 * forecast predicted when it fired. */
#ifndef TIDE_ALERT_REPLAY_H
#define TIDE_ALERT_REPLAY_H

#include "spec/alertrule.h"

#include <stddef.h>
#include <stdint.h>

typedef struct replay_episode {
    int64_t active_at;   /* first evaluation that found the crossing */
    int64_t fired_at;    /* when it fired (after spec.for) */
    int64_t resolved_at; /* when it resolved, 0 still firing at the end of the data */
    int64_t crossing;    /* the crossing predicted when it fired */
    double value;        /* the forecast at that crossing */
} replay_episode;

typedef struct replay_result {
    replay_episode *ep;
    size_t n, cap;
    size_t evals;      /* evaluations made */
    size_t no_verdict; /* evaluations without a verdict (fit or forecast failed) */
    size_t fits;
    int64_t first_eval, last_eval;
    char model[64];  /* the last fitted model's name */
    char error[200]; /* the last evaluation problem, "" none */
} replay_result;

/* Replays spec (type predict) over y[0..n-1] (y[i] at t0 + i*step, step == spec->step_s) with
 * the first evaluation at `from` (unix s; earlier data is history only). 0 with *out filled
 * (release with replay_result_fini), -EINVAL with err, or -ENOMEM. */
int alert_replay(const alertrule_spec *spec, const double *y, size_t n, int64_t t0, int64_t from,
                 replay_result *out, char *err, size_t errlen);
void replay_result_fini(replay_result *r);

#endif
