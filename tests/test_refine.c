// test_refine.c: DSF with correction sweeps (feedback suffix +K, grad/method.h).
//   - the spelling: parsed, written back, refused where it does not apply;
//   - K >= T−1 sweeps give BPTT's gradient for every cell and feedback kind,
//     stacked, in the block architecture and with both scans;
//   - after K sweeps a layer's δ is BPTT's exactly at the last K+1 steps (the
//     property the sweeps are built on), δc included for the LSTM, and for
//     K <= 2 not before (later the error left before them can be below any
//     fixed threshold: it shrinks with every sweep);
//   - +0 is plain DSF, bit for bit.
#include <string.h>

#include "grad/method.h"
#include "model/lm.h"
#include "test.h"

static void test_refine_parse(void) {
    char buf[64];
    dsf_feedback f;
    CHECK(dsf_feedback_parse("diag+2", &f) == 0 && f.kind == DSF_FEEDBACK_DIAG && f.refine == 2);
    dsf_feedback_format(&f, buf, sizeof buf);
    CHECK(strcmp(buf, "diag+2") == 0);
    CHECK(dsf_feedback_parse("uniform:0,0.5+3", &f) == 0 && f.kind == DSF_FEEDBACK_UNIFORM &&
          f.hi == 0.5f && f.refine == 3);
    dsf_feedback_format(&f, buf, sizeof buf);
    CHECK(strcmp(buf, "uniform:0,0.5+3") == 0);
    CHECK(dsf_feedback_parse("fit:5+1", &f) == 0 && f.every == 5 && f.refine == 1);
    CHECK(dsf_feedback_parse("diag+0", &f) == 0 && f.refine == 0);
    dsf_feedback_format(&f, buf, sizeof buf);
    CHECK(strcmp(buf, "diag") == 0);
    // An exponent's sign is not a suffix.
    CHECK(dsf_feedback_parse("const:1e+2", &f) == 0 && f.kind == DSF_FEEDBACK_CONST &&
          f.lo == 100.0f && f.refine == 0);
    CHECK(dsf_feedback_parse("lowrank:4+1", &f) == -1 && strstr(dsf_error(), "not lowrank"));
    CHECK(dsf_feedback_parse("diag+", &f) == -1);
    CHECK(dsf_feedback_parse("diag+x", &f) == -1);
    CHECK(dsf_feedback_parse("diag+1000001", &f) == -1 && strstr(dsf_error(), "at most"));
    CHECK(dsf_feedback_parse("nothing+2", &f) == -1 && strstr(dsf_error(), "unknown feedback"));
}

static void make_model(dsf_lm *m, dsf_cell cell, int L, dsf_arch arch, const char *feedback,
                       int T, uint64_t seed) {
    dsf_lm_config cfg = {.V = 11, .E = 9, .H = 9, .L = L, .cell = cell, .arch = arch};
    if (arch == DSF_ARCH_BLOCK) cfg.mlp = 12, cfg.tie = 1;
    DSF_ASSERT(lm_create(m, &cfg) == 0);
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    lm_init_params(m, &r);
    // Weights larger than the default initialisation, so that the Jacobian's
    // off-diagonal part is far from negligible.
    for (size_t i = 0; i < m->n; i++) m->params[i] *= 2.5f;
    dsf_feedback fb;
    DSF_ASSERT(dsf_feedback_parse(feedback, &fb) == 0);
    DSF_ASSERT(lm_set_feedback(m, &fb, &r, T) == 0);
}

// Largest |g − ref| over the largest |ref|.
static double rel_diff(const float *g, const float *ref, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)g[i] - ref[i]));
        s = fmax(s, fabs((double)ref[i]));
    }
    return d / s;
}

// test_lm_grad with the scan sc.
static void grad_scan(dsf_lm *m, const int32_t *x, const int32_t *y, int B, int T,
                      dsf_method meth, dsf_scan_kind sc) {
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m->cfg, B, T) == 0);
    DSF_ASSERT(lm_work_reserve(&w, m, meth) == 0);
    w.scan = sc;
    lm_forward(m, &w, x, y, T);
    lm_backward(m, &w, meth);
    lm_work_destroy(&w);
}

