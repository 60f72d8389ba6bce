/*
 * test_fast.c — fast/ (float, AVX-512 / AVX2 / portable C, OpenMP) against
 * ref/ (double), on every instruction-set path this CPU can run (each is
 * forced in turn, as BNLAB_FAST_ISA would; a path the CPU cannot run is a
 * SKIP line):
 *
 *   1. equivalence: every op (training forward, plain and fused with ReLU,
 *      their backward, inference forward and backward, running update) on
 *      shapes chosen for their edge cases: NCHW, NHWC, (N, D); sizes that
 *      are not multiples of the vector width, rows longer than a block,
 *      many short rows per block, several pixel blocks and channel groups;
 *      C = 1, H·W = 1, N = 1 with H·W > 1, m' = 2, affine off, large eps;
 *   2. ref's adversarial inputs, in float: 1e7 ± 1 (the one-pass variance
 *      formula loses everything: shown), 1e7 ± 0.1 (a constant in float),
 *      1e4 ± 0.01, constant channels, a first value 1e4 sigma out,
 *      magnitudes from 1e-18 to 1e19, and beyond float's range (an error,
 *      never noise);
 *   3. determinism: bit-identical results for 1, 2 and 3 threads, for
 *      misaligned arrays, in place (y = x, dx = dy), with and without
 *      non-temporal stores, for any channel grouping;
 *   4. dispatch and errors: BNLAB_FAST_ISA, the run-time switch, bad input.
 *
 * Tolerances are per quantity, in units of u = 2^-24 (float's unit
 * roundoff), each with its reason next to its definition below. The
 * inputs are floats; ref runs on the same values widened to double (exact),
 * so the differences are fast/'s own rounding.
 *
 * Run: make check, or build/tests/test_fast.
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifdef BNLAB_HAVE_FAST
#include "fast_tests.h"

/* Tolerances of the inference ops (the others: fast_tests.h). */
/* inference y = a·(x - mean) + beta, a = fl(gamma/sqrt(var + eps)): the
 * rounding of a, of x - mean, of the fused multiply-add: <= 4u of
 * |a|·|x - mean| + |beta|, doubled for the portable path (no FMA). */
#define INFER_Y_ATOL_PER_SCALE (8 * U)
/* inference dx = fl(fl(gamma·s)·dy): two roundings. */
#define INFER_DX_RTOL (3 * U)

/* ---------------------------------------------------------- buffers */

/* One test problem: float inputs and fast's outputs, the inputs widened to
 * double and ref's outputs. pm, pv: population statistics for inference. */
typedef struct {
    bn_desc d;
    size_t n, C, m;
    float *x, *dy, *g, *b, *pm, *pv;
    float *y, *yr, *mean, *var, *invstd, *dx, *dg, *db;
    double *X, *DY, *G, *B, *PM, *PV;
    double *Y, *MEAN, *VAR, *INVSTD, *DX, *DG, *DB;
} prob;

/* x ~ N(mu, sd) rounded to float; dy ~ U(-1, 1); gamma in [0.5, 2]
 * (negative for channel 1, to exercise the sign), beta in [-1, 1]. */
static prob prob_new(const bn_desc *d, unsigned long seed, double mu, double sd)
{
    prob p = {.d = *d, .C = d->C};
    ck_assert_int_eq(bn_desc_check(d, 0, &p.n, &p.m), BN_OK);
    size_t n = p.n, C = p.C;
    p.x = falloc(n), p.dy = falloc(n), p.y = falloc(n), p.yr = falloc(n), p.dx = falloc(n);
    p.g = falloc(C), p.b = falloc(C), p.pm = falloc(C), p.pv = falloc(C);
    p.mean = falloc(C), p.var = falloc(C), p.invstd = falloc(C), p.dg = falloc(C), p.db = falloc(C);
    p.X = dalloc(n), p.DY = dalloc(n), p.Y = dalloc(n), p.DX = dalloc(n);
    p.G = dalloc(C), p.B = dalloc(C), p.PM = dalloc(C), p.PV = dalloc(C);
    p.MEAN = dalloc(C), p.VAR = dalloc(C), p.INVSTD = dalloc(C), p.DG = dalloc(C), p.DB = dalloc(C);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.X, n, mu, sd);
    fill_uniform(r, p.DY, n, -1, 1);
    fill_uniform(r, p.G, C, 0.5, 2);
    fill_uniform(r, p.B, C, -1, 1);
    fill_uniform(r, p.PM, C, mu - sd, mu + sd);
    fill_uniform(r, p.PV, C, 0.5 * sd * sd, 2 * sd * sd);
    gsl_rng_free(r);
    if (C > 1)
        p.G[1] = -p.G[1];
    for (size_t k = 0; k < n; k++)
        p.x[k] = (float)p.X[k], p.dy[k] = (float)p.DY[k];
    for (size_t c = 0; c < C; c++)
        p.g[c] = (float)p.G[c], p.b[c] = (float)p.B[c], p.pm[c] = (float)p.PM[c],
        p.pv[c] = (float)p.PV[c];
    widen(p.X, p.x, n), widen(p.DY, p.dy, n), widen(p.G, p.g, C), widen(p.B, p.b, C);
    widen(p.PM, p.pm, C), widen(p.PV, p.pv, C);
    return p;
}

/* after changing the float inputs by hand */
static void prob_rewiden(prob *p)
{
    widen(p->X, p->x, p->n), widen(p->DY, p->dy, p->n);
    widen(p->G, p->g, p->C), widen(p->B, p->b, p->C);
}

static void prob_free(prob *p)
{
    void *ptrs[] = {p->x, p->dy, p->y, p->yr, p->dx, p->g, p->b, p->pm, p->pv, p->mean,
                    p->var, p->invstd, p->dg, p->db, p->X, p->DY, p->Y, p->DX, p->G, p->B,
                    p->PM, p->PV, p->MEAN, p->VAR, p->INVSTD, p->DG, p->DB};
    for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++)
        free(ptrs[k]);
}

static double gam(const prob *p, size_t c) { return p->d.affine ? p->G[c] : 1.0; }
static double bet(const prob *p, size_t c) { return p->d.affine ? p->B[c] : 0.0; }

/* --------------------------------------------------- the comparisons */

