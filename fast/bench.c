/*
 * bench.c — `make bench`: how fast is batch normalization here, and how
 * close to the memory bus? Measures, in one process and one run:
 *
 *   probe   a STREAM-style bandwidth probe: triad a = b + s·c with normal
 *           stores and with non-temporal stores, and a read-only sum
 *   ref     ref/ (double, one thread), for the speed-up of fast over ref
 *   fast    fast/ (float, the ISA path chosen by CPUID or BNLAB_FAST_ISA)
 *   onednn  oneDNN's batch normalization (when built with libdnnl-dev):
 *           plain NCHW, NHWC and its blocked nChw16c (its fastest)
 *
 * on ResNet-50's batch-normalization layers at N = 32, a fully connected
 * 256 x 1024 layer and a small 8x16x32x32 tensor, for the five operations
 * fwd_train, fwd_infer, bwd, fwd_train_relu, bwd_relu, at 1 and 2 threads.
 * Each figure is the median of repeated runs on warm buffers. One line per
 * measurement:
 *
 *   bench impl=fast op=fwd_train layout=nchw shape=32x256x56x56 threads=1
 *         med_ms=5.61 gbs=36.7 passes=2 bw_frac=0.84            (one line)
 *
 * passes = the DRAM passes over the tensor the operation cannot avoid (each
 * array of N·C·H·W values read or written once: fwd 2, bwd 3, bwd_relu 4 as
 * bnlab's API passes y), gbs = passes·N·C·H·W·(4 or 8 bytes)/time, and
 * bw_frac = gbs / the non-temporal triad of the same run and thread count.
 * Then summary tables: fast / oneDNN-best per shape, fast / ref per op, and
 * the targets of issue 3. docs/performance.md explains the method.
 *
 * Run: make bench   (or build/bin/bench --help)
 */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <omp.h>
#if defined(__x86_64__) || defined(__i386__)
#include <emmintrin.h>
#define HAVE_SSE2_STREAM 1
#endif

#include "bnlab.h"
#include "fast_internal.h"

#ifdef BNLAB_HAVE_DNNL
#include <dnnl.h>
#endif

/* ------------------------------------------------------------- options */

typedef struct {
    int threads[4], n_threads;
    int ref, onednn, quick;
    double budget_s;  /* time spent per measurement, roughly */
    const char *only; /* measure only shapes whose name contains this */
} options;

static void usage(FILE *f)
{
    fprintf(f,
            "usage: bench [options]\n"
            "  Batch-normalization throughput of ref, fast and oneDNN, against a\n"
            "  STREAM-style bandwidth probe run in the same process.\n"
            "  --threads LIST   thread counts, comma separated (default 1,2)\n"
            "  --no-ref         skip ref (double, slow: most of the run time)\n"
            "  --no-onednn      skip oneDNN even if it was built in\n"
            "  --quick          shorter runs, 0.08 s per figure instead of 0.25 s\n"
            "  --shape TEXT     only the shapes whose name contains TEXT (e.g. 56x56)\n"
            "  --help           this text\n"
            "Environment: BNLAB_FAST_ISA=avx512|avx2|portable picks fast/'s path.\n"
            "Output: 'probe ...' and 'bench ...' lines, then summary tables.\n");
}

static int parse(options *o, int argc, char **argv)
{
    *o = (options){{1, 2}, 2, 1, 1, 0, 0.25, NULL};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "--help") || !strcmp(a, "-h")) {
            usage(stdout);
            exit(0);
        } else if (!strcmp(a, "--no-ref")) {
            o->ref = 0;
        } else if (!strcmp(a, "--no-onednn")) {
            o->onednn = 0;
        } else if (!strcmp(a, "--quick")) {
            o->quick = 1, o->budget_s = 0.08;
        } else if (!strcmp(a, "--shape") && i + 1 < argc) {
            o->only = argv[++i];
        } else if (!strcmp(a, "--threads") && i + 1 < argc) {
            o->n_threads = 0;
            for (char *s = argv[++i], *end; *s && o->n_threads < 4; s = end + (*end == ',')) {
                long t = strtol(s, &end, 10);
                if (end == s || t < 1 || t > 256) {
                    fprintf(stderr, "bench: --threads %s: want numbers 1..256, comma "
                            "separated\n", argv[i]);
                    return 1;
                }
                o->threads[o->n_threads++] = (int)t;
            }
        } else {
            fprintf(stderr, "bench: unknown argument '%s'\n", a);
            usage(stderr);
            return 1;
        }
    }
    return 0;
}

/* -------------------------------------------------------------- timing */

