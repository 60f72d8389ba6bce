/*
 * bench_cuda.c — `make bench-cuda`: how fast is cuda/ (bn_*_cuda), and how
 * close to the device's own memory bandwidth? Measures, in one process:
 *
 *   probe   the device's copy bandwidth: cudaMemcpy device to device of a
 *           large buffer (bytes read + bytes written per second), the roof
 *           for bw_frac
 *   cuda    bn_*_cuda, float: fwd_train, fwd_infer, bwd, fwd_train_relu,
 *           bwd_relu, NCHW and NHWC
 *   cudnn   cuDNN's batch normalization (when built with cudnn.h):
 *           cudnnBatchNormalizationForwardTraining / ForwardInference /
 *           Backward, CUDNN_BATCHNORM_SPATIAL and _SPATIAL_PERSISTENT, on the
 *           same shapes and layouts (no fused ReLU: not in this legacy API)
 *
 * on the shapes of `make bench` (ResNet-50's batch-normalization layers at
 * N = 32, a 256 x 1024 fully connected layer, a small 8x16x32x32), one line
 * per measurement in the CPU bench's format:
 *
 *   bench impl=cuda op=fwd_train layout=nchw shape=32x256x56x56 threads=gpu
 *         med_ms=... gbs=... passes=2 bw_frac=...
 *
 * passes = the passes over the tensor the operation cannot avoid (fwd 2, bwd
 * 3, bwd_relu 4), gbs = passes·N·C·H·W·4 bytes / time, bw_frac = gbs / the
 * copy bandwidth. Each figure is the median of timed runs (cudaEvent) after
 * a warm-up; a bn_*_cuda call includes its wait for the stream and its
 * error read-back, as a user sees it. Then the targets of issue 4.
 *
 * Without a device it prints "SKIP: bench-cuda: no CUDA device (...)" and
 * exits 0. NOTE: written and compiled without a GPU; no figure from it has
 * been recorded yet (docs/cuda.md).
 *
 * Run: make bench-cuda   (or build/bin/bench_cuda --help)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cuda_runtime_api.h>
#ifdef BNLAB_HAVE_CUDNN
#include <cudnn.h>
#endif

#include "bn_cuda.h"
#include "bnlab.h"

typedef struct {
    size_t N, C, H, W;
    int fc;
} shape;

static const shape shapes[] = {
    {32, 64, 56, 56, 0},  {32, 256, 56, 56, 0}, {32, 128, 28, 28, 0}, {32, 512, 28, 28, 0},
    {32, 256, 14, 14, 0}, {32, 1024, 14, 14, 0}, {32, 512, 7, 7, 0},  {32, 2048, 7, 7, 0},
    {256, 1024, 1, 1, 1}, {8, 16, 32, 32, 0},
};
enum { N_SHAPES = sizeof shapes / sizeof shapes[0], N_RESNET = 8 };

enum { FWD_TRAIN, FWD_INFER, BWD, FWD_TRAIN_RELU, BWD_RELU, N_OPS };
static const char *op_names[N_OPS] = {"fwd_train", "fwd_infer", "bwd", "fwd_train_relu",
                                      "bwd_relu"};
static const int op_passes[N_OPS] = {2, 2, 3, 2, 4};

enum { IMPL_CUDA, IMPL_CUDNN, IMPL_CUDNN_PERSISTENT, N_IMPLS };
static const char *impl_names[N_IMPLS] = {"cuda", "cudnn", "cudnn_persistent"};

static double copy_gbs;                           /* the roof */
static double results[N_IMPLS][N_SHAPES][2][N_OPS]; /* med_ms; 0 = not measured */
static int reps = 20;

static void usage(FILE *f)
{
    fprintf(f, "usage: bench_cuda [--quick] [--shape SUBSTRING] [--help]\n"
               "  cuda/ and cuDNN batch normalization on the GPU, against its copy\n"
               "  bandwidth; one 'bench impl=...' line per measurement, then the targets.\n"
               "  --quick    5 timed runs per figure instead of 20\n"
               "  --shape S  only shapes whose name contains S (e.g. 56x56)\n");
}

