/*
 * gen_renorm.c — renorm.json: Batch Renormalization (Ioffe 2017). Training
 * forward and backward with r and d clipped (on both sides) and inside
 * their ranges, the moving-average update of the mean and standard
 * deviation, inference with the moving statistics, in fp64 and fp32 groups,
 * and the inputs bnlab rejects. Per channel, with (mu, sigma) the moving
 * statistics:
 *
 *   sigma_B = sqrt(sigma2_B + eps),  r = clip(sigma_B/sigma, 1/rmax, rmax),
 *   d = clip((mu_B - mu)/sigma, -dmax, dmax),  y = gamma·((x - mu_B)/sigma_B·r + d) + beta
 *   backward: r and d constants;  update: mu += alpha·(mu_B - mu), sigma += alpha·(sigma_B - sigma)
 *   inference: y = gamma·(x - mu)/sigma + beta
 *
 * The moving statistics of a test are made from the batch's own so that each
 * channel's r and d land where the test wants them (well inside, or at least
 * twice beyond the clip), as short dyadic numbers.
 */
#include <math.h>
#include <quadmath.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "recipes.h"

/* ------------------------------------------------ where r and d land */

typedef enum { IN_RANGE, ABOVE, BELOW } region;
typedef enum { RD_MIXED, RD_INTERIOR } rd_plan;

/* v with its 6 leading bits (exact in binary32 too). */
static double dyadic6(double v)
{
    int e;
    double f = frexp(v, &e);
    return ldexp(round(f * 64), e - 6);
}

/* Moving statistics for channel c of x that put r in region rr and d in rd. */
static void moving_for(gsl_rng *r, const gshape *s, const double *x, size_t c, double rmax,
                       double dmax, region rr, region rd, double *mm, double *msd)
{
    quad mu, v;
    q_stats(s, x, c, &mu, &v);
    double sigma_B = (double)sqrtq(v + s->eps);
    double k = (double)rnd_int(r, -8, 8) / 16;
    double tr = rr == ABOVE ? 2 * rmax : rr == BELOW ? 0.5 / rmax : pow(rmax, k);
    *msd = dyadic6(sigma_B / tr);
    k = (double)rnd_int(r, -8, 8) / 16;
    double td = rd == ABOVE ? 2 * dmax + 1 : rd == BELOW ? -(2 * dmax + 1) : dmax * k;
    double q = *msd / 64;                              /* a grid of 1/64 of sigma */
    *mm = round(((double)mu - td * *msd) / q) * q;
    if (s->fp32)
        *mm = (float)*mm;                              /* off the grid, by far less than d's margin */
}

/* The regions of channel c under a plan: MIXED cycles through clipped r
 * (both sides), clipped d (both sides), both inside, and both clipped. */
static void plan_regions(rd_plan p, size_t c, size_t shift, region *rr, region *rd)
{
    static const region cyc[][2] = {{ABOVE, IN_RANGE}, {IN_RANGE, BELOW}, {IN_RANGE, IN_RANGE},
                                    {BELOW, IN_RANGE}, {IN_RANGE, ABOVE}, {ABOVE, BELOW},
                                    {BELOW, ABOVE}};
    if (p == RD_INTERIOR) {
        *rr = *rd = IN_RANGE;
        return;
    }
    *rr = cyc[(c + shift) % 7][0];
    *rd = cyc[(c + shift) % 7][1];
}

