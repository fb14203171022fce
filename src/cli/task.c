// task.c: `dsf task`: trains on a long-range task (data/tasks.h) and measures
// the accuracy at its answers on held-out sequences.
#include <inttypes.h>
#include <math.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "data/tasks.h"
#include "grad/feedback.h"
#include "train/step.h"

static const char *usage =
    "usage: dsf task --task copy|add|recall [--delay D] [options]\n"
    "\n"
    "Trains an embedding -> recurrent stack -> decoder model on a long-range task\n"
    "generated in code. Each step takes --batch fresh independent sequences, each\n"
    "from a zero state as one window of T steps; the loss is the cross-entropy at\n"
    "the answer positions only. Every --eval-every steps, and at the end, it\n"
    "reports the training loss and, on --eval-size held-out sequences (drawn from\n"
    "another seed, the same ones each time), the token accuracy at the answers and\n"
    "the sequence accuracy (every answer of a sequence right). The last line, on\n"
    "stdout, ends with 'accuracy A' (the token accuracy).\n"
    "\n"
    "tasks (D = --delay):\n"
    "  copy    5 symbols of 8, D blanks, a go token, 4 blanks (T = D + 10); from the\n"
    "          go on, output the 5 symbols: each is recalled D + 5 steps after it\n"
    "          was seen. Chance 1/8.\n"
    "  add     the adding problem: N = D + 2 digits 0..9 then '=' (T = D + 3); two\n"
    "          digits are marked (their own tokens), one uniform in the first\n"
    "          ceil(N/2) positions, one in the rest; at '=' output their sum 0..18.\n"
    "          Chance 1/10.\n"
    "  recall  a key of 8, D filler tokens of 8 others, '=' (T = D + 2); at '='\n"
    "          output the key, seen D + 1 steps before. Chance 1/8.";

typedef struct {
    const char *task, *cell, *method, *feedback, *scan, *optim, *log;
    int delay, layers, emb, hidden, batch, eval_every, eval_size, threads, max_bad;
    int64_t steps, seed;
    double lr, clip;
} task_opts;

// Seeds of the training and the held-out sequences, apart from the model's.
#define TRAIN_SEED 0x7461736b5f747261ull  // "task_tra"
#define EVAL_SEED 0x7461736b5f657661ull   // "task_eva"

typedef struct {
    double loss, token_acc, seq_acc;
} task_eval;

// Loss and accuracies at the answers of n held-out sequences, in batches of
// w->B (the rows of a last, partial batch beyond n carry no target).
static task_eval evaluate(const dsf_lm *m, dsf_lm_work *w, const dsf_task *t, int64_t n,
                          uint64_t seed, int32_t *x, int32_t *y) {
    const int B = w->B, T = t->T, V = m->cfg.V;
    dsf_rng rng;
    dsf_rng_seed(&rng, seed);
    double loss = 0;
    int64_t rows = 0, right = 0, seqs_right = 0;
    for (int64_t done = 0; done < n; done += B) {
        const int nb = n - done < B ? (int)(n - done) : B;
        dsf_task_batch(t, &rng, B, x, y);
        for (int s = 0; s < T; s++)
            for (int b = nb; b < B; b++) y[(size_t)s * B + b] = DSF_IGNORE;
        lm_work_reset_state(w, &m->cfg);
        loss += lm_forward(m, w, x, y, T) * (double)nb * t->answers;
        for (int b = 0; b < nb; b++) {
            int all = 1;
            for (int s = 0; s < T; s++) {
                const size_t r = (size_t)s * B + b;
                const float *p = lm_row_probs(w, r, V);
                if (!p) continue;  // an ignored target
                int best = 0;
                for (int v = 1; v < V; v++) best = p[v] > p[best] ? v : best;
                right += best == y[r];
                all &= best == y[r];
                rows++;
            }
            seqs_right += all;
        }
    }
    return (task_eval){loss / (double)rows, (double)right / (double)rows,
                       (double)seqs_right / (double)n};
}

static void format_duration(char *buf, size_t n, double s) {
    long k = isfinite(s) && s > 0 ? (long)(s + 0.5) : 0;
    snprintf(buf, n, "%ldm%02lds", k / 60, k % 60);
}

