/*
 * gen_infer.c — forward_infer.json and backward_infer.json: Algorithm 2,
 * step 11 (inference with fixed population statistics, one affine map per
 * channel) and its gradient with the statistics frozen (fine-tuning), in
 * fp64 and fp32 groups, and the inputs bnlab rejects.
 */
#include <math.h>
#include <stdio.h>

#include "gen.h"
#include "recipes.h"

/* Population statistics near the batch's own, as short dyadic numbers:
 * the mean on a grid of 1/32 of the spread, the variance with 7 bits. */
static void make_population(gsl_rng *r, const gshape *s, const double *x, double *mean,
                            double *var)
{
    size_t m = shape_m(s);
    for (size_t c = 0; c < s->C; c++) {
        quad mu, v;
        q_stats(s, x, c, &mu, &v);
        double sd = sqrt((double)v);
        if (m == 1 || sd == 0) {               /* no spread to measure */
            mean[c] = round((double)mu * 8) / 8 + (double)rnd_int(r, -4, 4) / 8;
            var[c] = (double)rnd_int(r, 16, 96) / 32;
            continue;
        }
        int e;
        frexp(sd, &e);
        double q = ldexp(1, e - 5);
        mean[c] = round((double)mu / q) * q + (double)rnd_int(r, -4, 4) * q;
        double f = frexp((double)v, &e);
        var[c] = ldexp(round(f * 64) + (double)rnd_int(r, -8, 8), e - 6);
    }
    check_exact(s, mean, s->C, "mean");
    check_exact(s, var, s->C, "var");
}

typedef enum { OK, ZERO_VAR, BAD_NEG_VAR, BAD_ZERO_VAR, BAD_NAN_X, BAD_INF_X, BAD_NAN_MEAN,
               BAD_INF_VAR, BAD_NAN_GAMMA, BAD_NAN_DY, BAD_INF_DY, BAD_AS_IS } infer_kind;

static void infer_case(ggroup *g, gsl_rng *r, int backward, recipe rc, infer_kind k,
                       const char *flag, const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    double *mean = gen_dalloc(C), *var = gen_dalloc(C), *dy = gen_dalloc(n);
    make_x(r, s, rc, x);
    make_params(r, s, rc, gamma, beta);
    make_population(r, s, x, mean, var);
    make_dy(r, s, DY_RANDOM, x, dy);
    switch (k) {
    case ZERO_VAR: case BAD_ZERO_VAR: var[0] = 0; break;
    case BAD_NEG_VAR:   var[0] = -0.25; break;
    case BAD_NAN_X:     x[n / 2] = NAN; break;
    case BAD_INF_X:     x[n / 2] = INFINITY; break;
    case BAD_NAN_MEAN:  mean[C - 1] = NAN; break;
    case BAD_INF_VAR:   var[0] = INFINITY; break;
    case BAD_NAN_GAMMA: gamma[0] = NAN; break;
    case BAD_NAN_DY:    dy[n / 2] = NAN; break;
    case BAD_INF_DY:    dy[n / 2] = -INFINITY; break;
    default: break;
    }
    gtest *t = gen_test(g, comment ? comment : recipe_comment(rc, s));
    gen_flag(t, flag ? flag : recipe_flag(rc, s));
    if (k == ZERO_VAR)
        gen_flag(t, "ZeroVariance");
    if (shape_m(s) == 1 && !error)
        gen_flag(t, "SingleValuePerChannel");
    if (!error)
        shape_flags(t, s);
    t->error = error;
    const double *G = s->affine ? gamma : NULL, *B = s->affine ? beta : NULL;
    gen_in(t, "x", x, n);
    if (backward)
        gen_in(t, "dy", dy, n);
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        if (!backward)
            gen_in(t, "beta", beta, C);
    }
    gen_in(t, "mean", mean, C);
    gen_in(t, "var", var, C);
    if (error)
        return;
    if (!backward) {
        double *y = gen_dalloc(n);
        q_forward_infer(s, x, G, B, mean, var, y);
        gen_out(t, "y", y, n);
        tol_forward_infer(t, s, x, G, B, mean, var);
        return;
    }
    double *dx = gen_dalloc(n), *dg = gen_dalloc(C), *db = gen_dalloc(C);
    q_backward_infer(s, x, dy, G, mean, var, dx, dg, db);
    gen_out(t, "dx", dx, n);
    if (s->affine) {
        gen_out(t, "dgamma", dg, C);
        gen_out(t, "dbeta", db, C);
    }
    tol_backward_infer(t, s, x, dy, G, mean, var);
}

static ggroup *grp(gfile *f, int bw, int fp32, int layout, size_t N, size_t C, size_t H,
                   size_t W, double eps, int affine)
{
    gshape s = {fp32, layout, N, C, H, W, eps, affine, 0, 0};
    return gen_group(f, bw ? "BnBackwardInfer" : "BnForwardInfer", s, NULL);
}

