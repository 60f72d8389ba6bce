/*
 * tol.c — the tolerance of every expected output, from a first-order error
 * model of a correct implementation in the group's precision (docs/
 * conformance.md, "Tolerance policy", states the same formulas).
 *
 * u is the unit roundoff of the dtype (2^-53 for fp64, 2^-24 for fp32) and
 * A = m' + 8: recursive summation of m' numbers errs by at most (m'-1)·u
 * times the sum of their magnitudes, plus a few roundings per value. So an
 * implementation that sums naively in its own precision passes; pairwise
 * sums, wider accumulators and Welford pass with room to spare.
 *
 * Per channel (the test's tolerance is the largest over its channels):
 *   M = max|x|, sigma² the exact biased variance, s = 1/sqrt(sigma² + eps),
 *   X = max|xhat|, G = |gamma| (1 without affine), B = |beta|.
 *   e_mu   = A·u·M                               error of the batch mean
 *   var    atol 2·A·u·M·sigma + 2·e_mu², rtol 2(A+2)u   (two-pass or Welford)
 *   r_s    = (atol_var + rtol_var·sigma²)/(2(sigma² + eps)) + 4u   rel. error of s
 *   e_xhat = e_mu·s + X·r_s + 3u·X
 * The factor 2 in front of most terms is a safety margin, never tuned to
 * make something pass. Every expected value is correct to binary64 (oracle.c).
 * set_error computes these quantities for any set of values: a channel here,
 * the sets of GroupNorm and Ghost BN in tol_family.c.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen.h"

double unit_roundoff(const gshape *s) { return s->fp32 ? 0x1p-24 : 0x1p-53; }

typedef long double ld;
typedef gerr fwd_err;

gerr set_error(const double *x, const size_t *idx, size_t m, double eps, ld u)
{
    fwd_err e;
    ld A = (ld)m + 8;
    quad mu, var;
    q_stats_idx(x, idx, m, &mu, &var);
    e.mu = (ld)mu;
    e.M = 0;
    e.X = 0;
    e.sigma2 = (ld)var;
    e.s = (ld)q_invstd(var, eps);
    for (size_t i = 0; i < m; i++) {
        ld v = x[idx[i]];
        e.M = fmaxl(e.M, fabsl(v));
        e.X = fmaxl(e.X, fabsl((v - (ld)mu) * e.s));
    }
    e.e_mu = A * u * e.M;
    e.atol_var = 2 * A * u * e.M * sqrtl(e.sigma2) + 2 * e.e_mu * e.e_mu;
    e.rtol_var = 2 * (A + 2) * u;
    e.r_s = (e.atol_var + e.rtol_var * e.sigma2) / (2 * (e.sigma2 + eps)) + 4 * u;
    e.e_xhat = e.e_mu * e.s + e.X * e.r_s + 3 * u * e.X;
    return e;
}

/* What an implementation's training forward gets wrong on channel c, at
 * most: the quantities of the header comment. */
static fwd_err forward_error(const gshape *s, const double *x, size_t c, ld u)
{
    size_t m = shape_m(s), *idx = malloc(m * sizeof *idx);
    if (!idx) {
        fprintf(stderr, "gen_vectors: out of memory\n");
        exit(1);
    }
    for (size_t i = 0; i < m; i++)
        idx[i] = shape_index(s, c, i);
    fwd_err e = set_error(x, idx, m, s->eps, u);
    free(idx);
    return e;
}

static ld param(const gshape *s, const double *p, size_t c, ld dflt)
{
    return s->affine && p ? fabsl((ld)p[c]) : dflt;
}

void tol_forward_train(gtest *t, const gshape *s, const double *x,
                       const double *gamma, const double *beta)
{
    ld u = unit_roundoff(s), ty = 0, tm = 0, tva = 0, tvr = 0, ts = 0;
    for (size_t c = 0; c < s->C; c++) {
        fwd_err e = forward_error(s, x, c, u);
        ld G = param(s, gamma, c, 1), B = param(s, beta, c, 0);
        ty = fmaxl(ty, 2 * (G * e.e_xhat + 2 * u * (G * e.X + B)));
        tm = fmaxl(tm, 2 * e.e_mu);
        tva = fmaxl(tva, e.atol_var);
        tvr = fmaxl(tvr, e.rtol_var);
        ts = fmaxl(ts, 2 * e.r_s);
    }
    gen_tol(t, "y", (double)ty, (double)(2 * u));
    gen_tol(t, "mean", (double)tm, (double)(2 * u));
    gen_tol(t, "varBiased", (double)tva, (double)tvr);
    gen_tol(t, "invstd", 0, (double)ts);
}

