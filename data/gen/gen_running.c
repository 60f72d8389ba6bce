/*
 * gen_running.c — running_stats.json: the statistics kept for inference,
 * after a sequence of K training batches, under each convention real
 * systems use (docs/conformance.md maps them to PyTorch, Keras, oneDNN and
 * cuDNN), and Algorithm 2's population estimate (paper, steps 9-10):
 *
 *   momentumNewUnbiased  r = (1-f)·r + f·b,  b = (mu_B, m'/(m'-1)·sigma2_B)   PyTorch, cuDNN
 *   momentumOldBiased    r = f·r + (1-f)·b,  b = (mu_B, sigma2_B)             Keras
 *   cumulativeUnbiased   as the first with f = 1/(n+1), n batches so far      PyTorch momentum=None
 *   populationAlgorithm2 E[x] = mean of mu_B, Var[x] = m'/(m'-1)·mean of sigma2_B
 */
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "recipes.h"

typedef enum { RULE_NEW, RULE_OLD, RULE_CUM, RULE_POP } rule;
static const char *rule_name[] = {"momentumNewUnbiased", "momentumOldBiased",
                                  "cumulativeUnbiased", "populationAlgorithm2"};

static ggroup *grp(gfile *f, int fp32, int layout, size_t N, size_t C, size_t H, size_t W,
                   rule ru, double momentum)
{
    gshape s = {fp32, layout, N, C, H, W, 1e-5, 0, 0, 0};
    char m[64];
    if (ru == RULE_NEW || ru == RULE_OLD)
        snprintf(m, sizeof m, "%.17g", momentum);
    else
        snprintf(m, sizeof m, "null");
    return gen_group(f, "BnRunningStats", s,
                     gen_fmt("      \"rule\": \"%s\",\n      \"momentum\": %s,\n", rule_name[ru], m));
}

typedef long double ld;

/* K batches through the rule, in binary128; the tolerance bound E follows
 * the same recursion (tol.c's forward errors for each batch's statistics,
 * plus 4u of the values each update combines). */
static void running_case(ggroup *g, gsl_rng *r, rule ru, double f, size_t K, recipe rc,
                         int default_init, size_t n0, const char *flag, const char *comment,
                         const char *error)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, m = shape_m(s);
    double *x = gen_dalloc(K * n), *rm0 = gen_dalloc(C), *rv0 = gen_dalloc(C);
    for (size_t k = 0; k < K; k++)
        make_x(r, s, rc, x + k * n);
    for (size_t c = 0; c < C; c++) {
        rm0[c] = default_init ? 0 : (double)rnd_int(r, -16, 16) / 8;
        rv0[c] = default_init ? 1 : (double)rnd_int(r, 8, 40) / 16;
    }
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    shape_flags(t, s);
    t->error = error;
    gen_in_rows(t, "batches", x, K, n);
    if (ru != RULE_POP) {
        gen_in(t, "runningMean", rm0, C);
        gen_in(t, "runningVar", rv0, C);
    }
    if (ru == RULE_CUM)
        gen_in_int(t, "numBatchesTracked", n0);
    if (error)
        return;

    ld u = unit_roundoff(s), tm = 0, tv = 0;
    quad bessel = m > 1 ? (quad)m / (quad)(m - 1) : 0;
    double *om = gen_dalloc(K * C), *ov = gen_dalloc(K * C);
    for (size_t c = 0; c < C; c++) {
        quad rmq = rm0[c], rvq = rv0[c], sum_mu = 0, sum_var = 0;
        ld Em = 0, Ev = 0, Pm = 0, Pv = 0, max_mu = 0, max_var = 0;
        for (size_t k = 0; k < K; k++) {
            quad mu, var;
            q_stats(s, x + k * n, c, &mu, &var);
            double e_mu, e_var;
            tol_batch_stats(s, x + k * n, c, &e_mu, &e_var);
            quad w = ru == RULE_CUM ? 1 / (quad)(n0 + k + 1) : (quad)f;   /* weight of the batch */
            quad bv = ru == RULE_OLD ? var : bessel * var;
            ld B = ru == RULE_OLD ? 1 : (ld)bessel;
            if (ru == RULE_OLD)
                w = 1 - w;
            ld lw = (ld)w;
            Em = (1 - lw) * Em + lw * e_mu + 4 * u * (fabsl((ld)rmq) + fabsl((ld)mu));
            Ev = (1 - lw) * Ev + lw * B * e_var + 4 * u * (fabsl((ld)rvq) + (ld)bv);
            rmq = (1 - w) * rmq + w * mu;
            rvq = (1 - w) * rvq + w * bv;
            om[k * C + c] = q_round(rmq);
            ov[k * C + c] = q_round(rvq);
            tm = fmaxl(tm, 2 * Em);
            tv = fmaxl(tv, 2 * Ev);
            sum_mu += mu;
            sum_var += var;
            Pm += e_mu / K;
            Pv += (ld)bessel * e_var / K;
            max_mu = fmaxl(max_mu, fabsl((ld)mu));
            max_var = fmaxl(max_var, (ld)var);
        }
        if (ru == RULE_POP) {
            om[c] = q_round(sum_mu / K);
            ov[c] = q_round(bessel * sum_var / K);
            /* the mean of K values: K + 4 roundings of the largest */
            tm = fmaxl(tm, 2 * (Pm + ((ld)K + 4) * u * max_mu));
            tv = fmaxl(tv, 2 * (Pv + ((ld)K + 4) * u * (ld)bessel * max_var));
        }
    }
    if (ru == RULE_POP) {
        gen_out(t, "populationMean", om, C);
        gen_out(t, "populationVarUnbiased", ov, C);
        gen_tol(t, "populationMean", (double)tm, (double)(2 * u));
        gen_tol(t, "populationVarUnbiased", (double)tv, (double)(2 * u));
        return;
    }
    gen_out_rows(t, "runningMean", om, K, C);
    gen_out_rows(t, "runningVar", ov, K, C);
    if (ru == RULE_CUM)
        gen_out_int(t, "numBatchesTracked", n0 + K);
    gen_tol(t, "runningMean", (double)tm, (double)(2 * u));
    gen_tol(t, "runningVar", (double)tv, (double)(2 * u));
}

