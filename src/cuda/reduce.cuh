// reduce.cuh: the block-wide sums and maxima of the kernels that reduce (loss.cu,
// block.cu): RED_THREADS threads, a fixed tree, so that a sum gives the same bits
// on every run.
#ifndef DSF_CUDA_REDUCE_CUH
#define DSF_CUDA_REDUCE_CUH

enum { RED_THREADS = 256 };  // the block size of every such reduction

// The sum of v over the block's RED_THREADS threads, in a fixed tree order;
// every thread gets it. buf: RED_THREADS doubles of shared memory.
static __device__ double block_sum(double v, double *buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int k = RED_THREADS / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) buf[threadIdx.x] += buf[threadIdx.x + k];
        __syncthreads();
    }
    const double s = buf[0];
    __syncthreads();  // buf may be reused at once
    return s;
}

static __device__ float block_max(float v, float *buf) {
    buf[threadIdx.x] = v;
    __syncthreads();
    for (int k = RED_THREADS / 2; k > 0; k >>= 1) {
        if ((int)threadIdx.x < k) buf[threadIdx.x] = fmaxf(buf[threadIdx.x], buf[threadIdx.x + k]);
        __syncthreads();
    }
    const float m = buf[0];
    __syncthreads();
    return m;
}

// Column sums: block j takes columns [32j, 32j+32), its 8 rows of threads every
// 8th row, then thread row 0 adds the 8 partial sums in order.
enum { COLSUM_COLS = 32, COLSUM_ROWS = 8 };

#endif
