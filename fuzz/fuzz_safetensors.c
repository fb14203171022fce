// fuzz_safetensors.c: libFuzzer harness for the safetensors reader and the checkpoint
// layer above it (make fuzz). The input is a whole file.
//
// A file that loads is walked completely (every tensor and every byte of its data, every
// metadata pair) and then handed to ckpt_read_model and ckpt_read_run, and when both
// succeed with small sizes to ckpt_read_optim and ckpt_read_state. A mutated file almost
// always fails its "dsf.checksum", so an input whose checksum is wrong is tried a second
// time with the checksum recomputed: that way mutations reach the checkpoint layer.
//
// fuzz_safetensors_one returns NULL, or what invariant broke (the harness aborts on
// that); tests/test_regress.c replays the seeds and the regression inputs through it.
//
// The seeds in fuzz/corpus/fuzz_safetensors/ are named .st, as .gitignore drops
// *.safetensors. All but two were written by dsf itself (every run with --threads 1
// --no-test --save FILE):
//   train_char_sgd.st    train --data builtin:recall --level char --layers 1 --emb 2
//                        --hidden 2 --batch 2 --seq 4 --steps 3 --eval-batch 64
//   train_char_adamw.st  the same with --emb 1 --hidden 1 --batch 1 --seq 2 --steps 2
//                        --optim adamw
//   train_word_ft_2layers.st  train on 90 lines of "the cat sat" and the like, --level
//                        word --layers 2 --emb 1 --hidden 1 --batch 1 --seq 2 --steps 2
//                        --eval-batch 1 --method ft
//   grad_dsf.st          grad --init train_char_sgd.st --method dsf on 2 lines of 5 ids
// empty.st is the header {}; misaligned.st has a U8 tensor of 3 bytes before an F32
// one (copied to aligned storage), an empty F64 tensor, a scalar and a \u escape.
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "io/checkpoint.h"

static volatile uint8_t fuzz_st_sink;

// Each library call starts with no error; one that fails must leave one line of it.
static void fuzz_st_clear(void) { dsf_error_set("%s", ""); }
static const char *fuzz_st_error_ok(void) {
    const char *e = dsf_error();
    if (!strcmp(e, "unknown error")) return "a call failed without setting the error";
    if (strchr(e, '\n')) return "an error message spans more than one line";
    return NULL;
}

static const char *fuzz_st_walk(const st_file *f) {
    int n = st_count(f);
    if (n < 0) return "st_count is negative";
    for (int i = 0; i < n; i++) {
        const st_tensor *t = st_at(f, i);
        if (!t || !t->name) return "st_at returned NULL inside the count";
        if (st_get(f, t->name) != t) return "st_get does not find a tensor by its name";
        if (!strcmp(st_dtype_name(t->dtype), "?")) return "a tensor has a dtype outside the enum";
        if (t->ndim < 0 || t->ndim > ST_MAX_DIMS) return "a tensor has an impossible ndim";
        size_t size = st_dtype_size(t->dtype), numel = 1;
        for (int d = 0; d < t->ndim; d++) {
            if (t->shape[d] < 0) return "a tensor has a negative dimension";
            numel *= (size_t)t->shape[d];
        }
        if (numel * size != t->nbytes) return "nbytes is not the product of the shape";
        if (t->nbytes && (uintptr_t)t->data % size) return "tensor data is not aligned";
        const uint8_t *p = t->data;
        uint8_t x = 0;
        for (size_t k = 0; k < t->nbytes; k++) x ^= p[k];
        fuzz_st_sink ^= x;
    }
    if (st_at(f, n) || st_at(f, -1)) return "st_at out of range is not NULL";
    int nm = st_meta_count(f);
    for (int i = 0; i < nm; i++) {
        const char *k = st_meta_key(f, i), *v = k ? st_meta(f, k) : NULL;
        if (!k || !v) return "a metadata key or its value is missing";
        fuzz_st_sink ^= (uint8_t)(strlen(k) + strlen(v));
    }
    if (st_meta_key(f, nm) || st_meta_key(f, -1)) return "st_meta_key out of range is not NULL";
    return NULL;
}

