// emu.cpp: the CUDA runtime, cuBLAS and cuFFT calls of the CUDA backend, on the
// host, and a runner for its kernels (tests/cuda_host/run.sh): the real kernel
// code and src/cuda/lm.cu's orchestration run on the CPU, so that the device
// tests (tests/test_cuda.c) run where there is no GPU. What it checks on the way:
//   - every device buffer ends at a guard page (an overrun faults) and starts
//     as NaN (a read of what was never written poisons the results);
//   - launch configurations and cuBLAS sizes and leading dimensions are valid;
//   - a block's threads are fibers that meet at __syncthreads; threads that
//     leave while others wait at a barrier are reported;
//   - stream capture records each operation with its arguments as a graph
//     would, and a synchronous call, the legacy default stream, a host copy or
//     an event record inside a capture aborts;
//   - cuFFT plans are carried out by FFTW with the same layout arguments.
// It cannot show races inside a kernel or the device's asynchrony; x86-64 only
// (the fiber switch is a few lines of assembly).
#include "emu.h"

#include <fftw3.h>
#include <map>
#include <set>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>
#include <vector>

uint3 emu_threadIdx, emu_blockIdx;
dim3 emu_blockDim, emu_gridDim;

static void die(const char *msg, const char *what = "") {
    fprintf(stderr, "cuda_host FATAL: %s %s\n", msg, what);
    abort();
}

// ---- streams, capture, graphs ----
struct CUstream_st {
    std::vector<std::function<void()>> *cap = nullptr;
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::vector<std::function<void()>> ops;
};
struct CUevent_st {
    long seq = -1;
};
static int capturing = 0;
static long event_seq = 0;
static cudaError_t last_error = cudaSuccess;
static int launches = 0;

static void no_capture(const char *call) {
    if (capturing) die("synchronous / legacy-stream call during stream capture:", call);
}

void emu_enqueue(cudaStream_t s, std::function<void()> op) {
    if (!s) {
        no_capture("work on the legacy default stream");
        op();
        return;
    }
    if (s->cap)
        s->cap->push_back(op);
    else
        op();
}

int emu_launch_check(dim3 g, dim3 b, size_t shmem, const char *name) {
    launches++;
    const unsigned long long nt = (unsigned long long)b.x * b.y * b.z;
    if (g.x == 0 || g.y == 0 || g.z == 0 || nt == 0 || nt > 1024 || g.y > 65535 || g.z > 65535 ||
        b.z > 64 || shmem > 48 * 1024) {
        fprintf(stderr, "cuda_host: invalid launch configuration grid (%u,%u,%u) block (%u,%u,%u)\n", g.x,
                g.y, g.z, b.x, b.y, b.z);
        last_error = cudaErrorInvalidConfiguration;
        return 1;
    }
    return 0;
}

// ---- fibers ----
enum { STACK = 256 * 1024 };
extern "C" void emu_switch(void **save_sp, void *new_sp);
asm(R"(
.text
.globl emu_switch
.type emu_switch,@function
emu_switch:
  pushq %rbp
  pushq %rbx
  pushq %r12
  pushq %r13
  pushq %r14
  pushq %r15
  movq %rsp, (%rdi)
  movq %rsi, %rsp
  popq %r15
  popq %r14
  popq %r13
  popq %r12
  popq %rbx
  popq %rbp
  ret
)");
struct fiber {
    void *sp;
    char *stack = nullptr;
    int state;  // 0 runnable, 1 at a barrier, 2 done
};
static void *sched_sp;
static fiber *cur;
static std::vector<fiber> pool;
static const std::function<void()> *cur_body;
static int early_exit_reported = 0;

void emu_syncthreads(void) {
    cur->state = 1;
    emu_switch(&cur->sp, sched_sp);
}

static void trampoline(void) {
    (*cur_body)();
    cur->state = 2;
    emu_switch(&cur->sp, sched_sp);
    abort();
}

