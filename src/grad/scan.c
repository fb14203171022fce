// scan.c: see scan.h. seq and blelloch take the feedback through two strides,
// so that one code path serves both: a at step t, batch row b is
// a + t*sa_t + b*sa_b, with (sa_t, sa_b) = (0, 0) for a stationary a (H) and
// (B·H, H) for a time-varying a (T,B,H).
#include "scan.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

#include "core/common.h"
#include "core/gemm.h"

#ifdef _OPENMP
#include <omp.h>
static int max_threads(void) { return omp_get_max_threads(); }
#else
static int max_threads(void) { return 1; }
#endif

#ifdef DSF_USE_FFTW
#include <fftw3.h>
#endif

static const char *const scan_names[] = {"seq", "blelloch", "fft"};

const char *dsf_scan_name(dsf_scan_kind k) {
    return (unsigned)k < 3 ? scan_names[k] : "unknown";
}

int dsf_scan_parse(const char *s, dsf_scan_kind *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, scan_names[i]) == 0) {
            *out = (dsf_scan_kind)i;
            return 0;
        }
    return dsf_error_set("unknown scan '%s' (expected seq, blelloch or fft)", s);
}

int dsf_scan_available(dsf_scan_kind k) {
    switch (k) {
    case DSF_SCAN_SEQ:
    case DSF_SCAN_BLELLOCH:
        return 1;
    case DSF_SCAN_FFT:
#ifdef DSF_USE_FFTW
        return 1;
#else
        return 0;
#endif
    }
    return 0;
}

// ---- seq: reverse loop over T, threads over b, vectorised over H ----

static void scan_seq(float *e, const float *a, size_t sa_t, size_t sa_b, int T, int B, int H) {
    const size_t BH = (size_t)B * H;
#pragma omp parallel for schedule(static) if (BH * T > 65536)
    for (int b = 0; b < B; b++)
        for (int t = T - 2; t >= 0; t--) {
            float *restrict d = e + t * BH + (size_t)b * H;
            const float *restrict next = d + BH;
            const float *restrict at = a + t * sa_t + b * sa_b;
            for (int i = 0; i < H; i++) d[i] += at[i] * next[i];
        }
}

// ---- blelloch: chunked over time ----
//
// Chunk c holds steps [t0, t1). Within it δ_t = l_t + (Π_{s=t}^{t1−1} a_s) δ_{t1},
// where l is the chunk's own scan from δ_{t1} = 0. So each chunk is the pair
// (A_c, b_c) = (Π_{s=t0}^{t1−1} a_s, l_{t0}), and the carries δ_{t1} of all
// chunks follow from right to left: carry_{P−1} = 0,
// carry_c = b_{c+1} + A_{c+1} carry_{c+1}.

static int chunk_start(int c, int P, int T) { return (int)((int64_t)c * T / P); }

