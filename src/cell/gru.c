// gru.c: see gru.h.
#include "gru.h"

#include <math.h>
#include <string.h>

#include "cell/params.h"
#include "core/common.h"
#include "core/gemm.h"

#include "core/fastmath.h"
#include "core/panel.h"
#include "core/stages.h"

size_t gru_pack_floats(int H) { return dsf_panel_floats(3 * H, H); }

// The gate nonlinearities of units [i0, i1) of one row: g (3H) holds the
// recurrent pre-activations [W_hr h', W_hz h', W_hn h'] + b_hh on entry and
// [r, z, n] on return; gx (3H) the input projections, hp (H) the previous state.
DSF_CLONES static void gru_forward_row(float *g, const float *gx, const float *hp, float *q, float *h,
                               int i0, int i1, int H) {
    float *restrict gr = g, *restrict gz = g + H, *restrict gn = g + 2 * H;
    const float *restrict xr = gx, *restrict xz = gx + H, *restrict xn = gx + 2 * H;
#pragma omp simd
    for (int i = i0; i < i1; i++) {
        float r = dsf_sigmoidf(xr[i] + gr[i]);
        float z = dsf_sigmoidf(xz[i] + gz[i]);
        float qi = gn[i];
        float n = dsf_tanhf(xn[i] + r * qi);
        gr[i] = r;
        gz[i] = z;
        gn[i] = n;
        q[i] = qi;
        h[i] = (1.0f - z) * n + z * hp[i];
    }
}

void gru_forward(const cell_weights *w, const float *x, cell_cache *cache, float *scratch, int T,
                 int B, int I, int H) {
    const int G = 3 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    // Input projections of all T·B rows at once: scratch = x W_ihᵀ + b_ih (x NULL:
    // the caller has put them there).
    if (x) cell_input_proj_steps(G, w->w_ih, w->b_ih, NULL, x, T, B, cache->rows, I, scratch);

    if (!cache->wpack) {
        for (int t = 0; t < T; t++) {
            const int n = cell_rows(cache, t, B);
            const float *hp = cache->h + t * BH, *gx = scratch + t * BG;
            float *gates = cache->gates + t * BG;
            // Recurrent part: gates (n,3H) = h' W_hhᵀ + b_hh (r, z and q = the n block).
            for (int b = 0; b < n; b++) memcpy(gates + (size_t)b * G, w->b_hh, sizeof(float) * G);
            if (n > 0) dsf_sgemm(0, 1, n, G, H, 1.0f, hp, H, w->w_hh, H, 1.0f, gates, G);
#pragma omp parallel for schedule(static) if (n * H > 4096)
            for (int b = 0; b < n; b++)
                gru_forward_row(gates + (size_t)b * G, gx + (size_t)b * G, hp + (size_t)b * H,
                            cache->q + t * BH + (size_t)b * H,
                            cache->h + (t + 1) * BH + (size_t)b * H, 0, H, H);
            cell_zero_rows(gates, n, B, G, 0, G);
            cell_zero_rows(cache->q + t * BH, n, B, H, 0, H);
            cell_zero_rows(cache->h + (t + 1) * BH, n, B, H, 0, H);
        }
        return;
    }
    // Packed: gate k's W_hkᵀ (H,H) is the k-th of three packed (H,H) matrices. Step
    // t is a stage; its task j the units of panel j, all three gates of them.
    const size_t pf = dsf_panel_floats(H, H);
    const int np = dsf_panel_count(H);
    float *P = cache->wpack;
    dsf_stages st;
    dsf_stages_init(&st, T, np);
#pragma omp parallel num_threads(dsf_step_threads(B, H))
    {
        for (int k = 0; k < 3; k++)
            dsf_panel_pack(w->w_hh + (size_t)k * H * H, H, 1, H, H, P + k * pf);
        for (long task; (task = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st)) {
            const int t = (int)(task / np), j = (int)(task % np);
            int u0, u1;
            dsf_panel_columns(j, H, &u0, &u1);
            const int n = cell_rows(cache, t, B);
            const float *hp = cache->h + t * BH, *gx = scratch + t * BG;
            float *gates = cache->gates + t * BG;
            for (int b = 0; b < n; b++)
                for (int k = 0; k < 3; k++)
                    memcpy(gates + (size_t)b * G + k * H + u0, w->b_hh + k * H + u0,
                           sizeof(float) * (u1 - u0));
            for (int k = 0; k < 3 && n > 0; k++)
                dsf_panel_gemm(n, H, hp, H, P + k * pf, j, j + 1, H, gates + k * H, G);
            for (int b = 0; b < n; b++)
                gru_forward_row(gates + (size_t)b * G, gx + (size_t)b * G, hp + (size_t)b * H,
                            cache->q + t * BH + (size_t)b * H,
                            cache->h + (t + 1) * BH + (size_t)b * H, u0, u1, H);
            for (int k = 0; k < 3; k++) cell_zero_rows(gates + k * H, n, B, G, u0, u1);
            cell_zero_rows(cache->q + t * BH, n, B, H, u0, u1);
            cell_zero_rows(cache->h + (t + 1) * BH, n, B, H, u0, u1);
        }
    }
}

