/* train_test.c: the networks' shared training loop (models/train.c) on series it cannot learn. */
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "models/forecast.h"
#include "test.h"

/* A series below zero everywhere has no window with a positive context mean: each network's
 * fit must fail at once with a reason (it used to draw windows forever), and auto must still
 * choose among the other candidates. */
TEST(train_negative_series_fails_fast_and_auto_copes) {
    enum { N = 1440 * 9 };
    double *y = malloc(N * sizeof *y);
    for (int i = 0; i < N; i++)
        y[i] = -20 + 10 * sin(2 * M_PI * i / 1440.0);
    fc_series s = {.y = y, .n = N, .t0 = 1700000000 / 86400 * 86400, .step = 60};
    fc_options o = {.horizon = 60, .max_epochs = 1};
    char err[512] = "";
    const char *nets[] = {"neural", "lstm"};
    for (int m = 0; m < 2; m++) {
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, nets[m], &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &s, err, sizeof err), -EINVAL);
        T_ASSERT(strstr(err, "positive context mean") != NULL);
        fc_free(f);
    }
    forecaster *f = NULL;
    T_EQ_INT(fc_new(&f, "auto", &o, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &s, err, sizeof err), 0);
    T_ASSERT(strstr(fc_name(f), "neural") == NULL && strstr(fc_name(f), "lstm") == NULL);
    T_ASSERT(strchr(fc_name(f), '*') == NULL); /* no upward factor on a negative series */
    double out[60];
    T_EQ_INT(fc_predict(f, &s, 60, 0.5, out, err, sizeof err), 0);
    for (int i = 0; i < 60; i++)
        T_ASSERT(out[i] < 0); /* it forecasts the negative level */
    fc_free(f);
    free(y);
}
