/*
 * fast_forward.c — batch normalization forward in float, at the speed of
 * memory: training mode (Ioffe & Szegedy 2015, Algorithm 1), fused with
 * ReLU or not, and inference (Algorithm 2, step 11).
 *
 * Training, in the three steps of fast_plan.c:
 *   1. moments  read x once: (n, mu_B, M2) per channel and chunk, blocks
 *               summed in float, merged in double (kernels.h)  x: DRAM -> cache
 *               (a channel whose squared deviations leave float's range,
 *               below ~1e-15 or above ~1e19, is redone in double: rare)
 *   2. coefs    in double: sigma2_B = M2/m', invstd = 1/sqrt(sigma2_B + eps),
 *               a = gamma·invstd, center = mu_B rounded to float, and
 *               k = beta - a·(mu_B - center), so that
 *               y = a·(x - center) + k keeps every digit of mu_B
 *   3. affine   read x again, write y                      x: cache, y: DRAM
 * The data crosses the memory bus twice (read x, write y): the minimum.
 *
 * Inference is step 3 alone: y = a·(x - mean) + beta, a = gamma/sqrt(var + eps).
 *
 * Errors are those of ref/ (same checks, same statuses); NaN or Inf in x,
 * or an output beyond float's range, is BN_EDOM naming the channel. On an
 * error the outputs may be partly written.
 */
#include <float.h>
#include <math.h>

#include "bn_internal.h"
#include "fast_internal.h"

/* What the steps of one call need. */
typedef struct {
    const bn_fast_kernels *K;
    const bn_fast_plan *p;
    const bn_desc *d;
    float *y, *mean, *var_biased, *invstd;
    const float *x, *gamma, *beta;
    bn_fast_scratch *s;
    bn_fast_error *e;
    int relu;
    const char *who;
} fwd_ctx;

/* gamma and beta must be finite (when used and given) */
static int check_params(const char *who, const bn_desc *d, const float *gamma,
                        const float *beta)
{
    if (!d->affine)
        return BN_OK;
    for (size_t c = 0; c < d->C; c++)
        if (!isfinite(gamma[c]) || (beta && !isfinite(beta[c])))
            BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g, beta = %g must be finite",
                     who, c, gamma[c], beta ? beta[c] : 0.0);
    return BN_OK;
}

/* Step 1: the moments of one item, (mean, M2) per channel. */
static void moments_step(const bn_fast_op *op, const bn_fast_item *it, double *part)
{
    const fwd_ctx *f = op->ctx;
    if (f->p->nhwc) {
        f->K->moments_nhwc(part, f->x + it->offset, it->r);
        return;
    }
    /* each channel of the item (one, or a group of small planes); the
     * first half of the rows of the same channel of the item ahead (the
     * output asks for the second half), or for a group, all of them (the
     * output along runs of planes asks for nothing); blocks of rows side
     * by side (planes of 256 values and up) ask for nothing: their rows
     * are streams already (kernels.h, plan_blocks) */
    int group = it->c1 - it->c0 > 1;
    size_t c = it->c0, nc = bn_fast_lanes_channels(f->K, it);
    if (nc) {  /* whole periods of 7x7 planes: lanes across planes */
        f->K->moments_lanes(part, f->x + it->offset, it->r, nc);
        c += nc;
    }
    for (; c < it->c1; c++) {
        bn_fast_item ci = bn_fast_channel_of(it, c);
        const float *a = bn_fast_ahead_of(f->p, &ci, f->x);
        bn_ahead next = {{a, a && group ? a + ci.r.rows / 2 * ci.r.stride : NULL}, 0};
        bn_moments mo = f->K->moments_nchw(f->x + ci.offset, ci.r, next);
        part[2 * (c - it->c0)] = mo.mean, part[2 * (c - it->c0) + 1] = mo.m2;
    }
}

static void moments_merge_parts(double *a, double n_a, const double *b, double n_b)
{
    bn_moments acc = {n_a, a[0], a[1]};
    bn_moments_merge(&acc, (bn_moments){n_b, b[0], b[1]});
    a[0] = acc.mean, a[1] = acc.m2;
}

/* Step 2 for channel c: the saved statistics and the affine coefficients.
 * Returns 0 (and notes why) if they are not finite in float. */
