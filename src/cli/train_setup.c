// train_setup.c: `dsf train` before its first step: the model, data, optimizer and
// work areas from the flags or a checkpoint (resume), each rank's streams, the
// GPU copy, and the --recipe defaults.
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <string.h>
#include <sys/stat.h>

#include "dist/dist.h"
#include "grad/feedback.h"
#include "train.h"

// --device cuda: after setup, a copy of the model, its moments and its carried
// state (a resumed run's) on the GPU, for this rank's streams; what the backend
// cannot train is refused.
int train_gpu_setup(trainer *tr) {
    const dsf_run *run = &tr->run;
    if (run->optim == DSF_OPTIM_ADAM)
        return dsf_error_set("--device cuda: --optim adam (coupled L2) is not implemented on the "
                             "GPU (sgd and adamw are)");
    if (dsf_gpu_select(dist_local_rank()) < 0 || dsf_gpu_check(&tr->m, run->method, run->scan) ||
        dsf_gpu_create(&tr->gpu, &tr->m, &tr->o, (int)tr->share.count, run->seq, run->scan) ||
        dsf_gpu_set_dropout(tr->gpu, run->dropout, &tr->rng))  // the CPU's masks, drawn alike
        return -1;
    dsf_gpu_set_streams(tr->gpu, run->batch, tr->share.first, tr->share.stride);  // this rank's part
    dsf_gpu_set_state(tr->gpu, tr->w.state);
    dsf_gpu_set_state_c(tr->gpu, tr->w.state_c);
    // Evaluation: a second copy of the model, for this rank's share of the
    // evaluation batch, no optimizer.
    return dsf_gpu_create_eval(&tr->egpu, &tr->m, tr->ew.B, run->seq);
}

// Takes the run description from the checkpoint; flags that were given must agree.
static int check_resume(const dsf_run *ck, const train_opts *o, const arg_spec *specs, int n,
                        const dsf_lm_config *mc) {
#define CONFLICT(flag, cond, fmt, mine, theirs)                                     \
    if (args_given(specs, n, flag) && (cond))                                       \
        return dsf_error_set("--%s " fmt " conflicts with the checkpoint's " fmt     \
                             " (resume takes the configuration from the checkpoint)", \
                             flag, mine, theirs);
    dsf_level lv;
    if (args_given(specs, n, "level") && dsf_level_parse(o->level, &lv)) return -1;
    CONFLICT("level", lv != ck->level, "%s", o->level, dsf_level_name(ck->level))
    CONFLICT("cell", strcmp(o->cell, ck->cell), "%s", o->cell, ck->cell)
    CONFLICT("method", strcmp(o->method, dsf_method_name(ck->method)), "%s", o->method,
             dsf_method_name(ck->method))
    CONFLICT("scan", strcmp(o->scan, dsf_scan_name(ck->scan)), "%s", o->scan,
             dsf_scan_name(ck->scan))
    CONFLICT("optim", strcmp(o->optim, dsf_optim_name(ck->optim)), "%s", o->optim,
             dsf_optim_name(ck->optim))
    CONFLICT("layers", o->layers != mc->L, "%d", o->layers, mc->L)
    CONFLICT("emb", o->emb != mc->E, "%d", o->emb, mc->E)
    CONFLICT("hidden", o->hidden != mc->H, "%d", o->hidden, mc->H)
    CONFLICT("batch", o->batch != ck->batch, "%d", o->batch, ck->batch)
    CONFLICT("seq", o->seq != ck->seq, "%d", o->seq, ck->seq)
    CONFLICT("eval-batch", o->eval_batch != ck->eval_batch, "%d", o->eval_batch, ck->eval_batch)
    CONFLICT("seed", (uint64_t)o->seed != ck->seed, "%" PRIu64, (uint64_t)o->seed, ck->seed)
    CONFLICT("lr", o->lr != ck->base_lr, "%g", o->lr, ck->base_lr)
    CONFLICT("clip", o->clip != ck->clip, "%g", o->clip, ck->clip)
    CONFLICT("dropout", o->dropout != ck->dropout, "%g", o->dropout, ck->dropout)
    CONFLICT("arch", strcmp(o->arch, dsf_arch_name(mc->arch)), "%s", o->arch,
             dsf_arch_name(mc->arch))
    const char *unit = dsf_unit_name(ck->unit);
    CONFLICT("batching", strcmp(o->batching, unit), "%s", o->batching, unit)
    CONFLICT("evals", o->evals != ck->evals, "%d", o->evals, ck->evals)
    CONFLICT("init-std", o->init_std != ck->init_std, "%g", o->init_std, ck->init_std)
    if (args_given(specs, n, "schedule")) {
        dsf_schedule sc;
        char canon[48];
        if (dsf_schedule_parse(o->schedule, &sc)) return -1;
        dsf_schedule_format(&sc, canon, sizeof canon);
        CONFLICT("schedule", strcmp(canon, ck->schedule), "%s", canon, ck->schedule)
    }
    CONFLICT("mlp", o->mlp != mc->mlp, "%d", o->mlp, mc->mlp)
    CONFLICT("block-proj", o->block_proj != mc->proj, "%s", o->block_proj ? "given" : "absent",
             mc->proj ? "with a projection" : "without one")
    CONFLICT("untied", o->untied != !mc->tie, "%s", o->untied ? "given" : "absent",
             mc->tie ? "tied" : "untied")
    CONFLICT("tie", o->tie != mc->tie, "%s", o->tie ? "given" : "absent",
             mc->tie ? "tied" : "untied")
    CONFLICT("weight-decay", o->weight_decay != ck->weight_decay, "%g", o->weight_decay,
             ck->weight_decay)
    if (args_given(specs, n, "feedback")) {
        dsf_feedback fb;
        char canon[64];
        if (dsf_feedback_parse(o->feedback, &fb)) return -1;
        dsf_feedback_format(&fb, canon, sizeof canon);
        CONFLICT("feedback", strcmp(canon, ck->feedback), "%s", canon, ck->feedback)
    }
#undef CONFLICT
    return 0;
}

