// step.c: one training step over a backend, with data-parallel averaging around it.
#include "train/step.h"

#include <math.h>

#include "core/prof.h"
#include "dist/dist.h"

// What the step asks of a backend. The gradients travel through m->grads on the
// host only when the ranks average them; fused, when set, is the whole step in
// one call (returns 1 when the update was made).
struct dsf_step_backend {
    double (*forward)(dsf_step *s, const dsf_batch *b);
    void (*backward)(dsf_step *s);
    void (*grads_to_host)(dsf_step *s);    // m->grads ← the backend's gradients
    void (*grads_from_host)(dsf_step *s);  // the backend's gradients ← m->grads
    void (*feedback_to_host)(dsf_step *s);
    void (*feedback_from_host)(dsf_step *s);
    double (*clip)(dsf_step *s);           // the norm before clipping to s->clip
    void (*update)(dsf_step *s);
    void (*reset_state)(dsf_step *s);
    void (*sync)(dsf_step *s);
    int (*fused)(dsf_step *s, const dsf_batch *b, dsf_step_result *r);  // or NULL
};

// ---- the CPU: model/lm.c and optim/optim.c ----

static double cpu_forward(dsf_step *s, const dsf_batch *b) {
    return b->xf ? lm_forward_floats(s->m, s->w, b->xf, b->y, b->T)
                 : lm_forward(s->m, s->w, b->x, b->y, b->T);
}

static void cpu_backward(dsf_step *s) { lm_backward(s->m, s->w, s->method); }

static void cpu_none(dsf_step *s) { (void)s; }  // the host's buffers are the backend's

static double cpu_clip(dsf_step *s) { return optim_clip(s->m->grads, s->m->n, s->clip); }

static void cpu_update(dsf_step *s) { optim_step(s->o, s->m); }

static void cpu_reset_state(dsf_step *s) { lm_work_reset_state(s->w, &s->m->cfg); }

static const dsf_step_backend cpu_backend = {
    .forward = cpu_forward,
    .backward = cpu_backward,
    .grads_to_host = cpu_none,
    .grads_from_host = cpu_none,
    .feedback_to_host = cpu_none,
    .feedback_from_host = cpu_none,
    .clip = cpu_clip,
    .update = cpu_update,
    .reset_state = cpu_reset_state,
    .sync = cpu_none,
    .fused = NULL,
};

// ---- CUDA: cuda/gpu.h (the parameters, moments and carried state live on the device) ----

static double gpu_forward(dsf_step *s, const dsf_batch *b) {
    return dsf_gpu_forward(s->gpu, b->x, b->y, b->T);
}

static void gpu_backward(dsf_step *s) { dsf_gpu_backward(s->gpu, s->method); }

static void gpu_grads_to_host(dsf_step *s) { dsf_gpu_get_grads(s->gpu, s->m->grads); }

static void gpu_grads_from_host(dsf_step *s) { dsf_gpu_set_grads(s->gpu, s->m->grads); }

static void gpu_feedback_to_host(dsf_step *s) { dsf_gpu_get_feedback(s->gpu, s->m->feedback); }

static void gpu_feedback_from_host(dsf_step *s) { dsf_gpu_set_feedback(s->gpu, s->m->feedback); }

static double gpu_clip(dsf_step *s) { return dsf_gpu_clip(s->gpu, s->clip); }

static void gpu_update(dsf_step *s) { dsf_gpu_optim_step(s->gpu, s->o); }

static void gpu_reset_state(dsf_step *s) {
    lm_work_reset_state(s->w, &s->m->cfg);  // the host's copies too, for checkpoints
    dsf_gpu_reset_state(s->gpu);
}

static void gpu_sync(dsf_step *s) {
    dsf_gpu_get_params(s->gpu, s->m->params);
    dsf_gpu_get_state(s->gpu, s->w->state);
    dsf_gpu_get_state_c(s->gpu, s->w->state_c);  // the LSTM's c (zeros otherwise)
    dsf_gpu_get_feedback(s->gpu, s->m->feedback);  // fit's re-estimates
    if (s->o->m) dsf_gpu_get_moments(s->gpu, s->o->m, s->o->v);
}

