// units.cuh: the element functions of the CUDA kernels, __host__ __device__ so
// that the host can run them too (tests/cuda_emulate.cu): what each thread
// computes, with the index arithmetic, separate from how the threads are
// launched. Time-major layouts as everywhere: element (t,b,i) of a (T,B,H) array
// is [(t·B + b)·H + i].
#ifndef DSF_CUDA_UNITS_CUH
#define DSF_CUDA_UNITS_CUH

#include <math.h>
#include <stddef.h>

#include "gpu.h"  // dsf_cell

extern "C" {
#include "model/layers.h"  // dsf_dropout_uniform
}

__host__ __device__ inline float unit_sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

// GRU forward, unit i of batch row b (cell/gru.h): gx (B,3H) the input projections
// x W_ihᵀ, gh (B,3H) h' W_hhᵀ, both without bias; hp (B,H) the previous state.
// Writes gates (B,3H) = [r, z, n], q (B,H) and h (B,H). gates may be gh: each unit
// reads its own three entries before writing them.
__host__ __device__ inline void gru_forward_unit(int b, int i, const float *gx, const float *gh,
                                                 const float *b_ih, const float *b_hh,
                                                 const float *hp, float *gates, float *q, float *h,
                                                 int H) {
    const size_t g = (size_t)b * 3 * H + i, s = (size_t)b * H + i;
    const float r = unit_sigmoid(gx[g] + b_ih[i] + gh[g] + b_hh[i]);
    const float z = unit_sigmoid(gx[g + H] + b_ih[H + i] + gh[g + H] + b_hh[H + i]);
    const float qi = gh[g + 2 * H] + b_hh[2 * H + i];
    const float n = tanhf(gx[g + 2 * H] + b_ih[2 * H + i] + r * qi);
    gates[g] = r;
    gates[g + H] = z;
    gates[g + 2 * H] = n;
    q[s] = qi;
    h[s] = (1.0f - z) * n + z * hp[s];
}

// GRU local backward, unit i of row `row` (of T·B rows, or of one step's B): the
// state gradient δ is e, plus for BPTT (d_next not NULL) δ_next ⊙ z_next + carry,
// the two parts of J_{t+1}ᵀ δ_{t+1} (carry = gh_{t+1} W_hh); δ is written back to
// e. Then gi = [âr, âz, ân], gh = [âr, âz, ân ⊙ r] (cell/gru.h).
__host__ __device__ inline void gru_local_unit(int row, int i, float *e, const float *d_next,
                                               const float *gates_next, const float *carry,
                                               const float *h_prev, const float *gates,
                                               const float *q, float *gi, float *gh, int H) {
    const size_t s = (size_t)row * H + i, g = (size_t)row * 3 * H + i;
    float d = e[s];
    if (d_next) {
        d += d_next[s] * gates_next[g + H] + carry[s];
        e[s] = d;
    }
    const float r = gates[g], z = gates[g + H], n = gates[g + 2 * H];
    const float an = d * (1.0f - z) * (1.0f - n * n);
    const float az = d * (h_prev[s] - n) * z * (1.0f - z);
    const float ar = an * q[s] * r * (1.0f - r);
    gi[g] = gh[g] = ar;
    gi[g + H] = gh[g + H] = az;
    gi[g + 2 * H] = an;
    gh[g + 2 * H] = an * r;
}

// LSTM forward, unit i of batch row b (cell/lstm.h, PyTorch's gate order i, f, g,
// o): gx (B,4H) x W_ihᵀ, gh (B,4H) h' W_hhᵀ, both without bias; cp (B,H) the
// previous cell state. Writes gates (B,4H) = [i, f, g, o] after their
// nonlinearities, c (B,H) and h (B,H). gates may be gh, as in gru_forward_unit.
__host__ __device__ inline void lstm_forward_unit(int b, int k, const float *gx, const float *gh,
                                                  const float *b_ih, const float *b_hh,
                                                  const float *cp, float *gates, float *c,
                                                  float *h, int H) {
    const size_t g = (size_t)b * 4 * H + k, s = (size_t)b * H + k;
    const float i = unit_sigmoid(gx[g] + b_ih[k] + b_hh[k] + gh[g]);
    const float f = unit_sigmoid(gx[g + H] + b_ih[H + k] + b_hh[H + k] + gh[g + H]);
    const float gg = tanhf(gx[g + 2 * H] + b_ih[2 * H + k] + b_hh[2 * H + k] + gh[g + 2 * H]);
    const float o = unit_sigmoid(gx[g + 3 * H] + b_ih[3 * H + k] + b_hh[3 * H + k] + gh[g + 3 * H]);
    const float cn = f * cp[s] + i * gg;
    gates[g] = i;
    gates[g + H] = f;
    gates[g + 2 * H] = gg;
    gates[g + 3 * H] = o;
    c[s] = cn;
    h[s] = o * tanhf(cn);
}

