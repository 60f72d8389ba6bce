/*
 * vectors.h — the checker library: loads a conformance-vector file of data/
 * (format: docs/conformance.md, schemas in data/schema/) into C structures,
 * checking every field, and runs one test through bnlab's PUBLIC API:
 *
 *   - the double reference, bn_<op>_ref (any group), or
 *   - the float run-time switch bn_<op>(impl, ...) with impl = ref, fast or
 *     cuda (fp32 groups: their inputs are exact binary32 values), where
 *     bnlab has a float version of the operation (bnv_unsupported says when
 *     it has none: batch normalization has; of the normalization family,
 *     only GroupNorm/LayerNorm on fast is planned).
 *
 * Comparing is the caller's job (bnv_compare with the caller's comparator:
 * in tests/, the one comparator cmp_f64 of tests/harness.h), so that the
 * library has no test framework in it.
 *
 * Use: bnv_file f; if (bnv_load(&f, "data/forward_train.json", err, sizeof err)) ...
 *      for each group g, test t: bnv_run(g, t, BNV_DOUBLE_REF or impl, &res);
 *      bnv_compare(t, &res, cmp, label); bnv_result_free(&res); ... bnv_free(&f);
 */
#ifndef BNV_VECTORS_H
#define BNV_VECTORS_H

#include <stddef.h>

#include "bnlab.h"

/* The group types: batch normalization's (one per file), then the
 * normalization family's (one file per method). */
typedef enum {
    BNV_FORWARD_TRAIN, BNV_BACKWARD_TRAIN, BNV_RUNNING_STATS, BNV_FORWARD_INFER,
    BNV_BACKWARD_INFER,
    BNV_GN_FORWARD, BNV_GN_BACKWARD,                         /* groupnorm.json */
    BNV_BRN_FORWARD_TRAIN, BNV_BRN_BACKWARD_TRAIN, BNV_BRN_UPDATE,
    BNV_BRN_FORWARD_INFER,                                   /* renorm.json */
    BNV_GHOST_FORWARD_TRAIN, BNV_GHOST_BACKWARD_TRAIN,
    BNV_GHOST_RUNNING_STATS,                                 /* ghost.json */
    BNV_WN_FORWARD, BNV_WN_BACKWARD, BNV_WN_INIT,            /* weightnorm.json */
    BNV_PRECISE_POPULATION,                                  /* precise.json */
    BNV_NOPS
} bnv_op;

/* Running-statistics rules of the vectors: bnlab's three, plus Algorithm 2. */
typedef enum { BNV_RULE_NEW_UNBIASED, BNV_RULE_OLD_BIASED, BNV_RULE_CUMULATIVE,
               BNV_RULE_POPULATION } bnv_rule;

enum { BNV_MAX_ARRAYS = 8 };

/* A named array of numbers, flat (rows = 0) or rows x (n / rows). */
typedef struct {
    char *name;
    double *v;
    size_t n, rows;
} bnv_array;

typedef struct {
    char *name;
    double atol, rtol;
} bnv_tol;

typedef struct {
    long tc_id;
    char *comment;
    char **flags;
    size_t nflags;
    int valid;                  /* result "valid" (1) or "invalid" (0) */
    char *error;                /* invalid: the bnlab status name, e.g. "BN_ESINGLE" */
    bnv_array in[BNV_MAX_ARRAYS], want[BNV_MAX_ARRAYS];
    size_t nin, nwant;
    bnv_tol tol[BNV_MAX_ARRAYS];
    size_t ntol;
    long num_batches, want_num_batches;   /* cumulative rule; -1 when absent */
} bnv_test;

typedef struct {
    bnv_op op;
    int fp32;                   /* dtype "fp32" */
    int exact_stats;            /* expectedFrom "exactStatistics" (else "binary128") */
    bn_desc d;                  /* shape, layout, eps, affine (not weight normalization) */
    int relu;                   /* activation "relu" (training files) */
    bnv_rule rule;              /* running_stats and GhostRunningStats */
    double momentum;            /* the same, momentum rules only */
    size_t groups;              /* GroupNorm: G (1: LayerNorm, C: InstanceNorm) */
    double rmax, dmax;          /* Batch Renormalization, training */
    double alpha;               /* Batch Renormalization, moving-average rate */
    size_t vbatch;              /* Ghost BN: the virtual batch size V */
    size_t wn_K, wn_D, wn_N;    /* Weight Normalization: K units of D weights; init: N examples */
    bnv_test *tests;
    size_t ntests;
} bnv_group;

typedef struct {
    char *path;
    char *schema;               /* "groupnorm_schema.json": the file's kind */
    bnv_group *groups;
    size_t ngroups, ntests;
} bnv_file;

/* Loads and checks a vector file. 0 on success; otherwise -1, f is empty
 * and err says which file, test and field is wrong. */
int bnv_load(bnv_file *f, const char *path, char *err, size_t errlen);
void bnv_free(bnv_file *f);

/* The named input / expected array / tolerance of a test, or NULL. */
const bnv_array *bnv_input(const bnv_test *t, const char *name);
const bnv_array *bnv_expected(const bnv_test *t, const char *name);
const bnv_tol *bnv_tolerance(const bnv_test *t, const char *name);

/* How bnv_run calls bnlab: the double reference directly, or the float
 * switch with an implementation. */
typedef struct {
    int use_double;             /* 1: bn_<op>_ref on doubles; 0: bn_<op>(impl) on floats */
    bn_impl impl;
} bnv_target;

/* What one run produced: the first non-OK status (and the call that
 * returned it), or the outputs under the names of the expected arrays
 * (float outputs widened to double, exactly). */
typedef struct {
    int status;
    const char *call;
    bnv_array out[BNV_MAX_ARRAYS];
    size_t nout;
    long num_batches;
} bnv_result;

/* NULL when bnlab can run group g's tests on target; otherwise why not
 * (bnlab has no float version of that operation for that implementation).
 * Whether the implementation is built and usable is bn_impl_available's. */
const char *bnv_unsupported(const bnv_group *g, bnv_target target);

/* Runs test t of group g. Returns 0 when it could be run (whatever bnlab
 * answered: see res->status; BN_ENOIMPL where bnv_unsupported says why),
 * -1 on out of memory. */
int bnv_run(const bnv_group *g, const bnv_test *t, bnv_target target, bnv_result *res);
void bnv_result_free(bnv_result *res);

/* The comparator: the signature of cmp_f64 in tests/harness.h. */
typedef size_t bnv_compare_fn(const char *what, const double *got, const double *want,
                              size_t n, double atol, double rtol);

/* Compares every expected array of a valid test with the result, through
 * cmp, labelled "<label> <name>". Returns the number of mismatching values
 * (a missing output counts as all of its values). */
size_t bnv_compare(const bnv_test *t, const bnv_result *res, bnv_compare_fn *cmp,
                   const char *label);

/* "BN_EDOM" -> BN_EDOM; -1 for an unknown name. */
int bnv_status_of(const char *name);
/* The group type of op: "BnForwardTrain", "GnForward", ... */
const char *bnv_op_name(bnv_op op);

#endif
