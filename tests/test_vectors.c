/*
 * test_vectors.c — runs every conformance vector of data/ (docs/
 * conformance.md) against bnlab through its public API:
 *
 *   ref   the double reference bn_<op>_ref on every group, and the float
 *         switch bn_<op>(BN_IMPL_REF) on the fp32 groups;
 *   fast  bn_<op>(BN_IMPL_FAST) on the fp32 groups, when built;
 *   cuda  bn_<op>(BN_IMPL_CUDA) on the fp32 groups, when built and a GPU is
 *         there (otherwise SKIP with the reason bn_impl_available gives).
 *
 * A valid test passes when every expected array matches within the test's
 * tolerance (cmp_f64 of harness.h; float outputs are widened exactly); an
 * invalid one when bnlab returns exactly the status the vector names.
 * Only failing comparisons are printed (BNLAB_VECTORS_VERBOSE=1 prints all).
 * A last suite feeds the JSON reader and the vector loader malformed files:
 * each must give a clear error, no crash, no leak (make asan runs it too).
 *
 * The normalization family's files (groupnorm, renorm, ghost, weightnorm,
 * precise) run on the double reference; the fp32 GroupNorm/LayerNorm groups
 * also run through the float switch and fast/. The other family members have
 * no float version, so those targets print SKIP with the reason
 * bnv_unsupported gives.
 *
 * Run: make check, or build/tests/test_vectors (BNLAB_DATA_DIR=dir picks
 * another folder of vectors).
 */
#include <fcntl.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"
#include "json.h"
#include "vectors.h"

#ifndef BNLAB_DATA_DIR
#define BNLAB_DATA_DIR "data"
#endif

static const char *const files[] = {
    "forward_train.json", "forward_train_relu.json", "backward_train.json",
    "backward_train_relu.json", "running_stats.json", "forward_infer.json",
    "backward_infer.json",
    /* the normalization family */
    "groupnorm.json", "renorm.json", "ghost.json", "weightnorm.json", "precise.json"};
enum { NFILES = sizeof files / sizeof files[0] };

static const char *data_dir(void)
{
    const char *d = getenv("BNLAB_DATA_DIR");
    return d && *d ? d : BNLAB_DATA_DIR;
}

/* cmp_f64 with its report hidden unless something mismatches: it runs once
 * with stdout on /dev/null and, only if it finds a mismatch, once more with
 * stdout back, so that its MISMATCH lines are seen. Same comparator, same
 * verdict; hundreds of passing lines are not printed. */
static size_t quiet_cmp(const char *what, const double *got, const double *want, size_t n,
                        double atol, double rtol)
{
    const char *v = getenv("BNLAB_VECTORS_VERBOSE");
    if (v && strcmp(v, "1") == 0)
        return cmp_f64(what, got, want, n, atol, rtol);
    fflush(stdout);
    int saved = dup(STDOUT_FILENO), null = open("/dev/null", O_WRONLY);
    if (saved < 0 || null < 0) {       /* cannot hide it: print it */
        if (saved >= 0) close(saved);
        if (null >= 0) close(null);
        return cmp_f64(what, got, want, n, atol, rtol);
    }
    dup2(null, STDOUT_FILENO);
    close(null);
    size_t bad = cmp_f64(what, got, want, n, atol, rtol);
    fflush(stdout);
    dup2(saved, STDOUT_FILENO);
    close(saved);
    return bad ? cmp_f64(what, got, want, n, atol, rtol) : 0;
}

static int has_flag(const bnv_test *t, const char *flag)
{
    for (size_t k = 0; k < t->nflags; k++)
        if (strcmp(t->flags[k], flag) == 0)
            return 1;
    return 0;
}

/* Runs every test of one file on one target; returns the number failed.
 * The double reference also runs the fp32 groups, except the cases that
 * are invalid because a result overflows binary32: binary64 holds it. */
