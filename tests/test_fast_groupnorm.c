/*
 * test_fast_groupnorm.c — fast/'s GroupNorm and LayerNorm (float, fast/
 * fast_groupnorm.c) against ref/'s (double, ref/groupnorm.c; Wu & He 2018,
 * Ba et al. 2016), on every instruction-set path this CPU can run (each
 * forced in turn, as BNLAB_FAST_ISA would; one it cannot run is a SKIP):
 *
 *   1. equivalence: every G dividing C (G = 1 through the LayerNorm entry
 *      points), NCHW and NHWC, on shapes chosen for their edge cases: odd
 *      H·W, C not a multiple of the vector width, C = 1 (LN), (N, D) rows,
 *      sets longer than a block (2048 values), many pixel blocks, affine
 *      off, a large eps;
 *   2. large offsets (1e7 ± 1, 1e4 ± 0.01: the one-pass variance fails on
 *      both, shown), constant sets, magnitudes 1e-18 .. 1e19;
 *   3. determinism: bit-identical for 1, 2 and 3 threads, misaligned
 *      arrays, forced plain or non-temporal stores, and in place;
 *   4. the float switch bn_groupnorm_* / bn_layernorm_* for ref, fast
 *      (and cuda: BN_ENOIMPL), and bad input: ref's statuses.
 *
 * Tolerances are per quantity, in units of u = 2^-24, each with its reason
 * below. The inputs are floats; ref runs on them widened to double (exact),
 * and the backward of both gets fast/'s saved float statistics: the
 * differences are fast/'s own rounding.
 *
 * Run: make check, or build/tests/test_fast_groupnorm.
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifdef BNLAB_HAVE_FAST
#include "fast_tests.h"

/* One problem: float inputs and fast's outputs; the inputs in double and
 * ref's outputs. S = N·G sets of m values. */
typedef struct {
    bn_desc d;
    size_t G, n, C, S, m, HW;
    float *x, *dy, *g, *b, *y, *mean, *var, *inv, *dx, *dg, *db;
    double *X, *DY, *GA, *BE, *Y, *MEAN, *VAR, *INV, *DX, *DG, *DB;
} gprob;

/* x ~ N(mu, sd), dy ~ U(-1, 1), gamma in [0.5, 2] (channel 1 negative),
 * beta in [-1, 1], all rounded to float. */
static gprob gp_new(const bn_desc *d, size_t G, unsigned long seed, double mu, double sd)
{
    gprob p = {.d = *d, .G = G, .C = d->C, .S = d->N * G, .HW = d->H * d->W};
    ck_assert_int_eq(bn_desc_check(d, 0, &p.n, NULL), BN_OK);
    p.m = d->C / G * p.HW;
    size_t n = p.n, C = p.C, S = p.S;
    p.x = falloc(n), p.dy = falloc(n), p.y = falloc(n), p.dx = falloc(n);
    p.g = falloc(C), p.b = falloc(C), p.dg = falloc(C), p.db = falloc(C);
    p.mean = falloc(S), p.var = falloc(S), p.inv = falloc(S);
    p.X = dalloc(n), p.DY = dalloc(n), p.Y = dalloc(n), p.DX = dalloc(n);
    p.GA = dalloc(C), p.BE = dalloc(C), p.DG = dalloc(C), p.DB = dalloc(C);
    p.MEAN = dalloc(S), p.VAR = dalloc(S), p.INV = dalloc(S);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.X, n, mu, sd);
    fill_uniform(r, p.DY, n, -1, 1);
    fill_uniform(r, p.GA, C, 0.5, 2);
    fill_uniform(r, p.BE, C, -1, 1);
    gsl_rng_free(r);
    if (C > 1)
        p.GA[1] = -p.GA[1];
    for (size_t k = 0; k < n; k++)
        p.x[k] = (float)p.X[k], p.dy[k] = (float)p.DY[k];
    for (size_t c = 0; c < C; c++)
        p.g[c] = (float)p.GA[c], p.b[c] = (float)p.BE[c];
    widen(p.X, p.x, n), widen(p.DY, p.dy, n), widen(p.GA, p.g, C), widen(p.BE, p.b, C);
    return p;
}

static void gp_rewiden(gprob *p) { widen(p->X, p->x, p->n), widen(p->DY, p->dy, p->n); }

static void gp_free(gprob *p)
{
    void *ptrs[] = {p->x, p->dy, p->y, p->dx, p->g, p->b, p->dg, p->db, p->mean, p->var,
                    p->inv, p->X, p->DY, p->Y, p->DX, p->GA, p->BE, p->DG, p->DB, p->MEAN,
                    p->VAR, p->INV};
    for (size_t k = 0; k < sizeof ptrs / sizeof ptrs[0]; k++)
        free(ptrs[k]);
}

