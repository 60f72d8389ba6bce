/*
 * kern_avx2.c — the kernels of kernels.h for AVX2 + FMA: 8 floats a vector.
 * Built with -mavx2 -mfma (fast/module.mk) and called only when CPUID says
 * the CPU and the OS support them (fast_dispatch.c). BNLAB_FAST_ISA=avx2
 * selects it explicitly (the tests run it that way on AVX-512 machines).
 */
#include "simd_avx2.h"
#define KERNEL_TABLE bn_fast_kernels_avx2
#define KERNEL_NAME "avx2"
#include "kernels.h"
