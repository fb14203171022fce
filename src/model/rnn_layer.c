// rnn_layer.c: see rnn_layer.h. The layer's work is the cells' and grad/method.c's;
// this file lays the cache out, allocates the scratch of one call and adds the
// initial state's gradient.
#include "rnn_layer.h"

#include <string.h>

#include "cell/params.h"
#include "core/common.h"
#include "core/gemm.h"
#include "grad/method.h"
#include "model/lm.h"

// The cache of one call: h (T+1,B,H), gates (T,B,G·H), then the GRU's q (T,B,H)
// or the LSTM's c (T+1,B,H).
typedef struct {
    float *h, *gates, *q, *c;
} layout;

// Scratch that a call writes in full before reading it, 64-byte aligned and not
// zeroed (dsf_alloc zeroes: a pass over memory about to be overwritten, and the
// buffers of one call are large: 2·T·B·G·H floats for the gate gradients).
static float *uninit(size_t n) {
    const size_t bytes = ((n ? n : 1) * sizeof(float) + 63) & ~(size_t)63;
    float *p = aligned_alloc(64, bytes);
    if (!p) dsf_error_set("out of memory (%zu bytes of scratch)", bytes);
    return p;
}

static int check_shape(const dsf_rnn_shape *s) {
    if (!s) return dsf_error_set("dsf_rnn: no shape");
    if (s->cell < 0 || s->cell >= DSF_NCELLS)
        return dsf_error_set("dsf_rnn: unknown cell %d (0 gru, 1 lstm, 2 rnn)", s->cell);
    if (s->T < 1 || s->B < 1 || s->I < 1 || s->H < 1)
        return dsf_error_set("dsf_rnn: T, B, I and H must be positive (got %d, %d, %d, %d)", s->T,
                             s->B, s->I, s->H);
    // Every buffer's index must fit: the largest is (T+1)·B·G·H.
    const double big = (double)(s->T + 1) * s->B * 4 * s->H + (double)s->T * s->B * s->I;
    if (big > 1e15) return dsf_error_set("dsf_rnn: shape too large");
    if (s->rows) {
        if (s->rows[0] != s->B)
            return dsf_error_set("dsf_rnn: rows[0] must be the batch %d (got %d)", s->B,
                                 s->rows[0]);
        for (int t = 1; t < s->T; t++)
            if (s->rows[t] < 1 || s->rows[t] > s->rows[t - 1])
                return dsf_error_set("dsf_rnn: rows must not increase and stay >= 1 (rows[%d] "
                                     "= %d after %d)", t, s->rows[t], s->rows[t - 1]);
    }
    return 0;
}

// Steps row b runs: T, or with rows the steps t with b < rows[t].
static int row_steps(const dsf_rnn_shape *s, int b) {
    int n = s->T;
    if (s->rows)
        while (n > 0 && s->rows[n - 1] <= b) n--;
    return n;
}

// dst (B,H) ← each row's state after its own last step, from states (T+1,B,H).
static void row_final(const dsf_rnn_shape *s, const float *states, float *dst) {
    const size_t BH = (size_t)s->B * s->H;
    for (int b = 0; b < s->B; b++)
        memcpy(dst + (size_t)b * s->H, states + (size_t)row_steps(s, b) * BH + (size_t)b * s->H,
               sizeof(float) * s->H);
}

size_t dsf_rnn_cache_floats(const dsf_rnn_shape *s) {
    if (check_shape(s)) return 0;
    const size_t BH = (size_t)s->B * s->H, G = (size_t)dsf_cell_gates((dsf_cell)s->cell);
    size_t n = (size_t)(s->T + 1) * BH + (size_t)s->T * BH * G;
    const dsf_cell_info *ci = dsf_cell_get((dsf_cell)s->cell);
    if (ci->has_q) n += (size_t)s->T * BH;
    if (ci->states == 2) n += (size_t)(s->T + 1) * BH;  // the LSTM's c
    return n;
}

static layout lay_out(const dsf_rnn_shape *s, const float *cache) {
    const size_t BH = (size_t)s->B * s->H, G = (size_t)dsf_cell_gates((dsf_cell)s->cell);
    layout l = {(float *)cache, NULL, NULL, NULL};
    l.gates = l.h + (size_t)(s->T + 1) * BH;
    float *end = l.gates + (size_t)s->T * BH * G;
    if (dsf_cell_get((dsf_cell)s->cell)->has_q) l.q = end;
    if (dsf_cell_states((dsf_cell)s->cell) == 2) l.c = end;
    return l;
}

static size_t pack_floats(const dsf_rnn_shape *s) {
    return dsf_cell_get((dsf_cell)s->cell)->pack_floats(s->H);
}

