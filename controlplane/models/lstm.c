/* lstm.c: the LSTM forecaster ("lstm"): two layers, direct multi-step head, backpropagation
 * through time with OpenBLAS sgemm, Adam, early stopping. See lstm.h. */
#include "models/lstm.h"
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

#define LSTM_LAYERS 2

struct lstm_net {
    int C, H, hid, B;
    int in[LSTM_LAYERS]; /* input width per layer */
    size_t np;
    float *p, *g, *m, *v;
    long t;
    size_t off_w[LSTM_LAYERS], off_b[LSTM_LAYERS], off_wo, off_bo;
    /* per layer, per time step (t major): cat (B x (in+hid)), act (B x 4hid), c, tc, h (B x hid) */
    float *cat[LSTM_LAYERS], *act[LSTM_LAYERS], *c[LSTM_LAYERS], *tc[LSTM_LAYERS], *h[LSTM_LAYERS];
    float *out, *dout, *dh, *dc, *da, *dcat, *dbelow, *zeros;
    /* quantile heads (qhead.h) on the last hidden state: nq parameters at p + np */
    size_t nq;
    float *qout, *dq;
    double qloss;
};

static float sigf(float x) {
    return 1.0f / (1.0f + expf(-x));
}

lstm_net *lstm__net_new(int C, int H, int hid, int B, uint64_t seed) {
    lstm_net *n = calloc(1, sizeof *n);
    if (!n) return NULL;
    n->C = C;
    n->H = H;
    n->hid = hid;
    n->B = B;
    n->in[0] = 1;
    n->in[1] = hid;
    size_t off = 0, G = 4 * (size_t)hid;
    for (int l = 0; l < LSTM_LAYERS; l++) {
        n->off_w[l] = off;
        off += G * (size_t)(n->in[l] + hid);
        n->off_b[l] = off;
        off += G;
    }
    n->off_wo = off;
    off += (size_t)H * (size_t)hid;
    n->off_bo = off;
    off += (size_t)H;
    n->np = off;
    n->nq = fc__qhead_nparams(hid, H);
    off += n->nq;
    n->p = calloc(off, sizeof *n->p); /* the heads start at zero: see qhead.h */
    n->g = calloc(off, sizeof *n->g);
    n->m = calloc(off, sizeof *n->m);
    n->v = calloc(off, sizeof *n->v);
    int ok = n->p && n->g && n->m && n->v;
    ok = ok && (n->qout = malloc((size_t)B * FC_NQ * (size_t)H * sizeof(float))) &&
         (n->dq = malloc((size_t)B * FC_NQ * (size_t)H * sizeof(float)));
    size_t TB = (size_t)C * (size_t)B;
    for (int l = 0; l < LSTM_LAYERS && ok; l++) {
        ok = (n->cat[l] = malloc(TB * (size_t)(n->in[l] + hid) * sizeof(float))) &&
             (n->act[l] = malloc(TB * G * sizeof(float))) &&
             (n->c[l] = malloc(TB * (size_t)hid * sizeof(float))) &&
             (n->tc[l] = malloc(TB * (size_t)hid * sizeof(float))) &&
             (n->h[l] = malloc(TB * (size_t)hid * sizeof(float)));
    }
    ok = ok && (n->out = malloc((size_t)B * (size_t)H * sizeof(float))) &&
         (n->dout = malloc((size_t)B * (size_t)H * sizeof(float))) &&
         (n->dh = malloc((size_t)B * (size_t)hid * sizeof(float))) &&
         (n->dc = malloc((size_t)B * (size_t)hid * sizeof(float))) &&
         (n->da = malloc((size_t)B * G * sizeof(float))) &&
         (n->dcat = malloc((size_t)B * (size_t)(2 * hid + 1) * sizeof(float))) &&
         (n->dbelow = malloc(TB * (size_t)hid * sizeof(float))) &&
         (n->zeros = calloc((size_t)B * (size_t)hid, sizeof(float)));
    if (!ok) {
        lstm__net_free(n);
        return NULL;
    }
    uint64_t s = seed ? seed : 1;
    float k = (float)(1 / sqrt((double)hid));
    for (int l = 0; l < LSTM_LAYERS; l++) {
        for (size_t i = 0; i < G * (size_t)(n->in[l] + hid); i++)
            n->p[n->off_w[l] + i] = k * (float)(2 * fc__uniform(&s) - 1);
        for (size_t i = 0; i < G; i++)
            n->p[n->off_b[l] + i] = i >= (size_t)hid && i < 2 * (size_t)hid ? 1.0f : 0.0f;
    }
    for (size_t i = 0; i < (size_t)H * (size_t)hid; i++)
        n->p[n->off_wo + i] = k * (float)(2 * fc__uniform(&s) - 1);
    for (int i = 0; i < H; i++)
        n->p[n->off_bo + (size_t)i] = 1.0f;
    return n;
}

