/*
 * test_forward.c — Algorithm 1 (training forward) of ref/:
 *   - the batch statistics against GSL's statistics functions (an oracle
 *     written by other people): mean, biased and unbiased variance;
 *   - properties of the output: per-channel mean beta and variance
 *     gamma²·sigma2/(sigma2 + eps); BN(a·x + b) = BN(x) for a > 0;
 *   - layouts, affine off, in place, fused ReLU, saved invstd;
 *   - the float run-time switch against the double reference.
 * Run: make check, or build/tests/test_forward.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_double.h>

#include "harness.h"

/* Inputs and outputs of one forward pass on a test shape. */
typedef struct {
    bn_desc d;
    size_t n, C, m;
    double *x, *gamma, *beta, *y, *mean, *var, *invstd;
} fwd;

static fwd fwd_new(const bn_desc *d, unsigned long seed, double mu, double sd)
{
    fwd f = {.d = *d, .C = d->C};
    ck_assert_int_eq(bn_desc_check(d, 1, &f.n, &f.m), BN_OK);
    f.x = dalloc(f.n), f.y = dalloc(f.n);
    f.gamma = dalloc(f.C), f.beta = dalloc(f.C);
    f.mean = dalloc(f.C), f.var = dalloc(f.C), f.invstd = dalloc(f.C);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, f.x, f.n, mu, sd);
    fill_uniform(r, f.gamma, f.C, 0.5, 2);
    fill_uniform(r, f.beta, f.C, -1, 1);
    gsl_rng_free(r);
    return f;
}

static void fwd_run(fwd *f)
{
    ck_assert_int_eq(bn_forward_train_ref(f->y, f->mean, f->var, f->invstd, f->x,
                                          f->gamma, f->beta, &f->d), BN_OK);
}

static void fwd_free(fwd *f)
{
    free(f->x), free(f->y), free(f->gamma), free(f->beta);
    free(f->mean), free(f->var), free(f->invstd);
}

/* mu_B and sigma2_B against GSL: gsl_stats_mean (a running-mean recurrence),
 * gsl_stats_variance_with_fixed_mean (divides by m: biased) and
 * gsl_stats_variance (divides by m - 1: unbiased). Both sides are double
 * with O(m) roundings of 1e-16 on O(1) data: rtol 1e-13. */
