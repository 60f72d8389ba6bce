/*
 * test_adversarial.c — inputs that real implementations have got wrong:
 *   - a large offset with a small spread (1e7 ± 0.1, NIST's "StRD" style),
 *     where E[x²] - E[x]² cancels to nothing: the variance must be within
 *     1e-9 relative of the exact value, computed here in __float128;
 *   - a constant channel (variance 0, eps > 0);
 *   - m' = 2, the smallest training batch, against its closed form;
 *   - N = 1 with H·W > 1 (spatial statistics of one example);
 *   - tiny and huge magnitudes, and where double runs out (an error, not noise).
 * Run: make check, or build/tests/test_adversarial.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gsl/gsl_statistics_double.h>

#include "harness.h"

/* The accuracy requirement for the 1e7 ± 0.1 variance. */
#define LARGE_OFFSET_VAR_RTOL 1e-9

/* Exact-enough oracle in binary128 (113-bit significand): the sum of m
 * doubles near 1e7 (bits from 2^-29 to 2^40) is exact, so mu is correct to
 * 1e-34 relative and the squared deviations to ~1e-33. */
static void quad_stats(const double *x, size_t m, __float128 *mu, __float128 *var)
{
    __float128 s = 0, q = 0;
    for (size_t i = 0; i < m; i++)
        s += x[i];
    *mu = s / m;
    for (size_t i = 0; i < m; i++)
        q += (x[i] - *mu) * (x[i] - *mu);
    *var = q / m;
}

/* y_i = gamma·(x_i - mu)/sqrt(var + eps) + beta with mu and var from
 * quad_stats and the square root in long double (64 bits). */
static void quad_normalize(double *y, const double *x, size_t m, double gamma,
                           double beta, double eps)
{
    __float128 mu, var;
    quad_stats(x, m, &mu, &var);
    long double sd = sqrtl((long double)(var + eps));
    for (size_t i = 0; i < m; i++)
        y[i] = (double)((long double)((x[i] - mu)) / sd * gamma + beta);
}

/* Pairs 1e7 ± a with a = fl(1e7 + 0.1) - 1e7 (exact by Sterbenz): the mean is
 * exactly 1e7 and the biased variance exactly a². */