// On resume, the best parameters so far come from the best-model file beside
// the checkpoint, when it is there and fits; else the current ones stand in.
static void load_best(trainer *tr, const char *resume) {
    char path[4096];
    cli_best_path(path, sizeof path, resume);
    st_file *f = st_load(path);
    dsf_lm b;
    int has_fb;
    if (f && ckpt_read_model(f, &b, &has_fb) == 0) {
        if (b.n == tr->m.n) memcpy(tr->best, b.params, b.n * sizeof(float));
        lm_destroy(&b);
    } else if (tr->root) {
        fprintf(stderr, "note: no usable best model at %s; the test evaluation will use the "
                        "model at the end of the run\n", path);
    }
    st_free(f);
}

// --init: starting weights (and feedback, when the file has it) from a model
// file with the PyTorch names, e.g. one saved from torch.nn.GRU; its shapes must
// be those of the model the flags describe.
static int load_init(dsf_lm *m, const char *path) {
    st_file *f = st_load(path);
    if (!f) return -1;
    dsf_lm init;
    int has_fb, rc = ckpt_read_model(f, &init, &has_fb);
    st_free(f);
    if (rc) return -1;
    const dsf_lm_config *a = &m->cfg, *b = &init.cfg;
    if (a->V != b->V || a->E != b->E || a->H != b->H || a->L != b->L) {
        dsf_error_set("%s holds a model with vocabulary %d, emb %d, hidden %d, %d layers; the "
                      "flags and data ask for %d, %d, %d, %d", path, b->V, b->E, b->H, b->L,
                      a->V, a->E, a->H, a->L);
        lm_destroy(&init);
        return -1;
    }
    memcpy(m->params, init.params, m->n * sizeof(float));
    if (has_fb) memcpy(m->feedback, init.feedback, (size_t)a->L * a->H * sizeof(float));
    if (init.fb_u && m->fb.kind == DSF_FEEDBACK_LOWRANK && init.fb.rank == m->fb.rank) {
        const size_t nr = (size_t)a->L * a->H * m->fb.rank * sizeof(float);
        memcpy(m->fb_u, init.fb_u, nr);
        memcpy(m->fb_v, init.fb_v, nr);
    }
    lm_destroy(&init);
    return 0;
}

