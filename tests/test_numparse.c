/* Unit tests of mapper/numparse: parse_float and parse_float_fields against strtof.
 *
 * The reference is strtof, bit for bit: features are float32, and strtof rounds the exact
 * decimal straight to float32; strtod-then-cast rounds twice and differs at midpoints.
 *
 * test_against_strtof runs at least 10,000,000 texts through parse_float and, joined into
 * rows, through parse_float_fields: random decimals with 1 to 20 significant digits and
 * exponents over all of float32's range and beyond it (subnormals, underflow to zero,
 * overflow that must be rejected), leading and trailing zeros and signs in every position,
 * floats printed with 1 to 12 digits, and the hard cases: the exact midpoint between two
 * adjacent floats (every digit, up to ~112), the midpoint nudged up or down by one unit in
 * its last digit or far below it, and the midpoint rounded to 9 to 25 digits.
 * test_every_short_field tries every field of 1 to 7 bytes of digits, '.' and '-' (the fast
 * path's whole domain, ~20 million). Under valgrind (VALGRIND=1, as make check-valgrind
 * sets it) both run a small fraction of their values. */
#include <check.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mapper/numparse.h"

/* ---------------------------------------------------------------- helpers */

/* ck_assert_msg records a checkpoint (a write to Check's pipe) on every success: too slow
 * for ten million values. This one costs nothing unless it fails. */
#define EXPECT(cond, ...)                                                                      \
    do {                                                                                       \
        if (!(cond)) ck_abort_msg(__VA_ARGS__);                                                \
    } while (0)

static uint64_t next_rand(uint64_t *s) /* xorshift64* */
{
    *s ^= *s >> 12;
    *s ^= *s << 25;
    *s ^= *s >> 27;
    return *s * 0x2545F4914F6CDD1DULL;
}

static unsigned rand_below(uint64_t *s, unsigned n) { return (unsigned)(next_rand(s) % n); }

/* What strtof says about the NUL-terminated s: its value, or that it overflows (then
 * parse_float must reject it). */
typedef struct expect {
    float value;
    int overflow;
} expect;

static expect strtof_expect(const char *s)
{
    expect e;
    errno = 0;
    e.value = strtof(s, NULL);
    e.overflow = isinf(e.value);
    return e;
}

static int same_bits(float a, float b) { return memcmp(&a, &b, sizeof a) == 0; }

/* parse_float on an exact-size heap copy (no NUL after it: ASan catches a read past len). */
static void check_one(const char *s)
{
    size_t len = strlen(s);
    char *copy = malloc(len > 0 ? len : 1);
    ck_assert_ptr_nonnull(copy);
    memcpy(copy, s, len);
    expect e = strtof_expect(s);
    char err[PC_ERRLEN];
    float got = 12345.0f;
    pc_status st = parse_float(copy, len, &got, err, sizeof err);
    free(copy);
    if (e.overflow) {
        ck_assert_msg(st == PC_ERR_DATA, "'%s' overflows float32 but was accepted as %a", s, got);
        ck_assert_msg(strstr(err, "number out of float32 range") != NULL, "'%s': %s", s, err);
        ck_assert_msg(got == 12345.0f, "'%s': *out changed on failure", s);
        return;
    }
    ck_assert_msg(st == PC_OK, "'%s': %s", s, err);
    ck_assert_msg(same_bits(got, e.value), "'%s': got %a want %a (strtof)", s, got, e.value);
}

/* A batch of texts checked three ways: strtof (the reference), parse_float on each, and
 * parse_float_fields over all of them joined by ',' in one buffer with exactly
 * PARSE_FLOAT_PADDING bytes after it (filled with digits, which must not be taken). */
enum { BATCH = 4096, TEXT_MAX = 160 };

typedef struct batch {
    char *row;          /* the joined texts */
    size_t len, cap;
    size_t starts[BATCH + 1];
    expect want[BATCH];
    size_t n;
    int64_t checked;    /* values compared so far, over all batches */
    float out[BATCH];   /* parse_float_fields' results */
    size_t ends[BATCH];
} batch;

static void batch_init(batch *b)
{
    memset(b, 0, sizeof *b);
    b->cap = (size_t)BATCH * (TEXT_MAX + 1);
    b->row = malloc(b->cap + PARSE_FLOAT_PADDING);
    ck_assert_ptr_nonnull(b->row);
}

static void batch_check(batch *b);

