/*
 * gen_precise.c — precise.json: PreciseBN (Wu & Johnson 2021), Algorithm 2's
 * population statistics computed over a list of batches with the model
 * frozen, every batch weighted equally (Ioffe & Szegedy 2015, Algorithm 2,
 * steps 9-10):
 *
 *   E[x] = (1/K) Σ_k mu_k,   Var[x] = m'/(m'-1) · (1/K) Σ_k sigma2_k
 *
 * with mu_k, sigma2_k batch k's mean and biased variance over m' = N·H·W
 * values per channel. In fp64 and fp32 groups, one to sixteen batches,
 * drifting batches, and the inputs bnlab rejects. Expected values:
 * binary128.
 */
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "recipes.h"

typedef long double ld;

/* drift: batch k's data shifted by k/2 (every channel). */
static void precise_case(ggroup *g, gsl_rng *r, size_t K, recipe rc, int drift, int nan,
                         const char *flag, const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, m = shape_m(s);
    double *x = gen_dalloc(K * n);
    for (size_t k = 0; k < K; k++) {
        make_x(r, s, rc, x + k * n);
        for (size_t j = 0; drift && j < n; j++)
            x[k * n + j] += (double)k / 2;
    }
    if (nan)
        x[(K - 1) * n + n / 2] = NAN;
    check_exact(s, x, K * n, "batches");
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    if (!error)
        shape_flags(t, s);
    t->error = error;
    gen_in_rows(t, "batches", x, K, n);
    if (error)
        return;
    /* the mean of K values: K + 4 roundings of the largest, plus each
     * batch's statistics' own errors (tol.c) */
    ld u = unit_roundoff(s), tm = 0, tv = 0;
    quad bessel = (quad)m / (quad)(m - 1);
    double *pm = gen_dalloc(C), *pv = gen_dalloc(C);
    size_t *idx = gen_alloc(m, sizeof *idx);
    for (size_t c = 0; c < C; c++) {
        quad sum_mu = 0, sum_var = 0;
        ld Pm = 0, Pv = 0, max_mu = 0, max_var = 0;
        for (size_t k = 0; k < K; k++) {
            for (size_t i = 0; i < m; i++)
                idx[i] = k * n + shape_index(s, c, i);
            quad mu, var;
            q_stats_idx(x, idx, m, &mu, &var);
            gerr e = set_error(x, idx, m, s->eps, u);
            sum_mu += mu;
            sum_var += var;
            Pm += e.e_mu / K;
            Pv += (ld)bessel * (e.atol_var + e.rtol_var * e.sigma2) / K;
            max_mu = fmaxl(max_mu, fabsl((ld)mu));
            max_var = fmaxl(max_var, (ld)var);
        }
        pm[c] = q_round(sum_mu / K);
        pv[c] = q_round(bessel * sum_var / K);
        tm = fmaxl(tm, 2 * (Pm + ((ld)K + 4) * u * max_mu));
        tv = fmaxl(tv, 2 * (Pv + ((ld)K + 4) * u * (ld)bessel * max_var));
    }
    gen_out(t, "populationMean", pm, C);
    gen_out(t, "populationVarUnbiased", pv, C);
    gen_tol(t, "populationMean", (double)tm, (double)(2 * u));
    gen_tol(t, "populationVarUnbiased", (double)tv, (double)(2 * u));
}

static ggroup *grp(gfile *f, int fp32, int layout, size_t N, size_t C, size_t H, size_t W)
{
    gshape s = {fp32, layout, N, C, H, W, 1e-5, 0, 0, 0};
    return gen_group(f, "PreciseBnPopulation", s, NULL);
}

static void groups(gfile *f, gsl_rng *r, int fp32)
{
#define T(K, rc, drift, flag, comment) precise_case(g, r, K, rc, drift, 0, flag, NULL, comment)
    ggroup *g = grp(f, fp32, LAYOUT_NCHW, 4, 3, 1, 1);
    T(1, R_TYPICAL, 0, "Typical", "one batch: E[x] = its mean, Var[x] = m'/(m'-1) times its biased variance (m' = 4)");
    T(4, R_TYPICAL, 0, "Typical", "4 batches of (N, D) data: plain averages of their statistics, Bessel factor 4/3");
    T(16, R_TYPICAL, 0, "ManyBatches", "16 batches, each weighted 1/16");
    T(5, R_TYPICAL, 1, "Drift", "5 batches drifting by 1/2 each: the population mean is the plain average, not the last batches'");
    g = grp(f, fp32, LAYOUT_NHWC, 2, 3, 2, 2);
    T(4, R_TYPICAL, 0, "Typical", "spatial NHWC: statistics over m' = N*H*W = 8 values, Bessel factor 8/7");
    g = grp(f, fp32, LAYOUT_NCHW, 1, 2, 3, 3);
    T(3, R_TYPICAL, 0, "Typical", "N = 1: m' = H*W = 9 in the Bessel factor, not N");
    g = grp(f, fp32, LAYOUT_NCHW, 2, 3, 1, 1);
    T(3, R_TYPICAL, 0, "Typical", "m' = 2: the Bessel factor is 2");
    g = grp(f, fp32, LAYOUT_NCHW, 8, 2, 1, 1);
    T(3, R_LARGE_OFFSET, 0, "LargeOffset",
      fp32 ? "1e4 +- 0.6 in fp32: each batch's variance needs a two-pass or Welford computation"
           : "1e7 +- 0.1: each batch's variance needs a two-pass or Welford computation");
#undef T
}

static void invalid_groups(gfile *f, gsl_rng *r)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, fp32, LAYOUT_NCHW, 1, 3, 1, 1);
        precise_case(g, r, 2, R_TYPICAL, 0, 0, "SingleValuePerChannel", "BN_ESINGLE",
                     "batches of m' = 1 value per channel: no variance to estimate (m'/(m'-1) divides by 0)");
        g = grp(f, fp32, LAYOUT_NCHW, 4, 2, 1, 1);
        precise_case(g, r, 3, R_TYPICAL, 0, 1, "NaNInput", "BN_EDOM",
                     "a NaN in the last batch: report it, do not return NaN statistics");
    }
}

static const char *header[] = {
    "PreciseBN (Wu & Johnson 2021): population statistics of batch normalization (Ioffe & Szegedy 2015, Algorithm 2, steps 9-10)",
    "over the K batches b = inputs.batches[k], each N*C*H*W values in the group's layout, every batch weighted equally.",
    "Per channel, with mu_k and sigma2_k batch k's mean and biased variance over m' = N*H*W values:",
    "populationMean = (1/K) sum mu_k, populationVarUnbiased = m'/(m'-1) * (1/K) sum sigma2_k. eps and affine do not enter.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_precise(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 2001);
    f->algorithm = "PreciseBN";
    f->file = "precise.json";
    f->schema = "precise_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++)
        groups(f, r, fp32);
    invalid_groups(f, r);
    gsl_rng_free(r);
}