static int run_file(const char *file, bnv_target target, const char *target_name,
                    int fp32_only)
{
    char path[1024], err[512];
    snprintf(path, sizeof path, "%s/%s", data_dir(), file);
    bnv_file f;
    if (bnv_load(&f, path, err, sizeof err) != 0) {
        printf("  FAIL %s: %s\n", file, err);
        return 1;
    }
    int run = 0, failed = 0, invalid = 0, not_applicable = 0, unsupported = 0;
    const char *why = NULL;
    errors_quiet();                    /* invalid tests provoke bnlab errors */
    for (size_t gi = 0; gi < f.ngroups; gi++) {
        const bnv_group *g = &f.groups[gi];
        if (fp32_only && !g->fp32)
            continue;
        const char *no = bnv_unsupported(g, target);
        if (no) {                      /* bnlab has no such version of the operation */
            unsupported += (int)g->ntests;
            why = no;
            continue;
        }
        for (size_t ti = 0; ti < g->ntests; ti++) {
            const bnv_test *t = &g->tests[ti];
            if (target.use_double && g->fp32 && has_flag(t, "Overflow")) {
                not_applicable++;
                continue;
            }
            char label[128];
            snprintf(label, sizeof label, "%s tcId %ld [%s]", file, t->tc_id, target_name);
            bnv_result res;
            run++;
            if (bnv_run(g, t, target, &res) != 0) {
                printf("  FAIL %s: out of memory\n", label);
                failed++;
                continue;
            }
            if (!t->valid) {
                invalid++;
                int want = bnv_status_of(t->error);
                if (res.status != want) {
                    printf("  FAIL %s (%s): want %s, got %s%s%s\n", label, t->comment, t->error,
                           bn_strerror(res.status), res.status ? ": " : "",
                           res.status ? bn_last_error() : "");
                    failed++;
                }
            } else if (res.status != BN_OK) {
                printf("  FAIL %s (%s): %s returned %s: %s\n", label, t->comment, res.call,
                       bn_strerror(res.status), bn_last_error());
                failed++;
            } else if (bnv_compare(t, &res, quiet_cmp, label) != 0) {
                printf("  FAIL %s (%s)%s\n", label, t->comment,
                       t->want_num_batches >= 0 && res.num_batches != t->want_num_batches
                           ? ": numBatchesTracked differs" : "");
                failed++;
            }
            bnv_result_free(&res);
        }
    }
    errors_loud();
    if (run || !unsupported) {
        printf("  %-26s [%s]: %d tests (%d invalid), %d passed, %d failed", file, target_name,
               run, invalid, run - failed, failed);
        if (not_applicable)
            printf(" (%d fp32 overflow case%s not applicable to binary64)", not_applicable,
                   not_applicable > 1 ? "s" : "");
        printf("\n");
    }
    if (unsupported) {
        char what[160];
        snprintf(what, sizeof what, "%s [%s], %d tests", file, target_name, unsupported);
        skip(what, why);
    }
    fflush(stdout);
    bnv_free(&f);
    return failed;
}

START_TEST(vectors_double_ref)
{
    bnv_target T = {1, BN_IMPL_REF};
    ck_assert_int_eq(run_file(files[_i], T, "ref double", 0), 0);
}
END_TEST

START_TEST(vectors_float_switch_ref)
{
    bnv_target T = {0, BN_IMPL_REF};
    ck_assert_int_eq(run_file(files[_i], T, "ref float switch", 1), 0);
}
END_TEST

START_TEST(vectors_fast)
{
    const char *why;
    if (!bn_impl_available(BN_IMPL_FAST, &why)) {
        if (_i == 0)
            skip("conformance vectors on fast (all files)", why);
        return;
    }
    bnv_target T = {0, BN_IMPL_FAST};
    ck_assert_int_eq(run_file(files[_i], T, "fast", 1), 0);
}
END_TEST

START_TEST(vectors_cuda)
{
    const char *why;
    if (!bn_impl_available(BN_IMPL_CUDA, &why)) {
        if (_i == 0)
            skip("conformance vectors on cuda (all files)", why);
        return;
    }
    bnv_target T = {0, BN_IMPL_CUDA};
    ck_assert_int_eq(run_file(files[_i], T, "cuda", 1), 0);
}
END_TEST

/* ============================================== malformed files must fail */

/* Parses text[0..len) and returns whether it failed with `want` in the message. */
static int rejects(const char *text, size_t len, const char *want)
{
    char err[256] = "";
    json_value *v = json_parse(text, len, err, sizeof err);
    int ok = v == NULL && strstr(err, want) != NULL;
    printf("  %-34.34s -> %s\n", text, v ? "(accepted)" : err);
    json_free(v);
    return ok;
}

