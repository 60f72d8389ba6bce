/*
 * kernels_lanes.h — NCHW groups of small planes (7x7) with vector lanes
 * across planes; part of kernels.h (included from it, compiled once
 * per instruction set).
 *
 * In an NCHW image the planes of channels c, c + 1, ... follow each other,
 * so P consecutive planes (P = VL / gcd(H·W, VL): 16 planes of 49 values
 * on 16 lanes) fill a whole number of vectors, nv = P·H·W / VL (49).
 * Call these P channels a period. Vector v of a period covers the same
 * positions of the same channels in every image, so a lane can add up its
 * position down the N images with plain vector adds: no plane boundaries,
 * no masked tails, no call per plane. Each lane knows its channel through
 * pattern vectors (lane l of pattern vector v holds the coefficient of the
 * channel at position v·VL + l), written once per period. At the end, a
 * channel's sum is the sum of its H·W positions' lane sums.
 *
 * Used for every step of a training op: moments, output (affine_lanes),
 * gradient sums, dx. The sums read the images four at a time, side by
 * side (vector v of each of four images, then vector v + 1): 4 streams of
 * x, 8 of dy and x (12 with y), which one core reads faster than one plane
 * after another (kernels.h, plan_blocks); the lane sums of a period live
 * in L1 (2 or 3 times nv vectors) and each quartet of images adds into
 * them as a tree ((t0 + t1) + (t2 + t3)). The outputs go image by image.
 *
 * Rounding: per block of LANES_ROWS = 32 images a lane adds at most 8
 * quartet sums, then a channel adds its H·W positions in float lanes (at
 * most HW/VL + 1 terms per lane) and the lanes in double (v_sum_d); the
 * blocks go into double sums (moments: merged, bn_moments_merge). Fixed by
 * the shape: bit-identical for any thread count; not the same bits as a
 * channel summed alone (moments_nchw), which adds in another order.
 *
 * Measured (bench --quick, 1 thread, old and new code alternately, fastest
 * of 3, ms): 2048x7x7 fwd_train 0.97 -> 0.83, bwd 2.22 -> 1.73, bwd_relu
 * 3.87 -> 2.39; 512x7x7 fwd_train 0.18 -> 0.14, bwd 0.30 -> 0.25.
 */

/* Planes shorter than 4 vectors (7x7: 49 values, 3 vectors and one lane)
 * go across planes; longer ones plane by plane, where the tail is a small
 * part of a row, and where measured faster (256x14x14 bwd: 0.59 vs 0.71
 * ms; 2048x7x7: 3.3 vs 2.4 the other way). A period is then fewer than 4·VL
 * vectors: the lane sums and patterns on the stack stay within ~20 KiB. */
#define LANES_MAX_VECS (4 * VL)  /* nv = P·HW/VL <= HW < 4·VL, as P <= VL */
#define LANES_ROWS 32

static inline size_t lanes_gcd(size_t a, size_t b)
{
    while (b) {
        size_t t = a % b;
        a = b, b = t;
    }
    return a;
}

/* Channels in one period of planes of HW values (0: planes this long go
 * plane by plane). */
static size_t lanes_period(size_t HW)
{
    return HW && HW < 4 * VL ? VL / lanes_gcd(HW, VL) : 0;
}

/* pat[i] = coef[i / HW] for i < P·HW, in whole vectors (each channel's
 * run may spill into the next channel's, which then overwrites it; pat
 * has VL floats of room past the end). */
static void lanes_pattern(float *pat, const float *coef, size_t P, size_t HW)
{
    for (size_t j = 0; j < P; j++) {
        vf c = v_set1(coef[j]);
        for (size_t i = 0; i < HW; i += VL)
            v_store(pat + j * HW + i, c);
    }
}

/* The coefficients of a period as pattern vectors (the outputs' loops
 * load lane l of vector v of each). */
typedef struct {
    float center[LANES_MAX_VECS * VL + VL], a[LANES_MAX_VECS * VL + VL];
    float b[LANES_MAX_VECS * VL + VL], k[LANES_MAX_VECS * VL + VL];
} lanes_coefs;

