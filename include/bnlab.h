/*
 * bnlab.h — the one public header of bnlab: Batch Normalization
 * (Ioffe & Szegedy 2015, arXiv 1502.03167), line by line, in C.
 *
 * Every operation is declared here once, with one stem and one argument order,
 * and implemented three times:
 *
 *   bn_<op>_ref    ref/   double precision, the paper's formulas; the oracle
 *   bn_<op>_fast   fast/  float, AVX-512/AVX2, host memory
 *   bn_<op>_cuda   cuda/  float on the GPU, device pointers, plus a stream
 *
 * and once more without a suffix, in float, with the implementation picked at
 * run time (bn_impl): that is what the chapters and the training toolkit call.
 *
 * Argument order, everywhere: outputs first, then inputs, then the descriptor
 * (sizes, layout, eps, affine), then the remaining parameters.
 *
 * Shapes. A tensor is described by bn_desc: N examples, C channels, H x W
 * pixels each. Per-activation batch normalization of an (N, D) matrix (paper
 * Alg. 1) is C = D, H = W = 1. Spatial batch normalization (paper §3.2) keeps
 * one (gamma, beta) per channel and takes the statistics of each channel over
 * all N·H·W values: the effective mini-batch is m' = N·H·W.
 *
 * Per-channel arrays (gamma, beta, mean, var, invstd, dgamma, dbeta, running
 * statistics) hold C values. Data arrays (x, y, dy, dx) hold N·C·H·W values in
 * the layout of the descriptor.
 *
 * Errors. Every function returns BN_OK (0) or a bn_status code; before it
 * returns an error it calls the error handler (bn_set_error_handler) with a
 * message, GSL style. Break on bn_error in a debugger to catch them all.
 */
#ifndef BNLAB_H
#define BNLAB_H

#include <stddef.h>

