// tasks.h: long-range tasks as token sequences with answer positions (docs/DESIGN.md §6).
//
// A batch is B independent sequences of T tokens, time-major: x[t*B + b] is the
// input of sequence b at step t and y[t*B + b] what the model must output there,
// DSF_IGNORE (model/lm.h) everywhere but at the answers, so that the loss and
// its gradient come from the answers alone. Every sequence starts from a zero
// state. `delay` is how far apart what must be remembered and where it is asked
// for are; a gradient that does not reach back that far cannot teach it.
//
// copy (V = 10; symbols 0..7, blank 8, go 9; T = 2K + D, K = 5; 5 answers):
//     x = s1..sK, D blanks, go, K-1 blanks;  y = s1..sK from the go on.
//     Each symbol is asked for K + D steps after it was seen.
//        x: c a h h b _ _ _ > _ _ _ _      (D = 3; _ blank, > go)
//        y: . . . . . . . . c a h h b      (. ignored)
// add (V = 40; digits 0..9, marked digits 10..19, '=' 20, sums 0..18 as 21..39;
//     N = D + 2 digits, T = N + 1; 1 answer): the adding problem in tokens. Two
//     digits are marked, one at a position uniform in the first ceil(N/2), one
//     uniform in the rest; at the '=' the target is their sum. The first mark is
//     between floor(N/2) + 1 and N steps before the answer.
// recall (V = 17; keys 0..7, fillers 8..15, '=' 16; T = D + 2; 1 answer):
//     x = key, D random fillers, '=';  y = the key at the '='. The key is asked
//     for D + 1 steps after it was seen (as builtin:recall, without the text).
//
// Chance accuracy (the best without a memory): 1/8 for copy and recall, 1/10
// for add (the likeliest sum, 9, has probability 10/100; and knowing one of the
// two digits alone does no better).
#ifndef DSF_TASKS_H
#define DSF_TASKS_H

#include <stdint.h>

#include "core/common.h"

typedef enum { DSF_TASK_COPY, DSF_TASK_ADD, DSF_TASK_RECALL } dsf_task_kind;

#define DSF_TASK_COPY_K 5             // symbols to copy
#define DSF_TASK_MAX_DELAY 1000000

typedef struct {
    dsf_task_kind kind;
    int delay;
    int T;        // tokens per sequence
    int V;        // vocabulary
    int answers;  // answer positions per sequence
} dsf_task;

const char *dsf_task_name(dsf_task_kind k);  // "copy", "add", "recall"
// Parses the name and checks the delay (0..DSF_TASK_MAX_DELAY); 0, or -1 with the
// error set.
int dsf_task_init(dsf_task *t, const char *name, int delay);
// The best token accuracy without a memory (see above).
double dsf_task_chance(const dsf_task *t);
// B fresh sequences into x, y (T,B), drawn from rng in the order of b.
void dsf_task_batch(const dsf_task *t, dsf_rng *rng, int B, int32_t *x, int32_t *y);

#endif
