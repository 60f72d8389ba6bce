/*
 * kernels.h — the streaming kernels of fast/, written once against the
 * small vector layer of simd_*.h and compiled three times: kern_avx512.c
 * (16 lanes), kern_avx2.c (8 lanes), kern_portable.c (8 lanes, plain C).
 * Each of those files includes its simd_*.h, names its table, then this file.
 *
 * What the kernels compute, per channel (Ioffe & Szegedy 2015, Algorithm 1
 * and the closed-form gradient, docs/derivation.md §5):
 *
 *   moments      n, mu_B, M2 = Σ (x - mu_B)²            (sigma2_B = M2 / n)
 *   affine       y  = a·(x - center) + k, then max(0, ·) if fused with ReLU
 *   grad sums    Σ dz,  Σ dz·xhat,  Σ xhat,  xhat = (x - center)·s
 *                                        (dz = dy, masked by y > 0 for ReLU)
 *   dx           dx = a·dz + b·(x - center) + k
 *
 * and the drivers (fast_forward.c, fast_backward.c) turn sums into a, b, k.
 *
 * How the sums are made, and why:
 *   - Values are added in float lanes within a block of at most 2048 values
 *     (BN_FAST_BLOCK; channels-last: BN_FAST_PIXELS pixels), with four
 *     accumulators per quantity (channels-last: four rows added as a tree
 *     before they meet one accumulator), so that one float sum adds at most
 *     32 terms (64 on the 8-lane paths): an error of at most ~64 roundings
 *     of the sum of their magnitudes. (NCHW planes of 256 values and up:
 *     a block is 8 rows side by side, 4 on the 8-lane paths, half that in
 *     the backward, with one accumulator per row: again at most 32 terms,
 *     64 on the 8-lane paths.)
 *     Each block's result then goes into double accumulators, block after
 *     block.
 *   - The variance is never E[x²] - E[x]². A block's moments come from the
 *     sums of d = x - c and d² about a shift c near its mean (block_result):
 *     mean = c + Σd/n, M2 = Σd² - (Σd)²/n, whose rounding grows with
 *     (mean - c)²/variance. NCHW: a channel's first block is summed about
 *     the mean of its first row (shifted by its first value; a block that
 *     is a piece of one long row is that row: the two-pass method), later
 *     blocks about the channel's mean so far; a block whose shift turns out
 *     farther than half its standard deviation from its mean is read again
 *     while it is in L1, its mean first, then the sums about that mean
 *     (two passes). Channels-last: the same with the chunk's first block
 *     read twice. Blocks merge with Chan et al.'s formula in double
 *     (bn_moments_merge). A channel at 1e7 ± 1 in float loses nothing.
 *   - The blocks are fixed by the shape alone, and every sum runs in the
 *     same order whichever thread runs it: results are bit-identical for any
 *     thread count and any alignment of the arrays.
 *
 * Passes over memory (fast_plan.c has the whole story): an NCHW channel is
 * read once for its sums and again for its output while it is still in L2
 * (small planes: a group of channels, and the output runs straight across
 * the group's planes, affine_planes / dx_planes); channels-last data is read
 * in address order, whole pixel rows (row_sweep_sums);
 * meanwhile the next channel's lines are requested (bn_ahead), so that DRAM
 * reads go on while this channel is summed and written. Outputs go out with
 * non-temporal stores when the arrays exceed the last-level cache (no
 * read-for-ownership, no eviction of what is reused); the kernels do not
 * fence them: each thread does once, at the end of its work
 * (bn_fast_store_fence in fast_plan.c), not once per call.
 */
#include <math.h>
#include <stdint.h>

#include "fast_internal.h"

#ifndef VL
#error "include a simd_*.h before kernels.h"
#endif

static inline size_t min_size(size_t a, size_t b) { return a < b ? a : b; }

/* Keeps a function out of line (its registers to itself). */
#if defined(__GNUC__)
#define BN_NOINLINE __attribute__((noinline))
#else
#define BN_NOINLINE
#endif

/* ------------------------------------------------------------ helpers */

/* A block's moments from its second pass: s1 = Σ d and s2 = Σ d² with
 * d = x - c, c a float within half a unit of the block's mean (from the
 * first pass). The corrected two-pass formula (Chan, Golub & LeVeque 1983)
 *   mean = c + s1/n,   M2 = s2 - s1²/n
 * is exact for any c; its rounding grows with (mean - c)²/sigma², which
 * the first pass keeps small: below ~1 where float can tell the values
 * apart at all (and where it cannot, d is an exact small multiple of the
 * spacing and so are the sums). */
static inline bn_moments block_result(double n, double inv_n, float c, double s1,
                                      double s2)
{
    bn_moments b = {n, (double)c + s1 * inv_n, s2 - s1 * s1 * inv_n};
    if (b.m2 < 0)  /* a (nearly) constant block: rounding, not data */
        b.m2 = 0;
    return b;
}

/* fin stays 0 while every v is finite and turns NaN otherwise (0·Inf and
 * 0·NaN are NaN): one fused multiply-add per vector written. */
static inline vf track_finite(vf fin, vf v) { return v_fma(v, v_zero(), fin); }
static inline int all_finite(vf fin) { return !isnan(v_sum_d(fin)); }

/* Non-temporal stores pay only for whole cache lines: a row (or NHWC
 * pixel) is streamed if it starts on a 64-byte boundary and is a multiple
 * of 16 floats long. A partial line written beside streamed ones costs a
 * read of the line first (measured: 2.1 ms instead of 1.1 for 32768 rows
 * of 196 floats, more than plain stores everywhere, 1.5 ms). */
static inline int whole_lines(const float *p, size_t len)
{
    return (uintptr_t)p % 64 == 0 && len % 16 == 0;
}

static inline void store_vec(float *p, vf v, int stream)
{
    if (stream)
        v_stream(p, v);
    else
        v_store(p, v);
}

/* While visiting row n (of `stride`) at column i: asks for the next
 * channel's row ahead.first + n/2 at column i, every other row (bn_ahead). */
static inline void prefetch_ahead(bn_ahead ahead, size_t n, size_t i, size_t stride)
{
    if (n % 2)
        return;
    size_t o = (ahead.first + n / 2) * stride + i;
    for (int j = 0; j < 3 && ahead.p[j]; j++)
        v_prefetch(ahead.p[j] + o);
}

/* Loads `width` adjacent channels (width <= VL; the rest of the lanes 0). */
static inline vf load_cols(const float *p, size_t width)
{
    return width == VL ? v_load(p) : v_load_n(p, width);
}

/* ------------------------------------------------ blocks of one channel */

/* The fixed blocks of one NCHW channel (r.rows rows of r.len values).
 * Block (n, i) covers rows [n, n + rows_per) and values [i, i + piece) of
 * each:
 *   - long rows (>= IL_MIN_LEN values: planes of 16x16 and up) go
 *     il_rows rows side by side (IL_ROWS for the moments, IL_ROWS_GRAD for
 *     the gradient sums), cut into pieces of ~2048/IL_ROWS values (il =
 *     1): the rows are then read as that many streams at once. One
 *     core reads one NCHW plane after another at ~12 GB/s, because the
 *     prefetcher starts over at every 12 KiB plane, and 8 planes side by
 *     side at ~23 GB/s (docs/performance.md, design 9);
 *   - a single long row (C = 1, or N = 1) is cut into equal pieces;
 *   - short rows are taken `rows_per` at a time. */
#if VL == 16
#define IL_ROWS 8
#else
#define IL_ROWS 4  /* 16 registers: 8 accumulators is what fits */
#endif
/* the backward reads two arrays (three with ReLU): half the rows make as
 * many streams (256x56x56 gradient sums: 9.3-10.1 ms with 4 rows, 10.4-10.9
 * with 8) */
#define IL_ROWS_GRAD (IL_ROWS / 2)
#define IL_MIN_LEN 256

typedef struct {
    size_t rows_per, piece;
    int il;
} block_plan;

