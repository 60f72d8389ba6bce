/*
 * test_cuda_math.c — cuda/'s device-independent arithmetic (cuda/bn_cuda_math.h:
 * Welford, Chan's merge, the per-channel coefficients and per-element formulas
 * of Algorithm 1, its backward, Algorithm 2's inference map, the running
 * rules), run on the CPU against ref/ (double). It needs no GPU and no nvcc:
 * the header's __host__ __device__ functions are plain C here, the same code
 * the kernels run. CI runs it on every build.
 *
 *   1. statistics: the kernels' reduction tree (per-thread Welford, warp
 *      shuffle tree, warps in order, block partials in order), emulated in
 *      the kernels' order for NCHW and NHWC launch shapes, against ref's
 *      two-pass mean and biased variance, on adversarial data;
 *   2. per-element formulas: forward (plain and fused ReLU), backward, the
 *      inference map and its backward, against ref on the same float inputs;
 *   3. running-statistics rules against ref; the error kinds.
 *
 * Tolerances are in units of u = 2^-24 (float's unit roundoff) and derived
 * next to each check. Run: make check, or build/tests/test_cuda_math.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../cuda/bn_cuda_math.h"
#include "harness.h"

#define U 0x1p-24

/* ============================================== 1. the reduction tree */

/* One launch shape: nhwc = 0, T threads per block (warps of 32 merged by the
 * shuffle tree, then in warp order); nhwc = 1, L pixel lanes merged in lane
 * order. P blocks per channel, merged in block order. */
typedef struct {
    int nhwc, T, P;
} launch;

static const launch launches[] = {
    {0, 32, 1}, {0, 64, 3}, {0, 256, 1}, {0, 256, 7}, {0, 1024, 2},
    {1, 32, 1}, {1, 256, 5}, {1, 1024, 3},
};
enum { N_LAUNCH = sizeof launches / sizeof launches[0] };

/* The shuffle tree of one warp (lane i takes lane i + off, or its own value
 * past the warp, as __shfl_down_sync); the result is lane 0's. */
static bn_cu_moments warp_tree(const bn_cu_moments *lanes)
{
    bn_cu_moments v[32], prev[32];
    memcpy(v, lanes, sizeof v);
    for (int off = 16; off > 0; off /= 2) {
        memcpy(prev, v, sizeof v);
        for (int i = 0; i < 32; i++)
            bn_cu_chan_merge(&v[i], prev[i + off < 32 ? i + off : i]);
    }
    return v[0];
}

/* The channel's m values through the kernels' tree. Also the error bound
 * of section 1 (below), from each thread's values. */
static bn_cu_moments reduce(const float *x, size_t m, launch L, double *mean_tol,
                            double *var_tol)
{
    int lanes = L.nhwc ? L.T / 32 : L.T;
    size_t stride = (size_t)L.P * lanes;
    bn_cu_moments total = {0, 0, 0};
    *mean_tol = *var_tol = 0;
    bn_cu_moments *th = malloc((size_t)lanes * sizeof *th);
    ck_assert_ptr_nonnull(th);
    for (int p = 0; p < L.P; p++) {
        for (int t = 0; t < lanes; t++) {
            bn_cu_welford w = {0, 0, 0, 0};
            double V = 0, first = 0;
            for (size_t j = (size_t)p * lanes + t; j < m; j += stride) {
                if (w.n == 0)
                    first = x[j];
                V = fmax(V, fabs(x[j] - first));
                bn_cu_welford_push(&w, x[j]);
            }
            th[t] = bn_cu_welford_moments(w);
            /* Bound, first order in u, for a thread of n values whose shifted
             * values v = x - first have |v| <= V: v rounds once (u·V); each
             * mean update adds <= 2u·V of error, so the float mean is off by
             * <= (2n + 2)u·V, and each d, v - mean by <= (2n + 3)u·V; a term
             * d·(v - mean) (|d| <= 2V) is then off by <= 4(2n + 3)u·V², M2 by
             * n times that. Weighted by n/m in the channel's mean and var. */
            double n = w.n;
            *mean_tol += n / (double)m * (2 * n + 2) * U * V;
            *var_tol += n * 4 * (2 * n + 3) * U * V * V / (double)m;
        }
        bn_cu_moments block = {0, 0, 0};
        if (L.nhwc) {
            for (int t = 0; t < lanes; t++)
                bn_cu_chan_merge(&block, th[t]);
        } else {
            for (int w = 0; w < lanes / 32; w++) {
                bn_cu_moments r = warp_tree(th + 32 * w);
                bn_cu_chan_merge(&block, r);
            }
        }
        bn_cu_chan_merge(&total, block);
    }
    free(th);
    return total;
}

