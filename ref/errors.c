/*
 * errors.c — bnlab's one error path, modelled on GSL's: every function that
 * fails calls bn_error() with a message and returns a bn_status code. The
 * handler decides what to do with the message (default: print it); the code
 * goes back to the caller either way. Set a breakpoint on bn_error to stop at
 * the first error.
 */
#include <stdarg.h>
#include <stdio.h>

#include "bn_internal.h"

static void default_handler(const char *reason, const char *file, int line,
                            int status)
{
    (void)status;
    fprintf(stderr, "bnlab: %s (%s:%d)\n", reason, file, line);
}

static bn_error_handler_t *handler = default_handler;

/* One message per thread, so that threads reporting at once don't mix. */
static _Thread_local char last_message[512];

bn_error_handler_t *bn_set_error_handler(bn_error_handler_t *h)
{
    bn_error_handler_t *previous = handler;
    handler = h ? h : default_handler;
    return previous;
}

void bn_error_handler_quiet(const char *reason, const char *file, int line,
                            int status)
{
    (void)reason, (void)file, (void)line, (void)status;
}

const char *bn_last_error(void) { return last_message; }

void bn_error(const char *file, int line, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    handler(last_message, file, line, status);
}

const char *bn_strerror(int status)
{
    switch (status) {
    case BN_OK:        return "BN_OK: success";
    case BN_EFAULT:    return "BN_EFAULT: a required pointer is NULL";
    case BN_EBADLEN:   return "BN_EBADLEN: a size is zero";
    case BN_EOVERFLOW: return "BN_EOVERFLOW: size overflows size_t";
    case BN_EINVAL:    return "BN_EINVAL: invalid parameter";
    case BN_ESINGLE:   return "BN_ESINGLE: training needs more than one value per channel";
    case BN_EDOM:      return "BN_EDOM: bad data (NaN/Inf, overflow, or sigma2 + eps = 0)";
    case BN_ENOMEM:    return "BN_ENOMEM: out of memory";
    case BN_ENOIMPL:   return "BN_ENOIMPL: implementation not built into this bnlab";
    case BN_ENODEVICE: return "BN_ENODEVICE: no usable CUDA device";
    case BN_ECUDA:     return "BN_ECUDA: CUDA runtime error";
    default:           return "unknown bnlab status";
    }
}

const char *bn_version(void) { return BNLAB_VERSION; }
