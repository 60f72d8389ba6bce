/*
 * test_toolkit.c — the chapters' training toolkit (chapters/toolkit/):
 *
 * 1. The IDX reader on files this test writes under /tmp: good files (gzip
 *    and plain) read back byte for byte; every kind of corrupt file (magic,
 *    value type, dimensions, zero and overflowing sizes, truncated header or
 *    data, trailing bytes, a damaged gzip stream, a missing file) is refused
 *    with a message naming the file and the problem. The data set on top of
 *    it: label range, image/label counts, the how-to-get-the-data message,
 *    and Fashion-MNIST itself when it is installed.
 * 2. Layers against independent arithmetic: dense and the im2col + GEMM
 *    convolution against direct loops in double; gradients of whole networks
 *    (dense, conv2d, sigmoid, batch normalization through the switch,
 *    dropout with a fixed mask, softmax cross-entropy) by finite differences.
 * 3. The rest of the toolkit: SGD with momentum by hand, initialization
 *    scales, the mini-batch iterator, evaluation with batch, running and
 *    population statistics, the command-line parser and --impl.
 *
 * Run: make tests && build/tests/test_toolkit   (or make check)
 */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <gsl/gsl_statistics_double.h>
#include <zlib.h>

#include "harness.h"
#include "toolkit.h"

/* ============================================================ IDX files */

static char tmpdir[64];

/* A fresh directory under /tmp for the files of one test, removed at teardown. */
static void make_tmpdir(void)
{
    strcpy(tmpdir, "/tmp/bnlab-test-toolkit-XXXXXX");
    ck_assert_msg(mkdtemp(tmpdir) != NULL, "mkdtemp: %s", strerror(errno));
    tk_set_quiet(1);
}

static void remove_tmpdir(void)
{
    static const char *const names[] = {
        "a.idx", "a.idx.gz", "train-images-idx3-ubyte", "train-labels-idx1-ubyte",
        "train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"};
    char p[128];
    for (size_t k = 0; k < sizeof names / sizeof *names; k++) {
        snprintf(p, sizeof p, "%s/%s", tmpdir, names[k]);
        remove(p);
    }
    rmdir(tmpdir);
    tk_set_quiet(0);
}

static const char *tmp_path(const char *name)
{
    static char p[128];
    snprintf(p, sizeof p, "%s/%s", tmpdir, name);
    return p;
}

