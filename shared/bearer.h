/* bearer.h: reading an HTTP bearer token (Prometheus, the Kubernetes API) from a file, as the
 * clients do before each request so that a rotated token is picked up. */
#ifndef TIDE_BEARER_H
#define TIDE_BEARER_H

#include <stddef.h>

/* Reads the token in path into out (cap bytes, NUL-terminated), without trailing whitespace.
 * 0, or -errno with err naming `what` and path: unreadable, empty, or longer than cap - 1
 * bytes (never silently cut: a cut token would fail authentication for no visible reason). */
int bearer_read(const char *path, const char *what, char *out, size_t cap, char *err,
                size_t errlen);

#endif
