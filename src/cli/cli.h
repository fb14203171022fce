// cli.h: the subcommands of `dsf` and what they share.
#ifndef DSF_CLI_H
#define DSF_CLI_H

#include "args.h"
#include "data/corpus.h"
#include "io/checkpoint.h"

int cmd_train(int argc, char **argv);
int cmd_eval(int argc, char **argv);
int cmd_sample(int argc, char **argv);
int cmd_grad(int argc, char **argv);
int cmd_gradstats(int argc, char **argv);
int cmd_bench(int argc, char **argv);
int cmd_task(int argc, char **argv);
int cmd_classify(int argc, char **argv);

// The number of online cores: the default for --threads.
int cli_default_threads(void);
// What computes on the CPU, for headers and `dsf version`: the matrix-product
// backend and the recurrent kernel ("OpenBLAS (...), recurrent kernel avx2").
const char *cli_cpu_backend(void);
// The best model's file beside a checkpoint: <stem>.best.safetensors for
// <stem>.safetensors, else <path>.best.
void cli_best_path(char *buf, size_t n, const char *save);
// Opens a training checkpoint: its model, run description and vocabulary.
int cli_open_checkpoint(const char *path, dsf_lm *m, dsf_run *run, dsf_vocab **v);
// "loss 4.8123 ppl 123.45" (and " bpc 1.234" at char level) into buf.
void cli_format_loss(char *buf, size_t n, double loss, dsf_level level);
// Parses --scan and checks that this build has it.
int cli_parse_scan(const char *s, dsf_scan_kind *out);
// --device: 0 for cpu, 1 for cuda; a cuda that this build or machine lacks is one
// line on stderr and 1 (the exit status); an unknown name is -1 with the error set.
int cli_parse_device(const char *s, int *cuda);
// lm_evaluate on a GPU instance g (dsf_gpu_create_eval, its parameters set) with
// B streams of T steps: from a zero state, the same batching.
struct dsf_gpu;
double cli_gpu_evaluate(struct dsf_gpu *g, int B, const dsf_tokens *tokens, int T);
// The same with sequence batching (lm_evaluate_seqs), each batch from a zero state.
double cli_gpu_evaluate_seqs(struct dsf_gpu *g, int B, const dsf_tokens *tokens, int T,
                             int32_t pad);
// Refuses --scan fft for a feedback it cannot apply (diag, lowrank).
int cli_check_feedback_scan(const dsf_feedback *fb, dsf_scan_kind scan);
// Refuses a feedback a cell does not have (fit: gru only; lowrank: not lstm).
int cli_check_feedback_cell(const dsf_feedback *fb, dsf_cell cell);
// A "note:" line on stderr when the feedback's sweeps are likely to grow at T steps
// (dsf_feedback_caution).
void cli_caution_feedback(const dsf_feedback *fb, int T);
// The header's memory line: what a training command allocates up front, the
// model (its parameters, gradients, best copy and optimizer moments under o), the
// training work area w under meth and the evaluation one ew (docs/USAGE.md,
// "Memory").
void cli_print_memory(const dsf_lm *m, const dsf_optim *o, const dsf_lm_work *w,
                      const dsf_lm_work *ew, dsf_method meth, int gpu);
// The closing line: the process's peak resident memory (getrusage); under MPI
// rank 0's, and the memory line is per process.
void cli_print_peak_memory(void);
// Split `split` of data with a checkpoint's vocabulary and batching (a chunked
// run's split cut into its chunks of seq + 1 tokens).
int cli_load_split(const char *data, const dsf_run *run, const dsf_vocab *v, int split,
                   dsf_tokens *out);
// Checks that a --level given next to a checkpoint agrees with it.
int cli_check_level(const arg_spec *specs, int n, const char *level, dsf_level ckpt_level);

// The options of the recurrent model and of the gradient method that train, task
// and bench share, for their arg_spec lists; o is the command's options struct,
// with char *cell, *method, *feedback, *scan and int layers, emb, hidden.
#define CLI_MODEL_OPTS(o)                                                                    \
    OPT("cell", ARG_STR, &(o).cell, 0, 0, "recurrent cell: gru, lstm or rnn (Elman, tanh)"), \
        OPT("layers", ARG_INT, &(o).layers, 1, DSF_MAX_LAYERS, "recurrent layers"),          \
        OPT("emb", ARG_INT, &(o).emb, 1, 1 << 20, "embedding size"),                          \
        OPT("hidden", ARG_INT, &(o).hidden, 1, 1 << 20, "hidden size")
#define CLI_METHOD_OPTS(o)                                                                   \
    OPT("method", ARG_STR, &(o).method, 0, 0, "gradient method: bptt, ft or dsf"),           \
        OPT("feedback", ARG_STR, &(o).feedback, 0, 0, CLI_FEEDBACK_HELP),                     \
        OPT("scan", ARG_STR, &(o).scan, 0, 0, "dsf scan: seq, blelloch or fft")
#define CLI_FEEDBACK_HELP                                                               \
    "dsf feedback: uniform[:LO,HI], linspace[:LO,HI], zero, identity, const:C, ssm, fit[:N], diag, lowrank:R; " \
    "+K: K correction sweeps"

#endif
