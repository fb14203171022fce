// test_grad.c: the gradient methods against independent references.
//   - the GRU cell's local backward and exact Jacobian diagonal against central
//     finite differences of a double-precision reference step;
//   - the whole model under BPTT against central finite differences of a
//     double-precision reference model;
//   - DSF with a = 0 equals FT; the DSF scan equals the materialised convolution
//     δ_t = Σ_k a^k e_{t+k}; with T = 1 all methods agree.
#include <string.h>

#include "grad/method.h"
#include "model/lm.h"
#include "test.h"

// ---- a double-precision reference GRU language model, written independently ----

typedef struct {
    int V, E, H, L, B, T;
    const double *p;  // parameters in dsf_lm's flat layout
} ref_model;

static double sig(double x) { return 1 / (1 + exp(-x)); }

// One GRU step for one batch row: h = GRU(x, hp) with weights at w_ih (3H,I), ...
static void ref_step(const double *w_ih, const double *w_hh, const double *b_ih,
                     const double *b_hh, const double *x, const double *hp, double *h, int I,
                     int H) {
    for (int i = 0; i < H; i++) {
        double a[3], c[3];
        for (int g = 0; g < 3; g++) {
            a[g] = b_ih[g * H + i];
            c[g] = b_hh[g * H + i];
            for (int k = 0; k < I; k++) a[g] += w_ih[(size_t)(g * H + i) * I + k] * x[k];
            for (int k = 0; k < H; k++) c[g] += w_hh[(size_t)(g * H + i) * H + k] * hp[k];
        }
        double r = sig(a[0] + c[0]), z = sig(a[1] + c[1]);
        double n = tanh(a[2] + r * c[2]);
        h[i] = (1 - z) * n + z * hp[i];
    }
}

// Mean cross-entropy of tokens x, y (T,B) from a zero state.
static double ref_loss(const ref_model *m, const int32_t *x, const int32_t *y) {
    const int V = m->V, E = m->E, H = m->H, L = m->L, B = m->B, T = m->T;
    double *h = calloc((size_t)L * B * H, sizeof(double));
    double *in = calloc((size_t)(E > H ? E : H), sizeof(double));
    double *out = calloc((size_t)H, sizeof(double));
    double total = 0;
    for (int t = 0; t < T; t++)
        for (int b = 0; b < B; b++) {
            const double *p = m->p;
            memcpy(in, p + (size_t)x[t * B + b] * E, sizeof(double) * E);
            p += (size_t)V * E;
            int I = E;
            for (int l = 0; l < L; l++) {
                const double *w_ih = p, *w_hh = w_ih + 3 * H * I, *b_ih = w_hh + 3 * H * H,
                             *b_hh = b_ih + 3 * H;
                double *hl = h + ((size_t)l * B + b) * H;
                ref_step(w_ih, w_hh, b_ih, b_hh, in, hl, out, I, H);
                memcpy(hl, out, sizeof(double) * H);
                memcpy(in, out, sizeof(double) * H);
                p = b_hh + 3 * H;
                I = H;
            }
            const double *dw = p, *db = dw + (size_t)V * H;
            double mx = -1e300, logits[64];
            for (int v = 0; v < V; v++) {
                logits[v] = db[v];
                for (int k = 0; k < H; k++) logits[v] += dw[(size_t)v * H + k] * in[k];
                mx = fmax(mx, logits[v]);
            }
            double s = 0;
            for (int v = 0; v < V; v++) s += exp(logits[v] - mx);
            total += log(s) + mx - logits[y[t * B + b]];
        }
    free(h);
    free(in);
    free(out);
    return total / (B * T);
}

static void random_model(dsf_lm *m, const dsf_lm_config *cfg, uint64_t seed, float scale) {
    DSF_ASSERT(lm_create(m, cfg) == 0);
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    dsf_rng_fill_uniform(&r, m->params, m->n, -scale, scale);
    dsf_rng_fill_uniform(&r, m->feedback, (size_t)cfg->L * cfg->H, 0, 1);
}

// BPTT gradients of the whole model equal central differences of the double
// reference, for every parameter.
static void check_model_fd(int L, int B, int T, int E, int H) {
    dsf_lm_config cfg = {.V = 7, .E = E, .H = H, .L = L};
    dsf_lm m;
    random_model(&m, &cfg, 42 + L + T, 0.5f);
    int32_t x[64], y[64];
    test_random_tokens(x, y, B * T, cfg.V, 7 + T);
    double loss = test_lm_grad(&m, x, y, B, T, DSF_METHOD_BPTT);

    double *p = malloc(sizeof(double) * m.n);
    for (size_t i = 0; i < m.n; i++) p[i] = m.params[i];
    ref_model r = {cfg.V, cfg.E, cfg.H, cfg.L, B, T, p};
    CHECK_CLOSE(loss, ref_loss(&r, x, y), 1e-5);
    double gmax = 0, worst = 0;
    for (size_t i = 0; i < m.n; i++) gmax = fmax(gmax, fabs(m.grads[i]));
    for (size_t i = 0; i < m.n; i++) {
        double keep = p[i], eps = 1e-5;
        p[i] = keep + eps;
        double lp = ref_loss(&r, x, y);
        p[i] = keep - eps;
        double lm = ref_loss(&r, x, y);
        p[i] = keep;
        double fd = (lp - lm) / (2 * eps);
        worst = fmax(worst, fabs(fd - m.grads[i]) / gmax);
    }
    free(p);
    lm_destroy(&m);
    CHECK_MSG(worst < 2e-4, "worst |fd - grad| / max|grad| = %g", worst);
}

static void test_grad_bptt_fd_one_layer(void) { check_model_fd(1, 2, 5, 4, 6); }
static void test_grad_bptt_fd_two_layers(void) { check_model_fd(2, 3, 4, 5, 4); }
static void test_grad_bptt_fd_three_layers_t1(void) { check_model_fd(3, 2, 1, 3, 5); }

// Central difference of Σ_i dh_i h_i(...) with respect to *v, one of the inputs.
static double fd_dot(const double *w_ih, const double *w_hh, const double *b_ih,
                     const double *b_hh, const double *x, const double *hp, const float *dh,
                     double *v, int I, int H) {
    double hp_[64], hm_[64], keep = *v, eps = 1e-6, s = 0;
    *v = keep + eps;
    ref_step(w_ih, w_hh, b_ih, b_hh, x, hp, hp_, I, H);
    *v = keep - eps;
    ref_step(w_ih, w_hh, b_ih, b_hh, x, hp, hm_, I, H);
    *v = keep;
    for (int i = 0; i < H; i++) s += dh[i] * (hp_[i] - hm_[i]) / (2 * eps);
    return s;
}

