/*
 * renorm.c — Batch Renormalization (Ioffe 2017): BN whose output does not
 * depend on which mini-batch an example landed in, in expectation. The batch
 * statistics are corrected towards moving averages (mu, sigma) by
 *
 *   sigma_B = sqrt(sigma2_B + eps)
 *   r = clip(sigma_B / sigma, 1/rmax, rmax)          (per channel)
 *   d = clip((mu_B - mu) / sigma, -dmax, dmax)
 *   xhat_i = (x_i - mu_B) / sigma_B · r + d,   y_i = gamma·xhat_i + beta
 *
 * r and d are treated as constants in backprop (the paper's stop-gradient):
 * the gradient is BN's with dl/dxhat scaled by r,
 *   dl/dx_i = (r/sigma_B)·(g_i - mean(g) - x0_i·mean(g·x0)),  g = dy·gamma,
 *   x0_i = (x_i - mu_B)/sigma_B;   dl/dgamma = Σ dy·xhat,  dl/dbeta = Σ dy.
 * After each step the moving averages move at rate alpha:
 *   mu += alpha·(mu_B - mu),   sigma += alpha·(sigma_B - sigma),
 * and inference uses them: y = gamma·(x - mu)/sigma + beta.
 * With rmax = 1 and dmax = 0 (r = 1, d = 0) it is BN exactly.
 */
#include <math.h>
#include <stdlib.h>

#include "bn_internal.h"
#include "ref_steps.h"

static double clip(double v, double lo, double hi)
{
    return v < lo ? lo : v > hi ? hi : v;
}

static int check_moving(const char *who, const double *moving_mean,
                        const double *moving_sd, size_t C)
{
    for (size_t c = 0; c < C; c++)
        if (!isfinite(moving_mean[c]) || !(moving_sd[c] > 0) || isinf(moving_sd[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: moving mean = %g, sd = %g (need finite, "
                     "sd > 0)", who, c, moving_mean[c], moving_sd[c]);
    return BN_OK;
}

int bn_renorm_forward_train_ref(double *y, double *mean, double *var_biased,
                                double *invstd, double *r, double *dshift,
                                const double *x, const double *gamma,
                                const double *beta, const double *moving_mean,
                                const double *moving_sd, const bn_desc *d,
                                double rmax, double dmax)
{
    BN_TRY(bn_desc_check(d, 1, NULL, NULL));
    BN_REQUIRE(invstd);
    BN_REQUIRE(r);
    BN_REQUIRE(dshift);
    BN_REQUIRE(moving_mean);
    BN_REQUIRE(moving_sd);
    if (!(rmax >= 1) || isinf(rmax) || !(dmax >= 0) || isinf(dmax))
        BN_ERROR(BN_EINVAL, "%s: rmax = %g must be >= 1 and dmax = %g >= 0 (both finite)",
                 __func__, rmax, dmax);
    BN_TRY(check_moving(__func__, moving_mean, moving_sd, d->C));
    /* Plain BN first: mu_B, sigma2_B and x0 = (x - mu_B)/sigma_B (gamma 1, beta 0). */
    bn_desc plain = *d;
    plain.affine = 0;
    BN_TRY(bn_forward_train_ref(y, mean, var_biased, invstd, x, NULL, NULL, &plain));
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(beta);
    }
    size_t HW = d->H * d->W;
    for (size_t c = 0; c < d->C; c++) {
        if (d->affine)
            BN_TRY(bn_check_params(__func__, c, gamma, beta));
        double sigma_B = sqrt(var_biased[c] + d->eps);
        r[c] = clip(sigma_B / moving_sd[c], 1 / rmax, rmax);
        dshift[c] = clip((mean[c] - moving_mean[c]) / moving_sd[c], -dmax, dmax);
        double g = d->affine ? gamma[c] : 1.0, b = d->affine ? beta[c] : 0.0;
        for (size_t n = 0; n < d->N; n++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = bn_offset(d, n, c, i);
                double xhat = y[k] * r[c] + dshift[c];   /* y held x0 */
                y[k] = g * xhat + b;
                BN_TRY(bn_check_finite(__func__, "y", "channel", c, &y[k], 1));
            }
    }
    return BN_OK;
}

int bn_renorm_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x,
                                 const double *mean, const double *invstd,
                                 const double *r, const double *dshift,
                                 const double *gamma, const bn_desc *d)
{
    BN_TRY(bn_desc_check(d, 1, NULL, NULL));
    BN_REQUIRE(r);
    BN_REQUIRE(dshift);
    BN_REQUIRE(invstd);
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
    }
    size_t C = d->C;
    for (size_t c = 0; c < C; c++)
        if (!(r[c] > 0) || isinf(r[c]) || !isfinite(dshift[c]))
            BN_ERROR(BN_EDOM, "%s: channel %zu: r = %g, d = %g (pass those of the forward)",
                     __func__, c, r[c], dshift[c]);
    /* BN's backward with gamma·r in place of gamma gives dx; its dgamma is then
     * Σ dy·x0·r (per unit of gamma·r), from which Σ dy·xhat = r·Σ dy·x0 + d·Σ dy. */
    double *gr = malloc(C * sizeof *gr), *dg0 = malloc(C * sizeof *dg0);
    double *db0 = malloc(C * sizeof *db0);
    if (!gr || !dg0 || !db0) {
        free(gr), free(dg0), free(db0);
        BN_ERROR(BN_ENOMEM, "%s: no memory for 3 x %zu doubles", __func__, C);
    }
    bn_desc full = *d;
    full.affine = 1;
    for (size_t c = 0; c < C; c++)
        gr[c] = (d->affine ? gamma[c] : 1.0) * r[c];
    int status = bn_backward_train_closed_ref(dx, dg0, db0, dy, x, mean, invstd, gr, &full);
    for (size_t c = 0; c < C && status == BN_OK && d->affine; c++) {
        dgamma[c] = r[c] * dg0[c] + dshift[c] * db0[c];   /* Σ dy·(x0·r + d) */
        dbeta[c] = db0[c];
    }
    free(gr), free(dg0), free(db0);
    return status;
}

