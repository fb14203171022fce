// safetensors.c: see safetensors.h.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L  // open, pread, fsync, getpid
#endif

#include "safetensors.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdlib.h>
#include <stdarg.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

// Tensor bytes go between memory and the file unchanged, so the host must use the
// file's byte order.
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "safetensors.c assumes a little-endian host"
#endif

#define ST_MAX_HEADER 100000000u  // bytes; the reference reader's limit
#define ST_MAX_DEPTH 64           // JSON nesting; the format needs 3
#define ST_NDTYPES 5

static const char *const dtype_names[ST_NDTYPES] = {"F32", "F64", "I64", "I32", "U8"};
static const size_t dtype_sizes[ST_NDTYPES] = {4, 8, 8, 4, 1};

size_t st_dtype_size(st_dtype dt) { return (unsigned)dt < ST_NDTYPES ? dtype_sizes[dt] : 0; }

const char *st_dtype_name(st_dtype dt) {
    return (unsigned)dt < ST_NDTYPES ? dtype_names[dt] : "?";
}

// ---------------------------------------------------------------------------------------
// CRC-32, byte at a time. crc_table[n] is the CRC of the byte n with polynomial 0xedb88320.

static const uint32_t crc_table[256] = {
    0x00000000, 0x77073096, 0xee0e612c, 0x990951ba, 0x076dc419, 0x706af48f,
    0xe963a535, 0x9e6495a3, 0x0edb8832, 0x79dcb8a4, 0xe0d5e91e, 0x97d2d988,
    0x09b64c2b, 0x7eb17cbd, 0xe7b82d07, 0x90bf1d91, 0x1db71064, 0x6ab020f2,
    0xf3b97148, 0x84be41de, 0x1adad47d, 0x6ddde4eb, 0xf4d4b551, 0x83d385c7,
    0x136c9856, 0x646ba8c0, 0xfd62f97a, 0x8a65c9ec, 0x14015c4f, 0x63066cd9,
    0xfa0f3d63, 0x8d080df5, 0x3b6e20c8, 0x4c69105e, 0xd56041e4, 0xa2677172,
    0x3c03e4d1, 0x4b04d447, 0xd20d85fd, 0xa50ab56b, 0x35b5a8fa, 0x42b2986c,
    0xdbbbc9d6, 0xacbcf940, 0x32d86ce3, 0x45df5c75, 0xdcd60dcf, 0xabd13d59,
    0x26d930ac, 0x51de003a, 0xc8d75180, 0xbfd06116, 0x21b4f4b5, 0x56b3c423,
    0xcfba9599, 0xb8bda50f, 0x2802b89e, 0x5f058808, 0xc60cd9b2, 0xb10be924,
    0x2f6f7c87, 0x58684c11, 0xc1611dab, 0xb6662d3d, 0x76dc4190, 0x01db7106,
    0x98d220bc, 0xefd5102a, 0x71b18589, 0x06b6b51f, 0x9fbfe4a5, 0xe8b8d433,
    0x7807c9a2, 0x0f00f934, 0x9609a88e, 0xe10e9818, 0x7f6a0dbb, 0x086d3d2d,
    0x91646c97, 0xe6635c01, 0x6b6b51f4, 0x1c6c6162, 0x856530d8, 0xf262004e,
    0x6c0695ed, 0x1b01a57b, 0x8208f4c1, 0xf50fc457, 0x65b0d9c6, 0x12b7e950,
    0x8bbeb8ea, 0xfcb9887c, 0x62dd1ddf, 0x15da2d49, 0x8cd37cf3, 0xfbd44c65,
    0x4db26158, 0x3ab551ce, 0xa3bc0074, 0xd4bb30e2, 0x4adfa541, 0x3dd895d7,
    0xa4d1c46d, 0xd3d6f4fb, 0x4369e96a, 0x346ed9fc, 0xad678846, 0xda60b8d0,
    0x44042d73, 0x33031de5, 0xaa0a4c5f, 0xdd0d7cc9, 0x5005713c, 0x270241aa,
    0xbe0b1010, 0xc90c2086, 0x5768b525, 0x206f85b3, 0xb966d409, 0xce61e49f,
    0x5edef90e, 0x29d9c998, 0xb0d09822, 0xc7d7a8b4, 0x59b33d17, 0x2eb40d81,
    0xb7bd5c3b, 0xc0ba6cad, 0xedb88320, 0x9abfb3b6, 0x03b6e20c, 0x74b1d29a,
    0xead54739, 0x9dd277af, 0x04db2615, 0x73dc1683, 0xe3630b12, 0x94643b84,
    0x0d6d6a3e, 0x7a6a5aa8, 0xe40ecf0b, 0x9309ff9d, 0x0a00ae27, 0x7d079eb1,
    0xf00f9344, 0x8708a3d2, 0x1e01f268, 0x6906c2fe, 0xf762575d, 0x806567cb,
    0x196c3671, 0x6e6b06e7, 0xfed41b76, 0x89d32be0, 0x10da7a5a, 0x67dd4acc,
    0xf9b9df6f, 0x8ebeeff9, 0x17b7be43, 0x60b08ed5, 0xd6d6a3e8, 0xa1d1937e,
    0x38d8c2c4, 0x4fdff252, 0xd1bb67f1, 0xa6bc5767, 0x3fb506dd, 0x48b2364b,
    0xd80d2bda, 0xaf0a1b4c, 0x36034af6, 0x41047a60, 0xdf60efc3, 0xa867df55,
    0x316e8eef, 0x4669be79, 0xcb61b38c, 0xbc66831a, 0x256fd2a0, 0x5268e236,
    0xcc0c7795, 0xbb0b4703, 0x220216b9, 0x5505262f, 0xc5ba3bbe, 0xb2bd0b28,
    0x2bb45a92, 0x5cb36a04, 0xc2d7ffa7, 0xb5d0cf31, 0x2cd99e8b, 0x5bdeae1d,
    0x9b64c2b0, 0xec63f226, 0x756aa39c, 0x026d930a, 0x9c0906a9, 0xeb0e363f,
    0x72076785, 0x05005713, 0x95bf4a82, 0xe2b87a14, 0x7bb12bae, 0x0cb61b38,
    0x92d28e9b, 0xe5d5be0d, 0x7cdcefb7, 0x0bdbdf21, 0x86d3d2d4, 0xf1d4e242,
    0x68ddb3f8, 0x1fda836e, 0x81be16cd, 0xf6b9265b, 0x6fb077e1, 0x18b74777,
    0x88085ae6, 0xff0f6a70, 0x66063bca, 0x11010b5c, 0x8f659eff, 0xf862ae69,
    0x616bffd3, 0x166ccf45, 0xa00ae278, 0xd70dd2ee, 0x4e048354, 0x3903b3c2,
    0xa7672661, 0xd06016f7, 0x4969474d, 0x3e6e77db, 0xaed16a4a, 0xd9d65adc,
    0x40df0b66, 0x37d83bf0, 0xa9bcae53, 0xdebb9ec5, 0x47b2cf7f, 0x30b5ffe9,
    0xbdbdf21c, 0xcabac28a, 0x53b39330, 0x24b4a3a6, 0xbad03605, 0xcdd70693,
    0x54de5729, 0x23d967bf, 0xb3667a2e, 0xc4614ab8, 0x5d681b02, 0x2a6f2b94,
    0xb40bbe37, 0xc30c8ea1, 0x5a05df1b, 0x2d02ef8d,
};

