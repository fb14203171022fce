// bench.c: `dsf bench`: the speed of full training steps on random tokens, per
// phase, against the FLOP model of docs/DESIGN.md §8 and a GEMM measured in the same run.
#include <math.h>
#include <string.h>
#include <sys/resource.h>

#include "cli.h"
#include "core/gemm.h"
#include "core/prof.h"
#include "cuda/gpu.h"
#include "grad/feedback.h"
#include "train/step.h"

static const char *usage =
    "usage: dsf bench [options]\n"
    "\n"
    "Runs --steps full training steps (forward, backward, gradient clipping, SGD\n"
    "update) of the model the flags describe on random tokens, after --warmup\n"
    "steps, and prints tokens/s, milliseconds per phase, peak resident memory, the\n"
    "achieved GFLOP/s and the same-precision GEMM throughput of this machine at the\n"
    "same thread count, measured in the same run.\n"
    "\n"
    "FLOPs counted (docs/DESIGN.md §8): per token and layer 2*GH*(I+H) for the cell's\n"
    "forward (G = 3 gates for gru, 4 for lstm, 1 for rnn), 2*H*V for the decoder,\n"
    "and a training step as 3x the forward. That is what BPTT executes; ft and dsf\n"
    "skip the backward product with W_hh (2*GH*H per token and layer), and when the\n"
    "vocabulary is smaller than a step's T*B rows the first layer's input products\n"
    "run once over the V rows of the embedding table (projected once) instead of\n"
    "over the T*B rows: the executed count is then printed beside the model's.\n"
    "\n"
    "--device cuda runs the steps on the GPU (a build with make CUDA=1; GRU, LSTM\n"
    "or Elman stack, bptt, ft and dsf with a fixed or diag feedback, sweeps, every\n"
    "scan): each step waits for the device (and, for the per-phase times, which\n"
    "CUDA events measure, for its update too), the reference GEMMs are cuBLAS's,\n"
    "and \"other\" is the host's share that the device does not overlap.\n"
    "DSF_CUDA_GRAPHS=1 replays the recurrent loops from CUDA graphs.";

typedef struct {
    const char *cell, *method, *feedback, *scan, *device;
    int vocab, emb, hidden, layers, batch, seq, threads, gemm_size, no_projection;
    int64_t steps, warmup, seed;
} bench_opts;

// The best of reps runs of C (M,N) = A (M,K) op(B), in GFLOP/s.
static double gemm_gflops(int M, int N, int K, int tb, int reps) {
    float *a = dsf_xmalloc(sizeof(float) * (size_t)M * K);
    float *b = dsf_xmalloc(sizeof(float) * (size_t)K * N);
    float *c = dsf_xmalloc(sizeof(float) * (size_t)M * N);
    dsf_rng rng;
    dsf_rng_seed(&rng, 7);
    dsf_rng_fill_uniform(&rng, a, (size_t)M * K, -1, 1);
    dsf_rng_fill_uniform(&rng, b, (size_t)K * N, -1, 1);
    memset(c, 0, sizeof(float) * (size_t)M * N);
    dsf_sgemm(0, tb, M, N, K, 1.0f, a, K, b, tb ? K : N, 0.0f, c, N);  // warm-up
    double best = INFINITY;
    for (int r = 0; r < reps; r++) {
        double t = dsf_now();
        dsf_sgemm(0, tb, M, N, K, 1.0f, a, K, b, tb ? K : N, 1.0f, c, N);
        t = dsf_now() - t;
        if (t < best) best = t;
    }
    free(a);
    free(b);
    free(c);
    return 2.0 * M * N * K / best / 1e9;
}

static double peak_rss_mib(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru)) return 0;
    return (double)ru.ru_maxrss / 1024.0;  // KiB on Linux
}

// The reference GEMM on the device the steps run on.
static double ref_gflops(int cuda, int M, int N, int K, int tb, int reps) {
    return cuda ? dsf_gpu_gemm_gflops(M, N, K, tb, reps) : gemm_gflops(M, N, K, tb, reps);
}

