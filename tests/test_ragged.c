// test_ragged.c: ragged batches (model/lm.h, dsf_lm_work.ragged; cell/cell.h,
// cell_cache.rows). A padded batch whose recurrence skips the rows that have ended
// gives the loss and every gradient of the same batch run on every row: for each
// cell, the stack and the residual model, bptt, ft and dsf (a drawn feedback under
// every scan, the diag feedback, correction sweeps), with the recurrent products
// packed (as the model runs them) and plain; rows sorted longest first, as the
// sentence batcher gives them, and in any order.
#include <stdlib.h>
#include <string.h>

#include "model/lm.h"
#include "test.h"

enum { RB = 6, RT = 9, RV = 11, RH = 6 };

// Targets of row b counted for t < len[b], DSF_IGNORE after; inputs drawn.
static void ragged_batch(const int *len, int32_t *x, int32_t *y, uint64_t seed) {
    test_random_tokens(x, y, RT * RB, RV, seed);
    for (int t = 0; t < RT; t++)
        for (int b = 0; b < RB; b++)
            if (t >= len[b]) y[t * RB + b] = DSF_IGNORE;
}

// The loss and gradient of one batch into g; ragged and plain (the recurrent
// products one GEMM a step, not packed) as asked. *ran: the positions run.
static double ragged_grad(dsf_lm *m, const int32_t *x, const int32_t *y, dsf_method meth,
                          dsf_scan_kind sc, int ragged, int plain, float *g, int64_t *ran) {
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m->cfg, RB, RT) == 0);
    DSF_ASSERT(lm_work_reserve(&w, m, meth) == 0);
    w.scan = sc;
    if (plain)
        for (int l = 0; l < m->cfg.L; l++) w.cache[l].wpack = NULL;
    // First a pass over every row, so that the buffers hold what a previous batch
    // left there: what the skipped rows must not read.
    int32_t y_all[RT * RB];
    for (int i = 0; i < RT * RB; i++) y_all[i] = y[i] == DSF_IGNORE ? 1 : y[i];
    lm_forward(m, &w, x, y_all, RT);
    lm_backward(m, &w, meth);
    lm_work_reset_state(&w, &m->cfg);
    w.ragged = ragged;
    const double loss = lm_forward(m, &w, x, y, RT);
    lm_backward(m, &w, meth);
    memcpy(g, m->grads, m->n * sizeof(float));
    *ran = w.ran;
    lm_work_destroy(&w);
    return loss;
}

// The worst |a − b| / (1 + |b|) over n floats.
static double worst_rel(const float *a, const float *b, size_t n) {
    double worst = 0;
    for (size_t i = 0; i < n; i++) {
        const double d = fabs((double)a[i] - b[i]) / (1 + fabs((double)b[i]));
        if (!(d <= worst)) worst = d;  // NaN counts as worst
    }
    return worst;
}

