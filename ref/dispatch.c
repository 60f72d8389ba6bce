/*
 * dispatch.c — the run-time switch: the suffix-less, float functions of
 * bnlab.h, which programs call with an implementation chosen at run time
 * (--impl ref|fast|cuda in the chapters).
 *
 * For ref, the float arguments are widened to double, ref runs, and the
 * results are rounded back to float (an output that does not fit in a float
 * is an error, not an Inf). fast/ is called directly. cuda/ works on device
 * pointers: when it is built (BNLAB_HAVE_CUDA), the switch stages the host
 * arrays through device memory (cuda/cuda_api.c): for correctness, so that
 * chapters can run --impl cuda, not for speed.
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "bn_internal.h"
#ifdef BNLAB_HAVE_CUDA
#include "bn_cuda.h"
#endif

int bn_impl_parse(const char *name, bn_impl *impl)
{
    BN_REQUIRE(name);
    BN_REQUIRE(impl);
    static const char *names[] = {"ref", "fast", "cuda"};
    for (int k = 0; k < 3; k++)
        if (strcmp(name, names[k]) == 0) {
            *impl = (bn_impl)k;
            return BN_OK;
        }
    BN_ERROR(BN_EINVAL, "unknown implementation '%s' (use ref, fast or cuda)", name);
}

const char *bn_impl_name(bn_impl impl)
{
    switch (impl) {
    case BN_IMPL_REF:  return "ref";
    case BN_IMPL_FAST: return "fast";
    case BN_IMPL_CUDA: return "cuda";
    }
    return "unknown";
}

int bn_impl_available(bn_impl impl, const char **why)
{
    const char *reason = NULL;
    switch (impl) {
    case BN_IMPL_REF:
        break;
    case BN_IMPL_FAST:
#ifndef BNLAB_HAVE_FAST
        reason = "this bnlab was built without fast/";
#endif
        break;
    case BN_IMPL_CUDA:
#ifndef BNLAB_HAVE_CUDA
        reason = "this bnlab was built without cuda/ (no nvcc, or cuda/ not in this version)";
#else
        if (bn_cuda_device_present(&reason))  /* else reason: no device, and why */
            reason = NULL;
#endif
        break;
    default:
        reason = "unknown implementation";
    }
    if (why)
        *why = reason ? reason : "available";
    return reason == NULL;
}

/* BN_ENOIMPL (or BN_EINVAL for a value outside bn_impl) with the reason. */
static int unavailable(bn_impl impl)
{
    const char *why;
    bn_impl_available(impl, &why);
    if (impl != BN_IMPL_REF && impl != BN_IMPL_FAST && impl != BN_IMPL_CUDA)
        BN_ERROR(BN_EINVAL, "unknown implementation %d", (int)impl);
    BN_ERROR(BN_ENOIMPL, "--impl %s: %s", bn_impl_name(impl), why);
}

#ifdef BNLAB_HAVE_FAST
#define FAST(call) return (call)
#else
#define FAST(call) return unavailable(BN_IMPL_FAST)
#endif

#ifdef BNLAB_HAVE_CUDA
/* Built but no device: BN_ENOIMPL with bn_impl_available's reason, as for an
 * implementation that was not built (the bn_*_cuda functions themselves
 * answer BN_ENODEVICE). */
#define CUDA(call)                                                             \
    return bn_impl_available(BN_IMPL_CUDA, NULL) ? (call) : unavailable(BN_IMPL_CUDA)
#else
#define CUDA(call) return unavailable(BN_IMPL_CUDA)
#endif

/* ---- float <-> double for ref: every buffer the call needs, freed at once */

typedef struct {
    double *buf[12];
    int n, failed;
} pool;

/* A double copy of src[n] (NULL stays NULL: ref then says which is missing). */
static double *widen(pool *P, const float *src, size_t n)
{
    if (!src)
        return NULL;
    double *p = malloc(n * sizeof *p);
    if (!p) {
        P->failed = 1;
        return NULL;
    }
    P->buf[P->n++] = p;
    for (size_t k = 0; k < n; k++)
        p[k] = src[k];
    return p;
}

/* A double array for an output of n values, or NULL if dst is NULL. */
static double *output(pool *P, const float *dst, size_t n)
{
    if (!dst)
        return NULL;
    double *p = malloc(n * sizeof *p);
    if (!p)
        P->failed = 1;
    else
        P->buf[P->n++] = p;
    return p;
}

/* One output of a ref call: double src[n] to be rounded into float dst[n]
 * (dst NULL: not wanted). */
typedef struct {
    float *dst;
    const double *src;
    size_t n;
    const char *what;
} result;

/* Rounds every result into its float array, or none: a finite double beyond
 * float's range is BN_EDOM, and then no output has been touched. */
