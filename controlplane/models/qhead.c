/* qhead.c: quantile heads with the pinball loss, shared by the network forecasters. See
 * qhead.h. */
#include "models/qhead.h"

#include "models/train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

const double fc__q_levels[FC_NQ] = {0.1, 0.9};

int fc__q_index(double q) {
    for (int k = 0; k < FC_NQ; k++)
        if (fabs(q - fc__q_levels[k]) < 1e-9) return k;
    return -1;
}

size_t fc__qhead_nparams(int F, int H) {
    return (size_t)FC_NQ * (size_t)H * ((size_t)F + 1);
}

void fc__qhead_forward(const float *p, const float *feat, int F, const float *point, int H, int b,
                       float *out) {
    int QH = FC_NQ * H;
    const float *bias = p + (size_t)QH * (size_t)F;
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, QH, F, 1.0f, feat, F, p, F, 0.0f, out,
                QH);
    for (int w = 0; w < b; w++)
        for (int k = 0; k < FC_NQ; k++)
            for (int i = 0; i < H; i++)
                out[(size_t)w * (size_t)QH + (size_t)(k * H + i)] +=
                    point[(size_t)w * (size_t)H + (size_t)i] + bias[k * H + i];
}

/* pinball_q(y, f) = q (y - f) when y >= f, (1 - q) (f - y) otherwise: its minimiser over f is
 * the q-quantile of y, and at q = 0.5 it is half the absolute error. */
double fc__qhead_loss(const float *out, const float *y, int H, int b, float *d) {
    int QH = FC_NQ * H;
    double loss = 0;
    float inv = 1.0f / (float)(b * H);
    for (int w = 0; w < b; w++)
        for (int k = 0; k < FC_NQ; k++) {
            float q = (float)fc__q_levels[k];
            for (int i = 0; i < H; i++) {
                size_t o = (size_t)w * (size_t)QH + (size_t)(k * H + i);
                float e = y[(size_t)w * (size_t)H + (size_t)i] - out[o];
                loss += e >= 0 ? q * e : (q - 1) * e;
                d[o] = e > 0 ? -q * inv : (e < 0 ? (1 - q) * inv : 0);
            }
        }
    return loss / ((double)b * H);
}

void fc__qhead_backward(float *g, const float *d, const float *feat, int F, int H, int b) {
    int QH = FC_NQ * H;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, QH, F, b, 1.0f, d, QH, feat, F, 0.0f, g,
                F);
    float *gb = g + (size_t)QH * (size_t)F;
    for (int j = 0; j < QH; j++) {
        float s = 0;
        for (int w = 0; w < b; w++)
            s += d[(size_t)w * (size_t)QH + (size_t)j];
        gb[j] = s;
    }
}

static int cmp_float(const void *a, const void *b) {
    float x = *(const float *)a, y = *(const float *)b;
    return (x > y) - (x < y);
}

int fc__qhead_calibrate(const fc_train *t, void (*qforward)(void *ctx, int b, float *out),
                        float add[FC_NQ], double raw[FC_NQ], double fixed[FC_NQ], char *err,
                        size_t errlen) {
    int H = t->H, QH = FC_NQ * H;
    for (int k = 0; k < FC_NQ; k++)
        add[k] = 0;
    long nval = t->npos / 10, ntr = t->npos - nval, stride = nval / t->val_windows + 1;
    size_t cap = (size_t)(nval / stride + 1) * (size_t)H;
    float *out = malloc((size_t)t->batch * (size_t)QH * sizeof *out);
    float *sc = malloc((size_t)FC_NQ * cap * sizeof *sc);
    if (!out || !sc) {
        free(out);
        free(sc);
        snprintf(err, errlen, "%s: out of memory calibrating the quantile heads", t->name);
        return -ENOMEM;
    }
    size_t ns = 0;
    for (long k = ntr; k < t->npos;) {
        int b = 0;
        for (; b < t->batch && k < t->npos; k += stride) {
            double s = t->inputs(t->ctx, t->pos[k], b);
            if (s <= 0) continue;
            for (int j = 0; j < H; j++)
                t->by[(size_t)b * (size_t)H + (size_t)j] = (float)(t->y[t->pos[k] + j] / s);
            b++;
        }
        if (b == 0) break;
        qforward(t->ctx, b, out);
        for (int w = 0; w < b && ns + (size_t)H <= cap; w++, ns += (size_t)H)
            for (int q = 0; q < FC_NQ; q++)
                for (int j = 0; j < H; j++)
                    sc[(size_t)q * cap + ns + (size_t)j] =
                        t->by[(size_t)w * (size_t)H + (size_t)j] -
                        out[(size_t)w * (size_t)QH + (size_t)(q * H + j)];
    }
    if (ns == 0) { /* nothing held out to learn from: the heads stay as trained */
        free(out);
        free(sc);
        for (int q = 0; q < FC_NQ; q++)
            if (raw) raw[q] = NAN;
        for (int q = 0; q < FC_NQ; q++)
            if (fixed) fixed[q] = NAN;
        return 0;
    }
    for (int q = 0; q < FC_NQ; q++) {
        float *row = sc + (size_t)q * cap;
        qsort(row, ns, sizeof *row, cmp_float);
        size_t below = 0; /* raw coverage: scores <= 0 (y at or under the head) */
        while (below < ns && row[below] <= 0)
            below++;
        double lvl = ceil(((double)ns + 1) * fc__q_levels[q]) - 1;
        size_t i = lvl < 0 ? 0 : lvl >= (double)ns ? ns - 1 : (size_t)lvl;
        add[q] = row[i];
        size_t after = 0;
        while (after < ns && row[after] <= add[q])
            after++;
        if (raw) raw[q] = (double)below / (double)ns;
        if (fixed) fixed[q] = (double)after / (double)ns;
    }
    free(out);
    free(sc);
    return 0;
}
