// test_tasks.c: ignored targets (DSF_IGNORE) in the model's loss and gradient,
// and the long-range task generators of data/tasks.h.
//   - the loss is the mean of the counted rows' losses; an all-ignored batch has
//     loss 0 and a zero gradient;
//   - BPTT with ignored targets against central differences of the forward pass;
//   - for every method (bptt, ft, dsf uniform, dsf diag) and cell, ignoring every
//     target of a stream gives the loss and gradient of the model without that
//     stream, and ignoring the last steps those of the shorter sequence;
//   - each task's sequences are what tasks.h says they are.
#include <string.h>

#include "data/tasks.h"
#include "grad/feedback.h"
#include "model/lm.h"
#include "test.h"

static void make_model(dsf_lm *m, dsf_cell cell, const char *feedback, int T) {
    dsf_lm_config cfg = {.V = 9, .E = 5, .H = 6, .L = 2, .cell = cell};
    DSF_ASSERT(lm_create(m, &cfg) == 0);
    dsf_rng rng;
    dsf_rng_seed(&rng, 31);
    dsf_rng_fill_uniform(&rng, m->params, m->n, -0.5f, 0.5f);
    dsf_feedback fb;
    DSF_ASSERT(dsf_feedback_parse(feedback, &fb) == 0);
    DSF_ASSERT(lm_set_feedback(m, &fb, &rng, T) == 0);
}

static double max_abs_diff(const float *a, const float *b, size_t n, double *amax) {
    double d = 0, m = 0;
    for (size_t i = 0; i < n; i++) {
        d = fmax(d, fabs((double)a[i] - b[i]));
        m = fmax(m, fabs((double)a[i]));
    }
    *amax = m;
    return d;
}

static void test_ignore_loss_is_mean_of_counted_rows(void) {
    enum { B = 3, T = 4 };
    dsf_lm m;
    make_model(&m, DSF_CELL_GRU, "uniform", T);
    int32_t x[B * T], y[B * T], yi[B * T];
    test_random_tokens(x, y, B * T, m.cfg.V, 3);
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
    lm_forward(&m, &w, x, y, T);
    float full[B * T];
    memcpy(full, w.row_loss, sizeof full);
    double sum = 0;
    int n = 0;
    for (int r = 0; r < B * T; r++) {
        yi[r] = r % 3 == 1 ? DSF_IGNORE : y[r];
        if (yi[r] != DSF_IGNORE) sum += full[r], n++;
    }
    lm_work_reset_state(&w, &m.cfg);
    double loss = lm_forward(&m, &w, x, yi, T);
    CHECK_CLOSE(loss, sum / n, 1e-6);
    for (int r = 0; r < B * T; r++) CHECK(w.row_loss[r] == (yi[r] == DSF_IGNORE ? 0 : full[r]));
    // Nothing counted: loss 0, no gradient.
    for (int r = 0; r < B * T; r++) yi[r] = DSF_IGNORE;
    lm_work_reset_state(&w, &m.cfg);
    CHECK(lm_forward(&m, &w, x, yi, T) == 0);
    lm_backward(&m, &w, DSF_METHOD_BPTT);
    for (size_t i = 0; i < m.n; i++) CHECK(m.grads[i] == 0);
    lm_work_destroy(&w);
    lm_destroy(&m);
}

