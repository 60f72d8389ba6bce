/*
 * output.c — the generator's bookkeeping and its JSON writer: an arena for
 * everything a file needs, groups and tests, the flag notes, and the
 * Wycheproof-style layout (header, notes, testGroups[].tests[]) with one
 * array per line, so that a changed vector shows as a changed line in a diff.
 *
 * Numbers: %.17g, which gives back the same binary64 when parsed by strtod,
 * Python's float() or JavaScript's Number(); non-finite values are the
 * strings "NaN", "Infinity" and "-Infinity" (JSON has no such numbers).
 */
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "gen.h"

/* ------------------------------------------------------------ the arena */

static void **arena;
static size_t arena_n, arena_cap;

void *gen_alloc(size_t n, size_t size)
{
    void *p = calloc(n ? n : 1, size);
    if (!p || (arena_n == arena_cap &&
               !(arena = realloc(arena, (arena_cap = 2 * arena_cap + 64) * sizeof *arena)))) {
        fprintf(stderr, "gen_vectors: out of memory\n");
        exit(1);
    }
    arena[arena_n++] = p;
    return p;
}

double *gen_dalloc(size_t n) { return gen_alloc(n, sizeof(double)); }

char *gen_strdup(const char *s)
{
    char *p = gen_alloc(strlen(s) + 1, 1);
    memcpy(p, s, strlen(s) + 1);
    return p;
}

char *gen_fmt(const char *fmt, ...)
{
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    return gen_strdup(buf);
}

void gen_free_all(void)
{
    for (size_t k = 0; k < arena_n; k++)
        free(arena[k]);
    free(arena);
    arena = NULL;
    arena_n = arena_cap = 0;
}

/* ------------------------------------------------------ groups and tests */

ggroup *gen_group(gfile *f, const char *type, gshape s, const char *extra)
{
    if (f->ngroups == f->cap) {
        ggroup *g = gen_alloc(f->cap = 2 * f->cap + 16, sizeof *g);
        if (f->ngroups)
            memcpy(g, f->groups, f->ngroups * sizeof *g);
        f->groups = g;
    }
    ggroup *g = &f->groups[f->ngroups++];
    g->type = type;
    g->s = s;
    g->extra = extra;
    return g;
}

gtest *gen_test(ggroup *g, const char *comment)
{
    if (g->ntests == g->cap) {
        gtest *t = gen_alloc(g->cap = 2 * g->cap + 8, sizeof *t);
        if (g->ntests)
            memcpy(t, g->tests, g->ntests * sizeof *t);
        g->tests = t;
    }
    gtest *t = &g->tests[g->ntests++];
    memset(t, 0, sizeof *t);
    t->comment = comment;
    return t;
}

static void too_many(const char *what)
{
    fprintf(stderr, "gen_vectors: too many %s in one test\n", what);
    exit(1);
}

void gen_flag(gtest *t, const char *flag)
{
    if (t->nflags == GEN_MAX_FLAGS)
        too_many("flags");
    t->flags[t->nflags++] = flag;
}

static void add(garr *a, int *n, const char *name, double *v, size_t rows,
                size_t cols, int is_int)
{
    if (*n == GEN_MAX_ARRAYS)
        too_many("arrays");
    a[(*n)++] = (garr){name, v, rows, cols, is_int};
}

void gen_in(gtest *t, const char *name, double *v, size_t n) { add(t->in, &t->nin, name, v, 0, n, 0); }
void gen_out(gtest *t, const char *name, double *v, size_t n) { add(t->out, &t->nout, name, v, 0, n, 0); }
void gen_in_rows(gtest *t, const char *name, double *v, size_t rows, size_t cols)
{
    add(t->in, &t->nin, name, v, rows, cols, 0);
}
void gen_out_rows(gtest *t, const char *name, double *v, size_t rows, size_t cols)
{
    add(t->out, &t->nout, name, v, rows, cols, 0);
}
void gen_in_int(gtest *t, const char *name, size_t value)
{
    double *v = gen_dalloc(1);
    v[0] = (double)value;
    add(t->in, &t->nin, name, v, 0, 1, 1);
}
void gen_out_int(gtest *t, const char *name, size_t value)
{
    double *v = gen_dalloc(1);
    v[0] = (double)value;
    add(t->out, &t->nout, name, v, 0, 1, 1);
}

