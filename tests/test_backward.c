/*
 * test_backward.c — the gradients of ref/, checked three ways:
 *   1. against central finite differences of the forward pass (every
 *      differentiable function: training, fused ReLU, inference), in double,
 *      max relative error printed and required <= 1e-7;
 *   2. the paper's stepwise chain rule against the closed form;
 *   3. the identities Σ_i dx_i = 0 and Σ_i dx_i·xhat_i = 0 per channel.
 * Run: make check, or build/tests/test_backward.
 */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* The bound on the finite-difference relative error, in double. */
#define FD_MAX_REL 1e-7
/* Step of the 5-point stencil, in units of the smallest channel's standard
 * deviation sqrt(sigma2_B + eps) (BN's natural length scale): truncation
 * (~(h/sigma)⁴) and rounding (~1e-16·|L|/h) both end near 1e-12. */
#define FD_H 1e-3
/* Components below 1e-4 of the largest are measured against 1e-4 of the
 * largest (see max_rel_err): a bug still shows as an error of order 1. */
#define FD_FLOOR 1e-4

typedef int (*train_bwd_fn)(double *, double *, double *, const double *,
                            const double *, const double *, const double *,
                            const double *, const bn_desc *);

enum mode { TRAIN, TRAIN_RELU, INFER };

/* Everything a loss evaluation needs: L = Σ_k w_k·y_k(x, gamma, beta). */
typedef struct {
    bn_desc d;
    enum mode mode;
    size_t n, C;
    double *x, *gamma, *beta, *w;     /* inputs and the fixed weights w = dl/dy */
    double *y, *mean, *var, *invstd;  /* forward outputs (scratch) */
    double *pop_mean, *pop_var;       /* frozen statistics for INFER */
    double h;                         /* finite-difference step */
} problem;

static double loss(void *ctx)
{
    problem *p = ctx;
    int st;
    if (p->mode == INFER)
        st = bn_forward_infer_ref(p->y, p->x, p->gamma, p->beta, p->pop_mean,
                                  p->pop_var, &p->d);
    else if (p->mode == TRAIN_RELU)
        st = bn_forward_train_relu_ref(p->y, p->mean, p->var, p->invstd, p->x,
                                       p->gamma, p->beta, &p->d);
    else
        st = bn_forward_train_ref(p->y, p->mean, p->var, p->invstd, p->x,
                                  p->gamma, p->beta, &p->d);
    ck_assert_int_eq(st, BN_OK);
    long double L = 0;
    for (size_t k = 0; k < p->n; k++)
        L += p->w[k] * p->y[k];
    return (double)L;
}

static problem problem_new(const bn_desc *d, enum mode mode, unsigned long seed)
{
    problem p = {.d = *d, .mode = mode, .C = d->C};
    ck_assert_int_eq(bn_desc_check(d, mode != INFER, &p.n, NULL), BN_OK);
    gsl_rng *r = rng_new(seed);
    p.x = dalloc(p.n), p.w = dalloc(p.n), p.y = dalloc(p.n);
    p.gamma = dalloc(p.C), p.beta = dalloc(p.C);
    p.mean = dalloc(p.C), p.var = dalloc(p.C), p.invstd = dalloc(p.C);
    p.pop_mean = dalloc(p.C), p.pop_var = dalloc(p.C);
    fill_gaussian(r, p.x, p.n, 0.5, 1.5);
    fill_uniform(r, p.w, p.n, -1, 1);
    fill_uniform(r, p.gamma, p.C, 0.5, 2);
    fill_uniform(r, p.beta, p.C, -0.5, 0.5);
    fill_uniform(r, p.pop_mean, p.C, 0, 1);
    fill_uniform(r, p.pop_var, p.C, 0.5, 3);
    gsl_rng_free(r);
    if (mode == TRAIN_RELU) {
        /* ReLU has a kink at 0: move every pre-activation at least 0.05 away
         * from it (the stencil moves it by at most ~2h·gamma·invstd ≈ 0.01),
         * so that finite differences never straddle the kink. (With m' = 2,
         * xhat = ±1 whatever x is and moving x cannot help: the seed then
         * has to give gamma ± beta away from 0, and the assertion says so
         * if it does not.) */
        for (int pass = 0; pass < 50; pass++) {
            ck_assert_int_eq(bn_forward_train_ref(p.y, p.mean, p.var, p.invstd,
                                                  p.x, p.gamma, p.beta, d), BN_OK);
            int moved = 0;
            for (size_t k = 0; k < p.n; k++)
                if (fabs(p.y[k]) < 0.05) {
                    p.x[k] += p.y[k] >= 0 ? 0.2 : -0.2;
                    moved = 1;
                }
            if (!moved)
                break;
            ck_assert_msg(pass < 49, "could not move pre-activations off the ReLU kink");
        }
    }
    double sd_min = INFINITY;
    if (mode != INFER)
        ck_assert_int_eq(bn_forward_train_ref(p.y, p.mean, p.var, p.invstd, p.x,
                                              p.gamma, p.beta, d), BN_OK);
    for (size_t c = 0; c < p.C; c++)
        sd_min = fmin(sd_min, sqrt((mode == INFER ? p.pop_var[c] : p.var[c]) + d->eps));
    p.h = FD_H * sd_min;
    return p;
}

