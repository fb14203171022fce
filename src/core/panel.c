// panel.c: see panel.h. Three micro-kernels, one chosen at run time from the CPU
// (dsf_panel_kernel_name; DSF_KERNEL=avx512|avx2|generic forces one):
//
//   avx512   8 rows × 32 columns of C in 16 zmm accumulators; per k one 32-wide
//            row of the panel (2 loads) and 8 broadcasts of A feed 16 FMAs.
//   avx2     6 rows × 16 columns (half a panel) in 12 ymm accumulators; per k
//            2 panel loads and 6 broadcasts feed 12 FMAs (Haswell's tile: 15 of
//            the 16 ymm registers, enough independent chains to hide the FMA
//            latency, and FMA-bound rather than load-bound).
//   generic  4 rows × 16 columns in C with GCC/Clang vector types, for the target
//            the build was made for (SSE2 on x86-64, NEON on aarch64).
//
// The x86 kernels are compiled with __attribute__((target)) inside a build for the
// baseline ISA, so one binary runs on every x86-64 machine and uses what it has.
#include "panel.h"

#include <stdlib.h>
#include <string.h>

#include "common.h"

#if defined(__x86_64__) && defined(__GNUC__)
#define DSF_PANEL_X86 1
#include <immintrin.h>
#endif

enum { NR = DSF_PANEL };

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

// C (M rows, nc ≤ 32 columns) += A (M, K) · P (K, 32): one panel, every row. Each
// kernel below is one of these; dsf_panel_gemm calls the chosen one per panel.
typedef void panel_fn(int M, int K, const float *A, int lda, const float *P, float *C, int ldc,
                      int nc);

// Adds acc (mr × w, row stride w) to the first nc ≤ w columns of C: the tail of
// a matrix whose width is not a multiple of the tile's.
static inline void add_tile(int mr, int w, const float *acc, float *C, int ldc, int nc) {
    for (int i = 0; i < mr; i++)
        for (int j = 0; j < nc; j++) C[(size_t)i * ldc + j] += acc[i * w + j];
}

// ---- generic ----------------------------------------------------------------

// Four-float vectors of GCC and Clang (SSE on x86-64, NEON on aarch64, plain
// floats elsewhere): GM rows × 16 columns of C are GM·4 of them, which the
// compiler keeps in registers; a plain float array of the same size it does not.
typedef float v4 __attribute__((vector_size(16)));
enum { GM = 4, GN = 16 };

static inline v4 load4(const float *p) {
    v4 v;
    memcpy(&v, p, sizeof v);
    return v;
}

// C (mr, nc ≤ 16) += A (mr, K) · P[:, 0:16] (row stride NR); mr is a constant
// after inlining.
static inline __attribute__((always_inline)) void generic_tile(const int mr, int K, const float *A,
                                                               int lda, const float *P, float *C,
                                                               int ldc, int nc) {
    v4 acc[GM][4];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = (v4){0, 0, 0, 0};
    for (int k = 0; k < K; k++) {
        const float *p = P + (size_t)k * NR;
        const v4 p0 = load4(p), p1 = load4(p + 4), p2 = load4(p + 8), p3 = load4(p + 12);
        for (int i = 0; i < mr; i++) {
            const float a = A[(size_t)i * lda + k];
            const v4 av = {a, a, a, a};
            acc[i][0] += av * p0;
            acc[i][1] += av * p1;
            acc[i][2] += av * p2;
            acc[i][3] += av * p3;
        }
    }
    for (int i = 0; i < mr; i++) {
        float row[GN];
        memcpy(row, acc[i], sizeof row);
        for (int j = 0; j < nc; j++) C[(size_t)i * ldc + j] += row[j];
    }
}

static void panel_generic(int M, int K, const float *A, int lda, const float *P, float *C,
                          int ldc, int nc) {
    for (int h = 0; h < NR && h < nc; h += GN) {
        const int w = nc - h < GN ? nc - h : GN;
        int i = 0;
        for (; i + GM <= M; i += GM)
            generic_tile(GM, K, A + (size_t)i * lda, lda, P + h, C + (size_t)i * ldc + h, ldc, w);
        const float *a = A + (size_t)i * lda;
        float *c = C + (size_t)i * ldc + h;
        switch (M - i) {
        case 3: generic_tile(3, K, a, lda, P + h, c, ldc, w); break;
        case 2: generic_tile(2, K, a, lda, P + h, c, ldc, w); break;
        case 1: generic_tile(1, K, a, lda, P + h, c, ldc, w); break;
        default: break;
        }
    }
}