/* Writes bytes[n] to name, gzip-compressed if gz. */
static void write_file(const char *name, const unsigned char *bytes, size_t n, int gz)
{
    const char *p = tmp_path(name);
    if (gz) {
        gzFile g = gzopen(p, "wb");
        ck_assert_ptr_nonnull(g);
        ck_assert_int_eq(gzwrite(g, bytes, (unsigned)n), (int)n);
        ck_assert_int_eq(gzclose(g), Z_OK);
    } else {
        FILE *f = fopen(p, "wb");
        ck_assert_ptr_nonnull(f);
        ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

/* An IDX header for type 0x08 and the given sizes, then the values
 * v[k] = (k·7 + 3) mod 256 (or labels[k] if given); returns its length. */
static size_t make_idx(unsigned char *buf, int ndims, const unsigned *dims,
                       const unsigned char *values)
{
    size_t len = 0, count = 1;
    buf[len++] = 0, buf[len++] = 0, buf[len++] = 0x08, buf[len++] = (unsigned char)ndims;
    for (int k = 0; k < ndims; k++) {
        buf[len++] = (unsigned char)(dims[k] >> 24), buf[len++] = (unsigned char)(dims[k] >> 16);
        buf[len++] = (unsigned char)(dims[k] >> 8), buf[len++] = (unsigned char)dims[k];
        count *= dims[k];
    }
    for (size_t k = 0; k < count; k++)
        buf[len++] = values ? values[k] : (unsigned char)((k * 7 + 3) % 256);
    return len;
}

/* Asserts that reading name fails with a message holding the path and `what`. */
static void expect_refused(const char *name, int want_ndims, const char *what)
{
    tk_idx a;
    const char *p = tmp_path(name);
    ck_assert_int_eq(tk_idx_read(&a, p, want_ndims), -1);
    const char *msg = tk_last_error();
    printf("  refused as expected: %s\n", msg);
    ck_assert_msg(strstr(msg, p) != NULL, "message '%s' does not name the file", msg);
    ck_assert_msg(strstr(msg, what) != NULL, "message '%s' does not say '%s'", msg, what);
    ck_assert_ptr_null(a.data);
}

START_TEST(idx_good_file_reads_back_exactly_gzip_and_plain)
{
    unsigned char buf[512];
    const unsigned dims[3] = {5, 4, 3};
    size_t len = make_idx(buf, 3, dims, NULL);
    for (int gz = 0; gz <= 1; gz++) {
        const char *name = gz ? "a.idx.gz" : "a.idx";
        write_file(name, buf, len, gz);
        tk_idx a;
        ck_assert_int_eq(tk_idx_read(&a, tmp_path(name), 3), 0);
        ck_assert_int_eq(a.ndims, 3);
        ck_assert_uint_eq(a.dims[0], 5); ck_assert_uint_eq(a.dims[1], 4);
        ck_assert_uint_eq(a.dims[2], 3); ck_assert_uint_eq(a.count, 60);
        ck_assert_int_eq(memcmp(a.data, buf + 16, 60), 0);
        tk_idx_free(&a);
    }
}
END_TEST

START_TEST(idx_bad_magic_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[1] = {4};
    size_t len = make_idx(buf, 1, dims, NULL);
    buf[0] = 0x1f, buf[1] = 0x07; /* neither IDX nor a gzip header */
    write_file("a.idx", buf, len, 0);
    expect_refused("a.idx", 1, "bad magic number");
}
END_TEST

START_TEST(idx_unsupported_value_type_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[1] = {4};
    size_t len = make_idx(buf, 1, dims, NULL);
    buf[2] = 0x0D; /* float */
    write_file("a.idx.gz", buf, len, 1);
    expect_refused("a.idx.gz", 1, "value type 0x0d");
}
END_TEST

START_TEST(idx_wrong_number_of_dimensions_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[2] = {4, 3};
    size_t len = make_idx(buf, 2, dims, NULL);
    write_file("a.idx", buf, len, 0);
    expect_refused("a.idx", 3, "2 dimensions, expected 3");
}
END_TEST

START_TEST(idx_zero_size_dimension_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[3] = {4, 0, 3};
    size_t len = make_idx(buf, 3, dims, NULL);
    write_file("a.idx", buf, len, 0);
    expect_refused("a.idx", 3, "dimension 2 has size 0");
}
END_TEST

START_TEST(idx_sizes_whose_product_overflows_are_refused_before_allocating)
{
    /* 2^32-1 cubed overflows 64 bits; the header alone is the file */
    unsigned char buf[16] = {0, 0, 0x08, 3, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
                             0xff, 0xff, 0xff, 0xff};
    write_file("a.idx", buf, sizeof buf, 0);
    expect_refused("a.idx", 3, "multiply to more than");
}
END_TEST

START_TEST(idx_truncated_header_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[3] = {2, 2, 2};
    make_idx(buf, 3, dims, NULL);
    write_file("a.idx", buf, 3, 0); /* inside the magic number */
    expect_refused("a.idx", 3, "truncated: the file ends inside the magic number");
    write_file("a.idx.gz", buf, 10, 1); /* inside the sizes */
    expect_refused("a.idx.gz", 3, "truncated: the file ends inside the dimension sizes");
    write_file("a.idx", buf, 0, 0); /* empty */
    expect_refused("a.idx", 3, "truncated");
}
END_TEST

START_TEST(idx_truncated_data_is_refused)
{
    unsigned char buf[64];
    const unsigned dims[3] = {2, 3, 4};
    size_t len = make_idx(buf, 3, dims, NULL);
    write_file("a.idx.gz", buf, len - 1, 1);
    expect_refused("a.idx.gz", 3, "truncated: 23 of the 24 data bytes");
}
END_TEST

START_TEST(idx_trailing_bytes_are_refused)
{
    unsigned char buf[64];
    const unsigned dims[1] = {10};
    size_t len = make_idx(buf, 1, dims, NULL);
    buf[len++] = 1, buf[len++] = 2;
    write_file("a.idx", buf, len, 0);
    expect_refused("a.idx", 1, "oversized: 2 bytes after the 10 data bytes");
}
END_TEST

START_TEST(idx_damaged_gzip_stream_is_refused)
{
    /* A gzip file whose deflate data or CRC no longer matches: whatever zlib
     * makes of it, the reader must not return the data as good. */
    unsigned char buf[2048];
    const unsigned dims[3] = {8, 8, 8};
    size_t len = make_idx(buf, 3, dims, NULL);
    write_file("a.idx.gz", buf, len, 1);
    FILE *f = fopen(tmp_path("a.idx.gz"), "r+b");
    ck_assert_ptr_nonnull(f);
    ck_assert_int_eq(fseek(f, -6, SEEK_END), 0); /* inside the CRC-32 trailer */
    int c = fgetc(f);
    ck_assert_int_eq(fseek(f, -6, SEEK_END), 0);
    fputc(c ^ 0x5a, f);
    ck_assert_int_eq(fclose(f), 0);
    tk_idx a;
    ck_assert_int_eq(tk_idx_read(&a, tmp_path("a.idx.gz"), 3), -1);
    printf("  refused as expected: %s\n", tk_last_error());
    ck_assert_ptr_nonnull(strstr(tk_last_error(), tmp_path("a.idx.gz")));
}
END_TEST

START_TEST(idx_missing_file_is_refused)
{
    expect_refused("a.idx", 1, "cannot open: No such file or directory");
}
END_TEST

/* A tiny MNIST-format training split: 6 images of 2 x 3 and their labels. */
static void write_split(const unsigned char *labels, unsigned n_labels)
{
    unsigned char buf[256];
    const unsigned xd[3] = {6, 2, 3}, yd[1] = {n_labels};
    write_file("train-images-idx3-ubyte.gz", buf, make_idx(buf, 3, xd, NULL), 1);
    write_file("train-labels-idx1-ubyte", buf, make_idx(buf, 1, yd, labels), 0);
}

START_TEST(dataset_loads_pixels_over_255_and_labels)
{
    const unsigned char labels[6] = {0, 9, 3, 3, 1, 7};
    write_split(labels, 6);
    tk_dataset ds;
    ck_assert_int_eq(tk_dataset_load(&ds, tmpdir, "train"), 0);
    ck_assert_uint_eq(ds.n, 6); ck_assert_uint_eq(ds.H, 2); ck_assert_uint_eq(ds.W, 3);
    ck_assert_uint_eq(ds.dim, 6);
    double want[36];
    for (size_t k = 0; k < 36; k++)
        want[k] = (double)((k * 7 + 3) % 256) / 255.0;
    /* k/255 rounded to float once: half an ulp */
    ck_assert_uint_eq(cmp_f32("pixels / 255", ds.x, want, 36, 0, 0x1p-24), 0);
    ck_assert_int_eq(memcmp(ds.y, labels, 6), 0);
    tk_dataset_free(&ds);
}
END_TEST

START_TEST(dataset_label_out_of_range_is_refused)
{
    const unsigned char labels[6] = {0, 9, 10, 3, 1, 7};
    write_split(labels, 6);
    tk_dataset ds;
    ck_assert_int_eq(tk_dataset_load(&ds, tmpdir, "train"), -1);
    printf("  refused as expected: %s\n", tk_last_error());
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "train-labels-idx1-ubyte"));
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "label 10 of example 2 is out of range"));
    ck_assert_ptr_null(ds.x);
}
END_TEST

START_TEST(dataset_image_and_label_counts_must_agree)
{
    const unsigned char labels[5] = {0, 1, 2, 3, 4};
    write_split(labels, 5);
    tk_dataset ds;
    ck_assert_int_eq(tk_dataset_load(&ds, tmpdir, "train"), -1);
    printf("  refused as expected: %s\n", tk_last_error());
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "holds 6 images but"));
}
END_TEST

START_TEST(dataset_missing_files_say_how_to_get_the_data)
{
    tk_dataset ds;
    ck_assert_int_eq(tk_dataset_load(&ds, tmpdir, "t10k"), -1);
    const char *msg = tk_last_error();
    printf("  refused as expected: %s\n", msg);
    ck_assert_ptr_nonnull(strstr(msg, "t10k-images-idx3-ubyte"));
    ck_assert_ptr_nonnull(strstr(msg, tmpdir));
    ck_assert_ptr_nonnull(strstr(msg, "apt-get install dataset-fashion-mnist"));
    ck_assert_ptr_nonnull(strstr(msg, "--data DIR"));
}
END_TEST

