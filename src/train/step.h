// step.h: one training step (forward, backward, all-reduce, clip, update), the
// same for `dsf train`, `dsf classify`, `dsf task` and `dsf bench`, on either
// backend (docs/DESIGN.md §1, "One training step").
//
//   batch ──> dsf_step_run ──> metrics (loss, gradient norm, applied or skipped)
//
// A backend (the CPU's lm_forward/lm_backward/optim_step, or the CUDA backend's
// dsf_gpu_*) answers the few calls the step makes; data-parallel training (MPI)
// is a layer around either: the ranks' gradients, losses and fitted feedback
// are averaged between the backward pass and the clip. One process on a GPU
// runs the whole step on the device in one call (dsf_gpu_step).
//
//   dsf_step s;
//   dsf_step_create(&s, &m, &w, &opt, NULL, DSF_METHOD_DSF, 0.25);
//   for (...) {
//       dsf_batch b = {.x = x, .y = y, .T = T};
//       dsf_step_result r;
//       if (!dsf_step_run(&s, &b, &r)) ...   // non-finite: nothing was updated
//   }
#ifndef DSF_STEP_H
#define DSF_STEP_H

#include <stdint.h>

#include "cuda/gpu.h"
#include "model/lm.h"
#include "optim/optim.h"

typedef struct {
    const int32_t *x;   // (T,B) tokens, or NULL with xf
    const float *xf;    // (T,B,E) continuous inputs (cfg.inputs; CPU only), or NULL
    const int32_t *y;   // (T,B) targets, DSF_IGNORE where none
    int T;
    // Padded sentences in data-parallel training: the whole batch's counted
    // targets (every rank's), so that each rank's mean is weighted by its share.
    // 0: the ranks' shares count alike (streams, or one process).
    int64_t counted_all;
} dsf_batch;

typedef struct {
    double loss;    // the batch's mean cross-entropy (over the ranks)
    double gnorm;   // the global gradient norm before clipping
    double comm_s;  // seconds in the gradient all-reduce (data-parallel only)
    double wait_s;  // seconds waiting for the slowest rank before it
    const char *bad;  // NULL, or what was not finite: "loss" or "gradient norm"
} dsf_step_result;

typedef struct dsf_step_backend dsf_step_backend;

typedef struct {
    dsf_lm *m;
    dsf_lm_work *w;   // the CPU's activations; on a GPU, its host copies of the state
    dsf_optim *o;
    dsf_gpu *gpu;     // NULL: the CPU
    const dsf_step_backend *be;
    dsf_method method;
    double clip;      // max gradient norm; 0: none
    int64_t step;     // steps run (the fit feedback's schedule counts them; a
                      // resumed run sets it to the steps done before)
} dsf_step;

// Binds the step to a model, its work area (the CPU's; on a GPU it holds the
// state's host copies), an optimizer and a backend (gpu NULL: the CPU), and
// allocates what meth needs in w (lm_work_reserve). 0, or -1 with the error set.
int dsf_step_create(dsf_step *s, dsf_lm *m, dsf_lm_work *w, dsf_optim *o, dsf_gpu *gpu,
                    dsf_method meth, double clip);
// One step on batch b. Returns 1 when the update was made, 0 when the loss or
// the gradient norm was not finite (nothing updated; r->bad says which). The state
// is carried from the previous step unless dsf_step_reset_state was called.
int dsf_step_run(dsf_step *s, const dsf_batch *b, dsf_step_result *r);
// Zeroes the carried state (h, and the LSTM's c).
void dsf_step_reset_state(dsf_step *s);
// Brings the host's copies up to date (on a GPU: parameters, carried state,
// fitted feedback, Adam moments), for evaluation and checkpoints.
void dsf_step_sync(dsf_step *s);

#endif
