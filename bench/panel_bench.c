// panel_bench.c: the recurrent step's matrix product, C (M,N) += A (M,K) · Bᵀ with
// M the batch, through dsf_sgemm (OpenBLAS, which packs B at every call) and
// through the packed-panel kernels of src/core/panel.h (B packed once, outside the
// timing, as the recurrence does), each micro-kernel this CPU has (avx512, avx2,
// generic), at the shapes of the speed targets, plus a large square dsf_sgemm for
// the peak. Best of 50 calls; the largest difference between the chosen kernel's
// result and dsf_sgemm's is printed as a check.
//
//   make panel-bench && build/panel_bench [threads]      (default 2)
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/gemm.h"
#include "core/panel.h"

#ifdef _OPENMP
#include <omp.h>
#endif

static double best_of(int reps, void (*f)(void *), void *ctx) {
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t = dsf_now();
        f(ctx);
        t = dsf_now() - t;
        if (t < best) best = t;
    }
    return best;
}

typedef struct {
    int M, N, K;
    float *A, *B, *C, *P;
} shape;

static void run_blas(void *p) {
    shape *s = p;
    dsf_sgemm(0, 1, s->M, s->N, s->K, 1.0f, s->A, s->K, s->B, s->K, 1.0f, s->C, s->N);
}

static void run_panel(void *p) {
    shape *s = p;
    const int np = dsf_panel_count(s->N);
#pragma omp parallel
    {
#ifdef _OPENMP
        const int t = omp_get_thread_num(), nt = omp_get_num_threads();
#else
        const int t = 0, nt = 1;
#endif
        dsf_panel_gemm(s->M, s->K, s->A, s->K, s->P, np * t / nt, np * (t + 1) / nt, s->N, s->C,
                       s->N);
    }
}

static void bench(int M, int N, int K, const char *what) {
    shape s = {M, N, K, dsf_alloc(sizeof(float) * M * K), dsf_alloc(sizeof(float) * N * K),
               dsf_alloc(sizeof(float) * M * N), dsf_alloc(sizeof(float) * dsf_panel_floats(K, N))};
    float *ref = dsf_alloc(sizeof(float) * M * N);
    dsf_rng r;
    dsf_rng_seed(&r, 1);
    dsf_rng_fill_uniform(&r, s.A, (size_t)M * K, -1, 1);
    dsf_rng_fill_uniform(&r, s.B, (size_t)N * K, -1, 1);
    dsf_panel_pack(s.B, K, 1, K, N, s.P);
    const double flop = 2.0 * M * N * K;
    double blas = flop / best_of(50, run_blas, &s) / 1e9;
    const char *names[] = {"avx512", "avx2", "generic"};
    double panel[3];
    for (int k = 0; k < 3; k++)
        panel[k] = dsf_panel_use_kernel(names[k]) ? flop / best_of(50, run_panel, &s) / 1e9 : NAN;
    dsf_panel_init();
    memset(ref, 0, sizeof(float) * M * N);
    memset(s.C, 0, sizeof(float) * M * N);
    dsf_sgemm(0, 1, M, N, K, 1.0f, s.A, K, s.B, K, 1.0f, ref, N);
    run_panel(&s);
    double diff = 0;
    for (size_t i = 0; i < (size_t)M * N; i++) diff = fmax(diff, fabs(ref[i] - s.C[i]));
    printf("%-28s %5d %5d %5d  %9.1f  %8.1f %8.1f %8.1f   %.1e\n", what, M, N, K, blas, panel[0],
           panel[1], panel[2], diff);
    dsf_free(s.A);
    dsf_free(s.B);
    dsf_free(s.C);
    dsf_free(s.P);
    dsf_free(ref);
}

int main(int argc, char **argv) {
    dsf_set_threads(argc > 1 ? atoi(argv[1]) : 2);
    if (dsf_panel_init() < 0) {
        fprintf(stderr, "panel_bench: %s\n", dsf_error());
        return 2;
    }
    printf("%d threads, %s; panel kernel %s; GFLOP/s, best of 50 (nan: not on this CPU)\n",
           dsf_get_threads(), dsf_blas_name(), dsf_panel_kernel_name());
    printf("%-28s %5s %5s %5s  %9s  %8s %8s %8s   %s\n", "product", "M", "N", "K", "dsf_sgemm",
           "avx512", "avx2", "generic", "max |diff|");
    bench(32, 3072, 1024, "forward step, H 1024");
    bench(32, 1024, 3072, "BPTT backward step, H 1024");
    bench(20, 1950, 650, "forward step, H 650");
    bench(20, 650, 1950, "BPTT backward step, H 650");
    shape sq = {2048, 2048, 2048, dsf_alloc(sizeof(float) << 22), dsf_alloc(sizeof(float) << 22),
                dsf_alloc(sizeof(float) << 22), NULL};
    printf("%-28s %5d %5d %5d  %9.1f\n", "square (the peak)", 2048, 2048, 2048,
           2.0 * 2048 * 2048 * 2048 / best_of(5, run_blas, &sq) / 1e9);
    dsf_free(sq.A);
    dsf_free(sq.B);
    dsf_free(sq.C);
    return 0;
}
