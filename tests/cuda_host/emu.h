// emu.h: the CUDA backend's kernels on the host (tests/cuda_host/run.sh). The
// kernel files (src/cuda/*.cu), their launches rewritten to emu_launcher, are
// compiled as C++ with this header first: the CUDA qualifiers vanish, threadIdx
// and friends are globals that the runner sets, __syncthreads switches fibers.
#pragma once
#include <cuda_runtime.h>
#include <cublas_v2.h>
#include <cufft.h>
#include <functional>
#include <math.h>

#undef __global__
#undef __device__
#undef __host__
#undef __shared__
#undef __forceinline__
#define __global__
#define __device__
#define __host__
#define __shared__ static
#define __forceinline__ inline

extern uint3 emu_threadIdx, emu_blockIdx;
extern dim3 emu_blockDim, emu_gridDim;
#define threadIdx emu_threadIdx
#define blockIdx emu_blockIdx
#define blockDim emu_blockDim
#define gridDim emu_gridDim
void emu_syncthreads(void);
#define __syncthreads() emu_syncthreads()

// Runs body for every thread of the grid (blocks in sequence, the threads of a
// block as fibers that meet at __syncthreads), or, while s is being captured,
// records that for the graph's replay.
void emu_enqueue(cudaStream_t s, std::function<void()> op);
int emu_launch_check(dim3 grid, dim3 block, size_t shmem, const char *name);
void emu_run_grid(dim3 grid, dim3 block, const char *name, std::function<void()> body);

struct emu_launcher {
    dim3 grid, block;
    size_t shmem;
    cudaStream_t s;
    emu_launcher(dim3 g, dim3 b, size_t sh = 0, cudaStream_t st = 0) : grid(g), block(b), shmem(sh), s(st) {}
    template <typename K, typename... A> void operator()(K kernel, A... args) {
        if (emu_launch_check(grid, block, shmem, "kernel")) return;
        dim3 g = grid, b = block;
        emu_enqueue(s, [=]() { emu_run_grid(g, b, "kernel", [=]() { kernel(args...); }); });
    }
};
