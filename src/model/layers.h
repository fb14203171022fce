// layers.h: the non-recurrent layers of the block architecture and of
// regularisation (docs/DESIGN.md §5), each a forward and a backward over n rows of
// width D, row-major, in PyTorch's conventions.
//
//   layernorm  y = (x − μ) / √(σ² + 1e-5) ⊙ γ + β   per row (torch.nn.LayerNorm)
//   gelu       y = x Φ(x) = ½ x (1 + erf(x/√2))        (torch's exact GELU)
//   dropout    y = x ⊙ m, m_k = 0 with probability p, else 1/(1−p)  (inverted)
#ifndef DSF_LAYERS_H
#define DSF_LAYERS_H

#include <stddef.h>
#include <stdint.h>

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

// The mask: one key a call drawn from rng, and element k dropped when
// dsf_dropout_uniform(key, k) < p. A function of (key, k) alone, so that any
// split of the elements among threads, and the CUDA backend's kernels
// (src/cuda/units.cuh, which call this same function), draw the same mask.
#ifdef __CUDACC__
__host__ __device__
#endif
static inline float dsf_dropout_uniform(uint64_t key, uint64_t k) {
    uint64_t z = key + (k + 1) * 0x9E3779B97F4A7C15ull;  // splitmix64's step and finalizer
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    z ^= z >> 31;
    return (float)(z >> 40) * 0x1.0p-24f;
}

// The index of the first element of row r of time-major rows (T, B, W) that are
// streams first, first + stride, … of B_all: (t·B_all + first + b·stride)·W,
// t = r / B, b = r mod B (dropout_forward_streams below; the CUDA backend's
// dropout too).
#ifdef __CUDACC__
__host__ __device__
#endif
static inline uint64_t dsf_dropout_row(int64_t r, int64_t B, int64_t B_all, int64_t first,
                                       int64_t stride, int64_t W) {
    return (uint64_t)(((r / B) * B_all + first + (r % B) * stride) * W);
}

// A fresh mask m (n) for rate p in [0, 1) from one draw of rng, then y = x ⊙ m
// (y may be x). Element k's fate is dsf_dropout_uniform(key, k).
void dropout_forward(const float *x, float *y, float *mask, size_t n, float p, dsf_rng *rng);

// The same over time-major rows (T, B, W) that are streams first, first +
// stride, … of B_all (dist/dist.h's shares): element (t, b, i) takes index
// (t·B_all + first + b·stride)·W + i, its place in the whole batch, so that the
// processes of a data-parallel run together draw the mask of one process with
// all B_all streams.
typedef struct {
    int64_t T, B, B_all, first, stride;
} dsf_stream_layout;
void dropout_forward_streams(const float *x, float *y, float *mask, const dsf_stream_layout *sl,
                             int64_t W, float p, dsf_rng *rng);
// dx = dy ⊙ m (dx may be dy).
void dropout_backward(const float *dy, const float *mask, float *dx, size_t n);

#endif
