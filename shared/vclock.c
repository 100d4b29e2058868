/* vclock.c: the virtual clock (see vclock.h). */
#include "vclock.h"

#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* Written once by vclock_install before any thread starts, read-only afterwards. */
static struct {
    vclock_spec s;
    int64_t real_minus_mono_ms; /* real unix ms - CLOCK_MONOTONIC ms, at install */
} V = {.s = {.on = 0, .rate = 1.0}};

static int64_t mono_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static int64_t real_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Unix seconds (fractions allowed) or "YYYY-MM-DDTHH:MM:SS[.fff]Z" into ms; 0 or -EINVAL. */
static int parse_instant(const char *what, const char *v, int64_t *ms, char *err, size_t errlen) {
    char *end = NULL;
    errno = 0;
    double d = strtod(v, &end);
    if (end != v && *end == '\0' && errno == 0 && isfinite(d)) {
        /* year 1970 to 9999: anything else is a mistake (ms given as seconds, a typo) */
        if (d < 0 || d > 253402300799.0) {
            snprintf(err, errlen, "%s '%s': unix seconds out of range (0 to 253402300799)", what,
                     v);
            return -EINVAL;
        }
        *ms = (int64_t)llround(d * 1000);
        return 0;
    }
    struct tm tm;
    memset(&tm, 0, sizeof tm);
    const char *rest = strptime(v, "%Y-%m-%dT%H:%M:%S", &tm);
    double frac = 0;
    if (rest && *rest == '.') {
        char *fe = NULL;
        frac = strtod(rest, &fe);
        rest = fe;
    }
    if (!rest || strcmp(rest, "Z") != 0) {
        snprintf(err, errlen,
                 "%s '%s': expected unix seconds or a UTC time like 2026-12-07T05:00:00Z", what, v);
        return -EINVAL;
    }
    time_t t = timegm(&tm);
    if (t < 0) {
        snprintf(err, errlen, "%s '%s': before 1970", what, v);
        return -EINVAL;
    }
    *ms = (int64_t)t * 1000 + (int64_t)llround(frac * 1000);
    return 0;
}

int vclock_parse(const char *rate, const char *origin, const char *anchor, vclock_spec *out,
                 char *err, size_t errlen) {
    vclock_spec s = {.on = 0, .rate = 1.0};
    int has_rate = rate && rate[0], has_origin = origin && origin[0];
    if (has_rate) {
        char *end = NULL;
        errno = 0;
        s.rate = strtod(rate, &end);
        if (end == rate || *end || errno || !isfinite(s.rate) || s.rate < VCLOCK_RATE_MIN ||
            s.rate > VCLOCK_RATE_MAX) {
            snprintf(err, errlen, "clock_rate '%s': expected a number from %g to %g", rate,
                     VCLOCK_RATE_MIN, VCLOCK_RATE_MAX);
            return -EINVAL;
        }
    }
    if (has_origin && parse_instant("clock_origin", origin, &s.origin_ms, err, errlen) < 0)
        return -EINVAL;
    if (anchor && anchor[0]) {
        if (!has_origin && (!has_rate || s.rate == 1.0)) {
            snprintf(err, errlen,
                     "clock_anchor '%s' needs clock_origin or a clock_rate other "
                     "than 1",
                     anchor);
            return -EINVAL;
        }
        if (parse_instant("clock_anchor", anchor, &s.anchor_ms, err, errlen) < 0) return -EINVAL;
        if (s.anchor_ms == 0) s.anchor_ms = 1; /* 0 means "at install" */
    }
    s.on = has_origin || s.rate != 1.0;
    *out = s;
    return 0;
}

int vclock_valid_rate(const void *value, char *err, size_t errlen) {
    vclock_spec s;
    return vclock_parse(*(const char *const *)value, NULL, NULL, &s, err, errlen);
}

int vclock_valid_instant(const void *value, char *err, size_t errlen) {
    const char *v = *(const char *const *)value;
    int64_t ms;
    return v && v[0] ? parse_instant("time", v, &ms, err, errlen) : 0;
}

int vclock_install(const vclock_spec *s, char *err, size_t errlen) {
    if (s->on && (!(s->rate >= VCLOCK_RATE_MIN) || s->rate > VCLOCK_RATE_MAX)) {
        snprintf(err, errlen, "clock rate %g out of range", s->rate);
        return -EINVAL;
    }
    V.s = *s;
    if (!s->on) {
        V.s.rate = 1.0;
        return 0;
    }
    V.real_minus_mono_ms = real_ms() - mono_ms();
    int64_t now = mono_ms() + V.real_minus_mono_ms;
    if (V.s.anchor_ms == 0) V.s.anchor_ms = now;
    if (V.s.origin_ms == 0) V.s.origin_ms = V.s.anchor_ms; /* a rate alone: trace starts now */
    return 0;
}

int64_t vclock_trace_ms(const vclock_spec *s, int64_t real_wall_ms) {
    if (!s->on) return real_wall_ms;
    double d = (double)(real_wall_ms - s->anchor_ms) * s->rate;
    return s->origin_ms + (int64_t)llround(d);
}

int64_t vclock_real_ms(void) {
    return real_ms();
}

double vclock_rate(void) {
    return V.s.on ? V.s.rate : 1.0;
}

int vclock_on(void) {
    return V.s.on;
}

double vclock_real_s(double trace_s) {
    double r = trace_s / vclock_rate();
    return r < 0.001 ? 0.001 : r;
}

/* The virtual wall clock, derived from CLOCK_MONOTONIC so it never steps back. */
static int64_t trace_now(void) {
    return vclock_trace_ms(&V.s, mono_ms() + V.real_minus_mono_ms);
}

int64_t vclock_wall_ms(void) {
    return V.s.on ? trace_now() : real_ms();
}

int64_t vclock_mono_ms(void) {
    return V.s.on ? trace_now() : mono_ms();
}

static void utc(int64_t ms, char *buf, size_t len) {
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

void vclock_describe(char *buf, size_t len) {
    if (!V.s.on) {
        if (len) buf[0] = '\0';
        return;
    }
    char o[32], a[32];
    utc(V.s.origin_ms, o, sizeof o);
    utc(V.s.anchor_ms, a, sizeof a);
    snprintf(buf, len, "virtual clock: rate %g, trace %s at real %s", V.s.rate, o, a);
}
