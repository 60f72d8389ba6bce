/*
 * transform.c — the batch-normalizing transform on one mini-batch
 * (Ioffe & Szegedy 2015, arXiv 1502.03167, Algorithm 1, training mode).
 *
 * What it does. It draws one mini-batch of N = 256 examples (--n) of D = 3
 * features whose distributions have nothing in common:
 *
 *   x0 ~ Normal(5, 2^2)                 a plain bell curve away from zero
 *   x1 ~ -20 + Exponential(mean 4)      skewed, negative, heavy right tail
 *   x2 ~ Uniform(999.5, 1000.5)         large offset, small spread (GSL's
 *                                       "1e7 + 0.2 ± 0.1" idea, in float:
 *                                       a one-pass E[x²] - E[x]² variance
 *                                       loses every digit here)
 *
 * and normalizes it with Algorithm 1 (gamma = 1, beta = 0) through the
 * run-time switch bn_forward_train(impl, ...), float API.
 *
 * Expected result. For each feature k, with mu_B and the biased variance
 * sigma2_B = (1/m)·Σ (x - mu_B)² of the batch,
 *
 *   y = (x - mu_B) / sqrt(sigma2_B + eps)
 *
 * has mean 0 and biased variance sigma2_B / (sigma2_B + eps): 1 up to eps,
 * whatever the feature's location and scale. BN fixes location and scale,
 * not shape: the skewed feature stays skewed. The program prints that table
 * on stdout and writes every example (x0 x1 x2 y0 y1 y2) to --out, which
 * plots/transform.gp draws as histograms before and after.
 *
 * How to run it:
 *   make plots                      builds it, runs it, draws out/figures/transform.{png,pdf}
 *   build/bin/transform --help      the options (--seed, --impl, --eps, --out, --n)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_rng.h>

#include "bnlab.h"
#include "toolkit.h"

enum { D = 3 }; /* features: the (N, D) matrix is bn_desc (N, C = D, 1, 1) */

static const char *const feature_law[D] = {
    "Normal(5, 2^2)",
    "-20 + Exponential(mean 4)",
    "Uniform(999.5, 1000.5)",
};

/* Exit codes: 0 success, 1 a bnlab or I/O error, or a failed check; 2 usage. */
enum { EXIT_USAGE = 2 };

typedef struct options {
    unsigned long seed; /* gsl_rng_mt19937 seed (GSL maps 0 to its default 4357) */
    size_t n;           /* batch size N = m, >= 2 */
    double eps;         /* added to sigma2_B inside the square root, >= 0 */
    const char *impl;   /* ref | fast | cuda */
    const char *out;    /* data file for plots/transform.gp */
} options;

static void usage(FILE *f)
{
    const char *prog = tk_progname();
    fprintf(f,
        "usage: %s [--seed N] [--impl ref|fast|cuda] [--eps E] [--n N] [--out FILE]\n"
        "\n"
        "The batch-normalizing transform on one mini-batch: Ioffe & Szegedy 2015,\n"
        "\"Batch Normalization: Accelerating Deep Network Training by Reducing\n"
        "Internal Covariate Shift\" (arXiv 1502.03167), Algorithm 1, training mode.\n"
        "\n"
        "Draws a batch of N examples of 3 features with very different\n"
        "distributions (x0 ~ Normal(5, 2^2), x1 ~ -20 + Exponential(mean 4),\n"
        "x2 ~ Uniform(999.5, 1000.5)), normalizes it with gamma = 1, beta = 0, and\n"
        "shows that every output feature y has mean 0 and biased variance\n"
        "sigma2_B / (sigma2_B + eps), i.e. 1 up to eps, whatever the location and\n"
        "scale of its input. Prints a table per feature (mu_B, sigma2_B, mean and\n"
        "biased variance of y) and writes every example to FILE for\n"
        "plots/transform.gp (`make plots` does both).\n"
        "\n"
        "options:\n"
        "  --seed N     seed of the gsl_rng_mt19937 generator (default 1)\n"
        "  --impl NAME  implementation behind bn_forward_train: ref, fast or cuda\n"
        "               (default ref; exits 2 if NAME is not built into this bnlab)\n"
        "  --eps E      epsilon added to the variance, finite and >= 0 (default 1e-5)\n"
        "  --n N        batch size m, >= 2 (default 256)\n"
        "  --out FILE   data file: x0 x1 x2 y0 y1 y2, one example a row\n"
        "               (default out/data/transform.dat)\n"
        "  --help       this text\n"
        "Options take their value as the next argument or after '=' (--n=512).\n"
        "Exit status: 0 success, 1 bnlab or I/O error or failed check, 2 bad usage.\n",
        prog);
}

