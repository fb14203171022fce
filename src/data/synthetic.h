// synthetic.h: long-range tasks generated in code, as text (docs/DESIGN.md §6).
//
// The delayed-recall task: every line is a key letter, '.', `delay` random filler
// letters, '=' and the key letter again, then '\n'. With delay 4:
//
//     c.rpwq=c
//     h.tuup=h
//
// Keys are drawn from 'a'..'h' and fillers from 'p'..'w' (8 each), so the only
// predictable characters are the '.', the '=', the newline and the recalled key,
// and recalling the key takes a gradient that reaches back delay + 2 steps:
// truncated BPTT with a window shorter than that cannot learn it.
//
// As a corpus it is "builtin:recall" or "builtin:recall:D" (corpus.h).
#ifndef DSF_SYNTHETIC_H
#define DSF_SYNTHETIC_H

#include <stddef.h>
#include <stdint.h>

// Whole lines of the recall task, as many as fit in nbytes (at least one),
// deterministic from seed. Returns a malloc'd buffer (free()), its length in *len.
// delay >= 0.
char *synthetic_recall(uint64_t seed, int delay, size_t nbytes, size_t *len);

#endif
