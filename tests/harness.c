/*
 * harness.c — the shared test machinery declared in harness.h.
 */
#include <float.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>

#include <gsl/gsl_randist.h>

#include "harness.h"

enum { MAX_REPORTED = 5 };

/* One comparison; returns 1 on mismatch, updating the max errors. */
static int mismatch(double got, double want, double atol, double rtol,
                    double *max_abs, double *max_rel)
{
    if (isnan(got) || isnan(want))
        return !(isnan(got) && isnan(want));
    if (isinf(got) || isinf(want))
        return got != want;
    double err = fabs(got - want);
    if (err > *max_abs)
        *max_abs = err;
    if (want != 0 && err / fabs(want) > *max_rel)
        *max_rel = err / fabs(want);
    return !(err <= atol + rtol * fabs(want));
}

static size_t compare(const char *what, const float *gf, const double *gd,
                      const double *want, size_t n, double atol, double rtol)
{
    size_t bad = 0;
    double max_abs = 0, max_rel = 0;
    for (size_t k = 0; k < n; k++) {
        double got = gf ? gf[k] : gd[k];
        if (mismatch(got, want[k], atol, rtol, &max_abs, &max_rel)) {
            if (bad < MAX_REPORTED)
                printf("  MISMATCH %s[%zu]: got %.17g want %.17g (|diff| %.3g > "
                       "atol %.3g + rtol %.3g·|want|)\n",
                       what, k, got, want[k], fabs(got - want[k]), atol, rtol);
            bad++;
        }
    }
    printf("  %-44s n=%-6zu max abs err %.3g, max rel err %.3g%s\n", what, n,
           max_abs, max_rel, bad ? "  FAIL" : "");
    if (bad)
        printf("  %s: %zu of %zu values out of tolerance\n", what, bad, n);
    fflush(stdout);
    return bad;
}

size_t cmp_f64(const char *what, const double *got, const double *want, size_t n,
               double atol, double rtol)
{
    return compare(what, NULL, got, want, n, atol, rtol);
}

size_t cmp_f32(const char *what, const float *got, const double *want, size_t n,
               double atol, double rtol)
{
    return compare(what, got, NULL, want, n, atol, rtol);
}

gsl_rng *rng_new(unsigned long seed)
{
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    ck_assert_ptr_nonnull(r);
    gsl_rng_set(r, seed);
    return r;
}

void fill_uniform(gsl_rng *r, double *x, size_t n, double lo, double hi)
{
    for (size_t k = 0; k < n; k++)
        x[k] = gsl_ran_flat(r, lo, hi);
}

void fill_gaussian(gsl_rng *r, double *x, size_t n, double mu, double sd)
{
    for (size_t k = 0; k < n; k++)
        x[k] = mu + gsl_ran_gaussian(r, sd);
}

double *dalloc(size_t n)
{
    double *p = calloc(n, sizeof *p);
    ck_assert_msg(p != NULL, "out of memory for %zu doubles", n);
    return p;
}

const bn_desc test_shapes[] = {
    /* N   C  H   W  layout    eps   affine */
    {3, 5, 7, 11, BN_NCHW, 1e-5, 1},  /* spatial, all sizes distinct and odd */
    {3, 5, 7, 11, BN_NHWC, 1e-5, 1},  /* the same in channels-last */
    {2, 3, 5, 6, BN_NCHW, 1e-3, 0},   /* no affine parameters */
    {4, 6, 3, 5, BN_NHWC, 0.5, 1},    /* a large eps */
    {10, 7, 1, 1, BN_NCHW, 1e-5, 1},  /* (N, D): per-activation, Alg. 1 */
    {1, 3, 5, 7, BN_NCHW, 1e-5, 1},   /* N = 1 with H·W > 1: m' = 35 */
    {2, 4, 1, 1, BN_NHWC, 1e-5, 1},   /* m' = 2, the smallest training batch */
};
const size_t n_test_shapes = sizeof test_shapes / sizeof test_shapes[0];

const char *desc_str(const bn_desc *d)
{
    static _Thread_local char buf[96];
    snprintf(buf, sizeof buf, "N=%zu C=%zu H=%zu W=%zu %s eps=%g%s", d->N, d->C,
             d->H, d->W, d->layout == BN_NCHW ? "nchw" : "nhwc", d->eps,
             d->affine ? "" : " no-affine");
    return buf;
}

