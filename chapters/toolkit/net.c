/*
 * net.c — a network as a sequence of the toolkit's layers: building it
 * (shapes and buffers), initializing it, the forward and backward passes,
 * SGD with momentum (evaluation is in eval.c).
 */
#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_randist.h>

#include "layers.h"

/* ---------------------------------------------------------------- names */

static const char *const mode_names[] = {"train", "batch", "running", "population", "collect"};

const char *tk_mode_name(tk_mode mode)
{
    return (unsigned)mode < 5 ? mode_names[mode] : "unknown";
}

int tk_mode_parse(const char *name, tk_mode *mode)
{
    for (int k = TK_EVAL_BATCH; k <= TK_EVAL_POPULATION; k++)
        if (strcmp(name, mode_names[k]) == 0) {
            *mode = (tk_mode)k;
            return 0;
        }
    return tk_err("unknown evaluation statistics '%s' (use batch, running or population)",
                  name);
}

static const char *const init_names[] = {"lecun", "glorot", "he", "fixed"};

const char *tk_init_name(tk_init init)
{
    return (unsigned)init < 4 ? init_names[init] : "unknown";
}

int tk_init_parse(const char *name, tk_init *init)
{
    for (int k = 0; k < 4; k++)
        if (strcmp(name, init_names[k]) == 0) {
            *init = (tk_init)k;
            return 0;
        }
    return tk_err("unknown initialization '%s' (use lecun, glorot, he or fixed)", name);
}

/* ------------------------------------------------------------ construction */

tk_net *tk_net_new(size_t C, size_t H, size_t W, size_t max_batch, bn_impl impl,
                   unsigned long seed)
{
    size_t total;
    if (C == 0 || H == 0 || W == 0 || max_batch == 0 ||
        __builtin_mul_overflow(C * H, W * max_batch, &total) || total > INT_MAX ||
        C > INT_MAX || H > INT_MAX || W > INT_MAX || max_batch > INT_MAX) {
        tk_err("network input %zu x %zu x %zu, batch %zu: sizes must be > 0, and a batch "
               "at most %d values", C, H, W, max_batch, INT_MAX);
        return NULL;
    }
    tk_net *net = calloc(1, sizeof *net);
    if (!net || !(net->rng = gsl_rng_alloc(gsl_rng_mt19937))) {
        free(net);
        tk_err("out of memory for a network");
        return NULL;
    }
    gsl_rng_set(net->rng, seed);
    net->impl = impl, net->max_batch = max_batch;
    net->inC = C, net->inH = H, net->inW = W;
    return net;
}

static int param_alloc(tk_param *p, size_t n, size_t fan_in, size_t fan_out, int decay)
{
    *p = (tk_param){.n = n, .fan_in = fan_in, .fan_out = fan_out, .decay = decay};
    p->w = calloc(n, sizeof *p->w);
    p->g = calloc(n, sizeof *p->g);
    p->v = calloc(n, sizeof *p->v);
    return (p->w && p->g && p->v) ? 0 : -1;
}

static void param_free(tk_param *p)
{
    free(p->w), free(p->g), free(p->v);
}

/* Appends a layer of the given kind whose input is the current output shape;
 * the caller sets the output shape and its own fields, then calls finish(). */
static tk_layer *append(tk_net *net, tk_kind kind)
{
    if (net->n_layers == net->cap) {
        size_t cap = net->cap ? 2 * net->cap : 8;
        tk_layer *l = realloc(net->layers, cap * sizeof *l);
        float **a = realloc(net->act, cap * sizeof *a);
        if (a)
            net->act = a;
        float **g = a ? realloc(net->grad, cap * sizeof *g) : NULL;
        if (g)
            net->grad = g;
        if (l)
            net->layers = l;
        if (!l || !a || !g) {
            tk_err("out of memory for a layer");
            return NULL;
        }
        net->cap = cap;
    }
    tk_layer *L = &net->layers[net->n_layers];
    *L = (tk_layer){.kind = kind};
    if (net->n_layers == 0)
        L->inC = net->inC, L->inH = net->inH, L->inW = net->inW;
    else {
        const tk_layer *prev = L - 1;
        L->inC = prev->outC, L->inH = prev->outH, L->inW = prev->outW;
    }
    L->outC = L->inC, L->outH = L->inH, L->outW = L->inW;
    L->n_in = L->inC * L->inH * L->inW;
    return L;
}

