/* portrait_test.c: providers and their merge. */
#include "scaling/portrait.h"
#include "test.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

static workload_spec base(int min, int max) {
    workload_spec s;
    wl_defaults(&s);
    snprintf(s.name, sizeof s.name, "web");
    s.min_replicas = min;
    s.max_replicas = max;
    s.n_providers = 0;
    return s;
}

static wl_provider *add(workload_spec *s, wl_provider_type t, int prio) {
    wl_provider *p = &s->providers[s->n_providers++];
    memset(p, 0, sizeof *p);
    p->type = t;
    p->priority = prio;
    snprintf(p->name, sizeof p->name, "%s%d", wl_provider_type_name(t), s->n_providers);
    snprintf(p->time_zone, sizeof p->time_zone, "UTC");
    snprintf(p->model, sizeof p->model, "snaive-day");
    p->quantile = 0.5;
    p->horizon_seconds = 3600;
    p->retrain_seconds = 86400;
    p->reforecast_seconds = 300;
    p->max_age_seconds = 7 * 86400;
    return p;
}

TEST(portrait_priority_wins_ties_to_higher_and_clamped) {
    workload_spec s = base(2, 10);
    add(&s, WL_PROV_STATIC, 0)->replicas = 4;
    add(&s, WL_PROV_STATIC, 0)->replicas = 6;
    wl_provider *cr = add(&s, WL_PROV_CRON, 5);
    char why[160];
    T_EQ_INT(wl_cron_parse("0 12 * * *", &cr->windows[0].start, why, sizeof why), 0);
    T_EQ_INT(wl_cron_parse("0 13 * * *", &cr->windows[0].end, why, sizeof why), 0);
    cr->windows[0].replicas = 30;
    cr->n_windows = 1;
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    portrait *pt = malloc(sizeof *pt);
    int64_t now = 1782907200 - 1800; /* 11:30 UTC */
    portrait_obs obs = {now, 3, NULL, 0, NULL, 0};
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->step, 60);
    T_EQ_INT(pt->n, 60);
    T_EQ_INT(pt->replicas[0], 6); /* tie at priority 0 goes to the higher count */
    T_EQ_INT(pt->source[0], 1);
    T_EQ_INT(pt->replicas[30], 10); /* 12:00: the cron window (priority 5) wins, clamped */
    T_EQ_INT(pt->source[30], 2);
    T_EQ_INT(pt->clamped_high, 30);
    T_ASSERT(strstr(pt->status, "clamped") != NULL);
    free(pt);
    portrait_engine_free(e);
}

static hpa_pod pods[8];
static hpa_metric util_metric(int ready, double util_percent) {
    for (int i = 0; i < ready; i++)
        pods[i] = (hpa_pod){util_percent * 10, 1000, 1, 1, 0};
    return (hpa_metric){pods, (size_t)ready, HPA_UTILIZATION, 60};
}

TEST(portrait_reactive_is_the_hpa_and_only_now) {
    workload_spec s = base(1, 20);
    add(&s, WL_PROV_REACTIVE, 0);
    add(&s, WL_PROV_STATIC, -1)->replicas = 2;
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    portrait *pt = malloc(sizeof *pt);
    hpa_metric m = util_metric(4, 90); /* ratio 1.5 -> 6 */
    portrait_obs obs = {1000, 4, &m, 1, NULL, 0};
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->replicas[0], 6);
    T_EQ_INT(pt->needed[0], 6);
    T_EQ_INT(pt->replicas[1], 2); /* later steps: the reactive value has expired */
    T_EQ_INT(portrait_reactive_last(e), 6);
    free(pt);
    portrait_engine_free(e);
}

/* A daily sine of traffic on a 60 s step. */
static double *daily(size_t n, int64_t t0) {
    double *y = malloc(n * sizeof *y);
    for (size_t i = 0; i < n; i++) {
        double t = (double)(t0 + (int64_t)i * 60);
        y[i] = 300 + 200 * sin(2 * M_PI * t / 86400);
    }
    return y;
}

