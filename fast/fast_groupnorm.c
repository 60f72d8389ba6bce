/*
 * fast_groupnorm.c — Group Normalization (Wu & He 2018) and Layer
 * Normalization (Ba et al. 2016, = GroupNorm with G = 1) in float, on the
 * kernels of kernels.h (the same AVX-512 / AVX2 / portable paths as BN).
 * ref/groupnorm.c has the formulas; docs/normalizations.md the picture.
 *
 * A set (n, g) is example n's channels [g·C/G, (g+1)·C/G) and their H·W
 * pixels: m = (C/G)·H·W values. Where its values lie decides the kernels:
 *   NCHW, and (N, D) data (H·W = 1), and LN in either layout: the set is
 *         one contiguous row of m floats; moments_nchw sums it like one BN
 *         channel (blocks, two-pass where needed, double merges);
 *   NHWC with 1 < G: moments_nhwc gives each channel's moments over the
 *         example's pixels (one streaming read of the example), merged in
 *         channel order into the sets' (Chan et al., in double).
 * gamma and beta are per channel, so the outputs go plane by plane (NCHW:
 * affine_nchw / dx_nchw on each H·W row) or pixel by pixel with one
 * coefficient per channel (NHWC, (N, D): affine_nhwc / dx_nhwc).
 *
 * Forward, per set: mu, sigma2 = M2/m (never E[x²] - E[x]²), s = 1/sqrt(
 * sigma2 + eps); per channel a = gamma·s, center = mu rounded to float,
 * k = beta - a·(mu - center): y = a·(x - center) + k keeps every digit of mu.
 * Backward, ref's closed form with xhat = (x - mean)·invstd from the saved
 * statistics: per channel Σ dy, Σ dy·xhat (grad_sums kernels), per set
 * M1 = Σ gamma·dy / m, M2 = Σ gamma·dy·xhat / m, then
 *   dx = gamma·s·dy - s²·M2·(x - mean) - s·M1          (dx kernels)
 * dgamma = Σ dy·xhat and dbeta = Σ dy over every example and pixel.
 *
 * Threads: a work item is a fixed run of examples (and, for NCHW planes,
 * one group); the runs depend on the shape only, every sum runs in the
 * same order whoever runs it, and dgamma, dbeta add the runs' partial sums
 * in run order: results are bit-identical for any thread count.
 *
 * Errors: ref's checks and statuses (G must divide C, sets of >= 2 values,
 * NaN/Inf -> BN_EDOM naming the set). On an error the outputs may be
 * partly written.
 *
 * Run: make check (tests/test_fast_groupnorm.c against ref/ on every path;
 * the fp32 groups of data/groupnorm.json through tests/test_vectors.c).
 */
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bn_internal.h"
#include "fast_internal.h"

/* At most this many runs of examples: dgamma's partial sums take
 * 2·runs·C doubles, and 64 runs keep 16 threads busy. */
#define GN_MAX_RUNS 64

/* How one call is cut (from the shape alone). */
typedef struct {
    const bn_fast_kernels *K;
    const bn_desc *d;
    size_t N, C, G, cpg, HW, m;  /* m = cpg·HW values per set */
    int planes;                  /* NCHW with H·W > 1: per-channel rows of H·W */
    int contiguous;              /* a set is one row of m floats */
    size_t per_run, runs;        /* examples per run; runs */
    size_t gsplit;               /* groups per item: 1 (planes) or G */
    size_t items;
    int stream, parallel;
    int threads;
} gn_plan;

