// lm.cu: the language model on the device (gpu.h): its buffers, the forward and
// backward passes and the update, as model/lm.c does them on the CPU, with the
// GEMMs on cuBLAS, the fft scan on cuFFT and the rest in the kernels of gru.cu,
// lstm.cu, elman.cu, scan.cu, fft.cu, block.cu, loss.cu and optim.cu. Everything runs in
// order on one stream.
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "common.cuh"
#include "gpu.h"
#include "kernels.cuh"

enum { BLAS_WORKSPACE = 32 << 20 };  // bytes: cuBLAS's work area under graph capture
enum { MAX_MARKS = 8 + 3 * DSF_MAX_LAYERS };  // phase boundaries in one step (dsf_gpu_profile)
enum { PHASE_END = DSF_PROF_NPHASES };          // the phase after a step's last mark

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

static float *view(const dsf_gpu *g, float *base, int k) { return base + g->tensors[k].offset; }
static float *enc_w(const dsf_gpu *g, float *base) { return view(g, base, 0); }
// Block k's tensors (lm_layout): 1 + 12k + j.
enum { LN1_W, LN1_B, RNN_W_IH, LN2_W = 6, LN2_B, FC1_W, FC1_B, FC2_W, FC2_B, BLOCK_TENSORS };
static float *blk_t(const dsf_gpu *g, float *base, int k, int j) {
    return view(g, base, 1 + BLOCK_TENSORS * k + j);
}
// Layer l's w_ih, w_hh, b_ih, b_hh: tensors 1 + 4l + j, or block l's.
static float *rnn_t(const dsf_gpu *g, float *base, int l, int j) {
    return g->block ? blk_t(g, base, l, RNN_W_IH + j) : view(g, base, 1 + 4 * l + j);
}
// The block architecture's final LayerNorm: the two tensors before the decoder's bias.
static float *lnf_w(const dsf_gpu *g, float *base) { return view(g, base, g->ntensors - 3); }
static float *lnf_b(const dsf_gpu *g, float *base) { return view(g, base, g->ntensors - 2); }
static float *dec_w(const dsf_gpu *g, float *base) {
    return g->cfg.tie ? enc_w(g, base) : view(g, base, 1 + 4 * g->cfg.L);
}
static float *dec_b(const dsf_gpu *g, float *base) { return view(g, base, g->ntensors - 1); }

// ---- devices and what is implemented ----

extern "C" int dsf_gpu_built(void) { return 1; }

extern "C" int dsf_gpu_select(int k) {
    const int n = dsf_gpu_device_count();
    if (n < 1) return -1;
    CUDA_CHECK(cudaSetDevice(k % n));
    return k % n;
}

extern "C" int dsf_gpu_device_count(void) {
    int n = 0;
    const cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        (void)cudaGetLastError();  // not sticky: clear it
        dsf_error_set("no CUDA device (%s)", cudaGetErrorString(e));
        return 0;
    }
    if (n == 0) dsf_error_set("no CUDA device");
    return n;
}

// The feedbacks that are one vector a per layer (what scan_gpu applies; fit
// re-estimates it), diag (the exact diagonal of each step's Jacobian:
// scan_varying_gpu), and lowrank (scan_lowrank_gpu), all of them.
static int feedback_implemented(dsf_feedback_kind k) {
    return k == DSF_FEEDBACK_UNIFORM || k == DSF_FEEDBACK_LINSPACE || k == DSF_FEEDBACK_ZERO ||
           k == DSF_FEEDBACK_IDENTITY ||
           k == DSF_FEEDBACK_CONST || k == DSF_FEEDBACK_SSM || k == DSF_FEEDBACK_DIAG ||
           k == DSF_FEEDBACK_FIT || k == DSF_FEEDBACK_LOWRANK;
}

extern "C" int dsf_gpu_check(const dsf_lm *m, dsf_method meth, dsf_scan_kind scan) {
    if (m->cfg.arch == DSF_ARCH_BLOCK && (m->cfg.proj || !m->cfg.tie))
        return dsf_error_set("--device cuda: the block with --block-proj or --untied is not "
                             "implemented on the GPU; train it with --device cpu");
    if (m->cfg.arch == DSF_ARCH_RESIDUAL)
        return dsf_error_set("--device cuda: --arch residual is not implemented on the GPU (stack "
                             "and block are); train it with --device cpu");
    if (meth != DSF_METHOD_DSF) return 0;
    if (!feedback_implemented(m->fb.kind)) {
        char name[64];
        dsf_feedback_format(&m->fb, name, sizeof name);
        return dsf_error_set("--device cuda: --feedback %s is not implemented (uniform, zero, "
                             "identity, const, ssm, linspace, fit, diag and lowrank are)",
                             name);
    }
    if (m->fb.kind == DSF_FEEDBACK_DIAG && scan == DSF_SCAN_FFT)
        return dsf_error_set("the fft scan needs a stationary feedback (diag is not); use --scan "
                             "seq or blelloch");
    if (m->fb.kind == DSF_FEEDBACK_LOWRANK) {
        if (scan == DSF_SCAN_FFT)
            return dsf_error_set("the fft scan needs a diagonal stationary feedback (lowrank is "
                                 "not); use --scan seq or blelloch");
        if (m->cfg.cell == DSF_CELL_LSTM)
            return dsf_error_set("--feedback lowrank is implemented for --cell gru and rnn, not lstm");
        if (!m->fb_u || !m->fb_v || m->fb.rank < 1 || m->fb.rank > DSF_SCAN_MAX_RANK)
            return dsf_error_set("--device cuda: the lowrank feedback's U and V are not set");
    }
    return 0;
}

// ---- creation ----