/* Fills o from argv with the toolkit's parser (the same rules as every
 * chapter). Returns 0 to run, 1 after --help, 2 after a message. */
static int parse_args(int argc, char **argv, options *o)
{
    *o = (options){.seed = 1, .n = 256, .eps = 1e-5, .impl = "ref",
                   .out = "out/data/transform.dat"};
    const tk_opt opts[] = {
        {"--seed", TK_OPT_ULONG, &o->seed}, {"--n", TK_OPT_SIZE, &o->n},
        {"--eps", TK_OPT_DOUBLE, &o->eps},  {"--impl", TK_OPT_STRING, &o->impl},
        {"--out", TK_OPT_STRING, &o->out},
    };
    int st = tk_parse_args(argc, argv, opts, sizeof opts / sizeof *opts, usage);
    if (st != 0)
        return st;
    if (o->n < 2)
        return tk_err("--n %zu: the batch needs at least 2 examples. With m = 1, mu_B = x and "
                      "sigma2_B = 0, so y = 0 whatever x is; bnlab refuses that case in "
                      "training mode (BN_ESINGLE)", o->n), 2;
    if (o->n > (size_t)-1 / (D * sizeof(float)))
        return tk_err("--n %zu: too large for this machine", o->n), 2;
    if (o->eps < 0)
        return tk_err("--eps %g: expected a finite number >= 0", o->eps), 2;
    return 0;
}

/* ------------------------------------------------------------- the batch */

/* x[i·D + k]: example i, feature k, row-major (N, D) = NCHW with H = W = 1.
 * Draws row by row, so a given seed gives the same first rows for any N. */
static void make_batch(float *x, size_t n, gsl_rng *r)
{
    for (size_t i = 0; i < n; i++) {
        x[i * D + 0] = (float)(5.0 + gsl_ran_gaussian(r, 2.0));
        x[i * D + 1] = (float)(-20.0 + gsl_ran_exponential(r, 4.0));
        x[i * D + 2] = (float)gsl_ran_flat(r, 999.5, 1000.5);
    }
}

/* Mean and biased variance (divides by n) of column k of a[n·D], two passes
 * in double: the check below must not share the cancellation it looks for. */
static void column_stats(double *mean, double *var_biased, const float *a,
                         size_t n, size_t k)
{
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += a[i * D + k];
    double mu = s / (double)n, ss = 0;
    for (size_t i = 0; i < n; i++) {
        double dev = a[i * D + k] - mu;
        ss += dev * dev;
    }
    *mean = mu;
    *var_biased = ss / (double)n;
}

/* The data file for plots/transform.gp: '#' comment lines, then one row per
 * example. %.9g prints a float exactly enough to read it back bit for bit. */
