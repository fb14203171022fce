// cuda_emulate.h: the CUDA backend's element functions (src/cuda/units.cuh) on
// the host, for tests/test_cuda_emulated.c; tests/cuda_emulate.cu defines them
// (built into test_dsf in CUDA builds only, not into the library).
#ifndef DSF_TESTS_CUDA_EMULATE_H
#define DSF_TESTS_CUDA_EMULATE_H

#include "cuda/gpu.h"

#ifdef __cplusplus
extern "C" {
#endif

// The kernels' element functions run on the host, each over its whole index
// space, in the phase order the kernel keeps (what can be tested without a GPU):
// the GRU forward step (gx (B,3H) input projections without bias, gh (B,3H)
// h' W_hhᵀ without bias, hp (B,H) → gates (B,3H), q (B,H), h (B,H)); the local
// backward of n rows (as gru_backward_local, plus BPTT's carry when d_next is
// not NULL: δ = e + δ_next ⊙ z_next + carry, written back to e); the chunked scan.
void dsf_gpu_emulate_gru_forward(const float *gx, const float *gh, const float *b_ih,
                                 const float *b_hh, const float *hp, float *gates, float *q,
                                 float *h, int B, int H);
void dsf_gpu_emulate_gru_local(float *e, const float *d_next, const float *gates_next,
                               const float *carry, const float *h_prev, const float *gates,
                               const float *q, float *gi, float *gh, int n, int H);
// The LSTM's (cell/lstm.h): the forward step (gx, gh (B,4H) without bias, cp (B,H)
// the previous c → gates (B,4H) = [i, f, g, o], c, h (B,H)); the first backward
// stage dc = δh ⊙ o ⊙ (1 − tanh² c) of n rows (lstm_c_local); the local backward
// of n rows into ga (n,4H) (lstm_backward_local), with bptt set for one step of
// BPTT: δh = e + carry and δc = that stage + f_next ⊙ dc_next first (carry,
// dc_next and gates_next NULL at the last step), written back to e and dc.
void dsf_gpu_emulate_lstm_forward(const float *gx, const float *gh, const float *b_ih,
                                  const float *b_hh, const float *cp, float *gates, float *c,
                                  float *h, int B, int H);
void dsf_gpu_emulate_lstm_c_local(const float *e, const float *gates, const float *c, float *dc,
                                  int n, int H);
void dsf_gpu_emulate_lstm_local(int bptt, float *e, float *dc, const float *carry,
                                const float *dc_next, const float *gates_next,
                                const float *c_prev, const float *c, const float *gates,
                                float *ga, int n, int H);
// The Elman cell's (cell/elman.h): the forward step (gx, gh (B,H) without bias →
// h (B,H)); the local backward ga = δ ⊙ (1 − h²) of n rows, with BPTT's carry
// added to e first when carry is not NULL.
void dsf_gpu_emulate_elman_forward(const float *gx, const float *gh, const float *b_ih,
                                   const float *b_hh, float *h, int B, int H);
void dsf_gpu_emulate_elman_local(float *e, const float *carry, const float *h, float *ga, int n,
                                 int H);
void dsf_gpu_emulate_scan(float *e, const float *a, int T, int B, int H, int chunks);
// The same with a varying a (T−1,B,H) (the diag feedback: slice t multiplies δ_{t+1}).
void dsf_gpu_emulate_scan_varying(float *e, const float *a, int T, int B, int H, int chunks);
// diag (n,H), the exact diagonals of J_{t+1} for n rows (cell/*.h *_jacobian_diag):
// GRU x1 = the previous state of step t+1, its gates and q; LSTM x1 = c_t, x2 =
// c_{t+1}, the gates of step t+1; Elman x1 = h_{t+1} (x2, gates, q unused).
void dsf_gpu_emulate_jacobian_diag(dsf_cell cell, const float *w_hh, const float *x1,
                                   const float *x2, const float *gates, const float *q,
                                   float *diag, int n, int H);
// The right side of a correction sweep (--feedback F+K) into c (T,B,H) from δ in
// e: c_r += e0_r + (d_{r+B} − a) ⊙ δ_{r+B} for rows r < (T−1)·B (d with row stride
// ds; e0, d NULL count as zero; a (H), or (T−1,B,H) when varying), and c ← e0 at
// the last step when e0 is given.
void dsf_gpu_emulate_sweep_rhs(const float *e, const float *e0, float *c, const float *d,
                               size_t ds, const float *a, int varying, int T, int B, int H);
// The fit feedback's update of a (H) from c (rows,H) = gh W_hh, δ (rows,H) and z
// (row stride zs) of the rows of steps t ≥ 1 (gru_fit_feedback's), in the
// kernel's order of summation.
void dsf_gpu_emulate_fit(const float *c, const float *d, const float *z, size_t zs, long rows,
                         float *a, float rate, int H);
// Dropout of rate p under key (model/layers.h's mask): y = x ⊙ m (y may be x).
void dsf_gpu_emulate_dropout(const float *x, float *y, int T, int B, int W,
                             const dsf_gpu_streams *st, float p, uint64_t key);
// The fft scan's parts around the two transforms (which the host test does with
// FFTW in the same layout): its length N for T steps (-1: none); the spectrum
// K (M,H) complex, interleaved, M = N/2 + 1, of the feedback a (H); X (M,B,H)
// complex times K; e (T,B,H) from the inverse transform y (N,B,H) where a ≠ 0.
int dsf_gpu_fft_length(int T);
void dsf_gpu_emulate_fft_spectrum(float *K, const float *a, int T, int N, int H);
void dsf_gpu_emulate_fft_apply(float *X, const float *K, int M, int B, int H);
void dsf_gpu_emulate_fft_finish(float *e, const float *y, const float *a, int T, int B, int H);


#ifdef __cplusplus
}
#endif

#endif
