// feedback.c: see feedback.h.
#include "feedback.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int parse_float(const char *s, char end, float *out, const char **rest) {
    char *e;
    double v = strtod(s, &e);
    if (e == s || *e != end || !isfinite(v)) return -1;
    *out = (float)v;
    *rest = e;
    return 0;
}

static int parse_base(const char *s, dsf_feedback *f) {
    const char *rest;
    memset(f, 0, sizeof *f);
    if (strcmp(s, "uniform") == 0) {
        f->kind = DSF_FEEDBACK_UNIFORM;
        f->hi = 1;
        return 0;
    }
    if (strncmp(s, "uniform:", 8) == 0) {
        f->kind = DSF_FEEDBACK_UNIFORM;
        if (parse_float(s + 8, ',', &f->lo, &rest) || parse_float(rest + 1, '\0', &f->hi, &rest) ||
            !(f->lo <= f->hi))
            return dsf_error_set("bad feedback '%s': expected uniform:LO,HI with LO <= HI", s);
        return 0;
    }
    if (strcmp(s, "linspace") == 0) {
        f->kind = DSF_FEEDBACK_LINSPACE;
        f->hi = 1;
        return 0;
    }
    if (strncmp(s, "linspace:", 9) == 0) {
        f->kind = DSF_FEEDBACK_LINSPACE;
        if (parse_float(s + 9, ',', &f->lo, &rest) || parse_float(rest + 1, '\0', &f->hi, &rest))
            return dsf_error_set("bad feedback '%s': expected linspace:LO,HI", s);
        return 0;
    }
    if (strcmp(s, "zero") == 0) {
        f->kind = DSF_FEEDBACK_ZERO;
        return 0;
    }
    if (strcmp(s, "identity") == 0) {
        f->kind = DSF_FEEDBACK_IDENTITY;
        return 0;
    }
    if (strcmp(s, "ssm") == 0) {
        f->kind = DSF_FEEDBACK_SSM;
        return 0;
    }
    if (strcmp(s, "diag") == 0) {
        f->kind = DSF_FEEDBACK_DIAG;
        return 0;
    }
    if (strcmp(s, "fit") == 0 || strncmp(s, "fit:", 4) == 0) {
        f->kind = DSF_FEEDBACK_FIT;
        f->every = 10;
        if (s[3] == ':') {
            float every;
            if (parse_float(s + 4, '\0', &every, &rest) || every < 1 || every > 1e9 ||
                every != (float)(int)every)
                return dsf_error_set("bad feedback '%s': expected fit:N with N a whole number of "
                                     "steps >= 1", s);
            f->every = (int)every;
        }
        return 0;
    }
    if (strncmp(s, "lowrank:", 8) == 0) {
        float r;
        f->kind = DSF_FEEDBACK_LOWRANK;
        if (parse_float(s + 8, '\0', &r, &rest) || r < 1 || r > DSF_FEEDBACK_MAX_RANK ||
            r != (float)(int)r)
            return dsf_error_set("bad feedback '%s': expected lowrank:R with R a whole number "
                                 "from 1 to %d", s, DSF_FEEDBACK_MAX_RANK);
        f->rank = (int)r;
        return 0;
    }
    if (strncmp(s, "const:", 6) == 0) {
        f->kind = DSF_FEEDBACK_CONST;
        if (parse_float(s + 6, '\0', &f->lo, &rest))
            return dsf_error_set("bad feedback '%s': expected const:C with C a number", s);
        return 0;
    }
    return dsf_error_set("unknown feedback '%s' (expected uniform[:LO,HI], linspace[:LO,HI], "
                         "zero, identity, const:C, ssm, fit[:N], diag or lowrank:R, all but lowrank "
                         "with an optional +K)", s);
}

// The base spelling, then +K: the last '+' followed by digits only, when what
// precedes it is a feedback by itself (so that const:1e+2 stays a number).
int dsf_feedback_parse(const char *s, dsf_feedback *f) {
    const char *plus = strrchr(s, '+');
    if (plus && plus[1] && strspn(plus + 1, "0123456789") == strlen(plus + 1) &&
        (size_t)(plus - s) < 64) {
        char base[64];
        memcpy(base, s, (size_t)(plus - s));
        base[plus - s] = 0;
        if (parse_base(base, f) == 0) {
            if (strlen(plus + 1) > 6 || atol(plus + 1) > DSF_REFINE_MAX)
                return dsf_error_set("bad feedback '%s': at most %d correction sweeps", s,
                                     DSF_REFINE_MAX);
            if (f->kind == DSF_FEEDBACK_LOWRANK)
                return dsf_error_set("bad feedback '%s': correction sweeps (+K) apply to the "
                                     "diagonal feedbacks, not lowrank", s);
            f->refine = atoi(plus + 1);
            return 0;
        }
    }
    return parse_base(s, f);
}

