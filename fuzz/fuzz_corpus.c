// fuzz_corpus.c: libFuzzer harness for the text corpus and the vocabulary (make fuzz).
//
// The input is written to one scratch file per process (in /dev/shm when there is one)
// and loaded as a single-file corpus at word and at character level; it is also cut in
// thirds into train.txt, valid.txt and test.txt of a scratch folder and loaded as a
// directory corpus. Each corpus that loads must have every id inside its vocabulary,
// and corpus_load_split with that vocabulary must give back the same ids (evaluating a
// checkpoint tokenises the text so). corpus_load_split also runs with two small fixed
// vocabularies, one with and one without "<unk>". Last, the input is split into an
// offsets part and a bytes part for vocab_unpack, whose result must pack back to them.
//
// fuzz_corpus_one returns NULL, or what invariant broke (the harness aborts on that);
// tests/test_regress.c replays the seeds and the regression inputs through it.
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/corpus.h"
#include "data/vocab.h"

static char fuzz_corpus_file[96], fuzz_corpus_dir[96];
static dsf_vocab *fuzz_corpus_words, *fuzz_corpus_chars;  // with <unk>, without

static void fuzz_corpus_path(char *out, size_t cap, const char *dir, const char *name) {
    snprintf(out, cap, "%s/%s", dir, name);
}

static void fuzz_corpus_cleanup(void) {
    static const char *const names[] = {"train.txt", "valid.txt", "test.txt"};
    char p[128];
    if (!fuzz_corpus_file[0]) return;
    unlink(fuzz_corpus_file);
    for (int k = 0; k < 3; k++) {
        fuzz_corpus_path(p, sizeof p, fuzz_corpus_dir, names[k]);
        unlink(p);
    }
    rmdir(fuzz_corpus_dir);
    vocab_free(fuzz_corpus_words);
    vocab_free(fuzz_corpus_chars);
    fuzz_corpus_words = fuzz_corpus_chars = NULL;
    fuzz_corpus_file[0] = 0;
}

static void fuzz_corpus_init(void) {
    if (fuzz_corpus_file[0]) return;
    const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
    snprintf(fuzz_corpus_file, sizeof fuzz_corpus_file, "%s/dsf-fuzz-corpus-%ld.txt", base,
             (long)getpid());
    snprintf(fuzz_corpus_dir, sizeof fuzz_corpus_dir, "%s/dsf-fuzz-corpus-%ld.d", base,
             (long)getpid());
    mkdir(fuzz_corpus_dir, 0700);
    static const char *const words[] = {"<eos>", "the", "a", "cat", "sat", "<unk>"};
    fuzz_corpus_words = vocab_new();
    for (int i = 0; i < 6; i++) vocab_add(fuzz_corpus_words, words[i], strlen(words[i]));
    fuzz_corpus_chars = vocab_new();
    for (const char *c = "\n abcdefghijklmnopqrstuvwxyz"; *c; c++) vocab_add(fuzz_corpus_chars, c, 1);
    atexit(fuzz_corpus_cleanup);
}

static int fuzz_corpus_write(const char *path, const uint8_t *p, size_t n) {
    int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
    if (fd < 0) return -1;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k <= 0) {
            close(fd);
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return close(fd);
}

// Each library call starts with no error; one that fails must leave one line of it.
static void fuzz_corpus_clear(void) { dsf_error_set("%s", ""); }
static const char *fuzz_corpus_error_ok(void) {
    const char *e = dsf_error();
    if (!strcmp(e, "unknown error")) return "a call failed without setting the error";
    if (strchr(e, '\n')) return "an error message spans more than one line";
    return NULL;
}

static const char *fuzz_corpus_ids_ok(const dsf_tokens *t, const dsf_vocab *v) {
    if (t->n < 0 || (t->n > 0 && !t->ids)) return "a split has no ids";
    for (int64_t i = 0; i < t->n; i++)
        if (t->ids[i] < 0 || t->ids[i] >= vocab_size(v)) return "an id lies outside the vocabulary";
    return NULL;
}

// Loads path at this level; the ids of every split must agree with corpus_load_split.
// chars, when not 0, is the number of bytes the three splits must hold between them.
static const char *fuzz_corpus_load(const char *path, dsf_level level, size_t chars) {
    dsf_corpus c;
    fuzz_corpus_clear();
    if (corpus_load(&c, path, level)) return fuzz_corpus_error_ok();
    const char *why = NULL;
    int64_t total = 0;
    if (!c.vocab || vocab_size(c.vocab) < 1) why = "a loaded corpus has no vocabulary";
    if (!why && c.split[DSF_SPLIT_TRAIN].n < 1) why = "a loaded corpus has no training tokens";
    for (int k = 0; k < DSF_NSPLITS && !why; k++) {
        why = fuzz_corpus_ids_ok(&c.split[k], c.vocab);
        if (!why && !c.source[k]) why = "a split has no source";
        total += c.split[k].n;
        dsf_tokens t;
        if (!why && corpus_load_split(path, level, c.vocab, k, &t)) why = "corpus_load_split fails on a corpus that loads";
        if (why) break;
        if (t.n != c.split[k].n || (t.n && memcmp(t.ids, c.split[k].ids, sizeof(int32_t) * (size_t)t.n)))
            why = "corpus_load_split disagrees with corpus_load";
        tokens_free(&t);
    }
    if (!why && chars && total != (int64_t)chars) why = "a character-level corpus lost or gained bytes";
    corpus_free(&c);
    return why;
}

