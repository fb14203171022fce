// st_read.c: the safetensors reader (safetensors.h): the header's JSON parsed
// and checked against the file, the tensors placed and looked up by name.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L  // open, pread, fsync, getpid
#endif

#include "safetensors.h"
#include "st_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// ---------------------------------------------------------------------------------------
// Reader.

typedef struct {
    st_tensor t;
    uint64_t begin, end;  // data_offsets
    int index;            // position in the header, to order ties
} entry;

struct st_file {
    char *what;      // the path, for messages
    uint8_t *block;  // the file, placed so that the data section starts 8-aligned
    uint8_t *bytes;
    size_t size;
    const uint8_t *data;  // the data section
    size_t data_size;
    entry *e;  // in data order after loading
    int n, cap;
    st_name_ix *by_name;  // sorted by name, for st_get
    char **key, **val;  // __metadata__, in header order
    int nmeta, metacap;
    uint8_t *aligned;  // copies of the tensors whose offset does not suit their dtype
};

static int bad(const char *what, const char *fmt, ...) DSF_PRINTF(2, 3);
static int bad(const char *what, const char *fmt, ...) {
    char why[768];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return dsf_error_set("checkpoint %s is not a valid safetensors file: %s", what, why);
}

// A cursor in the header.
typedef struct {
    const char *what;  // the file, for messages
    const uint8_t *p, *begin, *end;
} jcur;

static int jbad(const jcur *c, const char *fmt, ...) DSF_PRINTF(2, 3);
static int jbad(const jcur *c, const char *fmt, ...) {
    char why[256];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(why, sizeof why, fmt, ap);
    va_end(ap);
    return bad(c->what, "header is not valid JSON: %s at header byte %zu", why,
               (size_t)(c->p - c->begin));
}

static void skip_ws(jcur *c) {
    while (c->p < c->end && (*c->p == ' ' || *c->p == '\t' || *c->p == '\n' || *c->p == '\r'))
        c->p++;
}

// Skips white space, then consumes ch if it comes next.
static int eat(jcur *c, char ch) {
    skip_ws(c);
    if (c->p < c->end && *c->p == (uint8_t)ch) {
        c->p++;
        return 1;
    }
    return 0;
}

static int peek(jcur *c) {
    skip_ws(c);
    return c->p < c->end ? *c->p : -1;
}

static int hex4(jcur *c, uint32_t *out) {
    uint32_t v = 0;
    for (int i = 0; i < 4; i++, c->p++) {
        if (c->p >= c->end) return jbad(c, "unterminated \\u escape");
        uint8_t h = *c->p;
        int d = h >= '0' && h <= '9'   ? h - '0'
                : h >= 'a' && h <= 'f' ? h - 'a' + 10
                : h >= 'A' && h <= 'F' ? h - 'A' + 10
                                       : -1;
        if (d < 0) return jbad(c, "bad hex digit in a \\u escape");
        v = v * 16 + (uint32_t)d;
    }
    *out = v;
    return 0;
}

static size_t utf8_put(uint32_t cp, char *out) {
    char b[4];
    size_t n;
    if (cp < 0x80) {
        b[0] = (char)cp, n = 1;
    } else if (cp < 0x800) {
        b[0] = (char)(0xc0 | cp >> 6), b[1] = (char)(0x80 | (cp & 0x3f)), n = 2;
    } else if (cp < 0x10000) {
        b[0] = (char)(0xe0 | cp >> 12), b[1] = (char)(0x80 | (cp >> 6 & 0x3f));
        b[2] = (char)(0x80 | (cp & 0x3f)), n = 3;
    } else {
        b[0] = (char)(0xf0 | cp >> 18), b[1] = (char)(0x80 | (cp >> 12 & 0x3f));
        b[2] = (char)(0x80 | (cp >> 6 & 0x3f)), b[3] = (char)(0x80 | (cp & 0x3f)), n = 4;
    }
    if (out) memcpy(out, b, n);
    return n;
}

