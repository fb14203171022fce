// test_data.c: vocabulary, corpus loading, batching and the built-in corpus.
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "core/common.h"
#include "data/batch.h"
#include "data/corpus.h"
#include "data/images.h"
#include "data/synthetic.h"
#include "data/vocab.h"
#include "model/lm.h"
#ifdef DSF_USE_ZLIB
#include <zlib.h>
#endif
#include "test.h"

// ---------------------------------------------------------------------------
// Scratch files: one temporary folder per run, removed at exit.

static char scratch_root[256];

static void scratch_cleanup(void) {
    if (scratch_root[0]) test_remove_tree(scratch_root);
}

// A fresh folder scratch_root/name (the root made on first use).
static const char *scratch_dir(const char *name) {
    static char path[512];
    if (!scratch_root[0]) {
        const char *tmp = getenv("TMPDIR");
        snprintf(scratch_root, sizeof scratch_root, "%s/dsf_test_data_XXXXXX",
                 tmp && *tmp ? tmp : "/tmp");
        if (!mkdtemp(scratch_root)) {
            perror("mkdtemp");
            abort();
        }
        atexit(scratch_cleanup);
    }
    snprintf(path, sizeof path, "%s/%s", scratch_root, name);
    test_remove_tree(path);
    mkdir(path, 0700);
    return path;
}

// Writes dir/name (or dir alone when name is NULL) and returns its path in a
// rotating static buffer.
static const char *write_bytes(const char *dir, const char *name, const void *data, size_t n) {
    static char paths[8][1024];
    static int next;
    char *p = paths[next++ % 8];
    snprintf(p, 1024, "%s/%s", dir, name);
    FILE *f = fopen(p, "wb");
    if (!f || fwrite(data, 1, n, f) != n || fclose(f)) {
        perror(p);
        abort();
    }
    return p;
}

static const char *write_text(const char *dir, const char *name, const char *text) {
    return write_bytes(dir, name, text, strlen(text));
}

static int ids_equal(const dsf_tokens *t, const int32_t *want, int64_t n) {
    if (t->n != n) return 0;
    for (int64_t i = 0; i < n; i++)
        if (t->ids[i] != want[i]) return 0;
    return 1;
}

static int vocab_is(const dsf_vocab *v, int32_t id, const char *s, size_t len) {
    size_t l;
    const char *p = vocab_str(v, id, &l);
    return p && l == len && memcmp(p, s, len) == 0;
}

#define NUM(a) ((int64_t)(sizeof(a) / sizeof((a)[0])))

// ---------------------------------------------------------------------------
// Vocabulary

static void test_data_vocab_basic(void) {
    dsf_vocab *v = vocab_new();
    CHECK(vocab_size(v) == 0);
    CHECK(vocab_find(v, "a", 1) == -1);
    CHECK(vocab_add(v, "the", 3) == 0);
    CHECK(vocab_add(v, "cat", 3) == 1);
    CHECK(vocab_add(v, "the", 3) == 0);
    CHECK(vocab_add(v, "th", 2) == 2);               // a prefix is another string
    CHECK(vocab_add(v, "a\0b", 3) == 3);             // bytes, NULs included
    CHECK(vocab_add(v, "a\0c", 3) == 4);
    CHECK(vocab_add(v, "", 0) == 5);
    CHECK(vocab_find(v, "a\0b", 3) == 3);
    CHECK(vocab_find(v, "", 0) == 5);
    CHECK(vocab_find(v, "ca", 2) == -1);
    CHECK(vocab_size(v) == 6);
    CHECK(vocab_is(v, 1, "cat", 3));
    CHECK(vocab_is(v, 4, "a\0c", 3));
    size_t len = 99;
    CHECK(vocab_str(v, 6, &len) == NULL && len == 0);
    CHECK(vocab_str(v, -1, &len) == NULL);
    // Many entries: the table grows and every id stays where it was.
    char buf[32];
    for (int i = 0; i < 100000; i++) {
        int n = snprintf(buf, sizeof buf, "w%d", i);
        CHECK(vocab_add(v, buf, (size_t)n) == 6 + i);
    }
    for (int i = 0; i < 100000; i += 7) {
        int n = snprintf(buf, sizeof buf, "w%d", i);
        CHECK(vocab_find(v, buf, (size_t)n) == 6 + i);
        CHECK(vocab_is(v, 6 + i, buf, (size_t)n));
    }
    CHECK(vocab_find(v, "the", 3) == 0);
    CHECK(vocab_size(v) == 100006);
    vocab_free(v);
    vocab_free(NULL);
}

static void test_data_vocab_pack_roundtrip(void) {
    dsf_vocab *v = vocab_new();
    const char *words[] = {"<eos>", "the", "\n", "x", "longer word", "<unk>"};
    for (int i = 0; i < 6; i++) vocab_add(v, words[i], strlen(words[i]));
    vocab_add(v, "\0", 1);
    int64_t *off, nbytes;
    uint8_t *bytes;
    vocab_pack(v, &off, &bytes, &nbytes);
    CHECK(off[0] == 0 && off[1] == 5 && off[2] == 8 && off[3] == 9 && off[7] == nbytes);
    CHECK(nbytes == 5 + 3 + 1 + 1 + 11 + 5 + 1);
    CHECK(memcmp(bytes, "<eos>the\nxlonger word<unk>\0", (size_t)nbytes) == 0);
    dsf_vocab *u = vocab_unpack(off, 7, bytes, nbytes);
    CHECK_MSG(u, "%s", dsf_error());
    CHECK(vocab_size(u) == 7);
    for (int32_t i = 0; i < 7; i++) {
        size_t la, lb;
        const char *a = vocab_str(v, i, &la), *b = vocab_str(u, i, &lb);
        CHECK(la == lb && memcmp(a, b, la) == 0);
        CHECK(vocab_find(u, a, la) == i);
    }
    vocab_free(u);
    vocab_free(v);
    free(off);
    free(bytes);

    // An empty vocabulary packs to one offset and no bytes.
    v = vocab_new();
    vocab_pack(v, &off, &bytes, &nbytes);
    CHECK(off[0] == 0 && nbytes == 0);
    u = vocab_unpack(off, 0, bytes, 0);
    CHECK(u && vocab_size(u) == 0);
    vocab_free(u);
    vocab_free(v);
    free(off);
    free(bytes);
}

