// gpu.h: the CUDA backend (make CUDA=1): training steps of a dsf_lm on one GPU.
//
// A dsf_gpu holds a copy of a CPU model on the device: parameters, gradients
// and AdamW moments in one flat buffer each, with m->params' layout (so copying
// one back is one memcpy), the feedback vectors, the activations for batch B and
// up to T steps, and the recurrent state carried from one step to the next. A
// training step uploads its tokens in one transfer and reads back two scalars
// (loss and gradient norm); nothing else crosses the bus until the caller asks
// for parameters, gradients, moments or state (evaluation, checkpoints, tests):
//
//   dsf_gpu *g;
//   if (dsf_gpu_create(&g, &m, &opt, B, T, DSF_SCAN_SEQ)) { report dsf_error() }
//   for (each batch) {
//       double loss, norm;
//       dsf_gpu_step(g, x, y, T, DSF_METHOD_DSF, 0.25, &opt, &loss, &norm);
//   }
//   dsf_gpu_get_params(g, m.params);   // then save m as usual
//   dsf_gpu_destroy(g);
//
// How it computes (the same mathematics as the CPU backend, model/lm.c):
//   forward   embedding gather; per layer one cuBLAS GEMM for the input projections
//             of all T·B rows, then per step one GEMM h' W_hhᵀ and one fused kernel
//             for the gates; decoder GEMM; one fused softmax-cross-entropy kernel
//             that leaves dlogits = (softmax − onehot)/n in place (n: the rows
//             whose target counts).
//   backward  decoder GEMMs; per layer the state-gradient recurrence of the method:
//               bptt  per step one fused kernel (δ_t = e_t + δ_{t+1} ⊙ z_{t+1} + carry,
//                     then the local gate gradients) and one GEMM carry = gh_t W_hh;
//               ft    nothing;
//               dsf   the chunked reverse scan δ_t = e_t + a ⊙ δ_{t+1} (parallel over
//                     time and channels), then one local kernel over all T·B rows;
//             then the parameter and input gradients as GEMMs over all T·B rows and
//             bias column sums; the embedding gradient is summed per distinct token
//             (the host sorts the tokens when it uploads them): no atomics, so a
//             step is deterministic.
//   update    global norm (a fixed-order reduction in double), clip, SGD or AdamW
//             with optim/optim.c's formulas and schedule.
//
// Implemented: the GRU, the Elman cell and the LSTM (its backward as
// lstm_layer_backward: BPTT carries δh and δc step by step; DSF scans δh with
// a_h, then δc's local part with a_c), --arch stack (tied or not) and --arch
// block (LayerNorm, GELU MLP and residual kernels in block.cu), with dropout
// (the CPU's masks, placed in the whole batch by dsf_gpu_set_streams);
// bptt, ft and dsf with a feedback that is one vector a per layer (uniform,
// zero, identity, const, ssm; fit, re-estimated on the device), diag (each step's exact Jacobian
// diagonal by one kernel, then the chunked scan with a varying a) or lowrank
// (a kernel per batch row, sequential over time, for seq and blelloch alike), with or
// without correction sweeps (+K: the local kernel over all rows, one GEMM for
// Jᵀδ's W_hh part, the right side, the scan, K times); --scan blelloch (the
// chunked scan, 16 chunks of time), seq (the same kernel with one chunk: a
// reverse loop per channel) and fft (cuFFT along time of all B·H channels,
// buffers of about 4·T·B·H floats and cuFFT's work area made with the model;
// fixed vectors only); they agree up to rounding. What the CPU refuses too (fft
// with diag or lowrank, lowrank for the LSTM) dsf_gpu_check refuses with one line.
//
// DSF_CUDA_GRAPHS=1 in the environment (read by dsf_gpu_create) captures each
// layer's forward loop and BPTT loop over the full T steps into a CUDA graph at
// their first run and replays it after (one launch instead of 2T; the same
// bits); the name then ends in ", CUDA graphs".
//
// Every function that can fail for a reason a user can cause (no device, sizes,
// memory, an unsupported model) returns -1 with dsf_error() set. A failing CUDA
// or cuBLAS call after that is an internal error: it prints file:line, the call
// and the error string, and aborts. DSF_CUDA_SYNC=1 in the environment makes
// every kernel launch synchronous, so that such an error names its kernel.
#ifndef DSF_GPU_H
#define DSF_GPU_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {  // the project's C headers too: the .cu files call into the C library
#endif

