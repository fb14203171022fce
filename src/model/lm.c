// lm.c: see lm.h.
#include "lm.h"

#include <math.h>
#include <string.h>
#include <unistd.h>

#include "cell/params.h"
#include "core/fastmath.h"
#include "core/gemm.h"
#include "core/prof.h"
#include "model/layers.h"

static const char *const arch_names[] = {"stack", "block", "residual"};

const char *dsf_arch_name(dsf_arch a) { return (unsigned)a < 3 ? arch_names[a] : "unknown"; }

int dsf_arch_parse(const char *s, dsf_arch *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, arch_names[i]) == 0) {
            *out = (dsf_arch)i;
            return 0;
        }
    return dsf_error_set("unknown architecture '%s' (expected stack, residual or block)", s);
}


static void add_param(dsf_lm *m, const char *name, int ndim, int64_t d0, int64_t d1) {
    DSF_ASSERT(m->ntensors < DSF_MAX_TENSORS);
    dsf_param *p = &m->tensors[m->ntensors++];
    snprintf(p->name, sizeof p->name, "%s", name);
    p->ndim = ndim;
    p->shape[0] = d0;
    p->shape[1] = ndim > 1 ? d1 : 1;
    p->numel = (size_t)d0 * (size_t)p->shape[1];
    p->offset = m->n;
    p->is_weight = ndim > 1;
    m->n += p->numel;
}

void lm_layout(dsf_lm *m) {
    const dsf_lm_config *c = &m->cfg;
    char name[48];
    m->ntensors = 0;
    m->n = 0;
    const int64_t GH = (int64_t)dsf_cell_gates(c->cell) * c->H;
    if (!c->inputs) add_param(m, "encoder.weight", 2, c->V, c->E);
    if (c->arch == DSF_ARCH_BLOCK) {
        for (int k = 0; k < c->L; k++) {
#define BLOCK(fmt, nd, d0, d1)                                                     \
    snprintf(name, sizeof name, "blocks.%d." fmt, k);                              \
    add_param(m, name, nd, d0, d1);
            BLOCK("ln1.weight", 1, c->H, 1)
            BLOCK("ln1.bias", 1, c->H, 1)
            BLOCK("rnn.weight_ih", 2, GH, c->H)
            BLOCK("rnn.weight_hh", 2, GH, c->H)
            BLOCK("rnn.bias_ih", 1, GH, 1)
            BLOCK("rnn.bias_hh", 1, GH, 1)
            if (c->proj) {
                BLOCK("proj.weight", 2, c->H, c->H)
                BLOCK("proj.bias", 1, c->H, 1)
            }
            BLOCK("ln2.weight", 1, c->H, 1)
            BLOCK("ln2.bias", 1, c->H, 1)
            BLOCK("mlp.fc1.weight", 2, c->mlp, c->H)
            BLOCK("mlp.fc1.bias", 1, c->mlp, 1)
            BLOCK("mlp.fc2.weight", 2, c->H, c->mlp)
            BLOCK("mlp.fc2.bias", 1, c->H, 1)
#undef BLOCK
        }
        add_param(m, "ln_f.weight", 1, c->H, 1);
        add_param(m, "ln_f.bias", 1, c->H, 1);
        if (!c->tie) add_param(m, "decoder.weight", 2, c->V, c->H);
        add_param(m, "decoder.bias", 1, c->V, 1);
        return;
    }
    for (int l = 0; l < c->L; l++) {
        int I = l == 0 ? c->E : c->H;
        snprintf(name, sizeof name, "rnn.weight_ih_l%d", l);
        add_param(m, name, 2, GH, I);
        snprintf(name, sizeof name, "rnn.weight_hh_l%d", l);
        add_param(m, name, 2, GH, c->H);
        snprintf(name, sizeof name, "rnn.bias_ih_l%d", l);
        add_param(m, name, 1, GH, 1);
        snprintf(name, sizeof name, "rnn.bias_hh_l%d", l);
        add_param(m, name, 1, GH, 1);
    }
    if (!c->tie) add_param(m, "decoder.weight", 2, c->V, c->H);
    add_param(m, "decoder.bias", 1, c->V, 1);
}

static int check_config(const dsf_lm_config *c) {
    if (c->V < 1 || c->E < 1 || c->H < 1 || c->L < 1)
        return dsf_error_set("model sizes must be positive (vocab %d, emb %d, hidden %d, layers %d)",
                             c->V, c->E, c->H, c->L);
    if (c->L > DSF_MAX_LAYERS) return dsf_error_set("at most %d layers", DSF_MAX_LAYERS);
    if (c->arch == DSF_ARCH_BLOCK && (c->E != c->H || c->mlp < 1 || c->mlp > (1 << 22)))
        return dsf_error_set("the block architecture needs the embedding size equal to the "
                             "hidden size and an MLP width from 1 to %d", 1 << 22);
    if (c->proj && c->arch != DSF_ARCH_BLOCK)
        return dsf_error_set("the projection after the RNN is part of the block architecture");
    if (c->inputs && (c->inputs != c->E || c->arch != DSF_ARCH_STACK || c->tie))
        return dsf_error_set("a model of continuous inputs is a stack of width emb = inputs "
                             "(%d, %d), untied", c->E, c->inputs);
    if (c->arch == DSF_ARCH_RESIDUAL && c->E != c->H)
        return dsf_error_set("the residual architecture needs the embedding size equal to the "
                             "hidden size (emb %d, hidden %d)", c->E, c->H);
    if (c->tie && c->E != c->H)
        return dsf_error_set("tied weights need the embedding size equal to the hidden size "
                             "(emb %d, hidden %d)", c->E, c->H);
    if (c->H > (1 << 20) || c->E > (1 << 20) || c->V > (1 << 28))
        return dsf_error_set("model sizes too large (vocab %d, emb %d, hidden %d)", c->V, c->E, c->H);
    return 0;
}

size_t lm_bytes(const dsf_lm_config *c) {
    double n = (double)c->V * (c->inputs ? 0 : c->E) + (double)c->V * ((c->tie ? 0 : c->H) + 1);
    const double G = dsf_cell_gates(c->cell), S = dsf_cell_states(c->cell);
    for (int l = 0; l < c->L; l++) n += G * c->H * ((l ? c->H : c->E) + c->H + 2);
    if (c->arch == DSF_ARCH_BLOCK) n += c->L * (4.0 * c->H + 2.0 * c->mlp * c->H + c->mlp + c->H) + 2.0 * c->H;
    if (c->proj) n += c->L * ((double)c->H * c->H + c->H);
    double bytes = 2 * n * sizeof(float) + S * c->L * c->H * sizeof(float);
    return bytes > (double)SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)bytes;
}

// Refuses an allocation larger than the machine's memory, saying how much it needs.
static int check_memory(size_t bytes, const char *what) {
    long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
    double have = pages > 0 && page > 0 ? (double)pages * page : 0;
    if (have > 0 && (double)bytes > have)
        return dsf_error_set("%s would need %.1f GiB but this machine has %.1f GiB", what,
                             (double)bytes / (1 << 30), have / (1 << 30));
    return 0;
}