static void test_data_vocab_unpack_rejects(void) {
    const uint8_t bytes[] = "abcdef";  // 6 bytes: "ab" "cd" "ef"
    const int64_t good[] = {0, 2, 4, 6};
    dsf_vocab *v = vocab_unpack(good, 3, bytes, 6);
    CHECK(v && vocab_size(v) == 3 && vocab_is(v, 2, "ef", 2));
    vocab_free(v);
    const int64_t start[] = {1, 2, 4, 6}, end[] = {0, 2, 4, 5}, back[] = {0, 4, 2, 6},
                  past[] = {0, 2, 9, 6}, neg[] = {0, -2, 4, 6}, dup[] = {0, 2, 4, 6};
    CHECK(vocab_unpack(start, 3, bytes, 6) == NULL);
    CHECK(strstr(dsf_error(), "vocabulary"));
    CHECK(vocab_unpack(end, 3, bytes, 6) == NULL);
    CHECK(vocab_unpack(back, 3, bytes, 6) == NULL);
    CHECK(vocab_unpack(past, 3, bytes, 6) == NULL);
    CHECK(vocab_unpack(neg, 3, bytes, 6) == NULL);
    CHECK(vocab_unpack(good, -1, bytes, 6) == NULL);
    CHECK(vocab_unpack(good, 3, bytes, -6) == NULL);
    CHECK(vocab_unpack(good, 3, NULL, 6) == NULL);
    const uint8_t twice[] = "abab";
    CHECK(vocab_unpack(dup, 2, twice, 4) == NULL);  // "ab" "ab"
    CHECK_MSG(strstr(dsf_error(), "repeats"), "%s", dsf_error());
    const int64_t empties[] = {0, 0, 0};
    CHECK(vocab_unpack(empties, 2, twice, 0) == NULL);  // "" "": more entries than can differ
    // A huge entry count with few bytes is refused before anything is read or allocated.
    CHECK(vocab_unpack(good, (int64_t)1 << 40, bytes, 6) == NULL);
    CHECK(vocab_unpack(good, INT32_MAX, bytes, 6) == NULL);
}

static void test_data_names(void) {
    dsf_level lv;
    int s;
    CHECK(dsf_level_parse("word", &lv) == 0 && lv == DSF_LEVEL_WORD);
    CHECK(dsf_level_parse("char", &lv) == 0 && lv == DSF_LEVEL_CHAR);
    CHECK(dsf_level_parse("byte", &lv) == -1 && strstr(dsf_error(), "byte"));
    CHECK(!strcmp(dsf_level_name(DSF_LEVEL_WORD), "word"));
    CHECK(!strcmp(dsf_level_name(DSF_LEVEL_CHAR), "char"));
    CHECK(dsf_split_parse("valid", &s) == 0 && s == DSF_SPLIT_VALID);
    CHECK(dsf_split_parse("test", &s) == 0 && s == DSF_SPLIT_TEST);
    CHECK(dsf_split_parse("train", &s) == 0 && s == DSF_SPLIT_TRAIN);
    CHECK(dsf_split_parse("validation", &s) == -1 && strstr(dsf_error(), "validation"));
    CHECK(!strcmp(dsf_split_name(DSF_SPLIT_TEST), "test"));
}

// ---------------------------------------------------------------------------
// Word level

static void test_data_word_lines(void) {
    const char *d = scratch_dir("word_lines");
    // Lines: "a b", "", "c<TAB>a  <unk><CR>", "  b" (no final newline).
    write_text(d, "train.txt", "a b\n\nc\ta  <unk>\r\n  b");
    write_text(d, "valid.txt", "a zz\n");
    write_text(d, "test.txt", "\n\n");
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    // a b <eos> c <unk>, by first appearance; <unk> from train is reused.
    CHECK(vocab_size(c.vocab) == 5);
    CHECK(vocab_is(c.vocab, 0, "a", 1) && vocab_is(c.vocab, 1, "b", 1));
    CHECK(vocab_is(c.vocab, 2, "<eos>", 5) && vocab_is(c.vocab, 3, "c", 1));
    CHECK(vocab_is(c.vocab, 4, "<unk>", 5));
    const int32_t train[] = {0, 1, 2, 2, 3, 0, 4, 2, 1, 2}, valid[] = {0, 4, 2}, test[] = {2, 2};
    CHECK(ids_equal(&c.split[DSF_SPLIT_TRAIN], train, NUM(train)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_VALID], valid, NUM(valid)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_TEST], test, NUM(test)));
    CHECK(c.level == DSF_LEVEL_WORD);
    CHECK(strstr(c.source[DSF_SPLIT_VALID], "word_lines/valid.txt"));
    corpus_free(&c);

    // A last line of blanks is still a line; \v and \f separate words.
    write_text(d, "train.txt", "x\vy\fx\n \t");
    write_text(d, "test.txt", "y");
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    const int32_t train2[] = {0, 1, 0, 2, 2}, valid2[] = {3, 3, 2}, test2[] = {1, 2};
    CHECK(vocab_size(c.vocab) == 4 && vocab_is(c.vocab, 3, "<unk>", 5));  // a, zz in valid
    CHECK(ids_equal(&c.split[DSF_SPLIT_TRAIN], train2, NUM(train2)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_VALID], valid2, NUM(valid2)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_TEST], test2, NUM(test2)));
    corpus_free(&c);
}

static void test_data_word_oov_appends_unk(void) {
    const char *d = scratch_dir("word_oov");
    write_text(d, "train.txt", "x y\ny x\n");
    write_text(d, "valid.txt", "x q\n");
    write_text(d, "test.txt", "r x\n");
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(vocab_size(c.vocab) == 4 && vocab_is(c.vocab, 3, "<unk>", 5));
    const int32_t train[] = {0, 1, 2, 1, 0, 2}, valid[] = {0, 3, 2}, test[] = {3, 0, 2};
    CHECK(ids_equal(&c.split[DSF_SPLIT_TRAIN], train, NUM(train)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_VALID], valid, NUM(valid)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_TEST], test, NUM(test)));
    corpus_free(&c);

    // No unknown words: no <unk>.
    write_text(d, "valid.txt", "y\n");
    write_text(d, "test.txt", "x\n");
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(vocab_size(c.vocab) == 3 && vocab_find(c.vocab, "<unk>", 5) == -1);
    corpus_free(&c);
}