void lstm__net_free(lstm_net *n) {
    if (!n) return;
    free(n->p);
    free(n->g);
    free(n->m);
    free(n->v);
    for (int l = 0; l < LSTM_LAYERS; l++) {
        free(n->cat[l]);
        free(n->act[l]);
        free(n->c[l]);
        free(n->tc[l]);
        free(n->h[l]);
    }
    free(n->out);
    free(n->dout);
    free(n->dh);
    free(n->dc);
    free(n->da);
    free(n->dcat);
    free(n->dbelow);
    free(n->zeros);
    free(n->qout);
    free(n->dq);
    free(n);
}

size_t lstm__net_nparams(const lstm_net *n) {
    return n->np;
}
size_t lstm__net_nqparams(const lstm_net *n) {
    return n->nq;
}
double lstm__net_qloss(const lstm_net *n) {
    return n->qloss;
}
float *lstm__net_params(lstm_net *n) {
    return n->p;
}
float *lstm__net_grads(lstm_net *n) {
    return n->g;
}

static void forward(lstm_net *n, const float *x, int b) {
    int C = n->C, hid = n->hid, G = 4 * hid;
    for (int l = 0; l < LSTM_LAYERS; l++) {
        int in = n->in[l], w = in + hid;
        for (int t = 0; t < C; t++) {
            float *cat = n->cat[l] + (size_t)t * (size_t)n->B * (size_t)w;
            const float *hp = t ? n->h[l] + (size_t)(t - 1) * (size_t)n->B * (size_t)hid : n->zeros;
            const float *cp = t ? n->c[l] + (size_t)(t - 1) * (size_t)n->B * (size_t)hid : n->zeros;
            for (int r = 0; r < b; r++) {
                if (l == 0)
                    cat[(size_t)r * (size_t)w] = x[(size_t)r * (size_t)C + (size_t)t];
                else
                    memcpy(cat + (size_t)r * (size_t)w,
                           n->h[0] + ((size_t)t * (size_t)n->B + (size_t)r) * (size_t)hid,
                           (size_t)hid * sizeof(float));
                memcpy(cat + (size_t)r * (size_t)w + in, hp + (size_t)r * (size_t)hid,
                       (size_t)hid * sizeof(float));
            }
            float *a = n->act[l] + (size_t)t * (size_t)n->B * (size_t)G;
            for (int r = 0; r < b; r++)
                memcpy(a + (size_t)r * (size_t)G, n->p + n->off_b[l], (size_t)G * sizeof(float));
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, G, w, 1.0f, cat, w,
                        n->p + n->off_w[l], w, 1.0f, a, G);
            float *c = n->c[l] + (size_t)t * (size_t)n->B * (size_t)hid;
            float *tc = n->tc[l] + (size_t)t * (size_t)n->B * (size_t)hid;
            float *h = n->h[l] + (size_t)t * (size_t)n->B * (size_t)hid;
            for (int r = 0; r < b; r++) {
                float *ar = a + (size_t)r * (size_t)G;
                for (int j = 0; j < hid; j++) {
                    float ig = sigf(ar[j]), fg = sigf(ar[hid + j]), gg = tanhf(ar[2 * hid + j]),
                          og = sigf(ar[3 * hid + j]);
                    ar[j] = ig;
                    ar[hid + j] = fg;
                    ar[2 * hid + j] = gg;
                    ar[3 * hid + j] = og;
                    size_t q = (size_t)r * (size_t)hid + (size_t)j;
                    c[q] = fg * cp[q] + ig * gg;
                    tc[q] = tanhf(c[q]);
                    h[q] = og * tc[q];
                }
            }
        }
    }
    const float *hT = n->h[LSTM_LAYERS - 1] + (size_t)(C - 1) * (size_t)n->B * (size_t)hid;
    for (int r = 0; r < b; r++)
        memcpy(n->out + (size_t)r * (size_t)n->H, n->p + n->off_bo, (size_t)n->H * sizeof(float));
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, b, n->H, hid, 1.0f, hT, hid,
                n->p + n->off_wo, hid, 1.0f, n->out, n->H);
}

void lstm__net_forward(lstm_net *n, const float *x, int b, float *out) {
    forward(n, x, b);
    memcpy(out, n->out, (size_t)b * (size_t)n->H * sizeof *out);
}

