/*
 * test_family.c — the rest of the normalization family in ref/:
 *   Batch Renormalization, Ghost BN, Weight Normalization, PreciseBN.
 * Each differentiable function is checked against finite differences (max
 * relative error printed, <= 1e-7), and each against the property that ties
 * it to BN: BRN with r = 1, d = 0 is BN; Ghost BN with one virtual batch is
 * BN; ‖w‖ = g for WN; PreciseBN equals Algorithm 2's population estimate.
 * Run: make check, or build/tests/test_family.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>

#include "harness.h"

#define FD_MAX_REL 1e-7 /* the bound, in double */

/* ------------------------------------------------ Batch Renormalization */

typedef struct {
    bn_desc d;
    size_t n, C;
    double rmax, dmax;
    double *x, *gamma, *beta, *w, *y, *mean, *var, *inv, *r, *dd, *mu, *sd;
} brn;

static brn brn_new(const bn_desc *d, unsigned long seed, double mu_far, double sd_scale)
{
    brn p = {.d = *d, .C = d->C, .rmax = 3, .dmax = 5};
    ck_assert_int_eq(bn_desc_check(d, 1, &p.n, NULL), BN_OK);
    p.x = dalloc(p.n), p.w = dalloc(p.n), p.y = dalloc(p.n);
    p.gamma = dalloc(p.C), p.beta = dalloc(p.C), p.mean = dalloc(p.C), p.var = dalloc(p.C);
    p.inv = dalloc(p.C), p.r = dalloc(p.C), p.dd = dalloc(p.C), p.mu = dalloc(p.C);
    p.sd = dalloc(p.C);
    gsl_rng *rng = rng_new(seed);
    fill_gaussian(rng, p.x, p.n, 1, 1.5);
    fill_uniform(rng, p.w, p.n, -1, 1);
    fill_uniform(rng, p.gamma, p.C, 0.5, 2);
    fill_uniform(rng, p.beta, p.C, -0.5, 0.5);
    fill_uniform(rng, p.mu, p.C, 0.5 + mu_far, 1.5 + mu_far);
    fill_uniform(rng, p.sd, p.C, 1.2 * sd_scale, 1.8 * sd_scale);
    gsl_rng_free(rng);
    return p;
}

static void brn_free(brn *p)
{
    free(p->x), free(p->w), free(p->y), free(p->gamma), free(p->beta), free(p->mean);
    free(p->var), free(p->inv), free(p->r), free(p->dd), free(p->mu), free(p->sd);
}

static double brn_loss(void *ctx)
{
    brn *p = ctx;
    ck_assert_int_eq(bn_renorm_forward_train_ref(p->y, p->mean, p->var, p->inv, p->r, p->dd,
                                                 p->x, p->gamma, p->beta, p->mu, p->sd,
                                                 &p->d, p->rmax, p->dmax), BN_OK);
    long double L = 0;
    for (size_t k = 0; k < p->n; k++)
        L += p->w[k] * p->y[k];
    return (double)L;
}

/* rmax = 1, dmax = 0 forces r = 1, d = 0: y = gamma·(x0·1 + 0) + beta is BN's
 * y operation for operation, and the backward is BN's closed form with
 * gamma·1: bit-identical. */
START_TEST(renorm_r1_d0_is_bn)
{
    const bn_desc *d = &test_shapes[_i];
    brn p = brn_new(d, 3000 + _i, 0.3, 1);
    p.rmax = 1, p.dmax = 0;
    brn_loss(&p);
    double *y = dalloc(p.n), *m = dalloc(p.C), *v = dalloc(p.C), *s = dalloc(p.C);
    ck_assert_int_eq(bn_forward_train_ref(y, m, v, s, p.x, p.gamma, p.beta, d), BN_OK);
    ck_assert_uint_eq(cmp_f64("BRN(r=1,d=0) y vs BN", p.y, y, p.n, 0, 0), 0);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    double *dx2 = dalloc(p.n), *dg2 = dalloc(p.C), *db2 = dalloc(p.C);
    ck_assert_int_eq(bn_renorm_backward_train_ref(dx, dg, db, p.w, p.x, p.mean, p.inv, p.r,
                                                  p.dd, p.gamma, d), BN_OK);
    ck_assert_int_eq(bn_backward_train_closed_ref(dx2, dg2, db2, p.w, p.x, m, s, p.gamma, d),
                     BN_OK);
    ck_assert_uint_eq(cmp_f64("BRN(r=1,d=0) dx vs BN", dx, dx2, p.n, 0, 0), 0);
    if (d->affine)
        ck_assert_uint_eq(cmp_f64("BRN(r=1,d=0) dgamma vs BN", dg, dg2, p.C, 0, 0), 0);
    free(y), free(m), free(v), free(s), free(dx), free(dg), free(db), free(dx2), free(dg2);
    free(db2);
    brn_free(&p);
}
END_TEST

