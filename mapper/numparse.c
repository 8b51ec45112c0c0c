#include "mapper/numparse.h"

#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/*
 * Reading the text: parse_float goes byte by byte and takes any input. parse_float_fields,
 * for rows of numbers in a padded buffer, reads words: scan_word takes a short field (at most
 * 7 bytes, the usual "0.0262") from one 8-byte load with no loop and no branch per digit;
 * scan_plain takes other plain numbers 8 digits at a time; anything else goes to
 * parse_float.
 *
 * How a number becomes a float32, fastest way first; each way is exact or declines:
 *   1. Clinger: the decimal mantissa w <= 2^24 and |exponent| <= 10. Then w and 10^|q| are
 *      exact floats and one IEEE division or multiplication rounds correctly.
 *   2. Eisel-Lemire: w < 2^64 (at most 19 significant digits) and any exponent. w times a
 *      128-bit truncated power of five gives enough leading bits to round correctly, and the
 *      rare products too close to call are detected (fast_float's algorithm, Lemire, "Number
 *      Parsing at a Gigabyte per Second", 2021).
 *   3. More than 19 significant digits: the first 19 (w) bound the value between w and
 *      w + 1 units of the last kept digit; if both bounds round to the same float, so does
 *      the value.
 *   4. Otherwise (vanishingly rare): strtof on a normalised copy of the digits.
 * A double is never used as an intermediate: rounding the exact decimal to double and then
 * to float rounds twice, and the second rounding can go the wrong way at a float midpoint.
 */

/* Significant digits kept for the strtof path. A float32 halfway point has at most ~112
 * significant decimal digits, so 200 kept digits plus a sticky '1' for any non-zero digit
 * dropped after them decide the rounding exactly as the full string would. */
enum { NUMPARSE_KEEP_DIGITS = 200 };

/* Significant digits that always fit in a uint64: 10^19 - 1 < 2^64. */
enum { NUMPARSE_U64_DIGITS = 19 };

/* Exponents beyond this are clamped: the result is 0 or overflow either way, and clamping
 * keeps the arithmetic far from int64 overflow. */
#define NUMPARSE_EXP_CLAMP 100000
/* An exponent's digits are read up to this bound, far above any field's length: the
 * mantissa's own position (a field of a million zeros after the '.') moves the exponent by
 * the field's length, so the written exponent must be summed exactly before clamping, or
 * "0.000…0001e1000000" would read as 0.  2^50 * 10 still fits in int64. */
#define NUMPARSE_EXP_READ_MAX ((int64_t)1 << 50)

/* float32 layout and the decimal exponents Eisel-Lemire needs (w < 2^64): below 10^-65 every
 * w * 10^q is under half the smallest subnormal, above 10^38 every one overflows. */
enum {
    F32_MANTISSA_BITS = 23,
    F32_MIN_EXPONENT = -127,
    F32_INFINITE_POWER = 0xFF,
    EL_MIN_Q = -65,
    EL_MAX_Q = 38,
    /* Exact ties are possible only where 5^|q| fits in 64 bits with the mantissa. */
    EL_MIN_Q_ROUND_TO_EVEN = -17,
    EL_MAX_Q_ROUND_TO_EVEN = 10,
};

/* pow5_128[q - EL_MIN_Q] = 5^q normalised to [2^127, 2^128), truncated (q >= 0) or rounded up
 * (q < 0), high word first. Generated with Python's exact integers, as fast_float's
 * script/table_generation.py does:
 *   q >= 0: c = 5**q, doubled while < 2**127, halved while >= 2**128
 *   q < 0:  z = bit length of 5**-q rounded up; c = 2**b // 5**-q + 1 with b = z + 127 for
 *           q >= -27, else b = 2*z + 128 and c halved while >= 2**128 */
static const uint64_t pow5_128[EL_MAX_Q - EL_MIN_Q + 1][2] = {
    {0x86ccbb52ea94baeau, 0x98e947129fc2b4e9u}, /* 5^-65 */
    {0xa87fea27a539e9a5u, 0x3f2398d747b36224u}, /* 5^-64 */
    {0xd29fe4b18e88640eu, 0x8eec7f0d19a03aadu}, /* 5^-63 */
    {0x83a3eeeef9153e89u, 0x1953cf68300424acu}, /* 5^-62 */
    {0xa48ceaaab75a8e2bu, 0x5fa8c3423c052dd7u}, /* 5^-61 */
    {0xcdb02555653131b6u, 0x3792f412cb06794du}, /* 5^-60 */
    {0x808e17555f3ebf11u, 0xe2bbd88bbee40bd0u}, /* 5^-59 */
    {0xa0b19d2ab70e6ed6u, 0x5b6aceaeae9d0ec4u}, /* 5^-58 */
    {0xc8de047564d20a8bu, 0xf245825a5a445275u}, /* 5^-57 */
    {0xfb158592be068d2eu, 0xeed6e2f0f0d56712u}, /* 5^-56 */
    {0x9ced737bb6c4183du, 0x55464dd69685606bu}, /* 5^-55 */
    {0xc428d05aa4751e4cu, 0xaa97e14c3c26b886u}, /* 5^-54 */
    {0xf53304714d9265dfu, 0xd53dd99f4b3066a8u}, /* 5^-53 */
    {0x993fe2c6d07b7fabu, 0xe546a8038efe4029u}, /* 5^-52 */
    {0xbf8fdb78849a5f96u, 0xde98520472bdd033u}, /* 5^-51 */
    {0xef73d256a5c0f77cu, 0x963e66858f6d4440u}, /* 5^-50 */
    {0x95a8637627989aadu, 0xdde7001379a44aa8u}, /* 5^-49 */
    {0xbb127c53b17ec159u, 0x5560c018580d5d52u}, /* 5^-48 */
    {0xe9d71b689dde71afu, 0xaab8f01e6e10b4a6u}, /* 5^-47 */
    {0x9226712162ab070du, 0xcab3961304ca70e8u}, /* 5^-46 */
    {0xb6b00d69bb55c8d1u, 0x3d607b97c5fd0d22u}, /* 5^-45 */
    {0xe45c10c42a2b3b05u, 0x8cb89a7db77c506au}, /* 5^-44 */
    {0x8eb98a7a9a5b04e3u, 0x77f3608e92adb242u}, /* 5^-43 */
    {0xb267ed1940f1c61cu, 0x55f038b237591ed3u}, /* 5^-42 */
    {0xdf01e85f912e37a3u, 0x6b6c46dec52f6688u}, /* 5^-41 */
    {0x8b61313bbabce2c6u, 0x2323ac4b3b3da015u}, /* 5^-40 */
    {0xae397d8aa96c1b77u, 0xabec975e0a0d081au}, /* 5^-39 */
    {0xd9c7dced53c72255u, 0x96e7bd358c904a21u}, /* 5^-38 */
    {0x881cea14545c7575u, 0x7e50d64177da2e54u}, /* 5^-37 */
    {0xaa242499697392d2u, 0xdde50bd1d5d0b9e9u}, /* 5^-36 */
    {0xd4ad2dbfc3d07787u, 0x955e4ec64b44e864u}, /* 5^-35 */
    {0x84ec3c97da624ab4u, 0xbd5af13bef0b113eu}, /* 5^-34 */
    {0xa6274bbdd0fadd61u, 0xecb1ad8aeacdd58eu}, /* 5^-33 */
    {0xcfb11ead453994bau, 0x67de18eda5814af2u}, /* 5^-32 */
    {0x81ceb32c4b43fcf4u, 0x80eacf948770ced7u}, /* 5^-31 */
    {0xa2425ff75e14fc31u, 0xa1258379a94d028du}, /* 5^-30 */
    {0xcad2f7f5359a3b3eu, 0x096ee45813a04330u}, /* 5^-29 */
    {0xfd87b5f28300ca0du, 0x8bca9d6e188853fcu}, /* 5^-28 */
    {0x9e74d1b791e07e48u, 0x775ea264cf55347eu}, /* 5^-27 */
    {0xc612062576589ddau, 0x95364afe032a819eu}, /* 5^-26 */
    {0xf79687aed3eec551u, 0x3a83ddbd83f52205u}, /* 5^-25 */
    {0x9abe14cd44753b52u, 0xc4926a9672793543u}, /* 5^-24 */
    {0xc16d9a0095928a27u, 0x75b7053c0f178294u}, /* 5^-23 */
    {0xf1c90080baf72cb1u, 0x5324c68b12dd6339u}, /* 5^-22 */
    {0x971da05074da7beeu, 0xd3f6fc16ebca5e04u}, /* 5^-21 */
    {0xbce5086492111aeau, 0x88f4bb1ca6bcf585u}, /* 5^-20 */
    {0xec1e4a7db69561a5u, 0x2b31e9e3d06c32e6u}, /* 5^-19 */
    {0x9392ee8e921d5d07u, 0x3aff322e62439fd0u}, /* 5^-18 */
    {0xb877aa3236a4b449u, 0x09befeb9fad487c3u}, /* 5^-17 */
    {0xe69594bec44de15bu, 0x4c2ebe687989a9b4u}, /* 5^-16 */
    {0x901d7cf73ab0acd9u, 0x0f9d37014bf60a11u}, /* 5^-15 */
    {0xb424dc35095cd80fu, 0x538484c19ef38c95u}, /* 5^-14 */
    {0xe12e13424bb40e13u, 0x2865a5f206b06fbau}, /* 5^-13 */
    {0x8cbccc096f5088cbu, 0xf93f87b7442e45d4u}, /* 5^-12 */
    {0xafebff0bcb24aafeu, 0xf78f69a51539d749u}, /* 5^-11 */
    {0xdbe6fecebdedd5beu, 0xb573440e5a884d1cu}, /* 5^-10 */
    {0x89705f4136b4a597u, 0x31680a88f8953031u}, /* 5^-9 */
    {0xabcc77118461cefcu, 0xfdc20d2b36ba7c3eu}, /* 5^-8 */
    {0xd6bf94d5e57a42bcu, 0x3d32907604691b4du}, /* 5^-7 */
    {0x8637bd05af6c69b5u, 0xa63f9a49c2c1b110u}, /* 5^-6 */
    {0xa7c5ac471b478423u, 0x0fcf80dc33721d54u}, /* 5^-5 */
    {0xd1b71758e219652bu, 0xd3c36113404ea4a9u}, /* 5^-4 */
    {0x83126e978d4fdf3bu, 0x645a1cac083126eau}, /* 5^-3 */
    {0xa3d70a3d70a3d70au, 0x3d70a3d70a3d70a4u}, /* 5^-2 */
    {0xccccccccccccccccu, 0xcccccccccccccccdu}, /* 5^-1 */
    {0x8000000000000000u, 0x0000000000000000u}, /* 5^0 */
    {0xa000000000000000u, 0x0000000000000000u}, /* 5^1 */
    {0xc800000000000000u, 0x0000000000000000u}, /* 5^2 */
    {0xfa00000000000000u, 0x0000000000000000u}, /* 5^3 */
    {0x9c40000000000000u, 0x0000000000000000u}, /* 5^4 */
    {0xc350000000000000u, 0x0000000000000000u}, /* 5^5 */
    {0xf424000000000000u, 0x0000000000000000u}, /* 5^6 */
    {0x9896800000000000u, 0x0000000000000000u}, /* 5^7 */
    {0xbebc200000000000u, 0x0000000000000000u}, /* 5^8 */
    {0xee6b280000000000u, 0x0000000000000000u}, /* 5^9 */
    {0x9502f90000000000u, 0x0000000000000000u}, /* 5^10 */
    {0xba43b74000000000u, 0x0000000000000000u}, /* 5^11 */
    {0xe8d4a51000000000u, 0x0000000000000000u}, /* 5^12 */
    {0x9184e72a00000000u, 0x0000000000000000u}, /* 5^13 */
    {0xb5e620f480000000u, 0x0000000000000000u}, /* 5^14 */
    {0xe35fa931a0000000u, 0x0000000000000000u}, /* 5^15 */
    {0x8e1bc9bf04000000u, 0x0000000000000000u}, /* 5^16 */
    {0xb1a2bc2ec5000000u, 0x0000000000000000u}, /* 5^17 */
    {0xde0b6b3a76400000u, 0x0000000000000000u}, /* 5^18 */
    {0x8ac7230489e80000u, 0x0000000000000000u}, /* 5^19 */
    {0xad78ebc5ac620000u, 0x0000000000000000u}, /* 5^20 */
    {0xd8d726b7177a8000u, 0x0000000000000000u}, /* 5^21 */
    {0x878678326eac9000u, 0x0000000000000000u}, /* 5^22 */
    {0xa968163f0a57b400u, 0x0000000000000000u}, /* 5^23 */
    {0xd3c21bcecceda100u, 0x0000000000000000u}, /* 5^24 */
    {0x84595161401484a0u, 0x0000000000000000u}, /* 5^25 */
    {0xa56fa5b99019a5c8u, 0x0000000000000000u}, /* 5^26 */
    {0xcecb8f27f4200f3au, 0x0000000000000000u}, /* 5^27 */
    {0x813f3978f8940984u, 0x4000000000000000u}, /* 5^28 */
    {0xa18f07d736b90be5u, 0x5000000000000000u}, /* 5^29 */
    {0xc9f2c9cd04674edeu, 0xa400000000000000u}, /* 5^30 */
    {0xfc6f7c4045812296u, 0x4d00000000000000u}, /* 5^31 */
    {0x9dc5ada82b70b59du, 0xf020000000000000u}, /* 5^32 */
    {0xc5371912364ce305u, 0x6c28000000000000u}, /* 5^33 */
    {0xf684df56c3e01bc6u, 0xc732000000000000u}, /* 5^34 */
    {0x9a130b963a6c115cu, 0x3c7f400000000000u}, /* 5^35 */
    {0xc097ce7bc90715b3u, 0x4b9f100000000000u}, /* 5^36 */
    {0xf0bdc21abb48db20u, 0x1e86d40000000000u}, /* 5^37 */
    {0x96769950b50d88f4u, 0x1314448000000000u}, /* 5^38 */
};

static const uint64_t pow10_u64[NUMPARSE_U64_DIGITS + 1] = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u, 1000000000u,
    10000000000u, 100000000000u, 1000000000000u, 10000000000000u, 100000000000000u,
    1000000000000000u, 10000000000000000u, 100000000000000000u, 1000000000000000000u,
    10000000000000000000u};

