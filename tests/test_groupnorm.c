/*
 * test_groupnorm.c — Group Normalization and its cases in ref/:
 *   - finite-difference gradient checks for every G that divides C, every
 *     test shape (max relative error printed, <= 1e-7);
 *   - GN with G = 1 is LayerNorm, checked against GSL's statistics per
 *     example; GN with G = C is InstanceNorm, which is BN applied to each
 *     example alone;
 *   - LN's output for one example does not depend on the other examples;
 *   - layouts agree; bad G is an error.
 * Run: make check, or build/tests/test_groupnorm.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>

#include "harness.h"

#define FD_MAX_REL 1e-7 /* the bound, in double */

typedef struct {
    bn_desc d;
    size_t G, n, C, sets;
    double *x, *gamma, *beta, *w, *y, *mean, *var, *invstd;
} gn_problem;

static double gn_loss(void *ctx)
{
    gn_problem *p = ctx;
    ck_assert_int_eq(bn_groupnorm_forward_ref(p->y, p->mean, p->var, p->invstd, p->x,
                                              p->gamma, p->beta, &p->d, p->G), BN_OK);
    long double L = 0;
    for (size_t k = 0; k < p->n; k++)
        L += p->w[k] * p->y[k];
    return (double)L;
}

static gn_problem gn_new(const bn_desc *d, size_t G, unsigned long seed)
{
    gn_problem p = {.d = *d, .G = G, .C = d->C, .sets = d->N * G};
    ck_assert_int_eq(bn_desc_check(d, 0, &p.n, NULL), BN_OK);
    p.x = dalloc(p.n), p.w = dalloc(p.n), p.y = dalloc(p.n);
    p.gamma = dalloc(p.C), p.beta = dalloc(p.C);
    p.mean = dalloc(p.sets), p.var = dalloc(p.sets), p.invstd = dalloc(p.sets);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.x, p.n, -0.5, 2);
    fill_uniform(r, p.w, p.n, -1, 1);
    fill_uniform(r, p.gamma, p.C, 0.5, 2);
    fill_uniform(r, p.beta, p.C, -0.5, 0.5);
    gsl_rng_free(r);
    return p;
}

static void gn_free(gn_problem *p)
{
    free(p->x), free(p->w), free(p->y), free(p->gamma), free(p->beta);
    free(p->mean), free(p->var), free(p->invstd);
}

/* Every test shape, every G dividing C whose sets hold >= 2 values. Step h in
 * units of the smallest set's standard deviation, as in test_backward.c. */
START_TEST(fd_groupnorm_every_G)
{
    const bn_desc *d = &test_shapes[_i];
    for (size_t G = 1; G <= d->C; G++) {
        if (d->C % G != 0 || d->C / G * d->H * d->W < 2)
            continue;
        bn_desc dg_desc = *d;
        dg_desc.eps = fd_eps(d->C / G * d->H * d->W, d->eps); /* sets of 2: see fd_eps */
        gn_problem p = gn_new(&dg_desc, G, 2000 + 10 * _i + G);
        double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
        gn_loss(&p);
        ck_assert_int_eq(bn_groupnorm_backward_ref(dx, dg, db, p.w, p.x, p.mean, p.invstd,
                                                   p.gamma, &p.d, G), BN_OK);
        double sd_min = INFINITY;
        for (size_t k = 0; k < p.sets; k++)
            sd_min = fmin(sd_min, sqrt(p.var[k] + p.d.eps));
        fd_param params[] = {{"dx", p.x, dx, p.n}, {"dgamma", p.gamma, dg, p.C},
                             {"dbeta", p.beta, db, p.C}};
        char label[128];
        snprintf(label, sizeof label, "groupnorm G=%zu%s %s", G,
                 G == 1 ? " (LN)" : G == d->C ? " (IN)" : "", desc_str(&p.d));
        double e = fd_check(label, params, d->affine ? 3 : 1, 1e-3 * sd_min, gn_loss, &p);
        ck_assert_msg(e <= FD_MAX_REL, "%s: rel err %g > %g", label, e, FD_MAX_REL);
        free(dx), free(dg), free(db);
        gn_free(&p);
    }
}
END_TEST

/* G = 1 is LayerNorm: per example, mean and biased variance of all C·H·W
 * values, here from GSL; y from them directly. Double, O(C·H·W) roundings:
 * rtol 1e-13 on the statistics, atol 1e-13 on O(1) outputs. */