void dsf_feedback_format(const dsf_feedback *f, char *buf, size_t n) {
    if (f->refine > 0) {  // the base spelling, then +K
        char base[48];
        dsf_feedback f0 = *f;
        f0.refine = 0;
        dsf_feedback_format(&f0, base, sizeof base);
        snprintf(buf, n, "%s+%d", base, f->refine);
        return;
    }
    switch (f->kind) {
    case DSF_FEEDBACK_UNIFORM: snprintf(buf, n, "uniform:%g,%g", f->lo, f->hi); break;
    case DSF_FEEDBACK_LINSPACE: snprintf(buf, n, "linspace:%g,%g", f->lo, f->hi); break;
    case DSF_FEEDBACK_ZERO: snprintf(buf, n, "zero"); break;
    case DSF_FEEDBACK_IDENTITY: snprintf(buf, n, "identity"); break;
    case DSF_FEEDBACK_CONST: snprintf(buf, n, "const:%g", f->lo); break;
    case DSF_FEEDBACK_SSM: snprintf(buf, n, "ssm"); break;
    case DSF_FEEDBACK_FIT: snprintf(buf, n, "fit:%d", f->every); break;
    case DSF_FEEDBACK_DIAG: snprintf(buf, n, "diag"); break;
    case DSF_FEEDBACK_LOWRANK: snprintf(buf, n, "lowrank:%d", f->rank); break;
    }
}

void dsf_feedback_fill(const dsf_feedback *f, dsf_rng *rng, float *a, int H, int T) {
    for (int i = 0; i < H; i++) {
        switch (f->kind) {
        case DSF_FEEDBACK_UNIFORM: a[i] = f->lo + (f->hi - f->lo) * dsf_rng_float(rng); break;
        case DSF_FEEDBACK_LINSPACE:  // torch.linspace(lo, hi, H): lo at 0, hi at H−1
            a[i] = H > 1 ? (float)(f->lo + (double)(f->hi - f->lo) * i / (H - 1)) : f->lo;
            break;
        case DSF_FEEDBACK_ZERO:
        case DSF_FEEDBACK_FIT:
        case DSF_FEEDBACK_DIAG: a[i] = 0; break;
        case DSF_FEEDBACK_LOWRANK: a[i] = dsf_rng_float(rng); break;
        case DSF_FEEDBACK_IDENTITY: a[i] = 1; break;
        case DSF_FEEDBACK_CONST: a[i] = f->lo; break;
        case DSF_FEEDBACK_SSM: {
            double tmax = T > 1 ? T : 1;
            double tau = H > 1 ? exp(log(tmax) * i / (H - 1)) : 1;
            a[i] = (float)exp(-1.0 / tau);
            break;
        }
        }
    }
}

void dsf_feedback_fill_lowrank(const dsf_feedback *f, dsf_rng *rng, float *u, float *v, int H) {
    const size_t n = (size_t)H * f->rank;
    const float s = sqrtf(3.0f / (2.0f * f->rank * H));
    for (size_t k = 0; k < n; k++) u[k] = s * (2 * dsf_rng_float(rng) - 1);
    for (size_t k = 0; k < n; k++) v[k] = s * (2 * dsf_rng_float(rng) - 1);
}

int dsf_feedback_is_diagonal_stationary(const dsf_feedback *f) {
    return f->kind != DSF_FEEDBACK_DIAG && f->kind != DSF_FEEDBACK_LOWRANK;
}

float dsf_feedback_max(const dsf_feedback *f, int T) {
    switch (f->kind) {
    case DSF_FEEDBACK_UNIFORM:
    case DSF_FEEDBACK_LINSPACE: return f->lo > f->hi ? f->lo : f->hi;
    case DSF_FEEDBACK_ZERO: return 0;
    case DSF_FEEDBACK_IDENTITY: return 1;
    case DSF_FEEDBACK_CONST: return f->lo;
    case DSF_FEEDBACK_SSM: return (float)exp(-1.0 / (T > 1 ? T : 1));
    case DSF_FEEDBACK_LOWRANK: return 1;
    case DSF_FEEDBACK_FIT:
    case DSF_FEEDBACK_DIAG: break;
    }
    return NAN;
}

int dsf_feedback_caution(const dsf_feedback *f, int T, char *buf, size_t n) {
    const float amax = dsf_feedback_max(f, T);
    if (f->refine <= 0 || !(amax > DSF_SWEEP_SAFE_A) || T < 2) return 0;
    char canon[64];
    dsf_feedback_format(f, canon, sizeof canon);
    snprintf(buf, n,
             "feedback %s: %d correction sweep%s over a feedback with channels up to a = %.2f; "
             "at %d steps each sweep can multiply the error of the steps not yet exact by "
             "about %d*|J - a| (docs/FEEDBACK.md): with HI <= %.1f (e.g. uniform:0,0.5+%d) "
             "the sweeps bring the gradient towards BPTT's",
             canon, f->refine, f->refine > 1 ? "s" : "", amax, T, T, DSF_SWEEP_SAFE_A,
             f->refine);
    return 1;
}
