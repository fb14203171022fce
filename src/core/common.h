// common.h: errors, allocation, random numbers and clocks shared by every module.
//
// Errors a user can cause (bad flags, bad files, sizes) are reported by returning
// a non-zero status after calling dsf_error_set(); the command line prints
// dsf_error() as one line and exits non-zero. Only broken internal invariants
// abort, through DSF_ASSERT.
#ifndef DSF_COMMON_H
#define DSF_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#if defined(__GNUC__)
#define DSF_PRINTF(a, b) __attribute__((format(printf, a, b)))
#else
#define DSF_PRINTF(a, b)
#endif

// An elementwise hot loop compiled twice on x86-64, for the baseline ISA and for
// AVX2+FMA (x86-64-v3), the copy chosen when the program starts from the CPU
// (GCC and Clang function multi-versioning); elsewhere, or with NATIVE=1, once.
// The loops it marks are the cells' per-row gate functions (src/cell) and the
// softmax; each needs a name unique in the library even when static (Clang makes
// their resolvers global symbols).
#if defined(__x86_64__) && defined(__GNUC__) && defined(__linux__) && !defined(__AVX2__)
#define DSF_CLONES __attribute__((target_clones("arch=x86-64-v3", "default")))
#else
#define DSF_CLONES
#endif

// Sets the message of the last error (thread-local). Always returns -1 so that
// `return dsf_error_set(...)` reads naturally.
int dsf_error_set(const char *fmt, ...) DSF_PRINTF(1, 2);
const char *dsf_error(void);

// Internal invariants only: prints the location and aborts.
#define DSF_ASSERT(c)                                                              \
    do {                                                                           \
        if (!(c)) dsf_assert_fail(#c, __FILE__, __LINE__);                         \
    } while (0)
void dsf_assert_fail(const char *cond, const char *file, int line);

// Allocation. dsf_alloc returns 64-byte aligned, zeroed memory, or NULL with the
// error set (it never aborts: sizes may come from users). Free with dsf_free.
void *dsf_alloc(size_t nbytes);
void dsf_free(void *p);
// The bytes dsf_alloc has asked for since the process began (never less: frees
// are not counted); the tests hold the memory estimates (model/lm.h) to it.
size_t dsf_allocated_bytes(void);
// For small internal allocations whose failure is not a user error: aborts.
void *dsf_xmalloc(size_t nbytes);
void *dsf_xrealloc(void *p, size_t nbytes);
char *dsf_xstrdup(const char *s);

// Overflow-checked size arithmetic: returns 0 and sets the error on overflow.
int dsf_mul_size(size_t *out, size_t a, size_t b);

// Random numbers: xoshiro256** seeded through splitmix64. The state is four
// words so that it can be saved in a checkpoint and restored bit for bit.
typedef struct {
    uint64_t s[4];
} dsf_rng;

void dsf_rng_seed(dsf_rng *r, uint64_t seed);
uint64_t dsf_rng_u64(dsf_rng *r);
// Uniform float in [0, 1) with 24 random bits.
float dsf_rng_float(dsf_rng *r);
// Uniform double in [0, 1) with 53 random bits.
double dsf_rng_double(dsf_rng *r);
// Fills x[0..n) with uniform values in [lo, hi).
void dsf_rng_fill_uniform(dsf_rng *r, float *x, size_t n, float lo, float hi);
// Fills x[0..n) with normal values N(0, std²) (Box–Muller on two doubles a pair).
void dsf_rng_fill_normal(dsf_rng *r, float *x, size_t n, float std);

// Monotonic wall clock in seconds.
double dsf_now(void);

#endif
