/*
 * cuda_api.c — the public bn_*_cuda functions of bnlab.h (float data in
 * device memory, a stream), the host-staged versions that the run-time
 * switch calls (--impl cuda), and whether a device is present.
 *
 * Each call: checks its arguments exactly as ref/ does (same statuses, same
 * messages; this part needs no GPU), checks that a device exists
 * (BN_ENODEVICE, with CUDA's own words), takes one stream-ordered workspace
 * (cudaMallocAsync), launches the kernels of cuda_kernels.cu on the stream,
 * reads back the per-channel error notes and waits for the stream: a call
 * returns only when its results are there, so that NaN, overflow and bad
 * statistics come back as BN_EDOM naming the channel, and CUDA errors as
 * BN_ECUDA with cudaGetErrorString. On an error the outputs may be partly
 * written (as in fast/).
 *
 * Argument order and meaning: as the _ref functions, plus `stream`
 * (a cudaStream_t; NULL = the default stream). num_batches of the running
 * update is a host counter; every array is device memory. The _f16 and
 * _bf16 versions take 16-bit data arrays (bn_f16, bn_bf16) and float
 * statistics and parameters; the kernels are the same, instantiated per type.
 */
#include <cuda_runtime_api.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>

#include "bn_cuda.h"
#include "bn_internal.h"

/* ------------------------------------------------------------ the device */

int bn_cuda_device_present(const char **why)
{
    static _Thread_local char reason[200];
    int n = 0;
    cudaError_t e = cudaGetDeviceCount(&n);
    if (e != cudaSuccess) {
        snprintf(reason, sizeof reason, "no CUDA device (%s)", cudaGetErrorString(e));
        cudaGetLastError();  /* not sticky: clear it */
    } else if (n == 0) {
        snprintf(reason, sizeof reason, "no CUDA device (cudaGetDeviceCount found 0)");
    } else {
        if (why)
            *why = "available";
        return 1;
    }
    if (why)
        *why = reason;
    return 0;
}

static int need_device(const char *who)
{
    const char *why;
    if (!bn_cuda_device_present(&why))
        BN_ERROR(BN_ENODEVICE, "%s: %s", who, why);
    return BN_OK;
}

/* ------------------------------------------------------- launch shapes */

static int forced_threads, forced_blocks;

void bn_cuda_force_launch(int threads, int blocks)
{
    forced_threads = threads >= 32 && threads <= 1024 && threads % 32 == 0 ? threads : 0;
    forced_blocks = blocks > 0 ? blocks : 0;
}

/* Default: 256 threads; about 16 values per thread per channel, at most
 * 1024 partials per channel (their merge is one thread's loop). */
bn_cu_shape bn_cu_shape_of(const bn_desc *d)
{
    long long HW = (long long)(d->H * d->W), m = (long long)d->N * HW;
    bn_cu_shape s = {(long long)d->N, (long long)d->C, HW, m,
                     d->layout == BN_NHWC || HW == 1, 256, 1, BN_CU_F32};
    if (forced_threads)
        s.threads = forced_threads;
    long long lanes = s.nhwc ? s.threads / 32 : s.threads;
    long long P = forced_blocks ? forced_blocks : (m + lanes * 16 - 1) / (lanes * 16);
    P = P < 1 ? 1 : P > 1024 && !forced_blocks ? 1024 : P;
    long long units = s.nhwc ? (s.C + 31) / 32 : s.C;
    if (P * units > INT_MAX)
        P = INT_MAX / units > 0 ? INT_MAX / units : 1;
    s.blocks = (int)P;
    return s;
}

/* What cudaMemsetAsync(0x7f) leaves in an error note: no channel. The
 * kernels note a channel with atomicMin, so a channel index >= NO_NOTE
 * would never replace it and its error would be lost (BN_OK with NaN
 * outputs): C must stay below NO_NOTE (~2.14e9), not just below INT_MAX. */
#define NO_NOTE 0x7f7f7f7f

/* The sizes the kernels can index: channels below NO_NOTE, grid in range,
 * and each thread's count of values in its unsigned counter. */