void gen_tol(gtest *t, const char *name, double atol, double rtol)
{
    if (t->ntol == GEN_MAX_ARRAYS)
        too_many("tolerances");
    t->tol[t->ntol++] = (gtol){name, atol, rtol};
}

/* ------------------------------------------------------------ flag notes */

/* Every flag a test may carry, and the bug it is there to catch. A file's
 * header lists the ones its tests use. */
static const struct {
    const char *flag, *bug_type, *description;
} notes[] = {
    {"Typical", "BASIC", "Well-conditioned random data; an implementation should pass these before anything else."},
    {"NegativeGamma", "EDGE_CASE", "gamma < 0 in some channels: catches code that assumes gamma > 0 (e.g. takes |gamma|, or folds gamma into a square root)."},
    {"Offset", "NUMERICAL", "The channel mean is about 100 times its spread: a one-pass variance E[x^2] - E[x]^2 loses about 4 digits."},
    {"LargeOffset", "NUMERICAL", "A large mean with a small spread: 1e7 +- 0.1 in fp64 groups (NIST StRD style), 1e4 +- 0.6 in fp32 groups (1e7 +- 0.1 is not representable in binary32). A one-pass variance E[x^2] - E[x]^2 cancels to noise; two-pass or Welford passes."},
    {"ConstantChannel", "EDGE_CASE", "All values of a channel are equal: the variance is exactly 0, xhat is 0, y = beta, and only eps > 0 keeps the division finite."},
    {"TwoValues", "EDGE_CASE", "m' = N*H*W = 2, the smallest training batch: the Bessel factor m'/(m'-1) is 2 and xhat is +-1/sqrt(1 + eps/sigma^2)."},
    {"SingleExample", "EDGE_CASE", "N = 1 with H*W > 1: a valid training batch whose statistics run over the pixels of one example; catches code that rejects N = 1 or reduces over N only."},
    {"OddSizes", "INDEXING", "N, C, H and W all different and not powers of two: catches index mix-ups between the four sizes and SIMD remainder loops."},
    {"TinyMagnitude", "NUMERICAL", "Values near 3e-151 (fp64) or 9e-16 (fp32) with eps = 0: the squares are still normal numbers; catches scaling that underflows."},
    {"HugeMagnitude", "NUMERICAL", "Values near 3e150 (fp64) or 7e16 (fp32) with eps = 0: the squares and their sums still fit; catches overflow in intermediate sums."},
    {"ZeroEps", "EDGE_CASE", "eps = 0 with non-constant data: valid; catches a hard-coded or clamped eps."},
    {"LargeEps", "CONVENTION", "eps = 1, as large as the variance: catches eps placed outside the square root, added to the standard deviation, or ignored."},
    {"ExactStatistics", "NUMERICAL", "Inputs are pairs symmetric around a short dyadic mean (as in oneDNN's test harness), so the mean and the biased variance are exact binary64 numbers."},
    {"ConstantDy", "GRADIENT", "dy is the same for every value of a channel: dx must be 0 (the mean(dy) term cancels it exactly)."},
    {"GradientCancellation", "GRADIENT", "dy proportional to x - mean: dx = gamma*s*k*(x - mean)*eps/(sigma^2 + eps), 0 when eps = 0, computed as a difference of large terms; catches a missing or wrong xhat*mean(dy*xhat) term."},
    {"ReluAllNegative", "ACTIVATION", "Every BN(x) of a channel is negative: y = 0 there and every gradient of that channel is 0."},
    {"ReluAllPositive", "ACTIVATION", "Every BN(x) is positive: the fused ReLU passes everything, y and the gradients equal plain batch normalization's."},
    {"FrameworkDefault", "CONVENTION", "The default momentum of the framework the rule comes from (PyTorch 0.1 on the new batch, Keras 0.99 on the old value)."},
    {"MomentumZero", "CONVENTION", "momentum = 0: PyTorch's rule keeps the old running statistics, Keras' rule replaces them by the batch's."},
    {"MomentumOne", "CONVENTION", "momentum = 1: PyTorch's rule replaces the running statistics by the batch's (unbiased variance), Keras' rule keeps the old ones."},
    {"ContinuedCumulative", "CONVENTION", "The cumulative average resumes after numBatchesTracked > 0 earlier batches: the next batch gets weight 1/(numBatchesTracked + 1)."},
    {"ZeroVariance", "EDGE_CASE", "Inference with a stored variance of 0 and eps > 0: valid, the scale is gamma/sqrt(eps)."},
    {"SingleValuePerChannel", "EDGE_CASE", "m' = N*H*W = 1: valid in inference; in training the variance is 0 whatever x is (bnlab, like PyTorch, rejects it)."},
    {"NegativeEps", "INVALID", "eps < 0: must be rejected (sigma^2 + eps can be negative or zero)."},
    {"NaNInput", "INVALID", "A NaN in the data or the statistics: must be reported, never turned into numbers."},
    {"InfInput", "INVALID", "An infinity in the data or the statistics: must be reported."},
    {"NonFiniteParameter", "INVALID", "gamma or beta is NaN or infinite: must be reported."},
    {"ZeroVarianceZeroEps", "INVALID", "sigma^2 + eps = 0 (a constant channel, or a stored variance of 0, with eps = 0): xhat would be 0/0."},
    {"Overflow", "INVALID", "The data are finite but a result (the variance) does not fit in the group's dtype."},
    {"Underflow", "INVALID", "sigma^2 + eps is below the smallest normal number of the dtype: 1/sqrt would be noise or infinite."},
    {"NegativeVariance", "INVALID", "A stored (population) variance < 0: not the statistics of any data."},
    {"MomentumOutOfRange", "INVALID", "momentum outside [0, 1]: the running average would extrapolate."},
    /* the normalization family */
    {"LayerNormCase", "CONVENTION", "groups = 1: Layer Normalization, one set per example over all its C*H*W values (each row of (N, D) data); catches statistics taken over the batch."},
    {"InstanceNormCase", "CONVENTION", "groups = C: Instance Normalization, one set per example and channel over its H*W pixels."},
    {"GroupNormCase", "INDEXING", "1 < groups < C: each set holds C/G consecutive channels of one example; catches groups of interleaved channels (c mod G) and statistics per channel or per example instead of per group."},
    {"ConstantSet", "EDGE_CASE", "All values of one set are equal: its variance is exactly 0, xhat = 0 there and y = beta; only eps > 0 keeps the division finite."},
    {"TwoValuesPerSet", "EDGE_CASE", "Each set holds 2 values: xhat = +-1/sqrt(1 + eps/sigma^2)."},
    {"ConstantDyPerSet", "GRADIENT", "dy is the same for every value of a set and there are no affine parameters: dx must be 0 (the mean(dy) term cancels it)."},
    {"GroupsNotDividing", "INVALID", "groups does not divide C (or exceeds it): the sets would differ in size; must be rejected."},
    {"SingleValuePerSet", "INVALID", "Each set holds one value ((C/G)*H*W = 1, or V*H*W = 1 for a virtual batch): its variance is 0 whatever x is; must be rejected."},
    {"ClippedR", "CONVENTION", "sigma_B/sigma lies outside [1/rmax, rmax] in some channels, on both sides: r is clipped to rmax or 1/rmax; catches a missing or one-sided clip."},
    {"ClippedD", "CONVENTION", "(mu_B - mu)/sigma lies outside [-dmax, dmax] in some channels, on both sides: d is clipped; catches a missing or one-sided clip."},
    {"InteriorRD", "CONVENTION", "r and d inside their ranges in some channels: the correction is used as computed; catches r inverted (sigma/sigma_B), d of the wrong sign and, in the backward, gradients through r and d (they are constants)."},
    {"RenormIsBn", "CONVENTION", "rmax = 1 and dmax = 0: r = 1, d = 0 whatever the moving statistics: Batch Renormalization is batch normalization exactly."},
    {"PaperDefault", "CONVENTION", "The paper's final settings: rmax = 3, dmax = 5 (Ioffe 2017, section 4), or its moving-average rate alpha = 0.01."},
    {"AlphaZero", "CONVENTION", "alpha = 0: the moving mean and standard deviation stay as they were."},
    {"AlphaOne", "CONVENTION", "alpha = 1: the moving statistics become the batch's mean and sqrt(varBiased + eps)."},
    {"RmaxBelowOne", "INVALID", "rmax < 1: the range [1/rmax, rmax] of r is empty; must be rejected."},
    {"DmaxNegative", "INVALID", "dmax < 0: the range [-dmax, dmax] of d is empty; must be rejected."},
    {"NonPositiveMovingSd", "INVALID", "A moving standard deviation <= 0: r and d, or inference, would divide by it; must be rejected."},
    {"AlphaOutOfRange", "INVALID", "alpha outside [0, 1]: the moving averages would extrapolate; must be rejected."},
    {"OneVirtualBatch", "CONVENTION", "V = N: one virtual batch, Ghost BN is batch normalization exactly."},
    {"OneExamplePerVirtualBatch", "EDGE_CASE", "V = 1: each example is normalized with the statistics of its own H*W pixels."},
    {"VirtualBatchShift", "INDEXING", "The virtual batches have different means: statistics shared by the whole batch, or virtual batches taken from interleaved examples, are far off."},
    {"TwoValuesPerVirtualBatch", "EDGE_CASE", "V*H*W = 2: each virtual batch holds 2 values per channel (Bessel factor 2 in the running variance)."},
    {"VirtualBatchNotDividing", "INVALID", "V does not divide N (or V = 0): the virtual batches would differ in size; must be rejected."},
    {"NegativeG", "EDGE_CASE", "g < 0 for some units: w = g*v/||v|| points against v; catches code that takes |g| or assumes g > 0."},
    {"SparseV", "EDGE_CASE", "Rows of v with zeros in them: those weights and their gradients are 0 (times g)."},
    {"SingleInput", "EDGE_CASE", "D = 1: w = g*sign(v), and dl/dv = 0 (a one-dimensional direction cannot change)."},
    {"ParallelGradient", "GRADIENT", "dl/dw proportional to v: dl/dv = 0 exactly, a difference of large terms; catches a missing projection (dl/dv = g/||v|| * dl/dw)."},
    {"OrthogonalGradient", "GRADIENT", "dl/dw orthogonal to v: dl/dg = 0 exactly and dl/dv = g/||v|| * dl/dw."},
    {"ZeroRow", "INVALID", "A row of v is all zeros: it has no direction (||v|| = 0); must be rejected."},
    {"ConstantPreActivation", "INVALID", "A unit whose pre-activations are all equal: sigma = 0, g = 1/sigma is infinite; must be rejected."},
    {"ManyBatches", "BASIC", "Many batches (16): the population statistics are plain averages over all of them."},
    {"Drift", "CONVENTION", "The batches' means drift from batch to batch: every batch counts equally (not an exponential moving average, which follows the last ones)."},
};
enum { NNOTES = sizeof notes / sizeof notes[0] };

