// evaluate.h: mean cross-entropy of a model over a token stream, with the same
// stateful batching as training (state carried across steps, reset at start).
#ifndef DSF_EVALUATE_H
#define DSF_EVALUATE_H

#include "data/batch.h"
#include "data/corpus.h"
#include "model/lm.h"

// w was created with the evaluation batch size and T. Returns the mean loss
// per predicted token, or NAN with the error set when the stream is too short.
// Under data-parallel training (dist/dist.h) it is a collective: w holds this
// rank's share of the batch (dist_share), and every rank gets the global mean.
double lm_evaluate(const dsf_lm *m, dsf_lm_work *w, const dsf_tokens *tokens, int T);

// The same over any forward pass (the CUDA backend's): forward(ctx, x, y, t)
// returns the mean loss of t steps of this rank's B_local streams (x, y (t,
// B_local)), carrying its state from call to call; the caller has reset that
// state.
typedef double (*dsf_eval_forward)(void *ctx, const int32_t *x, const int32_t *y, int T);
double lm_evaluate_fn(dsf_eval_forward forward, void *ctx, int B_local, const dsf_tokens *tokens,
                      int T);

// Sequence batching (batch.h's dsf_seq_batcher, the file's order, pad id pad):
// each batch from a zero state; the mean loss over every counted target of the
// split (the authors' figure: summed cross-entropy / counted tokens). Collective
// under data-parallel training as above, w holding this rank's streams dealt
// round robin (dist_deal: the rows of a batch come longest first).
double lm_evaluate_seqs(const dsf_lm *m, dsf_lm_work *w, const dsf_tokens *tokens, int T,
                        int32_t pad);
// The same over any forward pass; reset(ctx) zeroes its state before each batch.
double lm_evaluate_seqs_fn(dsf_eval_forward forward, void (*reset)(void *ctx), void *ctx,
                           int B_local, const dsf_tokens *tokens, int T, int32_t pad);

#endif
