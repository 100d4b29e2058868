/* portrait.c: portrait providers (static, cron, reactive, predictive) and their merge. */
#include "scaling/portrait.h"

#include "models/capacity.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define QUALITY_MAX_WAPE 0.5  /* the median forecast may miss by at most half, on average */
#define QUALITY_MIN_POINTS 60 /* points scored before the gate may close */
#define QUALITY_DECAY 0.999   /* per scored point: a memory of roughly a day at 1 minute */
#define DEFAULT_STEP 60
#define RETRY_FAILED_FIT_S 300 /* a failed fit is tried again after this */
#define MIN_HISTORY_S 86400    /* quality gate: a model sees at least one daily cycle */
/* The live guard (portrait_live_mase): the median forecasts of the last day are scored with
 * the backtest's metric, MASE against the one-day seasonal naive forecast at the same points;
 * above 1 (worse than naive) the provider falls back to reactive until it is back at 1 or
 * below. The score waits for a quarter of the day to be scored (a bad hour alone does not
 * decide). The window keeps one slot per step of the day (at most GUARD_MAX_SLOTS). */
#define GUARD_WINDOW_S 86400
#define GUARD_MIN_SHARE 0.25
#define GUARD_MAX_SLOTS 86400

typedef struct pred_state {
    forecaster *fc;
    int64_t trained_at;   /* 0 = never */
    int64_t attempted_at; /* last fit attempt, 0 = never */
    char fit_error[160];
    int64_t forecast_at; /* when the last forecast was made (0 = none) */
    int64_t fc_t0;       /* time of its first value */
    int64_t fc_step;
    int fc_n;
    double *fc_q;       /* forecast at the provider's quantile */
    double *fc_med;     /* median forecast, scored against what happened */
    int64_t scored_to;  /* last time scored */
    char fallback[200]; /* why the last update fell back to reactive ("" = it did not) */
    double err_sum, act_sum, points;
    /* the live guard's window: per slot (time / step mod g_cap) the time scored (0 = empty),
     * the median forecast's and the one-day seasonal naive forecast's absolute errors */
    int64_t *g_t, g_step;
    double *g_fc, *g_nv;
    size_t g_cap;
    double g_points; /* points scored since the window started */
} pred_state;

struct portrait_engine {
    workload_spec spec;
    hpa_state hpa;
    int reactive_last;
    pred_state pred[WL_MAX_PROVIDERS];
    int *cron_buf[WL_MAX_PROVIDERS]; /* cron values on the current grid, per provider */
    int64_t cron_t0[WL_MAX_PROVIDERS];
    int cron_n[WL_MAX_PROVIDERS];
    wl_cron_state cron_state[WL_MAX_PROVIDERS];
    portrait_capacity_fn cap_fn;
    void *cap_ctx;
    int64_t cap_fitted_at;
    int cap_gates_passed;
    char cap_reason[256];
};

int portrait_replicas_for(double traffic, double capacity_per_replica, double target_percent) {
    if (!(traffic > 0) || !(capacity_per_replica > 0) || !(target_percent > 0)) return 0;
    double r = traffic / (capacity_per_replica * target_percent / 100.0);
    if (r > 1e6) return 1000000;
    return (int)ceil(r - 1e-9);
}

int portrait_engine_new(portrait_engine **out, const workload_spec *spec) {
    portrait_engine *e = calloc(1, sizeof *e);
    if (!e) return -ENOMEM;
    e->spec = *spec;
    hpa_state_init(&e->hpa, spec);
    e->reactive_last = -1;
    *out = e;
    return 0;
}

void portrait_engine_free(portrait_engine *e) {
    if (!e) return;
    for (int i = 0; i < WL_MAX_PROVIDERS; i++) {
        fc_free(e->pred[i].fc);
        free(e->pred[i].fc_q);
        free(e->pred[i].fc_med);
        free(e->pred[i].g_t);
        free(e->pred[i].g_fc);
        free(e->pred[i].g_nv);
    }
    for (int i = 0; i < WL_MAX_PROVIDERS; i++)
        free(e->cron_buf[i]);
    free(e);
}

