// test_safetensors.c: the safetensors writer and reader, including hostile files.
#ifndef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200809L  // mkdtemp, dirent, lstat
#endif

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "io/safetensors.h"
#include "test.h"

// ---------------------------------------------------------------------------------------
// Helpers.

static char tmpdir[64];

// A path in the temporary folder; four rotating buffers so that a call can use several.
static const char *tpath(const char *name) {
    static char buf[4][256];
    static int k;
    k = (k + 1) % 4;
    snprintf(buf[k], sizeof buf[k], "%s/%s", tmpdir, name);
    return buf[k];
}

static uint8_t *read_all(const char *path, size_t *n) {
    FILE *fp = fopen(path, "rb");
    if (!fp) return NULL;
    fseek(fp, 0, SEEK_END);
    long size = ftell(fp);
    fseek(fp, 0, SEEK_SET);
    uint8_t *b = malloc((size_t)size + 1);
    *n = fread(b, 1, (size_t)size, fp);
    fclose(fp);
    return b;
}

static int write_all_file(const char *path, const void *b, size_t n) {
    FILE *fp = fopen(path, "wb");
    if (!fp) return -1;
    size_t k = fwrite(b, 1, n, fp);
    return fclose(fp) || k != n ? -1 : 0;
}

static uint64_t le64(const uint8_t *p) {
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--) v = v << 8 | p[i];
    return v;
}

// A file image: 8-byte length, the header as given, then ndata zero bytes.
static uint8_t *make_image(const char *header, size_t ndata, size_t *n) {
    size_t h = strlen(header);
    *n = 8 + h + ndata;
    uint8_t *b = calloc(1, *n);
    for (int i = 0; i < 8; i++) b[i] = (uint8_t)((uint64_t)h >> (8 * i));
    memcpy(b + 8, header, h);
    return b;
}

// Loading must fail with a one-line message that names the file and contains `want`.
static int load_fails(const void *buf, size_t n, const char *want) {
    st_file *f = st_load_buffer(buf, n, "hostile.st");
    if (f) {
        st_free(f);
        dsf_error_set("(it loaded without an error)");
        return 0;
    }
    const char *e = dsf_error();
    return strstr(e, "hostile.st") && strstr(e, want) && !strchr(e, '\n');
}

static int count_temp_files(void) {
    DIR *d = opendir(tmpdir);
    int n = 0;
    if (!d) return -1;
    for (struct dirent *de; (de = readdir(d));) n += strstr(de->d_name, ".tmp.") != NULL;
    closedir(d);
    return n;
}

// A small file with three tensors, as bytes.
static uint8_t *small_file(size_t *n) {
    static const float a[5] = {1, 2, 3, 4, 5};
    static const int64_t b[3] = {-7, 0, 1LL << 40};
    static const uint8_t c[3] = {9, 8, 7};
    int64_t sa[1] = {5}, sb[1] = {3}, sc[1] = {3};
    st_writer *w = st_writer_new();
    st_writer_add(w, "a", ST_F32, 1, sa, a);
    st_writer_add(w, "b", ST_I64, 1, sb, b);
    st_writer_add(w, "c", ST_U8, 1, sc, c);
    st_writer_meta(w, "note", "small");
    const char *path = tpath("small.st");
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    if (rc) return NULL;
    uint8_t *bytes = read_all(path, n);
    unlink(path);
    return bytes;
}

// ---------------------------------------------------------------------------------------
// Tests.

static uint32_t crc32_bitwise(const uint8_t *p, size_t n) {
    uint32_t c = 0xffffffffu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xedb88320u & (0u - (c & 1)));
    }
    return ~c;
}

static void test_st_crc32(void) {
    CHECK(st_crc32("123456789", 9) == 0xcbf43926u);
    CHECK(st_crc32("", 0) == 0);
    CHECK(st_crc32("The quick brown fox jumps over the lazy dog", 43) == 0x414fa339u);
    uint8_t buf[1000];
    uint32_t x = 12345;
    for (int i = 0; i < 1000; i++) buf[i] = (uint8_t)((x = x * 1103515245u + 12345u) >> 16);
    for (size_t n = 0; n <= 1000; n += 37) CHECK(st_crc32(buf, n) == crc32_bitwise(buf, n));
}