void emu_run_grid(dim3 grid, dim3 block, const char *name, std::function<void()> body) {
    const unsigned nt = block.x * block.y * block.z;
    if (pool.size() < nt) {
        size_t old = pool.size();
        pool.resize(nt);
        for (size_t k = old; k < nt; k++) pool[k].stack = (char *)malloc(STACK);
    }
    const std::function<void()> *saved = cur_body;
    cur_body = &body;
    emu_gridDim = grid;
    emu_blockDim = block;
    // Fast path: a kernel whose thread (0,0) of block 0 meets no barrier is run
    // thread by thread without fibers (the kernels' barrier use is not data dependent).
    static std::map<const void *, int> nobarrier;
    (void)nobarrier;
    int plain = -1;
    for (unsigned bz = 0; bz < grid.z; bz++)
        for (unsigned by = 0; by < grid.y; by++)
            for (unsigned bx = 0; bx < grid.x; bx++) {
                if (plain == 1) {
                    for (unsigned t = 0; t < nt; t++) {
                        emu_blockIdx = {bx, by, bz};
                        emu_threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        emu_gridDim = grid;
                        emu_blockDim = block;
                        body();
                    }
                    continue;
                }
                for (unsigned t = 0; t < nt; t++) {
                    fiber &f = pool[t];
                    uintptr_t top = ((uintptr_t)f.stack + STACK) & ~(uintptr_t)15;
                    void **sp = (void **)top;
                    *--sp = 0;                       // fake return address of trampoline
                    *--sp = (void *)trampoline;      // ret target
                    for (int r = 0; r < 6; r++) *--sp = 0;  // rbp rbx r12-r15
                    f.sp = sp;
                    f.state = 0;
                }
                for (;;) {
                    int alive = 0, barrier = 0, done = 0;
                    for (unsigned t = 0; t < nt; t++) {
                        fiber &f = pool[t];
                        if (f.state == 2) continue;
                        emu_blockIdx = {bx, by, bz};
                        emu_threadIdx = {t % block.x, (t / block.x) % block.y, t / (block.x * block.y)};
                        emu_gridDim = grid;
                        emu_blockDim = block;
                        cur = &f;
                        f.state = 0;
                        emu_switch(&sched_sp, f.sp);
                        if (plain < 0) plain = f.state == 2;  // thread 0 ran to its end: no barrier
                    }
                    for (unsigned t = 0; t < nt; t++) {
                        alive += pool[t].state != 2;
                        barrier += pool[t].state == 1;
                        done += pool[t].state == 2;
                    }
                    if (!alive) break;
                    if (barrier && done && !early_exit_reported) {
                        early_exit_reported = 1;
                        fprintf(stderr, "cuda_host WARNING: %d threads exited while %d wait at a barrier\n",
                                done, barrier);
                    }
                }
            }
    cur_body = saved;
}

// ---- memory: every device buffer ends at a guard page; fresh memory is NaN ----
static std::map<void *, std::pair<void *, size_t>> allocs;  // ptr -> (base, mapped)
static long page;

static void *guarded_alloc(size_t bytes) {
    if (!page) page = sysconf(_SC_PAGESIZE);
    if (!bytes) bytes = 1;
    size_t b4 = (bytes + 3) & ~(size_t)3;
    size_t np = (b4 + page - 1) / page;
    size_t mapped = (np + 1) * page;
    char *base = (char *)mmap(NULL, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) return NULL;
    mprotect(base + np * page, page, PROT_NONE);
    char *p = base + np * page - b4;
    memset(p, 0xFF, b4);
    allocs[p] = {base, mapped};
    return p;
}
static void guarded_free(void *p) {
    auto it = allocs.find(p);
    if (it == allocs.end()) die("cudaFree of an unknown pointer");
    munmap(it->second.first, it->second.second);
    allocs.erase(it);
}

