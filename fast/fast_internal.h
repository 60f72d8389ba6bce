/*
 * fast_internal.h — what the pieces of fast/ share: the kernel table that
 * each instruction-set file fills (kern_avx512.c, kern_avx2.c,
 * kern_portable.c), the choice of table at run time (fast_dispatch.c), the
 * plan that cuts a call into work items (fast_plan.c), and hooks for the
 * tests. Not installed.
 *
 * The split: the drivers (fast_forward.c, fast_backward.c) check arguments,
 * cut the tensor into work items (one channel, or a group of channels), run
 * the items on OpenMP threads and turn per-channel sums into per-channel
 * coefficients, in double. The kernels only stream over memory: they read
 * floats, add them up in fixed blocks, and write floats. Nothing a kernel
 * computes depends on which thread runs it, on how many threads there are,
 * or on the alignment of the arrays: see "Determinism" in docs/performance.md.
 */
#ifndef BN_FAST_INTERNAL_H
#define BN_FAST_INTERNAL_H

#include <stddef.h>

#include "bnlab.h"

/* Values per block: a block is summed in float lanes (four accumulators
 * per quantity: at most 2048/16/4 = 32 terms per float sum with 16 lanes,
 * 64 with 8) and each block's sum is then added (or merged, for moments)
 * into double accumulators, in block order. 2048 floats = 8 KiB, so a
 * block is still in L1 when it is read a second time, and the per-block
 * work (horizontal sums, the merge) stays small next to the block's.
 * Fixed: the blocks, hence the results, do not depend on the machine or
 * the thread count. */
#define BN_FAST_BLOCK 2048
/* For channels-last data a block is BN_FAST_PIXELS pixels of 16 (or 8)
 * channels, summed down the pixels four at a time into four accumulators:
 * again at most 32 terms per float sum. */
#define BN_FAST_PIXELS 128

/* The moments of a set of values: their number, mean and M2 = Σ (x - mean)².
 * The biased variance is m2 / n. */
typedef struct {
    double n, mean, m2;
} bn_moments;

/*
 * Where one work item's values are. Both layouts are "rows of contiguous
 * floats", read differently:
 *   NCHW, one channel c:  rows = N, each HW values long, row n at
 *                         x + (n·C + c)·HW: stride = C·HW; the kernel sums
 *                         over everything.
 *   NHWC, channels [c0, c1) of a chunk of pixels: rows = the chunk's pixels,
 *                         row p at x + p·C + c0, stride = C; the kernel sums
 *                         each channel (each column of c1 - c0 values) down
 *                         the rows.
 * (N, D) data (H = W = 1) is NHWC with one pixel per example.
 */
typedef struct {
    size_t rows;    /* NCHW: N;  NHWC: m' */
    size_t len;     /* NCHW: H·W;  NHWC: c1 - c0 channels */
    size_t stride;  /* floats from one row to the next */
} bn_rows;

/* Per-channel coefficients of the elementwise formulas, one array each,
 * indexed from the work item's first channel (NCHW reads element 0):
 *   affine (forward)    y  = a·(x - center) + k
 *   grad sums           xhat = (x - center)·b  (b = invstd);
 *                       with dx: dx = a·dz      (inference backward)
 *   dx (training)       dx = a·dz + b·(x - center) + k
 * x - center is the one subtraction that can cancel; it is done first, in
 * float, where it is exact for x near center. */
typedef struct {
    const float *center, *a, *b, *k;
} bn_coefs;

/* The arrays of the next NCHW channel (same layout, NULL: none), asked for
 * while this one is worked on, so that the next channel is in L2 before
 * its first pass, and DRAM reads run while this channel is summed and
 * while its output is written (one stream of reads alone cannot keep the
 * memory bus busy: docs/performance.md). A kernel visiting its row n asks
 * for row first + n/2 of the next channel when n is even: the sums kernel
 * takes the first half of the rows (first = 0), the output kernel the
 * second (first = N/2). "Next" is a few channels on when channels are
 * small (bn_fast_plan.ahead), so that the data arrives well before use. */
typedef struct {
    const float *p[3];
    size_t first;
} bn_ahead;

