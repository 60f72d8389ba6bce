/*
 * test_errors.c — every error path of bnlab returns its documented bn_status
 * (bnlab.h, enum bn_status) and says why through the error handler, GSL style
 * (ref/errors.c).
 *
 * Every test runs with a recording handler installed; a checked fixture puts
 * the previous handler back when the test ends. For each provoked error the
 * test checks
 *   1. the status is the documented one,
 *   2. the handler was called exactly once, with that status and a file:line,
 *      and the message it got is the one bn_last_error() keeps,
 *   3. the message names the culprit (the NULL argument, the channel holding
 *      bad data, the bad parameter),
 * and for each call that must succeed, that it returned BN_OK without calling
 * the handler. A NaN or Inf is never returned as success: where finite inputs
 * can make an output overflow, either the status is an error or every output
 * is finite.
 *
 * Each test is one edge case, named after it; the data are small (a 2x3x2x2
 * tensor) and printed with the message each call produced.
 *
 * Run: make tests && build/tests/test_errors   (or make check)
 */
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* ------------------------------------------------ the recording handler */

static struct {
    int calls;          /* how many times the handler ran since rec_reset() */
    int status;         /* the status of the last call */
    int line;           /* where it was raised */
    char file[256];
    char reason[512];   /* the message it was given */
} rec;

static bn_error_handler_t *previous_handler;

static void recording_handler(const char *reason, const char *file, int line,
                              int status)
{
    rec.calls++;
    rec.status = status;
    rec.line = line;
    snprintf(rec.file, sizeof rec.file, "%s", file ? file : "");
    snprintf(rec.reason, sizeof rec.reason, "%s", reason ? reason : "");
}

static void rec_reset(void)
{
    memset(&rec, 0, sizeof rec);
    rec.status = -1;
}

static const char *status_name(int status)
{
    static const char *names[] = {
        "BN_OK",     "BN_EFAULT", "BN_EBADLEN", "BN_EOVERFLOW",
        "BN_EINVAL", "BN_ESINGLE", "BN_EDOM",   "BN_ENOMEM",
        "BN_ENOIMPL", "BN_ENODEVICE", "BN_ECUDA"};
    return status >= 0 && status <= BN_ECUDA ? names[status] : "(not a bn_status)";
}

/* -------------------------------------------------------- the test data */

/* One small tensor and everything the functions take, in double and float. */
enum { NB = 2, CB = 3, HB = 2, WB = 2, HWB = HB * WB, COUNT = NB * CB * HWB };

typedef struct {
    bn_desc d;                               /* N=2 C=3 H=2 W=2 nchw eps=1e-5 */
    double x[COUNT], y[COUNT], dy[COUNT], dx[COUNT];
    double gamma[CB], beta[CB], dgamma[CB], dbeta[CB];
    double mean[CB], var[CB], invstd[CB];    /* batch statistics of x */
    double scale[CB], shift[CB];
    float fx[COUNT], fy[COUNT], fdy[COUNT], fdx[COUNT];
    float fgamma[CB], fbeta[CB], fdgamma[CB], fdbeta[CB];
    float fmean[CB], fvar[CB], finvstd[CB];
} bufs;

static bufs buf;

static void to_float(float *dst, const double *src, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dst[k] = (float)src[k];
}

/* Index of value (n, c, i) in the layout of d, written out (not bn_offset). */
static size_t at(const bn_desc *d, size_t n, size_t c, size_t i)
{
    size_t HW = d->H * d->W;
    return d->layout == BN_NCHW ? (n * d->C + c) * HW + i : (n * HW + i) * d->C + c;
}

/* Fixture: fresh data, then the recorder. */
static void setup(void)
{
    memset(&buf, 0, sizeof buf);
    buf.d = bn_desc_make(NB, CB, HB, WB, BN_NCHW, 1e-5);
    gsl_rng *r = rng_new(1502);
    fill_gaussian(r, buf.x, COUNT, 0.5, 1.5);
    fill_uniform(r, buf.dy, COUNT, -1, 1);
    fill_uniform(r, buf.gamma, CB, 0.5, 2);
    fill_uniform(r, buf.beta, CB, -0.5, 0.5);
    gsl_rng_free(r);
    ck_assert_int_eq(bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd,
                                          buf.x, buf.gamma, buf.beta, &buf.d), BN_OK);
    to_float(buf.fx, buf.x, COUNT), to_float(buf.fy, buf.y, COUNT);
    to_float(buf.fdy, buf.dy, COUNT);
    to_float(buf.fgamma, buf.gamma, CB), to_float(buf.fbeta, buf.beta, CB);
    to_float(buf.fmean, buf.mean, CB), to_float(buf.fvar, buf.var, CB);
    to_float(buf.finvstd, buf.invstd, CB);

    rec_reset();
    previous_handler = bn_set_error_handler(recording_handler);
}

/* Fixture: put back the handler that was there before the test. */
static void teardown(void)
{
    bn_error_handler_t *mine = bn_set_error_handler(previous_handler);
    ck_assert_msg(mine == recording_handler,
                  "the test left another handler installed than the recorder");
}

/* ------------------------------------------------------ the expectations */

/* `got` came from `call`: it must be `want`, raised through the handler
 * exactly once with that status and a file:line, and the message (the same
 * in the handler and in bn_last_error()) must contain `needle`. */
static void expect_error_at(const char *file, int line, const char *call, int got,
                            int want, const char *needle)
{
    printf("  %-12s %-28.*s \"%s\"\n", status_name(got), (int)strcspn(call, "("),
           call, rec.calls > 0 ? bn_last_error() : "(the handler was not called)");
    fflush(stdout);
    ck_assert_msg(got == want, "%s:%d: %s returned %s, want %s", file, line, call,
                  status_name(got), status_name(want));
    ck_assert_msg(rec.calls == 1,
                  "%s:%d: %s: the handler was called %d times, want exactly once",
                  file, line, call, rec.calls);
    ck_assert_msg(rec.status == want, "%s:%d: %s: the handler got status %s, want %s",
                  file, line, call, status_name(rec.status), status_name(want));
    ck_assert_msg(rec.file[0] != '\0' && rec.line > 0,
                  "%s:%d: %s: the handler got no file:line", file, line, call);
    ck_assert_msg(strcmp(rec.reason, bn_last_error()) == 0,
                  "%s:%d: %s: the handler got \"%s\", bn_last_error() says \"%s\"",
                  file, line, call, rec.reason, bn_last_error());
    ck_assert_msg(strstr(bn_last_error(), needle) != NULL,
                  "%s:%d: %s: the message \"%s\" does not mention \"%s\"", file,
                  line, call, bn_last_error(), needle);
}

/* `got` came from `call`, which must succeed without calling the handler. */
static void expect_ok_at(const char *file, int line, const char *call, int got)
{
    printf("  %-12s %.*s\n", status_name(got), (int)strcspn(call, "("), call);
    fflush(stdout);
    ck_assert_msg(got == BN_OK && rec.calls == 0,
                  "%s:%d: %s returned %s (handler called %d times: \"%s\"), want BN_OK",
                  file, line, call, status_name(got), rec.calls, rec.reason);
}

static void expect_at(const char *file, int line, const char *call, int got,
                      int want, const char *needle)
{
    if (want == BN_OK)
        expect_ok_at(file, line, call, got);
    else
        expect_error_at(file, line, call, got, want, needle);
}

/* The recorder is reset before each call, so each expectation sees only the
 * handler calls its own call made. */
