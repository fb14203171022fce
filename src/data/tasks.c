// tasks.c: see tasks.h.
#include "tasks.h"

#include <string.h>

#include "model/lm.h"

static const char *const task_names[] = {"copy", "add", "recall"};

const char *dsf_task_name(dsf_task_kind k) { return (unsigned)k < 3 ? task_names[k] : "unknown"; }

int dsf_task_init(dsf_task *t, const char *name, int delay) {
    memset(t, 0, sizeof *t);
    int k = 0;
    while (k < 3 && strcmp(name, task_names[k]) != 0) k++;
    if (k == 3) return dsf_error_set("unknown task '%s' (expected copy, add or recall)", name);
    if (delay < 0 || delay > DSF_TASK_MAX_DELAY)
        return dsf_error_set("the delay must be between 0 and %d, got %d", DSF_TASK_MAX_DELAY,
                             delay);
    t->kind = (dsf_task_kind)k;
    t->delay = delay;
    switch (t->kind) {
    case DSF_TASK_COPY: t->T = 2 * DSF_TASK_COPY_K + delay, t->V = 10, t->answers = DSF_TASK_COPY_K; break;
    case DSF_TASK_ADD: t->T = delay + 3, t->V = 40, t->answers = 1; break;
    case DSF_TASK_RECALL: t->T = delay + 2, t->V = 17, t->answers = 1; break;
    }
    return 0;
}

double dsf_task_chance(const dsf_task *t) { return t->kind == DSF_TASK_ADD ? 0.1 : 0.125; }

// Uniform in [0, n), n < 2^32 (the multiply-shift map; its bias is below 2^-32·n).
static int below(dsf_rng *rng, int n) {
    return (int)(((dsf_rng_u64(rng) >> 32) * (uint64_t)n) >> 32);
}

void dsf_task_batch(const dsf_task *t, dsf_rng *rng, int B, int32_t *x, int32_t *y) {
    const int T = t->T, D = t->delay;
    for (size_t i = 0; i < (size_t)T * B; i++) y[i] = DSF_IGNORE;
#define X(step) x[(size_t)(step) * B + b]
#define Y(step) y[(size_t)(step) * B + b]
    for (int b = 0; b < B; b++) {
        switch (t->kind) {
        case DSF_TASK_COPY: {
            enum { K = DSF_TASK_COPY_K, BLANK = 8, GO = 9 };
            for (int i = 0; i < K; i++) X(i) = Y(K + D + i) = below(rng, 8);
            for (int s = K; s < T; s++) X(s) = BLANK;
            X(K + D) = GO;
            break;
        }
        case DSF_TASK_ADD: {
            enum { MARK = 10, EQ = 20, SUM = 21 };
            const int N = D + 2, half = (N + 1) / 2;
            for (int s = 0; s < N; s++) X(s) = below(rng, 10);
            const int i = below(rng, half), j = half + below(rng, N - half);
            Y(N) = SUM + X(i) + X(j);
            X(i) += MARK;
            X(j) += MARK;
            X(N) = EQ;
            break;
        }
        case DSF_TASK_RECALL: {
            enum { FILLER = 8, EQ = 16 };
            X(0) = Y(D + 1) = below(rng, 8);
            for (int s = 1; s <= D; s++) X(s) = FILLER + below(rng, 8);
            X(D + 1) = EQ;
            break;
        }
        }
    }
#undef X
#undef Y
}