START_TEST(fashion_mnist_when_installed_has_its_published_shape)
{
    tk_dataset tr, te;
    tk_set_quiet(1);
    if (tk_dataset_load(&tr, TK_DEFAULT_DATA_DIR, "train") != 0) {
        tk_set_quiet(0);
        skip("Fashion-MNIST", "not installed in " TK_DEFAULT_DATA_DIR
                              " (apt-get install dataset-fashion-mnist)");
        return;
    }
    ck_assert_int_eq(tk_dataset_load(&te, TK_DEFAULT_DATA_DIR, "t10k"), 0);
    tk_set_quiet(0);
    ck_assert_uint_eq(tr.n, 60000); ck_assert_uint_eq(te.n, 10000);
    ck_assert_uint_eq(tr.H, 28); ck_assert_uint_eq(tr.W, 28);
    /* Fashion-MNIST is balanced: 6,000 training and 1,000 test images per class */
    size_t count[2][TK_CLASSES] = {{0}};
    for (size_t i = 0; i < tr.n; i++)
        count[0][tr.y[i]]++;
    for (size_t i = 0; i < te.n; i++)
        count[1][te.y[i]]++;
    for (int c = 0; c < TK_CLASSES; c++) {
        ck_assert_uint_eq(count[0][c], 6000);
        ck_assert_uint_eq(count[1][c], 1000);
    }
    ck_assert_uint_eq(tr.y[0], 9); /* the first training image is an ankle boot */
    float lo = 1, hi = 0;
    for (size_t k = 0; k < tr.n * tr.dim; k++)
        lo = fminf(lo, tr.x[k]), hi = fmaxf(hi, tr.x[k]);
    ck_assert(lo == 0.0f && hi == 1.0f);
    tk_dataset_free(&tr), tk_dataset_free(&te);
}
END_TEST

/* ============================================================== layers */

/* Fills a float array from Uniform(lo, hi). */
static void fill_f(gsl_rng *r, float *x, size_t n, double lo, double hi)
{
    for (size_t k = 0; k < n; k++)
        x[k] = (float)gsl_ran_flat(r, lo, hi);
}

/* Float layers against the same sums in double: a dot product of n float
 * terms, each rounded, errs by about n·2^-24 of the sum of |terms| (bound);
 * with n <= 60 and |terms| sums of O(10), 1e-5 absolute + 1e-5 relative. */
#define LAYER_ATOL 1e-5
#define LAYER_RTOL 1e-5