/* Moving statistics far from the batch's clip r to 1/rmax and d to ±dmax,
 * so r and d are locally constant and finite differences of the forward
 * itself check the backward. */
START_TEST(fd_renorm_clipped)
{
    bn_desc dd = test_shapes[_i];
    const bn_desc *d = &dd;
    dd.eps = fd_eps(dd.N * dd.H * dd.W, dd.eps);   /* m' = 2: see fd_eps */
    brn p = brn_new(d, 3100 + _i, 200, 10);
    brn_loss(&p);
    for (size_t c = 0; c < p.C; c++)
        ck_assert_msg(p.r[c] == 1 / p.rmax && fabs(p.dd[c]) == p.dmax,
                      "channel %zu: r = %g, d = %g are not clipped", c, p.r[c], p.dd[c]);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    ck_assert_int_eq(bn_renorm_backward_train_ref(dx, dg, db, p.w, p.x, p.mean, p.inv, p.r,
                                                  p.dd, p.gamma, d), BN_OK);
    double sd_min = INFINITY;
    for (size_t c = 0; c < p.C; c++)
        sd_min = fmin(sd_min, 1 / p.inv[c]);
    fd_param prm[] = {{"dx", p.x, dx, p.n}, {"dgamma", p.gamma, dg, p.C},
                      {"dbeta", p.beta, db, p.C}};
    char label[128];
    snprintf(label, sizeof label, "renorm clipped %s", desc_str(d));
    double e = fd_check(label, prm, d->affine ? 3 : 1, 1e-3 * sd_min, brn_loss, &p);
    ck_assert_msg(e <= FD_MAX_REL, "%s: %g", label, e);
    free(dx), free(dg), free(db);
    brn_free(&p);
}
END_TEST

/* r and d inside the clip range depend on x, but backprop treats them as
 * constants. The function whose gradient that is: x -> gamma·(x0·r0 + d0) + beta
 * with r0, d0 frozen, which is BN with gamma' = gamma·r0, beta' = gamma·d0 + beta.
 * Finite differences of that BN check dx; those of the renorm forward itself
 * check dgamma and dbeta (gamma and beta do not move r or d). */
typedef struct {
    bn_desc d;
    size_t n;
    double *x, *g2, *b2, *w, *y, *m, *v;
} frozen;

static double frozen_loss(void *ctx)
{
    frozen *f = ctx;
    ck_assert_int_eq(bn_forward_train_ref(f->y, f->m, f->v, NULL, f->x, f->g2, f->b2, &f->d),
                     BN_OK);
    long double L = 0;
    for (size_t k = 0; k < f->n; k++)
        L += f->w[k] * f->y[k];
    return (double)L;
}

