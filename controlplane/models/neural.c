/* neural.c: the neural traffic forecaster ("neural"): embeddings, quasi-differences,
 * squeeze-excitation blocks and a direct multi-step head (see neural.h), trained with Adam on
 * the L1 loss with early stopping. All matrix products are OpenBLAS sgemm calls. */
#include "models/neural.h"
#include "models/adam.h"
#include "models/model.h"
#include "models/qhead.h"
#include "models/train.h"

#include <cblas.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

struct neural_net {
    int C, H, B, F, F2;
    int vocab[NF_NTAB];
    size_t np;
    float *p, *g, *m, *v; /* parameters, gradients, Adam moments (flat, same layout) */
    long t;               /* Adam step */
    /* views into p (and the same offsets into g) */
    size_t off_emb[NF_NTAB], off_w1[NF_BLOCKS], off_w2[NF_BLOCKS], off_wo, off_bo;
    /* activations and scratch */
    float *z[NF_BLOCKS + 1], *a[NF_BLOCKS], *gt[NF_BLOCKS], *out, *dout, *dz, *ds, *dr;
    float *gp;      /* one weight-gradient panel: the fused step's W1/W2 gradients live here only */
    const float *x; /* last batch (for the embedding gradient) */
    const int *idx;
    /* quantile heads (qhead.h): nq parameters at p + np, outside the trunk's np */
    size_t nq;
    float *qout, *dq; /* B x FC_NQ*H head outputs and their loss gradient */
    double qloss;     /* pinball loss of the last step */
};

/* slot k of a window reads table tab_of[k] */
static const int tab_of[NF_NEMB] = {0, 1, 2, 3, 1, 2, 3};

static double gauss(uint64_t *s) {
    double u = fc__uniform(s) + 1e-300, v = fc__uniform(s);
    return sqrt(-2 * log(u)) * cos(2 * M_PI * v);
}

double neural__flops_per_window(int C, int H) {
    double F = 16.0 * C, F2 = F / 2;
    /* per block: 2 forward GEMMs, 4 backward; each 2*F*F2 per window. head: 3 x 2*H*F */
    return NF_BLOCKS * 6 * 2 * F * F2 + 3 * 2 * (double)H * F;
}

/* Rows of a weight whose gradient is computed (and, in the fused step, applied by Adam) at a
 * time: about 64 K values, so the gradient panel and the weight rows Adam reads next stay in
 * a 1 MB L2 (Zen 4 here) instead of going out to memory and back (at least 1 row). */
#define NF_GRAD_PANEL 65536
static size_t grad_panel_rows(int cols) {
    size_t r = NF_GRAD_PANEL / (size_t)cols;
    return r > 16 ? r / 16 * 16 : (r ? r : 1);
}

/* Size of gp: the larger of a W1 and a W2 gradient panel (they differ in width). */
static size_t grad_panel_elems(const neural_net *n) {
    size_t e1 = grad_panel_rows(n->F) * (size_t)n->F, e2 = grad_panel_rows(n->F2) * (size_t)n->F2;
    return e1 > e2 ? e1 : e2;
}

