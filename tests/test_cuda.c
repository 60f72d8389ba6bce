/*
 * test_cuda.c — cuda/ (float on the GPU) against ref/ (double), and the
 * parts of cuda/ that run without a GPU.
 *
 * Always (CPU side, CI): argument checks answer as ref's do before any
 * device is touched; without a device every operation answers BN_ENODEVICE
 * with CUDA's reason, bn_impl_available(BN_IMPL_CUDA) says 0 and why, and
 * the run-time switch passes the status on; the launch shapes.
 *
 * With a device (otherwise each group prints "SKIP: <what>: no CUDA device
 * (<CUDA's error string>)"):
 *   1. equivalence: every op (training forward, plain and fused ReLU, their
 *      backward, inference forward and backward, running update, every rule)
 *      × NCHW, NHWC, (N, D) on shapes whose sizes do not divide the block
 *      sizes, under several launch shapes (threads per block, blocks per
 *      channel), against ref;
 *   2. adversarial inputs: 1e7 + small integers, a constant channel, a
 *      first value 1e4 sigma out, magnitudes 1e-18 and 1e19; NaN, Inf and
 *      overflow come back as BN_EDOM naming the channel;
 *   3. repeatability (bit-identical reruns, in place, on a non-blocking
 *      stream) and the run-time switch (host arrays staged through the
 *      device) against the device API;
 *   4. 16-bit data (fp16, bf16) with float statistics against ref: forward,
 *      fused backward, inference forward and backward, dgamma and dbeta.
 * A failed running update leaves every channel as it was (group 1).
 *
 * Tolerances, in u = 2^-24, derived next to their definitions from the
 * rounding model of cuda/bn_cuda_math.h (whose formulas test_cuda_math.c
 * checks on the CPU with the same bounds). NOTHING in groups 1-3 has run on
 * a GPU yet: docs/cuda.md.
 *
 * Run: make check, or build/tests/test_cuda.
 */
#include <float.h>
#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

#ifdef BNLAB_HAVE_CUDA
#include <cuda_runtime_api.h>

#include "bn_cuda.h"

/* Under AddressSanitizer on a machine with a GPU driver, the driver maps
 * memory inside ASan's shadow gap unless it is left unprotected (a no-op in
 * builds without ASan, and where no driver is loaded). */
const char *__asan_default_options(void);
const char *__asan_default_options(void) { return "protect_shadow_gap=0"; }

#define U 0x1p-24

/* 1 if a device is there; otherwise a SKIP line for `what` and 0. */
static int device_or_skip(const char *what)
{
    const char *why;
    if (bn_cuda_device_present(&why))
        return 1;
    skip(what, why);
    return 0;
}

/* ------------------------------------------------------ device buffers */

static float *dnew(size_t n)
{
    float *p = NULL;
    ck_assert_msg(cudaMalloc((void **)&p, (n ? n : 1) * sizeof *p) == cudaSuccess,
                  "cudaMalloc of %zu floats", n);
    return p;
}

static float *dput(const float *h, size_t n)
{
    float *p = dnew(n);
    ck_assert(cudaMemcpy(p, h, n * sizeof *p, cudaMemcpyHostToDevice) == cudaSuccess);
    return p;
}

static void dget(float *h, const float *d, size_t n)
{
    ck_assert(cudaMemcpy(h, d, n * sizeof *h, cudaMemcpyDeviceToHost) == cudaSuccess);
}

static float *falloc(size_t n)
{
    float *p = calloc(n ? n : 1, sizeof *p);
    ck_assert_ptr_nonnull(p);
    return p;
}

/* ------------------------------------------------------------ problems */

/* Float inputs, their double copies for ref, ref's outputs. */
typedef struct {
    bn_desc d;
    size_t n, C, m;
    float *x, *dy, *g, *b, *pm, *pv;
    double *X, *DY, *G, *B, *PM, *PV;
} prob;

/* kind 0: x ~ N(0.5, 2); 1: 1e7 + integers in [-4, 4]; 2: the first value
 * of every channel 1e4 sigma out, the rest N(0, 1); 3: N(0, 1)·1e-18;
 * 4: N(0, 1)·1e19. dy ~ U(-1, 1), gamma in [0.5, 2] (negative in channel
 * 0), beta in [-1, 1]. */
static prob prob_new(const bn_desc *d, int kind, unsigned long seed)
{
    prob p = {.d = *d, .C = d->C};
    ck_assert_int_eq(bn_desc_check(d, 0, &p.n, &p.m), BN_OK);
    size_t n = p.n, C = p.C;
    p.x = falloc(n), p.dy = falloc(n), p.g = falloc(C), p.b = falloc(C);
    p.pm = falloc(C), p.pv = falloc(C);
    p.X = dalloc(n), p.DY = dalloc(n), p.G = dalloc(C), p.B = dalloc(C);
    p.PM = dalloc(C), p.PV = dalloc(C);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.X, n, 0, 1);
    fill_uniform(r, p.DY, n, -1, 1);
    fill_uniform(r, p.G, C, 0.5, 2);
    fill_uniform(r, p.B, C, -1, 1);
    fill_uniform(r, p.PM, C, -0.5, 0.5);
    fill_uniform(r, p.PV, C, 0.5, 2);
    gsl_rng_free(r);
    p.G[0] = -p.G[0];
    for (size_t k = 0; k < n; k++) {
        double v = p.X[k];
        switch (kind) {
        case 0: v = 0.5 + 2 * v; break;
        case 1: v = 1e7 + (double)((long)(k * 7 % 9) - 4); break;
        case 3: v *= 1e-18; break;
        case 4: v *= 1e19; break;
        }
        p.x[k] = (float)v, p.X[k] = p.x[k];
        p.dy[k] = (float)p.DY[k], p.DY[k] = p.dy[k];
    }
    if (kind == 2)
        for (size_t c = 0; c < C; c++) {
            p.x[index_of(d, 0, c, 0)] = 1e4f;
            p.X[index_of(d, 0, c, 0)] = 1e4;
        }
    for (size_t c = 0; c < C; c++) {
        p.g[c] = (float)p.G[c], p.G[c] = p.g[c], p.b[c] = (float)p.B[c], p.B[c] = p.b[c];
        p.pm[c] = (float)p.PM[c], p.PM[c] = p.pm[c], p.pv[c] = (float)p.PV[c], p.PV[c] = p.pv[c];
    }
    return p;
}

static void prob_free(prob *p)
{
    void *v[] = {p->x, p->dy, p->g, p->b, p->pm, p->pv, p->X, p->DY, p->G, p->B, p->PM, p->PV};
    for (size_t k = 0; k < sizeof v / sizeof v[0]; k++)
        free(v[k]);
}

/* ------------------------------------------------------------- checks */

/* The launch shapes every case runs under: threads per block, blocks per
 * channel (0 = the default choice). */
static const int launch_shapes[][2] = {{0, 0}, {32, 1}, {64, 3}, {96, 5}, {1024, 2}};
enum { N_LAUNCH = sizeof launch_shapes / sizeof launch_shapes[0] };

/* The bounds of a training forward, from ref's statistics (see below). */
typedef struct {
    double mean_atol, var_atol, inv_rtol, y_atol, y_max;
} fwd_tol;

