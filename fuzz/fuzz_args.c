// fuzz_args.c: libFuzzer harness for the command-line parser (make fuzz).
//
// The input, split on NUL bytes, is an argv of at most 64 arguments, parsed against a
// table with every argument type and ranges that reach the ends of int and int64_t.
// The parse must not crash; on success every option given holds a value inside its
// range and every other keeps its default; on failure the error is set; only --help
// (or -h) may print, and only to stdout. When fuzz_args_capture_stdout has sent stdout
// to a scratch file, that last rule is checked too.
//
// fuzz_args_one returns NULL, or what invariant broke (the harness aborts on that);
// tests/test_regress.c replays the seeds and the regression inputs through it.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cli/args.h"
#include "core/common.h"

#define FUZZ_ARGS_MAX 64

static int fuzz_args_stdout = -1;  // the real stdout while it goes to a scratch file

static void fuzz_args_restore_stdout(void) {
    if (fuzz_args_stdout < 0) return;
    fflush(stdout);
    dup2(fuzz_args_stdout, STDOUT_FILENO);
    close(fuzz_args_stdout);
    fuzz_args_stdout = -1;
}

// Sends stdout to an unlinked scratch file, so that what args_parse prints is measured,
// until fuzz_args_restore_stdout (or the exit).
static void fuzz_args_capture_stdout(void) {
    static int registered;
    if (fuzz_args_stdout >= 0) return;
    if (!registered++) atexit(fuzz_args_restore_stdout);
    char path[96];
    snprintf(path, sizeof path, "%s/dsf-fuzz-args-%ld.out",
             access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp", (long)getpid());
    fflush(stdout);
    int fd = open(path, O_RDWR | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return;
    unlink(path);
    fuzz_args_stdout = dup(STDOUT_FILENO);
    dup2(fd, STDOUT_FILENO);
    close(fd);
}

// Bytes written to stdout since the last call (0 unless captured).
static long fuzz_args_printed(void) {
    if (fuzz_args_stdout < 0) return 0;
    fflush(stdout);
    off_t at = lseek(STDOUT_FILENO, 0, SEEK_CUR);
    if (at > 0) {
        if (ftruncate(STDOUT_FILENO, 0)) return (long)at;
        lseek(STDOUT_FILENO, 0, SEEK_SET);
    }
    return at > 0 ? (long)at : 0;
}

typedef struct {
    int count, delta;
    int64_t steps, seed;
    double lr, beta;
    const char *data, *name;
    int verbose, dry;
} fuzz_args_opts;

static const fuzz_args_opts fuzz_args_defaults = {4, 0, 100, 1, 0.5, 0, "x", NULL, 0, 0};

static const char *fuzz_args_check(const arg_spec *s, const fuzz_args_opts *o,
                                   const fuzz_args_opts *d, const char *buf, size_t size) {
    const void *now = s->ptr, *was = (const char *)d + ((const char *)s->ptr - (const char *)o);
    switch (s->type) {
    case ARG_INT: {
        int x = *(const int *)now;
        if (!s->set) return x == *(const int *)was ? NULL : "an int changed without its option";
        return x >= s->min && x <= s->max ? NULL : "an int lies outside its range";
    }
    case ARG_I64: {
        int64_t x = *(const int64_t *)now;
        if (!s->set) return x == *(const int64_t *)was ? NULL : "an int64 changed without its option";
        return (double)x >= s->min && (double)x <= s->max ? NULL : "an int64 lies outside its range";
    }
    case ARG_FLOAT: {
        double x = *(const double *)now;
        if (!s->set) return x == *(const double *)was ? NULL : "a float changed without its option";
        return x >= s->min && x <= s->max ? NULL : "a float lies outside its range";
    }
    case ARG_STR: {
        const char *x = *(const char *const *)now;
        if (!s->set) return x == *(const char *const *)was ? NULL : "a string changed without its option";
        if (x < buf || x >= buf + size || !*x) return "a string value is empty or not from argv";
        return NULL;
    }
    case ARG_FLAG: {
        int x = *(const int *)now;
        return x == (s->set ? 1 : *(const int *)was) ? NULL : "a flag has the wrong value";
    }
    }
    return "an option has an unknown type";
}

static const char *fuzz_args_one(const uint8_t *data, size_t size) {
    char *buf = malloc(size + 1), *argv[FUZZ_ARGS_MAX];
    if (!buf) return NULL;
    memcpy(buf, data, size);
    buf[size] = 0;
    int argc = 0;
    for (size_t at = 0; size && at <= size && argc < FUZZ_ARGS_MAX; at += strlen(buf + at) + 1)
        argv[argc++] = buf + at;

    fuzz_args_opts o = fuzz_args_defaults;
    arg_spec specs[] = {
        OPT("count", ARG_INT, &o.count, 1, 1 << 20, "a positive int"),
        OPT("delta", ARG_INT, &o.delta, INT32_MIN, INT32_MAX, "any int"),
        OPT("steps", ARG_I64, &o.steps, -1, 1e15, "an int64 from -1"),
        OPT("seed", ARG_I64, &o.seed, -9.2e18, 9.2e18, "nearly any int64"),
        OPT("lr", ARG_FLOAT, &o.lr, 0, 1e6, "a rate"),
        OPT("beta", ARG_FLOAT, &o.beta, -1, 1, "in [-1, 1]"),
        OPT("data", ARG_STR, &o.data, 0, 0, "a string with a default"),
        OPT("name", ARG_STR, &o.name, 0, 0, "a string without one"),
        OPT("verbose", ARG_FLAG, &o.verbose, 0, 0, "a flag"),
        OPT("dry-run", ARG_FLAG, &o.dry, 0, 0, "a flag with a dash"),
    };
    const int n = (int)(sizeof specs / sizeof specs[0]);
    fuzz_args_printed();
    dsf_error_set("%s", "");
    int rc = args_parse(argc, argv, specs, n, "usage: fuzz [options]");
    long printed = fuzz_args_printed();

    const char *why = NULL;
    if (rc != -1 && rc != 0 && rc != 1) why = "args_parse returned something other than -1, 0, 1";
    else if (rc == -1 && !strcmp(dsf_error(), "unknown error")) why = "args_parse failed without an error";
    else if (rc == -1 && strchr(dsf_error(), '\n')) why = "multi-line error";
    else if (rc != 1 && printed) why = "args_parse printed without --help";
    else if (rc == 1 && fuzz_args_stdout >= 0 && !printed) why = "--help printed nothing";
    for (int i = 0; i < n && !why && rc == 0; i++)
        why = fuzz_args_check(&specs[i], &o, &fuzz_args_defaults, buf, size + 1);
    if (!why && rc == 0 && (args_given(specs, n, "verbose") != specs[8].set || args_given(specs, n, "nope")))
        why = "args_given disagrees with the table";
    free(buf);
    return why;
}

#ifndef DSF_FUZZ_REPLAY
int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv) {
    fuzz_args_capture_stdout();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *why = fuzz_args_one(data, size);
    if (why) {
        fprintf(stderr, "fuzz_args: %s (error: %s)\n", why, dsf_error());
        abort();
    }
    return 0;
}
#endif
