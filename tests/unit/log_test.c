/* log_test.c: level parsing and the rate limiter of shared/log. */
#include "log.h"
#include "test.h"

#include <errno.h>

TEST(log_level_parse_names) {
    T_EQ_INT(log_level_parse("debug"), LOG_DEBUG);
    T_EQ_INT(log_level_parse("warn"), LOG_WARN);
    T_EQ_INT(log_level_parse("warning"), LOG_WARN);
    T_EQ_INT(log_level_parse("loud"), -EINVAL);
}

TEST(log_ratelimit_drops_after_burst) {
    log_ratelimit rl = LOG_RATELIMIT_INIT(60000, 3);
    int allowed = 0;
    int saved = log_threshold;
    log_threshold = LOG_OFF; /* the summary line must not clutter test output */
    for (int i = 0; i < 10; i++)
        allowed += log_ratelimit_allow(&rl, LOG_WARN, "test");
    log_threshold = saved;
    T_EQ_INT(allowed, 3);
    T_EQ_INT(rl.suppressed, 7);
}
