/*
 * fig1.c — the paper's Figure 1 (Ioffe & Szegedy 2015, arXiv 1502.03167,
 * §4.1): does batch normalization make a sigmoid network train faster, and
 * does it keep the distribution of a hidden unit's input steady?
 *
 * The experiment. Two 784-100-100-100-10 multilayer perceptrons with sigmoid
 * hidden units and a 10-way softmax with cross-entropy, trained for 50,000
 * steps of mini-batches of 60 examples, on Fashion-MNIST (the paper used
 * MNIST; --data takes either). One network is plain, x -> Wx + b -> sigmoid;
 * the other has batch normalization on every hidden layer,
 * x -> Wx -> BN -> sigmoid (the bias is dropped: beta replaces it, §3.2),
 * through bnlab's run-time switch (--impl).
 *
 * What the paper leaves out, and our choices (the comparison must be fair,
 * so the two networks differ ONLY in the BN layers):
 *   - optimizer: SGD with momentum 0.9, learning rate 0.1, constant, for
 *     both. The rate is the best one for the network WITHOUT batch
 *     normalization: among {0.01, 0.03, 0.1, 0.3, 1}, it gave the plain
 *     network the highest mean accuracy over the run on 10,000 held-out
 *     training images (--holdout 10000; the test set played no part). The
 *     baseline gets its best setting; BN gets no tuning of its own;
 *   - init: "small random Gaussian values": Normal(0, 1/fan_in) (LeCun), the
 *     standard scale for sigmoid networks, so that the plain network starts
 *     well too; the same draws for both networks (the same seed), and the
 *     same order of mini-batches;
 *   - BN: eps = 1e-5, running averages with PyTorch's rule, momentum 0.01.
 *
 * What it measures. Every --eval-every steps, the test accuracy (a), and the
 * 15th, 50th and 85th percentiles over the 10,000 test images of the input
 * of one sigmoid of the last hidden layer (--unit) (b, c), both in inference
 * mode: the BN network normalizes with Algorithm 2's population statistics,
 * computed afresh from 100 training batches at each evaluation
 * (--eval-stats running uses the moving averages instead, as the paper
 * suggests "to track the accuracy of a model as it trains"). At the end the
 * BN network is evaluated with all three: population, running, and each test
 * batch's own statistics.
 *
 * Expected result (the paper's claim): the BN network's test accuracy rises
 * faster and ends higher (at 10k, 20k and 50k steps); without BN the
 * percentile bands drift in level and width, with BN they stay nearly flat.
 * The printed summary gives the accuracy at those steps (single evaluations,
 * and the mean of the evaluations within 2k steps, since one evaluation moves
 * by ~0.5% from the next), the steps each network needs to reach --target,
 * and the drift of the bands: the range (max - min over the evaluations) of
 * the median and of the 15-85 width, for --unit and averaged over all 100
 * units of that layer. What we measured, over four seeds, and why the
 * accuracy gap is small on Fashion-MNIST: docs/chapters/fig1.md.
 *
 * How to run it:
 *   make plots                   runs it, draws out/figures/fig1.{png,pdf}
 *   build/bin/fig1 --help        the options
 *   build/bin/fig1 --steps 5000 --impl ref --out /tmp/fig1.dat
 * Exit status: 0 done (whatever the verdict), 1 error, 2 bad usage.
 */
#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <gsl/gsl_statistics_float.h>

#include "toolkit.h"

enum { HIDDEN = 100, N_HIDDEN = 3, EVAL_BATCH = 1000, POP_BATCHES = 100 };

typedef struct options {
    unsigned long seed;
    size_t steps, batch, eval_every, unit, threads, holdout;
    double lr, momentum, target, init_std;
    const char *impl, *data, *out, *init, *eval_stats, *schedule;
} options;

