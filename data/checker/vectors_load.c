/*
 * vectors_load.c — reads a conformance-vector file (json.c) and checks it
 * against its format before anything runs: the header, every group's
 * parameters, and for every test exactly the inputs, expected arrays and
 * tolerances its operation needs, with the sizes its shape implies. A
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

enum { SZ_COUNT, SZ_C, SZ_INT };
enum { W_ALWAYS, W_AFFINE, W_NOT_POP, W_POP, W_CUM };
typedef struct {
    const char *name;
    int size, when, nested;
} spec;

#define END {NULL, 0, 0, 0}
static const spec in_specs[][6] = {
    [BNV_FORWARD_TRAIN] = {{"x", SZ_COUNT, W_ALWAYS, 0}, {"gamma", SZ_C, W_AFFINE, 0},
                           {"beta", SZ_C, W_AFFINE, 0}, END},
    [BNV_BACKWARD_TRAIN] = {{"x", SZ_COUNT, W_ALWAYS, 0}, {"dy", SZ_COUNT, W_ALWAYS, 0},
                            {"gamma", SZ_C, W_AFFINE, 0}, {"beta", SZ_C, W_AFFINE, 0}, END},
    [BNV_RUNNING_STATS] = {{"batches", SZ_COUNT, W_ALWAYS, 1}, {"runningMean", SZ_C, W_NOT_POP, 0},
                           {"runningVar", SZ_C, W_NOT_POP, 0}, {"numBatchesTracked", SZ_INT, W_CUM, 0}, END},
    [BNV_FORWARD_INFER] = {{"x", SZ_COUNT, W_ALWAYS, 0}, {"gamma", SZ_C, W_AFFINE, 0},
                           {"beta", SZ_C, W_AFFINE, 0}, {"mean", SZ_C, W_ALWAYS, 0},
                           {"var", SZ_C, W_ALWAYS, 0}, END},
    [BNV_BACKWARD_INFER] = {{"x", SZ_COUNT, W_ALWAYS, 0}, {"dy", SZ_COUNT, W_ALWAYS, 0},
                            {"gamma", SZ_C, W_AFFINE, 0}, {"mean", SZ_C, W_ALWAYS, 0},
                            {"var", SZ_C, W_ALWAYS, 0}, END},
};
static const spec out_specs[][6] = {
    [BNV_FORWARD_TRAIN] = {{"y", SZ_COUNT, W_ALWAYS, 0}, {"mean", SZ_C, W_ALWAYS, 0},
                           {"varBiased", SZ_C, W_ALWAYS, 0}, {"invstd", SZ_C, W_ALWAYS, 0}, END},
    [BNV_BACKWARD_TRAIN] = {{"dx", SZ_COUNT, W_ALWAYS, 0}, {"dgamma", SZ_C, W_AFFINE, 0},
                            {"dbeta", SZ_C, W_AFFINE, 0}, END},
    [BNV_RUNNING_STATS] = {{"runningMean", SZ_C, W_NOT_POP, 1}, {"runningVar", SZ_C, W_NOT_POP, 1},
                           {"numBatchesTracked", SZ_INT, W_CUM, 0}, {"populationMean", SZ_C, W_POP, 0},
                           {"populationVarUnbiased", SZ_C, W_POP, 0}, END},
    [BNV_FORWARD_INFER] = {{"y", SZ_COUNT, W_ALWAYS, 0}, END},
    [BNV_BACKWARD_INFER] = {{"dx", SZ_COUNT, W_ALWAYS, 0}, {"dgamma", SZ_C, W_AFFINE, 0},
                            {"dbeta", SZ_C, W_AFFINE, 0}, END},
};

static int applies(const spec *s, const bnv_group *g)
{
    switch (s->when) {
    case W_AFFINE:  return g->d.affine;
    case W_NOT_POP: return g->rule != BNV_RULE_POPULATION;
    case W_POP:     return g->rule == BNV_RULE_POPULATION;
    case W_CUM:     return g->rule == BNV_RULE_CUMULATIVE;
    default:        return 1;
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
 * *K is the number of rows of nested arrays (0: not known yet). */
