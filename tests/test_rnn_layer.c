// test_rnn_layer.c: the layer calls for bindings (src/model/rnn_layer.h). Under bptt
// every gradient (weights, biases, input, h0, c0) against central differences of
// L = Σ r ⊙ out + Σ r_h ⊙ h_n (+ Σ r_c ⊙ c_n), for the three cells; dsf with feedback
// zero equals ft bit for bit; NULL biases are zero biases; bad input is refused
// with the error set. (python/dsf_torch's tests hold the same calls to PyTorch.)
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/rnn_layer.h"
#include "test.h"

enum { T = 4, B = 2, I = 3, H = 5, GMAX = 4 * H };

typedef struct {
    float w_ih[GMAX * I], w_hh[GMAX * H], b_ih[GMAX], b_hh[GMAX];
    float x[T * B * I], h0[B * H], c0[B * H];
    float r[T * B * H], rh[B * H], rc[B * H];
} fixture;

static void fill(fixture *f, uint64_t seed) {
    dsf_rng g;
    dsf_rng_seed(&g, seed);
    dsf_rng_fill_uniform(&g, (float *)f, sizeof *f / sizeof(float), -0.8f, 0.8f);
}

// The loss of one forward pass, in double.
static double loss(const dsf_rnn_shape *s, const fixture *f) {
    float *cache = malloc(sizeof(float) * dsf_rnn_cache_floats(s));
    float out[T * B * H], hn[B * H], cn[B * H];
    if (!cache || dsf_rnn_forward(s, f->w_ih, f->w_hh, f->b_ih, f->b_hh, f->x, f->h0, f->c0,
                                  cache, out, hn, s->cell == 1 ? cn : NULL)) {
        free(cache);
        return NAN;
    }
    double l = 0;
    for (int k = 0; k < T * B * H; k++) l += (double)f->r[k] * out[k];
    for (int k = 0; k < B * H; k++) l += (double)f->rh[k] * hn[k];
    if (s->cell == 1)
        for (int k = 0; k < B * H; k++) l += (double)f->rc[k] * cn[k];
    free(cache);
    return l;
}

typedef struct {
    float gw_ih[GMAX * I], gw_hh[GMAX * H], gb_ih[GMAX], gb_hh[GMAX];
    float dx[T * B * I], dh0[B * H], dc0[B * H];
} grads;

static int backward(const dsf_rnn_shape *s, const fixture *f, const char *method,
                    const char *feedback, const float *a, grads *g) {
    float *cache = malloc(sizeof(float) * dsf_rnn_cache_floats(s));
    float out[T * B * H], hn[B * H], cn[B * H];
    int rc = !cache || dsf_rnn_forward(s, f->w_ih, f->w_hh, f->b_ih, f->b_hh, f->x, f->h0,
                                       f->c0, cache, out, hn, cn);
    if (!rc)
        rc = dsf_rnn_backward(s, method, feedback, "seq", a, f->w_ih, f->w_hh, f->x, cache,
                              f->r, f->rh, s->cell == 1 ? f->rc : NULL, g->dx, g->dh0, g->dc0,
                              g->gw_ih, g->gw_hh, g->gb_ih, g->gb_hh);
    free(cache);
    return rc;
}

static void test_rnn_layer_bptt_fd(void) {
    for (int cell = 0; cell < 3; cell++) {
        const dsf_rnn_shape s = {cell, T, B, I, H, NULL};
        const int G = (cell == 0 ? 3 : cell == 1 ? 4 : 1) * H;
        fixture f;
        grads g;
        fill(&f, 10 + cell);
        CHECK(backward(&s, &f, "bptt", NULL, NULL, &g) == 0);
        // (pointer into the fixture, its gradient, count) for every input of the layer
        struct { float *p; const float *g; int n; } v[] = {
            {f.w_ih, g.gw_ih, G * I}, {f.w_hh, g.gw_hh, G * H}, {f.b_ih, g.gb_ih, G},
            {f.b_hh, g.gb_hh, G},     {f.x, g.dx, T * B * I},   {f.h0, g.dh0, B * H},
            {f.c0, g.dc0, cell == 1 ? B * H : 0}};
        for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
            for (int j = 0; j < v[k].n; j += 3) {  // every third entry
                const float keep = v[k].p[j], eps = 1e-2f;
                v[k].p[j] = keep + eps;
                const double lp = loss(&s, &f);
                v[k].p[j] = keep - eps;
                const double lm = loss(&s, &f);
                v[k].p[j] = keep;
                const double fd = (lp - lm) / (2.0 * eps);
                CHECK_MSG(fabs(fd - v[k].g[j]) <= 2e-3 * fmax(1.0, fabs(fd)),
                          "cell %d input %zu entry %d: gradient %.6g, differences %.6g", cell, k, j,
                          v[k].g[j], fd);
            }
    }
}