static uint32_t crc_update(uint32_t crc, const void *buf, size_t n) {
    const uint8_t *p = buf;
    crc = ~crc;
    while (n--) crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
    return ~crc;
}

uint32_t st_crc32(const void *buf, size_t n) { return crc_update(0, buf, n); }

// ---------------------------------------------------------------------------------------
// Shared helpers.

// Length of the valid UTF-8 sequence at p (no overlongs, no surrogates, at most
// U+10FFFF), or 0 when it is not valid.
static size_t utf8_len(const uint8_t *p, const uint8_t *end) {
    size_t avail = (size_t)(end - p);
#define CONT(i) (avail > (i) && (p[i] & 0xc0) == 0x80)
    uint8_t b = p[0];
    if (b < 0x80) return 1;
    if (b >= 0xc2 && b <= 0xdf) return CONT(1) ? 2 : 0;
    if (b >= 0xe0 && b <= 0xef) {
        if (!CONT(1) || !CONT(2)) return 0;
        if ((b == 0xe0 && p[1] < 0xa0) || (b == 0xed && p[1] > 0x9f)) return 0;
        return 3;
    }
    if (b >= 0xf0 && b <= 0xf4) {
        if (!CONT(1) || !CONT(2) || !CONT(3)) return 0;
        if ((b == 0xf0 && p[1] < 0x90) || (b == 0xf4 && p[1] > 0x8f)) return 0;
        return 4;
    }
    return 0;
#undef CONT
}