int lm_create(dsf_lm *m, const dsf_lm_config *cfg) {
    memset(m, 0, sizeof *m);
    if (check_config(cfg)) return -1;
    m->cfg = *cfg;
    if (check_memory(lm_bytes(cfg), "the model")) return -1;
    lm_layout(m);
    m->params = dsf_alloc(m->n * sizeof(float));
    m->grads = dsf_alloc(m->n * sizeof(float));
    m->feedback = dsf_alloc((size_t)cfg->L * dsf_cell_states(cfg->cell) * cfg->H * sizeof(float));
    if (!m->params || !m->grads || !m->feedback) {
        lm_destroy(m);
        return -1;
    }
    const dsf_param *p = m->tensors;
    if (!cfg->inputs) {  // continuous inputs: no embedding table
        m->encoder = m->params + p->offset;
        m->g_encoder = m->grads + p->offset;
        p++;
    }
    const int block = cfg->arch == DSF_ARCH_BLOCK;
    for (int l = 0; l < cfg->L; l++) {
        const dsf_param *r = block ? p + 2 : p;  // block: ln1, then the recurrent layer
        m->rnn[l] = (cell_weights){m->params + r[0].offset, m->params + r[1].offset,
                                  m->params + r[2].offset, m->params + r[3].offset};
        m->g_rnn[l] = (cell_grads){m->grads + r[0].offset, m->grads + r[1].offset,
                                  m->grads + r[2].offset, m->grads + r[3].offset};
        if (!block) {
            p += 4;
            continue;
        }
        // ln1 (2), rnn (4), proj (2, when there), ln2 (2), fc1 (2), fc2 (2)
        const dsf_param *q = p + 6;
        float **v = &m->blk[l].ln1_w, **gv = &m->g_blk[l].ln1_w;
        const dsf_param *at[10] = {p, p + 1, q + 2 * cfg->proj, q + 1 + 2 * cfg->proj,
                                   q + 2 + 2 * cfg->proj, q + 3 + 2 * cfg->proj,
                                   q + 4 + 2 * cfg->proj, q + 5 + 2 * cfg->proj, q, q + 1};
        for (int k = 0; k < (cfg->proj ? 10 : 8); k++) {
            v[k] = m->params + at[k]->offset;
            gv[k] = m->grads + at[k]->offset;
        }
        p += 12 + 2 * cfg->proj;
    }
    if (block) {
        m->lnf_w = m->params + p[0].offset, m->g_lnf_w = m->grads + p[0].offset;
        m->lnf_b = m->params + p[1].offset, m->g_lnf_b = m->grads + p[1].offset;
        p += 2;
    }
    if (cfg->tie) {  // one tensor: the decoder's gradient is added to the embedding's
        m->dec_w = m->encoder;
        m->g_dec_w = m->g_encoder;
    } else {
        m->dec_w = m->params + p->offset;
        m->g_dec_w = m->grads + p->offset;
        p++;
    }
    m->dec_b = m->params + p->offset;
    m->g_dec_b = m->grads + p->offset;
    return 0;
}

void lm_destroy(dsf_lm *m) {
    dsf_free(m->params);
    dsf_free(m->grads);
    dsf_free(m->feedback);
    dsf_free(m->fb_u);
    dsf_free(m->fb_v);
    memset(m, 0, sizeof *m);
}

int lm_alloc_lowrank(dsf_lm *m, int r) {
    const size_t n = (size_t)m->cfg.L * m->cfg.H * r * sizeof(float);
    dsf_free(m->fb_u);
    dsf_free(m->fb_v);
    m->fb_u = dsf_alloc(n);
    m->fb_v = dsf_alloc(n);
    if (!m->fb_u || !m->fb_v) return -1;
    m->fb = (dsf_feedback){.kind = DSF_FEEDBACK_LOWRANK, .rank = r};
    return 0;
}

int lm_set_feedback(dsf_lm *m, const dsf_feedback *f, dsf_rng *rng, int T) {
    const int H = m->cfg.H, S = dsf_cell_states(m->cfg.cell);
    if (f->kind == DSF_FEEDBACK_LOWRANK && lm_alloc_lowrank(m, f->rank)) return -1;
    m->fb = *f;
    for (int l = 0; l < m->cfg.L; l++) {
        for (int k = 0; k < S; k++)  // the LSTM: a_h, then a_c, each over all time scales
            dsf_feedback_fill(f, rng, m->feedback + ((size_t)l * S + k) * H, H, T);
        if (f->kind == DSF_FEEDBACK_LOWRANK) {
            const size_t o = (size_t)l * H * f->rank;
            dsf_feedback_fill_lowrank(f, rng, m->fb_u + o, m->fb_v + o, H);
        }
    }
    return 0;
}

const dsf_param *lm_find(const dsf_lm *m, const char *name) {
    for (int i = 0; i < m->ntensors; i++)
        if (strcmp(m->tensors[i].name, name) == 0) return &m->tensors[i];
    return NULL;
}

void lm_init_params(dsf_lm *m, dsf_rng *rng) {
    const dsf_lm_config *c = &m->cfg;
    float k = 1.0f / sqrtf((float)c->H);
    for (int i = 0; i < m->ntensors; i++) {
        const dsf_param *p = &m->tensors[i];
        float *x = m->params + p->offset;
        const char *tail = strrchr(p->name, '.');
        if (strcmp(p->name, "decoder.bias") == 0)
            memset(x, 0, p->numel * sizeof(float));
        else if (strncmp(p->name, "rnn.", 4) == 0 || strstr(p->name, ".rnn."))
            dsf_rng_fill_uniform(rng, x, p->numel, -k, k);
        else if (strstr(p->name, "ln1.") || strstr(p->name, "ln2.") || strstr(p->name, "ln_f."))
            for (size_t j = 0; j < p->numel; j++) x[j] = strcmp(tail, ".weight") == 0;  // γ 1, β 0
        else if (strstr(p->name, ".fc1.") || strstr(p->name, ".fc2.") ||
                 strstr(p->name, ".proj.")) {  // torch.nn.Linear: ±1/√in
            const float kin = 1.0f / sqrtf((float)(strstr(p->name, ".fc2.") ? c->mlp : c->H));
            dsf_rng_fill_uniform(rng, x, p->numel, -kin, kin);
        }
        else
            dsf_rng_fill_uniform(rng, x, p->numel, -0.1f, 0.1f);
    }
}

void lm_init_normal(dsf_lm *m, dsf_rng *rng, float std) {
    const dsf_lm_config *c = &m->cfg;
    for (int i = 0; i < m->ntensors; i++) {
        const dsf_param *p = &m->tensors[i];
        float *x = m->params + p->offset;
        // the last Linear of each branch (fc2, proj) as GPT-2: std/√(2L)
        const int last = strstr(p->name, ".fc2.weight") || strstr(p->name, ".proj.weight");
        if (strcmp(p->name, "encoder.weight") == 0 || strcmp(p->name, "decoder.weight") == 0 ||
            strstr(p->name, ".fc1.weight") || last)
            dsf_rng_fill_normal(rng, x, p->numel, last ? std / sqrtf(2.0f * c->L) : std);
        else if (strstr(p->name, ".fc1.bias") || strstr(p->name, ".fc2.bias") ||
                 strstr(p->name, ".proj.bias"))
            memset(x, 0, p->numel * sizeof(float));
    }
}

