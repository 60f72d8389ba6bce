/*
 * gen_train.c — forward_train*.json and backward_train*.json: Algorithm 1
 * (training mode) and its gradient, plain and fused with a ReLU, in fp64 and
 * fp32 groups, (N, D) and spatial shapes, NCHW and NHWC, the adversarial
 * recipes of recipes.c, and the inputs bnlab rejects.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include "gen.h"
#include "recipes.h"

static const char *dy_comment(dy_kind k)
{
    return k == DY_CONSTANT ? "; dy constant per channel, so dx must be 0"
         : k == DY_PROPORTIONAL ? "; dy = k*(x - mean): dx is a difference of large terms (0 when eps = 0)"
         : "";
}

/* Makes x, gamma, beta (and dy) of one test; ReLU groups retry until every
 * BN(x) is far enough from 0 (see relu_margin_ok). */
static void make_inputs(gsl_rng *r, const gshape *s, recipe rc, double *x,
                        double *gamma, double *beta)
{
    for (int tries = 0;; tries++) {
        make_x(r, s, rc, x);
        make_params(r, s, rc, gamma, beta);
        if (!s->relu || relu_margin_ok(s, x, gamma, beta) >= 16)
            break;
        if (tries == 1000) {
            fprintf(stderr, "gen_vectors: no ReLU margin after 1000 tries\n");
            exit(1);
        }
    }
    if (rc == R_RELU_NEG || rc == R_RELU_POS) {
        size_t n = shape_count(s);
        double *z = gen_dalloc(n);
        q_forward_train(s, x, gamma, beta, NULL, NULL, NULL, NULL, z);
        for (size_t c = 0; c < s->C; c++)
            for (size_t i = 0; i < shape_m(s); i++) {
                double v = z[shape_index(s, c, i)];
                if ((rc == R_RELU_NEG && c == 0 && !(v < 0)) || (rc == R_RELU_POS && !(v > 0))) {
                    fprintf(stderr, "gen_vectors: ReLU recipe does not hold\n");
                    exit(1);
                }
            }
    }
}

static void train_case(ggroup *g, gsl_rng *r, int backward, recipe rc, dy_kind dk)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C);
    make_inputs(r, s, rc, x, gamma, beta);
    const double *G = s->affine ? gamma : NULL, *B = s->affine ? beta : NULL;
    gtest *t = gen_test(g, gen_fmt("%s%s", recipe_comment(rc, s), backward ? dy_comment(dk) : ""));
    gen_flag(t, recipe_flag(rc, s));
    if (backward && dk == DY_CONSTANT)
        gen_flag(t, "ConstantDy");
    if (backward && dk == DY_PROPORTIONAL)
        gen_flag(t, "GradientCancellation");
    shape_flags(t, s);
    gen_in(t, "x", x, n);
    if (!backward) {
        if (s->affine) {
            gen_in(t, "gamma", gamma, C);
            gen_in(t, "beta", beta, C);
        }
        double *y = gen_dalloc(n), *mean = gen_dalloc(C), *var = gen_dalloc(C),
               *inv = gen_dalloc(C);
        q_forward_train(s, x, G, B, y, mean, var, inv, NULL);
        gen_out(t, "y", y, n);
        gen_out(t, "mean", mean, C);
        gen_out(t, "varBiased", var, C);
        gen_out(t, "invstd", inv, C);
        tol_forward_train(t, s, x, G, B);
        return;
    }
    double *dy = gen_dalloc(n), *dx = gen_dalloc(n), *dg = gen_dalloc(C), *db = gen_dalloc(C);
    make_dy(r, s, dk, x, dy);
    gen_in(t, "dy", dy, n);
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
    q_backward_train(s, x, dy, G, B, dx, dg, db);
    gen_out(t, "dx", dx, n);
    if (s->affine) {
        gen_out(t, "dgamma", dg, C);
        gen_out(t, "dbeta", db, C);
    }
    tol_backward_train(t, s, x, dy, G, B);
}

/* ------------------------------------------------------- invalid inputs */

