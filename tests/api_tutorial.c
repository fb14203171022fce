// api_tutorial.c: include/dsf.h's tutorial as a program, built against an
// installed copy of the library by tests/install.sh (`#include <dsf.h>` and
// pkg-config only), and run in the tree by tests/test_api.c (which includes this
// file with DSF_TUTORIAL_NO_MAIN). It trains on the built-in recall corpus; the
// program exits 0 when the loss fell.
#include <dsf.h>
#include <stdio.h>

// The tutorial: the mean loss of the first and the last ten of 150 steps; 0, or
// -1 with dsf_error() set.
static int dsf_tutorial(double *first_loss, double *last_loss) {
    dsf_corpus c;
    if (corpus_load(&c, "builtin:recall:2", DSF_LEVEL_CHAR)) return -1;
    dsf_lm_config cfg = {.V = vocab_size(c.vocab), .E = 8, .H = 16, .L = 2};
    dsf_lm m;
    dsf_lm_work w;
    dsf_batcher bt;
    dsf_optim o;
    dsf_rng rng;
    dsf_feedback fb;
    dsf_rng_seed(&rng, 1);
    if (lm_create(&m, &cfg) || dsf_feedback_parse("linspace", &fb) ||
        lm_work_create(&w, &cfg, 8, 16) || batcher_init(&bt, &c.split[DSF_SPLIT_TRAIN], 8, 16) ||
        optim_create(&o, DSF_OPTIM_ADAMW, 0.01f, m.n))
        return -1;
    lm_init_params(&m, &rng);
    dsf_step s;
    if (lm_set_feedback(&m, &fb, &rng, 16) ||
        dsf_step_create(&s, &m, &w, &o, NULL, DSF_METHOD_DSF, 1.0))
        return -1;
    int32_t x[16 * 8], y[16 * 8];
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        int64_t T = batcher_get(&bt, step * 16, 16, x, y);
        dsf_step_result r;
        dsf_step_run(&s, &(dsf_batch){.x = x, .y = y, .T = (int)T}, &r);
        if (step < 10) first += r.loss / 10;
        if (step >= 140) last += r.loss / 10;
    }
    optim_destroy(&o);
    lm_work_destroy(&w);
    lm_destroy(&m);
    corpus_free(&c);
    *first_loss = first;
    *last_loss = last;
    return 0;
}

#ifndef DSF_TUTORIAL_NO_MAIN
int main(void) {
    double first, last;
    if (dsf_tutorial(&first, &last)) {
        fprintf(stderr, "%s\n", dsf_error());
        return 1;
    }
    printf("loss %.4f -> %.4f\n", first, last);
    return last < first - 0.5 ? 0 : 1;
}
#endif
