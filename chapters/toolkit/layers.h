/*
 * layers.h — the toolkit's layer kernels (internal; chapters use toolkit.h).
 * Each layer is a pair of plain functions: outputs first, then inputs, then
 * sizes, as in bnlab.h. Shapes in the comments: B examples, row-major.
 */
#ifndef BNLAB_TOOLKIT_LAYERS_H
#define BNLAB_TOOLKIT_LAYERS_H

#include "toolkit.h"

/* Dense: y[B][out] = x[B][in] · W[out][in]^T + b[out] (b may be NULL). */
void dense_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                   size_t in, size_t out);
/* dW = dy^T · x, db = Σ_rows dy (if db), dx = dy · W (if dx). */
void dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                    const float *W, size_t B, size_t in, size_t out);

/* 2-D convolution (cross-correlation, as every framework computes it) of
 * x[B][C][H][W] with W[K][C][kh][kw], stride s, zero padding p, into
 * y[B][K][OH][OW]. One example at a time: col = im2col(x_n), a
 * (C·kh·kw) x (OH·OW) matrix, then y_n = W · col, one GEMM. */
typedef struct conv_shape {
    size_t C, H, W, K, kh, kw, stride, pad, OH, OW;
} conv_shape;
void conv2d_forward(float *y, const float *x, const float *W, const float *b, float *col,
                    size_t B, const conv_shape *s);
/* dW = Σ_n dy_n · col_n^T, db = Σ dy, dx_n = col2im(W^T · dy_n) (if dx). */
void conv2d_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                     const float *W, float *col, float *dcol, size_t B,
                     const conv_shape *s);

/* y = 1/(1 + e^-x); dx = dy·y·(1 - y) (from the saved output y). */
void sigmoid_forward(float *y, const float *x, size_t n);
void sigmoid_backward(float *dx, const float *dy, const float *y, size_t n);
/* y = max(0, x); dx = dy where y > 0. */
void relu_forward(float *y, const float *x, size_t n);
void relu_backward(float *dx, const float *dy, const float *y, size_t n);
/* Inverted dropout: mask = 0 with probability p, else 1/(1 - p); y = x·mask. */
void dropout_forward(float *y, float *mask, const float *x, size_t n, double p, gsl_rng *r);
void dropout_backward(float *dx, const float *dy, const float *mask, size_t n);

/* The batch-normalization layer (bnorm.c), through bnlab's switch. */
int bn_layer_forward(tk_net *net, tk_layer *L, float *y, const float *x, size_t B,
                     tk_mode mode);
int bn_layer_backward(tk_net *net, tk_layer *L, float *dx, const float *dy,
                      const float *x, size_t B);
int bn_layer_alloc(tk_layer *L);
void bn_layer_free(tk_layer *L);

#endif
