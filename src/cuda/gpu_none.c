// gpu_none.c: gpu.h in builds without CUDA: no device, and every entry point that
// needs one fails with the same line. (make CUDA=1 builds the .cu files instead.)
#include "gpu.h"

#define NO_CUDA "built without CUDA (make CUDA=1)"

int dsf_gpu_built(void) { return 0; }

int dsf_gpu_device_count(void) {
    dsf_error_set(NO_CUDA);
    return 0;
}

int dsf_gpu_select(int k) { return dsf_error_set(NO_CUDA); }

int dsf_gpu_check(const dsf_lm *m, dsf_method meth, dsf_scan_kind scan) {
    return dsf_error_set(NO_CUDA);
}

int dsf_gpu_create(dsf_gpu **out, const dsf_lm *m, const dsf_optim *opt, int B, int T,
                   dsf_scan_kind scan) {
    *out = NULL;
    return dsf_error_set(NO_CUDA);
}

int dsf_gpu_create_eval(dsf_gpu **out, const dsf_lm *m, int B, int T) {
    *out = NULL;
    return dsf_error_set(NO_CUDA);
}

int dsf_gpu_scan(float *e, const float *a, int T, int B, int H, int chunks) {
    return dsf_error_set(NO_CUDA);
}

int dsf_gpu_scan_fft(float *e, const float *a, int T, int B, int H) {
    return dsf_error_set(NO_CUDA);
}

double dsf_gpu_gemm_gflops(int M, int N, int K, int tb, int reps) {
    return dsf_error_set(NO_CUDA);
}

// Nothing can create a dsf_gpu here, so nothing can reach the rest.
void dsf_gpu_destroy(dsf_gpu *g) { DSF_ASSERT(g == NULL); }
const char *dsf_gpu_name(const dsf_gpu *g) { return "none"; }
double dsf_gpu_forward(dsf_gpu *g, const int32_t *x, const int32_t *y, int T) {
    DSF_ASSERT(0);
    return 0;
}
void dsf_gpu_backward(dsf_gpu *g, dsf_method meth) { DSF_ASSERT(0); }
double dsf_gpu_clip(dsf_gpu *g, double max_norm) {
    DSF_ASSERT(0);
    return 0;
}
void dsf_gpu_optim_step(dsf_gpu *g, dsf_optim *opt) { DSF_ASSERT(0); }
int dsf_gpu_step(dsf_gpu *g, const int32_t *x, const int32_t *y, int T, dsf_method meth,
                 double max_norm, dsf_optim *opt, double *loss, double *norm) {
    DSF_ASSERT(0);
    return -1;
}
int dsf_gpu_set_dropout(dsf_gpu *g, float p, dsf_rng *rng) {
    DSF_ASSERT(0);
    return -1;
}
void dsf_gpu_get_params(dsf_gpu *g, float *params) { DSF_ASSERT(0); }
void dsf_gpu_set_params(dsf_gpu *g, const float *params) { DSF_ASSERT(0); }
void dsf_gpu_get_grads(dsf_gpu *g, float *grads) { DSF_ASSERT(0); }
void dsf_gpu_set_grads(dsf_gpu *g, const float *grads) { DSF_ASSERT(0); }
void dsf_gpu_set_streams(dsf_gpu *g, int64_t B_all, int64_t first, int64_t stride) {
    DSF_ASSERT(0);
}
void dsf_gpu_get_state(dsf_gpu *g, float *state) { DSF_ASSERT(0); }
void dsf_gpu_set_state(dsf_gpu *g, const float *state) { DSF_ASSERT(0); }
void dsf_gpu_get_state_c(dsf_gpu *g, float *state_c) { DSF_ASSERT(0); }
void dsf_gpu_set_state_c(dsf_gpu *g, const float *state_c) { DSF_ASSERT(0); }
void dsf_gpu_reset_state(dsf_gpu *g) { DSF_ASSERT(0); }
void dsf_gpu_set_feedback(dsf_gpu *g, const float *a) { DSF_ASSERT(0); }
void dsf_gpu_get_feedback(dsf_gpu *g, float *a) { DSF_ASSERT(0); }
void dsf_gpu_set_fit(dsf_gpu *g, int now, float rate) { DSF_ASSERT(0); }
void dsf_gpu_get_moments(dsf_gpu *g, float *m, float *v) { DSF_ASSERT(0); }
void dsf_gpu_profile(dsf_gpu *g, int on) { DSF_ASSERT(0); }
void dsf_gpu_profile_ms(dsf_gpu *g, double *ms) { DSF_ASSERT(0); }
