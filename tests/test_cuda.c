// test_cuda.c: the CUDA backend (src/cuda, make CUDA=1 only) against the CPU one
// on a device: the scan kernels (chunked and fft), then whole models (GRU, LSTM
// and Elman stacks, tied or not, two layers) under bptt, ft and dsf with every
// scan, with and without correction sweeps and dropout; the block architecture
// with each cell; the lowrank feedback: the loss, every gradient tensor and the
// carried state over two steps against lm_forward / lm_backward, determinism,
// and SGD and AdamW steps with clipping against optim_clip and optim_step.
// They skip, saying so, when there is no device; tests/cuda_host/run.sh runs them
// on the host. What needs no device (the kernels' element functions, the
// refusals) is in test_cuda_emulated.c.
#include <stdlib.h>
#include <string.h>

#include "cuda/gpu.h"
#include "test.h"
#include "test_cuda.h"

#define NEED_DEVICE()                                                              \
    do {                                                                           \
        if (dsf_gpu_device_count() < 1) SKIP("%s", dsf_error());                   \
    } while (0)

static void test_cuda_scan_device(void) {
    NEED_DEVICE();
    dsf_rng r;
    dsf_rng_seed(&r, 14);
    for (size_t s = 0; s < sizeof scan_shapes / sizeof scan_shapes[0]; s++) {
        const int T = scan_shapes[s][0], B = scan_shapes[s][1], H = scan_shapes[s][2];
        const size_t n = (size_t)T * B * H;
        float *a = scan_feedback(&r, H), *e = randn(&r, n, -1, 1), *ref = malloc(sizeof(float) * n);
        memcpy(ref, e, sizeof(float) * n);
        CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, ref, a, T, B, H) == 0);
        float *f = malloc(sizeof(float) * n);
        memcpy(f, e, sizeof(float) * n);
        const int rc = dsf_gpu_scan(e, a, T, B, H, scan_shapes[s][3]);
        const int rf = dsf_gpu_scan_fft(f, a, T, B, H);
        const double err = rel_err(e, ref, n), ferr = rel_err(f, ref, n);
        free(a);
        free(e);
        free(f);
        free(ref);
        CHECK_MSG(rc == 0 && rf == 0, "%s", dsf_error());
        CHECK_MSG(err < 1e-5, "T %d B %d H %d chunks %d: %g", T, B, H, scan_shapes[s][3], err);
        CHECK_MSG(ferr < 1e-5, "fft T %d B %d H %d: %g", T, B, H, ferr);
    }
}

// A model with PyTorch's initialisation times scale, and the feedback fb.
static int make_model_fb(dsf_lm *m, const dsf_lm_config *cfg, float scale, uint64_t seed, int T,
                         const char *fb_spec) {
    if (lm_create(m, cfg)) return -1;
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    lm_init_params(m, &r);
    for (size_t i = 0; i < m->n; i++) m->params[i] *= scale;
    dsf_feedback fb;
    if (dsf_feedback_parse(fb_spec, &fb)) return -1;
    return lm_set_feedback(m, &fb, &r, T);
}

static int make_model_cfg(dsf_lm *m, const dsf_lm_config *cfg, float scale, uint64_t seed, int T) {
    return make_model_fb(m, cfg, scale, seed, T, "uniform");
}

// A small model, tie → E = H, its weights 3× the initialisation: livelier gates.
static int make_model_cell(dsf_lm *m, dsf_cell cell, int tie, uint64_t seed, int T) {
    const dsf_lm_config cfg = {.V = 13, .E = tie ? 7 : 5, .H = 7, .L = 2, .tie = tie, .cell = cell};
    return make_model_cfg(m, &cfg, 3, seed, T);
}

static int make_model(dsf_lm *m, int tie, uint64_t seed, int T) {
    return make_model_cell(m, DSF_CELL_GRU, tie, seed, T);
}

static void fill_tokens(dsf_rng *r, int32_t *x, size_t n, int V) {
    for (size_t i = 0; i < n; i++) x[i] = (int32_t)(dsf_rng_u64(r) % (uint64_t)V);
}