static inline block_plan plan_blocks(bn_rows r, size_t il_rows)
{
    block_plan b = {1, r.len, 0};
    /* pieces of ~2048/IL_ROWS values side by side, whatever il_rows (a
     * float sum adds at most 2048/IL_ROWS/VL terms: 16, or 64 on 8 lanes),
     * or of ~2048 values along a single long row */
    size_t per = BN_FAST_BLOCK;
    if (r.len >= IL_MIN_LEN && r.rows > 1)
        b.rows_per = il_rows, b.il = 1, per = BN_FAST_BLOCK / IL_ROWS;
    else if (r.len < BN_FAST_BLOCK)
        b.rows_per = BN_FAST_BLOCK / r.len;
    if (b.il || r.len >= BN_FAST_BLOCK) {
        size_t pieces = (r.len + per - 1) / per;
        b.piece = ((r.len + pieces - 1) / pieces + 15) / 16 * 16;
    }
    return b;
}

/* ---------------------------------------------------- moments, NCHW */

/* s + Σ (x - K) over one row of len values (full vectors, then the
 * masked tail). Accumulators go in and out by value: the compiler keeps
 * them in registers (through a pointer it would keep them in memory). */
static inline vf row_sum_shifted(vf s, const float *p, size_t len, vf K)
{
    size_t i = 0;
    for (; i + VL <= len; i += VL)
        s = v_add(s, v_sub(v_load(p + i), K));
    if (i < len)
        s = v_add(s, v_keep_n(v_sub(v_load_n(p + i, len - i), K), len - i));
    return s;
}

/* Σ (x - K) over rows × len values, in float lanes: four accumulators,
 * along a row when it is long, across four rows when it is short (7x7:
 * 49 values), so that the adds do not wait for each other. */
static inline vf block_sum_shifted(const float *x, size_t rows, size_t len,
                                   size_t stride, vf K)
{
    vf s0 = v_zero(), s1 = v_zero(), s2 = v_zero(), s3 = v_zero();
    size_t n = 0;
    if (len < 4 * VL)
        for (; n + 4 <= rows; n += 4) {
            s0 = row_sum_shifted(s0, x + n * stride, len, K);
            s1 = row_sum_shifted(s1, x + (n + 1) * stride, len, K);
            s2 = row_sum_shifted(s2, x + (n + 2) * stride, len, K);
            s3 = row_sum_shifted(s3, x + (n + 3) * stride, len, K);
        }
    for (; n < rows; n++) {
        const float *p = x + n * stride;
        size_t i = 0;
        for (; i + 4 * VL <= len; i += 4 * VL) {
            s0 = v_add(s0, v_sub(v_load(p + i), K));
            s1 = v_add(s1, v_sub(v_load(p + i + VL), K));
            s2 = v_add(s2, v_sub(v_load(p + i + 2 * VL), K));
            s3 = v_add(s3, v_sub(v_load(p + i + 3 * VL), K));
        }
        s3 = row_sum_shifted(s3, p + i, len - i, K);
    }
    return v_add(v_add(s0, s1), v_add(s2, s3));
}

/* Where a block sits in its channel: its first row and column, for the
 * prefetches of `ahead` (which name the next channel's rows). */
typedef struct {
    size_t row, col;
} block_at;

/* Σ d and Σ d², d = x - c, as a pair of accumulators (by value). */
typedef struct {
    vf d, d2;
} sums2;

static inline sums2 sums2_add(sums2 s, vf d) { return (sums2){v_add(s.d, d), v_fma(d, d, s.d2)}; }

/* s + the sums over one row of len values (full vectors, then the masked
 * tail); asks for the next channel's lines meanwhile. */
static inline sums2 row_sums_centered(sums2 s, const float *p, size_t len, vf c, size_t row,
                                      size_t col, size_t stride, bn_ahead ahead)
{
    size_t i = 0;
    for (; i + VL <= len; i += VL) {
        if (ahead.p[0])
            prefetch_ahead(ahead, row, col + i, stride);
        s = sums2_add(s, v_sub(v_load(p + i), c));
    }
    if (i < len) {
        if (ahead.p[0])
            prefetch_ahead(ahead, row, col + i, stride);
        s = sums2_add(s, v_keep_n(v_sub(v_load_n(p + i, len - i), c), len - i));
    }
    return s;
}

/* Σ d and Σ d² with d = x - c over rows × len values, four accumulators
 * each, along a row or across four short rows (as block_sum_shifted). */
static inline void block_sums_centered(vf *sum_d, vf *sum_d2, const float *x,
                                       size_t rows, size_t len, size_t stride, vf c,
                                       block_at at, bn_ahead ahead)
{
    sums2 z = {v_zero(), v_zero()}, s0 = z, s1 = z, s2 = z, s3 = z;
    size_t n = 0;
    if (len < 4 * VL)
        for (; n + 4 <= rows; n += 4) {
            size_t r0 = at.row + n;
            s0 = row_sums_centered(s0, x + n * stride, len, c, r0, at.col, stride, ahead);
            s1 = row_sums_centered(s1, x + (n + 1) * stride, len, c, r0 + 1, at.col, stride, ahead);
            s2 = row_sums_centered(s2, x + (n + 2) * stride, len, c, r0 + 2, at.col, stride, ahead);
            s3 = row_sums_centered(s3, x + (n + 3) * stride, len, c, r0 + 3, at.col, stride, ahead);
        }
    for (; n < rows; n++) {
        const float *p = x + n * stride;
        size_t i = 0, row = at.row + n;
        for (; i + 4 * VL <= len; i += 4 * VL) {
            if (ahead.p[0])
                for (int j = 0; j < 4; j++)
                    prefetch_ahead(ahead, row, at.col + i + (size_t)j * VL, stride);
            s0 = sums2_add(s0, v_sub(v_load(p + i), c));
            s1 = sums2_add(s1, v_sub(v_load(p + i + VL), c));
            s2 = sums2_add(s2, v_sub(v_load(p + i + 2 * VL), c));
            s3 = sums2_add(s3, v_sub(v_load(p + i + 3 * VL), c));
        }
        s3 = row_sums_centered(s3, p + i, len - i, c, row, at.col + i, stride, ahead);
    }
    *sum_d = v_add(v_add(s0.d, s1.d), v_add(s2.d, s3.d));
    *sum_d2 = v_add(v_add(s0.d2, s1.d2), v_add(s2.d2, s3.d2));
}

/* Σ d and Σ d², d = x - c, over IL_ROWS rows × len values read side by
 * side, vector i of every row before vector i + 1 of any (one accumulator
 * pair per row: len/VL terms per float sum, 16 or 64, plan_blocks); the
 * rows' sums are added as a tree, in a fixed order. Asks for nothing
 * ahead: its rows are already as many streams. */
BN_NOINLINE static void block_sums_rows(vf *sum_d, vf *sum_d2, const float *x, size_t len,
                                        size_t stride, vf c)
{
    sums2 a[IL_ROWS];
    for (size_t j = 0; j < IL_ROWS; j++)
        a[j] = (sums2){v_zero(), v_zero()};
    size_t i = 0;
    for (; i + VL <= len; i += VL)
#pragma GCC unroll 8
        for (size_t j = 0; j < IL_ROWS; j++)
            a[j] = sums2_add(a[j], v_sub(v_load(x + j * stride + i), c));
    if (i < len)
#pragma GCC unroll 8
        for (size_t j = 0; j < IL_ROWS; j++)
            a[j] = sums2_add(a[j], v_keep_n(v_sub(v_load_n(x + j * stride + i, len - i), c),
                                            len - i));
    for (size_t h = IL_ROWS / 2; h >= 1; h /= 2)
#pragma GCC unroll 8
        for (size_t j = 0; j < h; j++)
            a[j] = (sums2){v_add(a[j].d, a[j + h].d), v_add(a[j].d2, a[j + h].d2)};
    *sum_d = a[0].d, *sum_d2 = a[0].d2;
}

/* The mean of rows × len values, rounded to float: K + Σ (x - K)/n with K
 * the first value (exact for values near K, so a large common offset costs
 * nothing). */
static float mean_shifted(const float *x, size_t rows, size_t len, size_t stride)
{
    float K = x[0];
    return (float)(K + v_sum_d(block_sum_shifted(x, rows, len, stride, v_set1(K))) *
                           (1.0 / (double)(rows * len)));
}

/* The two-pass moments of a block, both passes while it is in L1:
 * 1. its mean (mean_shifted);
 * 2. the sums of d = x - c and d², c = that mean. */