// dsf_gpu_create, or with eval_only the buffers of the forward pass alone
// (dsf_gpu_create_eval).
static int create(dsf_gpu **out, const dsf_lm *m, const dsf_optim *opt, int B, int T,
                  dsf_scan_kind scan, int eval_only) {
    *out = NULL;
    DSF_ASSERT(m->cfg.arch != DSF_ARCH_BLOCK || m->cfg.tie);  // lm_create's: dec_w is enc_w
    if (B < 1 || T < 1) return dsf_error_set("batch and sequence length must be positive");
    if (dsf_gpu_device_count() < 1) return -1;
    dsf_gpu *g = (dsf_gpu *)calloc(1, sizeof *g);
    if (!g) return dsf_error_set("out of memory");
    g->cfg = m->cfg;
    g->B = B;
    g->T = T;
    g->streams = (dsf_gpu_streams){B, 0};
    g->scan = scan;
    g->fb_kind = m->fb.kind;
    g->refine = m->fb.refine;
    g->n = m->n;
    g->block = m->cfg.arch == DSF_ARCH_BLOCK;
    g->ntensors = m->ntensors;
    memcpy(g->tensors, m->tensors, sizeof g->tensors);
    int dev;
    CUDA_CHECK(cudaGetDevice(&dev));  // 0, or dsf_gpu_select's
    cudaDeviceProp prop;
    CUDA_CHECK(cudaGetDeviceProperties(&prop, dev));
    const char *graphs = getenv("DSF_CUDA_GRAPHS");
    g->graphs = graphs && *graphs && *graphs != '0';
    snprintf(g->name, sizeof g->name, "%.256s (sm_%d%d, %.1f GiB)%s", prop.name, prop.major,
             prop.minor, prop.totalGlobalMem / 1073741824.0, g->graphs ? ", CUDA graphs" : "");
    g->eval_only = eval_only;
    // These fail for reasons outside the program (device memory, a device held
    // in exclusive mode by another process): user errors, not aborts.
    if (cudaStreamCreate(&g->stream) != cudaSuccess) {
        (void)cudaGetLastError();
        g->stream = NULL;
        dsf_gpu_destroy(g);
        return dsf_error_set("cannot create a CUDA stream on %s", prop.name);
    }
    if (cublasCreate(&g->blas) != CUBLAS_STATUS_SUCCESS) {
        g->blas = NULL;
        dsf_gpu_destroy(g);
        return dsf_error_set("cannot start cuBLAS on %s (device memory?)", prop.name);
    }
    CUDA_CHECK(cublasSetStream(g->blas, g->stream));
    CUDA_CHECK(cudaEventCreateWithFlags(&g->uploaded, cudaEventDisableTiming));

    const dsf_lm_config *c = &m->cfg;
    const size_t TB = (size_t)T * B, BH = (size_t)B * c->H, E = c->E, H = c->H, V = c->V;
    const size_t IH = E > H ? E : H, F = sizeof(float);
    const size_t G = (size_t)dsf_cell_gates(c->cell), S = (size_t)dsf_cell_states(c->cell);
    const int lstm = c->cell == DSF_CELL_LSTM, gru = c->cell == DSF_CELL_GRU;
    const int adamw = opt && opt->kind == DSF_OPTIM_ADAMW;
    // The forward pass's buffers, then (unless eval_only) the backward pass's.
    int bad = gpu_alloc(&g->params, g->n * F) ||
              gpu_alloc(&g->feedback, (size_t)c->L * S * H * F) ||
              gpu_alloc(&g->tokens, (5 * TB + 1) * sizeof(int32_t)) || gpu_alloc(&g->emb, TB * E * F) ||
              gpu_alloc(&g->gx, TB * G * H * F) || gpu_alloc(&g->logits, TB * V * F) ||
              gpu_alloc(&g->row_loss, TB * F) || gpu_alloc(&g->state, (size_t)c->L * BH * F) ||
              gpu_alloc(&g->state_c, (size_t)c->L * BH * F) || gpu_alloc(&g->scalars, 2 * sizeof(double)) ||
              gpu_alloc(&g->blas_ws, BLAS_WORKSPACE);
    bad = bad || (!eval_only &&
                  (gpu_alloc(&g->grads, g->n * F) ||
                   (adamw && (gpu_alloc(&g->m, g->n * F) || gpu_alloc(&g->v, g->n * F))) ||
                   gpu_alloc(&g->e, TB * IH * F) || gpu_alloc(&g->dx, TB * IH * F) ||
                   gpu_alloc(&g->gi, TB * G * H * F) || gpu_alloc(&g->gh, TB * G * H * F) ||
                   gpu_alloc(&g->carry, BH * F) || gpu_alloc(&g->partial, NORM_BLOCKS * sizeof(double))));
    for (int l = 0; l < c->L && !bad; l++)
        bad = gpu_alloc(&g->layer[l].h, (TB + B) * H * F) ||
              gpu_alloc(&g->layer[l].gates, TB * G * H * F) ||
              (lstm && gpu_alloc(&g->layer[l].c, (TB + B) * H * F)) ||
              (gru && gpu_alloc(&g->layer[l].q, TB * H * F));
    const size_t M = (size_t)c->mlp;
    if (g->block) {
        for (int k = 0; k < c->L && !bad; k++) {
            gpu_block *b = &g->blk[k];
            bad = gpu_alloc(&b->a, TB * H * F) || gpu_alloc(&b->xmid, TB * H * F) ||
                  gpu_alloc(&b->b, TB * H * F) || gpu_alloc(&b->u, TB * M * F) ||
                  gpu_alloc(&b->gl, TB * M * F) || gpu_alloc(&b->out, TB * H * F) ||
                  gpu_alloc(&b->st, 4 * TB * F);
        }
        bad = bad || gpu_alloc(&g->yf, TB * H * F) || gpu_alloc(&g->stf, 2 * TB * F);
        bad = bad || (!eval_only && (gpu_alloc(&g->d, TB * H * F) ||
                                     gpu_alloc(&g->dtmp, TB * H * F) || gpu_alloc(&g->du, TB * M * F)));
    }
    if (!bad && !eval_only && scan == DSF_SCAN_FFT) bad = fft_scan_create(&g->fft, T, B, c->H);
    if (!bad && !eval_only && g->refine) bad = gpu_alloc(&g->ref, 2 * TB * H * F);
    if (!bad && !eval_only && m->fb.kind == DSF_FEEDBACK_DIAG)
        bad = gpu_alloc(&g->avar, S * TB * H * F);
    if (!bad && !eval_only && m->fb.kind == DSF_FEEDBACK_FIT) bad = gpu_alloc(&g->avar, TB * H * F);
    const size_t UV = (size_t)c->L * H * (m->fb.kind == DSF_FEEDBACK_LOWRANK ? m->fb.rank : 0);
    if (!bad && !eval_only && UV) {
        DSF_ASSERT(m->fb_u && m->fb_v);  // (dsf_gpu_check)
        bad = gpu_alloc(&g->fb_u, UV * F) || gpu_alloc(&g->fb_v, UV * F);
        if (!bad) {
            g->rank = m->fb.rank;
            CUDA_CHECK(cudaMemcpy(g->fb_u, m->fb_u, UV * F, cudaMemcpyHostToDevice));
            CUDA_CHECK(cudaMemcpy(g->fb_v, m->fb_v, UV * F, cudaMemcpyHostToDevice));
        }
    }
    // One work area for cuBLAS, with or without graphs (which need it set), so
    // that every instance chooses its GEMM algorithms alike.
    if (!bad) CUDA_CHECK(cublasSetWorkspace(g->blas, g->blas_ws, BLAS_WORKSPACE));
    g->err[0] = g->e;
    g->err[1] = g->dx;
    if (!bad && (cudaMallocHost(&g->h_tokens, (5 * TB + 1) * sizeof(int32_t)) != cudaSuccess ||
                 cudaMallocHost(&g->h_scalars, 2 * sizeof(double)) != cudaSuccess)) {
        (void)cudaGetLastError();
        bad = dsf_error_set("cannot allocate pinned host memory for the token uploads");
    }
    if (!bad) {
        g->slot = (int32_t *)malloc(V * sizeof(int32_t));
        g->fill = (int32_t *)malloc(TB * sizeof(int32_t));
        if (!g->slot || !g->fill) bad = dsf_error_set("out of memory");
        else
            for (size_t v = 0; v < V; v++) g->slot[v] = -1;
    }
    if (bad) {
        dsf_gpu_destroy(g);
        return -1;
    }
    CUDA_CHECK(cudaMemcpy(g->params, m->params, g->n * F, cudaMemcpyHostToDevice));
    if (!eval_only) CUDA_CHECK(cudaMemset(g->grads, 0, g->n * F));
    CUDA_CHECK(cudaMemcpy(g->feedback, m->feedback, (size_t)c->L * S * H * F,
                          cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(g->state, 0, (size_t)c->L * BH * F));
    CUDA_CHECK(cudaMemset(g->state_c, 0, (size_t)c->L * BH * F));
    if (adamw) {
        if (opt->m && opt->v) {
            CUDA_CHECK(cudaMemcpy(g->m, opt->m, g->n * F, cudaMemcpyHostToDevice));
            CUDA_CHECK(cudaMemcpy(g->v, opt->v, g->n * F, cudaMemcpyHostToDevice));
        } else {
            CUDA_CHECK(cudaMemset(g->m, 0, g->n * F));
            CUDA_CHECK(cudaMemset(g->v, 0, g->n * F));
        }
    }
    *out = g;
    return 0;
}

extern "C" int dsf_gpu_create(dsf_gpu **out, const dsf_lm *m, const dsf_optim *opt, int B, int T,
                              dsf_scan_kind scan) {
    return create(out, m, opt, B, T, scan, 0);
}

extern "C" int dsf_gpu_create_eval(dsf_gpu **out, const dsf_lm *m, int B, int T) {
    return create(out, m, NULL, B, T, DSF_SCAN_SEQ, 1);
}

extern "C" void dsf_gpu_destroy(dsf_gpu *g) {
    if (!g) return;
    if (g->stream) CUDA_CHECK(cudaStreamSynchronize(g->stream));
    for (int l = 0; l < DSF_MAX_LAYERS; l++) {
        if (g->dropped[l]) CUDA_CHECK(cudaFree(g->dropped[l]));
        if (g->fwd_graph[l]) CUDA_CHECK(cudaGraphExecDestroy(g->fwd_graph[l]));
        if (g->bptt_graph[l]) CUDA_CHECK(cudaGraphExecDestroy(g->bptt_graph[l]));
    }
    if (g->blas_ws) CUDA_CHECK(cudaFree(g->blas_ws));
    for (int k = 0; k < MAX_MARKS; k++)
        if (g->marks[k]) CUDA_CHECK(cudaEventDestroy(g->marks[k]));
    void *dev[] = {g->params, g->grads, g->m, g->v, g->feedback, g->fb_u, g->fb_v, g->tokens, g->emb, g->gx,
                   g->logits, g->row_loss, g->e, g->dx, g->gi, g->gh, g->carry, g->ref, g->avar, g->state,
                   g->state_c, g->scalars, g->partial, g->yf, g->stf, g->d, g->dtmp, g->du};
    for (size_t k = 0; k < sizeof dev / sizeof dev[0]; k++)
        if (dev[k]) CUDA_CHECK(cudaFree(dev[k]));
    for (int l = 0; l < DSF_MAX_LAYERS; l++) {
        const gpu_block *b = &g->blk[l];
        float *blk[] = {b->a, b->xmid, b->b, b->u, b->gl, b->out, b->st};
        for (size_t k = 0; k < sizeof blk / sizeof blk[0]; k++)
            if (blk[k]) CUDA_CHECK(cudaFree(blk[k]));
        if (g->layer[l].h) CUDA_CHECK(cudaFree(g->layer[l].h));
        if (g->layer[l].gates) CUDA_CHECK(cudaFree(g->layer[l].gates));
        if (g->layer[l].q) CUDA_CHECK(cudaFree(g->layer[l].q));
        if (g->layer[l].c) CUDA_CHECK(cudaFree(g->layer[l].c));
    }
    fft_scan_destroy(&g->fft);
    if (g->h_tokens) CUDA_CHECK(cudaFreeHost(g->h_tokens));
    if (g->h_scalars) CUDA_CHECK(cudaFreeHost(g->h_scalars));
    if (g->blas) CUDA_CHECK(cublasDestroy(g->blas));
    if (g->uploaded) CUDA_CHECK(cudaEventDestroy(g->uploaded));
    if (g->stream) CUDA_CHECK(cudaStreamDestroy(g->stream));
    free(g->slot);
    free(g->fill);
    free(g);
}

extern "C" const char *dsf_gpu_name(const dsf_gpu *g) { return g->name; }

// ---- phase timing (dsf_gpu_profile) ----

// The work enqueued from here on belongs to phase p (PHASE_END: none).
static void mark(dsf_gpu *g, int p) {
    if (!g->prof) return;
    DSF_ASSERT(g->nmarks < MAX_MARKS);
    CUDA_CHECK(cudaEventRecord(g->marks[g->nmarks], g->stream));
    g->mark_phase[g->nmarks++] = p;
}

// Ends the marked work, waits for it and adds each segment's time to its phase.
static void collect(dsf_gpu *g) {
    if (!g->prof || g->nmarks == 0) return;
    mark(g, PHASE_END);
    CUDA_CHECK(cudaEventSynchronize(g->marks[g->nmarks - 1]));
    for (int k = 0; k + 1 < g->nmarks; k++) {
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, g->marks[k], g->marks[k + 1]));
        if (g->mark_phase[k] != PHASE_END) g->prof_ms[g->mark_phase[k]] += ms;
    }
    g->nmarks = 0;
}

