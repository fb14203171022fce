// method.cu: the gradient methods on the device, as grad/method.c on the CPU:
// the whole difference between bptt, ft and dsf (with its feedbacks and the
// correction sweeps) is one branch, state_backward, which every cell enters
// through its row of a table (cell_ops); then the fit feedback's re-estimate.
#include "lm_internal.cuh"

// ---- the scans ----

// DSF's scan of e (T,B,H) with the feedback a of the kind the model was created
// with: the fft scan, or the chunked one (seq: one chunk); a is (H), or (T−1,B,H)
// when varying (diag).
static void scan(dsf_gpu *g, float *e, const float *a, int T, int varying = 0) {
    // The caller ran dsf_gpu_check: a diagonal feedback, stationary for fft.
    DSF_ASSERT(feedback_implemented(g->fb_kind) && g->fb_kind != DSF_FEEDBACK_LOWRANK &&
               !(varying && g->scan == DSF_SCAN_FFT));
    const int chunks = g->scan == DSF_SCAN_SEQ ? 1 : SCAN_DEFAULT_CHUNKS;
    if (varying)
        scan_varying_gpu(g->stream, e, a, T, g->B, g->cfg.H, chunks);
    else if (g->scan == DSF_SCAN_FFT)
        fft_scan_gpu(g->stream, &g->fft, e, a, T);
    else
        scan_gpu(g->stream, e, a, T, g->B, g->cfg.H, chunks);
}

// Layer l's DSF scan of e: scan's, or with the lowrank feedback A = diag(a) + U Vᵀ.
static void layer_scan(dsf_gpu *g, int l, float *e, const float *a, int T, int varying) {
    if (g->fb_kind != DSF_FEEDBACK_LOWRANK) {
        scan(g, e, a, T, varying);
        return;
    }
    const size_t o = (size_t)l * g->cfg.H * g->rank;
    scan_lowrank_gpu(g->stream, e, a, g->fb_u + o, g->fb_v + o, g->rank, T, g->B, g->cfg.H);
}

// One correction sweep (grad/method.c's sweep): δ ← scan(e0 + c + (d − a) S δ) in
// place on e, which holds δ; c (T,B,H) the GEMM part of J_{t+1}ᵀ δ_{t+1} in its
// first T−1 steps (overwritten), d its elementwise part (stride ds) or NULL, e0
// the local errors or NULL (zero); a as scan's.
static void sweep(dsf_gpu *g, float *e, const float *e0, float *c, const float *d, size_t ds,
                  const float *a, int varying, int T) {
    const size_t TBH = (size_t)T * g->B * g->cfg.H;
    sweep_rhs_gpu(g->stream, e, e0, c, d, ds, a, varying, T, g->B, g->cfg.H);
    CUDA_CHECK(cudaMemcpyAsync(e, c, TBH * sizeof(float), cudaMemcpyDeviceToDevice, g->stream));
    scan(g, e, a, T, varying);
}

// c (rows,H) = ga (rows, G) · W_hh (G, H): the GEMM part of Jᵀ δ at every row.
static void carry_all(dsf_gpu *g, const float *ga, const float *w_hh, float *c, int rows, int G) {
    if (rows > 0) gpu_sgemm(g->blas, 0, 0, rows, g->cfg.H, G, 1.0f, ga, G, w_hh, g->cfg.H, 0.0f, c,
                            g->cfg.H);
}

// ---- What each cell supplies to the methods ----
//
// The branch between the methods is written once, in state_backward; a cell
// enters it through this table, as on the CPU (grad/method.c's cell_ops): its
// BPTT loop (per step one fused kernel and one GEMM), its local backward (δ at
// every step, in g->e, -> gate gradients, one kernel over all T·B rows), the exact
// Jacobian diagonal for the diag feedback (into g->avar), where the carry GEMM
// of a correction sweep reads (the gate gradients of steps 1..T−1, G·H wide,
// times W_hh) and the elementwise part of its Jacobian (GRU: z). The LSTM's
// second recurrence, δc, is the c_chain below.
typedef struct {
    int G;  // gates per unit: the carry GEMM's width G·H
    void (*bptt)(dsf_gpu *g, int l, int T);
    void (*local)(dsf_gpu *g, int l, int T);
    void (*diag)(dsf_gpu *g, int l, int T);
    const float *(*carry_from)(const dsf_gpu *g);  // step 1's row
    // J's elementwise part at step 0 (a gate of the cache: row stride G·H), or NULL
    const float *(*d)(const gpu_layer *c, int H);
    int c_chain;  // the LSTM: δc = ĉ + a_c ⊙ δc_{t+1}, with ĉ = lstm_c_local(δh)
} cell_ops;