static const char *fuzz_st_checkpoint(const st_file *f) {
    dsf_lm m;
    fuzz_st_clear();
    int has_feedback = 0, have_model = ckpt_read_model(f, &m, &has_feedback) == 0;
    if (!have_model) {
        const char *why = fuzz_st_error_ok();
        if (why) return why;
    } else if (m.cfg.V < 1 || m.cfg.E < 1 || m.cfg.H < 1 || m.cfg.L < 1 ||
               m.cfg.L > DSF_MAX_LAYERS) {
        lm_destroy(&m);
        return "ckpt_read_model made a model of impossible size";
    }

    dsf_run run;
    dsf_vocab *v = NULL;
    const char *why = NULL;
    fuzz_st_clear();
    if (ckpt_read_run(f, &run, &v)) {
        why = fuzz_st_error_ok();
    } else {
        for (int32_t id = 0; id < vocab_size(v) && !why; id++) {
            size_t len;
            const char *s = vocab_str(v, id, &len);
            if (!s || vocab_find(v, s, len) != id) why = "a vocabulary entry does not find itself";
        }
        vocab_free(v);
        if (!why && have_model && run.batch <= 64) {
            dsf_lm_work w;
            dsf_rng rng;
            if (lm_work_create(&w, &m.cfg, run.batch, 1) == 0) {
                fuzz_st_clear();
                if (ckpt_read_state(f, &m, &w, &rng)) why = fuzz_st_error_ok();
                lm_work_destroy(&w);
            }
            dsf_optim o;
            if (!why && optim_create(&o, run.optim, (float)run.base_lr, m.n) == 0) {
                fuzz_st_clear();
                if (ckpt_read_optim(f, &m, &o)) why = fuzz_st_error_ok();
                optim_destroy(&o);
            }
        }
    }
    if (have_model) lm_destroy(&m);
    return why;
}

static const char *fuzz_st_file(const uint8_t *data, size_t size) {
    fuzz_st_clear();
    st_file *f = st_load_buffer(data, size, "fuzz");
    if (!f) return fuzz_st_error_ok();
    const char *why = fuzz_st_walk(f);
    if (!why) why = fuzz_st_checkpoint(f);
    st_free(f);
    return why;
}

// A copy of the input with the "dsf.checksum" value the writer writes replaced by the
// CRC-32 of the data section; NULL when there is none or it is already right.
static uint8_t *fuzz_st_fix_checksum(const uint8_t *data, size_t size) {
    static const char key[] = "\"dsf.checksum\":\"";
    const size_t klen = sizeof key - 1;
    if (size < 8) return NULL;
    uint64_t h = 0;
    for (int i = 7; i >= 0; i--) h = h << 8 | data[i];
    if (h > size - 8) return NULL;
    const uint8_t *head = data + 8;
    for (size_t at = 0; at + klen + 8 <= h; at++) {
        if (memcmp(head + at, key, klen)) continue;
        char hex[9];
        snprintf(hex, sizeof hex, "%08x", (unsigned)st_crc32(head + h, size - 8 - (size_t)h));
        if (!memcmp(head + at + klen, hex, 8)) return NULL;
        uint8_t *copy = malloc(size);
        if (!copy) return NULL;
        memcpy(copy, data, size);
        memcpy(copy + 8 + at + klen, hex, 8);
        return copy;
    }
    return NULL;
}

static const char *fuzz_safetensors_one(const uint8_t *data, size_t size) {
    const char *why = fuzz_st_file(data, size);
    uint8_t *fixed = why ? NULL : fuzz_st_fix_checksum(data, size);
    if (fixed) {
        why = fuzz_st_file(fixed, size);
        free(fixed);
    }
    return why;
}

#ifndef DSF_FUZZ_REPLAY
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const char *why = fuzz_safetensors_one(data, size);
    if (why) {
        fprintf(stderr, "fuzz_safetensors: %s (error: %s)\n", why, dsf_error());
        abort();
    }
    return 0;
}
#endif