/* Training forward (relu 0/1), fast against ref; ref's outputs stay in p. */
static void check_forward(prob *p, int relu)
{
    const bn_desc *d = &p->d;
    float *g = d->affine ? p->g : NULL, *b = d->affine ? p->b : NULL;
    int st = relu ? bn_forward_train_relu_fast(p->y, p->mean, p->var, p->invstd, p->x, g, b, d)
                  : bn_forward_train_fast(p->y, p->mean, p->var, p->invstd, p->x, g, b, d);
    ck_assert_msg(st == BN_OK, "fast forward: %s", bn_last_error());
    double *G = d->affine ? p->G : NULL, *B = d->affine ? p->B : NULL;
    st = relu ? bn_forward_train_relu_ref(p->Y, p->MEAN, p->VAR, p->INVSTD, p->X, G, B, d)
              : bn_forward_train_ref(p->Y, p->MEAN, p->VAR, p->INVSTD, p->X, G, B, d);
    ck_assert_int_eq(st, BN_OK);

    double sigma_max = 0, scale_y = 0;
    double *v = dalloc(p->m);
    for (size_t c = 0; c < p->C; c++) {
        sigma_max = fmax(sigma_max, sqrt(p->VAR[c]));
        channel_values(v, p->X, d, c);
        double xhat_max = 0;
        for (size_t i = 0; i < p->m; i++)
            xhat_max = fmax(xhat_max, fabs(v[i] - p->MEAN[c]) * p->INVSTD[c]);
        scale_y = fmax(scale_y, fabs(gam(p, c)) * (xhat_max + 1) + fabs(bet(p, c)));
    }
    free(v);
    printf("  %s%s, path %s\n", relu ? "forward+relu " : "forward ", desc_str(d), bn_fast_isa());
    ck_assert_uint_eq(cmp_f32("mean vs ref", p->mean, p->MEAN, p->C,
                              MEAN_ATOL_PER_SIGMA * sigma_max, MEAN_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("var_biased vs ref", p->var, p->VAR, p->C, 0, VAR_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("invstd vs ref", p->invstd, p->INVSTD, p->C, 0, VAR_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("y vs ref", p->y, p->Y, p->n, Y_ATOL_PER_SCALE * scale_y, 0), 0);
}

/* Training backward (relu: dz = dy where y > 0, y from the fused forward
 * in p->y), fed fast's saved mean and invstd (so both sides see the same
 * float statistics). */
static void check_backward(prob *p, int relu)
{
    const bn_desc *d = &p->d;
    widen(p->MEAN, p->mean, p->C), widen(p->INVSTD, p->invstd, p->C);
    double *Yd = dalloc(p->n);
    widen(Yd, p->y, p->n);
    float *g = d->affine ? p->g : NULL, *dg = d->affine ? p->dg : NULL, *db = d->affine ? p->db : NULL;
    int st = relu ? bn_backward_train_relu_fast(p->dx, dg, db, p->dy, p->y, p->x, p->mean, p->invstd, g, d)
                  : bn_backward_train_fast(p->dx, dg, db, p->dy, p->x, p->mean, p->invstd, g, d);
    ck_assert_msg(st == BN_OK, "fast backward: %s", bn_last_error());
    double *G = d->affine ? p->G : NULL;
    st = relu ? bn_backward_train_relu_ref(p->DX, p->DG, p->DB, p->DY, Yd, p->X, p->MEAN, p->INVSTD, G, d)
              : bn_backward_train_ref(p->DX, p->DG, p->DB, p->DY, p->X, p->MEAN, p->INVSTD, G, d);
    ck_assert_int_eq(st, BN_OK);

    double *xs = dalloc(p->m), *dys = dalloc(p->m), *ys = dalloc(p->m);
    double abs_dz = 0, abs_dzx = 0, scale_dx = 0;
    for (size_t c = 0; c < p->C; c++) {
        channel_values(xs, p->X, d, c);
        channel_values(dys, p->DY, d, c);
        channel_values(ys, Yd, d, c);
        double s = p->INVSTD[c], sum_dz = 0, sum_dzx = 0, max_dz = 0, max_xhat = 0;
        for (size_t i = 0; i < p->m; i++) {
            double dz = relu && !(ys[i] > 0) ? 0 : dys[i], xhat = (xs[i] - p->MEAN[c]) * s;
            sum_dz += fabs(dz), sum_dzx += fabs(dz * xhat);
            max_dz = fmax(max_dz, fabs(dz)), max_xhat = fmax(max_xhat, fabs(xhat));
        }
        abs_dz = fmax(abs_dz, sum_dz), abs_dzx = fmax(abs_dzx, sum_dzx);
        scale_dx = fmax(scale_dx, fabs(gam(p, c)) * s *
                                      (max_dz + sum_dz / p->m + max_xhat * sum_dzx / p->m));
    }
    free(xs), free(dys), free(ys), free(Yd);
    printf("  backward%s %s, path %s\n", relu ? "+relu" : "", desc_str(d), bn_fast_isa());
    ck_assert_uint_eq(cmp_f32("dx vs ref", p->dx, p->DX, p->n, DX_ATOL_PER_SCALE * scale_dx, 0), 0);
    if (d->affine) {
        ck_assert_uint_eq(cmp_f32("dgamma vs ref", p->dg, p->DG, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * abs_dzx, 0), 0);
        ck_assert_uint_eq(cmp_f32("dbeta vs ref", p->db, p->DB, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * abs_dz, 0), 0);
    }
}

/* Inference forward and backward with the population statistics pm, pv. */
static void check_inference(prob *p)
{
    const bn_desc *d = &p->d;
    float *g = d->affine ? p->g : NULL, *b = d->affine ? p->b : NULL;
    float *dg = d->affine ? p->dg : NULL, *db = d->affine ? p->db : NULL;
    double *G = d->affine ? p->G : NULL, *B = d->affine ? p->B : NULL;
    ck_assert_msg(bn_forward_infer_fast(p->y, p->x, g, b, p->pm, p->pv, d) == BN_OK,
                  "fast inference: %s", bn_last_error());
    ck_assert_int_eq(bn_forward_infer_ref(p->Y, p->X, G, B, p->PM, p->PV, d), BN_OK);
    ck_assert_msg(bn_backward_infer_fast(p->dx, dg, db, p->dy, p->x, g, p->pm, p->pv, d) == BN_OK,
                  "fast inference backward: %s", bn_last_error());
    ck_assert_int_eq(bn_backward_infer_ref(p->DX, p->DG, p->DB, p->DY, p->X, G, p->PM, p->PV, d),
                     BN_OK);
    double scale_y = 0, abs_dy = 0, abs_dyx = 0, *xs = dalloc(p->m), *dys = dalloc(p->m);
    for (size_t c = 0; c < p->C; c++) {
        double s = 1 / sqrt(p->PV[c] + d->eps), a = fabs(gam(p, c)) * s, dxm = 0, sdy = 0, sdyx = 0;
        channel_values(xs, p->X, d, c);
        channel_values(dys, p->DY, d, c);
        for (size_t i = 0; i < p->m; i++) {
            dxm = fmax(dxm, fabs(xs[i] - p->PM[c]));
            sdy += fabs(dys[i]), sdyx += fabs(dys[i] * (xs[i] - p->PM[c]) * s);
        }
        scale_y = fmax(scale_y, a * dxm + fabs(bet(p, c)));
        abs_dy = fmax(abs_dy, sdy), abs_dyx = fmax(abs_dyx, sdyx);
    }
    free(xs), free(dys);
    printf("  inference %s, path %s\n", desc_str(d), bn_fast_isa());
    ck_assert_uint_eq(cmp_f32("inference y vs ref", p->y, p->Y, p->n,
                              INFER_Y_ATOL_PER_SCALE * scale_y, 0), 0);
    ck_assert_uint_eq(cmp_f32("inference dx vs ref", p->dx, p->DX, p->n, 0, INFER_DX_RTOL), 0);
    if (d->affine) {
        ck_assert_uint_eq(cmp_f32("inference dgamma vs ref", p->dg, p->DG, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * abs_dyx, 0), 0);
        ck_assert_uint_eq(cmp_f32("inference dbeta vs ref", p->db, p->DB, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * abs_dy, 0), 0);
    }
}

/* ================================================== 1. equivalence */

/* The shapes, each for an edge case (VL = 16 or 8 lanes; an NCHW block is
 * 2048 values, rows shorter than 4 vectors go 4 rows at a time, planes of
 * 256 values and up 8, 4 or 2 rows side by side; a channels-last block is
 * 128 pixels, a chunk 1024). */
static const struct {
    const char *why;
    bn_desc d;
} cases[] = {
    {"odd sizes, NCHW: every row ends in a tail", {3, 5, 7, 11, BN_NCHW, 1e-5, 1}},
    {"odd sizes, NHWC: C = 5 < one vector", {3, 5, 7, 11, BN_NHWC, 1e-5, 1}},
    {"(N, D), D = 7", {10, 7, 1, 1, BN_NCHW, 1e-5, 1}},
    {"(N, D), D = 37: 2 full vectors + tail", {9, 37, 1, 1, BN_NHWC, 1e-5, 1}},
    {"C = 1, NCHW", {4, 1, 6, 5, BN_NCHW, 1e-5, 1}},
    {"C = 1, NHWC", {4, 1, 6, 5, BN_NHWC, 1e-5, 1}},
    {"N = 1 with H·W > 1", {1, 3, 5, 7, BN_NCHW, 1e-5, 1}},
    {"N = 1 with H·W > 1, NHWC", {1, 3, 5, 7, BN_NHWC, 1e-5, 1}},
    {"rows longer than a block: 2 pieces of 832/808", {2, 3, 40, 41, BN_NCHW, 1e-5, 1}},
    {"planes >= 256 values read 8 (or 4, 2) rows side by side: 8 + 3 rows, pieces with tails",
     {11, 2, 17, 19, BN_NCHW, 1e-5, 1}},
    {"many short rows per block (48 of 21)", {50, 3, 3, 7, BN_NCHW, 1e-5, 1}},
    {"3 pixel blocks, C = 40: groups and tails", {3, 40, 9, 11, BN_NHWC, 1e-5, 1}},
    {"7x7 rows, 6 of them: 4 rows at a time + 2", {6, 3, 7, 7, BN_NCHW, 1e-5, 1}},
    {"7x7 planes, C = 35: lanes across planes on 16 lanes (2 periods of 16) + 3 channels",
     {5, 35, 7, 7, BN_NCHW, 1e-5, 1}},
    {"5x5 planes, C = 18: lanes across planes on every path (16 + 2 channels)",
     {6, 18, 5, 5, BN_NCHW, 1e-5, 1}},
    {"4x6 planes, N = 37: lanes in 2 blocks of images (32 + 5: 4 at a time + 1)",
     {37, 17, 4, 6, BN_NCHW, 1e-5, 1}},
    {"1800 pixels: 2 chunks merged, C = 20", {2, 20, 30, 30, BN_NHWC, 1e-5, 1}},
    {"3x3 planes (9 values): inference a plane at a time on 16 lanes, runs on 8",
     {5, 6, 3, 3, BN_NCHW, 1e-5, 1}},
    {"C = 300: a 256-channel row sweep + 44 (vectors + tail), 3 pixel blocks",
     {2, 300, 13, 11, BN_NHWC, 1e-5, 1}},
    {"affine off", {2, 3, 5, 6, BN_NCHW, 1e-3, 0}},
    {"large eps, NHWC", {4, 6, 3, 5, BN_NHWC, 0.5, 1}},
    {"m' = 2, the smallest training batch", {2, 4, 1, 1, BN_NHWC, 1e-5, 1}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* _i = isa·N_CASES + case: every op on one shape and one path */
START_TEST(every_op_matches_ref)
{
    int k = _i / N_CASES, c = _i % N_CASES;
    if (!use_isa(k))
        return;
    printf("case: %s\n", cases[c].why);
    prob p = prob_new(&cases[c].d, 100 + (unsigned long)c, 0.5, 1.5);
    check_forward(&p, 0);
    check_backward(&p, 0);

    /* fused ReLU: the same statistics, and y is exactly max(0, plain y) */
    float *plain = falloc(p.n), *mean0 = falloc(p.C);
    memcpy(plain, p.y, p.n * sizeof *plain);
    memcpy(mean0, p.mean, p.C * sizeof *mean0);
    check_forward(&p, 1);
    size_t zeros = 0, bad = 0;
    for (size_t i = 0; i < p.n; i++) {
        float want = plain[i] > 0 ? plain[i] : 0.0f;
        bad += memcmp(&want, &p.y[i], sizeof want) != 0;
        zeros += p.y[i] == 0;
    }
    ck_assert_msg(bad == 0, "%zu relu outputs differ from max(0, y)", bad);
    ck_assert_msg(memcmp(mean0, p.mean, p.C * sizeof *mean0) == 0, "relu changed the mean");
    ck_assert_msg(zeros > 0 && zeros < p.n, "the data must exercise both sides of the ReLU");
    check_backward(&p, 1);
    free(plain), free(mean0);

    check_inference(&p);
    prob_free(&p);
}
END_TEST

/* Running statistics: fast/ runs ref's update through the float switch, so
 * it must be the same bits, for each rule. */
START_TEST(running_update_is_refs)
{
    if (!use_isa(_i))
        return;
    float bm[5] = {0.5f, -1, 2, 1e3f, 0}, bv[5] = {1, 0.25f, 4, 9, 0};
    for (int rule = 0; rule < 3; rule++) {
        float rm_f[5] = {0, 0, 0, 0, 0}, rv_f[5] = {1, 1, 1, 1, 1};
        float rm_r[5] = {0, 0, 0, 0, 0}, rv_r[5] = {1, 1, 1, 1, 1};
        size_t nf = 3, nr = 3;
        ck_assert_int_eq(bn_running_update_fast(rm_f, rv_f, &nf, bm, bv, 5, 7, rule, 0.1), BN_OK);
        ck_assert_int_eq(bn_running_update(BN_IMPL_REF, rm_r, rv_r, &nr, bm, bv, 5, 7, rule, 0.1), BN_OK);
        ck_assert(memcmp(rm_f, rm_r, sizeof rm_f) == 0 && memcmp(rv_f, rv_r, sizeof rv_f) == 0);
        ck_assert_uint_eq(nf, nr);
    }
}
END_TEST

/* The run-time switch with BN_IMPL_FAST calls fast/: the same bits. */
START_TEST(switch_calls_fast)
{
    if (!use_isa(_i))
        return;
    prob p = prob_new(&cases[1].d, 7, 0, 1);
    float *y2 = falloc(p.n), *m2 = falloc(p.C), *v2 = falloc(p.C), *s2 = falloc(p.C);
    ck_assert_int_eq(bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &p.d), BN_OK);
    ck_assert_int_eq(bn_forward_train(BN_IMPL_FAST, y2, m2, v2, s2, p.x, p.g, p.b, &p.d), BN_OK);
    ck_assert(memcmp(y2, p.y, p.n * sizeof *y2) == 0 && memcmp(s2, p.invstd, p.C * 4) == 0);
    const char *why;
    ck_assert_int_eq(bn_impl_available(BN_IMPL_FAST, &why), 1);
    free(y2), free(m2), free(v2), free(s2);
    prob_free(&p);
}
END_TEST

/* ============================================ 2. adversarial inputs */

/* The one-pass formula E[x²] - E[x]² in float, to show an input defeats it. */
static double naive_var_f32(const float *x, size_t n)
{
    float s = 0, q = 0;
    for (size_t i = 0; i < n; i++)
        s += x[i], q += x[i] * x[i];
    float mu = s / (float)n;
    return (double)(q / (float)n - mu * mu);
}

/* 1e7 ± 1, exact in float (spacing 1 near 1e7): mean exactly 1e7, biased
 * variance exactly 1, and xhat = ±1 with eps = 0. */
START_TEST(large_offset_exact_pairs)
{
    if (!use_isa(_i))
        return;
    bn_desc d = bn_desc_make(10, 3, 10, 10, BN_NCHW, 0);
    prob p = prob_new(&d, 11, 0, 1);
    for (size_t k = 0; k < p.n; k++)
        p.x[k] = k % 2 ? 1e7f - 1 : 1e7f + 1;
    prob_rewiden(&p);
    double naive = naive_var_f32(p.x, p.m);
    printf("  1e7 ± 1: one-pass E[x²]-E[x]² in float gives %g (exact: 1)\n", naive);
    ck_assert_msg(fabs(naive - 1) > 0.5, "the input must defeat the one-pass formula");
    check_forward(&p, 0);
    for (size_t c = 0; c < p.C; c++)
        ck_assert_msg(p.mean[c] == 1e7f && p.var[c] == 1.0f, "channel %zu: mean %.9g var %.9g",
                      c, p.mean[c], p.var[c]);
    check_backward(&p, 0);
    prob_free(&p);
}
END_TEST

/* 1e7 + 0.2 ± 0.1 in float is the constant 1e7 (spacing 1): the variance
 * is 0 exactly and y = beta exactly (eps > 0), not noise. */
START_TEST(large_offset_rounds_to_a_constant)
{
    if (!use_isa(_i))
        return;
    bn_desc d = bn_desc_make(4, 3, 9, 13, BN_NHWC, 1e-5);
    prob p = prob_new(&d, 12, 0, 1);
    gsl_rng *r = rng_new(12);
    for (size_t k = 0; k < p.n; k++)
        p.x[k] = (float)(1e7 + 0.2 + 0.1 * (2 * gsl_rng_uniform(r) - 1));
    gsl_rng_free(r);
    prob_rewiden(&p);
    check_forward(&p, 0);
    for (size_t c = 0; c < p.C; c++) {
        ck_assert_msg(p.var[c] == 0 && p.mean[c] == 1e7f, "channel %zu: var %g", c, p.var[c]);
        for (size_t i = 0; i < p.m; i++)
            ck_assert(p.y[index_of(&d, i / (d.H * d.W), c, i % (d.H * d.W))] == p.b[c]);
    }
    check_backward(&p, 0);
    prob_free(&p);
}
END_TEST

/* 1e4 + N(0, 0.01²), float spacing ~1e-3 near 1e4: 26 bits of x² cancel in
 * the one-pass formula (shown), and a mean rounded to one float would move
 * xhat by ~0.05. fast/ keeps the mean in two floats: the generic
 * tolerances, which are relative to sigma, hold. */
START_TEST(large_offset_random)
{
    if (!use_isa(_i / 2))
        return;
    bn_desc d = bn_desc_make(4, 3, 9, 13, _i % 2 ? BN_NHWC : BN_NCHW, 1e-5);
    prob p = prob_new(&d, 13, 1e4, 0.01);
    double naive = naive_var_f32(p.x, p.m);
    check_forward(&p, 0);
    printf("  1e4 ± 0.01: one-pass variance in float %g, ref %g\n", naive, p.VAR[0]);
    ck_assert_msg(fabs(naive - p.VAR[0]) > 0.5 * p.VAR[0], "must defeat the one-pass formula");
    check_backward(&p, 0);
    check_inference(&p);
    prob_free(&p);
}
END_TEST

/* A constant channel (eps > 0): var 0, y = beta, dgamma = 0 exactly; dx
 * = gamma/sqrt(eps)·(dy - mean(dy)) as ref computes it. */
START_TEST(constant_channel)
{
    if (!use_isa(_i / 2))
        return;
    bn_desc d = bn_desc_make(3, 2, 2, 5, _i % 2 ? BN_NHWC : BN_NCHW, 1e-3);
    prob p = prob_new(&d, 14, 0, 1);
    for (size_t i = 0; i < p.m; i++)
        p.x[index_of(&d, i / 10, 0, i % 10)] = 3.7f;
    prob_rewiden(&p);
    check_forward(&p, 0);
    ck_assert_msg(p.var[0] == 0 && p.mean[0] == 3.7f, "var %g", p.var[0]);
    for (size_t i = 0; i < p.m; i++)
        ck_assert(p.y[index_of(&d, i / 10, 0, i % 10)] == p.b[0]);
    check_backward(&p, 0);
    ck_assert_msg(p.dg[0] == 0, "dgamma of a constant channel: %g", p.dg[0]);
    prob_free(&p);
}
END_TEST

/* The first value of each channel is an outlier, 1e4 sigma out (with
 * N(0, 1) for the rest): summing the first block about its first value in
 * one pass would leave 2048·32 roundings of 1e8 in M2 ~ 1e8 + 2e3 (a
 * relative error ~1e-2); fast/ sums a channel's first block in two passes
 * (its mean first), and the later blocks about the running mean. The
 * generic tolerances hold. Rows of 64x64 (3 images: two blocks each; 9
 * images: blocks of 8, 4 or 2 rows side by side, the first about the mean
 * of its first row's piece), or NHWC. */
START_TEST(outlier_first_value)
{
    if (!use_isa(_i / 4))
        return;
    int nhwc = _i % 2;
    size_t N = _i / 2 % 2 ? 9 : 3;  /* NCHW with 9 images: blocks of rows side by side */
    bn_desc d = bn_desc_make(N, 2, 64, 64, nhwc ? BN_NHWC : BN_NCHW, 1e-5);
    prob p = prob_new(&d, 18, 0, 1);
    for (size_t c = 0; c < d.C; c++)
        p.x[index_of(&d, 0, c, 0)] = 1e4f;
    prob_rewiden(&p);
    check_forward(&p, 0);
    check_backward(&p, 0);
    prob_free(&p);
}
END_TEST

/* NCHW, short rows (7x7): a channel's first block is all its rows, summed
 * once about the mean of its first row (kernels.h, moments_nchw). Here
 * that row (image 0) is 1e3 sigma above the others, so the shift fails
 * its check (|mean - shift| > sigma/2) and the block is redone in two
 * passes: this runs that path, in groups of small planes (20 channels: 16
 * + 4; on 16 lanes the 16 add lanes across planes, kernels_lanes.h, and
 * redo their blocks there). (About a first row's mean the rounding grows at most ~rows-fold:
 * with the redo disabled var's error here went from 1.5u to 24u, still
 * within VAR_RTOL, so the check is a margin, not a rescue.) The generic
 * tolerances hold. */
START_TEST(first_row_unlike_the_rest)
{
    if (!use_isa(_i))
        return;
    bn_desc d = bn_desc_make(32, 20, 7, 7, BN_NCHW, 1e-5);
    prob p = prob_new(&d, 20, 0, 1);
    for (size_t c = 0; c < d.C; c++)
        for (size_t i = 0; i < d.H * d.W; i++)
            p.x[index_of(&d, 0, c, i)] += 1e3f;
    prob_rewiden(&p);
    check_forward(&p, 0);
    check_backward(&p, 0);
    prob_free(&p);
}
END_TEST

/* Channels-last, the mean jumps between pixel blocks: x ~ N(0, 1) for the
 * first 128 pixels (a block), N(1e4, 1) after. The later blocks' shift
 * (the mean so far) is then unsafe and fast/ redoes those columns in two
 * passes (kernels.h, row_block_moments): this runs that path on every
 * column of a 256-channel row sweep and of a 44-channel tail (C = 300),
 * and a redo that reads the wrong values fails it (tried). The generic
 * tolerances hold. */
START_TEST(nhwc_mean_jumps_between_blocks)
{
    if (!use_isa(_i))
        return;
    bn_desc d = bn_desc_make(2, 300, 10, 20, BN_NHWC, 1e-5);
    prob p = prob_new(&d, 19, 0, 1);
    for (size_t k = 128 * d.C; k < p.n; k++)
        p.x[k] += 1e4f;
    prob_rewiden(&p);
    check_forward(&p, 0);
    check_backward(&p, 0);
    prob_free(&p);
}
END_TEST

/* NCHW inference names the channel of a NaN in x, and the training
 * backward the channel whose dx overflows, whether they write runs of
 * planes (5x7: 35 values >= a vector), planes one at a time (2x2) or
 * lanes across planes (5x5, C = 18). */
START_TEST(infer_nan_names_its_channel)
{
    if (!use_isa(_i))
        return;
    for (int k = 0; k < 3; k++) {
        /* 5x7 runs of planes; 2x2 plane by plane; 5x5 with C = 18: lanes
         * across planes (kernels_lanes.h) for channels 0-15 */
        static const size_t shape[3][3] = {{4, 5, 7}, {4, 2, 2}, {18, 5, 5}};
        bn_desc d = bn_desc_make(3, shape[k][0], shape[k][1], shape[k][2], BN_NCHW, 1e-5);
        prob p = prob_new(&d, 21, 0, 1);
        p.x[index_of(&d, 1, 2, 3)] = NAN;
        errors_quiet();
        int st = bn_forward_infer_fast(p.y, p.x, p.g, p.b, p.pm, p.pv, &d);
        errors_loud();
        printf("  NaN in x, %zux%zu planes: status %d: %s\n", d.H, d.W, st, bn_last_error());
        ck_assert_int_eq(st, BN_EDOM);
        ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 2"));
        /* training backward: dx overflows in channel 2 (gamma·invstd =
         * 1e40), written along runs of planes (5x7) or plane by plane */
        p.x[index_of(&d, 1, 2, 3)] = 0.5f;
        ck_assert_int_eq(bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &d),
                         BN_OK);
        p.g[2] = 1e10f, p.invstd[2] = 1e30f;
        errors_quiet();
        st = bn_backward_train_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.invstd, p.g, &d);
        errors_loud();
        printf("  dx overflows, %zux%zu planes: status %d: %s\n", d.H, d.W, st, bn_last_error());
        ck_assert_int_eq(st, BN_EDOM);
        ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 2"));
        prob_free(&p);
    }
}
END_TEST

/* Magnitudes, eps = 0 (y has mean 0 and variance 1 at any scale): x ~
 * 1e-18 (squares ~1e-36, near float's smallest normal 1.2e-38: fast/
 * redoes such a channel in double), 1e-15, 1e15, and 1e19 (squares above
 * float's 3.4e38: redone in double too). The generic tolerances hold. */
START_TEST(tiny_and_huge_magnitudes)
{
    static const double scales[] = {1e-18, 1e-15, 1e15, 1e19};
    if (!use_isa(_i / 4))
        return;
    double scale = scales[_i % 4];
    bn_desc d = bn_desc_make(8, 3, 12, 11, _i % 2 ? BN_NHWC : BN_NCHW, 0);
    prob p = prob_new(&d, 15, 0, 1);
    for (size_t k = 0; k < p.n; k++)
        p.x[k] = (float)(p.X[k] * scale);
    prob_rewiden(&p);
    size_t runs = bn_fast_double_path_runs();
    printf("  scale %g:\n", scale);
    check_forward(&p, 0);
    check_backward(&p, 0);
    size_t exact = bn_fast_double_path_runs() - runs;
    printf("  channels redone in double: %zu\n", exact);
    if (scale == 1e-18 || scale == 1e19)
        ck_assert_uint_eq(exact, d.C);  /* the forward's moments; the gradient sums stay in float */
    else
        ck_assert_uint_eq(exact, 0);
    prob_free(&p);
}
END_TEST

/* Beyond float's range, or NaN/Inf in the data: BN_EDOM naming the
 * channel, never an Inf or NaN returned as a result. */
START_TEST(beyond_float_is_an_error)
{
    if (!use_isa(_i))
        return;
    bn_desc d = bn_desc_make(6, 3, 2, 2, BN_NCHW, 0);
    prob p = prob_new(&d, 16, 0, 1);
    struct {
        const char *what, *msg;
        float value;
    } bad[] = {{"deviations 1e20: the variance 1e40 exceeds float", "channel 2", 1e20f},
               {"NaN in x", "channel 2", NAN},
               {"Inf in x", "channel 2", INFINITY}};
    for (int k = 0; k < 3; k++) {
        prob q = prob_new(&d, 16, 0, 1);
        for (size_t i = 0; i < q.m; i++)  /* channel 2 only */
            q.x[index_of(&d, i / 4, 2, i % 4)] = k == 0 ? (i % 2 ? -1e20f : 1e20f)
                                               : (i == 3 ? bad[k].value : 1.0f + (float)i);
        errors_quiet();
        int st = bn_forward_train_fast(q.y, q.mean, q.var, q.invstd, q.x, q.g, q.b, &d);
        errors_loud();
        printf("  %s: status %d: %s\n", bad[k].what, st, bn_last_error());
        ck_assert_int_eq(st, BN_EDOM);
        ck_assert_ptr_nonnull(strstr(bn_last_error(), bad[k].msg));
        prob_free(&q);
    }
    /* dy with a NaN: the backward says so */
    ck_assert_int_eq(bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &d), BN_OK);
    p.dy[index_of(&d, 1, 1, 2)] = NAN;
    errors_quiet();
    int st = bn_backward_train_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.invstd, p.g, &d);
    errors_loud();
    printf("  NaN in dy: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_EDOM);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 1"));
    /* gamma = 3e38 makes gamma·xhat overflow float */
    p.g[0] = 3e38f;
    errors_quiet();
    st = bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &d);
    errors_loud();
    printf("  gamma 3e38: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_EDOM);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 0"));
    prob_free(&p);
}
END_TEST