static void brn_case(ggroup *g, gsl_rng *r, int bw, double rmax, double dmax, recipe rc,
                     rd_plan plan, const char *extra_flag)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    double *mm = gen_dalloc(C), *msd = gen_dalloc(C);
    make_x(r, s, rc, x);
    make_params(r, s, rc, gamma, beta);
    size_t shift = (size_t)rnd_int(r, 0, 6);
    int clipped_r = 0, clipped_d = 0, interior = 0;
    grenorm b = {mm, msd, rmax, dmax};
    for (size_t c = 0; c < C; c++) {
        region rr, rd;
        plan_regions(plan, c, shift, &rr, &rd);
        moving_for(r, s, x, c, rmax, dmax, rr, rd, &mm[c], &msd[c]);
        quad rq, dq;                                   /* what the channel got */
        q_renorm_rd(s, &b, x, c, &rq, &dq);
        int rin = rq > 1 / (quad)rmax && rq < rmax, din = dq > -(quad)dmax && dq < dmax;
        clipped_r |= !rin, clipped_d |= !din, interior |= rin && din;
    }
    check_exact(s, mm, C, "movingMean");
    check_exact(s, msd, C, "movingSd");
    const double *Ga = s->affine ? gamma : NULL, *Be = s->affine ? beta : NULL;
    const char *what = rmax == 1 && dmax == 0 ? "rmax = 1, dmax = 0: r = 1 and d = 0, batch normalization exactly"
                     : plan == RD_INTERIOR ? "r and d inside their ranges in every channel"
                     : "channels with r clipped to rmax or 1/rmax, d clipped to +-dmax, and both inside";
    gtest *t = gen_test(g, gen_fmt("%s; %s%s", recipe_comment(rc, s), what,
                                   bw ? "; r and d are constants in the backward" : ""));
    gen_flag(t, recipe_flag(rc, s));
    if (rmax == 1 && dmax == 0)
        gen_flag(t, "RenormIsBn");
    else {
        if (clipped_r)
            gen_flag(t, "ClippedR");
        if (clipped_d)
            gen_flag(t, "ClippedD");
        if (interior)
            gen_flag(t, "InteriorRD");
    }
    if (extra_flag)
        gen_flag(t, extra_flag);
    shape_flags(t, s);
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
    gen_in(t, "movingMean", mm, C);
    gen_in(t, "movingSd", msd, C);
    if (!bw) {
        double *y = gen_dalloc(n), *mean = gen_dalloc(C), *var = gen_dalloc(C),
               *inv = gen_dalloc(C), *rr = gen_dalloc(C), *dd = gen_dalloc(C);
        q_renorm_forward(s, &b, x, Ga, Be, y, mean, var, inv, rr, dd);
        gen_out(t, "y", y, n);
        gen_out(t, "mean", mean, C);
        gen_out(t, "varBiased", var, C);
        gen_out(t, "invstd", inv, C);
        gen_out(t, "r", rr, C);
        gen_out(t, "d", dd, C);
        tol_renorm_forward(t, s, &b, x, Ga, Be);
        return;
    }
    double *dx = gen_dalloc(n), *dg = gen_dalloc(C), *db = gen_dalloc(C);
    q_renorm_backward(s, &b, x, dy, Ga, dx, dg, db);
    gen_out(t, "dx", dx, n);
    if (s->affine) {
        gen_out(t, "dgamma", dg, C);
        gen_out(t, "dbeta", db, C);
    }
    tol_renorm_backward(t, s, &b, x, dy, Ga);
}

/* ------------------------------------------------ the moving averages */

typedef long double ld;

/* K batches, each's statistics then the update; the tolerance follows the
 * recursion (tol.c's bounds for each batch's statistics, plus 4u of the
 * values each update combines), as for BN's running statistics. */
