// method.h: the gradient methods, which differ only in the state-gradient recurrence.
//
//   bptt  δ_t = e_t + J_{t+1}ᵀ δ_{t+1}   exact; sequential, O(H²) per step
//   ft    δ_t = e_t                      fully truncated; nothing to do
//   dsf   δ_t = e_t + a ⊙ δ_{t+1}         a fixed diagonal: a linear scan, O(H) per step
//
// dsf with K correction sweeps (feedback suffix +K) then iterates
//   δ ← scan(e + (Jᵀ − A) S δ)                 (S δ)_t = δ_{t+1}, scan as above
// whose fixed point is BPTT's δ = e + Jᵀ S δ. The exact part Jᵀ S δ is BPTT's
// carry for every step at once: the gate gradients from δ (elementwise) and one
// (T−1)B × G·H × H GEMM, parallel over time. The error of δ moves one step back
// per sweep (the operator is strictly upper triangular in time), so after K
// sweeps δ_t is exact for t >= T−1−K and K >= T−1 gives BPTT to rounding.
//
// e_t = ∂ℓ/∂h_t is the local error: what reaches the layer's output at step t
// from the decoder or the layer above, not through time.
#ifndef DSF_METHOD_H
#define DSF_METHOD_H

#include "cell/elman.h"
#include "cell/gru.h"
#include "cell/lstm.h"
#include "grad/feedback.h"
#include "grad/scan.h"

typedef enum { DSF_METHOD_BPTT, DSF_METHOD_FT, DSF_METHOD_DSF } dsf_method;

const char *dsf_method_name(dsf_method m);
int dsf_method_parse(const char *s, dsf_method *out);  // 0, or -1 with the error set

// Scratch for the layers' backward passes (every cell's).
typedef struct {
    float *gi, *gh;  // (T,B,G·H): the gate gradients, input and recurrent side
    float *carry;    // (B,H), bptt only
    float *avar;     // (S,T,B,H), the diag feedback only (the caller allocates it: lm_work_reserve)
    float *ref;      // (2,T,B,H), correction sweeps only (the caller allocates it: lm_work_reserve)
    float *pack;     // cell_pack_floats: ragged batches only (cell/params.h; the caller's)
} cell_work;

// One layer's feedback as the layers' backward passes use it (grad/feedback.h).
typedef struct {
    dsf_feedback_kind kind;
    const float *a;          // (H): the diagonal (unused by diag)
    const float *u, *v;      // (H,r): lowrank only
    int r;
    dsf_scan_cache *cache;   // lowrank blelloch: the powers of A kept between steps; may be NULL
    int refine;              // correction sweeps after the scan (not lowrank)
} dsf_layer_feedback;

// Backward pass of one layer of any cell under method m. e (T,B,H) holds the
// local errors on entry and the state gradients δ on return. fb is the feedback
// for dsf (ignored otherwise), applied by the scan `scan` (grad/scan.h; the
// caller has checked that it is available and fits the feedback). Gradients are
// accumulated into g; dx (T,B,I), the local error of the layer below, is written
// unless NULL (x NULL: no dW_ih and no dx, cell/params.h). dc_end: the LSTM's, as
// below (NULL for the others). The cells' own entries follow; all are this one.
void cell_layer_backward(dsf_cell cell, dsf_method m, dsf_scan_kind scan,
                         const dsf_layer_feedback *fb, const cell_weights *w, const float *x,
                         const cell_cache *cache, float *e, const float *dc_end, cell_work *work,
                         cell_grads *g, float *dx, int T, int B, int I, int H);

// The GRU's.
void gru_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                        const cell_weights *w, const float *x, const cell_cache *cache, float *e,
                        cell_work *work, cell_grads *g, float *dx, int T, int B, int I, int H);

// The fit feedback (docs/DESIGN.md §3), right after gru_layer_backward of the same
// layer under dsf (e holds δ, work->gh the gate gradients; work->gi is used as
// scratch): the least-squares diagonal â_i = Σ (J_tᵀ δ_t)_i δ_t,i / Σ δ_t,i² over
// the steps t ≥ 1 and every row, J_tᵀ δ_t = δ_t ⊙ z_t + gh_t W_hh by one GEMM;
// then a ← a + rate (clamp(â, −1, 1) − a), channel by channel (channels with
// δ = 0 throughout keep their a). Costs one (T−1)B × 3H × H GEMM.
void gru_fit_feedback(const cell_weights *w, const cell_cache *cache, const float *e,
                      cell_work *work, float *a, float rate, int T, int B, int H);


// ---- LSTM and Elman layers (cell/lstm.h, cell/elman.h) ----
//
// The same three methods. work->gi holds the gate gradients (T,B,G·H); for the
// LSTM work->gh holds δc (T,B,H) and work->avar, for diag, 2·T·B·H floats.
// LSTM feedback (docs/DESIGN.md §2): fb->a has 2H values per layer, a_h then a_c;
//   δh_t = e_t + a_h ⊙ δh_{t+1},  ĉ_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t),  δc_t = ĉ_t + a_c ⊙ δc_{t+1}
// (diag: a_h the exact h→h diagonal of step t+1 and a_c = f_{t+1}, the exact c→c one).
// lowrank is for the GRU and Elman cells; fit for the GRU only (the callers check).
// dc_end (B,H), unless NULL, is a gradient reaching the last cell state c_{T-1}
// from outside the layer (a module's c_n): it joins δc at the last step.
void lstm_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                         const cell_weights *w, const float *x, const cell_cache *cache, float *e,
                         const float *dc_end, cell_work *work, cell_grads *g, float *dx,
                         int T, int B, int I, int H);
void elman_layer_backward(dsf_method m, dsf_scan_kind scan, const dsf_layer_feedback *fb,
                          const cell_weights *w, const float *x, const cell_cache *cache,
                          float *e, cell_work *work, cell_grads *g, float *dx, int T,
                          int B, int I, int H);

#endif