static void layer_free(tk_layer *L)
{
    param_free(&L->w), param_free(&L->b);
    free(L->col), free(L->dcol), free(L->mask);
    if (L->kind == TK_BATCHNORM)
        bn_layer_free(L);
}

/* Allocates the layer's output and gradient buffers and makes it part of the
 * net. Every size must fit the int that CBLAS takes. */
static int finish(tk_net *net, tk_layer *L, int ok)
{
    size_t i = net->n_layers, total;
    L->n_out = L->outC * L->outH * L->outW;
    if (__builtin_mul_overflow(net->max_batch, L->n_out, &total) || total > INT_MAX ||
        net->max_batch * L->n_in > INT_MAX || L->w.n > INT_MAX) {
        layer_free(L);
        return tk_err("layer %zu: %zu x %zu values per batch is too large", i, net->max_batch,
                      L->n_out > L->n_in ? L->n_out : L->n_in);
    }
    net->act[i] = ok ? calloc(total, sizeof(float)) : NULL;
    net->grad[i] = ok ? calloc(total, sizeof(float)) : NULL;
    if (!net->act[i] || !net->grad[i]) {
        free(net->act[i]), free(net->grad[i]);
        layer_free(L);
        return tk_err("out of memory for layer %zu", i);
    }
    net->n_layers++;
    return 0;
}

int tk_dense(tk_net *net, size_t n_out, int bias)
{
    tk_layer *L = n_out ? append(net, TK_DENSE) : NULL;
    if (!L)
        return n_out ? -1 : tk_err("dense layer with 0 units");
    L->outC = n_out, L->outH = L->outW = 1;
    int ok = param_alloc(&L->w, n_out * L->n_in, L->n_in, n_out, 1) == 0 &&
             (!bias || param_alloc(&L->b, n_out, 0, 0, 0) == 0);
    return finish(net, L, ok);
}

int tk_conv2d(tk_net *net, size_t K, size_t kh, size_t kw, size_t stride, size_t pad, int bias)
{
    tk_layer *L = append(net, TK_CONV2D);
    if (!L)
        return -1;
    if (K == 0 || kh == 0 || kw == 0 || stride == 0 || L->inH + 2 * pad < kh ||
        L->inW + 2 * pad < kw)
        return tk_err("conv2d: %zu filters of %zu x %zu, stride %zu, padding %zu do not fit "
                      "an input of %zu x %zu", K, kh, kw, stride, pad, L->inH, L->inW);
    L->kh = kh, L->kw = kw, L->stride = stride, L->pad = pad;
    L->outC = K;
    L->outH = (L->inH + 2 * pad - kh) / stride + 1;
    L->outW = (L->inW + 2 * pad - kw) / stride + 1;
    size_t CKK = L->inC * kh * kw, P = L->outH * L->outW;
    if (kh > INT_MAX || kw > INT_MAX || CKK > INT_MAX / P)
        return tk_err("conv2d: the im2col matrix (%zu x %zu) is too large", CKK, P);
    L->col = malloc(CKK * P * sizeof *L->col);
    L->dcol = malloc(CKK * P * sizeof *L->dcol);
    int ok = L->col && L->dcol && param_alloc(&L->w, K * CKK, CKK, K * kh * kw, 1) == 0 &&
             (!bias || param_alloc(&L->b, K, 0, 0, 0) == 0);
    return finish(net, L, ok);
}

