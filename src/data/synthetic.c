// synthetic.c: see synthetic.h.
#include "synthetic.h"

#include "core/common.h"

char *synthetic_recall(uint64_t seed, int delay, size_t nbytes, size_t *len) {
    DSF_ASSERT(delay >= 0);
    size_t line = (size_t)delay + 5;  // key '.' fillers '=' key '\n'
    size_t lines = nbytes / line;
    if (lines == 0) lines = 1;
    size_t total;
    int ok = dsf_mul_size(&total, lines, line);
    DSF_ASSERT(ok);
    char *buf = dsf_xmalloc(total);
    dsf_rng rng;
    dsf_rng_seed(&rng, seed);
    char *p = buf;
    for (size_t k = 0; k < lines; k++) {
        char key = (char)('a' + (dsf_rng_u64(&rng) >> 61));  // top 3 bits: 0..7
        *p++ = key;
        *p++ = '.';
        for (int i = 0; i < delay; i++) *p++ = (char)('p' + (dsf_rng_u64(&rng) >> 61));
        *p++ = '=';
        *p++ = key;
        *p++ = '\n';
    }
    *len = total;
    return buf;
}