START_TEST(fd_renorm_interior_is_frozen_r_d)
{
    bn_desc d = test_shapes[_i];
    d.affine = 1;
    brn p = brn_new(&d, 3200 + _i, 0.05, 0.7);
    brn_loss(&p);
    size_t interior = 0;
    for (size_t c = 0; c < p.C; c++)
        interior += p.r[c] > 1 / p.rmax && p.r[c] < p.rmax && fabs(p.dd[c]) < p.dmax;
    ck_assert_msg(interior == p.C, "r or d clipped: this test needs them inside the range");
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    ck_assert_int_eq(bn_renorm_backward_train_ref(dx, dg, db, p.w, p.x, p.mean, p.inv, p.r,
                                                  p.dd, p.gamma, &d), BN_OK);
    frozen f = {.d = d, .n = p.n, .x = p.x, .w = p.w, .y = dalloc(p.n), .m = dalloc(p.C),
                .v = dalloc(p.C), .g2 = dalloc(p.C), .b2 = dalloc(p.C)};
    for (size_t c = 0; c < p.C; c++)
        f.g2[c] = p.gamma[c] * p.r[c], f.b2[c] = p.gamma[c] * p.dd[c] + p.beta[c];
    double sd_min = INFINITY;
    for (size_t c = 0; c < p.C; c++)
        sd_min = fmin(sd_min, 1 / p.inv[c]);
    char label[128];
    snprintf(label, sizeof label, "renorm r,d frozen: dx %s", desc_str(&d));
    fd_param px[] = {{"dx", p.x, dx, p.n}};
    double e1 = fd_check(label, px, 1, 1e-3 * sd_min, frozen_loss, &f);
    snprintf(label, sizeof label, "renorm: dgamma, dbeta %s", desc_str(&d));
    fd_param pg[] = {{"dgamma", p.gamma, dg, p.C}, {"dbeta", p.beta, db, p.C}};
    double e2 = fd_check(label, pg, 2, 1e-3, brn_loss, &p);
    ck_assert_msg(e1 <= FD_MAX_REL && e2 <= FD_MAX_REL, "rel err %g, %g", e1, e2);
    free(dx), free(dg), free(db), free(f.y), free(f.m), free(f.v), free(f.g2), free(f.b2);
    brn_free(&p);
}
END_TEST

/* The moving averages, inference and the schedule against hand-computed
 * values (a few roundings: rtol 1e-15). */
START_TEST(renorm_update_infer_schedule)
{
    double mu[2] = {0, 1}, sd[2] = {1, 2}, bm[2] = {2, 1}, bv[2] = {3, 0};
    ck_assert_int_eq(bn_renorm_update_ref(mu, sd, bm, bv, 2, 1, 0.01), BN_OK);
    /* mu += 0.01·(mu_B - mu), sd += 0.01·(sqrt(var + eps) - sd) */
    double want_mu[2] = {0.02, 1}, want_sd[2] = {1.01, 1.99};
    ck_assert_uint_eq(cmp_f64("BRN moving mean", mu, want_mu, 2, 0, 1e-15), 0);
    ck_assert_uint_eq(cmp_f64("BRN moving sd", sd, want_sd, 2, 0, 1e-15), 0);

    bn_desc d = bn_desc_make(2, 2, 1, 1, BN_NCHW, 123 /* unused at inference */);
    double x[4] = {1, 2, 3, -1}, y[4], g[2] = {2, 1}, b[2] = {0.5, 0};
    double m2[2] = {1, 0}, s2[2] = {4, 0.5};
    ck_assert_int_eq(bn_renorm_forward_infer_ref(y, x, g, b, m2, s2, &d), BN_OK);
    double want_y[4] = {2 * 0 / 4.0 + 0.5, 2 / 0.5, 2 * 2 / 4.0 + 0.5, -1 / 0.5};
    ck_assert_uint_eq(cmp_f64("BRN inference", y, want_y, 4, 0, 1e-15), 0);

    static const long steps[] = {0, 5000, 22500, 25000, 40000, 100000};
    static const double want_r[] = {1, 1, 2, 1 + 2 * 20000.0 / 35000, 3, 3};
    static const double want_d[] = {0, 0, 4.375, 5, 5, 5};
    double rr[6], dd[6];
    for (int k = 0; k < 6; k++)
        bn_renorm_schedule(steps[k], &rr[k], &dd[k]);
    ck_assert_uint_eq(cmp_f64("BRN schedule rmax", rr, want_r, 6, 0, 1e-15), 0);
    ck_assert_uint_eq(cmp_f64("BRN schedule dmax", dd, want_d, 6, 0, 1e-15), 0);

    /* rmax < 1 or dmax < 0 would clip to an empty range; sd <= 0 is no sd */
    double xs[4] = {1, 2, 3, 4}, ys[4], mb[2], vb[2], ib[2], rb[2], db2[2];
    bn_desc d2 = bn_desc_make(2, 2, 1, 1, BN_NCHW, 1e-5);
    errors_quiet();
    ck_assert_int_eq(bn_renorm_forward_train_ref(ys, mb, vb, ib, rb, db2, xs, g, b, m2, s2, &d2,
                                                 0.5, 1), BN_EINVAL);
    ck_assert_int_eq(bn_renorm_forward_train_ref(ys, mb, vb, ib, rb, db2, xs, g, b, m2, s2, &d2,
                                                 2, -1), BN_EINVAL);
    s2[1] = 0;
    ck_assert_int_eq(bn_renorm_forward_train_ref(ys, mb, vb, ib, rb, db2, xs, g, b, m2, s2, &d2,
                                                 2, 1), BN_EDOM);
    /* the update refuses moving statistics that are not ones (NaN mean, sd < 0) */
    double bad_mu[1] = {NAN}, bad_sd[1] = {-1}, ok_mu[1] = {0}, ok_sd[1] = {1};
    ck_assert_int_eq(bn_renorm_update_ref(bad_mu, ok_sd, bm, bv, 1, 1e-5, 0.1), BN_EDOM);
    ck_assert_int_eq(bn_renorm_update_ref(ok_mu, bad_sd, bm, bv, 1, 1e-5, 0.1), BN_EDOM);
    errors_loud();
}
END_TEST