static int run_bench(const bench_opts *o, dsf_cell cell, dsf_method method, const dsf_feedback *fb,
                     dsf_scan_kind scan, int cuda) {
    const int V = o->vocab, E = o->emb, H = o->hidden, L = o->layers, B = o->batch, T = o->seq;
    const int G = dsf_cell_gates(cell);  // gate blocks: 3 GRU, 4 LSTM, 1 Elman
    // The reference GEMMs are measured before and after the steps, the better of
    // the two kept: on a shared machine that is the conservative choice. (Before
    // the model exists, so that their buffers do not add to its peak RSS.)
    const int S = o->gemm_size;
    double g_rec = ref_gflops(cuda, B, G * H, H, 1, 20), g_sq = ref_gflops(cuda, S, S, S, 0, 3);

    dsf_lm_config cfg = {.V = V, .E = E, .H = H, .L = L, .cell = cell};
    dsf_lm m;
    dsf_lm_work w;
    dsf_optim opt;
    dsf_gpu *gpu = NULL;
    memset(&w, 0, sizeof w);
    memset(&opt, 0, sizeof opt);
    if (lm_create(&m, &cfg)) return -1;
    int rc = -1;
    // (On the GPU the activations live on the device: none on the host.)
    if ((!cuda && lm_work_create(&w, &cfg, B, T)) || optim_create(&opt, DSF_OPTIM_SGD, 1.0f, m.n))
        goto done;
    w.scan = scan;
    dsf_rng rng;
    dsf_rng_seed(&rng, (uint64_t)o->seed);
    lm_init_params(&m, &rng);
    if (lm_set_feedback(&m, fb, &rng, T)) goto done;
    if (cuda && (dsf_gpu_check(&m, method, scan) || dsf_gpu_create(&gpu, &m, &opt, B, T, scan)))
        goto done;
    dsf_step st;  // train's step: SGD, clip 0.25
    if (dsf_step_create(&st, &m, &w, &opt, gpu, method, 0.25)) goto done;

    // A few batches of random tokens, drawn before the clock starts.
    enum { NBATCH = 4 };
    const size_t TB = (size_t)T * B;
    int32_t *tok = dsf_xmalloc(sizeof(int32_t) * (TB + B) * NBATCH);
    for (size_t i = 0; i < (TB + B) * NBATCH; i++) tok[i] = (int32_t)(dsf_rng_u64(&rng) % (uint64_t)V);

    char fdesc[96] = "";
    if (method == DSF_METHOD_DSF) {
        char canon[64];
        dsf_feedback_format(fb, canon, sizeof canon);
        snprintf(fdesc, sizeof fdesc, " (feedback %s, scan %s)", canon, dsf_scan_name(scan));
    }
    printf("model: %s, %d layer%s, vocab %d, emb %d, hidden %d, %zu parameters\n", o->cell, L,
           L > 1 ? "s" : "", V, E, H, m.n);
    if (cuda)
        printf("step: method %s%s, batch %d x seq %d = %zu tokens, SGD, clip 0.25, %s, cuBLAS\n",
               dsf_method_name(method), fdesc, B, T, TB, dsf_gpu_name(gpu));
    else
        printf("step: method %s%s, batch %d x seq %d = %zu tokens, SGD, clip 0.25, %d threads, %s\n",
               dsf_method_name(method), fdesc, B, T, TB, dsf_get_threads(), cli_cpu_backend());

    double loss = 0, t_all = 0;
    for (int64_t s = 0; s < o->warmup + o->steps; s++) {
        if (s == o->warmup) {
            dsf_prof_reset(1);
            if (gpu) dsf_gpu_profile(gpu, 1);
            t_all = dsf_now();
        }
        const int32_t *x = tok + (size_t)(s % NBATCH) * (TB + B);
        // targets: the next token of each stream; on a GPU one call that waits
        dsf_step_result res;
        dsf_step_run(&st, &(dsf_batch){.x = x, .y = x + B, .T = T}, &res);
        loss = res.loss;
    }
    t_all = dsf_now() - t_all;
    double phase[DSF_PROF_NPHASES];
    memcpy(phase, dsf_prof_seconds, sizeof phase);
    dsf_prof_reset(0);
    if (gpu) {  // the device's own clock (CUDA events), per phase
        dsf_gpu_profile_ms(gpu, phase);
        for (int p = 0; p < DSF_PROF_NPHASES; p++) phase[p] *= 1e-3;
    }
    if (!isfinite(loss)) {
        dsf_error_set("the loss became %g: the benchmark's steps are not meaningful", loss);
        free(tok);
        goto done;
    }

    const double steps = (double)o->steps, ms = 1e3 * t_all / steps;
    printf("steps: %lld timed after %lld warm-up, %.3f s, last loss %.4f\n", (long long)o->steps,
           (long long)o->warmup, t_all, loss);
    printf("tokens/s %.1f\n", (double)TB * steps / t_all);
    printf("ms/step %.3f\n", ms);
    double counted = 0;
    for (int p = 0; p < DSF_PROF_NPHASES; p++) {
        double pm = 1e3 * phase[p] / steps;
        counted += pm;
        printf("  %-27s %9.3f ms  %5.1f%%\n", dsf_prof_name((dsf_prof_phase)p), pm, 100 * pm / ms);
    }
    // On the GPU "other" is the host's part of a step that the device does not
    // overlap (the token sort and upload, launch gaps), the device's clock the rest.
    printf("  %-27s %9.3f ms  %5.1f%%\n", "other", ms - counted, 100 * (ms - counted) / ms);
    printf("peak RSS %.1f MiB\n", peak_rss_mib());

    // docs/DESIGN.md §8: per token 2*GH*(I+H) a layer (G = 3 for the GRU) and 2*H*V for
    // the decoder, forward; x3 to train.
    double fwd = 2.0 * H * V, skip = 0;
    for (int l = 0; l < L; l++) {
        fwd += 2.0 * G * H * ((l ? H : E) + H);
        skip += 2.0 * G * H * H;  // the backward product gh W_hh, BPTT only
    }
    const double flops = 3 * fwd * (double)TB;
    // DSF's correction sweeps (feedback +K) each do that product once, over (T−1)B rows.
    const int sweeps = method == DSF_METHOD_DSF ? m.fb.refine : 0;
    double executed = method == DSF_METHOD_BPTT
                          ? flops
                          : flops - skip * (double)TB + sweeps * skip * (double)(T - 1) * B;
    // The projected embedding (lm.h): layer 0's three input products over T·B rows
    // become three over the V rows of the table.
    const int projected = !cuda && w.proj_now;
    if (projected) executed -= 3 * 2.0 * G * H * E * ((double)TB - V);
    const double gflops = flops / (t_all / steps) / 1e9;
    printf("FLOPs/step %.3f G (3 x forward: 2*%dH*(I+H) per token and layer, 2*H*V decoder)",
           flops / 1e9, G);
    if (executed != flops) {
        char why[96];
        snprintf(why, sizeof why, "%s%s%s",
                 method == DSF_METHOD_BPTT ? ""
                 : sweeps                  ? "gh*W_hh once per correction sweep"
                                           : "no backward gh*W_hh",
                 projected && method != DSF_METHOD_BPTT ? ", " : "",
                 projected ? "embedding projected once: V < T*B" : "");
        printf("; %s executes %.3f G (%s)", dsf_method_name(method), executed / 1e9, why);
    }
    printf("\n");
    printf("achieved %.2f GFLOP/s", gflops);
    if (executed != flops) printf(" (executed %.2f GFLOP/s)", executed / (t_all / steps) / 1e9);
    printf("\n");

    // The same GEMM backend at the same thread count: the recurrent step's shape
    // (B,3H) = (B,H) W_hhᵀ through dsf_sgemm (the BLAS; the recurrence itself uses
    // core/panel.h) and a large square product, the peak.
    g_rec = fmax(g_rec, ref_gflops(cuda, B, G * H, H, 1, 20));
    g_sq = fmax(g_sq, ref_gflops(cuda, S, S, S, 0, 3));
    printf("GEMM %dx%dx%d (recurrent step, B x %dH x H) %.2f GFLOP/s\n", B, G * H, H, G, g_rec);
    printf("GEMM %dx%dx%d (square; the peak) %.2f GFLOP/s\n", S, S, S, g_sq);
    printf("model FLOPs at %.0f%% of peak", 100 * gflops / g_sq);
    if (executed != flops)
        printf(" (executed: %.0f%% of peak)", 100 * executed / (t_all / steps) / 1e9 / g_sq);
    printf("\n");
    free(tok);
    rc = 0;
done:
    dsf_gpu_destroy(gpu);
    optim_destroy(&opt);
    lm_work_destroy(&w);
    lm_destroy(&m);
    return rc;
}

