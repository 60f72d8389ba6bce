/*
 * vectors_load.c — reads a conformance-vector file (json.c) and checks it
 * against its format before anything runs: the header, every group's
 * parameters, and for every test exactly the inputs, expected arrays and
 * tolerances its operation needs, with the sizes its shape implies. One
 * table (ops) says, for every group type of batch normalization and of its
 * family, which file it belongs in, its group fields and its arrays. A
 * malformed or hand-broken file gets a message naming the file, the test
 * and the field, never a crash or a silently skipped test.
 */
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json.h"
#include "vectors.h"

typedef struct {
    char *err;
    size_t errlen;
    const char *path;
    char where[96];             /* "group 3, tcId 17" */
} ctx;

__attribute__((format(printf, 2, 3))) static int say(ctx *C, const char *fmt, ...)
{
    int k = snprintf(C->err, C->errlen, "%s: %s%s", C->path, C->where, C->where[0] ? ": " : "");
    va_list ap;
    va_start(ap, fmt);
    if (k >= 0 && (size_t)k < C->errlen)
        vsnprintf(C->err + k, C->errlen - (size_t)k, fmt, ap);
    va_end(ap);
    return -1;
}

static char *dup_str(const char *s)
{
    char *p = malloc(strlen(s) + 1);
    if (p)
        strcpy(p, s);
    return p;
}

/* obj[key] of the given type; NULL (with the message) if missing or not. */
static const json_value *need(ctx *C, const json_value *obj, const char *key, json_type type)
{
    const json_value *v = json_get(obj, key);
    if (!v)
        say(C, "missing \"%s\"", key);
    else if (v->type != type) {
        say(C, "\"%s\" (line %d) is a %s, not a %s", key, v->line, json_type_name(v->type),
            json_type_name(type));
        return NULL;
    }
    return v;
}

/* A number: a JSON number, or the string "NaN", "Infinity" or "-Infinity". */
static int number(ctx *C, const json_value *v, double *out, const char *what)
{
    if (v->type == JSON_NUMBER) {
        *out = v->u.number;
        return 0;
    }
    if (v->type == JSON_STRING) {
        const char *s = v->u.string.s;
        if (strcmp(s, "NaN") == 0) { *out = NAN; return 0; }
        if (strcmp(s, "Infinity") == 0) { *out = INFINITY; return 0; }
        if (strcmp(s, "-Infinity") == 0) { *out = -INFINITY; return 0; }
    }
    return say(C, "%s (line %d) is not a number (nor \"NaN\", \"Infinity\", \"-Infinity\")", what,
               v->line);
}

static int integer(ctx *C, const json_value *v, long lo, long hi, long *out, const char *what)
{
    if (!v || v->type != JSON_NUMBER || v->u.number != floor(v->u.number) ||
        v->u.number < (double)lo || v->u.number > (double)hi)
        return say(C, "%s must be an integer in [%ld, %ld]", what, lo, hi);
    *out = (long)v->u.number;
    return 0;
}

/* One member of a closed set of names; its index, or -1 with a message. */
static int one_of(ctx *C, const json_value *obj, const char *key, const char *const *names)
{
    const json_value *v = need(C, obj, key, JSON_STRING);
    if (!v)
        return -1;
    for (int k = 0; names[k]; k++)
        if (strcmp(v->u.string.s, names[k]) == 0)
            return k;
    return say(C, "\"%s\" = \"%.40s\" is not one of the allowed values", key, v->u.string.s);
}

/* ------------------------------------------------------- field specs */

/* The size of an array: one of the group's sizes. */
enum { SZ_COUNT,        /* N·C·H·W: a data tensor */
       SZ_C,            /* per channel */
       SZ_INT,          /* an integer, not an array */
       SZ_SETS,         /* N·G: one per GroupNorm set */
       SZ_WN_KD,        /* K·D: weight normalization's v, w */
       SZ_WN_K,         /* K: one per unit */
       SZ_WN_NK };      /* N·K: pre-activations */
enum { W_ALWAYS, W_AFFINE, W_NOT_POP, W_POP, W_CUM };
/* nested: 0 flat; ROWS_FILE one row per batch, as many as the file gives
 * (the same in inputs and expected); ROWS_VB one row per virtual batch. */
enum { FLAT, ROWS_FILE, ROWS_VB };
typedef struct {
    const char *name;
    int size, when, nested;
} spec;

