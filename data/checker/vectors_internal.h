/*
 * vectors_internal.h — what the runners of the checker library share
 * (vectors_run.c: batch normalization; vectors_family.c: the normalization
 * family): a pool of buffers freed together, the inputs as double or float,
 * the named result arrays, and the record of the first failing call.
 * Not part of the library's interface (vectors.h).
 */
#ifndef BNV_VECTORS_INTERNAL_H
#define BNV_VECTORS_INTERNAL_H

#include <stdlib.h>

#include "vectors.h"

/* Every buffer of one run, freed together. */
typedef struct {
    void *p[40];
    int n, nomem;
} pool;

static inline void *palloc(pool *P, size_t n, size_t size)
{
    void *p = P->n < 40 ? calloc(n ? n : 1, size) : NULL;
    if (!p)
        P->nomem = 1;
    else
        P->p[P->n++] = p;
    return p;
}

static inline void pool_free(pool *P)
{
    for (int k = 0; k < P->n; k++)
        free(P->p[k]);
}

/* The named input as double (NULL if absent), or as float. */
static inline const double *din(const bnv_test *t, const char *name)
{
    const bnv_array *a = bnv_input(t, name);
    return a ? a->v : NULL;
}

static inline float *fin(pool *P, const bnv_test *t, const char *name)
{
    const bnv_array *a = bnv_input(t, name);
    if (!a)
        return NULL;
    float *f = palloc(P, a->n, sizeof *f);
    for (size_t k = 0; f && k < a->n; k++)
        f[k] = (float)a->v[k];
    return f;
}

/* A result array named like the expected one (owned by res). */
static inline double *out(bnv_result *res, pool *P, const char *name, size_t n, size_t rows)
{
    bnv_array *a = &res->out[res->nout];
    if (res->nout == BNV_MAX_ARRAYS || !(a->v = calloc(n ? n : 1, sizeof *a->v))) {
        P->nomem = 1;
        return NULL;
    }
    res->nout++;
    a->name = (char *)name;     /* a literal; never freed */
    a->n = n;
    a->rows = rows;
    return a->v;
}

static inline void widen(double *dst, const float *src, size_t n)
{
    for (size_t k = 0; dst && src && k < n; k++)
        dst[k] = src[k];
}

/* Records the first failing call. */
static inline int fails(bnv_result *res, int st, const char *call)
{
    if (st != BN_OK && res->status == BN_OK) {
        res->status = st;
        res->call = call;
    }
    return st != BN_OK;
}

/* The family's runners (vectors_family.c), called by bnv_run for the
 * group types from BNV_GN_FORWARD on. */
void bnv_run_family(const bnv_group *g, const bnv_test *t, bnv_target T, bnv_result *res,
                    pool *P);
const char *bnv_family_unsupported(const bnv_group *g, bnv_target T);

#endif
