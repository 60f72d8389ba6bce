/*
 * gen_groupnorm.c — groupnorm.json: Group Normalization (Wu & He 2018) and
 * its two special cases, Layer Normalization (Ba et al. 2016, G = 1) and
 * Instance Normalization (G = C), forward and backward, in fp64 and fp32
 * groups, (N, D) and spatial shapes, NCHW and NHWC, the adversarial recipes
 * of recipes.c, and the inputs bnlab rejects. Statistics per example n and
 * group g of C/G consecutive channels, over those channels' H·W pixels
 * (part_groups); per-channel gamma, beta. Expected values: binary128
 * (oracle_family.c).
 */
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "recipes.h"

/* Set (n = 0, g = 0) made constant: a copy of its first value. */
static void constant_set(const gpart *p, double *x)
{
    for (size_t j = 1; j < p->m; j++)
        x[p->idx[j]] = x[p->idx[0]];
}

static void gn_flags(gtest *t, const gshape *s, size_t G, size_t m)
{
    gen_flag(t, G == 1 ? "LayerNormCase" : G == s->C ? "InstanceNormCase" : "GroupNormCase");
    if (m == 2)
        gen_flag(t, "TwoValuesPerSet");
    if (shape_odd(s))
        gen_flag(t, "OddSizes");
}

static const char *gn_comment(recipe rc, const gshape *s, size_t G)
{
    if (rc == R_CONSTANT)
        return G == 1 ? "example 0 is constant: its set has variance exactly 0, xhat = 0 and y = beta (eps > 0 keeps it finite)"
                      : "set (n = 0, g = 0) is constant: variance exactly 0, xhat = 0 and y = beta there (eps > 0 keeps it finite)";
    return recipe_comment(rc, s);
}

static void gn_case(ggroup *g, gsl_rng *r, int bw, size_t G, recipe rc, int const_dy)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    gpart p = part_groups(s, G);
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    make_x(r, s, rc == R_CONSTANT ? R_TYPICAL : rc, x);
    if (rc == R_CONSTANT)
        constant_set(&p, x);
    make_params(r, s, rc, gamma, beta);
    const double *Ga = s->affine ? gamma : NULL, *Be = s->affine ? beta : NULL;
    gtest *t = gen_test(g, gen_fmt("%s%s", gn_comment(rc, s, G),
                                   const_dy ? "; dy constant on each set without affine parameters, so dx must be 0" : ""));
    gen_flag(t, rc == R_CONSTANT ? "ConstantSet" : recipe_flag(rc, s));
    if (const_dy)
        gen_flag(t, "ConstantDyPerSet");
    gn_flags(t, s, G, p.m);
    gen_in(t, "x", x, n);
    double *dy = NULL;
    if (bw) {
        dy = gen_dalloc(n);
        make_dy(r, s, DY_RANDOM, x, dy);
        for (size_t k = 0; const_dy && k < p.nsets; k++) {
            double v = (double)rnd_int(r, -8, 8) / 4;
            for (size_t j = 0; j < p.m; j++)
                dy[p.idx[k * p.m + j]] = v;
        }
        gen_in(t, "dy", dy, n);
    }
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
    if (!bw) {
        double *y = gen_dalloc(n), *mean = gen_dalloc(p.nsets), *var = gen_dalloc(p.nsets),
               *inv = gen_dalloc(p.nsets);
        q_norm_forward(s, &p, x, Ga, Be, y, mean, var, inv);
        gen_out(t, "y", y, n);
        gen_out(t, "mean", mean, p.nsets);
        gen_out(t, "varBiased", var, p.nsets);
        gen_out(t, "invstd", inv, p.nsets);
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

typedef enum { BAD_AS_IS, BAD_NAN_X, BAD_INF_DY, BAD_NAN_GAMMA, BAD_CONSTANT } bad_kind;

static void gn_invalid(ggroup *g, gsl_rng *r, int bw, size_t G, bad_kind bad, const char *flag,
                       const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C), *dy = gen_dalloc(n);
    make_x(r, s, R_TYPICAL, x);
    make_params(r, s, R_TYPICAL, gamma, beta);
    make_dy(r, s, DY_RANDOM, x, dy);
    if (bad == BAD_CONSTANT) {
        gpart p = part_groups(s, G);
        constant_set(&p, x);
    }
    if (bad == BAD_NAN_X)
        x[n / 2] = NAN;
    if (bad == BAD_INF_DY)
        dy[n / 2] = INFINITY;
    if (bad == BAD_NAN_GAMMA)
        gamma[C - 1] = NAN;
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    t->error = error;
    gen_in(t, "x", x, n);
    if (bw)
        gen_in(t, "dy", dy, n);
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
}

