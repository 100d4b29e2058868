/* strbuf.c: growable printf text buffer (see strbuf.h). */
#include "strbuf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Makes room for need more bytes plus the NUL; 0 or -1 (oom set). */
static int reserve(strbuf *b, size_t need) {
    if (b->oom) return -1;
    if (b->p && b->n + need < b->cap) return 0;
    size_t ncap = b->cap ? b->cap * 2 : 4096;
    while (ncap < b->n + need + 1)
        ncap *= 2;
    char *np = realloc(b->p, ncap);
    if (!np) {
        b->oom = 1;
        return -1;
    }
    b->p = np;
    b->cap = ncap;
    return 0;
}

void strbuf_printf(strbuf *b, const char *fmt, ...) {
    if (b->oom) return;
    for (;;) {
        va_list ap;
        va_start(ap, fmt);
        int need = vsnprintf(b->p ? b->p + b->n : NULL, b->p ? b->cap - b->n : 0, fmt, ap);
        va_end(ap);
        if (need < 0) {
            b->oom = 1;
            return;
        }
        if (b->p && b->n + (size_t)need < b->cap) {
            b->n += (size_t)need;
            return;
        }
        if (reserve(b, (size_t)need) < 0) return;
    }
}

void strbuf_append(strbuf *b, const char *s, size_t n) {
    if (reserve(b, n) < 0) return;
    memcpy(b->p + b->n, s, n);
    b->n += n;
    b->p[b->n] = 0;
}

char *strbuf_take(strbuf *b, int empty_ok) {
    if (b->oom || (!b->p && !empty_ok)) {
        strbuf_fini(b);
        return NULL;
    }
    char *p = b->p ? b->p : strdup("");
    b->p = NULL;
    b->n = b->cap = 0;
    return p;
}

void strbuf_fini(strbuf *b) {
    free(b->p);
    b->p = NULL;
    b->n = b->cap = 0;
    b->oom = 0;
}