// The GRU (gru_layer_backward): δ in e, the gate gradients in gi and gh.
static void gru_bptt(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 3 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    const gpu_layer *c = &g->layer[l];
    const float *w_hh = rnn_t(g, g->params, l, 1);
    float *e = g->e;
    // δ_t = e_t + δ_{t+1} ⊙ z_{t+1} + gh_{t+1} W_hh: the kernel of step t adds the
    // carry the GEMM of step t+1 left, then the local backward of step t.
    for (int t = T - 1; t >= 0; t--) {
        const int last = t == T - 1;
        gru_local_gpu(g->stream, e + t * BH, last ? NULL : e + (t + 1) * BH,
                      last ? NULL : c->gates + (t + 1) * BG, g->carry, c->h + t * BH,
                      c->gates + t * BG, c->q + t * BH, g->gi + t * BG, g->gh + t * BG, B, H);
        if (t > 0)
            gpu_sgemm(g->blas, 0, 0, B, H, G, 1.0f, g->gh + t * BG, G, w_hh, H, 0.0f, g->carry,
                      H);
    }
}
static void gru_local(dsf_gpu *g, int l, int T) {
    const gpu_layer *c = &g->layer[l];
    gru_local_gpu(g->stream, g->e, NULL, NULL, NULL, c->h, c->gates, c->q, g->gi, g->gh,
                  T * g->B, g->cfg.H);
}
static void gru_diag(dsf_gpu *g, int l, int T) {  // slice t: the exact diagonal of J_{t+1}
    const int B = g->B, H = g->cfg.H;
    const size_t BH = (size_t)B * H, BG = 3 * BH;
    const gpu_layer *c = &g->layer[l];
    jacobian_diag_gpu(g->stream, DSF_CELL_GRU, rnn_t(g, g->params, l, 1), c->h + BH, NULL,
                      c->gates + BG, c->q + BH, g->avar, T * B - B, H);
}
static const float *gru_carry_from(const dsf_gpu *g) {
    return g->gh + (size_t)3 * g->B * g->cfg.H;
}
static const float *gru_z(const gpu_layer *c, int H) { return c->gates + H; }

// The Elman cell (elman_backward_bptt): δ in e, the pre-activation gradient ga
// (T,B,H) in gi, which serves both W_ih and W_hh.
static void elman_bptt(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H;
    const size_t BH = (size_t)B * H;
    const gpu_layer *c = &g->layer[l];
    float *e = g->e, *ga = g->gi;
    // δ_t = e_t + ga_{t+1} W_hh: the kernel of step t adds the carry, then ga_t.
    for (int t = T - 1; t >= 0; t--) {
        elman_local_gpu(g->stream, e + t * BH, t == T - 1 ? NULL : g->carry,
                        c->h + (t + 1) * BH, ga + t * BH, B, H);
        if (t > 0)
            gpu_sgemm(g->blas, 0, 0, B, H, H, 1.0f, ga + t * BH, H, rnn_t(g, g->params, l, 1), H,
                      0.0f, g->carry, H);
    }
}
static void elman_local(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H;
    elman_local_gpu(g->stream, g->e, NULL, g->layer[l].h + (size_t)B * H, g->gi, T * B, H);
}
static void elman_diag(dsf_gpu *g, int l, int T) {  // slice t: (1 − h_{t+1}²) W_hh[i,i]
    const int B = g->B, H = g->cfg.H;
    jacobian_diag_gpu(g->stream, DSF_CELL_ELMAN, rnn_t(g, g->params, l, 1),
                      g->layer[l].h + (size_t)2 * B * H, NULL, NULL, NULL, g->avar, T * B - B, H);
}
static const float *elman_carry_from(const dsf_gpu *g) { return g->gi + (size_t)g->B * g->cfg.H; }

// The LSTM (lstm_layer_backward): the state gradient δh in e and δc in gh; the
// gate gradients ga (T,B,4H) in gi, which serve both W_ih and W_hh. For diag,
// avar holds the exact h→h diagonals, then from slice g->T on the c→c ones (f).
static void lstm_bptt(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 4 * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    const gpu_layer *c = &g->layer[l];
    const float *w_hh = rnn_t(g, g->params, l, 1);
    float *e = g->e, *dc = g->gh, *ga = g->gi;
    // δh_t = e_t + ga_{t+1} W_hh, δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + f_{t+1} ⊙ δc_{t+1}:
    // the kernel of step t completes both, then its gate gradients.
    for (int t = T - 1; t >= 0; t--) {
        const int last = t == T - 1;
        lstm_local_gpu(g->stream, 1, e + t * BH, dc + t * BH, last ? NULL : g->carry,
                       last ? NULL : dc + (t + 1) * BH, last ? NULL : c->gates + (t + 1) * BG,
                       c->c + t * BH, c->c + (t + 1) * BH, c->gates + t * BG, ga + t * BG, B, H);
        if (t > 0)
            gpu_sgemm(g->blas, 0, 0, B, H, G, 1.0f, ga + t * BG, G, w_hh, H, 0.0f, g->carry, H);
    }
}
static void lstm_local(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H;
    const gpu_layer *c = &g->layer[l];
    lstm_local_gpu(g->stream, 0, g->e, g->gh, NULL, NULL, NULL, c->c, c->c + (size_t)B * H,
                   c->gates, g->gi, T * B, H);
}
static void lstm_diag(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 4 * H, rows = T * B - B;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    const gpu_layer *c = &g->layer[l];
    // slice t: step t+1's exact diagonals (h→h, and c→c = f)
    jacobian_diag_gpu(g->stream, DSF_CELL_LSTM, rnn_t(g, g->params, l, 1), c->c + BH,
                      c->c + 2 * BH, c->gates + BG, NULL, g->avar, rows, H);
    if (rows > 0)
        CUDA_CHECK(cudaMemcpy2DAsync(g->avar + (size_t)g->T * BH, H * sizeof(float),
                                     c->gates + BG + H, G * sizeof(float), H * sizeof(float), rows,
                                     cudaMemcpyDeviceToDevice, g->stream));
}
static const float *lstm_carry_from(const dsf_gpu *g) {
    return g->gi + (size_t)4 * g->B * g->cfg.H;
}

