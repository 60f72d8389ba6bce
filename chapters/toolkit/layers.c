/*
 * layers.c — the toolkit's layers as plain forward/backward functions:
 * dense and 2-D convolution (im2col + one GEMM each, through GSL's CBLAS
 * interface), sigmoid, ReLU, dropout, and softmax cross-entropy.
 * Declared in layers.h (kernels) and toolkit.h (tk_softmax_xent).
 */
#include <math.h>
#include <string.h>

#include <gsl/gsl_cblas.h>

#include "layers.h"

/* ------------------------------------------------------------------- dense */

void dense_forward(float *y, const float *x, const float *W, const float *b, size_t B,
                   size_t in, size_t out)
{
    /* y[B][out] = x[B][in] · W^T: W is stored [out][in], one row per unit */
    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)B, (int)out, (int)in, 1.0f,
                x, (int)in, W, (int)in, 0.0f, y, (int)out);
    if (b)
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < out; j++)
                y[i * out + j] += b[j];
}

void dense_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                    const float *W, size_t B, size_t in, size_t out)
{
    /* dW[out][in] = dy^T[out][B] · x[B][in] */
    cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)out, (int)in, (int)B, 1.0f,
                dy, (int)out, x, (int)in, 0.0f, dW, (int)in);
    if (db) {
        memset(db, 0, out * sizeof *db);
        for (size_t i = 0; i < B; i++)
            for (size_t j = 0; j < out; j++)
                db[j] += dy[i * out + j];
    }
    /* dx[B][in] = dy[B][out] · W[out][in] */
    if (dx)
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)B, (int)in, (int)out,
                    1.0f, dy, (int)out, W, (int)in, 0.0f, dx, (int)in);
}

/* ------------------------------------------------------------- convolution */

/* col[(c·kh + i)·kw + j][oh·OW + ow] = x[c][oh·s - p + i][ow·s - p + j], 0 outside. */
static void im2col(float *col, const float *x, const conv_shape *s)
{
    size_t P = s->OH * s->OW;
    for (size_t c = 0; c < s->C; c++)
        for (size_t i = 0; i < s->kh; i++)
            for (size_t j = 0; j < s->kw; j++) {
                float *row = col + ((c * s->kh + i) * s->kw + j) * P;
                for (size_t oh = 0; oh < s->OH; oh++) {
                    /* unsigned arithmetic: a row above the image wraps to a huge value */
                    size_t h = oh * s->stride + i - s->pad;
                    for (size_t ow = 0; ow < s->OW; ow++) {
                        size_t w = ow * s->stride + j - s->pad;
                        row[oh * s->OW + ow] =
                            (h < s->H && w < s->W) ? x[(c * s->H + h) * s->W + w] : 0.0f;
                    }
                }
            }
}

/* The adjoint of im2col: dx[c][h][w] += every col entry that copied x[c][h][w]. */
static void col2im(float *dx, const float *col, const conv_shape *s)
{
    size_t P = s->OH * s->OW;
    for (size_t c = 0; c < s->C; c++)
        for (size_t i = 0; i < s->kh; i++)
            for (size_t j = 0; j < s->kw; j++) {
                const float *row = col + ((c * s->kh + i) * s->kw + j) * P;
                for (size_t oh = 0; oh < s->OH; oh++) {
                    size_t h = oh * s->stride + i - s->pad;
                    if (h >= s->H)
                        continue;
                    for (size_t ow = 0; ow < s->OW; ow++) {
                        size_t w = ow * s->stride + j - s->pad;
                        if (w < s->W)
                            dx[(c * s->H + h) * s->W + w] += row[oh * s->OW + ow];
                    }
                }
            }
}

void conv2d_forward(float *y, const float *x, const float *W, const float *b, float *col,
                    size_t B, const conv_shape *s)
{
    size_t P = s->OH * s->OW, CKK = s->C * s->kh * s->kw;
    for (size_t n = 0; n < B; n++) {
        float *yn = y + n * s->K * P;
        im2col(col, x + n * s->C * s->H * s->W, s);
        /* y_n[K][P] = W[K][CKK] · col[CKK][P] */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, (int)s->K, (int)P, (int)CKK,
                    1.0f, W, (int)CKK, col, (int)P, 0.0f, yn, (int)P);
        if (b)
            for (size_t k = 0; k < s->K; k++)
                for (size_t q = 0; q < P; q++)
                    yn[k * P + q] += b[k];
    }
}

