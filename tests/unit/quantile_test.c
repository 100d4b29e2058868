/* quantile_test.c: the pinball-loss quantile heads of the network forecasters: their
 * gradient matches central differences, they never change the trunk (stop-gradient), a
 * trained p90 covers about 90% of held-out points of a series with known noise, and
 * fc_predict keeps quantiles on the right side of the point forecast. */
#include "models/forecast.h"
#include "models/lstm.h"
#include "models/model.h"
#include "models/neural.h"
#include "models/qhead.h"
#include "test.h"

#include <errno.h>
#include <stdlib.h>

enum { C = 4, H = 3, B = 4 };
static const int vocab[NF_NTAB] = {5, 4, 3, 2};

static void batch(float *x, int *idx, float *y, float target) {
    for (int i = 0; i < B * C; i++)
        x[i] = 0.5f + 0.37f * (float)((i * 7) % 5);
    for (int w = 0; w < B; w++)
        for (int k = 0; k < NF_NEMB; k++)
            idx[w * NF_NEMB + k] = (w + k) % (k == 0 ? 5 : k % 3 == 1 ? 4 : k % 3 == 2 ? 3 : 2);
    for (int i = 0; i < B * H; i++)
        y[i] = target + 0.3f * (float)(i % 3) - 0.3f;
}

/* Puts nonzero values into the heads (they start at zero) so the check covers every weight. */
static void fill(float *p, size_t n, float scale) {
    for (size_t i = 0; i < n; i++)
        p[i] = scale * (float)((int)((i * 37) % 11) - 5);
}

/* Central differences of the pinball loss against the analytic head gradient. The loss is
 * piecewise linear in the head parameters, so differences are exact away from its kinks:
 * targets near the outputs (target 1) put points on both sides; far ones (10, -10) on one. */
static void neural_qcheck(float target) {
    neural_net *n = neural__net_new(C, H, B, vocab, 3);
    T_ASSERT(n != NULL);
    float x[B * C], y[B * H];
    int idx[B * NF_NEMB];
    batch(x, idx, y, target);
    size_t np = neural__net_nparams(n), nq = neural__net_nqparams(n);
    T_EQ_INT(nq, fc__qhead_nparams(16 * C, H));
    float *p = neural__net_params(n) + np;
    fill(p, nq, 0.01f);
    neural__net_step(n, x, idx, y, B, 1);
    float *ga = malloc(nq * sizeof *ga);
    memcpy(ga, neural__net_grads(n) + np, nq * sizeof *ga);
    int bad = 0;
    for (size_t i = 0; i < nq; i++) {
        float save = p[i], eps = 1e-3f;
        p[i] = save + eps;
        neural__net_step(n, x, idx, y, B, 0);
        double lp = neural__net_qloss(n);
        p[i] = save - eps;
        neural__net_step(n, x, idx, y, B, 0);
        double lm = neural__net_qloss(n);
        p[i] = save;
        double num = (lp - lm) / (2 * eps);
        if (fabs(num - ga[i]) > 2e-3 + 0.03 * fabs(num)) bad++;
    }
    free(ga);
    neural__net_free(n);
    /* a target near the outputs can put a point on a kink: allow 2% */
    if (bad * 50 > (int)nq)
        T_FAIL("%d of %zu head gradients differ from central differences", bad, nq);
}

TEST(qhead_neural_gradient_matches_numerical) {
    neural_qcheck(10.0f);
    neural_qcheck(-10.0f);
    neural_qcheck(1.0f);
}

static void lstm_qcheck(float target) {
    enum { LC = 6, LH = 3, LB = 3, HID = 5 };
    lstm_net *n = lstm__net_new(LC, LH, HID, LB, 11);
    T_ASSERT(n != NULL);
    float x[LB * LC], y[LB * LH];
    for (int i = 0; i < LB * LC; i++)
        x[i] = 0.6f + 0.3f * (float)((i * 5) % 4);
    for (int i = 0; i < LB * LH; i++)
        y[i] = target + 0.3f * (float)(i % 3) - 0.3f;
    size_t np = lstm__net_nparams(n), nq = lstm__net_nqparams(n);
    T_EQ_INT(nq, fc__qhead_nparams(HID, LH));
    float *p = lstm__net_params(n) + np;
    fill(p, nq, 0.05f);
    lstm__net_step(n, x, y, LB, 1);
    float *ga = malloc(nq * sizeof *ga);
    memcpy(ga, lstm__net_grads(n) + np, nq * sizeof *ga);
    int bad = 0;
    for (size_t i = 0; i < nq; i++) {
        float save = p[i], eps = 1e-3f;
        p[i] = save + eps;
        lstm__net_step(n, x, y, LB, 0);
        double lp = lstm__net_qloss(n);
        p[i] = save - eps;
        lstm__net_step(n, x, y, LB, 0);
        double lm = lstm__net_qloss(n);
        p[i] = save;
        double num = (lp - lm) / (2 * eps);
        if (fabs(num - ga[i]) > 2e-3 + 0.03 * fabs(num)) bad++;
    }
    free(ga);
    lstm__net_free(n);
    if (bad * 50 > (int)nq)
        T_FAIL("%d of %zu LSTM head gradients differ from central differences", bad, nq);
}