#define EXPECT_ERROR(want, needle, call)                                       \
    expect_error_at(__FILE__, __LINE__, #call, (rec_reset(), (call)), (want), (needle))
#define EXPECT_OK(call) expect_ok_at(__FILE__, __LINE__, #call, (rec_reset(), (call)))
#define EXPECT(want, needle, call)                                             \
    expect_at(__FILE__, __LINE__, #call, (rec_reset(), (call)), (want), (needle))

/* BN_OK promises usable numbers: on success every output must be finite;
 * an error must have gone through the handler once. */
static void expect_finite_unless_error(const char *what, int status,
                                       const double *out, size_t n)
{
    size_t bad = 0, first = 0;
    for (size_t k = 0; k < n; k++)
        if (!isfinite(out[k]) && bad++ == 0)
            first = k;
    if (status == BN_OK)
        printf("  %-12s %-44s %zu of %zu values non-finite\n", status_name(status),
               what, bad, n);
    else
        printf("  %-12s %-44s \"%s\"\n", status_name(status), what, bn_last_error());
    fflush(stdout);
    ck_assert_msg(status != BN_OK || bad == 0,
                  "%s returned BN_OK with %zu non-finite values (first: [%zu] = %g)",
                  what, bad, first, out[first]);
    if (status != BN_OK)
        ck_assert_msg(rec.calls == 1, "%s: %s raised through the handler %d times",
                      what, status_name(status), rec.calls);
}

/* Every function that takes a descriptor, on the fixture's data with d:
 * the training functions must return want_train, the inference ones
 * want_infer, each with a message containing needle. */
static void expect_every_desc_function(const bn_desc *d, int want_train,
                                       int want_infer, const char *needle)
{
    printf("  descriptor %s layout=%d affine=%d\n", desc_str(d), (int)d->layout,
           d->affine);
    EXPECT(want_train, needle, bn_desc_check(d, 1, NULL, NULL));
    EXPECT(want_infer, needle, bn_desc_check(d, 0, NULL, NULL));
    EXPECT(want_train, needle, bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT(want_train, needle, bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT(want_train, needle, bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT(want_train, needle, bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT(want_train, needle, bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.y, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT(want_infer, needle, bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT(want_infer, needle, bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT(want_infer, needle, bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, d));
    EXPECT(want_train, needle, bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT(want_train, needle, bn_forward_train_relu(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT(want_train, needle, bn_backward_train(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT(want_train, needle, bn_backward_train_relu(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT(want_infer, needle, bn_forward_infer(BN_IMPL_REF, buf.fy, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, d));
    EXPECT(want_infer, needle, bn_backward_infer(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fgamma, buf.fmean, buf.fvar, d));
}

/* ============================================ shapes and the descriptor */

/* _i = 0..3 zeroes N, C, H or W in turn. */
START_TEST(zero_size_in_any_dimension_is_EBADLEN)
{
    static const char *needles[] = {"N=0", "C=0", "H=0", "W=0"};
    bn_desc d = buf.d;
    size_t *dim[] = {&d.N, &d.C, &d.H, &d.W};
    *dim[_i] = 0;
    expect_every_desc_function(&d, BN_EBADLEN, BN_EBADLEN, needles[_i]);
    EXPECT_ERROR(BN_EBADLEN, "zero size", bn_desc_check(&d, 1, NULL, NULL));
}
END_TEST

/* N·C·H·W = 2^80 does not fit in a 64-bit size_t. The data pointers are NULL:
 * a missed overflow then answers BN_EFAULT instead of reading out of bounds. */
START_TEST(element_count_overflows_size_t_is_EOVERFLOW)
{
    size_t big = (size_t)1 << 20;
    bn_desc d = bn_desc_make(big, big, big, big, BN_NCHW, 1e-5);
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_desc_check(&d, 1, NULL, NULL));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_desc_check(&d, 0, NULL, NULL));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_train_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_backward_train_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_backward_train_relu_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_infer_ref(NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_train(BN_IMPL_REF, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_infer(BN_IMPL_REF, NULL, NULL, NULL, NULL, NULL, NULL, &d));
}
END_TEST

/* N·C·H·W itself fits in size_t, N·C·H·W·sizeof(double) does not. */
START_TEST(byte_count_overflows_size_t_is_EOVERFLOW)
{
    bn_desc d = bn_desc_make(SIZE_MAX / sizeof(double) + 1, 1, 1, 1, BN_NCHW, 1e-5);
    printf("  N = %zu values: fits in size_t, its %zu-byte doubles do not\n", d.N,
           sizeof(double));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_desc_check(&d, 1, NULL, NULL));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_train_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_train(BN_IMPL_REF, NULL, NULL, NULL, NULL, NULL, NULL, NULL, &d));
}
END_TEST

/* The byte count fits in size_t but exceeds PTRDIFF_MAX: no object can be
 * that large, and pointer differences within it would overflow. */
START_TEST(byte_count_beyond_PTRDIFF_MAX_is_EOVERFLOW)
{
    bn_desc d = bn_desc_make((size_t)PTRDIFF_MAX / sizeof(double) + 1, 1, 1, 1,
                             BN_NCHW, 1e-5);
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_desc_check(&d, 0, NULL, NULL));
    EXPECT_ERROR(BN_EOVERFLOW, "overflows", bn_forward_infer_ref(NULL, NULL, NULL, NULL, NULL, NULL, &d));
}
END_TEST

/* m' = N·H·W = 1: training has no batch statistics to speak of (ESINGLE);
 * inference needs none, and succeeds. */
START_TEST(one_value_per_channel_is_ESINGLE_in_training_only)
{
    bn_desc d = bn_desc_make(1, CB, 1, 1, BN_NCHW, 1e-5);
    expect_every_desc_function(&d, BN_ESINGLE, BN_OK, "one value per channel");
    d.layout = BN_NHWC;
    EXPECT_ERROR(BN_ESINGLE, "one value per channel", bn_desc_check(&d, 1, NULL, NULL));
}
END_TEST

/* ... and in inference the one value is normalized with the population
 * statistics: y = gamma·(x - mean)/sqrt(var + eps) + beta, finite. */
START_TEST(one_value_per_channel_in_inference_is_normalized)
{
    bn_desc d = bn_desc_make(1, CB, 1, 1, BN_NCHW, 1e-5);
    double want[CB];
    EXPECT_OK(bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &d));
    for (size_t c = 0; c < CB; c++)
        want[c] = buf.gamma[c] * (buf.x[c] - buf.mean[c]) / sqrt(buf.var[c] + d.eps) +
                  buf.beta[c];
    /* scale·(x - mean) + beta against the same in another order: a few roundings */
    ck_assert_uint_eq(cmp_f64("y, N=H=W=1 inference", buf.y, want, CB, 1e-15, 1e-14), 0);
}
END_TEST

/* _i picks a bad eps: negative, NaN, +Inf, -Inf. */
START_TEST(eps_negative_nan_or_inf_is_EINVAL)
{
    static const double bad_eps[] = {-1e-5, NAN, INFINITY, -INFINITY};
    bn_desc d = buf.d;
    d.eps = bad_eps[_i];
    expect_every_desc_function(&d, BN_EINVAL, BN_EINVAL, "eps");
}
END_TEST

START_TEST(layout_7_is_EINVAL)
{
    bn_desc d = buf.d;
    d.layout = (bn_layout)7;
    expect_every_desc_function(&d, BN_EINVAL, BN_EINVAL, "layout 7");
}
END_TEST

START_TEST(affine_2_is_EINVAL)
{
    bn_desc d = buf.d;
    d.affine = 2;
    expect_every_desc_function(&d, BN_EINVAL, BN_EINVAL, "affine = 2");
}
END_TEST

START_TEST(null_descriptor_is_EFAULT)
{
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_desc_check(NULL, 1, NULL, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.y, buf.x, buf.mean, buf.invstd, buf.gamma, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, NULL));
    EXPECT_ERROR(BN_EFAULT, "'d'", bn_forward_infer(BN_IMPL_REF, buf.fy, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, NULL));
}
END_TEST

/* ===================================================== NULL pointers */

START_TEST(forward_train_NULL_required_pointer_is_EFAULT)
{
    const bn_desc *d = &buf.d;   /* affine = 1: gamma and beta are required */
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_forward_train_ref(NULL, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_forward_train_ref(buf.y, NULL, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'var_biased'", bn_forward_train_ref(buf.y, buf.mean, NULL, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, NULL, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, NULL, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'beta'", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, NULL, d));
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_forward_train_relu_ref(NULL, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, NULL, buf.gamma, buf.beta, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, NULL, buf.beta, d));
    /* the float switch passes a NULL on to ref, which names it */
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_forward_train(BN_IMPL_REF, NULL, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, NULL, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_EFAULT, "'beta'", bn_forward_train_relu(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, NULL, d));
}
END_TEST

/* invstd is an optional output of the forward pass; y is the same without it. */
START_TEST(forward_train_accepts_NULL_invstd)
{
    double y_no_invstd[COUNT], mean_no_invstd[CB], var_no_invstd[CB];
    EXPECT_OK(bn_forward_train_ref(y_no_invstd, mean_no_invstd, var_no_invstd, NULL, buf.x, buf.gamma, buf.beta, &buf.d));
    /* the same arithmetic on the same data: bit-identical */
    ck_assert_uint_eq(cmp_f64("y without invstd vs with", y_no_invstd, buf.y, COUNT, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("var_biased without invstd vs with", var_no_invstd, buf.var, CB, 0, 0), 0);
    EXPECT_OK(bn_forward_train_relu_ref(y_no_invstd, mean_no_invstd, var_no_invstd, NULL, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_OK(bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, NULL, buf.fx, buf.fgamma, buf.fbeta, &buf.d));
}
END_TEST

/* affine = 0: y = xhat; gamma, beta may be NULL, and y equals the affine
 * result with gamma = 1, beta = 0 exactly (1·xhat + 0 = xhat). */
START_TEST(forward_train_without_affine_accepts_NULL_gamma_beta)
{
    bn_desc d = buf.d;
    d.affine = 0;
    double y_plain[COUNT], y_affine[COUNT], m[CB], v[CB], s[CB];
    const double ones[CB] = {1, 1, 1}, zeros[CB] = {0, 0, 0};
    EXPECT_OK(bn_forward_train_ref(y_plain, m, v, s, buf.x, NULL, NULL, &d));
    EXPECT_OK(bn_forward_train_ref(y_affine, m, v, s, buf.x, ones, zeros, &buf.d));
    ck_assert_uint_eq(cmp_f64("y affine=0 vs gamma=1 beta=0", y_plain, y_affine, COUNT, 0, 0), 0);
    EXPECT_OK(bn_forward_train_relu_ref(y_plain, m, v, s, buf.x, NULL, NULL, &d));
    EXPECT_OK(bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, NULL, NULL, &d));
}
END_TEST

START_TEST(backward_train_NULL_required_pointer_is_EFAULT)
{
    const bn_desc *d = &buf.d;   /* affine = 1: gamma, dgamma, dbeta are required */
    EXPECT_ERROR(BN_EFAULT, "'dx'", bn_backward_train_ref(NULL, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dgamma'", bn_backward_train_ref(buf.dx, NULL, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dbeta'", bn_backward_train_ref(buf.dx, buf.dgamma, NULL, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dy'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, NULL, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, NULL, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, NULL, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'invstd'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, NULL, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, NULL, d));
    EXPECT_ERROR(BN_EFAULT, "'dx'", bn_backward_train_closed_ref(NULL, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'invstd'", bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, NULL, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dbeta'", bn_backward_train_closed_ref(buf.dx, buf.dgamma, NULL, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dy'", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, NULL, buf.y, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, NULL, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'dx'", bn_backward_train_relu_ref(NULL, buf.dgamma, buf.dbeta, buf.dy, buf.y, buf.x, buf.mean, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.y, buf.x, NULL, buf.invstd, buf.gamma, d));
    EXPECT_ERROR(BN_EFAULT, "'invstd'", bn_backward_train(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fmean, NULL, buf.fgamma, d));
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_backward_train_relu(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, NULL, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
}
END_TEST

/* affine = 0: gamma, dgamma, dbeta may be NULL, and dx equals the affine
 * result with gamma = 1 exactly (dy·1 = dy, and 1.0·s = s). */
START_TEST(backward_train_without_affine_accepts_NULL_gamma_dgamma_dbeta)
{
    bn_desc d = buf.d;
    d.affine = 0;
    double dx0[COUNT], dx1[COUNT], dg[CB], db[CB];
    const double ones[CB] = {1, 1, 1};
    EXPECT_OK(bn_backward_train_ref(dx0, NULL, NULL, buf.dy, buf.x, buf.mean, buf.invstd, NULL, &d));
    EXPECT_OK(bn_backward_train_ref(dx1, dg, db, buf.dy, buf.x, buf.mean, buf.invstd, ones, &buf.d));
    ck_assert_uint_eq(cmp_f64("dx affine=0 vs gamma=1", dx0, dx1, COUNT, 0, 0), 0);
    EXPECT_OK(bn_backward_train_closed_ref(dx0, NULL, NULL, buf.dy, buf.x, buf.mean, buf.invstd, NULL, &d));
    EXPECT_OK(bn_backward_train_closed_ref(dx1, dg, db, buf.dy, buf.x, buf.mean, buf.invstd, ones, &buf.d));
    ck_assert_uint_eq(cmp_f64("closed dx affine=0 vs gamma=1", dx0, dx1, COUNT, 0, 0), 0);
    EXPECT_OK(bn_backward_train_relu_ref(dx0, NULL, NULL, buf.dy, buf.y, buf.x, buf.mean, buf.invstd, NULL, &d));
    EXPECT_OK(bn_backward_train(BN_IMPL_REF, buf.fdx, NULL, NULL, buf.fdy, buf.fx, buf.fmean, buf.finvstd, NULL, &d));
}
END_TEST

START_TEST(inference_NULL_required_pointer_is_EFAULT)
{
    const bn_desc *d = &buf.d;
    EXPECT_ERROR(BN_EFAULT, "'scale'", bn_fold_ref(NULL, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'shift'", bn_fold_ref(buf.scale, NULL, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_fold_ref(buf.scale, buf.shift, NULL, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'beta'", bn_fold_ref(buf.scale, buf.shift, buf.gamma, NULL, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, NULL, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'var'", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, NULL, d));
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_forward_infer_ref(NULL, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_forward_infer_ref(buf.y, NULL, buf.gamma, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_forward_infer_ref(buf.y, buf.x, NULL, buf.beta, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'beta'", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, NULL, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, NULL, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'var'", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, NULL, d));
    EXPECT_ERROR(BN_EFAULT, "'dx'", bn_backward_infer_ref(NULL, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'dgamma'", bn_backward_infer_ref(buf.dx, NULL, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'dbeta'", bn_backward_infer_ref(buf.dx, buf.dgamma, NULL, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'dy'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, NULL, buf.x, buf.gamma, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'x'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, NULL, buf.gamma, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'gamma'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, NULL, buf.mean, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, NULL, buf.var, d));
    EXPECT_ERROR(BN_EFAULT, "'var'", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, NULL, d));
    EXPECT_ERROR(BN_EFAULT, "'y'", bn_forward_infer(BN_IMPL_REF, NULL, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, d));
    EXPECT_ERROR(BN_EFAULT, "'var'", bn_backward_infer(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fgamma, buf.fmean, NULL, d));
}
END_TEST

START_TEST(inference_without_affine_accepts_NULL_gamma_beta_dgamma_dbeta)
{
    bn_desc d = buf.d;
    d.affine = 0;
    EXPECT_OK(bn_fold_ref(buf.scale, buf.shift, NULL, NULL, buf.mean, buf.var, &d));
    EXPECT_OK(bn_forward_infer_ref(buf.y, buf.x, NULL, NULL, buf.mean, buf.var, &d));
    EXPECT_OK(bn_backward_infer_ref(buf.dx, NULL, NULL, buf.dy, buf.x, NULL, buf.mean, buf.var, &d));
    EXPECT_OK(bn_forward_infer(BN_IMPL_REF, buf.fy, buf.fx, NULL, NULL, buf.fmean, buf.fvar, &d));
    EXPECT_OK(bn_backward_infer(BN_IMPL_REF, buf.fdx, NULL, NULL, buf.fdy, buf.fx, NULL, buf.fmean, buf.fvar, &d));
}
END_TEST

START_TEST(running_and_population_NULL_required_pointer_is_EFAULT)
{
    double rm[CB] = {0}, rv[CB] = {1, 1, 1}, pm[CB], pv[CB];
    size_t nb = 0;
    const bn_running_rule rule = BN_RUNNING_MOMENTUM_NEW_UNBIASED;
    EXPECT_ERROR(BN_EFAULT, "'running_mean'", bn_running_update_ref(NULL, rv, &nb, buf.mean, buf.var, CB, 8, rule, 0.1));
    EXPECT_ERROR(BN_EFAULT, "'running_var'", bn_running_update_ref(rm, NULL, &nb, buf.mean, buf.var, CB, 8, rule, 0.1));
    EXPECT_ERROR(BN_EFAULT, "'mean'", bn_running_update_ref(rm, rv, &nb, NULL, buf.var, CB, 8, rule, 0.1));
    EXPECT_ERROR(BN_EFAULT, "'var_biased'", bn_running_update_ref(rm, rv, &nb, buf.mean, NULL, CB, 8, rule, 0.1));
    EXPECT_ERROR(BN_EFAULT, "'running_var'", bn_running_update(BN_IMPL_REF, buf.fmean, NULL, &nb, buf.fmean, buf.fvar, CB, 8, rule, 0.1));
    EXPECT_ERROR(BN_EFAULT, "'pop_mean'", bn_population_stats_ref(NULL, pv, buf.mean, buf.var, 1, CB, 8));
    EXPECT_ERROR(BN_EFAULT, "'pop_var_unbiased'", bn_population_stats_ref(pm, NULL, buf.mean, buf.var, 1, CB, 8));
    EXPECT_ERROR(BN_EFAULT, "'batch_means'", bn_population_stats_ref(pm, pv, NULL, buf.var, 1, CB, 8));
    EXPECT_ERROR(BN_EFAULT, "'batch_vars_biased'", bn_population_stats_ref(pm, pv, buf.mean, NULL, 1, CB, 8));
    EXPECT_ERROR(BN_EFAULT, "'batch_means'", bn_population_stats(buf.fmean, buf.fvar, NULL, buf.fvar, 1, CB, 8));
}
END_TEST

/* ========================================================== bad data */

/* x = NaN at (n=1, c=1, i=2) of an NCHW tensor: channel 1 is named. */
START_TEST(nan_in_x_is_EDOM_naming_the_channel)
{
    buf.x[at(&buf.d, 1, 1, 2)] = NAN;
    buf.fx[at(&buf.d, 1, 1, 2)] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_train(BN_IMPL_REF, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "NaN", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
}
END_TEST

/* +Inf in channel 2 and -Inf in channel 0 of an NHWC tensor. */
/* Inference maps each value on its own, but NaN in x is still bad input. */
START_TEST(nan_in_x_is_EDOM_in_inference)
{
    buf.x[at(&buf.d, 0, 2, 1)] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &buf.d));
}
END_TEST

/* A NaN or Inf gamma or beta would make a whole channel NaN: rejected by
 * every function that uses them. */
START_TEST(nan_or_inf_gamma_beta_is_EDOM)
{
    double bad = _i ? INFINITY : NAN;
    buf.gamma[1] = bad;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "gamma", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "gamma", bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "gamma", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &buf.d));
    EXPECT_ERROR(BN_EDOM, "gamma", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, &buf.d));
    EXPECT_ERROR(BN_EDOM, "gamma", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, &buf.d));
    buf.gamma[1] = 1;
    buf.beta[2] = bad;
    EXPECT_ERROR(BN_EDOM, "beta", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "beta", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &buf.d));
}
END_TEST

START_TEST(inf_in_x_is_EDOM_naming_the_channel)
{
    bn_desc d = buf.d;
    d.layout = BN_NHWC;
    double x[COUNT];
    memcpy(x, buf.x, sizeof x);
    x[at(&d, 1, 2, 3)] = INFINITY;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, x, buf.gamma, buf.beta, &d));
    memcpy(x, buf.x, sizeof x);
    x[at(&d, 0, 0, 0)] = -INFINITY;
    EXPECT_ERROR(BN_EDOM, "channel 0", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, x, buf.gamma, buf.beta, &d));
    EXPECT_ERROR(BN_EDOM, "channel 0", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, x, buf.gamma, buf.beta, &d));
}
END_TEST

/* A constant channel has sigma2_B = 0: with eps = 0 xhat would be 0/0. With
 * eps > 0 it is fine: xhat = 0 and y = beta exactly. */
START_TEST(constant_channel_with_eps_0_is_EDOM)
{
    bn_desc d = buf.d;
    for (size_t n = 0; n < NB; n++)
        for (size_t i = 0; i < HWB; i++)
            buf.x[at(&d, n, 2, i)] = 5.0;
    d.eps = 0;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &d));
    EXPECT_ERROR(BN_EDOM, "zero or subnormal", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &d));
    d.eps = 1e-5;
    EXPECT_OK(bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &d));
    double y2[NB * HWB], beta2[NB * HWB];
    for (size_t n = 0; n < NB; n++)
        for (size_t i = 0; i < HWB; i++) {
            y2[n * HWB + i] = buf.y[at(&d, n, 2, i)];
            beta2[n * HWB + i] = buf.beta[2];
        }
    /* gamma·0 + beta is beta, no rounding */
    ck_assert_uint_eq(cmp_f64("y of the constant channel vs beta", y2, beta2, NB * HWB, 0, 0), 0);
}
END_TEST

/* x = ±1e200 in channel 1: the mean is finite, (x - mu)² = 1e400 is not. */
START_TEST(squares_overflowing_double_are_EDOM)
{
    for (size_t n = 0; n < NB; n++)
        for (size_t i = 0; i < HWB; i++)
            buf.x[at(&buf.d, n, 1, i)] = (i % 2 ? 1e200 : -1e200);
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_train_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
    EXPECT_ERROR(BN_EDOM, "overflow", bn_forward_train_relu_ref(buf.y, buf.mean, buf.var, buf.invstd, buf.x, buf.gamma, buf.beta, &buf.d));
}
END_TEST

/* dy = NaN in channel 2: every gradient of that channel would be NaN. For the
 * fused ReLU, y = 1 everywhere, so that the NaN is passed on and not masked. */
START_TEST(nan_in_dy_is_EDOM_in_backward)
{
    double ones[COUNT];
    for (size_t k = 0; k < COUNT; k++)
        ones[k] = 1;
    buf.dy[at(&buf.d, 0, 2, 1)] = NAN;
    buf.fdy[at(&buf.d, 0, 2, 1)] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "dy", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, ones, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, &buf.d));
    EXPECT_ERROR(BN_EDOM, "dy", bn_backward_train(BN_IMPL_REF, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, &buf.d));
    /* without affine there is no dgamma to see the NaN in: still an error */
    bn_desc d = buf.d;
    d.affine = 0;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_backward_train_ref(buf.dx, NULL, NULL, buf.dy, buf.x, buf.mean, buf.invstd, NULL, &d));
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_backward_infer_ref(buf.dx, NULL, NULL, buf.dy, buf.x, NULL, buf.mean, buf.var, &d));
}
END_TEST

/* _i picks a saved invstd that bn_forward_train never produces: 0, -1, NaN,
 * +Inf (in channel 1); and a NaN saved mean. */
START_TEST(bad_saved_invstd_is_EDOM)
{
    static const double bad[] = {0.0, -1.0, NAN, INFINITY};
    buf.invstd[1] = bad[_i];
    printf("  saved invstd[1] = %g\n", bad[_i]);
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "invstd", bn_backward_train_closed_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    EXPECT_ERROR(BN_EDOM, "invstd", bn_backward_train_relu_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.y, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
    buf.invstd[1] = 1.0;
    buf.mean[0] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 0", bn_backward_train_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.mean, buf.invstd, buf.gamma, &buf.d));
}
END_TEST

/* Population statistics must be finite, var >= 0 and var + eps > 0. */
START_TEST(inference_negative_var_or_zero_var_plus_eps_is_EDOM)
{
    bn_desc d = buf.d;
    buf.var[1] = -0.5;
    buf.fvar[1] = -0.5f;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, &d));
    EXPECT_ERROR(BN_EDOM, "var = -0.5", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, &d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_infer(BN_IMPL_REF, buf.fy, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, &d));
    buf.var[1] = 0;
    d.eps = 0;
    EXPECT_ERROR(BN_EDOM, "zero or subnormal", bn_fold_ref(buf.scale, buf.shift, buf.gamma, buf.beta, buf.mean, buf.var, &d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &d));
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_backward_infer_ref(buf.dx, buf.dgamma, buf.dbeta, buf.dy, buf.x, buf.gamma, buf.mean, buf.var, &d));
    buf.var[1] = 1;
    buf.mean[2] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_forward_infer_ref(buf.y, buf.x, buf.gamma, buf.beta, buf.mean, buf.var, &d));
}
END_TEST