static void test_ragged_equals_full(void) {
    // Sorted longest first (one row empty), and the same lengths in another order.
    const int sorted[RB] = {9, 7, 7, 4, 1, 0}, shuffled[RB] = {4, 0, 9, 1, 7, 7};
    const int *orders[2] = {sorted, shuffled};
    int cases = 0;
    for (int cell = 0; cell < DSF_NCELLS; cell++)
        for (int arch = 0; arch < 2; arch++) {
            dsf_lm_config cfg = {.V = RV, .E = RH, .H = RH, .L = 2, .cell = (dsf_cell)cell,
                                 .arch = arch ? DSF_ARCH_RESIDUAL : DSF_ARCH_STACK};
            dsf_lm m;
            DSF_ASSERT(lm_create(&m, &cfg) == 0);
            dsf_rng r;
            dsf_rng_seed(&r, 40 + (uint64_t)cell);
            dsf_rng_fill_uniform(&r, m.params, m.n, -0.5f, 0.5f);
            const int S = dsf_cell_states((dsf_cell)cell);
            float *g_full = malloc(m.n * sizeof(float)), *g = malloc(m.n * sizeof(float));
            float *a = m.feedback;
            // bptt, ft, then dsf with the drawn feedback (each scan), diag, and +2 sweeps
            for (int k = 0; k < 7; k++) {
                dsf_method meth = k == 0 ? DSF_METHOD_BPTT : k == 1 ? DSF_METHOD_FT : DSF_METHOD_DSF;
                dsf_scan_kind sc = k >= 2 && k <= 4 ? (dsf_scan_kind)(k - 2) : DSF_SCAN_SEQ;
                if (!dsf_scan_available(sc)) {
                    test_skip("scan %s is not built in", dsf_scan_name(sc));
                    continue;
                }
                m.fb = (dsf_feedback){.kind = k == 5 ? DSF_FEEDBACK_DIAG : DSF_FEEDBACK_UNIFORM,
                                      .refine = k == 6 ? 2 : 0};
                dsf_rng_fill_uniform(&r, a, (size_t)cfg.L * S * RH, 0, 1);
                for (int o = 0; o < 2; o++) {
                    int32_t x[RT * RB], y[RT * RB];
                    ragged_batch(orders[o], x, y, 7 + (uint64_t)k);
                    int64_t ran_full, ran;
                    const double l0 = ragged_grad(&m, x, y, meth, sc, 0, 0, g_full, &ran_full);
                    CHECK(ran_full == RT * RB);
                    for (int plain = 0; plain < 2; plain++) {
                        const double l1 = ragged_grad(&m, x, y, meth, sc, 1, plain, g, &ran);
                        // sorted: the real positions only (9+7+7+4+1); shuffled: up to
                        // the last row still running
                        CHECK_MSG(ran == (o == 0 ? 28 : 7 * 6 + 2 * 3),
                                  "ran %lld positions", (long long)ran);
                        CHECK_CLOSE(l1, l0, 1e-6);
                        const double worst = worst_rel(g, g_full, m.n);
                        CHECK_MSG(worst < 1e-5, "%s %s method %d scan %s%s, %s rows: worst %g",
                                  dsf_cell_name((dsf_cell)cell), dsf_arch_name(cfg.arch), k,
                                  dsf_scan_name(sc), plain ? " plain" : "",
                                  o ? "shuffled" : "sorted", worst);
                        cases++;
                    }
                }
            }
            free(g_full);
            free(g);
            lm_destroy(&m);
        }
    CHECK(cases > 0);
}

// Skipping is not a no-op: the rows past their end are not run (their outputs
// are 0, where running them gives the cell's output of the padding's inputs),
// while every row before its end is the same.
static void test_ragged_skips_rows(void) {
    const int len[RB] = {9, 7, 7, 4, 1, 0};
    dsf_lm_config cfg = {.V = RV, .E = RH, .H = RH, .L = 1};
    dsf_lm m;
    DSF_ASSERT(lm_create(&m, &cfg) == 0);
    dsf_rng r;
    dsf_rng_seed(&r, 3);
    dsf_rng_fill_uniform(&r, m.params, m.n, -0.5f, 0.5f);
    int32_t x[RT * RB], y[RT * RB];
    ragged_batch(len, x, y, 5);
    dsf_lm_work w[2];
    for (int k = 0; k < 2; k++) {
        DSF_ASSERT(lm_work_create(&w[k], &cfg, RB, RT) == 0);
        w[k].ragged = k;
        lm_forward(&m, &w[k], x, y, RT);
    }
    size_t same = 0, zero = 0, skipped = 0;
    for (int t = 0; t < RT; t++)
        for (int b = 0; b < RB; b++)
            for (int i = 0; i < RH; i++) {
                const size_t at = ((size_t)(t + 1) * RB + b) * RH + i;
                const float full = w[0].cache[0].h[at], rag = w[1].cache[0].h[at];
                if (t < len[b]) {
                    same += full == rag;
                } else {
                    skipped++;
                    zero += rag == 0 && full != 0;
                }
            }
    CHECK(same == (size_t)28 * RH);
    CHECK(skipped == (size_t)(RT * RB - 28) * RH && zero == skipped);
    for (int k = 0; k < 2; k++) lm_work_destroy(&w[k]);
    lm_destroy(&m);
}

void suite_ragged(void) {
    RUN(test_ragged_equals_full);
    RUN(test_ragged_skips_rows);
}