static gn_plan gn_plan_make(const bn_fast_kernels *K, const bn_desc *d, size_t G, int arrays)
{
    gn_plan p = {0};
    p.K = K, p.d = d, p.N = d->N, p.C = d->C, p.G = G, p.cpg = d->C / G;
    p.HW = d->H * d->W, p.m = p.cpg * p.HW;
    p.planes = d->layout == BN_NCHW && p.HW > 1;
    p.contiguous = d->layout == BN_NCHW || p.HW == 1 || G == 1;
    p.per_run = (p.N + GN_MAX_RUNS - 1) / GN_MAX_RUNS;
    p.runs = (p.N + p.per_run - 1) / p.per_run;
    p.gsplit = p.planes ? 1 : G;
    p.items = p.runs * (G / p.gsplit);
    size_t count = p.N * p.C * p.HW;
    p.stream = bn_fast_stream_wanted((size_t)arrays * count * sizeof(float));
    /* below ~64 K values a parallel region costs more than it saves */
    p.parallel = p.items > 1 && count >= 65536;
    p.threads = bn_fast_threads();
    return p;
}

/* Item i: examples [*n0, *n1), groups [*g0, *g1). */
static void gn_item(const gn_plan *p, size_t i, size_t *n0, size_t *n1, size_t *g0,
                    size_t *g1)
{
    size_t per = p->G / p->gsplit, run = i / per;
    *n0 = run * p->per_run;
    *n1 = *n0 + p->per_run < p->N ? *n0 + p->per_run : p->N;
    *g0 = (i % per) * p->gsplit;
    *g1 = *g0 + p->gsplit;
}

/* Per-thread scratch: per-channel coefficients (floats) and sums (doubles). */
typedef struct {
    float *center, *a, *b, *k;
    double *sums;  /* 3·C */
} gn_scratch;

typedef struct {
    void *mem;
    size_t C;
} gn_pool;

static int gn_pool_new(gn_pool *P, const gn_plan *p, const char *who)
{
    size_t per = 4 * p->C * sizeof(float) + 3 * p->C * sizeof(double);
    per = (per + 63) / 64 * 64;
    P->C = p->C;
    P->mem = malloc(per * (size_t)p->threads);
    if (!P->mem)
        BN_ERROR(BN_ENOMEM, "%s: no memory for the per-thread scratch (C = %zu, %d threads)",
                 who, p->C, p->threads);
    return BN_OK;
}

static gn_scratch gn_scratch_of(const gn_pool *P, int thread)
{
    size_t C = P->C, per = (4 * C * sizeof(float) + 3 * C * sizeof(double) + 63) / 64 * 64;
    char *base = (char *)P->mem + per * (size_t)thread;
    gn_scratch s;
    s.sums = (double *)base;
    s.center = (float *)(s.sums + 3 * C);
    s.a = s.center + C, s.b = s.a + C, s.k = s.b + C;
    return s;
}

static int thread_id(void)
{
#ifdef _OPENMP
    return omp_get_thread_num();
#else
    return 0;
#endif
}

/* Checks shared by forward and backward (ref/groupnorm.c's check_groups). */
static int check_groups(const char *who, const bn_desc *d, size_t G)
{
    BN_TRY(bn_desc_check(d, 0, NULL, NULL));
    if (G == 0 || G > d->C || d->C % G != 0)
        BN_ERROR(BN_EINVAL, "%s: G = %zu groups must divide C = %zu (G = 1: LayerNorm, "
                 "G = C: InstanceNorm)", who, G, d->C);
    if (d->C / G * d->H * d->W == 1)
        BN_ERROR(BN_ESINGLE, "%s: each group holds one value ((C/G)·H·W = 1): its "
                 "variance is 0 and xhat is 0 whatever x is", who);
    return BN_OK;
}

/* ---- the exact path for rare sets, in double (as ref computes) */

/* The moments of set (n, g), for a set whose float sums left float's range
 * (values beyond ~1e19, deviations below ~1e-15) or hold NaN. */
static bn_moments set_moments_double(const float *x, const gn_plan *p, size_t n, size_t g)
{
    long double sum = 0, sq = 0;
    for (size_t c = g * p->cpg; c < (g + 1) * p->cpg; c++)
        for (size_t i = 0; i < p->HW; i++)
            sum += x[bn_offset(p->d, n, c, i)];
    double mean = (double)(sum / p->m);
    for (size_t c = g * p->cpg; c < (g + 1) * p->cpg; c++)
        for (size_t i = 0; i < p->HW; i++) {
            double dev = (double)x[bn_offset(p->d, n, c, i)] - mean;
            sq += dev * dev;
        }
    return (bn_moments){(double)p->m, mean, (double)sq};
}

