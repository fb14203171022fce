// grad.c: `dsf grad`: the gradient of a model on given tokens, for comparison
// with other implementations (tests/torch_grad.py compares it with autograd).
#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "grad/feedback.h"

static const char *usage =
    "usage: dsf grad --init IN.safetensors --tokens TOK.txt --method bptt|ft|dsf --out OUT.safetensors\n"
    "\n"
    "Reads a model (V, E, H and L from the tensor shapes) and B lines of T+1 token\n"
    "ids (inputs are columns 0..T-1, targets 1..T, initial state zero). For dsf the\n"
    "feedback is drawn by --feedback and --seed when --feedback is given, else it is\n"
    "the file's (rnn.feedback_l{k}, and rnn.feedback_{u,v}_l{k} for lowrank), else\n"
    "drawn as uniform; --feedback fit estimates a on the tokens first (from a = 0),\n"
    "then takes the gradient with it. Writes the gradient of the mean cross-entropy\n"
    "under the same tensor names, the one-element tensor `loss`, and for dsf the\n"
    "feedback vectors used (none for diag, which uses the Jacobian's). No update.\n"
    "\n"
    "--arch residual: the stack with x <- x + RNN(x) at every layer (the tensors are the\n"
    "stack's). --ignore-index P: rows padded with P; a target equal to P carries no\n"
    "loss and the loss is the mean over the others (an input P stays an input).\n"
    "\n"
    "A classifier of continuous inputs (a model file without encoder.weight: its head\n"
    "is decoder.weight (C,H), decoder.bias (C)) takes --floats X --labels Y instead of\n"
    "--tokens: B lines of T·I numbers (step t's I inputs at columns tI..tI+I-1, I from\n"
    "rnn.weight_ih_l0), and B class ids; the loss is the mean cross-entropy of the class\n"
    "read from the last step.";

// Reads B lines of T+1 integers into x, y (T,B) time-major.
static int read_tokens(const char *path, int V, int64_t ignore, int32_t **x, int32_t **y, int *B,
                       int *T) {
    FILE *f = fopen(path, "r");
    if (!f) return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    int64_t *ids = NULL;
    size_t n = 0, cap = 0;
    int rows = 0, cols = -1, col = 0, c, rc = 0;
    long long v = 0;
    int in_num = 0;
    while (rc == 0) {
        c = fgetc(f);
        if (c != EOF && isdigit(c)) {
            if (v > (1LL << 40)) rc = dsf_error_set("%s: token id too large", path);
            v = v * 10 + (c - '0');
            in_num = 1;
            continue;
        }
        if (in_num) {
            if (v >= V)
                rc = dsf_error_set("%s: token id %lld out of range for a vocabulary of %d", path, v, V);
            if (n == cap) ids = dsf_xrealloc(ids, (cap = cap ? 2 * cap : 1024) * sizeof *ids);
            ids[n++] = v;
            col++;
            v = 0;
            in_num = 0;
        }
        if (c == '\n' || c == EOF) {
            if (col > 0) {
                if (cols >= 0 && col != cols)
                    rc = dsf_error_set("%s: line %d has %d ids, line 1 has %d", path, rows + 1, col, cols);
                cols = col;
                rows++;
            }
            col = 0;
            if (c == EOF) break;
        } else if (c != ' ' && c != '\t' && c != '\r' && rc == 0) {
            rc = dsf_error_set("%s: unexpected character '%c' (expected integer token ids)", path, c);
        }
    }
    fclose(f);
    if (rc == 0 && (rows == 0 || cols < 2))
        rc = dsf_error_set("%s: need at least one line of at least 2 token ids", path);
    if (rc == 0) {
        *B = rows;
        *T = cols - 1;
        *x = dsf_xmalloc(sizeof(int32_t) * (size_t)rows * (cols - 1));
        *y = dsf_xmalloc(sizeof(int32_t) * (size_t)rows * (cols - 1));
        for (int b = 0; b < rows; b++)
            for (int t = 0; t < cols - 1; t++) {
                (*x)[(size_t)t * rows + b] = (int32_t)ids[(size_t)b * cols + t];
                const int64_t target = ids[(size_t)b * cols + t + 1];
                (*y)[(size_t)t * rows + b] = target == ignore ? DSF_IGNORE : (int32_t)target;
            }
    }
    free(ids);
    return rc;
}

