/*
 * gen_ghost.c — ghost.json: Ghost Batch Normalization. The N examples of a
 * batch are split into N/V virtual batches of V consecutive examples; each is
 * batch-normalized with its own statistics (Algorithm 1 over V·H·W values
 * per channel: part_ghost), gamma and beta shared (their gradients add up
 * over the virtual batches). Running statistics: one update per virtual
 * batch, in order, as if each were a mini-batch of its own. Forward,
 * backward and running statistics in fp64 and fp32 groups, and the inputs
 * bnlab rejects. Expected values: binary128 (oracle_family.c).
 */
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "recipes.h"

/* Each virtual batch shifted by its own offset: statistics shared across
 * virtual batches are then far from each one's own. */
static void shift_virtual_batches(gsl_rng *r, const gshape *s, size_t V, double *x)
{
    size_t block = V * s->C * s->H * s->W;
    for (size_t k = 0; k < s->N / V; k++) {
        double off = (double)rnd_int(r, -16, 16) / 2;
        for (size_t j = 0; j < block; j++)
            x[k * block + j] += off;
    }
    check_exact(s, x, shape_count(s), "x");
}

static void ghost_flags(gtest *t, const gshape *s, size_t V)
{
    if (V == s->N)
        gen_flag(t, "OneVirtualBatch");
    if (V == 1)
        gen_flag(t, "OneExamplePerVirtualBatch");
    if (V * s->H * s->W == 2)
        gen_flag(t, "TwoValuesPerVirtualBatch");
    if (shape_odd(s))
        gen_flag(t, "OddSizes");
}

/* rc = -1: typical data with shifted virtual batches. */
static void ghost_case(ggroup *g, gsl_rng *r, int bw, size_t V, int rc)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, K = s->N / V;
    gpart p = part_ghost(s, V);
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    make_x(r, s, rc < 0 ? R_TYPICAL : (recipe)rc, x);
    if (rc < 0)
        shift_virtual_batches(r, s, V, x);
    make_params(r, s, rc < 0 ? R_TYPICAL : (recipe)rc, gamma, beta);
    const double *Ga = s->affine ? gamma : NULL, *Be = s->affine ? beta : NULL;
    gtest *t = gen_test(g, rc < 0 ? "the virtual batches have different means: each must be normalized with its own statistics"
                                  : recipe_comment((recipe)rc, s));
    gen_flag(t, rc < 0 ? "VirtualBatchShift" : recipe_flag((recipe)rc, s));
    ghost_flags(t, s, V);
    gen_in(t, "x", x, n);
    double *dy = NULL;
    if (bw) {
        dy = gen_dalloc(n);
        make_dy(r, s, DY_RANDOM, x, dy);
        gen_in(t, "dy", dy, n);
    }
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
    if (!bw) {
        double *y = gen_dalloc(n), *mean = gen_dalloc(K * C), *var = gen_dalloc(K * C),
               *inv = gen_dalloc(K * C);
        q_norm_forward(s, &p, x, Ga, Be, y, mean, var, inv);
        gen_out(t, "y", y, n);
        gen_out_rows(t, "mean", mean, K, C);
        gen_out_rows(t, "varBiased", var, K, C);
        gen_out_rows(t, "invstd", inv, K, C);
        tol_norm_forward(t, s, &p, x, Ga, Be);
        return;
    }
    double *dx = gen_dalloc(n), *dg = gen_dalloc(C), *db = gen_dalloc(C);
    q_norm_backward(s, &p, x, dy, Ga, dx, dg, db);
    gen_out(t, "dx", dx, n);
    if (s->affine) {
        gen_out(t, "dgamma", dg, C);
        gen_out(t, "dbeta", db, C);
    }
    tol_norm_backward(t, s, &p, x, dy, Ga);
}

/* ------------------------------------------------ running statistics */

typedef enum { RULE_NEW, RULE_OLD, RULE_CUM } rule;
static const char *rule_name[] = {"momentumNewUnbiased", "momentumOldBiased", "cumulativeUnbiased"};

typedef long double ld;

/* One update per virtual batch, in order; the tolerance follows the
 * recursion of gen_running.c. */