/* Finite inputs whose gradient overflows double: gamma = 100, dy = ±1e307,
 * m' = 2, so dl/dxhat = dy·gamma = ±1e309. The true dx is 0 here (dy is
 * proportional to xhat); a method may get it, or report BN_EDOM, but must not
 * return NaN with BN_OK. _i: 0 stepwise, 1 closed form, 2 fused ReLU. */
START_TEST(backward_train_gradient_overflow_is_EDOM_not_NaN)
{
    static const char *names[] = {"bn_backward_train_ref dx",
                                  "bn_backward_train_closed_ref dx",
                                  "bn_backward_train_relu_ref dx"};
    bn_desc d = bn_desc_make(2, 1, 1, 1, BN_NCHW, 0);
    const double x[2] = {-1, 1}, dy[2] = {1e307, -1e307}, y[2] = {1, 1};
    const double mean[1] = {0}, invstd[1] = {1}, gamma1[1] = {100};
    double dx[2], dg[1], db[1];
    int st;
    rec_reset();
    if (_i == 0)
        st = bn_backward_train_ref(dx, dg, db, dy, x, mean, invstd, gamma1, &d);
    else if (_i == 1)
        st = bn_backward_train_closed_ref(dx, dg, db, dy, x, mean, invstd, gamma1, &d);
    else
        st = bn_backward_train_relu_ref(dx, dg, db, dy, y, x, mean, invstd, gamma1, &d);
    expect_finite_unless_error(names[_i], st, dx, 2);
}
END_TEST