/* The kernels of one instruction set. Pointers x, y, dy, dx point at the
 * first value of the work item (channel c, or pixel 0 of channel c0); y in
 * the gradient kernels is the fused ReLU's output (NULL: no ReLU). Functions
 * returning int return 1 when every value they wrote is finite, 0 otherwise
 * (an overflow, or NaN/Inf in the input: the driver reports it). stream = 1
 * asks for non-temporal stores for the rows made of whole cache lines (the
 * caller fences them: bn_fast_store_fence). Outputs may alias inputs
 * (y = x, dx = dy): every value is read before it is overwritten. */
typedef struct bn_fast_kernels {
    const char *name;   /* "avx512", "avx2", "portable" */
    int lanes;          /* floats per vector: 16, 8, 8 */

    /* NCHW: the moments of one channel. */
    bn_moments (*moments_nchw)(const float *x, bn_rows r, bn_ahead ahead);
    /* NHWC: mean and M2 of each of the r.len channels (count r.rows), in
     * mm[2·j] and mm[2·j + 1]. */
    void (*moments_nhwc)(double *mm, const float *x, bn_rows r);

    /* y = a·(x - center) + k, then max(0, ·) if relu. */
    int (*affine_nchw)(float *y, const float *x, bn_rows r, bn_coefs c, int relu,
                       int stream, bn_ahead ahead);
    int (*affine_nhwc)(float *y, const float *x, bn_rows r, bn_coefs c, int relu,
                       int stream);
    /* NCHW, values [o0, o1) of the whole tensor in memory order (planes
     * of HW >= lanes values, plane q of channel q % C; c indexed by
     * channel): y = a·(x - center) + k, then max(0, ·) if relu. */
    int (*affine_planes)(float *y, const float *x, size_t o0, size_t o1, size_t HW,
                         size_t C, bn_coefs c, int relu, int stream);

    /* sums[0..2] = Σ dz, Σ dz·xhat, Σ xhat (NHWC: sums[3·j + 0..2] for
     * channel j); with dx != NULL also dx = a·dz, in the same pass. */
    int (*grad_sums_nchw)(double *sums, float *dx, const float *dy, const float *y,
                          const float *x, bn_rows r, bn_coefs c, int stream,
                          bn_ahead ahead);
    int (*grad_sums_nhwc)(double *sums, float *dx, const float *dy, const float *y,
                          const float *x, bn_rows r, bn_coefs c, int stream);

    /* dx = a·dz + b·(x - center) + k */
    int (*dx_nchw)(float *dx, const float *dy, const float *y, const float *x,
                   bn_rows r, bn_coefs c, int stream, bn_ahead ahead);
    int (*dx_nhwc)(float *dx, const float *dy, const float *y, const float *x,
                   bn_rows r, bn_coefs c, int stream);
    /* the same along runs of NCHW planes, as affine_planes */
    int (*dx_planes)(float *dx, const float *dy, const float *y, const float *x,
                     size_t o0, size_t o1, size_t HW, size_t C, bn_coefs c, int stream);

    /* NCHW groups of small planes with lanes across planes (kernels_lanes.h):
     * the channels in one period of planes of HW values (0: planes this
     * size go plane by plane), then, for channels [0, nc) of an item (nc a
     * multiple of the period), the moments (mm[2·j], mm[2·j + 1] = mean,
     * M2), the training forward's output, the training gradient sums
     * (sums[3·j + q]) and dx. */
    size_t (*lanes_period)(size_t HW);
    void (*moments_lanes)(double *mm, const float *x, bn_rows r, size_t nc);
    int (*affine_lanes)(float *y, const float *x, bn_rows r, size_t nc, bn_coefs c,
                        int relu, int stream);
    void (*grad_sums_lanes)(double *sums, const float *dy, const float *y, const float *x,
                            bn_rows r, size_t nc, bn_coefs c);
    int (*dx_lanes)(float *dx, const float *dy, const float *y, const float *x,
                    bn_rows r, size_t nc, bn_coefs c, int stream);
} bn_fast_kernels;

extern const bn_fast_kernels bn_fast_kernels_portable;
#ifdef BN_FAST_X86
extern const bn_fast_kernels bn_fast_kernels_avx2;
extern const bn_fast_kernels bn_fast_kernels_avx512;
#endif

/* The table in use: chosen by CPUID at the first call, or by the
 * environment variable BNLAB_FAST_ISA = avx512 | avx2 | portable (an unknown
 * name, or a path this CPU cannot run, is BN_EINVAL with a message). */
