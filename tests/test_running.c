/*
 * test_running.c — running statistics (bn_running_update_ref, each rule of
 * bn_running_rule) and Algorithm 2's population estimate
 * (bn_population_stats_ref, paper steps 9-10):
 *
 *   E[x]   = E_B[mu_B]                    the mean of the batch means
 *   Var[x] = m/(m-1) · E_B[sigma2_B]      the mean of the unbiased batch variances
 *
 * 1. The momentum rules against numbers computed by hand (PyTorch: momentum
 *    0.1 on the new batch, unbiased; Keras: 0.99 on the old value, biased),
 *    and their limits momentum = 0 and 1, which must be exact.
 * 2. The cumulative rule (PyTorch momentum=None, cuDNN 1/(1+n)) against hand
 *    numbers, against bn_population_stats_ref, and end to end: a data set is
 *    split into K batches, each goes through bn_forward_train_ref, and the
 *    result is checked against GSL's statistics of the same data (an
 *    independent oracle).
 * 3. The float switch bn_running_update(BN_IMPL_REF, ...) and
 *    bn_population_stats against the double functions: one rounding to float.
 *
 * Run: make tests && build/tests/test_running   (or make check)
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_double.h>

#include "harness.h"

/* Hand-computed expectations are decimal numbers; the library does the same
 * arithmetic in binary: 1 - momentum, two products, a sum, the Bessel factor,
 * each rounded (2^-53 relative) on O(1) values, plus the decimal inputs'
 * own rounding. 1 - 0.99 carries the rounding of 0.99 magnified 99 times
 * (~6e-15 relative on the batch term), so 1e-14 covers both rules. */
#define HAND_RTOL 1e-14

/* The float switch widens float inputs exactly, runs ref in double and
 * rounds each result to float once: |got - want| <= 2^-24·|want| (half an
 * ulp of float, for results in float's normal range). */
#define FLOAT_RTOL 0x1p-24

/* ======================================================= momentum rules */

/* PyTorch, momentum 0.1 on the new batch, running var stores the unbiased
 * m/(m-1)·sigma2_B. Two channels, m = 4 (Bessel factor 4/3). */