/* The data sets: each probes one way a one-pass variance goes wrong. */
enum { N_DATA = 7 };
static const char *data_name[N_DATA] = {
    "N(0, 1)",
    "1e7 + k, k in [-8, 8] (exact floats; offset/sigma = 2e6)",
    "1e4 + N(0, 0.01)",
    "constant 3.25",
    "first value 1e4 sigma out, the rest N(0, 1)",
    "N(0, 1)·1e-18 (squares below float's range)",
    "N(0, 1)·1e19 (squares of 1e38)",
};

static void make_data(float *x, size_t m, int kind, unsigned long seed)
{
    double *X = dalloc(m);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, X, m, 0, 1);
    for (size_t i = 0; i < m; i++) {
        switch (kind) {
        case 1: X[i] = 1e7 + (double)((long)(i * 7919 % 17) - 8); break;
        case 2: X[i] = 1e4 + 0.01 * X[i]; break;
        case 3: X[i] = 3.25; break;
        case 4: X[i] = i == 0 ? 1e4 : X[i]; break;
        case 5: X[i] *= 1e-18; break;
        case 6: X[i] *= 1e19; break;
        }
        x[i] = (float)X[i];
    }
    gsl_rng_free(r);
    free(X);
}

/* ref's mean and biased variance of m float values (desc (m, 1): one channel). */
static void ref_stats(const float *x, size_t m, double *mean, double *var)
{
    double *X = dalloc(m), *Y = dalloc(m);
    for (size_t i = 0; i < m; i++)
        X[i] = x[i];
    bn_desc d = bn_desc_make(m, 1, 1, 1, BN_NCHW, 1e-5);
    d.affine = 0;
    ck_assert_int_eq(bn_forward_train_ref(Y, mean, var, NULL, X, NULL, NULL, &d), BN_OK);
    free(X), free(Y);
}

static const size_t sizes[] = {2, 33, 1000, 4099};
enum { N_SIZES = sizeof sizes / sizeof sizes[0] };