/* Σ dy, Σ dy·xhat, Σ xhat of channel c of example n, in double. */
static void channel_grad_sums_double(double S[3], const float *dy, const float *x,
                                     const gn_plan *p, size_t n, size_t c, double center,
                                     double s)
{
    long double g = 0, h = 0, q = 0;
    for (size_t i = 0; i < p->HW; i++) {
        size_t o = bn_offset(p->d, n, c, i);
        double xhat = ((double)x[o] - center) * s;
        g += dy[o], h += (double)dy[o] * xhat, q += xhat;
    }
    S[0] = (double)g, S[1] = (double)h, S[2] = (double)q;
}

/* The first set of example n, among groups [g0, g1), holding a NaN or Inf
 * in v (for messages). */
static size_t first_bad_set(const gn_plan *p, const float *v, size_t n, size_t g0, size_t g1)
{
    for (size_t g = g0; g < g1; g++)
        for (size_t c = g * p->cpg; c < (g + 1) * p->cpg; c++)
            for (size_t i = 0; i < p->HW; i++)
                if (!isfinite(v[bn_offset(p->d, n, c, i)]))
                    return n * p->G + g;
    return n * p->G + g0;
}

/* ----------------------------------------------------------- forward */

typedef struct {
    const gn_plan *p;
    float *y, *mean, *var_biased, *invstd;
    const float *x, *gamma, *beta;
    const gn_pool *pool;
    bn_fast_error *e;
    const char *who;
} gn_fwd;

/* The moments of set (n, g); mm holds the example's per-channel moments
 * (NHWC with 1 < G). */
static bn_moments set_moments(const gn_fwd *f, const double *mm, size_t n, size_t g)
{
    const gn_plan *p = f->p;
    bn_moments mo = {0, 0, 0};
    if (p->contiguous) {
        bn_ahead none = {{NULL}, 0};
        size_t o = (n * p->C + g * p->cpg) * p->HW;
        mo = p->K->moments_nchw(f->x + o, (bn_rows){1, p->m, p->m}, none);
    } else {
        for (size_t c = g * p->cpg; c < (g + 1) * p->cpg; c++)
            bn_moments_merge(&mo, (bn_moments){(double)p->HW, mm[2 * c], mm[2 * c + 1]});
    }
    /* squares beyond float's range, or NaN: redo this set in double */
    if (!isfinite(mo.mean) || !(mo.m2 / mo.n >= BN_FAST_TINY_VAR) || isinf(mo.m2))
        mo = set_moments_double(f->x, p, n, g);
    return mo;
}

/* Statistics and coefficients of set (n, g); 0 (with a note) if unusable. */
static int set_coefs(const gn_fwd *f, gn_scratch *s, bn_moments mo, size_t n, size_t g)
{
    const gn_plan *p = f->p;
    const bn_desc *d = p->d;
    size_t set = n * p->G + g;
    double mu = mo.mean, var = mo.m2 / mo.n;  /* sigma2_S, biased: 1/m */
    if (!isfinite(mu) || !isfinite(var)) {
        bn_fast_note(f->e, set, BN_EDOM, "%s: set %zu: statistics are not finite (mu = %g, "
                     "sigma2 = %g): x holds NaN or Inf", f->who, set, mu, var);
        return 0;
    }
    if (!(var + d->eps >= DBL_MIN)) {
        bn_fast_note(f->e, set, BN_EDOM, "%s: set %zu: sigma2 + eps = %g is zero or "
                     "subnormal (constant values with eps = 0?): xhat would be 0/0 or noise",
                     f->who, set, var + d->eps);
        return 0;
    }
    double sd = 1.0 / sqrt(var + d->eps);
    float center = (float)mu;
    if (isinf((float)var) || isinf((float)sd)) {
        bn_fast_note(f->e, set, BN_EDOM, "%s: set %zu: sigma2 = %g or invstd = %g does "
                     "not fit in a float", f->who, set, var, sd);
        return 0;
    }
    for (size_t c = g * p->cpg; c < (g + 1) * p->cpg; c++) {
        double ga = d->affine ? f->gamma[c] : 1.0, be = d->affine ? f->beta[c] : 0.0;
        double a = ga * sd, k = be - a * (mu - center);  /* y = a·(x - mu) + beta */
        if (isinf((float)a) || isinf((float)k)) {
            bn_fast_note(f->e, set, BN_EDOM, "%s: set %zu: channel %zu: gamma·invstd = %g "
                         "does not fit in a float", f->who, set, c, a);
            return 0;
        }
        s->center[c] = center, s->a[c] = (float)a, s->k[c] = (float)k;
    }
    f->mean[set] = center;
    f->var_biased[set] = (float)var;
    if (f->invstd)
        f->invstd[set] = (float)sd;
    return 1;
}