/* Group fields beyond type, dtype, expectedFrom and tests. */
enum { GF_TENSOR = 1,   /* layout, shape {N, C, H, W}, eps, affine */
       GF_ACT = 2,      /* activation */
       GF_RULE = 4,     /* rule, momentum */
       GF_GROUPS = 8,   /* groups */
       GF_RD = 16,      /* rmax, dmax */
       GF_ALPHA = 32,   /* alpha */
       GF_VBATCH = 64,  /* virtualBatchSize */
       GF_WN_KD = 128,  /* shape {K, D} */
       GF_WN_NK = 256 };/* shape {N, K} */

#define END {NULL, 0, 0, 0}
#define X_ {"x", SZ_COUNT, W_ALWAYS, 0}
#define DY_ {"dy", SZ_COUNT, W_ALWAYS, 0}
#define GAMMA_ {"gamma", SZ_C, W_AFFINE, 0}
#define BETA_ {"beta", SZ_C, W_AFFINE, 0}
#define GRADS_ {"dx", SZ_COUNT, W_ALWAYS, 0}, {"dgamma", SZ_C, W_AFFINE, 0}, {"dbeta", SZ_C, W_AFFINE, 0}
#define MOVING_ {"movingMean", SZ_C, W_ALWAYS, 0}, {"movingSd", SZ_C, W_ALWAYS, 0}
static const struct {
    const char *type, *schema;
    unsigned fields;
    spec in[7], out[7];
} ops[BNV_NOPS] = {
    [BNV_FORWARD_TRAIN] = {"BnForwardTrain", "forward_train_schema.json", GF_TENSOR | GF_ACT,
                           {X_, GAMMA_, BETA_, END},
                           {{"y", SZ_COUNT, W_ALWAYS, 0}, {"mean", SZ_C, W_ALWAYS, 0},
                            {"varBiased", SZ_C, W_ALWAYS, 0}, {"invstd", SZ_C, W_ALWAYS, 0}, END}},
    [BNV_BACKWARD_TRAIN] = {"BnBackwardTrain", "backward_train_schema.json", GF_TENSOR | GF_ACT,
                            {X_, DY_, GAMMA_, BETA_, END}, {GRADS_, END}},
    [BNV_RUNNING_STATS] = {"BnRunningStats", "running_stats_schema.json", GF_TENSOR | GF_RULE,
                           {{"batches", SZ_COUNT, W_ALWAYS, ROWS_FILE}, {"runningMean", SZ_C, W_NOT_POP, 0},
                            {"runningVar", SZ_C, W_NOT_POP, 0}, {"numBatchesTracked", SZ_INT, W_CUM, 0}, END},
                           {{"runningMean", SZ_C, W_NOT_POP, ROWS_FILE}, {"runningVar", SZ_C, W_NOT_POP, ROWS_FILE},
                            {"numBatchesTracked", SZ_INT, W_CUM, 0}, {"populationMean", SZ_C, W_POP, 0},
                            {"populationVarUnbiased", SZ_C, W_POP, 0}, END}},
    [BNV_FORWARD_INFER] = {"BnForwardInfer", "forward_infer_schema.json", GF_TENSOR,
                           {X_, GAMMA_, BETA_, {"mean", SZ_C, W_ALWAYS, 0}, {"var", SZ_C, W_ALWAYS, 0}, END},
                           {{"y", SZ_COUNT, W_ALWAYS, 0}, END}},
    [BNV_BACKWARD_INFER] = {"BnBackwardInfer", "backward_infer_schema.json", GF_TENSOR,
                            {X_, DY_, GAMMA_, {"mean", SZ_C, W_ALWAYS, 0}, {"var", SZ_C, W_ALWAYS, 0}, END},
                            {GRADS_, END}},
    [BNV_GN_FORWARD] = {"GnForward", "groupnorm_schema.json", GF_TENSOR | GF_GROUPS,
                        {X_, GAMMA_, BETA_, END},
                        {{"y", SZ_COUNT, W_ALWAYS, 0}, {"mean", SZ_SETS, W_ALWAYS, 0},
                         {"varBiased", SZ_SETS, W_ALWAYS, 0}, {"invstd", SZ_SETS, W_ALWAYS, 0}, END}},
    [BNV_GN_BACKWARD] = {"GnBackward", "groupnorm_schema.json", GF_TENSOR | GF_GROUPS,
                         {X_, DY_, GAMMA_, BETA_, END}, {GRADS_, END}},
    [BNV_BRN_FORWARD_TRAIN] = {"BrnForwardTrain", "renorm_schema.json", GF_TENSOR | GF_RD,
                               {X_, GAMMA_, BETA_, MOVING_, END},
                               {{"y", SZ_COUNT, W_ALWAYS, 0}, {"mean", SZ_C, W_ALWAYS, 0},
                                {"varBiased", SZ_C, W_ALWAYS, 0}, {"invstd", SZ_C, W_ALWAYS, 0},
                                {"r", SZ_C, W_ALWAYS, 0}, {"d", SZ_C, W_ALWAYS, 0}, END}},
    [BNV_BRN_BACKWARD_TRAIN] = {"BrnBackwardTrain", "renorm_schema.json", GF_TENSOR | GF_RD,
                                {X_, DY_, GAMMA_, BETA_, MOVING_, END}, {GRADS_, END}},
    [BNV_BRN_UPDATE] = {"BrnUpdate", "renorm_schema.json", GF_TENSOR | GF_ALPHA,
                        {{"batches", SZ_COUNT, W_ALWAYS, ROWS_FILE}, MOVING_, END},
                        {{"movingMean", SZ_C, W_ALWAYS, ROWS_FILE}, {"movingSd", SZ_C, W_ALWAYS, ROWS_FILE}, END}},
    [BNV_BRN_FORWARD_INFER] = {"BrnForwardInfer", "renorm_schema.json", GF_TENSOR,
                               {X_, GAMMA_, BETA_, MOVING_, END}, {{"y", SZ_COUNT, W_ALWAYS, 0}, END}},
    [BNV_GHOST_FORWARD_TRAIN] = {"GhostForwardTrain", "ghost_schema.json", GF_TENSOR | GF_VBATCH,
                                 {X_, GAMMA_, BETA_, END},
                                 {{"y", SZ_COUNT, W_ALWAYS, 0}, {"mean", SZ_C, W_ALWAYS, ROWS_VB},
                                  {"varBiased", SZ_C, W_ALWAYS, ROWS_VB}, {"invstd", SZ_C, W_ALWAYS, ROWS_VB}, END}},
    [BNV_GHOST_BACKWARD_TRAIN] = {"GhostBackwardTrain", "ghost_schema.json", GF_TENSOR | GF_VBATCH,
                                  {X_, DY_, GAMMA_, BETA_, END}, {GRADS_, END}},
    [BNV_GHOST_RUNNING_STATS] = {"GhostRunningStats", "ghost_schema.json", GF_TENSOR | GF_VBATCH | GF_RULE,
                                 {X_, {"runningMean", SZ_C, W_ALWAYS, 0}, {"runningVar", SZ_C, W_ALWAYS, 0},
                                  {"numBatchesTracked", SZ_INT, W_CUM, 0}, END},
                                 {{"runningMean", SZ_C, W_ALWAYS, 0}, {"runningVar", SZ_C, W_ALWAYS, 0},
                                  {"numBatchesTracked", SZ_INT, W_CUM, 0}, END}},
    [BNV_WN_FORWARD] = {"WnForward", "weightnorm_schema.json", GF_WN_KD,
                        {{"v", SZ_WN_KD, W_ALWAYS, 0}, {"g", SZ_WN_K, W_ALWAYS, 0}, END},
                        {{"w", SZ_WN_KD, W_ALWAYS, 0}, {"vnorm", SZ_WN_K, W_ALWAYS, 0}, END}},
    [BNV_WN_BACKWARD] = {"WnBackward", "weightnorm_schema.json", GF_WN_KD,
                         {{"v", SZ_WN_KD, W_ALWAYS, 0}, {"g", SZ_WN_K, W_ALWAYS, 0},
                          {"dw", SZ_WN_KD, W_ALWAYS, 0}, END},
                         {{"dv", SZ_WN_KD, W_ALWAYS, 0}, {"dg", SZ_WN_K, W_ALWAYS, 0}, END}},
    [BNV_WN_INIT] = {"WnInit", "weightnorm_schema.json", GF_WN_NK,
                     {{"t", SZ_WN_NK, W_ALWAYS, 0}, END},
                     {{"g", SZ_WN_K, W_ALWAYS, 0}, {"b", SZ_WN_K, W_ALWAYS, 0}, END}},
    [BNV_PRECISE_POPULATION] = {"PreciseBnPopulation", "precise_schema.json", GF_TENSOR,
                                {{"batches", SZ_COUNT, W_ALWAYS, ROWS_FILE}, END},
                                {{"populationMean", SZ_C, W_ALWAYS, 0},
                                 {"populationVarUnbiased", SZ_C, W_ALWAYS, 0}, END}},
};