static void usage(FILE *f)
{
    fprintf(f,
        "usage: fig1 [options]\n"
        "\n"
        "The paper's Figure 1 (Ioffe & Szegedy 2015, §4.1): a 784-100-100-100-10 sigmoid\n"
        "MLP trained with and without batch normalization on every hidden layer,\n"
        "batch 60, 50,000 steps each, on Fashion-MNIST (or any MNIST-format data).\n"
        "Writes, every --eval-every steps, the test accuracy of both networks and the\n"
        "15/50/85th percentiles of one last-hidden-layer sigmoid input to --out\n"
        "(for plots/fig1.gp), and prints a summary: accuracy at 1/5, 2/5 and all of\n"
        "the steps (10k, 20k, 50k), steps to reach --target, drift of the bands.\n"
        "\n"
        "options:\n"
        "  --seed N         seed of every random draw: init, batches (default 1)\n"
        "  --steps N        training steps per network (default 50000)\n"
        "  --impl NAME      batch normalization by ref, fast or cuda (default: fast if\n"
        "                   built, else ref; exits 2 if NAME is not built)\n"
        "  --data DIR       MNIST-format IDX files (default %s)\n"
        "  --out FILE       results (default out/data/fig1.dat)\n"
        "  --lr X           SGD learning rate, both networks (default 0.1)\n"
        "  --momentum X     SGD momentum (default 0.9)\n"
        "  --schedule S     learning rate over the run: constant, or linear (decays\n"
        "                   linearly to 0 at the last step) (default constant)\n"
        "  --init NAME      weight init: lecun (1/fan_in variance), glorot, he, fixed\n"
        "                   (default lecun)\n"
        "  --init-std X     the std of --init fixed (default 0.01)\n"
        "  --batch N        examples per step (default 60)\n"
        "  --eval-every N   steps between evaluations (default 500)\n"
        "  --eval-stats S   BN statistics for the curves: running, population (Alg. 2,\n"
        "                   %d batches) or batch (each test batch of 60) (default population)\n"
        "  --unit K         the last-hidden-layer unit of panels b and c (default 0)\n"
        "  --target X       the accuracy for 'steps to reach' (default 0.85)\n"
        "  --holdout N      train on all but the last N training images and evaluate on\n"
        "                   those N instead of the test set (to choose --lr without\n"
        "                   looking at the test set; default 0: the test set)\n"
        "  --threads N      1: the networks one after the other; 2: at once (default 2)\n"
        "  --help           this text\n"
        "Progress goes to stderr; the summary to stdout. Output depends only on the\n"
        "options and the implementation.\n",
        TK_DEFAULT_DATA_DIR, POP_BATCHES);
}

/* ------------------------------------------------------------ one network */

typedef struct point {
    size_t step;
    double acc, loss, train_loss;
    float pct[HIDDEN][3]; /* 15th, 50th, 85th percentile of each unit's input */
} point;

typedef struct run {
    const char *name;           /* "plain" or "bn" */
    int bn;
    const options *o;
    bn_impl impl;
    tk_mode eval_mode;
    const tk_dataset *train, *test;
    tk_net *net;
    size_t probe;               /* layer whose output is the last hidden sigmoid's input */
    float *probe_vals;          /* [HIDDEN][test->n]: one evaluation's inputs */
    point *pts;
    size_t n_pts;
    double final_acc[3];        /* bn: running, population, batch statistics */
    int failed;
} run;

/* 784-100-100-100-10: [dense (-> BN) -> sigmoid] x 3 -> dense. */
static int build(run *r)
{
    const tk_dataset *d = r->train;
    tk_net *net = tk_net_new(d->C, d->H, d->W, EVAL_BATCH, r->impl, r->o->seed);
    if (!net)
        return -1;
    r->net = net;
    for (int h = 0; h < N_HIDDEN; h++) {
        if (tk_dense(net, HIDDEN, !r->bn) != 0)
            return -1;
        if (r->bn && tk_batchnorm(net, 1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.01) != 0)
            return -1;
        r->probe = net->n_layers - 1;
        if (tk_sigmoid(net) != 0)
            return -1;
    }
    if (tk_dense(net, TK_CLASSES, 1) != 0)
        return -1;
    tk_init init;
    if (tk_init_parse(r->o->init, &init) != 0)
        return -1;
    /* the same seed for both networks: the same weights (the BN network has
     * no hidden biases, which start at 0 anyway) */
    gsl_rng *g = gsl_rng_alloc(gsl_rng_mt19937);
    if (!g)
        return tk_err("out of memory");
    gsl_rng_set(g, r->o->seed);
    tk_net_init(net, g, init, r->o->init_std);
    gsl_rng_free(g);
    return 0;
}

