// test_cuda_emulated.c: the CUDA backend (src/cuda, make CUDA=1 only) against the
// CPU one without a device: the kernels' element functions run on the host
// (tests/cuda_emulate.cu: the GRU forward step, the local backward with and
// without BPTT's carry, the chunked scan; the LSTM's forward step and backward
// stages; the Elman cell's; the correction sweeps; dropout's mask; the fft
// scan's spectrum, product and copy-back around FFTW transforms in cuFFT's
// layout) against cell/gru.c, cell/lstm.c, cell/elman.c and grad/scan.c; the
// refusals of what is not implemented. The device's own tests: test_cuda.c.
#include <stdlib.h>
#include <string.h>

#ifdef DSF_USE_FFTW
#include <fftw3.h>
#endif

#include "core/gemm.h"
#include "cuda_emulate.h"
#include "model/layers.h"
#include "test.h"
#include "test_cuda.h"

// ---- the element functions on the host ----

static void test_cuda_emulate_gru_forward(void) {
    enum { T = 4, B = 3, I = 5, H = 7, G = 3 * H };
    dsf_rng r;
    dsf_rng_seed(&r, 11);
    float *w_ih = randn(&r, G * I, -0.5f, 0.5f), *w_hh = randn(&r, G * H, -0.5f, 0.5f);
    float *b_ih = randn(&r, G, -0.5f, 0.5f), *b_hh = randn(&r, G, -0.5f, 0.5f);
    float *x = randn(&r, T * B * I, -1, 1);
    const cell_weights w = {w_ih, w_hh, b_ih, b_hh};
    // The CPU layer.
    float *h = randn(&r, (T + 1) * B * H, -1, 1), *gates = calloc(T * B * G, sizeof(float));
    float *q = calloc(T * B * H, sizeof(float)), *scratch = calloc(T * B * G, sizeof(float));
    cell_cache cache = {.h = h, .gates = gates, .q = q, .wpack = NULL};
    gru_forward(&w, x, &cache, scratch, T, B, I, H);
    // The kernel's steps: gx = x W_ihᵀ, gh = h' W_hhᵀ (both without bias), then the unit.
    float *eh = calloc((T + 1) * B * H, sizeof(float)), *eg = calloc(T * B * G, sizeof(float));
    float *eq = calloc(T * B * H, sizeof(float)), *gx = calloc(T * B * G, sizeof(float));
    memcpy(eh, h, sizeof(float) * B * H);
    dsf_sgemm(0, 1, T * B, G, I, 1.0f, x, I, w_ih, I, 0.0f, gx, G);
    for (int t = 0; t < T; t++) {
        float *gt = eg + t * B * G;
        dsf_sgemm(0, 1, B, G, H, 1.0f, eh + t * B * H, H, w_hh, H, 0.0f, gt, G);
        dsf_gpu_emulate_gru_forward(gx + t * B * G, gt, b_ih, b_hh, eh + t * B * H, gt,
                                    eq + t * B * H, eh + (t + 1) * B * H, B, H);
    }
    double eh_err = rel_err(eh, h, (T + 1) * B * H), eg_err = rel_err(eg, gates, T * B * G);
    double eq_err = rel_err(eq, q, T * B * H);
    float *bufs[] = {w_ih, w_hh, b_ih, b_hh, x, h, gates, q, scratch, eh, eg, eq, gx};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(eh_err < 1e-5 && eg_err < 1e-5 && eq_err < 1e-5, "h %g gates %g q %g", eh_err,
              eg_err, eq_err);
}

static void test_cuda_emulate_gru_local(void) {
    enum { T = 5, B = 2, H = 6, G = 3 * H, N = T * B * H };
    dsf_rng r;
    dsf_rng_seed(&r, 12);
    float *w_hh = randn(&r, G * H, -0.5f, 0.5f);
    const cell_weights w = {NULL, w_hh, NULL, NULL};
    float *h = randn(&r, (T + 1) * B * H, -1, 1), *gates = randn(&r, T * B * G, 0.05f, 0.95f);
    float *q = randn(&r, N, -1, 1), *e = randn(&r, N, -1, 1);
    float *gi = calloc(T * B * G, sizeof(float)), *gh = calloc(T * B * G, sizeof(float));
    float *egi = calloc(T * B * G, sizeof(float)), *egh = calloc(T * B * G, sizeof(float));
    float *carry = calloc(B * H, sizeof(float)), *d = malloc(sizeof(float) * N);
    cell_cache cache = {.h = h, .gates = gates, .q = q, .wpack = NULL};
    // ft and dsf: all rows at once, δ = e.
    gru_backward_local(e, h, gates, q, gi, gh, T * B, H);
    memcpy(d, e, sizeof(float) * N);
    dsf_gpu_emulate_gru_local(d, NULL, NULL, NULL, h, gates, q, egi, egh, T * B, H);
    double ft_err = fmax(rel_err(egi, gi, T * B * G), rel_err(egh, gh, T * B * G));
    // bptt: step by step, the carry gh_{t+1} W_hh by a GEMM as method.cu does.
    memcpy(d, e, sizeof(float) * N);
    gru_backward_bptt(&w, &cache, e, gi, gh, carry, T, B, H);
    for (int t = T - 1; t >= 0; t--) {
        const int last = t == T - 1;
        dsf_gpu_emulate_gru_local(d + t * B * H, last ? NULL : d + (t + 1) * B * H,
                                  last ? NULL : gates + (t + 1) * B * G, carry, h + t * B * H,
                                  gates + t * B * G, q + t * B * H, egi + t * B * G,
                                  egh + t * B * G, B, H);
        if (t > 0) dsf_sgemm(0, 0, B, H, G, 1.0f, egh + t * B * G, G, w_hh, H, 0.0f, carry, H);
    }
    double bptt_err = fmax(rel_err(d, e, N), fmax(rel_err(egi, gi, T * B * G),
                                                   rel_err(egh, gh, T * B * G)));
    float *bufs[] = {w_hh, h, gates, q, e, gi, gh, egi, egh, carry, d};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(ft_err < 1e-6, "local backward: %g", ft_err);
    CHECK_MSG(bptt_err < 1e-5, "bptt: %g", bptt_err);
}