/* Each file kind (its schema) and the algorithm its header names. */
static const struct {
    const char *schema, *algorithm;
} kinds[] = {
    {"forward_train_schema.json", "BatchNormalization"},
    {"backward_train_schema.json", "BatchNormalization"},
    {"running_stats_schema.json", "BatchNormalization"},
    {"forward_infer_schema.json", "BatchNormalization"},
    {"backward_infer_schema.json", "BatchNormalization"},
    {"groupnorm_schema.json", "GroupNormalization"},
    {"renorm_schema.json", "BatchRenormalization"},
    {"ghost_schema.json", "GhostBatchNormalization"},
    {"weightnorm_schema.json", "WeightNormalization"},
    {"precise_schema.json", "PreciseBN"},
};
enum { NKINDS = sizeof kinds / sizeof kinds[0] };

static int applies(const spec *s, const bnv_group *g)
{
    int pop = g->op == BNV_RUNNING_STATS && g->rule == BNV_RULE_POPULATION;
    switch (s->when) {
    case W_AFFINE:  return g->d.affine;
    case W_NOT_POP: return !pop;
    case W_POP:     return pop;
    case W_CUM:     return g->rule == BNV_RULE_CUMULATIVE;
    default:        return 1;
    }
}

static size_t spec_size(const spec *s, const bnv_group *g, size_t count)
{
    switch (s->size) {
    case SZ_COUNT: return count;
    case SZ_SETS:  return g->d.N * g->groups;
    case SZ_WN_KD: return g->wn_K * g->wn_D;
    case SZ_WN_K:  return g->wn_K;
    case SZ_WN_NK: return g->wn_N * g->wn_K;
    default:       return g->d.C;
    }
}

