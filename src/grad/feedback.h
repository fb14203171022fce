// feedback.h: how the DSF feedback vector a (one per layer, H values) is chosen
// (docs/DESIGN.md §3). Each is fixed once set (drawn from the run's seed, or not
// drawn at all as linspace), but fit, which re-estimates a by its own rule; a is
// saved in checkpoints.
//
//   uniform[:lo,hi]  a_i ~ U[lo,hi), default [0,1]
//   linspace[:lo,hi] a_i = lo + (hi − lo)·i/(H−1), default [0,1]: the authors' code,
//                    A = diag(linspace(0, 1, H)), the same in every layer (not drawn)
//   zero             a_i = 0: DSF then equals FT exactly
//   identity         a_i = 1
//   const:c          a_i = c
//   ssm              a_i = exp(−1/τ_i), τ_i log-spaced from 1 to T: decays at every time scale
//   fit[:N]          a re-estimated every N steps (default 10) during training by the
//                    least-squares diagonal fit a_i = Σ (Jᵀδ)_i δ_i / Σ δ_i² over all rows of
//                    the step (one GEMM), moved towards it by an exponential average;
//                    starts at 0 (FT) and takes the first fit as it is
//   diag             the exact diagonal of J_{t+1} at every step and row: time-varying
//                    (a scan with a (T,B,H) feedback; not fft)
//   lowrank:r        A = diag(a) + U Vᵀ, a ~ U[0,1), U, V (H,r) fixed random with
//                    entries U(±s), s = √(3/(2rH)), so that Σ_j |u_j||v_j| ≈ 1/2 (not fft)
//
// Any of them but lowrank takes a suffix +K: K correction sweeps after the scan
// (grad/method.h), each one GEMM over all T·B rows and one more scan, that bring
// δ towards BPTT's: exact at the last K+1 steps, exactly BPTT for K >= T−1.
#ifndef DSF_FEEDBACK_H
#define DSF_FEEDBACK_H

#include "core/common.h"
#include "grad/scan.h"

typedef enum {
    DSF_FEEDBACK_UNIFORM,
    DSF_FEEDBACK_ZERO,
    DSF_FEEDBACK_IDENTITY,
    DSF_FEEDBACK_CONST,
    DSF_FEEDBACK_SSM,
    DSF_FEEDBACK_FIT,
    DSF_FEEDBACK_DIAG,
    DSF_FEEDBACK_LOWRANK,
    DSF_FEEDBACK_LINSPACE
} dsf_feedback_kind;

typedef struct {
    dsf_feedback_kind kind;
    float lo, hi;  // uniform and linspace bounds; const value in lo
    int rank;      // lowrank: r
    int every;     // fit: steps between re-estimates
    int refine;    // correction sweeps after the scan (the +K suffix; 0: DSF as it is)
} dsf_feedback;

#define DSF_REFINE_MAX 100000

#define DSF_FEEDBACK_MAX_RANK DSF_SCAN_MAX_RANK
#define DSF_FIT_RATE 0.1f  // fit: a ← a + rate (â − a) after the first fit

// Parses a --feedback value; 0, or -1 with the error set.
int dsf_feedback_parse(const char *s, dsf_feedback *out);
// Writes the canonical spelling (e.g. "uniform:0,1", "diag+2") into buf.
void dsf_feedback_format(const dsf_feedback *f, char *buf, size_t n);
// Fills a (H) for one layer; T is the training sequence length (for ssm). fit
// and diag start at 0; lowrank draws its diagonal here and U, V with
// dsf_feedback_fill_lowrank, after a, from the same generator.
void dsf_feedback_fill(const dsf_feedback *f, dsf_rng *rng, float *a, int H, int T);
void dsf_feedback_fill_lowrank(const dsf_feedback *f, dsf_rng *rng, float *u, float *v, int H);
// 1 when A is the same at every step (so that the fft scan applies): not diag, not lowrank.
int dsf_feedback_is_diagonal_stationary(const dsf_feedback *f);
// The largest a_i the feedback can hold at T steps (ssm's depends on T; lowrank's
// diagonal is below 1); NAN where the data decide it (fit, diag).
float dsf_feedback_max(const dsf_feedback *f, int T);
// +K sweeps over a feedback with channels above DSF_SWEEP_SAFE_A: the splitting's
// error can grow by about T·|J − a| a sweep before the exact steps reach it
// (docs/FEEDBACK.md, "+K at long T"). Writes a caution into buf and returns 1 for
// such a feedback, else 0.
#define DSF_SWEEP_SAFE_A 0.5f
int dsf_feedback_caution(const dsf_feedback *f, int T, char *buf, size_t n);

#endif
