// lm_internal.cuh: what the files of the device's language model share (lm.cu:
// buffers, creation, copies and the public API; lm_step.cu: the forward and
// backward passes and the update; method.cu: the state-gradient branch of the
// methods): the struct behind dsf_gpu, the views into its flat buffers, and the
// few functions one file calls in another.
#ifndef DSF_CUDA_LM_INTERNAL_CUH
#define DSF_CUDA_LM_INTERNAL_CUH

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "gpu.h"
#include "kernels.cuh"

enum { MAX_MARKS = 8 + 3 * DSF_MAX_LAYERS };  // phase boundaries in one step (dsf_gpu_profile)

typedef struct {
    float *h;      // (T+1,B,H): h[0] the carried state, h[t+1] the output of step t
    float *gates;  // (T,B,GH): the GRU's r, z, n (G = 3), the LSTM's i, f, g, o (G = 4),
                   // the Elman cell's h' W_hhᵀ (G = 1, scratch)
    float *q;      // GRU: (T,B,H)
    float *c;      // LSTM: (T+1,B,H), as h
} gpu_layer;

// --arch block: block k's buffers (model/lm.c's dsf_block_cache): a = LN1(x),
// xmid = x + RNN(a), b = LN2(xmid), u = fc1(b), gl = GELU(u) and the block's
// output (T,B,H or M); st the two LayerNorms' means and 1/stds (4,T·B).
typedef struct {
    float *a, *xmid, *b, *u, *gl, *out, *st;
} gpu_block;

struct dsf_gpu {
    dsf_lm_config cfg;
    int B, T, last_T;
    dsf_scan_kind scan;
    dsf_feedback_kind fb_kind;  // m->fb.kind: what dsf_gpu_check accepted or not
    size_t n;
    int ntensors;
    dsf_param tensors[DSF_MAX_TENSORS];
    char name[320];
    cudaStream_t stream;
    cublasHandle_t blas;
    cudaEvent_t uploaded;  // the last token upload has left the staging buffer
    fft_scan fft;          // --scan fft: its buffers and plans (else all zero)
    // DSF_CUDA_GRAPHS=1: each layer's forward loop and BPTT loop over the full T
    // steps are captured once into a CUDA graph and replayed (one launch instead
    // of 2T); cuBLAS then works in blas_ws.
    int graphs;
    cudaGraphExec_t fwd_graph[DSF_MAX_LAYERS], bptt_graph[DSF_MAX_LAYERS];
    const float *fwd_in[DSF_MAX_LAYERS];  // the input each forward graph reads
    void *blas_ws;
    // Dropout (dsf_gpu_set_dropout): the rate, the host's generator, the keys of
    // the last forward pass (the embedding's, then layer l's at l + 1; block k's
    // recurrent branch's at 1 + 2k and its MLP's at 2 + 2k), whether it dropped,
    // and each layer's output after dropout (T,B,H; stack only).
    float dropout;
    dsf_rng *rng;
    dsf_gpu_streams streams;  // where the B streams lie in the whole batch (the masks')
    uint64_t keys[2 * DSF_MAX_LAYERS + 1];
    int dropped_now;
    float *dropped[DSF_MAX_LAYERS];
    // dsf_gpu_profile: events recorded on the stream where a phase begins (the
    // phase of the work after mark k is mark_phase[k]), turned into milliseconds
    // per phase at the end of each step.
    int prof, nmarks;
    cudaEvent_t marks[MAX_MARKS];
    int mark_phase[MAX_MARKS];
    double prof_ms[DSF_PROF_NPHASES];
    // Device: the flat buffers with m->params' layout, and the feedback (L,S·H)
    // (S = 2 for the LSTM: a_h, then a_c); lowrank's U and V (L,H,r).
    float *params, *grads, *m, *v, *feedback;
    float *fb_u, *fb_v;
    int rank;
    // One upload a step: x (TB), y (TB), perm (TB), then tok (u) and off (u+1)
    // for the u distinct tokens of x (embedding_backward_gpu): at most 5·TB+1.
    int32_t *tokens;
    int unique;
    int counted;      // targets of the last upload that carry a loss
    float *emb;       // (T,B,E)
    float *gx;        // (T,B,GH): the input projections of the current layer
    float *logits;    // (T·B,V): logits, then dlogits
    float *row_loss;  // (T·B)
    float *e, *dx;    // (T,B,max(E,H)): the current layer's local errors and its input's
    float *err[2];    // the two buffers behind e and dx, in their order at the decoder
    float *gi, *gh;   // (T,B,GH): the GRU's two gate gradients; the LSTM's ga, and δc in gh;
                      // the Elman cell's ga in gi
    float *carry;     // (B,H)
    float *ref;       // (2,T,B,H): the sweeps' e0 and GEMM part (--feedback F+K only)
    float *avar;      // (S,T,B,H): the diag feedback's a_t (the LSTM's a_h, then a_c = f);
                      // the fit feedback's GEMM part (T,B,H)
    int fit_now;      // fit: re-estimate a in the next backward pass (dsf_gpu_set_fit)
    float fit_rate;
    int refine;       // K
    int eval_only;    // dsf_gpu_create_eval: the forward pass's buffers alone
    float *state;     // (L,B,H)
    float *state_c;   // (L,B,H): the LSTM's c (zeros for the other cells)
    gpu_layer layer[DSF_MAX_LAYERS];
    // --arch block: each block's buffers; the final LayerNorm's output yf (T,B,H)
    // and statistics stf (2,T·B); the stream's gradient d, a scratch gradient
    // dtmp (T,B,H) and the MLP's du (T,B,M).
    int block;
    gpu_block blk[DSF_MAX_LAYERS];
    float *yf, *stf, *d, *dtmp, *du;
    double *scalars;  // [0] the mean loss, [1] Σ g²
    double *partial;  // (NORM_BLOCKS)
    // Host: pinned staging for the tokens and the scalars; the token sort's tables (V).
    int32_t *h_tokens;
    double *h_scalars;
    int32_t *slot, *fill;  // slot[v]: token v's index among the distinct ones, or −1
};