/* _i = data kind: every size and launch shape. */
START_TEST(tree_matches_ref)
{
    int kind = _i;
    printf("  data: %s\n", data_name[kind]);
    double worst_mean = 0, worst_var = 0; /* measured error / bound */
    for (int s = 0; s < N_SIZES; s++) {
        size_t m = sizes[s];
        float *x = malloc(m * sizeof *x);
        ck_assert_ptr_nonnull(x);
        make_data(x, m, kind, 100 + (unsigned long)s);
        double mean, var;
        ref_stats(x, m, &mean, &var);
        for (int l = 0; l < N_LAUNCH; l++) {
            double mtol, vtol;
            bn_cu_moments mo = reduce(x, m, launches[l], &mtol, &vtol);
            /* + the merges in double: a mean carries DBL_EPSILON·|mean|, so
             * delta = meanB - meanA carries 2 DBL_EPSILON·|mean|, and the term
             * delta²·nA·nB/n a relative 4 DBL_EPSILON·|mean|/|delta| of
             * itself; over a tree of depth <= 32 with |delta| <= the range R,
             * <= 128 DBL_EPSILON·|mean|·R in var (large offsets: ~1e-10 of
             * sigma², far below float's u) */
            double R = 0, lo = x[0], hi = x[0];
            for (size_t i = 0; i < m; i++)
                lo = fmin(lo, x[i]), hi = fmax(hi, x[i]);
            R = hi - lo;
            mtol += 8 * DBL_EPSILON * fabs(mean);
            vtol += 8 * DBL_EPSILON * var + 128 * DBL_EPSILON * fabs(mean) * R;
            ck_assert(mo.n == (double)m);
            double em = fabs(mo.mean - mean), ev = fabs(mo.m2 / mo.n - var);
            if (!(em <= mtol) || !(ev <= vtol))
                printf("  MISMATCH m=%zu launch %s T=%d P=%d: mean %.17g (ref %.17g, "
                       "tol %.3g), var %.17g (ref %.17g, tol %.3g)\n",
                       m, launches[l].nhwc ? "nhwc" : "nchw", launches[l].T, launches[l].P,
                       mo.mean, mean, mtol, mo.m2 / mo.n, var, vtol);
            ck_assert(em <= mtol);
            ck_assert(ev <= vtol);
            worst_mean = fmax(worst_mean, mtol > 0 ? em / mtol : 0);
            worst_var = fmax(worst_var, vtol > 0 ? ev / vtol : 0);
        }
        free(x);
    }
    printf("  %d sizes x %d launch shapes: worst error / bound: mean %.3g, var %.3g\n",
           N_SIZES, N_LAUNCH, worst_mean, worst_var);
}
END_TEST

/* Why the shift: the same Welford with a float mean of the raw values
 * (no shift) on 1e4 + N(0, 0.01) loses the variance (the float mean's
 * rounding, 5e-4, is a twentieth of sigma); shifted, it is within bound. */
START_TEST(shift_is_what_saves_large_offsets)
{
    size_t m = 1000;
    float *x = malloc(m * sizeof *x);
    ck_assert_ptr_nonnull(x);
    make_data(x, m, 2, 7);
    double mean, var;
    ref_stats(x, m, &mean, &var);
    float nm = 0;
    double m2 = 0;
    for (size_t i = 0; i < m; i++) {  /* Welford without the shift */
        float d = x[i] - nm;
        nm += d / (float)(i + 1);
        m2 += (double)d * (double)(x[i] - nm);
    }
    double mtol, vtol;
    bn_cu_moments mo = reduce(x, m, launches[0], &mtol, &vtol);
    printf("  1e4 + N(0, 0.01): var ref %.9g, unshifted float Welford %.9g (rel err %.2g), "
           "shifted %.9g (rel err %.2g)\n", var, m2 / m, fabs(m2 / m - var) / var,
           mo.m2 / mo.n, fabs(mo.m2 / mo.n - var) / var);
    ck_assert(fabs(m2 / m - var) > 1e-3 * var);  /* the failure it avoids is real */
    ck_assert(fabs(mo.m2 / mo.n - var) <= vtol);
    free(x);
}
END_TEST

/* Chan's merge in any split equals the whole: sets split at every point. */
START_TEST(chan_merge_any_split)
{
    enum { M = 64 };
    double x[M], mean, var, worst = 0;
    gsl_rng *r = rng_new(5);
    fill_gaussian(r, x, M, 3, 2);
    gsl_rng_free(r);
    bn_desc d = bn_desc_make(M, 1, 1, 1, BN_NCHW, 0);
    d.affine = 0;
    double y[M];
    ck_assert_int_eq(bn_forward_train_ref(y, &mean, &var, NULL, x, NULL, NULL, &d), BN_OK);
    for (int k = 0; k <= M; k++) {
        bn_cu_moments a = {0, 0, 0}, b = {0, 0, 0};
        for (int i = 0; i < M; i++) {  /* exact two-pass moments of each side */
            bn_cu_moments *s = i < k ? &a : &b;
            s->n += 1, s->mean += x[i];
        }
        a.mean = a.n ? a.mean / a.n : 0, b.mean = b.n ? b.mean / b.n : 0;
        for (int i = 0; i < M; i++) {
            bn_cu_moments *s = i < k ? &a : &b;
            s->m2 += (x[i] - s->mean) * (x[i] - s->mean);
        }
        bn_cu_chan_merge(&a, b);
        ck_assert(a.n == M);
        /* double arithmetic on O(1) values, sums of 64 terms: 64 DBL_EPSILON */
        ck_assert(fabs(a.mean - mean) <= 64 * DBL_EPSILON * (fabs(mean) + 2));
        ck_assert(fabs(a.m2 / a.n - var) <= 64 * DBL_EPSILON * var);
        worst = fmax(worst, fabs(a.m2 / a.n - var) / var);
    }
    printf("  %d splits: worst relative var error %.3g (tolerance %.3g)\n", M + 1, worst,
           64 * DBL_EPSILON);
}
END_TEST

