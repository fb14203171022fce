// batch.h: the stateful language-model batching of DESIGN.md §5, as PyTorch's
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

#endif