// The string at the cursor (which is at its opening quote). With out == NULL it is only
// checked; else it is decoded to UTF-8 into out, which needs as many bytes as the raw
// string (no escape decodes to more bytes than it takes), and *len is set.
static int json_string(jcur *c, char *out, size_t *len) {
    size_t n = 0;
    c->p++;
    for (;;) {
        if (c->p >= c->end) return jbad(c, "unterminated string");
        uint8_t ch = *c->p;
        if (ch == '"') break;
        if (ch < 0x20) return jbad(c, "control byte 0x%02x in a string", ch);
        if (ch >= 0x80) {
            size_t k = st_utf8_len(c->p, c->end);
            if (!k) return jbad(c, "invalid UTF-8");
            if (out) memcpy(out + n, c->p, k);
            n += k, c->p += k;
            continue;
        }
        if (ch != '\\') {
            if (out) out[n] = (char)ch;
            n++, c->p++;
            continue;
        }
        c->p++;
        if (c->p >= c->end) return jbad(c, "unterminated string");
        uint8_t e = *c->p++;
        static const char esc_in[] = "\"\\/bfnrt", esc_out[] = "\"\\/\b\f\n\r\t";
        const char *simple = e ? strchr(esc_in, e) : NULL;
        if (simple) {
            if (out) out[n] = esc_out[simple - esc_in];
            n++;
            continue;
        }
        if (e != 'u') {
            c->p--;
            return jbad(c, "invalid escape");
        }
        uint32_t cp = 0, lo = 0;
        if (hex4(c, &cp)) return -1;
        if (cp >= 0xdc00 && cp <= 0xdfff) return jbad(c, "unpaired surrogate \\u%04x", cp);
        if (cp >= 0xd800 && cp <= 0xdbff) {
            if (c->end - c->p < 2 || c->p[0] != '\\' || c->p[1] != 'u')
                return jbad(c, "unpaired surrogate \\u%04x", cp);
            c->p += 2;
            if (hex4(c, &lo)) return -1;
            if (lo < 0xdc00 || lo > 0xdfff) return jbad(c, "unpaired surrogate \\u%04x", cp);
            cp = 0x10000 + ((cp - 0xd800) << 10) + (lo - 0xdc00);
        }
        n += utf8_put(cp, out ? out + n : NULL);
    }
    c->p++;
    if (len) *len = n;
    return 0;
}

static int json_literal(jcur *c, const char *word) {
    size_t n = strlen(word);
    if ((size_t)(c->end - c->p) < n || memcmp(c->p, word, n)) return jbad(c, "unexpected character");
    c->p += n;
    return 0;
}

static int is_digit(const jcur *c) { return c->p < c->end && *c->p >= '0' && *c->p <= '9'; }

// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
static int json_number(jcur *c) {
    if (*c->p == '-') c->p++;
    if (!is_digit(c)) return jbad(c, "invalid number");
    if (*c->p == '0') c->p++;
    else
        while (is_digit(c)) c->p++;
    if (c->p < c->end && *c->p == '.') {
        c->p++;
        if (!is_digit(c)) return jbad(c, "invalid number");
        while (is_digit(c)) c->p++;
    }
    if (c->p < c->end && (*c->p == 'e' || *c->p == 'E')) {
        c->p++;
        if (c->p < c->end && (*c->p == '+' || *c->p == '-')) c->p++;
        if (!is_digit(c)) return jbad(c, "invalid number");
        while (is_digit(c)) c->p++;
    }
    return 0;
}