// The LSTM's first backward stage, unit i of row `row` (lstm_c_local): the part
// of δc that comes through h, dc = δh ⊙ o ⊙ (1 − tanh² c).
__host__ __device__ inline void lstm_c_local_unit(int row, int k, const float *e,
                                                  const float *gates, const float *c, float *dc,
                                                  int H) {
    const size_t s = (size_t)row * H + k;
    const float o = gates[(size_t)row * 4 * H + 3 * H + k], tc = tanhf(c[s]);
    dc[s] = e[s] * o * (1.0f - tc * tc);
}

// LSTM local backward, unit i of row `row` (lstm_backward_local): the gate
// gradients ga (n,4H) = [âi, âf, âg, âo] from δh (e) and δc (dc). With bptt set
// (one step's B rows) the unit first completes both from step t+1: δh = e +
// carry (carry = ga_{t+1} W_hh; NULL at the last step), written back to e, and
// δc = δh ⊙ o ⊙ (1 − tanh² c) + f_{t+1} ⊙ δc_{t+1} (gates_next, dc_next; NULL at
// the last step), written to dc; else dc holds δc already (ft, dsf's scan).
__host__ __device__ inline void lstm_local_unit(int row, int k, int bptt, float *e, float *dc,
                                                const float *carry, const float *dc_next,
                                                const float *gates_next, const float *c_prev,
                                                const float *c, const float *gates, float *ga,
                                                int H) {
    const size_t s = (size_t)row * H + k, g = (size_t)row * 4 * H + k;
    const float i = gates[g], f = gates[g + H], gg = gates[g + 2 * H], o = gates[g + 3 * H];
    const float tc = tanhf(c[s]);
    float d = e[s], dcv;
    if (bptt) {
        if (carry) {
            d += carry[s];
            e[s] = d;
        }
        dcv = d * o * (1.0f - tc * tc);
        if (dc_next) dcv += gates_next[g + H] * dc_next[s];
        dc[s] = dcv;
    } else {
        dcv = dc[s];
    }
    ga[g + 3 * H] = d * tc * o * (1.0f - o);
    ga[g] = dcv * gg * i * (1.0f - i);
    ga[g + H] = dcv * c_prev[s] * f * (1.0f - f);
    ga[g + 2 * H] = dcv * i * (1.0f - gg * gg);
}

// Elman forward, unit i of batch row b (cell/elman.h): gx (B,H) x W_ihᵀ, gh (B,H)
// h' W_hhᵀ, both without bias. Writes h (B,H) = tanh of their sum with the biases.
__host__ __device__ inline void elman_forward_unit(int b, int i, const float *gx, const float *gh,
                                                   const float *b_ih, const float *b_hh, float *h,
                                                   int H) {
    const size_t s = (size_t)b * H + i;
    h[s] = tanhf(gx[s] + b_ih[i] + gh[s] + b_hh[i]);
}

// Elman local backward, unit i of row `row` (elman_backward_local): the
// pre-activation gradient ga = δ ⊙ (1 − h²), h the row's output. For BPTT carry
// (= ga_{t+1} W_hh; NULL at the last step) is added to e first, and δ written
// back to e; ft and dsf pass NULL: δ is e as it is.
__host__ __device__ inline void elman_local_unit(int row, int i, float *e, const float *carry,
                                                 const float *h, float *ga, int H) {
    const size_t s = (size_t)row * H + i;
    float d = e[s];
    if (carry) {
        d += carry[s];
        e[s] = d;
    }
    ga[s] = d * (1.0f - h[s] * h[s]);
}

