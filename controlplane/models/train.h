/* train.h: the training loop the windowed network forecasters ("neural", "lstm") share:
 * usable-window selection, epochs of randomly sampled batches, validation on evenly spread
 * held-out windows, early stopping with patience, the max_fit_seconds safety abort, keeping
 * the best parameters, and throughput accounting. Internal to the forecasting engine. */
#ifndef TIDE_MODELS_TRAIN_H
#define TIDE_MODELS_TRAIN_H

#include <stddef.h>
#include <stdint.h>

/* A uniform double in [0, 1) from the splitmix64 state *s (deterministic given the seed). */
double fc__uniform(uint64_t *s);

/* Seconds on the monotonic clock. */
double fc__now_s(void);

/* Fills pos with the ends e of the windows (context [e-C, e), target [e, e+H)) whose values
 * are all unmasked, ascending. pos holds at least n entries. Returns their number. */
long fc__train_windows(const unsigned char *mask, long n, int C, int H, long *pos);

typedef struct fc_train {
    const char *name;  /* model name, prefixes messages */
    int batch;         /* windows per batch */
    int epoch_batches; /* training batches per epoch */
    int patience;      /* epochs without a better validation loss before stopping */
    int max_epochs;
    int val_windows;   /* validation uses up to about this many held-out windows */
    double max_fit_seconds; /* > 0: abort the fit (-ETIMEDOUT) when it runs longer */
    int verbose;       /* per-epoch line on stderr */
    uint64_t rng;      /* window sampling state */
    const long *pos;   /* window ends from fc__train_windows; the last tenth validates */
    long npos;
    const double *y;   /* the training values: targets are y[e..e+H) / scale */
    int H;
    float *by;         /* batch x H target rows, filled by the loop */
    float *params;     /* the parameters kept at the best validation loss and restored */
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

#endif