int bn_fast_kernels_get(const bn_fast_kernels **k);

/* Cache sizes in bytes (sysfs, else sysconf, else 1 MiB / 32 MiB). */
size_t bn_fast_l2_bytes(void);
size_t bn_fast_llc_bytes(void);

/* ---- test hooks: tests/test_fast.c runs every path in one process */

/* Forces the path by name (as BNLAB_FAST_ISA would), overriding the first
 * choice; BN_EINVAL if the CPU cannot run it (the choice is then unchanged).
 * NULL forgets the choice: the next call chooses again (BNLAB_FAST_ISA,
 * then CPUID). */
int bn_fast_force_isa(const char *name);
/* 1 if this CPU (and OS) can run the named path. */
int bn_fast_isa_supported(const char *name);
/* omp_set_num_threads for the library's parallel loops (n >= 1). */
void bn_fast_set_threads(int n);
/* Forces the choice of stores: -1 automatic (non-temporal above a quarter
 * of the last-level cache), 0 never, 1 non-temporal wherever rows are whole
 * cache lines. */
void bn_fast_force_stream(int mode);
/* Forces the channels-last group (a multiple of 16), 0 = automatic. */
void bn_fast_force_group(size_t channels);
/* 1: NCHW items are single channels even for small planes (the plan before
 * groups of small planes, to compare with); 0: automatic. */
void bn_fast_force_nchw_single(int on);

/* ---- shared by the drivers (fast_dispatch.c, fast_plan.c) */

int bn_fast_stream_wanted(size_t bytes_touched);
int bn_fast_threads(void);

/* Chan, Golub & LeVeque (1979): the moments of the union of two sets.
 *   delta = mean_b - mean_a
 *   mean  = mean_a + delta·n_b/n
 *   M2    = M2_a + M2_b + delta²·n_a·n_b/n                                */
static inline void bn_moments_merge(bn_moments *acc, bn_moments b)
{
    double n = acc->n + b.n, delta = b.mean - acc->mean;
    acc->mean += delta * (b.n / n);
    acc->m2 += b.m2 + delta * delta * (acc->n * (b.n / n));
    acc->n = n;
}

/* Channels-last pixels per chunk: a chunk's sums are made in blocks of
 * BN_FAST_PIXELS, and the chunks' results are merged in chunk order. Fixed,
 * like the blocks: how chunks are shared among threads changes nothing. */
#define BN_FAST_CHUNK 1024

/* How one call is cut into work items (fast_plan.c says why).
 *   NCHW: item = one channel, all its m' values: N rows of H·W (C = 1: one
 *         row of m'); steps 1-3 below run back to back on one thread, while
 *         the channel is in L2. Small planes (H·W < 256): item = a group of
 *         channels (a multiple of 16, ~256 KiB), whose rows in each image
 *         are one contiguous run of planes: steps 1 and 2 per channel,
 *         step 3 along the runs (affine_planes, dx_planes).
 *   NHWC and (N, D): item = (group of channels, chunk of pixels); a group
 *         is all C channels unless there are few chunks. Step 1 runs on all
 *         items, step 2 on all channels, step 3 on all items, with a
 *         barrier between.
 *   Steps of a training op: 1 sums per item, 2 coefficients per channel
 *   (from the merged sums), 3 output per item. */
typedef struct {
    int nhwc;
    size_t C, m;          /* channels; values per channel m' = N·H·W */
    size_t group, groups; /* channels per group; number of groups */
    size_t chunk, chunks; /* pixels per chunk; number of chunks (NCHW: 1) */
    size_t ahead;         /* NCHW: prefetch the group this many ahead (0: none) */
    bn_rows rows;         /* NCHW: the rows of every item */
    int stream;           /* non-temporal stores */
    int parallel;         /* large enough to share among threads */
} bn_fast_plan;

/* One work item: channels [c0, c1), chunk k of n values per channel, its
 * first value at data + offset, laid out as r. */
typedef struct {
    size_t c0, c1, k, n, offset;
    bn_rows r;
} bn_fast_item;

/* arrays: the data arrays the op reads or writes (bytes moved = arrays
 * × N·C·H·W × 4, which decides the stores). */
bn_fast_plan bn_fast_plan_make(const bn_desc *d, int arrays);
bn_fast_item bn_fast_item_at(const bn_fast_plan *p, size_t group, size_t chunk);

