// images.c: see images.h.
#include "images.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "core/common.h"
#include "model/lm.h"

#ifdef DSF_USE_ZLIB
#include <zlib.h>
#endif

// A whole file's bytes, gunzipped when it is gzip (with zlib). Files over 1 GiB
// uncompressed are refused: the largest of these data sets is 47 MB.
#define IDX_MAX_BYTES ((size_t)1 << 30)

static int read_all(const char *path, uint8_t **out, size_t *n) {
    struct stat st;
    if (stat(path, &st) != 0) return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode)) return dsf_error_set("%s is not a regular file", path);
    size_t cap = 1 << 20, len = 0;
    uint8_t *buf = malloc(cap);
    if (!buf) return dsf_error_set("out of memory reading %s", path);
#ifdef DSF_USE_ZLIB
    gzFile f = gzopen(path, "rb");  // reads plain files as they are
    if (!f) {
        free(buf);
        return dsf_error_set("cannot open %s: %s", path, strerror(errno ? errno : ENOMEM));
    }
    for (;;) {
        if (len == cap) {
            if (cap >= IDX_MAX_BYTES) {
                gzclose(f);
                free(buf);
                return dsf_error_set("%s is larger than %zu MiB uncompressed", path,
                                     IDX_MAX_BYTES >> 20);
            }
            uint8_t *nb = realloc(buf, cap * 2);
            if (!nb) {
                gzclose(f);
                free(buf);
                return dsf_error_set("out of memory reading %s", path);
            }
            buf = nb, cap *= 2;
        }
        const int k = gzread(f, buf + len, (unsigned)(cap - len));
        if (k < 0) {
            int zerr;
            const char *msg = gzerror(f, &zerr);
            char why[256];
            snprintf(why, sizeof why, "%s", msg ? msg : "read error");
            gzclose(f);
            free(buf);
            return dsf_error_set("cannot read %s: %s", path, why);
        }
        if (k == 0) break;
        len += (size_t)k;
    }
    gzclose(f);
#else
    FILE *f = fopen(path, "rb");
    if (!f) {
        free(buf);
        return dsf_error_set("cannot open %s: %s", path, strerror(errno));
    }
    for (size_t k; (k = fread(buf + len, 1, cap - len, f)) > 0;) {
        len += k;
        if (len == cap) {
            uint8_t *nb = cap < IDX_MAX_BYTES ? realloc(buf, cap * 2) : NULL;
            if (!nb) {
                fclose(f);
                free(buf);
                return dsf_error_set("%s is too large", path);
            }
            buf = nb, cap *= 2;
        }
    }
    fclose(f);
    if (len >= 2 && buf[0] == 0x1f && buf[1] == 0x8b) {
        free(buf);
        return dsf_error_set("%s is gzip-compressed and this build has no zlib (apt-get install "
                             "zlib1g-dev, then make clean all; or gunzip it)", path);
    }
#endif
    *out = buf;
    *n = len;
    return 0;
}