/* A flat array of n numbers into out[0..n). */
static int numbers(ctx *C, const json_value *a, size_t n, double *out, const char *what)
{
    if (a->type != JSON_ARRAY || a->u.array.n != n)
        return say(C, "%s (line %d) must be an array of %zu numbers", what, a->line, n);
    for (size_t k = 0; k < n; k++)
        if (number(C, &a->u.array.items[k], &out[k], what))
            return -1;
    return 0;
}

/* The arrays of one part ("inputs" or "expected") of a test, by spec.
 * *K is the number of rows of ROWS_FILE arrays (0: not known yet). */
static int load_part(ctx *C, const json_value *obj, const spec *specs, const bnv_group *g,
                     size_t count, bnv_array *arrs, size_t *narr, long *intval, size_t *K,
                     const char *part)
{
    *intval = -1;
    for (size_t k = 0; k < obj->u.object.n; k++) {
        const char *key = obj->u.object.keys[k];
        const json_value *v = &obj->u.object.values[k];
        const spec *s = specs;
        while (s->name && strcmp(s->name, key) != 0)
            s++;
        if (!s->name || !applies(s, g))
            return say(C, "%s has a member \"%s\" that this group does not use", part, key);
        char what[64];
        snprintf(what, sizeof what, "%s.%s", part, key);
        if (s->size == SZ_INT) {
            if (integer(C, v, 0, (1L << 40), intval, what))
                return -1;
            continue;
        }
        size_t n = spec_size(s, g, count), rows = 0;
        if (s->nested == ROWS_FILE) {
            if (v->type != JSON_ARRAY || v->u.array.n == 0 || v->u.array.n > 1024 ||
                (*K && v->u.array.n != *K))
                return say(C, "%s (line %d) must be an array of %s arrays", what, v->line,
                           *K ? "one row per batch" : "1 to 1024");
            rows = *K = v->u.array.n;
        } else if (s->nested == ROWS_VB) {
            if (g->vbatch == 0 || g->d.N % g->vbatch != 0)
                return say(C, "%s: a valid test needs virtualBatchSize dividing N", what);
            rows = g->d.N / g->vbatch;
            if (v->type != JSON_ARRAY || v->u.array.n != rows)
                return say(C, "%s (line %d) must be an array of N/V = %zu arrays", what, v->line,
                           rows);
        }
        bnv_array *a = &arrs[(*narr)++];
        a->name = dup_str(key);
        a->n = rows ? rows * n : n;
        a->rows = rows;
        a->v = malloc((a->n ? a->n : 1) * sizeof *a->v);
        if (!a->name || !a->v)
            return say(C, "out of memory");
        for (size_t r = 0; r < (rows ? rows : 1); r++)
            if (numbers(C, rows ? &v->u.array.items[r] : v, n, a->v + r * n, what))
                return -1;
    }
    for (const spec *s = specs; s->name; s++)
        if (applies(s, g) && !json_get(obj, s->name))
            return say(C, "%s lacks \"%s\"", part, s->name);
    return 0;
}

