// lm_step.cu: a training step of the language model on the device (gpu.h), as
// model/lm.c does it on the CPU: the tokens' upload, the forward pass, the
// backward pass (each layer's state gradients by method.cu's state_backward,
// then its parameter gradients) and the update, with the GEMMs on cuBLAS and
// the rest in the kernels of gru.cu, lstm.cu, elman.cu, scan.cu, fft.cu,
// block.cu, loss.cu and optim.cu. Everything runs in order on one stream.
#include "lm_internal.cuh"

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

// Layer l: g->e holds its local errors (T,B,H) on entry and δ on return; g->dx
// receives the input gradient (T,B,I); x is its input. As gru_layer_backward.
static void layer_backward(dsf_gpu *g, dsf_method meth, int l, const float *x, int I, int T) {
    const int lstm = g->cfg.cell == DSF_CELL_LSTM, elman = g->cfg.cell == DSF_CELL_ELMAN;
    const int B = g->B, H = g->cfg.H, G = dsf_cell_gates(g->cfg.cell) * H, TB = T * B;
    const gpu_layer *c = &g->layer[l];
    const float *w_ih = rnn_t(g, g->params, l, 0);
    mark(g, DSF_PROF_STATE_GRAD);
    if (meth == DSF_METHOD_BPTT)  // T small GEMMs and kernels in sequence: worth a graph
        graphed(g, &g->bptt_graph[l], T, [&] { state_backward(g, meth, l, T); });
    else
        state_backward(g, meth, l, T);
    mark(g, DSF_PROF_PARAM_GRAD);
    // Parameter and input gradients over all T·B rows (cell_backward_params; the
    // LSTM's and the Elman cell's ga serve both halves).
    const float *gh = lstm || elman ? g->gi : g->gh;
    gpu_sgemm(g->blas, 1, 0, G, I, TB, 1.0f, g->gi, G, x, I, 1.0f, rnn_t(g, g->grads, l, 0), I);
    gpu_sgemm(g->blas, 1, 0, G, H, TB, 1.0f, gh, G, c->h, H, 1.0f, rnn_t(g, g->grads, l, 1), H);
    colsum_gpu(g->stream, g->gi, rnn_t(g, g->grads, l, 2), TB, G);
    colsum_gpu(g->stream, gh, rnn_t(g, g->grads, l, 3), TB, G);
    gpu_sgemm(g->blas, 0, 0, TB, I, G, 1.0f, g->gi, G, w_ih, I, 0.0f, g->dx, I);
    // fit (the GRU's): a re-estimated from this pass's δ and gate gradients.
    if (meth == DSF_METHOD_DSF && g->fb_kind == DSF_FEEDBACK_FIT && g->fit_now && !lstm &&
        !elman)
        fit_feedback(g, l, T);
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