#ifdef DSF_PANEL_X86

// ---- avx2 + fma -------------------------------------------------------------

#define AVX2 __attribute__((target("avx2,fma")))
enum { AM = 6 };

// C (mr, nc ≤ 16) += A (mr, K) · P[:, 0:16] (row stride NR).
static inline __attribute__((always_inline)) AVX2 void avx2_tile(const int mr, int K,
                                                                  const float *A, int lda,
                                                                  const float *P, float *C,
                                                                  int ldc, int nc) {
    __m256 c0[AM], c1[AM];
    for (int i = 0; i < mr; i++) c0[i] = c1[i] = _mm256_setzero_ps();
    for (int k = 0; k < K; k++) {
        const __m256 p0 = _mm256_load_ps(P + (size_t)k * NR);
        const __m256 p1 = _mm256_load_ps(P + (size_t)k * NR + 8);
        for (int i = 0; i < mr; i++) {
            const __m256 a = _mm256_broadcast_ss(A + (size_t)i * lda + k);
            c0[i] = _mm256_fmadd_ps(p0, a, c0[i]);
            c1[i] = _mm256_fmadd_ps(p1, a, c1[i]);
        }
    }
    if (nc == 16) {
        for (int i = 0; i < mr; i++) {
            float *c = C + (size_t)i * ldc;
            _mm256_storeu_ps(c, _mm256_add_ps(_mm256_loadu_ps(c), c0[i]));
            _mm256_storeu_ps(c + 8, _mm256_add_ps(_mm256_loadu_ps(c + 8), c1[i]));
        }
    } else {
        float acc[AM * 16];
        for (int i = 0; i < mr; i++) {
            _mm256_storeu_ps(acc + i * 16, c0[i]);
            _mm256_storeu_ps(acc + i * 16 + 8, c1[i]);
        }
        add_tile(mr, 16, acc, C, ldc, nc);
    }
}

// The K loop goes in chunks of KC, each chunk of the panel (KC × 32 floats, 16 KiB)
// read from L1 by every row block rather than the whole panel streamed from L2
// by each.
enum { KC = 128 };

static AVX2 void panel_avx2(int M, int K, const float *A, int lda, const float *P, float *C,
                            int ldc, int nc) {
    for (int k0 = 0; k0 < K; k0 += KC) {
        const int kc = K - k0 < KC ? K - k0 : KC;
        const float *Pk = P + (size_t)k0 * NR, *Ak = A + k0;
        for (int h = 0; h < NR && h < nc; h += 16) {
            const int w = nc - h < 16 ? nc - h : 16;
            int i = 0;
            for (; i + AM <= M; i += AM)
                avx2_tile(AM, kc, Ak + (size_t)i * lda, lda, Pk + h, C + (size_t)i * ldc + h, ldc, w);
            const float *a = Ak + (size_t)i * lda;
            float *c = C + (size_t)i * ldc + h;
            switch (M - i) {  // the last rows, each count its own unrolled kernel
            case 5: avx2_tile(5, kc, a, lda, Pk + h, c, ldc, w); break;
            case 4: avx2_tile(4, kc, a, lda, Pk + h, c, ldc, w); break;
            case 3: avx2_tile(3, kc, a, lda, Pk + h, c, ldc, w); break;
            case 2: avx2_tile(2, kc, a, lda, Pk + h, c, ldc, w); break;
            case 1: avx2_tile(1, kc, a, lda, Pk + h, c, ldc, w); break;
            default: break;
            }
        }
    }
}

// ---- avx512 -----------------------------------------------------------------

#define AVX512 __attribute__((target("avx512f")))
enum { XM = 8 };

