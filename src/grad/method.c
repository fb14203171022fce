// method.c: see method.h. The whole difference between the methods is one branch,
// state_backward, which every cell enters through its row of a table (cell_ops);
// everything after it is shared.
#include "method.h"

#include <string.h>

#include "core/common.h"
#include "core/gemm.h"
#include "core/prof.h"
#include "cell/params.h"

static const char *const method_names[] = {"bptt", "ft", "dsf"};

const char *dsf_method_name(dsf_method m) { return method_names[m]; }

int dsf_method_parse(const char *s, dsf_method *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (dsf_method)i;
            return 0;
        }
    return dsf_error_set("unknown method '%s' (expected bptt, ft or dsf)", s);
}

// The diag feedback: slice t of work->avar is diag(J_{t+1}) (t < T−1).
static void gru_diag(const cell_weights *w, const cell_cache *cache, float *avar, int T, int B,
                     int H) {
    const size_t BH = (size_t)B * H, BG = 3 * BH;
    const long rows = (long)(T - 1) * B;
#pragma omp parallel for schedule(static) if (rows * H > 65536)
    for (long r = 0; r < rows; r++)
        gru_jacobian_diag(w, cache->h + BH + r * H, cache->gates + BG + r * 3 * H,
                          cache->q + BH + r * H, avar + r * H, 1, H);
}

// δ = scan(e) under the layer's feedback, in place; avar holds the diag
// feedback's (T,B,H) coefficients when fb is diag.
static void scan_feedback(dsf_scan_kind scan, const dsf_layer_feedback *fb, const float *avar,
                          float *e, int T, int B, int H) {
    const float *a = fb->a;
    switch (fb->kind) {
    case DSF_FEEDBACK_DIAG: DSF_ASSERT(dsf_scan_varying(scan, e, avar, T, B, H) == 0); break;
    case DSF_FEEDBACK_LOWRANK:
        DSF_ASSERT(dsf_scan_lowrank(scan, e, a, fb->u, fb->v, fb->r, T, B, H, fb->cache) == 0);
        break;
    default: DSF_ASSERT(dsf_scan_stationary(scan, e, a, T, B, H) == 0);
    }
}

// The right side of a correction sweep (method.h), for the rows r < (T−1)B:
//   c_r ← c_r + e0_r + (d_r − a_r) ⊙ δ_{r+B}
// with c_r the GEMM part of J_{t+1}ᵀ δ_{t+1} on entry, d the elementwise part of
// the same Jacobian read at row r+B with stride ds (NULL: none), a stationary (H)
// or, when varying, (T,B,H); e0 NULL counts as zero. Then e (which held δ) ← c
// there, and at the last step e ← e0 (c when e0 is NULL).
static void sweep_rhs(float *e, const float *e0, float *c, const float *d, size_t ds,
                      const float *a, int varying, int T, int B, int H) {
    const long rows = (long)(T - 1) * B;
#pragma omp parallel for schedule(static) if (rows * H > 65536)
    for (long r = 0; r < rows; r++) {
        const float *dn = e + (r + B) * H, *ar = varying ? a + r * H : a;
        const float *dr = d ? d + (r + B) * ds : NULL, *er = e0 ? e0 + r * H : NULL;
        float *cr = c + r * H;
        for (int i = 0; i < H; i++)
            cr[i] += (er ? er[i] : 0.0f) + ((dr ? dr[i] : 0.0f) - ar[i]) * dn[i];
    }
    memcpy(e, c, sizeof(float) * (size_t)rows * H);
    memcpy(e + rows * H, (e0 ? e0 : c) + rows * H, sizeof(float) * (size_t)B * H);
}

// One correction sweep, δ ← scan(e0 + c + (d − A) S δ) in place on e (which holds
// δ), with c the GEMM part of J_{t+1}ᵀ δ_{t+1} and d its elementwise part (as
// sweep_rhs), A the feedback fb (avar for diag).
static void sweep(dsf_scan_kind scan, const dsf_layer_feedback *fb, const float *avar, float *e,
                  const float *e0, float *c, const float *d, size_t ds, int T, int B, int H) {
    const int diag = fb->kind == DSF_FEEDBACK_DIAG;
    sweep_rhs(e, e0, c, d, ds, diag ? avar : fb->a, diag, T, B, H);
    scan_feedback(scan, fb, avar, e, T, B, H);
}

