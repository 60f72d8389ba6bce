/*
 * desc.c — the tensor descriptor: making one, and checking it. Every
 * implementation calls bn_desc_check first, so a bad shape gets the same
 * message from ref, fast and cuda.
 */
#include <math.h>
#include <stdint.h>

#include "bn_internal.h"

bn_desc bn_desc_make(size_t N, size_t C, size_t H, size_t W, bn_layout layout,
                     double eps)
{
    bn_desc d = {N, C, H, W, layout, eps, 1};
    return d;
}

int bn_desc_check(const bn_desc *d, int training, size_t *count, size_t *m)
{
    BN_REQUIRE(d);
    if (d->N == 0 || d->C == 0 || d->H == 0 || d->W == 0)
        BN_ERROR(BN_EBADLEN, "shape N=%zu C=%zu H=%zu W=%zu has a zero size",
                 d->N, d->C, d->H, d->W);
    if (d->layout != BN_NCHW && d->layout != BN_NHWC)
        BN_ERROR(BN_EINVAL, "unknown layout %d (use BN_NCHW or BN_NHWC)",
                 (int)d->layout);
    if (!(d->eps >= 0) || isinf(d->eps)) /* !(>=) also catches NaN */
        BN_ERROR(BN_EINVAL, "eps = %g: it must be finite and >= 0", d->eps);
    if (d->affine != 0 && d->affine != 1)
        BN_ERROR(BN_EINVAL, "affine = %d: it must be 0 or 1", d->affine);

    /* N·C·H·W values of 8 bytes (ref's double) must fit in size_t, and the
     * per-channel count m' = N·H·W in turn. */
    size_t hw, nhw, total, bytes;
    if (__builtin_mul_overflow(d->H, d->W, &hw) ||
        __builtin_mul_overflow(d->N, hw, &nhw) ||
        __builtin_mul_overflow(nhw, d->C, &total) ||
        __builtin_mul_overflow(total, sizeof(double), &bytes) ||
        bytes > PTRDIFF_MAX)
        BN_ERROR(BN_EOVERFLOW,
                 "shape N=%zu C=%zu H=%zu W=%zu: N·C·H·W overflows the address space",
                 d->N, d->C, d->H, d->W);
    if (training && nhw == 1)
        BN_ERROR(BN_ESINGLE,
                 "training with one value per channel (m' = N·H·W = 1): the batch "
                 "variance is 0 and xhat is 0 whatever x is; use N·H·W >= 2, or "
                 "inference mode");
    if (count) *count = total;
    if (m) *m = nhw;
    return BN_OK;
}

void bn_gather_ref(double *B, const double *x, const bn_desc *d, size_t c)
{
    size_t HW = d->H * d->W;
    for (size_t n = 0; n < d->N; n++)
        for (size_t i = 0; i < HW; i++)
            B[n * HW + i] = x[bn_offset(d, n, c, i)];
}

void bn_scatter_ref(double *y, const double *B, const bn_desc *d, size_t c)
{
    size_t HW = d->H * d->W;
    for (size_t n = 0; n < d->N; n++)
        for (size_t i = 0; i < HW; i++)
            y[bn_offset(d, n, c, i)] = B[n * HW + i];
}

int bn_check_finite(const char *who, const char *what, const char *unit, size_t c,
                    const double *v, size_t m)
{
    for (size_t i = 0; i < m; i++)
        if (!isfinite(v[i]))
            BN_ERROR(BN_EDOM, "%s: %s %zu: %s = %g (NaN or Inf in the input, or "
                     "the result overflows double)", who, unit, c, what, v[i]);
    return BN_OK;
}

int bn_check_params(const char *who, size_t c, const double *gamma,
                    const double *beta)
{
    if ((gamma && !isfinite(gamma[c])) || (beta && !isfinite(beta[c])))
        BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g, beta = %g must be finite", who,
                 c, gamma ? gamma[c] : 1.0, beta ? beta[c] : 0.0);
    return BN_OK;
}