static int train_coefs(const bn_fast_op *op, size_t c, double *total)
{
    const fwd_ctx *f = op->ctx;
    const bn_desc *d = f->d;
    bn_moments mo = {(double)f->p->m, total[0], total[1]};
    /* squares beyond float's range, or NaN: redo this channel in double */
    if (!isfinite(mo.mean) || !(mo.m2 / mo.n >= BN_FAST_TINY_VAR) || isinf(mo.m2))
        mo = bn_fast_moments_double(f->x, f->p, c);
    double mu = mo.mean, var = mo.m2 / mo.n;  /* sigma2_B, biased: 1/m' */
    if (!isfinite(mu) || !isfinite(var)) {
        bn_fast_note(f->e, c, BN_EDOM, "%s: channel %zu: batch statistics are not finite "
                     "(mu_B = %g, sigma2_B = %g): x holds NaN or Inf", f->who, c, mu, var);
        return 0;
    }
    if (!(var + d->eps >= DBL_MIN)) {
        bn_fast_note(f->e, c, BN_EDOM, "%s: channel %zu: sigma2_B + eps = %g is zero or "
                     "subnormal (a constant channel with eps = 0?): xhat would be 0/0 "
                     "or noise", f->who, c, var + d->eps);
        return 0;
    }
    double s = 1.0 / sqrt(var + d->eps);
    double g = d->affine ? f->gamma[c] : 1.0, b = d->affine ? f->beta[c] : 0.0;
    float center = (float)mu;
    double a = g * s, k = b - a * (mu - center);  /* y = a·(x - mu) + b */
    if (isinf((float)var) || isinf((float)s) || isinf((float)a) || isinf((float)k)) {
        bn_fast_note(f->e, c, BN_EDOM, "%s: channel %zu: sigma2_B = %g, invstd = %g or "
                     "gamma·invstd = %g does not fit in a float", f->who, c, var, s, a);
        return 0;
    }
    f->mean[c] = center;
    f->var_biased[c] = (float)var;
    if (f->invstd)
        f->invstd[c] = (float)s;
    f->s->center[c] = center, f->s->a[c] = (float)a, f->s->k[c] = (float)k;
    return 1;
}

/* A NaN or Inf written to y in channel c. */
static void note_bad_y(bn_fast_error *e, size_t c, const char *who)
{
    bn_fast_note(e, c, BN_EDOM, "%s: channel %zu: y is NaN or Inf (NaN or Inf in x, or "
                 "y overflows float)", who, c);
}

/* Notes the channel of the first NaN or Inf in y[o0, o1) (NCHW planes of
 * HW values, plane q of channel q % C). */
static void note_bad_plane(bn_fast_error *e, const float *y, size_t o0, size_t o1,
                           size_t HW, size_t C, const char *who)
{
    size_t o = o0;
    while (o + 1 < o1 && isfinite(y[o]))
        o++;
    note_bad_y(e, (o / HW) % C, who);
}

/* Step 3 (and all of channels-last inference): y = a·(x - center) + k
 * [, max(0, ·)]. */
static void affine_step(const bn_fast_op *op, const bn_fast_item *it)
{
    const fwd_ctx *f = op->ctx;
    bn_coefs cf = bn_fast_coefs(f->s, it->c0);
    float *y = f->y + it->offset;
    const float *x = f->x + it->offset;
    int finite;
    if (f->p->nhwc) {
        finite = f->K->affine_nhwc(y, x, it->r, cf, f->relu, f->p->stream);
    } else if (it->c1 - it->c0 > 1) {
        /* a group of small planes: whole periods with lanes across planes,
         * the rest (its rows in image n: one run) along the runs */
        size_t HW = it->r.len, nc = bn_fast_lanes_channels(f->K, it);
        if (nc && !f->K->affine_lanes(y, x, it->r, nc, cf, f->relu, f->p->stream))
            note_bad_y(f->e, bn_fast_bad_plane_channel(it, it->c0 + nc, f->y), f->who);
        for (size_t n = 0; n < it->r.rows && it->c0 + nc < it->c1; n++) {
            size_t row = it->offset + n * it->r.stride, o0 = row + nc * HW;
            size_t o1 = row + (it->c1 - it->c0) * HW;
            if (!f->K->affine_planes(f->y, f->x, o0, o1, HW, f->p->C, bn_fast_coefs(f->s, 0),
                                     f->relu, f->p->stream))
                note_bad_plane(f->e, f->y, o0, o1, HW, f->p->C, f->who);
        }
        return;
    } else {
        /* training: the second half of the rows of a channel ahead */
        bn_ahead next = {{f->mean ? bn_fast_ahead_of(f->p, it, f->x) : NULL}, it->r.rows / 2};
        finite = f->K->affine_nchw(y, x, it->r, cf, f->relu, f->p->stream, next);
    }
    if (!finite)
        note_bad_y(f->e, bn_fast_bad_channel(it, f->y), f->who);
}

static int forward_train(const char *who, int relu, float *y, float *mean,
                         float *var_biased, float *invstd, const float *x,
                         const float *gamma, const float *beta, const bn_desc *d)
{
    BN_TRY(bn_check_forward_train_args(who, d, y, mean, var_biased, x, gamma, beta));
    BN_TRY(check_params(who, d, gamma, beta));
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    bn_fast_plan p = bn_fast_plan_make(d, 2);
    bn_fast_scratch s;
    BN_TRY(bn_fast_scratch_new(&s, &p, 2, who));
    bn_fast_error e = {0};
    fwd_ctx f = {K, &p, d, y, mean, var_biased, invstd, x, gamma, beta, &s, &e, relu, who};
    bn_fast_op op = {2, moments_step, moments_merge_parts, train_coefs, affine_step, &f};
    bn_fast_run(&p, &op, s.part, s.ok);
    bn_fast_scratch_free(&s);
    return bn_fast_raise(&e);
}

