// method.c: see method.h. The whole difference between the methods is the
// branch in gru_layer_backward; everything after it is shared.
#include "method.h"

#include <string.h>

#include "core/common.h"

static const char *const method_names[] = {"bptt", "ft", "dsf"};

const char *dsf_method_name(dsf_method m) { return method_names[m]; }

int dsf_method_parse(const char *s, dsf_method *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, method_names[i]) == 0) {
            *out = (dsf_method)i;
            return 0;
        }
    return dsf_error_set("unknown method '%s' (expected bptt, ft or dsf)", s);
}

void gru_layer_backward(dsf_method m, dsf_scan_kind scan, const float *a, const gru_weights *w, const float *x,
                        const gru_cache *cache, float *e, gru_backward_work *work, gru_grads *g,
                        float *dx, int T, int B, int I, int H) {
    const size_t BH = (size_t)B * H, BG = (size_t)B * 3 * H;
    if (m == DSF_METHOD_BPTT) {
        // Exact: the carry J_{t+1}ᵀ δ_{t+1} needs step t+1's gate gradients, so
        // the local backward runs inside the sequential loop.
        for (int t = T - 1; t >= 0; t--) {
            float *d = e + t * BH;
            if (t < T - 1)
                for (size_t k = 0; k < BH; k++) d[k] += work->carry[k];
            gru_backward_local(d, cache->h + t * BH, cache->gates + t * BG, cache->q + t * BH,
                               work->gi + t * BG, work->gh + t * BG, B, H);
            if (t > 0)
                gru_backward_jt(w, d, cache->gates + t * BG, work->gh + t * BG, work->carry, B, H);
        }
    } else {
        if (m == DSF_METHOD_DSF) DSF_ASSERT(dsf_scan_stationary(scan, e, a, T, B, H) == 0);
        // ft: δ = e as it is. With δ known at every step, the rest is parallel over time.
        gru_backward_local(e, cache->h, cache->gates, cache->q, work->gi, work->gh, T * B, H);
    }
    gru_backward_params(w, x, cache, work->gi, work->gh, g, dx, T, B, I, H);
}
