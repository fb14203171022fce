// stages.c: see stages.h.
#include "stages.h"

#include <sched.h>
#include <stdatomic.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "core/panel.h"

void dsf_stages_init(dsf_stages *st, long S, long n) {
    atomic_init(&st->next, 0);
    atomic_init(&st->done, 0);
    st->S = S;
    st->n = n;
}

static inline void cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

long dsf_stages_next(dsf_stages *st) {
    const long k = atomic_fetch_add_explicit(&st->next, 1, memory_order_relaxed);
    if (k >= st->S * st->n) return -1;
    const long ready = k / st->n * st->n;  // the tasks of every earlier stage
    // Spin a while (a stage is tens of microseconds), then give the core away:
    // the thread we wait for may need it.
    for (long spins = 0; atomic_load_explicit(&st->done, memory_order_acquire) < ready; spins++) {
        if (spins < 4096)
            cpu_relax();
        else
            sched_yield();
    }
    return k;
}

void dsf_stages_done(dsf_stages *st) {
    atomic_fetch_add_explicit(&st->done, 1, memory_order_release);
}

int dsf_step_threads(int B, int H) {
#ifdef _OPENMP
    if ((double)B * H * H < 1e5 || omp_in_parallel()) return 1;
    int nt = omp_get_max_threads(), np = dsf_panel_count(H);
    return nt < np ? nt : np;
#else
    (void)B, (void)H;
    return 1;
#endif
}