static int shape_check(const char *who, const bn_desc *d, int dtype, bn_cu_shape *s)
{
    *s = bn_cu_shape_of(d);
    s->dtype = dtype;
    long long lanes = s->nhwc ? s->threads / 32 : s->threads;
    long long units = s->nhwc ? (s->C + 31) / 32 : s->C;
    if (s->C >= NO_NOTE || units > INT_MAX ||
        s->m / ((long long)s->blocks * lanes) >= (1LL << 31))
        BN_ERROR(BN_EOVERFLOW, "%s: shape N=%zu C=%zu H=%zu W=%zu is too large for "
                 "cuda/'s kernels (C < %d, and < 2^31 values per thread)",
                 who, d->N, d->C, d->H, d->W, NO_NOTE);
    return BN_OK;
}

/* ---------------------------------------------------------------- a call */

/* One call's workspace (error notes first) on its stream. */
typedef struct {
    const char *who;
    cudaStream_t stream;
    char *ws;
    size_t used;
    int *err;
} call;

static void *take(call *c, size_t bytes)
{
    void *p = c->ws + c->used;
    c->used += (bytes + 255) / 256 * 256;
    return p;
}

static int cuda_error(const char *who, const char *what, int e)
{
    cudaGetLastError();
    BN_ERROR(BN_ECUDA, "%s: %s: %s (%s)", who, what, cudaGetErrorName((cudaError_t)e),
             cudaGetErrorString((cudaError_t)e));
}

/* bytes: what the call will take() after the error notes. */
static int call_begin(call *c, const char *who, void *stream, size_t bytes)
{
    *c = (call){who, (cudaStream_t)stream, NULL, 0, NULL};
    /* A launch's error is read back with cudaGetLastError, which would also
     * return an earlier failure of the caller's still recorded on this
     * thread and blame our launch for it: clear that first (sticky errors
     * are not cleared; they fail the calls below, as they should). */
    cudaGetLastError();
    size_t need = 256 + (bytes + 8 * 255);  /* room for take()'s rounding */
    cudaError_t e = cudaMallocAsync((void **)&c->ws, need, c->stream);
    if (e == cudaErrorMemoryAllocation) {
        cudaGetLastError();
        BN_ERROR(BN_ENOMEM, "%s: no device memory for a %zu-byte workspace", who, need);
    }
    if (e != cudaSuccess)
        return cuda_error(who, "cudaMallocAsync", e);
    c->err = take(c, BN_CU_NERR * sizeof(int));
    e = cudaMemsetAsync(c->err, 0x7f, BN_CU_NERR * sizeof(int), c->stream);
    if (e != cudaSuccess) {
        cudaFreeAsync(c->ws, c->stream);
        return cuda_error(who, "cudaMemsetAsync", e);
    }
    return BN_OK;
}

/* A launch that failed: free the workspace, report. */
static int call_fail(call *c, const char *what, int e)
{
    cudaFreeAsync(c->ws, c->stream);
    cudaStreamSynchronize(c->stream);
    return cuda_error(c->who, what, e);
}

#define LAUNCH(c, what, expr)                                                  \
    do {                                                                       \
        int launch_status_ = (expr);                                           \
        if (launch_status_ != 0)                                               \
            return call_fail((c), (what), launch_status_);                     \
    } while (0)

/* Waits for the call's work, frees the workspace, reports the first noted
 * error (kinds in order of precedence; `out` names the output array). */
static int call_end(call *c, const char *out)
{
    int err[BN_CU_NERR];
    cudaError_t e = cudaMemcpyAsync(err, c->err, sizeof err, cudaMemcpyDeviceToHost,
                                    c->stream);
    cudaError_t f = cudaFreeAsync(c->ws, c->stream);
    cudaError_t s = cudaStreamSynchronize(c->stream);
    if (e != cudaSuccess || f != cudaSuccess || s != cudaSuccess)
        return cuda_error(c->who, "the kernels", e ? e : f ? f : s);
    const char *who = c->who;
    for (int k = 0; k < BN_CU_NERR; k++) {
        if (err[k] == NO_NOTE)
            continue;
        int ch = err[k];
        switch (k) {
        case BN_CU_E_PARAMS:
            BN_ERROR(BN_EDOM, "%s: channel %d: gamma and beta must be finite", who, ch);
        case BN_CU_E_SAVED:
            BN_ERROR(BN_EDOM, "%s: channel %d: saved mean or invstd is not finite or "
                     "invstd <= 0; pass the mean and invstd from bn_forward_train", who, ch);
        case BN_CU_E_POP:
            BN_ERROR(BN_EDOM, "%s: channel %d: mean and var must be finite, var >= 0",
                     who, ch);
        case BN_CU_E_STATS:
            BN_ERROR(BN_EDOM, "%s: channel %d: batch statistics are not finite: x holds "
                     "NaN or Inf", who, ch);
        case BN_CU_E_ZEROVAR:
            BN_ERROR(BN_EDOM, "%s: channel %d: sigma2 + eps is zero or subnormal "
                     "(a constant channel with eps = 0?)", who, ch);
        case BN_CU_E_FLOAT:
            BN_ERROR(BN_EDOM, "%s: channel %d: a statistic or coefficient does not fit "
                     "in a float", who, ch);
        case BN_CU_E_GRAD:
            BN_ERROR(BN_EDOM, "%s: channel %d: dy or x holds NaN or Inf (or the "
                     "gradient sums overflow)", who, ch);
        default:
            BN_ERROR(BN_EDOM, "%s: channel %d: %s is NaN or Inf (NaN or Inf in the "
                     "input, or it overflows the output's type)", who, ch, out);
        }
    }
    return BN_OK;
}

