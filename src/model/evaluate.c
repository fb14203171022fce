// evaluate.c: see evaluate.h.
#include "evaluate.h"

#include <math.h>

double lm_evaluate(const dsf_lm *m, dsf_lm_work *w, const dsf_tokens *tokens, int T) {
    dsf_batcher bt;
    if (batcher_init(&bt, tokens, w->B, T)) return NAN;
    int32_t *x = dsf_xmalloc(sizeof(int32_t) * (size_t)T * w->B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * w->B);
    lm_work_reset_state(w, &m->cfg);
    double total = 0;
    int64_t count = 0;
    for (int64_t pos = 0; pos < bt.L - 1; pos += T) {
        int64_t t = batcher_get(&bt, pos, T, x, y);
        total += lm_forward(m, w, x, y, (int)t) * (double)t;
        count += t;
    }
    free(x);
    free(y);
    return total / (double)count;
}
