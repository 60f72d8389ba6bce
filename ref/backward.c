/*
 * backward.c — the gradient of Algorithm 1 (training mode), in double.
 *
 * bn_backward_train_ref follows the paper's chain rule (§3, after Alg. 1)
 * literally, one function per equation, in the paper's order. Write
 * s = 1/sqrt(sigma2_B + eps) (the saved invstd), so (sigma2_B + eps)^(-3/2) = s³:
 *
 *   (1) dl/dxhat_i = dl/dy_i · gamma
 *   (2) dl/dsigma2 = Σ_i dl/dxhat_i · (x_i - mu_B) · (-1/2)·s³
 *   (3) dl/dmu_B   = Σ_i dl/dxhat_i · (-s) + dl/dsigma2 · Σ_i -2(x_i - mu_B) / m
 *   (4) dl/dx_i    = dl/dxhat_i · s + dl/dsigma2 · 2(x_i - mu_B)/m + dl/dmu_B / m
 *   (5) dl/dgamma  = Σ_i dl/dy_i · xhat_i
 *   (6) dl/dbeta   = Σ_i dl/dy_i
 *
 * bn_backward_train_closed_ref substitutes (2) and (3) into (4):
 *
 *   dl/dx_i = gamma·s·(dl/dy_i - mean(dl/dy) - xhat_i · mean(dl/dy · xhat))
 *
 * The tests check both against each other and against finite differences.
 * docs/derivation.md derives each line.
 */
#include <math.h>
#include <stdlib.h>

#include "bn_internal.h"

/* (1) dl/dxhat_i = dl/dy_i · gamma */
static void dl_dxhat(double *dxhat, const double *dy, size_t m, double gamma)
{
    for (size_t i = 0; i < m; i++)
        dxhat[i] = dy[i] * gamma;
}

/* (2) dl/dsigma2 = Σ_i dl/dxhat_i · (x_i - mu_B) · (-1/2)·(sigma2_B + eps)^(-3/2) */
static double dl_dsigma2(const double *dxhat, const double *x, size_t m,
                         double mu_B, double s)
{
    long double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += dxhat[i] * (x[i] - mu_B);
    return (double)sum * -0.5 * s * s * s;
}

/* (3) dl/dmu_B = Σ_i dl/dxhat_i · (-1/sqrt(sigma2_B + eps))
 *              + dl/dsigma2 · Σ_i -2(x_i - mu_B) / m
 * The second sum is zero in exact arithmetic; the paper keeps it, so do we. */
static double dl_dmu(const double *dxhat, const double *x, size_t m,
                     double mu_B, double s, double dsigma2)
{
    long double sum_dxhat = 0, sum_dev = 0;
    for (size_t i = 0; i < m; i++) {
        sum_dxhat += dxhat[i];
        sum_dev += -2.0 * (x[i] - mu_B);
    }
    return (double)sum_dxhat * -s + dsigma2 * (double)sum_dev / (double)m;
}

/* (4) dl/dx_i = dl/dxhat_i / sqrt(sigma2_B + eps) + dl/dsigma2 · 2(x_i - mu_B)/m
 *             + dl/dmu_B / m */
static void dl_dx(double *dx, const double *dxhat, const double *x, size_t m,
                  double mu_B, double s, double dsigma2, double dmu)
{
    for (size_t i = 0; i < m; i++)
        dx[i] = dxhat[i] * s                              /* through xhat_i    */
                + dsigma2 * 2.0 * (x[i] - mu_B) / (double)m /* through sigma2_B */
                + dmu / (double)m;                          /* through mu_B     */
}

/* (5) dl/dgamma = Σ_i dl/dy_i · xhat_i,  xhat_i = (x_i - mu_B)·s */
static double dl_dgamma(const double *dy, const double *x, size_t m,
                        double mu_B, double s)
{
    long double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += dy[i] * (x[i] - mu_B) * s;
    return (double)sum;
}

/* (6) dl/dbeta = Σ_i dl/dy_i */
static double dl_dbeta(const double *dy, size_t m)
{
    long double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += dy[i];
    return (double)sum;
}

/* Checks shared by both backward forms; *m gets m' = N·H·W. */
static int check_backward(const char *who, double *dx, double *dgamma,
                          double *dbeta, const double *dy, const double *x,
                          const double *mean, const double *invstd,
                          const double *gamma, const bn_desc *d, size_t *m)
{
    BN_TRY(bn_check_backward_train_args(who, d, dx, dgamma, dbeta, dy, x, mean, invstd,
                                        gamma));
    BN_TRY(bn_desc_check(d, 1, NULL, m));
    for (size_t c = 0; c < d->C; c++) {
        if (d->affine)
            BN_TRY(bn_check_params(who, c, gamma, NULL));
        if (!isfinite(mean[c]) || !(invstd[c] > 0) || isinf(invstd[c]))
            BN_ERROR(BN_EDOM,
                     "%s: channel %zu: saved mean = %g, invstd = %g; pass the "
                     "mean and invstd from bn_forward_train (invstd > 0, finite)",
                     who, c, mean[c], invstd[c]);
    }
    return BN_OK;
}

