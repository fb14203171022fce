// args.c: see args.h.
#include "args.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "core/common.h"

static const char *type_hint(arg_type t) {
    switch (t) {
    case ARG_INT:
    case ARG_I64: return "N";
    case ARG_FLOAT: return "X";
    case ARG_STR: return "S";
    default: return "";
    }
}

void args_print_help(const arg_spec *specs, int n, const char *usage) {
    printf("%s\n\noptions:\n", usage);
    for (int i = 0; i < n; i++) {
        const arg_spec *s = &specs[i];
        char left[64];
        snprintf(left, sizeof left, "--%s %s", s->name, type_hint(s->type));
        printf("  %-22s %s", left, s->help);
        switch (s->type) {
        case ARG_INT: printf(" (default %d)", *(int *)s->ptr); break;
        case ARG_I64: printf(" (default %lld)", (long long)*(int64_t *)s->ptr); break;
        case ARG_FLOAT: printf(" (default %g)", *(double *)s->ptr); break;
        case ARG_STR:
            if (*(const char **)s->ptr) printf(" (default %s)", *(const char **)s->ptr);
            break;
        default: break;
        }
        printf("\n");
    }
    printf("  %-22s %s\n", "--help", "show this help");
}

// The user's text made safe for a one-line message: printable ASCII as it is,
// other bytes as \xNN, cut after 60 bytes.
static const char *quoted(const char *v) {
    static _Thread_local char buf[4 * 60 + 8];
    size_t k = 0;
    for (size_t i = 0; v[i] && i < 60; i++) {
        unsigned char c = (unsigned char)v[i];
        if (c >= 0x20 && c < 0x7f)
            buf[k++] = (char)c;
        else
            k += (size_t)snprintf(buf + k, sizeof buf - k, "\\x%02x", c);
    }
    if (strlen(v) > 60) k += (size_t)snprintf(buf + k, sizeof buf - k, "...");
    buf[k] = 0;
    return buf;
}

static int set_value(arg_spec *s, const char *v) {
    char *end;
    switch (s->type) {
    case ARG_INT:
    case ARG_I64: {
        errno = 0;
        long long x = strtoll(v, &end, 10);
        if (end == v || *end || errno)
            return dsf_error_set("--%s expects an integer, got '%s'", s->name, quoted(v));
        if (x < s->min || x > s->max)
            return dsf_error_set("--%s must be between %.0f and %.0f, got %lld", s->name, s->min,
                                 s->max, x);
        if (s->type == ARG_INT)
            *(int *)s->ptr = (int)x;
        else
            *(int64_t *)s->ptr = x;
        return 0;
    }
    case ARG_FLOAT: {
        double x = strtod(v, &end);
        if (end == v || *end || !isfinite(x))
            return dsf_error_set("--%s expects a finite number, got '%s'", s->name, quoted(v));
        if (x < s->min || x > s->max)
            return dsf_error_set("--%s must be between %g and %g, got %g", s->name, s->min, s->max,
                                 x);
        *(double *)s->ptr = x;
        return 0;
    }
    case ARG_STR:
        if (!*v) return dsf_error_set("--%s expects a non-empty value", s->name);
        *(const char **)s->ptr = v;
        return 0;
    case ARG_FLAG: *(int *)s->ptr = 1; return 0;
    }
    return -1;
}

int args_parse(int argc, char **argv, arg_spec *specs, int n, const char *usage) {
    for (int i = 0; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0) {
            args_print_help(specs, n, usage);
            return 1;
        }
        if (strncmp(a, "--", 2) != 0)
            return dsf_error_set("unexpected argument '%s' (options start with --; see --help)", quoted(a));
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        arg_spec *s = NULL;
        for (int k = 0; k < n; k++)
            if (strlen(specs[k].name) == len && strncmp(specs[k].name, name, len) == 0) s = &specs[k];
        if (!s) {
            char nm[64];
            snprintf(nm, sizeof nm, "%.*s", (int)(len < 63 ? len : 63), name);
            return dsf_error_set("unknown option '--%s' (see --help)", quoted(nm));
        }
        if (s->set) return dsf_error_set("option --%s given twice", s->name);
        const char *v = NULL;
        if (s->type == ARG_FLAG) {
            if (eq) return dsf_error_set("option --%s takes no value", s->name);
        } else if (eq) {
            v = eq + 1;
        } else {
            if (i + 1 >= argc) return dsf_error_set("option --%s needs a value", s->name);
            v = argv[++i];
        }
        if (set_value(s, v)) return -1;
        s->set = 1;
    }
    return 0;
}

int args_given(const arg_spec *specs, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (strcmp(specs[i].name, name) == 0) return specs[i].set;
    return 0;
}