void portrait_set_capacity(portrait_engine *e, portrait_capacity_fn fn, void *ctx,
                           int64_t fitted_at, int gates_passed, const char *gate_reason) {
    e->cap_fn = fn;
    e->cap_ctx = ctx;
    e->cap_fitted_at = fitted_at;
    e->cap_gates_passed = gates_passed;
    snprintf(e->cap_reason, sizeof e->cap_reason, "%s", gate_reason ? gate_reason : "");
}

static int cap_model_solve(void *ctx, double traffic, int64_t ts, double target, int min_n,
                           int max_n) {
    return cap_solve_replicas((const cap_model *)ctx, traffic, ts, target, min_n, max_n);
}

void portrait_set_capacity_model(portrait_engine *e, const cap_model *m, const cap_report *rep,
                                 int64_t fitted_at) {
    if (!m) {
        portrait_set_capacity(e, NULL, NULL, 0, 0, NULL);
        return;
    }
    portrait_set_capacity(e, cap_model_solve, (void *)m, fitted_at, rep ? rep->passed : 1,
                          rep ? rep->reason : "");
}

int portrait_training_due(const portrait_engine *e, int64_t now) {
    for (int i = 0; i < e->spec.n_providers; i++) {
        const wl_provider *p = &e->spec.providers[i];
        if (p->type != WL_PROV_PREDICTIVE) continue;
        const pred_state *ps = &e->pred[i];
        if (!ps->attempted_at || now - ps->attempted_at >= p->retrain_seconds) return 1;
        if (ps->fit_error[0] && now - ps->attempted_at >= RETRY_FAILED_FIT_S) return 1;
    }
    return 0;
}

int portrait_fit(const workload_spec *spec, int i, const fc_series *history, forecaster **out,
                 char *err, size_t errlen) {
    const wl_provider *p = &spec->providers[i];
    *out = NULL;
    int64_t step = history->step > 0 ? history->step : DEFAULT_STEP;
    fc_options opt = {.horizon = (int)((p->horizon_seconds + step - 1) / step), .seed = 1};
    size_t have = 0; /* values present (not NaN) */
    for (size_t k = 0; k < history->n; k++)
        have += !isnan(history->y[k]);
    if ((int64_t)have * step < MIN_HISTORY_S) {
        snprintf(err, errlen,
                 "quality gate: %.0f minutes of traffic history, a model needs at least %d",
                 (double)have * step / 60.0, MIN_HISTORY_S / 60);
        return -ENODATA;
    }
    forecaster *f = NULL;
    char why[160] = "";
    int rc = fc_new(&f, p->model, &opt, why, sizeof why);
    if (rc == 0) rc = fc_fit(f, history, why, sizeof why);
    if (rc < 0) {
        fc_free(f);
        snprintf(err, errlen, "model %.40s: %.110s", p->model, why);
        return rc;
    }
    *out = f;
    return 0;
}

void portrait_install(portrait_engine *e, int i, forecaster *f, int64_t now, const char *error) {
    pred_state *ps = &e->pred[i];
    ps->attempted_at = now;
    if (!f) {
        snprintf(ps->fit_error, sizeof ps->fit_error, "%s", error ? error : "fit failed");
        return;
    }
    fc_free(ps->fc);
    ps->fc = f;
    ps->trained_at = now;
    ps->fit_error[0] = 0;
    ps->forecast_at = 0;
    ps->err_sum = ps->act_sum = ps->points = 0;
}