static int narrow(const result *r, int count)
{
    for (int j = 0; j < count; j++)
        for (size_t k = 0; r[j].dst && k < r[j].n; k++)
            if (isfinite(r[j].src[k]) && isinf((float)r[j].src[k]))
                BN_ERROR(BN_EDOM, "%s[%zu] = %g does not fit in a float", r[j].what, k,
                         r[j].src[k]);
    for (int j = 0; j < count; j++)
        for (size_t k = 0; r[j].dst && k < r[j].n; k++)
            r[j].dst[k] = (float)r[j].src[k];
    return BN_OK;
}

static int pool_end(pool *P, int status)
{
    for (int k = 0; k < P->n; k++)
        free(P->buf[k]);
    return status;
}

/* Frees what was allocated and reports BN_ENOMEM. */
static int pool_nomem(pool *P, const char *who)
{
    pool_end(P, BN_OK);
    BN_ERROR(BN_ENOMEM, "%s: no memory to widen float to double", who);
}

#define POOL_READY(P)                                                          \
    do {                                                                       \
        if ((P).failed)                                                        \
            return pool_nomem(&(P), __func__);                                 \
    } while (0)


/* ------------------------------------------------------------ operations */

/* ref through the switch, training forward, plain or fused with ReLU. */
static int ref_forward_train(int relu, float *y, float *mean, float *var_biased,
                             float *invstd, const float *x, const float *gamma,
                             const float *beta, const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 1, &n, NULL));
    size_t C = d->C;
    pool P = {0};
    double *X = widen(&P, x, n), *G = widen(&P, gamma, C), *B = widen(&P, beta, C);
    double *Y = output(&P, y, n), *M = output(&P, mean, C);
    double *V = output(&P, var_biased, C), *S = output(&P, invstd, C);
    POOL_READY(P);
    int st = relu ? bn_forward_train_relu_ref(Y, M, V, S, X, G, B, d)
                  : bn_forward_train_ref(Y, M, V, S, X, G, B, d);
    if (st == BN_OK)
        st = narrow((result[]){{y, Y, n, "y"}, {mean, M, C, "mean"},
                               {var_biased, V, C, "var_biased"}, {invstd, S, C, "invstd"}}, 4);
    return pool_end(&P, st);
}

/* ref through the switch, training backward; y is used only with relu. */
static int ref_backward_train(int relu, float *dx, float *dgamma, float *dbeta,
                              const float *dy, const float *y, const float *x,
                              const float *mean, const float *invstd,
                              const float *gamma, const bn_desc *d)
{
    size_t n;
    BN_TRY(bn_desc_check(d, 1, &n, NULL));
    size_t C = d->C;
    pool P = {0};
    double *DY = widen(&P, dy, n), *Yv = relu ? widen(&P, y, n) : NULL;
    double *X = widen(&P, x, n), *M = widen(&P, mean, C);
    double *S = widen(&P, invstd, C), *G = widen(&P, gamma, C);
    double *DX = output(&P, dx, n), *DG = output(&P, dgamma, C), *DB = output(&P, dbeta, C);
    POOL_READY(P);
    int st = relu ? bn_backward_train_relu_ref(DX, DG, DB, DY, Yv, X, M, S, G, d)
                  : bn_backward_train_ref(DX, DG, DB, DY, X, M, S, G, d);
    if (st == BN_OK)
        st = narrow((result[]){{dx, DX, n, "dx"}, {d->affine ? dgamma : NULL, DG, C, "dgamma"},
                               {d->affine ? dbeta : NULL, DB, C, "dbeta"}}, 3);
    return pool_end(&P, st);
}

