/*
 * bn_internal.h — what ref/, fast/ and cuda/ share behind the public header:
 * the error macros (one handler, GSL style) and the index arithmetic of the
 * two layouts. Not installed.
 */
#ifndef BN_INTERNAL_H
#define BN_INTERNAL_H

#include "bnlab.h"

/* Reports an error through the handler and returns its status from the
 * calling function. The message is printf-formatted. */
#define BN_ERROR(status, ...)                                                  \
    do {                                                                       \
        bn_error(__FILE__, __LINE__, (status), __VA_ARGS__);                   \
        return (status);                                                       \
    } while (0)

/* Returns BN_EFAULT, naming the argument, when a required pointer is NULL;
 * BN_REQUIRE_IN names the public function `who` from inside a helper. */
#define BN_REQUIRE_IN(who, ptr)                                                \
    do {                                                                       \
        if ((ptr) == NULL)                                                     \
            BN_ERROR(BN_EFAULT, "%s: required argument '%s' is NULL",          \
                     (who), #ptr);                                             \
    } while (0)
#define BN_REQUIRE(ptr) BN_REQUIRE_IN(__func__, ptr)

/* Propagates a non-zero status (the handler has already been called). */
#define BN_TRY(expr)                                                           \
    do {                                                                       \
        int bn_try_status_ = (expr);                                           \
        if (bn_try_status_ != BN_OK)                                           \
            return bn_try_status_;                                             \
    } while (0)

/* The one place errors go through: formats the message, keeps it for
 * bn_last_error(), calls the handler. Break here in a debugger. */
void bn_error(const char *file, int line, int status, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Offset of value (n, i) of channel c, i = h·W + w the pixel index. */
static inline size_t bn_offset(const bn_desc *d, size_t n, size_t c, size_t i)
{
    size_t HW = d->H * d->W;
    return d->layout == BN_NCHW ? (n * d->C + c) * HW + i  /* channel planes */
                                : (n * HW + i) * d->C + c; /* pixel vectors */
}

#endif

/* Argument checks shared by ref/, fast/ and cuda/ (args.c): the descriptor
 * (training or not), then every required pointer, named in the message. */
int bn_check_forward_train_args(const char *who, const bn_desc *d, const void *y,
                                const void *mean, const void *var_biased, const void *x,
                                const void *gamma, const void *beta);
int bn_check_backward_train_args(const char *who, const bn_desc *d, const void *dx,
                                 const void *dgamma, const void *dbeta, const void *dy,
                                 const void *x, const void *mean, const void *invstd,
                                 const void *gamma);
int bn_check_infer_args(const char *who, const bn_desc *d, const void *gamma,
                        const void *beta, int need_beta, const void *mean, const void *var);
int bn_check_running_args(const char *who, const void *running_mean,
                          const void *running_var, const size_t *num_batches,
                          const void *mean, const void *var_biased, size_t C, size_t m,
                          bn_running_rule rule, double momentum);

/* BN_EDOM unless all m values of v are finite: what = "y", "dx", ...; unit
 * names what c counts ("channel", "set", "unit"). An overflow or a NaN is
 * reported, never returned as a result. */
int bn_check_finite(const char *who, const char *what, const char *unit, size_t c,
                    const double *v, size_t m);
/* BN_EDOM unless gamma[c] and beta[c] (when given) are finite. */
int bn_check_params(const char *who, size_t c, const double *gamma,
                    const double *beta);

/* ref/ works on one channel at a time, as Algorithm 1 works on one activation:
 * gather copies the m' = N·H·W values of channel c into a contiguous batch
 * B[m'], scatter writes such a batch back. In place (y = x) is safe. */
void bn_gather_ref(double *B, const double *x, const bn_desc *d, size_t c);
void bn_scatter_ref(double *y, const double *B, const bn_desc *d, size_t c);