static void batch_add(batch *b, const char *s)
{
    size_t len = strlen(s);
    EXPECT(len < TEXT_MAX, "text too long: %s", s);
    if (b->n > 0) b->row[b->len++] = ',';
    b->starts[b->n] = b->len;
    memcpy(b->row + b->len, s, len);
    b->len += len;
    b->want[b->n++] = strtof_expect(s);
    if (b->n == BATCH) batch_check(b);
}

static void batch_check(batch *b)
{
    if (b->n == 0) return;
    b->starts[b->n] = b->len + 1; /* as if a separator followed the last text */
    memset(b->row + b->len, '7', PARSE_FLOAT_PADDING);
    char err[PC_ERRLEN];
    for (size_t i = 0; i < b->n; i++) {
        const char *t = b->row + b->starts[i];
        size_t tlen = b->starts[i + 1] - 1 - b->starts[i];
        float got = 12345.0f;
        pc_status st = parse_float(t, tlen, &got, err, sizeof err);
        if (b->want[i].overflow) {
            EXPECT(st == PC_ERR_DATA, "'%.*s' overflows float32 but was accepted as %a",
                          (int)tlen, t, got);
            EXPECT(got == 12345.0f, "'%.*s': *out changed on failure", (int)tlen, t);
        } else {
            EXPECT(st == PC_OK, "'%.*s': %s", (int)tlen, t, err);
            EXPECT(same_bits(got, b->want[i].value), "'%.*s': got %a want %a (strtof)",
                          (int)tlen, t, got, b->want[i].value);
        }
    }
    /* The whole row, resuming after each rejected (overflowing) field. */
    float *out = b->out;
    size_t *ends = b->ends;
    size_t first = 0;
    while (first < b->n) {
        size_t off = b->starts[first];
        size_t k = parse_float_fields(b->row + off, b->len - off, ',', b->n - first, out, ends,
                                      err, sizeof err);
        for (size_t i = 0; i < k; i++) {
            size_t at = first + i;
            const char *t = b->row + b->starts[at];
            int tlen = (int)(b->starts[at + 1] - 1 - b->starts[at]);
            EXPECT(!b->want[at].overflow, "fields: '%.*s' overflows but was accepted",
                          tlen, t);
            EXPECT(same_bits(out[i], b->want[at].value),
                          "fields: '%.*s': got %a want %a (strtof)", tlen, t, out[i],
                          b->want[at].value);
            EXPECT(off + ends[i] == b->starts[at + 1] - 1, "fields: '%.*s': wrong end", tlen, t);
        }
        if (first + k == b->n) break;
        EXPECT(b->want[first + k].overflow, "fields: stopped at '%.*s': %s",
                      (int)(b->starts[first + k + 1] - 1 - b->starts[first + k]),
                      b->row + b->starts[first + k], err);
        EXPECT(strstr(err, "number out of float32 range") != NULL, "%s", err);
        first += k + 1;
    }
    b->checked += (int64_t)b->n;
    b->n = 0;
    b->len = 0;
}

/* ---------------------------------------------------------------- generators */

/* Writes sign, then `digits` (nd of them, already chosen) with the decimal point placed so
 * that the value is 0.DIGITS * 10^e10 (e10 may be far outside float32's range), in one of
 * several spellings: scientific, positional with or without an exponent, with extra
 * leading or trailing zeros. */
static void spell_decimal(uint64_t *rng, char *out, const char *digits, int nd, int e10)
{
    char *o = out;
    unsigned sign = rand_below(rng, 4);
    if (sign == 0) *o++ = '-';
    if (sign == 1) *o++ = '+';
    int zeros_before = rand_below(rng, 4) == 0 ? (int)rand_below(rng, 30) : 0;
    int zeros_after = rand_below(rng, 4) == 0 ? (int)rand_below(rng, 30) : 0;
    /* the point goes after `point` mantissa characters (zeros_before included) */
    int total = zeros_before + nd + zeros_after;
    int point = (int)rand_below(rng, (unsigned)total + 2) - 1; /* -1: no point */
    int shown_exp = e10 - (point < 0 ? total : point) + zeros_before;
    /* value = 0.DIGITS * 10^e10 = MANTISSA_TEXT (as read) * 10^shown_exp */
    for (int i = 0; i < total; i++) {
        if (i == point) *o++ = '.';
        char c = i < zeros_before ? '0' : i < zeros_before + nd ? digits[i - zeros_before] : '0';
        *o++ = c;
    }
    if (point == total) *o++ = '.';
    /* plain if the exponent is small and a coin says so; else an explicit exponent */
    if (shown_exp != 0 || rand_below(rng, 3) == 0) {
        *o++ = rand_below(rng, 2) ? 'e' : 'E';
        unsigned es = rand_below(rng, 3);
        int mag = shown_exp < 0 ? -shown_exp : shown_exp;
        if (shown_exp < 0) *o++ = '-';
        else if (es == 0) *o++ = '+';
        int width = rand_below(rng, 5) == 0 ? 4 : 1;
        o += sprintf(o, "%0*d", width, mag);
    }
    *o = '\0';
}