static int load_test(ctx *C, const json_value *jt, bnv_group *g, bnv_test *t, size_t count,
                     const json_value *notes)
{
    const json_value *v;
    if (jt->type != JSON_OBJECT)
        return say(C, "a test (line %d) must be an object", jt->line);
    if (integer(C, json_get(jt, "tcId"), 1, 1L << 40, &t->tc_id, "tcId"))
        return -1;
    snprintf(C->where + strlen(C->where), sizeof C->where - strlen(C->where), ", tcId %ld",
             t->tc_id);
    static const char *const allowed[] = {"tcId", "comment", "flags", "inputs", "expected",
                                          "tolerance", "result", "error", NULL};
    for (size_t k = 0; k < jt->u.object.n; k++) {
        int j = 0;
        while (allowed[j] && strcmp(allowed[j], jt->u.object.keys[k]) != 0)
            j++;
        if (!allowed[j])
            return say(C, "unknown member \"%.40s\"", jt->u.object.keys[k]);
    }
    if (!(v = need(C, jt, "comment", JSON_STRING)) || !(t->comment = dup_str(v->u.string.s)))
        return -1;
    if (!(v = need(C, jt, "flags", JSON_ARRAY)))
        return -1;
    t->flags = calloc(v->u.array.n + 1, sizeof *t->flags);
    if (!t->flags)
        return say(C, "out of memory");
    for (size_t k = 0; k < v->u.array.n; k++) {
        const json_value *fl = &v->u.array.items[k];
        if (fl->type != JSON_STRING)
            return say(C, "flags must be strings");
        if (!json_get(notes, fl->u.string.s))
            return say(C, "flag \"%.40s\" has no entry in the header's notes", fl->u.string.s);
        if (!(t->flags[t->nflags++] = dup_str(fl->u.string.s)))
            return say(C, "out of memory");
    }
    static const char *const results[] = {"invalid", "valid", NULL};
    int res = one_of(C, jt, "result", results);
    if (res < 0)
        return -1;
    t->valid = res;
    v = json_get(jt, "error");
    if (t->valid != (v == NULL))
        return say(C, "\"error\" must be given exactly when result is \"invalid\"");
    if (v && (v->type != JSON_STRING || bnv_status_of(v->u.string.s) <= 0))
        return say(C, "\"error\" must name a bnlab status such as \"BN_EDOM\"");
    if (v && !(t->error = dup_str(v->u.string.s)))
        return say(C, "out of memory");

    size_t K = 0;
    const json_value *in = need(C, jt, "inputs", JSON_OBJECT);
    const json_value *ex = need(C, jt, "expected", JSON_OBJECT);
    const json_value *tol = need(C, jt, "tolerance", JSON_OBJECT);
    if (!in || !ex || !tol ||
        load_part(C, in, ops[g->op].in, g, count, t->in, &t->nin, &t->num_batches, &K, "inputs"))
        return -1;
    if (g->fp32)    /* fp32 groups promise binary32 inputs */
        for (size_t a = 0; a < t->nin; a++)
            for (size_t k = 0; k < t->in[a].n; k++)
                if (isfinite(t->in[a].v[k]) && (double)(float)t->in[a].v[k] != t->in[a].v[k])
                    return say(C, "inputs.%s[%zu] = %.17g is not a binary32 value (fp32 group)",
                               t->in[a].name, k, t->in[a].v[k]);
    if (!t->valid) {
        if (ex->u.object.n || tol->u.object.n)
            return say(C, "an invalid test has empty \"expected\" and \"tolerance\"");
        return 0;
    }
    if (load_part(C, ex, ops[g->op].out, g, count, t->want, &t->nwant, &t->want_num_batches,
                  &K, "expected"))
        return -1;
    for (size_t k = 0; k < tol->u.object.n; k++) {
        const json_value *e = &tol->u.object.values[k];
        const char *name = tol->u.object.keys[k];
        double atol, rtol;
        if (!bnv_expected(t, name))
            return say(C, "tolerance.%.40s names no expected array", name);
        const json_value *a = need(C, e, "atol", JSON_NUMBER), *r = need(C, e, "rtol", JSON_NUMBER);
        if (!a || !r || e->u.object.n != 2)
            return say(C, "tolerance.%.40s must be {\"atol\": number, \"rtol\": number}", name);
        atol = a->u.number, rtol = r->u.number;
        if (!(atol >= 0) || !(rtol >= 0) || rtol >= 1)
            return say(C, "tolerance.%.40s: need atol >= 0 and 0 <= rtol < 1", name);
        t->tol[t->ntol++] = (bnv_tol){dup_str(name), atol, rtol};
        if (!t->tol[t->ntol - 1].name)
            return say(C, "out of memory");
    }
    for (size_t k = 0; k < t->nwant; k++)
        if (!bnv_tolerance(t, t->want[k].name))
            return say(C, "expected.%s has no tolerance", t->want[k].name);
    return 0;
}

