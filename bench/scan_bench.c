// scan_bench.c: milliseconds per call of each scan of src/grad/scan.h, stationary
// feedback a ~ U[0,1), e (T,B,H) with H = 1024, B = 32, T = 64 … 8192 (the
// largest e is 1 GiB; the benchmark holds two). Median of 5 timed calls after
// one warm-up; e is restored from a copy before every call, untimed.
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

// Median milliseconds of REPS calls, or -1 where the scan is not available.
static double time_scan(dsf_scan_kind k, float *e, const float *e0, const float *a, int T) {
    if (!dsf_scan_available(k)) return -1;
    const size_t n = (size_t)T * B * H;
    double ms[REPS];
    for (int r = -1; r < REPS; r++) {
        memcpy(e, e0, sizeof(float) * n);
        double t0 = dsf_now();
        if (dsf_scan_stationary(k, e, a, T, B, H)) {
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
    float *e0 = dsf_alloc(sizeof(float) * nmax), *e = dsf_alloc(sizeof(float) * nmax), a[H];
    if (!e0 || !e) {
        fprintf(stderr, "scan_bench: %s\n", dsf_error());
        return 1;
    }
    dsf_rng r;
    dsf_rng_seed(&r, 1);
    dsf_rng_fill_uniform(&r, e0, nmax, -1, 1);
    dsf_rng_fill_uniform(&r, a, H, 0, 1);
    printf("# scans, stationary a ~ U[0,1), H = %d, B = %d, %d threads, ms (median of %d)\n", H,
           B, threads, REPS);
    printf("%6s %10s %10s %10s %12s\n", "T", "seq", "blelloch", "fft", "seq GB/s");
    for (int T = 64; T <= max_t; T *= 2) {
        double t[3];
        for (int k = 0; k < 3; k++) t[k] = time_scan((dsf_scan_kind)k, e, e0, a, T);
        // seq reads and writes e once: 8 bytes per element.
        double gbs = 8.0 * T * B * H / (t[0] * 1e-3) / 1e9;
        printf("%6d %10.3f %10.3f ", T, t[0], t[1]);
        if (t[2] < 0)
            printf("%10s", "n/a");
        else
            printf("%10.3f", t[2]);
        printf(" %12.1f\n", gbs);
        fflush(stdout);
    }
    dsf_free(e0);
    dsf_free(e);
    return 0;
}
