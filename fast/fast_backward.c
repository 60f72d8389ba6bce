/*
 * fast_backward.c — the gradient of batch normalization in float: training
 * mode (plain and fused with ReLU) and inference mode (statistics frozen).
 *
 * Training evaluates the paper's six chain-rule equations (ref/backward.c,
 * docs/derivation.md) collapsed into one affine map per channel, s = invstd,
 * xhat = (x - mu_B)·s, dz = dy (or, fused with ReLU, dy where y > 0):
 *
 *   dx_i = gamma·s·(dz_i - mean(dz) - xhat_i·mean(dz·xhat))
 *          + gamma·s·mean(dz·xhat)·mean(xhat),
 *   dgamma = Σ dz·xhat,  dbeta = Σ dz.
 *
 * The first line is the closed form (docs/derivation.md §5). The second is
 * the paper's term dl/dsigma2·Σ -2(x - mu_B)/m inside dl/dmu_B: zero when
 * mu_B is x's exact mean, but the saved mean is a float (1e4 ± 0.01 rounds
 * it by ~0.05 sigma), and with it ref's chain rule and fast/ agree.
 * Per work item, on one thread:
 *   1. grad sums  read dy, x (and y): Σ dz, Σ dz·xhat, Σ xhat     DRAM -> L2
 *   2. coefs      in double: dgamma = Σ dz·xhat, dbeta = Σ dz, and
 *                 dx = a·dz + b·(x - mu_B) + k with
 *                 a = gamma·s, b = -a·s·mean(dz·xhat),
 *                 k = -a·mean(dz) + a·mean(dz·xhat)·mean(xhat)
 *   3. dx         read dy, x (and y) again, write dx            L2, -> DRAM
 * Three passes over memory (read dy, read x, write dx), four with ReLU (y).
 * NCHW with small planes (fast_plan.c): an item is a group of channels,
 * step 1 runs channel by channel, step 3 along each image's run of the
 * group's planes (dx_planes: whole cache lines, no per-row calls); 7x7
 * planes go with lanes across planes in both steps (kernels_lanes.h).
 *
 * Inference mode is one pass: dx = gamma·s·dy and the two sums together.
 */
#include <math.h>

#include "bn_internal.h"
#include "fast_internal.h"

/* What the steps of one call need. */
typedef struct {
    const bn_fast_kernels *K;
    const bn_fast_plan *p;
    const bn_desc *d;
    float *dx, *dgamma, *dbeta;
    const float *dy, *y, *x, *mean, *invstd, *gamma, *var;
    bn_fast_scratch *s;
    bn_fast_error *e;
    const char *who;
} bwd_ctx;