/* The integer members names[0..n) of obj, each in [1, 2^20], into out. */
static int dims_of(ctx *C, const json_value *obj, const char *const *names, int n, size_t *out,
                   size_t *count)
{
    *count = 1;
    if (!obj)
        return -1;
    if (obj->u.object.n != (size_t)n)
        return say(C, "\"shape\" (line %d) must have exactly the members %s%s%s%s%s%s%s", obj->line,
                   names[0], n > 1 ? ", " : "", n > 1 ? names[1] : "", n > 2 ? ", " : "",
                   n > 2 ? names[2] : "", n > 3 ? ", " : "", n > 3 ? names[3] : "");
    for (int j = 0; j < n; j++) {
        long v;
        if (integer(C, json_get(obj, names[j]), 1, 1L << 20, &v, names[j]))
            return -1;
        out[j] = (size_t)v;
        if (__builtin_mul_overflow(*count, out[j], count) || *count > (1u << 24))
            return say(C, "shape has more than 2^24 values");
    }
    return 0;
}

/* A number member of a group. */
static int group_number(ctx *C, const json_value *jg, const char *key, double *out)
{
    const json_value *v = need(C, jg, key, JSON_NUMBER);
    if (!v)
        return -1;
    *out = v->u.number;
    return 0;
}

/* "forward_train" of "forward_train_schema.json", for messages. */
static const char *kind_name(const char *schema, char *buf, size_t len)
{
    const char *end = strstr(schema, "_schema.json");
    snprintf(buf, len, "%.*s", end ? (int)(end - schema) : (int)strlen(schema), schema);
    return buf;
}

