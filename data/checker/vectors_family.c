/*
 * vectors_family.c — runs the normalization family's conformance tests
 * (groupnorm.json, renorm.json, ghost.json, weightnorm.json, precise.json;
 * docs/conformance.md) through bnlab's public API, the way a user would:
 * backward passes get their saved statistics (and r, d; ‖v‖) from the same
 * implementation's forward on the same inputs; the moving and running
 * statistics come from each batch's training statistics; PreciseBN goes
 * through begin / add every batch / end.
 *
 * bnlab has the family in ref/ (double); GroupNorm (with LayerNorm, G = 1)
 * also in float: fast/'s bn_groupnorm_*_fast and the float switch
 * bn_groupnorm_*(BN_IMPL_REF), both named in gn_float below, run the fp32
 * GroupNorm groups. The other members run on the double reference only.
 */
#include <string.h>

#include "vectors_internal.h"

/* ------------------------------------------------------------ GroupNorm */

typedef int gn_fwd_f(float *y, float *mean, float *var_biased, float *invstd, const float *x,
                     const float *gamma, const float *beta, const bn_desc *d, size_t G);
typedef int gn_bwd_f(float *dx, float *dgamma, float *dbeta, const float *dy, const float *x,
                     const float *mean, const float *invstd, const float *gamma,
                     const bn_desc *d, size_t G);
/* The float switch with ref: ref's doubles rounded to float. */
static int gn_fwd_switch_ref(float *y, float *mean, float *var_biased, float *invstd,
                             const float *x, const float *gamma, const float *beta,
                             const bn_desc *d, size_t G)
{
    return bn_groupnorm_forward(BN_IMPL_REF, y, mean, var_biased, invstd, x, gamma, beta, d, G);
}

static int gn_bwd_switch_ref(float *dx, float *dgamma, float *dbeta, const float *dy,
                             const float *x, const float *mean, const float *invstd,
                             const float *gamma, const bn_desc *d, size_t G)
{
    return bn_groupnorm_backward(BN_IMPL_REF, dx, dgamma, dbeta, dy, x, mean, invstd, gamma, d, G);
}

static const struct {
    gn_fwd_f *fwd;
    gn_bwd_f *bwd;
    const char *why;            /* when there is none */
} gn_float[] = {
    [BN_IMPL_REF] = {gn_fwd_switch_ref, gn_bwd_switch_ref, NULL},
#ifdef BNLAB_HAVE_FAST
    [BN_IMPL_FAST] = {bn_groupnorm_forward_fast, bn_groupnorm_backward_fast, NULL},
#else
    [BN_IMPL_FAST] = {NULL, NULL, "this bnlab was built without fast/"},
#endif
    [BN_IMPL_CUDA] = {NULL, NULL, "cuda/ has no GroupNorm (bnlab.h declares no bn_groupnorm_forward_cuda)"},
};

/* G = 1 and G = C through LayerNorm's and InstanceNorm's own entry points. */
static int gn_forward_ref(double *y, double *mean, double *var, double *inv, const double *x,
                          const double *gamma, const double *beta, const bn_desc *d, size_t G,
                          const char **call)
{
    if (G == 1) {
        *call = "bn_layernorm_forward_ref";
        return bn_layernorm_forward_ref(y, mean, var, inv, x, gamma, beta, d);
    }
    if (G == d->C) {
        *call = "bn_instancenorm_forward_ref";
        return bn_instancenorm_forward_ref(y, mean, var, inv, x, gamma, beta, d);
    }
    *call = "bn_groupnorm_forward_ref";
    return bn_groupnorm_forward_ref(y, mean, var, inv, x, gamma, beta, d, G);
}

static int gn_backward_ref(double *dx, double *dg, double *db, const double *dy, const double *x,
                           const double *mean, const double *inv, const double *gamma,
                           const bn_desc *d, size_t G, const char **call)
{
    if (G == 1) {
        *call = "bn_layernorm_backward_ref";
        return bn_layernorm_backward_ref(dx, dg, db, dy, x, mean, inv, gamma, d);
    }
    if (G == d->C) {
        *call = "bn_instancenorm_backward_ref";
        return bn_instancenorm_backward_ref(dx, dg, db, dy, x, mean, inv, gamma, d);
    }
    *call = "bn_groupnorm_backward_ref";
    return bn_groupnorm_backward_ref(dx, dg, db, dy, x, mean, inv, gamma, d, G);
}