/* The hook of tk_evaluate: keeps the probed layer's values, unit by unit. */
static void keep_probe(void *ctx, const tk_net *net, size_t first, size_t B)
{
    run *r = ctx;
    const float *a = tk_act(net, r->probe);
    size_t n = r->test->n;
    for (size_t i = 0; i < B; i++)
        for (size_t u = 0; u < HIDDEN; u++)
            r->probe_vals[u * n + first + i] = a[i * HIDDEN + u];
}

/* The f-quantile of v[n] as GSL's quantile_from_sorted_data defines it
 * (linear between order statistics floor(f·(n-1)) and the next), found by
 * selection (O(n)) instead of a sort; reorders v. */
static float percentile(float *v, size_t n, double f)
{
    double idx = f * (double)(n - 1);
    size_t lo = (size_t)idx;
    double delta = idx - (double)lo;
    float a = gsl_stats_float_select(v, 1, n, lo);
    if (delta == 0 || lo + 1 >= n)
        return a;
    /* after selecting lo, everything beyond lo is >= a: the next order
     * statistic is the smallest of them */
    float b = v[lo + 1];
    for (size_t k = lo + 2; k < n; k++)
        if (v[k] < b)
            b = v[k];
    return (float)((1 - delta) * a + delta * b);
}

static int evaluate(run *r, size_t step, double train_loss)
{
    point *p = &r->pts[r->n_pts++];
    p->step = step, p->train_loss = train_loss;
    if (r->eval_mode == TK_EVAL_POPULATION &&
        tk_population_stats(r->net, r->train, POP_BATCHES, r->o->batch, r->o->seed + 1) != 0)
        return -1;
    size_t B = r->eval_mode == TK_EVAL_BATCH ? r->o->batch : EVAL_BATCH;
    if (tk_evaluate(r->net, r->test, r->test->n, B, r->eval_mode, keep_probe, r, &p->acc,
                    &p->loss) != 0)
        return -1;
    static const double f[3] = {0.15, 0.50, 0.85};
    for (size_t u = 0; u < HIDDEN; u++)
        for (int j = 0; j < 3; j++)
            p->pct[u][j] = percentile(r->probe_vals + u * r->test->n, r->test->n, f[j]);
    return 0;
}

/* Is step one where we evaluate: every --eval-every, and the report steps. */
static int eval_step(const options *o, size_t step)
{
    return step % o->eval_every == 0 || step == o->steps || step == o->steps / 5 ||
           step == 2 * o->steps / 5;
}

static int train_network(run *r)
{
    const options *o = r->o;
    size_t dim = r->train->dim, K = TK_CLASSES;
    float *x = malloc(o->batch * dim * sizeof *x), *dlogits = malloc(o->batch * K * sizeof *dlogits);
    unsigned char *y = malloc(o->batch);
    tk_batches it = {0};
    int st = (!x || !y || !dlogits) ? tk_err("out of memory")
                                    : tk_batches_init(&it, r->train, o->batch, o->seed);
    tk_sgd sgd = {.lr = o->lr, .momentum = o->momentum};
    int linear = strcmp(o->schedule, "linear") == 0;
    char label[32];
    snprintf(label, sizeof label, "%-5s", r->name);
    tk_progress prog;
    tk_progress_start(&prog, label, o->steps);
    double loss_sum = 0, acc_now = 0;
    size_t loss_n = 0;
    if (st == 0)
        st = evaluate(r, 0, NAN);
    for (size_t step = 1; st == 0 && step <= o->steps; step++) {
        tk_batches_next(&it, x, y);
        size_t correct = 0;
        st = tk_forward(r->net, x, o->batch, TK_TRAIN);
        if (st != 0)
            break;
        double loss = tk_softmax_xent(dlogits, tk_act(r->net, r->net->n_layers - 1), y,
                                      o->batch, K, &correct);
        if (!isfinite(loss)) {
            st = tk_err("%s network: the loss is %g at step %zu: training diverged "
                        "(try a smaller --lr)", r->name, loss, step);
            break;
        }
        st = tk_backward(r->net, dlogits);
        if (st != 0)
            break;
        if (linear)
            sgd.lr = o->lr * (double)(o->steps - step + 1) / (double)o->steps;
        tk_sgd_step(r->net, &sgd);
        loss_sum += loss, loss_n++;
        if (eval_step(o, step)) {
            st = evaluate(r, step, loss_sum / (double)loss_n);
            loss_sum = 0, loss_n = 0;
            acc_now = r->pts[r->n_pts - 1].acc;
        }
        tk_progress_update(&prog, step, loss, acc_now, step == o->steps);
    }
    /* the final BN network under all three kinds of statistics */
    if (st == 0 && r->bn) {
        double loss;
        st = tk_population_stats(r->net, r->train, POP_BATCHES, o->batch, o->seed + 1);
        if (st == 0)
            st = tk_evaluate(r->net, r->test, r->test->n, EVAL_BATCH, TK_EVAL_RUNNING, NULL,
                             NULL, &r->final_acc[0], &loss);
        if (st == 0)
            st = tk_evaluate(r->net, r->test, r->test->n, EVAL_BATCH, TK_EVAL_POPULATION,
                             NULL, NULL, &r->final_acc[1], &loss);
        if (st == 0)
            st = tk_evaluate(r->net, r->test, r->test->n, o->batch, TK_EVAL_BATCH, NULL,
                             NULL, &r->final_acc[2], &loss);
    }
    tk_batches_free(&it);
    free(x), free(y), free(dlogits);
    return st;
}