extern "C" void dsf_gpu_profile(dsf_gpu *g, int on) {
    collect(g);
    for (int k = 0; on && k < MAX_MARKS; k++)
        if (!g->marks[k]) CUDA_CHECK(cudaEventCreate(&g->marks[k]));
    g->prof = on;
    memset(g->prof_ms, 0, sizeof g->prof_ms);
}

extern "C" void dsf_gpu_profile_ms(dsf_gpu *g, double *ms) {
    collect(g);
    memcpy(ms, g->prof_ms, sizeof g->prof_ms);
}

// ---- CUDA graphs (DSF_CUDA_GRAPHS=1) ----

// Runs body() on g->stream; with graphs on and T the full length, through the
// graph *exec, captured from body() at its first run. body() must enqueue the
// same work on the same buffers every time (it may not read the host's data).
template <typename F> static void graphed(dsf_gpu *g, cudaGraphExec_t *exec, int T, F body) {
    if (!g->graphs || T != g->T) {
        body();
        return;
    }
    if (!*exec) {
        cudaGraph_t graph;
        CUDA_CHECK(cudaStreamBeginCapture(g->stream, cudaStreamCaptureModeThreadLocal));
        body();
        CUDA_CHECK(cudaStreamEndCapture(g->stream, &graph));
        CUDA_CHECK(cudaGraphInstantiate(exec, graph, 0));
        CUDA_CHECK(cudaGraphDestroy(graph));
    }
    CUDA_CHECK(cudaGraphLaunch(*exec, g->stream));
}

// ---- the tokens: one upload a step ----

// A target that carries no loss (a task's rows between its answers): the loss is
// the mean over the other rows, which alone get a gradient (as model/lm.c).
enum { TARGET_IGNORED = -1 };

// Copies x and y (T,B) into the staging buffer with, for the embedding's
// gradient, the rows of x grouped by token: the u distinct tokens in order of
// first appearance (tok), where each one's rows start in perm (off), and perm,
// the rows in that grouping, increasing within a token. O(T·B): the tables
// slot (V) and fill are left as they were found. Then one asynchronous upload
// (the staging buffer is rewritten only once the previous upload has left it).
static void upload_tokens(dsf_gpu *g, const int32_t *x, const int32_t *y, int T) {
    const int TB = T * g->B, V = g->cfg.V;
    CUDA_CHECK(cudaEventSynchronize(g->uploaded));
    int32_t *hx = g->h_tokens, *hy = hx + TB, *perm = hy + TB, *tok = perm + TB;
    memcpy(hx, x, TB * sizeof(int32_t));
    memcpy(hy, y, TB * sizeof(int32_t));
    int u = 0;
    g->counted = 0;
    for (int r = 0; r < TB; r++) {
        DSF_ASSERT(x[r] >= 0 && x[r] < V && (y[r] == TARGET_IGNORED || (y[r] >= 0 && y[r] < V)));
        g->counted += y[r] != TARGET_IGNORED;
        if (g->slot[x[r]] < 0) {
            g->slot[x[r]] = u;
            tok[u] = x[r];
            g->fill[u++] = 0;
        }
        g->fill[g->slot[x[r]]]++;  // the count of each distinct token
    }
    int32_t *off = tok + u;
    off[0] = 0;
    for (int k = 0; k < u; k++) {
        off[k + 1] = off[k] + g->fill[k];
        g->fill[k] = off[k];  // now the next free place of token k in perm
    }
    for (int r = 0; r < TB; r++) perm[g->fill[g->slot[x[r]]]++] = r;
    for (int k = 0; k < u; k++) g->slot[tok[k]] = -1;
    g->unique = u;
    CUDA_CHECK(cudaMemcpyAsync(g->tokens, g->h_tokens, (3 * (size_t)TB + 2 * u + 1) * sizeof(int32_t),
                               cudaMemcpyHostToDevice, g->stream));
    CUDA_CHECK(cudaEventRecord(g->uploaded, g->stream));
}