int tk_batchnorm(tk_net *net, double eps, bn_running_rule rule, double momentum)
{
    if (!(eps >= 0) || !(momentum >= 0 && momentum <= 1))
        return tk_err("batchnorm: eps = %g must be >= 0 and momentum = %g in [0, 1]", eps,
                      momentum);
    tk_layer *L = append(net, TK_BATCHNORM);
    if (!L)
        return -1;
    L->eps = eps, L->rule = rule, L->momentum = momentum;
    int ok = param_alloc(&L->w, L->outC, 0, 0, 0) == 0 &&
             param_alloc(&L->b, L->outC, 0, 0, 0) == 0 && bn_layer_alloc(L) == 0;
    for (size_t c = 0; ok && c < L->outC; c++)
        L->w.w[c] = 1.0f;
    return finish(net, L, ok);
}

static int simple_layer(tk_net *net, tk_kind kind)
{
    tk_layer *L = append(net, kind);
    return L ? finish(net, L, 1) : -1;
}

int tk_sigmoid(tk_net *net) { return simple_layer(net, TK_SIGMOID); }
int tk_relu(tk_net *net) { return simple_layer(net, TK_RELU); }

int tk_dropout(tk_net *net, double p)
{
    if (!(p >= 0 && p < 1))
        return tk_err("dropout: p = %g must be in [0, 1)", p);
    tk_layer *L = append(net, TK_DROPOUT);
    if (!L)
        return -1;
    L->p = p;
    L->mask = malloc(net->max_batch * L->n_in * sizeof *L->mask);
    return finish(net, L, L->mask != NULL);
}

void tk_net_free(tk_net *net)
{
    if (!net)
        return;
    for (size_t i = 0; i < net->n_layers; i++) {
        layer_free(&net->layers[i]);
        free(net->act[i]), free(net->grad[i]);
    }
    free(net->layers), free(net->act), free(net->grad), free(net->dinput);
    gsl_rng_free(net->rng);
    free(net);
}

size_t tk_net_out_dim(const tk_net *net)
{
    return net->n_layers ? net->layers[net->n_layers - 1].n_out
                         : net->inC * net->inH * net->inW;
}

const float *tk_act(const tk_net *net, size_t i) { return net->act[i]; }

/* ---------------------------------------------------------- initialization */

void tk_net_params(tk_net *net, void (*fn)(void *ctx, size_t layer, tk_param *p), void *ctx)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        if (L->w.n)
            fn(ctx, i, &L->w);
        if (L->b.n)
            fn(ctx, i, &L->b);
    }
}

void tk_net_init(tk_net *net, gsl_rng *r, tk_init rule, double fixed_std)
{
    for (size_t i = 0; i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        if (L->kind == TK_DENSE || L->kind == TK_CONV2D) {
            double in = (double)L->w.fan_in, out = (double)L->w.fan_out;
            double std = rule == TK_INIT_LECUN    ? 1 / sqrt(in)
                         : rule == TK_INIT_GLOROT ? sqrt(2 / (in + out))
                         : rule == TK_INIT_HE     ? sqrt(2 / in)
                                                  : fixed_std;
            for (size_t k = 0; k < L->w.n; k++)
                L->w.w[k] = (float)gsl_ran_gaussian(r, std);
            if (L->b.n)
                memset(L->b.w, 0, L->b.n * sizeof(float));
        }
        if (L->kind == TK_BATCHNORM)
            for (size_t c = 0; c < L->outC; c++) {
                L->w.w[c] = 1, L->b.w[c] = 0;
                L->run_mean[c] = 0, L->run_var[c] = 1;
                L->num_batches = 0, L->have_pop = 0;
            }
        if (L->w.n)
            memset(L->w.v, 0, L->w.n * sizeof(float));
        if (L->b.n)
            memset(L->b.v, 0, L->b.n * sizeof(float));
    }
}

/* ------------------------------------------------------------ the passes */

static conv_shape shape_of(const tk_layer *L)
{
    return (conv_shape){.C = L->inC, .H = L->inH, .W = L->inW, .K = L->outC, .kh = L->kh,
                        .kw = L->kw, .stride = L->stride, .pad = L->pad, .OH = L->outH,
                        .OW = L->outW};
}