// T−1 sweeps: BPTT's gradient (to float rounding); one sweep: not yet; with the
// seq and the blelloch scans.
static void test_refine_full_equals_bptt(void) {
    enum { B = 3, T = 8 };
    static const char *const fbs[] = {"uniform:0,0.5", "diag", "zero"};
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, 11, 3);
    for (int cell = 0; cell < 3; cell++)
        for (int k = 0; k < 3; k++)
            for (int arch = 0; arch < 2; arch++) {
                if (arch == DSF_ARCH_BLOCK && cell != DSF_CELL_GRU) continue;
                char spec[64];
                dsf_lm m;
                make_model(&m, (dsf_cell)cell, 2, (dsf_arch)arch, fbs[k], T, 7 + cell);
                test_lm_grad(&m, x, y, B, T, DSF_METHOD_BPTT);
                float *ref = malloc(sizeof(float) * m.n);
                memcpy(ref, m.grads, sizeof(float) * m.n);
                double err[2];
                for (int sc = 0; sc < 2; sc++) {  // seq, blelloch
                    for (int j = 0; j < 2; j++) {
                        m.fb.refine = j == 0 ? T - 1 : 1;
                        if (j == 0) dsf_feedback_format(&m.fb, spec, sizeof spec);
                        grad_scan(&m, x, y, B, T, DSF_METHOD_DSF, (dsf_scan_kind)sc);
                        err[j] = rel_diff(m.grads, ref, m.n);
                    }
                    CHECK_MSG(err[0] < 2e-5, "%s %s %s scan %s: relative difference %g from bptt",
                              dsf_cell_name((dsf_cell)cell), arch ? "block" : "stack", spec,
                              dsf_scan_name((dsf_scan_kind)sc), err[0]);
                    CHECK_MSG(err[1] > 1e-4, "%s %s: one sweep already bptt (%g)",
                              dsf_cell_name((dsf_cell)cell), fbs[k], err[1]);
                }
                free(ref);
                lm_destroy(&m);
            }
}

// One layer's δ (and the LSTM's δc) under method meth with the model's feedback
// and K sweeps, from the local errors e0, after lm_forward has filled w.
static void layer_delta(dsf_lm *m, dsf_lm_work *w, dsf_method meth, dsf_scan_kind scan,
                        int refine, const float *e0, float *delta, float *dc) {
    const dsf_lm_config *c = &m->cfg;
    const int B = w->B, T = w->last_T, H = c->H, E = c->E, G = dsf_cell_gates(c->cell);
    const size_t TBH = (size_t)T * B * H;
    cell_work bw = {calloc(TBH * G, 4), calloc(TBH * G, 4), calloc((size_t)B * H, 4),
                    calloc(2 * TBH, 4), calloc(2 * TBH, 4), NULL};
    const dsf_layer_feedback fb = {m->fb.kind, m->feedback, NULL, NULL, 0, NULL, refine};
    const cell_weights *rw = &m->rnn[0];
    memcpy(delta, e0, sizeof(float) * TBH);
    cell_grads *rg = &m->g_rnn[0];
    if (c->cell == DSF_CELL_GRU) {
        gru_layer_backward(meth, scan, &fb, rw, w->emb, &w->cache[0], delta, &bw, rg, NULL, T, B,
                           E, H);
    } else if (c->cell == DSF_CELL_LSTM) {
        lstm_layer_backward(meth, scan, &fb, rw, w->emb, &w->cache[0], delta, NULL, &bw, rg, NULL,
                            T, B, E, H);
        memcpy(dc, bw.gh, sizeof(float) * TBH);
    } else {
        elman_layer_backward(meth, scan, &fb, rw, w->emb, &w->cache[0], delta, &bw, rg, NULL, T, B,
                             E, H);
    }
    free(bw.gi), free(bw.gh), free(bw.carry), free(bw.avar), free(bw.ref);
}

// Largest relative difference of rows [t0, t1) of (T,B,H) sequences.
static double steps_diff(const float *a, const float *ref, int t0, int t1, int B, int H) {
    double d = 0;
    for (size_t j = (size_t)t0 * B * H; j < (size_t)t1 * B * H; j++)
        d = fmax(d, fabs((double)a[j] - ref[j]) / fmax(1, fabs(ref[j])));
    return d;
}