START_TEST(pytorch_rule_momentum_0_1_matches_hand_computed_values)
{
    double rmean[2] = {0, 1}, rvar[2] = {1, 2};
    size_t nb = 0;
    const double mean1[2] = {2, -3}, var1[2] = {3, 6};
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, mean1, var1, 2, 4,
                                           BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), BN_OK);
    /* mean: 0.9·0 + 0.1·2 = 0.2                0.9·1 + 0.1·(-3) = 0.6
     * var:  0.9·1 + 0.1·3·4/3 = 0.9 + 0.4 = 1.3  0.9·2 + 0.1·6·4/3 = 1.8 + 0.8 = 2.6 */
    const double want_mean1[2] = {0.2, 0.6}, want_var1[2] = {1.3, 2.6};
    ck_assert_uint_eq(cmp_f64("PyTorch running_mean, batch 1", rmean, want_mean1, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("PyTorch running_var, batch 1", rvar, want_var1, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(nb, 1);

    const double mean2[2] = {1.2, 0.6}, var2[2] = {1.5, 0.75};
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, mean2, var2, 2, 4,
                                           BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), BN_OK);
    /* unbiased batch variances: 1.5·4/3 = 2, 0.75·4/3 = 1
     * mean: 0.9·0.2 + 0.1·1.2 = 0.18 + 0.12 = 0.3   0.9·0.6 + 0.1·0.6 = 0.6
     * var:  0.9·1.3 + 0.1·2 = 1.17 + 0.2 = 1.37     0.9·2.6 + 0.1·1 = 2.34 + 0.1 = 2.44 */
    const double want_mean2[2] = {0.3, 0.6}, want_var2[2] = {1.37, 2.44};
    ck_assert_uint_eq(cmp_f64("PyTorch running_mean, batch 2", rmean, want_mean2, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("PyTorch running_var, batch 2", rvar, want_var2, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(nb, 2);
}
END_TEST

/* Keras, momentum 0.99 on the old value, running var stores the biased
 * sigma2_B (no m/(m-1)): the same batches as above. */
START_TEST(keras_rule_momentum_0_99_matches_hand_computed_values)
{
    double rmean[2] = {0, 1}, rvar[2] = {1, 2};
    const double mean1[2] = {2, -3}, var1[2] = {3, 6};
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean1, var1, 2, 4,
                                           BN_RUNNING_MOMENTUM_OLD_BIASED, 0.99), BN_OK);
    /* mean: 0.99·0 + 0.01·2 = 0.02            0.99·1 + 0.01·(-3) = 0.96
     * var:  0.99·1 + 0.01·3 = 1.02            0.99·2 + 0.01·6 = 2.04 */
    const double want_mean1[2] = {0.02, 0.96}, want_var1[2] = {1.02, 2.04};
    ck_assert_uint_eq(cmp_f64("Keras running_mean, batch 1", rmean, want_mean1, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("Keras running_var, batch 1", rvar, want_var1, 2, 0, HAND_RTOL), 0);

    const double mean2[2] = {1.2, 0.6}, var2[2] = {1.5, 0.75};
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean2, var2, 2, 4,
                                           BN_RUNNING_MOMENTUM_OLD_BIASED, 0.99), BN_OK);
    /* mean: 0.99·0.02 + 0.01·1.2 = 0.0198 + 0.012 = 0.0318
     *       0.99·0.96 + 0.01·0.6 = 0.9504 + 0.006 = 0.9564
     * var:  0.99·1.02 + 0.01·1.5 = 1.0098 + 0.015 = 1.0248
     *       0.99·2.04 + 0.01·0.75 = 2.0196 + 0.0075 = 2.0271 */
    const double want_mean2[2] = {0.0318, 0.9564}, want_var2[2] = {1.0248, 2.0271};
    ck_assert_uint_eq(cmp_f64("Keras running_mean, batch 2", rmean, want_mean2, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("Keras running_var, batch 2", rvar, want_var2, 2, 0, HAND_RTOL), 0);
}
END_TEST

/* Random running values and batch statistics for the limit cases, m = 5. The
 * batch variances are multiples of 1/4, so that 5/4·sigma2_B is exact. */
enum { CL = 6, ML = 5 };

static void limit_case_data(double *rmean, double *rvar, double *mean,
                            double *var, unsigned long seed)
{
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, rmean, CL, 0, 2);
    fill_uniform(r, rvar, CL, 0.1, 4);
    fill_gaussian(r, mean, CL, 1, 3);
    for (size_t c = 0; c < CL; c++)
        var[c] = 0.25 * (double)(1 + gsl_rng_uniform_int(r, 40));
    gsl_rng_free(r);
}

/* PyTorch momentum 0: (1 - 0)·r + 0·b = r, exactly. */
START_TEST(pytorch_momentum_0_keeps_running_stats_exactly)
{
    double rmean[CL], rvar[CL], mean[CL], var[CL], old_mean[CL], old_var[CL];
    limit_case_data(rmean, rvar, mean, var, 11);
    memcpy(old_mean, rmean, sizeof old_mean);
    memcpy(old_var, rvar, sizeof old_var);
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean, var, CL, ML,
                                           BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.0), BN_OK);
    /* 1·r + 0 is r: no rounding */
    ck_assert_uint_eq(cmp_f64("PyTorch momentum 0: running_mean kept", rmean, old_mean, CL, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("PyTorch momentum 0: running_var kept", rvar, old_var, CL, 0, 0), 0);
}
END_TEST

/* PyTorch momentum 1: 0·r + 1·b: the batch mean and 5/4 of the batch's
 * biased variance (exact for multiples of 1/4). */