static int scan_blelloch(float *e, const float *a, size_t sa_t, size_t sa_b, int T, int B,
                         int H) {
    const size_t BH = (size_t)B * H;
    int P = max_threads();
    if (P > T) P = T;
    if (P <= 1) {
        scan_seq(e, a, sa_t, sa_b, T, B, H);
        return 0;
    }
    size_t n;
    if (!dsf_mul_size(&n, (size_t)P * 2, BH) || !dsf_mul_size(&n, n, sizeof(float))) return -1;
    float *prod = dsf_alloc(n);  // (P,B,H): A_c, then the running product times the carry
    if (!prod) return -1;
    float *carry = prod + (size_t)P * BH;  // (P,B,H): δ at the right edge of chunk c

#pragma omp parallel num_threads(P)
    {
        // 1. Each chunk alone; A_c only where a carry pass needs it (0 < c < P−1).
#pragma omp for schedule(static)
        for (int c = 0; c < P; c++) {
            const int t0 = chunk_start(c, P, T), t1 = chunk_start(c + 1, P, T);
            const int want_prod = c > 0 && c < P - 1;
            for (int b = 0; b < B; b++) {
                float *restrict pc = prod + c * BH + (size_t)b * H;
                if (want_prod) memcpy(pc, a + (t1 - 1) * sa_t + b * sa_b, sizeof(float) * H);
                for (int t = t1 - 2; t >= t0; t--) {
                    float *restrict d = e + t * BH + (size_t)b * H;
                    const float *restrict next = d + BH;
                    const float *restrict at = a + t * sa_t + b * sa_b;
                    if (want_prod)
                        for (int i = 0; i < H; i++) {
                            d[i] += at[i] * next[i];
                            pc[i] *= at[i];
                        }
                    else
                        for (int i = 0; i < H; i++) d[i] += at[i] * next[i];
                }
            }
        }
        // 2. The carries, right to left over the chunks, in parallel over channels.
#pragma omp for schedule(static)
        for (size_t k0 = 0; k0 < BH; k0 += 1024) {
            const size_t k1 = k0 + 1024 < BH ? k0 + 1024 : BH;
            const float *first = e + (size_t)chunk_start(P - 1, P, T) * BH;
            float *cc = carry + (size_t)(P - 2) * BH;
            for (size_t k = k0; k < k1; k++) cc[k] = first[k];
            for (int c = P - 3; c >= 0; c--) {
                const float *bn = e + (size_t)chunk_start(c + 1, P, T) * BH;
                const float *an = prod + (size_t)(c + 1) * BH, *cn = carry + (size_t)(c + 1) * BH;
                cc = carry + (size_t)c * BH;
                for (size_t k = k0; k < k1; k++) cc[k] = bn[k] + an[k] * cn[k];
            }
        }
        // 3. Every chunk but the last: δ_t += (Π_{s=t}^{t1−1} a_s) carry_c.
#pragma omp for schedule(static)
        for (int c = 0; c < P - 1; c++) {
            const int t0 = chunk_start(c, P, T), t1 = chunk_start(c + 1, P, T);
            for (int b = 0; b < B; b++) {
                float *restrict p = carry + c * BH + (size_t)b * H;
                for (int t = t1 - 1; t >= t0; t--) {
                    float *restrict d = e + t * BH + (size_t)b * H;
                    const float *restrict at = a + t * sa_t + b * sa_b;
                    for (int i = 0; i < H; i++) {
                        p[i] *= at[i];
                        d[i] += p[i];
                    }
                }
            }
        }
    }
    dsf_free(prod);
    return 0;
}

// ---- low-rank: A = diag(a) + U Vᵀ ----

// d += A p for one row (H); s is scratch (r).
static void lowrank_madd(float *restrict d, const float *restrict p, const float *restrict a,
                         const float *restrict u, const float *restrict v, int r, int H,
                         float *restrict s) {
    for (int j = 0; j < r; j++) s[j] = 0;
    for (int i = 0; i < H; i++) {
        const float pi = p[i], *restrict vi = v + (size_t)i * r;
        for (int j = 0; j < r; j++) s[j] += vi[j] * pi;
    }
    for (int i = 0; i < H; i++) {
        const float *restrict ui = u + (size_t)i * r;
        float acc = a[i] * p[i];
        for (int j = 0; j < r; j++) acc += ui[j] * s[j];
        d[i] += acc;
    }
}

// The reverse scan over steps [t0, t1) of row b, from δ_{t1} = 0 (the row at t1−1 stays).
static void lowrank_chunk(float *e, const float *a, const float *u, const float *v, int r,
                          int t0, int t1, int b, int B, int H) {
    float s[DSF_SCAN_MAX_RANK];
    const size_t BH = (size_t)B * H;
    for (int t = t1 - 2; t >= t0; t--) {
        float *d = e + t * BH + (size_t)b * H;
        lowrank_madd(d, d + BH, a, u, v, r, H, s);
    }
}