neural_net *neural__net_new(int C, int H, int B, const int vocab[NF_NTAB], uint64_t seed) {
    neural_net *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->C = C;
    n->H = H;
    n->B = B;
    n->F = 16 * C;
    n->F2 = 8 * C;
    size_t F = (size_t)n->F, F2 = (size_t)n->F2, off = 0;
    for (int t = 0; t < NF_NTAB; t++) {
        n->vocab[t] = vocab[t];
        n->off_emb[t] = off;
        off += (size_t)vocab[t] * (size_t)C;
    }
    for (int b = 0; b < NF_BLOCKS; b++) {
        n->off_w1[b] = off;
        off += F2 * F;
        n->off_w2[b] = off;
        off += F * F2;
    }
    n->off_wo = off;
    off += (size_t)H * F;
    n->off_bo = off;
    off += (size_t)H;
    n->np = off;
    n->nq = fc__qhead_nparams(n->F, H);
    off += n->nq;
    n->p = calloc(off, sizeof *n->p); /* the heads start at zero: see qhead.h */
    n->g = calloc(off, sizeof *n->g);
    n->m = calloc(off, sizeof *n->m);
    n->v = calloc(off, sizeof *n->v);
    int ok = n->p && n->g && n->m && n->v;
    ok = ok && (n->qout = malloc((size_t)B * FC_NQ * (size_t)H * sizeof(float))) &&
         (n->dq = malloc((size_t)B * FC_NQ * (size_t)H * sizeof(float)));
    for (int b = 0; b <= NF_BLOCKS && ok; b++)
        ok = (n->z[b] = malloc((size_t)B * F * sizeof(float))) != NULL;
    for (int b = 0; b < NF_BLOCKS && ok; b++) {
        ok = (n->a[b] = malloc((size_t)B * F2 * sizeof(float))) != NULL &&
             (n->gt[b] = malloc((size_t)B * F * sizeof(float))) != NULL;
    }
    ok = ok && (n->out = malloc((size_t)B * (size_t)H * sizeof(float))) &&
         (n->dout = malloc((size_t)B * (size_t)H * sizeof(float))) &&
         (n->dz = malloc((size_t)B * F * sizeof(float))) &&
         (n->ds = malloc((size_t)B * F * sizeof(float))) &&
         (n->dr = malloc((size_t)B * F2 * 2 * sizeof(float))) &&
         (n->gp = malloc(grad_panel_elems(n) * sizeof(float)));
    if (!ok) {
        neural__net_free(n);
        return NULL;
    }
    uint64_t s = seed ? seed : 1;
    for (int t = 0; t < NF_NTAB; t++)
        for (size_t i = 0; i < (size_t)vocab[t] * (size_t)C; i++)
            n->p[n->off_emb[t] + i] = (float)gauss(&s);
    float b1 = (float)(1 / sqrt((double)F)), b2 = (float)(1 / sqrt((double)F2));
    for (int b = 0; b < NF_BLOCKS; b++) {
        for (size_t i = 0; i < F2 * F; i++)
            n->p[n->off_w1[b] + i] = b1 * (float)(2 * fc__uniform(&s) - 1);
        for (size_t i = 0; i < F * F2; i++)
            n->p[n->off_w2[b] + i] = b2 * (float)(2 * fc__uniform(&s) - 1);
    }
    for (size_t i = 0; i < (size_t)H * F; i++)
        n->p[n->off_wo + i] = b1 * (float)(2 * fc__uniform(&s) - 1);
    for (int i = 0; i < H; i++)
        n->p[n->off_bo + (size_t)i] = 1.0f; /* scaled targets are ~1 */
    return n;
}

void neural__net_free(neural_net *n) {
    if (!n) return;
    free(n->p);
    free(n->g);
    free(n->m);
    free(n->v);
    for (int b = 0; b <= NF_BLOCKS; b++)
        free(n->z[b]);
    for (int b = 0; b < NF_BLOCKS; b++) {
        free(n->a[b]);
        free(n->gt[b]);
    }
    free(n->out);
    free(n->dout);
    free(n->dz);
    free(n->ds);
    free(n->dr);
    free(n->gp);
    free(n->qout);
    free(n->dq);
    free(n);
}

size_t neural__net_nparams(const neural_net *n) {
    return n->np;
}
size_t neural__net_nqparams(const neural_net *n) {
    return n->nq;
}
double neural__net_qloss(const neural_net *n) {
    return n->qloss;
}
float *neural__net_params(neural_net *n) {
    return n->p;
}
float *neural__net_grads(neural_net *n) {
    return n->g;
}