static int utf8_valid(const char *s) {
    const uint8_t *p = (const uint8_t *)s, *end = p + strlen(s);
    while (p < end) {
        size_t k = utf8_len(p, end);
        if (!k) return 0;
        p += k;
    }
    return 1;
}

// A string from a file, made safe for a one-line message: printable ASCII stays, other
// bytes become \xNN, and a long string is cut.
typedef struct {
    char s[100];
} shown;

static shown show(const char *s) {
    shown r;
    size_t n = 0;
    for (const uint8_t *p = (const uint8_t *)s; *p; p++) {
        if (n > sizeof r.s - 8) {
            memcpy(r.s + n, "...", 3);
            n += 3;
            break;
        }
        if (*p >= 0x20 && *p < 0x7f) {
            r.s[n++] = (char)*p;
        } else {
            snprintf(r.s + n, 5, "\\x%02x", *p);
            n += 4;
        }
    }
    r.s[n] = 0;
    return r;
}

// "[3, 4]"; "[]" for a scalar.
typedef struct {
    char s[ST_MAX_DIMS * 22 + 4];
} shape_str;

static shape_str format_shape(int ndim, const int64_t *shape) {
    shape_str r;
    size_t n = 0;
    r.s[n++] = '[';
    for (int i = 0; i < ndim && i < ST_MAX_DIMS; i++)
        n += (size_t)snprintf(r.s + n, sizeof r.s - n, "%s%lld", i ? ", " : "",
                              (long long)shape[i]);
    r.s[n++] = ']';
    r.s[n] = 0;
    return r;
}

// Names sorted for duplicate checks and lookups.
typedef struct {
    const char *name;
    int index;
} name_ix;

