// lm.cu: the language model on the device (gpu.h): its buffers, their creation
// and destruction, the copies to and from the host, the settings, phase timing,
// and the scan and GEMM entry points for tests and benchmarks. The training step
// itself, forward, backward and update, is in lm_step.cu; the methods' state
// gradients in method.cu (lm_internal.cuh holds what they share).
#include "lm_internal.cuh"

enum { BLAS_WORKSPACE = 32 << 20 };  // bytes: cuBLAS's work area under graph capture
enum { PHASE_END = DSF_PROF_NPHASES };  // the phase after a step's last mark

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
int feedback_implemented(dsf_feedback_kind k) {
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
    g->streams = (dsf_gpu_streams){B, 0, 1};
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
void mark(dsf_gpu *g, int p) {
    if (!g->prof) return;
    DSF_ASSERT(g->nmarks < MAX_MARKS);
    CUDA_CHECK(cudaEventRecord(g->marks[g->nmarks], g->stream));
    g->mark_phase[g->nmarks++] = p;
}

// Ends the marked work, waits for it and adds each segment's time to its phase.
void collect(dsf_gpu *g) {
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

// ---- settings ----

extern "C" void dsf_gpu_set_streams(dsf_gpu *g, int64_t B_all, int64_t first, int64_t stride) {
    DSF_ASSERT(first >= 0 && stride >= 1 && first + (g->B - 1) * stride < B_all);
    g->streams = (dsf_gpu_streams){B_all, first, stride};
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