START_TEST(stats_match_gsl)
{
    fwd f = fwd_new(&test_shapes[_i], 10 + _i, 3.0, 2.0);
    fwd_run(&f);
    double *v = dalloc(f.m), *gm = dalloc(f.C), *gvb = dalloc(f.C);
    double *gvu = dalloc(f.C), *ours_u = dalloc(f.C);
    for (size_t c = 0; c < f.C; c++) {
        channel_values(v, f.x, &f.d, c);
        gm[c] = gsl_stats_mean(v, 1, f.m);
        gvb[c] = gsl_stats_variance_with_fixed_mean(v, 1, f.m, gm[c]);
        gvu[c] = gsl_stats_variance(v, 1, f.m);
        ours_u[c] = f.var[c] * (double)f.m / (double)(f.m - 1);
    }
    printf("  GSL oracle, %s\n", desc_str(&f.d));
    ck_assert_uint_eq(cmp_f64("mu_B vs gsl_stats_mean", f.mean, gm, f.C, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("sigma2_B vs gsl ..._with_fixed_mean", f.var, gvb, f.C, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("m/(m-1)·sigma2_B vs gsl_stats_variance", ours_u, gvu, f.C, 0, 1e-13), 0);
    free(v), free(gm), free(gvb), free(gvu), free(ours_u);
    fwd_free(&f);
}
END_TEST

/* Per channel, y has mean beta and biased variance gamma²·sigma2/(sigma2 + eps)
 * (not gamma²: eps shrinks it, and for eps = 0.5 visibly). Measured with GSL;
 * double rounding over m' values: atol 1e-13 for the mean (values near 0),
 * rtol 1e-12 for the variance. */
START_TEST(output_moments)
{
    fwd f = fwd_new(&test_shapes[_i], 20 + _i, -4.0, 0.7);
    fwd_run(&f);
    double *v = dalloc(f.m), *ym = dalloc(f.C), *yv = dalloc(f.C);
    double *want_m = dalloc(f.C), *want_v = dalloc(f.C);
    for (size_t c = 0; c < f.C; c++) {
        double g = f.d.affine ? f.gamma[c] : 1, b = f.d.affine ? f.beta[c] : 0;
        channel_values(v, f.y, &f.d, c);
        ym[c] = gsl_stats_mean(v, 1, f.m);
        yv[c] = gsl_stats_variance_with_fixed_mean(v, 1, f.m, ym[c]);
        want_m[c] = b;
        want_v[c] = g * g * f.var[c] / (f.var[c] + f.d.eps);
    }
    printf("  output moments, %s\n", desc_str(&f.d));
    ck_assert_uint_eq(cmp_f64("mean of y vs beta", ym, want_m, f.C, 1e-13, 0), 0);
    ck_assert_uint_eq(cmp_f64("var of y vs gamma²·s2/(s2+eps)", yv, want_v, f.C, 0, 1e-12), 0);
    free(v), free(ym), free(yv), free(want_m), free(want_v);
    fwd_free(&f);
}
END_TEST

/* BN(a·x + b) = BN(x) for a > 0 when eps = 0, and with eps > 0 the identity
 * holds as BN_eps(x) = BN_{a²·eps}(a·x + b). Rounding a·x + b costs up to
 * 1e-16·|b|/(a·sigma) in xhat; with |b| <= 1e3·a·sigma: atol 1e-12. */
START_TEST(shift_and_scale_invariance)
{
    static const double a_b[][2] = {{1e-3, 5}, {7.5, -1e3}, {1e3, 3}, {1, 0}};
    const bn_desc *d0 = &test_shapes[_i];
    for (int eps_case = 0; eps_case < 2; eps_case++)
        for (size_t k = 0; k < 4; k++) {
            double a = a_b[k][0], b = a_b[k][1] * a;
            bn_desc d = *d0;
            d.eps = eps_case ? d0->eps : 0;
            fwd f = fwd_new(&d, 30 + _i, 1.0, 1.0), g = fwd_new(&d, 30 + _i, 1.0, 1.0);
            for (size_t j = 0; j < f.n; j++)
                g.x[j] = a * f.x[j] + b;
            g.d.eps = a * a * d.eps;
            fwd_run(&f);
            fwd_run(&g);
            char what[96];
            snprintf(what, sizeof what, "BN(%g·x%+g) vs BN(x), eps %s", a, b,
                     eps_case ? "scaled by a²" : "= 0");
            ck_assert_uint_eq(cmp_f64(what, g.y, f.y, f.n, 1e-12, 0), 0);
            fwd_free(&f);
            fwd_free(&g);
        }
}
END_TEST

/* The same tensor in NCHW and NHWC gives the same results, bit for bit:
 * ref gathers each channel in the same (n, h, w) order in both layouts. */
START_TEST(layouts_agree)
{
    bn_desc dn = test_shapes[0], dh = dn;
    dh.layout = BN_NHWC;
    fwd f = fwd_new(&dn, 40, 0, 1), g = fwd_new(&dh, 40, 0, 1);
    relayout(g.x, &dh, f.x, &dn);
    fwd_run(&f);
    fwd_run(&g);
    double *back = dalloc(f.n);
    relayout(back, &dn, g.y, &dh);
    ck_assert_uint_eq(cmp_f64("y nhwc vs nchw", back, f.y, f.n, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("mean nhwc vs nchw", g.mean, f.mean, f.C, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("var nhwc vs nchw", g.var, f.var, f.C, 0, 0), 0);
    free(back);
    fwd_free(&f);
    fwd_free(&g);
}
END_TEST

/* affine = 0 is gamma = 1, beta = 0 exactly (and needs neither array). */
START_TEST(affine_off_is_identity_params)
{
    bn_desc d = test_shapes[1];
    fwd f = fwd_new(&d, 50, 2, 3), g = fwd_new(&d, 50, 2, 3);
    for (size_t c = 0; c < f.C; c++)
        f.gamma[c] = 1, f.beta[c] = 0;
    fwd_run(&f);
    g.d.affine = 0;
    ck_assert_int_eq(bn_forward_train_ref(g.y, g.mean, g.var, NULL, g.x, NULL, NULL,
                                          &g.d), BN_OK);
    ck_assert_uint_eq(cmp_f64("y affine off vs gamma 1 beta 0", g.y, f.y, f.n, 0, 0), 0);
    fwd_free(&f);
    fwd_free(&g);
}
END_TEST

/* y = x in place is bit-identical: ref gathers a channel before writing it. */
START_TEST(forward_in_place)
{
    fwd f = fwd_new(&test_shapes[_i], 60 + _i, 1, 2);
    fwd_run(&f);
    double *buf = dalloc(f.n);
    memcpy(buf, f.x, f.n * sizeof *buf);
    ck_assert_int_eq(bn_forward_train_ref(buf, f.mean, f.var, f.invstd, buf, f.gamma,
                                          f.beta, &f.d), BN_OK);
    ck_assert_uint_eq(cmp_f64("y in place vs separate", buf, f.y, f.n, 0, 0), 0);
    free(buf);
    fwd_free(&f);
}
END_TEST

/* The fused forward is max(0, BN(x)) exactly, with the same statistics; the
 * saved invstd is 1/sqrt(sigma2_B + eps), the same expression, exactly. */
START_TEST(relu_and_invstd)
{
    fwd f = fwd_new(&test_shapes[_i], 70 + _i, 0, 1), g = fwd_new(&test_shapes[_i], 70 + _i, 0, 1);
    fwd_run(&f);
    ck_assert_int_eq(bn_forward_train_relu_ref(g.y, g.mean, g.var, g.invstd, g.x,
                                               g.gamma, g.beta, &g.d), BN_OK);
    double *want = dalloc(f.n), *inv = dalloc(f.C);
    size_t zeros = 0;
    for (size_t k = 0; k < f.n; k++) {
        want[k] = f.y[k] > 0 ? f.y[k] : 0;
        zeros += f.y[k] <= 0;
    }
    for (size_t c = 0; c < f.C; c++)
        inv[c] = 1 / sqrt(f.var[c] + f.d.eps);
    ck_assert_msg(zeros > 0 && zeros < f.n, "the data must exercise both sides of the ReLU");
    ck_assert_uint_eq(cmp_f64("relu y vs max(0, BN(x))", g.y, want, f.n, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("relu mean vs plain mean", g.mean, f.mean, f.C, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("invstd vs 1/sqrt(var+eps)", f.invstd, inv, f.C, 0, 0), 0);
    free(want), free(inv);
    fwd_free(&f);
    fwd_free(&g);
}
END_TEST

/* The float switch with BN_IMPL_REF: the float inputs widen to double
 * exactly, ref runs, each result is rounded once to float: relative error
 * <= 2^-24 (≈ 5.96e-8), so rtol 6e-8; atol 1e-30 for exact zeros. */
START_TEST(float_switch_matches_double)
{
    fwd f = fwd_new(&test_shapes[_i], 80 + _i, 0.3, 1.1);
    size_t n = f.n, C = f.C;
    float *x = malloc(n * sizeof *x), *y = malloc(n * sizeof *y);
    float *g = malloc(C * sizeof *g), *b = malloc(C * sizeof *b);
    float *mu = malloc(C * sizeof *mu), *var = malloc(C * sizeof *var);
    float *inv = malloc(C * sizeof *inv);
    ck_assert(x && y && g && b && mu && var && inv);
    for (size_t k = 0; k < n; k++)
        x[k] = (float)f.x[k], f.x[k] = x[k]; /* the double run sees the same inputs */
    for (size_t c = 0; c < C; c++)
        g[c] = (float)f.gamma[c], f.gamma[c] = g[c], b[c] = (float)f.beta[c], f.beta[c] = b[c];
    fwd_run(&f);
    ck_assert_int_eq(bn_forward_train(BN_IMPL_REF, y, mu, var, inv, x, g, b, &f.d), BN_OK);
    printf("  float switch (ref), %s\n", desc_str(&f.d));
    ck_assert_uint_eq(cmp_f32("y float vs double", y, f.y, n, 1e-30, 6e-8), 0);
    ck_assert_uint_eq(cmp_f32("mean float vs double", mu, f.mean, C, 1e-30, 6e-8), 0);
    ck_assert_uint_eq(cmp_f32("var float vs double", var, f.var, C, 1e-30, 6e-8), 0);
    ck_assert_uint_eq(cmp_f32("invstd float vs double", inv, f.invstd, C, 1e-30, 6e-8), 0);
    free(x), free(y), free(g), free(b), free(mu), free(var), free(inv);
    fwd_free(&f);
}
END_TEST

/* fast/ and cuda/ are compared with ref by their own test programs; here the
 * switch must say plainly when one is not built. */
START_TEST(other_impls_report_availability)
{
    for (int k = BN_IMPL_FAST; k <= BN_IMPL_CUDA; k++) {
        const char *why;
        if (!bn_impl_available((bn_impl)k, &why)) {
            char what[64];
            snprintf(what, sizeof what, "--impl %s", bn_impl_name((bn_impl)k));
            skip(what, why);
            ck_assert(strlen(why) > 10);
        }
    }
}
END_TEST

static Suite *forward_suite(void)
{
    Suite *s = suite_create("forward: Algorithm 1");
    TCase *tc = tcase_create("statistics and output");
    int n = (int)n_test_shapes;
    tcase_add_loop_test(tc, stats_match_gsl, 0, n);
    tcase_add_loop_test(tc, output_moments, 0, n);
    tcase_add_loop_test(tc, shift_and_scale_invariance, 0, n);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("variants");
    tcase_add_test(tc2, layouts_agree);
    tcase_add_test(tc2, affine_off_is_identity_params);
    tcase_add_loop_test(tc2, forward_in_place, 0, n);
    tcase_add_loop_test(tc2, relu_and_invstd, 0, n);
    suite_add_tcase(s, tc2);
    return s;
}

static Suite *switch_suite(void)
{
    Suite *s = suite_create("forward: run-time switch");
    TCase *tc = tcase_create("float entry points");
    tcase_add_loop_test(tc, float_switch_matches_double, 0, (int)n_test_shapes);
    tcase_add_test(tc, other_impls_report_availability);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {forward_suite(), switch_suite()};
    return run_suites(suites, 2) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
