// scan_bench.c: milliseconds per call of each scan of src/grad/scan.h, e (T,B,H)
// with H = 1024, B = 32, T = 64 … 8192, for the stationary feedback a ~ U[0,1)
// (seq, blelloch, fft), the time-varying one of --feedback diag (a (T,B,H):
// seq, blelloch) and the low-rank one of --feedback lowrank:4 (seq, blelloch).
// The largest e is 1 GiB; the benchmark holds three such buffers. Median of 5
// timed calls after one warm-up; e is restored from a copy before every call,
// untimed.
//
//   make && cc -O3 -march=native -fopenmp -Isrc bench/scan_bench.c build/libdsf.a $(pkg-config --libs openblas fftw3f) -lm -o build/scan_bench
//   OMP_NUM_THREADS=2 build/scan_bench [max_T]
//
// The fft column reads n/a for a library built without FFTW.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/common.h"
#include "grad/scan.h"

enum { H = 1024, B = 32, REPS = 5 };

static int cmp_double(const void *x, const void *y) {
    double a = *(const double *)x, b = *(const double *)y;
    return (a > b) - (a < b);
}

enum { STAT_SEQ, STAT_BLELLOCH, STAT_FFT, VAR_SEQ, VAR_BLELLOCH, LR_SEQ, LR_BLELLOCH, NV };
static const char *const names[NV] = {"seq", "blelloch", "fft", "diag seq", "diag blel",
                                      "lr4 seq", "lr4 blel"};
enum { R = 4 };

typedef struct {
    const float *a, *avar, *u, *v;
    dsf_scan_cache cache;
} inputs;

static int call(int k, float *e, inputs *in, int T) {
    switch (k) {
    case STAT_SEQ:
    case STAT_BLELLOCH:
    case STAT_FFT: return dsf_scan_stationary((dsf_scan_kind)k, e, in->a, T, B, H);
    case VAR_SEQ: return dsf_scan_varying(DSF_SCAN_SEQ, e, in->avar, T, B, H);
    case VAR_BLELLOCH: return dsf_scan_varying(DSF_SCAN_BLELLOCH, e, in->avar, T, B, H);
    case LR_SEQ: return dsf_scan_lowrank(DSF_SCAN_SEQ, e, in->a, in->u, in->v, R, T, B, H, NULL);
    default:
        return dsf_scan_lowrank(DSF_SCAN_BLELLOCH, e, in->a, in->u, in->v, R, T, B, H, &in->cache);
    }
}

// Median milliseconds of REPS calls (the warm-up fills lowrank's cache of the
// powers of A, as the first training step does), or -1 where not available.
static double time_scan(int k, float *e, const float *e0, inputs *in, int T) {
    if (k == STAT_FFT && !dsf_scan_available(DSF_SCAN_FFT)) return -1;
    const size_t n = (size_t)T * B * H;
    double ms[REPS];
    for (int r = -1; r < REPS; r++) {
        memcpy(e, e0, sizeof(float) * n);
        double t0 = dsf_now();
        if (call(k, e, in, T)) {
            fprintf(stderr, "scan_bench: %s\n", dsf_error());
            exit(1);
        }
        if (r >= 0) ms[r] = (dsf_now() - t0) * 1e3;
    }
    qsort(ms, REPS, sizeof *ms, cmp_double);
    return ms[REPS / 2];
}

int main(int argc, char **argv) {
    const int max_t = argc > 1 ? atoi(argv[1]) : 8192;
    int threads = 1;
#ifdef _OPENMP
    threads = omp_get_max_threads();
#endif
    const size_t nmax = (size_t)max_t * B * H;
    float *e0 = dsf_alloc(sizeof(float) * nmax), *e = dsf_alloc(sizeof(float) * nmax);
    float *avar = dsf_alloc(sizeof(float) * nmax), a[H], u[H * R], v[H * R];
    if (!e0 || !e || !avar) {
        fprintf(stderr, "scan_bench: %s\n", dsf_error());
        return 1;
    }
    dsf_rng r;
    dsf_rng_seed(&r, 1);
    dsf_rng_fill_uniform(&r, e0, nmax, -1, 1);
    dsf_rng_fill_uniform(&r, a, H, 0, 1);
    dsf_rng_fill_uniform(&r, avar, nmax, 0, 1);
    dsf_rng_fill_uniform(&r, u, (size_t)H * R, -0.03f, 0.03f);
    dsf_rng_fill_uniform(&r, v, (size_t)H * R, -0.03f, 0.03f);
    inputs in = {a, avar, u, v, {0}};
    printf("# scans, H = %d, B = %d, %d threads, ms per call (median of %d); stationary a ~ "
           "U[0,1), diag: a (T,B,H), lr4: diag + rank-4 U Vt\n", H, B, threads, REPS);
    printf("%6s", "T");
    for (int k = 0; k < NV; k++) printf(" %10s", names[k]);
    printf(" %9s\n", "seq GB/s");
    for (int T = 64; T <= max_t; T *= 2) {
        double t[NV];
        for (int k = 0; k < NV; k++) t[k] = time_scan(k, e, e0, &in, T);
        // seq reads and writes e once: 8 bytes per element.
        double gbs = 8.0 * T * B * H / (t[0] * 1e-3) / 1e9;
        printf("%6d", T);
        for (int k = 0; k < NV; k++)
            if (t[k] < 0) printf(" %10s", "n/a");
            else printf(" %10.3f", t[k]);
        printf(" %9.1f\n", gbs);
        fflush(stdout);
    }
    dsf_scan_cache_free(&in.cache);
    dsf_free(e0);
    dsf_free(e);
    dsf_free(avar);
    return 0;
}