// One file, word level: the cuts move forward to line boundaries.
static void test_data_word_single_file_cuts(void) {
    const char *d = scratch_dir("word_single");
    // 20 lines of 7 bytes: the marks (126, 133) fall on line boundaries and stay.
    char text[256] = "";
    for (int i = 0; i < 20; i++) snprintf(text + strlen(text), 16, "w%05d\n", i);
    const char *f = write_text(d, "a.txt", text);
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(c.split[0].n == 36 && c.split[1].n == 2 && c.split[2].n == 2);
    CHECK(vocab_size(c.vocab) == 19 + 1);  // w00000..w00017, <eos>, <unk>
    CHECK(vocab_is(c.vocab, 19, "<unk>", 5));
    CHECK(strstr(c.source[0], "a.txt (first 90%)") && strstr(c.source[2], "a.txt (last 5%)"));
    corpus_free(&c);

    // 100 bytes: 40 x "a\n" (0..79), "b c d e\n" (80..87), "f g h i j\n" (88..97), "k\n".
    // The 90% mark (90) is inside "f g h i j": train ends after it, at 98; the 95%
    // mark (95) moves to the same place, so valid is empty and test is "k\n".
    text[0] = 0;
    for (int i = 0; i < 40; i++) strcat(text, "a\n");
    strcat(text, "b c d e\nf g h i j\nk\n");
    CHECK(strlen(text) == 100);
    f = write_text(d, "b.txt", text);
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(c.split[0].n == 80 + 5 + 6 && c.split[1].n == 0 && c.split[2].n == 2);
    CHECK(vocab_size(c.vocab) == 2 + 9 + 1);
    const int32_t test[] = {11, 1};  // k is unknown: <unk> <eos>
    CHECK(ids_equal(&c.split[2], test, 2));
    corpus_free(&c);

    // No newline after the marks: train takes everything.
    f = write_text(d, "c.txt", "a b c d e f g h i j k l m n o p q r s t u v w x y z");
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(c.split[0].n == 27 && c.split[1].n == 0 && c.split[2].n == 0);
    corpus_free(&c);
}

// ---------------------------------------------------------------------------
// Character level

static void test_data_char_single_file(void) {
    const char *d = scratch_dir("char_single");
    // 101 bytes: train the first 90, valid the next 5, test the last 6.
    char text[102];
    for (int i = 0; i < 90; i++) text[i] = "cab\n"[i % 4];
    memcpy(text + 90, "abXc\n", 5);
    memcpy(text + 95, "\nba\0cc", 6);
    const char *f = write_bytes(d, "t.bin", text, 101);
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    CHECK(c.level == DSF_LEVEL_CHAR);
    CHECK(c.split[0].n == 90 && c.split[1].n == 5 && c.split[2].n == 6);
    // Increasing byte order, then <unk> for X and the NUL.
    CHECK(vocab_size(c.vocab) == 5);
    CHECK(vocab_is(c.vocab, 0, "\n", 1) && vocab_is(c.vocab, 1, "a", 1));
    CHECK(vocab_is(c.vocab, 2, "b", 1) && vocab_is(c.vocab, 3, "c", 1));
    CHECK(vocab_is(c.vocab, 4, "<unk>", 5));
    const int32_t head[] = {3, 1, 2, 0, 3, 1}, valid[] = {1, 2, 4, 3, 0}, test[] = {0, 2, 1, 4, 3, 3};
    CHECK(ids_equal(&(dsf_tokens){.ids = c.split[0].ids, .n = 6}, head, 6));
    CHECK(ids_equal(&c.split[1], valid, 5));
    CHECK(ids_equal(&c.split[2], test, 6));
    CHECK(strstr(c.source[1], "t.bin (next 5%)"));
    corpus_free(&c);

    // The split is by bytes, not lines: 1000 bytes give 900 / 50 / 50.
    char big[1000];
    for (int i = 0; i < 1000; i++) big[i] = (char)(i % 7 == 6 ? '\n' : 'a' + i % 5);
    f = write_bytes(d, "big.txt", big, sizeof big);
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    CHECK(c.split[0].n == 900 && c.split[1].n == 50 && c.split[2].n == 50);
    CHECK(vocab_size(c.vocab) == 6);
    for (int i = 0; i < 900; i++) CHECK(c.split[0].ids[i] == (i % 7 == 6 ? 0 : 1 + i % 5));
    corpus_free(&c);
}

// ---------------------------------------------------------------------------
// Folders, errors

