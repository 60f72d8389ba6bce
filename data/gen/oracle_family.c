/*
 * oracle_family.c — the binary128 expected values of the normalization
 * family's vectors (docs/normalizations.md has the formulas):
 *
 *   GroupNorm / LayerNorm / InstanceNorm and Ghost BN: the formulas of
 *     Algorithm 1 over other sets of values (gpart): per set S,
 *     mu_S, sigma2_S (biased), xhat = (x - mu_S)/sqrt(sigma2_S + eps),
 *     y = gamma_c·xhat + beta_c; backward in closed form per set,
 *     dx = s·(g - mean_S(g) - xhat·mean_S(g·xhat)) with g = dy·gamma_c.
 *   Batch Renormalization (Ioffe 2017): r = clip(sigma_B/sigma, 1/rmax, rmax),
 *     d = clip((mu_B - mu)/sigma, -dmax, dmax), xhat = x0·r + d, r and d
 *     constants in the backward: BN's closed form with g = dy·gamma·r.
 *   Weight Normalization (Salimans & Kingma 2016): w = g·v/‖v‖,
 *     dl/dg = dl/dw·v/‖v‖, dl/dv = g/‖v‖·(dl/dw - dl/dg·v/‖v‖);
 *     init g = 1/sigma[t], b = -mu[t]/sigma[t].
 *
 * As in oracle.c: the inputs are short dyadic numbers, so the sums are
 * exact in __float128 and every other step is one binary128 rounding; each
 * result is rounded once to binary64. Nothing here calls bnlab.
 */
#include <quadmath.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen.h"

/* ------------------------------------------------------------ partitions */

static gpart part_new(size_t nsets, size_t m)
{
    gpart p = {nsets, m, gen_alloc(nsets * m, sizeof(size_t)), gen_alloc(nsets * m, sizeof(size_t))};
    return p;
}

gpart part_channels(const gshape *s)
{
    gpart p = part_new(s->C, shape_m(s));
    for (size_t c = 0; c < s->C; c++)
        for (size_t i = 0; i < p.m; i++) {
            p.idx[c * p.m + i] = shape_index(s, c, i);
            p.chan[c * p.m + i] = c;
        }
    return p;
}

/* GN: set (n, g) holds channels g·C/G .. (g+1)·C/G - 1 of example n, all
 * their pixels, channel by channel. */
gpart part_groups(const gshape *s, size_t G)
{
    size_t HW = s->H * s->W, cpg = s->C / G;
    gpart p = part_new(s->N * G, cpg * HW);
    for (size_t n = 0; n < s->N; n++)
        for (size_t g = 0; g < G; g++) {
            size_t k = n * G + g, j = 0;
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++)
                for (size_t i = 0; i < HW; i++, j++) {
                    p.idx[k * p.m + j] = shape_index(s, c, n * HW + i);
                    p.chan[k * p.m + j] = c;
                }
        }
    return p;
}

/* Ghost BN: set (k, c) holds channel c of examples k·V .. k·V + V - 1. */
gpart part_ghost(const gshape *s, size_t V)
{
    size_t HW = s->H * s->W, K = s->N / V;
    gpart p = part_new(K * s->C, V * HW);
    for (size_t k = 0; k < K; k++)
        for (size_t c = 0; c < s->C; c++)
            for (size_t i = 0; i < V * HW; i++) {
                p.idx[(k * s->C + c) * p.m + i] = shape_index(s, c, k * V * HW + i);
                p.chan[(k * s->C + c) * p.m + i] = c;
            }
    return p;
}

static quad *qalloc(size_t n)
{
    quad *q = calloc(n ? n : 1, sizeof *q);
    if (!q) {
        fprintf(stderr, "gen_vectors: out of memory\n");
        exit(1);
    }
    return q;
}

/* ------------------------------------------------ normalization over sets */

void q_norm_forward(const gshape *s, const gpart *p, const double *x, const double *gamma,
                    const double *beta, double *y, double *mean, double *var, double *invstd)
{
    for (size_t k = 0; k < p->nsets; k++) {
        const size_t *idx = p->idx + k * p->m, *chan = p->chan + k * p->m;
        quad mu, v;
        q_stats_idx(x, idx, p->m, &mu, &v);
        quad is = q_invstd(v, s->eps);
        for (size_t j = 0; j < p->m; j++) {
            quad g = gamma ? gamma[chan[j]] : 1, b = beta ? beta[chan[j]] : 0;
            y[idx[j]] = q_round(g * ((x[idx[j]] - mu) * is) + b);
        }
        mean[k] = q_round(mu);
        var[k] = q_round(v);
        invstd[k] = q_round(is);
    }
}

void q_norm_backward(const gshape *s, const gpart *p, const double *x, const double *dy,
                     const double *gamma, double *dx, double *dgamma, double *dbeta)
{
    quad *xhat = qalloc(p->m), *g = qalloc(p->m);
    quad *sum_dy = qalloc(s->C), *sum_dy_xhat = qalloc(s->C);
    for (size_t k = 0; k < p->nsets; k++) {
        const size_t *idx = p->idx + k * p->m, *chan = p->chan + k * p->m;
        quad mu, v, sum_g = 0, sum_g_xhat = 0;
        q_stats_idx(x, idx, p->m, &mu, &v);
        quad is = q_invstd(v, s->eps);
        for (size_t j = 0; j < p->m; j++) {
            xhat[j] = (x[idx[j]] - mu) * is;
            g[j] = dy[idx[j]] * (quad)(gamma ? gamma[chan[j]] : 1);   /* dl/dxhat */
            sum_g += g[j];
            sum_g_xhat += g[j] * xhat[j];
            sum_dy[chan[j]] += dy[idx[j]];
            sum_dy_xhat[chan[j]] += dy[idx[j]] * xhat[j];
        }
        quad mean_g = sum_g / p->m, mean_g_xhat = sum_g_xhat / p->m;
        for (size_t j = 0; j < p->m; j++)
            dx[idx[j]] = q_round(is * (g[j] - mean_g - xhat[j] * mean_g_xhat));
    }
    for (size_t c = 0; gamma && c < s->C; c++) {
        dgamma[c] = q_round(sum_dy_xhat[c]);
        dbeta[c] = q_round(sum_dy[c]);
    }
    free(xhat), free(g), free(sum_dy), free(sum_dy_xhat);
}

