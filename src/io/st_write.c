// st_write.c: the safetensors writer (safetensors.h): tensors and metadata
// collected, checked, and written to a temporary file that replaces the target
// only once complete.
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
// Writer.

typedef struct {
    char *p;
    size_t n, cap;
} sbuf;

static void sb_put(sbuf *b, const void *s, size_t n) {
    if (b->n + n > b->cap) {
        while (b->n + n > b->cap) b->cap = b->cap ? 2 * b->cap : 4096;
        b->p = dsf_xrealloc(b->p, b->cap);
    }
    memcpy(b->p + b->n, s, n);
    b->n += n;
}

static void sb_puts(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

static void sb_u64(sbuf *b, uint64_t v) {
    char tmp[24];
    sb_put(b, tmp, (size_t)snprintf(tmp, sizeof tmp, "%llu", (unsigned long long)v));
}

// A JSON string: quote and backslash escaped, control bytes as \u00XX, other bytes as is.
static void sb_json_string(sbuf *b, const char *s) {
    sb_put(b, "\"", 1);
    for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
        if (*p == '"' || *p == '\\') {
            char e[2] = {'\\', (char)*p};
            sb_put(b, e, 2);
        } else if (*p < 0x20) {
            char e[8];
            sb_put(b, e, (size_t)snprintf(e, sizeof e, "\\u%04x", *p));
        } else {
            sb_put(b, p, 1);
        }
    }
    sb_put(b, "\"", 1);
}

struct st_writer {
    st_tensor *t;  // names owned, data borrowed
    int n, cap;
    char **key, **val;
    int nmeta, metacap;
    char error[512];  // the first problem met while adding, reported by the save
};

static int writer_fail(st_writer *w, const char *fmt, ...) DSF_PRINTF(2, 3);
static int writer_fail(st_writer *w, const char *fmt, ...) {
    if (w->error[0]) return -1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(w->error, sizeof w->error, fmt, ap);
    va_end(ap);
    return -1;
}

st_writer *st_writer_new(void) {
    st_writer *w = dsf_xmalloc(sizeof *w);
    memset(w, 0, sizeof *w);
    return w;
}

static int writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape,
                      const void *data) {
    if (!name) return writer_fail(w, "a tensor has no name");
    st_shown nm = st_show(name);
    if ((unsigned)dt >= ST_NDTYPES)
        return writer_fail(w, "tensor '%s' has an invalid dtype %d", nm.s, (int)dt);
    if (ndim < 0 || ndim > ST_MAX_DIMS)
        return writer_fail(w, "tensor '%s' has %d dimensions (0 to %d allowed)", nm.s, ndim,
                           ST_MAX_DIMS);
    if (!strcmp(name, "__metadata__")) return writer_fail(w, "a tensor cannot be called __metadata__");
    st_tensor t = {.name = NULL, .dtype = dt, .ndim = ndim, .data = data};
    size_t nelem = 1;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] < 0)
            return writer_fail(w, "tensor '%s' has a negative dimension %lld", nm.s,
                               (long long)shape[i]);
        if (shape[i] != 0 && nelem > SIZE_MAX / (uint64_t)shape[i])
            return writer_fail(w, "tensor '%s' is too large", nm.s);
        nelem *= (size_t)shape[i];
        t.shape[i] = shape[i];
    }
    if (nelem > SIZE_MAX / st_dtype_sizes[dt]) return writer_fail(w, "tensor '%s' is too large", nm.s);
    t.nbytes = nelem * st_dtype_sizes[dt];
    if (t.nbytes && !data) return writer_fail(w, "tensor '%s' has no data", nm.s);
    if (w->n == w->cap) {
        w->cap = w->cap ? 2 * w->cap : 16;
        w->t = dsf_xrealloc(w->t, (size_t)w->cap * sizeof *w->t);
    }
    t.name = dsf_xstrdup(name);
    w->t[w->n++] = t;
    return 0;
}

void st_writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape,
                   const void *data) {
    (void)writer_add(w, name, dt, ndim, shape, data);
}

