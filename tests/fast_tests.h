/*
 * fast_tests.h — what the fast/ test programs (test_fast.c,
 * test_fast_groupnorm.c) share: float's unit roundoff, the per-quantity
 * tolerances and why, and the helpers that force an instruction-set path.
 * Included only when BNLAB_HAVE_FAST is defined.
 */
#ifndef BN_FAST_TESTS_H
#define BN_FAST_TESTS_H

#include <stdio.h>
#include <stdlib.h>

#include "fast_internal.h"
#include "harness.h"

#define U 0x1p-24 /* float's unit roundoff */

/* ------------------------------------------------------- tolerances
 *
 * Where fast/ rounds (kernels.h): each value's deviation d = x - mean is
 * one or two roundings (2u relative); sums run in float lanes over at most
 * 32 values (NCHW blocks: 1024 values, 16 lanes, 2 accumulators) or 64
 * (NHWC: 128 pixels, 2 accumulators) before going into double, so a float
 * partial sum carries at most ~64u of the sum of its terms' magnitudes;
 * everything after that is double, then one rounding to float. A GroupNorm
 * or LayerNorm set is summed like a BN channel; NHWC sets merge their
 * channels' moments in double.
 */

/* mean: one rounding (rtol u), plus the float sums of deviations (size
 * sigma) that correct the block means: 64u·sigma. */
#define MEAN_RTOL U
#define MEAN_ATOL_PER_SIGMA (64 * U)
/* var (sigma2) and invstd: sums of positive squares in float lanes, at
 * most 64 terms (64u) plus 2u per deviation plus the rounding: 128u. */
#define VAR_RTOL (128 * U)
/* y = a·(x - mean_hi) + k: a carries invstd's 128u, the rest a few
 * roundings of terms bounded by |gamma|·(|xhat| + 1) + |beta|. */
#define Y_ATOL_PER_SCALE (128 * U)
/* dbeta, dgamma: float-lane sums (<= 64 terms) of dz and dz·xhat whose
 * magnitudes add up to sum|dz|, sum|dz·xhat|: 128u of those. */
#define GRAD_SUM_ATOL_PER_ABS (128 * U)
/* dx = a·dz + b·(x - mean) + k: b and k inherit dgamma's and dbeta's
 * 128u; scale = s·(max|gamma·dz| + mean|gamma·dz| + max|xhat|·mean|gamma·dz·xhat|). */
#define DX_ATOL_PER_SCALE (128 * U)

/* ------------------------------------------------ the paths to test */

static const char *const isas[] = {"avx512", "avx2", "portable"};
enum { N_ISA = 3 };

/* Forces path k; returns 0 (after a SKIP line) if this CPU cannot run it. */
static inline int use_isa(int k)
{
    if (!bn_fast_isa_supported(isas[k])) {
        char what[64];
        snprintf(what, sizeof what, "fast path %s", isas[k]);
        skip(what, "this CPU (or OS) cannot run it");
        return 0;
    }
    ck_assert_int_eq(bn_fast_force_isa(isas[k]), BN_OK);
    ck_assert_str_eq(bn_fast_isa(), isas[k]);
    return 1;
}

/* ---------------------------------------------------------- buffers */

static inline float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_msg(p != NULL, "out of memory for %zu floats", n);
    return p;
}

/* The float inputs, exactly, in double: what ref is given. */
static inline void widen(double *dst, const float *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dst[k] = src[k];
}

#endif
