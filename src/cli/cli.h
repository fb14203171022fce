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

// The number of online cores: the default for --threads.
int cli_default_threads(void);
// Opens a training checkpoint: its model, run description and vocabulary.
int cli_open_checkpoint(const char *path, dsf_lm *m, dsf_run *run, dsf_vocab **v);
// "loss 4.8123 ppl 123.45" (and " bpc 1.234" at char level) into buf.
void cli_format_loss(char *buf, size_t n, double loss, dsf_level level);
// Parses --scan and checks that this build has it.
int cli_parse_scan(const char *s, dsf_scan_kind *out);
// --device: 0 for cpu, 1 for cuda; a cuda that this build or machine lacks is one
// line on stderr and 1 (the exit status); an unknown name is -1 with the error set.
int cli_parse_device(const char *s, int *cuda);
// Refuses --scan fft for a feedback it cannot apply (diag, lowrank).
int cli_check_feedback_scan(const dsf_feedback *fb, dsf_scan_kind scan);
// Refuses a feedback a cell does not have (fit: gru only; lowrank: not lstm).
int cli_check_feedback_cell(const dsf_feedback *fb, dsf_cell cell);
// Checks that a --level given next to a checkpoint agrees with it.
int cli_check_level(const arg_spec *specs, int n, const char *level, dsf_level ckpt_level);

#endif