/* Random decimal: 1 to 20 significant digits, exponent across float32's range and past
 * both ends; digits sometimes all 9s, runs of zeros, or a single non-zero. */
static void gen_random_decimal(uint64_t *rng, char *out)
{
    char digits[32];
    int nd = 1 + (int)rand_below(rng, 20);
    unsigned style = rand_below(rng, 8);
    for (int i = 0; i < nd; i++) {
        int d = (int)rand_below(rng, 10);
        if (style == 0) d = 9;
        if (style == 1 && i > 0) d = rand_below(rng, 4) ? 0 : d;
        digits[i] = (char)('0' + d);
    }
    if (digits[0] == '0') digits[0] = (char)('1' + rand_below(rng, 9));
    /* float32 spans ~1.4e-45 .. 3.4e38: cover -50 .. 42, with extra weight on the edges */
    int e10;
    unsigned where = rand_below(rng, 8);
    if (where == 0) e10 = -46 + (int)rand_below(rng, 10);      /* subnormals, underflow */
    else if (where == 1) e10 = 36 + (int)rand_below(rng, 5);   /* near FLT_MAX, overflow */
    else if (where == 2) e10 = -10 + (int)rand_below(rng, 21); /* the fast paths */
    else e10 = -50 + (int)rand_below(rng, 93);
    spell_decimal(rng, out, digits, nd, e10);
}

/* The exact decimal expansion of the double d > 0: significant digits (no trailing zeros)
 * into digits, returns their count; *e10 such that d = 0.DIGITS * 10^e10. */
static int exact_digits(double d, char *digits, int *e10)
{
    char buf[200];
    snprintf(buf, sizeof buf, "%.140e", d); /* float32 midpoints need at most ~112 digits */
    char *e = strchr(buf, 'e');
    int nd = 0;
    for (char *p = buf; p < e; p++)
        if (*p >= '0' && *p <= '9') digits[nd++] = *p;
    while (nd > 1 && digits[nd - 1] == '0') nd--;
    digits[nd] = '\0';
    EXPECT(e[-1] == '0' && e[-2] == '0', "%.140e is not exact", d);
    *e10 = atoi(e + 1) + 1;
    return nd;
}

/* Hard cases around the midpoint between x and the next float up (for FLT_MAX: 2^128, the
 * overflow threshold): exact, one unit up or down in the last digit, far below it, just
 * above it, rounded to 9-25 digits. */
static void gen_midpoints(uint64_t *rng, batch *b, float x)
{
    double lo = x, hi = x == FLT_MAX ? ldexp(1.0, 128) : (double)nextafterf(x, INFINITY);
    double mid = lo + (hi - lo) / 2; /* exact: 25 significant bits */
    char digits[200], text[256];
    int e10;
    int nd = exact_digits(mid, digits, &e10);
    if (nd + 30 >= TEXT_MAX) return;
    const char *sign = rand_below(rng, 2) ? "-" : "";
    /* exactly the midpoint: ties to even */
    snprintf(text, sizeof text, "%s0.%se%d", sign, digits, e10);
    batch_add(b, text);
    /* just above: a 1 far after the last digit */
    snprintf(text, sizeof text, "%s0.%s000001e%d", sign, digits, e10);
    batch_add(b, text);
    /* last digit one up */
    char up[200];
    memcpy(up, digits, (size_t)nd + 1);
    int k = nd - 1;
    while (k >= 0 && up[k] == '9') up[k--] = '0';
    if (k >= 0) {
        up[k]++;
        snprintf(text, sizeof text, "%s0.%se%d", sign, up, e10);
        batch_add(b, text);
    }
    /* last digit one down, and a hair below (…d-1 999999) */
    char down[200];
    memcpy(down, digits, (size_t)nd + 1);
    k = nd - 1;
    while (k >= 0 && down[k] == '0') down[k--] = '9';
    if (k >= 0) {
        down[k]--;
        snprintf(text, sizeof text, "%s0.%se%d", sign, down, e10);
        batch_add(b, text);
        snprintf(text, sizeof text, "%s0.%s999999e%d", sign, down, e10);
        batch_add(b, text);
    }
    /* rounded to fewer digits: near the midpoint, on either side */
    int prec = 8 + (int)rand_below(rng, 17);
    snprintf(text, sizeof text, "%s%.*e", sign, prec, mid);
    batch_add(b, text);
}