START_TEST(dense_forward_matches_direct_sums)
{
    gsl_rng *r = rng_new(11);
    enum { B = 7, IN = 13, OUT = 5 };
    tk_net *net = tk_net_new(IN, 1, 1, B, BN_IMPL_REF, 1);
    ck_assert_ptr_nonnull(net);
    ck_assert_int_eq(tk_dense(net, OUT, 1), 0);
    tk_layer *L = &net->layers[0];
    fill_f(r, L->w.w, L->w.n, -1, 1);
    fill_f(r, L->b.w, L->b.n, -1, 1);
    float x[B * IN];
    fill_f(r, x, B * IN, -2, 2);
    ck_assert_int_eq(tk_forward(net, x, B, TK_EVAL_RUNNING), 0);
    double want[B * OUT];
    for (int i = 0; i < B; i++)
        for (int j = 0; j < OUT; j++) {
            double s = L->b.w[j];
            for (int k = 0; k < IN; k++)
                s += (double)x[i * IN + k] * L->w.w[j * IN + k];
            want[i * OUT + j] = s;
        }
    ck_assert_uint_eq(cmp_f32("dense y = x W^T + b", tk_act(net, 0), want, B * OUT,
                              LAYER_ATOL, LAYER_RTOL), 0);
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

/* Convolutions checked: (C, H, W, K, kh, kw, stride, pad) */
static const size_t conv_cases[][8] = {
    {1, 5, 5, 2, 3, 3, 1, 0},  /* valid */
    {2, 6, 5, 3, 3, 3, 1, 1},  /* same-size with padding, H != W */
    {3, 7, 7, 2, 3, 2, 2, 1},  /* stride 2, non-square kernel */
    {2, 4, 6, 4, 1, 1, 1, 0},  /* 1 x 1 */
};

START_TEST(conv2d_forward_matches_direct_convolution)
{
    const size_t *c = conv_cases[_i];
    size_t C = c[0], H = c[1], W = c[2], K = c[3], kh = c[4], kw = c[5], s = c[6], p = c[7];
    enum { B = 3 };
    gsl_rng *r = rng_new(12 + (unsigned long)_i);
    tk_net *net = tk_net_new(C, H, W, B, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_conv2d(net, K, kh, kw, s, p, 1), 0);
    tk_layer *L = &net->layers[0];
    size_t OH = (H + 2 * p - kh) / s + 1, OW = (W + 2 * p - kw) / s + 1;
    ck_assert_uint_eq(L->outH, OH); ck_assert_uint_eq(L->outW, OW);
    fill_f(r, L->w.w, L->w.n, -1, 1);
    fill_f(r, L->b.w, L->b.n, -1, 1);
    float *x = malloc(B * C * H * W * sizeof *x);
    fill_f(r, x, B * C * H * W, -1, 1);
    ck_assert_int_eq(tk_forward(net, x, B, TK_EVAL_RUNNING), 0);
    double *want = dalloc(B * K * OH * OW);
    for (size_t n = 0; n < B; n++)
        for (size_t k = 0; k < K; k++)
            for (size_t oh = 0; oh < OH; oh++)
                for (size_t ow = 0; ow < OW; ow++) {
                    double sum = L->b.w[k];
                    for (size_t ci = 0; ci < C; ci++)
                        for (size_t i = 0; i < kh; i++)
                            for (size_t j = 0; j < kw; j++) {
                                long h = (long)(oh * s + i) - (long)p;
                                long w = (long)(ow * s + j) - (long)p;
                                if (h < 0 || w < 0 || h >= (long)H || w >= (long)W)
                                    continue;
                                sum += (double)L->w.w[((k * C + ci) * kh + i) * kw + j] *
                                       x[((n * C + ci) * H + (size_t)h) * W + (size_t)w];
                            }
                    want[((n * K + k) * OH + oh) * OW + ow] = sum;
                }
    char label[96];
    snprintf(label, sizeof label, "conv C%zu %zux%zu K%zu k%zux%zu s%zu p%zu", C, H, W, K, kh,
             kw, s, p);
    ck_assert_uint_eq(cmp_f32(label, tk_act(net, 0), want, B * K * OH * OW, LAYER_ATOL,
                              LAYER_RTOL), 0);
    free(x), free(want);
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

/* ---- gradient checks of whole networks by finite differences */

typedef struct gcase {
    tk_net *net;
    const float *x;
    float *xmut;          /* the input, when it is being perturbed */
    const unsigned char *y;
    size_t B;
    unsigned long drop_seed;
    double *theta[16];    /* double copies of each parameter (and the input) */
    tk_param *p[16];
    size_t np;
} gcase;

static void collect(void *ctx, size_t layer, tk_param *p)
{
    (void)layer;
    gcase *g = ctx;
    ck_assert_uint_lt(g->np, 15);
    g->p[g->np++] = p;
}

/* The loss at the current theta: copies theta into the float parameters,
 * forward in training mode (the same dropout mask every time), softmax CE. */
static double net_loss(void *ctx)
{
    gcase *g = ctx;
    for (size_t j = 0; j < g->np; j++)
        for (size_t k = 0; k < g->p[j]->n; k++)
            g->p[j]->w[k] = (float)g->theta[j][k];
    size_t nin = g->net->inC * g->net->inH * g->net->inW;
    for (size_t k = 0; k < g->B * nin; k++)
        g->xmut[k] = (float)g->theta[g->np][k];
    gsl_rng_set(g->net->rng, g->drop_seed);
    ck_assert_int_eq(tk_forward(g->net, g->xmut, g->B, TK_TRAIN), 0);
    return tk_softmax_xent(NULL, tk_act(g->net, g->net->n_layers - 1), g->y, g->B,
                           tk_net_out_dim(g->net), NULL);
}

/* Float finite differences. The loss is computed from float activations
 * (float GEMMs, expf, the switch's rounding of BN to float), so it carries
 * rounding noise of a few 1e-7; the 5-point stencil divides that by ~h. With
 * h = 2^-5 that noise is ~1e-5 on the gradient, and the stencil's O(h^4)
 * truncation is of the same order. Measured against 1% of the largest
 * component (the floor), the worst error over these networks is ~7e-3
 * (h = 2^-6 doubles it: noise; 2^-4 raises the conv weights': truncation).
 * 2e-2 keeps a margin; a real mistake (a missing term, a wrong transpose,
 * index or scale) gives errors of order 1. */
#define FLOAT_FD_H 0x1p-5
#define FLOAT_FD_FLOOR 1e-2
#define FLOAT_FD_TOL 2e-2

/* Checks every parameter of net and its input x[B·n_in]. */
static void grad_check(const char *label, tk_net *net, const float *x, const unsigned char *y,
                       size_t B)
{
    gcase g = {.net = net, .x = x, .y = y, .B = B, .drop_seed = 99};
    ck_assert_int_eq(tk_net_want_dinput(net), 0);
    tk_net_params(net, collect, &g);
    size_t nin = net->inC * net->inH * net->inW;
    g.xmut = malloc(B * nin * sizeof(float));
    memcpy(g.xmut, x, B * nin * sizeof(float));
    for (size_t j = 0; j < g.np; j++) {
        g.theta[j] = dalloc(g.p[j]->n);
        for (size_t k = 0; k < g.p[j]->n; k++)
            g.theta[j][k] = g.p[j]->w[k];
    }
    g.theta[g.np] = dalloc(B * nin);
    for (size_t k = 0; k < B * nin; k++)
        g.theta[g.np][k] = x[k];

    /* analytic: forward, softmax CE gradient, backward */
    net_loss(&g);
    size_t K = tk_net_out_dim(net);
    float *dlogits = malloc(B * K * sizeof *dlogits);
    tk_softmax_xent(dlogits, tk_act(net, net->n_layers - 1), y, B, K, NULL);
    ck_assert_int_eq(tk_backward(net, dlogits), 0);

    printf("  grad check %-40s max rel err", label);
    double worst = 0;
    for (size_t j = 0; j <= g.np; j++) {
        size_t n = j < g.np ? g.p[j]->n : B * nin;
        const float *gf = j < g.np ? g.p[j]->g : net->dinput;
        double *ana = dalloc(n), *num = dalloc(n);
        for (size_t k = 0; k < n; k++)
            ana[k] = gf[k];
        fd_gradient(num, g.theta[j], n, FLOAT_FD_H, net_loss, &g);
        double e = max_rel_err(ana, num, n, FLOAT_FD_FLOOR);
        printf(" %s%zu %.1e", j < g.np ? "p" : "x", j, e);
        worst = (e > worst || isnan(e)) ? e : worst;
        free(ana), free(num);
    }
    printf("\n");
    fflush(stdout);
    for (size_t j = 0; j <= g.np; j++)
        free(g.theta[j]);
    free(dlogits), free(g.xmut);
    ck_assert_msg(worst <= FLOAT_FD_TOL, "%s: max rel err %.3g > %g", label, worst,
                  FLOAT_FD_TOL);
}

static void random_bias(void *ctx, size_t layer, tk_param *p)
{
    (void)layer;
    if (p->fan_in == 0) /* biases, gamma, beta: away from their initial 0 and 1 */
        for (size_t k = 0; k < p->n; k++)
            p->w[k] += (float)gsl_ran_flat(ctx, -0.5, 0.5);
}

static void randomize_biases(tk_net *net, gsl_rng *r)
{
    tk_net_params(net, random_bias, r);
}

static unsigned char *random_labels(gsl_rng *r, size_t B, size_t K)
{
    unsigned char *y = malloc(B);
    for (size_t i = 0; i < B; i++)
        y[i] = (unsigned char)gsl_rng_uniform_int(r, K);
    return y;
}

START_TEST(mlp_gradients_match_finite_differences)
{
    /* dense -> sigmoid -> dense -> sigmoid -> dense: the plain Figure 1 network */
    enum { B = 6, IN = 7, K = 4 };
    gsl_rng *r = rng_new(21);
    tk_net *net = tk_net_new(IN, 1, 1, B, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_dense(net, 5, 1) | tk_sigmoid(net) | tk_dense(net, 6, 1) |
                     tk_sigmoid(net) | tk_dense(net, K, 1), 0);
    tk_net_init(net, r, TK_INIT_FIXED, 1.0);
    randomize_biases(net, r);
    float x[B * IN];
    fill_f(r, x, B * IN, -1, 1);
    unsigned char *y = random_labels(r, B, K);
    grad_check("dense+sigmoid MLP", net, x, y, B);
    free(y);
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

START_TEST(batchnorm_mlp_gradients_match_finite_differences)
{
    /* dense (no bias) -> BN -> sigmoid -> dense -> BN -> sigmoid -> dense:
     * the BN Figure 1 network, batch normalization by ref through the switch */
    enum { B = 8, IN = 6, K = 3 };
    gsl_rng *r = rng_new(22);
    tk_net *net = tk_net_new(IN, 1, 1, B, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_dense(net, 5, 0) | tk_batchnorm(net, 1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1) |
                     tk_sigmoid(net) | tk_dense(net, 4, 0) |
                     tk_batchnorm(net, 1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1) |
                     tk_sigmoid(net) | tk_dense(net, K, 1), 0);
    tk_net_init(net, r, TK_INIT_LECUN, 0);
    randomize_biases(net, r);
    float x[B * IN];
    fill_f(r, x, B * IN, -1, 1);
    unsigned char *y = random_labels(r, B, K);
    grad_check("dense+BN+sigmoid MLP", net, x, y, B);
    free(y);
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

START_TEST(conv_bn_dropout_gradients_match_finite_differences)
{
    /* conv (stride 2, pad 1) -> spatial BN -> sigmoid -> conv 1x1 -> sigmoid
     * -> dropout (the same mask at every evaluation) -> dense */
    enum { B = 3, C = 2, H = 5, W = 6, K = 3 };
    gsl_rng *r = rng_new(23);
    tk_net *net = tk_net_new(C, H, W, B, BN_IMPL_REF, 7);
    ck_assert_int_eq(tk_conv2d(net, 3, 3, 3, 2, 1, 0) |
                     tk_batchnorm(net, 1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1) |
                     tk_sigmoid(net) | tk_conv2d(net, 2, 1, 1, 1, 0, 1) | tk_sigmoid(net) |
                     tk_dropout(net, 0.3) | tk_dense(net, K, 1), 0);
    ck_assert_uint_eq(net->layers[0].outH, 3); ck_assert_uint_eq(net->layers[0].outW, 3);
    tk_net_init(net, r, TK_INIT_GLOROT, 0);
    randomize_biases(net, r);
    float x[B * C * H * W];
    fill_f(r, x, B * C * H * W, -1, 1);
    unsigned char *y = random_labels(r, B, K);
    grad_check("conv+BN+sigmoid+dropout", net, x, y, B);
    /* the mask did drop something, and scaled the rest by 1/(1 - p) */
    const tk_layer *D = &net->layers[5];
    size_t zeros = 0, scaled = 0;
    for (size_t k = 0; k < B * D->n_in; k++)
        zeros += D->mask[k] == 0.0f, scaled += D->mask[k] == (float)(1 / 0.7);
    ck_assert_uint_gt(zeros, 0);
    ck_assert_uint_eq(zeros + scaled, B * D->n_in);
    free(y);
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

START_TEST(relu_passes_gradient_only_where_the_output_is_positive)
{
    enum { B = 2, D = 4 };
    tk_net *net = tk_net_new(D, 1, 1, B, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_relu(net), 0);
    const float x[B * D] = {-2, -0.0f, 0.5f, 3, 1e-30f, -1e-30f, 7, -7};
    ck_assert_int_eq(tk_net_want_dinput(net), 0);
    ck_assert_int_eq(tk_forward(net, x, B, TK_TRAIN), 0);
    const float dy[B * D] = {1, 2, 3, 4, 5, 6, 7, 8};
    ck_assert_int_eq(tk_backward(net, dy), 0);
    const double want_y[B * D] = {0, 0, 0.5, 3, 1e-30f, 0, 7, 0};
    const double want_dx[B * D] = {0, 0, 3, 4, 5, 0, 7, 0};
    ck_assert_uint_eq(cmp_f32("relu y", tk_act(net, 0), want_y, B * D, 0, 0), 0);
    ck_assert_uint_eq(cmp_f32("relu dx", net->dinput, want_dx, B * D, 0, 0), 0);
    tk_net_free(net);
}
END_TEST

START_TEST(softmax_xent_loss_gradient_and_accuracy)
{
    /* equal logits: loss log K, gradient (1/K - onehot)/B, argmax ties -> index 0 */
    enum { B = 2, K = 4 };
    const float z[B * K] = {0, 0, 0, 0, 1000, -1000, 999, 0};
    const unsigned char y[B] = {0, 2};
    float dz[B * K];
    size_t correct = 0;
    double loss = tk_softmax_xent(dz, z, y, B, K, &correct);
    /* example 1: log(1 + e^-1 + ...) - (999 - 1000) = 1 + log(1 + e^-1) (no overflow at 1000) */
    double want_loss = (log(4.0) + 1 + log1p(exp(-1.0))) / 2;
    /* example 1 is computed as 1000 + log(Σ) - 999: the rounding of a number
     * near 1000 (an ulp is 1.1e-13) survives the cancellation */
    ck_assert_uint_eq(cmp_f64("softmax CE loss", &loss, &want_loss, 1, 1e-12, 0), 0);
    ck_assert_uint_eq(correct, 1); /* example 0: tie, index 0 = label; example 1: argmax 0 != 2 */
    double p0 = 1 / (1 + exp(-1.0)), p2 = exp(-1.0) / (1 + exp(-1.0));
    const double want_dz[B * K] = {(0.25 - 1) / 2, 0.125, 0.125, 0.125,
                                   p0 / 2, 0, (p2 - 1) / 2, 0};
    /* each gradient is rounded to float once from double: half an ulp,
     * plus ~1e-16 from exp */
    ck_assert_uint_eq(cmp_f32("softmax CE dlogits", dz, want_dz, B * K, 1e-30, 0x1p-23), 0);
}
END_TEST

/* ================================================== the rest of the toolkit */

START_TEST(sgd_with_momentum_matches_two_steps_by_hand)
{
    tk_net *net = tk_net_new(2, 1, 1, 2, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_dense(net, 1, 1), 0);
    tk_layer *L = &net->layers[0];
    L->w.w[0] = 1, L->w.w[1] = -2, L->b.w[0] = 0.5f;
    const tk_sgd opt = {.lr = 0.5, .momentum = 0.75, .weight_decay = 0.25};
    /* step 1: g = (1, 1; b 1). v = g + wd·w (weights only) = (1.25, 0.5; b 1);
     *         w = w - lr·v = (0.375, -2.25; b 0)
     * step 2: same g. v = 0.75·v + g + wd·w = (0.9375 + 1 + 0.09375, 0.375 + 1 - 0.5625;
     *         b 0.75 + 1) = (2.03125, 0.8125; b 1.75); w = (-0.640625, -2.65625; b -0.875) */
    for (int step = 0; step < 2; step++) {
        L->w.g[0] = L->w.g[1] = L->b.g[0] = 1;
        tk_sgd_step(net, &opt);
    }
    const double want_w[2] = {-0.640625, -2.65625}, want_b[1] = {-0.875};
    /* every intermediate is a short binary fraction: exact in float */
    ck_assert_uint_eq(cmp_f32("SGD weights", L->w.w, want_w, 2, 0, 0), 0);
    ck_assert_uint_eq(cmp_f32("SGD bias (no decay)", L->b.w, want_b, 1, 0, 0), 0);
    tk_net_free(net);
}
END_TEST

START_TEST(init_scales_follow_fan_in_and_fan_out)
{
    gsl_rng *r = rng_new(31);
    tk_net *net = tk_net_new(784, 1, 1, 1, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_dense(net, 100, 1) | tk_batchnorm(net, 1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), 0);
    const tk_init rules[3] = {TK_INIT_LECUN, TK_INIT_GLOROT, TK_INIT_HE};
    const double want[3] = {1 / sqrt(784.0), sqrt(2 / 884.0), sqrt(2 / 784.0)};
    for (int k = 0; k < 3; k++) {
        tk_net_init(net, r, rules[k], 0);
        const tk_layer *L = &net->layers[0];
        double *w = dalloc(L->w.n);
        for (size_t j = 0; j < L->w.n; j++)
            w[j] = L->w.w[j];
        double sd = gsl_stats_sd_with_fixed_mean(w, 1, L->w.n, 0.0);
        printf("  init %-6s std %.5f, want %.5f\n", tk_init_name(rules[k]), sd, want[k]);
        /* n = 78,400 draws: the sample std has relative error ~1/sqrt(2n) =
         * 0.25%; 2% is 8 standard errors, and far from the other rules (>= 6%) */
        ck_assert_uint_eq(cmp_f64("init std", &sd, &want[k], 1, 0, 0.02), 0);
        free(w);
        for (size_t j = 0; j < L->b.n; j++)
            ck_assert(L->b.w[j] == 0.0f);
        const tk_layer *N = &net->layers[1];
        for (size_t c = 0; c < N->outC; c++)
            ck_assert(N->w.w[c] == 1.0f && N->b.w[c] == 0.0f && N->run_var[c] == 1.0f);
    }
    tk_net_free(net);
    gsl_rng_free(r);
}
END_TEST

/* A synthetic data set: n examples of dim values, x = example·dim + k, labels
 * example mod 10. */
static tk_dataset synthetic(size_t n, size_t dim)
{
    tk_dataset ds = {.n = n, .C = dim, .H = 1, .W = 1, .dim = dim};
    ds.x = malloc(n * dim * sizeof *ds.x);
    ds.y = malloc(n);
    for (size_t i = 0; i < n; i++) {
        for (size_t k = 0; k < dim; k++)
            ds.x[i * dim + k] = (float)(i * dim + k);
        ds.y[i] = (unsigned char)(i % 10);
    }
    return ds;
}

START_TEST(batches_cover_each_epoch_once_and_depend_only_on_the_seed)
{
    enum { N = 50, B = 7 }; /* 7 batches an epoch, 1 example left out each time */
    tk_dataset ds = synthetic(N, 2);
    tk_batches a, b, c;
    ck_assert_int_eq(tk_batches_init(&a, &ds, B, 5), 0);
    ck_assert_int_eq(tk_batches_init(&b, &ds, B, 5), 0);
    ck_assert_int_eq(tk_batches_init(&c, &ds, B, 6), 0);
    float xa[B * 2], xb[B * 2], xc[B * 2];
    unsigned char ya[B], yb[B], yc[B];
    int differs = 0;
    for (int epoch = 0; epoch < 3; epoch++) {
        int seen[N] = {0};
        for (int k = 0; k < N / B; k++) {
            tk_batches_next(&a, xa, ya);
            tk_batches_next(&b, xb, yb);
            tk_batches_next(&c, xc, yc);
            ck_assert_int_eq(memcmp(xa, xb, sizeof xa), 0); /* same seed, same batches */
            differs |= memcmp(xa, xc, sizeof xa) != 0;
            for (int i = 0; i < B; i++) {
                size_t ex = (size_t)xa[2 * i] / 2;
                ck_assert(xa[2 * i + 1] == xa[2 * i] + 1); /* rows copied whole */
                ck_assert_uint_eq(ya[i], ex % 10);          /* with their labels */
                seen[ex]++;
            }
        }
        int once = 0, never = 0;
        for (int i = 0; i < N; i++)
            once += seen[i] == 1, never += seen[i] == 0;
        ck_assert_int_eq(once, N - N % B); /* without replacement within an epoch */
        ck_assert_int_eq(never, N % B);
        ck_assert_uint_eq(a.epoch, (size_t)epoch);
    }
    ck_assert_msg(differs, "another seed must give another order");
    tk_batches_free(&a), tk_batches_free(&b), tk_batches_free(&c);
    tk_dataset_free(&ds);
}
END_TEST

/* BN directly on the input of a synthetic set, so every statistic is known. */
START_TEST(evaluation_uses_batch_running_or_population_statistics)
{
    enum { N = 60, D = 3, B = 6, K = 5 };
    gsl_rng *r = rng_new(41);
    tk_dataset ds = synthetic(N, D);
    for (size_t k = 0; k < N * D; k++)
        ds.x[k] = (float)gsl_ran_gaussian(r, 2.0) + (float)(k % D);
    for (size_t i = 0; i < N; i++)
        ds.y[i] = (unsigned char)(i % D); /* labels < the D outputs of this network */
    tk_net *net = tk_net_new(D, 1, 1, N, BN_IMPL_REF, 1);
    const double eps = 1e-3;
    ck_assert_int_eq(tk_batchnorm(net, eps, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 1.0), 0);
    tk_layer *L = &net->layers[0];
    for (int c = 0; c < D; c++)
        L->w.w[c] = 1.5f + (float)c, L->b.w[c] = -0.5f * (float)c;

    /* population: K batches drawn by the iterator with the same seed, checked
     * against GSL's means in double (Algorithm 2) */
    ck_assert_int_eq(tk_population_stats(net, &ds, K, B, 77), 0);
    tk_batches it;
    ck_assert_int_eq(tk_batches_init(&it, &ds, B, 77), 0);
    double sum_mean[D] = {0}, sum_var[D] = {0}, col[B];
    float xb[B * D];
    unsigned char yb[B];
    for (int k = 0; k < K; k++) {
        tk_batches_next(&it, xb, yb);
        for (int c = 0; c < D; c++) {
            for (int i = 0; i < B; i++)
                col[i] = xb[i * D + c];
            double mu = gsl_stats_mean(col, 1, B);
            sum_mean[c] += mu;
            sum_var[c] += gsl_stats_variance_with_fixed_mean(col, 1, B, mu) ; /* biased */
        }
    }
    tk_batches_free(&it);
    double want_mean[D], want_var[D];
    for (int c = 0; c < D; c++)
        want_mean[c] = sum_mean[c] / K, want_var[c] = (double)B / (B - 1) * sum_var[c] / K;
    /* float batch statistics of O(1) data, averaged: ~1e-6 relative; the mean
     * of values near 0 needs an absolute term */
    ck_assert_uint_eq(cmp_f32("population mean", L->pop_mean, want_mean, D, 1e-6, 1e-5), 0);
    ck_assert_uint_eq(cmp_f32("population var (unbiased)", L->pop_var, want_var, D, 0, 1e-5), 0);

    /* evaluation with population statistics: y = gamma (x - E)/sqrt(Var + eps) + beta */
    double acc, loss;
    ck_assert_int_eq(tk_evaluate(net, &ds, N, N, TK_EVAL_POPULATION, NULL, NULL, &acc, &loss), 0);
    double *want = dalloc(N * D);
    for (int i = 0; i < N; i++)
        for (int c = 0; c < D; c++)
            want[i * D + c] = L->w.w[c] * (ds.x[i * D + c] - want_mean[c]) /
                              sqrt(want_var[c] + eps) + L->b.w[c];
    ck_assert_uint_eq(cmp_f32("eval with population stats", tk_act(net, 0), want, N * D,
                              1e-5, 1e-5), 0);

    /* batch statistics: each evaluated batch is normalized by itself, so its
     * output has mean beta per unit (whatever the population statistics) */
    ck_assert_int_eq(tk_evaluate(net, &ds, N, N, TK_EVAL_BATCH, NULL, NULL, &acc, &loss), 0);
    for (int c = 0; c < D; c++) {
        double s = 0;
        for (int i = 0; i < N; i++)
            s += tk_act(net, 0)[i * D + c];
        double m = s / N, b = L->b.w[c];
        ck_assert_uint_eq(cmp_f64("batch-stats output mean = beta", &m, &b, 1, 1e-5, 0), 0);
    }

    /* running statistics with momentum 1: exactly the last training batch's
     * mean and unbiased variance; a training step also makes the population
     * statistics stale (the weights would move) */
    ck_assert_int_eq(tk_forward(net, ds.x, B, TK_TRAIN), 0);
    double run_want[D];
    for (int c = 0; c < D; c++) {
        for (int i = 0; i < B; i++)
            col[i] = ds.x[i * D + c];
        run_want[c] = gsl_stats_mean(col, 1, B);
    }
    ck_assert_uint_eq(cmp_f32("running mean, momentum 1", L->run_mean, run_want, D, 1e-6, 1e-5), 0);
    const tk_sgd opt = {.lr = 0.1};
    tk_sgd_step(net, &opt);
    tk_set_quiet(1);
    ck_assert_int_eq(tk_evaluate(net, &ds, N, N, TK_EVAL_POPULATION, NULL, NULL, &acc, &loss), -1);
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "no population statistics"));
    /* a label the network has no output for is refused, not read past the end */
    ds.y[7] = D;
    ck_assert_int_eq(tk_evaluate(net, &ds, N, N, TK_EVAL_RUNNING, NULL, NULL, &acc, &loss), -1);
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "label 3 of example 7, but the network has 3 outputs"));
    tk_set_quiet(0);
    free(want);
    tk_net_free(net);
    tk_dataset_free(&ds);
    gsl_rng_free(r);
}
END_TEST

START_TEST(bad_shapes_and_parameters_are_refused_with_a_message)
{
    tk_set_quiet(1);
    ck_assert_ptr_null(tk_net_new(0, 28, 28, 60, BN_IMPL_REF, 1));
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "sizes must be > 0"));
    ck_assert_ptr_null(tk_net_new(1, 65536, 65536, 60, BN_IMPL_REF, 1)); /* > INT_MAX values */
    tk_net *net = tk_net_new(1, 5, 5, 4, BN_IMPL_REF, 1);
    ck_assert_int_eq(tk_conv2d(net, 2, 7, 3, 1, 0, 1), -1); /* 7 rows of kernel, 5 of image */
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "do not fit an input of 5 x 5"));
    ck_assert_int_eq(tk_conv2d(net, 2, 3, 3, 0, 0, 1), -1); /* stride 0 */
    ck_assert_int_eq(tk_dropout(net, 1.0), -1);
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "must be in [0, 1)"));
    ck_assert_int_eq(tk_batchnorm(net, -1e-5, BN_RUNNING_MOMENTUM_NEW_UNBIASED, 0.1), -1);
    ck_assert_int_eq(tk_dense(net, 0, 1), -1);
    ck_assert_uint_eq(net->n_layers, 0); /* nothing half-added */
    ck_assert_int_eq(tk_dense(net, 3, 1), 0);
    float x[5 * 25] = {0};
    ck_assert_int_eq(tk_forward(net, x, 5, TK_TRAIN), -1); /* 5 > max_batch 4 */
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "batch of 5, this network takes 1 to 4"));
    ck_assert_int_eq(tk_forward(net, x, 4, TK_EVAL_RUNNING), 0);
    const float dy[12] = {0};
    ck_assert_int_eq(tk_backward(net, dy), -1); /* after an evaluation forward */
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "not in training mode"));
    tk_net_free(net);
    tk_set_quiet(0);
}
END_TEST