static bn_moments block_moments_two_pass(const float *x, size_t rows, size_t len,
                                         size_t stride, block_at at, bn_ahead ahead)
{
    double n = (double)(rows * len), inv_n = 1.0 / n;
    float c = mean_shifted(x, rows, len, stride);
    vf s1, s2;
    block_sums_centered(&s1, &s2, x, rows, len, stride, v_set1(c), at, ahead);
    return block_result(n, inv_n, c, v_sum_d(s1), v_sum_d(s2));
}

/* The moments of a block, in one pass where that is safe: Σ d, Σ d² with
 * d = x - shift, the shift near the block's mean (moments_nchw says which).
 * block_result's rounding grows with 1 + (mean - shift)²/var of the block;
 * if the shift turns out farther than half the block's standard deviation
 * from its mean (a jump between blocks, a first row unlike the rest), the
 * block is done again with the two-pass method. Both give the block's
 * moments to within the same few roundings; which one runs depends on the
 * data only. */
/* 1 if a block summed about a shift must be redone two-pass: its mean is
 * farther than half its standard deviation from the shift (delta = Σd/n),
 * or M2 is NaN or exactly 0. */
static inline int shift_unsafe(double delta, double n, double m2)
{
    return !(4 * delta * delta * n <= m2) || m2 == 0;
}

static bn_moments block_moments(const float *x, size_t rows, size_t len,
                                size_t stride, float shift, int il, block_at at,
                                bn_ahead ahead)
{
    double n = (double)(rows * len), inv_n = 1.0 / n;
    vf s1, s2;
    if (il && rows == IL_ROWS)
        block_sums_rows(&s1, &s2, x, len, stride, v_set1(shift));
    else
        block_sums_centered(&s1, &s2, x, rows, len, stride, v_set1(shift), at, ahead);
    double S1 = v_sum_d(s1), S2 = v_sum_d(s2), delta = S1 * inv_n;
    bn_moments b = block_result(n, inv_n, shift, S1, S2);
    bn_ahead none = {{NULL}, 0};  /* already asked for */
    if (shift_unsafe(delta, n, b.m2))
        b = block_moments_two_pass(x, rows, len, stride, at, none);
    return b;
}

/* x[N rows × HW] of one channel -> (m', mu_B, M2), blocks merged in order;
 * asks for the first half of the next channel's rows meanwhile. Each block
 * is summed once about a shift near its mean: the mean of the blocks so
 * far, or for the first block the mean of its first row. A block of short
 * rows (7x7: all 32 rows of 49 values) is then read once, plus one row,
 * instead of twice (512x7x7 fwd_train 0.26 -> 0.20 ms); a block that is a
 * piece of one long row gets the two-pass method as before (its "first
 * row" is the whole block: the same bits). */
static bn_moments moments_nchw(const float *x, bn_rows r, bn_ahead ahead)
{
    bn_moments acc = {0, 0, 0};
    block_plan b = plan_blocks(r, IL_ROWS);
    for (size_t n = 0; n < r.rows; n += b.rows_per)
        for (size_t i = 0; i < r.len; i += b.piece) {
            const float *xb = x + n * r.stride + i;
            size_t rows = min_size(b.rows_per, r.rows - n), len = min_size(b.piece, r.len - i);
            block_at at = {n, i};
            float shift = acc.n ? (float)acc.mean : mean_shifted(xb, 1, len, r.stride);
            bn_moments_merge(&acc, block_moments(xb, rows, len, r.stride, shift, b.il, at, ahead));
        }
    return acc;
}

/* ---------------------------------------------------- moments, NHWC */

/* Channels-last sums by columns: used when C is at most one vector, and to
 * redo a column of a row sweep whose shift was unsafe (row_block_moments).
 * Σ d and Σ d² down np rows of `width` adjacent channels, d = x - c (c per
 * lane), four rows at a time into four accumulators each. If next is not
 * NULL, asks for the same positions of the next pixel block meanwhile: the
 * column sweeps of one block then bring in all of the next, line by line
 * (DRAM sees the next block streamed, not a strided column). */
static inline void column_sums_centered(vf *sum_d, vf *sum_d2, const float *x, size_t np,
                                        size_t width, size_t stride, vf c, const float *next)
{
    vf a[4] = {v_zero(), v_zero(), v_zero(), v_zero()};
    vf q[4] = {v_zero(), v_zero(), v_zero(), v_zero()};
    size_t p = 0;
    for (; p + 4 <= np; p += 4)
        for (int j = 0; j < 4; j++) {
            if (next)
                v_prefetch(next + (p + (size_t)j) * stride);
            vf d = v_sub(load_cols(x + (p + (size_t)j) * stride, width), c);
            a[j] = v_add(a[j], d), q[j] = v_fma(d, d, q[j]);
        }
    for (; p < np; p++) {
        if (next)
            v_prefetch(next + p * stride);
        vf d = v_sub(load_cols(x + p * stride, width), c);
        a[0] = v_add(a[0], d), q[0] = v_fma(d, d, q[0]);
    }
    *sum_d = v_add(v_add(a[0], a[1]), v_add(a[2], a[3]));
    *sum_d2 = v_add(v_add(q[0], q[1]), v_add(q[2], q[3]));
}

/* The moments of `width` adjacent channels over the np pixels of one block
 * (rows of x, `stride` apart), merged into mm[2·l] (mean), mm[2·l + 1] (M2)
 * for l < width, which hold the moments of the n_before pixels already
 * seen. The lanes are channels; the method is block_moments': one pass
 * about the mean so far where that is safe in every lane, else (and for
 * the first block) two passes, the first finding the block's mean. */
static void column_block_moments(double *mm, size_t n_before, const float *x,
                                 size_t np, size_t width, size_t stride, const float *next)
{
    double n = (double)np, inv_n = 1.0 / n;
    float c[VL] = {0};
    for (size_t l = 0; l < width && n_before; l++)
        c[l] = (float)mm[2 * l];
    vf s1, s2;
    double sd[VL], sq[VL];
    int safe = n_before > 0;
    if (safe) {
        column_sums_centered(&s1, &s2, x, np, width, stride, v_load(c), next);
        v_to_double(sd, s1);
        v_to_double(sq, s2);
        for (size_t l = 0; l < width; l++) {
            bn_moments b = block_result(n, inv_n, c[l], sd[l], sq[l]);
            double delta = sd[l] * inv_n;
            safe &= 4 * delta * delta * n <= b.m2 && b.m2 != 0;
        }
    }
    if (!safe) {
        /* pass 1: each lane's mean, shifted by its first value */
        vf K = load_cols(x, width), t0 = v_zero(), t1 = v_zero(), t2 = v_zero(), t3 = v_zero();
        size_t p = 0;
        for (; p + 4 <= np; p += 4) {
            if (next && !safe && n_before == 0)
                for (size_t j = 0; j < 4; j++)
                    v_prefetch(next + (p + j) * stride);
            t0 = v_add(t0, v_sub(load_cols(x + p * stride, width), K));
            t1 = v_add(t1, v_sub(load_cols(x + (p + 1) * stride, width), K));
            t2 = v_add(t2, v_sub(load_cols(x + (p + 2) * stride, width), K));
            t3 = v_add(t3, v_sub(load_cols(x + (p + 3) * stride, width), K));
        }
        for (; p < np; p++)
            t0 = v_add(t0, v_sub(load_cols(x + p * stride, width), K));
        double k[VL], t[VL];
        v_to_double(k, K);
        v_to_double(t, v_add(v_add(t0, t1), v_add(t2, t3)));
        for (int l = 0; l < VL; l++)
            c[l] = (float)(k[l] + t[l] * inv_n);
        /* pass 2: about that mean */
        column_sums_centered(&s1, &s2, x, np, width, stride, v_load(c), NULL);
        v_to_double(sd, s1);
        v_to_double(sq, s2);
    }
    for (size_t l = 0; l < width; l++) {
        bn_moments acc = {(double)n_before, mm[2 * l], mm[2 * l + 1]};
        bn_moments_merge(&acc, block_result(n, inv_n, c[l], sd[l], sq[l]));
        mm[2 * l] = acc.mean, mm[2 * l + 1] = acc.m2;
    }
}

/* Channels per row sweep (below): its lane sums, 4 accumulators × 2
 * quantities × 256 channels = 8 KiB, stay in L1. */