static int run_task(const task_opts *o, const dsf_task *t, dsf_cell cell, dsf_method method,
                    dsf_optim_kind optim, const dsf_feedback *fb, dsf_scan_kind scan) {
    const int B = o->batch, T = t->T;
    dsf_lm_config cfg = {.V = t->V, .E = o->emb, .H = o->hidden, .L = o->layers, .cell = cell};
    dsf_lm m;
    dsf_lm_work w;
    dsf_optim opt;
    memset(&w, 0, sizeof w);
    memset(&opt, 0, sizeof opt);
    if (lm_create(&m, &cfg)) return -1;
    FILE *log = NULL;
    int32_t *x = NULL, *y = NULL;
    int rc = -1;
    if (lm_work_create(&w, &cfg, B, T) || optim_create(&opt, optim, (float)o->lr, m.n)) goto done;
    w.scan = scan;
    opt.total = o->steps;
    opt.warmup = o->steps / 20;
    // The same seed gives every method the same initial weights and sequences.
    dsf_rng rng, data;
    dsf_rng_seed(&rng, (uint64_t)o->seed);
    lm_init_params(&m, &rng);
    if (lm_set_feedback(&m, fb, &rng, T)) goto done;
    dsf_step st;
    if (dsf_step_create(&st, &m, &w, &opt, NULL, method, o->clip)) goto done;
    dsf_rng_seed(&data, (uint64_t)o->seed ^ TRAIN_SEED);
    if (o->log) {
        if (!(log = fopen(o->log, "w"))) {
            dsf_error_set("cannot write log %s", o->log);
            goto done;
        }
        fprintf(log, "step,loss,eval_loss,token_acc,seq_acc,elapsed_s\n");
    }
    x = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);

    char fdesc[96] = "";
    if (method == DSF_METHOD_DSF) {
        char canon[64];
        dsf_feedback_format(fb, canon, sizeof canon);
        snprintf(fdesc, sizeof fdesc, " feedback %s scan %s", canon, dsf_scan_name(scan));
    }
    fprintf(stderr, "task %s, delay %d: sequences of %d tokens, vocabulary %d, %d answer%s "
                    "each; chance accuracy %.3f\n",
            dsf_task_name(t->kind), t->delay, T, t->V, t->answers, t->answers > 1 ? "s" : "",
            dsf_task_chance(t));
    fprintf(stderr, "model: %s, %d layer%s, emb %d, hidden %d, %zu parameters\n",
            dsf_cell_name(cell), cfg.L, cfg.L > 1 ? "s" : "", cfg.E, cfg.H, m.n);
    fprintf(stderr, "training: method %s%s, %s lr %g clip %g, batch %d, %" PRId64 " steps, "
                    "held-out %d sequences, %d threads\n",
            dsf_method_name(method), fdesc, dsf_optim_name(optim), o->lr, o->clip, B, o->steps,
            o->eval_size, dsf_get_threads());
    if (method == DSF_METHOD_DSF) cli_caution_feedback(fb, T);

    const double t0 = dsf_now();
    double win_loss = 0, last_loss = NAN;
    int64_t win_steps = 0;
    task_eval ev = {NAN, 0, 0};
    int bad = 0;
    for (int64_t step = 1; step <= o->steps; step++) {
        dsf_task_batch(t, &data, B, x, y);
        dsf_step_reset_state(&st);  // every sequence from a zero state
        dsf_step_result res;
        if (!dsf_step_run(&st, &(dsf_batch){.x = x, .y = y, .T = T}, &res)) {
            fprintf(stderr, "step %" PRId64 ": non-finite %s; step skipped\n", step, res.bad);
            if (++bad >= o->max_bad) {
                rc = dsf_error_set("%d consecutive non-finite steps: stopping", bad);
                goto done;
            }
        } else {
            bad = 0;
            win_loss += res.loss;
            win_steps++;
        }
        if (step % o->eval_every && step != o->steps) continue;
        if (win_steps) last_loss = win_loss / (double)win_steps;
        ev = evaluate(&m, &w, t, o->eval_size, (uint64_t)o->seed ^ EVAL_SEED, x, y);
        const double now = dsf_now() - t0;
        char left[32];
        format_duration(left, sizeof left, now / (double)step * (double)(o->steps - step));
        fprintf(stderr, "step %" PRId64 "/%" PRId64 " | loss %.4f | held-out loss %.4f "
                        "accuracy %.4f sequences %.4f | %.0f seq/s | %s left\n",
                step, o->steps, last_loss, ev.loss, ev.token_acc, ev.seq_acc,
                (double)step * B / now, left);
        if (log) {
            fprintf(log, "%" PRId64 ",%.6f,%.6f,%.6f,%.6f,%.3f\n", step, last_loss, ev.loss,
                    ev.token_acc, ev.seq_acc, now);
            fflush(log);
        }
        win_loss = 0;
        win_steps = 0;
    }
    printf("task %s delay %d method %s steps %" PRId64 " seconds %.2f loss %.4f "
           "seq_acc %.4f accuracy %.4f\n",
           dsf_task_name(t->kind), t->delay, dsf_method_name(method), o->steps, dsf_now() - t0,
           ev.loss, ev.seq_acc, ev.token_acc);
    rc = 0;