static int load_group(ctx *C, const json_value *jg, const char *schema, bnv_group *g,
                      long *last_id, const json_value *notes)
{
    static const char *const dtypes[] = {"fp64", "fp32", NULL};
    static const char *const froms[] = {"binary128", "exactStatistics", NULL};
    static const char *const layouts[] = {"NCHW", "NHWC", NULL};
    static const char *const acts[] = {"none", "relu", NULL};
    static const char *const rules[] = {"momentumNewUnbiased", "momentumOldBiased",
                                        "cumulativeUnbiased", "populationAlgorithm2", NULL};
    static const char *const nchw[] = {"N", "C", "H", "W"}, *const kd[] = {"K", "D"},
                             *const nk[] = {"N", "K"};
    static const struct {
        unsigned field;
        const char *key;
    } members[] = {{GF_TENSOR, "layout"}, {GF_TENSOR | GF_WN_KD | GF_WN_NK, "shape"},
                   {GF_TENSOR, "eps"}, {GF_TENSOR, "affine"}, {GF_ACT, "activation"},
                   {GF_RULE, "rule"}, {GF_RULE, "momentum"}, {GF_GROUPS, "groups"},
                   {GF_RD, "rmax"}, {GF_RD, "dmax"}, {GF_ALPHA, "alpha"},
                   {GF_VBATCH, "virtualBatchSize"}};
    int k;
    char buf[64];
    if (jg->type != JSON_OBJECT)
        return say(C, "a test group must be an object");
    const json_value *tv = need(C, jg, "type", JSON_STRING);
    if (!tv)
        return -1;
    for (k = 0; k < BNV_NOPS && strcmp(ops[k].type, tv->u.string.s) != 0; k++)
        ;
    if (k == BNV_NOPS)
        return say(C, "\"type\" = \"%.40s\" is not one of the allowed values", tv->u.string.s);
    if (strcmp(ops[k].schema, schema) != 0)
        return say(C, "group type %s does not belong in a %s file", ops[k].type,
                   kind_name(schema, buf, sizeof buf));
    g->op = (bnv_op)k;
    unsigned F = ops[k].fields;
    for (size_t j = 0; j < jg->u.object.n; j++) {
        const char *key = jg->u.object.keys[j];
        int known = !strcmp(key, "type") || !strcmp(key, "dtype") ||
                    !strcmp(key, "expectedFrom") || !strcmp(key, "tests");
        for (size_t m = 0; !known && m < sizeof members / sizeof members[0]; m++)
            known = (members[m].field & F) && !strcmp(members[m].key, key);
        if (!known)
            return say(C, "\"%.40s\" is not a field of %s groups", key, ops[k].type);
    }
    if ((g->fp32 = one_of(C, jg, "dtype", dtypes)) < 0 ||
        (g->exact_stats = one_of(C, jg, "expectedFrom", froms)) < 0)
        return -1;
    size_t count = 0, dims[4];
    if (F & GF_TENSOR) {
        if ((k = one_of(C, jg, "layout", layouts)) < 0 ||
            dims_of(C, need(C, jg, "shape", JSON_OBJECT), nchw, 4, dims, &count))
            return -1;
        g->d.layout = k ? BN_NHWC : BN_NCHW;
        g->d.N = dims[0], g->d.C = dims[1], g->d.H = dims[2], g->d.W = dims[3];
        const json_value *v = need(C, jg, "affine", JSON_BOOL);
        if (group_number(C, jg, "eps", &g->d.eps) || !v)
            return -1;
        g->d.affine = v->u.boolean;
    } else {
        int init = (F & GF_WN_NK) != 0;
        if (dims_of(C, need(C, jg, "shape", JSON_OBJECT), init ? nk : kd, 2, dims, &count))
            return -1;
        if (init)
            g->wn_N = dims[0], g->wn_K = dims[1];
        else
            g->wn_K = dims[0], g->wn_D = dims[1];
    }
    if ((F & GF_ACT) && (g->relu = one_of(C, jg, "activation", acts)) < 0)
        return -1;
    if (F & GF_RULE) {
        if ((k = one_of(C, jg, "rule", rules)) < 0)
            return -1;
        if (g->op == BNV_GHOST_RUNNING_STATS && k == BNV_RULE_POPULATION)
            return say(C, "\"rule\" populationAlgorithm2 is not a rule of %s groups", ops[g->op].type);
        g->rule = (bnv_rule)k;
        const json_value *v = json_get(jg, "momentum");
        int momentum_rule = k == BNV_RULE_NEW_UNBIASED || k == BNV_RULE_OLD_BIASED;
        if (!v || (momentum_rule ? v->type != JSON_NUMBER : v->type != JSON_NULL))
            return say(C, "\"momentum\" must be a number for momentum rules, null otherwise");
        g->momentum = momentum_rule ? v->u.number : 0;
    }
    long G = 0, V = 0;
    if ((F & GF_GROUPS) && integer(C, json_get(jg, "groups"), 0, 1L << 20, &G, "groups"))
        return -1;
    if ((F & GF_VBATCH) &&
        integer(C, json_get(jg, "virtualBatchSize"), 0, 1L << 20, &V, "virtualBatchSize"))
        return -1;
    g->groups = (size_t)G, g->vbatch = (size_t)V;
    if ((F & GF_RD) && (group_number(C, jg, "rmax", &g->rmax) || group_number(C, jg, "dmax", &g->dmax)))
        return -1;
    if ((F & GF_ALPHA) && group_number(C, jg, "alpha", &g->alpha))
        return -1;
    const json_value *tests = need(C, jg, "tests", JSON_ARRAY);
    if (!tests)
        return -1;
    g->tests = calloc(tests->u.array.n + 1, sizeof *g->tests);
    if (!g->tests)
        return say(C, "out of memory");
    size_t wlen = strlen(C->where);
    for (size_t j = 0; j < tests->u.array.n; j++) {
        C->where[wlen] = '\0';
        bnv_test *t = &g->tests[g->ntests++];
        t->num_batches = t->want_num_batches = -1;
        if (load_test(C, &tests->u.array.items[j], g, t, count, notes))
            return -1;
        if (t->tc_id <= *last_id)
            return say(C, "tcId must increase through the file");
        *last_id = t->tc_id;
        /* the sizes of a valid test's outputs presuppose a valid partition */
        if (t->valid && (F & GF_GROUPS) && (G == 0 || g->d.C % (size_t)G != 0))
            return say(C, "a valid test needs groups dividing C");
        if (t->valid && (F & GF_VBATCH) && (V == 0 || g->d.N % (size_t)V != 0))
            return say(C, "a valid test needs virtualBatchSize dividing N");
    }
    C->where[wlen] = '\0';
    return 0;
}