START_TEST(pytorch_momentum_1_replaces_with_unbiased_batch_stats_exactly)
{
    double rmean[CL], rvar[CL], mean[CL], var[CL], want_var[CL];
    limit_case_data(rmean, rvar, mean, var, 12);
    for (size_t c = 0; c < CL; c++)
        want_var[c] = var[c] + var[c] / 4;   /* 5/4·sigma2_B, exact: multiples of 1/16 */
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean, var, CL, ML,
                                           BN_RUNNING_MOMENTUM_NEW_UNBIASED, 1.0), BN_OK);
    /* 0·r + 1·b is b: no rounding */
    ck_assert_uint_eq(cmp_f64("PyTorch momentum 1: running_mean = mu_B", rmean, mean, CL, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("PyTorch momentum 1: running_var = 5/4 sigma2_B", rvar, want_var, CL, 0, 0), 0);
}
END_TEST

/* Keras momentum weights the old value: momentum 1 keeps it exactly. */
START_TEST(keras_momentum_1_keeps_running_stats_exactly)
{
    double rmean[CL], rvar[CL], mean[CL], var[CL], old_mean[CL], old_var[CL];
    limit_case_data(rmean, rvar, mean, var, 13);
    memcpy(old_mean, rmean, sizeof old_mean);
    memcpy(old_var, rvar, sizeof old_var);
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean, var, CL, ML,
                                           BN_RUNNING_MOMENTUM_OLD_BIASED, 1.0), BN_OK);
    /* 1·r + 0·b is r: no rounding */
    ck_assert_uint_eq(cmp_f64("Keras momentum 1: running_mean kept", rmean, old_mean, CL, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("Keras momentum 1: running_var kept", rvar, old_var, CL, 0, 0), 0);
}
END_TEST

/* Keras momentum 0 replaces with the batch: the biased variance, as is. */
START_TEST(keras_momentum_0_replaces_with_biased_batch_stats_exactly)
{
    double rmean[CL], rvar[CL], mean[CL], var[CL];
    limit_case_data(rmean, rvar, mean, var, 14);
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, NULL, mean, var, CL, ML,
                                           BN_RUNNING_MOMENTUM_OLD_BIASED, 0.0), BN_OK);
    /* 0·r + 1·b is b: no rounding */
    ck_assert_uint_eq(cmp_f64("Keras momentum 0: running_mean = mu_B", rmean, mean, CL, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("Keras momentum 0: running_var = sigma2_B", rvar, var, CL, 0, 0), 0);
}
END_TEST

/* The momentum rules don't need the count: NULL is accepted and gives the
 * same values; a counter that is passed is incremented (41 -> 42). */
START_TEST(num_batches_is_optional_for_momentum_rules_and_counted_when_given)
{
    static const bn_running_rule rules[] = {BN_RUNNING_MOMENTUM_NEW_UNBIASED,
                                            BN_RUNNING_MOMENTUM_OLD_BIASED};
    static const double momentum[] = {0.1, 0.99};
    for (int k = 0; k < 2; k++) {
        double rm1[CL], rv1[CL], mean[CL], var[CL], rm2[CL], rv2[CL];
        limit_case_data(rm1, rv1, mean, var, 15);
        memcpy(rm2, rm1, sizeof rm2);
        memcpy(rv2, rv1, sizeof rv2);
        size_t nb = 41;
        ck_assert_int_eq(bn_running_update_ref(rm1, rv1, NULL, mean, var, CL, ML,
                                               rules[k], momentum[k]), BN_OK);
        ck_assert_int_eq(bn_running_update_ref(rm2, rv2, &nb, mean, var, CL, ML,
                                               rules[k], momentum[k]), BN_OK);
        printf("  rule %d, momentum %g: num_batches 41 -> %zu\n", (int)rules[k],
               momentum[k], nb);
        ck_assert_uint_eq(nb, 42);
        /* the same arithmetic: bit-identical */
        ck_assert_uint_eq(cmp_f64("running_mean, num_batches NULL vs given", rm1, rm2, CL, 0, 0), 0);
        ck_assert_uint_eq(cmp_f64("running_var, num_batches NULL vs given", rv1, rv2, CL, 0, 0), 0);
    }
}
END_TEST

