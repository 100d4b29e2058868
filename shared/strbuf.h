/* strbuf.h: a growable text buffer filled with printf-style appends (metrics text, HTML, SVG,
 * JSON lines). Growth doubles; an allocation failure is remembered (oom) and every later append
 * is a no-op, so a caller checks once at the end. Never logs or exits. */
#ifndef TIDE_STRBUF_H
#define TIDE_STRBUF_H

#include <stddef.h>

typedef struct strbuf {
    char *p;    /* NUL-terminated text once anything was appended; NULL before */
    size_t n;   /* bytes of text */
    size_t cap; /* bytes allocated */
    int oom;    /* an append could not allocate: the text is incomplete */
} strbuf;

#define STRBUF_INIT                                                                                \
    { NULL, 0, 0, 0 }

/* Appends printf(fmt, ...) to b; the first allocation is at least 4 KiB. */
void strbuf_printf(strbuf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Appends the n bytes at s. */
void strbuf_append(strbuf *b, const char *s, size_t n);
/* Returns the text (caller frees) and resets b; NULL when an append failed (the partial text
 * is freed) or nothing was appended and empty_ok is 0. */
char *strbuf_take(strbuf *b, int empty_ok);
/* Frees the text and resets b. */
void strbuf_fini(strbuf *b);

#endif
