// layers.c: see layers.h.
#include "layers.h"

#include <math.h>

void layernorm_forward(const float *x, const float *gamma, const float *beta, float *y,
                       float *mean, float *rstd, int n, int D) {
#pragma omp parallel for schedule(static) if ((long)n * D > 65536)
    for (int r = 0; r < n; r++) {
        const float *xr = x + (size_t)r * D;
        float *yr = y + (size_t)r * D;
        double s = 0, ss = 0;
        for (int k = 0; k < D; k++) s += xr[k];
        const double mu = s / D;
        for (int k = 0; k < D; k++) ss += (xr[k] - mu) * (xr[k] - mu);
        const float m = (float)mu, rs = (float)(1.0 / sqrt(ss / D + DSF_LN_EPS));
        for (int k = 0; k < D; k++) yr[k] = (xr[k] - m) * rs * gamma[k] + beta[k];
        mean[r] = m;
        rstd[r] = rs;
    }
}

// dx = rstd (g − mean(g) − x̂ mean(g ⊙ x̂)) with g = dy ⊙ γ, x̂ the normalised row.
void layernorm_backward(const float *dy, const float *x, const float *mean, const float *rstd,
                        const float *gamma, float *dx, float *dgamma, float *dbeta, int n, int D) {
#pragma omp parallel for schedule(static) if ((long)n * D > 65536)
    for (int r = 0; r < n; r++) {
        const float *dr = dy + (size_t)r * D, *xr = x + (size_t)r * D;
        float *out = dx + (size_t)r * D;
        double sg = 0, sgx = 0;
        for (int k = 0; k < D; k++) {
            const double g = dr[k] * gamma[k], xh = (xr[k] - mean[r]) * rstd[r];
            sg += g;
            sgx += g * xh;
        }
        const float mg = (float)(sg / D), mgx = (float)(sgx / D);
        for (int k = 0; k < D; k++) {
            const float xh = (xr[k] - mean[r]) * rstd[r];
            out[k] = rstd[r] * (dr[k] * gamma[k] - mg - xh * mgx);
        }
    }
    // γ and β: column sums, rows in a fixed order.
#pragma omp parallel for schedule(static) if ((long)n * D > 65536)
    for (int k = 0; k < D; k++) {
        double sg = 0, sb = 0;
        for (int r = 0; r < n; r++) {
            const float d = dy[(size_t)r * D + k];
            sg += d * (x[(size_t)r * D + k] - mean[r]) * rstd[r];
            sb += d;
        }
        dgamma[k] += (float)sg;
        dbeta[k] += (float)sb;
    }
}

void gelu_forward(const float *x, float *y, size_t n) {
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < n; k++) y[k] = 0.5f * x[k] * (1.0f + erff(x[k] * 0.70710678118654752f));
}

void gelu_backward(const float *dy, const float *x, float *dx, size_t n) {
    const float inv_sqrt_2pi = 0.3989422804014327f;
#pragma omp parallel for schedule(static) if (n > 65536)
    for (size_t k = 0; k < n; k++) {
        const float v = x[k];
        const float cdf = 0.5f * (1.0f + erff(v * 0.70710678118654752f));
        dx[k] = dy[k] * (cdf + v * inv_sqrt_2pi * expf(-0.5f * v * v));
    }
}

void dropout_forward_streams(const float *x, float *y, float *mask, const dsf_stream_layout *sl,
                             int64_t W, float p, dsf_rng *rng) {
    const float keep = 1.0f / (1.0f - p);
    const uint64_t key = dsf_rng_u64(rng);
    const int64_t rows = sl->T * sl->B;
#pragma omp parallel for schedule(static) if (rows * W > 65536)
    for (int64_t r = 0; r < rows; r++) {
        const uint64_t k0 = dsf_dropout_row(r, sl->B, sl->B_all, sl->first, sl->stride, W);
        const size_t o = (size_t)r * W;
        for (int64_t i = 0; i < W; i++) {
            mask[o + i] = dsf_dropout_uniform(key, k0 + i) < p ? 0.0f : keep;
            y[o + i] = x[o + i] * mask[o + i];
        }
    }
}

void dropout_forward(const float *x, float *y, float *mask, size_t n, float p, dsf_rng *rng) {
    const dsf_stream_layout one = {1, 1, 1, 0, 1};  // one row of n: index k is k
    dropout_forward_streams(x, y, mask, &one, (int64_t)n, p, rng);
}

void dropout_backward(const float *dy, const float *mask, float *dx, size_t n) {
    for (size_t k = 0; k < n; k++) dx[k] = dy[k] * mask[k];
}
