// vocab.h: the vocabulary, strings <-> dense ids 0..V-1.
//
// A word-level vocabulary holds words (and "<eos>", "<unk>"); a character-level
// one holds single bytes, possibly followed by the 5-byte "<unk>". Strings are
// byte strings with a length: a byte vocabulary contains "\0" and "\n", so use
// the length that vocab_str returns, never strlen.
//
//     dsf_vocab *v = vocab_new();
//     int32_t id = vocab_add(v, "the", 3);      // 0, the first entry
//     vocab_find(v, "the", 3);                  // 0; -1 for a string not there
//     size_t len; const char *s = vocab_str(v, id, &len);
//     vocab_free(v);
//
// Lookup is an open-addressing hash table (FNV-1a, linear probing, load <= 1/2).
#ifndef DSF_VOCAB_H
#define DSF_VOCAB_H

#include <stddef.h>
#include <stdint.h>

typedef enum { DSF_LEVEL_WORD, DSF_LEVEL_CHAR } dsf_level;

typedef struct dsf_vocab dsf_vocab;

// Largest vocabulary: ids must fit an int32 with room to spare.
#define DSF_VOCAB_MAX (INT32_MAX - 1)

dsf_vocab *vocab_new(void);
void vocab_free(dsf_vocab *v);  // NULL is fine
// The id of s, adding it as the next id if new; -1 with the error set when the
// vocabulary is full (DSF_VOCAB_MAX entries).
int32_t vocab_add(dsf_vocab *v, const char *s, size_t len);
// The id of s, or -1 if absent.
int32_t vocab_find(const dsf_vocab *v, const char *s, size_t len);
int32_t vocab_size(const dsf_vocab *v);
// The bytes of entry id and their count in *len; NULL (and *len = 0) for an id
// out of range. The bytes are followed by a NUL, but may contain NULs
// themselves. Valid until the next vocab_add.
const char *vocab_str(const dsf_vocab *v, int32_t id, size_t *len);

// Serialisation for checkpoints: offsets[0..V] (offsets[0] = 0, entry i is
// bytes[offsets[i] .. offsets[i+1])) and the concatenated bytes, nbytes of them.
// The caller frees both with free().
void vocab_pack(const dsf_vocab *v, int64_t **offsets, uint8_t **bytes, int64_t *nbytes);
// The inverse, for n entries. The input is untrusted (a file): NULL with the
// error set unless offsets start at 0, never decrease, end at nbytes, and no
// entry repeats.
dsf_vocab *vocab_unpack(const int64_t *offsets, int64_t n, const uint8_t *bytes, int64_t nbytes);

// "word" / "char".
const char *dsf_level_name(dsf_level level);
// 0, or -1 with the error set for anything but "word" and "char".
int dsf_level_parse(const char *s, dsf_level *out);

#endif