typedef struct u128 {
    uint64_t hi, lo;
} u128;

static inline u128 mul_64x64(uint64_t a, uint64_t b)
{
#if defined(__SIZEOF_INT128__)
    __extension__ typedef unsigned __int128 uint128;
    uint128 p = (uint128)a * b;
    return (u128){(uint64_t)(p >> 64), (uint64_t)p};
#else
    uint64_t a0 = (uint32_t)a, a1 = a >> 32, b0 = (uint32_t)b, b1 = b >> 32;
    uint64_t p00 = a0 * b0, p01 = a0 * b1, p10 = a1 * b0, p11 = a1 * b1;
    uint64_t mid = (p00 >> 32) + (uint32_t)p01 + (uint32_t)p10;
    return (u128){p11 + (p01 >> 32) + (p10 >> 32) + (mid >> 32), (mid << 32) | (uint32_t)p00};
#endif
}

static inline int clz64(uint64_t x) /* REQUIRES x != 0 */
{
#if defined(__GNUC__)
    return __builtin_clzll(x);
#else
    int n = 0;
    for (; !(x >> 63); x <<= 1) n++;
    return n;
#endif
}

/* floor(log2(10^q)) + 63 for |q| <= 350: 217706 / 2^16 approximates log2(10) closely
 * enough over that range. Floor division, so that negative q round down too. */
