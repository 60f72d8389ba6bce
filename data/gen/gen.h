/*
 * gen.h — what the conformance-vector generator in data/gen/ shares.
 *
 * The generator writes the data/ folder (one .json file per operation):
 * inputs, expected outputs and tolerances for batch normalization (Ioffe &
 * Szegedy 2015, Algorithms 1 and 2 and the chain rule after Algorithm 1) and
 * for its family (gen_groupnorm.c, gen_renorm.c, gen_ghost.c,
 * gen_weightnorm.c, gen_precise.c). It does NOT link libbnlab: the expected
 * values come from its own binary128 (__float128) arithmetic in oracle.c and
 * oracle_family.c, so that ref/, which the vectors check, is never its own
 * oracle.
 *
 * Determinism: the data are integers from GSL's MT19937 times powers of two
 * (exact in binary64, and in binary32 for fp32 groups), binary128 arithmetic
 * is correctly rounded in software, and numbers are printed with %.17g, so
 * `make vectors` writes byte-identical files on every run.
 *
 * Run: make vectors   (or build/bin/gen_vectors --out data)
 */
#ifndef BNV_GEN_H
#define BNV_GEN_H

#include <stddef.h>

#include <gsl/gsl_rng.h>

typedef __float128 quad;

#define GEN_VERSION "1.0"

/* ------------------------------------------------------------ allocation */

/* Zeroed memory that lives until gen_free_all(); exits on failure. */
void *gen_alloc(size_t n, size_t size);
double *gen_dalloc(size_t n);
char *gen_strdup(const char *s);
/* printf into a new string owned by the arena. */
char *gen_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void gen_free_all(void);

/* ------------------------------------------------------------ the model */

enum { LAYOUT_NCHW = 0, LAYOUT_NHWC = 1 };

/* The parameters a test group shares. */
typedef struct {
    int fp32;                 /* 0: fp64 group, 1: fp32 group */
    int layout;               /* LAYOUT_NCHW or LAYOUT_NHWC */
    size_t N, C, H, W;
    double eps;
    int affine;
    int relu;                 /* training files: activation "relu" */
    int exact_stats;          /* inputs built so that mean and variance are exact */
} gshape;

/* A named array of a test: flat (rows = 0), nested (rows arrays of cols
 * values), or an integer scalar (is_int, value v[0]). */
typedef struct {
    const char *name;
    double *v;
    size_t rows, cols;
    int is_int;
} garr;

typedef struct {
    const char *name;
    double atol, rtol;
} gtol;

enum { GEN_MAX_ARRAYS = 8, GEN_MAX_FLAGS = 6 };

typedef struct gtest {
    const char *comment;
    const char *flags[GEN_MAX_FLAGS];
    int nflags;
    garr in[GEN_MAX_ARRAYS];
    int nin;
    garr out[GEN_MAX_ARRAYS];
    int nout;
    gtol tol[GEN_MAX_ARRAYS];
    int ntol;
    const char *error;        /* NULL: valid; else the bnlab status it must get */
} gtest;

typedef struct ggroup {
    const char *type;         /* "BnForwardTrain", ... */
    gshape s;
    const char *extra;        /* more group fields as JSON lines, or NULL */
    int plain;                /* 1: no layout, shape, eps, affine (weight
                                 normalization: its shape is in extra) */
    gtest *tests;
    size_t ntests, cap;
} ggroup;

typedef struct {
    const char *algorithm;    /* NULL: "BatchNormalization" */
    const char *file;         /* "forward_train.json" */
    const char *schema;       /* "forward_train_schema.json" */
    const char **header;      /* NULL-terminated description lines */
    ggroup *groups;
    size_t ngroups, cap;
} gfile;

ggroup *gen_group(gfile *f, const char *type, gshape s, const char *extra);
gtest *gen_test(ggroup *g, const char *comment);
void gen_flag(gtest *t, const char *flag);
void gen_in(gtest *t, const char *name, double *v, size_t n);
void gen_in_rows(gtest *t, const char *name, double *v, size_t rows, size_t cols);
void gen_in_int(gtest *t, const char *name, size_t value);
void gen_out(gtest *t, const char *name, double *v, size_t n);
void gen_out_rows(gtest *t, const char *name, double *v, size_t rows, size_t cols);
void gen_out_int(gtest *t, const char *name, size_t value);
void gen_tol(gtest *t, const char *name, double atol, double rtol);

