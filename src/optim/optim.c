// optim.c: see optim.h.
#include "optim.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

static const char *const optim_names[] = {"sgd", "adamw", "adam"};

const char *dsf_optim_name(dsf_optim_kind k) { return optim_names[k]; }

int dsf_optim_parse(const char *s, dsf_optim_kind *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, optim_names[i]) == 0) {
            *out = (dsf_optim_kind)i;
            return 0;
        }
    return dsf_error_set("unknown optimizer '%s' (expected sgd, adamw or adam)", s);
}

int dsf_schedule_parse(const char *s, dsf_schedule *out) {
    memset(out, 0, sizeof *out);
    if (strcmp(s, "auto") == 0) return 0;
    if (strcmp(s, "const") == 0) {
        out->kind = DSF_SCHED_CONST;
        return 0;
    }
    if (strcmp(s, "cosine") == 0) {
        out->kind = DSF_SCHED_COSINE;
        return 0;
    }
    if (strncmp(s, "step:", 5) == 0) {
        char *e;
        out->kind = DSF_SCHED_STEP;
        out->every_epochs = strtod(s + 5, &e);
        if (e != s + 5 && *e == ',') {
            const char *g = e + 1;
            out->gamma = strtod(g, &e);
            if (e != g && *e == 0 && out->every_epochs > 0 && out->every_epochs < 1e9 &&
                out->gamma > 0 && out->gamma <= 1e3)
                return 0;
        }
        return dsf_error_set("bad schedule '%s': expected step:E,G (every E > 0 epochs, the rate "
                             "times G > 0)", s);
    }
    return dsf_error_set("unknown schedule '%s' (expected auto, const, step:E,G or cosine)", s);
}

void dsf_schedule_format(const dsf_schedule *s, char *buf, size_t n) {
    switch (s->kind) {
    case DSF_SCHED_AUTO: snprintf(buf, n, "auto"); break;
    case DSF_SCHED_CONST: snprintf(buf, n, "const"); break;
    case DSF_SCHED_COSINE: snprintf(buf, n, "cosine"); break;
    case DSF_SCHED_STEP: snprintf(buf, n, "step:%.9g,%.9g", s->every_epochs, s->gamma); break;
    }
}

int optim_create(dsf_optim *o, dsf_optim_kind kind, float lr, size_t n) {
    memset(o, 0, sizeof *o);
    o->kind = kind;
    o->lr = lr;
    o->beta1 = 0.9f;
    o->beta2 = 0.999f;
    o->eps = 1e-8f;
    o->weight_decay = 0.01f;
    o->min_lr_ratio = 0.1f;
    o->warmup_start = 1e-6f;
    o->gamma = 1;
    o->n = n;
    if (kind != DSF_OPTIM_SGD) {
        o->m = dsf_alloc(n * sizeof(float));
        o->v = dsf_alloc(n * sizeof(float));
        if (!o->m || !o->v) {
            optim_destroy(o);
            return -1;
        }
    }
    return 0;
}

void optim_destroy(dsf_optim *o) {
    dsf_free(o->m);
    dsf_free(o->v);
    o->m = o->v = NULL;
}

float optim_lr(const dsf_optim *o) {
    const double pi = 3.14159265358979323846;
    switch (o->sched) {
    case DSF_SCHED_CONST: return o->lr;
    case DSF_SCHED_STEP:
        return (float)(o->lr * pow(o->gamma, (double)(o->step_every > 0 ? o->t / o->step_every : 0)));
    case DSF_SCHED_COSINE: {
        const int64_t t = o->t;
        if (t < o->warmup)
            return (float)(o->lr * (o->warmup_start +
                                    (1.0 - o->warmup_start) * (double)t / (double)o->warmup));
        const double span = (double)(o->total - o->warmup), eta = o->min_lr_ratio * (double)o->lr;
        const double p = span > 0 ? fmin((double)(t - o->warmup) / span, 1.0) : 1.0;
        return (float)(eta + (o->lr - eta) * 0.5 * (1 + cos(pi * p)));
    }
    case DSF_SCHED_AUTO: break;
    }
    if (o->kind == DSF_OPTIM_SGD) return o->lr;
    int64_t s = o->t + 1;  // the step about to be taken, from 1
    if (o->warmup > 0 && s <= o->warmup) return o->lr * (float)s / (float)o->warmup;
    if (o->total <= o->warmup) return o->lr;
    double p = (double)(s - o->warmup) / (double)(o->total - o->warmup);
    if (p > 1) p = 1;
    double c = 0.5 * (1 + cos(pi * p));
    return (float)(o->lr * (o->min_lr_ratio + (1 - o->min_lr_ratio) * c));
}

