// kernels.cuh: the launchers of the CUDA backend's kernels, one host function per
// kernel, all on stream s. Shapes as in units.cuh; n is a row count (T·B or B).
#ifndef DSF_CUDA_KERNELS_CUH
#define DSF_CUDA_KERNELS_CUH

#include <stddef.h>
#include <stdint.h>

#include <cuda_runtime.h>
#include <cufft.h>

#include "gpu.h"  // dsf_cell and the C library's headers

// gru.cu: the fused elementwise parts of the GRU (units.cuh).
void gru_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                          const float *b_hh, const float *hp, float *gates, float *q, float *h,
                          int B, int H);
void gru_local_gpu(cudaStream_t s, float *e, const float *d_next, const float *gates_next,
                   const float *carry, const float *h_prev, const float *gates, const float *q,
                   float *gi, float *gh, int n, int H);

// elman.cu: the Elman cell's forward step and local backward (units.cuh).
void elman_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                            const float *b_hh, float *h, int B, int H);
void elman_local_gpu(cudaStream_t s, float *e, const float *carry, const float *h, float *ga,
                     int n, int H);

// lstm.cu: the fused elementwise parts of the LSTM (units.cuh).
void lstm_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                           const float *b_hh, const float *cp, float *gates, float *c, float *h,
                           int B, int H);
void lstm_c_local_gpu(cudaStream_t s, const float *e, const float *gates, const float *c,
                      float *dc, int n, int H);
void lstm_local_gpu(cudaStream_t s, int bptt, float *e, float *dc, const float *carry,
                    const float *dc_next, const float *gates_next, const float *c_prev,
                    const float *c, const float *gates, float *ga, int n, int H);

// scan.cu: δ_t = e_t + a ⊙ δ_{t+1} in place on e (T,B,H), a (H), the time axis in
// `chunks` pieces (at most SCAN_MAX_CHUNKS; fewer when T is shorter).
enum { SCAN_MAX_CHUNKS = 32, SCAN_DEFAULT_CHUNKS = 16 };
void scan_gpu(cudaStream_t s, float *e, const float *a, int T, int B, int H, int chunks);
// The same with a_t varying: a (T−1,B,H), slice t multiplying δ_{t+1} (diag).
void scan_varying_gpu(cudaStream_t s, float *e, const float *a, int T, int B, int H, int chunks);
// The same with A = diag(a) + U Vᵀ (the lowrank feedback): a (H), u and v (H,r),
// r ≤ DSF_SCAN_MAX_RANK; sequential over time (one block per batch row).
void scan_lowrank_gpu(cudaStream_t s, float *e, const float *a, const float *u, const float *v,
                      int r, int T, int B, int H);
// The right side of a correction sweep into c (T,B,H) (units.cuh, sweep_rhs_unit),
// from δ in e; e0 and d may be NULL; a (H), or (T−1,B,H) when varying.
void sweep_rhs_gpu(cudaStream_t s, const float *e, const float *e0, float *c, const float *d,
                   size_t ds, const float *a, int varying, int T, int B, int H);
// The fit feedback's update of a (H) (units.cuh): c (rows,H) = gh W_hh of the
// rows of steps t ≥ 1, d their δ, z their z gate (row stride zs).
void fit_feedback_gpu(cudaStream_t s, const float *c, const float *d, const float *z, size_t zs,
                      long rows, float *a, float rate, int H);
// diag (n,H): the exact diagonals of J_{t+1} (units.cuh, *_jdiag_unit) for n rows:
// GRU x1 = h_prev, gates, q; LSTM x1 = c_prev, x2 = c, gates; Elman x1 = h.
void jacobian_diag_gpu(cudaStream_t s, dsf_cell cell, const float *w_hh, const float *x1,
                       const float *x2, const float *gates, const float *q, float *diag, int n,
                       int H);