static void build_features(neural_net *n, const float *x, const int *idx, int b) {
    int C = n->C;
    size_t F = (size_t)n->F;
    for (int w = 0; w < b; w++) {
        float *row = n->z[0] + (size_t)w * F;
        const float *xw = x + (size_t)w * (size_t)C;
        for (int k = 0; k < NF_NEMB; k++) {
            int t = tab_of[k], id = idx[w * NF_NEMB + k];
            const float *e = n->p + n->off_emb[t] + (size_t)id * (size_t)C;
            memcpy(row + (size_t)k * (size_t)C, e, (size_t)C * sizeof *row);
            float *pr = row + (size_t)(9 + k) * (size_t)C;
            for (int j = 0; j < C; j++)
                pr[j] = xw[j] * e[j];
        }
        memcpy(row + 7 * (size_t)C, xw, (size_t)C * sizeof *row);
        float *q = row + 8 * (size_t)C;
        q[0] = 0.2f * xw[0];
        for (int j = 1; j < C; j++)
            q[j] = xw[j] - 0.8f * xw[j - 1];
    }
}

static void forward(neural_net *n, const float *x, const int *idx, int b) {
    int F = n->F, F2 = n->F2, H = n->H;
    build_features(n, x, idx, b);
    for (int k = 0; k < NF_BLOCKS; k++) {
        const float *zin = n->z[k];
        float *a = n->a[k], *g = n->gt[k], *zo = n->z[k + 1];
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, F2, F, 1.0f, zin, F,
                    n->p + n->off_w1[k], F, 0.0f, a, F2);
        float *r = n->dr + (size_t)b * (size_t)F2; /* relu(a) scratch (second half of dr) */
        for (size_t i = 0; i < (size_t)b * (size_t)F2; i++)
            r[i] = a[i] > 0 ? a[i] : 0;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, F, F2, 1.0f, r, F2,
                    n->p + n->off_w2[k], F2, 0.0f, g, F);
        for (size_t i = 0; i < (size_t)b * (size_t)F; i++) {
            g[i] = 1.0f / (1.0f + expf(-g[i]));
            zo[i] = zin[i] * g[i];
        }
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, H, F, 1.0f, n->z[NF_BLOCKS], F,
                n->p + n->off_wo, F, 0.0f, n->out, H);
    for (int w = 0; w < b; w++)
        for (int i = 0; i < H; i++)
            n->out[w * H + i] += n->p[n->off_bo + (size_t)i];
}

void neural__net_forward(neural_net *n, const float *x, const int *idx, int b, float *out) {
    forward(n, x, idx, b);
    memcpy(out, n->out, (size_t)b * (size_t)n->H * sizeof *out);
}

static void adam_range(neural_net *n, size_t off, size_t len, fc_adam_k k) {
    fc__adam(n->p + off, n->g + off, n->m + off, n->v + off, len, k);
}

void neural__net_adam(neural_net *n, float lr) {
    n->t++;
    adam_range(n, 0, n->np, fc__adam_consts(n->t, lr));
    /* separately: one call over np + nq would move the trunk's last values from the scalar
     * tail of fc__adam to its vector body, which rounds differently */
    adam_range(n, n->np, n->nq, fc__adam_consts(n->t, lr));
}

/* The quantile heads on the final features of the last forward pass: outputs, pinball loss,
 * and with grad their gradient (and with lr > 0 their Adam update). Nothing flows back into
 * the trunk. */
static double qheads_step(neural_net *n, const float *y, int b, int grad, float lr) {
    float *qp = n->p + n->np;
    fc__qhead_forward(qp, n->z[NF_BLOCKS], n->F, n->out, n->H, b, n->qout);
    double loss = fc__qhead_loss(n->qout, y, n->H, b, n->dq);
    if (grad) fc__qhead_backward(n->g + n->np, n->dq, n->z[NF_BLOCKS], n->F, n->H, b);
    if (grad && lr > 0) adam_range(n, n->np, n->nq, fc__adam_consts(n->t, lr));
    return loss;
}

void neural__net_forward_q(neural_net *n, const float *x, const int *idx, int b, float *out) {
    forward(n, x, idx, b);
    fc__qhead_forward(n->p + n->np, n->z[NF_BLOCKS], n->F, n->out, n->H, b, out);
}

