// vocab.c: see vocab.h.
#include "vocab.h"

#include <string.h>

#include "core/common.h"

struct dsf_vocab {
    int32_t n;        // entries
    int32_t cap;      // capacity of start/hash
    int64_t *start;   // start[i]: offset of entry i in text; start[n] = end of the last
    uint64_t *hash;   // hash[i]: FNV-1a of entry i, to rehash and to skip most compares
    char *text;       // the entries, each followed by a NUL
    size_t text_len, text_cap;
    int32_t *slot;    // open-addressing table of ids, -1 when empty
    size_t nslot;     // a power of two, at least 2 n
};

static uint64_t fnv1a(const char *s, size_t len) {
    uint64_t h = 0xcbf29ce484222325ULL;
    for (size_t i = 0; i < len; i++) {
        h ^= (unsigned char)s[i];
        h *= 0x100000001b3ULL;
    }
    return h;
}

static size_t entry_len(const dsf_vocab *v, int32_t id) {
    return (size_t)(v->start[id + 1] - v->start[id]) - 1;  // less the NUL
}

// The slot that holds s, or the empty slot where it would go.
static size_t lookup(const dsf_vocab *v, const char *s, size_t len, uint64_t h) {
    size_t mask = v->nslot - 1, i = (size_t)h & mask;
    for (;;) {
        int32_t id = v->slot[i];
        if (id < 0) return i;
        if (v->hash[id] == h && entry_len(v, id) == len &&
            memcmp(v->text + v->start[id], s, len) == 0)
            return i;
        i = (i + 1) & mask;
    }
}

static void rehash(dsf_vocab *v, size_t nslot) {
    free(v->slot);
    v->slot = dsf_xmalloc(sizeof(int32_t) * nslot);
    memset(v->slot, 0xff, sizeof(int32_t) * nslot);  // all -1
    v->nslot = nslot;
    size_t mask = nslot - 1;
    for (int32_t id = 0; id < v->n; id++) {
        size_t i = (size_t)v->hash[id] & mask;
        while (v->slot[i] >= 0) i = (i + 1) & mask;
        v->slot[i] = id;
    }
}

dsf_vocab *vocab_new(void) {
    dsf_vocab *v = dsf_xmalloc(sizeof *v);
    memset(v, 0, sizeof *v);
    v->cap = 64;
    v->start = dsf_xmalloc(sizeof(int64_t) * ((size_t)v->cap + 1));
    v->hash = dsf_xmalloc(sizeof(uint64_t) * (size_t)v->cap);
    v->start[0] = 0;
    v->text_cap = 1024;
    v->text = dsf_xmalloc(v->text_cap);
    rehash(v, 128);
    return v;
}

void vocab_free(dsf_vocab *v) {
    if (!v) return;
    free(v->start);
    free(v->hash);
    free(v->text);
    free(v->slot);
    free(v);
}

int32_t vocab_find(const dsf_vocab *v, const char *s, size_t len) {
    return v->slot[lookup(v, s, len, fnv1a(s, len))];
}

int32_t vocab_add(dsf_vocab *v, const char *s, size_t len) {
    uint64_t h = fnv1a(s, len);
    size_t i = lookup(v, s, len, h);
    if (v->slot[i] >= 0) return v->slot[i];
    if (v->n >= DSF_VOCAB_MAX) {
        dsf_error_set("the vocabulary is full (%d entries)", (int)DSF_VOCAB_MAX);
        return -1;
    }
    if (v->n == v->cap) {
        v->cap = v->cap > DSF_VOCAB_MAX / 2 ? DSF_VOCAB_MAX : v->cap * 2;
        v->start = dsf_xrealloc(v->start, sizeof(int64_t) * ((size_t)v->cap + 1));
        v->hash = dsf_xrealloc(v->hash, sizeof(uint64_t) * (size_t)v->cap);
    }
    if (len + 1 > v->text_cap - v->text_len) {
        while (len + 1 > v->text_cap - v->text_len) v->text_cap *= 2;
        v->text = dsf_xrealloc(v->text, v->text_cap);
    }
    int32_t id = v->n++;
    memcpy(v->text + v->text_len, s, len);
    v->text[v->text_len + len] = 0;
    v->text_len += len + 1;
    v->start[id + 1] = (int64_t)v->text_len;
    v->hash[id] = h;
    v->slot[i] = id;
    if ((size_t)v->n * 2 > v->nslot) rehash(v, v->nslot * 2);
    return id;
}