// First pass: the header must be well-formed JSON, whatever it holds.
static int json_value(jcur *c, int depth) {
    if (depth > ST_MAX_DEPTH) return jbad(c, "nested deeper than %d levels", ST_MAX_DEPTH);
    int ch = peek(c);
    if (ch == '{' || ch == '[') {
        int close = ch == '{' ? '}' : ']';
        c->p++;
        if (eat(c, (char)close)) return 0;
        for (;;) {
            if (ch == '{') {
                if (peek(c) != '"') return jbad(c, "expected a string key");
                if (json_string(c, NULL, NULL)) return -1;
                if (!eat(c, ':')) return jbad(c, "expected ':'");
            }
            if (json_value(c, depth + 1)) return -1;
            if (eat(c, ',')) continue;
            if (eat(c, (char)close)) return 0;
            return jbad(c, "expected ',' or '%c'", close);
        }
    }
    switch (ch) {
    case -1: return jbad(c, "unexpected end");
    case '"': return json_string(c, NULL, NULL);
    case 't': return json_literal(c, "true");
    case 'f': return json_literal(c, "false");
    case 'n': return json_literal(c, "null");
    default:
        if (ch == '-' || (ch >= '0' && ch <= '9')) return json_number(c);
        return jbad(c, "unexpected character");
    }
}

// Second pass, on well-formed JSON: the structure the format asks for.

// Decodes the string at the cursor into a new allocation.
static char *read_string(jcur *c, const char *what) {
    const uint8_t *start = c->p;
    if (json_string(c, NULL, NULL)) return NULL;
    char *s = dsf_xmalloc((size_t)(c->p - start));
    size_t n;
    c->p = start;
    if (json_string(c, s, &n)) {
        free(s);
        return NULL;
    }
    s[n] = 0;
    if (strlen(s) != n) {
        bad(c->what, "%s '%s' contains a NUL character", what, st_show(s).s);
        free(s);
        return NULL;
    }
    return s;
}

// A non-negative integer that fits in 64 bits.
static int read_u64(jcur *c, uint64_t *out) {
    if (!is_digit(c)) return -1;
    uint64_t v = 0;
    while (is_digit(c)) {
        unsigned d = (unsigned)(*c->p++ - '0');
        if (v > (UINT64_MAX - d) / 10) return -1;
        v = v * 10 + d;
    }
    if (c->p < c->end && (*c->p == '.' || *c->p == 'e' || *c->p == 'E')) return -1;
    *out = v;
    return 0;
}

// [n, n, ...] with at most max entries.
static int read_u64_list(jcur *c, const char *tensor, const char *field, uint64_t *v, int max,
                         int *count) {
    *count = 0;
    if (!eat(c, '['))
        return bad(c->what, "tensor '%s': %s is not a list", st_show(tensor).s, field);
    if (eat(c, ']')) return 0;
    do {
        skip_ws(c);
        if (*count == max)
            return bad(c->what, "tensor '%s': %s has more than %d entries", st_show(tensor).s, field, max);
        if (read_u64(c, &v[*count]))
            return bad(c->what, "tensor '%s': %s must hold non-negative integers below 2^64",
                       st_show(tensor).s, field);
        ++*count;
    } while (eat(c, ','));
    if (!eat(c, ']')) return bad(c->what, "tensor '%s': %s is malformed", st_show(tensor).s, field);
    return 0;
}