static void run_gn(const bnv_group *g, const bnv_test *t, bnv_target T, bnv_result *res,
                   pool *P, int backward)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C, G = g->groups, S = d->N * G;
    double *y = backward ? palloc(P, n, 8) : out(res, P, "y", n, 0);
    double *mean = backward ? palloc(P, S, 8) : out(res, P, "mean", S, 0);
    double *var = backward ? palloc(P, S, 8) : out(res, P, "varBiased", S, 0);
    double *inv = backward ? palloc(P, S, 8) : out(res, P, "invstd", S, 0);
    double *dx = backward ? out(res, P, "dx", n, 0) : NULL;
    double *dg = backward && d->affine ? out(res, P, "dgamma", C, 0) : NULL;
    double *db = backward && d->affine ? out(res, P, "dbeta", C, 0) : NULL;
    if (P->nomem)
        return;
    const char *call = "";
    if (T.use_double) {
        const double *x = din(t, "x"), *ga = din(t, "gamma");
        if (fails(res, gn_forward_ref(y, mean, var, inv, x, ga, din(t, "beta"), d, G, &call), call) ||
            !backward)
            return;
        fails(res, gn_backward_ref(dx, dg, db, din(t, "dy"), x, mean, inv, ga, d, G, &call), call);
        return;
    }
    float *x = fin(P, t, "x"), *ga = fin(P, t, "gamma"), *be = fin(P, t, "beta");
    float *fy = palloc(P, n, 4), *fm = palloc(P, S, 4), *fv = palloc(P, S, 4), *fs = palloc(P, S, 4);
    float *fdy = backward ? fin(P, t, "dy") : NULL, *fdx = palloc(P, n, 4);
    float *fdg = palloc(P, C, 4), *fdb = palloc(P, C, 4);
    if (P->nomem)
        return;
    if (fails(res, gn_float[T.impl].fwd(fy, fm, fv, fs, x, ga, be, d, G), "bn_groupnorm_forward (float)"))
        return;
    if (!backward) {
        widen(y, fy, n), widen(mean, fm, S), widen(var, fv, S), widen(inv, fs, S);
        return;
    }
    if (!fails(res, gn_float[T.impl].bwd(fdx, fdg, fdb, fdy, x, fm, fs, ga, d, G),
               "bn_groupnorm_backward (float)"))
        widen(dx, fdx, n), widen(dg, fdg, C), widen(db, fdb, C);
}

/* ------------------------------------------------ Batch Renormalization */

static void run_brn_train(const bnv_group *g, const bnv_test *t, bnv_result *res, pool *P,
                          int backward)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    double *y = backward ? palloc(P, n, 8) : out(res, P, "y", n, 0);
    double *mean = backward ? palloc(P, C, 8) : out(res, P, "mean", C, 0);
    double *var = backward ? palloc(P, C, 8) : out(res, P, "varBiased", C, 0);
    double *inv = backward ? palloc(P, C, 8) : out(res, P, "invstd", C, 0);
    double *r = backward ? palloc(P, C, 8) : out(res, P, "r", C, 0);
    double *dd = backward ? palloc(P, C, 8) : out(res, P, "d", C, 0);
    double *dx = backward ? out(res, P, "dx", n, 0) : NULL;
    double *dg = backward && d->affine ? out(res, P, "dgamma", C, 0) : NULL;
    double *db = backward && d->affine ? out(res, P, "dbeta", C, 0) : NULL;
    if (P->nomem)
        return;
    const double *x = din(t, "x"), *ga = din(t, "gamma");
    if (fails(res, bn_renorm_forward_train_ref(y, mean, var, inv, r, dd, x, ga, din(t, "beta"),
                                               din(t, "movingMean"), din(t, "movingSd"), d,
                                               g->rmax, g->dmax),
              "bn_renorm_forward_train_ref") || !backward)
        return;
    fails(res, bn_renorm_backward_train_ref(dx, dg, db, din(t, "dy"), x, mean, inv, r, dd, ga, d),
          "bn_renorm_backward_train_ref");
}

/* Each batch's statistics (Algorithm 1), then the moving-average update. */
static void run_brn_update(const bnv_group *g, const bnv_test *t, bnv_result *res, pool *P)
{
    bn_desc d = g->d;
    d.affine = 0;
    const bnv_array *batches = bnv_input(t, "batches");
    size_t n = d.N * d.C * d.H * d.W, C = d.C, K = batches->rows;
    double *om = out(res, P, "movingMean", K * C, K), *os = out(res, P, "movingSd", K * C, K);
    double *mm = palloc(P, C, 8), *ms = palloc(P, C, 8), *y = palloc(P, n, 8);
    double *bm = palloc(P, C, 8), *bv = palloc(P, C, 8);
    if (P->nomem)
        return;
    memcpy(mm, din(t, "movingMean"), C * sizeof *mm);
    memcpy(ms, din(t, "movingSd"), C * sizeof *ms);
    for (size_t k = 0; k < K; k++) {
        if (fails(res, bn_forward_train_ref(y, bm, bv, NULL, batches->v + k * n, NULL, NULL, &d),
                  "bn_forward_train_ref") ||
            fails(res, bn_renorm_update_ref(mm, ms, bm, bv, C, d.eps, g->alpha), "bn_renorm_update_ref"))
            return;
        memcpy(om + k * C, mm, C * sizeof *om);
        memcpy(os + k * C, ms, C * sizeof *os);
    }
}