TEST(qhead_lstm_gradient_matches_numerical) {
    lstm_qcheck(10.0f);
    lstm_qcheck(-10.0f);
    lstm_qcheck(1.0f);
}

/* Stop-gradient: two networks with the same seed train on the same batches, one with its
 * heads overwritten by other values before every step. Their trunks (every parameter the
 * point forecast reads) stay bit-identical, so the heads can neither move nor perturb it. */
TEST(qhead_neural_never_changes_the_trunk) {
    neural_net *a = neural__net_new(C, H, B, vocab, 5), *b = neural__net_new(C, H, B, vocab, 5);
    T_ASSERT(a != NULL && b != NULL);
    float x[B * C], y[B * H];
    int idx[B * NF_NEMB];
    batch(x, idx, y, 1.5f);
    size_t np = neural__net_nparams(a), nq = neural__net_nqparams(a);
    for (int s = 0; s < 5; s++) {
        fill(neural__net_params(b) + np, nq, 0.3f * (float)(s + 1));
        neural__net_train_step(a, x, idx, y, B, 1e-2f);
        neural__net_train_step(b, x, idx, y, B, 1e-2f);
    }
    neural__net_step(a, x, idx, y, B, 1);
    neural__net_step(b, x, idx, y, B, 1);
    int same = memcmp(neural__net_params(a), neural__net_params(b), np * sizeof(float)) == 0 &&
               memcmp(neural__net_grads(a), neural__net_grads(b), np * sizeof(float)) == 0;
    neural__net_free(a);
    neural__net_free(b);
    T_ASSERT(same);
}

TEST(qhead_lstm_never_changes_the_trunk) {
    enum { LC = 6, LH = 3, LB = 3 };
    lstm_net *a = lstm__net_new(LC, LH, 5, LB, 11), *b = lstm__net_new(LC, LH, 5, LB, 11);
    T_ASSERT(a != NULL && b != NULL);
    float x[LB * LC], y[LB * LH];
    for (int i = 0; i < LB * LC; i++)
        x[i] = 0.6f + 0.3f * (float)((i * 5) % 4);
    for (int i = 0; i < LB * LH; i++)
        y[i] = 1.2f + 0.1f * (float)(i % 3);
    size_t np = lstm__net_nparams(a), nq = lstm__net_nqparams(a);
    for (int s = 0; s < 5; s++) {
        fill(lstm__net_params(b) + np, nq, 0.3f * (float)(s + 1));
        lstm__net_step(a, x, y, LB, 1);
        lstm__net_adam(a, 1e-2f);
        lstm__net_step(b, x, y, LB, 1);
        lstm__net_adam(b, 1e-2f);
    }
    int same = memcmp(lstm__net_params(a), lstm__net_params(b), np * sizeof(float)) == 0;
    lstm__net_free(a);
    lstm__net_free(b);
    T_ASSERT(same);
}

/* 70 days at 30-minute steps: a daily cycle plus exponential noise of mean 15, whose
 * quantiles are known (p10 +1.6, median +10.4, p90 +34.5 over the cycle). */
#define QT_DAYS 70
#define QT_STEP 1800
static double *noisy_series(size_t n) {
    double *y = malloc(n * sizeof *y);
    uint64_t s = 0x1234567ull;
    for (size_t i = 0; y && i < n; i++) {
        s = s * 6364136223846793005ull + 1442695040888963407ull;
        double u = ((double)(s >> 11) + 0.5) / 9007199254740992.0;
        y[i] = 100 + 40 * sin(2 * M_PI * (double)(i % 48) / 48.0) - 15 * log(u);
    }
    return y;
}

