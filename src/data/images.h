// images.h: image classification data read as sequences, one pixel a step: the
// IDX files of MNIST and Fashion-MNIST (gzip-compressed through zlib, or plain).
//
//     dsf_images split[DSF_NSPLITS];
//     if (images_load_fashion(split, "/usr/share/datasets/fashion-mnist")) fail(dsf_error());
//     split[DSF_SPLIT_TRAIN].n                          // 55,000 images of 28 x 28
//     images_batch(&split[0], idx, nb, B, perm, xf, y);  // xf (784,B,1), y (784,B)
//     for (int k = 0; k < DSF_NSPLITS; k++) images_free(&split[k]);
//
// IDX (big-endian): images are the magic 0x00000803, then n, rows, cols (32 bits
// each), then n·rows·cols bytes; labels are 0x00000801, n, then n bytes.
#ifndef DSF_IMAGES_H
#define DSF_IMAGES_H

#include <stdint.h>

#include "corpus.h"

typedef struct {
    int64_t n;        // images
    int rows, cols;   // each rows x cols bytes, row after row
    uint8_t *pixels;  // (n, rows·cols)
    uint8_t *labels;  // (n)
    int classes;      // 1 + the largest label of the file it came from
} dsf_images;

#define DSF_FASHION_DIR "/usr/share/datasets/fashion-mnist"  // Debian's dataset-fashion-mnist
#define DSF_FASHION_VALID 5000  // the last 5,000 training images are the validation split

// Reads an images file and its labels file (gzip or plain). 0, or -1 with the
// error set (and *im empty, safe to free).
int images_load_idx(dsf_images *im, const char *images_path, const char *labels_path);
void images_free(dsf_images *im);
// Fashion-MNIST (or MNIST) from dir's train-images-idx3-ubyte.gz,
// train-labels-idx1-ubyte.gz, t10k-*: train is the first 55,000 training images,
// valid the last 5,000, test the 10,000 t10k images. A missing directory or file
// says which package to install.
int images_load_fashion(dsf_images split[DSF_NSPLITS], const char *dir);
// A permutation of the n pixel positions drawn from seed (permuted MNIST): a
// xoshiro256** generator (core/common.h) seeded with seed, then Fisher–Yates
// from the end, j = next() mod (i + 1).
void images_permutation(int32_t *perm, int n, uint64_t seed);
// A batch of B rows from images idx[0..nb) (nb <= B; rows nb.. are empty): step
// t of row b reads pixel perm[t] (t when perm is NULL) as a float in [0, 1]:
// xf[t·B + b] (T = rows·cols steps, one input each); y[t·B + b] is the label at
// the last step and DSF_IGNORE (model/lm.h) before it, and everywhere in an
// empty row.
void images_batch(const dsf_images *im, const int64_t *idx, int nb, int B, const int32_t *perm,
                  float *xf, int32_t *y);

#endif
