/*
 * toolkit.h — the small training toolkit that every chapter links (never
 * copies): data (IDX files, a shuffled mini-batch iterator), layers (dense,
 * 2-D convolution by im2col + GEMM, sigmoid, ReLU, dropout, and batch
 * normalization through bnlab's run-time switch), softmax cross-entropy,
 * SGD with momentum, weight initialization, evaluation with batch, running or
 * population statistics, and the chapters' shared command line and progress.
 *
 * Everything is float (the switch's precision), row-major, NCHW. A network is
 * a sequence of layers; tk_forward / tk_backward run it on a mini-batch of B
 * examples, B <= the max_batch given to tk_net_new. GEMMs go through GSL's
 * CBLAS interface (gsl/gsl_cblas.h); the chapters link OpenBLAS behind it,
 * the tests GSL's own reference CBLAS.
 *
 * Errors: a toolkit function that fails prints "<program>: <what, where>" on
 * stderr (tk_set_quiet(1) keeps it silent), keeps the message for
 * tk_last_error(), and returns -1 (or NULL). Nothing in here exits.
 */
#ifndef BNLAB_TOOLKIT_H
#define BNLAB_TOOLKIT_H

#include <stddef.h>
#include <stdio.h>

#include <gsl/gsl_rng.h>

#include "bnlab.h"

/* ------------------------------------------------------------- messages */

void tk_set_progname(const char *name);      /* prefix of every message */
const char *tk_progname(void);
void tk_set_quiet(int quiet);                /* 1: keep messages, print none */
const char *tk_last_error(void);             /* "" if none */
/* Records (and unless quiet prints) one message; returns -1 for `return tk_err(...)`. */
int tk_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* Information on stderr ("<program>: ..."), unless quiet; not kept. */
void tk_note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* ------------------------------------------------------------ IDX files */

/* An IDX file (the MNIST format): a 4-byte magic 0x00 0x00 <type> <ndims>,
 * ndims big-endian uint32 sizes, then the values. Only type 0x08 (unsigned
 * byte, what MNIST and Fashion-MNIST use) is accepted. */
typedef struct tk_idx {
    unsigned char *data;  /* prod(dims) values, row-major as stored */
    size_t dims[3];
    int ndims;            /* 1..3 */
    size_t count;         /* prod(dims) */
} tk_idx;

/* Reads path (gzip-compressed or plain: zlib tells them apart) and checks it
 * strictly: magic, type, ndims == want_ndims, every size > 0, the size
 * product (no overflow, at most 1 GiB), exactly that many bytes and not one
 * more. On failure the message names the file and the problem. */
int tk_idx_read(tk_idx *a, const char *path, int want_ndims);
void tk_idx_free(tk_idx *a);

/* --------------------------------------------------------------- data set */

#define TK_DEFAULT_DATA_DIR "/usr/share/datasets/fashion-mnist"
#define TK_CLASSES 10

typedef struct tk_dataset {
    size_t n;            /* examples */
    size_t C, H, W, dim; /* one example: C = 1 channel of H x W pixels, dim = C·H·W */
    float *x;            /* n·dim values, pixel / 255 in [0, 1] */
    unsigned char *y;    /* n labels in [0, TK_CLASSES) */
} tk_dataset;

/* Loads split "train" or "t10k" of an MNIST-format directory:
 * <split>-images-idx3-ubyte[.gz] and <split>-labels-idx1-ubyte[.gz]. Checks
 * that the counts agree and every label is < TK_CLASSES. If the files are
 * missing, the message says how to get them. */
int tk_dataset_load(tk_dataset *ds, const char *dir, const char *split);
void tk_dataset_free(tk_dataset *ds);

/* Shuffled mini-batches without replacement: a fresh permutation (GSL,
 * seeded) every epoch; the last n mod B examples of an epoch are skipped, as
 * the next permutation comes before a partial batch would. */
typedef struct tk_batches {
    const tk_dataset *ds;
    size_t B, pos, epoch;
    size_t *order;
    gsl_rng *rng;
} tk_batches;

int tk_batches_init(tk_batches *it, const tk_dataset *ds, size_t B, unsigned long seed);
/* Copies the next B examples into x[B·dim] and their labels into y[B]. */
void tk_batches_next(tk_batches *it, float *x, unsigned char *y);
void tk_batches_free(tk_batches *it);

/* ---------------------------------------------------------------- network */

typedef enum tk_mode {
    TK_TRAIN,           /* BN: batch statistics, running ones updated; dropout on */
    TK_EVAL_BATCH,      /* BN: the evaluated batch's own statistics; nothing updated */
    TK_EVAL_RUNNING,    /* BN: running averages (bn_running_update's rule) */
    TK_EVAL_POPULATION, /* BN: Algorithm 2's population statistics (tk_population_stats) */
    TK_COLLECT          /* internal: batch statistics, kept for Algorithm 2 */
} tk_mode;