static void test_cuda_emulate_lstm_forward(void) {
    enum { T = 4, B = 3, I = 5, H = 7, G = 4 * H };
    dsf_rng r;
    dsf_rng_seed(&r, 15);
    float *w_ih = randn(&r, G * I, -0.5f, 0.5f), *w_hh = randn(&r, G * H, -0.5f, 0.5f);
    float *b_ih = randn(&r, G, -0.5f, 0.5f), *b_hh = randn(&r, G, -0.5f, 0.5f);
    float *x = randn(&r, T * B * I, -1, 1);
    const cell_weights w = {w_ih, w_hh, b_ih, b_hh};
    // The CPU layer from a random h[0] and c[0].
    float *h = randn(&r, (T + 1) * B * H, -1, 1), *c = randn(&r, (T + 1) * B * H, -1, 1);
    float *gates = calloc(T * B * G, sizeof(float)), *scratch = calloc(T * B * G, sizeof(float));
    cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = NULL};
    lstm_forward(&w, x, &cache, scratch, T, B, I, H);
    // The kernel's steps: gx = x W_ihᵀ, gh = h' W_hhᵀ (both without bias), then the unit.
    float *eh = calloc((T + 1) * B * H, sizeof(float)), *ec = calloc((T + 1) * B * H, sizeof(float));
    float *eg = calloc(T * B * G, sizeof(float)), *gx = calloc(T * B * G, sizeof(float));
    memcpy(eh, h, sizeof(float) * B * H);
    memcpy(ec, c, sizeof(float) * B * H);
    dsf_sgemm(0, 1, T * B, G, I, 1.0f, x, I, w_ih, I, 0.0f, gx, G);
    for (int t = 0; t < T; t++) {
        float *gt = eg + t * B * G;
        dsf_sgemm(0, 1, B, G, H, 1.0f, eh + t * B * H, H, w_hh, H, 0.0f, gt, G);
        dsf_gpu_emulate_lstm_forward(gx + t * B * G, gt, b_ih, b_hh, ec + t * B * H, gt,
                                     ec + (t + 1) * B * H, eh + (t + 1) * B * H, B, H);
    }
    double eh_err = rel_err(eh, h, (T + 1) * B * H), ec_err = rel_err(ec, c, (T + 1) * B * H);
    double eg_err = rel_err(eg, gates, T * B * G);
    float *bufs[] = {w_ih, w_hh, b_ih, b_hh, x, h, c, gates, scratch, eh, ec, eg, gx};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(eh_err < 1e-5 && ec_err < 1e-5 && eg_err < 1e-5, "h %g c %g gates %g", eh_err,
              ec_err, eg_err);
}