// The local backward of units [i0, i1) of one row (gru.h, gru_backward_local).
DSF_CLONES static void gru_local_row(const float *d, const float *hp, const float *g, const float *qr,
                             float *gi, float *gh, int i0, int i1, int H) {
    const float *restrict r = g, *restrict z = g + H, *restrict nn = g + 2 * H;
    float *restrict ir = gi, *restrict iz = gi + H, *restrict in = gi + 2 * H;
    float *restrict hr = gh, *restrict hz = gh + H, *restrict hn = gh + 2 * H;
#pragma omp simd
    for (int i = i0; i < i1; i++) {
        float dn = d[i] * (1.0f - z[i]);
        float dz = d[i] * (hp[i] - nn[i]);
        float an = dn * (1.0f - nn[i] * nn[i]);
        float az = dz * z[i] * (1.0f - z[i]);
        float ar = an * qr[i] * r[i] * (1.0f - r[i]);
        ir[i] = hr[i] = ar;
        iz[i] = hz[i] = az;
        in[i] = an;
        hn[i] = an * r[i];
    }
}

void gru_backward_local(const float *delta, const float *h_prev, const float *gates,
                        const float *q, float *gi, float *gh, int n, int H) {
    const int G = 3 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++)
        gru_local_row(delta + (size_t)row * H, h_prev + (size_t)row * H, gates + (size_t)row * G,
                  q + (size_t)row * H, gi + (size_t)row * G, gh + (size_t)row * G, 0, H, H);
}

