/*
 * relu.c — batch normalization fused with the ReLU that follows it
 * (z = g(BN(Wu)), §3.2, with g = max(0, ·)), as oneDNN's fuse_norm_relu.
 * Forward: y = max(0, BN(x)). Backward: ReLU passes dl/dy only where y > 0,
 * then BN's backward runs on that. The fused versions in fast/ and cuda/ do
 * both in one sweep; here they are the two steps, in order.
 */
#include <stdlib.h>

#include "bn_internal.h"

int bn_forward_train_relu_ref(double *y, double *mean, double *var_biased,
                              double *invstd, const double *x,
                              const double *gamma, const double *beta,
                              const bn_desc *d)
{
    size_t count;
    BN_TRY(bn_forward_train_ref(y, mean, var_biased, invstd, x, gamma, beta, d));
    BN_TRY(bn_desc_check(d, 1, &count, NULL));
    for (size_t k = 0; k < count; k++)
        y[k] = y[k] > 0 ? y[k] : 0;         /* max(0, y); -0 and NaN become 0 */
    return BN_OK;
}

int bn_backward_train_relu_ref(double *dx, double *dgamma, double *dbeta,
                               const double *dy, const double *y,
                               const double *x, const double *mean,
                               const double *invstd, const double *gamma,
                               const bn_desc *d)
{
    size_t count;
    BN_TRY(bn_desc_check(d, 1, &count, NULL));
    BN_REQUIRE(dy);
    BN_REQUIRE(y);
    double *dz = malloc(count * sizeof *dz);   /* dl/dz, z = BN(x) before the ReLU */
    if (!dz)
        BN_ERROR(BN_ENOMEM, "%s: no memory for %zu doubles", __func__, count);
    for (size_t k = 0; k < count; k++)
        dz[k] = y[k] > 0 ? dy[k] : 0;       /* ReLU'(z) = 1 where y = z > 0 */
    int status = bn_backward_train_ref(dx, dgamma, dbeta, dz, x, mean, invstd,
                                       gamma, d);
    free(dz);
    return status;
}