// ---- forward ----

// Layer l over T steps of input in (T,B,I), from the carried state, which it updates.
static void layer_forward(dsf_gpu *g, int l, const float *in, int I, int T) {
    const dsf_cell cell = g->cfg.cell;
    const int lstm = cell == DSF_CELL_LSTM;
    const int B = g->B, H = g->cfg.H, G = dsf_cell_gates(g->cfg.cell) * H;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G, TB = (size_t)T * B;
    gpu_layer *c = &g->layer[l];
    const float *w_ih = rnn_t(g, g->params, l, 0), *w_hh = rnn_t(g, g->params, l, 1);
    const float *b_ih = rnn_t(g, g->params, l, 2), *b_hh = rnn_t(g, g->params, l, 3);
    CUDA_CHECK(cudaMemcpyAsync(c->h, g->state + l * BH, BH * sizeof(float),
                               cudaMemcpyDeviceToDevice, g->stream));
    if (lstm)
        CUDA_CHECK(cudaMemcpyAsync(c->c, g->state_c + l * BH, BH * sizeof(float),
                                   cudaMemcpyDeviceToDevice, g->stream));
    // gx (T·B,GH) = in W_ihᵀ for all steps at once (the biases go into the step kernel).
    gpu_sgemm(g->blas, 0, 1, (int)TB, G, I, 1.0f, in, I, w_ih, I, 0.0f, g->gx, G);
    for (int t = 0; t < T; t++) {
        float *gates = c->gates + t * BG;
        // gates (B,GH) = h' W_hhᵀ, then the gates in place.
        gpu_sgemm(g->blas, 0, 1, B, G, H, 1.0f, c->h + t * BH, H, w_hh, H, 0.0f, gates, G);
        if (lstm)
            lstm_forward_step_gpu(g->stream, g->gx + t * BG, gates, b_ih, b_hh, c->c + t * BH,
                                  gates, c->c + (t + 1) * BH, c->h + (t + 1) * BH, B, H);
        else if (cell == DSF_CELL_ELMAN)
            elman_forward_step_gpu(g->stream, g->gx + t * BG, gates, b_ih, b_hh,
                                   c->h + (t + 1) * BH, B, H);
        else
            gru_forward_step_gpu(g->stream, g->gx + t * BG, gates, b_ih, b_hh, c->h + t * BH,
                                 gates, c->q + t * BH, c->h + (t + 1) * BH, B, H);
    }
    CUDA_CHECK(cudaMemcpyAsync(g->state + l * BH, c->h + T * BH, BH * sizeof(float),
                               cudaMemcpyDeviceToDevice, g->stream));
    if (lstm)
        CUDA_CHECK(cudaMemcpyAsync(g->state_c + l * BH, c->c + T * BH, BH * sizeof(float),
                                   cudaMemcpyDeviceToDevice, g->stream));
}

// layer_forward, through a graph when graphs are on.
static void forward_layer(dsf_gpu *g, int l, const float *in, int I, int T) {
    if (g->fwd_in[l] != in && g->fwd_graph[l]) {  // captured with another input
        CUDA_CHECK(cudaGraphExecDestroy(g->fwd_graph[l]));
        g->fwd_graph[l] = NULL;
    }
    g->fwd_in[l] = in;
    graphed(g, &g->fwd_graph[l], T, [&] { layer_forward(g, l, in, I, T); });
}

// The block architecture (model/lm.c's block_forward) from the embedding:
// x ← x + RNN(LN1(x)), x ← x + fc2(GELU(fc1(LN2(x)))) for each block, then the
// final LayerNorm, whose output it returns.
static const float *block_forward(dsf_gpu *g, int T) {
    const int B = g->B, H = g->cfg.H, M = g->cfg.mlp, TB = T * B;
    const float *x = g->emb;
    float *P = g->params;
    for (int k = 0; k < g->cfg.L; k++) {
        const gpu_block *b = &g->blk[k];
        layernorm_forward_gpu(g->stream, x, blk_t(g, P, k, LN1_W), blk_t(g, P, k, LN1_B), b->a,
                              b->st, b->st + TB, TB, H);
        forward_layer(g, k, b->a, H, T);
        const float *r = g->layer[k].h + (size_t)B * H;
        if (g->dropped_now) {  // xmid = x + dropout(r)
            g->keys[1 + 2 * k] = dsf_rng_u64(g->rng);
            dropout_gpu(g->stream, r, b->xmid, T, B, H, &g->streams, g->dropout, g->keys[1 + 2 * k]);
            r = b->xmid;
        }
        add_gpu(g->stream, b->xmid, x, r, NULL, TB, H);
        layernorm_forward_gpu(g->stream, b->xmid, blk_t(g, P, k, LN2_W), blk_t(g, P, k, LN2_B),
                              b->b, b->st + 2 * TB, b->st + 3 * TB, TB, H);
        gpu_sgemm(g->blas, 0, 1, TB, M, H, 1.0f, b->b, H, blk_t(g, P, k, FC1_W), H, 0.0f, b->u, M);
        bias_gelu_gpu(g->stream, b->u, blk_t(g, P, k, FC1_B), b->gl, TB, M);
        // The MLP's output: in out itself, or with dropout in dtmp (free until the
        // backward pass), dropped, then added to the stream (as model/lm.c).
        float *mo = g->dropped_now ? g->dtmp : b->out;
        add_gpu(g->stream, mo, g->dropped_now ? NULL : b->xmid, NULL, blk_t(g, P, k, FC2_B), TB, H);
        gpu_sgemm(g->blas, 0, 1, TB, H, M, 1.0f, b->gl, M, blk_t(g, P, k, FC2_W), M, 1.0f, mo, H);
        if (g->dropped_now) {
            g->keys[2 + 2 * k] = dsf_rng_u64(g->rng);
            dropout_gpu(g->stream, mo, mo, T, B, H, &g->streams, g->dropout, g->keys[2 + 2 * k]);
            add_gpu(g->stream, b->out, b->xmid, mo, NULL, TB, H);
        }
        x = b->out;
    }
    layernorm_forward_gpu(g->stream, x, lnf_w(g, P), lnf_b(g, P), g->yf, g->stf, g->stf + TB, TB, H);
    return g->yf;
}

// Everything up to the mean loss in scalars[0], without waiting.
static void forward(dsf_gpu *g, const int32_t *x, const int32_t *y, int T) {
    const dsf_lm_config *c = &g->cfg;
    const int B = g->B, TB = T * B, H = c->H, V = c->V;
    DSF_ASSERT(T >= 1 && T <= g->T);
    g->last_T = T;
    collect(g);  // a previous pass's marks, if any
    mark(g, DSF_PROF_FORWARD);
    upload_tokens(g, x, y, T);
    embedding_forward_gpu(g->stream, enc_w(g, g->params), g->tokens, g->emb, TB, c->E);
    // Dropout as lm_forward: one key per site from the host's generator, in order.
    const int drop = g->dropped_now = g->dropout > 0 && g->rng;
    if (drop) {
        g->keys[0] = dsf_rng_u64(g->rng);
        dropout_gpu(g->stream, g->emb, g->emb, T, B, c->E, &g->streams, g->dropout, g->keys[0]);
    }
    const float *in = g->emb;
    int I = c->E;
    for (int l = 0; l < c->L && !g->block; l++) {
        forward_layer(g, l, in, I, T);
        in = g->layer[l].h + (size_t)B * H;  // outputs h[1..T]
        if (drop) {
            g->keys[l + 1] = dsf_rng_u64(g->rng);
            dropout_gpu(g->stream, in, g->dropped[l], T, B, H, &g->streams, g->dropout,
                        g->keys[l + 1]);
            in = g->dropped[l];
        }
        I = H;
    }
    if (g->block) in = block_forward(g, T);
    // logits (T·B,V) = in W_decᵀ; the bias, softmax and loss in one kernel.
    mark(g, DSF_PROF_DECODER);
    gpu_sgemm(g->blas, 0, 1, TB, V, H, 1.0f, in, H, dec_w(g, g->params), H, 0.0f, g->logits, V);
    const int n = g->counted;  // the mean is over the counted rows (0 when there are none)
    softmax_xent_gpu(g->stream, g->logits, dec_b(g, g->params), g->tokens + TB, g->row_loss,
                     n ? 1.0f / (float)n : 0.0f, TB, V);
    mean_gpu(g->stream, g->row_loss, g->scalars, TB, n);
}

