/*
 * groupnorm.c — Group Normalization (Wu & He 2018) and its two special cases,
 * Layer Normalization (Ba et al. 2016) and Instance Normalization.
 *
 * One formula, different sets of values sharing statistics. Picture x as a
 * cube N × C × (H·W):
 *
 *   BN  per channel c,             over all n and pixels   (bn_forward_train_ref)
 *   LN  per example n,             over all c and pixels   = GN with G = 1
 *   IN  per example n, channel c,  over the pixels         = GN with G = C
 *   GN  per example n, group g of C/G channels, over those channels and pixels
 *
 * For each set S of m = (C/G)·H·W values, with per-CHANNEL gamma and beta:
 *
 *   mu_S = (1/m) Σ_{i∈S} x_i,   sigma2_S = (1/m) Σ_{i∈S} (x_i - mu_S)²
 *   xhat_i = (x_i - mu_S) / sqrt(sigma2_S + eps),   y_i = gamma_c(i)·xhat_i + beta_c(i)
 *
 * Unlike BN, the statistics do not involve other examples, so training and
 * inference compute the same thing and there are no running statistics.
 * The backward is BN's closed form applied per set to dl/dxhat = dy·gamma:
 *
 *   dl/dx_i = s·(dxhat_i - mean_S(dxhat) - xhat_i·mean_S(dxhat·xhat)),  s = 1/sqrt(sigma2_S+eps)
 *   dl/dgamma_c = Σ_{n,pixels} dy·xhat,   dl/dbeta_c = Σ_{n,pixels} dy
 *
 * (docs/normalizations.md draws the four sets.)
 */
#include <math.h>
#include <stdlib.h>

#include "bn_internal.h"
#include "ref_steps.h"

/* Checks shared by forward and backward; *m gets the set size (C/G)·H·W. */
static int check_groups(const char *who, const bn_desc *d, size_t G, size_t *m)
{
    BN_TRY(bn_desc_check(d, 0, NULL, NULL));
    if (G == 0 || G > d->C || d->C % G != 0)
        BN_ERROR(BN_EINVAL, "%s: G = %zu groups must divide C = %zu (G = 1: LayerNorm, "
                 "G = C: InstanceNorm)", who, G, d->C);
    *m = d->C / G * d->H * d->W;
    if (*m == 1)
        BN_ERROR(BN_ESINGLE, "%s: each group holds one value ((C/G)·H·W = 1): its "
                 "variance is 0 and xhat is 0 whatever x is", who);
    return BN_OK;
}

/* The m values of set (n, g) in a contiguous buffer: channel by channel,
 * pixel by pixel. scatter_set writes such a buffer back. */
static void gather_set(double *S, const double *x, const bn_desc *d, size_t G,
                       size_t n, size_t g)
{
    size_t HW = d->H * d->W, cpg = d->C / G, j = 0;
    for (size_t c = g * cpg; c < (g + 1) * cpg; c++)
        for (size_t i = 0; i < HW; i++)
            S[j++] = x[bn_offset(d, n, c, i)];
}

static void scatter_set(double *y, const double *S, const bn_desc *d, size_t G,
                        size_t n, size_t g)
{
    size_t HW = d->H * d->W, cpg = d->C / G, j = 0;
    for (size_t c = g * cpg; c < (g + 1) * cpg; c++)
        for (size_t i = 0; i < HW; i++)
            y[bn_offset(d, n, c, i)] = S[j++];
}

int bn_groupnorm_forward_ref(double *y, double *mean, double *var_biased,
                             double *invstd, const double *x, const double *gamma,
                             const double *beta, const bn_desc *d, size_t G)
{
    size_t m;
    BN_TRY(check_groups(__func__, d, G, &m));
    BN_REQUIRE(y);
    BN_REQUIRE(mean);
    BN_REQUIRE(var_biased);
    BN_REQUIRE(x);
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(beta);
        for (size_t c = 0; c < d->C; c++)
            BN_TRY(bn_check_params(__func__, c, gamma, beta));
    }
    double *S = malloc(m * sizeof *S), *xhat = malloc(m * sizeof *xhat);
    if (!S || !xhat) {
        free(S), free(xhat);
        BN_ERROR(BN_ENOMEM, "%s: no memory for 2 x %zu doubles", __func__, m);
    }
    size_t HW = d->H * d->W, cpg = d->C / G;
    int status = BN_OK;
    for (size_t n = 0; n < d->N && status == BN_OK; n++)
        for (size_t g = 0; g < G && status == BN_OK; g++) {
            gather_set(S, x, d, G, n, g);
            double mu_S = bn_mean_B(S, m);
            double sigma2_S = bn_var_biased_B(S, m, mu_S);
            status = bn_check_stats("set", n * G + g, mu_S, sigma2_S, d->eps);
            if (status != BN_OK)
                break;
            bn_normalize(xhat, S, m, mu_S, sigma2_S, d->eps);
            for (size_t j = 0; j < m; j++) {   /* gamma and beta of channel c(j) */
                size_t c = g * cpg + j / HW;
                S[j] = d->affine ? gamma[c] * xhat[j] + beta[c] : xhat[j];
            }
            status = bn_check_finite(__func__, "y", "set n·G + g =", n * G + g, S, m);
            if (status != BN_OK)
                break;
            scatter_set(y, S, d, G, n, g);
            mean[n * G + g] = mu_S;
            var_biased[n * G + g] = sigma2_S;
            if (invstd)
                invstd[n * G + g] = 1.0 / sqrt(sigma2_S + d->eps);
        }
    free(S), free(xhat);
    return status;
}