#define ROW_SWEEP 256
/* Row sweeps ask for the rows this many bytes ahead into L2: reading four
 * rows side by side (1 KiB apart at C = 256) defeats the hardware
 * prefetcher (a plain loop of that shape: 11 GB/s from DRAM; 18.5 with
 * these prefetches; 16 KiB measured as good as 4 or 64 KiB). */
#define PF_BYTES 16384

/* Σ d (and Σ d² if sum_d2) per channel over np rows of `width` adjacent
 * channels (width <= ROW_SWEEP), d = x - shift[j], into sum_d[j],
 * sum_d2[j] (arrays padded to whole vectors; the padding lanes get 0).
 * Memory is read in address order, four rows at a time: with all channels
 * (width = stride) one sequential stream, which the hardware prefetcher
 * follows, where 16-channel column sweeps of a block ran at ~10 GB/s from
 * DRAM. The lane sums live in L1 (an array: in registers they would cap
 * C); four rows are added as a tree, (d0 + d1) + (d2 + d3), before they
 * meet the sum, so each float sum still adds at most 32 terms (of four
 * values each) per block, and the sums cost one load and store per four
 * vectors read. Rows up to pf_rows (from x) are asked for PF_BYTES ahead. */
static void row_sweep_sums(float *sum_d, float *sum_d2, const float *x, size_t np,
                           size_t width, size_t stride, const float *shift, size_t pf_rows)
{
    size_t dist = (PF_BYTES / (stride * sizeof(float)) + 3) / 4 * 4;
    size_t full = width / VL * VL, w = width - full, wv = full + (w ? VL : 0);
    for (size_t j = 0; j < wv; j += VL) {
        v_store(sum_d + j, v_zero());
        if (sum_d2)
            v_store(sum_d2 + j, v_zero());
    }
    size_t p = 0;
    for (; p + 4 <= np; p += 4) {
        const float *x0 = x + p * stride, *x1 = x0 + stride, *x2 = x1 + stride,
                    *x3 = x2 + stride;
        if (p + dist + 4 <= pf_rows)
            for (size_t i = 0; i < 4; i++)
                for (size_t j = 0; j < width; j += VL)
                    v_prefetch(x + (p + dist + i) * stride + j);
        for (size_t j = 0; j < wv; j += VL) {
            size_t n = j < full ? VL : w;  /* lanes past w: 0 - 0 */
            vf c = load_cols(shift + j, n);
            vf d0 = v_sub(load_cols(x0 + j, n), c), d1 = v_sub(load_cols(x1 + j, n), c);
            vf d2 = v_sub(load_cols(x2 + j, n), c), d3 = v_sub(load_cols(x3 + j, n), c);
            v_store(sum_d + j, v_add(v_load(sum_d + j), v_add(v_add(d0, d1), v_add(d2, d3))));
            if (sum_d2)
                v_store(sum_d2 + j, v_add(v_load(sum_d2 + j),
                                          v_add(v_fma(d0, d0, v_mul(d1, d1)),
                                                v_fma(d2, d2, v_mul(d3, d3)))));
        }
    }
    for (; p < np; p++)
        for (size_t j = 0; j < wv; j += VL) {
            size_t n = j < full ? VL : w;
            vf d = v_sub(load_cols(x + p * stride + j, n), load_cols(shift + j, n));
            v_store(sum_d + j, v_add(v_load(sum_d + j), d));
            if (sum_d2)
                v_store(sum_d2 + j, v_fma(d, d, v_load(sum_d2 + j)));
        }
}

/* mm[2·l], mm[2·l + 1] (the moments of n_before pixels) += a block's
 * block_result, for l < width. */
static void merge_lanes(double *mm, size_t n_before, double n, double inv_n,
                        const float *c, const float *sd, const float *sq, size_t width)
{
    for (size_t l = 0; l < width; l++) {
        bn_moments acc = {(double)n_before, mm[2 * l], mm[2 * l + 1]};
        bn_moments_merge(&acc, block_result(n, inv_n, c[l], sd[l], sq[l]));
        mm[2 * l] = acc.mean, mm[2 * l + 1] = acc.m2;
    }
}

/* One block of np pixels × width channels (width <= ROW_SWEEP), merged
 * into mm: the method of column_block_moments, with the sums made by row
 * sweeps. A chunk's first block: two sweeps, the first for the block's
 * mean (shifted by its first pixel), the second about it (the block is in
 * L2). Later blocks: one sweep about the mean so far; a column of VL
 * channels where that shift is unsafe (rare) is handed to
 * column_block_moments, which sums it again, checks again and does the two
 * passes where the shift is unsafe (a borderline case may fall either way:
 * by the data alone, so the same way for any threads or groups). */
static void row_block_moments(double *mm, size_t n_before, const float *x, size_t np,
                              size_t width, size_t stride, size_t pf_rows)
{
    _Alignas(64) float c[ROW_SWEEP + VL] = {0}, sd[ROW_SWEEP + VL], sq[ROW_SWEEP + VL];
    double n = (double)np, inv_n = 1.0 / n;
    if (n_before == 0) {
        for (size_t l = 0; l < width; l++)
            c[l] = x[l];
        row_sweep_sums(sd, NULL, x, np, width, stride, c, pf_rows);
        for (size_t l = 0; l < width; l++)
            c[l] = (float)((double)c[l] + (double)sd[l] * inv_n);
        row_sweep_sums(sd, sq, x, np, width, stride, c, 0);
        merge_lanes(mm, 0, n, inv_n, c, sd, sq, width);
        return;
    }
    for (size_t l = 0; l < width; l++)
        c[l] = (float)mm[2 * l];
    row_sweep_sums(sd, sq, x, np, width, stride, c, pf_rows);
    for (size_t j = 0; j < width; j += VL) {
        size_t w = min_size(VL, width - j);
        int safe = 1;
        for (size_t l = j; l < j + w; l++) {
            bn_moments b = block_result(n, inv_n, c[l], sd[l], sq[l]);
            double delta = sd[l] * inv_n;
            safe &= 4 * delta * delta * n <= b.m2 && b.m2 != 0;
        }
        if (safe)
            merge_lanes(mm + 2 * j, n_before, n, inv_n, c + j, sd + j, sq + j, w);
        else
            column_block_moments(mm + 2 * j, n_before, x + j, np, w, stride, NULL);
    }
}

/* x[m' pixels][stride], channels [0, r.len) of each -> per-channel moments
 * (mean, M2 in mm[2·j], mm[2·j + 1]; the count is r.rows). Pixel blocks in
 * order; within a block, row sweeps of up to ROW_SWEEP channels. One read
 * of x from memory (the redo of a block, when there is one, hits L2). */
static void moments_nhwc(double *mm, const float *x, bn_rows r)
{
    for (size_t j = 0; j < 2 * r.len; j++)
        mm[j] = 0;
    for (size_t p0 = 0; p0 < r.rows; p0 += BN_FAST_PIXELS) {
        size_t np = min_size(BN_FAST_PIXELS, r.rows - p0);
        if (r.stride <= VL) {
            /* C <= one vector: a column, in registers, as fast as it gets
             * (row sweeps: 20% slower at C = 16). Chosen by C, never by
             * the group of channels: the same arithmetic for any threads. */
            int more = p0 + np + np <= r.rows;  /* a next block as tall as this one */
            column_block_moments(mm, p0, x + p0 * r.stride, np, r.len, r.stride,
                                 more ? x + (p0 + np) * r.stride : NULL);
            continue;
        }
        for (size_t j = 0; j < r.len; j += ROW_SWEEP)
            row_block_moments(mm + 2 * j, p0, x + p0 * r.stride + j, np,
                              min_size(ROW_SWEEP, r.len - j), r.stride, r.rows - p0);
    }
}

/* ------------------------------------------------ affine (normalize) */

/* y[i] = a·(x[i] - center) + k, then max(0, ·) if relu, for len values. */
static inline vf affine_vec(vf x, vf center, vf a, vf k) { return v_fma(v_sub(x, center), a, k); }