// The LSTM's backward stages: ft (both local), dsf (δh scanned with a_h, δc's
// local part with a_c, as lstm_layer_backward) and bptt step by step, the carry
// ga_{t+1} W_hh by a GEMM as method.cu does.
static void test_cuda_emulate_lstm_local(void) {
    enum { T = 5, B = 2, H = 6, G = 4 * H, N = T * B * H };
    dsf_rng r;
    dsf_rng_seed(&r, 16);
    float *w_hh = randn(&r, G * H, -0.5f, 0.5f);
    const cell_weights w = {NULL, w_hh, NULL, NULL};
    float *h = randn(&r, (T + 1) * B * H, -1, 1), *c = randn(&r, (T + 1) * B * H, -1, 1);
    float *gates = randn(&r, T * B * G, 0.05f, 0.95f), *e = randn(&r, N, -1, 1);
    for (int k = 0; k < T * B; k++)  // the g gate is a tanh: let it be negative too
        for (int i = 0; i < H; i++) gates[k * G + 2 * H + i] = 2 * gates[k * G + 2 * H + i] - 1;
    float *a = randn(&r, 2 * H, 0, 1);
    float *ga = calloc(T * B * G, sizeof(float)), *ega = calloc(T * B * G, sizeof(float));
    float *dc = calloc(N, sizeof(float)), *edc = calloc(N, sizeof(float));
    float *carry = calloc(B * H, sizeof(float)), *d = malloc(sizeof(float) * N);
    float *ref = malloc(sizeof(float) * N);
    cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = NULL};
    double err[3];
    for (int dsf = 0; dsf < 2; dsf++) {  // ft, then dsf
        memcpy(ref, e, sizeof(float) * N);
        if (dsf) CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, ref, a, T, B, H) == 0);
        lstm_c_local(ref, gates, c + B * H, dc, T * B, H);
        if (dsf) CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, dc, a + H, T, B, H) == 0);
        lstm_backward_local(ref, dc, c, c + B * H, gates, ga, T * B, H);
        memcpy(d, e, sizeof(float) * N);
        if (dsf) dsf_gpu_emulate_scan(d, a, T, B, H, 16);
        dsf_gpu_emulate_lstm_c_local(d, gates, c + B * H, edc, T * B, H);
        if (dsf) dsf_gpu_emulate_scan(edc, a + H, T, B, H, 16);
        dsf_gpu_emulate_lstm_local(0, d, edc, NULL, NULL, NULL, c, c + B * H, gates, ega, T * B, H);
        err[dsf] = fmax(rel_err(ega, ga, T * B * G), rel_err(edc, dc, N));
    }
    memcpy(d, e, sizeof(float) * N);
    memcpy(ref, e, sizeof(float) * N);
    lstm_backward_bptt(&w, &cache, ref, dc, NULL, ga, carry, T, B, H);
    for (int t = T - 1; t >= 0; t--) {
        const int last = t == T - 1;
        dsf_gpu_emulate_lstm_local(1, d + t * B * H, edc + t * B * H, last ? NULL : carry,
                                   last ? NULL : edc + (t + 1) * B * H,
                                   last ? NULL : gates + (t + 1) * B * G, c + t * B * H,
                                   c + (t + 1) * B * H, gates + t * B * G, ega + t * B * G, B, H);
        if (t > 0) dsf_sgemm(0, 0, B, H, G, 1.0f, ega + t * B * G, G, w_hh, H, 0.0f, carry, H);
    }
    err[2] = fmax(rel_err(d, ref, N), fmax(rel_err(ega, ga, T * B * G), rel_err(edc, dc, N)));
    float *bufs[] = {w_hh, h, c, gates, e, a, ga, ega, dc, edc, carry, d, ref};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(err[0] < 1e-6, "ft: %g", err[0]);
    CHECK_MSG(err[1] < 1e-5, "dsf: %g", err[1]);
    CHECK_MSG(err[2] < 1e-5, "bptt: %g", err[2]);
}

static void test_cuda_emulate_elman(void) {
    enum { T = 5, B = 3, I = 4, H = 6, N = T * B * H };
    dsf_rng r;
    dsf_rng_seed(&r, 17);
    float *w_ih = randn(&r, H * I, -0.5f, 0.5f), *w_hh = randn(&r, H * H, -0.5f, 0.5f);
    float *b_ih = randn(&r, H, -0.5f, 0.5f), *b_hh = randn(&r, H, -0.5f, 0.5f);
    float *x = randn(&r, T * B * I, -1, 1), *e = randn(&r, N, -1, 1);
    const cell_weights w = {w_ih, w_hh, b_ih, b_hh};
    // Forward: the CPU layer, then the kernel's steps from gx = x W_ihᵀ, gh = h' W_hhᵀ.
    float *h = randn(&r, (T + 1) * B * H, -1, 1), *scratch = calloc(N, sizeof(float));
    cell_cache cache = {.h = h, .wpack = NULL};
    elman_forward(&w, x, &cache, scratch, T, B, I, H);
    float *eh = calloc((T + 1) * B * H, sizeof(float)), *gx = calloc(N, sizeof(float));
    float *gh = calloc(B * H, sizeof(float));
    memcpy(eh, h, sizeof(float) * B * H);
    dsf_sgemm(0, 1, T * B, H, I, 1.0f, x, I, w_ih, I, 0.0f, gx, H);
    for (int t = 0; t < T; t++) {
        dsf_sgemm(0, 1, B, H, H, 1.0f, eh + t * B * H, H, w_hh, H, 0.0f, gh, H);
        dsf_gpu_emulate_elman_forward(gx + t * B * H, gh, b_ih, b_hh, eh + (t + 1) * B * H, B, H);
    }
    const double fwd_err = rel_err(eh, h, (T + 1) * B * H);
    // Backward: ft (all rows), then bptt step by step with the carry ga_{t+1} W_hh.
    float *ga = calloc(N, sizeof(float)), *ega = calloc(N, sizeof(float));
    float *carry = calloc(B * H, sizeof(float)), *d = malloc(sizeof(float) * N);
    elman_backward_local(e, h + B * H, ga, T * B, H);
    memcpy(d, e, sizeof(float) * N);
    dsf_gpu_emulate_elman_local(d, NULL, h + B * H, ega, T * B, H);
    const double ft_err = fmax(rel_err(ega, ga, N), rel_err(d, e, N));
    elman_backward_bptt(&w, &cache, e, ga, carry, T, B, H);
    for (int t = T - 1; t >= 0; t--) {
        dsf_gpu_emulate_elman_local(d + t * B * H, t == T - 1 ? NULL : carry, h + (t + 1) * B * H,
                                    ega + t * B * H, B, H);
        if (t > 0) dsf_sgemm(0, 0, B, H, H, 1.0f, ega + t * B * H, H, w_hh, H, 0.0f, carry, H);
    }
    const double bptt_err = fmax(rel_err(d, e, N), rel_err(ega, ga, N));
    float *bufs[] = {w_ih, w_hh, b_ih, b_hh, x, e, h, scratch, eh, gx, gh, ga, ega, carry, d};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(fwd_err < 1e-5, "forward: %g", fwd_err);
    CHECK_MSG(ft_err < 1e-6, "local backward: %g", ft_err);
    CHECK_MSG(bptt_err < 1e-5, "bptt: %g", bptt_err);
}

