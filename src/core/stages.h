// stages.h: the threads of a recurrence. A pass is S stages (the time steps) of n
// independent tasks each (slices of the hidden units), and every task of stage s
// needs every task of stage s−1 finished.
//
// Tasks are claimed in order from one shared counter, and a task waits only for
// the stage before its own. So a thread that is not running (another process has
// its core) holds the others up only while it holds a task, where a fixed split
// with a barrier a step would stall every step until it ran again. Which thread
// runs which task does not change any result.
//
//   dsf_stages st;
//   dsf_stages_init(&st, S, n);
//   #pragma omp parallel
//   for (long k; (k = dsf_stages_next(&st)) >= 0; dsf_stages_done(&st))
//       work(k / n, k % n);
#ifndef DSF_STAGES_H
#define DSF_STAGES_H

typedef struct {
    _Atomic long next, done;
    long S, n;
} dsf_stages;

void dsf_stages_init(dsf_stages *st, long S, long n);
// The next task, stage·n + slice, once its stage may start; −1 when none is left.
long dsf_stages_next(dsf_stages *st);
// Marks the task last returned to this thread as finished.
void dsf_stages_done(dsf_stages *st);

// Threads for a recurrence over B rows of H units split into panels of
// DSF_PANEL units (core/panel.h): 1 when one step is too small to be worth the
// threads' handoffs (B·H² < 1e5) or when already inside a parallel region, else
// the available threads, at most one per panel.
int dsf_step_threads(int B, int H);

#endif
