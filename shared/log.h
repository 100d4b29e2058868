/* log.h: level-filtered, rate-limitable log lines on stderr for the daemons and tidectl.
 *
 * Only the binaries' own modules log; other shared/ modules never call this (they return
 * -errno and fill a caller's err buffer). A line looks like
 *   2026-11-21T06:49:01.123Z INFO  wire: peer 127.0.0.1:5123 closed: frame too large (9 MB)
 * The macros check the level before formatting anything. */
#ifndef TIDE_LOG_H
#define TIDE_LOG_H

#include <stdarg.h>
#include <stdint.h>

enum log_level { LOG_DEBUG = 0, LOG_INFO = 1, LOG_WARN = 2, LOG_ERROR = 3, LOG_OFF = 4 };

/* The current threshold; lines below it are not formatted. Set once at start-up. */
extern int log_threshold;

/* Parses "debug", "info", "warn", "error", "off"; returns the level or -EINVAL. */
int log_level_parse(const char *name);
const char *log_level_name(int level);

/* Writes one line (module, then the formatted message) to stderr. Thread-safe. */
void log_write(int level, const char *module, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void log_vwrite(int level, const char *module, const char *fmt, va_list ap)
    __attribute__((format(printf, 3, 0)));

#define LOG_AT(level, module, ...)                                                                 \
    do {                                                                                           \
        if ((level) >= log_threshold) log_write((level), (module), __VA_ARGS__);                   \
    } while (0)
#define log_debug(module, ...) LOG_AT(LOG_DEBUG, module, __VA_ARGS__)
#define log_info(module, ...) LOG_AT(LOG_INFO, module, __VA_ARGS__)
#define log_warn(module, ...) LOG_AT(LOG_WARN, module, __VA_ARGS__)
#define log_error(module, ...) LOG_AT(LOG_ERROR, module, __VA_ARGS__)

/* A rate limiter for repeated failures: at most `burst` lines per `interval_ms`, then one
 * "suppressed N similar lines" summary when the window reopens. Keep one per failure site
 * (e.g. per collector), zero-initialised except the two limits. */
typedef struct log_ratelimit {
    int64_t interval_ms;
    int burst;
    int64_t window_start_ms;
    int printed;
    uint64_t suppressed;
} log_ratelimit;

#define LOG_RATELIMIT_INIT(interval_ms, burst)                                                     \
    { (interval_ms), (burst), 0, 0, 0 }

/* Returns 1 when the caller may log now (after printing any pending suppression summary for
 * `module`), 0 when the line must be dropped (it is counted). */
int log_ratelimit_allow(log_ratelimit *rl, int level, const char *module);

#define log_limited(rl, level, module, ...)                                                        \
    do {                                                                                           \
        if ((level) >= log_threshold && log_ratelimit_allow((rl), (level), (module)))              \
            log_write((level), (module), __VA_ARGS__);                                             \
    } while (0)

/* Monotonic and wall clocks in milliseconds (shared helpers, no logging involved).
 * tide_now_wall_ms() is trace time: the real clock unless a virtual clock is installed
 * (vclock.h: --clock-rate/--clock-origin, then timestamps run R times faster from the origin).
 * tide_now_mono_ms() is always real monotonic time: timeouts, deadlines, round trips and CPU
 * rates. Durations in trace time (cold starts, keep-alive) use vclock_mono_ms(). */
int64_t tide_now_mono_ms(void);
int64_t tide_now_wall_ms(void);

#endif