// The tensors of the round trip, in the order added. The U8 tensor of odd size puts
// the F64 after it off its natural alignment in the file.
static const float rt_f32[6] = {1.5f, -2.25f, 3e-8f, -0.0f, 1e30f, 7};
static const uint8_t rt_u8[7] = {0, 1, 2, 255, 128, 7, 9};
static const double rt_f64[3] = {3.141592653589793, -1e-300, 2.5};
static const int64_t rt_i64[4] = {INT64_MIN, -1, 0, INT64_MAX};
static const int32_t rt_i32[6] = {INT32_MIN, -2, 0, 3, 4, INT32_MAX};
static const float rt_scalar = 3.5f;
static const int64_t rt_dummy[1] = {42};
static const double rt_f64b[5] = {1, 2, 3, 4, 5};

typedef struct {
    const char *name;
    st_dtype dt;
    int ndim;
    int64_t shape[3];
    const void *data;
    size_t nbytes;
} rt_tensor;

static const rt_tensor rt[] = {
    {"model.w", ST_F32, 2, {2, 3}, rt_f32, sizeof rt_f32},
    {"vocab.bytes", ST_U8, 1, {7}, rt_u8, sizeof rt_u8},
    {"odd.f64", ST_F64, 1, {3}, rt_f64, sizeof rt_f64},
    {"rng.state", ST_I64, 2, {2, 2}, rt_i64, sizeof rt_i64},
    {"ids", ST_I32, 3, {3, 1, 2}, rt_i32, sizeof rt_i32},
    {"loss", ST_F32, 0, {0}, &rt_scalar, sizeof rt_scalar},
    {"empty.f32", ST_F32, 2, {0, 4}, NULL, 0},
    {"empty.i64", ST_I64, 2, {3, 0}, rt_dummy, 0},
    {"last", ST_F64, 1, {5}, rt_f64b, sizeof rt_f64b},
};
#define RT_N ((int)(sizeof rt / sizeof rt[0]))

static const char *const rt_meta[][2] = {
    {"quote", "he said \"hi\""},
    {"backslash", "C:\\dir\\file\\"},
    {"newline", "line1\nline2\r\n\ttabbed"},
    {"control", "\x01\x1f\x7f end"},
    {"utf8", "h\xc3\xa9llo \xe2\x9c\x93 \xf0\x9f\x98\x80"},
    {"empty", ""},
    {"key with \"quotes\" and \\", "v"},
};
#define RT_NMETA ((int)(sizeof rt_meta / sizeof rt_meta[0]))

static int save_rt(const char *path) {
    st_writer *w = st_writer_new();
    for (int i = 0; i < RT_N; i++)
        st_writer_add(w, rt[i].name, rt[i].dt, rt[i].ndim, rt[i].shape, rt[i].data);
    st_writer_meta(w, "format", "np");  // ignored: the writer sets format
    st_writer_meta(w, "quote", "replaced below");
    for (int i = 0; i < RT_NMETA; i++) st_writer_meta(w, rt_meta[i][0], rt_meta[i][1]);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    return rc;
}

static void test_st_roundtrip(void) {
    const char *path = tpath("rt.safetensors");
    CHECK_MSG(save_rt(path) == 0, "%s", dsf_error());
    st_file *f = st_load(path);
    CHECK_MSG(f, "%s", dsf_error());
    int ok = st_count(f) == RT_N;
    for (int i = 0; ok && i < RT_N; i++) {
        const st_tensor *t = st_at(f, i);
        ok = t && t == st_get(f, rt[i].name) && !strcmp(t->name, rt[i].name) &&
             t->dtype == rt[i].dt && t->ndim == rt[i].ndim && t->nbytes == rt[i].nbytes &&
             t->data && (uintptr_t)t->data % st_dtype_size(t->dtype) == 0 &&
             (t->nbytes == 0 || !memcmp(t->data, rt[i].data, t->nbytes));
        for (int d = 0; ok && d < t->ndim; d++) ok = t->shape[d] == rt[i].shape[d];
        if (!ok) test_fail(__FILE__, __LINE__, "tensor %d (%s) differs", i, rt[i].name);
    }
    ok = ok && st_at(f, RT_N) == NULL && st_at(f, -1) == NULL && st_get(f, "absent") == NULL;
    ok = ok && st_meta_count(f) == RT_NMETA + 2;
    for (int i = 0; ok && i < RT_NMETA; i++) {
        const char *v = st_meta(f, rt_meta[i][0]);
        ok = v && !strcmp(v, rt_meta[i][1]);
        if (!ok) test_fail(__FILE__, __LINE__, "metadata '%s' differs", rt_meta[i][0]);
    }
    const char *fmt = st_meta(f, "format"), *sum = st_meta(f, "dsf.checksum");
    ok = ok && fmt && !strcmp(fmt, "pt") && sum && strlen(sum) == 8 &&
         strspn(sum, "0123456789abcdef") == 8 && st_meta(f, "absent") == NULL;
    int keys_seen = 0;
    for (int i = 0; ok && i < st_meta_count(f); i++) keys_seen += st_meta(f, st_meta_key(f, i)) != NULL;
    ok = ok && keys_seen == RT_NMETA + 2 && st_meta_key(f, st_meta_count(f)) == NULL;
    st_free(f);
    CHECK(ok);
    unlink(path);
}

