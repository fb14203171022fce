// lm.h: the language model: embedding -> L recurrent layers (GRU, LSTM or Elman;
// stacked, residual, or in residual blocks) -> linear decoder -> softmax
// cross-entropy, with optional dropout (docs/DESIGN.md).
//
// Parameters and gradients each live in one flat buffer; dsf_param describes the
// named views into it, in checkpoint order:
//   encoder.weight (V,E)
//   rnn.weight_ih_l{k} (G·H,I)  rnn.weight_hh_l{k} (G·H,H)  rnn.bias_ih_l{k} (G·H)  rnn.bias_hh_l{k} (G·H)
//   decoder.weight (V,H)  decoder.bias (V)
// The DSF feedback (grad/feedback.h) is not a parameter: its vectors a (L,H),
// and U, V (L,H,r) for lowrank, are set once; only fit changes a, by its own rule.
#ifndef DSF_LM_H
#define DSF_LM_H

#include <stddef.h>
#include <stdint.h>

#include "cell/gru.h"
#include "core/common.h"
#include "grad/feedback.h"
#include "grad/method.h"

#define DSF_MAX_LAYERS 64
#define DSF_MAX_TENSORS (4 + 12 * DSF_MAX_LAYERS)

// The recurrent cell (dsf_cell, dsf_cell_get): cell/cell.h.

// stack: embedding -> L recurrent layers -> decoder.
// residual: the stack with x ← x + RNN(x) at every layer (E = H), as the authors'
// PTB models: the same tensors as stack.
// block: L residual blocks  x ← x + RNN(LN1(x)),  x ← x + MLP(LN2(x))  (MLP: fc1 to
// width mlp, GELU, fc2), then a final LayerNorm and the decoder (E = H), tied unless
// untied; with proj the recurrent branch ends in a Linear H → H,
// x ← x + proj(RNN(LN1(x))): the authors' "transformer-like" WikiText model.
typedef enum { DSF_ARCH_STACK, DSF_ARCH_BLOCK, DSF_ARCH_RESIDUAL } dsf_arch;
const char *dsf_arch_name(dsf_arch a);            // "stack", "block", "residual"
int dsf_arch_parse(const char *s, dsf_arch *out);  // 0, or -1 with the error set

typedef struct {
    int V, E, H, L;
    dsf_cell cell;  // GRU unless set
    dsf_arch arch;  // stack unless set
    int mlp;        // block: the MLP's width
    int proj;       // block: a Linear after the RNN (blocks.{k}.proj.weight, .bias)
    int tie;        // the decoder's weight is the embedding's (E = H): no decoder.weight
    // Continuous inputs (sequence classification): no embedding table; step t of
    // row b reads E = inputs floats (lm_forward_floats), and the decoder is the
    // head of V classes. 0: token inputs through encoder.weight.
    int inputs;
} dsf_lm_config;

typedef struct {
    char name[48];
    int ndim;
    int64_t shape[2];
    size_t offset, numel;  // in floats, into the flat buffers
    int is_weight;         // a matrix (weight decay applies), not a bias
} dsf_param;

typedef struct {
    dsf_lm_config cfg;
    int ntensors;
    dsf_param tensors[DSF_MAX_TENSORS];
    size_t n;        // number of parameters
    float *params;   // (n)
    float *grads;    // (n)
    float *feedback; // (L,S·H): a per layer (the LSTM's a_h, then a_c)
    dsf_feedback fb;     // the feedback's kind, the same for every layer (uniform unless set)
    float *fb_u, *fb_v;  // (L,H,r): lowrank only, else NULL
    int64_t fits;        // fit: re-estimates done (each covers every layer) and their time
    double fit_seconds;
    // Views into params and grads.
    float *encoder, *dec_w, *dec_b;
    float *g_encoder, *g_dec_w, *g_dec_b;
    cell_weights rnn[DSF_MAX_LAYERS];
    cell_grads g_rnn[DSF_MAX_LAYERS];
    // block: the non-recurrent tensors of each block, and the final LayerNorm
    struct dsf_block {
        float *ln1_w, *ln1_b, *ln2_w, *ln2_b, *fc1_w, *fc1_b, *fc2_w, *fc2_b;
        float *proj_w, *proj_b;  // NULL without proj
    } blk[DSF_MAX_LAYERS], g_blk[DSF_MAX_LAYERS];
    float *lnf_w, *lnf_b, *g_lnf_w, *g_lnf_b;
} dsf_lm;