static inline int32_t binary_power(int32_t q)
{
    int32_t a = 217706 * q;
    return (a >= 0 ? a >> 16 : -((-a + 65535) >> 16)) + 63;
}

/* Eisel-Lemire: the float32 bits (sign excluded) nearest to w * 10^q, ties to even, in
 * *bits: 0 for values that round to zero, 0x7f800000 for overflow. Returns false, leaving
 * *bits alone, when the truncated product cannot decide (then the caller asks strtof).
 * w is the exact decimal mantissa. */
static bool eisel_lemire(uint64_t w, int64_t q, uint32_t *bits)
{
    if (w == 0 || q < EL_MIN_Q) {
        *bits = 0;
        return true;
    }
    if (q > EL_MAX_Q) {
        *bits = (uint32_t)F32_INFINITE_POWER << F32_MANTISSA_BITS;
        return true;
    }
    int lz = clz64(w);
    w <<= lz;
    const uint64_t *p5 = pow5_128[q - EL_MIN_Q];
    u128 prod = mul_64x64(w, p5[0]);
    /* The top 23 + 3 bits decide the rounding unless all the bits below them are ones:
     * only then can the low word of 5^q carry into them. */
    const uint64_t precision_mask = UINT64_MAX >> (F32_MANTISSA_BITS + 3);
    if ((prod.hi & precision_mask) == precision_mask) {
        u128 low = mul_64x64(w, p5[1]);
        prod.lo += low.hi;
        if (low.hi > prod.lo) prod.hi++;
    }
    /* Still all ones: the truncation of 5^q may hide a carry into the bits that decide,
     * except where the table is exact (5^q < 2^128: 0 <= q <= 55) or its 128-bit
     * reciprocal is precise enough (5^-q < 2^64: -27 <= q < 0). */
    if (prod.lo == UINT64_MAX && (q < -27 || q > 55)) return false;

    int upperbit = (int)(prod.hi >> 63);
    int shift = upperbit + 64 - F32_MANTISSA_BITS - 3;
    uint64_t mantissa = prod.hi >> shift;
    int32_t power2 = binary_power((int32_t)q) + upperbit - lz - F32_MIN_EXPONENT;
    if (power2 <= 0) { /* subnormal, or zero */
        if (-power2 + 1 >= 64) {
            *bits = 0;
            return true;
        }
        mantissa >>= -power2 + 1;
        mantissa += mantissa & 1;
        mantissa >>= 1;
        /* A subnormal's exponent field is 0. Rounding up may carry into bit 23: then the
         * bits are 0x00800000, exactly the smallest normal's encoding. */
        *bits = (uint32_t)mantissa;
        return true;
    }
    /* An exact tie rounds to even: the bits shifted out are all zero, and the product is
     * exact (5^q fits, low word at most 1). */
    if (prod.lo <= 1 && q >= EL_MIN_Q_ROUND_TO_EVEN && q <= EL_MAX_Q_ROUND_TO_EVEN &&
        (mantissa & 3) == 1 && (mantissa << shift) == prod.hi)
        mantissa &= ~(uint64_t)1;
    mantissa += mantissa & 1;
    mantissa >>= 1;
    if (mantissa >= ((uint64_t)2 << F32_MANTISSA_BITS)) {
        mantissa = (uint64_t)1 << F32_MANTISSA_BITS;
        power2++;
    }
    mantissa &= ~((uint64_t)1 << F32_MANTISSA_BITS);
    if (power2 >= F32_INFINITE_POWER) {
        *bits = (uint32_t)F32_INFINITE_POWER << F32_MANTISSA_BITS;
        return true;
    }
    *bits = (uint32_t)mantissa | (uint32_t)power2 << F32_MANTISSA_BITS;
    return true;
}

