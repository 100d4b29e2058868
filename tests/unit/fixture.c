/* fixture.c: fixture files read into memory for the unit tests (fixture.h). */
#include "fixture.h"

#include <stdio.h>

#include "test.h"

long fixture_read(const char *dir, const char *name, char *buf, size_t cap) {
    char path[512];
    if (dir)
        snprintf(path, sizeof path, "%s/%s", dir, name);
    else
        snprintf(path, sizeof path, "%s", name);
    FILE *f = fopen(test_fixture(path), "rb");
    if (!f) return -1;
    size_t n = fread(buf, 1, cap - 1, f);
    buf[n] = '\0';
    fclose(f);
    return (long)n;
}

char *fixture_slurp(const char *name, size_t *len) {
    static char buf[1 << 16];
    long n = fixture_read(NULL, name, buf, sizeof buf);
    if (n < 0) return NULL;
    *len = (size_t)n;
    return buf;
}