// Correction sweeps (--feedback uniform+2 and diag+2), as method.cu runs them,
// against gru_layer_backward and lstm_layer_backward: δ (and the LSTM's δc) and
// the gate gradients. GRU: each sweep is the local backward of all rows, the GEMM
// part gh_{t+1} W_hh, the right side with z_{t+1}, the scan. LSTM: the same for
// δh through all four gates, then δc from ĉ with f_{t+1} and a_c (with diag:
// a_c = f, the c chain's scan of ĉ alone). diag: a_t from the Jacobian kernels,
// the varying scan.
static void test_cuda_emulate_sweeps(void) {
    enum { T = 6, B = 2, I = 3, H = 5, K = 2, N = T * B * H, R = (T - 1) * B };
    for (int lstm = 0; lstm < 2; lstm++)
        for (int diag = 0; diag < 2; diag++) {
            const int G = (lstm ? 4 : 3) * H;
            dsf_rng r;
            dsf_rng_seed(&r, 19 + lstm);
            float *w_ih = randn(&r, G * I, -0.5f, 0.5f), *w_hh = randn(&r, G * H, -0.5f, 0.5f);
            float *x = randn(&r, T * B * I, -1, 1), *e = randn(&r, N, -1, 1);
            float *h = randn(&r, (T + 1) * B * H, -1, 1), *q = randn(&r, N, -1, 1);
            float *c = randn(&r, (T + 2) * B * H, -1, 1), *gates = randn(&r, T * B * G, 0.05f, 0.95f);
            float *a = randn(&r, 2 * H, 0, 1);
            float *gw = calloc(G * (I + H) + 2 * G, sizeof(float));
            float *gi = calloc(T * B * G, sizeof(float)), *gh = calloc(T * B * G, sizeof(float));
            float *ref = calloc(2 * N, sizeof(float)), *d = malloc(sizeof(float) * N);
            float *e0 = malloc(sizeof(float) * N), *cb = calloc(N, sizeof(float));
            float *egi = calloc(T * B * G, sizeof(float)), *egh = calloc(T * B * G, sizeof(float));
            float *edc = calloc(N, sizeof(float)), *avar = calloc(2 * N, sizeof(float));
            float *ea = calloc(2 * N, sizeof(float));  // the emulation's a_t (h, then c)
            const dsf_layer_feedback fb = {diag ? DSF_FEEDBACK_DIAG : DSF_FEEDBACK_UNIFORM, a, NULL,
                                           NULL, 0, NULL, K};
            cell_work work = {.gi = gi, .gh = gh, .avar = avar, .ref = ref};
            memcpy(d, e, sizeof(float) * N);
            memcpy(e0, e, sizeof(float) * N);
            const float *ah = diag ? ea : a, *ac = diag ? ea + N : a + H;
            double err;
            if (!lstm) {
                const cell_weights w = {w_ih, w_hh, NULL, NULL};
                cell_cache cache = {.h = h, .gates = gates, .q = q, .wpack = NULL};
                cell_grads g = {gw, gw + G * I, gw + G * (I + H), gw + G * (I + H) + G};
                gru_layer_backward(DSF_METHOD_DSF, DSF_SCAN_SEQ, &fb, &w, x, &cache, e, &work, &g,
                                   NULL, T, B, I, H);
                if (diag)
                    dsf_gpu_emulate_jacobian_diag(DSF_CELL_GRU, w_hh, h + B * H, NULL, gates + B * G,
                                                  q + B * H, ea, R, H);
                (diag ? dsf_gpu_emulate_scan_varying : dsf_gpu_emulate_scan)(d, ah, T, B, H, 16);
                for (int k = 0; k < K; k++) {
                    dsf_gpu_emulate_gru_local(d, NULL, NULL, NULL, h, gates, q, egi, egh, T * B, H);
                    dsf_sgemm(0, 0, R, H, G, 1.0f, egh + B * G, G, w_hh, H, 0.0f, cb, H);
                    dsf_gpu_emulate_sweep_rhs(d, e0, cb, gates + H, G, ah, diag, T, B, H);
                    memcpy(d, cb, sizeof(float) * N);
                    (diag ? dsf_gpu_emulate_scan_varying : dsf_gpu_emulate_scan)(d, ah, T, B, H, 16);
                }
                dsf_gpu_emulate_gru_local(d, NULL, NULL, NULL, h, gates, q, egi, egh, T * B, H);
                err = fmax(rel_err(d, e, N), fmax(rel_err(egi, gi, T * B * G),
                                                  rel_err(egh, gh, T * B * G)));
            } else {
                for (int k = 0; k < T * B; k++)  // the g gate is a tanh: let it be negative too
                    for (int i = 0; i < H; i++)
                        gates[k * G + 2 * H + i] = 2 * gates[k * G + 2 * H + i] - 1;
                const cell_weights w = {w_ih, w_hh, NULL, NULL};
                cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = NULL};
                cell_grads g = {gw, gw + G * I, gw + G * (I + H), gw + G * (I + H) + G};
                lstm_layer_backward(DSF_METHOD_DSF, DSF_SCAN_SEQ, &fb, &w, x, &cache, e, NULL, &work,
                                    &g, NULL, T, B, I, H);
                if (diag) {
                    dsf_gpu_emulate_jacobian_diag(DSF_CELL_LSTM, w_hh, c + B * H, c + 2 * B * H,
                                                  gates + B * G, NULL, ea, R, H);
                    for (int k = 0; k < R; k++)
                        memcpy(ea + N + k * H, gates + (k + B) * G + H, sizeof(float) * H);
                }
                void (*scan)(float *, const float *, int, int, int, int) =
                    diag ? dsf_gpu_emulate_scan_varying : dsf_gpu_emulate_scan;
                scan(d, ah, T, B, H, 16);
                dsf_gpu_emulate_lstm_c_local(d, gates, c + B * H, edc, T * B, H);
                scan(edc, ac, T, B, H, 16);
                for (int k = 0; k < K; k++) {
                    dsf_gpu_emulate_lstm_local(0, d, edc, NULL, NULL, NULL, c, c + B * H, gates, egi,
                                               T * B, H);
                    dsf_sgemm(0, 0, R, H, G, 1.0f, egi + B * G, G, w_hh, H, 0.0f, cb, H);
                    dsf_gpu_emulate_sweep_rhs(d, e0, cb, NULL, 0, ah, diag, T, B, H);
                    memcpy(d, cb, sizeof(float) * N);
                    scan(d, ah, T, B, H, 16);
                    dsf_gpu_emulate_lstm_c_local(d, gates, c + B * H, cb, T * B, H);
                    if (!diag) dsf_gpu_emulate_sweep_rhs(edc, NULL, cb, gates + H, G, ac, 0, T, B, H);
                    memcpy(edc, cb, sizeof(float) * N);
                    scan(edc, ac, T, B, H, 16);
                }
                dsf_gpu_emulate_lstm_local(0, d, edc, NULL, NULL, NULL, c, c + B * H, gates, egi,
                                           T * B, H);
                // lstm_layer_backward leaves δc in work->gh.
                err = fmax(fmax(rel_err(d, e, N), rel_err(edc, gh, N)), rel_err(egi, gi, T * B * G));
            }
            float *bufs[] = {w_ih, w_hh, x, e, h, q, c, gates, a, gw, gi, gh, ref, d, e0, cb, egi,
                             egh, edc, avar, ea};
            for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
            CHECK_MSG(err < 1e-5, "%s %s: %g", lstm ? "lstm" : "gru", diag ? "diag" : "uniform", err);
        }
}