// The work buffers, in one table so that sizes and allocation cannot disagree.
#define WORK_BUFFERS(X)                                                            \
    X(x, int32_t, TB)                                                              \
    X(y, int32_t, TB)                                                              \
    X(emb, float, TB * E)                                                          \
    X(scratch, float, TB * G * H)                                                  \
    X(probs, float, dec_rows(TB, V) * V)                                           \
    X(row_loss, float, TB)                                                         \
    X(rows, int32_t, TB)                                                           \
    X(slot, int32_t, TB)                                                           \
    X(crows, float, TB * H)                                                        \
    X(wpack, float, lstm_pack_floats((int)H)) /* ≥ GRU's, Elman's */                  \
    X(state, float, L * B * H)                                                     \
    X(state_c, float, L * B * H)                                                   \
    X(step_rows, int, T)
// The backward pass's (none in an evaluation work area).
#define BACKWARD_BUFFERS(X)                                                        \
    X(e, float, TB * IH)                                                           \
    X(dx, float, TB * IH)                                                          \
    X(bw.gi, float, TB * G * H)                                                    \
    X(bw.gh, float, TB * G * H)                                                    \
    X(bw.carry, float, B * H)
// Every layer's (an evaluation work area: layer 0's, which the others share, and
// layer 1's h: the layers' outputs take turns in two buffers).
#define LAYER_BUFFERS(X)                                                           \
    X(h, float, (T + 1) * B * H)                                                   \
    X(gates, float, TB * G * H)                                                    \
    X(q, float, TB * H)

static double decoder_bytes = 1 << 30;

double lm_set_decoder_bytes(double bytes) {
    const double old = decoder_bytes;
    decoder_bytes = bytes;
    return old;
}

// Rows of logits the decoder holds at once (lm.h).
static double dec_rows(double TB, double V) {
    const double r = floor(decoder_bytes / (V * sizeof(float)));
    return r >= TB ? TB : r < 64 ? 64 : r;
}

// The first layer's input side from a table (docs/DESIGN.md §8): with fewer
// tokens V than rows T·B, P (V,G·H) = encoder W_ihᵀ + biases costs less than the
// rows' own product, and row r's input side is P[x_r]. Its backward: S (V,G·H) =
// Σ_{r: x_r = v} gi_r, then dW_ih += Sᵀ encoder and d encoder += S W_ih. Token
// inputs into a first recurrent layer (stack, residual), without dropout on the
// embedding; lm_set_embedding_projection(0) turns it off.
static int projection_on = 1;

int lm_set_embedding_projection(int on) {
    const int old = projection_on;
    projection_on = on;
    return old;
}

static int projects(const dsf_lm_config *c, size_t TB) {
    return projection_on && !c->inputs && c->arch != DSF_ARCH_BLOCK && (size_t)c->V < TB;
}

// Bytes of a work area (eval: lm_work_create_eval's). A layer's buffers are its
// outputs, which feed the next layer (h; the stream xs[k+1] of block and
// residual), and its other activations; an evaluation work area holds one set of
// the latter and two of the former, whatever L.
static size_t work_bytes(const dsf_lm_config *c, int B_, int T_, int eval) {
    double B = B_, T = T_, TB = T * B, E = c->E, H = c->H, V = c->V, L = c->L, M = c->mlp;
    double IH = E > H ? E : H, total = 0, back = 0, layer = 0, G = dsf_cell_gates(c->cell);
#define SIZE(name, type, count) total += (double)(count) * sizeof(type);
#define SIZEB(name, type, count) back += (double)(count) * sizeof(type);
#define SIZEL(name, type, count) layer += (double)(count) * sizeof(type);
    WORK_BUFFERS(SIZE)
    BACKWARD_BUFFERS(SIZEB)
    LAYER_BUFFERS(SIZEL)
    double out = (T + 1) * B * H * sizeof(float);  // h
    layer -= out;
    if (dsf_cell_states(c->cell) == 2) layer += (T + 1) * B * H * sizeof(float);  // c
    if (c->arch == DSF_ARCH_BLOCK)  // a, xmid, b, (rp), u, gl, statistics; xs[k+1]; yf, stf; d, dtmp, du
        layer += ((3 + c->proj) * TB * H + 2 * TB * M + 4 * TB) * sizeof(float),
        out += TB * H * sizeof(float), total += (TB * H + 2 * TB) * sizeof(float),
        back += (2 * TB * H + TB * M) * sizeof(float);
    if (c->arch == DSF_ARCH_RESIDUAL) out += TB * H * sizeof(float), back += TB * H * sizeof(float);
    if (dec_rows(TB, V) < TB) back += (TB * H + V * H + V) * sizeof(float);  // de, gdec
    if (projects(c, (size_t)TB)) total += V * G * H * sizeof(float);
    total += eval ? layer + (L < 2 ? L : 2) * out : L * (layer + out) + back;
    return total > (double)SIZE_MAX / 4 ? SIZE_MAX / 4 : (size_t)total;
}

size_t lm_work_bytes(const dsf_lm_config *c, int B, int T) { return work_bytes(c, B, T, 0); }
size_t lm_work_eval_bytes(const dsf_lm_config *c, int B, int T) { return work_bytes(c, B, T, 1); }