// ---- the chunked reverse scan δ_t = e_t + a_t ⊙ δ_{t+1} (grad/scan.h) ----
//
// Channel c of C = B·H is the column e[t·C + c]. Its feedback is a[c % H] at every
// step (stationary: sa = 0, ap = a + c % H) or a[t·C + c] (varying, the diag
// feedback: sa = C, ap = a + c), read as ap[t·sa]; a_t multiplies δ_{t+1}, so
// a_{T−1} is never read. The T steps are cut into P chunks; chunk p covers
// [t0, t1). Three phases, separated by a barrier in the kernel:
//   1. every chunk scans itself from δ = 0 at its right edge, in place, and keeps
//      its local δ at t0 (start) and Π_{t0 ≤ s < t1} a_s (apow);
//   2. one pass per channel over the chunks from the last: the true δ entering
//      chunk p from the right is carry[p] = start[p+1] + apow[p+1] carry[p+1];
//   3. every chunk adds carry[p] Π_{t ≤ s < t1} a_s to its steps t.
__host__ __device__ inline void scan_chunk_bounds(int p, int P, int T, int *t0, int *t1) {
    *t0 = (int)((long long)p * T / P);
    *t1 = (int)((long long)(p + 1) * T / P);
}

__host__ __device__ inline void scan_phase1(float *e, const float *ap, size_t sa, size_t c, size_t C,
                                            int t0, int t1, int T, float *start, float *apow) {
    float d = 0.0f, m = 1.0f;
    for (int t = t1 - 1; t >= t0; t--) {
        const float at = t + 1 < T ? ap[t * sa] : 0.0f;  // nothing beyond the last step
        d = e[(size_t)t * C + c] + at * d;
        e[(size_t)t * C + c] = d;
        m *= at;
    }
    *start = d;
    *apow = m;
}

// start, apow, carry: the P values of one channel, stride apart.
__host__ __device__ inline void scan_phase2(const float *start, const float *apow, float *carry,
                                            int P, int stride) {
    float next = 0.0f;
    for (int p = P - 1; p >= 0; p--) {
        carry[p * stride] = next;
        next = start[p * stride] + apow[p * stride] * next;
    }
}

__host__ __device__ inline void scan_phase3(float *e, const float *ap, size_t sa, size_t c, size_t C,
                                            int t0, int t1, float carry) {
    if (carry == 0.0f) return;  // the last chunk, and a = 0
    float m = 1.0f;
    for (int t = t1 - 1; t >= t0; t--) {
        m *= ap[t * sa];
        e[(size_t)t * C + c] += m * carry;
    }
}

// ---- the diag feedback: the exact diagonal of J_{t+1} (cell/*.h *_jacobian_diag) ----
//
// Unit i of row r (of the (T−1)·B rows t < T−1) of diag, from step t+1's
// quantities, which the caller passes offset by one step; w_hh as the cell's.

// The GRU's, from h_{t} (the previous state of step t+1), its gates and q.
__host__ __device__ inline void gru_jdiag_unit(int r, int i, const float *w_hh, const float *hp,
                                               const float *gates, const float *q, float *diag,
                                               int H) {
    const size_t s = (size_t)r * H + i, g = (size_t)r * 3 * H + i;
    const float rr = gates[g], z = gates[g + H], n = gates[g + 2 * H];
    const float whr = w_hh[(size_t)i * H + i], whz = w_hh[(size_t)(H + i) * H + i];
    const float whn = w_hh[(size_t)(2 * H + i) * H + i];
    diag[s] = z + (1.0f - z) * (1.0f - n * n) * (rr * whn + q[s] * rr * (1.0f - rr) * whr) +
              (hp[s] - n) * z * (1.0f - z) * whz;
}

// The LSTM's h → h diagonal (through the gates at fixed c_{t}), from c_{t}, c_{t+1}
// and step t+1's gates.
__host__ __device__ inline void lstm_jdiag_unit(int r, int k, const float *w_hh, const float *cp,
                                                const float *c, const float *gates, float *diag,
                                                int H) {
    const size_t s = (size_t)r * H + k, g = (size_t)r * 4 * H + k;
    const float i = gates[g], f = gates[g + H], gg = gates[g + 2 * H], o = gates[g + 3 * H];
    const float tc = tanhf(c[s]);
    const float whi = w_hh[(size_t)k * H + k], whf = w_hh[(size_t)(H + k) * H + k];
    const float whg = w_hh[(size_t)(2 * H + k) * H + k];
    const float who = w_hh[(size_t)(3 * H + k) * H + k];
    const float dc = cp[s] * f * (1 - f) * whf + gg * i * (1 - i) * whi + i * (1 - gg * gg) * whg;
    diag[s] = o * (1 - o) * who * tc + o * (1 - tc * tc) * dc;
}

// The Elman cell's, from h_{t+1}: (1 − h²) W_hh[i,i].
__host__ __device__ inline void elman_jdiag_unit(int r, int i, const float *w_hh, const float *h,
                                                 float *diag, int H) {
    const size_t s = (size_t)r * H + i;
    diag[s] = (1.0f - h[s] * h[s]) * w_hh[(size_t)i * H + i];
}