// The raw bytes follow the spec: header padded to 8, offsets back to back in the order
// added and covering the data section, checksum of the data section in the header.
static void test_st_layout(void) {
    const char *path = tpath("layout.safetensors");
    CHECK_MSG(save_rt(path) == 0, "%s", dsf_error());
    size_t n;
    uint8_t *b = read_all(path, &n);
    unlink(path);
    CHECK(b && n >= 8);
    uint64_t h = le64(b);
    CHECK(h <= n - 8);
    CHECK((8 + h) % 8 == 0);
    char *hdr = malloc(h + 1);
    memcpy(hdr, b + 8, h);
    hdr[h] = 0;
    size_t end = h;
    while (end > 0 && hdr[end - 1] == ' ') end--;
    int ok = hdr[0] == '{' && end > 0 && hdr[end - 1] == '}' && h - end < 8;
    uint64_t pos = 0;
    for (int i = 0; ok && i < RT_N; i++) {
        char key[64];
        snprintf(key, sizeof key, "\"%s\":{", rt[i].name);
        const char *at = strstr(hdr, key);
        const char *off = at ? strstr(at, "\"data_offsets\":[") : NULL;
        unsigned long long lo = 0, hi = 0;
        ok = off && sscanf(off, "\"data_offsets\":[%llu,%llu]", &lo, &hi) == 2 && lo == pos &&
             hi - lo == rt[i].nbytes;
        pos = hi;
        if (!ok) test_fail(__FILE__, __LINE__, "offsets of %s are wrong", rt[i].name);
    }
    ok = ok && pos == n - 8 - h;
    const char *sum = strstr(hdr, "\"dsf.checksum\":\"");
    unsigned stored = 0;
    ok = ok && sum && sscanf(sum + 16, "%8x", &stored) == 1 &&
         stored == st_crc32(b + 8 + h, n - 8 - h) && strstr(hdr, "\"format\":\"pt\"");
    free(hdr);
    free(b);
    CHECK(ok);
    // Every header length is padded, not just the one above.
    for (int k = 0; k < 8; k++) {
        float x = 1;
        char value[9] = "xxxxxxxx";
        value[k] = 0;
        st_writer *w = st_writer_new();
        st_writer_add(w, "x", ST_F32, 0, NULL, &x);
        st_writer_meta(w, "pad", value);
        int rc = st_writer_save(w, path);
        st_writer_free(w);
        CHECK_MSG(rc == 0, "%s", dsf_error());
        b = read_all(path, &n);
        unlink(path);
        CHECK(b && n == 8 + le64(b) + 4);
        h = le64(b);
        end = (size_t)h;
        while (end > 0 && b[8 + end - 1] == ' ') end--;
        ok = (8 + h) % 8 == 0 && end > 0 && b[8 + end - 1] == '}' && h - end < 8;
        free(b);
        CHECK_MSG(ok, "header of %llu bytes with a value of %d bytes", (unsigned long long)h, k);
    }
}