static void groups(gfile *f, gsl_rng *r, int fp32)
{
#define G(l, N, C, H, W, ru, mom) grp(f, fp32, LAYOUT_##l, N, C, H, W, ru, mom)
#define T(ru, mom, K, rc, dflt, n0, flag, comment) \
    running_case(g, r, ru, mom, K, rc, dflt, n0, flag, comment, NULL)
    ggroup *g = G(NCHW, 4, 3, 1, 1, RULE_NEW, 0.1);
    T(RULE_NEW, 0.1, 3, R_TYPICAL, 1, 0, "FrameworkDefault",
      "PyTorch defaults: momentum 0.1 on the new batch, running (0, 1), unbiased variance stored");
    T(RULE_NEW, 0.1, 3, R_TYPICAL, 0, 0, "Typical", "momentum 0.1 on the new batch from random running statistics");
    g = G(NHWC, 4, 3, 2, 2, RULE_NEW, 0.5);
    T(RULE_NEW, 0.5, 3, R_TYPICAL, 0, 0, "Typical", "momentum 0.5, spatial NHWC: statistics over N*H*W = 16 values");
    g = G(NCHW, 4, 3, 1, 1, RULE_NEW, 0);
    T(RULE_NEW, 0, 2, R_TYPICAL, 0, 0, "MomentumZero", "momentum 0 on the new batch: the running statistics stay as they were");
    g = G(NCHW, 4, 3, 1, 1, RULE_NEW, 1);
    T(RULE_NEW, 1, 2, R_TYPICAL, 0, 0, "MomentumOne",
      "momentum 1 on the new batch: running = the last batch's mean and unbiased variance (factor 4/3)");

    g = G(NCHW, 4, 3, 1, 1, RULE_OLD, 0.99);
    T(RULE_OLD, 0.99, 3, R_TYPICAL, 1, 0, "FrameworkDefault",
      "Keras defaults: momentum 0.99 on the old value, running (0, 1), biased variance stored");
    T(RULE_OLD, 0.99, 3, R_TYPICAL, 0, 0, "Typical", "momentum 0.99 on the old value from random running statistics");
    g = G(NHWC, 2, 3, 2, 3, RULE_OLD, 0.9);
    T(RULE_OLD, 0.9, 3, R_TYPICAL, 0, 0, "Typical", "momentum 0.9 on the old value, spatial NHWC");
    g = G(NCHW, 4, 3, 1, 1, RULE_OLD, 0);
    T(RULE_OLD, 0, 2, R_TYPICAL, 0, 0, "MomentumZero", "momentum 0 on the old value: running = the last batch's biased statistics");
    g = G(NCHW, 4, 3, 1, 1, RULE_OLD, 1);
    T(RULE_OLD, 1, 2, R_TYPICAL, 0, 0, "MomentumOne", "momentum 1 on the old value: the running statistics stay as they were");

    g = G(NCHW, 4, 3, 1, 1, RULE_CUM, 0);
    T(RULE_CUM, 0, 3, R_TYPICAL, 1, 0, "Typical",
      "cumulative average from numBatchesTracked = 0: batch k gets weight 1/k, the initial values are forgotten");
    T(RULE_CUM, 0, 4, R_TYPICAL, 0, 0, "Typical", "cumulative average of 4 batches equals their plain average");
    g = G(NCHW, 2, 3, 2, 2, RULE_CUM, 0);
    T(RULE_CUM, 0, 3, R_TYPICAL, 0, 5, "ContinuedCumulative",
      "cumulative average resumed after 5 batches: weights 1/6, 1/7, 1/8");

    g = G(NCHW, 4, 3, 1, 1, RULE_POP, 0);
    T(RULE_POP, 0, 1, R_TYPICAL, 0, 0, "Typical", "Algorithm 2 from one batch: E[x] = mu_B, Var[x] = m'/(m'-1)*sigma2_B");
    T(RULE_POP, 0, 3, R_TYPICAL, 0, 0, "Typical", "Algorithm 2 from 3 batches: the unbiased variance is m'/(m'-1) times the mean biased variance");
    g = G(NHWC, 2, 3, 2, 2, RULE_POP, 0);
    T(RULE_POP, 0, 4, R_TYPICAL, 0, 0, "Typical", "Algorithm 2, spatial NHWC: m' = N*H*W = 8 in the Bessel factor, not N");

    /* adversarial data under every rule */
    static const rule all[] = {RULE_NEW, RULE_OLD, RULE_CUM, RULE_POP};
    static const double mom[] = {0.1, 0.99, 0, 0};
    for (int k = 0; k < 4; k++) {
        g = G(NCHW, 8, 2, 1, 1, all[k], mom[k]);
        T(all[k], mom[k], 3, R_LARGE_OFFSET, 0, 0, "LargeOffset",
          gen_fmt("%s: %s; the running mean sits near 1e7 (fp64) or 1e4 (fp32)", rule_name[all[k]],
                  fp32 ? "1e4 +- 0.6" : "1e7 +- 0.1"));
        g = G(NCHW, 2, 3, 1, 1, all[k], mom[k]);
        T(all[k], mom[k], 3, R_TYPICAL, 0, 0, "Typical",
          gen_fmt("%s with m' = 2: the Bessel factor is 2", rule_name[all[k]]));
    }
    g = G(NHWC, 1, 2, 3, 3, RULE_NEW, 0.1);
    T(RULE_NEW, 0.1, 3, R_TYPICAL, 0, 0, "Typical", "momentumNewUnbiased with N = 1: m' = H*W = 9 in the Bessel factor");
    g = G(NHWC, 1, 2, 3, 3, RULE_POP, 0);
    T(RULE_POP, 0, 3, R_TYPICAL, 0, 0, "Typical", "populationAlgorithm2 with N = 1: m' = H*W = 9 in the Bessel factor");
#undef G
#undef T
}

