// fastmath.h: exp, sigmoid and tanh for the elementwise kernels, written so
// that the compiler vectorises a loop that calls them (libm's expf and tanhf are
// calls, one element at a time, unless the whole build uses -ffast-math).
//
// dsf_expf: Cody–Waite range reduction and a degree-5 polynomial (Cephes),
// within 2 ulp on [−87.3, 88]; 0 below that range and +inf above it (so that a
// diverging loss still shows as non-finite), NaN stays NaN.
// dsf_tanhf: a rational approximation for |x| < 0.5, through dsf_expf beyond;
// within 4 ulp everywhere (measured against double tanh); NaN stays NaN.
#ifndef DSF_FASTMATH_H
#define DSF_FASTMATH_H

#include <math.h>
#include <stdint.h>
#include <string.h>

static inline float dsf_expf(float x) {
    const float x0 = x;
    x = x < -87.3f ? -87.3f : x;
    x = x > 88.0f ? 88.0f : x;
    // n = round(x / ln 2): adding 1.5·2^23 leaves n in the low bits of the mantissa.
    const float shift = 12582912.0f;
    float fn = x * 1.44269504088896341f + shift;
    uint32_t bits;
    memcpy(&bits, &fn, sizeof bits);
    fn -= shift;
    float r = x - fn * 0.693359375f;
    r = r - fn * -2.12194440e-4f;
    float p = 1.9875691500e-4f;
    p = p * r + 1.3981999507e-3f;
    p = p * r + 8.3334519073e-3f;
    p = p * r + 4.1665795894e-2f;
    p = p * r + 1.6666665459e-1f;
    p = p * r + 5.0000001201e-1f;
    p = p * r * r + r + 1.0f;
    uint32_t e = (bits - 0x4b400000u + 127u) << 23;  // 2^n
    float s;
    memcpy(&s, &e, sizeof s);
    p *= s;
    p = x0 < -87.3f ? 0.0f : p;  // underflow and overflow as expf's (no subnormals)
    return x0 > 88.0f ? HUGE_VALF : p;
}

static inline float dsf_sigmoidf(float x) { return 1.0f / (1.0f + dsf_expf(-x)); }

static inline float dsf_tanhf(float x) {
    const float ax = x < 0.0f ? -x : x;
    // |x| < 0.5: x·P(x²)/Q(x²), a [13/6] rational approximation (as in Eigen).
    float y = x < -0.5f ? -0.5f : x;
    y = y > 0.5f ? 0.5f : y;
    const float y2 = y * y;
    float p = -2.76076847742355e-16f;
    p = p * y2 + 2.00018790482477e-13f;
    p = p * y2 + -8.60467152213735e-11f;
    p = p * y2 + 5.12229709037114e-08f;
    p = p * y2 + 1.48572235717979e-05f;
    p = p * y2 + 6.37261928875436e-04f;
    p = p * y2 + 4.89352455891786e-03f;
    float q = 1.19825839466702e-06f;
    q = q * y2 + 1.18534705686654e-04f;
    q = q * y2 + 2.26843463243900e-03f;
    q = q * y2 + 4.89352518554385e-03f;
    const float small = y * p / q;
    // Else (1 − e^{−2|x|}) / (1 + e^{−2|x|}), with the sign of x: no cancellation there.
    const float t = dsf_expf(-2.0f * ax);
    float large = (1.0f - t) / (1.0f + t);
    large = x < 0.0f ? -large : large;
    return ax < 0.5f ? small : large;
}

#endif
