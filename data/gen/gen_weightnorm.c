/*
 * gen_weightnorm.c — weightnorm.json: Weight Normalization (Salimans &
 * Kingma 2016) of K units with D weights each (v is K × D, row k unit k's):
 *
 *   w_k = g_k·v_k/‖v_k‖,   dl/dg_k = dl/dw_k·v_k/‖v_k‖,
 *   dl/dv_k = g_k/‖v_k‖·(dl/dw_k - dl/dg_k·v_k/‖v_k‖),
 *   data-dependent init from the N × K pre-activations t of one batch:
 *   g_k = 1/sigma[t_k], b_k = -mu[t_k]/sigma[t_k] (biased sigma).
 *
 * Forward, backward and init in fp64 and fp32 groups, the adversarial cases
 * (gradient parallel and orthogonal to v, tiny and huge weights, offset
 * pre-activations) and the inputs bnlab rejects. Expected values: binary128
 * (oracle_family.c).
 */
#include <math.h>
#include <stdio.h>
#include <string.h>

#include "gen.h"
#include "recipes.h"

typedef enum { V_TYPICAL, V_NEG_G, V_SPARSE, V_TINY, V_HUGE, V_ZERO_ROW, V_NAN } v_kind;
typedef enum { DW_RANDOM, DW_PARALLEL, DW_ORTHOGONAL, DW_INF } dw_kind;

static void check32(int fp32, const double *v, size_t n, const char *what)
{
    gshape s = {0};
    s.fp32 = fp32;
    check_exact(&s, v, n, what);
}

/* v, g of a kind. The last weight of each row is ±2^e (for the orthogonal
 * gradient below, whose last component divides by it). */
static void make_vg(gsl_rng *r, int fp32, size_t K, size_t D, v_kind kind, double *v, double *g)
{
    int e = kind == V_TINY ? (fp32 ? -50 : -500) : kind == V_HUGE ? (fp32 ? 50 : 500) : 0;
    for (size_t k = 0; k < K; k++) {
        for (size_t j = 0; j < D; j++) {
            double a = (double)rnd_bell(r, 16) / 16;
            if (kind == V_SPARSE && j % 3 == 1)
                a = 0;
            if (j == D - 1)
                a = ldexp(rnd_int(r, 0, 1) ? 1 : -1, (int)rnd_int(r, -1, 1));
            v[k * D + j] = ldexp(a, e);
        }
        g[k] = (double)rnd_int(r, 4, 24) / 8;
        if (kind == V_NEG_G && k % 2 == 0)
            g[k] = -g[k];
    }
    if (kind == V_ZERO_ROW)
        for (size_t j = 0; j < D; j++)
            v[(K - 1) * D + j] = 0;
    if (kind == V_NAN)
        v[D / 2] = NAN;
    check32(fp32, v, K * D, "v");
    check32(fp32, g, K, "g");
}

/* dl/dw: random, k·v (dl/dv = 0), or orthogonal to v (dl/dg = 0): the
 * last component cancels the others' dot product exactly (v_last = ±2^e). */
static void make_dw(gsl_rng *r, int fp32, size_t K, size_t D, dw_kind kind, const double *v,
                    double *dw)
{
    for (size_t k = 0; k < K; k++) {
        double scale = (double)rnd_int(r, 1, 8) / 4, dot = 0;
        for (size_t j = 0; j < D; j++) {
            size_t i = k * D + j;
            dw[i] = kind == DW_PARALLEL ? scale * v[i] / fabs(v[k * D + D - 1])
                                        : (double)rnd_bell(r, 16) / 16;
            if (kind == DW_ORTHOGONAL && j < D - 1)
                dot += dw[i] * v[i];               /* exact: short dyadic products */
        }
        if (kind == DW_ORTHOGONAL)
            dw[k * D + D - 1] = -dot / v[k * D + D - 1];
    }
    if (kind == DW_INF)
        dw[K * D / 2] = INFINITY;
    check32(fp32, dw, K * D, "dw");
}

static const char *v_flag(v_kind k)
{
    return k == V_NEG_G ? "NegativeG" : k == V_SPARSE ? "SparseV" : k == V_TINY ? "TinyMagnitude"
         : k == V_HUGE ? "HugeMagnitude" : "Typical";
}

static const char *v_comment(v_kind k, int fp32)
{
    switch (k) {
    case V_NEG_G:  return "g < 0 on even units: w points against v there";
    case V_SPARSE: return "every third weight of v is 0";
    case V_TINY:   return fp32 ? "weights about 2^-50: their squares (2^-100) are still normal binary32 numbers"
                               : "weights about 2^-500: their squares (2^-1000) are still normal binary64 numbers";
    case V_HUGE:   return fp32 ? "weights about 2^50: the sum of their squares still fits in binary32"
                               : "weights about 2^500: the sum of their squares still fits in binary64";
    default:       return "typical weights: v with entries up to 4, g in [0.5, 3]";
    }
}

