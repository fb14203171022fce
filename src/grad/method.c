// method.c: see method.h. The whole difference between the methods is the
// branch in each *_layer_backward; everything after it is shared.
#include "method.h"

#include <string.h>

#include "core/common.h"
#include "core/gemm.h"
#include "core/prof.h"

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
static void gru_diag(const gru_weights *w, const gru_cache *cache, float *avar, int T, int B,
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

void gru_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                        const gru_weights *w, const float *x, const gru_cache *cache, float *e,
                        gru_backward_work *work, gru_grads *g, float *dx, int T, int B, int I,
                        int H) {
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH;
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        // Exact: the carry J_{t+1}ᵀ δ_{t+1} needs step t+1's gate gradients, so
        // the local backward runs inside the sequential loop (gru_backward_bptt).
        gru_backward_bptt(w, cache, e, work->gi, work->gh, work->carry, T, B, H);
    } else {
        if (m == DSF_METHOD_DSF) {
            const int diag = fb->kind == DSF_FEEDBACK_DIAG;
            DSF_ASSERT(!diag || work->avar);
            DSF_ASSERT(!fb->refine || work->ref);
            if (diag) gru_diag(w, cache, work->avar, T, B, H);
            if (fb->refine) memcpy(work->ref, e, sizeof(float) * TBH);  // e0
            scan_feedback(scan, fb, work->avar, e, T, B, H);
            for (int k = 0; k < fb->refine; k++) {
                gru_backward_local(e, cache->h, cache->gates, cache->q, work->gi, work->gh,
                                   T * B, H);
                carry_all(work->gh + 3 * BH, w->w_hh, work->gi, (long)(T - 1) * B, 3, H);
                sweep(scan, fb, work->avar, e, work->ref, work->gi, cache->gates + H,
                      3 * (size_t)H, T, B, H);
            }
        }
        // ft: δ = e as it is. With δ known at every step, the rest is parallel over time.
        gru_backward_local(e, cache->h, cache->gates, cache->q, work->gi, work->gh, T * B, H);
    }
    dsf_prof_end(DSF_PROF_STATE_GRAD, t0);
    t0 = dsf_prof_begin();
    gru_backward_params(w, x, cache, work->gi, work->gh, g, dx, T, B, I, H);
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}

void gru_fit_feedback(const gru_weights *w, const gru_cache *cache, const float *e,
                      gru_backward_work *work, float *a, float rate, int T, int B, int H) {
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

// δc's last slice += dc_end (when not NULL): a gradient reaching c_{T-1} from outside.
static void add_dc_end(float *dc, const float *dc_end, int T, int B, int H) {
    if (!dc_end) return;
    const size_t BH = (size_t)B * H;
    float *d = dc + (size_t)(T - 1) * BH;
    for (size_t k = 0; k < BH; k++) d[k] += dc_end[k];
}

void lstm_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                         const lstm_weights *w, const float *x, const lstm_cache *cache, float *e,
                         const float *dc_end, gru_backward_work *work, lstm_grads *g, float *dx,
                         int T, int B, int I, int H) {
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH, BG = 4 * BH;
    float *dc = work->gh;
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        lstm_backward_bptt(w, cache, e, dc, dc_end, work->gi, work->carry, T, B, H);
    } else {
        const int dsf = m == DSF_METHOD_DSF, diag = dsf && fb->kind == DSF_FEEDBACK_DIAG;
        const long rows = (long)(T - 1) * B;
        float *ah = work->avar, *ac = work->avar ? work->avar + TBH : NULL;
        if (diag) {  // slice t: step t+1's exact diagonals (h→h, and c→c = f)
            DSF_ASSERT(ah);
            lstm_jacobian_diag(w, cache->c + BH, cache->c + 2 * BH, cache->gates + BG, ah,
                               (int)rows, H);
            for (long r = 0; r < rows; r++)
                memcpy(ac + r * H, cache->gates + BG + r * 4 * H + H, sizeof(float) * H);
        }
        const dsf_layer_feedback fc = {DSF_FEEDBACK_UNIFORM, fb->a + H, NULL, NULL, 0, NULL, 0};
        const dsf_layer_feedback *fcp = diag ? fb : &fc;  // the c chain: diagonal, stationary or f
        float *e0 = work->ref, *cb = work->ref ? work->ref + TBH : NULL;
        DSF_ASSERT(!(dsf && fb->refine) || work->ref);
        if (dsf && fb->refine) memcpy(e0, e, sizeof(float) * TBH);
        if (dsf) scan_feedback(scan, fb, ah, e, T, B, H);
        lstm_c_local(e, cache->gates, cache->c + BH, dc, T * B, H);
        add_dc_end(dc, dc_end, T, B, H);
        if (dsf) scan_feedback(scan, fcp, ac, dc, T, B, H);
        for (int k = 0; dsf && k < fb->refine; k++) {
            // δh ← scan(e + (Jᵀ − A_h) S δh), Jᵀ through all four gates of step t+1
            lstm_backward_local(e, dc, cache->c, cache->c + BH, cache->gates, work->gi, T * B, H);
            carry_all(work->gi + BG, w->w_hh, cb, rows, 4, H);
            sweep(scan, fb, ah, e, e0, cb, NULL, 0, T, B, H);
            // δc ← scan(ĉ + (f − a_c) S δc); with diag a_c = f and the chain is exact
            lstm_c_local(e, cache->gates, cache->c + BH, cb, T * B, H);
            add_dc_end(cb, dc_end, T, B, H);
            if (diag) {
                memcpy(dc, cb, sizeof(float) * TBH);
                scan_feedback(scan, fb, ac, dc, T, B, H);
            } else {
                sweep(scan, &fc, NULL, dc, NULL, cb, cache->gates + H, 4 * (size_t)H, T, B, H);
            }
        }
        lstm_backward_local(e, dc, cache->c, cache->c + BH, cache->gates, work->gi, T * B, H);
    }
    dsf_prof_end(DSF_PROF_STATE_GRAD, t0);
    t0 = dsf_prof_begin();
    lstm_backward_params(w, x, cache, work->gi, g, dx, T, B, I, H);
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}

void elman_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                          const elman_weights *w, const float *x, const elman_cache *cache,
                          float *e, gru_backward_work *work, elman_grads *g, float *dx, int T,
                          int B, int I, int H) {
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH;
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        elman_backward_bptt(w, cache, e, work->gi, work->carry, T, B, H);
    } else {
        if (m == DSF_METHOD_DSF) {
            const int diag = fb->kind == DSF_FEEDBACK_DIAG;
            DSF_ASSERT(!diag || work->avar);
            DSF_ASSERT(!fb->refine || work->ref);
            if (diag) elman_jacobian_diag(w, cache->h + 2 * BH, work->avar, (T - 1) * B, H);
            if (fb->refine) memcpy(work->ref, e, sizeof(float) * TBH);
            scan_feedback(scan, fb, work->avar, e, T, B, H);
            for (int k = 0; k < fb->refine; k++) {
                float *cb = work->ref + TBH;
                elman_backward_local(e, cache->h + BH, work->gi, T * B, H);
                carry_all(work->gi + BH, w->w_hh, cb, (long)(T - 1) * B, 1, H);
                sweep(scan, fb, work->avar, e, work->ref, cb, NULL, 0, T, B, H);
            }
        }
        elman_backward_local(e, cache->h + BH, work->gi, T * B, H);
    }
    dsf_prof_end(DSF_PROF_STATE_GRAD, t0);
    t0 = dsf_prof_begin();
    elman_backward_params(w, x, cache, work->gi, g, dx, T, B, I, H);
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}