void optim_step(dsf_optim *o, dsf_lm *m) {
    const float lr = optim_lr(o);
    float *p = m->params;
    const float *g = m->grads;
    o->t++;
    if (o->kind == DSF_OPTIM_SGD) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < m->n; i++) p[i] -= lr * g[i];
        return;
    }
    const float b1 = o->beta1, b2 = o->beta2;
    const float c1 = 1.0f - powf(b1, (float)o->t), c2 = 1.0f - powf(b2, (float)o->t);
    const int coupled = o->kind == DSF_OPTIM_ADAM;
    const float l2 = coupled ? o->weight_decay : 0.0f;
    for (int k = 0; k < m->ntensors; k++) {
        const dsf_param *d = &m->tensors[k];
        const float decay = !coupled && d->is_weight ? 1.0f - lr * o->weight_decay : 1.0f;
        float *pk = p + d->offset, *mk = o->m + d->offset, *vk = o->v + d->offset;
        const float *gk = g + d->offset;
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < d->numel; i++) {
            const float gi = gk[i] + l2 * pk[i];  // adam: the L2 term in the gradient
            mk[i] = b1 * mk[i] + (1 - b1) * gi;
            vk[i] = b2 * vk[i] + (1 - b2) * gi * gi;
            float mh = mk[i] / c1, vh = vk[i] / c2;
            pk[i] = pk[i] * decay - lr * mh / (sqrtf(vh) + o->eps);
        }
    }
}

double optim_clip(float *g, size_t n, double max_norm) {
    // Chunks of 2^14 summed in parallel, their sums added in chunk order: the same
    // for any thread count. The partial sums of up to 1024 chunks at a time live on
    // the stack: nothing is allocated in the training step.
    enum { CHUNK = 1 << 14, BATCH = 1024 };
    const size_t nchunks = (n + CHUNK - 1) / CHUNK;
    double sum = 0;
    for (size_t c0 = 0; c0 < nchunks; c0 += BATCH) {
        const size_t c1 = c0 + BATCH < nchunks ? c0 + BATCH : nchunks;
        double part[BATCH];
#pragma omp parallel for schedule(static) if (c1 - c0 > 1)
        for (size_t c = c0; c < c1; c++) {
            const size_t end = (c + 1) * CHUNK < n ? (c + 1) * CHUNK : n;
            double lane[8] = {0}, s = 0;  // eight independent sums: the loop vectorises
            size_t i = c * CHUNK;
            for (; i + 8 <= end; i += 8)
                for (int j = 0; j < 8; j++) lane[j] += (double)g[i + j] * g[i + j];
            for (; i < end; i++) s += (double)g[i] * g[i];
            for (int j = 0; j < 8; j++) s += lane[j];
            part[c - c0] = s;
        }
        for (size_t c = c0; c < c1; c++) sum += part[c - c0];
    }
    double norm = sqrt(sum);
    if (max_norm > 0 && isfinite(norm)) {
        double coef = max_norm / (norm + 1e-6);
        if (coef < 1) {
            float f = (float)coef;
#pragma omp parallel for schedule(static)
            for (size_t i = 0; i < n; i++) g[i] *= f;
        }
    }
    return norm;
}
