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

typedef struct nf_net nf_net;

/* A network for context C, horizon H, batches up to B; weights drawn from seed.
 * vocab[t] = rows of table t. NULL when out of memory. */
nf_net *nf__net_new(int C, int H, int B, const int vocab[NF_NTAB], uint64_t seed);
void nf__net_free(nf_net *n);
size_t nf__net_nparams(const nf_net *n);
/* All parameters / their gradients as one flat array (same layout). */
float *nf__net_params(nf_net *n);
float *nf__net_grads(nf_net *n);
/* Forward (and backward when grad != 0, filling the gradients) on b windows: x is b x C
 * scaled context rows, idx is b x NF_NEMB embedding indices, y is b x H scaled targets.
 * Returns the mean absolute error. */
double nf__net_step(nf_net *n, const float *x, const int *idx, const float *y, int b, int grad);
/* Forward only: out = b x H scaled forecasts. */
void nf__net_forward(nf_net *n, const float *x, const int *idx, int b, float *out);
/* One Adam update with learning rate lr from the current gradients. */
void nf__net_adam(nf_net *n, float lr);
/* nf__net_step with gradients followed by the Adam update, fused: each parameter block is
 * updated as soon as its gradient is complete (the same result, less memory traffic). The
 * W1/W2 gradients exist only panel by panel in a scratch buffer, so nf__net_grads holds just
 * the embedding and head gradients afterwards. */
double nf__net_train_step(nf_net *n, const float *x, const int *idx, const float *y, int b,
                          float lr);
/* The quantile heads (qhead.h): nf__net_nqparams values right after the nf__net_nparams
 * trunk parameters in nf__net_params (and nf__net_grads). nf__net_step and the train step
 * also compute, train and (nf__net_adam) update them from the pinball loss, which
 * nf__net_qloss returns for the last step; their gradient never reaches the trunk. */
size_t nf__net_nqparams(const nf_net *n);
double nf__net_qloss(const nf_net *n);
/* Forward with the heads: out = b x FC_NQ*H scaled quantile forecasts (level major per row). */
void nf__net_forward_q(nf_net *n, const float *x, const int *idx, int b, float *out);
/* Floating-point operations of one training window (forward + backward GEMMs). */
double nf__flops_per_window(int C, int H);

#endif