static void test_data_dir_patterns(void) {
    const char *d = scratch_dir("patterns");
    const char *splits[] = {"train", "valid", "test"};
    char name[512];
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s.txt", splits[k]);
        write_text(d, name, "plain\n");
        snprintf(name, sizeof name, "wiki.%s.tokens", splits[k]);
        write_text(d, name, "wiki\n");
        snprintf(name, sizeof name, "ptb.char.%s.txt", splits[k]);
        write_text(d, name, "p t b\n");
    }
    dsf_corpus c;
    // ptb.char.* at both levels (PTB-char is usually modelled at word level, on
    // its space-separated symbols), before wiki.* and plain names.
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    CHECK(strstr(c.source[1], "/ptb.char.valid.txt"));
    corpus_free(&c);
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(strstr(c.source[0], "/ptb.char.train.txt") && vocab_is(c.vocab, 0, "p", 1));
    corpus_free(&c);
    for (int k = 0; k < 3; k++) {
        snprintf(name, sizeof name, "%s/ptb.char.%s.txt", d, splits[k]);
        CHECK(remove(name) == 0);
    }
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(strstr(c.source[0], "/wiki.train.tokens") && strstr(c.source[2], "/wiki.test.tokens"));
    CHECK(vocab_is(c.vocab, 0, "wiki", 4));
    corpus_free(&c);
    // ptb.* comes first; once ptb.train.txt is there, the other two must be too.
    write_text(d, "ptb.train.txt", "ptb\n");
    write_text(d, "ptb.test.txt", "ptb\n");
    CHECK(corpus_load(&c, d, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "patterns/ptb.valid.txt is missing"), "%s", dsf_error());
    CHECK(c.vocab == NULL && c.split[0].ids == NULL && c.source[0] == NULL);
    corpus_free(&c);  // safe after a failure
    write_text(d, "ptb.valid.txt", "ptb\n");
    CHECK_MSG(corpus_load(&c, d, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK(strstr(c.source[0], "/ptb.train.txt") && vocab_is(c.vocab, 0, "ptb", 3));
    corpus_free(&c);

    // Nothing to use; a path that is not there.
    d = scratch_dir("patterns_none");
    write_text(d, "notes.txt", "x\n");
    CHECK(corpus_load(&c, d, DSF_LEVEL_CHAR) == -1);
    CHECK_MSG(strstr(dsf_error(), "patterns_none has no train file") &&
                  strstr(dsf_error(), "ptb.char.train.txt"),
              "%s", dsf_error());
    char missing[600];
    snprintf(missing, sizeof missing, "%s/nope", d);
    CHECK(corpus_load(&c, missing, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "patterns_none/nope") && strstr(dsf_error(), "No such file"),
              "%s", dsf_error());
}

static void test_data_binary_rejected(void) {
    const char *d = scratch_dir("binary");
    dsf_corpus c;
    const char *f = write_bytes(d, "nul.txt", "some words\n\0here\n", 17);
    CHECK(corpus_load(&c, f, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "nul.txt looks binary; use --level char"), "%s", dsf_error());
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_CHAR) == 0, "%s", dsf_error());  // bytes are fine
    corpus_free(&c);
    // Control bytes: 1 in 100 passes, 2 in 100 do not.
    char text[100];
    memset(text, 'x', sizeof text);
    text[9] = text[50] = text[99] = '\n';
    text[20] = '\x01';
    f = write_bytes(d, "ctl.txt", text, sizeof text);
    CHECK_MSG(corpus_load(&c, f, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    corpus_free(&c);
    text[30] = '\x1b';
    f = write_bytes(d, "ctl.txt", text, sizeof text);
    CHECK(corpus_load(&c, f, DSF_LEVEL_WORD) == -1 && strstr(dsf_error(), "looks binary"));
    // In a folder, each file is checked.
    write_text(d, "train.txt", "fine\n");
    write_text(d, "valid.txt", "fine\n");
    write_bytes(d, "test.txt", "a\0b\n", 4);
    CHECK(corpus_load(&c, d, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "test.txt looks binary"), "%s", dsf_error());
}

static void test_data_empty_files(void) {
    const char *d = scratch_dir("empty");
    dsf_corpus c;
    const char *f = write_text(d, "e.txt", "");
    CHECK(corpus_load(&c, f, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "e.txt is empty"), "%s", dsf_error());
    CHECK(corpus_load(&c, f, DSF_LEVEL_CHAR) == -1 && strstr(dsf_error(), "is empty"));
    write_text(d, "train.txt", "a\n");
    write_text(d, "valid.txt", "");
    write_text(d, "test.txt", "a\n");
    CHECK(corpus_load(&c, d, DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "valid.txt is empty"), "%s", dsf_error());
    // One byte: 90% of it is no byte at all.
    f = write_text(d, "one.txt", "a");
    CHECK(corpus_load(&c, f, DSF_LEVEL_CHAR) == -1);
    CHECK_MSG(strstr(dsf_error(), "one.txt (first 90%) has no tokens"), "%s", dsf_error());
}

// Evaluating a checkpoint: one split, the model's vocabulary.
static void test_data_load_split_fixed_vocab(void) {
    const char *d = scratch_dir("fixed");
    write_text(d, "wiki.valid.tokens", "b a\nzz\n");  // only valid and test, as WikiText-103
    write_text(d, "wiki.test.tokens", "a\n");
    dsf_vocab *v = vocab_new();
    vocab_add(v, "a", 1);
    vocab_add(v, "<eos>", 5);
    vocab_add(v, "b", 1);
    dsf_tokens t;
    CHECK_MSG(corpus_load_split(d, DSF_LEVEL_WORD, v, DSF_SPLIT_TEST, &t) == 0, "%s", dsf_error());
    const int32_t test[] = {0, 1};
    CHECK(ids_equal(&t, test, 2));
    tokens_free(&t);
    CHECK(t.ids == NULL && t.n == 0);
    CHECK(corpus_load_split(d, DSF_LEVEL_WORD, v, DSF_SPLIT_VALID, &t) == -1);
    CHECK_MSG(strstr(dsf_error(), "'zz' in ") && strstr(dsf_error(), "wiki.valid.tokens") &&
                  strstr(dsf_error(), "is not in the model's vocabulary, which has no <unk>"),
              "%s", dsf_error());
    CHECK(corpus_load_split(d, DSF_LEVEL_WORD, v, DSF_SPLIT_TRAIN, &t) == -1);
    CHECK(strstr(dsf_error(), "no train file"));
    vocab_add(v, "<unk>", 5);
    CHECK_MSG(corpus_load_split(d, DSF_LEVEL_WORD, v, DSF_SPLIT_VALID, &t) == 0, "%s", dsf_error());
    const int32_t valid[] = {2, 0, 1, 3, 1};
    CHECK(ids_equal(&t, valid, NUM(valid)));
    CHECK(vocab_size(v) == 4);  // the model's vocabulary is never changed
    tokens_free(&t);
    vocab_free(v);

    // A single file: the same split as corpus_load makes, with its vocabulary.
    char text[2000];
    for (int i = 0; i < 1999; i++) text[i] = (char)("the cat sat\n"[i % 12]);
    text[1999] = 'Q';  // only in test
    const char *f = write_bytes(d, "one.txt", text, sizeof text);
    for (int level = 0; level < 2; level++) {
        dsf_corpus c;
        CHECK_MSG(corpus_load(&c, f, (dsf_level)level) == 0, "%s", dsf_error());
        for (int k = 0; k < DSF_NSPLITS; k++) {
            CHECK(corpus_load_split(f, (dsf_level)level, c.vocab, k, &t) == 0);
            CHECK(ids_equal(&t, c.split[k].ids, c.split[k].n));
            tokens_free(&t);
        }
        // Without <unk> (the last entry), Q cannot be read.
        int64_t *off, nb;
        uint8_t *bytes;
        vocab_pack(c.vocab, &off, &bytes, &nb);
        int32_t n = vocab_size(c.vocab) - 1;
        CHECK(vocab_is(c.vocab, n, "<unk>", 5));
        v = vocab_unpack(off, n, bytes, off[n]);
        CHECK(v);
        CHECK(corpus_load_split(f, (dsf_level)level, v, DSF_SPLIT_TEST, &t) == -1);
        CHECK_MSG(strstr(dsf_error(), "one.txt (last 5%)") && strstr(dsf_error(), "Q"), "%s",
                  dsf_error());
        vocab_free(v);
        free(off);
        free(bytes);
        corpus_free(&c);
    }
    CHECK(corpus_load_split(f, DSF_LEVEL_WORD, NULL, 7, &t) == -1);
}

// ---------------------------------------------------------------------------
// Batching

static void test_data_batcher(void) {
    int32_t ids[26];
    for (int i = 0; i < 26; i++) ids[i] = i;
    dsf_tokens t = {.ids = ids, .n = 26};
    dsf_batcher bt;
    CHECK(batcher_init(&bt, &t, 4, 3) == 0);
    CHECK(bt.B == 4 && bt.L == 6 && bt.ids == ids);
    CHECK(batcher_steps(&bt, 3) == 2);
    CHECK(batcher_steps(&bt, 5) == 1 && batcher_steps(&bt, 4) == 2 && batcher_steps(&bt, 1) == 5);
    int32_t x[12], y[12];
    // Streams 0..5, 6..11, 12..17, 18..23; x is (T, B).
    const int32_t x0[12] = {0, 6, 12, 18, 1, 7, 13, 19, 2, 8, 14, 20};
    const int32_t y0[12] = {1, 7, 13, 19, 2, 8, 14, 20, 3, 9, 15, 21};
    const int32_t x1[8] = {3, 9, 15, 21, 4, 10, 16, 22};
    const int32_t y1[8] = {4, 10, 16, 22, 5, 11, 17, 23};
    CHECK(batcher_get(&bt, 0, 3, x, y) == 3);
    CHECK(!memcmp(x, x0, sizeof x0) && !memcmp(y, y0, sizeof y0));
    memset(x, 0x7f, sizeof x);
    CHECK(batcher_get(&bt, 3, 3, x, y) == 2);
    CHECK(!memcmp(x, x1, sizeof x1) && !memcmp(y, y1, sizeof y1));
    CHECK(x[8] == 0x7f7f7f7f);  // nothing written past T' B

    // One stream of all 26 tokens.
    CHECK(batcher_init(&bt, &t, 1, 10) == 0 && bt.L == 26 && batcher_steps(&bt, 10) == 3);
    CHECK(batcher_get(&bt, 20, 10, x, y) == 5 && x[4] == 24 && y[4] == 25);

    // Too few tokens: 26 tokens in 13 streams is fine, in 14 it is not.
    CHECK(batcher_init(&bt, &t, 13, 3) == 0 && bt.L == 2 && batcher_steps(&bt, 3) == 1);
    CHECK(batcher_init(&bt, &t, 14, 3) == -1);
    CHECK_MSG(strstr(dsf_error(), "26 tokens") && strstr(dsf_error(), "batch 14") &&
                  strstr(dsf_error(), "at least 28"),
              "%s", dsf_error());
    CHECK(batcher_init(&bt, &t, 0, 3) == -1);
    CHECK(batcher_init(&bt, &t, 4, 0) == -1);
}

// Sentences: <pad> <bos> <eos> <unk> first, <bos> w.. <eos> per line, an empty
// line too; unknown words of valid become <unk> (3); char level is refused.
static void test_data_sentences(void) {
    const char *d = scratch_dir("sentences");
    write_text(d, "train.txt", "a b\n\nc a <unk>\n");
    write_text(d, "valid.txt", "a zz\n");
    write_text(d, "test.txt", "b");
    dsf_corpus c;
    CHECK_MSG(corpus_load_units(&c, d, DSF_LEVEL_WORD, DSF_UNIT_SENTENCE) == 0, "%s", dsf_error());
    CHECK(vocab_size(c.vocab) == 7);  // 4 specials, a b c
    CHECK(vocab_is(c.vocab, 0, "<pad>", 5) && vocab_is(c.vocab, 1, "<bos>", 5));
    CHECK(vocab_is(c.vocab, 2, "<eos>", 5) && vocab_is(c.vocab, 3, "<unk>", 5));
    CHECK(vocab_is(c.vocab, 4, "a", 1) && vocab_is(c.vocab, 6, "c", 1));
    const int32_t train[] = {1, 4, 5, 2, 1, 2, 1, 6, 4, 3, 2}, valid[] = {1, 4, 3, 2},
                  test[] = {1, 5, 2};
    CHECK(ids_equal(&c.split[DSF_SPLIT_TRAIN], train, NUM(train)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_VALID], valid, NUM(valid)));
    CHECK(ids_equal(&c.split[DSF_SPLIT_TEST], test, NUM(test)));
    const dsf_tokens *t = &c.split[DSF_SPLIT_TRAIN];
    CHECK(t->nseq == 3 && t->starts[0] == 0 && t->starts[1] == 4 && t->starts[2] == 6 &&
          t->starts[3] == 11);
    CHECK(c.split[DSF_SPLIT_TEST].nseq == 1);
    // The same split again with the corpus's vocabulary; a stream vocabulary is refused.
    dsf_tokens v;
    CHECK_MSG(corpus_load_split_units(d, DSF_LEVEL_WORD, DSF_UNIT_SENTENCE, c.vocab,
                                      DSF_SPLIT_VALID, &v) == 0, "%s", dsf_error());
    CHECK(ids_equal(&v, valid, NUM(valid)) && v.nseq == 1 && v.starts[1] == 4);
    tokens_free(&v);
    dsf_corpus plain;
    CHECK(corpus_load(&plain, d, DSF_LEVEL_WORD) == 0 && !plain.split[0].starts);
    CHECK(corpus_load_split_units(d, DSF_LEVEL_WORD, DSF_UNIT_SENTENCE, plain.vocab,
                                  DSF_SPLIT_VALID, &v) == -1);
    corpus_free(&plain);
    corpus_free(&c);
    CHECK(corpus_load_units(&c, d, DSF_LEVEL_CHAR, DSF_UNIT_SENTENCE) == -1 &&
          strstr(dsf_error(), "word-level"));
}

