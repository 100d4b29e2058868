/* anomaly_csv.h: runs the online anomaly detector (models/anomaly.h) over a CSV file row by
 * row, as a live anomaly rule would see the series, for `tidectl anomaly`.
 *
 * Input: an optional header line (a first line whose first field is not a timestamp), then
 * `timestamp,value` rows ('\n' or "\r\n"; blank lines and '#' lines skipped). A timestamp is
 * unix seconds or an ISO 8601 date-time (offline/csv_time.h: "YYYY-MM-DD HH:MM:SS[.ffffff]" UTC
 * as in NAB's own files, 'T', 'Z' or a +HH:MM offset too). Extra columns are
 * ignored. Unlike series_csv, rows are never merged or moved: every input row gets one result
 * row. The step is the most common positive difference between consecutive timestamps; a gap
 * of k missing steps is stepped through as k missing values (at most ANOM_CSV_MAX_GAP), so the
 * daily and weekly forecasts stay aligned.
 *
 * Errors name the line: a row without two fields, a bad timestamp or value (not a number, not
 * finite), a timestamp before the previous one, more than ANOM_CSV_MAX_ROWS rows, fewer than 2. */
#ifndef TIDE_ANOMALY_CSV_H
#define TIDE_ANOMALY_CSV_H

#include "models/anomaly.h"

#include <stddef.h>
#include <stdint.h>

#define ANOM_CSV_MAX_ROWS ((size_t)20 * 1000 * 1000)
#define ANOM_CSV_MAX_GAP 20000

typedef struct anom_rows {
    int64_t *t; /* unix seconds */
    double *v;
    size_t n;
    int64_t step;
    int datetime; /* timestamps were written as dates (echoed back the same way) */
} anom_rows;

/* Parses buf[0..len). 0 with *out filled (release with anom_rows_fini), -EINVAL with err
 * "line N: problem", or -ENOMEM. */
int anom_rows_parse(const char *buf, size_t len, anom_rows *out, char *err, size_t errlen);
/* Reads and parses a file (at most 2 GiB); errors start with the path. */
int anom_rows_load(const char *path, anom_rows *out, char *err, size_t errlen);
void anom_rows_fini(anom_rows *r);

/* Runs a detector with opts (its step is taken from rows when opts->step is 0) over the rows:
 * res[i] receives row i's result (res holds rows->n). 0, or -EINVAL / -ENOMEM with err filled. */
int anom_rows_run(const anom_rows *rows, const anom_opts *opts, anom_result *res, char *err,
                  size_t errlen);

/* Formats row i's timestamp as it was given (unix seconds or "YYYY-MM-DD HH:MM:SS"). */
void anom_rows_format_ts(const anom_rows *rows, size_t i, char *buf, size_t len);

#endif
