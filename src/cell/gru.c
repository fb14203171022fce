// gru.c: see gru.h.
#include "gru.h"

#include <math.h>
#include <string.h>

#include "core/gemm.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void gru_forward(const gru_weights *w, const float *x, gru_cache *cache, float *scratch, int T,
                 int B, int I, int H) {
    const int G = 3 * H;
    const size_t TB = (size_t)T * B;
    // Input projections of all T·B rows at once: scratch = x W_ihᵀ + b_ih.
    for (size_t row = 0; row < TB; row++) memcpy(scratch + row * G, w->b_ih, sizeof(float) * G);
    dsf_sgemm(0, 1, (int)TB, G, I, 1.0f, x, I, w->w_ih, I, 1.0f, scratch, G);

    for (int t = 0; t < T; t++) {
        const float *hp = cache->h + (size_t)t * B * H;
        float *hn = cache->h + (size_t)(t + 1) * B * H;
        float *gates = cache->gates + (size_t)t * B * G;
        float *q = cache->q + (size_t)t * B * H;
        const float *gx = scratch + (size_t)t * B * G;
        // Recurrent part: gates (B,3H) = h' W_hhᵀ + b_hh (r, z and q = the n block).
        for (int b = 0; b < B; b++) memcpy(gates + (size_t)b * G, w->b_hh, sizeof(float) * G);
        dsf_sgemm(0, 1, B, G, H, 1.0f, hp, H, w->w_hh, H, 1.0f, gates, G);
#pragma omp parallel for schedule(static) if (B * H > 4096)
        for (int b = 0; b < B; b++) {
            float *gr = gates + (size_t)b * G, *gz = gr + H, *gn = gz + H;
            const float *xr = gx + (size_t)b * G, *xz = xr + H, *xn = xz + H;
            const float *hb = hp + (size_t)b * H;
            float *qb = q + (size_t)b * H, *hb_out = hn + (size_t)b * H;
            for (int i = 0; i < H; i++) {
                float r = sigmoidf(xr[i] + gr[i]);
                float z = sigmoidf(xz[i] + gz[i]);
                float qi = gn[i];
                float n = tanhf(xn[i] + r * qi);
                gr[i] = r;
                gz[i] = z;
                gn[i] = n;
                qb[i] = qi;
                hb_out[i] = (1.0f - z) * n + z * hb[i];
            }
        }
    }
}

void gru_backward_local(const float *delta, const float *h_prev, const float *gates,
                        const float *q, float *gi, float *gh, int n, int H) {
    const int G = 3 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++) {
        const float *d = delta + (size_t)row * H, *hp = h_prev + (size_t)row * H;
        const float *r = gates + (size_t)row * G, *z = r + H, *nn = z + H;
        const float *qr = q + (size_t)row * H;
        float *ir = gi + (size_t)row * G, *iz = ir + H, *in = iz + H;
        float *hr = gh + (size_t)row * G, *hz = hr + H, *hn = hz + H;
        for (int i = 0; i < H; i++) {
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
}

void gru_backward_jt(const gru_weights *w, const float *delta, const float *gates,
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

// dst[j] += Σ_rows src[row][j] for src (n,m); parallel over columns.
static void add_colsum(float *dst, const float *src, size_t n, int m) {
#pragma omp parallel for schedule(static) if (n * (size_t)m > 65536)
    for (int j0 = 0; j0 < m; j0 += 64) {
        int j1 = j0 + 64 < m ? j0 + 64 : m;
        double acc[64] = {0};
        for (size_t row = 0; row < n; row++)
            for (int j = j0; j < j1; j++) acc[j - j0] += src[row * m + j];
        for (int j = j0; j < j1; j++) dst[j] += (float)acc[j - j0];
    }
}

void gru_backward_params(const gru_weights *w, const float *x, const gru_cache *cache,
                         const float *gi, const float *gh, gru_grads *g, float *dx, int T, int B,
                         int I, int H) {
    const int G = 3 * H;
    const int TB = T * B;
    dsf_sgemm(1, 0, G, I, TB, 1.0f, gi, G, x, I, 1.0f, g->w_ih, I);          // Σ gi xᵀ
    dsf_sgemm(1, 0, G, H, TB, 1.0f, gh, G, cache->h, H, 1.0f, g->w_hh, H);   // Σ gh h'ᵀ
    add_colsum(g->b_ih, gi, (size_t)TB, G);
    add_colsum(g->b_hh, gh, (size_t)TB, G);
    if (dx) dsf_sgemm(0, 0, TB, I, G, 1.0f, gi, G, w->w_ih, I, 0.0f, dx, I);  // gi W_ih
}

void gru_jacobian_diag(const gru_weights *w, const float *h_prev, const float *gates,
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