// The cell's local backward (through gru_layer_backward with FT, one step) and
// the Jacobian transpose product against finite differences of ref_step.
static void test_grad_gru_cell_fd(void) {
    enum { I = 5, H = 4, G = 3 * H };
    dsf_rng r;
    dsf_rng_seed(&r, 3);
    float w_ih[G * I], w_hh[G * H], b_ih[G], b_hh[G], x[I], h0[H], dh[H];
    dsf_rng_fill_uniform(&r, w_ih, G * I, -0.8f, 0.8f);
    dsf_rng_fill_uniform(&r, w_hh, G * H, -0.8f, 0.8f);
    dsf_rng_fill_uniform(&r, b_ih, G, -0.5f, 0.5f);
    dsf_rng_fill_uniform(&r, b_hh, G, -0.5f, 0.5f);
    dsf_rng_fill_uniform(&r, x, I, -1, 1);
    dsf_rng_fill_uniform(&r, h0, H, -1, 1);
    dsf_rng_fill_uniform(&r, dh, H, -1, 1);  // dL/dh for L = dh · h
    cell_weights w = {w_ih, w_hh, b_ih, b_hh};
    float hs[2 * H], gates[G], q[H], scratch[G], gi[G], gh[G], carry[H], diag[H];
    memcpy(hs, h0, sizeof h0);
    cell_cache c = {.h = hs, .gates = gates, .q = q};
    gru_forward(&w, x, &c, scratch, 1, 1, I, H);
    gru_backward_local(dh, h0, gates, q, gi, gh, 1, H);
    gru_backward_jt(&w, dh, gates, gh, carry, 1, H);
    gru_jacobian_diag(&w, h0, gates, q, diag, 1, H);

    double dw_ih[G * I], dw_hh[G * H], db_ih[G], db_hh[G], dx[I], dhp[H], out[H];
    for (int k = 0; k < G * I; k++) dw_ih[k] = w_ih[k];
    for (int k = 0; k < G * H; k++) dw_hh[k] = w_hh[k];
    for (int k = 0; k < G; k++) db_ih[k] = b_ih[k], db_hh[k] = b_hh[k];
    for (int k = 0; k < I; k++) dx[k] = x[k];
    for (int k = 0; k < H; k++) dhp[k] = h0[k];
    ref_step(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, out, I, H);
    for (int k = 0; k < H; k++) CHECK_CLOSE(out[k], hs[H + k], 1e-6);

    // Perturb h'_j: the carry is Σ_i dh_i ∂h_i/∂h'_j, the diagonal ∂h_j/∂h'_j.
    for (int j = 0; j < H; j++) {
        CHECK_CLOSE(carry[j], fd_dot(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, dh, &dhp[j], I, H), 1e-5);
        double hp_[H], hm_[H], keep = dhp[j], eps = 1e-6;
        dhp[j] = keep + eps;
        ref_step(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, hp_, I, H);
        dhp[j] = keep - eps;
        ref_step(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, hm_, I, H);
        dhp[j] = keep;
        CHECK_CLOSE(diag[j], (hp_[j] - hm_[j]) / (2 * eps), 1e-5);
    }
    // Biases: ∂L/∂b_ih = gi, ∂L/∂b_hh = gh.
    for (int k = 0; k < G; k++) {
        CHECK_CLOSE(gi[k], fd_dot(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, dh, &db_ih[k], I, H), 1e-5);
        CHECK_CLOSE(gh[k], fd_dot(dw_ih, dw_hh, db_ih, db_hh, dx, dhp, dh, &db_hh[k], I, H), 1e-5);
    }
}

// DSF with a = 0 gives exactly FT's gradient, element for element, for every
// cell (the LSTM's a_h and a_c both zero).
static void test_grad_dsf_zero_equals_ft(void) {
    for (int cell = 0; cell < 3; cell++) {
        dsf_lm_config cfg = {.V = 11, .E = 6, .H = 9, .L = 2, .cell = (dsf_cell)cell};
        enum { B = 3, T = 8 };
        dsf_lm m;
        random_model(&m, &cfg, 5, 0.4f);
        memset(m.feedback, 0, sizeof(float) * cfg.L * dsf_cell_states(m.cfg.cell) * cfg.H);
        int32_t x[B * T], y[B * T];
        test_random_tokens(x, y, B * T, cfg.V, 9);
        double l1 = test_lm_grad(&m, x, y, B, T, DSF_METHOD_FT);
        float *g_ft = malloc(sizeof(float) * m.n);
        memcpy(g_ft, m.grads, sizeof(float) * m.n);
        double l2 = test_lm_grad(&m, x, y, B, T, DSF_METHOD_DSF);
        size_t diff = 0;
        for (size_t i = 0; i < m.n; i++) diff += g_ft[i] != m.grads[i];
        free(g_ft);
        lm_destroy(&m);
        CHECK(l1 == l2);
        CHECK_MSG(diff == 0, "%s: %zu gradient elements differ", dsf_cell_name((dsf_cell)cell), diff);
    }
}

// The gradient of m under meth with scan sc into g (m->n floats).
static void grads_with(dsf_lm *m, const int32_t *x, const int32_t *y, int B, int T,
                       dsf_method meth, dsf_scan_kind sc, float *g) {
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m->cfg, B, T) == 0);
    DSF_ASSERT(lm_work_reserve(&w, m, meth) == 0);
    w.scan = sc;
    lm_forward(m, &w, x, y, T);
    lm_backward(m, &w, meth);
    memcpy(g, m->grads, m->n * sizeof(float));
    lm_work_destroy(&w);
}

static size_t count_differ(const float *a, const float *b, size_t from, size_t to, float tol) {
    size_t n = 0;
    for (size_t i = from; i < to; i++) n += fabsf(a[i] - b[i]) > tol * (1 + fabsf(b[i]));
    return n;
}

