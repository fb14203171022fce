// batch.h: the stateful language-model batching of docs/DESIGN.md §6, as PyTorch's
// batchify / get_batch in examples/word_language_model.
//
// The n tokens are cut into B streams of L = n / B tokens each (the last n % B
// tokens are dropped); stream b is ids[b*L .. b*L + L). A step takes the next T
// positions of every stream, and the state a step ends with starts the next one.
// With n = 26, B = 4, T = 3: L = 6, streams 0..5, 6..11, 12..17, 18..23, and an
// epoch is two steps, at positions 0 (T' = 3) and 3 (T' = 2, as position 5 has
// no next token to predict).
//
//     dsf_batcher bt;
//     if (batcher_init(&bt, &tokens, B, T)) fail(dsf_error());
//     for (int64_t pos = 0; pos < bt.L - 1; pos += T) {
//         int64_t t = batcher_get(&bt, pos, T, x, y);   // x, y are (t, B)
//         ...
//     }
#ifndef DSF_BATCH_H
#define DSF_BATCH_H

#include <stdint.h>

#include "corpus.h"

typedef struct {
    const int32_t *ids;  // the tokens (not owned)
    int64_t B, L;        // B streams of L tokens
} dsf_batcher;

// 0, or -1 with the error set when B or T is not positive or a stream would have
// fewer than 2 tokens (the tokens must number at least 2 B).
int batcher_init(dsf_batcher *bt, const dsf_tokens *t, int64_t B, int64_t T);
// Steps per epoch: ceil((L - 1) / T).
int64_t batcher_steps(const dsf_batcher *bt, int64_t T);
// The step at stream position pos (0 <= pos < L - 1, a multiple of T in an epoch):
// x[t*B + b] = stream b at pos + t and y[t*B + b] the token after it, time-major,
// for t < T' = min(T, L - 1 - pos). x and y hold T*B ids; returns T' (> 0).
int64_t batcher_get(const dsf_batcher *bt, int64_t pos, int64_t T, int32_t *x, int32_t *y);

// Sequence batching (--batching sentence): every sequence of a dsf_tokens with
// starts (corpus.h) is its own example from a zero state, as the authors' PTB
// loader makes them. Each epoch takes the sequences in a fresh order; batch k is
// the sequences order[kB .. kB + B) (the last one may have fewer: its other rows
// are empty). Each sequence is cut to its first T + 1 tokens, n_s of them; the
// batch runs T' = max n_s − 1 steps, with inputs x[t·B + b] = s[t] (pad_id past
// the sequence's end) and targets y[t·B + b] = s[t + 1], DSF_IGNORE (lm.h) past
// its end: padding carries no loss.
//
// The order of epoch e (from 0) for a run seeded with seed: a xoshiro256**
// generator (core/common.h) seeded with seed + 0x9E3779B97F4A7C15·(e + 1) (mod
// 2^64), then Fisher–Yates: for i = n−1 down to 1, j = next() mod (i + 1), swap
// order[i] and order[j]. Evaluation keeps the file's order. Then, within each
// batch of B, the sequences are put longest first (by their cut length; equal
// lengths keep that order): the same batches, in the rows' order that lets a
// ragged recurrence (model/lm.h, dsf_lm_work.ragged) run the real tokens only.
typedef struct {
    const dsf_tokens *t;  // not owned
    int64_t B, T;
    int32_t pad;
    int drop_last;        // an incomplete last batch is left out (the authors' chunks)
    int64_t *order;       // (nseq)
} dsf_seq_batcher;

// 0, or -1 with the error set (no sequences, or B, T not positive).
int seqbatch_init(dsf_seq_batcher *sb, const dsf_tokens *t, int64_t B, int64_t T, int32_t pad);
void seqbatch_free(dsf_seq_batcher *sb);
// order[0..n) ← the examples' order in epoch `epoch` of a run seeded with seed,
// as described above (the sentence batcher's, and `dsf classify`'s).
void dsf_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch);
// Batches per epoch: ceil(nseq / B), or floor with drop_last (set after init; at
// least 1: with fewer than B sequences the one batch is incomplete).
int64_t seqbatch_steps(const dsf_seq_batcher *sb);
// The order of epoch `epoch` (shuffle), or the file's order (shuffle 0), each
// batch's sequences longest first (above).
void seqbatch_order(dsf_seq_batcher *sb, int shuffle, uint64_t seed, int64_t epoch);
// Over the epoch in the current order: the targets that carry a loss, and the
// positions the recurrence runs (T'·B summed over the batches).
void seqbatch_fill(const dsf_seq_batcher *sb, int64_t *targets, int64_t *positions);
// Batch k of the current order into x, y ((T,B) each, time-major); returns T' >= 1.
int64_t seqbatch_get(const dsf_seq_batcher *sb, int64_t k, int32_t *x, int32_t *y);

#endif