// Sequence batches: cut to T+1, padded, targets past the end ignored, the last
// batch's missing rows empty; the epoch order is a seeded permutation.
static void test_data_seqbatch(void) {
    int32_t ids[] = {1, 10, 11, 2, /**/ 1, 2, /**/ 1, 20, 21, 22, 23, 24, 2};
    int64_t starts[] = {0, 4, 6, 13};
    dsf_tokens t = {ids, 13, starts, 3};
    dsf_seq_batcher sb;
    CHECK(seqbatch_init(&sb, &t, 2, 4, 0) == 0);
    CHECK(seqbatch_steps(&sb) == 2);
    int32_t x[8], y[8];
    // Batch 0: sequences 0 (4 tokens) and 1 (2 tokens): T' = 3.
    CHECK(seqbatch_get(&sb, 0, x, y) == 3);
    const int32_t x0[] = {1, 1, 10, 2, 11, 0}, y0[] = {10, 2, 11, -1, 2, -1};
    CHECK(!memcmp(x, x0, sizeof x0) && !memcmp(y, y0, sizeof y0));
    // Batch 1: sequence 2 cut to T + 1 = 5 tokens, the second row empty.
    CHECK(seqbatch_get(&sb, 1, x, y) == 4);
    const int32_t x1[] = {1, 0, 20, 0, 21, 0, 22, 0}, y1[] = {20, -1, 21, -1, 22, -1, 23, -1};
    CHECK(!memcmp(x, x1, sizeof x1) && !memcmp(y, y1, sizeof y1));
    CHECK(DSF_IGNORE == -1);
    // The order: a permutation, the same for the same seed and epoch, and not
    // the identity for most epochs of 50 sequences.
    int32_t many[100];
    int64_t st[51];
    for (int i = 0; i < 100; i++) many[i] = i % 2 ? 2 : 1;
    for (int i = 0; i <= 50; i++) st[i] = 2 * i;
    dsf_tokens m = {many, 100, st, 50};
    seqbatch_free(&sb);
    CHECK(seqbatch_init(&sb, &m, 8, 4, 0) == 0);
    int64_t first[50];
    seqbatch_order(&sb, 1, 7, 3);
    memcpy(first, sb.order, sizeof first);
    int seen[50] = {0}, moved = 0;
    for (int i = 0; i < 50; i++) seen[sb.order[i]]++, moved += sb.order[i] != i;
    for (int i = 0; i < 50; i++) CHECK(seen[i] == 1);
    CHECK(moved > 40);
    seqbatch_order(&sb, 1, 7, 4);
    CHECK(memcmp(first, sb.order, sizeof first) != 0);
    seqbatch_order(&sb, 1, 7, 3);
    CHECK(memcmp(first, sb.order, sizeof first) == 0);
    seqbatch_order(&sb, 0, 7, 3);
    for (int i = 0; i < 50; i++) CHECK(sb.order[i] == i);
    seqbatch_free(&sb);
    dsf_tokens none = {ids, 13, NULL, 0};
    CHECK(seqbatch_init(&sb, &none, 2, 4, 0) == -1);
}