static const char *fuzz_corpus_split(const char *path, dsf_level level, const dsf_vocab *v) {
    for (int k = -1; k <= DSF_NSPLITS; k++) {
        dsf_tokens t;
        fuzz_corpus_clear();
        if (corpus_load_split(path, level, v, k, &t)) {
            const char *why = fuzz_corpus_error_ok();
            if (why) return why;
            if (t.ids || t.n) return "a failed corpus_load_split left tokens";
            continue;
        }
        if (k < 0 || k >= DSF_NSPLITS) {
            tokens_free(&t);
            return "corpus_load_split accepts a split that does not exist";
        }
        const char *why = fuzz_corpus_ids_ok(&t, v);
        tokens_free(&t);
        if (why) return why;
    }
    return NULL;
}

static const char *fuzz_corpus_unpacked(dsf_vocab *v, const int64_t *off, int64_t n,
                                        const uint8_t *bytes, int64_t nbytes) {
    const char *why = NULL;
    if (vocab_size(v) != n) why = "vocab_unpack made the wrong number of entries";
    int64_t *off2 = NULL, nbytes2 = 0;
    uint8_t *bytes2 = NULL;
    if (!why) {
        vocab_pack(v, &off2, &bytes2, &nbytes2);
        if (nbytes2 != nbytes || memcmp(off2, off, sizeof(int64_t) * (size_t)(n + 1)) ||
            (nbytes && memcmp(bytes2, bytes, (size_t)nbytes)))
            why = "vocab_pack does not give back what vocab_unpack took";
    }
    free(off2);
    free(bytes2);
    vocab_free(v);
    return why;
}

// Two readings of the input: (a) d[0] % 16 entries, then their n + 1 offsets as raw
// little-endian int64, then the bytes; (b) d[0] % 32 entries whose lengths (0..7) are the
// next bytes, then the bytes (a prefix when there are more).
static const char *fuzz_corpus_vocab(const uint8_t *d, size_t size) {
    if (size < 1) return NULL;
    int64_t off[33];
    int64_t n = d[0] % 16;
    size_t head = 1 + 8 * (size_t)(n + 1);
    if (size >= head) {
        memcpy(off, d + 1, 8 * (size_t)(n + 1));
        fuzz_corpus_clear();
        dsf_vocab *v = vocab_unpack(off, n, d + head, (int64_t)(size - head));
        const char *why = v ? fuzz_corpus_unpacked(v, off, n, d + head, (int64_t)(size - head))
                            : fuzz_corpus_error_ok();
        if (why) return why;
    }
    n = d[0] % 32;
    head = 1 + (size_t)n;
    if (size < head) return NULL;
    off[0] = 0;
    for (int64_t i = 0; i < n; i++) off[i + 1] = off[i] + d[1 + i] % 8;
    int64_t nbytes = off[n] <= (int64_t)(size - head) ? off[n] : (int64_t)(size - head);
    fuzz_corpus_clear();
    dsf_vocab *v = vocab_unpack(off, n, d + head, nbytes);
    return v ? fuzz_corpus_unpacked(v, off, n, d + head, nbytes) : fuzz_corpus_error_ok();
}

static const char *fuzz_corpus_one(const uint8_t *data, size_t size) {
    static const char *const names[] = {"train.txt", "valid.txt", "test.txt"};
    fuzz_corpus_init();
    if (fuzz_corpus_write(fuzz_corpus_file, data, size)) return "cannot write the scratch file";
    const char *why = fuzz_corpus_load(fuzz_corpus_file, DSF_LEVEL_WORD, 0);
    if (!why) why = fuzz_corpus_load(fuzz_corpus_file, DSF_LEVEL_CHAR, size);
    if (!why) why = fuzz_corpus_split(fuzz_corpus_file, DSF_LEVEL_WORD, fuzz_corpus_words);
    if (!why) why = fuzz_corpus_split(fuzz_corpus_file, DSF_LEVEL_CHAR, fuzz_corpus_chars);
    if (why) return why;

    size_t cut[4] = {0, size / 3, 2 * size / 3, size};
    char p[128];
    for (int k = 0; k < 3; k++) {
        fuzz_corpus_path(p, sizeof p, fuzz_corpus_dir, names[k]);
        if (fuzz_corpus_write(p, data + cut[k], cut[k + 1] - cut[k])) return "cannot write a scratch file";
    }
    why = fuzz_corpus_load(fuzz_corpus_dir, DSF_LEVEL_WORD, 0);
    if (!why) why = fuzz_corpus_load(fuzz_corpus_dir, DSF_LEVEL_CHAR, size);
    if (!why) why = fuzz_corpus_vocab(data, size);
    return why;
}

#ifndef DSF_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *why = fuzz_corpus_one(data, size);
    if (why) {
        fprintf(stderr, "fuzz_corpus: %s (error: %s)\n", why, dsf_error());
        abort();
    }
    return 0;
}
#endif