// Checks the sizes (one clear error if absurd or larger than memory) and
// allocates zeroed buffers.
int lm_create(dsf_lm *m, const dsf_lm_config *cfg);
void lm_destroy(dsf_lm *m);
// PyTorch's initialisation: encoder and decoder weights U(±0.1), decoder bias 0,
// GRU weights and biases U(±1/√H). (The feedback is filled by grad/feedback.h.)
void lm_init_params(dsf_lm *m, dsf_rng *rng);
// The authors' initialisation (--init-std): after lm_init_params, the embedding and
// the decoder weight (and a block's fc1, fc2) redrawn N(0, std²), fc2 with
// std/√(2L); the recurrent weights keep PyTorch's U(±1/√H).
void lm_init_normal(dsf_lm *m, dsf_rng *rng, float std);
const dsf_param *lm_find(const dsf_lm *m, const char *name);
// Sets the feedback kind and draws every layer's vectors from rng (T is the
// training sequence length, for ssm): a, and U, V for lowrank (allocated here).
int lm_set_feedback(dsf_lm *m, const dsf_feedback *f, dsf_rng *rng, int T);
// Allocates zeroed U, V of rank r and makes the kind lowrank (checkpoint loading).
int lm_alloc_lowrank(dsf_lm *m, int r);
// Fills m->tensors and m->n from m->cfg (no allocation).
void lm_layout(dsf_lm *m);
// Bytes lm_create would allocate (for the memory check).
size_t lm_bytes(const dsf_lm_config *cfg);

// Activations for batch B and at most T steps, and the recurrent state that is
// carried from one step to the next (detached: no gradient crosses it).
typedef struct {
    int B, T;
    int last_T;       // steps of the last forward pass
    int32_t *x, *y;   // (T,B) time-major tokens of the last forward pass
    float *emb;       // (T,B,E)
    cell_cache cache[DSF_MAX_LAYERS];  // h, gates (T,B,G·H) for every cell; q for the GRU
    float *scratch;   // (T,B,3H)
    float *probs;     // (P,V): softmax of the logits of the counted rows, then dlogits
    float *row_loss;  // (T·B): each row's loss, 0 where ignored
    // The decoder runs on the rows whose target counts: rows[k] (k < counted) is
    // the row of probs' row k, slot[r] the probs row of row r (-1: ignored);
    // crows (counted,H) their decoder inputs, gathered when some are ignored.
    int32_t *rows, *slot;
    int64_t counted;
    float *crows;
    // The decoder holds P = dec_rows logits rows at once: the whole batch when its
    // (T·B)·V floats fit in DSF_DECODER_BYTES, else it goes through the counted rows
    // in blocks of P and, unless no_grad (evaluation), takes the decoder's gradients
    // (gdec: weight (V,H) then bias (V)) and its input's (de, (n,H)) in the same pass
    // (dec_fused), for lm_backward to use.
    int64_t dec_rows;
    int no_grad, dec_fused;
    // An evaluation work area (lm_work_create_eval): no_grad always, the layers'
    // caches shared, no lm_backward.
    int eval;
    float *gdec, *de;
    // The embedding projected once (lm.c's projects()): proj (V,G·H) holds
    // encoder W_ihᵀ + biases in the forward pass, the gate gradients summed by
    // token in the backward pass; proj_now: the last forward pass used it.
    float *proj;
    int proj_now;
    float *e, *dx;    // (T,B,max(E,H))
    cell_work bw;
    float *wpack;     // gru_pack_floats(H): packed W_hh, shared by the layers
    float *state;     // (L,B,H)
    float *state_c;   // (L,B,H): the LSTM's carried cell state
    // Ragged batches (off unless set): every forward pass starts from a zero state
    // and nothing reads the state a row is left in past its last counted target
    // (padded sentences, --batching sentence, each batch from a zero state). Step
    // t's recurrence then runs rows [0, step_rows[t]) only, step_rows[t] being 1 +
    // the last row with a target other than DSF_IGNORE at step t or later
    // (cell/cell.h, cell_cache.rows): with the rows sorted longest first (the
    // sentence batcher's order, data/batch.h) that is the real tokens and no
    // padding. Exact: the loss and every gradient are those of running every row.
    // The state left in w->state is 0 for a row that ended before the last step.
    int ragged;
    int *step_rows;  // (T): the rows each step of the last forward pass ran
    int64_t ran;     // Σ step_rows: the recurrence's positions in the last forward pass
    dsf_scan_kind scan;  // how dsf's recurrence is computed (seq unless set)
    // fit feedback: lm_backward under dsf re-estimates a when fit_now is set,
    // with weight fit_rate (1: take the new estimate as it is).
    int fit_now;
    float fit_rate;
    dsf_scan_cache lr_cache[DSF_MAX_LAYERS];  // lowrank blelloch powers, per layer
    // Dropout (inverted, a fresh mask each forward pass) on the embedding output,
    // between layers and before the decoder (block: on the embedding output and
    // on each branch's output before it joins the stream), when dropout > 0 and rng is set
    // (training); evaluation leaves rng NULL. Buffers allocated on first use.
    float dropout;
    dsf_rng *rng;
    // The masks' stream layout: these B streams are streams drop_first,
    // drop_first + drop_stride, … of drop_B (data-parallel training: a rank's
    // share), so every process draws its part of one single-process mask (B, 0,
    // 1 by default).
    int64_t drop_B, drop_first, drop_stride;
    float *mask_emb;                  // (T,B,E)
    float *mask[DSF_MAX_LAYERS];      // (T,B,H) on layer l's output (block: its recurrent branch's)
    float *dropped[DSF_MAX_LAYERS];   // (T,B,H) layer l's output after dropout (stack only)
    float *mask_mlp[DSF_MAX_LAYERS];  // (T,B,H) block l's MLP branch output (block only)
    int dropped_now;                  // the last forward pass used dropout
    // block: per block the LN1 output a, LN statistics (mean, 1/σ), the stream
    // after the recurrent branch xmid, the LN2 output b, fc1's output u and
    // GELU(u) gl; xs[k] the stream entering block k (xs[0] the embedding, xs[L]
    // the final stream), yf the final LN's output; d, dtmp, du backward scratch.
    // rp: the projected recurrent output (proj only).
    struct dsf_block_cache { float *a, *st1, *xmid, *b, *st2, *u, *gl, *rp; } bc[DSF_MAX_LAYERS];
    // residual: xs[k] is the stream entering layer k too (xs[L] the decoder's input).
    float *xs[DSF_MAX_LAYERS + 1];
    float *yf, *stf, *d, *dtmp, *du;
} dsf_lm_work;