/* ------------------------------------------------ Batch Renormalization */

static quad clipq(quad v, quad lo, quad hi) { return v < lo ? lo : v > hi ? hi : v; }

void q_renorm_rd(const gshape *s, const grenorm *b, const double *x, size_t c, quad *r,
                 quad *d)
{
    quad mu, v;
    q_stats(s, x, c, &mu, &v);
    quad sigma_B = sqrtq(v + s->eps);
    *r = clipq(sigma_B / b->msd[c], 1 / (quad)b->rmax, b->rmax);
    *d = clipq((mu - b->mm[c]) / b->msd[c], -(quad)b->dmax, b->dmax);
}

void q_renorm_forward(const gshape *s, const grenorm *b, const double *x, const double *gamma,
                      const double *beta, double *y, double *mean, double *var,
                      double *invstd, double *r, double *d)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        quad mu, v, rq, dq;
        q_stats(s, x, c, &mu, &v);
        q_renorm_rd(s, b, x, c, &rq, &dq);
        quad is = q_invstd(v, s->eps);
        quad g = gamma ? gamma[c] : 1, bb = beta ? beta[c] : 0;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            y[k] = q_round(g * ((x[k] - mu) * is * rq + dq) + bb);
        }
        mean[c] = q_round(mu);
        var[c] = q_round(v);
        invstd[c] = q_round(is);
        r[c] = q_round(rq);
        d[c] = q_round(dq);
    }
}

void q_renorm_backward(const gshape *s, const grenorm *b, const double *x, const double *dy,
                       const double *gamma, double *dx, double *dgamma, double *dbeta)
{
    size_t m = shape_m(s);
    quad *x0 = qalloc(m), *g = qalloc(m);
    for (size_t c = 0; c < s->C; c++) {
        quad mu, v, rq, dq, sum_g = 0, sum_g_x0 = 0, sum_dy = 0, sum_dy_xhat = 0;
        q_stats(s, x, c, &mu, &v);
        q_renorm_rd(s, b, x, c, &rq, &dq);
        quad is = q_invstd(v, s->eps), ga = gamma ? gamma[c] : 1;
        for (size_t i = 0; i < m; i++) {
            size_t k = shape_index(s, c, i);
            x0[i] = (x[k] - mu) * is;
            g[i] = dy[k] * ga * rq;                  /* r is a constant: dl/dx0 */
            sum_g += g[i];
            sum_g_x0 += g[i] * x0[i];
            sum_dy += dy[k];
            sum_dy_xhat += dy[k] * (x0[i] * rq + dq);
        }
        quad mean_g = sum_g / m, mean_g_x0 = sum_g_x0 / m;
        for (size_t i = 0; i < m; i++)
            dx[shape_index(s, c, i)] = q_round(is * (g[i] - mean_g - x0[i] * mean_g_x0));
        if (gamma) {
            dgamma[c] = q_round(sum_dy_xhat);
            dbeta[c] = q_round(sum_dy);
        }
    }
    free(x0), free(g);
}

/* ------------------------------------------------ Weight Normalization */

static quad row_norm(const double *v, size_t k, size_t D)
{
    quad ss = 0;
    for (size_t j = 0; j < D; j++)
        ss += (quad)v[k * D + j] * v[k * D + j];
    return sqrtq(ss);
}

void q_wn_forward(size_t K, size_t D, const double *v, const double *g, double *w,
                  double *vnorm)
{
    for (size_t k = 0; k < K; k++) {
        quad n = row_norm(v, k, D);
        for (size_t j = 0; j < D; j++)
            w[k * D + j] = q_round(g[k] * (v[k * D + j] / n));
        vnorm[k] = q_round(n);
    }
}

void q_wn_backward(size_t K, size_t D, const double *v, const double *g, const double *dw,
                   double *dv, double *dg)
{
    for (size_t k = 0; k < K; k++) {
        quad n = row_norm(v, k, D), proj = 0;
        for (size_t j = 0; j < D; j++)
            proj += (quad)dw[k * D + j] * v[k * D + j];
        quad dgq = proj / n;                         /* dl/dw · v/‖v‖ */
        for (size_t j = 0; j < D; j++)
            dv[k * D + j] = q_round(g[k] / n * (dw[k * D + j] - dgq * v[k * D + j] / n));
        dg[k] = q_round(dgq);
    }
}

void q_wn_init(size_t N, size_t K, const double *t, double *g, double *b)
{
    size_t *idx = gen_alloc(N, sizeof *idx);
    for (size_t k = 0; k < K; k++) {
        for (size_t n = 0; n < N; n++)
            idx[n] = n * K + k;                      /* column k of the N × K pre-activations */
        quad mu, var;
        q_stats_idx(t, idx, N, &mu, &var);
        quad sigma = sqrtq(var);
        g[k] = q_round(1 / sigma);
        b[k] = q_round(-mu / sigma);
    }
}