START_TEST(G1_is_layernorm)
{
    const bn_desc *d = &test_shapes[_i];
    gn_problem p = gn_new(d, 1, 2100 + _i);
    ck_assert_int_eq(bn_layernorm_forward_ref(p.y, p.mean, p.var, p.invstd, p.x, p.gamma,
                                              p.beta, d), BN_OK);
    size_t per = d->C * d->H * d->W, HW = d->H * d->W;
    double *v = dalloc(per), *gm = dalloc(d->N), *gv = dalloc(d->N), *want = dalloc(p.n);
    for (size_t n = 0; n < d->N; n++) {
        for (size_t c = 0; c < d->C; c++)
            for (size_t i = 0; i < HW; i++)
                v[c * HW + i] = p.x[index_of(d, n, c, i)];
        gm[n] = gsl_stats_mean(v, 1, per);
        gv[n] = gsl_stats_variance_with_fixed_mean(v, 1, per, gm[n]);
        for (size_t c = 0; c < d->C; c++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = index_of(d, n, c, i);
                double g = d->affine ? p.gamma[c] : 1, b = d->affine ? p.beta[c] : 0;
                want[k] = g * (p.x[k] - gm[n]) / sqrt(gv[n] + d->eps) + b;
            }
    }
    printf("  layernorm vs GSL, %s\n", desc_str(d));
    ck_assert_uint_eq(cmp_f64("LN mean vs gsl_stats_mean", p.mean, gm, d->N, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("LN var vs gsl ..._with_fixed_mean", p.var, gv, d->N, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("LN y vs direct", p.y, want, p.n, 1e-13, 0), 0);
    free(v), free(gm), free(gv), free(want);
    gn_free(&p);
}
END_TEST

/* G = C is InstanceNorm, which is BN of each example on its own (a batch of
 * N = 1: per channel over its H·W pixels). Both gather the same values in the
 * same order and run the same steps: bit-identical, forward and backward. */
START_TEST(GC_is_instancenorm_is_bn_per_example)
{
    const bn_desc *d = &test_shapes[_i];
    if (d->H * d->W < 2) {
        skip("InstanceNorm on (N, D) data", "one pixel per channel: IN is undefined (BN_ESINGLE)");
        return;
    }
    gn_problem p = gn_new(d, d->C, 2200 + _i);
    ck_assert_int_eq(bn_instancenorm_forward_ref(p.y, p.mean, p.var, p.invstd, p.x, p.gamma,
                                                 p.beta, d), BN_OK);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    ck_assert_int_eq(bn_instancenorm_backward_ref(dx, dg, db, p.w, p.x, p.mean, p.invstd,
                                                  p.gamma, d), BN_OK);
    bn_desc one = *d;
    one.N = 1;
    size_t per = d->C * d->H * d->W;
    double *y1 = dalloc(p.n), *dx1 = dalloc(p.n), *m1 = dalloc(p.sets), *v1 = dalloc(p.sets);
    double *s1 = dalloc(p.sets), *dg1 = dalloc(p.C), *db1 = dalloc(p.C);
    double *dgs = dalloc(p.C), *dbs = dalloc(p.C);
    for (size_t n = 0; n < d->N; n++) {  /* each example is a contiguous block */
        ck_assert_int_eq(bn_forward_train_ref(y1 + n * per, m1 + n * d->C, v1 + n * d->C,
                                              s1 + n * d->C, p.x + n * per, p.gamma,
                                              p.beta, &one), BN_OK);
        ck_assert_int_eq(bn_backward_train_closed_ref(dx1 + n * per, dg1, db1, p.w + n * per,
                                                      p.x + n * per, m1 + n * d->C,
                                                      s1 + n * d->C, p.gamma, &one), BN_OK);
        for (size_t c = 0; c < d->C && d->affine; c++)
            dgs[c] += dg1[c], dbs[c] += db1[c];
    }
    printf("  instancenorm vs BN per example, %s\n", desc_str(d));
    ck_assert_uint_eq(cmp_f64("IN y vs BN per example", p.y, y1, p.n, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("IN mean vs BN per example", p.mean, m1, p.sets, 0, 0), 0);
    /* dx: the same formula, but GN multiplies dy by gamma before the means
     * and BN after: a few roundings of O(1) values, atol 1e-14. dgamma and
     * dbeta: sums over examples in another order: rtol 1e-13. */
    ck_assert_uint_eq(cmp_f64("IN dx vs BN per example", dx, dx1, p.n, 1e-14, 0), 0);
    if (d->affine) {
        ck_assert_uint_eq(cmp_f64("IN dgamma vs BN per example", dg, dgs, p.C, 1e-14, 1e-13), 0);
        ck_assert_uint_eq(cmp_f64("IN dbeta vs BN per example", db, dbs, p.C, 1e-14, 1e-13), 0);
    }
    free(dx), free(dg), free(db), free(y1), free(dx1), free(m1), free(v1), free(s1);
    free(dg1), free(db1), free(dgs), free(dbs);
    gn_free(&p);
}
END_TEST

/* LN normalizes each example on its own: changing every other example leaves
 * example 0's output bit for bit the same (unlike BN). */
START_TEST(layernorm_ignores_other_examples)
{
    bn_desc d = bn_desc_make(5, 6, 2, 3, _i ? BN_NHWC : BN_NCHW, 1e-5);
    gn_problem p = gn_new(&d, 1, 2300 + _i), q = gn_new(&d, 1, 2300 + _i);
    for (size_t n = 1; n < d.N; n++)
        for (size_t c = 0; c < d.C; c++)
            for (size_t i = 0; i < d.H * d.W; i++)
                q.x[index_of(&d, n, c, i)] = 100 * q.x[index_of(&d, n, c, i)] + 7;
    gn_loss(&p);
    gn_loss(&q);
    double *y0p = dalloc(d.C * 6), *y0q = dalloc(d.C * 6);
    size_t j = 0;
    for (size_t c = 0; c < d.C; c++)
        for (size_t i = 0; i < d.H * d.W; i++, j++)
            y0p[j] = p.y[index_of(&d, 0, c, i)], y0q[j] = q.y[index_of(&d, 0, c, i)];
    ck_assert_uint_eq(cmp_f64("LN example 0, others changed", y0q, y0p, j, 0, 0), 0);
    /* and BN's does change: the test can tell the difference */
    double *mb = dalloc(d.C), *vb = dalloc(d.C);
    ck_assert_int_eq(bn_forward_train_ref(q.y, mb, vb, NULL, q.x, q.gamma, q.beta, &d), BN_OK);
    ck_assert_msg(q.y[index_of(&d, 0, 0, 0)] != p.y[index_of(&d, 0, 0, 0)],
                  "BN's output for example 0 should depend on the others");
    free(y0p), free(y0q), free(mb), free(vb);
    gn_free(&p);
    gn_free(&q);
}
END_TEST

/* The same tensor in NCHW and NHWC: the same sets gathered in the same order,
 * so bit-identical results. */
START_TEST(groupnorm_layouts_agree)
{
    bn_desc a = bn_desc_make(3, 6, 4, 5, BN_NCHW, 1e-5), b = a;
    b.layout = BN_NHWC;
    gn_problem p = gn_new(&a, 3, 2400), q = gn_new(&b, 3, 2400);
    relayout(q.x, &b, p.x, &a);
    gn_loss(&p);
    gn_loss(&q);
    double *back = dalloc(p.n);
    relayout(back, &a, q.y, &b);
    ck_assert_uint_eq(cmp_f64("GN y nhwc vs nchw", back, p.y, p.n, 0, 0), 0);
    free(back);
    gn_free(&p);
    gn_free(&q);
}
END_TEST

START_TEST(bad_group_counts)
{
    bn_desc d = bn_desc_make(2, 6, 1, 1, BN_NCHW, 1e-5);
    double x[12] = {0}, y[12], m[12], v[12];
    errors_quiet();
    ck_assert_int_eq(bn_groupnorm_forward_ref(y, m, v, NULL, x, NULL, NULL, &d, 4), BN_EINVAL);
    ck_assert(strstr(bn_last_error(), "must divide C") != NULL);
    ck_assert_int_eq(bn_groupnorm_forward_ref(y, m, v, NULL, x, NULL, NULL, &d, 0), BN_EINVAL);
    /* (N, D) data with G = C: one value per set */
    d.affine = 0;
    ck_assert_int_eq(bn_instancenorm_forward_ref(y, m, v, NULL, x, NULL, NULL, &d), BN_ESINGLE);
    errors_loud();
}
END_TEST

static Suite *groupnorm_suite(void)
{
    Suite *s = suite_create("groupnorm: GN, LN, IN");
    TCase *tc = tcase_create("gradients");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, fd_groupnorm_every_G, 0, (int)n_test_shapes);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("special cases and properties");
    tcase_add_loop_test(tc2, G1_is_layernorm, 0, (int)n_test_shapes);
    tcase_add_loop_test(tc2, GC_is_instancenorm_is_bn_per_example, 0, (int)n_test_shapes);
    tcase_add_loop_test(tc2, layernorm_ignores_other_examples, 0, 2);
    tcase_add_test(tc2, groupnorm_layouts_agree);
    tcase_add_test(tc2, bad_group_counts);
    suite_add_tcase(s, tc2);
    return s;
}

int main(void)
{
    Suite *suites[] = {groupnorm_suite()};
    return run_suites(suites, 1) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
