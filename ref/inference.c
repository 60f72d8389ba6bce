/*
 * inference.c — Algorithm 2, step 11: at inference the statistics are fixed,
 * so batch normalization is one affine map per channel,
 *
 *   y = gamma/sqrt(Var[x] + eps) · x + (beta - gamma·E[x]/sqrt(Var[x] + eps))
 *     = scale · x + shift.
 *
 * bn_fold_ref computes (scale, shift): that is what gets folded into the
 * preceding layer's weights. bn_forward_infer_ref applies the same map as
 * scale·(x - E[x]) + beta, which is equal in exact arithmetic but does not
 * cancel: scale·x + shift loses log10(|E[x]|/sigma) digits (8 of them for a
 * channel at 1e7 ± 0.1), the oracle must not.
 */
#include <float.h>
#include <math.h>

#include "bn_internal.h"

static int check_population(const char *who, size_t c, double mean, double var,
                            double eps)
{
    if (!isfinite(mean) || !(var >= 0) || isinf(var))
        BN_ERROR(BN_EDOM, "%s: channel %zu: mean = %g, var = %g (need finite, "
                 "var >= 0)", who, c, mean, var);
    if (!(var + eps >= DBL_MIN))
        BN_ERROR(BN_EDOM, "%s: channel %zu: var + eps = %g is zero or subnormal",
                 who, c, var + eps);
    return BN_OK;
}

/* scale = gamma / sqrt(Var[x] + eps),  shift = beta - scale·E[x] for channel c */
static int fold_channel(const char *who, double *scale, double *shift,
                        const double *gamma, const double *beta,
                        const double *mean, const double *var, const bn_desc *d,
                        size_t c)
{
    BN_TRY(check_population(who, c, mean[c], var[c], d->eps));
    if (d->affine)
        BN_TRY(bn_check_params(who, c, gamma, beta));
    double g = d->affine ? gamma[c] : 1.0, b = d->affine ? beta[c] : 0.0;
    *scale = g / sqrt(var[c] + d->eps);
    *shift = b - *scale * mean[c];
    if (!isfinite(*scale) || !isfinite(*shift))
        BN_ERROR(BN_EDOM, "%s: channel %zu: scale = %g, shift = %g overflow double",
                 who, c, *scale, *shift);
    return BN_OK;
}

int bn_fold_ref(double *scale, double *shift, const double *gamma,
                const double *beta, const double *mean, const double *var,
                const bn_desc *d)
{
    BN_TRY(bn_check_infer_args(__func__, d, gamma, beta, 1, mean, var));
    BN_REQUIRE(scale);
    BN_REQUIRE(shift);
    for (size_t c = 0; c < d->C; c++)
        BN_TRY(fold_channel(__func__, &scale[c], &shift[c], gamma, beta, mean, var, d, c));
    return BN_OK;
}

int bn_forward_infer_ref(double *y, const double *x, const double *gamma,
                         const double *beta, const double *mean,
                         const double *var, const bn_desc *d)
{
    BN_TRY(bn_check_infer_args(__func__, d, gamma, beta, 1, mean, var));
    BN_REQUIRE(y);
    BN_REQUIRE(x);
    size_t HW = d->H * d->W;
    for (size_t c = 0; c < d->C; c++) {
        double scale, shift;
        BN_TRY(fold_channel(__func__, &scale, &shift, gamma, beta, mean, var, d, c));
        double b = d->affine ? beta[c] : 0.0;
        for (size_t n = 0; n < d->N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = bn_offset(d, n, c, i);
                y[k] = scale * (x[k] - mean[c]) + b;  /* = scale·x + shift */
                if (!isfinite(y[k]))
                    BN_ERROR(BN_EDOM, "%s: channel %zu: y = %g from x = %g (NaN or "
                             "Inf in x, or y overflows double)", __func__, c, y[k], x[k]);
            }
    }
    return BN_OK;
}

/* With the statistics frozen, y = scale·x + shift is linear in x:
 *   dl/dx_i = dl/dy_i · scale,  dl/dgamma = Σ dl/dy_i · xhat_i,  dl/dbeta = Σ dl/dy_i
 * with xhat_i = (x_i - E[x]) / sqrt(Var[x] + eps). */
int bn_backward_infer_ref(double *dx, double *dgamma, double *dbeta,
                          const double *dy, const double *x, const double *gamma,
                          const double *mean, const double *var,
                          const bn_desc *d)
{
    BN_TRY(bn_check_infer_args(__func__, d, gamma, NULL, 0, mean, var));
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    BN_REQUIRE(x);
    if (d->affine) {
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
    }
    size_t HW = d->H * d->W;
    for (size_t c = 0; c < d->C; c++) {
        BN_TRY(check_population(__func__, c, mean[c], var[c], d->eps));
        if (d->affine)
            BN_TRY(bn_check_params(__func__, c, gamma, NULL));
        double s = 1.0 / sqrt(var[c] + d->eps);
        double scale = (d->affine ? gamma[c] : 1.0) * s;
        long double sum_dy = 0, sum_dy_xhat = 0;
        for (size_t n = 0; n < d->N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = bn_offset(d, n, c, i);
                double g = dy[k];  /* read before dx[k] is written: dx may be dy */
                sum_dy += g;
                sum_dy_xhat += g * (x[k] - mean[c]) * s;
                dx[k] = g * scale;
                if (!isfinite(dx[k]))
                    BN_ERROR(BN_EDOM, "%s: channel %zu: dx = %g (NaN or Inf in dy, or "
                             "dx overflows double)", __func__, c, dx[k]);
            }
        if (!isfinite((double)sum_dy) || !isfinite((double)sum_dy_xhat))
            BN_ERROR(BN_EDOM, "%s: channel %zu: dy holds NaN or Inf", __func__, c);
        if (d->affine) {
            dgamma[c] = sum_dy_xhat;
            dbeta[c] = sum_dy;
        }
    }
    return BN_OK;
}