void st_writer_meta(st_writer *w, const char *key, const char *value) {
    if (!key || !value) {
        writer_fail(w, "a metadata key or value is NULL");
        return;
    }
    for (int i = 0; i < w->nmeta; i++) {
        if (!strcmp(w->key[i], key)) {
            free(w->val[i]);
            w->val[i] = dsf_xstrdup(value);
            return;
        }
    }
    if (w->nmeta == w->metacap) {
        w->metacap = w->metacap ? 2 * w->metacap : 16;
        w->key = dsf_xrealloc(w->key, (size_t)w->metacap * sizeof *w->key);
        w->val = dsf_xrealloc(w->val, (size_t)w->metacap * sizeof *w->val);
    }
    w->key[w->nmeta] = dsf_xstrdup(key);
    w->val[w->nmeta] = dsf_xstrdup(value);
    w->nmeta++;
}

void st_writer_free(st_writer *w) {
    if (!w) return;
    for (int i = 0; i < w->n; i++) free(w->t[i].name);
    for (int i = 0; i < w->nmeta; i++) {
        free(w->key[i]);
        free(w->val[i]);
    }
    free(w->t);
    free(w->key);
    free(w->val);
    free(w);
}

static int reserved_key(const char *k) { return !strcmp(k, "format") || !strcmp(k, "dsf.checksum"); }

// Checks what st_writer_add could not: unique names and UTF-8 text.
static int writer_check(const st_writer *w) {
    for (int i = 0; i < w->n; i++)
        if (!st_utf8_valid(w->t[i].name))
            return dsf_error_set("tensor name '%s' is not valid UTF-8", st_show(w->t[i].name).s);
    for (int i = 0; i < w->nmeta; i++) {
        if (!st_utf8_valid(w->key[i]))
            return dsf_error_set("metadata key '%s' is not valid UTF-8", st_show(w->key[i]).s);
        if (!st_utf8_valid(w->val[i]))
            return dsf_error_set("metadata value of '%s' is not valid UTF-8", st_show(w->key[i]).s);
    }
    st_name_ix *ix = dsf_xmalloc((size_t)w->n * sizeof *ix);
    for (int i = 0; i < w->n; i++) ix[i] = (st_name_ix){w->t[i].name, i};
    qsort(ix, (size_t)w->n, sizeof *ix, st_name_ix_cmp);
    int rc = 0;
    for (int i = 1; i < w->n && !rc; i++)
        if (!strcmp(ix[i - 1].name, ix[i].name))
            rc = dsf_error_set("tensor '%s' was added twice", st_show(ix[i].name).s);
    free(ix);
    return rc;
}