/* ------------------------------------------------------------ operations */

/* The operations, for data of any dtype (void *: float, bn_f16, bn_bf16). */
static int forward_train(const char *who, int dtype, int relu, void *y, float *mean,
                         float *var_biased, float *invstd, const void *x,
                         const float *gamma, const float *beta, const bn_desc *d,
                         void *stream)
{
    BN_TRY(bn_check_forward_train_args(who, d, y, mean, var_biased, x, gamma, beta));
    bn_cu_shape s;
    BN_TRY(shape_check(who, d, dtype, &s));
    BN_TRY(need_device(who));
    size_t C = d->C, P = (size_t)s.blocks;
    call c;
    BN_TRY(call_begin(&c, who, stream, P * C * sizeof(bn_cu_moments) +
                                           C * sizeof(bn_cu_coefs) + C * sizeof(float)));
    bn_cu_moments *part = take(&c, P * C * sizeof *part);
    bn_cu_coefs *cf = take(&c, C * sizeof *cf);
    float *inv = invstd ? invstd : take(&c, C * sizeof(float));
    LAUNCH(&c, "moments", bn_cu_moments_launch(part, x, s, stream));
    LAUNCH(&c, "train_finalize",
           bn_cu_train_finalize_launch(cf, mean, var_biased, inv, part, s, d->eps,
                                       d->affine ? gamma : NULL, d->affine ? beta : NULL,
                                       c.err, stream));
    LAUNCH(&c, "affine", bn_cu_affine_launch(y, x, cf, relu, s, c.err, stream));
    return call_end(&c, "y");
}

static int backward_train(const char *who, int dtype, int relu, void *dx, float *dgamma,
                          float *dbeta, const void *dy, const void *y, const void *x,
                          const float *mean, const float *invstd, const float *gamma,
                          const bn_desc *d, void *stream)
{
    if (relu) {  /* ref's order (ref/relu.c): the shape, dy, y, then the rest */
        BN_TRY(bn_desc_check(d, 1, NULL, NULL));
        BN_REQUIRE_IN(who, dy);
        BN_REQUIRE_IN(who, y);
    }
    BN_TRY(bn_check_backward_train_args(who, d, dx, dgamma, dbeta, dy, x, mean, invstd,
                                        gamma));
    bn_cu_shape s;
    BN_TRY(shape_check(who, d, dtype, &s));
    BN_TRY(need_device(who));
    size_t C = d->C, P = (size_t)s.blocks;
    call c;
    BN_TRY(call_begin(&c, who, stream, 3 * P * C * sizeof(double) + C * sizeof(bn_cu_coefs)));
    double *part = take(&c, 3 * P * C * sizeof *part);
    bn_cu_coefs *cf = take(&c, C * sizeof *cf);
    LAUNCH(&c, "grad_sums",
           bn_cu_grad_sums_launch(part, dy, relu ? y : NULL, x, mean, invstd, s, stream));
    LAUNCH(&c, "backward_finalize",
           bn_cu_backward_finalize_launch(cf, d->affine ? dgamma : NULL,
                                          d->affine ? dbeta : NULL, part, s, 0, mean,
                                          invstd, d->affine ? gamma : NULL, c.err, stream));
    LAUNCH(&c, "dx", bn_cu_dx_launch(dx, dy, y, x, cf, relu, 0, s, c.err, stream));
    return call_end(&c, "dx");
}