static void test_st_truncated(void) {
    size_t n;
    uint8_t *b = small_file(&n);
    CHECK_MSG(b, "%s", dsf_error());
    st_file *f = st_load_buffer(b, n, "whole.st");
    int ok = f != NULL;
    st_free(f);
    for (size_t cut = 0; ok && cut < n; cut++) {
        f = st_load_buffer(b, cut, "hostile.st");
        ok = !f && strstr(dsf_error(), "hostile.st") && !strchr(dsf_error(), '\n');
        if (!ok) test_fail(__FILE__, __LINE__, "cut at %zu: %s", cut, f ? "loaded" : dsf_error());
        st_free(f);
    }
    // The same from disk at a few cut points, and one byte too many.
    const char *path = tpath("trunc.st");
    size_t cuts[] = {0, 7, 8, 20, n / 2, n - 1};
    for (size_t i = 0; ok && i < sizeof cuts / sizeof cuts[0]; i++) {
        ok = !write_all_file(path, b, cuts[i]) && !(f = st_load(path)) && strstr(dsf_error(), path);
        if (!ok) test_fail(__FILE__, __LINE__, "cut at %zu on disk: %s", cuts[i], dsf_error());
        st_free(f);
    }
    uint8_t *longer = calloc(1, n + 1);
    memcpy(longer, b, n);
    ok = ok && load_fails(longer, n + 1, "belong to none");
    free(longer);
    free(b);
    unlink(path);
    CHECK(ok);
}

static void test_st_bitflips(void) {
    size_t n;
    uint8_t *b = small_file(&n);
    CHECK_MSG(b, "%s", dsf_error());
    size_t data = 8 + (size_t)le64(b);
    int ok = data < n, flips = 0;
    static const uint8_t masks[] = {1, 2, 4, 8, 16, 32, 64, 128, 255};
    for (size_t i = data; ok && i < n; i++) {
        for (size_t m = 0; ok && m < sizeof masks; m++) {
            b[i] ^= masks[m];
            st_file *f = st_load_buffer(b, n, "hostile.st");
            ok = !f && strstr(dsf_error(), "checkpoint hostile.st is damaged: checksum mismatch");
            if (!ok) test_fail(__FILE__, __LINE__, "flip of byte %zu by %02x: %s", i, masks[m],
                               f ? "loaded" : dsf_error());
            st_free(f);
            b[i] ^= masks[m];
            flips++;
        }
    }
    st_file *f = st_load_buffer(b, n, "restored.st");
    ok = ok && f && flips == (int)(n - data) * 9;
    st_free(f);
    free(b);
    CHECK(ok);
}

