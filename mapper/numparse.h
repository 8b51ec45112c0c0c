/*
 * numparse.h — parsing CSV fields as numbers, fast and correctly rounded; and the one number
 * format the values use, written as fast and as exactly (format_float_g6).
 *
 * The grammar is plain decimal: optional spaces/tabs, an optional sign, digits with an
 * optional '.', an optional exponent (e/E, optional sign, digits), optional spaces/tabs.
 * At least one mantissa digit is required. "nan", "inf", hexadecimal floats, thousands
 * separators and a ',' decimal mark are all rejected. The result never depends on the C
 * locale: strtof is only ever handed a string without a decimal point.
 *
 * Every result is the float32 nearest to the decimal value (ties to even), bit for bit what
 * strtof returns for the same text, -0.0 and subnormals included. strtof is the reference,
 * not strtod: features are float32, and strtod-then-cast rounds twice, which is wrong for
 * decimals near the midpoint between two floats.
 *
 * Thread-safe; no allocation; no global state.
 */
#ifndef PRECAST_MAPPER_NUMPARSE_H
#define PRECAST_MAPPER_NUMPARSE_H

#include <stddef.h>

#include "kernels/status.h"

/* Parses the whole of s[0, len) (s need not be NUL-terminated) as a finite float32,
 * correctly rounded (round to nearest even), equal to strtof on the same text.
 * Values that underflow round to zero or a subnormal as strtof does; values that overflow
 * float32 are rejected.
 * On failure returns PC_ERR_DATA with "not a number: 'TEXT'" (or "number out of float32
 * range: 'TEXT'") in err, TEXT truncated to 40 bytes, and leaves *out unchanged. */
pc_status parse_float(const char *s, size_t len, float *out, char *err, size_t errlen);

/* Bytes past the end of its input that parse_float_fields may read (never use). */
#define PARSE_FLOAT_PADDING 8

/* Parses the first n fields of s[0, len), fields separated by the byte sep, each exactly as
 * parse_float parses it, into out[0, n): the fast way for a CSV row of numbers, where the
 * field ends are found by the same pass that reads the digits.
 * Field i ends at ends[i] (an offset into s: its separator, or len for the last field of s)
 * and starts just after ends[i - 1] (at 0 for i = 0).
 * Returns the number of fields parsed, k:
 *   k == n: all n parsed (s may hold more fields after ends[n - 1]);
 *   k < n and k > 0 and ends[k - 1] == len: s held only k fields;
 *   otherwise field k is not a number: err holds parse_float's message for it.
 * out[k, n) and ends[k, n) are unspecified afterwards.
 * REQUIRES: s[len, len + PARSE_FLOAT_PADDING) readable and initialised (their values do not
 * matter); sep is not a digit, '.', '+', '-', 'e', 'E', space or tab. err may be NULL. */
size_t parse_float_fields(const char *s, size_t len, char sep, size_t n, float *out, size_t *ends,
                          char *err, size_t errlen);

/* Room format_float_g6 needs: "-1.23457e-05" and a NUL. */
#define FORMAT_G6_MAX 16

/* Writes v as snprintf(out, FORMAT_G6_MAX, "%.6g", (double)v) does, byte for byte, and
 * returns the length (without the NUL).  Values in [1e-25, 2^100) in magnitude are
 * converted with exact 128-bit integer arithmetic (round half to even on the exact binary
 * value, as glibc does); zero, NaN, infinities and the rest go to snprintf.  The job writes a
 * probability or two per row, and printf's general machinery was 5 % of a run. */
int format_float_g6(char out[FORMAT_G6_MAX], float v);

#endif
