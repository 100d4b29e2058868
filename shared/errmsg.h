/* errmsg.h: filling a caller's char err[] on an error path (shared/ and the parsers return
 * -errno and say why there). */
#ifndef TIDE_ERRMSG_H
#define TIDE_ERRMSG_H

#include <stddef.h>

/* Formats the message into err (nothing when err is NULL or errlen is 0) and returns rc, so
 * that an error path reads `return errmsg(err, errlen, -EINVAL, "line %d: ...", n);`. */
int errmsg(char *err, size_t errlen, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

#endif