// pow (2,H,H) = A^len, A^(len+1), by repeated squaring; scratch 3 H×H.
static int lowrank_powers(float *pow, const float *a, const float *u, const float *v, int r,
                          int len, int H) {
    const size_t HH = (size_t)H * H;
    float *buf = dsf_alloc(3 * HH * sizeof(float));
    if (!buf) return -1;
    float *A = buf, *base = buf + HH, *tmp = buf + 2 * HH, *R = pow;
    dsf_sgemm(0, 1, H, H, r, 1.0f, u, r, v, r, 0.0f, A, H);
    for (int i = 0; i < H; i++) A[(size_t)i * H + i] += a[i];
    memcpy(base, A, HH * sizeof(float));
    memset(R, 0, HH * sizeof(float));
    for (int i = 0; i < H; i++) R[(size_t)i * H + i] = 1;
    for (int n = len;;) {
        if (n & 1) {
            dsf_sgemm(0, 0, H, H, H, 1.0f, R, H, base, H, 0.0f, tmp, H);
            memcpy(R, tmp, HH * sizeof(float));
        }
        n >>= 1;
        if (!n) break;
        dsf_sgemm(0, 0, H, H, H, 1.0f, base, H, base, H, 0.0f, tmp, H);
        memcpy(base, tmp, HH * sizeof(float));
    }
    dsf_sgemm(0, 0, H, H, H, 1.0f, A, H, R, H, 0.0f, pow + HH, H);
    dsf_free(buf);
    return 0;
}

void dsf_scan_cache_free(dsf_scan_cache *c) {
    dsf_free(c->pow);
    dsf_free(c->key);
    memset(c, 0, sizeof *c);
}

// The powers for (a, u, v, len) from the cache, computed when it holds others.
static const float *cached_powers(dsf_scan_cache *c, const float *a, const float *u,
                                  const float *v, int r, int len, int H) {
    const size_t nk = (size_t)H + 2 * (size_t)H * r;
    if (c->pow && c->H == H && c->r == r && c->len == len &&
        memcmp(c->key, a, H * sizeof(float)) == 0 &&
        memcmp(c->key + H, u, (size_t)H * r * sizeof(float)) == 0 &&
        memcmp(c->key + H + (size_t)H * r, v, (size_t)H * r * sizeof(float)) == 0)
        return c->pow;
    dsf_scan_cache_free(c);
    c->pow = dsf_alloc(2 * (size_t)H * H * sizeof(float));
    c->key = dsf_alloc(nk * sizeof(float));
    if (!c->pow || !c->key || lowrank_powers(c->pow, a, u, v, r, len, H)) {
        dsf_scan_cache_free(c);
        return NULL;
    }
    memcpy(c->key, a, H * sizeof(float));
    memcpy(c->key + H, u, (size_t)H * r * sizeof(float));
    memcpy(c->key + H + (size_t)H * r, v, (size_t)H * r * sizeof(float));
    c->H = H, c->r = r, c->len = len;
    return c->pow;
}

