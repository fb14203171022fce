// params.h: the parameter and input gradients of a recurrent layer, the same
// for every cell once its gate gradients are known (PyTorch's layout: G gate
// blocks of H rows in w_ih (G·H,I), w_hh (G·H,H), b_ih, b_hh (G·H)).
#ifndef DSF_PARAMS_H
#define DSF_PARAMS_H

#include <stddef.h>

// out (n,GH) = x W_ihᵀ + b1 (+ b2 unless NULL): the input side of the gates of n
// rows of x (n,I), as the forward passes need it (the GRU: b1 = b_ih; the LSTM and
// the Elman cell fold b_hh in too: b2 = b_hh).
void cell_input_proj(int GH, const float *w_ih, const float *b1, const float *b2, const float *x,
                     int n, int I, float *out);

// For n = T·B rows: dW_ih += giᵀ x, dW_hh += ghᵀ h_prev, db_ih += Σ gi,
// db_hh += Σ gh (accumulated), and, unless dx is NULL, dx (n,I) = gi W_ih.
// gi, gh (n,G·H) are the gate gradients on the input and recurrent side (the
// same array for LSTM and Elman; they differ in the GRU's n gate). x NULL: the
// input side is the caller's (a projected embedding, model/lm.c): no dW_ih, no dx.
void cell_backward_params(int GH, const float *w_ih, const float *x, const float *h_prev,
                          const float *gi, const float *gh, float *g_w_ih, float *g_w_hh,
                          float *g_b_ih, float *g_b_hh, float *dx, int n, int I, int H);

// The same two for a ragged batch of T steps of B rows (cell/cell.h, cell_cache.rows):
// only rows [t·B, t·B + rows[t]) of each step are real; rows NULL: all of them, as
// above. cell_input_proj_steps writes the real rows of out only (one product a
// step). cell_backward_params_steps gathers the real rows of gi, gh, x and
// h_prev into pack (cell_pack_floats floats), runs the products on them alone,
// and writes dx's real rows from them and its other rows 0.
void cell_input_proj_steps(int GH, const float *w_ih, const float *b1, const float *b2,
                           const float *x, int T, int B, const int *rows, int I, float *out);
size_t cell_pack_floats(int GH, int T, int B, int I, int H);
void cell_backward_params_steps(int GH, const float *w_ih, const float *x, const float *h_prev,
                                const float *gi, const float *gh, float *g_w_ih, float *g_w_hh,
                                float *g_b_ih, float *g_b_hh, float *dx, int T, int B,
                                const int *rows, float *pack, int I, int H);

#endif