/* Writes dir/f->file; returns the number of tests written. */
size_t gen_write(const gfile *f, const char *dir);

/* ------------------------------------------------------------ data */

size_t shape_count(const gshape *s);      /* N·C·H·W */
size_t shape_m(const gshape *s);          /* m' = N·H·W */
/* Index of value i = n·H·W + pixel of channel c, in the layout of s. */
size_t shape_index(const gshape *s, size_t c, size_t i);

/* 1 when N, C, H, W are all different and none is a power of two. */
int shape_odd(const gshape *s);
/* Adds the flags that follow from the shape alone: TwoValues (m' = 2),
 * SingleExample (N = 1, H·W > 1), OddSizes (N, C, H, W distinct, none a
 * power of two). */
void shape_flags(gtest *t, const gshape *s);

/* An integer in [-4L, 4L], the sum of four uniform ones in [-L, L]: roughly
 * Gaussian, with standard deviation sqrt(4L(L+1)/3). */
long rnd_bell(gsl_rng *r, long L);
/* An integer uniform in [lo, hi]. */
long rnd_int(gsl_rng *r, long lo, long hi);
/* Aborts unless v is exactly representable where it will be read (binary32
 * for fp32 groups): inputs are exact by construction, this proves it. */
void check_exact(const gshape *s, const double *v, size_t n, const char *what);

/* ------------------------------------------------ the binary128 oracle */

/* Statistics of channel c of x (shape s): mean and biased variance, exact
 * to binary128 (the data are short dyadic numbers: the sums are exact). */
void q_stats(const gshape *s, const double *x, size_t c, quad *mu, quad *var);
/* The same for the m values x[idx[0..m)] (any set of values). */
void q_stats_idx(const double *x, const size_t *idx, size_t m, quad *mu, quad *var);
quad q_invstd(quad var, double eps);           /* 1/sqrt(var + eps) */
double q_round(quad v);                        /* nearest binary64 */

/* Algorithm 1 for all channels: y (with the ReLU if s->relu), mean,
 * var_biased, invstd, each rounded once to binary64. z (may be NULL) gets
 * BN(x) before the ReLU, for the margin checks. */
void q_forward_train(const gshape *s, const double *x, const double *gamma,
                     const double *beta, double *y, double *mean, double *var,
                     double *invstd, double *z);
/* The training gradient in closed form (ReLU mask from BN(x) > 0). */
void q_backward_train(const gshape *s, const double *x, const double *dy,
                      const double *gamma, const double *beta, double *dx,
                      double *dgamma, double *dbeta);
/* Inference with population statistics: y = gamma·(x - mean)/sqrt(var + eps) + beta. */
void q_forward_infer(const gshape *s, const double *x, const double *gamma,
                     const double *beta, const double *mean, const double *var,
                     double *y);
void q_backward_infer(const gshape *s, const double *x, const double *dy,
                      const double *gamma, const double *mean, const double *var,
                      double *dx, double *dgamma, double *dbeta);

/* ------------------------------------------------ tolerances (tol.c) */

double unit_roundoff(const gshape *s);         /* 2^-53 or 2^-24 */
/* What a correct implementation's statistics of one set of m values
 * x[idx[0..m)] get wrong, at most (the quantities of tol.c's header):
 * mu and sigma2 exact, s = 1/sqrt(sigma2 + eps), M = max|x|, X = max|xhat|,
 * the errors e_mu, atol_var + rtol_var·sigma2, r_s (relative, of s), e_xhat. */
typedef struct {
    long double mu, M, sigma2, s, X, e_mu, atol_var, rtol_var, r_s, e_xhat;
} gerr;
gerr set_error(const double *x, const size_t *idx, size_t m, double eps, long double u);
/* Each adds to t the tolerances of the outputs of its operation, from the
 * error model in docs/conformance.md ("Tolerance policy"). */
void tol_forward_train(gtest *t, const gshape *s, const double *x,
                       const double *gamma, const double *beta);
void tol_backward_train(gtest *t, const gshape *s, const double *x,
                        const double *dy, const double *gamma, const double *beta);
void tol_forward_infer(gtest *t, const gshape *s, const double *x,
                       const double *gamma, const double *beta,
                       const double *mean, const double *var);
void tol_backward_infer(gtest *t, const gshape *s, const double *x,
                        const double *dy, const double *gamma,
                        const double *mean, const double *var);