/* An operation as the runner sees it. Sums of an item go to
 * part + width·(k·C + c) for its channels c; the runner merges the chunks
 * of a channel into part + width·c (chunk 0's place) before coefs. */
typedef struct bn_fast_op {
    int width;  /* doubles per channel and chunk */
    /* step 1 (NULL: none); may also write an output (inference backward) */
    void (*sums)(const struct bn_fast_op *op, const bn_fast_item *it, double *part);
    /* a += b, where a covers n_a values and b the next n_b */
    void (*merge)(double *a, double n_a, const double *b, double n_b);
    /* step 2 (NULL: none): channel c from its totals; 0 if it is bad */
    int (*coefs)(const struct bn_fast_op *op, size_t c, double *total);
    /* step 3 (NULL: none) */
    void (*output)(const struct bn_fast_op *op, const bn_fast_item *it);
    void *ctx;  /* the op's own data */
} bn_fast_op;

/* Runs op on every item of p (OpenMP threads when p->parallel). part holds
 * width·chunks·C doubles, ok C bytes. */
void bn_fast_run(const bn_fast_plan *p, const bn_fast_op *op, double *part,
                 unsigned char *ok);

/* Orders this thread's non-temporal stores before what follows (sfence). */
void bn_fast_store_fence(void);

/* The channel to prefetch while working on item it (NCHW: the same place
 * p->ahead groups on), or NULL if there is none or another thread will
 * take it: base + that channel's offset. */
const float *bn_fast_ahead_of(const bn_fast_plan *p, const bn_fast_item *it,
                              const float *base);

/* Channel c of an NCHW item that is a group of channels, as an item. */
bn_fast_item bn_fast_channel_of(const bn_fast_item *it, size_t c);

/* The channels of an NCHW group item that go with lanes across planes
 * (kernels_lanes.h): whole periods of them, or 0. */
size_t bn_fast_lanes_channels(const bn_fast_kernels *K, const bn_fast_item *it);

/* The first of channels [it->c0, c1) of an NCHW group item with a NaN or
 * Inf in v (for messages; c1 - 1 if none). */
size_t bn_fast_bad_plane_channel(const bn_fast_item *it, size_t c1, const float *v);

/* The first channel of item it holding a NaN or Inf in v (for messages). */
size_t bn_fast_bad_channel(const bn_fast_item *it, const float *v);

/* Per-call scratch: per-channel coefficients (float), partial sums
 * (double, width·chunks·C) and per-channel flags. */
typedef struct {
    float *center, *a, *b, *k;
    double *part;
    unsigned char *ok;
} bn_fast_scratch;
int bn_fast_scratch_new(bn_fast_scratch *s, const bn_fast_plan *p, int width,
                        const char *who);
void bn_fast_scratch_free(bn_fast_scratch *s);
/* The coefficients of channels [c0, ...). */
bn_coefs bn_fast_coefs(const bn_fast_scratch *s, size_t c0);

/* Errors found inside a parallel loop are noted (the lowest channel wins,
 * whatever the thread order) and raised after it, through BN_ERROR. */
typedef struct {
    int status;
    size_t channel;
    char msg[400];
} bn_fast_error;
void bn_fast_note(bn_fast_error *e, size_t channel, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
int bn_fast_raise(const bn_fast_error *e);

/* The exact path, in double, for a channel whose float sums left float's
 * range (values beyond ~1e19 or deviations below ~1e-15, where squares
 * overflow or go subnormal) or are NaN: slow, scalar, rare. */
bn_moments bn_fast_moments_double(const float *x, const bn_fast_plan *p, size_t c);
void bn_fast_grad_sums_double(double sums[3], const float *dy, const float *y,
                              const float *x, const bn_fast_plan *p, size_t c,
                              double center, double s);
/* How many times the exact path has run in this process (for the tests). */
size_t bn_fast_double_path_runs(void);
/* Below this biased variance the float moments are recomputed in double. */
#define BN_FAST_TINY_VAR 0x1p-100

/* Inference inputs: mean finite, var >= 0 finite, var + eps normal, gamma
 * finite (fast_forward.c; also used by fast_backward.c). */
int bn_fast_check_population(const char *who, const bn_desc *d, const float *mean,
                             const float *var, const float *gamma);

#endif
