/*
 * args.c — the argument checks that every implementation of an operation
 * makes before it touches data: the descriptor, the required pointers, the
 * running-statistics parameters. ref/, fast/ and cuda/ call these, so a bad
 * call gets the same status and the same message from all three. Pointers
 * are checked only for NULL, so their element type does not matter here.
 */
#include "bn_internal.h"

int bn_check_forward_train_args(const char *who, const bn_desc *d, const void *y,
                                const void *mean, const void *var_biased, const void *x,
                                const void *gamma, const void *beta)
{
    BN_TRY(bn_desc_check(d, 1, NULL, NULL));
    BN_REQUIRE_IN(who, y);
    BN_REQUIRE_IN(who, mean);
    BN_REQUIRE_IN(who, var_biased);
    BN_REQUIRE_IN(who, x);
    if (d->affine) {
        BN_REQUIRE_IN(who, gamma);
        BN_REQUIRE_IN(who, beta);
    }
    return BN_OK;
}

int bn_check_backward_train_args(const char *who, const bn_desc *d, const void *dx,
                                 const void *dgamma, const void *dbeta, const void *dy,
                                 const void *x, const void *mean, const void *invstd,
                                 const void *gamma)
{
    BN_TRY(bn_desc_check(d, 1, NULL, NULL));
    BN_REQUIRE_IN(who, dx);
    BN_REQUIRE_IN(who, dy);
    BN_REQUIRE_IN(who, x);
    BN_REQUIRE_IN(who, mean);
    BN_REQUIRE_IN(who, invstd);
    if (d->affine) {
        BN_REQUIRE_IN(who, gamma);
        BN_REQUIRE_IN(who, dgamma);
        BN_REQUIRE_IN(who, dbeta);
    }
    return BN_OK;
}

int bn_check_infer_args(const char *who, const bn_desc *d, const void *gamma,
                        const void *beta, int need_beta, const void *mean, const void *var)
{
    BN_TRY(bn_desc_check(d, 0, NULL, NULL));
    BN_REQUIRE_IN(who, mean);
    BN_REQUIRE_IN(who, var);
    if (d->affine) {
        BN_REQUIRE_IN(who, gamma);
        if (need_beta)
            BN_REQUIRE_IN(who, beta);
    }
    return BN_OK;
}

int bn_check_running_args(const char *who, const void *running_mean,
                          const void *running_var, const size_t *num_batches,
                          const void *mean, const void *var_biased, size_t C, size_t m,
                          bn_running_rule rule, double momentum)
{
    BN_REQUIRE_IN(who, running_mean);
    BN_REQUIRE_IN(who, running_var);
    BN_REQUIRE_IN(who, mean);
    BN_REQUIRE_IN(who, var_biased);
    if (C == 0 || m == 0)
        BN_ERROR(BN_EBADLEN, "%s: C = %zu, m = %zu: sizes must be > 0", who, C, m);
    if (rule != BN_RUNNING_MOMENTUM_NEW_UNBIASED &&
        rule != BN_RUNNING_MOMENTUM_OLD_BIASED &&
        rule != BN_RUNNING_CUMULATIVE_UNBIASED)
        BN_ERROR(BN_EINVAL, "%s: unknown running rule %d", who, (int)rule);
    if (rule != BN_RUNNING_MOMENTUM_OLD_BIASED && m < 2)
        BN_ERROR(BN_ESINGLE, "%s: m = 1: the unbiased variance m/(m-1)·sigma2_B "
                 "divides by zero", who);
    if (rule == BN_RUNNING_CUMULATIVE_UNBIASED)
        BN_REQUIRE_IN(who, num_batches);
    else if (!(momentum >= 0 && momentum <= 1))
        BN_ERROR(BN_EINVAL, "%s: momentum = %.17g must be in [0, 1]", who, momentum);
    return BN_OK;
}