void fd_gradient(double *grad, double *theta, size_t n, double h, loss_fn loss,
                 void *ctx)
{
    for (size_t k = 0; k < n; k++) {
        double t = theta[k];
        theta[k] = t + h;     double fp1 = loss(ctx);
        theta[k] = t - h;     double fm1 = loss(ctx);
        theta[k] = t + 2 * h; double fp2 = loss(ctx);
        theta[k] = t - 2 * h; double fm2 = loss(ctx);
        theta[k] = t;
        grad[k] = (8 * (fp1 - fm1) - (fp2 - fm2)) / (12 * h);
    }
}

double max_rel_err(const double *a, const double *b, size_t n, double rel_floor)
{
    double worst = 0, scale = 0;
    for (size_t k = 0; k < n; k++)
        scale = fmax(scale, fabs(a[k]) + fabs(b[k]));
    double floor = rel_floor * scale;
    if (floor == 0)
        floor = DBL_MIN;    /* all zeros: any difference is an error */
    for (size_t k = 0; k < n; k++) {
        double den = fabs(a[k]) + fabs(b[k]);
        double e = fabs(a[k] - b[k]) / (den > floor ? den : floor);
        if (!(e <= worst))   /* NaN counts as the worst */
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

double fd_check(const char *label, const fd_param *p, int np, double h, loss_fn loss,
                void *ctx)
{
    double worst = 0;
    printf("  grad check %-56s max rel err", label);
    for (int j = 0; j < np; j++) {
        double *num = dalloc(p[j].n);
        fd_gradient(num, p[j].theta, p[j].n, h, loss, ctx);
        double e = max_rel_err(p[j].grad, num, p[j].n, FD_REL_FLOOR);
        printf(" %s %.2e", p[j].name, e);
        worst = e > worst || isnan(e) ? e : worst;
        free(num);
    }
    printf("\n");
    fflush(stdout);
    return worst;
}

double fd_eps(size_t set_size, double eps)
{
    return set_size == 2 ? 0.1 : eps;
}

size_t index_of(const bn_desc *d, size_t n, size_t c, size_t i)
{
    size_t H = d->H, W = d->W, h = i / W, w = i % W;
    if (d->layout == BN_NCHW)
        return ((n * d->C + c) * H + h) * W + w;
    return ((n * H + h) * W + w) * d->C + c;
}

void channel_values(double *out, const double *x, const bn_desc *d, size_t c)
{
    size_t HW = d->H * d->W;
    for (size_t n = 0; n < d->N; n++)
        for (size_t i = 0; i < HW; i++)
            out[n * HW + i] = x[index_of(d, n, c, i)];
}

void relayout(double *dst, const bn_desc *to, const double *src, const bn_desc *from)
{
    size_t HW = from->H * from->W;
    for (size_t n = 0; n < from->N; n++)
        for (size_t c = 0; c < from->C; c++)
            for (size_t i = 0; i < HW; i++)
                dst[index_of(to, n, c, i)] = src[index_of(from, n, c, i)];
}

static bn_error_handler_t *saved_handler;

void errors_quiet(void) { saved_handler = bn_set_error_handler(bn_error_handler_quiet); }
void errors_loud(void) { bn_set_error_handler(saved_handler); }

int run_suites(Suite **suites, int n)
{
    int failed = 0;
    for (int k = 0; k < n; k++) {
        SRunner *sr = srunner_create(suites[k]);
        srunner_run_all(sr, CK_NORMAL);
        failed += srunner_ntests_failed(sr);
        srunner_free(sr);
    }
    return failed;
}

void skip(const char *what, const char *why)
{
    printf("SKIP: %s: %s\n", what, why);
    fflush(stdout);
}

static bn_impl not_built_impl;
static const char *not_built_what;

START_TEST(impl_not_built)
{
    const char *why;
    ck_assert_int_eq(bn_impl_available(not_built_impl, &why), 0);
    float a[8] = {0};
    bn_desc d = bn_desc_make(2, 1, 2, 2, BN_NCHW, 1e-5);
    errors_quiet();
    ck_assert_int_eq(bn_forward_train(not_built_impl, a, a, a, a, a, a, a, &d), BN_ENOIMPL);
    errors_loud();
    skip(not_built_what, why);
}
END_TEST

int run_not_built(bn_impl impl, const char *name, const char *what)
{
    not_built_impl = impl, not_built_what = what;
    Suite *s = suite_create(name);
    TCase *tc = tcase_create("skip");
    tcase_add_test(tc, impl_not_built);
    suite_add_tcase(s, tc);
    Suite *suites[] = {s};
    return run_suites(suites, 1) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
