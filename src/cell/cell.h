// cell.h: what every recurrent cell (GRU, LSTM, Elman) shares: its weights in
// PyTorch's layout (G gate blocks of H rows: G = 3 GRU, 4 LSTM, 1 Elman), their
// gradients, and what the forward pass keeps for the backward pass.
#ifndef DSF_CELL_H
#define DSF_CELL_H

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
} cell_cache;

#endif