/* ==================================================== 3. determinism */

/* All outputs of all ops on one problem, to compare bit for bit. */
typedef struct {
    float *v;
    size_t len;
} outputs;

static outputs run_all(const bn_desc *d, const float *x_in, const float *dy_in, size_t align_off)
{
    size_t n, C = d->C;
    ck_assert_int_eq(bn_desc_check(d, 0, &n, NULL), BN_OK);
    outputs o = {falloc(6 * n + 12 * C), 6 * n + 12 * C};
    /* data arrays at align_off floats past a 64-byte boundary */
    size_t bytes = (n + 32) * 4 / 64 * 64 + 64;
    float *xb = aligned_alloc(64, bytes), *dyb = aligned_alloc(64, bytes);
    float *yb = aligned_alloc(64, bytes), *dxb = aligned_alloc(64, bytes);
    ck_assert(xb && dyb && yb && dxb);
    float *x = xb + align_off, *dy = dyb + align_off, *y = yb + align_off, *dx = dxb + align_off;
    memcpy(x, x_in, n * 4), memcpy(dy, dy_in, n * 4);
    float *g = falloc(C), *b = falloc(C), *pm = falloc(C), *pv = falloc(C);
    for (size_t c = 0; c < C; c++)
        g[c] = 1 + 0.1f * (float)c, b[c] = 0.5f - 0.2f * (float)c, pm[c] = 0.1f, pv[c] = 2;
    float *out = o.v, *mean = out + 6 * n, *var = mean + C, *inv = var + C, *dg = inv + C, *db = dg + C;
    ck_assert_int_eq(bn_forward_train_fast(y, mean, var, inv, x, g, b, d), BN_OK);
    memcpy(out, y, n * 4);
    ck_assert_int_eq(bn_backward_train_fast(dx, dg, db, dy, x, mean, inv, g, d), BN_OK);
    memcpy(out + n, dx, n * 4);
    ck_assert_int_eq(bn_forward_train_relu_fast(y, mean + 5 * C, var + 5 * C, inv + 5 * C, x, g, b, d), BN_OK);
    memcpy(out + 2 * n, y, n * 4);
    ck_assert_int_eq(bn_backward_train_relu_fast(dx, dg + 5 * C, db + 5 * C, dy, y, x, mean, inv, g, d), BN_OK);
    memcpy(out + 3 * n, dx, n * 4);
    ck_assert_int_eq(bn_forward_infer_fast(y, x, g, b, pm, pv, d), BN_OK);
    memcpy(out + 4 * n, y, n * 4);
    ck_assert_int_eq(bn_backward_infer_fast(dx, dg + 2 * C, db + 2 * C, dy, x, g, pm, pv, d), BN_OK);
    memcpy(out + 5 * n, dx, n * 4);
    free(xb), free(dyb), free(yb), free(dxb), free(g), free(b), free(pm), free(pv);
    return o;
}

