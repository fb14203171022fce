// optim.cu: the global gradient norm, clipping, SGD and AdamW on the device, with
// optim/optim.c's formulas.
#include <math.h>

#include "common.cuh"
#include "kernels.cuh"

enum { NORM_THREADS = 256 };

// Block b sums g² over i ≡ b·NORM_THREADS + tid (mod NORM_BLOCKS·NORM_THREADS), in
// double, then over its threads in a fixed tree: partial[b]. The grid is fixed,
// so the order is the same whatever n.
static __global__ void sumsq_partial_kernel(const float *g, size_t n, double *partial) {
    __shared__ double buf[NORM_THREADS];
    double sum = 0;
    for (size_t i = (size_t)blockIdx.x * NORM_THREADS + threadIdx.x; i < n;
         i += (size_t)NORM_BLOCKS * NORM_THREADS)
        sum += (double)g[i] * g[i];
    buf[threadIdx.x] = sum;
    __syncthreads();
    for (int k = NORM_THREADS / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) buf[threadIdx.x] += buf[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) partial[blockIdx.x] = buf[0];
}

static __global__ void sumsq_final_kernel(const double *partial, double *sumsq) {
    __shared__ double buf[NORM_BLOCKS];
    buf[threadIdx.x] = partial[threadIdx.x];
    __syncthreads();
    for (int k = NORM_BLOCKS / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) buf[threadIdx.x] += buf[threadIdx.x + k];
        __syncthreads();
    }
    if (threadIdx.x == 0) *sumsq = buf[0];
}

void sumsq_gpu(cudaStream_t s, const float *g, size_t n, double *partial, double *sumsq) {
    sumsq_partial_kernel<<<NORM_BLOCKS, NORM_THREADS, 0, s>>>(g, n, partial);
    CUDA_LAUNCHED(s, "sumsq_partial_kernel");
    sumsq_final_kernel<<<1, NORM_BLOCKS, 0, s>>>(partial, sumsq);
    CUDA_LAUNCHED(s, "sumsq_final_kernel");
}

static __global__ void clip_kernel(float *g, size_t n, const double *sumsq, double max_norm) {
    const double norm = sqrt(*sumsq), coef = max_norm / (norm + 1e-6);
    if (!isfinite(norm) || !(coef < 1)) return;
    const float f = (float)coef;
    for (size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x; i < n;
         i += (size_t)gridDim.x * blockDim.x)
        g[i] *= f;
}

void clip_gpu(cudaStream_t s, float *g, size_t n, const double *sumsq, double max_norm) {
    if (!(max_norm > 0)) return;
    const unsigned nt = 256, nb = gpu_blocks(n, nt) < 4096 ? gpu_blocks(n, nt) : 4096;
    clip_kernel<<<nb, nt, 0, s>>>(g, n, sumsq, max_norm);
    CUDA_LAUNCHED(s, "clip_kernel");
}

static __global__ void sgd_kernel(float *p, const float *g, size_t n, float lr) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) p[i] -= lr * g[i];
}

void sgd_gpu(cudaStream_t s, float *p, const float *g, size_t n, float lr) {
    const unsigned nt = 256;
    sgd_kernel<<<gpu_blocks(n, nt), nt, 0, s>>>(p, g, n, lr);
    CUDA_LAUNCHED(s, "sgd_kernel");
}

static __global__ void adamw_kernel(float *p, const float *g, float *m, float *v, size_t n,
                                    float lr, float b1, float b2, float c1, float c2, float eps,
                                    float decay) {
    const size_t i = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    m[i] = b1 * m[i] + (1 - b1) * g[i];
    v[i] = b2 * v[i] + (1 - b2) * g[i] * g[i];
    const float mh = m[i] / c1, vh = v[i] / c2;
    p[i] = p[i] * decay - lr * mh / (sqrtf(vh) + eps);
}

void adamw_gpu(cudaStream_t s, float *p, const float *g, float *m, float *v, size_t n, float lr,
               float b1, float b2, float c1, float c2, float eps, float decay) {
    const unsigned nt = 256;
    adamw_kernel<<<gpu_blocks(n, nt), nt, 0, s>>>(p, g, m, v, n, lr, b1, b2, c1, c2, eps, decay);
    CUDA_LAUNCHED(s, "adamw_kernel");
}
