// corpus.c: see corpus.h.
#include "corpus.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "synthetic.h"

static const char *const split_names[DSF_NSPLITS] = {"train", "valid", "test"};

const char *dsf_split_name(int split) {
    return split >= 0 && split < DSF_NSPLITS ? split_names[split] : "?";
}

int dsf_split_parse(const char *s, int *split) {
    for (int k = 0; k < DSF_NSPLITS; k++) {
        if (s && strcmp(s, split_names[k]) == 0) {
            *split = k;
            return 0;
        }
    }
    return dsf_error_set("unknown split '%s' (use train, valid or test)", s ? s : "");
}

static const char *const unit_names[] = {"stream", "sentence", "chunk"};

const char *dsf_unit_name(dsf_unit u) { return (unsigned)u < 3 ? unit_names[u] : "unknown"; }

int dsf_unit_parse(const char *s, dsf_unit *out) {
    for (int i = 0; i < 3; i++)
        if (strcmp(s, unit_names[i]) == 0) {
            *out = (dsf_unit)i;
            return 0;
        }
    return dsf_error_set("unknown batching '%s' (expected stream, sentence or chunk)", s);
}

int tokens_chunk(dsf_tokens *t, int64_t len, const char *what) {
    DSF_ASSERT(len >= 2);
    const int64_t k = t->n / len;
    if (k < 1)
        return dsf_error_set("%s has %lld tokens, fewer than one chunk of %lld", what,
                             (long long)t->n, (long long)len);
    free(t->starts);
    t->starts = dsf_xmalloc(sizeof(int64_t) * (size_t)(k + 1));
    for (int64_t i = 0; i <= k; i++) t->starts[i] = i * len;
    t->nseq = k;
    return 0;
}

void tokens_free(dsf_tokens *t) {
    free(t->ids);
    free(t->starts);
    memset(t, 0, sizeof *t);
}

void corpus_free(dsf_corpus *c) {
    vocab_free(c->vocab);
    for (int k = 0; k < DSF_NSPLITS; k++) {
        tokens_free(&c->split[k]);
        free(c->source[k]);
    }
    memset(c, 0, sizeof *c);
}

// ---------------------------------------------------------------------------
// Files