// Central differences (ε = 1e-2) of the float forward pass against the BPTT
// gradient, every parameter, with a third of the targets ignored. A gradient
// scaled by 1/(T·B) instead of 1/count, or an ignored row's logits left in the
// gradient, is an error of the order of the gradient; the tolerance is 1% of each
// tensor's largest gradient element.
static void test_ignore_bptt_fd(void) {
    enum { B = 3, T = 5 };
    for (int cell = 0; cell < 3; cell++) {
        dsf_lm m;
        make_model(&m, (dsf_cell)cell, "uniform", T);
        int32_t x[B * T], y[B * T];
        test_random_tokens(x, y, B * T, m.cfg.V, 11);
        for (int r = 0; r < B * T; r++)
            if (r % 3 != 2) y[r] = DSF_IGNORE;
        dsf_lm_work w;
        DSF_ASSERT(lm_work_create(&w, &m.cfg, B, T) == 0);
        lm_forward(&m, &w, x, y, T);
        lm_backward(&m, &w, DSF_METHOD_BPTT);
        double worst = 0;
        for (int k = 0; k < m.ntensors; k++) {
            const dsf_param *p = &m.tensors[k];
            double gmax = 0, err = 0;
            for (size_t i = 0; i < p->numel; i++) gmax = fmax(gmax, fabs(m.grads[p->offset + i]));
            for (size_t i = 0; i < p->numel; i++) {
                float *v = &m.params[p->offset + i], keep = *v;
                const float eps = 1e-2f;
                *v = keep + eps;
                lm_work_reset_state(&w, &m.cfg);
                double lp = lm_forward(&m, &w, x, y, T);
                *v = keep - eps;
                lm_work_reset_state(&w, &m.cfg);
                double ln = lm_forward(&m, &w, x, y, T);
                *v = keep;
                err = fmax(err, fabs((lp - ln) / (2 * eps) - m.grads[p->offset + i]));
            }
            worst = fmax(worst, gmax > 0 ? err / gmax : 0);
        }
        lm_work_destroy(&w);
        lm_destroy(&m);
        CHECK_MSG(worst < 0.01, "%s: worst error %.3g of the tensor's largest gradient",
                  dsf_cell_name((dsf_cell)cell), worst);
    }
}

// Streams are independent, so a stream with every target ignored contributes
// nothing: the loss and gradient are those of the batch without it. And a target
// ignored at every stream's last steps leaves those of the shorter sequence. For
// every method, and under dsf for a stationary and a time-varying feedback.
static void test_ignore_equals_removed_rows(void) {
    enum { B = 3, T = 6, CUT = 2 };
    const struct { dsf_method meth; const char *fb; } runs[] = {
        {DSF_METHOD_BPTT, "uniform"}, {DSF_METHOD_FT, "uniform"},
        {DSF_METHOD_DSF, "uniform"}, {DSF_METHOD_DSF, "diag"}};
    for (int cell = 0; cell < 3; cell++)
        for (int k = 0; k < 4; k++) {
            dsf_lm m;
            make_model(&m, (dsf_cell)cell, runs[k].fb, T);
            int32_t x[B * T], y[B * T], yi[B * T], x2[2 * T], y2[2 * T];
            test_random_tokens(x, y, B * T, m.cfg.V, 5 + k);
            float *g = malloc(sizeof(float) * m.n);
            // Stream 1 ignored, against streams 0 and 2 alone.
            for (int t = 0; t < T; t++)
                for (int b = 0; b < B; b++) {
                    yi[t * B + b] = b == 1 ? DSF_IGNORE : y[t * B + b];
                    if (b != 1) {
                        x2[t * 2 + b / 2] = x[t * B + b];
                        y2[t * 2 + b / 2] = y[t * B + b];
                    }
                }
            double li = test_lm_grad(&m, x, yi, B, T, runs[k].meth);
            memcpy(g, m.grads, sizeof(float) * m.n);
            double lr = test_lm_grad(&m, x2, y2, 2, T, runs[k].meth);
            double gmax, d = max_abs_diff(g, m.grads, m.n, &gmax);
            const char *what = dsf_cell_name((dsf_cell)cell);
            CHECK_CLOSE(li, lr, 1e-6);
            CHECK_MSG(gmax > 0 && d <= 1e-5 * gmax, "%s %s %s, stream: |dg| %g of %g", what,
                      dsf_method_name(runs[k].meth), runs[k].fb, d, gmax);
            // The last CUT steps ignored, against T - CUT steps.
            memcpy(yi, y, sizeof yi);
            for (int r = (T - CUT) * B; r < T * B; r++) yi[r] = DSF_IGNORE;
            li = test_lm_grad(&m, x, yi, B, T, runs[k].meth);
            memcpy(g, m.grads, sizeof(float) * m.n);
            lr = test_lm_grad(&m, x, y, B, T - CUT, runs[k].meth);
            d = max_abs_diff(g, m.grads, m.n, &gmax);
            free(g);
            lm_destroy(&m);
            CHECK_CLOSE(li, lr, 1e-6);
            CHECK_MSG(gmax > 0 && d <= 1e-5 * gmax, "%s %s %s, steps: |dg| %g of %g", what,
                      dsf_method_name(runs[k].meth), runs[k].fb, d, gmax);
        }
}