static void test_cuda_emulate_scan(void) {
    dsf_rng r;
    dsf_rng_seed(&r, 13);
    for (size_t s = 0; s < sizeof scan_shapes / sizeof scan_shapes[0]; s++) {
        const int T = scan_shapes[s][0], B = scan_shapes[s][1], H = scan_shapes[s][2];
        const size_t n = (size_t)T * B * H;
        float *a = scan_feedback(&r, H), *e = randn(&r, n, -1, 1), *ref = malloc(sizeof(float) * n);
        memcpy(ref, e, sizeof(float) * n);
        CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, ref, a, T, B, H) == 0);
        dsf_gpu_emulate_scan(e, a, T, B, H, scan_shapes[s][3]);
        const double err = rel_err(e, ref, n);
        free(a);
        free(e);
        free(ref);
        CHECK_MSG(err < 1e-5, "T %d B %d H %d chunks %d: %g", T, B, H, scan_shapes[s][3], err);
    }
}

// The fft scan's spectrum against its defining sum Σ_{j<T} (aω^m)^j, conjugated
// and over N, in double; its edge cases a = 0 (K = 1/N), a = 1 (the sum of T
// ones at m = 0), a < 0 with T odd and even, |a| just below 1, a long T.
static void test_cuda_emulate_fft_spectrum(void) {
    const float as[] = {0.0f, 1.0f, 0.5f, -0.7f, 0.999999f, -1.0f};
    const int Ts[] = {1, 2, 7, 8, 300};
    double worst = 0;
    for (size_t ia = 0; ia < sizeof as / sizeof as[0]; ia++)
        for (size_t it = 0; it < sizeof Ts / sizeof Ts[0]; it++) {
            const int T = Ts[it], N = dsf_gpu_fft_length(T), M = N / 2 + 1;
            CHECK(N >= 2 * T && N % 2 == 0);
            float *K = malloc(sizeof(float) * 2 * M);
            dsf_gpu_emulate_fft_spectrum(K, &as[ia], T, N, 1);
            for (int m = 0; m < M; m++) {
                double re = 0, im = 0, p = 1;  // p = a^j
                for (int j = 0; j < T; j++, p *= as[ia]) {
                    const double ph = -2 * 3.14159265358979323846 * (double)((int64_t)m * j % N) / N;
                    re += p * cos(ph);
                    im += p * sin(ph);
                }
                const double err = fmax(fabs(K[2 * m] - re / N), fabs(K[2 * m + 1] + im / N));
                worst = fmax(worst, err * N / T);  // relative to the largest possible |K|
            }
            free(K);
        }
    CHECK_MSG(worst < 1e-5, "spectrum off by %g", worst);
    CHECK(dsf_gpu_fft_length(1) == 2 && dsf_gpu_fft_length(11) == 24 &&
          dsf_gpu_fft_length(256) == 512);
}