/* ======================================= 2. the per-element formulas */

static const bn_desc shapes[] = {
    {5, 3, 4, 3, BN_NCHW, 1e-5, 1},
    {4, 5, 3, 2, BN_NHWC, 1e-3, 1},
    {9, 4, 1, 1, BN_NCHW, 0.5, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0] };

/* Inputs in float, the same values in double for ref. */
typedef struct {
    bn_desc d;
    size_t n, C, m;
    float *x, *dy, *g, *b;
    double *X, *DY, *G, *B;
} prob;

/* kind: 0 N(1, 2); 1 1e7 + small integers (large offset); 2 1e4 + N(0, 0.01) */
static prob prob_new(const bn_desc *d, int kind, unsigned long seed)
{
    prob p = {.d = *d, .C = d->C};
    ck_assert_int_eq(bn_desc_check(d, 1, &p.n, &p.m), BN_OK);
    p.x = malloc(p.n * 4), p.dy = malloc(p.n * 4), p.g = malloc(p.C * 4), p.b = malloc(p.C * 4);
    ck_assert(p.x && p.dy && p.g && p.b);
    p.X = dalloc(p.n), p.DY = dalloc(p.n), p.G = dalloc(p.C), p.B = dalloc(p.C);
    gsl_rng *r = rng_new(seed);
    fill_gaussian(r, p.X, p.n, 1, 2);
    fill_uniform(r, p.DY, p.n, -1, 1);
    fill_uniform(r, p.G, p.C, 0.5, 2);
    fill_uniform(r, p.B, p.C, -1, 1);
    gsl_rng_free(r);
    p.G[0] = -p.G[0];
    for (size_t k = 0; k < p.n; k++) {
        double v = kind == 1 ? 1e7 + (double)((long)(k * 31 % 9) - 4)
                 : kind == 2 ? 1e4 + 0.005 * p.X[k] : p.X[k];
        p.x[k] = (float)v, p.X[k] = p.x[k];
        p.dy[k] = (float)p.DY[k], p.DY[k] = p.dy[k];
    }
    for (size_t c = 0; c < p.C; c++)
        p.g[c] = (float)p.G[c], p.G[c] = p.g[c], p.b[c] = (float)p.B[c], p.B[c] = p.b[c];
    return p;
}

static void prob_free(prob *p)
{
    free(p->x), free(p->dy), free(p->g), free(p->b);
    free(p->X), free(p->DY), free(p->G), free(p->B);
}

static size_t chan_of(const bn_desc *d, size_t k)
{
    return d->layout == BN_NHWC ? k % d->C : k / (d->H * d->W) % d->C;
}

/* _i = shape·3·2 + data kind·2 + relu: forward, then backward, with the
 * header's formulas fed by exact (ref) moments, against ref. */