// C (mr, nc ≤ 32) += A (mr, K) · P (K, 32).
static inline __attribute__((always_inline)) AVX512 void avx512_tile(const int mr, int K,
                                                                      const float *A, int lda,
                                                                      const float *P, float *C,
                                                                      int ldc, int nc) {
    __m512 c0[XM], c1[XM];
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

static AVX512 void panel_avx512(int M, int K, const float *A, int lda, const float *P, float *C,
                                int ldc, int nc) {
    int i = 0;
    for (; i + XM <= M; i += XM)
        avx512_tile(XM, K, A + (size_t)i * lda, lda, P, C + (size_t)i * ldc, ldc, nc);
    const float *a = A + (size_t)i * lda;
    float *c = C + (size_t)i * ldc;
    switch (M - i) {
    case 7: avx512_tile(7, K, a, lda, P, c, ldc, nc); break;
    case 6: avx512_tile(6, K, a, lda, P, c, ldc, nc); break;
    case 5: avx512_tile(5, K, a, lda, P, c, ldc, nc); break;
    case 4: avx512_tile(4, K, a, lda, P, c, ldc, nc); break;
    case 3: avx512_tile(3, K, a, lda, P, c, ldc, nc); break;
    case 2: avx512_tile(2, K, a, lda, P, c, ldc, nc); break;
    case 1: avx512_tile(1, K, a, lda, P, c, ldc, nc); break;
    default: break;
    }
}

#endif  // DSF_PANEL_X86

// ---- the choice ---------------------------------------------------------------

static const struct {
    const char *name;
    panel_fn *fn;
} kernels[] = {
#ifdef DSF_PANEL_X86
    {"avx512", panel_avx512},
    {"avx2", panel_avx2},
#endif
    {"generic", panel_generic},
};
enum { NKERNELS = sizeof kernels / sizeof kernels[0] };

int dsf_panel_kernel_supported(const char *name) {
#ifdef DSF_PANEL_X86
    __builtin_cpu_init();
    if (strcmp(name, "avx512") == 0) return __builtin_cpu_supports("avx512f");
    if (strcmp(name, "avx2") == 0)
        return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#endif
    return strcmp(name, "generic") == 0;
}

// The index of the named kernel, or -1 when no kernel has that name.
static int find(const char *name) {
    for (int k = 0; k < NKERNELS; k++)
        if (strcmp(name, kernels[k].name) == 0) return k;
    return -1;
}

// The index of the fastest kernel this CPU has (they are listed fastest first).
static int best(void) {
    for (int k = 0; k < NKERNELS; k++)
        if (dsf_panel_kernel_supported(kernels[k].name)) return k;
    return NKERNELS - 1;
}

// The kernel DSF_KERNEL names: its index, -1 when unset, -2 (with the error set)
// when it names no kernel or one this CPU lacks.
static int wanted(void) {
    const char *want = getenv("DSF_KERNEL");
    if (!want || !*want) return -1;
    const int k = find(want);
    if (k < 0) {
        dsf_error_set("DSF_KERNEL=%s: expected avx512, avx2 or generic", want);
        return -2;
    }
    if (!dsf_panel_kernel_supported(want)) {
        dsf_error_set("DSF_KERNEL=%s: this CPU does not have it (it has %s)", want,
                      kernels[best()].name);
        return -2;
    }
    return k;
}

// -1 until dsf_panel_init or the first product chooses.
static _Atomic int chosen = -1;

int dsf_panel_init(void) {
    const int k = wanted();
    chosen = k >= 0 ? k : best();
    return k == -2 ? -1 : 0;
}

static inline int current(void) {
    int k = chosen;
    if (k < 0) {  // a library user who did not call dsf_panel_init: the same answer on every thread
        if (dsf_panel_init() < 0) fprintf(stderr, "dsf: %s; using the best kernel\n", dsf_error());
        k = chosen;
    }
    return k;
}

const char *dsf_panel_kernel_name(void) { return kernels[current()].name; }

int dsf_panel_use_kernel(const char *name) {
    const int k = find(name);
    if (k < 0 || !dsf_panel_kernel_supported(name)) return 0;
    chosen = k;
    return 1;
}

void dsf_panel_gemm(int M, int K, const float *A, int lda, const float *Bp, int p0, int p1, int N,
                    float *C, int ldc) {
    panel_fn *fn = kernels[current()].fn;
    for (int p = p0; p < p1; p++) {
        const int j0 = p * NR, nc = N - j0 < NR ? N - j0 : NR;
        if (nc <= 0) break;
        fn(M, K, A, lda, Bp + (size_t)p * K * NR, C + j0, ldc, nc);
    }
}