static fwd_tol forward_tolerances(const prob *p, const double *MEAN, const double *VAR,
                                  const double *INV)
{
    const bn_desc *d = &p->d;
    size_t C = p->C, m = p->m;
    int aff = d->affine;
    /* The bounds of test_cuda_math.c: a thread holds <= K values, each
     * shifted value within the channel's range R of its first one. */
    bn_cu_shape s = bn_cu_shape_of(d);
    long long lanes = s.nhwc ? s.threads / 32 : s.threads;
    double K = ceil((double)m / (double)(s.blocks * lanes));
    double R = 0, mu_max = 0, var_min = INFINITY, scale_y = 0;
    double *v = dalloc(m);
    for (size_t c = 0; c < C; c++) {
        channel_values(v, p->X, d, c);
        double lo = v[0], hi = v[0];
        for (size_t i = 0; i < m; i++)
            lo = fmin(lo, v[i]), hi = fmax(hi, v[i]);
        R = fmax(R, hi - lo), mu_max = fmax(mu_max, fabs(MEAN[c]));
        var_min = fmin(var_min, VAR[c] + d->eps);
        double xm = fmax(fabs(hi - MEAN[c]), fabs(lo - MEAN[c])) * INV[c];
        scale_y = fmax(scale_y, fabs(aff ? p->G[c] : 1) * (xm + 1) + fabs(aff ? p->B[c] : 0));
    }
    free(v);
    fwd_tol t;
    /* mean: Welford's (2K + 2)u·R, the double merges, one rounding (u) */
    t.mean_atol = (2 * K + 2) * U * R + 8 * DBL_EPSILON * mu_max;
    /* var: 4(2K + 3)u·R², the merges' 128 DBL_EPSILON·|mu|·R, rounding 2u */
    t.var_atol = 4 * (2 * K + 3) * U * R * R + 128 * DBL_EPSILON * mu_max * R;
    /* invstd = (var + eps)^-1/2: half var's relative error, plus 2u */
    t.inv_rtol = 2 * U + 0.5 * t.var_atol / var_min;
    /* y: 6u of its terms (test_cuda_math.c), plus invstd's and the mean's
     * errors carried through gamma·xhat */
    t.y_atol = scale_y * (6 * U + t.inv_rtol) + scale_y * t.mean_atol * sqrt(1 / var_min);
    t.y_max = scale_y;
    return t;
}

/* Training forward (relu 0/1) and its backward on the device against ref. */
static void check_training(prob *p, int relu)
{
    const bn_desc *d = &p->d;
    size_t n = p->n, C = p->C, m = p->m;
    int aff = d->affine;
    float *dx_ = dput(p->x, n), *dg_ = dput(p->g, C), *db_ = dput(p->b, C), *ddy = dput(p->dy, n);
    float *dy_out = dnew(n), *dmean = dnew(C), *dvar = dnew(C), *dinv = dnew(C);
    float *ddx = dnew(n), *ddg = dnew(C), *ddb = dnew(C);
    int st = (relu ? bn_forward_train_relu_cuda : bn_forward_train_cuda)(
        dy_out, dmean, dvar, dinv, dx_, aff ? dg_ : NULL, aff ? db_ : NULL, d, NULL);
    ck_assert_msg(st == BN_OK, "cuda forward: %s", bn_last_error());
    float *y = falloc(n), *mean = falloc(C), *var = falloc(C), *inv = falloc(C);
    dget(y, dy_out, n), dget(mean, dmean, C), dget(var, dvar, C), dget(inv, dinv, C);
    double *Y = dalloc(n), *MEAN = dalloc(C), *VAR = dalloc(C), *INV = dalloc(C);
    double *G = aff ? p->G : NULL, *B = aff ? p->B : NULL;
    ck_assert_int_eq((relu ? bn_forward_train_relu_ref : bn_forward_train_ref)(
                         Y, MEAN, VAR, INV, p->X, G, B, d), BN_OK);

    fwd_tol t = forward_tolerances(p, MEAN, VAR, INV);
    double mean_atol = t.mean_atol, var_atol = t.var_atol, inv_rtol = t.inv_rtol;
    double y_atol = t.y_atol;
    double *v = dalloc(m);
    ck_assert_uint_eq(cmp_f32("mean vs ref", mean, MEAN, C, mean_atol, U), 0);
    ck_assert_uint_eq(cmp_f32("var_biased vs ref", var, VAR, C, var_atol, 2 * U), 0);
    ck_assert_uint_eq(cmp_f32("invstd vs ref", inv, INV, C, 0, inv_rtol), 0);
    ck_assert_uint_eq(cmp_f32("y vs ref", y, Y, n, y_atol, 0), 0);

    /* backward: both sides fed the device's saved mean and invstd */
    st = (relu ? bn_backward_train_relu_cuda(ddx, aff ? ddg : NULL, aff ? ddb : NULL, ddy,
                                             dy_out, dx_, dmean, dinv, aff ? dg_ : NULL, d, NULL)
               : bn_backward_train_cuda(ddx, aff ? ddg : NULL, aff ? ddb : NULL, ddy, dx_,
                                        dmean, dinv, aff ? dg_ : NULL, d, NULL));
    ck_assert_msg(st == BN_OK, "cuda backward: %s", bn_last_error());
    float *dx = falloc(n), *dgam = falloc(C), *dbet = falloc(C);
    dget(dx, ddx, n), dget(dgam, ddg, C), dget(dbet, ddb, C);
    double *Yd = dalloc(n), *DX = dalloc(n), *DG = dalloc(C), *DB = dalloc(C);
    for (size_t k = 0; k < n; k++)
        Yd[k] = y[k];
    for (size_t c = 0; c < C; c++)
        MEAN[c] = mean[c], INV[c] = inv[c];
    ck_assert_int_eq(relu ? bn_backward_train_relu_ref(DX, DG, DB, p->DY, Yd, p->X, MEAN, INV, G, d)
                          : bn_backward_train_ref(DX, DG, DB, p->DY, p->X, MEAN, INV, G, d), BN_OK);
    double scale_dx = 0, abs_dz = 0, abs_dzx = 0, *dys = dalloc(m), *ys = dalloc(m);
    for (size_t c = 0; c < C; c++) {
        channel_values(v, p->X, d, c), channel_values(dys, p->DY, d, c), channel_values(ys, Yd, d, c);
        double sdz = 0, sdzx = 0, sx = 0, mdz = 0, mx = 0;
        for (size_t i = 0; i < m; i++) {
            double dz = relu && !(ys[i] > 0) ? 0 : dys[i], xh = (v[i] - MEAN[c]) * INV[c];
            sdz += fabs(dz), sdzx += fabs(dz * xh), sx += fabs(xh);
            mdz = fmax(mdz, fabs(dz)), mx = fmax(mx, fabs(xh));
        }
        abs_dz = fmax(abs_dz, sdz), abs_dzx = fmax(abs_dzx, sdzx);
        /* 8u of |gamma|·s·(|dz| + mean|dz| + (|xhat| + mean|xhat|)·mean|dz·xhat|) */
        scale_dx = fmax(scale_dx, fabs(aff ? p->G[c] : 1) * INV[c] *
                                      (mdz + sdz / m + (mx + sx / m) * sdzx / m));
    }
    ck_assert_uint_eq(cmp_f32("dx vs ref", dx, DX, n, 8 * U * scale_dx, 0), 0);
    if (aff) {
        /* float xhat (2u) times dz, summed in double, rounded once: 3u */
        ck_assert_uint_eq(cmp_f32("dgamma vs ref", dgam, DG, C, 3 * U * abs_dzx, 0), 0);
        ck_assert_uint_eq(cmp_f32("dbeta vs ref", dbet, DB, C, 2 * U * abs_dz, 0), 0);
    }
    float *bufs[] = {dx_, dg_, db_, ddy, dy_out, dmean, dvar, dinv, ddx, ddg, ddb};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
    free(y), free(mean), free(var), free(inv), free(dx), free(dgam), free(dbet);
    free(Y), free(MEAN), free(VAR), free(INV), free(v), free(Yd), free(DX), free(DG), free(DB);
    free(dys), free(ys);
}