static int scan_lowrank_blelloch(float *e, const float *a, const float *u, const float *v, int r,
                                 int T, int B, int H, dsf_scan_cache *cache) {
    const size_t BH = (size_t)B * H, HH = (size_t)H * H;
    int P = max_threads();
    if (P > T) P = T;
    const int len = T / P;  // every chunk has len or len + 1 steps
    dsf_scan_cache local = {0};
    dsf_scan_cache *c = cache ? cache : &local;
    const float *pow = P > 1 ? cached_powers(c, a, u, v, r, len, H) : NULL;
    float *carry = P > 1 ? dsf_alloc(((size_t)P * BH + (size_t)P * 2 * H) * sizeof(float)) : NULL;
    if (P > 1 && (!pow || !carry)) {
        dsf_free(carry);
        dsf_scan_cache_free(&local);
        return -1;
    }
    // 1. Each chunk alone (P = 1: the whole scan).
#pragma omp parallel for schedule(static) collapse(2) if (P > 1)
    for (int ch = 0; ch < P; ch++)
        for (int b = 0; b < B; b++)
            lowrank_chunk(e, a, u, v, r, chunk_start(ch, P, T), chunk_start(ch + 1, P, T), b, B, H);
    if (P > 1) {
        // 2. carry_c = δ at the right edge of chunk c = l_{t1} + A^len(c+1) carry_{c+1}:
        //    P − 2 GEMMs (B,H)×(H,H), in sequence.
        memcpy(carry + (size_t)(P - 2) * BH, e + (size_t)chunk_start(P - 1, P, T) * BH,
               BH * sizeof(float));
        for (int ch = P - 3; ch >= 0; ch--) {
            const int t1 = chunk_start(ch + 1, P, T), n = chunk_start(ch + 2, P, T) - t1;
            float *cc = carry + (size_t)ch * BH;
            memcpy(cc, e + (size_t)t1 * BH, BH * sizeof(float));
            dsf_sgemm(0, 1, B, H, H, 1.0f, cc + BH, H, pow + (n == len ? 0 : HH), H, 1.0f, cc, H);
        }
        // 3. Every chunk but the last: δ_t += A^(t1−t) carry_c.
        float *tmp = carry + (size_t)P * BH;
#pragma omp parallel num_threads(P)
        {
#ifdef _OPENMP
            float *p = tmp + (size_t)2 * H * omp_get_thread_num();
#else
            float *p = tmp;
#endif
            float *q = p + H, s[DSF_SCAN_MAX_RANK];
#pragma omp for schedule(static) collapse(2)
            for (int ch = 0; ch < P - 1; ch++)
                for (int b = 0; b < B; b++) {
                    const int t0 = chunk_start(ch, P, T), t1 = chunk_start(ch + 1, P, T);
                    float *pp = p, *qq = q;
                    memcpy(pp, carry + (size_t)ch * BH + (size_t)b * H, H * sizeof(float));
                    for (int t = t1 - 1; t >= t0; t--) {
                        memset(qq, 0, H * sizeof(float));
                        lowrank_madd(qq, pp, a, u, v, r, H, s);
                        float *d = e + t * BH + (size_t)b * H;
                        for (int i = 0; i < H; i++) d[i] += qq[i];
                        float *sw = pp;
                        pp = qq;
                        qq = sw;
                    }
                }
        }
    }
    dsf_free(carry);
    dsf_scan_cache_free(&local);
    return 0;
}

int dsf_scan_lowrank(dsf_scan_kind k, float *e, const float *a, const float *u, const float *v,
                     int r, int T, int B, int H, dsf_scan_cache *cache) {
    if (T <= 0 || B <= 0 || H <= 0) return 0;
    if (r < 1 || r > DSF_SCAN_MAX_RANK) return dsf_error_set("low-rank feedback of rank %d", r);
    switch (k) {
    case DSF_SCAN_SEQ:
#pragma omp parallel for schedule(static) if ((size_t)B * H * T > 65536)
        for (int b = 0; b < B; b++) lowrank_chunk(e, a, u, v, r, 0, T, b, B, H);
        return 0;
    case DSF_SCAN_BLELLOCH:
        return scan_lowrank_blelloch(e, a, u, v, r, T, B, H, cache);
    case DSF_SCAN_FFT:
        return dsf_error_set("the fft scan needs a diagonal stationary feedback (lowrank is not); "
                             "use --scan seq or blelloch");
    }
    return dsf_error_set("unknown scan %d", (int)k);
}

// ---- fft: per channel, the correlation with (1, a, …, a^{T−1}) ----

#ifdef DSF_USE_FFTW

// The smallest even 2,3,5,7-smooth length ≥ 2T (FFTW is fastest on those), or -1.
static int fft_length(int T) {
    for (int64_t n = 2 * (int64_t)T; n <= INT32_MAX; n += 2) {
        int64_t m = n;
        const int primes[] = {2, 3, 5, 7};
        for (int p = 0; p < 4; p++)
            while (m % primes[p] == 0) m /= primes[p];
        if (m == 1) return (int)n;
    }
    return -1;
}

// Twiddles, in double, for the closed-form kernel spectrum. With ω = e^{−2πi/N},
// φ_m = 2πm/N and θ_m = 2π((mT) mod N)/N:
//   K_m = Σ_{j<T} (aω^m)^j = (1 − a^T ω^{mT}) / (1 − a ω^m),
// with 1 − cos written as 2 sin²(·/2) so that a → 1, m → 0 loses nothing.
typedef struct {
    double *vers_phi, *sin_phi;           // 1 − cos φ_m, sin φ_m
    double *vers_th, *sin_th, *cos_th;  // 1 − cos θ_m, sin θ_m, cos θ_m
} fft_twiddles;

