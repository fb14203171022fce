// test_cells.c: the LSTM and Elman layers (src/cell/lstm.c, elman.c) against a
// double-precision reference written here, independently: the forward pass, the
// BPTT gradients of every parameter and of the input for the loss Σ_t e_t · h_t
// by central finite differences, and the exact Jacobian diagonal by finite
// differences of one step.
#include <stdlib.h>
#include <string.h>

#include "cell/elman.h"
#include "cell/lstm.h"
#include "core/common.h"
#include "test.h"

static double sig(double x) { return 1 / (1 + exp(-x)); }

// One step for one row. G = 4 (lstm: state h, c) or 1 (elman: h). p holds
// w_ih (GH,I), w_hh (GH,H), b_ih, b_hh (GH) in double.
static void ref_step(int G, const double *p, const double *x, const double *hp, const double *cp,
                     double *h, double *c, int I, int H) {
    const double *w_ih = p, *w_hh = p + G * H * I, *b_ih = w_hh + G * H * H, *b_hh = b_ih + G * H;
    double a[4];
    for (int k = 0; k < H; k++) {
        for (int g = 0; g < G; g++) {
            int row = g * H + k;
            a[g] = b_ih[row] + b_hh[row];
            for (int j = 0; j < I; j++) a[g] += w_ih[row * I + j] * x[j];
            for (int j = 0; j < H; j++) a[g] += w_hh[row * H + j] * hp[j];
        }
        if (G == 1) {
            h[k] = tanh(a[0]);
        } else {
            double i = sig(a[0]), f = sig(a[1]), gg = tanh(a[2]), o = sig(a[3]);
            c[k] = f * cp[k] + i * gg;
            h[k] = o * tanh(c[k]);
        }
    }
}

// Σ_t Σ_b e_t,b · h_t,b over T steps from h0, c0 (rows time-major as the library's).
static double ref_loss(int G, const double *p, const double *x, const double *h0, const double *c0,
                       const double *e, int T, int B, int I, int H) {
    double h[16], c[16], hn[16], cn[16], s = 0;
    for (int b = 0; b < B; b++) {
        memcpy(h, h0 + b * H, sizeof(double) * H);
        memcpy(c, c0 + b * H, sizeof(double) * H);
        for (int t = 0; t < T; t++) {
            ref_step(G, p, x + (t * B + b) * I, h, c, hn, cn, I, H);
            memcpy(h, hn, sizeof(double) * H);
            memcpy(c, cn, sizeof(double) * H);
            for (int k = 0; k < H; k++) s += e[(t * B + b) * H + k] * h[k];
        }
    }
    return s;
}

enum { T = 4, B = 2, I = 3, H = 3, GMAX = 4, NP = GMAX * H * (I + H + 2) };

typedef struct {
    float p[NP], x[T * B * I], h0[B * H], c0[B * H], e[T * B * H];
    double pd[NP], xd[T * B * I], h0d[B * H], c0d[B * H], ed[T * B * H];
} cell_case;

static void cell_case_init(cell_case *k, int G, uint64_t seed) {
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    const int np = G * H * (I + H + 2);
    dsf_rng_fill_uniform(&r, k->p, np, -0.8f, 0.8f);
    dsf_rng_fill_uniform(&r, k->x, T * B * I, -1, 1);
    dsf_rng_fill_uniform(&r, k->h0, B * H, -0.5f, 0.5f);
    dsf_rng_fill_uniform(&r, k->c0, B * H, -0.5f, 0.5f);
    dsf_rng_fill_uniform(&r, k->e, T * B * H, -1, 1);
    for (int j = 0; j < np; j++) k->pd[j] = k->p[j];
    for (int j = 0; j < T * B * I; j++) k->xd[j] = k->x[j];
    for (int j = 0; j < B * H; j++) k->h0d[j] = k->h0[j], k->c0d[j] = k->c0[j];
    for (int j = 0; j < T * B * H; j++) k->ed[j] = k->e[j];
}

// Central difference of the reference loss in the variable v.
static double fd(int G, cell_case *k, double *v) {
    const double keep = *v, eps = 1e-6;
    *v = keep + eps;
    double lp = ref_loss(G, k->pd, k->xd, k->h0d, k->c0d, k->ed, T, B, I, H);
    *v = keep - eps;
    double lm = ref_loss(G, k->pd, k->xd, k->h0d, k->c0d, k->ed, T, B, I, H);
    *v = keep;
    return (lp - lm) / (2 * eps);
}