int portrait_train(portrait_engine *e, const fc_series *history, int64_t now, char *err,
                   size_t errlen) {
    int first = 0;
    for (int i = 0; i < e->spec.n_providers; i++) {
        if (e->spec.providers[i].type != WL_PROV_PREDICTIVE) continue;
        forecaster *f = NULL;
        char why[160] = "";
        int rc = portrait_fit(&e->spec, i, history, &f, why, sizeof why);
        portrait_install(e, i, f, now, why);
        if (rc < 0 && !first) {
            first = rc;
            if (err)
                snprintf(err, errlen, "providers[%d] (%s): %s", i, e->spec.providers[i].name, why);
        }
    }
    return first;
}

int portrait_reactive_last(const portrait_engine *e) {
    return e->reactive_last;
}

const char *portrait_fallback_reason(const portrait_engine *e, int i) {
    if (i < 0 || i >= e->spec.n_providers || e->spec.providers[i].type != WL_PROV_PREDICTIVE)
        return NULL;
    return e->pred[i].fallback[0] ? e->pred[i].fallback : NULL;
}

int portrait_forecast_get(const portrait_engine *e, int i, portrait_forecast *out) {
    if (i < 0 || i >= e->spec.n_providers || e->spec.providers[i].type != WL_PROV_PREDICTIVE)
        return -ENOENT;
    const pred_state *ps = &e->pred[i];
    if (ps->fc_n <= 0 || !ps->fc_q || !ps->fc_med) return -ENOENT;
    *out = (portrait_forecast){ps->fc_t0,
                               ps->fc_step,
                               ps->fc_n,
                               ps->fc_med,
                               ps->fc_q,
                               e->spec.providers[i].quantile,
                               ps->act_sum > 0 ? ps->err_sum / ps->act_sum : NAN,
                               ps->points};
    return 0;
}

const char *portrait_model_name(const portrait_engine *e, int i) {
    if (i < 0 || i >= WL_MAX_PROVIDERS || !e->pred[i].fc) return NULL;
    return fc_name(e->pred[i].fc);
}

const char *portrait_model_last(const portrait_engine *e, int i) {
    if (i < 0 || i >= WL_MAX_PROVIDERS || !e->pred[i].fc) return NULL;
    return fc_name_last(e->pred[i].fc);
}

void portrait_record_scale(portrait_engine *e, int64_t now, int from, int to) {
    hpa_record_scale(&e->hpa, now, from, to);
}

/* The live guard's window for series step `step`: (re)allocated empty when the step changes.
 * 0, or -ENOMEM (the guard then scores nothing). */
static int guard_window(pred_state *ps, int64_t step) {
    if (ps->g_t && ps->g_step == step) return 0;
    free(ps->g_t);
    free(ps->g_fc);
    free(ps->g_nv);
    ps->g_t = NULL;
    ps->g_fc = ps->g_nv = NULL;
    ps->g_points = 0;
    size_t cap = (size_t)(GUARD_WINDOW_S / step);
    if (cap < 1) cap = 1;
    if (cap > GUARD_MAX_SLOTS) cap = GUARD_MAX_SLOTS;
    ps->g_t = calloc(cap, sizeof *ps->g_t);
    ps->g_fc = calloc(cap, sizeof *ps->g_fc);
    ps->g_nv = calloc(cap, sizeof *ps->g_nv);
    if (!ps->g_t || !ps->g_fc || !ps->g_nv) {
        free(ps->g_t);
        free(ps->g_fc);
        free(ps->g_nv);
        ps->g_t = NULL;
        ps->g_fc = ps->g_nv = NULL;
        return -ENOMEM;
    }
    ps->g_cap = cap;
    ps->g_step = step;
    return 0;
}

/* MASE of the window's points scored after `now - GUARD_WINDOW_S`; NaN below the minimum. */
static double guard_score(const pred_state *ps, int64_t now) {
    if (!ps->g_t || ps->g_step <= 0) return NAN;
    double fe = 0, ne = 0;
    size_t cnt = 0;
    for (size_t i = 0; i < ps->g_cap; i++) {
        if (!ps->g_t[i] || ps->g_t[i] <= now - GUARD_WINDOW_S) continue;
        fe += ps->g_fc[i];
        ne += ps->g_nv[i];
        cnt++;
    }
    double need = GUARD_MIN_SHARE * (double)GUARD_WINDOW_S / (double)ps->g_step;
    if (need > GUARD_MIN_SHARE * (double)ps->g_cap) need = GUARD_MIN_SHARE * (double)ps->g_cap;
    if ((double)cnt < need || !(ne > 0)) return NAN;
    return fe / ne;
}