static void update_case(ggroup *g, gsl_rng *r, double alpha, size_t K, recipe rc,
                        const char *flag, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, m = shape_m(s);
    double *x = gen_dalloc(K * n), *mm = gen_dalloc(C), *msd = gen_dalloc(C);
    for (size_t k = 0; k < K; k++)
        make_x(r, s, rc, x + k * n);
    for (size_t c = 0; c < C; c++) {
        mm[c] = (double)rnd_int(r, -16, 16) / 8;
        msd[c] = (double)rnd_int(r, 8, 40) / 16;
    }
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    shape_flags(t, s);
    gen_in_rows(t, "batches", x, K, n);
    gen_in(t, "movingMean", mm, C);
    gen_in(t, "movingSd", msd, C);
    ld u = unit_roundoff(s), tm = 0, ts = 0, la = alpha;
    double *om = gen_dalloc(K * C), *os = gen_dalloc(K * C);
    size_t *idx = gen_alloc(m, sizeof *idx);
    for (size_t c = 0; c < C; c++) {
        quad mq = mm[c], sq = msd[c];
        ld Em = 0, Es = 0;
        for (size_t k = 0; k < K; k++) {
            for (size_t i = 0; i < m; i++)
                idx[i] = k * n + shape_index(s, c, i);
            quad mu, var;
            q_stats_idx(x, idx, m, &mu, &var);
            quad sigma_B = sqrtq(var + s->eps);
            gerr e = set_error(x, idx, m, s->eps, u);
            Em = (1 - la) * Em + la * e.e_mu + 4 * u * (fabsl((ld)mq) + fabsl((ld)mu));
            Es = (1 - la) * Es + la * e.r_s * (ld)sigma_B + 4 * u * (fabsl((ld)sq) + (ld)sigma_B);
            mq += alpha * (mu - mq);
            sq += alpha * (sigma_B - sq);
            om[k * C + c] = q_round(mq);
            os[k * C + c] = q_round(sq);
            tm = fmaxl(tm, 2 * Em);
            ts = fmaxl(ts, 2 * Es);
        }
    }
    gen_out_rows(t, "movingMean", om, K, C);
    gen_out_rows(t, "movingSd", os, K, C);
    gen_tol(t, "movingMean", (double)tm, (double)(2 * u));
    gen_tol(t, "movingSd", (double)ts, (double)(2 * u));
}

/* ------------------------------------------------ inference */

static void infer_case(ggroup *g, gsl_rng *r, recipe rc, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    double *mm = gen_dalloc(C), *msd = gen_dalloc(C), *var = gen_dalloc(C);
    make_x(r, s, rc, x);
    make_params(r, s, rc, gamma, beta);
    for (size_t c = 0; c < C; c++) {               /* near the data's own, or plain numbers */
        quad mu, v;
        q_stats(s, x, c, &mu, &v);
        msd[c] = v > 0 ? dyadic6((double)sqrtq(v) * (double)rnd_int(r, 24, 40) / 32)
                       : (double)rnd_int(r, 8, 40) / 16;
        mm[c] = round((double)mu * 64 / msd[c]) * msd[c] / 64 + (double)rnd_int(r, -4, 4) * msd[c] / 8;
        if (s->fp32)
            mm[c] = (float)mm[c];
        var[c] = msd[c] * msd[c];                   /* exact: msd has 6 bits */
    }
    check_exact(s, mm, C, "movingMean");
    check_exact(s, msd, C, "movingSd");
    gtest *t = gen_test(g, comment ? comment : recipe_comment(rc, s));
    gen_flag(t, recipe_flag(rc, s));
    if (shape_m(s) == 1)
        gen_flag(t, "SingleValuePerChannel");
    shape_flags(t, s);
    const double *Ga = s->affine ? gamma : NULL, *Be = s->affine ? beta : NULL;
    gen_in(t, "x", x, n);
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
    gen_in(t, "movingMean", mm, C);
    gen_in(t, "movingSd", msd, C);
    /* BN inference with var = sigma^2 and no eps: y = gamma*(x - mu)/sigma + beta */
    gshape s0 = *s;
    s0.eps = 0;
    double *y = gen_dalloc(n);
    q_forward_infer(&s0, x, Ga, Be, mm, var, y);
    gen_out(t, "y", y, n);
    tol_forward_infer(t, &s0, x, Ga, Be, mm, var);
}

/* ------------------------------------------------ invalid inputs */

typedef enum { BAD_AS_IS, BAD_NAN_X, BAD_INF_DY, BAD_ZERO_SD, BAD_NEG_SD, BAD_NAN_MM } bad_kind;