static int same_vocab(const dsf_vocab *a, const dsf_vocab *b) {
    if (vocab_size(a) != vocab_size(b)) return 0;
    for (int32_t i = 0; i < vocab_size(a); i++) {
        size_t la, lb;
        const char *sa = vocab_str(a, i, &la), *sb = vocab_str(b, i, &lb);
        if (la != lb || memcmp(sa, sb, la)) return 0;
    }
    return 1;
}

// Each rank trains on its B/N streams and evaluates its share of the evaluation
// streams; rank 0 keeps room for the state of every stream, for checkpoints.
static int split_streams(trainer *tr, const st_file *ck, const char *resume) {
    const dsf_run *run = &tr->run;
    const int N = dist_size();
    if (ck && run->world_size != N)
        return dsf_error_set("%s was written by %d process%s; resume it with as many "
                             "(mpirun -np %d), not %d", resume, run->world_size,
                             run->world_size > 1 ? "es" : "", run->world_size, N);
    if (run->batch % N)
        return dsf_error_set("--batch %d does not split evenly over %d processes (give a "
                             "multiple of %d)", run->batch, N, N);
    if (run->eval_batch < N)
        return dsf_error_set("--eval-batch %d is smaller than the %d processes", run->eval_batch,
                             N);
    // Sentences come sorted longest first in each batch: dealt round robin,
    // every rank gets long and short rows alike (dist/dist.h).
    tr->share = dist_rows(run->batch, !tr->seqs);
    size_t n = 2 * (size_t)tr->m.cfg.L * run->batch * tr->m.cfg.H;  // h, then the LSTM's c
    if (tr->root && !(tr->state_all = dsf_alloc(n * sizeof(float)))) return -1;
    return 0;
}

// The checkpoint holds the state of all B streams; this rank takes its own
// (contiguous). Sentences carry none: each batch starts from zero.
static int read_state(trainer *tr, const st_file *ck) {
    const int H = tr->m.cfg.H, B = tr->run.batch;
    dsf_lm_work all;
    memset(&all, 0, sizeof all);  // ckpt_read_state uses only B, state and state_c
    all.B = B;
    const size_t LBH = (size_t)tr->m.cfg.L * B * H;
    if (!(all.state = dsf_alloc(2 * LBH * sizeof(float)))) return -1;
    all.state_c = all.state + LBH;
    int rc = ckpt_read_state(ck, &tr->m, &all, &tr->rng);
    const size_t mine = (size_t)tr->share.count * H;
    DSF_ASSERT(tr->seqs || tr->share.stride == 1);
    for (int l = 0; rc == 0 && !tr->seqs && l < tr->m.cfg.L; l++) {
        memcpy(tr->w.state + l * mine, all.state + ((size_t)l * B + tr->share.first) * H,
               mine * sizeof(float));
        memcpy(tr->w.state_c + l * mine, all.state_c + ((size_t)l * B + tr->share.first) * H,
               mine * sizeof(float));
    }
    dsf_free(all.state);
    return rc;
}

// The files the run writes must not be one of the data files it reads, and the
// checkpoints (--save and its best model), which replace their file by a rename,
// not a device, a FIFO or a directory (a log may be /dev/stdout).
static int check_outputs(const trainer *tr, const train_opts *o) {
    char best[4096];
    if (o->save) cli_best_path(best, sizeof best, o->save);
    const char *out[3] = {o->save, o->save ? best : NULL, o->log};
    const char *what[3] = {"--save", "--save's best model", "--log"};
    for (int i = 0; i < 3; i++) {
        struct stat so;
        if (!out[i] || stat(out[i], &so) != 0) continue;
        if (i < 2 && !S_ISREG(so.st_mode))  // a checkpoint replaces its file by a rename
            return dsf_error_set("%s %s exists and is not a regular file", what[i], out[i]);
        const char *data[DSF_NSPLITS + 1] = {o->data, tr->corpus.source[0], tr->corpus.source[1],
                                             tr->corpus.source[2]};
        for (int k = 0; k <= DSF_NSPLITS; k++) {
            struct stat sd;
            if (data[k] && stat(data[k], &sd) == 0 && sd.st_dev == so.st_dev &&
                sd.st_ino == so.st_ino)
                return dsf_error_set("%s %s is the data file %s: it would be overwritten",
                                     what[i], out[i], data[k]);
        }
    }
    return 0;
}