extern "C" {
cudaError_t cudaMalloc(void **p, size_t bytes) {
    no_capture("cudaMalloc");
    *p = guarded_alloc(bytes);
    return *p ? cudaSuccess : cudaErrorMemoryAllocation;
}
cudaError_t cudaFree(void *p) {
    no_capture("cudaFree");
    if (p) guarded_free(p);
    return cudaSuccess;
}
cudaError_t cudaHostAlloc(void **p, size_t bytes, unsigned int) {
    *p = malloc(bytes ? bytes : 1);
    return cudaSuccess;
}
cudaError_t cudaFreeHost(void *p) {
    free(p);
    return cudaSuccess;
}
cudaError_t cudaMemGetInfo(size_t *f, size_t *t) {
    *f = 1ull << 34;
    *t = 1ull << 35;
    return cudaSuccess;
}
cudaError_t cudaMemcpy(void *d, const void *s, size_t n, enum cudaMemcpyKind) {
    no_capture("cudaMemcpy");
    memcpy(d, s, n);
    return cudaSuccess;
}
cudaError_t cudaMemcpyAsync(void *d, const void *s, size_t n, enum cudaMemcpyKind k, cudaStream_t st) {
    if (k == cudaMemcpyHostToDevice || k == cudaMemcpyDeviceToHost) {
        if (st && st->cap) die("host copy captured into a graph");
        // host staging: copy the host side now, as a real async copy from pinned memory would read it later
    }
    emu_enqueue(st, [=]() { memcpy(d, s, n); });
    return cudaSuccess;
}
cudaError_t cudaMemcpy2DAsync(void *d, size_t dp, const void *s, size_t sp, size_t w, size_t h,
                              enum cudaMemcpyKind, cudaStream_t st) {
    if (w > dp || w > sp) die("cudaMemcpy2DAsync: width above pitch");
    emu_enqueue(st, [=]() {
        for (size_t r = 0; r < h; r++) memcpy((char *)d + r * dp, (const char *)s + r * sp, w);
    });
    return cudaSuccess;
}
cudaError_t cudaMemset(void *d, int v, size_t n) {
    no_capture("cudaMemset");
    memset(d, v, n);
    return cudaSuccess;
}
cudaError_t cudaMemsetAsync(void *d, int v, size_t n, cudaStream_t st) {
    emu_enqueue(st, [=]() { memset(d, v, n); });
    return cudaSuccess;
}
cudaError_t cudaStreamCreate(cudaStream_t *s) {
    *s = new CUstream_st;
    return cudaSuccess;
}
cudaError_t cudaStreamDestroy(cudaStream_t s) {
    delete s;
    return cudaSuccess;
}
cudaError_t cudaStreamSynchronize(cudaStream_t s) {
    if (s && s->cap) die("cudaStreamSynchronize on a capturing stream");
    no_capture("cudaStreamSynchronize");
    return cudaSuccess;
}
cudaError_t cudaStreamIsCapturing(cudaStream_t s, enum cudaStreamCaptureStatus *st) {
    *st = s && s->cap ? cudaStreamCaptureStatusActive : cudaStreamCaptureStatusNone;
    return cudaSuccess;
}
cudaError_t cudaStreamBeginCapture(cudaStream_t s, enum cudaStreamCaptureMode) {
    if (!s || s->cap) die("bad BeginCapture");
    s->cap = new std::vector<std::function<void()>>;
    capturing++;
    return cudaSuccess;
}
cudaError_t cudaStreamEndCapture(cudaStream_t s, cudaGraph_t *g) {
    if (!s || !s->cap) die("bad EndCapture");
    *g = new CUgraph_st;
    (*g)->ops = *s->cap;
    delete s->cap;
    s->cap = nullptr;
    capturing--;
    return cudaSuccess;
}
cudaError_t cudaGraphInstantiate(cudaGraphExec_t *e, cudaGraph_t g, unsigned long long) {
    *e = new CUgraphExec_st;
    (*e)->ops = g->ops;
    return cudaSuccess;
}
cudaError_t cudaGraphDestroy(cudaGraph_t g) {
    delete g;
    return cudaSuccess;
}
cudaError_t cudaGraphExecDestroy(cudaGraphExec_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaGraphLaunch(cudaGraphExec_t e, cudaStream_t s) {
    CUgraphExec_st *ex = e;
    emu_enqueue(s, [ex]() {
        for (auto &op : ex->ops) op();
    });
    return cudaSuccess;
}
cudaError_t cudaEventCreate(cudaEvent_t *e) {
    *e = new CUevent_st;
    return cudaSuccess;
}
cudaError_t cudaEventCreateWithFlags(cudaEvent_t *e, unsigned int) { return cudaEventCreate(e); }
cudaError_t cudaEventDestroy(cudaEvent_t e) {
    delete e;
    return cudaSuccess;
}
cudaError_t cudaEventRecord(cudaEvent_t e, cudaStream_t s) {
    if (s && s->cap) die("event recorded during capture");
    emu_enqueue(s, [e]() { e->seq = ++event_seq; });
    return cudaSuccess;
}
cudaError_t cudaEventSynchronize(cudaEvent_t) {
    no_capture("cudaEventSynchronize");
    return cudaSuccess;
}
cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t a, cudaEvent_t b) {
    if (a->seq < 0 || b->seq < 0) return cudaErrorInvalidResourceHandle;
    *ms = 0.001f * (float)(b->seq - a->seq);
    return cudaSuccess;
}
cudaError_t cudaGetLastError(void) {
    cudaError_t e = last_error;
    last_error = cudaSuccess;
    return e;
}
const char *cudaGetErrorString(cudaError_t e) {
    static char buf[64];
    snprintf(buf, sizeof buf, "cuda_host error %d", (int)e);
    return buf;
}
cudaError_t cudaGetDeviceCount(int *n) {
    *n = 1;
    return cudaSuccess;
}
cudaError_t cudaSetDevice(int) { return cudaSuccess; }
cudaError_t cudaGetDevice(int *d) {
    *d = 0;
    return cudaSuccess;
}
cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int) {
    memset(p, 0, sizeof *p);
    strcpy(p->name, "Mock GPU");
    p->major = 9;
    p->totalGlobalMem = 1ull << 35;
    return cudaSuccess;
}

