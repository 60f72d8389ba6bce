/*
 * ghost.c — Ghost Batch Normalization ("virtual batch size"): the N examples
 * of a mini-batch are split into K = N/V virtual batches of V examples, and
 * each is batch-normalized on its own, with its own statistics (over V·H·W
 * values per channel). gamma and beta are shared, so their gradients add up
 * over the virtual batches. Smaller statistics batches add noise: a
 * regularizer, and the way large-batch training keeps BN's small-batch
 * behaviour.
 *
 * Running statistics: each virtual batch counts as one batch of m = V·H·W,
 * applied in order k = 0 .. K-1 (bn_ghost_running_update_ref), as if the
 * virtual batches had been separate mini-batches.
 *
 * Both layouts keep each example's C·H·W values together, so virtual batch k
 * is the contiguous block of examples k·V .. k·V + V - 1.
 */
#include <stdlib.h>

#include "bn_internal.h"

static int check_ghost(const char *who, const bn_desc *d, size_t V)
{
    BN_TRY(bn_desc_check(d, 1, NULL, NULL));
    if (V == 0 || d->N % V != 0)
        BN_ERROR(BN_EINVAL, "%s: virtual batch size V = %zu must divide N = %zu", who, V,
                 d->N);
    return BN_OK;
}

int bn_ghost_forward_train_ref(double *y, double *mean, double *var_biased,
                               double *invstd, const double *x, const double *gamma,
                               const double *beta, const bn_desc *d, size_t V)
{
    BN_TRY(check_ghost(__func__, d, V));
    BN_REQUIRE(y);
    BN_REQUIRE(x);
    BN_REQUIRE(mean);
    BN_REQUIRE(var_biased);
    bn_desc vd = *d;    /* one virtual batch: V examples */
    vd.N = V;
    size_t block = V * d->C * d->H * d->W, C = d->C;
    for (size_t k = 0; k < d->N / V; k++)
        BN_TRY(bn_forward_train_ref(y + k * block, mean + k * C, var_biased + k * C,
                                    invstd ? invstd + k * C : NULL, x + k * block, gamma,
                                    beta, &vd));
    return BN_OK;
}

int bn_ghost_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                                const double *dy, const double *x, const double *mean,
                                const double *invstd, const double *gamma,
                                const bn_desc *d, size_t V)
{
    BN_TRY(check_ghost(__func__, d, V));
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    BN_REQUIRE(x);
    BN_REQUIRE(mean);
    BN_REQUIRE(invstd);
    if (d->affine) {
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
    }
    size_t block = V * d->C * d->H * d->W, C = d->C, K = d->N / V;
    double *dg = malloc(C * sizeof *dg), *db = malloc(C * sizeof *db);
    long double *sum_g = calloc(C, sizeof *sum_g), *sum_b = calloc(C, sizeof *sum_b);
    if (!dg || !db || !sum_g || !sum_b) {
        free(dg), free(db), free(sum_g), free(sum_b);
        BN_ERROR(BN_ENOMEM, "%s: no memory for the work arrays", __func__);
    }
    bn_desc vd = *d;
    vd.N = V;
    int status = BN_OK;
    for (size_t k = 0; k < K && status == BN_OK; k++) {
        status = bn_backward_train_ref(dx + k * block, dg, db, dy + k * block,
                                       x + k * block, mean + k * C, invstd + k * C, gamma,
                                       &vd);
        for (size_t c = 0; c < C && d->affine; c++)   /* gamma, beta are shared */
            sum_g[c] += dg[c], sum_b[c] += db[c];
    }
    for (size_t c = 0; c < C && d->affine && status == BN_OK; c++)
        dgamma[c] = (double)sum_g[c], dbeta[c] = (double)sum_b[c];
    free(dg), free(db), free(sum_g), free(sum_b);
    return status;
}

int bn_ghost_running_update_ref(double *running_mean, double *running_var,
                                size_t *num_batches, const double *mean,
                                const double *var_biased, size_t K, size_t C,
                                size_t m, bn_running_rule rule, double momentum)
{
    BN_REQUIRE(mean);
    BN_REQUIRE(var_biased);
    if (K == 0)
        BN_ERROR(BN_EBADLEN, "%s: K = 0 virtual batches", __func__);
    for (size_t k = 0; k < K; k++)
        BN_TRY(bn_running_update_ref(running_mean, running_var, num_batches, mean + k * C,
                                     var_biased + k * C, C, m, rule, momentum));
    return BN_OK;
}
