// train.h: what the two halves of `dsf train` share: the options, the trainer
// (everything a run needs to go on), and the setup's entry points
// (train_setup.c); the loop, evaluation and checkpoints are train.c's.
#ifndef DSF_CLI_TRAIN_H
#define DSF_CLI_TRAIN_H

#include <stdio.h>

#include "cli.h"
#include "cuda/gpu.h"
#include "data/batch.h"
#include "dist/dist.h"
#include "train/step.h"

typedef struct {
    const char *arch;
    int mlp;
    const char *data, *level, *cell, *method, *feedback, *scan, *optim, *save, *resume, *log, *init,
        *device, *batching, *schedule, *recipe;
    int layers, emb, hidden, batch, seq, eval_batch, threads, log_every, max_bad, evals;
    int64_t epochs, steps, warmup, stop_at;
    double lr, clip, weight_decay, dropout, init_std, warmup_ratio;
    int64_t seed;
    int no_test, tie, untied, block_proj;
} train_opts;

// Steps already completed and where the data stands: everything needed to go on.
typedef struct {
    dsf_lm m;
    dsf_lm_work w, ew;  // training and evaluation activations
    dsf_optim o;
    dsf_run run;
    dsf_rng rng;
    dsf_corpus corpus;
    dsf_batcher bt;       // stream batching
    dsf_seq_batcher sb;   // sentence batching (seqs set)
    int seqs;
    float *best;        // parameters with the best validation loss
    double best_seen;   // that loss, counting evaluations in the middle of an epoch
    FILE *log;
    int log_errno;        // a write to the log failed (errno), and the run stops
    double t0;
    int root;             // rank 0 alone prints, logs and writes checkpoints
    dist_streams share;   // this rank's training streams (dist_rows)
    float *state_all;     // (L,B,H) the state of every stream, on rank 0, for checkpoints
    double comm_s, wait_s, step_s; // seconds in the gradient all-reduce, in waiting for
                                   // the slowest rank before it, and in whole steps
    dsf_gpu *gpu;         // --device cuda: the steps run there; NULL on the CPU
    dsf_gpu *egpu;        // --device cuda: evaluation runs there (batch --eval-batch)
    dsf_step step;        // the training step, on the CPU or tr->gpu
} trainer;

int64_t train_steps_per_epoch(const trainer *tr);
// The run from the flags, or from --resume's checkpoint (flags given must agree):
// model, data, optimizer, work areas, this rank's streams. 0, or -1 with the error set.
int train_setup(trainer *tr, train_opts *o, arg_spec *specs, int nspecs);
// --device cuda: the model, its moments and its carried state copied to the GPU.
int train_gpu_setup(trainer *tr);
// --recipe: the defaults of a published recipe, for the flags not given.
int train_apply_recipe(train_opts *o, const arg_spec *specs, int n);

#endif
