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