// Reads B lines of T·I numbers into xf (T,B,I) and B class ids below C into y
// (T,B): the class at the last step, DSF_IGNORE before it.
static int read_floats(const char *xpath, const char *ypath, int I, int C, float **xf,
                       int32_t **y, int *B, int *T) {
    FILE *f = fopen(xpath, "r");
    if (!f) return dsf_error_set("cannot open %s: %s", xpath, strerror(errno));
    double *v = NULL;
    size_t n = 0, cap = 0;
    int rows = 0, cols = -1, rc = 0;
    char line[1 << 16];
    while (rc == 0 && fgets(line, sizeof line, f)) {
        if (!strchr(line, '\n') && !feof(f)) {
            rc = dsf_error_set("%s: line %d is longer than %d bytes", xpath, rows + 1,
                               (int)sizeof line - 1);
            break;
        }
        int col = 0;
        for (char *p = line, *end;; p = end) {
            while (*p == ' ' || *p == '\t' || *p == '\r' || *p == '\n') p++;
            if (!*p) break;
            double d = strtod(p, &end);
            if (end == p || !isfinite(d)) {
                rc = dsf_error_set("%s: line %d: expected finite numbers", xpath, rows + 1);
                break;
            }
            if (n == cap) v = dsf_xrealloc(v, (cap = cap ? 2 * cap : 1024) * sizeof *v);
            v[n++] = d;
            col++;
        }
        if (rc || col == 0) continue;
        if (cols >= 0 && col != cols)
            rc = dsf_error_set("%s: line %d has %d numbers, line 1 has %d", xpath, rows + 1, col, cols);
        cols = col;
        rows++;
    }
    fclose(f);
    if (rc == 0 && (rows == 0 || cols % I))
        rc = dsf_error_set("%s: need lines of T x %d numbers (the model's inputs per step)", xpath, I);
    int32_t *lab = NULL;
    if (rc == 0) {
        lab = dsf_xmalloc(sizeof(int32_t) * (size_t)rows);
        FILE *g = fopen(ypath, "r");
        if (!g) rc = dsf_error_set("cannot open %s: %s", ypath, strerror(errno));
        for (int b = 0; rc == 0 && b < rows; b++) {
            long c;
            if (fscanf(g, "%ld", &c) != 1 || c < 0 || c >= C)
                rc = dsf_error_set("%s: need %d class ids from 0 to %d, one a row", ypath, rows, C - 1);
            else
                lab[b] = (int32_t)c;
        }
        if (g) fclose(g);
    }
    if (rc == 0) {
        const int steps = cols / I;
        *B = rows;
        *T = steps;
        *xf = dsf_xmalloc(sizeof(float) * (size_t)rows * cols);
        *y = dsf_xmalloc(sizeof(int32_t) * (size_t)rows * steps);
        for (int b = 0; b < rows; b++)
            for (int t = 0; t < steps; t++) {
                for (int i = 0; i < I; i++)
                    (*xf)[((size_t)t * rows + b) * I + i] = (float)v[(size_t)b * cols + t * I + i];
                (*y)[(size_t)t * rows + b] = t == steps - 1 ? lab[b] : DSF_IGNORE;
            }
    }
    free(v);
    free(lab);
    return rc;
}

