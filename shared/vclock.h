/* vclock.h: the virtual clock behind tide_now_wall_ms() (log.h), for benchmarks and tests that
 * replay days of a trace in minutes.
 *
 * Off (the default): trace time is the real time, exactly as without this module. On
 * (`--clock-rate R --clock-origin T [--clock-anchor A]`): trace time = T + (real now - A) x R,
 * where A is a real wall-clock instant (default: the moment the clock is configured); every
 * component given the same T, A and R agrees on the time. Trace time drives timestamps, sync
 * periods, horizons, cold starts and keep-alive; network timeouts and CPU rates stay in real
 * time (tide_now_mono_ms() is never scaled). The clock is set once at start-up, before any
 * thread, and read-only afterwards. */
#ifndef TIDE_VCLOCK_H
#define TIDE_VCLOCK_H

#include <stddef.h>
#include <stdint.h>

/* Bounds of the rate: 1/1000 (slow motion for a debugger) to 100,000 (more than a year a
 * real hour); beyond them a 1 s sync tick would fire every 10 microseconds. */
#define VCLOCK_RATE_MIN 0.001
#define VCLOCK_RATE_MAX 100000.0

typedef struct vclock_spec {
    int on;            /* 0: real time (rate 1, no origin) */
    double rate;       /* trace seconds per real second */
    int64_t origin_ms; /* trace time (unix ms) at the anchor */
    int64_t anchor_ms; /* real unix ms when trace time = origin; 0 = when configured */
} vclock_spec;

/* Parses the three flag values (NULL or "" = not given): rate a decimal number within the
 * bounds (default 1), origin and anchor unix seconds (fractions allowed)
 * or a UTC time "2026-12-07T05:00:00Z". A rate other than 1 without an origin starts the trace at
 * the anchor. An anchor without a rate or origin is refused (it would do nothing). Returns 0 or
 * -EINVAL with err naming the value. Pure. */
int vclock_parse(const char *rate, const char *origin, const char *anchor, vclock_spec *out,
                 char *err, size_t errlen);

/* Config validators (cfg_validate_fn) of the clock_rate and the clock_origin/clock_anchor
 * keys: the value's address is a char * ("" = not given). 0 or -EINVAL. */
int vclock_valid_rate(const void *value, char *err, size_t errlen);
int vclock_valid_instant(const void *value, char *err, size_t errlen);

/* Installs the clock (process-wide); call once before any thread starts. 0 or -EINVAL. */
int vclock_install(const vclock_spec *s, char *err, size_t errlen);

/* The trace time for the real instants given (pure; for tests and the load generator). */
int64_t vclock_trace_ms(const vclock_spec *s, int64_t real_wall_ms);

/* The installed rate (1 when off) and whether the clock is on. */
double vclock_rate(void);
int vclock_on(void);

/* A period in trace seconds as the real seconds an ev_timer must wait (divided by the rate),
 * never below 1 ms. */
double vclock_real_s(double trace_s);

/* Trace-time milliseconds on a monotonic base: equal to tide_now_mono_ms() when the clock is
 * off, the (monotonic) virtual wall clock when on. For durations that are trace time: cold
 * starts, readiness, keep-alive. */
int64_t vclock_mono_ms(void);

/* The trace wall clock in unix ms (the real one when off); tide_now_wall_ms() returns it. */
int64_t vclock_wall_ms(void);

/* The real wall clock in unix ms whatever the virtual clock (for numbers that must grow
 * across restarts, such as the agent's batch sequence). */
int64_t vclock_real_ms(void);

/* One line for logs: "virtual clock: rate 60, trace 2026-...Z at real 2026-...Z" or "". */
void vclock_describe(char *buf, size_t len);

#endif
