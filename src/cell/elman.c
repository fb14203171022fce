// elman.c: see elman.h.
#include "elman.h"

#include <math.h>
#include <string.h>

#include "cell/params.h"
#include "core/common.h"
#include "core/fastmath.h"
#include "core/gemm.h"
#include "core/panel.h"
#include "core/stages.h"

size_t elman_pack_floats(int H) { return dsf_panel_floats(H, H); }

// h = tanh(pre) for units [k0, k1) of one row, in place.
DSF_CLONES static void elman_tanh_row(float *h, int k0, int k1) {
#pragma omp simd
    for (int k = k0; k < k1; k++) h[k] = dsf_tanhf(h[k]);
}

void elman_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch,
                   int T, int B, int I, int H) {
    const size_t BH = (size_t)B * H;
    // scratch = x W_ihᵀ + b_ih + b_hh (x NULL: the caller has put it there).
    if (x) cell_input_proj_steps(H, w->w_ih, w->b_ih, w->b_hh, x, T, B, cache->rows, I, scratch);
    if (!cache->wpack) {
        for (int t = 0; t < T; t++) {
            const int n = cell_rows(cache, t, B);  // rows [n, B): skipped (cell.h)
            float *hn = cache->h + (t + 1) * BH;
            memcpy(hn, scratch + t * BH, sizeof(float) * (size_t)n * H);
            if (n > 0) dsf_sgemm(0, 1, n, H, H, 1.0f, cache->h + t * BH, H, w->w_hh, H, 1.0f, hn, H);
            elman_tanh_row(hn, 0, n * H);
            cell_zero_rows(hn, n, B, H, 0, H);
        }
        return;
    }
    // Packed (gru.c's scheme): W_hhᵀ in panels; step t is a stage, its task j the
    // units of panel j.
    const int np = dsf_panel_count(H);
    dsf_stages st;
    dsf_stages_init(&st, T, np);
#pragma omp parallel num_threads(dsf_step_threads(B, H))
    {
        dsf_panel_pack(w->w_hh, H, 1, H, H, cache->wpack);
        for (long task; (task = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st)) {
            const int t = (int)(task / np), j = (int)(task % np);
            int u0, u1;
            dsf_panel_columns(j, H, &u0, &u1);
            const int n = cell_rows(cache, t, B);
            float *hn = cache->h + (t + 1) * BH;
            for (int b = 0; b < n; b++)
                memcpy(hn + (size_t)b * H + u0, scratch + t * BH + (size_t)b * H + u0,
                       sizeof(float) * (u1 - u0));
            if (n > 0) dsf_panel_gemm(n, H, cache->h + t * BH, H, cache->wpack, j, j + 1, H, hn, H);
            for (int b = 0; b < n; b++) elman_tanh_row(hn + (size_t)b * H, u0, u1);
            cell_zero_rows(hn, n, B, H, u0, u1);
        }
    }
}

void elman_backward_local(const float *delta, const float *h, float *ga, int n, int H) {
    const size_t m = (size_t)n * H;
#pragma omp parallel for simd schedule(static) if (m > 65536)
    for (size_t k = 0; k < m; k++) ga[k] = delta[k] * (1.0f - h[k] * h[k]);
}

void elman_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *ga,
                         float *carry, int T, int B, int H) {
    const size_t BH = (size_t)B * H;
    if (!cache->wpack) {
        for (int t = T - 1; t >= 0; t--) {
            // Rows [n, B): skipped padding (cell.h), δ = e = 0; ga and carry written 0.
            const int n = cell_rows(cache, t, B);
            float *d = e + t * BH;
            if (t < T - 1)
                for (size_t k = 0; k < (size_t)n * H; k++) d[k] += carry[k];
            elman_backward_local(d, cache->h + (t + 1) * BH, ga + t * BH, n, H);
            cell_zero_rows(ga + t * BH, n, B, H, 0, H);
            if (t > 0) {
                if (n > 0) dsf_sgemm(0, 0, n, H, H, 1.0f, ga + t * BH, H, w->w_hh, H, 0.0f, carry, H);
                cell_zero_rows(carry, n, B, H, 0, H);
            }
        }
        return;
    }
    // Packed: carry (B,H) = ga_{t+1} W_hh; stage s is step t = T−1−s, its task j
    // the units of panel j (the carry reads all of ga_{t+1}: the stage before).
    const int np = dsf_panel_count(H);
    dsf_stages st;
    dsf_stages_init(&st, T, np);
#pragma omp parallel num_threads(dsf_step_threads(B, H))
    {
        dsf_panel_pack(w->w_hh, H, 0, H, H, cache->wpack);
        for (long task; (task = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st)) {
            const int t = T - 1 - (int)(task / np), j = (int)(task % np);
            int u0, u1;
            dsf_panel_columns(j, H, &u0, &u1);
            // Rows [0, n) run; ga_{t+1} is 0 past step t+1's own n1 <= n.
            const int n = cell_rows(cache, t, B), n1 = t < T - 1 ? cell_rows(cache, t + 1, B) : 0;
            float *d = e + t * BH;
            if (t < T - 1) {
                for (int b = 0; b < n1; b++)
                    memset(carry + (size_t)b * H + u0, 0, sizeof(float) * (u1 - u0));
                if (n1 > 0)
                    dsf_panel_gemm(n1, H, ga + (t + 1) * BH, H, cache->wpack, j, j + 1, H, carry, H);
            }
            for (int b = 0; b < n; b++) {
                const size_t r = (size_t)b * H;
                const float *h = cache->h + (t + 1) * BH + r;
                float *db = d + r, *gb = ga + t * BH + r;
                for (int k = u0; k < u1; k++) {
                    if (b < n1) db[k] += carry[r + k];
                    gb[k] = db[k] * (1.0f - h[k] * h[k]);
                }
            }
            cell_zero_rows(ga + t * BH, n, B, H, u0, u1);
        }
    }
}

void elman_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                           const float *ga, cell_grads *g, float *dx, int T, int B, int I,
                           int H) {
    cell_backward_params(H, w->w_ih, x, cache->h, ga, ga, g->w_ih, g->w_hh, g->b_ih, g->b_hh, dx,
                         T * B, I, H);
}

void elman_jacobian_diag(const cell_weights *w, const float *h, float *diag, int n, int H) {
    for (int row = 0; row < n; row++)
        for (int i = 0; i < H; i++) {
            const float hi = h[(size_t)row * H + i];
            diag[(size_t)row * H + i] = (1.0f - hi * hi) * w->w_hh[(size_t)i * H + i];
        }
}
