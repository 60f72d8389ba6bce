/*
 * fast_plan.c — how fast/ cuts one call into work items and runs them on
 * OpenMP threads (bn_fast_run), the per-call scratch, errors found on
 * worker threads, and the exact double path for rare channels.
 *
 * Every training op has three steps: 1. sums over the data (moments, or
 * gradient sums), 2. per-channel coefficients from the totals, 3. the
 * output over the data. Step 3 needs the totals of step 1, so the data is
 * read twice; the art is to read it the second time from cache:
 *
 *   NCHW  a channel is N rows of H·W contiguous values, 392 KiB for
 *         ResNet-50's largest layers at N = 32: one thread runs steps 1-3
 *         on one channel, back to back, and the second read hits L2; step
 *         1 reads several rows side by side (kernels.h, plan_blocks). Small
 *         planes (H·W < 256): the same for a group of 16·k channels
 *         (~256 KiB), whose planes in each image are one contiguous run;
 *         the output goes along the runs, in whole cache lines, instead of
 *         row by row (rows of 49 or 196 floats: a call, a masked tail and
 *         partial lines that cannot be streamed, per row); planes shorter
 *         than 4 vectors (7x7) go with lanes across planes in every step
 *         (kernels_lanes.h).
 *   NHWC  a channel is strided over the whole tensor, and every step-3
 *         value depends on all of it: the threads share chunks of
 *         BN_FAST_CHUNK whole pixels (all channels: contiguous rows), with
 *         a barrier between steps 1, 2 and 3. The second read hits the
 *         last-level cache if the tensor fits there, else DRAM (3 passes
 *         for the forward instead of 2). Reading narrow groups of channels
 *         whose slice fits in cache costs more than that here: 64 bytes
 *         out of every row of C·4 bytes is a strided access, and measured
 *         2x slower than streaming (docs/performance.md). Only when there
 *         are too few chunks to share ((N, D) data) are channels grouped.
 *
 * NCHW channels go to threads in contiguous runs (static schedule), and
 * while a thread works on one channel it asks for the lines of a channel a
 * little ahead in its run (bn_ahead, bn_fast_ahead_of).
 *
 * Determinism: a channel's sums are made in the same fixed blocks and
 * chunks, and merged in the same order, whatever the group or the thread
 * that does the work (see kernels.h), so results are bit-identical for any
 * number of threads.
 */
#include <math.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#ifdef BN_FAST_X86
#include <immintrin.h>
#endif

#include "bn_internal.h"
#include "fast_internal.h"

static _Atomic size_t forced_group;

void bn_fast_force_group(size_t channels) { atomic_store(&forced_group, channels); }

static _Atomic int forced_nchw_single;

void bn_fast_force_nchw_single(int on) { atomic_store(&forced_nchw_single, on); }

/* Channels-last: whole rows, unless there are too few chunks for every
 * thread to get a few; then groups of channels (multiples of 16). */
static void plan_groups(bn_fast_plan *p)
{
    size_t threads = (size_t)bn_fast_threads();
    p->chunk = BN_FAST_CHUNK;
    p->chunks = (p->m + p->chunk - 1) / p->chunk;
    p->group = p->C;
    if (p->chunks < 4 * threads) {
        size_t want = (4 * threads + p->chunks - 1) / p->chunks;  /* groups wanted */
        p->group = ((p->C + want - 1) / want + 15) / 16 * 16;
    }
    if (atomic_load(&forced_group))
        p->group = atomic_load(&forced_group);
    if (p->group > p->C)
        p->group = p->C;
    p->groups = (p->C + p->group - 1) / p->group;
}