static int work_create(dsf_lm_work *w, const dsf_lm_config *c, int B, int T, int eval) {
    memset(w, 0, sizeof *w);
    if (B < 1 || T < 1) return dsf_error_set("batch and sequence length must be positive");
    if (check_memory(work_bytes(c, B, T, eval), "the activations")) return -1;
    w->B = B;
    w->drop_B = B;
    w->drop_stride = 1;
    w->T = T;
    w->eval = eval;
    w->no_grad = eval;
    size_t TB = (size_t)T * B, E = c->E, H = c->H, V = c->V, L = c->L;
    size_t IH = E > H ? E : H, G = (size_t)dsf_cell_gates(c->cell);
    int ok = 1;
#define ALLOC(name, type, count) ok = ok && (w->name = dsf_alloc((count) * sizeof(type)));
    WORK_BUFFERS(ALLOC)
    if (!eval) {
        BACKWARD_BUFFERS(ALLOC)
    }
#define A(ptr, count) ok = ok && ((ptr) = dsf_alloc((count) * sizeof(float)));
    for (int l = 0; l < c->L; l++) {
        cell_cache *g = &w->cache[l];
        if (eval && l > 0) {  // layer 0's buffers, h in turns (lm_work_destroy knows)
            *g = w->cache[0];
            if (l == 1) A(g->h, (T + 1) * B * H) else g->h = w->cache[l - 2].h;
            continue;
        }
#define ALLOCL(name, type, count) ok = ok && (g->name = dsf_alloc((count) * sizeof(type)));
        LAYER_BUFFERS(ALLOCL)
        if (dsf_cell_states(c->cell) == 2)  // the LSTM's c
            ok = ok && (g->c = dsf_alloc((T + 1) * B * H * sizeof(float)));
        g->wpack = w->wpack;  // one packing buffer serves every layer in turn
    }
    if (c->arch == DSF_ARCH_BLOCK || c->arch == DSF_ARCH_RESIDUAL)  // the stream after each layer
        for (int l = 0; l < c->L; l++) {
            if (eval && l > 1) w->xs[l + 1] = w->xs[l - 1];
            else A(w->xs[l + 1], TB * H)
        }
    if (c->arch == DSF_ARCH_BLOCK) {
        const size_t M = (size_t)c->mlp;
        for (int l = 0; l < c->L; l++) {
            struct dsf_block_cache *b = &w->bc[l];
            if (eval && l > 0) {
                *b = w->bc[0];
                continue;
            }
            A(b->a, TB * H) A(b->st1, 2 * TB) A(b->xmid, TB * H) A(b->b, TB * H)
            A(b->st2, 2 * TB) A(b->u, TB * M) A(b->gl, TB * M)
            if (c->proj) A(b->rp, TB * H)
        }
        A(w->yf, TB * H) A(w->stf, 2 * TB)
        if (!eval) {
            A(w->d, TB * H) A(w->dtmp, TB * H) A(w->du, TB * M)
        }
    }
    if (c->arch == DSF_ARCH_RESIDUAL && !eval) A(w->d, TB * H)
    if (projects(c, TB)) A(w->proj, V * G * H)
    w->dec_rows = (int64_t)dec_rows((double)TB, (double)V);
    if ((size_t)w->dec_rows < TB && !eval) {
        A(w->de, TB * H)
        A(w->gdec, V * H + V)
    }
#undef A
    if (!ok) {
        lm_work_destroy(w);
        return -1;
    }
    return 0;
}

int lm_work_create(dsf_lm_work *w, const dsf_lm_config *c, int B, int T) {
    return work_create(w, c, B, T, 0);
}

int lm_work_create_eval(dsf_lm_work *w, const dsf_lm_config *c, int B, int T) {
    return work_create(w, c, B, T, 1);
}

// The method's own buffers: the diag feedback's varying a (S·T·B·H floats) and
// the correction sweeps' copy of e and carry (2·T·B·H).
static size_t avar_floats(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth) {
    if (meth != DSF_METHOD_DSF || m->fb.kind != DSF_FEEDBACK_DIAG) return 0;
    return (size_t)dsf_cell_states(m->cfg.cell) * w->T * w->B * m->cfg.H;
}

static size_t ref_floats(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth) {
    if (meth != DSF_METHOD_DSF || !m->fb.refine) return 0;
    return (size_t)2 * w->T * w->B * m->cfg.H;
}

int lm_work_reserved(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth) {
    return (!avar_floats(w, m, meth) || w->bw.avar) && (!ref_floats(w, m, meth) || w->bw.ref);
}

int lm_work_reserve(dsf_lm_work *w, const dsf_lm *m, dsf_method meth) {
    const size_t na = avar_floats(w, m, meth), nr = ref_floats(w, m, meth);
    if (na && !w->bw.avar && !(w->bw.avar = dsf_alloc(na * sizeof(float))))
        return dsf_error_set("out of memory: %.1f MiB for the diag feedback's vectors",
                             (double)na * sizeof(float) / (1 << 20));
    if (nr && !w->bw.ref && !(w->bw.ref = dsf_alloc(nr * sizeof(float))))
        return dsf_error_set("out of memory: %.1f MiB for the correction sweeps",
                             (double)nr * sizeof(float) / (1 << 20));
    return 0;
}

// Floats of the ragged rows' gather (cell/params.h) that lm_backward allocates.
static size_t pack_floats(const dsf_lm_work *w, const dsf_lm_config *c) {
    return cell_pack_floats(dsf_cell_gates(c->cell) * c->H, w->T, w->B, c->E > c->H ? c->E : c->H,
                            c->H);
}

size_t lm_work_more_bytes(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth) {
    const dsf_lm_config *c = &m->cfg;
    const double TB = (double)w->T * w->B, H = c->H, E = c->E;
    double n = (double)avar_floats(w, m, meth) + (double)ref_floats(w, m, meth);
    if (w->dropout > 0 && w->rng)  // forward_from_emb: the embedding's mask, two per layer
        n += TB * E + 2.0 * c->L * TB * H;
    if (w->ragged && !w->eval)  // lm_backward: the real rows' gather
        n += (double)pack_floats(w, c);
    return (size_t)(n * sizeof(float));
}

void lm_work_destroy(dsf_lm_work *w) {
    if (w->eval)  // the shared buffers once: forget the later layers' aliases
        for (int l = 1; l < DSF_MAX_LAYERS; l++) {
            cell_cache *g = &w->cache[l];
            g->gates = g->q = g->c = NULL;
            if (l > 1) g->h = w->xs[l + 1] = NULL;
            memset(&w->bc[l], 0, sizeof w->bc[l]);
        }
#define FREE(name, type, count) dsf_free(w->name);
    WORK_BUFFERS(FREE)
    BACKWARD_BUFFERS(FREE)
    for (int l = 0; l < DSF_MAX_LAYERS; l++) {
        cell_cache *g = &w->cache[l];
#define FREEL(name, type, count) dsf_free(g->name);
        LAYER_BUFFERS(FREEL)
        dsf_free(g->c);
    }
    dsf_free(w->bw.avar);
    dsf_free(w->bw.ref);
    dsf_free(w->bw.pack);
    dsf_free(w->mask_emb);
    for (int l = 0; l < DSF_MAX_LAYERS; l++) {
        float **b = &w->bc[l].a;
        for (int k = 0; k < 8; k++) dsf_free(b[k]);
        dsf_free(w->xs[l + 1]);
    }
    dsf_free(w->de);
    dsf_free(w->gdec);
    dsf_free(w->proj);
    dsf_free(w->yf);
    dsf_free(w->stf);
    dsf_free(w->d);
    dsf_free(w->dtmp);
    dsf_free(w->du);
    for (int l = 0; l < DSF_MAX_LAYERS; l++) {
        dsf_scan_cache_free(&w->lr_cache[l]);
        dsf_free(w->mask[l]);
        dsf_free(w->dropped[l]);
        dsf_free(w->mask_mlp[l]);
    }
    memset(w, 0, sizeof *w);
}

void lm_work_reset_state(dsf_lm_work *w, const dsf_lm_config *c) {
    memset(w->state, 0, sizeof(float) * (size_t)c->L * w->B * c->H);
    memset(w->state_c, 0, sizeof(float) * (size_t)c->L * w->B * c->H);
}

