/* train.h: the training loop the windowed network forecasters ("neural", "lstm") share:
 * usable-window selection, epochs of randomly sampled batches, validation on evenly spread
 * held-out windows, early stopping with patience, the max_fit_seconds safety abort, keeping
 * the best parameters, and throughput accounting. Internal to the forecasting engine. */
#ifndef TIDE_MODELS_TRAIN_H
#define TIDE_MODELS_TRAIN_H

#include "models/forecast.h"

#include <stddef.h>
#include <stdint.h>

/* A uniform double in [0, 1) from the splitmix64 state *s (deterministic given the seed). */
double fc__uniform(uint64_t *s);

/* Seconds on the monotonic clock. */
double fc__now_s(void);

/* Fills pos with the ends e of the windows (context [e-C, e), target [e, e+H)) whose values
 * are all unmasked, ascending. pos holds at least n entries. Returns their number. */
long fc__train_windows(const unsigned char *mask, long n, int C, int H, long *pos);

/* Masks train's outages into a new *mask and collects its usable windows into a new *pos
 * (*npos of them); the caller frees both, also on error. -ENOMEM, or -EINVAL with err filled
 * (prefixed by name) when there are fewer than two batches of windows. */
int fc__train_select(const char *name, const fc_series *train, int C, int H, int batch,
                     unsigned char **mask, long **pos, long *npos, char *err, size_t errlen);

typedef struct fc_train {
    const char *name;  /* model name, prefixes messages */
    int batch;         /* windows per batch */
    int epoch_batches; /* training batches per epoch */
    int patience;      /* epochs without a better validation loss before stopping */
    int max_epochs;    /* default when opt->max_epochs is not set */
    int val_windows;   /* validation uses up to about this many held-out windows */
    /* max_epochs, max_fit_seconds (> 0: abort the fit with -ETIMEDOUT when it runs longer),
     * verbose (a line per epoch on stderr) and the seed come from here */
    const fc_options *opt;
    uint64_t salt; /* window sampling draws from the seed (1 when unset) ^ salt */
    long *pos;     /* window ends from fc__train_windows; the last tenth validates.
                    * fc__train_run keeps only the usable ones (a positive scale), in
                    * place, so later passes (fc__qhead_calibrate) see the same windows */
    long npos;
    const double *y; /* the training values: targets are y[e..e+H) / scale */
    int H;
    float *by;     /* batch x H target rows, filled by the loop */
    float *params; /* the parameters kept at the best validation loss and restored */
    size_t nparams;
    void *ctx;
    /* Fills input row `row` for the window ending at e; returns its scale (<= 0: unusable). */
    double (*inputs)(void *ctx, long e, int row);
    /* One training step (gradients and update) on the first b rows. */
    void (*train_batch)(void *ctx, int b);
    /* The mean loss of the first b rows, no update. */
    double (*loss)(void *ctx, int b);
} fc_train;

/* Runs the training; on success leaves the best parameters in t->params and sets *throughput
 * (training windows per second). 0, -ENOMEM, or -ETIMEDOUT with err filled. */
int fc__train_run(fc_train *t, double *throughput, char *err, size_t errlen);

/* The networks' predict step: masks ctx's outages, fills the C-value input window ending at
 * ctx->n through inputs (which returns its scale; <= 0 means unusable, and every step is then
 * ctx's last value), runs forward into H outputs and writes h steps scaled back (beyond H the
 * last output repeats). 0 or -ENOMEM. */
int fc__predict_window(const fc_series *ctx, int C, int H, int h, double *out, void *net,
                       double (*inputs)(void *net, const fc_series *ctx, const unsigned char *mask,
                                        float *x),
                       void (*forward)(void *net, const float *x, float *o));

#endif
