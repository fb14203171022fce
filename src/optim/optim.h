// optim.h: SGD and AdamW over the flat parameter buffer, global-norm clipping
// and the learning-rate schedules.
#ifndef DSF_OPTIM_H
#define DSF_OPTIM_H

#include <stddef.h>
#include <stdint.h>

#include "model/lm.h"

typedef enum { DSF_OPTIM_SGD, DSF_OPTIM_ADAMW } dsf_optim_kind;

typedef struct {
    dsf_optim_kind kind;
    float lr;            // SGD: the current rate (divided on plateaus); AdamW: the peak
    float beta1, beta2, eps, weight_decay;
    int64_t warmup;      // AdamW: linear warm-up steps, then cosine decay
    int64_t total;       // AdamW: total steps of the run (end of the cosine)
    float min_lr_ratio;  // AdamW: the cosine ends at lr * min_lr_ratio
    int64_t t;           // steps taken
    size_t n;
    float *m, *v;        // (n) AdamW moments, NULL for SGD
} dsf_optim;

const char *dsf_optim_name(dsf_optim_kind k);
int dsf_optim_parse(const char *s, dsf_optim_kind *out);

// Defaults for kind: AdamW β = (0.9, 0.999), ε = 1e-8, weight decay 0.01.
int optim_create(dsf_optim *o, dsf_optim_kind kind, float lr, size_t n);
void optim_destroy(dsf_optim *o);
// The learning rate the next step will use.
float optim_lr(const dsf_optim *o);
// One update of m's parameters from m's gradients.
void optim_step(dsf_optim *o, dsf_lm *m);

// The global L2 norm of g (n), summed in a fixed order (the same for any thread
// count); if it exceeds max_norm > 0, g is scaled by max_norm / (norm + 1e-6) as
// torch.nn.utils.clip_grad_norm_. Returns the norm before clipping.
double grad_clip(float *g, size_t n, double max_norm);

#endif
