// prof.h: wall time per phase of a training step, for `dsf bench`.
//
// Off by default. When off, a timer call is one test of a global flag: no clock
// is read. Not thread-safe by design: the phases are entered by the thread that
// drives the step, never inside a parallel region.
//
//   double t = dsf_prof_begin();
//   ... the phase ...
//   dsf_prof_end(DSF_PROF_DECODER, t);
#ifndef DSF_PROF_H
#define DSF_PROF_H

#include "common.h"

typedef enum {
    DSF_PROF_FORWARD,     // embedding lookup and the forward recurrence of every layer
    DSF_PROF_DECODER,     // decoder GEMMs, softmax cross-entropy and their gradients
    DSF_PROF_STATE_GRAD,  // the state-gradient recurrence and the local gate derivatives
    DSF_PROF_PARAM_GRAD,  // parameter and input gradients of the layers, embedding gradient
    DSF_PROF_OPTIM,       // gradient clipping and the optimizer update
    DSF_PROF_NPHASES
} dsf_prof_phase;

extern int dsf_prof_enabled;
extern double dsf_prof_seconds[DSF_PROF_NPHASES];

// Turns timing on or off and zeroes the accumulated times.
void dsf_prof_reset(int enabled);
const char *dsf_prof_name(dsf_prof_phase p);

static inline double dsf_prof_begin(void) { return dsf_prof_enabled ? dsf_now() : 0.0; }

static inline void dsf_prof_end(dsf_prof_phase p, double t0) {
    if (dsf_prof_enabled) dsf_prof_seconds[p] += dsf_now() - t0;
}

#endif
