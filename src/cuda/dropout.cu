// dropout.cu: inverted dropout (units.cuh), one thread per element; the mask is
// recomputed from its key, so the backward pass needs no stored mask.
#include "common.cuh"
#include "kernels.cuh"
#include "units.cuh"

static __global__ void dropout_kernel(const float *x, float *y, size_t n, long long W,
                                      long long B, long long B_all, long long first,
                                      long long stride, float p, float keep,
                                      unsigned long long key) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k < n) dropout_unit(k, dropout_index(k, W, B, B_all, first, stride), x, y, p, keep, key);
}

void dropout_gpu(cudaStream_t s, const float *x, float *y, int T, int B, int W,
                 const dsf_gpu_streams *st, float p, uint64_t key) {
    const unsigned nt = 256;
    const size_t n = (size_t)T * B * W;
    dropout_kernel<<<gpu_blocks(n, nt), nt, 0, s>>>(x, y, n, W, B, st->B_all, st->first,
                                                    st->stride, p, 1.0f / (1.0f - p), key);
    CUDA_LAUNCHED(s, "dropout_kernel");
}
