// checkpoint.c: see checkpoint.h.
#include "checkpoint.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <string.h>

// A name or value formatted for the writer, which copies it: one buffer serves
// every call, and a checkpoint may hold any number of tensors.
typedef struct {
    char s[160];
} namebuf;

static const char *name_fmt(namebuf *b, const char *f, ...) DSF_PRINTF(2, 3);
static const char *name_fmt(namebuf *b, const char *f, ...) {
    va_list ap;
    va_start(ap, f);
    int n = vsnprintf(b->s, sizeof b->s, f, ap);
    va_end(ap);
    DSF_ASSERT(n >= 0 && (size_t)n < sizeof b->s);
    return b->s;
}

static void add_params(st_writer *w, const dsf_lm *m, const float *base, const char *prefix) {
    namebuf b;
    for (int i = 0; i < m->ntensors; i++) {
        const dsf_param *p = &m->tensors[i];
        const char *name = prefix ? name_fmt(&b, "%s%s", prefix, p->name) : p->name;
        st_writer_add(w, name, ST_F32, p->ndim, p->shape, base + p->offset);
    }
}

static void add_feedback(st_writer *w, const dsf_lm *m) {
    namebuf b;
    const int H = m->cfg.H, r = m->fb.rank, SH = dsf_cell_states(m->cfg.cell) * H;
    for (int l = 0; l < m->cfg.L; l++) {
        int64_t shape[1] = {SH};
        st_writer_add(w, name_fmt(&b, "rnn.feedback_l%d", l), ST_F32, 1, shape,
                      m->feedback + (size_t)l * SH);
    }
    if (m->fb.kind != DSF_FEEDBACK_LOWRANK || !m->fb_u) return;
    for (int l = 0; l < m->cfg.L; l++) {
        int64_t shape[2] = {H, r};
        st_writer_add(w, name_fmt(&b, "rnn.feedback_u_l%d", l), ST_F32, 2, shape,
                      m->fb_u + (size_t)l * H * r);
        st_writer_add(w, name_fmt(&b, "rnn.feedback_v_l%d", l), ST_F32, 2, shape,
                      m->fb_v + (size_t)l * H * r);
    }
}

// The low-rank factors rnn.feedback_{u,v}_l{k} (H,r), when the file has them.
static int read_lowrank(const st_file *f, dsf_lm *m) {
    const int H = m->cfg.H;
    const st_tensor *t = st_get(f, "rnn.feedback_u_l0");
    if (!t) return 0;
    if (t->ndim != 2 || t->shape[0] != H || t->shape[1] < 1 || t->shape[1] > DSF_FEEDBACK_MAX_RANK)
        return dsf_error_set("rnn.feedback_u_l0 must be [%d, r] with 1 <= r <= %d", H,
                             DSF_FEEDBACK_MAX_RANK);
    const int r = (int)t->shape[1];
    if (lm_alloc_lowrank(m, r)) return -1;
    char name[48];
    for (int l = 0; l < m->cfg.L; l++)
        for (int k = 0; k < 2; k++) {
            snprintf(name, sizeof name, "rnn.feedback_%c_l%d", "uv"[k], l);
            int64_t shape[2] = {H, r};
            if (st_expect(f, name, ST_F32, 2, shape, &t)) return -1;
            memcpy((k ? m->fb_v : m->fb_u) + (size_t)l * H * r, t->data,
                   (size_t)H * r * sizeof(float));
        }
    return 0;
}

int ckpt_set_feedback(dsf_lm *m, const char *spelling) {
    dsf_feedback fb;
    if (dsf_feedback_parse(spelling, &fb)) return -1;
    if (fb.kind == DSF_FEEDBACK_LOWRANK && (!m->fb_u || m->fb.rank != fb.rank))
        return dsf_error_set("the checkpoint's feedback is %s but its low-rank factors "
                             "rnn.feedback_u_l{k}, rnn.feedback_v_l{k} are missing or of "
                             "another rank", spelling);
    m->fb = fb;
    return 0;
}