// conj(K_m)/N for the feedback a, m = 0 … M−1, into K (M complex, interleaved
// re, im): the spectrum that turns a convolution into e's correlation.
static void fft_kernel(float *K, double a, const fft_twiddles *tw, int T, int N) {
    const int M = N / 2 + 1;
    const double la = log1p(fabs(a) - 1.0);  // log|a|, exact near |a| = 1
    const double r = exp(T * la), one_minus_r = -expm1(T * la);
    const int flip = a < 0 && (T & 1);  // a^T = −|a|^T
    for (int m = 0; m < M; m++) {
        const double dr = (1.0 - a) + a * tw->vers_phi[m], di = a * tw->sin_phi[m];
        double ur, ui;
        if (!flip) {
            ur = one_minus_r + r * tw->vers_th[m];
            ui = r * tw->sin_th[m];
        } else {
            ur = 1.0 + r * tw->cos_th[m];
            ui = -r * tw->sin_th[m];
        }
        double kr = T, ki = 0;  // aω^m = 1: every term of the sum is 1
        if (dr != 0 || di != 0) {
            const double den = dr * dr + di * di;
            kr = (ur * dr + ui * di) / den;
            ki = (ui * dr - ur * di) / den;
        }
        K[2 * m] = (float)(kr / N);
        K[2 * m + 1] = (float)(-ki / N);
    }
}

static int scan_fft(float *e, const float *a, int T, int B, int H) {
    const int N = fft_length(T);
    if (N < 0) return dsf_error_set("the fft scan cannot handle T = %d; use --scan seq", T);
    const int M = N / 2 + 1;
    const size_t BH = (size_t)B * H;
    // Channels go through FFTW in tiles of w ≤ 16, each channel contiguous (w, N):
    // FFTW runs 1.5–2× faster on that layout than on (N, w) interleaved, worth the
    // transposing copies. Threads take whole tiles, so that each tile's kernel
    // spectrum is computed once and used for all B rows.
    int nt = max_threads();
    int w = (H + nt - 1) / nt;
    if (w > 16) w = 16;
    const int ntile = (H + w - 1) / w, wlast = H - (ntile - 1) * w;
    if (nt > ntile) nt = ntile;
    const size_t nx = ((size_t)N * w + 15) & ~(size_t)15, nX = ((size_t)2 * M * w + 15) & ~(size_t)15;
    const size_t slot = nx + 2 * nX;  // x (w,N) real; X, K (w,M) complex
    size_t bytes;
    if (!dsf_mul_size(&bytes, slot * nt + 5 * (size_t)M * 2, sizeof(float))) return -1;
    float *buf = dsf_alloc(bytes);
    if (!buf) return -1;
    double *twd = (double *)(buf + slot * nt);
    fft_twiddles tw = {twd, twd + M, twd + 2 * M, twd + 3 * M, twd + 4 * M};
    const double pi = 3.14159265358979323846;
    for (int m = 0; m < M; m++) {
        const int64_t q = (int64_t)m * T % N;
        const double sp = sin(pi * m / N), sq = sin(pi * (double)q / N);
        tw.vers_phi[m] = 2 * sp * sp;
        // sin φ as sin(π − φ) past π/2: exactly 0 at m = N/2 (a = −1 there: 1 − aω^m = 0).
        tw.sin_phi[m] = 4LL * m <= N ? sin(2 * pi * m / N) : sin(pi * (N - 2.0 * m) / N);
        tw.vers_th[m] = 2 * sq * sq;
        tw.sin_th[m] = sin(2 * pi * (double)q / N);
        tw.cos_th[m] = cos(2 * pi * (double)q / N);
    }

    // Plans for the two tile widths, on thread 0's buffers; every slot has the
    // same alignment, so the new-array execute functions may use any of them.
    fftwf_plan fwd[2], inv[2];
    const int widths[2] = {w, wlast};
#pragma omp critical(dsf_fftw_planner)
    for (int k = 0; k < 2; k++) {
        float *x = buf;
        fftwf_complex *X = (fftwf_complex *)(buf + nx);
        fwd[k] = fftwf_plan_many_dft_r2c(1, &N, widths[k], x, NULL, 1, N, X, NULL, 1, M,
                                         FFTW_ESTIMATE);
        inv[k] = fftwf_plan_many_dft_c2r(1, &N, widths[k], X, NULL, 1, M, x, NULL, 1, N,
                                         FFTW_ESTIMATE);
    }
    DSF_ASSERT(fwd[0] && inv[0] && fwd[1] && inv[1]);

#pragma omp parallel num_threads(nt)
    {
#ifdef _OPENMP
        float *x = buf + slot * omp_get_thread_num();
#else
        float *x = buf;
#endif
        float *X = x + nx, *K = X + nX;
#pragma omp for schedule(dynamic, 1)
        for (int tile = 0; tile < ntile; tile++) {
            const int i0 = tile * w, wt = tile == ntile - 1 ? wlast : w, p = wt != w;
            const float *at = a + i0;
            for (int c = 0; c < wt; c++) fft_kernel(K + 2 * (size_t)c * M, at[c], &tw, T, N);
            for (int b = 0; b < B; b++) {
                for (int t = 0; t < T; t++) {
                    const float *restrict et = e + t * BH + (size_t)b * H + i0;
                    for (int c = 0; c < wt; c++) x[(size_t)c * N + t] = et[c];
                }
                for (int c = 0; c < wt; c++)
                    memset(x + (size_t)c * N + T, 0, sizeof(float) * (size_t)(N - T));
                fftwf_execute_dft_r2c(fwd[p], x, (fftwf_complex *)X);
                for (size_t k = 0; k < (size_t)M * wt; k++) {
                    const float xr = X[2 * k], xi = X[2 * k + 1], kr = K[2 * k], ki = K[2 * k + 1];
                    X[2 * k] = xr * kr - xi * ki;
                    X[2 * k + 1] = xr * ki + xi * kr;
                }
                fftwf_execute_dft_c2r(inv[p], (fftwf_complex *)X, x);
                // a = 0 leaves e as it is, exactly (DSF with a = 0 must be FT).
                for (int t = 0; t < T; t++) {
                    float *restrict d = e + t * BH + (size_t)b * H + i0;
                    for (int c = 0; c < wt; c++) d[c] = at[c] != 0 ? x[(size_t)c * N + t] : d[c];
                }
            }
        }
    }

#pragma omp critical(dsf_fftw_planner)
    for (int k = 0; k < 2; k++) {
        fftwf_destroy_plan(fwd[k]);
        fftwf_destroy_plan(inv[k]);
    }
    dsf_free(buf);
    return 0;
}

