/*
 * data.c — the toolkit's data: the IDX reader (the MNIST file format, read
 * through zlib so that .gz and plain files both work), the MNIST-format data
 * set (default: Fashion-MNIST from Debian's dataset-fashion-mnist) and the
 * shuffled mini-batch iterator.
 *
 * The reader trusts nothing in the file: every size is checked before it is
 * used, the data is read in chunks (a header that claims a huge size cannot
 * make us allocate it up front), and a file with too few or too many bytes is
 * an error that names the file and says which.
 */
#include <errno.h>
#include <limits.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <gsl/gsl_randist.h>
#include <zlib.h>

#include "toolkit.h"

#define IDX_TYPE_UBYTE 0x08
#define IDX_MAX_BYTES ((size_t)1 << 30) /* far above MNIST's 47 MB; stops absurd headers */
#define IDX_CHUNK ((size_t)1 << 20)

/* zlib's message for the last failure on g (without the "<path>: " zlib
 * puts in front: our messages name the file already), or errno's. */
static const char *gz_why(gzFile g, const char *path)
{
    int code = Z_OK;
    const char *msg = gzerror(g, &code);
    if (code == Z_ERRNO)
        return strerror(errno);
    if (code == Z_OK || !msg || !*msg)
        return "read error";
    size_t len = strlen(path);
    return strncmp(msg, path, len) == 0 && strncmp(msg + len, ": ", 2) == 0 ? msg + len + 2 : msg;
}

/* Reads exactly n bytes: 0, or -1 with a message naming what was being read. */
static int read_exact(gzFile g, const char *path, void *buf, size_t n, const char *what)
{
    int got = gzread(g, buf, (unsigned)n);
    if (got < 0)
        return tk_err("%s: cannot read the %s: %s", path, what, gz_why(g, path));
    if ((size_t)got < n)
        return tk_err("%s: truncated: the file ends inside the %s (%d of %zu bytes)", path,
                      what, got, n);
    return 0;
}

static uint32_t be32(const unsigned char *b)
{
    return (uint32_t)b[0] << 24 | (uint32_t)b[1] << 16 | (uint32_t)b[2] << 8 | b[3];
}

/* The values after the header: exactly count bytes, then end of file. */
static int read_values(gzFile g, const char *path, tk_idx *a)
{
    size_t have = 0, cap = 0;
    while (have < a->count) {
        size_t want = a->count - have < IDX_CHUNK ? a->count - have : IDX_CHUNK;
        if (have + want > cap) {
            /* grow geometrically, but never beyond what the header promised */
            size_t ncap = cap ? 2 * cap : IDX_CHUNK;
            if (ncap > a->count)
                ncap = a->count;
            unsigned char *p = realloc(a->data, ncap);
            if (!p)
                return tk_err("%s: out of memory for %zu bytes", path, ncap);
            a->data = p, cap = ncap;
        }
        int got = gzread(g, a->data + have, (unsigned)want);
        if (got < 0)
            return tk_err("%s: cannot read the data: %s", path, gz_why(g, path));
        if (got == 0)
            return tk_err("%s: truncated: %zu of the %zu data bytes the header announces "
                          "(%zu missing)", path, have, a->count, a->count - have);
        have += (size_t)got;
    }
    /* One more read must find the end (and makes zlib check the gzip CRC). */
    unsigned char extra[256];
    int more = gzread(g, extra, sizeof extra);
    if (more < 0)
        return tk_err("%s: after the data: %s", path, gz_why(g, path));
    if (more > 0) {
        size_t total = 0;
        for (; more > 0; more = gzread(g, extra, sizeof extra))
            total += (size_t)more;
        return tk_err("%s: oversized: %zu%s bytes after the %zu data bytes the header "
                      "announces", path, total, more < 0 ? "+" : "", a->count);
    }
    return 0;
}

static int idx_parse(gzFile g, tk_idx *a, const char *path, int want_ndims)
{
    unsigned char magic[4];
    if (read_exact(g, path, magic, 4, "magic number") != 0)
        return -1;
    if (magic[0] != 0 || magic[1] != 0)
        return tk_err("%s: bad magic number %02x %02x %02x %02x: an IDX file starts with "
                      "two zero bytes (is this an MNIST-format file?)",
                      path, magic[0], magic[1], magic[2], magic[3]);
    if (magic[2] != IDX_TYPE_UBYTE)
        return tk_err("%s: value type 0x%02x is not supported: MNIST-format images and "
                      "labels are unsigned bytes (0x08)", path, magic[2]);
    if (magic[3] != want_ndims)
        return tk_err("%s: %d dimensions, expected %d (%s)", path, magic[3], want_ndims,
                      want_ndims == 3 ? "images: count, rows, columns" : "labels: count");
    a->ndims = want_ndims;
    unsigned char dims[12];
    if (read_exact(g, path, dims, 4 * (size_t)want_ndims, "dimension sizes") != 0)
        return -1;
    a->count = 1;
    for (int k = 0; k < want_ndims; k++) {
        a->dims[k] = be32(dims + 4 * k);
        if (a->dims[k] == 0)
            return tk_err("%s: dimension %d has size 0", path, k + 1);
        if (__builtin_mul_overflow(a->count, a->dims[k], &a->count) || a->count > IDX_MAX_BYTES)
            return tk_err("%s: the sizes multiply to more than %zu bytes: a corrupt header?",
                          path, IDX_MAX_BYTES);
    }
    return read_values(g, path, a);
}