static void read_scalars(dsf_gpu *g) {
    CUDA_CHECK(cudaMemcpyAsync(g->h_scalars, g->scalars, 2 * sizeof(double),
                               cudaMemcpyDeviceToHost, g->stream));
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
}

extern "C" double dsf_gpu_forward(dsf_gpu *g, const int32_t *x, const int32_t *y, int T) {
    forward(g, x, y, T);
    read_scalars(g);
    return g->h_scalars[0];
}

// ---- backward ----

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

// Layer l: g->e holds its local errors (T,B,H) on entry and δ on return; g->dx
// receives the input gradient (T,B,I); x is its input. As gru_layer_backward.
// The LSTM's (lstm_layer_backward): the state gradient δh in e and δc in gh; the
// gate gradients ga (T,B,4H) in gi, which serve both W_ih and W_hh.
static void lstm_state_backward(dsf_gpu *g, dsf_method meth, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 4 * H, TB = T * B;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    const gpu_layer *c = &g->layer[l];
    const float *w_hh = rnn_t(g, g->params, l, 1);
    float *e = g->e, *dc = g->gh, *ga = g->gi;
    if (meth == DSF_METHOD_BPTT) {
        // δh_t = e_t + ga_{t+1} W_hh, δc_t = δh_t ⊙ o_t ⊙ (1 − tanh² c_t) + f_{t+1} ⊙ δc_{t+1}:
        // the kernel of step t completes both, then its gate gradients.
        for (int t = T - 1; t >= 0; t--) {
            const int last = t == T - 1;
            lstm_local_gpu(g->stream, 1, e + t * BH, dc + t * BH, last ? NULL : g->carry,
                           last ? NULL : dc + (t + 1) * BH, last ? NULL : c->gates + (t + 1) * BG,
                           c->c + t * BH, c->c + (t + 1) * BH, c->gates + t * BG, ga + t * BG, B,
                           H);
            if (t > 0)
                gpu_sgemm(g->blas, 0, 0, B, H, G, 1.0f, ga + t * BG, G, w_hh, H, 0.0f, g->carry, H);
        }
        return;
    }
    // DSF's two stages (docs/DESIGN.md §2): δh by the scan with a_h; then δc's local part
    // from it, scanned with a_c. ft: both local.
    const int dsf = meth == DSF_METHOD_DSF, diag = dsf && g->fb_kind == DSF_FEEDBACK_DIAG;
    // a_h, a_c: the layer's fixed vectors, or with diag step t+1's exact h → h
    // diagonal and f_{t+1} (slice t of each), the c chain then exact.
    const float *ah = g->feedback + (size_t)l * 2 * H, *ac = ah + H;
    if (diag) {
        const int rows = TB - B;
        jacobian_diag_gpu(g->stream, DSF_CELL_LSTM, w_hh, c->c + BH, c->c + 2 * BH, c->gates + BG,
                          NULL, g->avar, rows, H);
        float *f = g->avar + (size_t)g->T * BH;
        if (rows > 0)
            CUDA_CHECK(cudaMemcpy2DAsync(f, H * sizeof(float), c->gates + BG + H, G * sizeof(float),
                                         H * sizeof(float), rows, cudaMemcpyDeviceToDevice,
                                         g->stream));
        ah = g->avar;
        ac = f;
    }
    float *e0 = g->ref, *cb = g->ref ? g->ref + (size_t)TB * H : NULL;
    if (dsf && g->refine)
        CUDA_CHECK(cudaMemcpyAsync(e0, e, (size_t)TB * H * sizeof(float),
                                   cudaMemcpyDeviceToDevice, g->stream));
    if (dsf) scan(g, e, ah, T, diag);
    lstm_c_local_gpu(g->stream, e, c->gates, c->c + BH, dc, TB, H);
    if (dsf) scan(g, dc, ac, T, diag);
    for (int k = 0; dsf && k < g->refine; k++) {
        // δh ← scan(e + (Jᵀ − A_h) S δh), Jᵀ through all four gates of step t+1;
        // then δc ← scan(ĉ + (f − a_c) S δc) (lstm_layer_backward); with diag
        // a_c = f and the c chain is the scan of ĉ.
        lstm_local_gpu(g->stream, 0, e, dc, NULL, NULL, NULL, c->c, c->c + BH, c->gates, ga, TB,
                       H);
        carry_all(g, ga + BG, w_hh, cb, TB - B, G);
        sweep(g, e, e0, cb, NULL, 0, ah, diag, T);
        lstm_c_local_gpu(g->stream, e, c->gates, c->c + BH, cb, TB, H);
        if (diag) {
            CUDA_CHECK(cudaMemcpyAsync(dc, cb, (size_t)TB * H * sizeof(float),
                                       cudaMemcpyDeviceToDevice, g->stream));
            scan(g, dc, ac, T, 1);
        } else {
            sweep(g, dc, NULL, cb, c->gates + H, (size_t)G, ac, 0, T);
        }
    }
    lstm_local_gpu(g->stream, 0, e, dc, NULL, NULL, NULL, c->c, c->c + BH, c->gates, ga, TB, H);
}

// The Elman cell's (elman_backward_bptt): δ in e, the pre-activation gradient
// ga (T,B,H) in gi, which serves both W_ih and W_hh.
static void elman_state_backward(dsf_gpu *g, dsf_method meth, int l, int T) {
    const int B = g->B, H = g->cfg.H, TB = T * B;
    const size_t BH = (size_t)B * H;
    const gpu_layer *c = &g->layer[l];
    float *e = g->e, *ga = g->gi;
    if (meth == DSF_METHOD_BPTT) {
        // δ_t = e_t + ga_{t+1} W_hh: the kernel of step t adds the carry, then ga_t.
        for (int t = T - 1; t >= 0; t--) {
            elman_local_gpu(g->stream, e + t * BH, t == T - 1 ? NULL : g->carry,
                            c->h + (t + 1) * BH, ga + t * BH, B, H);
            if (t > 0)
                gpu_sgemm(g->blas, 0, 0, B, H, H, 1.0f, ga + t * BH, H, rnn_t(g, g->params, l, 1),
                          H, 0.0f, g->carry, H);
        }
        return;
    }
    if (meth == DSF_METHOD_DSF) {
        const int diag = g->fb_kind == DSF_FEEDBACK_DIAG;
        const float *a = g->feedback + (size_t)l * H, *w_hh = rnn_t(g, g->params, l, 1);
        if (diag) {  // slice t: (1 − h_{t+1}²) W_hh[i,i]
            jacobian_diag_gpu(g->stream, DSF_CELL_ELMAN, w_hh, c->h + 2 * BH, NULL, NULL, NULL,
                              g->avar, TB - B, H);
            a = g->avar;
        }
        float *e0 = g->ref, *cb = g->ref ? g->ref + (size_t)TB * H : NULL;
        if (g->refine)
            CUDA_CHECK(cudaMemcpyAsync(e0, e, (size_t)TB * H * sizeof(float),
                                       cudaMemcpyDeviceToDevice, g->stream));
        layer_scan(g, l, e, a, T, diag);
        for (int k = 0; k < g->refine; k++) {
            elman_local_gpu(g->stream, e, NULL, c->h + BH, ga, TB, H);
            carry_all(g, ga + BH, w_hh, cb, TB - B, H);
            sweep(g, e, e0, cb, NULL, 0, a, diag, T);
        }
    }
    elman_local_gpu(g->stream, e, NULL, c->h + BH, ga, TB, H);
}