// Two steps (T, then T − 2) of forward and backward of m on the CPU and the GPU
// from the same random carried state (the LSTM's c too): loss, every gradient
// tensor (relative to the tensor's largest entry, within tol), the state after.
static void compare_model_drop(dsf_lm *m, int B, int T, dsf_method meth, dsf_scan_kind scan,
                               double tol, float dropout) {
    const int tie = m->cfg.tie;
    const int L = m->cfg.L, H = m->cfg.H;
    dsf_lm_work w;
    CHECK(lm_work_create(&w, &m->cfg, B, T) == 0);
    CHECK(lm_work_reserve(&w, m, meth) == 0);
    // The CPU's own fft scan where this build has FFTW, else its sequential one.
    w.scan = dsf_scan_available(scan) ? scan : DSF_SCAN_SEQ;
    dsf_gpu *g;
    CHECK_MSG(dsf_gpu_create(&g, m, NULL, B, T, scan) == 0, "%s", dsf_error());
    // Dropout: two generators in the same state, one each (the same masks).
    dsf_rng rc, rg;
    dsf_rng_seed(&rc, 23);
    rg = rc;
    w.dropout = dropout;
    w.rng = dropout > 0 ? &rc : NULL;
    CHECK(dsf_gpu_set_dropout(g, dropout, dropout > 0 ? &rg : NULL) == 0);
    dsf_rng r;
    dsf_rng_seed(&r, 22);
    const int lstm = m->cfg.cell == DSF_CELL_LSTM;
    dsf_rng_fill_uniform(&r, w.state, (size_t)L * B * H, -0.5f, 0.5f);
    dsf_gpu_set_state(g, w.state);
    if (lstm) {
        dsf_rng_fill_uniform(&r, w.state_c, (size_t)L * B * H, -0.5f, 0.5f);
        dsf_gpu_set_state_c(g, w.state_c);
    }
    int32_t *x = malloc(sizeof(int32_t) * (T + 1) * B);
    float *grads = malloc(sizeof(float) * m->n), *state = malloc(sizeof(float) * L * B * H);
    float *state_c = malloc(sizeof(float) * L * B * H);
    const char *name = dsf_method_name(meth);
    int ok = 1;
    for (int step = 0; step < 2 && ok; step++) {
        const int Ts = step ? T - 2 : T;
        fill_tokens(&r, x, (size_t)(Ts + 1) * B, m->cfg.V);
        const double lc = lm_forward(m, &w, x, x + B, Ts);
        lm_backward(m, &w, meth);
        const double lg = dsf_gpu_forward(g, x, x + B, Ts);
        dsf_gpu_backward(g, meth);
        dsf_gpu_get_grads(g, grads);
        dsf_gpu_get_state(g, state);
        if (lstm) dsf_gpu_get_state_c(g, state_c);
        if (fabs(lc - lg) > 1e-5 * fmax(1, fabs(lc))) {
            test_fail(__FILE__, __LINE__, "%s tie %d T %d step %d: loss cpu %.9g gpu %.9g", name,
                      tie, T, step, lc, lg);
            ok = 0;
        }
        for (int k = 0; k < m->ntensors && ok; k++) {
            const dsf_param *p = &m->tensors[k];
            const double err = rel_err(grads + p->offset, m->grads + p->offset, p->numel);
            if (err > tol) {
                test_fail(__FILE__, __LINE__, "%s scan %s tie %d T %d step %d: %s off by %g", name,
                          dsf_scan_name(scan), tie, T, step, p->name, err);
                ok = 0;
            }
        }
        double serr = rel_err(state, w.state, (size_t)L * B * H);
        if (lstm) serr = fmax(serr, rel_err(state_c, w.state_c, (size_t)L * B * H));
        if (ok && serr > tol) {
            test_fail(__FILE__, __LINE__, "%s tie %d step %d: state off by %g", name, tie, step,
                      serr);
            ok = 0;
        }
    }
    free(x);
    free(grads);
    free(state);
    free(state_c);
    dsf_gpu_destroy(g);
    lm_work_destroy(&w);
}

static void compare_model(dsf_lm *m, int B, int T, dsf_method meth, dsf_scan_kind scan,
                          double tol) {
    compare_model_drop(m, B, T, meth, scan, tol, 0);
}

