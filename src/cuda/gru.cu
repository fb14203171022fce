// gru.cu: the GRU's fused forward step and local backward (units.cuh), one thread
// per (row, unit).
#include "common.cuh"
#include "kernels.cuh"
#include "units.cuh"

static __global__ void gru_forward_step_kernel(const float *gx, const float *gh,
                                               const float *b_ih, const float *b_hh,
                                               const float *hp, float *gates, float *q, float *h,
                                               int B, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    gru_forward_unit((int)(k / H), (int)(k % H), gx, gh, b_ih, b_hh, hp, gates, q, h, H);
}

void gru_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                          const float *b_hh, const float *hp, float *gates, float *q, float *h,
                          int B, int H) {
    const unsigned nt = 256;
    gru_forward_step_kernel<<<gpu_blocks((size_t)B * H, nt), nt, 0, s>>>(gx, gh, b_ih, b_hh, hp,
                                                                         gates, q, h, B, H);
    CUDA_LAUNCHED(s, "gru_forward_step_kernel");
}

static __global__ void gru_local_kernel(float *e, const float *d_next, const float *gates_next,
                                        const float *carry, const float *h_prev,
                                        const float *gates, const float *q, float *gi, float *gh,
                                        int n, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * H) return;
    gru_local_unit((int)(k / H), (int)(k % H), e, d_next, gates_next, carry, h_prev, gates, q, gi,
                   gh, H);
}

void gru_local_gpu(cudaStream_t s, float *e, const float *d_next, const float *gates_next,
                   const float *carry, const float *h_prev, const float *gates, const float *q,
                   float *gi, float *gh, int n, int H) {
    const unsigned nt = 256;
    gru_local_kernel<<<gpu_blocks((size_t)n * H, nt), nt, 0, s>>>(e, d_next, gates_next, carry,
                                                                   h_prev, gates, q, gi, gh, n, H);
    CUDA_LAUNCHED(s, "gru_local_kernel");
}
