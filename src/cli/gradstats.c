// gradstats.c: `dsf gradstats`: how close each approximate gradient is to the
// exact one, tensor by tensor, on real batches.
#include <math.h>
#include <string.h>

#include "cli.h"
#include "core/gemm.h"
#include "data/batch.h"
#include "grad/feedback.h"

static const char *usage =
    "usage: dsf gradstats --ckpt FILE --data PATH [--split S] [--batches N] [--seq N]\n"
    "                     [--feedback LIST]\n"
    "\n"
    "For N consecutive batches of a split (state carried as in training), computes\n"
    "the exact BPTT gradient of the model in FILE and, from the same forward pass,\n"
    "the FT gradient and the DSF gradient with the checkpoint's feedback and with\n"
    "each feedback in LIST (comma-separated --feedback values, drawn with --seed).\n"
    "Prints, per tensor and overall, the mean over batches of the cosine similarity\n"
    "to the BPTT gradient and of the norm ratio |g| / |g_bptt|. The batches are the\n"
    "checkpoint's (its batch, sequence length and batching); --seq measures at\n"
    "another length, N steps: stream windows of N, or sentences cut to (chunks of)\n"
    "N + 1 tokens.";

enum { MAX_ROWS = 16 };

typedef struct {
    char name[96];
    dsf_method method;
    dsf_feedback fb;      // dsf: the kind
    float *a, *u, *v;     // dsf: a (L,H); U, V (L,H,r) for lowrank
    double cos_all, ratio_all;
    double *cos, *ratio;  // per tensor, summed over batches
} row;

static double dot(const float *a, const float *b, size_t n) {
    double s = 0;
    for (size_t i = 0; i < n; i++) s += (double)a[i] * b[i];
    return s;
}

// Accumulates cosine and norm ratio of g against ref, per tensor and overall.
static void accumulate(row *r, const dsf_lm *m, const float *g, const float *ref) {
    for (int k = 0; k < m->ntensors; k++) {
        const dsf_param *p = &m->tensors[k];
        const float *a = g + p->offset, *b = ref + p->offset;
        double ab = dot(a, b, p->numel), aa = dot(a, a, p->numel), bb = dot(b, b, p->numel);
        r->cos[k] += aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : (aa == bb ? 1 : 0);
        r->ratio[k] += bb > 0 ? sqrt(aa / bb) : 0;
    }
    double ab = dot(g, ref, m->n), aa = dot(g, g, m->n), bb = dot(ref, ref, m->n);
    r->cos_all += aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
    r->ratio_all += bb > 0 ? sqrt(aa / bb) : 0;
}