/* Rows of W per input-gradient GEMM below. OpenBLAS 0.3.21 (Cooperlake kernels) already cuts
 * the inner dimension into chunks of 320 and adds them to C in order, so 320-row panels give
 * the same sums in the same order as one whole call: the split costs nothing in accuracy and
 * keeps the results bit-identical. Any value is correct; others only round differently. */
#define NF_DATA_PANEL 320

/* Backward through y = in W^T for W = the rows x cols block at off (d = dL/dy, b x rows):
 * dx = beta dx + d W (b x cols) and dW = d^T in. Walks W in row panels so each panel is read
 * from memory once: the dx GEMM packs it, then its gradient is computed in L2-sized pieces
 * and, when lr > 0, applied by Adam at once while the panel is still cached. The fused step
 * keeps dW only in the scratch panel gp; otherwise dW goes to the gradient array. */
static void weight_backward(neural_net *n, size_t off, int rows, int cols, const float *d,
                            const float *in, float *dx, float beta, int b, float lr, fc_adam_k ak) {
    int gr = (int)grad_panel_rows(cols);
    for (int r0 = 0; r0 < rows; r0 += NF_DATA_PANEL) {
        int pr = rows - r0 < NF_DATA_PANEL ? rows - r0 : NF_DATA_PANEL;
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, cols, pr, 1.0f, d + r0, rows,
                    n->p + off + (size_t)r0 * (size_t)cols, cols, r0 ? 1.0f : beta, dx, cols);
        for (int s0 = r0; s0 < r0 + pr; s0 += gr) {
            int ps = r0 + pr - s0 < gr ? r0 + pr - s0 : gr;
            size_t po = off + (size_t)s0 * (size_t)cols, len = (size_t)ps * (size_t)cols;
            float *gw = lr > 0 ? n->gp : n->g + po;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, ps, cols, b, 1.0f, d + s0, rows,
                        in, cols, 0.0f, gw, cols);
            if (lr > 0) fc__adam(n->p + po, gw, n->m + po, n->v + po, len, ak);
        }
    }
}

static double step_impl(neural_net *n, const float *x, const int *idx, const float *y, int b,
                        int grad, float lr);

double neural__net_step(neural_net *n, const float *x, const int *idx, const float *y, int b,
                        int grad) {
    return step_impl(n, x, idx, y, b, grad, 0);
}

double neural__net_train_step(neural_net *n, const float *x, const int *idx, const float *y, int b,
                              float lr) {
    n->t++;
    return step_impl(n, x, idx, y, b, 1, lr);
}

/* Forward, loss and (grad != 0) backward; lr > 0 also applies Adam to each parameter block
 * as soon as its gradient is complete and the backward pass no longer needs its value. */