int cmd_grad(int argc, char **argv) {
    const char *init = NULL, *tokens = NULL, *out = NULL, *method_name = "bptt", *cell = "gru",
               *feedback = "uniform", *scan_name = "seq", *arch_name = NULL, *floats = NULL,
               *labels = NULL;
    int threads = cli_default_threads();
    int64_t seed = 1, ignore = -1;
    arg_spec specs[] = {
        OPT("init", ARG_STR, &init, 0, 0, "model (safetensors, PyTorch names)"),
        OPT("tokens", ARG_STR, &tokens, 0, 0, "B lines of T+1 token ids"),
        OPT("floats", ARG_STR, &floats, 0, 0, "a classifier's inputs: B lines of T x I numbers"),
        OPT("labels", ARG_STR, &labels, 0, 0, "a classifier's classes: B ids"),
        OPT("out", ARG_STR, &out, 0, 0, "where to write the gradient"),
        OPT("method", ARG_STR, &method_name, 0, 0, "bptt, ft or dsf"),
        OPT("cell", ARG_STR, &cell, 0, 0, "gru, lstm or rnn: must be the model's (from its shapes)"),
        OPT("feedback", ARG_STR, &feedback, 0, 0, "dsf feedback (default: the model's, else uniform)"),
        OPT("scan", ARG_STR, &scan_name, 0, 0, "dsf scan: seq, blelloch or fft"),
        OPT("seed", ARG_I64, &seed, 0, 9.2e18, "seed for a drawn feedback"),
        OPT("arch", ARG_STR, &arch_name, 0, 0,
            "stack, residual or block (default: the file's; residual only when asked)"),
        OPT("ignore-index", ARG_I64, &ignore, 0, 2147483647.0,
            "padding id: targets equal to it carry no loss"),
        OPT("threads", ARG_INT, &threads, 1, 4096, "threads"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    if (!init || !out || (!tokens && !(floats && labels)))
        return dsf_error_set("--init, --out and --tokens (or --floats and --labels) are required");
    dsf_cell want;
    if (dsf_cell_parse(cell, &want)) return -1;
    dsf_method method;
    dsf_feedback fb;
    dsf_scan_kind scan;
    if (dsf_method_parse(method_name, &method) || dsf_feedback_parse(feedback, &fb) ||
        cli_parse_scan(scan_name, &scan) || cli_check_feedback_scan(&fb, scan))
        return -1;
    dsf_set_threads(threads);

    st_file *f = st_load(init);
    if (!f) return -1;
    dsf_lm m;
    int has_fb;
    rc = ckpt_read_model(f, &m, &has_fb);
    st_free(f);
    if (rc) return -1;
    if (args_given(specs, n, "cell") && want != m.cfg.cell) {
        lm_destroy(&m);
        return dsf_error_set("--cell %s, but %s holds a %s model", cell, init,
                             dsf_cell_name(m.cfg.cell));
    }
    if (cli_check_feedback_cell(&fb, m.cfg.cell)) {
        lm_destroy(&m);
        return -1;
    }
    if (arch_name) {  // residual has the stack's tensors: the flag decides
        dsf_arch arch;
        if (dsf_arch_parse(arch_name, &arch)) {
            lm_destroy(&m);
            return -1;
        }
        const int block = m.cfg.arch == DSF_ARCH_BLOCK;
        if (block != (arch == DSF_ARCH_BLOCK)) {
            lm_destroy(&m);
            return dsf_error_set("--arch %s, but %s holds a %s model", arch_name, init,
                                 block ? "block" : "stack");
        }
        if (arch == DSF_ARCH_RESIDUAL && m.cfg.E != m.cfg.H) {
            lm_destroy(&m);
            return dsf_error_set("--arch residual needs the embedding size equal to the hidden "
                                 "size (%s has %d and %d)", init, m.cfg.E, m.cfg.H);
        }
        m.cfg.arch = arch;
    }
    int32_t *x = NULL, *y = NULL;
    int B = 0, T = 0;
    dsf_lm_work w;
    memset(&w, 0, sizeof w);
    rc = -1;
    float *xf = NULL;
    if (m.cfg.inputs && tokens) {
        rc = dsf_error_set("%s is a classifier of continuous inputs: give --floats and --labels", init);
    } else if (!m.cfg.inputs && !tokens) {
        rc = dsf_error_set("%s is a language model: give --tokens", init);
    } else if ((m.cfg.inputs ? read_floats(floats, labels, m.cfg.inputs, m.cfg.V, &xf, &y, &B, &T)
                             : read_tokens(tokens, m.cfg.V, ignore, &x, &y, &B, &T)) == 0 &&
        lm_work_create(&w, &m.cfg, B, T) == 0) {
        dsf_rng rng;
        dsf_rng_seed(&rng, (uint64_t)seed);
        if (args_given(specs, n, "feedback") || !has_fb) rc = lm_set_feedback(&m, &fb, &rng, T);
        else if (m.fb.kind == DSF_FEEDBACK_LOWRANK) rc = cli_check_feedback_scan(&m.fb, scan);
        else rc = 0;
        w.scan = scan;
        w.ragged = 1;  // one pass from a zero state: padding is skipped (model/lm.h)
        if (rc == 0) rc = lm_work_reserve(&w, &m, method);
        double loss = 0;
        if (rc == 0) loss = xf ? lm_forward_floats(&m, &w, xf, y, T) : lm_forward(&m, &w, x, y, T);
        if (rc == 0 && method == DSF_METHOD_DSF && m.fb.kind == DSF_FEEDBACK_FIT) {
            w.fit_now = 1, w.fit_rate = 1;  // a from these tokens, then the gradient with it
            lm_backward(&m, &w, method);
            w.fit_now = 0;
        }
        if (rc == 0) lm_backward(&m, &w, method);
        if (rc == 0)
            rc = ckpt_save_grads(out, &m, loss,
                                 method == DSF_METHOD_DSF && m.fb.kind != DSF_FEEDBACK_DIAG);
        if (rc == 0) printf("loss %.6f\n", loss);
    }
    free(x);
    free(xf);
    free(y);
    lm_work_destroy(&w);
    lm_destroy(&m);
    return rc;
}