static int affine_nchw(float *y, const float *x, bn_rows r, bn_coefs cf,
                       int relu, int stream, bn_ahead ahead)
{
    vf center = v_set1(cf.center[0]), a = v_set1(cf.a[0]), k = v_set1(cf.k[0]);
    vf fin = v_zero();
    for (size_t n = 0; n < r.rows; n++) {
        const float *xs = x + n * r.stride;
        float *ys = y + n * r.stride;
        int st = stream && whole_lines(ys, r.len);
        size_t i = 0;
        for (; i + VL <= r.len; i += VL) {
            prefetch_ahead(ahead, n, i, r.stride);
            vf v = affine_vec(v_load(xs + i), center, a, k);
            fin = track_finite(fin, v);
            store_vec(ys + i, relu ? v_relu(v) : v, st);
        }
        if (i < r.len) {
            size_t w = r.len - i;
            prefetch_ahead(ahead, n, i, r.stride);
            vf v = affine_vec(v_load_n(xs + i, w), center, a, k);
            fin = track_finite(fin, v_keep_n(v, w));
            v_store_n(ys + i, relu ? v_relu(v) : v, w);
        }
    }
    return all_finite(fin);
}

/* NCHW output (inference, and training with small planes) over values
 * [o0, o1) of the whole tensor, in memory order: the N·C planes of HW values follow each other, plane q of channel
 * q % C. Vectors run straight across plane boundaries (HW >= VL: a vector
 * meets at most two planes; its lanes take their plane's coefficients, a
 * blend), so that there are no per-plane calls or tails, and every vector
 * is a whole aligned one when o0 is: rows of 49 or 196 values are not whole
 * cache lines, but a run of planes is, and it can be streamed (a plane at a
 * time it had to be written with plain stores, read for ownership first:
 * a third DRAM pass). */
static int affine_planes(float *y, const float *x, size_t o0, size_t o1, size_t HW,
                         size_t C, bn_coefs cf, int relu, int stream)
{
    size_t b = (o0 / HW + 1) * HW, c = (o0 / HW) % C;  /* the plane's end, channel */
    vf ce = v_set1(cf.center[c]), a = v_set1(cf.a[c]), k = v_set1(cf.k[c]), fin = v_zero();
    int st = stream && whole_lines(y + o0, 0);
    size_t o = o0;
    for (;;) {
        size_t end = min_size(b, o1);
        for (; o + VL <= end; o += VL) {  /* the vectors inside this plane */
            vf v = affine_vec(v_load(x + o), ce, a, k);
            fin = track_finite(fin, v);
            store_vec(y + o, relu ? v_relu(v) : v, st);
        }
        if (o >= o1)
            break;
        /* a vector across the plane's end (its first n lanes are this
         * plane's), or at the end of the range (w < VL lanes) */
        size_t n = b - o, w = min_size(VL, o1 - o);
        vf vc = ce, va = a, vk = k;
        if (o + w > b || n == 0) {  /* the next plane starts in it (or at o) */
            c = c + 1 == C ? 0 : c + 1, b += HW;
            ce = v_set1(cf.center[c]), a = v_set1(cf.a[c]), k = v_set1(cf.k[c]);
            vc = v_first(n, vc, ce), va = v_first(n, va, a), vk = v_first(n, vk, k);
            if (n == 0)
                continue;
        }
        vf v = affine_vec(w == VL ? v_load(x + o) : v_load_n(x + o, w), vc, va, vk);
        if (w == VL) {
            fin = track_finite(fin, v);
            store_vec(y + o, relu ? v_relu(v) : v, st);
        } else {
            fin = track_finite(fin, v_keep_n(v, w));
            v_store_n(y + o, relu ? v_relu(v) : v, w);
        }
        o += w;
    }
    return all_finite(fin);
}

/* The same on channels-last rows: lane l of vector j is channel j + l. */
static int affine_nhwc(float *y, const float *x, bn_rows r, bn_coefs cf,
                       int relu, int stream)
{
    vf fin = v_zero();
    for (size_t p = 0; p < r.rows; p++) {
        const float *xs = x + p * r.stride;
        float *ys = y + p * r.stride;
        int st = stream && whole_lines(ys, r.len);
        size_t j = 0;
        for (; j + VL <= r.len; j += VL) {
            vf v = affine_vec(v_load(xs + j), v_load(cf.center + j), v_load(cf.a + j),
                              v_load(cf.k + j));
            fin = track_finite(fin, v);
            store_vec(ys + j, relu ? v_relu(v) : v, st);
        }
        if (j < r.len) {
            size_t w = r.len - j;
            vf v = affine_vec(v_load_n(xs + j, w), v_load_n(cf.center + j, w),
                              v_load_n(cf.a + j, w), v_load_n(cf.k + j, w));
            fin = track_finite(fin, v_keep_n(v, w));
            v_store_n(ys + j, relu ? v_relu(v) : v, w);
        }
    }
    return all_finite(fin);
}

/* ------------------------------------------------------ gradient sums */

/* dz: dy, or dy where y > 0 (the ReLU passes the gradient where it passed x) */
static inline vf dz_vec(const float *dy, const float *y, size_t i)
{
    vf g = v_load(dy + i);
    return y ? v_where_pos(v_load(y + i), g) : g;
}
static inline vf dz_vec_n(const float *dy, const float *y, size_t i, size_t w)
{
    vf g = v_load_n(dy + i, w);
    return y ? v_where_pos(v_load_n(y + i, w), g) : g;
}

/* The three sums of one channel (or of each channel, NHWC) in float lanes,
 * and the finite-tracker of the dx written (inference backward). The
 * kernels keep four of these, named a0..a3, and pass them by value: the
 * compiler then keeps them all in registers (through pointers, or as an
 * array, it would keep them in memory: measured 30 instead of 45 GB/s). */
typedef struct {
    vf dz, dzxhat, xhat, fin;
} grad_acc;

static inline grad_acc grad_acc_zero(void)
{
    return (grad_acc){v_zero(), v_zero(), v_zero(), v_zero()};
}

/* (a0 + a1) + (a2 + a3), lane by lane, in a fixed order */
static inline grad_acc grad_acc_sum4(grad_acc a0, grad_acc a1, grad_acc a2, grad_acc a3)
{
    return (grad_acc){v_add(v_add(a0.dz, a1.dz), v_add(a2.dz, a3.dz)),
                      v_add(v_add(a0.dzxhat, a1.dzxhat), v_add(a2.dzxhat, a3.dzxhat)),
                      v_add(v_add(a0.xhat, a1.xhat), v_add(a2.xhat, a3.xhat)),
                      v_add(v_add(a0.fin, a1.fin), v_add(a2.fin, a3.fin))};
}

/* g + one vector of gradient sums: Σ dz, Σ dz·xhat and Σ xhat with xhat =
 * (x - center)·s (O(1) whatever the scale of x: no product underflows);
 * with dx, also dx = a·dz. */
static inline grad_acc grad_vec(grad_acc g, float *dx, vf dz, vf x, vf center, vf s,
                                vf a, int stream)
{
    vf xhat = v_mul(v_sub(x, center), s);
    g.dz = v_add(g.dz, dz);
    g.dzxhat = v_fma(dz, xhat, g.dzxhat);
    g.xhat = v_add(g.xhat, xhat);
    if (dx) {
        vf v = v_mul(a, dz);
        g.fin = track_finite(g.fin, v);
        store_vec(dx, v, stream);
    }
    return g;
}

/* The same for a partial vector (w < VL values at o): lanes past w add
 * nothing and are not stored. */
static inline grad_acc grad_vec_n(grad_acc g, float *dx, const float *dy, const float *y,
                                  const float *x, size_t o, size_t w, vf center, vf s, vf a)
{
    vf dz = dz_vec_n(dy, y, o, w);
    vf xhat = v_keep_n(v_mul(v_sub(v_load_n(x + o, w), center), s), w);
    g.dz = v_add(g.dz, dz);
    g.dzxhat = v_fma(dz, xhat, g.dzxhat);
    g.xhat = v_add(g.xhat, xhat);
    if (dx) {
        vf v = v_mul(a, dz);
        g.fin = track_finite(g.fin, v);
        v_store_n(dx + o, v, w);
    }
    return g;
}

/* The vector at offset q of one NCHW row: a step of grad_block. */
#define GRAD_AT(acc, q, col)                                                   \
    do {                                                                       \
        if (ahead.p[0])                                                        \
            prefetch_ahead(ahead, at.row + n, (col), stride);                  \
        acc = grad_vec(acc, dx ? dx + (q) : NULL, dz_vec(dy, y, (q)),          \
                       v_load(x + (q)), center, s, a, st);                     \
    } while (0)

