// panel.h: the matrix product of a recurrent step, with the weights packed once.
//
//   C (M,N) += A (M,K) · op(B),   op(B) (K,N) packed into Bp
//
// A recurrent step multiplies a few rows (the batch) by a large weight matrix
// (W_hh), T times with the same weights. A general GEMM packs the weights again at
// every call, which at these shapes costs about as much as the product. Here
// op(B) is packed once per pass into panels of DSF_PANEL columns: panel p holds,
// for k = 0 … K−1, the DSF_PANEL values op(B)[k][DSF_PANEL·p …] (zeros past N),
// and each product streams the panels it is given, the rows of A broadcast from
// memory. The caller splits the panels among its threads (dsf_panel_gemm is
// serial), so that a thread can go on with the columns it produced without
// waiting for the others.
#ifndef DSF_PANEL_H
#define DSF_PANEL_H

#include <stddef.h>

#define DSF_PANEL 32

// Panels of an N-column matrix.
static inline int dsf_panel_count(int N) { return (N + DSF_PANEL - 1) / DSF_PANEL; }
// The columns [*c0, *c1) of panel p of an N-column matrix.
static inline void dsf_panel_columns(int p, int N, int *c0, int *c1) {
    *c0 = p * DSF_PANEL;
    *c1 = *c0 + DSF_PANEL < N ? *c0 + DSF_PANEL : N;
}
// Floats of a packed (K,N) matrix.
static inline size_t dsf_panel_floats(int K, int N) {
    return (size_t)K * DSF_PANEL * (size_t)dsf_panel_count(N);
}

// Packs op(B) (K,N) into Bp (dsf_panel_floats(K, N), 64-byte aligned): B is
// (K,N) with row stride ldb when !tb, (N,K) when tb. An orphaned `omp for` over
// the panels: called inside a parallel region the threads share the work (and
// meet at its end), outside it runs on the calling thread.
void dsf_panel_pack(const float *B, int ldb, int tb, int K, int N, float *Bp);

// The micro-kernel, chosen at run time (panel.c): "avx512", "avx2" or "generic".
// dsf_panel_init chooses the fastest the CPU has, or the one the environment
// variable DSF_KERNEL names; it returns -1 with the error set when DSF_KERNEL names
// no kernel or one the CPU lacks (the fastest is used then). The first product
// calls it if the program did not.
int dsf_panel_init(void);
const char *dsf_panel_kernel_name(void);
// Whether this CPU (and build) can run the named kernel.
int dsf_panel_kernel_supported(const char *name);
// Switches to the named kernel for every later product (tests compare them);
// returns 0, changing nothing, when the CPU lacks it.
int dsf_panel_use_kernel(const char *name);

// Columns [DSF_PANEL·p0, min(DSF_PANEL·p1, N)) of C (M,N) += A (M,K) · op(B),
// from the packed Bp. C points at column 0; ldc its row stride.
void dsf_panel_gemm(int M, int K, const float *A, int lda, const float *Bp, int p0, int p1, int N,
                    float *C, int ldc);

#endif
