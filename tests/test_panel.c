// test_panel.c: the recurrent product's micro-kernels (src/core/panel.c). Each
// kernel this CPU has, against a double-precision product written here and
// against the generic kernel: rows that fill no tile, one tile and several with a
// remainder; panels full, partial and several; op(B) transposed or not; C added
// to, not overwritten. A kernel the CPU lacks is a skipped test, not a pass.
#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "core/panel.h"
#include "test.h"

// The worst relative error of kernel `name` over the shapes, and the worst
// difference from the generic kernel; -1 when the CPU lacks the kernel.
static int check_kernel(const char *name, double *worst_ref, double *worst_gen) {
    static const int Ms[] = {1, 2, 5, 6, 7, 8, 13, 32}, Ks[] = {1, 3, 64}, Ns[] = {1, 15, 17, 32, 45, 96};
    *worst_ref = *worst_gen = 0;
    if (!dsf_panel_kernel_supported(name)) return -1;
    dsf_rng r;
    dsf_rng_seed(&r, 91);
    for (size_t mi = 0; mi < sizeof Ms / sizeof *Ms; mi++)
        for (size_t ki = 0; ki < sizeof Ks / sizeof *Ks; ki++)
            for (size_t ni = 0; ni < sizeof Ns / sizeof *Ns; ni++)
                for (int tb = 0; tb < 2; tb++) {
                    const int M = Ms[mi], K = Ks[ki], N = Ns[ni], lda = K + 3, ldc = N + (tb ? 5 : 0);  // tight rows: ASan sees a write past C
                    float *A = dsf_xmalloc(sizeof(float) * M * lda);
                    float *B = dsf_xmalloc(sizeof(float) * K * N);
                    float *C[2], *Bp = dsf_alloc(sizeof(float) * dsf_panel_floats(K, N));
                    dsf_rng_fill_uniform(&r, A, (size_t)M * lda, -1, 1);
                    dsf_rng_fill_uniform(&r, B, (size_t)K * N, -1, 1);
                    for (int c = 0; c < 2; c++) {
                        C[c] = dsf_xmalloc(sizeof(float) * M * ldc);
                        for (int i = 0; i < M * ldc; i++) C[c][i] = 0.25f * (float)(i % 7);
                    }
                    dsf_panel_pack(B, tb ? K : N, tb, K, N, Bp);
                    const int np = dsf_panel_count(N);
                    DSF_ASSERT(dsf_panel_use_kernel(name));
                    dsf_panel_gemm(M, K, A, lda, Bp, 0, np, N, C[0], ldc);
                    DSF_ASSERT(dsf_panel_use_kernel("generic"));
                    for (int p = 0; p < np; p++)  // one panel a call, as the threads split them
                        dsf_panel_gemm(M, K, A, lda, Bp, p, p + 1, N, C[1], ldc);
                    for (int i = 0; i < M; i++)
                        for (int j = 0; j < ldc; j++) {
                            double ref = 0.25 * ((i * ldc + j) % 7);
                            if (j < N)
                                for (int k = 0; k < K; k++)
                                    ref += (double)A[i * lda + k] *
                                           (tb ? B[(size_t)j * K + k] : B[(size_t)k * N + j]);
                            const double got = C[0][i * ldc + j], gen = C[1][i * ldc + j];
                            *worst_ref = fmax(*worst_ref, fabs(got - ref) / fmax(1, fabs(ref)));
                            *worst_gen = fmax(*worst_gen, fabs(got - gen) / fmax(1, fabs(gen)));
                        }
                    free(A), free(B), free(C[0]), free(C[1]);
                    dsf_free(Bp);
                }
    dsf_panel_init();
    return 0;
}

static void run_kernel(const char *name) {
    double worst_ref, worst_gen;
    if (check_kernel(name, &worst_ref, &worst_gen) < 0) SKIP("this CPU has no %s", name);
    CHECK_MSG(worst_ref < 1e-5, "%s: %g from the double product", name, worst_ref);
    CHECK_MSG(worst_gen < 1e-5, "%s: %g from the generic kernel", name, worst_gen);
}

static void test_panel_avx512(void) { run_kernel("avx512"); }
static void test_panel_avx2(void) { run_kernel("avx2"); }
static void test_panel_generic(void) { run_kernel("generic"); }

// The choice: the fastest kernel the CPU has, DSF_KERNEL obeyed, a bad one refused.
static void test_panel_choice(void) {
    const char *old = getenv("DSF_KERNEL");
    char *saved = old ? dsf_xstrdup(old) : NULL;
    unsetenv("DSF_KERNEL");
    CHECK(dsf_panel_init() == 0);
    const char *best = dsf_panel_kernel_name();
    CHECK(dsf_panel_kernel_supported(best));
    if (dsf_panel_kernel_supported("avx512")) CHECK(strcmp(best, "avx512") == 0);
    else if (dsf_panel_kernel_supported("avx2")) CHECK(strcmp(best, "avx2") == 0);
    setenv("DSF_KERNEL", "generic", 1);
    CHECK(dsf_panel_init() == 0 && strcmp(dsf_panel_kernel_name(), "generic") == 0);
    setenv("DSF_KERNEL", "sse9", 1);
    CHECK(dsf_panel_init() < 0 && strstr(dsf_error(), "sse9"));
    CHECK(strcmp(dsf_panel_kernel_name(), best) == 0);  // the fastest then
    CHECK(!dsf_panel_use_kernel("sse9"));
    if (saved) setenv("DSF_KERNEL", saved, 1);
    else unsetenv("DSF_KERNEL");
    free(saved);
    dsf_panel_init();
}

void suite_panel(void) {
    RUN(test_panel_avx512);
    RUN(test_panel_avx2);
    RUN(test_panel_generic);
    RUN(test_panel_choice);
}
