// elman.c: see elman.h.
#include "elman.h"

#include <math.h>
#include <string.h>

#include "cell/params.h"
#include "core/gemm.h"

void elman_forward(const elman_weights *w, const float *x, elman_cache *cache, float *scratch,
                   int T, int B, int I, int H) {
    const size_t TB = (size_t)T * B, BH = (size_t)B * H;
    for (int j = 0; j < H; j++) scratch[j] = w->b_ih[j] + w->b_hh[j];
    for (size_t row = 1; row < TB; row++) memcpy(scratch + row * H, scratch, sizeof(float) * H);
    dsf_sgemm(0, 1, (int)TB, H, I, 1.0f, x, I, w->w_ih, I, 1.0f, scratch, H);
    for (int t = 0; t < T; t++) {
        float *hn = cache->h + (t + 1) * BH;
        memcpy(hn, scratch + t * BH, sizeof(float) * BH);
        dsf_sgemm(0, 1, B, H, H, 1.0f, cache->h + t * BH, H, w->w_hh, H, 1.0f, hn, H);
        for (size_t k = 0; k < BH; k++) hn[k] = tanhf(hn[k]);
    }
}

void elman_backward_local(const float *delta, const float *h, float *ga, int n, int H) {
    const size_t m = (size_t)n * H;
#pragma omp parallel for schedule(static) if (m > 65536)
    for (size_t k = 0; k < m; k++) ga[k] = delta[k] * (1.0f - h[k] * h[k]);
}

void elman_backward_bptt(const elman_weights *w, const elman_cache *cache, float *e, float *ga,
                         float *carry, int T, int B, int H) {
    const size_t BH = (size_t)B * H;
    for (int t = T - 1; t >= 0; t--) {
        float *d = e + t * BH;
        if (t < T - 1)
            for (size_t k = 0; k < BH; k++) d[k] += carry[k];
        elman_backward_local(d, cache->h + (t + 1) * BH, ga + t * BH, B, H);
        if (t > 0) dsf_sgemm(0, 0, B, H, H, 1.0f, ga + t * BH, H, w->w_hh, H, 0.0f, carry, H);
    }
}

void elman_backward_params(const elman_weights *w, const float *x, const elman_cache *cache,
                           const float *ga, elman_grads *g, float *dx, int T, int B, int I,
                           int H) {
    cell_backward_params(H, w->w_ih, x, cache->h, ga, ga, g->w_ih, g->w_hh, g->b_ih, g->b_hh, dx,
                         T * B, I, H);
}

void elman_jacobian_diag(const elman_weights *w, const float *h, float *diag, int n, int H) {
    for (int row = 0; row < n; row++)
        for (int i = 0; i < H; i++) {
            const float hi = h[(size_t)row * H + i];
            diag[(size_t)row * H + i] = (1.0f - hi * hi) * w->w_hh[(size_t)i * H + i];
        }
}