static int note_index(const char *flag)
{
    for (int k = 0; k < NNOTES; k++)
        if (strcmp(notes[k].flag, flag) == 0)
            return k;
    fprintf(stderr, "gen_vectors: flag '%s' has no note\n", flag);
    exit(1);
}

/* ------------------------------------------------------------ the writer */

static void put_string(FILE *o, const char *s)
{
    fputc('"', o);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(o, "\\%c", c);
        else if (c < 0x20)
            fprintf(o, "\\u%04x", c);
        else
            fputc(c, o);
    }
    fputc('"', o);
}

static void put_number(FILE *o, double v)
{
    if (isnan(v))
        fputs("\"NaN\"", o);
    else if (isinf(v))
        fputs(v > 0 ? "\"Infinity\"" : "\"-Infinity\"", o);
    else
        fprintf(o, "%.17g", v);
}

/* A tolerance, rounded UP to 3 significant digits for readability. */
static void put_tol(FILE *o, double v)
{
    if (v == 0) {
        fputs("0", o);
        return;
    }
    /* %.2e rounds to nearest, within 0.5% of its argument: 1.006·v keeps the
     * printed value above v. */
    fprintf(o, "%.2e", v * 1.006);
}

static void put_values(FILE *o, const double *v, size_t n)
{
    fputc('[', o);
    for (size_t k = 0; k < n; k++) {
        if (k)
            fputs(", ", o);
        put_number(o, v[k]);
    }
    fputc(']', o);
}