/* g + all of row n of a block (full vectors, then the tail). */
static inline grad_acc grad_row(grad_acc g, float *dx, const float *dy, const float *y,
                                const float *x, size_t n, size_t len, size_t stride,
                                vf center, vf s, vf a, int stream, block_at at,
                                bn_ahead ahead)
{
    size_t o = n * stride, i = 0;
    int st = stream && dx && whole_lines(dx + o, len);
    for (; i + VL <= len; i += VL)
        GRAD_AT(g, o + i, at.col + i);
    if (i < len) {
        if (ahead.p[0])
            prefetch_ahead(ahead, at.row + n, at.col + i, stride);
        g = grad_vec_n(g, dx, dy, y, x, o + i, len - i, center, s, a);
    }
    return g;
}

/* Adds a block's lane sums to the double sums[3]; returns the tracker. */
static inline vf grad_block_end(double sums[3], grad_acc a0, grad_acc a1, grad_acc a2,
                                grad_acc a3)
{
    grad_acc t = grad_acc_sum4(a0, a1, a2, a3);
    sums[0] += v_sum_d(t.dz);
    sums[1] += v_sum_d(t.dzxhat);
    sums[2] += v_sum_d(t.xhat);
    return t.fin;
}

/* One block of one NCHW channel (rows × len values, at `at` in it): the
 * sums in float lanes, added to the double sums[3]; asks for the next
 * channel's lines meanwhile (bn_ahead). Returns the finite-tracker. Long
 * rows go four vectors at a time, short rows (len < 4 vectors: 7x7) four
 * rows at a time; two functions, so that each keeps its accumulators in
 * registers. */
BN_NOINLINE static vf grad_block_long(double sums[3], float *dx, const float *dy,
                                      const float *y, const float *x, size_t rows,
                                      size_t len, size_t stride, vf center, vf s, vf a,
                                      int stream, block_at at, bn_ahead ahead)
{
    grad_acc a0 = grad_acc_zero(), a1 = a0, a2 = a0, a3 = a0;
    for (size_t n = 0; n < rows; n++) {
        size_t o = n * stride, i = 0;
        int st = stream && dx && whole_lines(dx + o, len);
        for (; i + 4 * VL <= len; i += 4 * VL) {
            GRAD_AT(a0, o + i, at.col + i);
            GRAD_AT(a1, o + i + VL, at.col + i + VL);
            GRAD_AT(a2, o + i + 2 * VL, at.col + i + 2 * VL);
            GRAD_AT(a3, o + i + 3 * VL, at.col + i + 3 * VL);
        }
        for (; i + VL <= len; i += VL)
            GRAD_AT(a0, o + i, at.col + i);
        if (i < len)
            a3 = grad_vec_n(a3, dx, dy, y, x, o + i, len - i, center, s, a);
    }
    return grad_block_end(sums, a0, a1, a2, a3);
}

BN_NOINLINE static vf grad_block_short(double sums[3], float *dx, const float *dy,
                                       const float *y, const float *x, size_t rows,
                                       size_t len, size_t stride, vf center, vf s, vf a,
                                       int stream, block_at at, bn_ahead ahead)
{
    grad_acc a0 = grad_acc_zero(), a1 = a0, a2 = a0, a3 = a0;
    size_t n = 0;
    for (; n + 4 <= rows; n += 4) {
        a0 = grad_row(a0, dx, dy, y, x, n, len, stride, center, s, a, stream, at, ahead);
        a1 = grad_row(a1, dx, dy, y, x, n + 1, len, stride, center, s, a, stream, at, ahead);
        a2 = grad_row(a2, dx, dy, y, x, n + 2, len, stride, center, s, a, stream, at, ahead);
        a3 = grad_row(a3, dx, dy, y, x, n + 3, len, stride, center, s, a, stream, at, ahead);
    }
    for (; n < rows; n++)
        a0 = grad_row(a0, dx, dy, y, x, n, len, stride, center, s, a, stream, at, ahead);
    return grad_block_end(sums, a0, a1, a2, a3);
}

#undef GRAD_AT

/* The training backward's sums (no dx) without prefetches, as the groups
 * of small planes in cache ask for them: the same sums as grad_block_short
 * and grad_block_long, vector for vector into the same accumulators (so
 * the same bits), in lean loops. The general kernels test for prefetches
 * and dx at every vector and recompute the tail's mask at every row; on
 * rows of 49 values that was a sixth of the op (512x7x7 bwd 0.36 -> 0.30
 * ms). (With the prefetches of the groups beyond the cache, a lean copy
 * asking for the next channel's rows once per row measured no better,
 * 1024x14x14 bwd_relu worse: 8.3 vs 7.4 ms.) */
static inline grad_acc grad_sum_vec(grad_acc g, vf dz, vf xhat)
{
    g.dz = v_add(g.dz, dz);
    g.dzxhat = v_fma(dz, xhat, g.dzxhat);
    g.xhat = v_add(g.xhat, xhat);
    return g;
}

/* vector k of a row (o: the row's offset); the tail (w lanes) at k = nf */
#define SUM_AT(acc, q)                                                         \
    acc = grad_sum_vec(acc, dz_vec(dy, y, (q)), v_mul(v_sub(v_load(x + (q)), center), s))
#define SUM_TAIL(acc, q)                                                       \
    acc = grad_sum_vec(acc, dz_vec_n(dy, y, (q), w),                            \
                       v_keep_n(v_mul(v_sub(v_load_n(x + (q), w), center), s), w))

/* one row of nf vectors and a tail of w values into g */
static inline grad_acc grad_sum_row(grad_acc g, const float *dy, const float *y,
                                    const float *x, size_t o, size_t nf, size_t w,
                                    vf center, vf s)
{
    for (size_t k = 0; k < nf; k++)
        SUM_AT(g, o + k * VL);
    if (w)
        SUM_TAIL(g, o + nf * VL);
    return g;
}

/* rows shorter than 4 vectors: row n into a(n % 4), four rows at a time,
 * the rest into a0, as grad_block_short */
BN_NOINLINE static void grad_sums_short(double sums[3], const float *dy, const float *y,
                                        const float *x, size_t rows, size_t len,
                                        size_t stride, vf center, vf s)
{
    grad_acc a0 = grad_acc_zero(), a1 = a0, a2 = a0, a3 = a0;
    size_t nf = len / VL, w = len - nf * VL, n = 0;
    for (; n + 4 <= rows; n += 4) {
        a0 = grad_sum_row(a0, dy, y, x, n * stride, nf, w, center, s);
        a1 = grad_sum_row(a1, dy, y, x, (n + 1) * stride, nf, w, center, s);
        a2 = grad_sum_row(a2, dy, y, x, (n + 2) * stride, nf, w, center, s);
        a3 = grad_sum_row(a3, dy, y, x, (n + 3) * stride, nf, w, center, s);
    }
    for (; n < rows; n++)
        a0 = grad_sum_row(a0, dy, y, x, n * stride, nf, w, center, s);
    grad_block_end(sums, a0, a1, a2, a3);
}

/* rows of 4 vectors or more: vector i of a row into a(i % 4) in steps of
 * four, the rest into a0, the tail into a3, as grad_block_long */
BN_NOINLINE static void grad_sums_long(double sums[3], const float *dy, const float *y,
                                       const float *x, size_t rows, size_t len,
                                       size_t stride, vf center, vf s)
{
    grad_acc a0 = grad_acc_zero(), a1 = a0, a2 = a0, a3 = a0;
    size_t w = len % VL;
    for (size_t n = 0; n < rows; n++) {
        size_t o = n * stride, i = 0;
        for (; i + 4 * VL <= len; i += 4 * VL) {
            SUM_AT(a0, o + i);
            SUM_AT(a1, o + i + VL);
            SUM_AT(a2, o + i + 2 * VL);
            SUM_AT(a3, o + i + 3 * VL);
        }
        for (; i + VL <= len; i += VL)
            SUM_AT(a0, o + i);
        if (w)
            SUM_TAIL(a3, o + i);
    }
    grad_block_end(sums, a0, a1, a2, a3);
}
/* long rows, IL_ROWS of them side by side (block_plan): vector i of every
 * row before vector i + 1 of any, row j into a[j], the rows' sums added
 * as a tree in a fixed order (as block_sums_rows; nothing asked for
 * ahead, as there). Inlined twice, with
 * and without y, so that the loop has no test for y and keeps its 24
 * accumulators in registers. */