// c (rows,H) = ga (rows, G·H) · W_hh (G·H, H): the GEMM part of Jᵀ δ for every row.
static void carry_all(const float *ga, const float *w_hh, float *c, long rows, int G, int H) {
    if (rows > 0) dsf_sgemm(0, 0, (int)rows, H, G * H, 1.0f, ga, G * H, w_hh, H, 0.0f, c, H);
}

// ---- What each cell supplies to the methods ----
//
// The branch between the methods is written once, in state_backward; a cell
// enters it through this table: its BPTT loop, its local backward (δ at every
// step -> gate gradients), the exact Jacobian diagonal for the diag feedback, where
// the carry GEMM of a correction sweep reads (the gate gradients of steps 1..T−1,
// G·H wide, times W_hh) and the elementwise part of its Jacobian (GRU: z). The
// LSTM's second recurrence, δc, is the c_chain below. w and cache are the cell's
// own types (cell_weights and cell_cache, ...); w_hh is passed beside them.
typedef struct {
    int G;  // gates per unit: the carry GEMM's width G·H
    void (*bptt)(const void *w, const void *cache, float *e, const float *dc_end,
                 cell_work *work, int T, int B, int H);
    void (*local)(const void *cache, const float *e, cell_work *work, int T, int B,
                  int H);
    void (*diag)(const void *w, const void *cache, float *avar, int T, int B, int H);
    const float *(*carry_from)(const cell_work *work, int B, int H);  // step 1's row
    const float *(*d)(const void *cache, int B, int H);  // J's elementwise part at step 0, or NULL
    size_t d_stride;                                      // in units of H
    int c_chain;  // the LSTM: δc = ĉ + a_c ⊙ δc_{t+1}, with ĉ = c_local(δh)
    int own_gh;   // the recurrent side's gate gradients are work->gh (the GRU's n
                  // gate), else they are work->gi's
} cell_ops;

static void gru_bptt(const void *w, const void *cache, float *e, const float *dc_end,
                     cell_work *work, int T, int B, int H) {
    (void)dc_end;
    gru_backward_bptt(w, cache, e, work->gi, work->gh, work->carry, T, B, H);
}
static void gru_local(const void *cache, const float *e, cell_work *work, int T, int B,
                      int H) {
    const cell_cache *c = cache;
    gru_backward_local(e, c->h, c->gates, c->q, work->gi, work->gh, T * B, H);
}
static void gru_diag_op(const void *w, const void *cache, float *avar, int T, int B, int H) {
    gru_diag(w, cache, avar, T, B, H);
}
static const float *gru_carry_from(const cell_work *work, int B, int H) {
    return work->gh + (size_t)3 * B * H;
}
static const float *gru_z(const void *cache, int B, int H) {
    (void)B;
    return ((const cell_cache *)cache)->gates + H;
}

static void elman_bptt(const void *w, const void *cache, float *e, const float *dc_end,
                       cell_work *work, int T, int B, int H) {
    (void)dc_end;
    elman_backward_bptt(w, cache, e, work->gi, work->carry, T, B, H);
}
static void elman_local(const void *cache, const float *e, cell_work *work, int T, int B,
                        int H) {
    elman_backward_local(e, ((const cell_cache *)cache)->h + (size_t)B * H, work->gi, T * B, H);
}
static void elman_diag(const void *w, const void *cache, float *avar, int T, int B, int H) {
    elman_jacobian_diag(w, ((const cell_cache *)cache)->h + (size_t)2 * B * H, avar, (T - 1) * B,
                        H);
}
static const float *elman_carry_from(const cell_work *work, int B, int H) {
    return work->gi + (size_t)B * H;
}

// The LSTM: work->gi holds the gate gradients (T,B,4H), work->gh δc (T,B,H); avar,
// for diag, the exact h→h diagonals then the c→c ones (f), 2·T·B·H floats.
static void lstm_bptt(const void *w, const void *cache, float *e, const float *dc_end,
                      cell_work *work, int T, int B, int H) {
    lstm_backward_bptt(w, cache, e, work->gh, dc_end, work->gi, work->carry, T, B, H);
}
static void lstm_local(const void *cache, const float *e, cell_work *work, int T, int B,
                       int H) {
    const cell_cache *c = cache;
    lstm_backward_local(e, work->gh, c->c, c->c + (size_t)B * H, c->gates, work->gi, T * B, H);
}
static void lstm_diag_op(const void *w, const void *cache, float *avar, int T, int B, int H) {
    const cell_cache *c = cache;
    const size_t BH = (size_t)B * H, BG = 4 * BH, TBH = (size_t)T * BH;
    const long rows = (long)(T - 1) * B;
    // slice t: step t+1's exact diagonals (h→h, and c→c = f)
    lstm_jacobian_diag(w, c->c + BH, c->c + 2 * BH, c->gates + BG, avar, (int)rows, H);
    for (long r = 0; r < rows; r++)
        memcpy(avar + TBH + r * H, c->gates + BG + r * 4 * H + H, sizeof(float) * H);
}
static const float *lstm_carry_from(const cell_work *work, int B, int H) {
    return work->gi + (size_t)4 * B * H;
}