static void forward_item(const gn_fwd *f, size_t i)
{
    const gn_plan *p = f->p;
    gn_scratch s = gn_scratch_of(f->pool, thread_id());
    size_t n0, n1, g0, g1, C = p->C, HW = p->HW;
    gn_item(p, i, &n0, &n1, &g0, &g1);
    size_t c0 = g0 * p->cpg, c1 = g1 * p->cpg;
    bn_ahead none = {{NULL}, 0};
    for (size_t n = n0; n < n1; n++) {
        size_t base = n * C * HW;
        if (!p->contiguous)
            p->K->moments_nhwc(s.sums, f->x + base, (bn_rows){HW, C, C});
        int good = 1;
        for (size_t g = g0; g < g1; g++)
            good &= set_coefs(f, &s, set_moments(f, s.sums, n, g), n, g);
        if (!good)
            continue;
        int finite = 1;
        if (p->planes) {
            for (size_t c = c0; c < c1; c++)
                finite &= p->K->affine_nchw(f->y + base + c * HW, f->x + base + c * HW,
                                            (bn_rows){1, HW, HW},
                                            (bn_coefs){s.center + c, s.a + c, s.b + c, s.k + c},
                                            0, p->stream, none);
        } else {
            finite = p->K->affine_nhwc(f->y + base + c0, f->x + base + c0,
                                       (bn_rows){HW, c1 - c0, C},
                                       (bn_coefs){s.center + c0, s.a + c0, s.b + c0, s.k + c0},
                                       0, p->stream);
        }
        if (!finite) {
            size_t set = first_bad_set(p, f->y, n, g0, g1);
            bn_fast_note(f->e, set, BN_EDOM, "%s: set %zu: y is NaN or Inf (NaN or Inf in "
                         "x, or y overflows float)", f->who, set);
        }
    }
}

int bn_groupnorm_forward_fast(float *y, float *mean, float *var_biased, float *invstd,
                              const float *x, const float *gamma, const float *beta,
                              const bn_desc *d, size_t G)
{
    const char *who = __func__;
    BN_TRY(check_groups(who, d, G));
    BN_REQUIRE(y);
    BN_REQUIRE(mean);
    BN_REQUIRE(var_biased);
    BN_REQUIRE(x);
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(beta);
        for (size_t c = 0; c < d->C; c++)
            if (!isfinite(gamma[c]) || !isfinite(beta[c]))
                BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g, beta = %g must be finite",
                         who, c, gamma[c], beta[c]);
    }
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    gn_plan p = gn_plan_make(K, d, G, 2);
    gn_pool P;
    BN_TRY(gn_pool_new(&P, &p, who));
    bn_fast_error e = {0};
    gn_fwd f = {&p, y, mean, var_biased, invstd, x, gamma, beta, &P, &e, who};
#pragma omp parallel if (p.parallel)
    {
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t i = 0; i < p.items; i++)
            forward_item(&f, i);
        bn_fast_store_fence();
    }
    free(P.mem);
    return bn_fast_raise(&e);
}