static double step_impl(neural_net *n, const float *x, const int *idx, const float *y, int b,
                        int grad, float lr) {
    int F = n->F, F2 = n->F2, H = n->H, C = n->C;
    forward(n, x, idx, b);
    double loss = 0;
    float inv = 1.0f / (float)(b * H);
    for (size_t i = 0; i < (size_t)b * (size_t)H; i++) {
        float e = n->out[i] - y[i];
        loss += fabsf(e);
        n->dout[i] = e > 0 ? inv : (e < 0 ? -inv : 0);
    }
    loss /= (double)b * H;
    n->qloss = qheads_step(n, y, b, grad, lr);
    if (!grad) return loss;
    float *g = n->g;
    /* head */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, F, b, 1.0f, n->dout, H, n->z[NF_BLOCKS],
                F, 0.0f, g + n->off_wo, F);
    for (int i = 0; i < H; i++) {
        float s = 0;
        for (int w = 0; w < b; w++)
            s += n->dout[w * H + i];
        g[n->off_bo + (size_t)i] = s;
    }
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, F, H, 1.0f, n->dout, H,
                n->p + n->off_wo, F, 0.0f, n->dz, F);
    fc_adam_k ak = fc__adam_consts(n->t, lr);
    if (lr > 0) adam_range(n, n->off_wo, (size_t)H * (size_t)F + (size_t)H, ak); /* Wo, bo */
    float *r = n->dr + (size_t)b * (size_t)F2;
    for (int k = NF_BLOCKS - 1; k >= 0; k--) {
        const float *zin = n->z[k], *gt = n->gt[k], *a = n->a[k];
        size_t nf = (size_t)b * (size_t)F, nh = (size_t)b * (size_t)F2;
        for (size_t i = 0; i < nf; i++) {
            float dzp = n->dz[i];
            n->ds[i] = dzp * zin[i] * gt[i] * (1.0f - gt[i]);
            n->dz[i] = dzp * gt[i];
        }
        for (size_t i = 0; i < nh; i++)
            r[i] = a[i] > 0 ? a[i] : 0;
        /* dr = ds W2 and dW2 = ds^T r (each W2 panel is used before its update) */
        weight_backward(n, n->off_w2[k], F, F2, n->ds, r, n->dr, 0.0f, b, lr, ak);
        for (size_t i = 0; i < nh; i++)
            if (!(a[i] > 0)) n->dr[i] = 0;
        /* dz += da W1 and dW1 = da^T z */
        weight_backward(n, n->off_w1[k], F2, F, n->dr, zin, n->dz, 1.0f, b, lr, ak);
    }
    /* embeddings: feature slot k and the product slot 9+k */
    for (int t = 0; t < NF_NTAB; t++)
        memset(g + n->off_emb[t], 0, (size_t)n->vocab[t] * (size_t)C * sizeof *g);
    for (int w = 0; w < b; w++) {
        const float *dz = n->dz + (size_t)w * (size_t)F, *xw = x + (size_t)w * (size_t)C;
        for (int k = 0; k < NF_NEMB; k++) {
            int t = tab_of[k], id = idx[w * NF_NEMB + k];
            float *ge = g + n->off_emb[t] + (size_t)id * (size_t)C;
            const float *d1 = dz + (size_t)k * (size_t)C, *d2 = dz + (size_t)(9 + k) * (size_t)C;
            for (int j = 0; j < C; j++)
                ge[j] += d1[j] + d2[j] * xw[j];
        }
    }
    if (lr > 0) adam_range(n, 0, n->off_w1[0], ak); /* the embedding tables */
    return loss;
}

/* ---- the forecaster ----------------------------------------------------------------------- */

#define NF_BATCH 32
#define NF_SERIES_VOCAB 64
#define NF_EPOCH_BATCHES 50
#define NF_PATIENCE 4
#define NF_MAX_EPOCHS 20 /* default cap: about 55 s on one idle core at context 120, horizon 60 */
#define NF_VAL_WINDOWS 512

typedef struct neural {
    fc_options opt;
    int C, H;
    int64_t step;
    neural_net *net;
    int coarse;        /* step >= 1 h: hour, weekday, day of month */
    float qadd[FC_NQ]; /* conformal correction of each quantile head (scaled units) */
} neural;

static void vocab_for(int coarse, int vocab[NF_NTAB]) {
    vocab[0] = NF_SERIES_VOCAB;
    if (coarse) {
        vocab[1] = 24;
        vocab[2] = 7;
        vocab[3] = 31;
    } else {
        vocab[1] = 60;
        vocab[2] = 24;
        vocab[3] = 7;
    }
}

static void time_ids(int coarse, int64_t ts, int *ids) {
    int64_t days = ts >= 0 ? ts / 86400 : (ts - 86399) / 86400;
    int64_t sod = ts - days * 86400;
    int wd = (int)(((days + 4) % 7 + 7) % 7);
    if (coarse) {
        time_t tt = (time_t)ts;
        struct tm tm;
        gmtime_r(&tt, &tm);
        ids[0] = (int)(sod / 3600);
        ids[1] = wd;
        ids[2] = tm.tm_mday - 1;
    } else {
        ids[0] = (int)((sod / 60) % 60);
        ids[1] = (int)(sod / 3600);
        ids[2] = wd;
    }
}

/* The scaled context x[0..C) of the window ending before index `end` and its embedding ids.
 * Missing (masked) values are replaced by the mean of the others. Returns the scale (context
 * mean), or 0 when the context has no positive mean. */