int bn_running_update_cuda(float *running_mean, float *running_var, size_t *num_batches,
                           const float *mean, const float *var_biased, size_t C, size_t m,
                           bn_running_rule rule, double momentum, void *stream)
{
    const char *who = __func__;
    BN_TRY(bn_check_running_args(who, running_mean, running_var, num_batches, mean,
                                 var_biased, C, m, rule, momentum));
    if (C >= NO_NOTE)  /* see NO_NOTE */
        BN_ERROR(BN_EOVERFLOW, "%s: C = %zu: cuda/ notes errors by channel in an int "
                 "(C < %d)", who, C, NO_NOTE);
    BN_TRY(need_device(who));
    call c;
    BN_TRY(call_begin(&c, who, stream, 0));
    double count = num_batches ? (double)*num_batches : 0;
    LAUNCH(&c, "running", bn_cu_running_launch(running_mean, running_var, mean, var_biased,
                                               (long long)C, (int)rule, momentum, count,
                                               (double)m, c.err, stream));
    BN_TRY(call_end(&c, "running statistics"));
    if (num_batches)
        ++*num_batches;
    return BN_OK;
}

/* Inputs common to the inference functions: the shared checks, then cuda's
 * own limits on the shape. */
static int check_infer(const char *who, const float *gamma, const float *beta,
                       int need_beta, const float *mean, const float *var,
                       const bn_desc *d, int dtype, bn_cu_shape *s)
{
    BN_TRY(bn_check_infer_args(who, d, gamma, beta, need_beta, mean, var));
    return shape_check(who, d, dtype, s);
}

static int forward_infer(const char *who, int dtype, void *y, const void *x,
                         const float *gamma, const float *beta, const float *mean,
                         const float *var, const bn_desc *d, void *stream)
{
    bn_cu_shape s;
    BN_TRY(check_infer(who, gamma, beta, 1, mean, var, d, dtype, &s));
    BN_REQUIRE_IN(who, y);
    BN_REQUIRE_IN(who, x);
    BN_TRY(need_device(who));
    size_t C = d->C;
    call c;
    BN_TRY(call_begin(&c, who, stream, C * sizeof(bn_cu_coefs) + 2 * C * sizeof(float)));
    bn_cu_coefs *cf = take(&c, C * sizeof *cf);
    float *center = take(&c, C * sizeof *center), *inv = take(&c, C * sizeof *inv);
    LAUNCH(&c, "infer_prep",
           bn_cu_infer_prep_launch(cf, center, inv, mean, var, s, d->eps,
                                   d->affine ? gamma : NULL, d->affine ? beta : NULL,
                                   c.err, stream));
    LAUNCH(&c, "affine", bn_cu_affine_launch(y, x, cf, 0, s, c.err, stream));
    return call_end(&c, "y");
}

static int backward_infer(const char *who, int dtype, void *dx, float *dgamma,
                          float *dbeta, const void *dy, const void *x, const float *gamma,
                          const float *mean, const float *var, const bn_desc *d,
                          void *stream)
{
    bn_cu_shape s;
    BN_TRY(check_infer(who, gamma, NULL, 0, mean, var, d, dtype, &s));
    BN_REQUIRE_IN(who, dx);
    BN_REQUIRE_IN(who, dy);
    BN_REQUIRE_IN(who, x);
    if (d->affine) {
        BN_REQUIRE_IN(who, dgamma);
        BN_REQUIRE_IN(who, dbeta);
    }
    BN_TRY(need_device(who));
    size_t C = d->C, P = (size_t)s.blocks;
    call c;
    BN_TRY(call_begin(&c, who, stream, C * sizeof(bn_cu_coefs) + 2 * C * sizeof(float) +
                                           3 * P * C * sizeof(double)));
    bn_cu_coefs *cf = take(&c, C * sizeof *cf);
    float *center = take(&c, C * sizeof *center), *inv = take(&c, C * sizeof *inv);
    double *part = take(&c, 3 * P * C * sizeof *part);
    const float *g = d->affine ? gamma : NULL;
    LAUNCH(&c, "infer_prep",
           bn_cu_infer_prep_launch(cf, center, inv, mean, var, s, d->eps, g, NULL, c.err,
                                   stream));
    LAUNCH(&c, "grad_sums",
           bn_cu_grad_sums_launch(part, dy, NULL, x, center, inv, s, stream));
    LAUNCH(&c, "backward_finalize",
           bn_cu_backward_finalize_launch(cf, d->affine ? dgamma : NULL,
                                          d->affine ? dbeta : NULL, part, s, 1, center, inv,
                                          g, c.err, stream));
    LAUNCH(&c, "dx", bn_cu_dx_launch(dx, dy, NULL, x, cf, 0, 1, s, c.err, stream));
    return call_end(&c, "dx");
}

