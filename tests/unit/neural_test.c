/* neural_test.c: the squeeze-excitation forecaster: analytic gradients match numerical ones,
 * the fused Adam step equals step + Adam, training is deterministic, and it learns a
 * seasonal series. */
#include "models/forecast.h"
#include "models/neural.h"
#include "test.h"

#include <stdlib.h>

enum { C = 4, H = 3, B = 4 };
static const int vocab[NF_NTAB] = {5, 4, 3, 2};

static void batch(int c, float *x, int *idx, float *y, float target) {
    for (int i = 0; i < B * c; i++)
        x[i] = 0.5f + 0.37f * (float)((i * 7) % 5);
    for (int w = 0; w < B; w++)
        for (int k = 0; k < NF_NEMB; k++)
            idx[w * NF_NEMB + k] = (w + k) % (k == 0 ? 5 : k % 3 == 1 ? 4 : k % 3 == 2 ? 3 : 2);
    for (int i = 0; i < B * H; i++)
        y[i] = target + 0.1f * (float)(i % 3);
}

/* Targets far above (or below) every output keep the L1 loss on one side of its kink, so
 * central differences are exact up to the ReLU kinks and float rounding. Context c; every
 * parameter at a step of 1 + (i % 13) when stride is 0, else every stride-th. */
static void gradcheck_c(int c, size_t stride, float target) {
    neural_net *n = neural__net_new(c, H, B, vocab, 3);
    T_ASSERT(n != NULL);
    float x[B * 32], y[B * H];
    int idx[B * NF_NEMB];
    T_ASSERT(c <= 32);
    batch(c, x, idx, y, target);
    size_t np = neural__net_nparams(n);
    float *p = neural__net_params(n), *g = neural__net_grads(n);
    neural__net_step(n, x, idx, y, B, 1);
    float *ga = malloc(np * sizeof *ga);
    memcpy(ga, g, np * sizeof *ga);
    int checked = 0, bad = 0;
    for (size_t i = 0; i < np; i += stride ? stride : 1 + (i % 13)) {
        float save = p[i], eps = 1e-2f;
        p[i] = save + eps;
        double lp = neural__net_step(n, x, idx, y, B, 0);
        p[i] = save - eps;
        double lm = neural__net_step(n, x, idx, y, B, 0);
        p[i] = save;
        double num = (lp - lm) / (2 * eps);
        if (fabs(num - ga[i]) > 2e-4 + 0.03 * fabs(num)) bad++;
        checked++;
    }
    free(ga);
    neural__net_free(n);
    /* a few parameters may sit on a ReLU kink; all but 1% must match */
    if (bad * 100 > checked)
        T_FAIL("%d of %d gradients differ from central differences", bad, checked);
    T_ASSERT(checked > 500);
}

TEST(neural_gradients_match_numerical_above) {
    gradcheck_c(C, 0, 10.0f);
}
TEST(neural_gradients_match_numerical_below) {
    gradcheck_c(C, 0, -10.0f);
}

/* Context 24: width 384, so the backward pass splits W2 (384 x 192) into two 320-row panels
 * and both weights into several gradient pieces; a spread sample of 600 parameters. */
TEST(neural_gradients_match_numerical_across_panels) {
    neural_net *n = neural__net_new(24, H, B, vocab, 3);
    T_ASSERT(n != NULL);
    size_t np = neural__net_nparams(n);
    neural__net_free(n);
    gradcheck_c(24, np / 600 + 1, 10.0f);
}

/* The fused step (Adam on each gradient panel as it is made) against step + Adam, at context
 * c (24: several panels per weight). */
static void fused_equals_separate(int c) {
    neural_net *a = neural__net_new(c, H, B, vocab, 5), *b = neural__net_new(c, H, B, vocab, 5);
    float x[B * 32], y[B * H];
    int idx[B * NF_NEMB];
    T_ASSERT(c <= 32 && a && b);
    batch(c, x, idx, y, 1.5f);
    for (int s = 0; s < 3; s++) {
        neural__net_step(a, x, idx, y, B, 1);
        neural__net_adam(a, 1e-2f);
        neural__net_train_step(b, x, idx, y, B, 1e-2f);
    }
    float *pa = neural__net_params(a), *pb = neural__net_params(b);
    double maxd = 0;
    for (size_t i = 0; i < neural__net_nparams(a); i++)
        maxd = fmax(maxd, fabs(pa[i] - pb[i]));
    neural__net_free(a);
    neural__net_free(b);
    T_NEAR(maxd, 0, 1e-6);
}

TEST(neural_fused_adam_equals_step_then_adam) {
    fused_equals_separate(C);
}
TEST(neural_fused_adam_equals_step_then_adam_across_panels) {
    fused_equals_separate(24);
}

TEST(neural_learns_seasonal_series_deterministically) {
    /* 20 days at 30-minute steps of a daily sine with noise: a small, fast model */
    size_t n = 20 * 48;
    double *y = malloc((n + 48) * sizeof *y);
    unsigned s = 9;
    for (size_t i = 0; i < n + 48; i++) {
        s = s * 1103515245u + 12345u;
        y[i] = 100 + 40 * sin(2 * M_PI * (double)(i % 48) / 48.0) +
               3 * (((s >> 8) & 0xff) / 128.0 - 1);
    }
    fc_series tr = {.y = y, .n = n, .t0 = 1700006400, .step = 1800};
    fc_options o = {.horizon = 12, .context = 24, .seed = 7, .max_epochs = 30};
    double out1[12], out2[12];
    char err[256] = "";
    for (int run = 0; run < 2; run++) {
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, "neural", &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &tr, err, sizeof err), 0);
        T_EQ_INT(fc_predict(f, &tr, 12, 0.5, run ? out2 : out1, err, sizeof err), 0);
        fc_free(f);
    }
    double mae = 0;
    for (int i = 0; i < 12; i++) {
        T_NEAR(out1[i], out2[i], 0); /* same seed, same forecast */
        mae +=
            fabs(out1[i] - (100 + 40 * sin(2 * M_PI * (double)((n + (size_t)i) % 48) / 48.0))) / 12;
    }
    free(y);
    if (!(mae < 12))
        T_FAIL("MAE %.2f against the noise-free truth, want < 12 (the daily swing is 80)", mae);
}