// Each batch's sequences come longest first (by the length cut to T + 1), equal
// lengths in the epoch's order, and the batches hold the epoch order's sets.
static void test_data_seqbatch_longest_first(void) {
    enum { N = 23, B = 5, T = 6 };
    int32_t ids[N * 10];
    int64_t starts[N + 1] = {0};
    for (int s = 0; s < N; s++) starts[s + 1] = starts[s] + 2 + (s * 7) % 9;  // 2..10 tokens
    for (int64_t i = 0; i < starts[N]; i++) ids[i] = (int32_t)(i % 5 + 1);
    dsf_tokens t = {ids, starts[N], starts, N};
    dsf_seq_batcher sb;
    CHECK(seqbatch_init(&sb, &t, B, T, 0) == 0);
    int64_t plain[N];
    for (int shuffle = 0; shuffle < 2; shuffle++) {
        seqbatch_order(&sb, shuffle, 9, 2);
        if (shuffle) dsf_epoch_order(plain, N, 9, 2);
        else
            for (int i = 0; i < N; i++) plain[i] = i;
        int sorted_moved = 0;
        for (int k0 = 0; k0 < N; k0 += B) {
            const int k1 = k0 + B < N ? k0 + B : N;
            for (int i = k0; i < k1; i++) {
                int in = 0;  // the same set as the plain order's batch
                for (int j = k0; j < k1; j++) in += sb.order[i] == plain[j];
                CHECK(in == 1);
                sorted_moved += sb.order[i] != plain[i];
                if (i == k0) continue;
                int64_t a = starts[sb.order[i - 1] + 1] - starts[sb.order[i - 1]];
                int64_t b = starts[sb.order[i] + 1] - starts[sb.order[i]];
                a = a > T + 1 ? T + 1 : a;
                b = b > T + 1 ? T + 1 : b;
                CHECK(a >= b);
                if (a == b) {  // ties in the plain order
                    int pa = -1, pb = -1;
                    for (int j = k0; j < k1; j++) {
                        if (plain[j] == sb.order[i - 1]) pa = j;
                        if (plain[j] == sb.order[i]) pb = j;
                    }
                    CHECK(pa < pb);
                }
            }
        }
        CHECK(sorted_moved > 0);
    }
    // The batch's rows follow: its targets are counted on a prefix of rows at every step.
    int32_t x[T * B], y[T * B];
    const int64_t Tb = seqbatch_get(&sb, 0, x, y);
    for (int64_t s = 0; s < Tb; s++)
        for (int b = 1; b < B; b++) CHECK(y[s * B + b] == DSF_IGNORE || y[s * B + b - 1] != DSF_IGNORE);
    seqbatch_free(&sb);
}

// ---------------------------------------------------------------------------
// Images (IDX)

// An IDX images file of n images rows x cols with pixel value (i·7 + k) mod 256,
// and a labels file (i mod 3), plain or (with zlib) gzip.
static void write_idx(const char *dir, const char *img, const char *lab, uint32_t n,
                      uint32_t rows, uint32_t cols, int gz) {
    const size_t P = (size_t)rows * cols, ni = 16 + n * P, nl = 8 + n;
    uint8_t *a = malloc(ni), *b = malloc(nl);
    const uint32_t ha[4] = {0x803, n, rows, cols}, hb[2] = {0x801, n};
    for (int k = 0; k < 16; k++) a[k] = (uint8_t)(ha[k / 4] >> (24 - 8 * (k % 4)));
    for (int k = 0; k < 8; k++) b[k] = (uint8_t)(hb[k / 4] >> (24 - 8 * (k % 4)));
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < P; k++) a[16 + i * P + k] = (uint8_t)((i * 7 + k) % 256);
        b[8 + i] = (uint8_t)(i % 3);
    }
