/* test_main.c: runner for the TEST() functions linked into a unit-test binary (test.h). */
#include "test.h"

#include <stdarg.h>
#include <stdlib.h>
#include <unistd.h>

#define MAX_TESTS 1024

static struct {
    const char *name;
    test_fn fn;
} tests[MAX_TESTS];
static int ntests;
static int cur_failed, cur_skipped;

void test_register(const char *name, test_fn fn) {
    if (ntests == MAX_TESTS) {
        fprintf(stderr, "test: more than %d tests in one binary\n", MAX_TESTS);
        abort();
    }
    tests[ntests].name = name;
    tests[ntests].fn = fn;
    ntests++;
}

void test_fail(const char *file, int line, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stdout, "  %s:%d: ", file, line);
    vfprintf(stdout, fmt, ap);
    fputc('\n', stdout);
    va_end(ap);
    cur_failed = 1;
}

int test_failed_now(void) {
    return cur_failed;
}

void test_skip(const char *why) {
    fprintf(stdout, "  skipped: %s\n", why);
    cur_skipped = 1;
}

static const char *root_path(const char *rel, char *buf, size_t len) {
    const char *root = getenv("TIDE_SRC");
    snprintf(buf, len, "%s/%s", root ? root : ".", rel);
    return buf;
}

const char *test_fixture(const char *name) {
    static char buf[4096];
    char rel[2048];
    snprintf(rel, sizeof rel, "tests/fixtures/%s", name);
    return root_path(rel, buf, sizeof buf);
}

const char *test_shared_data(const char *name) {
    static char buf[4096];
    char rel[2048];
    snprintf(rel, sizeof rel, "../shared/data/%s", name);
    root_path(rel, buf, sizeof buf);
    return access(buf, R_OK) == 0 ? buf : NULL;
}

int main(int argc, char **argv) {
    int passed = 0, failed = 0, skipped = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    for (int i = 0; i < ntests; i++) {
        if (argc > 1) {
            int want = 0;
            for (int a = 1; a < argc; a++)
                if (strcmp(argv[a], tests[i].name) == 0) want = 1;
            if (!want) continue;
        }
        cur_failed = cur_skipped = 0;
        tests[i].fn();
        if (cur_failed) {
            printf("FAIL %s\n", tests[i].name);
            failed++;
        } else if (cur_skipped) {
            printf("skip %s\n", tests[i].name);
            skipped++;
        } else {
            printf("ok   %s\n", tests[i].name);
            passed++;
        }
    }
    printf("%d passed, %d failed, %d skipped\n", passed, failed, skipped);
    return failed ? 1 : 0;
}