static double window_inputs(const neural *m, const double *y, const unsigned char *mask, long end,
                            int64_t t0, uint32_t series, float *x, int *idx) {
    int C = m->C;
    double sum = 0;
    int cnt = 0;
    for (int j = 0; j < C; j++) {
        long i = end - C + j;
        if (i >= 0 && (!mask || mask[i])) {
            sum += y[i];
            cnt++;
        }
    }
    double mean = cnt ? sum / cnt : 0;
    if (!(mean > 0)) return 0;
    for (int j = 0; j < C; j++) {
        long i = end - C + j;
        double v = i >= 0 && (!mask || mask[i]) ? y[i] : mean;
        x[j] = (float)(v / mean);
    }
    idx[0] = (int)(series % NF_SERIES_VOCAB);
    int64_t tf = t0 + (int64_t)end * m->step, tl = tf + (int64_t)(m->H - 1) * m->step;
    time_ids(m->coarse, tf, idx + 1);
    time_ids(m->coarse, tl, idx + 4);
    return mean;
}

static int create(void **state, const fc_options *opt, char *err, size_t errlen) {
    (void)err, (void)errlen;
    neural *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    if (opt) m->opt = *opt;
    *state = m;
    return 0;
}

/* fc_train callbacks; the batch buffers live in the forecaster while it fits */
typedef struct neural_fit {
    neural *m;
    const fc_series *train;
    const unsigned char *mask;
    float *bx, *by;
    int *bi;
} neural_fit;

static double fit_inputs(void *ctx, long e, int row) {
    neural_fit *f = ctx;
    return window_inputs(f->m, f->train->y, f->mask, e, f->train->t0, f->train->series_id,
                         f->bx + (size_t)row * (size_t)f->m->C, f->bi + row * NF_NEMB);
}

static void fit_train_batch(void *ctx, int b) {
    neural_fit *f = ctx;
    neural__net_train_step(f->m->net, f->bx, f->bi, f->by, b, 1e-3f);
}

static double fit_loss(void *ctx, int b) {
    neural_fit *f = ctx;
    return neural__net_step(f->m->net, f->bx, f->bi, f->by, b, 0);
}

static void fit_qforward(void *ctx, int b, float *out) {
    neural_fit *f = ctx;
    neural__net_forward_q(f->m->net, f->bx, f->bi, b, out);
}

/* The heads' conformal correction on the validation windows (see fc__qhead_calibrate). */
static int calibrate_heads(neural *m, const fc_train *t, char *err, size_t errlen) {
    double raw[FC_NQ], fixed[FC_NQ];
    int rc = fc__qhead_calibrate(t, fit_qforward, m->qadd, raw, fixed, err, errlen);
    if (rc == 0 && m->opt.verbose)
        fprintf(stderr,
                "neural: held-out coverage of the p10/p90 heads %.3f/%.3f, corrected by "
                "%+.4f/%+.4f to %.3f/%.3f\n",
                raw[0], raw[1], (double)m->qadd[0], (double)m->qadd[1], fixed[0], fixed[1]);
    return rc;
}