#ifdef __cplusplus
extern "C" {
#endif

#define BNLAB_VERSION "0.1.0"

/* ---------------------------------------------------------------- errors */

typedef enum bn_status {
    BN_OK = 0,
    BN_EFAULT = 1,     /* a required pointer is NULL */
    BN_EBADLEN = 2,    /* a size is zero */
    BN_EOVERFLOW = 3,  /* N·C·H·W, or its size in bytes, overflows size_t */
    BN_EINVAL = 4,     /* bad parameter: layout, rule, impl name, eps, momentum */
    BN_ESINGLE = 5,    /* training with m' = 1 value per channel (see below) */
    BN_EDOM = 6,       /* bad data: NaN or Inf, overflow, sigma2 + eps = 0 */
    BN_ENOMEM = 7,     /* out of memory */
    BN_ENOIMPL = 8,    /* this implementation was not built into this bnlab */
    BN_ENODEVICE = 9,  /* cuda: no usable GPU */
    BN_ECUDA = 10      /* cuda: a CUDA runtime error (its string is in the message) */
} bn_status;

/* Called with the message before any function returns an error. */
typedef void bn_error_handler_t(const char *reason, const char *file, int line,
                                int status);

/* Installs handler and returns the previous one. NULL restores the default,
 * which prints "bnlab: <reason> (<file>:<line>)" on stderr. */
bn_error_handler_t *bn_set_error_handler(bn_error_handler_t *handler);

/* A handler that prints nothing (the message is still kept, see below). */
void bn_error_handler_quiet(const char *reason, const char *file, int line,
                            int status);

/* The message of the last error raised in this thread ("" if none). */
const char *bn_last_error(void);

/* A short name for a status: "BN_EDOM: bad data (NaN/Inf, overflow, zero variance with eps = 0)". */
const char *bn_strerror(int status);

/* ------------------------------------------------------------ descriptor */

typedef enum bn_layout {
    BN_NCHW = 0,  /* x[((n·C + c)·H + h)·W + w]: each channel's H·W pixels contiguous */
    BN_NHWC = 1   /* x[((n·H + h)·W + w)·C + c]: each pixel's C channels contiguous */
} bn_layout;      /* with H = W = 1 both are the (N, D) row-major matrix */

typedef struct bn_desc {
    size_t N, C, H, W;  /* examples, channels (features D), height, width */
    bn_layout layout;
    double eps;         /* added to the variance inside the square root; >= 0 */
    int affine;         /* 1: y = gamma·xhat + beta;  0: y = xhat (gamma, beta,
                           dgamma, dbeta are not used and may be NULL) */
} bn_desc;

/* A descriptor with affine = 1. (N, D) data: bn_desc_make(N, D, 1, 1, BN_NCHW, eps). */
bn_desc bn_desc_make(size_t N, size_t C, size_t H, size_t W, bn_layout layout,
                     double eps);

/* Validates d. training = 1 also rejects m' = N·H·W = 1 (BN_ESINGLE): with a
 * single value per channel the batch variance is 0, xhat is 0 whatever x is,
 * and the unbiased running variance would divide by m' - 1 = 0. PyTorch
 * rejects this case too; bnlab makes it an error rather than a silent
 * constant. On success stores N·C·H·W in *count and N·H·W in *m (either may
 * be NULL). */
int bn_desc_check(const bn_desc *d, int training, size_t *count, size_t *m);

/* ------------------------------------------------ running-statistics rules */

/* How running (population) statistics are updated from each batch's mean
 * mu_B and biased variance sigma2_B. The name says which variance is stored;
 * "unbiased" stores m'/(m'-1)·sigma2_B (Bessel's correction, paper Alg. 2). */
typedef enum bn_running_rule {
    /* PyTorch, cuDNN: momentum weights the NEW batch (PyTorch default 0.1).
     * r_mean = (1-momentum)·r_mean + momentum·mu_B
     * r_var  = (1-momentum)·r_var  + momentum·m'/(m'-1)·sigma2_B */
    BN_RUNNING_MOMENTUM_NEW_UNBIASED = 0,
    /* Keras / tf.keras: momentum weights the OLD value (Keras default 0.99).
     * r_mean = momentum·r_mean + (1-momentum)·mu_B
     * r_var  = momentum·r_var  + (1-momentum)·sigma2_B */
    BN_RUNNING_MOMENTUM_OLD_BIASED = 1,
    /* Cumulative average, every batch weighted equally (PyTorch momentum=None,
     * cuDNN factor 1/(1+n)); momentum is ignored, *num_batches counts.
     * After K batches this equals Algorithm 2's population estimate. */
    BN_RUNNING_CUMULATIVE_UNBIASED = 2
} bn_running_rule;

/* -------------------------------------------------- run-time implementation */

typedef enum bn_impl { BN_IMPL_REF = 0, BN_IMPL_FAST = 1, BN_IMPL_CUDA = 2 } bn_impl;

/* "ref", "fast" or "cuda" -> *impl; BN_EINVAL with a message otherwise. */
int bn_impl_parse(const char *name, bn_impl *impl);
const char *bn_impl_name(bn_impl impl);
/* 1 if impl can run here; otherwise 0 and *why (if why != NULL) says why. */
int bn_impl_available(bn_impl impl, const char **why);

const char *bn_version(void);

/* ======================================================================
 * ref/: double precision, single thread, the paper's formulas.
 * Data arrays may alias: y may be x, dx may be dy (in place).
 * ====================================================================== */

/* Algorithm 1, training mode.
 *   out  y[N·C·H·W]        gamma·xhat + beta
 *        mean[C]           mu_B, the batch mean of each channel
 *        var_biased[C]     sigma2_B = (1/m')·Σ (x - mu_B)², the biased variance
 *        invstd[C]         1/sqrt(sigma2_B + eps); may be NULL
 *   in   x, gamma[C], beta[C] (used when d->affine)
 * Backward needs mean and invstd (and x, gamma): keep them. */
int bn_forward_train_ref(double *y, double *mean, double *var_biased,
                         double *invstd, const double *x, const double *gamma,
                         const double *beta, const bn_desc *d);

/* Backward of training mode, the paper's six chain-rule equations in order.
 *   out  dx[N·C·H·W], dgamma[C], dbeta[C] (the last two when d->affine)
 *   in   dy, x, mean and invstd from bn_forward_train, gamma (when affine) */
int bn_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                          const double *dy, const double *x, const double *mean,
                          const double *invstd, const double *gamma,
                          const bn_desc *d);