done:
    if (log) fclose(log);
    free(x);
    free(y);
    optim_destroy(&opt);
    lm_work_destroy(&w);
    lm_destroy(&m);
    return rc;
}

int cmd_task(int argc, char **argv) {
    task_opts o = {.task = "recall", .cell = "gru", .method = "dsf", .feedback = "uniform",
                   .scan = "seq", .optim = "adamw", .delay = 10, .layers = 1, .emb = 32,
                   .hidden = 64, .batch = 32, .eval_every = 200, .eval_size = 1000,
                   .threads = cli_default_threads(), .max_bad = 10, .steps = 2000, .seed = 1,
                   .lr = 3e-3, .clip = 1};
    arg_spec specs[] = {
        OPT("task", ARG_STR, &o.task, 0, 0, "copy, add or recall (see above)"),
        OPT("delay", ARG_INT, &o.delay, 0, DSF_TASK_MAX_DELAY, "the task's delay D"),
        CLI_MODEL_OPTS(o),
        CLI_METHOD_OPTS(o),
        OPT("optim", ARG_STR, &o.optim, 0, 0, "adamw (warm-up 5%, cosine decay) or sgd"),
        OPT("lr", ARG_FLOAT, &o.lr, 0, 1e6, "learning rate (sgd default 1)"),
        OPT("clip", ARG_FLOAT, &o.clip, 0, 1e9, "global gradient-norm clip (0: none)"),
        OPT("batch", ARG_INT, &o.batch, 1, 1 << 20, "sequences per step"),
        OPT("steps", ARG_I64, &o.steps, 1, 1e12, "training steps"),
        OPT("eval-every", ARG_INT, &o.eval_every, 1, 1 << 30, "steps between evaluations"),
        OPT("eval-size", ARG_INT, &o.eval_size, 1, 1 << 24, "held-out sequences"),
        OPT("seed", ARG_I64, &o.seed, 0, 9.2e18,
            "seed of the weights, the feedback and the sequences"),
        OPT("threads", ARG_INT, &o.threads, 1, 4096, "threads"),
        OPT("log", ARG_STR, &o.log, 0, 0,
            "CSV: step,loss,eval_loss,token_acc,seq_acc,elapsed_s at each evaluation"),
        OPT("max-bad-steps", ARG_INT, &o.max_bad, 1, 1 << 30,
            "consecutive non-finite steps before stopping"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    dsf_task t;
    dsf_cell cell;
    dsf_method method;
    dsf_optim_kind optim;
    dsf_feedback fb;
    dsf_scan_kind scan;
    if (dsf_task_init(&t, o.task, o.delay) || dsf_cell_parse(o.cell, &cell) ||
        dsf_method_parse(o.method, &method) || dsf_optim_parse(o.optim, &optim) ||
        dsf_feedback_parse(o.feedback, &fb) || cli_parse_scan(o.scan, &scan) ||
        cli_check_feedback_scan(&fb, scan) || cli_check_feedback_cell(&fb, cell))
        return -1;
    if (optim == DSF_OPTIM_SGD && !args_given(specs, n, "lr")) o.lr = 1;
    dsf_set_threads(o.threads);
    return run_task(&o, &t, cell, method, optim, &fb, scan);
}