static int write_data(const options *o, bn_impl impl, const float *x,
                      const float *y, const float *mean, const float *var_biased)
{
    FILE *f = fopen(o->out, "w");
    if (!f) {
        fprintf(stderr, "transform: cannot write '%s': %s\n", o->out, strerror(errno));
        return -1;
    }
    fprintf(f, "# bnlab %s chapters/transform.c: Algorithm 1 (Ioffe & Szegedy 2015) on one mini-batch\n",
            bn_version());
    fprintf(f, "# N = %zu examples, D = %d features, impl = %s, eps = %g, seed = %lu, gamma = 1, beta = 0\n",
            o->n, D, bn_impl_name(impl), o->eps, o->seed);
    for (int k = 0; k < D; k++)
        fprintf(f, "# x%d ~ %-26s mu_B = %.9g  sigma2_B (biased) = %.9g\n", k,
                feature_law[k], mean[k], var_biased[k]);
    fprintf(f, "# columns: 1-3 x0 x1 x2 (input features), 4-6 y0 y1 y2 = (x - mu_B)/sqrt(sigma2_B + eps)\n");
    fprintf(f, "# x0 x1 x2 y0 y1 y2\n");
    for (size_t i = 0; i < o->n; i++) {
        const float *xi = x + i * D, *yi = y + i * D;
        fprintf(f, "%.9g %.9g %.9g %.9g %.9g %.9g\n", xi[0], xi[1], xi[2],
                yi[0], yi[1], yi[2]);
    }
    int write_failed = ferror(f);
    if (fclose(f) != 0 || write_failed) {
        fprintf(stderr, "transform: error writing '%s'\n", o->out);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv)
{
    tk_set_progname("transform");
    options o;
    int a = parse_args(argc, argv, &o);
    if (a != 0)
        return a == 1 ? EXIT_SUCCESS : EXIT_USAGE;

    /* Messages go through bn_last_error() below, once, with our context. */
    bn_set_error_handler(bn_error_handler_quiet);

    bn_impl impl;
    if (tk_impl_select(o.impl, &impl) != 0)
        return EXIT_USAGE;

    bn_desc d = bn_desc_make(o.n, D, 1, 1, BN_NCHW, o.eps);
    int st = bn_desc_check(&d, 1, NULL, NULL);
    if (st != BN_OK) {
        fprintf(stderr, "transform: %s (%s)\n", bn_last_error(), bn_strerror(st));
        return EXIT_FAILURE;
    }

    float *x = malloc(o.n * D * sizeof *x), *y = malloc(o.n * D * sizeof *y);
    gsl_rng *r = gsl_rng_alloc(gsl_rng_mt19937);
    if (!x || !y || !r) {
        fprintf(stderr, "transform: out of memory for N = %zu\n", o.n);
        free(x), free(y);
        if (r)
            gsl_rng_free(r);
        return EXIT_FAILURE;
    }
    gsl_rng_set(r, o.seed);
    make_batch(x, o.n, r);
    gsl_rng_free(r);

    /* Algorithm 1 with gamma = 1, beta = 0: y = xhat. */
    const float gamma[D] = {1, 1, 1}, beta[D] = {0, 0, 0};
    float mean[D], var_biased[D], invstd[D];
    st = bn_forward_train(impl, y, mean, var_biased, invstd, x, gamma, beta, &d);
    if (st != BN_OK) {
        fprintf(stderr, "transform: bn_forward_train(%s): %s (%s)\n",
                bn_impl_name(impl), bn_last_error(), bn_strerror(st));
        free(x), free(y);
        return EXIT_FAILURE;
    }

    /* The check. y is rounded to float (|y| < ~10 here, so ~1e-6 absolute);
     * with the batch mean, |mean(y)| should be ~1e-7 and var(y) within ~1e-6
     * of its expected value. 1e-3 leaves room for a float implementation
     * (fast, cuda) and still catches the classic mistakes: normalizing with
     * the unbiased variance makes var(y) = (m-1)/m, off by 1/m = 4e-3 at
     * m = 256; eps outside the square root, or missing, shows at larger --eps. */
    const double tol = 1e-3;
    int ok = 1;
    printf("Algorithm 1 (training mode) on one mini-batch: impl = %s, m = N = %zu, eps = %g, seed = %lu\n"
           "y = (x - mu_B)/sqrt(sigma2_B + eps), gamma = 1, beta = 0; "
           "expected: mean(y) = 0, var(y) = sigma2_B/(sigma2_B + eps)\n\n",
           bn_impl_name(impl), o.n, o.eps, o.seed);
    printf("%-4s %-27s %12s %12s   %11s %11s %11s\n", "", "x ~", "mu_B",
           "sigma2_B", "mean(y)", "var_b(y)", "expected");
    for (int k = 0; k < D; k++) {
        double my, vy;
        column_stats(&my, &vy, y, o.n, (size_t)k);
        double expected = (double)var_biased[k] / ((double)var_biased[k] + o.eps);
        int good = fabs(my) <= tol && fabs(vy - expected) <= tol;
        ok &= good;
        printf("x%-3d %-27s %12.6g %12.6g   %+11.2e %11.7f %11.7f%s\n", k,
               feature_law[k], mean[k], var_biased[k], my, vy, expected,
               good ? "" : "   <-- FAIL");
    }
    printf("\n(var_b: biased variance, divides by m. Each row: |mean(y)| and |var_b(y) - expected| <= %g: %s)\n",
           tol, ok ? "yes" : "NO");

    int w = write_data(&o, impl, x, y, mean, var_biased);
    if (w == 0)
        printf("wrote %zu rows (x0 x1 x2 y0 y1 y2) to %s\n", o.n, o.out);
    free(x), free(y);
    return (w == 0 && ok) ? EXIT_SUCCESS : EXIT_FAILURE;
}