/* The same gradient, closed form (ref only, for teaching and testing):
 *   dx = gamma·invstd·(dy - mean(dy) - xhat·mean(dy·xhat)) */
int bn_backward_train_closed_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x,
                                 const double *mean, const double *invstd,
                                 const double *gamma, const bn_desc *d);

/* Fused BN + ReLU (as oneDNN's fuse_norm_relu): y = max(0, gamma·xhat + beta).
 * Its backward takes that y and passes dy only where y > 0. */
int bn_forward_train_relu_ref(double *y, double *mean, double *var_biased,
                              double *invstd, const double *x,
                              const double *gamma, const double *beta,
                              const bn_desc *d);
int bn_backward_train_relu_ref(double *dx, double *dgamma, double *dbeta,
                               const double *dy, const double *y,
                               const double *x, const double *mean,
                               const double *invstd, const double *gamma,
                               const bn_desc *d);

/* Running statistics: one update from one batch's (mean, var_biased), C values,
 * with m = m' values per channel in that batch (m >= 2: the unbiased rules
 * divide by m - 1). running_mean, running_var are updated in place.
 * num_batches counts the updates: required (in/out) for the cumulative rule,
 * optional (NULL) for the others. momentum must be in [0, 1]. */
int bn_running_update_ref(double *running_mean, double *running_var,
                          size_t *num_batches, const double *mean,
                          const double *var_biased, size_t C, size_t m,
                          bn_running_rule rule, double momentum);

/* Algorithm 2, steps 8-10: population statistics from K training batches of
 * m values per channel each:  E[x] = E_B[mu_B],  Var[x] = m/(m-1)·E_B[sigma2_B].
 *   out  pop_mean[C], pop_var_unbiased[C]
 *   in   batch_means[K·C], batch_vars_biased[K·C] (batch k's C values at k·C) */
int bn_population_stats_ref(double *pop_mean, double *pop_var_unbiased,
                            const double *batch_means,
                            const double *batch_vars_biased, size_t K, size_t C,
                            size_t m);

/* Algorithm 2, step 11: inference folds BN into one affine map per channel,
 *   scale = gamma / sqrt(var + eps),  shift = beta - scale·mean,
 * where (mean, var) are the population statistics (var as stored by the
 * running rule in use; Algorithm 2 uses the unbiased one). */
int bn_fold_ref(double *scale, double *shift, const double *gamma,
                const double *beta, const double *mean, const double *var,
                const bn_desc *d);

/* Inference: y = scale·x + shift with the folded map. N·H·W = 1 is allowed. */
int bn_forward_infer_ref(double *y, const double *x, const double *gamma,
                         const double *beta, const double *mean,
                         const double *var, const bn_desc *d);

/* Backward of inference mode (statistics frozen, as in fine-tuning):
 *   dx = dy·gamma/sqrt(var + eps),  dgamma = Σ dy·xhat,  dbeta = Σ dy. */
int bn_backward_infer_ref(double *dx, double *dgamma, double *dbeta,
                          const double *dy, const double *x, const double *gamma,
                          const double *mean, const double *var,
                          const bn_desc *d);

/* ======================================================================
 * The normalization family (ref/, double). docs/normalizations.md compares
 * them. All take the bn_desc of the data; eps and affine as for BN.
 * ====================================================================== */

/* Group Normalization (Wu & He 2018): statistics per example n and group g of
 * C/G channels, over those channels and all H·W pixels; per-channel gamma,
 * beta. G must divide C; each set holds m = (C/G)·H·W >= 2 values. The same
 * computation in training and inference (no running statistics).
 *   out  y, mean[N·G], var_biased[N·G], invstd[N·G] (may be NULL): set (n, g)
 *        at index n·G + g
 * Backward needs mean and invstd, as BN's. */
int bn_groupnorm_forward_ref(double *y, double *mean, double *var_biased,
                             double *invstd, const double *x, const double *gamma,
                             const double *beta, const bn_desc *d, size_t G);
