// main.c: `dsf <command> [options]`.
#include <stdio.h>
#include <string.h>

#include "cli.h"
#include "core/common.h"
#include "core/panel.h"

#define DSF_VERSION "0.1.0"

static const char *usage =
    "dsf " DSF_VERSION ": fast recurrent language models with Diagonal State Feedbacks\n"
    "\n"
    "usage: dsf <command> [options]     (dsf <command> --help for its options)\n"
    "\n"
    "commands:\n"
    "  train    train a recurrent language model with bptt, ft or dsf gradients\n"
    "  eval     loss and perplexity of a checkpoint on a data split\n"
    "  sample   generate text from a checkpoint\n"
    "  grad     write the gradient of a model on given tokens (reference hook)\n"
    "  gradstats  cosine and norm ratio of ft and dsf gradients against bptt\n"
    "  bench    tokens/s, time per phase and % of GEMM peak of training steps\n"
    "  task     train on a long-range task (copy, add, recall) and measure accuracy\n"
    "  classify train a classifier of images read one pixel a step (Fashion-MNIST)\n"
    "  version  print the version, the matrix-product backend and the recurrent kernel\n";

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (dsf_panel_init() < 0) {  // DSF_KERNEL names a kernel this CPU lacks
        fprintf(stderr, "dsf: %s\n", dsf_error());
        return 2;
    }
    int rc;
    if (strcmp(cmd, "train") == 0)
        rc = cmd_train(argc - 2, argv + 2);
    else if (strcmp(cmd, "eval") == 0)
        rc = cmd_eval(argc - 2, argv + 2);
    else if (strcmp(cmd, "sample") == 0)
        rc = cmd_sample(argc - 2, argv + 2);
    else if (strcmp(cmd, "grad") == 0)
        rc = cmd_grad(argc - 2, argv + 2);
    else if (strcmp(cmd, "gradstats") == 0)
        rc = cmd_gradstats(argc - 2, argv + 2);
    else if (strcmp(cmd, "bench") == 0)
        rc = cmd_bench(argc - 2, argv + 2);
    else if (strcmp(cmd, "task") == 0)
        rc = cmd_task(argc - 2, argv + 2);
    else if (strcmp(cmd, "classify") == 0)
        rc = cmd_classify(argc - 2, argv + 2);
    else if (strcmp(cmd, "version") == 0 || strcmp(cmd, "--version") == 0) {
        printf("dsf %s, matrix products by %s\n", DSF_VERSION, cli_cpu_backend());
        return 0;
    } else {
        fprintf(stderr, "dsf: unknown command '%s' (expected train, eval, sample, grad, gradstats, bench, task, classify)\n", cmd);
        return 2;
    }
    if (rc < 0) {
        fprintf(stderr, "dsf %s: %s\n", cmd, dsf_error());
        return 1;
    }
    return rc;
}