/* ---------------------------------------------------------------- fixed cases */

/* A mantissa whose position moves the exponent by more than any clamp: 200,000 zeros after
 * the point, then an exponent that brings the value back into (or past) float range.  The
 * written exponent must be summed exactly with the digits' offset before any clamping. */
START_TEST(test_long_mantissa_exponents)
{
    const size_t zeros = 200000;
    const char *tails[] = {"1e1000000", "1e2000001", "1e200001", "1e199990", "5e200040",
                           "1e-5", "1e99999999999999999999"};
    char *s = malloc(zeros + 64);
    ck_assert_ptr_nonnull(s);
    for (size_t t = 0; t < sizeof tails / sizeof *tails; t++) {
        memcpy(s, "0.", 2);
        memset(s + 2, '0', zeros);
        strcpy(s + 2 + zeros, tails[t]);
        check_one(s);
    }
    free(s);
}
END_TEST

START_TEST(test_fixed)
{
    const char *ok[] = {
        "0", "-0", "+0", "0.0", "-0.0", "00000", "-0e10", "0e-999", "-0.000e+5", "1", "-1",
        "1.5", ".5", "5.", "-.5", "+.5", "1e3", "1E3", "1e+3", "1e-3", "  2.5  ", "\t7\t",
        "3.14159265358979", "16777216", "16777217", "16777218", "16777219", "1.6777217e7",
        "33554431", "3.4028235e38", "3.40282346e38", "3.4028235677973366e38",
        "340282346638528859811704183484516925440", /* FLT_MAX exactly */
        "340282356779733661637539395458142568447", /* one below the overflow threshold */
        "340282356779733661637539395458142568447.999999999999999999999999",
        "1.17549435e-38", "1.1754942e-38", "1.17549421e-38", "1.4e-45", "1e-45", "7e-46",
        "7.1e-46", "7.006492321624085354618647916449580656401309709382578858785341419448955413"
        "42930300743319094181060791015625e-46", /* half of the smallest subnormal: to 0 */
        "7.006492321624085354618647916449580656401309709382578858785341419448955413"
        "42930300743319094181060791015626e-46", /* just above it: the smallest subnormal */
        "2.1019476964872256063855943749348741969203929128147736576356024258346866240"
        "28790902229957282543182373046875e-45", /* 1.5 subnormal units: ties to even (2) */
        "1e-50", "-1e-50", "0.000000000000000000000000000000000000000000001401298464324817",
        "0.1", "0.2", "0.3", "9999999", "9999999e10", "9999999e-10", "1234567e-10",
        "0.0000000001", "1e10", "1e11", "123456789012345678901234567890",
        "0.00000000000000000000000000000000000000000000000000000000000000000123e60",
        "1.00000005960464477539062499999999999999999999999999999999999999999999999999999",
        "1.0000000596046447753906250000000000000000000000000000000000000000000000000001",
        "1.000000059604644775390625", /* 1 + 2^-24: ties to even (1) */
        "1.000000178813934326171875", /* 1 + 3 * 2^-24: ties to even (1 + 2^-22) */
        "1e-99999999999", "0e99999999999", "-4.2e-07", "100000000000000000000000000000000000000",
        "18446744073709551615", "18446744073709551616", "9999999999999999999",
        "99999999999999999999", "0.30000001192092895507812", "8388608.5", "8388609.5",
        "4.9999998e-1", "000000000000000000000000000000000123.4500000000000000000000000000",
        "1.e5", "1e0005", "1e-0045", "12345678.9", "0.0262", "0.881", "1.0000", ".0000000001",
    };
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++) check_one(ok[i]);
}
END_TEST