void tol_backward_train(gtest *t, const gshape *s, const double *x,
                        const double *dy, const double *gamma, const double *beta)
{
    ld u = unit_roundoff(s), A = (ld)shape_m(s) + 8, tdx = 0, tdg = 0, tdb = 0;
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        fwd_err e = forward_error(s, x, c, u);
        quad mu, var;
        q_stats(s, x, c, &mu, &var);
        ld G = param(s, gamma, c, 1), B = s->affine ? (ld)beta[c] : 0;
        ld gs = s->affine ? (ld)gamma[c] : 1, D = 0, S1 = 0, S2 = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            ld xhat = ((ld)x[k] - (ld)mu) * e.s;
            /* |dz|: the ReLU passes dy where BN(x) = gamma·xhat + beta > 0 */
            ld g = (!s->relu || gs * xhat + B > 0) ? fabsl((ld)dy[k]) : 0;
            D = fmaxl(D, g);
            S1 += g;
            S2 += g * fabsl(xhat);
        }
        ld X2 = e.X * e.X;
        tdx = fmaxl(tdx, 2 * G * e.s * D *
                             ((A + 6) * u * (2 + 2 * X2) + 3 * e.X * e.e_xhat + (2 + X2) * e.r_s));
        tdg = fmaxl(tdg, 2 * ((A + 4) * u * S2 + S1 * e.e_xhat));
        tdb = fmaxl(tdb, 2 * A * u * S1);
    }
    gen_tol(t, "dx", (double)tdx, (double)(2 * u));
    if (s->affine) {
        gen_tol(t, "dgamma", (double)tdg, (double)(2 * u));
        gen_tol(t, "dbeta", (double)tdb, (double)(2 * u));
    }
}

/* Inference: y = gamma·s_v·(x - mean) + beta, or folded scale·x + shift;
 * s_v = 1/sqrt(var + eps). Folding rounds scale·x and shift = beta -
 * scale·mean, each of size up to G·s_v·max(|x|, |mean|): that is the term
 * 8u·G·s_v·(|x| + |mean|), the conditioning of the folded form. */
void tol_forward_infer(gtest *t, const gshape *s, const double *x,
                       const double *gamma, const double *beta,
                       const double *mean, const double *var)
{
    ld u = unit_roundoff(s), ty = 0;
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        ld sv = (ld)q_invstd(var[c], s->eps), Mx = 0, X = 0;
        for (size_t i = 0; i < m; i++) {
            ld v = x[shape_index(s, c, i)];
            Mx = fmaxl(Mx, fabsl(v));
            X = fmaxl(X, fabsl(v - (ld)mean[c]) * sv);
        }
        ld G = param(s, gamma, c, 1), B = param(s, beta, c, 0);
        ty = fmaxl(ty, 8 * u * (G * sv * (Mx + fabsl((ld)mean[c])) + B + G * X));
    }
    gen_tol(t, "y", (double)ty, (double)(4 * u));
}

void tol_backward_infer(gtest *t, const gshape *s, const double *x,
                        const double *dy, const double *gamma,
                        const double *mean, const double *var)
{
    ld u = unit_roundoff(s), A = (ld)shape_m(s) + 8, tdg = 0, tdb = 0;
    size_t m = shape_m(s);
    (void)gamma;
    for (size_t c = 0; c < s->C; c++) {
        ld sv = (ld)q_invstd(var[c], s->eps), Mx = 0, X = 0, S1 = 0, S2 = 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            ld xhat = ((ld)x[k] - (ld)mean[c]) * sv;
            Mx = fmaxl(Mx, fabsl((ld)x[k]));
            X = fmaxl(X, fabsl(xhat));
            S1 += fabsl((ld)dy[k]);
            S2 += fabsl((ld)dy[k] * xhat);
        }
        ld e_xhat = 3 * u * X + 2 * u * (Mx + fabsl((ld)mean[c])) * sv;
        tdg = fmaxl(tdg, 2 * ((A + 4) * u * S2 + S1 * e_xhat));
        tdb = fmaxl(tdb, 2 * A * u * S1);
    }
    /* dx = dy·gamma·s_v: a square root, a division and two products */
    gen_tol(t, "dx", 0, (double)(8 * u));
    if (s->affine) {
        gen_tol(t, "dgamma", (double)tdg, (double)(2 * u));
        gen_tol(t, "dbeta", (double)tdb, (double)(2 * u));
    }
}

void tol_batch_stats(const gshape *s, const double *x, size_t c, double *e_mean,
                     double *e_var)
{
    fwd_err e = forward_error(s, x, c, unit_roundoff(s));
    *e_mean = (double)e.e_mu;
    *e_var = (double)(e.atol_var + e.rtol_var * e.sigma2);
}

double relu_margin_ok(const gshape *s, const double *x, const double *gamma,
                      const double *beta)
{
    gshape s32 = *s;
    s32.fp32 = 1;           /* the fp32 margin, for fp64 groups too */
    ld u = unit_roundoff(&s32), worst = INFINITY;
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        fwd_err e = forward_error(&s32, x, c, u);
        quad mu, var;
        q_stats(s, x, c, &mu, &var);
        ld g = s->affine ? (ld)gamma[c] : 1, B = s->affine ? (ld)beta[c] : 0;
        ld ty = 2 * (fabsl(g) * e.e_xhat + 2 * u * (fabsl(g) * e.X + fabsl(B)));
        for (size_t i = 0; i < m; i++) {
            ld z = g * (((ld)x[shape_index(s, c, i)] - (ld)mu) * e.s) + B;
            worst = fminl(worst, fabsl(z) / ty);
        }
    }
    return (double)worst;
}
