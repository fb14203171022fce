// cuda_emulate.cu: the CUDA kernels' element functions (src/cuda/units.cuh) run on
// the host over the whole index space, in the order of the kernels' phases: their
// arithmetic and indexing can then be tested against the CPU backend on a machine
// without a GPU (tests/test_cuda_emulated.c). Test code: built into test_dsf by
// nvcc in CUDA builds (and by tests/cuda_host/run.sh with g++), not into libdsf.
#include "cuda/kernels.cuh"
#include "cuda/units.cuh"
#include "cuda_emulate.h"

#include <stdlib.h>

extern "C" void dsf_gpu_emulate_gru_forward(const float *gx, const float *gh, const float *b_ih,
                                            const float *b_hh, const float *hp, float *gates,
                                            float *q, float *h, int B, int H) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++) gru_forward_unit(b, i, gx, gh, b_ih, b_hh, hp, gates, q, h, H);
}

extern "C" void dsf_gpu_emulate_gru_local(float *e, const float *d_next, const float *gates_next,
                                          const float *carry, const float *h_prev,
                                          const float *gates, const float *q, float *gi,
                                          float *gh, int n, int H) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < H; i++)
            gru_local_unit(r, i, e, d_next, gates_next, carry, h_prev, gates, q, gi, gh, H);
}

extern "C" void dsf_gpu_emulate_lstm_forward(const float *gx, const float *gh,
                                             const float *b_ih, const float *b_hh,
                                             const float *cp, float *gates, float *c, float *h,
                                             int B, int H) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++) lstm_forward_unit(b, i, gx, gh, b_ih, b_hh, cp, gates, c, h, H);
}

extern "C" void dsf_gpu_emulate_lstm_c_local(const float *e, const float *gates, const float *c,
                                             float *dc, int n, int H) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < H; i++) lstm_c_local_unit(r, i, e, gates, c, dc, H);
}

extern "C" void dsf_gpu_emulate_lstm_local(int bptt, float *e, float *dc, const float *carry,
                                           const float *dc_next, const float *gates_next,
                                           const float *c_prev, const float *c,
                                           const float *gates, float *ga, int n, int H) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < H; i++)
            lstm_local_unit(r, i, bptt, e, dc, carry, dc_next, gates_next, c_prev, c, gates, ga,
                            H);
}

extern "C" void dsf_gpu_emulate_elman_forward(const float *gx, const float *gh,
                                              const float *b_ih, const float *b_hh, float *h,
                                              int B, int H) {
    for (int b = 0; b < B; b++)
        for (int i = 0; i < H; i++) elman_forward_unit(b, i, gx, gh, b_ih, b_hh, h, H);
}

extern "C" void dsf_gpu_emulate_elman_local(float *e, const float *carry, const float *h,
                                            float *ga, int n, int H) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < H; i++) elman_local_unit(r, i, e, carry, h, ga, H);
}

// As scan_gpu (scan_varying_gpu when varying): P chunks (clamped the same way),
// every channel.
static void emulate_scan(float *e, const float *a, int varying, int T, int B, int H, int chunks) {
    int P = chunks < 1 ? 1 : chunks > SCAN_MAX_CHUNKS ? SCAN_MAX_CHUNKS : chunks;
    if (P > T) P = T;
    const size_t C = (size_t)B * H;
    float start[SCAN_MAX_CHUNKS], apow[SCAN_MAX_CHUNKS], carry[SCAN_MAX_CHUNKS];
    for (size_t c = 0; c < C; c++) {
        const float *ap = varying ? a + c : a + c % H;
        const size_t sa = varying ? C : 0;
        int t0, t1;
        for (int p = 0; p < P; p++) {
            scan_chunk_bounds(p, P, T, &t0, &t1);
            scan_phase1(e, ap, sa, c, C, t0, t1, T, &start[p], &apow[p]);
        }
        scan_phase2(start, apow, carry, P, 1);
        for (int p = 0; p < P; p++) {
            scan_chunk_bounds(p, P, T, &t0, &t1);
            scan_phase3(e, ap, sa, c, C, t0, t1, carry[p]);
        }
    }
}

extern "C" void dsf_gpu_emulate_scan(float *e, const float *a, int T, int B, int H, int chunks) {
    emulate_scan(e, a, 0, T, B, H, chunks);
}

extern "C" void dsf_gpu_emulate_scan_varying(float *e, const float *a, int T, int B, int H,
                                             int chunks) {
    emulate_scan(e, a, 1, T, B, H, chunks);
}

extern "C" void dsf_gpu_emulate_jacobian_diag(dsf_cell cell, const float *w_hh, const float *x1,
                                              const float *x2, const float *gates,
                                              const float *q, float *diag, int n, int H) {
    for (int r = 0; r < n; r++)
        for (int i = 0; i < H; i++) jdiag_unit(cell, r, i, w_hh, x1, x2, gates, q, diag, H);
}

extern "C" void dsf_gpu_emulate_sweep_rhs(const float *e, const float *e0, float *c,
                                          const float *d, size_t ds, const float *a, int varying,
                                          int T, int B, int H) {
    const size_t TB = (size_t)T * B;
    for (size_t r = 0; r < TB; r++)
        for (int i = 0; i < H; i++)
            sweep_rhs_unit(r, i, e, e0, c, d, ds, a, varying, TB - B, B, H);
}

extern "C" void dsf_gpu_emulate_dropout(const float *x, float *y, int T, int B, int W,
                                        const dsf_gpu_streams *st, float p, uint64_t key) {
    const size_t n = (size_t)T * B * W;
    for (size_t k = 0; k < n; k++)
        dropout_unit(k, dropout_index(k, W, B, st->B_all, st->first, st->stride), x, y, p, 1.0f / (1.0f - p),
                     key);
}

extern "C" void dsf_gpu_emulate_fit(const float *c, const float *d, const float *z, size_t zs,
                                    long rows, float *a, float rate, int H) {
    static double num[FIT_THREADS], den[FIT_THREADS];
    for (int i = 0; i < H; i++) {
        for (int k = 0; k < FIT_THREADS; k++)
            fit_partial_unit(i, k, c, d, z, zs, rows, H, &num[k], &den[k]);
        for (int width = FIT_THREADS / 2; width > 0; width /= 2)
            for (int k = 0; k < FIT_THREADS; k++) fit_tree_unit(k, width, num, den);
        fit_update_unit(&a[i], num[0], den[0], rate);
    }
}

extern "C" int dsf_gpu_fft_length(int T) { return fft_scan_length(T); }

extern "C" void dsf_gpu_emulate_fft_spectrum(float *K, const float *a, int T, int N, int H) {
    const int M = N / 2 + 1;
    for (int m = 0; m < M; m++)
        for (int i = 0; i < H; i++) {
            const size_t k = (size_t)m * H + i;
            fft_spectrum_unit(m, a[i], T, N, &K[2 * k], &K[2 * k + 1]);
        }
}

extern "C" void dsf_gpu_emulate_fft_apply(float *X, const float *K, int M, int B, int H) {
    const size_t C = (size_t)B * H;
    for (int m = 0; m < M; m++)
        for (size_t c = 0; c < C; c++) fft_apply_unit(m, c, X, K, C, H);
}

extern "C" void dsf_gpu_emulate_fft_finish(float *e, const float *y, const float *a, int T, int B,
                                           int H) {
    const size_t n = (size_t)T * B * H;
    for (size_t k = 0; k < n; k++) fft_finish_unit(k, e, y, a, H);
}