/* Finite inputs whose inference outputs overflow double; each sum fits the
 * long double accumulator but not the double it is returned in.
 * x = ±0.1, mean 0, var 0.01 (xhat = ±1), eps 0. _i picks the case. */
START_TEST(inference_overflow_is_EDOM_not_Inf)
{
    bn_desc d = bn_desc_make(2, 1, 1, 1, BN_NCHW, 0);
    const double x[2] = {-0.1, 0.1}, mean[1] = {0}, var[1] = {0.01}, beta[1] = {0};
    double y[2], dx[2], dg[1], db[1];
    int st;
    rec_reset();
    if (_i == 0) { /* dgamma = Σ dy·xhat = 2e308 (dx = ±1e307 is fine) */
        const double dy[2] = {-1e308, 1e308}, gamma1[1] = {0.01};
        st = bn_backward_infer_ref(dx, dg, db, dy, x, gamma1, mean, var, &d);
        expect_finite_unless_error("bn_backward_infer_ref dgamma = 2e308", st, dg, 1);
    } else if (_i == 1) { /* dbeta = Σ dy = 2e308 (dx = ±1e307, dgamma = 0) */
        const double dy[2] = {1e308, 1e308}, gamma1[1] = {0.01};
        st = bn_backward_infer_ref(dx, dg, db, dy, x, gamma1, mean, var, &d);
        expect_finite_unless_error("bn_backward_infer_ref dbeta = 2e308", st, db, 1);
    } else if (_i == 2) { /* dx = dy·gamma/sqrt(var) = 1e308·10 */
        const double dy[2] = {1e308, -1e308}, gamma1[1] = {1};
        st = bn_backward_infer_ref(dx, dg, db, dy, x, gamma1, mean, var, &d);
        expect_finite_unless_error("bn_backward_infer_ref dx = 1e309", st, dx, 2);
    } else { /* y = (x - mean)/sqrt(var) with x - mean = 2e308 */
        const double x_big[2] = {1e308, 1e308}, mean_neg[1] = {-1e308}, gamma1[1] = {1};
        st = bn_forward_infer_ref(y, x_big, gamma1, beta, mean_neg, var, &d);
        expect_finite_unless_error("bn_forward_infer_ref y = 2e309", st, y, 2);
    }
}
END_TEST