/* ---------------------------------------------------------- backward */

typedef struct {
    const gn_plan *p;
    float *dx;
    const float *dy, *x, *mean, *invstd, *gamma;
    double *part;  /* runs × C × 2: Σ dy, Σ dy·xhat of each run */
    const gn_pool *pool;
    bn_fast_error *e;
    const char *who;
} gn_bwd;

static void backward_item(const gn_bwd *b, size_t i)
{
    const gn_plan *p = b->p;
    const bn_desc *d = p->d;
    gn_scratch s = gn_scratch_of(b->pool, thread_id());
    size_t n0, n1, g0, g1, C = p->C, HW = p->HW, cpg = p->cpg;
    gn_item(p, i, &n0, &n1, &g0, &g1);
    size_t c0 = g0 * cpg, c1 = g1 * cpg, run = n0 / p->per_run;
    double *part = b->part + 2 * run * C;
    bn_ahead none = {{NULL}, 0};
    for (size_t n = n0; n < n1; n++) {
        size_t base = n * C * HW;
        /* 1. per channel: Σ dy, Σ dy·xhat, Σ xhat, xhat = (x - mean)·invstd */
        for (size_t c = c0; c < c1; c++)
            s.center[c] = b->mean[n * p->G + c / cpg], s.b[c] = b->invstd[n * p->G + c / cpg];
        if (p->planes) {
            for (size_t c = c0; c < c1; c++)
                p->K->grad_sums_nchw(s.sums + 3 * c, NULL, b->dy + base + c * HW, NULL,
                                     b->x + base + c * HW, (bn_rows){1, HW, HW},
                                     (bn_coefs){s.center + c, s.a + c, s.b + c, s.k + c}, 0,
                                     none);
        } else {
            p->K->grad_sums_nhwc(s.sums + 3 * c0, NULL, b->dy + base + c0, NULL,
                                 b->x + base + c0, (bn_rows){HW, c1 - c0, C},
                                 (bn_coefs){s.center + c0, s.a + c0, s.b + c0, s.k + c0}, 0);
        }
        /* 2. per set: the means of dxhat = gamma·dy and of dxhat·xhat; per
         *    channel: dx's coefficients and the run's parameter sums */
        for (size_t g = g0; g < g1; g++) {
            size_t set = n * p->G + g;
            double sd = b->invstd[set], M1 = 0, M2 = 0;
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++) {
                double *S = s.sums + 3 * c;
                if (!isfinite(S[0]) || !isfinite(S[1]) || !isfinite(S[2]))
                    channel_grad_sums_double(S, b->dy, b->x, p, n, c, s.center[c], sd);
                double ga = d->affine ? b->gamma[c] : 1.0;
                M1 += ga * S[0], M2 += ga * S[1];
                part[2 * c] += S[0], part[2 * c + 1] += S[1];
            }
            M1 /= (double)p->m, M2 /= (double)p->m;
            for (size_t c = g * cpg; c < (g + 1) * cpg; c++) {
                double ga = d->affine ? b->gamma[c] : 1.0;
                s.a[c] = (float)(ga * sd);
                s.b[c] = (float)(-sd * sd * M2);
                s.k[c] = (float)(-sd * M1);
            }
        }
        /* 3. dx = a·dy + b·(x - mean) + k */
        int finite = 1;
        if (p->planes) {
            for (size_t c = c0; c < c1; c++)
                finite &= p->K->dx_nchw(b->dx + base + c * HW, b->dy + base + c * HW, NULL,
                                        b->x + base + c * HW, (bn_rows){1, HW, HW},
                                        (bn_coefs){s.center + c, s.a + c, s.b + c, s.k + c},
                                        p->stream, none);
        } else {
            finite = p->K->dx_nhwc(b->dx + base + c0, b->dy + base + c0, NULL, b->x + base + c0,
                                   (bn_rows){HW, c1 - c0, C},
                                   (bn_coefs){s.center + c0, s.a + c0, s.b + c0, s.k + c0},
                                   p->stream);
        }
        if (!finite) {
            size_t set = first_bad_set(p, b->dx, n, g0, g1);
            bn_fast_note(b->e, set, BN_EDOM, "%s: set %zu: dx is NaN or Inf (NaN or Inf in "
                         "dy, or dx overflows float)", b->who, set);
        }
    }
}