int bn_groupnorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                              const double *dy, const double *x, const double *mean,
                              const double *invstd, const double *gamma,
                              const bn_desc *d, size_t G)
{
    size_t m;
    BN_TRY(check_groups(__func__, d, G, &m));
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    BN_REQUIRE(x);
    BN_REQUIRE(mean);
    BN_REQUIRE(invstd);
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
    }
    for (size_t k = 0; k < d->N * G; k++)
        if (!isfinite(mean[k]) || !(invstd[k] > 0) || isinf(invstd[k]))
            BN_ERROR(BN_EDOM, "%s: set %zu: saved mean = %g, invstd = %g; pass those "
                     "of bn_groupnorm_forward_ref", __func__, k, mean[k], invstd[k]);
    double *DY = malloc(m * sizeof *DY), *XHAT = malloc(m * sizeof *XHAT);
    long double *sum_dy = calloc(d->C, sizeof *sum_dy);
    long double *sum_dy_xhat = calloc(d->C, sizeof *sum_dy_xhat);
    if (!DY || !XHAT || !sum_dy || !sum_dy_xhat) {
        free(DY), free(XHAT), free(sum_dy), free(sum_dy_xhat);
        BN_ERROR(BN_ENOMEM, "%s: no memory for the work arrays", __func__);
    }
    size_t HW = d->H * d->W, cpg = d->C / G;
    int status = BN_OK;
    for (size_t n = 0; n < d->N && status == BN_OK; n++)
        for (size_t g = 0; g < G && status == BN_OK; g++) {
            size_t k = n * G + g;
            double s = invstd[k];
            gather_set(DY, dy, d, G, n, g);
            gather_set(XHAT, x, d, G, n, g);
            long double mean_dxhat = 0, mean_dxhat_xhat = 0;
            for (size_t j = 0; j < m; j++) {
                size_t c = g * cpg + j / HW;
                XHAT[j] = (XHAT[j] - mean[k]) * s;            /* xhat_j */
                sum_dy[c] += DY[j];                           /* dl/dbeta_c  */
                sum_dy_xhat[c] += DY[j] * XHAT[j];            /* dl/dgamma_c */
                DY[j] *= d->affine ? gamma[c] : 1.0;          /* now dl/dxhat_j */
                mean_dxhat += DY[j];
                mean_dxhat_xhat += DY[j] * XHAT[j];
            }
            mean_dxhat /= m;
            mean_dxhat_xhat /= m;
            for (size_t j = 0; j < m; j++)
                DY[j] = s * (DY[j] - (double)mean_dxhat - XHAT[j] * (double)mean_dxhat_xhat);
            status = bn_check_finite(__func__, "dx", "set n·G + g =", k, DY, m);
            if (status == BN_OK)
                scatter_set(dx, DY, d, G, n, g);
        }
    for (size_t c = 0; c < d->C && status == BN_OK && d->affine; c++) {
        dgamma[c] = (double)sum_dy_xhat[c];
        dbeta[c] = (double)sum_dy[c];
        status = bn_check_finite(__func__, "dgamma", "channel", c, &dgamma[c], 1);
        if (status == BN_OK)
            status = bn_check_finite(__func__, "dbeta", "channel", c, &dbeta[c], 1);
    }
    free(DY), free(XHAT), free(sum_dy), free(sum_dy_xhat);
    return status;
}

/* Layer Normalization: one set per example, all C·H·W values (G = 1). For an
 * (N, D) matrix that is each row, the form of Ba et al. */
int bn_layernorm_forward_ref(double *y, double *mean, double *var_biased,
                             double *invstd, const double *x, const double *gamma,
                             const double *beta, const bn_desc *d)
{
    return bn_groupnorm_forward_ref(y, mean, var_biased, invstd, x, gamma, beta, d, 1);
}

int bn_layernorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                              const double *dy, const double *x, const double *mean,
                              const double *invstd, const double *gamma,
                              const bn_desc *d)
{
    return bn_groupnorm_backward_ref(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, 1);
}

/* Instance Normalization: one set per example and channel, its H·W pixels
 * (G = C). */
int bn_instancenorm_forward_ref(double *y, double *mean, double *var_biased,
                                double *invstd, const double *x, const double *gamma,
                                const double *beta, const bn_desc *d)
{
    return bn_groupnorm_forward_ref(y, mean, var_biased, invstd, x, gamma, beta, d,
                                    d ? d->C : 0);
}

int bn_instancenorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x, const double *mean,
                                 const double *invstd, const double *gamma,
                                 const bn_desc *d)
{
    return bn_groupnorm_backward_ref(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d,
                                     d ? d->C : 0);
}
