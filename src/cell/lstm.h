// lstm.h: the LSTM layer (PyTorch's torch.nn.LSTM: gates i, f, g, o; state (h, c)).
//
//   i = σ(W_ii x + b_ii + W_hi h' + b_hi)      f = σ(W_if x + b_if + W_hf h' + b_hf)
//   g = tanh(W_ig x + b_ig + W_hg h' + b_hg)   o = σ(W_io x + b_io + W_ho h' + b_ho)
//   c = f ⊙ c' + i ⊙ g                          h = o ⊙ tanh(c)
//
// Weights as torch: w_ih (4H,I), w_hh (4H,H), b_ih, b_hh (4H), gate blocks i, f, g, o.
// Sequences are time-major (T,B,·). The backward pass is split as the GRU's
// (gru.h), with the cell state's gradient as a second recurrence:
//   δh_t = e_t + [J^hh_{t+1}]ᵀ δh_{t+1} (+ the h→c path in BPTT)
//   ĉ_t  = δh_t ⊙ o_t ⊙ (1 − tanh² c_t)                  (the local map h → c)
//   δc_t = ĉ_t + f_{t+1} ⊙ δc_{t+1}                        (exact in BPTT; a_c in DSF)
// lstm_backward_local turns (δh, δc) at every step into the gate gradients; the
// parameter and input gradients are then the same large GEMMs as the GRU's.
#ifndef DSF_LSTM_H
#define DSF_LSTM_H

#include <stddef.h>

#include "cell/cell.h"

// Floats of cell_cache.wpack for H units.
size_t lstm_pack_floats(int H);

// x (T,B,I); starts from cache->h[0], cache->c[0]; scratch (T,B,4H). x NULL:
// scratch already holds x W_ihᵀ + b_ih + b_hh (cell_input_proj).
void lstm_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch, int T,
                  int B, int I, int H);

// ĉ (n,H) = δh ⊙ o ⊙ (1 − tanh² c) for n rows (c the cell states of those rows).
void lstm_c_local(const float *dh, const float *gates, const float *c, float *chat, int n, int H);

// Gate gradients ga (n,4H) = pre-activation gradients [âi, âf, âg, âo] from the
// state gradients δh (n,H) and the total cell gradient δc (n,H) of the same rows;
// c_prev, c are the rows' previous and new cell states. (For the LSTM gi = gh.)
void lstm_backward_local(const float *dh, const float *dc, const float *c_prev, const float *c,
                         const float *gates, float *ga, int n, int H);

// BPTT for one layer: e (T,B,H) local errors in, δh out; dc_work (T,B,H) the δc of
// every step out; dc_end (B,H), unless NULL, a gradient reaching the last cell
// state from outside (a module's c_n); ga (T,B,4H) the gate gradients; carry (B,H)
// scratch.
void lstm_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *dc_work,
                        const float *dc_end, float *ga, float *carry, int T, int B, int H);

// Parameter gradients (accumulated) and, unless dx is NULL, dx (T,B,I) = ga W_ih;
// x NULL: neither dW_ih nor dx (the caller's).
void lstm_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                          const float *ga, cell_grads *g, float *dx, int T, int B, int I, int H);

// The exact diagonal of ∂h_t/∂h_{t-1} (through the gates, at fixed c_{t-1}) for n rows:
//   o(1−o) W_ho[i,i] tanh c + o (1 − tanh² c)(c' f(1−f) W_hf[i,i] + g i(1−i) W_hi[i,i]
//                                             + i (1−g²) W_hg[i,i])
// (the c→c diagonal is f itself).
void lstm_jacobian_diag(const cell_weights *w, const float *c_prev, const float *c,
                        const float *gates, float *diag, int n, int H);

#endif