int cmd_bench(int argc, char **argv) {
    bench_opts o = {.cell = "gru", .method = "bptt", .feedback = "uniform", .scan = "seq",
                    .device = "cpu",
                    .vocab = 256, .emb = 256, .hidden = 1024, .layers = 1, .batch = 32, .seq = 128,
                    .threads = cli_default_threads(), .gemm_size = 2048, .steps = 10, .warmup = 2,
                    .seed = 1};
    arg_spec specs[] = {
        CLI_MODEL_OPTS(o),
        OPT("vocab", ARG_INT, &o.vocab, 1, 1 << 28, "vocabulary size"),
        OPT("batch", ARG_INT, &o.batch, 1, 1 << 20, "parallel streams per step"),
        OPT("seq", ARG_INT, &o.seq, 1, 1 << 20, "steps per sequence"),
        CLI_METHOD_OPTS(o),
        OPT("threads", ARG_INT, &o.threads, 1, 4096, "threads (OpenMP and BLAS)"),
        OPT("device", ARG_STR, &o.device, 0, 0, "cpu, or cuda (a build with make CUDA=1)"),
        OPT("steps", ARG_I64, &o.steps, 1, 1e9, "timed training steps"),
        OPT("warmup", ARG_I64, &o.warmup, 0, 1e9, "untimed steps before them"),
        OPT("gemm-size", ARG_INT, &o.gemm_size, 16, 16384, "side of the square reference GEMM"),
        OPT("seed", ARG_I64, &o.seed, 0, 9.2e18, "seed of weights, feedback and tokens"),
        OPT("no-projection", ARG_FLAG, &o.no_projection, 0, 0,
            "the first layer's input products over the T*B rows even when V < T*B"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    dsf_cell cell;
    if (dsf_cell_parse(o.cell, &cell)) return -1;
    dsf_method method;
    dsf_feedback fb;
    dsf_scan_kind scan;
    if (dsf_method_parse(o.method, &method) || dsf_feedback_parse(o.feedback, &fb) ||
        cli_parse_scan(o.scan, &scan) || cli_check_feedback_scan(&fb, scan) ||
        cli_check_feedback_cell(&fb, cell))
        return -1;
    int cuda = 0;
    if ((rc = cli_parse_device(o.device, &cuda))) return rc;
    dsf_set_threads(o.threads);
    lm_set_embedding_projection(!o.no_projection);
    return run_bench(&o, cell, method, &fb, scan, cuda);
}
