/*
 * oracle.c — the expected values of the conformance vectors, in binary128
 * (__float128, 113-bit significand, libquadmath's correctly rounded sqrtq),
 * each rounded once to binary64 at the end. The formulas are the paper's:
 *
 *   Algorithm 1   mu = (1/m') Σ x,  sigma2 = (1/m') Σ (x - mu)²  (biased),
 *                 xhat = (x - mu)/sqrt(sigma2 + eps),  y = gamma·xhat + beta
 *   backward      dx = gamma·s·(dy - mean(dy) - xhat·mean(dy·xhat)),
 *                 dgamma = Σ dy·xhat,  dbeta = Σ dy   (s = 1/sqrt(sigma2 + eps))
 *   Algorithm 2   y = gamma·(x - E[x])/sqrt(Var[x] + eps) + beta
 *
 * The inputs are short dyadic numbers (integers times a power of two), so
 * every sum here is exact and every other operation is one binary128
 * rounding (relative error 2^-113 ≈ 1e-34): the expected values are correct
 * to binary64's last bit, far inside every tolerance (at least 2^-52).
 *
 * Nothing here calls bnlab: this is an independent oracle. It also holds
 * the generator's small data helpers (index arithmetic, integer randoms).
 */
#include <math.h>
#include <quadmath.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen.h"

/* ------------------------------------------------------------ data */

size_t shape_count(const gshape *s) { return s->N * s->C * s->H * s->W; }
size_t shape_m(const gshape *s) { return s->N * s->H * s->W; }

size_t shape_index(const gshape *s, size_t c, size_t i)
{
    size_t HW = s->H * s->W, n = i / HW, p = i % HW;
    return s->layout == LAYOUT_NCHW ? (n * s->C + c) * HW + p : (n * HW + p) * s->C + c;
}

long rnd_int(gsl_rng *r, long lo, long hi)
{
    return lo + (long)gsl_rng_uniform_int(r, (unsigned long)(hi - lo + 1));
}

long rnd_bell(gsl_rng *r, long L)
{
    long k = 0;
    for (int j = 0; j < 4; j++)
        k += rnd_int(r, -L, L);
    return k;
}

void check_exact(const gshape *s, const double *v, size_t n, const char *what)
{
    for (size_t k = 0; k < n; k++)
        if (isfinite(v[k]) && s->fp32 && (double)(float)v[k] != v[k]) {
            fprintf(stderr, "gen_vectors: %s[%zu] = %.17g is not a binary32 value\n", what,
                    k, v[k]);
            exit(1);
        }
}

int shape_odd(const gshape *s)
{
    size_t v[4] = {s->N, s->C, s->H, s->W};
    int odd = 1;
    for (int a = 0; a < 4; a++) {
        odd &= (v[a] & (v[a] - 1)) != 0;             /* not a power of two */
        for (int b = 0; b < a; b++)
            odd &= v[a] != v[b];
    }
    return odd;
}

/* Flags that follow from the shape alone. */
void shape_flags(gtest *t, const gshape *s)
{
    size_t m = shape_m(s);
    if (m == 2)
        gen_flag(t, "TwoValues");
    if (s->N == 1 && s->H * s->W > 1)
        gen_flag(t, "SingleExample");
    if (shape_odd(s))
        gen_flag(t, "OddSizes");
}

/* ------------------------------------------------------------ binary128 */

double q_round(quad v) { return (double)v; }

void q_stats(const gshape *s, const double *x, size_t c, quad *mu, quad *var)
{
    size_t m = shape_m(s), *idx = malloc(m * sizeof *idx);
    if (!idx) {
        fprintf(stderr, "gen_vectors: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < m; i++)
        idx[i] = shape_index(s, c, i);
    q_stats_idx(x, idx, m, mu, var);
    free(idx);
}

void q_stats_idx(const double *x, const size_t *idx, size_t m, quad *mu, quad *var)
{
    quad sum = 0, sq = 0;
    for (size_t i = 0; i < m; i++)
        sum += x[idx[i]];
    *mu = sum / m;
    for (size_t i = 0; i < m; i++) {
        quad d = x[idx[i]] - *mu;
        sq += d * d;
    }
    *var = sq / m;
}

quad q_invstd(quad var, double eps) { return 1 / sqrtq(var + eps); }

void q_forward_train(const gshape *s, const double *x, const double *gamma,
                     const double *beta, double *y, double *mean, double *var,
                     double *invstd, double *z)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        quad mu, v;
        q_stats(s, x, c, &mu, &v);
        quad is = q_invstd(v, s->eps);
        quad g = s->affine ? gamma[c] : 1, b = s->affine ? beta[c] : 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            quad zz = g * ((x[k] - mu) * is) + b;
            if (z)
                z[k] = q_round(zz);
            if (y)
                y[k] = q_round(s->relu && !(zz > 0) ? 0 : zz);
        }
        if (mean)
            mean[c] = q_round(mu);
        if (var)
            var[c] = q_round(v);
        if (invstd)
            invstd[c] = q_round(is);
    }
}

void q_backward_train(const gshape *s, const double *x, const double *dy,
                      const double *gamma, const double *beta, double *dx,
                      double *dgamma, double *dbeta)
{
    size_t m = shape_m(s);
    quad *xhat = malloc(m * sizeof *xhat), *dz = malloc(m * sizeof *dz);
    if (!xhat || !dz) {
        fprintf(stderr, "gen_vectors: out of memory\n");
        exit(1);
    }
    for (size_t c = 0; c < s->C; c++) {
        quad mu, v;
        q_stats(s, x, c, &mu, &v);
        quad is = q_invstd(v, s->eps);
        quad g = s->affine ? gamma[c] : 1, b = s->affine ? beta[c] : 0;
        quad sum_dz = 0, sum_dz_xhat = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            xhat[i] = (x[k] - mu) * is;
            /* the ReLU passes the gradient where y = BN(x) > 0 */
            dz[i] = !s->relu || g * xhat[i] + b > 0 ? (quad)dy[k] : 0;
            sum_dz += dz[i];
            sum_dz_xhat += dz[i] * xhat[i];
        }
        quad mean_dz = sum_dz / m, mean_dz_xhat = sum_dz_xhat / m;
        for (size_t i = 0; i < m; i++)
            dx[shape_index(s, c, i)] = q_round(g * is * (dz[i] - mean_dz - xhat[i] * mean_dz_xhat));
        if (s->affine) {
            dgamma[c] = q_round(sum_dz_xhat);
            dbeta[c] = q_round(sum_dz);
        }
    }
    free(xhat);
    free(dz);
}

void q_forward_infer(const gshape *s, const double *x, const double *gamma,
                     const double *beta, const double *mean, const double *var,
                     double *y)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        quad is = q_invstd(var[c], s->eps);
        quad g = s->affine ? gamma[c] : 1, b = s->affine ? beta[c] : 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            y[k] = q_round(g * ((x[k] - (quad)mean[c]) * is) + b);
        }
    }
}

void q_backward_infer(const gshape *s, const double *x, const double *dy,
                      const double *gamma, const double *mean, const double *var,
                      double *dx, double *dgamma, double *dbeta)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        quad is = q_invstd(var[c], s->eps);
        quad g = s->affine ? gamma[c] : 1, sum_dy = 0, sum_dy_xhat = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            sum_dy += dy[k];
            sum_dy_xhat += dy[k] * ((x[k] - (quad)mean[c]) * is);
            dx[k] = q_round(dy[k] * g * is);
        }
        if (s->affine) {
            dgamma[c] = q_round(sum_dy_xhat);
            dbeta[c] = q_round(sum_dy);
        }
    }
}