static void test_refine_exact_tail(void) {
    enum { B = 2, T = 9, H = 9 };
    static const char *const fbs[] = {"uniform:0,0.5", "diag"};
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, 11, 5);
    float e0[T * B * H], ref[T * B * H], dcref[T * B * H], d[T * B * H], dc[T * B * H];
    for (int cell = 0; cell < 3; cell++)
        for (int k = 0; k < 2; k++)
            for (int scan = 0; scan < 2; scan++) {
                dsf_lm m;
                make_model(&m, (dsf_cell)cell, 1, DSF_ARCH_STACK, fbs[k], T, 11 + cell);
                dsf_lm_work w;
                DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
                lm_forward(&m, &w, x, y, T);
                dsf_rng r;
                dsf_rng_seed(&r, 17);
                dsf_rng_fill_uniform(&r, e0, T * B * H, -1, 1);
                layer_delta(&m, &w, DSF_METHOD_BPTT, DSF_SCAN_SEQ, 0, e0, ref, dcref);
                for (int K = 0; K < T; K++) {
                    layer_delta(&m, &w, DSF_METHOD_DSF, (dsf_scan_kind)scan, K, e0, d, dc);
                    const int t0 = T - 1 - K;  // exact from here on
                    double tail = steps_diff(d, ref, t0, T, B, H), head = 0;
                    if (t0 > 0) head = steps_diff(d, ref, t0 - 1, t0, B, H);
                    if (cell == DSF_CELL_LSTM) {
                        tail = fmax(tail, steps_diff(dc, dcref, t0, T, B, H));
                        if (t0 > 0) head = fmax(head, steps_diff(dc, dcref, t0 - 1, t0, B, H));
                    }
                    CHECK_MSG(tail < 1e-5, "%s %s %s +%d: steps %d.. differ by %g",
                              dsf_cell_name((dsf_cell)cell), fbs[k],
                              dsf_scan_name((dsf_scan_kind)scan), K, t0, tail);
                    CHECK_MSG(t0 == 0 || K > 2 || head > 1e-4, "%s %s +%d: step %d already exact (%g)",
                              dsf_cell_name((dsf_cell)cell), fbs[k], K, t0 - 1, head);
                }
                lm_work_destroy(&w);
                lm_destroy(&m);
            }
}

// +0 is DSF as it is: the same gradient, bit for bit, as the feedback without suffix.
// "F+0" is F itself: it parses to no sweep and spells as F, and a model made with
// it (its own, drawn from the same seed) has plain F's gradient bit for bit,
// where one sweep changes it.
static void test_refine_zero_is_dsf(void) {
    enum { B = 2, T = 6 };
    int32_t x[B * T], y[B * T];
    test_random_tokens(x, y, B * T, 11, 8);
    dsf_feedback fb;
    char spec[64];
    CHECK(dsf_feedback_parse("uniform:0,0.5+0", &fb) == 0 && fb.refine == 0);
    dsf_feedback_format(&fb, spec, sizeof spec);
    CHECK(strcmp(spec, "uniform:0,0.5") == 0);
    for (int cell = 0; cell < 3; cell++) {
        dsf_lm m, p;
        make_model(&m, (dsf_cell)cell, 2, DSF_ARCH_STACK, "uniform:0,0.5+0", T, 3);
        make_model(&p, (dsf_cell)cell, 2, DSF_ARCH_STACK, "uniform:0,0.5", T, 3);
        test_lm_grad(&p, x, y, B, T, DSF_METHOD_DSF);
        test_lm_grad(&m, x, y, B, T, DSF_METHOD_DSF);
        size_t diff = 0;
        for (size_t i = 0; i < m.n; i++) diff += p.grads[i] != m.grads[i];
        m.fb.refine = 1;
        test_lm_grad(&m, x, y, B, T, DSF_METHOD_DSF);
        const double moved = rel_diff(m.grads, p.grads, m.n);
        lm_destroy(&m);
        lm_destroy(&p);
        CHECK(diff == 0);
        CHECK(moved > 1e-4);  // and one sweep does change it
    }
}

void suite_refine(void) {
    RUN(test_refine_parse);
    RUN(test_refine_full_equals_bptt);
    RUN(test_refine_exact_tail);
    RUN(test_refine_zero_is_dsf);
}