static void test_st_malformed(void) {
    // Each header is followed by `ndata` zero bytes; loading must fail with `want`.
    static const struct {
        const char *header;
        size_t ndata;
        const char *want;
    } cases[] = {
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}", 4, "not valid JSON"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},}", 4, "not valid JSON"},
        {"{'a':1}", 0, "not valid JSON"},
        {"{\"a\":tru}", 0, "not valid JSON"},
        {"{\"a\":01}", 0, "not valid JSON"},
        {"{\"a\":1.}", 0, "not valid JSON"},
        {"{\"a\" 1}", 0, "expected ':'"},
        {"", 0, "does not start with '{'"},
        {"[]", 0, "does not start with '{'"},
        {" {}", 0, "does not start with '{'"},
        {"{} x", 0, "unexpected data after"},
        {"{\"a\":{\"dtype\":\"BF16\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype 'BF16'"},
        {"{\"a\":{\"dtype\":7,\"shape\":[2],\"data_offsets\":[0,4]}}", 4, "dtype is not a string"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,4]}}", 4,
         "F32 [2] takes 8 bytes but data_offsets [0, 4] hold 4"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[4,12]}}",
         12, "tensors 'a' and 'b' overlap"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"b\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[8,12]}}",
         12, "gap of 4 bytes before tensor 'b'"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}", 8, "gap of 4 bytes"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[2],\"data_offsets\":[0,8]}}", 4, "past the end"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]}}", 8, "4 bytes after the last"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,0]}}", 4, "end before they begin"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[0,4]},"
         "\"a\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[4,8]}}",
         8, "tensor 'a' appears twice"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1,1,1,1,1,1,1,1,1],\"data_offsets\":[0,1]}}", 1,
         "shape has more than 8 entries"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[-1],\"data_offsets\":[0,1]}}", 1, "non-negative"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1.0],\"data_offsets\":[0,1]}}", 1, "non-negative"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1e0],\"data_offsets\":[0,1]}}", 1, "non-negative"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[\"1\"],\"data_offsets\":[0,1]}}", 1, "non-negative"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":1,\"data_offsets\":[0,1]}}", 1, "shape is not a list"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[18446744073709551616],\"data_offsets\":[0,1]}}", 1,
         "below 2^64"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[9223372036854775808],\"data_offsets\":[0,1]}}", 1,
         "shape is too large"},
        {"{\"a\":{\"dtype\":\"F32\",\"shape\":[4294967296,4294967296,16],\"data_offsets\":[0,4]}}",
         4, "shape overflows"},
        {"{\"a\":{\"dtype\":\"F64\",\"shape\":[2305843009213693952],\"data_offsets\":[0,8]}}", 8,
         "shape overflows"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1,1]}}", 1, "more than 2 entries"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0]}}", 1, "[begin, end]"},
        {"{\"a\":{\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1],\"foo\":1}}", 1,
         "unknown field 'foo'"},
        {"{\"a\":{\"dtype\":\"U8\",\"dtype\":\"U8\",\"shape\":[1],\"data_offsets\":[0,1]}}", 1,
         "repeated field 'dtype'"},
        {"{\"a\":{\"dtype\":\"U8\",\"data_offsets\":[0,1]}}", 1, "tensor 'a' has no shape"},
        {"{\"a\":{}}", 0, "tensor 'a' has no dtype"},
        {"{\"a\":5}", 0, "tensor 'a' is not described by an object"},
        {"{\"__metadata__\":[1]}", 0, "__metadata__ is not an object"},
        {"{\"__metadata__\":{\"k\":1}}", 0, "__metadata__ value of 'k' is not a string"},
        {"{\"__metadata__\":{},\"__metadata__\":{}}", 0, "__metadata__ appears twice"},
        {"{\"__metadata__\":{\"k\":\"1\",\"k\":\"2\"}}", 0, "metadata key 'k' appears twice"},
        {"{\"__metadata__\":{\"k\":\"\\ud800\"}}", 0, "unpaired surrogate"},
        {"{\"__metadata__\":{\"k\":\"\\ud800\\u0041\"}}", 0, "unpaired surrogate"},
        {"{\"__metadata__\":{\"k\":\"\\udc00\"}}", 0, "unpaired surrogate"},
        {"{\"__metadata__\":{\"k\":\"\\u12g4\"}}", 0, "bad hex digit"},
        {"{\"__metadata__\":{\"k\":\"\xff\"}}", 0, "invalid UTF-8"},
        {"{\"__metadata__\":{\"k\":\"\xc0\xaf\"}}", 0, "invalid UTF-8"},      // overlong '/'
        {"{\"__metadata__\":{\"k\":\"\xed\xa0\x80\"}}", 0, "invalid UTF-8"},  // a surrogate
        {"{\"__metadata__\":{\"k\":\"a\nb\"}}", 0, "control byte 0x0a"},
        {"{\"__metadata__\":{\"k\":\"\\x\"}}", 0, "invalid escape"},
        {"{\"__metadata__\":{\"k\":\"abc}}", 0, "unterminated string"},
        {"{\"a\\u0000b\":{\"dtype\":\"U8\",\"shape\":[0],\"data_offsets\":[0,0]}}", 0,
         "contains a NUL character"},
        {"{\"__metadata__\":{\"dsf.checksum\":\"xyz\"}}", 0, "checksum 'xyz' is not 8 hex digits"},
        {"{\"__metadata__\":{\"dsf.checksum\":\"00000001\"}}", 0,
         "is damaged: checksum mismatch (stored 00000001, computed 00000000)"},
        {"{\"line\\nbreak\":{\"dtype\":\"X\",\"shape\":[],\"data_offsets\":[0,0]}}", 0,
         "tensor 'line\\x0abreak' has dtype 'X'"},
    };
    int ok = 1;
    for (size_t i = 0; ok && i < sizeof cases / sizeof cases[0]; i++) {
        size_t n;
        uint8_t *b = make_image(cases[i].header, cases[i].ndata, &n);
        ok = load_fails(b, n, cases[i].want);
        if (!ok) test_fail(__FILE__, __LINE__, "case %zu (%s): got '%s'", i, cases[i].header,
                           dsf_error());
        free(b);
    }
    CHECK(ok);
}

static void test_st_depth_bomb(void) {
    size_t depth = 200000, n;
    char *h = malloc(depth + 8);
    strcpy(h, "{\"a\":");
    memset(h + 5, '[', depth);
    h[5 + depth] = 0;
    uint8_t *b = make_image(h, 0, &n);
    int ok = load_fails(b, n, "nested deeper than");
    free(b);
    // Objects nested inside objects: {"a":{"a":{...}}}
    size_t levels = 1000, k = 0;
    char *o = malloc(levels * 7 + 2);
    for (size_t i = 0; i < levels; i++) k += (size_t)sprintf(o + k, "{\"a\":");
    o[k++] = '1';
    for (size_t i = 0; i < levels; i++) o[k++] = '}';
    o[k] = 0;
    b = make_image(o, 0, &n);
    ok = ok && load_fails(b, n, "nested deeper than");
    free(b);
    free(o);
    free(h);
    CHECK_MSG(ok, "%s", dsf_error());
}