int bn_forward_train(bn_impl impl, float *y, float *mean, float *var_biased,
                     float *invstd, const float *x, const float *gamma,
                     const float *beta, const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_forward_train_fast(y, mean, var_biased, invstd, x, gamma, beta, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_forward_train(0, y, mean, var_biased, invstd, x, gamma, beta, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    return ref_forward_train(0, y, mean, var_biased, invstd, x, gamma, beta, d);
}

int bn_forward_train_relu(bn_impl impl, float *y, float *mean,
                          float *var_biased, float *invstd, const float *x,
                          const float *gamma, const float *beta,
                          const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_forward_train_relu_fast(y, mean, var_biased, invstd, x, gamma, beta, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_forward_train(1, y, mean, var_biased, invstd, x, gamma, beta, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    return ref_forward_train(1, y, mean, var_biased, invstd, x, gamma, beta, d);
}

int bn_backward_train(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                      const float *dy, const float *x, const float *mean,
                      const float *invstd, const float *gamma, const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_backward_train_fast(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_backward_train(0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd,
                                           gamma, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    return ref_backward_train(0, dx, dgamma, dbeta, dy, NULL, x, mean, invstd, gamma, d);
}

int bn_backward_train_relu(bn_impl impl, float *dx, float *dgamma,
                           float *dbeta, const float *dy, const float *y,
                           const float *x, const float *mean,
                           const float *invstd, const float *gamma,
                           const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_backward_train_relu_fast(dx, dgamma, dbeta, dy, y, x, mean, invstd,
                                         gamma, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_backward_train(1, dx, dgamma, dbeta, dy, y, x, mean, invstd,
                                           gamma, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    return ref_backward_train(1, dx, dgamma, dbeta, dy, y, x, mean, invstd, gamma, d);
}

int bn_running_update(bn_impl impl, float *running_mean, float *running_var,
                      size_t *num_batches, const float *mean,
                      const float *var_biased, size_t C, size_t m,
                      bn_running_rule rule, double momentum)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_running_update_fast(running_mean, running_var, num_batches, mean,
                                    var_biased, C, m, rule, momentum));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_running_update(running_mean, running_var, num_batches, mean,
                                           var_biased, C, m, rule, momentum));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    if (C == 0)
        BN_ERROR(BN_EBADLEN, "%s: C = 0", __func__);
    pool P = {0};
    double *RM = widen(&P, running_mean, C), *RV = widen(&P, running_var, C);
    double *M = widen(&P, mean, C), *V = widen(&P, var_biased, C);
    POOL_READY(P);
    size_t count = num_batches ? *num_batches : 0; /* changed only on success */
    int st = bn_running_update_ref(RM, RV, num_batches ? &count : NULL, M, V, C, m,
                                   rule, momentum);
    if (st == BN_OK)
        st = narrow((result[]){{running_mean, RM, C, "running_mean"},
                               {running_var, RV, C, "running_var"}}, 2);
    if (st == BN_OK && num_batches)
        *num_batches = count;
    return pool_end(&P, st);
}

int bn_forward_infer(bn_impl impl, float *y, const float *x, const float *gamma,
                     const float *beta, const float *mean, const float *var,
                     const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_forward_infer_fast(y, x, gamma, beta, mean, var, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_forward_infer(y, x, gamma, beta, mean, var, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    size_t C = d->C;
    pool P = {0};
    double *X = widen(&P, x, n), *G = widen(&P, gamma, C), *B = widen(&P, beta, C);
    double *M = widen(&P, mean, C), *V = widen(&P, var, C), *Y = output(&P, y, n);
    POOL_READY(P);
    int st = bn_forward_infer_ref(Y, X, G, B, M, V, d);
    if (st == BN_OK)
        st = narrow((result[]){{y, Y, n, "y"}}, 1);
    return pool_end(&P, st);
}

int bn_backward_infer(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                      const float *dy, const float *x, const float *gamma,
                      const float *mean, const float *var, const bn_desc *d)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_backward_infer_fast(dx, dgamma, dbeta, dy, x, gamma, mean, var, d));
    if (impl == BN_IMPL_CUDA)
        CUDA(bn_cuda_staged_backward_infer(dx, dgamma, dbeta, dy, x, gamma, mean, var, d));
    if (impl != BN_IMPL_REF)
        return unavailable(impl);
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    size_t C = d->C;
    pool P = {0};
    double *DY = widen(&P, dy, n), *X = widen(&P, x, n), *G = widen(&P, gamma, C);
    double *M = widen(&P, mean, C), *V = widen(&P, var, C);
    double *DX = output(&P, dx, n), *DG = output(&P, dgamma, C), *DB = output(&P, dbeta, C);
    POOL_READY(P);
    int st = bn_backward_infer_ref(DX, DG, DB, DY, X, G, M, V, d);
    if (st == BN_OK)
        st = narrow((result[]){{dx, DX, n, "dx"}, {d->affine ? dgamma : NULL, DG, C, "dgamma"},
                               {d->affine ? dbeta : NULL, DB, C, "dbeta"}}, 3);
    return pool_end(&P, st);
}

/* GroupNorm through the switch. ref: sizes of the N·G statistics are known
 * only for a valid G; otherwise ref is called with no arrays, and its check
 * of G (which comes first) reports it. */
static int valid_groups(const bn_desc *d, size_t G)
{
    return G > 0 && G <= d->C && d->C % G == 0;
}

/* cuda/ has no GroupNorm: BN_ENOIMPL, with why (even where cuda/ is built). */
static int no_groupnorm(bn_impl impl, const char *who)
{
    if (impl == BN_IMPL_CUDA && bn_impl_available(impl, NULL))
        BN_ERROR(BN_ENOIMPL, "%s: --impl cuda: cuda/ has no GroupNorm or LayerNorm (ref and "
                 "fast do)", who);
    return unavailable(impl);
}

int bn_groupnorm_forward(bn_impl impl, float *y, float *mean, float *var_biased,
                         float *invstd, const float *x, const float *gamma,
                         const float *beta, const bn_desc *d, size_t G)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_groupnorm_forward_fast(y, mean, var_biased, invstd, x, gamma, beta, d, G));
    if (impl != BN_IMPL_REF)
        return no_groupnorm(impl, __func__);
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    if (!valid_groups(d, G))
        return bn_groupnorm_forward_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, d, G);
    size_t C = d->C, S = d->N * G;
    const float *ga = d->affine ? gamma : NULL, *be = d->affine ? beta : NULL;
    pool P = {0};
    double *X = widen(&P, x, n), *Gm = widen(&P, ga, C), *B = widen(&P, be, C);
    double *Y = output(&P, y, n), *M = output(&P, mean, S);
    double *V = output(&P, var_biased, S), *Sd = output(&P, invstd, S);
    POOL_READY(P);
    int st = bn_groupnorm_forward_ref(Y, M, V, Sd, X, Gm, B, d, G);
    if (st == BN_OK)
        st = narrow((result[]){{y, Y, n, "y"}, {mean, M, S, "mean"},
                               {var_biased, V, S, "var_biased"}, {invstd, Sd, S, "invstd"}}, 4);
    return pool_end(&P, st);
}

int bn_groupnorm_backward(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                          const float *dy, const float *x, const float *mean,
                          const float *invstd, const float *gamma, const bn_desc *d,
                          size_t G)
{
    if (impl == BN_IMPL_FAST)
        FAST(bn_groupnorm_backward_fast(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, G));
    if (impl != BN_IMPL_REF)
        return no_groupnorm(impl, __func__);
    size_t n;
    BN_TRY(bn_desc_check(d, 0, &n, NULL));
    if (!valid_groups(d, G))
        return bn_groupnorm_backward_ref(NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, d, G);
    size_t C = d->C, S = d->N * G;
    const float *ga = d->affine ? gamma : NULL;
    pool P = {0};
    double *DY = widen(&P, dy, n), *X = widen(&P, x, n), *M = widen(&P, mean, S);
    double *Sd = widen(&P, invstd, S), *Gm = widen(&P, ga, C);
    double *DX = output(&P, dx, n);
    double *DG = output(&P, d->affine ? dgamma : NULL, C);
    double *DB = output(&P, d->affine ? dbeta : NULL, C);
    POOL_READY(P);
    int st = bn_groupnorm_backward_ref(DX, DG, DB, DY, X, M, Sd, Gm, d, G);
    if (st == BN_OK)
        st = narrow((result[]){{dx, DX, n, "dx"}, {d->affine ? dgamma : NULL, DG, C, "dgamma"},
                               {d->affine ? dbeta : NULL, DB, C, "dbeta"}}, 3);
    return pool_end(&P, st);
}

/* LayerNorm = GroupNorm with G = 1, in every implementation. */
int bn_layernorm_forward(bn_impl impl, float *y, float *mean, float *var_biased,
                         float *invstd, const float *x, const float *gamma,
                         const float *beta, const bn_desc *d)
{
    return bn_groupnorm_forward(impl, y, mean, var_biased, invstd, x, gamma, beta, d, 1);
}

int bn_layernorm_backward(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                          const float *dy, const float *x, const float *mean,
                          const float *invstd, const float *gamma, const bn_desc *d)
{
    return bn_groupnorm_backward(impl, dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, 1);
}

int bn_population_stats(float *pop_mean, float *pop_var_unbiased,
                        const float *batch_means, const float *batch_vars_biased,
                        size_t K, size_t C, size_t m)
{
    size_t KC;
    if (K == 0 || C == 0)
        BN_ERROR(BN_EBADLEN, "%s: K = %zu, C = %zu: sizes must be > 0", __func__, K, C);
    if (__builtin_mul_overflow(K, C, &KC))
        BN_ERROR(BN_EOVERFLOW, "%s: K·C overflows size_t", __func__);
    pool P = {0};
    double *BM = widen(&P, batch_means, KC), *BV = widen(&P, batch_vars_biased, KC);
    double *PM = output(&P, pop_mean, C), *PV = output(&P, pop_var_unbiased, C);
    POOL_READY(P);
    int st = bn_population_stats_ref(PM, PV, BM, BV, K, C, m);
    if (st == BN_OK)
        st = narrow((result[]){{pop_mean, PM, C, "pop_mean"},
                               {pop_var_unbiased, PV, C, "pop_var_unbiased"}}, 2);
    return pool_end(&P, st);
}