int tk_idx_read(tk_idx *a, const char *path, int want_ndims)
{
    *a = (tk_idx){0};
    if (want_ndims < 1 || want_ndims > 3)
        return tk_err("%s: tk_idx_read supports 1 to 3 dimensions, not %d", path, want_ndims);
    errno = 0;
    gzFile g = gzopen(path, "rb");
    if (!g)
        return tk_err("%s: cannot open: %s", path, errno ? strerror(errno) : "out of memory");
    int st = idx_parse(g, a, path, want_ndims);
    gzclose(g);
    if (st != 0)
        tk_idx_free(a);
    return st;
}

void tk_idx_free(tk_idx *a)
{
    free(a->data);
    *a = (tk_idx){0};
}

/* ---------------------------------------------------------------- data set */

/* "<dir>/<stem>.gz" if it exists, else "<dir>/<stem>" if it exists; else -1. */
static int find_file(char *out, size_t size, const char *dir, const char *stem)
{
    static const char *const suffix[] = {".gz", ""};
    for (int k = 0; k < 2; k++) {
        int len = snprintf(out, size, "%s/%s%s", dir, stem, suffix[k]);
        if (len > 0 && (size_t)len < size && access(out, F_OK) == 0)
            return 0;
    }
    return -1;
}

static int missing(const char *dir, const char *stem)
{
    return tk_err("no %s[.gz] in %s: MNIST-format data not found.\n"
                  "  The default data is Fashion-MNIST from the Debian package dataset-fashion-mnist:\n"
                  "      sudo apt-get install dataset-fashion-mnist     (scripts/deps.sh installs it)\n"
                  "  or pass --data DIR, a directory holding {train,t10k}-images-idx3-ubyte[.gz] and\n"
                  "  {train,t10k}-labels-idx1-ubyte[.gz] (the original MNIST files work unchanged).",
                  stem, dir);
}

int tk_dataset_load(tk_dataset *ds, const char *dir, const char *split)
{
    *ds = (tk_dataset){0};
    char stem_x[64], stem_y[64], px[PATH_MAX], py[PATH_MAX];
    snprintf(stem_x, sizeof stem_x, "%s-images-idx3-ubyte", split);
    snprintf(stem_y, sizeof stem_y, "%s-labels-idx1-ubyte", split);
    if (find_file(px, sizeof px, dir, stem_x) != 0)
        return missing(dir, stem_x);
    if (find_file(py, sizeof py, dir, stem_y) != 0)
        return missing(dir, stem_y);

    tk_idx xi, yi;
    if (tk_idx_read(&xi, px, 3) != 0)
        return -1;
    if (tk_idx_read(&yi, py, 1) != 0) {
        tk_idx_free(&xi);
        return -1;
    }
    int st = 0;
    if (xi.dims[0] != yi.dims[0])
        st = tk_err("%s holds %zu images but %s holds %zu labels", px, xi.dims[0], py,
                    yi.dims[0]);
    for (size_t i = 0; st == 0 && i < yi.count; i++)
        if (yi.data[i] >= TK_CLASSES)
            st = tk_err("%s: label %u of example %zu is out of range (labels are 0..%d)", py,
                        yi.data[i], i, TK_CLASSES - 1);
    if (st == 0) {
        ds->n = xi.dims[0];
        ds->C = 1, ds->H = xi.dims[1], ds->W = xi.dims[2];
        ds->dim = ds->H * ds->W;
        ds->x = malloc(xi.count * sizeof *ds->x);
        if (!ds->x)
            st = tk_err("%s: out of memory for %zu floats", px, xi.count);
        for (size_t k = 0; st == 0 && k < xi.count; k++)
            ds->x[k] = (float)xi.data[k] / 255.0f;
        ds->y = yi.data; /* handed over */
        yi.data = NULL;
    }
    tk_idx_free(&xi);
    tk_idx_free(&yi);
    if (st != 0)
        tk_dataset_free(ds);
    return st;
}

void tk_dataset_free(tk_dataset *ds)
{
    free(ds->x);
    free(ds->y);
    *ds = (tk_dataset){0};
}

/* ------------------------------------------------------ mini-batch iterator */

static void shuffle(tk_batches *it)
{
    for (size_t i = 0; i < it->ds->n; i++)
        it->order[i] = i;
    gsl_ran_shuffle(it->rng, it->order, it->ds->n, sizeof *it->order);
    it->pos = 0;
}

int tk_batches_init(tk_batches *it, const tk_dataset *ds, size_t B, unsigned long seed)
{
    *it = (tk_batches){.ds = ds, .B = B};
    if (B == 0 || B > ds->n)
        return tk_err("mini-batch of %zu examples from a data set of %zu", B, ds->n);
    it->order = malloc(ds->n * sizeof *it->order);
    it->rng = gsl_rng_alloc(gsl_rng_mt19937);
    if (!it->order || !it->rng) {
        tk_batches_free(it);
        return tk_err("out of memory for a permutation of %zu examples", ds->n);
    }
    gsl_rng_set(it->rng, seed);
    shuffle(it);
    return 0;
}

void tk_batches_next(tk_batches *it, float *x, unsigned char *y)
{
    if (it->pos + it->B > it->ds->n) {
        shuffle(it);
        it->epoch++;
    }
    const tk_dataset *ds = it->ds;
    for (size_t i = 0; i < it->B; i++) {
        size_t k = it->order[it->pos + i];
        memcpy(x + i * ds->dim, ds->x + k * ds->dim, ds->dim * sizeof *x);
        y[i] = ds->y[k];
    }
    it->pos += it->B;
}

void tk_batches_free(tk_batches *it)
{
    free(it->order);
    if (it->rng)
        gsl_rng_free(it->rng);
    it->order = NULL, it->rng = NULL;
}
