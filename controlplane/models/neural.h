/* neural.h: the squeeze-excitation network of the "neural" forecaster, exposed for the
 * gradient-check test and the throughput benchmark. Internal to the forecasting engine.
 *
 * Input per window: the context x (C values scaled by their mean) and 7 embedding indices
 * (series id; minute, hour, weekday -- or hour, weekday, day of month at steps of an hour or
 * more -- of the first and of the last forecast step). Feature vector (F = 16 C): the 7
 * embeddings (C each), x, q (q_i = x_i - 0.8 x_{i-1}), and x * each embedding. Then four
 * blocks z <- z * sigmoid(W2 relu(W1 z)) (W1: F/2 x F, W2: F x F/2, no bias) and a linear
 * layer to H outputs. Loss: mean absolute error on scaled values. */
#ifndef TIDE_MODELS_NEURAL_H
#define TIDE_MODELS_NEURAL_H

#include <stddef.h>
#include <stdint.h>

#define NF_NEMB 7 /* embedding slots per window */
#define NF_NTAB 4 /* tables: series, and three time features */
#define NF_BLOCKS 4

typedef struct neural_net neural_net;

/* A network for context C, horizon H, batches up to B; weights drawn from seed.
 * vocab[t] = rows of table t. NULL when out of memory. */
neural_net *neural__net_new(int C, int H, int B, const int vocab[NF_NTAB], uint64_t seed);
void neural__net_free(neural_net *n);
size_t neural__net_nparams(const neural_net *n);
/* All parameters / their gradients as one flat array (same layout). */
float *neural__net_params(neural_net *n);
float *neural__net_grads(neural_net *n);
/* Forward (and backward when grad != 0, filling the gradients) on b windows: x is b x C
 * scaled context rows, idx is b x NF_NEMB embedding indices, y is b x H scaled targets.
 * Returns the mean absolute error. */
double neural__net_step(neural_net *n, const float *x, const int *idx, const float *y, int b,
                        int grad);
/* Forward only: out = b x H scaled forecasts. */
void neural__net_forward(neural_net *n, const float *x, const int *idx, int b, float *out);
/* One Adam update with learning rate lr from the current gradients. */
void neural__net_adam(neural_net *n, float lr);
/* neural__net_step with gradients followed by the Adam update, fused: each parameter block is
 * updated as soon as its gradient is complete (the same result, less memory traffic). The
 * W1/W2 gradients exist only panel by panel in a scratch buffer, so neural__net_grads holds just
 * the embedding and head gradients afterwards. */
double neural__net_train_step(neural_net *n, const float *x, const int *idx, const float *y, int b,
                              float lr);
/* The quantile heads (qhead.h): neural__net_nqparams values right after the neural__net_nparams
 * trunk parameters in neural__net_params (and neural__net_grads). neural__net_step and the train
 * step also compute, train and (neural__net_adam) update them from the pinball loss, which
 * neural__net_qloss returns for the last step; their gradient never reaches the trunk. */
size_t neural__net_nqparams(const neural_net *n);
double neural__net_qloss(const neural_net *n);
/* Forward with the heads: out = b x FC_NQ*H scaled quantile forecasts (level major per row). */
void neural__net_forward_q(neural_net *n, const float *x, const int *idx, int b, float *out);
/* Floating-point operations of one training window (forward + backward GEMMs). */
double neural__flops_per_window(int C, int H);

#endif