/* ============================================ cumulative rule, Algorithm 2 */

/* Three batches of m = 5 (Bessel factor 5/4), two channels:
 *   batch means          (1, -2), (2, 0), (6, 5)        -> average (3, 1)
 *   biased variances     (0.5, 4), (1.5, 2), (2.5, 0)
 *   unbiased = 5/4 of it (0.625, 5), (1.875, 2.5), (3.125, 0)
 *                                                       -> average (1.875, 2.5) */
START_TEST(cumulative_rule_averages_batches_equally)
{
    const double means[3][2] = {{1, -2}, {2, 0}, {6, 5}};
    const double vars[3][2] = {{0.5, 4}, {1.5, 2}, {2.5, 0}};
    double rmean[2] = {0, 0}, rvar[2] = {1, 1};
    size_t nb = 0;
    for (int k = 0; k < 3; k++)
        ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, means[k], vars[k], 2, 5,
                                               BN_RUNNING_CUMULATIVE_UNBIASED, 0), BN_OK);
    const double want_mean[2] = {3, 1}, want_var[2] = {1.875, 2.5};
    /* weights 1/3 and 2/3 are rounded: a few ulps */
    ck_assert_uint_eq(cmp_f64("cumulative running_mean, 3 batches", rmean, want_mean, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("cumulative running_var, 3 batches", rvar, want_var, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(nb, 3);

    /* Algorithm 2 on the same statistics (batch k's C values at k·C) */
    double pm[2], pv[2];
    ck_assert_int_eq(bn_population_stats_ref(pm, pv, &means[0][0], &vars[0][0], 3, 2, 5), BN_OK);
    ck_assert_uint_eq(cmp_f64("Algorithm 2 E[x], 3 batches", pm, want_mean, 2, 0, HAND_RTOL), 0);
    ck_assert_uint_eq(cmp_f64("Algorithm 2 Var[x], 3 batches", pv, want_var, 2, 0, HAND_RTOL), 0);
}
END_TEST

/* After the first batch the cumulative average is that batch, whatever the
 * running values were: weight 1/(0+1) = 1 on the batch, 0 on the old value,
 * exact for any finite old value (0·r = ±0). _i picks the old value. */
START_TEST(cumulative_rule_first_batch_replaces_any_finite_start_exactly)
{
    static const double start[] = {0.0, 1.0, -7.5, DBL_MAX, -DBL_MAX, DBL_TRUE_MIN};
    const double mean[2] = {1, -2}, var[2] = {0.5, 4};
    const double want_var[2] = {0.625, 5};   /* 5/4 of var, exact */
    double rmean[2] = {start[_i], -start[_i]}, rvar[2] = {fabs(start[_i]), fabs(start[_i])};
    size_t nb = 0;
    printf("  running values before: %g, %g\n", rmean[0], rmean[1]);
    ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, mean, var, 2, 5,
                                           BN_RUNNING_CUMULATIVE_UNBIASED, 0), BN_OK);
    /* 0·r + 1·b: exact */
    ck_assert_uint_eq(cmp_f64("cumulative running_mean after batch 1", rmean, mean, 2, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("cumulative running_var after batch 1", rvar, want_var, 2, 0, 0), 0);
    ck_assert_uint_eq(nb, 1);
}
END_TEST

/* K = 25 random batches: the recurrence r <- (1 - 1/n)·r + (1/n)·b equals
 * Algorithm 2's E_B[.] (long-double sums, one division). */
START_TEST(cumulative_rule_equals_population_stats)
{
    enum { K = 25, C = 4, M = 16 };
    double *means = dalloc(K * C), *vars = dalloc(K * C);
    gsl_rng *r = rng_new(25);
    fill_gaussian(r, means, K * C, 3, 1);
    fill_uniform(r, vars, K * C, 0.5, 3);
    gsl_rng_free(r);
    double rmean[C] = {0}, rvar[C] = {1, 1, 1, 1}, pm[C], pv[C];
    size_t nb = 0;
    for (size_t k = 0; k < K; k++)
        ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, means + k * C, vars + k * C,
                                               C, M, BN_RUNNING_CUMULATIVE_UNBIASED, 0), BN_OK);
    ck_assert_uint_eq(nb, K);
    ck_assert_int_eq(bn_population_stats_ref(pm, pv, means, vars, K, C, M), BN_OK);
    /* The recurrence rounds ~4 times per batch (2^-53 each, on values of the
     * size of the average: means 3 ± 1, variances 0.5..3); the errors of K
     * steps add up at most linearly: 4·K·2^-53 ≈ 1.1e-14. */
    double rtol = 4.0 * K * 0x1p-53;
    ck_assert_uint_eq(cmp_f64("cumulative running_mean vs Algorithm 2 E[x]", rmean, pm, C, 0, rtol), 0);
    ck_assert_uint_eq(cmp_f64("cumulative running_var vs Algorithm 2 Var[x]", rvar, pv, C, 0, rtol), 0);
    free(means), free(vars);
}
END_TEST