/* Inference forward and backward with the population statistics pm, pv. */
static void check_inference(prob *p)
{
    const bn_desc *d = &p->d;
    size_t n = p->n, C = p->C, m = p->m;
    int aff = d->affine;
    float *dx_ = dput(p->x, n), *ddy = dput(p->dy, n), *dg_ = dput(p->g, C), *db_ = dput(p->b, C);
    float *dpm = dput(p->pm, C), *dpv = dput(p->pv, C), *dy_out = dnew(n), *ddx = dnew(n);
    float *ddg = dnew(C), *ddb = dnew(C);
    ck_assert_msg(bn_forward_infer_cuda(dy_out, dx_, aff ? dg_ : NULL, aff ? db_ : NULL, dpm, dpv,
                                        d, NULL) == BN_OK, "%s", bn_last_error());
    ck_assert_msg(bn_backward_infer_cuda(ddx, aff ? ddg : NULL, aff ? ddb : NULL, ddy, dx_,
                                         aff ? dg_ : NULL, dpm, dpv, d, NULL) == BN_OK,
                  "%s", bn_last_error());
    float *y = falloc(n), *dx = falloc(n), *dgam = falloc(C), *dbet = falloc(C);
    dget(y, dy_out, n), dget(dx, ddx, n), dget(dgam, ddg, C), dget(dbet, ddb, C);
    double *Y = dalloc(n), *DX = dalloc(n), *DG = dalloc(C), *DB = dalloc(C);
    double *G = aff ? p->G : NULL, *B = aff ? p->B : NULL;
    ck_assert_int_eq(bn_forward_infer_ref(Y, p->X, G, B, p->PM, p->PV, d), BN_OK);
    ck_assert_int_eq(bn_backward_infer_ref(DX, DG, DB, p->DY, p->X, G, p->PM, p->PV, d), BN_OK);
    double scale_y = 0, abs_dy = 0, abs_dyx = 0, *xs = dalloc(m), *dys = dalloc(m);
    for (size_t c = 0; c < C; c++) {
        double s = 1 / sqrt(p->PV[c] + d->eps), a = fabs(aff ? p->G[c] : 1) * s;
        double dxm = 0, sdy = 0, sdyx = 0;
        channel_values(xs, p->X, d, c), channel_values(dys, p->DY, d, c);
        for (size_t i = 0; i < m; i++) {
            dxm = fmax(dxm, fabs(xs[i] - p->PM[c]));
            sdy += fabs(dys[i]), sdyx += fabs(dys[i] * (xs[i] - p->PM[c]) * s);
        }
        scale_y = fmax(scale_y, a * dxm + fabs(aff ? p->B[c] : 0));
        abs_dy = fmax(abs_dy, sdy), abs_dyx = fmax(abs_dyx, sdyx);
    }
    /* y: 6u of |a|·|x - mean| + |beta|;  dx = fl(a·dy): 3u */
    ck_assert_uint_eq(cmp_f32("inference y vs ref", y, Y, n, 6 * U * scale_y, 0), 0);
    ck_assert_uint_eq(cmp_f32("inference dx vs ref", dx, DX, n, 0, 3 * U), 0);
    if (aff) {
        /* xhat in float: x - mean, invstd rounded to float (ref keeps it in
         * double) and their product, 3u; times dy, summed in double, rounded
         * once: 4u of Σ|dy·xhat| */
        ck_assert_uint_eq(cmp_f32("inference dgamma vs ref", dgam, DG, C, 4 * U * abs_dyx, 0), 0);
        ck_assert_uint_eq(cmp_f32("inference dbeta vs ref", dbet, DB, C, 2 * U * abs_dy, 0), 0);
    }
    float *bufs[] = {dx_, ddy, dg_, db_, dpm, dpv, dy_out, ddx, ddg, ddb};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
    free(y), free(dx), free(dgam), free(dbet), free(Y), free(DX), free(DG), free(DB);
    free(xs), free(dys);
}

/* ====================================================== 1. equivalence */

static const struct {
    const char *why;
    bn_desc d;
} cases[] = {
    {"odd sizes, NCHW", {3, 5, 7, 11, BN_NCHW, 1e-5, 1}},
    {"odd sizes, NHWC: C = 5 < a 32-channel tile", {3, 5, 7, 11, BN_NHWC, 1e-5, 1}},
    {"(N, D), D = 7", {10, 7, 1, 1, BN_NCHW, 1e-5, 1}},
    {"(N, D), D = 37: a tile and a tail", {9, 37, 1, 1, BN_NHWC, 1e-5, 1}},
    {"C = 1, NCHW", {4, 1, 6, 5, BN_NCHW, 1e-5, 1}},
    {"N = 1, H·W = 35", {1, 3, 5, 7, BN_NCHW, 1e-5, 1}},
    {"m' = 2", {2, 4, 1, 1, BN_NHWC, 1e-5, 1}},
    {"2 x 40 x 41 per channel: many values per thread", {2, 3, 40, 41, BN_NCHW, 1e-5, 1}},
    {"NHWC, C = 70: 3 tiles, 891 pixels", {9, 70, 9, 11, BN_NHWC, 1e-5, 1}},
    {"no affine, large eps", {4, 6, 3, 5, BN_NHWC, 0.5, 0}},
};
enum { N_CASES = sizeof cases / sizeof cases[0] };

/* _i = case·N_LAUNCH + launch shape */
START_TEST(every_op_matches_ref)
{
    if (!device_or_skip("cuda equivalence: every op x layout x launch shape vs ref"))
        return;
    int c = _i / N_LAUNCH, l = _i % N_LAUNCH;
    bn_cuda_force_launch(launch_shapes[l][0], launch_shapes[l][1]);
    bn_cu_shape s = bn_cu_shape_of(&cases[c].d);
    printf("  %s: %s, threads %d, %d blocks per channel\n", cases[c].why,
           desc_str(&cases[c].d), s.threads, s.blocks);
    prob p = prob_new(&cases[c].d, 0, 10 + (unsigned long)_i);
    check_training(&p, 0);
    check_training(&p, 1);
    check_inference(&p);
    prob_free(&p);
    bn_cuda_force_launch(0, 0);
}
END_TEST