static char *str_printf(const char *fmt, const char *a, const char *b) {
    size_t n = strlen(fmt) + strlen(a) + strlen(b) + 1;
    char *s = dsf_xmalloc(n);
    snprintf(s, n, fmt, a, b);
    return s;
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// Reads a whole regular file into *buf (malloc, NUL-terminated), its size in *len.
static int read_file(const char *path, uint8_t **buf, size_t *len) {
    struct stat st;
    if (stat(path, &st) != 0) return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return dsf_error_set("%s is not a regular file", path);
    FILE *f = fopen(path, "rb");
    if (!f) return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    size_t cap = (size_t)st.st_size, n = 0;
    uint8_t *b = malloc(cap + 1);
    if (!b) {
        fclose(f);
        return dsf_error_set("out of memory reading %s (%.1f MiB)", path, (double)cap / (1 << 20));
    }
    // The size is a hint: a file that grows or shrinks meanwhile is read to its end.
    for (;;) {
        n += fread(b + n, 1, cap - n, f);
        if (n < cap || ferror(f)) break;
        int c = fgetc(f);
        if (c == EOF) break;
        uint8_t *nb = realloc(b, cap * 2 + 2);
        if (!nb) {
            free(b);
            fclose(f);
            return dsf_error_set("out of memory reading %s", path);
        }
        b = nb;
        cap = cap * 2 + 1;
        b[n++] = (uint8_t)c;
    }
    int err = ferror(f);
    fclose(f);
    if (err) {
        free(b);
        return dsf_error_set("cannot read %s", path);
    }
    if (n == 0) {
        free(b);
        return dsf_error_set("%s is empty", path);
    }
    b[n] = 0;
    *buf = b;
    *len = n;
    return 0;
}

// NUL bytes, or more than 1% control bytes besides \t \n \v \f \r.
static int looks_binary(const uint8_t *p, size_t n) {
    size_t ctrl = 0;
    for (size_t i = 0; i < n; i++) {
        uint8_t c = p[i];
        if (c == 0) return 1;
        ctrl += (c < 0x20 && (c < '\t' || c > '\r')) || c == 0x7f;
    }
    return ctrl * 100 > n;
}

// ---------------------------------------------------------------------------
// Where the three splits come from

enum { SRC_DIR, SRC_FILE };

typedef struct {
    int kind;
    char *file[DSF_NSPLITS];  // SRC_DIR: the three paths
    char *name;               // SRC_FILE: the file (or builtin:...)
    uint8_t *buf;             // SRC_FILE: its bytes
    size_t cut[DSF_NSPLITS + 1];  // SRC_FILE: split k is buf[cut[k] .. cut[k+1])
} source;

static void source_free(source *s) {
    for (int k = 0; k < DSF_NSPLITS; k++) free(s->file[k]);
    free(s->name);
    free(s->buf);
    memset(s, 0, sizeof *s);
}

static const char *const patterns[] = {"ptb.%s.txt", "ptb.char.%s.txt", "wiki.%s.tokens",
                                       "%s.txt"};
enum { NPATTERNS = 4 };

static char *pattern_path(const char *dir, int pat, int split) {
    size_t dl = strlen(dir);
    char name[64];
    snprintf(name, sizeof name, patterns[pat], split_names[split]);
    return str_printf(dl && dir[dl - 1] == '/' ? "%s%s" : "%s/%s", dir, name);
}

// In directory dir, the first file-name set whose file for split `key` exists; then
// all splits when all_splits, else only `key`, must exist.
static int find_dir_files(source *s, const char *dir, dsf_level level, int key, int all_splits) {
    char looked[256] = "";
    for (int pat = 0; pat < NPATTERNS; pat++) {
        char *p = pattern_path(dir, pat, key);
        if (!is_file(p)) {
            const char *base = strrchr(p, '/') + 1;
            size_t at = strlen(looked);
            snprintf(looked + at, sizeof looked - at, "%s%s", at ? ", " : "", base);
            free(p);
            continue;
        }
        s->kind = SRC_DIR;
        s->file[key] = p;
        if (!all_splits) return 0;
        for (int k = 0; k < DSF_NSPLITS; k++) {
            if (k == key) continue;
            s->file[k] = pattern_path(dir, pat, k);
            if (!is_file(s->file[k]))
                return dsf_error_set("%s is missing (%s is there)", s->file[k], p);
        }
        return 0;
    }
    return dsf_error_set("%s has no %s file (looked for %s)", dir, split_names[key], looked);
}

// Word level: the first line boundary (just after a '\n', or the end) at or after mark.
static size_t line_cut(const uint8_t *p, size_t n, size_t mark) {
    if (mark == 0) return 0;
    if (mark >= n) return n;
    const uint8_t *nl = memchr(p + mark - 1, '\n', n - (mark - 1));
    return nl ? (size_t)(nl - p) + 1 : n;
}

static void single_file_cuts(source *s, size_t n, dsf_level level) {
    size_t m1 = (size_t)((uint64_t)n * 9 / 10), m2 = m1 + n / 20;
    if (level == DSF_LEVEL_WORD) {
        m1 = line_cut(s->buf, n, m1);
        m2 = line_cut(s->buf, n, (size_t)((uint64_t)n * 19 / 20));
        if (m2 < m1) m2 = m1;
    }
    s->cut[0] = 0;
    s->cut[1] = m1;
    s->cut[2] = m2;
    s->cut[3] = n;
}

#define RECALL_BYTES ((size_t)1 << 20)
#define RECALL_SEED 1
#define RECALL_MAX_DELAY 100000

static int builtin_source(source *s, const char *path, dsf_level level) {
    const char *name = path + strlen("builtin:");
    long delay = 8;
    if (strncmp(name, "recall", 6) != 0 || (name[6] != 0 && name[6] != ':'))
        return dsf_error_set("unknown built-in corpus '%s' (there is builtin:recall[:D])", path);
    if (name[6] == ':') {
        char *end;
        errno = 0;
        delay = strtol(name + 7, &end, 10);
        if (end == name + 7 || *end || errno || delay < 0 || delay > RECALL_MAX_DELAY)
            return dsf_error_set("bad delay in '%s' (want builtin:recall:D, D in 0..%d)", path,
                                 RECALL_MAX_DELAY);
    }
    if (level != DSF_LEVEL_CHAR)
        return dsf_error_set("builtin:recall is a character-level corpus; use --level char");
    size_t n;
    s->kind = SRC_FILE;
    s->buf = (uint8_t *)synthetic_recall(RECALL_SEED, (int)delay, RECALL_BYTES, &n);
    char spec[32];
    snprintf(spec, sizeof spec, "builtin:recall:%ld", delay);
    s->name = dsf_xstrdup(spec);
    single_file_cuts(s, n, level);
    return 0;
}

// Finds the text for split `key` (and, when all_splits, the other two).
static int source_open(source *s, const char *path, dsf_level level, int key, int all_splits) {
    memset(s, 0, sizeof *s);
    if (strncmp(path, "builtin:", 8) == 0) return builtin_source(s, path, level);
    struct stat st;
    if (stat(path, &st) != 0) return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    if (S_ISDIR(st.st_mode)) return find_dir_files(s, path, level, key, all_splits);
    size_t n;
    s->kind = SRC_FILE;
    s->name = dsf_xstrdup(path);
    if (read_file(path, &s->buf, &n)) return -1;
    if (level == DSF_LEVEL_WORD && looks_binary(s->buf, n))
        return dsf_error_set("%s looks binary; use --level char", path);
    single_file_cuts(s, n, level);
    return 0;
}

// The bytes of split k: *buf is owned by the caller when *owned.
static int source_text(const source *s, int k, dsf_level level, const uint8_t **text, size_t *n,
                       uint8_t **owned, char **label) {
    static const char *const part[DSF_NSPLITS] = {"first 90%", "next 5%", "last 5%"};
    *owned = NULL;
    if (s->kind == SRC_FILE) {
        *text = s->buf + s->cut[k];
        *n = s->cut[k + 1] - s->cut[k];
        *label = str_printf("%s (%s)", s->name, part[k]);
        return 0;
    }
    if (read_file(s->file[k], owned, n)) return -1;
    if (level == DSF_LEVEL_WORD && looks_binary(*owned, *n)) {
        free(*owned);
        *owned = NULL;
        return dsf_error_set("%s looks binary; use --level char", s->file[k]);
    }
    *text = *owned;
    *label = dsf_xstrdup(s->file[k]);
    return 0;
}

// ---------------------------------------------------------------------------
// Tokenising

typedef struct {
    const dsf_vocab *v;  // lookups
    dsf_vocab *grow;     // the same vocabulary when it may grow, else NULL
    int add_all;         // train: every new token is added
    int32_t unk;         // id of <unk>, -1 while there is none
    const char *label;   // the text's name, for messages
    int sentences;       // DSF_UNIT_SENTENCE: <bos> before each line, its start recorded
} tokenizer;

// A token for an error message: printable ASCII as is, other bytes as \xNN.
static void quote_token(char *out, size_t cap, const uint8_t *s, size_t len) {
    size_t k = 0;
    for (size_t i = 0; i < len && k + 8 < cap; i++) {
        if (s[i] >= 0x20 && s[i] < 0x7f && s[i] != '\\')
            out[k++] = (char)s[i];
        else
            k += (size_t)snprintf(out + k, cap - k, s[i] == '\n' ? "\\n" : "\\x%02x", s[i]);
        if (i + 1 < len && k + 8 >= cap) k += (size_t)snprintf(out + k, cap - k, "...");
    }
    out[k] = 0;
}

static int32_t token_id(tokenizer *tk, const uint8_t *s, size_t len) {
    if (tk->add_all) {
        int32_t id = vocab_add(tk->grow, (const char *)s, len);
        if (id < 0) dsf_error_set("%s: more than %d distinct tokens", tk->label, DSF_VOCAB_MAX);
        return id;
    }
    int32_t id = vocab_find(tk->v, (const char *)s, len);
    if (id >= 0) return id;
    if (tk->unk < 0 && tk->grow) tk->unk = vocab_add(tk->grow, "<unk>", 5);
    if (tk->unk < 0) {
        char q[64];
        quote_token(q, sizeof q, s, len);
        if (tk->grow) {
            dsf_error_set("%s: more than %d distinct tokens", tk->label, DSF_VOCAB_MAX);
        } else {
            dsf_error_set("'%s' in %s is not in the model's vocabulary, which has no <unk>", q,
                          tk->label);
        }
    }
    return tk->unk;
}

typedef struct {
    int32_t *ids;
    size_t n, cap;
} id_buf;

static int push(id_buf *b, int32_t id, const char *label) {
    if (b->n == b->cap) {
        size_t cap = b->cap ? b->cap * 2 : 1024;
        int32_t *p = realloc(b->ids, sizeof(int32_t) * cap);
        if (!p) return dsf_error_set("out of memory for the tokens of %s", label);
        b->ids = p;
        b->cap = cap;
    }
    b->ids[b->n++] = id;
    return 0;
}

enum { CH_WORD, CH_SPACE, CH_EOL };

// Sentences: the line's <bos> and its start, before its first token.
static int open_line(tokenizer *tk, id_buf *b, id_buf *starts, int *open) {
    if (!tk->sentences || *open) return 0;
    *open = 1;
    const int32_t bos = vocab_find(tk->v, "<bos>", 5);
    DSF_ASSERT(bos >= 0);  // a sentence vocabulary starts with it
    if ((int64_t)b->n > INT32_MAX) return dsf_error_set("%s: too many tokens", tk->label);
    return push(starts, (int32_t)b->n, tk->label) || push(b, bos, tk->label);
}

static int tokenize_words(tokenizer *tk, const uint8_t *p, size_t n, dsf_tokens *out) {
    static const uint8_t cls[256] = {[' '] = CH_SPACE, ['\t'] = CH_SPACE, ['\r'] = CH_SPACE,
                                     ['\v'] = CH_SPACE, ['\f'] = CH_SPACE, ['\n'] = CH_EOL};
    id_buf b = {0}, starts = {0};
    int32_t eos = -1;
    int open = 0;
    size_t i = 0;
    for (;;) {
        while (i < n && cls[p[i]] == CH_SPACE) i++;
        int at_end = i == n;
        if (at_end && (n == 0 || p[n - 1] == '\n')) break;  // no unterminated last line
        if (at_end || p[i] == '\n') {
            if (eos < 0 && (eos = token_id(tk, (const uint8_t *)"<eos>", 5)) < 0) goto fail;
            if (open_line(tk, &b, &starts, &open) || push(&b, eos, tk->label)) goto fail;
            open = 0;
            if (at_end) break;
            i++;
            continue;
        }
        size_t j = i + 1;
        while (j < n && cls[p[j]] == CH_WORD) j++;
        if (open_line(tk, &b, &starts, &open)) goto fail;
        int32_t id = token_id(tk, p + i, j - i);
        if (id < 0 || push(&b, id, tk->label)) goto fail;
        i = j;
    }
    out->ids = b.ids;
    out->n = (int64_t)b.n;
    if (tk->sentences) {
        out->nseq = (int64_t)starts.n;
        out->starts = dsf_xmalloc(sizeof(int64_t) * (starts.n + 1));
        for (size_t k = 0; k < starts.n; k++) out->starts[k] = starts.ids[k];
        out->starts[starts.n] = out->n;
    }
    free(starts.ids);
    return 0;
fail:
    free(b.ids);
    free(starts.ids);
    return -1;
}

static int tokenize_chars(tokenizer *tk, const uint8_t *p, size_t n, dsf_tokens *out) {
    int32_t map[256];
    if (tk->add_all) {
        uint8_t seen[256] = {0};
        for (size_t i = 0; i < n; i++) seen[p[i]] = 1;
        for (int c = 0; c < 256; c++) {
            uint8_t byte = (uint8_t)c;
            if (seen[c] && token_id(tk, &byte, 1) < 0) return -1;
        }
    }
    for (int c = 0; c < 256; c++) {
        char byte = (char)c;
        map[c] = vocab_find(tk->v, &byte, 1);
    }
    int32_t *ids = malloc(sizeof(int32_t) * (n ? n : 1));
    if (!ids) return dsf_error_set("out of memory for the tokens of %s", tk->label);
    for (size_t i = 0; i < n; i++) {
        int32_t id = map[p[i]];
        if (id < 0 && (id = map[p[i]] = token_id(tk, p + i, 1)) < 0) {
            free(ids);
            return -1;
        }
        ids[i] = id;
    }
    out->ids = ids;
    out->n = (int64_t)n;
    return 0;
}

static int tokenize(tokenizer *tk, dsf_level level, const uint8_t *p, size_t n, dsf_tokens *out) {
    return level == DSF_LEVEL_CHAR ? tokenize_chars(tk, p, n, out) : tokenize_words(tk, p, n, out);
}

// ---------------------------------------------------------------------------

static int check_unit(dsf_level level, dsf_unit unit) {
    if (unit == DSF_UNIT_SENTENCE && level != DSF_LEVEL_WORD)
        return dsf_error_set("sentence batching needs word-level data (--level word)");
    return 0;
}

int corpus_load(dsf_corpus *c, const char *path, dsf_level level) {
    return corpus_load_units(c, path, level, DSF_UNIT_STREAM);
}

int corpus_load_units(dsf_corpus *c, const char *path, dsf_level level, dsf_unit unit) {
    memset(c, 0, sizeof *c);
    c->level = level;
    source s;
    memset(&s, 0, sizeof s);
    if (check_unit(level, unit) || source_open(&s, path, level, DSF_SPLIT_TRAIN, 1)) goto fail;
    c->vocab = vocab_new();
    tokenizer tk = {.v = c->vocab, .grow = c->vocab, .add_all = 1, .unk = -1,
                    .sentences = unit == DSF_UNIT_SENTENCE};
    if (tk.sentences) {  // <pad>, <bos>, <eos>, <unk>: ids 0..3
        static const char *const special[] = {"<pad>", "<bos>", "<eos>", "<unk>"};
        for (int k = 0; k < 4; k++) DSF_ASSERT(vocab_add(c->vocab, special[k], 5) == k);
    }
    for (int k = 0; k < DSF_NSPLITS; k++) {
        const uint8_t *text;
        size_t n;
        uint8_t *owned;
        if (source_text(&s, k, level, &text, &n, &owned, &c->source[k])) goto fail;
        tk.label = c->source[k];
        int rc = tokenize(&tk, level, text, n, &c->split[k]);
        free(owned);
        if (rc) goto fail;
        if (k == DSF_SPLIT_TRAIN) {
            if (c->split[k].n == 0) {
                dsf_error_set("%s has no tokens to train on", c->source[k]);
                goto fail;
            }
            tk.add_all = 0;
            tk.unk = vocab_find(c->vocab, "<unk>", 5);
        }
    }
    source_free(&s);
    return 0;
fail:
    source_free(&s);
    corpus_free(c);
    c->level = level;
    return -1;
}

int corpus_load_split(const char *path, dsf_level level, const dsf_vocab *v, int split,
                      dsf_tokens *out) {
    return corpus_load_split_units(path, level, DSF_UNIT_STREAM, v, split, out);
}

int corpus_load_split_units(const char *path, dsf_level level, dsf_unit unit, const dsf_vocab *v,
                            int split, dsf_tokens *out) {
    memset(out, 0, sizeof *out);
    if (split < 0 || split >= DSF_NSPLITS) return dsf_error_set("no split number %d", split);
    if (check_unit(level, unit)) return -1;
    if (unit == DSF_UNIT_SENTENCE && (vocab_find(v, "<pad>", 5) != DSF_PAD_ID ||
                                      vocab_find(v, "<bos>", 5) < 0))
        return dsf_error_set("sentence batching needs a vocabulary that starts with <pad>, <bos> "
                             "(one made with --batching sentence)");
    source s;
    const uint8_t *text;
    size_t n;
    uint8_t *owned = NULL;
    char *label = NULL;
    int rc = -1;
    if (source_open(&s, path, level, split, 0) == 0 &&
        source_text(&s, split, level, &text, &n, &owned, &label) == 0) {
        tokenizer tk = {.v = v, .unk = vocab_find(v, "<unk>", 5), .label = label,
                        .sentences = unit == DSF_UNIT_SENTENCE};
        rc = tokenize(&tk, level, text, n, out);
    }
    free(owned);
    free(label);
    source_free(&s);
    return rc;
}