static void no_usage(FILE *f) { (void)f; }

START_TEST(command_line_is_parsed_strictly)
{
    unsigned long seed = 1;
    size_t steps = 10;
    double lr = 0.1;
    const char *impl = NULL;
    int flag = 0;
    const tk_opt opts[] = {{"--seed", TK_OPT_ULONG, &seed}, {"--steps", TK_OPT_SIZE, &steps},
                           {"--lr", TK_OPT_DOUBLE, &lr},     {"--impl", TK_OPT_STRING, &impl},
                           {"--flag", TK_OPT_FLAG, &flag}};
    char *good[] = {"p", "--seed", "42", "--steps=7", "--lr", "1e-3", "--impl=ref", "--flag"};
    ck_assert_int_eq(tk_parse_args(8, good, opts, 5, no_usage), 0);
    ck_assert_uint_eq(seed, 42); ck_assert_uint_eq(steps, 7);
    ck_assert(lr == 1e-3 && flag == 1 && strcmp(impl, "ref") == 0);
    /* each of these is refused with exit status 2 */
    char *bad[][3] = {{"p", "--steps", "-1"}, {"p", "--steps", "0"},  {"p", "--seed", "12x"},
                      {"p", "--lr", "nan"},   {"p", "--lr", "1e999"}, {"p", "--bogus", "1"},
                      {"p", "--impl", ""},    {"p", "--seed", "--steps"}};
    tk_set_quiet(1);
    for (size_t k = 0; k < sizeof bad / sizeof *bad; k++)
        ck_assert_msg(tk_parse_args(3, bad[k], opts, 5, no_usage) == 2, "'%s %s' accepted",
                      bad[k][1], bad[k][2]);
    char *help[] = {"p", "--help"};
    ck_assert_int_eq(tk_parse_args(2, help, opts, 5, no_usage), 1);
    char *missing[] = {"p", "--lr"};
    ck_assert_int_eq(tk_parse_args(2, missing, opts, 5, no_usage), 2);
    tk_set_quiet(0);
}
END_TEST

