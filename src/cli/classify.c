// classify.c: `dsf classify`: sequence classification of images read one pixel a
// step (sequential and permuted Fashion-MNIST, T = 784): a recurrent stack over the
// pixels and a linear head on the last step's state, trained with bptt, ft or dsf.
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "data/batch.h"
#include "data/images.h"
#include "grad/feedback.h"
#include "train/step.h"

static const char *usage =
    "usage: dsf classify [--task seq|perm] [--data DIR] [options]\n"
    "\n"
    "Trains a classifier of images read one pixel a step, in raster order (seq) or\n"
    "in one fixed random order of the pixels drawn from --seed (perm): the input of\n"
    "step t is pixel t / 255, the class is read from the top layer's state at the\n"
    "last step by a linear head, and only that step carries an error, so the whole\n"
    "credit assignment runs back through the 784 steps. DIR holds MNIST-format IDX\n"
    "files (train-images-idx3-ubyte.gz, train-labels-idx1-ubyte.gz, t10k-*), by\n"
    "default Debian's Fashion-MNIST (apt-get install dataset-fashion-mnist). The\n"
    "training images are split 55,000 for training and the last 5,000 for\n"
    "validation; the test images give the final figure. Each epoch validates, keeps\n"
    "the best model (by validation loss) and, with --save, a checkpoint; --resume\n"
    "goes on exactly.";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

typedef struct {
    const char *task, *data, *cell, *method, *feedback, *scan, *optim, *save, *resume, *log;
    int layers, hidden, batch, eval_batch, threads, log_every, max_bad, no_test;
    int64_t epochs, steps, limit, seed, stop_at;
    double lr, clip, weight_decay;
} cls_opts;

typedef struct {
    dsf_lm m;
    dsf_lm_work w, ew;
    dsf_optim o;
    dsf_run run;
    dsf_rng rng;
    dsf_images split[DSF_NSPLITS];
    int32_t *perm_buf;                       // the pixel order of perm, NULL for seq
    dsf_vocab *classes;                      // "0".."C-1", the checkpoint's vocabulary
    float *best;
    double best_seen;
    FILE *log;
} classifier;

typedef struct {
    double loss, accuracy;
} cls_eval;