static void running_case(ggroup *g, gsl_rng *r, size_t V, rule ru, double f, size_t n0,
                         int shift, const char *flag, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, K = s->N / V;
    gpart p = part_ghost(s, V);
    double *x = gen_dalloc(n), *rm = gen_dalloc(C), *rv = gen_dalloc(C);
    make_x(r, s, R_TYPICAL, x);
    if (shift)
        shift_virtual_batches(r, s, V, x);
    for (size_t c = 0; c < C; c++) {
        rm[c] = (double)rnd_int(r, -16, 16) / 8;
        rv[c] = (double)rnd_int(r, 8, 40) / 16;
    }
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    if (shift)
        gen_flag(t, "VirtualBatchShift");
    ghost_flags(t, s, V);
    gen_in(t, "x", x, n);
    gen_in(t, "runningMean", rm, C);
    gen_in(t, "runningVar", rv, C);
    if (ru == RULE_CUM)
        gen_in_int(t, "numBatchesTracked", n0);
    ld u = unit_roundoff(s), tm = 0, tv = 0;
    quad bessel = (quad)p.m / (quad)(p.m - 1);
    double *om = gen_dalloc(C), *ov = gen_dalloc(C);
    for (size_t c = 0; c < C; c++) {
        quad rmq = rm[c], rvq = rv[c];
        ld Em = 0, Ev = 0;
        for (size_t k = 0; k < K; k++) {
            const size_t *idx = p.idx + (k * C + c) * p.m;
            quad mu, var;
            q_stats_idx(x, idx, p.m, &mu, &var);
            gerr e = set_error(x, idx, p.m, s->eps, u);
            ld e_var = e.atol_var + e.rtol_var * e.sigma2;
            quad w = ru == RULE_CUM ? 1 / (quad)(n0 + k + 1) : ru == RULE_OLD ? 1 - (quad)f : (quad)f;
            quad bv = ru == RULE_OLD ? var : bessel * var;
            ld B = ru == RULE_OLD ? 1 : (ld)bessel, lw = (ld)w;
            Em = (1 - lw) * Em + lw * e.e_mu + 4 * u * (fabsl((ld)rmq) + fabsl((ld)mu));
            Ev = (1 - lw) * Ev + lw * B * e_var + 4 * u * (fabsl((ld)rvq) + (ld)bv);
            rmq = (1 - w) * rmq + w * mu;
            rvq = (1 - w) * rvq + w * bv;
        }
        om[c] = q_round(rmq);
        ov[c] = q_round(rvq);
        tm = fmaxl(tm, 2 * Em);
        tv = fmaxl(tv, 2 * Ev);
    }
    gen_out(t, "runningMean", om, C);
    gen_out(t, "runningVar", ov, C);
    if (ru == RULE_CUM)
        gen_out_int(t, "numBatchesTracked", n0 + K);
    gen_tol(t, "runningMean", (double)tm, (double)(2 * u));
    gen_tol(t, "runningVar", (double)tv, (double)(2 * u));
}

/* ------------------------------------------------ invalid inputs */

static void invalid_case(ggroup *g, gsl_rng *r, int bw, int nan, const char *flag,
                         const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C), *dy = gen_dalloc(n);
    make_x(r, s, R_TYPICAL, x);
    make_params(r, s, R_TYPICAL, gamma, beta);
    make_dy(r, s, DY_RANDOM, x, dy);
    if (nan)
        x[n / 2] = NAN;
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    t->error = error;
    gen_in(t, "x", x, n);
    if (bw)
        gen_in(t, "dy", dy, n);
    gen_in(t, "gamma", gamma, C);
    gen_in(t, "beta", beta, C);
}

/* ------------------------------------------------ the groups */

static ggroup *grp(gfile *f, const char *type, int fp32, int layout, size_t N, size_t C,
                   size_t H, size_t W, double eps, int affine, size_t V, const char *more)
{
    gshape s = {fp32, layout, N, C, H, W, eps, affine, 0, 0};
    return gen_group(f, type, s, gen_fmt("      \"virtualBatchSize\": %zu,\n%s", V, more ? more : ""));
}

static void train_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
    const char *type = bw ? "GhostBackwardTrain" : "GhostForwardTrain";
    size_t V = 1;
#define G(l, N, C, H, W, eps, aff, v) (V = (v), grp(f, type, fp32, LAYOUT_##l, N, C, H, W, eps, aff, v, NULL))
#define T(rc) ghost_case(g, r, bw, V, rc)
    ggroup *g = G(NCHW, 8, 3, 1, 1, 1e-5, 1, 2);         /* (N, D): 4 virtual batches of 2 */
    T(R_TYPICAL), T(-1);
    g = G(NCHW, 8, 3, 1, 1, 1e-5, 1, 4);
    T(R_TYPICAL), T(-1), T(R_LARGE_OFFSET), T(R_NEG_GAMMA);
    g = G(NCHW, 8, 3, 1, 1, 1e-5, 1, 8);                 /* one virtual batch: BN */
    T(R_TYPICAL);
    g = G(NCHW, 6, 3, 2, 2, 1e-5, 1, 3);                 /* spatial */
    T(R_TYPICAL), T(-1);
    g = G(NHWC, 6, 3, 2, 2, 1e-5, 1, 3);
    T(-1);
    g = G(NHWC, 4, 2, 2, 3, 1e-5, 1, 1);                 /* each example alone */
    T(R_TYPICAL);
    g = G(NCHW, 4, 3, 2, 2, 1e-3, 0, 2);                 /* no affine parameters */
    T(-1);