static void *train_thread(void *arg)
{
    run *r = arg;
    r->failed = train_network(r) != 0;
    return NULL;
}

/* ---------------------------------------------------------------- summary */

/* Range (max - min) over the evaluations of the median (what = 0) or of the
 * 15-85 width (what = 1) of unit u. */
static double band_range(const run *r, size_t u, int what)
{
    double lo = INFINITY, hi = -INFINITY;
    for (size_t k = 0; k < r->n_pts; k++) {
        const float *q = r->pts[k].pct[u];
        double v = what == 0 ? q[1] : q[2] - q[0];
        lo = v < lo ? v : lo, hi = v > hi ? v : hi;
    }
    return hi - lo;
}

static double mean_band_range(const run *r, int what)
{
    double s = 0;
    for (size_t u = 0; u < HIDDEN; u++)
        s += band_range(r, u, what);
    return s / HIDDEN;
}

static const point *point_at(const run *r, size_t step)
{
    for (size_t k = 0; k < r->n_pts; k++)
        if (r->pts[k].step == step)
            return &r->pts[k];
    return NULL;
}

/* Mean test accuracy of the evaluations within half steps of step: one
 * evaluation moves by ~0.5% from the next at a constant learning rate, more
 * than the two networks differ late in training. */
static double window_mean(const run *r, size_t step, size_t half)
{
    double s = 0;
    size_t n = 0;
    for (size_t k = 0; k < r->n_pts; k++)
        if (r->pts[k].step + half >= step && r->pts[k].step <= step + half)
            s += r->pts[k].acc, n++;
    return s / (double)n;
}

/* First evaluated step with accuracy >= target, or 0 if none. */
static size_t steps_to(const run *r, double target)
{
    for (size_t k = 0; k < r->n_pts; k++)
        if (r->pts[k].acc >= target)
            return r->pts[k].step;
    return 0;
}

/* The summary, on f (stdout) with prefix "" and in the data file's header
 * with prefix "# ". Returns the verdict: 1 if both claims hold. */
