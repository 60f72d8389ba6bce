/*
 * precise.c — PreciseBN (Wu & Johnson 2021): the population statistics of
 * Algorithm 2 computed properly, over many batches with the model frozen,
 * every batch weighted equally, instead of the exponential moving average
 * (EMA) collected during training, which weights the latest batches most and
 * mixes in statistics of activations computed with older weights.
 *
 *   begin -> add(batch 1) -> add(batch 2) -> ... -> end:
 *   E[x] = E_B[mu_B],   Var[x] = m/(m-1)·E_B[sigma2_B]
 *
 * The same numbers as bn_population_stats_ref on the same batches, without
 * keeping K·C statistics around: only the running sums (long double).
 * All batches must have the same m' = N·H·W (Algorithm 2's assumption).
 */
#include <stdlib.h>

#include "bn_internal.h"
#include "ref_steps.h"

int bn_precise_begin(bn_precise *p, size_t C)
{
    BN_REQUIRE(p);
    if (C == 0)
        BN_ERROR(BN_EBADLEN, "%s: C = 0", __func__);
    p->C = C, p->m = 0, p->batches = 0;
    p->sum_mean = calloc(C, sizeof *p->sum_mean);
    p->sum_var = calloc(C, sizeof *p->sum_var);
    if (!p->sum_mean || !p->sum_var) {
        bn_precise_free(p);
        BN_ERROR(BN_ENOMEM, "%s: no memory for 2 x %zu sums", __func__, C);
    }
    return BN_OK;
}

void bn_precise_free(bn_precise *p)
{
    if (!p)
        return;
    free(p->sum_mean), free(p->sum_var);
    p->sum_mean = p->sum_var = NULL;
}

int bn_precise_add_ref(bn_precise *p, const double *x, const bn_desc *d)
{
    size_t m;
    BN_REQUIRE(p);
    BN_REQUIRE(p->sum_mean);
    BN_REQUIRE(x);
    BN_TRY(bn_desc_check(d, 1, NULL, &m));
    if (d->C != p->C)
        BN_ERROR(BN_EINVAL, "%s: batch has C = %zu channels, the accumulator %zu", __func__,
                 d->C, p->C);
    if (p->batches > 0 && m != p->m)
        BN_ERROR(BN_EINVAL, "%s: batch has m' = %zu values per channel, earlier ones %zu "
                 "(Algorithm 2 averages batches of one size)", __func__, m, p->m);
    double *B = malloc(m * sizeof *B);
    if (!B)
        BN_ERROR(BN_ENOMEM, "%s: no memory for %zu doubles", __func__, m);
    int status = BN_OK;
    for (size_t c = 0; c < d->C && status == BN_OK; c++) {
        bn_gather_ref(B, x, d, c);
        double mu_B = bn_mean_B(B, m), sigma2_B = bn_var_biased_B(B, m, mu_B);
        /* only finiteness: a constant channel (sigma2_B = 0) has population
         * statistics even with eps = 0 (d->eps is not used here) */
        status = bn_check_finite(__func__, "mu_B or sigma2_B", "channel", c,
                                 (double[]){mu_B, sigma2_B}, 2);
        if (status == BN_OK)
            p->sum_mean[c] += mu_B, p->sum_var[c] += sigma2_B;
    }
    free(B);
    if (status == BN_OK)
        p->m = m, p->batches++;
    return status;
}

int bn_precise_end_ref(const bn_precise *p, double *pop_mean, double *pop_var_unbiased)
{
    BN_REQUIRE(p);
    BN_REQUIRE(p->sum_mean);
    BN_REQUIRE(pop_mean);
    BN_REQUIRE(pop_var_unbiased);
    if (p->batches == 0)
        BN_ERROR(BN_EBADLEN, "%s: no batches were added", __func__);
    for (size_t c = 0; c < p->C; c++) {
        pop_mean[c] = (double)(p->sum_mean[c] / p->batches);                /* E[x]   */
        pop_var_unbiased[c] = (double)p->m / (double)(p->m - 1) *
                              (p->sum_var[c] / p->batches);                 /* Var[x] */
    }
    return BN_OK;
}
