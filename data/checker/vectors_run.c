/*
 * vectors_run.c — runs one conformance test through bnlab's public API,
 * the way a user would: training backward gets its saved mean and invstd
 * (and y, for the fused ReLU) from the same implementation's training
 * forward; running statistics come from that forward's batch mean and
 * biased variance, batch after batch (bn_running_update, or
 * bn_population_stats for Algorithm 2).
 *
 * target.use_double: bn_<op>_ref on doubles. Otherwise the float switch
 * bn_<op>(target.impl, ...): the inputs of fp32 groups are binary32 values,
 * so rounding them to float is exact; float outputs are widened to double
 * (exact) for the comparison. The normalization family's groups run in
 * vectors_family.c.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vectors.h"
#include "vectors_internal.h"

static void run_forward_train(const bnv_group *g, const bnv_test *t, bnv_target T,
                              bnv_result *res, pool *P)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    double *y = out(res, P, "y", n, 0), *mean = out(res, P, "mean", C, 0);
    double *var = out(res, P, "varBiased", C, 0), *inv = out(res, P, "invstd", C, 0);
    if (P->nomem)
        return;
    if (T.use_double) {
        int (*f)(double *, double *, double *, double *, const double *, const double *,
                 const double *, const bn_desc *) = g->relu ? bn_forward_train_relu_ref
                                                            : bn_forward_train_ref;
        fails(res, f(y, mean, var, inv, din(t, "x"), din(t, "gamma"), din(t, "beta"), d),
              g->relu ? "bn_forward_train_relu_ref" : "bn_forward_train_ref");
        return;
    }
    float *x = fin(P, t, "x"), *ga = fin(P, t, "gamma"), *be = fin(P, t, "beta");
    float *fy = palloc(P, n, 4), *fm = palloc(P, C, 4), *fv = palloc(P, C, 4), *fs = palloc(P, C, 4);
    if (P->nomem)
        return;
    int st = g->relu ? bn_forward_train_relu(T.impl, fy, fm, fv, fs, x, ga, be, d)
                     : bn_forward_train(T.impl, fy, fm, fv, fs, x, ga, be, d);
    if (fails(res, st, g->relu ? "bn_forward_train_relu" : "bn_forward_train"))
        return;
    widen(y, fy, n), widen(mean, fm, C), widen(var, fv, C), widen(inv, fs, C);
}

static void run_backward_train(const bnv_group *g, const bnv_test *t, bnv_target T,
                               bnv_result *res, pool *P)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    double *dx = out(res, P, "dx", n, 0);
    double *dg = d->affine ? out(res, P, "dgamma", C, 0) : NULL;
    double *db = d->affine ? out(res, P, "dbeta", C, 0) : NULL;
    if (P->nomem)
        return;
    if (T.use_double) {
        double *y = palloc(P, n, 8), *mean = palloc(P, C, 8), *var = palloc(P, C, 8), *inv = palloc(P, C, 8);
        const double *x = din(t, "x"), *dy = din(t, "dy"), *ga = din(t, "gamma"), *be = din(t, "beta");
        if (P->nomem)
            return;
        if (g->relu) {
            if (!fails(res, bn_forward_train_relu_ref(y, mean, var, inv, x, ga, be, d),
                       "bn_forward_train_relu_ref"))
                fails(res, bn_backward_train_relu_ref(dx, dg, db, dy, y, x, mean, inv, ga, d),
                      "bn_backward_train_relu_ref");
        } else if (!fails(res, bn_forward_train_ref(y, mean, var, inv, x, ga, be, d),
                          "bn_forward_train_ref"))
            fails(res, bn_backward_train_ref(dx, dg, db, dy, x, mean, inv, ga, d),
                  "bn_backward_train_ref");
        return;
    }
    float *x = fin(P, t, "x"), *dy = fin(P, t, "dy"), *ga = fin(P, t, "gamma"), *be = fin(P, t, "beta");
    float *y = palloc(P, n, 4), *mean = palloc(P, C, 4), *var = palloc(P, C, 4), *inv = palloc(P, C, 4);
    float *fdx = palloc(P, n, 4), *fdg = palloc(P, C, 4), *fdb = palloc(P, C, 4);
    if (P->nomem)
        return;
    if (g->relu) {
        if (fails(res, bn_forward_train_relu(T.impl, y, mean, var, inv, x, ga, be, d),
                  "bn_forward_train_relu") ||
            fails(res, bn_backward_train_relu(T.impl, fdx, fdg, fdb, dy, y, x, mean, inv, ga, d),
                  "bn_backward_train_relu"))
            return;
    } else if (fails(res, bn_forward_train(T.impl, y, mean, var, inv, x, ga, be, d),
                     "bn_forward_train") ||
               fails(res, bn_backward_train(T.impl, fdx, fdg, fdb, dy, x, mean, inv, ga, d),
                     "bn_backward_train"))
        return;
    widen(dx, fdx, n), widen(dg, fdg, C), widen(db, fdb, C);
}

static void run_infer(const bnv_group *g, const bnv_test *t, bnv_target T, bnv_result *res,
                      pool *P, int backward)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    double *y = out(res, P, backward ? "dx" : "y", n, 0);
    double *dg = backward && d->affine ? out(res, P, "dgamma", C, 0) : NULL;
    double *db = backward && d->affine ? out(res, P, "dbeta", C, 0) : NULL;
    if (P->nomem)
        return;
    if (T.use_double) {
        const double *x = din(t, "x"), *ga = din(t, "gamma"), *m = din(t, "mean"), *v = din(t, "var");
        if (backward)
            fails(res, bn_backward_infer_ref(y, dg, db, din(t, "dy"), x, ga, m, v, d),
                  "bn_backward_infer_ref");
        else
            fails(res, bn_forward_infer_ref(y, x, ga, din(t, "beta"), m, v, d), "bn_forward_infer_ref");
        return;
    }
    float *x = fin(P, t, "x"), *ga = fin(P, t, "gamma"), *m = fin(P, t, "mean"), *v = fin(P, t, "var");
    float *fy = palloc(P, n, 4), *fdg = palloc(P, C, 4), *fdb = palloc(P, C, 4);
    float *dy = backward ? fin(P, t, "dy") : NULL, *be = backward ? NULL : fin(P, t, "beta");
    if (P->nomem)
        return;
    if (backward ? fails(res, bn_backward_infer(T.impl, fy, fdg, fdb, dy, x, ga, m, v, d), "bn_backward_infer")
                 : fails(res, bn_forward_infer(T.impl, fy, x, ga, be, m, v, d), "bn_forward_infer"))
        return;
    widen(y, fy, n), widen(dg, fdg, C), widen(db, fdb, C);
}

static void run_running(const bnv_group *g, const bnv_test *t, bnv_target T, bnv_result *res,
                        pool *P)
{
    const bn_desc *d = &g->d;
    const bnv_array *batches = bnv_input(t, "batches");
    size_t n = d->N * d->C * d->H * d->W, C = d->C, m = d->N * d->H * d->W, K = batches->rows;
    int pop = g->rule == BNV_RULE_POPULATION;
    bn_running_rule rule = g->rule == BNV_RULE_OLD_BIASED ? BN_RUNNING_MOMENTUM_OLD_BIASED
                         : g->rule == BNV_RULE_CUMULATIVE ? BN_RUNNING_CUMULATIVE_UNBIASED
                                                          : BN_RUNNING_MOMENTUM_NEW_UNBIASED;
    double *om = out(res, P, pop ? "populationMean" : "runningMean", pop ? C : K * C, pop ? 0 : K);
    double *ov = out(res, P, pop ? "populationVarUnbiased" : "runningVar", pop ? C : K * C, pop ? 0 : K);
    /* all K batches' statistics (population), or the current ones */
    double *bm = palloc(P, K * C, 8), *bv = palloc(P, K * C, 8), *rm = palloc(P, C, 8), *rv = palloc(P, C, 8);
    double *y = palloc(P, n, 8);
    float *fx = palloc(P, n, 4), *fy = palloc(P, n, 4), *fbm = palloc(P, K * C, 4), *fbv = palloc(P, K * C, 4);
    float *frm = palloc(P, C, 4), *frv = palloc(P, C, 4);
    if (P->nomem)
        return;
    size_t nb = t->num_batches > 0 ? (size_t)t->num_batches : 0;
    if (!pop)
        for (size_t c = 0; c < C; c++) {
            rm[c] = din(t, "runningMean")[c], rv[c] = din(t, "runningVar")[c];
            frm[c] = (float)rm[c], frv[c] = (float)rv[c];
        }
    size_t *pnb = g->rule == BNV_RULE_CUMULATIVE ? &nb : NULL;
    for (size_t k = 0; k < K; k++) {
        const double *x = batches->v + k * n;
        double *mk = bm + (pop ? k * C : 0), *vk = bv + (pop ? k * C : 0);
        float *fmk = fbm + (pop ? k * C : 0), *fvk = fbv + (pop ? k * C : 0);
        if (T.use_double) {
            if (fails(res, bn_forward_train_ref(y, mk, vk, NULL, x, NULL, NULL, d), "bn_forward_train_ref") ||
                (!pop && fails(res, bn_running_update_ref(rm, rv, pnb, mk, vk, C, m, rule, g->momentum),
                               "bn_running_update_ref")))
                return;
        } else {
            for (size_t j = 0; j < n; j++)
                fx[j] = (float)x[j];
            if (fails(res, bn_forward_train(T.impl, fy, fmk, fvk, NULL, fx, NULL, NULL, d), "bn_forward_train") ||
                (!pop && fails(res, bn_running_update(T.impl, frm, frv, pnb, fmk, fvk, C, m, rule, g->momentum),
                               "bn_running_update")))
                return;
            widen(rm, frm, C), widen(rv, frv, C);
        }
        if (!pop) {
            memcpy(om + k * C, rm, C * sizeof *om);
            memcpy(ov + k * C, rv, C * sizeof *ov);
        }
    }
    res->num_batches = pnb ? (long)nb : -1;
    if (!pop)
        return;
    if (T.use_double) {
        fails(res, bn_population_stats_ref(om, ov, bm, bv, K, C, m), "bn_population_stats_ref");
        return;
    }
    float *pm = palloc(P, C, 4), *pv = palloc(P, C, 4);
    if (P->nomem || fails(res, bn_population_stats(pm, pv, fbm, fbv, K, C, m), "bn_population_stats"))
        return;
    widen(om, pm, C), widen(ov, pv, C);
}