int bn_groupnorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                              const double *dy, const double *x, const double *mean,
                              const double *invstd, const double *gamma,
                              const bn_desc *d, size_t G);
/* Layer Normalization (Ba et al. 2016) = GroupNorm with G = 1: per example,
 * over all C·H·W values (for (N, D) data: each row). mean etc. hold N values. */
int bn_layernorm_forward_ref(double *y, double *mean, double *var_biased,
                             double *invstd, const double *x, const double *gamma,
                             const double *beta, const bn_desc *d);
int bn_layernorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                              const double *dy, const double *x, const double *mean,
                              const double *invstd, const double *gamma,
                              const bn_desc *d);
/* Instance Normalization = GroupNorm with G = C: per example and channel,
 * over the H·W pixels. mean etc. hold N·C values. */
int bn_instancenorm_forward_ref(double *y, double *mean, double *var_biased,
                                double *invstd, const double *x, const double *gamma,
                                const double *beta, const bn_desc *d);
int bn_instancenorm_backward_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x, const double *mean,
                                 const double *invstd, const double *gamma,
                                 const bn_desc *d);

/* Batch Renormalization (Ioffe 2017). Training, per channel:
 *   sigma_B = sqrt(sigma2_B + eps),  r = clip(sigma_B/sigma, 1/rmax, rmax),
 *   d = clip((mu_B - mu)/sigma, -dmax, dmax),
 *   xhat = (x - mu_B)/sigma_B·r + d,  y = gamma·xhat + beta
 * with (mu, sigma) = (moving_mean, moving_sd). r and d are constants for the
 * backward. rmax >= 1, dmax >= 0; rmax = 1, dmax = 0 is BN.
 *   out  y, mean[C], var_biased[C], invstd[C] (= 1/sigma_B), r[C], dshift[C] (the paper's d) */
int bn_renorm_forward_train_ref(double *y, double *mean, double *var_biased,
                                double *invstd, double *r, double *dshift,
                                const double *x, const double *gamma,
                                const double *beta, const double *moving_mean,
                                const double *moving_sd, const bn_desc *d,
                                double rmax, double dmax);
int bn_renorm_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                                 const double *dy, const double *x,
                                 const double *mean, const double *invstd,
                                 const double *r, const double *dshift,
                                 const double *gamma, const bn_desc *d);
/* mu += alpha·(mu_B - mu),  sigma += alpha·(sqrt(sigma2_B + eps) - sigma) */
int bn_renorm_update_ref(double *moving_mean, double *moving_sd, const double *mean,
                         const double *var_biased, size_t C, double eps, double alpha);
/* Inference: y = gamma·(x - mu)/sigma + beta (d->eps is not used: sigma has it). */
int bn_renorm_forward_infer_ref(double *y, const double *x, const double *gamma,
                                const double *beta, const double *moving_mean,
                                const double *moving_sd, const bn_desc *d);
/* The paper's schedule: rmax = 1, dmax = 0 up to step 5,000, then linearly to
 * rmax = 3 at step 40,000 and dmax = 5 at step 25,000. */
void bn_renorm_schedule(long step, double *rmax, double *dmax);

/* Ghost Batch Normalization: the N examples split into K = N/V virtual
 * batches of V examples (V divides N), each normalized with its own
 * statistics; gamma and beta shared.
 *   out  y, mean[K·C], var_biased[K·C], invstd[K·C] (virtual batch k at k·C) */
int bn_ghost_forward_train_ref(double *y, double *mean, double *var_biased,
                               double *invstd, const double *x, const double *gamma,
                               const double *beta, const bn_desc *d, size_t V);
int bn_ghost_backward_train_ref(double *dx, double *dgamma, double *dbeta,
                                const double *dy, const double *x, const double *mean,
                                const double *invstd, const double *gamma,
                                const bn_desc *d, size_t V);
/* Running statistics: one update per virtual batch (m = V·H·W), in order. */
int bn_ghost_running_update_ref(double *running_mean, double *running_var,
                                size_t *num_batches, const double *mean,
                                const double *var_biased, size_t K, size_t C,
                                size_t m, bn_running_rule rule, double momentum);

