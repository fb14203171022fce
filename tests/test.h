// test.h: a minimal test harness. A suite is a function that calls RUN(test)
// for each of its tests; a test is a void function that uses CHECK*. The first
// failing CHECK reports its location and ends the test.
#ifndef DSF_TEST_H
#define DSF_TEST_H

#include <math.h>
#include <stdint.h>
#include <stdio.h>

#include "model/lm.h"

extern int test_passed, test_failed, test_skipped, test_current_failed, test_current_skipped;
void test_fail(const char *file, int line, const char *fmt, ...);
// Marks the current test skipped (what it needs is missing), with the reason.
void test_skip(const char *fmt, ...);
void test_run(const char *name, void (*fn)(void));
// Removes a file or a folder with everything in it (scratch files of tests).
void test_remove_tree(const char *path);

// x[i], y[i] for i < n drawn uniformly from [0, V), from seed.
void test_random_tokens(int32_t *x, int32_t *y, int n, int V, uint64_t seed);
// lm_forward on x, y (T,B) from a zero state, then lm_backward under meth: the
// gradient in m->grads; returns the loss.
double test_lm_grad(dsf_lm *m, const int32_t *x, const int32_t *y, int B, int T, dsf_method meth);

#define RUN(fn) test_run(#fn, fn)

// Ends the current test as skipped, saying why.
#define SKIP(...)                                                                  \
    do {                                                                           \
        test_skip(__VA_ARGS__);                                                    \
        return;                                                                    \
    } while (0)

#define CHECK(c)                                                                   \
    do {                                                                           \
        if (!(c)) {                                                                \
            test_fail(__FILE__, __LINE__, "%s", #c);                               \
            return;                                                                \
        }                                                                          \
    } while (0)

#define CHECK_MSG(c, ...)                                                          \
    do {                                                                           \
        if (!(c)) {                                                                \
            test_fail(__FILE__, __LINE__, __VA_ARGS__);                            \
            return;                                                                \
        }                                                                          \
    } while (0)

// |a - b| <= tol * max(1, |a|, |b|)
#define CHECK_CLOSE(a, b, tol)                                                     \
    do {                                                                           \
        double a_ = (double)(a), b_ = (double)(b);                                 \
        double s_ = fmax(1.0, fmax(fabs(a_), fabs(b_)));                           \
        if (!(fabs(a_ - b_) <= (tol) * s_)) {                                      \
            test_fail(__FILE__, __LINE__, "%s = %.9g vs %s = %.9g (tol %g)", #a, a_, \
                      #b, b_, (double)(tol));                                      \
            return;                                                                \
        }                                                                          \
    } while (0)

#endif