static int gpu_fused(dsf_step *s, const dsf_batch *b, dsf_step_result *r) {
    dsf_gpu_step(s->gpu, b->x, b->y, b->T, s->method, s->clip, s->o, &r->loss, &r->gnorm);
    return isfinite(r->loss) && isfinite(r->gnorm);
}

static const dsf_step_backend gpu_backend = {
    .forward = gpu_forward,
    .backward = gpu_backward,
    .grads_to_host = gpu_grads_to_host,
    .grads_from_host = gpu_grads_from_host,
    .feedback_to_host = gpu_feedback_to_host,
    .feedback_from_host = gpu_feedback_from_host,
    .clip = gpu_clip,
    .update = gpu_update,
    .reset_state = gpu_reset_state,
    .sync = gpu_sync,
    .fused = gpu_fused,
};

// ---- the step ----

int dsf_step_create(dsf_step *s, dsf_lm *m, dsf_lm_work *w, dsf_optim *o, dsf_gpu *gpu,
                    dsf_method meth, double clip) {
    *s = (dsf_step){.m = m, .w = w, .o = o, .gpu = gpu, .be = gpu ? &gpu_backend : &cpu_backend,
                    .method = meth, .clip = clip};
    return gpu ? 0 : lm_work_reserve(w, m, meth);
}

// Data-parallel: every rank's mean is over an equal share of the batch's streams,
// so the mean over the ranks of the losses and gradients is the whole batch's, and
// the clip sees the global norm. Padded sentences: each rank's mean is over its own
// counted targets, weighted by their share first. On a GPU the gradients go through
// the host (an MPI that reads device memory is not assumed).
static void all_reduce(dsf_step *s, const dsf_batch *b, dsf_step_result *r) {
    s->be->grads_to_host(s);
    if (b->counted_all > 0) {
        int64_t mine = 0;
        for (size_t i = 0; i < (size_t)b->T * s->w->B; i++) mine += b->y[i] != DSF_IGNORE;
        const float scale = (float)((double)mine * dist_size() / (double)b->counted_all);
        for (size_t i = 0; i < s->m->n; i++) s->m->grads[i] *= scale;
        r->loss *= scale;
    }
    r->wait_s = dist_wait();  // waiting apart, so that comm_s is the communication alone
    r->comm_s = dist_mean_floats(s->m->grads, s->m->n);
    r->loss = dist_mean(r->loss);
    s->be->grads_from_host(s);
}

int dsf_step_run(dsf_step *s, const dsf_batch *b, dsf_step_result *r) {
    dsf_lm *m = s->m;
    *r = (dsf_step_result){0};
    const int fit = s->method == DSF_METHOD_DSF && m->fb.kind == DSF_FEEDBACK_FIT;
    // fit: a re-estimate every fb.every steps, the first taken as it is
    if (m->fb.kind == DSF_FEEDBACK_FIT) {
        s->w->fit_now = s->step % m->fb.every == 0;
        s->w->fit_rate = s->step == 0 ? 1.0f : DSF_FIT_RATE;
        if (s->gpu) dsf_gpu_set_fit(s->gpu, s->w->fit_now, s->w->fit_rate);
    }
    s->step++;
    const int ranks = dist_size();
    int ok;
    if (ranks == 1 && s->be->fused) {
        ok = s->be->fused(s, b, r);
        goto done;
    }
    r->loss = s->be->forward(s, b);
    s->be->backward(s);
    if (ranks > 1) {
        // A fitted feedback is measured on each rank's own streams: the ranks go on
        // with the mean of their estimates (near one process's, not equal to it).
        if (fit && s->w->fit_now) {
            s->be->feedback_to_host(s);
            dist_mean_floats(m->feedback, (size_t)m->cfg.L * m->cfg.H);
            s->be->feedback_from_host(s);
        }
        all_reduce(s, b, r);
    }
    double t0 = dsf_prof_begin();
    r->gnorm = s->be->clip(s);
    ok = isfinite(r->loss) && isfinite(r->gnorm);
    if (ok) s->be->update(s);
    dsf_prof_end(DSF_PROF_OPTIM, t0);
done:
    if (!ok) r->bad = isfinite(r->loss) ? "gradient norm" : "loss";
    return ok;
}

void dsf_step_reset_state(dsf_step *s) { s->be->reset_state(s); }

void dsf_step_sync(dsf_step *s) { s->be->sync(s); }