/* The last hidden state of the top layer: the features the point and quantile heads read. */
static const float *last_hidden(const lstm_net *n) {
    return n->h[LSTM_LAYERS - 1] + (size_t)(n->C - 1) * (size_t)n->B * (size_t)n->hid;
}

void lstm__net_forward_q(lstm_net *n, const float *x, int b, float *out) {
    forward(n, x, b);
    fc__qhead_forward(n->p + n->np, last_hidden(n), n->hid, n->out, n->H, b, out);
}

/* The quantile heads on the last forward pass: outputs, pinball loss and, with grad, their
 * gradient; nothing flows back into the LSTM. */
static double qheads_step(lstm_net *n, const float *y, int b, int grad) {
    fc__qhead_forward(n->p + n->np, last_hidden(n), n->hid, n->out, n->H, b, n->qout);
    double loss = fc__qhead_loss(n->qout, y, n->H, b, n->dq);
    if (grad) fc__qhead_backward(n->g + n->np, n->dq, last_hidden(n), n->hid, n->H, b);
    return loss;
}

double lstm__net_step(lstm_net *n, const float *x, const float *y, int b, int grad) {
    int C = n->C, H = n->H, hid = n->hid, G = 4 * hid;
    forward(n, x, b);
    double loss = 0;
    float inv = 1.0f / (float)(b * H);
    for (size_t i = 0; i < (size_t)b * (size_t)H; i++) {
        float e = n->out[i] - y[i];
        loss += fabsf(e);
        n->dout[i] = e > 0 ? inv : (e < 0 ? -inv : 0);
    }
    loss /= (double)b * H;
    n->qloss = qheads_step(n, y, b, grad);
    if (!grad) return loss;
    float *g = n->g;
    memset(g, 0, n->np * sizeof *g);
    const float *hT = n->h[LSTM_LAYERS - 1] + (size_t)(C - 1) * (size_t)n->B * (size_t)hid;
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, H, hid, b, 1.0f, n->dout, H, hT, hid, 0.0f,
                g + n->off_wo, hid);
    for (int i = 0; i < H; i++) {
        float s = 0;
        for (int r = 0; r < b; r++)
            s += n->dout[r * H + i];
        g[n->off_bo + (size_t)i] = s;
    }
    size_t bh = (size_t)b * (size_t)hid;
    for (int l = LSTM_LAYERS - 1; l >= 0; l--) {
        int in = n->in[l], w = in + hid;
        memset(n->dh, 0, bh * sizeof(float));
        memset(n->dc, 0, bh * sizeof(float));
        if (l == LSTM_LAYERS - 1)
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, hid, H, 1.0f, n->dout, H,
                        n->p + n->off_wo, hid, 0.0f, n->dh, hid);
        for (int t = C - 1; t >= 0; t--) {
            size_t ts = (size_t)t * (size_t)n->B;
            if (l < LSTM_LAYERS - 1)
                for (size_t q = 0; q < bh; q++)
                    n->dh[q] += n->dbelow[ts * (size_t)hid + q];
            const float *a = n->act[l] + ts * (size_t)G, *tc = n->tc[l] + ts * (size_t)hid;
            const float *cp = t ? n->c[l] + (ts - (size_t)n->B) * (size_t)hid : n->zeros;
            for (int r = 0; r < b; r++) {
                const float *ar = a + (size_t)r * (size_t)G;
                float *dar = n->da + (size_t)r * (size_t)G;
                for (int j = 0; j < hid; j++) {
                    size_t q = (size_t)r * (size_t)hid + (size_t)j;
                    float ig = ar[j], fg = ar[hid + j], gg = ar[2 * hid + j], og = ar[3 * hid + j];
                    float dh = n->dh[q];
                    float dc = n->dc[q] + dh * og * (1 - tc[q] * tc[q]);
                    dar[j] = dc * gg * ig * (1 - ig);
                    dar[hid + j] = dc * cp[q] * fg * (1 - fg);
                    dar[2 * hid + j] = dc * ig * (1 - gg * gg);
                    dar[3 * hid + j] = dh * tc[q] * og * (1 - og);
                    n->dc[q] = dc * fg;
                }
            }
            const float *cat = n->cat[l] + ts * (size_t)w;
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, G, w, b, 1.0f, n->da, G, cat, w,
                        1.0f, g + n->off_w[l], w);
            for (int r = 0; r < b; r++)
                for (int j = 0; j < G; j++)
                    g[n->off_b[l] + (size_t)j] += n->da[(size_t)r * (size_t)G + (size_t)j];
            cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, b, w, G, 1.0f, n->da, G,
                        n->p + n->off_w[l], w, 0.0f, n->dcat, w);
            for (int r = 0; r < b; r++) {
                memcpy(n->dh + (size_t)r * (size_t)hid, n->dcat + (size_t)r * (size_t)w + in,
                       (size_t)hid * sizeof(float));
                if (l > 0)
                    memcpy(n->dbelow + (ts + (size_t)r) * (size_t)hid,
                           n->dcat + (size_t)r * (size_t)w, (size_t)hid * sizeof(float));
            }
        }
    }
    return loss;
}