static void test_st_bad_lengths(void) {
    CHECK(load_fails("abc", 3, "fewer than the 8"));
    CHECK(load_fails(NULL, 0, "fewer than the 8"));
    uint8_t b[24] = {0};
    b[7] = 0x80;  // 2^63
    CHECK(load_fails(b, sizeof b, "over the 100 MB limit"));
    memset(b, 0xff, 8);
    CHECK(load_fails(b, sizeof b, "over the 100 MB limit"));
    memset(b, 0, 8);
    b[0] = 50;
    CHECK(load_fails(b, sizeof b, "header length 50 exceeds the 16 bytes"));
    // Just over 100 MB, with the bytes really there: refused before any copy.
    size_t big = 100000001;
    uint8_t *huge = calloc(1, 8 + big);
    CHECK(huge);
    for (int i = 0; i < 8; i++) huge[i] = (uint8_t)((uint64_t)big >> (8 * i));
    int ok = load_fails(huge, 8 + big, "over the 100 MB limit");
    free(huge);
    CHECK(ok);
}

// Files we did not write: whitespace, escapes, no metadata, no padding, tensors listed
// out of order, and tensors whose offsets do not suit their dtype.
static void test_st_foreign(void) {
    const char *hdr =
        "{ \"i\" : {\"dtype\":\"I32\", \"shape\":[2], \"data_offsets\":[11,19]},\n"
        "\t\"na\\u00efve\\/x\\\"\\\\\\b\\f\\n\\r\\t\":{\"data_offsets\":[8,11],\"shape\":[3],\"dtype\":\"U8\"},\r\n"
        "  \"d\":{\"shape\":[],\"dtype\":\"F64\",\"data_offsets\":[0,8]},"
        "\"__metadata__\":{\"smile\":\"\\ud83d\\ude00\",\"e\":\"\\u00E9\\u20ac\"} }";
    size_t n;
    uint8_t *img = make_image(hdr, 19, &n);
    uint8_t *data = img + n - 19;
    double d = -6.5;
    int32_t iv[2] = {-3, 77};
    memcpy(data, &d, 8);
    memcpy(data + 8, "xyz", 3);
    memcpy(data + 11, iv, 8);
    // Load from an odd address too: the reader must not depend on the caller's alignment.
    uint8_t *shifted = malloc(n + 1);
    memcpy(shifted + 1, img, n);
    int ok = 1;
    for (int pass = 0; ok && pass < 2; pass++) {
        st_file *f = st_load_buffer(pass ? shifted + 1 : img, n, "foreign.st");
        ok = f != NULL;
        if (!ok) {
            test_fail(__FILE__, __LINE__, "%s", dsf_error());
            break;
        }
        const st_tensor *td = st_at(f, 0), *tu = st_at(f, 1), *ti = st_at(f, 2);
        ok = st_count(f) == 3 && !strcmp(td->name, "d") && td->ndim == 0 &&
             td->dtype == ST_F64 && (uintptr_t)td->data % 8 == 0 &&
             *(const double *)td->data == -6.5 &&
             !strcmp(tu->name, "na\xc3\xafve/x\"\\\b\f\n\r\t") && tu->nbytes == 3 &&
             !memcmp(tu->data, "xyz", 3) && !strcmp(ti->name, "i") &&
             (uintptr_t)ti->data % 4 == 0 && ((const int32_t *)ti->data)[0] == -3 &&
             ((const int32_t *)ti->data)[1] == 77 && st_get(f, "i") == ti &&
             st_meta_count(f) == 2 && !strcmp(st_meta(f, "smile"), "\xf0\x9f\x98\x80") &&
             !strcmp(st_meta(f, "e"), "\xc3\xa9\xe2\x82\xac") && !st_meta(f, "dsf.checksum");
        st_free(f);
    }
    free(shifted);
    free(img);
    CHECK(ok);
    // The smallest file: an empty header object and no data.
    img = make_image("{}", 0, &n);
    st_file *f = st_load_buffer(img, n, "empty.st");
    free(img);
    CHECK_MSG(f, "%s", dsf_error());
    ok = st_count(f) == 0 && st_meta_count(f) == 0 && !st_get(f, "x") && !st_at(f, 0);
    st_free(f);
    CHECK(ok);
}