// Each layer uses its own feedback, and the LSTM's c chain its own a_c, for every
// scan: with layer 1's a zero, the top layer's and the decoder's gradients are
// FT's whatever layer 0's a is; with layer 0's a zero, the top layer's gradients
// do not depend on it either (they equal those with both layers' a drawn); and
// the LSTM's gradient changes when a_c alone changes.
static void test_grad_feedback_per_layer(void) {
    enum { B = 3, T = 9 };
    for (int cell = 0; cell < 3; cell++)
        for (int sc = 0; sc < 3; sc++) {
            if (!dsf_scan_available((dsf_scan_kind)sc)) {
                test_skip("the fft scan needs FFTW");
                continue;
            }
            dsf_lm_config cfg = {.V = 11, .E = 6, .H = 7, .L = 2, .cell = (dsf_cell)cell};
            dsf_lm m;
            random_model(&m, &cfg, 31, 0.4f);
            const size_t SH = (size_t)dsf_cell_states(m.cfg.cell) * cfg.H;
            dsf_rng r;
            dsf_rng_seed(&r, 3);
            dsf_rng_fill_uniform(&r, m.feedback, 2 * SH, 0.2f, 0.9f);
            float *drawn = malloc(2 * SH * sizeof(float));
            memcpy(drawn, m.feedback, 2 * SH * sizeof(float));
            int32_t x[B * T], y[B * T];
            test_random_tokens(x, y, B * T, cfg.V, 13);
            float *ft = malloc(m.n * sizeof(float)), *g = malloc(m.n * sizeof(float)),
                  *both = malloc(m.n * sizeof(float));
            grads_with(&m, x, y, B, T, DSF_METHOD_FT, (dsf_scan_kind)sc, ft);
            grads_with(&m, x, y, B, T, DSF_METHOD_DSF, (dsf_scan_kind)sc, both);
            const size_t top = lm_find(&m, "rnn.weight_ih_l1")->offset;  // layer 1, decoder
            memset(m.feedback + SH, 0, SH * sizeof(float));                // layer 1: a = 0
            grads_with(&m, x, y, B, T, DSF_METHOD_DSF, (dsf_scan_kind)sc, g);
            size_t d1 = count_differ(g, ft, top, m.n, 1e-6f);
            size_t d0 = count_differ(g, ft, 0, top, 1e-6f);  // layer 0 keeps its DSF
            memcpy(m.feedback + SH, drawn + SH, SH * sizeof(float));
            memset(m.feedback, 0, SH * sizeof(float));  // layer 0: a = 0
            grads_with(&m, x, y, B, T, DSF_METHOD_DSF, (dsf_scan_kind)sc, g);
            size_t d2 = count_differ(g, both, top, m.n, 1e-5f);
            CHECK_MSG(d1 == 0 && d0 > 0 && d2 == 0,
                      "%s, scan %s: top layer with a = 0 differs from ft in %zu; layer 0 in %zu "
                      "(should); top layer depends on layer 0's a in %zu",
                      dsf_cell_name((dsf_cell)cell), dsf_scan_name((dsf_scan_kind)sc), d1, d0, d2);
            if (cell == DSF_CELL_LSTM) {  // a_c alone: layer 0's second half
                memcpy(m.feedback, drawn, 2 * SH * sizeof(float));
                for (int l = 0; l < 2; l++) memset(m.feedback + l * SH + cfg.H, 0, cfg.H * sizeof(float));
                grads_with(&m, x, y, B, T, DSF_METHOD_DSF, (dsf_scan_kind)sc, g);
                CHECK_MSG(count_differ(g, both, 0, m.n, 1e-4f) > 0,
                          "lstm, scan %s: a_c = 0 changes nothing", dsf_scan_name((dsf_scan_kind)sc));
            }
            free(ft), free(g), free(both), free(drawn);
            lm_destroy(&m);
        }
}

// With T = 1 there is no recurrence to approximate: all methods agree.
static void test_grad_t1_methods_agree(void) {
    dsf_lm_config cfg = {.V = 9, .E = 5, .H = 7, .L = 3};
    enum { B = 4, T = 1 };
    dsf_lm m;
    random_model(&m, &cfg, 6, 0.5f);
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, cfg.V, 10);
    test_lm_grad(&m, x, y, B, T, DSF_METHOD_BPTT);
    float *g = malloc(sizeof(float) * m.n);
    memcpy(g, m.grads, sizeof(float) * m.n);
    for (int meth = DSF_METHOD_FT; meth <= DSF_METHOD_DSF; meth++) {
        test_lm_grad(&m, x, y, B, T, (dsf_method)meth);
        for (size_t i = 0; i < m.n; i++) CHECK_CLOSE(m.grads[i], g[i], 1e-6);
    }
    free(g);
    lm_destroy(&m);
}

// BPTT and DSF must differ for T > 1 (else the tests above prove nothing).
static void test_grad_methods_differ(void) {
    dsf_lm_config cfg = {.V = 9, .E = 5, .H = 7, .L = 1};
    enum { B = 2, T = 6 };
    dsf_lm m;
    random_model(&m, &cfg, 8, 0.5f);
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, cfg.V, 11);
    float *g[3];
    for (int meth = 0; meth < 3; meth++) {
        test_lm_grad(&m, x, y, B, T, (dsf_method)meth);
        g[meth] = malloc(sizeof(float) * m.n);
        memcpy(g[meth], m.grads, sizeof(float) * m.n);
    }
    double d01 = 0, d12 = 0;
    for (size_t i = 0; i < m.n; i++) {
        d01 = fmax(d01, fabs(g[0][i] - g[1][i]));
        d12 = fmax(d12, fabs(g[1][i] - g[2][i]));
    }
    for (int k = 0; k < 3; k++) free(g[k]);
    lm_destroy(&m);
    CHECK(d01 > 1e-4);
    CHECK(d12 > 1e-4);
}