void lstm__net_adam(lstm_net *n, float lr) {
    n->t++;
    fc__adam(n->p, n->g, n->m, n->v, n->np, fc__adam_consts(n->t, lr));
    /* separately: one call over np + nq would move the trunk's last values from the scalar
     * tail of fc__adam to its vector body, which rounds differently */
    fc__adam(n->p + n->np, n->g + n->np, n->m + n->np, n->v + n->np, n->nq,
             fc__adam_consts(n->t, lr));
}

/* ---- the forecaster ----------------------------------------------------------------------- */

#define LSTM_HIDDEN 50
#define LSTM_BATCH 32
#define LSTM_EPOCH_BATCHES 50
#define LSTM_PATIENCE 4
/* default epoch cap: about 30 s on one idle core at context 120, horizon 60 */
#define LSTM_MAX_EPOCHS 25
#define LSTM_VAL_WINDOWS 512

typedef struct lstm_fc {
    fc_options opt;
    int C, H;
    lstm_net *net;
    float qadd[FC_NQ]; /* conformal correction of each quantile head (scaled units) */
} lstm_fc;

/* Scaled context of the window ending before `end`; returns the scale (0: unusable). */
static double window_x(int C, const double *y, const unsigned char *mask, long end, float *x) {
    double sum = 0;
    int cnt = 0;
    for (int j = 0; j < C; j++) {
        long i = end - C + j;
        if (i >= 0 && mask[i]) {
            sum += y[i];
            cnt++;
        }
    }
    double mean = cnt ? sum / cnt : 0;
    if (!(mean > 0)) return 0;
    for (int j = 0; j < C; j++) {
        long i = end - C + j;
        x[j] = (float)((i >= 0 && mask[i] ? y[i] : mean) / mean);
    }
    return mean;
}

static int create(void **state, const fc_options *opt, char *err, size_t errlen) {
    (void)err, (void)errlen;
    lstm_fc *m = calloc(1, sizeof *m);
    if (!m) return -ENOMEM;
    if (opt) m->opt = *opt;
    *state = m;
    return 0;
}

/* fc_train callbacks; the batch buffers live in the forecaster while it fits */
typedef struct lstm_fit {
    lstm_fc *m;
    const fc_series *train;
    const unsigned char *mask;
    float *bx, *by;
} lstm_fit;

static double fit_inputs(void *ctx, long e, int row) {
    lstm_fit *f = ctx;
    return window_x(f->m->C, f->train->y, f->mask, e, f->bx + (size_t)row * (size_t)f->m->C);
}

static void fit_train_batch(void *ctx, int b) {
    lstm_fit *f = ctx;
    lstm__net_step(f->m->net, f->bx, f->by, b, 1);
    lstm__net_adam(f->m->net, 2e-3f);
}

static double fit_loss(void *ctx, int b) {
    lstm_fit *f = ctx;
    return lstm__net_step(f->m->net, f->bx, f->by, b, 0);
}

static void fit_qforward(void *ctx, int b, float *out) {
    lstm_fit *f = ctx;
    lstm__net_forward_q(f->m->net, f->bx, b, out);
}

/* The heads' conformal correction on the validation windows (see fc__qhead_calibrate). */
static int calibrate_heads(lstm_fc *m, const fc_train *t, char *err, size_t errlen) {
    double raw[FC_NQ], fixed[FC_NQ];
    int rc = fc__qhead_calibrate(t, fit_qforward, m->qadd, raw, fixed, err, errlen);
    if (rc == 0 && m->opt.verbose)
        fprintf(stderr,
                "lstm: held-out coverage of the p10/p90 heads %.3f/%.3f, corrected by %+.4f/%+.4f "
                "to %.3f/%.3f\n",
                raw[0], raw[1], (double)m->qadd[0], (double)m->qadd[1], fixed[0], fixed[1]);
    return rc;
}