START_TEST(json_rejects_malformed_text)
{
    static const struct { const char *text, *want; } cases[] = {
        {"", "unexpected end"},
        {"   ", "unexpected end"},
        {"{", "expected a string key"},
        {"[1, 2", "expected ',' or ']'"},
        {"[1, 2,]", "unexpected character ']'"},
        {"{\"a\": 1,}", "expected a string key"},
        {"{\"a\" 1}", "expected ':'"},
        {"{\"a\": 1, \"a\": 2}", "duplicate key"},
        {"[01]", "leading zero"},
        {"[1.]", "digits must follow '.'"},
        {"[1e]", "digits must follow the exponent"},
        {"[-]", "invalid number"},
        {"[+1]", "unexpected character '+'"},
        {"[.5]", "unexpected character '.'"},
        {"[1e999]", "does not fit in a double"},
        {"[NaN]", "unexpected character 'N'"},
        {"[Infinity]", "unexpected character 'I'"},
        {"[nul]", "unexpected character 'n'"},
        {"[1] 2", "text after the JSON value"},
        {"\"abc", "unterminated string"},
        {"\"a\tb\"", "control character"},
        {"\"\\x\"", "invalid escape"},
        {"\"\\u12\"", "invalid escape"},
        {"\"\\ud800\"", "without its low half"},
        {"\"\\ud800\\u0041\"", "without its low half"},
        {"\"\\udc00\"", "lone low surrogate"},
        {"\"\xc3\x28\"", "invalid UTF-8"},
        {"\"\xc0\xaf\"", "invalid UTF-8"},          /* overlong '/' */
        {"\"\xed\xa0\x80\"", "invalid UTF-8"},      /* an encoded surrogate */
        {"\xff", "unexpected byte 0xff"},
        {"{\"a\\u0000b\": 1}", "escaped NUL"},
        {"// comment\n1", "unexpected character '/'"},
    };
    size_t n = sizeof cases / sizeof cases[0];
    for (size_t k = 0; k < n; k++)
        ck_assert_msg(rejects(cases[k].text, strlen(cases[k].text), cases[k].want),
                      "case %zu: %s", k, cases[k].text);
    /* a NUL byte inside the text is an error, not the end of the text */
    ck_assert(rejects("[1,\0 2]", 7, "unexpected byte 0x00"));
    ck_assert(rejects("\"a\0b\"", 5, "control character"));
    /* nesting beyond the limit fails cleanly, far below any stack limit */
    char deep[2 * JSON_MAX_DEPTH + 10];
    memset(deep, '[', sizeof deep);
    ck_assert(rejects(deep, sizeof deep, "nesting deeper"));
}
END_TEST

START_TEST(json_reads_valid_text)
{
    const char *text = "{\"a\": [1, 2.5e-3, -0, true, false, null, \"\\u00e9\\ud83d\\ude00\\n\"],"
                       " \"b\": {}, \"c\": [], \"d\": -1.7976931348623157e308}";
    char err[256];
    json_value *v = json_parse(text, strlen(text), err, sizeof err);
    ck_assert_msg(v != NULL, "%s", err);
    const json_value *a = json_get(v, "a");
    ck_assert(a && a->type == JSON_ARRAY && a->u.array.n == 7);
    ck_assert(a->u.array.items[0].u.number == 1 && a->u.array.items[1].u.number == 2.5e-3);
    ck_assert(a->u.array.items[2].u.number == 0 && signbit(a->u.array.items[2].u.number));
    ck_assert(a->u.array.items[3].u.boolean == 1 && a->u.array.items[4].type == JSON_BOOL &&
              a->u.array.items[4].u.boolean == 0 && a->u.array.items[5].type == JSON_NULL);
    ck_assert_str_eq(a->u.array.items[6].u.string.s, "\xc3\xa9\xf0\x9f\x98\x80\n");
    ck_assert(json_get(v, "d")->u.number == -1.7976931348623157e308);
    ck_assert(json_get(v, "zz") == NULL && json_get(a, "a") == NULL);
    json_free(v);
}
END_TEST