#endif  // DSF_USE_FFTW

// ---- entry points ----

int dsf_scan_stationary(dsf_scan_kind k, float *e, const float *a, int T, int B, int H) {
    if (T <= 0 || B <= 0 || H <= 0) return 0;
    switch (k) {
    case DSF_SCAN_SEQ:
        scan_seq(e, a, 0, 0, T, B, H);
        return 0;
    case DSF_SCAN_BLELLOCH:
        return scan_blelloch(e, a, 0, 0, T, B, H);
    case DSF_SCAN_FFT:
#ifdef DSF_USE_FFTW
        return scan_fft(e, a, T, B, H);
#else
        return dsf_error_set("this build has no FFTW (apt-get install libfftw3-dev, then make)");
#endif
    }
    return dsf_error_set("unknown scan %d", (int)k);
}

int dsf_scan_varying(dsf_scan_kind k, float *e, const float *a, int T, int B, int H) {
    if (T <= 0 || B <= 0 || H <= 0) return 0;
    const size_t BH = (size_t)B * H;
    switch (k) {
    case DSF_SCAN_SEQ:
        scan_seq(e, a, BH, (size_t)H, T, B, H);
        return 0;
    case DSF_SCAN_BLELLOCH:
        return scan_blelloch(e, a, BH, (size_t)H, T, B, H);
    case DSF_SCAN_FFT:
        return dsf_error_set("the fft scan needs a stationary feedback (diag is not); use --scan "
                             "seq or blelloch");
    }
    return dsf_error_set("unknown scan %d", (int)k);
}