// Every sequence of a batch, for each task and a few delays, checked against
// the definitions in tasks.h.
static void test_tasks_sequences(void) {
    enum { B = 64, K = DSF_TASK_COPY_K };
    const char *names[] = {"copy", "add", "recall"};
    const int delays[] = {0, 1, 7, 40};
    for (int k = 0; k < 3; k++)
        for (int di = 0; di < 4; di++) {
            const int D = delays[di];
            dsf_task t;
            CHECK(dsf_task_init(&t, names[k], D) == 0);
            CHECK(strcmp(dsf_task_name(t.kind), names[k]) == 0);
            const int T = t.T;
            CHECK(T == (k == 0 ? 2 * K + D : k == 1 ? D + 3 : D + 2));
            int32_t *x = malloc(sizeof(int32_t) * T * B), *y = malloc(sizeof(int32_t) * T * B);
            int32_t *x2 = malloc(sizeof(int32_t) * T * B), *y2 = malloc(sizeof(int32_t) * T * B);
            dsf_rng rng;
            dsf_rng_seed(&rng, 9);
            dsf_task_batch(&t, &rng, B, x, y);
            dsf_rng_seed(&rng, 9);
            dsf_task_batch(&t, &rng, B, x2, y2);
            int same = !memcmp(x, x2, sizeof(int32_t) * T * B) &&
                       !memcmp(y, y2, sizeof(int32_t) * T * B);
            int bad = 0, first_keys = 0;
            for (int b = 0; b < B; b++) {
#define X(s) x[(s) * B + b]
#define Y(s) y[(s) * B + b]
                int answers = 0;
                for (int s = 0; s < T; s++) {
                    bad += X(s) < 0 || X(s) >= t.V || Y(s) < DSF_IGNORE || Y(s) >= t.V;
                    answers += Y(s) != DSF_IGNORE;
                }
                bad += answers != t.answers;
                if (k == 0) {  // copy
                    for (int i = 0; i < K; i++) bad += X(i) > 7 || Y(K + D + i) != X(i);
                    for (int s = K; s < T; s++) bad += X(s) != (s == K + D ? 9 : 8);
                } else if (k == 1) {  // add
                    const int N = D + 2, half = (N + 1) / 2;
                    int marks = 0, sum = 0, lo = 0, hi = 0;
                    for (int s = 0; s < N; s++)
                        if (X(s) >= 10) marks++, sum += X(s) - 10, lo += s < half, hi += s >= half;
                    bad += marks != 2 || lo != 1 || hi != 1 || X(N) != 20 || Y(N) != 21 + sum;
                } else {  // recall
                    bad += X(0) > 7 || Y(D + 1) != X(0) || X(D + 1) != 16;
                    for (int s = 1; s <= D; s++) bad += X(s) < 8 || X(s) > 15;
                    first_keys |= 1 << X(0);
                }
#undef X
#undef Y
            }
            free(x);
            free(y);
            free(x2);
            free(y2);
            CHECK_MSG(same, "%s: not deterministic for a seed", names[k]);
            CHECK_MSG(bad == 0, "%s delay %d: %d violations", names[k], D, bad);
            CHECK(k != 2 || first_keys == 0xff);  // every key drawn in 64 sequences
        }
    dsf_task t;
    CHECK(dsf_task_init(&t, "copyy", 3) == -1 && strstr(dsf_error(), "unknown task 'copyy'"));
    CHECK(dsf_task_init(&t, "add", -1) == -1 && strstr(dsf_error(), "delay"));
    CHECK(dsf_task_init(&t, "add", DSF_TASK_MAX_DELAY + 1) == -1);
    CHECK(dsf_task_init(&t, "recall", DSF_TASK_MAX_DELAY) == 0);
}

void suite_tasks(void) {
    RUN(test_ignore_loss_is_mean_of_counted_rows);
    RUN(test_ignore_bptt_fd);
    RUN(test_ignore_equals_removed_rows);
    RUN(test_tasks_sequences);
}