/* Scores the median forecast against the actual values that completed since the last time. */
static void pred_score(pred_state *ps, const fc_series *tr) {
    if (!ps->fc_med || ps->fc_n == 0 || ps->fc_step <= 0 || !tr || tr->n == 0) return;
    int64_t last_t = tr->t0 + (int64_t)(tr->n - 1) * tr->step;
    for (int64_t t = ps->scored_to + ps->fc_step; t <= last_t; t += ps->fc_step) {
        int64_t k = (t - ps->fc_t0) / ps->fc_step;
        if (t < ps->fc_t0 || k >= ps->fc_n) {
            if (t < ps->fc_t0) continue;
            break;
        }
        size_t idx = (size_t)((t - tr->t0) / tr->step);
        double y = tr->y[idx], f = ps->fc_med[k];
        if (isnan(y) || isnan(f)) continue;
        ps->err_sum = ps->err_sum * QUALITY_DECAY + fabs(f - y);
        ps->act_sum = ps->act_sum * QUALITY_DECAY + fabs(y);
        ps->points += 1;
        ps->scored_to = t;
        /* the live guard: the same point for the one-day seasonal naive forecast */
        size_t lag = (size_t)(GUARD_WINDOW_S / tr->step);
        if (lag < 1 || idx < lag || isnan(tr->y[idx - lag])) continue;
        if (guard_window(ps, ps->fc_step) != 0) continue;
        size_t slot = (size_t)((uint64_t)(t / ps->g_step) % ps->g_cap);
        ps->g_t[slot] = t;
        ps->g_fc[slot] = fabs(f - y);
        ps->g_nv[slot] = fabs(tr->y[idx - lag] - y);
        ps->g_points += 1;
    }
}

double portrait_live_mase(const portrait_engine *e, int i, double *points) {
    if (points) *points = 0;
    if (i < 0 || i >= e->spec.n_providers || e->spec.providers[i].type != WL_PROV_PREDICTIVE)
        return NAN;
    const pred_state *ps = &e->pred[i];
    if (points) *points = ps->g_points;
    return guard_score(ps, ps->scored_to);
}

static int pred_forecast(portrait_engine *e, int i, const portrait_obs *obs, char *why,
                         size_t whylen) {
    const wl_provider *p = &e->spec.providers[i];
    pred_state *ps = &e->pred[i];
    const fc_series *tr = obs->traffic;
    int64_t step = tr->step;
    int h = (int)((p->horizon_seconds + step - 1) / step);
    if (h > PORTRAIT_MAX_STEPS) h = PORTRAIT_MAX_STEPS;
    if (ps->fc_n != h) {
        free(ps->fc_q);
        free(ps->fc_med);
        ps->fc_q = malloc((size_t)h * sizeof(double));
        ps->fc_med = malloc((size_t)h * sizeof(double));
        ps->fc_n = 0;
        if (!ps->fc_q || !ps->fc_med) {
            snprintf(why, whylen, "out of memory");
            return -ENOMEM;
        }
    }
    pred_score(ps, tr);
    int rc = fc_predict(ps->fc, tr, h, p->quantile, ps->fc_q, why, whylen);
    if (rc == 0) rc = fc_predict(ps->fc, tr, h, 0.5, ps->fc_med, why, whylen);
    if (rc < 0) {
        ps->fc_n = 0;
        return rc;
    }
    for (int k = 0; k < h; k++)
        if (!isfinite(ps->fc_q[k]) || !isfinite(ps->fc_med[k])) {
            snprintf(why, whylen, "forecast step %d is not finite", k);
            ps->fc_n = 0;
            return -EDOM;
        }
    ps->fc_n = h;
    ps->fc_step = step;
    ps->fc_t0 = tr->t0 + (int64_t)tr->n * step;
    if (!ps->forecast_at) ps->scored_to = ps->fc_t0 - step;
    ps->forecast_at = obs->now;
    return 0;
}

