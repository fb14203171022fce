// test_main.c: runs every suite and prints the summary line.
#include <dirent.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "test.h"

void test_random_tokens(int32_t *x, int32_t *y, int n, int V, uint64_t seed) {
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    for (int i = 0; i < n; i++) {
        x[i] = (int32_t)(dsf_rng_u64(&r) % V);
        y[i] = (int32_t)(dsf_rng_u64(&r) % V);
    }
}

double test_lm_grad(dsf_lm *m, const int32_t *x, const int32_t *y, int B, int T, dsf_method meth) {
    dsf_lm_work w;
    DSF_ASSERT(lm_work_create(&w, &m->cfg, B, T) == 0);
    DSF_ASSERT(lm_work_reserve(&w, m, meth) == 0);
    double loss = lm_forward(m, &w, x, y, T);
    lm_backward(m, &w, meth);
    lm_work_destroy(&w);
    return loss;
}

int test_passed, test_failed, test_skipped, test_current_failed, test_current_skipped;
static char skip_reason[256];

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    fprintf(stderr, "  FAIL %s:%d: ", file, line);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fputc('\n', stderr);
    test_current_failed = 1;
}

void test_skip(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(skip_reason, sizeof skip_reason, fmt, ap);
    va_end(ap);
    test_current_skipped = 1;
}

void test_remove_tree(const char *path) {
    struct stat sb;
    if (lstat(path, &sb)) return;
    if (S_ISDIR(sb.st_mode)) {
        DIR *d = opendir(path);
        if (d) {
            for (struct dirent *de; (de = readdir(d));) {
                if (!strcmp(de->d_name, ".") || !strcmp(de->d_name, "..")) continue;
                char sub[1024];
                snprintf(sub, sizeof sub, "%s/%s", path, de->d_name);
                test_remove_tree(sub);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

static const char *only;

void test_run(const char *name, void (*fn)(void)) {
    if (only && !strstr(name, only)) return;
    test_current_failed = test_current_skipped = 0;
    fn();
    if (test_current_skipped && !test_current_failed) {
        test_skipped++;
        printf("skip %s: %s\n", name, skip_reason);
    } else if (test_current_failed) {
        test_failed++;
        fprintf(stderr, "FAIL %s\n", name);
    } else {
        test_passed++;
        printf("ok   %s\n", name);
    }
    fflush(stdout);
}

#define SUITE(s) void s(void);
#include "suites.def"
#undef SUITE

int main(int argc, char **argv) {
    if (argc > 1) only = argv[1];  // run only the tests whose name contains this
#define SUITE(s) s();
#include "suites.def"
#undef SUITE
    if (test_skipped)
        printf("unit: %d passed, %d failed, %d skipped\n", test_passed, test_failed, test_skipped);
    else
        printf("unit: %d passed, %d failed\n", test_passed, test_failed);
    return test_failed ? 1 : 0;
}