static inline __attribute__((always_inline)) void grad_sums_rows_(
    double sums[3], const float *dy, const float *y, const float *x, size_t len,
    size_t stride, vf center, vf s)
{
    vf g[IL_ROWS_GRAD], gx[IL_ROWS_GRAD], xh[IL_ROWS_GRAD];  /* Σ dz, Σ dz·xhat, Σ xhat of row j */
    for (size_t j = 0; j < IL_ROWS_GRAD; j++)
        g[j] = gx[j] = xh[j] = v_zero();
    size_t i = 0, w = len % VL;
    for (; i + VL <= len; i += VL)
#pragma GCC unroll 8
        for (size_t j = 0; j < IL_ROWS_GRAD; j++) {
            vf dz = dz_vec(dy, y, j * stride + i);
            vf xhat = v_mul(v_sub(v_load(x + j * stride + i), center), s);
            g[j] = v_add(g[j], dz), gx[j] = v_fma(dz, xhat, gx[j]), xh[j] = v_add(xh[j], xhat);
        }
    if (w)
#pragma GCC unroll 8
        for (size_t j = 0; j < IL_ROWS_GRAD; j++) {
            vf dz = dz_vec_n(dy, y, j * stride + i, w);
            vf xhat = v_keep_n(v_mul(v_sub(v_load_n(x + j * stride + i, w), center), s), w);
            g[j] = v_add(g[j], dz), gx[j] = v_fma(dz, xhat, gx[j]), xh[j] = v_add(xh[j], xhat);
        }
    for (size_t h = IL_ROWS_GRAD / 2; h >= 1; h /= 2)
#pragma GCC unroll 8
        for (size_t j = 0; j < h; j++)
            g[j] = v_add(g[j], g[j + h]), gx[j] = v_add(gx[j], gx[j + h]),
            xh[j] = v_add(xh[j], xh[j + h]);
    sums[0] += v_sum_d(g[0]);
    sums[1] += v_sum_d(gx[0]);
    sums[2] += v_sum_d(xh[0]);
}

BN_NOINLINE static void grad_sums_rows(double sums[3], const float *dy, const float *x,
                                       size_t len, size_t stride, vf center, vf s)
{
    grad_sums_rows_(sums, dy, NULL, x, len, stride, center, s);
}

BN_NOINLINE static void grad_sums_rows_relu(double sums[3], const float *dy, const float *y,
                                            const float *x, size_t len, size_t stride,
                                            vf center, vf s)
{
    grad_sums_rows_(sums, dy, y, x, len, stride, center, s);
}
#undef SUM_AT
#undef SUM_TAIL

static inline vf grad_block(double sums[3], float *dx, const float *dy, const float *y,
                            const float *x, size_t rows, size_t len, size_t stride,
                            vf center, vf s, vf a, int stream, int il, block_at at,
                            bn_ahead ahead)
{
    if (!dx && il && rows == IL_ROWS_GRAD) {
        if (y)
            grad_sums_rows_relu(sums, dy, y, x, len, stride, center, s);
        else
            grad_sums_rows(sums, dy, x, len, stride, center, s);
        return v_zero();
    }
    if (!dx && !ahead.p[0]) {
        (len < 4 * VL ? grad_sums_short : grad_sums_long)(sums, dy, y, x, rows, len, stride,
                                                           center, s);
        return v_zero();
    }
    return (len < 4 * VL ? grad_block_short : grad_block_long)(
        sums, dx, dy, y, x, rows, len, stride, center, s, a, stream, at, ahead);
}

static int grad_sums_nchw(double *sums, float *dx, const float *dy, const float *y,
                          const float *x, bn_rows r, bn_coefs cf, int stream,
                          bn_ahead ahead)
{
    vf center = v_set1(cf.center[0]), s = v_set1(cf.b[0]);
    vf a = v_set1(dx ? cf.a[0] : 0.0f), fin = v_zero();
    block_plan b = plan_blocks(r, IL_ROWS_GRAD);
    sums[0] = sums[1] = sums[2] = 0;
    for (size_t n = 0; n < r.rows; n += b.rows_per)
        for (size_t i = 0; i < r.len; i += b.piece) {
            size_t o = n * r.stride + i;
            block_at at = {n, i};
            fin = v_add(fin, grad_block(sums, dx ? dx + o : NULL, dy + o, y ? y + o : NULL,
                                        x + o, min_size(b.rows_per, r.rows - n),
                                        min_size(b.piece, r.len - i), r.stride, center, s,
                                        a, stream, b.il, at, ahead));
        }
    return all_finite(fin);
}

/* Channels-last gradient sums by row sweeps, as moments_nhwc (see
 * row_sweep_sums for why): per block of BN_FAST_PIXELS pixels and per
 * ROW_SWEEP channels, four rows at a time in address order, their values
 * added as a tree, (v0 + v1) + (v2 + v3), into lane sums in L1 (at most 32
 * terms per float sum), then into sums[3·j + 0..2] in double. Inference
 * backward writes dx = a·dz in the same pass. */
static inline vf dz_cols(const float *dy, const float *y, size_t o, size_t n)
{
    vf g = load_cols(dy + o, n);
    return y ? v_where_pos(load_cols(y + o, n), g) : g;
}

/* Four rows (o, o + rs, ...) of n <= VL channels (from channel j of the
 * coefficients; lanes past n are 0): t = the tree sums of dz, dz·xhat and
 * xhat; with dx, dx = a·dz written. Returns the finite-tracker. */
static inline vf grad_tree4(vf t[3], float *dx, const float *dy, const float *y,
                            const float *x, size_t o, size_t rs, size_t n, bn_coefs cf,
                            size_t j, int st, vf fin)
{
    vf c = load_cols(cf.center + j, n), sc = load_cols(cf.b + j, n);
    vf dz[4], xh[4];
    for (size_t i = 0; i < 4; i++) {
        dz[i] = dz_cols(dy, y, o + i * rs, n);
        xh[i] = v_mul(v_sub(load_cols(x + o + i * rs, n), c), sc);
    }
    if (dx) {
        vf a = load_cols(cf.a + j, n);
        for (size_t i = 0; i < 4; i++) {
            vf v = v_mul(a, dz[i]);
            fin = track_finite(fin, v);
            if (n == VL)
                store_vec(dx + o + i * rs, v, st);
            else
                v_store_n(dx + o + i * rs, v, n);
        }
    }
    t[0] = v_add(v_add(dz[0], dz[1]), v_add(dz[2], dz[3]));
    t[1] = v_add(v_fma(dz[0], xh[0], v_mul(dz[1], xh[1])), v_fma(dz[2], xh[2], v_mul(dz[3], xh[3])));
    t[2] = v_add(v_add(xh[0], xh[1]), v_add(xh[2], xh[3]));
    return fin;
}