int train_setup(trainer *tr, train_opts *o, arg_spec *specs, int nspecs) {
    dsf_run *run = &tr->run;
    dsf_level level;
    if (dsf_level_parse(o->level, &level)) return -1;
    dsf_cell cell;
    if (dsf_cell_parse(o->cell, &cell)) return -1;
    dsf_method method;
    dsf_optim_kind optim;
    dsf_feedback fb;
    dsf_scan_kind scan;
    dsf_arch arch;
    dsf_schedule sched;
    dsf_unit unit = DSF_UNIT_STREAM;
    if (dsf_method_parse(o->method, &method) || dsf_optim_parse(o->optim, &optim) ||
        dsf_feedback_parse(o->feedback, &fb) || cli_parse_scan(o->scan, &scan) ||
        cli_check_feedback_scan(&fb, scan) || cli_check_feedback_cell(&fb, cell) ||
        dsf_arch_parse(o->arch, &arch) || dsf_schedule_parse(o->schedule, &sched))
        return -1;
    if (dsf_unit_parse(o->batching, &unit)) return -1;
    if (optim != DSF_OPTIM_SGD && !args_given(specs, nspecs, "lr")) o->lr = 1e-3;

    st_file *ck = NULL;
    dsf_vocab *ck_vocab = NULL;
    if (o->resume) {
        if (!(ck = st_load(o->resume))) return -1;
        int has_fb;
        if (ckpt_read_run(ck, run, &ck_vocab) || ckpt_read_model(ck, &tr->m, &has_fb) ||
            ckpt_set_feedback(&tr->m, run->feedback) || ckpt_check_cell(&tr->m, run) ||
            check_resume(run, o, specs, nspecs, &tr->m.cfg)) {
            st_free(ck);
            vocab_free(ck_vocab);
            return -1;
        }
        level = run->level;
        unit = run->unit;
        if (dsf_schedule_parse(run->schedule, &sched)) goto fail;
    }
    if (corpus_load_units(&tr->corpus, o->data, level, unit) || check_outputs(tr, o)) goto fail;
    tr->seqs = unit != DSF_UNIT_STREAM;
    for (int k = 0; unit == DSF_UNIT_CHUNK && k < DSF_NSPLITS; k++)  // chunks of seq + 1 tokens
        if (tokens_chunk(&tr->corpus.split[k], (int64_t)(ck ? run->seq : o->seq) + 1,
                         tr->corpus.source[k]))
            goto fail;
    if (ck && !same_vocab(ck_vocab, tr->corpus.vocab)) {
        dsf_error_set("the vocabulary of %s (%d entries) differs from the checkpoint's (%d)",
                      o->data, vocab_size(tr->corpus.vocab), vocab_size(ck_vocab));
        goto fail;
    }
    if (!ck) {
        dsf_lm_config cfg = {.V = vocab_size(tr->corpus.vocab), .E = o->emb, .H = o->hidden,
                             .L = o->layers, .cell = cell, .tie = o->tie};
        cfg.arch = arch;
        if (arch != DSF_ARCH_STACK) {
            // A residual stream keeps one width H: the embedding is H wide.
            if (args_given(specs, nspecs, "emb") && o->emb != o->hidden) {
                dsf_error_set("--arch %s needs --emb equal to --hidden (or no --emb)", o->arch);
                goto fail;
            }
            cfg.E = o->hidden;
        }
        if (arch == DSF_ARCH_BLOCK) {  // tied unless --untied
            cfg.tie = !o->untied;
            cfg.proj = o->block_proj;
            cfg.mlp = o->mlp > 0 ? o->mlp : 4 * o->hidden;
        } else if (o->untied || o->block_proj) {
            dsf_error_set("--untied and --block-proj are options of --arch block");
            goto fail;
        }
        if (lm_create(&tr->m, &cfg)) goto fail;
        *run = (dsf_run){.level = level, .method = method, .optim = optim, .batch = o->batch,
                         .seq = o->seq, .eval_batch = o->eval_batch, .seed = (uint64_t)o->seed,
                         .clip = o->clip, .base_lr = o->lr, .lr = o->lr, .best_val = INFINITY,
                         .dropout = o->dropout, .unit = unit, .evals = o->evals,
                         .init_std = o->init_std, .world_size = dist_size()};
        dsf_schedule_format(&sched, run->schedule, sizeof run->schedule);
        snprintf(run->cell, sizeof run->cell, "%s", o->cell);
        run->scan = scan;
        dsf_feedback_format(&fb, run->feedback, sizeof run->feedback);
        dsf_rng_seed(&tr->rng, run->seed);
        lm_init_params(&tr->m, &tr->rng);
        if (run->init_std > 0) lm_init_normal(&tr->m, &tr->rng, (float)run->init_std);
        if (lm_set_feedback(&tr->m, &fb, &tr->rng, o->seq)) goto fail;
        if (o->init && load_init(&tr->m, o->init)) goto fail;
    }
    const dsf_tokens *train = &tr->corpus.split[DSF_SPLIT_TRAIN];
    if ((tr->seqs ? seqbatch_init(&tr->sb, train, run->batch, run->seq, DSF_PAD_ID)
                  : batcher_init(&tr->bt, train, run->batch, run->seq)) ||
        split_streams(tr, ck, o->resume))
        goto fail;
    tr->sb.drop_last = unit == DSF_UNIT_CHUNK;  // as the authors' train loader
    int64_t per_epoch = train_steps_per_epoch(tr);
    if (ck && run->epoch_pos >= per_epoch) {
        dsf_error_set("%s stopped at step %" PRId64 " of an epoch, but %s has %" PRId64
                      " steps per epoch (other data, or another batch size?)", o->resume,
                      run->epoch_pos, o->data, per_epoch);
        goto fail;
    }
    // The splits evaluated must hold a batch: found now, not after training.
    for (int k = DSF_SPLIT_VALID; k <= (o->no_test ? DSF_SPLIT_VALID : DSF_SPLIT_TEST); k++) {
        const dsf_tokens *t = &tr->corpus.split[k];
        dsf_batcher probe;
        if (tr->seqs ? t->nseq < 1 : batcher_init(&probe, t, run->eval_batch, run->seq)) {
            char why[512];
            snprintf(why, sizeof why, "%s", tr->seqs ? "it has no sequence" : dsf_error());
            dsf_error_set("the %s split (%s) is too small to evaluate: %s", dsf_split_name(k),
                          tr->corpus.source[k], why);
            goto fail;
        }
    }
    if (args_given(specs, nspecs, "steps"))
        run->total_steps = o->steps;
    else if (!ck || args_given(specs, nspecs, "epochs"))
        run->total_steps = o->epochs * per_epoch;
    // Sentences: each rank's rows dealt round robin (dist/dist.h), so that
    // the rows of a batch sorted longest first split evenly in work.
    const int64_t eval_count = dist_rows(run->eval_batch, !tr->seqs).count;
    if (lm_work_create(&tr->w, &tr->m.cfg, (int)tr->share.count, run->seq) ||
        lm_work_create_eval(&tr->ew, &tr->m.cfg, (int)eval_count, run->seq) ||
        optim_create(&tr->o, run->optim, (float)run->base_lr, tr->m.n))
        goto fail;
    tr->w.scan = run->scan;
    tr->w.ragged = tr->seqs;  // each batch from a zero state: padding skipped (model/lm.h)
    tr->w.dropout = (float)run->dropout;  // the masks come from the run's generator,
    tr->w.rng = &tr->rng;                 // saved in checkpoints: resume stays exact;
    tr->w.drop_B = run->batch;            // each rank draws its streams' part of the
    tr->w.drop_first = tr->share.first;   // whole batch's masks
    tr->w.drop_stride = tr->share.stride;
    // Warm-up: --warmup steps, or --warmup-ratio of the run, else 5% of it (auto)
    // or none (cosine).
    const int ratio = args_given(specs, nspecs, "warmup-ratio");
    if (ratio && args_given(specs, nspecs, "warmup")) {
        dsf_error_set("give --warmup or --warmup-ratio, not both");
        goto fail;
    }
    if (!ck || args_given(specs, nspecs, "warmup") || ratio) {
        if (!ck) run->weight_decay = o->weight_decay;
        run->warmup = o->warmup >= 0 ? o->warmup
                      : ratio ? llround(o->warmup_ratio * (double)run->total_steps)
                      : sched.kind == DSF_SCHED_COSINE ? 0 : run->total_steps / 20;
    }
    tr->o.total = run->total_steps;
    tr->o.warmup = run->warmup;
    tr->o.weight_decay = (float)run->weight_decay;
    tr->o.sched = sched.kind;
    if (sched.kind == DSF_SCHED_STEP) {
        tr->o.step_every = llround(sched.every_epochs * (double)per_epoch);
        if (tr->o.step_every < 1) tr->o.step_every = 1;
        tr->o.gamma = (float)sched.gamma;
    }
    if (ck) {
        tr->o.t = run->optim_t;
        tr->o.lr = (float)run->lr;
        if (ckpt_read_optim(ck, &tr->m, &tr->o) || read_state(tr, ck)) goto fail;
        if (tr->root)
            fprintf(stderr, "resumed %s at step %" PRId64 " (epoch %" PRId64 ", step %" PRId64
                            " of it)\n", o->resume, run->step, run->epoch + 1, run->epoch_pos);
    }
    if (!(tr->best = dsf_alloc(tr->m.n * sizeof(float)))) goto fail;
    memcpy(tr->best, tr->m.params, tr->m.n * sizeof(float));
    tr->best_seen = run->best_val;
    if (ck && isfinite(run->best_val)) load_best(tr, o->resume);
    st_free(ck);
    vocab_free(ck_vocab);
    return 0;
fail:
    st_free(ck);
    vocab_free(ck_vocab);
    return -1;
}