static int summary(FILE *f, const char *pre, const run *plain, const run *bn,
                   const options *o)
{
    int higher = 1, higher_w = 1;
    size_t half = o->steps / 25; /* the window: 2,000 steps either side at 50,000 */
    fprintf(f, "%stest accuracy (BN network evaluated with %s statistics); the window "
            "columns average the evaluations within %zu steps of the step:\n", pre,
            tk_mode_name(bn->eval_mode), half);
    fprintf(f, "%s  %8s  %10s  %10s  %9s  %12s  %12s  %9s\n", pre, "step", "without BN",
            "with BN", "BN higher", "window no BN", "window BN", "BN higher");
    size_t report[3] = {o->steps / 5, 2 * o->steps / 5, o->steps};
    for (int k = 0; k < 3; k++) {
        const point *a = point_at(plain, report[k]), *b = point_at(bn, report[k]);
        double wa = window_mean(plain, report[k], half), wb = window_mean(bn, report[k], half);
        int yes = b->acc > a->acc, yes_w = wb > wa;
        higher &= yes, higher_w &= yes_w;
        fprintf(f, "%s  %8zu  %9.2f%%  %9.2f%%  %9s  %11.2f%%  %11.2f%%  %9s\n", pre,
                report[k], 100 * a->acc, 100 * b->acc, yes ? "yes" : "NO", 100 * wa,
                100 * wb, yes_w ? "yes" : "NO");
    }
    size_t sa = steps_to(plain, o->target), sb = steps_to(bn, o->target);
    fprintf(f, "%ssteps to reach %.1f%% test accuracy (first evaluation at or above it):\n",
            pre, 100 * o->target);
    fprintf(f, "%s  without BN %s%zu, with BN %s%zu\n", pre, sa ? "" : "never in ",
            sa ? sa : o->steps, sb ? "" : "never in ", sb ? sb : o->steps);
    fprintf(f, "%sfinal BN test accuracy by statistics: running %.2f%%, population "
            "(Alg. 2, %d batches of %zu) %.2f%%, batch (each test batch of %zu) %.2f%%\n",
            pre, 100 * bn->final_acc[0], POP_BATCHES, o->batch, 100 * bn->final_acc[1],
            o->batch, 100 * bn->final_acc[2]);
    double dm[2] = {band_range(plain, o->unit, 0), band_range(bn, o->unit, 0)};
    double dw[2] = {band_range(plain, o->unit, 1), band_range(bn, o->unit, 1)};
    double am[2] = {mean_band_range(plain, 0), mean_band_range(bn, 0)};
    double aw[2] = {mean_band_range(plain, 1), mean_band_range(bn, 1)};
    int steadier = dm[1] < dm[0] && am[1] < am[0];
    fprintf(f, "%sdrift of the sigmoid input percentiles, last hidden layer (max - min over "
            "the %zu evaluations):\n", pre, plain->n_pts);
    fprintf(f, "%s  %-34s  %10s  %10s\n", pre, "", "without BN", "with BN");
    fprintf(f, "%s  %-34s  %10.3f  %10.3f\n", pre, "unit median: range", dm[0], dm[1]);
    fprintf(f, "%s  %-34s  %10.3f  %10.3f\n", pre, "unit 15-85 width: range", dw[0], dw[1]);
    fprintf(f, "%s  %-34s  %10.3f  %10.3f\n", pre, "all units, mean median range", am[0], am[1]);
    fprintf(f, "%s  %-34s  %10.3f  %10.3f\n", pre, "all units, mean width range", aw[0], aw[1]);
    fprintf(f, "%sverdict: BN higher at all three steps: %s (window means: %s); BN median "
            "drifts less (unit %zu and mean of all): %s\n", pre, higher ? "yes" : "NO",
            higher_w ? "yes" : "NO", o->unit, steadier ? "yes" : "NO");
    return higher && steadier;
}

/* Writes the results into tf (opened before training, so that a bad --out
 * fails at once) and commits it. */
static int write_results(tk_file *tf, const run *plain, const run *bn, const options *o)
{
    FILE *f = tf->f;
    fprintf(f, "# bnlab %s chapters/fig1.c: Ioffe & Szegedy 2015, Figure 1 (section 4.1)\n",
            bn_version());
    fprintf(f, "# 784-100-100-100-10 sigmoid MLP, with and without BN on every hidden layer; "
            "batch %zu, %zu steps\n", o->batch, o->steps);
    fprintf(f, "# SGD lr %g momentum %g (%s), init %s%s, impl %s, seed %lu, data %s (%zu training, "
            "%zu %s images)\n", o->lr, o->momentum, o->schedule, o->init,
            strcmp(o->init, "fixed") == 0 ? "" : " (std by fan-in)", bn_impl_name(bn->impl),
            o->seed, o->data, plain->train->n, plain->test->n,
            o->holdout ? "held-out" : "test");
    fprintf(f, "# bands: unit %zu of the last hidden layer, input of its sigmoid, over the "
            "%zu evaluation images; BN evaluated with %s statistics\n", o->unit,
            plain->test->n, tk_mode_name(bn->eval_mode));
    summary(f, "# ", plain, bn, o);
    /* the same numbers for plots/fig1.gp, one "name value" pair each (-1: never reached) */
    size_t sa = steps_to(plain, o->target), sb = steps_to(bn, o->target);
    fprintf(f, "# figure: steps %zu target %g reach_plain %ld reach_bn %ld unit %zu "
            "drift_median_plain %.3f drift_median_bn %.3f drift_width_plain %.3f "
            "drift_width_bn %.3f stats %s\n", o->steps, o->target, sa ? (long)sa : -1L,
            sb ? (long)sb : -1L, o->unit, band_range(plain, o->unit, 0),
            band_range(bn, o->unit, 0), band_range(plain, o->unit, 1),
            band_range(bn, o->unit, 1), tk_mode_name(bn->eval_mode));
    fprintf(f, "# columns: step acc_plain acc_bn loss_plain loss_bn train_loss_plain "
            "train_loss_bn p15_plain p50_plain p85_plain p15_bn p50_bn p85_bn\n");
    for (size_t k = 0; k < plain->n_pts; k++) {
        const point *a = &plain->pts[k], *b = &bn->pts[k];
        const float *qa = a->pct[o->unit], *qb = b->pct[o->unit];
        fprintf(f, "%zu %.4f %.4f %.5f %.5f %.5f %.5f %.5g %.5g %.5g %.5g %.5g %.5g\n",
                a->step, a->acc, b->acc, a->loss, b->loss, a->train_loss, b->train_loss,
                qa[0], qa[1], qa[2], qb[0], qb[1], qb[2]);
    }
    return tk_file_commit(tf);
}

