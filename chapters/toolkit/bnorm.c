/*
 * bnorm.c — the batch-normalization layer of the toolkit: Algorithm 1 in
 * training (bnlab's bn_forward_train / bn_backward_train), the running
 * averages (bn_running_update), and inference with the evaluated batch's own,
 * the running, or Algorithm 2's population statistics (bn_forward_infer,
 * bn_population_stats). Every call goes through bnlab's run-time switch with
 * the network's implementation (--impl ref|fast|cuda); nothing of the
 * normalization is recomputed here.
 *
 * The layer sees the previous layer's output as a bnlab tensor: a vector of
 * D units is (N = B, C = D, 1, 1), Alg. 1 per activation; a feature map is
 * (B, C, H, W) in NCHW, one (gamma, beta) per channel and statistics over
 * m' = B·H·W values (paper §3.2).
 */
#include <stdlib.h>

#include "layers.h"

static bn_desc layer_desc(const tk_layer *L, size_t B)
{
    return bn_desc_make(B, L->outC, L->outH, L->outW, BN_NCHW, L->eps);
}

/* A bnlab error as a toolkit message, with the layer and the call. */
static int bn_fail(const tk_net *net, const tk_layer *L, const char *call, int st)
{
    return tk_err("batchnorm layer (%zu channels), %s(%s): %s (%s)", L->outC, call,
                  bn_impl_name(net->impl), bn_last_error(), bn_strerror(st));
}

int bn_layer_alloc(tk_layer *L)
{
    size_t C = L->outC;
    float **arrays[] = {&L->mean, &L->var_biased, &L->invstd, &L->run_mean, &L->run_var,
                        &L->pop_mean, &L->pop_var};
    for (size_t k = 0; k < sizeof arrays / sizeof *arrays; k++)
        if (!(*arrays[k] = calloc(C, sizeof(float))))
            return -1;
    for (size_t c = 0; c < C; c++)
        L->run_var[c] = 1.0f;
    return 0;
}

void bn_layer_free(tk_layer *L)
{
    float *arrays[] = {L->mean, L->var_biased, L->invstd, L->run_mean, L->run_var,
                       L->pop_mean, L->pop_var, L->col_mean, L->col_var};
    for (size_t k = 0; k < sizeof arrays / sizeof *arrays; k++)
        free(arrays[k]);
}

int bn_layer_forward(tk_net *net, tk_layer *L, float *y, const float *x, size_t B,
                     tk_mode mode)
{
    bn_desc d = layer_desc(L, B);
    size_t C = L->outC, m = B * L->outH * L->outW;
    const float *gamma = L->w.w, *beta = L->b.w;
    int st;
    switch (mode) {
    case TK_TRAIN:
        /* Algorithm 1; mean and invstd are kept for the backward pass */
        st = bn_forward_train(net->impl, y, L->mean, L->var_biased, L->invstd, x, gamma,
                              beta, &d);
        if (st != BN_OK)
            return bn_fail(net, L, "bn_forward_train", st);
        st = bn_running_update(net->impl, L->run_mean, L->run_var, &L->num_batches, L->mean,
                               L->var_biased, C, m, L->rule, L->momentum);
        if (st != BN_OK)
            return bn_fail(net, L, "bn_running_update", st);
        return 0;
    case TK_EVAL_BATCH:
        /* normalized by this batch's own statistics; nothing is kept */
        st = bn_forward_train(net->impl, y, L->mean, L->var_biased, L->invstd, x, gamma,
                              beta, &d);
        return st == BN_OK ? 0 : bn_fail(net, L, "bn_forward_train", st);
    case TK_COLLECT:
        if (L->col_k >= L->col_cap)
            return tk_err("batchnorm layer: more batches than tk_population_stats planned");
        st = bn_forward_train(net->impl, y, L->col_mean + L->col_k * C,
                              L->col_var + L->col_k * C, NULL, x, gamma, beta, &d);
        if (st != BN_OK)
            return bn_fail(net, L, "bn_forward_train", st);
        L->col_k++;
        L->col_m = m;
        return 0;
    case TK_EVAL_RUNNING:
        st = bn_forward_infer(net->impl, y, x, gamma, beta, L->run_mean, L->run_var, &d);
        return st == BN_OK ? 0 : bn_fail(net, L, "bn_forward_infer", st);
    case TK_EVAL_POPULATION:
        if (!L->have_pop)
            return tk_err("batchnorm layer: no population statistics for these weights: "
                          "call tk_population_stats after the last training step");
        st = bn_forward_infer(net->impl, y, x, gamma, beta, L->pop_mean, L->pop_var, &d);
        return st == BN_OK ? 0 : bn_fail(net, L, "bn_forward_infer", st);
    }
    return tk_err("batchnorm layer: unknown mode %d", (int)mode);
}

int bn_layer_backward(tk_net *net, tk_layer *L, float *dx, const float *dy,
                      const float *x, size_t B)
{
    bn_desc d = layer_desc(L, B);
    int st = bn_backward_train(net->impl, dx, L->w.g, L->b.g, dy, x, L->mean, L->invstd,
                               L->w.w, &d);
    return st == BN_OK ? 0 : bn_fail(net, L, "bn_backward_train", st);
}