int ckpt_save(const char *path, const dsf_lm *m, const dsf_vocab *v, const dsf_run *run,
              const dsf_optim *o, const dsf_lm_work *w, const dsf_rng *rng) {
    namebuf b;
    // Tensors go by element size, 8-byte ones first, bytes last, so that every
    // tensor starts at a multiple of its element size (torch needs that).
    st_writer *sw = st_writer_new();
    int64_t *offsets = NULL, nbytes = 0;
    uint8_t *bytes = NULL;
    vocab_pack(v, &offsets, &bytes, &nbytes);
    int64_t oshape[1] = {vocab_size(v) + 1}, bshape[1] = {nbytes}, rshape[1] = {4};
    st_writer_add(sw, "vocab.offsets", ST_I64, 1, oshape, offsets);
    if (rng) st_writer_add(sw, "rng.state", ST_I64, 1, rshape, rng->s);

    add_params(sw, m, m->params, NULL);
    add_feedback(sw, m);
    if (o && o->m) {  // adamw, adam
        add_params(sw, m, o->m, "optim.exp_avg.");
        add_params(sw, m, o->v, "optim.exp_avg_sq.");
    }
    if (w) {
        for (int l = 0; l < m->cfg.L; l++) {
            int64_t shape[2] = {w->B, m->cfg.H};
            st_writer_add(sw, name_fmt(&b, "state.h_l%d", l), ST_F32, 2, shape,
                          w->state + (size_t)l * w->B * m->cfg.H);
            if (m->cfg.cell == DSF_CELL_LSTM)
                st_writer_add(sw, name_fmt(&b, "state.c_l%d", l), ST_F32, 2, shape,
                              w->state_c + (size_t)l * w->B * m->cfg.H);
        }
    }
    st_writer_add(sw, "vocab.bytes", ST_U8, 1, bshape, bytes);

    st_writer_meta(sw, "dsf.cell", run->cell);
    st_writer_meta(sw, "dsf.level", dsf_level_name(run->level));
    st_writer_meta(sw, "dsf.method", dsf_method_name(run->method));
    st_writer_meta(sw, "dsf.feedback", run->feedback);
    st_writer_meta(sw, "dsf.scan", dsf_scan_name(run->scan));
    st_writer_meta(sw, "dsf.optim", dsf_optim_name(run->optim));
    st_writer_meta(sw, "dsf.batch", name_fmt(&b, "%d", run->batch));
    st_writer_meta(sw, "dsf.seq", name_fmt(&b, "%d", run->seq));
    st_writer_meta(sw, "dsf.eval_batch", name_fmt(&b, "%d", run->eval_batch));
    st_writer_meta(sw, "dsf.seed", name_fmt(&b, "%" PRIu64, run->seed));
    st_writer_meta(sw, "dsf.clip", name_fmt(&b, "%.17g", run->clip));
    st_writer_meta(sw, "dsf.base_lr", name_fmt(&b, "%.17g", run->base_lr));
    st_writer_meta(sw, "dsf.weight_decay", name_fmt(&b, "%.17g", run->weight_decay));
    st_writer_meta(sw, "dsf.dropout", name_fmt(&b, "%.17g", run->dropout));
    st_writer_meta(sw, "dsf.warmup", name_fmt(&b, "%" PRId64, run->warmup));
    st_writer_meta(sw, "dsf.lr", name_fmt(&b, "%.17g", run->lr));
    st_writer_meta(sw, "dsf.best_val", name_fmt(&b, "%.17g", run->best_val));
    st_writer_meta(sw, "dsf.total_steps", name_fmt(&b, "%" PRId64, run->total_steps));
    st_writer_meta(sw, "dsf.step", name_fmt(&b, "%" PRId64, run->step));
    st_writer_meta(sw, "dsf.epoch", name_fmt(&b, "%" PRId64, run->epoch));
    st_writer_meta(sw, "dsf.epoch_pos", name_fmt(&b, "%" PRId64, run->epoch_pos));
    st_writer_meta(sw, "dsf.optim_t", name_fmt(&b, "%" PRId64, run->optim_t));
    st_writer_meta(sw, "dsf.arch", dsf_arch_name(m->cfg.arch));
    st_writer_meta(sw, "dsf.tokens", name_fmt(&b, "%" PRId64, run->tokens));
    st_writer_meta(sw, "dsf.batching", dsf_unit_name(run->unit));
    st_writer_meta(sw, "dsf.schedule", run->schedule[0] ? run->schedule : "auto");
    st_writer_meta(sw, "dsf.evals", name_fmt(&b, "%d", run->evals));
    st_writer_meta(sw, "dsf.init_std", name_fmt(&b, "%.17g", run->init_std));
    if (run->task[0]) {
        st_writer_meta(sw, "dsf.task", run->task);
        st_writer_meta(sw, "dsf.limit", name_fmt(&b, "%" PRId64, run->limit));
    }
    st_writer_meta(sw, "dsf.world_size",
                   name_fmt(&b, "%d", run->world_size > 0 ? run->world_size : 1));
    int rc = st_writer_save(sw, path);
    st_writer_free(sw);
    free(offsets);
    free(bytes);
    return rc;
}