static void infer_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
#define G(l, N, C, H, W, eps, aff) grp(f, bw, fp32, LAYOUT_##l, N, C, H, W, eps, aff)
#define T(rc) infer_case(g, r, bw, rc, OK, NULL, NULL, NULL)
    ggroup *g = G(NCHW, 8, 5, 1, 1, 1e-5, 1);
    T(R_TYPICAL), T(R_TYPICAL), T(R_NEG_GAMMA), T(R_LARGE_OFFSET);
    infer_case(g, r, bw, R_TYPICAL, ZERO_VAR, NULL, NULL,
               "stored variance 0 on channel 0 with eps > 0: valid, scale = gamma/sqrt(eps)");
    if (!bw)
        T(R_OFFSET);
    g = G(NCHW, 1, 4, 1, 1, 1e-5, 1);                  /* one value per channel */
    infer_case(g, r, bw, R_TYPICAL, OK, NULL, NULL,
               "N*H*W = 1: valid in inference (the statistics are not the batch's)");
    if (!bw)
        infer_case(g, r, bw, R_NEG_GAMMA, OK, NULL, NULL,
                   "N*H*W = 1 with gamma < 0 on even channels");
    for (int l = 0; l < 2; l++) {
        g = l ? G(NHWC, 2, 3, 2, 5, 1e-5, 1) : G(NCHW, 2, 3, 2, 5, 1e-5, 1);
        T(R_TYPICAL);
        if (!bw)
            T(R_TYPICAL);
        if (!bw || l) {
            g = l ? G(NHWC, 3, 5, 6, 7, 1e-4, 1) : G(NCHW, 3, 5, 6, 7, 1e-4, 1);
            T(R_TYPICAL);
        }
    }
    g = G(NHWC, 1, 3, 4, 5, 1e-5, 1);
    T(R_TYPICAL);
    g = G(NCHW, 2, 4, 3, 3, 1e-3, 0);
    T(R_TYPICAL);
    if (!bw) {
        g = G(NHWC, 2, 4, 3, 3, 1e-3, 0);
        T(R_TYPICAL);
    }
    g = G(NCHW, 5, 3, 2, 2, 0, 1);
    T(R_TYPICAL), T(R_TINY), T(R_HUGE);
    g = G(NCHW, 6, 4, 1, 1, 1, 1);
    T(R_TYPICAL);
    if (!bw)
        T(R_TYPICAL);
#undef G
#undef T
}

static void invalid_groups(gfile *f, gsl_rng *r, int bw)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1);
#define BAD(kind, flag, err, comment) infer_case(g, r, bw, R_TYPICAL, kind, flag, err, comment)
        BAD(BAD_NEG_VAR, "NegativeVariance", "BN_EDOM", "stored variance -0.25 on channel 0: not the statistics of any data");
        if (bw) {
            BAD(fp32 ? BAD_INF_DY : BAD_NAN_DY, fp32 ? "InfInput" : "NaNInput", "BN_EDOM",
                fp32 ? "-Infinity in dy: report it" : "a NaN in dy: report it, do not return NaN gradients");
        } else if (fp32) {
            BAD(BAD_INF_X, "InfInput", "BN_EDOM", "Infinity in x: report it");
            BAD(BAD_NAN_GAMMA, "NonFiniteParameter", "BN_EDOM", "gamma is NaN on channel 0: report it");
        } else {
            BAD(BAD_NAN_X, "NaNInput", "BN_EDOM", "a NaN in x: report it, do not return NaN");
            BAD(BAD_NAN_MEAN, "NaNInput", "BN_EDOM", "the stored mean is NaN on the last channel");
            BAD(BAD_INF_VAR, "InfInput", "BN_EDOM", "the stored variance is Infinity on channel 0");
        }
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, 0, 1);
        if (!bw)
            BAD(BAD_ZERO_VAR, "ZeroVarianceZeroEps", "BN_EDOM", "stored variance 0 with eps = 0: division by zero");
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, -1e-3, 1);
        BAD(BAD_AS_IS, "NegativeEps", "BN_EINVAL", "eps = -1e-3: eps must be >= 0");
#undef BAD
    }
}

static const char *header_forward[] = {
    "Batch normalization in inference mode (Ioffe & Szegedy 2015, Algorithm 2, step 11).",
    "Per channel, with fixed statistics mean and var (as stored by a running-statistics rule or Algorithm 2):",
    "y = gamma*(x - mean)/sqrt(var + eps) + beta. Folding into scale*x + shift is allowed; the tolerance covers its cancellation.",
    "N*H*W = 1 is valid here. Without affine, gamma = 1 and beta = 0 and they are not given.",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

static const char *header_backward[] = {
    "Backward of batch normalization in inference mode: the statistics mean and var are fixed (not functions of x).",
    "dx = dy*gamma/sqrt(var + eps), dgamma = sum dy*xhat, dbeta = sum dy, xhat = (x - mean)/sqrt(var + eps).",
    "beta does not enter the gradients and is not given (use 0 where an API needs one).",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_forward_infer(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1301);
    f->file = "forward_infer.json";
    f->schema = "forward_infer_schema.json";
    f->header = header_forward;
    for (int fp32 = 0; fp32 < 2; fp32++)
        infer_groups(f, r, 0, fp32);
    invalid_groups(f, r, 0);
    gsl_rng_free(r);
}

void gen_backward_infer(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1401);
    f->file = "backward_infer.json";
    f->schema = "backward_infer_schema.json";
    f->header = header_backward;
    for (int fp32 = 0; fp32 < 2; fp32++)
        infer_groups(f, r, 1, fp32);
    invalid_groups(f, r, 1);
    gsl_rng_free(r);
}