// p (V) ← exp(p − max p); returns Σ p in double. Sixteen independent lanes for
// the maximum and the sum, so that both loops vectorise; the order of the sum is
// fixed, whatever the thread count.
DSF_CLONES static double softmax_exp(float *restrict p, int V) {
    enum { LANES = 16 };
    const int V16 = V / LANES * LANES;
    float mx = p[0];
    if (V16) {
        float m[LANES];
        for (int j = 0; j < LANES; j++) m[j] = p[j];
        for (int v = LANES; v < V16; v += LANES)
            for (int j = 0; j < LANES; j++) m[j] = p[v + j] > m[j] ? p[v + j] : m[j];
        for (int j = 0; j < LANES; j++) mx = m[j] > mx ? m[j] : mx;
    }
    for (int v = V16; v < V; v++) mx = p[v] > mx ? p[v] : mx;
    double acc[LANES] = {0}, sum = 0;
    for (int v = 0; v < V16; v += LANES)
        for (int j = 0; j < LANES; j++) {
            float e = dsf_expf(p[v + j] - mx);
            p[v + j] = e;
            acc[j] += e;
        }
    for (int v = V16; v < V; v++) sum += (p[v] = dsf_expf(p[v] - mx));
    for (int j = 0; j < LANES; j++) sum += acc[j];
    return sum;
}

// Layer l over T steps of input in (T,B,I), from the carried state, which it updates.
// Layer 0's input side of the gates, scratch (T,B,G·H), by rows of P (projects()).
static void project_forward(const dsf_lm *m, dsf_lm_work *w, int T) {
    const dsf_lm_config *c = &m->cfg;
    const size_t GH = (size_t)dsf_cell_gates(c->cell) * c->H, TB = (size_t)T * w->B;
    const cell_weights *rw = &m->rnn[0];
    // The GRU adds b_hh on the recurrent side; the LSTM and the Elman cell fold it in.
    const float *b2 = dsf_cell_get(c->cell)->folds_b_hh ? rw->b_hh : NULL;
    cell_input_proj((int)GH, rw->w_ih, rw->b_ih, b2, m->encoder, c->V, c->E, w->proj);
#pragma omp parallel for schedule(static) if (TB * GH > 65536)
    for (size_t r = 0; r < TB; r++)
        memcpy(w->scratch + r * GH, w->proj + (size_t)w->x[r] * GH, GH * sizeof(float));
}

// Layer 0's dW_ih and the embedding's gradient through it, from its input-side
// gate gradients bw.gi (T,B,G·H) (projects()).
static void project_backward(dsf_lm *m, dsf_lm_work *w, int T) {
    const dsf_lm_config *c = &m->cfg;
    const int GH = dsf_cell_gates(c->cell) * c->H, V = c->V, E = c->E;
    const size_t TB = (size_t)T * w->B;
    float *S = w->proj;
    memset(S, 0, (size_t)V * GH * sizeof(float));
    // Blocks of columns, each over every row in order: the same sums for any thread
    // count.
    enum { CB = 256 };
#pragma omp parallel for schedule(static) if (TB * GH > 65536)
    for (int j0 = 0; j0 < GH; j0 += CB) {
        const int j1 = j0 + CB < GH ? j0 + CB : GH;
        for (size_t r = 0; r < TB; r++) {
            float *restrict s = S + (size_t)w->x[r] * GH;
            const float *restrict g = w->bw.gi + r * GH;
            for (int j = j0; j < j1; j++) s[j] += g[j];
        }
    }
    dsf_sgemm(1, 0, GH, E, V, 1.0f, S, GH, m->encoder, E, 1.0f, m->g_rnn[0].w_ih, E);  // Sᵀ enc
    dsf_sgemm(0, 0, V, E, GH, 1.0f, S, GH, m->rnn[0].w_ih, E, 1.0f, m->g_encoder, E);  // S W_ih
}

static void layer_forward(const dsf_lm *m, dsf_lm_work *w, int l, const float *in, int I, int T) {
    const dsf_lm_config *c = &m->cfg;
    const int B = w->B, H = c->H;
    const size_t BH = (size_t)B * H;
    cell_cache *g = &w->cache[l];
    const cell_weights *rw = &m->rnn[l];
    g->rows = w->ragged ? w->step_rows : NULL;
    memcpy(g->h, w->state + l * BH, BH * sizeof(float));
    if (g->c) memcpy(g->c, w->state_c + l * BH, BH * sizeof(float));  // the LSTM's c
    dsf_cell_get(c->cell)->forward(rw, in, g, w->scratch, T, B, I, H);
    if (g->c) memcpy(w->state_c + l * BH, g->c + (size_t)T * BH, BH * sizeof(float));
    memcpy(w->state + l * BH, g->h + (size_t)T * BH, BH * sizeof(float));
}

// Layer l's backward pass: w->e holds its local errors (T,B,H) (and on return the
// state gradients), w->dx receives the input gradient (T,B,I); x is its input, or
// NULL for a projected embedding (layer 0: its gradients go to W_ih and the
// embedding directly, and dx is not written).
static void layer_backward(dsf_lm *m, dsf_lm_work *w, dsf_method meth, int l, const float *x,
                           int I, int T, int fit) {
    const dsf_lm_config *c = &m->cfg;
    const int B = w->B, H = c->H, S = dsf_cell_states(c->cell);
    const size_t lr = (size_t)l * H * m->fb.rank;
    const dsf_layer_feedback fb = {m->fb.kind, m->feedback + (size_t)l * S * H,
                                   m->fb_u ? m->fb_u + lr : NULL, m->fb_v ? m->fb_v + lr : NULL,
                                   m->fb.rank, &w->lr_cache[l], m->fb.refine};
    cell_layer_backward(c->cell, meth, w->scan, &fb, &m->rnn[l], x, &w->cache[l], w->e, NULL,
                        &w->bw, &m->g_rnn[l], w->dx, T, B, I, H);
    if (!x) {  // before fit, which takes bw.gi as its scratch
        const double t0 = dsf_prof_begin();
        project_backward(m, w, T);
        dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
    }
    if (fit) {
        const double f0 = dsf_now();
        gru_fit_feedback(&m->rnn[l], &w->cache[l], w->e, &w->bw, m->feedback + (size_t)l * H,
                         w->fit_rate, T, B, H);
        m->fit_seconds += dsf_now() - f0;
    }
}

// dlogits = (softmax − onehot) / n for nb rows of probs (the counted rows k0..),
// in place.
static void dlogits(dsf_lm_work *w, float *probs, size_t k0, size_t nb, int V, size_t n) {
    const float scale = 1.0f / (float)n;
#pragma omp parallel for schedule(static)
    for (long k = 0; k < (long)nb; k++) {
        float *p = probs + (size_t)k * V;
        p[w->y[w->rows[k0 + k]]] -= 1.0f;
        for (int v = 0; v < V; v++) p[v] *= scale;
    }
}