static void problem_free(problem *p)
{
    free(p->x), free(p->w), free(p->y), free(p->gamma), free(p->beta);
    free(p->mean), free(p->var), free(p->invstd), free(p->pop_mean), free(p->pop_var);
}

/* The analytic gradient of the problem's loss, by the function under test. */
static void analytic(problem *p, train_bwd_fn bwd, double *dx, double *dg, double *db)
{
    loss(p); /* fills y, mean, invstd */
    int st;
    if (p->mode == INFER)
        st = bn_backward_infer_ref(dx, dg, db, p->w, p->x, p->gamma, p->pop_mean,
                                   p->pop_var, &p->d);
    else if (p->mode == TRAIN_RELU)
        st = bn_backward_train_relu_ref(dx, dg, db, p->w, p->y, p->x, p->mean,
                                        p->invstd, p->gamma, &p->d);
    else
        st = bwd(dx, dg, db, p->w, p->x, p->mean, p->invstd, p->gamma, &p->d);
    ck_assert_int_eq(st, BN_OK);
}

/* One gradient check: analytic dx, dgamma, dbeta against finite differences. */
static void grad_check(const char *name, enum mode mode, train_bwd_fn bwd,
                       const bn_desc *d0, unsigned long seed)
{
    bn_desc dd = *d0;
    const bn_desc *d = &dd;
    if (mode != INFER)   /* m' = 2: see fd_eps */
        dd.eps = fd_eps(d0->N * d0->H * d0->W, d0->eps);
    problem p = problem_new(d, mode, seed);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    double *ndx = dalloc(p.n), *ndg = dalloc(p.C), *ndb = dalloc(p.C);
    analytic(&p, bwd, dx, dg, db);

    fd_gradient(ndx, p.x, p.n, p.h, loss, &p);
    double e_dx = max_rel_err(dx, ndx, p.n, FD_FLOOR), e_dg = 0, e_db = 0;
    if (d->affine) {
        fd_gradient(ndg, p.gamma, p.C, p.h, loss, &p);
        fd_gradient(ndb, p.beta, p.C, p.h, loss, &p);
        e_dg = max_rel_err(dg, ndg, p.C, FD_FLOOR);
        e_db = max_rel_err(db, ndb, p.C, FD_FLOOR);
    }
    printf("  grad check %-30s %-38s max rel err dx %.2e", name, desc_str(d), e_dx);
    if (d->affine)
        printf(" dgamma %.2e dbeta %.2e", e_dg, e_db);
    printf("\n");
    fflush(stdout);
    ck_assert_msg(e_dx <= FD_MAX_REL, "%s dx: rel err %g > %g", name, e_dx, FD_MAX_REL);
    ck_assert_msg(e_dg <= FD_MAX_REL, "%s dgamma: rel err %g > %g", name, e_dg, FD_MAX_REL);
    ck_assert_msg(e_db <= FD_MAX_REL, "%s dbeta: rel err %g > %g", name, e_db, FD_MAX_REL);
    free(dx), free(dg), free(db), free(ndx), free(ndg), free(ndb);
    problem_free(&p);
}

