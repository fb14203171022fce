// lstm.cu: the LSTM's fused forward step and the stages of its local backward
// (units.cuh), one thread per (row, unit).
#include "common.cuh"
#include "kernels.cuh"
#include "units.cuh"

static __global__ void lstm_forward_step_kernel(const float *gx, const float *gh,
                                                const float *b_ih, const float *b_hh,
                                                const float *cp, float *gates, float *c, float *h,
                                                int B, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)B * H) return;
    lstm_forward_unit((int)(k / H), (int)(k % H), gx, gh, b_ih, b_hh, cp, gates, c, h, H);
}

void lstm_forward_step_gpu(cudaStream_t s, const float *gx, const float *gh, const float *b_ih,
                           const float *b_hh, const float *cp, float *gates, float *c, float *h,
                           int B, int H) {
    const unsigned nt = 256;
    lstm_forward_step_kernel<<<gpu_blocks((size_t)B * H, nt), nt, 0, s>>>(gx, gh, b_ih, b_hh, cp,
                                                                          gates, c, h, B, H);
    CUDA_LAUNCHED(s, "lstm_forward_step_kernel");
}

static __global__ void lstm_c_local_kernel(const float *e, const float *gates, const float *c,
                                           float *dc, int n, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * H) return;
    lstm_c_local_unit((int)(k / H), (int)(k % H), e, gates, c, dc, H);
}

void lstm_c_local_gpu(cudaStream_t s, const float *e, const float *gates, const float *c,
                      float *dc, int n, int H) {
    const unsigned nt = 256;
    lstm_c_local_kernel<<<gpu_blocks((size_t)n * H, nt), nt, 0, s>>>(e, gates, c, dc, n, H);
    CUDA_LAUNCHED(s, "lstm_c_local_kernel");
}

static __global__ void lstm_local_kernel(int bptt, float *e, float *dc, const float *carry,
                                         const float *dc_next, const float *gates_next,
                                         const float *c_prev, const float *c, const float *gates,
                                         float *ga, int n, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * H) return;
    lstm_local_unit((int)(k / H), (int)(k % H), bptt, e, dc, carry, dc_next, gates_next, c_prev,
                    c, gates, ga, H);
}

void lstm_local_gpu(cudaStream_t s, int bptt, float *e, float *dc, const float *carry,
                    const float *dc_next, const float *gates_next, const float *c_prev,
                    const float *c, const float *gates, float *ga, int n, int H) {
    const unsigned nt = 256;
    lstm_local_kernel<<<gpu_blocks((size_t)n * H, nt), nt, 0, s>>>(
        bptt, e, dc, carry, dc_next, gates_next, c_prev, c, gates, ga, n, H);
    CUDA_LAUNCHED(s, "lstm_local_kernel");
}