int bnv_load(bnv_file *f, const char *path, char *err, size_t errlen)
{
    char dummy[1];
    ctx C = {errlen ? err : dummy, errlen ? errlen : 1, path, ""};
    memset(f, 0, sizeof *f);
    json_value *root = json_parse_file(path, C.err, C.errlen);
    if (!root)
        return -1;
    const char *schemas[NKINDS + 1] = {NULL};
    for (int k = 0; k < NKINDS; k++)
        schemas[k] = kinds[k].schema;
    const json_value *groups = NULL, *notes = NULL, *alg;
    long ntests, last_id = 0;
    int st = -1, k = -1;
    if (root->type != JSON_OBJECT) {
        say(&C, "the file must hold one JSON object");
        goto out;
    }
    if (!(alg = need(&C, root, "algorithm", JSON_STRING)) ||
        (k = one_of(&C, root, "schema", schemas)) < 0)
        goto out;
    if (strcmp(alg->u.string.s, kinds[k].algorithm) != 0) {
        say(&C, "\"algorithm\" = \"%.40s\": a %s file holds \"%s\"", alg->u.string.s,
            kinds[k].schema, kinds[k].algorithm);
        goto out;
    }
    if (!need(&C, root, "generatorVersion", JSON_STRING) || !need(&C, root, "numberFormat", JSON_STRING) ||
        !need(&C, root, "header", JSON_ARRAY) || !(notes = need(&C, root, "notes", JSON_OBJECT)) ||
        integer(&C, json_get(root, "numberOfTests"), 0, 1L << 30, &ntests, "numberOfTests") ||
        !(groups = need(&C, root, "testGroups", JSON_ARRAY)))
        goto out;
    f->path = dup_str(path);
    f->schema = dup_str(kinds[k].schema);
    f->groups = calloc(groups->u.array.n + 1, sizeof *f->groups);
    if (!f->path || !f->schema || !f->groups) {
        say(&C, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < groups->u.array.n; g++) {
        snprintf(C.where, sizeof C.where, "group %zu", g + 1);
        if (load_group(&C, &groups->u.array.items[g], f->schema, &f->groups[f->ngroups++],
                       &last_id, notes))
            goto out;
        f->ntests += f->groups[g].ntests;
    }
    C.where[0] = '\0';
    if (f->ntests != (size_t)ntests) {
        say(&C, "numberOfTests is %ld but the file holds %zu tests", ntests, f->ntests);
        goto out;
    }
    st = 0;
out:
    json_free(root);
    if (st)
        bnv_free(f);
    return st;
}

static void free_arrays(bnv_array *a, size_t n)
{
    for (size_t k = 0; k < n; k++) {
        free(a[k].name);
        free(a[k].v);
    }
}

void bnv_free(bnv_file *f)
{
    for (size_t g = 0; g < f->ngroups; g++) {
        bnv_group *G = &f->groups[g];
        for (size_t k = 0; k < G->ntests; k++) {
            bnv_test *t = &G->tests[k];
            free(t->comment);
            for (size_t j = 0; j < t->nflags; j++)
                free(t->flags[j]);
            free(t->flags);
            free(t->error);
            free_arrays(t->in, t->nin);
            free_arrays(t->want, t->nwant);
            for (size_t j = 0; j < t->ntol; j++)
                free(t->tol[j].name);
        }
        free(G->tests);
    }
    free(f->groups);
    free(f->path);
    free(f->schema);
    memset(f, 0, sizeof *f);
}

static const bnv_array *find(const bnv_array *a, size_t n, const char *name)
{
    for (size_t k = 0; k < n; k++)
        if (strcmp(a[k].name, name) == 0)
            return &a[k];
    return NULL;
}

const bnv_array *bnv_input(const bnv_test *t, const char *name) { return find(t->in, t->nin, name); }
const bnv_array *bnv_expected(const bnv_test *t, const char *name) { return find(t->want, t->nwant, name); }

const bnv_tol *bnv_tolerance(const bnv_test *t, const char *name)
{
    for (size_t k = 0; k < t->ntol; k++)
        if (strcmp(t->tol[k].name, name) == 0)
            return &t->tol[k];
    return NULL;
}

int bnv_status_of(const char *name)
{
    static const char *const names[] = {"BN_OK", "BN_EFAULT", "BN_EBADLEN", "BN_EOVERFLOW",
                                        "BN_EINVAL", "BN_ESINGLE", "BN_EDOM", "BN_ENOMEM",
                                        "BN_ENOIMPL", "BN_ENODEVICE", "BN_ECUDA"};
    for (int k = 0; k < (int)(sizeof names / sizeof names[0]); k++)
        if (strcmp(name, names[k]) == 0)
            return k;
    return -1;
}

const char *bnv_op_name(bnv_op op)
{
    return (unsigned)op < BNV_NOPS ? ops[op].type : "unknown";
}