// The JSON header, padded with spaces so that the data section starts at a multiple of 8.
static void writer_header(const st_writer *w, uint32_t crc, sbuf *h) {
    sb_puts(h, "{\"__metadata__\":{");
    for (int i = 0; i < w->nmeta; i++) {
        if (reserved_key(w->key[i])) continue;
        sb_json_string(h, w->key[i]);
        sb_put(h, ":", 1);
        sb_json_string(h, w->val[i]);
        sb_put(h, ",", 1);
    }
    char crc_hex[48];
    snprintf(crc_hex, sizeof crc_hex, "\"format\":\"pt\",\"dsf.checksum\":\"%08x\"}", (unsigned)crc);
    sb_puts(h, crc_hex);
    uint64_t offset = 0;
    for (int i = 0; i < w->n; i++) {
        const st_tensor *t = &w->t[i];
        sb_put(h, ",", 1);
        sb_json_string(h, t->name);
        sb_puts(h, ":{\"dtype\":\"");
        sb_puts(h, st_dtype_names[t->dtype]);
        sb_puts(h, "\",\"shape\":[");
        for (int d = 0; d < t->ndim; d++) {
            if (d) sb_put(h, ",", 1);
            sb_u64(h, (uint64_t)t->shape[d]);
        }
        sb_puts(h, "],\"data_offsets\":[");
        sb_u64(h, offset);
        sb_put(h, ",", 1);
        offset += t->nbytes;
        sb_u64(h, offset);
        sb_puts(h, "]}");
    }
    sb_put(h, "}", 1);
    while ((8 + h->n) % 8) sb_put(h, " ", 1);
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n < (1u << 30) ? n : (1u << 30));
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) {
            if (k == 0) errno = EIO;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

// Removes the temporaries PATH.tmp.PID that a save killed before its rename left
// behind (kill -9), when process PID is gone. Best effort.
static void remove_stale_temporaries(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = dsf_xstrdup(slash ? path : ".");
    if (slash) dir[slash == path ? 1 : slash - path] = 0;
    const char *base = slash ? slash + 1 : path;
    const size_t bl = strlen(base);
    DIR *d = opendir(dir);
    for (struct dirent *e; d && (e = readdir(d));) {
        const char *n = e->d_name;
        if (strncmp(n, base, bl) || strncmp(n + bl, ".tmp.", 5)) continue;
        char *end;
        const long pid = strtol(n + bl + 5, &end, 10);
        if (end == n + bl + 5 || *end || pid <= 0 || pid == (long)getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue;  // still running, or unknown
        size_t len = strlen(dir) + strlen(n) + 2;
        char *full = dsf_xmalloc(len);
        snprintf(full, len, "%s/%s", dir, n);
        (void)unlink(full);
        free(full);
    }
    if (d) closedir(d);
    free(dir);
}

// Makes a completed rename durable. Best effort: some file systems refuse.
static void fsync_parent(const char *path) {
    const char *slash = strrchr(path, '/');
    char *dir = dsf_xstrdup(slash ? path : ".");
    if (slash) dir[slash == path ? 1 : slash - path] = 0;
    int fd = open(dir, O_RDONLY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

int st_writer_save(st_writer *w, const char *path) {
    if (w->error[0]) return dsf_error_set("cannot save checkpoint %s: %s", path, w->error);
    if (writer_check(w)) {
        char why[512];
        snprintf(why, sizeof why, "%s", dsf_error());
        return dsf_error_set("cannot save checkpoint %s: %s", path, why);
    }
    uint32_t crc = 0;
    for (int i = 0; i < w->n; i++) crc = st_crc_update(crc, w->t[i].data, w->t[i].nbytes);
    sbuf h = {0};
    writer_header(w, crc, &h);
    if (h.n > ST_MAX_HEADER) {
        free(h.p);
        return dsf_error_set("cannot save checkpoint %s: header of %zu bytes is over the 100 MB limit",
                             path, h.n);
    }
    uint8_t len[8];
    for (int i = 0; i < 8; i++) len[i] = (uint8_t)((uint64_t)h.n >> (8 * i));

    // The save replaces path by a rename: never a device, a FIFO or a directory.
    struct stat st;
    if (stat(path, &st) == 0 && !S_ISREG(st.st_mode)) {
        free(h.p);
        return dsf_error_set("cannot save checkpoint %s: it exists and is not a regular file",
                             path);
    }
    size_t tmp_cap = strlen(path) + 32;
    char *tmp = dsf_xmalloc(tmp_cap);
    snprintf(tmp, tmp_cap, "%s.tmp.%ld", path, (long)getpid());
    const char *failed = NULL;  // what went wrong, with errno in err
    int err = 0;
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        err = errno;
        free(h.p);
        dsf_error_set("cannot save checkpoint %s: cannot create %s: %s", path, tmp, strerror(err));
        free(tmp);
        return -1;
    }
    if (write_all(fd, len, 8) || write_all(fd, h.p, h.n)) failed = "write", err = errno;
    for (int i = 0; i < w->n && !failed; i++)
        if (write_all(fd, w->t[i].data, w->t[i].nbytes)) failed = "write", err = errno;
    if (!failed && fsync(fd)) failed = "fsync", err = errno;
    if (close(fd) && !failed) failed = "close", err = errno;
    if (!failed && rename(tmp, path)) failed = "rename", err = errno;
    free(h.p);
    if (failed) {
        unlink(tmp);
        if (!strcmp(failed, "rename"))
            dsf_error_set("cannot save checkpoint %s: cannot rename %s to it: %s", path, tmp,
                          strerror(err));
        else
            dsf_error_set("cannot save checkpoint %s: cannot %s %s: %s", path, failed, tmp,
                          strerror(err));
        free(tmp);
        return -1;
    }
    free(tmp);
    fsync_parent(path);
    remove_stale_temporaries(path);
    return 0;
}
