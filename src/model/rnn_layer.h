// rnn_layer.h: one recurrent layer as two stateless calls on the caller's buffers,
// for bindings (python/dsf_torch, a drop-in torch.nn.GRU / LSTM / RNN) and for C
// programs with their own model around the layer.
//
// Weights are PyTorch's (cell/gru.h, cell/lstm.h, cell/elman.h): w_ih (G·H,I),
// w_hh (G·H,H), b_ih, b_hh (G·H), gate blocks in torch's order; sequences are
// time-major (T,B,·); everything is float32 and C-contiguous.
//
//   forward   out (T,B,H) = the layer's outputs h_1..h_T from h0 (and the LSTM's
//             c0); h_n = h_T (and c_n); cache keeps what backward needs. With
//             shape.rows, sequences of their own lengths (below).
//   backward  from dout (T,B,H), the gradient reaching every output, and dh_n
//             (dc_n) reaching the final state: the local errors e_t = dout_t
//             (+ dh_n at t = T), the state gradients δ by the method (grad/method.h),
//             then the parameter gradients, dx, and the initial state's
//             dh0 = J_1ᵀ δ_1 (dc0 = f_1 ⊙ δc_1): the exact one-step map of the
//             first step applied to the method's δ_1, as for any other input of
//             the layer (docs/DESIGN.md §2). Under bptt every gradient is exact.
#ifndef DSF_RNN_LAYER_H
#define DSF_RNN_LAYER_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
    int cell;        // dsf_cell (model/lm.h): 0 GRU, 1 LSTM, 2 Elman (tanh RNN)
    int T, B, I, H;  // steps, batch, input size, hidden size
    // Sequences of their own lengths (NULL: every row runs T steps): rows[t] rows run
    // step t, rows[0] = B >= rows[1] >= ... >= rows[T−1] >= 1, the rows sorted
    // longest first (PyTorch's PackedSequence.batch_sizes). Row b's sequence is then
    // steps t with b < rows[t]; its out past that is 0, its h_n (c_n) is its state
    // after its own last step, and backward reads dout there as 0 and adds dh_n
    // (dc_n) at that step. Each call reads rows; the caller keeps it alive.
    const int *rows;
} dsf_rnn_shape;

// Floats of the forward cache of one call (0 with the error set if the shape is bad).
size_t dsf_rnn_cache_floats(const dsf_rnn_shape *s);

// Forward pass. b_ih and b_hh may be NULL (no biases); h0 and c0 NULL mean zero
// (c0 is the LSTM's only); h_n and c_n may be NULL. 0, or -1 with dsf_error() set.
int dsf_rnn_forward(const dsf_rnn_shape *s, const float *w_ih, const float *w_hh,
                    const float *b_ih, const float *b_hh, const float *x, const float *h0,
                    const float *c0, float *cache, float *out, float *h_n, float *c_n);

// Fills a (S·H floats: S = 2 for the LSTM, a_h then a_c, else 1) with the feedback
// of a --feedback spelling (grad/feedback.h) for a layer trained on T steps (ssm
// needs it); random kinds draw from seed. fit and lowrank are not offered to a
// single layer (they need state across steps, or factors): an error. 0 or -1.
int dsf_rnn_feedback(const char *feedback, int cell, int H, int T, uint64_t seed, float *a);

// Backward pass of the forward call that filled cache (the same shape, weights and
// x). method "bptt", "ft" or "dsf"; feedback (a --feedback spelling) and a (as
// dsf_rnn_feedback filled it) are read by dsf only, with scan "seq", "blelloch" or
// "fft". dout is required; dh_n, dc_n may be NULL (zero). Every output is written
// (not accumulated); any of dx, dh0, dc0, gb_ih, gb_hh may be NULL when not wanted.
// 0, or -1 with dsf_error() set.
int dsf_rnn_backward(const dsf_rnn_shape *s, const char *method, const char *feedback,
                     const char *scan, const float *a, const float *w_ih, const float *w_hh,
                     const float *x, const float *cache, const float *dout,
                     const float *dh_n, const float *dc_n, float *dx, float *dh0, float *dc0,
                     float *gw_ih, float *gw_hh, float *gb_ih, float *gb_hh);

#endif