START_TEST(forward_and_backward_formulas)
{
    const bn_desc *d = &shapes[_i / 6];
    int kind = _i / 2 % 3, relu = _i % 2;
    prob p = prob_new(d, kind, 40 + (unsigned long)_i);
    size_t n = p.n, C = p.C, m = p.m;
    double *Y = dalloc(n), *MEAN = dalloc(C), *VAR = dalloc(C), *INV = dalloc(C);
    double *G = d->affine ? p.G : NULL, *B = d->affine ? p.B : NULL;
    ck_assert_int_eq((relu ? bn_forward_train_relu_ref : bn_forward_train_ref)(
                         Y, MEAN, VAR, INV, p.X, G, B, d), BN_OK);
    bn_cu_coefs *cf = calloc(C, sizeof *cf);
    float *mean = malloc(C * 4), *var = malloc(C * 4), *inv = malloc(C * 4), *y = malloc(n * 4);
    double *ytol = dalloc(n);
    ck_assert(cf && mean && var && inv && y);
    for (size_t c = 0; c < C; c++) {
        bn_cu_moments mo = {(double)m, MEAN[c], VAR[c] * (double)m};
        double g = d->affine ? p.G[c] : 1, b = d->affine ? p.B[c] : 0;
        ck_assert_int_eq(bn_cu_train_coefs(&cf[c], &mean[c], &var[c], &inv[c], mo, d->eps, g, b), 0);
    }
    double worst = 0;
    for (size_t k = 0; k < n; k++) {
        bn_cu_coefs c = cf[chan_of(d, k)];
        float v = bn_cu_affine(p.x[k], c);
        y[k] = relu ? bn_cu_relu(v) : v;
        /* a and k rounded once each, x - center, the product and the sum:
         * <= 5 roundings of terms bounded by |a|·|x - center| + |k|; 6u. */
        ytol[k] = 6 * U * (fabs(c.a) * fabs(p.x[k] - c.center) + fabs(c.k));
        worst = fmax(worst, fabs(y[k] - Y[k]) / ytol[k]);
        if (!(fabs(y[k] - Y[k]) <= ytol[k]))
            printf("  MISMATCH y[%zu] = %.9g, ref %.17g, tol %.3g\n", k, y[k], Y[k], ytol[k]);
        ck_assert(fabs(y[k] - Y[k]) <= ytol[k]);
    }
    printf("  %s, data %d, relu %d: y worst error / bound %.3g\n", desc_str(d), kind, relu, worst);
    /* the saved statistics: the same double rounded once, and var = M2/m'
     * recomputed (1 double ulp): <= 1 float ulp, 2u */
    ck_assert_uint_eq(cmp_f32("mean", mean, MEAN, C, 0, 2 * U), 0);
    ck_assert_uint_eq(cmp_f32("var_biased", var, VAR, C, 0, 2 * U), 0);
    ck_assert_uint_eq(cmp_f32("invstd", inv, INV, C, 0, 2 * U), 0);

    /* backward, fed the float saved statistics on both sides */
    double *Yd = dalloc(n), *DX = dalloc(n), *DG = dalloc(C), *DB = dalloc(C);
    double *M = dalloc(C), *S = dalloc(C), *sum_dz = dalloc(C), *sum_dzx = dalloc(C);
    double *sum_xhat = dalloc(C), *abs_xhat = dalloc(C);
    for (size_t c = 0; c < C; c++)
        M[c] = mean[c], S[c] = inv[c], sum_dz[c] = sum_dzx[c] = sum_xhat[c] = abs_xhat[c] = 0;
    for (size_t k = 0; k < n; k++)
        Yd[k] = y[k];
    ck_assert_int_eq(relu ? bn_backward_train_relu_ref(DX, DG, DB, p.DY, Yd, p.X, M, S, G, d)
                          : bn_backward_train_ref(DX, DG, DB, p.DY, p.X, M, S, G, d), BN_OK);
    double *abs_dz = dalloc(C), *abs_dzx = dalloc(C);
    for (size_t c = 0; c < C; c++)
        abs_dz[c] = abs_dzx[c] = 0;
    for (size_t k = 0; k < n; k++) {  /* the sums as the kernels form them */
        size_t c = chan_of(d, k);
        float dz = bn_cu_dz(p.dy[k], y[k], relu), xh = bn_cu_xhat(p.x[k], mean[c], inv[c]);
        double t = (double)dz * xh;
        sum_dz[c] += dz, sum_dzx[c] += t, sum_xhat[c] += xh, abs_xhat[c] += fabs(xh);
        abs_dz[c] += fabs(dz), abs_dzx[c] += fabs(t);
    }
    worst = 0;
    for (size_t c = 0; c < C; c++) {
        double g = d->affine ? p.G[c] : 1;
        ck_assert_int_eq(bn_cu_backward_coefs(&cf[c], (double)m, mean[c], inv[c], g,
                                              sum_dz[c], sum_dzx[c], sum_xhat[c]), 0);
        if (d->affine) {
            /* xhat in float (2u) times dz, summed in double; one rounding to
             * float: 3u of the sum of magnitudes */
            ck_assert(fabs((float)sum_dzx[c] - DG[c]) <= 3 * U * abs_dzx[c]);
            ck_assert(fabs((float)sum_dz[c] - DB[c]) <= 2 * U * abs_dz[c]);
        }
    }
    for (size_t k = 0; k < n; k++) {
        size_t c = chan_of(d, k);
        float dz = bn_cu_dz(p.dy[k], y[k], relu);
        float dx = bn_cu_dx(dz, p.x[k], cf[c]);
        double s = inv[c], g = d->affine ? p.G[c] : 1;
        double xhat = (p.x[k] - mean[c]) * s;
        /* a, b, k one rounding each (b and k carry the sums' 3u), xhat's
         * 2u, three roundings in a·dz + b·(x - center) + k: 8u of
         * |gamma|·s·(|dz| + mean|dz| + (|xhat| + mean|xhat|)·mean|dz·xhat|) */
        double tol = 8 * U * fabs(g) * s *
                     (fabs(dz) + abs_dz[c] / m +
                      (fabs(xhat) + abs_xhat[c] / m) * abs_dzx[c] / m);
        worst = fmax(worst, fabs(dx - DX[k]) / tol);
        if (!(fabs(dx - DX[k]) <= tol))
            printf("  MISMATCH dx[%zu] = %.9g, ref %.17g, tol %.3g\n", k, dx, DX[k], tol);
        ck_assert(fabs(dx - DX[k]) <= tol);
    }
    printf("  backward: dx worst error / bound %.3g\n", worst);
    free(Y), free(MEAN), free(VAR), free(INV), free(cf), free(mean), free(var), free(inv);
    free(y), free(ytol), free(Yd), free(DX), free(DG), free(DB), free(M), free(S);
    free(sum_dz), free(sum_dzx), free(sum_xhat), free(abs_xhat), free(abs_dz), free(abs_dzx);
    prob_free(&p);
}
END_TEST