int ckpt_save_grads(const char *path, const dsf_lm *m, double loss, int with_feedback) {
    st_writer *sw = st_writer_new();
    add_params(sw, m, m->grads, NULL);
    if (with_feedback) add_feedback(sw, m);
    float l = (float)loss;
    int64_t shape[1] = {1};
    st_writer_add(sw, "loss", ST_F32, 1, shape, &l);
    int rc = st_writer_save(sw, path);
    st_writer_free(sw);
    return rc;
}

// A model or optimizer tensor read from a file must hold finite values (and, with
// nonneg, none below 0): a NaN would otherwise run silently to the end.
static int check_finite(const float *x, size_t n, const char *name, int nonneg) {
    for (size_t i = 0; i < n; i++)
        if (!isfinite(x[i]) || (nonneg && x[i] < 0))
            return dsf_error_set("checkpoint tensor '%s' holds %g at index %zu (%s)", name,
                                 (double)x[i], i, nonneg ? "must be finite and >= 0" : "must be finite");
    return 0;
}

static int shape_of(const st_file *f, const char *name, int ndim, int64_t *shape) {
    const st_tensor *t = st_get(f, name);
    if (!t) return dsf_error_set("checkpoint has no tensor '%s'", name);
    if (t->ndim != ndim || t->dtype != ST_F32)
        return dsf_error_set("tensor '%s' must be a %d-dimensional F32 tensor", name, ndim);
    for (int i = 0; i < ndim; i++) {
        if (t->shape[i] < 1 || t->shape[i] > INT32_MAX)
            return dsf_error_set("tensor '%s' has an impossible shape", name);
        shape[i] = t->shape[i];
    }
    return 0;
}

