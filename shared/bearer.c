/* bearer.c: bearer tokens from files (bearer.h). */
#include "bearer.h"

#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "errmsg.h"

int bearer_read(const char *path, const char *what, char *out, size_t cap, char *err,
                size_t errlen) {
    if (cap < 2) return errmsg(err, errlen, -EINVAL, "%s %s: no room for a token", what, path);
    FILE *f = fopen(path, "re");
    if (!f) {
        int e = errno;
        return errmsg(err, errlen, -e, "%s %s: %s", what, path, strerror(e));
    }
    size_t n = fread(out, 1, cap, f);
    int bad = ferror(f);
    fclose(f);
    if (bad) {
        out[0] = 0;
        return errmsg(err, errlen, -EIO, "%s %s: read error", what, path);
    }
    while (n > 0 &&
           (out[n - 1] == '\n' || out[n - 1] == '\r' || out[n - 1] == ' ' || out[n - 1] == '\t'))
        n--;
    if (n >= cap) {
        explicit_bzero(out, cap);
        return errmsg(err, errlen, -EFBIG, "%s %s: longer than %zu bytes", what, path, cap - 1);
    }
    out[n] = 0;
    if (n == 0) return errmsg(err, errlen, -EINVAL, "%s %s is empty", what, path);
    return 0;
}