static double now_s(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

enum { MAX_REPS = 200 };

/* Median time of f(ctx) in ms: `warmup` untimed calls, then at least
 * min_reps timed ones, more until budget_s has passed (at most MAX_REPS). */
static double measure(void (*f)(void *), void *ctx, double budget_s, int warmup,
                      int min_reps)
{
    double t[MAX_REPS];
    for (int i = 0; i < warmup; i++)
        f(ctx);
    int n = 0;
    double start = now_s();
    while (n < MAX_REPS && (n < min_reps || now_s() - start < budget_s)) {
        double t0 = now_s();
        f(ctx);
        t[n++] = (now_s() - t0) * 1e3;
    }
    qsort(t, (size_t)n, sizeof t[0], cmp_double);
    return n % 2 ? t[n / 2] : 0.5 * (t[n / 2 - 1] + t[n / 2]);
}

/* ------------------------------------------------------ bandwidth probe */

/* STREAM's triad, a[i] = b[i] + s·c[i], on arrays far larger than the
 * last-level cache, counted as STREAM counts it: 3 arrays x 8 bytes per i
 * (the read-for-ownership of a's lines with normal stores is not counted:
 * that is why the non-temporal triad, which does not need one, is the
 * yardstick for bw_frac). And a read-only sum, 8 bytes per i. */
typedef struct {
    double *a, *b, *c;
    size_t n;
    int kind; /* 0 triad, 1 triad non-temporal, 2 read */
    double sink;
} probe;

static void probe_run(void *ctx)
{
    probe *p = ctx;
    double *a = p->a, s = 3.0, total = 0;
    const double *b = p->b, *c = p->c;
    size_t n = p->n;
    if (p->kind == 0) {
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
    } else if (p->kind == 1) {
#ifdef HAVE_SSE2_STREAM
#pragma omp parallel
        {
            __m128d vs = _mm_set1_pd(s);
#pragma omp for schedule(static)
            for (size_t i = 0; i < n; i += 2)
                _mm_stream_pd(a + i, _mm_add_pd(_mm_load_pd(b + i),
                                                _mm_mul_pd(vs, _mm_load_pd(c + i))));
            _mm_sfence();
        }
#else
#pragma omp parallel for schedule(static)
        for (size_t i = 0; i < n; i++)
            a[i] = b[i] + s * c[i];
#endif
    } else {
        /* eight independent sums, so that the adds keep up with memory */
#pragma omp parallel for schedule(static) reduction(+ : total)
        for (size_t i = 0; i < n; i += 64) {
            double t[8] = {0};
            for (size_t j = 0; j < 64; j += 8)
                for (int k = 0; k < 8; k++)
                    t[k] += b[i + j + (size_t)k];
            total += ((t[0] + t[1]) + (t[2] + t[3])) + ((t[4] + t[5]) + (t[6] + t[7]));
        }
        p->sink += total;
    }
}

static const char *probe_names[] = {"triad", "triad_nt", "read"};

/* Runs the three probes at the current thread count; returns the NT triad. */
static double run_probe(int threads, double budget_s)
{
    probe p = {0};
    p.n = (size_t)1 << 25; /* 3 x 256 MiB: far beyond any last-level cache */
    size_t bytes = p.n * sizeof(double);
    p.a = aligned_alloc(64, bytes), p.b = aligned_alloc(64, bytes), p.c = aligned_alloc(64, bytes);
    if (!p.a || !p.b || !p.c) {
        fprintf(stderr, "bench: no memory for the bandwidth probe\n");
        exit(1);
    }
#pragma omp parallel for schedule(static)
    for (size_t i = 0; i < p.n; i++)
        p.a[i] = 0, p.b[i] = 1, p.c[i] = 2; /* first touch by the threads that use them */
    double nt = 0;
    for (int k = 0; k < 3; k++) {
        p.kind = k;
        double ms = measure(probe_run, &p, budget_s * 2, 1, 5);
        double gbs = (k == 2 ? 1.0 : 3.0) * (double)bytes / (ms * 1e-3) / 1e9;
        printf("probe kind=%s threads=%d med_ms=%.2f gbs=%.1f\n", probe_names[k], threads,
               ms, gbs);
        if (k == 1)
            nt = gbs;
    }
    fflush(stdout);
    free(p.a), free(p.b), free(p.c);
    return nt;
}

/* ------------------------------------------------------ shapes and ops */

typedef struct {
    size_t N, C, H, W;
    int fc; /* 1: an (N, D) matrix */
} shape;

static const shape shapes[] = {
    {32, 64, 56, 56, 0},  {32, 256, 56, 56, 0}, {32, 128, 28, 28, 0}, {32, 512, 28, 28, 0},
    {32, 256, 14, 14, 0}, {32, 1024, 14, 14, 0}, {32, 512, 7, 7, 0},  {32, 2048, 7, 7, 0},
    {256, 1024, 1, 1, 1}, {8, 16, 32, 32, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0], N_RESNET = 8 };

static const char *shape_name(const shape *s)
{
    static char buf[N_SHAPES][48];
    int k = (int)(s - shapes);
    if (s->fc)
        snprintf(buf[k], sizeof buf[k], "%zux%zu", s->N, s->C);
    else
        snprintf(buf[k], sizeof buf[k], "%zux%zux%zux%zu", s->N, s->C, s->H, s->W);
    return buf[k];
}

static size_t count_of(const shape *s) { return s->N * s->C * s->H * s->W; }

enum { FWD_TRAIN, FWD_INFER, BWD, FWD_TRAIN_RELU, BWD_RELU, N_OPS };
static const char *op_names[N_OPS] = {"fwd_train", "fwd_infer", "bwd", "fwd_train_relu",
                                      "bwd_relu"};
/* DRAM passes over the tensor each op cannot avoid (arrays read or written) */
static const int op_passes[N_OPS] = {2, 2, 3, 2, 4};

/* layouts: fast and ref run nchw and nhwc ((N, D) is one layout: "nd");
 * oneDNN also runs its blocked nChw16c */
enum { L_NCHW, L_NHWC, L_BLOCKED, N_LAYOUTS };
static const char *layout_names[N_LAYOUTS] = {"nchw", "nhwc", "nChw16c"};

/* ------------------------------------------------------------ results */

enum { IMPL_REF, IMPL_FAST, IMPL_ONEDNN, N_IMPLS };
static const char *impl_names[N_IMPLS] = {"ref", "fast", "onednn"};
enum { MAX_T = 4 };

/* med_ms[impl][shape][layout][op][thread index]; 0 = not measured */
static double results[N_IMPLS][N_SHAPES][N_LAYOUTS][N_OPS][MAX_T];
static double nt_triad[MAX_T];

static void report(int impl, int s, int layout, int op, int ti, int threads, double ms)
{
    const shape *sh = &shapes[s];
    double elem = impl == IMPL_REF ? 8 : 4;
    double gbs = op_passes[op] * (double)count_of(sh) * elem / (ms * 1e-3) / 1e9;
    results[impl][s][layout][op][ti] = ms;
    printf("bench impl=%s op=%s layout=%s shape=%s threads=%d med_ms=%.3f gbs=%.1f "
           "passes=%d bw_frac=%.2f\n",
           impl_names[impl], op_names[op], sh->fc ? "nd" : layout_names[layout],
           shape_name(sh), threads, ms, gbs, op_passes[op], gbs / nt_triad[ti]);
    fflush(stdout);
}

/* ---------------------------------------------------------- fast & ref */

typedef struct {
    bn_desc d;
    int op;
    float *x, *y, *dy, *dx, *g, *b, *mean, *var, *invstd, *dg, *db;
    double *X, *Y, *DY, *DX, *G, *B, *MEAN, *VAR, *INVSTD, *DG, *DB;
    int status;
} op_ctx;

static void run_fast(void *p)
{
    op_ctx *c = p;
    int st = BN_OK;
    switch (c->op) {
    case FWD_TRAIN: st = bn_forward_train_fast(c->y, c->mean, c->var, c->invstd, c->x, c->g, c->b, &c->d); break;
    case FWD_INFER: st = bn_forward_infer_fast(c->y, c->x, c->g, c->b, c->mean, c->var, &c->d); break;
    case BWD: st = bn_backward_train_fast(c->dx, c->dg, c->db, c->dy, c->x, c->mean, c->invstd, c->g, &c->d); break;
    case FWD_TRAIN_RELU: st = bn_forward_train_relu_fast(c->y, c->mean, c->var, c->invstd, c->x, c->g, c->b, &c->d); break;
    case BWD_RELU: st = bn_backward_train_relu_fast(c->dx, c->dg, c->db, c->dy, c->y, c->x, c->mean, c->invstd, c->g, &c->d); break;
    }
    c->status |= st;
}

static void run_ref(void *p)
{
    op_ctx *c = p;
    int st = BN_OK;
    switch (c->op) {
    case FWD_TRAIN: st = bn_forward_train_ref(c->Y, c->MEAN, c->VAR, c->INVSTD, c->X, c->G, c->B, &c->d); break;
    case FWD_INFER: st = bn_forward_infer_ref(c->Y, c->X, c->G, c->B, c->MEAN, c->VAR, &c->d); break;
    case BWD: st = bn_backward_train_ref(c->DX, c->DG, c->DB, c->DY, c->X, c->MEAN, c->INVSTD, c->G, &c->d); break;
    case FWD_TRAIN_RELU: st = bn_forward_train_relu_ref(c->Y, c->MEAN, c->VAR, c->INVSTD, c->X, c->G, c->B, &c->d); break;
    case BWD_RELU: st = bn_backward_train_relu_ref(c->DX, c->DG, c->DB, c->DY, c->Y, c->X, c->MEAN, c->INVSTD, c->G, &c->d); break;
    }
    c->status |= st;
}

static void *big_alloc(size_t bytes, const char *what)
{
    void *p = aligned_alloc(64, (bytes + 63) / 64 * 64);
    if (!p) {
        fprintf(stderr, "bench: no memory for %s (%zu bytes)\n", what, bytes);
        exit(1);
    }
    return p;
}

/* ------------------------------------------------------------- oneDNN */

#ifdef BNLAB_HAVE_DNNL
static dnnl_engine_t engine;
static dnnl_stream_t dstream;

#define DNNL_OK(call)                                                          \
    do {                                                                       \
        dnnl_status_t st_ = (call);                                            \
        if (st_ != dnnl_success) {                                             \
            fprintf(stderr, "bench: oneDNN: %s failed (status %d)\n", #call,   \
                    (int)st_);                                                 \
            return 1;                                                          \
        }                                                                      \
    } while (0)

typedef struct {
    dnnl_primitive_t prim;
    dnnl_exec_arg_t args[12];
    int nargs;
} dnnl_run;

static int dnnl_failed;

static void run_onednn(void *p)
{
    dnnl_run *r = p;
    dnnl_status_t st = dnnl_primitive_execute(r->prim, dstream, r->nargs, r->args);
    if (st == dnnl_success)
        st = dnnl_stream_wait(dstream);
    if (st != dnnl_success)
        dnnl_failed = (int)st;
}

/* Memory objects for one shape and layout, on the bench's own buffers
 * (the same float arrays fast/ uses; their contents are valid floats in
 * every layout). */
typedef struct {
    dnnl_memory_t src, dst, diff_dst, diff_src, mean, var, scale, shift, dscale, dshift, ws;
    dnnl_primitive_t fwd_train, fwd_infer, bwd;
    dnnl_primitive_desc_t fwd_pd;
} dnnl_set;

static void dnnl_set_free(dnnl_set *s)
{
    dnnl_memory_t *m[] = {&s->src, &s->dst, &s->diff_dst, &s->diff_src, &s->mean, &s->var,
                          &s->scale, &s->shift, &s->dscale, &s->dshift, &s->ws};
    for (size_t i = 0; i < sizeof m / sizeof m[0]; i++)
        if (*m[i])
            dnnl_memory_destroy(*m[i]);
    if (s->fwd_train) dnnl_primitive_destroy(s->fwd_train);
    if (s->fwd_infer) dnnl_primitive_destroy(s->fwd_infer);
    if (s->bwd) dnnl_primitive_destroy(s->bwd);
    if (s->fwd_pd) dnnl_primitive_desc_destroy(s->fwd_pd);
    memset(s, 0, sizeof *s);
}

/* Builds the three primitives (training forward, inference forward,
 * backward) for shape sh in layout L, with or without fused ReLU. */
static int dnnl_build(dnnl_set *s, const shape *sh, int L, int relu, op_ctx *c)
{
    memset(s, 0, sizeof *s);
    dnnl_memory_desc_t md, cmd;
    dnnl_dims_t dims = {(dnnl_dim_t)sh->N, (dnnl_dim_t)sh->C, (dnnl_dim_t)sh->H,
                        (dnnl_dim_t)sh->W};
    dnnl_format_tag_t tag = sh->fc ? dnnl_nc
                            : L == L_NCHW ? dnnl_nchw
                            : L == L_NHWC ? dnnl_nhwc : dnnl_nChw16c;
    DNNL_OK(dnnl_memory_desc_init_by_tag(&md, sh->fc ? 2 : 4, dims, dnnl_f32, tag));
    dnnl_dims_t cdims = {(dnnl_dim_t)sh->C};
    DNNL_OK(dnnl_memory_desc_init_by_tag(&cmd, 1, cdims, dnnl_f32, dnnl_a));
    float eps = (float)c->d.eps;
    unsigned flags = dnnl_use_scale | dnnl_use_shift | (relu ? dnnl_fuse_norm_relu : 0);

    dnnl_batch_normalization_desc_t fd, id, bd;
    DNNL_OK(dnnl_batch_normalization_forward_desc_init(&fd, dnnl_forward_training, &md, eps, flags));
    DNNL_OK(dnnl_primitive_desc_create(&s->fwd_pd, &fd, NULL, engine, NULL));
    DNNL_OK(dnnl_primitive_create(&s->fwd_train, s->fwd_pd));
    DNNL_OK(dnnl_batch_normalization_forward_desc_init(&id, dnnl_forward_inference, &md, eps,
                                                       flags | dnnl_use_global_stats));
    dnnl_primitive_desc_t ipd, bpd;
    DNNL_OK(dnnl_primitive_desc_create(&ipd, &id, NULL, engine, NULL));
    DNNL_OK(dnnl_primitive_create(&s->fwd_infer, ipd));
    dnnl_primitive_desc_destroy(ipd);
    DNNL_OK(dnnl_batch_normalization_backward_desc_init(&bd, dnnl_backward, &md, &md, eps, flags));
    DNNL_OK(dnnl_primitive_desc_create(&bpd, &bd, NULL, engine, s->fwd_pd));
    DNNL_OK(dnnl_primitive_create(&s->bwd, bpd));
    dnnl_primitive_desc_destroy(bpd);

    DNNL_OK(dnnl_memory_create(&s->src, &md, engine, c->x));
    DNNL_OK(dnnl_memory_create(&s->dst, &md, engine, c->y));
    DNNL_OK(dnnl_memory_create(&s->diff_dst, &md, engine, c->dy));
    DNNL_OK(dnnl_memory_create(&s->diff_src, &md, engine, c->dx));
    DNNL_OK(dnnl_memory_create(&s->mean, &cmd, engine, c->mean));
    DNNL_OK(dnnl_memory_create(&s->var, &cmd, engine, c->var));
    DNNL_OK(dnnl_memory_create(&s->scale, &cmd, engine, c->g));
    DNNL_OK(dnnl_memory_create(&s->shift, &cmd, engine, c->b));
    DNNL_OK(dnnl_memory_create(&s->dscale, &cmd, engine, c->dg));
    DNNL_OK(dnnl_memory_create(&s->dshift, &cmd, engine, c->db));
    if (relu) {
        const dnnl_memory_desc_t *wmd = dnnl_primitive_desc_query_md(s->fwd_pd, dnnl_query_workspace_md, 0);
        DNNL_OK(dnnl_memory_create(&s->ws, wmd, engine, DNNL_MEMORY_ALLOCATE));
    }
    return 0;
}

static void dnnl_args_for(dnnl_run *r, dnnl_set *s, int op)
{
    int relu = op == FWD_TRAIN_RELU || op == BWD_RELU;
    dnnl_exec_arg_t *a = r->args;
    int n = 0;
#define ARG(k, m) (a[n].arg = (k), a[n].memory = (m), n++)
    if (op == FWD_TRAIN || op == FWD_TRAIN_RELU || op == FWD_INFER) {
        r->prim = op == FWD_INFER ? s->fwd_infer : s->fwd_train;
        ARG(DNNL_ARG_SRC, s->src), ARG(DNNL_ARG_DST, s->dst);
        ARG(DNNL_ARG_MEAN, s->mean), ARG(DNNL_ARG_VARIANCE, s->var);
        ARG(DNNL_ARG_SCALE, s->scale), ARG(DNNL_ARG_SHIFT, s->shift);
        if (relu && op != FWD_INFER)
            ARG(DNNL_ARG_WORKSPACE, s->ws);
    } else {
        r->prim = s->bwd;
        ARG(DNNL_ARG_SRC, s->src), ARG(DNNL_ARG_DIFF_DST, s->diff_dst);
        ARG(DNNL_ARG_MEAN, s->mean), ARG(DNNL_ARG_VARIANCE, s->var);
        /* oneDNN 2.6 lists the shift among the backward's inputs too */
        ARG(DNNL_ARG_SCALE, s->scale), ARG(DNNL_ARG_SHIFT, s->shift);
        ARG(DNNL_ARG_DIFF_SRC, s->diff_src);
        ARG(DNNL_ARG_DIFF_SCALE, s->dscale), ARG(DNNL_ARG_DIFF_SHIFT, s->dshift);
        if (relu)
            ARG(DNNL_ARG_WORKSPACE, s->ws);
    }
#undef ARG
    r->nargs = n;
}

/* All ops of one shape and layout at the current thread count. */
static int bench_onednn(int si, int L, int ti, int threads, op_ctx *c, double budget)
{
    for (int relu = 0; relu < 2; relu++) {
        dnnl_set s;
        if (dnnl_build(&s, &shapes[si], L, relu, c)) {
            dnnl_set_free(&s);
            return 1;
        }
        dnnl_run r;
        /* the training forward first: backward and inference use its statistics */
        int ops[2][3] = {{FWD_TRAIN, FWD_INFER, BWD}, {FWD_TRAIN_RELU, BWD_RELU, -1}};
        for (int k = 0; k < 3 && ops[relu][k] >= 0; k++) {
            int op = ops[relu][k];
            dnnl_args_for(&r, &s, op);
            double ms = measure(run_onednn, &r, budget, 2, 5);
            if (dnnl_failed) {
                fprintf(stderr, "bench: oneDNN %s %s: execution failed (status %d)\n",
                        op_names[op], layout_names[L], dnnl_failed);
                dnnl_set_free(&s);
                return 1;
            }
            report(IMPL_ONEDNN, si, L, op, ti, threads, ms);
        }
        dnnl_set_free(&s);
    }
    return 0;
}
#endif

/* ------------------------------------------------------------- summary */

static double best_onednn(int s, int op, int ti, int *layout)
{
    double best = 0;
    for (int L = 0; L < N_LAYOUTS; L++) {
        double t = results[IMPL_ONEDNN][s][L][op][ti];
        if (t > 0 && (best == 0 || t < best))
            best = t, *layout = L;
    }
    return best;
}

static void summary(const options *o)
{
    size_t llc = bn_fast_llc_bytes();
    printf("\n== summary: fast / oneDNN-best, as a throughput ratio (oneDNN time / fast "
           "time; > 1: fast is faster).\n   oneDNN-best = its fastest of nchw, nhwc, "
           "nChw16c for that shape, op and thread count.\n   regime: dram if x and y "
           "together exceed the last-level cache (%zu MiB)\n\n",
           llc >> 20);
    printf("%-15s %-5s %-6s %3s", "shape", "fast", "regime", "thr");
    for (int op = 0; op < N_OPS; op++)
        printf(" %14s", op_names[op]);
    printf("\n");
    for (int s = 0; s < N_SHAPES; s++)
        for (int L = 0; L < 2; L++) {
            if (shapes[s].fc && L == L_NHWC)
                continue;
            for (int ti = 0; ti < o->n_threads; ti++) {
                if (results[IMPL_FAST][s][L][0][ti] == 0)
                    continue;
                size_t bytes = count_of(&shapes[s]) * 4 * 2;  /* x and y */
                printf("%-15s %-5s %-6s %3d", shape_name(&shapes[s]),
                       shapes[s].fc ? "nd" : layout_names[L], bytes > llc ? "dram" : "cache",
                       o->threads[ti]);
                for (int op = 0; op < N_OPS; op++) {
                    int bl = 0;
                    double f = results[IMPL_FAST][s][L][op][ti], d = best_onednn(s, op, ti, &bl);
                    if (f > 0 && d > 0)
                        printf("  %5.2f %-7s", d / f, shapes[s].fc ? "nc" : layout_names[bl]);
                    else
                        printf(" %14s", "-");
                }
                printf("\n");
            }
        }

    printf("\n== summary: fast / ref speed-up (ref: double, one thread; fast at each "
           "thread count), per op, geometric mean over shapes and layouts\n\n");
    printf("%-15s", "threads");
    for (int op = 0; op < N_OPS; op++)
        printf(" %14s", op_names[op]);
    printf("\n");
    for (int ti = 0; ti < o->n_threads; ti++) {
        printf("%-15d", o->threads[ti]);
        for (int op = 0; op < N_OPS; op++) {
            double lsum = 0;
            int n = 0;
            for (int s = 0; s < N_SHAPES; s++)
                for (int L = 0; L < 2; L++) {
                    double r = results[IMPL_REF][s][L][op][0], f = results[IMPL_FAST][s][L][op][ti];
                    if (r > 0 && f > 0)
                        lsum += log(r / f), n++;
                }
            if (n)
                printf(" %14.1f", exp(lsum / n));
            else
                printf(" %14s", "-");
        }
        printf("\n");
    }

    /* issue 3's targets, one line each */
    printf("\n== targets (issue 3)\n");
    int have_dnnl = 0;
    for (int s = 0; s < N_SHAPES && !have_dnnl; s++)
        have_dnnl = results[IMPL_ONEDNN][s][L_NCHW][FWD_TRAIN][0] > 0;
    double worst_ratio = 1e9, worst_frac_train = 1e9, worst_frac_infer = 1e9;
    const char *wr = "", *wt = "", *wi = "";
    static char wrb[128], wtb[128], wib[128];
    for (int s = 0; s < N_RESNET; s++)
        for (int L = 0; L < 2; L++)
            for (int ti = 0; ti < o->n_threads; ti++) {
                int out_of_cache = count_of(&shapes[s]) * 4 * 2 > llc;
                for (int op = 0; op < N_OPS; op++) {
                    double f = results[IMPL_FAST][s][L][op][ti];
                    if (f == 0)
                        continue;
                    double gbs = op_passes[op] * (double)count_of(&shapes[s]) * 4 / (f * 1e-3) / 1e9;
                    double frac = gbs / nt_triad[ti];
                    int bl = 0;
                    double d = best_onednn(s, op, ti, &bl);
                    if ((op == FWD_TRAIN || op == BWD) && d > 0 && d / f < worst_ratio) {
                        worst_ratio = d / f;
                        snprintf(wrb, sizeof wrb, "%s %s %s %dT", op_names[op], shape_name(&shapes[s]), layout_names[L], o->threads[ti]);
                        wr = wrb;
                    }
                    if (!out_of_cache)
                        continue;
                    if ((op == FWD_TRAIN || op == BWD) && frac < worst_frac_train) {
                        worst_frac_train = frac;
                        snprintf(wtb, sizeof wtb, "%s %s %s %dT", op_names[op], shape_name(&shapes[s]), layout_names[L], o->threads[ti]);
                        wt = wtb;
                    }
                    if (op == FWD_INFER && frac < worst_frac_infer) {
                        worst_frac_infer = frac;
                        snprintf(wib, sizeof wib, "%s %s %s %dT", op_names[op], shape_name(&shapes[s]), layout_names[L], o->threads[ti]);
                        wi = wib;
                    }
                }
            }
    if (!have_dnnl)
        printf("SKIP: target fwd_train+bwd >= 1.3x oneDNN-best: oneDNN not measured\n");
    else if (worst_ratio > 1e8)
        printf("SKIP: target fwd_train+bwd >= 1.3x oneDNN-best: no ResNet-50 shape measured\n");
    else
        printf("target fwd_train+bwd >= 1.3x oneDNN-best on every ResNet-50 shape: %s "
               "(worst %.2f: %s)\n", worst_ratio >= 1.3 ? "met" : "MISSED", worst_ratio, wr);
    if (worst_frac_train < 1e9)
        printf("target fwd_train+bwd bw_frac >= 0.8 out of cache: %s (worst %.2f: %s)\n",
               worst_frac_train >= 0.8 ? "met" : "MISSED", worst_frac_train, wt);
    if (worst_frac_infer < 1e9)
        printf("target fwd_infer bw_frac >= 0.9 out of cache: %s (worst %.2f: %s)\n",
               worst_frac_infer >= 0.9 ? "met" : "MISSED", worst_frac_infer, wi);
}

/* ---------------------------------------------------------------- main */

int main(int argc, char **argv)
{
    options o;
    if (parse(&o, argc, argv))
        return 2;
    const char *isa = bn_fast_isa();
    if (!isa) {
        fprintf(stderr, "bench: fast/ cannot run: %s\n", bn_last_error());
        return 1;
    }
    double load[3] = {0};
    FILE *f = fopen("/proc/loadavg", "r");
    if (f) {
        if (fscanf(f, "%lf %lf %lf", &load[0], &load[1], &load[2]) != 3)
            load[0] = -1;
        fclose(f);
    }
    printf("bnlab bench: fast/ path %s; %ld CPUs online; L2 %zu KiB, last-level cache %zu "
           "MiB; load average %.2f %.2f %.2f at start\n",
           isa, sysconf(_SC_NPROCESSORS_ONLN), bn_fast_l2_bytes() >> 10,
           bn_fast_llc_bytes() >> 20, load[0], load[1], load[2]);
#ifdef BNLAB_HAVE_DNNL
    const dnnl_version_t *v = dnnl_version();
    printf("oneDNN %d.%d.%d (cpu runtime %s)%s\n", v->major, v->minor, v->patch,
           v->cpu_runtime == DNNL_RUNTIME_OMP ? "OpenMP" : "other",
           o.onednn ? "" : ": skipped (--no-onednn)");
    if (o.onednn && (dnnl_engine_create(&engine, dnnl_cpu, 0) != dnnl_success ||
                     dnnl_stream_create(&dstream, engine, dnnl_stream_default_flags) != dnnl_success)) {
        fprintf(stderr, "bench: oneDNN: no CPU engine\n");
        return 1;
    }
#else
    printf("SKIP: oneDNN: bnlab was built without libdnnl-dev (install it and rebuild "
           "to compare)\n");
    o.onednn = 0;
#endif

    /* buffers for the largest shape, touched once so page faults are not timed */
    size_t max_n = 0, max_c = 0;
    for (int s = 0; s < N_SHAPES; s++) {
        if (o.only && !strstr(shape_name(&shapes[s]), o.only))
            continue;
        if (count_of(&shapes[s]) > max_n)
            max_n = count_of(&shapes[s]);
        if (shapes[s].C > max_c)
            max_c = shapes[s].C;
    }
    if (max_n == 0) {
        fprintf(stderr, "bench: --shape %s matches no shape\n", o.only);
        return 2;
    }
    op_ctx c = {0};
    float **fbig[] = {&c.x, &c.y, &c.dy, &c.dx};
    float **fsmall[] = {&c.g, &c.b, &c.mean, &c.var, &c.invstd, &c.dg, &c.db};
    for (int i = 0; i < 4; i++)
        *fbig[i] = big_alloc(max_n * sizeof(float), "float data");
    for (int i = 0; i < 7; i++)
        *fsmall[i] = big_alloc(max_c * sizeof(float), "float parameters");
    for (size_t i = 0; i < max_n; i++) {
        uint32_t h = (uint32_t)(i * 2654435761u);
        c.x[i] = (float)(h >> 8) / (float)(1 << 24) * 4 - 2; /* uniform in [-2, 2) */
        c.dy[i] = (float)((h >> 4) & 1023) / 512.0f - 1;
        c.y[i] = c.dx[i] = 0;
    }
    for (size_t i = 0; i < max_c; i++)
        c.g[i] = 1 + 0.001f * (float)i, c.b[i] = 0.1f, c.mean[i] = 0, c.var[i] = 1, c.invstd[i] = 1;
    if (o.ref) {
        double **dbig[] = {&c.X, &c.Y, &c.DY, &c.DX};
        double **dsmall[] = {&c.G, &c.B, &c.MEAN, &c.VAR, &c.INVSTD, &c.DG, &c.DB};
        for (int i = 0; i < 4; i++)
            *dbig[i] = big_alloc(max_n * sizeof(double), "double data (ref; --no-ref skips)");
        for (int i = 0; i < 7; i++)
            *dsmall[i] = big_alloc(max_c * sizeof(double), "double parameters");
        for (size_t i = 0; i < max_n; i++)
            c.X[i] = c.x[i], c.DY[i] = c.dy[i], c.Y[i] = c.DX[i] = 0;
        for (size_t i = 0; i < max_c; i++)
            c.G[i] = c.g[i], c.B[i] = c.b[i], c.MEAN[i] = 0, c.VAR[i] = 1, c.INVSTD[i] = 1;
    }

    double start = now_s();
    for (int ti = 0; ti < o.n_threads; ti++) {
        int threads = o.threads[ti];
        omp_set_num_threads(threads);
        bn_fast_set_threads(threads);
        fprintf(stderr, "bench: %d thread(s): bandwidth probe\n", threads);
        nt_triad[ti] = run_probe(threads, o.budget_s);
        for (int s = 0; s < N_SHAPES; s++) {
            const shape *sh = &shapes[s];
            if (o.only && !strstr(shape_name(sh), o.only))
                continue;
            fprintf(stderr, "bench: %d thread(s): %s (%.0f s so far)\n", threads,
                    shape_name(sh), now_s() - start);
            for (int L = 0; L < N_LAYOUTS; L++) {
                if (sh->fc && L != L_NCHW)
                    continue; /* (N, D): one layout */
                c.d = bn_desc_make(sh->N, sh->C, sh->H, sh->W, L == L_NHWC ? BN_NHWC : BN_NCHW, 1e-5);
                if (L < L_BLOCKED) {
                    /* a training forward first: the statistics (and y) the others use */
                    for (int op = 0; op < N_OPS; op++) {
                        c.op = op == BWD_RELU ? FWD_TRAIN_RELU : FWD_TRAIN;
                        run_fast(&c);
                        c.op = op;
                        c.status = BN_OK;
                        double ms = measure(run_fast, &c, o.budget_s, 2, 5);
                        if (c.status != BN_OK) {
                            fprintf(stderr, "bench: fast %s failed: %s\n", op_names[op], bn_last_error());
                            return 1;
                        }
                        report(IMPL_FAST, s, L, op, ti, threads, ms);
                    }
                    if (o.ref && ti == 0) {
                        for (int op = 0; op < N_OPS; op++) {
                            c.op = op == BWD_RELU ? FWD_TRAIN_RELU : FWD_TRAIN;
                            run_ref(&c);
                            c.op = op;
                            c.status = BN_OK;
                            /* ref is slow: three runs, no warm-up (pages are touched) */
                            double ms = measure(run_ref, &c, 0, 0, 3);
                            if (c.status != BN_OK) {
                                fprintf(stderr, "bench: ref %s failed: %s\n", op_names[op], bn_last_error());
                                return 1;
                            }
                            report(IMPL_REF, s, L, op, ti, 1, ms);
                        }
                    }
                }
#ifdef BNLAB_HAVE_DNNL
                if (o.onednn && (sh->C % 16 == 0 || L != L_BLOCKED) &&
                    bench_onednn(s, L, ti, threads, &c, o.budget_s))
                    return 1;
#endif
            }
        }
    }
    fprintf(stderr, "bench: done in %.0f s\n", now_s() - start);
    summary(&o);
    void *all[] = {c.x, c.y, c.dy, c.dx, c.g, c.b, c.mean, c.var, c.invstd, c.dg, c.db,
                   c.X, c.Y, c.DY, c.DX, c.G, c.B, c.MEAN, c.VAR, c.INVSTD, c.DG, c.DB};
    for (size_t i = 0; i < sizeof all / sizeof all[0]; i++)
        free(all[i]);
#ifdef BNLAB_HAVE_DNNL
    if (o.onednn) {
        dnnl_stream_destroy(dstream);
        dnnl_engine_destroy(engine);
    }
#endif
    return 0;
}