// The whole fft scan as fft.cu runs it, with FFTW's transforms in cuFFT's plan
// (length N along time, stride B·H, distance 1, B·H of them) against the
// sequential scan; a = 0 channels stay exact.
static void test_cuda_emulate_fft(void) {
#ifndef DSF_USE_FFTW
    SKIP("built without FFTW");
#else
    dsf_rng r;
    dsf_rng_seed(&r, 18);
    for (size_t s = 0; s < sizeof scan_shapes / sizeof scan_shapes[0]; s++) {
        const int T = scan_shapes[s][0], B = scan_shapes[s][1], H = scan_shapes[s][2];
        const int C = B * H, N = dsf_gpu_fft_length(T), M = N / 2 + 1;
        const size_t n = (size_t)T * C;
        float *a = scan_feedback(&r, H), *e = randn(&r, n, -1, 1), *ref = malloc(sizeof(float) * n);
        float *y = fftwf_malloc(sizeof(float) * (size_t)N * C);
        fftwf_complex *X = fftwf_malloc(sizeof(fftwf_complex) * (size_t)M * C);
        float *K = malloc(sizeof(float) * 2 * (size_t)M * H);
        fftwf_plan fwd = fftwf_plan_many_dft_r2c(1, &N, C, y, NULL, C, 1, X, NULL, C, 1,
                                                 FFTW_ESTIMATE);
        fftwf_plan inv = fftwf_plan_many_dft_c2r(1, &N, C, X, NULL, C, 1, y, NULL, C, 1,
                                                 FFTW_ESTIMATE);
        memcpy(ref, e, sizeof(float) * n);
        CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, ref, a, T, B, H) == 0);
        memcpy(y, e, sizeof(float) * n);
        memset(y + n, 0, sizeof(float) * ((size_t)N - T) * C);
        dsf_gpu_emulate_fft_spectrum(K, a, T, N, H);
        fftwf_execute(fwd);
        dsf_gpu_emulate_fft_apply((float *)X, K, M, B, H);
        fftwf_execute(inv);
        float *e0 = malloc(sizeof(float) * n);
        memcpy(e0, e, sizeof(float) * n);
        dsf_gpu_emulate_fft_finish(e, y, a, T, B, H);
        int exact = 1;  // channel 0 of every row has a = 0
        for (size_t k = 0; k < n; k += H) exact &= e[k] == e0[k];
        const double err = rel_err(e, ref, n);
        fftwf_destroy_plan(fwd);
        fftwf_destroy_plan(inv);
        fftwf_free(y);
        fftwf_free(X);
        free(K);
        free(a);
        free(e);
        free(e0);
        free(ref);
        CHECK_MSG(err < 1e-5 && exact, "T %d B %d H %d: %g (a = 0 exact: %d)", T, B, H, err, exact);
    }
