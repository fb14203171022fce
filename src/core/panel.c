// panel.c: see panel.h. The inner kernel keeps an MR × 32 block of C in
// registers over the whole K loop: per k it loads one 32-wide row of the panel and
// broadcasts MR values of A, MR·2 fused multiply-adds of 16 lanes (AVX-512), or
// the same in plain C that the compiler vectorises for other targets.
#include "panel.h"

#include <string.h>

#if defined(__AVX512F__)
#include <immintrin.h>
#endif

enum { MR = 8, NR = DSF_PANEL };

void dsf_panel_pack(const float *B, int ldb, int tb, int K, int N, float *Bp) {
    const int np = dsf_panel_count(N);
#pragma omp for schedule(static)
    for (int p = 0; p < np; p++) {
        float *dst = Bp + (size_t)p * K * NR;
        const int j0 = p * NR, nj = N - j0 < NR ? N - j0 : NR;
        if (nj < NR) memset(dst, 0, sizeof(float) * (size_t)K * NR);
        if (tb) {  // op(B)[k][j] = B[j][k]: read rows of B, write columns of the panel
            for (int j = 0; j < nj; j++) {
                const float *src = B + (size_t)(j0 + j) * ldb;
                for (int k = 0; k < K; k++) dst[(size_t)k * NR + j] = src[k];
            }
        } else {
            for (int k = 0; k < K; k++)
                memcpy(dst + (size_t)k * NR, B + (size_t)k * ldb + j0, sizeof(float) * nj);
        }
    }
}

#if defined(__AVX512F__)

// C (mr, nc ≤ 32) += A (mr, K) · panel (K, 32); mr is a constant after inlining.
static inline __attribute__((always_inline)) void kernel(const int mr, int K, const float *A,
                                                         int lda, const float *P, float *C,
                                                         int ldc, int nc) {
    __m512 c0[MR], c1[MR];
    for (int i = 0; i < mr; i++) c0[i] = c1[i] = _mm512_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m512 p0 = _mm512_load_ps(P + (size_t)k * NR);
        const __m512 p1 = _mm512_load_ps(P + (size_t)k * NR + 16);
        for (int i = 0; i < mr; i++) {
            const __m512 a = _mm512_set1_ps(A[(size_t)i * lda + k]);
            c0[i] = _mm512_fmadd_ps(p0, a, c0[i]);
            c1[i] = _mm512_fmadd_ps(p1, a, c1[i]);
        }
    }
    const __mmask16 m0 = nc >= 16 ? 0xffff : (__mmask16)((1u << nc) - 1);
    const __mmask16 m1 = nc >= 32 ? 0xffff : nc <= 16 ? 0 : (__mmask16)((1u << (nc - 16)) - 1);
    for (int i = 0; i < mr; i++) {
        float *c = C + (size_t)i * ldc;
        _mm512_mask_storeu_ps(c, m0, _mm512_add_ps(_mm512_maskz_loadu_ps(m0, c), c0[i]));
        _mm512_mask_storeu_ps(c + 16, m1, _mm512_add_ps(_mm512_maskz_loadu_ps(m1, c + 16), c1[i]));
    }
}

#else

static inline void kernel(const int mr, int K, const float *A, int lda, const float *P, float *C,
                          int ldc, int nc) {
    float acc[MR][NR];
    memset(acc, 0, sizeof acc);
    for (int k = 0; k < K; k++) {
        const float *p = P + (size_t)k * NR;
        for (int i = 0; i < mr; i++) {
            const float a = A[(size_t)i * lda + k];
            for (int j = 0; j < NR; j++) acc[i][j] += a * p[j];
        }
    }
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nc; j++) C[(size_t)i * ldc + j] += acc[i][j];
}

#endif

void dsf_panel_gemm(int M, int K, const float *A, int lda, const float *Bp, int p0, int p1, int N,
                    float *C, int ldc) {
    for (int p = p0; p < p1; p++) {
        const int j0 = p * NR, nc = N - j0 < NR ? N - j0 : NR;
        if (nc <= 0) break;
        const float *P = Bp + (size_t)p * K * NR;
        int i = 0;
        for (; i + MR <= M; i += MR) kernel(MR, K, A + (size_t)i * lda, lda, P, C + (size_t)i * ldc + j0, ldc, nc);
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc + j0;
        switch (M - i) {  // the last rows, each count its own unrolled kernel
        case 7: kernel(7, K, a, lda, P, c, ldc, nc); break;
        case 6: kernel(6, K, a, lda, P, c, ldc, nc); break;
        case 5: kernel(5, K, a, lda, P, c, ldc, nc); break;
        case 4: kernel(4, K, a, lda, P, c, ldc, nc); break;
        case 3: kernel(3, K, a, lda, P, c, ldc, nc); break;
        case 2: kernel(2, K, a, lda, P, c, ldc, nc); break;
        case 1: kernel(1, K, a, lda, P, c, ldc, nc); break;
        default: break;
        }
    }
}
