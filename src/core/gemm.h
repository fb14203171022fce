// gemm.h: the one matrix product everything is built on, and thread control.
//
// Row-major, as cblas_sgemm with CblasRowMajor:
//   C (M,N) = alpha * op(A) * op(B) + beta * C,   op(X) = X or Xᵀ.
// A is (M,K) when !ta, else (K,M); B is (K,N) when !tb, else (N,K).
#ifndef DSF_GEMM_H
#define DSF_GEMM_H

#include <stddef.h>

void dsf_sgemm(int ta, int tb, int M, int N, int K, float alpha, const float *A, int lda,
               const float *B, int ldb, float beta, float *C, int ldc);

// dst (m) += the column sums of src (n,m): a bias gradient. Parallel over
// columns, each summed in double in row order: the same for any thread count.
void dsf_add_colsum(float *dst, const float *src, size_t n, int m);

// Sets the threads used by OpenMP loops and by the BLAS together, so that they
// do not oversubscribe the cores. n <= 0 keeps the default.
void dsf_set_threads(int n);
int dsf_get_threads(void);

// "OpenBLAS 0.3.21 (...)" or "portable blocked GEMM".
const char *dsf_blas_name(void);

#endif
