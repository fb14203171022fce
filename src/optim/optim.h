// optim.h: SGD, AdamW and Adam over the flat parameter buffer, global-norm
// clipping and the learning-rate schedules.
//
//   adamw  decoupled weight decay on the matrices:  p ← p(1 − lr·wd) − lr·m̂/(√v̂ + ε)
//   adam   torch.optim.Adam's coupled L2 on every tensor: g ← g + wd·p, then Adam
//          (the authors' recipe)
//
// Schedules (the rate of step t, t = steps taken before it, from 0):
//   auto    SGD: constant (train divides it on plateaus); AdamW and Adam: linear
//           warm-up over `warmup` steps, then cosine to min_lr_ratio·lr at `total`
//   const   lr
//   step    lr·gamma^⌊t / every⌋  (torch's StepLR stepped once per step)
//   cosine  torch's LinearLR from warmup_start·lr over `warmup` steps, then
//           CosineAnnealingLR to min_lr_ratio·lr at `total` (SequentialLR)
#ifndef DSF_OPTIM_H
#define DSF_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "model/lm.h"

typedef enum { DSF_OPTIM_SGD, DSF_OPTIM_ADAMW, DSF_OPTIM_ADAM } dsf_optim_kind;
typedef enum { DSF_SCHED_AUTO, DSF_SCHED_CONST, DSF_SCHED_STEP, DSF_SCHED_COSINE } dsf_sched_kind;

// A --schedule value: auto, const, step:E,G (every E epochs, times G) or cosine.
typedef struct {
    dsf_sched_kind kind;
    double every_epochs, gamma;  // step
} dsf_schedule;
int dsf_schedule_parse(const char *s, dsf_schedule *out);
void dsf_schedule_format(const dsf_schedule *s, char *buf, size_t n);

typedef struct {
    dsf_optim_kind kind;
    float lr;            // SGD: the current rate (divided on plateaus); AdamW, Adam: the peak
    float beta1, beta2, eps, weight_decay;
    dsf_sched_kind sched;  // auto unless set
    int64_t warmup;      // warm-up steps (auto, cosine)
    float warmup_start;  // cosine: the warm-up's first factor (torch's start_factor)
    int64_t total;       // total steps of the run (end of the cosine)
    float min_lr_ratio;  // the cosine ends at lr * min_lr_ratio
    int64_t step_every;  // step: steps between multiplications by gamma
    float gamma;
    int64_t t;           // steps taken
    size_t n;
    float *m, *v;        // (n) AdamW and Adam moments, NULL for SGD
} dsf_optim;

const char *dsf_optim_name(dsf_optim_kind k);
int dsf_optim_parse(const char *s, dsf_optim_kind *out);

// Defaults for kind: β = (0.9, 0.999), ε = 1e-8, weight decay 0.01, schedule auto.
int optim_create(dsf_optim *o, dsf_optim_kind kind, float lr, size_t n);
void optim_destroy(dsf_optim *o);
// The learning rate the next step will use.
float optim_lr(const dsf_optim *o);
// One update of m's parameters from m's gradients.
void optim_step(dsf_optim *o, dsf_lm *m);

// The global L2 norm of g (n), summed in a fixed order (the same for any thread
// count); if it exceeds max_norm > 0, g is scaled by max_norm / (norm + 1e-6) as
// torch.nn.utils.clip_grad_norm_. Returns the norm before clipping.
double optim_clip(float *g, size_t n, double max_norm);

#endif