// The scan against the materialised convolution δ_t = Σ_k a^k e_{t+k}.
static void test_grad_scan_equals_convolution(void) {
    const int lengths[] = {1, 2, 3, 7, 16, 33, 200};
    for (size_t li = 0; li < sizeof lengths / sizeof *lengths; li++) {
        int T = lengths[li], B = 3, H = 5;
        size_t n = (size_t)T * B * H;
        float *e = malloc(sizeof(float) * n), a[5];
        dsf_rng r;
        dsf_rng_seed(&r, (uint64_t)T);
        dsf_rng_fill_uniform(&r, e, n, -1, 1);
        dsf_rng_fill_uniform(&r, a, H, 0, 1);
        double *ref = calloc(n, sizeof(double));
        for (int t = 0; t < T; t++)
            for (int b = 0; b < B; b++)
                for (int i = 0; i < H; i++) {
                    double s = 0, ak = 1;
                    for (int k = 0; t + k < T; k++, ak *= a[i])
                        s += ak * e[((size_t)(t + k) * B + b) * H + i];
                    ref[((size_t)t * B + b) * H + i] = s;
                }
        CHECK(dsf_scan_stationary(DSF_SCAN_SEQ, e, a, T, B, H) == 0);
        double worst = 0;
        for (size_t k = 0; k < n; k++) worst = fmax(worst, fabs(e[k] - ref[k]) / fmax(1, fabs(ref[k])));
        free(e);
        free(ref);
        CHECK_MSG(worst < 1e-5, "T=%d: worst relative error %g", T, worst);
    }
}

// ---- feedbacks beyond a fixed diagonal: diag and fit ----

// One GRU layer with random weights, its forward pass over T steps from a
// random state, and random local errors e: what the feedback tests share.
typedef struct {
    int T, B, I, H;
    float *p, *x, *e, *g;  // weights (w_ih, w_hh, b_ih, b_hh), inputs, local errors, gradients
    cell_weights w;
    cell_grads gr;
    cell_cache c;
    cell_work work;
    float *scratch, *dx;
} layer_case;

static void layer_case_init(layer_case *lc, int T, int B, int I, int H, uint64_t seed) {
    const size_t G = 3 * (size_t)H, np = G * I + G * H + 2 * G, TB = (size_t)T * B;
    *lc = (layer_case){.T = T, .B = B, .I = I, .H = H};
    lc->p = calloc(np, sizeof(float));
    lc->g = calloc(np, sizeof(float));
    lc->x = calloc(TB * I, sizeof(float));
    lc->e = calloc(TB * H, sizeof(float));
    lc->c.h = calloc((TB + B) * H, sizeof(float));
    lc->c.gates = calloc(TB * G, sizeof(float));
    lc->c.q = calloc(TB * H, sizeof(float));
    lc->work.gi = calloc(TB * G, sizeof(float));
    lc->work.gh = calloc(TB * G, sizeof(float));
    lc->work.carry = calloc((size_t)B * H, sizeof(float));
    lc->work.avar = calloc(TB * H, sizeof(float));
    lc->scratch = calloc(TB * G, sizeof(float));
    lc->dx = calloc(TB * I, sizeof(float));
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    dsf_rng_fill_uniform(&r, lc->p, np, -0.7f, 0.7f);
    dsf_rng_fill_uniform(&r, lc->x, TB * I, -1, 1);
    dsf_rng_fill_uniform(&r, lc->e, TB * H, -1, 1);
    dsf_rng_fill_uniform(&r, lc->c.h, (size_t)B * H, -1, 1);
    lc->w = (cell_weights){lc->p, lc->p + G * I, lc->p + G * I + G * H, lc->p + G * I + G * H + G};
    lc->gr = (cell_grads){lc->g, lc->g + G * I, lc->g + G * I + G * H, lc->g + G * I + G * H + G};
    gru_forward(&lc->w, lc->x, &lc->c, lc->scratch, T, B, I, H);
}

static void layer_case_free(layer_case *lc) {
    void *bufs[] = {lc->p, lc->g, lc->x, lc->e, lc->c.h, lc->c.gates, lc->c.q, lc->work.gi,
                    lc->work.gh, lc->work.carry, lc->work.avar, lc->scratch, lc->dx};
    for (size_t k = 0; k < sizeof bufs / sizeof *bufs; k++) free(bufs[k]);
}

// A sequence classifier's only error is at the last step: DSF's state gradient is
// then δ_t = a^(T−1−t) ⊙ e_{T−1} exactly (FT's is zero before T−1), through
// gru_layer_backward, for every scan.
static void test_grad_last_error_powers(void) {
    enum { T = 40, B = 2, I = 1, H = 5 };
    const float a[H] = {0, 0.5f, 0.9f, 0.99f, 1};
    for (int sc = 0; sc < 3; sc++) {
        if (!dsf_scan_available((dsf_scan_kind)sc)) {
            test_skip("the fft scan needs FFTW");
            continue;
        }
        layer_case lc;
        layer_case_init(&lc, T, B, I, H, 41);
        float last[B * H];
        memcpy(last, lc.e + (size_t)(T - 1) * B * H, sizeof last);
        memset(lc.e, 0, sizeof(float) * (size_t)(T - 1) * B * H);
        const dsf_layer_feedback fb = {DSF_FEEDBACK_CONST, a, NULL, NULL, 0, NULL, 0};
        gru_layer_backward(DSF_METHOD_DSF, (dsf_scan_kind)sc, &fb, &lc.w, lc.x, &lc.c, lc.e,
                           &lc.work, &lc.gr, lc.dx, T, B, I, H);
        double worst = 0;
        for (int t = 0; t < T; t++)
            for (int k = 0; k < B * H; k++) {
                const double want = pow(a[k % H], T - 1 - t) * last[k];
                worst = fmax(worst, fabs(lc.e[(size_t)t * B * H + k] - want));
            }
        layer_case_free(&lc);
        CHECK_MSG(worst < 1e-6, "scan %s: |δ_t − a^(T−1−t) e_{T−1}| up to %g",
                  dsf_scan_name((dsf_scan_kind)sc), worst);
    }
}