#undef G
#undef T
}

static void running_groups(gfile *f, gsl_rng *r, int fp32)
{
#define G(l, N, C, H, W, V, ru, mom) \
    grp(f, "GhostRunningStats", fp32, LAYOUT_##l, N, C, H, W, 1e-5, 0, V, \
        gen_fmt("      \"rule\": \"%s\",\n      \"momentum\": %s,\n", rule_name[ru], \
                ru == RULE_CUM ? "null" : gen_fmt("%.17g", (double)(mom))))
    ggroup *g = G(NCHW, 8, 3, 1, 1, 4, RULE_NEW, 0.1);
    running_case(g, r, 4, RULE_NEW, 0.1, 0, 0, "FrameworkDefault",
                 "momentum 0.1 on the new batch, once per virtual batch: 2 updates with the unbiased variance of 4 values");
    g = G(NCHW, 6, 2, 2, 2, 2, RULE_OLD, 0.9);
    running_case(g, r, 2, RULE_OLD, 0.9, 0, 1, "Typical",
                 "momentum 0.9 on the old value, 3 virtual batches in order, biased variance of V*H*W = 8 values");
    g = G(NHWC, 8, 2, 1, 1, 2, RULE_CUM, 0);
    running_case(g, r, 2, RULE_CUM, 0, 3, 1, "ContinuedCumulative",
                 "cumulative average resumed after 3 batches: the 4 virtual batches get weights 1/4 .. 1/7");
#undef G
}

static void invalid_groups(gfile *f, gsl_rng *r)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        for (int bw = 0; bw < 2 - fp32; bw++) {
            const char *type = bw ? "GhostBackwardTrain" : "GhostForwardTrain";
            ggroup *g = grp(f, type, fp32, LAYOUT_NCHW, 8, 2, 1, 1, 1e-5, 1, 3, NULL);
            invalid_case(g, r, bw, 0, "VirtualBatchNotDividing", "BN_EINVAL",
                         "V = 3 does not divide N = 8");
            g = grp(f, type, fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, 1, NULL);
            invalid_case(g, r, bw, 0, "SingleValuePerSet", "BN_ESINGLE",
                         "V = 1 with H*W = 1: each virtual batch holds one value per channel");
        }
        if (fp32)
            continue;
        ggroup *g = grp(f, "GhostForwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, 0, NULL);
        invalid_case(g, r, 0, 0, "VirtualBatchNotDividing", "BN_EINVAL", "V = 0: no virtual batch");
        g = grp(f, "GhostForwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, 2, NULL);
        invalid_case(g, r, 0, 1, "NaNInput", "BN_EDOM", "a NaN in x: report it");
    }
}

static const char *header[] = {
    "Ghost Batch Normalization: the N examples are split into N/V virtual batches of V consecutive examples (V = virtualBatchSize);",
    "virtual batch k (examples k*V .. k*V + V - 1) is batch-normalized (Ioffe & Szegedy 2015, Algorithm 1) with its own statistics, per channel",
    "over its V*H*W values; gamma and beta are shared. With V = N it is batch normalization.",
    "GhostForwardTrain: expected y and the statistics of every virtual batch, N/V rows of C values (row k: virtual batch k).",
    "GhostBackwardTrain: dx per virtual batch as batch normalization's, dgamma and dbeta summed over all of them; implementations that",
    "take saved statistics get them from their own forward on x.",
    "GhostRunningStats: one update of the running statistics per virtual batch, in order, with m' = V*H*W; rules as in running_stats.json.",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_ghost(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1801);
    f->algorithm = "GhostBatchNormalization";
    f->file = "ghost.json";
    f->schema = "ghost_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++) {
        train_groups(f, r, 0, fp32);
        train_groups(f, r, 1, fp32);
        running_groups(f, r, fp32);
    }
    invalid_groups(f, r);
    gsl_rng_free(r);
}
