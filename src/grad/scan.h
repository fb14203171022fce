// scan.h: the reverse linear recurrence at the heart of DSF, three ways.
//
//   δ_t = e_t + a_t ⊙ δ_{t+1},   δ_T = 0,   t = T−1 … 0
//
// computed in place on e (T,B,H), time-major: element (t,b,i) is e[(t*B+b)*H+i].
// The feedback is either stationary, a (H) the same at every step and batch row
// (DSF proper: δ_t = Σ_{j≥0} a^j ⊙ e_{t+j}), or time-varying, a (T,B,H) laid out
// like e, where a[(t*B+b)*H+i] multiplies δ_{t+1} in δ_t (the slice t = T−1 is
// never read).
//
//   seq       a reverse loop over T, vectorised over H, threads over b. O(T·B·H)
//             work, T sequential steps; no scratch.
//   blelloch  a chunked parallel scan threaded over time: the T steps are cut
//             into P chunks (P = OpenMP threads, at most T); each thread scans its
//             chunk alone and composes the chunk's pair (A, b) under
//             (a1,b1)∘(a2,b2) = (a1·a2, a1·b2 + b1) in reverse time; a short pass
//             over the P pairs gives each chunk the true δ at its right edge; a
//             second sweep adds that carry times the running product of a. About
//             2× the work of seq, T/P sequential steps. Scratch: 2·P·B·H floats,
//             allocated per call.
//   fft       stationary feedback only: per channel the correlation of e with the
//             kernel (1, a, a², …, a^{T−1}), zero-padded to N ≥ 2T (a 2,3,5,7-smooth
//             length), through FFTW single-precision r2c/c2r transforms. The kernel
//             spectrum is the closed form (1 − (aω)^T)/(1 − aω) evaluated in double,
//             so it is exact to float precision for every a, 1 and 0 included.
//             Channels with a = 0 are left untouched, so a = 0 gives e exactly.
//             O(T log T) work per channel. Scratch: per thread a few N·16 floats
//             and per call 5 (N/2+1) doubles of twiddles, allocated per call; the
//             FFTW plans are made (FFTW_ESTIMATE, deterministic) and destroyed per
//             call under an OpenMP critical section, as FFTW's planner is not
//             thread-safe. Only in builds with FFTW (DSF_USE_FFTW).
//
// All three agree to 1e-5 relative for a ~ U[0,1); near a = 1 over long T less
// (docs/FEEDBACK.md: at a = 0.9999, T = 10000, seq 6e-5, fft 6e-4; tests/test_scan.c).
// Every function returns
// 0, or -1 with dsf_error() set for what a user can cause: an unknown name, the
// fft scan in a build without FFTW or with a time-varying feedback, or memory.
#ifndef DSF_SCAN_H
#define DSF_SCAN_H

#define DSF_SCAN_MAX_RANK 256  // low-rank feedback: the largest r

typedef enum { DSF_SCAN_SEQ, DSF_SCAN_BLELLOCH, DSF_SCAN_FFT } dsf_scan_kind;

const char *dsf_scan_name(dsf_scan_kind k);            // "seq", "blelloch", "fft"
int dsf_scan_parse(const char *s, dsf_scan_kind *out);  // 0, or -1 with the error set
int dsf_scan_available(dsf_scan_kind k);                // 1 if this build has it

// Stationary feedback: e (T,B,H) in place, a (H).
int dsf_scan_stationary(dsf_scan_kind k, float *e, const float *a, int T, int B, int H);

// Time-varying feedback: e (T,B,H) in place, a (T,B,H). seq and blelloch only.
int dsf_scan_varying(dsf_scan_kind k, float *e, const float *a, int T, int B, int H);

// Low-rank feedback A = diag(a) + U Vᵀ (stationary, not diagonal): e (T,B,H) in
// place, a (H), u and v (H,r) row-major. seq and blelloch only.
//   seq       δ_t = e_t + a ⊙ δ_{t+1} + U (Vᵀ δ_{t+1}): O(H·r) a row and step, threads over b.
//   blelloch  the chunked scan above; within a chunk the same step, and the
//             carries across chunks through the dense powers A^len (len = ⌊T/P⌋ and
//             ⌊T/P⌋+1, by repeated squaring: 2·log2(len) H×H GEMMs), which cache
//             keeps between calls as long as a, u, v, H, r and len are the same.
// cache may be NULL (powers computed per call); dsf_scan_cache_free releases it.
typedef struct {
    float *pow;        // (2,H,H): A^len, A^(len+1)
    float *key;        // a, u, v the powers were computed from: (H + 2·H·r)
    int H, r, len;
} dsf_scan_cache;

int dsf_scan_lowrank(dsf_scan_kind k, float *e, const float *a, const float *u, const float *v,
                     int r, int T, int B, int H, dsf_scan_cache *cache);
void dsf_scan_cache_free(dsf_scan_cache *c);

#endif