// The diag feedback: δ_t = e_t + diag(J_{t+1}) δ_{t+1} with the diagonal taken by
// central differences of the double reference step at the forward pass's
// states, then the recurrence in double; seq and blelloch.
static void test_grad_diag_feedback_matches_fd(void) {
    enum { T = 7, B = 2, I = 3, H = 4, G = 3 * H };
    for (int k = 0; k < 2; k++) {
        layer_case lc;
        layer_case_init(&lc, T, B, I, H, 21);
        double w[G * I + G * H + 2 * G], ref[T * B * H], xd[I], hp[H], hpl[H], hmi[H];
        for (int j = 0; j < G * I + G * H + 2 * G; j++) w[j] = lc.p[j];
        const double *w_ih = w, *w_hh = w + G * I, *b_ih = w_hh + G * H, *b_hh = b_ih + G;
        for (int t = T - 1; t >= 0; t--)
            for (int b = 0; b < B; b++) {
                const int o = (t * B + b) * H;
                for (int i = 0; i < H; i++) ref[o + i] = lc.e[o + i];
                if (t == T - 1) continue;
                // diag(J_{t+1}): step t+1 maps h[t+1] (its previous state) to h[t+2].
                for (int j = 0; j < I; j++) xd[j] = lc.x[((t + 1) * B + b) * I + j];
                for (int j = 0; j < H; j++) hp[j] = lc.c.h[((t + 1) * B + b) * H + j];
                for (int i = 0; i < H; i++) {
                    const double keep = hp[i], eps = 1e-6;
                    hp[i] = keep + eps;
                    ref_step(w_ih, w_hh, b_ih, b_hh, xd, hp, hpl, I, H);
                    hp[i] = keep - eps;
                    ref_step(w_ih, w_hh, b_ih, b_hh, xd, hp, hmi, I, H);
                    hp[i] = keep;
                    ref[o + i] += (hpl[i] - hmi[i]) / (2 * eps) * ref[o + B * H + i];
                }
            }
        const dsf_layer_feedback fb = {.kind = DSF_FEEDBACK_DIAG};
        gru_layer_backward(DSF_METHOD_DSF, (dsf_scan_kind)k, &fb, &lc.w, lc.x, &lc.c, lc.e,
                           &lc.work, &lc.gr, lc.dx, T, B, I, H);
        double worst = 0;
        for (int j = 0; j < T * B * H; j++)
            worst = fmax(worst, fabs(lc.e[j] - ref[j]) / fmax(1, fabs(ref[j])));
        layer_case_free(&lc);
        CHECK_MSG(worst < 1e-5, "%s: worst relative error %g", dsf_scan_name((dsf_scan_kind)k),
                  worst);
    }
}

// The fit feedback's estimate â_i = Σ (J_tᵀδ_t)_i δ_t,i / Σ δ_t,i² (t ≥ 1), with
// Jᵀδ from the cell's own step-by-step Jacobian product (gru_backward_jt, checked
// against finite differences above) instead of fit's one GEMM; then the
// exponential average with rate 0.25 and the clamp to [−1, 1].
static void test_grad_fit_feedback_estimate(void) {
    enum { T = 6, B = 3, I = 2, H = 5 };
    layer_case lc;
    layer_case_init(&lc, T, B, I, H, 31);
    float a[H] = {0.5f, 0.1f, 0.9f, 0.3f, 0.7f}, a0[H], carry[B * H];
    memcpy(a0, a, sizeof a);
    const dsf_layer_feedback fb = {.kind = DSF_FEEDBACK_FIT, .a = a};
    gru_layer_backward(DSF_METHOD_DSF, DSF_SCAN_SEQ, &fb, &lc.w, lc.x, &lc.c, lc.e, &lc.work,
                       &lc.gr, lc.dx, T, B, I, H);
    double num[H] = {0}, den[H] = {0};
    for (int t = 1; t < T; t++) {
        const float *d = lc.e + t * B * H;
        gru_backward_jt(&lc.w, d, lc.c.gates + t * B * 3 * H, lc.work.gh + t * B * 3 * H, carry, B,
                        H);
        for (int b = 0; b < B; b++)
            for (int i = 0; i < H; i++) {
                num[i] += (double)carry[b * H + i] * d[b * H + i];
                den[i] += (double)d[b * H + i] * d[b * H + i];
            }
    }
    gru_fit_feedback(&lc.w, &lc.c, lc.e, &lc.work, a, 0.25f, T, B, H);
    layer_case_free(&lc);
    for (int i = 0; i < H; i++) {
        double fit = fmin(1, fmax(-1, num[i] / den[i]));
        CHECK_CLOSE(a[i], a0[i] + 0.25 * (fit - a0[i]), 1e-5);
    }
}

// A model whose feedback is lowrank with U = V = 0 has the gradient of the same
// diagonal feedback, element for element (seq).
static void test_grad_lowrank_zero_factors_is_diagonal(void) {
    dsf_lm_config cfg = {.V = 11, .E = 6, .H = 9, .L = 2};
    enum { B = 3, T = 8 };
    dsf_lm m;
    random_model(&m, &cfg, 5, 0.4f);
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, cfg.V, 9);
    test_lm_grad(&m, x, y, B, T, DSF_METHOD_DSF);
    float *g_diag = malloc(sizeof(float) * m.n);
    memcpy(g_diag, m.grads, sizeof(float) * m.n);
    CHECK(lm_alloc_lowrank(&m, 2) == 0);  // zeroed factors
    test_lm_grad(&m, x, y, B, T, DSF_METHOD_DSF);
    size_t diff = 0;
    for (size_t i = 0; i < m.n; i++) diff += g_diag[i] != m.grads[i];
    free(g_diag);
    lm_destroy(&m);
    CHECK_MSG(diff == 0, "%zu gradient elements differ", diff);
}

// Central differences (ε = 3e-3) of the library's own float forward pass against
// its BPTT gradient, every parameter; dropout masks fixed by re-seeding the
// generator before each pass. Returns the worst error as a fraction of the
// tensor's largest gradient element (-1 if nothing was dropped with dropout).
static double float_fd_worst(const dsf_lm_config *cfg, float dropout) {
    enum { B = 3, T = 5 };
    dsf_lm m;
    random_model(&m, cfg, 17, 0.5f);
    if (cfg->arch == DSF_ARCH_BLOCK) lm_init_params(&m, &(dsf_rng){{1, 2, 3, 4}});
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, cfg->V, 19);
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
    dsf_rng rng;
    w.dropout = dropout;
    w.rng = &rng;
    dsf_rng_seed(&rng, 5);
    lm_forward(&m, &w, x, y, T);
    lm_backward(&m, &w, DSF_METHOD_BPTT);
    int zeros = 0;
    for (int k = 0; dropout > 0 && k < B * T * cfg->H; k++) zeros += w.mask[0][k] == 0;
    double worst = 0;
    for (int k = 0; k < m.ntensors; k++) {
        const dsf_param *p = &m.tensors[k];
        double gmax = 0, err = 0;
        for (size_t i = 0; i < p->numel; i++) gmax = fmax(gmax, fabs(m.grads[p->offset + i]));
        for (size_t i = 0; i < p->numel; i++) {
            float *v = &m.params[p->offset + i], keep = *v;
            const float eps = 3e-3f;
            lm_work_reset_state(&w, &m.cfg);
            dsf_rng_seed(&rng, 5);
            *v = keep + eps;
            double lp = lm_forward(&m, &w, x, y, T);
            lm_work_reset_state(&w, &m.cfg);
            dsf_rng_seed(&rng, 5);
            *v = keep - eps;
            double lm_ = lm_forward(&m, &w, x, y, T);
            *v = keep;
            err = fmax(err, fabs((lp - lm_) / (2 * eps) - m.grads[p->offset + i]));
        }
        worst = fmax(worst, gmax > 0 ? err / gmax : 0);
    }
    lm_work_destroy(&w);
    lm_destroy(&m);
    return dropout > 0 && zeros == 0 ? -1 : worst;
}

