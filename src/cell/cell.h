// cell.h: what every recurrent cell (GRU, LSTM, Elman) shares: its weights in
// PyTorch's layout (G gate blocks of H rows: G = 3 GRU, 4 LSTM, 1 Elman), their
// gradients, and what the forward pass keeps for the backward pass.
#ifndef DSF_CELL_H
#define DSF_CELL_H

#include <stddef.h>
#include <string.h>

// The recurrent cell (PyTorch's GRU, LSTM, and RNN with tanh).
typedef enum { DSF_CELL_GRU, DSF_CELL_LSTM, DSF_CELL_ELMAN } dsf_cell;
#define DSF_NCELLS 3

typedef struct {
    const float *w_ih;  // (G·H,I)
    const float *w_hh;  // (G·H,H)
    const float *b_ih;  // (G·H)
    const float *b_hh;  // (G·H)
} cell_weights;

typedef struct {
    float *w_ih, *w_hh, *b_ih, *b_hh;  // shapes as cell_weights; accumulated (+=)
} cell_grads;

// A cell uses the fields it needs; the others may be NULL.
typedef struct {
    float *h;      // (T+1,B,H): h[0] is the initial state, h[t+1] the output of step t
    float *c;      // LSTM: (T+1,B,H), c[0] the initial cell state
    float *gates;  // (T,B,G·H) after their nonlinearities: GRU r, z, n; LSTM i, f, g, o
    float *q;      // GRU: (T,B,H), W_hn h' + b_hn
    // Scratch for W_hh packed into panels (core/panel.h), *_pack_floats(H) floats,
    // 64-byte aligned; it may be shared by every layer of a model. When NULL, the
    // recurrent products are plain GEMMs, one a step.
    float *wpack;
    // Ragged batches (model/lm.h, dsf_lm_work.ragged): NULL, or (T) row counts,
    // non-increasing, step t running rows [0, rows[t]) only. The rows past it are
    // padding that no counted output reads from step t on: the forward pass writes
    // their h, c, gates and q as 0 and skips their products; BPTT's loop treats
    // their state gradients as the zeros they are (every later local error is 0)
    // and writes their gate gradients 0. Exact: the gradient is the one of
    // running every row (docs/SPEED.md, "Padded batches").
    const int *rows;
} cell_cache;

// The rows step t of a forward or BPTT pass runs (cache->rows, else all B).
static inline int cell_rows(const cell_cache *c, int t, int B) { return c->rows ? c->rows[t] : B; }

// The rows whose last step is t: [first, cell_rows(c, t, B)), first being step
// t+1's row count (0 after the last step). Without rows: every row at T − 1.
static inline int cell_rows_ending(const cell_cache *c, int t, int T, int B) {
    return t + 1 < T ? cell_rows(c, t + 1, B) : 0;
}

// Zeroes columns [u0, u1) of rows [n, B) of a (B, stride) block: the skipped rows.
static inline void cell_zero_rows(float *p, int n, int B, size_t stride, int u0, int u1) {
    for (int b = n; b < B; b++) memset(p + (size_t)b * stride + u0, 0, sizeof(float) * (size_t)(u1 - u0));
}

// What the model and the layer API know of a cell: a new cell is its file (forward,
// local backward, BPTT loop, Jacobian diagonal), a row of this table (cell.c) and
// one of grad/method.c's, which brings it to the gradient methods.
typedef struct {
    const char *name;  // "gru", "lstm", "rnn": the command line's --cell
    int gates;         // G: gate blocks of H rows in w_ih, w_hh
    int states;        // S: state vectors per unit (the LSTM's h and c: 2; cache->c)
    int has_q;         // cache->q (T,B,H) is used (the GRU's)
    int folds_b_hh;    // the input side of the gates holds b_hh too (cell_input_proj)
    size_t (*pack_floats)(int H);  // cache->wpack's floats
    // x (T,B,I), or NULL when scratch (T,B,G·H) already holds the input side of the
    // gates; starts from cache->h[0] (and c[0]) and fills the rest of the cache.
    void (*forward)(const cell_weights *w, const float *x, cell_cache *cache, float *scratch,
                    int T, int B, int I, int H);
} dsf_cell_info;

const dsf_cell_info *dsf_cell_get(dsf_cell c);     // c valid
const char *dsf_cell_name(dsf_cell c);            // "gru", "lstm", "rnn"
int dsf_cell_parse(const char *s, dsf_cell *out);  // 0, or -1 with the error set
int dsf_cell_gates(dsf_cell c);                    // 3, 4, 1
int dsf_cell_states(dsf_cell c);                   // 1, 2, 1

#endif
