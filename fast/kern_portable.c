/*
 * kern_portable.c — the kernels of kernels.h in plain C (8-float "vectors"
 * as structs, loops the compiler vectorizes for its baseline). Built with
 * the default flags: it runs anywhere, and serves CPUs without AVX2.
 * BNLAB_FAST_ISA=portable selects it explicitly.
 */
#include "simd_portable.h"
#define KERNEL_TABLE bn_fast_kernels_portable
#define KERNEL_NAME "portable"
#include "kernels.h"
