/*
 * fast_dispatch.c — which kernels fast/ runs, and how it cuts the work.
 *
 * The instruction set is chosen once, at the first call: AVX-512 if CPUID
 * says the CPU has AVX-512 F/DQ/BW/VL and the OS saves the 512-bit registers
 * (XCR0), else AVX2 + FMA if it has those and the OS saves the 256-bit
 * registers, else the portable C path. The environment variable
 *     BNLAB_FAST_ISA=avx512 | avx2 | portable   ("scalar" = portable)
 * overrides the choice, so one machine can run (and test) every path. A
 * name it does not know, or a path this CPU cannot run, is an error
 * (BN_EINVAL, with a message) from every fast function: never a silent
 * fallback to another path.
 *
 * Also here: the cache sizes and the choice of stores. fast_plan.c cuts
 * the work; docs/performance.md tells the whole story.
 */
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifdef _OPENMP
#include <omp.h>
#endif

#include "bn_internal.h"
#include "fast_internal.h"

#ifdef BN_FAST_X86
#include <cpuid.h>

/* XCR0: which register states the OS saves on a context switch. */
static unsigned long long xgetbv0(void)
{
    unsigned lo, hi;
    __asm__ volatile("xgetbv" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static int cpu_avx2_fma(void)
{
    unsigned a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return 0;
    if (!(c & bit_OSXSAVE) || !(c & bit_AVX) || !(c & bit_FMA))
        return 0;
    if ((xgetbv0() & 0x6) != 0x6)  /* SSE and AVX (YMM) state */
        return 0;
    if (!__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    return (b & bit_AVX2) != 0;
}

static int cpu_avx512(void)
{
    unsigned a, b, c, d;
    if (!cpu_avx2_fma() || !__get_cpuid_count(7, 0, &a, &b, &c, &d))
        return 0;
    unsigned need = bit_AVX512F | bit_AVX512DQ | bit_AVX512BW | bit_AVX512VL;
    if ((b & need) != need)
        return 0;
    return (xgetbv0() & 0xe6) == 0xe6;  /* + opmask, ZMM_Hi256, Hi16_ZMM */
}
#endif

/* The paths, best first. */
static const struct {
    const char *name;
    const bn_fast_kernels *k;
    int (*supported)(void);
} paths[] = {
#ifdef BN_FAST_X86
    {"avx512", &bn_fast_kernels_avx512, cpu_avx512},
    {"avx2", &bn_fast_kernels_avx2, cpu_avx2_fma},
#endif
    {"portable", &bn_fast_kernels_portable, NULL},
};
enum { N_PATHS = sizeof paths / sizeof paths[0] };

static int path_index(const char *name)
{
    if (strcmp(name, "scalar") == 0)
        name = "portable";
    for (int i = 0; i < N_PATHS; i++)
        if (strcmp(name, paths[i].name) == 0)
            return i;
    return -1;
}

static int path_runs(int i) { return !paths[i].supported || paths[i].supported(); }

/* The table in use once chosen (NULL before the first successful call). */
static _Atomic(const bn_fast_kernels *) chosen;

static int choose(const char *name, const bn_fast_kernels **k)
{
    if (name && *name) {
        int i = path_index(name);
        if (i < 0)
            BN_ERROR(BN_EINVAL, "BNLAB_FAST_ISA=%s: unknown path (use avx512, avx2 "
                     "or portable)", name);
        if (!path_runs(i))
            BN_ERROR(BN_EINVAL, "BNLAB_FAST_ISA=%s: this CPU (or its OS) cannot run "
                     "the %s path; unset it to let CPUID choose", name, paths[i].name);
        *k = paths[i].k;
        return BN_OK;
    }
    for (int i = 0; i < N_PATHS; i++)
        if (path_runs(i)) {
            *k = paths[i].k;
            return BN_OK;
        }
    BN_ERROR(BN_EINVAL, "no fast/ path runs on this CPU");  /* portable always does */
}

int bn_fast_kernels_get(const bn_fast_kernels **k)
{
    const bn_fast_kernels *t = atomic_load(&chosen);
    if (!t) {
        BN_TRY(choose(getenv("BNLAB_FAST_ISA"), &t));
        atomic_store(&chosen, t);
    }
    *k = t;
    return BN_OK;
}

const char *bn_fast_isa(void)
{
    const bn_fast_kernels *k;
    return bn_fast_kernels_get(&k) == BN_OK ? k->name : NULL;
}

/* ---------------------------------------------------------- test hooks */

int bn_fast_isa_supported(const char *name)
{
    int i = name ? path_index(name) : -1;
    return i >= 0 && path_runs(i);
}

int bn_fast_force_isa(const char *name)
{
    const bn_fast_kernels *k = NULL;
    if (name)
        BN_TRY(choose(name, &k));
    atomic_store(&chosen, k);  /* NULL: choose again at the next call */
    return BN_OK;
}

static _Atomic int stream_mode = -1;

void bn_fast_force_stream(int mode) { atomic_store(&stream_mode, mode); }

void bn_fast_set_threads(int n)
{
#ifdef _OPENMP
    omp_set_num_threads(n > 0 ? n : 1);
#else
    (void)n;
#endif
}

int bn_fast_threads(void)
{
#ifdef _OPENMP
    return omp_get_max_threads();
#else
    return 1;
#endif
}

/* ------------------------------------------------------ cache and plans */

/* The size of the level-`level` data (or unified) cache of CPU 0, from
 * sysfs; sysconf as a fallback (in some VMs glibc's figure for L3 is ten
 * times the real one, sysfs has the one the hypervisor reports). */
static size_t cache_bytes(int level, int sysconf_name, size_t fallback)
{
    for (int i = 0; i < 8; i++) {
        char path[96], type[32] = "";
        int lv = 0;
        unsigned long kib = 0;
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/level", i);
        FILE *f = fopen(path, "r");
        if (!f)
            break;
        int ok = fscanf(f, "%d", &lv) == 1;
        fclose(f);
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/type", i);
        if ((f = fopen(path, "r"))) {
            ok &= fscanf(f, "%31s", type) == 1;
            fclose(f);
        }
        snprintf(path, sizeof path, "/sys/devices/system/cpu/cpu0/cache/index%d/size", i);
        if ((f = fopen(path, "r"))) {
            ok &= fscanf(f, "%luK", &kib) == 1;
            fclose(f);
        }
        if (ok && lv == level && strcmp(type, "Instruction") != 0 && kib > 0)
            return (size_t)kib << 10;
    }
    long v = sysconf(sysconf_name);
    return v > 0 ? (size_t)v : fallback;
}

size_t bn_fast_l2_bytes(void)
{
    static _Atomic size_t bytes;
    if (!atomic_load(&bytes))
        atomic_store(&bytes, cache_bytes(2, _SC_LEVEL2_CACHE_SIZE, (size_t)1 << 20));
    return atomic_load(&bytes);
}

size_t bn_fast_llc_bytes(void)
{
    static _Atomic size_t bytes;
    if (!atomic_load(&bytes))
        atomic_store(&bytes, cache_bytes(3, _SC_LEVEL3_CACHE_SIZE, (size_t)32 << 20));
    return atomic_load(&bytes);
}

/* Non-temporal stores pay off when the arrays do not fit in the last-level
 * cache: the output then goes to DRAM anyway, and streaming it skips the
 * read-for-ownership (one DRAM pass fewer) and leaves the cache to the
 * inputs. Well below that size, plain stores keep the output in cache for
 * whatever reads it next. */
int bn_fast_stream_wanted(size_t bytes_touched)
{
    int mode = atomic_load(&stream_mode);
    if (mode >= 0)
        return mode;
    /* a quarter: this machine's L3 is shared with other cores (and, in a VM,
     * other guests); at 2 x 12.8 MB = 1/1.25 of it, streaming measured 20%
     * faster forward and 45% faster backward (docs/performance.md) */
    return bytes_touched > bn_fast_llc_bytes() / 4;
}