#ifdef DSF_USE_ZLIB
    if (gz) {
        char path[1024];
        for (int f = 0; f < 2; f++) {
            snprintf(path, sizeof path, "%s/%s", dir, f ? lab : img);
            gzFile z = gzopen(path, "wb");
            DSF_ASSERT(z && gzwrite(z, f ? b : a, (unsigned)(f ? nl : ni)) == (int)(f ? nl : ni));
            gzclose(z);
        }
        free(a), free(b);
        return;
    }
#endif
    (void)gz;
    write_bytes(dir, img, a, ni);
    write_bytes(dir, lab, b, nl);
    free(a), free(b);
}

static void test_data_images_idx(void) {
    const char *d = scratch_dir("idx");
    char ip[1024], lp[1024];
    for (int gz = 0; gz < 2; gz++) {
#ifndef DSF_USE_ZLIB
        if (gz) {
            test_skip("this build has no zlib: gzip IDX files not read");
            break;
        }
#endif
        write_idx(d, "im", "lb", 3, 2, 3, gz);
        snprintf(ip, sizeof ip, "%s/im", d), snprintf(lp, sizeof lp, "%s/lb", d);
        dsf_images im;
        CHECK_MSG(images_load_idx(&im, ip, lp) == 0, "%s", dsf_error());
        CHECK(im.n == 3 && im.rows == 2 && im.cols == 3 && im.classes == 3);
        CHECK(im.pixels[6 + 5] == 12 && im.labels[2] == 2);
        // A batch of B = 3 rows from images 2 and 0, pixels in the order perm.
        const int32_t perm[6] = {5, 4, 3, 2, 1, 0};
        const int64_t idx[2] = {2, 0};
        float xf[6 * 3];
        int32_t y[6 * 3];
        images_batch(&im, idx, 2, 3, perm, xf, y);
        CHECK_CLOSE(xf[0 * 3 + 0], (14 + 5) / 255.0, 1e-7);  // image 2, pixel 5, at t = 0
        CHECK_CLOSE(xf[5 * 3 + 1], 0.0, 1e-7);               // image 0, pixel 0, at t = 5
        CHECK(xf[2 * 3 + 2] == 0 && y[5 * 3 + 2] == DSF_IGNORE);  // the empty row
        CHECK(y[5 * 3 + 0] == 2 && y[5 * 3 + 1] == 0 && y[4 * 3 + 0] == DSF_IGNORE);
        images_batch(&im, idx, 2, 3, NULL, xf, y);
        CHECK_CLOSE(xf[1 * 3 + 0], 15 / 255.0, 1e-7);  // raster order: pixel 1 at t = 1
        images_free(&im);
    }
    // Hostile files: each one clear error, nothing allocated.
    write_idx(d, "im", "lb", 3, 2, 3, 0);
    dsf_images im;
    const uint8_t bad_magic[16] = {0, 0, 8, 4, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0, 1};
    write_bytes(d, "bad", bad_magic, sizeof bad_magic);
    snprintf(ip, sizeof ip, "%s/bad", d), snprintf(lp, sizeof lp, "%s/lb", d);
    CHECK(images_load_idx(&im, ip, lp) == -1 && strstr(dsf_error(), "not an IDX images file"));
    CHECK(im.pixels == NULL && im.n == 0);
    const uint8_t short_file[20] = {0, 0, 8, 3, 0, 0, 0, 3, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4};
    write_bytes(d, "short", short_file, sizeof short_file);
    snprintf(ip, sizeof ip, "%s/short", d);
    CHECK(images_load_idx(&im, ip, lp) == -1 && strstr(dsf_error(), "need 34"));
    const uint8_t huge[16] = {0, 0, 8, 3, 0, 0, 0, 1, 0xff, 0xff, 0xff, 0xff, 0, 0, 0, 1};
    write_bytes(d, "huge", huge, sizeof huge);
    snprintf(ip, sizeof ip, "%s/huge", d);
    CHECK(images_load_idx(&im, ip, lp) == -1 && strstr(dsf_error(), "out of range"));
    write_idx(d, "im4", "lb4", 4, 2, 3, 0);
    snprintf(ip, sizeof ip, "%s/im", d), snprintf(lp, sizeof lp, "%s/lb4", d);
    CHECK(images_load_idx(&im, ip, lp) == -1 && strstr(dsf_error(), "holds 4 labels"));
    snprintf(lp, sizeof lp, "%s/none", d);
    CHECK(images_load_idx(&im, ip, lp) == -1 && strstr(dsf_error(), "cannot open"));
    dsf_images split[DSF_NSPLITS];
    CHECK(images_load_fashion(split, d) == -1 && strstr(dsf_error(), "train-images"));
    CHECK(images_load_fashion(split, "/nonexistent/dir") == -1 &&
          strstr(dsf_error(), "dataset-fashion-mnist"));
}

// The permutation: a permutation of every position, fixed by the seed.
static void test_data_images_permutation(void) {
    int32_t p[784], q[784];
    int seen[784] = {0}, moved = 0;
    images_permutation(p, 784, 1);
    for (int i = 0; i < 784; i++) seen[p[i]]++, moved += p[i] != i;
    for (int i = 0; i < 784; i++) CHECK(seen[i] == 1);
    CHECK(moved > 770);
    images_permutation(q, 784, 1);
    CHECK(memcmp(p, q, sizeof p) == 0);
    images_permutation(q, 784, 2);
    CHECK(memcmp(p, q, sizeof p) != 0);
}

// Debian's Fashion-MNIST: 55,000 + 5,000 + 10,000 images of 28 x 28, ten classes,
// 6,000 training and 1,000 test images of each.
static void test_data_fashion_mnist(void) {
    struct stat st;
    if (stat(DSF_FASHION_DIR, &st) != 0) {
        test_skip("no %s (apt-get install dataset-fashion-mnist)", DSF_FASHION_DIR);
        return;
    }
#ifndef DSF_USE_ZLIB
    test_skip("this build has no zlib for its .gz files");
    return;
#endif
    dsf_images s[DSF_NSPLITS];
    CHECK_MSG(images_load_fashion(s, DSF_FASHION_DIR) == 0, "%s", dsf_error());
    CHECK(s[0].n == 55000 && s[1].n == 5000 && s[2].n == 10000);
    CHECK(s[0].rows == 28 && s[0].cols == 28 && s[2].rows == 28 && s[0].classes == 10);
    int train[10] = {0}, test[10] = {0};
    for (int k = 0; k < 2; k++)
        for (int64_t i = 0; i < s[k].n; i++) train[s[k].labels[i]]++;
    for (int64_t i = 0; i < s[2].n; i++) test[s[2].labels[i]]++;
    for (int c = 0; c < 10; c++) CHECK(train[c] == 6000 && test[c] == 1000);
    for (int k = 0; k < DSF_NSPLITS; k++) images_free(&s[k]);
}

