// checkpoint.h: a training run in one safetensors file (docs/DESIGN.md §7).
//
// Tensors: the model under PyTorch's names (lm.h), rnn.feedback_l{k} (S·H: the
// LSTM's a_h then a_c) (and for a lowrank feedback rnn.feedback_u_l{k},
// rnn.feedback_v_l{k} (H,r)), the vocabulary as vocab.offsets (V+1, I64) and
// vocab.bytes (U8), the Adam or AdamW moments as optim.exp_avg.<name> and
// optim.exp_avg_sq.<name>, the carried recurrent state as state.h_l{k} (B,H)
// (state.c_l{k} for the LSTM) and the RNG as rng.state (4, I64).
// The configuration and the position of the run are __metadata__ strings
// "dsf.*". A model-only file (as `dsf grad --init` takes) holds the model
// tensors alone, optionally with the feedback.
#ifndef DSF_CHECKPOINT_H
#define DSF_CHECKPOINT_H

#include "data/corpus.h"
#include "data/vocab.h"
#include "grad/method.h"
#include "io/safetensors.h"
#include "model/lm.h"
#include "optim/optim.h"

// What a run is and where it stands: everything besides tensors that resume needs.
typedef struct {
    char cell[16];
    dsf_level level;
    dsf_method method;
    char feedback[64];     // canonical --feedback spelling
    dsf_scan_kind scan;
    dsf_optim_kind optim;
    int batch, seq, eval_batch;
    uint64_t seed;
    double clip, base_lr;
    double weight_decay;   // AdamW
    double dropout;        // training dropout rate (0: none)
    int64_t warmup;        // AdamW warm-up steps
    int64_t total_steps;   // steps the run was asked for
    int64_t step;          // steps taken
    int64_t epoch;         // completed epochs
    int64_t epoch_pos;     // steps taken in the current epoch
    int64_t tokens;        // counted training targets so far (step·batch·seq when not stored)
    double lr;             // the SGD rate now (after plateau divisions)
    double best_val;       // best validation loss so far (INFINITY when none)
    int64_t optim_t;
    int world_size;        // processes that trained it (src/dist); 1 when not stored
    dsf_unit unit;         // stream or sentence batching (stream when not stored)
    char schedule[48];     // canonical --schedule spelling ("auto" when not stored)
    int evals;             // validations spread over the run (0: one per epoch)
    double init_std;       // --init-std (0: PyTorch's initialisation)
    char task[16];         // `dsf classify`: "seq" or "perm" (empty for a language model)
    int64_t limit;         // `dsf classify --limit`: images of each split used (0: all)
} dsf_run;

// Writes path atomically (temporary file, fsync, rename). o, w, rng may be NULL.
int ckpt_save(const char *path, const dsf_lm *m, const dsf_vocab *v, const dsf_run *run,
              const dsf_optim *o, const dsf_lm_work *w, const dsf_rng *rng);
// Writes the gradient of m (m->grads) under the parameter names, plus loss and
// the feedback vectors when with_feedback: the output of `dsf grad`.
int ckpt_save_grads(const char *path, const dsf_lm *m, double loss, int with_feedback);

// Creates m from the tensors of f: V, E, H, L come from the shapes, every
// tensor is checked. *has_feedback tells whether rnn.feedback_l{k} were there.
int ckpt_read_model(const st_file *f, dsf_lm *m, int *has_feedback);
// Sets m->fb from a --feedback spelling (a run's), checking that a lowrank
// feedback's factors were in the file ckpt_read_model read (it reads
// rnn.feedback_{u,v}_l{k} (H,r) when present).
int ckpt_set_feedback(dsf_lm *m, const char *spelling);
// The cell the run names (dsf.cell) must be the one the tensors' shapes say.
int ckpt_check_cell(const dsf_lm *m, const dsf_run *run);
// The run description and the vocabulary (a file written by ckpt_save).
int ckpt_read_run(const st_file *f, dsf_run *run, dsf_vocab **v);
// The optimizer moments (AdamW) and the carried state and RNG, for resume.
int ckpt_read_optim(const st_file *f, const dsf_lm *m, dsf_optim *o);
int ckpt_read_state(const st_file *f, const dsf_lm *m, dsf_lm_work *w, dsf_rng *rng);

#endif
