// st_internal.h: what the parts of the safetensors module share (safetensors.c,
// st_write.c, st_read.c); not part of the library's interface.
#ifndef DSF_ST_INTERNAL_H
#define DSF_ST_INTERNAL_H

#include <stddef.h>
#include <stdint.h>

#include "safetensors.h"

#define ST_MAX_HEADER 100000000u  // bytes; the reference reader's limit
#define ST_MAX_DEPTH 64           // JSON nesting; the format needs 3
#define ST_NDTYPES 5

extern const char *const st_dtype_names[ST_NDTYPES];
extern const size_t st_dtype_sizes[ST_NDTYPES];

// CRC-32 (polynomial 0xedb88320) of n more bytes after crc.
uint32_t st_crc_update(uint32_t crc, const void *buf, size_t n);
// Length of the valid UTF-8 sequence at p (no overlongs, no surrogates, at most
// U+10FFFF), or 0 when it is not valid.
size_t st_utf8_len(const uint8_t *p, const uint8_t *end);
// Whether the NUL-terminated s is valid UTF-8.
int st_utf8_valid(const char *s);

// A string from a file, made safe for a one-line message: printable ASCII stays, other
// bytes become \xNN, and a long string is cut.
typedef struct {
    char s[100];
} st_shown;
st_shown st_show(const char *s);

// "[3, 4]"; "[]" for a scalar.
typedef struct {
    char s[ST_MAX_DIMS * 22 + 4];
} st_shape_str;
st_shape_str st_format_shape(int ndim, const int64_t *shape);

// Names sorted for duplicate checks and lookups.
typedef struct {
    const char *name;
    int index;
} st_name_ix;
int st_name_ix_cmp(const void *a, const void *b);

#endif
