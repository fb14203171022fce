// test_layers.c: LayerNorm, GELU and dropout (src/model/layers.c): forward
// values against double-precision formulas written here, backward passes against
// central finite differences of those formulas, and dropout's mask statistics.
#include <stdlib.h>
#include <string.h>

#include "model/layers.h"
#include "test.h"

enum { N = 3, D = 7 };

// Σ w ⊙ LN(x) in double for one (N,D) input: the loss the finite differences take.
static double ln_loss(const double *x, const double *gamma, const double *beta, const double *w) {
    double s = 0;
    for (int r = 0; r < N; r++) {
        double mu = 0, var = 0;
        for (int k = 0; k < D; k++) mu += x[r * D + k] / D;
        for (int k = 0; k < D; k++) var += (x[r * D + k] - mu) * (x[r * D + k] - mu) / D;
        for (int k = 0; k < D; k++)
            s += w[r * D + k] * ((x[r * D + k] - mu) / sqrt(var + 1e-5) * gamma[k] + beta[k]);
    }
    return s;
}

static void test_layers_layernorm_fd(void) {
    float x[N * D], g[D], b[D], w[N * D], y[N * D], mean[N], rstd[N], dx[N * D], dg[D] = {0},
                                                                         db[D] = {0};
    double xd[N * D], gd[D], bd[D], wd[N * D];
    dsf_rng r;
    dsf_rng_seed(&r, 4);
    dsf_rng_fill_uniform(&r, x, N * D, -2, 2);
    dsf_rng_fill_uniform(&r, g, D, 0.5f, 1.5f);
    dsf_rng_fill_uniform(&r, b, D, -0.5f, 0.5f);
    dsf_rng_fill_uniform(&r, w, N * D, -1, 1);
    for (int k = 0; k < N * D; k++) xd[k] = x[k], wd[k] = w[k];
    for (int k = 0; k < D; k++) gd[k] = g[k], bd[k] = b[k];
    layernorm_forward(x, g, b, y, mean, rstd, N, D);
    double s = 0;
    for (int k = 0; k < N * D; k++) s += w[k] * (double)y[k];
    CHECK_CLOSE(s, ln_loss(xd, gd, bd, wd), 1e-5);
    layernorm_backward(w, x, mean, rstd, g, dx, dg, db, N, D);
    const double eps = 1e-6;
    double *vars[3] = {xd, gd, bd};
    const float *got[3] = {dx, dg, db};
    const int count[3] = {N * D, D, D};
    for (int v = 0; v < 3; v++)
        for (int k = 0; k < count[v]; k++) {
            double keep = vars[v][k];
            vars[v][k] = keep + eps;
            double lp = ln_loss(xd, gd, bd, wd);
            vars[v][k] = keep - eps;
            double lm = ln_loss(xd, gd, bd, wd);
            vars[v][k] = keep;
            CHECK_CLOSE(got[v][k], (lp - lm) / (2 * eps), 1e-4);
        }
}

static void test_layers_gelu_fd(void) {
    enum { M = 41 };
    float x[M], y[M], dy[M], dx[M];
    for (int k = 0; k < M; k++) x[k] = -5 + 0.25f * k, dy[k] = 1;
    gelu_forward(x, y, M);
    gelu_backward(dy, x, dx, M);
    for (int k = 0; k < M; k++) {
        double v = x[k], eps = 1e-6;
        CHECK_CLOSE(y[k], 0.5 * v * (1 + erf(v / sqrt(2))), 1e-6);
        double fp = 0.5 * (v + eps) * (1 + erf((v + eps) / sqrt(2)));
        double fm = 0.5 * (v - eps) * (1 + erf((v - eps) / sqrt(2)));
        CHECK_CLOSE(dx[k], (fp - fm) / (2 * eps), 1e-5);
    }
}

