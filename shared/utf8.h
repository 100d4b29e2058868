/* utf8.h: UTF-8 validation and repair for text that leaves the process as JSON or in a table
 * (cgroup names, file names and labels are bytes; JSON must be UTF-8). */
#ifndef TIDE_UTF8_H
#define TIDE_UTF8_H

#include <stddef.h>

/* Length (1-4) of the well-formed UTF-8 sequence at p (at most n bytes available), or 0 when
 * the bytes there are not one (overlong forms, surrogates and code points above U+10FFFF are
 * not). */
size_t utf8_seq_len(const unsigned char *p, size_t n);

/* A malloc'd copy of the NUL-terminated s in which every byte that does not start a
 * well-formed sequence is replaced by U+FFFD (EF BF BD); NULL when out of memory. */
char *utf8_sanitize(const char *s);

/* Code points in s (each invalid byte counting as one, as utf8_sanitize would print it):
 * the width a table column gives it. */
size_t utf8_width(const char *s);

#endif