/* =========================================== running statistics */

START_TEST(running_update_unknown_rule_is_EINVAL)
{
    double rm[CB] = {0}, rv[CB] = {1, 1, 1};
    EXPECT_ERROR(BN_EINVAL, "unknown running rule 3", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 8, (bn_running_rule)3, 0.1));
    EXPECT_ERROR(BN_EINVAL, "unknown running rule -1", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 8, (bn_running_rule)-1, 0.1));
    EXPECT_ERROR(BN_EINVAL, "unknown running rule 3", bn_running_update(BN_IMPL_REF, buf.fmean, buf.fvar, NULL, buf.fmean, buf.fvar, CB, 8, (bn_running_rule)3, 0.1));
}
END_TEST

/* _i picks a momentum outside [0, 1]: below, above, NaN, Inf. */
START_TEST(running_update_momentum_outside_0_1_is_EINVAL)
{
    static const double bad[] = {-0.1, 1.0 + 1e-12, NAN, INFINITY};
    double rm[CB] = {0}, rv[CB] = {1, 1, 1};
    printf("  momentum = %.17g\n", bad[_i]);
    EXPECT_ERROR(BN_EINVAL, "momentum", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, bad[_i]));
    EXPECT_ERROR(BN_EINVAL, "momentum", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 8, BN_RUNNING_MOMENTUM_OLD_BIASED, bad[_i]));
    EXPECT_ERROR(BN_EINVAL, "momentum", bn_running_update(BN_IMPL_REF, buf.fmean, buf.fvar, NULL, buf.fmean, buf.fvar, CB, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, bad[_i]));
}
END_TEST

