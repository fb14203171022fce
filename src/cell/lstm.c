// lstm.c: see lstm.h.
#include "lstm.h"

#include <math.h>
#include <string.h>

#include "cell/params.h"
#include "core/common.h"
#include "core/fastmath.h"
#include "core/gemm.h"
#include "core/panel.h"
#include "core/stages.h"

size_t lstm_pack_floats(int H) { return dsf_panel_floats(4 * H, H); }

// The gate nonlinearities and the new state of units [k0, k1) of one row: g (4H)
// holds the pre-activations on entry and [i, f, g, o] on return; cp (H) the
// previous cell state, c and h (H) the new ones.
DSF_CLONES static void lstm_forward_row(float *g, const float *cp, float *c, float *h, int k0, int k1,
                               int H) {
    float *restrict gi = g, *restrict gf = g + H, *restrict gg = g + 2 * H, *restrict go = g + 3 * H;
#pragma omp simd
    for (int k = k0; k < k1; k++) {
        const float i = dsf_sigmoidf(gi[k]), f = dsf_sigmoidf(gf[k]), gt = dsf_tanhf(gg[k]),
                    o = dsf_sigmoidf(go[k]);
        const float cn = f * cp[k] + i * gt;
        gi[k] = i, gf[k] = f, gg[k] = gt, go[k] = o;
        c[k] = cn;
        h[k] = o * dsf_tanhf(cn);
    }
}

void lstm_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch, int T,
                  int B, int I, int H) {
    const int G = 4 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    // Input projections of all rows at once, both biases folded in: scratch = x W_ihᵀ
    // + b_ih + b_hh (x NULL: the caller has put them there).
    if (x) cell_input_proj_steps(G, w->w_ih, w->b_ih, w->b_hh, x, T, B, cache->rows, I, scratch);
    if (!cache->wpack) {
        for (int t = 0; t < T; t++) {
            const int n = cell_rows(cache, t, B);  // rows [n, B): skipped (cell.h)
            const float *hp = cache->h + t * BH, *cp = cache->c + t * BH;
            float *gates = cache->gates + t * BG;
            memcpy(gates, scratch + t * BG, sizeof(float) * (size_t)n * G);
            if (n > 0) dsf_sgemm(0, 1, n, G, H, 1.0f, hp, H, w->w_hh, H, 1.0f, gates, G);  // + h' W_hhᵀ
#pragma omp parallel for schedule(static) if (n * H > 4096)
            for (int b = 0; b < n; b++)
                lstm_forward_row(gates + (size_t)b * G, cp + (size_t)b * H,
                            cache->c + (t + 1) * BH + (size_t)b * H,
                            cache->h + (t + 1) * BH + (size_t)b * H, 0, H, H);
            cell_zero_rows(gates, n, B, G, 0, G);
            cell_zero_rows(cache->c + (t + 1) * BH, n, B, H, 0, H);
            cell_zero_rows(cache->h + (t + 1) * BH, n, B, H, 0, H);
        }
        return;
    }
    // Packed (gru.c's scheme): gate k's W_hkᵀ (H,H) is the k-th of four packed
    // (H,H) matrices. Step t is a stage; its task j the units of panel j, all four
    // gates of them.
    const size_t pf = dsf_panel_floats(H, H);
    const int np = dsf_panel_count(H);
    float *P = cache->wpack;
    dsf_stages st;
    dsf_stages_init(&st, T, np);
#pragma omp parallel num_threads(dsf_step_threads(B, H))
    {
        for (int k = 0; k < 4; k++)
            dsf_panel_pack(w->w_hh + (size_t)k * H * H, H, 1, H, H, P + k * pf);
        for (long task; (task = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st)) {
            const int t = (int)(task / np), j = (int)(task % np);
            int u0, u1;
            dsf_panel_columns(j, H, &u0, &u1);
            const int n = cell_rows(cache, t, B);
            const float *hp = cache->h + t * BH, *cp = cache->c + t * BH, *gx = scratch + t * BG;
            float *gates = cache->gates + t * BG;
            for (int b = 0; b < n; b++)
                for (int k = 0; k < 4; k++)
                    memcpy(gates + (size_t)b * G + k * H + u0, gx + (size_t)b * G + k * H + u0,
                           sizeof(float) * (u1 - u0));
            for (int k = 0; k < 4 && n > 0; k++)
                dsf_panel_gemm(n, H, hp, H, P + k * pf, j, j + 1, H, gates + k * H, G);
            for (int b = 0; b < n; b++)
                lstm_forward_row(gates + (size_t)b * G, cp + (size_t)b * H,
                            cache->c + (t + 1) * BH + (size_t)b * H,
                            cache->h + (t + 1) * BH + (size_t)b * H, u0, u1, H);
            for (int k = 0; k < 4; k++) cell_zero_rows(gates + k * H, n, B, G, u0, u1);
            cell_zero_rows(cache->c + (t + 1) * BH, n, B, H, u0, u1);
            cell_zero_rows(cache->h + (t + 1) * BH, n, B, H, u0, u1);
        }
    }
}