static void test_st_expect(void) {
    float w[6] = {1, 2, 3, 4, 5, 6}, s = 2;
    int64_t shape[2] = {2, 3};
    st_writer *sw = st_writer_new();
    st_writer_add(sw, "w", ST_F32, 2, shape, w);
    st_writer_add(sw, "s", ST_F32, 0, NULL, &s);
    const char *path = tpath("expect.st");
    int rc = st_writer_save(sw, path);
    st_writer_free(sw);
    CHECK_MSG(rc == 0, "%s", dsf_error());
    st_file *f = st_load(path);
    unlink(path);
    CHECK_MSG(f, "%s", dsf_error());
    const st_tensor *t = NULL;
    int ok = st_expect(f, "w", ST_F32, 2, shape, &t) == 0 && t && !memcmp(t->data, w, sizeof w);
    ok = ok && st_expect(f, "s", ST_F32, 0, NULL, NULL) == 0;
    int64_t wrong[2] = {3, 2}, flat[1] = {6};
    char want[512];
    snprintf(want, sizeof want, "checkpoint %s: tensor 'w' is F32 [2, 3], expected F32 [3, 2]", path);
    ok = ok && st_expect(f, "w", ST_F32, 2, wrong, &t) == -1 && !t && !strcmp(dsf_error(), want);
    ok = ok && st_expect(f, "w", ST_F64, 2, shape, NULL) == -1 &&
         strstr(dsf_error(), "is F32 [2, 3], expected F64 [2, 3]");
    ok = ok && st_expect(f, "w", ST_F32, 1, flat, NULL) == -1 &&
         strstr(dsf_error(), "expected F32 [6]");
    ok = ok && st_expect(f, "s", ST_F32, 1, flat, NULL) == -1 &&
         strstr(dsf_error(), "tensor 's' is F32 [], expected F32 [6]");
    ok = ok && st_expect(f, "zzz", ST_F32, 2, shape, NULL) == -1 &&
         strstr(dsf_error(), "has no tensor 'zzz'") && strstr(dsf_error(), path);
    st_free(f);
    CHECK_MSG(ok, "%s", dsf_error());
}

static int save_one(const char *path, const char *name, int ndim, const int64_t *shape,
                    const void *data, const char *meta_value) {
    st_writer *w = st_writer_new();
    st_writer_add(w, name, ST_F32, ndim, shape, data);
    if (meta_value) st_writer_meta(w, "k", meta_value);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    return rc;
}