// The GRU's (gru_layer_backward): δ in e, the gate gradients in gi and gh.
static void gru_state_backward(dsf_gpu *g, dsf_method meth, int l, int T) {
    const int B = g->B, H = g->cfg.H, G = 3 * H, TB = T * B;
    const size_t BH = (size_t)B * H, BG = (size_t)B * G;
    const gpu_layer *c = &g->layer[l];
    const float *w_hh = rnn_t(g, g->params, l, 1);
    float *e = g->e;
    if (meth == DSF_METHOD_BPTT) {
        // δ_t = e_t + δ_{t+1} ⊙ z_{t+1} + gh_{t+1} W_hh: the kernel of step t adds the
        // carry the GEMM of step t+1 left, then the local backward of step t.
        for (int t = T - 1; t >= 0; t--) {
            const int last = t == T - 1;
            gru_local_gpu(g->stream, e + t * BH, last ? NULL : e + (t + 1) * BH,
                          last ? NULL : c->gates + (t + 1) * BG, g->carry, c->h + t * BH,
                          c->gates + t * BG, c->q + t * BH, g->gi + t * BG, g->gh + t * BG, B, H);
            if (t > 0)
                gpu_sgemm(g->blas, 0, 0, B, H, G, 1.0f, g->gh + t * BG, G, w_hh, H, 0.0f,
                          g->carry, H);
        }
        return;
    }
    if (meth == DSF_METHOD_DSF) {
        const int diag = g->fb_kind == DSF_FEEDBACK_DIAG;
        const float *a = g->feedback + (size_t)l * H;
        if (diag) {  // slice t: the exact diagonal of J_{t+1}
            jacobian_diag_gpu(g->stream, DSF_CELL_GRU, w_hh, c->h + BH, NULL, c->gates + BG,
                              c->q + BH, g->avar, TB - B, H);
            a = g->avar;
        }
        if (g->refine)
            CUDA_CHECK(cudaMemcpyAsync(g->ref, e, (size_t)TB * H * sizeof(float),
                                       cudaMemcpyDeviceToDevice, g->stream));
        layer_scan(g, l, e, a, T, diag);
        for (int k = 0; k < g->refine; k++) {
            // The local backward of every row, its GEMM part gh W_hh into gi
            // (as (T,B,H)), then the sweep with z_{t+1} as the elementwise part.
            gru_local_gpu(g->stream, e, NULL, NULL, NULL, c->h, c->gates, c->q, g->gi, g->gh,
                          TB, H);
            carry_all(g, g->gh + BG, w_hh, g->gi, TB - B, G);
            sweep(g, e, g->ref, g->gi, c->gates + H, (size_t)G, a, diag, T);
        }
    }
    // ft: δ = e as it is. With δ known at every step, one kernel over all rows.
    gru_local_gpu(g->stream, e, NULL, NULL, NULL, c->h, c->gates, c->q, g->gi, g->gh, TB, H);
}

static void layer_backward(dsf_gpu *g, dsf_method meth, int l, const float *x, int I, int T) {
    const int lstm = g->cfg.cell == DSF_CELL_LSTM, elman = g->cfg.cell == DSF_CELL_ELMAN;
    const int B = g->B, H = g->cfg.H, G = dsf_cell_gates(g->cfg.cell) * H, TB = T * B;
    const gpu_layer *c = &g->layer[l];
    const float *w_ih = rnn_t(g, g->params, l, 0);
    auto state = [&] {
        if (lstm)
            lstm_state_backward(g, meth, l, T);
        else if (elman)
            elman_state_backward(g, meth, l, T);
        else
            gru_state_backward(g, meth, l, T);
    };
    mark(g, DSF_PROF_STATE_GRAD);
    if (meth == DSF_METHOD_BPTT)  // T small GEMMs and kernels in sequence: worth a graph
        graphed(g, &g->bptt_graph[l], T, state);
    else
        state();
    mark(g, DSF_PROF_PARAM_GRAD);
    // Parameter and input gradients over all T·B rows (cell_backward_params; the
    // LSTM's and the Elman cell's ga serve both halves).
    const float *gh = lstm || elman ? g->gi : g->gh;
    gpu_sgemm(g->blas, 1, 0, G, I, TB, 1.0f, g->gi, G, x, I, 1.0f, rnn_t(g, g->grads, l, 0), I);
    gpu_sgemm(g->blas, 1, 0, G, H, TB, 1.0f, gh, G, c->h, H, 1.0f, rnn_t(g, g->grads, l, 1), H);
    colsum_gpu(g->stream, g->gi, rnn_t(g, g->grads, l, 2), TB, G);
    colsum_gpu(g->stream, gh, rnn_t(g, g->grads, l, 3), TB, G);
    gpu_sgemm(g->blas, 0, 0, TB, I, G, 1.0f, g->gi, G, w_ih, I, 0.0f, g->dx, I);
    // fit (the GRU's, gru_fit_feedback): a re-estimated from this pass's δ (in e)
    // and gate gradients, for the steps that follow.
    if (meth == DSF_METHOD_DSF && g->fb_kind == DSF_FEEDBACK_FIT && g->fit_now && !lstm &&
        !elman) {
        const size_t BH = (size_t)B * H, BG = (size_t)B * G;
        carry_all(g, g->gh + BG, rnn_t(g, g->params, l, 1), g->avar, TB - B, G);
        fit_feedback_gpu(g->stream, g->avar, g->e + BH, c->gates + BG + H, (size_t)G, TB - B,
                         g->feedback + (size_t)l * H, g->fit_rate, H);
    }
}