static void compare_grads_cell(dsf_cell cell, int tie, dsf_method meth, dsf_scan_kind scan,
                               int T) {
    dsf_lm m;
    CHECK(make_model_cell(&m, cell, tie, 21, T) == 0);
    compare_model(&m, 3, T, meth, scan, 1e-4);
    lm_destroy(&m);
}

// A small model of `cell`, tied and not: bptt, ft, and dsf with every scan at two
// lengths; stops at the first failure.
static void compare_cell(dsf_cell cell) {
    for (int tie = 0; tie < 2; tie++) {
        compare_grads_cell(cell, tie, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 9);
        compare_grads_cell(cell, tie, DSF_METHOD_FT, DSF_SCAN_SEQ, 9);
        for (int T = 9; T <= 40; T += 31) {
            compare_grads_cell(cell, tie, DSF_METHOD_DSF, DSF_SCAN_SEQ, T);
            compare_grads_cell(cell, tie, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, T);
            compare_grads_cell(cell, tie, DSF_METHOD_DSF, DSF_SCAN_FFT, T);
        }
        if (test_current_failed) return;
    }
}

static void test_cuda_gradients(void) {
    NEED_DEVICE();
    compare_cell(DSF_CELL_GRU);
}

// The LSTM: the same comparisons (its feedback a_h, a_c uniform).
static void test_cuda_gradients_lstm(void) {
    NEED_DEVICE();
    compare_cell(DSF_CELL_LSTM);
    if (test_current_failed) return;
    // Many blocks per kernel (H = 300).
    enum { T = 70 };
    const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1, .cell = DSF_CELL_LSTM};
    dsf_lm m;
    CHECK(make_model_cfg(&m, &cfg, 1, 52, T) == 0);
    compare_model(&m, 5, T, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-3);
    lm_destroy(&m);
}

// The Elman cell: the same comparisons, then many blocks per kernel (H = 300).
static void test_cuda_gradients_elman(void) {
    NEED_DEVICE();
    compare_cell(DSF_CELL_ELMAN);
    if (test_current_failed) return;
    enum { T = 70 };
    const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1, .cell = DSF_CELL_ELMAN};
    dsf_lm m;
    CHECK(make_model_cfg(&m, &cfg, 1, 53, T) == 0);
    compare_model(&m, 5, T, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_FFT, 1e-3);
    lm_destroy(&m);
}

// Correction sweeps (--feedback uniform+2) for each cell and scan, and many
// blocks (H = 300) with zero+3 (BPTT truncated to 3 steps).
static void test_cuda_gradients_sweeps(void) {
    NEED_DEVICE();
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN};
    const dsf_scan_kind scans[] = {DSF_SCAN_SEQ, DSF_SCAN_BLELLOCH, DSF_SCAN_FFT};
    for (int k = 0; k < 3 && !test_current_failed; k++)
        for (int s = 0; s < 3; s++) {
            const dsf_lm_config cfg = {.V = 13, .E = 5, .H = 7, .L = 2, .cell = cells[k]};
            dsf_lm m;
            CHECK(make_model_fb(&m, &cfg, 3, 23, 12, "uniform+2") == 0);
            compare_model(&m, 3, 12, DSF_METHOD_DSF, scans[s], 1e-4);
            lm_destroy(&m);
        }
    enum { T = 70 };
    for (int k = 0; k < 3 && !test_current_failed; k++) {
        const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1, .cell = cells[k]};
        dsf_lm m;
        CHECK(make_model_fb(&m, &cfg, 1, 54, T, "zero+3") == 0);
        compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-3);
        lm_destroy(&m);
    }
}

// The diag feedback (the exact diagonal of each step's Jacobian, a varying
// scan), alone and with two sweeps, for each cell and chunked scan.
static void test_cuda_gradients_diag(void) {
    NEED_DEVICE();
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN};
    const char *fbs[] = {"diag", "diag+2"};
    for (int k = 0; k < 3 && !test_current_failed; k++)
        for (int f = 0; f < 2; f++)
            for (int s = 0; s < 2; s++) {
                const dsf_lm_config cfg = {.V = 13, .E = 5, .H = 7, .L = 2, .cell = cells[k]};
                dsf_lm m;
                CHECK(make_model_fb(&m, &cfg, 3, 28, 12, fbs[f]) == 0);
                compare_model(&m, 3, 12, DSF_METHOD_DSF, s ? DSF_SCAN_BLELLOCH : DSF_SCAN_SEQ,
                              1e-4);
                lm_destroy(&m);
            }
}