static void put_test(FILE *o, const gtest *t, long tcId)
{
    const int I = 8;
    fprintf(o, "%*s{\n%*s\"tcId\": %ld,\n%*s\"comment\": ", I, "", I + 2, "", tcId, I + 2, "");
    put_string(o, t->comment);
    fprintf(o, ",\n%*s\"flags\": [", I + 2, "");
    for (int k = 0; k < t->nflags; k++) {
        fprintf(o, "%s", k ? ", " : "");
        put_string(o, t->flags[k]);
    }
    fputs("],\n", o);
    /* inputs and expected: one array per line */
    for (int part = 0; part < 2; part++) {
        const garr *a = part ? t->out : t->in;
        int n = part ? t->nout : t->nin;
        fprintf(o, "%*s\"%s\": {", I + 2, "", part ? "expected" : "inputs");
        for (int k = 0; k < n; k++) {
            fprintf(o, "%s\n%*s\"%s\": ", k ? "," : "", I + 4, "", a[k].name);
            if (a[k].is_int)
                fprintf(o, "%.0f", a[k].v[0]);
            else if (a[k].rows == 0)
                put_values(o, a[k].v, a[k].cols);
            else {
                fputc('[', o);
                for (size_t r = 0; r < a[k].rows; r++) {
                    fprintf(o, "%s\n%*s", r ? "," : "", I + 6, "");
                    put_values(o, a[k].v + r * a[k].cols, a[k].cols);
                }
                fprintf(o, "\n%*s]", I + 4, "");
            }
        }
        fprintf(o, "%s%*s},\n", n ? "\n" : "", n ? I + 2 : 0, "");
    }
    fprintf(o, "%*s\"tolerance\": {", I + 2, "");
    for (int k = 0; k < t->ntol; k++) {
        fprintf(o, "%s\"%s\": {\"atol\": ", k ? ", " : "", t->tol[k].name);
        put_tol(o, t->tol[k].atol);
        fputs(", \"rtol\": ", o);
        put_tol(o, t->tol[k].rtol);
        fputc('}', o);
    }
    fputs("},\n", o);
    fprintf(o, "%*s\"result\": \"%s\"", I + 2, "", t->error ? "invalid" : "valid");
    if (t->error)
        fprintf(o, ",\n%*s\"error\": \"%s\"", I + 2, "", t->error);
    fprintf(o, "\n%*s}", I, "");
}