/* Weight Normalization (Salimans & Kingma 2016): w_k = g_k·v_k/‖v_k‖ for
 * the K rows of v (K × D, row k = unit k's D weights).
 *   forward:  out w[K·D], vnorm[K] (‖v_k‖, keep for backward)
 *   backward: dl/dg_k = dl/dw_k·v_k/‖v_k‖,
 *             dl/dv_k = g_k/‖v_k‖·(dl/dw_k - dl/dg_k·v_k/‖v_k‖)
 *   init:     from pre-activations t[N·K] = v_k·x_n/‖v_k‖ of one batch,
 *             g_k = 1/sigma[t_k], b_k = -mu[t_k]/sigma[t_k] (biased sigma) */
int bn_weightnorm_forward_ref(double *w, double *vnorm, const double *v,
                              const double *g, size_t K, size_t D);
int bn_weightnorm_backward_ref(double *dv, double *dg, const double *dw,
                               const double *v, const double *g, const double *vnorm,
                               size_t K, size_t D);
int bn_weightnorm_init_ref(double *g, double *b, const double *t, size_t N, size_t K);

/* PreciseBN (Wu & Johnson 2021): Algorithm 2's population statistics over
 * many batches of the frozen model, each weighted equally (not an EMA):
 * begin, add every batch of the BN layer's input x, end. The result equals
 * bn_population_stats_ref on the same batches. Batches share one m' = N·H·W. */
typedef struct bn_precise {
    size_t C, m, batches;
    long double *sum_mean, *sum_var;   /* Σ_B mu_B, Σ_B sigma2_B per channel */
} bn_precise;
int bn_precise_begin(bn_precise *p, size_t C);
int bn_precise_add_ref(bn_precise *p, const double *x, const bn_desc *d);
int bn_precise_end_ref(const bn_precise *p, double *pop_mean, double *pop_var_unbiased);
void bn_precise_free(bn_precise *p);

/* ======================================================================
 * fast/: the same stems in float (AVX-512 / AVX2 / portable C), host memory.
 * cuda/: the same stems in float on device pointers, plus a trailing
 *        cudaStream_t passed as void * (NULL: the default stream). A call
 *        returns when its work on that stream is done (so that bad values
 *        come back as a status); num_batches is host memory. No device:
 *        BN_ENODEVICE. docs/cuda.md.
 * They are declared here so that all three share one contract; whether one
 * was built into this bnlab is bn_impl_available()'s answer. Population
 * statistics and folding are host bookkeeping over C values: ref does them.
 * ====================================================================== */

/* fast/ picks its instruction set at the first call: "avx512", "avx2" or
 * "portable" (CPUID; the environment variable BNLAB_FAST_ISA overrides).
 * Returns the name of the path in use, or NULL (with an error through the
 * handler) when BNLAB_FAST_ISA names a path this CPU cannot run. */
const char *bn_fast_isa(void);

int bn_forward_train_fast(float *y, float *mean, float *var_biased,
                          float *invstd, const float *x, const float *gamma,
                          const float *beta, const bn_desc *d);
int bn_backward_train_fast(float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *mean,
                           const float *invstd, const float *gamma,
                           const bn_desc *d);
int bn_forward_train_relu_fast(float *y, float *mean, float *var_biased,
                               float *invstd, const float *x,
                               const float *gamma, const float *beta,
                               const bn_desc *d);
int bn_backward_train_relu_fast(float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *y,
                                const float *x, const float *mean,
                                const float *invstd, const float *gamma,
                                const bn_desc *d);
int bn_running_update_fast(float *running_mean, float *running_var,
                           size_t *num_batches, const float *mean,
                           const float *var_biased, size_t C, size_t m,
                           bn_running_rule rule, double momentum);
int bn_forward_infer_fast(float *y, const float *x, const float *gamma,
                          const float *beta, const float *mean,
                          const float *var, const bn_desc *d);
int bn_backward_infer_fast(float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *gamma,
                           const float *mean, const float *var,
                           const bn_desc *d);
/* GroupNorm and LayerNorm (= GroupNorm with G = 1) in float: contracts as
 * bn_groupnorm_*_ref and bn_layernorm_*_ref (mean etc. hold N·G values). */
