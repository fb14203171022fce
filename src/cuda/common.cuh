// common.cuh: what every .cu file of the CUDA backend shares: one checked call
// for CUDA, cuBLAS and cuFFT, the check after a kernel launch, an allocation that
// fails as a user error, and a row-major GEMM on cuBLAS with dsf_sgemm's
// arguments (core/gemm.h).
#ifndef DSF_CUDA_COMMON_CUH
#define DSF_CUDA_COMMON_CUH

#include <cublas_v2.h>
#include <cuda_runtime.h>
#include <cufft.h>
#include <stddef.h>

// Prints "dsf: CUDA error at file:line: call: what" and aborts: a failing call
// after dsf_gpu_create succeeded is an internal error.
[[noreturn]] void dsf_cuda_fail(const char *what, const char *call, const char *file, int line);

inline void dsf_cuda_check(cudaError_t e, const char *call, const char *file, int line) {
    if (e != cudaSuccess) dsf_cuda_fail(cudaGetErrorString(e), call, file, line);
}
inline void dsf_cuda_check(cublasStatus_t s, const char *call, const char *file, int line) {
    if (s != CUBLAS_STATUS_SUCCESS) dsf_cuda_fail(cublasGetStatusString(s), call, file, line);
}

inline void dsf_cuda_check(cufftResult r, const char *call, const char *file, int line) {
    if (r != CUFFT_SUCCESS) dsf_cuda_fail("cuFFT error (cufftResult in cufft.h)", call, file, line);
}

// CUDA_CHECK(cudaMemcpy(...)), CUDA_CHECK(cublasSgemm(...)): one macro for all three.
#define CUDA_CHECK(call) dsf_cuda_check((call), #call, __FILE__, __LINE__)

// After every kernel launch: the launch's own error and, with DSF_CUDA_SYNC=1 in
// the environment, the kernel's (the stream is synchronised, unless it is being
// captured into a graph), at this file:line.
void dsf_cuda_launched(cudaStream_t s, const char *kernel, const char *file, int line);
#define CUDA_LAUNCHED(stream, kernel) dsf_cuda_launched((stream), (kernel), __FILE__, __LINE__)

// Row-major, as dsf_sgemm: C (M,N) = alpha op(A) op(B) + beta C, A (M,K) when !ta
// else (K,M), B (K,N) when !tb else (N,K). cuBLAS is column-major, and a row-major
// X is a column-major Xᵀ, so this is Cᵀ = op(B)ᵀ op(A)ᵀ with the operands swapped.
void gpu_sgemm(cublasHandle_t h, int ta, int tb, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc);

// cudaMalloc of *p that reports a failure as a user error (the sizes come from
// flags): -1 with dsf_error() saying how much was asked and is free, *p NULL.
int gpu_alloc(void *p, size_t bytes);

// Blocks of `threads` threads covering n items.
inline unsigned gpu_blocks(size_t n, unsigned threads) {
    return (unsigned)((n + threads - 1) / threads);
}

#endif