// ---- views into the flat buffers (the layout of lm_layout) ----

static inline float *view(const dsf_gpu *g, float *base, int k) {
    return base + g->tensors[k].offset;
}
static inline float *enc_w(const dsf_gpu *g, float *base) { return view(g, base, 0); }
// Block k's tensors (lm_layout): 1 + 12k + j.
enum { LN1_W, LN1_B, RNN_W_IH, LN2_W = 6, LN2_B, FC1_W, FC1_B, FC2_W, FC2_B, BLOCK_TENSORS };
static inline float *blk_t(const dsf_gpu *g, float *base, int k, int j) {
    return view(g, base, 1 + BLOCK_TENSORS * k + j);
}
// Layer l's w_ih, w_hh, b_ih, b_hh: tensors 1 + 4l + j, or block l's.
static inline float *rnn_t(const dsf_gpu *g, float *base, int l, int j) {
    return g->block ? blk_t(g, base, l, RNN_W_IH + j) : view(g, base, 1 + 4 * l + j);
}
// The block architecture's final LayerNorm: the two tensors before the decoder's bias.
static inline float *lnf_w(const dsf_gpu *g, float *base) {
    return view(g, base, g->ntensors - 3);
}
static inline float *lnf_b(const dsf_gpu *g, float *base) {
    return view(g, base, g->ntensors - 2);
}
static inline float *dec_w(const dsf_gpu *g, float *base) {
    return g->cfg.tie ? enc_w(g, base) : view(g, base, 1 + 4 * g->cfg.L);
}
static inline float *dec_b(const dsf_gpu *g, float *base) {
    return view(g, base, g->ntensors - 1);
}

// ---- across the files ----

// lm.cu: whether the backend implements feedback kind k (dsf_gpu_check's test);
// the phase timing of dsf_gpu_profile: mark(g, p) starts phase p on the stream,
// collect(g) waits for the marked work and adds up its time.
int feedback_implemented(dsf_feedback_kind k);
void mark(dsf_gpu *g, int p);
void collect(dsf_gpu *g);

// method.cu: layer l's state gradients under meth (grad/method.c's
// state_backward): g->e holds the local errors (T,B,H) on entry and δ on return,
// the gate gradients of every step are in g->gi and g->gh (the LSTM: ga in gi,
// δc in gh; the Elman cell: ga in gi). Under bptt it enqueues the same work on
// the same buffers at every call (layer_backward captures it in a graph).
void state_backward(dsf_gpu *g, dsf_method meth, int l, int T);
// The fit feedback (GRU, gru_fit_feedback): layer l's a re-estimated from the
// δ in g->e and the gate gradients state_backward left, for the steps that follow.
void fit_feedback(dsf_gpu *g, int l, int T);

#endif
