/*
 * bn_cuda_math.h — the arithmetic of cuda/ that does not depend on the
 * device: per-thread Welford, Chan's parallel merge of (count, mean, M2),
 * the per-channel coefficients and the per-element formulas of Algorithm 1
 * (Ioffe & Szegedy 2015), its backward (§3), Algorithm 2's inference map and
 * the running-statistics rules. Every function is __host__ __device__: the
 * kernels (cuda_kernels.cu) call them on the GPU, and tests/test_cuda_math.c
 * calls the very same code on the CPU, in CI, against ref/. In a plain C
 * compiler the CUDA qualifiers are defined away.
 *
 * Precision (why each piece has the width it has):
 *   - a thread's Welford keeps its running mean in float, over its values
 *     minus a shift (the thread's first value), and its M2 in double: a float
 *     mean of values near 1e7 carries ~0.6 of rounding, which would ruin a
 *     variance of 1; shifted values are small, and M2 in double cannot
 *     overflow for |x| up to float's range (squares of 1e19 are 1e38);
 *   - merges (warp, block, grid) are Chan's formula in double: few per
 *     thread, and sm_80 / sm_90 run FP64 at half the FP32 rate;
 *   - per-channel coefficients in double, rounded to float once;
 *   - per element: y = a·(x - center) + k with center = mean rounded to
 *     float, so that x - center is exact near the mean and k keeps the
 *     digits of the mean that float cannot hold (as fast/ does).
 *
 * Run the CPU tests: make check (tests/test_cuda_math.c).
 */
#ifndef BN_CUDA_MATH_H
#define BN_CUDA_MATH_H

#include <float.h>
#include <math.h>

#ifdef __CUDACC__
#define BN_HD static inline __host__ __device__
#else
#define BN_HD static inline
#endif

/* Error kinds a kernel notes per channel (cuda_api.c turns them into
 * messages); in order of precedence when several occur. */
enum {
    BN_CU_E_PARAMS = 0,  /* gamma or beta not finite */
    BN_CU_E_SAVED,       /* backward: saved mean/invstd not finite or invstd <= 0 */
    BN_CU_E_POP,         /* inference / running: statistics not finite or var < 0 */
    BN_CU_E_STATS,       /* training: batch statistics not finite (NaN/Inf in x) */
    BN_CU_E_ZEROVAR,     /* sigma2 + eps zero or subnormal */
    BN_CU_E_FLOAT,       /* a per-channel result does not fit in a float */
    BN_CU_E_GRAD,        /* Σ dy or Σ dy·xhat not finite (NaN/Inf in dy) */
    BN_CU_E_OUTPUT,      /* an output element (y, dx) is NaN or Inf */
    BN_CU_NERR
};

/* One thread's running moments: n values, the float mean of (x - shift),
 * and M2 = Σ (x - mean)² in double. */
typedef struct {
    unsigned n;
    float shift, mean;
    double m2;
} bn_cu_welford;

/* Moments in double: what the merges carry. The biased variance is m2/n. */
typedef struct {
    double n, mean, m2;
} bn_cu_moments;

/* Welford's update (one pass, stable): with v = x - shift,
 *   n += 1;  d = v - mean;  mean += d/n;  M2 += d·(v - mean_new). */
BN_HD void bn_cu_welford_push(bn_cu_welford *w, float x)
{
    if (w->n == 0)
        w->shift = x;
    float v = x - w->shift;
    w->n += 1;
    float d = v - w->mean;
    w->mean += d / (float)w->n;
    w->m2 += (double)d * (double)(v - w->mean);
}

BN_HD bn_cu_moments bn_cu_welford_moments(bn_cu_welford w)
{
    bn_cu_moments m = {(double)w.n, (double)w.shift + (double)w.mean, w.m2};
    if (w.n == 0)
        m.mean = 0;
    return m;
}

/* Chan, Golub & LeVeque's merge of two sets A and B:
 *   n = nA + nB,  delta = meanB - meanA,
 *   mean = meanA + delta·nB/n,  M2 = M2A + M2B + delta²·nA·nB/n.
 * Exact in exact arithmetic; stable because delta·nB/n is a small correction
 * when the sets agree. An empty side leaves the other unchanged. */