typedef enum { BAD_AS_IS, BAD_NAN_X, BAD_INF_X, BAD_NAN_GAMMA, BAD_INF_BETA,
               BAD_NAN_DY, BAD_INF_DY, BAD_CONSTANT, BAD_SCALE } bad_kind;

static void invalid_case(ggroup *g, gsl_rng *r, int backward, bad_kind bad, int scale,
                         const char *flag, const char *error, const char *comment)
{
    const gshape *s = &g->s;
    size_t n = shape_count(s), C = s->C;
    double *x = gen_dalloc(n), *gamma = gen_dalloc(C), *beta = gen_dalloc(C), *dy = gen_dalloc(n);
    make_x(r, s, bad == BAD_CONSTANT ? R_CONSTANT : R_TYPICAL, x);
    make_params(r, s, R_TYPICAL, gamma, beta);
    make_dy(r, s, DY_RANDOM, x, dy);
    size_t k = n / 2;
    switch (bad) {
    case BAD_NAN_X:     x[k] = NAN; break;
    case BAD_INF_X:     x[k] = -INFINITY; break;
    case BAD_NAN_GAMMA: gamma[C - 1] = NAN; break;
    case BAD_INF_BETA:  beta[0] = INFINITY; break;
    case BAD_NAN_DY:    dy[k] = NAN; break;
    case BAD_INF_DY:    dy[k] = INFINITY; break;
    case BAD_SCALE:
        for (size_t i = 0; i < n; i++)
            x[i] = ldexp(x[i], scale);
        break;
    default: break;
    }
    check_exact(s, x, n, "x");
    gtest *t = gen_test(g, comment);
    gen_flag(t, flag);
    t->error = error;
    gen_in(t, "x", x, n);
    if (backward)
        gen_in(t, "dy", dy, n);
    if (s->affine) {
        gen_in(t, "gamma", gamma, C);
        gen_in(t, "beta", beta, C);
    }
}

/* ------------------------------------------------------- the groups */