int dsf_rnn_forward(const dsf_rnn_shape *s, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh, const float *x, const float *h0,
                    const float *c0, float *cache, float *out, float *h_n, float *c_n) {
    if (check_shape(s)) return -1;
    if (!w_ih || !w_hh || !x || !cache || !out)
        return dsf_error_set("dsf_rnn_forward: w_ih, w_hh, x, cache and out are required");
    const int T = s->T, B = s->B, I = s->I, H = s->H, G = dsf_cell_gates((dsf_cell)s->cell) * H;
    const size_t BH = (size_t)B * H;
    layout l = lay_out(s, cache);
    float *scratch = uninit((size_t)T * B * G), *wpack = uninit(pack_floats(s));
    float *zeros = (!b_ih || !b_hh) ? dsf_alloc(sizeof(float) * (size_t)G) : NULL;
    if (!scratch || !wpack || ((!b_ih || !b_hh) && !zeros)) {
        dsf_free(scratch), dsf_free(wpack), dsf_free(zeros);
        return -1;
    }
    if (!b_ih) b_ih = zeros;
    if (!b_hh) b_hh = zeros;
    if (h0) memcpy(l.h, h0, sizeof(float) * BH);
    else memset(l.h, 0, sizeof(float) * BH);
    if (l.c) {  // the LSTM's c
        if (c0) memcpy(l.c, c0, sizeof(float) * BH);
        else memset(l.c, 0, sizeof(float) * BH);
    }
    const cell_weights w = {w_ih, w_hh, b_ih, b_hh};
    cell_cache c = {.h = l.h, .c = l.c, .gates = l.gates, .q = l.q, .wpack = wpack,
                    .rows = s->rows};
    dsf_cell_get((dsf_cell)s->cell)->forward(&w, x, &c, scratch, T, B, I, H);
    if (l.c && c_n) row_final(s, l.c, c_n);
    memcpy(out, l.h + BH, sizeof(float) * (size_t)T * BH);
    if (h_n) row_final(s, l.h, h_n);
    dsf_free(scratch), dsf_free(wpack), dsf_free(zeros);
    return 0;
}

// The feedbacks a single layer can take: everything but fit and lowrank.
static int parse_feedback(const char *spelling, dsf_feedback *f) {
    if (!spelling) return dsf_error_set("dsf_rnn: no feedback given");
    if (dsf_feedback_parse(spelling, f)) return -1;
    if (f->kind == DSF_FEEDBACK_FIT || f->kind == DSF_FEEDBACK_LOWRANK)
        return dsf_error_set("feedback '%s': fit and lowrank are offered by `dsf train` only, "
                             "not by a single layer",
                             spelling);
    return 0;
}

int dsf_rnn_feedback(const char *feedback, int cell, int H, int T, uint64_t seed, float *a) {
    dsf_feedback f;
    if (parse_feedback(feedback, &f)) return -1;
    if ((unsigned)cell >= DSF_NCELLS || H < 1 || T < 1 || !a)
        return dsf_error_set("dsf_rnn_feedback: bad cell, H, T or buffer");
    dsf_rng rng;
    dsf_rng_seed(&rng, seed);
    const int S = dsf_cell_states((dsf_cell)cell);
    for (int k = 0; k < S; k++) dsf_feedback_fill(&f, &rng, a + (size_t)k * H, H, T);
    return 0;
}

// The backward scratch: gi, gh (T,B,G·H), carry (B,H), avar (S,T,B,H) for diag,
// ref (2,T,B,H) for the correction sweeps.
static int work_alloc(cell_work *w, const dsf_rnn_shape *s, const dsf_feedback *f,
                      dsf_method m) {
    const size_t TBH = (size_t)s->T * s->B * s->H;
    const size_t G = (size_t)dsf_cell_gates((dsf_cell)s->cell);
    const int S = dsf_cell_states((dsf_cell)s->cell), dsf = m == DSF_METHOD_DSF;
    memset(w, 0, sizeof *w);
    w->gi = uninit(TBH * G);
    w->gh = uninit(s->cell == DSF_CELL_GRU ? TBH * G : TBH);  // the LSTM's δc: (T,B,H)
    w->carry = uninit((size_t)s->B * s->H);
    int ok = w->gi && w->gh && w->carry;
    // zeroed: the scans may read the last step's slice, which nothing writes
    if (ok && dsf && f->kind == DSF_FEEDBACK_DIAG)
        ok = (w->avar = dsf_alloc(sizeof(float) * S * TBH)) != NULL;
    if (ok && dsf && f->refine) ok = (w->ref = dsf_alloc(sizeof(float) * 2 * TBH)) != NULL;
    if (ok && s->rows)  // the real rows' gather (cell/params.h)
        ok = (w->pack = uninit(cell_pack_floats((int)G * s->H, s->T, s->B, s->I, s->H))) != NULL;
    return ok ? 0 : -1;
}

static void work_free(cell_work *w) {
    dsf_free(w->gi), dsf_free(w->gh), dsf_free(w->carry), dsf_free(w->avar), dsf_free(w->ref);
    dsf_free(w->pack);
}

