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

void cell_input_proj_steps(int GH, const float *w_ih, const float *b1, const float *b2,
                           const float *x, int T, int B, const int *rows, int I, float *out) {
    if (!rows) {
        cell_input_proj(GH, w_ih, b1, b2, x, T * B, I, out);
        return;
    }
    for (int t = 0; t < T; t++)
        cell_input_proj(GH, w_ih, b1, b2, x + (size_t)t * B * I, rows[t], I,
                        out + (size_t)t * B * GH);
}

size_t cell_pack_floats(int GH, int T, int B, int I, int H) {
    return (size_t)T * B * (2 * (size_t)GH + 2 * (size_t)I + H);
}

// dst (Σ rows[t], w) ← the real rows of src (T·B, w), step by step.
static void gather_rows(float *dst, const float *src, int T, int B, const int *rows, int w) {
    for (int t = 0; t < T; t++) {
        const size_t n = (size_t)rows[t] * w;
        memcpy(dst, src + (size_t)t * B * w, n * sizeof(float));
        dst += n;
    }
}

void cell_backward_params_steps(int GH, const float *w_ih, const float *x, const float *h_prev,
                                const float *gi, const float *gh, float *g_w_ih, float *g_w_hh,
                                float *g_b_ih, float *g_b_hh, float *dx, int T, int B,
                                const int *rows, float *pack, int I, int H) {
    long n = rows ? 0 : (long)T * B;
    if (rows)
        for (int t = 0; t < T; t++) n += rows[t];
    if (n == 0) {  // every row padding: no gradient
        if (x && dx) memset(dx, 0, (size_t)T * B * I * sizeof(float));
        return;
    }
    if (!rows || n == (long)T * B) {
        cell_backward_params(GH, w_ih, x, h_prev, gi, gh, g_w_ih, g_w_hh, g_b_ih, g_b_hh, dx,
                             T * B, I, H);
        return;
    }
    float *ci = pack, *ch = gh == gi ? ci : ci + (size_t)n * GH;
    float *cx = ch + (size_t)n * GH, *cp = cx + (size_t)n * I, *cdx = cp + (size_t)n * H;
    gather_rows(ci, gi, T, B, rows, GH);
    if (ch != ci) gather_rows(ch, gh, T, B, rows, GH);
    if (x) gather_rows(cx, x, T, B, rows, I);
    gather_rows(cp, h_prev, T, B, rows, H);
    cell_backward_params(GH, w_ih, x ? cx : NULL, cp, ci, ch, g_w_ih, g_w_hh, g_b_ih, g_b_hh,
                         dx ? cdx : NULL, (int)n, I, H);
    if (!x || !dx) return;
    const float *src = cdx;
    for (int t = 0; t < T; t++) {  // dx: the real rows, 0 elsewhere
        float *d = dx + (size_t)t * B * I;
        const size_t real = (size_t)rows[t] * I;
        memcpy(d, src, real * sizeof(float));
        memset(d + real, 0, ((size_t)B * I - real) * sizeof(float));
        src += real;
    }
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