/* Every prefix and many one-byte corruptions of a real vector file either
 * parse or fail with a message: under ASan this is the reader's fuzz test. */
START_TEST(json_survives_truncation_and_corruption)
{
    char path[1024], err[256];
    snprintf(path, sizeof path, "%s/%s", data_dir(), "running_stats.json");
    FILE *fp = fopen(path, "rb");
    ck_assert_msg(fp != NULL, "cannot open %s", path);
    static char text[4096];
    size_t len = fread(text, 1, sizeof text, fp);
    fclose(fp);
    size_t failed = 0, parsed = 0;
    for (size_t k = 0; k <= len; k++) {
        json_value *v = json_parse(text, k, err, sizeof err);
        v ? parsed++ : (ck_assert_msg(err[0] != '\0', "prefix %zu: no message", k), failed++);
        json_free(v);
    }
    gsl_rng *r = rng_new(77);
    static const char bytes[] = "{}[],:\"\\0123456789.eE+-tfnu \n\x01\x80\xff";
    for (int k = 0; k < 3000; k++) {
        char copy[4096];
        memcpy(copy, text, len);
        for (int j = 0; j < 1 + k % 3; j++)
            copy[gsl_rng_uniform_int(r, len)] = bytes[gsl_rng_uniform_int(r, sizeof bytes - 1)];
        json_value *v = json_parse(copy, len, err, sizeof err);
        v ? parsed++ : (ck_assert_msg(err[0] != '\0', "corruption %d: no message", k), failed++);
        json_free(v);
    }
    gsl_rng_free(r);
    printf("  %zu prefixes and 3000 corruptions of %zu bytes: %zu parsed, %zu rejected with a message\n",
           len + 1, len, parsed, failed);
    ck_assert_uint_gt(failed, len);   /* every proper prefix of a file is malformed */
}
END_TEST

/* A small valid forward_train file, and broken versions of it: the loader
 * must name what is wrong. */
static const char *tiny_file =
    "{\"algorithm\": \"BatchNormalization\", \"schema\": \"forward_train_schema.json\","
    " \"generatorVersion\": \"t\", \"numberOfTests\": 1, \"numberFormat\": \"\", \"header\": [],"
    " \"notes\": {\"Typical\": {\"bugType\": \"BASIC\", \"description\": \"\"}},"
    " \"testGroups\": [{\"type\": \"BnForwardTrain\", \"dtype\": \"DTYPE\", \"expectedFrom\": \"binary128\","
    " \"layout\": \"NCHW\", \"shape\": {\"N\": 2, \"C\": 1, \"H\": 1, \"W\": 1}, \"eps\": 0,"
    " \"affine\": false, \"activation\": \"none\", \"tests\": [{\"tcId\": 1, \"comment\": \"\","
    " \"flags\": [\"Typical\"], \"inputs\": {\"x\": [XS]}, \"expected\": {\"y\": [-1, 1],"
    " \"mean\": [0], \"varBiased\": [1], \"invstd\": [1]}, \"tolerance\": {\"y\": {\"atol\": 0,"
    " \"rtol\": 0}, \"mean\": {\"atol\": 0, \"rtol\": 0}, \"varBiased\": {\"atol\": 0, \"rtol\": 0},"
    " \"invstd\": {\"atol\": 0, \"rtol\": 0}}, \"result\": \"valid\"}]}]}";

/* The same in the family's format: LayerNorm (groups = 1) of one row. */
static const char *tiny_gn_file =
    "{\"algorithm\": \"GroupNormalization\", \"schema\": \"groupnorm_schema.json\","
    " \"generatorVersion\": \"t\", \"numberOfTests\": 1, \"numberFormat\": \"\", \"header\": [],"
    " \"notes\": {\"Typical\": {\"bugType\": \"BASIC\", \"description\": \"\"}},"
    " \"testGroups\": [{\"type\": \"GnForward\", \"dtype\": \"DTYPE\", \"expectedFrom\": \"binary128\","
    " \"layout\": \"NCHW\", \"shape\": {\"N\": 1, \"C\": 2, \"H\": 1, \"W\": 1}, \"eps\": 0,"
    " \"affine\": false, \"groups\": 1, \"tests\": [{\"tcId\": 1, \"comment\": \"\","
    " \"flags\": [\"Typical\"], \"inputs\": {\"x\": [XS]}, \"expected\": {\"y\": [-1, 1],"
    " \"mean\": [0], \"varBiased\": [1], \"invstd\": [1]}, \"tolerance\": {\"y\": {\"atol\": 0,"
    " \"rtol\": 0}, \"mean\": {\"atol\": 0, \"rtol\": 0}, \"varBiased\": {\"atol\": 0, \"rtol\": 0},"
    " \"invstd\": {\"atol\": 0, \"rtol\": 0}}, \"result\": \"valid\"}]}]}";