static int load_part(ctx *C, const json_value *obj, const spec *specs, const bnv_group *g,
                     size_t count, bnv_array *arrs, size_t *narr, long *intval, size_t *K,
                     const char *part)
{
    size_t C_ = g->d.C;
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
        size_t n = s->size == SZ_COUNT ? count : C_, rows = 0;
        if (s->nested) {
            if (v->type != JSON_ARRAY || v->u.array.n == 0 || v->u.array.n > 1024 ||
                (*K && v->u.array.n != *K))
                return say(C, "%s (line %d) must be an array of %s arrays", what, v->line,
                           *K ? "one row per batch" : "1 to 1024");
            rows = *K = v->u.array.n;
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
        load_part(C, in, in_specs[g->op], g, count, t->in, &t->nin, &t->num_batches, &K, "inputs"))
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
    if (load_part(C, ex, out_specs[g->op], g, count, t->want, &t->nwant, &t->want_num_batches,
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

static const char *const type_names[] = {"BnForwardTrain", "BnBackwardTrain", "BnRunningStats",
                                         "BnForwardInfer", "BnBackwardInfer", NULL};

static int load_group(ctx *C, const json_value *jg, bnv_file *f, bnv_group *g, long *last_id,
                      const json_value *notes)
{
    static const char *const dtypes[] = {"fp64", "fp32", NULL};
    static const char *const froms[] = {"binary128", "exactStatistics", NULL};
    static const char *const layouts[] = {"NCHW", "NHWC", NULL};
    static const char *const acts[] = {"none", "relu", NULL};
    static const char *const rules[] = {"momentumNewUnbiased", "momentumOldBiased",
                                        "cumulativeUnbiased", "populationAlgorithm2", NULL};
    int k;
    if (jg->type != JSON_OBJECT)
        return say(C, "a test group must be an object");
    if ((k = one_of(C, jg, "type", type_names)) < 0)
        return -1;
    if ((bnv_op)k != f->op)
        return say(C, "group type %s does not belong in a %s file", type_names[k],
                   bnv_op_name(f->op));
    g->op = f->op;
    if ((g->fp32 = one_of(C, jg, "dtype", dtypes)) < 0 ||
        (g->exact_stats = one_of(C, jg, "expectedFrom", froms)) < 0 ||
        (k = one_of(C, jg, "layout", layouts)) < 0)
        return -1;
    g->d.layout = k ? BN_NHWC : BN_NCHW;
    const json_value *sh = need(C, jg, "shape", JSON_OBJECT), *v;
    long dims[4];
    static const char *const dn[] = {"N", "C", "H", "W"};
    size_t count = 1;
    for (int j = 0; j < 4; j++) {
        if (!sh || integer(C, json_get(sh, dn[j]), 1, 1L << 20, &dims[j], dn[j]))
            return -1;
        if (__builtin_mul_overflow(count, (size_t)dims[j], &count) || count > (1u << 24))
            return say(C, "shape has more than 2^24 values");
    }
    g->d.N = (size_t)dims[0], g->d.C = (size_t)dims[1], g->d.H = (size_t)dims[2], g->d.W = (size_t)dims[3];
    if (!(v = need(C, jg, "eps", JSON_NUMBER)) || !(v = need(C, jg, "affine", JSON_BOOL)))
        return -1;
    g->d.eps = json_get(jg, "eps")->u.number;
    g->d.affine = v->u.boolean;
    int train = f->op == BNV_FORWARD_TRAIN || f->op == BNV_BACKWARD_TRAIN;
    if (train && (g->relu = one_of(C, jg, "activation", acts)) < 0)
        return -1;
    if (!train && json_get(jg, "activation"))
        return say(C, "\"activation\" belongs to training groups only");
    if (f->op == BNV_RUNNING_STATS) {
        if ((k = one_of(C, jg, "rule", rules)) < 0)
            return -1;
        g->rule = (bnv_rule)k;
        v = json_get(jg, "momentum");
        int momentum_rule = k == BNV_RULE_NEW_UNBIASED || k == BNV_RULE_OLD_BIASED;
        if (!v || (momentum_rule ? v->type != JSON_NUMBER : v->type != JSON_NULL))
            return say(C, "\"momentum\" must be a number for momentum rules, null otherwise");
        g->momentum = momentum_rule ? v->u.number : 0;
    } else if (json_get(jg, "rule") || json_get(jg, "momentum"))
        return say(C, "\"rule\" and \"momentum\" belong to running_stats groups only");
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
    static const char *const schemas[] = {"forward_train_schema.json", "backward_train_schema.json",
                                          "running_stats_schema.json", "forward_infer_schema.json",
                                          "backward_infer_schema.json", NULL};
    static const char *const algorithms[] = {"BatchNormalization", NULL};
    const json_value *groups = NULL, *notes = NULL;
    long ntests, last_id = 0;
    int st = -1, k;
    if (root->type != JSON_OBJECT) {
        say(&C, "the file must hold one JSON object");
        goto out;
    }
    if (one_of(&C, root, "algorithm", algorithms) < 0 || (k = one_of(&C, root, "schema", schemas)) < 0 ||
        !need(&C, root, "generatorVersion", JSON_STRING) || !need(&C, root, "numberFormat", JSON_STRING) ||
        !need(&C, root, "header", JSON_ARRAY) || !(notes = need(&C, root, "notes", JSON_OBJECT)) ||
        integer(&C, json_get(root, "numberOfTests"), 0, 1L << 30, &ntests, "numberOfTests") ||
        !(groups = need(&C, root, "testGroups", JSON_ARRAY)))
        goto out;
    f->op = (bnv_op)k;
    f->path = dup_str(path);
    f->groups = calloc(groups->u.array.n + 1, sizeof *f->groups);
    if (!f->path || !f->groups) {
        say(&C, "out of memory");
        goto out;
    }
    for (size_t g = 0; g < groups->u.array.n; g++) {
        snprintf(C.where, sizeof C.where, "group %zu", g + 1);
        if (load_group(&C, &groups->u.array.items[g], f, &f->groups[f->ngroups++], &last_id, notes))
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
    static const char *const names[] = {"forward_train", "backward_train", "running_stats",
                                        "forward_infer", "backward_infer"};
    return (unsigned)op < 5 ? names[op] : "unknown";
}