int dsf_rnn_backward(const dsf_rnn_shape *s, const char *method, const char *feedback,
                     const char *scan, const float *a, const float *w_ih, const float *w_hh,
                     const float *x, const float *cache, const float *dout,
                     const float *dh_n, const float *dc_n, float *dx, float *dh0, float *dc0,
                     float *gw_ih, float *gw_hh, float *gb_ih, float *gb_hh) {
    if (check_shape(s)) return -1;
    if (!w_ih || !w_hh || !x || !cache || !dout || !gw_ih || !gw_hh)
        return dsf_error_set("dsf_rnn_backward: w_ih, w_hh, x, cache, dout, gw_ih and gw_hh are "
                             "required");
    dsf_method m;
    dsf_scan_kind sk = DSF_SCAN_SEQ;
    dsf_feedback f = {.kind = DSF_FEEDBACK_ZERO};
    if (dsf_method_parse(method ? method : "", &m)) return -1;
    if (m == DSF_METHOD_DSF) {
        if (parse_feedback(feedback, &f) || dsf_scan_parse(scan ? scan : "seq", &sk))
            return -1;
        if (!dsf_scan_available(sk))
            return dsf_error_set("scan '%s' is not in this build of the library", scan);
        if (sk == DSF_SCAN_FFT && !dsf_feedback_is_diagonal_stationary(&f))
            return dsf_error_set("feedback '%s' cannot use scan fft, which needs a diagonal "
                                 "feedback that is the same at every step",
                                 feedback);
        if (!a && f.kind != DSF_FEEDBACK_DIAG)
            return dsf_error_set("dsf_rnn_backward: the feedback vector a is required");
    }
    const int T = s->T, B = s->B, I = s->I, H = s->H;
    const int G = dsf_cell_gates((dsf_cell)s->cell) * H;
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH;
    const layout l = lay_out(s, cache);
    cell_work work;
    float *e = uninit(TBH), *wpack = uninit(pack_floats(s));
    float *gbi = dsf_alloc(sizeof(float) * (size_t)G), *gbh = dsf_alloc(sizeof(float) * (size_t)G);
    if (work_alloc(&work, s, &f, m) || !e || !wpack || !gbi || !gbh) {
        work_free(&work), dsf_free(e), dsf_free(wpack), dsf_free(gbi), dsf_free(gbh);
        return -1;
    }
    // e: the local errors (0 past a row's end), the final state's gradient joining
    // each row's last step's.
    memcpy(e, dout, sizeof(float) * TBH);
    if (s->rows)
        for (int t = 1; t < T; t++)
            memset(e + (size_t)t * BH + (size_t)s->rows[t] * H, 0,
                   sizeof(float) * (size_t)(B - s->rows[t]) * H);
    if (dh_n)
        for (int b = 0; b < B; b++) {
            float *eb = e + (size_t)(row_steps(s, b) - 1) * BH + (size_t)b * H;
            for (int k = 0; k < H; k++) eb[k] += dh_n[(size_t)b * H + k];
        }
    memset(gw_ih, 0, sizeof(float) * (size_t)G * I);
    memset(gw_hh, 0, sizeof(float) * (size_t)G * H);
    const dsf_layer_feedback fb = {f.kind, a, NULL, NULL, 0, NULL, f.refine};
    const int lstm = dsf_cell_states((dsf_cell)s->cell) == 2;
    const cell_weights w = {w_ih, w_hh, NULL, NULL};
    const cell_cache c = {.h = l.h, .c = l.c, .gates = l.gates, .q = l.q, .wpack = wpack,
                          .rows = s->rows};
    cell_grads g = {gw_ih, gw_hh, gbi, gbh};
    cell_layer_backward((dsf_cell)s->cell, m, sk, &fb, &w, x, &c, e, lstm ? dc_n : NULL, &work,
                        &g, dx, T, B, I, H);
    // dh0 = J_1ᵀ δ_1 at the first step: the GRU's δ ⊙ z + gh W_hh, the others' ga W_hh
    // (work.gi the gate gradients); the LSTM's dc0 = f ⊙ δc (work.gh δc).
    if (dh0 && s->cell == DSF_CELL_GRU) gru_backward_jt(&w, e, l.gates, work.gh, dh0, B, H);
    else if (dh0) dsf_sgemm(0, 0, B, H, G, 1.0f, work.gi, G, w_hh, H, 0.0f, dh0, H);
    if (dc0 && lstm)
        for (int b = 0; b < B; b++)
            for (int k = 0; k < H; k++)
                dc0[(size_t)b * H + k] =
                    l.gates[(size_t)b * G + H + k] * work.gh[(size_t)b * H + k];
    if (dc0 && !lstm) memset(dc0, 0, sizeof(float) * BH);
    if (gb_ih) memcpy(gb_ih, gbi, sizeof(float) * (size_t)G);
    if (gb_hh) memcpy(gb_hh, gbh, sizeof(float) * (size_t)G);
    work_free(&work), dsf_free(e), dsf_free(wpack), dsf_free(gbi), dsf_free(gbh);
    return 0;
}
