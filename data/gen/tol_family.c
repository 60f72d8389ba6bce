/*
 * tol_family.c — the tolerances of the normalization family's vectors, from
 * the same first-order error model as tol.c (docs/conformance.md, "Tolerance
 * policy"): u the dtype's unit roundoff, sums of n terms err by (n + 8)·u
 * times the sum of their magnitudes, the factor 2 a safety margin.
 *
 *   GN, LN, IN, Ghost BN: BN's bounds with the set S of the method in place
 *     of the channel (set_error on S); dgamma, dbeta sum over the channel's
 *     values of several sets, each with its own xhat error.
 *   Batch Renormalization: r carries sigma_B's relative error r_s (+2u), d
 *     the mean's error over sigma; xhat = x0·r + d adds both.
 *   Weight Normalization: ‖v‖ is a sum of D squares (relative error
 *     r_n = (D + 8)u/2 + u), w a product with it; dl/dv subtracts the
 *     projection on v, which cancels when dl/dw is nearly parallel to v.
 */
#include <math.h>

#include "gen.h"

typedef long double ld;

static ld pabs(const double *p, size_t c, ld dflt) { return p ? fabsl((ld)p[c]) : dflt; }

/* ------------------------------------------------ normalization over sets */

void tol_norm_forward(gtest *t, const gshape *s, const gpart *p, const double *x,
                      const double *gamma, const double *beta)
{
    ld u = unit_roundoff(s), ty = 0, tm = 0, tva = 0, tvr = 0, ts = 0;
    for (size_t k = 0; k < p->nsets; k++) {
        gerr e = set_error(x, p->idx + k * p->m, p->m, s->eps, u);
        for (size_t j = 0; j < p->m; j++) {
            size_t c = p->chan[k * p->m + j];
            ld G = pabs(gamma, c, 1), B = pabs(beta, c, 0);
            ty = fmaxl(ty, 2 * (G * e.e_xhat + 2 * u * (G * e.X + B)));
        }
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

void tol_norm_backward(gtest *t, const gshape *s, const gpart *p, const double *x,
                       const double *dy, const double *gamma)
{
    ld u = unit_roundoff(s), A = (ld)p->m + 8, tdx = 0, tdg = 0, tdb = 0;
    ld *S1 = gen_alloc(s->C, sizeof *S1), *S2 = gen_alloc(s->C, sizeof *S2);
    ld *E = gen_alloc(s->C, sizeof *E), *cnt = gen_alloc(s->C, sizeof *cnt);
    for (size_t k = 0; k < p->nsets; k++) {
        const size_t *idx = p->idx + k * p->m, *chan = p->chan + k * p->m;
        gerr e = set_error(x, idx, p->m, s->eps, u);
        ld D = 0;                                    /* max |dl/dxhat| = |dy·gamma| */
        for (size_t j = 0; j < p->m; j++) {
            ld ady = fabsl((ld)dy[idx[j]]), xhat = ((ld)x[idx[j]] - e.mu) * e.s;
            D = fmaxl(D, ady * pabs(gamma, chan[j], 1));
            S1[chan[j]] += ady;
            S2[chan[j]] += ady * fabsl(xhat);
            E[chan[j]] += ady * e.e_xhat;
            cnt[chan[j]] += 1;
        }
        ld X2 = e.X * e.X;
        tdx = fmaxl(tdx, 2 * e.s * D *
                             ((A + 6) * u * (2 + 2 * X2) + 3 * e.X * e.e_xhat + (2 + X2) * e.r_s));
    }
    for (size_t c = 0; c < s->C; c++) {                 /* sums of cnt[c] terms */
        tdg = fmaxl(tdg, 2 * ((cnt[c] + 12) * u * S2[c] + E[c]));
        tdb = fmaxl(tdb, 2 * (cnt[c] + 8) * u * S1[c]);
    }
    gen_tol(t, "dx", (double)tdx, (double)(2 * u));
    if (gamma) {
        gen_tol(t, "dgamma", (double)tdg, (double)(2 * u));
        gen_tol(t, "dbeta", (double)tdb, (double)(2 * u));
    }
}

/* ------------------------------------------------ Batch Renormalization */

/* Channel c's forward error (BN's) and what r, d add to it. */
typedef struct {
    gerr e;
    ld r, d, rr, e_d, e_xhat;   /* rr: relative error of r; e_xhat: of x0·r + d */
} brn_err;

static brn_err renorm_error(const gshape *s, const grenorm *b, const double *x, size_t c, ld u)
{
    brn_err z;
    size_t m = shape_m(s), *idx = gen_alloc(m, sizeof *idx);
    for (size_t i = 0; i < m; i++)
        idx[i] = shape_index(s, c, i);
    z.e = set_error(x, idx, m, s->eps, u);
    quad rq, dq;
    q_renorm_rd(s, b, x, c, &rq, &dq);
    z.r = (ld)rq, z.d = (ld)dq;
    /* sigma_B/sigma: sigma_B's error (that of 1/s) and one division */
    z.rr = z.e.r_s + 2 * u;
    /* (mu_B - mu)/sigma: the mean's error, the subtraction, one division */
    z.e_d = (z.e.e_mu + 2 * u * (fabsl(z.e.mu) + fabsl((ld)b->mm[c]))) / (ld)b->msd[c] +
            2 * u * fabsl(z.d);
    z.e_xhat = z.e.e_xhat * z.r + z.e.X * z.r * z.rr + z.e_d + 2 * u * (z.e.X * z.r + fabsl(z.d));
    return z;
}

void tol_renorm_forward(gtest *t, const gshape *s, const grenorm *b, const double *x,
                        const double *gamma, const double *beta)
{
    ld u = unit_roundoff(s), ty = 0, tm = 0, tva = 0, tvr = 0, ts = 0, tr = 0, td = 0;
    for (size_t c = 0; c < s->C; c++) {
        brn_err z = renorm_error(s, b, x, c, u);
        ld G = pabs(gamma, c, 1), B = pabs(beta, c, 0);
        ty = fmaxl(ty, 2 * (G * z.e_xhat + 2 * u * (G * (z.e.X * z.r + fabsl(z.d)) + B)));
        tm = fmaxl(tm, 2 * z.e.e_mu);
        tva = fmaxl(tva, z.e.atol_var);
        tvr = fmaxl(tvr, z.e.rtol_var);
        ts = fmaxl(ts, 2 * z.e.r_s);
        tr = fmaxl(tr, 2 * z.rr);
        td = fmaxl(td, 2 * z.e_d);
    }
    gen_tol(t, "y", (double)ty, (double)(2 * u));
    gen_tol(t, "mean", (double)tm, (double)(2 * u));
    gen_tol(t, "varBiased", (double)tva, (double)tvr);
    gen_tol(t, "invstd", 0, (double)ts);
    gen_tol(t, "r", 0, (double)tr);
    gen_tol(t, "d", (double)td, (double)(2 * u));
}

/* BN's dx bound with gamma·r for gamma (r's error next to s's); dgamma sums
 * dy·(x0·r + d), which may be computed as r·Σ dy·x0 + d·Σ dy: S2 bounds both. */
void tol_renorm_backward(gtest *t, const gshape *s, const grenorm *b, const double *x,
                         const double *dy, const double *gamma)
{
    ld u = unit_roundoff(s), A = (ld)shape_m(s) + 8, tdx = 0, tdg = 0, tdb = 0;
    for (size_t c = 0; c < s->C; c++) {
        brn_err z = renorm_error(s, b, x, c, u);
        ld G = pabs(gamma, c, 1), D = 0, S1 = 0, S2 = 0;
        for (size_t i = 0; i < shape_m(s); i++) {
            size_t k = shape_index(s, c, i);
            ld ady = fabsl((ld)dy[k]), x0 = ((ld)x[k] - z.e.mu) * z.e.s;
            D = fmaxl(D, ady);
            S1 += ady;
            S2 += ady * (fabsl(x0) * z.r + fabsl(z.d));
        }
        ld X2 = z.e.X * z.e.X;
        tdx = fmaxl(tdx, 2 * G * z.r * z.e.s * D *
                             ((A + 6) * u * (2 + 2 * X2) + 3 * z.e.X * z.e.e_xhat +
                              (2 + X2) * (z.e.r_s + z.rr)));
        tdg = fmaxl(tdg, 2 * ((A + 4) * u * S2 + S1 * z.e_xhat));
        tdb = fmaxl(tdb, 2 * A * u * S1);
    }
    gen_tol(t, "dx", (double)tdx, (double)(2 * u));
    if (gamma) {
        gen_tol(t, "dgamma", (double)tdg, (double)(2 * u));
        gen_tol(t, "dbeta", (double)tdb, (double)(2 * u));
    }
}

/* ------------------------------------------------ Weight Normalization */

static ld wn_u(int fp32) { return fp32 ? 0x1p-24L : 0x1p-53L; }

/* ‖v_k‖ (exact to long double) and its relative error bound r_n. */
static ld wn_norm(const double *v, size_t k, size_t D, ld u, ld *r_n)
{
    ld ss = 0;
    for (size_t j = 0; j < D; j++)
        ss += (ld)v[k * D + j] * (ld)v[k * D + j];
    *r_n = ((ld)D + 8) * u / 2 + u;
    return sqrtl(ss);
}

void tol_wn_forward(gtest *t, int fp32, size_t K, size_t D, const double *v, const double *g)
{
    ld u = wn_u(fp32), rw = 0, rn = 0;
    (void)g;
    for (size_t k = 0; k < K; k++) {
        ld r_n;
        wn_norm(v, k, D, u, &r_n);
        rn = fmaxl(rn, 2 * r_n);
        rw = fmaxl(rw, 2 * (r_n + 2 * u));          /* g·v/‖v‖: two roundings more */
    }
    gen_tol(t, "w", 0, (double)rw);
    gen_tol(t, "vnorm", 0, (double)rn);
}

void tol_wn_backward(gtest *t, int fp32, size_t K, size_t D, const double *v, const double *g,
                     const double *dw)
{
    ld u = wn_u(fp32), tdv = 0, rdv = 0, tdg = 0, rdg = 0;
    for (size_t k = 0; k < K; k++) {
        ld r_n, n = wn_norm(v, k, D, u, &r_n), P = 0, proj = 0;
        for (size_t j = 0; j < D; j++) {
            P += fabsl((ld)dw[k * D + j] * (ld)v[k * D + j]);
            proj += (ld)dw[k * D + j] * (ld)v[k * D + j];
        }
        ld dg = fabsl(proj) / n, G = fabsl((ld)g[k]);
        ld e_dg = ((ld)D + 8) * u * P / n + dg * (r_n + u);
        for (size_t j = 0; j < D; j++) {
            ld vj = fabsl((ld)v[k * D + j]) / n;     /* |v_j|/‖v‖ */
            tdv = fmaxl(tdv, 2 * G / n *
                                 (e_dg * vj + 4 * u * (fabsl((ld)dw[k * D + j]) + dg * vj) +
                                  dg * vj * (r_n + 2 * u)));
        }
        rdv = fmaxl(rdv, 2 * (r_n + 3 * u));
        tdg = fmaxl(tdg, 2 * ((ld)D + 8) * u * P / n);
        rdg = fmaxl(rdg, 2 * (r_n + 2 * u));
    }
    gen_tol(t, "dv", (double)tdv, (double)rdv);
    gen_tol(t, "dg", (double)tdg, (double)rdg);
}

/* g = 1/sigma = s and b = -mu·s of each column: BN's statistics errors
 * (eps = 0) of the N pre-activations. */
void tol_wn_init(gtest *t, int fp32, size_t N, size_t K, const double *tv)
{
    ld u = wn_u(fp32), rg = 0, tb = 0, rb = 0;
    size_t *idx = gen_alloc(N, sizeof *idx);
    for (size_t k = 0; k < K; k++) {
        for (size_t n = 0; n < N; n++)
            idx[n] = n * K + k;
        gerr e = set_error(tv, idx, N, 0, u);
        rg = fmaxl(rg, 2 * e.r_s);
        tb = fmaxl(tb, 2 * e.e_mu * e.s);
        rb = fmaxl(rb, 2 * (e.r_s + u));
    }
    gen_tol(t, "g", 0, (double)rg);
    gen_tol(t, "b", (double)tb, (double)rb);
}