/* One provider's values on the grid: rep/need = -1 where it has none. */
typedef struct prov_out {
    int rep[PORTRAIT_MAX_STEPS], need[PORTRAIT_MAX_STEPS];
    double traffic[PORTRAIT_MAX_STEPS];
} prov_out;

static int reactive_value(portrait_engine *e, const portrait_obs *obs, char *why, size_t whylen) {
    if (!obs->metrics || obs->n_metrics == 0) {
        snprintf(why, whylen, "no metrics");
        return -1;
    }
    int desired;
    char r1[200];
    if (hpa_desired(obs->current, obs->metrics, obs->n_metrics, e->spec.tolerance, &desired, NULL,
                    r1, sizeof r1) < 0) {
        snprintf(why, whylen, "%s", r1);
        return -1;
    }
    hpa_decision d;
    hpa_normalize(&e->hpa, obs->now, obs->current, desired, &d);
    if (d.desired != obs->current) hpa_record_scale(&e->hpa, obs->now, obs->current, d.desired);
    snprintf(why, whylen, "%s", d.reason);
    return d.desired;
}

/* Whether the ready pods of the utilization metric run at 100% of their request or more. */
static int pods_saturated(const portrait_obs *obs) {
    for (size_t m = 0; m < obs->n_metrics; m++) {
        const hpa_metric *hm = &obs->metrics[m];
        if (hm->type != HPA_UTILIZATION) continue;
        double used = 0, req = 0;
        for (size_t k = 0; k < hm->n; k++) {
            const hpa_pod *pd = &hm->pods[k];
            if (pd->ignored || !pd->has_metric || !pd->ready) continue;
            used += pd->value;
            req += pd->request;
        }
        if (req > 0 && used >= req * (1 - 1e-9)) return 1;
    }
    return 0;
}

