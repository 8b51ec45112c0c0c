/*
 * numparse.h — parsing CSV fields as numbers, fast and correctly rounded.
 *
 * The grammar is plain decimal: optional spaces/tabs, an optional sign, digits with an
 * optional '.', an optional exponent (e/E, optional sign, digits), optional spaces/tabs.
 * At least one mantissa digit is required. "nan", "inf", hexadecimal floats, thousands
 * separators and a ',' decimal mark are all rejected. The result never depends on the C
 * locale: strtof is only ever handed a string without a decimal point.
 *
 * Thread-safe; no allocation; no global state.
 */
#ifndef PRECAST_MAPPER_NUMPARSE_H
#define PRECAST_MAPPER_NUMPARSE_H

#include <stddef.h>

#include "kernels/status.h"

/* Parses the whole of s[0, len) (s need not be NUL-terminated) as a finite float32.
 * Correctly rounded (round to nearest even), equal to strtof on the same text: a fast path
 * (<= 7 significant digits and a decimal exponent within +-10, computed exactly with one
 * float multiplication or division) else strtof on a normalised copy. Values that underflow
 * round to zero or a subnormal as strtof does; values that overflow float32 are rejected.
 * On failure returns PC_ERR_DATA with "not a number: 'TEXT'" (or "number out of float32
 * range: 'TEXT'") in err, TEXT truncated to 40 bytes, and leaves *out unchanged. */
pc_status parse_float(const char *s, size_t len, float *out, char *err, size_t errlen);

#endif