// Dropout (fixed masks) and tied weights, for each cell: the layers' kernels are
// checked in double in test_layers.c; this checks where the masks and the tied
// gradient go. A misplaced mask or a lost half of the tied gradient is an error
// of the order of the gradient itself; the tolerance is 3% of the tensor's
// largest gradient element.
static void test_grad_dropout_tie_fd(void) {
    for (int cell = 0; cell < 3; cell++) {
        dsf_lm_config cfg = {.V = 11, .E = 8, .H = 8, .L = 2, .cell = (dsf_cell)cell, .tie = 1};
        double worst = float_fd_worst(&cfg, 0.3f);
        CHECK_MSG(worst >= 0, "no element dropped");
        CHECK_MSG(worst < 0.03, "%s: worst error %.3g of the tensor's largest gradient",
                  dsf_cell_name((dsf_cell)cell), worst);
    }
}

// The block architecture (LayerNorms, recurrent and MLP branches, residual
// stream, final LayerNorm, tied decoder), each cell, the same way, without and
// with dropout (on the embedding and on both branches' outputs).
static void test_grad_block_fd(void) {
    for (int cell = 0; cell < 3; cell++)
        for (int drop = 0; drop < 2; drop++) {
            dsf_lm_config cfg = {.V = 11, .E = 8, .H = 8, .L = 2, .cell = (dsf_cell)cell,
                                 .tie = 1, .arch = DSF_ARCH_BLOCK, .mlp = 12};
            double worst = float_fd_worst(&cfg, drop ? 0.3f : 0);
            CHECK_MSG(worst >= 0, "no element dropped");
            CHECK_MSG(worst < 0.03, "%s, dropout %d: worst error %.3g of the tensor's largest "
                      "gradient", dsf_cell_name((dsf_cell)cell), drop, worst);
        }
}

// The residual stack (x ← x + RNN(x), untied) and the block with the projection
// after the RNN and an untied head, each with and without dropout, the same way.
static void test_grad_residual_proj_fd(void) {
    for (int drop = 0; drop < 2; drop++) {
        dsf_lm_config res = {.V = 11, .E = 8, .H = 8, .L = 2, .arch = DSF_ARCH_RESIDUAL};
        double worst = float_fd_worst(&res, drop ? 0.3f : 0);
        CHECK_MSG(worst >= 0 && worst < 0.03, "residual, dropout %d: worst error %.3g", drop, worst);
        dsf_lm_config blk = {.V = 11, .E = 8, .H = 8, .L = 2, .arch = DSF_ARCH_BLOCK, .mlp = 12,
                             .proj = 1};
        worst = float_fd_worst(&blk, drop ? 0.3f : 0);
        CHECK_MSG(worst >= 0 && worst < 0.03, "block proj untied, dropout %d: worst error %.3g",
                  drop, worst);
    }
}

// A decoder that holds fewer logits rows than the batch (lm_set_decoder_bytes)
// goes through them in blocks and takes its gradients in the forward pass: the
// loss and every gradient are those of the one-block decoder, for the stack
// (tied) and the residual stack, with ignored rows; no_grad gives the same loss.
static void test_grad_decoder_blocks(void) {
    enum { B = 8, T = 20 };
    for (int arch = 0; arch < 2; arch++) {
        dsf_lm_config cfg = {.V = 13, .E = 8, .H = 8, .L = 2, .tie = !arch,
                             .arch = arch ? DSF_ARCH_RESIDUAL : DSF_ARCH_STACK};
        dsf_lm m;
        random_model(&m, &cfg, 23, 0.5f);
        int32_t x[B * T], y[B * T];
        test_random_tokens(x, y, B * T, cfg.V, 29);
        for (int r = 0; r < B * T; r += 5) y[r] = DSF_IGNORE;  // 128 counted rows
        float *g1 = malloc(m.n * sizeof(float));
        double loss[3];
        for (int pass = 0; pass < 3; pass++) {
            const double old = lm_set_decoder_bytes(pass ? 1.0 : 1 << 30);  // 64-row blocks
            dsf_lm_work w;
            DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
            lm_set_decoder_bytes(old);
            CHECK(w.dec_rows == (pass ? 64 : B * T));
            w.no_grad = pass == 2;
            loss[pass] = lm_forward(&m, &w, x, y, T);
            CHECK(w.dec_fused == (pass == 1));
            if (pass == 0) {
                lm_backward(&m, &w, DSF_METHOD_DSF);
                memcpy(g1, m.grads, m.n * sizeof(float));
            } else if (pass == 1) {
                lm_backward(&m, &w, DSF_METHOD_DSF);
                double amax = 0, d = 0;
                for (size_t i = 0; i < m.n; i++)
                    d = fmax(d, fabs((double)m.grads[i] - g1[i])), amax = fmax(amax, fabs(g1[i]));
                CHECK_MSG(d <= 1e-6 * amax, "%s: gradients differ by %g (max %g)",
                          dsf_arch_name(cfg.arch), d, amax);
            }
            lm_work_destroy(&w);
        }
        CHECK_CLOSE(loss[1], loss[0], 1e-6);
        CHECK_CLOSE(loss[2], loss[0], 1e-6);
        free(g1);
        lm_destroy(&m);
    }
}