static int name_ix_cmp(const void *a, const void *b) {
    return strcmp(((const name_ix *)a)->name, ((const name_ix *)b)->name);
}

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
    shown nm = show(name);
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
    if (nelem > SIZE_MAX / dtype_sizes[dt]) return writer_fail(w, "tensor '%s' is too large", nm.s);
    t.nbytes = nelem * dtype_sizes[dt];
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
        if (!utf8_valid(w->t[i].name))
            return dsf_error_set("tensor name '%s' is not valid UTF-8", show(w->t[i].name).s);
    for (int i = 0; i < w->nmeta; i++) {
        if (!utf8_valid(w->key[i]))
            return dsf_error_set("metadata key '%s' is not valid UTF-8", show(w->key[i]).s);
        if (!utf8_valid(w->val[i]))
            return dsf_error_set("metadata value of '%s' is not valid UTF-8", show(w->key[i]).s);
    }
    name_ix *ix = dsf_xmalloc((size_t)w->n * sizeof *ix);
    for (int i = 0; i < w->n; i++) ix[i] = (name_ix){w->t[i].name, i};
    qsort(ix, (size_t)w->n, sizeof *ix, name_ix_cmp);
    int rc = 0;
    for (int i = 1; i < w->n && !rc; i++)
        if (!strcmp(ix[i - 1].name, ix[i].name))
            rc = dsf_error_set("tensor '%s' was added twice", show(ix[i].name).s);
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
        sb_puts(h, dtype_names[t->dtype]);
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
    for (int i = 0; i < w->n; i++) crc = crc_update(crc, w->t[i].data, w->t[i].nbytes);
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
    name_ix *by_name;  // sorted by name, for st_get
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
            size_t k = utf8_len(c->p, c->end);
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
        bad(c->what, "%s '%s' contains a NUL character", what, show(s).s);
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
        return bad(c->what, "tensor '%s': %s is not a list", show(tensor).s, field);
    if (eat(c, ']')) return 0;
    do {
        skip_ws(c);
        if (*count == max)
            return bad(c->what, "tensor '%s': %s has more than %d entries", show(tensor).s, field, max);
        if (read_u64(c, &v[*count]))
            return bad(c->what, "tensor '%s': %s must hold non-negative integers below 2^64",
                       show(tensor).s, field);
        ++*count;
    } while (eat(c, ','));
    if (!eat(c, ']')) return bad(c->what, "tensor '%s': %s is malformed", show(tensor).s, field);
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
    shown nm = show(name);
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
                    show(key).s);
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
                while (k < ST_NDTYPES && strcmp(d, dtype_names[k])) k++;
                if (k == ST_NDTYPES) {
                    bad(f->what, "tensor '%s' has dtype '%s', which dsf does not support (F32, F64, I64, I32, U8)",
                        nm.s, show(d).s);
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
            bad(f->what, "__metadata__ value of '%s' is not a string", show(k).s);
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
    name_ix *mk = dsf_xmalloc((size_t)(f->nmeta + 1) * sizeof *mk);
    for (int i = 0; i < f->nmeta; i++) mk[i] = (name_ix){f->key[i], i};
    qsort(mk, (size_t)f->nmeta, sizeof *mk, name_ix_cmp);
    int rc = 0;
    for (int i = 1; i < f->nmeta && !rc; i++)
        if (!strcmp(mk[i - 1].name, mk[i].name))
            rc = bad(f->what, "metadata key '%s' appears twice", show(mk[i].name).s);
    free(mk);
    if (rc) return rc;

    if (f->n) qsort(f->e, (size_t)f->n, sizeof *f->e, entry_cmp);
    for (int i = 0; i < f->n; i++) f->by_name[i] = (name_ix){f->e[i].t.name, i};
    qsort(f->by_name, (size_t)f->n, sizeof *f->by_name, name_ix_cmp);
    for (int i = 1; i < f->n; i++)
        if (!strcmp(f->by_name[i - 1].name, f->by_name[i].name))
            return bad(f->what, "tensor '%s' appears twice", show(f->by_name[i].name).s);

    uint64_t pos = 0;
    for (int i = 0; i < f->n; i++) {
        entry *e = &f->e[i];
        shown nm = show(e->t.name);
        uint64_t nelem = 1, size = dtype_sizes[e->t.dtype];
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
                       nm.s, dtype_names[e->t.dtype], format_shape(e->t.ndim, e->t.shape).s,
                       (unsigned long long)nbytes, (unsigned long long)e->begin,
                       (unsigned long long)e->end, (unsigned long long)(e->end - e->begin));
        if (e->begin < pos)
            return bad(f->what, "tensors '%s' and '%s' overlap", show(f->e[i - 1].t.name).s, nm.s);
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
                             show(stored).s);
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
        if (e->t.nbytes && e->begin % dtype_sizes[e->t.dtype]) extra += (e->t.nbytes + 7) & ~(size_t)7;
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
        } else if (e->begin % dtype_sizes[e->t.dtype]) {
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
    name_ix key = {name, 0};
    const name_ix *hit = bsearch(&key, f->by_name, (size_t)f->n, sizeof key, name_ix_cmp);
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
                             st_dtype_name(t->dtype), format_shape(t->ndim, t->shape).s,
                             st_dtype_name(dt), format_shape(ndim, shape).s);
    if (out) *out = t;
    return 0;
}