static void same_bits(const char *what, outputs a, outputs b)
{
    size_t diff = 0;
    for (size_t k = 0; k < a.len; k++)
        diff += memcmp(&a.v[k], &b.v[k], sizeof(float)) != 0;
    printf("  %-52s %zu of %zu values differ\n", what, diff, a.len);
    ck_assert_uint_eq(diff, 0);
}

/* Large enough to be shared among threads (>= 64 K values); the NHWC one
 * has 3 chunks of pixels, the (N, D) one a single chunk. */
static const bn_desc det_shapes[] = {
    {4, 24, 30, 30, BN_NCHW, 1e-5, 1},
    {4, 40, 21, 29, BN_NHWC, 1e-5, 1},
    {700, 130, 1, 1, BN_NCHW, 1e-5, 1},
    {3, 300, 17, 23, BN_NHWC, 1e-5, 1},  /* 2 row sweeps of channels, 2 chunks */
    {32, 48, 7, 7, BN_NCHW, 1e-5, 1},    /* small planes: 2 groups (32 + 16) */
    {32, 32, 10, 10, BN_NCHW, 1e-5, 1},  /* small planes of 4+ vectors: 2 groups of 16 */
    {9, 16, 20, 25, BN_NCHW, 1e-5, 1},   /* rows side by side: 8 + 1 */
};
enum { N_DET = sizeof det_shapes / sizeof det_shapes[0] };