#define CK(call)                                                                    \
    do {                                                                            \
        cudaError_t e_ = (call);                                                    \
        if (e_ != cudaSuccess) {                                                    \
            fprintf(stderr, "bench_cuda: %s: %s\n", #call, cudaGetErrorString(e_)); \
            exit(1);                                                                \
        }                                                                           \
    } while (0)

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* The median time of fn(ctx) in ms, over `reps` runs after 2 warm-ups; a
 * non-zero status from fn aborts with bnlab's message. */
static double time_ms(int (*fn)(void *), void *ctx)
{
    cudaEvent_t a, b;
    double t[64];
    CK(cudaEventCreate(&a));
    CK(cudaEventCreate(&b));
    for (int k = -2; k < reps; k++) {
        CK(cudaEventRecord(a, NULL));
        if (fn(ctx) != 0) {
            fprintf(stderr, "bench_cuda: a measured call failed: %s\n", bn_last_error());
            exit(1);
        }
        CK(cudaEventRecord(b, NULL));
        CK(cudaEventSynchronize(b));
        float ms;
        CK(cudaEventElapsedTime(&ms, a, b));
        if (k >= 0)
            t[k] = ms;
    }
    cudaEventDestroy(a), cudaEventDestroy(b);
    qsort(t, (size_t)reps, sizeof t[0], cmp_double);
    return t[reps / 2];
}

/* ----------------------------------------------------------- the probe */

typedef struct {
    void *dst, *src;
    size_t bytes;
} copy_ctx;

static int do_copy(void *p)
{
    copy_ctx *c = p;
    return cudaMemcpy(c->dst, c->src, c->bytes, cudaMemcpyDeviceToDevice) != cudaSuccess;
}

static void probe(void)
{
    copy_ctx c = {NULL, NULL, (size_t)1 << 30};
    CK(cudaMalloc(&c.dst, c.bytes));
    CK(cudaMalloc(&c.src, c.bytes));
    CK(cudaMemset(c.src, 0, c.bytes));
    double ms = time_ms(do_copy, &c);
    copy_gbs = 2.0 * (double)c.bytes / (ms * 1e-3) / 1e9;  /* read + write */
    printf("bench probe=copy bytes=%zu med_ms=%.3f gbs=%.1f\n", c.bytes, ms, copy_gbs);
    cudaFree(c.dst), cudaFree(c.src);
}

/* --------------------------------------------------------- one problem */

typedef struct {
    bn_desc d;
    int op;
    float *x, *y, *dy, *dx, *g, *b, *mean, *var, *invstd, *dg, *db;
#ifdef BNLAB_HAVE_CUDNN
    cudnnHandle_t h;
    cudnnTensorDescriptor_t xd, pd;
    cudnnBatchNormMode_t mode;
#endif
} prob;

static int run_cuda(void *p_)
{
    prob *p = p_;
    const bn_desc *d = &p->d;
    switch (p->op) {
    case FWD_TRAIN:
        return bn_forward_train_cuda(p->y, p->mean, p->var, p->invstd, p->x, p->g, p->b, d, NULL);
    case FWD_INFER:
        return bn_forward_infer_cuda(p->y, p->x, p->g, p->b, p->mean, p->var, d, NULL);
    case BWD:
        return bn_backward_train_cuda(p->dx, p->dg, p->db, p->dy, p->x, p->mean, p->invstd,
                                      p->g, d, NULL);
    case FWD_TRAIN_RELU:
        return bn_forward_train_relu_cuda(p->y, p->mean, p->var, p->invstd, p->x, p->g, p->b,
                                          d, NULL);
    default:
        return bn_backward_train_relu_cuda(p->dx, p->dg, p->db, p->dy, p->y, p->x, p->mean,
                                           p->invstd, p->g, d, NULL);
    }
}

#ifdef BNLAB_HAVE_CUDNN
static int run_cudnn(void *p_)
{
    prob *p = p_;
    const float one = 1, zero = 0;
    cudnnStatus_t st;
    switch (p->op) {
    case FWD_TRAIN:
        st = cudnnBatchNormalizationForwardTraining(
            p->h, p->mode, &one, &zero, p->xd, p->x, p->xd, p->y, p->pd, p->g, p->b, 0.1,
            p->dg, p->db, p->d.eps, p->mean, p->invstd);  /* dg, db: running stats */
        break;
    case FWD_INFER:
        st = cudnnBatchNormalizationForwardInference(p->h, p->mode, &one, &zero, p->xd, p->x,
                                                     p->xd, p->y, p->pd, p->g, p->b,
                                                     p->mean, p->var, p->d.eps);
        break;
    default:
        st = cudnnBatchNormalizationBackward(p->h, p->mode, &one, &zero, &one, &zero, p->xd,
                                             p->x, p->xd, p->dy, p->xd, p->dx, p->pd, p->g,
                                             p->dg, p->db, p->d.eps, p->mean, p->invstd);
    }
    if (st != CUDNN_STATUS_SUCCESS)
        fprintf(stderr, "bench_cuda: cuDNN: %s\n", cudnnGetErrorString(st));
    return st != CUDNN_STATUS_SUCCESS;
}
#endif

static void report(int impl, int s, int nhwc, int op, double ms)
{
    const shape *sh = &shapes[s];
    double count = (double)(sh->N * sh->C * sh->H * sh->W);
    double gbs = op_passes[op] * count * 4 / (ms * 1e-3) / 1e9;
    char name[48];
    if (sh->fc)
        snprintf(name, sizeof name, "%zux%zu", sh->N, sh->C);
    else
        snprintf(name, sizeof name, "%zux%zux%zux%zu", sh->N, sh->C, sh->H, sh->W);
    results[impl][s][nhwc][op] = ms;
    printf("bench impl=%s op=%s layout=%s shape=%s threads=gpu med_ms=%.3f gbs=%.1f "
           "passes=%d bw_frac=%.2f\n",
           impl_names[impl], op_names[op], sh->fc ? "nd" : nhwc ? "nhwc" : "nchw", name, ms,
           gbs, op_passes[op], gbs / copy_gbs);
    fflush(stdout);
}

static float *dfill(size_t n, float v)
{
    float *p, *h = malloc(n * sizeof *h);
    if (!h)
        exit(1);
    for (size_t k = 0; k < n; k++)
        h[k] = v + (float)(k % 97) * 0.01f;  /* any values: speed does not depend on them */
    CK(cudaMalloc((void **)&p, n * sizeof *p));
    CK(cudaMemcpy(p, h, n * sizeof *p, cudaMemcpyHostToDevice));
    free(h);
    return p;
}

static void measure_shape(int s, int nhwc)
{
    const shape *sh = &shapes[s];
    prob p = {.d = bn_desc_make(sh->N, sh->C, sh->H, sh->W, nhwc ? BN_NHWC : BN_NCHW, 1e-5)};
    size_t n = sh->N * sh->C * sh->H * sh->W, C = sh->C;
    p.x = dfill(n, 0.5f), p.y = dfill(n, 0), p.dy = dfill(n, -0.3f), p.dx = dfill(n, 0);
    p.g = dfill(C, 1), p.b = dfill(C, 0), p.mean = dfill(C, 0), p.var = dfill(C, 1);
    p.invstd = dfill(C, 1), p.dg = dfill(C, 0), p.db = dfill(C, 1);
    for (int op = 0; op < N_OPS; op++) {
        p.op = op;
        report(IMPL_CUDA, s, nhwc, op, time_ms(run_cuda, &p));
    }
#ifdef BNLAB_HAVE_CUDNN
    if (cudnnCreate(&p.h) == CUDNN_STATUS_SUCCESS &&
        cudnnCreateTensorDescriptor(&p.xd) == CUDNN_STATUS_SUCCESS &&
        cudnnCreateTensorDescriptor(&p.pd) == CUDNN_STATUS_SUCCESS &&
        cudnnSetTensor4dDescriptor(p.xd, nhwc ? CUDNN_TENSOR_NHWC : CUDNN_TENSOR_NCHW,
                                   CUDNN_DATA_FLOAT, (int)sh->N, (int)sh->C, (int)sh->H,
                                   (int)sh->W) == CUDNN_STATUS_SUCCESS) {
        for (int k = 0; k < 2; k++) {
            p.mode = k ? CUDNN_BATCHNORM_SPATIAL_PERSISTENT : CUDNN_BATCHNORM_SPATIAL;
            if (cudnnDeriveBNTensorDescriptor(p.pd, p.xd, p.mode) != CUDNN_STATUS_SUCCESS)
                continue;
            for (int op = 0; op <= BWD; op++) {
                p.op = op;
                report(k ? IMPL_CUDNN_PERSISTENT : IMPL_CUDNN, s, nhwc, op,
                       time_ms(run_cudnn, &p));
            }
        }
        cudnnDestroyTensorDescriptor(p.xd), cudnnDestroyTensorDescriptor(p.pd);
        cudnnDestroy(p.h);
    } else {
        printf("SKIP: cuDNN on this shape: could not create a handle or descriptor\n");
    }
#endif
    float *bufs[] = {p.x, p.y, p.dy, p.dx, p.g, p.b, p.mean, p.var, p.invstd, p.dg, p.db};
    for (size_t k = 0; k < sizeof bufs / sizeof bufs[0]; k++)
        cudaFree(bufs[k]);
}

/* The targets of issue 4 on the ResNet-50 shapes, for fwd_train and bwd:
 * bw_frac >= 0.85 of the copy bandwidth, and at least cuDNN's throughput. */
static void targets(void)
{
    double worst_frac = 1e9, worst_ratio = 1e9;
    for (int s = 0; s < N_RESNET; s++)
        for (int l = 0; l < 2; l++)
            for (int op = FWD_TRAIN; op <= BWD; op += BWD - FWD_TRAIN) {
                double ms = results[IMPL_CUDA][s][l][op];
                if (ms <= 0)
                    continue;
                const shape *sh = &shapes[s];
                double gbs = op_passes[op] * (double)(sh->N * sh->C * sh->H * sh->W) * 4 /
                             (ms * 1e-3) / 1e9;
                worst_frac = gbs / copy_gbs < worst_frac ? gbs / copy_gbs : worst_frac;
                double best = 0;
                for (int i = IMPL_CUDNN; i < N_IMPLS; i++)
                    if (results[i][s][l][op] > 0 && (best == 0 || results[i][s][l][op] < best))
                        best = results[i][s][l][op];
                if (best > 0 && best / ms < worst_ratio)
                    worst_ratio = best / ms;
            }
    if (worst_frac > 1e8) {
        printf("SKIP: targets: no ResNet-50 shape measured\n");
        return;
    }
    printf("target fwd_train and bwd bw_frac >= 0.85 on every ResNet-50 shape: %s (worst %.2f)\n",
           worst_frac >= 0.85 ? "met" : "MISSED", worst_frac);
    if (worst_ratio > 1e8)
        printf("SKIP: target >= cuDNN's throughput: cuDNN was not measured\n");
    else
        printf("target fwd_train and bwd >= cuDNN's throughput on every ResNet-50 shape: %s "
               "(worst cuda/cuDNN-best speed %.2f)\n", worst_ratio >= 1 ? "met" : "MISSED",
               worst_ratio);
}

int main(int argc, char **argv)
{
    const char *only = NULL;
    for (int k = 1; k < argc; k++) {
        if (!strcmp(argv[k], "--help")) {
            usage(stdout);
            return 0;
        } else if (!strcmp(argv[k], "--quick")) {
            reps = 5;
        } else if (!strcmp(argv[k], "--shape") && k + 1 < argc) {
            only = argv[++k];
        } else {
            usage(stderr);
            return 2;
        }
    }
    const char *why;
    if (!bn_cuda_device_present(&why)) {
        printf("SKIP: bench-cuda: %s\n", why);
        return 0;
    }
    struct cudaDeviceProp prop;
    int dev = 0;
    CK(cudaGetDevice(&dev));
    CK(cudaGetDeviceProperties(&prop, dev));
    printf("bench device=\"%s\" sm=%d%d\n", prop.name, prop.major, prop.minor);
#ifdef BNLAB_HAVE_CUDNN
    printf("bench cudnn=%zu\n", cudnnGetVersion());
#else
    printf("SKIP: cuDNN: cudnn.h was not found when this bench was built\n");
#endif
    probe();
    for (int s = 0; s < N_SHAPES; s++) {
        char name[48];
        snprintf(name, sizeof name, "%zux%zux%zux%zu", shapes[s].N, shapes[s].C, shapes[s].H,
                 shapes[s].W);
        if (only && !strstr(name, only))
            continue;
        fprintf(stderr, "bench_cuda: shape %d of %d: %s\n", s + 1, N_SHAPES, name);
        for (int nhwc = 0; nhwc < (shapes[s].fc ? 1 : 2); nhwc++)
            measure_shape(s, nhwc);
    }
    targets();
    return 0;
}