/* Training shapes: all test shapes (each has m' >= 2). */
START_TEST(fd_backward_train_stepwise)
{
    grad_check("bn_backward_train_ref", TRAIN, bn_backward_train_ref,
               &test_shapes[_i], 100 + _i);
}
END_TEST

START_TEST(fd_backward_train_closed)
{
    grad_check("bn_backward_train_closed_ref", TRAIN, bn_backward_train_closed_ref,
               &test_shapes[_i], 200 + _i);
}
END_TEST

START_TEST(fd_backward_train_relu)
{
    grad_check("bn_backward_train_relu_ref", TRAIN_RELU, NULL,
               &test_shapes[_i], 300 + _i);
}
END_TEST

START_TEST(fd_backward_infer)
{
    grad_check("bn_backward_infer_ref", INFER, NULL, &test_shapes[_i], 400 + _i);
}
END_TEST

/* Inference needs no batch: one value per channel is fine. */
START_TEST(fd_backward_infer_single_value)
{
    bn_desc d = bn_desc_make(1, 4, 1, 1, BN_NCHW, 1e-5);
    grad_check("bn_backward_infer_ref", INFER, NULL, &d, 499);
}
END_TEST

/* The paper's six equations and the closed form compute the same gradient.
 * Both are double with long-double sums; they differ only in the order of
 * O(m) roundings: atol 1e-13 on O(1) gradients, rtol 1e-11. */
START_TEST(stepwise_equals_closed_form)
{
    const bn_desc *d = &test_shapes[_i];
    problem p = problem_new(d, TRAIN, 500 + _i);
    double *dx1 = dalloc(p.n), *dg1 = dalloc(p.C), *db1 = dalloc(p.C);
    double *dx2 = dalloc(p.n), *dg2 = dalloc(p.C), *db2 = dalloc(p.C);
    analytic(&p, bn_backward_train_ref, dx1, dg1, db1);
    analytic(&p, bn_backward_train_closed_ref, dx2, dg2, db2);
    printf("  stepwise vs closed form, %s\n", desc_str(d));
    ck_assert_uint_eq(cmp_f64("dx stepwise vs closed", dx1, dx2, p.n, 1e-13, 1e-11), 0);
    if (d->affine) {
        ck_assert_uint_eq(cmp_f64("dgamma stepwise vs closed", dg1, dg2, p.C, 1e-13, 1e-11), 0);
        ck_assert_uint_eq(cmp_f64("dbeta stepwise vs closed", db1, db2, p.C, 1e-13, 1e-11), 0);
    }
    free(dx1), free(dg1), free(db1), free(dx2), free(dg2), free(db2);
    problem_free(&p);
}
END_TEST

/* Per channel, Σ_i dx_i = 0: the gradient ignores a shift of x, which BN
 * removes. And Σ_i dx_i·xhat_i = gamma·s·dgamma·eps/(sigma2_B + eps), which is
 * 0 for eps = 0 only: with eps > 0, BN does not remove a scaling of x
 * completely (docs/derivation.md). Each sum cancels m' terms of size up to
 * gamma·s·max|dy|; rounding leaves about m'·1e-16 of that, we allow m'·1e-13.
 * Run with each shape's eps and with eps = 0. */
static void check_identities(const bn_desc *d, unsigned long seed)
{
    problem p = problem_new(d, TRAIN, seed);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    analytic(&p, bn_backward_train_ref, dx, dg, db);
    size_t HW = d->H * d->W, m = d->N * HW;
    double worst1 = 0, worst2 = 0;
    for (size_t c = 0; c < d->C; c++) {
        double g = d->affine ? p.gamma[c] : 1.0, s = p.invstd[c];
        long double s1 = 0, s2 = 0, dy_xhat = 0;
        double dy_max = 0;
        for (size_t nn = 0; nn < d->N; nn++)
            for (size_t i = 0; i < HW; i++) {
                size_t k = index_of(d, nn, c, i);
                double xhat = (p.x[k] - p.mean[c]) * s;
                s1 += dx[k];
                s2 += dx[k] * xhat;
                dy_xhat += p.w[k] * xhat;
                dy_max = fmax(dy_max, fabs(p.w[k]));
            }
        double want2 = g * s * (double)dy_xhat * d->eps / (p.var[c] + d->eps);
        double tol = 1e-13 * (double)m * g * s * dy_max;
        ck_assert_msg(fabsl(s1) <= tol, "channel %zu: Σ dx = %Lg (tol %g)", c, s1, tol);
        ck_assert_msg(fabs((double)s2 - want2) <= tol,
                      "channel %zu: Σ dx·xhat = %Lg, want %g (tol %g)", c, s2, want2, tol);
        worst1 = fmax(worst1, fabs((double)s1));
        worst2 = fmax(worst2, fabs((double)s2 - want2));
    }
    printf("  identities %-40s max |Σ dx| %.2e, max |Σ dx·xhat - want| %.2e\n",
           desc_str(d), worst1, worst2);
    free(dx), free(dg), free(db);
    problem_free(&p);
}

