// batch.c: see batch.h.
#include "batch.h"

#include "core/common.h"

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
