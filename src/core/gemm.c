// gemm.c: dsf_sgemm through CBLAS when built with DSF_USE_CBLAS, else a portable
// cache-blocked product parallel over rows of C.
#include "gemm.h"

#include <string.h>

#include "common.h"

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef DSF_USE_CBLAS
#include <cblas.h>

void dsf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
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

void dsf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc) {
    if (M == 0 || N == 0) return;
    for (int i = 0; i < M; i++) {
        float *c = C + (size_t)i * ldc;
        if (beta == 0.0f)
            memset(c, 0, sizeof(float) * (size_t)N);
        else if (beta != 1.0f)
            for (int j = 0; j < N; j++) c[j] *= beta;
    }
    if (K == 0 || alpha == 0.0f) return;
#pragma omp parallel
    {
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
#pragma omp for schedule(static)
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
}

const char *dsf_blas_name(void) { return "portable blocked GEMM"; }
#endif

static int n_threads;

void dsf_set_threads(int n) {
    if (n <= 0) return;
    n_threads = n;
#ifdef _OPENMP
    omp_set_num_threads(n);
#endif
#ifdef DSF_USE_CBLAS
    openblas_set_num_threads(n);
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
