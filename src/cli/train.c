// train.c: `dsf train`: the training loop, evaluation, checkpoints and logs.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <signal.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "cuda/gpu.h"
#include "data/batch.h"
#include "dist/dist.h"
#include "model/evaluate.h"
#include "train.h"
#include "train/step.h"

static const char *usage =
    "usage: dsf train --data PATH [options]\n"
    "\n"
    "Trains an embedding -> recurrent stack (GRU, LSTM or Elman; or residual blocks\n"
    "with --arch block) -> decoder language model. PATH is a directory\n"
    "with ptb.{train,valid,test}.txt, wiki.{train,valid,test}.tokens or\n"
    "{train,valid,test}.txt, a single text file (split 90/5/5), or builtin:recall[:D]\n"
    "(a generated character-level task that needs a memory of D steps).\n"
    "\n"
    "--device cuda runs the training steps and evaluation on the GPU (a build with\n"
    "make CUDA=1; every cell, architecture, method, feedback and scan that the CPU\n"
    "runs): parameters, moments and the carried state are copied back to the host\n"
    "for checkpoints, which are the CPU's. Under MPI each process takes one GPU (its\n"
    "rank on the node modulo the GPUs there) and the gradients are averaged through\n"
    "the host.\n"
    "\n"
    "--recipe paper-ptb sets the authors' PTB recipe (their PyTorch code, GitHub\n"
    "p0lcAi/DSF) for every flag not given: --arch residual --batching sentence\n"
    "--seq 64 --batch 128 --eval-batch 256 --optim adam --lr 1e-3 --weight-decay 1e-4\n"
    "--clip 0 --schedule step:10,0.1 --epochs 30 --evals 50 --init-std 0.02\n"
    "--feedback linspace --layers 1 --hidden 256 --emb (= --hidden). Every line of the\n"
    "data is then a sentence <bos> w1 .. wn <eos> from a zero state, cut to --seq + 1\n"
    "tokens and padded; padding carries no loss, and each batch's rows go longest\n"
    "first so that the recurrence skips it (on the CPU; the same gradient).\n"
    "\n"
    "--recipe paper-wikitext sets the authors' WikiText recipe: --arch block\n"
    "--block-proj --untied (per block x <- x + Linear(GRU(LN x)), x <- x + MLP(LN x),\n"
    "a final LayerNorm, its own head) --batching chunk --seq 255 (chunks of 256\n"
    "tokens) --batch 128 --eval-batch 256 --optim adam --lr 1e-3 --weight-decay 0\n"
    "--clip 0 --schedule cosine --warmup-ratio 0.1 --epochs 5 --evals 50 --init-std\n"
    "0.02 --feedback linspace --layers 3 --hidden 256 --emb (= --hidden). The data and\n"
    "tokens are dsf's (words, <eos> at each line's end), not the authors' BPE.";

static volatile sig_atomic_t stop_requested;
static void on_signal(int sig) { stop_requested = sig; }

int64_t train_steps_per_epoch(const trainer *tr) {
    return tr->seqs ? seqbatch_steps(&tr->sb) : batcher_steps(&tr->bt, tr->run.seq);
}

static void log_row(trainer *tr, const char *kind, double loss, double lr, double gnorm,
                    double tok_s) {
    if (!tr->log) return;
    const int64_t tokens = tr->run.tokens;
    fprintf(tr->log, "%s,%" PRId64 ",%" PRId64 ",%" PRId64 ",%.6f,%.4f,%.6g,%.6g,%.1f,%.3f\n",
            kind, tr->run.epoch + (tr->run.epoch_pos > 0), tr->run.step, tokens, loss, exp(loss),
            lr, gnorm, tok_s, dsf_now() - tr->t0);
    if (fflush(tr->log) != 0 || ferror(tr->log)) tr->log_errno = errno ? errno : EIO;
}


