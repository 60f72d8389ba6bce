/*
 * kern_avx512.c — the kernels of kernels.h for AVX-512: 16 floats a vector.
 * Built with -mavx512f -mavx512dq -mavx512bw -mavx512vl -mfma (fast/module.mk)
 * and called only when CPUID says the CPU and the OS support them
 * (fast_dispatch.c). BNLAB_FAST_ISA=avx512 selects it explicitly.
 */
#include "simd_avx512.h"
#define KERNEL_TABLE bn_fast_kernels_avx512
#define KERNEL_NAME "avx512"
#include "kernels.h"