int32_t vocab_size(const dsf_vocab *v) { return v->n; }

const char *vocab_str(const dsf_vocab *v, int32_t id, size_t *len) {
    if (id < 0 || id >= v->n) {
        *len = 0;
        return NULL;
    }
    *len = entry_len(v, id);
    return v->text + v->start[id];
}

void vocab_pack(const dsf_vocab *v, int64_t **offsets, uint8_t **bytes, int64_t *nbytes) {
    int64_t *off = dsf_xmalloc(sizeof(int64_t) * ((size_t)v->n + 1));
    size_t total = v->text_len - (size_t)v->n;  // without the NULs
    uint8_t *b = dsf_xmalloc(total);
    size_t at = 0;
    off[0] = 0;
    for (int32_t id = 0; id < v->n; id++) {
        size_t len = entry_len(v, id);
        memcpy(b + at, v->text + v->start[id], len);
        at += len;
        off[id + 1] = (int64_t)at;
    }
    *offsets = off;
    *bytes = b;
    *nbytes = (int64_t)total;
}

dsf_vocab *vocab_unpack(const int64_t *offsets, int64_t n, const uint8_t *bytes, int64_t nbytes) {
    if (n < 0 || n > DSF_VOCAB_MAX || nbytes < 0) {
        dsf_error_set("vocabulary: bad sizes (%lld entries, %lld bytes)", (long long)n,
                      (long long)nbytes);
        return NULL;
    }
    // n distinct strings need at least n - 1 bytes (one may be empty): this bounds
    // the work before anything is allocated from n.
    if (n > nbytes + 1 || !offsets || (nbytes > 0 && !bytes)) {
        dsf_error_set("vocabulary: %lld entries cannot be distinct in %lld bytes", (long long)n,
                      (long long)nbytes);
        return NULL;
    }
    if (offsets[0] != 0 || offsets[n] != nbytes) {
        dsf_error_set("vocabulary: offsets run from %lld to %lld, not 0 to %lld",
                      (long long)offsets[0], (long long)offsets[n], (long long)nbytes);
        return NULL;
    }
    for (int64_t i = 0; i < n; i++) {
        if (offsets[i + 1] < offsets[i] || offsets[i + 1] > nbytes) {
            dsf_error_set("vocabulary: offset %lld of entry %lld is out of order",
                          (long long)offsets[i + 1], (long long)i);
            return NULL;
        }
    }
    dsf_vocab *v = vocab_new();
    for (int64_t i = 0; i < n; i++) {
        const char *s = (const char *)bytes + offsets[i];
        size_t len = (size_t)(offsets[i + 1] - offsets[i]);
        int32_t id = vocab_add(v, s, len);
        if (id != (int32_t)i) {
            if (id >= 0)
                dsf_error_set("vocabulary: entry %lld repeats entry %d", (long long)i, (int)id);
            vocab_free(v);
            return NULL;
        }
    }
    return v;
}

const char *dsf_level_name(dsf_level level) { return level == DSF_LEVEL_CHAR ? "char" : "word"; }

int dsf_level_parse(const char *s, dsf_level *out) {
    if (s && strcmp(s, "word") == 0) {
        *out = DSF_LEVEL_WORD;
        return 0;
    }
    if (s && strcmp(s, "char") == 0) {
        *out = DSF_LEVEL_CHAR;
        return 0;
    }
    return dsf_error_set("unknown level '%s' (use word or char)", s ? s : "");
}
