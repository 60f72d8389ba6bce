/*
 * cuda_kernels.cu — the kernels of cuda/ and a thin launcher for each
 * (darknet's pairing: C host code in cuda_api.c, kernels here). The math is
 * in bn_cuda_math.h, shared with the CPU tests; here is only who computes
 * what, in which order.
 *
 * Training forward (Ioffe & Szegedy 2015, Algorithm 1), three launches:
 *   moments_*          each thread: Welford over its values (bn_cu_welford);
 *                      warp: Chan merges down a shuffle tree; block: lane 0s
 *                      merged in warp order -> one partial per (block, channel)
 *   train_finalize     one thread per channel: the partials merged in block
 *                      order (Chan, double) -> mean, var, invstd, coefficients
 *   affine             one thread per element: y = a·(x - center) + k [ReLU]
 * Backward (§3): grad_sums_* (Σ dz, Σ dz·xhat, Σ xhat: same tree, double),
 * backward_finalize, then dx. Inference: infer_prep, then affine / dx.
 * Every reduction has a fixed shape and order for a given launch shape, so
 * results are bit-for-bit repeatable (no atomics in any sum).
 *
 * Errors a kernel finds (NaN, overflow, bad statistics) are noted per kind
 * as the lowest channel index (atomicMin into err[]); cuda_api.c reports them.
 *
 * Built by cuda/module.mk for sm_80 and sm_90, plus PTX for newer devices.
 */
#include <cuda_bf16.h>
#include <cuda_fp16.h>
#include <cuda_runtime.h>

#include "bn_cuda.h"

#define FULL_MASK 0xffffffffu

/* Data arrays (x, y, dy, dx) hold T = float, __half or __nv_bfloat16; every
 * value is widened to float when read and rounded once when written; the
 * statistics, parameters and all arithmetic stay in float / double. */
__device__ static float ld(const float *p, long long k) { return p[k]; }
__device__ static float ld(const __half *p, long long k) { return __half2float(p[k]); }
__device__ static float ld(const __nv_bfloat16 *p, long long k) { return __bfloat162float(p[k]); }

/* v as T would hold it, widened back: an overflow of a 16-bit type
 * (|v| > 65504 in half) shows as Inf, to be reported. */
__device__ static float as_stored(const float *, float v) { return v; }
__device__ static float as_stored(const __half *, float v)
{
    return __half2float(__float2half_rn(v));
}
__device__ static float as_stored(const __nv_bfloat16 *, float v)
{
    return __bfloat162float(__float2bfloat16_rn(v));
}

__device__ static void st(float *p, long long k, float v) { p[k] = v; }
__device__ static void st(__half *p, long long k, float v) { p[k] = __float2half_rn(v); }
__device__ static void st(__nv_bfloat16 *p, long long k, float v)
{
    p[k] = __float2bfloat16_rn(v);
}

__device__ static void note(int *err, int kind, long long c)
{
    atomicMin(&err[kind], (int)c);
}

/* ------------------------------------------------------ the reduction tree */

__device__ static bn_cu_moments shfl_down(bn_cu_moments a, int off)
{
    a.n = __shfl_down_sync(FULL_MASK, a.n, off);
    a.mean = __shfl_down_sync(FULL_MASK, a.mean, off);
    a.m2 = __shfl_down_sync(FULL_MASK, a.m2, off);
    return a;
}

/* Chan merge of a 1-D block's moments; the result is valid in thread 0.
 * Lane i takes lane i + off (off = 16, 8, 4, 2, 1); lanes past the warp get
 * their own value back, which only lanes that thread 0 never reads use. */
__device__ static bn_cu_moments block_merge(bn_cu_moments mo)
{
    __shared__ bn_cu_moments warp_mo[32];
    for (int off = 16; off > 0; off /= 2)
        bn_cu_chan_merge(&mo, shfl_down(mo, off));
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0)
        warp_mo[warp] = mo;
    __syncthreads();
    if (threadIdx.x == 0)
        for (int k = 1; k < (int)blockDim.x / 32; k++)
            bn_cu_chan_merge(&mo, warp_mo[k]);
    return mo;
}