// The decoder and the loss on the rows whose target is not DSF_IGNORE (w->rows,
// w->slot, w->counted; their inputs gathered into w->crows when some rows are
// ignored, so that padding costs nothing here): logits = in W_decᵀ + b, a stable
// softmax per row into w->probs, at most w->dec_rows rows at a time; when there
// are more, each block's gradients are taken at once unless w->no_grad (lm.h).
// Returns the mean cross-entropy against y over the counted rows (0 when none).
static double decoder_forward(const dsf_lm *m, dsf_lm_work *w, const float *in, const int32_t *y,
                              int T) {
    const int V = m->cfg.V, H = m->cfg.H;
    const size_t TB = (size_t)T * w->B;
    size_t n = 0;
    for (size_t r = 0; r < TB; r++) {
        DSF_ASSERT(y[r] == DSF_IGNORE || (y[r] >= 0 && y[r] < V));
        w->slot[r] = y[r] == DSF_IGNORE ? -1 : (int32_t)n;
        if (y[r] != DSF_IGNORE) w->rows[n++] = (int32_t)r;
        w->row_loss[r] = 0;
    }
    w->counted = (int64_t)n;
    const size_t P = (size_t)w->dec_rows;
    w->dec_fused = n > P && !w->no_grad;
    if (n == 0) return 0.0;
    const float *src = in;
    if (n < TB) {
#pragma omp parallel for schedule(static)
        for (long k = 0; k < (long)n; k++)
            memcpy(w->crows + (size_t)k * H, in + (size_t)w->rows[k] * H, H * sizeof(float));
        src = w->crows;
    }
    if (w->dec_fused) memset(w->gdec, 0, ((size_t)V * H + V) * sizeof(float));
    for (size_t k0 = 0; k0 < n; k0 += P) {
        const size_t nb = n - k0 < P ? n - k0 : P;
        const float *sb = src + k0 * H;
        for (size_t k = 0; k < nb; k++) memcpy(w->probs + k * V, m->dec_b, V * sizeof(float));
        dsf_sgemm(0, 1, (int)nb, V, H, 1.0f, sb, H, m->dec_w, H, 1.0f, w->probs, V);
#pragma omp parallel for schedule(static)
        for (long k = 0; k < (long)nb; k++) {
            float *p = w->probs + (size_t)k * V;
            const int32_t r = w->rows[k0 + k];
            double sum = softmax_exp(p, V);
            float inv = (float)(1.0 / sum);
            float target = p[y[r]];
            for (int v = 0; v < V; v++) p[v] *= inv;
            w->row_loss[r] = (float)(log(sum) - log((double)target));
        }
        if (!w->dec_fused) continue;
        // This block's share of the decoder's gradients and of its input's (de).
        dlogits(w, w->probs, k0, nb, V, n);
        dsf_sgemm(1, 0, V, H, (int)nb, 1.0f, w->probs, V, sb, H, 1.0f, w->gdec, H);
        dsf_add_colsum(w->gdec + (size_t)V * H, w->probs, nb, V);
        dsf_sgemm(0, 0, (int)nb, H, V, 1.0f, w->probs, V, m->dec_w, H, 0.0f, w->de + k0 * H, H);
    }
    double loss = 0;  // summed in a fixed order: the same for any thread count
    for (size_t k = 0; k < n; k++) loss += w->row_loss[w->rows[k]];
    return loss / (double)n;
}

// The decoder's backward pass from w->probs (or, when decoder_forward took them,
// from w->gdec and w->de): its gradients (the tied embedding's included), and e
// (T,B,H) = dlogits W_dec for its input top (0 in ignored rows).
static void decoder_backward(dsf_lm *m, dsf_lm_work *w, const float *top, float *e, int T) {
    const int V = m->cfg.V, H = m->cfg.H;
    const size_t TB = (size_t)T * w->B, n = (size_t)w->counted;
    DSF_ASSERT(n <= (size_t)w->dec_rows || w->dec_fused);  // not after a no_grad forward
    if (n < TB) memset(e, 0, TB * H * sizeof(float));
    if (n == 0) return;
    const float *de = w->de;  // the input's gradient of the counted rows, compact
    if (w->dec_fused) {
        const size_t VH = (size_t)V * H;
#pragma omp parallel for schedule(static)
        for (long i = 0; i < (long)VH; i++) m->g_dec_w[i] += w->gdec[i];  // tie: + g_encoder
        for (int v = 0; v < V; v++) m->g_dec_b[v] += w->gdec[VH + v];
    } else {
        dlogits(w, w->probs, 0, n, V, n);
        const float *src = n < TB ? w->crows : top;  // the gathered inputs of the counted rows
        dsf_sgemm(1, 0, V, H, (int)n, 1.0f, w->probs, V, src, H, 1.0f, m->g_dec_w, H);  // tie: + g_encoder
        dsf_add_colsum(m->g_dec_b, w->probs, n, V);
        // The top layer's local error: e = dlogits W_dec (into crows, whose inputs are
        // no longer needed, when it is to be scattered).
        float *out = n == TB ? e : w->crows;
        dsf_sgemm(0, 0, (int)n, H, V, 1.0f, w->probs, V, m->dec_w, H, 0.0f, out, H);
        if (n == TB) return;
        de = w->crows;
    }
    if (n == TB) {
        memcpy(e, de, TB * H * sizeof(float));
        return;
    }
#pragma omp parallel for schedule(static)
    for (long k = 0; k < (long)n; k++)
        memcpy(e + (size_t)w->rows[k] * H, de + (size_t)k * H, H * sizeof(float));
}

// ---- the block architecture ----

// x ← x + RNN(LN1(x)), x ← x + fc2(GELU(fc1(LN2(x)))) for each block, then the
// final LayerNorm and the tied decoder. With dropout (sl: the masks' layout;
// the embedding's is done) each branch's output is dropped before it joins the
// stream: the recurrent branch's under mask[k], the MLP's under mask_mlp[k].
static double block_forward(const dsf_lm *m, dsf_lm_work *w, const int32_t *y, int T,
                            const dsf_stream_layout *sl) {
    const int B = w->B, H = m->cfg.H, L = m->cfg.L, M = m->cfg.mlp;
    const size_t BH = (size_t)B * H, TB = (size_t)T * B, n = TB * H;
    const int drop = w->dropped_now;
    w->xs[0] = w->emb;
    for (int k = 0; k < L; k++) {
        const struct dsf_block *p = &m->blk[k];
        struct dsf_block_cache *bc = &w->bc[k];
        const float *x = w->xs[k];
        float *out = w->xs[k + 1];
        layernorm_forward(x, p->ln1_w, p->ln1_b, bc->a, bc->st1, bc->st1 + TB, (int)TB, H);
        layer_forward(m, w, k, bc->a, H, T);
        const float *r = w->cache[k].h + BH;
        if (p->proj_w) {  // rp = r W_projᵀ + b_proj
            for (size_t row = 0; row < TB; row++) memcpy(bc->rp + row * H, p->proj_b, sizeof(float) * H);
            dsf_sgemm(0, 1, (int)TB, H, H, 1.0f, r, H, p->proj_w, H, 1.0f, bc->rp, H);
            r = bc->rp;
        }
        if (drop) {  // xmid = x + dropout(r)
            dropout_forward_streams(r, bc->xmid, w->mask[k], sl, H, w->dropout, w->rng);
            r = bc->xmid;
        }
        for (size_t i = 0; i < n; i++) bc->xmid[i] = x[i] + r[i];
        layernorm_forward(bc->xmid, p->ln2_w, p->ln2_b, bc->b, bc->st2, bc->st2 + TB, (int)TB, H);
        for (size_t row = 0; row < TB; row++) memcpy(bc->u + row * M, p->fc1_b, sizeof(float) * M);
        dsf_sgemm(0, 1, (int)TB, M, H, 1.0f, bc->b, H, p->fc1_w, H, 1.0f, bc->u, M);
        gelu_forward(bc->u, bc->gl, TB * M);
        // The MLP's output: in out itself, or with dropout in dtmp (free until
        // the backward pass), dropped, then added to the stream.
        float *mo = drop ? w->dtmp : out;
        for (size_t row = 0; row < TB; row++)
            for (int i = 0; i < H; i++)
                mo[row * H + i] = (drop ? 0.0f : bc->xmid[row * H + i]) + p->fc2_b[i];
        dsf_sgemm(0, 1, (int)TB, H, M, 1.0f, bc->gl, M, p->fc2_w, M, 1.0f, mo, H);
        if (drop) {
            dropout_forward_streams(mo, mo, w->mask_mlp[k], sl, H, w->dropout, w->rng);
            for (size_t i = 0; i < n; i++) out[i] = bc->xmid[i] + mo[i];
        }
    }
    layernorm_forward(w->xs[L], m->lnf_w, m->lnf_b, w->yf, w->stf, w->stf + TB, (int)TB, H);
    return decoder_forward(m, w, w->yf, y, T);
}