/* Inference forward and backward (statistics frozen) against ref. */
START_TEST(inference_formulas)
{
    const bn_desc *d = &shapes[_i];
    prob p = prob_new(d, 0, 60 + (unsigned long)_i);
    size_t n = p.n, C = p.C;
    float *pm = malloc(C * 4), *pv = malloc(C * 4);
    double *PM = dalloc(C), *PV = dalloc(C), *Y = dalloc(n), *DX = dalloc(n);
    double *DG = dalloc(C), *DB = dalloc(C);
    ck_assert(pm && pv);
    for (size_t c = 0; c < C; c++)
        pm[c] = 0.3f * (float)c - 0.2f, pv[c] = 1.5f + (float)c, PM[c] = pm[c], PV[c] = pv[c];
    double *G = d->affine ? p.G : NULL, *B = d->affine ? p.B : NULL;
    ck_assert_int_eq(bn_forward_infer_ref(Y, p.X, G, B, PM, PV, d), BN_OK);
    ck_assert_int_eq(bn_backward_infer_ref(DX, DG, DB, p.DY, p.X, G, PM, PV, d), BN_OK);
    double worst_y = 0, worst_dx = 0;
    for (size_t k = 0; k < n; k++) {
        size_t c = chan_of(d, k);
        bn_cu_coefs cf;
        double g = d->affine ? p.G[c] : 1, b = d->affine ? p.B[c] : 0;
        ck_assert_int_eq(bn_cu_infer_coefs(&cf, pm[c], pv[c], d->eps, g, b), 0);
        float y = bn_cu_affine(p.x[k], cf);
        /* a rounded once, x - mean, product, sum: 4u of the terms; 6u */
        double tol = 6 * U * (fabs(cf.a) * fabs(p.x[k] - pm[c]) + fabs(cf.k));
        ck_assert(fabs(y - Y[k]) <= tol);
        worst_y = fmax(worst_y, fabs(y - Y[k]) / tol);
        /* dx = fl(a·dy), a = fl(gamma/sqrt(var + eps)): two roundings, 3u */
        float dx = cf.a * p.dy[k];
        ck_assert(fabs(dx - DX[k]) <= 3 * U * fabs(DX[k]));
        worst_dx = fmax(worst_dx, DX[k] != 0 ? fabs(dx - DX[k]) / (3 * U * fabs(DX[k])) : 0);
    }
    printf("  inference %s: worst error / bound: y %.3g, dx %.3g\n", desc_str(d), worst_y,
           worst_dx);
    free(pm), free(pv), free(PM), free(PV), free(Y), free(DX), free(DG), free(DB);
    prob_free(&p);
}
END_TEST