/* ------------------------------------------------------------------- main */

static int check_options(const options *o, tk_mode *mode)
{
    if (o->unit >= HIDDEN)
        return tk_err("--unit %zu: the layer has units 0..%d", o->unit, HIDDEN - 1);
    if (o->batch < 2 || o->batch > EVAL_BATCH)
        return tk_err("--batch %zu: must be 2..%d (BN needs 2 examples per batch)", o->batch,
                      EVAL_BATCH);
    if (o->steps < 5)
        return tk_err("--steps %zu: at least 5 (the summary reports at 1/5, 2/5 and 5/5)",
                      o->steps);
    if (o->threads > 2)
        return tk_err("--threads %zu: 1 or 2 (there are two networks)", o->threads);
    if (!(o->lr > 0) || !(o->momentum >= 0 && o->momentum < 1) || !(o->init_std > 0))
        return tk_err("--lr must be > 0, --momentum in [0, 1), --init-std > 0");
    if (!(o->target > 0 && o->target <= 1))
        return tk_err("--target %g: an accuracy in (0, 1]", o->target);
    if (strcmp(o->schedule, "constant") != 0 && strcmp(o->schedule, "linear") != 0)
        return tk_err("--schedule '%s': constant or linear", o->schedule);
    tk_init init;
    if (tk_init_parse(o->init, &init) != 0)
        return -1;
    return tk_mode_parse(o->eval_stats, mode);
}

/* --holdout N: the last N training examples become the evaluation set. */
static int split_holdout(tk_dataset *train, tk_dataset *eval, size_t n)
{
    if (n >= train->n)
        return tk_err("--holdout %zu: the training set has %zu examples", n, train->n);
    *eval = *train;
    eval->n = n;
    eval->x = malloc(n * train->dim * sizeof *eval->x);
    eval->y = malloc(n);
    if (!eval->x || !eval->y)
        return tk_err("out of memory");
    size_t first = train->n - n;
    memcpy(eval->x, train->x + first * train->dim, n * train->dim * sizeof *eval->x);
    memcpy(eval->y, train->y + first, n);
    train->n = first;
    return 0;
}

