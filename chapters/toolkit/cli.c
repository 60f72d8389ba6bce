/*
 * cli.c — what every chapter program shares around the training: messages,
 * the command line (strict parsing, --help), the choice of implementation
 * (--impl), the BLAS set-up, progress on stderr, and result files that are
 * written completely or not at all.
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "toolkit.h"

/* ----------------------------------------------------------------- messages */

static const char *progname = "bnlab";
static int quiet;
static _Thread_local char last_message[2048];

void tk_set_progname(const char *name) { progname = name; }
const char *tk_progname(void) { return progname; }
void tk_set_quiet(int q) { quiet = q; }
const char *tk_last_error(void) { return last_message; }

int tk_err(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(last_message, sizeof last_message, fmt, ap);
    va_end(ap);
    if (!quiet)
        fprintf(stderr, "%s: %s\n", progname, last_message);
    return -1;
}

void tk_note(const char *fmt, ...)
{
    if (quiet)
        return;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s: ", progname);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* ------------------------------------------------------------- command line */

/* A whole decimal unsigned number: strtoul alone accepts " 12", "-1" and "12x". */
static int parse_ulong(const char *s, unsigned long *v)
{
    if (*s < '0' || *s > '9')
        return -1;
    char *end;
    errno = 0;
    unsigned long r = strtoul(s, &end, 10);
    if (errno == ERANGE || *end != '\0')
        return -1;
    *v = r;
    return 0;
}

static int parse_double(const char *s, double *v)
{
    char *end;
    errno = 0;
    double r = strtod(s, &end);
    if (end == s || *end != '\0' || errno == ERANGE || !isfinite(r))
        return -1;
    *v = r;
    return 0;
}

/* Stores val into o; 0, or 2 after a message. */
static int set_option(const tk_opt *o, const char *val)
{
    unsigned long u;
    switch (o->type) {
    case TK_OPT_ULONG:
        if (parse_ulong(val, &u) != 0)
            break;
        *(unsigned long *)o->dst = u;
        return 0;
    case TK_OPT_SIZE:
        if (parse_ulong(val, &u) != 0 || u == 0)
            break;
        *(size_t *)o->dst = u;
        return 0;
    case TK_OPT_DOUBLE:
        if (parse_double(val, (double *)o->dst) != 0)
            break;
        return 0;
    case TK_OPT_STRING:
        if (*val == '\0')
            break;
        *(const char **)o->dst = val;
        return 0;
    case TK_OPT_FLAG:
        break;
    }
    static const char *const expected[] = {"an unsigned integer", "an integer > 0",
                                           "a finite number", "a non-empty value", ""};
    tk_err("%s '%s': expected %s (see --help)", o->name, val, expected[o->type]);
    return 2;
}

int tk_parse_args(int argc, char **argv, const tk_opt *opts, size_t n, void (*usage)(FILE *f))
{
    for (int i = 1; i < argc; i++) {
        const char *arg = argv[i];
        if (strcmp(arg, "--help") == 0 || strcmp(arg, "-h") == 0) {
            usage(stdout);
            return 1;
        }
        const tk_opt *o = NULL;
        const char *val = NULL;
        for (size_t k = 0; k < n && !o; k++) {
            size_t len = strlen(opts[k].name);
            if (strncmp(arg, opts[k].name, len) != 0)
                continue;
            if (arg[len] == '\0')
                o = &opts[k];
            else if (arg[len] == '=' && opts[k].type != TK_OPT_FLAG)
                o = &opts[k], val = arg + len + 1;
        }
        if (!o) {
            tk_err("unknown option '%s' (see --help)", arg);
            return 2;
        }
        if (o->type == TK_OPT_FLAG) {
            *(int *)o->dst = 1;
            continue;
        }
        if (!val) {
            if (i + 1 >= argc || strncmp(argv[i + 1], "--", 2) == 0) {
                tk_err("%s needs a value (see --help)", o->name);
                return 2;
            }
            val = argv[++i];
        }
        int st = set_option(o, val);
        if (st != 0)
            return st;
    }
    return 0;
}

int tk_impl_select(const char *name, bn_impl *impl)
{
    const char *why;
    if (!name) {
        int fast = bn_impl_available(BN_IMPL_FAST, &why);
        *impl = fast ? BN_IMPL_FAST : BN_IMPL_REF;
        tk_note("--impl %s (the default: %s)", bn_impl_name(*impl),
                fast ? "fast/ is built" : "fast/ is not built into this bnlab, so ref");
        return 0;
    }
    bn_error_handler_t *old = bn_set_error_handler(bn_error_handler_quiet);
    int st = bn_impl_parse(name, impl);
    bn_set_error_handler(old);
    if (st != BN_OK) {
        tk_err("--impl: %s", bn_last_error());
        return 2;
    }
    if (!bn_impl_available(*impl, &why)) {
        tk_err("--impl %s is not available: %s", name, why);
        return 2;
    }
    tk_note("--impl %s", bn_impl_name(*impl));
    return 0;
}

/* ------------------------------------------------------------------- BLAS */

/* OpenBLAS's own functions, present only when the program links OpenBLAS
 * (the chapters); with GSL's reference CBLAS (the tests) they are NULL. */
extern void openblas_set_num_threads(int n) __attribute__((weak));
extern char *openblas_get_config(void) __attribute__((weak));

const char *tk_blas_setup(void)
{
    if (openblas_set_num_threads && openblas_get_config) {
        /* Small GEMMs (60 x 784 x 100) gain nothing from threads, and the
         * two networks of a chapter already run on the two cores. */
        openblas_set_num_threads(1);
        static char desc[256];
        snprintf(desc, sizeof desc, "OpenBLAS (%s), 1 thread", openblas_get_config());
        return desc;
    }
    return "GSL's reference CBLAS (slow: link -lopenblas for speed)";
}

double tk_now(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* --------------------------------------------------------------- progress */

void tk_progress_start(tk_progress *p, const char *label, size_t total)
{
    *p = (tk_progress){.label = label, .total = total, .start = tk_now(), .every = 2.0};
    p->last = p->start;
}

void tk_progress_update(tk_progress *p, size_t step, double loss, double acc, int force)
{
    double now = tk_now();
    if (!force && now - p->last < p->every)
        return;
    p->last = now;
    double rate = step / (now - p->start > 1e-9 ? now - p->start : 1e-9);
    double eta = step < p->total ? (double)(p->total - step) / (rate > 0 ? rate : 1) : 0;
    tk_note("%s step %zu/%zu  loss %.4f  acc %.2f%%  %.0f steps/s  ETA %.0f s", p->label, step,
            p->total, loss, 100 * acc, rate, eta);
}

/* ------------------------------------------------------------ result files */

int tk_file_open(tk_file *tf, const char *path)
{
    *tf = (tk_file){0};
    if (strlen(path) >= sizeof tf->path)
        return tk_err("%s: file name too long", path);
    strcpy(tf->path, path);
    snprintf(tf->tmp, sizeof tf->tmp, "%s.tmp", path);
    tf->f = fopen(tf->tmp, "w");
    if (!tf->f)
        return tk_err("cannot write '%s': %s", tf->tmp, strerror(errno));
    return 0;
}

int tk_file_commit(tk_file *tf)
{
    int failed = ferror(tf->f);
    if (fclose(tf->f) != 0 || failed) {
        tf->f = NULL;
        remove(tf->tmp);
        return tk_err("error writing '%s'", tf->tmp);
    }
    tf->f = NULL;
    if (rename(tf->tmp, tf->path) != 0) {
        int e = errno;
        remove(tf->tmp);
        return tk_err("cannot rename '%s' to '%s': %s", tf->tmp, tf->path, strerror(e));
    }
    return 0;
}

void tk_file_abort(tk_file *tf)
{
    if (tf->f) {
        fclose(tf->f);
        remove(tf->tmp);
    }
    tf->f = NULL;
}