/* Every rule, against ref, on device arrays. */
START_TEST(running_update_every_rule)
{
    if (!device_or_skip("cuda running update vs ref"))
        return;
    enum { C = 5 };
    float mean[C] = {0.5f, -3, 1e6f, 0, 2}, var[C] = {2, 0.25f, 1e-6f, 0, 7};
    double M[C], V[C];
    for (int c = 0; c < C; c++)
        M[c] = mean[c], V[c] = var[c];
    float *dm = dput(mean, C), *dv = dput(var, C);
    for (int rule = 0; rule < 3; rule++) {
        float rm[C] = {0, 1, 2, 3, 4}, rv[C] = {1, 1, 0.5f, 4, 1};
        double RM[C], RV[C];
        for (int c = 0; c < C; c++)
            RM[c] = rm[c], RV[c] = rv[c];
        float *drm = dput(rm, C), *drv = dput(rv, C);
        size_t nb = 3, NB = 3;
        ck_assert_int_eq(bn_running_update_cuda(drm, drv, &nb, dm, dv, C, 10,
                                                (bn_running_rule)rule, 0.1, NULL), BN_OK);
        ck_assert_int_eq(bn_running_update_ref(RM, RV, &NB, M, V, C, 10, (bn_running_rule)rule, 0.1),
                         BN_OK);
        dget(rm, drm, C), dget(rv, drv, C);
        ck_assert_uint_eq(nb, NB);
        /* the same double formula, rounded once: 1 float ulp (2u) */
        ck_assert_uint_eq(cmp_f32("running_mean vs ref", rm, RM, C, 0, 2 * U), 0);
        ck_assert_uint_eq(cmp_f32("running_var vs ref", rv, RV, C, 0, 2 * U), 0);
        cudaFree(drm), cudaFree(drv);
    }
    /* All channels or none (as ref and fast): a bad channel 3 must leave
     * every channel, and the counter, as they were. */
    float bad_var[C] = {2, 0.25f, 1e-6f, -1, 7}, rm[C] = {0, 1, 2, 3, 4}, rv[C] = {1, 1, 0.5f, 4, 1};
    float rm2[C], rv2[C], *dbv = dput(bad_var, C), *drm = dput(rm, C), *drv = dput(rv, C);
    size_t nb = 3;
    errors_quiet();
    int st = bn_running_update_cuda(drm, drv, &nb, dm, dbv, C, 10,
                                    BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1, NULL);
    errors_loud();
    ck_assert_int_eq(st, BN_EDOM);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 3"));
    dget(rm2, drm, C), dget(rv2, drv, C);
    ck_assert_msg(memcmp(rm, rm2, sizeof rm) == 0 && memcmp(rv, rv2, sizeof rv) == 0,
                  "running statistics changed by a failed update");
    ck_assert_uint_eq(nb, 3);
    cudaFree(dbv), cudaFree(drm), cudaFree(drv);
    cudaFree(dm), cudaFree(dv);
}
END_TEST

/* ================================================= 2. adversarial */

static const char *kind_name[] = {"N(0.5, 2)", "1e7 + integers in [-4, 4]",
                                  "first value of each channel 1e4 sigma out",
                                  "magnitudes 1e-18", "magnitudes 1e19"};

/* _i = data kind (1..4) x layout */
START_TEST(adversarial_data)
{
    if (!device_or_skip("cuda adversarial inputs vs ref"))
        return;
    int kind = 1 + _i / 2;
    bn_desc d = {4, 3, 9, 13, _i % 2 ? BN_NHWC : BN_NCHW, 1e-5, 1};
    if (kind == 3)
        d.eps = 1e-40;  /* sigma² = 1e-36: eps must not hide it */
    printf("  %s, %s\n", kind_name[kind], desc_str(&d));
    prob p = prob_new(&d, kind, 30 + (unsigned long)_i);
    check_training(&p, 0);
    prob_free(&p);
}
END_TEST

/* A constant channel normalizes to exactly beta (var = 0, x - mean = 0). */
START_TEST(constant_channel_gives_beta)
{
    if (!device_or_skip("cuda constant channel"))
        return;
    bn_desc d = bn_desc_make(3, 2, 5, 7, BN_NHWC, 1e-5);
    prob p = prob_new(&d, 0, 3);
    for (size_t k = 0; k < p.n; k++)
        if (k % 2 == 0)  /* NHWC: channel 0 */
            p.x[k] = 1e7f + 1, p.X[k] = p.x[k];
    float *dx_ = dput(p.x, p.n), *dg = dput(p.g, 2), *db = dput(p.b, 2), *dy = dnew(p.n);
    float *dm = dnew(2), *dv = dnew(2), y[2 * 105], mean[2], var[2];
    ck_assert_int_eq(bn_forward_train_cuda(dy, dm, dv, NULL, dx_, dg, db, &d, NULL), BN_OK);
    dget(y, dy, p.n), dget(mean, dm, 2), dget(var, dv, 2);
    ck_assert(mean[0] == 1e7f + 1 && var[0] == 0);
    for (size_t k = 0; k < p.n; k += 2)
        ck_assert(y[k] == p.b[0]);
    printf("  constant 1e7 + 1: mean exact, var 0, y = beta exactly\n");
    cudaFree(dx_), cudaFree(dg), cudaFree(db), cudaFree(dy), cudaFree(dm), cudaFree(dv);
    prob_free(&p);
}
END_TEST

/* NaN, Inf, overflow: BN_EDOM naming the channel, never numbers. */
START_TEST(bad_values_are_errors)
{
    if (!device_or_skip("cuda NaN / Inf / overflow are errors"))
        return;
    bn_desc d = bn_desc_make(4, 3, 2, 2, BN_NCHW, 1e-5);
    prob p = prob_new(&d, 0, 16);
    size_t n = p.n;
    float *dg = dput(p.g, 3), *db = dput(p.b, 3), *dy = dnew(n), *dm = dnew(3), *dv = dnew(3);
    float *di = dnew(3), *ddx = dnew(n), *ddg = dnew(3), *ddb = dnew(3);
    float bad[] = {NAN, INFINITY};
    for (int k = 0; k < 2; k++) {
        float *x = falloc(n);
        memcpy(x, p.x, n * 4);
        x[index_of(&d, 1, 2, 3)] = bad[k];
        float *dx_ = dput(x, n);
        errors_quiet();
        int st = bn_forward_train_cuda(dy, dm, dv, di, dx_, dg, db, &d, NULL);
        errors_loud();
        printf("  %g in x: status %d: %s\n", bad[k], st, bn_last_error());
        ck_assert_int_eq(st, BN_EDOM);
        ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 2"));
        cudaFree(dx_), free(x);
    }
    float *dx_ = dput(p.x, n);
    ck_assert_int_eq(bn_forward_train_cuda(dy, dm, dv, di, dx_, dg, db, &d, NULL), BN_OK);
    float *dyv = falloc(n);
    memcpy(dyv, p.dy, n * 4);
    dyv[index_of(&d, 0, 1, 1)] = NAN;
    float *ddy = dput(dyv, n);
    errors_quiet();
    int st = bn_backward_train_cuda(ddx, ddg, ddb, ddy, dx_, dm, di, dg, &d, NULL);
    errors_loud();
    printf("  NaN in dy: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_EDOM);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 1"));
    p.g[0] = 3e38f;
    float *dg_big = dput(p.g, 3);
    errors_quiet();
    st = bn_forward_train_cuda(dy, dm, dv, di, dx_, dg_big, db, &d, NULL);
    errors_loud();
    printf("  gamma 3e38: status %d: %s\n", st, bn_last_error());
    ck_assert_int_eq(st, BN_EDOM);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "channel 0"));
    float *bufs[] = {dg, db, dy, dm, dv, di, ddx, ddg, ddb, dx_, ddy, dg_big};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
    free(dyv);
    prob_free(&p);
}
END_TEST

/* ================================ 3. repeatability and the switch */

