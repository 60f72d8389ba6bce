/*
 * forward.c — Algorithm 1 of Ioffe & Szegedy (2015), the batch-normalizing
 * transform in training mode, in double precision.
 *
 * For each channel c (each activation, for (N, D) data), over its mini-batch
 * B = {x_1 .. x_m} of m = m' = N·H·W values (§3.2):
 *
 *   mu_B     = (1/m) Σ x_i                          mini-batch mean
 *   sigma2_B = (1/m) Σ (x_i - mu_B)²                mini-batch variance (biased)
 *   xhat_i   = (x_i - mu_B) / sqrt(sigma2_B + eps)  normalize
 *   y_i      = gamma·xhat_i + beta                  scale and shift
 *
 * One function per line. The variance is computed in two passes (mean first,
 * then squared deviations), never as E[x²] - E[x]², which cancels to nothing
 * when |mu_B| ≫ sigma_B (a channel at 1e7 ± 0.1 keeps ~9 digits here).
 * Every sum in ref/ is accumulated in long double (64-bit mantissa on x86-64):
 * a sum of m doubles can lose log2(m) bits, and the oracle should not.
 *
 * To watch it run: make debug, then
 *   gdb --args build/debug/bin/transform  ;  break bn_forward_train_ref  ;  run
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>

#include "bn_internal.h"
#include "ref_steps.h"

/* mu_B = (1/m) Σ_i x_i */
double bn_mean_B(const double *x, size_t m)
{
    long double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += x[i];
    return (double)(sum / m);
}

/* sigma2_B = (1/m) Σ_i (x_i - mu_B)²   (biased: divides by m, not m - 1) */
double bn_var_biased_B(const double *x, size_t m, double mu_B)
{
    long double sum = 0;
    for (size_t i = 0; i < m; i++)
        sum += (x[i] - mu_B) * (x[i] - mu_B);
    return (double)(sum / m);
}

/* xhat_i = (x_i - mu_B) / sqrt(sigma2_B + eps) */
void bn_normalize(double *xhat, const double *x, size_t m, double mu_B,
                  double sigma2_B, double eps)
{
    double sd = sqrt(sigma2_B + eps);
    for (size_t i = 0; i < m; i++)
        xhat[i] = (x[i] - mu_B) / sd;
}

/* y_i = gamma·xhat_i + beta */
void bn_scale_and_shift(double *y, const double *xhat, size_t m, double gamma,
                        double beta)
{
    for (size_t i = 0; i < m; i++)
        y[i] = gamma * xhat[i] + beta;
}

/* The statistics must be finite and sigma2_B + eps a normal positive number,
 * or xhat is NaN, Inf or noise: report which channel, never return it. */
int bn_check_stats(const char *unit, size_t c, double mu_B, double sigma2_B,
                   double eps)
{
    if (!isfinite(mu_B) || !isfinite(sigma2_B))
        BN_ERROR(BN_EDOM,
                 "%s %zu: batch statistics are not finite (mu_B = %g, "
                 "sigma2_B = %g): x holds NaN or Inf, or its squares overflow",
                 unit, c, mu_B, sigma2_B);
    if (!(sigma2_B + eps >= DBL_MIN))
        BN_ERROR(BN_EDOM,
                 "%s %zu: sigma2_B + eps = %g is zero or subnormal (constant "
                 "values with eps = 0?): xhat would be 0/0 or noise",
                 unit, c, sigma2_B + eps);
    return BN_OK;
}

int bn_forward_train_ref(double *y, double *mean, double *var_biased,
                         double *invstd, const double *x, const double *gamma,
                         const double *beta, const bn_desc *d)
{
    size_t count, m;
    BN_TRY(bn_check_forward_train_args(__func__, d, y, mean, var_biased, x, gamma, beta));
    BN_TRY(bn_desc_check(d, 1, &count, &m));

    double *B = malloc(m * sizeof *B);    /* the mini-batch x_1..x_m of channel c */
    double *xhat = malloc(m * sizeof *xhat);
    if (!B || !xhat) {
        free(B), free(xhat);
        BN_ERROR(BN_ENOMEM, "bn_forward_train_ref: no memory for 2 x %zu doubles", m);
    }

    int status = BN_OK;
    for (size_t c = 0; c < d->C && status == BN_OK; c++) {
        bn_gather_ref(B, x, d, c);
        double mu_B = bn_mean_B(B, m);
        double sigma2_B = bn_var_biased_B(B, m, mu_B);
        status = bn_check_stats("channel", c, mu_B, sigma2_B, d->eps);
        if (status == BN_OK && d->affine)
            status = bn_check_params(__func__, c, gamma, beta);
        if (status != BN_OK)
            break;
        bn_normalize(xhat, B, m, mu_B, sigma2_B, d->eps);
        double g = d->affine ? gamma[c] : 1.0, b = d->affine ? beta[c] : 0.0;
        bn_scale_and_shift(B, xhat, m, g, b); /* B now holds y */
        status = bn_check_finite(__func__, "y", "channel", c, B, m);
        if (status != BN_OK)
            break;
        bn_scatter_ref(y, B, d, c);

        mean[c] = mu_B;
        var_biased[c] = sigma2_B;
        if (invstd)
            invstd[c] = 1.0 / sqrt(sigma2_B + d->eps);
    }
    free(B);
    free(xhat);
    return status;
}