int bn_groupnorm_backward_fast(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *invstd,
                               const float *gamma, const bn_desc *d, size_t G)
{
    const char *who = __func__;
    BN_TRY(check_groups(who, d, G));
    BN_REQUIRE(dx);
    BN_REQUIRE(dy);
    BN_REQUIRE(x);
    BN_REQUIRE(mean);
    BN_REQUIRE(invstd);
    if (d->affine) {
        BN_REQUIRE(gamma);
        BN_REQUIRE(dgamma);
        BN_REQUIRE(dbeta);
        for (size_t c = 0; c < d->C; c++)
            if (!isfinite(gamma[c]))
                BN_ERROR(BN_EDOM, "%s: channel %zu: gamma = %g must be finite", who, c,
                         gamma[c]);
    }
    for (size_t k = 0; k < d->N * G; k++)
        if (!isfinite(mean[k]) || !(invstd[k] > 0) || isinf(invstd[k]))
            BN_ERROR(BN_EDOM, "%s: set %zu: saved mean = %g, invstd = %g; pass those of "
                     "bn_groupnorm_forward_fast", who, k, mean[k], invstd[k]);
    const bn_fast_kernels *K;
    BN_TRY(bn_fast_kernels_get(&K));
    gn_plan p = gn_plan_make(K, d, G, 3);
    gn_pool P;
    BN_TRY(gn_pool_new(&P, &p, who));
    double *part = calloc(2 * p.runs * p.C, sizeof *part);
    if (!part) {
        free(P.mem);
        BN_ERROR(BN_ENOMEM, "%s: no memory for %zu partial sums", who, 2 * p.runs * p.C);
    }
    bn_fast_error e = {0};
    gn_bwd b = {&p, dx, dy, x, mean, invstd, gamma, part, &P, &e, who};
#pragma omp parallel if (p.parallel)
    {
#pragma omp for schedule(dynamic, 1) nowait
        for (size_t i = 0; i < p.items; i++)
            backward_item(&b, i);
        bn_fast_store_fence();
    }
    /* dgamma, dbeta: the runs' sums in run order */
    for (size_t c = 0; c < p.C && d->affine && !e.status; c++) {
        double db = 0, dg = 0;
        for (size_t r = 0; r < p.runs; r++)
            db += part[2 * (r * p.C + c)], dg += part[2 * (r * p.C + c) + 1];
        if (!isfinite(dg) || !isfinite(db) || isinf((float)dg) || isinf((float)db)) {
            bn_fast_note(&e, 0, BN_EDOM, "%s: channel %zu: dy holds NaN or Inf, or "
                         "dgamma = %g, dbeta = %g overflow float", who, c, dg, db);
            break;
        }
        dgamma[c] = (float)dg, dbeta[c] = (float)db;
    }
    free(part);
    free(P.mem);
    return bn_fast_raise(&e);
}

/* ------------------------------------------ LayerNorm: GN with G = 1 */

/* One set per example, all its C·H·W values; for (N, D) data each row. */
int bn_layernorm_forward_fast(float *y, float *mean, float *var_biased, float *invstd,
                              const float *x, const float *gamma, const float *beta,
                              const bn_desc *d)
{
    return bn_groupnorm_forward_fast(y, mean, var_biased, invstd, x, gamma, beta, d, 1);
}

int bn_layernorm_backward_fast(float *dx, float *dgamma, float *dbeta, const float *dy,
                               const float *x, const float *mean, const float *invstd,
                               const float *gamma, const bn_desc *d)
{
    return bn_groupnorm_backward_fast(dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, 1);
}