static void lanes_coefs_make(lanes_coefs *pc, bn_coefs cf, size_t c, size_t P, size_t HW,
                             int with_b)
{
    lanes_pattern(pc->center, cf.center + c, P, HW);
    lanes_pattern(pc->a, cf.a + c, P, HW);
    if (with_b)
        lanes_pattern(pc->b, cf.b + c, P, HW);
    lanes_pattern(pc->k, cf.k + c, P, HW);
}

/* Whether a period's output is streamed: where every image's run of the
 * period is whole lines. */
static int lanes_stream(const float *out, bn_rows r, size_t P, int stream)
{
    return stream && whole_lines(out, r.stride) && P * r.len % 16 == 0;
}

/* The sum of channel j's HW positions of lane sums l: in float lanes (at
 * most HW/VL + 1 terms a lane), then the lanes in double. */
static double lanes_channel_sum(const float *l, size_t j, size_t HW)
{
    size_t o = j * HW, i = 0;
    vf s = v_zero();
    for (; i + VL <= HW; i += VL)
        s = v_add(s, v_load(l + o + i));
    if (i < HW)
        s = v_add(s, v_load_n(l + o + i, HW - i));
    return v_sum_d(s);
}

/* ------------------------------------------------------ moments, lanes */

/* Lane sums of d = x - K and d² (K per lane: the pattern k) over images
 * [0, rows) (rows <= LANES_ROWS) of one period into l1, l2: four images
 * side by side, as grad_lanes_ below. */
BN_NOINLINE static void moments_lanes_sums(float *l1, float *l2, const float *x, size_t rows,
                                           size_t stride, size_t nv, const float *k)
{
    for (size_t v = 0; v < nv * VL; v += VL)
        v_store(l1 + v, v_zero()), v_store(l2 + v, v_zero());
    size_t n = 0;
    for (; n + 4 <= rows; n += 4) {
        const float *x0 = x + n * stride, *x1 = x0 + stride, *x2 = x1 + stride, *x3 = x2 + stride;
        for (size_t v = 0; v < nv * VL; v += VL) {
            vf K = v_load(k + v);
            vf d0 = v_sub(v_load(x0 + v), K), d1 = v_sub(v_load(x1 + v), K);
            vf d2 = v_sub(v_load(x2 + v), K), d3 = v_sub(v_load(x3 + v), K);
            v_store(l1 + v, v_add(v_load(l1 + v), v_add(v_add(d0, d1), v_add(d2, d3))));
            v_store(l2 + v, v_add(v_load(l2 + v), v_add(v_fma(d0, d0, v_mul(d1, d1)),
                                                        v_fma(d2, d2, v_mul(d3, d3)))));
        }
    }
    for (; n < rows; n++)
        for (size_t v = 0; v < nv * VL; v += VL) {
            vf d = v_sub(v_load(x + n * stride + v), v_load(k + v));
            v_store(l1 + v, v_add(v_load(l1 + v), d));
            v_store(l2 + v, v_fma(d, d, v_load(l2 + v)));
        }
}

/* The moments of channels [0, nc) of an NCHW group (nc a multiple of
 * lanes_period(r.len)): mm[2·j] = mean, mm[2·j + 1] = M2 of channel j.
 * Each block of LANES_ROWS images is summed about a shift per channel, as
 * moments_nchw: the mean of the channel's first plane, then the mean so
 * far; a channel's block whose shift proves unsafe (block_moments) is
 * redone with two passes, that channel's planes alone. */
static void moments_lanes(double *mm, const float *x, bn_rows r, size_t nc)
{
    size_t HW = r.len, P = lanes_period(HW), nv = P * HW / VL;
    float l1[LANES_MAX_VECS * VL], l2[LANES_MAX_VECS * VL];
    float k[LANES_MAX_VECS * VL + VL], shift[VL];
    bn_moments acc[VL];
    bn_ahead none = {{NULL}, 0};
    for (size_t c = 0; c < nc; c += P) {
        const float *xp = x + c * HW;
        for (size_t j = 0; j < P; j++) {
            acc[j] = (bn_moments){0, 0, 0};
            shift[j] = mean_shifted(xp + j * HW, 1, HW, r.stride);
        }
        for (size_t n = 0; n < r.rows; n += LANES_ROWS) {
            size_t rows = min_size(LANES_ROWS, r.rows - n);
            double bn = (double)(rows * HW), inv_n = 1.0 / bn;
            for (size_t j = 0; n && j < P; j++)
                shift[j] = (float)acc[j].mean;
            lanes_pattern(k, shift, P, HW);
            moments_lanes_sums(l1, l2, xp + n * r.stride, rows, r.stride, nv, k);
            for (size_t j = 0; j < P; j++) {
                double S1 = lanes_channel_sum(l1, j, HW), delta = S1 * inv_n;
                double S2 = lanes_channel_sum(l2, j, HW);
                bn_moments b = block_result(bn, inv_n, shift[j], S1, S2);
                if (shift_unsafe(delta, bn, b.m2))
                    b = block_moments_two_pass(xp + n * r.stride + j * HW, rows, HW, r.stride,
                                               (block_at){n, 0}, none);
                bn_moments_merge(&acc[j], b);
            }
        }
        for (size_t j = 0; j < P; j++)
            mm[2 * (c + j)] = acc[j].mean, mm[2 * (c + j) + 1] = acc[j].m2;
    }
}