#include "core/prof.h"
#include "grad/method.h"
#include "model/lm.h"
#include "optim/optim.h"

typedef struct dsf_gpu dsf_gpu;

// 1 in builds with CUDA (make CUDA=1), else 0.
int dsf_gpu_built(void);
// The number of CUDA devices; 0 with the reason in dsf_error() when there is
// none (or no driver, or a build without CUDA).
int dsf_gpu_device_count(void);
// Makes device k modulo the count the one that dsf_gpu_create uses from then on
// (default 0; data-parallel training: the rank on the node). Returns its index,
// or -1 with the error set when there is no device.
int dsf_gpu_select(int k);

// 0 if the backend can train m with meth, feedback m->fb and scan; else -1 and
// dsf_error() says what is not implemented on the GPU. Needs no device.
int dsf_gpu_check(const dsf_lm *m, dsf_method meth, dsf_scan_kind scan);

// Copies m's parameters and feedback, and opt's AdamW moments when opt is an
// AdamW optimizer (opt may be NULL: no optimizer), to device 0, and allocates
// activations for batch B and at most T steps. The carried state starts at zero.
int dsf_gpu_create(dsf_gpu **out, const dsf_lm *m, const dsf_optim *opt, int B, int T,
                   dsf_scan_kind scan);
// The same for evaluation: the buffers of the forward pass alone (no gradients,
// optimizer or backward scratch); dsf_gpu_backward and dsf_gpu_step must not be
// called on it.
int dsf_gpu_create_eval(dsf_gpu **out, const dsf_lm *m, int B, int T);
void dsf_gpu_destroy(dsf_gpu *g);
// "NVIDIA H100 80GB HBM3 (sm_90, 79.1 GiB)"
const char *dsf_gpu_name(const dsf_gpu *g);

// Forward pass over T steps of tokens x, targets y (T,B) (as lm_forward): starts
// from the carried state and leaves the final state there; returns the mean
// cross-entropy over the targets that are not −1 (ignored: no loss, no gradient;
// 0 if all are) (waits for the device).
double dsf_gpu_forward(dsf_gpu *g, const int32_t *x, const int32_t *y, int T);
// Gradient of the last forward pass into the device gradients (overwritten),
// under meth (checked by dsf_gpu_check). Does not wait.
void dsf_gpu_backward(dsf_gpu *g, dsf_method meth);
// The global L2 norm of the gradients; if it exceeds max_norm > 0 they are scaled
// as optim_clip does. Returns the norm before clipping (waits for the device).
double dsf_gpu_clip(dsf_gpu *g, double max_norm);
// One update with opt's kind, rate schedule and hyperparameters (opt->t is
// advanced as optim_step does; opt->m and opt->v are not used: the moments live
// on the device). Does not wait.
void dsf_gpu_optim_step(dsf_gpu *g, dsf_optim *opt);
// forward, backward, clip (max_norm; 0: none) and, when the loss and the norm
// are finite, the update: train's step. Returns 0, or 1 when the step was skipped
// for a non-finite loss or norm. One upload of tokens, one wait.
int dsf_gpu_step(dsf_gpu *g, const int32_t *x, const int32_t *y, int T, dsf_method meth,
                 double max_norm, dsf_optim *opt, double *loss, double *norm);

