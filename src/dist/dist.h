// dist.h: data-parallel training across processes with MPI (`make MPI=1`).
//
// Every process (rank) holds the whole model and a share of the B batch
// streams: contiguous for streams whose state is carried from batch to batch
// (rank r of N has [r·B/N, (r+1)·B/N)), dealt round robin for batches of
// sentences sorted longest first (rank r has r, r + N, r + 2N, …), so that
// every rank gets long and short rows alike. After each
// backward pass the flat gradient buffer is summed over the ranks in one
// all-reduce, so every rank takes the same optimizer step and the parameters
// stay identical without ever being sent.
//
// Built without MPI (the default), or run without a launcher such as mpirun,
// every function here is the single-process identity: rank 0 of 1, sums return
// their input. Callers use them unconditionally.
//
//     dist_init();
//     dist_streams s = dist_rows(B, 1);    // this rank's streams
//     ...forward and backward on them...
//     dist_mean_floats(m.grads, m.n);       // the gradient of the global mean loss
//     loss = dist_mean(loss);
//     dist_finalize();
#ifndef DSF_DIST_H
#define DSF_DIST_H

#include <stddef.h>
#include <stdint.h>

// Starts MPI when the process was started by an MPI launcher (mpirun, srun);
// otherwise, and in a build without MPI, a single process. 0 or -1 with the error set.
int dist_init(void);
void dist_finalize(void);
int dist_rank(void);
int dist_size(void);
// Ranks on this machine: they share its cores.
int dist_local_size(void);
// This rank's place among them, from 0.
int dist_local_rank(void);
// "OpenMPI 4.1.4" or similar, or "none" (a build without MPI).
const char *dist_name(void);

// A rank's streams of a batch: first, first + stride, …, count of them.
typedef struct {
    int64_t first, count, stride;
} dist_streams;
// This rank's share of n streams, contiguous and in rank order (stride 1).
// The shares differ by at most one stream; every rank has one when n >= size.
dist_streams dist_share(int64_t n);
// This rank's share of n streams dealt round robin: first = rank, stride =
// size. The shares differ by at most one stream, the lower ranks' the larger.
dist_streams dist_deal(int64_t n);
// The rule for a batch's n rows: dist_share when each row's state is carried to
// the next batch (streams: a rank keeps its rows), dist_deal otherwise (sentences
// and chunks from a zero state, sorted longest first).
dist_streams dist_rows(int64_t n, int carried);
// Columns s.first, s.first + s.stride, … of a time-major (t,B) batch, into
// mine (t,s.count).
void dist_take_streams(const int32_t *all, int64_t t, int64_t B, dist_streams s, int32_t *mine);

// Collectives: every rank must call them in the same order.
// x (n floats) becomes the mean over the ranks, in place; returns the seconds
// this rank spent in it (including waiting for slower ranks unless dist_wait
// came first).
double dist_mean_floats(float *x, size_t n);
// The mean and the sum of a double over the ranks.
double dist_mean(double x);
double dist_sum(double x);
// Waits until every rank has called it; returns the seconds this rank waited
// (for the slowest: what a following collective would otherwise include).
double dist_wait(void);
// Whether flag is non-zero on any rank.
int dist_any(int flag);
// Gathers every rank's n floats into all (size·n, in rank order) on rank 0.
void dist_gather_floats(const float *mine, size_t n, float *all);
// Whether x (n floats) is bit-identical on every rank.
int dist_same_floats(const float *x, size_t n);

// Error agreement. Returns -1 on every rank when rc < 0 on any, else rc. A rank
// that did not fail itself gets an error naming the one that did. Afterwards
// dist_reports_error() tells whether this rank should print its error: only the
// lowest failed rank does, so that N ranks failing alike print one line (and
// rank 0 alone for errors never agreed on: those of the command line, the same
// on every rank).
int dist_agree(int rc);
int dist_reports_error(void);

#endif
