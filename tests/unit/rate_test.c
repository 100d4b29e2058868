/* rate_test.c: counter -> rate helper: steady rates, wrap at 32 and 64 bits, resets, time. */
#include "rate.h"
#include "test.h"

#include <stdint.h>

#define NS 1000000000LL

TEST(rate_first_reading_gives_no_rate) {
    rate_counter rc = {0};
    double r = -1;
    T_EQ_INT(rate_update(&rc, 100, 1 * NS, UINT64_MAX, &r), RATE_FIRST);
    T_NEAR(r, -1, 0);
}

TEST(rate_steady_counter) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, 1000, 10 * NS, UINT64_MAX, &r);
    T_EQ_INT(rate_update(&rc, 1500, 10 * NS + NS / 2, UINT64_MAX, &r), RATE_OK);
    T_NEAR(r, 1000.0, 1e-9);
    T_EQ_INT(rate_update(&rc, 1500, 11 * NS, UINT64_MAX, &r), RATE_OK);
    T_NEAR(r, 0.0, 1e-12);
}

TEST(rate_cpu_ns_to_cores_at_100ms) {
    /* 25 ms of CPU time in 100 ms of wall time: 0.25 cores. */
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, 5000000000ULL, 0 + 1, UINT64_MAX, &r);
    T_EQ_INT(rate_update(&rc, 5025000000ULL, 100000000 + 1, UINT64_MAX, &r), RATE_OK);
    T_NEAR(r / 1e9, 0.25, 1e-12);
}

TEST(rate_wrap_32bit) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, UINT32_MAX - 9, 1 * NS, UINT32_MAX, &r);
    /* 9 steps up to the max, 1 to wrap to 0, then 20 more: 30 in one second. */
    T_EQ_INT(rate_update(&rc, 20, 2 * NS, UINT32_MAX, &r), RATE_WRAP);
    T_NEAR(r, 30.0, 1e-9);
}

TEST(rate_wrap_64bit) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, UINT64_MAX, 1 * NS, UINT64_MAX, &r);
    T_EQ_INT(rate_update(&rc, 4, 3 * NS, UINT64_MAX, &r), RATE_WRAP);
    T_NEAR(r, 2.5, 1e-9);
}

TEST(rate_decrease_without_width_is_reset) {
    rate_counter rc = {0};
    double r = 7;
    rate_update(&rc, 5000, 1 * NS, 0, &r);
    T_EQ_INT(rate_update(&rc, 10, 2 * NS, 0, &r), RATE_RESET);
    T_NEAR(r, 7, 0); /* untouched */
    /* Re-based on the new reading. */
    T_EQ_INT(rate_update(&rc, 110, 3 * NS, 0, &r), RATE_OK);
    T_NEAR(r, 100.0, 1e-9);
}

TEST(rate_large_decrease_is_reset_not_wrap) {
    /* From mid-range down to a small value: the wrapped delta would be over half the width. */
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, UINT32_MAX / 4, 1 * NS, UINT32_MAX, &r);
    T_EQ_INT(rate_update(&rc, 3, 2 * NS, UINT32_MAX, &r), RATE_RESET);
}

TEST(rate_value_above_width_is_reset) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, (uint64_t)UINT32_MAX + 100, 1 * NS, UINT32_MAX, &r);
    T_EQ_INT(rate_update(&rc, 5, 2 * NS, UINT32_MAX, &r), RATE_RESET);
}

TEST(rate_time_must_advance) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, 10, 5 * NS, UINT64_MAX, &r);
    T_EQ_INT(rate_update(&rc, 20, 5 * NS, UINT64_MAX, &r), RATE_BADTIME);
    T_EQ_INT(rate_update(&rc, 20, 4 * NS, UINT64_MAX, &r), RATE_BADTIME);
    /* The base is kept: the next good reading measures from the original point. */
    T_EQ_INT(rate_update(&rc, 30, 6 * NS, UINT64_MAX, &r), RATE_OK);
    T_NEAR(r, 20.0, 1e-9);
}

TEST(rate_reset_forgets_base) {
    rate_counter rc = {0};
    double r = 0;
    rate_update(&rc, 10, 1 * NS, UINT64_MAX, &r);
    rate_reset(&rc);
    T_EQ_INT(rate_update(&rc, 5, 2 * NS, UINT64_MAX, &r), RATE_FIRST);
}