static ggroup *grp(gfile *f, const char *type, int fp32, size_t a, size_t b)
{
    gshape s = {0};
    s.fp32 = fp32;
    ggroup *g = gen_group(f, type, s,
                          strcmp(type, "WnInit") == 0
                              ? gen_fmt("      \"shape\": {\"N\": %zu, \"K\": %zu},\n", a, b)
                              : gen_fmt("      \"shape\": {\"K\": %zu, \"D\": %zu},\n", a, b));
    g->plain = 1;
    return g;
}

static void wn_case(ggroup *g, gsl_rng *r, size_t K, size_t D, int bw, v_kind vk, dw_kind dk,
                    const char *error, const char *comment)
{
    int fp32 = g->s.fp32;
    double *v = gen_dalloc(K * D), *gg = gen_dalloc(K), *dw = gen_dalloc(K * D);
    make_vg(r, fp32, K, D, vk, v, gg);
    if (bw)
        make_dw(r, fp32, K, D, dk, v, dw);
    gtest *t = gen_test(g, comment ? comment
                                   : gen_fmt("%s%s", v_comment(vk, fp32),
                                             dk == DW_PARALLEL ? "; dl/dw = k*v, so dl/dv = 0"
                                             : dk == DW_ORTHOGONAL ? "; dl/dw orthogonal to v, so dl/dg = 0" : ""));
    t->error = error;
    if (!error) {
        gen_flag(t, v_flag(vk));
        if (bw && dk == DW_PARALLEL)
            gen_flag(t, "ParallelGradient");
        if (bw && dk == DW_ORTHOGONAL)
            gen_flag(t, "OrthogonalGradient");
        if (D == 1)
            gen_flag(t, "SingleInput");
    } else
        gen_flag(t, vk == V_ZERO_ROW ? "ZeroRow" : vk == V_NAN ? "NaNInput" : "InfInput");
    gen_in(t, "v", v, K * D);
    gen_in(t, "g", gg, K);
    if (bw)
        gen_in(t, "dw", dw, K * D);
    if (error)
        return;
    if (!bw) {
        double *w = gen_dalloc(K * D), *vn = gen_dalloc(K);
        q_wn_forward(K, D, v, gg, w, vn);
        gen_out(t, "w", w, K * D);
        gen_out(t, "vnorm", vn, K);
        tol_wn_forward(t, fp32, K, D, v, gg);
        return;
    }
    double *dv = gen_dalloc(K * D), *dg = gen_dalloc(K);
    q_wn_backward(K, D, v, gg, dw, dv, dg);
    gen_out(t, "dv", dv, K * D);
    gen_out(t, "dg", dg, K);
    tol_wn_backward(t, fp32, K, D, v, gg, dw);
}

/* Pre-activations of N examples for K units, a recipe's channel data
 * (units as channels of an (N, K) batch). */
static void init_case(ggroup *g, gsl_rng *r, size_t N, size_t K, recipe rc, int bad,
                      const char *flag, const char *error, const char *comment)
{
    gshape s = {g->s.fp32, LAYOUT_NCHW, N, K, 1, 1, 0, 1, 0, 0};
    double *tv = gen_dalloc(N * K), *gg = gen_dalloc(K), *b = gen_dalloc(K);
    make_x(r, &s, rc, tv);                         /* (N, K) row-major: t[n*K + k] */
    if (bad == 1)
        for (size_t n = 0; n < N; n++)
            tv[n * K] = tv[0];                     /* unit 0 constant */
    if (bad == 2)
        tv[N * K / 2] = NAN;
    gtest *t = gen_test(g, comment ? comment : recipe_comment(rc, &s));
    gen_flag(t, flag ? flag : recipe_flag(rc, &s));
    t->error = error;
    gen_in(t, "t", tv, N * K);
    if (error)
        return;
    q_wn_init(N, K, tv, gg, b);
    gen_out(t, "g", gg, K);
    gen_out(t, "b", b, K);
    tol_wn_init(t, s.fp32, N, K, tv);
}

