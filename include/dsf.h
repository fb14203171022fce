// dsf.h: the library behind the `dsf` command, in one include.
//
// dsf trains recurrent language models with three ways of computing the
// gradient, which differ only in how the state gradient δ_t = dL/dh_t is
// carried backwards through time:
//
//   DSF_METHOD_BPTT  δ_t = e_t + J_{t+1}ᵀ δ_{t+1}   exact back-propagation through time
//   DSF_METHOD_FT    δ_t = e_t                      fully truncated
//   DSF_METHOD_DSF   δ_t = e_t + a ⊙ δ_{t+1}         diagonal state feedback (a fixed)
//
// A training step, with the pieces this header brings in (error handling left
// out; every function that can fail returns non-zero and sets dsf_error()):
//
//   dsf_corpus c;                                  // data/corpus.h
//   corpus_load(&c, "path/to/ptb", DSF_LEVEL_WORD);
//   dsf_lm_config cfg = {.V = vocab_size(c.vocab), .E = 200, .H = 200, .L = 2};
//   dsf_lm m;                                      // model/lm.h
//   lm_create(&m, &cfg);
//   dsf_rng rng;
//   dsf_rng_seed(&rng, 1);
//   lm_init_params(&m, &rng);                      // PyTorch's initialisation
//   dsf_feedback fb;                               // grad/feedback.h
//   dsf_feedback_parse("linspace", &fb);           // A = diag(linspace(0, 1, H))
//   lm_set_feedback(&m, &fb, &rng, 35);            // every layer (the LSTM's a_h, a_c)
//
//   dsf_lm_work w;                                 // activations for B = 20, T = 35
//   lm_work_create(&w, &cfg, 20, 35);
//   dsf_batcher bt;                                // data/batch.h
//   batcher_init(&bt, &c.split[DSF_SPLIT_TRAIN], 20, 35);
//   dsf_optim o;                                   // optim/optim.h
//   optim_create(&o, DSF_OPTIM_SGD, 20.0f, m.n);
//   dsf_step s;                                    // train/step.h: forward, backward,
//   dsf_step_create(&s, &m, &w, &o, NULL,          // clip 0.25, update (NULL: the CPU)
//                   DSF_METHOD_DSF, 0.25);
//   int32_t x[35 * 20], y[35 * 20];
//   for (int64_t pos = 0; pos < bt.L - 1; pos += 35) {
//       int64_t T = batcher_get(&bt, pos, 35, x, y);
//       dsf_step_result r;                         // state carried in w from step to step
//       dsf_step_run(&s, &(dsf_batch){.x = x, .y = y, .T = (int)T}, &r);  // r.loss, r.gnorm
//   }
//
// The pieces of a step, for a loop of your own: lm_forward, lm_backward (after
// lm_work_reserve), optim_clip, optim_step.
//
// Installed (make install PREFIX=P): cc prog.c $(pkg-config --cflags --libs dsf)
// with PKG_CONFIG_PATH=P/lib/pkgconfig (--static for libdsf.a, whose libraries
// pkg-config lists); in the tree: -Iinclude -Isrc and build/libdsf.a with the
// Makefile's LDLIBS. tests/api_tutorial.c is this tutorial as a program.
#ifndef DSF_H
#define DSF_H

#include "cell/gru.h"
#include "core/common.h"
#include "core/gemm.h"
#include "data/batch.h"
#include "data/corpus.h"
#include "data/tasks.h"
#include "data/vocab.h"
#include "grad/feedback.h"
#include "grad/method.h"
#include "grad/scan.h"
#include "io/checkpoint.h"
#include "io/safetensors.h"
#include "model/evaluate.h"
#include "model/lm.h"
#include "model/rnn_layer.h"
#include "optim/optim.h"
#include "train/step.h"

#endif
