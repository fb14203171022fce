// gru.h: the GRU layer (PyTorch's torch.nn.GRU: gates r, z, n; "linear before reset").
//
//   r = σ(W_ir x + b_ir + W_hr h' + b_hr)
//   z = σ(W_iz x + b_iz + W_hz h' + b_hz)
//   q = W_hn h' + b_hn
//   n = tanh(W_in x + b_in + r ⊙ q)
//   h = (1 − z) ⊙ n + z ⊙ h'
//
// All sequences are time-major: (T,B,·), so one step is one contiguous (B,·) block.
// The forward pass is sequential in time; the backward pass is split in three so
// that the gradient methods share everything except the state-gradient recurrence:
//   gru_backward_local   δ (dL/dh) at every step -> gate gradients gi, gh (elementwise)
//   gru_backward_jt      the exact J_{t+1}ᵀ δ_{t+1} that only BPTT needs (one GEMM a step)
//   gru_backward_params  parameter and input gradients, large GEMMs over all T·B rows
#ifndef DSF_GRU_H
#define DSF_GRU_H

#include <stddef.h>

#include "cell/cell.h"

// Floats of cell_cache.wpack for hidden size H.
size_t gru_pack_floats(int H);

// x is (T,B,I). Uses cache->h[0] as the initial state and fills the rest of the
// cache. scratch is (T,B,3H); x NULL: scratch already holds the input side of the
// gates, x W_ihᵀ + b_ih (cell_input_proj; model/lm.c's projected embedding). With
// cache->wpack the T steps run in one parallel region, each step split into tasks
// of DSF_PANEL hidden units (all three gates of them) that the threads take in
// turn (core/stages.h); else one GEMM a step.
void gru_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch, int T,
                 int B, int I, int H);

// For rows r0..r0+n of the flattened (T·B) steps: given the state gradients
// delta (n,H), writes gi (n,3H) = [âr, âz, ân] and gh (n,3H) = [âr, âz, ân ⊙ r].
// h_prev, gates and q are the cache rows of the same steps.
void gru_backward_local(const float *delta, const float *h_prev, const float *gates,
                        const float *q, float *gi, float *gh, int n, int H);

// BPTT's state-gradient recurrence, δ_t = e_t + J_{t+1}ᵀ δ_{t+1}, with the local
// backward of every step inside it (the carry needs step t+1's gate gradients):
// e (T,B,H) holds the local errors on entry and δ on return; gi, gh (T,B,3H) as
// gru_backward_local; carry (B,H) scratch. With cache->wpack, one parallel region
// for all T steps, W_hh packed once, each step split into tasks of DSF_PANEL hidden
// units as in gru_forward; else one GEMM a step through gru_backward_jt.
void gru_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *gi,
                       float *gh, float *carry, int T, int B, int H);

// carry (B,H) = J_{t+1}ᵀ δ_{t+1} = δ ⊙ z + gh · W_hh, for one step: the exact
// state-to-state Jacobian transpose (BPTT's sequential, O(H²) part).
void gru_backward_jt(const cell_weights *w, const float *delta, const float *gates,
                     const float *gh, float *carry, int B, int H);

// Parameter gradients (accumulated) and, if dx is not NULL, the input gradient
// dx (T,B,I) = gi · W_ih, from gi, gh (T,B,3H), the inputs x (T,B,I) and the
// previous states cache->h[0..T). x NULL: no dW_ih and no dx (the caller's).
void gru_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                         const float *gi, const float *gh, cell_grads *g, float *dx, int T, int B,
                         int I, int H);

// The exact diagonal of ∂h_t/∂h_{t-1} for one step (B,H), as docs/DESIGN.md §2.
void gru_jacobian_diag(const cell_weights *w, const float *h_prev, const float *gates,
                       const float *q, float *diag, int B, int H);

#endif