static int read_tensor(jcur *c, st_file *f, char *name) {
    if (f->n == f->cap) {
        f->cap = f->cap ? 2 * f->cap : 16;
        f->e = dsf_xrealloc(f->e, (size_t)f->cap * sizeof *f->e);
    }
    entry *e = &f->e[f->n];
    memset(e, 0, sizeof *e);
    e->t.name = name;  // owned by f from here on
    e->index = f->n++;
    st_shown nm = st_show(name);
    if (!eat(c, '{')) return bad(f->what, "tensor '%s' is not described by an object", nm.s);
    int have[3] = {0, 0, 0};  // dtype, shape, data_offsets
    if (!eat(c, '}')) {
        do {
            if (peek(c) != '"') return jbad(c, "expected a string key");
            char *key = read_string(c, "field");
            if (!key) return -1;
            eat(c, ':');
            int field = !strcmp(key, "dtype") ? 0 : !strcmp(key, "shape") ? 1
                                                : !strcmp(key, "data_offsets") ? 2 : -1;
            if (field < 0 || have[field]) {
                bad(f->what, "tensor '%s' has %s field '%s'", nm.s, field < 0 ? "an unknown" : "a repeated",
                    st_show(key).s);
                free(key);
                return -1;
            }
            free(key);
            have[field] = 1;
            if (field == 0) {
                if (peek(c) != '"') return bad(f->what, "tensor '%s': dtype is not a string", nm.s);
                char *d = read_string(c, "dtype");
                if (!d) return -1;
                int k = 0;
                while (k < ST_NDTYPES && strcmp(d, st_dtype_names[k])) k++;
                if (k == ST_NDTYPES) {
                    bad(f->what, "tensor '%s' has dtype '%s', which dsf does not support (F32, F64, I64, I32, U8)",
                        nm.s, st_show(d).s);
                    free(d);
                    return -1;
                }
                free(d);
                e->t.dtype = (st_dtype)k;
            } else if (field == 1) {
                uint64_t s[ST_MAX_DIMS];
                if (read_u64_list(c, name, "shape", s, ST_MAX_DIMS, &e->t.ndim)) return -1;
                for (int i = 0; i < e->t.ndim; i++) {
                    if (s[i] > INT64_MAX) return bad(f->what, "tensor '%s': shape is too large", nm.s);
                    e->t.shape[i] = (int64_t)s[i];
                }
            } else {
                uint64_t o[2];
                int k;
                if (read_u64_list(c, name, "data_offsets", o, 2, &k)) return -1;
                if (k != 2) return bad(f->what, "tensor '%s': data_offsets must be [begin, end]", nm.s);
                e->begin = o[0], e->end = o[1];
            }
        } while (eat(c, ','));
        if (!eat(c, '}')) return jbad(c, "expected ',' or '}'");
    }
    static const char *const fields[3] = {"dtype", "shape", "data_offsets"};
    for (int i = 0; i < 3; i++)
        if (!have[i]) return bad(f->what, "tensor '%s' has no %s", nm.s, fields[i]);
    return 0;
}

static int read_metadata(jcur *c, st_file *f) {
    if (!eat(c, '{')) return bad(f->what, "__metadata__ is not an object");
    if (eat(c, '}')) return 0;
    do {
        if (peek(c) != '"') return jbad(c, "expected a string key");
        char *k = read_string(c, "metadata key");
        if (!k) return -1;
        eat(c, ':');
        if (peek(c) != '"') {
            bad(f->what, "__metadata__ value of '%s' is not a string", st_show(k).s);
            free(k);
            return -1;
        }
        char *v = read_string(c, "metadata value");
        if (!v) {
            free(k);
            return -1;
        }
        if (f->nmeta == f->metacap) {
            f->metacap = f->metacap ? 2 * f->metacap : 16;
            f->key = dsf_xrealloc(f->key, (size_t)f->metacap * sizeof *f->key);
            f->val = dsf_xrealloc(f->val, (size_t)f->metacap * sizeof *f->val);
        }
        f->key[f->nmeta] = k;
        f->val[f->nmeta++] = v;
    } while (eat(c, ','));
    if (!eat(c, '}')) return jbad(c, "expected ',' or '}'");
    return 0;
}

static int parse_header(st_file *f, size_t header_len) {
    jcur c = {f->what, f->bytes + 8, f->bytes + 8, f->bytes + 8 + header_len};
    // The reference reader wants the object to start the header.
    if (c.p == c.end || *c.p != '{') return bad(f->what, "header does not start with '{'");
    if (json_value(&c, 0)) return -1;
    skip_ws(&c);
    if (c.p != c.end) return jbad(&c, "unexpected data after the header object");

    c.p = c.begin + 1;
    int seen_meta = 0;
    if (eat(&c, '}')) return 0;
    do {
        if (peek(&c) != '"') return jbad(&c, "expected a string key");
        char *key = read_string(&c, "tensor name");
        if (!key) return -1;
        eat(&c, ':');
        if (!strcmp(key, "__metadata__")) {
            free(key);
            if (seen_meta++) return bad(f->what, "__metadata__ appears twice");
            if (read_metadata(&c, f)) return -1;
        } else if (read_tensor(&c, f, key)) {
            return -1;
        }
    } while (eat(&c, ','));
    if (!eat(&c, '}')) return jbad(&c, "expected ',' or '}'");
    return 0;
}

