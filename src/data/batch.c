// batch.c: see batch.h.
#include "batch.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"
#include "model/lm.h"

int batcher_init(dsf_batcher *bt, const dsf_tokens *t, int64_t B, int64_t T) {
    bt->ids = NULL;
    bt->B = bt->L = 0;
    if (B < 1 || T < 1)
        return dsf_error_set("batch size %lld and sequence length %lld must be positive",
                             (long long)B, (long long)T);
    int64_t L = t->n / B;
    if (L < 2)
        return dsf_error_set("%lld tokens are too few for batch %lld and sequence %lld: "
                             "they need at least %lld (2 per stream)",
                             (long long)t->n, (long long)B, (long long)T,
                             B > INT64_MAX / 2 ? (long long)INT64_MAX : (long long)(2 * B));
    bt->ids = t->ids;
    bt->B = B;
    bt->L = L;
    return 0;
}

int64_t batcher_steps(const dsf_batcher *bt, int64_t T) {
    DSF_ASSERT(T >= 1);
    return (bt->L - 1 + T - 1) / T;
}

int64_t batcher_get(const dsf_batcher *bt, int64_t pos, int64_t T, int32_t *x, int32_t *y) {
    DSF_ASSERT(T >= 1 && pos >= 0 && pos < bt->L - 1);
    const int64_t B = bt->B, L = bt->L;
    int64_t tn = L - 1 - pos < T ? L - 1 - pos : T;
    for (int64_t b = 0; b < B; b++) {
        const int32_t *s = bt->ids + b * L + pos;
        for (int64_t t = 0; t < tn; t++) {
            x[t * B + b] = s[t];
            y[t * B + b] = s[t + 1];
        }
    }
    return tn;
}

int seqbatch_init(dsf_seq_batcher *sb, const dsf_tokens *t, int64_t B, int64_t T, int32_t pad) {
    memset(sb, 0, sizeof *sb);
    if (B < 1 || T < 1)
        return dsf_error_set("batch size %lld and sequence length %lld must be positive",
                             (long long)B, (long long)T);
    if (!t->starts || t->nseq < 1) return dsf_error_set("no sequences to batch");
    if (!(sb->order = dsf_alloc(sizeof(int64_t) * (size_t)t->nseq))) return -1;
    sb->t = t;
    sb->B = B;
    sb->T = T;
    sb->pad = pad;
    seqbatch_order(sb, 0, 0, 0);
    return 0;
}

void seqbatch_free(dsf_seq_batcher *sb) {
    dsf_free(sb->order);
    memset(sb, 0, sizeof *sb);
}

int64_t seqbatch_steps(const dsf_seq_batcher *sb) {
    const int64_t n = sb->t->nseq, B = sb->B;
    return sb->drop_last && n >= B ? n / B : (n + B - 1) / B;
}

void dsf_epoch_order(int64_t *order, int64_t n, uint64_t seed, int64_t epoch) {
    for (int64_t i = 0; i < n; i++) order[i] = i;
    dsf_rng r;
    dsf_rng_seed(&r, seed + 0x9E3779B97F4A7C15ull * (uint64_t)(epoch + 1));
    for (int64_t i = n - 1; i > 0; i--) {
        const int64_t j = (int64_t)(dsf_rng_u64(&r) % (uint64_t)(i + 1));
        const int64_t tmp = order[i];
        order[i] = order[j];
        order[j] = tmp;
    }
}

// Sequence s's length as a batch uses it: cut to T + 1 tokens.
static int64_t cut_len(const dsf_seq_batcher *sb, int64_t s) {
    const int64_t len = sb->t->starts[s + 1] - sb->t->starts[s];
    return len > sb->T + 1 ? sb->T + 1 : len;
}

void seqbatch_order(dsf_seq_batcher *sb, int shuffle, uint64_t seed, int64_t epoch) {
    const int64_t n = sb->t->nseq;
    if (shuffle)
        dsf_epoch_order(sb->order, n, seed, epoch);
    else
        for (int64_t i = 0; i < n; i++) sb->order[i] = i;
    // Each batch longest first, ties in the order above (a stable insertion sort).
    for (int64_t k0 = 0; k0 < n; k0 += sb->B) {
        const int64_t k1 = n - k0 < sb->B ? n : k0 + sb->B;
        for (int64_t i = k0 + 1; i < k1; i++) {
            const int64_t s = sb->order[i], len = cut_len(sb, s);
            int64_t j = i;
            for (; j > k0 && cut_len(sb, sb->order[j - 1]) < len; j--) sb->order[j] = sb->order[j - 1];
            sb->order[j] = s;
        }
    }
}

void seqbatch_fill(const dsf_seq_batcher *sb, int64_t *targets, int64_t *positions) {
    *targets = *positions = 0;
    for (int64_t k = 0; k < seqbatch_steps(sb); k++) {
        int64_t longest = 1;
        for (int64_t b = k * sb->B; b < (k + 1) * sb->B && b < sb->t->nseq; b++) {
            const int64_t s = sb->order[b];
            int64_t len = sb->t->starts[s + 1] - sb->t->starts[s];
            if (len > sb->T + 1) len = sb->T + 1;
            *targets += len - 1;
            if (len - 1 > longest) longest = len - 1;
        }
        *positions += longest * sb->B;
    }
}

int64_t seqbatch_get(const dsf_seq_batcher *sb, int64_t k, int32_t *x, int32_t *y) {
    const int64_t B = sb->B, first = k * B, n = sb->t->nseq;
    DSF_ASSERT(k >= 0 && first < n);
    const int64_t rows = n - first < B ? n - first : B;
    int64_t Tb = 1;  // the batch's steps: the longest cut sequence, less one
    for (int64_t b = 0; b < rows; b++) {
        const int64_t s = sb->order[first + b];
        int64_t len = sb->t->starts[s + 1] - sb->t->starts[s];
        if (len > sb->T + 1) len = sb->T + 1;
        if (len - 1 > Tb) Tb = len - 1;
    }
    for (int64_t i = 0; i < Tb * B; i++) x[i] = sb->pad, y[i] = DSF_IGNORE;
    for (int64_t b = 0; b < rows; b++) {
        const int64_t s = sb->order[first + b];
        const int32_t *ids = sb->t->ids + sb->t->starts[s];
        int64_t len = sb->t->starts[s + 1] - sb->t->starts[s];
        if (len > Tb + 1) len = Tb + 1;
        for (int64_t t = 0; t < len && t < Tb; t++) x[t * B + b] = ids[t];
        for (int64_t t = 0; t + 1 < len; t++) y[t * B + b] = ids[t + 1];
    }
    return Tb;
}