/* The saved statistics must be those of a forward pass (as ref checks). */
static int check_saved(const char *who, const bn_desc *d, const float *mean,
                       const float *invstd, const float *gamma)
{
    for (size_t c = 0; c < d->C; c++) {
        if (d->affine && !isfinite(gamma[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g must be finite", who, c,
                     gamma[c]);
        if (!isfinite(mean[c]) || !(invstd[c] > 0) || isinf(invstd[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: saved mean = %g, invstd = %g; pass the "
                     "mean and invstd from bn_forward_train (invstd > 0, finite)",
                     who, c, mean[c], invstd[c]);
    }
    return BN_OK;
}

static void grad_sums_item(const bn_fast_op *op, const bn_fast_item *it, double *part);
static void dx_item(const bn_fast_op *op, const bn_fast_item *it);

/* Step 1: Σ dz, Σ dz·xhat, Σ xhat per channel of one item; inference
 * backward (dx != NULL in the context) writes dx = a·dy in the same pass.
 * NCHW items of several channels: channel by channel. */
static void grad_sums_step(const bn_fast_op *op, const bn_fast_item *it, double *part)
{
    const bwd_ctx *b = op->ctx;
    if (b->p->nhwc || it->c1 - it->c0 == 1) {
        grad_sums_item(op, it, part);
        return;
    }
    /* training: whole periods of planes with lanes across planes */
    size_t c = it->c0, o = it->offset;
    size_t nc = b->var ? 0 : bn_fast_lanes_channels(b->K, it);
    if (nc) {
        b->K->grad_sums_lanes(part, b->dy + o, b->y ? b->y + o : NULL, b->x + o, it->r, nc,
                              bn_fast_coefs(b->s, c));
        c += nc;
    }
    for (; c < it->c1; c++) {
        bn_fast_item ci = bn_fast_channel_of(it, c);
        grad_sums_item(op, &ci, part + 3 * (c - it->c0));
    }
}

static void grad_sums_item(const bn_fast_op *op, const bn_fast_item *it, double *part)
{
    const bwd_ctx *b = op->ctx;
    size_t o = it->offset;
    bn_coefs cf = bn_fast_coefs(b->s, it->c0);
    float *dx = b->var ? b->dx + o : NULL;  /* inference: one pass */
    const float *y = b->y ? b->y + o : NULL;
    int finite;
    if (b->p->nhwc) {
        finite = b->K->grad_sums_nhwc(part, dx, b->dy + o, y, b->x + o, it->r, cf, b->p->stream);
    } else {
        /* training: the first half of the rows of a channel ahead */
        bn_ahead next = {{NULL}, 0};
        const float *ahead = dx ? NULL : bn_fast_ahead_of(b->p, it, b->x);
        if (ahead) {
            size_t o2 = (size_t)(ahead - b->x);
            next = (bn_ahead){{b->dy + o2, b->x + o2, y ? b->y + o2 : NULL}, 0};
        }
        finite = b->K->grad_sums_nchw(part, dx, b->dy + o, y, b->x + o, it->r, cf,
                                      b->p->stream, next);
    }
    if (!finite) {
        size_t c = bn_fast_bad_channel(it, b->dx);
        bn_fast_note(b->e, c, BN_EDOM, "%s: channel %zu: dx is NaN or Inf (NaN or Inf "
                     "in dy, or dx overflows float)", b->who, c);
    }
}

static void grad_sums_merge(double *a, double n_a, const double *b, double n_b)
{
    (void)n_a, (void)n_b;
    a[0] += b[0], a[1] += b[1], a[2] += b[2];
}

/* The sums of channel c, redone in double if the float ones overflowed. */
static void exact_if_needed(const bwd_ctx *b, size_t c, double *S)
{
    if (!isfinite(S[0]) || !isfinite(S[1]) || !isfinite(S[2]))
        bn_fast_grad_sums_double(S, b->dy, b->y, b->x, b->p, c, b->s->center[c],
                                 b->s->b[c]);
}

/* dgamma = Σ dz·xhat, dbeta = Σ dz, checked and stored. */
static int store_param_grads(const bwd_ctx *b, size_t c, const double *S)
{
    double dg = S[1], db = S[0];
    if (!isfinite(dg) || !isfinite(db) || isinf((float)dg) || isinf((float)db)) {
        bn_fast_note(b->e, c, BN_EDOM, "%s: channel %zu: dy holds NaN or Inf, or "
                     "dgamma = %g, dbeta = %g overflow float", b->who, c, dg, db);
        return 0;
    }
    if (b->d->affine)
        b->dgamma[c] = (float)dg, b->dbeta[c] = (float)db;
    return 1;
}

/* Step 2 of training: the parameter gradients and dx's coefficients. */
static int train_coefs(const bn_fast_op *op, size_t c, double *S)
{
    const bwd_ctx *b = op->ctx;
    exact_if_needed(b, c, S);
    if (!store_param_grads(b, c, S))
        return 0;
    double m = (double)b->p->m, sd = b->invstd[c], g = b->d->affine ? b->gamma[c] : 1.0;
    double mean_dz = S[0] / m, mean_dzxhat = S[1] / m;
    double mean_xhat = S[2] / m;  /* 0 unless mean is not x's exact mean */
    double a = g * sd;
    b->s->a[c] = (float)a;
    b->s->b[c] = (float)(-a * sd * mean_dzxhat);
    b->s->k[c] = (float)(-a * mean_dz + a * mean_dzxhat * mean_xhat);
    return 1;
}

/* A NaN or Inf written to dx in channel c (training: dx overflowed). */
static void note_bad_dx(const bwd_ctx *b, size_t c)
{
    bn_fast_note(b->e, c, BN_EDOM, "%s: channel %zu: dx is NaN or Inf (it overflows float)",
                 b->who, c);
}

/* Step 3 of training: dx = a·dz + b·(x - mean) + k. */
static void dx_step(const bn_fast_op *op, const bn_fast_item *it)
{
    const bwd_ctx *b = op->ctx;
    if (b->p->nhwc || it->c1 - it->c0 == 1) {
        dx_item(op, it);
        return;
    }
    /* a group of small planes: whole periods with lanes across planes, the
     * rest (rows in image n: one run) along the runs */
    size_t HW = it->r.len, nc = bn_fast_lanes_channels(b->K, it), o = it->offset;
    if (nc && !b->K->dx_lanes(b->dx + o, b->dy + o, b->y ? b->y + o : NULL, b->x + o,
                              it->r, nc, bn_fast_coefs(b->s, it->c0), b->p->stream)) {
        note_bad_dx(b, bn_fast_bad_plane_channel(it, it->c0 + nc, b->dx));
    }
    if (it->c0 + nc == it->c1)
        return;
    bn_coefs all = bn_fast_coefs(b->s, 0);
    for (size_t n = 0; n < it->r.rows; n++) {
        size_t row = o + n * it->r.stride, o0 = row + nc * HW;
        size_t o1 = row + (it->c1 - it->c0) * HW;
        if (!b->K->dx_planes(b->dx, b->dy, b->y, b->x, o0, o1, HW, b->p->C, all,
                             b->p->stream)) {
            size_t q = o0;
            while (q + 1 < o1 && isfinite(b->dx[q]))
                q++;
            note_bad_dx(b, (q / HW) % b->p->C);
        }
    }
}

static void dx_item(const bn_fast_op *op, const bn_fast_item *it)
{
    const bwd_ctx *b = op->ctx;
    size_t o = it->offset;
    bn_coefs cf = bn_fast_coefs(b->s, it->c0);
    const float *y = b->y ? b->y + o : NULL;
    int finite;
    if (b->p->nhwc) {
        finite = b->K->dx_nhwc(b->dx + o, b->dy + o, y, b->x + o, it->r, cf, b->p->stream);
    } else {
        /* the second half of the rows of a channel ahead */
        bn_ahead next = {{NULL}, 0};
        const float *ahead = bn_fast_ahead_of(b->p, it, b->x);
        if (ahead) {
            size_t o2 = (size_t)(ahead - b->x);
            next = (bn_ahead){{b->dy + o2, b->x + o2, y ? b->y + o2 : NULL}, it->r.rows / 2};
        }
        finite = b->K->dx_nchw(b->dx + o, b->dy + o, y, b->x + o, it->r, cf, b->p->stream, next);
    }
    if (!finite)
        note_bad_dx(b, bn_fast_bad_channel(it, b->dx));
}

static int backward_train(const char *who, int relu, float *dx, float *dgamma,
                          float *dbeta, const float *dy, const float *y,
                          const float *x, const float *mean, const float *invstd,
                          const float *gamma, const bn_desc *d)
{
    BN_TRY(bn_check_backward_train_args(who, d, dx, dgamma, dbeta, dy, x, mean, invstd,
                                        gamma));
    if (relu)
        BN_REQUIRE_IN(who, y);
    BN_TRY(check_saved(who, d, mean, invstd, gamma));
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    bn_fast_plan p = bn_fast_plan_make(d, relu ? 4 : 3);
    bn_fast_scratch s;
    BN_TRY(bn_fast_scratch_new(&s, &p, 3, who));
    /* step 1 uses center and b: xhat = (x - mean)·invstd; step 2 replaces b */
    for (size_t c = 0; c < p.C; c++)
        s.center[c] = mean[c], s.b[c] = invstd[c];
    bn_fast_error e = {0};
    bwd_ctx b = {K, &p, d, dx, dgamma, dbeta, dy, relu ? y : NULL, x, mean, invstd,
                 gamma, NULL, &s, &e, who};
    bn_fast_op op = {3, grad_sums_step, grad_sums_merge, train_coefs, dx_step, &b};
    bn_fast_run(&p, &op, s.part, s.ok);
    bn_fast_scratch_free(&s);
    return bn_fast_raise(&e);
}

int bn_backward_train_fast(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *mean, const float *invstd,
                           const float *gamma, const bn_desc *d)
{
    return backward_train(__func__, 0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd,
                          gamma, d);
}

int bn_backward_train_relu_fast(float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *y, const float *x,
                                const float *mean, const float *invstd,
                                const float *gamma, const bn_desc *d)
{
    return backward_train(__func__, 1, dx, dgamma, dbeta, dy, y, x, mean, invstd,
                          gamma, d);
}

/* Inference, step 2: only the parameter gradients (dx is already out). */
static int infer_coefs(const bn_fast_op *op, size_t c, double *S)
{
    const bwd_ctx *b = op->ctx;
    exact_if_needed(b, c, S);
    store_param_grads(b, c, S);
    return 1;
}

/* With the statistics frozen, y = scale·x + shift is linear in x:
 *   dx = dy·gamma·s,  dgamma = Σ dy·xhat,  dbeta = Σ dy,  s = 1/sqrt(var + eps). */
int bn_backward_infer_fast(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *gamma, const float *mean,
                           const float *var, const bn_desc *d)
{
    const char *who = __func__;
    BN_TRY(bn_check_infer_args(who, d, gamma, NULL, 0, mean, var));
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    BN_REQUIRE(x);
    if (d->affine) {
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
    }
    BN_TRY(bn_fast_check_population(who, d, mean, var, gamma));
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    bn_fast_plan p = bn_fast_plan_make(d, 3);
    bn_fast_scratch s;
    BN_TRY(bn_fast_scratch_new(&s, &p, 3, who));
    for (size_t c = 0; c < p.C; c++) {
        double sd = 1.0 / sqrt((double)var[c] + d->eps);
        double a = (d->affine ? gamma[c] : 1.0) * sd;
        if (isinf((float)a)) {
            bn_fast_scratch_free(&s);
            BN_ERROR(BN_EDOM, "%s: channel %zu: gamma/sqrt(var + eps) = %g does not "
                     "fit in a float", who, c, a);
        }
        s.center[c] = mean[c], s.a[c] = (float)a, s.b[c] = (float)sd;
    }
    bn_fast_error e = {0};
    bwd_ctx b = {K, &p, d, dx, dgamma, dbeta, dy, NULL, x, mean, NULL, gamma, var, &s,
                 &e, who};
    bn_fast_op op = {3, grad_sums_step, grad_sums_merge, infer_coefs, NULL, &b};
    bn_fast_run(&p, &op, s.part, s.ok);
    bn_fast_scratch_free(&s);
    return bn_fast_raise(&e);
}
