// evaluate.c: see evaluate.h.
#include "evaluate.h"

#include <math.h>

#include "dist/dist.h"

double lm_evaluate_fn(dsf_eval_forward forward, void *ctx, int B_local, const dsf_tokens *tokens,
                      int T) {
    // This rank's streams are its share of the batch; the ranks' shares make it up.
    const int64_t B = (int64_t)dist_sum(B_local);
    const dist_streams mine = dist_rows(B, 1);  // a carried stream stays on its rank
    const int64_t count = mine.count;
    DSF_ASSERT(count == B_local);
    dsf_batcher bt;
    if (batcher_init(&bt, tokens, B, T)) return NAN;
    int32_t *x = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *xs = dsf_xmalloc(sizeof(int32_t) * (size_t)T * count);
    int32_t *ys = dsf_xmalloc(sizeof(int32_t) * (size_t)T * count);
    // Each rank's mean weighted by its share of the streams: with one process the
    // weight is exactly 1 and the sum is the one it always was.
    const double share = (double)count / (double)B;
    double total = 0;
    int64_t steps = 0;
    for (int64_t pos = 0; pos < bt.L - 1; pos += T) {
        int64_t t = batcher_get(&bt, pos, T, x, y);
        dist_take_streams(x, t, B, mine, xs);
        dist_take_streams(y, t, B, mine, ys);
        total += forward(ctx, xs, ys, (int)t) * (double)t * share;
        steps += t;
    }
    free(x);
    free(y);
    free(xs);
    free(ys);
    return dist_sum(total) / (double)steps;
}

typedef struct {
    const dsf_lm *m;
    dsf_lm_work *w;
} cpu_eval;

static double cpu_forward(void *ctx, const int32_t *x, const int32_t *y, int T) {
    cpu_eval *c = ctx;
    return lm_forward(c->m, c->w, x, y, T);
}

double lm_evaluate(const dsf_lm *m, dsf_lm_work *w, const dsf_tokens *tokens, int T) {
    lm_work_reset_state(w, &m->cfg);
    cpu_eval c = {m, w};
    const int no_grad = w->no_grad;
    w->no_grad = 1;  // no backward pass follows
    const double loss = lm_evaluate_fn(cpu_forward, &c, w->B, tokens, T);
    w->no_grad = no_grad;
    return loss;
}

double lm_evaluate_seqs_fn(dsf_eval_forward forward, void (*reset)(void *ctx), void *ctx,
                           int B_local, const dsf_tokens *tokens, int T, int32_t pad) {
    const int64_t B = (int64_t)dist_sum(B_local);
    const dist_streams mine = dist_rows(B, 0);  // long and short rows alike on every rank
    const int64_t count = mine.count;
    DSF_ASSERT(count == B_local);
    dsf_seq_batcher sb;
    if (seqbatch_init(&sb, tokens, B, T, pad)) return NAN;
    int32_t *x = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *xs = dsf_xmalloc(sizeof(int32_t) * (size_t)T * count);
    int32_t *ys = dsf_xmalloc(sizeof(int32_t) * (size_t)T * count);
    double total = 0, counted = 0;  // this rank's summed loss and counted targets
    for (int64_t k = 0; k < seqbatch_steps(&sb); k++) {
        const int64_t t = seqbatch_get(&sb, k, x, y);
        dist_take_streams(x, t, B, mine, xs);
        dist_take_streams(y, t, B, mine, ys);
        int64_t n = 0;
        for (int64_t r = 0; r < t * count; r++) n += ys[r] != DSF_IGNORE;
        if (n == 0) continue;  // this rank's rows are empty
        reset(ctx);
        total += forward(ctx, xs, ys, (int)t) * (double)n;
        counted += (double)n;
    }
    free(x);
    free(y);
    free(xs);
    free(ys);
    seqbatch_free(&sb);
    counted = dist_sum(counted);
    return counted > 0 ? dist_sum(total) / counted : 0.0;
}

static void cpu_reset(void *ctx) {
    cpu_eval *c = ctx;
    lm_work_reset_state(c->w, &c->m->cfg);
}

double lm_evaluate_seqs(const dsf_lm *m, dsf_lm_work *w, const dsf_tokens *tokens, int T,
                        int32_t pad) {
    cpu_eval c = {m, w};
    const int no_grad = w->no_grad, ragged = w->ragged;
    w->no_grad = 1;  // no backward pass follows
    w->ragged = 1;   // each batch from a zero state: padding is skipped (model/lm.h)
    const double loss = lm_evaluate_seqs_fn(cpu_forward, cpu_reset, &c, w->B, tokens, T, pad);
    w->no_grad = no_grad;
    w->ragged = ragged;
    return loss;
}
