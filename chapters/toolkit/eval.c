/*
 * eval.c — evaluating a network: accuracy and loss over a data set with the
 * batch, running or population statistics of its BN layers, and Algorithm 2
 * (Ioffe & Szegedy 2015), the population statistics themselves: with the
 * weights frozen, E[x] = E_B[mu_B] and Var[x] = m/(m-1)·E_B[sigma2_B] over K
 * training mini-batches, computed by bnlab's bn_population_stats.
 */
#include <stdlib.h>

#include "layers.h"

int tk_population_stats(tk_net *net, const tk_dataset *train, size_t K, size_t B,
                        unsigned long seed)
{
    if (K == 0)
        return tk_err("population statistics from 0 batches");
    for (size_t i = 0; i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        if (L->kind != TK_BATCHNORM)
            continue;
        if (L->col_cap < K) {
            float *m = realloc(L->col_mean, K * L->outC * sizeof *m);
            if (m)
                L->col_mean = m;
            float *v = realloc(L->col_var, K * L->outC * sizeof *v);
            if (v)
                L->col_var = v;
            if (!m || !v)
                return tk_err("out of memory for %zu batches of statistics", K);
            L->col_cap = K;
        }
        L->col_k = 0;
    }
    tk_batches it = {0};
    float *x = malloc(B * train->dim * sizeof *x);
    unsigned char *y = malloc(B);
    int st = (!x || !y) ? tk_err("out of memory for a batch") : tk_batches_init(&it, train, B, seed);
    for (size_t k = 0; st == 0 && k < K; k++) {
        tk_batches_next(&it, x, y);
        st = tk_forward(net, x, B, TK_COLLECT);
    }
    tk_batches_free(&it);
    free(x), free(y);
    for (size_t i = 0; st == 0 && i < net->n_layers; i++) {
        tk_layer *L = &net->layers[i];
        if (L->kind != TK_BATCHNORM)
            continue;
        int s = bn_population_stats(L->pop_mean, L->pop_var, L->col_mean, L->col_var, K,
                                    L->outC, L->col_m);
        if (s != BN_OK)
            return tk_err("batchnorm layer %zu: bn_population_stats: %s", i, bn_last_error());
        L->have_pop = 1;
    }
    return st;
}

int tk_evaluate(tk_net *net, const tk_dataset *ds, size_t n, size_t B, tk_mode mode,
                tk_eval_hook *hook, void *ctx, double *accuracy, double *loss)
{
    if (n == 0 || n > ds->n || B == 0 || B > net->max_batch)
        return tk_err("evaluate: %zu of %zu examples in batches of %zu (max %zu)", n, ds->n,
                      B, net->max_batch);
    if (mode == TK_TRAIN || mode == TK_COLLECT)
        return tk_err("evaluate: mode %s is not an evaluation mode", tk_mode_name(mode));
    size_t correct = 0, K = tk_net_out_dim(net);
    for (size_t i = 0; i < n; i++)
        if (ds->y[i] >= K)
            return tk_err("evaluate: label %u of example %zu, but the network has %zu outputs",
                          ds->y[i], i, K);
    double total = 0;
    for (size_t first = 0; first < n; first += B) {
        size_t b = n - first < B ? n - first : B;
        if (tk_forward(net, ds->x + first * ds->dim, b, mode) != 0)
            return -1;
        if (hook)
            hook(ctx, net, first, b);
        total += (double)b * tk_softmax_xent(NULL, net->act[net->n_layers - 1],
                                             ds->y + first, b, K, &correct);
    }
    *accuracy = (double)correct / (double)n;
    *loss = total / (double)n;
    return 0;
}