/* ReLU: NaN and -0 become +0, as in ref (y > 0 ? y : 0). */
START_TEST(relu_edge_values)
{
    ck_assert(bn_cu_relu(NAN) == 0 && !signbit(bn_cu_relu(NAN)));
    ck_assert(bn_cu_relu(-0.0f) == 0 && !signbit(bn_cu_relu(-0.0f)));
    ck_assert(bn_cu_relu(-1e-30f) == 0);
    ck_assert(bn_cu_relu(2.5f) == 2.5f);
    ck_assert(bn_cu_dz(3.0f, 0.0f, 1) == 0 && bn_cu_dz(3.0f, 1e-30f, 1) == 3.0f);
    ck_assert(bn_cu_dz(3.0f, -1.0f, 0) == 3.0f);
}
END_TEST

/* ================================== 3. running rules, error kinds */

START_TEST(running_rules_match_ref)
{
    enum { C = 4 };
    float mean[C] = {0.5f, -3, 1e6f, 0}, var[C] = {2, 0.25f, 1e-6f, 0};
    double M[C], V[C];
    for (int c = 0; c < C; c++)
        M[c] = mean[c], V[c] = var[c];
    const size_t ms[] = {2, 3, 1000};
    const double moms[] = {0, 0.1, 0.99, 1};
    int checks = 0;
    for (int rule = 0; rule < 3; rule++)
        for (int a = 0; a < 3; a++)
            for (int b = 0; b < 4; b++) {
                float rm[C] = {0, 1, 2, 3}, rv[C] = {1, 1, 0.5f, 4};
                double RM[C], RV[C];
                for (int c = 0; c < C; c++)
                    RM[c] = rm[c], RV[c] = rv[c];
                size_t count = 5;
                ck_assert_int_eq(bn_running_update_ref(RM, RV, &count, M, V, C, ms[a],
                                                       (bn_running_rule)rule, moms[b]), BN_OK);
                for (int c = 0; c < C; c++)
                    ck_assert_int_eq(bn_cu_running_one(&rm[c], &rv[c], mean[c], var[c], rule,
                                                       moms[b], 5, (double)ms[a]), 0);
                /* the same double formula rounded once: <= 1 float ulp (2u) */
                ck_assert_uint_eq(cmp_f32("running_mean", rm, RM, C, 0, 2 * U), 0);
                ck_assert_uint_eq(cmp_f32("running_var", rv, RV, C, 0, 2 * U), 0);
                checks++;
            }
    printf("  %d rule x m x momentum combinations match ref\n", checks);
}
END_TEST