/* dy with NaN or Inf makes every gradient of its channel NaN: say so. Called
 * with long-double sums, so their conversion to double is checked too. */
static int check_grad(const char *who, size_t c, double dgamma, double dbeta)
{
    if (!isfinite(dgamma) || !isfinite(dbeta))
        BN_ERROR(BN_EDOM, "%s: channel %zu: dy holds NaN or Inf (or overflows)",
                 who, c);
    return BN_OK;
}

int bn_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                          const double *dy, const double *x, const double *mean,
                          const double *invstd, const double *gamma,
                          const bn_desc *d)
{
    size_t m;
    BN_TRY(check_backward(__func__, dx, dgamma, dbeta, dy, x, mean, invstd,
                          gamma, d, &m));
    double *DY = malloc(m * sizeof *DY), *X = malloc(m * sizeof *X);
    double *DXHAT = malloc(m * sizeof *DXHAT), *DX = malloc(m * sizeof *DX);
    if (!DY || !X || !DXHAT || !DX) {
        free(DY), free(X), free(DXHAT), free(DX);
        BN_ERROR(BN_ENOMEM, "%s: no memory for 4 x %zu doubles", __func__, m);
    }
    int status = BN_OK;
    for (size_t c = 0; c < d->C && status == BN_OK; c++) {
        bn_gather_ref(DY, dy, d, c);
        bn_gather_ref(X, x, d, c);
        double mu_B = mean[c], s = invstd[c];
        double g = d->affine ? gamma[c] : 1.0;

        dl_dxhat(DXHAT, DY, m, g);                                  /* (1) */
        double dsigma2 = dl_dsigma2(DXHAT, X, m, mu_B, s);          /* (2) */
        double dmu = dl_dmu(DXHAT, X, m, mu_B, s, dsigma2);         /* (3) */
        double dg = dl_dgamma(DY, X, m, mu_B, s);                   /* (5) */
        double db = dl_dbeta(DY, m);                                /* (6) */
        status = check_grad(__func__, c, dg, db);
        if (status != BN_OK)
            break;
        dl_dx(DX, DXHAT, X, m, mu_B, s, dsigma2, dmu);              /* (4) */
        status = bn_check_finite(__func__, "dx", "channel", c, DX, m);
        if (status != BN_OK)
            break;
        bn_scatter_ref(dx, DX, d, c);
        if (d->affine) {
            dgamma[c] = dg;
            dbeta[c] = db;
        }
    }
    free(DY), free(X), free(DXHAT), free(DX);
    return status;
}

int bn_backward_train_closed_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x,
                                 const double *mean, const double *invstd,
                                 const double *gamma, const bn_desc *d)
{
    size_t m;
    BN_TRY(check_backward(__func__, dx, dgamma, dbeta, dy, x, mean, invstd,
                          gamma, d, &m));
    double *DY = malloc(m * sizeof *DY), *XHAT = malloc(m * sizeof *XHAT);
    if (!DY || !XHAT) {
        free(DY), free(XHAT);
        BN_ERROR(BN_ENOMEM, "%s: no memory for 2 x %zu doubles", __func__, m);
    }
    int status = BN_OK;
    for (size_t c = 0; c < d->C && status == BN_OK; c++) {
        bn_gather_ref(DY, dy, d, c);
        bn_gather_ref(XHAT, x, d, c);
        double s = invstd[c], g = d->affine ? gamma[c] : 1.0;
        long double sum_dy = 0, sum_dy_xhat = 0;
        for (size_t i = 0; i < m; i++) {
            XHAT[i] = (XHAT[i] - mean[c]) * s;   /* xhat_i */
            sum_dy += DY[i];                     /* = dl/dbeta  */
            sum_dy_xhat += DY[i] * XHAT[i];      /* = dl/dgamma */
        }
        status = check_grad(__func__, c, sum_dy_xhat, sum_dy);
        if (status != BN_OK)
            break;
        double mean_dy = sum_dy / (double)m, mean_dy_xhat = sum_dy_xhat / (double)m;
        for (size_t i = 0; i < m; i++)
            DY[i] = g * s * (DY[i] - mean_dy - XHAT[i] * mean_dy_xhat);
        status = bn_check_finite(__func__, "dx", "channel", c, DY, m);  /* DY now holds dx */
        if (status != BN_OK)
            break;
        bn_scatter_ref(dx, DY, d, c);
        if (d->affine) {
            dgamma[c] = sum_dy_xhat;
            dbeta[c] = sum_dy;
        }
    }
    free(DY), free(XHAT);
    return status;
}