static void invalid_case(ggroup *g, gsl_rng *r, const char *type, size_t K, bad_kind bad,
                         const char *flag, const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C, rows = K ? K : 1;
    double *x = gen_dalloc(rows * n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    double *dy = gen_dalloc(n), *mm = gen_dalloc(C), *msd = gen_dalloc(C);
    for (size_t k = 0; k < rows; k++)
        make_x(r, s, R_TYPICAL, x + k * n);
    make_params(r, s, R_TYPICAL, gamma, beta);
    make_dy(r, s, DY_RANDOM, x, dy);
    for (size_t c = 0; c < C; c++) {
        mm[c] = (double)rnd_int(r, -16, 16) / 8;
        msd[c] = (double)rnd_int(r, 8, 40) / 16;
    }
    switch (bad) {
    case BAD_NAN_X:   x[n / 2] = NAN; break;
    case BAD_INF_DY:  dy[n / 2] = -INFINITY; break;
    case BAD_ZERO_SD: msd[0] = 0; break;
    case BAD_NEG_SD:  msd[C - 1] = -0.5; break;
    case BAD_NAN_MM:  mm[0] = NAN; break;
    default: break;
    }
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    t->error = error;
    if (K) {
        gen_in_rows(t, "batches", x, K, n);
    } else {
        gen_in(t, "x", x, n);
        if (strcmp(type, "BrnBackwardTrain") == 0)
            gen_in(t, "dy", dy, n);
        if (s->affine) {
            gen_in(t, "gamma", gamma, C);
            gen_in(t, "beta", beta, C);
        }
    }
    gen_in(t, "movingMean", mm, C);
    gen_in(t, "movingSd", msd, C);
}

/* ------------------------------------------------ the groups */

static ggroup *grp(gfile *f, const char *type, int fp32, int layout, size_t N, size_t C,
                   size_t H, size_t W, double eps, int affine, const char *extra)
{
    gshape s = {fp32, layout, N, C, H, W, eps, affine, 0, 0};
    return gen_group(f, type, s, extra);
}

static const char *rd_fields(double rmax, double dmax)
{
    return gen_fmt("      \"rmax\": %.17g,\n      \"dmax\": %.17g,\n", rmax, dmax);
}

static void train_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
    const char *type = bw ? "BrnBackwardTrain" : "BrnForwardTrain";
    double rmax = 3, dmax = 5;
#define G(l, N, C, H, W, eps, aff, rx, dx) \
    (rmax = (rx), dmax = (dx), grp(f, type, fp32, LAYOUT_##l, N, C, H, W, eps, aff, rd_fields(rx, dx)))
#define T(rc, plan) brn_case(g, r, bw, rmax, dmax, rc, plan, NULL)
    ggroup *g = G(NCHW, 8, 6, 1, 1, 1e-5, 1, 3, 5);      /* the paper's final rmax, dmax */
    brn_case(g, r, bw, rmax, dmax, R_TYPICAL, RD_MIXED, "PaperDefault");
    T(R_TYPICAL, RD_INTERIOR), T(R_NEG_GAMMA, RD_MIXED), T(R_LARGE_OFFSET, RD_MIXED);
    g = G(NCHW, 8, 4, 1, 1, 1e-5, 1, 1.5, 0.5);         /* during the schedule's ramp */
    T(R_TYPICAL, RD_MIXED);
    g = G(NCHW, 6, 3, 1, 1, 1e-5, 1, 1, 0);              /* the schedule's start: BN */
    T(R_TYPICAL, RD_MIXED);
    g = G(NCHW, 2, 4, 2, 3, 1e-5, 1, 3, 5);              /* spatial */
    T(R_TYPICAL, RD_MIXED);
    g = G(NHWC, 2, 4, 2, 3, 1e-5, 1, 3, 5);
    T(R_TYPICAL, RD_MIXED), T(R_TYPICAL, RD_INTERIOR);
    g = G(NCHW, 4, 3, 2, 2, 1e-3, 0, 3, 5);              /* no affine parameters */
    T(R_TYPICAL, RD_MIXED);
    g = G(NCHW, 2, 4, 1, 1, 1e-5, 1, 3, 5);              /* m' = 2 */
    T(R_TYPICAL, RD_MIXED);
    g = G(NCHW, 5, 3, 2, 2, 0, 1, 2, 1);                 /* eps = 0 */
    T(R_TYPICAL, RD_MIXED);
#undef G
#undef T
}

static void other_groups(gfile *f, gsl_rng *r, int fp32)
{
#define U(l, N, C, H, W, eps, alpha) \
    grp(f, "BrnUpdate", fp32, LAYOUT_##l, N, C, H, W, eps, 0, gen_fmt("      \"alpha\": %.17g,\n", (double)(alpha)))
    ggroup *g = U(NCHW, 4, 3, 1, 1, 1e-5, 0.01);
    update_case(g, r, 0.01, 3, R_TYPICAL, "PaperDefault", "alpha = 0.01, the paper's rate, over 3 batches");
    g = U(NHWC, 2, 3, 2, 2, 1e-5, 0.5);
    update_case(g, r, 0.5, 3, R_TYPICAL, "Typical", "alpha = 0.5, spatial NHWC: statistics over N*H*W = 8 values");
    g = U(NCHW, 4, 3, 1, 1, 1, 0.25);
    update_case(g, r, 0.25, 2, R_TYPICAL, "LargeEps",
                "eps = 1: the moving sd moves towards sqrt(varBiased + eps), not the plain standard deviation");
    g = U(NCHW, 4, 3, 1, 1, 1e-5, 0);
    update_case(g, r, 0, 2, R_TYPICAL, "AlphaZero", "alpha = 0: the moving statistics stay as they were");
    g = U(NCHW, 4, 3, 1, 1, 1e-5, 1);
    update_case(g, r, 1, 2, R_TYPICAL, "AlphaOne", "alpha = 1: the moving statistics become the last batch's");
    g = U(NCHW, 8, 2, 1, 1, 1e-5, 0.1);
    update_case(g, r, 0.1, 3, R_LARGE_OFFSET, "LargeOffset",
                fp32 ? "1e4 +- 0.6 in fp32: the moving mean heads for 1e4" : "1e7 +- 0.1: the moving mean heads for 1e7");
#undef U
#define I(l, N, C, H, W, aff) grp(f, "BrnForwardInfer", fp32, LAYOUT_##l, N, C, H, W, 1e-3, aff, NULL)
    g = I(NCHW, 8, 5, 1, 1, 1);
    infer_case(g, r, R_TYPICAL, NULL), infer_case(g, r, R_NEG_GAMMA, NULL);
    infer_case(g, r, R_LARGE_OFFSET, NULL);
    g = I(NCHW, 1, 4, 1, 1, 1);
    infer_case(g, r, R_TYPICAL, "N*H*W = 1: valid in inference (the statistics are the moving ones)");
    g = I(NHWC, 2, 3, 2, 5, 1);
    infer_case(g, r, R_TYPICAL, NULL);
    g = I(NCHW, 2, 4, 3, 3, 0);
    infer_case(g, r, R_TYPICAL, NULL);
#undef I
}

static void invalid_groups(gfile *f, gsl_rng *r)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, "BrnForwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, rd_fields(0.5, 5));
        invalid_case(g, r, "BrnForwardTrain", 0, BAD_AS_IS, "RmaxBelowOne", "BN_EINVAL",
                     "rmax = 0.5: [1/rmax, rmax] is empty");
        g = grp(f, "BrnForwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, rd_fields(3, -1));
        invalid_case(g, r, "BrnForwardTrain", 0, BAD_AS_IS, "DmaxNegative", "BN_EINVAL",
                     "dmax = -1: [-dmax, dmax] is empty");
        g = grp(f, "BrnForwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, rd_fields(3, 5));
        invalid_case(g, r, "BrnForwardTrain", 0, fp32 ? BAD_NEG_SD : BAD_ZERO_SD, "NonPositiveMovingSd",
                     "BN_EDOM", fp32 ? "moving sd -0.5 on the last channel" : "moving sd 0 on channel 0: r and d divide by it");
        if (!fp32) {
            invalid_case(g, r, "BrnForwardTrain", 0, BAD_NAN_X, "NaNInput", "BN_EDOM", "a NaN in x: report it");
            invalid_case(g, r, "BrnForwardTrain", 0, BAD_NAN_MM, "NaNInput", "BN_EDOM", "the moving mean is NaN on channel 0");
            g = grp(f, "BrnForwardTrain", fp32, LAYOUT_NCHW, 1, 3, 1, 1, 1e-5, 1, rd_fields(3, 5));
            invalid_case(g, r, "BrnForwardTrain", 0, BAD_AS_IS, "SingleValuePerChannel", "BN_ESINGLE",
                         "training with m' = N*H*W = 1: the batch variance is 0 whatever x is");
        }
        g = grp(f, "BrnBackwardTrain", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, rd_fields(3, 5));
        invalid_case(g, r, "BrnBackwardTrain", 0, BAD_INF_DY, "InfInput", "BN_EDOM", "-Infinity in dy: report it");
        g = grp(f, "BrnUpdate", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 0,
                gen_fmt("      \"alpha\": %.17g,\n", fp32 ? -0.1 : 1.5));
        invalid_case(g, r, "BrnUpdate", 2, BAD_AS_IS, "AlphaOutOfRange", "BN_EINVAL",
                     fp32 ? "alpha = -0.1: outside [0, 1]" : "alpha = 1.5: outside [0, 1]");
        g = grp(f, "BrnForwardInfer", fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-3, 1, NULL);
        invalid_case(g, r, "BrnForwardInfer", 0, fp32 ? BAD_ZERO_SD : BAD_NEG_SD, "NonPositiveMovingSd", "BN_EDOM",
                     fp32 ? "moving sd 0 on channel 0: inference divides by it" : "moving sd -0.5 on the last channel");
        if (!fp32)
            invalid_case(g, r, "BrnForwardInfer", 0, BAD_NAN_X, "NaNInput", "BN_EDOM", "a NaN in x: report it");
    }
}

static const char *header[] = {
    "Batch Renormalization (Ioffe 2017). Per channel c over its m' = N*H*W values, with the moving statistics (mu, sigma) = (movingMean, movingSd):",
    "mean, varBiased and invstd = 1/sigma_B as in batch normalization, sigma_B = sqrt(varBiased + eps), r = clip(sigma_B/sigma, 1/rmax, rmax),",
    "d = clip((mean - mu)/sigma, -dmax, dmax), xhat = (x - mean)/sigma_B*r + d, y = gamma*xhat + beta (without affine: gamma = 1, beta = 0, not given).",
    "BrnForwardTrain: expected y, mean, varBiased, invstd, r, d. BrnBackwardTrain: dx, dgamma = sum dy*xhat, dbeta = sum dy, with r and d",
    "treated as constants (the paper's stop-gradient): dx = r*invstd*(g - mean(g) - x0*mean(g*x0)), g = dy*gamma, x0 = (x - mean)*invstd;",
    "implementations that take saved statistics get them (and r, d) from their own forward on x.",
    "BrnUpdate: for each batch b = inputs.batches[k] in order, its mean and varBiased, then mu += alpha*(mean - mu), sigma += alpha*(sqrt(varBiased + eps) - sigma);",
    "expected.movingMean[k] and expected.movingSd[k] are the values after batch k.",
    "BrnForwardInfer: y = gamma*(x - mu)/sigma + beta; eps is not used (sigma has it).",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_renorm(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1701);
    f->algorithm = "BatchRenormalization";
    f->file = "renorm.json";
    f->schema = "renorm_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++) {
        train_groups(f, r, 0, fp32);
        train_groups(f, r, 1, fp32);
        other_groups(f, r, fp32);
    }
    invalid_groups(f, r);
    gsl_rng_free(r);
}