// The gradient of the stream, d, from the top down: each branch's backward pass
// adds to it; the recurrent layer's local error is d where its output joins it.
static void block_backward(dsf_lm *m, dsf_lm_work *w, dsf_method meth, int fit) {
    const int T = w->last_T, B = w->B, H = m->cfg.H, L = m->cfg.L, M = m->cfg.mlp;
    const size_t TB = (size_t)T * B, n = TB * H;
    float *d = w->d;
    const int drop = w->dropped_now;
    decoder_backward(m, w, w->yf, w->dtmp, T);
    layernorm_backward(w->dtmp, w->xs[L], w->stf, w->stf + TB, m->lnf_w, d, m->g_lnf_w,
                       m->g_lnf_b, (int)TB, H);
    for (int k = L - 1; k >= 0; k--) {
        const struct dsf_block *p = &m->blk[k];
        struct dsf_block *g = &m->g_blk[k];
        struct dsf_block_cache *bc = &w->bc[k];
        // MLP branch (its output's gradient dm: d through its dropout, in e).
        const float *dm = d;
        if (drop) {
            dropout_backward(d, w->mask_mlp[k], w->e, n);
            dm = w->e;
        }
        dsf_sgemm(1, 0, H, M, (int)TB, 1.0f, dm, H, bc->gl, M, 1.0f, g->fc2_w, M);
        dsf_add_colsum(g->fc2_b, dm, TB, H);
        dsf_sgemm(0, 0, (int)TB, M, H, 1.0f, dm, H, p->fc2_w, M, 0.0f, w->du, M);
        gelu_backward(w->du, bc->u, w->du, TB * M);
        dsf_sgemm(1, 0, M, H, (int)TB, 1.0f, w->du, M, bc->b, H, 1.0f, g->fc1_w, H);
        dsf_add_colsum(g->fc1_b, w->du, TB, M);
        dsf_sgemm(0, 0, (int)TB, H, M, 1.0f, w->du, M, p->fc1_w, H, 0.0f, w->dtmp, H);
        layernorm_backward(w->dtmp, bc->xmid, bc->st2, bc->st2 + TB, p->ln2_w, w->e, g->ln2_w,
                           g->ln2_b, (int)TB, H);
        for (size_t i = 0; i < n; i++) d[i] += w->e[i];
        // Recurrent branch: its local error is the stream's gradient (through its
        // dropout and, with proj, through the projection: e = d_rp W_proj).
        const float *dr = d;
        if (drop) {
            dropout_backward(d, w->mask[k], p->proj_w ? w->dtmp : w->e, n);
            dr = p->proj_w ? w->dtmp : w->e;
        }
        if (p->proj_w) {
            const float *h = w->cache[k].h + (size_t)B * H;
            dsf_sgemm(1, 0, H, H, (int)TB, 1.0f, dr, H, h, H, 1.0f, g->proj_w, H);
            dsf_add_colsum(g->proj_b, dr, TB, H);
            dsf_sgemm(0, 0, (int)TB, H, H, 1.0f, dr, H, p->proj_w, H, 0.0f, w->e, H);
        } else if (!drop) {
            memcpy(w->e, d, n * sizeof(float));
        }
        layer_backward(m, w, meth, k, bc->a, H, T, fit);
        layernorm_backward(w->dx, w->xs[k], bc->st1, bc->st1 + TB, p->ln1_w, w->e, g->ln1_w,
                           g->ln1_b, (int)TB, H);
        for (size_t i = 0; i < n; i++) d[i] += w->e[i];
    }
    // The embedding's gradient, scattered by the caller (through its dropout).
    if (drop)
        dropout_backward(d, w->mask_emb, w->e, n);
    else
        memcpy(w->e, d, n * sizeof(float));
}

// residual: the stream's gradient d from the decoder down; each layer's local
// error is d (through its dropout), and its input gradient joins d.
static void residual_backward(dsf_lm *m, dsf_lm_work *w, dsf_method meth, int fit) {
    const int T = w->last_T, H = m->cfg.H, L = m->cfg.L;
    const size_t n = (size_t)T * w->B * H;
    const int drop = w->dropped_now;
    float *d = w->d;
    double t0 = dsf_prof_begin();
    decoder_backward(m, w, w->xs[L], d, T);
    dsf_prof_end(DSF_PROF_DECODER, t0);
    for (int l = L - 1; l >= 0; l--) {
        if (drop)
            dropout_backward(d, w->mask[l], w->e, n);
        else
            memcpy(w->e, d, n * sizeof(float));
        layer_backward(m, w, meth, l, l > 0 ? w->xs[l] : w->proj_now ? NULL : w->emb, H, T, fit);
        if (l > 0 || !w->proj_now)  // (else layer 0's input gradient went to the embedding)
            for (size_t i = 0; i < n; i++) d[i] += w->dx[i];
    }
    if (drop)  // the embedding output's gradient, through its dropout
        dropout_backward(d, w->mask_emb, w->e, n);
    else
        memcpy(w->e, d, n * sizeof(float));
}

static double forward_from_emb(const dsf_lm *m, dsf_lm_work *w, const int32_t *y, int T,
                               double t0);

double lm_forward(const dsf_lm *m, dsf_lm_work *w, const int32_t *x, const int32_t *y, int T) {
    const dsf_lm_config *c = &m->cfg;
    const int E = c->E, V = c->V;
    const size_t TB = (size_t)T * w->B;
    DSF_ASSERT(T >= 1 && T <= w->T && !c->inputs);
    w->last_T = T;
    memcpy(w->x, x, TB * sizeof(int32_t));
    double t0 = dsf_prof_begin();
    for (size_t r = 0; r < TB; r++) {
        DSF_ASSERT(x[r] >= 0 && x[r] < V);
        memcpy(w->emb + r * E, m->encoder + (size_t)x[r] * E, E * sizeof(float));
    }
    return forward_from_emb(m, w, y, T, t0);
}

