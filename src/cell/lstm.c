// lstm.c: see lstm.h.
#include "lstm.h"

#include <math.h>
#include <string.h>

#include "cell/params.h"
#include "core/gemm.h"

static inline float sigmoidf(float x) { return 1.0f / (1.0f + expf(-x)); }

void lstm_forward(const lstm_weights *w, const float *x, lstm_cache *cache, float *scratch, int T,
                  int B, int I, int H) {
    const int G = 4 * H;
    const size_t TB = (size_t)T * B, BH = (size_t)B * H;
    // Input projections of all rows at once, both biases folded in: scratch = x W_ihᵀ + b_ih + b_hh.
    for (int j = 0; j < G; j++) scratch[j] = w->b_ih[j] + w->b_hh[j];
    for (size_t row = 1; row < TB; row++) memcpy(scratch + row * G, scratch, sizeof(float) * G);
    dsf_sgemm(0, 1, (int)TB, G, I, 1.0f, x, I, w->w_ih, I, 1.0f, scratch, G);
    for (int t = 0; t < T; t++) {
        const float *hp = cache->h + t * BH, *cp = cache->c + t * BH;
        float *hn = cache->h + (t + 1) * BH, *cn = cache->c + (t + 1) * BH;
        float *gates = cache->gates + (size_t)t * B * G;
        memcpy(gates, scratch + (size_t)t * B * G, sizeof(float) * B * G);
        dsf_sgemm(0, 1, B, G, H, 1.0f, hp, H, w->w_hh, H, 1.0f, gates, G);  // + h' W_hhᵀ
#pragma omp parallel for schedule(static) if (B * H > 4096)
        for (int b = 0; b < B; b++) {
            float *gi = gates + (size_t)b * G, *gf = gi + H, *gg = gf + H, *go = gg + H;
            const float *cb = cp + (size_t)b * H;
            float *hb = hn + (size_t)b * H, *cnb = cn + (size_t)b * H;
            for (int k = 0; k < H; k++) {
                const float i = sigmoidf(gi[k]), f = sigmoidf(gf[k]), g = tanhf(gg[k]),
                            o = sigmoidf(go[k]);
                const float c = f * cb[k] + i * g;
                gi[k] = i, gf[k] = f, gg[k] = g, go[k] = o;
                cnb[k] = c;
                hb[k] = o * tanhf(c);
            }
        }
    }
}

void lstm_c_local(const float *dh, const float *gates, const float *c, float *chat, int n, int H) {
    const int G = 4 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++) {
        const float *o = gates + (size_t)row * G + 3 * H, *cr = c + (size_t)row * H;
        const float *d = dh + (size_t)row * H;
        float *out = chat + (size_t)row * H;
        for (int k = 0; k < H; k++) {
            const float tc = tanhf(cr[k]);
            out[k] = d[k] * o[k] * (1.0f - tc * tc);
        }
    }
}

void lstm_backward_local(const float *dh, const float *dc, const float *c_prev, const float *c,
                         const float *gates, float *ga, int n, int H) {
    const int G = 4 * H;
#pragma omp parallel for schedule(static) if ((long)n * H > 4096)
    for (int row = 0; row < n; row++) {
        const float *gi = gates + (size_t)row * G, *gf = gi + H, *gg = gf + H, *go = gg + H;
        const float *d = dh + (size_t)row * H, *dcr = dc + (size_t)row * H;
        const float *cp = c_prev + (size_t)row * H, *cr = c + (size_t)row * H;
        float *ai = ga + (size_t)row * G, *af = ai + H, *ag = af + H, *ao = ag + H;
        for (int k = 0; k < H; k++) {
            const float i = gi[k], f = gf[k], g = gg[k], o = go[k];
            ao[k] = d[k] * tanhf(cr[k]) * o * (1.0f - o);
            ai[k] = dcr[k] * g * i * (1.0f - i);
            af[k] = dcr[k] * cp[k] * f * (1.0f - f);
            ag[k] = dcr[k] * i * (1.0f - g * g);
        }
    }
}

void lstm_backward_bptt(const lstm_weights *w, const lstm_cache *cache, float *e, float *dc_work,
                        float *ga, float *carry, int T, int B, int H) {
    const size_t BH = (size_t)B * H, BG = 4 * BH;
    for (int t = T - 1; t >= 0; t--) {
        float *dh = e + t * BH, *dc = dc_work + t * BH;
        const float *gates = cache->gates + t * BG, *c = cache->c + (t + 1) * BH;
        if (t < T - 1)
            for (size_t k = 0; k < BH; k++) dh[k] += carry[k];  // ga_{t+1} W_hh
        lstm_c_local(dh, gates, c, dc, B, H);
        if (t < T - 1) {  // + f_{t+1} ⊙ δc_{t+1}
            const float *dcn = dc_work + (t + 1) * BH, *fn = cache->gates + (t + 1) * BG + H;
            for (int b = 0; b < B; b++)
                for (int k = 0; k < H; k++)
                    dc[(size_t)b * H + k] += fn[(size_t)b * 4 * H + k] * dcn[(size_t)b * H + k];
        }
        lstm_backward_local(dh, dc, cache->c + t * BH, c, gates, ga + t * BG, B, H);
        if (t > 0) dsf_sgemm(0, 0, B, H, 4 * H, 1.0f, ga + t * BG, 4 * H, w->w_hh, H, 0.0f, carry, H);
    }
}

void lstm_backward_params(const lstm_weights *w, const float *x, const lstm_cache *cache,
                          const float *ga, lstm_grads *g, float *dx, int T, int B, int I, int H) {
    cell_backward_params(4 * H, w->w_ih, x, cache->h, ga, ga, g->w_ih, g->w_hh, g->b_ih, g->b_hh,
                         dx, T * B, I, H);
}

void lstm_jacobian_diag(const lstm_weights *w, const float *c_prev, const float *c,
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