/* y = a·(x - center) + k [, max(0, ·)] for channels [0, nc) of an NCHW
 * group, image by image along its run of a period's planes, as dx_lanes. */
static int affine_lanes(float *y, const float *x, bn_rows r, size_t nc, bn_coefs cf,
                        int relu, int stream)
{
    size_t HW = r.len, P = lanes_period(HW), nv = P * HW / VL;
    lanes_coefs pc;
    vf fin = v_zero();
    int st = lanes_stream(y, r, P, stream);
    for (size_t c = 0; c < nc; c += P) {
        lanes_coefs_make(&pc, cf, c, P, HW, 0);
        for (size_t n = 0; n < r.rows; n++) {
            size_t o = c * HW + n * r.stride;
            for (size_t v = 0; v < nv * VL; v += VL) {
                vf t = affine_vec(v_load(x + o + v), v_load(pc.center + v), v_load(pc.a + v),
                                  v_load(pc.k + v));
                fin = track_finite(fin, t);
                store_vec(y + o + v, relu ? v_relu(t) : t, st);
            }
        }
    }
    return all_finite(fin);
}

/* ------------------------------------------------ gradient sums, lanes */

/* The contribution of one image's vector: dz, dz·xhat, xhat. */
#define LANE_TERMS(dz, xh, q)                                                  \
    vf dz = dz_vec(dy, y, (q));                                                \
    vf xh = v_mul(v_sub(v_load(x + (q)), ce), sv)

/* Lane sums of images [0, rows) (rows <= LANES_ROWS) of one period into
 * g, gx, xh (nv vectors each, zeroed here): four images side by side,
 * vector v of each before vector v + 1, added as a tree into the lane
 * sums in L1. (Vector v of all the images before v + 1, the sums in
 * registers, measured 3-6x slower: 64 pages and streams at a time.)
 * Inlined twice (with and without y), so that the loop has no test for y. */
static inline __attribute__((always_inline)) void grad_lanes_(
    float *g, float *gx, float *xh, const float *dy, const float *y, const float *x,
    size_t rows, size_t stride, size_t nv, const float *cen, const float *s)
{
    for (size_t v = 0; v < nv * VL; v += VL)
        v_store(g + v, v_zero()), v_store(gx + v, v_zero()), v_store(xh + v, v_zero());
    size_t n = 0;
    for (; n + 4 <= rows; n += 4) {
        size_t o0 = n * stride, o1 = o0 + stride, o2 = o1 + stride, o3 = o2 + stride;
        for (size_t v = 0; v < nv * VL; v += VL) {
            vf ce = v_load(cen + v), sv = v_load(s + v);
            LANE_TERMS(d0, h0, o0 + v);
            LANE_TERMS(d1, h1, o1 + v);
            LANE_TERMS(d2, h2, o2 + v);
            LANE_TERMS(d3, h3, o3 + v);
            v_store(g + v, v_add(v_load(g + v), v_add(v_add(d0, d1), v_add(d2, d3))));
            v_store(gx + v, v_add(v_load(gx + v), v_add(v_fma(d0, h0, v_mul(d1, h1)),
                                                        v_fma(d2, h2, v_mul(d3, h3)))));
            v_store(xh + v, v_add(v_load(xh + v), v_add(v_add(h0, h1), v_add(h2, h3))));
        }
    }
    for (; n < rows; n++)
        for (size_t v = 0; v < nv * VL; v += VL) {
            vf ce = v_load(cen + v), sv = v_load(s + v);
            LANE_TERMS(d0, h0, n * stride + v);
            v_store(g + v, v_add(v_load(g + v), d0));
            v_store(gx + v, v_fma(d0, h0, v_load(gx + v)));
            v_store(xh + v, v_add(v_load(xh + v), h0));
        }
}
#undef LANE_TERMS