START_TEST(gradient_identities)
{
    check_identities(&test_shapes[_i], 600 + _i);
}
END_TEST

START_TEST(gradient_identities_eps0)
{
    bn_desc d = test_shapes[_i];
    d.eps = 0;
    check_identities(&d, 650 + _i);
}
END_TEST

/* dx may be dy (in place): the result is bit-identical, since ref gathers each
 * channel of dy before it writes that channel of dx. */
START_TEST(backward_in_place)
{
    const bn_desc *d = &test_shapes[0];
    problem p = problem_new(d, TRAIN, 700);
    double *dx = dalloc(p.n), *dg = dalloc(p.C), *db = dalloc(p.C);
    analytic(&p, bn_backward_train_ref, dx, dg, db);
    double *buf = dalloc(p.n);
    memcpy(buf, p.w, p.n * sizeof *buf);
    ck_assert_int_eq(bn_backward_train_ref(buf, dg, db, buf, p.x, p.mean, p.invstd,
                                           p.gamma, d), BN_OK);
    ck_assert_uint_eq(cmp_f64("dx in place vs separate", buf, dx, p.n, 0, 0), 0);
    memcpy(buf, p.w, p.n * sizeof *buf);
    ck_assert_int_eq(bn_backward_train_closed_ref(buf, dg, db, buf, p.x, p.mean,
                                                  p.invstd, p.gamma, d), BN_OK);
    analytic(&p, bn_backward_train_closed_ref, dx, dg, db);
    ck_assert_uint_eq(cmp_f64("closed dx in place vs separate", buf, dx, p.n, 0, 0), 0);
    free(buf), free(dx), free(dg), free(db);
    problem_free(&p);
}
END_TEST

/* NHWC is a permutation of NCHW: the backward of permuted data is the
 * permuted backward. ref gathers each channel in the same (n, h, w) order in
 * both layouts, so the arithmetic is the same and the results bit-identical. */
