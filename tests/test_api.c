// test_api.c: the public header's tutorial, run as written on a tiny corpus.
#include <string.h>

#include "../include/dsf.h"
#include "test.h"

static void test_api_tutorial_trains(void) {
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, "builtin:recall:2", DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    dsf_lm_config cfg = {.V = vocab_size(c.vocab), .E = 8, .H = 16, .L = 2};
    dsf_lm m;
    CHECK(lm_create(&m, &cfg) == 0);
    dsf_rng rng;
    dsf_rng_seed(&rng, 1);
    lm_init_params(&m, &rng);
    dsf_feedback fb;
    CHECK(dsf_feedback_parse("linspace", &fb) == 0);
    CHECK(lm_set_feedback(&m, &fb, &rng, 16) == 0);
    dsf_lm_work w;
    CHECK(lm_work_create(&w, &cfg, 8, 16) == 0);
    dsf_batcher bt;
    CHECK(batcher_init(&bt, &c.split[DSF_SPLIT_TRAIN], 8, 16) == 0);
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_ADAMW, 0.01f, m.n) == 0);
    int32_t x[16 * 8], y[16 * 8];
    double first = 0, last = 0;
    for (int step = 0; step < 150; step++) {
        int64_t T = batcher_get(&bt, step * 16, 16, x, y);
        double loss = lm_forward(&m, &w, x, y, (int)T);
        lm_backward(&m, &w, DSF_METHOD_DSF);
        grad_clip(m.grads, m.n, 1.0);
        optim_step(&o, &m);
        if (step < 10) first += loss / 10;
        if (step >= 140) last += loss / 10;
    }
    optim_destroy(&o);
    lm_work_destroy(&w);
    lm_destroy(&m);
    corpus_free(&c);
    CHECK_MSG(last < first - 0.5, "loss %g -> %g", first, last);
}

void suite_api(void) { RUN(test_api_tutorial_trains); }