/* base with each edits[e][0] replaced by edits[e][1] in turn (an edit
 * whose text is no longer there is skipped), written and loaded. */
static int load_edited(const char *base, const char *edits[][2], int nedits, char *err,
                       size_t errlen)
{
    static char text[4096], tmp[4096];
    snprintf(text, sizeof text, "%s", base);
    for (int e = 0; e < nedits; e++) {
        char *at = strstr(text, edits[e][0]);
        if (!at)
            continue;
        snprintf(tmp, sizeof tmp, "%.*s%s%s", (int)(at - text), text, edits[e][1],
                 at + strlen(edits[e][0]));
        snprintf(text, sizeof text, "%s", tmp);
    }
    char path[] = "/tmp/bnlab_vectors_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_msg(fd >= 0, "mkstemp failed");
    ck_assert(write(fd, text, strlen(text)) == (ssize_t)strlen(text));
    close(fd);
    bnv_file f;
    int st = bnv_load(&f, path, err, errlen);
    unlink(path);
    if (st == 0) {
        /* and it runs: x = (-1, 1) normalizes to itself */
        bnv_result res;
        ck_assert_int_eq(bnv_run(&f.groups[0], &f.groups[0].tests[0], (bnv_target){1, BN_IMPL_REF}, &res), 0);
        ck_assert_int_eq(res.status, BN_OK);
        ck_assert_uint_eq(bnv_compare(&f.groups[0].tests[0], &res, cmp_f64, "tiny file"), 0);
        bnv_result_free(&res);
        bnv_free(&f);
    }
    return st;
}

START_TEST(loader_names_what_is_wrong)
{
    static const struct { const char *from, *to, *want; } cases[] = {
        {"\"numberOfTests\": 1", "\"numberOfTests\": 2", "numberOfTests is 2 but the file holds 1"},
        {"[XS]", "[-1, 1, 3]", "inputs.x (line 1) must be an array of 2 numbers"},
        {"[XS]", "[-1, \"one\"]", "not a number"},
        {"\"BnForwardTrain\"", "\"BnForwardInfer\"", "does not belong in a forward_train file"},
        {"\"invstd\": {\"atol\": 0, \"rtol\": 0}", "\"zz\": {\"atol\": 0, \"rtol\": 0}", "names no expected array"},
        {", \"invstd\": {\"atol\": 0, \"rtol\": 0}", "", "expected.invstd has no tolerance"},
        {"\"N\": 2", "\"N\": 0", "N must be an integer in [1, 1048576]"},
        {"\"flags\": [\"Typical\"]", "\"flags\": [\"Nope\"]", "has no entry in the header's notes"},
        {"\"result\": \"valid\"", "\"result\": \"invalid\"", "\"error\" must be given exactly when"},
        {"\"affine\": false", "\"affine\": true", "inputs lacks \"gamma\""},
        {"\"x\": [XS]", "\"x\": [XS], \"gamma\": [1]", "does not use"},
        {"\"tcId\": 1", "\"tcId\": 1, \"extra\": 0", "unknown member \"extra\""},
        {"\"layout\": \"NCHW\"", "\"layout\": \"CHWN\"", "not one of the allowed values"},
    };
    char err[512];
    const char *ok[][2] = {{"DTYPE", "fp64"}, {"XS", "-1, 1"}};
    ck_assert_msg(load_edited(tiny_file, ok, 2, err, sizeof err) == 0, "the tiny file must load: %s", err);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *edits[3][2] = {{"DTYPE", "fp64"}, {cases[k].from, cases[k].to}, {"XS", "-1, 1"}};
        int st = load_edited(tiny_file, edits, 3, err, sizeof err);
        printf("  %-44.44s -> %s\n", cases[k].to, st ? err : "(loaded)");
        ck_assert_msg(st != 0 && strstr(err, cases[k].want), "case %zu: want \"%s\", got \"%s\"", k,
                      cases[k].want, st ? err : "(loaded)");
    }
    /* as an fp32 group it loads and runs (-1 and 1 are binary32 values) ... */
    const char *f32ok[][2] = {{"DTYPE", "fp32"}, {"XS", "-1, 1"}};
    ck_assert_int_eq(load_edited(tiny_file, f32ok, 2, err, sizeof err), 0);
    /* ... but 0.1 is not a binary32 value, so an fp32 group cannot hold it */
    const char *f32bad[][2] = {{"DTYPE", "fp32"}, {"XS", "0.1, 1"}};
    ck_assert_int_ne(load_edited(tiny_file, f32bad, 2, err, sizeof err), 0);
    printf("  fp32 group with x = 0.1 -> %s\n", err);
    ck_assert(strstr(err, "is not a binary32 value") != NULL);
    ck_assert_int_ne(bnv_load(&(bnv_file){0}, "/nonexistent/x.json", err, sizeof err), 0);
    ck_assert(strstr(err, "cannot open") != NULL);
}
END_TEST