bn_fast_plan bn_fast_plan_make(const bn_desc *d, int arrays)
{
    bn_fast_plan p = {0};
    size_t HW = d->H * d->W;
    p.C = d->C;
    p.m = d->N * HW;
    /* (N, D) data is channels-last; one channel is one contiguous row */
    p.nhwc = p.C > 1 && (d->layout == BN_NHWC || HW == 1);
    if (p.nhwc) {
        plan_groups(&p);
    } else {
        p.group = 1;
        p.chunk = p.m, p.chunks = 1;
        p.rows = p.C == 1 ? (bn_rows){1, p.m, p.m} : (bn_rows){d->N, HW, p.C * HW};
        /* prefetch ~256 KiB ahead: 1 channel at 56x56 (392 KiB), 40 at 7x7 */
        size_t bytes = p.m * sizeof(float) * (size_t)(arrays > 1 ? arrays - 1 : 1);
        p.ahead = bytes >= ((size_t)256 << 10) ? 1 : ((size_t)256 << 10) / bytes;
        /* small planes: groups of 16·k channels, ~256 KiB of the inputs,
         * whose rows in each image are one run of whole cache lines
         * (16·H·W floats); the output goes along the runs (affine_planes,
         * dx_planes), not plane by plane; prefetch one group ahead, but
         * only if one array exceeds a quarter of the last-level cache:
         * below, the hardware prefetcher follows each image's run of
         * planes, and the requests cost time (512x7x7, 3.2 MB: fwd_train
         * 0.20 vs 0.18 ms, bwd 0.37 vs 0.35; 256x14x14, 6.4 MB: bwd 0.55
         * vs 0.49); above, they pay (2048x7x7, 12.8 MB: fwd_train 0.97 vs
         * 1.04, bwd 2.1-2.3 vs 2.5; 1024x14x14: fwd_train 2.1 vs 3.0) */
        if (p.C > 1 && HW < 256 && HW >= 16 && !atomic_load(&forced_nchw_single)) {
            size_t g = ((size_t)256 << 10) / bytes / 16 * 16;
            p.group = g < 16 ? 16 : g;
            if (p.group > p.C)
                p.group = p.C;
            p.ahead = p.m * p.C * sizeof(float) > bn_fast_llc_bytes() / 4;
        }
        p.groups = (p.C + p.group - 1) / p.group;
    }
    /* streamed, the output goes to DRAM; that pays when the arrays would
     * not stay in the cache anyway, or when the output is a small part of
     * the traffic: an op of two arrays (the forward: x in, y out) streams
     * only from half the last-level cache up, not a quarter (256x14x14,
     * 2 x 6.4 MB, plain stores: fwd_train 0.37 -> 0.35 ms, fwd_train_relu
     * 0.37 -> 0.31, fwd_infer 0.23 -> 0.17; the backward at 3 x 3.2 MB
     * still gains 4% from streaming) */
    size_t bytes = (size_t)arrays * p.m * p.C * sizeof(float);
    p.stream = bn_fast_stream_wanted(arrays > 2 ? bytes : bytes / 2);
    /* below ~64 K values a parallel region costs more than it saves */
    p.parallel = p.groups * p.chunks > 1 && p.m * p.C >= 65536;
    return p;
}

bn_fast_item bn_fast_item_at(const bn_fast_plan *p, size_t group, size_t chunk)
{
    bn_fast_item it = {0};
    it.c0 = group * p->group;
    it.c1 = it.c0 + p->group < p->C ? it.c0 + p->group : p->C;
    it.k = chunk;
    if (!p->nhwc) {
        it.n = p->m;
        it.offset = it.c0 * p->rows.len;
        it.r = p->rows;
        return it;
    }
    size_t p0 = chunk * p->chunk, p1 = p0 + p->chunk < p->m ? p0 + p->chunk : p->m;
    it.n = p1 - p0;
    it.offset = p0 * p->C + it.c0;
    it.r = (bn_rows){it.n, it.c1 - it.c0, p->C};
    return it;
}

size_t bn_fast_lanes_channels(const bn_fast_kernels *K, const bn_fast_item *it)
{
    size_t P = it->c1 - it->c0 > 1 ? K->lanes_period(it->r.len) : 0;
    return P ? (it->c1 - it->c0) / P * P : 0;
}