// --recipe: the defaults of a published recipe, for the flags not given.
int train_apply_recipe(train_opts *o, const arg_spec *specs, int n) {
    if (!o->recipe) return 0;
    const int ptb = strcmp(o->recipe, "paper-ptb") == 0;
    if (!ptb && strcmp(o->recipe, "paper-wikitext") != 0)
        return dsf_error_set("unknown recipe '%s' (there are paper-ptb and paper-wikitext)",
                             o->recipe);
#define SET(flag, field, value) \
    if (!args_given(specs, n, flag)) o->field = value;
    // Both: Adam at 1e-3 without clipping, batches of 128 sequences from a zero
    // state (validation in 256), the best of 50 validations, N(0, 0.02) weights,
    // A = diag(linspace(0, 1, H)).
    SET("batch", batch, 128)
    SET("eval-batch", eval_batch, 256)
    SET("optim", optim, "adam")
    SET("lr", lr, 1e-3)
    SET("clip", clip, 0)
    SET("evals", evals, 50)
    SET("init-std", init_std, 0.02)
    SET("feedback", feedback, "linspace")
    if (ptb) {  // configs/ptb_word/gru_*.yml
        SET("arch", arch, "residual")
        SET("batching", batching, "sentence")
        SET("seq", seq, 64)
        SET("weight-decay", weight_decay, 1e-4)
        SET("schedule", schedule, "step:10,0.1")
        SET("epochs", epochs, 30)
        SET("layers", layers, 1)
    } else {  // configs/wikitext103_word/gru_3L*.yml
        SET("arch", arch, "block")
        SET("block-proj", block_proj, 1)
        SET("untied", untied, 1)
        SET("batching", batching, "chunk")
        SET("seq", seq, 255)
        SET("weight-decay", weight_decay, 0)
        SET("schedule", schedule, "cosine")
        SET("warmup-ratio", warmup_ratio, 0.1)
        SET("epochs", epochs, 5)
        SET("layers", layers, 3)
    }
    SET("hidden", hidden, 256)
    SET("emb", emb, o->hidden)
#undef SET
    return 0;
}