int tk_forward(tk_net *net, const float *x, size_t B, tk_mode mode)
{
    if (B == 0 || B > net->max_batch)
        return tk_err("forward: batch of %zu, this network takes 1 to %zu", B,
                      net->max_batch);
    net->in = x, net->B = B, net->trained = 0;
    for (size_t i = 0; i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        const float *in = i ? net->act[i - 1] : x;
        float *out = net->act[i];
        size_t n = B * L->n_out;
        conv_shape s;
        switch (L->kind) {
        case TK_DENSE:
            dense_forward(out, in, L->w.w, L->b.n ? L->b.w : NULL, B, L->n_in, L->n_out);
            break;
        case TK_CONV2D:
            s = shape_of(L);
            conv2d_forward(out, in, L->w.w, L->b.n ? L->b.w : NULL, L->col, B, &s);
            break;
        case TK_BATCHNORM:
            if (bn_layer_forward(net, L, out, in, B, mode) != 0)
                return -1;
            break;
        case TK_SIGMOID:
            sigmoid_forward(out, in, n);
            break;
        case TK_RELU:
            relu_forward(out, in, n);
            break;
        case TK_DROPOUT:
            /* on in training only; Algorithm 2's statistics see the inference network */
            if (mode == TK_TRAIN)
                dropout_forward(out, L->mask, in, n, L->p, net->rng);
            else
                memcpy(out, in, n * sizeof *out);
            break;
        }
    }
    net->trained = mode == TK_TRAIN;
    return 0;
}

int tk_backward(tk_net *net, const float *dout)
{
    if (!net->trained)
        return tk_err("backward: the last forward was not in training mode");
    if (net->n_layers == 0)
        return 0;
    size_t B = net->B, last = net->n_layers - 1;
    memcpy(net->grad[last], dout, B * net->layers[last].n_out * sizeof *dout);
    for (size_t i = net->n_layers; i-- > 0;) {
        tk_layer *L = &net->layers[i];
        const float *in = i ? net->act[i - 1] : net->in;
        const float *dy = net->grad[i];
        /* the input's gradient: kept only if asked for (the tests) */
        float *dx = i ? net->grad[i - 1] : net->dinput;
        size_t n = B * L->n_out;
        conv_shape s;
        switch (L->kind) {
        case TK_DENSE:
            dense_backward(dx, L->w.g, L->b.n ? L->b.g : NULL, dy, in, L->w.w, B, L->n_in,
                           L->n_out);
            break;
        case TK_CONV2D:
            s = shape_of(L);
            conv2d_backward(dx, L->w.g, L->b.n ? L->b.g : NULL, dy, in, L->w.w, L->col,
                            L->dcol, B, &s);
            break;
        case TK_BATCHNORM:
            if (!dx)
                return tk_err("backward: a batchnorm first layer needs tk_net_want_dinput");
            if (bn_layer_backward(net, L, dx, dy, in, B) != 0)
                return -1;
            break;
        case TK_SIGMOID:
            if (dx)
                sigmoid_backward(dx, dy, net->act[i], n);
            break;
        case TK_RELU:
            if (dx)
                relu_backward(dx, dy, net->act[i], n);
            break;
        case TK_DROPOUT:
            if (dx)
                dropout_backward(dx, dy, L->mask, n);
            break;
        }
    }
    return 0;
}

int tk_net_want_dinput(tk_net *net)
{
    size_t n = net->max_batch * net->inC * net->inH * net->inW;
    if (!net->dinput && !(net->dinput = calloc(n, sizeof(float))))
        return tk_err("out of memory for the input gradient");
    return 0;
}

/* -------------------------------------------------------------- optimizer */

void tk_sgd_step(tk_net *net, const tk_sgd *opt)
{
    float lr = (float)opt->lr, mom = (float)opt->momentum, wd = (float)opt->weight_decay;
    for (size_t i = 0; i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        tk_param *ps[2] = {&L->w, &L->b};
        for (int j = 0; j < 2; j++) {
            tk_param *p = ps[j];
            float decay = p->decay ? wd : 0.0f;
            for (size_t k = 0; k < p->n; k++) {
                p->v[k] = mom * p->v[k] + p->g[k] + decay * p->w[k];
                p->w[k] -= lr * p->v[k];
            }
        }
        L->have_pop = 0; /* the weights moved: Algorithm 2's statistics are stale */
    }
}