// The block architecture's (model/lm.c's block_backward), g->dtmp holding the
// gradient of the final LayerNorm's output: the gradient of the stream, d, from
// the top down, each branch's backward pass adding to it; the recurrent layer's
// local error is d where its output joins it. Returns the embedding's gradient.
static const float *block_backward(dsf_gpu *g, dsf_method meth, int T) {
    const int B = g->B, H = g->cfg.H, M = g->cfg.mlp, L = g->cfg.L, TB = T * B;
    const int drop = g->dropped_now;
    float *G = g->grads, *d = g->d;
    layernorm_backward_gpu(g->stream, g->dtmp, g->blk[L - 1].out, g->stf, g->stf + TB,
                           lnf_w(g, g->params), d, 0, lnf_w(g, G), lnf_b(g, G), TB, H);
    for (int k = L - 1; k >= 0; k--) {
        const gpu_block *b = &g->blk[k];
        mark(g, DSF_PROF_PARAM_GRAD);
        // The MLP branch (its output's gradient dm: d through its dropout, in e).
        const float *dm = d;
        if (drop) {
            dropout_gpu(g->stream, d, g->e, T, B, H, &g->streams, g->dropout, g->keys[2 + 2 * k]);
            dm = g->e;
        }
        gpu_sgemm(g->blas, 1, 0, H, M, TB, 1.0f, dm, H, b->gl, M, 1.0f, blk_t(g, G, k, FC2_W), M);
        colsum_gpu(g->stream, dm, blk_t(g, G, k, FC2_B), TB, H);
        gpu_sgemm(g->blas, 0, 0, TB, M, H, 1.0f, dm, H, blk_t(g, g->params, k, FC2_W), M, 0.0f,
                  g->du, M);
        gelu_backward_gpu(g->stream, g->du, b->u, (size_t)TB * M);
        gpu_sgemm(g->blas, 1, 0, M, H, TB, 1.0f, g->du, M, b->b, H, 1.0f, blk_t(g, G, k, FC1_W), H);
        colsum_gpu(g->stream, g->du, blk_t(g, G, k, FC1_B), TB, M);
        gpu_sgemm(g->blas, 0, 0, TB, H, M, 1.0f, g->du, M, blk_t(g, g->params, k, FC1_W), H, 0.0f,
                  g->dtmp, H);
        layernorm_backward_gpu(g->stream, g->dtmp, b->xmid, b->st + 2 * TB, b->st + 3 * TB,
                               blk_t(g, g->params, k, LN2_W), d, 1, blk_t(g, G, k, LN2_W),
                               blk_t(g, G, k, LN2_B), TB, H);
        // The recurrent branch: its local error is the stream's gradient (through its dropout).
        if (drop)
            dropout_gpu(g->stream, d, g->e, T, B, H, &g->streams, g->dropout, g->keys[1 + 2 * k]);
        else
            CUDA_CHECK(cudaMemcpyAsync(g->e, d, (size_t)TB * H * sizeof(float),
                                       cudaMemcpyDeviceToDevice, g->stream));
        layer_backward(g, meth, k, b->a, H, T);
        layernorm_backward_gpu(g->stream, g->dx, k ? g->blk[k - 1].out : g->emb, b->st, b->st + TB,
                               blk_t(g, g->params, k, LN1_W), d, 1, blk_t(g, G, k, LN1_W),
                               blk_t(g, G, k, LN1_B), TB, H);
    }
    if (drop) dropout_gpu(g->stream, d, d, T, B, H, &g->streams, g->dropout, g->keys[0]);
    return d;
}

extern "C" void dsf_gpu_backward(dsf_gpu *g, dsf_method meth) {
    const dsf_lm_config *c = &g->cfg;
    const int T = g->last_T, B = g->B, TB = T * B, E = c->E, H = c->H, V = c->V, L = c->L;
    const size_t BH = (size_t)B * H;
    DSF_ASSERT(T >= 1 && !g->eval_only);
    mark(g, DSF_PROF_DECODER);
    CUDA_CHECK(cudaMemsetAsync(g->grads, 0, g->n * sizeof(float), g->stream));
    g->e = g->err[0];  // the same buffers for each layer at every call (graphs)
    g->dx = g->err[1];
    // The decoder: g->logits holds dlogits (softmax_xent_gpu).
    const int drop = g->dropped_now;
    const float *top = g->block ? g->yf : drop ? g->dropped[L - 1] : g->layer[L - 1].h + BH;
    gpu_sgemm(g->blas, 1, 0, V, H, TB, 1.0f, g->logits, V, top, H, 1.0f, dec_w(g, g->grads), H);
    colsum_gpu(g->stream, g->logits, dec_b(g, g->grads), TB, V);
    gpu_sgemm(g->blas, 0, 0, TB, H, V, 1.0f, g->logits, V, dec_w(g, g->params), H, 0.0f,
              g->block ? g->dtmp : g->e, H);
    const int32_t *perm = g->tokens + 2 * TB, *tok = perm + TB, *off = tok + g->unique;
    if (g->block) {
        embedding_backward_gpu(g->stream, block_backward(g, meth, T), tok, off, perm,
                               enc_w(g, g->grads), g->unique, E);
        return;
    }
    if (drop) dropout_gpu(g->stream, g->e, g->e, T, B, H, &g->streams, g->dropout, g->keys[L]);
    for (int l = L - 1; l >= 0; l--) {
        const float *x = l == 0 ? g->emb : drop ? g->dropped[l - 1] : g->layer[l - 1].h + BH;
        layer_backward(g, meth, l, x, l == 0 ? E : H, T);
        float *t = g->e;  // dx is the local error of the layer below (or the embedding's)
        g->e = g->dx;
        g->dx = t;
        // ... through its dropout (the embedding's key is keys[0], layer l−1's keys[l]).
        if (drop)
            dropout_gpu(g->stream, g->e, g->e, T, B, l ? H : E, &g->streams, g->dropout,
                        g->keys[l]);
    }
    embedding_backward_gpu(g->stream, g->e, tok, off, perm, enc_w(g, g->grads), g->unique, E);
}

// ---- the update ----

// Σ g² into scalars[1] and the clip, without waiting.
static void clip(dsf_gpu *g, double max_norm) {
    mark(g, DSF_PROF_OPTIM);
    sumsq_gpu(g->stream, g->grads, g->n, g->partial, g->scalars + 1);
    clip_gpu(g->stream, g->grads, g->n, g->scalars + 1, max_norm);
}

extern "C" double dsf_gpu_clip(dsf_gpu *g, double max_norm) {
    clip(g, max_norm);
    read_scalars(g);
    return sqrt(g->h_scalars[1]);
}

extern "C" void dsf_gpu_optim_step(dsf_gpu *g, dsf_optim *o) {
    const float lr = optim_lr(o);
    o->t++;
    if (o->kind == DSF_OPTIM_SGD) {
        sgd_gpu(g->stream, g->params, g->grads, g->n, lr);
        return;
    }
    DSF_ASSERT(g->m && g->v);  // created with an AdamW optimizer
    const float b1 = o->beta1, b2 = o->beta2;
    const float c1 = 1.0f - powf(b1, (float)o->t), c2 = 1.0f - powf(b2, (float)o->t);
    for (int k = 0; k < g->ntensors; k++) {
        const dsf_param *d = &g->tensors[k];
        const float decay = d->is_weight ? 1.0f - lr * o->weight_decay : 1.0f;
        adamw_gpu(g->stream, g->params + d->offset, g->grads + d->offset, g->m + d->offset,
                  g->v + d->offset, d->numel, lr, b1, b2, c1, c2, o->eps, decay);
    }
}

extern "C" int dsf_gpu_step(dsf_gpu *g, const int32_t *x, const int32_t *y, int T,
                            dsf_method meth, double max_norm, dsf_optim *opt, double *loss,
                            double *norm) {
    forward(g, x, y, T);
    dsf_gpu_backward(g, meth);
    clip(g, max_norm);
    read_scalars(g);
    *loss = g->h_scalars[0];
    *norm = sqrt(g->h_scalars[1]);
    if (!isfinite(*loss) || !isfinite(*norm)) return 1;
    if (opt) dsf_gpu_optim_step(g, opt);
    collect(g);  // (only when profiling: waits for the update)
    return 0;
}

extern "C" void dsf_gpu_set_streams(dsf_gpu *g, int64_t B_all, int64_t first) {
    DSF_ASSERT(first >= 0 && first + g->B <= B_all);
    g->streams = (dsf_gpu_streams){B_all, first};
}

extern "C" void dsf_gpu_set_fit(dsf_gpu *g, int now, float rate) {
    g->fit_now = now;
    g->fit_rate = rate;
}

extern "C" int dsf_gpu_set_dropout(dsf_gpu *g, float p, dsf_rng *rng) {
    DSF_ASSERT(p >= 0 && p < 1);
    for (int l = 0; p > 0 && !g->block && l < g->cfg.L; l++)
        if (!g->dropped[l] &&
            gpu_alloc(&g->dropped[l], (size_t)g->T * g->B * g->cfg.H * sizeof(float)))
            return -1;
    g->dropout = p;
    g->rng = rng;
    return 0;
}

