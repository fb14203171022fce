// gemm.c: dsf_sgemm through CBLAS when built with DSF_USE_CBLAS, else a portable
// cache-blocked product; either way threaded by the project's OpenMP threads.
#include "gemm.h"

#include <string.h>

#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef DSF_USE_CBLAS
#include <cblas.h>

// One thread's product: OpenBLAS runs single-threaded (see dsf_sgemm).
static void sgemm_serial(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc) {
    static _Atomic int single;
    if (!single) {  // idempotent, so a race between two first calls is harmless
        openblas_set_num_threads(1);
        single = 1;
    }
    cblas_sgemm(CblasRowMajor, ta ? CblasTrans : CblasNoTrans, tb ? CblasTrans : CblasNoTrans, M,
                N, K, alpha, A, lda, B, ldb, beta, C, ldc);
}

const char *dsf_blas_name(void) {
    static char name[160];
    if (!name[0]) snprintf(name, sizeof name, "OpenBLAS (%s)", openblas_get_config());
    return name;
}
#else

// Blocks of op(A) and op(B) are packed into contiguous tiles so that the inner
// loop is a unit-stride axpy the compiler vectorises.
enum { MB = 64, NB = 256, KB = 256 };

static void sgemm_serial(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
                         const float *B, int ldb, float beta, float *C, int ldc) {
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (K == 0 || alpha == 0.0f) return;
    float *pa = dsf_xmalloc(sizeof(float) * MB * KB);
    float *pb = dsf_xmalloc(sizeof(float) * KB * NB);
    for (int j0 = 0; j0 < N; j0 += NB) {
        int nb = N - j0 < NB ? N - j0 : NB;
        for (int k0 = 0; k0 < K; k0 += KB) {
            int kb = K - k0 < KB ? K - k0 : KB;
            for (int k = 0; k < kb; k++)  // pb[k][j] = op(B)[k0+k][j0+j]
                for (int j = 0; j < nb; j++)
                    pb[k * nb + j] = tb ? B[(size_t)(j0 + j) * ldb + k0 + k]
                                        : B[(size_t)(k0 + k) * ldb + j0 + j];
            for (int i0 = 0; i0 < M; i0 += MB) {
                int mb = M - i0 < MB ? M - i0 : MB;
                for (int i = 0; i < mb; i++)  // pa[i][k] = alpha * op(A)[i0+i][k0+k]
                    for (int k = 0; k < kb; k++)
                        pa[i * kb + k] = alpha * (ta ? A[(size_t)(k0 + k) * lda + i0 + i]
                                                     : A[(size_t)(i0 + i) * lda + k0 + k]);
                for (int i = 0; i < mb; i++) {
                    float *c = C + (size_t)(i0 + i) * ldc + j0;
                    for (int k = 0; k < kb; k++) {
                        float a = pa[i * kb + k];
                        const float *b = pb + k * nb;
                        for (int j = 0; j < nb; j++) c[j] += a * b[j];
                    }
                }
            }
        }
    }
    free(pa);
    free(pb);
}

const char *dsf_blas_name(void) { return "portable blocked GEMM"; }
#endif

// The threads of a product are the project's OpenMP threads, never the BLAS's
// own pool: two pools that spin-wait for work on the same cores steal each
// other's time between consecutive calls (measured: a third of a training step
// went to spinning). So the BLAS runs single-threaded, and a large product is cut
// into one block of C per thread, along its longer side, in blocks of 16.
void dsf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    int P = dsf_get_threads();
#ifdef _OPENMP
    if (omp_in_parallel()) P = 1;
#endif
    if ((double)M * N * K < 2e6) P = 1;  // too small to be worth a parallel region
    const int split_n = N >= M, len = split_n ? N : M;
    if (P > (len + 15) / 16) P = (len + 15) / 16;
    if (P <= 1) {
        sgemm_serial(ta, tb, M, N, K, alpha, A, lda, B, ldb, beta, C, ldc);
        return;
    }
#pragma omp parallel num_threads(P)
    {
#ifdef _OPENMP
        const int p = omp_get_thread_num(), np = omp_get_num_threads();
#else
        const int p = 0, np = 1;
#endif
        const int blocks = (len + 15) / 16;
        const int b0 = (int)((long)blocks * p / np), b1 = (int)((long)blocks * (p + 1) / np);
        const int i0 = 16 * b0, i1 = 16 * b1 < len ? 16 * b1 : len;
        if (i1 > i0) {
            if (split_n)
                sgemm_serial(ta, tb, M, i1 - i0, K, alpha, A, lda,
                             tb ? B + (size_t)i0 * ldb : B + i0, ldb, beta, C + i0, ldc);
            else
                sgemm_serial(ta, tb, i1 - i0, N, K, alpha, ta ? A + i0 : A + (size_t)i0 * lda, lda,
                             B, ldb, beta, C + (size_t)i0 * ldc, ldc);
        }
    }
}

void dsf_add_colsum(float *dst, const float *src, size_t n, int m) {
    enum { CB = 64 };
#pragma omp parallel for schedule(static) if (n * (size_t)m > 65536)
    for (int j0 = 0; j0 < m; j0 += CB) {
        const int nj = m - j0 < CB ? m - j0 : CB;
        double acc[CB] = {0};
        for (size_t row = 0; row < n; row++) {
            const float *s = src + row * m + j0;
            for (int j = 0; j < nj; j++) acc[j] += s[j];
        }
        for (int j = 0; j < nj; j++) dst[j0 + j] += (float)acc[j];
    }
}

static int n_threads;

void dsf_set_threads(int n) {
    if (n <= 0) return;
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
}

int dsf_get_threads(void) {
    if (n_threads > 0) return n_threads;
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}