int cmd_gradstats(int argc, char **argv) {
    const char *ckpt = NULL, *data = NULL, *split_name = "valid", *feedback = NULL;
    int batches = 10, seq = 0, threads = cli_default_threads();
    int64_t seed = 1;
    arg_spec specs[] = {
        OPT("ckpt", ARG_STR, &ckpt, 0, 0, "checkpoint (the model to measure at)"),
        OPT("data", ARG_STR, &data, 0, 0, "data directory, text file or builtin:recall[:D]"),
        OPT("split", ARG_STR, &split_name, 0, 0, "train, valid or test"),
        OPT("batches", ARG_INT, &batches, 1, 1 << 20, "batches to average over"),
        OPT("seq", ARG_INT, &seq, 1, 1 << 20, "sequence length (default: the checkpoint's)"),
        OPT("feedback", ARG_STR, &feedback, 0, 0, "extra dsf feedbacks, comma-separated (e.g. zero,ssm,uniform:0,0.5)"),
        OPT("seed", ARG_I64, &seed, 0, 9.2e18, "seed for drawn feedbacks"),
        OPT("threads", ARG_INT, &threads, 1, 4096, "threads"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    int rc = args_parse(argc, argv, specs, n, usage);
    if (rc) return rc > 0 ? 0 : -1;  // 1: --help was printed
    if (!ckpt || !data) return dsf_error_set("--ckpt and --data are required (see --help)");
    int split;
    if (dsf_split_parse(split_name, &split)) return -1;
    dsf_set_threads(threads);

    dsf_lm m;
    dsf_run run;
    dsf_vocab *v;
    if (cli_open_checkpoint(ckpt, &m, &run, &v)) return -1;
    if (seq) run.seq = seq;
    const dsf_lm_config *c = &m.cfg;
    const size_t LH = (size_t)c->L * dsf_cell_states(c->cell) * c->H;
    row rows[MAX_ROWS];
    int nrows = 0;
    memset(rows, 0, sizeof rows);
    rc = -1;
    dsf_tokens tokens = {0};
    dsf_seq_batcher sb = {0};
    dsf_lm_work w;
    memset(&w, 0, sizeof w);
    float *ref = NULL, *state0 = NULL;
    const dsf_feedback saved_fb = m.fb;
    float *const saved_a = m.feedback, *const saved_u = m.fb_u, *const saved_v = m.fb_v;

    // The rows: ft, dsf with the checkpoint's feedback, dsf with each listed feedback.
    rows[nrows].method = DSF_METHOD_FT;
    snprintf(rows[nrows++].name, sizeof rows[0].name, "ft");
    rows[nrows].method = DSF_METHOD_DSF;
    rows[nrows].fb = m.fb;
    if (m.fb.kind == DSF_FEEDBACK_FIT) rows[nrows].fb.kind = DSF_FEEDBACK_CONST;  // as trained
    rows[nrows].a = m.feedback, rows[nrows].u = m.fb_u, rows[nrows].v = m.fb_v;
    snprintf(rows[nrows++].name, sizeof rows[0].name, "dsf %s (checkpoint)", run.feedback);
    if (feedback) {
        // Split at commas that start a new name: "uniform:0,0.5" keeps its comma.
        char *list = dsf_xstrdup(feedback);
        for (char *p = list; *p; p++)
            if (*p == ',' && ((p[1] >= 'a' && p[1] <= 'z') || (p[1] >= 'A' && p[1] <= 'Z'))) *p = ';';
        char *save = NULL;
        dsf_rng rng;
        dsf_rng_seed(&rng, (uint64_t)seed);
        for (char *tok = strtok_r(list, ";", &save); tok; tok = strtok_r(NULL, ";", &save)) {
            dsf_feedback fb;
            if (nrows == MAX_ROWS) {
                dsf_error_set("at most %d feedbacks", MAX_ROWS - 2);
                free(list);
                goto done;
            }
            if (dsf_feedback_parse(tok, &fb) || cli_check_feedback_cell(&fb, c->cell)) {
                free(list);
                goto done;
            }
            row *r = &rows[nrows++];
            r->method = DSF_METHOD_DSF;
            // Drawn through the model, which then hands the vectors to the row.
            m.feedback = dsf_xmalloc(LH * sizeof(float));
            m.fb_u = m.fb_v = NULL;
            if (lm_set_feedback(&m, &fb, &rng, run.seq)) {
                free(list);
                goto done;
            }
            r->fb = fb, r->a = m.feedback, r->u = m.fb_u, r->v = m.fb_v;
            snprintf(r->name, sizeof r->name, "dsf %s", tok);
        }
        free(list);
    }
    for (int i = 0; i < nrows; i++) {
        rows[i].cos = calloc((size_t)m.ntensors, sizeof(double));
        rows[i].ratio = calloc((size_t)m.ntensors, sizeof(double));
    }
    // The checkpoint's batching: streams carrying their state, or sentences in the
    // file's order, each batch from a zero state.
    const int seqs = run.unit != DSF_UNIT_STREAM;
    if (cli_load_split(data, &run, v, split, &tokens) ||
        lm_work_create(&w, c, run.batch, run.seq))
        goto done;
    w.ragged = seqs;  // each batch from a zero state: padding skipped (model/lm.h)
    for (int i = 0; i < nrows; i++) {  // the buffers each row's method and feedback need
        if (rows[i].a) m.fb = rows[i].fb;
        const int rc_i = lm_work_reserve(&w, &m, rows[i].method);
        m.fb = saved_fb;
        if (rc_i) goto done;
    }
    dsf_batcher bt;
    if (seqs ? seqbatch_init(&sb, &tokens, run.batch, run.seq, DSF_PAD_ID)
             : batcher_init(&bt, &tokens, run.batch, run.seq))
        goto done;
    int64_t avail = seqs ? seqbatch_steps(&sb) : batcher_steps(&bt, run.seq);
    if (batches > avail) batches = (int)avail;
    ref = dsf_xmalloc(m.n * sizeof(float));
    const size_t LBH = (size_t)c->L * run.batch * c->H;  // the carried h (and the LSTM's c)
    state0 = dsf_xmalloc(2 * LBH * sizeof(float));
    int32_t *x = dsf_xmalloc(sizeof(int32_t) * (size_t)run.seq * run.batch);
    int32_t *y = dsf_xmalloc(sizeof(int32_t) * (size_t)run.seq * run.batch);
    lm_work_reset_state(&w, c);
    double t0 = dsf_now(), loss = 0;
    for (int b = 0; b < batches; b++) {
        if (seqs) lm_work_reset_state(&w, c);
        int T = (int)(seqs ? seqbatch_get(&sb, b, x, y)
                           : batcher_get(&bt, (int64_t)b * run.seq, run.seq, x, y));
        memcpy(state0, w.state, LBH * sizeof(float));
        memcpy(state0 + LBH, w.state_c, LBH * sizeof(float));
        loss += lm_forward(&m, &w, x, y, T) / batches;
        lm_backward(&m, &w, DSF_METHOD_BPTT);
        memcpy(ref, m.grads, m.n * sizeof(float));
        for (int i = 0; i < nrows; i++) {  // the same forward pass from the same state
            memcpy(w.state, state0, LBH * sizeof(float));
            memcpy(w.state_c, state0 + LBH, LBH * sizeof(float));
            if (rows[i].a) {
                m.fb = rows[i].fb;
                m.feedback = rows[i].a, m.fb_u = rows[i].u, m.fb_v = rows[i].v;
            }
            lm_forward(&m, &w, x, y, T);
            if (rows[i].a && m.fb.kind == DSF_FEEDBACK_FIT) {
                // fit: a re-estimated on this batch (from the last batch's a, 0 at first)
                w.fit_now = 1, w.fit_rate = 1;
                lm_backward(&m, &w, rows[i].method);
                w.fit_now = 0;
            }
            lm_backward(&m, &w, rows[i].method);
            accumulate(&rows[i], &m, m.grads, ref);
        }
        m.fb = saved_fb, m.feedback = saved_a, m.fb_u = saved_u, m.fb_v = saved_v;
    }
    free(x);
    free(y);

    printf("gradient against exact BPTT: mean over %d batches of %d x %d from the %s split "
           "(loss %.4f, %.1fs)\n", batches, run.batch, run.seq, split_name, loss, dsf_now() - t0);
    printf("%-34s %8s %8s\n", "method / tensor", "cosine", "norm");
    for (int i = 0; i < nrows; i++) {
        printf("%-34s %8.4f %8.4f\n", rows[i].name, rows[i].cos_all / batches,
               rows[i].ratio_all / batches);
        for (int k = 0; k < m.ntensors; k++)
            printf("  %-32s %8.4f %8.4f\n", m.tensors[k].name, rows[i].cos[k] / batches,
                   rows[i].ratio[k] / batches);
    }
    rc = 0;
done:
    m.fb = saved_fb, m.feedback = saved_a, m.fb_u = saved_u, m.fb_v = saved_v;
    for (int i = 1; i < nrows; i++) {  // rows 0 and 1 (ft, the checkpoint's) own no vectors
        if (rows[i].a == saved_a) continue;
        dsf_free(rows[i].a);
        dsf_free(rows[i].u);
        dsf_free(rows[i].v);
    }
    for (int i = 0; i < nrows; i++) {
        free(rows[i].cos);
        free(rows[i].ratio);
    }
    free(ref);
    free(state0);
    seqbatch_free(&sb);
    lm_work_destroy(&w);
    tokens_free(&tokens);
    vocab_free(v);
    lm_destroy(&m);
    return rc;
}