/* --------------------------------------------------------------- Ghost BN */

typedef struct {
    bn_desc d;
    size_t V, n, K;
    double *x, *gamma, *beta, *w, *y, *mean, *var, *inv;
} ghost;

static double ghost_loss(void *ctx)
{
    ghost *p = ctx;
    ck_assert_int_eq(bn_ghost_forward_train_ref(p->y, p->mean, p->var, p->inv, p->x, p->gamma,
                                                p->beta, &p->d, p->V), BN_OK);
    long double L = 0;
    for (size_t k = 0; k < p->n; k++)
        L += p->w[k] * p->y[k];
    return (double)L;
}

static ghost ghost_new(const bn_desc *d, size_t V, unsigned long seed)
{
    ghost p = {.d = *d, .V = V, .K = d->N / V};
    ck_assert_int_eq(bn_desc_check(d, 1, &p.n, NULL), BN_OK);
    p.x = dalloc(p.n), p.w = dalloc(p.n), p.y = dalloc(p.n);
    p.gamma = dalloc(d->C), p.beta = dalloc(d->C);
    p.mean = dalloc(p.K * d->C), p.var = dalloc(p.K * d->C), p.inv = dalloc(p.K * d->C);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.x, p.n, 0.5, 1.3);
    fill_uniform(r, p.w, p.n, -1, 1);
    fill_uniform(r, p.gamma, d->C, 0.5, 2);
    fill_uniform(r, p.beta, d->C, -0.5, 0.5);
    gsl_rng_free(r);
    return p;
}

static void ghost_free(ghost *p)
{
    free(p->x), free(p->w), free(p->y), free(p->gamma), free(p->beta), free(p->mean);
    free(p->var), free(p->inv);
}

/* One virtual batch (V = N) is BN: the same call on the same data. */
START_TEST(ghost_one_virtual_batch_is_bn)
{
    const bn_desc *d = &test_shapes[_i];
    ghost p = ghost_new(d, d->N, 3300 + _i);
    ghost_loss(&p);
    double *y = dalloc(p.n), *m = dalloc(d->C), *v = dalloc(d->C), *s = dalloc(d->C);
    ck_assert_int_eq(bn_forward_train_ref(y, m, v, s, p.x, p.gamma, p.beta, d), BN_OK);
    ck_assert_uint_eq(cmp_f64("ghost(V=N) y vs BN", p.y, y, p.n, 0, 0), 0);
    free(y), free(m), free(v), free(s);
    ghost_free(&p);
}
END_TEST

/* Virtual batches of V = 2 and 3 examples (N = 6): finite differences, and
 * the statistics of virtual batch 1 against GSL over its own examples. */
