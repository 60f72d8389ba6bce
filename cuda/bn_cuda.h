/*
 * bn_cuda.h — what the pieces of cuda/ share, and what ref/dispatch.c and
 * the tests call; not installed. Plain C (no CUDA headers), so that gcc
 * compiles every file that includes it.
 *
 *   cuda_kernels.cu  the kernels and their launchers (bn_cu_*_launch), each
 *                    returning the cudaError_t of its launch as an int
 *   cuda_api.c       the public bn_*_cuda functions (argument checks, the
 *                    workspace, the launches, errors as bn_status), the
 *                    host-staged versions used by the run-time switch, and
 *                    whether a device is present
 */
#ifndef BN_CUDA_H
#define BN_CUDA_H

#include <stddef.h>

#include "bn_cuda_math.h"
#include "bnlab.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A tensor as the kernels see it. nhwc = 1 for channels-last data, and for
 * any H·W = 1 data (where both layouts are the same (N, C) matrix). The
 * launch shape: NCHW, `threads` per block (a multiple of 32) and `blocks`
 * blocks per channel; NHWC, blocks of 32 channels × threads/32 pixel lanes,
 * `blocks` blocks along the pixels. Either way the statistics come out as
 * `blocks` partial results per channel, merged in that order. */
typedef struct {
    long long N, C, HW, m;   /* m = N·HW, values per channel */
    int nhwc;
    int threads, blocks;
    int dtype;               /* of the data arrays: BN_CU_F32, _F16, _BF16 */
} bn_cu_shape;

/* Data types of x, y, dy, dx (statistics and parameters are always float). */
enum { BN_CU_F32 = 0, BN_CU_F16 = 1, BN_CU_BF16 = 2 };

/* The launch shape for a tensor (the default, or the one forced below). */
bn_cu_shape bn_cu_shape_of(const bn_desc *d);

/* Tests: force `threads` per block (32..1024, multiple of 32) and `blocks`
 * partial results per channel; 0 restores the default for either. */
void bn_cuda_force_launch(int threads, int blocks);

/* ---- launchers (cuda_kernels.cu); err[BN_CU_NERR]: lowest channel with
 * each error kind, INT_MAX when none (the caller initializes it). */
int bn_cu_moments_launch(bn_cu_moments *part, const void *x, bn_cu_shape s,
                         void *stream);
int bn_cu_train_finalize_launch(bn_cu_coefs *cf, float *mean, float *var_biased,
                                float *invstd, const bn_cu_moments *part,
                                bn_cu_shape s, double eps, const float *gamma,
                                const float *beta, int *err, void *stream);
int bn_cu_affine_launch(void *y, const void *x, const bn_cu_coefs *cf, int relu,
                        bn_cu_shape s, int *err, void *stream);
/* part[3·(p·C + c) + 0, 1, 2] = Σ dz, Σ dz·xhat, Σ xhat over partial p's values,
 * xhat = (x - center[c])·invstd[c], dz = dy (relu: 0 where y <= 0). */
int bn_cu_grad_sums_launch(double *part, const void *dy, const void *y,
                           const void *x, const float *center, const float *invstd,
                           bn_cu_shape s, void *stream);
/* Training (infer = 0) or inference (infer = 1) backward: dgamma, dbeta
 * (either NULL: not written) and the dx coefficients. */
int bn_cu_backward_finalize_launch(bn_cu_coefs *cf, float *dgamma, float *dbeta,
                                   const double *part, bn_cu_shape s, int infer,
                                   const float *mean, const float *invstd,
                                   const float *gamma, int *err, void *stream);
int bn_cu_dx_launch(void *dx, const void *dy, const void *y, const void *x,
                    const bn_cu_coefs *cf, int relu, int infer, bn_cu_shape s,
                    int *err, void *stream);
/* Inference: the forward coefficients, and center/invstd for the backward. */
int bn_cu_infer_prep_launch(bn_cu_coefs *cf, float *center, float *invstd,
                            const float *mean, const float *var, bn_cu_shape s,
                            double eps, const float *gamma, const float *beta,
                            int *err, void *stream);
/* Running statistics, all channels or none: two launches (check, then write
 * only if no channel has an error), as ref/ updates them. */
int bn_cu_running_launch(float *running_mean, float *running_var, const float *mean,
                         const float *var_biased, long long C, int rule,
                         double momentum, double count, double m, int *err,
                         void *stream);

/* ---- device presence (cuda_api.c): 1 if a CUDA device can be used;
 * otherwise 0 and *why (static text) says why, with CUDA's own words. */
int bn_cuda_device_present(const char **why);

/* ---- the run-time switch (ref/dispatch.c): float data in HOST memory,
 * copied to the device, run, copied back. For correctness (chapters can
 * pick --impl cuda), not for speed: every call allocates and copies. */
int bn_cuda_staged_forward_train(int relu, float *y, float *mean, float *var_biased,
                                 float *invstd, const float *x, const float *gamma,
                                 const float *beta, const bn_desc *d);
int bn_cuda_staged_backward_train(int relu, float *dx, float *dgamma, float *dbeta,
                                  const float *dy, const float *y, const float *x,
                                  const float *mean, const float *invstd,
                                  const float *gamma, const bn_desc *d);
int bn_cuda_staged_running_update(float *running_mean, float *running_var,
                                  size_t *num_batches, const float *mean,
                                  const float *var_biased, size_t C, size_t m,
                                  bn_running_rule rule, double momentum);
int bn_cuda_staged_forward_infer(float *y, const float *x, const float *gamma,
                                 const float *beta, const float *mean,
                                 const float *var, const bn_desc *d);
int bn_cuda_staged_backward_infer(float *dx, float *dgamma, float *dbeta,
                                  const float *dy, const float *x,
                                  const float *gamma, const float *mean,
                                  const float *var, const bn_desc *d);

#ifdef __cplusplus
}
#endif
#endif /* BN_CUDA_H */