static uint32_t be32(const uint8_t *p) {
    return (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
}

void images_free(dsf_images *im) {
    free(im->pixels);
    free(im->labels);
    memset(im, 0, sizeof *im);
}

int images_load_idx(dsf_images *im, const char *images_path, const char *labels_path) {
    memset(im, 0, sizeof *im);
    uint8_t *a = NULL, *b = NULL;
    size_t na = 0, nb = 0;
    int rc = -1;
    if (read_all(images_path, &a, &na) || read_all(labels_path, &b, &nb)) goto done;
    if (na < 16 || be32(a) != 0x00000803) {
        dsf_error_set("%s is not an IDX images file (magic 0x00000803)", images_path);
        goto done;
    }
    if (nb < 8 || be32(b) != 0x00000801) {
        dsf_error_set("%s is not an IDX labels file (magic 0x00000801)", labels_path);
        goto done;
    }
    const uint32_t n = be32(a + 4), rows = be32(a + 8), cols = be32(a + 12), nl = be32(b + 4);
    if (n < 1 || n > 10000000 || rows < 1 || rows > 4096 || cols < 1 || cols > 4096) {
        dsf_error_set("%s: %u images of %u x %u is out of range", images_path, n, rows, cols);
        goto done;
    }
    const size_t P = (size_t)rows * cols;
    if (na != 16 + (size_t)n * P) {
        dsf_error_set("%s: %zu bytes, but %u images of %u x %u need %zu", images_path, na, n,
                      rows, cols, 16 + (size_t)n * P);
        goto done;
    }
    if (nl != n || nb != 8 + (size_t)n) {
        dsf_error_set("%s holds %u labels in %zu bytes; %s has %u images", labels_path, nl, nb,
                      images_path, n);
        goto done;
    }
    im->pixels = malloc((size_t)n * P);
    im->labels = malloc(n);
    if (!im->pixels || !im->labels) {
        dsf_error_set("out of memory for %u images", n);
        goto done;
    }
    memcpy(im->pixels, a + 16, (size_t)n * P);
    memcpy(im->labels, b + 8, n);
    im->n = n, im->rows = (int)rows, im->cols = (int)cols;
    for (uint32_t i = 0; i < n; i++)
        if (im->labels[i] + 1 > im->classes) im->classes = im->labels[i] + 1;
    rc = 0;
done:
    free(a);
    free(b);
    if (rc) images_free(im);
    return rc;
}

// Images [from, from + count) of src, copied.
static int images_slice(dsf_images *dst, const dsf_images *src, int64_t from, int64_t count) {
    const size_t P = (size_t)src->rows * src->cols;
    *dst = *src;
    dst->n = count;
    dst->pixels = malloc((size_t)count * P);
    dst->labels = malloc((size_t)count);
    if (!dst->pixels || !dst->labels) {
        images_free(dst);
        return dsf_error_set("out of memory for %lld images", (long long)count);
    }
    memcpy(dst->pixels, src->pixels + (size_t)from * P, (size_t)count * P);
    memcpy(dst->labels, src->labels + from, (size_t)count);
    return 0;
}

int images_load_fashion(dsf_images split[DSF_NSPLITS], const char *dir) {
    memset(split, 0, sizeof(dsf_images) * DSF_NSPLITS);
    struct stat st;
    if (stat(dir, &st) != 0 || !S_ISDIR(st.st_mode))
        return dsf_error_set("no data directory %s (Fashion-MNIST: apt-get install "
                             "dataset-fashion-mnist, which puts it in %s)", dir, DSF_FASHION_DIR);
    char ip[4096], lp[4096];
    dsf_images train;
    snprintf(ip, sizeof ip, "%s/train-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/train-labels-idx1-ubyte.gz", dir);
    if (images_load_idx(&train, ip, lp)) return -1;
    snprintf(ip, sizeof ip, "%s/t10k-images-idx3-ubyte.gz", dir);
    snprintf(lp, sizeof lp, "%s/t10k-labels-idx1-ubyte.gz", dir);
    int rc = images_load_idx(&split[DSF_SPLIT_TEST], ip, lp);
    if (rc == 0 && train.n <= DSF_FASHION_VALID)
        rc = dsf_error_set("%s holds %lld training images: fewer than the %d of validation",
                           dir, (long long)train.n, DSF_FASHION_VALID);
    if (rc == 0 && (split[DSF_SPLIT_TEST].rows != train.rows ||
                    split[DSF_SPLIT_TEST].cols != train.cols))
        rc = dsf_error_set("%s: the test images are not of the training images' size", dir);
    const int64_t nt = train.n - DSF_FASHION_VALID;
    if (rc == 0) rc = images_slice(&split[DSF_SPLIT_TRAIN], &train, 0, nt);
    if (rc == 0) rc = images_slice(&split[DSF_SPLIT_VALID], &train, nt, DSF_FASHION_VALID);
    images_free(&train);
    if (rc)
        for (int k = 0; k < DSF_NSPLITS; k++) images_free(&split[k]);
    return rc;
}

void images_permutation(int32_t *perm, int n, uint64_t seed) {
    for (int i = 0; i < n; i++) perm[i] = i;
    dsf_rng r;
    dsf_rng_seed(&r, seed);
    for (int i = n - 1; i > 0; i--) {
        const int j = (int)(dsf_rng_u64(&r) % (uint64_t)(i + 1));
        const int32_t t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

void images_batch(const dsf_images *im, const int64_t *idx, int nb, int B, const int32_t *perm,
                  float *xf, int32_t *y) {
    const int T = im->rows * im->cols;
    DSF_ASSERT(nb >= 0 && nb <= B);
    for (int b = 0; b < B; b++) {
        const uint8_t *px = b < nb ? im->pixels + (size_t)idx[b] * T : NULL;
        for (int t = 0; t < T; t++) {
            xf[(size_t)t * B + b] = px ? px[perm ? perm[t] : t] * (1.0f / 255.0f) : 0.0f;
            y[(size_t)t * B + b] = DSF_IGNORE;
        }
        if (px) y[(size_t)(T - 1) * B + b] = im->labels[idx[b]];
    }
}