/* m = 1: the unbiased rules would divide by m - 1 = 0; Keras stores the
 * biased variance and has nothing to divide: var = 0.99·1 + 0.01·2 = 1.01. */
START_TEST(running_update_m_1_is_ESINGLE_for_unbiased_rules_only)
{
    double rm[1] = {0}, rv[1] = {1};
    const double mean[1] = {3}, var[1] = {2};
    size_t nb = 0;
    EXPECT_ERROR(BN_ESINGLE, "m = 1", bn_running_update_ref(rm, rv, NULL, mean, var, 1, 1, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
    EXPECT_ERROR(BN_ESINGLE, "m = 1", bn_running_update_ref(rm, rv, &nb, mean, var, 1, 1, BN_RUNNING_CUMULATIVE_UNBIASED, 0));
    EXPECT_OK(bn_running_update_ref(rm, rv, NULL, mean, var, 1, 1, BN_RUNNING_MOMENTUM_OLD_BIASED, 0.99));
    const double want_mean[1] = {0.03}, want_var[1] = {1.01};
    /* 1 - 0.99 carries 0.99's rounding magnified 99x (~1e-15 relative on the
     * batch term); the rest is a few ulps */
    ck_assert_uint_eq(cmp_f64("Keras running_mean after m=1", rm, want_mean, 1, 0, 1e-14), 0);
    ck_assert_uint_eq(cmp_f64("Keras running_var after m=1", rv, want_var, 1, 0, 1e-14), 0);
}
END_TEST

START_TEST(running_update_cumulative_without_num_batches_is_EFAULT)
{
    double rm[CB] = {0}, rv[CB] = {1, 1, 1};
    EXPECT_ERROR(BN_EFAULT, "'num_batches'", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 8, BN_RUNNING_CUMULATIVE_UNBIASED, 0));
    EXPECT_ERROR(BN_EFAULT, "'num_batches'", bn_running_update(BN_IMPL_REF, buf.fmean, buf.fvar, NULL, buf.fmean, buf.fvar, CB, 8, BN_RUNNING_CUMULATIVE_UNBIASED, 0));
}
END_TEST

/* Batch statistics that no batch has: NaN or negative variance, NaN mean,
 * Inf variance; channel 1 is named. The running values and the count are
 * left as they were. */
START_TEST(running_update_bad_batch_stats_are_EDOM_and_change_nothing)
{
    double rm[CB] = {0.5, -1, 2}, rv[CB] = {1, 2, 3}, mean[CB], var[CB];
    const double rm0[CB] = {0.5, -1, 2}, rv0[CB] = {1, 2, 3};
    size_t nb = 7;
    memcpy(mean, buf.mean, sizeof mean);
    memcpy(var, buf.var, sizeof var);
    var[1] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_running_update_ref(rm, rv, &nb, mean, var, CB, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
    var[1] = -1e-3;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_running_update_ref(rm, rv, &nb, mean, var, CB, 8, BN_RUNNING_MOMENTUM_OLD_BIASED, 0.99));
    var[1] = INFINITY;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_running_update_ref(rm, rv, &nb, mean, var, CB, 8, BN_RUNNING_CUMULATIVE_UNBIASED, 0));
    var[1] = buf.var[1];
    mean[1] = NAN;
    EXPECT_ERROR(BN_EDOM, "channel 1", bn_running_update_ref(rm, rv, &nb, mean, var, CB, 8, BN_RUNNING_CUMULATIVE_UNBIASED, 0));
    /* nothing was written: exact */
    ck_assert_uint_eq(cmp_f64("running_mean after the errors", rm, rm0, CB, 0, 0), 0);
    ck_assert_uint_eq(cmp_f64("running_var after the errors", rv, rv0, CB, 0, 0), 0);
    ck_assert_uint_eq(nb, 7);
}
END_TEST

