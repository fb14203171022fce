// test_optim.c: clipping, SGD, AdamW and the schedules against hand computations;
// the feedback choices.
#include <string.h>

#include "grad/feedback.h"
#include "optim/optim.h"
#include "test.h"

static void test_optim_clip(void) {
    enum { N = 40000 };  // several chunks
    float *g = malloc(sizeof(float) * N);
    double ss = 0;
    for (int i = 0; i < N; i++) {
        g[i] = (float)((i % 7) - 3) * 0.01f;
        ss += (double)g[i] * g[i];
    }
    double norm = optim_clip(g, N, 0);  // no clipping: the norm only
    CHECK_CLOSE(norm, sqrt(ss), 1e-12);
    norm = optim_clip(g, N, 0.25);
    CHECK_CLOSE(norm, sqrt(ss), 1e-12);
    double after = 0;
    for (int i = 0; i < N; i++) after += (double)g[i] * g[i];
    CHECK_CLOSE(sqrt(after), 0.25 * sqrt(ss) / (sqrt(ss) + 1e-6), 1e-6);
    // below the threshold: untouched
    float h[3] = {0.1f, 0.0f, -0.1f};
    optim_clip(h, 3, 10);
    CHECK(h[0] == 0.1f && h[2] == -0.1f);
    free(g);
}

static void test_optim_sgd_and_adamw(void) {
    dsf_lm_config cfg = {.V = 3, .E = 2, .H = 2, .L = 1};
    dsf_lm m;
    CHECK(lm_create(&m, &cfg) == 0);
    for (size_t i = 0; i < m.n; i++) {
        m.params[i] = 0.5f;
        m.grads[i] = (float)i * 0.1f - 1.0f;
    }
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_SGD, 2.0f, m.n) == 0);
    optim_step(&o, &m);
    for (size_t i = 0; i < m.n; i++) CHECK_CLOSE(m.params[i], 0.5 - 2.0 * m.grads[i], 1e-6);
    optim_destroy(&o);

    for (size_t i = 0; i < m.n; i++) m.params[i] = 0.5f;
    CHECK(optim_create(&o, DSF_OPTIM_ADAMW, 1e-2f, m.n) == 0);
    o.warmup = 0;
    o.total = 0;  // constant rate
    optim_step(&o, &m);
    optim_step(&o, &m);
    for (int k = 0; k < m.ntensors; k++) {
        const dsf_param *p = &m.tensors[k];
        for (size_t i = p->offset; i < p->offset + p->numel; i++) {
            // two steps with the same gradient g: m̂ = g, v̂ = g², so each moves by lr·g/(|g|+ε)
            double g = m.grads[i], x = 0.5;
            for (int s = 0; s < 2; s++) {
                if (p->is_weight) x *= 1 - 1e-2 * 0.01;
                x -= 1e-2 * g / (fabs(g) + 1e-8);
            }
            CHECK_CLOSE(m.params[i], x, 1e-5);
        }
    }
    optim_destroy(&o);
    lm_destroy(&m);
}

static void test_optim_schedule(void) {
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_ADAMW, 1.0f, 1) == 0);
    o.warmup = 10;
    o.total = 110;
    o.t = 0;
    CHECK_CLOSE(optim_lr(&o), 0.1, 1e-6);  // step 1 of 10 of warm-up
    o.t = 9;
    CHECK_CLOSE(optim_lr(&o), 1.0, 1e-6);  // end of warm-up
    o.t = 59;
    CHECK_CLOSE(optim_lr(&o), 0.1 + 0.9 * 0.5, 1e-6);  // half-way down the cosine
    o.t = 109;
    CHECK_CLOSE(optim_lr(&o), 0.1, 1e-6);  // the floor
    optim_destroy(&o);
}

// torch.optim.Adam's coupled L2: g + wd·p on every tensor, biases included.
static void test_optim_adam_coupled(void) {
    dsf_lm_config cfg = {.V = 3, .E = 2, .H = 2, .L = 1};
    dsf_lm m;
    CHECK(lm_create(&m, &cfg) == 0);
    // |g| well above the L2 term wd·p = 0.05, so that g + wd·p keeps its sign
    for (size_t i = 0; i < m.n; i++)
        m.params[i] = 0.5f, m.grads[i] = (i % 2 ? 1.0f : -1.0f) * (0.1f + 0.01f * (float)i);
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_ADAM, 1e-2f, m.n) == 0);
    o.sched = DSF_SCHED_CONST;
    o.weight_decay = 0.1f;
    optim_step(&o, &m);
    optim_step(&o, &m);
    for (size_t i = 0; i < m.n; i++) {
        double p = 0.5, mo = 0, v = 0;
        for (int t = 1; t <= 2; t++) {
            const double g = m.grads[i] + 0.1 * p;
            mo = 0.9 * mo + 0.1 * g;
            v = 0.999 * v + 0.001 * g * g;
            p -= 1e-2 * (mo / (1 - pow(0.9, t))) / (sqrt(v / (1 - pow(0.999, t))) + 1e-8);
        }
        CHECK_CLOSE(m.params[i], p, 1e-6);
    }
    optim_destroy(&o);
    lm_destroy(&m);
    dsf_optim_kind k;
    CHECK(dsf_optim_parse("adam", &k) == 0 && k == DSF_OPTIM_ADAM);
    CHECK(dsf_optim_parse("adagrad", &k) == -1);
}