// The lowrank feedback (GRU and Elman; rank 3, and 200 of H = 300 with many
// blocks): its sequential kernel under --scan seq and blelloch against the CPU's
// scans (blelloch's chunks there, one pass here: equal up to rounding).
static void test_cuda_gradients_lowrank(void) {
    NEED_DEVICE();
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_ELMAN};
    for (int k = 0; k < 2 && !test_current_failed; k++) {
        const dsf_lm_config cfg = {.V = 13, .E = 5, .H = 7, .L = 2, .cell = cells[k]};
        dsf_lm m;
        CHECK(make_model_fb(&m, &cfg, 3, 29, 12, "lowrank:3") == 0);
        compare_model(&m, 3, 12, DSF_METHOD_DSF, DSF_SCAN_SEQ, 1e-4);
        compare_model(&m, 3, 12, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-4);
        lm_destroy(&m);
    }
    if (test_current_failed) return;
    enum { T = 20 };
    const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1};
    dsf_lm m;
    CHECK(make_model_fb(&m, &cfg, 1, 56, T, "lowrank:200") == 0);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-3);
    lm_destroy(&m);
}

// The fit feedback (GRU): two steps that re-estimate a (rate 0.5) on the CPU and
// the device; the second step's gradients use the first's estimate. The
// gradients, the loss and the feedback after each step.
static void test_cuda_fit(void) {
    NEED_DEVICE();
    enum { B = 3, T = 9 };
    const dsf_lm_config cfg = {.V = 13, .E = 5, .H = 7, .L = 2};
    dsf_lm m;
    CHECK(make_model_fb(&m, &cfg, 3, 30, T, "fit") == 0);
    dsf_lm_work w;
    CHECK(lm_work_create(&w, &m.cfg, B, T) == 0);
    CHECK(lm_work_reserve(&w, &m, DSF_METHOD_DSF) == 0);
    w.fit_now = 1;
    w.fit_rate = 0.5f;
    dsf_gpu *g;
    CHECK_MSG(dsf_gpu_create(&g, &m, NULL, B, T, DSF_SCAN_BLELLOCH) == 0, "%s", dsf_error());
    dsf_gpu_set_fit(g, 1, 0.5f);
    int32_t x[(T + 1) * B];
    dsf_rng r;
    dsf_rng_seed(&r, 31);
    float *grads = malloc(sizeof(float) * m.n), *a = malloc(sizeof(float) * m.cfg.L * m.cfg.H);
    for (int step = 0; step < 2 && !test_current_failed; step++) {
        fill_tokens(&r, x, (T + 1) * B, m.cfg.V);
        const double lc = lm_forward(&m, &w, x, x + B, T);
        lm_backward(&m, &w, DSF_METHOD_DSF);
        const double lg = dsf_gpu_forward(g, x, x + B, T);
        dsf_gpu_backward(g, DSF_METHOD_DSF);
        dsf_gpu_get_grads(g, grads);
        dsf_gpu_get_feedback(g, a);
        const double gerr = rel_err(grads, m.grads, m.n);
        const double aerr = rel_err(a, m.feedback, (size_t)m.cfg.L * m.cfg.H);
        CHECK_MSG(fabs(lc - lg) < 1e-5 * fmax(1, lc) && gerr < 1e-4 && aerr < 1e-4,
                  "step %d: loss %.9g/%.9g, gradients off by %g, a by %g", step, lc, lg, gerr, aerr);
    }
    free(grads);
    free(a);
    dsf_gpu_destroy(g);
    lm_work_destroy(&w);
    lm_destroy(&m);
}

// Dropout 0.3 on the embedding and every layer's output, the CPU's masks: each
// cell under bptt and dsf, tied (E = H) and not.
static void test_cuda_gradients_dropout(void) {
    NEED_DEVICE();
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN};
    for (int k = 0; k < 3 && !test_current_failed; k++)
        for (int tie = 0; tie < 2; tie++) {
            dsf_lm m;
            CHECK(make_model_cell(&m, cells[k], tie, 24, 11) == 0);
            compare_model_drop(&m, 3, 11, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-4, 0.3f);
            compare_model_drop(&m, 3, 11, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-4, 0.3f);
            lm_destroy(&m);
        }
}