/* ----------------------------------------------- the public functions */

/* The six data operations, once per data type: float, then bn_f16 and
 * bn_bf16 (16-bit storage, float statistics and parameters). */
int bn_forward_train_cuda(float *y, float *mean, float *var_biased, float *invstd,
                          const float *x, const float *gamma, const float *beta,
                          const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_F32, 0, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_forward_train_relu_cuda(float *y, float *mean, float *var_biased, float *invstd,
                               const float *x, const float *gamma, const float *beta,
                               const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_F32, 1, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_backward_train_cuda(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *mean, const float *invstd,
                           const float *gamma, const bn_desc *d, void *stream)
{
    return backward_train(__func__, BN_CU_F32, 0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd,
                          gamma, d, stream);
}

int bn_backward_train_relu_cuda(float *dx, float *dgamma, float *dbeta, const float *dy,
                                const float *y, const float *x, const float *mean,
                                const float *invstd, const float *gamma, const bn_desc *d,
                                void *stream)
{
    return backward_train(__func__, BN_CU_F32, 1, dx, dgamma, dbeta, dy, y, x, mean, invstd,
                          gamma, d, stream);
}

int bn_forward_infer_cuda(float *y, const float *x, const float *gamma, const float *beta,
                          const float *mean, const float *var, const bn_desc *d,
                          void *stream)
{
    return forward_infer(__func__, BN_CU_F32, y, x, gamma, beta, mean, var, d, stream);
}

int bn_backward_infer_cuda(float *dx, float *dgamma, float *dbeta, const float *dy,
                           const float *x, const float *gamma, const float *mean,
                           const float *var, const bn_desc *d, void *stream)
{
    return backward_infer(__func__, BN_CU_F32, dx, dgamma, dbeta, dy, x, gamma, mean, var, d,
                          stream);
}

int bn_forward_train_cuda_f16(bn_f16 *y, float *mean, float *var_biased, float *invstd,
                          const bn_f16 *x, const float *gamma, const float *beta,
                          const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_F16, 0, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_forward_train_relu_cuda_f16(bn_f16 *y, float *mean, float *var_biased, float *invstd,
                               const bn_f16 *x, const float *gamma, const float *beta,
                               const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_F16, 1, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_backward_train_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta, const bn_f16 *dy,
                           const bn_f16 *x, const float *mean, const float *invstd,
                           const float *gamma, const bn_desc *d, void *stream)
{
    return backward_train(__func__, BN_CU_F16, 0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd,
                          gamma, d, stream);
}

int bn_backward_train_relu_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta, const bn_f16 *dy,
                                const bn_f16 *y, const bn_f16 *x, const float *mean,
                                const float *invstd, const float *gamma, const bn_desc *d,
                                void *stream)
{
    return backward_train(__func__, BN_CU_F16, 1, dx, dgamma, dbeta, dy, y, x, mean, invstd,
                          gamma, d, stream);
}

int bn_forward_infer_cuda_f16(bn_f16 *y, const bn_f16 *x, const float *gamma, const float *beta,
                          const float *mean, const float *var, const bn_desc *d,
                          void *stream)
{
    return forward_infer(__func__, BN_CU_F16, y, x, gamma, beta, mean, var, d, stream);
}

int bn_backward_infer_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta, const bn_f16 *dy,
                           const bn_f16 *x, const float *gamma, const float *mean,
                           const float *var, const bn_desc *d, void *stream)
{
    return backward_infer(__func__, BN_CU_F16, dx, dgamma, dbeta, dy, x, gamma, mean, var, d,
                          stream);
}

int bn_forward_train_cuda_bf16(bn_bf16 *y, float *mean, float *var_biased, float *invstd,
                          const bn_bf16 *x, const float *gamma, const float *beta,
                          const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_BF16, 0, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_forward_train_relu_cuda_bf16(bn_bf16 *y, float *mean, float *var_biased, float *invstd,
                               const bn_bf16 *x, const float *gamma, const float *beta,
                               const bn_desc *d, void *stream)
{
    return forward_train(__func__, BN_CU_BF16, 1, y, mean, var_biased, invstd, x, gamma, beta, d,
                         stream);
}

int bn_backward_train_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta, const bn_bf16 *dy,
                           const bn_bf16 *x, const float *mean, const float *invstd,
                           const float *gamma, const bn_desc *d, void *stream)
{
    return backward_train(__func__, BN_CU_BF16, 0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd,
                          gamma, d, stream);
}

int bn_backward_train_relu_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta, const bn_bf16 *dy,
                                const bn_bf16 *y, const bn_bf16 *x, const float *mean,
                                const float *invstd, const float *gamma, const bn_desc *d,
                                void *stream)
{
    return backward_train(__func__, BN_CU_BF16, 1, dx, dgamma, dbeta, dy, y, x, mean, invstd,
                          gamma, d, stream);
}