static int fit(void *state, const fc_series *train, double *tp, char *err, size_t errlen) {
    lstm_fc *m = state;
    *tp = 0;
    lstm__net_free(m->net);
    m->net = NULL;
    m->H = fc__horizon(m->opt.horizon, train->step);
    m->C = m->opt.context > 0 ? m->opt.context : 120;
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    int C = m->C, H = m->H;
    unsigned char *mask = NULL;
    long *pos = NULL, npos = 0;
    float *bx = malloc((size_t)LSTM_BATCH * (size_t)C * sizeof *bx);
    float *by = malloc((size_t)LSTM_BATCH * (size_t)H * sizeof *by);
    int rc = !bx || !by ? -ENOMEM
                        : fc__train_select("lstm", train, C, H, LSTM_BATCH, &mask, &pos, &npos, err,
                                           errlen);
    if (rc != 0) goto out;
    m->net = lstm__net_new(C, H, LSTM_HIDDEN, LSTM_BATCH, m->opt.seed ? m->opt.seed : 1);
    if (!m->net) {
        rc = -ENOMEM;
        goto out;
    }
    lstm_fit f = {m, train, mask, bx, by};
    fc_train t = {
        .name = "lstm",
        .batch = LSTM_BATCH,
        .epoch_batches = LSTM_EPOCH_BATCHES,
        .patience = LSTM_PATIENCE,
        .max_epochs = LSTM_MAX_EPOCHS,
        .val_windows = LSTM_VAL_WINDOWS,
        .opt = &m->opt,
        .salt = 0x15a7ull,
        .pos = pos,
        .npos = npos,
        .y = train->y,
        .H = H,
        .by = by,
        .params = lstm__net_params(m->net), /* the LSTM and the quantile heads after it */
        .nparams = lstm__net_nparams(m->net) + lstm__net_nqparams(m->net),
        .ctx = &f,
        .inputs = fit_inputs,
        .train_batch = fit_train_batch,
        .loss = fit_loss,
    };
    rc = fc__train_run(&t, tp, err, errlen);
    if (rc == 0) rc = calibrate_heads(m, &t, err, errlen);
out:
    free(by);
    free(bx);
    free(pos);
    free(mask);
    if (rc != 0) {
        lstm__net_free(m->net);
        m->net = NULL;
    }
    return rc;
}

static double predict_inputs(void *net, const fc_series *ctx, const unsigned char *mask, float *x) {
    const lstm_fc *m = net;
    return window_x(m->C, ctx->y, mask, (long)ctx->n, x);
}

static void predict_forward(void *net, const float *x, float *o) {
    const lstm_fc *m = net;
    lstm__net_forward(m->net, x, 1, o);
}

static int predict(const void *state, const fc_series *ctx, int h, double *out, char *err,
                   size_t errlen) {
    (void)err, (void)errlen;
    const lstm_fc *m = state;
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    return fc__predict_window(ctx, m->C, m->H, h, out, (void *)m, predict_inputs, predict_forward);
}

/* Quantile forecasts from the heads: the forward pass fills all levels, level k is kept. */
typedef struct lstm_predict_q {
    const lstm_fc *m;
    int k;
    float *buf; /* FC_NQ x H */
} lstm_predict_q;

static double predict_inputs_q(void *net, const fc_series *ctx, const unsigned char *mask,
                               float *x) {
    const lstm_predict_q *pq = net;
    return window_x(pq->m->C, ctx->y, mask, (long)ctx->n, x);
}

static void predict_forward_q(void *net, const float *x, float *o) {
    lstm_predict_q *pq = net;
    const lstm_fc *m = pq->m;
    lstm__net_forward_q(m->net, x, 1, pq->buf);
    for (int i = 0; i < m->H; i++)
        o[i] = pq->buf[pq->k * m->H + i] + m->qadd[pq->k];
}

static int predict_quantile(const void *state, const fc_series *ctx, int h, double q, double *out,
                            char *err, size_t errlen) {
    (void)err, (void)errlen;
    const lstm_fc *m = state;
    int k = fc__q_index(q);
    if (k < 0 || !m->net) return -ENOTSUP;
    openblas_set_num_threads(m->opt.threads > 0 ? m->opt.threads : 1);
    lstm_predict_q pq = {
        .m = m, .k = k, .buf = malloc((size_t)FC_NQ * (size_t)m->H * sizeof(float))};
    if (!pq.buf) return -ENOMEM;
    int rc = fc__predict_window(ctx, m->C, m->H, h, out, &pq, predict_inputs_q, predict_forward_q);
    free(pq.buf);
    return rc;
}

static void destroy(void *state) {
    lstm_fc *m = state;
    if (!m) return;
    lstm__net_free(m->net);
    free(m);
}

const fc_model_ops fc__model_lstm = {"lstm", create,           fit, predict, destroy, NULL,
                                     NULL,   predict_quantile, NULL};