static void pred_values(portrait_engine *e, int i, const portrait_obs *obs, const portrait *g,
                        prov_out *o, int reactive, const char *reactive_why, char *why,
                        size_t whylen) {
    const wl_provider *p = &e->spec.providers[i];
    pred_state *ps = &e->pred[i];
    char reason[200] = "";
    int usable = 1;
    int no_traffic = !obs->traffic || obs->traffic->n == 0 || obs->traffic->step <= 0;
    if (!ps->fc) {
        snprintf(reason, sizeof reason, "no model%s%s",
                 ps->fit_error[0] ? ": "
                 : no_traffic     ? ": no traffic history yet"
                                  : " (not trained yet)",
                 ps->fit_error);
        usable = 0;
    } else if (obs->now - ps->trained_at > p->max_age_seconds) {
        snprintf(reason, sizeof reason, "model stale (trained %.1f h ago, max %.1f h)",
                 (obs->now - ps->trained_at) / 3600.0, p->max_age_seconds / 3600.0);
        usable = 0;
    } else if (!obs->traffic || obs->traffic->n == 0 || obs->traffic->step <= 0) {
        snprintf(reason, sizeof reason, "no traffic history");
        usable = 0;
    } else if (!(p->capacity_per_replica > 0) && !e->cap_fn) {
        snprintf(reason, sizeof reason, "no capacity model%s%.150s", e->cap_reason[0] ? ": " : "",
                 e->cap_reason);
        usable = 0;
    } else if (!(p->capacity_per_replica > 0) && !e->cap_gates_passed) {
        snprintf(reason, sizeof reason, "capacity model fails its quality gates: %.150s",
                 e->cap_reason);
        usable = 0;
    }
    if (usable) {
        int64_t next_origin = obs->traffic->t0 + (int64_t)obs->traffic->n * obs->traffic->step;
        if (!ps->forecast_at || obs->now - ps->forecast_at >= p->reforecast_seconds ||
            next_origin - ps->fc_t0 >= (int64_t)ps->fc_n * ps->fc_step) {
            char fw[160];
            if (pred_forecast(e, i, obs, fw, sizeof fw) < 0) {
                snprintf(reason, sizeof reason, "forecast failed: %s", fw);
                usable = 0;
            }
        }
    }
    /* the WAPE gate holds until the live guard has its score, which then decides alone: a
     * noisy series can miss by half on average and still beat the naive forecast */
    double live = guard_score(ps, ps->scored_to);
    if (usable && isnan(live) && ps->points >= QUALITY_MIN_POINTS && ps->act_sum > 0 &&
        ps->err_sum / ps->act_sum > QUALITY_MAX_WAPE) {
        snprintf(reason, sizeof reason, "forecast quality gate: recent WAPE %.2f > %.2f",
                 ps->err_sum / ps->act_sum, QUALITY_MAX_WAPE);
        usable = 0;
    }
    if (usable && live > 1) {
        snprintf(reason, sizeof reason,
                 PORTRAIT_GUARD_REASON " forecast MASE %.2f over the last day, worse than the "
                                       "one-day seasonal naive forecast",
                 live);
        usable = 0;
    }
    if (usable && ps->fc_n == 0) {
        snprintf(reason, sizeof reason, "no forecast");
        usable = 0;
    }
    snprintf(ps->fallback, sizeof ps->fallback, "%s", usable ? "" : reason);
    if (!usable) { /* fall back to the reactive recommendation for now */
        if (reactive >= 0) o->rep[0] = o->need[0] = reactive;
        snprintf(why, whylen, "fallback to reactive (%.110s): %.90s", reason,
                 reactive >= 0 ? reactive_why : "no reactive value either");
        return;
    }
    double tgt = e->spec.target_utilization;
    int last = -1;
    for (int k = 0; k < g->n; k++) {
        int64_t t = g->t0 + (int64_t)k * g->step;
        int64_t idx = (t - ps->fc_t0) / ps->fc_step;
        if (t < ps->fc_t0) idx = 0; /* the current step, forecast from the step before */
        if (idx >= ps->fc_n) break;
        double tr = ps->fc_q[idx];
        if (tr < 0) tr = 0;
        /* series values are per step of the series; the portrait grid shares that step */
        int need;
        if (p->capacity_per_replica > 0)
            need = portrait_replicas_for(tr, p->capacity_per_replica, tgt);
        else
            need = e->cap_fn(e->cap_ctx, tr, t, tgt / 100.0, 0, e->spec.max_replicas);
        if (need > obs->current && obs->current > 0) {
            /* the reactive rule adds replicas only once utilization leaves its tolerance band:
             * traffic the current replicas carry within the band needs none */
            double up = tgt * (1 + e->spec.tolerance);
            int edge = p->capacity_per_replica > 0
                           ? portrait_replicas_for(tr, p->capacity_per_replica, up)
                           : e->cap_fn(e->cap_ctx, tr, t, up / 100.0, 0, e->spec.max_replicas);
            if (edge >= 0 && edge <= obs->current) need = obs->current;
        }
        if (need < 0) {
            snprintf(why, whylen, "capacity model could not size %.1f traffic", tr);
            break;
        }
        o->need[k] = need;
        o->traffic[k] = tr;
        last = k;
    }
    /* replicas that must exist at the start of step k (at now for the current step): the
     * forecast need of every step that begins within the scale-up-ahead time */
    int ahead = obs->ahead_seconds > 0 ? (int)((obs->ahead_seconds + g->step - 1) / g->step) : 0;
    for (int k = 0; k <= last; k++) {
        int m = o->need[k];
        int64_t from = k == 0 ? obs->now : g->t0 + (int64_t)k * g->step;
        for (int j = k + 1; j <= k + ahead && j <= last; j++) {
            if (g->t0 + (int64_t)j * g->step - from > obs->ahead_seconds) break;
            if (o->need[j] > m) m = o->need[j];
        }
        o->rep[k] = m;
    }
    /* online now: what the current load needs (the reactive recommendation); the forecast's
     * need for now and ahead only provisions replicas (started ahead, parked in Standby) until
     * the rise arrives and the load itself asks for them */
    int fc_now = last >= 0 ? o->need[0] : -1;
    int saturated = 0;
    if (last >= 0 && reactive >= 0) {
        o->need[0] = reactive;
        /* the rise has arrived but the load cannot show its size: the ready pods run at 100%
         * of their request or more (the capacity a replica is sized by), so the reactive
         * recommendation is only a lower bound; the forecast's need for now sizes it instead */
        if (reactive > obs->current && fc_now > reactive && pods_saturated(obs)) {
            o->need[0] = fc_now;
            saturated = 1;
        }
    }
    if (last >= 0) {
        char lm[48] = "";
        if (!isnan(live)) snprintf(lm, sizeof lm, ", live MASE %.2f", live);
        snprintf(why, whylen,
                 "%s q%.2f: online %d (%s), forecast %.0f needs %d now, %d within %ds ahead%s",
                 fc_name(ps->fc), p->quantile, o->need[0],
                 saturated       ? "forecast: pods saturated"
                 : reactive >= 0 ? "current load"
                                 : "forecast",
                 o->traffic[0], fc_now, o->rep[0], obs->ahead_seconds, lm);
    }
}

