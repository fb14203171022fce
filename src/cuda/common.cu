// common.cu: see common.cuh.
#include "common.cuh"
#include "gpu.h"

#include <stdio.h>
#include <stdlib.h>

void dsf_cuda_fail(const char *what, const char *call, const char *file, int line) {
    fprintf(stderr, "dsf: CUDA error at %s:%d: %s: %s\n", file, line, call, what);
    abort();
}

void dsf_cuda_launched(cudaStream_t s, const char *kernel, const char *file, int line) {
    static int sync = -1;
    if (sync < 0) {
        const char *v = getenv("DSF_CUDA_SYNC");
        sync = v && *v && *v != '0';
    }
    dsf_cuda_check(cudaGetLastError(), kernel, file, line);
    if (!sync) return;
    // Not while a graph is being captured (DSF_CUDA_GRAPHS): the replay runs it.
    cudaStreamCaptureStatus capturing;
    dsf_cuda_check(cudaStreamIsCapturing(s, &capturing), kernel, file, line);
    if (capturing == cudaStreamCaptureStatusNone)
        dsf_cuda_check(cudaStreamSynchronize(s), kernel, file, line);
}

void gpu_sgemm(cublasHandle_t h, int ta, int tb, int M, int N, int K, float alpha, const float *A,
               int lda, const float *B, int ldb, float beta, float *C, int ldc) {
    CUDA_CHECK(cublasSgemm(h, tb ? CUBLAS_OP_T : CUBLAS_OP_N, ta ? CUBLAS_OP_T : CUBLAS_OP_N, N,
                           M, K, &alpha, B, ldb, A, lda, &beta, C, ldc));
}

int gpu_alloc(void *p, size_t bytes) {
    void **pp = (void **)p;
    const cudaError_t e = cudaMalloc(pp, bytes ? bytes : 1);
    if (e == cudaSuccess) return 0;
    (void)cudaGetLastError();
    *pp = NULL;
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    (void)cudaGetLastError();
    return dsf_error_set("GPU memory: cannot allocate %.2f GiB more (%.2f GiB free of %.2f): %s",
                         bytes / 1073741824.0, free_b / 1073741824.0, total_b / 1073741824.0,
                         cudaGetErrorString(e));
}