START_TEST(fd_ghost)
{
    size_t V = _i ? 3 : 2;
    bn_desc d = bn_desc_make(6, 3, 2, 5, _i ? BN_NHWC : BN_NCHW, 1e-5);
    ghost p = ghost_new(&d, V, 3400 + _i);
    ghost_loss(&p);
    double *dx = dalloc(p.n), *dg = dalloc(d.C), *db = dalloc(d.C);
    ck_assert_int_eq(bn_ghost_backward_train_ref(dx, dg, db, p.w, p.x, p.mean, p.inv, p.gamma,
                                                 &d, V), BN_OK);
    double sd_min = INFINITY;
    for (size_t k = 0; k < p.K * d.C; k++)
        sd_min = fmin(sd_min, 1 / p.inv[k]);
    fd_param prm[] = {{"dx", p.x, dx, p.n}, {"dgamma", p.gamma, dg, d.C},
                      {"dbeta", p.beta, db, d.C}};
    char label[96];
    snprintf(label, sizeof label, "ghost V=%zu %s", V, desc_str(&d));
    double e = fd_check(label, prm, 3, 1e-3 * sd_min, ghost_loss, &p);
    ck_assert_msg(e <= FD_MAX_REL, "%s: %g", label, e);

    bn_desc vd = d;
    vd.N = V;
    size_t m = V * d.H * d.W, block = V * d.C * d.H * d.W;
    double *vals = dalloc(m), gm[3], gv[3];
    for (size_t c = 0; c < d.C; c++) {
        channel_values(vals, p.x + block, &vd, c);
        gm[c] = gsl_stats_mean(vals, 1, m);
        gv[c] = gsl_stats_variance_with_fixed_mean(vals, 1, m, gm[c]);
    }
    /* double sums of m values: rtol 1e-13 */
    ck_assert_uint_eq(cmp_f64("ghost batch 1 mean vs GSL", p.mean + d.C, gm, d.C, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("ghost batch 1 var vs GSL", p.var + d.C, gv, d.C, 0, 1e-13), 0);
    free(dx), free(dg), free(db), free(vals);
    ghost_free(&p);
}
END_TEST

/* The running update applies the K virtual batches in order, as K separate
 * updates would (same calls: bit-identical); V must divide N. */
START_TEST(ghost_running_and_errors)
{
    bn_desc d = bn_desc_make(6, 3, 2, 5, BN_NCHW, 1e-5);
    ghost p = ghost_new(&d, 2, 3500);
    ghost_loss(&p);
    double rm[3] = {0, 0, 0}, rv[3] = {1, 1, 1}, rm2[3] = {0, 0, 0}, rv2[3] = {1, 1, 1};
    size_t nb = 0, nb2 = 0;
    ck_assert_int_eq(bn_ghost_running_update_ref(rm, rv, &nb, p.mean, p.var, p.K, 3, 20,
                                                 BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), BN_OK);
    for (size_t k = 0; k < p.K; k++)
        ck_assert_int_eq(bn_running_update_ref(rm2, rv2, &nb2, p.mean + 3 * k, p.var + 3 * k, 3,
                                               20, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), BN_OK);
    ck_assert_uint_eq(cmp_f64("ghost running mean vs K updates", rm, rm2, 3, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("ghost running var vs K updates", rv, rv2, 3, 0, 0), 0);
    ck_assert_uint_eq(nb, p.K);
    errors_quiet();
    ck_assert_int_eq(bn_ghost_forward_train_ref(p.y, p.mean, p.var, p.inv, p.x, p.gamma, p.beta,
                                                &d, 4), BN_EINVAL);
    errors_loud();
    ghost_free(&p);
}
END_TEST

/* ---------------------------------------------------- Weight Normalization */

typedef struct {
    size_t K, D;
    double *v, *g, *w, *vnorm, *W;   /* W: fixed weights of the loss Σ W·w */
} wn;

static double wn_loss(void *ctx)
{
    wn *p = ctx;
    ck_assert_int_eq(bn_weightnorm_forward_ref(p->w, p->vnorm, p->v, p->g, p->K, p->D), BN_OK);
    long double L = 0;
    for (size_t k = 0; k < p->K * p->D; k++)
        L += p->W[k] * p->w[k];
    return (double)L;
}

/* ‖w_k‖ = g_k (D roundings: rtol 1e-14), and finite differences of
 * L = Σ W·w check dl/dv and dl/dg. */
START_TEST(fd_weightnorm)
{
    wn p = {.K = 4, .D = 7};
    p.v = dalloc(28), p.g = dalloc(4), p.w = dalloc(28), p.vnorm = dalloc(4), p.W = dalloc(28);
    gsl_rng *r = rng_new(3600);
    fill_gaussian(r, p.v, 28, 0, 1);
    fill_uniform(r, p.g, 4, 0.5, 2);
    fill_uniform(r, p.W, 28, -1, 1);
    gsl_rng_free(r);
    wn_loss(&p);
    double norms[4];
    for (size_t k = 0; k < 4; k++) {
        long double s = 0;
        for (size_t j = 0; j < 7; j++)
            s += p.w[k * 7 + j] * p.w[k * 7 + j];
        norms[k] = (double)sqrtl(s);
    }
    ck_assert_uint_eq(cmp_f64("‖w_k‖ vs g_k", norms, p.g, 4, 0, 1e-14), 0);
    double *dv = dalloc(28), *dg = dalloc(4);
    ck_assert_int_eq(bn_weightnorm_backward_ref(dv, dg, p.W, p.v, p.g, p.vnorm, 4, 7), BN_OK);
    fd_param prm[] = {{"dv", p.v, dv, 28}, {"dg", p.g, dg, 4}};
    double e = fd_check("weightnorm K=4 D=7", prm, 2, 1e-3, wn_loss, &p);
    ck_assert_msg(e <= FD_MAX_REL, "weightnorm: %g", e);
    free(p.v), free(p.g), free(p.w), free(p.vnorm), free(p.W), free(dv), free(dg);
}
END_TEST

/* Data-dependent init: after it, g·t + b has mean 0 and biased variance 1
 * per unit on that batch (GSL; O(N) roundings: atol 1e-14, rtol 1e-13). A
 * zero direction is an error. */
START_TEST(weightnorm_init)
{
    size_t N = 50, K = 3;
    double t[150], g[3], b[3], col[50], m[3], v[3], zero[3] = {0, 0, 0}, one[3] = {1, 1, 1};
    gsl_rng *r = rng_new(3700);
    fill_gaussian(r, t, N * K, 2.5, 4);
    gsl_rng_free(r);
    ck_assert_int_eq(bn_weightnorm_init_ref(g, b, t, N, K), BN_OK);
    for (size_t k = 0; k < K; k++) {
        for (size_t n = 0; n < N; n++)
            col[n] = g[k] * t[n * K + k] + b[k];
        m[k] = gsl_stats_mean(col, 1, N);
        v[k] = gsl_stats_variance_with_fixed_mean(col, 1, N, m[k]);
    }
    ck_assert_uint_eq(cmp_f64("WN init: mean of g·t + b", m, zero, 3, 1e-14, 0), 0);
    ck_assert_uint_eq(cmp_f64("WN init: var of g·t + b", v, one, 3, 0, 1e-13), 0);
    double vz[6] = {1, 2, 3, 0, 0, 0}, w[6], vn[2], gg[2] = {1, 1};
    errors_quiet();
    ck_assert_int_eq(bn_weightnorm_forward_ref(w, vn, vz, gg, 2, 3), BN_EDOM);
    double v2[6] = {1, 2, 3, 4, 5, 6}, gnan[2] = {NAN, 1};   /* a NaN length */
    ck_assert_int_eq(bn_weightnorm_forward_ref(w, vn, v2, gnan, 2, 3), BN_EDOM);
    errors_loud();
}
END_TEST

/* -------------------------------------------------------------- PreciseBN */

/* PreciseBN over K frozen batches equals Algorithm 2's estimate from the
 * same batch statistics (the same sums and operations: bit-identical), and
 * differs from the EMA of the same batches, which weights the last most. */
START_TEST(precise_equals_population_not_ema)
{
    size_t K = 40, C = 4;
    bn_desc d = bn_desc_make(8, C, 3, 3, BN_NHWC, 1e-5);
    size_t n, m;
    ck_assert_int_eq(bn_desc_check(&d, 1, &n, &m), BN_OK);
    double *x = dalloc(n), *y = dalloc(n), *bm = dalloc(K * C), *bv = dalloc(K * C);
    double pm[4], pv[4], qm[4], qv[4], em[4] = {0}, ev[4] = {1, 1, 1, 1};
    gsl_rng *r = rng_new(3800);
    bn_precise acc;
    ck_assert_int_eq(bn_precise_begin(&acc, C), BN_OK);
    for (size_t k = 0; k < K; k++) {
        fill_gaussian(r, x, n, 3 + 0.1 * (double)k, 2); /* a drifting input */
        ck_assert_int_eq(bn_precise_add_ref(&acc, x, &d), BN_OK);
        ck_assert_int_eq(bn_forward_train_ref(y, bm + k * C, bv + k * C, NULL, x, NULL, NULL,
                                              &(bn_desc){8, C, 3, 3, BN_NHWC, 1e-5, 0}), BN_OK);
        ck_assert_int_eq(bn_running_update_ref(em, ev, NULL, bm + k * C, bv + k * C, C, m,
                                               BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), BN_OK);
    }
    gsl_rng_free(r);
    ck_assert_int_eq(bn_precise_end_ref(&acc, pm, pv), BN_OK);
    ck_assert_int_eq(bn_population_stats_ref(qm, qv, bm, bv, K, C, m), BN_OK);
    ck_assert_uint_eq(cmp_f64("PreciseBN mean vs Alg. 2", pm, qm, C, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("PreciseBN var vs Alg. 2", pv, qv, C, 0, 0), 0);
    /* the input drifts from mean 3 to 6.9: the population mean is ~4.95,
     * the EMA (momentum 0.1) lags the latest batches by ~0.9 and sits near 6 */
    for (size_t c = 0; c < C; c++)
        ck_assert_msg(em[c] - pm[c] > 0.5, "EMA %g vs PreciseBN %g", em[c], pm[c]);
    printf("  drifting input: PreciseBN mean %.3f, EMA mean %.3f (channel 0)\n", pm[0], em[0]);

    /* a constant channel has population statistics (var 0), even with eps = 0 */
    bn_precise acc0;
    bn_desc d0 = bn_desc_make(4, 1, 1, 1, BN_NCHW, 0);
    double xc[4] = {2.5, 2.5, 2.5, 2.5}, cm, cv;
    ck_assert_int_eq(bn_precise_begin(&acc0, 1), BN_OK);
    ck_assert_int_eq(bn_precise_add_ref(&acc0, xc, &d0), BN_OK);
    ck_assert_int_eq(bn_precise_end_ref(&acc0, &cm, &cv), BN_OK);
    ck_assert_msg(cm == 2.5 && cv == 0, "constant channel: mean %g var %g", cm, cv);
    bn_precise_free(&acc0);

    bn_desc other = d;
    other.N = 4;   /* a batch of another size */
    errors_quiet();
    ck_assert_int_eq(bn_precise_add_ref(&acc, x, &other), BN_EINVAL);
    errors_loud();
    bn_precise_free(&acc);
    free(x), free(y), free(bm), free(bv);
}
END_TEST

static Suite *family_suite(void)
{
    Suite *s = suite_create("family: BRN, Ghost BN, WN, PreciseBN");
    TCase *brn_tc = tcase_create("batch renormalization");
    tcase_set_timeout(brn_tc, 120);
    tcase_add_loop_test(brn_tc, renorm_r1_d0_is_bn, 0, (int)n_test_shapes);
    tcase_add_loop_test(brn_tc, fd_renorm_clipped, 0, (int)n_test_shapes);
    tcase_add_loop_test(brn_tc, fd_renorm_interior_is_frozen_r_d, 0, 2);
    tcase_add_test(brn_tc, renorm_update_infer_schedule);
    suite_add_tcase(s, brn_tc);
    TCase *ghost_tc = tcase_create("ghost batch normalization");
    tcase_add_loop_test(ghost_tc, ghost_one_virtual_batch_is_bn, 0, (int)n_test_shapes);
    tcase_add_loop_test(ghost_tc, fd_ghost, 0, 2);
    tcase_add_test(ghost_tc, ghost_running_and_errors);
    suite_add_tcase(s, ghost_tc);
    TCase *wn_tc = tcase_create("weight normalization");
    tcase_add_test(wn_tc, fd_weightnorm);
    tcase_add_test(wn_tc, weightnorm_init);
    suite_add_tcase(s, wn_tc);
    TCase *pr_tc = tcase_create("precise BN");
    tcase_add_test(pr_tc, precise_equals_population_not_ema);
    suite_add_tcase(s, pr_tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {family_suite()};
    return run_suites(suites, 1) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