static void test_st_writer_errors(void) {
    float x[4] = {1, 2, 3, 4};
    int64_t s1[1] = {4}, neg[1] = {-1}, s9[9] = {1, 1, 1, 1, 1, 1, 1, 1, 4};
    char path[512];  // a copy: tpath's ring of four buffers is reused below
    snprintf(path, sizeof path, "%s", tpath("w.st"));
    char want[512];

    // Folder missing: the temporary file cannot be made.
    const char *nodir = tpath("nodir/w.st");
    CHECK(save_one(nodir, "x", 1, s1, x, NULL) == -1);
    snprintf(want, sizeof want, "cannot save checkpoint %s: cannot create %s.tmp.", nodir, nodir);
    CHECK_MSG(strstr(dsf_error(), want) && strstr(dsf_error(), strerror(ENOENT)), "%s", dsf_error());

    // Target is a folder, or a FIFO: refused before anything is written (a rename
    // would replace a FIFO or a device node with a regular file).
    const char *dir = tpath("adir");
    CHECK(mkdir(dir, 0755) == 0);
    CHECK(write_all_file(tpath("adir/inside"), "x", 1) == 0);
    CHECK(save_one(dir, "x", 1, s1, x, NULL) == -1);
    CHECK_MSG(strstr(dsf_error(), "is not a regular file") && strstr(dsf_error(), dir), "%s",
              dsf_error());
    const char *fifo = tpath("afifo");
    CHECK(mkfifo(fifo, 0644) == 0);
    CHECK(save_one(fifo, "x", 1, s1, x, NULL) == -1);
    struct stat fst;
    CHECK(stat(fifo, &fst) == 0 && S_ISFIFO(fst.st_mode));
    CHECK(count_temp_files() == 0);

    // Bad arguments are reported by the save, which then writes nothing.
    CHECK(save_one(path, "x", 9, s9, x, NULL) == -1);
    CHECK_MSG(strstr(dsf_error(), "tensor 'x' has 9 dimensions"), "%s", dsf_error());
    CHECK(save_one(path, "x", 1, neg, x, NULL) == -1);
    CHECK_MSG(strstr(dsf_error(), "negative dimension -1"), "%s", dsf_error());
    CHECK(save_one(path, "x", 1, s1, NULL, NULL) == -1);
    CHECK_MSG(strstr(dsf_error(), "tensor 'x' has no data"), "%s", dsf_error());
    CHECK(save_one(path, "__metadata__", 1, s1, x, NULL) == -1);
    CHECK(save_one(path, "x", 1, s1, x, "bad \xff utf8") == -1);
    CHECK_MSG(strstr(dsf_error(), "not valid UTF-8"), "%s", dsf_error());
    st_writer *w = st_writer_new();
    st_writer_add(w, "x", ST_F32, 1, s1, x);
    st_writer_add(w, "y", ST_F32, 1, s1, x);
    st_writer_add(w, "x", ST_F32, 1, s1, x);
    int rc = st_writer_save(w, path);
    st_writer_free(w);
    CHECK(rc == -1);
    CHECK_MSG(strstr(dsf_error(), "tensor 'x' was added twice"), "%s", dsf_error());
    CHECK(access(path, F_OK) != 0);
    CHECK(count_temp_files() == 0);

    // A save replaces an existing file whole.
    CHECK(save_one(path, "x", 1, s1, x, "first") == 0);
    float y[2] = {9, 8};
    int64_t s2[1] = {2};
    CHECK(save_one(path, "z", 1, s2, y, "second") == 0);
    st_file *f = st_load(path);
    CHECK_MSG(f, "%s", dsf_error());
    int ok = st_count(f) == 1 && st_get(f, "z") && !st_get(f, "x") &&
             !strcmp(st_meta(f, "k"), "second") && !memcmp(st_get(f, "z")->data, y, sizeof y);
    st_free(f);
    unlink(path);
    CHECK(ok);
    CHECK(count_temp_files() == 0);
}

static void test_st_load_errors(void) {
    const char *missing = tpath("missing.st");
    CHECK(st_load(missing) == NULL);
    CHECK_MSG(strstr(dsf_error(), missing) && strstr(dsf_error(), strerror(ENOENT)), "%s",
              dsf_error());
    CHECK(st_load(tmpdir) == NULL);
    CHECK_MSG(strstr(dsf_error(), "not a regular file"), "%s", dsf_error());
    const char *empty = tpath("empty.st");
    CHECK(write_all_file(empty, "", 0) == 0);
    CHECK(st_load(empty) == NULL);
    CHECK_MSG(strstr(dsf_error(), empty) && strstr(dsf_error(), "fewer than the 8"), "%s",
              dsf_error());
    unlink(empty);
}

// A larger file exercises the write and read loops and the checksum over many bytes.
static void test_st_large(void) {
    size_t n = (size_t)1 << 20;
    float *x = malloc(n * sizeof *x);
    for (size_t i = 0; i < n; i++) x[i] = (float)i * 0.5f;
    int64_t shape[2] = {1024, 1024};
    const char *path = tpath("large.st");
    CHECK(save_one(path, "big", 2, shape, x, NULL) == 0);
    st_file *f = st_load(path);
    unlink(path);
    int ok = f && st_get(f, "big")->nbytes == n * sizeof *x &&
             !memcmp(st_get(f, "big")->data, x, n * sizeof *x);
    st_free(f);
    free(x);
    CHECK(ok);
}

void suite_safetensors(void) {
    snprintf(tmpdir, sizeof tmpdir, "/tmp/dsf_st_XXXXXX");
    if (!mkdtemp(tmpdir)) {
        fprintf(stderr, "FAIL suite_safetensors: mkdtemp: %s\n", strerror(errno));
        test_failed++;
        return;
    }
    RUN(test_st_crc32);
    RUN(test_st_roundtrip);
    RUN(test_st_layout);
    RUN(test_st_truncated);
    RUN(test_st_bitflips);
    RUN(test_st_malformed);
    RUN(test_st_depth_bomb);
    RUN(test_st_bad_lengths);
    RUN(test_st_foreign);
    RUN(test_st_expect);
    RUN(test_st_writer_errors);
    RUN(test_st_load_errors);
    RUN(test_st_large);
    test_remove_tree(tmpdir);
}