// The mean loss of the model's host parameters over a split: on the GPU with
// --device cuda (the same batching, from a zero state), else lm_evaluate.
static double evaluate(trainer *tr, int split) {
    const dsf_tokens *tokens = &tr->corpus.split[split];
    if (tr->seqs && !tr->egpu) return lm_evaluate_seqs(&tr->m, &tr->ew, tokens, tr->run.seq, DSF_PAD_ID);
    if (!tr->egpu) return lm_evaluate(&tr->m, &tr->ew, tokens, tr->run.seq);
    dsf_gpu_set_params(tr->egpu, tr->m.params);
    if (tr->seqs) return cli_gpu_evaluate_seqs(tr->egpu, tr->ew.B, tokens, tr->run.seq, DSF_PAD_ID);
    return cli_gpu_evaluate(tr->egpu, tr->ew.B, tokens, tr->run.seq);
}

// Collective. Each rank carries the state of its own streams (contiguous);
// rank 0 gathers them all into the checkpoint, so that a resumed run goes on
// exactly. Sentences carry none (each batch starts from zero): zeros.
static int save_checkpoint(trainer *tr, const char *path) {
    tr->run.optim_t = tr->o.t;
    tr->run.lr = tr->o.lr;
    if (!dist_same_floats(tr->m.params, tr->m.n))
        return dsf_error_set("the processes' parameters differ at step %" PRId64
                             " (an internal error: nothing saved)", tr->run.step);
    const int H = tr->m.cfg.H;
    const size_t mine = (size_t)tr->share.count * H;
    const size_t LBH = (size_t)tr->m.cfg.L * tr->run.batch * H;
    if (tr->seqs && tr->root) memset(tr->state_all, 0, 2 * LBH * sizeof(float));
    for (int l = 0; !tr->seqs && l < tr->m.cfg.L; l++) {
        dist_gather_floats(tr->w.state + l * mine, mine,
                           tr->state_all + (size_t)l * tr->run.batch * H);
        dist_gather_floats(tr->w.state_c + l * mine, mine,  // the LSTM's c (zeros otherwise)
                           tr->state_all + LBH + (size_t)l * tr->run.batch * H);
    }
    dsf_lm_work all;
    memset(&all, 0, sizeof all);  // ckpt_save reads only B, state and state_c
    all.B = tr->run.batch;
    all.state = tr->state_all;
    all.state_c = tr->state_all + LBH;
    int rc = 0;
    if (tr->root)
        rc = ckpt_save(path, &tr->m, tr->corpus.vocab, &tr->run, &tr->o, &all, &tr->rng);
    return dist_agree(rc);
}

// Evaluates the validation split and keeps the best parameters. At an epoch's
// end it also applies the SGD plateau rule (divide the rate by 4 when validation
// did not improve); a final evaluation in the middle of an epoch only reports,
// so that a run stopped there and resumed goes on exactly as one never stopped.
static int validate(trainer *tr, const train_opts *opt, int epoch_end) {
    double t = dsf_now();
    double val = evaluate(tr, DSF_SPLIT_VALID);
    if (isnan(val)) return -1;
    char buf[96];
    cli_format_loss(buf, sizeof buf, val, tr->run.level);
    int improved = val < tr->best_seen;
    if (tr->root)
        fprintf(stderr, "| %s %" PRId64 " step %" PRId64 " | valid %s | %.1fs%s\n",
                epoch_end ? "end of epoch" : "in epoch", tr->run.epoch + (tr->run.epoch_pos > 0),
                tr->run.step, buf, dsf_now() - t, improved ? " | best" : "");
    log_row(tr, "valid", val, optim_lr(&tr->o), 0, 0);
    // The plateau rule looks at epoch-end evaluations only; with --evals the best
    // of every evaluation is the run's.
    int plateau = epoch_end && !(val < tr->run.best_val);
    if (epoch_end && !plateau) tr->run.best_val = val;
    if (improved) {
        tr->best_seen = val;
        if (tr->run.evals > 0) tr->run.best_val = val;
        memcpy(tr->best, tr->m.params, tr->m.n * sizeof(float));
        if (opt->save) {
            char path[4096];
            cli_best_path(path, sizeof path, opt->save);
            if (save_checkpoint(tr, path)) return -1;
        }
    }
    if (plateau && tr->o.kind == DSF_OPTIM_SGD && tr->o.sched == DSF_SCHED_AUTO) {
        tr->o.lr /= 4;
        if (tr->root)
            fprintf(stderr, "| validation did not improve: learning rate now %g\n", tr->o.lr);
    }
    return 0;
}