// ---- cuBLAS ----
}
struct cublasContext {
    cudaStream_t s = 0;
    void *ws = nullptr;
};
extern "C" {
cublasStatus_t cublasCreate_v2(cublasHandle_t *h) {
    *h = new cublasContext;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasDestroy_v2(cublasHandle_t h) {
    delete h;
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetStream_v2(cublasHandle_t h, cudaStream_t s) {
    h->s = s;
    h->ws = nullptr;  // as cuBLAS: resets the workspace
    return CUBLAS_STATUS_SUCCESS;
}
cublasStatus_t cublasSetWorkspace_v2(cublasHandle_t h, void *ws, size_t) {
    h->ws = ws;
    return CUBLAS_STATUS_SUCCESS;
}
const char *cublasGetStatusString(cublasStatus_t) { return "cuda_host: cuBLAS error"; }
cublasStatus_t cublasSgemm_v2(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m,
                              int n, int k, const float *alpha, const float *A, int lda,
                              const float *B, int ldb, const float *beta, float *C, int ldc) {
    const int ar = ta == CUBLAS_OP_N ? m : k, br = tb == CUBLAS_OP_N ? k : n;
    if (m < 0 || n < 0 || k < 0 || lda < (ar > 1 ? ar : 1) || ldb < (br > 1 ? br : 1) ||
        ldc < (m > 1 ? m : 1)) {
        fprintf(stderr, "cuda_host: cublasSgemm invalid value m %d n %d k %d lda %d ldb %d ldc %d\n", m, n,
                k, lda, ldb, ldc);
        return CUBLAS_STATUS_INVALID_VALUE;
    }
    if (h->s && h->s->cap && !h->ws) die("cuBLAS captured without a workspace");
    const float al = *alpha, be = *beta;
    emu_enqueue(h->s, [=]() {
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                double s = 0;
                for (int p = 0; p < k; p++) {
                    const float a = ta == CUBLAS_OP_N ? A[i + (size_t)p * lda] : A[p + (size_t)i * lda];
                    const float b = tb == CUBLAS_OP_N ? B[p + (size_t)j * ldb] : B[j + (size_t)p * ldb];
                    s += (double)a * b;
                }
                float *c = &C[i + (size_t)j * ldc];
                *c = be == 0.0f ? (float)(al * s) : (float)(al * s + (double)be * *c);
            }
    });
    return CUBLAS_STATUS_SUCCESS;
}

// ---- cuFFT ----
}
struct mplan {
    int n = 0;
    long long is, id, os, od, batch;
    cufftType type;
    cudaStream_t s = 0;
};
static std::map<int, mplan> plans;
static int next_plan = 1;
extern "C" {
cufftResult cufftCreate(cufftHandle *p) {
    *p = next_plan++;
    plans[*p] = mplan();
    return CUFFT_SUCCESS;
}
cufftResult cufftDestroy(cufftHandle p) {
    if (!plans.erase(p)) die("cufftDestroy of an unknown plan");
    return CUFFT_SUCCESS;
}
cufftResult cufftSetStream(cufftHandle p, cudaStream_t s) {
    plans.at(p).s = s;
    return CUFFT_SUCCESS;
}
cufftResult cufftMakePlanMany64(cufftHandle p, int rank, long long *n, long long *inembed,
                                long long is, long long id, long long *onembed, long long os,
                                long long od, cufftType type, long long batch, size_t *work) {
    if (rank != 1) die("rank");
    mplan &q = plans.at(p);
    q.n = (int)n[0];
    q.is = is, q.id = id, q.os = os, q.od = od, q.type = type, q.batch = batch;
    *work = 0;
    return CUFFT_SUCCESS;
}
cufftResult cufftExecR2C(cufftHandle p, cufftReal *in, cufftComplex *out) {
    mplan q = plans.at(p);
    if (q.type != CUFFT_R2C) die("plan type");
    emu_enqueue(q.s, [=]() {
        int n = q.n;
        fftwf_plan f = fftwf_plan_many_dft_r2c(1, &n, (int)q.batch, in, NULL, (int)q.is, (int)q.id,
                                               (fftwf_complex *)out, NULL, (int)q.os, (int)q.od,
                                               FFTW_ESTIMATE | FFTW_UNALIGNED);
        fftwf_execute(f);
        fftwf_destroy_plan(f);
    });
    return CUFFT_SUCCESS;
}
cufftResult cufftExecC2R(cufftHandle p, cufftComplex *in, cufftReal *out) {
    mplan q = plans.at(p);
    if (q.type != CUFFT_C2R) die("plan type");
    emu_enqueue(q.s, [=]() {
        int n = q.n;
        fftwf_plan f = fftwf_plan_many_dft_c2r(1, &n, (int)q.batch, (fftwf_complex *)in, NULL,
                                               (int)q.is, (int)q.id, out, NULL, (int)q.os, (int)q.od,
                                               FFTW_ESTIMATE | FFTW_UNALIGNED);
        fftwf_execute(f);
        fftwf_destroy_plan(f);
    });
    return CUFFT_SUCCESS;
}
}
