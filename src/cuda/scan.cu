// scan.cu: the chunked reverse linear scan (units.cuh). A block of 32 × P threads
// handles 32 adjacent channels (so every access to e is a coalesced 128-byte
// row) and all P chunks of time of each; the chunks' local results meet in
// shared memory. The work is about twice a plain reverse loop, the sequential
// depth T/P + P instead of T.
// Also the right side of the correction sweeps and the diag feedback's Jacobian
// diagonals, one thread per entry, and the fit feedback's estimate.
#include "common.cuh"
#include "kernels.cuh"
#include "units.cuh"

enum { SCAN_LANES = 32 };

static __global__ void scan_kernel(float *e, const float *a, int varying, int T, int B, int H,
                                   int P) {
    __shared__ float start[SCAN_MAX_CHUNKS][SCAN_LANES], apow[SCAN_MAX_CHUNKS][SCAN_LANES],
        carry[SCAN_MAX_CHUNKS][SCAN_LANES];
    const size_t C = (size_t)B * H;
    const size_t c = (size_t)blockIdx.x * SCAN_LANES + threadIdx.x;
    const int lane = threadIdx.x, p = threadIdx.y;
    const int live = c < C;  // every thread reaches the barriers
    const float *ap = varying ? a + c : a + c % H;
    const size_t sa = varying ? C : 0;
    int t0, t1;
    scan_chunk_bounds(p, P, T, &t0, &t1);
    if (live) scan_phase1(e, ap, sa, c, C, t0, t1, T, &start[p][lane], &apow[p][lane]);
    __syncthreads();
    if (live && p == 0) scan_phase2(&start[0][lane], &apow[0][lane], &carry[0][lane], P, SCAN_LANES);
    __syncthreads();
    if (live) scan_phase3(e, ap, sa, c, C, t0, t1, carry[p][lane]);
}

static void launch_scan(cudaStream_t s, float *e, const float *a, int varying, int T, int B, int H,
                        int chunks) {
    int P = chunks < 1 ? 1 : chunks > SCAN_MAX_CHUNKS ? SCAN_MAX_CHUNKS : chunks;
    if (P > T) P = T;
    const dim3 threads(SCAN_LANES, (unsigned)P);
    scan_kernel<<<gpu_blocks((size_t)B * H, SCAN_LANES), threads, 0, s>>>(e, a, varying, T, B, H,
                                                                          P);
    CUDA_LAUNCHED(s, "scan_kernel");
}

void scan_gpu(cudaStream_t s, float *e, const float *a, int T, int B, int H, int chunks) {
    launch_scan(s, e, a, 0, T, B, H, chunks);
}

void scan_varying_gpu(cudaStream_t s, float *e, const float *a, int T, int B, int H, int chunks) {
    launch_scan(s, e, a, 1, T, B, H, chunks);
}

static __global__ void sweep_rhs_kernel(const float *e, const float *e0, float *c, const float *d,
                                        size_t ds, const float *a, int varying, int T, int B,
                                        int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)T * B * H) return;
    sweep_rhs_unit(k / H, (int)(k % H), e, e0, c, d, ds, a, varying, (size_t)(T - 1) * B, B, H);
}

void sweep_rhs_gpu(cudaStream_t s, const float *e, const float *e0, float *c, const float *d,
                   size_t ds, const float *a, int varying, int T, int B, int H) {
    const unsigned nt = 256;
    sweep_rhs_kernel<<<gpu_blocks((size_t)T * B * H, nt), nt, 0, s>>>(e, e0, c, d, ds, a, varying,
                                                                       T, B, H);
    CUDA_LAUNCHED(s, "sweep_rhs_kernel");
}

// ---- the diag feedback's Jacobian diagonals (units.cuh), one thread per entry ----