static double gam(const gprob *p, size_t c) { return p->d.affine ? p->GA[c] : 1.0; }
static double bet(const gprob *p, size_t c) { return p->d.affine ? p->BE[c] : 0.0; }

/* fast's forward: LayerNorm's entry point for G = 1. */
static int fast_fwd(gprob *p, float *y, const float *x)
{
    const float *g = p->d.affine ? p->g : NULL, *b = p->d.affine ? p->b : NULL;
    return p->G == 1 ? bn_layernorm_forward_fast(y, p->mean, p->var, p->inv, x, g, b, &p->d)
                     : bn_groupnorm_forward_fast(y, p->mean, p->var, p->inv, x, g, b, &p->d, p->G);
}

static int fast_bwd(gprob *p, float *dx, const float *dy)
{
    const float *g = p->d.affine ? p->g : NULL;
    float *dg = p->d.affine ? p->dg : NULL, *db = p->d.affine ? p->db : NULL;
    return p->G == 1 ? bn_layernorm_backward_fast(dx, dg, db, dy, p->x, p->mean, p->inv, g, &p->d)
                     : bn_groupnorm_backward_fast(dx, dg, db, dy, p->x, p->mean, p->inv, g,
                                                  &p->d, p->G);
}

/* Forward, fast against ref; ref's outputs stay in p. */
static void check_forward(gprob *p)
{
    const bn_desc *d = &p->d;
    ck_assert_msg(fast_fwd(p, p->y, p->x) == BN_OK, "fast forward: %s", bn_last_error());
    const double *G = d->affine ? p->GA : NULL, *B = d->affine ? p->BE : NULL;
    int st = p->G == 1 ? bn_layernorm_forward_ref(p->Y, p->MEAN, p->VAR, p->INV, p->X, G, B, d)
                       : bn_groupnorm_forward_ref(p->Y, p->MEAN, p->VAR, p->INV, p->X, G, B, d, p->G);
    ck_assert_int_eq(st, BN_OK);
    double sigma_max = 0, scale_y = 0;
    size_t cpg = p->C / p->G;
    for (size_t n = 0; n < d->N; n++)
        for (size_t g = 0; g < p->G; g++) {
            size_t s = n * p->G + g;
            sigma_max = fmax(sigma_max, sqrt(p->VAR[s]));
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++) {
                double xhat_max = 0;
                for (size_t i = 0; i < p->HW; i++)
                    xhat_max = fmax(xhat_max, fabs(p->X[index_of(d, n, c, i)] - p->MEAN[s]) * p->INV[s]);
                scale_y = fmax(scale_y, fabs(gam(p, c)) * (xhat_max + 1) + fabs(bet(p, c)));
            }
        }
    printf("  forward %s G=%zu, path %s: atol mean %.3g, y %.3g\n", desc_str(d), p->G,
           bn_fast_isa(), MEAN_ATOL_PER_SIGMA * sigma_max, Y_ATOL_PER_SCALE * scale_y);
    ck_assert_uint_eq(cmp_f32("mean vs ref", p->mean, p->MEAN, p->S,
                              MEAN_ATOL_PER_SIGMA * sigma_max, MEAN_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("var_biased vs ref", p->var, p->VAR, p->S, 0, VAR_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("invstd vs ref", p->inv, p->INV, p->S, 0, VAR_RTOL), 0);
    ck_assert_uint_eq(cmp_f32("y vs ref", p->y, p->Y, p->n, Y_ATOL_PER_SCALE * scale_y, 0), 0);
}

/* Backward, both fed fast's saved float mean and invstd. */
static void check_backward(gprob *p)
{
    const bn_desc *d = &p->d;
    widen(p->MEAN, p->mean, p->S), widen(p->INV, p->inv, p->S);
    ck_assert_msg(fast_bwd(p, p->dx, p->dy) == BN_OK, "fast backward: %s", bn_last_error());
    const double *G = d->affine ? p->GA : NULL;
    int st = p->G == 1
        ? bn_layernorm_backward_ref(p->DX, p->DG, p->DB, p->DY, p->X, p->MEAN, p->INV, G, d)
        : bn_groupnorm_backward_ref(p->DX, p->DG, p->DB, p->DY, p->X, p->MEAN, p->INV, G, d, p->G);
    ck_assert_int_eq(st, BN_OK);
    size_t cpg = p->C / p->G;
    double scale_dx = 0, *abs_dy = dalloc(p->C), *abs_dyx = dalloc(p->C);
    memset(abs_dy, 0, p->C * sizeof *abs_dy), memset(abs_dyx, 0, p->C * sizeof *abs_dyx);
    for (size_t n = 0; n < d->N; n++)
        for (size_t g = 0; g < p->G; g++) {
            size_t s = n * p->G + g;
            double sd = p->INV[s], max_gdy = 0, sum_gdy = 0, sum_gdyx = 0, max_xhat = 0;
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++)
                for (size_t i = 0; i < p->HW; i++) {
                    size_t k = index_of(d, n, c, i);
                    double xhat = (p->X[k] - p->MEAN[s]) * sd, gdy = fabs(gam(p, c) * p->DY[k]);
                    max_gdy = fmax(max_gdy, gdy), sum_gdy += gdy, sum_gdyx += gdy * fabs(xhat);
                    max_xhat = fmax(max_xhat, fabs(xhat));
                    abs_dy[c] += fabs(p->DY[k]), abs_dyx[c] += fabs(p->DY[k] * xhat);
                }
            scale_dx = fmax(scale_dx, sd * (max_gdy + sum_gdy / p->m + max_xhat * sum_gdyx / p->m));
        }
    double ady = 0, adyx = 0;
    for (size_t c = 0; c < p->C; c++)
        ady = fmax(ady, abs_dy[c]), adyx = fmax(adyx, abs_dyx[c]);
    free(abs_dy), free(abs_dyx);
    printf("  backward %s G=%zu, path %s: atol dx %.3g, dgamma %.3g, dbeta %.3g\n",
           desc_str(d), p->G, bn_fast_isa(), DX_ATOL_PER_SCALE * scale_dx,
           GRAD_SUM_ATOL_PER_ABS * adyx, GRAD_SUM_ATOL_PER_ABS * ady);
    ck_assert_uint_eq(cmp_f32("dx vs ref", p->dx, p->DX, p->n, DX_ATOL_PER_SCALE * scale_dx, 0), 0);
    if (d->affine) {
        ck_assert_uint_eq(cmp_f32("dgamma vs ref", p->dg, p->DG, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * adyx, 0), 0);
        ck_assert_uint_eq(cmp_f32("dbeta vs ref", p->db, p->DB, p->C,
                                  GRAD_SUM_ATOL_PER_ABS * ady, 0), 0);
    }
}