// The block architecture (LayerNorms, the MLP, residual sums, tied decoder) with
// each cell under bptt, ft and dsf with every scan, diag+1, and dropout; then sizes that
// take many blocks in every kernel (H = 300, an MLP of 520).
static void test_cuda_gradients_block(void) {
    NEED_DEVICE();
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN};
    for (int k = 0; k < 3 && !test_current_failed; k++) {
        const dsf_lm_config cfg = {.V = 13, .E = 7, .H = 7, .L = 2, .cell = cells[k],
                                   .arch = DSF_ARCH_BLOCK, .tie = 1, .mlp = 10};
        dsf_lm m;
        CHECK(make_model_cfg(&m, &cfg, 2, 25, 9) == 0);
        compare_model(&m, 3, 9, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-4);
        compare_model(&m, 3, 9, DSF_METHOD_FT, DSF_SCAN_SEQ, 1e-4);
        compare_model(&m, 3, 9, DSF_METHOD_DSF, DSF_SCAN_SEQ, 1e-4);
        compare_model(&m, 3, 9, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-4);
        compare_model(&m, 3, 9, DSF_METHOD_DSF, DSF_SCAN_FFT, 1e-4);
        lm_destroy(&m);
        CHECK(make_model_fb(&m, &cfg, 2, 26, 9, "diag+1") == 0);
        compare_model(&m, 3, 9, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-4);
        // dropout on the embedding and on both branches, the CPU's masks
        compare_model_drop(&m, 3, 9, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-4, 0.3f);
        compare_model_drop(&m, 3, 9, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-4, 0.3f);
        lm_destroy(&m);
    }
    if (test_current_failed) return;
    enum { T = 20 };
    const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1, .arch = DSF_ARCH_BLOCK,
                               .tie = 1, .mlp = 520};
    dsf_lm m;
    CHECK(make_model_cfg(&m, &cfg, 1, 55, T) == 0);
    compare_model(&m, 5, T, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_FFT, 1e-3);
    lm_destroy(&m);
}

// Sizes that take many blocks in every kernel (H = 300 is no multiple of 32 or
// of 256): indexing across blocks. (One layer at PyTorch's initialisation; the
// longer sums of the GEMMs in other orders: a looser tolerance.)
static void test_cuda_gradients_large(void) {
    NEED_DEVICE();
    enum { T = 70 };
    const dsf_lm_config cfg = {.V = 50, .E = 300, .H = 300, .L = 1};
    dsf_lm m;
    CHECK(make_model_cfg(&m, &cfg, 1, 51, T) == 0);
    compare_model(&m, 5, T, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_BLELLOCH, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_FT, DSF_SCAN_SEQ, 1e-3);
    compare_model(&m, 5, T, DSF_METHOD_DSF, DSF_SCAN_FFT, 1e-3);
    lm_destroy(&m);
}

// The same step twice from the same state gives the same bits.
static void test_cuda_deterministic(void) {
    NEED_DEVICE();
    enum { B = 4, T = 12 };
    dsf_lm m;
    CHECK(make_model(&m, 0, 31, T) == 0);
    int32_t x[(T + 1) * B];
    dsf_rng r;
    dsf_rng_seed(&r, 32);
    fill_tokens(&r, x, (T + 1) * B, m.cfg.V);
    float *g1 = malloc(sizeof(float) * m.n), *g2 = malloc(sizeof(float) * m.n);
    double loss[2];
    for (int k = 0; k < 2; k++) {
        dsf_gpu *g;
        CHECK_MSG(dsf_gpu_create(&g, &m, NULL, B, T, DSF_SCAN_BLELLOCH) == 0, "%s", dsf_error());
        loss[k] = dsf_gpu_forward(g, x, x + B, T);
        dsf_gpu_backward(g, DSF_METHOD_DSF);
        dsf_gpu_get_grads(g, k ? g2 : g1);
        dsf_gpu_destroy(g);
    }
    const int same = loss[0] == loss[1] && memcmp(g1, g2, sizeof(float) * m.n) == 0;
    free(g1);
    free(g2);
    lm_destroy(&m);
    CHECK(same);
}