static void print_header(trainer *tr) {
    const dsf_lm_config *c = &tr->m.cfg;
    const dsf_run *r = &tr->run;
    fprintf(stderr, "data: %s, train %" PRId64 " valid %" PRId64 " test %" PRId64
                    " tokens, vocabulary %d (%s level)\n",
            tr->corpus.source[DSF_SPLIT_TRAIN], tr->corpus.split[0].n, tr->corpus.split[1].n,
            tr->corpus.split[2].n, c->V, dsf_level_name(r->level));
    fprintf(stderr, "model: %s, %d %s%s, emb %d, hidden %d%s, %zu parameters\n",
            dsf_cell_name(c->cell), c->L, c->arch == DSF_ARCH_BLOCK ? "block" : "layer",
            c->L > 1 ? "s" : "", c->E, c->H,
            c->tie ? " (decoder tied to the embedding)" : "", tr->m.n);
    cli_print_memory(&tr->m, &tr->o, &tr->w, &tr->ew, tr->run.method, tr->gpu != NULL);
    if (tr->run.dropout > 0) fprintf(stderr, "dropout: %g\n", tr->run.dropout);
    if (c->arch != DSF_ARCH_STACK || tr->seqs || strcmp(r->schedule, "auto") || r->evals ||
        r->init_std > 0)
        fprintf(stderr, "recipe: arch %s, %s batching (%" PRId64 " %s), schedule %s, weight decay "
                        "%g%s, %s, %s\n",
                dsf_arch_name(c->arch), dsf_unit_name(r->unit),
                tr->seqs ? tr->corpus.split[DSF_SPLIT_TRAIN].nseq : (int64_t)r->batch,
                r->unit == DSF_UNIT_SENTENCE ? "sentences from a zero state, padded"
                : r->unit == DSF_UNIT_CHUNK  ? "chunks from a zero state"
                                             : "streams",
                r->schedule, r->weight_decay, r->optim == DSF_OPTIM_ADAM ? " (coupled L2)" : "",
                r->evals ? "validation spread over the run" : "validation each epoch",
                r->init_std > 0 ? "normal initialisation" : "PyTorch's initialisation");
    if (r->unit == DSF_UNIT_SENTENCE) {  // what the padding costs (docs/SPEED.md)
        int64_t targets, positions;
        seqbatch_order(&tr->sb, 1, r->seed, r->epoch);
        seqbatch_fill(&tr->sb, &targets, &positions);
        fprintf(stderr, "padding: epoch %" PRId64 " has %" PRId64 " targets in %" PRId64
                        " padded positions (%.1f%% padding); %s\n", r->epoch + 1, targets,
                positions, 100.0 * (double)(positions - targets) / (double)positions,
                tr->step.gpu ? "the decoder runs on the targets only, the recurrence on "
                               "every position"
                             : "the recurrence and the decoder run on the targets only");
    }
    char dsf_desc[128] = "";
    if (r->method == DSF_METHOD_DSF)
        snprintf(dsf_desc, sizeof dsf_desc, " feedback %s scan %s", r->feedback,
                 dsf_scan_name(r->scan));
    fprintf(stderr, "training: method %s%s, %s lr %g clip %g, batch %d x seq %d, "
                    "%" PRId64 " steps (%" PRId64 " per epoch), %d threads, %s\n",
            dsf_method_name(r->method), dsf_desc, dsf_optim_name(r->optim), r->base_lr,
            r->clip, r->batch, r->seq, r->total_steps, train_steps_per_epoch(tr),
            dsf_get_threads(), cli_cpu_backend());
    if (r->method == DSF_METHOD_DSF) cli_caution_feedback(&tr->m.fb, r->seq);
    if (tr->gpu)
        fprintf(stderr, "device: %s (training steps and evaluation; checkpoints%s through the host)\n",
                dsf_gpu_name(tr->gpu), dist_size() > 1 ? " and the all-reduce" : "");
    if (dist_size() > 1)
        fprintf(stderr, "data parallel: %d processes (%s), each %" PRId64 " %s and %d "
                        "thread%s; one all-reduce of %zu gradients per step\n",
                dist_size(), dist_name(), tr->share.count,
                tr->share.stride > 1 ? "rows dealt round robin" : "streams", dsf_get_threads(),
                dsf_get_threads() > 1 ? "s" : "", tr->m.n);
}