START_TEST(reruns_in_place_and_switch_are_bit_identical)
{
    if (!device_or_skip("cuda repeatability, in place, run-time switch"))
        return;
    bn_desc d = bn_desc_make(5, 9, 7, 6, _i ? BN_NHWC : BN_NCHW, 1e-5);
    prob p = prob_new(&d, 0, 21);
    size_t n = p.n, C = p.C;
    float *dx_ = dput(p.x, n), *dg = dput(p.g, C), *db = dput(p.b, C), *dy1 = dnew(n);
    float *dy2 = dput(p.x, n), *dm = dnew(C), *dv = dnew(C), *di = dnew(C);
    float *y1 = falloc(n), *y2 = falloc(n), *y3 = falloc(n), *m = falloc(C), *v = falloc(C);
    float *s = falloc(C);
    ck_assert_int_eq(bn_forward_train_cuda(dy1, dm, dv, di, dx_, dg, db, &d, NULL), BN_OK);
    dget(y1, dy1, n);
    ck_assert_int_eq(bn_forward_train_cuda(dy1, dm, dv, di, dx_, dg, db, &d, NULL), BN_OK);
    dget(y2, dy1, n);
    ck_assert(memcmp(y1, y2, n * 4) == 0);
    ck_assert_int_eq(bn_forward_train_cuda(dy2, dm, dv, di, dy2, dg, db, &d, NULL), BN_OK);
    dget(y2, dy2, n);
    ck_assert_msg(memcmp(y1, y2, n * 4) == 0, "in place (y = x) differs");
    ck_assert_int_eq(bn_forward_train(BN_IMPL_CUDA, y3, m, v, s, p.x, p.g, p.b, &d), BN_OK);
    ck_assert_msg(memcmp(y1, y3, n * 4) == 0, "the switch (host arrays) differs");
    /* On a non-blocking stream (not ordered with the legacy default stream):
     * a memset, copy or launch of the call that went to stream 0 instead of
     * the caller's could race with the rest and change the result. */
    cudaStream_t strm;
    ck_assert(cudaStreamCreateWithFlags(&strm, cudaStreamNonBlocking) == cudaSuccess);
    ck_assert(cudaMemsetAsync(dy2, 0xff, n * 4, strm) == cudaSuccess);  /* NaN: stale y shows */
    ck_assert_int_eq(bn_forward_train_cuda(dy2, dm, dv, di, dx_, dg, db, &d, strm), BN_OK);
    ck_assert(cudaMemcpyAsync(y3, dy2, n * 4, cudaMemcpyDeviceToHost, strm) == cudaSuccess);
    ck_assert(cudaStreamSynchronize(strm) == cudaSuccess);
    ck_assert_msg(memcmp(y1, y3, n * 4) == 0, "on a non-blocking stream differs");
    ck_assert(cudaStreamDestroy(strm) == cudaSuccess);
    printf("  %s: rerun, in place, the switch and a non-blocking stream bit-identical\n",
           desc_str(&d));
    float *bufs[] = {dx_, dg, db, dy1, dy2, dm, dv, di};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
    free(y1), free(y2), free(y3), free(m), free(v), free(s);
    prob_free(&p);
}
END_TEST

/* ============================================ 4. 16-bit data arrays */

/* Host-side 16-bit encodings, for the tests' inputs (values k/64 with
 * |k| <= 255: exact in both formats) and the outputs' decoding. */
static bn_f16 f16_exact(float v)
{
    bn_f16 h = {0};
    if (v == 0)
        return h;
    int e;
    float m = frexpf(fabsf(v), &e);                 /* |v| = m·2^e, m in [0.5, 1) */
    unsigned frac = (unsigned)((2 * m - 1) * 1024); /* exact for these values */
    h.bits = (unsigned short)((v < 0) << 15 | (unsigned)(e - 1 + 15) << 10 | frac);
    return h;
}

static float f16_value(bn_f16 h)
{
    int sign = h.bits >> 15, e = h.bits >> 10 & 31, f = h.bits & 1023;
    float v = e == 0 ? ldexpf((float)f, -24)
            : e == 31 ? (f ? NAN : INFINITY) : ldexpf(1 + f / 1024.0f, e - 15);
    return sign ? -v : v;
}

static bn_bf16 bf16_exact(float v)
{
    unsigned u;
    memcpy(&u, &v, 4);
    return (bn_bf16){(unsigned short)(u >> 16)};  /* exact: low bits are 0 */
}

static float bf16_value(bn_bf16 h)
{
    unsigned u = (unsigned)h.bits << 16;
    float v;
    memcpy(&v, &u, 4);
    return v;
}

START_TEST(half_encodings_round_trip)
{
    for (int k = -255; k <= 255; k++) {
        float v = (float)k / 64;
        ck_assert(f16_value(f16_exact(v)) == v);
        ck_assert(bf16_value(bf16_exact(v)) == v);
    }
    ck_assert(f16_exact(1.0f).bits == 0x3c00 && bf16_exact(1.0f).bits == 0x3f80);
    ck_assert(f16_value((bn_f16){0x7bff}) == 65504.0f);  /* largest half */
}
END_TEST

/* _i = dtype (0 f16, 1 bf16) x layout: forward (plain, ReLU), backward,
 * inference, against ref on the same (exact) values; outputs carry one
 * more rounding, to the 16-bit type: u16 = 2^-11 (half), 2^-8 (bfloat16). */
