/*
 * running.c — the statistics used at inference: running averages updated
 * after each training batch, under each convention that real systems use
 * (see bn_running_rule in bnlab.h and docs/conventions in the README), and
 * Algorithm 2's population estimate over a set of batches.
 *
 * The unbiased rules store m/(m-1)·sigma2_B: Algorithm 2 (step 10) uses the
 * unbiased variance, and PyTorch and cuDNN follow it; Keras stores sigma2_B.
 */
#include <math.h>

#include "bn_internal.h"

/* Inputs of a running update must be real statistics of a batch. */
static int check_batch_stats(const char *who, size_t c, double mu, double var)
{
    if (!isfinite(mu) || !(var >= 0) || isinf(var))
        BN_ERROR(BN_EDOM, "%s: channel %zu: mean = %g, var = %g are not the "
                 "statistics of a batch (finite, var >= 0)", who, c, mu, var);
    return BN_OK;
}

int bn_running_update_ref(double *running_mean, double *running_var,
                          size_t *num_batches, const double *mean,
                          const double *var_biased, size_t C, size_t m,
                          bn_running_rule rule, double momentum)
{
    BN_TRY(bn_check_running_args(__func__, running_mean, running_var, num_batches, mean,
                                 var_biased, C, m, rule, momentum));
    for (size_t c = 0; c < C; c++)
        BN_TRY(check_batch_stats(__func__, c, mean[c], var_biased[c]));

    double bessel = (double)m / (double)(m - (m > 1)); /* m/(m-1); unused when m = 1 */
    /* The cumulative average of n + 1 batches gives the new one weight 1/(n+1). */
    double f = rule == BN_RUNNING_CUMULATIVE_UNBIASED
                   ? 1.0 / ((double)*num_batches + 1.0) : momentum;
    for (size_t c = 0; c < C; c++) {
        switch (rule) {
        case BN_RUNNING_MOMENTUM_NEW_UNBIASED: /* PyTorch, cuDNN */
        case BN_RUNNING_CUMULATIVE_UNBIASED:   /* PyTorch momentum=None, cuDNN 1/(1+n) */
            running_mean[c] = (1 - f) * running_mean[c] + f * mean[c];
            running_var[c] = (1 - f) * running_var[c] + f * bessel * var_biased[c];
            break;
        case BN_RUNNING_MOMENTUM_OLD_BIASED:   /* Keras */
            running_mean[c] = momentum * running_mean[c] + (1 - momentum) * mean[c];
            running_var[c] = momentum * running_var[c] + (1 - momentum) * var_biased[c];
            break;
        }
    }
    if (num_batches)
        ++*num_batches;
    return BN_OK;
}

/* Algorithm 2, steps 9-10:  E[x] = E_B[mu_B],  Var[x] = m/(m-1)·E_B[sigma2_B] */
int bn_population_stats_ref(double *pop_mean, double *pop_var_unbiased,
                            const double *batch_means,
                            const double *batch_vars_biased, size_t K, size_t C,
                            size_t m)
{
    BN_REQUIRE(pop_mean);
    BN_REQUIRE(pop_var_unbiased);
    BN_REQUIRE(batch_means);
    BN_REQUIRE(batch_vars_biased);
    size_t KC;
    if (K == 0 || C == 0 || m == 0)
        BN_ERROR(BN_EBADLEN, "%s: K = %zu, C = %zu, m = %zu: sizes must be > 0",
                 __func__, K, C, m);
    if (__builtin_mul_overflow(K, C, &KC))
        BN_ERROR(BN_EOVERFLOW, "%s: K·C overflows size_t", __func__);
    if (m < 2)
        BN_ERROR(BN_ESINGLE, "%s: m = 1: m/(m-1) divides by zero", __func__);
    for (size_t k = 0; k < KC; k++)
        BN_TRY(check_batch_stats(__func__, k % C, batch_means[k], batch_vars_biased[k]));

    for (size_t c = 0; c < C; c++) {
        long double E_mu = 0, E_sigma2 = 0;
        for (size_t k = 0; k < K; k++) {
            E_mu += batch_means[k * C + c];
            E_sigma2 += batch_vars_biased[k * C + c];
        }
        E_mu /= (double)K;
        E_sigma2 /= (double)K;
        pop_mean[c] = E_mu;                                    /* E[x]   */
        pop_var_unbiased[c] = (double)m / (double)(m - 1) * E_sigma2; /* Var[x] */
    }
    return BN_OK;
}