double lm_forward_floats(const dsf_lm *m, dsf_lm_work *w, const float *xf, const int32_t *y,
                         int T) {
    const size_t TB = (size_t)T * w->B;
    DSF_ASSERT(T >= 1 && T <= w->T && m->cfg.inputs == m->cfg.E);
    w->last_T = T;
    double t0 = dsf_prof_begin();
    memcpy(w->emb, xf, TB * m->cfg.E * sizeof(float));
    return forward_from_emb(m, w, y, T, t0);
}

// w->step_rows and w->ran for targets y (T,B) (lm.h, ragged): every row when
// the work area is not ragged; else step t runs up to the last row that has a
// counted target at step t or later.
static void set_step_rows(dsf_lm_work *w, const int32_t *y, int T) {
    const int B = w->B;
    int n = 0;
    w->ran = 0;
    for (int t = T - 1; t >= 0; t--) {
        if (!w->ragged) n = B;
        for (int b = B - 1; b >= n; b--)
            if (y[(size_t)t * B + b] != DSF_IGNORE) n = b + 1;
        w->step_rows[t] = n;
        w->ran += n;
    }
}

// The rest of the forward pass from the inputs in w->emb (T,B,E).
static double forward_from_emb(const dsf_lm *m, dsf_lm_work *w, const int32_t *y, int T,
                               double t0) {
    const dsf_lm_config *c = &m->cfg;
    const int B = w->B, E = c->E, H = c->H, L = c->L;
    const size_t TB = (size_t)T * B, BH = (size_t)B * H;
    memcpy(w->y, y, TB * sizeof(int32_t));
    set_step_rows(w, y, T);
    const int drop = w->dropout > 0 && w->rng, block = c->arch == DSF_ARCH_BLOCK;
    w->dropped_now = drop;
    DSF_ASSERT(!(drop && w->eval));  // an evaluation work area has no dropout
    w->proj_now = w->proj && !drop && (size_t)c->V < TB;
    if (drop && !w->mask_emb) {  // first use: the buffers for every site
        const size_t n = (size_t)w->T * B;
        DSF_ASSERT((w->mask_emb = dsf_alloc(n * E * sizeof(float))));
        for (int l = 0; l < L; l++) {
            DSF_ASSERT((w->mask[l] = dsf_alloc(n * H * sizeof(float))));
            float **more = block ? &w->mask_mlp[l] : &w->dropped[l];
            DSF_ASSERT((*more = dsf_alloc(n * H * sizeof(float))));
        }
    }
    // The sites draw their keys in order: the embedding, then each layer (block:
    // its recurrent branch, then its MLP branch).
    const dsf_stream_layout sl = {T, B, w->drop_B, w->drop_first, w->drop_stride};
    if (drop) dropout_forward_streams(w->emb, w->emb, w->mask_emb, &sl, E, w->dropout, w->rng);
    if (block) {
        const double loss = block_forward(m, w, y, T, &sl);
        dsf_prof_end(DSF_PROF_FORWARD, t0);
        return loss;
    }
    const float *in = w->emb;
    int I = E;
    const int residual = c->arch == DSF_ARCH_RESIDUAL;
    if (w->proj_now) project_forward(m, w, T);
    for (int l = 0; l < L; l++) {
        layer_forward(m, w, l, l == 0 && w->proj_now ? NULL : in, I, T);
        const float *h = w->cache[l].h + BH;  // outputs h[1..T]
        if (drop) {
            dropout_forward_streams(h, w->dropped[l], w->mask[l], &sl, H, w->dropout, w->rng);
            h = w->dropped[l];
        }
        if (residual) {  // the stream xs[l+1] = xs[l] + (dropped) h
            float *out = w->xs[l + 1];
            for (size_t i = 0; i < TB * H; i++) out[i] = in[i] + h[i];
            h = out;
        }
        in = h;
        I = H;
    }
    dsf_prof_end(DSF_PROF_FORWARD, t0);
    t0 = dsf_prof_begin();
    const double loss = decoder_forward(m, w, in, y, T);
    dsf_prof_end(DSF_PROF_DECODER, t0);
    return loss;
}

void lm_backward(dsf_lm *m, dsf_lm_work *w, dsf_method meth) {
    const dsf_lm_config *c = &m->cfg;
    const int T = w->last_T, B = w->B, E = c->E, H = c->H, L = c->L;
    const size_t TB = (size_t)T * B, BH = (size_t)B * H;
    double t0 = dsf_prof_begin();
    memset(m->grads, 0, m->n * sizeof(float));
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);

    DSF_ASSERT(!w->eval);  // lm_work_create_eval: forward passes only
    const int fit = meth == DSF_METHOD_DSF && m->fb.kind == DSF_FEEDBACK_FIT && w->fit_now &&
                    c->cell == DSF_CELL_GRU;
    if (fit) m->fits++;
    DSF_ASSERT(lm_work_reserved(w, m, meth));  // lm_work_reserve(w, m, meth) was called
    if (w->ragged && !w->bw.pack)  // first use: the real rows' gather (cell/params.h)
        DSF_ASSERT((w->bw.pack = dsf_alloc(pack_floats(w, c) * sizeof(float))));
    if (c->arch == DSF_ARCH_BLOCK) {
        block_backward(m, w, meth, fit);
        goto embedding;
    }
    if (c->arch == DSF_ARCH_RESIDUAL) {
        residual_backward(m, w, meth, fit);
        goto embedding;
    }
    t0 = dsf_prof_begin();
    const int drop = w->dropped_now;
    const float *top = drop ? w->dropped[L - 1] : w->cache[L - 1].h + BH;  // the decoder's input
    decoder_backward(m, w, top, w->e, T);
    if (drop) dropout_backward(w->e, w->mask[L - 1], w->e, TB * H);
    dsf_prof_end(DSF_PROF_DECODER, t0);

    for (int l = L - 1; l >= 0; l--) {
        const float *x = l > 0 ? (drop ? w->dropped[l - 1] : w->cache[l - 1].h + BH)
                               : w->proj_now ? NULL : w->emb;
        int I = l == 0 ? E : H;
        layer_backward(m, w, meth, l, x, I, T, fit);
        // dx is the local error of the layer below (or of the embedding), through its dropout.
        float *t = w->e;
        w->e = w->dx;
        w->dx = t;
        if (drop)
            dropout_backward(w->e, l ? w->mask[l - 1] : w->mask_emb, w->e, TB * (l ? H : E));
    }
embedding:  // w->e (T,B,E) is the embedding output's gradient
    if (c->inputs) return;  // continuous inputs: no table to update
    // A projected embedding's gradient through layer 0 is in already; the stack
    // has no other path to it (the residual stream has: w->e).
    if (w->proj_now && c->arch == DSF_ARCH_STACK) return;
    t0 = dsf_prof_begin();
    for (size_t r = 0; r < TB; r++) {
        float *g = m->g_encoder + (size_t)w->x[r] * E;
        const float *d = w->e + r * E;
        for (int i = 0; i < E; i++) g[i] += d[i];
    }
    dsf_prof_end(DSF_PROF_PARAM_GRAD, t0);
}