static void put_group(FILE *o, const ggroup *g, long *tcId)
{
    const gshape *s = &g->s;
    fprintf(o, "    {\n      \"type\": \"%s\",\n", g->type);
    fprintf(o, "      \"dtype\": \"%s\",\n", s->fp32 ? "fp32" : "fp64");
    fprintf(o, "      \"expectedFrom\": \"%s\",\n", s->exact_stats ? "exactStatistics" : "binary128");
    if (!g->plain) {
        fprintf(o, "      \"layout\": \"%s\",\n", s->layout == LAYOUT_NHWC ? "NHWC" : "NCHW");
        fprintf(o, "      \"shape\": {\"N\": %zu, \"C\": %zu, \"H\": %zu, \"W\": %zu},\n", s->N,
                s->C, s->H, s->W);
        fputs("      \"eps\": ", o);
        put_number(o, s->eps);
        fprintf(o, ",\n      \"affine\": %s,\n", s->affine ? "true" : "false");
    }
    /* BnForwardTrain, BnBackwardTrain (not the family's ...Train types) */
    if (strncmp(g->type, "Bn", 2) == 0 && strstr(g->type, "Train"))
        fprintf(o, "      \"activation\": \"%s\",\n", s->relu ? "relu" : "none");
    if (g->extra)
        fprintf(o, "%s", g->extra);
    fputs("      \"tests\": [\n", o);
    for (size_t k = 0; k < g->ntests; k++) {
        put_test(o, &g->tests[k], ++*tcId);
        fputs(k + 1 < g->ntests ? ",\n" : "\n", o);
    }
    fputs("      ]\n    }", o);
}