const char *tk_mode_name(tk_mode mode);     /* "batch", "running", "population" */
int tk_mode_parse(const char *name, tk_mode *mode);

typedef enum tk_kind { TK_DENSE, TK_CONV2D, TK_BATCHNORM, TK_SIGMOID, TK_RELU, TK_DROPOUT } tk_kind;

/* A learnable array: values, gradient (of the last tk_backward), momentum. */
typedef struct tk_param {
    float *w, *g, *v;
    size_t n;
    size_t fan_in, fan_out; /* for initialization; 0 for biases and BN */
    int decay;              /* 1: weight decay applies (weights, not biases, gamma or beta) */
} tk_param;

typedef struct tk_layer {
    tk_kind kind;
    size_t inC, inH, inW, outC, outH, outW; /* per-example shapes */
    size_t n_in, n_out;                      /* inC·inH·inW, outC·outH·outW */
    tk_param w, b;        /* dense, conv: weights, bias (b.n = 0 without);
                             batchnorm: w = gamma, b = beta */
    /* conv2d: kernel, stride, zero padding; col is one example's im2col */
    size_t kh, kw, stride, pad;
    float *col, *dcol;
    /* batchnorm */
    double eps, momentum;
    bn_running_rule rule;
    float *mean, *var_biased, *invstd;      /* the last batch's, kept for backward */
    float *run_mean, *run_var;              /* running statistics */
    size_t num_batches;
    float *pop_mean, *pop_var;              /* Algorithm 2 (valid if have_pop) */
    int have_pop;
    float *col_mean, *col_var;              /* TK_COLLECT: K batches' statistics */
    size_t col_k, col_cap, col_m;
    /* dropout */
    double p;
    float *mask;
} tk_layer;

typedef struct tk_net {
    bn_impl impl;          /* behind every batch-normalization layer */
    size_t max_batch;
    size_t n_layers, cap;
    tk_layer *layers;
    const float *in;       /* the input of the last forward (the caller's array) */
    float **act;           /* act[i] = output of layer i, max_batch·n_out values */
    float **grad;          /* grad[i] = dLoss/d act[i] */
    size_t B;              /* batch size of the last forward */
    int trained;           /* 1 if the last forward was TK_TRAIN (backward may run) */
    float *dinput;         /* dLoss/d input, if tk_net_want_dinput was called */
    gsl_rng *rng;          /* dropout masks */
    size_t inC, inH, inW;
} tk_net;

/* An empty network taking examples of C x H x W values, up to max_batch at a
 * time, with batch normalization by impl; seed drives dropout. NULL on error. */
tk_net *tk_net_new(size_t C, size_t H, size_t W, size_t max_batch, bn_impl impl,
                   unsigned long seed);
void tk_net_free(tk_net *net);

/* Layers are appended in order; each returns 0 or -1 (bad shape, no memory). */
int tk_dense(tk_net *net, size_t n_out, int bias);
int tk_conv2d(tk_net *net, size_t K, size_t kh, size_t kw, size_t stride, size_t pad,
              int bias);
/* Batch normalization over the previous layer's output: per unit for a
 * vector (Alg. 1), per channel over N·H·W for a feature map (§3.2).
 * gamma = 1, beta = 0; running statistics by rule with momentum. */
int tk_batchnorm(tk_net *net, double eps, bn_running_rule rule, double momentum);
int tk_sigmoid(tk_net *net);
int tk_relu(tk_net *net);
int tk_dropout(tk_net *net, double p); /* drop probability p in [0, 1) */

size_t tk_net_out_dim(const tk_net *net);
/* The output of layer i of the last forward: B x layers[i].n_out. */
const float *tk_act(const tk_net *net, size_t i);

/* Initialization: weights ~ Normal(0, std^2) with std by rule, biases 0,
 * gamma 1, beta 0, momentum buffers 0, running statistics (0, 1). */
typedef enum tk_init {
    TK_INIT_LECUN,   /* std = 1/sqrt(fan_in): unit variance through a linear layer */
    TK_INIT_GLOROT,  /* std = sqrt(2/(fan_in + fan_out)) */
    TK_INIT_HE,      /* std = sqrt(2/fan_in): for ReLU */
    TK_INIT_FIXED    /* std = the given value for every layer */
} tk_init;
int tk_init_parse(const char *name, tk_init *init);
const char *tk_init_name(tk_init init);
void tk_net_init(tk_net *net, gsl_rng *r, tk_init rule, double fixed_std);

/* Forward on x[B·n_in]. 0, or -1 with a message (bnlab error, B too large). */
int tk_forward(tk_net *net, const float *x, size_t B, tk_mode mode);
/* Backward of the last TK_TRAIN forward from dout[B·out_dim]: fills every
 * parameter's gradient (no accumulation across calls). */