/* ================================================== 1. equivalence */

/* Each shape runs in both layouts with every G dividing C whose sets hold
 * >= 2 values (VL = 16 or 8 lanes; a block is 2048 values; a channels-last
 * block 128 pixels). */
static const struct {
    const char *why;
    bn_desc d;
} cases[] = {
    {"odd H·W = 35, C = 6: G = 1, 2, 3, 6", {3, 6, 5, 7, BN_NCHW, 1e-5, 1}},
    {"C = 20: a vector + a tail, H·W = 63", {2, 20, 7, 9, BN_NCHW, 1e-5, 1}},
    {"C = 48: three vectors, groups of 1 to 24 channels", {2, 48, 3, 3, BN_NCHW, 1e-5, 1}},
    {"C = 1: LayerNorm of one channel", {3, 1, 5, 7, BN_NCHW, 1e-5, 1}},
    {"(N, D), D = 37", {5, 37, 1, 1, BN_NCHW, 1e-5, 1}},
    {"(N, D), D = 4106: rows longer than a block", {2, 4106, 1, 1, BN_NCHW, 1e-5, 1}},
    {"sets up to 6560 values, 13 pixel blocks", {2, 4, 40, 41, BN_NCHW, 1e-5, 1}},
    {"affine off", {2, 6, 3, 5, BN_NCHW, 1e-3, 0}},
    {"large eps, N = 1", {1, 12, 3, 5, BN_NCHW, 0.5, 1}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* _i = isa·N_CASES + case */
START_TEST(every_G_matches_ref)
{
    int k = _i / N_CASES, c = _i % N_CASES;
    if (!use_isa(k))
        return;
    printf("case: %s\n", cases[c].why);
    int runs = 0;
    for (int layout = 0; layout < 2; layout++) {
        bn_desc d = cases[c].d;
        d.layout = layout ? BN_NHWC : BN_NCHW;
        for (size_t G = 1; G <= d.C; G++) {
            if (d.C % G != 0 || d.C / G * d.H * d.W < 2)
                continue;
            gprob p = gp_new(&d, G, 500 + 10 * (unsigned long)c + G, 0.5, 1.5);
            check_forward(&p);
            check_backward(&p);
            gp_free(&p);
            runs++;
        }
    }
    ck_assert_int_gt(runs, 0);
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

/* 1e7 ± 1, exact in float: each set's mean is exactly 1e7 and its biased
 * variance exactly 1. _i = isa·2 + layout. */
START_TEST(large_offset_exact_pairs)
{
    if (!use_isa(_i / 2))
        return;
    bn_desc d = bn_desc_make(3, 4, 10, 10, _i % 2 ? BN_NHWC : BN_NCHW, 0);
    for (size_t G = 1; G <= 4; G *= 2) {
        gprob p = gp_new(&d, G, 21, 0, 1);
        for (size_t n = 0; n < d.N; n++)   /* H·W even: every set half +1, half -1 */
            for (size_t c = 0; c < d.C; c++)
                for (size_t i = 0; i < d.H * d.W; i++)
                    p.x[index_of(&d, n, c, i)] = (c + i) % 2 ? 1e7f - 1 : 1e7f + 1;
        gp_rewiden(&p);
        double naive = naive_var_f32(p.x, p.m);
        printf("  1e7 ± 1: one-pass E[x²]-E[x]² in float gives %g (exact: 1)\n", naive);
        ck_assert_msg(fabs(naive - 1) > 0.5, "the input must defeat the one-pass formula");
        check_forward(&p);
        for (size_t s = 0; s < p.S; s++)
            ck_assert_msg(p.mean[s] == 1e7f && p.var[s] == 1.0f, "set %zu: mean %.9g var %.9g",
                          s, p.mean[s], p.var[s]);
        check_backward(&p);
        gp_free(&p);
    }
}
END_TEST

/* 1e4 + N(0, 0.01²): 26 bits of x² cancel in the one-pass formula, and a
 * mean kept in one float would move xhat by ~0.05; the generic tolerances,
 * relative to sigma, hold. _i = isa·2 + layout. */
START_TEST(large_offset_random)
{
    if (!use_isa(_i / 2))
        return;
    bn_desc d = bn_desc_make(4, 6, 9, 13, _i % 2 ? BN_NHWC : BN_NCHW, 1e-5);
    for (size_t G = 1; G <= 6; G *= 3) {
        gprob p = gp_new(&d, G, 22, 1e4, 0.01);
        double naive = naive_var_f32(p.x, p.m);
        check_forward(&p);
        printf("  1e4 ± 0.01: one-pass variance in float %g, ref %g\n", naive, p.VAR[0]);
        ck_assert_msg(fabs(naive - p.VAR[0]) > 0.5 * p.VAR[0], "must defeat the one-pass formula");
        check_backward(&p);
        gp_free(&p);
    }
}
END_TEST

/* A constant set (eps > 0): var 0, y = beta exactly, and dgamma of its
 * channels 0; the backward as ref. _i = isa·2 + layout. */
START_TEST(constant_set)
{
    if (!use_isa(_i / 2))
        return;
    bn_desc d = bn_desc_make(3, 4, 2, 5, _i % 2 ? BN_NHWC : BN_NCHW, 1e-3);
    gprob p = gp_new(&d, 2, 23, 0, 1);
    for (size_t n = 0; n < d.N; n++)          /* group 0: channels 0 and 1 */
        for (size_t c = 0; c < 2; c++)
            for (size_t i = 0; i < 10; i++)
                p.x[index_of(&d, n, c, i)] = 3.7f;
    gp_rewiden(&p);
    check_forward(&p);
    for (size_t n = 0; n < d.N; n++) {
        ck_assert_msg(p.var[2 * n] == 0 && p.mean[2 * n] == 3.7f, "var %g", p.var[2 * n]);
        for (size_t c = 0; c < 2; c++)
            for (size_t i = 0; i < 10; i++)
                ck_assert(p.y[index_of(&d, n, c, i)] == p.b[c]);
    }
    check_backward(&p);
    ck_assert_msg(p.dg[0] == 0 && p.dg[1] == 0, "dgamma of constant sets: %g %g", p.dg[0], p.dg[1]);
    gp_free(&p);
}
END_TEST

/* Magnitudes with eps = 0: 1e-18 (squares near float's smallest normal)
 * and 1e19 (squares beyond float's range): fast/ redoes those sets in
 * double; 1e-15 and 1e15 stay in float. _i = isa·4 + scale. */
START_TEST(tiny_and_huge_magnitudes)
{
    static const double scales[] = {1e-18, 1e-15, 1e15, 1e19};
    if (!use_isa(_i / 4))
        return;
    double scale = scales[_i % 4];
    for (int layout = 0; layout < 2; layout++) {
        bn_desc d = bn_desc_make(3, 6, 12, 11, layout ? BN_NHWC : BN_NCHW, 0);
        gprob p = gp_new(&d, 3, 24, 0, 1);
        for (size_t k = 0; k < p.n; k++)
            p.x[k] = (float)(p.X[k] * scale);
        gp_rewiden(&p);
        printf("  scale %g:\n", scale);
        check_forward(&p);
        check_backward(&p);
        gp_free(&p);
    }
}
END_TEST

/* ==================================================== 3. determinism */

/* Large enough to be shared among threads (>= 64 K values); N = 700 makes
 * runs of 11 examples. */
static const struct {
    bn_desc d;
    size_t G;
} det[] = {
    {{4, 32, 24, 24, BN_NCHW, 1e-5, 1}, 8},
    {{4, 40, 21, 29, BN_NHWC, 1e-5, 1}, 5},
    {{4, 40, 21, 29, BN_NHWC, 1e-5, 1}, 1},
    {{700, 130, 1, 1, BN_NCHW, 1e-5, 1}, 1},
    {{700, 130, 1, 1, BN_NHWC, 1e-5, 1}, 13},
};
enum { N_DET = sizeof det / sizeof det[0] };

typedef struct {
    float *v;
    size_t len;
} outputs;

/* y, dx, mean, var, invstd, dgamma, dbeta of one problem, arrays align_off
 * floats past a 64-byte boundary. */
static outputs run_gn(const bn_desc *d, size_t G, const float *x_in, const float *dy_in,
                      size_t align_off)
{
    size_t n = d->N * d->C * d->H * d->W, C = d->C, S = d->N * G;
    outputs o = {falloc(2 * n + 3 * S + 2 * C), 2 * n + 3 * S + 2 * C};
    size_t bytes = (n + 32) * 4 / 64 * 64 + 64;
    float *xb = aligned_alloc(64, bytes), *dyb = aligned_alloc(64, bytes);
    float *yb = aligned_alloc(64, bytes), *dxb = aligned_alloc(64, bytes);
    ck_assert(xb && dyb && yb && dxb);
    float *x = xb + align_off, *dy = dyb + align_off, *y = yb + align_off, *dx = dxb + align_off;
    memcpy(x, x_in, n * 4), memcpy(dy, dy_in, n * 4);
    float *g = falloc(C), *b = falloc(C);
    for (size_t c = 0; c < C; c++)
        g[c] = 1 + 0.01f * (float)c, b[c] = 0.5f - 0.02f * (float)c;
    float *mean = o.v + 2 * n, *var = mean + S, *inv = var + S, *dg = inv + S, *db = dg + C;
    ck_assert_int_eq(bn_groupnorm_forward_fast(y, mean, var, inv, x, g, b, d, G), BN_OK);
    memcpy(o.v, y, n * 4);
    ck_assert_int_eq(bn_groupnorm_backward_fast(dx, dg, db, dy, x, mean, inv, g, d, G), BN_OK);
    memcpy(o.v + n, dx, n * 4);
    free(xb), free(dyb), free(yb), free(dxb), free(g), free(b);
    return o;
}

static void same_bits(const char *what, outputs a, outputs b)
{
    size_t diff = 0;
    for (size_t k = 0; k < a.len; k++)
        diff += memcmp(&a.v[k], &b.v[k], sizeof(float)) != 0;
    printf("  %-48s %zu of %zu values differ\n", what, diff, a.len);
    ck_assert_uint_eq(diff, 0);
}

static void det_inputs(const bn_desc *d, float **x, float **dy)
{
    size_t n = d->N * d->C * d->H * d->W;
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

/* _i = isa·N_DET + shape: 1, 2, 3 threads; misaligned; stores */
START_TEST(bit_identical_across_threads_alignment_stores)
{
    if (!use_isa(_i / N_DET))
        return;
    const bn_desc *d = &det[_i % N_DET].d;
    size_t G = det[_i % N_DET].G;
    float *x, *dy;
    det_inputs(d, &x, &dy);
    printf("  %s G=%zu, path %s\n", desc_str(d), G, bn_fast_isa());
    bn_fast_set_threads(1);
    outputs one = run_gn(d, G, x, dy, 0);
    char what[96];
    for (int t = 2; t <= 3; t++) {
        bn_fast_set_threads(t);
        outputs o = run_gn(d, G, x, dy, 0);
        snprintf(what, sizeof what, "%d threads vs 1", t);
        same_bits(what, o, one);
        free(o.v);
    }
    bn_fast_set_threads(2);
    for (size_t off = 1; off <= 3; off += 2) {
        outputs o = run_gn(d, G, x, dy, off);
        snprintf(what, sizeof what, "arrays %zu float(s) past 64-byte alignment", off);
        same_bits(what, o, one);
        free(o.v);
    }
    for (int mode = 0; mode <= 1; mode++) {
        bn_fast_force_stream(mode);
        outputs o = run_gn(d, G, x, dy, 0);
        same_bits(mode ? "non-temporal stores forced" : "plain stores forced", o, one);
        free(o.v);
    }
    bn_fast_force_stream(-1);
    free(one.v), free(x), free(dy);
}
END_TEST

/* y = x and dx = dy in place: the same bits as separate arrays.
 * _i = isa·N_DET + shape. */
START_TEST(in_place_is_bit_identical)
{
    if (!use_isa(_i / N_DET))
        return;
    const bn_desc *d = &det[_i % N_DET].d;
    size_t G = det[_i % N_DET].G, n = d->N * d->C * d->H * d->W, C = d->C, S = d->N * G;
    float *x, *dy;
    det_inputs(d, &x, &dy);
    float *y = falloc(n), *dx = falloc(n), *buf = falloc(n), *g = falloc(C), *b = falloc(C);
    float *mean = falloc(S), *var = falloc(S), *inv = falloc(S), *dg = falloc(C), *db = falloc(C);
    for (size_t c = 0; c < C; c++)
        g[c] = 1.5f - 0.01f * (float)c, b[c] = -0.25f;
    ck_assert_int_eq(bn_groupnorm_forward_fast(y, mean, var, inv, x, g, b, d, G), BN_OK);
    memcpy(buf, x, n * 4);
    ck_assert_int_eq(bn_groupnorm_forward_fast(buf, mean, var, inv, buf, g, b, d, G), BN_OK);
    ck_assert_msg(memcmp(buf, y, n * 4) == 0, "forward y = x in place differs");
    ck_assert_int_eq(bn_groupnorm_backward_fast(dx, dg, db, dy, x, mean, inv, g, d, G), BN_OK);
    memcpy(buf, dy, n * 4);
    ck_assert_int_eq(bn_groupnorm_backward_fast(buf, dg, db, buf, x, mean, inv, g, d, G), BN_OK);
    ck_assert_msg(memcmp(buf, dx, n * 4) == 0, "backward dx = dy in place differs");
    printf("  in place: bit-identical, %s G=%zu, path %s\n", desc_str(d), G, bn_fast_isa());
    free(x), free(dy), free(y), free(dx), free(buf), free(g), free(b);
    free(mean), free(var), free(inv), free(dg), free(db);
}
END_TEST

/* ========================================== 4. switch, bad input */

/* The float switch: fast is _fast's bits; ref is ref's double result
 * rounded to float (bit for bit); cuda has no GroupNorm. _i = layout. */
START_TEST(switch_runs_each_impl)
{
    bn_desc d = bn_desc_make(3, 6, 4, 5, _i ? BN_NHWC : BN_NCHW, 1e-5);
    for (size_t G = 1; G <= 6; G++) {
        if (6 % G)
            continue;
        gprob p = gp_new(&d, G, 31, 0.5, 1.5);
        size_t n = p.n, S = p.S, C = p.C;
        float *y2 = falloc(n), *m2 = falloc(S), *v2 = falloc(S), *s2 = falloc(S);
        float *dx2 = falloc(n), *dg2 = falloc(C), *db2 = falloc(C);
        /* fast: same bits */
        ck_assert_int_eq(fast_fwd(&p, p.y, p.x), BN_OK);
        ck_assert_int_eq(G == 1 ? bn_layernorm_forward(BN_IMPL_FAST, y2, m2, v2, s2, p.x, p.g, p.b, &d)
                                : bn_groupnorm_forward(BN_IMPL_FAST, y2, m2, v2, s2, p.x, p.g, p.b, &d, G),
                         BN_OK);
        ck_assert(memcmp(y2, p.y, n * 4) == 0 && memcmp(m2, p.mean, S * 4) == 0 &&
                  memcmp(v2, p.var, S * 4) == 0 && memcmp(s2, p.inv, S * 4) == 0);
        ck_assert_int_eq(fast_bwd(&p, p.dx, p.dy), BN_OK);
        ck_assert_int_eq(G == 1 ? bn_layernorm_backward(BN_IMPL_FAST, dx2, dg2, db2, p.dy, p.x, p.mean, p.inv, p.g, &d)
                                : bn_groupnorm_backward(BN_IMPL_FAST, dx2, dg2, db2, p.dy, p.x, p.mean, p.inv, p.g, &d, G),
                         BN_OK);
        ck_assert(memcmp(dx2, p.dx, n * 4) == 0 && memcmp(dg2, p.dg, C * 4) == 0 &&
                  memcmp(db2, p.db, C * 4) == 0);
        /* ref: ref's doubles rounded once */
        ck_assert_int_eq(G == 1 ? bn_layernorm_forward(BN_IMPL_REF, y2, m2, v2, s2, p.x, p.g, p.b, &d)
                                : bn_groupnorm_forward(BN_IMPL_REF, y2, m2, v2, s2, p.x, p.g, p.b, &d, G),
                         BN_OK);
        ck_assert_int_eq(bn_groupnorm_forward_ref(p.Y, p.MEAN, p.VAR, p.INV, p.X, p.GA, p.BE, &d, G), BN_OK);
        for (size_t k = 0; k < n; k++)
            ck_assert(y2[k] == (float)p.Y[k]);
        for (size_t s = 0; s < S; s++)
            ck_assert(m2[s] == (float)p.MEAN[s] && v2[s] == (float)p.VAR[s] && s2[s] == (float)p.INV[s]);
        widen(p.MEAN, m2, S), widen(p.INV, s2, S);
        ck_assert_int_eq(G == 1 ? bn_layernorm_backward(BN_IMPL_REF, dx2, dg2, db2, p.dy, p.x, m2, s2, p.g, &d)
                                : bn_groupnorm_backward(BN_IMPL_REF, dx2, dg2, db2, p.dy, p.x, m2, s2, p.g, &d, G),
                         BN_OK);
        ck_assert_int_eq(bn_groupnorm_backward_ref(p.DX, p.DG, p.DB, p.DY, p.X, p.MEAN, p.INV, p.GA, &d, G), BN_OK);
        for (size_t k = 0; k < n; k++)
            ck_assert(dx2[k] == (float)p.DX[k]);
        for (size_t c = 0; c < C; c++)
            ck_assert(dg2[c] == (float)p.DG[c] && db2[c] == (float)p.DB[c]);
        free(y2), free(m2), free(v2), free(s2), free(dx2), free(dg2), free(db2);
        gp_free(&p);
    }
    /* cuda: none */
    float x[360] = {0}, y[360], m[3], v[3];
    errors_quiet();
    int st = bn_groupnorm_forward(BN_IMPL_CUDA, y, m, v, NULL, x, NULL, NULL, &d, 1);
    errors_loud();
    printf("  cuda: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_ENOIMPL);
}
END_TEST

static void expect_status(int *n, int want, const char *msg, int got)
{
    if (got != want || !strstr(bn_last_error(), msg))
        printf("  want %d \"%s\", got %d: %s\n", want, msg, got, bn_last_error());
    ck_assert_int_eq(got, want);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), msg));
    ++*n;
}

/* Bad input: fast gives ref's status (through the ref switch too), with a
 * message naming the culprit. */
START_TEST(bad_arguments)
{
    bn_desc d = bn_desc_make(2, 6, 2, 3, BN_NHWC, 1e-5);
    gprob p = gp_new(&d, 3, 41, 0, 1);
    int n = 0;
    errors_quiet();
#define EXPECT(w, m, call) expect_status(&n, (w), (m), (call))
#define BOTH(w, m, fast_call, switch_call) (EXPECT(w, m, fast_call), EXPECT(w, m, switch_call))
    BOTH(BN_EINVAL, "G = 4 groups must divide C = 6",
         bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 4),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 4));
    BOTH(BN_EINVAL, "G = 0", bn_groupnorm_backward_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 0),
         bn_groupnorm_backward(BN_IMPL_REF, p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 0));
    BOTH(BN_EINVAL, "G = 7", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 7),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 7));
    bn_desc one = bn_desc_make(4, 5, 1, 1, BN_NCHW, 1e-5);   /* G = C on (N, D): sets of 1 */
    BOTH(BN_ESINGLE, "one value", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &one, 5),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &one, 5));
    bn_desc c1 = bn_desc_make(4, 1, 1, 1, BN_NCHW, 1e-5);    /* LN of one feature */
    BOTH(BN_ESINGLE, "one value", bn_layernorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &c1),
         bn_layernorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &c1));
    bn_desc z = d;
    z.C = 0;
    EXPECT(BN_EBADLEN, "zero size", bn_layernorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &z));
    BOTH(BN_EFAULT, "'y'", bn_groupnorm_forward_fast(NULL, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3),
         bn_groupnorm_forward(BN_IMPL_REF, NULL, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3));
    BOTH(BN_EFAULT, "'beta'", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, NULL, &d, 3),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, NULL, &d, 3));
    BOTH(BN_EFAULT, "'invstd'", bn_groupnorm_backward_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, NULL, p.g, &d, 3),
         bn_groupnorm_backward(BN_IMPL_REF, p.dx, p.dg, p.db, p.dy, p.x, p.mean, NULL, p.g, &d, 3));
    BOTH(BN_EFAULT, "'dgamma'", bn_groupnorm_backward_fast(p.dx, NULL, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3),
         bn_groupnorm_backward(BN_IMPL_REF, p.dx, NULL, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3));
    p.g[4] = NAN;
    BOTH(BN_EDOM, "channel 4", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3));
    p.g[4] = 1;
    ck_assert_int_eq(bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3), BN_OK);
    float keep = p.inv[4];
    p.inv[4] = -1;
    BOTH(BN_EDOM, "set 4", bn_groupnorm_backward_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3),
         bn_groupnorm_backward(BN_IMPL_REF, p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3));
    p.inv[4] = keep;
    /* NaN or Inf in the data: the set (n·G + g) that holds it */
    p.x[index_of(&d, 1, 3, 2)] = NAN;                   /* example 1, group 1: set 4 */
    BOTH(BN_EDOM, "set 4", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3));
    p.x[index_of(&d, 1, 3, 2)] = INFINITY;
    EXPECT(BN_EDOM, "set 4", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3));
    p.x[index_of(&d, 1, 3, 2)] = 0.5f;
    p.dy[index_of(&d, 0, 5, 1)] = NAN;                  /* example 0, group 2: set 2 */
    EXPECT(BN_EDOM, "set 2", bn_groupnorm_backward_fast(p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3));
    EXPECT(BN_EDOM, "set n·G + g = 2", /* ref's words for the same set */
           bn_groupnorm_backward(BN_IMPL_REF, p.dx, p.dg, p.db, p.dy, p.x, p.mean, p.inv, p.g, &d, 3));
    p.dy[index_of(&d, 0, 5, 1)] = 0;
    /* a constant set with eps = 0: sigma2 + eps = 0 */
    bn_desc e0 = d;
    e0.eps = 0;
    for (size_t c = 0; c < 2; c++)
        for (size_t i = 0; i < 6; i++)
            p.x[index_of(&d, 0, c, i)] = 2.0f;
    BOTH(BN_EDOM, "zero or subnormal", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &e0, 3),
         bn_groupnorm_forward(BN_IMPL_REF, p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &e0, 3));
    /* gamma = 3e38: gamma·xhat overflows float */
    p.g[0] = 3e38f;
    EXPECT(BN_EDOM, "set", bn_groupnorm_forward_fast(p.y, p.mean, p.var, p.inv, p.x, p.g, p.b, &d, 3));