size_t gen_write(const gfile *f, const char *dir)
{
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", dir, f->file);
    FILE *o = fopen(path, "w");
    if (!o) {
        perror(path);
        exit(1);
    }
    size_t ntests = 0;
    int used[NNOTES] = {0};
    for (size_t g = 0; g < f->ngroups; g++)
        for (size_t k = 0; k < f->groups[g].ntests; k++) {
            ntests++;
            for (int j = 0; j < f->groups[g].tests[k].nflags; j++)
                used[note_index(f->groups[g].tests[k].flags[j])] = 1;
        }
    fprintf(o, "{\n  \"algorithm\": \"%s\",\n", f->algorithm ? f->algorithm : "BatchNormalization");
    fprintf(o, "  \"schema\": \"%s\",\n", f->schema);
    fprintf(o, "  \"generatorVersion\": \"%s\",\n", GEN_VERSION);
    fprintf(o, "  \"numberOfTests\": %zu,\n", ntests);
    fputs("  \"numberFormat\": \"Every number is written with 17 significant digits (C printf %.17g): "
          "parsed as an IEEE 754 binary64 (strtod, Python float, JavaScript Number) it gives back "
          "exactly the binary64 value the generator wrote. In fp32 groups every input is a binary32 "
          "value (so parsing as binary32, or as binary64 then rounding to binary32, is exact too); "
          "expected values are binary64, more accurate than any binary32 result. NaN and infinities "
          "are the strings \\\"NaN\\\", \\\"Infinity\\\" and \\\"-Infinity\\\".\",\n", o);
    fputs("  \"header\": [\n", o);
    for (const char **h = f->header; *h; h++) {
        fputs("    ", o);
        put_string(o, *h);
        fputs(h[1] ? ",\n" : "\n", o);
    }
    fputs("  ],\n  \"notes\": {\n", o);
    int first = 1;
    for (int k = 0; k < NNOTES; k++) {
        if (!used[k])
            continue;
        fprintf(o, "%s    \"%s\": {\"bugType\": \"%s\", \"description\": ", first ? "" : ",\n",
                notes[k].flag, notes[k].bug_type);
        put_string(o, notes[k].description);
        fputc('}', o);
        first = 0;
    }
    fputs("\n  },\n  \"testGroups\": [\n", o);
    long tcId = 0;
    for (size_t g = 0; g < f->ngroups; g++) {
        put_group(o, &f->groups[g], &tcId);
        fputs(g + 1 < f->ngroups ? ",\n" : "\n", o);
    }
    fputs("  ]\n}\n", o);
    if (fclose(o) != 0) {
        perror(path);
        exit(1);
    }
    return ntests;
}