int bn_groupnorm_forward_fast(float *y, float *mean, float *var_biased,
                              float *invstd, const float *x, const float *gamma,
                              const float *beta, const bn_desc *d, size_t G);
int bn_groupnorm_backward_fast(float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, const float *mean,
                               const float *invstd, const float *gamma,
                               const bn_desc *d, size_t G);
int bn_layernorm_forward_fast(float *y, float *mean, float *var_biased,
                              float *invstd, const float *x, const float *gamma,
                              const float *beta, const bn_desc *d);
int bn_layernorm_backward_fast(float *dx, float *dgamma, float *dbeta,
                               const float *dy, const float *x, const float *mean,
                               const float *invstd, const float *gamma,
                               const bn_desc *d);

int bn_forward_train_cuda(float *y, float *mean, float *var_biased,
                          float *invstd, const float *x, const float *gamma,
                          const float *beta, const bn_desc *d, void *stream);
int bn_backward_train_cuda(float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *mean,
                           const float *invstd, const float *gamma,
                           const bn_desc *d, void *stream);
int bn_forward_train_relu_cuda(float *y, float *mean, float *var_biased,
                               float *invstd, const float *x,
                               const float *gamma, const float *beta,
                               const bn_desc *d, void *stream);
int bn_backward_train_relu_cuda(float *dx, float *dgamma, float *dbeta,
                                const float *dy, const float *y,
                                const float *x, const float *mean,
                                const float *invstd, const float *gamma,
                                const bn_desc *d, void *stream);
int bn_running_update_cuda(float *running_mean, float *running_var,
                           size_t *num_batches, const float *mean,
                           const float *var_biased, size_t C, size_t m,
                           bn_running_rule rule, double momentum, void *stream);
int bn_forward_infer_cuda(float *y, const float *x, const float *gamma,
                          const float *beta, const float *mean,
                          const float *var, const bn_desc *d, void *stream);
int bn_backward_infer_cuda(float *dx, float *dgamma, float *dbeta,
                           const float *dy, const float *x, const float *gamma,
                           const float *mean, const float *var,
                           const bn_desc *d, void *stream);

/* cuda/ in mixed precision: data arrays (x, y, dy, dx) in 16 bits, IEEE
 * half (CUDA's __half) or bfloat16 (__nv_bfloat16), passed as these bit
 * containers of the same size; statistics, gamma, beta and their gradients
 * stay in float, and all arithmetic is float/double. Each value is rounded
 * once, when it is stored. Arguments as the float versions above. */
typedef struct bn_f16 { unsigned short bits; } bn_f16;
typedef struct bn_bf16 { unsigned short bits; } bn_bf16;

int bn_forward_train_cuda_f16(bn_f16 *y, float *mean, float *var_biased,
                              float *invstd, const bn_f16 *x, const float *gamma,
                              const float *beta, const bn_desc *d, void *stream);
int bn_forward_train_relu_cuda_f16(bn_f16 *y, float *mean, float *var_biased,
                                   float *invstd, const bn_f16 *x,
                                   const float *gamma, const float *beta,
                                   const bn_desc *d, void *stream);
int bn_backward_train_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta,
                               const bn_f16 *dy, const bn_f16 *x, const float *mean,
                               const float *invstd, const float *gamma,
                               const bn_desc *d, void *stream);
int bn_backward_train_relu_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta,
                                    const bn_f16 *dy, const bn_f16 *y,
                                    const bn_f16 *x, const float *mean,
                                    const float *invstd, const float *gamma,
                                    const bn_desc *d, void *stream);
int bn_forward_infer_cuda_f16(bn_f16 *y, const bn_f16 *x, const float *gamma,
                              const float *beta, const float *mean,
                              const float *var, const bn_desc *d, void *stream);
int bn_backward_infer_cuda_f16(bn_f16 *dx, float *dgamma, float *dbeta,
                               const bn_f16 *dy, const bn_f16 *x, const float *gamma,
                               const float *mean, const float *var,
                               const bn_desc *d, void *stream);