static int entry_cmp(const void *a, const void *b) {
    const entry *x = a, *y = b;
    if (x->begin != y->begin) return x->begin < y->begin ? -1 : 1;
    if (x->end != y->end) return x->end < y->end ? -1 : 1;
    return x->index < y->index ? -1 : x->index > y->index;
}

// Unique names and keys; sizes that match the shapes; tensors that tile the data
// section in order, as the reference reader requires.
static int check_layout(st_file *f) {
    f->by_name = dsf_xmalloc((size_t)(f->n + 1) * sizeof *f->by_name);
    st_name_ix *mk = dsf_xmalloc((size_t)(f->nmeta + 1) * sizeof *mk);
    for (int i = 0; i < f->nmeta; i++) mk[i] = (st_name_ix){f->key[i], i};
    qsort(mk, (size_t)f->nmeta, sizeof *mk, st_name_ix_cmp);
    int rc = 0;
    for (int i = 1; i < f->nmeta && !rc; i++)
        if (!strcmp(mk[i - 1].name, mk[i].name))
            rc = bad(f->what, "metadata key '%s' appears twice", st_show(mk[i].name).s);
    free(mk);
    if (rc) return rc;

    if (f->n) qsort(f->e, (size_t)f->n, sizeof *f->e, entry_cmp);
    for (int i = 0; i < f->n; i++) f->by_name[i] = (st_name_ix){f->e[i].t.name, i};
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, st_name_ix_cmp);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->by_name[i - 1].name, f->by_name[i].name))
            return bad(f->what, "tensor '%s' appears twice", st_show(f->by_name[i].name).s);

    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        st_shown nm = st_show(e->t.name);
        uint64_t nelem = 1, size = st_dtype_sizes[e->t.dtype];
        for (int d = 0; d < e->t.ndim; d++) {
            uint64_t s = (uint64_t)e->t.shape[d];
            if (s && nelem > UINT64_MAX / s) return bad(f->what, "tensor '%s': shape overflows", nm.s);
            nelem *= s;
        }
        if (nelem > UINT64_MAX / size) return bad(f->what, "tensor '%s': shape overflows", nm.s);
        uint64_t nbytes = nelem * size;
        if (e->end < e->begin)
            return bad(f->what, "tensor '%s': data_offsets [%llu, %llu] end before they begin", nm.s,
                       (unsigned long long)e->begin, (unsigned long long)e->end);
        if (e->end > f->data_size)
            return bad(f->what, "tensor '%s': data_offsets [%llu, %llu] go past the end of the %zu-byte data section",
                       nm.s, (unsigned long long)e->begin, (unsigned long long)e->end, f->data_size);
        if (e->end - e->begin != nbytes)
            return bad(f->what, "tensor '%s': %s %s takes %llu bytes but data_offsets [%llu, %llu] hold %llu",
                       nm.s, st_dtype_names[e->t.dtype], st_format_shape(e->t.ndim, e->t.shape).s,
                       (unsigned long long)nbytes, (unsigned long long)e->begin,
                       (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
        if (e->begin < pos)
            return bad(f->what, "tensors '%s' and '%s' overlap", st_show(f->e[i - 1].t.name).s, nm.s);
        if (e->begin > pos)
            return bad(f->what, "gap of %llu bytes before tensor '%s'", (unsigned long long)(e->begin - pos),
                       nm.s);
        pos = e->end;
        e->t.nbytes = (size_t)nbytes;
    }
    if (pos != f->data_size)
        return bad(f->what, "%llu bytes after the last tensor belong to none",
                   (unsigned long long)(f->data_size - pos));
    return 0;
}

static int check_checksum(const st_file *f) {
    const char *stored = st_meta(f, "dsf.checksum");
    if (!stored) return 0;
    uint32_t want = 0;
    int ok = strlen(stored) == 8;
    for (int i = 0; ok && i < 8; i++) {
        char ch = stored[i];
        int d = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
        ok = d >= 0;
        want = want << 4 | (uint32_t)(d & 15);
    }
    if (!ok)
        return dsf_error_set("checkpoint %s is damaged: checksum '%s' is not 8 hex digits", f->what,
                             st_show(stored).s);
    uint32_t got = st_crc32(f->data, f->data_size);
    if (got != want)
        return dsf_error_set("checkpoint %s is damaged: checksum mismatch (stored %08x, computed %08x)",
                             f->what, (unsigned)want, (unsigned)got);
    return 0;
}