int bn_forward_infer_cuda_bf16(bn_bf16 *y, const bn_bf16 *x, const float *gamma, const float *beta,
                          const float *mean, const float *var, const bn_desc *d,
                          void *stream)
{
    return forward_infer(__func__, BN_CU_BF16, y, x, gamma, beta, mean, var, d, stream);
}

int bn_backward_infer_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta, const bn_bf16 *dy,
                           const bn_bf16 *x, const float *gamma, const float *mean,
                           const float *var, const bn_desc *d, void *stream)
{
    return backward_infer(__func__, BN_CU_BF16, dx, dgamma, dbeta, dy, x, gamma, mean, var, d,
                          stream);
}

/* ---------------------------------------------- host-staged (the switch) */

/* Device copies of host arrays for one staged call, freed together. */
typedef struct {
    void *dev[12];
    int n;
    const char *who;
} stage;

static void stage_free(stage *S)
{
    for (int k = 0; k < S->n; k++)
        cudaFree(S->dev[k]);
}

/* A device array of n floats (NULL when host is NULL: the device function
 * then names the missing argument); copy = 1 copies the host values in. */
static int stage_in(stage *S, float **dev, const float *host, size_t n, int copy)
{
    *dev = NULL;
    if (!host)
        return BN_OK;
    cudaError_t e = cudaMalloc((void **)dev, n * sizeof(float));
    if (e != cudaSuccess) {
        stage_free(S);
        if (e == cudaErrorMemoryAllocation) {
            cudaGetLastError();
            BN_ERROR(BN_ENOMEM, "%s: no device memory for %zu floats", S->who, n);
        }
        return cuda_error(S->who, "cudaMalloc", e);
    }
    S->dev[S->n++] = *dev;
    if (copy && (e = cudaMemcpy(*dev, host, n * sizeof(float), cudaMemcpyHostToDevice))) {
        stage_free(S);
        return cuda_error(S->who, "cudaMemcpy to the device", e);
    }
    return BN_OK;
}

/* After a successful call: the device results back into host arrays. */
static int stage_out(stage *S, float *host, const float *dev, size_t n)
{
    if (!host || !dev)
        return BN_OK;
    cudaError_t e = cudaMemcpy(host, dev, n * sizeof(float), cudaMemcpyDeviceToHost);
    if (e != cudaSuccess) {
        stage_free(S);
        return cuda_error(S->who, "cudaMemcpy to the host", e);
    }
    return BN_OK;
}

#define IN(dev, host, n) BN_TRY(stage_in(&S, &(dev), (host), (n), 1))
#define OUT(dev, host, n) BN_TRY(stage_in(&S, &(dev), (host), (n), 0))

int bn_cuda_staged_forward_train(int relu, float *y, float *mean, float *var_biased,
                                 float *invstd, const float *x, const float *gamma,
                                 const float *beta, const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 1, &n, NULL));
    BN_TRY(need_device(__func__));
    size_t C = d->C;
    stage S = {.who = __func__};
    float *X, *G, *B, *Y, *M, *V, *I;
    IN(X, x, n); IN(G, gamma, C); IN(B, beta, C);
    OUT(Y, y, n); OUT(M, mean, C); OUT(V, var_biased, C); OUT(I, invstd, C);
    int st = relu ? bn_forward_train_relu_cuda(Y, M, V, I, X, G, B, d, NULL)
                  : bn_forward_train_cuda(Y, M, V, I, X, G, B, d, NULL);
    if (st != BN_OK) {
        stage_free(&S);
        return st;
    }
    BN_TRY(stage_out(&S, y, Y, n));
    BN_TRY(stage_out(&S, mean, M, C));
    BN_TRY(stage_out(&S, var_biased, V, C));
    BN_TRY(stage_out(&S, invstd, I, C));
    stage_free(&S);
    return BN_OK;
}