/* End to end, with GSL as the oracle. A data set of K·m values per channel is
 * split into K batches of m; each batch, as an (m, C) matrix, goes through
 * bn_forward_train_ref, and its (mu_B, sigma2_B) feed the cumulative rule and
 * Algorithm 2. Against GSL on the raw data:
 *   E[x]    = gsl_stats_mean over all K·m values (equal batch sizes)
 *   r_var   = m/(m-1) · mean_k gsl_stats_variance_with_fixed_mean(batch k, its mean)
 *   Var[x]  = mean_k gsl_stats_variance(batch k)     (GSL divides by m - 1) */
START_TEST(end_to_end_batches_through_forward_match_gsl_statistics)
{
    enum { K = 8, M = 50, C = 3 };
    static const double mu[C] = {1.5, -2.0, 10.0}, sd[C] = {0.5, 1.0, 3.0};
    double *data[C];
    gsl_rng *r = rng_new(2015);
    for (size_t c = 0; c < C; c++) {
        data[c] = dalloc(K * M);
        fill_gaussian(r, data[c], K * M, mu[c], sd[c]);
    }
    gsl_rng_free(r);

    bn_desc d = bn_desc_make(M, C, 1, 1, BN_NCHW, 1e-5);
    d.affine = 0;
    double *x = dalloc(M * C), *y = dalloc(M * C);
    double mean[C], var[C], batch_means[K * C], batch_vars[K * C];
    double rmean[C] = {0, 0, 0}, rvar[C] = {1, 1, 1};
    size_t nb = 0;
    for (size_t k = 0; k < K; k++) {
        for (size_t i = 0; i < M; i++)
            for (size_t c = 0; c < C; c++)
                x[i * C + c] = data[c][k * M + i];    /* row i of batch k */
        ck_assert_int_eq(bn_forward_train_ref(y, mean, var, NULL, x, NULL, NULL, &d), BN_OK);
        ck_assert_int_eq(bn_running_update_ref(rmean, rvar, &nb, mean, var, C, M,
                                               BN_RUNNING_CUMULATIVE_UNBIASED, 0), BN_OK);
        memcpy(batch_means + k * C, mean, sizeof mean);
        memcpy(batch_vars + k * C, var, sizeof var);
    }
    ck_assert_uint_eq(nb, K);
    double pm[C], pv[C];
    ck_assert_int_eq(bn_population_stats_ref(pm, pv, batch_means, batch_vars, K, C, M), BN_OK);

    double want_mean[C], want_var_fixed[C], want_var_unbiased[C];
    for (size_t c = 0; c < C; c++) {
        want_mean[c] = gsl_stats_mean(data[c], 1, K * M);
        double sum_fixed = 0, sum_unbiased = 0;
        for (size_t k = 0; k < K; k++) {
            const double *batch = data[c] + k * M;
            double mu_k = gsl_stats_mean(batch, 1, M);
            sum_fixed += gsl_stats_variance_with_fixed_mean(batch, 1, M, mu_k);
            sum_unbiased += gsl_stats_variance(batch, 1, M);
        }
        want_var_fixed[c] = (double)M / (M - 1) * sum_fixed / K;
        want_var_unbiased[c] = sum_unbiased / K;
    }
    printf("  K=%d batches of m=%d, C=%d: E[x] = %.6f %.6f %.6f, Var[x] = %.6f %.6f %.6f\n",
           K, M, C, pm[0], pm[1], pm[2], pv[0], pv[1], pv[2]);
    /* Sums of a few hundred doubles: bnlab accumulates in long double, GSL
     * rounds each step of its recurrences (~sqrt(n)·2^-53 typical, n·2^-53 at
     * worst relative to the largest |x|/|mean| = 2); 1e-14 holds either. */
    const double rtol = 1e-14;
    ck_assert_uint_eq(cmp_f64("cumulative running_mean vs gsl_stats_mean", rmean, want_mean, C, 0, rtol), 0);
    ck_assert_uint_eq(cmp_f64("Algorithm 2 E[x] vs gsl_stats_mean", pm, want_mean, C, 0, rtol), 0);
    ck_assert_uint_eq(cmp_f64("cumulative running_var vs m/(m-1)·GSL fixed-mean var", rvar, want_var_fixed, C, 0, rtol), 0);
    ck_assert_uint_eq(cmp_f64("Algorithm 2 Var[x] vs mean gsl_stats_variance", pv, want_var_unbiased, C, 0, rtol), 0);
    for (size_t c = 0; c < C; c++)
        free(data[c]);
    free(x), free(y);
}
END_TEST

