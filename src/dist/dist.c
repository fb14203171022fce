// dist.c: see dist.h. The MPI versions are compiled with DSF_USE_MPI (make MPI=1).
#include "dist.h"

#include <stdlib.h>
#include <string.h>

#include "core/common.h"

#ifdef DSF_USE_MPI
#include <limits.h>
#include <mpi.h>
#endif

static int rank, size = 1, local_size = 1, local_rank, first_failed = -1;

dist_streams dist_share(int64_t n) {
    const int64_t first = n * rank / size;
    return (dist_streams){first, n * (rank + 1) / size - first, 1};
}

dist_streams dist_deal(int64_t n) {
    return (dist_streams){rank, n > rank ? (n - rank + size - 1) / size : 0, size};
}

dist_streams dist_rows(int64_t n, int carried) { return carried ? dist_share(n) : dist_deal(n); }

void dist_take_streams(const int32_t *all, int64_t t, int64_t B, dist_streams s, int32_t *mine) {
    for (int64_t k = 0; k < t; k++)
        for (int64_t i = 0; i < s.count; i++)
            mine[k * s.count + i] = all[k * B + s.first + i * s.stride];
}

int dist_rank(void) { return rank; }
int dist_size(void) { return size; }
int dist_local_size(void) { return local_size; }
int dist_local_rank(void) { return local_rank; }
// Errors never agreed on come before any communication, from the command line,
// and are the same on every rank.
int dist_reports_error(void) { return first_failed < 0 ? rank == 0 : first_failed == rank; }

#ifndef DSF_USE_MPI

// Started by a launcher as one of several processes, a build without MPI would
// run the same training in each, over the same files.
int dist_init(void) {
    const char *n = getenv("OMPI_COMM_WORLD_SIZE");
    if (!n) n = getenv("PMI_SIZE");
    if (n && atoi(n) > 1)
        return dsf_error_set("this dsf is built without MPI but was started as one of %d "
                             "processes (build it with make MPI=1)", atoi(n));
    return 0;
}
void dist_finalize(void) {}
const char *dist_name(void) { return "none"; }
double dist_mean_floats(float *x, size_t n) { return 0; }
double dist_mean(double x) { return x; }
double dist_wait(void) { return 0; }
double dist_sum(double x) { return x; }
int dist_any(int flag) { return flag != 0; }
void dist_gather_floats(const float *mine, size_t n, float *all) {
    memcpy(all, mine, n * sizeof(float));
}
int dist_same_floats(const float *x, size_t n) { return 1; }
int dist_agree(int rc) { return rc < 0 ? -1 : rc; }

#else

static int started;
static char name[64] = "MPI";

// Launchers announce themselves in the environment; without one, MPI_Init would
// start a singleton runtime for nothing (and slowly), so a plain run stays plain.
static int launched(void) {
    return getenv("OMPI_COMM_WORLD_SIZE") || getenv("PMI_SIZE") || getenv("PMIX_RANK") ||
           getenv("PMI_RANK");
}

int dist_init(void) {
    if (started || !launched()) return 0;
    int provided;
    // OpenMP threads never call MPI: only the main thread communicates.
    if (MPI_Init_thread(NULL, NULL, MPI_THREAD_FUNNELED, &provided) != MPI_SUCCESS)
        return dsf_error_set("MPI_Init_thread failed");
    started = 1;
    MPI_Comm_rank(MPI_COMM_WORLD, &rank);
    MPI_Comm_size(MPI_COMM_WORLD, &size);
    MPI_Comm node;
    MPI_Comm_split_type(MPI_COMM_WORLD, MPI_COMM_TYPE_SHARED, rank, MPI_INFO_NULL, &node);
    MPI_Comm_size(node, &local_size);
    MPI_Comm_rank(node, &local_rank);
    MPI_Comm_free(&node);
    char version[MPI_MAX_LIBRARY_VERSION_STRING];
    int len;
    MPI_Get_library_version(version, &len);
    snprintf(name, sizeof name, "%.*s", (int)strcspn(version, ",\n"), version);
    return 0;
}

void dist_finalize(void) {
    if (started) MPI_Finalize();
    started = 0;
}

const char *dist_name(void) { return name; }

double dist_mean_floats(float *x, size_t n) {
    if (size == 1) return 0;
    double t0 = dsf_now();
    // MPI counts are int: large buffers go in pieces.
    for (size_t off = 0; off < n; off += (size_t)INT_MAX / 2) {
        size_t k = n - off < (size_t)INT_MAX / 2 ? n - off : (size_t)INT_MAX / 2;
        MPI_Allreduce(MPI_IN_PLACE, x + off, (int)k, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
    }
    double dt = dsf_now() - t0;
    const float inv = 1.0f / (float)size;
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < n; i++) x[i] *= inv;
    return dt;
}

double dist_sum(double x) {
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, &x, 1, MPI_DOUBLE, MPI_SUM, MPI_COMM_WORLD);
    return x;
}

double dist_mean(double x) { return size > 1 ? dist_sum(x) / size : x; }

double dist_wait(void) {
    if (size == 1) return 0;
    double t0 = dsf_now();
    MPI_Barrier(MPI_COMM_WORLD);
    return dsf_now() - t0;
}

int dist_any(int flag) {
    flag = flag != 0;
    if (size > 1) MPI_Allreduce(MPI_IN_PLACE, &flag, 1, MPI_INT, MPI_MAX, MPI_COMM_WORLD);
    return flag;
}

void dist_gather_floats(const float *mine, size_t n, float *all) {
    if (size == 1) {
        memcpy(all, mine, n * sizeof(float));
        return;
    }
    DSF_ASSERT(n <= INT_MAX);
    MPI_Gather(mine, (int)n, MPI_FLOAT, all, (int)n, MPI_FLOAT, 0, MPI_COMM_WORLD);
}

// FNV-1a over 32-bit words: enough to tell copies apart, cheap next to a step.
static uint64_t hash_floats(const float *x, size_t n) {
    uint64_t h = 1469598103934665603u;
    for (size_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, x + i, sizeof u);
        h = (h ^ u) * 1099511628211u;
    }
    return h;
}

int dist_same_floats(const float *x, size_t n) {
    if (size == 1) return 1;
    uint64_t h = hash_floats(x, n), v[2] = {h, ~h};  // max(~h) = ~min(h)
    MPI_Allreduce(MPI_IN_PLACE, v, 2, MPI_UINT64_T, MPI_MAX, MPI_COMM_WORLD);
    return v[0] == ~v[1];
}

int dist_agree(int rc) {
    if (size == 1) return rc < 0 ? -1 : rc;
    int first = rc < 0 ? rank : size;
    MPI_Allreduce(MPI_IN_PLACE, &first, 1, MPI_INT, MPI_MIN, MPI_COMM_WORLD);
    if (first == size) return rc;
    first_failed = first;
    if (rc >= 0) dsf_error_set("process %d of %d failed (its message is above)", first, size);
    return -1;
}

#endif