// Points every tensor at its data. The data section starts 8-aligned, but a tensor that
// follows one of odd size (a U8 tensor, say) may not suit its dtype: such tensors are
// copied to aligned storage.
static int place_tensors(st_file *f) {
    size_t extra = 0;
    for (int i = 0; i < f->n; i++) {
        const entry *e = &f->e[i];
        if (e->t.nbytes && e->begin % st_dtype_sizes[e->t.dtype]) extra += (e->t.nbytes + 7) & ~(size_t)7;
    }
    if (extra && !(f->aligned = dsf_alloc(extra))) {
        char why[256];
        snprintf(why, sizeof why, "%s", dsf_error());
        return dsf_error_set("cannot load checkpoint %s: %s", f->what, why);
    }
    size_t at = 0;
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        const uint8_t *src = f->data + e->begin;
        if (!e->t.nbytes) {
            e->t.data = f->data;  // never read; any aligned pointer will do
        } else if (e->begin % st_dtype_sizes[e->t.dtype]) {
            memcpy(f->aligned + at, src, e->t.nbytes);
            e->t.data = f->aligned + at;
            at += (e->t.nbytes + 7) & ~(size_t)7;
        } else {
            e->t.data = src;
        }
    }
    return 0;
}

// The sizes in the first 8 bytes, checked before anything is allocated.
static int check_length(const char *what, const uint8_t *first, size_t n, uint64_t *header_len) {
    if (n < 8) return bad(what, "it has %zu bytes, fewer than the 8 of the header length", n);
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | first[i];
    if (h > ST_MAX_HEADER)
        return bad(what, "header length %llu is over the 100 MB limit", (unsigned long long)h);
    if (h > n - 8)
        return bad(what, "header length %llu exceeds the %zu bytes that follow (truncated?)",
                   (unsigned long long)h, n - 8);
    *header_len = h;
    return 0;
}

// A file of n bytes with room for them at f->bytes; NULL with the error set.
static st_file *file_new(const char *what, size_t n, uint64_t header_len) {
    // The data section starts at 8 + header_len: shift the copy so that it is 8-aligned.
    size_t pad = (size_t)((8 - (8 + header_len) % 8) % 8);
    uint8_t *block = n <= SIZE_MAX - 8 ? dsf_alloc(n + pad) : NULL;
    if (!block) {
        char why[256];
        snprintf(why, sizeof why, "%s", n <= SIZE_MAX - 8 ? dsf_error() : "too large");
        dsf_error_set("cannot load checkpoint %s: %s", what, why);
        return NULL;
    }
    st_file *f = dsf_xmalloc(sizeof *f);
    memset(f, 0, sizeof *f);
    f->what = dsf_xstrdup(what);
    f->block = block;
    f->bytes = block + pad;
    f->size = n;
    f->data = f->bytes + 8 + header_len;
    f->data_size = n - 8 - (size_t)header_len;
    return f;
}

static st_file *file_finish(st_file *f, size_t header_len) {
    if (parse_header(f, header_len) || check_layout(f) || check_checksum(f) || place_tensors(f)) {
        st_free(f);
        return NULL;
    }
    return f;
}

st_file *st_load_buffer(const void *buf, size_t n, const char *what) {
    uint64_t h = 0;
    if (check_length(what, buf, n, &h)) return NULL;
    st_file *f = file_new(what, n, h);
    if (!f) return NULL;
    memcpy(f->bytes, buf, n);
    return file_finish(f, (size_t)h);
}

static int read_at(int fd, uint8_t *buf, size_t n, off_t at) {
    while (n > 0) {
        ssize_t k = pread(fd, buf, n < (1u << 30) ? n : (1u << 30), at);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = 0;  // the file shrank
            return -1;
        }
        buf += k, at += k, n -= (size_t)k;
    }
    return 0;
}