static void format_duration(char *buf, size_t n, double s) {
    if (!isfinite(s) || s < 0) s = 0;
    long t = (long)(s + 0.5);
    if (t >= 3600)
        snprintf(buf, n, "%ldh%02ldm", t / 3600, t / 60 % 60);
    else
        snprintf(buf, n, "%ldm%02lds", t / 60, t % 60);
}

static int train_loop(trainer *tr, const train_opts *opt) {
    dsf_run *run = &tr->run;
    const int B = run->batch, T = run->seq;
    const int64_t per_epoch = train_steps_per_epoch(tr);
    // --evals N: a validation every `every` steps (the authors' total // N); else
    // one at each epoch's end.
    const int64_t every = run->evals > 0 ? (run->total_steps / run->evals > 0
                                                ? run->total_steps / run->evals : 1) : 0;
    int64_t ordered = -1;  // sentences: the epoch whose order sb holds
    int32_t *x = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)T * B);
    int32_t *xs = dsf_xmalloc(sizeof(int32_t) * (size_t)T * tr->share.count);  // this rank's streams
    int32_t *ys = dsf_xmalloc(sizeof(int32_t) * (size_t)T * tr->share.count);
    double win_loss = 0, win_tokens = 0, win_t0 = dsf_now(), run_t0 = dsf_now(), win_comm = 0,
           win_wait = 0;
    int64_t win_steps = 0, start_step = run->step, win_from = run->step, start_tokens = run->tokens;
    int bad = 0, rc = 0, evaluated_at_end = 0, stop = 0;
    const int64_t stop_at = opt->stop_at > 0 && opt->stop_at < run->total_steps ? opt->stop_at : run->total_steps;
    // A signal reaches the ranks at different moments: they stop at the same step.
    int64_t finite = 0;  // steps with a finite loss and gradient
    while (run->step < stop_at && !(stop = dist_any(stop_requested))) {
        if (dist_any(tr->log_errno)) {
            rc = dsf_error_set("cannot write the log %s: %s", opt->log,
                               strerror(tr->log_errno ? tr->log_errno : EIO));
            break;
        }
        double step_t0 = dsf_now();
        if (run->epoch_pos == 0 || tr->seqs) dsf_step_reset_state(&tr->step);  // sentences: every batch
        if (tr->seqs && ordered != run->epoch) {
            seqbatch_order(&tr->sb, 1, run->seed, run->epoch);
            ordered = run->epoch;
        }
        int t = (int)(tr->seqs ? seqbatch_get(&tr->sb, run->epoch_pos, x, y)
                               : batcher_get(&tr->bt, run->epoch_pos * T, T, x, y));
        int64_t counted = 0;  // the batch's targets that carry a loss
        for (size_t r = 0; r < (size_t)t * B; r++) counted += y[r] != DSF_IGNORE;
        dist_take_streams(x, t, B, tr->share, xs);
        dist_take_streams(y, t, B, tr->share, ys);
        float lr = optim_lr(&tr->o);
        // Padded sentences over several ranks: each rank's mean is weighted by its
        // share of the counted targets.
        const dsf_batch batch = {.x = xs, .y = ys, .T = t,
                                 .counted_all = tr->seqs && dist_size() > 1 ? counted : 0};
        dsf_step_result res;
        const int ok = dsf_step_run(&tr->step, &batch, &res);
        const double loss = res.loss, gnorm = res.gnorm;
        win_wait += res.wait_s;
        win_comm += res.comm_s;
        tr->wait_s += res.wait_s;
        tr->comm_s += res.comm_s;
        if (!ok) {
            if (tr->root)
                fprintf(stderr, "step %" PRId64 ": non-finite %s; step skipped\n", run->step + 1,
                        res.bad);
            dsf_step_reset_state(&tr->step);  // the carried state is likely bad too
            if (++bad >= opt->max_bad) {
                rc = dsf_error_set("%d consecutive non-finite steps: stopping%s", bad,
                                   opt->save ? " (the last checkpoint written is intact)" : "");
                break;
            }
        } else {
            bad = 0;
            win_loss += loss;
            win_steps++;
            finite++;
        }
        tr->step_s += dsf_now() - step_t0;
        win_tokens += (double)counted;
        run->tokens += counted;
        run->step++;
        run->epoch_pos++;
        evaluated_at_end = 0;
        if (win_steps && (run->step % opt->log_every == 0 || run->epoch_pos == per_epoch ||
                          run->step == run->total_steps)) {
            double now = dsf_now(), mean = win_loss / win_steps;
            double tok_s = win_tokens / (now - win_t0);
            double left = (now - run_t0) / (double)(run->step - start_step) *
                          (double)(run->total_steps - run->step);
            char eta[32], comm_desc[64] = "";
            format_duration(eta, sizeof eta, left);
            if (dist_size() > 1) {
                double steps = (double)(run->step - win_from);
                snprintf(comm_desc, sizeof comm_desc,
                         " | all-reduce %.1f + wait %.1f of %.1f ms/step", 1e3 * win_comm / steps,
                         1e3 * win_wait / steps, 1e3 * (now - win_t0) / steps);
            }
            if (tr->root)
                fprintf(stderr, "step %" PRId64 "/%" PRId64 " | epoch %" PRId64 " %3.0f%% | loss %.4f ppl %.2f"
                                " | lr %.4g | gnorm %.3f | %.0f tokens/s%s | %s left\n",
                        run->step, run->total_steps, run->epoch + 1,
                        100.0 * (double)run->epoch_pos / (double)per_epoch, mean, exp(mean), lr, gnorm,
                        tok_s, comm_desc, eta);
            log_row(tr, "train", mean, lr, gnorm, tok_s);
            win_loss = win_tokens = win_comm = win_wait = 0;
            win_steps = 0;
            win_t0 = now;
            win_from = run->step;
        }
        if (every && run->step % every == 0) {
            dsf_step_sync(&tr->step);
            if ((rc = validate(tr, opt, 0))) break;
        }
        if (run->epoch_pos == per_epoch) {
            dsf_step_sync(&tr->step);
            if (!every && (rc = validate(tr, opt, 1))) break;
            run->epoch++;
            run->epoch_pos = 0;
            evaluated_at_end = 1;
            if (opt->save && (rc = save_checkpoint(tr, opt->save))) break;
        }
    }
    free(x);
    free(y);
    free(xs);
    free(ys);
    if (rc) return rc;
    if (run->step > start_step && finite == 0)
        return dsf_error_set("no step of the run had a finite loss and gradient");
    dsf_step_sync(&tr->step);
    if (run->step < run->total_steps) {  // interrupted, or --stop-at
        const char *why = stop ? "interrupted" : "stopped (--stop-at)";
        if (opt->save) {
            if (save_checkpoint(tr, opt->save)) return -1;
            if (tr->root)
                fprintf(stderr, "%s after step %" PRId64 " of %" PRId64 ": saved %s; continue with "
                                "--resume %s\n", why, run->step, run->total_steps, opt->save, opt->save);
        } else if (tr->root) {
            fprintf(stderr, "%s after step %" PRId64 " of %" PRId64 " (no --save given: nothing "
                            "written)\n", why, run->step, run->total_steps);
        }
        return stop ? 130 : 1;
    }
    // Waiting: the ranks' mean, which a rank that is always the slowest (and
    // never waits) would hide (collective).
    const double wait_s = dist_size() > 1 ? dist_sum(tr->wait_s) / dist_size() : 0;
    if (tr->root && dist_size() > 1 && run->step > start_step) {
        double steps = (double)(run->step - start_step);
        fprintf(stderr, "data parallel: %d processes, %.0f tokens/s in steps of %.1f ms: all-"
                        "reduce %.1f ms (%.1f%%), waiting for the slowest rank %.1f ms (%.1f%%, the "
                "ranks' mean)\n",
                dist_size(), (double)(run->tokens - start_tokens) / tr->step_s,
                1e3 * tr->step_s / steps,
                1e3 * tr->comm_s / steps, 100 * tr->comm_s / tr->step_s,
                1e3 * wait_s / steps, 100 * wait_s / tr->step_s);
    }
    if (tr->root && tr->m.fits > 0)
        fprintf(stderr, "feedback fit: %" PRId64 " re-estimates in %.2fs, %.1f%% of the training "
                        "time\n", tr->m.fits, tr->m.fit_seconds,
                100 * tr->m.fit_seconds / (dsf_now() - run_t0));
    if (!every && !evaluated_at_end && run->step > start_step && (rc = validate(tr, opt, 0)))
        return rc;
    if (opt->save && !evaluated_at_end && save_checkpoint(tr, opt->save)) return -1;
    return 0;
}

