/*
 * weightnorm.c — Weight Normalization (Salimans & Kingma 2016): each output
 * unit k's weight vector is re-parametrized by a direction v_k and a length
 * g_k,
 *
 *   w_k = g_k · v_k / ‖v_k‖                       (‖w_k‖ = g_k exactly)
 *
 * Gradients, from dl/dw (the layer's usual weight gradient):
 *
 *   dl/dg_k = dl/dw_k · v_k / ‖v_k‖
 *   dl/dv_k = (g_k/‖v_k‖) · (dl/dw_k - dl/dg_k · v_k/‖v_k‖)
 *
 * (the second removes from dl/dw its component along v: the length is g's
 * business). Data-dependent initialization: with g = 1 and b = 0, compute the
 * pre-activations t = v_k·x/‖v_k‖ on one mini-batch; then
 *
 *   g_k = 1/sigma[t_k],   b_k = -mu[t_k]/sigma[t_k]
 *
 * makes the initial pre-activations g·t + b zero-mean, unit-variance per unit
 * on that batch (sigma: the biased standard deviation, as BN's).
 * v is K × D, row k holding unit k's D weights.
 */
#include <math.h>
#include <stdint.h>

#include "bn_internal.h"

static int check_kd(const char *who, size_t K, size_t D)
{
    size_t KD;
    if (K == 0 || D == 0)
        BN_ERROR(BN_EBADLEN, "%s: K = %zu units, D = %zu inputs: both must be > 0", who, K, D);
    if (__builtin_mul_overflow(K, D, &KD) || KD > PTRDIFF_MAX / sizeof(double))
        BN_ERROR(BN_EOVERFLOW, "%s: K·D overflows the address space", who);
    return BN_OK;
}

/* ‖v_k‖, refusing a zero (no direction) or non-finite row. */
static int row_norm(const char *who, double *norm, const double *v, size_t k, size_t D)
{
    long double ss = 0;
    for (size_t j = 0; j < D; j++)
        ss += (long double)v[k * D + j] * v[k * D + j];
    *norm = (double)sqrtl(ss);
    if (!(*norm > 0) || isinf(*norm))
        BN_ERROR(BN_EDOM, "%s: unit %zu: ‖v‖ = %g (v must be finite and not all 0)", who,
                 k, *norm);
    return BN_OK;
}

int bn_weightnorm_forward_ref(double *w, double *vnorm, const double *v,
                              const double *g, size_t K, size_t D)
{
    BN_TRY(check_kd(__func__, K, D));
    BN_REQUIRE(w);
    BN_REQUIRE(vnorm);
    BN_REQUIRE(v);
    BN_REQUIRE(g);
    for (size_t k = 0; k < K; k++) {
        BN_TRY(row_norm(__func__, &vnorm[k], v, k, D));
        BN_TRY(bn_check_finite(__func__, "g", "unit", k, &g[k], 1));
        for (size_t j = 0; j < D; j++)
            w[k * D + j] = g[k] * v[k * D + j] / vnorm[k];    /* g·v/‖v‖ */
    }
    return BN_OK;
}

int bn_weightnorm_backward_ref(double *dv, double *dg, const double *dw,
                               const double *v, const double *g, const double *vnorm,
                               size_t K, size_t D)
{
    BN_TRY(check_kd(__func__, K, D));
    BN_REQUIRE(dv);
    BN_REQUIRE(dg);
    BN_REQUIRE(dw);
    BN_REQUIRE(v);
    BN_REQUIRE(g);
    BN_REQUIRE(vnorm);
    for (size_t k = 0; k < K; k++) {
        if (!(vnorm[k] > 0) || isinf(vnorm[k]))
            BN_ERROR(BN_EDOM, "%s: unit %zu: vnorm = %g (pass the forward's)", __func__, k,
                     vnorm[k]);
        long double proj = 0;                 /* dl/dw_k · v_k/‖v_k‖ */
        for (size_t j = 0; j < D; j++)
            proj += (long double)dw[k * D + j] * v[k * D + j];
        dg[k] = (double)(proj / vnorm[k]);
        for (size_t j = 0; j < D; j++)
            dv[k * D + j] = g[k] / vnorm[k] * (dw[k * D + j] - dg[k] * v[k * D + j] / vnorm[k]);
        BN_TRY(bn_check_finite(__func__, "dv", "unit", k, dv + k * D, D));
    }
    return BN_OK;
}

/* t is N × K: the pre-activations v_k·x_n/‖v_k‖ of one mini-batch. */
int bn_weightnorm_init_ref(double *g, double *b, const double *t, size_t N, size_t K)
{
    BN_TRY(check_kd(__func__, N, K));
    BN_REQUIRE(g);
    BN_REQUIRE(b);
    BN_REQUIRE(t);
    if (N < 2)
        BN_ERROR(BN_ESINGLE, "%s: one example: the pre-activations have no spread", __func__);
    for (size_t k = 0; k < K; k++) {
        long double s = 0, q = 0;
        for (size_t n = 0; n < N; n++)
            s += t[n * K + k];
        double mu = (double)(s / N);
        for (size_t n = 0; n < N; n++)
            q += (t[n * K + k] - mu) * (t[n * K + k] - mu);
        double sigma = sqrt((double)(q / N));
        if (!(sigma > 0) || !isfinite(sigma) || !isfinite(mu))
            BN_ERROR(BN_EDOM, "%s: unit %zu: pre-activation mean %g, sd %g (need sd > 0)",
                     __func__, k, mu, sigma);
        g[k] = 1 / sigma;
        b[k] = -mu / sigma;
    }
    return BN_OK;
}