// The mask keeps about 1 − p of the elements at 1/(1−p), zeroes the rest; the
// backward pass applies the same mask; p = 0 is the identity.
static void test_layers_dropout(void) {
    enum { M = 100000 };
    float *x = malloc(sizeof(float) * M), *y = malloc(sizeof(float) * M),
          *m = malloc(sizeof(float) * M), *dx = malloc(sizeof(float) * M);
    dsf_rng r;
    dsf_rng_seed(&r, 9);
    for (int k = 0; k < M; k++) x[k] = 1.0f + k % 7;
    dsf_rng r0 = r;
    const uint64_t key = dsf_rng_u64(&r0);  // one draw a call: the mask is a function of it
    dropout_forward(x, y, m, M, 0.3f, &r);
    int zeros = 0, bad = 0, runs = 0;
    for (int k = 0; k < M; k++) {
        zeros += m[k] == 0;
        bad += !(m[k] == 0 || m[k] == 1.0f / 0.7f) || y[k] != x[k] * m[k];
        bad += (m[k] == 0) != (dsf_dropout_uniform(key, k) < 0.3f);
        runs += k > 0 && (m[k] == 0) != (m[k - 1] == 0);
    }
    CHECK(memcmp(&r, &r0, sizeof r) == 0);
    // Neighbours independent: a change between k−1 and k with probability 2·0.3·0.7.
    CHECK_MSG(abs(runs - 42000) < 700, "%d changes between neighbours", runs);
    dropout_backward(x, m, dx, M);
    for (int k = 0; k < M; k++) bad += dx[k] != x[k] * m[k];
    dropout_forward(x, y, m, M, 0, &r);
    for (int k = 0; k < M; k++) bad += y[k] != x[k];
    free(x);
    free(y);
    free(m);
    free(dx);
    CHECK_MSG(bad == 0, "%d elements wrong", bad);
    CHECK_MSG(abs(zeros - 30000) < 600, "%d of %d dropped at p = 0.3", zeros, M);  // ~4 sd
}

// A share of the streams draws its part of the whole batch's mask: two "ranks"
// with contiguous halves (stride 1) and with the streams dealt (stride 2).
static void test_layers_dropout_streams(void) {
    enum { T = 3, B = 4, W = 50, NE = T * B * W, H2 = B / 2 };
    float x[NE], y[NE], m[NE], ys[NE / 2], ms[NE / 2], xs[NE / 2];
    for (int k = 0; k < NE; k++) x[k] = 1.0f + k;
    dsf_rng r;
    dsf_rng_seed(&r, 10);
    dsf_rng r1 = r;
    const dsf_stream_layout all = {T, B, B, 0, 1};
    dropout_forward_streams(x, y, m, &all, W, 0.5f, &r);
    int bad = 0;
    for (int stride = 1; stride <= 2; stride++)
        for (int rank = 0; rank < 2; rank++) {
            const int first = stride == 1 ? rank * H2 : rank;
            dsf_rng r2 = r1;  // the same draw on every "rank"
            for (int t = 0; t < T; t++)
                for (int b = 0; b < H2; b++)
                    memcpy(xs + (t * H2 + b) * W, x + (t * B + first + b * stride) * W,
                           sizeof(float) * W);
            const dsf_stream_layout part = {T, H2, B, first, stride};
            dropout_forward_streams(xs, ys, ms, &part, W, 0.5f, &r2);
            for (int t = 0; t < T; t++)
                for (int b = 0; b < H2; b++) {
                    const size_t o = (size_t)(t * H2 + b) * W, g = (size_t)(t * B + first + b * stride) * W;
                    bad += memcmp(ms + o, m + g, sizeof(float) * W) != 0 ||
                           memcmp(ys + o, y + g, sizeof(float) * W) != 0;
                }
        }
    CHECK_MSG(bad == 0, "%d rows differ", bad);
}

void suite_layers(void) {
    RUN(test_layers_layernorm_fd);
    RUN(test_layers_gelu_fd);
    RUN(test_layers_dropout);
    RUN(test_layers_dropout_streams);
}