START_TEST(test_rejects)
{
    const char *bad[] = {"", " ", "nan", "NaN", "inf", "-inf", "infinity", "1e", "1e+", "1e-",
                         "1.2.3", "abc", "0x10", "0X1p3", "1,5", "--1", "+-1", ".", "+", "-",
                         "e5", ".e5", "-.e1", "1e39", "-1e39", "3.4028236e38", "3.40282357e38",
                         "340282356779733661637539395458142568448", /* the overflow threshold */
                         "1 2", "1f", "1e5x", "1e99999999999", "\"1\"", "1_000", "1e5.5",
                         "1..2", "\xd9\xa1", "\xff", "1\n", "1\r", "0.5e", "5e-+1"};
    char err[PC_ERRLEN];
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        float f = 42.0f;
        ck_assert_msg(parse_float(bad[i], strlen(bad[i]), &f, err, sizeof err) == PC_ERR_DATA,
                      "'%s' accepted as %a", bad[i], f);
        ck_assert_msg(f == 42.0f, "'%s': *out changed on failure", bad[i]);
    }
    ck_assert_int_eq(parse_float("abc", 3, &(float){0}, err, sizeof err), PC_ERR_DATA);
    ck_assert_str_eq(err, "not a number: 'abc'");
    ck_assert_int_eq(parse_float("1e39", 4, &(float){0}, err, sizeof err), PC_ERR_DATA);
    ck_assert_str_eq(err, "number out of float32 range: '1e39'");
    const char *long_junk = "12345678901234567890123456789012345678901234567890x";
    ck_assert_int_eq(parse_float(long_junk, strlen(long_junk), &(float){0}, err, sizeof err),
                     PC_ERR_DATA);
    ck_assert_str_eq(err, "not a number: '1234567890123456789012345678901234567890...'");
    /* only len bytes are looked at */
    float f;
    ck_assert_int_eq(parse_float("12junk", 2, &f, err, sizeof err), PC_OK);
    ck_assert(f == 12.0f);
    ck_assert_int_eq(parse_float("1e5", 2, &f, err, sizeof err), PC_ERR_DATA);
    /* err may be NULL */
    ck_assert_int_eq(parse_float("x", 1, &f, NULL, 0), PC_ERR_DATA);
}
END_TEST

/* ---------------------------------------------------------------- parse_float_fields */

/* s copied into an exact-size buffer with PARSE_FLOAT_PADDING bytes of `pad` after it. */
static char *padded(const char *s, char pad)
{
    size_t len = strlen(s);
    char *p = malloc(len + PARSE_FLOAT_PADDING);
    ck_assert_ptr_nonnull(p);
    memcpy(p, s, len);
    memset(p + len, pad, PARSE_FLOAT_PADDING);
    return p;
}

START_TEST(test_fields_contract)
{
    float out[8];
    size_t ends[8];
    char err[PC_ERRLEN];
    /* all fields, the padding's digits not taken */
    const char *row = "0.0262,1,-0,1e3,  2.5 ,7";
    char *p = padded(row, '9');
    size_t len = strlen(row);
    ck_assert_uint_eq(parse_float_fields(p, len, ',', 6, out, ends, err, sizeof err), 6);
    float want[6] = {0.0262f, 1.0f, -0.0f, 1000.0f, 2.5f, 7.0f};
    size_t want_ends[6] = {6, 8, 11, 15, 22, 24};
    for (int i = 0; i < 6; i++) {
        ck_assert_msg(same_bits(out[i], want[i]), "field %d: %a", i, out[i]);
        ck_assert_uint_eq(ends[i], want_ends[i]);
    }
    /* n smaller than the fields there: stops after n, ends[n-1] at the separator */
    ck_assert_uint_eq(parse_float_fields(p, len, ',', 2, out, ends, err, sizeof err), 2);
    ck_assert_uint_eq(ends[1], 8);
    /* n larger: returns the count, the last end is len */
    ck_assert_uint_eq(parse_float_fields(p, len, ',', 8, out, ends, err, sizeof err), 6);
    ck_assert_uint_eq(ends[5], len);
    free(p);

    /* a bad field: k = its index, err says why */
    const char *bad = "1.5,2,nan,4";
    p = padded(bad, '0');
    ck_assert_uint_eq(parse_float_fields(p, strlen(bad), ',', 4, out, ends, err, sizeof err), 2);
    ck_assert_str_eq(err, "not a number: 'nan'");
    free(p);
    /* empty fields are not numbers, wherever they are */
    const char *empties[] = {"", ",1", "1,", "1,,2"};
    size_t empty_at[] = {0, 0, 1, 1};
    for (int i = 0; i < 4; i++) {
        p = padded(empties[i], '5');
        ck_assert_uint_eq(parse_float_fields(p, strlen(empties[i]), ',', 3, out, ends, err,
                                             sizeof err), empty_at[i]);
        ck_assert_str_eq(err, "not a number: ''");
        free(p);
    }
    /* overflow is rejected, with parse_float's message */
    p = padded("1,1e39", '1');
    ck_assert_uint_eq(parse_float_fields(p, 6, ',', 2, out, ends, err, sizeof err), 1);
    ck_assert_str_eq(err, "number out of float32 range: '1e39'");
    free(p);
    /* another separator; a comma is then just a bad character */
    p = padded("1;2,5;3", '3');
    ck_assert_uint_eq(parse_float_fields(p, 7, ';', 3, out, ends, NULL, 0), 1);
    ck_assert_uint_eq(parse_float_fields(p, 3, ';', 3, out, ends, NULL, 0), 2);
    ck_assert(out[0] == 1.0f && out[1] == 2.0f);
    free(p);
    /* numbers that end exactly where the input ends, padding made of digits and '.', 'e' */
    const char *tails[] = {"12345678", "1234567812345678", "0.12345678", "1e5", "1.", "-7"};
    const char pads[] = {'9', '.', 'e', '0'};
    for (int i = 0; i < 6; i++) {
        for (int j = 0; j < 4; j++) {
            p = padded(tails[i], pads[j]);
            ck_assert_uint_eq(parse_float_fields(p, strlen(tails[i]), ',', 1, out, ends, err,
                                                 sizeof err), 1);
            ck_assert_msg(same_bits(out[0], strtof(tails[i], NULL)), "'%s' + '%c' padding: %a",
                          tails[i], pads[j], out[0]);
            ck_assert_uint_eq(ends[0], strlen(tails[i]));
            free(p);
        }
    }
}
END_TEST

