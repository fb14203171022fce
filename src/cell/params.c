// params.c: see params.h.
#include "params.h"

#include <stddef.h>
#include <string.h>

#include "core/gemm.h"

void cell_input_proj(int GH, const float *w_ih, const float *b1, const float *b2, const float *x,
                     int n, int I, float *out) {
    if (n < 1) return;
    for (int j = 0; j < GH; j++) out[j] = b2 ? b1[j] + b2[j] : b1[j];
    for (size_t row = 1; row < (size_t)n; row++) memcpy(out + row * GH, out, sizeof(float) * GH);
    dsf_sgemm(0, 1, n, GH, I, 1.0f, x, I, w_ih, I, 1.0f, out, GH);
}

void cell_backward_params(int GH, const float *w_ih, const float *x, const float *h_prev,
                          const float *gi, const float *gh, float *g_w_ih, float *g_w_hh,
                          float *g_b_ih, float *g_b_hh, float *dx, int n, int I, int H) {
    if (x) dsf_sgemm(1, 0, GH, I, n, 1.0f, gi, GH, x, I, 1.0f, g_w_ih, I);  // Σ gi xᵀ
    dsf_sgemm(1, 0, GH, H, n, 1.0f, gh, GH, h_prev, H, 1.0f, g_w_hh, H);  // Σ gh h'ᵀ
    dsf_add_colsum(g_b_ih, gi, (size_t)n, GH);
    dsf_add_colsum(g_b_hh, gh, (size_t)n, GH);
    if (x && dx) dsf_sgemm(0, 0, n, I, GH, 1.0f, gi, GH, w_ih, I, 0.0f, dx, I);  // gi W_ih
}