static st_file *read_failed(const char *path) {
    dsf_error_set("cannot read checkpoint %s: %s", path,
                  errno ? strerror(errno) : "the file shrank while being read");
    return NULL;
}

static st_file *load_fd(int fd, const char *path) {
    struct stat sb;
    if (fstat(fd, &sb)) {
        dsf_error_set("cannot open checkpoint %s: %s", path, strerror(errno));
        return NULL;
    }
    if (!S_ISREG(sb.st_mode)) {
        dsf_error_set("checkpoint %s is not a regular file", path);
        return NULL;
    }
    if (sb.st_size < 0 || (uint64_t)sb.st_size > SIZE_MAX / 2) {
        dsf_error_set("checkpoint %s is too large", path);
        return NULL;
    }
    size_t n = (size_t)sb.st_size;
    uint8_t first[8] = {0};
    uint64_t h = 0;
    if (n >= 8 && read_at(fd, first, 8, 0)) return read_failed(path);
    if (check_length(path, first, n, &h)) return NULL;
    st_file *f = file_new(path, n, h);
    if (!f) return NULL;
    if (read_at(fd, f->bytes, n, 0)) {
        int err = errno;
        st_free(f);
        errno = err;
        return read_failed(path);
    }
    return file_finish(f, (size_t)h);
}

st_file *st_load(const char *path) {
    // O_NONBLOCK: opening a FIFO must not wait for a writer (load_fd then refuses it).
    int fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd < 0) {
        dsf_error_set("cannot open checkpoint %s: %s", path, strerror(errno));
        return NULL;
    }
    st_file *f = load_fd(fd, path);
    close(fd);
    return f;
}

void st_free(st_file *f) {
    if (!f) return;
    for (int i = 0; i < f->n; i++) free(f->e[i].t.name);
    for (int i = 0; i < f->nmeta; i++) {
        free(f->key[i]);
        free(f->val[i]);
    }
    free(f->e);
    free(f->by_name);
    free(f->key);
    free(f->val);
    dsf_free(f->aligned);
    dsf_free(f->block);
    free(f->what);
    free(f);
}

const st_tensor *st_get(const st_file *f, const char *name) {
    st_name_ix key = {name, 0};
    const st_name_ix *hit = bsearch(&key, f->by_name, (size_t)f->n, sizeof key, st_name_ix_cmp);
    return hit ? &f->e[hit->index].t : NULL;
}

int st_count(const st_file *f) { return f->n; }

const st_tensor *st_at(const st_file *f, int i) { return i >= 0 && i < f->n ? &f->e[i].t : NULL; }

const char *st_meta(const st_file *f, const char *key) {
    for (int i = 0; i < f->nmeta; i++)
        if (!strcmp(f->key[i], key)) return f->val[i];
    return NULL;
}

int st_meta_count(const st_file *f) { return f->nmeta; }

const char *st_meta_key(const st_file *f, int i) { return i >= 0 && i < f->nmeta ? f->key[i] : NULL; }

int st_expect(const st_file *f, const char *name, st_dtype dt, int ndim, const int64_t *shape,
              const st_tensor **out) {
    DSF_ASSERT(ndim >= 0 && ndim <= ST_MAX_DIMS);
    if (out) *out = NULL;
    const st_tensor *t = st_get(f, name);
    if (!t) return dsf_error_set("checkpoint %s has no tensor '%s'", f->what, name);
    int same = t->dtype == dt && t->ndim == ndim;
    for (int i = 0; same && i < ndim; i++) same = t->shape[i] == shape[i];
    if (!same)
        return dsf_error_set("checkpoint %s: tensor '%s' is %s %s, expected %s %s", f->what, name,
                             st_dtype_name(t->dtype), st_format_shape(t->ndim, t->shape).s,
                             st_dtype_name(dt), st_format_shape(ndim, shape).s);
    if (out) *out = t;
    return 0;
}