#endif
}

// Dropout's mask on the device is the CPU's for the same key.
static void test_cuda_emulate_dropout(void) {
    enum { T = 25, B = 4, W = 500, N = T * B * W };
    // The whole batch, then streams [3, 7) of 9 and streams 1, 3, 5, 7 of 9 (a
    // rank's share under MPI, contiguous and dealt).
    const dsf_stream_layout layouts[] = {{T, B, B, 0, 1}, {T, B, 9, 3, 1}, {T, B, 9, 1, 2}};
    for (int k = 0; k < 3; k++) {
        dsf_rng r;
        dsf_rng_seed(&r, 25);
        float *x = randn(&r, N, -1, 1), *y = malloc(sizeof(float) * N), *m = malloc(sizeof(float) * N);
        float *ey = malloc(sizeof(float) * N);
        dsf_rng r0 = r;
        const uint64_t key = dsf_rng_u64(&r0);
        dropout_forward_streams(x, y, m, &layouts[k], W, 0.4f, &r);
        const dsf_gpu_streams st = {layouts[k].B_all, layouts[k].first, layouts[k].stride};
        dsf_gpu_emulate_dropout(x, ey, T, B, W, &st, 0.4f, key);
        const int same = memcmp(y, ey, sizeof(float) * N) == 0;
        int zeros = 0;
        for (int i = 0; i < N; i++) zeros += m[i] == 0;
        free(x);
        free(y);
        free(m);
        free(ey);
        CHECK_MSG(same, "layout %d", k);
        CHECK_MSG(abs(zeros - 20000) < 500, "%d of %d dropped at p = 0.4", zeros, N);
    }
}

// The scan with a varying a (the diag feedback) against grad/scan.c's, every
// shape and chunk count; slice T−1 of a holds NaN, which must never be read.
static void test_cuda_emulate_scan_varying(void) {
    dsf_rng r;
    dsf_rng_seed(&r, 26);
    for (size_t s = 0; s < sizeof scan_shapes / sizeof scan_shapes[0]; s++) {
        const int T = scan_shapes[s][0], B = scan_shapes[s][1], H = scan_shapes[s][2];
        const size_t n = (size_t)T * B * H, BH = (size_t)B * H;
        float *a = randn(&r, n, -1, 1), *e = randn(&r, n, -1, 1), *ref = malloc(sizeof(float) * n);
        for (size_t k = n - BH; k < n; k++) a[k] = NAN;
        memcpy(ref, e, sizeof(float) * n);
        CHECK(dsf_scan_varying(DSF_SCAN_SEQ, ref, a, T, B, H) == 0);
        dsf_gpu_emulate_scan_varying(e, a, T, B, H, scan_shapes[s][3]);
        const double err = rel_err(e, ref, n);
        free(a);
        free(e);
        free(ref);
        CHECK_MSG(err < 1e-5, "T %d B %d H %d chunks %d: %g", T, B, H, scan_shapes[s][3], err);
    }
}

// The Jacobian diagonals of the diag feedback against the cells' own.
static void test_cuda_emulate_jacobian_diag(void) {
    enum { n = 7, H = 9 };
    dsf_rng r;
    dsf_rng_seed(&r, 27);
    float *w_hh = randn(&r, 4 * H * H, -1, 1), *x1 = randn(&r, n * H, -1, 1);
    float *x2 = randn(&r, n * H, -1, 1), *gates = randn(&r, n * 4 * H, 0.05f, 0.95f);
    float *q = randn(&r, n * H, -1, 1), *d = malloc(sizeof(float) * n * H);
    float *ed = malloc(sizeof(float) * n * H);
    double err[3];
    const cell_weights gw = {NULL, w_hh, NULL, NULL};
    gru_jacobian_diag(&gw, x1, gates, q, d, n, H);
    dsf_gpu_emulate_jacobian_diag(DSF_CELL_GRU, w_hh, x1, NULL, gates, q, ed, n, H);
    err[0] = rel_err(ed, d, n * H);
    const cell_weights lw = {NULL, w_hh, NULL, NULL};
    lstm_jacobian_diag(&lw, x1, x2, gates, d, n, H);
    dsf_gpu_emulate_jacobian_diag(DSF_CELL_LSTM, w_hh, x1, x2, gates, NULL, ed, n, H);
    err[1] = rel_err(ed, d, n * H);
    const cell_weights ew = {NULL, w_hh, NULL, NULL};
    elman_jacobian_diag(&ew, x1, d, n, H);
    dsf_gpu_emulate_jacobian_diag(DSF_CELL_ELMAN, w_hh, x1, NULL, NULL, NULL, ed, n, H);
    err[2] = rel_err(ed, d, n * H);
    float *bufs[] = {w_hh, x1, x2, gates, q, d, ed};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(err[0] < 1e-6 && err[1] < 1e-6 && err[2] < 1e-6, "gru %g lstm %g elman %g", err[0],
              err[1], err[2]);
}

