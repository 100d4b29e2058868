/* forecast_test.c: the forecasters behind forecast.h: baselines, quantiles, Holt-Winters on a
 * synthetic seasonal series, the outage mask. */
#include "forecast.h"
#include "models/model.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

TEST(fc_unknown_model_named) {
    forecaster *f = NULL;
    char err[256] = "";
    T_EQ_INT(fc_new(&f, "prophet", NULL, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "prophet") != NULL);
    T_ASSERT(f == NULL);
}

TEST(fc_baselines_on_hand_series) {
    /* step 1 h: a day is 24 steps, a week 168 */
    enum { N = 24 * 15 };
    double *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++) y[i] = i; /* value = index makes lags visible */
    fc_series s = {.y = y, .n = N, .t0 = 0, .step = 3600};
    fc_options o = {.horizon = 30};
    char err[256] = "";
    double out[30];
    const char *names[] = {"last", "snaive-day", "snaive-week"};
    for (int m = 0; m < 3; m++) {
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, names[m], &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
        T_EQ_STR(fc_name(f), names[m]);
        T_EQ_INT(fc_predict(f, &s, 30, 0.5, out, err, sizeof err), 0);
        if (m == 0) T_NEAR(out[29], N - 1, 0);
        if (m == 1) {
            T_NEAR(out[0], N - 24, 0);
            T_NEAR(out[23], N - 1, 0);
            T_NEAR(out[24], N - 24, 0); /* two days back for h > 1 day */
            T_NEAR(out[29], N - 19, 0);
        }
        if (m == 2) T_NEAR(out[5], N - 168 + 5, 0);
        fc_free(f);
    }
    free(y);
}

TEST(fc_outage_mask) {
    double y[1000];
    for (int i = 0; i < 1000; i++) y[i] = 5;
    for (int i = 10; i < 50; i++) y[i] = 0; /* 40 min at 1-min step: outage */
    y[70] = 0;                              /* a single zero: real */
    unsigned char mask[1000];
    T_EQ_INT(fc__mask_outages(y, 1000, 60, mask), 40);
    T_EQ_INT(mask[9], 1);
    T_EQ_INT(mask[10], 0);
    T_EQ_INT(mask[49], 0);
    T_EQ_INT(mask[70], 1);
}