BN_HD void bn_cu_chan_merge(bn_cu_moments *a, bn_cu_moments b)
{
    if (b.n == 0)
        return;
    if (a->n == 0) {
        *a = b;
        return;
    }
    double n = a->n + b.n, delta = b.mean - a->mean, fb = b.n / n;
    a->mean += delta * fb;
    a->m2 += b.m2 + delta * delta * a->n * fb;
    a->n = n;
}

/* The per-channel coefficients of an elementwise formula:
 *   forward / inference  y  = a·(x - center) + k
 *   training backward    dx = a·dz + b·(x - center) + k
 *   inference backward   dx = a·dz                                        */
typedef struct {
    float center, a, b, k;
} bn_cu_coefs;

BN_HD int bn_cu_fits_float(double v)
{
    return isfinite(v) && fabs(v) <= (double)FLT_MAX;
}

/* Training forward, channel statistics -> saved statistics and coefficients:
 *   sigma2_B = M2/m',  invstd = 1/sqrt(sigma2_B + eps),  a = gamma·invstd,
 *   center = fl(mu_B),  k = beta - a·(mu_B - center).
 * Returns 0 or the BN_CU_E_* kind of the first problem. */
BN_HD int bn_cu_train_coefs(bn_cu_coefs *cf, float *mean, float *var_biased,
                            float *invstd, bn_cu_moments mo, double eps,
                            double gamma, double beta)
{
    double mu = mo.mean, var = mo.m2 / mo.n;
    if (!isfinite(mu) || !isfinite(var))
        return BN_CU_E_STATS;
    if (!(var + eps >= DBL_MIN))
        return BN_CU_E_ZEROVAR;
    double s = 1.0 / sqrt(var + eps), a = gamma * s;
    float center = (float)mu;
    double k = beta - a * (mu - (double)center);
    if (!bn_cu_fits_float(mu) || !bn_cu_fits_float(var) || !bn_cu_fits_float(s) ||
        !bn_cu_fits_float(a) || !bn_cu_fits_float(k))
        return BN_CU_E_FLOAT;
    cf->center = center, cf->a = (float)a, cf->b = 0, cf->k = (float)k;
    *mean = center;
    *var_biased = (float)var;
    *invstd = (float)s;
    return 0;
}

/* Inference, population (mean, var) -> y = a·(x - mean) + beta with
 * a = gamma/sqrt(var + eps); for the backward also a = gamma·s (same value). */
BN_HD int bn_cu_infer_coefs(bn_cu_coefs *cf, float mean, float var, double eps,
                            double gamma, double beta)
{
    if (!isfinite(mean) || !(var >= 0) || isinf(var))
        return BN_CU_E_POP;
    if (!((double)var + eps >= DBL_MIN))
        return BN_CU_E_ZEROVAR;
    double a = gamma / sqrt((double)var + eps);
    if (!bn_cu_fits_float(a))
        return BN_CU_E_FLOAT;
    cf->center = mean, cf->a = (float)a, cf->b = 0, cf->k = (float)beta;
    return 0;
}

/* y = a·(x - center) + k, then max(0, y) when relu (NaN becomes 0, as in
 * ref: the caller checks finiteness of the value before the ReLU). */
BN_HD float bn_cu_affine(float x, bn_cu_coefs c)
{
    return c.a * (x - c.center) + c.k;
}

BN_HD float bn_cu_relu(float y)
{
    return y > 0 ? y : 0.0f;
}

/* dl/dz of the fused BN+ReLU: the ReLU passes dy where its output y > 0. */
BN_HD float bn_cu_dz(float dy, float y, int relu)
{
    return relu && !(y > 0) ? 0.0f : dy;
}

/* xhat = (x - center)·invstd, in float: x - center is exact near center. */
BN_HD float bn_cu_xhat(float x, float center, float invstd)
{
    return (x - center) * invstd;
}