// One row per cell, in dsf_cell's order (cell/cell.h).
static const cell_ops cell_table[DSF_NCELLS] = {
    [DSF_CELL_GRU] = {.G = 3, .bptt = gru_bptt, .local = gru_local, .diag = gru_diag_op,
                      .carry_from = gru_carry_from, .d = gru_z, .d_stride = 3, .own_gh = 1},
    [DSF_CELL_LSTM] = {.G = 4, .bptt = lstm_bptt, .local = lstm_local, .diag = lstm_diag_op,
                       .carry_from = lstm_carry_from, .c_chain = 1},
    [DSF_CELL_ELMAN] = {.G = 1, .bptt = elman_bptt, .local = elman_local, .diag = elman_diag,
                        .carry_from = elman_carry_from},
};

// δc += dc_end (when not NULL) at each row's last step (T − 1, or its own end in a
// ragged batch: cell.h): a gradient reaching the row's last cell state from outside.
static void add_dc_end(float *dc, const float *dc_end, const cell_cache *cache, int T, int B,
                       int H) {
    if (!dc_end) return;
    for (int t = 0; t < T; t++) {
        float *d = dc + (size_t)t * B * H;
        for (size_t k = (size_t)cell_rows_ending(cache, t, T, B) * H;
             k < (size_t)cell_rows(cache, t, B) * H; k++)
            d[k] += dc_end[k];
    }
}

// The state gradients of one layer under method m (method.h), for any cell: e
// holds the local errors on entry and δ on return, the gate gradients of every
// step are in work when it returns (as ops->local leaves them).
static void state_backward(const cell_ops *ops, dsf_method m, dsf_scan_kind scan,
                           const dsf_layer_feedback *fb, const void *w, const float *w_hh,
                           const void *cache, float *e, const float *dc_end,
                           cell_work *work, int T, int B, int H) {
    if (m == DSF_METHOD_BPTT) {
        // Exact: the carry J_{t+1}ᵀ δ_{t+1} needs step t+1's gate gradients, so the
        // local backward runs inside the cell's sequential loop.
        ops->bptt(w, cache, e, dc_end, work, T, B, H);
        return;
    }
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH;
    const long rows = (long)(T - 1) * B;
    const int dsf = m == DSF_METHOD_DSF, diag = dsf && fb->kind == DSF_FEEDBACK_DIAG;
    const int sweeps = dsf ? fb->refine : 0;
    float *ah = work->avar, *ac = ops->c_chain && ah ? ah + TBH : NULL;
    float *e0 = work->ref, *cb = work->ref ? work->ref + TBH : NULL, *dc = work->gh;
    DSF_ASSERT(!diag || ah);
    DSF_ASSERT(!sweeps || e0);
    // The LSTM's c chain: the diagonal f (diag) or the stationary a_c (the second H of a).
    const dsf_layer_feedback fc = {DSF_FEEDBACK_UNIFORM, fb ? fb->a + H : NULL, NULL, NULL, 0,
                                   NULL, 0};
    const dsf_layer_feedback *fcp = diag ? fb : &fc;
    if (diag) ops->diag(w, cache, ah, T, B, H);
    if (sweeps) memcpy(e0, e, sizeof(float) * TBH);
    // ft: δ = e as it is; dsf: the scan. With δ known at every step, the rest is
    // parallel over time.
    if (dsf) scan_feedback(scan, fb, ah, e, T, B, H);
    const cell_cache *lc = cache;
    if (ops->c_chain) {
        lstm_c_local(e, lc->gates, lc->c + BH, dc, T * B, H);
        add_dc_end(dc, dc_end, lc, T, B, H);
        if (dsf) scan_feedback(scan, fcp, ac, dc, T, B, H);
    }
    for (int k = 0; k < sweeps; k++) {
        // δ ← scan(e + (Jᵀ − A) S δ), Jᵀ S δ by the local backward and one GEMM
        ops->local(cache, e, work, T, B, H);
        carry_all(ops->carry_from(work, B, H), w_hh, cb, rows, ops->G, H);
        sweep(scan, fb, ah, e, e0, cb, ops->d ? ops->d(cache, B, H) : NULL, ops->d_stride * H, T,
              B, H);
        if (ops->c_chain) {
            // δc ← scan(ĉ + (f − a_c) S δc); with diag a_c = f and the chain is exact
            lstm_c_local(e, lc->gates, lc->c + BH, cb, T * B, H);
            add_dc_end(cb, dc_end, lc, T, B, H);
            if (diag) {
                memcpy(dc, cb, sizeof(float) * TBH);
                scan_feedback(scan, fb, ac, dc, T, B, H);
            } else {
                sweep(scan, &fc, NULL, dc, NULL, cb, lc->gates + H, 4 * (size_t)H, T, B, H);
            }
        }
    }
    ops->local(cache, e, work, T, B, H);
}