static void det_inputs(const bn_desc *d, float **x, float **dy)
{
    size_t n;
    ck_assert_int_eq(bn_desc_check(d, 0, &n, NULL), BN_OK);
    double *X = dalloc(n), *DY = dalloc(n);
    gsl_rng *r = rng_new(77);
    fill_gaussian(r, X, n, 1, 2);
    fill_uniform(r, DY, n, -1, 1);
    gsl_rng_free(r);
    *x = falloc(n), *dy = falloc(n);
    for (size_t k = 0; k < n; k++)
        (*x)[k] = (float)X[k], (*dy)[k] = (float)DY[k];
    free(X), free(DY);
}

/* _i = isa·N_DET + shape: 1, 2, 3 threads; misaligned; streaming; groups;
 * NCHW single-channel items */
START_TEST(bit_identical_across_threads_alignment_stores_groups)
{
    if (!use_isa(_i / N_DET))
        return;
    const bn_desc *d = &det_shapes[_i % N_DET];
    float *x, *dy;
    det_inputs(d, &x, &dy);
    printf("  %s, path %s\n", desc_str(d), bn_fast_isa());
    bn_fast_set_threads(1);
    outputs ref1 = run_all(d, x, dy, 0);
    char what[96];
    for (int t = 2; t <= 3; t++) {
        bn_fast_set_threads(t);
        outputs o = run_all(d, x, dy, 0);
        snprintf(what, sizeof what, "%d threads vs 1", t);
        same_bits(what, o, ref1);
        free(o.v);
    }
    bn_fast_set_threads(2);
    for (size_t off = 1; off <= 3; off += 2) {
        outputs o = run_all(d, x, dy, off);
        snprintf(what, sizeof what, "arrays %zu float(s) past 64-byte alignment", off);
        same_bits(what, o, ref1);
        free(o.v);
    }
    for (int mode = 0; mode <= 1; mode++) {
        bn_fast_force_stream(mode);
        outputs o = run_all(d, x, dy, 0);
        same_bits(mode ? "non-temporal stores forced" : "plain stores forced", o, ref1);
        free(o.v);
    }
    bn_fast_force_stream(-1);
    for (size_t g = 16; g <= 48; g += 16) {
        bn_fast_force_group(g);
        outputs o = run_all(d, x, dy, 0);
        snprintf(what, sizeof what, "channels-last groups of %zu", g);
        same_bits(what, o, ref1);
        free(o.v);
    }
    bn_fast_force_group(0);
    /* single channels give the same bits as groups, except where a group
     * adds lanes across planes (kernels_lanes.h): other sums, as close to
     * ref (every_op_matches_ref) */
    const bn_fast_kernels *K;
    ck_assert_int_eq(bn_fast_kernels_get(&K), BN_OK);
    if (d->layout == BN_NCHW && d->H * d->W > 1 && K->lanes_period(d->H * d->W)) {
        skip("NCHW items of one channel vs groups, bit for bit",
             "a group's 7x7 periods add with lanes across planes, in another order");
    } else {
        bn_fast_force_nchw_single(1);
        outputs o1 = run_all(d, x, dy, 0);
        same_bits("NCHW items of one channel (no groups of small planes)", o1, ref1);
        free(o1.v);
        bn_fast_force_nchw_single(0);
    }
    free(ref1.v), free(x), free(dy);
}
END_TEST