START_TEST(half_precision_matches_ref)
{
    if (!device_or_skip("cuda fp16/bf16 data vs ref"))
        return;
    int bf = _i / 2;
    double u16 = bf ? 0x1p-8 : 0x1p-11;
    bn_desc d = {5, 6, 7, 9, _i % 2 ? BN_NHWC : BN_NCHW, 1e-5, 1};
    prob p = prob_new(&d, 0, 50 + (unsigned long)_i);
    size_t n = p.n, C = p.C;
    bn_f16 *hx = calloc(n, 2), *hdy = calloc(n, 2), *hout = calloc(n, 2);
    ck_assert(hx && hdy && hout);
    gsl_rng *r = rng_new(9);
    for (size_t k = 0; k < n; k++) {
        float xv = (float)((long)gsl_rng_uniform_int(r, 511) - 255) / 64;
        float dv = (float)((long)gsl_rng_uniform_int(r, 129) - 64) / 64;
        p.x[k] = xv, p.X[k] = xv, p.dy[k] = dv, p.DY[k] = dv;
        if (bf) {
            memcpy(&hx[k], &(bn_bf16){bf16_exact(xv).bits}, 2);
            memcpy(&hdy[k], &(bn_bf16){bf16_exact(dv).bits}, 2);
        } else {
            hx[k] = f16_exact(xv), hdy[k] = f16_exact(dv);
        }
    }
    gsl_rng_free(r);
    void *dx_, *ddy, *dout, *ddx;
    ck_assert(cudaMalloc(&dx_, n * 2) == cudaSuccess && cudaMalloc(&ddy, n * 2) == cudaSuccess);
    ck_assert(cudaMalloc(&dout, n * 2) == cudaSuccess && cudaMalloc(&ddx, n * 2) == cudaSuccess);
    ck_assert(cudaMemcpy(dx_, hx, n * 2, cudaMemcpyHostToDevice) == cudaSuccess);
    ck_assert(cudaMemcpy(ddy, hdy, n * 2, cudaMemcpyHostToDevice) == cudaSuccess);
    float *dg = dput(p.g, C), *db = dput(p.b, C), *dm = dnew(C), *dv = dnew(C), *di = dnew(C);
    float *ddg = dnew(C), *ddb = dnew(C), *dpm = dput(p.pm, C), *dpv = dput(p.pv, C);
    float *got = falloc(n), *mean = falloc(C), *var = falloc(C), *inv = falloc(C);
    double *Y = dalloc(n), *MEAN = dalloc(C), *VAR = dalloc(C), *INV = dalloc(C);
    for (int relu = 0; relu < 2; relu++) {
        int st = bf ? (relu ? bn_forward_train_relu_cuda_bf16 : bn_forward_train_cuda_bf16)(
                          dout, dm, dv, di, dx_, dg, db, &d, NULL)
                    : (relu ? bn_forward_train_relu_cuda_f16 : bn_forward_train_cuda_f16)(
                          dout, dm, dv, di, dx_, dg, db, &d, NULL);
        ck_assert_msg(st == BN_OK, "%s", bn_last_error());
        ck_assert(cudaMemcpy(hout, dout, n * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
        for (size_t k = 0; k < n; k++)
            got[k] = bf ? bf16_value((bn_bf16){hout[k].bits}) : f16_value(hout[k]);
        dget(mean, dm, C), dget(var, dv, C), dget(inv, di, C);
        ck_assert_int_eq((relu ? bn_forward_train_relu_ref : bn_forward_train_ref)(
                             Y, MEAN, VAR, INV, p.X, p.G, p.B, &d), BN_OK);
        fwd_tol t = forward_tolerances(&p, MEAN, VAR, INV);
        printf("  %s %s, relu %d\n", bf ? "bf16" : "f16", desc_str(&d), relu);
        ck_assert_uint_eq(cmp_f32("mean vs ref", mean, MEAN, C, t.mean_atol, U), 0);
        ck_assert_uint_eq(cmp_f32("var_biased vs ref", var, VAR, C, t.var_atol, 2 * U), 0);
        ck_assert_uint_eq(cmp_f32("invstd vs ref", inv, INV, C, 0, t.inv_rtol), 0);
        ck_assert_uint_eq(cmp_f32("y (16-bit) vs ref", got, Y, n, t.y_atol, u16), 0);
    }
    /* backward of the fused op (y = the 16-bit ReLU output in dout) */
    int st = bf ? bn_backward_train_relu_cuda_bf16(ddx, ddg, ddb, ddy, dout, dx_, dm, di, dg, &d, NULL)
                : bn_backward_train_relu_cuda_f16(ddx, ddg, ddb, ddy, dout, dx_, dm, di, dg, &d, NULL);
    ck_assert_msg(st == BN_OK, "%s", bn_last_error());
    double *DX = dalloc(n), *DG = dalloc(C), *DB = dalloc(C), *Yd = dalloc(n);
    for (size_t c = 0; c < C; c++)
        MEAN[c] = mean[c], INV[c] = inv[c];
    for (size_t k = 0; k < n; k++)
        Yd[k] = got[k];  /* the device's 16-bit ReLU output: its mask */
    ck_assert_int_eq(bn_backward_train_relu_ref(DX, DG, DB, p.DY, Yd, p.X, MEAN, INV, p.G, &d), BN_OK);
    double scale_dx = 0, abs_dz = 0, abs_dzx = 0;
    double *xs = dalloc(p.m), *dys = dalloc(p.m), *ys = dalloc(p.m);
    for (size_t c = 0; c < C; c++) {  /* the float path's bound, as check_training */
        channel_values(xs, p.X, &d, c), channel_values(dys, p.DY, &d, c);
        channel_values(ys, Yd, &d, c);
        double sdz = 0, sdzx = 0, sx = 0, mdz = 0, mx = 0;
        for (size_t i = 0; i < p.m; i++) {
            double dz = ys[i] > 0 ? dys[i] : 0, xh = (xs[i] - MEAN[c]) * INV[c];
            sdz += fabs(dz), sdzx += fabs(dz * xh), sx += fabs(xh);
            mdz = fmax(mdz, fabs(dz)), mx = fmax(mx, fabs(xh));
        }
        abs_dz = fmax(abs_dz, sdz), abs_dzx = fmax(abs_dzx, sdzx);
        scale_dx = fmax(scale_dx, fabs(p.G[c]) * INV[c] *
                                      (mdz + sdz / p.m + (mx + sx / p.m) * sdzx / p.m));
    }
    ck_assert(cudaMemcpy(hout, ddx, n * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (size_t k = 0; k < n; k++)
        got[k] = bf ? bf16_value((bn_bf16){hout[k].bits}) : f16_value(hout[k]);
    /* 8u of the float path's scale, then one rounding to 16 bits (u16) */
    ck_assert_uint_eq(cmp_f32("dx (16-bit) vs ref", got, DX, n, 8 * U * scale_dx, u16), 0);
    /* dgamma, dbeta are float outputs of exact 16-bit inputs: the float
     * path's bounds (check_training), no 16-bit rounding */
    float *dgam = falloc(C), *dbet = falloc(C);
    dget(dgam, ddg, C), dget(dbet, ddb, C);
    ck_assert_uint_eq(cmp_f32("dgamma (16-bit data) vs ref", dgam, DG, C, 3 * U * abs_dzx, 0), 0);
    ck_assert_uint_eq(cmp_f32("dbeta (16-bit data) vs ref", dbet, DB, C, 2 * U * abs_dz, 0), 0);
    /* inference backward: dx = a·dy rounded to 16 bits; dgamma, dbeta as
     * check_inference (the 16-bit instantiation of these kernels runs
     * nowhere else) */
    st = bf ? bn_backward_infer_cuda_bf16(ddx, ddg, ddb, ddy, dx_, dg, dpm, dpv, &d, NULL)
            : bn_backward_infer_cuda_f16(ddx, ddg, ddb, ddy, dx_, dg, dpm, dpv, &d, NULL);
    ck_assert_msg(st == BN_OK, "%s", bn_last_error());
    ck_assert_int_eq(bn_backward_infer_ref(DX, DG, DB, p.DY, p.X, p.G, p.PM, p.PV, &d), BN_OK);
    ck_assert(cudaMemcpy(hout, ddx, n * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    for (size_t k = 0; k < n; k++)
        got[k] = bf ? bf16_value((bn_bf16){hout[k].bits}) : f16_value(hout[k]);
    dget(dgam, ddg, C), dget(dbet, ddb, C);
    double abs_dy = 0, abs_dyx = 0;
    for (size_t c = 0; c < C; c++) {
        double s = 1 / sqrt(p.PV[c] + d.eps), sdy = 0, sdyx = 0;
        channel_values(xs, p.X, &d, c), channel_values(dys, p.DY, &d, c);
        for (size_t i = 0; i < p.m; i++)
            sdy += fabs(dys[i]), sdyx += fabs(dys[i] * (xs[i] - p.PM[c]) * s);
        abs_dy = fmax(abs_dy, sdy), abs_dyx = fmax(abs_dyx, sdyx);
    }
    /* fl(a·dy): 3u, then one rounding to 16 bits (u16) */
    ck_assert_uint_eq(cmp_f32("inference dx (16-bit) vs ref", got, DX, n, 0, 3 * U + u16), 0);
    ck_assert_uint_eq(cmp_f32("inference dgamma (16-bit data) vs ref", dgam, DG, C,
                              4 * U * abs_dyx, 0), 0);  /* 4u: as check_inference */
    ck_assert_uint_eq(cmp_f32("inference dbeta (16-bit data) vs ref", dbet, DB, C,
                              2 * U * abs_dy, 0), 0);
    free(xs), free(dys), free(ys), free(dgam), free(dbet);
    /* inference forward: y = a·(x - mean) + beta, rounded to 16 bits */
    st = bf ? bn_forward_infer_cuda_bf16(dout, dx_, dg, db, dpm, dpv, &d, NULL)
            : bn_forward_infer_cuda_f16(dout, dx_, dg, db, dpm, dpv, &d, NULL);
    ck_assert_msg(st == BN_OK, "%s", bn_last_error());
    ck_assert(cudaMemcpy(hout, dout, n * 2, cudaMemcpyDeviceToHost) == cudaSuccess);
    ck_assert_int_eq(bn_forward_infer_ref(Y, p.X, p.G, p.B, p.PM, p.PV, &d), BN_OK);
    for (size_t k = 0; k < n; k++)
        got[k] = bf ? bf16_value((bn_bf16){hout[k].bits}) : f16_value(hout[k]);
    /* 6u of the terms |a|·|x - mean| + |beta| (a <= 2/sqrt(0.5), |x| <= 4,
     * |mean| <= 0.5, |beta| <= 1: below 14, bounded by 64) + u16 */
    ck_assert_uint_eq(cmp_f32("inference y (16-bit) vs ref", got, Y, n, 6 * U * 64, u16), 0);
    void *bufs[] = {dx_, ddy, dout, ddx, dg, db, dm, dv, di, ddg, ddb, dpm, dpv};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
    free(hx), free(hdy), free(hout), free(got), free(mean), free(var), free(inv);
    free(Y), free(MEAN), free(VAR), free(INV), free(DX), free(DG), free(DB), free(Yd);
    prob_free(&p);
}
END_TEST

/* =========================================== CPU side: always runs */

static void expect(int want, const char *msg, int got)
{
    if (got != want || !strstr(bn_last_error(), msg))
        printf("  want %d \"%s\", got %d: %s\n", want, msg, got, bn_last_error());
    ck_assert_int_eq(got, want);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), msg));
}

/* Bad arguments are caught before any device is touched: the statuses and
 * messages of ref. The pointers are host ones: never dereferenced. */
START_TEST(bad_arguments_without_a_device)
{
    float a[64] = {0}, *x = a, *y = a, *g = a, *b = a, *m = a, *v = a;
    bn_desc d = bn_desc_make(2, 3, 2, 2, BN_NCHW, 1e-5);
    errors_quiet();
    expect(BN_EFAULT, "'y'", bn_forward_train_cuda(NULL, m, v, NULL, x, g, b, &d, NULL));
    expect(BN_EFAULT, "'gamma'", bn_forward_train_relu_cuda(y, m, v, NULL, x, NULL, b, &d, NULL));
    expect(BN_EFAULT, "'y'", bn_backward_train_relu_cuda(a, a, a, a, NULL, x, m, v, g, &d, NULL));
    expect(BN_EFAULT, "'dx'", bn_backward_infer_cuda(NULL, a, a, a, x, g, m, v, &d, NULL));
    expect(BN_EFAULT, "'mean'", bn_forward_infer_cuda(y, x, g, b, NULL, v, &d, NULL));
    bn_desc z = d;
    z.C = 0;
    expect(BN_EBADLEN, "zero size", bn_forward_train_cuda(y, m, v, NULL, x, g, b, &z, NULL));
    bn_desc one = bn_desc_make(1, 3, 1, 1, BN_NHWC, 1e-5);
    expect(BN_ESINGLE, "m' = N·H·W = 1", bn_backward_train_cuda(a, a, a, a, x, m, v, g, &one, NULL));
    bn_desc bad = d;
    bad.layout = (bn_layout)7;
    expect(BN_EINVAL, "layout", bn_forward_infer_cuda(y, x, g, b, m, v, &bad, NULL));
    bad = d, bad.eps = -1;
    expect(BN_EINVAL, "eps", bn_forward_train_cuda(y, m, v, NULL, x, g, b, &bad, NULL));
    expect(BN_ESINGLE, "divides by zero",
           bn_running_update_cuda(a, a, NULL, m, v, 3, 1, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1, NULL));
    expect(BN_EINVAL, "momentum",
           bn_running_update_cuda(a, a, NULL, m, v, 3, 4, BN_RUNNING_MOMENTUM_OLD_BIASED, 1.5, NULL));
    expect(BN_EINVAL, "rule", bn_running_update_cuda(a, a, NULL, m, v, 3, 4, (bn_running_rule)9, 0.1, NULL));
    expect(BN_EFAULT, "num_batches",
           bn_running_update_cuda(a, a, NULL, m, v, 3, 4, BN_RUNNING_CUMULATIVE_UNBIASED, 0, NULL));
    bn_f16 h[64] = {{0}};
    bn_bf16 hb[64] = {{0}};
    expect(BN_EFAULT, "'x'", bn_forward_train_cuda_f16(h, m, v, NULL, NULL, g, b, &d, NULL));
    expect(BN_EFAULT, "'dy'", bn_backward_train_cuda_bf16(hb, a, a, NULL, hb, m, v, g, &d, NULL));
    expect(BN_ESINGLE, "m' = N·H·W = 1",
           bn_forward_train_relu_cuda_bf16(hb, m, v, NULL, hb, g, b, &one, NULL));
    expect(BN_EFAULT, "'var'", bn_backward_infer_cuda_f16(h, a, a, h, h, g, m, NULL, &d, NULL));
    /* dx and y both NULL: ref's fused backward checks y before dx (ref/relu.c) */
    double A[64] = {0};
    expect(BN_EFAULT, "'y'", bn_backward_train_relu_ref(NULL, A, A, A, NULL, A, A, A, A, &d));
    expect(BN_EFAULT, "'y'", bn_backward_train_relu_cuda(NULL, a, a, a, NULL, x, m, v, g, &d, NULL));
    /* C >= 0x7f7f7f7f: the "no error" note's value; a channel index that
     * large could not be noted, so its error would be lost */
    bn_desc wide = bn_desc_make(2, 0x7f7f7f7f, 1, 1, BN_NHWC, 1e-5);
    expect(BN_EOVERFLOW, "too large", bn_forward_infer_cuda(y, x, g, b, m, v, &wide, NULL));
    expect(BN_EOVERFLOW, "C < ", bn_running_update_cuda(a, a, NULL, m, v, 0x7f7f7f7f, 4,
                                                        BN_RUNNING_MOMENTUM_OLD_BIASED, 0.1, NULL));
    errors_loud();
    printf("  21 bad calls (4 of them 16-bit): ref's statuses and messages, no device needed\n");
}
END_TEST

/* Without a device: BN_ENODEVICE with CUDA's reason from every operation
 * and from the switch; bn_impl_available says 0 and why. With one: 1. */
START_TEST(device_presence_is_reported)
{
    const char *why, *why2;
    int present = bn_cuda_device_present(&why);
    int avail = bn_impl_available(BN_IMPL_CUDA, &why2);
    printf("  device present: %d (%s); bn_impl_available(cuda) = %d (%s)\n", present, why,
           avail, why2);
    ck_assert_int_eq(avail, present);
    if (present)
        return;
    ck_assert_ptr_nonnull(strstr(why, "no CUDA device ("));
    ck_assert_str_eq(why, why2);
    float a[64] = {0};
    bn_f16 h[64] = {{0}};
    bn_bf16 hb[64] = {{0}};
    bn_desc d = bn_desc_make(2, 3, 2, 2, BN_NHWC, 1e-5);
    size_t nb = 0;
    errors_quiet();
    int st[] = {
        bn_forward_train_cuda(a, a, a, a, a, a, a, &d, NULL),
        bn_forward_train_relu_cuda(a, a, a, NULL, a, a, a, &d, NULL),
        bn_backward_train_cuda(a, a, a, a, a, a, a, a, &d, NULL),
        bn_backward_train_relu_cuda(a, a, a, a, a, a, a, a, a, &d, NULL),
        bn_forward_infer_cuda(a, a, a, a, a, a, &d, NULL),
        bn_backward_infer_cuda(a, a, a, a, a, a, a, a, &d, NULL),
        bn_running_update_cuda(a, a, &nb, a, a, 3, 8, BN_RUNNING_CUMULATIVE_UNBIASED, 0, NULL),
        bn_forward_train_cuda_f16(h, a, a, a, h, a, a, &d, NULL),
        bn_backward_train_relu_cuda_f16(h, a, a, h, h, h, a, a, a, &d, NULL),
        bn_forward_infer_cuda_bf16(hb, hb, a, a, a, a, &d, NULL),
        bn_backward_infer_cuda_bf16(hb, a, a, hb, hb, a, a, a, &d, NULL),
        bn_forward_train(BN_IMPL_CUDA, a, a, a, a, a, a, a, &d),
        bn_backward_train(BN_IMPL_CUDA, a, a, a, a, a, a, a, a, &d),
        bn_forward_infer(BN_IMPL_CUDA, a, a, a, a, a, a, &d),
        bn_backward_infer(BN_IMPL_CUDA, a, a, a, a, a, a, a, a, &d),
        bn_running_update(BN_IMPL_CUDA, a, a, &nb, a, a, 3, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1),
    };
    errors_loud();
    /* the device API: BN_ENODEVICE; the switch: BN_ENOIMPL (the impl cannot
     * run here), both with CUDA's reason */
    for (size_t k = 0; k < sizeof st / sizeof st[0]; k++)
        ck_assert_int_eq(st[k], k < 11 ? BN_ENODEVICE : BN_ENOIMPL);
    ck_assert_uint_eq(nb, 0);  /* unchanged on error */
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "no CUDA device ("));
    printf("  %zu calls: 11 x BN_ENODEVICE (4 of them 16-bit), 5 x BN_ENOIMPL (switch), "
           "e.g. \"%s\"\n",
           sizeof st / sizeof st[0], bn_last_error());
}
END_TEST

/* The launch shapes: defaults, forced ones, invalid forcing ignored. */
START_TEST(launch_shapes_are_sane)
{
    bn_desc nchw = bn_desc_make(32, 64, 56, 56, BN_NCHW, 1e-5);
    bn_desc nhwc = nchw, nd = bn_desc_make(256, 1000, 1, 1, BN_NCHW, 1e-5);
    nhwc.layout = BN_NHWC;
    bn_cu_shape a = bn_cu_shape_of(&nchw), b = bn_cu_shape_of(&nhwc), c = bn_cu_shape_of(&nd);
    ck_assert(!a.nhwc && b.nhwc && c.nhwc);  /* (N, D) runs channels-last */
    ck_assert_int_eq(a.threads, 256);
    ck_assert(a.m == 32 * 56 * 56 && a.blocks >= 1 && a.blocks <= 1024);
    /* ~16 values per thread: 100352 / (256·16) -> 25 blocks per channel */
    ck_assert_int_eq(a.blocks, 25);
    /* NHWC: 8 pixel lanes, 16 values each: 100352 / 128 -> 784; (N, D): 256 / 128 */
    ck_assert_int_eq(b.blocks, 784);
    ck_assert_int_eq(c.blocks, 2);
    bn_cuda_force_launch(64, 3);
    a = bn_cu_shape_of(&nchw);
    ck_assert(a.threads == 64 && a.blocks == 3);
    bn_cuda_force_launch(100, 0);  /* not a multiple of 32: default */
    a = bn_cu_shape_of(&nchw);
    ck_assert(a.threads == 256 && a.blocks == 25);
    bn_cuda_force_launch(0, 0);
    /* 2^28 channels x 512 blocks would be a 2^37-block grid: P is cut so
     * that gridDim.x = P·C stays <= INT_MAX (2^31 - 1 is the hardware's) */
    bn_desc huge = bn_desc_make(1 << 20, 1 << 28, 1, 2, BN_NCHW, 1e-5);
    bn_cu_shape h = bn_cu_shape_of(&huge);
    ck_assert(h.blocks >= 1 && (long long)h.blocks * h.C <= INT_MAX);
    printf("  NCHW %d x %d, NHWC %d x %d, (N, D) %d x %d (threads x blocks per channel)\n",
           a.threads, a.blocks, b.threads, b.blocks, c.threads, c.blocks);
}
END_TEST

/* The GPU groups, each skipped with one line when there is no device. */
static const char *gpu_groups[] = {
    "cuda equivalence: every op x layout x launch shape vs ref",
    "cuda adversarial inputs and bad values",
    "cuda repeatability, in place, run-time switch",
    "cuda fp16/bf16 data vs ref",
};

START_TEST(gpu_group_skipped)
{
    const char *why;
    ck_assert_int_eq(bn_cuda_device_present(&why), 0);
    skip(gpu_groups[_i], why);
}
END_TEST

int main(void)
{
    const char *why;
    int gpu = bn_cuda_device_present(&why);
    Suite *s0 = suite_create("cuda: CPU side (no GPU needed)");
    TCase *t0 = tcase_create("arguments, device presence, launch shapes");
    tcase_add_test(t0, bad_arguments_without_a_device);
    tcase_add_test(t0, device_presence_is_reported);
    tcase_add_test(t0, launch_shapes_are_sane);
    tcase_add_test(t0, half_encodings_round_trip);
    suite_add_tcase(s0, t0);

    if (!gpu) {
        TCase *ts = tcase_create("GPU groups: skipped");
        tcase_add_loop_test(ts, gpu_group_skipped, 0, 4);
        suite_add_tcase(s0, ts);
        Suite *suites[] = {s0};
        return run_suites(suites, 1) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
    }
    Suite *s1 = suite_create("cuda: every op, layout and launch shape vs ref");
    TCase *t1 = tcase_create("equivalence");
    tcase_set_timeout(t1, 120);
    tcase_add_loop_test(t1, every_op_matches_ref, 0, N_CASES * N_LAUNCH);
    tcase_add_test(t1, running_update_every_rule);
    suite_add_tcase(s1, t1);

    Suite *s2 = suite_create("cuda: adversarial inputs");
    TCase *t2 = tcase_create("offsets, constants, magnitudes, bad values");
    tcase_set_timeout(t2, 60);
    tcase_add_loop_test(t2, adversarial_data, 0, 8);
    tcase_add_test(t2, constant_channel_gives_beta);
    tcase_add_test(t2, bad_values_are_errors);
    suite_add_tcase(s2, t2);

    Suite *s3 = suite_create("cuda: repeatability and the run-time switch");
    TCase *t3 = tcase_create("bit-identical");
    tcase_add_loop_test(t3, reruns_in_place_and_switch_are_bit_identical, 0, 2);
    suite_add_tcase(s3, t3);

    Suite *s4 = suite_create("cuda: 16-bit data (fp16, bf16), fp32 statistics");
    TCase *t4 = tcase_create("mixed precision");
    tcase_add_loop_test(t4, half_precision_matches_ref, 0, 4);
    suite_add_tcase(s4, t4);

    Suite *suites[] = {s0, s1, s2, s3, s4};
    return run_suites(suites, 5) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}

#else /* no cuda/ in this build (no nvcc) */

int main(void) { return run_not_built(BN_IMPL_CUDA, "cuda: not built", "cuda/ against ref"); }
#endif