/* Training backward: the paper's chain rule (§3; ref/backward.c) folded
 * into per-channel coefficients, from the channel sums over m' values
 * Σ dz, Σ dz·xhat and Σ xhat, xhat = (x - mu)·s with the SAVED mu, s:
 *   dl/dsigma2 = -gamma·s²/2 · Σ dz·xhat
 *   dl/dmu     = -gamma·s·Σ dz + dl/dsigma2 · (-2/m)·Σ (x - mu)
 *   dl/dx      = gamma·s·dz + dl/dsigma2·2(x - mu)/m + dl/dmu/m
 *              = a·dz + b·(x - center) + k  with  a = gamma·s,
 *   b = -a·s·mean(dz·xhat),
 *   k = -a·mean(dz) + a·mean(dz·xhat)·mean(xhat) - b·(mu - center).
 * Σ xhat is 0 when mu is the exact batch mean (then this is the closed form
 * gamma·s·(dz - mean(dz) - xhat·mean(dz·xhat))); a saved mean rounded to
 * float is off by up to half an ulp of mu, which at 1e4 ± 0.005 is a tenth
 * of sigma, and the paper's dl/dmu term accounts for it, as ref does. */
BN_HD int bn_cu_backward_coefs(bn_cu_coefs *cf, double m, double mu, double s,
                               double gamma, double sum_dz, double sum_dzx,
                               double sum_xhat)
{
    if (!isfinite(sum_dz) || !isfinite(sum_dzx) || !isfinite(sum_xhat))
        return BN_CU_E_GRAD;
    double a = gamma * s, b = -a * s * (sum_dzx / m);
    float center = (float)mu;
    double k = -a * (sum_dz / m) + a * (sum_dzx / m) * (sum_xhat / m) -
               b * (mu - (double)center);
    if (!bn_cu_fits_float(a) || !bn_cu_fits_float(b) || !bn_cu_fits_float(k) ||
        !bn_cu_fits_float(sum_dz) || !bn_cu_fits_float(sum_dzx))
        return BN_CU_E_FLOAT;
    cf->center = center, cf->a = (float)a, cf->b = (float)b, cf->k = (float)k;
    return 0;
}

BN_HD float bn_cu_dx(float dz, float x, bn_cu_coefs c)
{
    return c.a * dz + c.b * (x - c.center) + c.k;
}

/* Saved statistics handed to a backward must be those of a forward. */
BN_HD int bn_cu_saved_ok(float mean, float invstd)
{
    return isfinite(mean) && invstd > 0 && !isinf(invstd);
}

/* One running update of channel c (rules as in bnlab.h, bn_running_rule):
 * rule 0 and 2 weight the new batch by f (momentum, or 1/(n+1) for the
 * cumulative average, count = batches so far) and store the unbiased
 * m/(m-1)·sigma2_B; rule 1 weights the old value by momentum and stores
 * sigma2_B. In double, rounded once. */
BN_HD int bn_cu_running_one(float *running_mean, float *running_var, float mean,
                            float var_biased, int rule, double momentum,
                            double count, double m)
{
    if (!isfinite(mean) || !(var_biased >= 0) || isinf(var_biased))
        return BN_CU_E_POP;
    double rm = *running_mean, rv = *running_var, nm, nv;
    if (rule == 1) {
        nm = momentum * rm + (1 - momentum) * mean;
        nv = momentum * rv + (1 - momentum) * var_biased;
    } else {
        double f = rule == 2 ? 1.0 / (count + 1.0) : momentum;
        double bessel = m / (m - 1);
        nm = (1 - f) * rm + f * mean;
        nv = (1 - f) * rv + f * bessel * var_biased;
    }
    if (isfinite(nm) && !bn_cu_fits_float(nm))
        return BN_CU_E_FLOAT;
    if (isfinite(nv) && !bn_cu_fits_float(nv))
        return BN_CU_E_FLOAT;
    *running_mean = (float)nm;
    *running_var = (float)nv;
    return 0;
}

#endif /* BN_CUDA_MATH_H */
