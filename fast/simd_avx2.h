/*
 * simd_avx2.h — the vector operations of kernels.h for AVX2 + FMA: 8 floats
 * per vector. Tails use vmaskmov loads and stores (masked-off lanes are not
 * touched). Compiled only into kern_avx2.c, with -mavx2 -mfma.
 */
#ifndef BN_SIMD_H
#define BN_SIMD_H

#include <immintrin.h>
#include <stddef.h>
#include <stdint.h>

#define VL 8
typedef __m256 vf;

/* lanes [0, n) set: a window into 8 ones followed by 8 zeros */
static inline __m256i first_lanes(size_t n)
{
    static const int32_t window[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
    return _mm256_loadu_si256((const __m256i *)(const void *)(window + 8 - n));
}

static inline vf v_load(const float *p) { return _mm256_loadu_ps(p); }
static inline vf v_load_n(const float *p, size_t n) { return _mm256_maskload_ps(p, first_lanes(n)); }
static inline void v_store(float *p, vf v) { _mm256_storeu_ps(p, v); }
static inline void v_store_n(float *p, vf v, size_t n) { _mm256_maskstore_ps(p, first_lanes(n), v); }
/* non-temporal store: p must be aligned to 32 bytes */
static inline void v_stream(float *p, vf v) { _mm256_stream_ps(p, v); }
/* ask for the cache line holding p into L2 (a hint: never faults) */
static inline void v_prefetch(const float *p) { _mm_prefetch((const char *)p, _MM_HINT_T1); }

static inline vf v_set1(float a) { return _mm256_set1_ps(a); }
static inline vf v_zero(void) { return _mm256_setzero_ps(); }
static inline vf v_add(vf a, vf b) { return _mm256_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm256_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm256_mul_ps(a, b); }
static inline vf v_fma(vf a, vf b, vf c) { return _mm256_fmadd_ps(a, b, c); }
/* max(v, 0); -0 becomes +0 (maxps returns its second operand on a tie) */
static inline vf v_relu(vf v) { return _mm256_max_ps(v, _mm256_setzero_ps()); }
static inline vf v_where_pos(vf y, vf v)
{
    return _mm256_and_ps(_mm256_cmp_ps(y, _mm256_setzero_ps(), _CMP_GT_OQ), v);
}
static inline vf v_keep_n(vf v, size_t n)
{
    return _mm256_and_ps(_mm256_castsi256_ps(first_lanes(n)), v);
}
/* lanes [0, n) from a, the others from b */
static inline vf v_first(size_t n, vf a, vf b)
{
    return _mm256_blendv_ps(b, a, _mm256_castsi256_ps(first_lanes(n)));
}

/* The sum of the 8 lanes, in double, in a fixed order. */
static inline double v_sum_d(vf v)
{
    __m256d lo = _mm256_cvtps_pd(_mm256_castps256_ps128(v));
    __m256d hi = _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1));
    __m256d s = _mm256_add_pd(lo, hi);
    __m128d t = _mm_add_pd(_mm256_castpd256_pd128(s), _mm256_extractf128_pd(s, 1));
    return _mm_cvtsd_f64(t) + _mm_cvtsd_f64(_mm_unpackhi_pd(t, t));
}
static inline void v_to_double(double *out, vf v)
{
    _mm256_storeu_pd(out, _mm256_cvtps_pd(_mm256_castps256_ps128(v)));
    _mm256_storeu_pd(out + 4, _mm256_cvtps_pd(_mm256_extractf128_ps(v, 1)));
}


#endif