int bn_cuda_staged_backward_train(int relu, float *dx, float *dgamma, float *dbeta,
                                  const float *dy, const float *y, const float *x,
                                  const float *mean, const float *invstd,
                                  const float *gamma, const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 1, &n, NULL));
    BN_TRY(need_device(__func__));
    size_t C = d->C;
    stage S = {.who = __func__};
    float *DY, *Yd = NULL, *X, *M, *I, *G, *DX, *DG, *DB;
    IN(DY, dy, n); IN(X, x, n); IN(M, mean, C); IN(I, invstd, C); IN(G, gamma, C);
    if (relu)
        IN(Yd, y, n);
    OUT(DX, dx, n); OUT(DG, dgamma, C); OUT(DB, dbeta, C);
    int st = relu ? bn_backward_train_relu_cuda(DX, DG, DB, DY, Yd, X, M, I, G, d, NULL)
                  : bn_backward_train_cuda(DX, DG, DB, DY, X, M, I, G, d, NULL);
    if (st != BN_OK) {
        stage_free(&S);
        return st;
    }
    BN_TRY(stage_out(&S, dx, DX, n));
    if (d->affine) {
        BN_TRY(stage_out(&S, dgamma, DG, C));
        BN_TRY(stage_out(&S, dbeta, DB, C));
    }
    stage_free(&S);
    return BN_OK;
}

int bn_cuda_staged_running_update(float *running_mean, float *running_var,
                                  size_t *num_batches, const float *mean,
                                  const float *var_biased, size_t C, size_t m,
                                  bn_running_rule rule, double momentum)
{
    if (C == 0)
        BN_ERROR(BN_EBADLEN, "%s: C = 0", __func__);
    BN_TRY(need_device(__func__));
    stage S = {.who = __func__};
    float *RM, *RV, *M, *V;
    IN(RM, running_mean, C); IN(RV, running_var, C); IN(M, mean, C); IN(V, var_biased, C);
    int st = bn_running_update_cuda(RM, RV, num_batches, M, V, C, m, rule, momentum, NULL);
    if (st != BN_OK) {
        stage_free(&S);
        return st;
    }
    BN_TRY(stage_out(&S, running_mean, RM, C));
    BN_TRY(stage_out(&S, running_var, RV, C));
    stage_free(&S);
    return BN_OK;
}

int bn_cuda_staged_forward_infer(float *y, const float *x, const float *gamma,
                                 const float *beta, const float *mean, const float *var,
                                 const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    BN_TRY(need_device(__func__));
    size_t C = d->C;
    stage S = {.who = __func__};
    float *X, *G, *B, *M, *V, *Y;
    IN(X, x, n); IN(G, gamma, C); IN(B, beta, C); IN(M, mean, C); IN(V, var, C);
    OUT(Y, y, n);
    int st = bn_forward_infer_cuda(Y, X, G, B, M, V, d, NULL);
    if (st != BN_OK) {
        stage_free(&S);
        return st;
    }
    BN_TRY(stage_out(&S, y, Y, n));
    stage_free(&S);
    return BN_OK;
}

int bn_cuda_staged_backward_infer(float *dx, float *dgamma, float *dbeta, const float *dy,
                                  const float *x, const float *gamma, const float *mean,
                                  const float *var, const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    BN_TRY(need_device(__func__));
    size_t C = d->C;
    stage S = {.who = __func__};
    float *DY, *X, *G, *M, *V, *DX, *DG, *DB;
    IN(DY, dy, n); IN(X, x, n); IN(G, gamma, C); IN(M, mean, C); IN(V, var, C);
    OUT(DX, dx, n); OUT(DG, dgamma, C); OUT(DB, dbeta, C);
    int st = bn_backward_infer_cuda(DX, DG, DB, DY, X, G, M, V, d, NULL);
    if (st != BN_OK) {
        stage_free(&S);
        return st;
    }
    BN_TRY(stage_out(&S, dx, DX, n));
    if (d->affine) {
        BN_TRY(stage_out(&S, dgamma, DG, C));
        BN_TRY(stage_out(&S, dbeta, DB, C));
    }
    stage_free(&S);
    return BN_OK;
}