TEST(portrait_predictive_converts_forecast_and_shifts_ahead) {
    workload_spec s = base(1, 100);
    wl_provider *p = add(&s, WL_PROV_PREDICTIVE, 0);
    p->capacity_per_replica = 10; /* at 60%: 6 per replica */
    int64_t t0 = 1782864000;      /* midnight UTC */
    size_t n = 3 * 1440;
    double *y = daily(n, t0);
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    fc_series hist = {y, 2 * 1440, t0, 60, 0};
    int64_t now = t0 + 2 * 86400 + 5 * 3600; /* 05:00 on day 3: traffic rising */
    T_ASSERT(portrait_training_due(e, now));
    char err[200];
    T_EQ_INT(portrait_train(e, &hist, now, err, sizeof err), 0);
    T_ASSERT(!portrait_training_due(e, now + 60));
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    portrait *pt = malloc(sizeof *pt);
    portrait_obs obs = {now, 3, NULL, 0, &ctx, 300};
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    /* snaive-day: the forecast for 05:00 is yesterday's 05:00 = the sine value */
    double want = 300 + 200 * sin(2 * M_PI * (double)now / 86400);
    T_NEAR(pt->traffic[0], want, 1e-6);
    T_EQ_INT(pt->needed[0], (int)ceil(want / 6 - 1e-9));
    for (int k = 0; k + 5 < pt->n; k++) { /* rising: the need 5 steps (300 s) ahead */
        T_EQ_INT(pt->replicas[k], pt->needed[k + 5]);
        T_ASSERT(pt->replicas[k] >= pt->needed[k]);
    }
    T_ASSERT(strstr(pt->status, "snaive-day") != NULL);
    T_ASSERT(portrait_fallback_reason(e, 0) == NULL);
    T_EQ_STR(portrait_model_name(e, 0), "snaive-day");
    T_EQ_STR(portrait_model_last(e, 0), "snaive-day"); /* no online choice: the same */
    free(pt);
    free(y);
    portrait_engine_free(e);
}

TEST(portrait_predictive_falls_back_to_reactive_with_reason) {
    workload_spec s = base(1, 100);
    wl_provider *p = add(&s, WL_PROV_PREDICTIVE, 0);
    p->capacity_per_replica = 10;
    p->max_age_seconds = 3600;
    int64_t t0 = 1782864000;
    size_t n = 3 * 1440;
    double *y = daily(n, t0);
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    portrait *pt = malloc(sizeof *pt);
    hpa_metric m = util_metric(4, 90);
    int64_t now = t0 + 2 * 86400;
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    portrait_obs obs = {now, 4, &m, 1, &ctx, 0};
    /* never trained */
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_ASSERT(strstr(pt->status, "fallback to reactive (no model") != NULL);
    T_ASSERT(portrait_fallback_reason(e, 0) &&
             strstr(portrait_fallback_reason(e, 0), "not trained yet"));
    T_EQ_INT(pt->replicas[0], 6);
    /* trained, then stale */
    fc_series hist = {y, 2 * 1440, t0, 60, 0};
    char err[200];
    T_EQ_INT(portrait_train(e, &hist, now, err, sizeof err), 0);
    obs.now = now + 7200;
    ctx.n += 120;
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_ASSERT(strstr(pt->status, "model stale") != NULL);
    T_EQ_INT(pt->needed[0], 6);
    /* less than a day of history: refused by the first quality gate */
    portrait_engine *e3;
    T_EQ_INT(portrait_engine_new(&e3, &s), 0);
    fc_series shorth = {y, 600, t0, 60, 0};
    T_EQ_INT(portrait_train(e3, &shorth, now, err, sizeof err), -ENODATA);
    T_ASSERT(strstr(err, "600 minutes of traffic history") != NULL);
    T_ASSERT(!portrait_training_due(e3, now + 60)); /* not retried at once */
    T_ASSERT(portrait_training_due(e3, now + 300)); /* but after 5 minutes */
    portrait_engine_free(e3);
    /* an unknown model fails to fit: recorded as the reason */
    snprintf(s.providers[0].model, sizeof s.providers[0].model, "no-such-model");
    portrait_engine *e2;
    T_EQ_INT(portrait_engine_new(&e2, &s), 0);
    T_ASSERT(portrait_train(e2, &hist, now, err, sizeof err) < 0);
    T_ASSERT(strstr(err, "no-such-model") != NULL);
    obs.now = now;
    T_EQ_INT(portrait_update(e2, &obs, pt), 0);
    T_ASSERT(strstr(pt->status, "no-such-model") != NULL);
    portrait_engine_free(e2);
    free(pt);
    free(y);
    portrait_engine_free(e);
}