int bn_forward_train_fast(float *y, float *mean, float *var_biased, float *invstd,
                          const float *x, const float *gamma, const float *beta,
                          const bn_desc *d)
{
    return forward_train(__func__, 0, y, mean, var_biased, invstd, x, gamma, beta, d);
}

int bn_forward_train_relu_fast(float *y, float *mean, float *var_biased,
                               float *invstd, const float *x, const float *gamma,
                               const float *beta, const bn_desc *d)
{
    return forward_train(__func__, 1, y, mean, var_biased, invstd, x, gamma, beta, d);
}

/* ---------------------------------------------------------------- inference */

/* The population statistics must be usable: finite, var >= 0, var + eps a
 * normal positive number (as ref's check_population). */
int bn_fast_check_population(const char *who, const bn_desc *d, const float *mean,
                             const float *var, const float *gamma)
{
    for (size_t c = 0; c < d->C; c++) {
        if (!isfinite(mean[c]) || !(var[c] >= 0) || isinf(var[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: mean = %g, var = %g (need finite, "
                     "var >= 0)", who, c, mean[c], var[c]);
        if (!((double)var[c] + d->eps >= DBL_MIN))
            BN_ERROR(BN_EDOM, "%s: channel %zu: var + eps = %g is zero or subnormal",
                     who, c, (double)var[c] + d->eps);
        if (d->affine && !isfinite(gamma[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g must be finite", who, c,
                     gamma[c]);
    }
    return BN_OK;
}

int bn_forward_infer_fast(float *y, const float *x, const float *gamma,
                          const float *beta, const float *mean, const float *var,
                          const bn_desc *d)
{
    const char *who = __func__;
    BN_TRY(bn_check_infer_args(who, d, gamma, beta, 1, mean, var));
    BN_REQUIRE(y);
    BN_REQUIRE(x);
    BN_TRY(check_params(who, d, gamma, beta));
    BN_TRY(bn_fast_check_population(who, d, mean, var, gamma));
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    bn_fast_plan p = bn_fast_plan_make(d, 2);
    bn_fast_scratch s;
    BN_TRY(bn_fast_scratch_new(&s, &p, 0, who));
    for (size_t c = 0; c < p.C; c++) {
        /* y = scale·(x - E[x]) + beta, scale = gamma/sqrt(Var[x] + eps) */
        double scale = (d->affine ? gamma[c] : 1.0) / sqrt((double)var[c] + d->eps);
        if (isinf((float)scale)) {
            bn_fast_scratch_free(&s);
            BN_ERROR(BN_EDOM, "%s: channel %zu: gamma/sqrt(var + eps) = %g does not "
                     "fit in a float", who, c, scale);
        }
        s.center[c] = mean[c], s.a[c] = (float)scale, s.k[c] = d->affine ? beta[c] : 0.0f;
    }
    bn_fast_error e = {0};
    fwd_ctx f = {K, &p, d, y, NULL, NULL, NULL, x, gamma, beta, &s, &e, 0, who};
    if (p.nhwc) {
        bn_fast_op op = {0, NULL, NULL, NULL, affine_step, &f};
        bn_fast_run(&p, &op, s.part, s.ok);
    } else {
        /* no statistics to wait for: the N·C planes of H·W values in memory
         * order, one sequential stream (the hardware prefetcher follows it;
         * asking for the next plane ahead measured slower: 8.7 vs 6.6 ms),
         * in pieces of whole cache lines, contiguous runs of them per thread,
         * each piece straight across its planes (affine_planes; planes
         * shorter than a vector one at a time) */
        size_t HW = p.rows.len, total = p.m * p.C;
        size_t piece = (size_t)1 << 14, pieces = (total + piece - 1) / piece;
        int runs = HW >= (size_t)K->lanes;
        bn_coefs all = bn_fast_coefs(&s, 0);
#pragma omp parallel if (p.parallel)
        {
#pragma omp for schedule(static) nowait
            for (size_t i = 0; i < pieces; i++) {
                size_t o0 = i * piece, o1 = o0 + piece < total ? o0 + piece : total;
                if (runs) {
                    if (!K->affine_planes(y, x, o0, o1, HW, p.C, all, 0, p.stream))
                        note_bad_plane(&e, y, o0, o1, HW, p.C, who);
                    continue;
                }
                bn_rows plane = {1, HW, HW};
                bn_ahead none = {{NULL}, 0};
                for (size_t q = o0 / HW; q * HW < o1; q++) {  /* planes starting here */
                    size_t c = q % p.C, o = q * HW;
                    if (o < o0)
                        continue;
                    if (!K->affine_nchw(y + o, x + o, plane, bn_fast_coefs(&s, c), 0,
                                        p.stream, none))
                        note_bad_plane(&e, y, o, o + HW, HW, p.C, who);
                }
            }
            bn_fast_store_fence();
        }
    }
    bn_fast_scratch_free(&s);
    return bn_fast_raise(&e);
}
