// method.c: see method.h. The whole difference between the methods is the
// branch in gru_layer_backward; everything after it is shared.
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

// The diag feedback: slice t of work->avar is diag(J_{t+1}) (t < T−1), then a
// time-varying scan.
static void scan_diag(dsf_scan_kind scan, const gru_weights *w, const gru_cache *cache, float *e,
                      float *avar, int T, int B, int H) {
    const size_t BH = (size_t)B * H, BG = 3 * BH;
    const long rows = (long)(T - 1) * B;
#pragma omp parallel for schedule(static) if (rows * H > 65536)
    for (long r = 0; r < rows; r++)
        gru_jacobian_diag(w, cache->h + BH + r * H, cache->gates + BG + r * 3 * H,
                          cache->q + BH + r * H, avar + r * H, 1, H);
    DSF_ASSERT(dsf_scan_varying(scan, e, avar, T, B, H) == 0);
}

static void dsf_scan_layer(dsf_scan_kind scan, const dsf_layer_feedback *fb, const gru_weights *w,
                           const gru_cache *cache, float *e, gru_backward_work *work, int T, int B,
                           int H) {
    switch (fb->kind) {
    case DSF_FEEDBACK_DIAG:
        DSF_ASSERT(work->avar);
        scan_diag(scan, w, cache, e, work->avar, T, B, H);
        break;
    case DSF_FEEDBACK_LOWRANK:
        DSF_ASSERT(dsf_scan_lowrank(scan, e, fb->a, fb->u, fb->v, fb->r, T, B, H, fb->cache) == 0);
        break;
    default:
        DSF_ASSERT(dsf_scan_stationary(scan, e, fb->a, T, B, H) == 0);
    }
}

void gru_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                        const gru_weights *w, const float *x, const gru_cache *cache, float *e,
                        gru_backward_work *work, gru_grads *g, float *dx, int T, int B, int I,
                        int H) {
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        // Exact: the carry J_{t+1}ᵀ δ_{t+1} needs step t+1's gate gradients, so
        // the local backward runs inside the sequential loop (gru_backward_bptt).
        gru_backward_bptt(w, cache, e, work->gi, work->gh, work->carry, T, B, H);
    } else {
        if (m == DSF_METHOD_DSF) dsf_scan_layer(scan, fb, w, cache, e, work, T, B, H);
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
    dsf_sgemm(0, 0, (int)rows, H, 3 * H, 1.0f, work->gh + BG, 3 * H, w->w_hh, H, 0.0f, c, H);
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

// A stationary or low-rank feedback for the cells other than the GRU (diag is
// handled by the callers, which know the Jacobian).
static void scan_stationary_or_lowrank(dsf_scan_kind scan, const dsf_layer_feedback *fb,
                                       const float *a, float *e, int T, int B, int H) {
    if (fb->kind == DSF_FEEDBACK_LOWRANK)
        DSF_ASSERT(dsf_scan_lowrank(scan, e, a, fb->u, fb->v, fb->r, T, B, H, fb->cache) == 0);
    else
        DSF_ASSERT(dsf_scan_stationary(scan, e, a, T, B, H) == 0);
}

void lstm_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                         const lstm_weights *w, const float *x, const lstm_cache *cache, float *e,
                         gru_backward_work *work, lstm_grads *g, float *dx, int T, int B, int I,
                         int H) {
    const size_t BH = (size_t)B * H, TBH = (size_t)T * BH, BG = 4 * BH;
    float *dc = work->gh;
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        lstm_backward_bptt(w, cache, e, dc, work->gi, work->carry, T, B, H);
    } else {
        const int diag = m == DSF_METHOD_DSF && fb->kind == DSF_FEEDBACK_DIAG;
        float *ah = work->avar, *ac = work->avar ? work->avar + TBH : NULL;
        if (diag) {  // slice t: step t+1's exact diagonals (h→h, and c→c = f)
            DSF_ASSERT(ah);
            const long rows = (long)(T - 1) * B;
            lstm_jacobian_diag(w, cache->c + BH, cache->c + 2 * BH, cache->gates + BG, ah,
                               (int)rows, H);
            for (long r = 0; r < rows; r++)
                memcpy(ac + r * H, cache->gates + BG + r * 4 * H + H, sizeof(float) * H);
            DSF_ASSERT(dsf_scan_varying(scan, e, ah, T, B, H) == 0);
        } else if (m == DSF_METHOD_DSF) {
            scan_stationary_or_lowrank(scan, fb, fb->a, e, T, B, H);
        }
        lstm_c_local(e, cache->gates, cache->c + BH, dc, T * B, H);
        if (diag)
            DSF_ASSERT(dsf_scan_varying(scan, dc, ac, T, B, H) == 0);
        else if (m == DSF_METHOD_DSF)
            DSF_ASSERT(dsf_scan_stationary(scan, dc, fb->a + H, T, B, H) == 0);
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
    const size_t BH = (size_t)B * H;
    double t0 = dsf_prof_begin();
    if (m == DSF_METHOD_BPTT) {
        elman_backward_bptt(w, cache, e, work->gi, work->carry, T, B, H);
    } else {
        if (m == DSF_METHOD_DSF && fb->kind == DSF_FEEDBACK_DIAG) {
            DSF_ASSERT(work->avar);
            elman_jacobian_diag(w, cache->h + 2 * BH, work->avar, (T - 1) * B, H);
            DSF_ASSERT(dsf_scan_varying(scan, e, work->avar, T, B, H) == 0);
        } else if (m == DSF_METHOD_DSF) {
            scan_stationary_or_lowrank(scan, fb, fb->a, e, T, B, H);
        }
        elman_backward_local(e, cache->h + BH, work->gi, T * B, H);
    }
    dsf_prof_end(DSF_PROF_STATE_GRAD, t0);
    t0 = dsf_prof_begin();
    elman_backward_params(w, x, cache, work->gi, g, dx, T, B, I, H);
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}
