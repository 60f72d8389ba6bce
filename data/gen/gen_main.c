/*
 * gen_main.c — gen_vectors: writes the conformance vectors of the data/
 * folder, one .json file per operation (batch normalization, Ioffe & Szegedy
 * 2015: Algorithm 1, its gradient, the running statistics and Algorithm 2;
 * and the normalization family: Group/Layer/Instance Normalization, Batch
 * Renormalization, Ghost BN, Weight Normalization, PreciseBN) with binary128
 * expected values.
 *
 * Run: make vectors   (rewrites the .json files of data/; the same bytes every time)
 *      build/bin/gen_vectors --out DIR
 */
#include <stdio.h>
#include <string.h>

#include "gen.h"

static void usage(FILE *o)
{
    fprintf(o,
            "usage: gen_vectors [--out DIR]\n"
            "Writes the conformance vectors (JSON) of batch normalization and its\n"
            "family (GroupNorm, Batch Renorm, Ghost BN, WeightNorm, PreciseBN) into DIR\n"
            "(default: data). Deterministic: the same files, byte for byte, on every run.\n"
            "The format, tolerances and conventions: docs/conformance.md.\n");
}

int main(int argc, char **argv)
{
    const char *dir = "data";
    for (int k = 1; k < argc; k++) {
        if (strcmp(argv[k], "--help") == 0 || strcmp(argv[k], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (strcmp(argv[k], "--out") == 0 && k + 1 < argc) {
            dir = argv[++k];
        } else {
            fprintf(stderr, "gen_vectors: unknown argument '%s'\n", argv[k]);
            usage(stderr);
            return 2;
        }
    }
    void (*plain[])(gfile *) = {gen_running, gen_forward_infer, gen_backward_infer,
                                gen_groupnorm, gen_renorm, gen_ghost, gen_weightnorm,
                                gen_precise};
    size_t total = 0;
    for (size_t k = 0; k < 4 + sizeof plain / sizeof plain[0]; k++) {
        gfile f = {0};
        if (k < 2)
            gen_forward_train(&f, (int)k);
        else if (k < 4)
            gen_backward_train(&f, (int)k - 2);
        else
            plain[k - 4](&f);
        size_t n = gen_write(&f, dir);
        fprintf(stderr, "gen_vectors: %s/%s: %zu tests in %zu groups\n", dir, f.file, n,
                f.ngroups);
        total += n;
        gen_free_all();
    }
    fprintf(stderr, "gen_vectors: %zu tests in all\n", total);
    return 0;
}