static void invalid_groups(gfile *f, gsl_rng *r)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, fp32, LAYOUT_NCHW, 4, 2, 1, 1, RULE_NEW, fp32 ? 1.5 : -0.1);
        running_case(g, r, RULE_NEW, 0, 2, R_TYPICAL, 0, 0, "MomentumOutOfRange",
                     fp32 ? "momentum 1.5: outside [0, 1]" : "momentum -0.1: outside [0, 1]", "BN_EINVAL");
        g = grp(f, fp32, LAYOUT_NCHW, 4, 2, 1, 1, RULE_OLD, fp32 ? -0.5 : 1.01);
        running_case(g, r, RULE_OLD, 0, 2, R_TYPICAL, 0, 0, "MomentumOutOfRange",
                     fp32 ? "momentum -0.5: outside [0, 1]" : "momentum 1.01: outside [0, 1]", "BN_EINVAL");
        static const rule all[] = {RULE_NEW, RULE_OLD, RULE_CUM, RULE_POP};
        for (int k = 0; k < 4; k++) {
            if (fp32 && k % 2)
                continue;
            g = grp(f, fp32, LAYOUT_NCHW, 1, 2, 1, 1, all[k], k < 2 ? 0.1 : 0);
            running_case(g, r, all[k], 0, 2, R_TYPICAL, 0, 0, "SingleValuePerChannel",
                         gen_fmt("%s with m' = 1: a training batch needs 2 values per channel "
                                 "(and m'/(m'-1) divides by 0)", rule_name[all[k]]),
                         "BN_ESINGLE");
        }
    }
}

static const char *header[] = {
    "Running (population) statistics of batch normalization after K training batches (Ioffe & Szegedy 2015, Algorithm 2).",
    "Each batch b = inputs.batches[k] (N*C*H*W values in the group's layout) gives per channel its mean mu_B and biased variance",
    "sigma2_B over m' = N*H*W values; the group's rule combines them (momentum f, null where unused):",
    "momentumNewUnbiased (PyTorch, cuDNN): r = (1-f)*r + f*b with b = (mu_B, m'/(m'-1)*sigma2_B);",
    "momentumOldBiased (Keras): r = f*r + (1-f)*b with b = (mu_B, sigma2_B);",
    "cumulativeUnbiased (PyTorch momentum=None, cuDNN factor 1/(1+n)): as momentumNewUnbiased with f = 1/(numBatchesTracked + 1), then numBatchesTracked += 1;",
    "populationAlgorithm2: populationMean = mean of mu_B, populationVarUnbiased = m'/(m'-1) * mean of sigma2_B.",
    "expected.runningMean[k] and expected.runningVar[k] are the values after batch k. The forward outputs (eps) do not enter.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_running(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1501);
    f->file = "running_stats.json";
    f->schema = "running_stats_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++)
        groups(f, r, fp32);
    invalid_groups(f, r);
    gsl_rng_free(r);
}
