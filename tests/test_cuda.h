// test_cuda.h: what the CUDA backend's two test files share (test_cuda.c, on a
// device; test_cuda_emulated.c, its element functions on the host): the error
// measure and the inputs of the scan tests.
#ifndef DSF_TEST_CUDA_H
#define DSF_TEST_CUDA_H

#include <stdlib.h>

#include "test.h"

// max |a − b| over max |b| (or the absolute difference when b is all zero).
static inline double rel_err(const float *a, const float *b, size_t n) {
    double d = 0, s = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        s = fmax(s, fabs((double)b[i]));
    }
    return s > 0 ? d / s : d;
}

static inline float *randn(dsf_rng *r, size_t n, float lo, float hi) {
    float *x = malloc(sizeof(float) * (n ? n : 1));
    dsf_rng_fill_uniform(r, x, n, lo, hi);
    return x;
}

// The shapes of the scan tests: T, B, H, chunks (clamped to T and 32).
static const int scan_shapes[][4] = {{1, 2, 3, 16},  {5, 2, 3, 16},  {37, 3, 5, 16},
                                     {100, 2, 33, 1}, {64, 1, 7, 32}, {1000, 1, 4, 16},
                                     {9, 2, 40, 64}};

// a with the edge values 0 and 1 among uniform ones.
static inline float *scan_feedback(dsf_rng *r, int H) {
    float *a = randn(r, H, 0, 1);
    a[0] = 0;
    if (H > 1) a[H - 1] = 1;
    return a;
}

#endif