int bn_renorm_update_ref(double *moving_mean, double *moving_sd, const double *mean,
                         const double *var_biased, size_t C, double eps, double alpha)
{
    BN_REQUIRE(moving_mean);
    BN_REQUIRE(moving_sd);
    BN_REQUIRE(mean);
    BN_REQUIRE(var_biased);
    if (C == 0)
        BN_ERROR(BN_EBADLEN, "%s: C = 0", __func__);
    if (!(alpha >= 0 && alpha <= 1) || !(eps >= 0) || isinf(eps))
        BN_ERROR(BN_EINVAL, "%s: alpha = %.17g must be in [0, 1], eps = %g >= 0", __func__,
                 alpha, eps);
    BN_TRY(check_moving(__func__, moving_mean, moving_sd, C));
    for (size_t c = 0; c < C; c++) {
        double sigma_B = sqrt(var_biased[c] + eps);
        if (!isfinite(mean[c]) || !isfinite(sigma_B))
            BN_ERROR(BN_EDOM, "%s: channel %zu: batch mean %g, var %g", __func__, c,
                     mean[c], var_biased[c]);
        moving_mean[c] += alpha * (mean[c] - moving_mean[c]);
        moving_sd[c] += alpha * (sigma_B - moving_sd[c]);
    }
    return BN_OK;
}

int bn_renorm_forward_infer_ref(double *y, const double *x, const double *gamma,
                                const double *beta, const double *moving_mean,
                                const double *moving_sd, const bn_desc *d)
{
    BN_TRY(bn_desc_check(d, 0, NULL, NULL));
    BN_REQUIRE(moving_mean);
    BN_REQUIRE(moving_sd);
    BN_TRY(check_moving(__func__, moving_mean, moving_sd, d->C));
    /* y = gamma·(x - mu)/sigma + beta is BN inference with var = sigma², eps = 0
     * (sqrt(sigma²) is sigma exactly in IEEE arithmetic). */
    double *var = malloc(d->C * sizeof *var);
    if (!var)
        BN_ERROR(BN_ENOMEM, "%s: no memory for %zu doubles", __func__, d->C);
    for (size_t c = 0; c < d->C; c++)
        var[c] = moving_sd[c] * moving_sd[c];
    bn_desc no_eps = *d;
    no_eps.eps = 0;
    int status = bn_forward_infer_ref(y, x, gamma, beta, moving_mean, var, &no_eps);
    free(var);
    return status;
}

/* The paper's schedule (Ioffe 2017, §4): plain BN (rmax = 1, dmax = 0) for the
 * first 5,000 steps, then relaxed to rmax = 3 by step 40,000 and dmax = 5 by
 * step 25,000. The paper says "gradually"; bnlab interpolates linearly. */
void bn_renorm_schedule(long step, double *rmax, double *dmax)
{
    double t_r = (step - 5000) / 35000.0, t_d = (step - 5000) / 20000.0;
    *rmax = 1 + 2 * clip(t_r, 0, 1);
    *dmax = 5 * clip(t_d, 0, 1);
}