// Entry (r, i) of the diagonals of `cell` (gru_ / lstm_ / elman_jdiag_unit's
// arguments: x1, x2 the states, gates and q as each reads them).
__host__ __device__ inline void jdiag_unit(dsf_cell cell, int r, int i, const float *w_hh,
                                           const float *x1, const float *x2, const float *gates,
                                           const float *q, float *diag, int H) {
    if (cell == DSF_CELL_GRU)
        gru_jdiag_unit(r, i, w_hh, x1, gates, q, diag, H);
    else if (cell == DSF_CELL_LSTM)
        lstm_jdiag_unit(r, i, w_hh, x1, x2, gates, diag, H);
    else
        elman_jdiag_unit(r, i, w_hh, x1, diag, H);
}

// ---- the fit feedback (grad/method.h, gru_fit_feedback) ----
//
// For channel i: â = Σ (c_r + δ_r z_r) δ_r / Σ δ_r² over the rows r of steps t ≥ 1
// (c = gh_t W_hh by a GEMM, δ and z of the same rows), then a ← a + rate
// (clamp(â, −1, 1) − a) when Σ δ² > 0. FIT_THREADS threads per channel: thread
// k sums rows k, k + FIT_THREADS, … in double (fit_partial_unit); the partial sums
// meet in a fixed tree (fit_tree_unit, the kernel's shared memory); the last
// thread's fit_update_unit writes a.
enum { FIT_THREADS = 256 };

// c (rows,H); d, z the δ and z_t of the same rows, z with row stride zs.
__host__ __device__ inline void fit_partial_unit(int i, int k, const float *c, const float *d,
                                                 const float *z, size_t zs, long rows, int H,
                                                 double *num, double *den) {
    double n = 0, q = 0;
    for (long r = k; r < rows; r += FIT_THREADS) {
        const double dr = d[r * H + i], zr = z[r * zs + i];
        n += ((double)c[r * H + i] + dr * zr) * dr;
        q += dr * dr;
    }
    *num = n;
    *den = q;
}

// One level of the tree: slot k += slot k + width, for k < width.
__host__ __device__ inline void fit_tree_unit(int k, int width, double *num, double *den) {
    if (k < width) {
        num[k] += num[k + width];
        den[k] += den[k + width];
    }
}

__host__ __device__ inline void fit_update_unit(float *a, double num, double den, float rate) {
    if (den > 0) {
        double fit = num / den;
        fit = fit < -1 ? -1 : fit > 1 ? 1 : fit;
        *a += rate * ((float)fit - *a);
    }
}

// ---- dropout (model/layers.h's mask: dsf_dropout_uniform, the same function) ----

// Element k of a (T,B,W) site whose B streams are streams first, first +
// stride, … of B_all (a rank's share in data-parallel training): its index in
// the whole batch's (T,B_all,W), which its mask is a hash of
// (dropout_forward_streams).
__host__ __device__ inline unsigned long long dropout_index(size_t k, long long W, long long B,
                                                            long long B_all, long long first,
                                                            long long stride) {
    return dsf_dropout_row((long long)(k / W), B, B_all, first, stride, W) + k % W;
}

// y_k = x_k · m_k, m_k = 0 when the element of index kg is dropped under key,
// else keep = 1/(1 − p): forward (x the activations) and backward (x their
// gradient) alike.
__host__ __device__ inline void dropout_unit(size_t k, unsigned long long kg, const float *x,
                                             float *y, float p, float keep,
                                             unsigned long long key) {
    y[k] = x[k] * (dsf_dropout_uniform(key, kg) < p ? 0.0f : keep);
}

// ---- the correction sweeps (--feedback F+K; grad/method.c's sweep_rhs) ----
//
// One sweep is δ ← scan_A(e0 + (Jᵀ − A) S δ): with c the GEMM part of
// J_{t+1}ᵀ δ_{t+1} (rows r < (T−1)·B) and d its elementwise part read at row
// r + B with stride ds (NULL: none), entry (r, i) of the right side is
//   c_r,i + e0_r,i + (d_{r+B},i − a_i) δ_{r+B},i      (r < rows = (T−1)·B)
// written to c (e0 NULL counts as zero), and at the last step e0 (c as it is
// when e0 is NULL); a is (H), or (T−1, B, H) when varying (the diag feedback).
// The caller copies c to e and scans it.
__host__ __device__ inline void sweep_rhs_unit(size_t r, int i, const float *e, const float *e0,
                                               float *c, const float *d, size_t ds,
                                               const float *a, int varying, size_t rows, int B,
                                               int H) {
    const size_t s = r * H + i;
    if (r < rows) {
        const float dr = d ? d[(r + B) * ds + i] : 0.0f, er = e0 ? e0[s] : 0.0f;
        c[s] += er + (dr - (varying ? a[s] : a[i])) * e[s + (size_t)B * H];
    } else if (e0) {
        c[s] = e0[s];
    }
}

