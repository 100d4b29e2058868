/* log.c: level-filtered stderr logging with a per-site rate limiter (see log.h). */
#include "log.h"
#include "vclock.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

int log_threshold = LOG_INFO;

static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;
static const char *const level_names[] = {"DEBUG", "INFO", "WARN", "ERROR", "OFF"};

int log_level_parse(const char *name) {
    static const char *const lower[] = {"debug", "info", "warn", "error", "off"};
    for (int i = 0; i <= LOG_OFF; i++)
        if (strcmp(name, lower[i]) == 0) return i;
    if (strcmp(name, "warning") == 0) return LOG_WARN;
    return -EINVAL;
}

const char *log_level_name(int level) {
    if (level < 0 || level > LOG_OFF) return "?";
    return level_names[level];
}

int64_t tide_now_mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int64_t tide_now_wall_ms(void) {
    return vclock_wall_ms();
}

void log_vwrite(int level, const char *module, const char *fmt, va_list ap) {
    char msg[2048];
    char stamp[32];
    int64_t now = tide_now_wall_ms();
    time_t secs = (time_t)(now / 1000);
    struct tm tm;
    gmtime_r(&secs, &tm);
    strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%S", &tm);
    vsnprintf(msg, sizeof msg, fmt, ap);
    pthread_mutex_lock(&log_lock);
    fprintf(stderr, "%s.%03dZ %-5s %s: %s\n", stamp, (int)(now % 1000), log_level_name(level),
            module, msg);
    pthread_mutex_unlock(&log_lock);
}

void log_write(int level, const char *module, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    log_vwrite(level, module, fmt, ap);
    va_end(ap);
}

int log_ratelimit_allow(log_ratelimit *rl, int level, const char *module) {
    int64_t now = tide_now_mono_ms();
    if (rl->window_start_ms == 0 || now - rl->window_start_ms >= rl->interval_ms) {
        if (rl->suppressed > 0)
            log_write(level, module, "suppressed %llu similar lines in the last %lld ms",
                      (unsigned long long)rl->suppressed, (long long)(now - rl->window_start_ms));
        rl->window_start_ms = now;
        rl->printed = 0;
        rl->suppressed = 0;
    }
    if (rl->printed < rl->burst) {
        rl->printed++;
        return 1;
    }
    rl->suppressed++;
    return 0;
}