BN_NOINLINE static void grad_lanes(float *g, float *gx, float *xh, const float *dy,
                                   const float *x, size_t rows, size_t stride, size_t nv,
                                   const float *cen, const float *s)
{
    grad_lanes_(g, gx, xh, dy, NULL, x, rows, stride, nv, cen, s);
}

BN_NOINLINE static void grad_lanes_relu(float *g, float *gx, float *xh, const float *dy,
                                        const float *y, const float *x, size_t rows,
                                        size_t stride, size_t nv, const float *cen,
                                        const float *s)
{
    grad_lanes_(g, gx, xh, dy, y, x, rows, stride, nv, cen, s);
}

/* Training gradient sums of channels [0, nc) of an NCHW group (nc a
 * multiple of lanes_period(r.len)): sums[3·j + 0..2] = Σ dz, Σ dz·xhat,
 * Σ xhat of channel j. */
static void grad_sums_lanes(double *sums, const float *dy, const float *y, const float *x,
                            bn_rows r, size_t nc, bn_coefs cf)
{
    size_t HW = r.len, P = lanes_period(HW), nv = P * HW / VL;
    float l[3][LANES_MAX_VECS * VL], cen[LANES_MAX_VECS * VL + VL], s[LANES_MAX_VECS * VL + VL];
    for (size_t j = 0; j < 3 * nc; j++)
        sums[j] = 0;
    for (size_t c = 0; c < nc; c += P) {
        lanes_pattern(cen, cf.center + c, P, HW);
        lanes_pattern(s, cf.b + c, P, HW);
        size_t o = c * HW;
        for (size_t n = 0; n < r.rows; n += LANES_ROWS) {
            size_t rows = min_size(LANES_ROWS, r.rows - n), on = o + n * r.stride;
            if (y)
                grad_lanes_relu(l[0], l[1], l[2], dy + on, y + on, x + on, rows, r.stride,
                                nv, cen, s);
            else
                grad_lanes(l[0], l[1], l[2], dy + on, x + on, rows, r.stride, nv, cen, s);
            for (size_t j = 0; j < P; j++)
                for (int q = 0; q < 3; q++)
                    sums[3 * (c + j) + q] += lanes_channel_sum(l[q], j, HW);
        }
    }
}

/* ------------------------------------------------------------ dx, lanes */

/* dx = a·dz + b·(x - center) + k for channels [0, nc) of an NCHW group
 * (nc a multiple of lanes_period(r.len)), image by image along its run of
 * the period's planes, the coefficients from the patterns (in L1). (Four
 * images side by side, the coefficients loaded once for the four, measured
 * no faster at 7x7 and slower at 14x14: 256x14x14 bwd 0.71 vs 0.96 ms, as
 * 12 streams whose stride is a multiple of 4 KiB share one L1 set.) */
static int dx_lanes(float *dx, const float *dy, const float *y, const float *x,
                    bn_rows r, size_t nc, bn_coefs cf, int stream)
{
    size_t HW = r.len, P = lanes_period(HW), nv = P * HW / VL;
    lanes_coefs pc;
    vf fin = v_zero();
    int st = lanes_stream(dx, r, P, stream);
    for (size_t c = 0; c < nc; c += P) {
        lanes_coefs_make(&pc, cf, c, P, HW, 1);
        for (size_t n = 0; n < r.rows; n++) {
            size_t o = c * HW + n * r.stride;
            for (size_t v = 0; v < nv * VL; v += VL) {
                vf d = dx_vec(dz_vec(dy, y, o + v), v_load(x + o + v), v_load(pc.center + v),
                              v_load(pc.a + v), v_load(pc.b + v), v_load(pc.k + v));
                fin = track_finite(fin, d);
                store_vec(dx + o + v, d, st);
            }
        }
    }
    return all_finite(fin);
}
