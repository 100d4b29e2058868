/* test.h: the unit-test harness. A test file defines TEST(name) { ... } functions; they
 * register themselves and tests/unit/test_main.c runs them (all, or those named on the
 * command line), printing "ok NAME" / "FAIL NAME: file:line: message" and a closing line
 * "N passed, N failed". Assertions return from the test on failure. */
#ifndef TIDE_TEST_H
#define TIDE_TEST_H

#include <math.h>
#include <stdio.h>
#include <string.h>

typedef void (*test_fn)(void);
void test_register(const char *name, test_fn fn);
void test_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
int test_failed_now(void);
/* Path of a fixture under tests/fixtures (resolved from the source tree root). */
const char *test_fixture(const char *name);
/* Path to ../shared/data/NAME, or NULL when the team data folder is absent (skip then). */
const char *test_shared_data(const char *name);
void test_skip(const char *why);

#define TEST(name)                                                                                 \
    static void test_##name(void);                                                                 \
    __attribute__((constructor)) static void test_reg_##name(void) {                               \
        test_register(#name, test_##name);                                                         \
    }                                                                                              \
    static void test_##name(void)

#define T_FAIL(...)                                                                                \
    do {                                                                                           \
        test_fail(__FILE__, __LINE__, __VA_ARGS__);                                                \
        return;                                                                                    \
    } while (0)
#define T_ASSERT(c)                                                                                \
    do {                                                                                           \
        if (!(c)) T_FAIL("assertion failed: %s", #c);                                              \
    } while (0)
#define T_EQ_INT(a, b)                                                                             \
    do {                                                                                           \
        long long a_ = (long long)(a), b_ = (long long)(b);                                        \
        if (a_ != b_) T_FAIL("%s == %lld, expected %s == %lld", #a, a_, #b, b_);                   \
    } while (0)
#define T_EQ_STR(a, b)                                                                             \
    do {                                                                                           \
        const char *a_ = (a), *b_ = (b);                                                           \
        if (!a_ || !b_ || strcmp(a_, b_) != 0)                                                     \
            T_FAIL("%s == \"%s\", expected \"%s\"", #a, a_ ? a_ : "(null)", b_ ? b_ : "(null)");   \
    } while (0)
#define T_NEAR(a, b, tol)                                                                          \
    do {                                                                                           \
        double a_ = (double)(a), b_ = (double)(b), t_ = (double)(tol);                             \
        if (!(fabs(a_ - b_) <= t_)) T_FAIL("%s == %.9g, expected %.9g +- %g", #a, a_, b_, t_);     \
    } while (0)

#endif