// An evaluation work area (lm_work_create_eval: the layers share their
// activations, their outputs take turns in two buffers) gives the losses and the
// carried states of lm_work_create's to the bit: every cell, the stack, residual
// and block models of 1 to 4 layers, two batches with the state carried, then a
// shorter ragged one; and it needs less memory from two layers on.
static void test_grad_eval_work(void) {
    enum { B = 5, T = 7 };
    for (int cell = 0; cell < 3; cell++)
        for (int arch = 0; arch < 3; arch++)
            for (int L = 1; L <= 4; L++) {
                const dsf_arch a = arch == 0 ? DSF_ARCH_STACK : arch == 1 ? DSF_ARCH_RESIDUAL
                                                                          : DSF_ARCH_BLOCK;
                dsf_lm_config cfg = {.V = 13, .E = 6, .H = 6, .L = L, .cell = (dsf_cell)cell,
                                     .arch = a, .mlp = a == DSF_ARCH_BLOCK ? 10 : 0};
                dsf_lm m;
                random_model(&m, &cfg, 41 + cell + L, 0.5f);
                dsf_lm_work w[2];
                DSF_ASSERT(lm_work_create(&w[0], &m.cfg, B, T) == 0);
                DSF_ASSERT(lm_work_create_eval(&w[1], &m.cfg, B, T) == 0);
                CHECK(w[1].no_grad && w[1].eval && !w[0].eval);
                double loss[2][3];
                float *state[2];
                for (int k = 0; k < 2; k++) {
                    for (int b = 0; b < 3; b++) {
                        int32_t x[B * T], y[B * T];
                        test_random_tokens(x, y, B * T, cfg.V, 53 + b);
                        const int Tb = b < 2 ? T : T - 2;
                        if (b == 2) {  // rows sorted longest first, each from a zero state
                            lm_work_reset_state(&w[k], &m.cfg);
                            w[k].ragged = 1;
                            for (int t = 0; t < Tb; t++)
                                for (int r = 0; r < B; r++)
                                    if (t >= Tb - r) y[t * B + r] = DSF_IGNORE;
                        }
                        w[k].no_grad = 1;
                        loss[k][b] = lm_forward(&m, &w[k], x, y, Tb);
                        if (b == 1) {
                            state[k] = malloc((size_t)L * B * cfg.H * sizeof(float));
                            memcpy(state[k], w[k].state, (size_t)L * B * cfg.H * sizeof(float));
                        }
                    }
                }
                for (int b = 0; b < 3; b++)
                    CHECK_MSG(loss[1][b] == loss[0][b], "%s %s L=%d batch %d: %.9g, not %.9g",
                              dsf_cell_name(cfg.cell), dsf_arch_name(a), L, b, loss[1][b],
                              loss[0][b]);
                CHECK_MSG(memcmp(state[0], state[1], (size_t)L * B * cfg.H * sizeof(float)) == 0,
                          "%s %s L=%d: the carried states differ", dsf_cell_name(cfg.cell),
                          dsf_arch_name(a), L);
                const size_t full = lm_work_bytes(&m.cfg, B, T), ev = lm_work_eval_bytes(&m.cfg, B, T);
                CHECK_MSG(ev < full, "%s L=%d: %zu bytes, not fewer than %zu", dsf_arch_name(a), L,
                          ev, full);
                for (int k = 0; k < 2; k++) free(state[k]), lm_work_destroy(&w[k]);
                lm_destroy(&m);
            }
    // The saving grows with depth: 4 layers' evaluation area is under half a training one.
    dsf_lm_config big = {.V = 100, .E = 64, .H = 64, .L = 4, .arch = DSF_ARCH_BLOCK, .mlp = 256};
    CHECK(2 * lm_work_eval_bytes(&big, 32, 64) < lm_work_bytes(&big, 32, 64));
}

// The memory estimates that `dsf train` prints (lm_bytes, lm_work_bytes,
// lm_work_eval_bytes, lm_work_more_bytes) are what the model and the work areas
// allocate, to the byte: every cell and architecture, 1 to 3 layers, a projected
// embedding and a decoder in blocks; then the buffers a backward pass adds (the
// diag feedback's vectors, the sweeps' copies, dropout's masks, the ragged rows'
// gather).
static void test_grad_memory_estimates(void) {
    enum { B = 16, T = 24 };
    const double old = lm_set_decoder_bytes(64.0 * 50 * sizeof(float));  // 64-row blocks
    for (int cell = 0; cell < 3; cell++)
        for (int arch = 0; arch < 3; arch++)
            for (int L = 1; L <= 3; L++)
                for (int eval = 0; eval < 2; eval++) {
                    const dsf_arch a = arch == 0 ? DSF_ARCH_STACK
                                       : arch == 1 ? DSF_ARCH_RESIDUAL : DSF_ARCH_BLOCK;
                    dsf_lm_config cfg = {.V = 50, .E = 32, .H = 32, .L = L,
                                         .cell = (dsf_cell)cell, .arch = a,
                                         .mlp = a == DSF_ARCH_BLOCK ? 64 : 0,
                                         .proj = a == DSF_ARCH_BLOCK && L == 2};
                    const size_t est = eval ? lm_work_eval_bytes(&cfg, B, T)
                                            : lm_work_bytes(&cfg, B, T);
                    dsf_lm_work w;
                    const size_t before = dsf_allocated_bytes();
                    DSF_ASSERT((eval ? lm_work_create_eval : lm_work_create)(&w, &cfg, B, T) == 0);
                    const size_t got = dsf_allocated_bytes() - before;
                    lm_work_destroy(&w);
                    CHECK_MSG(got == est, "%s %s L=%d%s: %zu bytes allocated, %zu estimated",
                              dsf_cell_name(cfg.cell), dsf_arch_name(a), L, eval ? " eval" : "",
                              got, est);
                    if (eval) continue;
                    dsf_lm m;  // and the model's own (lm_bytes)
                    const size_t mb = dsf_allocated_bytes();
                    DSF_ASSERT(lm_create(&m, &cfg) == 0);
                    CHECK_MSG(dsf_allocated_bytes() - mb == lm_bytes(&cfg),
                              "%s %s L=%d: the model allocated %zu bytes, %zu estimated",
                              dsf_cell_name(cfg.cell), dsf_arch_name(a), L,
                              dsf_allocated_bytes() - mb, lm_bytes(&cfg));
                    lm_destroy(&m);
                }
    lm_set_decoder_bytes(old);
    // What a backward pass adds, for each method's extra buffers and dropout.
    for (int k = 0; k < 3; k++) {
        dsf_lm_config cfg = {.V = 50, .E = 32, .H = 32, .L = 2, .cell = DSF_CELL_GRU};
        dsf_lm m;
        random_model(&m, &cfg, 61, 0.3f);
        if (k == 0) m.fb.kind = DSF_FEEDBACK_DIAG;
        if (k == 1) m.fb.refine = 2;
        dsf_lm_work w;
        DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
        dsf_rng rng;
        dsf_rng_seed(&rng, 3);
        w.ragged = k == 2;
        if (k == 2) w.dropout = 0.3f, w.rng = &rng;
        const size_t est = lm_work_more_bytes(&w, &m, DSF_METHOD_DSF);
        int32_t x[B * T], y[B * T];
        test_random_tokens(x, y, B * T, cfg.V, 67);
        const size_t before = dsf_allocated_bytes();
        DSF_ASSERT(lm_work_reserve(&w, &m, DSF_METHOD_DSF) == 0);
        lm_forward(&m, &w, x, y, T);
        lm_backward(&m, &w, DSF_METHOD_DSF);
        const size_t got = dsf_allocated_bytes() - before;
        CHECK_MSG(got == est, "case %d: a backward pass added %zu bytes, %zu estimated", k, got,
                  est);
        CHECK(est > 0);
        lm_work_destroy(&w);
        lm_destroy(&m);
    }
}