/* The error bounds of an implementation's batch mean and biased variance
 * of channel c (for the running statistics built on them). */
void tol_batch_stats(const gshape *s, const double *x, size_t c, double *e_mean,
                     double *e_var);
/* min over all values of |BN(x)| / (the fp32 tolerance of y): the ReLU
 * groups keep it >= 16, so that no correct implementation's ReLU mask can
 * differ from the oracle's. */
double relu_margin_ok(const gshape *s, const double *x, const double *gamma,
                      const double *beta);

/* ------------------------------------------------ the normalization family
 * (oracle_family.c: binary128; tol_family.c: the tolerances) */

/* A partition of a data tensor into the sets that share statistics: BN's
 * channels, GN's (example, group) blocks, Ghost BN's (virtual batch,
 * channel) blocks. Set k holds m values: idx[k·m + j] is the index of its
 * value j in the data array, chan[k·m + j] that value's channel (its gamma,
 * beta). Arena memory. */
typedef struct {
    size_t nsets, m;
    size_t *idx, *chan;
} gpart;
gpart part_channels(const gshape *s);            /* set c: channel c (BN) */
gpart part_groups(const gshape *s, size_t G);    /* set n·G + g (GN) */
gpart part_ghost(const gshape *s, size_t V);     /* set k·C + c (Ghost BN) */

/* Normalization over the sets of p, per-channel gamma, beta (NULL: 1, 0):
 * y; mean, var (biased), invstd per set. Backward in closed form per set on
 * dl/dxhat = dy·gamma; dgamma, dbeta summed per channel over all sets. */
void q_norm_forward(const gshape *s, const gpart *p, const double *x, const double *gamma,
                    const double *beta, double *y, double *mean, double *var, double *invstd);
void q_norm_backward(const gshape *s, const gpart *p, const double *x, const double *dy,
                     const double *gamma, double *dx, double *dgamma, double *dbeta);
void tol_norm_forward(gtest *t, const gshape *s, const gpart *p, const double *x,
                      const double *gamma, const double *beta);
void tol_norm_backward(gtest *t, const gshape *s, const gpart *p, const double *x,
                       const double *dy, const double *gamma);

/* Batch Renormalization (per channel; mm, msd: moving mean and sd). */
typedef struct {
    const double *mm, *msd;
    double rmax, dmax;
} grenorm;
void q_renorm_forward(const gshape *s, const grenorm *b, const double *x, const double *gamma,
                      const double *beta, double *y, double *mean, double *var,
                      double *invstd, double *r, double *d);
void q_renorm_backward(const gshape *s, const grenorm *b, const double *x, const double *dy,
                       const double *gamma, double *dx, double *dgamma, double *dbeta);
void tol_renorm_forward(gtest *t, const gshape *s, const grenorm *b, const double *x,
                        const double *gamma, const double *beta);
void tol_renorm_backward(gtest *t, const gshape *s, const grenorm *b, const double *x,
                         const double *dy, const double *gamma);
/* r and d of channel c exactly (before rounding), for the recipes. */
void q_renorm_rd(const gshape *s, const grenorm *b, const double *x, size_t c, quad *r,
                 quad *d);

/* Weight Normalization of K rows of D values. */
void q_wn_forward(size_t K, size_t D, const double *v, const double *g, double *w,
                  double *vnorm);
void q_wn_backward(size_t K, size_t D, const double *v, const double *g, const double *dw,
                   double *dv, double *dg);
void q_wn_init(size_t N, size_t K, const double *t, double *g, double *b);
void tol_wn_forward(gtest *t, int fp32, size_t K, size_t D, const double *v, const double *g);
void tol_wn_backward(gtest *t, int fp32, size_t K, size_t D, const double *v, const double *g,
                     const double *dw);
void tol_wn_init(gtest *t, int fp32, size_t N, size_t K, const double *tv);

/* ------------------------------------------------ the files */

void gen_forward_train(gfile *f, int relu);
void gen_backward_train(gfile *f, int relu);
void gen_running(gfile *f);
void gen_forward_infer(gfile *f);
void gen_backward_infer(gfile *f);
void gen_groupnorm(gfile *f);
void gen_renorm(gfile *f);
void gen_ghost(gfile *f);
void gen_weightnorm(gfile *f);
void gen_precise(gfile *f);

#endif