// Both ways of running the recurrent loops: one GEMM a step, and packed.
static void check_lstm_bptt_fd(int packed) {
    const int G = 4, GH = G * H;
    cell_case k;
    cell_case_init(&k, G, 11);
    float h[(T + 1) * B * H], c[(T + 1) * B * H], gates[T * B * GH], scratch[T * B * GH];
    float ga[T * B * GH], dc[T * B * H], carry[B * H], g[NP] = {0}, dx[T * B * I], e[T * B * H];
    float *pack = packed ? dsf_alloc(sizeof(float) * lstm_pack_floats(H)) : NULL;  // 64-byte aligned
    memcpy(h, k.h0, sizeof k.h0);
    memcpy(c, k.c0, sizeof k.c0);
    memcpy(e, k.e, sizeof e);
    cell_weights w = {k.p, k.p + GH * I, k.p + GH * (I + H), k.p + GH * (I + H) + GH};
    cell_grads gr = {g, g + GH * I, g + GH * (I + H), g + GH * (I + H) + GH};
    cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = pack};
    lstm_forward(&w, k.x, &cache, scratch, T, B, I, H);
    // The forward pass equals the reference step by step (last step, every row).
    for (int b = 0; b < B; b++) {
        double hr[H], cr[H], hp[H], cp[H], hn[H], cn[H];
        for (int j = 0; j < H; j++) hp[j] = k.h0d[b * H + j], cp[j] = k.c0d[b * H + j];
        for (int t = 0; t < T; t++) {
            ref_step(G, k.pd, k.xd + (t * B + b) * I, hp, cp, hn, cn, I, H);
            memcpy(hp, hn, sizeof hp);
            memcpy(cp, cn, sizeof cp);
        }
        memcpy(hr, hp, sizeof hr);
        memcpy(cr, cp, sizeof cr);
        for (int j = 0; j < H; j++) {
            CHECK_CLOSE(h[(T * B + b) * H + j], hr[j], 1e-5);
            CHECK_CLOSE(c[(T * B + b) * H + j], cr[j], 1e-5);
        }
    }
    lstm_backward_bptt(&w, &cache, e, dc, NULL, ga, carry, T, B, H);
    lstm_backward_params(&w, k.x, &cache, ga, &gr, dx, T, B, I, H);
    dsf_free(pack);
    for (int j = 0; j < GH * (I + H + 2); j++) CHECK_CLOSE(g[j], fd(G, &k, &k.pd[j]), 1e-4);
    for (int j = 0; j < T * B * I; j++) CHECK_CLOSE(dx[j], fd(G, &k, &k.xd[j]), 1e-4);
}

static void test_cells_lstm_bptt_fd(void) {
    check_lstm_bptt_fd(0);
    check_lstm_bptt_fd(1);
}

