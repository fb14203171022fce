// elman.h: the Elman layer (PyTorch's torch.nn.RNN with tanh).
//
//   h = tanh(W_ih x + b_ih + W_hh h' + b_hh)
//
// Weights as torch: w_ih (H,I), w_hh (H,H), b_ih, b_hh (H). Sequences are
// time-major (T,B,·); the backward pass is split as the GRU's (gru.h).
#ifndef DSF_ELMAN_H
#define DSF_ELMAN_H

#include <stddef.h>

#include "cell/cell.h"

// Floats of cell_cache.wpack for H units.
size_t elman_pack_floats(int H);

// x (T,B,I); starts from cache->h[0]; scratch (T,B,H). x NULL: scratch already
// holds x W_ihᵀ + b_ih + b_hh (cell_input_proj).
void elman_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch,
                   int T, int B, int I, int H);
// ga (n,H) = δ ⊙ (1 − h²) for n rows with outputs h (the pre-activation gradient; gi = gh).
void elman_backward_local(const float *delta, const float *h, float *ga, int n, int H);
// BPTT for one layer: e (T,B,H) local errors in, δ out; ga (T,B,H); carry (B,H) scratch.
void elman_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *ga,
                         float *carry, int T, int B, int H);
// Parameter gradients (accumulated) and, unless dx is NULL, dx (T,B,I) = ga W_ih;
// x NULL: neither dW_ih nor dx (the caller's).
void elman_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                           const float *ga, cell_grads *g, float *dx, int T, int B, int I, int H);
// The exact diagonal of ∂h_t/∂h_{t-1}: (1 − h_t²) W_hh[i,i], for n rows of outputs h.
void elman_jacobian_diag(const cell_weights *w, const float *h, float *diag, int n, int H);

#endif