int portrait_update(portrait_engine *e, const portrait_obs *obs, portrait *out) {
    const workload_spec *s = &e->spec;
    int64_t step = obs->traffic && obs->traffic->step > 0 ? obs->traffic->step : DEFAULT_STEP;
    int horizon = 3600;
    for (int i = 0; i < s->n_providers; i++)
        if (s->providers[i].type == WL_PROV_PREDICTIVE && s->providers[i].horizon_seconds > horizon)
            horizon = s->providers[i].horizon_seconds;
    int n = (int)((horizon + step - 1) / step);
    if (n > PORTRAIT_MAX_STEPS) n = PORTRAIT_MAX_STEPS;
    out->step = step;
    out->t0 = obs->now - ((obs->now % step) + step) % step;
    out->n = n;
    out->clamped_low = out->clamped_high = 0;
    out->status[0] = 0;
    prov_out *o = malloc(sizeof *o);
    if (!o) return -ENOMEM;
    int best_rep[PORTRAIT_MAX_STEPS], best_need[PORTRAIT_MAX_STEPS], best_prio[PORTRAIT_MAX_STEPS];
    for (int k = 0; k < n; k++) {
        best_rep[k] = best_need[k] = -1;
        best_prio[k] = 0;
        out->source[k] = -1;
        out->traffic[k] = NAN;
    }
    /* the reactive recommendation is computed once per update: it is both a provider and the
     * predictive fallback, and the HPA state must see one recommendation per sync */
    char rwhy[200] = "";
    int need_reactive = 0;
    for (int i = 0; i < s->n_providers; i++)
        need_reactive |=
            s->providers[i].type == WL_PROV_REACTIVE || s->providers[i].type == WL_PROV_PREDICTIVE;
    int reactive = need_reactive ? reactive_value(e, obs, rwhy, sizeof rwhy) : -1;
    e->reactive_last = reactive;
    size_t off = 0;
    for (int i = 0; i < s->n_providers; i++) {
        const wl_provider *p = &s->providers[i];
        char why[240] = "";
        for (int k = 0; k < n; k++) {
            o->rep[k] = o->need[k] = -1;
            o->traffic[k] = NAN;
        }
        switch (p->type) {
        case WL_PROV_STATIC:
            for (int k = 0; k < n; k++)
                o->rep[k] = o->need[k] = p->replicas;
            snprintf(why, sizeof why, "%d", p->replicas);
            break;
        case WL_PROV_CRON:
            if (!e->cron_buf[i] || e->cron_t0[i] != out->t0 || e->cron_n[i] != n) {
                int *nb = realloc(e->cron_buf[i], (size_t)n * sizeof(int));
                if (!nb) {
                    free(o);
                    return -ENOMEM;
                }
                e->cron_buf[i] = nb;
                e->cron_n[i] = n;
                e->cron_t0[i] = out->t0;
                if (wl_cron_eval_from(p, out->t0, step, n, nb, &e->cron_state[i]) < 0) {
                    for (int k = 0; k < n; k++)
                        nb[k] = -1;
                    e->cron_t0[i] = -1;
                }
            }
            for (int k = 0; k < n; k++)
                o->rep[k] = o->need[k] = e->cron_buf[i][k];
            if (e->cron_t0[i] < 0)
                snprintf(why, sizeof why, "bad time zone %s", p->time_zone);
            else if (e->cron_buf[i][0] >= 0)
                snprintf(why, sizeof why, "window open: %d", e->cron_buf[i][0]);
            else
                snprintf(why, sizeof why, "no window open");
            break;
        case WL_PROV_REACTIVE:
            if (reactive >= 0) o->rep[0] = o->need[0] = reactive;
            snprintf(why, sizeof why, "%s", reactive >= 0 ? rwhy : "no value: ");
            if (reactive < 0) snprintf(why + strlen(why), sizeof why - strlen(why), "%s", rwhy);
            break;
        case WL_PROV_PREDICTIVE: {
            pred_values(e, i, obs, out, o, reactive, rwhy, why, sizeof why);
            break;
        }
        }
        for (int k = 0; k < n; k++) {
            if (o->rep[k] < 0) continue;
            if (best_rep[k] < 0 || p->priority > best_prio[k]) { /* a higher priority replaces */
                best_rep[k] = o->rep[k];
                best_need[k] = o->need[k];
                best_prio[k] = p->priority;
                out->source[k] = (signed char)i;
            } else if (p->priority == best_prio[k]) { /* a tie goes to the higher count */
                if (o->rep[k] > best_rep[k]) {
                    best_rep[k] = o->rep[k];
                    out->source[k] = (signed char)i;
                }
                if (o->need[k] > best_need[k]) best_need[k] = o->need[k];
            }
            if (!isnan(o->traffic[k])) out->traffic[k] = o->traffic[k];
        }
        int w =
            snprintf(out->status + off, sizeof out->status - off, "%s%s[%s p%d]: %s",
                     off ? "; " : "", p->name, wl_provider_type_name(p->type), p->priority, why);
        if (w > 0)
            off = (size_t)w < sizeof out->status - off ? off + (size_t)w : sizeof out->status - 1;
    }
    for (int k = 0; k < n; k++) {
        int r = best_rep[k], nd = best_need[k];
        if (r < 0) r = nd = s->min_replicas; /* nobody knows: hold the minimum */
        if (nd > r) nd = r;
        out->demand[k] = r;
        if (r < s->min_replicas) {
            r = s->min_replicas;
            out->clamped_low++;
        }
        if (r > s->max_replicas) {
            r = s->max_replicas;
            out->clamped_high++;
        }
        if (nd < s->min_replicas) nd = s->min_replicas;
        if (nd > s->max_replicas) nd = s->max_replicas;
        out->replicas[k] = r;
        out->needed[k] = nd;
    }
    if (out->clamped_low || out->clamped_high) {
        snprintf(out->status + off, sizeof out->status - off,
                 "%sclamped: %d steps raised to minReplicas %d, %d cut to maxReplicas %d",
                 off ? "; " : "", out->clamped_low, s->min_replicas, out->clamped_high,
                 s->max_replicas);
    }
    free(o);
    return 0;
}