/* Σ dz, Σ dz·xhat, Σ xhat of a block: the same tree with plain sums. */
__device__ static double3 block_sum(double3 v)
{
    __shared__ double3 warp_v[32];
    for (int off = 16; off > 0; off /= 2) {
        v.x += __shfl_down_sync(FULL_MASK, v.x, off);
        v.y += __shfl_down_sync(FULL_MASK, v.y, off);
        v.z += __shfl_down_sync(FULL_MASK, v.z, off);
    }
    int lane = threadIdx.x % 32, warp = threadIdx.x / 32;
    if (lane == 0)
        warp_v[warp] = v;
    __syncthreads();
    if (threadIdx.x == 0)
        for (int k = 1; k < (int)blockDim.x / 32; k++)
            v.x += warp_v[k].x, v.y += warp_v[k].y, v.z += warp_v[k].z;
    return v;
}

/* ------------------------------------------------------------- statistics */

/* The reduction kernels may be launched with up to 1024 threads per block
 * (bn_cuda_force_launch): __launch_bounds__ keeps them within the 64
 * registers per thread that allows. */

/* NCHW: block p of channel c (blockIdx.x = c·P + p) visits values
 * j = p·T + t, then every P·T further, of the channel's m = N·HW. */
template <typename T>
__global__ static void __launch_bounds__(1024) moments_nchw(bn_cu_moments *part, const T *x, long long C,
                                    long long HW, long long m, int P)
{
    long long c = blockIdx.x / P;
    int p = blockIdx.x % P;
    bn_cu_welford w = {0, 0.0f, 0.0f, 0.0};
    long long stride = (long long)P * blockDim.x;
    for (long long j = (long long)p * blockDim.x + threadIdx.x; j < m; j += stride) {
        long long n = j / HW, i = j - n * HW;
        bn_cu_welford_push(&w, ld(x, (n * C + c) * HW + i));
    }
    bn_cu_moments mo = block_merge(bn_cu_welford_moments(w));
    if (threadIdx.x == 0)
        part[(long long)p * C + c] = mo;
}

/* NHWC: a block is 32 channels (threadIdx.x, coalesced) × L pixel lanes
 * (threadIdx.y); block p of tile t (blockIdx.x = p·tiles + t) visits pixels
 * p·L + lane, then every P·L further. Lanes merged in order in shared memory. */
template <typename T>
__global__ static void __launch_bounds__(1024) moments_nhwc(bn_cu_moments *part, const T *x, long long C,
                                    long long m, int P, int tiles)
{
    __shared__ bn_cu_moments sh[32][32];
    int p = blockIdx.x / tiles;
    long long c = (long long)(blockIdx.x % tiles) * 32 + threadIdx.x;
    bn_cu_welford w = {0, 0.0f, 0.0f, 0.0};
    long long stride = (long long)P * blockDim.y;
    if (c < C)
        for (long long j = (long long)p * blockDim.y + threadIdx.y; j < m; j += stride)
            bn_cu_welford_push(&w, ld(x, j * C + c));
    sh[threadIdx.y][threadIdx.x] = bn_cu_welford_moments(w);
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        bn_cu_moments mo = sh[0][threadIdx.x];
        for (int k = 1; k < (int)blockDim.y; k++)
            bn_cu_chan_merge(&mo, sh[k][threadIdx.x]);
        part[(long long)p * C + c] = mo;
    }
}

__global__ static void train_finalize(bn_cu_coefs *cf, float *mean, float *var_biased,
                                      float *invstd, const bn_cu_moments *part,
                                      long long C, int P, double eps, const float *gamma,
                                      const float *beta, int *err)
{
    long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    bn_cu_coefs zero = {0, 0, 0, 0};
    cf[c] = zero;
    double g = 1, b = 0;
    if (gamma) {
        g = gamma[c], b = beta[c];
        if (!isfinite(g) || !isfinite(b)) {
            note(err, BN_CU_E_PARAMS, c);
            return;
        }
    }
    bn_cu_moments mo = part[c];
    for (int p = 1; p < P; p++)
        bn_cu_chan_merge(&mo, part[(long long)p * C + c]);
    int e = bn_cu_train_coefs(&cf[c], &mean[c], &var_biased[c], &invstd[c], mo, eps, g, b);
    if (e)
        note(err, e, c);
}