START_TEST(backward_layouts_agree)
{
    bn_desc a = test_shapes[0], b = a;
    b.layout = BN_NHWC;
    problem p = problem_new(&a, TRAIN, 800);
    size_t n = p.n;
    double *dx = dalloc(n), *dg = dalloc(a.C), *db = dalloc(a.C);
    analytic(&p, bn_backward_train_ref, dx, dg, db);
    double *xt = dalloc(n), *dyt = dalloc(n), *dxt = dalloc(n), *dx_back = dalloc(n);
    double *dg2 = dalloc(a.C), *db2 = dalloc(a.C);
    relayout(xt, &b, p.x, &a);
    relayout(dyt, &b, p.w, &a);
    ck_assert_int_eq(bn_backward_train_ref(dxt, dg2, db2, dyt, xt, p.mean, p.invstd,
                                           p.gamma, &b), BN_OK);
    relayout(dx_back, &a, dxt, &b);
    ck_assert_uint_eq(cmp_f64("dx nhwc vs nchw", dx_back, dx, n, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("dgamma nhwc vs nchw", dg2, dg, a.C, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("dbeta nhwc vs nchw", db2, db, a.C, 0, 0), 0);
    free(dx), free(dg), free(db), free(xt), free(dyt), free(dxt), free(dx_back);
    free(dg2), free(db2);
    problem_free(&p);
}
END_TEST

/* The float switch with BN_IMPL_REF, backward plain and fused with ReLU:
 * float inputs widen exactly, one rounding back: rtol 2^-24 ≈ 6e-8, atol
 * 1e-30 for zeros. */
START_TEST(float_switch_backward)
{
    const bn_desc *d = &test_shapes[_i];
    for (int relu = 0; relu < 2; relu++) {
        problem p = problem_new(d, relu ? TRAIN_RELU : TRAIN, 750 + _i);
        size_t n = p.n, C = p.C;
        float *f = malloc((4 * n + 5 * C) * sizeof *f);
        ck_assert_ptr_nonnull(f);
        float *x = f, *dy = x + n, *y = dy + n, *dx = y + n;
        float *g = dx + n, *mu = g + C, *inv = mu + C, *dg = inv + C, *db = dg + C;
        for (size_t k = 0; k < n; k++)
            x[k] = (float)p.x[k], p.x[k] = x[k], dy[k] = (float)p.w[k], p.w[k] = dy[k];
        for (size_t c = 0; c < C; c++)
            g[c] = (float)p.gamma[c], p.gamma[c] = g[c];
        double *dxd = dalloc(n), *dgd = dalloc(C), *dbd = dalloc(C);
        analytic(&p, bn_backward_train_ref, dxd, dgd, dbd); /* y, mean, invstd from double */
        for (size_t k = 0; k < n; k++)
            y[k] = (float)p.y[k], p.y[k] = y[k];
        for (size_t c = 0; c < C; c++)
            mu[c] = (float)p.mean[c], p.mean[c] = mu[c], inv[c] = (float)p.invstd[c],
            p.invstd[c] = inv[c];
        /* the double run, on exactly the float values the switch sees */
        ck_assert_int_eq(relu ? bn_backward_train_relu_ref(dxd, dgd, dbd, p.w, p.y, p.x,
                                                           p.mean, p.invstd, p.gamma, d)
                              : bn_backward_train_ref(dxd, dgd, dbd, p.w, p.x, p.mean,
                                                      p.invstd, p.gamma, d), BN_OK);
        ck_assert_int_eq(relu ? bn_backward_train_relu(BN_IMPL_REF, dx, dg, db, dy, y, x,
                                                       mu, inv, g, d)
                              : bn_backward_train(BN_IMPL_REF, dx, dg, db, dy, x, mu, inv,
                                                  g, d), BN_OK);
        printf("  float switch backward%s, %s\n", relu ? " relu" : "", desc_str(d));
        ck_assert_uint_eq(cmp_f32("dx float vs double", dx, dxd, n, 1e-30, 6e-8), 0);
        if (d->affine) {
            ck_assert_uint_eq(cmp_f32("dgamma float vs double", dg, dgd, C, 1e-30, 6e-8), 0);
            ck_assert_uint_eq(cmp_f32("dbeta float vs double", db, dbd, C, 1e-30, 6e-8), 0);
        }
        free(f), free(dxd), free(dgd), free(dbd);
        problem_free(&p);
    }
}
END_TEST

static Suite *gradcheck_suite(void)
{
    Suite *s = suite_create("backward: finite-difference gradient checks");
    TCase *tc = tcase_create("finite differences");
    tcase_set_timeout(tc, 120);
    int n = (int)n_test_shapes;
    tcase_add_loop_test(tc, fd_backward_train_stepwise, 0, n);
    tcase_add_loop_test(tc, fd_backward_train_closed, 0, n);
    tcase_add_loop_test(tc, fd_backward_train_relu, 0, n);
    tcase_add_loop_test(tc, fd_backward_infer, 0, n);
    tcase_add_test(tc, fd_backward_infer_single_value);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *properties_suite(void)
{
    Suite *s = suite_create("backward: properties");
    TCase *tc = tcase_create("properties");
    int n = (int)n_test_shapes;
    tcase_add_loop_test(tc, stepwise_equals_closed_form, 0, n);
    tcase_add_loop_test(tc, gradient_identities, 0, n);
    tcase_add_loop_test(tc, gradient_identities_eps0, 0, n);
    tcase_add_test(tc, backward_in_place);
    tcase_add_test(tc, backward_layouts_agree);
    tcase_add_loop_test(tc, float_switch_backward, 0, n);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {gradcheck_suite(), properties_suite()};
    return run_suites(suites, 2) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