/* The family's files: group fields by type, sizes by groups. */
START_TEST(loader_checks_family_files)
{
    static const struct { const char *from, *to, *want; } cases[] = {
        {"\"mean\": [0]", "\"mean\": [0, 0]", "expected.mean (line 1) must be an array of 1 numbers"},
        {"\"groups\": 1", "\"groups\": 2", "expected.mean (line 1) must be an array of 2 numbers"},
        {"\"groups\": 1, ", "", "groups must be an integer"},
        {"\"groups\": 1", "\"groups\": 1, \"activation\": \"none\"", "\"activation\" is not a field of GnForward groups"},
        {"\"GnForward\"", "\"BnForwardTrain\"", "does not belong in a groupnorm file"},
        {"\"GnForward\"", "\"GnSideways\"", "not one of the allowed values"},
        {"\"GroupNormalization\"", "\"BatchNormalization\"", "holds \"GroupNormalization\""},
    };
    char err[512];
    const char *ok[][2] = {{"DTYPE", "fp64"}, {"XS", "-1, 1"}};
    ck_assert_msg(load_edited(tiny_gn_file, ok, 2, err, sizeof err) == 0, "the tiny GN file must load: %s", err);
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        const char *edits[3][2] = {{"DTYPE", "fp64"}, {cases[k].from, cases[k].to}, {"XS", "-1, 1"}};
        int st = load_edited(tiny_gn_file, edits, 3, err, sizeof err);
        printf("  %-44.44s -> %s\n", cases[k].to, st ? err : "(loaded)");
        ck_assert_msg(st != 0 && strstr(err, cases[k].want), "case %zu: want \"%s\", got \"%s\"", k,
                      cases[k].want, st ? err : "(loaded)");
    }
}
END_TEST

static Suite *vectors_suite(void)
{
    Suite *s = suite_create("conformance vectors (data/)");
    TCase *tc = tcase_create("ref");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, vectors_double_ref, 0, NFILES);
    tcase_add_loop_test(tc, vectors_float_switch_ref, 0, NFILES);
    suite_add_tcase(s, tc);
    TCase *tc2 = tcase_create("fast and cuda");
    tcase_set_timeout(tc2, 60);
    tcase_add_loop_test(tc2, vectors_fast, 0, NFILES);
    tcase_add_loop_test(tc2, vectors_cuda, 0, NFILES);
    suite_add_tcase(s, tc2);
    return s;
}

static Suite *reader_suite(void)
{
    Suite *s = suite_create("vector files: JSON reader and loader");
    TCase *tc = tcase_create("malformed input");
    tcase_add_test(tc, json_rejects_malformed_text);
    tcase_add_test(tc, json_reads_valid_text);
    tcase_add_test(tc, json_survives_truncation_and_corruption);
    tcase_add_test(tc, loader_names_what_is_wrong);
    tcase_add_test(tc, loader_checks_family_files);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    Suite *suites[] = {vectors_suite(), reader_suite()};
    return run_suites(suites, 2) == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