/* Each problem is reported as its kind, never returned as numbers. */
START_TEST(error_kinds)
{
    bn_cu_coefs cf;
    float m, v, s;
    bn_cu_moments nan_mo = {4, NAN, 1}, zero = {4, 7, 0}, huge = {4, 0, 4e39};
    ck_assert_int_eq(bn_cu_train_coefs(&cf, &m, &v, &s, nan_mo, 1e-5, 1, 0), BN_CU_E_STATS);
    ck_assert_int_eq(bn_cu_train_coefs(&cf, &m, &v, &s, zero, 0, 1, 0), BN_CU_E_ZEROVAR);
    ck_assert_int_eq(bn_cu_train_coefs(&cf, &m, &v, &s, zero, 1e-5, 1, 0), 0);
    ck_assert(cf.a == (float)(1 / sqrt(1e-5)) && m == 7 && v == 0);
    ck_assert_int_eq(bn_cu_train_coefs(&cf, &m, &v, &s, huge, 1e-5, 1, 0), BN_CU_E_FLOAT);
    ck_assert_int_eq(bn_cu_infer_coefs(&cf, 0, -1, 1e-5, 1, 0), BN_CU_E_POP);
    ck_assert_int_eq(bn_cu_infer_coefs(&cf, NAN, 1, 1e-5, 1, 0), BN_CU_E_POP);
    ck_assert_int_eq(bn_cu_infer_coefs(&cf, 0, 0, 0, 1, 0), BN_CU_E_ZEROVAR);
    ck_assert_int_eq(bn_cu_backward_coefs(&cf, 4, 0, 1, 1, NAN, 0, 0), BN_CU_E_GRAD);
    ck_assert_int_eq(bn_cu_backward_coefs(&cf, 4, 0, 1, 1, 0, 0, INFINITY), BN_CU_E_GRAD);
    ck_assert_int_eq(bn_cu_backward_coefs(&cf, 4, 0, 1, 1, 1e39, 0, 0), BN_CU_E_FLOAT);
    ck_assert(!bn_cu_saved_ok(0, -1) && !bn_cu_saved_ok(NAN, 1) && !bn_cu_saved_ok(0, INFINITY));
    ck_assert(bn_cu_saved_ok(0, 1));
    float rm = 0, rv = 1;
    ck_assert_int_eq(bn_cu_running_one(&rm, &rv, 0, -1, 0, 0.1, 0, 4), BN_CU_E_POP);
    ck_assert_int_eq(bn_cu_running_one(&rm, &rv, 3e38f, 0, 1, 0, 0, 4), 0);
    rm = 3e38f;
    ck_assert_int_eq(bn_cu_running_one(&rm, &rv, 3e38f, 0, 0, 0.5, 0, 4), 0);
    ck_assert(rm == 3e38f);  /* (1-f)·3e38 + f·3e38 in double: no overflow */
    printf("  every error kind is reported for its case\n");
}
END_TEST

int main(void)
{
    Suite *s1 = suite_create("cuda math: Welford + Chan tree vs ref (CPU)");
    TCase *t1 = tcase_create("statistics");
    tcase_set_timeout(t1, 60);
    tcase_add_loop_test(t1, tree_matches_ref, 0, N_DATA);
    tcase_add_test(t1, shift_is_what_saves_large_offsets);
    tcase_add_test(t1, chan_merge_any_split);
    suite_add_tcase(s1, t1);

    Suite *s2 = suite_create("cuda math: per-element formulas vs ref (CPU)");
    TCase *t2 = tcase_create("formulas");
    tcase_add_loop_test(t2, forward_and_backward_formulas, 0, N_SHAPES * 6);
    tcase_add_loop_test(t2, inference_formulas, 0, N_SHAPES);
    tcase_add_test(t2, relu_edge_values);
    suite_add_tcase(s2, t2);

    Suite *s3 = suite_create("cuda math: running rules and error kinds (CPU)");
    TCase *t3 = tcase_create("running, errors");
    tcase_add_test(t3, running_rules_match_ref);
    tcase_add_test(t3, error_kinds);
    suite_add_tcase(s3, t3);

    Suite *suites[] = {s1, s2, s3};
    return run_suites(suites, 3) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