/* The live guard: a predictive provider whose forecasts (here the last value, on traffic with
 * a strong daily cycle) are worse over the last day than the one-day seasonal naive forecast
 * falls back to reactive with that reason, shows its live MASE, and returns by itself once
 * its forecasts beat the naive one again (the traffic turns flat: yesterday's cycle is then
 * the wrong forecast, the last value the right one). The same engine drives the daemon and
 * tidectl simulate. */
TEST(portrait_live_guard_falls_back_while_worse_than_naive_and_returns) {
    workload_spec s = base(1, 100);
    wl_provider *p = add(&s, WL_PROV_PREDICTIVE, 0);
    add(&s, WL_PROV_REACTIVE, 0);
    p->capacity_per_replica = 10;
    snprintf(p->model, sizeof p->model, "last");
    int64_t t0 = 1782864000;
    size_t n = 5 * 1440;
    double *y = malloc(n * sizeof *y);
    T_ASSERT(y != NULL);
    uint32_t r = 99;
    for (size_t i = 0; i < n; i++) {
        r = r * 1103515245u + 12345u;
        double noise = (double)((r >> 16) % 11) - 5;
        double t = (double)(t0 + (int64_t)i * 60);
        y[i] = (i < 3 * 1440 ? 300 + 200 * sin(2 * M_PI * t / 86400) : 300) + noise;
    }
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    fc_series hist = {y, 2 * 1440, t0, 60, 0};
    int64_t now = t0 + 2 * 86400;
    char err[200];
    T_EQ_INT(portrait_train(e, &hist, now, err, sizeof err), 0);
    portrait *pt = malloc(sizeof *pt);
    hpa_metric m = util_metric(4, 60);
    double pts = 0;
    T_ASSERT(isnan(portrait_live_mase(e, 0, &pts))); /* nothing scored yet */
    int fell_back = 0, returned = 0;
    double worst = 0, back_at = NAN;
    for (int64_t k = 0; k < 2 * 1440; k++) { /* every minute for two days */
        int64_t t = now + k * 60;
        fc_series ctx = {y, (size_t)((t - t0) / 60), t0, 60, 0};
        portrait_obs obs = {t, 4, &m, 1, &ctx, 0};
        T_EQ_INT(portrait_update(e, &obs, pt), 0);
        const char *why = portrait_fallback_reason(e, 0);
        double lm = portrait_live_mase(e, 0, &pts);
        if (why && strstr(why, "live guard")) {
            T_ASSERT(lm > 1);
            T_ASSERT(strstr(why, "worse than the one-day seasonal naive") != NULL);
            T_ASSERT(strstr(pt->status, "fallback to reactive (live guard") != NULL);
            if (lm > worst) worst = lm;
            fell_back = 1;
        } else if (fell_back && !why && !returned) {
            returned = 1;
            back_at = lm;
            T_ASSERT(t > t0 + 3 * 86400); /* only after the traffic turned flat */
            T_ASSERT(strstr(pt->status, "live MASE") != NULL);
        }
    }
    T_ASSERT(fell_back);
    T_ASSERT(worst > 1); /* the last value loses to naive on a daily cycle */
    T_ASSERT(returned);
    T_ASSERT(back_at <= 1);
    T_ASSERT(portrait_fallback_reason(e, 0) == NULL);
    T_ASSERT(portrait_live_mase(e, 0, &pts) < 0.5);
    T_ASSERT(pts > 1000);
    free(pt);
    free(y);
    portrait_engine_free(e);
}