/* Every prefix of a row of awkward numbers, as its own exact-size padded buffer: whatever
 * the cut, the fields parsed agree with parse_float on the same text, and nothing is read
 * beyond the padding (ASan). */
START_TEST(test_fields_every_cut)
{
    const char *row = "123456789012345678,-0.000000000000000000001,1e-45,3.4028235e38,"
                      "+.5e+1,99999999999999999999999,1.5E-7 ,  -2,0,00000000000001.0000";
    size_t len = strlen(row);
    float out[16];
    size_t ends[16];
    char err[PC_ERRLEN];
    for (size_t cut = 0; cut <= len; cut++) {
        char *p = malloc(cut + PARSE_FLOAT_PADDING);
        ck_assert_ptr_nonnull(p);
        memcpy(p, row, cut);
        memset(p + cut, '8', PARSE_FLOAT_PADDING);
        size_t k = parse_float_fields(p, cut, ',', 16, out, ends, err, sizeof err);
        size_t start = 0;
        for (size_t i = 0; i < k; i++) {
            float want;
            ck_assert_int_eq(parse_float(p + start, ends[i] - start, &want, NULL, 0), PC_OK);
            ck_assert_msg(same_bits(out[i], want), "cut %zu field %zu", cut, i);
            start = ends[i] + 1;
        }
        if (k < 16 && !(k > 0 && ends[k - 1] == cut)) {
            /* field k is not a number: parse_float agrees */
            const char *sep = memchr(p + start, ',', cut - start);
            size_t fl = sep != NULL ? (size_t)(sep - (p + start)) : cut - start;
            float dummy;
            ck_assert_int_eq(parse_float(p + start, fl, &dummy, NULL, 0), PC_ERR_DATA);
        }
        free(p);
    }
}
END_TEST

/* ---------------------------------------------------------------- the big comparison */

static int under_valgrind(void)
{
    const char *vg = getenv("VALGRIND");
    return vg != NULL && strcmp(vg, "1") == 0;
}

static int64_t target_values(void) { return under_valgrind() ? 200000 : 10000000; }

/* One short field through parse_float_fields, as a middle field (a separator and digits
 * after it) and as the last one (digits in the padding), against strtof. */
static void check_short_field(const char *s, size_t len)
{
    char buf[16 + PARSE_FLOAT_PADDING], z[16];
    memcpy(buf, s, len);
    buf[len] = ',';
    memset(buf + len + 1, '9', sizeof buf - len - 1);
    memcpy(z, s, len);
    z[len] = '\0';
    char *e;
    float want = strtof(z, &e), got[2];
    int valid = e == z + len;
    size_t ends[2];
    size_t k = parse_float_fields(buf, len + 2, ',', 2, got, ends, NULL, 0);
    EXPECT(valid ? k == 2 && ends[0] == len && same_bits(got[0], want) : k == 0,
           "'%s' then ',9': k = %zu, got %a, want %a", z, k, got[0], want);
    k = parse_float_fields(buf, len, ',', 1, got, ends, NULL, 0);
    EXPECT(valid ? k == 1 && ends[0] == len && same_bits(got[0], want) : k == 0,
           "'%s' last: k = %zu, got %a, want %a", z, k, got[0], want);
}