static int fit(void *state, const fc_series *train, double *tp, char *err, size_t errlen) {
    neural *m = state;
    *tp = 0;
    neural__net_free(m->net);
    m->net = NULL;
    m->step = train->step;
    m->coarse = train->step >= 3600;
    m->H = fc__horizon(m->opt.horizon, train->step);
    m->C = m->opt.context > 0 ? m->opt.context : (m->H > 120 ? m->H : 120);
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    int C = m->C, H = m->H;
    unsigned char *mask = NULL;
    long *pos = NULL, npos = 0;
    float *bx = malloc((size_t)NF_BATCH * (size_t)C * sizeof *bx);
    float *by = malloc((size_t)NF_BATCH * (size_t)H * sizeof *by);
    int *bi = malloc((size_t)NF_BATCH * NF_NEMB * sizeof *bi);
    int rc = !bx || !by || !bi ? -ENOMEM
                               : fc__train_select("neural", train, C, H, NF_BATCH, &mask, &pos,
                                                  &npos, err, errlen);
    if (rc != 0) goto out;
    int vocab[NF_NTAB];
    vocab_for(m->coarse, vocab);
    m->net = neural__net_new(C, H, NF_BATCH, vocab, m->opt.seed ? m->opt.seed : 1);
    if (!m->net) {
        rc = -ENOMEM;
        goto out;
    }
    neural_fit f = {m, train, mask, bx, by, bi};
    fc_train t = {
        .name = "neural",
        .batch = NF_BATCH,
        .epoch_batches = NF_EPOCH_BATCHES,
        .patience = NF_PATIENCE,
        .max_epochs = NF_MAX_EPOCHS,
        .val_windows = NF_VAL_WINDOWS,
        .opt = &m->opt,
        .salt = 0x5eedull,
        .pos = pos,
        .npos = npos,
        .y = train->y,
        .H = H,
        .by = by,
        .params = neural__net_params(m->net), /* the trunk and the quantile heads after it */
        .nparams = neural__net_nparams(m->net) + neural__net_nqparams(m->net),
        .ctx = &f,
        .inputs = fit_inputs,
        .train_batch = fit_train_batch,
        .loss = fit_loss,
    };
    rc = fc__train_run(&t, tp, err, errlen);
    if (rc == 0) rc = calibrate_heads(m, &t, err, errlen);
out:
    free(bi);
    free(by);
    free(bx);
    free(pos);
    free(mask);
    if (rc != 0) {
        neural__net_free(m->net);
        m->net = NULL;
    }
    return rc;
}

/* fc__predict_window callbacks: the calendar indices go from the window to the forward pass */
typedef struct neural_predict {
    const neural *m;
    int idx[NF_NEMB];
} neural_predict;

static double predict_inputs(void *net, const fc_series *ctx, const unsigned char *mask, float *x) {
    neural_predict *p = net;
    return window_inputs(p->m, ctx->y, mask, (long)ctx->n, ctx->t0, ctx->series_id, x, p->idx);
}

static void predict_forward(void *net, const float *x, float *o) {
    neural_predict *p = net;
    neural__net_forward(p->m->net, x, p->idx, 1, o);
}

static int predict(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen) {
    (void)err, (void)errlen;
    const neural *m = state;
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    neural_predict p = {.m = m};
    return fc__predict_window(ctx, m->C, m->H, h, out, &p, predict_inputs, predict_forward);
}

/* Quantile forecasts from the heads: the forward pass fills all levels, level k is kept. */
typedef struct neural_predict_q {
    neural_predict p; /* first: predict_inputs reads it */
    int k;
    float *buf; /* FC_NQ x H */
} neural_predict_q;

static void predict_forward_q(void *net, const float *x, float *o) {
    neural_predict_q *pq = net;
    const neural *m = pq->p.m;
    neural__net_forward_q(m->net, x, pq->p.idx, 1, pq->buf);
    for (int i = 0; i < m->H; i++)
        o[i] = pq->buf[pq->k * m->H + i] + m->qadd[pq->k];
}

static int predict_quantile(const void *state, const fc_series *ctx, int h, double q, double *out,
                            char *err, size_t errlen) {
    (void)err, (void)errlen;
    const neural *m = state;
    int k = fc__q_index(q);
    if (k < 0 || !m->net) return -ENOTSUP;
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    neural_predict_q pq = {
        .p = {.m = m}, .k = k, .buf = malloc((size_t)FC_NQ * (size_t)m->H * sizeof(float))};
    if (!pq.buf) return -ENOMEM;
    int rc = fc__predict_window(ctx, m->C, m->H, h, out, &pq, predict_inputs, predict_forward_q);
    free(pq.buf);
    return rc;
}

static void destroy(void *state) {
    neural *m = state;
    if (!m) return;
    neural__net_free(m->net);
    free(m);
}

const fc_model_ops fc__model_neural = {"neural", create,           fit, predict, destroy, NULL,
                                       NULL,     predict_quantile, NULL};