// Dropout (rate p in [0, 1)) on the embedding and on every layer's output in
// the training steps that follow, as lm_forward with w->dropout = p and w->rng =
// rng: the same draws from rng (one key per site and step, which the host draws
// and the kernels expand), so the same masks. 0 or -1 (GPU memory) with the
// error set; p = 0 turns it off. dsf_gpu_forward and dsf_gpu_step use it alike.
int dsf_gpu_set_dropout(dsf_gpu *g, float p, dsf_rng *rng);
// Where the instance's B streams lie in the whole batch: streams first, first
// + stride, … of B_all (data-parallel training, lm's drop_B, drop_first and
// drop_stride), which places the dropout masks as dropout_forward_streams
// does. Default B, 0, 1.
typedef struct {
    int64_t B_all, first, stride;
} dsf_gpu_streams;
void dsf_gpu_set_streams(dsf_gpu *g, int64_t B_all, int64_t first, int64_t stride);

// The fit feedback (GRU): whether the next backward pass under dsf re-estimates
// each layer's a on the device, and with what weight (lm's fit_now, fit_rate).
void dsf_gpu_set_fit(dsf_gpu *g, int now, float rate);

// Copies between the device and host buffers of the model's layouts (each waits).
void dsf_gpu_get_params(dsf_gpu *g, float *params);        // (n)
void dsf_gpu_set_params(dsf_gpu *g, const float *params);  // (n)
void dsf_gpu_get_grads(dsf_gpu *g, float *grads);          // (n)
void dsf_gpu_set_grads(dsf_gpu *g, const float *grads);    // (n): data-parallel training's means
void dsf_gpu_get_state(dsf_gpu *g, float *state);          // (L,B,H)
void dsf_gpu_set_state(dsf_gpu *g, const float *state);    // (L,B,H)
// The LSTM's carried c (starts at zero; the other cells do not use it).
void dsf_gpu_get_state_c(dsf_gpu *g, float *state_c);      // (L,B,H)
void dsf_gpu_set_state_c(dsf_gpu *g, const float *state_c);  // (L,B,H)
// Zeroes the carried state, h and c (does not wait).
void dsf_gpu_reset_state(dsf_gpu *g);
void dsf_gpu_set_feedback(dsf_gpu *g, const float *a);     // (L,S·H), m->feedback's layout
void dsf_gpu_get_feedback(dsf_gpu *g, float *a);           // (L,S·H): what fit has made of it
// AdamW only (both must be NULL otherwise): (n) each.
void dsf_gpu_get_moments(dsf_gpu *g, float *m, float *v);

// ---- for benchmarks and tests ----

// Phase timing (dsf bench): with on, every step records CUDA events where its
// phases begin (core/prof.h's: forward, decoder, state-grad, param-grad,
// optimizer) and waits at its end to add up their milliseconds; off by default
// (no events, no waiting). dsf_gpu_profile zeroes the sums; dsf_gpu_profile_ms
// fills ms (DSF_PROF_NPHASES) with them.
void dsf_gpu_profile(dsf_gpu *g, int on);
void dsf_gpu_profile_ms(dsf_gpu *g, double *ms);

// The best of reps runs of a row-major C (M,N) = A (M,K) op(B) by cuBLAS on device
// 0, in GFLOP/s (as bench.c's CPU reference); -1 with the error set when there is
// no device.
double dsf_gpu_gemm_gflops(int M, int N, int K, int tb, int reps);

// The reverse scan δ_t = e_t + a ⊙ δ_{t+1} of e (T,B,H) in place, a (H), on the
// device, with the time axis cut into `chunks` pieces (1: a plain reverse loop per
// channel). Returns -1 with the error set when there is no device.
int dsf_gpu_scan(float *e, const float *a, int T, int B, int H, int chunks);
// The same scan by the fft scan (cuFFT), as --scan fft runs it.
int dsf_gpu_scan_fft(float *e, const float *a, int T, int B, int H);

#ifdef __cplusplus
}
#endif

#endif