// The packed loops against the plain ones where they split the work: several
// panels, the last one partial (H = 70), and enough work for threads.
static void test_cells_lstm_packed(void) {
    enum { T2 = 5, B2 = 25, I2 = 9, H2 = 70, G2 = 4 * H2, N2 = T2 * B2 * H2 };
    dsf_rng r;
    dsf_rng_seed(&r, 71);
    float *p = dsf_xmalloc(sizeof(float) * G2 * (I2 + H2 + 2)), *x = dsf_xmalloc(sizeof(float) * T2 * B2 * I2);
    dsf_rng_fill_uniform(&r, p, (size_t)G2 * (I2 + H2 + 2), -0.3f, 0.3f);
    dsf_rng_fill_uniform(&r, x, (size_t)T2 * B2 * I2, -1, 1);
    const cell_weights w = {p, p + G2 * I2, p + G2 * (I2 + H2), p + G2 * (I2 + H2) + G2};
    float *out[2][5];  // h, c, gates, e (δh), dc; then ga
    float *ga[2];
    for (int k = 0; k < 2; k++) {
        float *h = dsf_xmalloc(sizeof(float) * (T2 + 1) * B2 * H2);
        float *c = dsf_xmalloc(sizeof(float) * (T2 + 1) * B2 * H2);
        float *gates = dsf_xmalloc(sizeof(float) * T2 * B2 * G2);
        float *scratch = dsf_xmalloc(sizeof(float) * T2 * B2 * G2);
        float *e = dsf_xmalloc(sizeof(float) * N2), *dc = dsf_xmalloc(sizeof(float) * N2);
        float *carry = dsf_xmalloc(sizeof(float) * B2 * H2);
        float *pack = k ? dsf_alloc(sizeof(float) * lstm_pack_floats(H2)) : NULL;
        ga[k] = dsf_xmalloc(sizeof(float) * T2 * B2 * G2);
        dsf_rng_seed(&r, 72);  // the same h0, c0 and e for both
        dsf_rng_fill_uniform(&r, h, (size_t)B2 * H2, -1, 1);
        dsf_rng_fill_uniform(&r, c, (size_t)B2 * H2, -1, 1);
        dsf_rng_fill_uniform(&r, e, N2, -1, 1);
        cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = pack};
        lstm_forward(&w, x, &cache, scratch, T2, B2, I2, H2);
        lstm_backward_bptt(&w, &cache, e, dc, NULL, ga[k], carry, T2, B2, H2);
        out[k][0] = h, out[k][1] = c, out[k][2] = gates, out[k][3] = e, out[k][4] = dc;
        free(scratch);
        free(carry);
        dsf_free(pack);
    }
    const size_t sizes[5] = {(size_t)(T2 + 1) * B2 * H2, (size_t)(T2 + 1) * B2 * H2,
                             (size_t)T2 * B2 * G2, N2, N2};
    double worst = 0;
    for (int j = 0; j < 5; j++)
        for (size_t i = 0; i < sizes[j]; i++)
            worst = fmax(worst, fabs(out[0][j][i] - out[1][j][i]) / fmax(1, fabs(out[0][j][i])));
    for (size_t i = 0; i < (size_t)T2 * B2 * G2; i++)
        worst = fmax(worst, fabs(ga[0][i] - ga[1][i]) / fmax(1, fabs(ga[0][i])));
    for (int k = 0; k < 2; k++) {
        for (int j = 0; j < 5; j++) free(out[k][j]);
        free(ga[k]);
    }
    free(p);
    free(x);
    CHECK_MSG(worst < 1e-5, "packed and plain differ by %g", worst);
}

static void check_elman_bptt_fd(int packed) {
    const int G = 1, GH = H;
    cell_case k;
    cell_case_init(&k, G, 12);
    float h[(T + 1) * B * H], scratch[T * B * GH], ga[T * B * GH], carry[B * H], g[NP] = {0};
    float dx[T * B * I], e[T * B * H];
    memcpy(h, k.h0, sizeof k.h0);
    memcpy(e, k.e, sizeof e);
    cell_weights w = {k.p, k.p + GH * I, k.p + GH * (I + H), k.p + GH * (I + H) + GH};
    cell_grads gr = {g, g + GH * I, g + GH * (I + H), g + GH * (I + H) + GH};
    float *pack = packed ? dsf_alloc(sizeof(float) * elman_pack_floats(H)) : NULL;
    cell_cache cache = {.h = h, .wpack = pack};
    elman_forward(&w, k.x, &cache, scratch, T, B, I, H);
    elman_backward_bptt(&w, &cache, e, ga, carry, T, B, H);
    elman_backward_params(&w, k.x, &cache, ga, &gr, dx, T, B, I, H);
    dsf_free(pack);
    for (int j = 0; j < GH * (I + H + 2); j++) CHECK_CLOSE(g[j], fd(G, &k, &k.pd[j]), 1e-4);
    for (int j = 0; j < T * B * I; j++) CHECK_CLOSE(dx[j], fd(G, &k, &k.xd[j]), 1e-4);
}

static void test_cells_elman_bptt_fd(void) {
    check_elman_bptt_fd(0);
    check_elman_bptt_fd(1);
}

