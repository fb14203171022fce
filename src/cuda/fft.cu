// fft.cu: the fft scan on cuFFT (units.cuh): one batched real transform along
// time of all B·H channels in place in the time-major layout (stride B·H,
// distance 1), so that padding is one memset and no transposes are needed; the
// kernel spectrum for the channel's a computed on the device in double; the
// product; the inverse; the first T rows copied back.
#include "common.cuh"
#include "gpu.h"
#include "kernels.cuh"
#include "units.cuh"

static __global__ void fft_spectrum_kernel(float *K, const float *a, int T, int N, int M, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)M * H) return;
    const int m = (int)(k / H), i = (int)(k % H);
    fft_spectrum_unit(m, a[i], T, N, &K[2 * k], &K[2 * k + 1]);
}

static __global__ void fft_apply_kernel(float *X, const float *K, int M, size_t C, int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= (size_t)M * C) return;
    fft_apply_unit((int)(k / C), k % C, X, K, C, H);
}

static __global__ void fft_finish_kernel(float *e, const float *y, const float *a, size_t n,
                                         int H) {
    const size_t k = (size_t)blockIdx.x * blockDim.x + threadIdx.x;
    if (k >= n) return;
    fft_finish_unit(k, e, y, a, H);
}

// A plan of `type` for C columns of length N in the (N, C) layout.
static int make_plan(cufftHandle *p, cufftType type, int N, size_t C, size_t *work) {
    long long n = N, M = N / 2 + 1, in_embed = type == CUFFT_R2C ? n : M,
              out_embed = type == CUFFT_R2C ? M : n;
    if (cufftCreate(p) != CUFFT_SUCCESS) return -1;
    if (cufftMakePlanMany64(*p, 1, &n, &in_embed, (long long)C, 1, &out_embed, (long long)C, 1,
                            type, (long long)C, work) != CUFFT_SUCCESS) {
        cufftDestroy(*p);
        return -1;
    }
    return 0;
}

int fft_scan_create(fft_scan *f, int T, int B, int H) {
    *f = fft_scan{};
    f->N = fft_scan_length(T);
    if (f->N < 0) return dsf_error_set("the fft scan cannot handle T = %d; use --scan seq", T);
    f->T = T;
    f->C = (size_t)B * H;
    f->H = H;
    const int M = f->N / 2 + 1;
    size_t w1 = 0, w2 = 0;
    int bad = gpu_alloc(&f->y, (size_t)f->N * f->C * sizeof(float)) ||
              gpu_alloc(&f->X, (size_t)M * f->C * 2 * sizeof(float)) ||
              gpu_alloc(&f->K, (size_t)M * H * 2 * sizeof(float));
    if (!bad && make_plan(&f->r2c, CUFFT_R2C, f->N, f->C, &w1) == 0) f->planned |= 1;
    if (!bad && make_plan(&f->c2r, CUFFT_C2R, f->N, f->C, &w2) == 0) f->planned |= 2;
    if (!bad && f->planned != 3)
        bad = dsf_error_set("cuFFT cannot plan the fft scan for T = %d over %zu channels (GPU "
                            "memory?); use --scan blelloch",
                            T, f->C);
    if (bad) {
        fft_scan_destroy(f);
        return -1;
    }
    return 0;
}

void fft_scan_destroy(fft_scan *f) {
    if (f->planned & 1) CUDA_CHECK(cufftDestroy(f->r2c));
    if (f->planned & 2) CUDA_CHECK(cufftDestroy(f->c2r));
    float *bufs[] = {f->y, f->X, f->K};
    for (int k = 0; k < 3; k++)
        if (bufs[k]) CUDA_CHECK(cudaFree(bufs[k]));
    *f = fft_scan{};
}

void fft_scan_gpu(cudaStream_t s, fft_scan *f, float *e, const float *a, int T) {
    DSF_ASSERT(T >= 1 && T <= f->T);  // N ≥ 2T holds for every shorter T too
    const int N = f->N, M = N / 2 + 1, H = f->H;
    const size_t C = f->C, TC = (size_t)T * C;
    const unsigned nt = 256;
    CUDA_CHECK(cufftSetStream(f->r2c, s));
    CUDA_CHECK(cufftSetStream(f->c2r, s));
    CUDA_CHECK(cudaMemcpyAsync(f->y, e, TC * sizeof(float), cudaMemcpyDeviceToDevice, s));
    CUDA_CHECK(cudaMemsetAsync(f->y + TC, 0, ((size_t)N - T) * C * sizeof(float), s));
    fft_spectrum_kernel<<<gpu_blocks((size_t)M * H, nt), nt, 0, s>>>(f->K, a, T, N, M, H);
    CUDA_LAUNCHED(s, "fft_spectrum_kernel");
    CUDA_CHECK(cufftExecR2C(f->r2c, f->y, (cufftComplex *)f->X));
    fft_apply_kernel<<<gpu_blocks((size_t)M * C, nt), nt, 0, s>>>(f->X, f->K, M, C, H);
    CUDA_LAUNCHED(s, "fft_apply_kernel");
    CUDA_CHECK(cufftExecC2R(f->c2r, (cufftComplex *)f->X, f->y));
    fft_finish_kernel<<<gpu_blocks(TC, nt), nt, 0, s>>>(e, f->y, a, TC, H);
    CUDA_LAUNCHED(s, "fft_finish_kernel");
}
