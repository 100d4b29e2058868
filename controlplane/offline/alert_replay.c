/* alert_replay.c: a predict rule replayed over a recorded series (see alert_replay.h). */
#include "offline/alert_replay.h"

#include "models/alerting.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void replay_result_fini(replay_result *r) {
    if (!r) return;
    free(r->ep);
    memset(r, 0, sizeof *r);
}

static int push(replay_result *r, const replay_episode *e) {
    if (r->n == r->cap) {
        size_t cap = r->cap ? r->cap * 2 : 16;
        replay_episode *v = realloc(r->ep, cap * sizeof *v);
        if (!v) return -ENOMEM;
        r->ep = v;
        r->cap = cap;
    }
    r->ep[r->n++] = *e;
    return 0;
}

int alert_replay(const alertrule_spec *spec, const double *y, size_t n, int64_t t0, int64_t from,
                 replay_result *out, char *err, size_t errlen) {
    memset(out, 0, sizeof *out);
    int64_t step = spec->step_s;
    if (spec->type != AR_PREDICT) {
        snprintf(err, errlen, "only predict rules can be replayed");
        return -EINVAL;
    }
    if (n < 2 || step <= 0) {
        snprintf(err, errlen, "the series needs at least 2 points");
        return -EINVAL;
    }
    size_t hist = (size_t)(spec->history_s / step), every = (size_t)(spec->interval_s / step);
    if (every < 1) every = 1;
    alert_predict_cfg cfg = {spec->model,     step,           spec->horizon_s, spec->retrain_s,
                             spec->threshold, spec->quantile, spec->below,     /* bands = */ 0};
    alert_predict_model m = {0};
    alert_state st = {0};
    replay_episode cur = {0};
    int rc = 0;
    /* evaluation k sees the points up to and including index k: its time is t_k + step */
    size_t k0 = from > t0 ? (size_t)((from - t0 + step - 1) / step) : 1;
    for (size_t k = k0; k < n; k += every) {
        int64_t now = t0 + (int64_t)(k + 1) * step;
        size_t lo = k + 1 > hist ? k + 1 - hist : 0;
        alert_predict_out o;
        int64_t fit_before = m.fit_at;
        rc = alert_predict(&m, &cfg, y + lo, k + 1 - lo, t0 + (int64_t)lo * step, now, &o);
        if (rc < 0) break;
        if (m.fit_at != fit_before) out->fits++;
        if (!out->evals) out->first_eval = now;
        out->evals++;
        out->last_eval = now;
        if (o.error[0]) snprintf(out->error, sizeof out->error, "%s", o.error);
        if (!o.ok) { /* no verdict: the states stand, as live after a failed evaluation */
            out->no_verdict++;
            continue;
        }
        alert_change ch = alert_step(&st, o.active, now, spec->for_s, spec->keep_firing_s);
        if (ch == ALERT_FIRED) {
            cur = (replay_episode){st.active_at, now, 0, o.crossing, o.value};
        } else if (ch == ALERT_RESOLVED) {
            cur.resolved_at = now;
            if ((rc = push(out, &cur)) < 0) break;
        }
    }
    if (rc == 0 && st.phase == ALERT_FIRING) rc = push(out, &cur);
    snprintf(out->model, sizeof out->model, "%s", m.name);
    alert_predict_model_fini(&m);
    if (rc < 0) {
        replay_result_fini(out);
        snprintf(err, errlen, "out of memory");
    }
    return rc;
}