void conv2d_backward(float *dx, float *dW, float *db, const float *dy, const float *x,
                     const float *W, float *col, float *dcol, size_t B,
                     const conv_shape *s)
{
    size_t P = s->OH * s->OW, CKK = s->C * s->kh * s->kw, HW = s->H * s->W;
    if (db)
        memset(db, 0, s->K * sizeof *db);
    if (dx)
        memset(dx, 0, B * s->C * HW * sizeof *dx);
    for (size_t n = 0; n < B; n++) {
        const float *dyn = dy + n * s->K * P;
        im2col(col, x + n * s->C * HW, s);
        /* dW[K][CKK] (+)= dy_n[K][P] · col^T[P][CKK]; the first example overwrites */
        cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, (int)s->K, (int)CKK, (int)P,
                    1.0f, dyn, (int)P, col, (int)P, n ? 1.0f : 0.0f, dW, (int)CKK);
        if (db)
            for (size_t k = 0; k < s->K; k++)
                for (size_t q = 0; q < P; q++)
                    db[k] += dyn[k * P + q];
        if (dx) {
            /* dcol[CKK][P] = W^T[CKK][K] · dy_n[K][P], then scattered back */
            cblas_sgemm(CblasRowMajor, CblasTrans, CblasNoTrans, (int)CKK, (int)P,
                        (int)s->K, 1.0f, W, (int)CKK, dyn, (int)P, 0.0f, dcol, (int)P);
            col2im(dx + n * s->C * HW, dcol, s);
        }
    }
}

/* ------------------------------------------------------------- activations */

void sigmoid_forward(float *y, const float *x, size_t n)
{
    for (size_t k = 0; k < n; k++)
        y[k] = 1.0f / (1.0f + expf(-x[k])); /* expf overflows to Inf for x < -88: y = 0 */
}

void sigmoid_backward(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dx[k] = dy[k] * y[k] * (1.0f - y[k]);
}

void relu_forward(float *y, const float *x, size_t n)
{
    for (size_t k = 0; k < n; k++)
        y[k] = x[k] > 0.0f ? x[k] : 0.0f;
}

void relu_backward(float *dx, const float *dy, const float *y, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dx[k] = y[k] > 0.0f ? dy[k] : 0.0f;
}

void dropout_forward(float *y, float *mask, const float *x, size_t n, double p, gsl_rng *r)
{
    /* inverted dropout: scaling at training time keeps E[y] = x, so
     * inference is the identity */
    float keep = (float)(1.0 / (1.0 - p));
    for (size_t k = 0; k < n; k++) {
        mask[k] = gsl_rng_uniform(r) < p ? 0.0f : keep;
        y[k] = x[k] * mask[k];
    }
}

void dropout_backward(float *dx, const float *dy, const float *mask, size_t n)
{
    for (size_t k = 0; k < n; k++)
        dx[k] = dy[k] * mask[k];
}

/* ------------------------------------------------------------------- loss */

double tk_softmax_xent(float *dlogits, const float *logits, const unsigned char *labels,
                       size_t B, size_t K, size_t *correct)
{
    double total = 0;
    for (size_t i = 0; i < B; i++) {
        const float *z = logits + i * K;
        size_t arg = 0;
        for (size_t k = 1; k < K; k++)
            if (z[k] > z[arg])
                arg = k;
        if (correct && arg == labels[i])
            (*correct)++;
        /* log Σ e^z = z_max + log Σ e^(z - z_max): no overflow */
        double sum = 0;
        for (size_t k = 0; k < K; k++)
            sum += exp((double)z[k] - z[arg]);
        double logsum = z[arg] + log(sum);
        total += logsum - z[labels[i]];
        if (dlogits)
            for (size_t k = 0; k < K; k++) {
                double pk = exp((double)z[k] - logsum);
                dlogits[i * K + k] = (float)((pk - (k == labels[i])) / (double)B);
            }
    }
    return total / (double)B;
}