static void test_rnn_layer_zero_is_ft(void) {
    for (int cell = 0; cell < 3; cell++) {
        const dsf_rnn_shape s = {cell, T, B, I, H, NULL};
        fixture f;
        grads ft, zero;
        memset(&ft, 0, sizeof ft);
        memset(&zero, 0, sizeof zero);
        float a[2 * H];
        fill(&f, 20 + cell);
        CHECK(dsf_rnn_feedback("zero", cell, H, T, 1, a) == 0);
        CHECK(backward(&s, &f, "ft", NULL, NULL, &ft) == 0);
        CHECK(backward(&s, &f, "dsf", "zero", a, &zero) == 0);
        CHECK(memcmp(&ft, &zero, sizeof ft) == 0);
        // linspace: a_i = i/(H−1), for each state of the cell
        CHECK(dsf_rnn_feedback("linspace", cell, H, T, 1, a) == 0);
        CHECK(a[0] == 0.0f && a[H - 1] == 1.0f && fabsf(a[1] - 0.25f) < 1e-7f);
    }
}

static void test_rnn_layer_no_bias(void) {
    const dsf_rnn_shape s = {0, T, B, I, H, NULL};
    fixture f;
    fill(&f, 3);
    memset(f.b_ih, 0, sizeof f.b_ih);
    memset(f.b_hh, 0, sizeof f.b_hh);
    float *c1 = malloc(sizeof(float) * dsf_rnn_cache_floats(&s));
    float *c2 = malloc(sizeof(float) * dsf_rnn_cache_floats(&s));
    float o1[T * B * H], o2[T * B * H];
    CHECK(c1 && c2);
    CHECK(dsf_rnn_forward(&s, f.w_ih, f.w_hh, f.b_ih, f.b_hh, f.x, NULL, NULL, c1, o1, NULL,
                          NULL) == 0);
    CHECK(dsf_rnn_forward(&s, f.w_ih, f.w_hh, NULL, NULL, f.x, NULL, NULL, c2, o2, NULL, NULL) ==
          0);
    CHECK(memcmp(o1, o2, sizeof o1) == 0);
    free(c1);
    free(c2);
}

static void test_rnn_layer_errors(void) {
    dsf_rnn_shape s = {7, T, B, I, H, NULL};
    fixture f;
    grads g;
    float a[H], cache[1];
    fill(&f, 4);
    CHECK(dsf_rnn_cache_floats(&s) == 0 && strstr(dsf_error(), "unknown cell"));
    s.cell = 0;
    s.T = 0;
    CHECK(dsf_rnn_forward(&s, f.w_ih, f.w_hh, NULL, NULL, f.x, NULL, NULL, cache, f.r, NULL,
                          NULL) == -1);
    CHECK(strstr(dsf_error(), "must be positive"));
    s.T = T;
    CHECK(dsf_rnn_feedback("fit", 0, H, T, 1, a) == -1 && strstr(dsf_error(), "fit and lowrank"));
    CHECK(dsf_rnn_feedback("bogus", 0, H, T, 1, a) == -1);
    CHECK(backward(&s, &f, "bpt", NULL, NULL, &g) == -1 && strstr(dsf_error(), "unknown method"));
    float *c = malloc(sizeof(float) * dsf_rnn_cache_floats(&s));
    CHECK(c);
    CHECK(dsf_rnn_backward(&s, "dsf", "diag", "fft", NULL, f.w_ih, f.w_hh, f.x, c, f.r, NULL,
                           NULL, NULL, NULL, NULL, g.gw_ih, g.gw_hh, NULL, NULL) == -1);
    CHECK(strstr(dsf_error(), "cannot use scan fft"));
    CHECK(dsf_rnn_backward(&s, "dsf", "linspace", "seq", NULL, f.w_ih, f.w_hh, f.x, c, f.r, NULL,
                           NULL, NULL, NULL, NULL, g.gw_ih, g.gw_hh, NULL, NULL) == -1);
    CHECK(strstr(dsf_error(), "feedback vector a is required"));
    free(c);
    // Sequences of their own lengths: rows[0] = B, then not increasing, at least 1.
    int rows[T];
    for (int t = 0; t < T; t++) rows[t] = B;
    s.rows = rows;
    rows[0] = B - 1;
    CHECK(dsf_rnn_cache_floats(&s) == 0 && strstr(dsf_error(), "rows[0] must be the batch"));
    rows[0] = B, rows[1] = 1, rows[2] = 2;
    CHECK(dsf_rnn_cache_floats(&s) == 0 && strstr(dsf_error(), "must not increase"));
    rows[1] = 0;
    CHECK(dsf_rnn_cache_floats(&s) == 0 && strstr(dsf_error(), "must not increase"));
    rows[1] = rows[2] = rows[3] = 1;
    CHECK(dsf_rnn_cache_floats(&s) > 0);
}

void suite_rnn_layer(void) {
    RUN(test_rnn_layer_bptt_fd);
    RUN(test_rnn_layer_zero_is_ft);
    RUN(test_rnn_layer_no_bias);
    RUN(test_rnn_layer_errors);
}
