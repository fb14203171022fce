// sample.c: `dsf sample`: text from a checkpoint.
#include <math.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"

static const char *usage =
    "usage: dsf sample --ckpt FILE [--prompt TEXT] [--tokens N] [--temperature X] [--seed S]\n"
    "\n"
    "Feeds the prompt through the model, then draws tokens one at a time from the\n"
    "softmax at the given temperature. Word-level output joins words by spaces and\n"
    "prints <eos> as a line break.";

static void print_token(const dsf_vocab *v, dsf_level level, int32_t id) {
    size_t len;
    const char *s = vocab_str(v, id, &len);
    if (level == DSF_LEVEL_CHAR)
        fwrite(s, 1, len, stdout);
    else if (len == 5 && memcmp(s, "<eos>", 5) == 0)
        fputc('\n', stdout);
    else
        printf("%.*s ", (int)len, s);
}

// Tokenises the prompt with the model's vocabulary: ids into *out, count returned.
static int tokenize_prompt(const char *p, const dsf_vocab *v, dsf_level level, int32_t **out) {
    size_t n = strlen(p), k = 0;
    int32_t *ids = dsf_xmalloc(sizeof(int32_t) * (n + 1));
    int32_t unk = vocab_find(v, "<unk>", 5);
    for (size_t i = 0; i < n;) {
        size_t len = 1;
        if (level == DSF_LEVEL_WORD) {
            if (strchr(" \t\r\n\f\v", p[i])) {
                i++;
                continue;
            }
            while (i + len < n && !strchr(" \t\r\n\f\v", p[i + len])) len++;
        }
        int32_t id = vocab_find(v, p + i, len);
        if (id < 0) id = unk;
        if (id < 0) {
            free(ids);
            return dsf_error_set("prompt token '%.*s' is not in the model's vocabulary", (int)len,
                                 p + i);
        }
        ids[k++] = id;
        i += len;
    }
    *out = ids;
    return (int)k;
}

int cmd_sample(int argc, char **argv) {
    const char *ckpt = NULL, *prompt = NULL, *level = "word";
    int tokens = 200, threads = 1;
    double temperature = 1.0;
    int64_t seed = 1;
    arg_spec specs[] = {
        OPT("ckpt", ARG_STR, &ckpt, 0, 0, "checkpoint to sample from"),
        OPT("prompt", ARG_STR, &prompt, 0, 0, "text to start from (default: an <eos> or a newline)"),
        OPT("tokens", ARG_INT, &tokens, 1, 1 << 24, "tokens to generate"),
        OPT("temperature", ARG_FLOAT, &temperature, 1e-3, 100, "softmax temperature"),
        OPT("seed", ARG_I64, &seed, 0, 9.2e18, "random seed"),
        OPT("level", ARG_STR, &level, 0, 0, "must agree with the checkpoint when given"),
        OPT("threads", ARG_INT, &threads, 1, 4096, "threads"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    if (!ckpt) return dsf_error_set("--ckpt is required (see --help)");
    dsf_set_threads(threads);

    dsf_lm m;
    dsf_run run;
    dsf_vocab *v;
    if (cli_open_checkpoint(ckpt, &m, &run, &v)) return -1;
    dsf_lm_work w;
    memset(&w, 0, sizeof w);
    int32_t *ids = NULL;
    int np = 0;
    rc = -1;
    if (cli_check_level(specs, n, level, run.level)) goto done;
    if (prompt && (np = tokenize_prompt(prompt, v, run.level, &ids)) < 0) goto done;
    if (np == 0) {  // start after a line end
        int32_t start = run.level == DSF_LEVEL_CHAR ? vocab_find(v, "\n", 1) : vocab_find(v, "<eos>", 5);
        free(ids);
        ids = dsf_xmalloc(sizeof(int32_t));
        ids[0] = start >= 0 ? start : 0;
        np = 1;
    } else if (prompt) {
        fputs(prompt, stdout);
        if (run.level == DSF_LEVEL_WORD) fputc(' ', stdout);
    }
    if (lm_work_create(&w, &m.cfg, 1, 1)) goto done;
    dsf_rng rng;
    dsf_rng_seed(&rng, (uint64_t)seed);
    const int V = m.cfg.V;
    int32_t tok = ids[0], y = 0;
    for (int i = 0; i < np + tokens - 1; i++) {
        if (i > 0) tok = i < np ? ids[i] : tok;
        lm_forward(&m, &w, &tok, &y, 1);
        if (i < np - 1) continue;
        // w.probs is the softmax at temperature 1; reweight by p^(1/temperature).
        // Dividing by the largest probability first keeps low temperatures from underflowing.
        double pmax = 0, total = 0;
        for (int k = 0; k < V; k++) pmax = w.probs[k] > pmax ? w.probs[k] : pmax;
        for (int k = 0; k < V; k++) total += pow(w.probs[k] / pmax, 1.0 / temperature);
        double u = dsf_rng_double(&rng) * total, acc = 0;
        int32_t next = V - 1;
        for (int k = 0; k < V; k++) {
            acc += pow(w.probs[k] / pmax, 1.0 / temperature);
            if (u < acc) {
                next = k;
                break;
            }
        }
        print_token(v, run.level, next);
        tok = next;
    }
    printf("\n");
    rc = 0;
done:
    free(ids);
    lm_work_destroy(&w);
    vocab_free(v);
    lm_destroy(&m);
    return rc;
}