START_TEST(large_offset_exact_pairs)
{
    size_t m = 1000;
    bn_desc d = bn_desc_make(m, 1, 1, 1, BN_NCHW, 0);
    double a = (1e7 + 0.1) - 1e7, mean, var, invstd;
    double *x = dalloc(m), *y = dalloc(m), *want = dalloc(m);
    for (size_t i = 0; i < m; i++)
        x[i] = i % 2 ? 1e7 - a : 1e7 + a;
    d.affine = 0;
    ck_assert_int_eq(bn_forward_train_ref(y, &mean, &var, &invstd, x, NULL, NULL, &d), BN_OK);
    double exact_mean = 1e7, exact_var = a * a;
    printf("  1e7 ± %.17g, m = %zu:\n", a, m);
    /* the long-double sum of these pairs is exact: the mean is exactly 1e7 */
    ck_assert_uint_eq(cmp_f64("mean of 1e7 ± a", &mean, &exact_mean, 1, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("var of 1e7 ± a vs a²", &var, &exact_var, 1, 0,
                              LARGE_OFFSET_VAR_RTOL), 0);
    /* xhat = ±1/sqrt(1 + eps/a²) = ±1 with eps = 0: one rounding of the division */
    for (size_t i = 0; i < m; i++)
        want[i] = i % 2 ? -1 : 1;
    ck_assert_uint_eq(cmp_f64("xhat of 1e7 ± a vs ±1", y, want, m, 0, 2.3e-16), 0);
    free(x), free(y), free(want);
}
END_TEST

/* NIST-style: 1e7 + 0.2 + N(0, 0.1²) per channel, spatial shape. Statistics
 * against binary128 (var within 1e-9 relative, the requirement) and against
 * GSL; y against binary128: storing mu_B in double rounds it by up to
 * ulp(1e7)/2 ≈ 9.3e-10, which moves xhat by 9.3e-10/sigma (~1e-8 for sigma =
 * 0.1): atol 2·ulp(mu)/sigma + 1e-14, the conditioning of the problem. */
START_TEST(large_offset_random)
{
    bn_desc d = bn_desc_make(4, 3, 9, 13, _i ? BN_NHWC : BN_NCHW, 1e-5);
    size_t n, m;
    ck_assert_int_eq(bn_desc_check(&d, 1, &n, &m), BN_OK);
    double *x = dalloc(n), *y = dalloc(n), *g = dalloc(3), *b = dalloc(3);
    double mean[3], var[3], inv[3], qm[3], qv[3], gm[3], gv[3];
    gsl_rng *r = rng_new(900 + _i);
    fill_gaussian(r, x, n, 1e7 + 0.2, 0.1);
    fill_uniform(r, g, 3, 0.5, 2);
    fill_uniform(r, b, 3, -1, 1);
    gsl_rng_free(r);
    ck_assert_int_eq(bn_forward_train_ref(y, mean, var, inv, x, g, b, &d), BN_OK);
    double *v = dalloc(m), *yv = dalloc(m), *want = dalloc(m);
    printf("  1e7 + 0.2 ± 0.1, %s\n", desc_str(&d));
    for (size_t c = 0; c < 3; c++) {
        channel_values(v, x, &d, c);
        __float128 mu_q, var_q;
        quad_stats(v, m, &mu_q, &var_q);
        qm[c] = (double)mu_q, qv[c] = (double)var_q;
        gm[c] = gsl_stats_mean(v, 1, m);
        gv[c] = gsl_stats_variance_with_fixed_mean(v, 1, m, gm[c]);
        channel_values(yv, y, &d, c);
        quad_normalize(want, v, m, g[c], b[c], d.eps);
        double atol = g[c] * 2 * (DBL_EPSILON * 1e7) / sqrt(qv[c]) + 1e-14;
        ck_assert_uint_eq(cmp_f64("y vs binary128", yv, want, m, atol, 0), 0);
    }
    ck_assert_uint_eq(cmp_f64("mean vs binary128", mean, qm, 3, 0, 1e-15), 0);
    ck_assert_uint_eq(cmp_f64("var vs binary128", var, qv, 3, 0, LARGE_OFFSET_VAR_RTOL), 0);
    /* GSL's mean is a double recurrence (not exact here): 1e-12 relative on
     * a variance of 0.01 allows its own mean error of ~1e-8·sigma. */
    ck_assert_uint_eq(cmp_f64("mean vs gsl_stats_mean", mean, gm, 3, 0, 1e-15), 0);
    ck_assert_uint_eq(cmp_f64("var vs gsl ..._with_fixed_mean", var, gv, 3, 0, 1e-12), 0);
    free(x), free(y), free(g), free(b), free(v), free(yv), free(want);
}
END_TEST

/* A constant channel with eps > 0: sigma2_B = 0 exactly, xhat = 0, y = beta
 * exactly, and the gradient is gamma/sqrt(eps)·(dy - mean(dy)), dgamma = 0. */
START_TEST(constant_channel)
{
    bn_desc d = bn_desc_make(3, 2, 2, 5, BN_NCHW, 1e-3);
    size_t n, m;
    ck_assert_int_eq(bn_desc_check(&d, 1, &n, &m), BN_OK);
    double *x = dalloc(n), *y = dalloc(n), *dy = dalloc(n), *dx = dalloc(n);
    double g[2] = {1.5, 0.5}, b[2] = {0.25, -2}, mean[2], var[2], inv[2], dg[2], db[2];
    gsl_rng *r = rng_new(950);
    fill_gaussian(r, x, n, 0, 1);     /* channel 1 random ... */
    fill_uniform(r, dy, n, -1, 1);
    gsl_rng_free(r);
    for (size_t k = 0; k < n; k++)    /* ... channel 0 constant 3.7 */
        if (((k / (d.H * d.W)) % d.C) == 0)
            x[k] = 3.7;
    ck_assert_int_eq(bn_forward_train_ref(y, mean, var, inv, x, g, b, &d), BN_OK);
    ck_assert_msg(mean[0] == 3.7 && var[0] == 0, "mean %.17g var %.17g", mean[0], var[0]);
    double *v = dalloc(m), *want = dalloc(m), *dyv = dalloc(m);
    channel_values(v, y, &d, 0);
    for (size_t i = 0; i < m; i++)
        want[i] = b[0];
    ck_assert_uint_eq(cmp_f64("y of a constant channel vs beta", v, want, m, 0, 0), 0);

    ck_assert_int_eq(bn_backward_train_ref(dx, dg, db, dy, x, mean, inv, g, &d), BN_OK);
    channel_values(dyv, dy, &d, 0);
    double mdy = gsl_stats_mean(dyv, 1, m);
    for (size_t i = 0; i < m; i++)
        want[i] = g[0] / sqrt(d.eps) * (dyv[i] - mdy);
    channel_values(v, dx, &d, 0);
    /* terms of size gamma/sqrt(eps)·|dy| ≈ 47, a few roundings: atol 1e-13 */
    ck_assert_uint_eq(cmp_f64("dx of a constant channel", v, want, m, 1e-13, 0), 0);
    double zero = 0;
    ck_assert_uint_eq(cmp_f64("dgamma of a constant channel", &dg[0], &zero, 1, 0, 0), 0);
    free(x), free(y), free(dy), free(dx), free(v), free(want), free(dyv);
}
END_TEST

/* m' = 2: x = (p, q) gives mu = (p+q)/2, sigma2 = ((p-q)/2)², and
 * xhat = ±((p-q)/2)/sqrt(((p-q)/2)² + eps): a few roundings, rtol 1e-15. */
START_TEST(two_values_per_channel)
{
    bn_desc d = bn_desc_make(2, 4, 1, 1, BN_NCHW, 1e-2);
    d.affine = 0;
    double x[8] = {1, 2, -3, 0.5, 1.5, 2, 4, -0.25}, y[8], mean[4], var[4], want[8];
    ck_assert_int_eq(bn_forward_train_ref(y, mean, var, NULL, x, NULL, NULL, &d), BN_OK);
    for (size_t c = 0; c < 4; c++) {
        double p = x[c], q = x[4 + c], h = (p - q) / 2;
        want[c] = h / sqrt(h * h + d.eps);
        want[4 + c] = -want[c];
    }
    /* channel 1 has p = q: sigma2 = 0, xhat = 0 (eps > 0) */
    ck_assert_uint_eq(cmp_f64("xhat for m' = 2", y, want, 8, 0, 1e-15), 0);
}
END_TEST

/* N = 1 with H·W > 1 is a valid training batch for spatial BN: the
 * statistics run over the pixels of the one example (GSL, rtol 1e-13). */
START_TEST(one_example_many_pixels)
{
    bn_desc d = bn_desc_make(1, 3, 6, 7, _i ? BN_NHWC : BN_NCHW, 1e-5);
    size_t n, m;
    ck_assert_int_eq(bn_desc_check(&d, 1, &n, &m), BN_OK);
    ck_assert_uint_eq(m, 42);
    double *x = dalloc(n), *y = dalloc(n), *v = dalloc(m);
    double g[3] = {1, 2, 3}, b[3] = {0, 0, 0}, mean[3], var[3], gm[3], gv[3];
    gsl_rng *r = rng_new(960);
    fill_gaussian(r, x, n, 2, 3);
    gsl_rng_free(r);
    ck_assert_int_eq(bn_forward_train_ref(y, mean, var, NULL, x, g, b, &d), BN_OK);
    for (size_t c = 0; c < 3; c++) {
        channel_values(v, x, &d, c);
        gm[c] = gsl_stats_mean(v, 1, m);
        gv[c] = gsl_stats_variance_with_fixed_mean(v, 1, m, gm[c]);
    }
    ck_assert_uint_eq(cmp_f64("N=1 mean vs GSL", mean, gm, 3, 0, 1e-13), 0);
    ck_assert_uint_eq(cmp_f64("N=1 var vs GSL", var, gv, 3, 0, 1e-13), 0);
    free(x), free(y), free(v);
}
END_TEST

/* Magnitudes from 1e-150 to 1e150 (squares stay normal doubles) with eps = 0:
 * y has mean 0 and variance 1 whatever the scale; measured by GSL, values
 * O(1), m' = 120 roundings: atol 1e-14 (mean), rtol 1e-13 (variance). */
START_TEST(tiny_and_huge_magnitudes)
{
    static const double scales[] = {1e-150, 1e-30, 1e30, 1e150};
    double scale = scales[_i];
    bn_desc d = bn_desc_make(8, 2, 3, 5, BN_NCHW, 0);
    d.affine = 0;
    size_t n, m;
    ck_assert_int_eq(bn_desc_check(&d, 1, &n, &m), BN_OK);
    double *x = dalloc(n), *y = dalloc(n), *v = dalloc(m), mean[2], var[2];
    gsl_rng *r = rng_new(970 + _i);
    fill_gaussian(r, x, n, 0, 1);
    gsl_rng_free(r);
    for (size_t k = 0; k < n; k++)
        x[k] *= scale;
    ck_assert_int_eq(bn_forward_train_ref(y, mean, var, NULL, x, NULL, NULL, &d), BN_OK);
    double ym[2], yvar[2], zero[2] = {0, 0}, one[2] = {1, 1};
    for (size_t c = 0; c < 2; c++) {
        channel_values(v, y, &d, c);
        ym[c] = gsl_stats_mean(v, 1, m);
        yvar[c] = gsl_stats_variance_with_fixed_mean(v, 1, m, ym[c]);
    }
    printf("  scale %g:\n", scale);
    ck_assert_uint_eq(cmp_f64("mean of y", ym, zero, 2, 1e-14, 0), 0);
    ck_assert_uint_eq(cmp_f64("var of y", yvar, one, 2, 0, 1e-13), 0);
    free(x), free(y), free(v);
}
END_TEST

/* Beyond double's range the answer is an error, never noise: squares of
 * 1e200 overflow to Inf, squares of 1e-170 underflow below DBL_MIN (with
 * eps = 0, sigma2 + eps would be subnormal or 0). */
START_TEST(beyond_double_is_an_error)
{
    static const double scales[] = {1e200, 1e-170};
    bn_desc d = bn_desc_make(6, 1, 1, 1, BN_NCHW, 0);
    d.affine = 0;
    double x[6] = {1, -2, 3, 0.5, -0.25, 2}, y[6], mean, var;
    for (int k = 0; k < 2; k++) {
        double xs[6];
        for (int i = 0; i < 6; i++)
            xs[i] = x[i] * scales[k];
        errors_quiet();
        int st = bn_forward_train_ref(y, &mean, &var, NULL, xs, NULL, NULL, &d);
        errors_loud();
        printf("  scale %g: status %d (%s): %s\n", scales[k], st, bn_strerror(st),
               bn_last_error());
        ck_assert_int_eq(st, BN_EDOM);
    }
}
END_TEST

static Suite *adversarial_suite(void)
{
    Suite *s = suite_create("adversarial inputs");
    TCase *tc = tcase_create("large offset");
    tcase_add_test(tc, large_offset_exact_pairs);
    tcase_add_loop_test(tc, large_offset_random, 0, 2);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("degenerate batches and magnitudes");
    tcase_add_test(tc2, constant_channel);
    tcase_add_test(tc2, two_values_per_channel);
    tcase_add_loop_test(tc2, one_example_many_pixels, 0, 2);
    tcase_add_loop_test(tc2, tiny_and_huge_magnitudes, 0, 4);
    tcase_add_test(tc2, beyond_double_is_an_error);
    suite_add_tcase(s, tc2);
    return s;
}

int main(void)
{
    Suite *suites[] = {adversarial_suite()};
    return run_suites(suites, 1) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