// (positional: C++17 has no designated initializers)
static const cell_ops gru_ops = {3, gru_bptt, gru_local, gru_diag, gru_carry_from, gru_z, 0};
static const cell_ops elman_ops = {1, elman_bptt, elman_local, elman_diag, elman_carry_from, NULL,
                                   0};
static const cell_ops lstm_ops = {4, lstm_bptt, lstm_local, lstm_diag, lstm_carry_from, NULL, 1};

static const cell_ops *cell_ops_of(dsf_cell cell) {
    switch (cell) {
    case DSF_CELL_LSTM: return &lstm_ops;
    case DSF_CELL_ELMAN: return &elman_ops;
    default: return &gru_ops;
    }
}

// ---- the branch ----

void state_backward(dsf_gpu *g, dsf_method meth, int l, int T) {
    const cell_ops *ops = cell_ops_of(g->cfg.cell);
    if (meth == DSF_METHOD_BPTT) {
        // Exact: the carry J_{t+1}ᵀ δ_{t+1} needs step t+1's gate gradients, so the
        // local backward runs inside the cell's sequential loop.
        ops->bptt(g, l, T);
        return;
    }
    const int B = g->B, H = g->cfg.H, G = ops->G * H, TB = T * B;
    const size_t BH = (size_t)B * H, TBH = (size_t)TB * H;
    const gpu_layer *c = &g->layer[l];
    const float *w_hh = rnn_t(g, g->params, l, 1);
    const int dsf = meth == DSF_METHOD_DSF, diag = dsf && g->fb_kind == DSF_FEEDBACK_DIAG;
    const int sweeps = dsf ? g->refine : 0;
    // a (the LSTM's a_h, then a_c): the layer's fixed vectors (S·H), or with diag
    // slice t of avar: step t+1's exact diagonal (a_c = f_{t+1}: the c chain exact).
    const float *ah = g->feedback + (size_t)l * dsf_cell_states(g->cfg.cell) * H, *ac = ah + H;
    float *e = g->e, *dc = g->gh, *e0 = g->ref, *cb = g->ref ? g->ref + TBH : NULL;
    if (diag) {
        ops->diag(g, l, T);
        ah = g->avar;
        ac = g->avar + (size_t)g->T * BH;
    }
    if (sweeps)
        CUDA_CHECK(cudaMemcpyAsync(e0, e, TBH * sizeof(float), cudaMemcpyDeviceToDevice,
                                   g->stream));
    // ft: δ = e as it is; dsf: the scan. With δ known at every step, the rest is
    // parallel over time.
    if (dsf) layer_scan(g, l, e, ah, T, diag);
    if (ops->c_chain) {  // the LSTM's second stage (docs/DESIGN.md §2): δc from δh
        lstm_c_local_gpu(g->stream, e, c->gates, c->c + BH, dc, TB, H);
        if (dsf) scan(g, dc, ac, T, diag);
    }
    for (int k = 0; k < sweeps; k++) {
        // δ ← scan(e + (Jᵀ − A) S δ), Jᵀ S δ by the local backward and one GEMM
        ops->local(g, l, T);
        carry_all(g, ops->carry_from(g), w_hh, cb, TB - B, G);
        const float *d = ops->d ? ops->d(c, H) : NULL;
        sweep(g, e, e0, cb, d, d ? (size_t)G : 0, ah, diag, T);
        if (ops->c_chain) {
            // δc ← scan(ĉ + (f − a_c) S δc); with diag a_c = f and the chain is exact
            lstm_c_local_gpu(g->stream, e, c->gates, c->c + BH, cb, TB, H);
            if (diag) {
                CUDA_CHECK(cudaMemcpyAsync(dc, cb, TBH * sizeof(float), cudaMemcpyDeviceToDevice,
                                           g->stream));
                scan(g, dc, ac, T, 1);
            } else {
                sweep(g, dc, NULL, cb, c->gates + H, (size_t)G, ac, 0, T);
            }
        }
    }
    ops->local(g, l, T);
}

// ---- the fit feedback ----

void fit_feedback(dsf_gpu *g, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 3 * H, TB = T * B;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    carry_all(g, g->gh + BG, rnn_t(g, g->params, l, 1), g->avar, TB - B, G);
    fit_feedback_gpu(g->stream, g->avar, g->e + BH, g->layer[l].gates + BG + H, (size_t)G,
                     TB - B, g->feedback + (size_t)l * H, g->fit_rate, H);
}