// The packed loops against the plain ones (several panels, threads), as the LSTM's.
static void test_cells_elman_packed(void) {
    enum { T2 = 5, B2 = 25, I2 = 9, H2 = 70, N2 = T2 * B2 * H2 };
    dsf_rng r;
    dsf_rng_seed(&r, 73);
    float *p = dsf_xmalloc(sizeof(float) * H2 * (I2 + H2 + 2));
    float *x = dsf_xmalloc(sizeof(float) * T2 * B2 * I2);
    dsf_rng_fill_uniform(&r, p, (size_t)H2 * (I2 + H2 + 2), -0.3f, 0.3f);
    dsf_rng_fill_uniform(&r, x, (size_t)T2 * B2 * I2, -1, 1);
    const cell_weights w = {p, p + H2 * I2, p + H2 * (I2 + H2), p + H2 * (I2 + H2) + H2};
    float *h[2], *e[2], *ga[2];
    for (int k = 0; k < 2; k++) {
        h[k] = dsf_xmalloc(sizeof(float) * (T2 + 1) * B2 * H2);
        e[k] = dsf_xmalloc(sizeof(float) * N2);
        ga[k] = dsf_xmalloc(sizeof(float) * N2);
        float *scratch = dsf_xmalloc(sizeof(float) * N2), *carry = dsf_xmalloc(sizeof(float) * B2 * H2);
        float *pack = k ? dsf_alloc(sizeof(float) * elman_pack_floats(H2)) : NULL;
        dsf_rng_seed(&r, 74);  // the same h0 and e for both
        dsf_rng_fill_uniform(&r, h[k], (size_t)B2 * H2, -1, 1);
        dsf_rng_fill_uniform(&r, e[k], N2, -1, 1);
        cell_cache cache = {.h = h[k], .wpack = pack};
        elman_forward(&w, x, &cache, scratch, T2, B2, I2, H2);
        elman_backward_bptt(&w, &cache, e[k], ga[k], carry, T2, B2, H2);
        free(scratch);
        free(carry);
        dsf_free(pack);
    }
    double worst = 0;
    for (size_t i = 0; i < (size_t)(T2 + 1) * B2 * H2; i++)
        worst = fmax(worst, fabs(h[0][i] - h[1][i]) / fmax(1, fabs(h[0][i])));
    for (size_t i = 0; i < N2; i++) {
        worst = fmax(worst, fabs(e[0][i] - e[1][i]) / fmax(1, fabs(e[0][i])));
        worst = fmax(worst, fabs(ga[0][i] - ga[1][i]) / fmax(1, fabs(ga[0][i])));
    }
    for (int k = 0; k < 2; k++) {
        free(h[k]);
        free(e[k]);
        free(ga[k]);
    }
    free(p);
    free(x);
    CHECK_MSG(worst < 1e-5, "packed and plain differ by %g", worst);
}

// The closed-form Jacobian diagonals against a finite difference of one step.
static void test_cells_jacobian_diag_fd(void) {
    for (int G = 1; G <= 4; G += 3) {
        const int GH = G * H;
        cell_case k;
        cell_case_init(&k, G, 13);
        float h[2 * H], c[2 * H], gates[GH], scratch[GH], diag[H];
        memcpy(h, k.h0, sizeof(float) * H);
        memcpy(c, k.c0, sizeof(float) * H);
        const float *p = k.p;
        if (G == 4) {
            cell_weights w = {p, p + GH * I, p + GH * (I + H), p + GH * (I + H) + GH};
            cell_cache cache = {.h = h, .c = c, .gates = gates, .wpack = NULL};
            lstm_forward(&w, k.x, &cache, scratch, 1, 1, I, H);
            lstm_jacobian_diag(&w, c, c + H, gates, diag, 1, H);
        } else {
            cell_weights w = {p, p + GH * I, p + GH * (I + H), p + GH * (I + H) + GH};
            cell_cache cache = {.h = h, .wpack = NULL};
            elman_forward(&w, k.x, &cache, scratch, 1, 1, I, H);
            elman_jacobian_diag(&w, h + H, diag, 1, H);
        }
        for (int j = 0; j < H; j++) {
            double hp[H], cp[H], up[H], um[H], cn[H], keep, eps = 1e-6;
            for (int m = 0; m < H; m++) hp[m] = k.h0d[m], cp[m] = k.c0d[m];
            keep = hp[j];
            hp[j] = keep + eps;
            ref_step(G, k.pd, k.xd, hp, cp, up, cn, I, H);
            hp[j] = keep - eps;
            ref_step(G, k.pd, k.xd, hp, cp, um, cn, I, H);
            CHECK_CLOSE(diag[j], (up[j] - um[j]) / (2 * eps), 1e-5);
        }
    }
}

void suite_cells(void) {
    RUN(test_cells_lstm_bptt_fd);
    RUN(test_cells_lstm_packed);
    RUN(test_cells_elman_bptt_fd);
    RUN(test_cells_elman_packed);
    RUN(test_cells_jacobian_diag_fd);
}
