// safetensors.h: reading and writing safetensors files, the checkpoint format.
//
// A safetensors file is three parts:
//
//     u64 N (little-endian) | N bytes of JSON header | data section
//
// The header maps each tensor name to {"dtype":"F32","shape":[3,4],"data_offsets":[b,e]},
// offsets counted from the start of the data section, plus an optional "__metadata__"
// object of string values. The tensors lie back to back and cover the data section
// exactly. PyTorch's safetensors.torch.load_file reads what this module writes.
//
// Writing (the writer keeps the caller's data pointers, so the data must stay alive
// until the save):
//
//     st_writer *w = st_writer_new();
//     int64_t shape[2] = {96, 32};
//     st_writer_add(w, "rnn.weight_ih_l0", ST_F32, 2, shape, w_ih);
//     st_writer_meta(w, "dsf.step", "1200");
//     int rc = st_writer_save(w, "run.safetensors");  // -1 and dsf_error() on failure
//     st_writer_free(w);
//
// The writer adds the metadata "format" = "pt" and "dsf.checksum" = the CRC-32 of the
// data section as 8 lowercase hex digits, and replaces the file atomically: it writes
// "<path>.tmp.<pid>", fsyncs it, renames it over the path and fsyncs the folder.
//
// Reading:
//
//     st_file *f = st_load("run.safetensors");        // NULL and dsf_error() on failure
//     const st_tensor *t;
//     if (!f || st_expect(f, "rnn.weight_ih_l0", ST_F32, 2, shape, &t)) return -1;
//     memcpy(w_ih, t->data, t->nbytes);
//     st_free(f);
//
// The reader treats the file as hostile input: it checks the sizes, parses the header
// with a strict JSON parser, requires the tensors to cover the data section exactly
// (the rule of the reference Rust reader), rejects dtypes other than the five below,
// and verifies "dsf.checksum" when present. Every error is one line naming the file.
// Each tensor's data is aligned to its element size.
//
// Tensor data is stored little-endian, the host's byte order (checked when compiling).
#ifndef DSF_SAFETENSORS_H
#define DSF_SAFETENSORS_H

#include "core/common.h"

typedef enum { ST_F32, ST_F64, ST_I64, ST_I32, ST_U8 } st_dtype;  // "F32","F64","I64","I32","U8"

#define ST_MAX_DIMS 8

typedef struct {
    char *name;
    st_dtype dtype;
    int ndim;  // 0 for a scalar
    int64_t shape[ST_MAX_DIMS];
    const void *data;  // nbytes bytes, aligned to st_dtype_size(dtype)
    size_t nbytes;     // product of the shape times the element size; 0 is legal
} st_tensor;

size_t st_dtype_size(st_dtype dt);
// "F32", "F64", ...; "?" for a value outside the enum.
const char *st_dtype_name(st_dtype dt);

// CRC-32 as zlib computes it (IEEE polynomial, reflected): "123456789" -> 0xcbf43926.
uint32_t st_crc32(const void *buf, size_t n);

// Writer. Names, keys and values are copied; tensor data is not. A problem with an
// argument (bad ndim, negative dimension, NULL data) is reported by st_writer_save.
typedef struct st_writer st_writer;
st_writer *st_writer_new(void);
void st_writer_add(st_writer *w, const char *name, st_dtype dt, int ndim, const int64_t *shape,
                   const void *data);
// A "__metadata__" string; setting a key again replaces its value. Values for "format"
// and "dsf.checksum" are ignored: the writer sets those two. Keys and values must be
// valid UTF-8 (hex-encode arbitrary bytes before).
void st_writer_meta(st_writer *w, const char *key, const char *value);
int st_writer_save(st_writer *w, const char *path);  // 0 ok, -1 with dsf_error() set
void st_writer_free(st_writer *w);

// Reader. The whole file is loaded into memory; tensor data points into it.
typedef struct st_file st_file;
st_file *st_load(const char *path);
// The same from memory (tests, fuzzing); buf is copied, `what` names it in errors.
st_file *st_load_buffer(const void *buf, size_t n, const char *what);
void st_free(st_file *f);

const st_tensor *st_get(const st_file *f, const char *name);  // NULL if absent
int st_count(const st_file *f);
// In file order, that is by data offset (for files we write, the order added);
// NULL when i is out of range.
const st_tensor *st_at(const st_file *f, int i);

const char *st_meta(const st_file *f, const char *key);  // NULL if absent
int st_meta_count(const st_file *f);
const char *st_meta_key(const st_file *f, int i);  // in header order; NULL when out of range

// Tensor `name` must exist with dtype `dt` and exactly this shape; else -1 with a
// message naming the file, the tensor, and the expected and found dtype and shape.
// On success *out (when out is not NULL) is the tensor.
int st_expect(const st_file *f, const char *name, st_dtype dt, int ndim, const int64_t *shape,
              const st_tensor **out);

#endif