static __global__ void jdiag_kernel(dsf_cell cell, const float *w_hh, const float *x1,
                                    const float *x2, const float *gates, const float *q,
                                    float *diag, int n, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)n * H) return;
    jdiag_unit(cell, (int)(k / H), (int)(k % H), w_hh, x1, x2, gates, q, diag, H);
}

void jacobian_diag_gpu(cudaStream_t s, dsf_cell cell, const float *w_hh, const float *x1,
                       const float *x2, const float *gates, const float *q, float *diag, int n,
                       int H) {
    const unsigned nt = 256;
    if (n < 1) return;
    jdiag_kernel<<<gpu_blocks((size_t)n * H, nt), nt, 0, s>>>(cell, w_hh, x1, x2, gates, q, diag,
                                                              n, H);
    CUDA_LAUNCHED(s, "jdiag_kernel");
}

// ---- the fit feedback (units.cuh): one block of FIT_THREADS per channel ----

static __global__ void fit_kernel(const float *c, const float *d, const float *z, size_t zs,
                                  long rows, float *a, float rate, int H) {
    __shared__ double num[FIT_THREADS], den[FIT_THREADS];
    const int i = blockIdx.x, k = threadIdx.x;
    fit_partial_unit(i, k, c, d, z, zs, rows, H, &num[k], &den[k]);
    __syncthreads();
    for (int width = FIT_THREADS / 2; width > 0; width /= 2) {
        fit_tree_unit(k, width, num, den);
        __syncthreads();
    }
    if (k == 0) fit_update_unit(&a[i], num[0], den[0], rate);
}

void fit_feedback_gpu(cudaStream_t s, const float *c, const float *d, const float *z, size_t zs,
                      long rows, float *a, float rate, int H) {
    if (rows < 1) return;
    fit_kernel<<<H, FIT_THREADS, 0, s>>>(c, d, z, zs, rows, a, rate, H);
    CUDA_LAUNCHED(s, "fit_kernel");
}

// The low-rank feedback A = diag(a) + U Vᵀ (grad/scan.c's lowrank_chunk): block b
// takes batch row b through all T steps in sequence, δ_t = e_t + A δ_{t+1}: first
// s = Vᵀ δ_{t+1} (thread j < r sums column j over the H channels in order), then
// each channel i adds a_i δ_{t+1,i} + Σ_j U_ij s_j, as the CPU does it. Parallel
// over the batch and the channels, not over time.
enum { LOWRANK_THREADS = 256 };
static_assert(DSF_SCAN_MAX_RANK <= LOWRANK_THREADS, "one thread per rank");

static __global__ void lowrank_scan_kernel(float *e, const float *a, const float *u,
                                           const float *v, int r, int T, int B, int H) {
    __shared__ float s[LOWRANK_THREADS];
    const size_t BH = (size_t)B * H;
    const int j = threadIdx.x;
    for (int t = T - 2; t >= 0; t--) {
        float *d = e + t * BH + (size_t)blockIdx.x * H;
        const float *p = d + BH;
        if (j < r) {
            float acc = 0.0f;
            for (int i = 0; i < H; i++) acc += v[(size_t)i * r + j] * p[i];
            s[j] = acc;
        }
        __syncthreads();
        for (int i = threadIdx.x; i < H; i += LOWRANK_THREADS) {
            const float *ui = u + (size_t)i * r;
            float acc = a[i] * p[i];
            for (int k = 0; k < r; k++) acc += ui[k] * s[k];
            d[i] += acc;
        }
        __syncthreads();  // δ_t complete before it is read, and s free again
    }
}

void scan_lowrank_gpu(cudaStream_t s, float *e, const float *a, const float *u, const float *v,
                      int r, int T, int B, int H) {
    DSF_ASSERT(r >= 1 && r <= DSF_SCAN_MAX_RANK);
    lowrank_scan_kernel<<<(unsigned)B, LOWRANK_THREADS, 0, s>>>(e, a, u, v, r, T, B, H);
    CUDA_LAUNCHED(s, "lowrank_scan_kernel");
}