// ---- the fft scan (grad/scan.c's, on cuFFT) ----
//
// δ_t = Σ_{j<T−t} a^j e_{t+j} is, per channel, the correlation of e with the
// kernel (1, a, …, a^{T−1}). Time-major e (T,B,H) is a (T, C) array with C = B·H
// channels: zero-padded to (N, C), N ≥ 2T (no wrap-around), one batched real
// transform along time of each of the C columns (stride C, distance 1) gives X
// (M, C), M = N/2 + 1; X_mc ← X_mc conj(K_m)/N with K the kernel's spectrum for
// the channel's a; the inverse transform's first T rows are δ. A channel whose a
// is 0 keeps e exactly (DSF with a = 0 must be FT).

// The smallest even 2,3,5,7-smooth length ≥ 2T (what grad/scan.c uses), or -1.
__host__ inline int fft_scan_length(int T) {
    for (long long n = 2 * (long long)T; n <= 2147483647LL; n += 2) {
        long long m = n;
        const int primes[] = {2, 3, 5, 7};
        for (int p = 0; p < 4; p++)
            while (m % primes[p] == 0) m /= primes[p];
        if (m == 1) return (int)n;
    }
    return -1;
}

// Entry m of conj(K)/N for feedback a (grad/scan.c's fft_kernel, with the
// twiddles computed here): with ω = e^{−2πi/N}, K_m = Σ_{j<T} (aω^m)^j =
// (1 − a^T ω^{mT}) / (1 − a ω^m), in double, 1 − cos written as 2 sin²(·/2)
// so that a → 1, m → 0 loses nothing.
__host__ __device__ inline void fft_spectrum_unit(int m, float af, int T, int N, float *re,
                                                  float *im) {
    const double pi = 3.14159265358979323846, a = af;
    const long long q = (long long)m * T % N;
    const double sp = sin(pi * m / N), sq = sin(pi * (double)q / N);
    // sin φ as sin(π − φ) past π/2: exactly 0 at m = N/2, where a = −1 makes the
    // denominator 0.
    const double vers_phi = 2 * sp * sp,
                 sin_phi = 4LL * m <= N ? sin(2 * pi * m / N) : sin(pi * (N - 2.0 * m) / N);
    const double vers_th = 2 * sq * sq, sin_th = sin(2 * pi * (double)q / N);
    const double cos_th = cos(2 * pi * (double)q / N);
    const double la = log1p(fabs(a) - 1.0);  // log|a|, exact near |a| = 1
    const double r = exp(T * la), one_minus_r = -expm1(T * la);
    const int flip = a < 0 && (T & 1);  // a^T = −|a|^T
    const double dr = (1.0 - a) + a * vers_phi, di = a * sin_phi;
    const double ur = flip ? 1.0 + r * cos_th : one_minus_r + r * vers_th;
    const double ui = flip ? -r * sin_th : r * sin_th;
    double kr = T, ki = 0;  // aω^m = 1: every term of the sum is 1
    if (dr != 0 || di != 0) {
        const double den = dr * dr + di * di;
        kr = (ur * dr + ui * di) / den;
        ki = (ui * dr - ur * di) / den;
    }
    *re = (float)(kr / N);
    *im = (float)(-ki / N);
}

// X (M,C) complex, interleaved (re, im), entry (m, c) times K (M,H) entry
// (m, c mod H).
__host__ __device__ inline void fft_apply_unit(int m, size_t c, float *X, const float *K,
                                               size_t C, int H) {
    const size_t x = 2 * ((size_t)m * C + c), k = 2 * ((size_t)m * H + c % H);
    const float xr = X[x], xi = X[x + 1], kr = K[k], ki = K[k + 1];
    X[x] = xr * kr - xi * ki;
    X[x + 1] = xr * ki + xi * kr;
}

// Entry k of e (T,B,H) from the inverse transform y (N,B,H), unless its a is 0.
__host__ __device__ inline void fft_finish_unit(size_t k, float *e, const float *y,
                                                const float *a, int H) {
    if (a[k % H] != 0.0f) e[k] = y[k];
}

#endif