// fft.cu: the fft scan (units.cuh) for sequences of up to T steps of B·H
// channels: its buffers (y (N,B,H) real, X (M,B,H) and K (M,H) complex) and
// cuFFT plans. fft_scan_create fails as a user error (memory, a T it cannot
// handle); fft_scan_gpu does on e (T,B,H), T ≤ the created T, what scan_gpu does.
typedef struct {
    int T, N, H;
    size_t C;
    float *y, *X, *K;
    cufftHandle r2c, c2r;
    int planned;  // bit 0: r2c made, bit 1: c2r made
} fft_scan;
int fft_scan_create(fft_scan *f, int T, int B, int H);
void fft_scan_destroy(fft_scan *f);
void fft_scan_gpu(cudaStream_t s, fft_scan *f, float *e, const float *a, int T);

// dropout.cu: y (T,B,W) = x ⊙ the mask of rate p under key (model/layers.h's,
// with the B streams placed in the whole batch by st); y may be x.
void dropout_gpu(cudaStream_t s, const float *x, float *y, int T, int B, int W,
                 const dsf_gpu_streams *st, float p, uint64_t key);

// block.cu: the block architecture's layers (model/layers.c), over n rows.
// LayerNorm of x (n,D) into y, with each row's mean and 1/std.
void layernorm_forward_gpu(cudaStream_t s, const float *x, const float *gamma, const float *beta,
                           float *y, float *mean, float *rstd, int n, int D);
// Its backward: dx (n,D) from dy (written, or added to dx when add), and
// dgamma, dbeta (D) += their gradients.
void layernorm_backward_gpu(cudaStream_t s, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *gamma, float *dx, int add,
                            float *dgamma, float *dbeta, int n, int D);
// u (n,M) += bias, then y = GELU(u).
void bias_gelu_gpu(cudaStream_t s, float *u, const float *bias, float *y, int n, int M);
// d (n) *= GELU'(u).
void gelu_backward_gpu(cudaStream_t s, float *d, const float *u, size_t n);
// out (n,D) = a + b + bias (a row vector); any of them may be NULL (zero), out may be a or b.
void add_gpu(cudaStream_t s, float *out, const float *a, const float *b, const float *bias, int n,
             int D);

// loss.cu: embedding, softmax cross-entropy, column sums, the mean loss.
// emb (n,E) = encoder rows x (n).
void embedding_forward_gpu(cudaStream_t s, const float *encoder, const int32_t *x, float *emb,
                           int n, int E);
// For each of the u distinct tokens tok[k]: g_encoder[tok[k]] += Σ d[perm[j]] over
// j in [off[k], off[k+1]), in that order (deterministic, no atomics).
void embedding_backward_gpu(cudaStream_t s, const float *d, const int32_t *tok,
                            const int32_t *off, const int32_t *perm, float *g_encoder, int u,
                            int E);
// Row r of logits (n,V) (without bias): adds bias, writes row_loss[r] (the
// cross-entropy against y[r]) and leaves (softmax − onehot(y)) · scale in place;
// a row whose target is negative (ignored) gets loss 0 and zeros.
void softmax_xent_gpu(cudaStream_t s, float *logits, const float *bias, const int32_t *y,
                      float *row_loss, float scale, int n, int V);
// dst (m) += the column sums of src (n,m), each in double in a fixed order.
void colsum_gpu(cudaStream_t s, const float *src, float *dst, int n, int m);
// *out = the sum of x (n) over count (0 when count is 0), summed in double in a
// fixed order.
void mean_gpu(cudaStream_t s, const float *x, double *out, int n, int count);

// optim.cu: the global norm, clipping and the updates over flat buffers.
// *sumsq = Σ g², summed in double in a fixed order; partial has NORM_BLOCKS doubles.
enum { NORM_BLOCKS = 256 };
void sumsq_gpu(cudaStream_t s, const float *g, size_t n, double *partial, double *sumsq);
// g *= max_norm / (√sumsq + 1e-6) when that is below 1 and finite (optim_clip).
void clip_gpu(cudaStream_t s, float *g, size_t n, const double *sumsq, double max_norm);
void sgd_gpu(cudaStream_t s, float *p, const float *g, size_t n, float lr);
// optim_step's AdamW for one tensor: c1, c2 the bias corrections, decay 1 − lr·wd
// for matrices, 1 otherwise.
void adamw_gpu(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr,
               float b1, float b2, float c1, float c2, float eps, float decay);

#endif