int ckpt_read_model(const st_file *f, dsf_lm *m, int *has_feedback) {
    int64_t enc[2] = {0}, hh[2] = {0}, fc1[2] = {0};
    // The block architecture has blocks.{k}.rnn.* where the stack has rnn.*_l{k}.
    const int block = st_get(f, "blocks.0.rnn.weight_hh") != NULL;
    const char *hh_name = block ? "blocks.0.rnn.weight_hh" : "rnn.weight_hh_l0";
    // A classifier of continuous inputs has no encoder.weight: its sizes come from
    // its head (decoder.weight (V,H)) and its first layer's input (weight_ih_l0 (G·H,I)).
    const int floats = !block && !st_get(f, "encoder.weight") && st_get(f, "decoder.weight");
    if (floats) {
        int64_t dec[2], ih[2];
        if (shape_of(f, "decoder.weight", 2, dec) || shape_of(f, "rnn.weight_ih_l0", 2, ih))
            return -1;
        enc[0] = dec[0], enc[1] = ih[1];
    } else if (shape_of(f, "encoder.weight", 2, enc)) {
        return -1;
    }
    if (shape_of(f, hh_name, 2, hh)) return -1;
    if (block && shape_of(f, "blocks.0.mlp.fc1.weight", 2, fc1)) return -1;
    dsf_cell cell = hh[0] == 3 * hh[1] ? DSF_CELL_GRU : hh[0] == 4 * hh[1] ? DSF_CELL_LSTM : DSF_CELL_ELMAN;
    if (hh[0] != (int64_t)dsf_cell_gates(cell) * hh[1])
        return dsf_error_set("%s is [%" PRId64 ", %" PRId64 "]; a GRU needs [3H, H], "
                             "an LSTM [4H, H], an Elman RNN [H, H]", hh_name, hh[0], hh[1]);
    dsf_lm_config cfg = {.V = (int)enc[0], .E = (int)enc[1], .H = (int)hh[1], .L = 0, .cell = cell,
                         .arch = block ? DSF_ARCH_BLOCK : DSF_ARCH_STACK, .mlp = (int)fc1[0]};
    cfg.proj = block && st_get(f, "blocks.0.proj.weight") != NULL;
    // The residual stack has the stack's tensors: a checkpoint says so in its metadata.
    const char *arch = st_meta(f, "dsf.arch");
    if (!block && arch && strcmp(arch, "residual") == 0) cfg.arch = DSF_ARCH_RESIDUAL;
    const int SH = dsf_cell_states(cell) * cfg.H;
    cfg.tie = !st_get(f, "decoder.weight") && enc[1] == hh[1];  // tied: the embedding alone
    if (floats) cfg.inputs = cfg.E;
    char name[48];
    for (;;) {
        snprintf(name, sizeof name, block ? "blocks.%d.rnn.weight_ih" : "rnn.weight_ih_l%d", cfg.L);
        if (!st_get(f, name)) break;
        if (++cfg.L > DSF_MAX_LAYERS) return dsf_error_set("checkpoint has too many layers");
    }
    if (cfg.L == 0) return dsf_error_set("checkpoint has no tensor 'rnn.weight_ih_l0'");
    // Every tensor must be there with its shape before anything is allocated,
    // so that a small hostile file cannot ask for a large model.
    dsf_lm probe;
    memset(&probe, 0, sizeof probe);
    probe.cfg = cfg;
    lm_layout(&probe);
    for (int i = 0; i < probe.ntensors; i++) {
        const dsf_param *p = &probe.tensors[i];
        if (st_expect(f, p->name, ST_F32, p->ndim, p->shape, NULL)) return -1;
    }
    if (lm_create(m, &cfg)) return -1;
    for (int i = 0; i < m->ntensors; i++) {
        const dsf_param *p = &m->tensors[i];
        const st_tensor *t;
        if (st_expect(f, p->name, ST_F32, p->ndim, p->shape, &t)) {
            lm_destroy(m);
            return -1;
        }
        memcpy(m->params + p->offset, t->data, p->numel * sizeof(float));
        if (check_finite(m->params + p->offset, p->numel, p->name, 0)) {
            lm_destroy(m);
            return -1;
        }
    }
    *has_feedback = 0;
    for (int l = 0; l < cfg.L; l++) {
        snprintf(name, sizeof name, "rnn.feedback_l%d", l);
        if (!st_get(f, name)) {
            if (l > 0) {
                lm_destroy(m);
                return dsf_error_set("checkpoint has rnn.feedback_l0 but no '%s'", name);
            }
            break;
        }
        int64_t shape[1] = {SH};
        const st_tensor *t;
        if (st_expect(f, name, ST_F32, 1, shape, &t)) {
            lm_destroy(m);
            return -1;
        }
        memcpy(m->feedback + (size_t)l * SH, t->data, (size_t)SH * sizeof(float));
        if (check_finite(m->feedback + (size_t)l * SH, (size_t)SH, name, 0)) {
            lm_destroy(m);
            return -1;
        }
        *has_feedback = 1;
    }
    if (read_lowrank(f, m)) {
        lm_destroy(m);
        return -1;
    }
    // Extra tensors that a model file cannot have would mean a different architecture.
    for (int i = 0; i < st_count(f); i++) {
        const char *n = st_at(f, i)->name;
        if (strncmp(n, "rnn.weight_ih_l", 15) == 0 || strncmp(n, "rnn.weight_hh_l", 15) == 0 ||
            strncmp(n, "rnn.bias_ih_l", 13) == 0 || strncmp(n, "rnn.bias_hh_l", 13) == 0) {
            if (!lm_find(m, n)) {
                lm_destroy(m);
                return dsf_error_set("checkpoint tensor '%s' does not fit a %d-layer model", n,
                                     cfg.L);
            }
        }
    }
    return 0;
}

int ckpt_check_cell(const dsf_lm *m, const dsf_run *run) {
    if (strcmp(run->cell, dsf_cell_name(m->cfg.cell)))
        return dsf_error_set("the checkpoint's metadata says cell %s but its tensors are a %s's",
                             run->cell, dsf_cell_name(m->cfg.cell));
    return 0;
}

static int meta_str(const st_file *f, const char *key, const char **out) {
    *out = st_meta(f, key);
    if (!*out) return dsf_error_set("checkpoint lacks '%s' (not a dsf training checkpoint?)", key);
    return 0;
}