static int grad_sums_nhwc(double *sums, float *dx, const float *dy, const float *y,
                          const float *x, bn_rows r, bn_coefs cf, int stream)
{
    _Alignas(64) float acc[3][ROW_SWEEP];  /* Σ dz, Σ dz·xhat, Σ xhat */
    vf fin = v_zero();
    size_t rs = r.stride, dist = (PF_BYTES / (rs * sizeof(float)) + 3) / 4 * 4;
    /* every row streams if the first does (rows are a multiple of 16 apart) */
    int st = stream && dx && whole_lines(dx, r.len) && rs % 16 == 0;
    for (size_t j = 0; j < 3 * r.len; j++)
        sums[j] = 0;
    for (size_t p0 = 0; p0 < r.rows; p0 += BN_FAST_PIXELS) {
        size_t np = min_size(BN_FAST_PIXELS, r.rows - p0);
        for (size_t j0 = 0; j0 < r.len; j0 += ROW_SWEEP) {
            size_t width = min_size(ROW_SWEEP, r.len - j0), full = width / VL * VL;
            size_t w = width - full, wv = full + (w ? VL : 0);
            for (size_t j = 0; j < wv; j += VL)
                v_store(acc[0] + j, v_zero()), v_store(acc[1] + j, v_zero()),
                    v_store(acc[2] + j, v_zero());
            size_t base = p0 * rs + j0, p = 0;
            vf r0 = v_zero(), r1 = v_zero(), r2 = v_zero();
            for (; p + 4 <= np; p += 4) {
                if (p0 + p + dist + 4 <= r.rows)  /* the rows ahead, into L2 */
                    for (size_t i = 0; i < 4; i++)
                        for (size_t j = 0; j < width; j += VL) {
                            size_t o = base + (p + dist + i) * rs + j;
                            v_prefetch(dy + o), v_prefetch(x + o);
                            if (y)
                                v_prefetch(y + o);
                        }
                if (wv == VL) {  /* one vector of channels: sums in registers */
                    vf t[3];
                    fin = grad_tree4(t, dx, dy, y, x, base + p * rs, rs, w ? w : VL,
                                     cf, j0, st, fin);
                    r0 = v_add(r0, t[0]), r1 = v_add(r1, t[1]), r2 = v_add(r2, t[2]);
                    continue;
                }
                for (size_t j = 0; j < wv; j += VL) {
                    vf t[3];
                    fin = grad_tree4(t, dx, dy, y, x, base + p * rs + j, rs,
                                     j < full ? VL : w, cf, j0 + j, st, fin);
                    v_store(acc[0] + j, v_add(v_load(acc[0] + j), t[0]));
                    v_store(acc[1] + j, v_add(v_load(acc[1] + j), t[1]));
                    v_store(acc[2] + j, v_add(v_load(acc[2] + j), t[2]));
                }
            }
            if (wv == VL)
                v_store(acc[0], r0), v_store(acc[1], r1), v_store(acc[2], r2);
            for (; p < np; p++)
                for (size_t j = 0; j < wv; j += VL) {
                    size_t n = j < full ? VL : w, o = base + p * rs + j;
                    vf c = load_cols(cf.center + j0 + j, n), sc = load_cols(cf.b + j0 + j, n);
                    vf dz = dz_cols(dy, y, o, n), xh = v_mul(v_sub(load_cols(x + o, n), c), sc);
                    if (dx) {
                        vf v = v_mul(load_cols(cf.a + j0 + j, n), dz);
                        fin = track_finite(fin, v);
                        if (n == VL)
                            store_vec(dx + o, v, st);
                        else
                            v_store_n(dx + o, v, n);
                    }
                    v_store(acc[0] + j, v_add(v_load(acc[0] + j), dz));
                    v_store(acc[1] + j, v_fma(dz, xh, v_load(acc[1] + j)));
                    v_store(acc[2] + j, v_add(v_load(acc[2] + j), xh));
                }
            for (size_t l = 0; l < width; l++)
                for (size_t k = 0; k < 3; k++)
                    sums[3 * (j0 + l) + k] += acc[k][l];
        }
    }
    return all_finite(fin);
}

/* ---------------------------------------------------------------- dx */

/* dx = a·dz + b·(x - center) + k */
static inline vf dx_vec(vf dz, vf x, vf center, vf a, vf b, vf k)
{
    return v_fma(a, dz, v_fma(b, v_sub(x, center), k));
}

static int dx_nchw(float *dx, const float *dy, const float *y, const float *x,
                   bn_rows r, bn_coefs cf, int stream, bn_ahead ahead)
{
    vf center = v_set1(cf.center[0]), a = v_set1(cf.a[0]), b = v_set1(cf.b[0]);
    vf k = v_set1(cf.k[0]), fin = v_zero();
    for (size_t n = 0; n < r.rows; n++) {
        size_t o = n * r.stride, i = 0;
        int st = stream && whole_lines(dx + o, r.len);
        for (; i + VL <= r.len; i += VL) {
            prefetch_ahead(ahead, n, i, r.stride);
            vf v = dx_vec(dz_vec(dy, y, o + i), v_load(x + o + i), center, a, b, k);
            fin = track_finite(fin, v);
            store_vec(dx + o + i, v, st);
        }
        if (i < r.len) {
            size_t w = r.len - i;
            prefetch_ahead(ahead, n, i, r.stride);
            vf v = v_keep_n(dx_vec(dz_vec_n(dy, y, o + i, w), v_load_n(x + o + i, w),
                                   center, a, b, k), w);
            fin = track_finite(fin, v);
            v_store_n(dx + o + i, v, w);
        }
    }
    return all_finite(fin);
}

/* dx along runs of NCHW planes, as affine_planes (its comment says why):
 * values [o0, o1) of the whole tensor, plane q of channel q % C. */
static int dx_planes(float *dx, const float *dy, const float *y, const float *x,
                     size_t o0, size_t o1, size_t HW, size_t C, bn_coefs cf, int stream)
{
    size_t b = (o0 / HW + 1) * HW, c = (o0 / HW) % C;  /* the plane's end, channel */
    vf ce = v_set1(cf.center[c]), a = v_set1(cf.a[c]), bb = v_set1(cf.b[c]);
    vf k = v_set1(cf.k[c]), fin = v_zero();
    int st = stream && whole_lines(dx + o0, 0);
    size_t o = o0;
    for (;;) {
        size_t end = min_size(b, o1);
        for (; o + VL <= end; o += VL) {  /* the vectors inside this plane */
            vf v = dx_vec(dz_vec(dy, y, o), v_load(x + o), ce, a, bb, k);
            fin = track_finite(fin, v);
            store_vec(dx + o, v, st);
        }
        if (o >= o1)
            break;
        size_t n = b - o, w = min_size(VL, o1 - o);  /* as in affine_planes */
        vf vc = ce, va = a, vb = bb, vk = k;
        if (o + w > b || n == 0) {
            c = c + 1 == C ? 0 : c + 1, b += HW;
            ce = v_set1(cf.center[c]), a = v_set1(cf.a[c]), bb = v_set1(cf.b[c]);
            k = v_set1(cf.k[c]);
            vc = v_first(n, vc, ce), va = v_first(n, va, a), vb = v_first(n, vb, bb);
            vk = v_first(n, vk, k);
            if (n == 0)
                continue;
        }
        if (w == VL) {
            vf v = dx_vec(dz_vec(dy, y, o), v_load(x + o), vc, va, vb, vk);
            fin = track_finite(fin, v);
            store_vec(dx + o, v, st);
        } else {
            vf v = v_keep_n(dx_vec(dz_vec_n(dy, y, o, w), v_load_n(x + o, w), vc, va, vb, vk), w);
            fin = track_finite(fin, v);
            v_store_n(dx + o, v, w);
        }
        o += w;
    }
    return all_finite(fin);
}

static int dx_nhwc(float *dx, const float *dy, const float *y, const float *x,
                   bn_rows r, bn_coefs cf, int stream)
{
    vf fin = v_zero();
    for (size_t p = 0; p < r.rows; p++) {
        size_t o = p * r.stride;
        int st = stream && whole_lines(dx + o, r.len);
        for (size_t j = 0; j < r.len; j += VL) {
            size_t w = min_size(VL, r.len - j);
            vf dz = load_cols(dy + o + j, w);
            if (y)
                dz = v_where_pos(load_cols(y + o + j, w), dz);
            /* past w every operand is 0, and so is v */
            vf v = dx_vec(dz, load_cols(x + o + j, w), load_cols(cf.center + j, w),
                          load_cols(cf.a + j, w), load_cols(cf.b + j, w),
                          load_cols(cf.k + j, w));
            fin = track_finite(fin, v);
            if (w < VL)
                v_store_n(dx + o + j, v, w);
            else
                store_vec(dx + o + j, v, st);
        }
    }
    return all_finite(fin);
}

#include "kernels_lanes.h"

/* ------------------------------------------------------------ the table */

const bn_fast_kernels KERNEL_TABLE = {
    .name = KERNEL_NAME,
    .lanes = VL,
    .moments_nchw = moments_nchw,
    .moments_nhwc = moments_nhwc,
    .affine_nchw = affine_nchw,
    .affine_nhwc = affine_nhwc,
    .affine_planes = affine_planes,
    .grad_sums_nchw = grad_sums_nchw,
    .grad_sums_nhwc = grad_sums_nhwc,
    .dx_nchw = dx_nchw,
    .dx_nhwc = dx_nhwc,
    .dx_planes = dx_planes,
    .lanes_period = lanes_period,
    .moments_lanes = moments_lanes,
    .affine_lanes = affine_lanes,
    .grad_sums_lanes = grad_sums_lanes,
    .dx_lanes = dx_lanes,
};
