// eval.c: `dsf eval`: loss and perplexity of a checkpoint on a split.
#include <math.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "cuda/gpu.h"
#include "model/evaluate.h"

static const char *usage =
    "usage: dsf eval --ckpt FILE --data PATH [--split valid|test] [options]\n"
    "\n"
    "Prints the mean loss per token and the perplexity (and bits per character at\n"
    "character level) of the model in FILE on a split of PATH, tokenised with the\n"
    "checkpoint's vocabulary. The model, level and batching come from the checkpoint:\n"
    "a run with --batching sentence (chunk) is evaluated sentence by sentence (chunk\n"
    "by chunk), each from a zero state, the loss averaged over every target that is\n"
    "not padding.\n"
    "--device cuda evaluates on the GPU (a build with make CUDA=1).";

int cmd_eval(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *split_name = "valid", *level = "word", *device = "cpu";
    int batch = 0, seq = 0, threads = cli_default_threads();
    arg_spec specs[] = {
        OPT("ckpt", ARG_STR, &ckpt, 0, 0, "checkpoint to evaluate"),
        OPT("data", ARG_STR, &data, 0, 0, "data directory, text file or builtin:recall[:D]"),
        OPT("split", ARG_STR, &split_name, 0, 0, "train, valid or test"),
        OPT("level", ARG_STR, &level, 0, 0, "must agree with the checkpoint when given"),
        OPT("batch", ARG_INT, &batch, 0, 1 << 20, "batch size (0: the checkpoint's eval batch)"),
        OPT("seq", ARG_INT, &seq, 0, 1 << 20, "sequence length (0: the checkpoint's)"),
        OPT("threads", ARG_INT, &threads, 1, 4096, "threads"),
        OPT("device", ARG_STR, &device, 0, 0, "cpu, or cuda (a build with make CUDA=1)"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    if (!ckpt || !data) return dsf_error_set("--ckpt and --data are required (see --help)");
    int split, cuda = 0;
    if (dsf_split_parse(split_name, &split)) return -1;
    if ((rc = cli_parse_device(device, &cuda))) return rc;
    dsf_set_threads(threads);

    dsf_lm m;
    dsf_run run;
    dsf_vocab *v;
    if (cli_open_checkpoint(ckpt, &m, &run, &v)) return -1;
    dsf_tokens tokens = {0};
    dsf_lm_work w;
    memset(&w, 0, sizeof w);
    rc = -1;
    if (cli_check_level(specs, n, level, run.level) == 0 &&
        cli_load_split(data, &run, v, split, &tokens) == 0 &&
        lm_work_create_eval(&w, &m.cfg, batch ? batch : run.eval_batch, seq ? seq : run.seq) == 0) {
        double loss = NAN;
        dsf_gpu *g = NULL;
        const int seqs = run.unit != DSF_UNIT_STREAM;
        if (!cuda)
            loss = seqs ? lm_evaluate_seqs(&m, &w, &tokens, w.T, DSF_PAD_ID)
                        : lm_evaluate(&m, &w, &tokens, w.T);
        else if (dsf_gpu_check(&m, DSF_METHOD_BPTT, DSF_SCAN_SEQ) == 0 &&
                 dsf_gpu_create_eval(&g, &m, w.B, w.T) == 0)
            loss = seqs ? cli_gpu_evaluate_seqs(g, w.B, &tokens, w.T, DSF_PAD_ID)
                        : cli_gpu_evaluate(g, w.B, &tokens, w.T);
        dsf_gpu_destroy(g);
        if (!isnan(loss)) {
            char buf[96];
            cli_format_loss(buf, sizeof buf, loss, run.level);
            printf("%s\n", buf);
            rc = 0;
        } else if (strcmp(dsf_error(), "unknown error") == 0) {  // finite weights, NaN loss
            dsf_error_set("the loss is not a number: the model's values overflow in float");
        }
    }
    lm_work_destroy(&w);
    tokens_free(&tokens);
    vocab_free(v);
    lm_destroy(&m);
    return rc;
}