const char *bnv_unsupported(const bnv_group *g, bnv_target target)
{
    /* batch normalization has a float version in every implementation */
    return g->op <= BNV_BACKWARD_INFER ? NULL : bnv_family_unsupported(g, target);
}

int bnv_run(const bnv_group *g, const bnv_test *t, bnv_target target, bnv_result *res)
{
    memset(res, 0, sizeof *res);
    res->num_batches = -1;
    pool P = {0};
    switch (g->op) {
    case BNV_FORWARD_TRAIN:  run_forward_train(g, t, target, res, &P); break;
    case BNV_BACKWARD_TRAIN: run_backward_train(g, t, target, res, &P); break;
    case BNV_RUNNING_STATS:  run_running(g, t, target, res, &P); break;
    case BNV_FORWARD_INFER:  run_infer(g, t, target, res, &P, 0); break;
    case BNV_BACKWARD_INFER: run_infer(g, t, target, res, &P, 1); break;
    default:                 bnv_run_family(g, t, target, res, &P); break;
    }
    int nomem = P.nomem;
    pool_free(&P);
    if (nomem) {
        bnv_result_free(res);
        return -1;
    }
    return 0;
}

void bnv_result_free(bnv_result *res)
{
    for (size_t k = 0; k < res->nout; k++)
        free(res->out[k].v);
    res->nout = 0;
}

size_t bnv_compare(const bnv_test *t, const bnv_result *res, bnv_compare_fn *cmp,
                   const char *label)
{
    size_t bad = 0;
    char what[160];
    for (size_t k = 0; k < t->nwant; k++) {
        const bnv_array *want = &t->want[k];
        const bnv_array *got = NULL;
        for (size_t j = 0; j < res->nout; j++)
            if (strcmp(res->out[j].name, want->name) == 0)
                got = &res->out[j];
        const bnv_tol *tol = bnv_tolerance(t, want->name);
        snprintf(what, sizeof what, "%s %s", label, want->name);
        if (!got || got->n != want->n || !tol) {
            printf("  MISSING %s: the run produced no such output\n", what);
            bad += want->n ? want->n : 1;
            continue;
        }
        bad += cmp(what, got->v, want->v, want->n, tol->atol, tol->rtol);
    }
    if (t->want_num_batches >= 0 && res->num_batches != t->want_num_batches) {
        printf("  MISMATCH %s numBatchesTracked: got %ld want %ld\n", label, res->num_batches,
               t->want_num_batches);
        bad++;
    }
    return bad;
}