/* y = x and dx = dy in place give the same bits as separate arrays. */
START_TEST(in_place_is_bit_identical)
{
    if (!use_isa(_i / 2))
        return;
    const bn_desc *d = &det_shapes[_i % 2];
    float *x, *dy;
    det_inputs(d, &x, &dy);
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    float *y = falloc(n), *dx = falloc(n), *buf = falloc(n), *g = falloc(C), *b = falloc(C);
    float *mean = falloc(C), *var = falloc(C), *inv = falloc(C), *dg = falloc(C), *db = falloc(C);
    for (size_t c = 0; c < C; c++)
        g[c] = 1.5f, b[c] = -0.25f, var[c] = 1;
    for (int relu = 0; relu < 2; relu++) {
        ck_assert_int_eq((relu ? bn_forward_train_relu_fast : bn_forward_train_fast)(y, mean, var, inv, x, g, b, d), BN_OK);
        memcpy(buf, x, n * 4);
        ck_assert_int_eq((relu ? bn_forward_train_relu_fast : bn_forward_train_fast)(buf, mean, var, inv, buf, g, b, d), BN_OK);
        ck_assert_msg(memcmp(buf, y, n * 4) == 0, "forward y = x in place differs (relu %d)", relu);
        ck_assert_int_eq(bn_backward_train_fast(dx, dg, db, dy, x, mean, inv, g, d), BN_OK);
        memcpy(buf, dy, n * 4);
        ck_assert_int_eq(bn_backward_train_fast(buf, dg, db, buf, x, mean, inv, g, d), BN_OK);
        ck_assert_msg(memcmp(buf, dx, n * 4) == 0, "backward dx = dy in place differs");
    }
    ck_assert_int_eq(bn_forward_infer_fast(y, x, g, b, mean, var, d), BN_OK);
    memcpy(buf, x, n * 4);
    ck_assert_int_eq(bn_forward_infer_fast(buf, buf, g, b, mean, var, d), BN_OK);
    ck_assert_msg(memcmp(buf, y, n * 4) == 0, "inference y = x in place differs");
    ck_assert_int_eq(bn_backward_infer_fast(dx, dg, db, dy, x, g, mean, var, d), BN_OK);
    memcpy(buf, dy, n * 4);
    ck_assert_int_eq(bn_backward_infer_fast(buf, dg, db, buf, x, g, mean, var, d), BN_OK);
    ck_assert_msg(memcmp(buf, dx, n * 4) == 0, "inference dx = dy in place differs");
    printf("  in place: bit-identical, %s, path %s\n", desc_str(d), bn_fast_isa());
    free(x), free(dy), free(y), free(dx), free(buf), free(g), free(b);
    free(mean), free(var), free(inv), free(dg), free(db);
}
END_TEST

