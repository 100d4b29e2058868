/* train.c: the training loop shared by the network forecasters. See train.h. */
#include "models/train.h"
#include "models/model.h"
#include "errmsg.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9e3779b97f4a7c15ull);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}

double fc__uniform(uint64_t *s) {
    return (double)(splitmix(s) >> 11) * (1.0 / 9007199254740992.0);
}

double fc__now_s(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

long fc__train_windows(const unsigned char *mask, long n, int C, int H, long *pos) {
    long npos = 0, bad = 0; /* bad: masked values in [i-C-H+1, i] */
    for (long i = 0; i < n; i++) {
        if (!mask[i]) bad++;
        if (i >= C + H && !mask[i - C - H]) bad--;
        long e = i + 1 - H;
        if (e >= C && bad == 0) pos[npos++] = e;
    }
    return npos;
}

int fc__train_select(const char *name, const fc_series *train, int C, int H, int batch,
                     unsigned char **mask, long **pos, long *npos, char *err, size_t errlen) {
    long n = (long)train->n;
    *npos = 0;
    *mask = malloc((size_t)(n > 0 ? n : 1));
    *pos = malloc((size_t)(n > 0 ? n : 1) * sizeof **pos);
    if (!*mask || !*pos) return -ENOMEM;
    fc__mask_outages(train->y, (size_t)n, train->step, *mask);
    *npos = fc__train_windows(*mask, n, C, H, *pos);
    if (*npos < 2 * batch) {
        snprintf(err, errlen, "%s: too little usable history (%ld windows of %d+%d steps)", name,
                 *npos, C, H);
        return -EINVAL;
    }
    return 0;
}

/* Loads the window ending at e into row b (inputs and targets); 0 when it is unusable. */
static int load(const fc_train *t, long e, int b) {
    double sc = t->inputs(t->ctx, e, b);
    if (sc <= 0) return 0;
    for (int j = 0; j < t->H; j++)
        t->by[(size_t)b * (size_t)t->H + (size_t)j] = (float)(t->y[e + j] / sc);
    return 1;
}

/* Keeps the windows the model can scale (a positive context mean), in place: sampling must
 * never spin on a series whose windows are all unusable (negative or zero values), and rarely
 * usable windows would otherwise slow every batch. */
static void keep_usable_windows(fc_train *t) {
    long n = 0;
    for (long k = 0; k < t->npos; k++)
        if (t->inputs(t->ctx, t->pos[k], 0) > 0) t->pos[n++] = t->pos[k];
    t->npos = n;
}

int fc__train_run(fc_train *t, double *throughput, char *err, size_t errlen) {
    *throughput = 0;
    keep_usable_windows(t);
    const long *pos = t->pos, npos = t->npos;
    if (npos < 2 * t->batch)
        return errmsg(err, errlen, -EINVAL,
                      "%s: too little usable history (%ld windows with a positive context mean, "
                      "need %d; the networks scale by it, so series with negative or zero values "
                      "cannot be learned)",
                      t->name, npos, 2 * t->batch);
    float *best = malloc(t->nparams ? t->nparams * sizeof *best : 1);
    if (!best) return -ENOMEM;
    long nval = npos / 10, ntr = npos - nval;
    int max_epochs = t->opt->max_epochs > 0 ? t->opt->max_epochs : t->max_epochs;
    uint64_t rng = (t->opt->seed ? t->opt->seed : 1) ^ t->salt;
    /* Training stops after max_epochs epochs or `patience` epochs without a better validation
     * loss, whichever comes first: both depend on the data and the seed only. The wall-clock
     * limit, when set, is a safety abort that fails the fit. */
    double abort_s = t->opt->max_fit_seconds;
    double t_start = fc__now_s(), train_time = 0, best_loss = INFINITY;
    long windows = 0;
    int since_best = 0, epoch = 0;
    while (since_best < t->patience && epoch < max_epochs) {
        double t0 = fc__now_s();
        for (int bt = 0; bt < t->epoch_batches; bt++) {
            if (abort_s > 0 && fc__now_s() - t_start > abort_s) {
                snprintf(
                    err, errlen,
                    "%s: training aborted after %.1f s (max_fit_seconds %g) in epoch %d of %d; "
                    "raise the limit or set it to 0",
                    t->name, fc__now_s() - t_start, abort_s, epoch + 1, max_epochs);
                free(best);
                return -ETIMEDOUT;
            }
            int b = 0;
            while (b < t->batch)
                b += load(t, pos[(long)(fc__uniform(&rng) * (double)ntr)], b);
            t->train_batch(t->ctx, t->batch);
            windows += t->batch;
        }
        train_time += fc__now_s() - t0;
        /* validation loss on up to val_windows evenly spread held-out windows */
        double vl = 0;
        long vc = 0, vstride = nval / t->val_windows + 1;
        for (long k = ntr; k < npos;) {
            int b = 0;
            for (; b < t->batch && k < npos; k += vstride)
                b += load(t, pos[k], b);
            if (b == 0) break;
            vl += t->loss(t->ctx, b) * b;
            vc += b;
        }
        vl = vc ? vl / (double)vc : INFINITY;
        epoch++;
        if (vl < best_loss - 1e-5) {
            best_loss = vl;
            since_best = 0;
            memcpy(best, t->params, t->nparams * sizeof *best);
        } else {
            since_best++;
        }
        if (t->opt->verbose)
            fprintf(stderr, "%s: epoch %d: validation L1 %.5f (best %.5f), %.0f windows/s\n",
                    t->name, epoch, vl, best_loss, (double)windows / train_time);
    }
    if (isfinite(best_loss)) memcpy(t->params, best, t->nparams * sizeof *best);
    *throughput = train_time > 0 ? (double)windows / train_time : 0;
    free(best);
    return 0;
}

int fc__predict_window(const fc_series *ctx, int C, int H, int h, double *out, void *net,
                       double (*inputs)(void *net, const fc_series *ctx, const unsigned char *mask,
                                        float *x),
                       void (*forward)(void *net, const float *x, float *o)) {
    float *x = malloc((size_t)C * sizeof *x), *o = malloc((size_t)H * sizeof *o);
    unsigned char *mask = malloc(ctx->n ? ctx->n : 1);
    if (!x || !o || !mask) {
        free(x);
        free(o);
        free(mask);
        return -ENOMEM;
    }
    fc__mask_outages(ctx->y, ctx->n, ctx->step, mask);
    double sc = inputs(net, ctx, mask, x);
    if (sc <= 0) {
        double last = fc__last_value(ctx);
        for (int i = 0; i < h; i++)
            out[i] = last;
    } else {
        forward(net, x, o);
        for (int i = 0; i < h; i++)
            out[i] = (double)o[i < H ? i : H - 1] * sc;
    }
    free(x);
    free(o);
    free(mask);
    return 0;
}