START_TEST(running_update_zero_sizes_are_EBADLEN)
{
    double rm[CB] = {0}, rv[CB] = {1, 1, 1};
    EXPECT_ERROR(BN_EBADLEN, "C = 0", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, 0, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
    EXPECT_ERROR(BN_EBADLEN, "m = 0", bn_running_update_ref(rm, rv, NULL, buf.mean, buf.var, CB, 0, BN_RUNNING_MOMENTUM_OLD_BIASED, 0.99));
    EXPECT_ERROR(BN_EBADLEN, "C = 0", bn_running_update(BN_IMPL_REF, buf.fmean, buf.fvar, NULL, buf.fmean, buf.fvar, 0, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
}
END_TEST

/* Algorithm 2 over K = 0 batches has no average; m = 1 has no m/(m-1). */
START_TEST(population_stats_K_0_is_EBADLEN_and_m_1_is_ESINGLE)
{
    double pm[CB], pv[CB];
    float fpm[CB], fpv[CB];
    EXPECT_ERROR(BN_EBADLEN, "K = 0", bn_population_stats_ref(pm, pv, buf.mean, buf.var, 0, CB, 8));
    EXPECT_ERROR(BN_EBADLEN, "C = 0", bn_population_stats_ref(pm, pv, buf.mean, buf.var, 1, 0, 8));
    EXPECT_ERROR(BN_EBADLEN, "m = 0", bn_population_stats_ref(pm, pv, buf.mean, buf.var, 1, CB, 0));
    EXPECT_ERROR(BN_ESINGLE, "m = 1", bn_population_stats_ref(pm, pv, buf.mean, buf.var, 1, CB, 1));
    EXPECT_ERROR(BN_EBADLEN, "K = 0", bn_population_stats(fpm, fpv, buf.fmean, buf.fvar, 0, CB, 8));
    EXPECT_ERROR(BN_ESINGLE, "m = 1", bn_population_stats(fpm, fpv, buf.fmean, buf.fvar, 1, CB, 1));
    /* a bad variance in batch 0, channel 2 */
    double var[CB];
    memcpy(var, buf.var, sizeof var);
    var[2] = -1;
    EXPECT_ERROR(BN_EDOM, "channel 2", bn_population_stats_ref(pm, pv, buf.mean, var, 1, CB, 8));
}
END_TEST

/* ====================================== implementations and the switch */

START_TEST(impl_parse_accepts_ref_fast_cuda)
{
    static const char *names[] = {"ref", "fast", "cuda"};
    static const bn_impl want[] = {BN_IMPL_REF, BN_IMPL_FAST, BN_IMPL_CUDA};
    for (int k = 0; k < 3; k++) {
        bn_impl impl = (bn_impl)-1;
        EXPECT_OK(bn_impl_parse(names[k], &impl));
        ck_assert_int_eq(impl, want[k]);
        ck_assert_str_eq(bn_impl_name(impl), names[k]);
    }
}
END_TEST

/* Names are exact: no GPU alias, no case folding, no trailing blanks; *impl
 * is left alone on error. */
START_TEST(impl_parse_rejects_gpu_and_other_names)
{
    bn_impl impl = BN_IMPL_CUDA;
    EXPECT_ERROR(BN_EINVAL, "'gpu'", bn_impl_parse("gpu", &impl));
    EXPECT_ERROR(BN_EINVAL, "'REF'", bn_impl_parse("REF", &impl));
    EXPECT_ERROR(BN_EINVAL, "''", bn_impl_parse("", &impl));
    EXPECT_ERROR(BN_EINVAL, "ref, fast or cuda", bn_impl_parse("ref ", &impl));
    ck_assert_int_eq(impl, BN_IMPL_CUDA);
    EXPECT_ERROR(BN_EFAULT, "'name'", bn_impl_parse(NULL, &impl));
    EXPECT_ERROR(BN_EFAULT, "'impl'", bn_impl_parse("ref", NULL));
}
END_TEST

START_TEST(impl_ref_is_always_available)
{
    const char *why = NULL;
    ck_assert_int_eq(bn_impl_available(BN_IMPL_REF, &why), 1);
    ck_assert_int_eq(bn_impl_available(BN_IMPL_REF, NULL), 1);
    printf("  bn_impl_available(BN_IMPL_REF) = 1: \"%s\"\n", why);
    ck_assert_ptr_nonnull(why);
    ck_assert_int_eq(rec.calls, 0);
}
END_TEST

/* _i = 0: fast, 1: cuda. If it was not built in, every function of the float
 * switch says BN_ENOIMPL with bn_impl_available's reason; if it was, the
 * error path cannot be reached here. */
START_TEST(float_switch_without_fast_or_cuda_is_ENOIMPL)
{
    bn_impl impl = _i == 0 ? BN_IMPL_FAST : BN_IMPL_CUDA;
    const char *why = NULL;
    if (bn_impl_available(impl, &why)) {
        char what[64];
        snprintf(what, sizeof what, "BN_ENOIMPL for --impl %s", bn_impl_name(impl));
        skip(what, "it is built into this bnlab, so the switch calls it");
        return;
    }
    printf("  bn_impl_available(%s) = 0: \"%s\"\n", bn_impl_name(impl), why);
    const bn_desc *d = &buf.d;
    size_t nb = 0;
    EXPECT_ERROR(BN_ENOIMPL, why, bn_forward_train(impl, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_forward_train_relu(impl, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_backward_train(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_backward_train_relu(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_running_update(impl, buf.fmean, buf.fvar, &nb, buf.fmean, buf.fvar, CB, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_forward_infer(impl, buf.fy, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, d));
    EXPECT_ERROR(BN_ENOIMPL, why, bn_backward_infer(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fgamma, buf.fmean, buf.fvar, d));
    ck_assert_uint_eq(nb, 0);
}
END_TEST

START_TEST(impl_outside_the_enum_is_EINVAL)
{
    const bn_impl impl = (bn_impl)9;
    const char *why = NULL;
    ck_assert_int_eq(bn_impl_available(impl, &why), 0);
    printf("  bn_impl_available(9) = 0: \"%s\"; bn_impl_name(9) = \"%s\"\n", why,
           bn_impl_name(impl));
    ck_assert_str_eq(bn_impl_name(impl), "unknown");
    const bn_desc *d = &buf.d;
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_forward_train(impl, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_forward_train_relu(impl, buf.fy, buf.fmean, buf.fvar, buf.finvstd, buf.fx, buf.fgamma, buf.fbeta, d));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_backward_train(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_backward_train_relu(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fy, buf.fx, buf.fmean, buf.finvstd, buf.fgamma, d));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_running_update(impl, buf.fmean, buf.fvar, NULL, buf.fmean, buf.fvar, CB, 8, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_forward_infer(impl, buf.fy, buf.fx, buf.fgamma, buf.fbeta, buf.fmean, buf.fvar, d));
    EXPECT_ERROR(BN_EINVAL, "unknown implementation 9", bn_backward_infer(impl, buf.fdx, buf.fdgamma, buf.fdbeta, buf.fdy, buf.fx, buf.fgamma, buf.fmean, buf.fvar, d));
}
END_TEST

/* impl = ref computes in double and rounds to float; a finite double beyond
 * FLT_MAX (3.4e38) must be BN_EDOM, reported once, not an Inf. _i picks the
 * function of the switch; the data make one of its outputs ~1e45..1e60. */
START_TEST(float_switch_result_beyond_float_range_is_EDOM)
{
    bn_desc d = bn_desc_make(4, 1, 1, 1, BN_NCHW, 1e-5);
    float x[4] = {1e30f, -1e30f, 1e30f, -1e30f}, y[4], dx[4], dy[4] = {0};
    float mean[1] = {0}, var[1] = {0}, invstd[1] = {0}, dg[1], db[1];
    const float gamma1[1] = {1}, beta[1] = {0}, ones[4] = {1, 1, 1, 1};
    size_t nb = 0;
    switch (_i) {
    case 0: /* var_biased = 1e60 */
        EXPECT_ERROR(BN_EDOM, "var_biased", bn_forward_train(BN_IMPL_REF, y, mean, var, invstd, x, gamma1, beta, &d));
        break;
    case 1:
        EXPECT_ERROR(BN_EDOM, "var_biased", bn_forward_train_relu(BN_IMPL_REF, y, mean, var, invstd, x, gamma1, beta, &d));
        break;
    case 2: /* xhat = (-1, 0, 1, 0), invstd = 1e20, dy = (0, 1e30, 0, 0): dx ~ 1e50 */
    case 3: {
        const float xs[4] = {-1e-20f, 0, 1e-20f, 0};
        invstd[0] = 1e20f;
        dy[1] = 1e30f;
        if (_i == 2)
            EXPECT_ERROR(BN_EDOM, "dx", bn_backward_train(BN_IMPL_REF, dx, dg, db, dy, xs, mean, invstd, gamma1, &d));
        else
            EXPECT_ERROR(BN_EDOM, "dx", bn_backward_train_relu(BN_IMPL_REF, dx, dg, db, dy, ones, xs, mean, invstd, gamma1, &d));
        break;
    }
    case 4: /* scale = 1/sqrt(1e-30) = 1e15, y = 1e45 */
        var[0] = 1e-30f;
        d.eps = 0;
        EXPECT_ERROR(BN_EDOM, "y", bn_forward_infer(BN_IMPL_REF, y, x, gamma1, beta, mean, var, &d));
        break;
    case 5: /* dx = dy·1e15 = 1e45 (x = mean: xhat = 0, dgamma = 0) */
        var[0] = 1e-30f;
        d.eps = 0;
        for (int k = 0; k < 4; k++)
            dy[k] = 1e30f, x[k] = 0;
        EXPECT_ERROR(BN_EDOM, "dx", bn_backward_infer(BN_IMPL_REF, dx, dg, db, dy, x, gamma1, mean, var, &d));
        break;
    case 6: { /* momentum 1: running_var = 2/(2-1)·3e38 = 6e38 */
        float rm[1] = {0}, rv[1] = {1};
        const float bm[1] = {0}, bv[1] = {3e38f};
        EXPECT_ERROR(BN_EDOM, "running_var", bn_running_update(BN_IMPL_REF, rm, rv, &nb, bm, bv, 1, 2, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 1.0));
        break;
    }
    case 7: { /* Var[x] = 2/(2-1)·3e38 = 6e38 */
        float pm[1], pv[1];
        const float bm[1] = {0}, bv[1] = {3e38f};
        EXPECT_ERROR(BN_EDOM, "pop_var_unbiased", bn_population_stats(pm, pv, bm, bv, 1, 1, 2));
        break;
    }
    }
    ck_assert_msg(strstr(bn_last_error(), "does not fit in a float") != NULL,
                  "message \"%s\" does not say the result does not fit in a float",
                  bn_last_error());
}
END_TEST

/* ===================================================== the handler itself */

START_TEST(strerror_is_distinct_and_named_for_every_status)
{
    const char *seen[BN_ECUDA + 1];
    for (int s = BN_OK; s <= BN_ECUDA; s++) {
        const char *str = bn_strerror(s);
        printf("  bn_strerror(%2d) = \"%s\"\n", s, str ? str : "(null)");
        ck_assert_ptr_nonnull(str);
        ck_assert_msg(str[0] != '\0', "bn_strerror(%d) is empty", s);
        size_t len = strlen(status_name(s));
        ck_assert_msg(strncmp(str, status_name(s), len) == 0 && str[len] == ':',
                      "bn_strerror(%d) = \"%s\" does not start with \"%s:\"", s, str,
                      status_name(s));
        for (int t = 0; t < s; t++)
            ck_assert_msg(strcmp(str, seen[t]) != 0, "bn_strerror(%d) == bn_strerror(%d)", s, t);
        seen[s] = str;
    }
    static const int unknown[] = {-1, BN_ECUDA + 1, 1000};
    for (int k = 0; k < 3; k++) {
        const char *str = bn_strerror(unknown[k]);
        printf("  bn_strerror(%d) = \"%s\"\n", unknown[k], str ? str : "(null)");
        ck_assert_ptr_nonnull(str);
        ck_assert_msg(str[0] != '\0', "bn_strerror(%d) is empty", unknown[k]);
        for (int t = 0; t <= BN_ECUDA; t++)
            ck_assert_msg(strcmp(str, seen[t]) != 0,
                          "bn_strerror(%d) falls back to status %d's string", unknown[k], t);
    }
}
END_TEST

/* set(NULL) returns the handler it replaces and installs the default, which
 * prints on stderr: the recorder is no longer called, but bn_last_error()
 * still keeps the message. The quiet handler prints nothing and keeps it too. */
START_TEST(set_error_handler_NULL_restores_default_and_returns_previous)
{
    bn_error_handler_t *h = bn_set_error_handler(NULL);
    ck_assert_msg(h == recording_handler, "bn_set_error_handler(NULL) did not return the recorder");
    bn_impl impl;
    printf("  default handler, expect a 'bnlab: unknown implementation' line on stderr:\n");
    fflush(stdout);
    rec_reset();
    ck_assert_int_eq(bn_impl_parse("gpu", &impl), BN_EINVAL);
    fflush(stderr);
    ck_assert_int_eq(rec.calls, 0);
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "'gpu'"));
    h = bn_set_error_handler(bn_error_handler_quiet);
    ck_assert_msg(h == previous_handler,
                  "set(NULL) installed another handler than the one in place at start (the default)");
    rec_reset();
    ck_assert_int_eq(bn_impl_parse("tpu", &impl), BN_EINVAL);
    ck_assert_int_eq(rec.calls, 0);
    printf("  quiet handler: nothing printed, bn_last_error() = \"%s\"\n", bn_last_error());
    ck_assert_ptr_nonnull(strstr(bn_last_error(), "'tpu'"));
    h = bn_set_error_handler(recording_handler);
    ck_assert_msg(h == bn_error_handler_quiet, "bn_set_error_handler did not return the quiet handler");
}
END_TEST

/* =============================================================== suites */

static TCase *tcase_recorded(const char *name)
{
    TCase *tc = tcase_create(name);
    tcase_add_checked_fixture(tc, setup, teardown);
    return tc;
}

static Suite *shapes_suite(void)
{
    Suite *s = suite_create("errors: shapes and the descriptor");
    TCase *tc = tcase_recorded("descriptor");
    tcase_add_loop_test(tc, zero_size_in_any_dimension_is_EBADLEN, 0, 4);
    tcase_add_test(tc, element_count_overflows_size_t_is_EOVERFLOW);
    tcase_add_test(tc, byte_count_overflows_size_t_is_EOVERFLOW);
    tcase_add_test(tc, byte_count_beyond_PTRDIFF_MAX_is_EOVERFLOW);
    tcase_add_test(tc, one_value_per_channel_is_ESINGLE_in_training_only);
    tcase_add_test(tc, one_value_per_channel_in_inference_is_normalized);
    tcase_add_loop_test(tc, eps_negative_nan_or_inf_is_EINVAL, 0, 4);
    tcase_add_test(tc, layout_7_is_EINVAL);
    tcase_add_test(tc, affine_2_is_EINVAL);
    tcase_add_test(tc, null_descriptor_is_EFAULT);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *pointers_suite(void)
{
    Suite *s = suite_create("errors: NULL pointers");
    TCase *tc = tcase_recorded("pointers");
    tcase_add_test(tc, forward_train_NULL_required_pointer_is_EFAULT);
    tcase_add_test(tc, forward_train_accepts_NULL_invstd);
    tcase_add_test(tc, forward_train_without_affine_accepts_NULL_gamma_beta);
    tcase_add_test(tc, backward_train_NULL_required_pointer_is_EFAULT);
    tcase_add_test(tc, backward_train_without_affine_accepts_NULL_gamma_dgamma_dbeta);
    tcase_add_test(tc, inference_NULL_required_pointer_is_EFAULT);
    tcase_add_test(tc, inference_without_affine_accepts_NULL_gamma_beta_dgamma_dbeta);
    tcase_add_test(tc, running_and_population_NULL_required_pointer_is_EFAULT);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *data_suite(void)
{
    Suite *s = suite_create("errors: bad data");
    TCase *tc = tcase_recorded("data");
    tcase_add_test(tc, nan_in_x_is_EDOM_naming_the_channel);
    tcase_add_test(tc, nan_in_x_is_EDOM_in_inference);
    tcase_add_loop_test(tc, nan_or_inf_gamma_beta_is_EDOM, 0, 2);
    tcase_add_test(tc, inf_in_x_is_EDOM_naming_the_channel);
    tcase_add_test(tc, constant_channel_with_eps_0_is_EDOM);
    tcase_add_test(tc, squares_overflowing_double_are_EDOM);
    tcase_add_test(tc, nan_in_dy_is_EDOM_in_backward);
    tcase_add_loop_test(tc, bad_saved_invstd_is_EDOM, 0, 4);
    tcase_add_test(tc, inference_negative_var_or_zero_var_plus_eps_is_EDOM);
    tcase_add_loop_test(tc, backward_train_gradient_overflow_is_EDOM_not_NaN, 0, 3);
    tcase_add_loop_test(tc, inference_overflow_is_EDOM_not_Inf, 0, 4);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *running_suite(void)
{
    Suite *s = suite_create("errors: running and population statistics");
    TCase *tc = tcase_recorded("running");
    tcase_add_test(tc, running_update_unknown_rule_is_EINVAL);
    tcase_add_loop_test(tc, running_update_momentum_outside_0_1_is_EINVAL, 0, 4);
    tcase_add_test(tc, running_update_m_1_is_ESINGLE_for_unbiased_rules_only);
    tcase_add_test(tc, running_update_cumulative_without_num_batches_is_EFAULT);
    tcase_add_test(tc, running_update_bad_batch_stats_are_EDOM_and_change_nothing);
    tcase_add_test(tc, running_update_zero_sizes_are_EBADLEN);
    tcase_add_test(tc, population_stats_K_0_is_EBADLEN_and_m_1_is_ESINGLE);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *switch_suite(void)
{
    Suite *s = suite_create("errors: implementations and the float switch");
    TCase *tc = tcase_recorded("switch");
    tcase_add_test(tc, impl_parse_accepts_ref_fast_cuda);
    tcase_add_test(tc, impl_parse_rejects_gpu_and_other_names);
    tcase_add_test(tc, impl_ref_is_always_available);
    tcase_add_loop_test(tc, float_switch_without_fast_or_cuda_is_ENOIMPL, 0, 2);
    tcase_add_test(tc, impl_outside_the_enum_is_EINVAL);
    tcase_add_loop_test(tc, float_switch_result_beyond_float_range_is_EDOM, 0, 8);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *handler_suite(void)
{
    Suite *s = suite_create("errors: messages and the handler");
    TCase *tc = tcase_recorded("handler");
    tcase_add_test(tc, strerror_is_distinct_and_named_for_every_status);
    tcase_add_test(tc, set_error_handler_NULL_restores_default_and_returns_previous);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {shapes_suite(), pointers_suite(), data_suite(),
                       running_suite(), switch_suite(), handler_suite()};
    int n = (int)(sizeof suites / sizeof suites[0]);
    return run_suites(suites, n) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
