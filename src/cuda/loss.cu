// loss.cu: the embedding, the softmax cross-entropy and the reductions around
// them. Every sum is in a fixed order (a fixed block size and tree), so that a
// step gives the same bits on every run.
#include <float.h>

#include "common.cuh"
#include "kernels.cuh"
#include "reduce.cuh"

static __global__ void embedding_forward_kernel(const float *encoder, const int32_t *x,
                                                float *emb, int n, int E) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * E) return;
    const size_t r = k / E, j = k % E;
    emb[k] = encoder[(size_t)x[r] * E + j];
}

void embedding_forward_gpu(cudaStream_t s, const float *encoder, const int32_t *x, float *emb,
                           int n, int E) {
    const unsigned nt = 256;
    embedding_forward_kernel<<<gpu_blocks((size_t)n * E, nt), nt, 0, s>>>(encoder, x, emb, n, E);
    CUDA_LAUNCHED(s, "embedding_forward_kernel");
}

// Block (k, j): distinct token k, columns [j·blockDim, (j+1)·blockDim).
static __global__ void embedding_backward_kernel(const float *d, const int32_t *tok,
                                                 const int32_t *off, const int32_t *perm,
                                                 float *g_encoder, int E) {
    const int k = blockIdx.x, col = blockIdx.y * blockDim.x + threadIdx.x;
    if (col >= E) return;
    float sum = 0.0f;
    for (int j = off[k]; j < off[k + 1]; j++) sum += d[(size_t)perm[j] * E + col];
    g_encoder[(size_t)tok[k] * E + col] += sum;
}

void embedding_backward_gpu(cudaStream_t s, const float *d, const int32_t *tok,
                            const int32_t *off, const int32_t *perm, float *g_encoder, int u,
                            int E) {
    if (u == 0) return;
    const unsigned nt = 128;
    const dim3 blocks((unsigned)u, gpu_blocks((size_t)E, nt));
    embedding_backward_kernel<<<blocks, nt, 0, s>>>(d, tok, off, perm, g_encoder, E);
    CUDA_LAUNCHED(s, "embedding_backward_kernel");
}

// One block per row.
static __global__ void softmax_xent_kernel(float *logits, const float *bias, const int32_t *y,
                                           float *row_loss, float scale, int V) {
    __shared__ double dbuf[RED_THREADS];
    __shared__ float fbuf[RED_THREADS];
    float *p = logits + (size_t)blockIdx.x * V;
    float mx = -FLT_MAX;
    for (int v = threadIdx.x; v < V; v += RED_THREADS) {
        const float l = p[v] + bias[v];
        p[v] = l;
        mx = fmaxf(mx, l);
    }
    mx = block_max(mx, fbuf);
    double sum = 0;
    for (int v = threadIdx.x; v < V; v += RED_THREADS) sum += expf(p[v] - mx);
    sum = block_sum(sum, dbuf);
    const int target = y[blockIdx.x];
    if (target < 0) {  // ignored: no loss, no gradient
        if (threadIdx.x == 0) row_loss[blockIdx.x] = 0.0f;
        for (int v = threadIdx.x; v < V; v += RED_THREADS) p[v] = 0.0f;
        return;
    }
    const float lt = p[target];  // every thread reads it before any writes
    __syncthreads();
    if (threadIdx.x == 0) row_loss[blockIdx.x] = (float)(log(sum) - (double)(lt - mx));
    const float inv = (float)(1.0 / sum);
    for (int v = threadIdx.x; v < V; v += RED_THREADS)
        p[v] = (expf(p[v] - mx) * inv - (v == target ? 1.0f : 0.0f)) * scale;
}

void softmax_xent_gpu(cudaStream_t s, float *logits, const float *bias, const int32_t *y,
                      float *row_loss, float scale, int n, int V) {
    softmax_xent_kernel<<<(unsigned)n, RED_THREADS, 0, s>>>(logits, bias, y, row_loss, scale, V);
    CUDA_LAUNCHED(s, "softmax_xent_kernel");
}

// Block j: columns [32j, 32j+32) (reduce.cuh).

static __global__ void colsum_kernel(const float *src, float *dst, int n, int m) {
    __shared__ double buf[COLSUM_ROWS][COLSUM_COLS];
    const int col = blockIdx.x * COLSUM_COLS + threadIdx.x;
    double sum = 0;
    if (col < m)
        for (int r = threadIdx.y; r < n; r += COLSUM_ROWS) sum += src[(size_t)r * m + col];
    buf[threadIdx.y][threadIdx.x] = sum;
    __syncthreads();
    if (threadIdx.y == 0 && col < m) {
        for (int k = 1; k < COLSUM_ROWS; k++) sum += buf[k][threadIdx.x];
        dst[col] += (float)sum;
    }
}

void colsum_gpu(cudaStream_t s, const float *src, float *dst, int n, int m) {
    const dim3 threads(COLSUM_COLS, COLSUM_ROWS);
    colsum_kernel<<<gpu_blocks((size_t)m, COLSUM_COLS), threads, 0, s>>>(src, dst, n, m);
    CUDA_LAUNCHED(s, "colsum_kernel");
}

static __global__ void mean_kernel(const float *x, double *out, int n, int count) {
    __shared__ double buf[RED_THREADS];
    double sum = 0;
    for (int i = threadIdx.x; i < n; i += RED_THREADS) sum += x[i];
    sum = block_sum(sum, buf);
    if (threadIdx.x == 0) *out = count ? sum / count : 0.0;
}

void mean_gpu(cudaStream_t s, const float *x, double *out, int n, int count) {
    mean_kernel<<<1, RED_THREADS, 0, s>>>(x, out, n, count);
    CUDA_LAUNCHED(s, "mean_kernel");
}