/* ============================================ 4. dispatch and errors */

/* BNLAB_FAST_ISA picks the path at the next first call; an unknown name is
 * BN_EINVAL from every call (no silent fallback); unset, CPUID decides. */
START_TEST(environment_picks_the_path)
{
    bn_desc d = bn_desc_make(2, 3, 2, 2, BN_NCHW, 1e-5);
    float x[24], y[24], m[3], v[3];
    for (int i = 0; i < 24; i++)
        x[i] = (float)(i % 7);
    for (int k = 0; k < N_ISA; k++) {
        setenv("BNLAB_FAST_ISA", isas[k], 1);
        bn_fast_force_isa(NULL);
        if (!bn_fast_isa_supported(isas[k])) {
            errors_quiet();
            ck_assert_ptr_null(bn_fast_isa());
            errors_loud();
            printf("  BNLAB_FAST_ISA=%s on a CPU without it: %s\n", isas[k], bn_last_error());
            continue;
        }
        ck_assert_str_eq(bn_fast_isa(), isas[k]);
    }
    setenv("BNLAB_FAST_ISA", "scalar", 1);
    bn_fast_force_isa(NULL);
    ck_assert_str_eq(bn_fast_isa(), "portable");
    setenv("BNLAB_FAST_ISA", "sse9", 1);
    bn_fast_force_isa(NULL);
    d.affine = 0;
    errors_quiet();
    int st = bn_forward_train_fast(y, m, v, NULL, x, NULL, NULL, &d);
    errors_loud();
    printf("  BNLAB_FAST_ISA=sse9: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_EINVAL);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "sse9"));
    unsetenv("BNLAB_FAST_ISA");
    bn_fast_force_isa(NULL);
    const char *chosen = bn_fast_isa();
    ck_assert_ptr_nonnull(chosen);
    printf("  unset: CPUID chose %s\n", chosen);
    ck_assert_int_eq(bn_forward_train_fast(y, m, v, NULL, x, NULL, NULL, &d), BN_OK);
}
END_TEST

/* One bad call: its status, and a message naming the culprit. */
static void expect_status(int *n, int want, const char *msg, int got)
{
    if (got != want || !strstr(bn_last_error(), msg))
        printf("  want %d \"%s\", got %d: %s\n", want, msg, got, bn_last_error());
    ck_assert_int_eq(got, want);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), msg));
    ++*n;
}

