// prof.c: see prof.h.
#include "prof.h"

#include <string.h>

int dsf_prof_enabled;
double dsf_prof_seconds[DSF_PROF_NPHASES];

static const char *const prof_names[DSF_PROF_NPHASES] = {
    "forward recurrence", "decoder+softmax", "state-gradient recurrence", "parameter gradients",
    "optimizer"};

void dsf_prof_reset(int enabled) {
    dsf_prof_enabled = enabled;
    memset(dsf_prof_seconds, 0, sizeof dsf_prof_seconds);
}

const char *dsf_prof_name(dsf_prof_phase p) {
    return (unsigned)p < DSF_PROF_NPHASES ? prof_names[p] : "unknown";
}