/* ========================================================= float switch */

/* n doubles that are exactly floats: the float and double functions then see
 * the same numbers. */
static void fill_floats(gsl_rng *r, float *f, double *dbl, size_t n, double lo, double hi)
{
    for (size_t k = 0; k < n; k++) {
        f[k] = (float)gsl_ran_flat(r, lo, hi);
        dbl[k] = f[k];
    }
}

/* _i picks the rule. Five updates; before each, the double state is reset to
 * the float state, so that each comparison measures one update's rounding. */
START_TEST(float_switch_running_update_matches_double_within_float_rounding)
{
    enum { C = 7, M = 10, STEPS = 5 };
    static const bn_running_rule rules[] = {BN_RUNNING_MOMENTUM_NEW_UNBIASED,
                                            BN_RUNNING_MOMENTUM_OLD_BIASED,
                                            BN_RUNNING_CUMULATIVE_UNBIASED};
    static const double momentum[] = {0.1, 0.99, 0.0};
    static const char *names[] = {"PyTorch", "Keras", "cumulative"};
    gsl_rng *r = rng_new(100 + (unsigned long)_i);
    float frm[C], frv[C], fmean[C], fvar[C];
    double rm[C], rv[C], mean[C], var[C];
    fill_floats(r, frm, rm, C, -1, 1);
    fill_floats(r, frv, rv, C, 0.5, 2);
    size_t nb_float = 0, nb_double = 0;
    char what[96];
    for (int step = 0; step < STEPS; step++) {
        fill_floats(r, fmean, mean, C, -3, 3);
        fill_floats(r, fvar, var, C, 0.1, 5);
        for (size_t c = 0; c < C; c++)
            rm[c] = frm[c], rv[c] = frv[c];
        ck_assert_int_eq(bn_running_update(BN_IMPL_REF, frm, frv, &nb_float, fmean, fvar, C, M,
                                           rules[_i], momentum[_i]), BN_OK);
        ck_assert_int_eq(bn_running_update_ref(rm, rv, &nb_double, mean, var, C, M,
                                               rules[_i], momentum[_i]), BN_OK);
        snprintf(what, sizeof what, "%s running_mean float vs double, update %d", names[_i], step + 1);
        ck_assert_uint_eq(cmp_f32(what, frm, rm, C, 0, FLOAT_RTOL), 0);
        snprintf(what, sizeof what, "%s running_var float vs double, update %d", names[_i], step + 1);
        ck_assert_uint_eq(cmp_f32(what, frv, rv, C, 0, FLOAT_RTOL), 0);
    }
    ck_assert_uint_eq(nb_float, STEPS);
    ck_assert_uint_eq(nb_double, STEPS);
    gsl_rng_free(r);
}
END_TEST