void gru_backward_bptt(const cell_weights *w, const cell_cache *cache, float *e, float *gi,
                       float *gh, float *carry, int T, int B, int H) {
    const int G = 3 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    if (!cache->wpack) {
        for (int t = T - 1; t >= 0; t--) {
            // Rows [n, B) are skipped padding: their δ (= e) is 0, their gate
            // gradients are written 0, and so is their carry to step t − 1.
            const int n = cell_rows(cache, t, B);
            float *d = e + t * BH;
            if (t < T - 1)
                for (size_t k = 0; k < (size_t)n * H; k++) d[k] += carry[k];
            gru_backward_local(d, cache->h + t * BH, cache->gates + t * BG, cache->q + t * BH,
                               gi + t * BG, gh + t * BG, n, H);
            cell_zero_rows(gi + t * BG, n, B, G, 0, G);
            cell_zero_rows(gh + t * BG, n, B, G, 0, G);
            if (t > 0) {
                if (n > 0) gru_backward_jt(w, d, cache->gates + t * BG, gh + t * BG, carry, n, H);
                cell_zero_rows(carry, n, B, H, 0, H);
            }
        }
        return;
    }
    // Packed: carry (B,H) = δ ⊙ z + gh (B,3H) · W_hh (3H,H), W_hh packed as it is.
    // Stage s is step t = T−1−s; its task j, for the units of panel j, adds the
    // carry from step t+1 (which reads every unit of gh_{t+1}: the stage before)
    // to δ_t and then runs the local backward of step t.
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
            // Step t runs rows [0, n); step t+1's δ and gate gradients are 0 past its
            // own n1 <= n, so the carry is needed on rows [0, n1) only.
            const int n = cell_rows(cache, t, B);
            float *d = e + t * BH;
            if (t < T - 1) {
                const int n1 = cell_rows(cache, t + 1, B);
                const float *g1 = cache->gates + (t + 1) * BG, *d1 = d + BH;
                for (int b = 0; b < n1; b++) {
                    const float *z = g1 + (size_t)b * G + H, *db = d1 + (size_t)b * H;
                    float *c = carry + (size_t)b * H;
                    for (int i = u0; i < u1; i++) c[i] = db[i] * z[i];
                }
                if (n1 > 0) dsf_panel_gemm(n1, G, gh + (t + 1) * BG, G, P, j, j + 1, H, carry, H);
                for (int b = 0; b < n1; b++)
                    for (int i = u0; i < u1; i++) d[(size_t)b * H + i] += carry[(size_t)b * H + i];
            }
            for (int b = 0; b < n; b++)
                gru_local_row(d + (size_t)b * H, cache->h + t * BH + (size_t)b * H,
                          cache->gates + t * BG + (size_t)b * G, cache->q + t * BH + (size_t)b * H,
                          gi + t * BG + (size_t)b * G, gh + t * BG + (size_t)b * G, u0, u1, H);
            for (int k = 0; k < 3; k++) {
                cell_zero_rows(gi + t * BG + k * H, n, B, G, u0, u1);
                cell_zero_rows(gh + t * BG + k * H, n, B, G, u0, u1);
            }
        }
    }
}

void gru_backward_jt(const cell_weights *w, const float *delta, const float *gates,
                     const float *gh, float *carry, int B, int H) {
    const int G = 3 * H;
    for (int b = 0; b < B; b++) {
        const float *z = gates + (size_t)b * G + H;
        const float *d = delta + (size_t)b * H;
        float *c = carry + (size_t)b * H;
        for (int i = 0; i < H; i++) c[i] = d[i] * z[i];
    }
    dsf_sgemm(0, 0, B, H, G, 1.0f, gh, G, w->w_hh, H, 1.0f, carry, H);
}

void gru_backward_params(const cell_weights *w, const float *x, const cell_cache *cache,
                         const float *gi, const float *gh, cell_grads *g, float *dx, int T, int B,
                         int I, int H) {
    cell_backward_params(3 * H, w->w_ih, x, cache->h, gi, gh, g->w_ih, g->w_hh, g->b_ih, g->b_hh,
                         dx, T * B, I, H);
}

void gru_jacobian_diag(const cell_weights *w, const float *h_prev, const float *gates,
                       const float *q, float *diag, int B, int H) {
    const int G = 3 * H;
    for (int b = 0; b < B; b++) {
        const float *r = gates + (size_t)b * G, *z = r + H, *n = z + H;
        const float *hp = h_prev + (size_t)b * H, *qb = q + (size_t)b * H;
        float *d = diag + (size_t)b * H;
        for (int i = 0; i < H; i++) {
            float whr = w->w_hh[(size_t)i * H + i];
            float whz = w->w_hh[(size_t)(H + i) * H + i];
            float whn = w->w_hh[(size_t)(2 * H + i) * H + i];
            d[i] = z[i] + (1.0f - z[i]) * (1.0f - n[i] * n[i]) *
                              (r[i] * whn + qb[i] * r[i] * (1.0f - r[i]) * whr) +
                   (hp[i] - n[i]) * z[i] * (1.0f - z[i]) * whz;
        }
    }
}