static int meta_i64(const st_file *f, const char *key, int64_t lo, int64_t hi, int64_t *out) {
    const char *s;
    if (meta_str(f, key, &s)) return -1;
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno || v < lo || v > hi)
        return dsf_error_set("checkpoint metadata %s = '%s' is invalid", key, s);
    *out = v;
    return 0;
}

static int meta_f64(const st_file *f, const char *key, double *out) {
    const char *s;
    if (meta_str(f, key, &s)) return -1;
    char *end;
    double v = strtod(s, &end);
    if (end == s || *end || isnan(v)) return dsf_error_set("checkpoint metadata %s = '%s' is invalid", key, s);
    *out = v;
    return 0;
}

int ckpt_read_run(const st_file *f, dsf_run *run, dsf_vocab **v) {
    memset(run, 0, sizeof *run);
    const char *s;
    int64_t x;
    if (meta_str(f, "dsf.cell", &s)) return -1;
    dsf_cell cell;
    if (dsf_cell_parse(s, &cell)) return dsf_error_set("checkpoint cell '%s' is not supported", s);
    snprintf(run->cell, sizeof run->cell, "%s", s);
    if (meta_str(f, "dsf.level", &s) || dsf_level_parse(s, &run->level)) return -1;
    if (meta_str(f, "dsf.method", &s) || dsf_method_parse(s, &run->method)) return -1;
    if (meta_str(f, "dsf.feedback", &s)) return -1;
    snprintf(run->feedback, sizeof run->feedback, "%s", s);
    s = st_meta(f, "dsf.scan");
    if (s && dsf_scan_parse(s, &run->scan)) return -1;
    if (meta_str(f, "dsf.optim", &s) || dsf_optim_parse(s, &run->optim)) return -1;
    if (meta_i64(f, "dsf.batch", 1, INT32_MAX, &x)) return -1;
    run->batch = (int)x;
    if (meta_i64(f, "dsf.seq", 1, INT32_MAX, &x)) return -1;
    run->seq = (int)x;
    if (meta_i64(f, "dsf.eval_batch", 1, INT32_MAX, &x)) return -1;
    run->eval_batch = (int)x;
    if (meta_i64(f, "dsf.seed", 0, INT64_MAX, &x)) return -1;
    run->seed = (uint64_t)x;
    if (meta_f64(f, "dsf.clip", &run->clip) || meta_f64(f, "dsf.base_lr", &run->base_lr) ||
        meta_f64(f, "dsf.weight_decay", &run->weight_decay) ||
        (st_meta(f, "dsf.dropout") && meta_f64(f, "dsf.dropout", &run->dropout)) ||
        meta_i64(f, "dsf.warmup", 0, INT64_MAX, &run->warmup) ||
        meta_f64(f, "dsf.lr", &run->lr) || meta_f64(f, "dsf.best_val", &run->best_val))
        return -1;
    if (meta_i64(f, "dsf.total_steps", 0, INT64_MAX, &run->total_steps) ||
        meta_i64(f, "dsf.step", 0, INT64_MAX, &run->step) ||
        meta_i64(f, "dsf.epoch", 0, INT64_MAX, &run->epoch) ||
        meta_i64(f, "dsf.epoch_pos", 0, INT64_MAX, &run->epoch_pos) ||
        meta_i64(f, "dsf.optim_t", 0, INT64_MAX, &run->optim_t))
        return -1;
    // Checkpoints from before data-parallel training were written by one process.
    x = 1;
    // The settings a run goes on with: finite and in range.
    if (!(run->clip >= 0 && isfinite(run->clip)) || !(run->base_lr >= 0 && isfinite(run->base_lr)) ||
        !(run->lr >= 0 && isfinite(run->lr)) ||
        !(run->weight_decay >= 0 && isfinite(run->weight_decay)) ||
        !(run->dropout >= 0 && run->dropout < 1) || isnan(run->best_val))
        return dsf_error_set("checkpoint metadata out of range (clip %g, lr %g, base lr %g, "
                             "weight decay %g, dropout %g, best validation %g)", run->clip,
                             run->lr, run->base_lr, run->weight_decay, run->dropout,
                             run->best_val);
    if (st_meta(f, "dsf.world_size") && meta_i64(f, "dsf.world_size", 1, INT32_MAX, &x)) return -1;
    run->world_size = (int)x;
    // Written since the authors' recipe (--recipe paper-ptb); older files lack them.
    const char *b = st_meta(f, "dsf.batching");
    run->unit = DSF_UNIT_STREAM;
    if (b && dsf_unit_parse(b, &run->unit))
        return dsf_error_set("checkpoint metadata dsf.batching = '%s' is invalid", b);
    const char *sc = st_meta(f, "dsf.schedule");
    dsf_schedule sched;
    if (sc && dsf_schedule_parse(sc, &sched)) return -1;
    snprintf(run->schedule, sizeof run->schedule, "%s", sc ? sc : "auto");
    run->evals = 0;
    if (st_meta(f, "dsf.evals")) {
        if (meta_i64(f, "dsf.evals", 0, INT32_MAX, &x)) return -1;
        run->evals = (int)x;
    }
    run->tokens = run->step * run->batch * run->seq;
    if (st_meta(f, "dsf.tokens") && meta_i64(f, "dsf.tokens", 0, INT64_MAX, &run->tokens)) return -1;
    const char *task = st_meta(f, "dsf.task");
    if (task && strcmp(task, "seq") && strcmp(task, "perm"))
        return dsf_error_set("checkpoint metadata dsf.task = '%s' is invalid", task);
    snprintf(run->task, sizeof run->task, "%s", task ? task : "");
    run->limit = 0;
    if (task && meta_i64(f, "dsf.limit", 0, INT64_MAX, &run->limit)) return -1;
    run->init_std = 0;
    if (st_meta(f, "dsf.init_std") && meta_f64(f, "dsf.init_std", &run->init_std)) return -1;
    if (!(run->init_std >= 0 && isfinite(run->init_std)))
        return dsf_error_set("checkpoint metadata dsf.init_std = %g is out of range", run->init_std);
    const st_tensor *off = st_get(f, "vocab.offsets"), *bytes = st_get(f, "vocab.bytes");
    if (!off || !bytes || off->dtype != ST_I64 || bytes->dtype != ST_U8 || off->ndim != 1 ||
        bytes->ndim != 1 || off->shape[0] < 2)
        return dsf_error_set("checkpoint has no valid vocabulary (vocab.offsets, vocab.bytes)");
    *v = vocab_unpack(off->data, off->shape[0] - 1, bytes->data, bytes->shape[0]);
    return *v ? 0 : -1;
}