// The softmax of row r (time-major t·B + b) of the last forward pass, NULL when
// its target was ignored.
static inline const float *lm_row_probs(const dsf_lm_work *w, size_t r, int V) {
    DSF_ASSERT(w->counted <= w->dec_rows);  // all the rows' softmax is there
    return w->slot[r] < 0 ? NULL : w->probs + (size_t)w->slot[r] * V;
}

// The most logits the decoder of a work area created next holds at once (default
// 1 GiB, at least 64 rows), so that a large vocabulary times a long batch does not
// need them all; returns the previous value.
double lm_set_decoder_bytes(double bytes);

int lm_work_create(dsf_lm_work *w, const dsf_lm_config *cfg, int B, int T);
// A work area for forward passes only (evaluation; lm_backward refuses it): the
// layers take turns with one set of activation buffers, their outputs with two,
// and the backward pass's buffers are left out, so that a deep model's evaluation
// at a large batch needs a fraction of lm_work_create's memory. The same results
// to the bit.
int lm_work_create_eval(dsf_lm_work *w, const dsf_lm_config *cfg, int B, int T);
// Whether work areas created next compute the first layer's input side from the
// embedding table projected once when the vocabulary is smaller than a batch's
// T·B rows (on by default; the same results to float rounding); returns the
// previous setting.
int lm_set_embedding_projection(int on);
// Allocates the buffers that backward passes under meth with m's feedback need
// (the diag feedback's varying a, the correction sweeps' copies) unless w has
// them: before the first lm_backward with that method and feedback, so that no
// backward pass allocates. 0, or -1 with the error set.
int lm_work_reserve(dsf_lm_work *w, const dsf_lm *m, dsf_method meth);
int lm_work_reserved(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth);
// Bytes of w's buffers that lm_work_reserve or the first pass allocates under
// meth with its settings (dropout masks, the ragged rows' gather), with or
// without them there yet.
size_t lm_work_more_bytes(const dsf_lm_work *w, const dsf_lm *m, dsf_method meth);
void lm_work_destroy(dsf_lm_work *w);
size_t lm_work_bytes(const dsf_lm_config *cfg, int B, int T);
size_t lm_work_eval_bytes(const dsf_lm_config *cfg, int B, int T);
void lm_work_reset_state(dsf_lm_work *w, const dsf_lm_config *cfg);

// A target that carries no loss (the rows of a task between its answers): the
// loss is the mean over the other rows, and an ignored row's logits get no gradient.
#define DSF_IGNORE (-1)

// Forward pass over T <= w->T steps of tokens x, targets y (T,B): starts from
// w->state, leaves the final state there, returns the mean cross-entropy over the
// targets that are not DSF_IGNORE (0 if all are).
double lm_forward(const dsf_lm *m, dsf_lm_work *w, const int32_t *x, const int32_t *y, int T);
// The same for a model of continuous inputs (cfg.inputs = E): xf (T,B,E) are the
// inputs; y as above (a classifier's targets: the class at the last step, every
// other DSF_IGNORE).
double lm_forward_floats(const dsf_lm *m, dsf_lm_work *w, const float *xf, const int32_t *y,
                         int T);
// Gradient of the mean cross-entropy of the last forward pass (over its counted
// targets), into m->grads (overwritten), under method meth; w must have been
// reserved for it (lm_work_reserve).
void lm_backward(dsf_lm *m, dsf_lm_work *w, dsf_method meth);

#endif