/* --------------------------------------------------------- elementwise */

__device__ static long long channel_of(long long k, long long C, long long HW, int nhwc)
{
    return nhwc ? k % C : (k / HW) % C;
}

template <typename T>
__global__ static void affine(T *y, const T *x, const bn_cu_coefs *cf, int relu,
                              long long count, long long C, long long HW, int nhwc,
                              int *err)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < count;
         k += step) {
        long long c = channel_of(k, C, HW, nhwc);
        float v = bn_cu_affine(ld(x, k), cf[c]);
        if (!isfinite(as_stored(y, v)))  /* checked before the ReLU, as ref */
            note(err, BN_CU_E_OUTPUT, c);
        st(y, k, relu ? bn_cu_relu(v) : v);  /* y may be x: x[k] is read */
    }
}

template <typename T>
__global__ static void dx_kernel(T *dx, const T *dy, const T *y, const T *x,
                                 const bn_cu_coefs *cf, int relu,
                                 int infer, long long count, long long C, long long HW,
                                 int nhwc, int *err)
{
    long long step = (long long)gridDim.x * blockDim.x;
    for (long long k = blockIdx.x * (long long)blockDim.x + threadIdx.x; k < count;
         k += step) {
        long long c = channel_of(k, C, HW, nhwc);
        float dz = bn_cu_dz(ld(dy, k), relu ? ld(y, k) : 0.0f, relu);
        float v = infer ? cf[c].a * dz : bn_cu_dx(dz, ld(x, k), cf[c]);
        if (!isfinite(as_stored(dx, v)))
            note(err, BN_CU_E_OUTPUT, c);
        st(dx, k, v);  /* dx may be dy: dy[k] is read */
    }
}

/* ------------------------------------------------------------- backward */

template <typename T>
__device__ static void grad_push(double3 *acc, const T *dy, const T *y, const T *x,
                                 long long k, float center, float s)
{
    float dz = bn_cu_dz(ld(dy, k), y ? ld(y, k) : 0.0f, y != NULL);
    float xhat = bn_cu_xhat(ld(x, k), center, s);
    acc->x += dz;
    acc->y += (double)dz * xhat;
    acc->z += xhat;
}

__device__ static void grad_store(double *part, long long p, long long C, long long c,
                                  double3 acc)
{
    part[3 * (p * C + c)] = acc.x;
    part[3 * (p * C + c) + 1] = acc.y;
    part[3 * (p * C + c) + 2] = acc.z;
}

template <typename T>
__global__ static void __launch_bounds__(1024) grad_sums_nchw(double *part, const T *dy, const T *y, const T *x,
                                      const float *center,
                                      const float *invstd, long long C, long long HW,
                                      long long m, int P)
{
    long long c = blockIdx.x / P;
    int p = blockIdx.x % P;
    float cen = center[c], s = invstd[c];
    double3 acc = make_double3(0, 0, 0);
    long long stride = (long long)P * blockDim.x;
    for (long long j = (long long)p * blockDim.x + threadIdx.x; j < m; j += stride) {
        long long n = j / HW, i = j - n * HW;
        grad_push(&acc, dy, y, x, (n * C + c) * HW + i, cen, s);
    }
    acc = block_sum(acc);
    if (threadIdx.x == 0)
        grad_store(part, p, C, c, acc);
}

template <typename T>
__global__ static void __launch_bounds__(1024) grad_sums_nhwc(double *part, const T *dy, const T *y, const T *x,
                                      const float *center,
                                      const float *invstd, long long C, long long m,
                                      int P, int tiles)
{
    __shared__ double3 sh[32][32];
    int p = blockIdx.x / tiles;
    long long c = (long long)(blockIdx.x % tiles) * 32 + threadIdx.x;
    double3 acc = make_double3(0, 0, 0);
    long long stride = (long long)P * blockDim.y;
    if (c < C) {
        float cen = center[c], s = invstd[c];
        for (long long j = (long long)p * blockDim.y + threadIdx.y; j < m; j += stride)
            grad_push(&acc, dy, y, x, j * C + c, cen, s);
    }
    sh[threadIdx.y][threadIdx.x] = acc;
    __syncthreads();
    if (threadIdx.y == 0 && c < C) {
        for (int k = 1; k < (int)blockDim.y; k++)
            acc.x += sh[k][threadIdx.x].x, acc.y += sh[k][threadIdx.x].y,
            acc.z += sh[k][threadIdx.x].z;
        grad_store(part, p, C, c, acc);
    }
}