START_TEST(float_population_stats_matches_double_within_float_rounding)
{
    enum { K = 6, C = 5, M = 12 };
    float fmeans[K * C], fvars[K * C], fpm[C], fpv[C];
    double means[K * C], vars[K * C], pm[C], pv[C];
    gsl_rng *r = rng_new(200);
    fill_floats(r, fmeans, means, K * C, -3, 3);
    fill_floats(r, fvars, vars, K * C, 0.1, 5);
    gsl_rng_free(r);
    ck_assert_int_eq(bn_population_stats(fpm, fpv, fmeans, fvars, K, C, M), BN_OK);
    ck_assert_int_eq(bn_population_stats_ref(pm, pv, means, vars, K, C, M), BN_OK);
    ck_assert_uint_eq(cmp_f32("Algorithm 2 E[x] float vs double", fpm, pm, C, 0, FLOAT_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("Algorithm 2 Var[x] float vs double", fpv, pv, C, 0, FLOAT_RTOL), 0);
}
END_TEST

/* =============================================================== suites */

static Suite *momentum_suite(void)
{
    Suite *s = suite_create("running: momentum rules");
    TCase *tc = tcase_create("momentum");
    tcase_add_test(tc, pytorch_rule_momentum_0_1_matches_hand_computed_values);
    tcase_add_test(tc, keras_rule_momentum_0_99_matches_hand_computed_values);
    tcase_add_test(tc, pytorch_momentum_0_keeps_running_stats_exactly);
    tcase_add_test(tc, pytorch_momentum_1_replaces_with_unbiased_batch_stats_exactly);
    tcase_add_test(tc, keras_momentum_1_keeps_running_stats_exactly);
    tcase_add_test(tc, keras_momentum_0_replaces_with_biased_batch_stats_exactly);
    tcase_add_test(tc, num_batches_is_optional_for_momentum_rules_and_counted_when_given);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *population_suite(void)
{
    Suite *s = suite_create("running: cumulative average and Algorithm 2");
    TCase *tc = tcase_create("population");
    tcase_add_test(tc, cumulative_rule_averages_batches_equally);
    tcase_add_loop_test(tc, cumulative_rule_first_batch_replaces_any_finite_start_exactly, 0, 6);
    tcase_add_test(tc, cumulative_rule_equals_population_stats);
    tcase_add_test(tc, end_to_end_batches_through_forward_match_gsl_statistics);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *float_suite(void)
{
    Suite *s = suite_create("running: the float switch");
    TCase *tc = tcase_create("float");
    tcase_add_loop_test(tc, float_switch_running_update_matches_double_within_float_rounding, 0, 3);
    tcase_add_test(tc, float_population_stats_matches_double_within_float_rounding);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {momentum_suite(), population_suite(), float_suite()};
    return run_suites(suites, 3) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