// The embedding projected once (V < T·B: layer 0's input side looked up in
// encoder·W_ihᵀ, its backward a scatter by token and two small GEMMs) gives the
// gradients, the loss and the fitted feedback of the rows' own products, for
// every cell, the stack (tied or not) and the residual stack, bptt and dsf (fit
// for the GRU, which reuses the gate gradients' buffer); a shorter batch whose
// T·B is not above V goes the rows' way.
static void test_grad_embedding_projection(void) {
    enum { B = 4, T = 8 };
    for (int cell = 0; cell < 3; cell++)
        for (int arch = 0; arch < 3; arch++) {
            dsf_lm_config cfg = {.V = 13, .E = 6, .H = 6, .L = 2, .cell = (dsf_cell)cell,
                                 .tie = arch == 1,
                                 .arch = arch == 2 ? DSF_ARCH_RESIDUAL : DSF_ARCH_STACK};
            for (int mi = 0; mi < 2; mi++)
                for (int Ts = T; Ts >= 3; Ts -= T - 3) {
                    const dsf_method meth = mi ? DSF_METHOD_DSF : DSF_METHOD_BPTT;
                    dsf_lm m;
                    random_model(&m, &cfg, 31 + cell, 0.5f);
                    if (mi && cell == DSF_CELL_GRU) m.fb.kind = DSF_FEEDBACK_FIT, m.fb.every = 1;
                    // the feedback, which fit changes: the same a before each pass
                    const size_t na = (size_t)cfg.L * dsf_cell_states(cfg.cell) * cfg.H;
                    float *a0 = malloc(na * sizeof(float));
                    memcpy(a0, m.feedback, na * sizeof(float));
                    int32_t x[B * T], y[B * T];
                    test_random_tokens(x, y, B * T, cfg.V, 37 + arch);
                    y[5] = DSF_IGNORE;
                    float *g[2], *a[2];
                    double loss[2];
                    for (int on = 0; on < 2; on++) {
                        const int old = lm_set_embedding_projection(on);
                        dsf_lm_work w;
                        DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
                        lm_set_embedding_projection(old);
                        DSF_ASSERT(lm_work_reserve(&w, &m, meth) == 0);
                        memcpy(m.feedback, a0, na * sizeof(float));  // the same a for both
                        w.fit_now = 1, w.fit_rate = 1;
                        loss[on] = lm_forward(&m, &w, x, y, Ts);
                        CHECK(w.proj_now == (on && cfg.V < Ts * B));
                        lm_backward(&m, &w, meth);
                        g[on] = malloc(m.n * sizeof(float));
                        memcpy(g[on], m.grads, m.n * sizeof(float));
                        a[on] = malloc(na * sizeof(float));
                        memcpy(a[on], m.feedback, na * sizeof(float));
                        lm_work_destroy(&w);
                    }
                    double d = 0, amax = 0, da = 0;
                    for (size_t i = 0; i < m.n; i++)
                        d = fmax(d, fabs((double)g[1][i] - g[0][i])),
                        amax = fmax(amax, fabs(g[0][i]));
                    for (size_t i = 0; i < na; i++) da = fmax(da, fabs(a[1][i] - a[0][i]));
                    CHECK_MSG(d <= 1e-5 * amax && da <= 1e-5,
                              "%s %s%s %s T=%d: gradients differ by %g (max %g), a by %g",
                              dsf_cell_name(cfg.cell), dsf_arch_name(cfg.arch),
                              cfg.tie ? " tied" : "", dsf_method_name(meth), Ts, d, amax, da);
                    CHECK_CLOSE(loss[1], loss[0], 1e-6);
                    for (int on = 0; on < 2; on++) free(g[on]), free(a[on]);
                    free(a0);
                    lm_destroy(&m);
                }
        }
}

void suite_grad(void) {
    RUN(test_grad_gru_cell_fd);
    RUN(test_grad_bptt_fd_one_layer);
    RUN(test_grad_bptt_fd_two_layers);
    RUN(test_grad_bptt_fd_three_layers_t1);
    RUN(test_grad_dsf_zero_equals_ft);
    RUN(test_grad_t1_methods_agree);
    RUN(test_grad_methods_differ);
    RUN(test_grad_scan_equals_convolution);
    RUN(test_grad_diag_feedback_matches_fd);
    RUN(test_grad_fit_feedback_estimate);
    RUN(test_grad_lowrank_zero_factors_is_diagonal);
    RUN(test_grad_dropout_tie_fd);
    RUN(test_grad_block_fd);
    RUN(test_grad_residual_proj_fd);
    RUN(test_grad_decoder_blocks);
    RUN(test_grad_eval_work);
    RUN(test_grad_memory_estimates);
    RUN(test_grad_embedding_projection);
    RUN(test_grad_feedback_per_layer);
    RUN(test_grad_last_error_powers);
}