static ggroup *grp(gfile *f, int bw, int fp32, int layout, size_t N, size_t C, size_t H,
                   size_t W, double eps, int affine, size_t G)
{
    gshape s = {fp32, layout, N, C, H, W, eps, affine, 0, 0};
    return gen_group(f, bw ? "GnBackward" : "GnForward", s,
                     gen_fmt("      \"groups\": %zu,\n", G));
}

static void gn_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
    size_t Gr;
#define G(l, N, C, H, W, eps, aff, ng) (Gr = (ng), grp(f, bw, fp32, LAYOUT_##l, N, C, H, W, eps, aff, ng))
#define T(rc) gn_case(g, r, bw, Gr, rc, 0)
    ggroup *g = G(NCHW, 4, 6, 1, 1, 1e-5, 1, 1);        /* (N, D): LN of each row */
    T(R_TYPICAL), T(R_NEG_GAMMA), T(R_LARGE_OFFSET), T(R_CONSTANT);
    if (!bw) {
        g = G(NCHW, 1, 5, 1, 1, 1e-5, 1, 1);            /* one example: no batch needed */
        T(R_TYPICAL);
    }
    g = G(NCHW, 3, 4, 1, 1, 1e-5, 1, 2);                /* (N, D) in groups of 2 features */
    T(R_TYPICAL), T(R_CONSTANT);
    for (int l = 0; l < 2; l++) {                       /* spatial: every G of C = 6 */
        g = l ? G(NHWC, 2, 6, 1, 3, 1e-5, 1, 1) : G(NCHW, 2, 6, 1, 3, 1e-5, 1, 1);
        T(l ? R_LARGE_OFFSET : R_TYPICAL);
        if (!l) {
            g = G(NCHW, 2, 6, 1, 3, 1e-5, 1, 2);
            T(R_TYPICAL), T(R_CONSTANT);
        }
        g = l ? G(NHWC, 2, 6, 2, 3, 1e-5, 1, 3) : G(NCHW, 2, 6, 2, 3, 1e-5, 1, 3);
        T(R_TYPICAL);
        if (!l)
            T(R_NEG_GAMMA), T(R_LARGE_OFFSET);
        g = l ? G(NHWC, 2, 6, 1, 3, 1e-5, 1, 6) : G(NCHW, 2, 6, 1, 3, 1e-5, 1, 6);
        T(R_TYPICAL);
        if (!l)
            T(R_CONSTANT);
        if (fp32) {                                     /* SIMD remainders (fast/) */
            g = l ? G(NHWC, 3, 6, 5, 7, 1e-4, 1, 3) : G(NCHW, 3, 6, 5, 7, 1e-4, 1, 3);
            T(R_TYPICAL);
        }
    }
    g = G(NCHW, 2, 4, 3, 3, 1e-3, 0, 2);                /* no affine parameters */
    T(R_TYPICAL);
    if (bw)
        gn_case(g, r, bw, Gr, R_TYPICAL, 1);
    g = G(NHWC, 2, 4, 2, 2, 1e-3, 0, 4);
    T(R_TYPICAL);
    g = G(NCHW, 2, 4, 2, 2, 0, 1, 2);                   /* eps = 0 */
    T(R_TYPICAL), T(R_TINY), T(R_HUGE);
    g = G(NCHW, 3, 4, 2, 1, 1, 1, 2);                   /* eps = 1 */
    T(R_TYPICAL);
    g = G(NHWC, 2, 3, 1, 2, 1e-5, 1, 3);                /* IN with 2 pixels: sets of 2 */
    T(R_TYPICAL);
#undef G
#undef T
}

