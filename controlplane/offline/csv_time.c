/* csv_time.c: ISO 8601 / RFC 3339 date-times to unix seconds (see csv_time.h). */
#include "offline/csv_time.h"
#include "errmsg.h"

#include <stdio.h>

int64_t csv_days_from_civil(int64_t y, unsigned m, unsigned d) {
    /* Years start on March 1 so that the leap day ends the year; 400-year eras of 146097 days. */
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    unsigned yoe = (unsigned)(y - era * 400);
    unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
    unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + (int64_t)doe - 719468;
}

/* The inverse of csv_days_from_civil. */
static void civil_from_days(int64_t z, int64_t *y, unsigned *m, unsigned *d) {
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    unsigned doe = (unsigned)(z - era * 146097);
    unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    unsigned mp = (5 * doy + 2) / 153;
    *d = doy - (153 * mp + 2) / 5 + 1;
    *m = mp < 10 ? mp + 3 : mp - 9;
    *y = (int64_t)yoe + era * 400 + (*m <= 2);
}

void csv_time_format(int64_t t, char *buf, size_t len) {
    if (!buf || len == 0) return;
    int64_t lo = csv_days_from_civil(0, 1, 1) * 86400,
            hi = csv_days_from_civil(10000, 1, 1) * 86400;
    if (t < lo || t >= hi) {
        snprintf(buf, len, "%lld", (long long)t);
        return;
    }
    int64_t days = (t - lo) / 86400 + lo / 86400, sec = t - days * 86400, y;
    unsigned m, d;
    civil_from_days(days, &y, &m, &d);
    snprintf(buf, len, "%04lld-%02u-%02u %02u:%02u:%02u", (long long)y, m, d,
             (unsigned)(sec / 3600), (unsigned)(sec / 60 % 60), (unsigned)(sec % 60));
}

static int is_leap(unsigned y) {
    return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
}

static unsigned month_days(unsigned y, unsigned m) {
    static const unsigned char d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Reads exactly k digits at f[*i..]; advances *i. 0 or -1. */
static int take_digits(const char *f, size_t n, size_t *i, unsigned k, unsigned *out) {
    unsigned v = 0;
    if (n - *i < k) return -1;
    for (unsigned j = 0; j < k; j++) {
        char c = f[*i + j];
        if (c < '0' || c > '9') return -1;
        v = v * 10 + (unsigned)(c - '0');
    }
    *i += k;
    *out = v;
    return 0;
}

#define EXPECTED "YYYY-MM-DD[THH:MM[:SS[.F]][Z|+HH:MM]]"

/* The error for an unexpected character (or the end) at f[i]. */
static int unexpected(const char *f, size_t n, size_t i, const char *wanted, char *why,
                      size_t whylen) {
    if (i >= n)
        return errmsg(why, whylen, -1, "ends after %zu characters, expected %s (form %s)", n,
                      wanted, EXPECTED);
    char c = f[i];
    if (c >= 0x20 && c < 0x7f)
        return errmsg(why, whylen, -1, "'%c' at character %zu, expected %s (form %s)", c, i + 1,
                      wanted, EXPECTED);
    return errmsg(why, whylen, -1, "byte 0x%02x at character %zu, expected %s (form %s)",
                  (unsigned)(unsigned char)c, i + 1, wanted, EXPECTED);
}

int csv_time_parse(const char *f, size_t n, int64_t *secs, uint32_t *nanos, char *why,
                   size_t whylen) {
    size_t i = 0;
    unsigned y, mo, d, h = 0, mi = 0, s = 0;
    uint32_t ns = 0;
    if (take_digits(f, n, &i, 4, &y) != 0 || i >= n || f[i] != '-') return 0;
    i++;
    if (take_digits(f, n, &i, 2, &mo) != 0)
        return unexpected(f, n, i, "a 2-digit month", why, whylen);
    if (i >= n || f[i] != '-') return unexpected(f, n, i, "'-'", why, whylen);
    i++;
    if (take_digits(f, n, &i, 2, &d) != 0) return unexpected(f, n, i, "a 2-digit day", why, whylen);
    if (mo < 1 || mo > 12) return errmsg(why, whylen, -1, "month %02u is not 01-12", mo);
    if (d < 1 || d > month_days(y, mo))
        return errmsg(why, whylen, -1, "day %02u is not in %04u-%02u (%u days)", d, y, mo,
                      month_days(y, mo));
    int64_t off = 0; /* zone offset in seconds east of UTC */
    if (i < n) {
        if (f[i] != 'T' && f[i] != 't' && f[i] != ' ')
            return unexpected(f, n, i, "'T' or a space before the time", why, whylen);
        i++;
        if (take_digits(f, n, &i, 2, &h) != 0)
            return unexpected(f, n, i, "a 2-digit hour", why, whylen);
        if (i >= n || f[i] != ':') return unexpected(f, n, i, "':'", why, whylen);
        i++;
        if (take_digits(f, n, &i, 2, &mi) != 0)
            return unexpected(f, n, i, "2-digit minutes", why, whylen);
        if (i < n && f[i] == ':') {
            i++;
            if (take_digits(f, n, &i, 2, &s) != 0)
                return unexpected(f, n, i, "2-digit seconds", why, whylen);
            if (i < n && f[i] == '.') {
                i++;
                unsigned k = 0;
                uint32_t scale = 100000000;
                while (i < n && f[i] >= '0' && f[i] <= '9') {
                    if (++k > 9)
                        return errmsg(why, whylen, -1, "more than 9 fractional digits of a second");
                    ns += (uint32_t)(f[i] - '0') * scale;
                    scale /= 10;
                    i++;
                }
                if (k == 0) return unexpected(f, n, i, "a digit after '.'", why, whylen);
            }
        }
        if (h > 23) return errmsg(why, whylen, -1, "hour %02u is not 00-23", h);
        if (mi > 59) return errmsg(why, whylen, -1, "minute %02u is not 00-59", mi);
        if (s > 60) return errmsg(why, whylen, -1, "second %02u is not 00-60", s);
        if (i < n && f[i] == ' ' && i + 1 < n) i++; /* "21:42:53 +0000" */
        if (i < n) {
            if (f[i] == 'Z' || f[i] == 'z') {
                i++;
            } else if (f[i] == '+' || f[i] == '-') {
                int sign = f[i] == '-' ? -1 : 1;
                unsigned oh, om = 0;
                i++;
                if (take_digits(f, n, &i, 2, &oh) != 0)
                    return unexpected(f, n, i, "a 2-digit offset hour", why, whylen);
                if (i < n && f[i] == ':') {
                    i++;
                    if (take_digits(f, n, &i, 2, &om) != 0)
                        return unexpected(f, n, i, "2-digit offset minutes", why, whylen);
                } else if (i < n && take_digits(f, n, &i, 2, &om) != 0) {
                    return unexpected(f, n, i, "2-digit offset minutes or the end", why, whylen);
                }
                if (oh > 23) return errmsg(why, whylen, -1, "offset hour %02u is not 00-23", oh);
                if (om > 59) return errmsg(why, whylen, -1, "offset minute %02u is not 00-59", om);
                off = sign * (int64_t)(oh * 3600 + om * 60);
            } else {
                return unexpected(f, n, i, "'Z', an offset (+HH:MM) or the end", why, whylen);
            }
        }
        if (i < n) return unexpected(f, n, i, "the end", why, whylen);
    }
    *secs = csv_days_from_civil(y, mo, d) * 86400 + (int64_t)h * 3600 + (int64_t)mi * 60 +
            (int64_t)s - off;
    *nanos = ns;
    return 1;
}
