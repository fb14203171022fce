// elman.cu: the Elman cell's forward step and local backward (units.cuh), one
// thread per (row, unit).
#include "common.cuh"
#include "kernels.cuh"
#include "units.cuh"

static __global__ void elman_forward_step_kernel(const float *gx, const float *gh,
                                                 const float *b_ih, const float *b_hh, float *h,
                                                 int B, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    elman_forward_unit((int)(k / H), (int)(k % H), gx, gh, b_ih, b_hh, h, H);
}

void elman_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                            const float *b_hh, float *h, int B, int H) {
    const unsigned nt = 256;
    elman_forward_step_kernel<<<gpu_blocks((size_t)B * H, nt), nt, 0, s>>>(gx, gh, b_ih, b_hh, h,
                                                                           B, H);
    CUDA_LAUNCHED(s, "elman_forward_step_kernel");
}

static __global__ void elman_local_kernel(float *e, const float *carry, const float *h, float *ga,
                                          int n, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * H) return;
    elman_local_unit((int)(k / H), (int)(k % H), e, carry, h, ga, H);
}

void elman_local_gpu(cudaStream_t s, float *e, const float *carry, const float *h, float *ga,
                     int n, int H) {
    const unsigned nt = 256;
    elman_local_kernel<<<gpu_blocks((size_t)n * H, nt), nt, 0, s>>>(e, carry, h, ga, n, H);
    CUDA_LAUNCHED(s, "elman_local_kernel");
}