// DSF_CUDA_GRAPHS=1 (the recurrent loops replayed from CUDA graphs) gives the
// same bits as plain launches, for each cell under bptt and dsf, over steps of
// the full length (graphs) and a shorter one (plain) in turn, three layers (an
// odd count: the error buffers trade places per layer).
static void test_cuda_graphs(void) {
    NEED_DEVICE();
    enum { B = 3, T = 10, S = 4 };
    const dsf_cell cells[] = {DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN};
    for (int k = 0; k < 3 && !test_current_failed; k++)
        for (int meth = 0; meth < 2; meth++) {
            const dsf_method method = meth ? DSF_METHOD_DSF : DSF_METHOD_BPTT;
            const dsf_lm_config cfg = {.V = 11, .E = 6, .H = 6, .L = 3, .cell = cells[k]};
            dsf_lm m;
            CHECK(make_model_cfg(&m, &cfg, 3, 61, T) == 0);
            dsf_gpu *g[2];
            for (int on = 0; on < 2; on++) {
                CHECK(setenv("DSF_CUDA_GRAPHS", on ? "1" : "0", 1) == 0);
                CHECK_MSG(dsf_gpu_create(&g[on], &m, NULL, B, T, DSF_SCAN_BLELLOCH) == 0, "%s",
                          dsf_error());
            }
            unsetenv("DSF_CUDA_GRAPHS");
            int32_t x[(T + 1) * B];
            dsf_rng r;
            dsf_rng_seed(&r, 62);
            float *gr[2] = {malloc(sizeof(float) * m.n), malloc(sizeof(float) * m.n)};
            int same = 1;
            for (int step = 0; step < S && same; step++) {
                const int Ts = step == 2 ? T - 3 : T;
                fill_tokens(&r, x, (size_t)(Ts + 1) * B, m.cfg.V);
                double loss[2];
                for (int on = 0; on < 2; on++) {
                    loss[on] = dsf_gpu_forward(g[on], x, x + B, Ts);
                    dsf_gpu_backward(g[on], method);
                    dsf_gpu_get_grads(g[on], gr[on]);
                }
                same = loss[0] == loss[1] && memcmp(gr[0], gr[1], sizeof(float) * m.n) == 0;
                CHECK_MSG(same, "%s %s step %d: graphs change the result", dsf_cell_name(cells[k]),
                          dsf_method_name(method), step);
            }
            free(gr[0]);
            free(gr[1]);
            dsf_gpu_destroy(g[0]);
            dsf_gpu_destroy(g[1]);
            lm_destroy(&m);
        }
}