static const char *header_forward[] = {
    "Batch normalization in training mode (Ioffe & Szegedy 2015, Algorithm 1), forward pass.",
    "Per channel c, over its m' = N*H*W values: mean = (1/m') sum x, varBiased = (1/m') sum (x - mean)^2,",
    "invstd = 1/sqrt(varBiased + eps), y = gamma*(x - mean)*invstd + beta (activation relu: y = max(0, that)).",
    "Without affine, gamma = 1 and beta = 0 and they are not given.",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

static const char *header_backward[] = {
    "Batch normalization in training mode (Ioffe & Szegedy 2015, Algorithm 1), backward pass.",
    "Given x, the upstream gradient dy = dl/dy and gamma, beta: dx = dl/dx, dgamma = sum dy*xhat, dbeta = sum dy, where the",
    "statistics are the batch's own (they depend on x: dx = gamma*invstd*(dy - mean(dy) - xhat*mean(dy*xhat))).",
    "activation relu: y = max(0, BN(x)) and dy is the gradient of that y; it passes where BN(x) > 0 (no BN(x) is near 0).",
    "Implementations that take saved statistics (bnlab, cuDNN, oneDNN) get them from their own training forward on x.",
    "Data arrays hold N*C*H*W values in the group's layout: NCHW index ((n*C + c)*H + h)*W + w, NHWC index ((n*H + h)*W + w)*C + c.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

static ggroup *grp(gfile *f, int backward, int fp32, int layout, size_t N, size_t C,
                   size_t H, size_t W, double eps, int affine, int relu, int exact)
{
    gshape s = {fp32, layout, N, C, H, W, eps, affine, relu, exact};
    return gen_group(f, backward ? "BnBackwardTrain" : "BnForwardTrain", s, NULL);
}

static void plain_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
#define G(l, N, C, H, W, eps, aff, ex) grp(f, bw, fp32, LAYOUT_##l, N, C, H, W, eps, aff, 0, ex)
#define T(rc) train_case(g, r, bw, rc, DY_RANDOM)
    ggroup *g = G(NCHW, 8, 5, 1, 1, 1e-5, 1, 0);       /* (N, D), Algorithm 1 */
    T(R_TYPICAL), T(R_TYPICAL), T(R_NEG_GAMMA), T(R_OFFSET), T(R_LARGE_OFFSET), T(R_CONSTANT);
    if (bw)
        train_case(g, r, bw, R_TYPICAL, DY_CONSTANT);
    g = G(NCHW, 2, 4, 1, 1, 1e-5, 1, 0);               /* m' = 2 */
    T(R_TYPICAL), T(R_TYPICAL), T(R_CONSTANT);
    g = G(NHWC, 3, 4, 1, 1, 1e-5, 1, 0);               /* (N, D) through the NHWC path */
    T(R_TYPICAL);
    for (int l = 0; l < 2; l++) {                      /* spatial, §3.2 */
        g = l ? G(NHWC, 2, 3, 2, 5, 1e-5, 1, 0) : G(NCHW, 2, 3, 2, 5, 1e-5, 1, 0);
        T(R_TYPICAL), T(R_TYPICAL), T(R_NEG_GAMMA), T(R_OFFSET), T(R_LARGE_OFFSET), T(R_CONSTANT);
        if (bw)
            train_case(g, r, bw, R_TYPICAL, DY_CONSTANT);
        g = l ? G(NHWC, 1, 3, 4, 5, 1e-5, 1, 0) : G(NCHW, 1, 3, 4, 5, 1e-5, 1, 0);
        T(R_TYPICAL), T(R_LARGE_OFFSET);
        if (fp32 || !l) {                              /* SIMD remainders matter in fp32 */
            g = l ? G(NHWC, 3, 5, 6, 7, 1e-4, 1, 0) : G(NCHW, 3, 5, 6, 7, 1e-4, 1, 0);
            T(R_TYPICAL);
        }
    }
    g = G(NCHW, 2, 4, 3, 3, 1e-3, 0, 0);               /* no affine parameters */
    T(R_TYPICAL), T(R_TYPICAL);
    g = G(NHWC, 2, 4, 3, 3, 1e-3, 0, 0);
    T(R_TYPICAL);
    g = G(NCHW, 5, 3, 2, 2, 0, 1, 0);                  /* eps = 0 */
    T(R_TYPICAL), T(R_TINY), T(R_HUGE);
    g = G(NCHW, 6, 4, 1, 1, 1, 1, 0);                  /* eps = 1 */
    T(R_TYPICAL), T(R_TYPICAL);
    g = G(NHWC, 3, 2, 2, 3, 1, 1, 0);
    T(R_TYPICAL);
    g = G(NCHW, 4, 3, 2, 2, 1e-3, 1, 1);               /* exact statistics, m' = 16 */
    T(R_EXACT), T(R_EXACT);
    if (bw)
        train_case(g, r, bw, R_EXACT, DY_PROPORTIONAL);
    g = G(NHWC, 2, 2, 2, 4, 0, 1, 1);
    T(R_EXACT);
    if (bw)
        train_case(g, r, bw, R_EXACT, DY_PROPORTIONAL);
#undef G
#undef T
}

static void relu_groups(gfile *f, gsl_rng *r, int bw, int fp32)
{
#define G(l, N, C, H, W, eps, aff) grp(f, bw, fp32, LAYOUT_##l, N, C, H, W, eps, aff, 1, 0)
#define T(rc) train_case(g, r, bw, rc, DY_RANDOM)
    ggroup *g = G(NCHW, 8, 5, 1, 1, 1e-5, 1);
    T(R_TYPICAL), T(R_TYPICAL), T(R_NEG_GAMMA), T(R_RELU_NEG), T(R_RELU_POS), T(R_CONSTANT);
    g = G(NCHW, 2, 4, 1, 1, 1e-5, 1);
    T(R_TYPICAL);
    for (int l = 0; l < 2; l++) {
        g = l ? G(NHWC, 2, 3, 2, 5, 1e-5, 1) : G(NCHW, 2, 3, 2, 5, 1e-5, 1);
        T(R_TYPICAL), T(R_TYPICAL), T(R_RELU_NEG);
    }
    g = G(NCHW, 2, 4, 3, 3, 1e-3, 0);                  /* y = max(0, xhat) */
    T(R_TYPICAL);
    g = G(NHWC, 1, 3, 4, 5, 1e-5, 1);
    T(R_TYPICAL);
    g = G(NCHW, 6, 4, 1, 1, 1, 1);
    T(R_TYPICAL);
#undef G
#undef T
}

static void invalid_groups(gfile *f, gsl_rng *r, int bw, int relu)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, bw, fp32, LAYOUT_NCHW, 1, 3, 1, 1, 1e-5, 1, relu, 0);
        invalid_case(g, r, bw, BAD_AS_IS, 0, "SingleValuePerChannel", "BN_ESINGLE",
                     "training with m' = N*H*W = 1: the variance is 0 whatever x is; reject, do not return y = beta");
        if (relu && fp32)
            continue;
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, 1e-5, 1, relu, 0);
        invalid_case(g, r, bw, BAD_NAN_X, 0, "NaNInput", "BN_EDOM", "a NaN in x: report it, do not return NaN statistics");
        if (relu)
            continue;
        invalid_case(g, r, bw, BAD_INF_X, 0, "InfInput", "BN_EDOM", "-Infinity in x: report it");
        if (bw) {
            invalid_case(g, r, bw, BAD_NAN_DY, 0, "NaNInput", "BN_EDOM", "a NaN in dy: report it, do not return NaN gradients");
            invalid_case(g, r, bw, BAD_INF_DY, 0, "InfInput", "BN_EDOM", "Infinity in dy: report it");
        } else {
            invalid_case(g, r, bw, fp32 ? BAD_NAN_GAMMA : BAD_INF_BETA, 0, "NonFiniteParameter", "BN_EDOM",
                         fp32 ? "gamma is NaN on the last channel: report it" : "beta is Infinity on channel 0: report it");
        }
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, -1e-5, 1, relu, 0);
        invalid_case(g, r, bw, BAD_AS_IS, 0, "NegativeEps", "BN_EINVAL", "eps = -1e-5: eps must be >= 0");
        g = grp(f, bw, fp32, LAYOUT_NCHW, 4, 2, 1, 1, 0, 1, relu, 0);
        invalid_case(g, r, bw, BAD_CONSTANT, 0, "ZeroVarianceZeroEps", "BN_EDOM",
                     "channel 0 constant with eps = 0: sigma^2 + eps = 0, xhat would be 0/0");
        if (bw)
            continue;
        g = grp(f, bw, fp32, LAYOUT_NCHW, 6, 1, 1, 1, fp32 ? 1e-5 : 0, 1, relu, 0);
        invalid_case(g, r, bw, BAD_SCALE, fp32 ? 66 : 700, "Overflow", "BN_EDOM",
                     fp32 ? "values about 2^66: the variance (about 2^132) does not fit in binary32"
                          : "values about 2^700: the squares, and the variance, overflow binary64");
        if (!fp32)
            invalid_case(g, r, bw, BAD_SCALE, -560, "Underflow", "BN_EDOM",
                         "values about 2^-560 with eps = 0: the variance underflows below the smallest normal binary64");
    }
}

void gen_forward_train(gfile *f, int relu)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, relu ? 1102 : 1101);
    f->file = relu ? "forward_train_relu.json" : "forward_train.json";
    f->schema = "forward_train_schema.json";
    f->header = header_forward;
    for (int fp32 = 0; fp32 < 2; fp32++)
        relu ? relu_groups(f, r, 0, fp32) : plain_groups(f, r, 0, fp32);
    invalid_groups(f, r, 0, relu);
    gsl_rng_free(r);
}

void gen_backward_train(gfile *f, int relu)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, relu ? 1202 : 1201);
    f->file = relu ? "backward_train_relu.json" : "backward_train.json";
    f->schema = "backward_train_schema.json";
    f->header = header_backward;
    for (int fp32 = 0; fp32 < 2; fp32++)
        relu ? relu_groups(f, r, 1, fp32) : plain_groups(f, r, 1, fp32);
    invalid_groups(f, r, 1, relu);
    gsl_rng_free(r);
}