// ---------------------------------------------------------------------------
// The built-in corpus

static void test_data_recall(void) {
    size_t n, n2;
    char *a = synthetic_recall(7, 4, 1000, &n), *b = synthetic_recall(7, 4, 1000, &n2);
    CHECK(n == 999 && n2 == n && !memcmp(a, b, n));  // 111 lines of 9 bytes
    int keys[8] = {0}, fill[8] = {0};
    for (size_t i = 0; i < n; i += 9) {
        const char *l = a + i;
        CHECK(l[0] >= 'a' && l[0] <= 'h' && l[1] == '.' && l[6] == '=' && l[7] == l[0]);
        CHECK(l[8] == '\n');
        keys[l[0] - 'a']++;
        for (int j = 2; j < 6; j++) {
            CHECK(l[j] >= 'p' && l[j] <= 'w');
            fill[l[j] - 'p']++;
        }
    }
    for (int k = 0; k < 8; k++) CHECK(keys[k] > 0 && fill[k] > 0);
    free(b);
    b = synthetic_recall(8, 4, 1000, &n2);
    CHECK(n2 == n && memcmp(a, b, n) != 0);  // another seed, other text
    free(a);
    free(b);
    a = synthetic_recall(1, 0, 3, &n);  // at least one line
    CHECK(n == 5 && a[1] == '.' && a[2] == '=' && a[3] == a[0] && a[4] == '\n');
    free(a);

    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, "builtin:recall:4", DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    CHECK(vocab_size(c.vocab) == 19);  // \n . = a..h p..w
    CHECK(vocab_is(c.vocab, 0, "\n", 1) && vocab_is(c.vocab, 3, "a", 1));
    int64_t total = c.split[0].n + c.split[1].n + c.split[2].n;
    CHECK(total > 1000000 && total <= 1 << 20 && total % 9 == 0);
    CHECK(c.split[0].n == total * 9 / 10 && c.split[1].n == total / 20);
    CHECK(strstr(c.source[0], "builtin:recall:4"));
    dsf_tokens t;
    CHECK(corpus_load_split("builtin:recall:4", DSF_LEVEL_CHAR, c.vocab, DSF_SPLIT_VALID, &t) == 0);
    CHECK(ids_equal(&t, c.split[1].ids, c.split[1].n));
    tokens_free(&t);
    corpus_free(&c);
    CHECK_MSG(corpus_load(&c, "builtin:recall", DSF_LEVEL_CHAR) == 0, "%s", dsf_error());
    CHECK(strstr(c.source[0], "builtin:recall:8"));  // the default delay: 13-byte lines
    CHECK(c.split[0].ids[1] == 1 && c.split[0].ids[10] == 2 && c.split[0].ids[12] == 0);
    corpus_free(&c);

    CHECK(corpus_load(&c, "builtin:recall", DSF_LEVEL_WORD) == -1);
    CHECK_MSG(strstr(dsf_error(), "builtin:recall is a character-level corpus; use --level char"),
              "%s", dsf_error());
    CHECK(corpus_load(&c, "builtin:recall:x", DSF_LEVEL_CHAR) == -1);
    CHECK(corpus_load(&c, "builtin:recall:-1", DSF_LEVEL_CHAR) == -1);
    CHECK(corpus_load(&c, "builtin:recall4", DSF_LEVEL_CHAR) == -1);
    CHECK(corpus_load(&c, "builtin:copy", DSF_LEVEL_CHAR) == -1 && strstr(dsf_error(), "copy"));
}

// ---------------------------------------------------------------------------
// The real corpora in ../shared/data, when present

static const char *shared_data(void) {
    static const char *const roots[] = {"../shared/data", "/work/shared/data"};
    struct stat st;
    for (int i = 0; i < 2; i++) {
        char p[256];
        snprintf(p, sizeof p, "%s/ptb/ptb.train.txt", roots[i]);
        if (stat(p, &st) == 0) return roots[i];
    }
    return NULL;
}

static void check_corpus(const char *root, const char *sub, int64_t tr, int64_t va, int64_t te,
                         int32_t V) {
    char p[256];
    snprintf(p, sizeof p, "%s/%s", root, sub);
    dsf_corpus c;
    CHECK_MSG(corpus_load(&c, p, DSF_LEVEL_WORD) == 0, "%s", dsf_error());
    CHECK_MSG(c.split[0].n == tr && c.split[1].n == va && c.split[2].n == te,
              "%s: %lld %lld %lld tokens", sub, (long long)c.split[0].n, (long long)c.split[1].n,
              (long long)c.split[2].n);
    CHECK_MSG(vocab_size(c.vocab) == V, "%s: vocabulary %d", sub, vocab_size(c.vocab));
    CHECK(vocab_find(c.vocab, "<unk>", 5) >= 0);
    corpus_free(&c);
}

static void test_data_real_corpora(void) {
    const char *root = shared_data();
    if (!root) {
        printf("     note: no ../shared/data/ptb; PTB and WikiText-2 counts not checked\n");
        return;
    }
    check_corpus(root, "ptb", 929589, 73760, 82430, 10000);
    if (test_current_failed) return;
    check_corpus(root, "wikitext-2", 2088628, 217646, 245569, 33278);
}

void suite_data(void) {
    RUN(test_data_vocab_basic);
    RUN(test_data_vocab_pack_roundtrip);
    RUN(test_data_vocab_unpack_rejects);
    RUN(test_data_names);
    RUN(test_data_word_lines);
    RUN(test_data_word_oov_appends_unk);
    RUN(test_data_word_single_file_cuts);
    RUN(test_data_char_single_file);
    RUN(test_data_dir_patterns);
    RUN(test_data_binary_rejected);
    RUN(test_data_empty_files);
    RUN(test_data_load_split_fixed_vocab);
    RUN(test_data_batcher);
    RUN(test_data_sentences);
    RUN(test_data_seqbatch);
    RUN(test_data_seqbatch_longest_first);
    RUN(test_data_images_idx);
    RUN(test_data_images_permutation);
    RUN(test_data_fashion_mnist);
    RUN(test_data_recall);
    RUN(test_data_real_corpora);
}
