// common.c: see common.h.
#include "common.h"

#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <string.h>
#include <time.h>

static _Thread_local char error_message[1024];

int dsf_error_set(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(error_message, sizeof error_message, fmt, ap);
    va_end(ap);
    return -1;
}

const char *dsf_error(void) { return error_message[0] ? error_message : "unknown error"; }

void dsf_assert_fail(const char *cond, const char *file, int line) {
    fprintf(stderr, "dsf: internal error: %s failed at %s:%d\n", cond, file, line);
    abort();
}

static _Atomic size_t allocated;

size_t dsf_allocated_bytes(void) { return atomic_load_explicit(&allocated, memory_order_relaxed); }

void *dsf_alloc(size_t nbytes) {
    if (nbytes == 0) nbytes = 1;
    size_t rounded = (nbytes + 63) & ~(size_t)63;
    if (rounded < nbytes) {
        dsf_error_set("allocation of %zu bytes overflows", nbytes);
        return NULL;
    }
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        dsf_error_set("out of memory: could not allocate %.1f MiB", (double)nbytes / (1 << 20));
        return NULL;
    }
    memset(p, 0, rounded);
    atomic_fetch_add_explicit(&allocated, nbytes, memory_order_relaxed);
    return p;
}

void dsf_free(void *p) { free(p); }

void *dsf_xmalloc(size_t nbytes) {
    void *p = malloc(nbytes ? nbytes : 1);
    if (!p) {
        fprintf(stderr, "dsf: out of memory (%zu bytes)\n", nbytes);
        abort();
    }
    return p;
}

void *dsf_xrealloc(void *p, size_t nbytes) {
    void *q = realloc(p, nbytes ? nbytes : 1);
    if (!q) {
        fprintf(stderr, "dsf: out of memory (%zu bytes)\n", nbytes);
        abort();
    }
    return q;
}

char *dsf_xstrdup(const char *s) {
    size_t n = strlen(s) + 1;
    char *d = dsf_xmalloc(n);
    memcpy(d, s, n);
    return d;
}

int dsf_mul_size(size_t *out, size_t a, size_t b) {
    if (a != 0 && b > SIZE_MAX / a) {
        dsf_error_set("size %zu x %zu overflows", a, b);
        return 0;
    }
    *out = a * b;
    return 1;
}

static uint64_t splitmix64(uint64_t *x) {
    uint64_t z = (*x += 0x9e3779b97f4a7c15ULL);
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
    return z ^ (z >> 31);
}

void dsf_rng_seed(dsf_rng *r, uint64_t seed) {
    for (int i = 0; i < 4; i++) r->s[i] = splitmix64(&seed);
}

static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

uint64_t dsf_rng_u64(dsf_rng *r) {
    uint64_t *s = r->s;
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

float dsf_rng_float(dsf_rng *r) { return (float)(dsf_rng_u64(r) >> 40) * 0x1.0p-24f; }

double dsf_rng_double(dsf_rng *r) { return (double)(dsf_rng_u64(r) >> 11) * 0x1.0p-53; }

void dsf_rng_fill_uniform(dsf_rng *r, float *x, size_t n, float lo, float hi) {
    for (size_t i = 0; i < n; i++) x[i] = lo + (hi - lo) * dsf_rng_float(r);
}

void dsf_rng_fill_normal(dsf_rng *r, float *x, size_t n, float std) {
    for (size_t i = 0; i < n; i += 2) {
        const double u1 = 1.0 - dsf_rng_double(r), u2 = dsf_rng_double(r);  // u1 in (0, 1]
        const double rad = std * sqrt(-2.0 * log(u1)), th = 6.283185307179586 * u2;
        x[i] = (float)(rad * cos(th));
        if (i + 1 < n) x[i + 1] = (float)(rad * sin(th));
    }
}

double dsf_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}