int tk_backward(tk_net *net, const float *dout);
/* Makes tk_backward also compute the gradient of the input, into net->dinput
 * (skipped otherwise: for a dense first layer it is the largest GEMM). */
int tk_net_want_dinput(tk_net *net);

/* Softmax + cross-entropy over K classes (labels < K: the caller checks):
 * returns the mean loss over the B
 * examples (double accumulation, max-subtracted); *correct += argmax hits
 * (ties: the lowest index). If dlogits is not NULL it receives
 * d(mean loss)/d logits = (softmax - onehot)/B. */
double tk_softmax_xent(float *dlogits, const float *logits, const unsigned char *labels,
                       size_t B, size_t K, size_t *correct);

/* SGD with momentum (the PyTorch form): g += weight_decay·w (weights only);
 * v = momentum·v + g; w -= lr·v. */
typedef struct tk_sgd {
    double lr, momentum, weight_decay;
} tk_sgd;
void tk_sgd_step(tk_net *net, const tk_sgd *opt);

/* Visits every parameter: fn(ctx, layer index, param). */
void tk_net_params(tk_net *net, void (*fn)(void *ctx, size_t layer, tk_param *p), void *ctx);

/* Algorithm 2: with the weights frozen, runs K mini-batches of B training
 * examples (drawn with seed) through the network in training mode, keeps each
 * BN layer's batch means and biased variances, and stores the population
 * statistics E[x] = E_B[mu_B], Var[x] = m/(m-1)·E_B[sigma2_B] for
 * TK_EVAL_POPULATION. Running statistics are not touched. */
int tk_population_stats(tk_net *net, const tk_dataset *train, size_t K, size_t B,
                        unsigned long seed);

/* Called by tk_evaluate after the forward of examples [first, first + B). */
typedef void tk_eval_hook(void *ctx, const tk_net *net, size_t first, size_t B);

/* Accuracy and mean cross-entropy of the network on the first n examples of
 * ds, in batches of B (<= max_batch; the last batch may be smaller, except
 * that TK_EVAL_BATCH needs at least 2 examples per batch). Every label must
 * be below the network's output dimension. */
int tk_evaluate(tk_net *net, const tk_dataset *ds, size_t n, size_t B, tk_mode mode,
                tk_eval_hook *hook, void *ctx, double *accuracy, double *loss);

/* ------------------------------------------------- the chapters' programs */

/* One command-line option. Types: TK_OPT_ULONG (unsigned long *), TK_OPT_SIZE
 * (size_t *, > 0), TK_OPT_DOUBLE (double *, finite), TK_OPT_STRING (const
 * char **, non-empty), TK_OPT_FLAG (int *, set to 1, takes no value). */
typedef enum tk_opt_type { TK_OPT_ULONG, TK_OPT_SIZE, TK_OPT_DOUBLE, TK_OPT_STRING, TK_OPT_FLAG } tk_opt_type;
typedef struct tk_opt {
    const char *name; /* "--seed" */
    tk_opt_type type;
    void *dst;
} tk_opt;

/* Parses argv against opts[n]; "--name VALUE" and "--name=VALUE". Returns 0
 * to run, 1 after --help (usage printed on stdout), 2 after printing what is
 * wrong (the exit status for bad usage). */
int tk_parse_args(int argc, char **argv, const tk_opt *opts, size_t n,
                  void (*usage)(FILE *f));

/* --impl: NULL means the default, fast if this bnlab has it, else ref.
 * Prints the choice (and why) on stderr. Returns 0, or 2 with a message if the
 * name is unknown or the implementation is not built (the exit status). */
int tk_impl_select(const char *name, bn_impl *impl);

/* Restricts the BLAS to one thread (OpenBLAS; the chapters parallelize across
 * networks instead) and returns a description of the BLAS in use. */
const char *tk_blas_setup(void);

/* Seconds on a monotonic clock. */
double tk_now(void);

/* Progress on stderr, at most every `every` seconds and at the end:
 * "<label> step 1200/50000  loss 0.512  acc 81.2%  1450 steps/s  ETA 34 s". */
typedef struct tk_progress {
    const char *label;
    size_t total;
    double start, last, every;
} tk_progress;
void tk_progress_start(tk_progress *p, const char *label, size_t total);
void tk_progress_update(tk_progress *p, size_t step, double loss, double acc, int force);

/* Writing a result file without ever leaving a half-written one: writes go
 * to "<path>.tmp", tk_file_commit renames it over path (make sees either the
 * old complete file or the new one). */
typedef struct tk_file {
    FILE *f;
    char path[1024], tmp[1040];
} tk_file;
int tk_file_open(tk_file *tf, const char *path);
int tk_file_commit(tk_file *tf);  /* closes; -1 on any write error (tmp removed) */
void tk_file_abort(tk_file *tf);

#endif
