// layers.h: the non-recurrent layers of the block architecture and of
// regularisation (DESIGN.md §5), each a forward and a backward over n rows of
// width D, row-major, in PyTorch's conventions.
//
//   layernorm  y = (x − μ) / √(σ² + 1e-5) ⊙ γ + β   per row (torch.nn.LayerNorm)
//   gelu       y = x Φ(x) = ½ x (1 + erf(x/√2))        (torch's exact GELU)
//   dropout    y = x ⊙ m, m_k = 0 with probability p, else 1/(1−p)  (inverted)
#ifndef DSF_LAYERS_H
#define DSF_LAYERS_H

#include <stddef.h>

#include "core/common.h"

#define DSF_LN_EPS 1e-5f

// y (n,D); keeps the per-row mean and 1/σ in mean, rstd (n) for the backward pass.
void layernorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                       float *mean, float *rstd, int n, int D);
// dx (n,D) written; dgamma, dbeta (D) accumulated.
void layernorm_backward(const float *dy, const float *x, const float *mean, const float *rstd,
                        const float *gamma, float *dx, float *dgamma, float *dbeta, int n, int D);

void gelu_forward(const float *x, float *y, size_t n);
// dx = dy ⊙ GELU'(x); dx may be dy.
void gelu_backward(const float *dy, const float *x, float *dx, size_t n);

// A fresh mask m (n) for rate p in [0, 1) from rng, then y = x ⊙ m (y may be x).
void dropout_forward(const float *x, float *y, float *mask, size_t n, float p, dsf_rng *rng);
// dx = dy ⊙ m (dx may be dy).
void dropout_backward(const float *dy, const float *mask, float *dx, size_t n);

#endif