// ĉ of units [k0, k1) of one row (lstm_c_local).
DSF_CLONES static void lstm_c_local_row(const float *d, const float *o, const float *c, float *out, int k0,
                               int k1) {
#pragma omp simd
    for (int k = k0; k < k1; k++) {
        const float tc = dsf_tanhf(c[k]);
        out[k] = d[k] * o[k] * (1.0f - tc * tc);
    }
}

void lstm_c_local(const float *dh, const float *gates, const float *c, float *chat, int n, int H) {
    const int G = 4 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++)
        lstm_c_local_row(dh + (size_t)row * H, gates + (size_t)row * G + 3 * H, c + (size_t)row * H,
                    chat + (size_t)row * H, 0, H);
}

// The gate gradients of units [k0, k1) of one row (lstm_backward_local).
DSF_CLONES static void lstm_local_row(const float *d, const float *dcr, const float *cp, const float *cr,
                             const float *g, float *a, int k0, int k1, int H) {
    const float *restrict gi = g, *restrict gf = g + H, *restrict gg = g + 2 * H,
                          *restrict go = g + 3 * H;
    float *restrict ai = a, *restrict af = a + H, *restrict ag = a + 2 * H, *restrict ao = a + 3 * H;
#pragma omp simd
    for (int k = k0; k < k1; k++) {
        const float i = gi[k], f = gf[k], gt = gg[k], o = go[k];
        ao[k] = d[k] * dsf_tanhf(cr[k]) * o * (1.0f - o);
        ai[k] = dcr[k] * gt * i * (1.0f - i);
        af[k] = dcr[k] * cp[k] * f * (1.0f - f);
        ag[k] = dcr[k] * i * (1.0f - gt * gt);
    }
}

void lstm_backward_local(const float *dh, const float *dc, const float *c_prev, const float *c,
                         const float *gates, float *ga, int n, int H) {
    const int G = 4 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++)
        lstm_local_row(dh + (size_t)row * H, dc + (size_t)row * H, c_prev + (size_t)row * H,
                  c + (size_t)row * H, gates + (size_t)row * G, ga + (size_t)row * G, 0, H, H);
}