/* Every field of 1 to 7 bytes made of digits, at most one '.' and an optional leading '-'
 * (about 20 million, the whole of the one-word fast path's shapes): parse_float_fields
 * equals strtof on each, and refuses those strtof does not take whole ("-", ".", "-."). */
START_TEST(test_every_short_field)
{
    int max_len = under_valgrind() ? 4 : 7;
    int64_t checked = 0;
    char s[16], digits[16];
    for (int neg = 0; neg < 2; neg++) {
        for (int len = 1 + neg; len <= max_len; len++) {
            int body = len - neg;
            for (int dot = -1; dot < body; dot++) { /* -1: no '.' */
                int nd = body - (dot >= 0);
                int64_t count = 1;
                for (int i = 0; i < nd; i++) count *= 10;
                for (int64_t v = 0; v < count; v++) {
                    for (int64_t i = nd - 1, rest = v; i >= 0; i--, rest /= 10)
                        digits[i] = (char)('0' + rest % 10);
                    int n = 0, d = 0;
                    if (neg) s[n++] = '-';
                    for (int i = 0; i < body; i++) s[n++] = i == dot ? '.' : digits[d++];
                    check_short_field(s, (size_t)n);
                    checked++;
                }
            }
        }
    }
    printf("test_every_short_field: %lld fields equal to strtof\n", (long long)checked);
    ck_assert_int_gt(checked, under_valgrind() ? 10000 : 20000000);
}
END_TEST

START_TEST(test_against_strtof)
{
    uint64_t rng = 0x9E3779B97F4A7C15ULL;
    batch *b = malloc(sizeof *b);
    ck_assert_ptr_nonnull(b);
    batch_init(b);
    char text[TEXT_MAX + 40];
    int64_t target = target_values();
    int64_t counts[4] = {0, 0, 0, 0};
    while (b->checked + (int64_t)b->n < target) {
        unsigned kind = rand_below(&rng, 8);
        int64_t before = b->checked + (int64_t)b->n;
        if (kind < 4) {
            /* random decimals */
            gen_random_decimal(&rng, text);
            batch_add(b, text);
            counts[0]++;
        } else if (kind < 6) {
            /* midpoints of random floats: normal and subnormal, all exponents */
            uint32_t bits = (uint32_t)next_rand(&rng) & 0x7FFFFFFFu;
            if (kind == 5) bits &= 0x007FFFFFu | (rand_below(&rng, 2) ? 0x00800000u : 0);
            float x;
            memcpy(&x, &bits, sizeof x);
            if (!isfinite(x)) continue;
            gen_midpoints(&rng, b, x);
            counts[1] += b->checked + (int64_t)b->n - before;
        } else if (kind == 6) {
            /* floats printed with 1 to 12 significant digits */
            uint32_t bits = (uint32_t)next_rand(&rng);
            float x;
            memcpy(&x, &bits, sizeof x);
            if (!isfinite(x)) continue;
            snprintf(text, sizeof text, "%.*g", 1 + (int)rand_below(&rng, 12), (double)x);
            batch_add(b, text);
            counts[2]++;
        } else {
            /* the shapes of real data: a few digits, a point, maybe an exponent */
            int nd = 1 + (int)rand_below(&rng, 9);
            uint64_t p10 = 1;
            for (int i = 0; i < nd; i++) p10 *= 10;
            int frac = (int)rand_below(&rng, (unsigned)nd + 1);
            int len = snprintf(text, sizeof text, "%s%0*llu", rand_below(&rng, 2) ? "-" : "", nd,
                               (unsigned long long)(next_rand(&rng) % p10));
            if (frac > 0) {
                memmove(text + len - frac + 1, text + len - frac, (size_t)frac + 1);
                text[len - frac] = '.';
            }
            if (rand_below(&rng, 3) == 0)
                snprintf(text + strlen(text), 16, "e%d", (int)rand_below(&rng, 61) - 30);
            batch_add(b, text);
            counts[3]++;
        }
    }
    /* the extremes, exactly */
    const float edges[] = {FLT_MAX, FLT_MIN, FLT_TRUE_MIN, nextafterf(FLT_MIN, 0),
                           nextafterf(FLT_MAX, 0), 1.0f, nextafterf(FLT_MIN, 1)};
    for (size_t i = 0; i < sizeof edges / sizeof edges[0]; i++) {
        snprintf(text, sizeof text, "%.9g", (double)edges[i]);
        batch_add(b, text);
        gen_midpoints(&rng, b, edges[i]);
    }
    batch_check(b);
    printf("test_against_strtof: %lld values equal to strtof (%lld random decimals, %lld around "
           "midpoints, %lld printed floats, %lld short decimals)\n",
           (long long)b->checked, (long long)counts[0], (long long)counts[1],
           (long long)counts[2], (long long)counts[3]);
    ck_assert_int_ge(b->checked, target);
    free(b->row);
    free(b);
}
END_TEST

