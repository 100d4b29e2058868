/* alerting.c: threshold crossings and the alert state machine (see alerting.h). */
#include "models/alerting.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const double alert_band_q[ALERT_NBANDS] = {0.01, 0.1, 0.5, 0.9, 0.99};

int alert_crossing(const double *f, int n, double threshold, int below) {
    for (int i = 0; i < n; i++) {
        if (isnan(f[i])) continue;
        if (below ? f[i] < threshold : f[i] > threshold) return i;
    }
    return -1;
}

alert_change alert_step(alert_state *s, int active, int64_t now, int64_t for_s, int64_t keep_s) {
    if (active) {
        s->last_active = now;
        switch (s->phase) {
        case ALERT_INACTIVE:
            s->active_at = now;
            if (for_s <= 0) {
                s->phase = ALERT_FIRING;
                s->fired_at = now;
                return ALERT_FIRED;
            }
            s->phase = ALERT_PENDING;
            return ALERT_PENDED;
        case ALERT_PENDING:
            if (now - s->active_at >= for_s) {
                s->phase = ALERT_FIRING;
                s->fired_at = now;
                return ALERT_FIRED;
            }
            return ALERT_NONE;
        case ALERT_FIRING:
            return ALERT_NONE;
        }
        return ALERT_NONE;
    }
    switch (s->phase) {
    case ALERT_INACTIVE:
        return ALERT_NONE;
    case ALERT_PENDING:
        s->phase = ALERT_INACTIVE;
        return ALERT_DROPPED;
    case ALERT_FIRING:
        if (now - s->last_active < keep_s) return ALERT_NONE;
        s->phase = ALERT_INACTIVE;
        s->resolved_at = now;
        return ALERT_RESOLVED;
    }
    return ALERT_NONE;
}

const char *alert_phase_name(alert_phase p) {
    return p == ALERT_FIRING ? "firing" : p == ALERT_PENDING ? "pending" : "inactive";
}

void alert_predict_model_fini(alert_predict_model *m) {
    fc_free(m->f);
    memset(m, 0, sizeof *m);
}

int alert_predict(alert_predict_model *m, const alert_predict_cfg *cfg, const double *y, size_t n,
                  int64_t t0, int64_t now, alert_predict_out *out) {
    memset(out, 0, sizeof *out);
    out->value = NAN;
    for (int k = 0; k < ALERT_NBANDS; k++)
        out->band[k] = NAN;
    int64_t step = cfg->step;
    size_t last = n;
    while (last > 0 && isnan(y[last - 1]))
        last--;
    if (last == 0) {
        snprintf(out->error, sizeof out->error, "no data in the history read");
        return 0;
    }
    out->last_t = t0 + (int64_t)(last - 1) * step;
    fc_series hist = {y, last, t0, step, 0};
    int H = (int)(cfg->horizon_s / step);
    if (H < 1) H = 1;
    char err[200] = "";
    if (!m->f || now - m->fit_at >= cfg->retrain_s) {
        fc_options opt = {.horizon = H, .threads = 1, .max_fit_seconds = 600};
        forecaster *f = NULL;
        int rc = fc_new(&f, cfg->model, &opt, err, sizeof err);
        if (rc == 0) rc = fc_fit(f, &hist, err, sizeof err);
        if (rc == 0) {
            fc_free(m->f);
            m->f = f;
            m->fit_at = now;
            snprintf(m->name, sizeof m->name, "%s", fc_name(f));
        } else {
            fc_free(f);
            if (rc == -ENOMEM) return rc;
            if (!m->f) {
                snprintf(out->error, sizeof out->error, "fit: %.180s", err);
                return 0;
            }
            snprintf(out->error, sizeof out->error, "refit failed (%.140s); the last model is used",
                     err);
        }
    }
    double *f = malloc((size_t)H * sizeof *f);
    if (!f) return -ENOMEM;
    if (fc_predict(m->f, &hist, H, cfg->quantile, f, err, sizeof err) < 0) {
        snprintf(out->error, sizeof out->error, "forecast: %.180s", err);
        free(f);
        return 0;
    }
    out->ok = 1;
    int i = alert_crossing(f, H, cfg->threshold, cfg->below);
    out->active = i >= 0;
    if (i >= 0) {
        out->value = f[i];
        out->crossing = out->last_t + (int64_t)(i + 1) * step;
    } else { /* the nearest the forecast comes to the threshold */
        for (int k = 0; k < H; k++)
            if (!isnan(f[k]) &&
                (isnan(out->value) || (cfg->below ? f[k] < out->value : f[k] > out->value)))
                out->value = f[k];
    }
    free(f);
    if (cfg->bands) {
        out->band_t = out->last_t + step;
        for (int k = 0; k < ALERT_NBANDS; k++) {
            double v = NAN;
            if (fc_predict(m->f, &hist, 1, alert_band_q[k], &v, err, sizeof err) < 0) v = NAN;
            out->band[k] = v;
        }
    }
    return 0;
}