int main(int argc, char **argv)
{
    tk_set_progname("fig1");
    options o = {.seed = 1, .steps = 50000, .batch = 60, .eval_every = 500, .threads = 2,
                 .lr = 0.1, .momentum = 0.9, .target = 0.85, .init_std = 0.01,
                 .data = TK_DEFAULT_DATA_DIR, .out = "out/data/fig1.dat", .init = "lecun",
                 .eval_stats = "population", .schedule = "constant"};
    const tk_opt opts[] = {
        {"--seed", TK_OPT_ULONG, &o.seed},         {"--steps", TK_OPT_SIZE, &o.steps},
        {"--impl", TK_OPT_STRING, &o.impl},        {"--data", TK_OPT_STRING, &o.data},
        {"--out", TK_OPT_STRING, &o.out},          {"--lr", TK_OPT_DOUBLE, &o.lr},
        {"--momentum", TK_OPT_DOUBLE, &o.momentum}, {"--init-std", TK_OPT_DOUBLE, &o.init_std},
        {"--init", TK_OPT_STRING, &o.init},        {"--batch", TK_OPT_SIZE, &o.batch},
        {"--eval-every", TK_OPT_SIZE, &o.eval_every}, {"--eval-stats", TK_OPT_STRING, &o.eval_stats},
        {"--unit", TK_OPT_ULONG, &o.unit},         {"--target", TK_OPT_DOUBLE, &o.target},
        {"--holdout", TK_OPT_ULONG, &o.holdout},   {"--threads", TK_OPT_SIZE, &o.threads},
        {"--schedule", TK_OPT_STRING, &o.schedule},
    };
    int a = tk_parse_args(argc, argv, opts, sizeof opts / sizeof *opts, usage);
    if (a != 0)
        return a == 1 ? 0 : 2;
    tk_mode mode;
    if (check_options(&o, &mode) != 0)
        return 2;
    bn_impl impl;
    if (tk_impl_select(o.impl, &impl) != 0)
        return 2;
    bn_set_error_handler(bn_error_handler_quiet); /* the toolkit reports with context */
    const char *blas = tk_blas_setup();
    fprintf(stderr, "fig1: BLAS: %s\n", blas);

    tk_dataset train = {0}, test = {0};
    tk_file out;
    if (tk_file_open(&out, o.out) != 0)
        return 1;
    int st = tk_dataset_load(&train, o.data, "train");
    if (st == 0)
        st = o.holdout ? split_holdout(&train, &test, o.holdout)
                       : tk_dataset_load(&test, o.data, "t10k");
    if (st != 0) {
        tk_file_abort(&out);
        tk_dataset_free(&train), tk_dataset_free(&test);
        return 1;
    }
    fprintf(stderr, "fig1: data %s: %zu training, %zu %s images of %zu x %zu\n", o.data,
            train.n, test.n, o.holdout ? "held-out" : "test", train.H, train.W);

    size_t max_pts = o.steps / o.eval_every + 4;
    run runs[2] = {{.name = "plain", .bn = 0}, {.name = "bn", .bn = 1}};
    for (int k = 0; k < 2 && st == 0; k++) {
        run *r = &runs[k];
        r->o = &o, r->impl = impl, r->eval_mode = k ? mode : TK_EVAL_RUNNING;
        r->train = &train, r->test = &test;
        r->pts = calloc(max_pts, sizeof *r->pts);
        r->probe_vals = malloc(HIDDEN * test.n * sizeof *r->probe_vals);
        if (!r->pts || !r->probe_vals)
            st = tk_err("out of memory");
        else
            st = build(r);
    }
    double t0 = tk_now();
    if (st == 0 && o.threads == 2) {
        pthread_t th[2];
        int started[2] = {0, 0};
        for (int k = 0; k < 2; k++)
            started[k] = pthread_create(&th[k], NULL, train_thread, &runs[k]) == 0;
        for (int k = 0; k < 2; k++) {
            if (started[k])
                pthread_join(th[k], NULL);
            else
                runs[k].failed = train_network(&runs[k]) != 0; /* no thread: run it here */
        }
        st = runs[0].failed || runs[1].failed ? -1 : 0;
    } else if (st == 0) {
        st = train_network(&runs[0]) != 0 || train_network(&runs[1]) != 0 ? -1 : 0;
    }
    double secs = tk_now() - t0;

    if (st == 0) {
        fprintf(stderr, "fig1: trained both networks (%zu steps each) in %.1f s with --impl %s, "
                "%zu thread%s\n", o.steps, secs, bn_impl_name(impl), o.threads,
                o.threads > 1 ? "s" : "");
        printf("Figure 1 (Ioffe & Szegedy 2015, section 4.1): 784-100-100-100-10 sigmoid MLP, "
               "batch %zu, %zu steps, SGD lr %g momentum %g, init %s, impl %s, seed %lu\n",
               o.batch, o.steps, o.lr, o.momentum, o.init, bn_impl_name(impl), o.seed);
        summary(stdout, "", &runs[0], &runs[1], &o);
        st = write_results(&out, &runs[0], &runs[1], &o);
        if (st == 0)
            printf("wrote %zu evaluations to %s\n", runs[0].n_pts, o.out);
    } else {
        tk_file_abort(&out);
    }
    for (int k = 0; k < 2; k++) {
        tk_net_free(runs[k].net);
        free(runs[k].pts), free(runs[k].probe_vals);
    }
    tk_dataset_free(&train), tk_dataset_free(&test);
    return st == 0 ? 0 : 1;
}
