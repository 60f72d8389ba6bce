/*
 * recipes.c — the data of the conformance vectors: each recipe makes inputs
 * of one kind (typical, large offset, constant channel, ...) out of GSL
 * MT19937 integers times powers of two. Short dyadic numbers are exact in
 * binary64 and binary32, print in a few digits, and make every sum in the
 * binary128 oracle exact.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen.h"
#include "recipes.h"

/* Channel c's center and spread step for a recipe. */
static void channel_params(gsl_rng *r, const gshape *s, recipe rc, size_t c,
                           double *center, double *step, long *L)
{
    *center = (double)rnd_int(r, -16, 16) / 8;        /* [-2, 2] */
    *step = ldexp(1, -5 + (int)rnd_int(r, -1, 1));    /* sd about 0.6 .. 2.3 */
    *L = 32;
    switch (rc) {
    case R_OFFSET:                                    /* 100 +- 1 */
        *center = 100 + (double)rnd_int(r, -8, 8) / 4;
        *step = 0x1p-5;
        break;
    case R_LARGE_OFFSET:
        if (s->fp32) {                                /* 1e4 +- 0.6 */
            *center = 1e4 + (double)rnd_int(r, -4, 4) / 2;
            *step = 0x1p-5;
            *L = 16;
        } else {                                      /* 1e7 +- 0.1 */
            *center = 1e7 + (double)rnd_int(r, -4, 4) / 8;
            *step = 0x1p-7;
            *L = 10;
        }
        break;
    case R_TINY:
        *center = ldexp(*center, s->fp32 ? -50 : -500);
        *step = ldexp(*step, s->fp32 ? -50 : -500);
        break;
    case R_HUGE:
        *center = ldexp(*center, s->fp32 ? 56 : 500);
        *step = ldexp(*step, s->fp32 ? 56 : 500);
        break;
    default:
        break;
    }
    (void)c;
}

/* Pairs c0 +- d put at shuffled places: the mean is exactly c0 and the
 * biased variance Σd²/(m'/2), exact when m'/2 is a power of two. */
static void exact_channel(gsl_rng *r, const gshape *s, size_t c, double *x)
{
    size_t m = shape_m(s);
    double c0 = (double)rnd_int(r, -16, 16) / 4;
    size_t *pos = malloc(m * sizeof *pos);
    if (!pos || m % 2) {
        fprintf(stderr, "gen_vectors: exact statistics need an even m'\n");
        exit(1);
    }
    for (size_t i = 0; i < m; i++)
        pos[i] = i;
    for (size_t i = m - 1; i > 0; i--) {   /* Fisher-Yates */
        size_t j = (size_t)rnd_int(r, 0, (long)i), t = pos[i];
        pos[i] = pos[j];
        pos[j] = t;
    }
    for (size_t i = 0; i < m; i += 2) {
        double d = (double)rnd_int(r, 1, 16) / 8;
        x[shape_index(s, c, pos[i])] = c0 + d;
        x[shape_index(s, c, pos[i + 1])] = c0 - d;
    }
    free(pos);
}

void make_x(gsl_rng *r, const gshape *s, recipe rc, double *x)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        if (rc == R_EXACT) {
            exact_channel(r, s, c, x);
            continue;
        }
        double center, step;
        long L;
        channel_params(r, s, rc, c, &center, &step, &L);
        for (size_t i = 0; i < m; i++)
            x[shape_index(s, c, i)] =
                (rc == R_CONSTANT && c == 0) ? center : center + (double)rnd_bell(r, L) * step;
    }
    check_exact(s, x, shape_count(s), "x");
}