int ckpt_read_optim(const st_file *f, const dsf_lm *m, dsf_optim *o) {
    if (!o->m) return 0;  // sgd
    char name[96];
    for (int k = 0; k < 2; k++) {
        float *dst = k ? o->v : o->m;
        for (int i = 0; i < m->ntensors; i++) {
            const dsf_param *p = &m->tensors[i];
            const st_tensor *t;
            snprintf(name, sizeof name, "optim.%s.%s", k ? "exp_avg_sq" : "exp_avg", p->name);
            if (st_expect(f, name, ST_F32, p->ndim, p->shape, &t)) return -1;
            memcpy(dst + p->offset, t->data, p->numel * sizeof(float));
            if (check_finite(dst + p->offset, p->numel, name, k)) return -1;
        }
    }
    return 0;
}

int ckpt_read_state(const st_file *f, const dsf_lm *m, dsf_lm_work *w, dsf_rng *rng) {
    char name[48];
    for (int l = 0; l < m->cfg.L; l++) {
        int64_t shape[2] = {w->B, m->cfg.H};
        const st_tensor *t;
        snprintf(name, sizeof name, "state.h_l%d", l);
        if (st_expect(f, name, ST_F32, 2, shape, &t)) return -1;
        memcpy(w->state + (size_t)l * w->B * m->cfg.H, t->data, t->nbytes);
        if (m->cfg.cell != DSF_CELL_LSTM) continue;
        snprintf(name, sizeof name, "state.c_l%d", l);
        if (st_expect(f, name, ST_F32, 2, shape, &t)) return -1;
        memcpy(w->state_c + (size_t)l * w->B * m->cfg.H, t->data, t->nbytes);
    }
    int64_t rshape[1] = {4};
    const st_tensor *t;
    if (st_expect(f, "rng.state", ST_I64, 1, rshape, &t)) return -1;
    memcpy(rng->s, t->data, sizeof rng->s);
    return 0;
}