static int train_command(int argc, char **argv) {
    train_opts o = {.arch = "stack", .level = "word", .cell = "gru", .method = "dsf", .feedback = "uniform",
                    .scan = "seq", .batching = "stream", .schedule = "auto",
                    .optim = "sgd", .layers = 2, .emb = 200, .hidden = 200, .batch = 20,
                    .seq = 35, .eval_batch = 10, .threads = cli_default_threads(),
                    .log_every = 200, .max_bad = 10, .epochs = 1, .steps = 0, .warmup = -1,
                    .lr = 20, .clip = 0.25, .weight_decay = 0.01, .seed = 1, .device = "cpu"};
    arg_spec specs[] = {
        OPT("data", ARG_STR, &o.data, 0, 0, "data directory, text file or builtin:recall[:D]"),
        OPT("level", ARG_STR, &o.level, 0, 0, "word or char"),
        CLI_MODEL_OPTS(o),
        OPT("batch", ARG_INT, &o.batch, 1, 1 << 20, "parallel streams per step"),
        OPT("seq", ARG_INT, &o.seq, 1, 1 << 20, "steps per truncated sequence"),
        CLI_METHOD_OPTS(o),
        OPT("recipe", ARG_STR, &o.recipe, 0, 0,
            "paper-ptb or paper-wikitext: the authors' recipe as defaults for the flags not given (see above)"),
        OPT("batching", ARG_STR, &o.batching, 0, 0,
            "stream (B streams, state carried), sentence (each line from a zero state, padded) "
            "or chunk (the stream cut into chunks of seq + 1 tokens, each from a zero state)"),
        OPT("optim", ARG_STR, &o.optim, 0, 0,
            "sgd, adamw (decoupled decay) or adam (torch.optim.Adam: coupled L2 on every tensor)"),
        OPT("lr", ARG_FLOAT, &o.lr, 0, 1e6, "learning rate (adamw, adam default 1e-3)"),
        OPT("schedule", ARG_STR, &o.schedule, 0, 0,
            "auto (sgd: plateau division; adam[w]: warm-up, cosine), const, step:E,G (x G every E "
            "epochs) or cosine (warm-up from 1e-6 lr, cosine to 0.1 lr)"),
        OPT("clip", ARG_FLOAT, &o.clip, 0, 1e9, "global gradient-norm clip (0: none)"),
        OPT("warmup", ARG_I64, &o.warmup, -1, 1e15, "warm-up steps (-1: auto 5% of the run, cosine none)"),
        OPT("warmup-ratio", ARG_FLOAT, &o.warmup_ratio, 0, 1, "warm-up as a share of the run's steps"),
        OPT("weight-decay", ARG_FLOAT, &o.weight_decay, 0, 1e3, "adamw decoupled weight decay; adam's L2"),
        OPT("init-std", ARG_FLOAT, &o.init_std, 0, 10,
            "embedding and decoder weights N(0, std^2) (0: PyTorch's U(+-0.1))"),
        OPT("evals", ARG_INT, &o.evals, 0, 1 << 30,
            "validations spread evenly over the run, the best model kept (0: one per epoch)"),
        OPT("dropout", ARG_FLOAT, &o.dropout, 0, 0.99, "dropout on the embedding, between layers and before the decoder"),
        OPT("tie", ARG_FLAG, &o.tie, 0, 0, "tie the decoder's weight to the embedding (needs --emb = --hidden)"),
        OPT("arch", ARG_STR, &o.arch, 0, 0, "stack (embedding, layers, decoder), residual (the stack with x <- x + RNN(x), emb = hidden) or block (residual RNN + MLP blocks, LayerNorm, tied)"),
        OPT("mlp", ARG_INT, &o.mlp, 1, 1 << 22, "block: the MLP's width (default 4 x hidden)"),
        OPT("block-proj", ARG_FLAG, &o.block_proj, 0, 0, "block: a Linear H -> H after the RNN, x <- x + proj(RNN(LN(x)))"),
        OPT("untied", ARG_FLAG, &o.untied, 0, 0, "block: the decoder has its own weight"),
        OPT("epochs", ARG_I64, &o.epochs, 1, 1e9, "epochs to train"),
        OPT("steps", ARG_I64, &o.steps, 1, 1e15, "total steps of the run (instead of --epochs)"),
        OPT("eval-batch", ARG_INT, &o.eval_batch, 1, 1 << 20, "batch size for evaluation"),
        OPT("seed", ARG_I64, &o.seed, 0, 9.2e18, "random seed"),
        OPT("save", ARG_STR, &o.save, 0, 0, "checkpoint written each epoch and at the end"),
        OPT("resume", ARG_STR, &o.resume, 0, 0, "continue the run saved in this checkpoint"),
        OPT("init", ARG_STR, &o.init, 0, 0, "start from the weights in this model file"),
        OPT("log", ARG_STR, &o.log, 0, 0, "CSV log of training and evaluation rows"),
        OPT("log-every", ARG_INT, &o.log_every, 1, 1 << 30, "steps between progress lines"),
        OPT("max-bad-steps", ARG_INT, &o.max_bad, 1, 1 << 30,
         "consecutive non-finite steps before stopping"),
        OPT("threads", ARG_INT, &o.threads, 1, 4096, "threads"),
        OPT("device", ARG_STR, &o.device, 0, 0,
            "cpu, or cuda: the training steps on the GPU (a build with make CUDA=1)"),
        OPT("stop-at", ARG_I64, &o.stop_at, 1, 1e15,
            "stop after this step as if interrupted (saves with --save), but exit 0 without a test"),
        OPT("no-test", ARG_FLAG, &o.no_test, 0, 0, "skip the test-split evaluation at the end"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    if (!o.data) return dsf_error_set("--data is required (see --help)");
    if (train_apply_recipe(&o, specs, n)) return -1;
    if (o.init && o.resume) return dsf_error_set("give --init or --resume, not both");
    if (args_given(specs, n, "steps") && args_given(specs, n, "epochs"))
        return dsf_error_set("give --epochs or --steps, not both");
    int cuda = 0;
    if ((rc = cli_parse_device(o.device, &cuda))) return rc;
    // Ranks on one machine share its cores.
    if (!args_given(specs, n, "threads") && dist_local_size() > 1)
        o.threads = o.threads > dist_local_size() ? o.threads / dist_local_size() : 1;
    dsf_set_threads(o.threads);

    trainer tr;
    memset(&tr, 0, sizeof tr);
    tr.t0 = dsf_now();
    tr.root = dist_rank() == 0;
    if ((rc = train_setup(&tr, &o, specs, n)) == 0 && cuda) rc = train_gpu_setup(&tr);
    if (rc == 0 && (rc = dsf_step_create(&tr.step, &tr.m, &tr.w, &tr.o, tr.gpu, tr.run.method,
                                         tr.run.clip)) == 0)
        tr.step.step = tr.run.step;  // a resumed run's fit schedule goes on
    if (rc == 0) {
        if (o.log && tr.root) {
            int append = o.resume != NULL;
            tr.log = fopen(o.log, append ? "a" : "w");
            if (!tr.log)
                rc = dsf_error_set("cannot write log %s", o.log);
            else if ((!append || ftell(tr.log) == 0) &&
                     (fprintf(tr.log, "kind,epoch,step,tokens,loss,ppl,lr,grad_norm,tokens_per_s,"
                                      "elapsed_s\n") < 0 || fflush(tr.log) != 0))
                rc = dsf_error_set("cannot write log %s: %s", o.log, strerror(errno));
        }
    }
    rc = dist_agree(rc);  // setup on every rank, the log on rank 0
    if (rc == 0) {
        if (tr.root) print_header(&tr);
        signal(SIGINT, on_signal);
        signal(SIGTERM, on_signal);
        rc = train_loop(&tr, &o);
        signal(SIGINT, SIG_DFL);
        signal(SIGTERM, SIG_DFL);
    }
    if (rc == 1) rc = 0;  // stopped early on purpose: no test evaluation
    else if (rc == 0 && !o.no_test) {
        memcpy(tr.m.params, tr.best, tr.m.n * sizeof(float));  // the best model
        double test = evaluate(&tr, DSF_SPLIT_TEST);
        if (isnan(test)) {
            rc = -1;
        } else {
            char buf[96];
            cli_format_loss(buf, sizeof buf, test, tr.run.level);
            if (tr.root)
                printf("test %s (model with the best validation loss, %.4f, ppl %.2f)\n", buf,
                       tr.best_seen, exp(tr.best_seen));
            log_row(&tr, "test", test, 0, 0, 0);
        }
    }
    if (tr.root && rc == 0) cli_print_peak_memory();
    if (tr.log && (fclose(tr.log) != 0 || tr.log_errno) && rc == 0)
        rc = dsf_error_set("cannot write the log %s: %s", o.log,
                           strerror(tr.log_errno ? tr.log_errno : errno));
    dsf_gpu_destroy(tr.gpu);
    dsf_gpu_destroy(tr.egpu);
    dsf_free(tr.best);
    seqbatch_free(&tr.sb);
    dsf_free(tr.state_all);
    optim_destroy(&tr.o);
    lm_work_destroy(&tr.w);
    lm_work_destroy(&tr.ew);
    lm_destroy(&tr.m);
    corpus_free(&tr.corpus);
    return rc;
}

// Under mpirun every rank runs the whole command (src/dist). Errors are agreed
// between the ranks where they can differ; of the ranks that failed alike only
// the lowest prints, so that N processes report one line. It prints before
// MPI_Finalize: once a rank has exited non-zero, mpirun kills the others.
int cmd_train(int argc, char **argv) {
    if (dist_init()) return -1;
    int rc = train_command(argc, argv);
    if (rc < 0 && dist_size() > 1) {
        if (dist_reports_error()) fprintf(stderr, "dsf train: %s\n", dsf_error());
        rc = 1;
    }
    dist_finalize();
    return rc;
}