__global__ static void backward_finalize(bn_cu_coefs *cf, float *dgamma, float *dbeta,
                                         const double *part, long long C, int P,
                                         double m, int infer, const float *mean,
                                         const float *invstd, const float *gamma,
                                         int *err)
{
    long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    if (!infer) {  /* defined even on an error (the dx kernel still reads it) */
        bn_cu_coefs zero = {0, 0, 0, 0};
        cf[c] = zero;
    }
    double g = gamma ? gamma[c] : 1.0;
    if (!isfinite(g)) {
        note(err, BN_CU_E_PARAMS, c);
        return;
    }
    if (!bn_cu_saved_ok(mean[c], invstd[c])) {
        note(err, infer ? BN_CU_E_POP : BN_CU_E_SAVED, c);
        return;
    }
    double sum_dz = 0, sum_dzx = 0, sum_xhat = 0;
    for (int p = 0; p < P; p++) {
        sum_dz += part[3 * ((long long)p * C + c)];
        sum_dzx += part[3 * ((long long)p * C + c) + 1];
        sum_xhat += part[3 * ((long long)p * C + c) + 2];
    }
    int e = 0;
    if (infer) {  /* cf[c].a = gamma/sqrt(var + eps) is infer_prep's */
        if (!isfinite(sum_dz) || !isfinite(sum_dzx))
            e = BN_CU_E_GRAD;
        else if (!bn_cu_fits_float(sum_dz) || !bn_cu_fits_float(sum_dzx))
            e = BN_CU_E_FLOAT;
    } else {
        e = bn_cu_backward_coefs(&cf[c], m, mean[c], invstd[c], g, sum_dz, sum_dzx,
                                 sum_xhat);
    }
    if (e) {
        note(err, e, c);
        return;
    }
    if (dgamma)
        dgamma[c] = (float)sum_dzx;
    if (dbeta)
        dbeta[c] = (float)sum_dz;
}

/* ------------------------------------------------ inference and running */

__global__ static void infer_prep(bn_cu_coefs *cf, float *center, float *invstd,
                                  const float *mean, const float *var, long long C,
                                  double eps, const float *gamma, const float *beta,
                                  int *err)
{
    long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    bn_cu_coefs zero = {0, 0, 0, 0};
    cf[c] = zero, center[c] = 0, invstd[c] = 1;
    double g = gamma ? gamma[c] : 1.0, b = beta ? beta[c] : 0.0;
    if (!isfinite(g) || !isfinite(b)) {
        note(err, BN_CU_E_PARAMS, c);
        return;
    }
    int e = bn_cu_infer_coefs(&cf[c], mean[c], var[c], eps, g, b);
    if (e) {
        note(err, e, c);
        return;
    }
    double s = 1.0 / sqrt((double)var[c] + eps);
    if (!bn_cu_fits_float(s)) {
        note(err, BN_CU_E_FLOAT, c);
        return;
    }
    center[c] = mean[c], invstd[c] = (float)s;
}

/* All channels or none, as ref/ and fast/: the running statistics are the
 * model's state, and a caller that gets BN_EDOM (and does not count the
 * batch in num_batches) must find them as they were. Channels are checked
 * across blocks, so in two launches: commit = 0 notes every channel's
 * error without writing; commit = 1 (stream-ordered after it) writes only
 * when no error at all was noted. */
