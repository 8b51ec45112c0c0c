#include "kernels/status.h"

#include <stdarg.h>
#include <stdio.h>

const char *pc_status_str(pc_status s)
{
    switch (s) {
    case PC_OK: return "ok";
    case PC_ERR_USAGE: return "usage error";
    case PC_ERR_DATA: return "bad input data";
    case PC_ERR_NOINPUT: return "input missing";
    case PC_ERR_INTERNAL: return "internal error";
    case PC_ERR_CANTCREAT: return "cannot create output";
    case PC_ERR_IO: return "I/O error";
    case PC_ERR_LOCKED: return "locked by another run";
    case PC_ERR_CONFIG: return "configuration rejected";
    }
    return "unknown status";
}

pc_status pc_err(char *err, size_t errlen, pc_status code, const char *fmt, ...)
{
    if (err != NULL && errlen > 0) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, errlen, fmt, ap);
        va_end(ap);
    }
    return code;
}