/* ------------------------------------------------------------- Ghost BN */

static void run_ghost(const bnv_group *g, const bnv_test *t, bnv_result *res, pool *P)
{
    const bn_desc *d = &g->d;
    size_t n = d->N * d->C * d->H * d->W, C = d->C, V = g->vbatch;
    size_t K = V && d->N % V == 0 ? d->N / V : 0;    /* 0: ref must refuse V */
    int fwd = g->op == BNV_GHOST_FORWARD_TRAIN, bwd = g->op == BNV_GHOST_BACKWARD_TRAIN;
    /* room for N virtual batches, the most any V >= 1 gives: an
     * implementation that accepts a V not dividing N writes floor(N/V) */
    double *y = fwd ? out(res, P, "y", n, 0) : palloc(P, n, 8);
    double *mean = palloc(P, d->N * C, 8), *var = palloc(P, d->N * C, 8);
    double *inv = palloc(P, d->N * C, 8);
    if (P->nomem)
        return;
    const double *x = din(t, "x"), *ga = din(t, "gamma");
    if (fails(res, bn_ghost_forward_train_ref(y, mean, var, inv, x, ga, din(t, "beta"), d, V),
              "bn_ghost_forward_train_ref"))
        return;
    if (fwd) {
        double *om = out(res, P, "mean", K * C, K), *ov = out(res, P, "varBiased", K * C, K);
        double *os = out(res, P, "invstd", K * C, K);
        if (!P->nomem) {
            memcpy(om, mean, K * C * sizeof *om);
            memcpy(ov, var, K * C * sizeof *ov);
            memcpy(os, inv, K * C * sizeof *os);
        }
        return;
    }
    if (bwd) {
        double *dx = out(res, P, "dx", n, 0);
        double *dg = d->affine ? out(res, P, "dgamma", C, 0) : NULL;
        double *db = d->affine ? out(res, P, "dbeta", C, 0) : NULL;
        if (!P->nomem)
            fails(res, bn_ghost_backward_train_ref(dx, dg, db, din(t, "dy"), x, mean, inv, ga, d, V),
                  "bn_ghost_backward_train_ref");
        return;
    }
    double *rm = out(res, P, "runningMean", C, 0), *rv = out(res, P, "runningVar", C, 0);
    if (P->nomem)
        return;
    memcpy(rm, din(t, "runningMean"), C * sizeof *rm);
    memcpy(rv, din(t, "runningVar"), C * sizeof *rv);
    size_t nb = t->num_batches > 0 ? (size_t)t->num_batches : 0;
    size_t *pnb = g->rule == BNV_RULE_CUMULATIVE ? &nb : NULL;
    bn_running_rule rule = g->rule == BNV_RULE_OLD_BIASED ? BN_RUNNING_MOMENTUM_OLD_BIASED
                         : g->rule == BNV_RULE_CUMULATIVE ? BN_RUNNING_CUMULATIVE_UNBIASED
                                                          : BN_RUNNING_MOMENTUM_NEW_UNBIASED;
    if (!fails(res, bn_ghost_running_update_ref(rm, rv, pnb, mean, var, K, C, V * d->H * d->W,
                                                rule, g->momentum),
               "bn_ghost_running_update_ref"))
        res->num_batches = pnb ? (long)nb : -1;
}

/* ------------------------------------------------ Weight Normalization */

static void run_wn(const bnv_group *g, const bnv_test *t, bnv_result *res, pool *P)
{
    size_t K = g->wn_K, D = g->wn_D;
    if (g->op == BNV_WN_INIT) {
        double *gg = out(res, P, "g", K, 0), *b = out(res, P, "b", K, 0);
        if (!P->nomem)
            fails(res, bn_weightnorm_init_ref(gg, b, din(t, "t"), g->wn_N, K), "bn_weightnorm_init_ref");
        return;
    }
    int bwd = g->op == BNV_WN_BACKWARD;
    double *w = bwd ? palloc(P, K * D, 8) : out(res, P, "w", K * D, 0);
    double *vnorm = bwd ? palloc(P, K, 8) : out(res, P, "vnorm", K, 0);
    double *dv = bwd ? out(res, P, "dv", K * D, 0) : NULL, *dg = bwd ? out(res, P, "dg", K, 0) : NULL;
    if (P->nomem)
        return;
    const double *v = din(t, "v"), *gg = din(t, "g");
    if (!fails(res, bn_weightnorm_forward_ref(w, vnorm, v, gg, K, D), "bn_weightnorm_forward_ref") && bwd)
        fails(res, bn_weightnorm_backward_ref(dv, dg, din(t, "dw"), v, gg, vnorm, K, D),
              "bn_weightnorm_backward_ref");
}