void lstm_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *dc_work,
                        const float *dc_end, float *ga, float *carry, int T, int B, int H) {
    const int G = 4 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    if (!cache->wpack) {
        for (int t = T - 1; t >= 0; t--) {
            // Rows [n, B) are skipped padding (cell.h): δh = e = 0 there, and δc,
            // the gate gradients and the carry to step t − 1 are written 0.
            const int n = cell_rows(cache, t, B);
            const size_t nH = (size_t)n * H;
            float *dh = e + t * BH, *dc = dc_work + t * BH;
            const float *gates = cache->gates + t * BG, *c = cache->c + (t + 1) * BH;
            if (t < T - 1)
                for (size_t k = 0; k < nH; k++) dh[k] += carry[k];  // ga_{t+1} W_hh
            lstm_c_local(dh, gates, c, dc, n, H);
            if (dc_end)  // the rows that end at this step
                for (size_t k = (size_t)cell_rows_ending(cache, t, T, B) * H; k < nH; k++)
                    dc[k] += dc_end[k];
            if (t < T - 1) {  // + f_{t+1} ⊙ δc_{t+1}
                const float *dcn = dc_work + (t + 1) * BH, *fn = cache->gates + (t + 1) * BG + H;
                for (int b = 0; b < n; b++)
                    for (int k = 0; k < H; k++)
                        dc[(size_t)b * H + k] += fn[(size_t)b * G + k] * dcn[(size_t)b * H + k];
            }
            lstm_backward_local(dh, dc, cache->c + t * BH, c, gates, ga + t * BG, n, H);
            cell_zero_rows(dc, n, B, H, 0, H);
            cell_zero_rows(ga + t * BG, n, B, G, 0, G);
            if (t > 0) {
                if (n > 0) dsf_sgemm(0, 0, n, H, G, 1.0f, ga + t * BG, G, w->w_hh, H, 0.0f, carry, H);
                cell_zero_rows(carry, n, B, H, 0, H);
            }
        }
        return;
    }
    // Packed: carry (B,H) = ga_{t+1} (B,4H) · W_hh (4H,H), W_hh packed as it is.
    // Stage s is step t = T−1−s; its task j, for the units of panel j, adds the
    // carry (which reads every unit of ga_{t+1}: the stage before) to δh_t, then
    // δc_t = ĉ_t + f_{t+1} ⊙ δc_{t+1} and the gate gradients of step t.
    const int np = dsf_panel_count(H);
    float *P = cache->wpack;
    dsf_stages st;
    dsf_stages_init(&st, T, np);
#pragma omp parallel num_threads(dsf_step_threads(B, H))
    {
        dsf_panel_pack(w->w_hh, H, 0, G, H, P);
        for (long task; (task = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st)) {
            const int t = T - 1 - (int)(task / np), j = (int)(task % np);
            int u0, u1;
            dsf_panel_columns(j, H, &u0, &u1);
            // Rows [0, n) run; step t+1's gate gradients are 0 past its n1 <= n.
            const int n = cell_rows(cache, t, B);
            float *dh = e + t * BH, *dc = dc_work + t * BH;
            const float *gates = cache->gates + t * BG, *c = cache->c + (t + 1) * BH;
            if (t < T - 1) {
                const int n1 = cell_rows(cache, t + 1, B);
                for (int b = 0; b < n1; b++)
                    memset(carry + (size_t)b * H + u0, 0, sizeof(float) * (u1 - u0));
                if (n1 > 0) dsf_panel_gemm(n1, G, ga + (t + 1) * BG, G, P, j, j + 1, H, carry, H);
                for (int b = 0; b < n1; b++)
                    for (int k = u0; k < u1; k++) dh[(size_t)b * H + k] += carry[(size_t)b * H + k];
            }
            cell_zero_rows(dc, n, B, H, u0, u1);
            for (int k = 0; k < 4; k++) cell_zero_rows(ga + t * BG + k * H, n, B, G, u0, u1);
            const int ending = cell_rows_ending(cache, t, T, B);
            for (int b = 0; b < n; b++) {
                const size_t r = (size_t)b * H, rg = (size_t)b * G;
                lstm_c_local_row(dh + r, gates + rg + 3 * H, c + r, dc + r, u0, u1);
                if (b >= ending && dc_end)
                    for (int k = u0; k < u1; k++) dc[r + k] += dc_end[r + k];
                if (t < T - 1) {
                    const float *dcn = dc_work + (t + 1) * BH + r;
                    const float *fn = cache->gates + (t + 1) * BG + rg + H;
                    for (int k = u0; k < u1; k++) dc[r + k] += fn[k] * dcn[k];
                }
                lstm_local_row(dh + r, dc + r, cache->c + t * BH + r, c + r, gates + rg,
                          ga + t * BG + rg, u0, u1, H);
            }
        }
    }
}

void lstm_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                          const float *ga, cell_grads *g, float *dx, int T, int B, int I, int H) {
    cell_backward_params(4 * H, w->w_ih, x, cache->h, ga, ga, g->w_ih, g->w_hh, g->b_ih, g->b_hh,
                         dx, T * B, I, H);
}

void lstm_jacobian_diag(const cell_weights *w, const float *c_prev, const float *c,
                        const float *gates, float *diag, int n, int H) {
    const int G = 4 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 65536)
    for (int row = 0; row < n; row++) {
        const float *gi = gates + (size_t)row * G, *gf = gi + H, *gg = gf + H, *go = gg + H;
        const float *cp = c_prev + (size_t)row * H, *cr = c + (size_t)row * H;
        float *d = diag + (size_t)row * H;
        for (int k = 0; k < H; k++) {
            const float i = gi[k], f = gf[k], g = gg[k], o = go[k], tc = tanhf(cr[k]);
            const float whi = w->w_hh[(size_t)k * H + k], whf = w->w_hh[(size_t)(H + k) * H + k];
            const float whg = w->w_hh[(size_t)(2 * H + k) * H + k];
            const float who = w->w_hh[(size_t)(3 * H + k) * H + k];
            const float dc = cp[k] * f * (1 - f) * whf + g * i * (1 - i) * whi + i * (1 - g * g) * whg;
            d[k] = o * (1 - o) * who * tc + o * (1 - tc * tc) * dc;
        }
    }
}
