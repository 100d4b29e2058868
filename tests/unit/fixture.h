/* fixture.h: reading a file under tests/fixtures into memory, for the parser tests that feed
 * real files to pure functions. */
#ifndef TIDE_FIXTURE_H
#define TIDE_FIXTURE_H

#include <stddef.h>

/* Reads tests/fixtures/DIR/NAME (DIR may be NULL: tests/fixtures/NAME) into buf, at most
 * cap - 1 bytes, and NUL-terminates it. Returns the length read, or -1 when the file cannot
 * be opened. */
long fixture_read(const char *dir, const char *name, char *buf, size_t cap);

/* fixture_read of tests/fixtures/NAME into a 64 KiB static buffer (overwritten by the next
 * call): returns the buffer with *len set, or NULL when the file cannot be opened. */
char *fixture_slurp(const char *name, size_t *len);

#endif