static int fixed_capacity(void *ctx, double traffic, int64_t ts, double target, int min_n,
                          int max_n) {
    (void)ts;
    double per = *(double *)ctx * target;
    int n = (int)ceil(traffic / per);
    return n < min_n ? min_n : n > max_n ? max_n : n;
}

TEST(portrait_capacity_model_and_its_gates) {
    workload_spec s = base(1, 100);
    add(&s, WL_PROV_PREDICTIVE, 0); /* no capacityPerReplica: needs a model */
    int64_t t0 = 1782864000;
    double *y = daily(3 * 1440, t0);
    portrait_engine *e;
    T_EQ_INT(portrait_engine_new(&e, &s), 0);
    fc_series hist = {y, 2 * 1440, t0, 60, 0};
    int64_t now = t0 + 2 * 86400 + 6 * 3600;
    char err[200];
    T_EQ_INT(portrait_train(e, &hist, now, err, sizeof err), 0);
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    portrait *pt = malloc(sizeof *pt);
    portrait_obs obs = {now, 3, NULL, 0, &ctx, 0};
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_ASSERT(strstr(pt->status, "no capacity model") != NULL);
    double per = 10;
    portrait_set_capacity(e, fixed_capacity, &per, now, 0, "holdout MAPE 0.4 > 0.2");
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_ASSERT(strstr(pt->status, "quality gates: holdout MAPE") != NULL);
    portrait_set_capacity(e, fixed_capacity, &per, now, 1, "ok");
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->needed[0], (int)ceil(pt->traffic[0] / 6 - 1e-9));
    free(pt);
    free(y);
    portrait_engine_free(e);
}

/* A trained predictive provider (snaive-day, capacity 10 per replica at 100%: 6 at 60%) on a
 * history of constant traffic c that becomes `rise` at minute `rise_at` of the last day. */
static portrait_engine *trained_flat(workload_spec *s, double c, double rise, int rise_at,
                                     int64_t *t0, double **y) {
    wl_provider *p = add(s, WL_PROV_PREDICTIVE, 0);
    p->capacity_per_replica = 10;
    add(s, WL_PROV_REACTIVE, 0);
    *t0 = 1782864000;
    size_t n = 3 * 1440;
    *y = malloc(n * sizeof **y);
    for (size_t i = 0; i < n; i++)
        (*y)[i] = i >= 1440 + (size_t)rise_at && i < 2 * 1440 ? rise : c;
    portrait_engine *e;
    if (portrait_engine_new(&e, s) < 0) return NULL;
    fc_series hist = {*y, 2 * 1440, *t0, 60, 0};
    char err[200];
    if (portrait_train(e, &hist, *t0 + 2 * 86400, err, sizeof err) < 0) {
        portrait_engine_free(e);
        return NULL;
    }
    return e;
}

/* The forecast provisions replicas (replicas[]) but the online count now (needed[0]) is what
 * the current load asks for, the reactive recommendation: the rise is not paid for online
 * before it arrives. */