__global__ static void running(float *running_mean, float *running_var, const float *mean,
                               const float *var_biased, long long C, int rule,
                               double momentum, double count, double m, int *err,
                               int commit)
{
    long long c = blockIdx.x * (long long)blockDim.x + threadIdx.x;
    if (c >= C)
        return;
    if (commit)
        for (int k = 0; k < BN_CU_NERR; k++)
            if (err[k] < C)  /* noted; "none" is 0x7f7f7f7f > C (cuda_api.c) */
                return;
    float rm = running_mean[c], rv = running_var[c];
    int e = bn_cu_running_one(&rm, &rv, mean[c], var_biased[c], rule, momentum, count, m);
    if (e)
        note(err, e, c);
    else if (commit)
        running_mean[c] = rm, running_var[c] = rv;
}

/* ------------------------------------------------------------ launchers */

static cudaStream_t as_stream(void *stream) { return (cudaStream_t)stream; }

static unsigned per_channel_blocks(long long C) { return (unsigned)((C + 255) / 256); }

/* Elementwise kernels: enough blocks to fill any current GPU, grid-stride. */
static unsigned elementwise_blocks(long long count)
{
    long long b = (count + 255) / 256;
    return (unsigned)(b < 65536 ? b : 65536);
}

static int tiles_of(bn_cu_shape s) { return (int)((s.C + 31) / 32); }

template <typename T>
static int moments_launch(bn_cu_moments *part, const T *x, bn_cu_shape s, void *stream)
{
    if (s.nhwc) {
        int tiles = tiles_of(s);
        moments_nhwc<<<(unsigned)(s.blocks * tiles), dim3(32, s.threads / 32), 0,
                       as_stream(stream)>>>(part, x, s.C, s.m, s.blocks, tiles);
    } else {
        moments_nchw<<<(unsigned)(s.blocks * s.C), s.threads, 0, as_stream(stream)>>>(
            part, x, s.C, s.HW, s.m, s.blocks);
    }
    return (int)cudaGetLastError();
}

/* s.dtype picks the instantiation: BN_CU_F32 float, BN_CU_F16 __half,
 * BN_CU_BF16 __nv_bfloat16. */
extern "C" int bn_cu_moments_launch(bn_cu_moments *part, const void *x, bn_cu_shape s,
                                    void *stream)
{
    return s.dtype == BN_CU_F16    ? moments_launch(part, (const __half *)x, s, stream)
           : s.dtype == BN_CU_BF16 ? moments_launch(part, (const __nv_bfloat16 *)x, s, stream)
                                   : moments_launch(part, (const float *)x, s, stream);
}

extern "C" int bn_cu_train_finalize_launch(bn_cu_coefs *cf, float *mean, float *var_biased,
                                           float *invstd, const bn_cu_moments *part,
                                           bn_cu_shape s, double eps, const float *gamma,
                                           const float *beta, int *err, void *stream)
{
    train_finalize<<<per_channel_blocks(s.C), 256, 0, as_stream(stream)>>>(
        cf, mean, var_biased, invstd, part, s.C, s.blocks, eps, gamma, beta, err);
    return (int)cudaGetLastError();
}

template <typename T>
static int affine_launch(T *y, const T *x, const bn_cu_coefs *cf, int relu, bn_cu_shape s,
                         int *err, void *stream)
{
    long long count = s.m * s.C;
    affine<<<elementwise_blocks(count), 256, 0, as_stream(stream)>>>(
        y, x, cf, relu, count, s.C, s.HW, s.nhwc, err);
    return (int)cudaGetLastError();
}

extern "C" int bn_cu_affine_launch(void *y, const void *x, const bn_cu_coefs *cf,
                                   int relu, bn_cu_shape s, int *err, void *stream)
{
    if (s.dtype == BN_CU_F16)
        return affine_launch((__half *)y, (const __half *)x, cf, relu, s, err, stream);
    if (s.dtype == BN_CU_BF16)
        return affine_launch((__nv_bfloat16 *)y, (const __nv_bfloat16 *)x, cf, relu, s, err,
                             stream);
    return affine_launch((float *)y, (const float *)x, cf, relu, s, err, stream);
}