// step: lr·γ^⌊t/every⌋; cosine: torch's LinearLR then CosineAnnealingLR.
static void test_optim_schedules(void) {
    dsf_schedule s;
    char buf[48];
    CHECK(dsf_schedule_parse("step:10,0.1", &s) == 0 && s.kind == DSF_SCHED_STEP &&
          s.every_epochs == 10 && s.gamma == 0.1);
    dsf_schedule_format(&s, buf, sizeof buf);
    CHECK(strcmp(buf, "step:10,0.1") == 0);
    CHECK(dsf_schedule_parse("step:10", &s) == -1 && dsf_schedule_parse("step:0,0.1", &s) == -1);
    CHECK(dsf_schedule_parse("cosine", &s) == 0 && s.kind == DSF_SCHED_COSINE);
    CHECK(dsf_schedule_parse("auto", &s) == 0 && s.kind == DSF_SCHED_AUTO);
    CHECK(dsf_schedule_parse("linear", &s) == -1);
    dsf_optim o;
    CHECK(optim_create(&o, DSF_OPTIM_ADAM, 1e-3f, 1) == 0);
    o.sched = DSF_SCHED_STEP;
    o.step_every = 100;
    o.gamma = 0.1f;
    o.t = 99;
    CHECK_CLOSE(optim_lr(&o), 1e-3, 1e-9);
    o.t = 100;
    CHECK_CLOSE(optim_lr(&o), 1e-4, 1e-10);
    o.t = 250;
    CHECK_CLOSE(optim_lr(&o), 1e-5, 1e-11);
    o.sched = DSF_SCHED_COSINE;
    o.warmup = 10;
    o.total = 110;
    o.t = 0;
    CHECK_CLOSE(optim_lr(&o), 1e-3 * 1e-6, 1e-12);  // start_factor 1e-6
    o.t = 5;
    CHECK_CLOSE(optim_lr(&o), 1e-3 * (1e-6 + (1 - 1e-6) * 0.5), 1e-10);
    o.t = 10;
    CHECK_CLOSE(optim_lr(&o), 1e-3, 1e-10);
    o.t = 60;
    CHECK_CLOSE(optim_lr(&o), 1e-4 + 0.9e-3 * 0.5, 1e-10);
    o.t = 110;
    CHECK_CLOSE(optim_lr(&o), 1e-4, 1e-10);
    optim_destroy(&o);
}

static void test_optim_feedback_choices(void) {
    dsf_feedback f;
    float a[8];
    dsf_rng r;
    dsf_rng_seed(&r, 1);
    CHECK(dsf_feedback_parse("uniform", &f) == 0);
    dsf_feedback_fill(&f, &r, a, 8, 35);
    for (int i = 0; i < 8; i++) CHECK(a[i] >= 0 && a[i] < 1);
    CHECK(dsf_feedback_parse("uniform:0.5,0.9", &f) == 0);
    dsf_feedback_fill(&f, &r, a, 8, 35);
    for (int i = 0; i < 8; i++) CHECK(a[i] >= 0.5f && a[i] < 0.9f);
    char buf[64];
    dsf_feedback_format(&f, buf, sizeof buf);
    CHECK(strcmp(buf, "uniform:0.5,0.9") == 0);
    CHECK(dsf_feedback_parse("const:0.25", &f) == 0);
    dsf_feedback_fill(&f, &r, a, 8, 35);
    CHECK(a[3] == 0.25f);
    CHECK(dsf_feedback_parse("ssm", &f) == 0);
    dsf_feedback_fill(&f, &r, a, 8, 35);
    CHECK_CLOSE(a[0], exp(-1.0), 1e-6);
    CHECK_CLOSE(a[7], exp(-1.0 / 35), 1e-6);
    CHECK(a[3] > a[2]);
    CHECK(dsf_feedback_parse("linspace", &f) == 0);
    dsf_feedback_fill(&f, &r, a, 8, 35);
    for (int i = 0; i < 8; i++) CHECK_CLOSE(a[i], i / 7.0, 1e-7);
    dsf_feedback_format(&f, buf, sizeof buf);
    CHECK(strcmp(buf, "linspace:0,1") == 0);
    CHECK(dsf_feedback_parse("linspace:0.2,0.5+2", &f) == 0 && f.refine == 2);
    dsf_feedback_fill(&f, &r, a, 4, 35);
    CHECK_CLOSE(a[0], 0.2, 1e-7);
    CHECK_CLOSE(a[3], 0.5, 1e-7);
    CHECK(dsf_feedback_parse("linspace:1", &f) != 0);
    CHECK(dsf_feedback_parse("uniform:0.9,0.1", &f) != 0);
    CHECK(dsf_feedback_parse("const:", &f) != 0);
    CHECK(dsf_feedback_parse("gaussian", &f) != 0);
}

void suite_optim(void) {
    RUN(test_optim_clip);
    RUN(test_optim_sgd_and_adamw);
    RUN(test_optim_schedule);
    RUN(test_optim_adam_coupled);
    RUN(test_optim_schedules);
    RUN(test_optim_feedback_choices);
}
