/* csv_time.h: ISO 8601 / RFC 3339 date-times in CSV timestamp fields, as exported by
 * Prometheus/Grafana, CloudWatch, pandas and NAB, converted to unix seconds without the C
 * library's locale or time zone (no mktime, no TZ: the calendar arithmetic is done here).
 *
 * Accepted (the whole field, nothing before or after):
 *   YYYY-MM-DD                                  midnight UTC
 *   YYYY-MM-DD?HH:MM[:SS[.F]][ ][ZONE]          ? = 'T', 't' or one space
 * where YYYY is 0000-9999, MM 01-12, DD a day of that month (leap years of the proleptic
 * Gregorian calendar), HH 00-23, MM 00-59, SS 00-60 (60, a leap second, counts as the next
 * minute's 00, as unix time does), F 1 to 9 fractional digits after a '.', and ZONE 'Z', 'z' or
 * an offset +HH, +HHMM or +HH:MM (or '-'; hours 00-23, minutes 00-59) that is subtracted to get
 * UTC; no ZONE means UTC. Everything else (other separators, week or ordinal dates, "24:00",
 * named zones, a ',' fraction) is refused with the reason. */
#ifndef TIDE_CSV_TIME_H
#define TIDE_CSV_TIME_H

#include <stddef.h>
#include <stdint.h>

/* Days from 1970-01-01 to y-m-d of the proleptic Gregorian calendar (|y| < 2^40, m 1-12,
 * d 1-31). */
int64_t csv_days_from_civil(int64_t y, unsigned m, unsigned d);

/* Writes t (unix seconds) as "YYYY-MM-DD HH:MM:SS" (UTC) into buf; years outside 0000-9999
 * (not a parsed date-time) as the number. */
void csv_time_format(int64_t t, char *buf, size_t len);

/* Parses f[0..n) (not NUL-terminated). Returns
 *   1: a date-time: *secs = unix seconds (UTC, rounded down), *nanos = the fraction (0-999999999);
 *   0: not a date-time at all (does not start with four digits and '-': a number or a header);
 *  -1: starts like one but is not valid: why names the problem (secs, nanos untouched). */
int csv_time_parse(const char *f, size_t n, int64_t *secs, uint32_t *nanos, char *why,
                   size_t whylen);

#endif