// The fit feedback's re-estimate against gru_fit_feedback (its GEMM part by
// dsf_sgemm here, the kernel's order of summation).
static void test_cuda_emulate_fit(void) {
    enum { T = 7, B = 3, H = 6, G = 3 * H, R = (T - 1) * B };
    dsf_rng r;
    dsf_rng_seed(&r, 29);
    float *w_hh = randn(&r, G * H, -0.5f, 0.5f), *gh = randn(&r, T * B * G, -1, 1);
    float *gates = randn(&r, T * B * G, 0.05f, 0.95f), *e = randn(&r, T * B * H, -1, 1);
    float *gi = calloc(T * B * G, sizeof(float)), *c = malloc(sizeof(float) * R * H);
    float *a = randn(&r, H, 0, 1), *ea = malloc(sizeof(float) * H);
    memcpy(ea, a, sizeof(float) * H);
    const cell_weights w = {NULL, w_hh, NULL, NULL};
    cell_cache cache = {.gates = gates, .wpack = NULL};
    cell_work work = {.gi = gi, .gh = gh};
    gru_fit_feedback(&w, &cache, e, &work, a, 0.5f, T, B, H);
    dsf_sgemm(0, 0, R, H, G, 1.0f, gh + B * G, G, w_hh, H, 0.0f, c, H);
    dsf_gpu_emulate_fit(c, e + B * H, gates + B * G + H, G, R, ea, 0.5f, H);
    const double err = rel_err(ea, a, H);
    float *bufs[] = {w_hh, gh, gates, e, gi, c, a, ea};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++) free(bufs[k]);
    CHECK_MSG(err < 1e-6, "a off by %g", err);
}

// ---- what is refused (no device needed) ----

static void test_cuda_refusals(void) {
    dsf_lm m;
    dsf_lm_config cfg = {.V = 5, .E = 4, .H = 4, .L = 1};
    CHECK(lm_create(&m, &cfg) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_BPTT, DSF_SCAN_SEQ) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_FFT) == 0);
    dsf_feedback fb;
    CHECK(dsf_feedback_parse("lowrank:2", &fb) == 0);
    CHECK(dsf_feedback_parse("lowrank:2", &m.fb) == 0);  // without U and V
    CHECK(dsf_gpu_check(&m, DSF_METHOD_BPTT, DSF_SCAN_SEQ) == 0);  // only dsf uses it
    CHECK_MSG(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_SEQ) == -1 &&
                  strstr(dsf_error(), "U and V"), "lowrank: %s", dsf_error());
    dsf_rng r;
    dsf_rng_seed(&r, 1);
    CHECK(lm_set_feedback(&m, &fb, &r, 3) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_SEQ) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_FFT) == -1 && strstr(dsf_error(), "fft"));
    CHECK(dsf_feedback_parse("diag", &m.fb) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_FFT) == -1 && strstr(dsf_error(), "fft"));
    lm_destroy(&m);
    cfg.cell = DSF_CELL_LSTM;
    CHECK(lm_create(&m, &cfg) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_FFT) == 0);
    CHECK(lm_set_feedback(&m, &fb, &r, 3) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_SEQ) == -1 && strstr(dsf_error(), "lstm"));
    lm_destroy(&m);
    cfg.cell = DSF_CELL_ELMAN;
    CHECK(lm_create(&m, &cfg) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH) == 0);
    lm_destroy(&m);
    cfg = (dsf_lm_config){.V = 5, .E = 4, .H = 4, .L = 1, .arch = DSF_ARCH_BLOCK, .tie = 1,
                          .mlp = 8};
    CHECK(lm_create(&m, &cfg) == 0);
    CHECK(dsf_gpu_check(&m, DSF_METHOD_DSF, DSF_SCAN_FFT) == 0);  // the block architecture too
    lm_destroy(&m);
}

void suite_cuda_emulated(void) {
    RUN(test_cuda_emulate_gru_forward);
    RUN(test_cuda_emulate_gru_local);
    RUN(test_cuda_emulate_lstm_forward);
    RUN(test_cuda_emulate_lstm_local);
    RUN(test_cuda_emulate_elman);
    RUN(test_cuda_emulate_scan);
    RUN(test_cuda_emulate_sweeps);
    RUN(test_cuda_emulate_scan_varying);
    RUN(test_cuda_emulate_jacobian_diag);
    RUN(test_cuda_emulate_dropout);
    RUN(test_cuda_emulate_fit);
    RUN(test_cuda_emulate_fft_spectrum);
    RUN(test_cuda_emulate_fft);
    RUN(test_cuda_refusals);
}