static void gn_invalid_groups(gfile *f, gsl_rng *r, int bw)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, bw, fp32, LAYOUT_NCHW, 2, 6, 2, 2, 1e-5, 1, 4);
        gn_invalid(g, r, bw, 4, BAD_AS_IS, "GroupsNotDividing", "BN_EINVAL",
                   "G = 4 groups of C = 6 channels: G must divide C");
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 3, 1, 1, 1e-5, 1, 3);
        gn_invalid(g, r, bw, 3, BAD_AS_IS, "SingleValuePerSet", "BN_ESINGLE",
                   "InstanceNorm (G = C) of (N, D) data: each set holds one value, its variance is 0 whatever x is");
        g = grp(f, bw, fp32, LAYOUT_NCHW, 2, 4, 2, 2, 1e-5, 1, 2);
        gn_invalid(g, r, bw, 2, bw ? BAD_INF_DY : BAD_NAN_X, bw ? "InfInput" : "NaNInput", "BN_EDOM",
                   bw ? "Infinity in dy: report it, do not return Inf or NaN gradients"
                      : "a NaN in x: report it, do not return NaN statistics");
        if (fp32)
            continue;
        if (!bw) {
            gn_invalid(g, r, bw, 2, BAD_NAN_GAMMA, "NonFiniteParameter", "BN_EDOM",
                       "gamma is NaN on the last channel: report it");
            g = grp(f, bw, fp32, LAYOUT_NCHW, 2, 4, 1, 1, 1e-5, 1, 8);
            gn_invalid(g, r, bw, 8, BAD_AS_IS, "GroupsNotDividing", "BN_EINVAL",
                       "G = 8 groups of C = 4 channels: more groups than channels");
            g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 1, 1, 1, 1e-5, 1, 1);
            gn_invalid(g, r, bw, 1, BAD_AS_IS, "SingleValuePerSet", "BN_ESINGLE",
                       "LayerNorm of (N, D = 1) data: each row is one value");
        }
        g = grp(f, bw, fp32, LAYOUT_NCHW, 2, 4, 2, 2, -1e-5, 1, 2);
        gn_invalid(g, r, bw, 2, BAD_AS_IS, "NegativeEps", "BN_EINVAL", "eps = -1e-5: eps must be >= 0");
        g = grp(f, bw, fp32, LAYOUT_NCHW, 2, 4, 2, 2, 0, 1, 2);
        gn_invalid(g, r, bw, 2, BAD_CONSTANT, "ZeroVarianceZeroEps", "BN_EDOM",
                   "set (n = 0, g = 0) constant with eps = 0: sigma^2 + eps = 0, xhat would be 0/0");
    }
}

static const char *header[] = {
    "Group Normalization (Wu & He 2018) with its special cases Layer Normalization (Ba et al. 2016, groups = 1) and Instance Normalization (groups = C).",
    "The C channels of each example n are split into G = groups sets of C/G consecutive channels; set (n, g) holds the m = (C/G)*H*W values",
    "of channels g*C/G .. (g+1)*C/G - 1 of example n. Per set: mean = (1/m) sum x, varBiased = (1/m) sum (x - mean)^2, invstd = 1/sqrt(varBiased + eps),",
    "y = gamma_c*(x - mean)*invstd + beta_c with per-channel gamma, beta (without affine: 1 and 0, not given). The same in training and inference.",
    "GnForward: expected y and the statistics of every set, N*G values each, set (n, g) at index n*G + g.",
    "GnBackward: given x, dy = dl/dy, gamma and beta: dx = invstd*(g - mean(g) - xhat*mean(g*xhat)) per set with g = dy*gamma_c,",
    "dgamma_c = sum over n and pixels of dy*xhat, dbeta_c = sum of dy. Implementations that take saved statistics get them from their own forward on x.",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_groupnorm(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1601);
    f->algorithm = "GroupNormalization";
    f->file = "groupnorm.json";
    f->schema = "groupnorm_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++)
        for (int bw = 0; bw < 2; bw++)
            gn_groups(f, r, bw, fp32);
    for (int bw = 0; bw < 2; bw++)
        gn_invalid_groups(f, r, bw);
    gsl_rng_free(r);
}
