// corpus.h: text files -> token ids, with the vocabulary of the training split.
//
//     dsf_corpus c;
//     if (corpus_load(&c, "../shared/data/ptb", DSF_LEVEL_WORD)) fail(dsf_error());
//     c.split[DSF_SPLIT_TRAIN].ids[0 .. c.split[DSF_SPLIT_TRAIN].n)   // 929,589 ids
//     vocab_size(c.vocab)                                              // 10,000
//     corpus_free(&c);
//
// Where the text comes from (`path`):
// - a directory holding one of these sets, tried in this order (the first whose
//   train file exists is used, and then all three must exist):
//       ptb.{train,valid,test}.txt
//       ptb.char.{train,valid,test}.txt     (character level only)
//       wiki.{train,valid,test}.tokens
//       {train,valid,test}.txt
// - a single text file, split 90/5/5. At character level by byte counts: train is
//   the first floor(0.9 n) bytes, valid the next floor(0.05 n), test the rest. At
//   word level each cut moves forward to the next line boundary (just after a
//   '\n', or the end of the file) at or after the 90% and 95% byte marks, so no
//   line is cut in two.
// - "builtin:recall" or "builtin:recall:D": about 1 MB of the delayed-recall task
//   (synthetic.h) with delay D (default 8) and seed 1, split as a single
//   character-level file.
//
// Tokens (as PyTorch's examples/word_language_model):
// - Word level: every line (as Python's readlines gives them: a last line without
//   '\n' counts when it is not empty) becomes its words, separated by space, \t,
//   \r, \v or \f, then "<eos>". An empty line is a lone "<eos>". Ids in order of
//   first appearance in the train split.
// - Character level: every byte is a token, '\n' included. The vocabulary is the
//   distinct bytes of the train split in increasing order.
// - A token of valid or test that train lacks becomes "<unk>". When the
//   vocabulary has no "<unk>" yet (at character level it never has), one is
//   appended as the last entry.
#ifndef DSF_CORPUS_H
#define DSF_CORPUS_H

#include <stdint.h>

#include "vocab.h"

typedef struct {
    int32_t *ids;
    int64_t n;
    // Sequences (corpus_load_units with DSF_UNIT_SENTENCE): sequence k is
    // ids[starts[k] .. starts[k+1]), k < nseq; NULL and 0 for a plain stream.
    int64_t *starts;
    int64_t nseq;
} dsf_tokens;

// How text becomes tokens: one stream (every line's words, then <eos>), or one
// sequence per line as the authors' PTB loader makes them: the vocabulary starts
// with <pad> = 0, <bos> = 1, <eos> = 2, <unk> = 3, then the train split's words in
// order of first appearance, and every line (an empty one too) is the sequence
// <bos> w1 … wn <eos>. Sentences are word level only.
// Chunks (the authors' WikiText loader): the stream's tokens cut into sequences of
// equal length, the last incomplete one dropped (tokens_chunk).
typedef enum { DSF_UNIT_STREAM, DSF_UNIT_SENTENCE, DSF_UNIT_CHUNK } dsf_unit;
const char *dsf_unit_name(dsf_unit u);            // "stream", "sentence", "chunk"
int dsf_unit_parse(const char *s, dsf_unit *out);  // 0, or -1 with the error set
#define DSF_PAD_ID 0  // <pad> in a sentence vocabulary

enum { DSF_SPLIT_TRAIN, DSF_SPLIT_VALID, DSF_SPLIT_TEST, DSF_NSPLITS };

typedef struct {
    dsf_level level;
    dsf_vocab *vocab;
    dsf_tokens split[DSF_NSPLITS];
    char *source[DSF_NSPLITS];  // the file of each split, or "FILE (first 90%)" etc.
} dsf_corpus;

// Loads the three splits and builds the vocabulary from train. 0, or -1 with the
// error set (and *c empty, safe to corpus_free).
int corpus_load(dsf_corpus *c, const char *path, dsf_level level);
int corpus_load_units(dsf_corpus *c, const char *path, dsf_level level, dsf_unit unit);
// Tokenises one split with a fixed vocabulary (evaluating a checkpoint). In a
// directory the first set of file names whose file for this split exists is used.
// Unknown tokens become "<unk>"; without one in v they are an error.
int corpus_load_split(const char *path, dsf_level level, const dsf_vocab *v, int split,
                      dsf_tokens *out);
int corpus_load_split_units(const char *path, dsf_level level, dsf_unit unit, const dsf_vocab *v,
                            int split, dsf_tokens *out);
void corpus_free(dsf_corpus *c);
void tokens_free(dsf_tokens *t);
// Makes t's sequences the consecutive chunks of len tokens (floor(n / len) of them);
// -1 with the error set when there is not one.
int tokens_chunk(dsf_tokens *t, int64_t len, const char *what);

// "train", "valid", "test".
const char *dsf_split_name(int split);
int dsf_split_parse(const char *s, int *split);

#endif