/* ---------------------------------------------------------------- format_float_g6 */

/* One float through format_float_g6 against snprintf's "%.6g"; 1 if they differ. */
static int g6_differs(float x)
{
    char want[64], got[FORMAT_G6_MAX];
    int wn = snprintf(want, sizeof want, "%.6g", (double)x);
    int gn = format_float_g6(got, x);
    if (gn == wn && strcmp(got, want) == 0) return 0;
    uint32_t bits;
    memcpy(&bits, &x, sizeof bits);
    fprintf(stderr, "format_float_g6(0x%08x) = \"%s\", snprintf %%.6g = \"%s\"\n", bits, got, want);
    return 1;
}

/* Values chosen to sit on the formatter's edges: powers of ten and the floats beside them
 * (log10's estimate, the exponent switch at 1e-4 and 1e6, rounding up to the next power),
 * its range limits, and the values a softmax writes most (near 0 and 1). */
START_TEST(test_format_g6_edges)
{
    int bad = 0;
    const float fixed[] = {0.0f, -0.0f, 1.0f, -1.0f, 0.5f, 0.1f, 1e-4f, 1e-5f, 9.99999e-5f, 9.999995e-5f,
                           999999.0f, 999999.5f, 1e6f, 123456.5f, 9.999995f, 0.9999995f, 1e-25f, 9e-26f,
                           0x1p100f, 0x1.fffffep99f, 3.0517578125e-05f, 1e38f, 1e-38f, 1e-45f,
                           (float)INFINITY, -(float)INFINITY, (float)NAN, 0.981f, 0.012f, 9.9851e-06f};
    for (size_t i = 0; i < sizeof fixed / sizeof fixed[0]; i++) bad += g6_differs(fixed[i]);
    for (int e = -30; e <= 31; e++) {
        float p = (float)pow(10.0, e);
        for (int d = -3; d <= 3; d++) {
            float x = p;
            for (int j = 0; j < (d < 0 ? -d : d); j++) x = nextafterf(x, d < 0 ? 0.0f : INFINITY);
            bad += g6_differs(x) + g6_differs(-x);
        }
    }
    ck_assert_int_eq(bad, 0);
}
END_TEST

/* Random bit patterns over every exponent, and every float of [0.5, 1) near the top class
 * probabilities' most common values. */
START_TEST(test_format_g6_against_snprintf)
{
    uint64_t rng = 0xD1B54A32D192ED03ULL;
    int64_t n = under_valgrind() ? 100000 : 4000000, checked = 0;
    int bad = 0;
    for (int64_t i = 0; i < n && bad < 10; i++) {
        uint32_t bits = (uint32_t)next_rand(&rng);
        float x;
        memcpy(&x, &bits, sizeof x);
        bad += g6_differs(x);
        checked++;
    }
    uint32_t lo = 0x3f7f0000u, hi = under_valgrind() ? lo + 20000 : 0x3f800000u; /* [0.996, 1) */
    for (uint32_t bits = lo; bits < hi && bad < 10; bits++) {
        float x;
        memcpy(&x, &bits, sizeof x);
        bad += g6_differs(x);
        checked++;
    }
    printf("test_format_g6_against_snprintf: %lld floats equal to %%.6g\n", (long long)checked);
    ck_assert_int_eq(bad, 0);
}
END_TEST

static Suite *numparse_suite(void)
{
    Suite *s = suite_create("numparse");
    TCase *tc = tcase_create("numparse");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_fixed);
    tcase_add_test(tc, test_long_mantissa_exponents);
    tcase_add_test(tc, test_rejects);
    tcase_add_test(tc, test_fields_contract);
    tcase_add_test(tc, test_fields_every_cut);
    tcase_add_test(tc, test_every_short_field);
    tcase_add_test(tc, test_against_strtof);
    tcase_add_test(tc, test_format_g6_edges);
    tcase_add_test(tc, test_format_g6_against_snprintf);
    suite_add_tcase(s, tc);
    return s;
}

int main(void)
{
    SRunner *sr = srunner_create(numparse_suite());
    srunner_run_all(sr, CK_NORMAL);
    int failed = srunner_ntests_failed(sr);
    srunner_free(sr);
    return failed == 0 ? EXIT_SUCCESS : EXIT_FAILURE;
}
