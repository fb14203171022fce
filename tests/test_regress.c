// test_regress.c: replays the fuzzing seeds (fuzz/corpus/<harness>/) and every input the
// fuzzers have found (tests/regress/<harness>/) through the harnesses' own entry points,
// without libFuzzer, so that the normal suite catches a regression. `make fuzz` runs
// the harnesses themselves.
#define DSF_FUZZ_REPLAY
#include "../fuzz/fuzz_args.c"
#include "../fuzz/fuzz_corpus.c"
#include "../fuzz/fuzz_safetensors.c"

#include <dirent.h>
#include <errno.h>

#include "test.h"

typedef const char *(*fuzz_entry)(const uint8_t *data, size_t size);

// The repository root as this file was compiled ("" when compiled from the root).
static void repo_path(char *out, size_t cap, const char *rel) {
    static const char self[] = __FILE__, tail[] = "tests/test_regress.c";
    size_t n = strlen(self), t = strlen(tail);
    int root = n >= t && !strcmp(self + n - t, tail) ? (int)(n - t) : 0;
    snprintf(out, cap, "%.*s%s", root, self, rel);
}

static uint8_t *slurp(const char *path, size_t *n) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    size_t cap = 4096, len = 0;
    uint8_t *buf = malloc(cap);
    for (size_t k; buf && (k = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += k;
        if (len == cap) {
            uint8_t *b = realloc(buf, cap *= 2);
            if (!b) free(buf);
            buf = b;
        }
    }
    fclose(f);
    *n = len;
    return buf;
}

// Runs fn on every file in folder rel (sorted by name; a missing folder holds none).
// The number of files, or -1 after reporting the first that fails.
static int replay(const char *rel, fuzz_entry fn) {
    char dir[1024], path[2048];
    repo_path(dir, sizeof dir, rel);
    struct dirent **names;
    int n = scandir(dir, &names, NULL, alphasort), files = 0;
    if (n < 0) return errno == ENOENT ? 0 : (test_fail(__FILE__, __LINE__, "cannot list %s", dir), -1);
    for (int i = 0; i < n; i++) {
        if (files >= 0 && names[i]->d_name[0] != '.') {
            snprintf(path, sizeof path, "%s/%s", dir, names[i]->d_name);
            size_t size = 0;
            uint8_t *data = slurp(path, &size);
            const char *why = data ? fn(data, size) : "cannot read the file";
            free(data);
            if (why) {
                test_fail(__FILE__, __LINE__, "%s: %s (last error: %s)", path, why, dsf_error());
                files = -1;
            } else {
                files++;
            }
        }
        free(names[i]);
    }
    free(names);
    return files;
}

static void test_regress_safetensors(void) {
    int seeds = replay("fuzz/corpus/fuzz_safetensors", fuzz_safetensors_one);
    CHECK_MSG(seeds != 0, "no seeds in fuzz/corpus/fuzz_safetensors");
    CHECK(seeds > 0);
    CHECK(replay("tests/regress/fuzz_safetensors", fuzz_safetensors_one) >= 0);
}

static void test_regress_corpus(void) {
    int seeds = replay("fuzz/corpus/fuzz_corpus", fuzz_corpus_one);
    int found = seeds > 0 ? replay("tests/regress/fuzz_corpus", fuzz_corpus_one) : 0;
    fuzz_corpus_cleanup();
    CHECK_MSG(seeds != 0, "no seeds in fuzz/corpus/fuzz_corpus");
    CHECK(seeds > 0 && found >= 0);
}

static void test_regress_args(void) {
    fuzz_args_capture_stdout();  // --help prints; it must print nowhere else
    int seeds = replay("fuzz/corpus/fuzz_args", fuzz_args_one);
    int found = seeds > 0 ? replay("tests/regress/fuzz_args", fuzz_args_one) : 0;
    fuzz_args_restore_stdout();
    CHECK_MSG(seeds != 0, "no seeds in fuzz/corpus/fuzz_args");
    CHECK(seeds > 0 && found >= 0);
}

void suite_regress(void) {
    RUN(test_regress_safetensors);
    RUN(test_regress_corpus);
    RUN(test_regress_args);
}
