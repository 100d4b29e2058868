/* lstm.h: the two-layer LSTM network of the "lstm" forecaster (hidden 50 by default, a direct
 * H-step linear head on the last hidden state of the top layer), exposed for the gradient
 * check. Inputs are the context values scaled by their mean; the loss is the mean absolute
 * error on scaled values. Internal to the forecasting engine. */
#ifndef TIDE_MODELS_LSTM_H
#define TIDE_MODELS_LSTM_H

#include <stddef.h>
#include <stdint.h>

typedef struct lstm_net lstm_net;

/* Context C, horizon H, hidden units hid, batches up to B. NULL when out of memory. */
lstm_net *lstm__net_new(int C, int H, int hid, int B, uint64_t seed);
void lstm__net_free(lstm_net *n);
size_t lstm__net_nparams(const lstm_net *n);
float *lstm__net_params(lstm_net *n);
float *lstm__net_grads(lstm_net *n);
/* Forward on b windows (x: b x C, y: b x H), backward when grad != 0; returns the loss. */
double lstm__net_step(lstm_net *n, const float *x, const float *y, int b, int grad);
/* Forward only: out = b x H. */
void lstm__net_forward(lstm_net *n, const float *x, int b, float *out);
/* The quantile heads (qhead.h) on the last hidden state: lstm__net_nqparams values right
 * after the trunk's in lstm__net_params / lstm__net_grads. lstm__net_step computes them and
 * (grad) their pinball-loss gradient, whose value lstm__net_qloss returns; none of it reaches
 * the LSTM. lstm__net_forward_q: out = b x FC_NQ*H scaled quantile forecasts. */
size_t lstm__net_nqparams(const lstm_net *n);
double lstm__net_qloss(const lstm_net *n);
void lstm__net_forward_q(lstm_net *n, const float *x, int b, float *out);
/* Adam update from the current gradients (the heads' too). */
void lstm__net_adam(lstm_net *n, float lr);

#endif
