// common.c: what the subcommands share.
#include <math.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "cli.h"
#include "core/gemm.h"
#include "core/panel.h"
#include "cuda/gpu.h"
#include "dist/dist.h"
#include "model/evaluate.h"

int cli_default_threads(void) {
    long n = sysconf(_SC_NPROCESSORS_ONLN);
    return n > 0 ? (int)n : 1;
}

const char *cli_cpu_backend(void) {
    static char desc[256];
    snprintf(desc, sizeof desc, "%s, recurrent kernel %s", dsf_blas_name(), dsf_panel_kernel_name());
    return desc;
}

void cli_best_path(char *buf, size_t n, const char *save) {
    const size_t len = strlen(save), el = strlen(".safetensors");
    if (len > el && strcmp(save + len - el, ".safetensors") == 0)
        snprintf(buf, n, "%.*s.best.safetensors", (int)(len - el), save);
    else
        snprintf(buf, n, "%s.best", save);
}

int cli_open_checkpoint(const char *path, dsf_lm *m, dsf_run *run, dsf_vocab **v) {
    st_file *f = st_load(path);
    if (!f) return -1;
    int has_feedback, rc = -1;
    if (ckpt_read_run(f, run, v) == 0) {
        if (ckpt_read_model(f, m, &has_feedback) == 0) {
            if (ckpt_set_feedback(m, run->feedback) || ckpt_check_cell(m, run)) {
                lm_destroy(m);
            } else if (m->cfg.V != vocab_size(*v)) {
                dsf_error_set("%s: the decoder has %d outputs but the vocabulary %d words", path,
                              m->cfg.V, vocab_size(*v));
                lm_destroy(m);
            } else {
                rc = 0;
            }
        }
        if (rc) vocab_free(*v);
    }
    st_free(f);
    return rc;
}

void cli_format_loss(char *buf, size_t n, double loss, dsf_level level) {
    int k = snprintf(buf, n, "loss %.4f ppl %.2f", loss, exp(loss));
    if (level == DSF_LEVEL_CHAR && k > 0 && (size_t)k < n)
        snprintf(buf + k, n - k, " bpc %.4f", loss / log(2.0));
}

int cli_parse_scan(const char *s, dsf_scan_kind *out) {
    if (dsf_scan_parse(s, out)) return -1;
    if (!dsf_scan_available(*out))
        return dsf_error_set("this build has no FFTW for --scan fft (apt-get install "
                             "libfftw3-dev, then make clean all)");
    return 0;
}

int cli_parse_device(const char *s, int *cuda) {
    if (strcmp(s, "cpu") == 0) {
        *cuda = 0;
        return 0;
    }
    if (strcmp(s, "cuda") != 0) return dsf_error_set("unknown device '%s' (expected cpu or cuda)", s);
    *cuda = 1;
    if (!dsf_gpu_built()) {
        fprintf(stderr, "dsf: built without CUDA (make CUDA=1)\n");
        return 1;
    }
    if (dsf_gpu_device_count() < 1) {
        fprintf(stderr, "dsf: %s\n", dsf_error());
        return 1;
    }
    return 0;
}

static double gpu_forward(void *ctx, const int32_t *x, const int32_t *y, int T) {
    return dsf_gpu_forward(ctx, x, y, T);
}

double cli_gpu_evaluate(dsf_gpu *g, int B, const dsf_tokens *tokens, int T) {
    dsf_gpu_reset_state(g);
    return lm_evaluate_fn(gpu_forward, g, B, tokens, T);
}

static void gpu_reset(void *ctx) { dsf_gpu_reset_state(ctx); }

double cli_gpu_evaluate_seqs(dsf_gpu *g, int B, const dsf_tokens *tokens, int T, int32_t pad) {
    return lm_evaluate_seqs_fn(gpu_forward, gpu_reset, g, B, tokens, T, pad);
}

int cli_load_split(const char *data, const dsf_run *run, const dsf_vocab *v, int split,
                   dsf_tokens *out) {
    if (corpus_load_split_units(data, run->level, run->unit, v, split, out)) return -1;
    if (run->unit == DSF_UNIT_CHUNK && tokens_chunk(out, (int64_t)run->seq + 1, dsf_split_name(split))) {
        tokens_free(out);
        return -1;
    }
    return 0;
}

int cli_check_feedback_scan(const dsf_feedback *fb, dsf_scan_kind scan) {
    if (scan == DSF_SCAN_FFT && !dsf_feedback_is_diagonal_stationary(fb)) {
        char name[64];
        dsf_feedback_format(fb, name, sizeof name);
        return dsf_error_set("--feedback %s cannot use --scan fft, which needs a diagonal "
                             "feedback that is the same at every step; use --scan seq or blelloch",
                             name);
    }
    return 0;
}

int cli_check_feedback_cell(const dsf_feedback *fb, dsf_cell cell) {
    if (fb->kind == DSF_FEEDBACK_FIT && cell != DSF_CELL_GRU)
        return dsf_error_set("--feedback fit is implemented for --cell gru only");
    if (fb->kind == DSF_FEEDBACK_LOWRANK && cell == DSF_CELL_LSTM)
        return dsf_error_set("--feedback lowrank is implemented for --cell gru and rnn, not lstm");
    return 0;
}

void cli_caution_feedback(const dsf_feedback *fb, int T) {
    char buf[512];
    if (dsf_feedback_caution(fb, T, buf, sizeof buf)) fprintf(stderr, "note: %s\n", buf);
}

#define GIB (1024.0 * 1024.0 * 1024.0)

void cli_print_memory(const dsf_lm *m, const dsf_optim *o, const dsf_lm_work *w,
                      const dsf_lm_work *ew, dsf_method meth, int gpu) {
    const dsf_lm_config *c = &m->cfg;
    const double n4 = (double)m->n * sizeof(float);
    const double model = (double)lm_bytes(c) + n4 * (1 + (o->m ? 2 : 0));
    const double train =
        (double)lm_work_bytes(c, w->B, w->T) + (double)lm_work_more_bytes(w, m, meth);
    const double eval = (double)lm_work_eval_bytes(c, ew->B, ew->T);
    fprintf(stderr, "memory: about %.2f GiB%s%s (model, gradients and optimizer %.2f, training "
                    "activations %.2f, evaluation %.2f)\n",
            (model + train + eval) / GIB, gpu ? " on the host" : "",
            dist_size() > 1 ? " per process" : "", model / GIB, train / GIB, eval / GIB);
}

void cli_print_peak_memory(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) == 0)  // ru_maxrss: KiB on Linux
        fprintf(stderr, "peak memory: %.2f GiB resident%s\n", (double)ru.ru_maxrss * 1024 / GIB,
                dist_size() > 1 ? " (rank 0)" : "");
}

int cli_check_level(const arg_spec *specs, int n, const char *level, dsf_level ckpt_level) {
    if (!args_given(specs, n, "level")) return 0;
    dsf_level l;
    if (dsf_level_parse(level, &l)) return -1;
    if (l != ckpt_level)
        return dsf_error_set("--level %s conflicts with the checkpoint, which is %s level", level,
                             dsf_level_name(ckpt_level));
    return 0;
}
