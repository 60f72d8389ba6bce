/*
 * simd_portable.h — the vector operations of kernels.h in plain C: a
 * "vector" is 8 floats in a struct and every operation is a loop over them,
 * which the compiler turns into SSE2 (x86-64's baseline) or its target's
 * vectors. This path serves CPUs without AVX2 and is the easiest to read.
 * There are no non-temporal stores in C: v_stream is a plain store.
 */
#ifndef BN_SIMD_H
#define BN_SIMD_H

#include <stddef.h>

#define VL 8
typedef struct {
    float f[VL];
} vf;

#define LANES(i) for (int i = 0; i < VL; i++)

static inline vf v_load(const float *p) { vf v; LANES(i) v.f[i] = p[i]; return v; }
static inline vf v_load_n(const float *p, size_t n)
{
    vf v;
    LANES(i) v.f[i] = (size_t)i < n ? p[i] : 0.0f;
    return v;
}
static inline void v_store(float *p, vf v) { LANES(i) p[i] = v.f[i]; }
static inline void v_store_n(float *p, vf v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        p[i] = v.f[i];
}
static inline void v_stream(float *p, vf v) { v_store(p, v); }
/* ask for the cache line holding p into L2 (a hint; a no-op without
 * GCC/Clang) */
static inline void v_prefetch(const float *p)
{
#if defined(__GNUC__)
    __builtin_prefetch(p, 0, 2);
#else
    (void)p;
#endif
}

static inline vf v_set1(float a) { vf v; LANES(i) v.f[i] = a; return v; }
static inline vf v_zero(void) { return v_set1(0.0f); }
static inline vf v_add(vf a, vf b) { LANES(i) a.f[i] += b.f[i]; return a; }
static inline vf v_sub(vf a, vf b) { LANES(i) a.f[i] -= b.f[i]; return a; }
static inline vf v_mul(vf a, vf b) { LANES(i) a.f[i] *= b.f[i]; return a; }
/* a·b + c: two roundings here (no FMA in baseline x86-64) */
static inline vf v_fma(vf a, vf b, vf c) { LANES(i) a.f[i] = a.f[i] * b.f[i] + c.f[i]; return a; }
/* max(v, 0) as in ref: -0 and NaN become +0 */
static inline vf v_relu(vf v) { LANES(i) v.f[i] = v.f[i] > 0 ? v.f[i] : 0.0f; return v; }
static inline vf v_where_pos(vf y, vf v) { LANES(i) v.f[i] = y.f[i] > 0 ? v.f[i] : 0.0f; return v; }
static inline vf v_keep_n(vf v, size_t n)
{
    LANES(i) v.f[i] = (size_t)i < n ? v.f[i] : 0.0f;
    return v;
}
/* lanes [0, n) from a, the others from b */
static inline vf v_first(size_t n, vf a, vf b)
{
    LANES(i) b.f[i] = (size_t)i < n ? a.f[i] : b.f[i];
    return b;
}

/* The sum of the 8 lanes in double, pairwise in a fixed order. */
static inline double v_sum_d(vf v)
{
    double s[VL];
    LANES(i) s[i] = v.f[i];
    return ((s[0] + s[4]) + (s[2] + s[6])) + ((s[1] + s[5]) + (s[3] + s[7]));
}
static inline void v_to_double(double *out, vf v) { LANES(i) out[i] = v.f[i]; }


#undef LANES
#endif
