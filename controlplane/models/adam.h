/* adam.h: the Adam update shared by the neural and LSTM forecasters (AVX2 when the CPU has it). */
#ifndef TIDE_MODELS_ADAM_H
#define TIDE_MODELS_ADAM_H

#include <stddef.h>

typedef struct fc_adam_k {
    float b1, b2, eps, step; /* step = lr * sqrt(1 - b2^t) / (1 - b1^t) */
} fc_adam_k;

/* Constants of Adam step t (t >= 1) at learning rate lr (b1 0.9, b2 0.999, eps 1e-8). */
fc_adam_k fc__adam_consts(long t, float lr);
/* m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2; p -= step m / (sqrt(v) + eps) over len values.
 * Memory-bound: callers run it on each weight block while its gradient is still in cache. */
void fc__adam(float *p, const float *g, float *m, float *v, size_t len, fc_adam_k k);

#endif