// ---- copies ----

static void copy(dsf_gpu *g, void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    CUDA_CHECK(cudaStreamSynchronize(g->stream));
    CUDA_CHECK(cudaMemcpy(dst, src, bytes, kind));
}

extern "C" void dsf_gpu_get_params(dsf_gpu *g, float *p) {
    copy(g, p, g->params, g->n * sizeof(float), cudaMemcpyDeviceToHost);
}
extern "C" void dsf_gpu_set_params(dsf_gpu *g, const float *p) {
    copy(g, g->params, p, g->n * sizeof(float), cudaMemcpyHostToDevice);
}
extern "C" void dsf_gpu_get_grads(dsf_gpu *g, float *p) {
    copy(g, p, g->grads, g->n * sizeof(float), cudaMemcpyDeviceToHost);
}
extern "C" void dsf_gpu_set_grads(dsf_gpu *g, const float *p) {
    copy(g, g->grads, p, g->n * sizeof(float), cudaMemcpyHostToDevice);
}
extern "C" void dsf_gpu_get_state(dsf_gpu *g, float *s) {
    copy(g, s, g->state, sizeof(float) * g->cfg.L * g->B * g->cfg.H, cudaMemcpyDeviceToHost);
}
extern "C" void dsf_gpu_set_state(dsf_gpu *g, const float *s) {
    copy(g, g->state, s, sizeof(float) * g->cfg.L * g->B * g->cfg.H, cudaMemcpyHostToDevice);
}
extern "C" void dsf_gpu_get_state_c(dsf_gpu *g, float *s) {
    copy(g, s, g->state_c, sizeof(float) * g->cfg.L * g->B * g->cfg.H, cudaMemcpyDeviceToHost);
}
extern "C" void dsf_gpu_set_state_c(dsf_gpu *g, const float *s) {
    copy(g, g->state_c, s, sizeof(float) * g->cfg.L * g->B * g->cfg.H, cudaMemcpyHostToDevice);
}
extern "C" void dsf_gpu_reset_state(dsf_gpu *g) {
    const size_t bytes = sizeof(float) * g->cfg.L * g->B * g->cfg.H;
    CUDA_CHECK(cudaMemsetAsync(g->state, 0, bytes, g->stream));
    CUDA_CHECK(cudaMemsetAsync(g->state_c, 0, bytes, g->stream));
}
extern "C" void dsf_gpu_set_feedback(dsf_gpu *g, const float *a) {
    copy(g, g->feedback, a, sizeof(float) * g->cfg.L * dsf_cell_states(g->cfg.cell) * g->cfg.H,
         cudaMemcpyHostToDevice);
}
extern "C" void dsf_gpu_get_feedback(dsf_gpu *g, float *a) {
    copy(g, a, g->feedback, sizeof(float) * g->cfg.L * dsf_cell_states(g->cfg.cell) * g->cfg.H,
         cudaMemcpyDeviceToHost);
}
extern "C" void dsf_gpu_get_moments(dsf_gpu *g, float *m, float *v) {
    DSF_ASSERT((m != NULL) == (g->m != NULL) && (v != NULL) == (g->v != NULL));
    if (!m) return;
    copy(g, m, g->m, g->n * sizeof(float), cudaMemcpyDeviceToHost);
    copy(g, v, g->v, g->n * sizeof(float), cudaMemcpyDeviceToHost);
}

// ---- for tests ----

// e (T,B,H) through scan_gpu with `chunks` chunks, or the fft scan when chunks is 0.
static int device_scan(float *e, const float *a, int T, int B, int H, int chunks) {
    if (dsf_gpu_device_count() < 1) return -1;
    const size_t n = (size_t)T * B * H;
    float *de = NULL, *da = NULL;
    fft_scan f = {};
    if (gpu_alloc(&de, n * sizeof(float)) || gpu_alloc(&da, H * sizeof(float)) ||
        (chunks == 0 && fft_scan_create(&f, T, B, H))) {
        if (de) CUDA_CHECK(cudaFree(de));
        if (da) CUDA_CHECK(cudaFree(da));
        return -1;
    }
    CUDA_CHECK(cudaMemcpy(de, e, n * sizeof(float), cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(da, a, H * sizeof(float), cudaMemcpyHostToDevice));
    if (chunks == 0)
        fft_scan_gpu(0, &f, de, da, T);
    else
        scan_gpu(0, de, da, T, B, H, chunks);
    CUDA_CHECK(cudaMemcpy(e, de, n * sizeof(float), cudaMemcpyDeviceToHost));
    fft_scan_destroy(&f);
    CUDA_CHECK(cudaFree(de));
    CUDA_CHECK(cudaFree(da));
    return 0;
}

extern "C" int dsf_gpu_scan(float *e, const float *a, int T, int B, int H, int chunks) {
    return device_scan(e, a, T, B, H, chunks < 1 ? 1 : chunks);
}

extern "C" int dsf_gpu_scan_fft(float *e, const float *a, int T, int B, int H) {
    return device_scan(e, a, T, B, H, 0);
}

extern "C" double dsf_gpu_gemm_gflops(int M, int N, int K, int tb, int reps) {
    if (dsf_gpu_device_count() < 1) return -1;
    float *a, *b, *c;
    if (gpu_alloc(&a, sizeof(float) * M * K)) return -1;
    if (gpu_alloc(&b, sizeof(float) * K * N) || gpu_alloc(&c, sizeof(float) * M * N)) {
        CUDA_CHECK(cudaFree(a));
        if (b) CUDA_CHECK(cudaFree(b));
        return -1;
    }
    // Random operands: a GPU multiplying zeros draws less power and may clock higher.
    const size_t big = (size_t)M * K > (size_t)K * N ? (size_t)M * K : (size_t)K * N;
    float *host = (float *)malloc(sizeof(float) * big);
    DSF_ASSERT(host);
    dsf_rng rng;
    dsf_rng_seed(&rng, 7);
    dsf_rng_fill_uniform(&rng, host, big, -1, 1);
    CUDA_CHECK(cudaMemcpy(a, host, sizeof(float) * M * K, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemcpy(b, host, sizeof(float) * K * N, cudaMemcpyHostToDevice));
    CUDA_CHECK(cudaMemset(c, 0, sizeof(float) * M * N));
    free(host);
    cublasHandle_t h;
    cudaEvent_t e0, e1;
    CUDA_CHECK(cublasCreate(&h));
    CUDA_CHECK(cudaEventCreate(&e0));
    CUDA_CHECK(cudaEventCreate(&e1));
    gpu_sgemm(h, 0, tb, M, N, K, 1.0f, a, K, b, tb ? K : N, 0.0f, c, N);  // warm-up
    float best = INFINITY;
    for (int r = 0; r < reps; r++) {
        CUDA_CHECK(cudaEventRecord(e0, 0));
        gpu_sgemm(h, 0, tb, M, N, K, 1.0f, a, K, b, tb ? K : N, 1.0f, c, N);
        CUDA_CHECK(cudaEventRecord(e1, 0));
        CUDA_CHECK(cudaEventSynchronize(e1));
        float ms;
        CUDA_CHECK(cudaEventElapsedTime(&ms, e0, e1));
        best = fminf(best, ms);
    }
    CUDA_CHECK(cudaEventDestroy(e0));
    CUDA_CHECK(cudaEventDestroy(e1));
    CUDA_CHECK(cublasDestroy(h));
    CUDA_CHECK(cudaFree(a));
    CUDA_CHECK(cudaFree(b));
    CUDA_CHECK(cudaFree(c));
    return 2.0 * M * N * K / (best * 1e-3) / 1e9;
}