/* ------------------------------------------------------------ PreciseBN */

static void run_precise(const bnv_group *g, const bnv_test *t, bnv_result *res, pool *P)
{
    const bn_desc *d = &g->d;
    const bnv_array *batches = bnv_input(t, "batches");
    size_t n = d->N * d->C * d->H * d->W, C = d->C;
    double *pm = out(res, P, "populationMean", C, 0), *pv = out(res, P, "populationVarUnbiased", C, 0);
    if (P->nomem)
        return;
    bn_precise p;
    if (fails(res, bn_precise_begin(&p, C), "bn_precise_begin"))
        return;
    int ok = 1;
    for (size_t k = 0; ok && k < batches->rows; k++)
        ok = !fails(res, bn_precise_add_ref(&p, batches->v + k * n, d), "bn_precise_add_ref");
    if (ok)
        fails(res, bn_precise_end_ref(&p, pm, pv), "bn_precise_end_ref");
    bn_precise_free(&p);
}

/* ------------------------------------------------------------ dispatch */

const char *bnv_family_unsupported(const bnv_group *g, bnv_target T)
{
    if (T.use_double)
        return NULL;
    switch (g->op) {
    case BNV_GN_FORWARD:
    case BNV_GN_BACKWARD:
        return (unsigned)T.impl < 3 && gn_float[T.impl].fwd && gn_float[T.impl].bwd
                   ? NULL : (unsigned)T.impl < 3 ? gn_float[T.impl].why : "unknown implementation";
    case BNV_BRN_FORWARD_TRAIN: case BNV_BRN_BACKWARD_TRAIN: case BNV_BRN_UPDATE:
    case BNV_BRN_FORWARD_INFER:
        return "bnlab has Batch Renormalization in ref/ (double) only";
    case BNV_GHOST_FORWARD_TRAIN: case BNV_GHOST_BACKWARD_TRAIN: case BNV_GHOST_RUNNING_STATS:
        return "bnlab has Ghost BN in ref/ (double) only";
    case BNV_WN_FORWARD: case BNV_WN_BACKWARD: case BNV_WN_INIT:
        return "bnlab has Weight Normalization in ref/ (double) only";
    case BNV_PRECISE_POPULATION:
        return "bnlab has PreciseBN in ref/ (double) only";
    default:
        return "not an operation of the normalization family";
    }
}

void bnv_run_family(const bnv_group *g, const bnv_test *t, bnv_target T, bnv_result *res,
                    pool *P)
{
    if (bnv_family_unsupported(g, T)) {
        fails(res, BN_ENOIMPL, "(no such implementation: see bnv_unsupported)");
        return;
    }
    switch (g->op) {
    case BNV_GN_FORWARD:           run_gn(g, t, T, res, P, 0); break;
    case BNV_GN_BACKWARD:          run_gn(g, t, T, res, P, 1); break;
    case BNV_BRN_FORWARD_TRAIN:    run_brn_train(g, t, res, P, 0); break;
    case BNV_BRN_BACKWARD_TRAIN:   run_brn_train(g, t, res, P, 1); break;
    case BNV_BRN_UPDATE:           run_brn_update(g, t, res, P); break;
    case BNV_BRN_FORWARD_INFER: {
        const bn_desc *d = &g->d;
        double *y = out(res, P, "y", d->N * d->C * d->H * d->W, 0);
        if (!P->nomem)
            fails(res, bn_renorm_forward_infer_ref(y, din(t, "x"), din(t, "gamma"), din(t, "beta"),
                                                   din(t, "movingMean"), din(t, "movingSd"), d),
                  "bn_renorm_forward_infer_ref");
        break;
    }
    case BNV_GHOST_FORWARD_TRAIN:
    case BNV_GHOST_BACKWARD_TRAIN:
    case BNV_GHOST_RUNNING_STATS:  run_ghost(g, t, res, P); break;
    case BNV_WN_FORWARD:
    case BNV_WN_BACKWARD:
    case BNV_WN_INIT:              run_wn(g, t, res, P); break;
    case BNV_PRECISE_POPULATION:   run_precise(g, t, res, P); break;
    default:                       fails(res, BN_EINVAL, "bnv_run_family"); break;
    }
}