/* w * 10^q (w exact) rounded to float32, negated if neg, into *out; an overflow gives an
 * infinity. Returns false, *out unchanged, when only strtof can decide. */
static inline bool decimal_to_float(uint64_t w, int64_t q, bool neg, float *out)
{
#if FLT_EVAL_METHOD == 0
    /* Clinger: w <= 2^24 and 10^10 = 2^10 * 5^10 with 5^10 < 2^24 are exact floats, so one
     * IEEE operation rounds correctly. Needs float arithmetic done in float precision. */
    static const float pow10f[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                     1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
    if (w <= ((uint64_t)1 << 24) && q >= -10 && q <= 10) {
        float f = (float)w;
        f = q < 0 ? f / pow10f[-q] : f * pow10f[q];
        *out = neg ? -f : f;
        return true;
    }
#endif
    uint32_t bits;
    if (!eisel_lemire(w, q, &bits)) return false;
    bits |= (uint32_t)neg << 31;
    memcpy(out, &bits, sizeof *out);
    return true;
}

static pc_status not_a_number(const char *s, size_t len, char *err, size_t errlen,
                              const char *what)
{
    int shown = len > 40 ? 40 : (int)len;
    return pc_err(err, errlen, PC_ERR_DATA, "%s: '%.*s%s'", what, shown, s,
                  len > 40 ? "..." : "");
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

/* Way 4: strtof on the digits of t[0, n), which parse_float has checked and trimmed. Keeps
 * up to NUMPARSE_KEEP_DIGITS significant digits and a sticky one for the rest, so the copy
 * is bounded and rounds as the whole text would. */
static float strtof_digits(const char *t, size_t n)
{
    size_t i = 0;
    bool neg = false;
    if (i < n && (t[i] == '+' || t[i] == '-')) neg = t[i++] == '-';
    char dig[NUMPARSE_KEEP_DIGITS + 2];
    size_t ndig = 0;
    bool sticky = false;
    int64_t exp10 = 0;
    for (; i < n && is_digit(t[i]); i++) {
        if (ndig == 0 && t[i] == '0') continue;
        if (ndig < NUMPARSE_KEEP_DIGITS) {
            dig[ndig++] = t[i];
        } else {
            exp10++;
            sticky |= t[i] != '0';
        }
    }
    if (i < n && t[i] == '.') {
        for (i++; i < n && is_digit(t[i]); i++) {
            if (ndig == 0 && t[i] == '0') {
                exp10--;
            } else if (ndig < NUMPARSE_KEEP_DIGITS) {
                dig[ndig++] = t[i];
                exp10--;
            } else {
                sticky |= t[i] != '0';
            }
        }
    }
    if (i < n && (t[i] == 'e' || t[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (t[i] == '+' || t[i] == '-')) eneg = t[i++] == '-';
        int64_t e = 0;
        for (; i < n && is_digit(t[i]); i++)
            if (e < NUMPARSE_EXP_READ_MAX) e = e * 10 + (t[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (ndig == 0) return neg ? -0.0f : 0.0f;
    if (sticky) {
        dig[ndig++] = '1';
        exp10--;
    }
    if (exp10 > NUMPARSE_EXP_CLAMP) exp10 = NUMPARSE_EXP_CLAMP;
    if (exp10 < -NUMPARSE_EXP_CLAMP) exp10 = -NUMPARSE_EXP_CLAMP;
    /* Digits and an exponent only: no decimal mark, so no locale can change the meaning. */
    char buf[NUMPARSE_KEEP_DIGITS + 32];
    snprintf(buf, sizeof buf, "%.*se%lld", (int)ndig, dig, (long long)exp10);
    float f = strtof(buf, NULL);
    return neg ? -f : f;
}

pc_status parse_float(const char *s, size_t len, float *out, char *err, size_t errlen)
{
    size_t i = 0, n = len;
    while (i < n && is_space(s[i])) i++;
    while (n > i && is_space(s[n - 1])) n--;
    const size_t start = i;

    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';

    /* value = (w + a fraction below 1 if sticky) * 10^exp10, w the first <= 19 significant
     * digits. */
    uint64_t w = 0;
    int nsig = 0;
    bool sticky = false, any_digit = false;
    int64_t exp10 = 0;
    for (; i < n && is_digit(s[i]); i++) {
        unsigned d = (unsigned)(s[i] - '0');
        any_digit = true;
        if (nsig == 0 && d == 0) continue;
        if (nsig < NUMPARSE_U64_DIGITS) {
            w = w * 10 + d;
            nsig++;
        } else {
            exp10++;
            sticky |= d != 0;
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++) {
            unsigned d = (unsigned)(s[i] - '0');
            any_digit = true;
            if (nsig == 0 && d == 0) {
                exp10--;
            } else if (nsig < NUMPARSE_U64_DIGITS) {
                w = w * 10 + d;
                nsig++;
                exp10--;
            } else {
                sticky |= d != 0;
            }
        }
    }
    if (!any_digit) return not_a_number(s, len, err, errlen, "not a number");
    if (i < n && (s[i] == 'e' || s[i] == 'E')) {
        i++;
        bool eneg = false;
        if (i < n && (s[i] == '+' || s[i] == '-')) eneg = s[i++] == '-';
        if (i == n || !is_digit(s[i])) return not_a_number(s, len, err, errlen, "not a number");
        int64_t e = 0;
        for (; i < n && is_digit(s[i]); i++)
            if (e < NUMPARSE_EXP_READ_MAX) e = e * 10 + (s[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (i != n) return not_a_number(s, len, err, errlen, "not a number");

    float f, g;
    bool done = decimal_to_float(w, exp10, neg, &f);
    /* Dropped non-zero digits put the value strictly between w and w + 1 (times 10^exp10):
     * when both round to the same float, so does everything between them. */
    if (done && sticky)
        done = decimal_to_float(w + 1, exp10, neg, &g) && memcmp(&f, &g, sizeof f) == 0;
    if (!done) f = strtof_digits(s + start, n - start);
    if (isinf(f)) return not_a_number(s, len, err, errlen, "number out of float32 range");
    *out = f;
    return PC_OK;
}

/* ---------------------------------------------------------------- rows of numbers */

#if defined(__GNUC__)
#define NUMPARSE_NOINLINE __attribute__((noinline))
#else
#define NUMPARSE_NOINLINE
#endif

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__ && defined(__GNUC__)
/* The value of the 8-digit number whose digits (0-9, most significant first) are the bytes
 * of d in memory order, by three multiplications instead of eight (fast_float's
 * parse_eight_digits_unrolled). */
static inline uint64_t eight_digits(uint64_t d)
{
    d = d * 10 + (d >> 8); /* even bytes: pairs of digits */
    return (((d & 0x000000FF000000FFu) * 0x000F424000000064u) +
            (((d >> 16) & 0x000000FF000000FFu) * 0x0000271000000001u)) >> 32;
}

/* 0x80 in each byte of x = bytes ^ 0x30... that was not an ASCII digit (x > 9), tested
 * without carries between bytes. */
static inline uint64_t nondigit_mask(uint64_t x)
{
    return (((x & 0x7F7F7F7F7F7F7F7Fu) + 0x7676767676767676u) | x) & 0x8080808080808080u;
}

/* The run of digits at p: how many (0 to 8, never past end) and their value in *value.
 * Reads p[0, 8) whatever end is: REQUIRES those bytes readable and initialised. */
static inline unsigned digit_run(const char *p, const char *end, uint64_t *value)
{
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t x = w ^ 0x3030303030303030u; /* digit bytes become 0-9 */
    uint64_t nondigit = nondigit_mask(x);
    unsigned n = nondigit != 0 ? (unsigned)__builtin_ctzll(nondigit) >> 3 : 8;
    size_t avail = (size_t)(end - p);
    if (n > avail) n = (unsigned)avail;
    /* shift the n digits to the top: the bytes below become leading zeros */
    *value = n != 0 ? eight_digits(x << (64 - 8 * n)) : 0;
    return n;
}

/* The commonest shape of all: a field of at most 7 bytes, -?digits[.digits], read from one
 * 8-byte word. The field's end is the first sep in the word (or end): found straight from
 * the load, so that the next field's start does not wait for the digits. The field's bytes
 * are moved to the top of the word (the bytes below become leading zeros), checked to be
 * digits but for an optional leading '-' and at most one '.', and the '-' and '.' turned
 * into leading zeros; one eight_digits converts the rest. At most 7 digits and at most 6
 * decimals: Clinger's division is exact. Stores the value and returns the end of the field
 * (p[stop] is sep, or p + stop == end), or returns NULL for any other field (the caller
 * takes the long way). REQUIRES the bytes up to end + 8 readable. */
static inline const char *scan_word(const char *p, const char *end, char sep, float *out)
{
#if FLT_EVAL_METHOD == 0
    static const float pow10f[8] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f, 1e6f, 1e7f};
    const uint64_t ones = 0x0101010101010101u, highs = 0x8080808080808080u;
    if (p >= end) return NULL;
    uint64_t w;
    memcpy(&w, p, sizeof w);
    uint64_t y = w ^ (ones * (unsigned char)sep); /* zero bytes at separators */
    uint64_t seps = (y - ones) & ~y & highs;      /* exact up to the first one */
    size_t stop = seps != 0 ? (size_t)__builtin_ctzll(seps) >> 3 : 8;
    size_t avail = (size_t)(end - p);
    if (stop > avail) stop = avail;
    if (stop - 1 >= 7) return NULL; /* empty, or longer than 7 bytes */
    unsigned top = 64 - 8 * (unsigned)stop; /* the field's first byte, shifted up */
    uint64_t x = (w ^ 0x3030303030303030u) << top;
    bool neg = (w & 0xFF) == '-';
    x &= ~((uint64_t)(neg ? 0xFF : 0) << top); /* '-' becomes a leading zero */
    uint64_t odd = nondigit_mask(x);
    unsigned frac = 0;
    if (odd != 0) {
        unsigned at = (unsigned)__builtin_ctzll(odd) - 7; /* bit offset of the byte */
        if ((odd & (odd - 1)) != 0 || (x >> at & 0xFF) != ('.' ^ '0')) return NULL;
        uint64_t low = ((uint64_t)1 << at) - 1;
        x = (x & (~low << 8)) | ((x & low) << 8); /* the '.' dropped, the digits below moved up */
        frac = 7 - at / 8;
    }
    if (stop - neg - (odd != 0) == 0) return NULL; /* no digit */
    float f = (float)eight_digits(x) / pow10f[frac];
    *out = neg ? -f : f;
    return p + stop;
#else
    (void)p, (void)end, (void)sep, (void)out;
    return NULL;
#endif
}
#else
static inline const char *scan_word(const char *p, const char *end, char sep, float *out)
{
    (void)p, (void)end, (void)sep, (void)out;
    return NULL;
}

static inline unsigned digit_run(const char *p, const char *end, uint64_t *value)
{
    unsigned n = 0;
    uint64_t v = 0;
    for (; n < 8 && p + n < end && is_digit(p[n]); n++) v = v * 10 + (uint64_t)(p[n] - '0');
    *value = v;
    return n;
}
#endif

/* The common shapes in one pass and without a branch per digit: [+-]digits[.digits] with
 * at most 19 digits in all (leading zeros included), then optionally e[+-]digits with at
 * most 4 digits. Stores the value and returns where the number ends; returns NULL (*out
 * unspecified) for anything else — spaces, a long mantissa or exponent, overflow, a
 * malformed number — which parse_float then settles. REQUIRES p <= end, the bytes up to
 * end + 8 readable. */
static inline const char *scan_plain(const char *p, const char *end, float *out)
{
    bool neg = false;
    if (p < end && (*p == '-' || *p == '+')) neg = *p++ == '-';
    uint64_t w = 0, v;
    unsigned ndig = 0, n;
    /* More than 19 digits may wrap w: harmless, such a mantissa is refused below (and the
     * loops stop reading it). */
    do {
        n = digit_run(p, end, &v);
        w = w * pow10_u64[n] + v;
        ndig += n;
        p += n;
    } while (n == 8 && ndig <= NUMPARSE_U64_DIGITS);
    unsigned nint = ndig;
    if (p < end && *p == '.' && ndig <= NUMPARSE_U64_DIGITS) {
        p++;
        do {
            n = digit_run(p, end, &v);
            w = w * pow10_u64[n] + v;
            ndig += n;
            p += n;
        } while (n == 8 && ndig <= NUMPARSE_U64_DIGITS);
    }
    if (ndig == 0 || ndig > NUMPARSE_U64_DIGITS) return NULL;
    int64_t q = -(int64_t)(ndig - nint);
    if (p < end && (*p | 0x20) == 'e') {
        p++;
        bool eneg = false;
        if (p < end && (*p == '-' || *p == '+')) eneg = *p++ == '-';
        uint64_t e;
        n = digit_run(p, end, &e);
        if (n == 0 || n > 4) return NULL;
        p += n;
        q += eneg ? -(int64_t)e : (int64_t)e;
    }
    if (!decimal_to_float(w, q, neg, out) || isinf(*out)) return NULL;
    return p;
}

/* A field scan_word could not take: scan_plain, else parse_float on the whole field.
 * Returns where the field ends (its separator or end), or NULL if it is not a number.
 * Kept out of line so that the loop over plain fields keeps its registers. */
static NUMPARSE_NOINLINE const char *parse_field_slow(const char *p, const char *end, char sep,
                                                     float *out, char *err, size_t errlen)
{
    const char *q = scan_plain(p, end, out);
    if (q != NULL && (q == end || *q == sep)) return q;
    q = memchr(p, sep, (size_t)(end - p));
    if (q == NULL) q = end;
    return parse_float(p, (size_t)(q - p), out, err, errlen) == PC_OK ? q : NULL;
}

size_t parse_float_fields(const char *s, size_t len, char sep, size_t n, float *out, size_t *ends,
                          char *err, size_t errlen)
{
    const char *p = s, *end = s + len;
    for (size_t i = 0; i < n; i++) {
        const char *q = scan_word(p, end, sep, &out[i]);
        if (q == NULL) {
            q = parse_field_slow(p, end, sep, &out[i], err, errlen);
            if (q == NULL) return i;
        }
        ends[i] = (size_t)(q - s);
        if (q == end) return i + 1;
        p = q + 1;
    }
    return n;
}

/* ---- format_float_g6 ---- */

/* The formatter's exact arithmetic (gcc and clang on 64-bit targets). */
__extension__ typedef unsigned __int128 uint128;

static uint128 pow10_u128(int n)
{
    uint128 p = 1;
    while (n-- > 0) p *= 10;
    return p;
}

/* x = m * 2^e (m < 2^24) times 10^s, truncated: *q, and how the dropped part compares with
 * one half: -1 below, 0 exactly, 1 above. False when the quotient would not fit 64 bits. */
static bool scaled_digits(uint32_t m, int e, int s, uint64_t *q, int *half)
{
    uint128 num = m, den = 1;
    if (s >= 0) num *= pow10_u128(s);
    else den = pow10_u128(-s);
    if (e >= 0) num <<= e;
    else den <<= -e;
    uint128 quot = num / den, rem = num - quot * den;
    if (quot >> 63) return false;
    *q = (uint64_t)quot;
    uint128 twice = rem << 1;
    *half = twice < den ? -1 : twice == den ? 0 : 1;
    return true;
}

/* The 6 significant digits of x = m * 2^e, correctly rounded, and the decimal exponent k of
 * the rounded value (x ~ digits * 10^(k-5)). */
static bool six_digits(uint32_t m, int e, double approx, uint32_t *digits, int *k)
{
    int kk = (int)floor(log10(approx));
    for (int tries = 0; tries < 3; tries++) {
        uint64_t q;
        int half;
        if (!scaled_digits(m, e, 5 - kk, &q, &half)) return false;
        if (q < 100000) { /* log10 rounded up across a power of ten */
            kk--;
            continue;
        }
        if (q >= 1000000) {
            kk++;
            continue;
        }
        q += half > 0 || (half == 0 && (q & 1));
        if (q == 1000000) q = 100000, kk++;
        *digits = (uint32_t)q;
        *k = kk;
        return true;
    }
    return false;
}

int format_float_g6(char out[FORMAT_G6_MAX], float v)
{
    uint32_t bits;
    memcpy(&bits, &v, sizeof bits);
    uint32_t biased = (bits >> 23) & 0xff, m = bits & 0x7fffff;
    double a = fabs((double)v);
    uint32_t d;
    int k;
    /* normal floats in [1e-25, 2^100): the numerator and denominator fit 128 bits */
    if (biased == 0 || biased == 0xff || a < 1e-25 || a >= 0x1p100 ||
        !six_digits(m | 0x800000, (int)biased - 150, a, &d, &k))
        return snprintf(out, FORMAT_G6_MAX, "%.6g", (double)v);
    char dig[6];
    for (int i = 5; i >= 0; i--, d /= 10) dig[i] = (char)('0' + d % 10);
    int nd = 6;
    while (nd > 1 && dig[nd - 1] == '0') nd--; /* %g drops trailing zeros */
    char *p = out;
    if (bits >> 31) *p++ = '-';
    if (k >= -4 && k < 6) { /* fixed notation */
        if (k >= 0) {
            for (int i = 0; i <= k; i++) *p++ = i < nd ? dig[i] : '0';
            if (nd > k + 1) {
                *p++ = '.';
                for (int i = k + 1; i < nd; i++) *p++ = dig[i];
            }
        } else {
            *p++ = '0';
            *p++ = '.';
            for (int i = 0; i < -k - 1; i++) *p++ = '0';
            for (int i = 0; i < nd; i++) *p++ = dig[i];
        }
    } else { /* exponent notation: d.ddddde+XX */
        *p++ = dig[0];
        if (nd > 1) {
            *p++ = '.';
            for (int i = 1; i < nd; i++) *p++ = dig[i];
        }
        int x = k < 0 ? -k : k;
        *p++ = 'e';
        *p++ = k < 0 ? '-' : '+';
        if (x >= 100) *p++ = (char)('0' + x / 100);
        *p++ = (char)('0' + x / 10 % 10);
        *p++ = (char)('0' + x % 10);
    }
    *p = '\0';
    return (int)(p - out);
}
