/*
 * harness.h — what every bnlab test program shares: the one comparator,
 * seeded random data (GSL), finite differences, the standard test shapes,
 * and a runner that prints Check's summary for each suite.
 */
#ifndef BN_TEST_HARNESS_H
#define BN_TEST_HARNESS_H

#include <check.h>
#include <gsl/gsl_rng.h>
#include <stddef.h>

#include "bnlab.h"

/* The comparator. Element k matches when |got - want| <= atol + rtol·|want|;
 * NaN matches NaN only, Inf matches the same Inf only. Prints the first few
 * mismatches and the max errors under the label `what`; returns the number of
 * mismatches (0 = pass). */
size_t cmp_f64(const char *what, const double *got, const double *want, size_t n,
               double atol, double rtol);
size_t cmp_f32(const char *what, const float *got, const double *want, size_t n,
               double atol, double rtol);

/* A GSL Mersenne Twister seeded with `seed`: deterministic test data. */
gsl_rng *rng_new(unsigned long seed);
void fill_uniform(gsl_rng *r, double *x, size_t n, double lo, double hi);
void fill_gaussian(gsl_rng *r, double *x, size_t n, double mu, double sd);

/* Allocation that fails the test instead of returning NULL. */
double *dalloc(size_t n);

/* Shapes the tests sweep: N ≠ C ≠ H ≠ W, sizes not powers of two, both
 * layouts, and (N, D) matrices. */
extern const bn_desc test_shapes[];
extern const size_t n_test_shapes;
/* "N=3 C=5 H=7 W=11 nchw affine" */
const char *desc_str(const bn_desc *d);

/* Gradient checking by central differences, 5-point stencil:
 *   f'(t) ≈ [8(f(t+h) - f(t-h)) - (f(t+2h) - f(t-2h))] / (12h)
 * truncation error O(h⁴) instead of O(h²), so h can be large enough (1e-3)
 * that the rounding error of f, about 1e-16·|f|/h, stays near 1e-13.
 * loss(ctx) evaluates the scalar loss with the current parameter values;
 * theta[n] are perturbed in place one at a time and restored. Writes the
 * numerical gradient into grad[n]. */
typedef double (*loss_fn)(void *ctx);
void fd_gradient(double *grad, double *theta, size_t n, double h, loss_fn loss,
                 void *ctx);

/* The relative error of a gradient check: max over k of
 *   |a_k - b_k| / max(|a_k| + |b_k|, rel_floor · max_j (|a_j| + |b_j|)).
 * CS231n's measure, except that components smaller than rel_floor times the
 * largest are measured against that floor: a finite difference carries an
 * absolute error (~1e-12 here), which would otherwise look large next to a
 * component that is nearly zero. */
double max_rel_err(const double *a, const double *b, size_t n, double rel_floor);

/* The m' = N·H·W values of channel c of x, in (n, h, w) order, by the
 * tests' own index arithmetic (not ref's): out[n·H·W + h·W + w]. */
void channel_values(double *out, const double *x, const bn_desc *d, size_t c);
/* Index of (n, c, pixel i = h·W + w) in the layout of d. */
size_t index_of(const bn_desc *d, size_t n, size_t c, size_t i);

/* Copies tensor src (shape and layout of `from`) into dst in the layout of
 * `to` (same N, C, H, W). */
void relayout(double *dst, const bn_desc *to, const double *src, const bn_desc *from);

/* One parameter array of a gradient check: theta is perturbed in place (and
 * restored), grad is its analytic gradient. */
typedef struct {
    const char *name;
    double *theta;
    const double *grad;
    size_t n;
} fd_param;

/* Finite differences of loss(ctx) for each parameter against its analytic
 * gradient (fd_gradient, step h); prints "grad check <label>: max rel err
 * <name> <err> ..." and returns the worst max_rel_err (floor FD_REL_FLOOR). */
#define FD_REL_FLOOR 1e-4

/* The eps to use in a gradient check whose statistics sets hold set_size
 * values. With 2 values, xhat = ±1/sqrt(1 + eps/sigma2): the loss depends on
 * x only through eps, the gradient is ~eps/sigma2, and finite differences of
 * an O(1) loss resolve it to ~1e-6 only; eps = 0.1 makes it O(1) and the check
 * meaningful. (The closed-form and identity tests cover small eps there.) */
double fd_eps(size_t set_size, double eps);
double fd_check(const char *label, const fd_param *p, int np, double h, loss_fn loss,
                void *ctx);

/* Silences bnlab's error handler (tests that provoke errors) and restores it. */
void errors_quiet(void);
void errors_loud(void);

/* Runs each suite in its own runner, so Check prints one summary per suite;
 * returns the total number of failed checks. */
int run_suites(Suite **suites, int n);

/* Prints a SKIP line with its reason: a skipped test says so, never passes. */
void skip(const char *what, const char *why);

/* The whole main of a test program whose implementation (BN_IMPL_FAST or
 * BN_IMPL_CUDA) is not built in: one suite, `name`, that checks that
 * bn_impl_available says so and that the float switch answers BN_ENOIMPL,
 * then prints "SKIP: <what>: <why>". Returns main's exit status. */
int run_not_built(bn_impl impl, const char *name, const char *what);

#endif