/* Trains `model` on the first 60 days and measures, over forecasts from every 6th step of
 * the last 10 days, the share of points at or under the p90 and p10 heads (the model's own
 * quantile op, not the residual fallback). A p50 forecast would cover about half. */
static void check_coverage(const char *model, const fc_model_ops *ops) {
    size_t n = QT_DAYS * 48, ntr = 60 * 48;
    enum { QH = 12 };
    double *y = noisy_series(n);
    T_ASSERT(y != NULL);
    fc_options o = {.horizon = QH, .context = 48, .seed = 3, .max_epochs = 30};
    void *st = NULL;
    char err[256] = "";
    T_EQ_INT(ops->create(&st, &o, err, sizeof err), 0);
    fc_series tr = {.y = y, .n = ntr, .t0 = 1700006400, .step = QT_STEP};
    double tp = 0;
    int rc = ops->fit(st, &tr, &tp, err, sizeof err);
    if (rc != 0) {
        ops->destroy(st);
        free(y);
        T_FAIL("%s: fit: %s", model, err);
    }
    size_t c90 = 0, c10 = 0, pts = 0;
    double q9[QH], q1[QH], pt[QH];
    for (size_t e = ntr; e + QH <= n; e += 6) {
        fc_series ctx = tr;
        ctx.n = e;
        T_EQ_INT(ops->predict_quantile(st, &ctx, QH, 0.9, q9, err, sizeof err), 0);
        T_EQ_INT(ops->predict_quantile(st, &ctx, QH, 0.1, q1, err, sizeof err), 0);
        T_EQ_INT(ops->predict(st, &ctx, QH, pt, err, sizeof err), 0);
        for (int i = 0; i < QH; i++, pts++)
            c90 += y[e + (size_t)i] <= q9[i], c10 += y[e + (size_t)i] <= q1[i];
    }
    T_EQ_INT(ops->predict_quantile(st, &tr, QH, 0.75, q9, err, sizeof err), -ENOTSUP);
    ops->destroy(st);
    free(y);
    double cov90 = (double)c90 / (double)pts, cov10 = (double)c10 / (double)pts;
    if (!(cov90 >= 0.84 && cov90 <= 0.96))
        T_FAIL("%s: p90 covers %.3f of %zu held-out points, want 0.84..0.96", model, cov90, pts);
    if (!(cov10 >= 0.04 && cov10 <= 0.17))
        T_FAIL("%s: p10 covers %.3f of %zu held-out points, want 0.04..0.17", model, cov10, pts);
}

TEST(qhead_neural_p90_covers_90_percent) {
    check_coverage("neural", &fc__model_neural);
}
TEST(qhead_lstm_p90_covers_90_percent) {
    check_coverage("lstm", &fc__model_lstm);
}

/* Through fc_predict: p90 >= point >= p10 at every step (no crossing), never negative. */
TEST(qhead_fc_predict_quantiles_do_not_cross) {
    size_t n = 20 * 48;
    double *y = noisy_series(n);
    T_ASSERT(y != NULL);
    fc_series tr = {.y = y, .n = n, .t0 = 1700006400, .step = QT_STEP};
    fc_options o = {.horizon = 12, .context = 24, .seed = 7, .max_epochs = 3};
    char err[256] = "";
    for (int m = 0; m < 2; m++) {
        forecaster *f = NULL;
        T_EQ_INT(fc_new(&f, m ? "lstm" : "neural", &o, err, sizeof err), 0);
        T_EQ_INT(fc_fit(f, &tr, err, sizeof err), 0);
        double p1[12], p5[12], p9[12];
        for (size_t e = n - 48; e <= n; e += 12) {
            fc_series ctx = tr;
            ctx.n = e;
            T_EQ_INT(fc_predict(f, &ctx, 12, 0.1, p1, err, sizeof err), 0);
            T_EQ_INT(fc_predict(f, &ctx, 12, 0.5, p5, err, sizeof err), 0);
            T_EQ_INT(fc_predict(f, &ctx, 12, 0.9, p9, err, sizeof err), 0);
            for (int i = 0; i < 12; i++) {
                T_ASSERT(p1[i] <= p5[i] && p5[i] <= p9[i]);
                T_ASSERT(p1[i] >= 0);
            }
        }
        fc_free(f);
    }
    free(y);
}