#undef BOTH
#undef EXPECT
    errors_loud();
    printf("  %d bad calls, each with its status and message\n", n);
    gp_free(&p);
}
END_TEST

static Suite *equivalence_suite(void)
{
    Suite *s = suite_create("fast GN/LN: every G, layout and path vs ref");
    TCase *tc = tcase_create("equivalence");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, every_G_matches_ref, 0, N_ISA * N_CASES);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *adversarial_suite(void)
{
    Suite *s = suite_create("fast GN/LN: adversarial inputs");
    TCase *tc = tcase_create("large offsets, constants, magnitudes");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, large_offset_exact_pairs, 0, 2 * N_ISA);
    tcase_add_loop_test(tc, large_offset_random, 0, 2 * N_ISA);
    tcase_add_loop_test(tc, constant_set, 0, 2 * N_ISA);
    tcase_add_loop_test(tc, tiny_and_huge_magnitudes, 0, 4 * N_ISA);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *determinism_suite(void)
{
    Suite *s = suite_create("fast GN/LN: determinism");
    TCase *tc = tcase_create("bit-identical");
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, bit_identical_across_threads_alignment_stores, 0, N_DET * N_ISA);
    tcase_add_loop_test(tc, in_place_is_bit_identical, 0, N_DET * N_ISA);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *switch_suite(void)
{
    Suite *s = suite_create("fast GN/LN: float switch and errors");
    TCase *tc = tcase_create("switch and bad input");
    tcase_add_loop_test(tc, switch_runs_each_impl, 0, 2);
    tcase_add_test(tc, bad_arguments);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {equivalence_suite(), adversarial_suite(), determinism_suite(),
                       switch_suite()};
    return run_suites(suites, 4) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else /* no fast/ in this build */

int main(void) { return run_not_built(BN_IMPL_FAST, "fast GN/LN: not built", "fast/ GroupNorm and LayerNorm against ref"); }
#endif
