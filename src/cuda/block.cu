// block.cu: the block architecture's own layers on the device, as model/layers.c
// computes them: LayerNorm (its statistics and row sums in double, in a fixed
// order), the MLP's GELU, and the residual stream's sums.
#include "common.cuh"
#include "kernels.cuh"
#include "model/layers.h"  // DSF_LN_EPS
#include "reduce.cuh"

// One block per row: its mean and 1/std (layernorm_forward's, in double), then y.
static __global__ void layernorm_forward_kernel(const float *x, const float *gamma,
                                                const float *beta, float *y, float *mean,
                                                float *rstd, int D) {
    __shared__ double buf[RED_THREADS];
    const size_t r = blockIdx.x;
    const float *xr = x + r * D;
    float *yr = y + r * D;
    double s = 0, ss = 0;
    for (int k = threadIdx.x; k < D; k += RED_THREADS) s += xr[k];
    const double mu = block_sum(s, buf) / D;
    for (int k = threadIdx.x; k < D; k += RED_THREADS) ss += (xr[k] - mu) * (xr[k] - mu);
    ss = block_sum(ss, buf);
    const float m = (float)mu, rs = (float)(1.0 / sqrt(ss / D + DSF_LN_EPS));
    for (int k = threadIdx.x; k < D; k += RED_THREADS) yr[k] = (xr[k] - m) * rs * gamma[k] + beta[k];
    if (threadIdx.x == 0) {
        mean[r] = m;
        rstd[r] = rs;
    }
}

void layernorm_forward_gpu(cudaStream_t s, const float *x, const float *gamma, const float *beta,
                           float *y, float *mean, float *rstd, int n, int D) {
    layernorm_forward_kernel<<<(unsigned)n, RED_THREADS, 0, s>>>(x, gamma, beta, y, mean, rstd, D);
    CUDA_LAUNCHED(s, "layernorm_forward_kernel");
}

// One block per row: dx = rstd (g − mean(g) − x̂ mean(g ⊙ x̂)), g = dy ⊙ γ, added
// to dx when add.
static __global__ void layernorm_backward_kernel(const float *dy, const float *x,
                                                 const float *mean, const float *rstd,
                                                 const float *gamma, float *dx, int add, int D) {
    __shared__ double buf[RED_THREADS];
    const size_t r = blockIdx.x;
    const float *dr = dy + r * D, *xr = x + r * D;
    float *out = dx + r * D;
    const float mr = mean[r], rs = rstd[r];
    double sg = 0, sgx = 0;
    for (int k = threadIdx.x; k < D; k += RED_THREADS) {
        const double gk = dr[k] * gamma[k], xh = (xr[k] - mr) * rs;
        sg += gk;
        sgx += gk * xh;
    }
    sg = block_sum(sg, buf);
    sgx = block_sum(sgx, buf);
    const float mg = (float)(sg / D), mgx = (float)(sgx / D);
    for (int k = threadIdx.x; k < D; k += RED_THREADS) {
        const float xh = (xr[k] - mr) * rs, v = rs * (dr[k] * gamma[k] - mg - xh * mgx);
        out[k] = add ? out[k] + v : v;
    }
}

// γ's and β's gradients: column sums of dy ⊙ x̂ and of dy (reduce.cuh's layout).
static __global__ void layernorm_params_kernel(const float *dy, const float *x, const float *mean,
                                               const float *rstd, float *dgamma, float *dbeta,
                                               int n, int D) {
    __shared__ double bg[COLSUM_ROWS][COLSUM_COLS], bb[COLSUM_ROWS][COLSUM_COLS];
    const int col = blockIdx.x * COLSUM_COLS + threadIdx.x;
    double sg = 0, sb = 0;
    if (col < D)
        for (int r = threadIdx.y; r < n; r += COLSUM_ROWS) {
            const float d = dy[(size_t)r * D + col];
            sg += d * ((x[(size_t)r * D + col] - mean[r]) * rstd[r]);
            sb += d;
        }
    bg[threadIdx.y][threadIdx.x] = sg;
    bb[threadIdx.y][threadIdx.x] = sb;
    __syncthreads();
    if (threadIdx.y == 0 && col < D) {
        for (int k = 1; k < COLSUM_ROWS; k++) {
            sg += bg[k][threadIdx.x];
            sb += bb[k][threadIdx.x];
        }
        dgamma[col] += (float)sg;
        dbeta[col] += (float)sb;
    }
}

void layernorm_backward_gpu(cudaStream_t s, const float *dy, const float *x, const float *mean,
                            const float *rstd, const float *gamma, float *dx, int add,
                            float *dgamma, float *dbeta, int n, int D) {
    layernorm_backward_kernel<<<(unsigned)n, RED_THREADS, 0, s>>>(dy, x, mean, rstd, gamma, dx,
                                                                  add, D);
    CUDA_LAUNCHED(s, "layernorm_backward_kernel");
    const dim3 threads(COLSUM_COLS, COLSUM_ROWS);
    layernorm_params_kernel<<<gpu_blocks((size_t)D, COLSUM_COLS), threads, 0, s>>>(
        dy, x, mean, rstd, dgamma, dbeta, n, D);
    CUDA_LAUNCHED(s, "layernorm_params_kernel");
}

static __device__ float gelu_cdf(float v) { return 0.5f * (1.0f + erff(v * 0.70710678118654752f)); }

static __global__ void bias_gelu_kernel(float *u, const float *bias, float *y, size_t n, int M) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    const float v = u[k] + bias[k % M];
    u[k] = v;
    y[k] = v * gelu_cdf(v);
}

void bias_gelu_gpu(cudaStream_t s, float *u, const float *bias, float *y, int n, int M) {
    const unsigned nt = 256;
    const size_t len = (size_t)n * M;
    bias_gelu_kernel<<<gpu_blocks(len, nt), nt, 0, s>>>(u, bias, y, len, M);
    CUDA_LAUNCHED(s, "bias_gelu_kernel");
}

static __global__ void gelu_backward_kernel(float *d, const float *u, size_t n) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    const float v = u[k];
    d[k] *= gelu_cdf(v) + v * 0.3989422804014327f * expf(-0.5f * v * v);
}

void gelu_backward_gpu(cudaStream_t s, float *d, const float *u, size_t n) {
    const unsigned nt = 256;
    gelu_backward_kernel<<<gpu_blocks(n, nt), nt, 0, s>>>(d, u, n);
    CUDA_LAUNCHED(s, "gelu_backward_kernel");
}

static __global__ void add_kernel(float *out, const float *a, const float *b, const float *bias,
                                  size_t n, int D) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    float v = a ? a[k] : 0.0f;
    if (b) v += b[k];
    if (bias) v += bias[k % D];
    out[k] = v;
}

void add_gpu(cudaStream_t s, float *out, const float *a, const float *b, const float *bias, int n,
             int D) {
    const unsigned nt = 256;
    const size_t len = (size_t)n * D;
    add_kernel<<<gpu_blocks(len, nt), nt, 0, s>>>(out, a, b, bias, len, D);
    CUDA_LAUNCHED(s, "add_kernel");
}