size_t bn_fast_bad_plane_channel(const bn_fast_item *it, size_t c1, const float *v)
{
    for (size_t c = it->c0; c < c1; c++)
        for (size_t n = 0; n < it->r.rows; n++)
            for (size_t i = 0; i < it->r.len; i++)
                if (!isfinite(v[it->offset + n * it->r.stride + (c - it->c0) * it->r.len + i]))
                    return c;
    return c1 - 1;
}

bn_fast_item bn_fast_channel_of(const bn_fast_item *it, size_t c)
{
    bn_fast_item ci = *it;
    ci.c0 = c, ci.c1 = c + 1, ci.offset = it->offset + (c - it->c0) * it->r.len;
    return ci;
}

/* Steps 1-3 of one NCHW channel or group of channels (or of a
 * channels-last group that is a single chunk), on the calling thread. */
static void run_item(const bn_fast_plan *p, const bn_fast_op *op, double *part,
                     size_t g)
{
    bn_fast_item it = bn_fast_item_at(p, g, 0);
    int good = 1;
    if (op->sums)
        op->sums(op, &it, part + op->width * it.c0);
    for (size_t c = it.c0; c < it.c1 && op->coefs; c++)
        good &= op->coefs(op, c, part + op->width * c);
    if (good && op->output)
        op->output(op, &it);
}

/* Step 2 of channel c: merge its chunks in order into chunk 0's place. */
static int merge_channel(const bn_fast_plan *p, const bn_fast_op *op, double *part,
                         size_t c)
{
    double *total = part + op->width * c;
    for (size_t k = 1; k < p->chunks; k++) {
        size_t n_k = k + 1 < p->chunks ? p->chunk : p->m - k * p->chunk;
        op->merge(total, (double)(k * p->chunk), part + op->width * (k * p->C + c), (double)n_k);
    }
    return op->coefs ? op->coefs(op, c, total) : 1;
}

/* Non-temporal stores are weakly ordered: each thread fences them once,
 * when its share of a call is done, before the others may read them. */
void bn_fast_store_fence(void)
{
#ifdef BN_FAST_X86
    _mm_sfence();
#endif
}

/* NCHW channels go to threads in contiguous runs (schedule static, as
 * libgomp makes them: runs of ceil(C/threads)): the channel p->ahead on is
 * the same thread's unless it lies past the end of this thread's run. */
const float *bn_fast_ahead_of(const bn_fast_plan *p, const bn_fast_item *it,
                              const float *base)
{
    size_t g = it->c0 / p->group, next = g + p->ahead, at = it->c0 - g * p->group;
    if (p->nhwc || !p->ahead || next >= p->groups || next * p->group + at >= p->C)
        return NULL;
#ifdef _OPENMP
    size_t t = (size_t)omp_get_num_threads(), per = (p->groups + t - 1) / t;
    if (p->parallel && t > 1 && next / per != g / per)
        return NULL;
#endif
    /* the same place in the group ahead */
    return base + bn_fast_item_at(p, next, 0).offset + at * p->rows.len;
}

void bn_fast_run(const bn_fast_plan *p, const bn_fast_op *op, double *part,
                 unsigned char *ok)
{
    if (p->chunks == 1) {
#pragma omp parallel if (p->parallel)
        {
#pragma omp for schedule(static) nowait
            for (size_t g = 0; g < p->groups; g++)
                run_item(p, op, part, g);
            bn_fast_store_fence();
        }
        return;
    }
    size_t items = p->groups * p->chunks;
#pragma omp parallel if (p->parallel)
    {
        if (op->sums) {
#pragma omp for schedule(dynamic, 1)
            for (size_t i = 0; i < items; i++) {                           /* 1 */
                bn_fast_item it = bn_fast_item_at(p, i / p->chunks, i % p->chunks);
                op->sums(op, &it, part + op->width * (it.k * p->C + it.c0));
            }
#pragma omp for schedule(static)
            for (size_t c = 0; c < p->C; c++)                               /* 2 */
                ok[c] = (unsigned char)merge_channel(p, op, part, c);
        }
        if (op->output) {
#pragma omp for schedule(dynamic, 1)
            for (size_t i = 0; i < items; i++) {                           /* 3 */
                bn_fast_item it = bn_fast_item_at(p, i / p->chunks, i % p->chunks);
                int good = 1;
                for (size_t c = it.c0; c < it.c1 && op->sums; c++)
                    good &= ok[c];
                if (good)
                    op->output(op, &it);
            }
        }
        bn_fast_store_fence();  /* inference backward streams dx in step 1 */
    }
}

