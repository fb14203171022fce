// feedback.h: how the DSF feedback vector a (one per layer, H values) is chosen
// (DESIGN.md §3). Every choice is seeded and fixed; a is saved in checkpoints.
//
//   uniform[:lo,hi]  a_i ~ U[lo,hi), default [0,1]: the paper's choice
//   zero             a_i = 0: DSF then equals FT exactly
//   identity         a_i = 1
//   const:c          a_i = c
//   ssm              a_i = exp(−1/τ_i), τ_i log-spaced from 1 to T: decays at every time scale
#ifndef DSF_FEEDBACK_H
#define DSF_FEEDBACK_H

#include "core/common.h"

typedef enum {
    DSF_FEEDBACK_UNIFORM,
    DSF_FEEDBACK_ZERO,
    DSF_FEEDBACK_IDENTITY,
    DSF_FEEDBACK_CONST,
    DSF_FEEDBACK_SSM
} dsf_feedback_kind;

typedef struct {
    dsf_feedback_kind kind;
    float lo, hi;  // uniform bounds; const value in lo
} dsf_feedback;

// Parses a --feedback value; 0, or -1 with the error set.
int dsf_feedback_parse(const char *s, dsf_feedback *out);
// Writes the canonical spelling (e.g. "uniform:0,1") into buf.
void dsf_feedback_format(const dsf_feedback *f, char *buf, size_t n);
// Fills a (H) for one layer; T is the training sequence length (for ssm).
void dsf_feedback_fill(const dsf_feedback *f, dsf_rng *rng, float *a, int H, int T);

#endif
