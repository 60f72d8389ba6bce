/*
 * simd_avx512.h — the few vector operations the kernels use (kernels.h),
 * for AVX-512: 16 floats per vector. Tails (fewer than 16 values) use
 * masked loads and stores, which do not touch the memory of masked-off
 * lanes. Compiled only into kern_avx512.c, with -mavx512f -mavx512dq
 * -mavx512bw -mavx512vl -mfma; the dispatcher calls it only on a CPU that
 * has them.
 */
#ifndef BN_SIMD_H
#define BN_SIMD_H

#include <immintrin.h>
#include <stddef.h>

#define VL 16
typedef __m512 vf;

static inline __mmask16 first_lanes(size_t n) { return (__mmask16)((1u << n) - 1); }

static inline vf v_load(const float *p) { return _mm512_loadu_ps(p); }
/* lanes [0, n) from p, the others 0; n < VL */
static inline vf v_load_n(const float *p, size_t n)
{
    return _mm512_maskz_loadu_ps(first_lanes(n), p);
}
static inline void v_store(float *p, vf v) { _mm512_storeu_ps(p, v); }
static inline void v_store_n(float *p, vf v, size_t n)
{
    _mm512_mask_storeu_ps(p, first_lanes(n), v);
}
/* non-temporal store: p must be aligned to 64 bytes */
static inline void v_stream(float *p, vf v) { _mm512_stream_ps(p, v); }
/* ask for the cache line holding p into L2 (a hint: never faults) */
static inline void v_prefetch(const float *p) { _mm_prefetch((const char *)p, _MM_HINT_T1); }

static inline vf v_set1(float a) { return _mm512_set1_ps(a); }
static inline vf v_zero(void) { return _mm512_setzero_ps(); }
static inline vf v_add(vf a, vf b) { return _mm512_add_ps(a, b); }
static inline vf v_sub(vf a, vf b) { return _mm512_sub_ps(a, b); }
static inline vf v_mul(vf a, vf b) { return _mm512_mul_ps(a, b); }
/* a·b + c, one rounding */
static inline vf v_fma(vf a, vf b, vf c) { return _mm512_fmadd_ps(a, b, c); }
/* max(v, 0); -0 becomes +0 (maxps returns its second operand on a tie) */
static inline vf v_relu(vf v) { return _mm512_max_ps(v, _mm512_setzero_ps()); }
/* v where y > 0, else 0 (NaN in y gives 0): the ReLU's gradient mask */
static inline vf v_where_pos(vf y, vf v)
{
    return _mm512_maskz_mov_ps(_mm512_cmp_ps_mask(y, _mm512_setzero_ps(), _CMP_GT_OQ), v);
}
/* lanes [0, n) of v, the others 0 */
static inline vf v_keep_n(vf v, size_t n) { return _mm512_maskz_mov_ps(first_lanes(n), v); }
/* lanes [0, n) from a, the others from b */
static inline vf v_first(size_t n, vf a, vf b) { return _mm512_mask_blend_ps(first_lanes(n), b, a); }

/* The sum of the 16 lanes, in double, in a fixed order. */
static inline double v_sum_d(vf v)
{
    __m512d lo = _mm512_cvtps_pd(_mm512_castps512_ps256(v));
    __m512d hi = _mm512_cvtps_pd(_mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1)));
    return _mm512_reduce_add_pd(_mm512_add_pd(lo, hi));
}
/* out[i] = (double)v[i] */
static inline void v_to_double(double *out, vf v)
{
    _mm512_storeu_pd(out, _mm512_cvtps_pd(_mm512_castps512_ps256(v)));
    _mm512_storeu_pd(out + 8, _mm512_cvtps_pd(_mm256_castpd_ps(
                                   _mm512_extractf64x4_pd(_mm512_castps_pd(v), 1))));
}


#endif