// Two training steps (clip 0.01, which binds) on the CPU and the GPU from the
// same model: the norms, then the parameters (and AdamW's moments).
static void compare_optim(dsf_optim_kind kind, float lr) {
    enum { B = 3, T = 8 };
    const double clip = 0.01;
    dsf_lm m;
    CHECK(make_model(&m, 0, 41, T) == 0);
    dsf_lm_work w;
    CHECK(lm_work_create(&w, &m.cfg, B, T) == 0);
    dsf_optim oc, og;
    CHECK(optim_create(&oc, kind, lr, m.n) == 0 && optim_create(&og, kind, lr, m.n) == 0);
    oc.warmup = og.warmup = 1;  // the schedule: warm-up then cosine
    oc.total = og.total = 4;
    dsf_gpu *g;
    CHECK_MSG(dsf_gpu_create(&g, &m, &og, B, T, DSF_SCAN_SEQ) == 0, "%s", dsf_error());
    int32_t x[(T + 1) * B];
    dsf_rng r;
    dsf_rng_seed(&r, 42);
    float *p = malloc(sizeof(float) * m.n), *mm = NULL, *vv = NULL;
    int ok = 1;
    for (int s = 0; s < 2 && ok; s++) {
        fill_tokens(&r, x, (T + 1) * B, m.cfg.V);
        const double lc = lm_forward(&m, &w, x, x + B, T);
        lm_backward(&m, &w, DSF_METHOD_BPTT);
        const double nc = optim_clip(m.grads, m.n, clip);
        optim_step(&oc, &m);
        double lg, ng;
        CHECK(dsf_gpu_step(g, x, x + B, T, DSF_METHOD_BPTT, clip, &og, &lg, &ng) == 0);
        if (fabs(lc - lg) > 1e-5 * fmax(1, lc) || fabs(nc - ng) > 1e-4 * nc || nc < clip) {
            test_fail(__FILE__, __LINE__, "%s step %d: loss %.9g/%.9g norm %.9g/%.9g",
                      dsf_optim_name(kind), s, lc, lg, nc, ng);
            ok = 0;
        }
    }
    dsf_gpu_get_params(g, p);
    double err = rel_err(p, m.params, m.n), merr = 0;
    if (kind == DSF_OPTIM_ADAMW) {
        mm = malloc(sizeof(float) * m.n);
        vv = malloc(sizeof(float) * m.n);
        dsf_gpu_get_moments(g, mm, vv);
        merr = fmax(rel_err(mm, oc.m, m.n), rel_err(vv, oc.v, m.n));
    }
    free(p);
    free(mm);
    free(vv);
    const int64_t tc = oc.t, tg = og.t;
    dsf_gpu_destroy(g);
    optim_destroy(&oc);
    optim_destroy(&og);
    lm_work_destroy(&w);
    lm_destroy(&m);
    if (!ok) return;
    CHECK(tc == 2 && tg == 2);
    CHECK_MSG(err < (kind == DSF_OPTIM_SGD ? 1e-5 : 1e-4) && merr < 1e-4, "%s: parameters off by %g, moments by %g",
              dsf_optim_name(kind), err, merr);
}

// Phase timing: after two profiled steps every phase has a time, none negative.
static void test_cuda_profile(void) {
    NEED_DEVICE();
    enum { B = 3, T = 8 };
    dsf_lm m;
    CHECK(make_model(&m, 0, 43, T) == 0);
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_SGD, 0.1f, m.n) == 0);
    dsf_gpu *g;
    CHECK_MSG(dsf_gpu_create(&g, &m, &o, B, T, DSF_SCAN_SEQ) == 0, "%s", dsf_error());
    int32_t x[(T + 1) * B];
    dsf_rng r;
    dsf_rng_seed(&r, 44);
    dsf_gpu_profile(g, 1);
    for (int s = 0; s < 2; s++) {
        fill_tokens(&r, x, (T + 1) * B, m.cfg.V);
        double loss, norm;
        CHECK(dsf_gpu_step(g, x, x + B, T, DSF_METHOD_BPTT, 1.0, &o, &loss, &norm) == 0);
    }
    double ms[DSF_PROF_NPHASES];
    dsf_gpu_profile_ms(g, ms);
    int bad = 0;
    for (int p = 0; p < DSF_PROF_NPHASES; p++) bad += !(ms[p] > 0) || !isfinite(ms[p]);
    dsf_gpu_profile(g, 0);
    dsf_gpu_destroy(g);
    optim_destroy(&o);
    lm_destroy(&m);
    CHECK_MSG(bad == 0, "%d phases without a positive time (forward %g, optimizer %g ms)", bad,
              ms[DSF_PROF_FORWARD], ms[DSF_PROF_OPTIM]);
}

static void test_cuda_optim(void) {
    NEED_DEVICE();
    compare_optim(DSF_OPTIM_SGD, 1.0f);
    compare_optim(DSF_OPTIM_ADAMW, 1e-2f);
}

void suite_cuda(void) {
    RUN(test_cuda_scan_device);
    RUN(test_cuda_gradients);
    RUN(test_cuda_gradients_large);
    RUN(test_cuda_gradients_lstm);
    RUN(test_cuda_gradients_elman);
    RUN(test_cuda_gradients_sweeps);
    RUN(test_cuda_gradients_dropout);
    RUN(test_cuda_gradients_diag);
    RUN(test_cuda_gradients_block);
    RUN(test_cuda_gradients_lowrank);
    RUN(test_cuda_fit);
    RUN(test_cuda_deterministic);
    RUN(test_cuda_graphs);
    RUN(test_cuda_optim);
    RUN(test_cuda_profile);
}