static void groups(gfile *f, gsl_rng *r, int fp32)
{
    ggroup *g = grp(f, "WnForward", fp32, 3, 5);
    wn_case(g, r, 3, 5, 0, V_TYPICAL, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 0, V_NEG_G, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 0, V_SPARSE, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 0, V_TINY, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 0, V_HUGE, DW_RANDOM, NULL, NULL);
    g = grp(f, "WnForward", fp32, 4, 1);
    wn_case(g, r, 4, 1, 0, V_TYPICAL, DW_RANDOM, NULL, "D = 1: w = g*sign(v) and ||v|| = |v|");
    g = grp(f, "WnForward", fp32, 2, 67);
    wn_case(g, r, 2, 67, 0, V_TYPICAL, DW_RANDOM, NULL, "D = 67: a longer sum of squares, and SIMD remainders");

    g = grp(f, "WnBackward", fp32, 3, 5);
    wn_case(g, r, 3, 5, 1, V_TYPICAL, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 1, V_TYPICAL, DW_PARALLEL, NULL, NULL);
    wn_case(g, r, 3, 5, 1, V_TYPICAL, DW_ORTHOGONAL, NULL, NULL);
    wn_case(g, r, 3, 5, 1, V_NEG_G, DW_RANDOM, NULL, NULL);
    wn_case(g, r, 3, 5, 1, V_SPARSE, DW_PARALLEL, NULL, NULL);
    wn_case(g, r, 3, 5, 1, V_HUGE, DW_RANDOM, NULL, NULL);
    g = grp(f, "WnBackward", fp32, 4, 1);
    wn_case(g, r, 4, 1, 1, V_TYPICAL, DW_RANDOM, NULL, "D = 1: dl/dv = 0, a direction in one dimension cannot change");
    g = grp(f, "WnBackward", fp32, 2, 67);
    wn_case(g, r, 2, 67, 1, V_TYPICAL, DW_RANDOM, NULL, "D = 67: longer dot products");

    g = grp(f, "WnInit", fp32, 8, 3);
    init_case(g, r, 8, 3, R_TYPICAL, 0, "Typical", NULL, "pre-activations of 8 examples: g = 1/sigma, b = -mu/sigma per unit");
    init_case(g, r, 8, 3, R_OFFSET, 0, NULL, NULL, NULL);
    init_case(g, r, 8, 3, R_LARGE_OFFSET, 0, NULL, NULL, NULL);
    g = grp(f, "WnInit", fp32, 2, 4);
    init_case(g, r, 2, 4, R_TYPICAL, 0, "TwoValuesPerSet", NULL,
              "two examples: sigma = |t_1 - t_2|/2, the smallest batch with a spread");
}

static void invalid_groups(gfile *f, gsl_rng *r)
{
    for (int fp32 = 0; fp32 < 2; fp32++) {
        ggroup *g = grp(f, "WnForward", fp32, 3, 4);
        wn_case(g, r, 3, 4, 0, V_ZERO_ROW, DW_RANDOM, "BN_EDOM", "the last row of v is all 0: no direction");
        if (!fp32)
            wn_case(g, r, 3, 4, 0, V_NAN, DW_RANDOM, "BN_EDOM", "a NaN in v: report it");
        g = grp(f, "WnBackward", fp32, 3, 4);
        wn_case(g, r, 3, 4, 1, V_TYPICAL, DW_INF, "BN_EDOM", "Infinity in dl/dw: report it");
        g = grp(f, "WnInit", fp32, 1, 3);
        init_case(g, r, 1, 3, R_TYPICAL, 0, "SingleValuePerChannel", "BN_ESINGLE",
                  "one example: the pre-activations have no spread");
        g = grp(f, "WnInit", fp32, 6, 3);
        init_case(g, r, 6, 3, R_TYPICAL, 1, "ConstantPreActivation", "BN_EDOM",
                  "unit 0's pre-activations are all equal: sigma = 0");
        if (!fp32)
            init_case(g, r, 6, 3, R_TYPICAL, 2, "NaNInput", "BN_EDOM", "a NaN in t: report it");
    }
}

static const char *header[] = {
    "Weight Normalization (Salimans & Kingma 2016) of K units with D weights each: v holds K rows of D values (row k: unit k), g and dg K values.",
    "WnForward: w_k = g_k*v_k/||v_k|| (K*D values, row by row) and vnorm_k = ||v_k||, the Euclidean norm.",
    "WnBackward: given v, g and dw = dl/dw: dg_k = dw_k . v_k/||v_k||, dv_k = g_k/||v_k||*(dw_k - dg_k*v_k/||v_k||).",
    "WnInit (data-dependent initialization): t holds the pre-activations v_k . x_n/||v_k|| of N examples, N rows of K values (t[n*K + k]);",
    "per unit k, mu and sigma are the mean and biased standard deviation of its N values: g_k = 1/sigma, b_k = -mu/sigma.",
    "A value passes when |got - want| <= atol + rtol*|want| with the test's tolerance for that output (docs/conformance.md).",
    "result \"invalid\": a correct implementation must reject the inputs; \"error\" is the status bnlab returns.",
    NULL};

void gen_weightnorm(gfile *f)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    gsl_rng_set(r, 1901);
    f->algorithm = "WeightNormalization";
    f->file = "weightnorm.json";
    f->schema = "weightnorm_schema.json";
    f->header = header;
    for (int fp32 = 0; fp32 < 2; fp32++)
        groups(f, r, fp32);
    invalid_groups(f, r);
    gsl_rng_free(r);
}
