/* vclock_test.c: the virtual clock's flag parsing and its trace-time arithmetic (shared/vclock). */
#include "vclock.h"
#include "log.h"
#include "test.h"

#include <errno.h>
#include <time.h>

TEST(vclock_default_is_real_time) {
    vclock_spec s;
    char err[256] = "";
    T_EQ_INT(vclock_parse(NULL, NULL, NULL, &s, err, sizeof err), 0);
    T_EQ_INT(s.on, 0);
    T_EQ_INT(vclock_parse("1", "", "", &s, err, sizeof err), 0);
    T_EQ_INT(s.on, 0);
    T_ASSERT(vclock_trace_ms(&s, 1234567) == 1234567);
    /* nothing installed in this process: the wall clock is CLOCK_REALTIME, rate 1 */
    T_EQ_INT(vclock_on(), 0);
    T_ASSERT(vclock_rate() == 1.0);
    T_ASSERT(vclock_real_s(15.0) == 15.0);
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    int64_t real = (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
    int64_t wall = tide_now_wall_ms();
    T_ASSERT(wall - real >= 0 && wall - real < 1000);
}

TEST(vclock_rate_and_origin) {
    vclock_spec s;
    char err[256] = "";
    T_EQ_INT(vclock_parse("60", "804556800", "1700000000.5", &s, err, sizeof err), 0);
    T_EQ_INT(s.on, 1);
    T_ASSERT(s.origin_ms == 804556800000LL);
    T_ASSERT(s.anchor_ms == 1700000000500LL);
    /* one real second after the anchor is one trace minute after the origin */
    T_ASSERT(vclock_trace_ms(&s, 1700000001500LL) == 804556860000LL);
    T_EQ_INT(vclock_parse("60", "1995-07-01T00:00:00Z", NULL, &s, err, sizeof err), 0);
    T_ASSERT(s.origin_ms == 804556800000LL);
    T_EQ_INT(vclock_parse("0.5", NULL, "2023-11-14T22:13:20.250Z", &s, err, sizeof err), 0);
    T_ASSERT(s.anchor_ms == 1700000000250LL);
    T_ASSERT(vclock_trace_ms(&s, 1700000002250LL) - s.origin_ms == 1000);
}

TEST(vclock_refuses_bad_values) {
    vclock_spec s;
    char err[256] = "";
    T_EQ_INT(vclock_parse("0", NULL, NULL, &s, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "clock_rate '0'"));
    T_EQ_INT(vclock_parse("-60", "1", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("1e6", "1", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("nan", "1", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("60x", "1", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("60", "yesterday", NULL, &s, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "clock_origin 'yesterday'"));
    T_EQ_INT(vclock_parse("60", "1995-07-01T00:00:00", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("60", "-5", NULL, &s, err, sizeof err), -EINVAL);
    T_EQ_INT(vclock_parse("60", "1e300", NULL, &s, err, sizeof err), -EINVAL);
    /* an anchor alone would do nothing */
    T_EQ_INT(vclock_parse(NULL, NULL, "1700000000", &s, err, sizeof err), -EINVAL);
    T_ASSERT(strstr(err, "clock_anchor"));
    const char *bad = "soon";
    T_EQ_INT(vclock_valid_instant(&bad, err, sizeof err), -EINVAL);
    const char *empty = "";
    T_EQ_INT(vclock_valid_instant(&empty, err, sizeof err), 0);
    const char *r = "100001";
    T_EQ_INT(vclock_valid_rate(&r, err, sizeof err), -EINVAL);
}