TEST(portrait_predictive_provisions_ahead_online_follows_the_load) {
    workload_spec s = base(1, 200);
    int64_t t0;
    double *y;
    portrait_engine *e = trained_flat(&s, 300, 600, 600, &t0, &y); /* 50 -> 100 at 10:00 */
    T_ASSERT(e != NULL);
    int64_t now = t0 + 2 * 86400 + 600 * 60 - 60; /* 09:59:00 */
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    hpa_metric m = util_metric(8, 60); /* 8 pods at the target (mock: 8 of 50 shown) */
    portrait_obs obs = {now, 50, &m, 1, &ctx, 90};
    portrait *pt = malloc(sizeof *pt);
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->needed[0], 50);    /* the load: within tolerance, as it is */
    T_EQ_INT(pt->replicas[0], 100); /* 10:00 begins within the 90 s ahead */
    T_EQ_INT(pt->needed[1], 100);   /* later steps show the forecast's need */
    T_ASSERT(strstr(pt->status, "online 50 (current load)") != NULL);
    /* at the start of a step only steps beginning within the ahead time count: at 09:58:00
     * 10:00 is 120 s away (> 90 s); at 09:58:30 it is 90 s away */
    obs.now = now - 60;
    ctx.n -= 1;
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->replicas[0], 50);
    obs.now = now - 30;
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->replicas[0], 100);
    free(pt);
    free(y);
    portrait_engine_free(e);
}

/* When the rise arrives with the pods saturated (100% of their request: the load's true size is
 * hidden), the reactive ask is a lower bound and the forecast's need for now sizes the online
 * count instead. */
TEST(portrait_predictive_sizes_a_saturated_rise_by_the_forecast) {
    workload_spec s = base(1, 200);
    int64_t t0;
    double *y;
    portrait_engine *e = trained_flat(&s, 48, 600, 600, &t0, &y); /* 8 -> 100 at 10:00 */
    T_ASSERT(e != NULL);
    int64_t now = t0 + 2 * 86400 + 600 * 60; /* 10:00 */
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    hpa_metric m = util_metric(8, 100); /* saturated: ratio 1.67 -> ceil(8 x 1.67) = 14 */
    portrait_obs obs = {now, 8, &m, 1, &ctx, 90};
    portrait *pt = malloc(sizeof *pt);
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(portrait_reactive_last(e), 14);
    T_EQ_INT(pt->needed[0], 100);
    T_ASSERT(strstr(pt->status, "pods saturated") != NULL);
    /* not saturated (90%): the reactive recommendation stands */
    portrait_engine_free(e);
    free(y);
    s = base(1, 200);
    e = trained_flat(&s, 48, 600, 600, &t0, &y);
    T_ASSERT(e != NULL);
    ctx.y = y; /* the new history (the old one is freed) */
    m = util_metric(8, 90);
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(portrait_reactive_last(e), 12);
    T_EQ_INT(pt->needed[0], 12);
    T_EQ_INT(pt->replicas[0], 100);
    free(pt);
    free(y);
    portrait_engine_free(e);
}

/* Traffic the current replicas carry within the reactive tolerance band provisions nothing more:
 * the reactive rule would not add a replica for it. */
TEST(portrait_predictive_provisions_within_the_tolerance_band_as_the_load_would) {
    workload_spec s = base(1, 200);
    int64_t t0;
    double *y;
    portrait_engine *e = trained_flat(&s, 600, 600, 0, &t0, &y); /* 100 at 60%, 91 at 66% */
    T_ASSERT(e != NULL);
    int64_t now = t0 + 2 * 86400 + 3600;
    fc_series ctx = {y, (size_t)((now - t0) / 60), t0, 60, 0};
    hpa_metric m = util_metric(8, 63);
    portrait_obs obs = {now, 95, &m, 1, &ctx, 90};
    portrait *pt = malloc(sizeof *pt);
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->needed[0], 95);
    T_EQ_INT(pt->replicas[0], 95); /* 600 on 95 replicas: 63%, within 60% +- 10% */
    T_EQ_INT(pt->needed[5], 95);
    obs.current = 90; /* 600 on 90: 66.7%, beyond the band: the reactive rule would go to 100 */
    m = util_metric(8, 66.7);
    T_EQ_INT(portrait_update(e, &obs, pt), 0);
    T_EQ_INT(pt->replicas[0], 100);
    free(pt);
    free(y);
    portrait_engine_free(e);
}