void make_params(gsl_rng *r, const gshape *s, recipe rc, double *gamma, double *beta)
{
    for (size_t c = 0; c < s->C; c++) {
        gamma[c] = (double)rnd_int(r, 4, 16) / 8;            /* [0.5, 2] */
        beta[c] = (double)rnd_int(r, -8, 8) / 8;             /* [-1, 1] */
        if (rc == R_NEG_GAMMA && c % 2 == 0)
            gamma[c] = -gamma[c];
        if (rc == R_RELU_NEG && c == 0)                      /* BN(x) < 0 everywhere */
            gamma[c] = 0.25, beta[c] = -4;
        if (rc == R_RELU_POS)                                /* BN(x) > 0 everywhere */
            gamma[c] = 0.25, beta[c] = 4;
        if (rc == R_CONSTANT && c == 0 && s->relu)           /* y = max(0, beta) = 0 */
            beta[c] = -0.75;
    }
    check_exact(s, gamma, s->C, "gamma");
    check_exact(s, beta, s->C, "beta");
}

void make_dy(gsl_rng *r, const gshape *s, dy_kind kind, const double *x, double *dy)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        double k = (double)rnd_int(r, -8, 8) / 4, mu = 0;
        if (kind == DY_PROPORTIONAL) {
            /* dy = k·(x - mean), exact: the mean of R_EXACT data is dyadic */
            for (size_t i = 0; i < m; i++)
                mu += x[shape_index(s, c, i)];
            mu /= (double)m;
            if (k == 0)
                k = 0.75;
        }
        for (size_t i = 0; i < m; i++) {
            size_t j = shape_index(s, c, i);
            dy[j] = kind == DY_CONSTANT ? k
                  : kind == DY_PROPORTIONAL ? k * (x[j] - mu)
                  : (double)rnd_bell(r, 16) / 16;
        }
    }
    check_exact(s, dy, shape_count(s), "dy");
}

const char *recipe_flag(recipe rc, const gshape *s)
{
    switch (rc) {
    case R_TYPICAL:      return s->eps == 0 ? "ZeroEps" : s->eps >= 1 ? "LargeEps" : "Typical";
    case R_NEG_GAMMA:    return "NegativeGamma";
    case R_OFFSET:       return "Offset";
    case R_LARGE_OFFSET: return "LargeOffset";
    case R_CONSTANT:     return "ConstantChannel";
    case R_TINY:         return "TinyMagnitude";
    case R_HUGE:         return "HugeMagnitude";
    case R_EXACT:        return "ExactStatistics";
    case R_RELU_NEG:     return "ReluAllNegative";
    case R_RELU_POS:     return "ReluAllPositive";
    }
    return "Typical";
}

const char *recipe_comment(recipe rc, const gshape *s)
{
    switch (rc) {
    case R_TYPICAL:
        return s->eps == 0 ? "eps = 0 with spread data: a correct implementation does not need eps > 0 here"
             : s->eps >= 1 ? "eps = 1, about the size of the variance: eps must be added to the variance inside the square root"
             : "typical data: means in [-2, 2], standard deviations 0.6 to 2.3";
    case R_NEG_GAMMA:    return "gamma < 0 on even channels: y = gamma*xhat + beta keeps the sign of gamma";
    case R_OFFSET:       return "mean about 100, standard deviation about 1: a one-pass variance loses 4 digits";
    case R_LARGE_OFFSET:
        return s->fp32 ? "1e4 +- 0.6 in fp32: a one-pass variance E[x^2] - E[x]^2 is noise, a two-pass or Welford variance is right"
                       : "1e7 +- 0.1: a one-pass variance E[x^2] - E[x]^2 is noise, a two-pass or Welford variance is right";
    case R_CONSTANT:     return "channel 0 is constant: its variance is exactly 0, xhat = 0 and y = beta (eps > 0 keeps it finite)";
    case R_TINY:         return "values about 2^-500 (fp64) or 2^-50 (fp32), eps = 0: the squares must not underflow";
    case R_HUGE:         return "values about 2^500 (fp64) or 2^56 (fp32), eps = 0: the squares and sums must not overflow";
    case R_EXACT:        return "pairs symmetric around the mean: mean and biased variance are exact (oneDNN-style)";
    case R_RELU_NEG:     return "channel 0 has BN(x) < 0 everywhere: the fused ReLU zeroes it";
    case R_RELU_POS:     return "BN(x) > 0 everywhere: the fused ReLU changes nothing";
    }
    return "";
}