/* ---- LSTM ---- */
#include "models/lstm.h"

static void lstm_gradcheck(float target) {
    enum { LC = 6, LH = 3, LB = 3 };
    lstm_net *n = lstm__net_new(LC, LH, 5, LB, 11);
    T_ASSERT(n != NULL);
    float x[LB * LC], y[LB * LH];
    for (int i = 0; i < LB * LC; i++)
        x[i] = 0.6f + 0.3f * (float)((i * 5) % 4);
    for (int i = 0; i < LB * LH; i++)
        y[i] = target + 0.1f * (float)(i % 3);
    size_t np = lstm__net_nparams(n);
    float *p = lstm__net_params(n);
    lstm__net_step(n, x, y, LB, 1);
    float *ga = malloc(np * sizeof *ga);
    memcpy(ga, lstm__net_grads(n), np * sizeof *ga);
    int bad = 0, checked = 0;
    for (size_t i = 0; i < np; i++) {
        float save = p[i], eps = 1e-2f;
        p[i] = save + eps;
        double lp = lstm__net_step(n, x, y, LB, 0);
        p[i] = save - eps;
        double lm = lstm__net_step(n, x, y, LB, 0);
        p[i] = save;
        double num = (lp - lm) / (2 * eps);
        if (fabs(num - ga[i]) > 2e-4 + 0.03 * fabs(num)) bad++;
        checked++;
    }
    free(ga);
    lstm__net_free(n);
    if (bad) T_FAIL("%d of %d LSTM gradients differ from central differences", bad, checked);
}

TEST(lstm_gradients_match_numerical_above) {
    lstm_gradcheck(10.0f);
}
TEST(lstm_gradients_match_numerical_below) {
    lstm_gradcheck(-10.0f);
}

/* ---- deterministic training ---- */
#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <string.h>

static atomic_int burn_stop;

static void *burn(void *arg) {
    volatile double x = 1;
    (void)arg;
    while (!atomic_load(&burn_stop))
        x = x * 1.0000001 + 1e-9;
    return NULL;
}

/* A small sine series at 30-minute steps, as above. */
static double *small_series(size_t n) {
    double *y = malloc(n * sizeof *y);
    unsigned s = 5;
    for (size_t i = 0; y && i < n; i++) {
        s = s * 1103515245u + 12345u;
        y[i] = 100 + 40 * sin(2 * M_PI * (double)(i % 48) / 48.0) +
               3 * (((s >> 8) & 0xff) / 128.0 - 1);
    }
    return y;
}

/* Training stops by epochs and the validation loss, never by elapsed time: a second fit with
 * the same seed while two threads burn CPU (and a wall-clock limit it does not reach) gives
 * bit-identical forecasts; a limit it does reach fails the fit and says so. */
static void check_deterministic(const char *model) {
    size_t n = 10 * 48;
    double *y = small_series(n);
    T_ASSERT(y != NULL);
    fc_series tr = {.y = y, .n = n, .t0 = 1700006400, .step = 1800};
    double out[2][12];
    char err[256] = "";
    for (int run = 0; run < 2; run++) {
        fc_options o = {.horizon = 12, .context = 24, .seed = 11, .max_epochs = 3};
        pthread_t th[2];
        int nth = 0;
        if (run == 1) {
            o.max_fit_seconds = 1e6;
            atomic_store(&burn_stop, 0);
            for (; nth < 2; nth++)
                if (pthread_create(&th[nth], NULL, burn, NULL) != 0) break;
        }
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, model, &o, err, sizeof err), 0);
        int rc = fc_fit(f, &tr, err, sizeof err);
        if (run == 1) {
            atomic_store(&burn_stop, 1);
            for (int i = 0; i < nth; i++)
                pthread_join(th[i], NULL);
        }
        if (rc != 0) T_FAIL("%s: fit failed: %s", model, err);
        T_EQ_INT(fc_predict(f, &tr, 12, 0.5, out[run], err, sizeof err), 0);
        fc_free(f);
    }
    if (memcmp(out[0], out[1], sizeof out[0]) != 0)
        T_FAIL("%s: same seed, different forecasts under load (%.9g vs %.9g at step 1)", model,
               out[0][0], out[1][0]);
    fc_options tiny = {
        .horizon = 12, .context = 24, .seed = 11, .max_epochs = 3, .max_fit_seconds = 1e-9};
    forecaster *f = NULL;
    T_EQ_INT(fc_new(&f, model, &tiny, err, sizeof err), 0);
    T_EQ_INT(fc_fit(f, &tr, err, sizeof err), -ETIMEDOUT);
    T_ASSERT(strstr(err, "max_fit_seconds") != NULL);
    fc_free(f);
    free(y);
}

TEST(neural_fit_is_deterministic_under_load) {
    check_deterministic("neural");
}
TEST(lstm_fit_is_deterministic_under_load) {
    check_deterministic("lstm");
}
