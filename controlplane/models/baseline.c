/* baseline.c: the reference forecasters: last value, seasonal naive (one day, one week). */
#include "models/model.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>

typedef struct baseline {
    int64_t period_s; /* 0 = last value */
} baseline;

double fc__last_value(const fc_series *ctx) {
    for (size_t i = ctx->n; i-- > 0;)
        if (!isnan(ctx->y[i])) return ctx->y[i];
    return 0.0;
}

int fc__steps_per_day(int64_t step) {
    if (step <= 0) return 1;
    int64_t d = 86400 / step;
    return d >= 1 ? (int)d : 1;
}

int fc__horizon(int horizon, int64_t step) {
    return horizon > 0 ? horizon : (int)(3600 / step > 0 ? 3600 / step : 1);
}

static int make(void **state, int64_t period_s) {
    baseline *b = calloc(1, sizeof *b);
    if (!b) return -ENOMEM;
    b->period_s = period_s;
    *state = b;
    return 0;
}
static int create_last(void **s, const fc_options *o, char *e, size_t l) {
    (void)o, (void)e, (void)l;
    return make(s, 0);
}
static int create_day(void **s, const fc_options *o, char *e, size_t l) {
    (void)o, (void)e, (void)l;
    return make(s, 86400);
}
static int create_week(void **s, const fc_options *o, char *e, size_t l) {
    (void)o, (void)e, (void)l;
    return make(s, 7 * 86400);
}

static int fit(void *state, const fc_series *train, double *tp, char *err, size_t errlen) {
    (void)state, (void)train, (void)err, (void)errlen;
    *tp = 0;
    return 0;
}

void fc__seasonal_naive(const fc_series *ctx, int64_t period_s, int h, double *out) {
    double last = fc__last_value(ctx);
    int64_t d = period_s > 0 && ctx->step > 0 ? period_s / ctx->step : 0;
    for (int i = 0; i < h; i++) {
        double v = last;
        if (d > 0) {
            int64_t k = i / d + 1;
            int64_t idx = (int64_t)ctx->n + i - k * d;
            if (idx >= 0 && !isnan(ctx->y[idx])) v = ctx->y[idx];
        }
        out[i] = v;
    }
}

static int predict(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen) {
    (void)err, (void)errlen;
    const baseline *b = state;
    fc__seasonal_naive(ctx, b->period_s, h, out);
    return 0;
}

static void destroy(void *state) {
    free(state);
}

const fc_model_ops fc__model_last = {"last", create_last, fit,  predict, destroy,
                                     NULL,   NULL,        NULL, NULL};
const fc_model_ops fc__model_snaive_day = {"snaive-day", create_day, fit,  predict, destroy,
                                           NULL,         NULL,       NULL, NULL};
const fc_model_ops fc__model_snaive_week = {"snaive-week", create_week, fit,  predict, destroy,
                                            NULL,          NULL,        NULL, NULL};