size_t bn_fast_bad_channel(const bn_fast_item *it, const float *v)
{
    size_t per_channel = it->r.len / (it->c1 - it->c0);  /* values of a channel in a row */
    for (size_t q = 0; q < it->r.rows; q++)
        for (size_t j = 0; j < it->r.len; j++)
            if (!isfinite(v[it->offset + q * it->r.stride + j]))
                return it->c0 + j / per_channel;
    return it->c0;
}

int bn_fast_scratch_new(bn_fast_scratch *s, const bn_fast_plan *p, int width,
                        const char *who)
{
    size_t C = p->C, nd = (size_t)width * p->chunks * C;
    /* doubles, then 4 float arrays of C, then C flags: one allocation */
    void *mem = malloc(nd * sizeof(double) + 4 * C * sizeof(float) + C);
    if (!mem)
        BN_ERROR(BN_ENOMEM, "%s: no memory for the per-channel scratch (C = %zu)", who, C);
    s->part = mem;
    s->center = (float *)(s->part + nd);
    s->a = s->center + C;
    s->b = s->a + C;
    s->k = s->b + C;
    s->ok = (unsigned char *)(s->k + C);
    return BN_OK;
}

void bn_fast_scratch_free(bn_fast_scratch *s) { free(s->part); }

bn_coefs bn_fast_coefs(const bn_fast_scratch *s, size_t c0)
{
    return (bn_coefs){s->center + c0, s->a + c0, s->b + c0, s->k + c0};
}

void bn_fast_note(bn_fast_error *e, size_t channel, int status, const char *fmt, ...)
{
#pragma omp critical(bn_fast_error)
    if (!e->status || channel < e->channel) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(e->msg, sizeof e->msg, fmt, ap);
        va_end(ap);
        e->status = status;
        e->channel = channel;
    }
}

int bn_fast_raise(const bn_fast_error *e)
{
    if (e->status)
        BN_ERROR(e->status, "%s", e->msg);
    return BN_OK;
}

/* ---- the exact path for rare channels, in double (as ref computes) */

static _Atomic size_t double_path_runs;  /* for the tests */

size_t bn_fast_double_path_runs(void) { return atomic_load(&double_path_runs); }

/* Offset of the q-th value (q < m') of channel c. */
static size_t value_offset(const bn_fast_plan *p, size_t c, size_t q)
{
    if (p->nhwc)
        return q * p->C + c;
    return (q / p->rows.len) * p->rows.stride + c * p->rows.len + q % p->rows.len;
}

bn_moments bn_fast_moments_double(const float *x, const bn_fast_plan *p, size_t c)
{
    atomic_fetch_add(&double_path_runs, 1);
    long double sum = 0, sq = 0;
    for (size_t q = 0; q < p->m; q++)
        sum += x[value_offset(p, c, q)];
    double mean = (double)(sum / p->m);
    for (size_t q = 0; q < p->m; q++) {
        double dev = (double)x[value_offset(p, c, q)] - mean;
        sq += dev * dev;
    }
    return (bn_moments){(double)p->m, mean, (double)sq};
}

void bn_fast_grad_sums_double(double sums[3], const float *dy, const float *y,
                              const float *x, const bn_fast_plan *p, size_t c,
                              double center, double s)
{
    atomic_fetch_add(&double_path_runs, 1);
    long double g = 0, h = 0, q = 0;
    for (size_t i = 0; i < p->m; i++) {
        size_t k = value_offset(p, c, i);
        double dz = y && !(y[k] > 0) ? 0.0 : dy[k], xhat = ((double)x[k] - center) * s;
        g += dz, h += dz * xhat, q += xhat;
    }
    sums[0] = (double)g, sums[1] = (double)h, sums[2] = (double)q;
}