// Mean loss and accuracy over a split, in batches of the evaluation work area's B.
static cls_eval evaluate(classifier *c, int split) {
    const dsf_images *im = &c->split[split];
    const int B = c->ew.B, T = im->rows * im->cols, C = c->m.cfg.V;
    float *xf = dsf_xmalloc(sizeof(float) * (size_t)T * B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int64_t *idx = dsf_xmalloc(sizeof(int64_t) * (size_t)B);
    double loss = 0;
    int64_t right = 0;
    c->ew.no_grad = 1;
    for (int64_t k = 0; k < im->n; k += B) {
        const int nb = im->n - k < B ? (int)(im->n - k) : B;
        for (int b = 0; b < nb; b++) idx[b] = k + b;
        images_batch(im, idx, nb, B, c->perm_buf, xf, y);
        lm_work_reset_state(&c->ew, &c->m.cfg);
        loss += lm_forward_floats(&c->m, &c->ew, xf, y, T) * nb;
        for (int b = 0; b < nb; b++) {
            const float *p = lm_row_probs(&c->ew, (size_t)(T - 1) * B + b, C);
            int best = 0;
            for (int v = 1; v < C; v++) best = p[v] > p[best] ? v : best;
            right += best == im->labels[idx[b]];
        }
    }
    free(xf);
    free(y);
    free(idx);
    return (cls_eval){loss / (double)im->n, (double)right / (double)im->n};
}

static int save(classifier *c, const char *path) {
    c->run.optim_t = c->o.t;
    c->run.lr = c->o.lr;
    return ckpt_save(path, &c->m, c->classes, &c->run, &c->o, &c->w, &c->rng);
}

static void log_row(classifier *c, const char *kind, double loss, double acc, double lr,
                    double gnorm, double px_s, double t0) {
    if (!c->log) return;
    fprintf(c->log, "%s,%" PRId64 ",%" PRId64 ",%.6f,%.6f,%.6g,%.6g,%.1f,%.3f\n", kind,
            c->run.epoch + (c->run.epoch_pos > 0), c->run.step, loss, acc, lr, gnorm, px_s,
            dsf_now() - t0);
    fflush(c->log);
}

// Validates, keeps the best model, reports.
static int validate(classifier *c, const cls_opts *o, double t0) {
    const double t = dsf_now();
    const cls_eval v = evaluate(c, DSF_SPLIT_VALID);
    const int improved = v.loss < c->best_seen;
    fprintf(stderr, "| end of epoch %" PRId64 " | valid loss %.4f accuracy %.4f | %.1fs%s\n",
            c->run.epoch + 1, v.loss, v.accuracy, dsf_now() - t, improved ? " | best" : "");
    log_row(c, "valid", v.loss, v.accuracy, optim_lr(&c->o), 0, 0, t0);
    if (!improved) return 0;
    c->best_seen = c->run.best_val = v.loss;
    memcpy(c->best, c->m.params, c->m.n * sizeof(float));
    if (!o->save) return 0;
    char path[4096];
    cli_best_path(path, sizeof path, o->save);
    return save(c, path);
}

static int setup(classifier *c, cls_opts *o, const arg_spec *specs, int n) {
    dsf_run *run = &c->run;
    st_file *ck = NULL;
    dsf_vocab *ck_vocab = NULL;
    int rc = -1;
    if (o->resume) {
        if (!(ck = st_load(o->resume))) return -1;
        int has_fb;
        if (ckpt_read_run(ck, run, &ck_vocab) || ckpt_read_model(ck, &c->m, &has_fb) ||
            ckpt_set_feedback(&c->m, run->feedback) || ckpt_check_cell(&c->m, run))
            goto done;
        if (!run->task[0] || !c->m.cfg.inputs) {
            dsf_error_set("%s is not a `dsf classify` checkpoint", o->resume);
            goto done;
        }
        static const char *const same[] = {"task", "cell", "method", "feedback", "scan", "optim",
                                           "layers", "hidden", "batch", "seed", "limit"};
        for (size_t k = 0; k < sizeof same / sizeof *same; k++)
            if (args_given(specs, n, same[k])) {
                dsf_error_set("--%s: resume takes the configuration from the checkpoint; give "
                              "only --data, --epochs or --steps, and the run's outputs", same[k]);
                goto done;
            }
    }
    if (images_load_fashion(c->split, o->data)) goto done;
    const int64_t limit = ck ? run->limit : o->limit;
    for (int k = 0; k < DSF_NSPLITS; k++)
        if (limit > 0 && c->split[k].n > limit) c->split[k].n = limit;
    const int T = c->split[0].rows * c->split[0].cols, C = c->split[0].classes;
    c->classes = vocab_new();
    for (int k = 0; k < C; k++) {
        char name[16];
        snprintf(name, sizeof name, "%d", k);
        vocab_add(c->classes, name, strlen(name));
    }
    if (!ck) {
        dsf_cell cell;
        dsf_method method;
        dsf_optim_kind optim;
        dsf_feedback fb;
        dsf_scan_kind scan;
        if (strcmp(o->task, "seq") && strcmp(o->task, "perm")) {
            dsf_error_set("unknown task '%s' (expected seq or perm)", o->task);
            goto done;
        }
        if (dsf_cell_parse(o->cell, &cell) || dsf_method_parse(o->method, &method) ||
            dsf_optim_parse(o->optim, &optim) || dsf_feedback_parse(o->feedback, &fb) ||
            cli_parse_scan(o->scan, &scan) || cli_check_feedback_scan(&fb, scan) ||
            cli_check_feedback_cell(&fb, cell))
            goto done;
        dsf_lm_config cfg = {.V = C, .E = 1, .H = o->hidden, .L = o->layers, .cell = cell,
                             .inputs = 1};
        if (lm_create(&c->m, &cfg)) goto done;
        *run = (dsf_run){.level = DSF_LEVEL_WORD, .method = method, .optim = optim,
                         .batch = o->batch, .seq = T, .eval_batch = o->eval_batch,
                         .seed = (uint64_t)o->seed, .clip = o->clip, .base_lr = o->lr,
                         .lr = o->lr, .weight_decay = o->weight_decay, .best_val = INFINITY,
                         .world_size = 1, .scan = scan, .limit = o->limit};
        snprintf(run->cell, sizeof run->cell, "%s", o->cell);
        snprintf(run->task, sizeof run->task, "%s", o->task);
        snprintf(run->schedule, sizeof run->schedule, "const");
        dsf_feedback_format(&fb, run->feedback, sizeof run->feedback);
        dsf_rng_seed(&c->rng, run->seed);
        lm_init_params(&c->m, &c->rng);
        if (lm_set_feedback(&c->m, &fb, &c->rng, T)) goto done;
    } else if (vocab_size(ck_vocab) != C || c->m.cfg.V != C || run->seq != T) {
        dsf_error_set("%s was trained on %d classes of %d steps; %s has %d of %d", o->resume,
                      c->m.cfg.V, run->seq, o->data, C, T);
        goto done;
    }
    const int64_t per_epoch = (c->split[0].n + run->batch - 1) / run->batch;
    if (!ck || args_given(specs, n, "epochs") || args_given(specs, n, "steps"))
        run->total_steps = args_given(specs, n, "steps") ? o->steps : o->epochs * per_epoch;
    if (lm_work_create(&c->w, &c->m.cfg, run->batch, T) ||
        lm_work_create_eval(&c->ew, &c->m.cfg, run->eval_batch, T) ||
        optim_create(&c->o, run->optim, (float)run->base_lr, c->m.n))
        goto done;
    c->w.scan = run->scan;
    c->o.sched = DSF_SCHED_CONST;
    c->o.weight_decay = (float)run->weight_decay;
    if (ck) {
        c->o.t = run->optim_t;
        c->o.lr = (float)run->lr;
        if (ckpt_read_optim(ck, &c->m, &c->o) || ckpt_read_state(ck, &c->m, &c->w, &c->rng))
            goto done;
        if (run->epoch_pos >= per_epoch) {
            dsf_error_set("%s stopped at step %" PRId64 " of an epoch of %" PRId64, o->resume,
                          run->epoch_pos, per_epoch);
            goto done;
        }
        fprintf(stderr, "resumed %s at step %" PRId64 "\n", o->resume, run->step);
    }
    if (strcmp(run->task, "perm") == 0) {  // from the run's seed: the same across resumes
        c->perm_buf = dsf_xmalloc(sizeof(int32_t) * (size_t)T);
        images_permutation(c->perm_buf, T, run->seed);
    }
    if (!(c->best = dsf_alloc(c->m.n * sizeof(float)))) goto done;
    memcpy(c->best, c->m.params, c->m.n * sizeof(float));
    c->best_seen = run->best_val;
    rc = 0;
done:
    st_free(ck);
    vocab_free(ck_vocab);
    return rc;
}

static int train(classifier *c, const cls_opts *o) {
    dsf_run *run = &c->run;
    const int B = run->batch, T = run->seq;
    const dsf_images *tr = &c->split[DSF_SPLIT_TRAIN];
    const int64_t per_epoch = (tr->n + B - 1) / B;
    dsf_step step;
    if (dsf_step_create(&step, &c->m, &c->w, &c->o, NULL, run->method, run->clip)) return -1;
    step.step = run->step;  // a resumed run's fit schedule goes on
    float *xf = dsf_xmalloc(sizeof(float) * (size_t)T * B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int64_t *order = dsf_xmalloc(sizeof(int64_t) * (size_t)tr->n), ordered = -1;
    const double t0 = dsf_now();
    double win_loss = 0, win_px = 0, win_t0 = t0;
    int64_t win_steps = 0, finite = 0, start = run->step;
    int bad = 0, rc = 0;
    const int64_t stop_at = o->stop_at > 0 && o->stop_at < run->total_steps ? o->stop_at
                                                                             : run->total_steps;
    while (run->step < stop_at && !stop_requested) {
        if (ordered != run->epoch) {
            dsf_epoch_order(order, tr->n, run->seed, run->epoch);
            ordered = run->epoch;
        }
        const int64_t first = run->epoch_pos * B;
        const int nb = tr->n - first < B ? (int)(tr->n - first) : B;
        images_batch(tr, order + first, nb, B, c->perm_buf, xf, y);
        dsf_step_reset_state(&step);
        const float lr = optim_lr(&c->o);
        dsf_step_result res;
        const int ok = dsf_step_run(&step, &(dsf_batch){.xf = xf, .y = y, .T = T}, &res);
        const double loss = res.loss, gnorm = res.gnorm;
        if (!ok) {
            fprintf(stderr, "step %" PRId64 ": non-finite %s; step skipped\n", run->step + 1,
                    res.bad);
            if (++bad >= o->max_bad) {
                rc = dsf_error_set("%d consecutive non-finite steps: stopping", bad);
                break;
            }
        } else {
            bad = 0;
            win_loss += loss;
            win_steps++;
            finite++;
        }
        win_px += (double)nb * T;
        run->tokens += (int64_t)nb * T;
        run->step++;
        run->epoch_pos++;
        if (win_steps && (run->step % o->log_every == 0 || run->epoch_pos == per_epoch ||
                          run->step == run->total_steps)) {
            const double now = dsf_now(), mean = win_loss / (double)win_steps;
            const double left = (now - t0) / (double)(run->step - start) *
                                (double)(run->total_steps - run->step);
            fprintf(stderr, "step %" PRId64 "/%" PRId64 " | epoch %" PRId64 " %3.0f%% | loss %.4f"
                            " | lr %.4g | gnorm %.3f | %.0f pixels/s | %.0f s left\n",
                    run->step, run->total_steps, run->epoch + 1,
                    100.0 * (double)run->epoch_pos / (double)per_epoch, mean, lr, gnorm,
                    win_px / (now - win_t0), left);
            log_row(c, "train", mean, 0, lr, gnorm, win_px / (now - win_t0), t0);
            win_loss = win_px = 0;
            win_steps = 0;
            win_t0 = now;
        }
        if (run->epoch_pos == per_epoch) {
            if ((rc = validate(c, o, t0))) break;
            run->epoch++;
            run->epoch_pos = 0;
            if (o->save && (rc = save(c, o->save))) break;
        }
    }
    free(xf);
    free(y);
    free(order);
    if (rc) return rc;
    if (run->step > start && finite == 0)
        return dsf_error_set("no step of the run had a finite loss and gradient");
    if (run->step < run->total_steps) {
        const char *why = stop_requested ? "interrupted" : "stopped (--stop-at)";
        if (o->save && save(c, o->save)) return -1;
        fprintf(stderr, "%s after step %" PRId64 " of %" PRId64 "%s%s\n", why, run->step,
                run->total_steps, o->save ? ": saved; continue with --resume " : "",
                o->save ? o->save : "");
        return stop_requested ? 130 : 1;
    }
    if (run->epoch_pos > 0) {  // a run that ends inside an epoch validates there too
        if (validate(c, o, t0)) return -1;
        if (o->save && save(c, o->save)) return -1;
    }
    return 0;
}

int cmd_classify(int argc, char **argv) {
    cls_opts o = {.task = "seq", .data = DSF_FASHION_DIR, .cell = "gru", .method = "dsf",
                  .feedback = "linspace", .scan = "seq", .optim = "adam", .layers = 1,
                  .hidden = 128, .batch = 128, .eval_batch = 128, .threads = cli_default_threads(),
                  .log_every = 50, .max_bad = 10, .epochs = 1, .seed = 1, .lr = 1e-3, .clip = 1};
    arg_spec specs[] = {
        OPT("task", ARG_STR, &o.task, 0, 0, "seq (raster order) or perm (permuted pixels)"),
        OPT("data", ARG_STR, &o.data, 0, 0, "directory of the IDX files (default Debian's Fashion-MNIST)"),
        OPT("cell", ARG_STR, &o.cell, 0, 0, "recurrent cell: gru, lstm or rnn (Elman, tanh)"),
        OPT("layers", ARG_INT, &o.layers, 1, DSF_MAX_LAYERS, "recurrent layers"),
        OPT("hidden", ARG_INT, &o.hidden, 1, 1 << 20, "hidden size"),
        CLI_METHOD_OPTS(o),
        OPT("optim", ARG_STR, &o.optim, 0, 0, "adam, adamw or sgd (constant rate)"),
        OPT("lr", ARG_FLOAT, &o.lr, 0, 1e6, "learning rate"),
        OPT("weight-decay", ARG_FLOAT, &o.weight_decay, 0, 1e3, "adam's L2, adamw's decay"),
        OPT("clip", ARG_FLOAT, &o.clip, 0, 1e9, "global gradient-norm clip (0: none)"),
        OPT("batch", ARG_INT, &o.batch, 1, 1 << 16, "images per step"),
        OPT("eval-batch", ARG_INT, &o.eval_batch, 1, 1 << 16, "images per evaluation step"),
        OPT("epochs", ARG_I64, &o.epochs, 1, 1e9, "epochs to train"),
        OPT("steps", ARG_I64, &o.steps, 1, 1e15, "total steps of the run (instead of --epochs)"),
        OPT("limit", ARG_I64, &o.limit, 0, 1e9, "use the first N images of each split (0: all)"),
        OPT("seed", ARG_I64, &o.seed, 0, 9.2e18, "weights, feedback, epoch orders, permutation"),
        OPT("save", ARG_STR, &o.save, 0, 0, "checkpoint written each epoch and at the end"),
        OPT("resume", ARG_STR, &o.resume, 0, 0, "continue the run saved in this checkpoint"),
        OPT("log", ARG_STR, &o.log, 0, 0, "CSV: kind,epoch,step,loss,accuracy,lr,grad_norm,pixels_per_s,elapsed_s"),
        OPT("log-every", ARG_INT, &o.log_every, 1, 1 << 30, "steps between progress lines"),
        OPT("max-bad-steps", ARG_INT, &o.max_bad, 1, 1 << 30, "consecutive non-finite steps before stopping"),
        OPT("stop-at", ARG_I64, &o.stop_at, 1, 1e15, "stop after this step as if interrupted (saves with --save), but exit 0 without a test"),
        OPT("threads", ARG_INT, &o.threads, 1, 4096, "threads"),
        OPT("no-test", ARG_FLAG, &o.no_test, 0, 0, "skip the test-split evaluation at the end"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;
    if (args_given(specs, n, "steps") && args_given(specs, n, "epochs"))
        return dsf_error_set("give --epochs or --steps, not both");
    dsf_set_threads(o.threads);
    classifier c;
    memset(&c, 0, sizeof c);
    rc = setup(&c, &o, specs, n);
    if (rc == 0 && o.log) {
        c.log = fopen(o.log, o.resume ? "a" : "w");
        if (!c.log)
            rc = dsf_error_set("cannot write log %s", o.log);
        else if (!o.resume || ftell(c.log) == 0)
            fprintf(c.log, "kind,epoch,step,loss,accuracy,lr,grad_norm,pixels_per_s,elapsed_s\n");
    }
    if (rc == 0) {
        const dsf_run *r = &c.run;
        char fdesc[96] = "";
        if (r->method == DSF_METHOD_DSF)
            snprintf(fdesc, sizeof fdesc, " feedback %s scan %s", r->feedback, dsf_scan_name(r->scan));
        fprintf(stderr, "data: %s, %s order, %lld / %lld / %lld images of %d x %d, %d classes\n",
                o.data, strcmp(r->task, "perm") ? "raster" : "permuted",
                (long long)c.split[0].n, (long long)c.split[1].n, (long long)c.split[2].n,
                c.split[0].rows, c.split[0].cols, c.m.cfg.V);
        fprintf(stderr, "model: %s, %d layer%s, hidden %d, one input a step, a head of %d "
                        "classes on the last step, %zu parameters\n",
                dsf_cell_name(c.m.cfg.cell), c.m.cfg.L, c.m.cfg.L > 1 ? "s" : "", c.m.cfg.H,
                c.m.cfg.V, c.m.n);
        fprintf(stderr, "training: method %s%s, %s lr %g clip %g, batch %d x %d steps, %" PRId64
                        " steps, %d threads, %s\n",
                dsf_method_name(r->method), fdesc, dsf_optim_name(r->optim), r->base_lr, r->clip,
                r->batch, r->seq, r->total_steps, dsf_get_threads(), cli_cpu_backend());
        cli_print_memory(&c.m, &c.o, &c.w, &c.ew, r->method, 0);
        if (r->method == DSF_METHOD_DSF) cli_caution_feedback(&c.m.fb, r->seq);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        rc = train(&c, &o);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    if (rc == 1) {
        rc = 0;
    } else if (rc == 0 && !o.no_test) {
        memcpy(c.m.params, c.best, c.m.n * sizeof(float));
        const cls_eval t = evaluate(&c, DSF_SPLIT_TEST);
        printf("test loss %.4f accuracy %.4f (model with the best validation loss, %.4f)\n",
               t.loss, t.accuracy, c.best_seen);
        log_row(&c, "test", t.loss, t.accuracy, 0, 0, 0, dsf_now());
    }
    if (rc == 0) cli_print_peak_memory();
    if (c.log && fclose(c.log) != 0 && rc == 0) rc = dsf_error_set("cannot write log %s", o.log);
    for (int k = 0; k < DSF_NSPLITS; k++) images_free(&c.split[k]);
    vocab_free(c.classes);
    free(c.perm_buf);
    dsf_free(c.best);
    optim_destroy(&c.o);
    lm_work_destroy(&c.w);
    lm_work_destroy(&c.ew);
    lm_destroy(&c.m);
    return rc;
}