void cell_layer_backward(dsf_cell cell, dsf_method m, dsf_scan_kind scan,
                         const dsf_layer_feedback *fb, const cell_weights *w, const float *x,
                         const cell_cache *cache, float *e, const float *dc_end, cell_work *work,
                         cell_grads *g, float *dx, int T, int B, int I, int H) {
    DSF_ASSERT((unsigned)cell < DSF_NCELLS);
    const cell_ops *ops = &cell_table[cell];
    double t0 = dsf_prof_begin();
    state_backward(ops, m, scan, fb, w, w->w_hh, cache, e, dc_end, work, T, B, H);
    dsf_prof_end(DSF_PROF_STATE_GRAD, t0);
    t0 = dsf_prof_begin();
    const float *gh = ops->own_gh ? work->gh : work->gi;
    // A ragged batch's products run on its real rows only (gathered into work->pack).
    DSF_ASSERT(!cache->rows || work->pack);
    cell_backward_params_steps(ops->G * H, w->w_ih, x, cache->h, work->gi, gh, g->w_ih, g->w_hh,
                               g->b_ih, g->b_hh, dx, T, B, cache->rows, work->pack, I, H);
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}

void gru_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                        const cell_weights *w, const float *x, const cell_cache *cache, float *e,
                        cell_work *work, cell_grads *g, float *dx, int T, int B, int I, int H) {
    cell_layer_backward(DSF_CELL_GRU, m, scan, fb, w, x, cache, e, NULL, work, g, dx, T, B, I, H);
}

void gru_fit_feedback(const cell_weights *w, const cell_cache *cache, const float *e,
                      cell_work *work, float *a, float rate, int T, int B, int H) {
    if (T < 2) return;
    const size_t BH = (size_t)B * H, BG = 3 * BH;
    const long rows = (long)(T - 1) * B;
    float *c = work->gi;  // (rows,H) = gh W_hh, then + δ ⊙ z
    carry_all(work->gh + BG, w->w_hh, c, rows, 3, H);
    // Per channel, the rows in a fixed order: the same result for any thread count.
#pragma omp parallel for schedule(static)
    for (int i = 0; i < H; i++) {
        double num = 0, den = 0;
        for (long r = 0; r < rows; r++) {
            const double d = e[BH + r * H + i], z = cache->gates[BG + r * 3 * H + H + i];
            num += ((double)c[r * H + i] + d * z) * d;
            den += d * d;
        }
        if (den > 0) {
            double fit = num / den;
            fit = fit < -1 ? -1 : fit > 1 ? 1 : fit;
            a[i] += rate * ((float)fit - a[i]);
        }
    }
}

void lstm_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                         const cell_weights *w, const float *x, const cell_cache *cache, float *e,
                         const float *dc_end, cell_work *work, cell_grads *g, float *dx, int T,
                         int B, int I, int H) {
    cell_layer_backward(DSF_CELL_LSTM, m, scan, fb, w, x, cache, e, dc_end, work, g, dx, T, B, I,
                        H);
}

void elman_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                          const cell_weights *w, const float *x, const cell_cache *cache,
                          float *e, cell_work *work, cell_grads *g, float *dx, int T, int B,
                          int I, int H) {
    cell_layer_backward(DSF_CELL_ELMAN, m, scan, fb, w, x, cache, e, NULL, work, g, dx, T, B, I,
                        H);
}