int bn_forward_train_cuda_bf16(bn_bf16 *y, float *mean, float *var_biased,
                               float *invstd, const bn_bf16 *x, const float *gamma,
                               const float *beta, const bn_desc *d, void *stream);
int bn_forward_train_relu_cuda_bf16(bn_bf16 *y, float *mean, float *var_biased,
                                    float *invstd, const bn_bf16 *x,
                                    const float *gamma, const float *beta,
                                    const bn_desc *d, void *stream);
int bn_backward_train_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta,
                                const bn_bf16 *dy, const bn_bf16 *x,
                                const float *mean, const float *invstd,
                                const float *gamma, const bn_desc *d, void *stream);
int bn_backward_train_relu_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta,
                                     const bn_bf16 *dy, const bn_bf16 *y,
                                     const bn_bf16 *x, const float *mean,
                                     const float *invstd, const float *gamma,
                                     const bn_desc *d, void *stream);
int bn_forward_infer_cuda_bf16(bn_bf16 *y, const bn_bf16 *x, const float *gamma,
                               const float *beta, const float *mean,
                               const float *var, const bn_desc *d, void *stream);
int bn_backward_infer_cuda_bf16(bn_bf16 *dx, float *dgamma, float *dbeta,
                                const bn_bf16 *dy, const bn_bf16 *x,
                                const float *gamma, const float *mean,
                                const float *var, const bn_desc *d, void *stream);

/* ======================================================================
 * The run-time switch: float data on the host, implementation by name.
 * impl = BN_IMPL_REF widens to double, runs ref and rounds back; use it to
 * compare, not for speed. Arguments as in the _ref functions above.
 * ====================================================================== */

int bn_forward_train(bn_impl impl, float *y, float *mean, float *var_biased,
                     float *invstd, const float *x, const float *gamma,
                     const float *beta, const bn_desc *d);
int bn_backward_train(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                      const float *dy, const float *x, const float *mean,
                      const float *invstd, const float *gamma, const bn_desc *d);
int bn_forward_train_relu(bn_impl impl, float *y, float *mean,
                          float *var_biased, float *invstd, const float *x,
                          const float *gamma, const float *beta,
                          const bn_desc *d);
int bn_backward_train_relu(bn_impl impl, float *dx, float *dgamma,
                           float *dbeta, const float *dy, const float *y,
                           const float *x, const float *mean,
                           const float *invstd, const float *gamma,
                           const bn_desc *d);
int bn_running_update(bn_impl impl, float *running_mean, float *running_var,
                      size_t *num_batches, const float *mean,
                      const float *var_biased, size_t C, size_t m,
                      bn_running_rule rule, double momentum);
int bn_forward_infer(bn_impl impl, float *y, const float *x, const float *gamma,
                     const float *beta, const float *mean, const float *var,
                     const bn_desc *d);
int bn_backward_infer(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                      const float *dy, const float *x, const float *gamma,
                      const float *mean, const float *var, const bn_desc *d);
/* GroupNorm and LayerNorm; cuda has none (BN_ENOIMPL). */
int bn_groupnorm_forward(bn_impl impl, float *y, float *mean, float *var_biased,
                         float *invstd, const float *x, const float *gamma,
                         const float *beta, const bn_desc *d, size_t G);
int bn_groupnorm_backward(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                          const float *dy, const float *x, const float *mean,
                          const float *invstd, const float *gamma, const bn_desc *d,
                          size_t G);
int bn_layernorm_forward(bn_impl impl, float *y, float *mean, float *var_biased,
                         float *invstd, const float *x, const float *gamma,
                         const float *beta, const bn_desc *d);
int bn_layernorm_backward(bn_impl impl, float *dx, float *dgamma, float *dbeta,
                          const float *dy, const float *x, const float *mean,
                          const float *invstd, const float *gamma, const bn_desc *d);
/* Bookkeeping over K·C numbers: computed by ref whatever the impl. */
int bn_population_stats(float *pop_mean, float *pop_var_unbiased,
                        const float *batch_means, const float *batch_vars_biased,
                        size_t K, size_t C, size_t m);

#ifdef __cplusplus
}
#endif
#endif /* BNLAB_H */