START_TEST(impl_selection_refuses_what_is_not_built)
{
    bn_impl impl;
    tk_set_quiet(1);
    ck_assert_int_eq(tk_impl_select("ref", &impl), 0);
    ck_assert_int_eq(impl, BN_IMPL_REF);
    ck_assert_int_eq(tk_impl_select("bogus", &impl), 2);
    ck_assert_int_eq(tk_impl_select(NULL, &impl), 0);
    ck_assert_int_eq(impl, bn_impl_available(BN_IMPL_FAST, NULL) ? BN_IMPL_FAST : BN_IMPL_REF);
    for (int k = BN_IMPL_FAST; k <= BN_IMPL_CUDA; k++)
        if (!bn_impl_available((bn_impl)k, NULL))
            ck_assert_int_eq(tk_impl_select(bn_impl_name((bn_impl)k), &impl), 2);
    ck_assert_ptr_nonnull(strstr(tk_last_error(), "is not available"));
    tk_set_quiet(0);
}
END_TEST

/* ================================================================ suites */

static Suite *idx_suite(void)
{
    Suite *s = suite_create("toolkit: IDX reader and data set");
    TCase *tc = tcase_create("idx");
    tcase_add_checked_fixture(tc, make_tmpdir, remove_tmpdir);
    tcase_add_test(tc, idx_good_file_reads_back_exactly_gzip_and_plain);
    tcase_add_test(tc, idx_bad_magic_is_refused);
    tcase_add_test(tc, idx_unsupported_value_type_is_refused);
    tcase_add_test(tc, idx_wrong_number_of_dimensions_is_refused);
    tcase_add_test(tc, idx_zero_size_dimension_is_refused);
    tcase_add_test(tc, idx_sizes_whose_product_overflows_are_refused_before_allocating);
    tcase_add_test(tc, idx_truncated_header_is_refused);
    tcase_add_test(tc, idx_truncated_data_is_refused);
    tcase_add_test(tc, idx_trailing_bytes_are_refused);
    tcase_add_test(tc, idx_damaged_gzip_stream_is_refused);
    tcase_add_test(tc, idx_missing_file_is_refused);
    tcase_add_test(tc, dataset_loads_pixels_over_255_and_labels);
    tcase_add_test(tc, dataset_label_out_of_range_is_refused);
    tcase_add_test(tc, dataset_image_and_label_counts_must_agree);
    tcase_add_test(tc, dataset_missing_files_say_how_to_get_the_data);
    tcase_add_test(tc, fashion_mnist_when_installed_has_its_published_shape);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *layer_suite(void)
{
    Suite *s = suite_create("toolkit: layers and gradients");
    TCase *tc = tcase_create("layers");
    tcase_add_test(tc, dense_forward_matches_direct_sums);
    tcase_add_loop_test(tc, conv2d_forward_matches_direct_convolution, 0,
                        (int)(sizeof conv_cases / sizeof *conv_cases));
    tcase_add_test(tc, mlp_gradients_match_finite_differences);
    tcase_add_test(tc, batchnorm_mlp_gradients_match_finite_differences);
    tcase_add_test(tc, conv_bn_dropout_gradients_match_finite_differences);
    tcase_add_test(tc, relu_passes_gradient_only_where_the_output_is_positive);
    tcase_add_test(tc, softmax_xent_loss_gradient_and_accuracy);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    return s;
}

static Suite *training_suite(void)
{
    Suite *s = suite_create("toolkit: optimizer, batches, evaluation, command line");
    TCase *tc = tcase_create("training");
    tcase_add_test(tc, sgd_with_momentum_matches_two_steps_by_hand);
    tcase_add_test(tc, init_scales_follow_fan_in_and_fan_out);
    tcase_add_test(tc, batches_cover_each_epoch_once_and_depend_only_on_the_seed);
    tcase_add_test(tc, evaluation_uses_batch_running_or_population_statistics);
    tcase_add_test(tc, bad_shapes_and_parameters_are_refused_with_a_message);
    tcase_add_test(tc, command_line_is_parsed_strictly);
    tcase_add_test(tc, impl_selection_refuses_what_is_not_built);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    tk_set_progname("test_toolkit");
    bn_set_error_handler(bn_error_handler_quiet); /* the toolkit reports with context */
    Suite *suites[] = {idx_suite(), layer_suite(), training_suite()};
    return run_suites(suites, 3) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