/* Bad arguments: the statuses ref gives, and a message naming the culprit. */
START_TEST(bad_arguments)
{
    bn_desc d = bn_desc_make(2, 3, 2, 2, BN_NHWC, 1e-5);
    prob p = prob_new(&d, 17, 0, 1);
    int n = 0;
    errors_quiet();
#define EXPECT(w, m, call) expect_status(&n, (w), (m), (call))
    EXPECT(BN_EFAULT, "'y'", bn_forward_train_fast(NULL, p.mean, p.var, p.invstd, p.x, p.g, p.b, &d));
    EXPECT(BN_EFAULT, "'gamma'", bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, NULL, p.b, &d));
    EXPECT(BN_EFAULT, "'y'", bn_backward_train_relu_fast(p.dx, p.dg, p.db, p.dy, NULL, p.x, p.mean, p.invstd, p.g, &d));
    bn_desc z = d;
    z.C = 0;
    EXPECT(BN_EBADLEN, "zero size", bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &z));
    bn_desc one = bn_desc_make(1, 3, 1, 1, BN_NCHW, 1e-5);
    EXPECT(BN_ESINGLE, "m' = N·H·W = 1", bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &one));
    EXPECT(BN_OK, "", bn_forward_infer_fast(p.y, p.x, p.g, p.b, p.pm, p.pv, &one)); /* inference: allowed */
    p.g[2] = NAN;
    EXPECT(BN_EDOM, "channel 2", bn_forward_train_fast(p.y, p.mean, p.var, p.invstd, p.x, p.g, p.b, &d));
    p.g[2] = 1;
    p.invstd[1] = -1;
    EXPECT(BN_EDOM, "invstd", bn_backward_train_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.invstd, p.g, &d));
    p.pv[0] = -1;
    EXPECT(BN_EDOM, "channel 0", bn_forward_infer_fast(p.y, p.x, p.g, p.b, p.pm, p.pv, &d));
    p.pv[0] = 0;
    bn_desc e0 = d;
    e0.eps = 0;
    EXPECT(BN_EDOM, "zero or subnormal", bn_backward_infer_fast(p.dx, p.dg, p.db, p.dy, p.x, p.g, p.pm, p.pv, &e0));
    EXPECT(BN_ESINGLE, "divides by zero", bn_running_update_fast(p.pm, p.pv, NULL, p.mean, p.var, 3, 1, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
#undef EXPECT
    errors_loud();
    printf("  %d bad calls, each with its status and message\n", n);
    prob_free(&p);
}
END_TEST

static Suite *equivalence_suite(void)
{
    Suite *s = suite_create("fast: every op, layout and path vs ref");
    TCase *tc = tcase_create("equivalence");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_op_matches_ref, 0, N_ISA * N_CASES);
    tcase_add_loop_test(tc, running_update_is_refs, 0, N_ISA);
    tcase_add_loop_test(tc, switch_calls_fast, 0, N_ISA);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *adversarial_suite(void)
{
    Suite *s = suite_create("fast: adversarial inputs");
    TCase *tc = tcase_create("large offsets, constants, magnitudes");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, large_offset_exact_pairs, 0, N_ISA);
    tcase_add_loop_test(tc, large_offset_rounds_to_a_constant, 0, N_ISA);
    tcase_add_loop_test(tc, large_offset_random, 0, 2 * N_ISA);
    tcase_add_loop_test(tc, constant_channel, 0, 2 * N_ISA);
    tcase_add_loop_test(tc, outlier_first_value, 0, 4 * N_ISA);
    tcase_add_loop_test(tc, first_row_unlike_the_rest, 0, N_ISA);
    tcase_add_loop_test(tc, nhwc_mean_jumps_between_blocks, 0, N_ISA);
    tcase_add_loop_test(tc, tiny_and_huge_magnitudes, 0, 4 * N_ISA);
    tcase_add_loop_test(tc, beyond_float_is_an_error, 0, N_ISA);
    tcase_add_loop_test(tc, infer_nan_names_its_channel, 0, N_ISA);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *determinism_suite(void)
{
    Suite *s = suite_create("fast: determinism");
    TCase *tc = tcase_create("bit-identical");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bit_identical_across_threads_alignment_stores_groups, 0, N_DET * N_ISA);
    tcase_add_loop_test(tc, in_place_is_bit_identical, 0, 2 * N_ISA);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *dispatch_suite(void)
{
    Suite *s = suite_create("fast: dispatch and errors");
    TCase *tc = tcase_create("paths and bad input");
    tcase_add_test(tc, environment_picks_the_path);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {equivalence_suite(), adversarial_suite(), determinism_suite(),
                       dispatch_suite()};
    return run_suites(suites, 4) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else /* no fast/ in this build */

int main(void) { return run_not_built(BN_IMPL_FAST, "fast: not built", "fast/ against ref"); }
#endif