template <typename T>
static int grad_sums_launch(double *part, const T *dy, const T *y, const T *x,
                            const float *center, const float *invstd, bn_cu_shape s,
                            void *stream)
{
    if (s.nhwc) {
        int tiles = tiles_of(s);
        grad_sums_nhwc<<<(unsigned)(s.blocks * tiles), dim3(32, s.threads / 32), 0,
                         as_stream(stream)>>>(part, dy, y, x, center, invstd, s.C, s.m,
                                              s.blocks, tiles);
    } else {
        grad_sums_nchw<<<(unsigned)(s.blocks * s.C), s.threads, 0, as_stream(stream)>>>(
            part, dy, y, x, center, invstd, s.C, s.HW, s.m, s.blocks);
    }
    return (int)cudaGetLastError();
}

extern "C" int bn_cu_grad_sums_launch(double *part, const void *dy, const void *y,
                                      const void *x, const float *center,
                                      const float *invstd, bn_cu_shape s, void *stream)
{
    if (s.dtype == BN_CU_F16)
        return grad_sums_launch(part, (const __half *)dy, (const __half *)y,
                                (const __half *)x, center, invstd, s, stream);
    if (s.dtype == BN_CU_BF16)
        return grad_sums_launch(part, (const __nv_bfloat16 *)dy, (const __nv_bfloat16 *)y,
                                (const __nv_bfloat16 *)x, center, invstd, s, stream);
    return grad_sums_launch(part, (const float *)dy, (const float *)y, (const float *)x,
                            center, invstd, s, stream);
}

extern "C" int bn_cu_backward_finalize_launch(bn_cu_coefs *cf, float *dgamma, float *dbeta,
                                              const double *part, bn_cu_shape s, int infer,
                                              const float *mean, const float *invstd,
                                              const float *gamma, int *err, void *stream)
{
    backward_finalize<<<per_channel_blocks(s.C), 256, 0, as_stream(stream)>>>(
        cf, dgamma, dbeta, part, s.C, s.blocks, (double)s.m, infer, mean, invstd, gamma,
        err);
    return (int)cudaGetLastError();
}

template <typename T>
static int dx_launch(T *dx, const T *dy, const T *y, const T *x, const bn_cu_coefs *cf,
                     int relu, int infer, bn_cu_shape s, int *err, void *stream)
{
    long long count = s.m * s.C;
    dx_kernel<<<elementwise_blocks(count), 256, 0, as_stream(stream)>>>(
        dx, dy, y, x, cf, relu, infer, count, s.C, s.HW, s.nhwc, err);
    return (int)cudaGetLastError();
}

extern "C" int bn_cu_dx_launch(void *dx, const void *dy, const void *y, const void *x,
                               const bn_cu_coefs *cf, int relu, int infer, bn_cu_shape s,
                               int *err, void *stream)
{
    if (s.dtype == BN_CU_F16)
        return dx_launch((__half *)dx, (const __half *)dy, (const __half *)y,
                         (const __half *)x, cf, relu, infer, s, err, stream);
    if (s.dtype == BN_CU_BF16)
        return dx_launch((__nv_bfloat16 *)dx, (const __nv_bfloat16 *)dy,
                         (const __nv_bfloat16 *)y, (const __nv_bfloat16 *)x, cf, relu, infer,
                         s, err, stream);
    return dx_launch((float *)dx, (const float *)dy, (const float *)y, (const float *)x, cf,
                     relu, infer, s, err, stream);
}

extern "C" int bn_cu_infer_prep_launch(bn_cu_coefs *cf, float *center, float *invstd,
                                       const float *mean, const float *var, bn_cu_shape s,
                                       double eps, const float *gamma, const float *beta,
                                       int *err, void *stream)
{
    infer_prep<<<per_channel_blocks(s.C), 256, 0, as_stream(stream)>>>(
        cf, center, invstd, mean, var, s.C, eps, gamma, beta, err);
    return (int)cudaGetLastError();
}

extern "C" int bn_cu_running_launch(float *running_mean, float *running_var,
                                    const float *mean, const float *var_biased,
                                    long long C, int rule, double momentum, double count,
                                    double m, int *err, void *stream)
{
    for (int commit = 0; commit < 2; commit++) {  /* check, then write (see running) */
        running<<<per_channel_blocks(C), 256, 0, as_stream(stream)>>>(
            running_mean, running_var, mean, var_biased, C, rule, momentum, count, m, err,
            commit);
        int e = (int)cudaGetLastError();
        if (e)
            return e;
    }
    return 0;
}
