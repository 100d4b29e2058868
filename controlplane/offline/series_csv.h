/* series_csv.h: loads `timestamp,value` CSV files into a regular series (used by tidectl
 * backtest and tidectl simulate).
 *
 * Format: an optional header line (a first line whose first field is neither a timestamp nor
 * starts like a date), then one `timestamp,value` row per line ('\n' or "\r\n"; blank lines and
 * lines starting with '#' are skipped; a field may be in double quotes; a leading UTF-8 byte
 * order mark is skipped). A timestamp is a number since the unix epoch (seconds; read as
 * milliseconds from 1e11, microseconds from 1e14, nanoseconds from 1e17, one unit per file,
 * kept in stats.time_unit, named by series_csv_time_unit; rounded to the second) or an ISO 8601
 * date-time (offline/csv_time.h: e.g. "2015-02-26 21:42:53", UTC unless it carries an offset;
 * rounded to the second), one form per file. The step is the most common positive difference
 * between consecutive timestamps.
 *
 * Always errors (naming the line): a row without two fields, a timestamp that is neither form
 * (or a date-time that is not valid: the text and the reason), the two forms mixed, a
 * non-finite timestamp or value, a timestamp smaller than the one before (unsorted) unless
 * opts.sort is set, fewer rows than opts.min_rows (too short).
 * opts.sort: rows out of timestamp order are sorted (stably: rows with equal timestamps keep
 * their file order) before the repairs below, and counted (sorted, first_sort_line: the first
 * row found earlier than the one before it). Only when asked: a file out of order may also be
 * two files concatenated, which sorting would silently interleave. opts.strict does not cancel
 * it (it was asked for explicitly).
 * Repairs (counted in series_csv_stats so the caller can report them; each is an error instead
 * when opts.strict is set):
 *   - a timestamp that is not on the grid t0 + k*step is moved to the nearest grid point;
 *   - duplicate timestamps are combined: summed (default, right for counts) or averaged
 *     (opts.dup = SERIES_DUP_MEAN, right for gauges);
 *   - missing timestamps are filled by linear interpolation between their neighbours. */
#ifndef TIDE_SERIES_CSV_H
#define TIDE_SERIES_CSV_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

typedef enum series_dup_mode { SERIES_DUP_SUM = 0, SERIES_DUP_MEAN = 1 } series_dup_mode;

typedef struct series_csv_opts {
    int strict;          /* 1: duplicates, gaps and off-grid timestamps are errors, not repaired */
    series_dup_mode dup; /* how duplicates are combined */
    size_t min_rows;     /* fewer rows (after repair) is the "too short" error; 0 = 2 */
    int64_t step;        /* expected step in seconds; 0 = inferred */
    int sort;            /* 1: sort rows out of timestamp order instead of refusing them */
} series_csv_opts;

typedef struct series_csv_stats {
    size_t rows;           /* data rows read */
    size_t duplicates;     /* rows combined into an earlier row with the same timestamp */
    size_t first_dup_line; /* line of the first such row (0 = none) */
    size_t filled;         /* values filled into missing timestamps */
    size_t gaps;           /* number of gaps filled */
    size_t largest_gap;    /* longest run of filled values */
    size_t first_gap_line; /* line of the row after the first gap (0 = none) */
    size_t snapped;        /* off-grid timestamps moved to the grid */
    size_t first_snap_line;
    size_t sorted;          /* rows found earlier than the row before them (opts.sort) */
    size_t first_sort_line; /* line of the first such row (0 = none) */
    unsigned time_unit;     /* numeric timestamps: 0 seconds, 1 milli-, 2 micro-, 3 nanoseconds */
} series_csv_stats;

typedef struct series_csv {
    double *y; /* n values, y[i] at t0 + i*step; owned */
    size_t n;
    int64_t t0;
    int64_t step;
    series_csv_stats stats;
} series_csv;

/* Parses buf[0..len) (need not be NUL-terminated). On success returns 0 and fills *out
 * (release with series_csv_fini). On failure returns -EINVAL (bad content, err says
 * "line N: problem") or -ENOMEM, and *out is left empty. opts may be NULL (defaults). */
int series_csv_parse(const char *buf, size_t len, const series_csv_opts *opts, series_csv *out,
                     char *err, size_t errlen);
/* Reads and parses a file; -errno from open/read with err naming the path, else as above
 * (err then starts with the path). */
int series_csv_load(const char *path, const series_csv_opts *opts, series_csv *out, char *err,
                    size_t errlen);
/* Writes a one-line human summary of the repairs into buf ("no repairs" when none). */
void series_csv_describe_repairs(const series_csv_stats *st, char *buf, size_t len);
/* Says on f what loading changed or read unusually: "WHO: PATH: repaired: ..." when any repair
 * was made, "WHO: PATH: timestamps read as milliseconds since the epoch" for a unit other than
 * seconds (tidectl backtest and simulate, on stderr). */
void series_csv_report(FILE *f, const char *who, const char *path, const series_csv_stats *st);
/* "seconds", "milliseconds", "microseconds" or "nanoseconds": how numeric timestamps were
 * read (date-time files: "seconds"). */
const char *series_csv_time_unit(const series_csv_stats *st);
void series_csv_fini(series_csv *s);

#endif
