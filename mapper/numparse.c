#include "mapper/numparse.h"

#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

/* Significant digits kept for the slow path. A float32 halfway point has at most ~112
 * significant decimal digits, so 200 kept digits plus a sticky '1' for any non-zero digit
 * dropped after them decide the rounding exactly as the full string would. */
enum { NUMPARSE_KEEP_DIGITS = 200 };

/* Exponents beyond this are clamped: the result is 0 or overflow either way, and clamping
 * keeps the arithmetic far from int64 overflow. */
#define NUMPARSE_EXP_CLAMP 100000

static pc_status not_a_number(const char *s, size_t len, char *err, size_t errlen,
                              const char *what)
{
    int shown = len > 40 ? 40 : (int)len;
    return pc_err(err, errlen, PC_ERR_DATA, "%s: '%.*s%s'", what, shown, s,
                  len > 40 ? "..." : "");
}

static bool is_space(char c) { return c == ' ' || c == '\t'; }
static bool is_digit(char c) { return c >= '0' && c <= '9'; }

pc_status parse_float(const char *s, size_t len, float *out, char *err, size_t errlen)
{
    static const float pow10f[11] = {1e0f, 1e1f, 1e2f, 1e3f, 1e4f, 1e5f,
                                     1e6f, 1e7f, 1e8f, 1e9f, 1e10f};
    size_t i = 0, n = len;
    while (i < n && is_space(s[i])) i++;
    while (n > i && is_space(s[n - 1])) n--;

    bool neg = false;
    if (i < n && (s[i] == '+' || s[i] == '-')) neg = s[i++] == '-';

    /* value = D * 10^exp10 where D is the integer spelled by dig[0, ndig). */
    char dig[NUMPARSE_KEEP_DIGITS + 2];
    size_t ndig = 0;
    bool sticky = false, any_digit = false;
    int64_t exp10 = 0;
    for (; i < n && is_digit(s[i]); i++) {
        any_digit = true;
        if (ndig == 0 && s[i] == '0') continue;
        if (ndig < NUMPARSE_KEEP_DIGITS) {
            dig[ndig++] = s[i];
        } else {
            exp10++;
            sticky |= s[i] != '0';
        }
    }
    if (i < n && s[i] == '.') {
        for (i++; i < n && is_digit(s[i]); i++) {
            any_digit = true;
            if (ndig == 0 && s[i] == '0') {
                exp10--;
            } else if (ndig < NUMPARSE_KEEP_DIGITS) {
                dig[ndig++] = s[i];
                exp10--;
            } else {
                sticky |= s[i] != '0';
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
            if (e < NUMPARSE_EXP_CLAMP) e = e * 10 + (s[i] - '0');
        exp10 += eneg ? -e : e;
    }
    if (i != n) return not_a_number(s, len, err, errlen, "not a number");

    if (ndig == 0) {
        *out = neg ? -0.0f : 0.0f;
        return PC_OK;
    }
    if (!sticky) {
        while (ndig > 0 && dig[ndig - 1] == '0') {
            ndig--;
            exp10++;
        }
    }

#if FLT_EVAL_METHOD == 0
    /* Clinger's fast path: D < 10^7 < 2^24 and 10^|exp10| <= 10^10 = 2^10 * 5^10 with
     * 5^10 < 2^24 are both exact floats, so one IEEE operation rounds correctly. */
    if (ndig <= 7 && exp10 >= -10 && exp10 <= 10) {
        int32_t d = 0;
        for (size_t k = 0; k < ndig; k++) d = d * 10 + (dig[k] - '0');
        float f = (float)d;
        f = exp10 >= 0 ? f * pow10f[exp10] : f / pow10f[-exp10];
        *out = neg ? -f : f;
        return PC_OK;
    }
#else
    (void)pow10f;
#endif

    if (sticky) {
        dig[ndig++] = '1';
        exp10--;
    }
    if (exp10 > NUMPARSE_EXP_CLAMP) exp10 = NUMPARSE_EXP_CLAMP;
    if (exp10 < -NUMPARSE_EXP_CLAMP) exp10 = -NUMPARSE_EXP_CLAMP;
    /* Digits and an exponent only: no decimal mark, so no locale can change the meaning. */
    char buf[NUMPARSE_KEEP_DIGITS + 32];
    snprintf(buf, sizeof buf, "%.*se%lld", (int)ndig, dig, (long long)exp10);
    errno = 0;
    float f = strtof(buf, NULL);
    if (!isfinite(f) || (errno == ERANGE && fabsf(f) > 1.0f))
        return not_a_number(s, len, err, errlen, "number out of float32 range");
    *out = neg ? -f : f;
    return PC_OK;
}
